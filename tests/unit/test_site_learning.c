/*
 * Unit tests of a site's learning (src/site/learning.c, learnjob.c) on an
 * in-memory site with its store: exceptions parsed and refused with the
 * field named; a learn job's outcome decided by the site (adopted over the
 * static plan, then a worse challenger rejected, a rejected one leaves the
 * champion as it was), audited, and the result's "learn" carrying no row:
 * a site-private model's bytes stay out of it, a shareable one's go in.
 */
#include "helpers/site_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "io/xgb.h"
#include "site/site_db.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int setup(void **state)
{
    *state = site_fixture_new(1);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    site_fixture_free(*state);
    return 0;
}

static void test_exception_parse(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } bad[] = {
        {"{\"planned_s\":0,\"actual_s\":5,\"features\":{\"distance_miles\":1}}", "planned_s"},
        {"{\"planned_s\":5,\"actual_s\":5,\"features\":{\"distance\":1}}", "features.distance"},
        {"{\"planned_s\":5,\"actual_s\":5,\"features\":{\"distance_miles\":-1}}", "distance_miles"},
        {"{\"planned_s\":5,\"actual_s\":5,\"features\":{\"hour\":2}}", "distance_miles"},
        {"{\"planned_s\":5,\"actual_s\":5,\"features\":[]}", "features"},
        {"{\"kind\":\"x\",\"planned_s\":5,\"actual_s\":5}", "kind"},
        /* job durations are the hub's to learn (hub/runtimes.c), not a site's exceptions */
        {"{\"kind\":\"job-duration\",\"planned_s\":5,\"actual_s\":5,\"features\":{}}", "kind"},
        {"{\"planned_s\":5,\"actual_s\":5,\"data_class\":\"secret\",\"features\":"
         "{\"distance_miles\":1}}",
         "data_class"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *o = cJSON_Parse(bad[i].json);
        sitedb_exception e;
        char *text = NULL;
        err[0] = 0;
        assert_int_equal(site__exception_parse(o, &e, &text, err, sizeof err), OP_EINVAL);
        if (!strstr(err, bad[i].field))
            fail_msg("%s: '%s' lacks %s", bad[i].json, err, bad[i].field);
        assert_null(text);
        cJSON_Delete(o);
    }
    cJSON *o = cJSON_Parse("{\"planned_s\":600,\"actual_s\":900,\"features\":"
                           "{\"distance_miles\":2,\"start\":1552640400}}");
    sitedb_exception e;
    char *text = NULL;
    assert_int_equal(site__exception_parse(o, &e, &text, err, sizeof err), OP_OK);
    assert_string_equal(e.kind, "route-leg");
    assert_int_equal(e.data_class, DATA_SITE_PRIVATE); /* the owner's until it says otherwise */
    float row[LEARN_FEATURES];
    cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "features");
    assert_int_equal(site__learn_features(f, row, err, sizeof err), OP_OK);
    assert_true(row[LEARN_F_HOUR] == 9.0f && row[LEARN_F_MONTH] == 3.0f); /* 2019-03-15 09:00 */
    assert_true(isnan(row[LEARN_F_PICKUP_AREA]));
    free(text);
    cJSON_Delete(o);
}

/* A learn job's work dir with what `outpost learn fit` leaves: a model and its metrics. */
static site_job *learn_job(site *s, const char *spec_text, double challenger_mae, double static_mae,
                           int heldout, int with_champion_mae)
{
    site_job *j = calloc(1, sizeof *j);
    char err[256], path[PATH_MAX], metrics[512];
    assert_non_null(j);
    assert_int_equal(jobspec_parse(spec_text, strlen(spec_text), &j->spec, err, sizeof err), OP_OK);
    j->job_id = 7;
    j->attempt = 1;
    assert_int_equal(util_fmt(j->workdir, sizeof j->workdir, "%s/work/7-1", s->data_dir), OP_OK);
    assert_int_equal(os_mkdir_p(j->workdir), OP_OK);
    /* a small real model */
    float x[40 * LEARN_FEATURES], y[40];
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < LEARN_FEATURES; k++)
            x[i * LEARN_FEATURES + k] = (float)((i * (k + 3)) % 7);
        y[i] = (float)(i % 5) / 10.0f;
    }
    xgb_params p;
    xgb_params_default(&p);
    p.rounds = 3;
    xgb_model *m = NULL;
    xgb_artifact bytes_of = {0};
    assert_int_equal(xgb_train(&p, x, 40, LEARN_FEATURES, y, &m), OP_OK);
    assert_int_equal(xgb_save(m, &bytes_of), OP_OK);
    assert_int_equal(util_fmt(path, sizeof path, "%s/challenger.ubj", j->workdir), OP_OK);
    assert_int_equal(os_write_file_atomic(path, bytes_of.bytes, bytes_of.len, 0644), OP_OK);
    snprintf(metrics, sizeof metrics,
             "{\"static_mae\":%g,%s\"challenger_mae\":%g,\"train_rows\":500,"
             "\"heldout_rows\":%d,\"challenger_sha256\":\"%s\"}",
             static_mae, with_champion_mae ? "\"champion_mae\":100," : "", challenger_mae, heldout,
             bytes_of.sha256);
    assert_int_equal(util_fmt(path, sizeof path, "%s/metrics.json", j->workdir), OP_OK);
    assert_int_equal(os_write_file_atomic(path, metrics, strlen(metrics), 0644), OP_OK);
    xgb_artifact_clear(&bytes_of);
    xgb_free(m);
    j->learn_class = DATA_SITE_PRIVATE;
    j->learn_to_id = j->learn_seen_id = 500;
    return j;
}

static void job_free(site_job *j)
{
    os_rm_rf(j->workdir);
    jobspec_clear(&j->spec);
    free(j);
}

static int count_audit(site *s, const char *kind)
{
    int n = 0;
    sqlite3_stmt *st = store_stmt(s->db, "SELECT entry FROM audit_entries");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        if (strstr(store_col_text(st, 0), kind)) n++;
    if (st) sqlite3_reset(st);
    return n;
}

#define SPEC                                                                                       \
    "{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\",\"origin\":\"site-a\"}"

static void test_adopt_then_reject(void **state)
{
    site *s = *state;
    assert_int_equal(sitedb_begin(s->db), OP_OK);
    /* first: the challenger against the static plan, 40% better: adopted */
    site_job *j = learn_job(s, SPEC, 60, 100, 200, 0);
    cJSON *r = cJSON_CreateObject();
    site__learn_finish(s, j, r);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "learn");
    assert_string_equal(jsonx_str(l, "verdict"), "adopted");
    assert_string_equal(jsonx_str(l, "incumbent"), "static plan");
    assert_string_equal(jsonx_str(l, "data_class"), "site-private");
    assert_null(cJSON_GetObjectItemCaseSensitive(l, "model_b64")); /* the bytes stay */
    char *text = cJSON_PrintUnformatted(r);
    assert_null(strstr(text, "planned_s")); /* counts and errors, no row */
    free(text);
    cJSON *champ = site__learn_champion(s, "eta", NULL);
    assert_non_null(champ);
    assert_string_equal(jsonx_str(champ, "sha256"), jsonx_str(l, "sha256"));
    char path[PATH_MAX];
    assert_int_equal(site__learn_model_path(s, jsonx_str(l, "sha256"), path, sizeof path, 0),
                     OP_OK);
    char *bytes = NULL;
    size_t len = 0;
    assert_int_equal(os_read_file(path, 1 << 24, &bytes, &len), OP_OK);
    free(bytes);
    cJSON_Delete(champ);
    cJSON_Delete(r);
    job_free(j);
    assert_int_equal(count_audit(s, "learn-adopt"), 1);
    /* then: a challenger only 1% better than the champion: rejected, the champion stays */
    j = learn_job(s, SPEC, 99, 150, 200, 1);
    r = cJSON_CreateObject();
    site__learn_finish(s, j, r);
    l = cJSON_GetObjectItemCaseSensitive(r, "learn");
    assert_string_equal(jsonx_str(l, "verdict"), "rejected");
    assert_null(cJSON_GetObjectItemCaseSensitive(l, "sha256"));
    champ = site__learn_champion(s, "eta", NULL);
    int64_t version = 0;
    jsonx_int(champ, "version", 0, 100, &version);
    assert_int_equal(version, 1);
    cJSON_Delete(champ);
    cJSON_Delete(r);
    job_free(j);
    assert_int_equal(count_audit(s, "learn-reject"), 1);
    /* too few held-out rows: rejected whatever the figures */
    j = learn_job(s, SPEC, 10, 150, 5, 1);
    r = cJSON_CreateObject();
    site__learn_finish(s, j, r);
    assert_string_equal(jsonx_str(cJSON_GetObjectItemCaseSensitive(r, "learn"), "verdict"),
                        "rejected");
    cJSON_Delete(r);
    job_free(j);
    /* a model of shareable rows carries its bytes for the pool (a visit) */
    j = learn_job(s,
                  "{\"kind\":\"learn\",\"model\":\"pool\",\"data_class\":\"site-private\","
                  "\"origin\":\"site-a\",\"learn\":{\"mode\":\"visit\"}}",
                  90, 100, 200, 0);
    j->learn_class = DATA_CONFIDENTIAL;
    r = cJSON_CreateObject();
    site__learn_finish(s, j, r);
    l = cJSON_GetObjectItemCaseSensitive(r, "learn");
    assert_string_equal(jsonx_str(l, "verdict"), "visited");
    assert_non_null(jsonx_str(l, "model_b64"));
    assert_null(site__learn_champion(s, "pool", NULL)); /* a visit is not the site's model */
    cJSON_Delete(r);
    job_free(j);
    assert_int_equal(count_audit(s, "learn-visit"), 1);
    /* a job that left no model: rejected, audited */
    j = learn_job(s, SPEC, 10, 150, 200, 1);
    assert_int_equal(util_fmt(path, sizeof path, "%s/challenger.ubj", j->workdir), OP_OK);
    unlink(path);
    r = cJSON_CreateObject();
    site__learn_finish(s, j, r);
    assert_int_equal(count_audit(s, "learn-reject"), 3);
    assert_int_equal(count_audit(s, "no readable metrics.json"), 1);
    cJSON_Delete(r);
    job_free(j);
    assert_int_equal(sitedb_commit(s->db), OP_OK);
}

/* A learn job's command line: learn.rebuild reaches `learn fit` only when asked. */
static void test_rebuild_command(void **state)
{
    site *s = *state;
    assert_int_equal(sitedb_begin(s->db), OP_OK);
    for (int i = 0; i < 60; i++) {
        sitedb_exception e = {.kind = "route-leg",
                              .features = "{\"distance_miles\":1.5}",
                              .planned_s = 100,
                              .actual_s = 100 + i,
                              .at_ms = i,
                              .data_class = DATA_SITE_PRIVATE};
        assert_int_equal(sitedb_exception_add(s->db, &e, NULL), OP_OK);
    }
    static const char *const specs[] = {
        SPEC, "{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":\"site-private\","
              "\"origin\":\"site-a\",\"learn\":{\"rebuild\":100}}"};
    for (int k = 0; k < 2; k++) {
        site_job *j = learn_job(s, specs[k], 60, 100, 200, 0);
        learn_command cmd;
        char why[256] = "";
        memset(&cmd, 0, sizeof cmd);
        assert_int_equal(site__learn_prepare(s, j, &cmd, why, sizeof why), OP_OK);
        int at = -1;
        for (int i = 0; cmd.argv[i]; i++)
            if (strcmp(cmd.argv[i], "--rebuild") == 0) at = i;
        if (k == 0)
            assert_int_equal(at, -1); /* continued, as before */
        else {
            assert_true(at > 0);
            assert_string_equal(cmd.argv[at + 1], "100");
        }
        job_free(j);
    }
    assert_int_equal(sitedb_commit(s->db), OP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exception_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_then_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_command, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
