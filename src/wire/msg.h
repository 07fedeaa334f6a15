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
 * After a restart: only sequence numbers above top are accepted (everything
 * up to top counts as seen), so that messages captured before the restart
 * cannot be replayed. top 0 leaves the window empty.
 */
void msg_window_restore(msg_window *window, uint64_t top);

/* OP_OK if seq is new (and records it), OP_EREPLAY if seen or older than the window. */
int msg_window_accept(msg_window *window, uint64_t seq);
/* Like msg_window_accept without recording. */
int msg_window_check(const msg_window *window, uint64_t seq);

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

#endif
