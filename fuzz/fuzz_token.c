/*
 * libFuzzer target for token_parse, token_verify and token_bundle_parse: a
 * join token (or the join bundle that carries it) is pasted by whoever sets
 * up a site. The first byte picks a mode:
 *   even: the rest is the token text as typed;
 *   odd:  the rest is the claims JSON, which is base64url-encoded and
 *         signed with a fixed hub key, so that the claims checks behind the
 *         signature are reached as well.
 */
#include "base/err.h"
#include "base/util.h"
#include "wire/ident.h"
#include "wire/token.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ident hub;

static void hub_init(void)
{
    static int ready = 0;
    if (ready) return;
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, 7, sizeof seed);
    if (sodium_init() < 0) abort();
    crypto_sign_seed_keypair(hub.pk, hub.sk, seed);
    snprintf(hub.id, sizeof hub.id, "hub-1");
    util_hex(hub.pk, 32, hub.pk_hex);
    ready = 1;
}

/* "opt1.<b64url(claims)>.<b64url(sig)>" signed by the fixed hub key; NULL on failure. */
static char *sign_claims(const uint8_t *claims, size_t len)
{
    char *claims_b64 = util_b64url_encode(claims, len);
    if (!claims_b64) return NULL;
    size_t signed_len = 5 + strlen(claims_b64);
    char *text = malloc(signed_len + 1 + 87);
    if (!text) {
        free(claims_b64);
        return NULL;
    }
    snprintf(text, signed_len + 1, "opt1.%s", claims_b64);
    free(claims_b64);
    uint8_t sig[64];
    ident_sign(&hub, text, signed_len, sig);
    char *sig_b64 = util_b64url_encode(sig, sizeof sig);
    if (!sig_b64) {
        free(text);
        return NULL;
    }
    snprintf(text + signed_len, 1 + 87, ".%s", sig_b64);
    free(sig_b64);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hub_init();
    if (size == 0) return 0;
    char *text;
    if (data[0] & 1) {
        text = sign_claims(data + 1, size - 1);
    } else {
        text = malloc(size);
        if (text) {
            memcpy(text, data + 1, size - 1);
            text[size - 1] = '\0';
        }
    }
    if (!text) return 0;
    token t;
    char reason[128];
    reason[0] = '\0';
    int rc = token_parse(text, &t, reason, sizeof reason);
    if (rc != OP_OK && reason[0] == '\0') abort();
    if (rc == OP_OK &&
        (!token_valid_class(t.cls) || strlen(t.tid) != 32 || !util_valid_id(t.hub_id)))
        abort();
    rc = token_verify(text, hub.pk, NOW_MS, &t, reason, sizeof reason);
    if (rc == OP_OK && (t.expires_ms <= NOW_MS || memcmp(t.hub_pk, hub.pk, 32) != 0)) abort();
    /* the same text as a join bundle ("opj1." + base64url JSON), and the raw bytes wrapped */
    token_bundle b;
    reason[0] = '\0';
    rc = token_bundle_parse(text, &b, reason, sizeof reason);
    if (rc != OP_OK && reason[0] == '\0') abort();
    if (rc == OP_OK) {
        if (!b.token || !b.ca || !b.cert || !b.key) abort();
        token_bundle_free(&b);
    }
    char *wrapped = util_b64url_encode(data + 1, size - 1);
    char *bundle = wrapped ? malloc(strlen(wrapped) + 6) : NULL;
    if (bundle) {
        snprintf(bundle, strlen(wrapped) + 6, "opj1.%s", wrapped);
        if (token_bundle_parse(bundle, &b, reason, sizeof reason) == OP_OK) token_bundle_free(&b);
    }
    free(bundle);
    free(wrapped);
    free(text);
    return 0;
}
