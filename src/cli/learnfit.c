/*
 * `outpost learn fit`: what a site's learn job runs, in the sandbox like any
 * job. It reads the rows the site wrote into the job's work dir (train.csv
 * and heldout.csv: id, planned_s, actual_s, then learn/learn.h's feature
 * columns, empty for unknown), continues the site's champion (champion.ubj,
 * loaded only if its SHA-256 is the one the site gave) or starts a model,
 * and measures champion, challenger and the static plan on the held-out
 * rows, which neither model learned from. With --previous it also measures
 * the champion before the current one there (the site rolls back when that
 * one does better). It writes challenger.ubj and metrics.json; the site,
 * not this program, decides whether to adopt or roll back.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "cli/learncmd.h"
#include "io/xgb.h"
#include "learn/learn.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIT_MAX_ROWS 200000
#define FIT_LINE_MAX 1024

typedef struct fit_rows {
    float *x; /* n * LEARN_FEATURES */
    double *planned, *actual;
    size_t n, cap;
} fit_rows;

static void rows_free(fit_rows *r)
{
    free(r->x);
    free(r->planned);
    free(r->actual);
    memset(r, 0, sizeof *r);
}

static int rows_grow(fit_rows *r)
{
    size_t cap = r->cap ? r->cap * 2 : 1024;
    float *x = realloc(r->x, cap * LEARN_FEATURES * sizeof *x);
    if (x) r->x = x;
    double *p = realloc(r->planned, cap * sizeof *p);
    if (p) r->planned = p;
    double *a = realloc(r->actual, cap * sizeof *a);
    if (a) r->actual = a;
    if (!x || !p || !a) return OP_ENOMEM;
    r->cap = cap;
    return OP_OK;
}

/* One CSV line into row n; OP_EINVAL when it is not id,planned,actual and the features. */
static int parse_line(char *line, fit_rows *r)
{
    char *field = line, *end;
    double v[3 + LEARN_FEATURES];
    for (int k = 0; k < 3 + LEARN_FEATURES; k++) {
        char *comma = strchr(field, k < 2 + LEARN_FEATURES ? ',' : '\n');
        if (!comma && k < 2 + LEARN_FEATURES) return OP_EINVAL;
        if (comma) *comma = 0;
        v[k] = *field ? strtod(field, &end) : NAN;
        if (*field && (*end || !isfinite(v[k]))) return OP_EINVAL;
        field = comma ? comma + 1 : field + strlen(field);
    }
    if (!(v[1] > 0) || !(v[2] > 0)) return OP_EINVAL;
    r->planned[r->n] = v[1];
    r->actual[r->n] = v[2];
    for (int k = 0; k < LEARN_FEATURES; k++)
        r->x[r->n * LEARN_FEATURES + (size_t)k] = (float)v[3 + k];
    r->n++;
    return OP_OK;
}

static int read_rows(const char *path, fit_rows *r)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "learn fit: cannot read %s\n", path);
        return OP_EIO;
    }
    char line[FIT_LINE_MAX];
    int rc = OP_OK, lineno = 0;
    while (rc == OP_OK && fgets(line, sizeof line, in)) {
        lineno++;
        if (r->n == FIT_MAX_ROWS) rc = OP_ETOOBIG;
        if (rc == OP_OK && r->n == r->cap) rc = rows_grow(r);
        if (rc == OP_OK && (rc = parse_line(line, r)) != OP_OK)
            fprintf(stderr, "learn fit: %s line %d: not id,planned,actual and %d features\n", path,
                    lineno, LEARN_FEATURES);
    }
    fclose(in);
    return rc;
}

/* The model's answers for the rows as seconds (no model: the plan itself). */
static int predict_s(const xgb_model *m, const fit_rows *r, double *out)
{
    float *margin = r->n ? malloc(r->n * sizeof *margin) : NULL;
    if (r->n && !margin) return OP_ENOMEM;
    int rc = m && r->n ? xgb_predict(m, r->x, r->n, LEARN_FEATURES, margin) : OP_OK;
    for (size_t i = 0; rc == OP_OK && i < r->n; i++)
        out[i] = learn_from_margin(LEARN_OBJ_LOG, r->planned[i], m ? margin[i] : 0);
    free(margin);
    return rc;
}

typedef struct fit_args {
    const char *train, *heldout, *champion, *champion_sha, *out, *metrics;
    const char *candidate, *candidate_sha; /* weighed as it is, not trained */
    const char *previous, *previous_sha;   /* the champion before: measured only */
    int rebuild;                           /* trees of a challenger trained afresh (0: continued) */
    xgb_params params;
} fit_args;

/* The field a file or hash option fills, or NULL for the other options. */
static const char **path_option(fit_args *a, int code)
{
    switch (code) {
    case 't':
        return &a->train;
    case 'H':
        return &a->heldout;
    case 'c':
        return &a->champion;
    case 's':
        return &a->champion_sha;
    case 'o':
        return &a->out;
    case 'm':
        return &a->metrics;
    case 'C':
        return &a->candidate;
    case 'K':
        return &a->candidate_sha;
    case 'p':
        return &a->previous;
    case 'P':
        return &a->previous_sha;
    default:
        return NULL;
    }
}

static int parse_args(int argc, char **argv, fit_args *a)
{
    static const struct option opts[] = {{"train", required_argument, NULL, 't'},
                                         {"heldout", required_argument, NULL, 'H'},
                                         {"champion", required_argument, NULL, 'c'},
                                         {"champion-sha", required_argument, NULL, 's'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"metrics", required_argument, NULL, 'm'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"depth", required_argument, NULL, 'd'},
                                         {"eta", required_argument, NULL, 'e'},
                                         {"candidate", required_argument, NULL, 'C'},
                                         {"candidate-sha", required_argument, NULL, 'K'},
                                         {"previous", required_argument, NULL, 'p'},
                                         {"previous-sha", required_argument, NULL, 'P'},
                                         {"rebuild", required_argument, NULL, 'R'},
                                         {NULL, 0, NULL, 0}};
    int64_t v;
    int code;
    xgb_params_default(&a->params);
    a->params.rounds = 20;
    optind = 1;
    while ((code = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char **path = path_option(a, code);
        if (path) {
            *path = optarg;
            continue;
        }
        switch (code) {
        case 'r':
            if (util_parse_i64(optarg, 1, 1000, &v) != OP_OK) return EXIT_USAGE;
            a->params.rounds = (int)v;
            break;
        case 'R':
            if (util_parse_i64(optarg, 0, 1000, &v) != OP_OK) return EXIT_USAGE;
            a->rebuild = (int)v;
            break;
        case 'd':
            if (util_parse_i64(optarg, 1, 16, &v) != OP_OK) return EXIT_USAGE;
            a->params.max_depth = (int)v;
            break;
        case 'e':
            if (util_parse_double(optarg, &a->params.eta) != OP_OK) return EXIT_USAGE;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (!a->train || !a->heldout || !a->out || !a->metrics || (a->champion && !a->champion_sha) ||
        (a->previous && !a->previous_sha)) {
        fprintf(stderr, "usage: outpost learn fit --train CSV --heldout CSV [--champion F"
                        " --champion-sha HEX] [--candidate F --candidate-sha HEX] [--previous F"
                        " --previous-sha HEX] --out F --metrics F [--rounds N] [--rebuild N]"
                        " [--depth D] [--eta E]\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/*
 * A model's bytes, loaded only when they are the ones the site named; a
 * candidate's bytes are also copied to out_path as they are (an adopted
 * pooled model keeps the hash the registry knows it by).
 */
static int load_model(const char *path, const char *sha, const char *out_path, xgb_model **out)
{
    size_t len = 0;
    uint8_t *bytes = NULL;
    *out = NULL;
    if (!path) return OP_OK;
    int rc = os_read_file(path, XGB_MAX_MODEL_BYTES, (char **)&bytes, &len);
    if (rc == OP_OK) rc = xgb_load(bytes, len, sha, out);
    if (rc == OP_OK && out_path) rc = os_write_file_atomic(out_path, bytes, len, 0644);
    if (rc != OP_OK)
        fprintf(stderr, "learn fit: the model %s: %s\n", path,
                rc == OP_EINVAL ? xgb_last_error() : op_strerror(rc));
    free(bytes);
    return rc;
}

/*
 * Each feature's range over the rows a model learned from ([min, max], or
 * null when never given): what `outpost predict` calls familiar ground.
 */
static cJSON *feature_ranges(const fit_rows *train)
{
    cJSON *arr = cJSON_CreateArray();
    for (int k = 0; arr && k < LEARN_FEATURES; k++) {
        float lo = NAN, hi = NAN;
        for (size_t i = 0; i < train->n; i++) {
            float v = train->x[i * LEARN_FEATURES + (size_t)k];
            if (isnan(v)) continue;
            if (isnan(lo) || v < lo) lo = v;
            if (isnan(hi) || v > hi) hi = v;
        }
        const float pair[2] = {lo, hi};
        cJSON_AddItemToArray(arr, isnan(lo) ? cJSON_CreateNull() : cJSON_CreateFloatArray(pair, 2));
    }
    return arr;
}

static int write_metrics(const fit_args *a, const fit_rows *train, const fit_rows *held,
                         const double mae[4], const xgb_artifact *art, int trees)
{
    cJSON *m = cJSON_CreateObject();
    if (!m) return OP_ENOMEM;
    cJSON_AddNumberToObject(m, "static_mae", mae[0]);
    if (a->champion) cJSON_AddNumberToObject(m, "champion_mae", mae[1]);
    cJSON_AddNumberToObject(m, "challenger_mae", mae[2]);
    if (a->previous) cJSON_AddNumberToObject(m, "previous_mae", mae[3]);
    if (!a->candidate) cJSON_AddItemToObject(m, "ranges", feature_ranges(train));
    cJSON_AddNumberToObject(m, "train_rows", (double)train->n);
    cJSON_AddNumberToObject(m, "heldout_rows", (double)held->n);
    cJSON_AddNumberToObject(m, "trees", trees);
    cJSON_AddStringToObject(m, "challenger_sha256", art->sha256);
    cJSON_AddNumberToObject(m, "challenger_bytes", (double)art->len);
    char *text = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    int rc = text ? os_write_file_atomic(a->metrics, text, strlen(text), 0644) : OP_ENOMEM;
    free(text);
    return rc;
}

/*
 * A new model, or the champion's copy continued, fitted on the training rows.
 * With --rebuild N the challenger is always new, N trees on every row: the
 * replay found that a model continued update after update piles trees
 * fitted to old residuals and loses to one retrained on the same rows
 * (docs/learning.md).
 */
static int train_challenger(const fit_args *a, const xgb_model *champion, const fit_rows *train,
                            const float *y, xgb_model **out)
{
    if (a->rebuild > 0) {
        xgb_params p = a->params;
        p.rounds = a->rebuild;
        return xgb_train(&p, train->x, train->n, LEARN_FEATURES, y, out);
    }
    if (!champion) return xgb_train(&a->params, train->x, train->n, LEARN_FEATURES, y, out);
    int rc = xgb_clone(champion, out);
    if (rc == OP_OK)
        rc =
            xgb_continue(*out, &a->params, train->x, train->n, LEARN_FEATURES, y, a->params.rounds);
    return rc;
}

/* Trains the challenger (continued from the champion) and measures the three. */
static int fit(const fit_args *a, fit_rows *train, fit_rows *held)
{
    xgb_model *champion = NULL, *challenger = NULL, *previous = NULL;
    xgb_artifact art = {0};
    double mae[4] = {0, 0, 0, 0};
    float *y = malloc((train->n ? train->n : 1) * sizeof *y);
    double *pred = malloc((held->n ? held->n : 1) * sizeof *pred);
    int rc = y && pred ? load_model(a->champion, a->champion_sha, NULL, &champion) : OP_ENOMEM;
    if (rc == OP_OK) rc = load_model(a->previous, a->previous_sha, NULL, &previous);
    if (rc == OP_OK && a->candidate) /* weighed as it is: no rows are learned from */
        rc = load_model(a->candidate, a->candidate_sha, a->out, &challenger);
    for (size_t i = 0; rc == OP_OK && i < train->n; i++)
        y[i] = learn_target(LEARN_OBJ_LOG, train->planned[i], train->actual[i]);
    if (rc == OP_OK && !a->candidate) rc = train_challenger(a, champion, train, y, &challenger);
    if (rc == OP_OK && (rc = predict_s(NULL, held, pred)) == OP_OK)
        mae[0] = learn_mae(pred, held->actual, held->n);
    if (rc == OP_OK && (rc = predict_s(champion, held, pred)) == OP_OK)
        mae[1] = learn_mae(pred, held->actual, held->n);
    if (rc == OP_OK && (rc = predict_s(challenger, held, pred)) == OP_OK)
        mae[2] = learn_mae(pred, held->actual, held->n);
    if (rc == OP_OK && previous && (rc = predict_s(previous, held, pred)) == OP_OK)
        mae[3] = learn_mae(pred, held->actual, held->n);
    if (rc == OP_OK) rc = xgb_save(challenger, &art);
    if (rc == OP_OK && a->candidate) /* the candidate's own bytes, not a re-save */
        snprintf(art.sha256, sizeof art.sha256, "%s", a->candidate_sha);
    else if (rc == OP_OK)
        rc = os_write_file_atomic(a->out, art.bytes, art.len, 0644);
    if (rc == OP_OK) rc = write_metrics(a, train, held, mae, &art, xgb_rounds(challenger));
    if (rc != OP_OK)
        fprintf(stderr, "learn fit: %s%s%s\n", op_strerror(rc), rc == OP_EINVAL ? ": " : "",
                rc == OP_EINVAL ? xgb_last_error() : "");
    else
        printf("learn fit: %zu rows, %zu held out: static %.1f s, champion %.1f s, challenger"
               " %.1f s\n",
               train->n, held->n, mae[0], a->champion ? mae[1] : mae[0], mae[2]);
    xgb_artifact_clear(&art);
    xgb_free(champion);
    xgb_free(challenger);
    xgb_free(previous);
    free(y);
    free(pred);
    return rc;
}

int learnfit_main(int argc, char **argv)
{
    fit_args a = {0};
    fit_rows train = {0}, held = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != EXIT_OK) return rc;
    log_set_level(LOG_LEVEL_WARN);
    rc = read_rows(a.train, &train);
    if (rc == OP_OK) rc = read_rows(a.heldout, &held);
    if (rc == OP_OK && train.n == 0 && !a.candidate) {
        fprintf(stderr, "learn fit: no rows to learn from\n");
        rc = OP_EINVAL;
    }
    if (rc == OP_OK) rc = fit(&a, &train, &held);
    rows_free(&train);
    rows_free(&held);
    return rc == OP_OK ? EXIT_OK : EXIT_FAILURE_RUNTIME;
}
