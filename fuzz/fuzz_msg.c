/*
 * libFuzzer target for the message envelope: msg_parse on the raw input,
 * then msg_open as a receiver would call it. Input layout:
 *   byte 0     flags: 1 = sign correctly with the fixed sender key,
 *              2 = no kid (unsigned), 4 = kid "bob" (unknown),
 *              8 = no replay window for the sender,
 *              16 = seal the payload to the receiver (alice) before signing,
 *              32 = the receiver requires sealing,
 *              64 = a heartbeat MAC (msg_open_mac) in place of the signature:
 *                   1 = MAC'd correctly under the fixed key, 4 = no key held
 *   bytes 1..  topic up to the first NUL byte (a default topic if none),
 *              then the payload (everything after that NUL).
 * Signing inside the target lets the fuzzer reach the checks that sit
 * behind the signature: JSON shape, kid == from, timestamp, replay; sealing
 * it lets the fuzzer reach what is behind the open (anyone can seal to a
 * receiver's public key: the box's content is outside input too). Each
 * input is opened twice so that the replay path runs as well.
 */
#include "base/err.h"
#include "base/util.h"
#include "wire/ident.h"
#include "wire/msg.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1700000000000LL
#define SKEW_MS 30000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ident alice;

static void alice_init(void)
{
    static int ready = 0;
    if (ready) return;
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, 1, sizeof seed);
    if (sodium_init() < 0) abort();
    crypto_sign_seed_keypair(alice.pk, alice.sk, seed);
    snprintf(alice.id, sizeof alice.id, "alice");
    util_hex(alice.pk, 32, alice.pk_hex);
    ready = 1;
}

typedef struct lookup_ctx {
    msg_window window;
    int use_window;
} lookup_ctx;

static int lookup(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    lookup_ctx *l = ctx;
    if (strcmp(kid, "alice") != 0) return OP_EUNKNOWN;
    *pk = alice.pk;
    *window = l->use_window ? &l->window : NULL;
    return OP_OK;
}

static void check_parse(const uint8_t *data, size_t size)
{
    cJSON *body = NULL;
    msg_header hdr;
    if (msg_parse(data, size, &body, &hdr) != OP_OK) return;
    if (!cJSON_IsObject(body) || hdr.seq == 0 || hdr.ts_ms < 0 || !util_valid_id(hdr.from)) abort();
    cJSON_Delete(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alice_init();
    check_parse(data, size);
    if (size == 0) return 0;
    unsigned flags = data[0];
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    const uint8_t *nul = memchr(rest, 0, rest_len);
    char *topic;
    const uint8_t *payload;
    size_t payload_len;
    if (nul) {
        size_t topic_len = (size_t)(nul - rest);
        topic = malloc(topic_len + 1);
        if (!topic) return 0;
        memcpy(topic, rest, topic_len);
        topic[topic_len] = '\0';
        payload = nul + 1;
        payload_len = rest_len - topic_len - 1;
    } else {
        topic = strdup(MSG_TOPIC_ROOT "site/alice/heartbeat");
        if (!topic) return 0;
        payload = rest;
        payload_len = rest_len;
    }
    check_parse(payload, payload_len);
    uint8_t *sealed = NULL;
    if (flags & 16) {
        size_t sealed_len = 0;
        if (msg_seal(alice.pk, payload, payload_len, &sealed, &sealed_len) != OP_OK) goto out;
        payload = sealed;
        payload_len = sealed_len;
    }

    char sig[129];
    static const uint8_t mac_key[MSG_MAC_KEY_BYTES] = {7, 7, 7};
    if (flags & 64) {
        if (flags & 1)
            msg_mac(mac_key, topic, payload, payload_len, sig);
        else
            snprintf(sig, sizeof sig, "m1.%064d", 0);
    } else if (flags & 1) {
        if (msg_sign(&alice, topic, payload, payload_len, sig) != OP_OK) goto out;
    } else {
        memset(sig, 'a', 128);
        sig[128] = '\0';
    }
    const char *kid = (flags & 2) ? NULL : (flags & 4) ? "bob" : "alice";
    lookup_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.use_window = !(flags & 8);
    msg_stats stats;
    memset(&stats, 0, sizeof stats);
    for (int round = 0; round < 2; round++) {
        cJSON *body = NULL;
        msg_header hdr;
        char reason[256];
        int rc;
        if (flags & 64)
            rc = msg_open_mac((flags & 4) ? NULL : mac_key, topic, payload, payload_len, kid, sig,
                              ctx.use_window ? &ctx.window : NULL, NOW_MS, SKEW_MS, &body, &hdr,
                              &stats, reason, sizeof reason);
        else
            rc = msg_open_for(&alice, (flags & 32) != 0, topic, payload, payload_len, kid, sig,
                              lookup, &ctx, NOW_MS, SKEW_MS, &body, &hdr, &stats, reason,
                              sizeof reason);
        if (rc == OP_OK && (flags & 64) && strcmp(hdr.type, "state") != 0) abort();
        if (rc == OP_OK) {
            if (!(flags & 1) || kid == NULL || strcmp(hdr.from, "alice") != 0) abort();
            if (hdr.ts_ms < NOW_MS - SKEW_MS || hdr.ts_ms > NOW_MS + SKEW_MS) abort();
            if (round == 1 && ctx.use_window) abort(); /* the second copy is a replay */
            cJSON_Delete(body);
        }
    }
    /* Every call is counted exactly once. */
    uint64_t counted = stats.accepted + stats.unsigned_msgs + stats.unknown_sender + stats.forged +
                       stats.malformed + stats.expired + stats.replayed + stats.oversize +
                       stats.unsealed + stats.unopenable;
    if (counted != 2) abort();
out:
    free(sealed);
    free(topic);
    return 0;
}
