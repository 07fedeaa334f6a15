#include "io/simfiles.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*parse_fn)(void *target, const char *text, size_t len, char *err, size_t err_len);

static int load_one(const char *dir, const char *name, parse_fn fn, void *target, char *err,
                    size_t err_len)
{
    char path[1024];
    if (util_fmt(path, sizeof path, "%s/%s", dir, name) != OP_OK) return OP_EINVAL;
    char *text;
    size_t len;
    int rc = os_read_file(path, 64u << 20, &text, &len);
    if (rc != OP_OK) {
        snprintf(err, err_len, "%s: cannot read it (%s)", path, op_strerror(rc));
        return OP_ENOTFOUND;
    }
    char why[256] = "";
    rc = fn(target, text, len, why, sizeof why);
    free(text);
    if (rc != OP_OK) snprintf(err, err_len, "%s: %s", path, why);
    return rc;
}

static int acn_fn(void *t, const char *x, size_t l, char *e, size_t el)
{
    return simdata_parse_acn(t, x, l, e, el);
}
static int turku_fn(void *t, const char *x, size_t l, char *e, size_t el)
{
    return simdata_parse_turku(t, x, l, e, el);
}
static int piles_fn(void *t, const char *x, size_t l, char *e, size_t el)
{
    return simdata_parse_piles(t, x, l, e, el);
}
static int series_fn(void *t, const char *x, size_t l, char *e, size_t el)
{
    return simdata_parse_series(t, x, l, e, el);
}

int simfiles_load(simdata *d, const char *dir, char *err, size_t err_len)
{
    memset(d, 0, sizeof *d);
    static const char *carbon[SIMDATA_N_CARBON] = {"ci_gb_2020.csv", "ci_fr_2020.csv",
                                                   "ci_de_2020.csv"};
    int rc = load_one(dir, "acn_caltech_sessions_2020-12_2021-09.csv", acn_fn, d, err, err_len);
    if (rc == OP_OK) rc = load_one(dir, "turku_sessions_2019.csv", turku_fn, d, err, err_len);
    if (rc == OP_OK) rc = load_one(dir, "urbanev_shenzhen_stations.csv", piles_fn, d, err, err_len);
    for (int i = 0; rc == OP_OK && i < SIMDATA_N_CARBON; i++)
        rc = load_one(dir, carbon[i], series_fn, &d->carbon[i], err, err_len);
    if (rc == OP_OK)
        rc = load_one(dir, "price_nl_dayahead_2016.csv", series_fn, &d->price, err, err_len);
    if (rc == OP_OK && (!d->n_stated || d->n_sessions == d->n_stated || !d->n_piles ||
                        !d->turku_sessions_per_point_day)) {
        snprintf(err, err_len, "%s: the data is there but too little of it", dir);
        rc = OP_EINVAL;
    }
    if (rc != OP_OK) simdata_clear(d);
    return rc;
}
