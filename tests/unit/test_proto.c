/*
 * Unit tests for proto: building topics from (realm, id, leaf) and parsing
 * them back. The parser is the first thing that sees a topic from the bus,
 * so most cases here are topics it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <stdio.h>
#include <string.h>

/* Fills buf with n copies of c and a NUL (buf needs n + 1 bytes). */
static char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void test_topic_builds_layout(void **state)
{
    char buf[PROTO_TOPIC_MAX];
    assert_int_equal(proto_topic(buf, sizeof buf, "site", "dc-1", "state"), OP_OK);
    assert_string_equal(buf, "outpost/v1/site/dc-1/state");
    assert_int_equal(proto_topic(buf, sizeof buf, "op", "alice_2", "req"), OP_OK);
    assert_string_equal(buf, "outpost/v1/op/alice_2/req");

    char id63[64];
    repeat(id63, 'z', 63);
    assert_int_equal(proto_topic(buf, sizeof buf, "site", id63, "result"), OP_OK);
    assert_int_equal(strlen(buf), strlen("outpost/v1/site//result") + 63);
}

static void test_topic_rejects_invalid_ids(void **state)
{
    char buf[PROTO_TOPIC_MAX];
    char id64[65];
    repeat(id64, 'a', 64);
    const char *bad[] = {"a/b", "/", "dc+1", "+", "dc#1", "#", "", "dc 1", "dc.1", id64};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(buf, 'X', sizeof buf);
        if (proto_topic(buf, sizeof buf, "site", bad[i], "state") != OP_EINVAL)
            fail_msg("id '%s' was accepted", bad[i]);
    }
    assert_int_equal(proto_topic(buf, sizeof buf, "site", NULL, "state"), OP_EINVAL);
}

static void test_topic_too_big(void **state)
{
    const char *want = "outpost/v1/site/dc-1/state";
    size_t len = strlen(want);
    char buf[PROTO_TOPIC_MAX];

    assert_int_equal(proto_topic(buf, 8, "site", "dc-1", "state"), OP_ETOOBIG);
    /* Exactly one byte short of the NUL, then exactly enough. */
    assert_int_equal(proto_topic(buf, len, "site", "dc-1", "state"), OP_ETOOBIG);
    assert_int_equal(proto_topic(buf, len + 1, "site", "dc-1", "state"), OP_OK);
    assert_string_equal(buf, want);
}

static void test_parse_round_trip(void **state)
{
    static const struct {
        const char *realm;
        const char *leaf;
    } cases[] = {
        {"site", "hello"}, {"site", "state"}, {"site", "event"}, {"site", "result"},
        {"site", "inbox"}, {"op", "req"},     {"op", "resp"},
    };
    char id63[64];
    repeat(id63, '9', 63);
    const char *ids[] = {"dc-1", "A", "under_score", id63};

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            char topic[PROTO_TOPIC_MAX];
            assert_int_equal(
                proto_topic(topic, sizeof topic, cases[c].realm, ids[i], cases[c].leaf), OP_OK);
            char realm[8], id[64], leaf[16];
            if (proto_parse_topic(topic, realm, id, leaf) != OP_OK)
                fail_msg("'%s' did not parse", topic);
            assert_string_equal(realm, cases[c].realm);
            assert_string_equal(id, ids[i]);
            assert_string_equal(leaf, cases[c].leaf);
        }
    }
}

static void test_parse_leaf_length_bound(void **state)
{
    char realm[8], id[64], leaf[16];
    char topic[PROTO_TOPIC_MAX];
    char long_leaf[17];

    /* 15 characters fit leaf[16]; 16 do not. */
    snprintf(topic, sizeof topic, "outpost/v1/site/dc-1/%s", repeat(long_leaf, 'l', 15));
    assert_int_equal(proto_parse_topic(topic, realm, id, leaf), OP_OK);
    assert_string_equal(leaf, long_leaf);

    snprintf(topic, sizeof topic, "outpost/v1/site/dc-1/%s", repeat(long_leaf, 'l', 16));
    assert_int_equal(proto_parse_topic(topic, realm, id, leaf), OP_EINVAL);
}

static void test_parse_rejects_bad_shapes(void **state)
{
    char id64[65];
    repeat(id64, 'a', 64);
    char id64_topic[PROTO_TOPIC_MAX];
    snprintf(id64_topic, sizeof id64_topic, "outpost/v1/site/%s/state", id64);

    const char *bad[] = {
        /* wrong root */
        "",
        "outpost",
        "outpost/v1",
        "outpost/v1/",
        "outpost/v2/site/dc-1/state",
        "Outpost/v1/site/dc-1/state",
        "xoutpost/v1/site/dc-1/state",
        "/outpost/v1/site/dc-1/state",
        /* unknown or empty realm */
        "outpost/v1/hub/dc-1/state",
        "outpost/v1/sites/dc-1/state",
        "outpost/v1/Site/dc-1/state",
        "outpost/v1//dc-1/state",
        "outpost/v1/sitesite/dc-1/state",
        "outpost/v1/+/dc-1/state",
        /* missing or extra levels */
        "outpost/v1/site",
        "outpost/v1/site/dc-1",
        "outpost/v1/site/dc-1/state/extra",
        "outpost/v1/site/dc-1/state/",
        "outpost/v1/site/dc-1/a/b/c",
        /* empty id or leaf */
        "outpost/v1/site//state",
        "outpost/v1/site/dc-1/",
        "outpost/v1/op//req",
        /* ids that are not valid ids */
        "outpost/v1/site/+/state",
        "outpost/v1/site/#/state",
        "outpost/v1/site/dc+1/state",
        "outpost/v1/site/dc#1/state",
        "outpost/v1/op/a b/req",
        "outpost/v1/op/dc.1/req",
        id64_topic,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char realm[8], id[64], leaf[16];
        if (proto_parse_topic(bad[i], realm, id, leaf) != OP_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    }
}

/* Size bounds by topic: heartbeats small, results and operator requests large. */
static void test_max_bytes_by_topic(void **state)
{
    (void)state;
    assert_int_equal(proto_max_bytes("site", "state"), PROTO_SMALL_BYTES);
    assert_int_equal(proto_max_bytes("site", "hello"), PROTO_SMALL_BYTES);
    assert_int_equal(proto_max_bytes("site", "nonsense"), PROTO_SMALL_BYTES);
    assert_int_equal(proto_max_bytes("site", "result"), MSG_MAX_PAYLOAD_BYTES);
    assert_int_equal(proto_max_bytes("site", "event"), MSG_MAX_PAYLOAD_BYTES);
    assert_int_equal(proto_max_bytes("op", "req"), MSG_MAX_PAYLOAD_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_builds_layout),
        cmocka_unit_test(test_topic_rejects_invalid_ids),
        cmocka_unit_test(test_topic_too_big),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_leaf_length_bound),
        cmocka_unit_test(test_parse_rejects_bad_shapes),
        cmocka_unit_test(test_max_bytes_by_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
