/*
 * jobs: the job state changes several concerns share, each decided by the
 * state machine (core/jobstate) and stored by the data layer: a job taken
 * back from its site (lost, lease expired, refused, handed back), started,
 * and the bookkeeping around them (reservations given back, the operator
 * told of a final state).
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/jobstate.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUB_REOFFER_MAX 256 /* placed attempts looked at per hello */

void hub__release(hub *h, const char *site_id, int cores, int64_t memory_mb)
{
    hub_site *s = hub__find_site(h, site_id);
    if (!s) return;
    s->reserved_cores -= cores;
    s->reserved_memory_mb -= memory_mb;
    s->reserved_jobs--;
    if (s->reserved_cores < 0) s->reserved_cores = 0;
    if (s->reserved_memory_mb < 0) s->reserved_memory_mb = 0;
    if (s->reserved_jobs < 0) s->reserved_jobs = 0;
    h->placement_dirty = 1;
}

void hub__notify_terminal(hub *h, int64_t job_id, int state)
{
    char op_id[64];
    hub__pool_job_ended(h, job_id, state); /* a pooling round's job moves its round on */
    if (hubdb_job_notify_target(h->db, job_id, op_id) != OP_OK || !op_id[0]) return;
    hub_operator *op = hub__find_operator(h, op_id);
    if (!op) return;
    cJSON *d = cJSON_CreateObject();
    if (!d) return;
    jsonx_add_int(d, "job", job_id);
    cJSON_AddStringToObject(d, "state", jobstate_name(state));
    hub__add_to_batch(&op->done, d); /* one signed message per operator per batch */
}

/* Adds site to a space-separated excluded list when it fits. */
static void exclude_site(char *excluded, size_t size, const char *site)
{
    size_t used = strlen(excluded);
    if (used + strlen(site) + 2 < size)
        snprintf(excluded + used, size - used, "%s%s", used ? " " : "", site);
}

void hub__requeue(hub *h, int64_t job_id, const char *why, int exclude, int lost)
{
    hubdb_job job;
    int rc = hubdb_job_get(h->db, job_id, &job), next;
    if (rc != OP_OK) {
        if (rc != OP_ENOTFOUND) h->store_failed = 1;
        return;
    }
    if (jobstate_next(job.state, job.attempt, job.max_attempts, JOB_EV_TAKEN_BACK, &next) != OP_OK)
        return;
    if (exclude) exclude_site(job.excluded, sizeof job.excluded, job.site);
    int give_up = next == JOB_FAILED;
    char reason[420];
    snprintf(reason, sizeof reason, "%s%s", why,
             give_up ? "; no attempts left" : "; queued for another attempt");
    hub__check(
        h, hubdb_job_requeue(h->db, job_id, next, reason, job.excluded, give_up ? os_now_ms() : 0));
    hub__job_event(h, job_id, job.attempt, job.site, give_up ? "failed" : "requeued", reason);
    hub__release(h, job.site, job.cores, job.memory_mb);
    hub_site *where = lost ? hub__find_site(h, job.site) : NULL;
    if (where) where->attempts_lost++;
    if (give_up) hub__notify_terminal(h, job_id, next);
    log_info("hub", "job %lld attempt %lld taken back from %s: %s", (long long)job_id,
             (long long)job.attempt, job.site, reason);
}

/* The site started the attempt: placed -> running, when that attempt is still placed there. */
static void job_started(hub *h, hub_site *s, int64_t job_id, int64_t attempt)
{
    int next, changed;
    if (jobstate_next(JOB_PLACED, attempt, attempt, JOB_EV_START, &next) != OP_OK) return;
    if (hub__check(h, hubdb_job_start(h->db, job_id, attempt, s->id, JOB_PLACED, next, os_now_ms(),
                                      &changed)) == OP_OK &&
        changed)
        hub__job_event(h, job_id, attempt, s->id, "started", NULL);
}

/*
 * The site would not run the attempt. A refusal keeps the job away from
 * that site. "Busy" means the hub's view of the site's capacity was behind
 * (e.g. an attempt it cancelled is still stopping there): the job is not
 * kept away, the attempt is given back (the job did nothing wrong), and the
 * site is offered nothing for HUB_BUSY_HOLD_MS, so that it is not asked again
 * at once: three offers within 50 ms used to fail a job that way.
 */
static void job_refused(hub *h, hub_site *s, int64_t job_id, int64_t attempt, int busy,
                        const char *why)
{
    int current;
    if (hub__check(h, hubdb_job_is_current(h->db, job_id, attempt, s->id, &current)) != OP_OK ||
        !current)
        return;
    char reason[360];
    snprintf(reason, sizeof reason, "refused by %s: %.200s%s", s->id, why ? why : "?",
             busy ? " (busy: the attempt is not counted)" : "");
    if (busy) {
        if (hub__check(h, hubdb_job_more_attempts(h->db, job_id, 1)) != OP_OK) return;
        s->busy_until_mono = os_mono_ms() + HUB_BUSY_HOLD_MS;
        h->placement_dirty = 1;
    }
    hub__requeue(h, job_id, reason, !busy, 0);
}

void hub__handle_events(hub *h, hub_site *s, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "events"))
    {
        int64_t job_id, attempt;
        const char *ev = jsonx_str(item, "event");
        if (!ev || jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK) {
            h->msg.malformed++;
            continue;
        }
        if (strcmp(ev, "started") == 0)
            job_started(h, s, job_id, attempt);
        else if (strcmp(ev, "refused") == 0 || strcmp(ev, "busy") == 0)
            job_refused(h, s, job_id, attempt, strcmp(ev, "busy") == 0, jsonx_str(item, "reason"));
        else if (strcmp(ev, "fetching") == 0)
            hub__models_job_fetching(h, s, job_id, attempt, jsonx_str(item, "reason"));
        if (h->store_failed) return;
    }
}

/*
 * A known site says hello after every (re)connect: a restart, or a move to
 * another broker whose old session may have swallowed offers sent while it
 * moved. Its placed attempts (offered, not started) are offered again, up to
 * one batch; a site takes a copy of an offer it holds as a redelivery
 * (sitedb_job_known), so no attempt runs twice. What does not fit waits for
 * its lease to expire, as before.
 */
void hub__reoffer_placed(hub *h, hub_site *s)
{
    int64_t ids[HUB_REOFFER_MAX];
    int n = 0, resent = 0;
    if (hubdb_jobs_on_site(h->db, s->id, ids, HUB_REOFFER_MAX, &n) != OP_OK) return;
    for (int i = 0; i < n && s->offers_bytes < HUB_OFFER_BATCH_BYTES; i++) {
        hubdb_job job;
        char kind[16];
        char *text = NULL;
        if (hubdb_job_get(h->db, ids[i], &job) != OP_OK || job.state != JOB_PLACED ||
            strcmp(job.site, s->id) != 0 || hubdb_job_spec(h->db, ids[i], kind, &text) != OP_OK)
            continue;
        cJSON *offer = cJSON_CreateObject(), *spec = cJSON_Parse(text);
        if (offer && spec) {
            jsonx_add_int(offer, "job", ids[i]);
            jsonx_add_int(offer, "attempt", job.attempt);
            jsonx_add_int(offer, "lease_ms", h->offline_lease_ms);
            if (job.attempt > 1) hub__attach_checkpoint(h, ids[i], spec);
            cJSON_AddItemToObject(offer, "spec", spec);
            hub__site_batch(h, s, &s->offers, offer);
            s->offers_bytes += strlen(text);
            resent++;
        } else {
            cJSON_Delete(offer);
            cJSON_Delete(spec);
        }
        free(text);
    }
    if (resent)
        log_info("hub", "site %s said hello: %d placed job(s) offered again", s->id, resent);
}
