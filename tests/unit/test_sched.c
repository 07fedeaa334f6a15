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

#include "base/err.h"
#include "core/jobspec.h"
#include "core/sched.h"

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
    /* 0.5 x (0.7 x (6-1)/8 + 0.3 x (100-10)/100) + 0.2 green + 0.2 reliable + 0.1 near */
    assert_true(fabs(d.score - (0.5 * (0.7 * 5.0 / 8.0 + 0.3 * 0.9) + 0.5)) < 1e-9);
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

/* ---------- power-aware placement: time, forecasts, departures, grid signals, the fleet index
 * ---------- */

static sched_job timed_job(int cores, int64_t duration_ms, int64_t deadline_ms)
{
    sched_job j = basic_job(cores);
    j.now_ms = 1000000;
    j.duration_ms = duration_ms;
    j.deadline_ms = deadline_ms ? 1000000 + deadline_ms : 0;
    j.origin_index = -1;
    j.origin_region = -1;
    return j;
}

static void test_deadline_cannot_be_met(void **state)
{
    sched_site sites[1] = {idle_site("big", CLASS_DC, 64)};
    sched_job job = timed_job(1, 3600000, 1800000); /* 1 h of work, 30 min left */
    sched_decision d = place(sites, 1, &job, SCHED_IMPOSSIBLE, -1);
    assert_mentions(&d, "deadline cannot be met (needs 3600 s, 1800 s left)");
    sched_decision_clear(&d);
}

static void test_residency_origin_offline_waits_with_reason(void **state)
{
    sched_site sites[2] = {idle_site("home", CLASS_DC, 8), idle_site("other", CLASS_DC, 64)};
    sites[0].alive = 0;
    sched_job job = timed_job(1, 60000, 0);
    job.site_private = 1;
    job.origin = "home";
    sched_decision d = place(sites, 2, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "home: lost");
    assert_mentions(&d, "other: data residency");
    sched_decision_clear(&d);
}

static void test_no_power_anywhere_waits_with_reason(void **state)
{
    sched_site sites[3] = {idle_site("p1", CLASS_POD, 8), idle_site("p2", CLASS_POD, 8),
                           idle_site("c1", CLASS_CAR, 4)};
    for (int i = 0; i < 3; i++)
        sites[i].headroom_watts = 0;
    sched_job job = timed_job(1, 60000, 0);
    sched_decision d = place(sites, 3, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "power headroom=3");
    assert_mentions(&d, "p1: power headroom (0 W < 10 W needed)");
    sched_decision_clear(&d);
}

static void test_forecast_over_duration(void **state)
{
    /* headroom now for both; "dipping" forecasts a dip within 2 h (chargers fill up) */
    sched_site sites[2] = {idle_site("dipping", CLASS_POD, 8), idle_site("steady", CLASS_POD, 2)};
    for (int i = 0; i < 2; i++) {
        sites[i].has_forecast = 1;
        for (int k = 0; k < SCHED_HORIZONS; k++)
            sites[i].horizon_watts[k] = 100;
    }
    for (int k = sched_horizon_for(2 * 3600000LL); k < SCHED_HORIZONS; k++)
        sites[0].horizon_watts[k] = 5;
    sched_job short_job = timed_job(1, 20 * 60000, 0);
    sched_decision d = place(sites, 2, &short_job, SCHED_PLACED, 0); /* least loaded */
    sched_decision_clear(&d);
    sched_job long_job = timed_job(1, 90 * 60000, 0);
    d = place(sites, 2, &long_job, SCHED_PLACED, 1);
    assert_mentions(&d, "dipping: forecast headroom (5 W over the next 120 min < 10 W)");
    sched_decision_clear(&d);
    sites[1].horizon_watts[sched_horizon_for(90 * 60000)] = 0;
    d = place(sites, 2, &long_job, SCHED_WAIT, -1);
    sched_decision_clear(&d);
}

static void test_leaving_car_gets_short_jobs_only(void **state)
{
    sched_site sites[2] = {idle_site("car", CLASS_CAR, 8), idle_site("pod", CLASS_POD, 1)};
    sites[0].stay_until_ms = 1000000 + 45 * 60000; /* the driver leaves in 45 min */
    sched_job short_job = timed_job(1, 30 * 60000, 0);
    sched_decision d = place(sites, 2, &short_job, SCHED_PLACED, 0);
    sched_decision_clear(&d);
    sched_job long_job = timed_job(1, 60 * 60000, 0);
    d = place(sites, 2, &long_job, SCHED_PLACED, 1);
    assert_mentions(&d, "car: leaves before the job can finish (in 2700 s; the job needs 3600 s)");
    sched_decision_clear(&d);
}

/* A run time known per site (learned: cars run it in 2 h) is what the departure is checked against.
 */
static int64_t two_hours_on_cars(void *ctx, const sched_site *site)
{
    (void)ctx;
    return site->class_bit == CLASS_CAR ? 120 * 60000 : 0;
}

static void test_per_site_run_time_checked_against_departure(void **state)
{
    sched_site sites[2] = {idle_site("car", CLASS_CAR, 8), idle_site("pod", CLASS_POD, 1)};
    sites[0].stay_until_ms = 1000000 + 45 * 60000;
    sched_job job = timed_job(1, 10 * 60000, 0); /* 10 min anywhere else */
    job.duration_on = two_hours_on_cars;
    sched_decision d = place(sites, 2, &job, SCHED_PLACED, 1);
    assert_mentions(&d, "car: leaves before the job can finish (in 2700 s; the job needs 7200 s)");
    sched_decision_clear(&d);
    /* the same through the fleet index */
    sched_fleet *f = sched_fleet_new(sites, 2);
    assert_non_null(f);
    assert_int_equal(sched_fleet_place(f, &job, 1, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_PLACED);
    assert_int_equal(d.site_index, 1);
    sched_decision_clear(&d);
    sched_fleet_free(f);
}

static void test_deferrable_waits_for_cheaper_power_inside_deadline(void **state)
{
    sched_site sites[1] = {idle_site("pod", CLASS_POD, 8)};
    sites[0].grid_rank = 0.99; /* the dearest hour of the day */
    sched_job job = timed_job(1, 30 * 60000, 6 * 3600000LL);
    job.deferrable = 1;
    sched_decision d = place(sites, 1, &job, SCHED_WAIT, -1);
    assert_mentions(&d, "grid power dear now (deferrable)");
    sched_decision_clear(&d);
    /* little slack left: it runs now, dear or not */
    job.deadline_ms = job.now_ms + 40 * 60000;
    d = place(sites, 1, &job, SCHED_PLACED, 0);
    sched_decision_clear(&d);
    /* urgent (not deferrable) jobs never wait for price */
    job.deadline_ms = job.now_ms + 6 * 3600000LL;
    job.deferrable = 0;
    d = place(sites, 1, &job, SCHED_PLACED, 0);
    sched_decision_clear(&d);
}

static void test_green_and_reliable_sites_preferred(void **state)
{
    sched_site sites[3] = {idle_site("dear", CLASS_POD, 8), idle_site("flaky", CLASS_POD, 8),
                           idle_site("good", CLASS_POD, 8)};
    sites[0].grid_rank = 0.8;
    sites[1].failure_rate = 0.5;
    sched_job job = timed_job(1, 60000, 0);
    sched_decision d = place(sites, 3, &job, SCHED_PLACED, 2);
    sched_decision_clear(&d);
}

/* A seeded fleet of pods, cars and data centers in 4 regions. */
static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_fleet(sched_site *sites, size_t n)
{
    static const unsigned classes[3] = {CLASS_POD, CLASS_CAR, CLASS_DC};
    for (size_t i = 0; i < n; i++) {
        sites[i] = idle_site(NULL, classes[rng() % 3], 1 + (int)(rng() % 16));
        sites[i].free_cores = (int)(rng() % (uint64_t)(sites[i].cores + 1));
        sites[i].headroom_watts = (double)(rng() % 200);
        sites[i].region = (int)(rng() % 4);
        sites[i].grid_rank = (double)(rng() % 100) / 100.0;
        sites[i].has_forecast = 1;
        double w = sites[i].headroom_watts;
        for (int k = 0; k < SCHED_HORIZONS; k++) {
            if (rng() % 4 == 0) w = w * (double)(rng() % 100) / 100.0;
            sites[i].horizon_watts[k] = (float)w;
        }
        if (sites[i].class_bit == CLASS_CAR) {
            /* filed honestly: no power past the departure */
            sites[i].stay_until_ms = 1000000 + (int64_t)(rng() % 36000000);
            for (int k = 0; k < SCHED_HORIZONS; k++)
                if (1000000 + sched_horizon_ms[k] > sites[i].stay_until_ms)
                    sites[i].horizon_watts[k] = 0;
        }
        sites[i].alive = rng() % 10 != 0;
    }
}

/*
 * The index finds a site whenever the scan does, the site it finds passes
 * the same filter, and its reservations keep the index and the sites in step.
 */
static void test_fleet_index_agrees_with_scan(void **state)
{
    enum { N = 2000 };
    sched_site *sites = calloc(N, sizeof *sites);
    assert_non_null(sites);
    random_fleet(sites, N);
    sched_fleet *f = sched_fleet_new(sites, N);
    assert_non_null(f);
    int placed = 0, waited = 0;
    for (int t = 0; t < 6000; t++) {
        sched_job job = timed_job(1 + (int)(rng() % 4), (int64_t)(rng() % (6 * 3600000ULL)), 0);
        job.class_mask = 1 + (unsigned)(rng() % 7);
        job.origin_region = (int)(rng() % 5) - 1;
        sched_decision scan, fast;
        assert_int_equal(sched_place(sites, N, &job, &scan), OP_OK);
        assert_int_equal(sched_fleet_place(f, &job, 0, &fast), OP_OK);
        if (scan.outcome != fast.outcome)
            print_error("job %d cores %d mask %u: scan %s / fast outcome %d\n", t, job.cores,
                        job.class_mask, scan.explanation, fast.outcome);
        assert_int_equal(scan.outcome, fast.outcome);
        if (fast.outcome == SCHED_PLACED) {
            assert_int_equal(sched_filter(&sites[fast.site_index], &job, NULL, 0), -1);
            /* a sample, not the whole fleet: never better than the scan's best */
            assert_true(fast.score <= scan.score + 1e-12);
            sched_fleet_reserve(f, (size_t)fast.site_index, &job);
            placed++;
        } else {
            waited++;
        }
        sched_decision_clear(&scan);
    }
    print_message("index: %d placed, %d waiting, same outcomes as the scan\n", placed, waited);
    assert_true(placed > 1000 && waited > 100);
    sched_fleet_free(f);
    free(sites);
}

static void test_fleet_release_refiles(void **state)
{
    sched_site sites[2] = {idle_site("a", CLASS_POD, 2), idle_site("b", CLASS_DC, 2)};
    sched_fleet *f = sched_fleet_new(sites, 2);
    assert_non_null(f);
    sched_job job = timed_job(2, 60000, 0);
    job.class_mask = CLASS_POD;
    sched_decision d;
    assert_int_equal(sched_fleet_place(f, &job, 1, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_PLACED);
    assert_int_equal(d.site_index, 0);
    assert_non_null(strstr(d.explanation, "placed on a"));
    sched_decision_clear(&d);
    sched_fleet_reserve(f, 0, &job);
    assert_int_equal(sched_fleet_place(f, &job, 1, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_WAIT);
    assert_non_null(
        strstr(d.explanation, "has 2 free cores within its power over the next 15 min"));
    sched_decision_clear(&d);
    sched_fleet_release(f, 0, &job);
    assert_int_equal(sched_fleet_place(f, &job, 0, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_PLACED);
    /* no power anywhere: the envelope drops to 0 */
    sites[0].headroom_watts = 0;
    sched_fleet_update(f, 0);
    assert_int_equal(sched_fleet_place(f, &job, 0, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_WAIT);
    /* a job bigger than every pod: impossible, not queued forever */
    job.cores = 3;
    assert_int_equal(sched_fleet_place(f, &job, 1, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_IMPOSSIBLE);
    sched_decision_clear(&d);
    /* residency through the index: only the origin, and a clear reason when it is lost */
    job.cores = 1;
    job.class_mask = CLASS_ALL;
    job.site_private = 1;
    job.origin = "b";
    job.origin_index = 1;
    sites[1].alive = 0;
    sched_fleet_update(f, 1);
    assert_int_equal(sched_fleet_place(f, &job, 1, &d), OP_OK);
    assert_int_equal(d.outcome, SCHED_WAIT);
    assert_non_null(strstr(d.explanation, "lost=1"));
    sched_decision_clear(&d);
    sites[1].alive = 1;
    sched_fleet_update(f, 1);
    assert_int_equal(sched_fleet_place(f, &job, 0, &d), OP_OK);
    assert_int_equal(d.site_index, 1);
    sched_fleet_free(f);
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
        cmocka_unit_test(test_deadline_cannot_be_met),
        cmocka_unit_test(test_residency_origin_offline_waits_with_reason),
        cmocka_unit_test(test_no_power_anywhere_waits_with_reason),
        cmocka_unit_test(test_forecast_over_duration),
        cmocka_unit_test(test_leaving_car_gets_short_jobs_only),
        cmocka_unit_test(test_per_site_run_time_checked_against_departure),
        cmocka_unit_test(test_deferrable_waits_for_cheaper_power_inside_deadline),
        cmocka_unit_test(test_green_and_reliable_sites_preferred),
        cmocka_unit_test(test_fleet_index_agrees_with_scan),
        cmocka_unit_test(test_fleet_release_refiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
