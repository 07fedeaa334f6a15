/*
 * msg: the signed message envelope of the wire protocol (pure, no I/O).
 *
 * A message is a JSON object published on a topic under "outpost/v1/". Its
 * payload carries "from" (sender id), "type", "seq" (per-sender, strictly
 * increasing within a sliding window) and "ts" (sender's wall clock, ms).
 * The MQTT 5 user properties carry "kid" (= from) and "sig" = hex of the
 * Ed25519 signature over topic || 0x00 || payload. msg_open() applies every
 * check a receiver needs, in the order that costs least for a hostile
 * sender: presence of sig/kid, size, known sender, signature, JSON shape,
 * kid == from, timestamp window, replay window.
 *
 * Two kinds of replay protection, one per kind of sender:
 *
 * - Daemons (sites, the hub) are one process per key: their "seq" rises by
 *   one per message from a start above anything they sent before, and the
 *   receiver keeps a 256-entry sliding window (msg_window) whose top it
 *   persists, so QoS 1 reordering is tolerated and a captured message is
 *   refused even after the receiver restarts.
 *
 * - Operators are many short processes sharing one key (twenty `outpost
 *   stats` at once, a script in a loop): no process knows what the others
 *   sent, so a monotonic counter cannot be shared and a start taken from the
 *   wall clock collides (and goes backwards when the clock steps back). Their
 *   "seq" is a nonce instead: each CLI process starts at a random 52-bit
 *   value and counts up from it, so requests never repeat one. The hub keeps,
 *   per operator, the set of nonces seen with their timestamps (msg_nonces).
 *   A message is already refused when its "ts" is off the hub's clock by more
 *   than the skew, so the set only needs the nonces of that time window:
 *   older entries are pruned and raise a floor (a timestamp at or below
 *   which everything is refused), and when the set is full its oldest entry
 *   is evicted the same way, so it stays bounded without ever letting a
 *   replay through. The hub stores every accepted nonce in the request's own
 *   transaction and the floor with its periodic chores, so the set survives
 *   restarts. A replayed request is therefore refused if its nonce is in the
 *   set, its timestamp is at or below the floor, or its timestamp is
 *   outside the skew: no ordering of the sender's clock is assumed.
 *
 * Sealing. Every message but a heartbeat is also sealed to its recipient
 * (msg_seal): its payload is MSG_SEAL_MAGIC (four bytes that cannot start
 * JSON text) followed by a libsodium sealed box of the JSON text to the
 * recipient's X25519 key, derived from its Ed25519 identity; raw bytes, not
 * base64, so sealing adds MSG_SEAL_OVERHEAD_BYTES and nothing per byte. The
 * signature covers topic || 0x00 || the sealed payload, so a receiver checks
 * the size, the sender and the signature before it spends an X25519 open
 * on anything, and checks the inner "from" against kid after opening: a
 * sealed body cannot be re-signed and sent on by another sender. The broker
 * and its other clients see topics, sizes, timing and heartbeats only.
 *
 * Before any of it, a receiver can spend a sender's budget (msg_bucket, a
 * token bucket charged before the signature check and refunded when the
 * message proves authentic): forgeries under a sender's name then cost a
 * bounded amount of verification per second.
 */
#ifndef OUTPOST_MSG_H
#define OUTPOST_MSG_H

#include "wire/ident.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_MAX_PAYLOAD_BYTES (6 * 1024 * 1024)
#define MSG_TOPIC_ROOT "outpost/v1/"
#define MSG_WINDOW_BITS 256

/* A sealed payload: the magic, then a sealed box of the JSON text. */
#define MSG_SEAL_MAGIC "\0OS1"
#define MSG_SEAL_MAGIC_BYTES 4
#define MSG_SEAL_OVERHEAD_BYTES (MSG_SEAL_MAGIC_BYTES + IDENT_SEAL_OVERHEAD_BYTES)

/* Anti-replay window per sender (RFC 4303 style): highest seq seen plus a bitmap. */
typedef struct msg_window {
    uint64_t top;
    uint64_t bits[MSG_WINDOW_BITS / 64];
} msg_window;

typedef struct msg_header {
    char from[64];
    char type[32];
    uint64_t seq;
    int64_t ts_ms;
} msg_header;

/* Rejection counters, one per reason; a receiver logs and counts every drop. */
typedef struct msg_stats {
    uint64_t accepted;
    uint64_t unsigned_msgs;
    uint64_t unknown_sender;
    uint64_t forged;
    uint64_t malformed;
    uint64_t expired;
    uint64_t replayed;
    uint64_t oversize;
    uint64_t throttled;  /* over the sender's budget: dropped before the signature check */
    uint64_t unsealed;   /* in clear on a topic whose messages must be sealed */
    uint64_t unopenable; /* sealed, but not to this receiver (or altered inside) */
} msg_stats;

/* Adds the counters to obj as integer fields named like the struct's (unsigned -> "unsigned"). */
void msg_stats_to_json(const msg_stats *stats, cJSON *obj);

/* Signs topic||0||payload; sig_hex receives 128 hex chars + NUL. OP_ENOMEM. */
int msg_sign(const ident *sender, const char *topic, const void *payload, size_t len,
             char sig_hex[129]);
/* OP_OK or OP_ESIG (also for a malformed sig_hex). */
int msg_verify(const uint8_t pk[32], const char *topic, const void *payload, size_t len,
               const char *sig_hex);

/*
 * Adds from/type/seq/ts to body (which stays owned by the caller) and
 * returns the compact JSON text (malloc'd, caller frees) or NULL.
 */
char *msg_encode(cJSON *body, const char *from, const char *type, uint64_t seq, int64_t ts_ms,
                 size_t *len_out);

/* Parses a payload into a JSON object and its header. OP_EINVAL, OP_ETOOBIG. */
int msg_parse(const void *payload, size_t len, cJSON **body, msg_header *hdr);

/*
 * Seals the JSON text of a message to the holder of the Ed25519 key to_pk:
 * *out (malloc'd, the caller frees) is MSG_SEAL_MAGIC then the sealed box,
 * len + MSG_SEAL_OVERHEAD_BYTES bytes. Sign *out, not text. OP_OK,
 * OP_EINVAL (to_pk is not a valid key), OP_ENOMEM.
 */
int msg_seal(const uint8_t to_pk[32], const void *text, size_t len, uint8_t **out, size_t *out_len);
/* 1 if payload starts with MSG_SEAL_MAGIC and is long enough to hold a sealed box. */
int msg_is_sealed(const void *payload, size_t len);
/*
 * Opens a sealed payload made for self: *text (malloc'd, NUL-terminated,
 * the caller frees) and its length. OP_OK, OP_EINVAL (not sealed, not to
 * self, or altered), OP_ENOMEM.
 */
int msg_unseal(const ident *self, const void *payload, size_t len, char **text, size_t *text_len);

/*
 * After a restart: only sequence numbers above top are accepted (everything
 * up to top counts as seen), so that messages captured before the restart
 * cannot be replayed. top 0 leaves the window empty.
 */
void msg_window_restore(msg_window *window, uint64_t top);

/* OP_OK if seq is new (and records it), OP_EREPLAY if seen or older than the window. */
int msg_window_accept(msg_window *window, uint64_t seq);
/* Like msg_window_accept without recording. */
int msg_window_check(const msg_window *window, uint64_t seq);

/* Nonces of one operator, bounded (see the top of this header). */
#define MSG_NONCES_MAX 4096

typedef struct msg_nonce {
    uint64_t nonce;
    int64_t ts_ms;
} msg_nonce;

typedef struct msg_nonces {
    msg_nonce *items; /* grown up to MSG_NONCES_MAX; owned, freed by msg_nonces_clear */
    size_t n, cap;
    int64_t floor_ms; /* timestamps at or below it are refused */
} msg_nonces;

/*
 * OP_OK if (nonce, ts_ms) is new and recorded; OP_EREPLAY if the nonce was
 * seen or ts_ms is at or below the floor. A full set evicts its oldest entry
 * and raises the floor to it. OP_ENOMEM when the set could not grow (nothing
 * recorded: the caller refuses the message).
 */
int msg_nonces_accept(msg_nonces *set, uint64_t nonce, int64_t ts_ms);
/* Forgets entries older than cutoff_ms, raising the floor to the newest of them. */
void msg_nonces_prune(msg_nonces *set, int64_t cutoff_ms);
/* Frees the entries and zeroes the set (floor included). */
void msg_nonces_clear(msg_nonces *set);

/*
 * A token bucket: up to burst units, refilled at rate_per_s. A zeroed bucket
 * is full at its first use. msg_bucket_take takes cost and returns 1 when
 * the bucket holds it, else takes nothing and returns 0; msg_bucket_give
 * puts cost back (a refund), never above burst.
 */
typedef struct msg_bucket {
    double units;
    int64_t last_ms;
} msg_bucket;

int msg_bucket_take(msg_bucket *bucket, double cost, double rate_per_s, double burst,
                    int64_t now_ms);
void msg_bucket_give(msg_bucket *bucket, double cost, double burst);

/*
 * Looks up a sender by kid: sets *pk (32 bytes) and *window (its replay
 * window, may be NULL to skip replay checks). Returns OP_OK or OP_EUNKNOWN.
 */
typedef int (*msg_lookup_fn)(void *ctx, const char *kid, const uint8_t **pk, msg_window **window);

/*
 * Full receive-side check. On OP_OK *body is the parsed message (caller
 * frees with cJSON_Delete) and hdr is filled. On failure nothing is
 * allocated, the matching counter in stats is incremented and reason says
 * why. Errors: OP_ESIG (unsigned or forged), OP_EUNKNOWN, OP_EINVAL
 * (malformed), OP_ETOOBIG, OP_EEXPIRED (ts outside now +- skew_ms),
 * OP_EREPLAY.
 */
int msg_open(const char *topic, const void *payload, size_t len, const char *kid,
             const char *sig_hex, msg_lookup_fn lookup, void *ctx, int64_t now_ms, int64_t skew_ms,
             cJSON **body, msg_header *hdr, msg_stats *stats, char *reason, size_t reason_len);

/*
 * msg_open for a receiver that takes sealed messages: self opens what was
 * sealed to it, and must_seal (proto_must_seal) says whether the topic takes
 * only sealed ones. Order: presence of sig/kid, size, sealed when it must
 * be (OP_EPERM, counted as unsealed: a cheap check, before any signature),
 * known sender, signature (over the sealed bytes), open (OP_EINVAL, counted
 * as unopenable), then msg_open's checks on the JSON inside, kid == from
 * among them. A sealed message on a topic that does not require it is
 * opened all the same. msg_open is this with self NULL and must_seal 0:
 * it refuses every sealed message.
 */
int msg_open_for(const ident *self, int must_seal, const char *topic, const void *payload,
                 size_t len, const char *kid, const char *sig_hex, msg_lookup_fn lookup, void *ctx,
                 int64_t now_ms, int64_t skew_ms, cJSON **body, msg_header *hdr, msg_stats *stats,
                 char *reason, size_t reason_len);

/*
 * Heartbeat MACs. A heartbeat is the one message every site sends every few
 * seconds, and an Ed25519 check of each was most of a large hub's time. So a
 * site draws a 32-byte key at start (MSG_MAC_KEY_BYTES), sends it inside its
 * hello (sealed to the hub, and signed), and once the hub's welcome names
 * that key (msg_mac_key_id), authenticates its heartbeats with it: the "sig"
 * property is then MSG_MAC_PREFIX followed by the hex of HMAC-SHA-512-256
 * (libsodium crypto_auth) over topic || 0x00 || payload, the bytes a
 * signature covers. Only a heartbeat in clear (type "state") may carry one:
 * everything else, and everything that goes on an audit log, stays signed,
 * so a MAC never has to prove anything to a third party. msg_verify refuses
 * a MAC (it is not a signature), so no other receiver can be led to take one.
 */
#define MSG_MAC_PREFIX "m1."
#define MSG_MAC_KEY_BYTES 32
#define MSG_MAC_HEX_BYTES (3 + 64 + 1) /* prefix, 32 bytes in hex, NUL */
#define MSG_MAC_KEY_ID_BYTES 17        /* 8 bytes in hex and a NUL */

/* mac receives MSG_MAC_PREFIX and the hex of the MAC of topic||0||payload under key. */
void msg_mac(const uint8_t key[MSG_MAC_KEY_BYTES], const char *topic, const void *payload,
             size_t len, char mac[MSG_MAC_HEX_BYTES]);
/* 1 if sig has the form of a MAC (prefix and length), not of a signature. */
int msg_is_mac(const char *sig);
/* A key's public name: hex of the first 8 bytes of its BLAKE2b hash, which reveals nothing of it.
 */
void msg_mac_key_id(const uint8_t key[MSG_MAC_KEY_BYTES], char id[MSG_MAC_KEY_ID_BYTES]);

/*
 * msg_open for a heartbeat that carries a MAC: kid and mac present, size,
 * in clear, the MAC under key (NULL: the receiver holds none for kid, which
 * fails as a forgery would), then the JSON, type "state", kid == from, the
 * clock, and the replay window (NULL: the caller checks it). The failures
 * count as msg_open's do; OP_ESIG for a missing key, a wrong MAC or a type
 * other than "state".
 */
int msg_open_mac(const uint8_t *key, const char *topic, const void *payload, size_t len,
                 const char *kid, const char *mac, msg_window *window, int64_t now_ms,
                 int64_t skew_ms, cJSON **body, msg_header *hdr, msg_stats *stats, char *reason,
                 size_t reason_len);

#endif
