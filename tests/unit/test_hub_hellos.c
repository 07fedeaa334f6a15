/*
 * Hellos checked on the hub's worker threads, without processes: a new
 * site's hello (sealed, signed by the key inside, with a join token) goes
 * through hub__on_message to a worker and comes back enrolled, welcomed
 * once; a second hello from that site while the first is still in the
 * workers is dropped unchecked; a known site's repeated hello within the
 * welcome's round trip is not welcomed again, and is after it; a forged
 * hello is refused on the worker as it is inline.
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
#include "hub/workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* key's hello (with token_text, or without: a known site's), signed by signer, as the bus
 * hands it over. */
static void say_hello(hubfix *f, const ident *key, const ident *signer, const char *token_text)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "pubkey", key->pk_hex);
    if (token_text) cJSON_AddStringToObject(body, "token", token_text);
    jsonx_add_int(body, "cores", 8);
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len;
    assert_int_equal(proto_topic(topic, sizeof topic, "site", key->id, "hello"), OP_OK);
    char *payload = hubfix_signed(f, signer, topic, body, "hello", &len, sig);
    hub__on_message(f->h, topic, payload, len, key->id, sig);
    free(payload);
    cJSON_Delete(body);
}

/* Until the workers hold nothing: every checked message finished on this thread. */
static void drain(hubfix *f)
{
    for (int i = 0; i < 5000; i++) { /* a hang guard, not a speed limit */
        hub__finish_beats(f->h);
        if (!hub_workers_pending(f->h->workers)) return;
        usleep(1000);
    }
    fail_msg("the workers did not finish");
}

/* How many welcomes are queued for site id. */
static int welcomes(hubfix *f, const char *id)
{
    int n = 0;
    for (const hub_reply *r = f->h->replies; r; r = r->next)
        n += strstr(r->topic, id) && strcmp(r->type, "welcome") == 0;
    return n;
}

static void test_new_site_enrolled_through_a_worker(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-w1");
    ident site;
    hubfix_ident(&site, "dc-w1", 71);
    say_hello(f, &site, &site, tok);
    /* the loop did not check it: it waits in the workers */
    assert_null(hub__find_site(f->h, "dc-w1"));
    assert_int_equal(f->h->hellos_offloaded, 1);
    drain(f);
    hub_site *s = hub__find_site(f->h, "dc-w1");
    assert_non_null(s);
    assert_int_equal(s->class_bit, CLASS_DC);
    assert_int_equal(s->cores, 8);
    assert_memory_equal(s->pk, site.pk, 32);
    assert_int_equal(welcomes(f, "dc-w1"), 1);
    assert_int_equal(hub__commit(f->h), OP_OK);
    free(tok);
}

static void test_repeats_dropped_and_not_welcomed_twice(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-w2");
    ident site;
    hubfix_ident(&site, "dc-w2", 72);
    say_hello(f, &site, &site, tok);
    say_hello(f, &site, &site, tok); /* its repeat, before the first came back */
    assert_int_equal(f->h->hellos_offloaded, 1);
    assert_int_equal(f->h->hellos_repeated, 1);
    drain(f);
    assert_non_null(hub__find_site(f->h, "dc-w2"));
    assert_int_equal(welcomes(f, "dc-w2"), 1);
    /* enrolled now: its hello again, before our welcome could reach it */
    say_hello(f, &site, &site, NULL);
    drain(f);
    assert_int_equal(f->h->hellos_repeated, 2);
    assert_int_equal(welcomes(f, "dc-w2"), 1);
    /* later than a welcome's round trip: it restarted or moved, and is welcomed again */
    hub__find_site(f->h, "dc-w2")->welcomed_mono -= HUB_WELCOME_RTT_MS + 1;
    say_hello(f, &site, &site, NULL);
    drain(f);
    assert_int_equal(welcomes(f, "dc-w2"), 2);
    assert_int_equal(f->h->hellos_repeated, 2);
    free(tok);
}

static void test_forged_hello_refused_on_the_worker(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-w3");
    ident site, thief;
    hubfix_ident(&site, "dc-w3", 73);
    hubfix_ident(&thief, "dc-w3", 74);
    say_hello(f, &site, &thief, tok);
    drain(f);
    assert_null(hub__find_site(f->h, "dc-w3"));
    assert_int_equal(f->h->msg.forged, 1);
    assert_int_equal(welcomes(f, "dc-w3"), 0);
    /* the forgery's charge stays spent; the real site then enrolls */
    say_hello(f, &site, &site, tok);
    drain(f);
    assert_non_null(hub__find_site(f->h, "dc-w3"));
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_site_enrolled_through_a_worker,
                                        hubfix_setup_workers, hubfix_teardown_workers),
        cmocka_unit_test_setup_teardown(test_repeats_dropped_and_not_welcomed_twice,
                                        hubfix_setup_workers, hubfix_teardown_workers),
        cmocka_unit_test_setup_teardown(test_forged_hello_refused_on_the_worker,
                                        hubfix_setup_workers, hubfix_teardown_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
