/*
 * heartbeat: whether each site is there and what it can take. Heartbeats
 * (capacity, power forecast, departure, grid signal, signed audit head, the
 * jobs it runs, whose leases they renew), sites lost after a silence, sites
 * that said goodbye, expired leases, and the scheduler's view of the fleet
 * built from all of it.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <string.h>

/*
 * What a site says of its power besides its envelope: the forecast envelope
 * over each horizon, when it leaves (a parked car's stated departure), where
 * its grid signal sits in the last day (grid_rank) and its region. Bad
 * values are ignored field by field (the site keeps its last good ones).
 */
static void update_site_power(hub *h, hub_site *s, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "forecast_watts");
    int changed = 0;
    if (cJSON_IsArray(f) && cJSON_GetArraySize(f) == SCHED_HORIZONS) {
        float v[SCHED_HORIZONS] = {0};
        int k = 0, ok = 1;
        const cJSON *x;
        cJSON_ArrayForEach(x, f)
        {
            ok = ok && cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e9;
            if (ok) v[k++] = (float)x->valuedouble;
        }
        if (ok) {
            changed = !s->has_forecast || memcmp(v, s->forecast_watts, sizeof v) != 0;
            memcpy(s->forecast_watts, v, sizeof v);
            s->has_forecast = 1;
        }
    }
    int64_t stay = 0, region = s->region;
    double rank = s->grid_rank;
    if (jsonx_int(o, "stay_until_ms", 0, INT64_MAX / 2, &stay) != OP_OK) stay = 0;
    if (jsonx_num(o, "grid_rank", &rank) != OP_OK || !(rank >= 0 && rank <= 1)) rank = s->grid_rank;
    jsonx_int(o, "region", 0, SCHED_MAX_REGIONS - 1, &region);
    changed = changed || stay != s->stay_until_ms || rank != s->grid_rank || region != s->region;
    s->stay_until_ms = stay;
    s->grid_rank = rank;
    s->region = (int)region;
    if (changed) h->placement_dirty = 1;
}

/*
 * Each log witnesses the other: a site's signed head, verified with its key,
 * is written into the hub's log when it grew. A head that shrank means the
 * site's log lost history: logged as a conflict.
 */
static void witness_site_head(hub *h, hub_site *s, const cJSON *o)
{
    audit_sth head;
    if (!o || auditlog_head_from_json(o, &head) != OP_OK) return;
    if (head.size == s->witnessed_size) return;
    if (audit_sth_verify(s->pk, &head) != OP_OK) {
        h->msg.forged++;
        log_warn("hub", "site %s sent an audit head with a bad signature", s->id);
        return;
    }
    char subject[80];
    snprintf(subject, sizeof subject, "site:%s", s->id);
    const char *kind = head.size > s->witnessed_size ? "witness" : "witness-conflict";
    if (head.size < s->witnessed_size)
        log_warn("hub", "site %s's audit log went back from %llu to %llu entries", s->id,
                 (unsigned long long)s->witnessed_size, (unsigned long long)head.size);
    hub__audit_record(h, kind, subject, auditlog_head_to_json(&head));
    s->witnessed_size = head.size;
}

/*
 * The jobs the site says it runs: each current attempt's lease runs on; an
 * attempt the hub no longer counts on is cancelled there.
 */
static void renew_leases(hub *h, hub_site *s, const cJSON *running)
{
    const cJSON *item;
    int64_t lease_until = os_now_ms() + h->lease_ms;
    cJSON_ArrayForEach(item, running)
    {
        int64_t job_id, attempt;
        int changed;
        if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
            continue;
        if (hub__check(h, hubdb_job_renew_lease(h->db, job_id, attempt, s->id, lease_until,
                                                &changed)) != OP_OK)
            return;
        if (!changed)
            hub__send_cancel(h, s, job_id, attempt, "this attempt is no longer current on the hub");
    }
}

/*
 * The broker the site says it is on ("host:port" of its list), for the
 * operator's view; it comes when it changed and in full heartbeats. Kept
 * only when it looks like one: printable, no spaces, within the bound.
 */
static void update_site_broker(hub_site *s, const cJSON *body)
{
    const char *said = jsonx_str(body, "broker");
    size_t len = said ? strlen(said) : 0;
    if (len == 0 || len >= sizeof s->broker) return;
    for (size_t i = 0; i < len; i++)
        if (said[i] <= ' ' || said[i] > '~') return;
    memcpy(s->broker, said, len + 1);
}

/* The link a site was heard on (the first when the index is out of range). */
static hub_link *link_of(hub *h, int link)
{
    return &h->links[link >= 0 && link < BUS_MAX_BROKERS ? link : 0];
}

void hub__site_heard(hub *h, hub_site *s)
{
    int64_t now = os_mono_ms();
    hub_link *l = link_of(h, s->link);
    /* a site heard before its link returned, and not since: the reconnect storm goes on
     * (a site just enrolled, never heard before, is not returning) */
    if (l->heard_again_mono && s->last_heartbeat_mono &&
        s->last_heartbeat_mono < l->heard_again_mono)
        l->returning_mono = now;
    s->last_heartbeat_mono = now;
}

void hub__handle_state(hub *h, hub_site *s, const cJSON *body)
{
    hub__site_heard(h, s);
    s->last_heartbeat_wall = os_now_ms();
    s->heard = 1;
    if (!s->alive) {
        log_info("hub", "site %s is back", s->id);
        s->alive = 1;
        h->placement_dirty = 1;
    }
    if (s->departed) hub__set_departed(h, s, 0);
    hub__update_capacity(h, s, body);
    update_site_power(h, s, cJSON_GetObjectItemCaseSensitive(body, "power"));
    update_site_broker(s, body);
    witness_site_head(h, s, cJSON_GetObjectItemCaseSensitive(body, "audit_head"));
    const cJSON *running = cJSON_GetObjectItemCaseSensitive(body, "running");
    /* Word from the hub for a site with work: its offline leases run from here. */
    if (cJSON_GetArraySize(running) > 0) {
        cJSON *alive = cJSON_CreateObject();
        if (alive) {
            jsonx_add_int(alive, "alive", os_now_ms());
            hub__site_batch(h, s, &s->acks, alive);
        }
    }
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (cJSON_IsObject(messages)) {
        cJSON_Delete(s->messages);
        s->messages = cJSON_Duplicate(messages, 1);
    }
    hub__models_heartbeat(h, s, body);
    s->reported_running = cJSON_GetArraySize(running);
    s->store_failing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "store_failing"));
    renew_leases(h, s, running);
}

/*
 * A site that stops cleanly says so: it is not lost (no attempt counts
 * against it, no "lost" on the log) and takes no new work until heard
 * again. Its jobs stay placed under their leases: it resumes them when it
 * comes back in time, else they expire and are placed elsewhere.
 */
void hub__site_left(hub *h, hub_site *s, const char *reason)
{
    char why[160];
    snprintf(why, sizeof why, "site %s left (said goodbye%s%.60s)", s->id, reason ? ": " : "",
             reason ? reason : "");
    log_info("hub", "site %s left (said goodbye)", s->id);
    if (s->alive) h->placement_dirty = 1;
    s->alive = 0;
    hub__set_departed(h, s, 1);
    hub__audit_detail(h, "site-left", "site", s->id, why);
}

void hub__set_departed(hub *h, hub_site *s, int departed)
{
    s->departed = departed;
    hub__check(h, hubdb_site_set_departed(h->db, s->id, departed));
}

const char *hub__site_status(const hub_site *s)
{
    if (s->alive) return s->heard ? "alive" : "presumed";
    return s->departed ? "left" : "lost";
}

void hub__fleet_stats(const hub *h, cJSON *stats)
{
    cJSON *f = cJSON_AddObjectToObject(stats, "fleet");
    if (!f) return;
    int64_t alive = 0, presumed = 0, lost = 0, left = 0;
    for (size_t i = 0; i < h->n_sites; i++) {
        const hub_site *s = &h->sites[i];
        alive += s->alive && s->heard;
        presumed += s->alive && !s->heard;
        lost += !s->alive && !s->departed;
        left += !s->alive && s->departed;
    }
    jsonx_add_int(f, "sites", (int64_t)h->n_sites);
    jsonx_add_int(f, "alive", alive);
    jsonx_add_int(f, "presumed", presumed);
    jsonx_add_int(f, "lost", lost);
    jsonx_add_int(f, "left", left);
    jsonx_add_int(f, "beat_lag_ms", hub__beat_lag_ms(h));
    jsonx_add_int(f, "losses_deferred", (int64_t)h->losses_deferred);
    jsonx_add_int(f, "beats_offloaded", (int64_t)h->beats_offloaded);
    jsonx_add_int(f, "beats_inline", (int64_t)h->beats_inline);
    jsonx_add_int(f, "beats_mac", (int64_t)h->beats_mac);
    jsonx_add_int(f, "rekeys", (int64_t)h->rekeys);
    jsonx_add_int(f, "hellos_offloaded", (int64_t)h->hellos_offloaded);
    jsonx_add_int(f, "hellos_repeated", (int64_t)h->hellos_repeated);
    jsonx_add_int(f, "view_rebuilds", (int64_t)h->view_rebuilds);
    jsonx_add_int(f, "view_refiled", (int64_t)h->view_refiled);
    jsonx_add_int(f, "place_passes", (int64_t)h->place_passes);
    jsonx_add_int(f, "place_skipped", (int64_t)h->place_skipped);
    cJSON_AddNumberToObject(f, "place_ms_avg",
                            h->place_passes ? (double)h->place_us / 1000.0 / (double)h->place_passes
                                            : 0.0);
    cJSON_AddNumberToObject(f, "place_ms_max", (double)h->place_max_us / 1000.0);
    cJSON_AddNumberToObject(f, "place_ms_last", (double)h->place_last_us / 1000.0);
}

void hub__take_back(hub *h, const char *site_id, const char *why, int exclude)
{
    int64_t ids[HUB_PLACE_BATCH];
    int n = 0;
    if (hub__check(h, hubdb_jobs_on_site(h->db, site_id, ids, HUB_PLACE_BATCH, &n)) != OP_OK)
        return;
    for (int i = 0; i < n; i++)
        hub__requeue(h, ids[i], why, exclude, 1);
}

/*
 * A site silent for longer than the loss timeout: lost, on the audit log, its
 * jobs taken back at once. Only a site the hub counts jobs on is asked for
 * them: a broker or network outage loses thousands of idle sites at once, and
 * a query each would hold the loop for seconds. Logged when logged is set
 * (the first HUB_LOSSES_LOGGED of one check; the rest in one line).
 */
static void site_lost(hub *h, hub_site *s, int64_t silent_ms, int logged)
{
    s->alive = 0;
    char why[128];
    snprintf(why, sizeof why, "site %s lost (silent for %lld ms)", s->id, (long long)silent_ms);
    if (logged) log_warn("hub", "%s", why);
    hub__audit_detail(h, "site-lost", "site", s->id, why);
    if (s->reserved_jobs > 0) hub__take_back(h, s->id, why, 0);
}

void hub__note_beat_age(hub *h, int64_t ts_ms)
{
    hub_link *l = link_of(h, h->msg_link);
    int64_t now = os_now_ms(), age = now > ts_ms ? now - ts_ms : 0;
    if (now - l->lag_window_start_ms >= 1000) {
        l->beat_lag_ms = l->lag_window_start_ms ? l->lag_window_min_ms : 0;
        l->lag_window_start_ms = now;
        l->lag_window_min_ms = age;
    } else if (age < l->lag_window_min_ms) {
        l->lag_window_min_ms = age;
    }
}

/*
 * Silence is measured on the hub's clock when a heartbeat is finished, so a
 * hub that runs behind (an enrollment storm, a backlog after a restart) would
 * take its own lateness for the sites' silence and lose them all at once.
 * The lag (hub__note_beat_age) is added to the loss timeout: a site is lost
 * when it is silent longer than the hub is late. Without heartbeats for two
 * seconds the lag is taken as none. Capped at the timeout itself: a hub
 * further behind than that still loses sites, rather than never. Per link:
 * with several brokers one may be minutes behind while another is not.
 */
static int64_t loss_timeout(hub *h, hub_link *l)
{
    if (os_now_ms() - l->lag_window_start_ms > 2000) l->beat_lag_ms = 0;
    int64_t lag = l->beat_lag_ms < h->site_lost_after_ms ? l->beat_lag_ms : h->site_lost_after_ms;
    return h->site_lost_after_ms + lag;
}

int64_t hub__beat_lag_ms(const hub *h)
{
    int64_t most = 0;
    for (int i = 0; i < (h->n_links > 0 ? h->n_links : 1); i++)
        if (h->links[i].beat_lag_ms > most) most = h->links[i].beat_lag_ms;
    return most;
}

/*
 * The hub hears its sites only through its brokers: while a link's beats
 * session is down (the broker restarting, the hub's network gone) every
 * site heard last on it is silent through no fault of its own. None of them
 * is lost then, and once the link is back silence counts from the moment
 * every site has had its turn to reconnect (the sites' links were down too,
 * and each waits up to BUS_BACKOFF_MAX_MS, jittered, before trying again).
 * 1 when the link hears sites now; l->heard_again_mono is when it last
 * started to.
 *
 * A broker that restarts takes its whole fleet's reconnects at once, and
 * they come back at the rate the broker accepts them (10,000 sites on one
 * mosquitto took 37 s here): while sites silent since the outage are still
 * being heard again, the storm is on and no site is lost; silence counts
 * from the last such return, for at most HUB_STORM_MAX_MS after the link
 * returned (a fleet that trickles back for longer than that loses sites).
 */
static int hearing(hub_link *l, int64_t now_mono)
{
    if (!l->beats) return 1; /* tests and fuzzing: no broker */
    if (!bus_subscribed(l->beats)) {
        if (!l->deaf_since_mono) l->deaf_since_mono = now_mono;
        l->outage_mono = l->deaf_since_mono;
        return 0;
    }
    if (!l->deaf_since_mono) {
        l->heard_once = 1;
        return 1;
    }
    /* the first connection at start (the first checks may run before it) is no outage */
    if (l->heard_once)
        log_info("hub",
                 "hearing sites again on %s after %lld ms without it: their silence counts "
                 "from when each has had its turn to reconnect",
                 bus_broker_name(l->beats), (long long)(now_mono - l->deaf_since_mono));
    l->heard_again_mono = now_mono;
    l->after_outage = l->heard_once;
    l->heard_once = 1;
    l->deaf_since_mono = 0;
    return 1;
}

/* When silence starts to count again after a link returned: see hearing(). */
static int64_t storm_end(const hub_link *l)
{
    if (!l->heard_again_mono) return 0;
    /* at start no site's link was down: nothing to wait for but the first connection */
    int64_t back = l->heard_again_mono + (l->after_outage ? BUS_BACKOFF_MAX_MS : 0);
    if (l->returning_mono > back && l->returning_mono - l->heard_again_mono < HUB_STORM_MAX_MS)
        back = l->returning_mono;
    return back;
}

/*
 * Per link: whether the sites heard last on it are spared (it is down), and
 * from when their silence counts. A link down while another hears (broker_mode
 * all: its sites can move to another broker of their lists) spares its sites
 * for HUB_STORM_MAX_MS at most; the one link of broker_mode failover spares
 * them as long as it is down (the hub hears nobody at all).
 */
static void links_state(hub *h, int64_t now_mono, int spared[], int64_t back[])
{
    int links = h->n_links > 0 ? h->n_links : 1, any = 0;
    for (int i = 0; i < links; i++) {
        spared[i] = !hearing(&h->links[i], now_mono);
        back[i] = storm_end(&h->links[i]);
        any |= !spared[i];
    }
    for (int i = 0; i < links && any; i++)
        if (spared[i] && now_mono - h->links[i].deaf_since_mono > HUB_STORM_MAX_MS) spared[i] = 0;
}

/*
 * A site heard last on one link may since have gone back to a broker whose
 * link went down before it fell silent (its first broker returning: the site
 * may be there before the hub's own link is): spared while that link is
 * down, and its silence counts from that link's storm end once it is back.
 * 1 to spare it now; else *back is the latest such storm end.
 */
static int moving(const hub *h, const hub_site *s, int link, const int spared[],
                  const int64_t backs[], int64_t *back)
{
    for (int m = 0; m < h->n_links && m < BUS_MAX_BROKERS; m++) {
        const hub_link *l = &h->links[m];
        if (m == link || !l->outage_mono || l->outage_mono > s->last_heartbeat_mono) continue;
        if (spared[m]) return 1;
        if (backs[m] > *back) *back = backs[m];
    }
    return 0;
}

void hub__check_fleet(hub *h)
{
    int64_t now_mono = os_mono_ms(), timeouts[BUS_MAX_BROKERS], timeout = 0;
    int spared[BUS_MAX_BROKERS];
    int64_t backs[BUS_MAX_BROKERS];
    links_state(h, now_mono, spared, backs);
    for (int i = 0; i < BUS_MAX_BROKERS; i++) {
        timeouts[i] = loss_timeout(h, &h->links[i]);
        if (i == 0 || timeouts[i] < timeout) timeout = timeouts[i]; /* the least, for the log */
    }
    size_t lost = 0;
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        int link = (int)(link_of(h, s->link) - h->links);
        int64_t back = backs[link];
        if (spared[link] || (h->n_links > 1 && moving(h, s, link, spared, backs, &back))) continue;
        int64_t heard = s->last_heartbeat_mono > back ? s->last_heartbeat_mono : back;
        int64_t silent = now_mono - heard;
        if (!s->alive || silent <= h->site_lost_after_ms) continue;
        if (silent > timeouts[link])
            site_lost(h, s, silent, lost++ < HUB_LOSSES_LOGGED);
        else
            h->losses_deferred++;
    }
    if (lost > HUB_LOSSES_LOGGED)
        log_warn("hub",
                 "%zu more sites lost, each silent for over %lld ms (%zu in this check; "
                 "every one on the audit log as site-lost)",
                 lost - HUB_LOSSES_LOGGED, (long long)timeout, lost);
    int64_t ids[HUB_PLACE_BATCH];
    int n = 0;
    if (hub__check(h, hubdb_jobs_lease_expired(h->db, os_now_ms(), ids, HUB_PLACE_BATCH, &n)) !=
        OP_OK)
        return;
    for (int i = 0; i < n; i++)
        hub__requeue(h, ids[i], "lease expired (site did not confirm it)", 0, 1);
    hub__probe_fleet(h);
}

void hub__flush_seqs(hub *h)
{
    if (h->bus && hubdb_own_seq_set(h->db, bus_seq(h->bus)) != OP_OK) return;
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        uint64_t top = s->window.top > s->beat_window.top ? s->window.top : s->beat_window.top;
        if (top == s->persisted_seq) continue;
        if (hubdb_site_set_seq(h->db, s->id, top) == OP_OK) s->persisted_seq = top;
    }
}

void hub__fill_site(hub *h, size_t i, sched_site *v, int optimistic)
{
    hub_site *s = &h->sites[i];
    v->id = s->id;
    v->class_bit = s->class_bit;
    v->alive = optimistic ? 1 : s->alive;
    /* an over-claiming site counts as many cores as it showed; a held one takes no work
     * now, though it may later (quarantine is cleared, a probe ends) */
    int cores = hub__site_cores(s);
    v->held = optimistic ? NULL : hub__site_held(h, s);
    v->cores = cores;
    v->memory_mb = s->memory_mb;
    v->watts_per_core = s->watts_per_core;
    v->free_cores = optimistic ? cores : cores - s->reserved_cores;
    v->free_memory_mb = optimistic ? s->memory_mb : s->memory_mb - s->reserved_memory_mb;
    /* a job's draw comes on top of the site's idle draw */
    v->headroom_watts = s->power_budget_watts - s->idle_watts -
                        (optimistic ? 0 : s->reserved_cores * s->watts_per_core);
    v->running_jobs = optimistic ? 0 : s->reserved_jobs;
    v->region = s->region;
    v->grid_rank = optimistic ? 0 : s->grid_rank;
    v->stay_until_ms = optimistic ? 0 : s->stay_until_ms;
    v->failure_rate =
        s->attempts_placed ? (double)s->attempts_lost / (double)s->attempts_placed : 0;
    v->has_forecast = !optimistic && s->has_forecast;
    /* like headroom_watts: the envelope less what is placed or running here */
    double committed = s->idle_watts + s->reserved_cores * s->watts_per_core;
    for (int k = 0; k < SCHED_HORIZONS; k++)
        v->horizon_watts[k] = (float)(s->forecast_watts[k] - committed);
}

void hub__fill_view(hub *h, sched_site *view, int optimistic)
{
    for (size_t i = 0; i < h->n_sites; i++)
        hub__fill_site(h, i, &view[i], optimistic);
}
