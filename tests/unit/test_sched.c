/*
 * Unit tests for sched: the placement policy (least loaded with power
 * headroom), every filter and the outcome it leads to (wait or
 * impossible), the written explanation, reservations and determinism.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "jobspec.h"
#include "sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An idle, alive site: cores all free, 4 GB per core, 100 W headroom, 10 W per core. */
static sched_site idle_site(const char *id, unsigned class_bit, int cores)
{
    return (sched_site){.id = id,
                        .class_bit = class_bit,
                        .alive = 1,
                        .cores = cores,
                        .free_cores = cores,
                        .memory_mb = 4096LL * cores,
                        .free_memory_mb = 4096LL * cores,
                        .headroom_watts = 100.0,
                        .watts_per_core = 10.0,
                        .running_jobs = 0};
}

static sched_job basic_job(int cores)
{
    return (sched_job){.cores = cores,
                       .memory_mb = 256,
                       .class_mask = CLASS_ALL,
                       .origin = NULL,
                       .site_private = 0,
                       .excluded = NULL};
}

/* Places and checks the outcome and winner; returns the decision (caller clears). */
static sched_decision place(const sched_site *sites, size_t n, const sched_job *job, int outcome,
                            int winner)
{
    sched_decision d;
    memset(&d, 0, sizeof d);
    assert_int_equal(sched_place(sites, n, job, &d), OP_OK);
    assert_non_null(d.explanation);
    if (d.outcome != outcome || d.site_index != winner)
        print_error("outcome %d index %d: %s\n", d.outcome, d.site_index, d.explanation);
    assert_int_equal(d.outcome, outcome);
    assert_int_equal(d.site_index, winner);
    return d;
}

static void assert_mentions(const sched_decision *d, const char *needle)
{
    if (!strstr(d->explanation, needle))
        print_error("'%s' not in explanation: %s\n", needle, d->explanation);
    assert_non_null(strstr(d->explanation, needle));
}

static void test_least_loaded_wins(void **state)
{
    sched_site sites[3] = {idle_site("s-a", CLASS_POD, 8), idle_site("s-b", CLASS_CAR, 8),
                           idle_site("s-c", CLASS_DC, 8)};
    sites[0].free_cores = 2;
    sites[1].free_cores = 6;
    sites[2].free_cores = 4;
    sched_job job = basic_job(1);
    sched_decision d = place(sites, 3, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "placed on s-b");
    assert_mentions(&d, "3 candidates");
    /* 0.7 x (6-1)/8 + 0.3 x (100-10)/100 */
    assert_true(fabs(d.score - (0.7 * 5.0 / 8.0 + 0.3 * 0.9)) < 1e-9);
    sched_decision_clear(&d);
    assert_null(d.explanation);
}

static void test_power_headroom_breaks_equal_load(void **state)
{
    sched_site sites[2] = {idle_site("low", CLASS_POD, 4), idle_site("high", CLASS_POD, 4)};
    sites[0].headroom_watts = 50;
    sites[1].headroom_watts = 400;
    sched_job job = basic_job(2);
    sched_decision d = place(sites, 2, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "placed on high");
    sched_decision_clear(&d);
}

static void test_filter_lost(void **state)
{
    sched_site sites[2] = {idle_site("gone", CLASS_POD, 8), idle_site("here", CLASS_POD, 2)};
    sites[0].alive = 0;
    sched_job job = basic_job(1);
    sched_decision d = place(sites, 2, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "gone: lost");
    sched_decision_clear(&d);
    /* Lost is transient: with no other site the job waits. */
    d = place(sites, 1, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "lost=1");
    sched_decision_clear(&d);
}

static void test_filter_class(void **state)
{
    sched_site sites[2] = {idle_site("car-1", CLASS_CAR, 16), idle_site("pod-1", CLASS_POD, 2)};
    sched_job job = basic_job(1);
    job.class_mask = CLASS_POD | CLASS_DC;
    sched_decision d = place(sites, 2, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "car-1: class not allowed");
    sched_decision_clear(&d);
    d = place(sites, 1, &job, SCHED_IMPOSSIBLE, -1);
    assert_mentions(&d, "class not allowed=1");
    sched_decision_clear(&d);
}

static void test_filter_too_small(void **state)
{
    sched_site sites[2] = {idle_site("tiny", CLASS_POD, 2), idle_site("thin", CLASS_POD, 16)};
    sites[1].memory_mb = 512;
    sites[1].free_memory_mb = 512;
    sched_job job = basic_job(4);
    job.memory_mb = 1024;
    /* Too few cores on one, too little memory on the other: never runnable. */
    sched_decision d = place(sites, 2, &job, SCHED_IMPOSSIBLE, -1);
    assert_mentions(&d, "impossible");
    assert_mentions(&d, "tiny: too small (2 cores/8192 MB)");
    assert_mentions(&d, "thin: too small");
    assert_mentions(&d, "too small=2");
    sched_decision_clear(&d);

    /* Too small wins over lost: a lost site that could never run it does not make it wait. */
    sites[0].alive = 0;
    d = place(sites, 1, &job, SCHED_IMPOSSIBLE, -1);
    assert_mentions(&d, "too small");
    sched_decision_clear(&d);
}

static void test_filter_busy(void **state)
{
    sched_site sites[1] = {idle_site("full", CLASS_DC, 8)};
    sites[0].free_cores = 1;
    sched_job job = basic_job(2);
    sched_decision d = place(sites, 1, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "waiting");
    assert_mentions(&d, "full: busy (1 cores/32768 MB free)");
    sched_decision_clear(&d);

    sites[0].free_cores = 8;
    sites[0].free_memory_mb = 100; /* memory is the busy resource */
    d = place(sites, 1, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "busy");
    sched_decision_clear(&d);
}

static void test_filter_power(void **state)
{
    sched_site sites[2] = {idle_site("dim", CLASS_POD, 8), idle_site("bright", CLASS_POD, 8)};
    sites[0].headroom_watts = 15; /* needs 2 x 10 W */
    sites[1].free_cores = 3;      /* more loaded, but has the power */
    sched_job job = basic_job(2);
    sched_decision d = place(sites, 2, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "placed on bright");
    assert_mentions(&d, "power headroom");
    assert_mentions(&d, "dim: power headroom (15 W < 20 W needed)");
    assert_mentions(&d, "filtered 1:");
    sched_decision_clear(&d);

    d = place(sites, 1, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "power headroom=1");
    sched_decision_clear(&d);

    /* Exactly enough headroom is enough. */
    sites[0].headroom_watts = 20;
    d = place(sites, 1, &job, SCHED_PLACED, 0);
    sched_decision_clear(&d);
}

static void test_site_private_only_on_origin(void **state)
{
    sched_site sites[3] = {idle_site("s1", CLASS_POD, 16), idle_site("s2", CLASS_POD, 4),
                           idle_site("s3", CLASS_POD, 16)};
    sched_job job = basic_job(1);
    job.site_private = 1;
    job.origin = "s2";
    sched_decision d = place(sites, 3, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "placed on s2");
    assert_mentions(&d, "s1: data residency");
    assert_mentions(&d, "s3: data residency");
    sched_decision_clear(&d);

    /* Origin busy: wait for it rather than move the data. */
    sites[1].free_cores = 0;
    d = place(sites, 3, &job, SCHED_WAIT, -1);
    sched_decision_clear(&d);

    /* Origin not in the fleet (or unset): never runnable. */
    job.origin = "elsewhere";
    d = place(sites, 3, &job, SCHED_IMPOSSIBLE, -1);
    assert_mentions(&d, "data residency=3");
    sched_decision_clear(&d);
    job.origin = NULL;
    d = place(sites, 3, &job, SCHED_IMPOSSIBLE, -1);
    sched_decision_clear(&d);

    /* An origin without site_private is only a hint: any site may run it. */
    job.site_private = 0;
    job.origin = "s2";
    d = place(sites, 3, &job, SCHED_PLACED, 0);
    sched_decision_clear(&d);
}

static void test_excluded(void **state)
{
    sched_site sites[3] = {idle_site("s1", CLASS_POD, 16), idle_site("s2", CLASS_POD, 4),
                           idle_site("s3", CLASS_POD, 8)};
    const char *const excluded[] = {"s1", "s9", NULL};
    sched_job job = basic_job(1);
    job.excluded = excluded;
    sched_decision d = place(sites, 3, &job, SCHED_PLACED, 2);
    assert_mentions(&d, "s1: refused or lost this job before");
    sched_decision_clear(&d);

    /* Excluded everywhere: it can never be placed. */
    const char *const all[] = {"s3", "s2", "s1", NULL};
    job.excluded = all;
    d = place(sites, 3, &job, SCHED_IMPOSSIBLE, -1);
    assert_mentions(&d, "refused or lost this job before=3");
    sched_decision_clear(&d);

    /* An empty list excludes nothing. */
    const char *const none[] = {NULL};
    job.excluded = none;
    d = place(sites, 3, &job, SCHED_PLACED, 0);
    sched_decision_clear(&d);
}

static void test_mixed_reasons_wait(void **state)
{
    /* One permanent and one transient reason: the job waits. */
    sched_site sites[3] = {idle_site("small", CLASS_POD, 1), idle_site("car", CLASS_CAR, 32),
                           idle_site("busy", CLASS_POD, 8)};
    sites[2].free_cores = 0;
    sched_job job = basic_job(2);
    job.class_mask = CLASS_POD;
    sched_decision d = place(sites, 3, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "filtered 3:");
    assert_mentions(&d, "class not allowed=1");
    assert_mentions(&d, "too small=1");
    assert_mentions(&d, "busy=1");
    assert_mentions(&d, "small: too small");
    assert_mentions(&d, "car: class not allowed");
    assert_mentions(&d, "busy: busy");
    sched_decision_clear(&d);
}

static void test_empty_fleet(void **state)
{
    sched_job job = basic_job(1);
    sched_decision d;
    memset(&d, 0, sizeof d);
    assert_int_equal(sched_place(NULL, 0, &job, &d), OP_OK);
    assert_int_not_equal(d.outcome, SCHED_PLACED);
    assert_int_equal(d.outcome, SCHED_IMPOSSIBLE);
    assert_int_equal(d.site_index, -1);
    assert_non_null(d.explanation);
    assert_mentions(&d, "impossible");
    sched_decision_clear(&d);
}

static void test_reserve(void **state)
{
    sched_site s = idle_site("s", CLASS_POD, 8);
    sched_job job = basic_job(3);
    job.memory_mb = 1000;
    assert_true(sched_job_watts(&s, &job) == 30.0);
    sched_reserve(&s, &job);
    assert_int_equal(s.free_cores, 5);
    assert_int_equal(s.free_memory_mb, 4096 * 8 - 1000);
    assert_true(s.headroom_watts == 70.0);
    assert_int_equal(s.running_jobs, 1);
    assert_int_equal(s.cores, 8); /* totals do not change */
    assert_int_equal(s.memory_mb, 4096 * 8);
    sched_reserve(&s, &job);
    assert_int_equal(s.free_cores, 2);
    assert_true(s.headroom_watts == 40.0);
    assert_int_equal(s.running_jobs, 2);
    /* No longer room for a third. */
    sched_decision d = place(&s, 1, &job, SCHED_WAIT, -1);
    sched_decision_clear(&d);
}

static void test_batch_placement_spreads(void **state)
{
    sched_site sites[2] = {idle_site("a", CLASS_POD, 4), idle_site("b", CLASS_POD, 4)};
    sites[0].headroom_watts = sites[1].headroom_watts = 1000;
    sched_job job = basic_job(1);
    int expected[] = {0, 1, 0, 1, 0, 1, 0, 1};
    for (int i = 0; i < 8; i++) {
        sched_decision d = place(sites, 2, &job, SCHED_PLACED, expected[i]);
        sched_reserve(&sites[d.site_index], &job);
        sched_decision_clear(&d);
    }
    assert_int_equal(sites[0].free_cores, 0);
    assert_int_equal(sites[1].free_cores, 0);
    sched_decision d = place(sites, 2, &job, SCHED_WAIT, -1);
    sched_decision_clear(&d);
}

static void test_ties_broken_by_lower_index(void **state)
{
    sched_site sites[4] = {idle_site("w", CLASS_POD, 4), idle_site("x", CLASS_POD, 4),
                           idle_site("y", CLASS_POD, 4), idle_site("z", CLASS_POD, 4)};
    sched_job job = basic_job(1);
    sched_decision d = place(sites, 4, &job, SCHED_PLACED, 0);
    char first[4096];
    snprintf(first, sizeof first, "%s", d.explanation);
    sched_decision_clear(&d);
    /* Same inputs, same decision and same text. */
    for (int i = 0; i < 5; i++) {
        d = place(sites, 4, &job, SCHED_PLACED, 0);
        assert_string_equal(d.explanation, first);
        sched_decision_clear(&d);
    }
    /* The first equal site wins wherever it is. */
    sites[0].free_cores = 1;
    d = place(sites, 4, &job, SCHED_PLACED, 1);
    sched_decision_clear(&d);
    sites[1].alive = 0;
    d = place(sites, 4, &job, SCHED_PLACED, 2);
    sched_decision_clear(&d);
}

static void test_many_filtered_sites_bounded_text(void **state)
{
    enum { N = 40 };
    sched_site sites[N];
    char ids[N][80];
    for (int i = 0; i < N; i++) {
        /* Long ids: only the first few are named, the rest are counted. */
        snprintf(ids[i], sizeof ids[i], "site-%02d-%s", i,
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        sites[i] = idle_site(ids[i], CLASS_POD, 4);
        sites[i].alive = 0;
    }
    sched_job job = basic_job(1);
    sched_decision d = place(sites, N, &job, SCHED_WAIT, -1);
    assert_true(strlen(d.explanation) < 4096);
    assert_mentions(&d, "lost=40");
    assert_mentions(&d, "; ...]");
    assert_mentions(&d, ids[0]);
    assert_mentions(&d, ids[11]);
    assert_null(strstr(d.explanation, ids[12])); /* only the first 12 are named */
    sched_decision_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_loaded_wins),
        cmocka_unit_test(test_power_headroom_breaks_equal_load),
        cmocka_unit_test(test_filter_lost),
        cmocka_unit_test(test_filter_class),
        cmocka_unit_test(test_filter_too_small),
        cmocka_unit_test(test_filter_busy),
        cmocka_unit_test(test_filter_power),
        cmocka_unit_test(test_site_private_only_on_origin),
        cmocka_unit_test(test_excluded),
        cmocka_unit_test(test_mixed_reasons_wait),
        cmocka_unit_test(test_empty_fleet),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_batch_placement_spreads),
        cmocka_unit_test(test_ties_broken_by_lower_index),
        cmocka_unit_test(test_many_filtered_sites_bounded_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
