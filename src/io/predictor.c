#include "io/predictor.h"

#include "base/err.h"
#include "base/util.h"
#include "io/sandbox.h"

#include <cJSON.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREDICTOR_OUTPUT_BYTES 4096

/* The row as the child's --row: the features comma-separated, empty when unknown. */
static void row_text(const float row[LEARN_FEATURES], char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < LEARN_FEATURES && used < len; k++) {
        int n = isnan(row[k])
                    ? snprintf(out + used, len - used, "%s", k ? "," : "")
                    : snprintf(out + used, len - used, "%s%.9g", k ? "," : "", (double)row[k]);
        used += n > 0 ? (size_t)n : 0;
    }
}

/* The child's answer from its finished run. */
static int read_answer(const sandbox_result *res, double *seconds, char *err, size_t err_len)
{
    if (res->killed_wall) {
        snprintf(err, err_len, "the model did not answer in time");
        return OP_ETIMEOUT;
    }
    if (!res->exited || res->exit_code != 0) {
        const char *said = res->stderr_text && res->stderr_text[0] ? res->stderr_text
                           : res->error[0]                         ? res->error
                                                                   : "no reason given";
        snprintf(err, err_len, "the model's child %s %d: %.200s",
                 res->exited ? "exited" : "died of signal",
                 res->exited ? res->exit_code : res->term_signal, said);
        char *nl = strchr(err, '\n');
        if (nl) *nl = 0;
        return res->exited && res->exit_code != 127 ? OP_EINVAL : OP_EIO;
    }
    cJSON *a = res->stdout_text ? cJSON_Parse(res->stdout_text) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "seconds");
    int ok = cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble > 0;
    if (ok) *seconds = v->valuedouble;
    cJSON_Delete(a);
    if (!ok) snprintf(err, err_len, "the model's child answered nothing readable");
    return ok ? OP_OK : OP_EIO;
}

struct predictor_call {
    sandbox_run *run;
};

int predictor_start(const predictor_opts *o, const char *model_path, const char *sha256,
                    double planned_s, const float row[LEARN_FEATURES], predictor_call **out,
                    char *err, size_t err_len)
{
    char planned[32], csv[LEARN_FEATURES * 24];
    *out = NULL;
    if (!o || !o->program || !o->workdir || !model_path || !sha256 || !(planned_s > 0)) {
        snprintf(err, err_len, "predictor: a program, a work dir, a model and a plan");
        return OP_EINVAL;
    }
    snprintf(planned, sizeof planned, "%.9g", planned_s);
    row_text(row, csv, sizeof csv);
    char *argv[] = {(char *)o->program,
                    "learn",
                    "predict",
                    "--model",
                    (char *)model_path,
                    "--model-sha",
                    (char *)sha256,
                    "--planned",
                    planned,
                    "--row",
                    csv,
                    NULL};
    sandbox_spec spec = {
        .workdir = o->workdir,
        .argv = argv,
        .limits = {.cpu_seconds = 10,
                   .memory_bytes = o->memory_bytes,
                   .open_files = 32,
                   .output_bytes = PREDICTOR_OUTPUT_BYTES,
                   .wall_ms = o->timeout_ms > 0 ? o->timeout_ms : PREDICTOR_TIMEOUT_MS},
        .job_name = "predict",
        .use_netns = o->use_netns,
        .use_seccomp = o->use_seccomp,
    };
    predictor_call *c = calloc(1, sizeof *c);
    int rc = c ? sandbox_start(&spec, &c->run) : OP_ENOMEM;
    if (rc != OP_OK) {
        free(c);
        snprintf(err, err_len, "the model's child could not start: %s", op_strerror(rc));
        return OP_ESYS;
    }
    *out = c;
    return OP_OK;
}

int predictor_poll(predictor_call *c, double *seconds, char *err, size_t err_len)
{
    sandbox_result res = {0};
    int rc = sandbox_poll(c->run, &res);
    if (rc == 0) return 1;
    if (rc == 1)
        rc = read_answer(&res, seconds, err, err_len);
    else
        snprintf(err, err_len, "the model's child was lost: %s", op_strerror(rc));
    sandbox_result_clear(&res);
    return rc;
}

void predictor_free(predictor_call *c)
{
    if (!c) return;
    sandbox_free(c->run);
    free(c);
}

int predictor_run(const predictor_opts *o, const char *model_path, const char *sha256,
                  double planned_s, const float row[LEARN_FEATURES], double *seconds, char *err,
                  size_t err_len)
{
    predictor_call *c = NULL;
    int rc = predictor_start(o, model_path, sha256, planned_s, row, &c, err, err_len);
    if (rc == OP_OK)
        while ((rc = predictor_poll(c, seconds, err, err_len)) == 1)
            poll(NULL, 0, 2);
    predictor_free(c);
    return rc;
}
