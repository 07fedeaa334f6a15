/*
 * loop: the hub's one thread. Each iteration waits briefly for messages
 * (each handled inside one SQLite transaction, opened by the first), runs
 * the periodic chores that are due in the same transaction, commits it
 * (synchronous=FULL), and only then publishes what it queued: nothing is
 * promised to anyone before it is durable (group commit).
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "core/jobspec.h"
#include "hub/api_int.h"
#include "hub/hub.h"
#include "hub/hub_int.h"
#include "io/sdnotify.h"

#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hub__check(hub *h, int rc)
{
    if (rc != OP_OK) h->store_failed = 1;
    return rc;
}

void hub__on_message(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                     const char *sig)
{
    hub *h = ctx;
    char realm[8], id[64], leaf[16];
    if (proto_parse_topic(topic, realm, id, leaf) != OP_OK) {
        h->msg.malformed++;
        log_warn("hub", "dropped message on unexpected topic '%.100s'", topic);
        return;
    }
    /* before a transaction, a signature or a parse: size and the sender's budget */
    if (hub__intake(h, realm, id, leaf, topic, len, kid) != OP_OK) return;
    /* heartbeats' and hellos' signatures and parses go to the workers (beats.c) */
    if (strcmp(realm, "site") == 0 && hub__beat_offload(h, id, leaf, topic, payload, len, kid, sig))
        return;
    if (!hubdb_in_tx(h->db) && hubdb_begin(h->db) != OP_OK) {
        h->store_failed = 1;
    } else if (strcmp(realm, "site") == 0) {
        hub__site_message(h, id, leaf, topic, payload, len, kid, sig);
    } else if (strcmp(leaf, "req") == 0) {
        hub__op_message(h, id, topic, payload, len, kid, sig);
    }
    h->charged = NULL; /* it may point into the sites, which the next message may move */
}

void hub__on_link_message(void *ctx, const char *topic, const void *payload, size_t len,
                          const char *kid, const char *sig)
{
    hub_link *l = ctx;
    l->h->msg_link = l->index;
    hub__on_message(l->h, topic, payload, len, kid, sig);
}

int hub__link_fds(hub *h, struct pollfd *fds, int max)
{
    int n = 0;
    for (int i = 0; i < h->n_links && n + 2 <= max; i++) {
        fds[n++] = (struct pollfd){.fd = bus_socket(h->links[i].main), .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = bus_socket(h->links[i].beats), .events = POLLIN};
    }
    return n;
}

/*
 * Waits up to timeout_ms for a message on any link (or an HTTP request),
 * then does each session's network work. One link waits inside its main
 * session's loop, as a lone client does; several are polled together, so
 * none waits behind another. OP_OK, or the first session's failure.
 */
static int links_loop(hub *h, int timeout_ms)
{
    if (hub__api_wait(h, timeout_ms)) {
        timeout_ms = 0;
    } else if (h->n_links > 1) {
        struct pollfd fds[2 * BUS_MAX_BROKERS];
        poll(fds, (nfds_t)hub__link_fds(h, fds, 2 * BUS_MAX_BROKERS), timeout_ms);
        timeout_ms = 0;
    }
    for (int i = 0; i < h->n_links; i++)
        if (bus_loop(h->links[i].main, i == 0 ? timeout_ms : 0) != OP_OK ||
            bus_loop(h->links[i].beats, 0) != OP_OK)
            return OP_EBUS;
    return OP_OK;
}

/* The chores that are due (fleet checks, placement, ...), in the loop's transaction. */
static void run_due(hub *h, int64_t now)
{
    if (!timer_ready(&h->check_timer, now) && !h->placement_dirty && !hubdb_in_tx(h->db)) return;
    if (!hubdb_in_tx(h->db) && hubdb_begin(h->db) != OP_OK) {
        h->store_failed = 1;
        return;
    }
    if (timer_due(&h->check_timer, now, 0)) hub__check_fleet(h);
    if (timer_due(&h->seq_flush_timer, now, 0)) {
        hub__flush_seqs(h);
        hub__replay_prune(h);
    }
    if (timer_due(&h->head_timer, now, 0)) hub__audit_sign_head(h);
    if (timer_due(&h->place_timer, now, h->placement_dirty)) {
        h->placement_dirty = 0;
        hub__place_pass(h);
    }
}

/* Adds what a committed transaction did to the counts of committed work. */
static void count_committed(hub *h)
{
    h->counted.jobs_submitted += h->tx_counted.jobs_submitted;
    h->counted.results_applied += h->tx_counted.results_applied;
    h->counted.results_duplicate += h->tx_counted.results_duplicate;
    h->counted.results_stale += h->tx_counted.results_stale;
    memset(&h->tx_counted, 0, sizeof h->tx_counted);
    hub__audit_committed(h);
}

/*
 * A batch that could not be stored: nothing was promised yet, so it is
 * dropped whole (the audit log's tree, its head and the reservations with
 * it); operators answered in it are told, sites and senders retry. Logged
 * once when the store starts failing and then every 30 s, not per batch.
 */
static void roll_back(hub *h)
{
    hubdb_rollback(h->db);
    hub__audit_rollback(h);
    if (hub__reload_reservations(h) != OP_OK)
        log_error("hub", "cannot re-read the sites' reservations after a rollback");
    hub__probe_rollback(h);
    hub__runtimes_rollback(h);
    hub__fail_outgoing(h, "the hub could not store this request (is its disk full? see its "
                          "log); nothing of it was applied: retry later");
    memset(&h->tx_counted, 0, sizeof h->tx_counted);
    h->store_failed = 0;
    int64_t now = os_mono_ms();
    int report = fail_streak_fail(&h->store_streak, now, 30000);
    if (report == STREAK_STARTED)
        log_error("hub", "store transaction failed; batch rolled back (operators are told; "
                         "sites resend). Retrying every iteration; logged every 30 s from now");
    else if (report == STREAK_STILL)
        log_error("hub", "store still failing: %llu batches rolled back in %.0f s",
                  (unsigned long long)h->store_streak.count,
                  (double)(now - h->store_streak.since_ms) / 1000.0);
}

int hub__commit(hub *h)
{
    if (!hubdb_in_tx(h->db)) {
        count_committed(h);
        return OP_OK;
    }
    int64_t commit_start = os_mono_us();
    int rc = h->store_failed ? OP_ESTORE : hubdb_commit(h->db);
    h->commits++;
    h->commit_us += os_mono_us() - commit_start;
    if (rc != OP_OK) {
        roll_back(h);
        return rc;
    }
    uint64_t failed;
    double seconds;
    if (fail_streak_ok(&h->store_streak, os_mono_ms(), &failed, &seconds))
        log_info("hub", "store writable again after %llu failed commits in %.0f s",
                 (unsigned long long)failed, seconds);
    count_committed(h);
    return OP_OK;
}

/*
 * Ready for the service manager once the store is open (before the loop)
 * and both broker sessions are connected with every subscription granted:
 * from then on sites and operators are heard. A refused subscription (the
 * broker's ACL names another hub) keeps it not ready: it would hear
 * nobody. Said once; a later broker outage is the bus's log lines, not a
 * readiness change.
 */
static void notify_ready(hub *h)
{
    if (h->ready_notified) return;
    for (int i = 0; i < h->n_links; i++) {
        const hub_link *l = &h->links[i];
        if (!bus_subscribed(l->main) || !bus_subscribed(l->beats) ||
            bus_refused_subscriptions(l->main) || bus_refused_subscriptions(l->beats))
            return;
    }
    h->ready_notified = 1;
    log_info("hub", "ready: store open, %s connected, subscribed",
             h->n_links > 1 ? "every broker" : "broker");
    sdnotify_sendf("READY=1\nSTATUS=serving %zu sites through broker %s%s", h->n_sites,
                   bus_broker_name(h->bus), h->n_links > 1 ? " and others" : "");
}

void hub__run(hub *h)
{
    h->placement_dirty = 1;
    if (!h->workers) hub__workers_start(h, (int)h->beat_workers);
    while (!runctl_stopping()) {
        if (hub__failover_tick(h) != 0) break; /* the lease is gone: nothing more is done */
        if (links_loop(h, 20) != OP_OK) break;
        hub__finish_beats(h);
        hub__api_run(h);
        hub__predict_tick(h);
        notify_ready(h);
        sdnotify_watchdog_tick(os_mono_ms());
        run_due(h, os_mono_ms());
        int rc = hub__commit(h);
        hub__api_after_commit(h, rc == OP_OK);
        hub__api_tick(h, os_mono_ms());
        hub__api_run(h); /* the answers and events just queued go out now */
        if (rc != OP_OK) continue;
        hub__flush_outgoing(h);
    }
    hub__workers_stop(h);
}

/* The fuzzer's hub: one site "s1" (4 cores, 400 W) and operator "op-fuzz", in memory. */
static hub *fuzz_hub(void)
{
    log_set_level(LOG_LEVEL_ERROR + 1);
    hub *h = hub__new();
    if (!h || hubdb_open(":memory:", 0, &h->db) != OP_OK) abort();
    snprintf(h->identity.id, sizeof h->identity.id, "hub");
    crypto_sign_keypair(h->identity.pk, h->identity.sk);
    h->lease_ms = 1000;
    h->offline_lease_ms = 60000;
    h->fleet_index_from = 0; /* through the index, which small fleets would not take */
    h->site_lost_after_ms = 1000;
    h->max_queued_jobs = 1000;
    h->token_ttl_s = 60;
    hub_site *s = hub__add_site(h, "s1");
    if (!s) abort();
    s->class_bit = CLASS_DC;
    s->cores = 4;
    s->memory_mb = 4096;
    s->power_budget_watts = 400;
    s->watts_per_core = 40;
    s->alive = 1;
    s->last_heartbeat_mono = os_mono_ms();
    snprintf(h->operators[0].id, sizeof h->operators[0].id, "op-fuzz");
    h->n_operators = 1;
    return h;
}

/*
 * Fuzzing entry (fuzz/fuzz_hub.c): feeds one body, as if it came
 * authenticated from site "s1" or operator "op-fuzz", to the hub's handlers
 * and runs placement and the fleet checks, against an in-memory store. The
 * first byte picks the handler. Never used by the daemon.
 */
int hub__fuzz_one(const uint8_t *data, size_t len)
{
    static hub *h;
    static int calls;
    if (!h) h = fuzz_hub();
    if (len < 1) return 0;
    cJSON *body = cJSON_ParseWithLength((const char *)data + 1, len - 1);
    if (!body) return 0;
    hub_site *s = &h->sites[0];
    hubdb_begin(h->db);
    switch (data[0] % 5) {
    case 0:
        hub__handle_state(h, s, body);
        break;
    case 1:
        hub__handle_events(h, s, body);
        break;
    case 2:
        hub__handle_results(h, s, body);
        break;
    case 3:
        hub__update_capacity(h, s, body);
        break;
    default:
        cJSON_Delete(hub__op_dispatch(h, body, "op-fuzz"));
        break;
    }
    hub__place_pass(h);
    hub__check_fleet(h);
    hub__commit(h);
    hub__discard_outgoing(h);
    cJSON_Delete(body);
    if (++calls % 500 == 0) hubdb_clear_jobs(h->db); /* keep the in-memory store small */
    return 0;
}
