/*
 * The hub's placement pass, without processes: a queued job goes to a live
 * site that fits (offer batched, reservation taken); a job too big for every
 * site fails as impossible; a deadline no start can meet fails with the
 * deadline reason; a job that must wait stays queued with its explanation.
 * A pass with nothing queued leaves the fleet view alone; the next pass with
 * a job refreshes it, so the job is placed on what the sites are now.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "core/jobstate.h"

#include <stdio.h>
#include <string.h>

static void test_queued_job_placed_on_fitting_live_site(void **state)
{
    hubfix *f = *state;
    hub_site *pod = hubfix_site(f, "pod-1", CLASS_POD, 2, 200, 10);
    hub_site *dc = hubfix_site(f, "dc-1", CLASS_DC, 8, 800, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"resources\":{\"cores\":4}}");
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    hub__place_pass(f->h);
    hubdb_job job;
    assert_int_equal(hubdb_job_get(f->h->db, id, &job), OP_OK);
    assert_int_equal(job.state, JOB_PLACED);
    assert_int_equal(job.attempt, 1);
    assert_string_equal(job.site, "dc-1");
    assert_int_equal(dc->reserved_cores, 4);
    assert_int_equal(dc->reserved_jobs, 1);
    assert_int_equal(dc->attempts_placed, 1);
    assert_int_equal(pod->reserved_jobs, 0);
    /* the offer waits in dc-1's batch for the commit */
    assert_int_equal(cJSON_GetArraySize(dc->offers), 1);
    const cJSON *offer = cJSON_GetArrayItem(dc->offers, 0);
    int64_t offered = 0, attempt = 0;
    assert_int_equal(jsonx_int(offer, "job", 1, INT64_MAX, &offered), OP_OK);
    assert_int_equal(jsonx_int(offer, "attempt", 1, INT64_MAX, &attempt), OP_OK);
    assert_int_equal(offered, id);
    assert_int_equal(attempt, 1);
    assert_null(pod->offers);
    char reason[256], explanation[2048];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "placed on dc-1"));
    assert_non_null(strstr(explanation, "; 2 candidates"));
}

static void test_idle_pass_skips_the_view_and_the_next_one_sees_changes(void **state)
{
    hubfix *f = *state;
    hub_site *a = hubfix_site(f, "dc-a", CLASS_DC, 8, 800, 10);
    hub_site *b = hubfix_site(f, "dc-b", CLASS_DC, 2, 200, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"resources\":{\"cores\":2}}");
    hub__place_pass(f->h); /* builds the view, places the job */
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    uint64_t passes = f->h->place_passes, refiled = f->h->view_refiled;
    a->alive = 0; /* a site changes while nothing is queued */
    hub__place_pass(f->h);
    assert_int_equal(f->h->place_skipped, 1);
    assert_int_equal(f->h->place_passes, passes);
    assert_int_equal(f->h->view_refiled, refiled); /* the view was not touched */
    /* a job now: the pass refreshes the view first, so the lost site is not chosen */
    int64_t next = hubfix_submit(f, "{\"kind\":\"noop\",\"resources\":{\"cores\":2}}");
    hub__place_pass(f->h);
    assert_int_equal(f->h->place_passes, passes + 1);
    assert_true(f->h->view_refiled > refiled);
    hubdb_job job;
    assert_int_equal(hubdb_job_get(f->h->db, next, &job), OP_OK);
    assert_int_equal(job.state, JOB_PLACED);
    assert_string_equal(job.site, "dc-b");
    assert_int_equal(b->reserved_jobs, 1);
}

static void test_lost_site_not_chosen_job_waits(void **state)
{
    hubfix *f = *state;
    hub_site *dc = hubfix_site(f, "dc-1", CLASS_DC, 8, 800, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\"}");
    dc->alive = 0;
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    assert_null(dc->offers);
    char reason[256], explanation[2048];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "waiting: no site can take it now among 1"));
    assert_non_null(strstr(explanation, "dc-1: lost"));
}

static void test_too_big_for_every_site_fails_impossible(void **state)
{
    hubfix *f = *state;
    /* submitted while the fleet was empty (nothing to check it against), then small sites */
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"resources\":{\"cores\":16}}");
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_FAILED);
    char reason[256], explanation[2048];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_string_equal(reason, "no site in the fleet can run it");
    assert_non_null(strstr(explanation, "impossible"));
    assert_non_null(strstr(explanation, "too small"));
}

static void test_unreachable_deadline_fails_with_deadline_reason(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    /* a job that needs a minute with half a second left */
    int64_t now = os_now_ms(), id = 0;
    hubdb_new_job row = {.kind = "noop",
                         .spec_json = "{\"kind\":\"noop\"}",
                         .state = JOB_QUEUED,
                         .cores = 1,
                         .memory_mb = 256,
                         .class_mask = CLASS_ALL,
                         .max_attempts = 3,
                         .submitted_by = "op-test",
                         .submitted_at = now,
                         .expected_ms = 60000,
                         .deadline_at = now + 500};
    assert_int_equal(hubdb_job_insert(f->h->db, &row, &id), OP_OK);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_FAILED);
    char reason[256], explanation[2048];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_string_equal(reason, "its deadline can no longer be met");
    assert_non_null(strstr(explanation, "deadline cannot be met"));
}

/* The same deadline through the fleet index (large fleets) fails the same way. */
static void test_deadline_reason_through_the_index(void **state)
{
    hubfix *f = *state;
    f->h->fleet_index_from = 1;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    int64_t now = os_now_ms(), id = 0;
    hubdb_new_job row = {.kind = "noop",
                         .spec_json = "{\"kind\":\"noop\"}",
                         .state = JOB_QUEUED,
                         .cores = 1,
                         .memory_mb = 256,
                         .class_mask = CLASS_ALL,
                         .max_attempts = 3,
                         .submitted_at = now,
                         .expected_ms = 60000,
                         .deadline_at = now + 500};
    assert_int_equal(hubdb_job_insert(f->h->db, &row, &id), OP_OK);
    int64_t small = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_FAILED);
    assert_int_equal(hubfix_state(f, small), JOB_PLACED);
    char reason[256], explanation[2048];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_string_equal(reason, "its deadline can no longer be met");
    hubfix_job_text(f, small, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, " checked exactly"));
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_queued_job_placed_on_fitting_live_site),
        HUB_TEST(test_lost_site_not_chosen_job_waits),
        HUB_TEST(test_idle_pass_skips_the_view_and_the_next_one_sees_changes),
        HUB_TEST(test_too_big_for_every_site_fails_impossible),
        HUB_TEST(test_unreachable_deadline_fails_with_deadline_reason),
        HUB_TEST(test_deadline_reason_through_the_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
