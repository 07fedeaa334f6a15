/*
 * The hub's learned run times, without processes: a job that succeeds is
 * learned on the hub's clock (and kept in hub.db across a restart; not a
 * job a site ran on its own, not a rolled-back batch); after enough runs of
 * a program, a new job of it without expected_s, or with a poor one, is
 * placed with the learned run time and its explanation says so; a declared
 * value that agrees is kept; and a parked car's departure keeps a job off
 * the car once its learned run time does not fit before the driver leaves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "core/runtime.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SHA_JOB "{\"kind\":\"exec\",\"command\":[\"sha256sum\",\"in.csv\"]"

/* n runs of sha256sum of about minutes each on a site of cls (declared_s 0: none). */
static void learn_runs(hubfix *f, int n, double minutes, unsigned cls, const char *site,
                       int64_t declared_s)
{
    for (int i = 0; i < n; i++) {
        runtime_obs o = {.kind = "exec",
                         .program = "sha256sum",
                         .class_bit = cls,
                         .site = site,
                         .declared_ms = declared_s * 1000,
                         /* a little spread: 0.97x to 1.03x */
                         .actual_ms = (int64_t)(minutes * 60000 * (0.97 + 0.06 * (i % 7) / 6.0))};
        assert_int_equal(hub__runtimes_observe(f->h, &o), OP_OK);
    }
}

static uint32_t program_runs(hubfix *f)
{
    runtime_stats s;
    runtime_lookup(f->h->runtimes, runtime_key(RUNTIME_PROGRAM, "exec", "sha256sum", 0, NULL), &s);
    return s.runs;
}

static void explanation_of(hubfix *f, int64_t id, char *explanation, size_t len)
{
    char reason[256];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, len);
}

static void started(hubfix *f, const char *site, int64_t id, int64_t attempt)
{
    char text[160];
    snprintf(text, sizeof text,
             "{\"events\":[{\"job\":%lld,\"attempt\":%lld,\"event\":\"started\"}]}", (long long)id,
             (long long)attempt);
    cJSON *body = cJSON_Parse(text);
    hub__handle_events(f->h, hub__find_site(f->h, site), body);
    cJSON_Delete(body);
}

static void result(hubfix *f, const char *site, int64_t id, int64_t attempt)
{
    char text[160];
    snprintf(text, sizeof text, "{\"job\":%lld,\"attempt\":%lld,\"exit_code\":0}", (long long)id,
             (long long)attempt);
    cJSON *item = cJSON_Parse(text);
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, site), item, 0), OP_OK);
    cJSON_Delete(item);
}

/* The whole path: placed, started, succeeded: learned once, kept across a restart. */
static void test_success_is_learned_and_kept(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    for (int i = 0; i < 3; i++) {
        int64_t id = hubfix_submit(f, SHA_JOB ",\"expected_s\":60}");
        hub__place_pass(f->h);
        assert_int_equal(hubfix_state(f, id), JOB_PLACED);
        started(f, "dc-1", id, 1);
        result(f, "dc-1", id, 1);
        assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    }
    /* a failure teaches nothing */
    int64_t failed = hubfix_submit(f, SHA_JOB "}");
    hub__place_pass(f->h);
    cJSON *item = cJSON_Parse("{\"job\":0,\"attempt\":1,\"exit_code\":3}");
    cJSON_SetNumberValue(cJSON_GetObjectItem(item, "job"), (double)failed);
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, "dc-1"), item, 0), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(program_runs(f), 3);
    runtime_stats s;
    assert_int_equal(runtime_lookup(f->h->runtimes,
                                    runtime_key(RUNTIME_SITE, "exec", "sha256sum", 0, "dc-1"), &s),
                     1);
    assert_int_equal(s.runs, 3);
    assert_int_equal(runtime_lookup(f->h->runtimes,
                                    runtime_key(RUNTIME_RATIO, "exec", "sha256sum", 0, NULL), &s),
                     1);
    hubfix_reopen(f);
    assert_int_equal(program_runs(f), 3);
    assert_int_equal(runtime_used(f->h->runtimes), 4); /* program, class, site, ratio */
}

/*
 * The run is timed from the hub's own placement: a site that says "started"
 * just before its result does not make the program look fast. (The
 * placement is moved 10 minutes back in the job's history.)
 */
static void test_late_started_event_does_not_shorten_the_run(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    int64_t id = hubfix_submit(f, SHA_JOB "}");
    hub__place_pass(f->h);
    assert_int_equal(
        hubdb_job_event(f->h->db, id, os_now_ms() - 600000, 1, "dc-1", "placed", "moved back"),
        OP_OK);
    started(f, "dc-1", id, 1);
    result(f, "dc-1", id, 1);
    runtime_stats s;
    runtime_lookup(f->h->runtimes, runtime_key(RUNTIME_PROGRAM, "exec", "sha256sum", 0, NULL), &s);
    assert_int_equal(s.runs, 1);
    double seconds = exp(s.log_ms) / 1000;
    assert_true(seconds > 590 && seconds < 700);
}

/* Hostile or damaged rows in hub.db are skipped at start; the hub starts and learns on. */
static void test_malformed_rows_skipped(void **state)
{
    hubfix *f = *state;
    learn_runs(f, 6, 5, CLASS_DC, "dc-1", 0);
    runtime_row bad = {.key = 12345, .level = RUNTIME_PROGRAM, .label = "bad", .tick = 1};
    bad.stats.runs = 9;
    bad.stats.log_ms = 1e300; /* SQLite stores no NaN; a damaged file may hold anything else */
    assert_int_equal(hubdb_runtime_put(f->h->db, &bad), OP_OK);
    runtime_row odd = bad;
    odd.key = 777;
    odd.stats.log_ms = 10;
    odd.level = 42;
    assert_int_equal(hubdb_runtime_put(f->h->db, &odd), OP_OK);
    hubfix_reopen(f);
    assert_non_null(f->h->runtimes);
    assert_int_equal(runtime_used(f->h->runtimes), 3); /* program, class, site */
    assert_int_equal(program_runs(f), 6);
    learn_runs(f, 1, 5, CLASS_DC, "dc-1", 0);
    assert_int_equal(program_runs(f), 7);
}

static int count_row(void *ctx, const runtime_row *row)
{
    (void)row;
    (*(long *)ctx)++;
    return OP_OK;
}

/* A flood of one-off programs: memory and hub.db both stay within the table's bound. */
static void test_flood_of_programs_stays_bounded(void **state)
{
    hubfix *f = *state;
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    learn_runs(f, 1, 5, CLASS_DC, "dc-1", 0);
    for (int i = 0; i < 3000; i++) {
        char program[32];
        snprintf(program, sizeof program, "junk-%d", i);
        runtime_obs o = {.kind = "exec",
                         .program = program,
                         .class_bit = CLASS_DC,
                         .site = "dc-1",
                         .declared_ms = 1000,
                         .actual_ms = 1000 + i};
        assert_int_equal(hub__runtimes_observe(f->h, &o), OP_OK);
    }
    assert_int_equal(hubdb_commit(f->h->db), OP_OK);
    long rows = 0;
    assert_int_equal(hubdb_runtimes_each(f->h->db, count_row, &rows), OP_OK);
    assert_true(runtime_used(f->h->runtimes) <= HUB_RUNTIMES_CAPACITY);
    assert_int_equal(rows, (long)runtime_used(f->h->runtimes));
    assert_true(rows > HUB_RUNTIMES_CAPACITY / 2);
}

/* A job a site ran on its own was not seen running by the hub: not learned. */
static void test_local_job_not_learned(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    cJSON *item = cJSON_Parse("{\"local_id\":1,\"spec\":" SHA_JOB "},"
                              "\"result\":{\"job\":-1,\"attempt\":1,\"exit_code\":0}}");
    assert_non_null(item);
    assert_int_equal(hub__apply_local(f->h, hub__find_site(f->h, "dc-1"), item), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(f->h->tx_counted.results_applied, 1);
    assert_int_equal(runtime_used(f->h->runtimes), 0);
}

/* What a batch learned goes with it when it is rolled back. */
static void test_rolled_back_batch_forgets_what_it_learned(void **state)
{
    hubfix *f = *state;
    learn_runs(f, 2, 5, CLASS_DC, "dc-1", 0);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    learn_runs(f, 10, 5, CLASS_DC, "dc-1", 0);
    assert_int_equal(program_runs(f), 12);
    hubdb_rollback(f->h->db);
    hub__runtimes_rollback(f->h);
    assert_int_equal(program_runs(f), 2);
}

static void test_job_without_expected_s_gets_the_learned_run_time(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    learn_runs(f, 40, 12, CLASS_DC, "dc-2", 0);
    int64_t id = hubfix_submit(f, SHA_JOB "}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    char explanation[2048];
    explanation_of(f, id, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "placed on dc-1"));
    assert_non_null(strstr(explanation, "; run time 12 min (planned 12 min) learned from 40 runs "
                                        "of sha256sum on data centers"));
    /* other programs plan as before: nothing said */
    int64_t other = hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"gzip\"]}");
    hub__place_pass(f->h);
    explanation_of(f, other, explanation, sizeof explanation);
    assert_null(strstr(explanation, "run time"));
}

static void test_poor_declared_value_replaced_good_one_kept(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 8, 800, 10);
    learn_runs(f, 40, 12, CLASS_DC, "dc-1", 120); /* declared 2 min, ran 12 */
    int64_t poor = hubfix_submit(f, SHA_JOB ",\"expected_s\":120}");
    int64_t good = hubfix_submit(f, SHA_JOB ",\"expected_s\":660}");
    hub__place_pass(f->h);
    char explanation[2048];
    explanation_of(f, poor, explanation, sizeof explanation);
    print_message("%s\n", explanation);
    assert_non_null(strstr(explanation, "run time 12 min (planned 12 min) learned from 40 runs of "
                                        "sha256sum on dc-1; declared 2 min"));
    explanation_of(f, good, explanation, sizeof explanation);
    assert_non_null(
        strstr(explanation, "declared run time 11 min agrees with 40 runs of sha256sum on dc-1"));
}

/*
 * A car whose driver leaves in 40 minutes: a sha256sum job without
 * expected_s goes there while nothing is known; once the fleet has seen it
 * run an hour on cars, the next one is kept off the car, and says why.
 */
static void test_departure_keeps_a_learned_long_job_off_the_car(void **state)
{
    hubfix *f = *state;
    hub_site *car = hubfix_site(f, "car-1", CLASS_CAR, 2, 120, 60);
    car->stay_until_ms = os_now_ms() + 40 * 60000;
    const char *spec = SHA_JOB ",\"site_classes\":[\"car\"],\"deterministic\":true}";
    int64_t first = hubfix_submit(f, spec);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, first), JOB_PLACED);
    learn_runs(f, 40, 60, CLASS_CAR, "car-7", 0);
    int64_t second = hubfix_submit(f, spec);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, second), JOB_QUEUED);
    char explanation[2048];
    explanation_of(f, second, explanation, sizeof explanation);
    print_message("%s\n", explanation);
    assert_non_null(strstr(explanation, "car-1: leaves before the job can finish"));
    assert_non_null(strstr(explanation, "run time 60 min"));
    assert_non_null(strstr(explanation, "learned from 40 runs of sha256sum on cars"));
    /* a job that declares it is short and agrees with nothing learned of its own program still
     * goes */
    int64_t short_job =
        hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"true\"],\"site_classes\":[\"car\"],"
                         "\"deterministic\":true,\"expected_s\":300}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, short_job), JOB_PLACED);
}

/* The same through the fleet index (large fleets). */
static void test_departure_through_the_index(void **state)
{
    hubfix *f = *state;
    f->h->fleet_index_from = 1;
    hub_site *car = hubfix_site(f, "car-1", CLASS_CAR, 2, 120, 60);
    car->stay_until_ms = os_now_ms() + 40 * 60000;
    learn_runs(f, 40, 60, CLASS_CAR, "car-7", 0);
    int64_t id = hubfix_submit(f, SHA_JOB ",\"site_classes\":[\"car\"],\"deterministic\":true}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    char explanation[2048];
    explanation_of(f, id, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "learned from 40 runs of sha256sum"));
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_success_is_learned_and_kept),
        HUB_TEST(test_late_started_event_does_not_shorten_the_run),
        HUB_TEST(test_malformed_rows_skipped),
        HUB_TEST(test_flood_of_programs_stays_bounded),
        HUB_TEST(test_local_job_not_learned),
        HUB_TEST(test_rolled_back_batch_forgets_what_it_learned),
        HUB_TEST(test_job_without_expected_s_gets_the_learned_run_time),
        HUB_TEST(test_poor_declared_value_replaced_good_one_kept),
        HUB_TEST(test_departure_keeps_a_learned_long_job_off_the_car),
        HUB_TEST(test_departure_through_the_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
