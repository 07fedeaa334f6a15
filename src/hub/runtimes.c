/*
 * runtimes: the hub's learned run times (core/runtime). Every job that
 * succeeds teaches the table how long its program ran, on the hub's clock,
 * on that site and its class, and how far its declared expected_s was from
 * that; every change is written to hub.db in the loop's transaction (and
 * forgotten with it). The placement pass asks it what to plan a job with
 * where the job declared no run time or a poor one, and the explanation
 * says so.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- the table and hub.db ---------- */

typedef struct load_ctx {
    runtime *rt;
    long refused;
} load_ctx;

static int load_row(void *ctx, const runtime_row *row)
{
    load_ctx *lc = ctx;
    if (runtime_load(lc->rt, row, NULL, NULL) != OP_OK) lc->refused++;
    return OP_OK;
}

/* A table read whole replaces the one in memory; on failure the old one stays. */
int hub__runtimes_load(hub *h)
{
    load_ctx lc = {runtime_new(HUB_RUNTIMES_CAPACITY), 0};
    if (!lc.rt) {
        log_warn("hub", "no memory for the learned run times: placement uses declared ones");
        return OP_OK;
    }
    int rc = hubdb_runtimes_each(h->db, load_row, &lc);
    if (rc != OP_OK) {
        runtime_free(lc.rt);
        return OP_ESTORE;
    }
    if (lc.refused) log_warn("hub", "learned run times: %ld malformed rows skipped", lc.refused);
    hub__runtimes_free(h);
    h->runtimes = lc.rt;
    return OP_OK;
}

void hub__runtimes_free(hub *h)
{
    runtime_free(h->runtimes);
    h->runtimes = NULL;
}

void hub__runtimes_rollback(hub *h)
{
    if (hub__runtimes_load(h) != OP_OK)
        log_error("hub", "cannot re-read the learned run times after a rollback");
}

/* The program as a key part: cut to what a key holds, the same for learning and placing. */
static void program_of(const char *program, char out[RUNTIME_LABEL_MAX])
{
    snprintf(out, RUNTIME_LABEL_MAX, "%s", program ? program : "");
}

/* Stores the rows an observation changed, forgets the ones it evicted. */
static int persist_changes(hub *h, const runtime_obs *o, const uint64_t *evicted, int n_evicted)
{
    for (int i = 0; i < n_evicted; i++)
        if (hub__check(h, hubdb_runtime_forget(h->db, evicted[i])) != OP_OK) return OP_ESTORE;
    uint64_t keys[RUNTIME_LEVELS];
    int n = 0;
    keys[n++] = runtime_key(RUNTIME_PROGRAM, o->kind, o->program, 0, NULL);
    if (o->class_bit)
        keys[n++] = runtime_key(RUNTIME_CLASS, o->kind, o->program, o->class_bit, NULL);
    if (o->site && o->site[0])
        keys[n++] = runtime_key(RUNTIME_SITE, o->kind, o->program, 0, o->site);
    if (o->declared_ms > 0) keys[n++] = runtime_key(RUNTIME_RATIO, o->kind, o->program, 0, NULL);
    for (int i = 0; i < n; i++) {
        runtime_row row;
        if (runtime_row_of(h->runtimes, keys[i], &row) &&
            hub__check(h, hubdb_runtime_put(h->db, &row)) != OP_OK)
            return OP_ESTORE;
    }
    return OP_OK;
}

int hub__runtimes_observe(hub *h, const runtime_obs *obs)
{
    if (!h->runtimes) return OP_OK;
    uint64_t evicted[RUNTIME_LEVELS];
    int n_evicted = 0;
    if (runtime_observe(h->runtimes, obs, evicted, &n_evicted) != OP_OK) {
        log_debug("hub", "run time of a %s job not learned: malformed",
                  obs->kind ? obs->kind : "?");
        return OP_OK;
    }
    return persist_changes(h, obs, evicted, n_evicted);
}

int hub__runtimes_learn(hub *h, int64_t job_id, int64_t attempt, const char *site_id)
{
    if (!h->runtimes || !site_id) return OP_OK;
    hubdb_run_facts f;
    int rc = hubdb_run_facts_get(h->db, job_id, attempt, &f);
    if (rc == OP_ENOTFOUND) return OP_OK;
    if (hub__check(h, rc) != OP_OK) return OP_ESTORE;
    /*
     * From the hub's own placement, not the site's "started": a site that
     * reports its start late cannot make a program look fast (and placement
     * asks how long a job holds a site from now). The site's word alone (a
     * local job) or part of a run (resumed) teaches nothing.
     */
    int64_t from = f.placed_ms;
    if (f.local || f.resumed || from <= 0) return OP_OK;
    const hub_site *s = hub__find_site(h, site_id);
    runtime_obs o = {.kind = f.kind,
                     .program = f.program,
                     .class_bit = s ? s->class_bit : 0,
                     .site = site_id,
                     .declared_ms = f.expected_ms > 0 ? f.expected_ms : 0,
                     .actual_ms = os_now_ms() - from};
    if (o.actual_ms < 1) o.actual_ms = 1;
    return hub__runtimes_observe(h, &o);
}

/* ---------- placement ---------- */

static int class_index(unsigned class_bit)
{
    return class_bit == CLASS_POD ? 0 : class_bit == CLASS_CAR ? 1 : 2;
}

/* The estimate on one site: its own runs when it has enough, else its class's. */
static void estimate_on(const hub__runtime_plan *p, unsigned class_bit, const char *site_id,
                        runtime_estimate *out)
{
    runtime_stats s;
    if (p->program_runs >= RUNTIME_MIN_RUNS && site_id &&
        runtime_lookup(p->rt, runtime_key(RUNTIME_SITE, p->kind, p->program, 0, site_id), &s) &&
        s.runs >= RUNTIME_MIN_RUNS) {
        runtime_decide(&s, RUNTIME_SITE, p->have_ratio ? &p->ratio : NULL, p->declared_ms, out);
        return;
    }
    *out = p->by_class[class_index(class_bit)];
}

/* sched_job.duration_on: the run time to plan with on this site. */
static int64_t plan_on_site(void *ctx, const sched_site *site)
{
    const hub__runtime_plan *p = ctx;
    runtime_estimate e;
    estimate_on(p, site->class_bit, site->id, &e);
    return runtime_source_learned(e.source) ? e.plan_ms : p->declared_ms;
}

void hub__runtimes_plan(hub *h, const hubdb_queued *q, sched_job *job, hub__runtime_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (!h->runtimes) return;
    plan->rt = h->runtimes;
    snprintf(plan->kind, sizeof plan->kind, "%s", q->kind ? q->kind : "");
    program_of(q->program, plan->program);
    plan->declared_ms = q->expected_ms > 0 ? q->expected_ms : 0;
    plan->class_mask = job->class_mask;
    runtime_stats s;
    if (runtime_lookup(h->runtimes,
                       runtime_key(RUNTIME_PROGRAM, plan->kind, plan->program, 0, NULL), &s))
        plan->program_runs = s.runs;
    plan->have_ratio =
        runtime_lookup(h->runtimes, runtime_key(RUNTIME_RATIO, plan->kind, plan->program, 0, NULL),
                       &plan->ratio) &&
        plan->ratio.runs >= RUNTIME_MIN_RUNS;
    runtime_predict(h->runtimes, plan->kind, plan->program, 0, NULL, plan->declared_ms,
                    &plan->overall);
    int64_t shortest = 0;
    for (int c = 0; c < 3; c++) {
        unsigned bit = 1u << c;
        runtime_estimate *e = &plan->by_class[class_index(bit)];
        runtime_predict(h->runtimes, plan->kind, plan->program, bit, NULL, plan->declared_ms, e);
        if (!(job->class_mask & bit) || !runtime_source_learned(e->source)) continue;
        plan->learned = 1;
        if (!shortest || e->typical_ms < shortest) shortest = e->typical_ms;
    }
    if (!plan->learned) return;
    job->duration_ms =
        plan->declared_ms > 0 && plan->declared_ms < shortest ? plan->declared_ms : shortest;
    job->duration_on = plan_on_site;
    job->duration_ctx = plan;
}

void hub__runtimes_explain(const hub__runtime_plan *plan, const sched_site *site,
                           char **explanation)
{
    if (!plan->rt || !*explanation) return;
    /* the winner's estimate; else the one class the job may use, or the program's anywhere */
    runtime_estimate e = plan->overall;
    unsigned one_class = plan->class_mask & CLASS_ALL;
    if (one_class & (one_class - 1)) one_class = 0;
    if (site)
        estimate_on(plan, site->class_bit, site->id, &e);
    else if (one_class)
        e = plan->by_class[class_index(one_class)];
    char text[RUNTIME_LABEL_MAX * 2 + 160];
    runtime_describe(&e, plan->kind, plan->program, site ? site->class_bit : one_class,
                     site ? site->id : NULL, text, sizeof text);
    if (!text[0]) return;
    size_t have = strlen(*explanation), add = strlen(text);
    char *grown = realloc(*explanation, have + add + 3);
    if (!grown) return;
    memcpy(grown + have, "; ", 2);
    memcpy(grown + have + 2, text, add + 1);
    *explanation = grown;
}
