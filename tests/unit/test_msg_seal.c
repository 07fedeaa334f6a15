/*
 * Unit tests for sealed messages (wire/msg.h): the sealed form round trip,
 * what a receiver refuses and in which order (a tampered sealed payload on
 * its signature, before any open; one sealed to somebody else as
 * unopenable; a body re-signed by another sender on kid != from; an
 * unsealed message where sealing is required before the sender is even
 * looked up), and that a 4 MiB job input still fits in a sealed offer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "helpers/testkit.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "outpost/v1/site/bob/result"
#define STATE_TOPIC "outpost/v1/site/bob/state"
#define NOW_MS 1700000000000LL
#define SKEW_MS 30000LL
#define SECRET "a-very-distinctive-plaintext"

typedef struct fixture {
    ident hub, bob, carol, mallory; /* hub receives; bob and carol are known senders */
    msg_window windows[2];
    int lookups;
    msg_stats stats;
    char reason[256];
} fixture;

static int lookup(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    fixture *f = ctx;
    f->lookups++;
    if (strcmp(kid, "bob") == 0) {
        *pk = f->bob.pk;
        *window = &f->windows[0];
        return OP_OK;
    }
    if (strcmp(kid, "carol") == 0) {
        *pk = f->carol.pk;
        *window = &f->windows[1];
        return OP_OK;
    }
    return OP_EUNKNOWN;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    testkit_ident(&f->hub, "hub", 1);
    testkit_ident(&f->bob, "bob", 2);
    testkit_ident(&f->carol, "carol", 3);
    testkit_ident(&f->mallory, "mallory", 4);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ident_wipe(&f->hub);
    ident_wipe(&f->bob);
    ident_wipe(&f->carol);
    ident_wipe(&f->mallory);
    free(f);
    return 0;
}

/* The JSON text of a message from `from` carrying SECRET (caller frees). */
static char *text_from(const char *from, uint64_t seq, size_t *len)
{
    cJSON *body = cJSON_CreateObject();
    assert_non_null(body);
    cJSON_AddStringToObject(body, "stdout", SECRET);
    char *text = msg_encode(body, from, "result", seq, NOW_MS, len);
    cJSON_Delete(body);
    assert_non_null(text);
    return text;
}

/* text sealed to to_pk and signed by signer on topic (caller frees). */
static uint8_t *seal_and_sign(const ident *signer, const uint8_t to_pk[32], const char *topic,
                              const char *text, size_t text_len, size_t *len, char sig[129])
{
    uint8_t *sealed = NULL;
    assert_int_equal(msg_seal(to_pk, text, text_len, &sealed, len), OP_OK);
    assert_int_equal(msg_sign(signer, topic, sealed, *len, sig), OP_OK);
    return sealed;
}

static int open_as_hub(fixture *f, const char *topic, const void *payload, size_t len,
                       const char *kid, const char *sig, cJSON **body, msg_header *hdr)
{
    return msg_open_for(&f->hub, proto_must_seal(topic), topic, payload, len, kid, sig, lookup, f,
                        NOW_MS, SKEW_MS, body, hdr, &f->stats, f->reason, sizeof f->reason);
}

static void test_sealed_round_trip(void **state)
{
    fixture *f = *state;
    size_t text_len, len;
    char sig[129];
    char *text = text_from("bob", 1, &text_len);
    uint8_t *sealed = seal_and_sign(&f->bob, f->hub.pk, TOPIC, text, text_len, &len, sig);
    assert_int_equal(len, text_len + MSG_SEAL_OVERHEAD_BYTES);
    assert_memory_equal(sealed, MSG_SEAL_MAGIC, MSG_SEAL_MAGIC_BYTES);
    assert_true(msg_is_sealed(sealed, len));
    assert_null(memmem(sealed, len, SECRET, strlen(SECRET)));
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_as_hub(f, TOPIC, sealed, len, "bob", sig, &body, &hdr), OP_OK);
    assert_string_equal(hdr.from, "bob");
    assert_string_equal(hdr.type, "result");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(body, "stdout")->valuestring, SECRET);
    cJSON_Delete(body);
    assert_int_equal(f->stats.accepted, 1);
    /* the replay window works inside the seal as outside */
    assert_int_equal(open_as_hub(f, TOPIC, sealed, len, "bob", sig, &body, &hdr), OP_EREPLAY);
    assert_int_equal(f->stats.replayed, 1);
    free(text);
    free(sealed);
}

/* A byte of the ciphertext changed: refused on its signature, before any open. */
static void test_tampered_sealed_payload_refused_on_signature(void **state)
{
    fixture *f = *state;
    size_t text_len, len;
    char sig[129];
    char *text = text_from("bob", 2, &text_len);
    uint8_t *sealed = seal_and_sign(&f->bob, f->hub.pk, TOPIC, text, text_len, &len, sig);
    sealed[len - 1] ^= 1;
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_as_hub(f, TOPIC, sealed, len, "bob", sig, &body, &hdr), OP_ESIG);
    assert_null(body);
    assert_int_equal(f->stats.forged, 1);
    assert_int_equal(f->stats.unopenable, 0);
    assert_non_null(strstr(f->reason, "bad signature from 'bob'"));
    free(text);
    free(sealed);
}

/* Validly signed by a known sender, but sealed to another key: it cannot be opened. */
static void test_sealed_to_someone_else_refused(void **state)
{
    fixture *f = *state;
    size_t text_len, len;
    char sig[129];
    char *text = text_from("bob", 3, &text_len);
    uint8_t *sealed = seal_and_sign(&f->bob, f->mallory.pk, TOPIC, text, text_len, &len, sig);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_as_hub(f, TOPIC, sealed, len, "bob", sig, &body, &hdr), OP_EINVAL);
    assert_null(body);
    assert_int_equal(f->stats.unopenable, 1);
    assert_int_equal(f->stats.accepted, 0);
    assert_non_null(strstr(f->reason, "cannot be opened"));
    /* a receiver without an identity (msg_open) opens no sealed message at all */
    free(sealed);
    sealed = seal_and_sign(&f->bob, f->hub.pk, TOPIC, text, text_len, &len, sig);
    assert_int_equal(msg_open(TOPIC, sealed, len, "bob", sig, lookup, f, NOW_MS, SKEW_MS, &body,
                              &hdr, &f->stats, f->reason, sizeof f->reason),
                     OP_EINVAL);
    assert_int_equal(f->stats.unopenable, 2);
    free(text);
    free(sealed);
}

/*
 * Carol takes bob's sealed body (she cannot read it, but she could forward
 * it) and signs it as hers: the inner from is bob, the kid carol: refused.
 */
static void test_resigned_by_another_sender_refused(void **state)
{
    fixture *f = *state;
    size_t text_len, len;
    char sig[129], carol_sig[129];
    char *text = text_from("bob", 4, &text_len);
    uint8_t *sealed = seal_and_sign(&f->bob, f->hub.pk, TOPIC, text, text_len, &len, sig);
    const char *carol_topic = "outpost/v1/site/carol/result";
    assert_int_equal(msg_sign(&f->carol, carol_topic, sealed, len, carol_sig), OP_OK);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_as_hub(f, carol_topic, sealed, len, "carol", carol_sig, &body, &hdr),
                     OP_ESIG);
    assert_null(body);
    assert_int_equal(f->stats.forged, 1);
    assert_non_null(strstr(f->reason, "kid 'carol' does not match from 'bob'"));
    free(text);
    free(sealed);
}

/* In clear where sealing is required: refused before the sender is even looked up. */
static void test_unsealed_on_must_seal_topic_refused(void **state)
{
    fixture *f = *state;
    size_t len;
    char sig[129];
    char *text = text_from("bob", 5, &len);
    assert_int_equal(msg_sign(&f->bob, TOPIC, text, len, sig), OP_OK);
    cJSON *body = NULL;
    msg_header hdr;
    assert_int_equal(open_as_hub(f, TOPIC, text, len, "bob", sig, &body, &hdr), OP_EPERM);
    assert_null(body);
    assert_int_equal(f->stats.unsealed, 1);
    assert_int_equal(f->lookups, 0);
    assert_non_null(strstr(f->reason, "unsealed message on " TOPIC));
    /* the same in clear on the heartbeat topic, where it may be */
    assert_int_equal(msg_sign(&f->bob, STATE_TOPIC, text, len, sig), OP_OK);
    assert_int_equal(open_as_hub(f, STATE_TOPIC, text, len, "bob", sig, &body, &hdr), OP_OK);
    cJSON_Delete(body);
    /* a payload that only looks like the magic is neither sealed nor openable */
    assert_false(msg_is_sealed(MSG_SEAL_MAGIC, MSG_SEAL_MAGIC_BYTES));
    char *opened = NULL;
    size_t opened_len;
    assert_int_equal(msg_unseal(&f->hub, text, len, &opened, &opened_len), OP_EINVAL);
    assert_null(opened);
    free(text);
}

static void test_must_seal_topics(void **state)
{
    (void)state;
    assert_false(proto_must_seal("outpost/v1/site/dc-1/state"));
    assert_true(proto_must_seal("outpost/v1/site/dc-1/hello"));
    assert_true(proto_must_seal("outpost/v1/site/dc-1/event"));
    assert_true(proto_must_seal("outpost/v1/site/dc-1/result"));
    assert_true(proto_must_seal("outpost/v1/site/dc-1/inbox"));
    assert_true(proto_must_seal("outpost/v1/op/admin/req"));
    assert_true(proto_must_seal("outpost/v1/op/admin/resp"));
    assert_true(proto_must_seal("outpost/v1/op/admin/state")); /* only a site's */
    assert_true(proto_must_seal("not/an/outpost/topic"));
}

/* An offer carrying the largest input a job may have, base64 in its spec. */
static char *big_offer_text(size_t *len)
{
    uint8_t *input = malloc(JOBSPEC_MAX_INPUT_BYTES);
    assert_non_null(input);
    for (size_t i = 0; i < JOBSPEC_MAX_INPUT_BYTES; i++)
        input[i] = (uint8_t)(i * 131u + 7u);
    char *b64 = util_b64_encode(input, JOBSPEC_MAX_INPUT_BYTES);
    char digest[65];
    util_sha256_hex(input, JOBSPEC_MAX_INPUT_BYTES, digest);
    free(input);
    assert_non_null(b64);
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "name", "in.bin");
    cJSON_AddStringToObject(in, "sha256", digest);
    cJSON_AddStringToObject(in, "data_b64", b64);
    free(b64);
    cJSON *spec = cJSON_CreateObject();
    cJSON *cmd = cJSON_AddArrayToObject(spec, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("wc"));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "inputs"), in);
    cJSON *job = cJSON_CreateObject();
    cJSON_AddNumberToObject(job, "job", 1);
    cJSON_AddNumberToObject(job, "attempt", 1);
    cJSON_AddNumberToObject(job, "lease_ms", 60000);
    cJSON_AddItemToObject(job, "spec", spec);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "jobs"), job);
    char *text = msg_encode(body, "hub", "offer", 1, NOW_MS, len);
    cJSON_Delete(body);
    assert_non_null(text);
    return text;
}

/* Sealing adds 52 bytes, not a third: a 4 MiB input still fits, sealed, and opens. */
static void test_four_mib_input_fits_sealed(void **state)
{
    fixture *f = *state;
    size_t text_len, len;
    char *text = big_offer_text(&text_len);
    uint8_t *sealed = NULL;
    assert_int_equal(msg_seal(f->bob.pk, text, text_len, &sealed, &len), OP_OK);
    assert_true(len <= MSG_MAX_PAYLOAD_BYTES);
    assert_true(len <= proto_max_bytes("site", "inbox"));
    assert_true(len <= proto_max_bytes("op", "req"));
    char *opened = NULL;
    size_t opened_len;
    assert_int_equal(msg_unseal(&f->bob, sealed, len, &opened, &opened_len), OP_OK);
    assert_int_equal(opened_len, text_len);
    assert_memory_equal(opened, text, text_len);
    free(opened);
    free(sealed);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sealed_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_sealed_payload_refused_on_signature, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_to_someone_else_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resigned_by_another_sender_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsealed_on_must_seal_topic_refused, setup, teardown),
        cmocka_unit_test(test_must_seal_topics),
        cmocka_unit_test_setup_teardown(test_four_mib_input_fits_sealed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
