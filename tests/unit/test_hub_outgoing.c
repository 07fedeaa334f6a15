/*
 * What the hub sends after a commit, through a real mosquitto broker: a hub
 * of 2,000 sites queues offers, acknowledgements and cancels to a few
 * hundred of them in a scattered order, and a watcher subscribed to every
 * site's inbox opens what arrives. Each site gets exactly what was queued
 * for it, a reply first, then one message per kind in the hub's order
 * (offers, acknowledgements, cancels) with the items in the order queued;
 * sites with nothing queued get nothing, and the flush visits only the
 * sites that had something (twice in a row: the list is emptied).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"
#include "helpers/testkit.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "io/bus.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITES 2000
#define TALKED 240 /* sites something is queued for, per round */
#define WAIT_MS 20000
#define MAX_GOT 6 /* messages kept per site (more is a failure) */

/* One message a site received: its type and the job (or "n") of each item, in order. */
typedef struct got_msg {
    char type[32];
    int64_t items[4];
    int n_items;
    char error[200]; /* an answer's "error", "" without */
} got_msg;

typedef struct fixture {
    hubfix *f;
    testkit_broker broker;
    ident *keys; /* site i's key: the watcher opens what was sealed to it */
    ident watcher_id;
    bus *watcher;
    got_msg got[SITES][MAX_GOT];
    int n_got[SITES];
    int received, unreadable;
} fixture;

static void site_id(char *buf, size_t size, int i)
{
    snprintf(buf, size, "o-%04d", i);
}

/* The watcher's callback: opened with the recipient's key, kept under its site. */
static void on_inbox(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                     const char *sig)
{
    fixture *fx = ctx;
    char realm[8], id[64], leaf[16];
    int i = -1;
    char *text = NULL;
    size_t text_len = 0;
    cJSON *body = NULL;
    msg_header hdr;
    fx->received++;
    if (proto_parse_topic(topic, realm, id, leaf) != OP_OK || sscanf(id, "o-%d", &i) != 1 ||
        i < 0 || i >= SITES || fx->n_got[i] == MAX_GOT ||
        msg_unseal(&fx->keys[i], payload, len, &text, &text_len) != OP_OK ||
        msg_parse(text, text_len, &body, &hdr) != OP_OK) {
        fx->unreadable++;
        free(text);
        return;
    }
    got_msg *g = &fx->got[i][fx->n_got[i]++];
    memset(g, 0, sizeof *g);
    snprintf(g->type, sizeof g->type, "%s", hdr.type);
    const char *err = jsonx_str(body, "error");
    if (err) snprintf(g->error, sizeof g->error, "%s", err);
    const char *key = strcmp(hdr.type, "ack") == 0 ? "acks" : "jobs";
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, key))
    {
        int64_t v = -1;
        if (jsonx_int(item, "job", 0, INT64_MAX, &v) != OP_OK)
            jsonx_int(item, "n", 0, INT64_MAX, &v);
        if (g->n_items < 4) g->items[g->n_items++] = v;
    }
    cJSON_Delete(body);
    free(text);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    void *hub_state = NULL;
    if (!fx || hubfix_setup(&hub_state) != 0) return -1;
    fx->f = hub_state;
    fx->keys = calloc(SITES, sizeof *fx->keys);
    if (!fx->keys || testkit_broker_start(&fx->broker) != 0) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    bus_close(fx->watcher);
    void *hub_state = fx->f;
    int rc = hubfix_teardown(&hub_state); /* closes the hub's bus */
    testkit_broker_stop(&fx->broker);
    for (int i = 0; i < SITES; i++)
        ident_wipe(&fx->keys[i]);
    free(fx->keys);
    free(fx);
    return rc;
}

static bus *open_bus(fixture *fx, const char *client_id, const ident *signer, bus_message_fn fn)
{
    bus_config config = {.host = "127.0.0.1",
                         .port = fx->broker.port,
                         .client_id = client_id,
                         .clean_start = 1,
                         .session_expiry_s = 60,
                         .keepalive_s = 5};
    bus *b = NULL;
    assert_int_equal(bus_open(&config, signer, fn, fx, &b), OP_OK);
    return b;
}

static void ignore(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                   const char *sig)
{
}

/* SITES sites with keys of their own, the hub on the broker, the watcher on every inbox. */
static void connect_all(fixture *fx)
{
    hub *h = fx->f->h;
    for (int i = 0; i < SITES; i++) {
        char id[32];
        site_id(id, sizeof id, i);
        snprintf(fx->keys[i].id, sizeof fx->keys[i].id, "%s", id);
        assert_int_equal(crypto_sign_keypair(fx->keys[i].pk, fx->keys[i].sk), 0);
        hub_site *s = hub__add_site(h, id);
        assert_non_null(s);
        memcpy(s->pk, fx->keys[i].pk, sizeof s->pk);
        s->alive = 1;
    }
    h->bus = open_bus(fx, "hub-outgoing-test", &h->identity, ignore);
    testkit_ident(&fx->watcher_id, "watcher", 7);
    fx->watcher = open_bus(fx, "watcher", &fx->watcher_id, on_inbox);
    assert_int_equal(bus_subscribe(fx->watcher, MSG_TOPIC_ROOT "site/+/inbox"), OP_OK);
    int64_t deadline = os_mono_ms() + WAIT_MS;
    while (!(bus_connected(h->bus) && bus_subscribed(fx->watcher)) && os_mono_ms() < deadline) {
        assert_int_equal(bus_loop(h->bus, 5), OP_OK);
        assert_int_equal(bus_loop(fx->watcher, 5), OP_OK);
    }
    assert_true(bus_connected(h->bus) && bus_subscribed(fx->watcher));
}

/* Runs the hub's and the watcher's network until want messages arrived or WAIT_MS passed. */
static void wait_received(fixture *fx, int want)
{
    int64_t deadline = os_mono_ms() + WAIT_MS;
    while (fx->received < want && os_mono_ms() < deadline) {
        assert_int_equal(bus_loop(fx->f->h->bus, 5), OP_OK);
        assert_int_equal(bus_loop(fx->watcher, 5), OP_OK);
    }
}

/* The k-th site spoken to in a round: scattered over the fleet, never twice in a round. */
static int talked_site(int round, int k)
{
    return (k * 7919 + round * 13) % SITES;
}

static cJSON *item(const char *key, int64_t v)
{
    cJSON *o = cJSON_CreateObject();
    jsonx_add_int(o, key, v);
    return o;
}

/*
 * One round: a welcome to the round's first site, then cancels, acknowledgements
 * and offers queued in passes over the sites in different orders (as a batch
 * of messages would), a second cancel last. Returns how many messages it means.
 */
static int queue_round(fixture *fx, int round)
{
    hub *h = fx->f->h;
    hub_site *first = &h->sites[talked_site(round, 0)];
    hub__queue_reply(h, "site", first->id, "inbox", cJSON_CreateObject(), "welcome", first->pk);
    for (int k = TALKED - 1; k >= 0; k--)
        if (k % 3 == 0) hub__send_cancel(h, &h->sites[talked_site(round, k)], k * 10 + 1, 1, "x");
    for (int k = 0; k < TALKED; k++) {
        hub_site *s = &h->sites[talked_site(round, k)];
        if (k % 2 == 0) hub__site_batch(h, s, &s->acks, item("n", k * 10 + 2));
    }
    for (int k = TALKED - 1; k >= 0; k--) {
        hub_site *s = &h->sites[talked_site(round, k)];
        hub__site_batch(h, s, &s->offers, item("job", k * 10 + 3));
        hub__site_batch(h, s, &s->offers, item("job", k * 10 + 4));
    }
    for (int k = 0; k < TALKED; k++)
        if (k % 3 == 0) hub__send_cancel(h, &h->sites[talked_site(round, k)], k * 10 + 5, 1, "x");
    return 1 + TALKED + (TALKED + 1) / 2 + (TALKED + 2) / 3;
}

static void expect_msg(const got_msg *g, const char *type, int n, int64_t a, int64_t b)
{
    assert_string_equal(g->type, type);
    assert_int_equal(g->n_items, n);
    assert_int_equal(g->items[0], a);
    if (n > 1) assert_int_equal(g->items[1], b);
}

/* What each site of the round received, in order; nothing for the others. */
static void check_round(fixture *fx, int round)
{
    int spoken[SITES] = {0};
    for (int k = 0; k < TALKED; k++) {
        int i = talked_site(round, k), m = 0;
        spoken[i] = 1;
        const got_msg *g = fx->got[i];
        if (k == 0) assert_string_equal(g[m++].type, "welcome");
        expect_msg(&g[m++], "offer", 2, k * 10 + 3, k * 10 + 4);
        if (k % 2 == 0) expect_msg(&g[m++], "ack", 1, k * 10 + 2, 0);
        if (k % 3 == 0) expect_msg(&g[m++], "cancel", 2, k * 10 + 1, k * 10 + 5);
        assert_int_equal(fx->n_got[i], m);
    }
    for (int i = 0; i < SITES; i++)
        if (!spoken[i]) assert_int_equal(fx->n_got[i], 0);
}

static void test_many_sites_get_their_messages_in_order(void **state)
{
    fixture *fx = *state;
    hub *h = fx->f->h;
    connect_all(fx);
    for (int round = 0; round < 2; round++) {
        memset(fx->n_got, 0, sizeof fx->n_got);
        fx->received = 0;
        int want = queue_round(fx, round);
        uint64_t visited = h->sites_flushed;
        hub__flush_outgoing(h);
        /* only the sites something was queued for were visited, and the list is empty */
        assert_int_equal(h->sites_flushed - visited, TALKED);
        assert_int_equal(h->n_queued, 0);
        wait_received(fx, want);
        if (fx->received != want)
            fail_msg("round %d: %d of %d messages arrived", round, fx->received, want);
        assert_int_equal(fx->unreadable, 0);
        check_round(fx, round);
    }
}

/*
 * An answer too large for one message (MSG_MAX_PAYLOAD_BYTES) is replaced by
 * an error that says so, under the same request id: the asker is not left
 * waiting for an answer that cannot be sent.
 */
static void test_too_large_answer_becomes_an_error(void **state)
{
    fixture *fx = *state;
    hub *h = fx->f->h;
    connect_all(fx);
    memset(fx->n_got, 0, sizeof fx->n_got);
    fx->received = 0;
    hub_site *s = &h->sites[0];
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "rid", "r-big");
    char *big = malloc(MSG_MAX_PAYLOAD_BYTES + 1);
    assert_non_null(big);
    memset(big, 'x', MSG_MAX_PAYLOAD_BYTES);
    big[MSG_MAX_PAYLOAD_BYTES] = '\0';
    cJSON_AddStringToObject(body, "tokens", big);
    free(big);
    hub__queue_reply(h, "site", s->id, "inbox", body, "resp", s->pk);
    hub__flush_outgoing(h);
    wait_received(fx, 1);
    assert_int_equal(fx->received, 1);
    assert_int_equal(fx->n_got[0], 1);
    assert_string_equal(fx->got[0][0].type, "resp");
    assert_non_null(strstr(fx->got[0][0].error, "larger than a message may be"));
}

/* A rolled-back batch drops what was queued: nothing is sent, and the next flush visits none. */
static void test_discarded_batches_leave_nothing_queued(void **state)
{
    fixture *fx = *state;
    hub *h = fx->f->h;
    connect_all(fx);
    queue_round(fx, 0);
    hub__discard_outgoing(h);
    for (int i = 0; i < SITES; i++) {
        assert_null(h->sites[i].offers);
        assert_false(h->sites[i].queued);
    }
    uint64_t visited = h->sites_flushed;
    hub__flush_outgoing(h);
    assert_int_equal(h->sites_flushed, visited);
    /* one offer after it: the broker keeps the hub's order, so it arrives alone */
    hub_site *s = &h->sites[5];
    hub__site_batch(h, s, &s->offers, item("job", 99));
    hub__flush_outgoing(h);
    wait_received(fx, 1);
    assert_int_equal(fx->received, 1);
    assert_int_equal(fx->n_got[5], 1);
    expect_msg(&fx->got[5][0], "offer", 1, 99, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_sites_get_their_messages_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_too_large_answer_becomes_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discarded_batches_leave_nothing_queued, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
