/*
 * place: the placement pass. Up to HUB_PLACE_BATCH queued jobs, oldest
 * first, are decided against the fleet view (core/sched): placed (the row
 * placed, the site's reservation taken, an offer batched for after the
 * commit), failed when no site can ever run them (the reason from the
 * scheduler's reason code), or left queued with the latest explanation.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "hub/hub_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decision of the pass, applied once the queued jobs have all been read. */
typedef struct pending {
    int64_t id, attempt; /* attempt: the one this placement starts */
    int next_state;      /* what the state machine makes of the outcome */
    int site_index;
    int outcome;
    sched_why why;
    int cores;
    int64_t memory_mb;
    char *explanation;
    char *spec;
    int kind, deterministic, in_verification, site_private; /* what verification plans by */
} pending;

typedef struct pass {
    hub *h;
    sched_site *view;
    sched_fleet *index; /* large fleets: the index; small ones: the full scan */
    pending *todo;
    int n_todo;
    int64_t now_ms;
} pass;

int hub__policy_allows(void *ctx, const sched_site *site, char *why, size_t why_len)
{
    hub__policy_ctx *pc = ctx;
    /*
     * The hub's fleet views point each site's id at its hub_site's id: the
     * site itself without a search per candidate.
     */
    const hub_site *s = (const hub_site *)(const void *)(site->id - offsetof(hub_site, id));
    /* the policy file's rules first (their reasons are the operator's own words); a job's
     * draw on a site is its cores x the site's watts per core */
    int verdict =
        pc->h->policy
            ? policy_check_site(pc->h->policy, pc->spec, site->id, site->class_bit, pc->now_ms,
                                site->watts_per_core * pc->spec->cores, why, why_len)
            : POLICY_ALLOW;
    return verdict == POLICY_ALLOW ? hub__verify_allows(pc, s, why, why_len) : verdict;
}

static void split_excluded(char *text, const char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(text, " "); tok && n < max - 1; tok = strtok(NULL, " "))
        out[n++] = tok;
    out[n] = NULL;
}

/*
 * What the policy looks at, from the row's columns: re-parsing the spec here
 * would decode every queued job's inputs (up to 4 MiB each) on every pass.
 */
static void policy_view(const hubdb_queued *q, const sched_job *job, jobspec *spec,
                        char program[JOBSPEC_MAX_ARG_BYTES])
{
    memset(spec, 0, sizeof *spec);
    snprintf(program, JOBSPEC_MAX_ARG_BYTES, "%s", q->program);
    spec->kind = jobspec_kind_of(q->kind);
    spec->argv[0] = program[0] ? program : NULL;
    spec->argc = program[0] ? 1 : 0;
    spec->cores = job->cores;
    spec->memory_mb = job->memory_mb;
    spec->class_mask = job->class_mask;
    spec->data_class = q->data_class;
    snprintf(spec->origin, sizeof spec->origin, "%s", job->origin);
}

/* A placed job's reservation in the view; one iteration's offers to a site are bounded. */
static void reserve_in_view(pass *p, const sched_job *job, int site_index, size_t spec_bytes)
{
    if (p->index)
        sched_fleet_reserve(p->index, (size_t)site_index, job);
    else
        sched_reserve(&p->view[site_index], job);
    hub_site *target = &p->h->sites[site_index];
    target->offers_bytes += spec_bytes;
    hub__site_queued(p->h, target); /* the next flush resets the count, offer or not */
    if (target->offers_bytes >= HUB_OFFER_BATCH_BYTES) { /* the rest go next iteration */
        p->view[site_index].free_cores = 0;
        if (p->index) sched_fleet_update(p->index, (size_t)site_index);
        p->h->placement_dirty = 1;
    }
}

/* Keeps one decision for later; a wait with nothing new to say is not kept. */
static void keep_decision(pass *p, const hubdb_queued *q, const sched_job *job, int next_state,
                          sched_decision *d)
{
    if (d->outcome == SCHED_WAIT && strcmp(q->explanation, d->explanation) == 0) {
        sched_decision_clear(d);
        return;
    }
    pending *t = &p->todo[p->n_todo++];
    t->id = q->id;
    t->attempt = q->attempt + 1;
    t->next_state = next_state;
    t->outcome = d->outcome;
    t->why = d->why;
    t->site_index = d->site_index;
    t->cores = job->cores;
    t->memory_mb = job->memory_mb;
    t->explanation = d->explanation;
    t->kind = jobspec_kind_of(q->kind);
    t->deterministic = q->deterministic;
    t->in_verification = q->verify_owners[0] != '\0';
    t->site_private = q->site_private;
    if (d->outcome == SCHED_PLACED) {
        t->spec = strdup(q->spec_json);
        reserve_in_view(p, job, d->site_index, strlen(q->spec_json));
    }
}

/* hubdb_jobs_queued's callback: one queued job decided. Non-zero stops the pass. */
static int decide(void *ctx, const hubdb_queued *q)
{
    pass *p = ctx;
    hub *h = p->h;
    int next = JOB_QUEUED;
    if (jobstate_next(JOB_QUEUED, q->attempt, q->max_attempts, JOB_EV_PLACE, &next) != OP_OK)
        return 0; /* no attempt left to place: not the pass's to decide */
    char excluded_text[1024], owners_text[512];
    const char *excluded[64], *owners[32];
    snprintf(excluded_text, sizeof excluded_text, "%s", q->excluded);
    split_excluded(excluded_text, excluded, 64);
    snprintf(owners_text, sizeof owners_text, "%s", q->verify_owners);
    split_excluded(owners_text, owners, 32);
    sched_job job = {.cores = q->cores,
                     .memory_mb = q->memory_mb,
                     /* the replicas of a job in verification may be kept to some classes */
                     .class_mask = q->class_mask & (q->verify_class ? q->verify_class : CLASS_ALL),
                     .origin = q->origin,
                     .site_private = q->site_private,
                     .excluded = excluded,
                     .origin_index = -1,
                     .origin_region = -1,
                     .now_ms = p->now_ms,
                     .duration_ms = q->expected_ms,
                     .deadline_ms = q->deadline_at,
                     .deferrable = q->may_defer,
                     /* a site that holds the job's model scores more (models.c) */
                     .model = q->model[0] ? q->model : NULL,
                     .holds = q->model_sha[0] ? hub__site_holds : NULL,
                     .holds_ctx = (void *)q->model_sha};
    hub_site *from = job.origin[0] ? hub__find_site(h, job.origin) : NULL;
    if (from) {
        job.origin_region = from->region;
        job.origin_index = (int)(from - h->sites);
    }
    jobspec spec;
    char program[JOBSPEC_MAX_ARG_BYTES];
    policy_view(q, &job, &spec, program);
    /* site-private work stays at its origin: no replica can check it, none is asked */
    hub__policy_ctx pc = {
        h, &spec, p->now_ms,
        q->site_private ? 0 : hub__verify_unverifiable(h, spec.kind, q->deterministic),
        owners[0] ? owners : NULL};
    /* without a rule to apply the scheduler may take its faster paths */
    if (h->policy || pc.owners || (pc.unverifiable & job.class_mask)) {
        job.allowed = hub__policy_allows;
        job.allowed_ctx = &pc;
    }
    hub__runtime_plan run_time; /* a learned run time where the declared one is missing or poor */
    hub__runtimes_plan(h, q, &job, &run_time);
    sched_decision d;
    if ((p->index ? sched_fleet_place(p->index, &job, 1, &d)
                  : sched_place(p->view, h->n_sites, &job, &d)) != OP_OK)
        return 1;
    hub__runtimes_explain(&run_time, d.outcome == SCHED_PLACED ? &p->view[d.site_index] : NULL,
                          &d.explanation);
    if (d.outcome == SCHED_IMPOSSIBLE)
        jobstate_next(JOB_QUEUED, q->attempt, q->max_attempts, JOB_EV_IMPOSSIBLE, &next);
    else if (d.outcome == SCHED_WAIT)
        next = JOB_QUEUED;
    keep_decision(p, q, &job, next, &d);
    return 0;
}

/* The offer a site gets: job, attempt, offline lease, spec (with a kept checkpoint). */
static void queue_offer(hub *h, hub_site *s, const pending *t)
{
    cJSON *offer = cJSON_CreateObject();
    if (!offer) return;
    jsonx_add_int(offer, "job", t->id);
    jsonx_add_int(offer, "attempt", t->attempt);
    jsonx_add_int(offer, "lease_ms", h->offline_lease_ms);
    cJSON *spec = cJSON_Parse(t->spec);
    if (spec && t->attempt > 1) hub__attach_checkpoint(h, t->id, spec);
    if (spec) cJSON_AddItemToObject(offer, "spec", spec);
    hub__site_batch(h, s, &s->offers, offer);
}

static int record_placed(hub *h, const pending *t, int64_t now)
{
    hub_site *s = &h->sites[t->site_index];
    if (hub__check(h, hubdb_job_place(h->db, t->id, t->next_state, t->attempt, s->id, now,
                                      now + h->lease_ms, t->explanation)) != OP_OK)
        return OP_ESTORE;
    hub__job_event(h, t->id, t->attempt, s->id, "placed", t->explanation);
    if (hub__verify_placed(h, t->id, t->attempt, s, t->kind, t->deterministic, t->in_verification,
                           t->site_private) != OP_OK)
        return OP_ESTORE;
    s->reserved_cores += t->cores;
    s->reserved_memory_mb += t->memory_mb;
    s->reserved_jobs++;
    s->attempts_placed++;
    queue_offer(h, s, t);
    log_debug("hub", "job %lld -> %s: %s", (long long)t->id, s->id, t->explanation);
    return OP_OK;
}

/* No site can ever run it: failed, with the reason the scheduler's code gives. */
static int record_impossible(hub *h, const pending *t, int64_t now)
{
    const char *reason = t->why == SCHED_WHY_DEADLINE ? "its deadline can no longer be met"
                                                      : "no site in the fleet can run it";
    if (hub__check(h, hubdb_job_fail_unplaced(h->db, t->id, t->next_state, reason, t->explanation,
                                              now)) != OP_OK)
        return OP_ESTORE;
    hub__job_event(h, t->id, t->attempt - 1, NULL, "failed", t->explanation);
    hub__notify_terminal(h, t->id, t->next_state);
    return OP_OK;
}

static void apply_decisions(hub *h, pass *p)
{
    for (int i = 0; i < p->n_todo; i++) {
        const pending *t = &p->todo[i];
        int rc;
        if (t->outcome == SCHED_PLACED)
            rc = t->spec ? record_placed(h, t, p->now_ms) : OP_OK;
        else if (t->outcome == SCHED_IMPOSSIBLE)
            rc = record_impossible(h, t, p->now_ms);
        else
            rc = hub__check(h, hubdb_job_explain(h->db, t->id, t->explanation));
        if (rc != OP_OK) break;
    }
}

void hub__place_free(hub *h)
{
    sched_fleet_free(h->fleet);
    free(h->view);
    h->fleet = NULL;
    h->view = NULL;
    h->view_n = 0;
    h->view_base = NULL;
}

/*
 * The view the pass places on, kept between passes. It is built whole when
 * the fleet grew or its array moved (the entries point at the sites' ids);
 * otherwise each site's entry is filled afresh and compared with the kept
 * one, and only a changed site is re-filed in the index: a compare per site
 * instead of a new index per pass. The compare also undoes what the last
 * pass did to the view alone (a site's offers batch full). OP_ENOMEM.
 */
static int refresh_view(hub *h)
{
    int indexed = (int64_t)h->n_sites >= h->fleet_index_from;
    if (h->view_n != h->n_sites || h->view_base != h->sites || !h->fleet != !indexed) {
        hub__place_free(h);
        h->view = calloc(h->n_sites, sizeof *h->view);
        if (!h->view) return OP_ENOMEM;
        hub__fill_view(h, h->view, 0);
        h->fleet = indexed ? sched_fleet_new(h->view, h->n_sites) : NULL;
        if (indexed && !h->fleet) {
            hub__place_free(h);
            return OP_ENOMEM;
        }
        h->view_n = h->n_sites;
        h->view_base = h->sites;
        h->view_rebuilds++;
        return OP_OK;
    }
    for (size_t i = 0; i < h->n_sites; i++) {
        sched_site fresh;
        memset(&fresh, 0, sizeof fresh);
        hub__fill_site(h, i, &fresh, 0);
        if (memcmp(&fresh, &h->view[i], sizeof fresh) == 0) continue;
        h->view[i] = fresh;
        if (h->fleet) sched_fleet_update(h->fleet, i);
        h->view_refiled++;
    }
    return OP_OK;
}

static void place_pass(hub *h)
{
    pass p = {.h = h, .now_ms = os_now_ms()};
    p.todo = calloc(HUB_PLACE_BATCH, sizeof *p.todo);
    if (p.todo && hub__check(h, refresh_view(h)) == OP_OK) {
        /*
         * Large fleets: the index (a few exact checks per decision, a compact
         * explanation); small ones: the full scan, which names every site it filtered out.
         */
        p.view = h->view;
        p.index = h->fleet;
        /* Collect first: the updates must not run while the queued jobs are read. */
        if (hub__check(h, hubdb_jobs_queued(h->db, HUB_PLACE_BATCH, decide, &p)) == OP_OK)
            apply_decisions(h, &p);
    }
    for (int i = 0; p.todo && i < p.n_todo; i++) {
        free(p.todo[i].explanation);
        free(p.todo[i].spec);
    }
    free(p.todo);
}

/*
 * A placement pass, timed (hub__fleet_stats reports it). Nothing queued:
 * nothing to decide, and the view is not refreshed either (a compare per
 * site, the largest part of a pass in a big fleet; the next pass that has
 * jobs to place refreshes it whole, so nothing is decided on a stale view).
 */
void hub__place_pass(hub *h)
{
    if (h->n_sites == 0) return;
    int queued = 0;
    if (hub__check(h, hubdb_jobs_any(h->db, JOB_QUEUED, &queued)) != OP_OK) return;
    if (!queued) {
        h->place_skipped++;
        return;
    }
    int64_t started_us = os_mono_us();
    place_pass(h);
    int64_t took_us = os_mono_us() - started_us;
    h->place_passes++;
    h->place_us += took_us;
    h->place_last_us = took_us;
    if (took_us > h->place_max_us) h->place_max_us = took_us;
}
