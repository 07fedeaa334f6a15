#include "wire/msg.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON numbers are doubles: sequence numbers and timestamps must stay exact. */
#define MSG_MAX_EXACT_INT 9007199254740991.0

static uint8_t *signed_bytes(const char *topic, const void *payload, size_t len, size_t *total)
{
    size_t topic_len = strlen(topic);
    uint8_t *buf = malloc(topic_len + 1 + len + 1);
    if (!buf) return NULL;
    memcpy(buf, topic, topic_len);
    buf[topic_len] = 0;
    if (len) memcpy(buf + topic_len + 1, payload, len);
    *total = topic_len + 1 + len;
    return buf;
}

int msg_sign(const ident *sender, const char *topic, const void *payload, size_t len,
             char sig_hex[129])
{
    size_t total;
    uint8_t *buf = signed_bytes(topic, payload, len, &total);
    if (!buf) return OP_ENOMEM;
    uint8_t sig[64];
    ident_sign(sender, buf, total, sig);
    free(buf);
    util_hex(sig, 64, sig_hex);
    return OP_OK;
}

int msg_verify(const uint8_t pk[32], const char *topic, const void *payload, size_t len,
               const char *sig_hex)
{
    uint8_t sig[64];
    if (!sig_hex || util_unhex(sig_hex, sig, 64) != OP_OK) return OP_ESIG;
    size_t total;
    uint8_t *buf = signed_bytes(topic, payload, len, &total);
    if (!buf) return OP_ENOMEM;
    int rc = ident_verify(pk, buf, total, sig);
    free(buf);
    return rc;
}

static void set_field(cJSON *body, const char *key, cJSON *value)
{
    /* Case-sensitive like msg_parse: a "From" key must not hide (and leak) "from". */
    if (cJSON_GetObjectItemCaseSensitive(body, key))
        cJSON_ReplaceItemInObjectCaseSensitive(body, key, value);
    else
        cJSON_AddItemToObject(body, key, value);
}

char *msg_encode(cJSON *body, const char *from, const char *type, uint64_t seq, int64_t ts_ms,
                 size_t *len_out)
{
    set_field(body, "from", cJSON_CreateString(from));
    set_field(body, "type", cJSON_CreateString(type));
    set_field(body, "seq", cJSON_CreateNumber((double)seq));
    set_field(body, "ts", cJSON_CreateNumber((double)ts_ms));
    char *text = cJSON_PrintUnformatted(body);
    if (text && len_out) *len_out = strlen(text);
    return text;
}

static int exact_int(const cJSON *item, double min, double *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!isfinite(v) || v < min || v > MSG_MAX_EXACT_INT || floor(v) != v) return 0;
    *out = v;
    return 1;
}

int msg_parse(const void *payload, size_t len, cJSON **body, msg_header *hdr)
{
    if (len > MSG_MAX_PAYLOAD_BYTES) return OP_ETOOBIG;
    /* cJSON cuts a string at an escaped NUL ("tr\u0000ue" reads as "tr"): refused whole */
    if (jsonx_check_nul(payload, len, NULL) != OP_OK) return OP_EINVAL;
    cJSON *root = cJSON_ParseWithLength(payload, len);
    if (!root) return OP_EINVAL;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(root, "from");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    double seq, ts;
    if (!cJSON_IsObject(root) || !cJSON_IsString(from) || !util_valid_id(from->valuestring) ||
        !cJSON_IsString(type) || strlen(type->valuestring) >= sizeof hdr->type ||
        !exact_int(cJSON_GetObjectItemCaseSensitive(root, "seq"), 1, &seq) ||
        !exact_int(cJSON_GetObjectItemCaseSensitive(root, "ts"), 0, &ts)) {
        cJSON_Delete(root);
        return OP_EINVAL;
    }
    snprintf(hdr->from, sizeof hdr->from, "%s", from->valuestring);
    snprintf(hdr->type, sizeof hdr->type, "%s", type->valuestring);
    hdr->seq = (uint64_t)seq;
    hdr->ts_ms = (int64_t)ts;
    *body = root;
    return OP_OK;
}

void msg_stats_to_json(const msg_stats *st, cJSON *obj)
{
    cJSON_AddNumberToObject(obj, "accepted", (double)st->accepted);
    cJSON_AddNumberToObject(obj, "unsigned", (double)st->unsigned_msgs);
    cJSON_AddNumberToObject(obj, "unknown_sender", (double)st->unknown_sender);
    cJSON_AddNumberToObject(obj, "forged", (double)st->forged);
    cJSON_AddNumberToObject(obj, "malformed", (double)st->malformed);
    cJSON_AddNumberToObject(obj, "expired", (double)st->expired);
    cJSON_AddNumberToObject(obj, "replayed", (double)st->replayed);
    cJSON_AddNumberToObject(obj, "oversize", (double)st->oversize);
    cJSON_AddNumberToObject(obj, "throttled", (double)st->throttled);
    cJSON_AddNumberToObject(obj, "unsealed", (double)st->unsealed);
    cJSON_AddNumberToObject(obj, "unopenable", (double)st->unopenable);
}

static int window_bit(const msg_window *w, uint64_t seq)
{
    uint64_t i = seq % MSG_WINDOW_BITS;
    return (int)((w->bits[i / 64] >> (i % 64)) & 1u);
}

void msg_window_restore(msg_window *w, uint64_t top)
{
    w->top = top;
    memset(w->bits, top ? 0xff : 0, sizeof w->bits);
}

int msg_window_check(const msg_window *w, uint64_t seq)
{
    if (seq > w->top) return OP_OK;
    if (w->top - seq >= MSG_WINDOW_BITS) return OP_EREPLAY;
    return window_bit(w, seq) ? OP_EREPLAY : OP_OK;
}

int msg_window_accept(msg_window *w, uint64_t seq)
{
    int rc = msg_window_check(w, seq);
    if (rc != OP_OK) return rc;
    if (seq > w->top) {
        uint64_t shift = seq - w->top;
        if (shift >= MSG_WINDOW_BITS || w->top == 0) {
            memset(w->bits, 0, sizeof w->bits);
        } else {
            for (uint64_t s = w->top + 1; s <= seq; s++) {
                uint64_t i = s % MSG_WINDOW_BITS;
                w->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
            }
        }
        w->top = seq;
    }
    uint64_t i = seq % MSG_WINDOW_BITS;
    w->bits[i / 64] |= (uint64_t)1 << (i % 64);
    return OP_OK;
}

/* Removes entry i (order does not matter: lookups scan the whole set). */
static void nonces_remove(msg_nonces *set, size_t i)
{
    if (set->items[i].ts_ms > set->floor_ms) set->floor_ms = set->items[i].ts_ms;
    set->items[i] = set->items[--set->n];
}

/* Room for one more entry: grown, or the oldest evicted when the set is at its bound. */
static int nonces_make_room(msg_nonces *set)
{
    if (set->n < set->cap) return OP_OK;
    if (set->cap < MSG_NONCES_MAX) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        if (cap > MSG_NONCES_MAX) cap = MSG_NONCES_MAX;
        msg_nonce *grown = realloc(set->items, cap * sizeof *grown);
        if (!grown) return OP_ENOMEM;
        set->items = grown;
        set->cap = cap;
        return OP_OK;
    }
    size_t oldest = 0;
    for (size_t i = 1; i < set->n; i++)
        if (set->items[i].ts_ms < set->items[oldest].ts_ms) oldest = i;
    nonces_remove(set, oldest);
    return OP_OK;
}

int msg_nonces_accept(msg_nonces *set, uint64_t nonce, int64_t ts_ms)
{
    if (ts_ms <= set->floor_ms) return OP_EREPLAY;
    for (size_t i = 0; i < set->n; i++)
        if (set->items[i].nonce == nonce) return OP_EREPLAY;
    int rc = nonces_make_room(set);
    if (rc != OP_OK) return rc;
    /* an eviction may have raised the floor above this very message */
    if (ts_ms <= set->floor_ms) return OP_EREPLAY;
    set->items[set->n++] = (msg_nonce){nonce, ts_ms};
    return OP_OK;
}

void msg_nonces_prune(msg_nonces *set, int64_t cutoff_ms)
{
    for (size_t i = 0; i < set->n;) {
        if (set->items[i].ts_ms < cutoff_ms)
            nonces_remove(set, i);
        else
            i++;
    }
}

void msg_nonces_clear(msg_nonces *set)
{
    free(set->items);
    memset(set, 0, sizeof *set);
}

int msg_bucket_take(msg_bucket *b, double cost, double rate_per_s, double burst, int64_t now_ms)
{
    if (b->last_ms == 0 || now_ms < b->last_ms) {
        b->units = burst;
    } else {
        b->units += (double)(now_ms - b->last_ms) * rate_per_s / 1000.0;
        if (b->units > burst) b->units = burst;
    }
    b->last_ms = now_ms;
    if (b->units < cost) return 0;
    b->units -= cost;
    return 1;
}

void msg_bucket_give(msg_bucket *b, double cost, double burst)
{
    b->units += cost;
    if (b->units > burst) b->units = burst;
}

int msg_seal(const uint8_t to_pk[32], const void *text, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    uint8_t *buf = malloc(len + MSG_SEAL_OVERHEAD_BYTES);
    if (!buf) return OP_ENOMEM;
    memcpy(buf, MSG_SEAL_MAGIC, MSG_SEAL_MAGIC_BYTES);
    int rc = ident_seal_bytes(to_pk, text, len, buf + MSG_SEAL_MAGIC_BYTES);
    if (rc != OP_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len + MSG_SEAL_OVERHEAD_BYTES;
    return OP_OK;
}

int msg_is_sealed(const void *payload, size_t len)
{
    return len >= MSG_SEAL_OVERHEAD_BYTES &&
           memcmp(payload, MSG_SEAL_MAGIC, MSG_SEAL_MAGIC_BYTES) == 0;
}

int msg_unseal(const ident *self, const void *payload, size_t len, char **text, size_t *text_len)
{
    *text = NULL;
    if (!msg_is_sealed(payload, len)) return OP_EINVAL;
    size_t plain_len = len - MSG_SEAL_OVERHEAD_BYTES;
    char *plain = malloc(plain_len + 1);
    if (!plain) return OP_ENOMEM;
    const uint8_t *box = (const uint8_t *)payload + MSG_SEAL_MAGIC_BYTES;
    if (ident_open_bytes(self, box, len - MSG_SEAL_MAGIC_BYTES, (uint8_t *)plain) != OP_OK) {
        free(plain);
        return OP_EINVAL;
    }
    plain[plain_len] = '\0';
    *text = plain;
    *text_len = plain_len;
    return OP_OK;
}

/* The first two checks of any envelope: a sender and an authenticator named, a size in bound. */
static int check_present(const char *topic, size_t len, const char *kid, const char *sig,
                         msg_stats *stats, char *reason, size_t reason_len)
{
    if (!kid || !sig) {
        stats->unsigned_msgs++;
        snprintf(reason, reason_len, "unsigned message on %s (no kid/sig property)", topic);
        return OP_ESIG;
    }
    if (len > MSG_MAX_PAYLOAD_BYTES) {
        stats->oversize++;
        snprintf(reason, reason_len, "payload of %zu bytes on %s exceeds %d", len, topic,
                 MSG_MAX_PAYLOAD_BYTES);
        return OP_ETOOBIG;
    }
    return OP_OK;
}

/*
 * The checks on the envelope, cheapest first: signed, size, sealed when it
 * must be, known sender, signature. Nothing is opened or parsed yet, so a
 * forgery costs at most one signature check.
 */
static int check_envelope(int must_seal, const char *topic, const void *payload, size_t len,
                          const char *kid, const char *sig_hex, msg_lookup_fn lookup, void *ctx,
                          msg_window **window, msg_stats *stats, char *reason, size_t reason_len)
{
    const uint8_t *pk = NULL;
    int rc;
    if ((rc = check_present(topic, len, kid, sig_hex, stats, reason, reason_len)) != OP_OK)
        return rc;
    if (must_seal && !msg_is_sealed(payload, len)) {
        stats->unsealed++;
        snprintf(reason, reason_len, "unsealed message on %s, which takes sealed ones only", topic);
        return OP_EPERM;
    }
    if (!util_valid_id(kid) || lookup(ctx, kid, &pk, window) != OP_OK) {
        stats->unknown_sender++;
        snprintf(reason, reason_len, "unknown sender '%.63s' on %s", kid, topic);
        return OP_EUNKNOWN;
    }
    if ((rc = msg_verify(pk, topic, payload, len, sig_hex)) != OP_OK) {
        if (rc == OP_ENOMEM) return rc;
        stats->forged++;
        snprintf(reason, reason_len, "bad signature from '%.63s' on %s", kid, topic);
        return OP_ESIG;
    }
    return OP_OK;
}

/* The checks on the JSON inside: shape, kid == from, timestamp, replay. */
static int check_inner(const char *topic, const char *text, size_t len, const char *kid,
                       const char *only_type, msg_window *window, int64_t now_ms, int64_t skew_ms,
                       cJSON **body, msg_header *hdr, msg_stats *stats, char *reason,
                       size_t reason_len)
{
    cJSON *root = NULL;
    int rc;
    if (msg_parse(text, len, &root, hdr) != OP_OK) {
        stats->malformed++;
        snprintf(reason, reason_len, "malformed payload from '%.63s' on %s", kid, topic);
        return OP_EINVAL;
    }
    if (strcmp(hdr->from, kid) != 0) {
        stats->forged++;
        snprintf(reason, reason_len, "kid '%.63s' does not match from '%.63s' on %s", kid,
                 hdr->from, topic);
        rc = OP_ESIG;
        goto fail;
    }
    if (only_type && strcmp(hdr->type, only_type) != 0) { /* before the window moves */
        stats->forged++;
        snprintf(reason, reason_len, "a MAC on a '%.31s' from '%.63s' on %s (heartbeats only)",
                 hdr->type, kid, topic);
        rc = OP_ESIG;
        goto fail;
    }
    if (hdr->ts_ms < now_ms - skew_ms || hdr->ts_ms > now_ms + skew_ms) {
        stats->expired++;
        snprintf(reason, reason_len, "timestamp from '%.63s' off by %lld ms on %s", kid,
                 (long long)(hdr->ts_ms - now_ms), topic);
        rc = OP_EEXPIRED;
        goto fail;
    }
    if (window && msg_window_accept(window, hdr->seq) != OP_OK) {
        stats->replayed++;
        snprintf(reason, reason_len, "replayed seq %llu from '%.63s' on %s",
                 (unsigned long long)hdr->seq, kid, topic);
        rc = OP_EREPLAY;
        goto fail;
    }
    stats->accepted++;
    *body = root;
    return OP_OK;
fail:
    cJSON_Delete(root);
    return rc;
}

int msg_open_for(const ident *self, int must_seal, const char *topic, const void *payload,
                 size_t len, const char *kid, const char *sig_hex, msg_lookup_fn lookup, void *ctx,
                 int64_t now_ms, int64_t skew_ms, cJSON **body, msg_header *hdr, msg_stats *stats,
                 char *reason, size_t reason_len)
{
    msg_window *window = NULL;
    int rc = check_envelope(must_seal, topic, payload, len, kid, sig_hex, lookup, ctx, &window,
                            stats, reason, reason_len);
    if (rc != OP_OK) return rc;
    if (!msg_is_sealed(payload, len))
        return check_inner(topic, payload, len, kid, NULL, window, now_ms, skew_ms, body, hdr,
                           stats, reason, reason_len);
    /* authentic, so worth an X25519 open */
    char *text = NULL;
    size_t text_len = 0;
    rc = self ? msg_unseal(self, payload, len, &text, &text_len) : OP_EINVAL;
    if (rc == OP_ENOMEM) return rc;
    if (rc != OP_OK) {
        stats->unopenable++;
        snprintf(reason, reason_len, "sealed message from '%.63s' on %s cannot be opened here", kid,
                 topic);
        return OP_EINVAL;
    }
    rc = check_inner(topic, text, text_len, kid, NULL, window, now_ms, skew_ms, body, hdr, stats,
                     reason, reason_len);
    sodium_memzero(text, text_len);
    free(text);
    return rc;
}

int msg_open(const char *topic, const void *payload, size_t len, const char *kid,
             const char *sig_hex, msg_lookup_fn lookup, void *ctx, int64_t now_ms, int64_t skew_ms,
             cJSON **body, msg_header *hdr, msg_stats *stats, char *reason, size_t reason_len)
{
    return msg_open_for(NULL, 0, topic, payload, len, kid, sig_hex, lookup, ctx, now_ms, skew_ms,
                        body, hdr, stats, reason, reason_len);
}

/* topic || 0x00 || payload under key, as crypto_auth's streaming HMAC. */
static void mac_bytes(const uint8_t key[MSG_MAC_KEY_BYTES], const char *topic, const void *payload,
                      size_t len, uint8_t out[crypto_auth_BYTES])
{
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, key, MSG_MAC_KEY_BYTES);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)topic, strlen(topic) + 1);
    crypto_auth_hmacsha512256_update(&st, payload, len);
    crypto_auth_hmacsha512256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void msg_mac(const uint8_t key[MSG_MAC_KEY_BYTES], const char *topic, const void *payload,
             size_t len, char mac[MSG_MAC_HEX_BYTES])
{
    uint8_t raw[crypto_auth_BYTES];
    mac_bytes(key, topic, payload, len, raw);
    memcpy(mac, MSG_MAC_PREFIX, 3);
    util_hex(raw, sizeof raw, mac + 3);
}

int msg_is_mac(const char *sig)
{
    return sig && strncmp(sig, MSG_MAC_PREFIX, 3) == 0 && strlen(sig) == MSG_MAC_HEX_BYTES - 1;
}

void msg_mac_key_id(const uint8_t key[MSG_MAC_KEY_BYTES], char id[MSG_MAC_KEY_ID_BYTES])
{
    uint8_t hash[crypto_generichash_BYTES];
    crypto_generichash(hash, sizeof hash, key, MSG_MAC_KEY_BYTES, NULL, 0);
    util_hex(hash, 8, id);
}

/* The MAC's own checks, before any parse: present, size, in clear, right under key. */
static int check_mac(const uint8_t *key, const char *topic, const void *payload, size_t len,
                     const char *kid, const char *mac, msg_stats *stats, char *reason,
                     size_t reason_len)
{
    uint8_t want[crypto_auth_BYTES], got[crypto_auth_BYTES];
    int rc = check_present(topic, len, kid, mac, stats, reason, reason_len);
    if (rc != OP_OK) return rc;
    if (msg_is_sealed(payload, len)) {
        stats->malformed++;
        snprintf(reason, reason_len, "sealed message with a MAC on %s (heartbeats only)", topic);
        return OP_EINVAL;
    }
    if (!key) {
        stats->forged++;
        snprintf(reason, reason_len, "MAC from '%.63s' on %s under a key this hub does not hold",
                 kid, topic);
        return OP_ESIG;
    }
    mac_bytes(key, topic, payload, len, want);
    int ok = msg_is_mac(mac) && util_unhex(mac + 3, got, sizeof got) == OP_OK &&
             crypto_verify_32(want, got) == 0;
    if (!ok) {
        stats->forged++;
        snprintf(reason, reason_len, "bad MAC from '%.63s' on %s", kid, topic);
        return OP_ESIG;
    }
    return OP_OK;
}

int msg_open_mac(const uint8_t *key, const char *topic, const void *payload, size_t len,
                 const char *kid, const char *mac, msg_window *window, int64_t now_ms,
                 int64_t skew_ms, cJSON **body, msg_header *hdr, msg_stats *stats, char *reason,
                 size_t reason_len)
{
    int rc = check_mac(key, topic, payload, len, kid, mac, stats, reason, reason_len);
    if (rc != OP_OK) return rc;
    return check_inner(topic, payload, len, kid, "state", window, now_ms, skew_ms, body, hdr, stats,
                       reason, reason_len);
}
