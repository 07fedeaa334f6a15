/*
 * Heartbeats that carry only what changed, without processes: the hub keeps
 * every field a heartbeat leaves out (capacity, power, message counters), a
 * full heartbeat (the older form) still sets everything, and a heartbeat
 * without "running" renews nothing. A hub that runs behind does not lose
 * sites for its own lateness. Sites are found by id through the
 * registry's table, also after it grew past many sites. The broker a site
 * says it is on is kept and shown in the sites view.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "core/jobspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *full_beat(int cores, double envelope, double rank)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddArrayToObject(body, "running");
    jsonx_add_int(body, "cores", cores);
    jsonx_add_int(body, "memory_mb", 4096);
    cJSON_AddNumberToObject(body, "power_budget_watts", 300);
    cJSON_AddNumberToObject(body, "watts_per_core", 30);
    cJSON_AddNumberToObject(body, "idle_watts", 10);
    cJSON *m = cJSON_AddObjectToObject(body, "messages");
    jsonx_add_int(m, "forged", 3);
    cJSON *p = cJSON_AddObjectToObject(body, "power");
    cJSON_AddNumberToObject(p, "envelope_watts", envelope);
    cJSON_AddNumberToObject(p, "grid_rank", rank);
    jsonx_add_int(p, "region", 2);
    return body;
}

static void test_changes_only_keep_the_rest(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    cJSON *body = full_beat(6, 250, 0.25);
    hubfix_site_says(f, "dc-1", "state", "state", body);
    cJSON_Delete(body);
    assert_int_equal(s->cores, 6);
    assert_true(s->power_budget_watts == 300);
    assert_int_equal(s->region, 2);
    assert_true(s->grid_rank == 0.25);
    assert_non_null(s->messages);

    /* only the power changed: everything else stays as the full one set it */
    body = cJSON_CreateObject();
    cJSON_AddArrayToObject(body, "running");
    cJSON *p = cJSON_AddObjectToObject(body, "power");
    cJSON_AddNumberToObject(p, "envelope_watts", 120);
    cJSON_AddNumberToObject(p, "grid_rank", 0.75);
    jsonx_add_int(p, "region", 2);
    hubfix_site_says(f, "dc-1", "state", "state", body);
    cJSON_Delete(body);
    assert_int_equal(s->cores, 6);
    assert_int_equal(s->memory_mb, 4096);
    assert_true(s->watts_per_core == 30);
    assert_true(s->grid_rank == 0.75);
    assert_non_null(s->messages);
    assert_true(s->alive);

    /* nothing changed at all: an empty heartbeat still says the site is there */
    body = cJSON_CreateObject();
    s->last_heartbeat_mono = 0;
    hubfix_site_says(f, "dc-1", "state", "state", body);
    cJSON_Delete(body);
    assert_true(s->last_heartbeat_mono > 0);
    assert_int_equal(s->cores, 6);
    assert_true(s->grid_rank == 0.75);
    assert_int_equal(s->reported_running, 0);
}

/* The site's broker from its heartbeats: kept when a heartbeat leaves it out, junk ignored. */
static void say_broker(hubfix *f, const char *broker)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddArrayToObject(body, "running");
    if (broker) cJSON_AddStringToObject(body, "broker", broker);
    hubfix_site_says(f, "dc-1", "state", "state", body);
    cJSON_Delete(body);
}

static char *broker_in_sites_view(hubfix *f)
{
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    const cJSON *site = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "sites"),
        0);
    const char *broker = jsonx_str(site, "broker");
    char *copy = strdup(broker ? broker : "(none)");
    cJSON_Delete(resp);
    return copy;
}

static void test_broker_said_and_kept(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    char *seen = broker_in_sites_view(f);
    assert_string_equal(seen, ""); /* not said yet */
    free(seen);
    say_broker(f, "broker-a.example.org:8883");
    say_broker(f, NULL); /* unchanged: left out */
    assert_string_equal(s->broker, "broker-a.example.org:8883");
    say_broker(f, "10.0.0.2:1883"); /* moved */
    seen = broker_in_sites_view(f);
    assert_string_equal(seen, "10.0.0.2:1883");
    free(seen);
    /* what is not a host:port is not kept: empty, spaces, control characters, too long */
    char long_name[200];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *junk[] = {"", "a b:1", "evil\n:1", long_name};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        say_broker(f, junk[i]);
        assert_string_equal(s->broker, "10.0.0.2:1883");
    }
}

/* A hub behind on its heartbeats does not take its own lateness for the sites' silence. */
static void test_hub_lag_defers_loss(void **state)
{
    hubfix *f = *state;
    hub *h = f->h;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    hub_site *t = hubfix_site(f, "dc-2", CLASS_DC, 4, 400, 40);
    /* the heartbeats finished in the last second were all 3 s old: the hub is 3 s late */
    int64_t now = os_now_ms();
    h->links[0].lag_window_start_ms = now - 1500;
    h->links[0].lag_window_min_ms = 3000;
    hub__note_beat_age(h, now - 3000);
    assert_int_equal(h->links[0].beat_lag_ms, 3000);
    s->last_heartbeat_mono = os_mono_ms() - h->site_lost_after_ms - 1000; /* within the lag */
    t->last_heartbeat_mono = os_mono_ms() - h->site_lost_after_ms - 4000; /* beyond it */
    hub__check_fleet(h);
    assert_true(s->alive);
    assert_false(t->alive);
    assert_true(h->losses_deferred >= 1);
    /* one site's old clock cannot make the lag: the least age of the second counts */
    h->links[0].lag_window_start_ms = now - 1500;
    h->links[0].lag_window_min_ms = 20;
    hub__note_beat_age(h, now - 50000);
    assert_int_equal(h->links[0].beat_lag_ms, 20);
    /* a second link's lag is its own: its sites wait for it, the first link's do not */
    hub_site *u = hubfix_site(f, "dc-3", CLASS_DC, 4, 400, 40);
    h->n_links = 2;
    u->link = 1;
    s->alive = 1;
    s->last_heartbeat_mono = u->last_heartbeat_mono = os_mono_ms() - h->site_lost_after_ms - 1000;
    h->links[0].beat_lag_ms = 0;
    h->links[0].lag_window_start_ms = os_now_ms();
    h->links[1].lag_window_start_ms = os_now_ms() - 1500;
    h->links[1].lag_window_min_ms = 3000;
    h->msg_link = 1;
    hub__note_beat_age(h, os_now_ms() - 3000);
    h->msg_link = 0;
    assert_int_equal(h->links[1].beat_lag_ms, 3000);
    assert_int_equal(hub__beat_lag_ms(h), 3000);
    hub__check_fleet(h);
    assert_false(s->alive); /* link 0 is not late: 1 s past the timeout is lost */
    assert_true(u->alive);  /* link 1 is 3 s late: within it */
    h->n_links = 0;
    /* no heartbeats for two seconds: no lag, the plain timeout */
    s->alive = 1;
    h->links[0].lag_window_start_ms = os_now_ms() - 3000;
    h->links[0].beat_lag_ms = 3000;
    hub__check_fleet(h);
    assert_false(s->alive);
}

static void test_many_sites_found_by_id(void **state)
{
    hubfix *f = *state;
    char id[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "site-%d", i);
        assert_non_null(hub__add_site(f->h, id));
    }
    for (int i = 0; i < 3000; i += 7) {
        snprintf(id, sizeof id, "site-%d", i);
        hub_site *s = hub__find_site(f->h, id);
        assert_non_null(s);
        assert_string_equal(s->id, id);
    }
    assert_null(hub__find_site(f->h, "site-3000"));
    assert_null(hub__find_site(f->h, ""));
    /* the registry survives a restart: loaded back, found again */
    hubfix_reopen(f);
    assert_null(hub__find_site(f->h, "site-1")); /* in memory only: never enrolled */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hub_lag_defers_loss, hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_changes_only_keep_the_rest, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_many_sites_found_by_id, hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_broker_said_and_kept, hubfix_setup, hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
