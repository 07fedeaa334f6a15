/*
 * Offers again after a move, without processes: a known site's hello (it
 * says one after every reconnect, a move to another broker among them) gets
 * its placed attempts offered again, with the same attempt numbers; not the
 * attempts it already started, not another site's. (The hub's own move to
 * another broker, which does the same for every site, needs a bus: it is
 * tested end to end in tests/integration/test_brokers.py.) And a site that
 * refuses an offer as busy (the hub's view was behind: an attempt it
 * cancelled still stopping there) does not use up the job's attempts, and is
 * not offered work again at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "core/jobstate.h"

#include <stdio.h>
#include <string.h>

static void say_hello(hubfix *f, const char *id)
{
    cJSON *body = cJSON_Parse("{\"cores\":4,\"memory_mb\":4096,\"power_budget_watts\":400,"
                              "\"watts_per_core\":10,\"idle_watts\":0}");
    hubfix_site_says(f, id, "hello", "hello", body);
    cJSON_Delete(body);
}

static void say_started(hubfix *f, const char *site, int64_t id)
{
    char text[160];
    snprintf(text, sizeof text, "{\"events\":[{\"job\":%lld,\"attempt\":1,\"event\":\"started\"}]}",
             (long long)id);
    cJSON *body = cJSON_Parse(text);
    hub__handle_events(f->h, hub__find_site(f->h, site), body);
    cJSON_Delete(body);
}

/* 1 if the site's offer batch holds (job, attempt) with a spec. */
static int offered(hub_site *s, int64_t job, int64_t attempt)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, s->offers)
    {
        int64_t j = 0, a = 0;
        if (jsonx_int(o, "job", 1, INT64_MAX, &j) == OP_OK &&
            jsonx_int(o, "attempt", 1, INT64_MAX, &a) == OP_OK && j == job && a == attempt &&
            cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "spec")))
            return 1;
    }
    return 0;
}

static void test_hello_offers_placed_attempts_again(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    int64_t first = hubfix_submit(f, "{\"kind\":\"noop\"}");
    int64_t second = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, first), JOB_PLACED);
    assert_int_equal(hubfix_state(f, second), JOB_PLACED);
    assert_true(offered(s, first, 1) && offered(s, second, 1));
    hub__discard_outgoing(f->h); /* sent, and lost in the old broker's session */
    assert_int_equal(cJSON_GetArraySize(s->offers), 0);

    say_started(f, "dc-1", first); /* the first reached the site before the move */
    assert_int_equal(hubfix_state(f, first), JOB_RUNNING);
    say_hello(f, "dc-1");
    assert_false(offered(s, first, 1));
    assert_true(offered(s, second, 1));
    assert_int_equal(cJSON_GetArraySize(s->offers), 1);
    assert_int_equal(hubfix_state(f, second), JOB_PLACED); /* nothing else changed */
}

static void test_hello_offers_nothing_of_other_sites(void **state)
{
    hubfix *f = *state;
    hub_site *one = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_true(offered(one, id, 1));
    hub_site *two = hubfix_site(f, "dc-2", CLASS_DC, 4, 400, 10);
    hub__discard_outgoing(f->h);
    say_hello(f, "dc-2");
    two = hub__find_site(f->h, "dc-2");
    one = hub__find_site(f->h, "dc-1");
    assert_int_equal(cJSON_GetArraySize(two->offers), 0);
    assert_int_equal(cJSON_GetArraySize(one->offers), 0);
}

static void say_refused(hubfix *f, const char *site, int64_t id, int64_t attempt, const char *ev)
{
    char text[200];
    snprintf(text, sizeof text,
             "{\"events\":[{\"job\":%lld,\"attempt\":%lld,\"event\":\"%s\","
             "\"reason\":\"site runs its maximum of 4 jobs\"}]}",
             (long long)id, (long long)attempt, ev);
    cJSON *body = cJSON_Parse(text);
    hub__handle_events(f->h, hub__find_site(f->h, site), body);
    cJSON_Delete(body);
}

static void test_busy_refusals_use_no_attempts(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"max_attempts\":2}");
    for (int64_t attempt = 1; attempt <= 5; attempt++) {
        s->busy_until_mono = 0; /* the hold is over */
        hub__place_pass(f->h);
        assert_int_equal(hubfix_state(f, id), JOB_PLACED);
        assert_true(offered(s, id, attempt));
        hub__discard_outgoing(f->h);
        say_refused(f, "dc-1", id, attempt, "busy");
        assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
        hub__place_pass(f->h); /* held: not offered again at once */
        assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
        assert_int_equal(cJSON_GetArraySize(s->offers), 0);
    }
    char reason[400], explanation[400];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(reason, "busy: the attempt is not counted"));
    assert_non_null(strstr(explanation, "refused work as busy"));
    /* a refusal that is not "busy" counts, and keeps the job away from the site */
    s->busy_until_mono = 0;
    hub__place_pass(f->h);
    assert_true(offered(s, id, 6));
    say_refused(f, "dc-1", id, 6, "refused");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_FAILED); /* its only site excluded it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello_offers_placed_attempts_again, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_hello_offers_nothing_of_other_sites, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_busy_refusals_use_no_attempts, hubfix_setup,
                                        hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
