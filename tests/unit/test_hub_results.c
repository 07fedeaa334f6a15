/*
 * The hub's result application, without processes: a result applies once to
 * the current attempt on its site; duplicates, stale attempts and results
 * from a site the job is not on are recorded and not applied; the first
 * success of an earlier attempt wins; only committed work is counted; each
 * result carries the output hash the hub computed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "core/outhash.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* A noop job placed on the only live site: its id. */
static int64_t placed_job(hubfix *f, const char *site)
{
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    hubdb_job job;
    assert_int_equal(hubdb_job_get(f->h->db, id, &job), OP_OK);
    assert_int_equal(job.state, JOB_PLACED);
    assert_string_equal(job.site, site);
    return id;
}

static int apply(hubfix *f, const char *site, int64_t job_id, int64_t attempt, int exit_code)
{
    char text[160];
    snprintf(text, sizeof text, "{\"job\":%lld,\"attempt\":%lld,\"exit_code\":%d}",
             (long long)job_id, (long long)attempt, exit_code);
    cJSON *item = cJSON_Parse(text);
    int rc = hub__apply_result(f->h, hub__find_site(f->h, site), item, 0);
    cJSON_Delete(item);
    return rc;
}

static void test_success_applies_once(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    int64_t id = placed_job(f, "dc-1");
    assert_int_equal(s->reserved_jobs, 1);
    assert_int_equal(apply(f, "dc-1", id, 1, 0), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    assert_int_equal(s->reserved_jobs, 0);
    assert_int_equal(s->reserved_cores, 0);
    /* the same result again (the site resends until acknowledged): acknowledged, not applied */
    assert_int_equal(apply(f, "dc-1", id, 1, 0), OP_OK);
    assert_int_equal(cJSON_GetArraySize(s->acks), 2);
    assert_int_equal(f->h->tx_counted.results_applied, 1);
    assert_int_equal(f->h->tx_counted.results_duplicate, 1);
    assert_int_equal(hub__commit(f->h), OP_OK);
    assert_int_equal(f->h->counted.results_applied, 1);
    assert_int_equal(f->h->counted.results_duplicate, 1);
    char reason[256], explanation[1024];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_string_equal(reason, "exit code 0");
    assert_non_null(strstr(explanation, "placed on dc-1"));
}

static void test_failure_applies_as_failed(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = placed_job(f, "dc-1");
    assert_int_equal(apply(f, "dc-1", id, 1, 7), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_FAILED);
    char reason[256], explanation[1024];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_string_equal(reason, "exit code 7");
}

static void test_stale_attempt_not_applied(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = placed_job(f, "dc-1");
    /* an attempt the hub never made */
    assert_int_equal(apply(f, "dc-1", id, 2, 0), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    assert_int_equal(f->h->tx_counted.results_stale, 1);
    assert_int_equal(f->h->tx_counted.results_applied, 0);
    /* taken back and placed again: attempt 1's failure comes late and is not applied */
    hub__requeue(f->h, id, "test", 0, 1);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    hub__place_pass(f->h);
    assert_int_equal(apply(f, "dc-1", id, 1, 3), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    assert_int_equal(f->h->tx_counted.results_stale, 2);
}

static void test_earlier_success_wins(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = placed_job(f, "dc-1");
    hub__requeue(f->h, id, "test", 0, 1);
    hub__place_pass(f->h); /* attempt 2, on dc-1 again */
    assert_int_equal(s->reserved_jobs, 1);
    assert_int_equal(apply(f, "dc-1", id, 1, 0), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    /* the now redundant attempt 2 is cancelled on its site and its reservation given back */
    assert_int_equal(cJSON_GetArraySize(s->cancels), 1);
    assert_int_equal(s->reserved_jobs, 0);
    char reason[256], explanation[1024];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(reason, "attempt 1 on dc-1 finished first"));
}

static void test_result_from_another_site_refused(void **state)
{
    hubfix *f = *state;
    hub_site *one = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    hubfix_site(f, "pod-9", CLASS_POD, 1, 10, 40); /* too little power to be chosen */
    int64_t id = placed_job(f, "dc-1");
    assert_int_equal(apply(f, "pod-9", id, 1, 0), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    assert_int_equal(one->reserved_jobs, 1);
    assert_int_equal(f->h->tx_counted.results_applied, 0);
    assert_int_equal(f->h->tx_counted.results_stale, 1);
}

static void test_unknown_job_and_malformed_not_applied(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    assert_int_equal(apply(f, "dc-1", 999, 1, 0), OP_OK);
    assert_int_equal(f->h->tx_counted.results_stale, 1);
    cJSON *item = cJSON_Parse("{\"job\":\"x\"}");
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, "dc-1"), item, 0), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(f->h->msg.malformed, 1);
}

/* Work in a transaction that does not commit is not counted (the stopping line's figures). */
static void test_rolled_back_work_not_counted(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = placed_job(f, "dc-1");
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    assert_int_equal(apply(f, "dc-1", id, 1, 0), OP_OK);
    f->h->store_failed = 1;
    assert_int_not_equal(hub__commit(f->h), OP_OK);
    assert_int_equal(f->h->counted.results_applied, 0);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    assert_null(f->h->sites[0].acks); /* what would have been sent is dropped too */
}

/* A job a site ran on its own: recorded once as a job of that site, its result applied. */
static void test_local_job_recorded_once(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    cJSON *item = cJSON_Parse("{\"local_id\":5,\"spec\":{\"kind\":\"noop\"},"
                              "\"result\":{\"job\":-1,\"attempt\":1,\"exit_code\":0}}");
    assert_int_equal(hub__apply_local(f->h, s, item), OP_OK);
    assert_int_equal(hub__apply_local(f->h, s, item), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(f->h->tx_counted.jobs_submitted, 1);
    assert_int_equal(f->h->tx_counted.results_applied, 1);
    assert_int_equal(f->h->tx_counted.results_duplicate, 1);
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"jobs\"}");
    const cJSON *jobs =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "jobs");
    assert_int_equal(cJSON_GetArraySize(jobs), 1);
    assert_string_equal(jsonx_str(cJSON_GetArrayItem(jobs, 0), "state"), "succeeded");
    assert_string_equal(jsonx_str(cJSON_GetArrayItem(jobs, 0), "site"), "dc-1");
    cJSON_Delete(resp);
    assert_int_equal(s->reserved_jobs, 0); /* a local job reserved nothing here */
}

/* The results of job id as `outpost job ID --json` shows them. Caller deletes the answer. */
static const cJSON *job_results(hubfix *f, int64_t id, cJSON **resp)
{
    char req[80];
    snprintf(req, sizeof req, "{\"cmd\":\"job\",\"id\":%lld}", (long long)id);
    *resp = hubfix_request(f, req);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(*resp, "ok")));
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(*resp, "data"),
                                            "results");
}

#define OUTPUT_FMT "{\"name\":\"o\",\"data_b64\":\"eA==\",\"sha256\":\"%s\"}"
#define RESULT_FMT                                                                                 \
    "{\"job\":%lld,\"attempt\":1,\"exit_code\":0,\"stdout\":\"42\\n\",\"output_hash\":\"mine\","   \
    "\"outputs\":[%s]}"

/*
 * Every recorded result carries the hash of what it produced, computed by the
 * hub (a site's own "output_hash" is ignored); outputs whose stated hash is
 * not their data's leave it null. The column is added to an older hub.db.
 */
static void test_output_hash_recorded_and_shown(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t good = placed_job(f, "dc-1"), forged = placed_job(f, "dc-1");
    /* "eA==" is "x"; its SHA-256 is 2d71...4881 */
    const char *x_sha = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
    char output[256], text[512];
    for (int i = 0; i < 2; i++) {
        snprintf(output, sizeof output, OUTPUT_FMT, i == 0 ? x_sha : "00");
        snprintf(text, sizeof text, RESULT_FMT, (long long)(i == 0 ? good : forged), output);
        cJSON *item = cJSON_Parse(text);
        assert_non_null(item);
        assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, "dc-1"), item, 0), OP_OK);
        if (i == 0) {
            char want[65];
            assert_int_equal(outhash_result(item, want), OP_OK);
            cJSON *resp;
            const cJSON *r = cJSON_GetArrayItem(job_results(f, good, &resp), 0);
            assert_string_equal(jsonx_str(r, "output_hash"), want);
            cJSON_Delete(resp);
        }
        cJSON_Delete(item);
    }
    cJSON *resp;
    const cJSON *r = cJSON_GetArrayItem(job_results(f, forged, &resp), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "output_hash")));
    cJSON_Delete(resp);
    assert_int_equal(hubfix_state(f, forged), JOB_SUCCEEDED); /* applied as before */
    /* a hub.db from before output hashes: the column comes back, old rows without a hash */
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->db_path, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(raw, "ALTER TABLE results DROP COLUMN output_hash", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);
    hubfix_reopen(f);
    r = cJSON_GetArrayItem(job_results(f, good, &resp), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "output_hash")));
    cJSON_Delete(resp);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_success_applies_once),
        HUB_TEST(test_failure_applies_as_failed),
        HUB_TEST(test_stale_attempt_not_applied),
        HUB_TEST(test_earlier_success_wins),
        HUB_TEST(test_result_from_another_site_refused),
        HUB_TEST(test_unknown_job_and_malformed_not_applied),
        HUB_TEST(test_rolled_back_work_not_counted),
        HUB_TEST(test_local_job_recorded_once),
        HUB_TEST(test_output_hash_recorded_and_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
