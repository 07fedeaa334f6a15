/*
 * Unit tests of the power envelope library (src/core/power.c): charger
 * load from sessions (energy conserved), the three envelopes, and the
 * forecaster on a daily pattern; then the Caltech ACN
 * charging sessions from ../shared/data/power (skipped with a message when
 * missing): load, spare power under the garage's 150 kW transformer, and
 * forecast errors of persistence against the learned profile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/power.h"
#include "helpers/testkit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define H (3600000LL)
#define ACN TESTKIT_SHARED_DATA "/power/acn_caltech_sessions_2020-12_2021-09.csv"

static void test_sessions_load_conserves_energy(void **state)
{
    (void)state;
    power_session s[] = {{0, 2 * H, 10.0},          /* 5 kW for two hours */
                         {H / 2, H / 2 + H / 4, 1}, /* 4 kW for 15 minutes */
                         {3 * H, 3 * H, 5.0},       /* empty span: skipped */
                         {H, 2 * H, -1.0}};         /* negative energy: skipped */
    double load[8];
    size_t used = power_sessions_load(s, 4, 0, H / 2, load, 8);
    assert_int_equal(used, 2);
    assert_true(fabs(load[0] - 5000) < 1e-6);
    assert_true(fabs(load[1] - (5000 + 4000 * 0.5)) < 1e-6); /* 15 of the step's 30 minutes */
    assert_true(fabs(load[3] - 5000) < 1e-6);
    assert_true(load[4] == 0);
    double wh = 0;
    for (int k = 0; k < 8; k++)
        wh += load[k] * 0.5;
    assert_true(fabs(wh - 11000) < 1e-6);
    /* a window that cuts a session keeps only its share */
    power_sessions_load(s, 1, H, H, load, 1);
    assert_true(fabs(load[0] - 5000) < 1e-6);
}

static void test_envelopes(void **state)
{
    (void)state;
    assert_true(power_pod_envelope(150000, 40000, 10000) == 100000);
    assert_true(power_pod_envelope(150000, 145000, 10000) == 0); /* never below 0 */
    power_car car = {.plug_in_ms = 10 * H,
                     .departure_ms = 18 * H,
                     .departure_lead_ms = H / 2,
                     .budget_watts = 300,
                     .battery_kwh = 40,
                     .floor_kwh = 20};
    assert_true(power_car_envelope(&car, 9 * H) == 0);
    assert_true(power_car_envelope(&car, 10 * H) == 300);
    assert_true(power_car_envelope(&car, 17 * H) == 300);
    assert_true(power_car_envelope(&car, 18 * H - H / 2) == 0); /* the lead before departure */
    car.battery_kwh = 19;
    assert_true(power_car_envelope(&car, 12 * H) == 0); /* below the owner's floor */
    double slots[4] = {1000, 2000, 3000, -5};
    power_dc dc = {.budget_watts = 500, .n_slots = 0, .slots = NULL};
    assert_true(power_dc_envelope(&dc, 5 * H) == 500);
    dc.n_slots = 4;
    dc.slots = slots;
    assert_true(power_dc_envelope(&dc, 0) == 1000);
    assert_true(power_dc_envelope(&dc, 7 * H) == 2000);
    assert_true(power_dc_envelope(&dc, 24 * H + 13 * H) == 3000); /* the next day */
    assert_true(power_dc_envelope(&dc, 20 * H) == 0);
    assert_true(power_job_draw(4, 12.5) == 50);
}

/* A site whose spare power follows the sun: 0 at night, up to 10 kW at noon. */
static double daily(int64_t t)
{
    double hour = (double)(t % (24 * H)) / (double)H;
    double v = 10000 * sin((hour - 6) / 12 * M_PI);
    return v > 0 ? v : 0;
}

static void test_forecaster_learns_the_day(void **state)
{
    (void)state;
    power_forecaster f;
    power_forecaster_init(&f, 0.3, 2 * H);
    assert_true(power_forecast(&f, 0) == 0);
    for (int64_t t = 0; t < 7 * 24 * H; t += H / 4)
        power_forecaster_observe(&f, t, daily(t));
    int64_t now = 7 * 24 * H + 8 * H; /* 08:00, observed last at 23:45 the day before */
    power_forecaster_observe(&f, now, daily(now));
    double err_profile = 0, err_persist = 0;
    for (int64_t h = H; h <= 12 * H; h += H) {
        err_profile += fabs(power_forecast(&f, now + h) - daily(now + h));
        err_persist += fabs(daily(now) - daily(now + h));
    }
    /* the learned day beats "as now" over the next twelve hours */
    assert_true(err_profile < 0.2 * err_persist);
    /* what a 6-hour job starting at 14:00 may count on: the evening's dip */
    double least = power_forecast_min(&f, now + 6 * H, 6 * H, H / 4);
    assert_true(least < 1000);
    assert_true(power_forecast_min(&f, now + 2 * H, 2 * H, H / 4) > 7000);
}

static int64_t parse_utc(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !*s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) return -1;
    return (int64_t)timegm(&tm) * 1000;
}

/* The n-th comma-separated field of line (no quoted commas in this file). */
static const char *field(char *line, int n)
{
    char *p = line;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p) return NULL;
    char *end = strchr(p, ',');
    if (end) *end = '\0';
    return p;
}

static void test_acn_garage(void **state)
{
    (void)state;
    testkit_require_path(ACN);
    FILE *fp = fopen(ACN, "r");
    assert_non_null(fp);
    size_t cap = 4096, n = 0;
    power_session *s = malloc(cap * sizeof *s);
    assert_non_null(s);
    char line[2048], copy[2048];
    double kwh_total = 0;
    int64_t first = INT64_MAX, last = 0;
    assert_non_null(fgets(line, sizeof line, fp)); /* header */
    while (fgets(line, sizeof line, fp) && n < cap) {
        memcpy(copy, line, sizeof line);
        int64_t connect = parse_utc(field(copy, 6));
        memcpy(copy, line, sizeof line);
        int64_t done = parse_utc(field(copy, 8));
        memcpy(copy, line, sizeof line);
        if (done < 0) done = parse_utc(field(copy, 7)); /* no done time: until unplugged */
        memcpy(copy, line, sizeof line);
        const char *k = field(copy, 9);
        if (connect < 0 || done <= connect || !k) continue;
        s[n++] = (power_session){connect, done, atof(k)};
        kwh_total += s[n - 1].kwh;
        if (connect < first) first = connect;
        if (done > last) last = done;
    }
    fclose(fp);
    assert_true(n > 3000);
    int64_t step = H / 4, t0 = first - first % step;
    size_t steps = (size_t)((last - t0) / step + 1);
    double *load = calloc(steps, sizeof *load);
    assert_non_null(load);
    assert_int_equal(power_sessions_load(s, n, t0, step, load, steps), n);
    double wh = 0, peak = 0, spare_wh = 0;
    for (size_t i = 0; i < steps; i++) {
        wh += load[i] * 0.25;
        if (load[i] > peak) peak = load[i];
        double e = power_pod_envelope(150000, load[i], 10000);
        assert_true(e >= 0 && e <= 140000);
        spare_wh += e * 0.25;
    }
    /* every kWh of every session lands in the series */
    assert_true(fabs(wh / 1000 - kwh_total) < 1e-6 * kwh_total);
    fprintf(stderr,
            "ACN garage: %zu sessions, %.0f kWh over %zu quarter-hours; peak charger draw %.1f kW;"
            " spare under a 150 kW transformer (10 kW margin): %.0f MWh\n",
            n, kwh_total, steps, peak / 1000, spare_wh / 1e6);
    /* forecast the envelope one hour ahead: learned profile vs persistence, last 30 days */
    power_forecaster f;
    power_forecaster_init(&f, 0.2, H);
    double err_blend = 0, err_persist = 0;
    int scored = 0;
    size_t test_from = steps > 30 * 96 ? steps - 30 * 96 : 0;
    for (size_t i = 0; i + 4 < steps; i++) {
        int64_t t = t0 + (int64_t)i * step;
        double env = power_pod_envelope(150000, load[i], 10000);
        power_forecaster_observe(&f, t, env);
        if (i < test_from) continue;
        double actual = power_pod_envelope(150000, load[i + 4], 10000);
        err_blend += fabs(power_forecast(&f, t + H) - actual);
        err_persist += fabs(env - actual);
        scored++;
    }
    assert_true(scored > 0);
    fprintf(stderr,
            "  1 h ahead over the last 30 days: mean abs error %.2f kW (persistence + "
            "profile) vs %.2f kW (persistence)\n",
            err_blend / scored / 1000, err_persist / scored / 1000);
    assert_true(isfinite(err_blend) && err_blend <= 2 * err_persist + 1);
    free(load);
    free(s);
}

static void test_meter_messages(void **state)
{
    power_meter m;
    char err[200];
    const char *ok = "{\"watts\": 1800, \"price\": -4.5, \"carbon\": 180,"
                     " \"departure_ms\": 1764400000000, \"dr\": {\"watts\": 0, \"until_ms\": 5}}";
    assert_int_equal(power_meter_parse(ok, strlen(ok), &m, err, sizeof err), OP_OK);
    assert_int_equal(m.has, POWER_METER_WATTS | POWER_METER_PRICE | POWER_METER_CARBON |
                                POWER_METER_DEPARTURE | POWER_METER_DR);
    assert_true(m.watts == 1800 && m.price == -4.5 && m.carbon == 180 && m.dr_watts == 0);
    assert_true(m.departure_ms == 1764400000000LL && m.dr_until_ms == 5);
    assert_int_equal(power_meter_parse("{\"carbon\": 90}", 14, &m, err, sizeof err), OP_OK);
    assert_int_equal(m.has, POWER_METER_CARBON);
    static const struct {
        const char *text, *why;
    } bad[] = {{"", "must be a JSON object"},
               {"[1]", "must be a JSON object"},
               {"{}", "no field"},
               {"{\"watts\": -1}", "watts: must be a number from 0"},
               {"{\"watts\": \"100\"}", "watts: must be a number"},
               {"{\"watts\": 1e300}", "watts: must be a number"},
               {"{\"volts\": 230}", "volts: unknown field"},
               {"{\"dr\": {\"watts\": 5}}", "dr: must be"},
               {"{\"dr\": {\"watts\": 5, \"until\": 3}}", "dr: must be"},
               {"{\"dr\": 5}", "dr: must be"},
               {"{\"carbon\": -1}", "carbon: must be"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(power_meter_parse(bad[i].text, strlen(bad[i].text), &m, err, sizeof err),
                         OP_EINVAL);
        testkit_assert_contains(err, bad[i].why);
    }
    char big[POWER_METER_MAX_BYTES + 2];
    memset(big, ' ', sizeof big);
    assert_int_equal(power_meter_parse(big, sizeof big, &m, err, sizeof err), OP_EINVAL);
}

static void test_grid_rank(void **state)
{
    power_grid_ring r;
    power_grid_ring_init(&r);
    int64_t h = 3600000;
    assert_true(power_grid_rank(&r, 10 * h, 50) == 0); /* nothing seen yet */
    for (int i = 0; i < 24; i++)
        power_grid_ring_observe(&r, (100 + i) * h, (double)i);    /* 0 .. 23 over a day */
    assert_true(power_grid_rank(&r, 123 * h, 23) == 23.0 / 24.0); /* the dearest hour */
    assert_true(power_grid_rank(&r, 123 * h, -1) == 0);
    assert_true(fabs(power_grid_rank(&r, 123 * h, 12) - 12.0 / 24.0) < 1e-12);
    /* a day later the old samples have aged out */
    assert_true(power_grid_rank(&r, 150 * h, 99) == 0);
    power_grid_ring_observe(&r, 124 * h, 5); /* replaces hour 100's slot */
    /* hours 101..123 hold 1..23, hour 124 holds 5: six samples below 5.5 */
    assert_true(fabs(power_grid_rank(&r, 124 * h, 5.5) - 6.0 / 24.0) < 1e-12);
}

static void test_trace_files(void **state)
{
    power_trace t;
    char err[200];
    const char *text = "seconds,watts,price,carbon\n# chargers fill up at 10 min\n"
                       "0,1800,42.5,180\n600,200\r\n\n1200,0,55\n1200,50\n";
    assert_int_equal(power_trace_parse(text, strlen(text), &t, err, sizeof err), OP_OK);
    assert_int_equal(t.n, 4);
    assert_true(t.watts[0] == 1800 && t.price[0] == 42.5 && t.carbon[0] == 180);
    assert_true(t.watts[1] == 200 && isnan(t.price[1]) && isnan(t.carbon[1]));
    assert_true(t.price[2] == 55 && isnan(t.carbon[2]));
    assert_int_equal(power_trace_at(&t, -5), 0);
    assert_int_equal(power_trace_at(&t, 599999), 0);
    assert_int_equal(power_trace_at(&t, 600000), 1);
    assert_int_equal(power_trace_at(&t, 1200000), 3); /* the last of equal times wins */
    power_trace_clear(&t);
    static const struct {
        const char *text, *why;
    } bad[] = {{"", "no 'seconds,watts' lines"},
               {"seconds,watts\n", "no 'seconds,watts' lines"},
               {"0,100\n5,-1\n", "line 2: expected"},
               {"10,100\n5,100\n",
                "line 2: expected 'seconds,watts[,price[,carbon]]' with seconds not decreasing"},
               {"0,100,x\n", "line 1: expected"},
               {"0,100,1,2,3\n", "line 1: expected"},
               {"0,100\nheader,later\n", "line 2: expected"},
               {"0,inf\n", "line 1: expected"},
               {"0,100,1,-5\n", "line 1: expected"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(power_trace_parse(bad[i].text, strlen(bad[i].text), &t, err, sizeof err),
                         OP_EINVAL);
        testkit_assert_contains(err, bad[i].why);
        assert_null(t.watts);
    }
    char nul[] = "0,100\n5\0,1\n";
    assert_int_equal(power_trace_parse(nul, sizeof nul - 1, &t, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "line 2: a NUL byte"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_load_conserves_energy),
        cmocka_unit_test(test_envelopes),
        cmocka_unit_test(test_forecaster_learns_the_day),
        cmocka_unit_test(test_acn_garage),
        cmocka_unit_test(test_meter_messages),
        cmocka_unit_test(test_grid_rank),
        cmocka_unit_test(test_trace_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
