/*
 * beats: the hub's side of the heartbeat worker pool (workers.h). A
 * heartbeat or hello from a known site, and a hello from a site not yet
 * enrolled, after intake's cheap checks, go to the pool instead of being
 * verified on the loop (a heartbeat with a MAC stays on the loop: its check
 * costs less than the hand-off); what the pool checked comes
 * back here, on the loop's thread, where the replay window, the budget's
 * refund and the handler (hub__handle_state, or a goodbye) run as they do
 * for a heartbeat checked inline. A full lane means the loop checks that
 * heartbeat itself (counted in beats_inline): slower, never dropped.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "hub/hub_int.h"
#include "hub/workers.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HUB_BEAT_LANE_CAP 8192 /* heartbeats a lane holds, in and out together */

int hub__workers_start(hub *h, int lanes)
{
    if (lanes <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        lanes = cores > 1 ? (int)(cores - 1) : 1;
        if (lanes > 8) lanes = 8; /* beat_workers may set more, up to 64 */
    }
    int rc = hub_workers_new(lanes, HUB_BEAT_LANE_CAP, &h->identity, h->clock_skew_ms, &h->workers);
    if (rc != OP_OK)
        log_warn("hub", "no worker threads for heartbeats (%s): checked on the loop",
                 op_strerror(rc));
    else
        log_info("hub", "heartbeats checked on %d worker thread(s)", lanes);
    return rc;
}

void hub__workers_stop(hub *h)
{
    hub_workers_free(h->workers);
    h->workers = NULL;
}

/* The in-flight counter of an unknown site's hellos. */
static uint16_t *inflight_slot(hub *h, const char *site_id)
{
    return &h->hello_inflight[hub__id_hash(site_id) % HUB_HELLO_SLOTS];
}

/*
 * An unknown site's hello while another of its hellos is in the workers: a
 * repeat (it says hello every 2 s until welcomed), dropped without a check;
 * its charge goes back, as the check would give it. Another site with the
 * same counter is delayed by one repeat at most.
 */
static int repeated_hello(hub *h, const char *site_id)
{
    if (!*inflight_slot(h, site_id)) return 0;
    h->hellos_repeated++;
    hub__intake_refund(h);
    return 1;
}

int hub__beat_offload(hub *h, const char *site_id, const char *leaf, const char *topic,
                      const void *payload, size_t len, const char *kid, const char *sig)
{
    int hello = strcmp(leaf, "hello") == 0;
    if (!h->workers || !kid || !sig || (!hello && strcmp(leaf, "state") != 0)) return 0;
    /* a MAC costs 2-3 us: about what the hand-off to a thread and back costs */
    if (!hello && msg_is_mac(sig)) return 0;
    hub_site *s = hub__find_site(h, site_id);
    /* anything but a heartbeat or hello under the sender's own name takes the inline path */
    if ((!s && !hello) || strcmp(kid, site_id) != 0 || strlen(sig) >= sizeof((hub_beat *)0)->sig ||
        strlen(topic) >= PROTO_TOPIC_MAX)
        return 0;
    if (!s && repeated_hello(h, site_id)) return 1;
    hub_beat *b = hub_beat_new(payload, len);
    if (!b) return 0;
    snprintf(b->topic, sizeof b->topic, "%s", topic);
    snprintf(b->kid, sizeof b->kid, "%s", kid);
    snprintf(b->sig, sizeof b->sig, "%s", sig);
    b->hello = hello;
    b->link = h->msg_link;
    b->enroll = !s;
    if (s) memcpy(b->pk, s->pk, 32);
    b->site = s ? (size_t)(s - h->sites) : hub__id_hash(site_id);
    msg_bucket *budget = s ? &s->budget : &h->unknown_budget;
    b->charged = h->charged == budget ? h->charged_cost : 0;
    if (hub_workers_submit(h->workers, b) != OP_OK) {
        hub_beat_free(b);
        h->beats_inline++;
        return 0;
    }
    if (s)
        h->beats_offloaded++;
    else {
        h->hellos_offloaded++;
        (*inflight_slot(h, site_id))++;
    }
    h->charged = NULL;
    return 1;
}

/* A check's counter into the hub's (accepted is counted after the window, here). */
static void add_stats(msg_stats *to, const msg_stats *from)
{
    to->unsigned_msgs += from->unsigned_msgs;
    to->unknown_sender += from->unknown_sender;
    to->forged += from->forged;
    to->malformed += from->malformed;
    to->expired += from->expired;
    to->replayed += from->replayed;
    to->oversize += from->oversize;
    to->throttled += from->throttled;
    to->unsealed += from->unsealed;
    to->unopenable += from->unopenable;
}

/* An unknown site's hello checked on a worker: enrolled or refused, as the inline path does. */
static void finish_enroll(hub *h, hub_beat *b)
{
    uint16_t *slot = inflight_slot(h, b->kid);
    if (*slot) (*slot)--;
    if (hub__find_site(h, b->kid)) { /* enrolled by a hello checked inline meanwhile */
        h->hellos_repeated++;
        return;
    }
    if (b->rc != OP_OK) {
        hub__hello_refused(h, b->rc, &b->enrolling);
        return;
    }
    msg_bucket_give(&h->unknown_budget, b->charged, hub__intake_unknown_burst());
    hub__enroll_checked(h, b->kid, &b->enrolling);
}

/* One checked heartbeat or hello: refused as the inline path refuses it, or handled. */
static void finish_beat(hub *h, hub_beat *b)
{
    if (!hubdb_in_tx(h->db) && hubdb_begin(h->db) != OP_OK) {
        h->store_failed = 1;
        return;
    }
    h->msg_link = b->link; /* its welcome goes back where it came from */
    if (b->enroll) {
        finish_enroll(h, b);
        return;
    }
    hub_site *s = b->site < h->n_sites ? &h->sites[b->site] : NULL;
    if (!s || strcmp(s->id, b->kid) != 0) return;
    add_stats(&h->msg, &b->stats);
    if (b->rc != OP_OK) {
        if (b->rc == OP_EPERM)
            log_debug("hub", "dropped: %s", b->reason);
        else
            log_warn("hub", "dropped: %s", b->reason);
        return;
    }
    if (msg_window_accept(&s->beat_window, b->hdr.seq) != OP_OK) {
        h->msg.replayed++;
        /* the words msg_open uses for the same refusal on the inline path */
        log_warn("hub", "dropped: replayed seq %llu from '%.63s' on %s",
                 (unsigned long long)b->hdr.seq, s->id, b->topic);
        return;
    }
    h->msg.accepted++;
    s->link = b->link;
    hub__intake_give(s, b->charged);
    if (strcmp(b->hdr.type, "bye") == 0) {
        hub__site_left(h, s, jsonx_str(b->body, "reason"));
    } else if (b->hello) {
        hub__handle_hello(h, s, b->body);
    } else {
        hub__note_beat_age(h, b->hdr.ts_ms);
        hub__handle_state(h, s, b->body);
    }
}

void hub__finish_beats(hub *h)
{
    hub_beat *b;
    while (h->workers && (b = hub_workers_take(h->workers))) {
        finish_beat(h, b);
        hub_beat_free(b);
    }
}
