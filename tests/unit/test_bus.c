/*
 * Unit tests for bus, the MQTT 5 adapter, against a real mosquitto that
 * each test starts on 127.0.0.1 and a free port (testkit): connecting
 * without waiting and waiting with a limit, signed QoS 1 messages received
 * with their kid and sig (and checked end to end with msg_open), sequence
 * numbers that keep increasing across a restart, the payload bound, refusals
 * while the link is down, reconnecting and resubscribing after the broker
 * is killed with SIGKILL and restarted on the same port, a persistent
 * session that keeps messages while its client is away, and a clean
 * disconnect the broker sees as one.
 *
 * Every wait is bounded; the bus runs only inside bus_loop, on this thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "io/bus.h"
#include "wire/msg.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define TOPIC "outpost/v1/test/"
#define PATTERN "outpost/v1/test/#"
#define SYNC_TOPIC TOPIC "sync"
#define WAIT_MS 10000
/* the bus backs off up to 5 s between attempts, plus jitter */
#define RECONNECT_MS 20000
#define INBOX_MAX 64
#define SIGNER_ID "site-1"

typedef struct received {
    char topic[128];
    char *payload;
    size_t len;
    char *kid; /* NULL when the message had none */
    char *sig;
} received;

typedef struct fixture {
    testkit_broker broker;
    ident signer;
    received inbox[INBOX_MAX];
    int count;
    int overflow;
    int in_loop;             /* set around every bus_loop this test makes */
    int called_outside_loop; /* the callback ran when it should not have */
    int want;                /* for got_enough() */
} fixture;

static char *dup_or_null(const void *bytes, size_t len)
{
    if (!bytes) return NULL;
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, bytes, len);
        copy[len] = '\0';
    }
    return copy;
}

/* The message callback: keeps a copy of everything for the test to look at. */
static void collect(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                    const char *sig)
{
    fixture *fx = ctx;
    if (!fx->in_loop) fx->called_outside_loop++;
    if (fx->count == INBOX_MAX) {
        fx->overflow++;
        return;
    }
    received *r = &fx->inbox[fx->count++];
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->payload = dup_or_null(payload ? payload : "", len);
    r->len = len;
    r->kid = dup_or_null(kid, kid ? strlen(kid) : 0);
    r->sig = dup_or_null(sig, sig ? strlen(sig) : 0);
}

static void clear_inbox(fixture *fx)
{
    for (int i = 0; i < fx->count; i++) {
        free(fx->inbox[i].payload);
        free(fx->inbox[i].kid);
        free(fx->inbox[i].sig);
    }
    memset(fx->inbox, 0, sizeof fx->inbox);
    fx->count = 0;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (testkit_broker_start(&fx->broker) != 0) {
        free(fx);
        return -1;
    }
    testkit_ident(&fx->signer, SIGNER_ID, 3);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    testkit_broker_stop(&fx->broker);
    clear_inbox(fx);
    int clean = fx->called_outside_loop == 0 && fx->overflow == 0;
    free(fx);
    return clean ? 0 : -1;
}

static bus *open_bus(fixture *fx, const char *client_id, int clean_start, int session_expiry_s)
{
    bus_config config = {.host = "127.0.0.1",
                         .port = fx->broker.port,
                         .client_id = client_id,
                         .clean_start = clean_start,
                         .session_expiry_s = session_expiry_s,
                         .keepalive_s = 5};
    bus *b = NULL;
    assert_int_equal(bus_open(&config, &fx->signer, collect, fx, &b), OP_OK);
    assert_non_null(b);
    return b;
}

/* One round of the network for each bus given (either may be NULL). */
static void loop_once(fixture *fx, bus *a, bus *b)
{
    fx->in_loop = 1;
    if (a) assert_int_equal(bus_loop(a, 5), OP_OK);
    if (b) assert_int_equal(bus_loop(b, 5), OP_OK);
    fx->in_loop = 0;
}

typedef int (*done_fn)(fixture *fx, bus *a, bus *b);

/* Runs both buses until done says so (1) or timeout_ms passes (0). */
static int run_until(fixture *fx, bus *a, bus *b, done_fn done, int timeout_ms)
{
    int64_t deadline = os_mono_ms() + timeout_ms;
    while (!done(fx, a, b)) {
        if (os_mono_ms() > deadline) return 0;
        loop_once(fx, a, b);
    }
    return 1;
}

static void run_for(fixture *fx, bus *a, bus *b, int ms)
{
    int64_t deadline = os_mono_ms() + ms;
    while (os_mono_ms() < deadline)
        loop_once(fx, a, b);
}

static int all_connected(fixture *fx, bus *a, bus *b)
{
    return (!a || bus_connected(a)) && (!b || bus_connected(b));
}

static int all_down(fixture *fx, bus *a, bus *b)
{
    return (!a || !bus_connected(a)) && (!b || !bus_connected(b));
}

static int all_acknowledged(fixture *fx, bus *a, bus *b)
{
    return (!a || bus_pending(a) == 0) && (!b || bus_pending(b) == 0);
}

static int got_enough(fixture *fx, bus *a, bus *b)
{
    return fx->count >= fx->want;
}

static void expect_messages(fixture *fx, bus *a, bus *b, int n)
{
    fx->want = n;
    if (!run_until(fx, a, b, got_enough, WAIT_MS))
        fail_msg("%d of %d messages arrived in %d ms", fx->count, n, WAIT_MS);
}

/*
 * Makes sure the broker has sub's subscription: sub publishes on the topic
 * itself (after its SUBSCRIBE on the same connection, so the broker handles
 * it after) and waits for it to come back. Empties the inbox.
 */
static void sync_subscription(fixture *fx, bus *sub, bus *other)
{
    if (!run_until(fx, sub, other, all_connected, WAIT_MS)) fail_msg("not connected");
    clear_inbox(fx);
    assert_int_equal(bus_publish_raw(sub, SYNC_TOPIC, "sync", 4, NULL, NULL), OP_OK);
    expect_messages(fx, sub, other, 1);
    assert_string_equal(fx->inbox[0].topic, SYNC_TOPIC);
    clear_inbox(fx);
}

/* A publisher and a subscriber to PATTERN, both connected, the subscription in force. */
static void open_pair(fixture *fx, bus **pub, bus **sub)
{
    *pub = open_bus(fx, "test-pub", 1, 0);
    *sub = open_bus(fx, "test-sub", 1, 0);
    assert_int_equal(bus_subscribe(*sub, PATTERN), OP_OK);
    sync_subscription(fx, *sub, *pub);
}

/* Publishes {"n": n} as type "count" and returns the body's seq. */
static uint64_t publish_count(bus *b, const char *topic, int n)
{
    cJSON *body = cJSON_CreateObject();
    jsonx_add_int(body, "n", n);
    assert_int_equal(bus_publish(b, topic, body, "count"), OP_OK);
    int64_t seq = 0;
    assert_int_equal(jsonx_int(body, "seq", 1, INT64_MAX / 2, &seq), OP_OK);
    cJSON_Delete(body);
    return (uint64_t)seq;
}

/* ---- connecting ---- */

static void test_connect_does_not_wait_and_wait_connects(void **state)
{
    fixture *fx = *state;
    bus *b = open_bus(fx, "test-connect", 1, 0);
    assert_false(bus_connected(b)); /* bus_open only starts */
    fx->in_loop = 1;
    assert_int_equal(bus_wait_connected(b, WAIT_MS), OP_OK);
    fx->in_loop = 0;
    assert_true(bus_connected(b));
    assert_int_equal(bus_pending(b), 0);
    const bus_stats *st = bus_get_stats(b);
    assert_int_equal(st->published, 0);
    assert_int_equal(st->received, 0);
    bus_close(b);
}

static void test_wait_times_out_without_a_broker(void **state)
{
    fixture *fx = *state;
    int port = testkit_free_port(); /* nothing listens there */
    assert_true(port > 0);
    bus_config config = {.host = "127.0.0.1",
                         .port = port,
                         .client_id = "test-nobody",
                         .clean_start = 1,
                         .keepalive_s = 5};
    bus *b = NULL;
    assert_int_equal(bus_open(&config, &fx->signer, collect, fx, &b), OP_OK);
    int64_t start = os_mono_ms();
    assert_int_equal(bus_wait_connected(b, 300), OP_ETIMEOUT);
    int64_t waited = os_mono_ms() - start;
    assert_true(waited >= 300 && waited < 3000);
    assert_false(bus_connected(b));

    /* publishing with no connection is refused and counted */
    cJSON *body = cJSON_CreateObject();
    assert_int_equal(bus_publish(b, TOPIC "x", body, "ping"), OP_EBUS);
    assert_int_equal(bus_publish_raw(b, TOPIC "x", "raw", 3, NULL, NULL), OP_EBUS);
    cJSON_Delete(body);
    assert_int_equal(bus_get_stats(b)->publish_errors, 2);
    assert_int_equal(bus_get_stats(b)->published, 0);
    assert_int_equal(bus_pending(b), 0);
    bus_close(b);
}

/* ---- messages ---- */

static int lookup_signer(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    fixture *fx = ctx;
    if (strcmp(kid, fx->signer.id) != 0) return OP_EUNKNOWN;
    *pk = fx->signer.pk;
    *window = NULL;
    return OP_OK;
}

/* What arrived is what was sent, signed by the signer: header, body, kid, sig, msg_open. */
static void expect_signed_ping(fixture *fx, const received *r, int64_t sent_at_ms)
{
    assert_string_equal(r->topic, TOPIC "ping");
    assert_string_equal(r->kid, SIGNER_ID);
    assert_non_null(r->sig);
    assert_int_equal(msg_verify(fx->signer.pk, r->topic, r->payload, r->len, r->sig), OP_OK);
    assert_int_equal(msg_verify(fx->signer.pk, TOPIC "other", r->payload, r->len, r->sig),
                     OP_ESIG); /* the topic is signed too */
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(r->payload, r->len, &body, &hdr), OP_OK);
    assert_string_equal(hdr.from, SIGNER_ID);
    assert_string_equal(hdr.type, "ping");
    assert_true(hdr.seq > 0);
    assert_true(hdr.ts_ms >= sent_at_ms - 1000 && hdr.ts_ms <= os_now_ms() + 1000);
    assert_string_equal(jsonx_str(body, "text"), "hello");
    cJSON_Delete(body);
    msg_stats stats = {0};
    char reason[128] = "";
    assert_int_equal(msg_open(r->topic, r->payload, r->len, r->kid, r->sig, lookup_signer, fx,
                              os_now_ms(), 60000, &body, &hdr, &stats, reason, sizeof reason),
                     OP_OK);
    assert_int_equal(stats.accepted, 1);
    cJSON_Delete(body);
}

static void test_publish_and_receive_signed(void **state)
{
    fixture *fx = *state;
    bus *pub = open_bus(fx, "test-pub", 1, 0);
    bus *sub = open_bus(fx, "test-sub", 1, 0);
    /* subscribed before the connection is up: made on connect */
    assert_int_equal(bus_subscribe(sub, PATTERN), OP_OK);
    sync_subscription(fx, sub, pub);

    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "text", "hello");
    int64_t sent_at = os_now_ms();
    assert_int_equal(bus_publish(pub, TOPIC "ping", body, "ping"), OP_OK);
    /* the caller still owns body, which now carries the header */
    assert_string_equal(jsonx_str(body, "from"), SIGNER_ID);
    assert_string_equal(jsonx_str(body, "type"), "ping");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(body, "seq")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(body, "ts")));
    cJSON_Delete(body);
    assert_int_equal(bus_get_stats(pub)->published, 1);
    expect_messages(fx, pub, sub, 1);
    expect_signed_ping(fx, &fx->inbox[0], sent_at);
    assert_true(run_until(fx, pub, sub, all_acknowledged, WAIT_MS)); /* PUBACK came back */
    run_for(fx, pub, sub, 100);
    assert_int_equal(fx->count, 1);                    /* once */
    assert_int_equal(bus_get_stats(sub)->received, 2); /* the sync message and this one */
    assert_int_equal(bus_get_stats(pub)->publish_errors, 0);
    assert_int_equal(fx->called_outside_loop, 0);
    bus_close(pub);
    bus_close(sub);
}

/*
 * A process with many descriptors (the swarm keeps three per virtual site):
 * a connection whose socket is numbered past FD_SETSIZE (1,024), which
 * select() cannot watch, still sends and receives.
 */
static void test_sockets_past_fd_setsize(void **state)
{
    fixture *fx = *state;
    struct rlimit lim;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
    if (lim.rlim_max < 2048) {
        printf("skipped: the hard descriptor limit (%llu) is under 2,048\n",
               (unsigned long long)lim.rlim_max);
        return;
    }
    struct rlimit raised = {.rlim_cur = 2048, .rlim_max = lim.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &raised), 0);
    int held[1100], n = 0;
    while (n < 1100 && (held[n] = open("/dev/null", O_RDONLY)) >= 0 && held[n] < 1100)
        n++;
    bus *pub = open_bus(fx, "test-pub-high-fd", 1, 0);
    bus *sub = open_bus(fx, "test-sub-high-fd", 1, 0);
    assert_int_equal(bus_subscribe(sub, PATTERN), OP_OK);
    sync_subscription(fx, sub, pub);
    assert_true(bus_socket(pub) >= 1024 && bus_socket(sub) >= 1024);
    publish_count(pub, TOPIC "high", 1);
    expect_messages(fx, pub, sub, 1);
    bus_close(pub);
    bus_close(sub);
    for (int i = 0; i < n; i++)
        close(held[i]);
    if (n < 1100 && held[n] >= 0) close(held[n]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
}

/* Sequence numbers increase message after message, and past a restart of the sender. */
static void test_sequence_numbers_increase(void **state)
{
    fixture *fx = *state;
    bus *pub, *sub;
    open_pair(fx, &pub, &sub);
    uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t seq = publish_count(pub, TOPIC "count", i);
        assert_true(seq > last);
        last = seq;
    }
    expect_messages(fx, pub, sub, 20);
    uint64_t seen = 0;
    for (int i = 0; i < 20; i++) {
        cJSON *body = NULL;
        msg_header hdr;
        assert_int_equal(msg_parse(fx->inbox[i].payload, fx->inbox[i].len, &body, &hdr), OP_OK);
        int64_t n = -1;
        assert_int_equal(jsonx_int(body, "n", 0, 100, &n), OP_OK);
        assert_int_equal(n, i); /* in order, each once */
        assert_true(hdr.seq > seen);
        seen = hdr.seq;
        cJSON_Delete(body);
    }
    assert_int_equal(seen, last);
    bus_close(pub);

    /* the same sender restarted: a receiver's replay window must accept what it sends */
    pub = open_bus(fx, "test-pub", 1, 0);
    assert_true(run_until(fx, pub, sub, all_connected, WAIT_MS));
    assert_true(publish_count(pub, TOPIC "count", 20) > last);
    bus_close(pub);
    bus_close(sub);
}

/*
 * Two connections of one sender sharing a counter (a hub on several brokers
 * at once): one sequence across both, each publish the next number, so a
 * receiver's replay window takes what comes through either.
 */
static void test_shared_sequence_across_connections(void **state)
{
    fixture *fx = *state;
    uint64_t counter = 0;
    bus_config config = {.host = "127.0.0.1",
                         .port = fx->broker.port,
                         .client_id = "test-shared-a",
                         .clean_start = 1,
                         .keepalive_s = 5,
                         .seq_start = 5000000,
                         .seq_shared = &counter};
    bus *a = NULL, *b = NULL;
    assert_int_equal(bus_open(&config, &fx->signer, collect, fx, &a), OP_OK);
    assert_int_equal(counter, 5000000); /* raised to seq_start */
    config.client_id = "test-shared-b";
    config.seq_start = 100; /* lower: the shared counter is not set back */
    assert_int_equal(bus_open(&config, &fx->signer, collect, fx, &b), OP_OK);
    assert_int_equal(counter, 5000000);
    assert_true(run_until(fx, a, b, all_connected, WAIT_MS));
    msg_window window = {0};
    for (int i = 0; i < 10; i++) {
        uint64_t seq = publish_count(i % 2 ? b : a, TOPIC "shared", i);
        assert_int_equal(seq, 5000001 + (uint64_t)i);
        assert_int_equal(bus_seq(a), seq);
        assert_int_equal(bus_seq(b), seq);
        assert_int_equal(msg_window_accept(&window, seq), OP_OK);
    }
    bus_close(a);
    bus_close(b);
}

static void test_payload_bounds(void **state)
{
    fixture *fx = *state;
    bus *pub, *sub;
    open_pair(fx, &pub, &sub);
    size_t max = MSG_MAX_PAYLOAD_BYTES;
    char *big = malloc(max + 1);
    assert_non_null(big);
    for (size_t i = 0; i < max + 1; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(bus_publish_raw(pub, TOPIC "big", big, max + 1, NULL, NULL), OP_ETOOBIG);
    assert_int_equal(bus_get_stats(pub)->published, 0);
    assert_int_equal(bus_publish_raw(pub, TOPIC "big", big, max, NULL, NULL), OP_OK);
    assert_int_equal(bus_publish_raw(pub, TOPIC "empty", "", 0, "k", "not-a-signature"), OP_OK);
    expect_messages(fx, pub, sub, 2);
    assert_int_equal(fx->inbox[0].len, max);
    assert_memory_equal(fx->inbox[0].payload, big, max);
    assert_null(fx->inbox[0].kid); /* unsigned, and handed over as such */
    assert_null(fx->inbox[0].sig);
    assert_int_equal(fx->inbox[1].len, 0);
    assert_string_equal(fx->inbox[1].kid, "k"); /* not verified by the bus */
    assert_string_equal(fx->inbox[1].sig, "not-a-signature");

    /* a body whose signed form is past the bound */
    cJSON *body = cJSON_CreateObject();
    big[max - 64] = '\0';
    cJSON_AddStringToObject(body, "blob", big);
    assert_int_equal(bus_publish(pub, TOPIC "big", body, "blob"), OP_ETOOBIG);
    cJSON_Delete(body);
    free(big);
    assert_int_equal(bus_get_stats(pub)->published, 2);
    run_for(fx, pub, sub, 200);
    assert_int_equal(fx->count, 2);
    bus_close(pub);
    bus_close(sub);
}

/*
 * A publish refused with OP_EBUS while the link is down must not be sent
 * after the reconnect (libmosquitto would queue it): the caller, told it
 * failed, sends it again, and a late copy would be a duplicate under a new
 * seq whose PUBACK makes bus_pending drop below what is really in flight.
 */
static void test_refused_publish_is_not_sent_later(void **state)
{
    fixture *fx = *state;
    bus *pub, *sub;
    open_pair(fx, &pub, &sub);
    testkit_broker_kill(&fx->broker);
    assert_true(run_until(fx, pub, sub, all_down, WAIT_MS));
    cJSON *body = cJSON_CreateObject();
    assert_int_equal(bus_publish(pub, TOPIC "refused", body, "ping"), OP_EBUS);
    cJSON_Delete(body);
    assert_int_equal(testkit_broker_start(&fx->broker), 0);
    /* the subscriber first, so that a late copy would have somewhere to go */
    assert_true(run_until(fx, sub, NULL, all_connected, RECONNECT_MS));
    sync_subscription(fx, sub, NULL);
    assert_true(run_until(fx, pub, sub, all_connected, RECONNECT_MS));
    run_for(fx, pub, sub, 1000);
    for (int i = 0; i < fx->count; i++)
        assert_string_not_equal(fx->inbox[i].topic, TOPIC "refused");
    char *log = testkit_broker_log(&fx->broker);
    assert_null(strstr(log, "'" TOPIC "refused'"));
    free(log);
    bus_close(pub);
    bus_close(sub);
}

/* ---- losing the broker ---- */

static void test_reconnect_after_broker_killed(void **state)
{
    fixture *fx = *state;
    bus *pub, *sub;
    open_pair(fx, &pub, &sub);
    publish_count(pub, TOPIC "before", 1);
    expect_messages(fx, pub, sub, 1);
    clear_inbox(fx);
    uint64_t attempts_before = bus_get_stats(sub)->reconnects;

    testkit_broker_kill(&fx->broker);
    if (!run_until(fx, pub, sub, all_down, WAIT_MS)) fail_msg("the loss was not noticed");
    assert_int_equal(bus_pending(pub), 0);
    run_for(fx, pub, sub, 300); /* attempts fail while nothing listens */
    assert_false(bus_connected(pub));

    assert_int_equal(testkit_broker_start(&fx->broker), 0); /* same port, a fresh broker */
    if (!run_until(fx, pub, sub, all_connected, RECONNECT_MS))
        fail_msg("not reconnected within %d ms", RECONNECT_MS);
    assert_true(bus_get_stats(sub)->reconnects > attempts_before);
    /* the new broker knows nothing of the old subscription: the bus made it again */
    sync_subscription(fx, sub, pub);
    publish_count(pub, TOPIC "after", 2);
    expect_messages(fx, pub, sub, 1);
    assert_string_equal(fx->inbox[0].topic, TOPIC "after");
    assert_true(run_until(fx, pub, sub, all_acknowledged, WAIT_MS));
    bus_close(pub);
    bus_close(sub);
}

/* A persistent session (clean_start 0, a session expiry) gets what was sent while it was away. */
static void test_persistent_session_keeps_messages(void **state)
{
    fixture *fx = *state;
    bus *pub = open_bus(fx, "test-pub", 1, 0);
    bus *site = open_bus(fx, "test-site", 0, 60);
    assert_int_equal(bus_subscribe(site, PATTERN), OP_OK);
    sync_subscription(fx, site, pub);
    bus_close(site);

    for (int i = 0; i < 3; i++)
        publish_count(pub, TOPIC "queued", i);
    assert_true(run_until(fx, pub, NULL, all_acknowledged, WAIT_MS));
    assert_int_equal(fx->count, 0);

    site = open_bus(fx, "test-site", 0, 60);
    expect_messages(fx, pub, site, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(fx->inbox[i].topic, TOPIC "queued");
    bus_close(site);
    bus_close(pub);
}

/* 1 when a line of text starts with head and also holds tail. */
static int has_line(const char *text, const char *head, const char *tail)
{
    const char *line = text;
    while (*line) {
        size_t len = strcspn(line, "\n");
        if (!strncmp(line, head, strlen(head))) {
            const char *found = strstr(line, tail);
            if (found && found + strlen(tail) <= line + len) return 1;
        }
        line += len;
        if (*line) line++;
    }
    return 0;
}

/* Waits until the broker has logged such a line (the log grows: a fresh copy each time). */
static int broker_logged(fixture *fx, const char *head, const char *tail)
{
    int64_t deadline = os_mono_ms() + WAIT_MS;
    for (;;) {
        char *log = testkit_broker_log(&fx->broker);
        int found = has_line(log, head, tail);
        free(log);
        if (found) return 1;
        if (os_mono_ms() > deadline) return 0;
        testkit_sleep_ms(20);
    }
}

/* bus_close says goodbye: the broker logs a DISCONNECT, not a dropped connection. */
static void test_clean_disconnect(void **state)
{
    fixture *fx = *state;
    bus *b = open_bus(fx, "test-clean", 1, 0);
    assert_true(run_until(fx, b, NULL, all_connected, WAIT_MS));
    bus_close(b);
    if (!broker_logged(fx, "Client test-clean ", "")) fail_msg("the broker never saw it go");
    char *log = testkit_broker_log(&fx->broker);
    testkit_assert_contains(log, "\nReceived DISCONNECT from test-clean\n");
    testkit_assert_contains(log, "\nClient test-clean disconnected.\n");
    assert_null(strstr(log, "Client test-clean closed its connection"));
    free(log);
}

/*
 * The callback runs only inside bus_loop (the header's promise): a message
 * already on its way when the caller closes the bus must not reach a
 * callback whose context the caller may be tearing down.
 */
static void test_close_does_not_run_the_callback(void **state)
{
    fixture *fx = *state;
    bus *pub, *sub;
    open_pair(fx, &pub, &sub);
    publish_count(pub, TOPIC "late", 1);
    assert_true(run_until(fx, pub, NULL, all_acknowledged, WAIT_MS));
    assert_true(broker_logged(fx, "Sending PUBLISH to test-sub ", "'" TOPIC "late'"));
    bus_close(sub); /* the message is in the subscriber's socket, unread */
    assert_int_equal(fx->called_outside_loop, 0);
    assert_int_equal(fx->count, 0);
    bus_close(pub);
}

/* Subscriptions are bounded; past the bound the call is refused and the others still work. */
static void test_subscription_bound(void **state)
{
    fixture *fx = *state;
    bus *pub = open_bus(fx, "test-pub", 1, 0);
    bus *sub = open_bus(fx, "test-sub", 1, 0);
    char pattern[64];
    int accepted = 0, rc;
    while (accepted < 1000) {
        snprintf(pattern, sizeof pattern, TOPIC "p%d", accepted);
        if ((rc = bus_subscribe(sub, pattern)) != OP_OK) break;
        accepted++;
    }
    assert_int_equal(rc, OP_EFULL);
    assert_true(accepted >= 1 && accepted < 1000);
    assert_true(run_until(fx, pub, sub, all_connected, WAIT_MS));
    /* the last accepted one is in force: the subscriber's own message on it comes back */
    snprintf(pattern, sizeof pattern, TOPIC "p%d", accepted - 1);
    assert_int_equal(bus_publish_raw(sub, pattern, "x", 1, NULL, NULL), OP_OK);
    expect_messages(fx, pub, sub, 1);
    assert_string_equal(fx->inbox[0].topic, pattern);
    bus_close(pub);
    bus_close(sub);
}

static int all_subscribed(fixture *fx, bus *a, bus *b)
{
    return (!a || bus_subscribed(a)) && (!b || bus_subscribed(b));
}

/* Ready means connected with every subscription granted: not before, and not after a drop. */
static void test_subscribed_after_every_suback(void **state)
{
    fixture *fx = *state;
    bus *b = open_bus(fx, "test-ready", 1, 0);
    assert_int_equal(bus_subscribe(b, PATTERN), OP_OK);
    assert_int_equal(bus_subscribe(b, SYNC_TOPIC), OP_OK);
    assert_false(bus_subscribed(b));
    assert_true(run_until(fx, b, NULL, all_subscribed, WAIT_MS));
    assert_true(bus_connected(b));
    /* one more after the fact: not subscribed until its SUBACK too */
    assert_int_equal(bus_subscribe(b, TOPIC "more"), OP_OK);
    assert_false(bus_subscribed(b));
    assert_true(run_until(fx, b, NULL, all_subscribed, WAIT_MS));
    testkit_broker_kill(&fx->broker);
    assert_true(run_until(fx, b, NULL, all_down, WAIT_MS));
    assert_false(bus_subscribed(b));
    bus_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_does_not_wait_and_wait_connects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_times_out_without_a_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_and_receive_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sockets_past_fd_setsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_sequence_across_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_numbers_increase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_publish_is_not_sent_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_broker_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistent_session_keeps_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_does_not_run_the_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscription_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribed_after_every_suback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
