/*
 * Unit tests for learning's pure parts (learn: features, calendar, static
 * estimate, targets, MAE, the champion/challenger rule, the held-out window;
 * learncurve: figures, CSV, SVG) and for the trip data readers (learndata:
 * Chicago, NYC, zones, on small buffers, with their errors naming the line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "io/learndata.h"
#include "learn/learn.h"
#include "learn/learncurve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_calendar(void **state)
{
    int y, m, d, h, wd;
    learn_civil(0, &y, &m, &d, &h, &wd);
    assert_int_equal(y, 1970);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);
    assert_int_equal(wd, 3); /* a Thursday */
    int64_t t;
    assert_int_equal(learn_parse_time("2019-03-10 14:05:09", &t), OP_OK);
    learn_civil(t, &y, &m, &d, &h, &wd);
    assert_int_equal(y, 2019);
    assert_int_equal(m, 3);
    assert_int_equal(d, 10);
    assert_int_equal(h, 14);
    assert_int_equal(wd, 6); /* a Sunday */
    assert_int_equal(learn_days_from_civil(2016, 2, 29) * 86400, 1456704000);
    learn_civil(1456704000 - 1, &y, &m, &d, &h, NULL);
    assert_int_equal(m, 2);
    assert_int_equal(d, 28);
    assert_int_equal(h, 23);
    const char *bad[] = {"",
                         "2019-03-10",
                         "2019-03-10T14:05:09",
                         "2019-13-10 14:05:09",
                         "2019-02-30 14:05:09",
                         "2019-03-10 24:00:00",
                         "2019-03-10 14:05:09 ",
                         "2019-3-10 14:05:09"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(learn_parse_time(bad[i], &t), OP_EINVAL);
}

static void test_daylight_saving(void **state)
{
    int64_t a, b;
    /* 2019's spring change: 2019-03-10 02:00 -> 03:00 */
    assert_int_equal(learn_parse_time("2019-03-10 01:50:00", &a), OP_OK);
    assert_int_equal(learn_parse_time("2019-03-10 03:10:00", &b), OP_OK);
    assert_int_equal(learn_us_elapsed(a, b), 20 * 60);
    /* a day later nothing changes */
    assert_int_equal(learn_parse_time("2019-03-11 01:50:00", &a), OP_OK);
    assert_int_equal(learn_parse_time("2019-03-11 03:10:00", &b), OP_OK);
    assert_int_equal(learn_us_elapsed(a, b), 80 * 60);
    /* 2019's autumn change: 2019-11-03 02:00 -> 01:00 */
    assert_int_equal(learn_parse_time("2019-11-03 00:50:00", &a), OP_OK);
    assert_int_equal(learn_parse_time("2019-11-03 02:10:00", &b), OP_OK);
    assert_int_equal(learn_us_elapsed(a, b), 140 * 60);
}

static learn_trip trip(double miles, double seconds)
{
    learn_trip t;
    memset(&t, 0, sizeof t);
    t.distance_miles = miles;
    t.actual_s = seconds;
    t.pickup_area = t.dropoff_area = t.pickup_borough = t.dropoff_borough = -1;
    return t;
}

static void test_features_and_static(void **state)
{
    learn_trip t = trip(2.5, 900);
    t.hour = 17;
    t.weekday = 4;
    t.pickup_area = 8;
    t.month = 3;
    t.year = 2019;
    float row[LEARN_FEATURES];
    learn_features(&t, row);
    assert_true(row[LEARN_F_DISTANCE] == 2.5f);
    assert_true(row[LEARN_F_HOUR] == 17.0f);
    assert_true(row[LEARN_F_WEEKDAY] == 4.0f);
    assert_true(row[LEARN_F_PICKUP_AREA] == 8.0f);
    assert_true(isnan(row[LEARN_F_DROPOFF_AREA])); /* unknown: missing */
    assert_true(isnan(row[LEARN_F_PICKUP_BOROUGH]));
    assert_true(row[LEARN_F_YEAR] == 2019.0f);

    /* speeds 10, 12, 6 mph (and one trip without a duration, ignored): median 10 */
    learn_trip trips[] = {trip(1, 360), trip(2, 600), trip(1, 600), trip(1, 0), trip(30, 60)};
    double speed = 0;
    assert_int_equal(learn_static_fit(trips, 5, 4, &speed), OP_OK);
    assert_true(fabs(speed - 10) < 1e-9);
    assert_int_equal(learn_static_fit(trips, 5, 0, &speed), OP_EINVAL);
    assert_int_equal(learn_static_fit(trips, 5, 6, &speed), OP_EINVAL);
    learn_static_apply(trips, 5, 10);
    assert_true(fabs(trips[1].planned_s - 720) < 1e-9);
    assert_true(fabs(learn_static_estimate(5, 12) - 1500) < 1e-9);
}

static void test_targets_and_mae(void **state)
{
    /* a model answering 0 gives the plan back, under both objectives */
    assert_true(fabs(learn_from_margin(LEARN_OBJ_LOG, 600, 0) - 600) < 1e-9);
    assert_true(fabs(learn_from_margin(LEARN_OBJ_ABS, 600, 0) - 600) < 1e-9);
    float y = learn_target(LEARN_OBJ_LOG, 600, 900);
    assert_true(fabs(learn_from_margin(LEARN_OBJ_LOG, 600, y) - 900) < 1e-3);
    y = learn_target(LEARN_OBJ_ABS, 600, 900);
    assert_true(fabs(y - 300) < 1e-6);
    /* never below one second, never infinite */
    assert_true(learn_from_margin(LEARN_OBJ_ABS, 600, -5000) == 1);
    assert_true(learn_from_margin(LEARN_OBJ_LOG, 600, 1e6) == 1);
    double pred[] = {1, 2, 3}, act[] = {2, 2, 5};
    assert_true(fabs(learn_mae(pred, act, 3) - 1) < 1e-12);
    assert_true(learn_mae(pred, act, 0) == 0);
}

static void test_champion_challenger(void **state)
{
    learn_rule rule = {0.05, 10};
    learn_verdict v = learn_decide(&rule, 0, 0, 500, 0);
    assert_true(v.adopt);
    assert_string_equal(v.reason, "no champion yet");
    v = learn_decide(&rule, 1, 100, 50, 9); /* far better, but on too few rows */
    assert_false(v.adopt);
    v = learn_decide(&rule, 1, 100, 96, 50); /* better by 4%: within the margin */
    assert_false(v.adopt);
    assert_true(fabs(v.gain - 0.04) < 1e-12);
    v = learn_decide(&rule, 1, 100, 94, 50);
    assert_true(v.adopt);
    v = learn_decide(&rule, 1, 100, 120, 50);
    assert_false(v.adopt);
    v = learn_decide(&rule, 1, 100, NAN, 50); /* a broken challenger never wins */
    assert_false(v.adopt);
}

static void test_rollback_rule(void **state)
{
    (void)state;
    learn_rule rule = {0.02, 20};
    /* the previous champion far better, but on too few fresh rows: keep the champion */
    learn_verdict v = learn_rollback_decide(&rule, 300, 150, 19);
    assert_false(v.adopt);
    assert_string_equal(v.reason, "too few fresh held-out rows to judge the champion");
    /* better by 1%: within the margin, the champion stays */
    v = learn_rollback_decide(&rule, 300, 297, 200);
    assert_false(v.adopt);
    assert_true(fabs(v.gain - 0.01) < 1e-12);
    /* better by 10%: roll back */
    v = learn_rollback_decide(&rule, 300, 270, 200);
    assert_true(v.adopt);
    assert_true(fabs(v.gain - 0.1) < 1e-12);
    /* the champion better: it stays */
    v = learn_rollback_decide(&rule, 250, 300, 200);
    assert_false(v.adopt);
    assert_string_equal(v.reason, "the champion holds up on fresh rows");
    /* nothing measured never rolls back */
    assert_false(learn_rollback_decide(&rule, NAN, 100, 200).adopt);
    assert_false(learn_rollback_decide(&rule, 300, NAN, 200).adopt);
    assert_false(learn_rollback_decide(&rule, INFINITY, 100, 200).adopt);
    /* exactly at the margin is not beyond it */
    v = learn_rollback_decide(&rule, 100, 98, 200);
    assert_false(v.adopt);
}

static void test_confidence(void **state)
{
    (void)state;
    learn_model_facts m = {.has_model = 1, .rows = 2000, .heldout_mae_s = 200, .has_ranges = 1};
    float row[LEARN_FEATURES];
    char why[400];
    for (int k = 0; k < LEARN_FEATURES; k++) {
        m.range[k][0] = 0;
        m.range[k][1] = 100;
        row[k] = NAN;
    }
    m.range[LEARN_F_YEAR][0] = m.range[LEARN_F_YEAR][1] = NAN; /* never seen */
    row[LEARN_F_DISTANCE] = 2;
    assert_int_equal(learn_confident(&m, row, 900, why, sizeof why), 1);
    assert_string_equal(why, "");
    /* the model's typical error is most of the answer */
    assert_int_equal(learn_confident(&m, row, 300, why, sizeof why), 0);
    assert_non_null(strstr(why, "held-out MAE 200 s is over 50% of the answer 300 s"));
    /* a distance past what it learned from, and a feature it never saw */
    row[LEARN_F_DISTANCE] = 250;
    row[LEARN_F_YEAR] = 2019;
    assert_int_equal(learn_confident(&m, row, 900, why, sizeof why), 0);
    assert_non_null(strstr(why, "distance_miles 250 outside the 0..100 it learned from"));
    assert_non_null(strstr(why, "; year never seen in training"));
    /* few rows behind it */
    row[LEARN_F_DISTANCE] = 2;
    row[LEARN_F_YEAR] = NAN;
    m.rows = 120;
    assert_int_equal(learn_confident(&m, row, 900, NULL, 0), 0);
    assert_int_equal(learn_confident(&m, row, 900, why, 10), 0); /* bounded text */
    assert_true(strlen(why) < 10);
    /* ranges unknown: not judged by them; no model: never confident */
    m.rows = 2000;
    m.has_ranges = 0;
    row[LEARN_F_DISTANCE] = 1e4;
    assert_int_equal(learn_confident(&m, row, 900, why, sizeof why), 1);
    m.has_model = 0;
    assert_int_equal(learn_confident(&m, row, 900, why, sizeof why), 0);
    assert_string_equal(why, "no model");
}

static void test_window(void **state)
{
    learn_window *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->capacity = 3;
    double own, cand;
    learn_window_mae(w, &own, &cand);
    assert_true(own == 0 && cand == 0);
    for (int i = 1; i <= 5; i++)
        learn_window_push(w, i, 10 * i);
    /* the last three rows only: 3, 4, 5 */
    assert_int_equal(w->size, 3);
    learn_window_mae(w, &own, &cand);
    assert_true(fabs(own - 4) < 1e-6);
    assert_true(fabs(cand - 40) < 1e-6);
    free(w);
}

static void test_learncurve(void **state)
{
    int period[] = {0, 0, 1, 1}, site[] = {0, 1, 0, 1};
    size_t seen[] = {0, 0, 1, 1};
    double actual[] = {100, 200, 100, 200}, a[] = {150, 250, 120, 190}, b[] = {100, 200, 100, 0};
    const double *pred[] = {a, b};
    const char *names[] = {"a", "b"};
    int64_t starts[] = {0, 86400};
    learncurve lc = {4, 2, 2, 2, period, site, seen, actual, pred, names, starts};
    double mae[2];
    learncurve_filter all = {0, 0, -1}, later = {1, 0, -1}, one = {0, 0, 1}, seen1 = {0, 1, -1};
    assert_int_equal(learncurve_mae(&lc, &all, mae), 4);
    assert_true(fabs(mae[0] - 32.5) < 1e-9);
    assert_true(fabs(mae[1] - 50) < 1e-9);
    assert_int_equal(learncurve_mae(&lc, &later, mae), 2);
    assert_true(fabs(mae[0] - 15) < 1e-9);
    assert_int_equal(learncurve_mae(&lc, &one, mae), 2);
    assert_true(fabs(mae[1] - 100) < 1e-9);
    assert_int_equal(learncurve_mae(&lc, &seen1, mae), 2);
    double by[4];
    size_t count[2];
    learncurve_by_period(&lc, by, count);
    assert_int_equal(count[0], 2);
    assert_true(fabs(by[0] - 50) < 1e-9 && fabs(by[1] - 0) < 1e-9);
    char *csv = learncurve_csv(&lc);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "period,start,trips,mae_a_s,mae_b_s\n"));
    assert_non_null(strstr(csv, "1,1970-01-02,2,15.0,100.0\n"));
    free(csv);
    char *svg = learncurve_svg(&lc, "test", 3, 1);
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "</svg>"));
    assert_non_null(strstr(svg, ">test</text>"));
    free(svg);
}

#define CHICAGO_HEADER                                                                             \
    "pickup_community_area,fare,trip_start_month,trip_start_hour,trip_start_day,"                  \
    "trip_start_timestamp,pickup_latitude,pickup_longitude,dropoff_latitude,dropoff_longitude,"    \
    "trip_miles,pickup_census_tract,dropoff_census_tract,payment_type,company,trip_seconds,"       \
    "dropoff_community_area,tips\n"

static void test_chicago(void **state)
{
    const char *text = CHICAGO_HEADER
        /* kept: Monday (day 2), company quoted with a comma inside */
        "8,12.45,5,19,2,1400269500,,,,,2.5,,,Credit Card,\"Acme, Inc.\",900,32,0.0\r\n"
        /* no duration, no distance: dropped */
        ",0,3,19,5,1362683700,,,,,0,,,Unknown,Acme,300,,0\n"
        "8,5,3,19,5,1362683700,,,,,1.0,,,Unknown,Acme,,,0\n"
        /* no company: its own site; no areas: unknown */
        ",5,1,0,1,1357000000,,,,,1.0,,,Cash,,600,,0\n"
        "\n";
    learndata d;
    memset(&d, 0, sizeof d);
    char err[256] = "";
    assert_int_equal(learndata_parse_chicago(&d, text, strlen(text), err, sizeof err), OP_OK);
    assert_int_equal(d.rows, 4);
    assert_int_equal(d.dropped, 2);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.n_sites, 2);
    assert_string_equal(d.sites[0], "Acme, Inc.");
    assert_string_equal(d.sites[1], "(no company recorded)");
    learn_trip *t = &d.trips[0];
    assert_true(t->actual_s == 900 && t->distance_miles == 2.5);
    assert_int_equal(t->hour, 19);
    assert_int_equal(t->weekday, 0); /* Monday */
    assert_int_equal(t->month, 5);
    assert_int_equal(t->year, 2014);
    assert_int_equal(t->pickup_area, 8);
    assert_int_equal(t->dropoff_area, 32);
    assert_int_equal(t->pickup_borough, -1);
    assert_int_equal(d.trips[1].pickup_area, -1);
    assert_int_equal(d.trips[1].weekday, 6); /* Sunday */
    assert_int_equal(learndata_sort(&d), OP_OK);
    assert_true(d.trips[0].start_s == 1357000000);
    /* one site of two trips, one of one: with a minimum of 2 the small one is "other" */
    assert_int_equal(learndata_group_small_sites(&d, 2), OP_OK);
    assert_int_equal(d.n_sites, 1);
    assert_string_equal(d.sites[0], "(other companies)");
    learndata_clear(&d);
    learndata_clear(&d);
}

static void expect_error(const char *text, const char *needle)
{
    learndata d;
    memset(&d, 0, sizeof d);
    char err[256] = "";
    assert_int_equal(learndata_parse_chicago(&d, text, strlen(text), err, sizeof err), OP_EINVAL);
    if (!strstr(err, needle)) fail_msg("error '%s' does not say '%s'", err, needle);
    learndata_clear(&d);
}

static void test_chicago_errors(void **state)
{
    expect_error("", "no header");
    expect_error("trip_seconds,trip_miles\n1,2\n", "no column 'trip_start_timestamp'");
    const char *row = "8,1,5,19,2,1400269500,,,,,2.5,,,Cash,A,900,32,0\n";
    char text[2048];
    snprintf(text, sizeof text, CHICAGO_HEADER "%s8,1,5,19,2\n", row);
    expect_error(text, "line 3: 5 fields where the header has 18");
    snprintf(text, sizeof text, CHICAGO_HEADER "%s%s", row,
             "8,1,5,19,2,1400269500,,,,,2.5,,,Cash,A,nine,32,0\n");
    expect_error(text, "line 3: trip_seconds is not a number: 'nine'");
    snprintf(text, sizeof text, CHICAGO_HEADER "8,1,5,25,2,1400269500,,,,,2.5,,,Cash,A,900,32,0\n");
    expect_error(text, "line 2: trip_start_hour is not a whole number from 0 to 23");
    snprintf(text, sizeof text,
             CHICAGO_HEADER "8,1,5,19,2,1400269500,,,,,2.5,,,Cash,\"A,900,32,0\n");
    expect_error(text, "a quote that is never closed");
    snprintf(text, sizeof text,
             CHICAGO_HEADER "8,1,5,19,2,1400269500,,,,,2.5,,,Cash,A\"B,900,32,0\n");
    expect_error(text, "a quote inside an unquoted field");
    snprintf(text, sizeof text,
             CHICAGO_HEADER "8,1,5,19,2,1400269500,,,,,2.5,,,Cash,\"A\"B,900,32,0\n");
    expect_error(text, "text after a closing quote");
    char *long_line = malloc(8192);
    assert_non_null(long_line);
    memcpy(long_line, CHICAGO_HEADER, strlen(CHICAGO_HEADER));
    memset(long_line + strlen(CHICAGO_HEADER), 'x', 5000);
    long_line[strlen(CHICAGO_HEADER) + 5000] = '\0';
    expect_error(long_line, "line 2: a line over 4096 bytes");
    free(long_line);
    /* a NUL byte inside the text */
    learndata d;
    memset(&d, 0, sizeof d);
    char err[256] = "";
    const char nul[] = "trip_seconds\0,x\n";
    assert_int_equal(learndata_parse_chicago(&d, nul, sizeof nul - 1, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "NUL"));
    learndata_clear(&d);
}

static void test_nyc(void **state)
{
    const char *zones_text = "LocationID,zone,borough\n1,Newark Airport,EWR\n"
                             "43,Central Park,Manhattan\n138,LaGuardia Airport,Queens\n"
                             "56,Corona,Queens\n56,Corona,Queens\n";
    learndata_zones z;
    memset(&z, 0, sizeof z);
    char err[256] = "";
    assert_int_equal(learndata_parse_zones(&z, zones_text, strlen(zones_text), err, sizeof err),
                     OP_OK);
    assert_int_equal(z.n, 5);
    const char *text =
        "pickup,dropoff,passengers,distance,fare,tip,tolls,total,color,payment,pickup_zone,"
        "dropoff_zone,pickup_borough,dropoff_borough\n"
        "2019-03-23 20:21:09,2019-03-23 20:27:24,1,1.6,7.0,2.15,0.0,12.95,yellow,credit card,"
        "Central Park,LaGuardia Airport,Manhattan,Queens\n"
        /* over the spring change: 01:50 -> 03:10 took 20 minutes */
        "2019-03-10 01:50:00,2019-03-10 03:10:00,1,5.0,7.0,0,0,7,yellow,cash,Somewhere,,Queens,\n"
        /* no pickup borough, zero distance, negative duration: dropped */
        "2019-03-04 16:11:55,2019-03-04 16:19:00,1,0.79,5.0,0.0,0.0,9.3,yellow,cash,,,,\n"
        "2019-03-04 16:11:55,2019-03-04 16:19:00,1,0,5.0,0.0,0.0,9.3,yellow,cash,,,Bronx,\n"
        "2019-03-04 16:11:55,2019-03-04 16:01:00,1,1,5.0,0.0,0.0,9.3,yellow,cash,,,Bronx,\n";
    learndata d;
    memset(&d, 0, sizeof d);
    assert_int_equal(learndata_parse_nyc(&d, &z, text, strlen(text), err, sizeof err), OP_OK);
    assert_int_equal(d.rows, 5);
    assert_int_equal(d.dropped, 3);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.sites[0], "Manhattan");
    assert_string_equal(d.sites[1], "Queens");
    learn_trip *t = &d.trips[0];
    assert_true(t->actual_s == 375);
    assert_int_equal(t->pickup_area, 43);
    assert_int_equal(t->dropoff_area, 138);
    assert_int_equal(t->pickup_borough, learndata_borough("Manhattan"));
    assert_int_equal(t->dropoff_borough, 3);
    assert_int_equal(t->hour, 20);
    assert_int_equal(t->weekday, 5); /* a Saturday */
    assert_true(d.trips[1].actual_s == 1200);
    assert_int_equal(d.trips[1].pickup_area, -1); /* not in the zone table */
    assert_int_equal(d.trips[1].dropoff_borough, -1);
    learndata_clear(&d);

    const char *bad = "pickup,dropoff,distance,pickup_zone,dropoff_zone,pickup_borough,"
                      "dropoff_borough\n2019-03-23 20:21,2019-03-23 20:27:24,1,a,b,Bronx,Bronx\n";
    assert_int_equal(learndata_parse_nyc(&d, &z, bad, strlen(bad), err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "line 2: pickup or dropoff"));
    learndata_clear(&d);
    learndata_zones_clear(&z);
    const char *bad_zone = "LocationID,zone,borough\nx,Zone,Queens\n";
    assert_int_equal(learndata_parse_zones(&z, bad_zone, strlen(bad_zone), err, sizeof err),
                     OP_EINVAL);
    assert_non_null(strstr(err, "LocationID"));
    learndata_zones_clear(&z);
}

static void test_load_missing_folder(void **state)
{
    learndata d;
    char err[512] = "";
    assert_int_equal(learndata_load(&d, LEARNDATA_NYC, "/nonexistent/learning", 0, err, sizeof err),
                     OP_ENOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/learning/nyc_taxi_zones_seaborn.csv"));
    learndata_clear(&d);
    assert_int_equal(
        learndata_load(&d, LEARNDATA_CHICAGO, "/nonexistent/learning", 0, err, sizeof err),
        OP_ENOTFOUND);
    learndata_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calendar),
        cmocka_unit_test(test_daylight_saving),
        cmocka_unit_test(test_features_and_static),
        cmocka_unit_test(test_targets_and_mae),
        cmocka_unit_test(test_champion_challenger),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_learncurve),
        cmocka_unit_test(test_chicago),
        cmocka_unit_test(test_rollback_rule),
        cmocka_unit_test(test_confidence),
        cmocka_unit_test(test_chicago_errors),
        cmocka_unit_test(test_nyc),
        cmocka_unit_test(test_load_missing_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
