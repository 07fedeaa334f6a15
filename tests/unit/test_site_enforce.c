/*
 * Unit tests of the site's power enforcement (src/site/enforce.c) on a site
 * built in memory with three real sandboxed jobs (`sleep`, 2 cores each at
 * 10 W per core, 5 W idle: 65 W in all). Over the envelope the newest job
 * goes first; a short demand-response cut pauses it instead of handing it
 * back; a long cut, or a pause that lasts too long, hands it back.
 */
#include "base/err.h"
#include "base/os.h"
#include "helpers/site_fixture.h"
#include "site/site_int.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define SLEEPER "{\"kind\":\"exec\",\"command\":[\"sleep\",\"30\"],\"resources\":{\"cores\":2}}"

/* Starts three jobs (ids 1, 2, 3; 3 the newest) as if accepted before a restart: no store. */
static int start_three(site *s)
{
    cJSON *spec = site_fixture_json(SLEEPER);
    for (int id = 1; id <= 3; id++)
        site__accept_job(s, id, 1, spec, 1, 0);
    cJSON_Delete(spec);
    if (s->n_jobs != 3) return -1;
    for (int i = 0; i < 3; i++) {
        if (!s->jobs[i]->run) return -1;
        s->jobs[i]->started_mono = 1000 * (i + 1); /* a clear order, oldest first */
    }
    return 0;
}

static int setup(void **state)
{
    site *s = site_fixture_new(0);
    *state = s;
    return s && start_three(s) == 0 ? 0 : -1;
}

static int setup_with_store(void **state)
{
    site *s = site_fixture_new(1);
    *state = s;
    return s && start_three(s) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    site_fixture_free(*state);
    return 0;
}

static site_job *job(site *s, int64_t id)
{
    site_job *j = site__find_job(s, id, 1);
    assert_non_null(j);
    return j;
}

static void assert_untouched(site *s, int64_t id)
{
    site_job *j = job(s, id);
    assert_int_equal(j->shed, 0);
    assert_int_equal(j->departing_until, 0);
    assert_int_equal(j->paused_since, 0);
    assert_true(site__job_draws(j));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void test_within_envelope_nothing_stops(void **state)
{
    site *s = *state;
    double draw = 0;
    assert_null(site__over_envelope(s, 65, &draw));
    assert_true(draw == 65);
    site__enforce_power(s); /* the config's 100 W */
    assert_true(s->inside_envelope);
    for (int id = 1; id <= 3; id++)
        assert_untouched(s, id);
}

static void test_over_envelope_newest_shed(void **state)
{
    site *s = *state;
    double draw = 0;
    assert_ptr_equal(site__over_envelope(s, 50, &draw), job(s, 3));
    assert_true(draw == 65);
    s->budget_watts = 50; /* 65 W over 50 W: one job of 20 W is enough */
    site__enforce_power(s);
    assert_true(s->power_budget_watts == 50);
    assert_false(s->inside_envelope);
    site_job *newest = job(s, 3);
    assert_int_equal(newest->shed, 1);
    assert_true(newest->departing_until > 0);
    assert_int_equal(newest->paused_since, 0);
    assert_untouched(s, 1);
    assert_untouched(s, 2);
    assert_null(site__over_envelope(s, 50, &draw));
    assert_true(draw == 45);
}

static void test_idle_draw_counts(void **state)
{
    site *s = *state;
    s->budget_watts = 64; /* the jobs' 60 W fit, not with the 5 W idle draw */
    site__enforce_power(s);
    assert_int_equal(job(s, 3)->shed, 1);
    assert_untouched(s, 1);
    assert_untouched(s, 2);
}

static void test_deep_cut_sheds_newest_first(void **state)
{
    site *s = *state;
    s->budget_watts = 30; /* room for one job: 5 + 20 */
    site__enforce_power(s);
    assert_int_equal(job(s, 3)->shed, 1);
    assert_int_equal(job(s, 2)->shed, 1);
    assert_untouched(s, 1);
}

/* A demand-response cap of 50 W for duration_ms from now. */
static void demand_response(site *s, int64_t duration_ms)
{
    s->meter.has |= POWER_METER_DR;
    s->meter.dr_watts = 50;
    s->meter.dr_until_ms = os_now_ms() + duration_ms;
}

static void test_short_demand_response_pauses(void **state)
{
    site *s = *state;
    demand_response(s, 10000); /* well within pause_max_ms (120 s) */
    assert_true(site__short_cut(s, "demand response", os_now_ms()));
    site__enforce_power(s);
    site_job *newest = job(s, 3);
    assert_true(newest->paused_since > 0);
    assert_int_equal(newest->shed, 0);
    assert_int_equal(newest->departing_until, 0);
    assert_false(site__job_draws(newest));
    assert_untouched(s, 1);
    assert_untouched(s, 2);
    /* the cut ends: the paused job resumes */
    s->meter.dr_until_ms = os_now_ms() - 1;
    site__enforce_power(s);
    assert_untouched(s, 3);
}

static void test_long_demand_response_sheds(void **state)
{
    site *s = *state;
    demand_response(s, 600000); /* longer than pause_max_ms */
    assert_false(site__short_cut(s, "demand response", os_now_ms()));
    site__enforce_power(s);
    assert_int_equal(job(s, 3)->shed, 1);
    assert_int_equal(job(s, 3)->paused_since, 0);
    assert_untouched(s, 1);
}

static void test_pause_too_long_hands_back(void **state)
{
    site *s = *state;
    demand_response(s, 10000);
    site__enforce_power(s);
    site_job *newest = job(s, 3);
    assert_true(newest->paused_since > 0);
    newest->paused_since = os_mono_ms() - s->pause_max_ms - 1;
    site__enforce_power(s);
    assert_int_equal(newest->shed, 1);
    assert_int_equal(newest->paused_since, 0);
    assert_true(newest->departing_until > 0);
}

static void test_shed_job_handed_back_with_reason(void **state)
{
    site *s = *state;
    s->budget_watts = 50;
    site__enforce_power(s);
    int64_t deadline = os_mono_ms() + 10000;
    while (site__find_job(s, 3, 1) && os_mono_ms() < deadline) {
        site__poll_jobs(s);
        sleep_ms(20);
    }
    assert_null(site__find_job(s, 3, 1));
    assert_int_equal(s->n_jobs, 2);
    assert_int_equal(cJSON_GetArraySize(s->results), 1);
    const cJSON *r = cJSON_GetArrayItem(s->results, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "retryable")), "site");
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(r, "error")),
                           "site-a shed it: its power envelope dropped below its draw"));
    assert_int_equal(s->store_failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_within_envelope_nothing_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_envelope_newest_shed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_draw_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_cut_sheds_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_demand_response_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_demand_response_sheds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_too_long_hands_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shed_job_handed_back_with_reason, setup_with_store,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
