/*
 * learning: what a site learns from (its exceptions) and how it reports
 * them. An exception is something that took longer or shorter than planned:
 *   route-leg     a delivery leg a route's consumer reports back through the
 *                 local socket (`outpost exception add`), with the features
 *                 known when it was planned (learn/learn.h's columns);
 *   correction    an operator's labelled planned/actual pair.
 * Job durations are not recorded here: the hub learns run times from every
 * result it receives (hub/runtimes.c), with all a site would know of a job
 * and more (docs/learning.md says why).
 * Rows stay in site.db (site_db_learn.c), bounded: the newest
 * SITE_EXC_NEWEST, plus an evenly spread sample of at most SITE_EXC_SAMPLE
 * older ones. Recent rows say most about today's traffic; the sample keeps
 * the seasons a recent window alone would forget.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "learn/learn.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITE_EXC_MAX_PER_REQUEST 10000
#define SITE_EXC_MAX_FEATURE_BYTES 1024
#define SITE_EXC_MAX_SECONDS (30.0 * 24 * 3600)

static const char *const feature_names[LEARN_FEATURES] = {
    [LEARN_F_DISTANCE] = "distance_miles",
    [LEARN_F_HOUR] = "hour",
    [LEARN_F_WEEKDAY] = "weekday",
    [LEARN_F_PICKUP_AREA] = "pickup_area",
    [LEARN_F_DROPOFF_AREA] = "dropoff_area",
    [LEARN_F_PICKUP_BOROUGH] = "pickup_borough",
    [LEARN_F_DROPOFF_BOROUGH] = "dropoff_borough",
    [LEARN_F_MONTH] = "month",
    [LEARN_F_YEAR] = "year"};

/* The upper bound of each feature (lower bound 0; distance must be > 0). */
static const double feature_max[LEARN_FEATURES] = {
    [LEARN_F_DISTANCE] = 10000,     [LEARN_F_HOUR] = 23,          [LEARN_F_WEEKDAY] = 6,
    [LEARN_F_PICKUP_AREA] = 1e6,    [LEARN_F_DROPOFF_AREA] = 1e6, [LEARN_F_PICKUP_BOROUGH] = 64,
    [LEARN_F_DROPOFF_BOROUGH] = 64, [LEARN_F_MONTH] = 12,         [LEARN_F_YEAR] = 3000};

/*
 * A route leg's features from JSON into row (NaN where not given). "start"
 * (seconds since the epoch, the site's local clock read as UTC) fills hour,
 * weekday, month and year unless they are given. Unknown keys and values out
 * of range are errors: a typo must not train a model on NaN.
 */
int site__learn_features(const cJSON *features, float row[LEARN_FEATURES], char *err,
                         size_t err_len)
{
    for (int k = 0; k < LEARN_FEATURES; k++)
        row[k] = NAN;
    if (!cJSON_IsObject(features)) {
        snprintf(err, err_len, "features: must be an object");
        return OP_EINVAL;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, features)
    {
        int k = 0;
        while (k < LEARN_FEATURES && strcmp(f->string, feature_names[k]) != 0)
            k++;
        if (strcmp(f->string, "start") == 0 && cJSON_IsNumber(f) && f->valuedouble >= 0 &&
            f->valuedouble < 1e11) {
            int y, mo, d, h, wd;
            learn_civil((int64_t)f->valuedouble, &y, &mo, &d, &h, &wd);
            if (isnan(row[LEARN_F_HOUR])) row[LEARN_F_HOUR] = (float)h;
            if (isnan(row[LEARN_F_WEEKDAY])) row[LEARN_F_WEEKDAY] = (float)wd;
            if (isnan(row[LEARN_F_MONTH])) row[LEARN_F_MONTH] = (float)mo;
            if (isnan(row[LEARN_F_YEAR])) row[LEARN_F_YEAR] = (float)y;
            continue;
        }
        if (k == LEARN_FEATURES || !cJSON_IsNumber(f) || !(f->valuedouble >= 0) ||
            f->valuedouble > feature_max[k] || (k == LEARN_F_DISTANCE && f->valuedouble <= 0)) {
            snprintf(err, err_len, "features.%.40s: %s", f->string,
                     k == LEARN_FEATURES && strcmp(f->string, "start")
                         ? "unknown (distance_miles, start, hour, weekday, month, year,"
                           " pickup_area, dropoff_area, pickup_borough, dropoff_borough)"
                         : "a number out of range");
            return OP_EINVAL;
        }
        row[k] = (float)f->valuedouble;
    }
    if (isnan(row[LEARN_F_DISTANCE])) {
        snprintf(err, err_len, "features.distance_miles: required for a route leg");
        return OP_EINVAL;
    }
    return OP_OK;
}

static int data_class_named(const char *name)
{
    if (!name || strcmp(name, "site-private") == 0) return DATA_SITE_PRIVATE;
    if (strcmp(name, "confidential") == 0) return DATA_CONFIDENTIAL;
    if (strcmp(name, "public") == 0) return DATA_PUBLIC;
    return -1;
}

/*
 * One exception from its JSON form {kind, planned_s, actual_s, features,
 * at_ms?, data_class?} into e (e->features points into *text, which the
 * caller frees). A reported exception is the owner's data: site-private
 * unless it says otherwise. OP_OK, OP_EINVAL with err set, OP_ENOMEM.
 */
int site__exception_parse(const cJSON *o, sitedb_exception *e, char **text, char *err,
                          size_t err_len)
{
    const char *kind = cJSON_IsObject(o) ? jsonx_str(o, "kind") : NULL;
    const cJSON *features = cJSON_GetObjectItemCaseSensitive(o, "features");
    float row[LEARN_FEATURES];
    memset(e, 0, sizeof *e);
    *text = NULL;
    e->kind = kind ? kind : "route-leg";
    if (!cJSON_IsObject(o) || (strcmp(e->kind, "route-leg") && strcmp(e->kind, "correction"))) {
        snprintf(err, err_len, "kind: route-leg or correction");
        return OP_EINVAL;
    }
    if (jsonx_num(o, "planned_s", &e->planned_s) != OP_OK ||
        jsonx_num(o, "actual_s", &e->actual_s) != OP_OK || !(e->planned_s > 0) ||
        !(e->actual_s > 0) || e->planned_s > SITE_EXC_MAX_SECONDS ||
        e->actual_s > SITE_EXC_MAX_SECONDS) {
        snprintf(err, err_len, "planned_s, actual_s: seconds, above 0 and at most 30 days");
        return OP_EINVAL;
    }
    e->data_class = data_class_named(jsonx_str(o, "data_class"));
    if (e->data_class < 0) {
        snprintf(err, err_len, "data_class: public, confidential or site-private");
        return OP_EINVAL;
    }
    e->at_ms = os_now_ms();
    if (cJSON_HasObjectItem(o, "at_ms") &&
        jsonx_int(o, "at_ms", 0, INT64_MAX / 2, &e->at_ms) != OP_OK) {
        snprintf(err, err_len, "at_ms: milliseconds since the epoch");
        return OP_EINVAL;
    }
    if (!features) features = cJSON_GetObjectItemCaseSensitive(o, "no-such-key");
    if (site__learn_features(features, row, err, err_len)) return OP_EINVAL;
    *text = features ? cJSON_PrintUnformatted(features) : strdup("{}");
    if (!*text) return OP_ENOMEM;
    if (strlen(*text) > SITE_EXC_MAX_FEATURE_BYTES) {
        snprintf(err, err_len, "features: at most %d bytes of JSON", SITE_EXC_MAX_FEATURE_BYTES);
        free(*text);
        *text = NULL;
        return OP_EINVAL;
    }
    e->features = *text;
    return OP_OK;
}

/* Keeps the table within its bounds (logged when rows went). */
void site__exceptions_prune(site *s)
{
    int64_t removed = 0;
    if (site__ensure_tx(s) != OP_OK ||
        sitedb_exceptions_prune(s->db, SITE_EXC_NEWEST, SITE_EXC_SAMPLE, &removed) != OP_OK) {
        s->store_failed = 1;
        return;
    }
    if (removed)
        log_info("site",
                 "exceptions: %lld older rows thinned out (the newest %d and a sample of"
                 " at most %d older ones are kept)",
                 (long long)removed, SITE_EXC_NEWEST, SITE_EXC_SAMPLE);
}

/*
 * {"op": "exceptions", "exceptions": [...]}: all or none (the first bad one
 * is named); the reply adds "added" and "rows" (kept now).
 */
void site__exceptions_op(site *s, const cJSON *req, cJSON *reply, char *why, size_t why_len)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(req, "exceptions"), *o;
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0, k = 0;
    if (n < 1 || n > SITE_EXC_MAX_PER_REQUEST) {
        snprintf(why, why_len, "exceptions: an array of 1 to %d", SITE_EXC_MAX_PER_REQUEST);
        return;
    }
    char err[256];
    cJSON_ArrayForEach(o, list)
    {
        sitedb_exception e;
        char *text = NULL;
        if (site__exception_parse(o, &e, &text, err, sizeof err) != OP_OK) {
            snprintf(why, why_len, "exceptions[%d]: %s (none added)", k, err);
            return;
        }
        free(text);
        k++;
    }
    if (site__ensure_tx(s) != OP_OK) {
        snprintf(why, why_len, "the site's store is failing: try again");
        return;
    }
    cJSON_ArrayForEach(o, list)
    {
        sitedb_exception e;
        char *text = NULL;
        site__exception_parse(o, &e, &text, err, sizeof err);
        if (sitedb_exception_add(s->db, &e, NULL) != OP_OK) s->store_failed = 1;
        free(text);
    }
    site__exceptions_prune(s);
    int64_t rows = 0;
    sitedb_exceptions_count(s->db, NULL, &rows, NULL);
    cJSON_AddNumberToObject(reply, "added", n);
    cJSON_AddNumberToObject(reply, "rows", (double)rows);
}
