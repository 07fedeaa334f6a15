/*
 * intake: what every message costs the hub before its signature is checked.
 *
 * A signature check reads the whole payload (SHA-512 over up to 6 MiB) and
 * a parse allocates for all of it, so a broker client that publishes large
 * junk under a site's name could keep the hub busy with nothing but
 * rejections. Two cheap checks come first, both on numbers the hub already
 * has in hand: the payload's size against its topic's bound (a heartbeat is
 * small, a result may be large), then the budget of the sender it claims to
 * be. A budget is a token bucket charged by size before the signature check
 * and refunded when the message proves authentic: a genuine sender never
 * runs it down, while forgeries under its name (or under names the hub does
 * not know, which share one budget) buy a bounded amount of checking per
 * second and are then dropped unread. Drops are counted (oversize,
 * throttled); the log gets one line a second at most, with the number of
 * drops it did not describe.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "hub/hub_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HUB_UNIT_BYTES (64 * 1024) /* a message costs one unit plus one per 64 KiB */
#define HUB_SENDER_BURST 1000.0    /* a known sender's budget, in units */
#define HUB_SENDER_RATE 200.0      /* units per second */
#define HUB_UNKNOWN_BURST 200.0    /* every unknown sender together */
#define HUB_UNKNOWN_RATE 50.0

/* A drop on the log, at most one line a second (the others counted into the next line). */
static void note_drop(hub *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_drop(hub *h, const char *fmt, ...)
{
    int64_t now = os_mono_ms();
    if (h->intake_logged_ms && now - h->intake_logged_ms < 1000) {
        h->intake_unlogged++;
        return;
    }
    char line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (h->intake_unlogged)
        log_warn("hub", "dropped: %s (and %llu more dropped unread since the last such line)", line,
                 (unsigned long long)h->intake_unlogged);
    else
        log_warn("hub", "dropped: %s", line);
    h->intake_logged_ms = now;
    h->intake_unlogged = 0;
}

/* The budget of the sender kid claims to be, with its refill rate and burst. */
static msg_bucket *budget_of(hub *h, const char *realm, const char *kid, double *rate,
                             double *burst)
{
    msg_bucket *known = NULL;
    if (strcmp(realm, "site") == 0) {
        hub_site *s = hub__find_site(h, kid);
        if (s) known = &s->budget;
    } else {
        hub_operator *op = hub__find_operator(h, kid);
        if (op) known = &op->budget;
    }
    *rate = known ? HUB_SENDER_RATE : HUB_UNKNOWN_RATE;
    *burst = known ? HUB_SENDER_BURST : HUB_UNKNOWN_BURST;
    return known ? known : &h->unknown_budget;
}

int hub__intake(hub *h, const char *realm, const char *id, const char *leaf, const char *topic,
                size_t len, const char *kid)
{
    h->charged = NULL;
    size_t max = proto_max_bytes(realm, leaf);
    if (len > max) {
        h->msg.oversize++;
        note_drop(h, "payload of %zu bytes on %s exceeds the %zu its topic takes", len, topic, max);
        return OP_ETOOBIG;
    }
    /* Unsigned, or claiming another sender's topic: refused next at no cost, so not charged. */
    if (!kid || !util_valid_id(kid) || strcmp(kid, id) != 0) return OP_OK;
    double rate, burst, cost = 1.0 + (double)(len / HUB_UNIT_BYTES);
    msg_bucket *bucket = budget_of(h, realm, kid, &rate, &burst);
    if (!msg_bucket_take(bucket, cost, rate, burst, os_mono_ms())) {
        h->msg.throttled++;
        note_drop(h, "'%.63s' is over its budget of unverified messages on %s", kid, topic);
        return OP_EFULL;
    }
    h->charged = bucket;
    h->charged_cost = cost;
    h->charged_burst = burst;
    return OP_OK;
}

void hub__intake_refund(hub *h)
{
    if (h->charged) msg_bucket_give(h->charged, h->charged_cost, h->charged_burst);
    h->charged = NULL;
}

void hub__intake_give(hub_site *s, double cost)
{
    msg_bucket_give(&s->budget, cost, HUB_SENDER_BURST);
}

double hub__intake_unknown_burst(void)
{
    return HUB_UNKNOWN_BURST;
}
