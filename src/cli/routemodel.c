/*
 * routemodel: a route plan with a site's travel-time model instead of a
 * factors file. The model learned log(actual / planned) for the site's
 * legs, so exp(its answer) is the correction factor of a leg: for every
 * arc of the instance the features are the arc's length (the instance's
 * coordinates read as miles) and the departure's hour, weekday, month and
 * year (areas unknown), and the factor (bounded to [0.05, 20]) multiplies
 * the arc's travel time exactly as a factors file's would.
 */
#include "base/err.h"
#include "base/os.h"
#include "cli/routecmd.h"
#include "io/xgb.h"
#include "learn/learn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTEMODEL_MAX_NODES 1000 /* n*n predictions: a million at most */

/* The features of every arc (row i*n+j) of inst, departing at start_s. */
static float *arc_rows(const route_instance *inst, int64_t start_s)
{
    size_t n = (size_t)inst->n;
    float *x = malloc(n * n * LEARN_FEATURES * sizeof *x);
    if (!x) return NULL;
    int year, month, day, hour, weekday;
    learn_civil(start_s, &year, &month, &day, &hour, &weekday);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            float *row = x + (i * n + j) * LEARN_FEATURES;
            for (int k = 0; k < LEARN_FEATURES; k++)
                row[k] = NAN;
            row[LEARN_F_DISTANCE] = (float)route_distance(inst, (int)i, (int)j);
            row[LEARN_F_HOUR] = (float)hour;
            row[LEARN_F_WEEKDAY] = (float)weekday;
            row[LEARN_F_MONTH] = (float)month;
            row[LEARN_F_YEAR] = (float)year;
        }
    return x;
}

int routemodel_factors(const route_instance *inst, const char *model_path, const char *sha256,
                       int64_t start_s, routeio_factors *out, double *mean_factor, char *err,
                       size_t err_len)
{
    char *bytes = NULL;
    size_t len = 0, n = (size_t)inst->n;
    xgb_model *m = NULL;
    float *x = NULL, *margin = NULL;
    memset(out, 0, sizeof *out);
    if (inst->n > ROUTEMODEL_MAX_NODES) {
        snprintf(err, err_len, "a travel-time model plans at most %d stops", ROUTEMODEL_MAX_NODES);
        return OP_ETOOBIG;
    }
    int rc = os_read_file(model_path, XGB_MAX_MODEL_BYTES, &bytes, &len);
    if (rc == OP_OK) rc = xgb_load((const uint8_t *)bytes, len, sha256, &m);
    if (rc == OP_OK && !(x = arc_rows(inst, start_s))) rc = OP_ENOMEM;
    if (rc == OP_OK && !(margin = malloc(n * n * sizeof *margin))) rc = OP_ENOMEM;
    if (rc == OP_OK) rc = xgb_predict(m, x, n * n, LEARN_FEATURES, margin);
    if (rc == OP_OK && !(out->factor = malloc(n * n * sizeof *out->factor))) rc = OP_ENOMEM;
    double sum = 0;
    for (size_t k = 0; rc == OP_OK && k < n * n; k++) {
        double f = exp((double)margin[k]);
        f = f < 0.05 ? 0.05 : f > 20 ? 20 : f;
        out->factor[k] = (float)f;
        if (k / n != k % n) sum += f;
    }
    if (rc == OP_OK) {
        out->n = inst->n;
        *mean_factor = n > 1 ? sum / (double)(n * n - n) : 1;
    } else {
        snprintf(err, err_len, "the travel-time model %s: %s", model_path,
                 rc == OP_EINVAL ? xgb_last_error() : op_strerror(rc));
        routeio_factors_clear(out);
    }
    xgb_free(m);
    free(bytes);
    free(x);
    free(margin);
    return rc;
}
