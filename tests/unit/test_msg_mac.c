/*
 * Unit tests for heartbeat MACs (wire/msg.h): a MAC'd heartbeat opens under
 * its key and under no other; altered bytes, another topic, a missing key,
 * a sealed payload and any type but "state" are refused, and a refused one
 * leaves the replay window where it was; a MAC never passes for a
 * signature, so no receiver that expects one can be led to take it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "helpers/testkit.h"
#include "wire/ident.h"
#include "wire/msg.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "outpost/v1/site/site-1/state"
#define SKEW_MS 30000LL

static const uint8_t KEY[MSG_MAC_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* A message of type from site-1 at now with seq, MAC'd under key on topic. */
static char *build(const uint8_t *key, const char *topic, const char *type, uint64_t seq,
                   size_t *len, char mac[MSG_MAC_HEX_BYTES])
{
    cJSON *body = cJSON_CreateObject();
    assert_non_null(body);
    cJSON_AddNumberToObject(body, "free_cores", 3);
    char *text = msg_encode(body, "site-1", type, seq, os_now_ms(), len);
    cJSON_Delete(body);
    assert_non_null(text);
    msg_mac(key, topic, text, *len, mac);
    return text;
}

static int open_mac(const uint8_t *key, const char *topic, const char *text, size_t len,
                    const char *mac, msg_window *w, msg_stats *st)
{
    cJSON *body = NULL;
    msg_header hdr;
    char reason[256];
    int rc = msg_open_mac(key, topic, text, len, "site-1", mac, w, os_now_ms(), SKEW_MS, &body,
                          &hdr, st, reason, sizeof reason);
    if (rc == OP_OK) {
        assert_non_null(body);
        assert_string_equal(hdr.type, "state");
    } else {
        assert_null(body);
    }
    cJSON_Delete(body);
    return rc;
}

static void test_opens_under_its_key_only(void **state)
{
    (void)state;
    size_t len;
    char mac[MSG_MAC_HEX_BYTES];
    char *text = build(KEY, TOPIC, "state", 5, &len, mac);
    assert_true(msg_is_mac(mac));
    msg_window w = {0};
    msg_stats st = {0};
    uint8_t other[MSG_MAC_KEY_BYTES] = {9};
    assert_int_equal(open_mac(other, TOPIC, text, len, mac, &w, &st), OP_ESIG);
    assert_int_equal(open_mac(NULL, TOPIC, text, len, mac, &w, &st), OP_ESIG);
    assert_int_equal(st.forged, 2);
    assert_int_equal(w.top, 0); /* refused: the window did not move */
    assert_int_equal(open_mac(KEY, TOPIC, text, len, mac, &w, &st), OP_OK);
    assert_int_equal(st.accepted, 1);
    /* the same bytes again: a replay */
    assert_int_equal(open_mac(KEY, TOPIC, text, len, mac, &w, &st), OP_EREPLAY);
    assert_int_equal(st.replayed, 1);
    free(text);
}

static void test_altered_or_moved_is_refused(void **state)
{
    (void)state;
    size_t len;
    char mac[MSG_MAC_HEX_BYTES];
    char *text = build(KEY, TOPIC, "state", 7, &len, mac);
    msg_stats st = {0};
    /* the same bytes on another site's topic */
    assert_int_equal(open_mac(KEY, "outpost/v1/site/site-2/state", text, len, mac, NULL, &st),
                     OP_ESIG);
    /* one byte of the payload changed ("free_cores":3 -> 4) */
    char *at = strstr(text, "\"free_cores\":3");
    assert_non_null(at);
    at[strlen("\"free_cores\":")] = '4';
    assert_int_equal(open_mac(KEY, TOPIC, text, len, mac, NULL, &st), OP_ESIG);
    at[strlen("\"free_cores\":")] = '3';
    /* one hex digit of the MAC changed; a truncated MAC; none */
    char bad[MSG_MAC_HEX_BYTES];
    memcpy(bad, mac, sizeof bad);
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_int_equal(open_mac(KEY, TOPIC, text, len, bad, NULL, &st), OP_ESIG);
    bad[20] = '\0';
    assert_false(msg_is_mac(bad));
    assert_int_equal(open_mac(KEY, TOPIC, text, len, bad, NULL, &st), OP_ESIG);
    assert_int_equal(open_mac(KEY, TOPIC, text, len, NULL, NULL, &st), OP_ESIG);
    assert_int_equal(st.forged, 4);
    assert_int_equal(st.unsigned_msgs, 1);
    assert_int_equal(open_mac(KEY, TOPIC, text, len, mac, NULL, &st), OP_OK);
    free(text);
}

/* A MAC is for heartbeats: a goodbye, a result or an event under a good MAC is refused. */
static void test_only_heartbeats(void **state)
{
    (void)state;
    const char *types[] = {"bye", "result", "event", "hello"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t len;
        char mac[MSG_MAC_HEX_BYTES];
        char *text = build(KEY, TOPIC, types[i], 10 + i, &len, mac);
        msg_window w = {0};
        msg_stats st = {0};
        assert_int_equal(open_mac(KEY, TOPIC, text, len, mac, &w, &st), OP_ESIG);
        assert_int_equal(st.forged, 1);
        assert_int_equal(w.top, 0);
        free(text);
    }
}

/* A sealed payload never carries a MAC (heartbeats go in clear). */
static void test_sealed_refused(void **state)
{
    (void)state;
    ident hub;
    testkit_ident(&hub, "hub", 3);
    size_t len;
    char mac[MSG_MAC_HEX_BYTES];
    char *text = build(KEY, TOPIC, "state", 3, &len, mac);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    assert_int_equal(msg_seal(hub.pk, text, len, &sealed, &sealed_len), OP_OK);
    msg_mac(KEY, TOPIC, sealed, sealed_len, mac);
    msg_stats st = {0};
    assert_int_equal(open_mac(KEY, TOPIC, (const char *)sealed, sealed_len, mac, NULL, &st),
                     OP_EINVAL);
    assert_int_equal(st.malformed, 1);
    free(sealed);
    free(text);
}

static int lookup_one(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    const ident *who = ctx;
    if (strcmp(kid, who->id) != 0) return OP_EUNKNOWN;
    *pk = who->pk;
    *window = NULL;
    return OP_OK;
}

/* Where a signature is expected, a MAC is a forgery: msg_verify and msg_open refuse it. */
static void test_not_a_signature(void **state)
{
    (void)state;
    ident site;
    testkit_ident(&site, "site-1", 4);
    size_t len;
    char mac[MSG_MAC_HEX_BYTES];
    char *text = build(KEY, TOPIC, "state", 4, &len, mac);
    assert_int_equal(msg_verify(site.pk, TOPIC, text, len, mac), OP_ESIG);
    cJSON *body = NULL;
    msg_header hdr;
    msg_stats st = {0};
    char reason[256];
    assert_int_equal(msg_open(TOPIC, text, len, "site-1", mac, lookup_one, &site, os_now_ms(),
                              SKEW_MS, &body, &hdr, &st, reason, sizeof reason),
                     OP_ESIG);
    assert_null(body);
    assert_int_equal(st.forged, 1);
    free(text);
}

/* The key id names a key without giving it away: stable, and different per key. */
static void test_key_id(void **state)
{
    (void)state;
    char a[MSG_MAC_KEY_ID_BYTES], b[MSG_MAC_KEY_ID_BYTES], c[MSG_MAC_KEY_ID_BYTES];
    uint8_t other[MSG_MAC_KEY_BYTES] = {2};
    msg_mac_key_id(KEY, a);
    msg_mac_key_id(KEY, b);
    msg_mac_key_id(other, c);
    assert_int_equal(strlen(a), 16);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    char hex[2 * MSG_MAC_KEY_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, KEY, sizeof KEY);
    assert_null(strstr(hex, a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_under_its_key_only),
        cmocka_unit_test(test_altered_or_moved_is_refused),
        cmocka_unit_test(test_only_heartbeats),
        cmocka_unit_test(test_sealed_refused),
        cmocka_unit_test(test_not_a_signature),
        cmocka_unit_test(test_key_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
