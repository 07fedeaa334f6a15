/*
 * `outpost learn predict`: one question to one model, in a child process.
 * The site agent and the hub never load a model themselves (XGBoost's
 * loader is not built for hostile bytes, and a pooled model comes from
 * other sites): they run this program under the sandbox's limits and read
 * one line of JSON from it. The model's bytes are loaded only when their
 * SHA-256 is the one the caller took from a record it trusts.
 *
 *   outpost learn predict --model F --model-sha HEX --planned S --row CSV
 *   -> {"seconds": S, "margin": M}
 *
 * The row is learn/learn.h's feature columns, comma-separated, empty for
 * unknown.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "cli/learncmd.h"
#include "io/xgb.h"
#include "learn/learn.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "1.5,,3,..." into row (exactly LEARN_FEATURES fields). OP_EINVAL. */
static int parse_row(const char *text, float row[LEARN_FEATURES])
{
    const char *field = text;
    for (int k = 0; k < LEARN_FEATURES; k++) {
        const char *comma = strchr(field, ',');
        if ((k < LEARN_FEATURES - 1) != (comma != NULL)) return OP_EINVAL;
        size_t len = comma ? (size_t)(comma - field) : strlen(field);
        char buf[48];
        if (len >= sizeof buf) return OP_EINVAL;
        memcpy(buf, field, len);
        buf[len] = 0;
        double v = NAN;
        if (len && (util_parse_double(buf, &v) != OP_OK || !isfinite(v))) return OP_EINVAL;
        row[k] = (float)v;
        field = comma ? comma + 1 : field + len;
    }
    return OP_OK;
}

int learnpredict_main(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"model-sha", required_argument, NULL, 's'},
                                         {"planned", required_argument, NULL, 'p'},
                                         {"row", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *sha = NULL, *row_text = NULL;
    double planned = 0;
    float row[LEARN_FEATURES], margin = 0;
    int code;
    optind = 1;
    while ((code = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (code == 'm')
            path = optarg;
        else if (code == 's')
            sha = optarg;
        else if (code == 'r')
            row_text = optarg;
        else if (code != 'p' || util_parse_double(optarg, &planned) != OP_OK)
            return EXIT_USAGE;
    }
    if (!path || !sha || !row_text || !(planned > 0) || parse_row(row_text, row) != OP_OK) {
        fprintf(stderr,
                "usage: outpost learn predict --model F --model-sha HEX --planned S"
                " --row CSV (%d features)\n",
                LEARN_FEATURES);
        return EXIT_USAGE;
    }
    log_set_level(LOG_LEVEL_WARN);
    char *bytes = NULL;
    size_t len = 0;
    xgb_model *m = NULL;
    int rc = os_read_file(path, XGB_MAX_MODEL_BYTES, &bytes, &len);
    if (rc == OP_OK) rc = xgb_load((const uint8_t *)bytes, len, sha, &m);
    if (rc == OP_OK) rc = xgb_predict(m, row, 1, LEARN_FEATURES, &margin);
    free(bytes);
    xgb_free(m);
    if (rc != OP_OK) {
        fprintf(stderr, "learn predict: %s: %s\n", path,
                rc == OP_EINVAL ? xgb_last_error() : op_strerror(rc));
        return EXIT_FAILURE_RUNTIME;
    }
    printf("{\"seconds\": %.6g, \"margin\": %.9g}\n",
           learn_from_margin(LEARN_OBJ_LOG, planned, margin), (double)margin);
    return EXIT_OK;
}
