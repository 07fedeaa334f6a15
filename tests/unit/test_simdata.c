/*
 * Unit tests for simdata: the parsers of the real power data (times, ACN
 * and Turku sessions, pile counts, carbon and price series) on small
 * buffers, their errors (naming the line), and series lookups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "io/simfiles.h"
#include "sim/simdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_times(void **state)
{
    int64_t t;
    assert_int_equal(simdata_parse_time("1970-01-02", &t), OP_OK);
    assert_int_equal(t, 86400);
    assert_int_equal(simdata_parse_time("2020-12-01T13:59:06Z", &t), OP_OK);
    assert_int_equal(t, 1606831146);
    assert_int_equal(simdata_parse_time("2019-01-01T14:40", &t), OP_OK);
    assert_int_equal(t, 1546353600);
    assert_int_equal(simdata_parse_time("2019-12-20 00:30:00", &t), OP_OK);
    assert_int_equal(simdata_parse_time("2020-12-01 13:58:55.468429", &t), OP_OK);
    assert_int_equal(t, 1606831135);
    const char *bad[] = {"",
                         "2020",
                         "2020-13-01",
                         "2020-01-01T",
                         "2020-01-01T1:00",
                         "2020-01-01 10:61",
                         "2020-01-01Z",
                         "x020-01-01",
                         "2020-01-01 10:00:00 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(simdata_parse_time(bad[i], &t), OP_EINVAL);
}

#define ACN_HEADER                                                                                 \
    "session_id,station_id,space_id,site_id,cluster_id,timezone,connection_time_utc,"              \
    "disconnect_time_utc,done_charging_time_utc,kwh_delivered,user_id,n_user_inputs,"              \
    "kwh_requested,minutes_available,requested_departure_utc,wh_per_mile,miles_requested,"         \
    "payment_required\n"

static void test_acn_sessions(void **state)
{
    const char *text =
        ACN_HEADER "a,s,c,0002,0039,America/Los_Angeles,2020-12-01T16:00:00Z,2020-12-01T20:00:00Z,"
                   "2020-12-01T18:00:00Z,10.0,u,1,15.5,240,2020-12-01T19:30:00Z,310,50,True\n"
                   /* no stated departure, no charging end */
                   "b,s,c,0002,0039,America/Los_Angeles,2020-12-02T16:00:00Z,2020-12-02T17:00:00Z,,"
                   "2.0,u,0,,,,,,False\r\n"
                   /* zero energy: skipped */
                   "c,s,c,0002,0039,America/Los_Angeles,2020-12-02T16:00:00Z,2020-12-02T17:00:00Z,,"
                   "0,u,0,,,,,,False\n";
    simdata d;
    memset(&d, 0, sizeof d);
    char err[256] = "";
    assert_int_equal(simdata_parse_acn(&d, text, strlen(text), err, sizeof err), OP_OK);
    assert_int_equal(d.n_sessions, 2);
    assert_int_equal(d.n_stated, 1);
    const simdata_session *s = &d.sessions[0];
    assert_int_equal(s->connect_tod_s, 8 * 3600); /* 16:00 UTC is 08:00 in Pasadena */
    assert_int_equal(s->plugged_s, 4 * 3600);
    assert_int_equal(s->charging_s, 2 * 3600);
    assert_int_equal(s->stated_stay_s, 3 * 3600 + 1800);
    assert_true(s->kwh > 9.99f && s->kwh < 10.01f);
    assert_int_equal(d.sessions[1].stated_stay_s, -1);
    assert_int_equal(d.sessions[1].charging_s, 3600);
    const char *bad =
        ACN_HEADER "a,s,c,0002,0039,tz,2020-12-01T16:00:00Z,yesterday,,1,u,0,,,,,,x\n";
    assert_int_equal(simdata_parse_acn(&d, bad, strlen(bad), err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "line 2: connection/disconnect time"));
    const char *short_line = ACN_HEADER "a,b,c\n";
    assert_int_equal(simdata_parse_acn(&d, short_line, strlen(short_line), err, sizeof err),
                     OP_EINVAL);
    assert_non_null(strstr(err, "line 2: 3 fields, expected at least 15"));
    assert_int_equal(d.n_sessions, 2); /* kept what it had */
    simdata_clear(&d);
}

static void test_turku_sessions_and_rate(void **state)
{
    const char *text =
        "created_local,station_id,station_name,start_local,stop_local,duration_min,energy_wh,"
        "plug_type,cumulative_energy_wh,avg_power_w\n"
        "x,1100,A,2019-01-01T14:40,2019-01-01T15:44,64,3270,AC,3270,3065\n"
        "x,1100,A,2019-01-02T08:00,2019-01-02T10:00,120,6000,AC,9270,3000\n"
        "x,2500,B,2019-01-03T16:41,2019-01-03T16:41,0,-1050,AC,1,#DIV/0!\n" /* a glitch */
        "x,2500,B,2019-01-11T14:40,2019-01-11T15:40,60,5000,DC,6000,5000\n";
    simdata d;
    memset(&d, 0, sizeof d);
    char err[256] = "";
    assert_int_equal(simdata_parse_turku(&d, text, strlen(text), err, sizeof err), OP_OK);
    assert_int_equal(d.n_sessions, 3);
    assert_int_equal(d.sessions[0].connect_tod_s, 14 * 3600 + 40 * 60);
    assert_int_equal(d.sessions[1].plugged_s, 7200);
    /* 3 sessions, 2 points, 10 days from the first start to the last stop */
    double days = (double)(10 * 86400 + 3600) / 86400.0;
    assert_true(d.turku_sessions_per_point_day > 3 / 2.0 / days - 1e-9 &&
                d.turku_sessions_per_point_day < 3 / 2.0 / days + 1e-9);
    const char *bad = "h\nx,notanumber,A,2019-01-01T14:40,2019-01-01T15:44,64,3270\n";
    assert_int_equal(simdata_parse_turku(&d, bad, strlen(bad), err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "line 2: station_id/energy_wh"));
    /* a station id no int holds (found by fuzz_simdata): refused, not converted */
    const char *huge = "h\nx,1.2e12,A,2019-01-01T14:40,2019-01-01T15:44,64,3270\n";
    assert_int_equal(simdata_parse_turku(&d, huge, strlen(huge), err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "a station id 0.."));
    simdata_clear(&d);
}

static void test_series_and_piles(void **state)
{
    simdata_series s;
    memset(&s, 0, sizeof s);
    char err[256] = "";
    const char *ci = "Time,Carbon Intensity\n2019-12-20 00:00:00,120.5\n2019-12-20 00:30:00,135\n";
    assert_int_equal(simdata_parse_series(&s, ci, strlen(ci), err, sizeof err), OP_OK);
    assert_int_equal(s.n, 2);
    int64_t t0;
    assert_int_equal(simdata_parse_time("2019-12-20 00:00:00", &t0), OP_OK);
    assert_true(simdata_series_at(&s, t0 - 100) == 120.5); /* before the start: the first */
    assert_true(simdata_series_at(&s, t0 + 1799) == 120.5);
    assert_true(simdata_series_at(&s, t0 + 1800) == 135);
    assert_true(simdata_series_at(&s, t0 + 99999) == 135);
    free(s.t_s);
    free(s.value);
    memset(&s, 0, sizeof s);
    /* local time: the autumn hour repeated is kept once; time going back is an error */
    const char *price = "date,hour,Price\n2016-10-30,02:00:00,33.11\n2016-10-30,02:00:00,32.93\n"
                        "2016-10-30,03:00:00,31.4\n";
    assert_int_equal(simdata_parse_series(&s, price, strlen(price), err, sizeof err), OP_OK);
    assert_int_equal(s.n, 2);
    const char *back = "date,hour,Price\n2016-10-30,03:00:00,1\n2016-10-30,02:00:00,2\n";
    assert_int_equal(simdata_parse_series(&s, back, strlen(back), err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "times must increase"));
    const char *nan = "Time,v\n2019-12-20 01:00:00,nan\n";
    assert_int_equal(simdata_parse_series(&s, nan, strlen(nan), err, sizeof err), OP_EINVAL);
    free(s.t_s);
    free(s.value);
    simdata d;
    memset(&d, 0, sizeof d);
    const char *piles = "station_id,longitude,latitude,charge_count,TAZID,area,perimeter\n"
                        "1001,113.7,22.7,20,559,5726523.0,9624.5\n1002,113.7,22.7,3,558,1,1\n";
    assert_int_equal(simdata_parse_piles(&d, piles, strlen(piles), err, sizeof err), OP_OK);
    assert_int_equal(d.n_piles, 2);
    assert_int_equal(d.piles[0], 20);
    const char *zero = "h\n1,2,3,0,5,6,7\n";
    assert_int_equal(simdata_parse_piles(&d, zero, strlen(zero), err, sizeof err), OP_EINVAL);
    simdata_clear(&d);
}

static void test_load_missing_folder(void **state)
{
    simdata d;
    char err[512] = "";
    assert_int_equal(simfiles_load(&d, "/nonexistent/power", err, sizeof err), OP_ENOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/power/acn_caltech_sessions"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_acn_sessions),
        cmocka_unit_test(test_turku_sessions_and_rate),
        cmocka_unit_test(test_series_and_piles),
        cmocka_unit_test(test_load_missing_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
