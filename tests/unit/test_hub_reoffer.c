/*
 * Offers again after a move, without processes: a known site's hello (it
 * says one after every reconnect, a move to another broker among them) gets
 * its placed attempts offered again, with the same attempt numbers; not the
 * attempts it already started, not another site's. (The hub's own move to
 * another broker, which does the same for every site, needs a bus: it is
 * tested end to end in tests/integration/test_brokers.py.)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello_offers_placed_attempts_again, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_hello_offers_nothing_of_other_sites, hubfix_setup,
                                        hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
