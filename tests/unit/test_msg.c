/*
 * Unit tests for msg: the signature over topic||0||payload, the JSON
 * header, the anti-replay window, and msg_open's checks end to end with a
 * lookup callback over a small in-memory directory of senders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "helpers/testkit.h"
#include "wire/ident.h"
#include "wire/msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "outpost/v1/site/site-1/heartbeat"
#define NOW_MS 1700000000000LL
#define SKEW_MS 30000LL

/* A deterministic identity from a one-byte seed (no files needed). */
/* Encodes a header-only message as from/type/seq/ts and signs it as signer. */
static char *build(const ident *signer, const char *topic, const char *from, uint64_t seq,
                   int64_t ts_ms, size_t *len, char sig[129])
{
    cJSON *body = cJSON_CreateObject();
    assert_non_null(body);
    cJSON_AddNumberToObject(body, "load", 0.5);
    char *text = msg_encode(body, from, "heartbeat", seq, ts_ms, len);
    cJSON_Delete(body);
    assert_non_null(text);
    assert_int_equal(msg_sign(signer, topic, text, *len, sig), OP_OK);
    return text;
}

/* ---- signature ---- */

static void test_sign_verify(void **state)
{
    ident alice, bob;
    testkit_ident(&alice, "alice", 1);
    testkit_ident(&bob, "bob", 2);
    const char *payload = "{\"x\":1}";
    size_t len = strlen(payload);
    char sig[129];
    assert_int_equal(msg_sign(&alice, TOPIC, payload, len, sig), OP_OK);
    assert_int_equal(strlen(sig), 128);
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len, sig), OP_OK);

    /* The signature covers exactly topic || 0x00 || payload. */
    uint8_t raw[64];
    assert_int_equal(util_unhex(sig, raw, 64), OP_OK);
    char signed_bytes[sizeof TOPIC + 16];
    memcpy(signed_bytes, TOPIC, sizeof TOPIC); /* includes the NUL separator */
    memcpy(signed_bytes + sizeof TOPIC, payload, len);
    assert_int_equal(ident_verify(alice.pk, signed_bytes, sizeof TOPIC + len, raw), OP_OK);

    /* Another topic, another payload, a changed byte of the signature, another key. */
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/site/site-2/heartbeat", payload, len, sig),
                     OP_ESIG);
    assert_int_equal(msg_verify(alice.pk, TOPIC, "{\"x\":2}", len, sig), OP_ESIG);
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len - 1, sig), OP_ESIG);
    char bad_sig[129];
    memcpy(bad_sig, sig, sizeof bad_sig);
    bad_sig[10] = bad_sig[10] == '0' ? '1' : '0';
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len, bad_sig), OP_ESIG);
    assert_int_equal(msg_verify(bob.pk, TOPIC, payload, len, sig), OP_ESIG);

    /* Malformed signature text. */
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len, NULL), OP_ESIG);
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len, ""), OP_ESIG);
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len, "abcd"), OP_ESIG);
    memcpy(bad_sig, sig, sizeof bad_sig);
    bad_sig[0] = 'x';
    assert_int_equal(msg_verify(alice.pk, TOPIC, payload, len, bad_sig), OP_ESIG);
    ident_wipe(&alice);
    ident_wipe(&bob);
}

static void test_topic_payload_boundary(void **state)
{
    /* Moving bytes across the topic/payload boundary must break the signature. */
    ident alice;
    testkit_ident(&alice, "alice", 1);
    char sig[129];
    assert_int_equal(msg_sign(&alice, "outpost/v1/a", "bc", 2, sig), OP_OK);
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/a", "bc", 2, sig), OP_OK);
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/ab", "c", 1, sig), OP_ESIG);
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/", "abc", 3, sig), OP_ESIG);
    /* Empty payload is signable. */
    assert_int_equal(msg_sign(&alice, "outpost/v1/a", NULL, 0, sig), OP_OK);
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/a", NULL, 0, sig), OP_OK);
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/a", "", 0, sig), OP_OK);
    assert_int_equal(msg_verify(alice.pk, "outpost/v1/b", "", 0, sig), OP_ESIG);
    ident_wipe(&alice);
}

/* ---- encode / parse ---- */

static void test_encode_parse_round_trip(void **state)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "job", "j-17");
    cJSON_AddNumberToObject(body, "cores", 4);
    size_t len = 0;
    char *text = msg_encode(body, "site-1", "result", 42, NOW_MS, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    cJSON_Delete(body);

    cJSON *parsed = NULL;
    msg_header hdr;
    memset(&hdr, 0, sizeof hdr);
    assert_int_equal(msg_parse(text, len, &parsed, &hdr), OP_OK);
    assert_string_equal(hdr.from, "site-1");
    assert_string_equal(hdr.type, "result");
    assert_true(hdr.seq == 42);
    assert_true(hdr.ts_ms == NOW_MS);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(parsed, "job")->valuestring, "j-17");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(parsed, "cores")->valueint, 4);
    cJSON_Delete(parsed);
    free(text);

    /* bus.c starts a sender's seq at now_ms x 1000: consecutive values must stay distinct
     * and exact on the wire. */
    uint64_t base = (uint64_t)NOW_MS * 1000;
    for (uint64_t s = base; s < base + 64; s++) {
        body = cJSON_CreateObject();
        text = msg_encode(body, "s", "t", s, 0, &len);
        cJSON_Delete(body);
        assert_int_equal(msg_parse(text, len, &parsed, &hdr), OP_OK);
        assert_true(hdr.seq == s);
        assert_true(hdr.ts_ms == 0);
        cJSON_Delete(parsed);
        free(text);
    }

    /* The largest exact JSON integer is accepted by the parser. */
    const char *max = "{\"from\":\"s\",\"type\":\"t\",\"seq\":9007199254740991,\"ts\":0}";
    assert_int_equal(msg_parse(max, strlen(max), &parsed, &hdr), OP_OK);
    assert_true(hdr.seq == 9007199254740991ULL);
    cJSON_Delete(parsed);
}

static void test_encode_replaces_existing_header(void **state)
{
    cJSON *body = cJSON_Parse("{\"from\":\"mallory\",\"seq\":\"x\",\"keep\":true}");
    assert_non_null(body);
    size_t len = 0;
    char *text = msg_encode(body, "site-1", "hello", 7, 5, &len);
    assert_non_null(text);
    cJSON_Delete(body);
    cJSON *parsed = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(text, len, &parsed, &hdr), OP_OK);
    assert_string_equal(hdr.from, "site-1");
    assert_true(hdr.seq == 7);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(parsed, "keep")));
    cJSON_Delete(parsed);
    free(text);
}

static void test_encode_with_differently_cased_key(void **state)
{
    /* A body key that differs from a header key only by case must not stop the header field
     * being set (and must not leak it). */
    cJSON *body = cJSON_Parse("{\"From\":\"x\",\"SEQ\":1,\"Type\":\"y\",\"TS\":2}");
    assert_non_null(body);
    size_t len = 0;
    char *text = msg_encode(body, "site-1", "hello", 9, 11, &len);
    assert_non_null(text);
    cJSON_Delete(body);
    cJSON *parsed = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(text, len, &parsed, &hdr), OP_OK);
    assert_string_equal(hdr.from, "site-1");
    assert_string_equal(hdr.type, "hello");
    assert_true(hdr.seq == 9);
    assert_true(hdr.ts_ms == 11);
    cJSON_Delete(parsed);
    free(text);
}

static void expect_parse_fails(const char *payload, int expected)
{
    cJSON *body = (cJSON *)0x1;
    msg_header hdr;
    int rc = msg_parse(payload, strlen(payload), &body, &hdr);
    if (rc != expected) print_error("payload: %s\n", payload);
    assert_int_equal(rc, expected);
    assert_ptr_equal(body, (cJSON *)0x1); /* nothing handed out */
}

static void test_parse_rejects(void **state)
{
    static const char *bad[] = {
        "",
        "not json",
        "[1,2,3]",
        "\"a string\"",
        "42",
        "null",
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1,\"ts\":1",    /* truncated */
        "{\"type\":\"t\",\"seq\":1,\"ts\":1}",                  /* no from */
        "{\"from\":\"a\",\"seq\":1,\"ts\":1}",                  /* no type */
        "{\"from\":\"a\",\"type\":\"t\",\"ts\":1}",             /* no seq */
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1}",            /* no ts */
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1.5,\"ts\":1}", /* non-integer seq */
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":\"1\",\"ts\":1}",
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":0,\"ts\":1}", /* seq starts at 1 */
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":-1,\"ts\":1}",
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":9007199254740992,\"ts\":1}", /* not exact */
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1e300,\"ts\":1}",
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1,\"ts\":-1}",
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1,\"ts\":1.25}",
        "{\"from\":\"a\",\"type\":\"t\",\"seq\":1,\"ts\":null}",
        "{\"from\":\"a/b\",\"type\":\"t\",\"seq\":1,\"ts\":1}", /* from with '/' */
        "{\"from\":\"\",\"type\":\"t\",\"seq\":1,\"ts\":1}",
        "{\"from\":\"a b\",\"type\":\"t\",\"seq\":1,\"ts\":1}",
        "{\"from\":\"#\",\"type\":\"t\",\"seq\":1,\"ts\":1}",
        "{\"from\":1,\"type\":\"t\",\"seq\":1,\"ts\":1}",
        "{\"from\":\"a\",\"type\":7,\"seq\":1,\"ts\":1}",
        "{\"from\":\"a\",\"type\":\"0123456789012345678901234567890x\",\"seq\":1,\"ts\":1}",
        "{\"from\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"type\":\"t\",\"seq\":1,\"ts\":1}", /* 64-character from */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_parse_fails(bad[i], OP_EINVAL);

    /* The longest accepted type is 31 bytes. */
    const char *ok = "{\"from\":\"a\",\"type\":\"0123456789012345678901234567890\",\"seq\":1,"
                     "\"ts\":1}";
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(ok, strlen(ok), &body, &hdr), OP_OK);
    assert_int_equal(strlen(hdr.type), 31);
    cJSON_Delete(body);
}

static void test_parse_respects_length(void **state)
{
    /* The payload is not NUL-terminated on the wire: bytes after len are not part of it. */
    const char buf[] = "{\"from\":\"a\",\"type\":\"t\",\"seq\":3,\"ts\":4}GARBAGE";
    size_t len = strlen(buf) - strlen("GARBAGE");
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(buf, len, &body, &hdr), OP_OK);
    assert_true(hdr.seq == 3);
    cJSON_Delete(body);
    body = NULL;
    assert_int_equal(msg_parse(buf, len - 1, &body, &hdr), OP_EINVAL);
    assert_null(body);
}

static void test_parse_too_big(void **state)
{
    size_t len = MSG_MAX_PAYLOAD_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(big, len, &body, &hdr), OP_ETOOBIG);
    assert_null(body);
    free(big);
}

/* ---- replay window ---- */

static void test_window_increasing_and_duplicates(void **state)
{
    msg_window w;
    memset(&w, 0, sizeof w);
    for (uint64_t s = 1; s <= 5; s++)
        assert_int_equal(msg_window_accept(&w, s), OP_OK);
    assert_true(w.top == 5);
    for (uint64_t s = 1; s <= 5; s++)
        assert_int_equal(msg_window_accept(&w, s), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 6), OP_OK);
    assert_int_equal(msg_window_accept(&w, 6), OP_EREPLAY);
}

static void test_window_out_of_order(void **state)
{
    msg_window w;
    memset(&w, 0, sizeof w);
    assert_int_equal(msg_window_accept(&w, 10), OP_OK);
    assert_int_equal(msg_window_accept(&w, 8), OP_OK);
    assert_int_equal(msg_window_accept(&w, 9), OP_OK);
    assert_true(w.top == 10);
    assert_int_equal(msg_window_accept(&w, 8), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 9), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 10), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 7), OP_OK);
    assert_int_equal(msg_window_accept(&w, 1), OP_OK);
    assert_int_equal(msg_window_accept(&w, 1), OP_EREPLAY);
}

static void test_window_older_than_window(void **state)
{
    msg_window w;
    memset(&w, 0, sizeof w);
    assert_int_equal(msg_window_accept(&w, 300), OP_OK);
    /* top - 256 is just outside; top - 255 is the oldest slot still tracked. */
    assert_int_equal(msg_window_check(&w, 300 - 256), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 300 - 256), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 1), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 300 - 255), OP_OK);
    assert_int_equal(msg_window_accept(&w, 300 - 255), OP_EREPLAY);
}

static void test_window_small_advance_clears_reused_slots(void **state)
{
    msg_window w;
    memset(&w, 0, sizeof w);
    for (uint64_t s = 1; s <= 256; s++)
        assert_int_equal(msg_window_accept(&w, s), OP_OK);
    assert_int_equal(msg_window_accept(&w, 300), OP_OK);
    /* 257..299 share bit slots with 1..43 but were never seen. */
    for (uint64_t s = 257; s < 300; s++)
        assert_int_equal(msg_window_accept(&w, s), OP_OK);
    /* 45..256 are still inside the window and were seen; 44 and older fell out. */
    for (uint64_t s = 45; s <= 256; s++)
        assert_int_equal(msg_window_check(&w, s), OP_EREPLAY);
    assert_int_equal(msg_window_check(&w, 44), OP_EREPLAY);
    assert_int_equal(msg_window_check(&w, 301), OP_OK);
}

static void test_window_big_jump_clears(void **state)
{
    msg_window w;
    memset(&w, 0, sizeof w);
    for (uint64_t s = 1; s <= 256; s++)
        assert_int_equal(msg_window_accept(&w, s), OP_OK);
    assert_int_equal(msg_window_accept(&w, 1000), OP_OK);
    assert_true(w.top == 1000);
    /* Every slot of the new window except 1000 itself is fresh. */
    for (uint64_t s = 1000 - 255; s < 1000; s++)
        assert_int_equal(msg_window_accept(&w, s), OP_OK);
    assert_int_equal(msg_window_accept(&w, 1000 - 256), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 1000), OP_EREPLAY);
}

static void test_window_check_does_not_record(void **state)
{
    msg_window w;
    memset(&w, 0, sizeof w);
    assert_int_equal(msg_window_check(&w, 5), OP_OK);
    assert_int_equal(msg_window_check(&w, 5), OP_OK);
    assert_true(w.top == 0);
    assert_int_equal(msg_window_accept(&w, 5), OP_OK);
    assert_int_equal(msg_window_check(&w, 5), OP_EREPLAY);
    assert_int_equal(msg_window_check(&w, 4), OP_OK);
    assert_int_equal(msg_window_check(&w, 6), OP_OK);
}

/* ---- msg_open end to end ---- */

typedef struct sender {
    const char *id;
    const uint8_t *pk;
    msg_window window;
    int use_window;
} sender;

typedef struct directory {
    sender senders[4];
    int n;
    int lookups;
} directory;

static int lookup(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    directory *d = ctx;
    d->lookups++;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->senders[i].id, kid) == 0) {
            *pk = d->senders[i].pk;
            *window = d->senders[i].use_window ? &d->senders[i].window : NULL;
            return OP_OK;
        }
    return OP_EUNKNOWN;
}

typedef struct fixture {
    ident alice, bob, mallory;
    directory dir;
    msg_stats stats;
    char reason[256];
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    testkit_ident(&f->alice, "alice", 1);
    testkit_ident(&f->bob, "bob", 2);
    testkit_ident(&f->mallory, "mallory", 3); /* not in the directory */
    f->dir.senders[0] = (sender){.id = "alice", .pk = f->alice.pk, .use_window = 1};
    f->dir.senders[1] = (sender){.id = "bob", .pk = f->bob.pk, .use_window = 1};
    f->dir.n = 2;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    ident_wipe(&f->alice);
    ident_wipe(&f->bob);
    ident_wipe(&f->mallory);
    free(f);
    return 0;
}

static int open_msg(fixture *f, const char *payload, size_t len, const char *kid, const char *sig,
                    cJSON **body, msg_header *hdr)
{
    f->reason[0] = '\0';
    return msg_open(TOPIC, payload, len, kid, sig, lookup, &f->dir, NOW_MS, SKEW_MS, body, hdr,
                    &f->stats, f->reason, sizeof f->reason);
}

static uint64_t total_drops(const msg_stats *s)
{
    return s->unsigned_msgs + s->unknown_sender + s->forged + s->malformed + s->expired +
           s->replayed + s->oversize;
}

static void test_open_accepted(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    char *payload = build(&f->alice, TOPIC, "alice", 1, NOW_MS, &len, sig);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_OK);
    assert_non_null(body);
    assert_string_equal(hdr.from, "alice");
    assert_string_equal(hdr.type, "heartbeat");
    assert_true(hdr.seq == 1);
    assert_true(hdr.ts_ms == NOW_MS);
    assert_true(cJSON_GetObjectItemCaseSensitive(body, "load")->valuedouble == 0.5);
    assert_true(f->stats.accepted == 1);
    assert_true(total_drops(&f->stats) == 0);
    assert_true(f->dir.senders[0].window.top == 1);
    cJSON_Delete(body);
    free(payload);
}

static void test_open_unsigned(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    char *payload = build(&f->alice, TOPIC, "alice", 1, NOW_MS, &len, sig);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_msg(f, payload, len, NULL, sig, &body, &hdr), OP_ESIG);
    assert_true(f->stats.unsigned_msgs == 1);
    assert_int_equal(open_msg(f, payload, len, "alice", NULL, &body, &hdr), OP_ESIG);
    assert_true(f->stats.unsigned_msgs == 2);
    assert_int_equal(open_msg(f, payload, len, NULL, NULL, &body, &hdr), OP_ESIG);
    assert_true(f->stats.unsigned_msgs == 3);
    assert_null(body);
    assert_true(f->stats.accepted == 0);
    assert_true(f->stats.forged == 0);
    assert_int_equal(f->dir.lookups, 0); /* rejected before any lookup */
    assert_non_null(strstr(f->reason, "unsigned"));
    free(payload);
}

static void test_open_unknown_sender(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    char *payload = build(&f->mallory, TOPIC, "mallory", 1, NOW_MS, &len, sig);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_msg(f, payload, len, "mallory", sig, &body, &hdr), OP_EUNKNOWN);
    assert_true(f->stats.unknown_sender == 1);
    assert_non_null(strstr(f->reason, "mallory"));
    /* An invalid kid is refused without asking the directory. */
    int lookups = f->dir.lookups;
    assert_int_equal(open_msg(f, payload, len, "../alice", sig, &body, &hdr), OP_EUNKNOWN);
    assert_int_equal(open_msg(f, payload, len, "", sig, &body, &hdr), OP_EUNKNOWN);
    assert_int_equal(f->dir.lookups, lookups);
    assert_true(f->stats.unknown_sender == 3);
    assert_null(body);
    assert_true(f->stats.accepted == 0);
    free(payload);
}

static void test_open_forged(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    /* Mallory signs a message claiming to be alice. */
    char *payload = build(&f->mallory, TOPIC, "alice", 100, NOW_MS, &len, sig);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_ESIG);
    assert_true(f->stats.forged == 1);
    assert_null(body);
    assert_non_null(strstr(f->reason, "signature"));
    free(payload);

    /* A forged message does not advance alice's window: her seq 50 is still fresh. */
    assert_true(f->dir.senders[0].window.top == 0);
    payload = build(&f->alice, TOPIC, "alice", 50, NOW_MS, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    body = NULL;

    /* Alice's genuine signature replayed on another topic. */
    f->reason[0] = '\0';
    assert_int_equal(msg_open("outpost/v1/hub/cmd", payload, len, "alice", sig, lookup, &f->dir,
                              NOW_MS, SKEW_MS, &body, &hdr, &f->stats, f->reason, sizeof f->reason),
                     OP_ESIG);
    assert_true(f->stats.forged == 2);

    /* Garbage signature text. */
    assert_int_equal(open_msg(f, payload, len, "alice", "zz", &body, &hdr), OP_ESIG);
    assert_true(f->stats.forged == 3);
    assert_null(body);
    free(payload);
}

static void test_open_kid_not_from(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    /* Bob signs correctly with his own key but claims to be alice in the payload. */
    char *payload = build(&f->bob, TOPIC, "alice", 1, NOW_MS, &len, sig);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_msg(f, payload, len, "bob", sig, &body, &hdr), OP_ESIG);
    assert_true(f->stats.forged == 1);
    assert_true(f->stats.accepted == 0);
    assert_null(body);
    assert_non_null(strstr(f->reason, "does not match"));
    /* Neither window moved. */
    assert_true(f->dir.senders[0].window.top == 0);
    assert_true(f->dir.senders[1].window.top == 0);
    free(payload);
}

static void test_open_timestamp_window(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    cJSON *body = NULL;
    msg_header hdr;
    char *payload = build(&f->alice, TOPIC, "alice", 1, NOW_MS - SKEW_MS - 1, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_EEXPIRED);
    assert_true(f->stats.expired == 1);
    assert_null(body);
    free(payload);

    payload = build(&f->alice, TOPIC, "alice", 2, NOW_MS + SKEW_MS + 1, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_EEXPIRED);
    assert_true(f->stats.expired == 2);
    assert_null(body);
    free(payload);

    /* An expired message did not use up its seq; the edges of the window are accepted. */
    payload = build(&f->alice, TOPIC, "alice", 1, NOW_MS - SKEW_MS, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    body = NULL;
    free(payload);
    payload = build(&f->alice, TOPIC, "alice", 2, NOW_MS + SKEW_MS, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    free(payload);
    assert_true(f->stats.accepted == 2);
    assert_true(f->stats.expired == 2);
}

static void test_open_replay(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    cJSON *body = NULL;
    msg_header hdr;
    char *payload = build(&f->alice, TOPIC, "alice", 7, NOW_MS, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    body = NULL;
    assert_int_equal(open_msg(f, payload, len, "alice", sig, &body, &hdr), OP_EREPLAY);
    assert_null(body);
    assert_true(f->stats.replayed == 1);
    assert_true(f->stats.accepted == 1);
    assert_non_null(strstr(f->reason, "replayed seq 7"));
    free(payload);

    /* Senders have separate windows: bob's seq 7 is fresh. */
    payload = build(&f->bob, TOPIC, "bob", 7, NOW_MS, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "bob", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    body = NULL;
    free(payload);

    /* A sender without a window skips replay checks. */
    f->dir.senders[1].use_window = 0;
    payload = build(&f->bob, TOPIC, "bob", 7, NOW_MS, &len, sig);
    assert_int_equal(open_msg(f, payload, len, "bob", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    free(payload);
    assert_true(f->stats.replayed == 1);
    assert_true(f->stats.accepted == 3);
}

static void test_open_malformed_signed(void **state)
{
    fixture *f = *state;
    static const char *bad[] = {
        "{not json",
        "[]",
        "{\"from\":\"alice\",\"type\":\"x\",\"seq\":0,\"ts\":1700000000000}",
        "{\"from\":\"alice\",\"type\":\"x\",\"ts\":1700000000000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char sig[129];
        size_t len = strlen(bad[i]);
        assert_int_equal(msg_sign(&f->alice, TOPIC, bad[i], len, sig), OP_OK);
        cJSON *body = NULL;
        msg_header hdr;
        assert_int_equal(open_msg(f, bad[i], len, "alice", sig, &body, &hdr), OP_EINVAL);
        assert_null(body);
        assert_true(f->stats.malformed == i + 1);
        assert_non_null(strstr(f->reason, "malformed"));
    }
    assert_true(f->stats.accepted == 0);
    assert_true(f->stats.forged == 0);
}

static void test_open_oversize(void **state)
{
    fixture *f = *state;
    size_t len = MSG_MAX_PAYLOAD_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    char sig[129];
    assert_int_equal(msg_sign(&f->alice, TOPIC, big, len, sig), OP_OK);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_msg(f, big, len, "alice", sig, &body, &hdr), OP_ETOOBIG);
    assert_null(body);
    assert_true(f->stats.oversize == 1);
    assert_int_equal(f->dir.lookups, 0); /* refused before lookup and signature work */
    assert_non_null(strstr(f->reason, "exceeds"));
    free(big);
}

static void test_window_restore_rejects_up_to_top(void **state)
{
    (void)state;
    msg_window w;
    memset(&w, 0, sizeof w);
    msg_window_restore(&w, 1000);
    assert_int_equal(msg_window_check(&w, 1000), OP_EREPLAY);
    assert_int_equal(msg_window_check(&w, 999), OP_EREPLAY);
    assert_int_equal(msg_window_check(&w, 1000 - 255), OP_EREPLAY);
    assert_int_equal(msg_window_check(&w, 1), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 1001), OP_OK);
    assert_int_equal(msg_window_accept(&w, 1001), OP_EREPLAY);
    assert_int_equal(msg_window_accept(&w, 1003), OP_OK);
    assert_int_equal(msg_window_accept(&w, 1002), OP_OK); /* reordered, newer than the restore */
    assert_int_equal(msg_window_accept(&w, 999), OP_EREPLAY);
    msg_window_restore(&w, 0); /* nothing persisted: an empty window */
    assert_int_equal(msg_window_accept(&w, 5), OP_OK);
}

/* Operators' nonces: any order, each once; pruning and eviction raise a floor. */
static void test_nonces_any_order_each_once(void **state)
{
    (void)state;
    msg_nonces set = {0};
    assert_int_equal(msg_nonces_accept(&set, 900, 1000), OP_OK);
    assert_int_equal(msg_nonces_accept(&set, 5, 1001), OP_OK);
    assert_int_equal(msg_nonces_accept(&set, 7, 999), OP_OK); /* older ts, still new */
    assert_int_equal(msg_nonces_accept(&set, 900, 1002), OP_EREPLAY);
    assert_int_equal(msg_nonces_accept(&set, 5, 1001), OP_EREPLAY);
    msg_nonces_clear(&set);
    assert_null(set.items);
}

static void test_nonces_prune_raises_floor(void **state)
{
    (void)state;
    msg_nonces set = {0};
    assert_int_equal(msg_nonces_accept(&set, 1, 100), OP_OK);
    assert_int_equal(msg_nonces_accept(&set, 2, 200), OP_OK);
    assert_int_equal(msg_nonces_accept(&set, 3, 300), OP_OK);
    msg_nonces_prune(&set, 250);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.floor_ms, 200);
    /* a pruned nonce again, or anything not newer than the floor: refused */
    assert_int_equal(msg_nonces_accept(&set, 1, 100), OP_EREPLAY);
    assert_int_equal(msg_nonces_accept(&set, 99, 200), OP_EREPLAY);
    assert_int_equal(msg_nonces_accept(&set, 99, 201), OP_OK);
    msg_nonces_clear(&set);
}

static void test_nonces_bounded_by_eviction(void **state)
{
    (void)state;
    msg_nonces set = {0};
    for (uint64_t i = 1; i <= MSG_NONCES_MAX + 10; i++)
        assert_int_equal(msg_nonces_accept(&set, i, (int64_t)(1000 + i)), OP_OK);
    assert_int_equal(set.n, MSG_NONCES_MAX);
    assert_int_equal(set.floor_ms, 1010);
    /* the evicted ones are still refused, by the floor */
    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(msg_nonces_accept(&set, i, (int64_t)(1000 + i)), OP_EREPLAY);
    /* anything at or below the floor is refused, whatever its nonce */
    assert_int_equal(msg_nonces_accept(&set, 1u << 30, 1005), OP_EREPLAY);
    msg_nonces_clear(&set);
}

static void test_bucket_takes_refills_and_refunds(void **state)
{
    (void)state;
    msg_bucket b = {0};
    assert_int_equal(msg_bucket_take(&b, 10, 10, 20, 5000), 1); /* full at first use */
    assert_int_equal(msg_bucket_take(&b, 10, 10, 20, 5000), 1);
    assert_int_equal(msg_bucket_take(&b, 1, 10, 20, 5000), 0);
    assert_int_equal(msg_bucket_take(&b, 5, 10, 20, 5500), 1); /* 5 units in 0.5 s */
    assert_int_equal(msg_bucket_take(&b, 1, 10, 20, 5500), 0);
    msg_bucket_give(&b, 100, 20); /* a refund never overfills */
    assert_int_equal(msg_bucket_take(&b, 20, 10, 20, 5500), 1);
    assert_int_equal(msg_bucket_take(&b, 1, 10, 20, 5500), 0);
    assert_int_equal(msg_bucket_take(&b, 20, 10, 20, 1000000), 1); /* capped at burst */
    assert_int_equal(msg_bucket_take(&b, 1, 10, 20, 1000000), 0);
}

/*
 * A payload whose string holds an escaped NUL is refused whole: cJSON would
 * hand the hub "tr" for "tr\u0000ue", so a job spec inside it would run
 * another program than the one signed (the hub and sites only see the tree).
 */
static void test_parse_refuses_nul_in_strings(void **state)
{
    (void)state;
    const char *ok = "{\"from\":\"op-1\",\"type\":\"req\",\"seq\":5,\"ts\":1000,"
                     "\"spec\":{\"command\":[\"true\"]}}";
    const char *bad = "{\"from\":\"op-1\",\"type\":\"req\",\"seq\":5,\"ts\":1000,"
                      "\"spec\":{\"command\":[\"tr\\u0000ue\"]}}";
    cJSON *parsed = NULL;
    msg_header hdr;
    assert_int_equal(msg_parse(ok, strlen(ok), &parsed, &hdr), OP_OK);
    cJSON_Delete(parsed);
    parsed = NULL;
    assert_int_equal(msg_parse(bad, strlen(bad), &parsed, &hdr), OP_EINVAL);
    assert_null(parsed);
    char raw[] = "{\"from\":\"op-1\",\"type\":\"req\",\"seq\":5,\"ts\":1000,\"x\":\"a b\"}";
    raw[strlen(raw) - 4] = '\0'; /* a raw NUL byte inside the string "a b" */
    assert_int_equal(msg_parse(raw, sizeof raw - 1, &parsed, &hdr), OP_EINVAL);
    assert_null(parsed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_restore_rejects_up_to_top),
        cmocka_unit_test(test_parse_refuses_nul_in_strings),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_topic_payload_boundary),
        cmocka_unit_test(test_encode_parse_round_trip),
        cmocka_unit_test(test_encode_replaces_existing_header),
        cmocka_unit_test(test_encode_with_differently_cased_key),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_respects_length),
        cmocka_unit_test(test_parse_too_big),
        cmocka_unit_test(test_window_increasing_and_duplicates),
        cmocka_unit_test(test_window_out_of_order),
        cmocka_unit_test(test_window_older_than_window),
        cmocka_unit_test(test_window_small_advance_clears_reused_slots),
        cmocka_unit_test(test_window_big_jump_clears),
        cmocka_unit_test(test_window_check_does_not_record),
        cmocka_unit_test(test_nonces_any_order_each_once),
        cmocka_unit_test(test_nonces_prune_raises_floor),
        cmocka_unit_test(test_nonces_bounded_by_eviction),
        cmocka_unit_test(test_bucket_takes_refills_and_refunds),
        cmocka_unit_test_setup_teardown(test_open_accepted, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_unsigned, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_unknown_sender, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_forged, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_kid_not_from, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_timestamp_window, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_replay, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_malformed_signed, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_oversize, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
