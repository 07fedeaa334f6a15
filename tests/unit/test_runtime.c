/*
 * Learned run times (core/runtime): the estimate converges on a synthetic
 * stream, is not dragged by outliers, follows a program that changed, falls
 * back from site to class to program to the declared value, judges declared
 * values (kept, learned over, corrected by the ratio), stays within its
 * memory, survives a round trip through its rows, and refuses bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/runtime.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double uniform01(uint64_t *s)
{
    return ((double)(util_splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s)
{
    return sqrt(-2.0 * log(uniform01(s))) * cos(2 * M_PI * uniform01(s));
}

/* One run of program on site (class), declared and actual in seconds. */
static void run(runtime *rt, const char *program, unsigned cls, const char *site, double declared_s,
                double actual_s)
{
    runtime_obs o = {.kind = "exec",
                     .program = program,
                     .class_bit = cls,
                     .site = site,
                     .declared_ms = (int64_t)(declared_s * 1000),
                     .actual_ms = (int64_t)(actual_s * 1000)};
    assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_OK);
}

static void assert_near(double got, double want, double rel)
{
    if (fabs(got - want) > rel * want)
        fail_msg("got %.1f, want %.1f within %.0f%%", got, want, rel * 100);
}

static void test_converges_on_a_lognormal_stream(void **state)
{
    (void)state;
    runtime *rt = runtime_new(256);
    assert_non_null(rt);
    uint64_t seed = 7;
    for (int i = 0; i < 300; i++)
        run(rt, "sha256sum", CLASS_POD, "pod-1", 0, 600 * exp(0.3 * normal(&seed)));
    runtime_estimate e;
    runtime_predict(rt, "exec", "sha256sum", CLASS_POD, "pod-1", 0, &e);
    assert_int_equal(e.source, RUNTIME_LEARNED);
    assert_int_equal(e.level, RUNTIME_SITE);
    assert_near((double)e.typical_ms / 1000, 600, 0.12);
    assert_true(e.sigma > 0.18 && e.sigma < 0.45);
    /* the plan is the 80th percentile: above the median by about 0.84 sigma */
    assert_near((double)e.plan_ms / (double)e.typical_ms, exp(0.84 * e.sigma), 0.01);
    assert_int_equal(e.runs, 300);
    runtime_free(rt);
}

static void test_outliers_move_it_little(void **state)
{
    (void)state;
    runtime *rt = runtime_new(256);
    uint64_t seed = 11;
    double mean_ln = 0;
    int n = 400;
    for (int i = 0; i < n; i++) {
        /* one run in 12 hangs for 100x */
        double t = 600 * exp(0.2 * normal(&seed));
        if (uniform01(&seed) < 0.08) t *= 100;
        mean_ln += log(t) / n;
        run(rt, "render", CLASS_DC, NULL, 0, t);
    }
    runtime_estimate e;
    runtime_predict(rt, "exec", "render", CLASS_DC, NULL, 0, &e);
    assert_near((double)e.typical_ms / 1000, 600, 0.15);
    print_message("typical %.0f s (truth 600 s); a plain mean of the logs: %.0f s\n",
                  (double)e.typical_ms / 1000, exp(mean_ln));
    /* a plain mean of the logs is dragged well away */
    assert_true(fabs(exp(mean_ln) - 600) > 0.2 * 600);
    runtime_free(rt);
}

static void test_follows_a_program_that_changed(void **state)
{
    (void)state;
    runtime *rt = runtime_new(256);
    for (int i = 0; i < 200; i++)
        run(rt, "train", 0, NULL, 0, 600);
    for (int i = 0; i < 60; i++)
        run(rt, "train", 0, NULL, 0, 1800);
    runtime_estimate e;
    runtime_predict(rt, "exec", "train", 0, NULL, 0, &e);
    assert_near((double)e.typical_ms / 1000, 1800, 0.15);
    runtime_free(rt);
}

static void test_falls_back_site_class_program_declared(void **state)
{
    (void)state;
    runtime *rt = runtime_new(256);
    runtime_estimate e;
    runtime_predict(rt, "exec", "gzip", CLASS_CAR, "car-1", 0, &e);
    assert_int_equal(e.source, RUNTIME_UNKNOWN);
    assert_int_equal(e.plan_ms, 0);
    runtime_predict(rt, "exec", "gzip", CLASS_CAR, "car-1", 120000, &e);
    assert_int_equal(e.source, RUNTIME_DECLARED);
    assert_int_equal(e.plan_ms, 120000);
    /* 4 runs on car-1 (too few), 6 more on other cars, 10 on data centers */
    for (int i = 0; i < 4; i++)
        run(rt, "gzip", CLASS_CAR, "car-1", 0, 3000);
    for (int i = 0; i < 6; i++)
        run(rt, "gzip", CLASS_CAR, "car-2", 0, 2000);
    for (int i = 0; i < 10; i++)
        run(rt, "gzip", CLASS_DC, "dc-1", 0, 500);
    runtime_predict(rt, "exec", "gzip", CLASS_CAR, "car-1", 0, &e);
    assert_int_equal(e.level, RUNTIME_CLASS);
    assert_true(e.typical_ms > 1500000 && e.typical_ms < 3100000);
    runtime_predict(rt, "exec", "gzip", CLASS_DC, "dc-1", 0, &e);
    assert_int_equal(e.level, RUNTIME_SITE);
    assert_near((double)e.typical_ms, 500000, 0.01);
    /* a pod: no pod runs, the program's over every class */
    runtime_predict(rt, "exec", "gzip", CLASS_POD, "pod-9", 0, &e);
    assert_int_equal(e.level, RUNTIME_PROGRAM);
    assert_int_equal(e.runs, 20);
    /* another program knows nothing; the kind alone is its own key */
    runtime_predict(rt, "exec", "xz", CLASS_DC, "dc-1", 0, &e);
    assert_int_equal(e.source, RUNTIME_UNKNOWN);
    runtime_predict(rt, "route", NULL, CLASS_DC, "dc-1", 0, &e);
    assert_int_equal(e.source, RUNTIME_UNKNOWN);
    runtime_free(rt);
}

static void test_declared_kept_when_good_replaced_when_poor(void **state)
{
    (void)state;
    runtime *rt = runtime_new(256);
    for (int i = 0; i < 40; i++)
        run(rt, "sha256sum", CLASS_POD, NULL, 120, 720); /* declared 2 min, runs 12 */
    runtime_estimate e;
    /* declared 10 min: within 1.5x of 12, kept */
    runtime_predict(rt, "exec", "sha256sum", CLASS_POD, NULL, 600000, &e);
    assert_int_equal(e.source, RUNTIME_DECLARED_AGREES);
    assert_int_equal(e.plan_ms, 600000);
    /* declared 2 min: 6x off, replaced (the run time and the ratio agree: the run time wins) */
    runtime_predict(rt, "exec", "sha256sum", CLASS_POD, NULL, 120000, &e);
    assert_int_equal(e.source, RUNTIME_LEARNED_OVER);
    assert_near((double)e.typical_ms, 720000, 0.02);
    char text[256];
    runtime_describe(&e, "exec", "sha256sum", CLASS_POD, NULL, text, sizeof text);
    assert_string_equal(text, "run time 12 min (planned 12 min) learned from 40 runs of "
                              "sha256sum on pods; declared 2 min");
    runtime_free(rt);
}

/*
 * A program whose run time follows its input: declared values that scale
 * with it (always 3x too short) predict far better through the ratio than
 * the run time alone, whose spread is the spread of the inputs.
 */
static void test_ratio_corrects_declared_values_that_follow_the_input(void **state)
{
    (void)state;
    runtime *rt = runtime_new(256);
    uint64_t seed = 3;
    for (int i = 0; i < 100; i++) {
        double size = exp(1.5 * normal(&seed)); /* inputs vary 4.5x either way */
        double actual = 900 * size * exp(0.1 * normal(&seed));
        run(rt, "ffmpeg", CLASS_DC, NULL, actual / 3, actual);
    }
    runtime_estimate e;
    runtime_predict(rt, "exec", "ffmpeg", CLASS_DC, NULL, 100000, &e); /* declared 100 s */
    assert_int_equal(e.source, RUNTIME_CORRECTED);
    assert_int_equal(e.level, RUNTIME_RATIO);
    assert_near((double)e.typical_ms, 300000, 0.1);
    char text[256];
    runtime_describe(&e, "exec", "ffmpeg", CLASS_DC, NULL, text, sizeof text);
    assert_non_null(strstr(text, "declared 100 s x 3."));
    assert_non_null(strstr(text, "100 runs of ffmpeg"));
    runtime_free(rt);
}

static void test_memory_is_bounded_and_hot_keys_stay(void **state)
{
    (void)state;
    runtime *rt = runtime_new(64);
    assert_int_equal(runtime_capacity(rt), 64);
    long evictions = 0;
    for (int i = 0; i < 10000; i++) {
        char program[32];
        snprintf(program, sizeof program, "once-%d", i);
        uint64_t evicted[RUNTIME_LEVELS];
        int n = 0;
        runtime_obs o = {.kind = "exec", .program = program, .actual_ms = 1000 + i};
        assert_int_equal(runtime_observe(rt, &o, evicted, &n), OP_OK);
        evictions += n;
        run(rt, "hot", 0, NULL, 0, 60); /* learned every time: never the oldest */
    }
    assert_true(runtime_used(rt) <= 64);
    assert_true(evictions > 9000);
    runtime_estimate e;
    runtime_predict(rt, "exec", "hot", 0, NULL, 0, &e);
    assert_int_equal(e.source, RUNTIME_LEARNED);
    assert_int_equal(e.runs, 10000);
    runtime_free(rt);
}

static int copy_row(void *ctx, const runtime_row *row)
{
    runtime *to = ctx;
    assert_int_equal(runtime_load(to, row, NULL, NULL), OP_OK);
    return 0;
}

static void test_rows_round_trip(void **state)
{
    (void)state;
    runtime *a = runtime_new(256), *b = runtime_new(256);
    for (int i = 0; i < 12; i++)
        run(a, "gzip", CLASS_CAR, "car-1", 60, 300 + i);
    assert_int_equal(runtime_each(a, copy_row, b), 0);
    assert_int_equal(runtime_used(b), 4); /* program, class, site, ratio */
    runtime_estimate ea, eb;
    runtime_predict(a, "exec", "gzip", CLASS_CAR, "car-1", 60000, &ea);
    runtime_predict(b, "exec", "gzip", CLASS_CAR, "car-1", 60000, &eb);
    assert_memory_equal(&ea, &eb, sizeof ea);
    runtime_row row;
    assert_int_equal(runtime_row_of(b, runtime_key(RUNTIME_SITE, "exec", "gzip", 0, "car-1"), &row),
                     1);
    assert_string_equal(row.label, "exec gzip on site car-1");
    assert_int_equal(row.level, RUNTIME_SITE);
    assert_int_equal(row.stats.runs, 12);
    /* learning goes on after a load, later than what was loaded */
    run(b, "gzip", CLASS_CAR, "car-1", 60, 300);
    runtime_row after;
    assert_int_equal(runtime_row_of(b, row.key, &after), 1);
    assert_true(after.tick > row.tick);
    /* hostile rows are refused */
    runtime_row bad = row;
    bad.stats.log_ms = NAN;
    assert_int_equal(runtime_load(b, &bad, NULL, NULL), OP_EINVAL);
    bad = row;
    bad.stats.runs = 0;
    assert_int_equal(runtime_load(b, &bad, NULL, NULL), OP_EINVAL);
    bad = row;
    bad.level = 9;
    assert_int_equal(runtime_load(b, &bad, NULL, NULL), OP_EINVAL);
    bad = row;
    bad.stats.spread = -1;
    assert_int_equal(runtime_load(b, &bad, NULL, NULL), OP_EINVAL);
    bad = row;
    bad.key = 0;
    assert_int_equal(runtime_load(b, &bad, NULL, NULL), OP_EINVAL);
    runtime_free(a);
    runtime_free(b);
}

static void test_bad_input_refused(void **state)
{
    (void)state;
    runtime *rt = runtime_new(64);
    runtime_obs o = {.kind = "exec", .program = "ls", .actual_ms = 0};
    assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_EINVAL);
    o.actual_ms = 1000;
    o.declared_ms = -5;
    assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_EINVAL);
    o.declared_ms = 0;
    o.kind = "";
    assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_EINVAL);
    o.kind = NULL;
    assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_EINVAL);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    o.kind = "exec";
    o.program = longname;
    assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_EINVAL);
    assert_int_equal(runtime_used(rt), 0);
    /* absurd run times are clamped, not learned raw */
    o.program = "ls";
    o.actual_ms = INT64_MAX;
    for (int i = 0; i < 5; i++)
        assert_int_equal(runtime_observe(rt, &o, NULL, NULL), OP_OK);
    runtime_estimate e;
    runtime_predict(rt, "exec", "ls", 0, NULL, 0, &e);
    assert_int_equal(e.typical_ms, RUNTIME_MAX_MS);
    runtime_free(rt);
}

/* Keys differ by level and by every part, with no ambiguity between parts. */
static void test_keys_are_distinct(void **state)
{
    (void)state;
    uint64_t k[] = {runtime_key(RUNTIME_PROGRAM, "exec", "ab", 0, NULL),
                    runtime_key(RUNTIME_PROGRAM, "execa", "b", 0, NULL),
                    runtime_key(RUNTIME_RATIO, "exec", "ab", 0, NULL),
                    runtime_key(RUNTIME_CLASS, "exec", "ab", CLASS_POD, NULL),
                    runtime_key(RUNTIME_CLASS, "exec", "ab", CLASS_CAR, NULL),
                    runtime_key(RUNTIME_SITE, "exec", "ab", 0, "s1"),
                    runtime_key(RUNTIME_SITE, "exec", "ab", 0, "s2")};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        assert_true(k[i] != 0);
        for (size_t j = 0; j < i; j++)
            assert_true(k[i] != k[j]);
    }
    assert_true(runtime_key(RUNTIME_PROGRAM, "exec", NULL, 0, NULL) ==
                runtime_key(RUNTIME_PROGRAM, "exec", "", 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converges_on_a_lognormal_stream),
        cmocka_unit_test(test_outliers_move_it_little),
        cmocka_unit_test(test_follows_a_program_that_changed),
        cmocka_unit_test(test_falls_back_site_class_program_declared),
        cmocka_unit_test(test_declared_kept_when_good_replaced_when_poor),
        cmocka_unit_test(test_ratio_corrects_declared_values_that_follow_the_input),
        cmocka_unit_test(test_memory_is_bounded_and_hot_keys_stay),
        cmocka_unit_test(test_rows_round_trip),
        cmocka_unit_test(test_bad_input_refused),
        cmocka_unit_test(test_keys_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
