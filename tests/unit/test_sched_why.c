/*
 * Unit tests for sched's reason codes: every decision carries why a job was
 * not placed (the deadline, or the filter that stopped the most sites of
 * the outcome's kind), the same code from the scan and from the fleet
 * index, and the explanation's words follow the code (and the count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/jobspec.h"
#include "core/sched.h"

#include <string.h>

static sched_site site(const char *id, unsigned class_bit, int cores)
{
    return (sched_site){.id = id,
                        .class_bit = class_bit,
                        .alive = 1,
                        .cores = cores,
                        .free_cores = cores,
                        .memory_mb = 4096LL * cores,
                        .free_memory_mb = 4096LL * cores,
                        .headroom_watts = 100.0,
                        .watts_per_core = 10.0};
}

static sched_job job_of(int cores)
{
    return (sched_job){.cores = cores,
                       .memory_mb = 256,
                       .class_mask = CLASS_ALL,
                       .origin_index = -1,
                       .origin_region = -1,
                       .now_ms = 1000000};
}

/* Decides with the scan and with the index; both must agree on outcome and reason. */
static sched_why decide(sched_site *sites, size_t n, const sched_job *job, int outcome,
                        const char *words)
{
    sched_decision scan, fast;
    assert_int_equal(sched_place(sites, n, job, &scan), OP_OK);
    sched_fleet *f = sched_fleet_new(sites, n);
    assert_non_null(f);
    assert_int_equal(sched_fleet_place(f, job, 1, &fast), OP_OK);
    if (scan.outcome != outcome || !strstr(scan.explanation, words))
        print_error("scan: outcome %d why %d: %s\n", scan.outcome, scan.why, scan.explanation);
    assert_int_equal(scan.outcome, outcome);
    assert_int_equal(fast.outcome, outcome);
    assert_int_equal(fast.why, scan.why);
    assert_non_null(strstr(scan.explanation, words));
    sched_why why = scan.why;
    sched_decision_clear(&scan);
    sched_decision_clear(&fast);
    sched_fleet_free(f);
    return why;
}

static void test_placed_has_no_reason(void **state)
{
    sched_site sites[] = {site("a", CLASS_DC, 4)};
    sched_job job = job_of(1);
    assert_int_equal(decide(sites, 1, &job, SCHED_PLACED, "; 1 candidate"), SCHED_WHY_NONE);
    sched_site two[] = {site("a", CLASS_DC, 4), site("b", CLASS_DC, 4)};
    assert_int_equal(decide(two, 2, &job, SCHED_PLACED, "; 2 candidates"), SCHED_WHY_NONE);
}

static void test_deadline_is_its_own_reason(void **state)
{
    sched_site sites[] = {site("a", CLASS_DC, 4)};
    sched_job job = job_of(1);
    job.duration_ms = 60000;
    job.deadline_ms = job.now_ms + 1000;
    assert_int_equal(decide(sites, 1, &job, SCHED_IMPOSSIBLE, "its deadline cannot be met"),
                     SCHED_WHY_DEADLINE);
}

static void test_too_small_everywhere(void **state)
{
    sched_site sites[] = {site("a", CLASS_DC, 2), site("b", CLASS_POD, 4)};
    sched_job job = job_of(8);
    assert_int_equal(decide(sites, 2, &job, SCHED_IMPOSSIBLE, "can ever run it"),
                     SCHED_WHY_TOO_SMALL);
}

static void test_no_site_of_its_class(void **state)
{
    sched_site sites[] = {site("a", CLASS_POD, 4)};
    sched_job job = job_of(1);
    job.class_mask = CLASS_DC;
    assert_int_equal(decide(sites, 1, &job, SCHED_IMPOSSIBLE, "can ever run it"), SCHED_WHY_CLASS);
}

static void test_waits_for_the_commonest_passing_reason(void **state)
{
    sched_site sites[] = {site("a", CLASS_DC, 4), site("b", CLASS_DC, 4), site("c", CLASS_DC, 4)};
    sites[0].alive = 0;
    sites[1].alive = 0;
    sites[2].headroom_watts = 5;
    sched_job job = job_of(1);
    sched_decision d;
    assert_int_equal(sched_place(sites, 3, &job, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_WAIT);
    assert_int_equal(d.why, SCHED_WHY_LOST);
    assert_non_null(strstr(d.explanation, "waiting"));
    sched_decision_clear(&d);
}

static void test_held_site_waits_with_its_reason(void **state)
{
    /* A site the hub holds work back from (quarantined, being probed) is passed over, named
     * with the hub's reason; the job waits (it may be cleared) rather than failing. */
    sched_site sites[] = {site("a", CLASS_DC, 4)};
    sites[0].held = "quarantined: forged probe answer";
    sched_job job = job_of(1);
    sched_decision d;
    assert_int_equal(sched_place(sites, 1, &job, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_WAIT);
    assert_int_equal(d.why, SCHED_WHY_HELD);
    assert_non_null(strstr(d.explanation, "held=1"));
    assert_non_null(strstr(d.explanation, "a: held (quarantined: forged probe answer)"));
    sched_decision_clear(&d);
    /* the index files a held site with no free slot, as it does a lost one: it waits too */
    sched_fleet *f = sched_fleet_new(sites, 1);
    assert_non_null(f);
    assert_int_equal(sched_fleet_place(f, &job, 1, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_WAIT);
    sched_decision_clear(&d);
    sched_fleet_free(f);
    /* held "" is not held; another site takes the job */
    sched_site two[] = {site("a", CLASS_DC, 4), site("b", CLASS_DC, 2)};
    two[0].held = "quarantined";
    two[1].held = "";
    assert_int_equal(sched_place(two, 2, &job, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_PLACED);
    assert_int_equal(d.site_index, 1);
    sched_decision_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placed_has_no_reason),
        cmocka_unit_test(test_deadline_is_its_own_reason),
        cmocka_unit_test(test_too_small_everywhere),
        cmocka_unit_test(test_no_site_of_its_class),
        cmocka_unit_test(test_waits_for_the_commonest_passing_reason),
        cmocka_unit_test(test_held_site_waits_with_its_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
