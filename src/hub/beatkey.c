/*
 * beatkey: sites' heartbeats authenticated by a MAC instead of a signature
 * (wire/msg.h has the wire form and why).
 *
 * A site's hello, sealed to the hub and signed, carries the key its
 * heartbeats will be MAC'd under; the hub keeps it with the site and names
 * it in its welcome (by msg_mac_key_id), which is the site's cue to use it.
 * Until then, and whenever the hub asks again, the site signs. The key is
 * stored so that a restarted hub, or the one taking over on the same store,
 * goes on taking the site's heartbeats: sealed (XChaCha20-Poly1305) under a
 * key derived from the hub's own secret key, with the site id as associated
 * data, so the store alone does not give it away and a sealed key cannot be
 * moved to another site's row. A hub that cannot open a stored key, or that
 * gets a MAC it cannot check, asks the site for its key again ("rekey": a
 * new hello), at most once per HUB_REKEY_EVERY_MS per site, since whoever
 * sends a forged MAC under a site's name makes the hub ask.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "hub/hub_int.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define STORE_PREFIX "k1."
#define STORE_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define STORE_SEALED (STORE_NONCE + MSG_MAC_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define STORE_HEX (3 + 2 * STORE_SEALED + 1)

/* The storage key: a hash of the hub's Ed25519 seed (the first half of its secret key). */
static void store_key(const hub *h, uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
    static const char label[] = "outpost/v1 heartbeat keys at rest";
    crypto_generichash(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, (const uint8_t *)label,
                       sizeof label - 1, h->identity.sk, 32);
}

/* out: STORE_PREFIX and the hex of nonce || sealed key. */
static void seal_for_store(const hub *h, const hub_site *s, char out[STORE_HEX])
{
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], box[STORE_SEALED];
    store_key(h, key);
    randombytes_buf(box, STORE_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + STORE_NONCE, NULL, s->beat_key,
                                               MSG_MAC_KEY_BYTES, (const uint8_t *)s->id,
                                               strlen(s->id), NULL, box, key);
    sodium_memzero(key, sizeof key);
    memcpy(out, STORE_PREFIX, 3);
    util_hex(box, sizeof box, out + 3);
}

void hub__beat_key_load(hub *h, hub_site *s, const char *sealed_hex)
{
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], box[STORE_SEALED];
    s->has_beat_key = 0;
    if (!sealed_hex || !sealed_hex[0]) return;
    store_key(h, key);
    int ok = strlen(sealed_hex) == STORE_HEX - 1 && strncmp(sealed_hex, STORE_PREFIX, 3) == 0 &&
             util_unhex(sealed_hex + 3, box, sizeof box) == OP_OK &&
             crypto_aead_xchacha20poly1305_ietf_decrypt(
                 s->beat_key, NULL, NULL, box + STORE_NONCE, sizeof box - STORE_NONCE,
                 (const uint8_t *)s->id, strlen(s->id), box, key) == 0;
    sodium_memzero(key, sizeof key);
    if (ok) {
        s->has_beat_key = 1;
        return;
    }
    sodium_memzero(s->beat_key, sizeof s->beat_key);
    log_warn("hub",
             "site %s: its stored heartbeat key does not open with this hub's key; "
             "it will be asked for it again",
             s->id);
}

int hub__beat_key_take(hub *h, hub_site *s, const cJSON *hello)
{
    uint8_t key[MSG_MAC_KEY_BYTES];
    const char *hex = jsonx_str(hello, "beat_key");
    if (!hex || strlen(hex) != 2 * MSG_MAC_KEY_BYTES || util_unhex(hex, key, sizeof key) != OP_OK)
        return 0; /* a site that signs its heartbeats: nothing to take */
    int same = s->has_beat_key && sodium_memcmp(key, s->beat_key, sizeof key) == 0;
    if (!same) {
        memcpy(s->beat_key, key, sizeof key);
        s->has_beat_key = 1;
        char sealed[STORE_HEX];
        seal_for_store(h, s, sealed);
        hub__check(h, hubdb_site_set_beat_key(h->db, s->id, sealed));
    }
    sodium_memzero(key, sizeof key);
    return !same;
}

void hub__beat_key_welcome(const hub_site *s, cJSON *welcome)
{
    char id[MSG_MAC_KEY_ID_BYTES];
    if (!s->has_beat_key) return;
    msg_mac_key_id(s->beat_key, id);
    cJSON_AddStringToObject(welcome, "beat_key_id", id);
}

/* Sealed and signed to the site: only it can be told to sign again. */
static void ask_rekey(hub *h, hub_site *s, const char *reason)
{
    int64_t now = os_mono_ms();
    if (s->rekey_mono && now - s->rekey_mono < HUB_REKEY_EVERY_MS) {
        log_debug("hub", "dropped: %s", reason);
        return;
    }
    s->rekey_mono = now;
    s->welcomed_mono = 0; /* its hello in answer is welcomed, however soon it comes */
    h->rekeys++;
    log_warn("hub", "dropped: %s; asked %s for its heartbeat key again", reason, s->id);
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(
        body, "reason", s->has_beat_key ? "a MAC did not verify" : "this hub holds no key for you");
    hub__queue_reply(h, "site", s->id, "inbox", body, "rekey", s->pk);
}

void hub__beat_mac_refused(hub *h, hub_site *s, int rc, const char *reason)
{
    if (rc == OP_ESIG)
        ask_rekey(h, s, reason);
    else if (rc == OP_EPERM)
        log_debug("hub", "dropped: %s", reason);
    else
        log_warn("hub", "dropped: %s", reason);
}

cJSON *hub__authenticate_mac(hub *h, hub_site *s, const char *topic, const void *payload,
                             size_t len, const char *kid, const char *mac, msg_header *hdr)
{
    cJSON *body = NULL;
    char reason[256];
    if (kid && strcmp(kid, s->id) != 0) {
        h->msg.forged++;
        log_warn("hub", "dropped message on %s: kid '%.63s' may not publish there", topic, kid);
        return NULL;
    }
    int rc = msg_open_mac(s->has_beat_key ? s->beat_key : NULL, topic, payload, len, kid, mac,
                          &s->beat_window, os_now_ms(), h->clock_skew_ms, &body, hdr, &h->msg,
                          reason, sizeof reason);
    if (rc != OP_OK) {
        hub__beat_mac_refused(h, s, rc, reason);
        return NULL;
    }
    h->beats_mac++;
    hub__intake_refund(h);
    return body;
}
