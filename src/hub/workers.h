/*
 * workers: threads that authenticate sites' heartbeats and hellos off the
 * hub's loop.
 *
 * A heartbeat costs the hub an Ed25519 verification and a JSON parse before
 * anything it says is used; with tens of thousands of sites that is most of
 * the loop's time. The pool does both on its own threads (libsodium and
 * cJSON's parser keep no shared state), while everything that reads or
 * writes the hub's state (the replay window, the store, the fleet view,
 * placement) stays on the loop's thread: a verified heartbeat comes back to
 * the loop, which finishes it there. The pool owns the messages in flight.
 * A hello from a site the hub does not know yet is checked here too
 * (hello.h: unsealed, signed by the key inside, its token's signature):
 * in an enrollment storm those checks were most of the loop's time.
 *
 * Order: each site goes to one lane (its index modulo the number of lanes),
 * a lane is one thread with a FIFO in and a FIFO out, and the loop takes a
 * lane's results in order; so a site's heartbeats are finished in the order
 * they arrived. Bound: a lane holds at most lane_cap messages in and out
 * together; hub_workers_submit refuses more (OP_EFULL) and the caller keeps
 * the message (the hub then verifies it on the loop itself: slower, nothing
 * dropped, and the broker holds what the hub has not read yet).
 */
#ifndef OUTPOST_HUB_WORKERS_H
#define OUTPOST_HUB_WORKERS_H

#include "hub/hello.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hub_workers hub_workers;

/* One heartbeat in flight: what the loop knew when it arrived, then what the check found. */
typedef struct hub_beat {
    /* in: filled by the caller */
    char topic[PROTO_TOPIC_MAX];
    char kid[64];
    char sig[130];
    int hello;        /* on the site's hello topic, not its state topic */
    int enroll;       /* a hello from a site not enrolled: checked as hub_hello_open does */
    uint8_t pk[32];   /* the key the site enrolled with (not for enroll) */
    size_t site;      /* its index in the hub's sites (enroll: a hash of kid): picks the lane */
    double charged;   /* what intake took from the site's budget (refunded when authentic) */
    int link;         /* the hub's link it came in on (hub_int.h) */
    uint8_t *payload; /* owned by the beat */
    size_t len;
    /* out: filled by a worker */
    int rc;      /* msg_open_for's result, without the replay window (the loop checks it) */
    cJSON *body; /* OP_OK: the parsed body, owned by the beat */
    msg_header hdr;
    msg_stats stats; /* the one counter this check moved */
    char reason[200];
    hub_hello enrolling; /* enroll: what hub_hello_open found (rc is its result) */
    struct hub_beat *next;
} hub_beat;

/*
 * A pool of lanes threads (1 to 64), each with room for lane_cap messages.
 * self opens what is sealed to the hub (copied, wiped at free); skew_ms is
 * the timestamp window. OP_OK, OP_EINVAL (a bad count), OP_ENOMEM, OP_EIO
 * (a thread could not start; none is left running).
 */
int hub_workers_new(int lanes, int lane_cap, const ident *self, int64_t skew_ms, hub_workers **out);

/*
 * A new beat with a copy of payload (len bytes): NULL when out of memory.
 * Free with hub_beat_free unless submitted and not refused.
 */
hub_beat *hub_beat_new(const void *payload, size_t len);
void hub_beat_free(hub_beat *b);

/*
 * Hands b to its site's lane. OP_OK: the pool owns it until hub_workers_take
 * returns it. OP_EFULL: the lane is full and the caller still owns b.
 */
int hub_workers_submit(hub_workers *w, hub_beat *b);

/*
 * The next checked beat, or NULL when none is ready; the caller owns it.
 * Lanes are visited in turn; within a lane, beats come back in the order
 * they were submitted.
 */
hub_beat *hub_workers_take(hub_workers *w);

/* Messages submitted and not yet taken back. */
size_t hub_workers_pending(hub_workers *w);

/* Stops the threads (each finishes the beat in hand), frees every beat still held. NULL ok. */
void hub_workers_free(hub_workers *w);

#endif
