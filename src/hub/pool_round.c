/*
 * pool_round: pooling rounds the hub drives (`outpost model pool NAME
 * --owner OWNER`). A round is training that visits the owner's sites in
 * turn: for each pass, a learn job in mode "visit" at each site, one after
 * another (each continues the version the previous one registered, so the
 * next is submitted only when the previous has ended), then a learn job in
 * mode "offer" at every site, which adopts the pooled model as its own only
 * where it beats it on its held-out rows. The round's first visit starts a
 * fresh model: the replay found a shared model continued forever diverges
 * (docs/learning.md). Rounds and their jobs are rows of hub.db, so a round
 * survives a restart of the hub; every step is an audit entry on
 * model:NAME (pool-start, pool-step, pool-done) and `outpost model show`
 * shows the newest rounds. The jobs are ordinary deferrable learn jobs
 * submitted on the operator's behalf: policy, placement and spare power
 * apply to them as to any other.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/artifact.h"
#include "core/jobstate.h"
#include "hub/hub_db.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX_SITES 64  /* sites one round visits */
#define POOL_MAX_PASSES 10 /* visits of each site in one round */

/* An audit entry on model:NAME (body taken). */
static void pool_audit(hub *h, const hubdb_pool_round *r, const char *kind, cJSON *body)
{
    char subject[80];
    snprintf(subject, sizeof subject, "model:%s", r->name);
    if (body) jsonx_add_int(body, "round", r->id);
    hub__audit_record(h, kind, subject, body);
}

/* The learn job of a round's step at site: a visit of the pool, or an offer of it. */
static cJSON *step_spec(const hubdb_pool_round *r, const char *site, const char *mode,
                        int64_t deadline_s)
{
    cJSON *spec = cJSON_CreateObject(), *res, *learn;
    char model[128], name[64];
    snprintf(model, sizeof model, "%s%s", r->own, site);
    snprintf(name, sizeof name, "pool %.32s r%lld %.5s", r->name, (long long)r->id, mode);
    if (!spec) return NULL;
    cJSON_AddStringToObject(spec, "kind", "learn");
    cJSON_AddStringToObject(spec, "name", name);
    cJSON_AddStringToObject(spec, "model", strcmp(mode, "visit") ? model : r->name);
    cJSON_AddStringToObject(spec, "data_class", "site-private");
    cJSON_AddStringToObject(spec, "origin", site);
    jsonx_add_int(spec, "deadline_s", deadline_s);
    cJSON_AddBoolToObject(spec, "deferrable", 1);
    jsonx_add_int(spec, "expected_s", 30);
    jsonx_add_int(spec, "max_attempts", 1);
    if ((res = cJSON_AddObjectToObject(spec, "resources"))) {
        jsonx_add_int(res, "cores", 1);
        jsonx_add_int(res, "memory_mb", 512);
        jsonx_add_int(res, "wall_s", 600);
    }
    if ((learn = cJSON_AddObjectToObject(spec, "learn"))) {
        cJSON_AddStringToObject(learn, "mode", mode);
        if (!strcmp(mode, "visit")) jsonx_add_int(learn, "rounds", r->rounds);
        /* the round's first visit starts afresh; later ones continue what the last made */
        if (strcmp(mode, "visit") || r->versions > 0)
            cJSON_AddStringToObject(learn, "from", r->name);
    }
    return spec;
}

/* A step that did not happen or came to nothing, with why: recorded and audited. */
static void step_note(hub *h, const hubdb_pool_round *r, int64_t job_id, const char *site,
                      const char *mode, const char *outcome, const char *detail, int64_t version)
{
    if (job_id) hub__check(h, hubdb_pool_job_set(h->db, job_id, outcome, detail, version));
    cJSON *a = cJSON_CreateObject();
    if (a) {
        if (job_id) jsonx_add_int(a, "job", job_id);
        cJSON_AddStringToObject(a, "site", site);
        cJSON_AddStringToObject(a, "mode", mode);
        cJSON_AddStringToObject(a, "outcome", outcome);
        cJSON_AddStringToObject(a, "detail", detail);
        if (version) jsonx_add_int(a, "version", version);
    }
    pool_audit(h, r, "pool-step", a);
    log_info("hub", "pooling %s round %lld: %s at %s: %s: %s", r->name, (long long)r->id, mode,
             site, outcome, detail);
}

/*
 * Submits the round's step at site. OP_OK when a job was queued, 1 when it
 * was not (the reason audited as a skipped step), OP_ESTORE.
 */
static int submit_step(hub *h, const hubdb_pool_round *r, const char *site, const char *mode)
{
    char err[400] = "";
    int64_t job_id = 0, left_s = (r->deadline_at_ms - os_now_ms()) / 1000;
    int rc = OP_EINVAL;
    if (left_s < 1) {
        snprintf(err, sizeof err, "the round's deadline has passed");
    } else {
        cJSON *spec = step_spec(r, site, mode, left_s);
        rc = spec ? hub__submit_spec(h, spec, r->by, &job_id, err, sizeof err) : OP_ENOMEM;
        cJSON_Delete(spec);
    }
    if (rc == OP_ESTORE || h->store_failed) return OP_ESTORE;
    if (rc == OP_OK) return hub__check(h, hubdb_pool_job_add(h->db, job_id, r->id, site, mode));
    step_note(h, r, 0, site, mode, "skipped", err[0] ? err : op_strerror(rc), 0);
    return 1;
}

/* The round ends: its offers' outcomes audited together (pool-done). */
static void finish(hub *h, hubdb_pool_round *r, const char *state, const char *why)
{
    snprintf(r->state, sizeof r->state, "%s", state);
    r->finished_at_ms = os_now_ms();
    cJSON *a = cJSON_CreateObject(), *view = cJSON_CreateArray();
    if (a) {
        cJSON_AddStringToObject(a, "state", state);
        cJSON_AddStringToObject(a, "detail", why);
        jsonx_add_int(a, "versions", r->versions);
    }
    /* the jobs as they ended; the round's row is updated by the caller */
    if (a && view && hub__check(h, hubdb_pool_rounds_view(h->db, r->name, 1, view)) == OP_OK) {
        cJSON *jobs = cJSON_DetachItemFromObject(cJSON_GetArrayItem(view, 0), "jobs");
        if (jobs) cJSON_AddItemToObject(a, "jobs", jobs);
    }
    cJSON_Delete(view);
    pool_audit(h, r, "pool-done", a);
    log_info("hub", "pooling %s round %lld %s: %s", r->name, (long long)r->id, state, why);
}

/* Every site of the round is offered the pool; none queued: the round is over. */
static int start_offers(hub *h, hubdb_pool_round *r, const cJSON *sites)
{
    if (r->versions == 0) {
        finish(h, r, "failed", "no visit registered a version: nothing to offer");
        return OP_OK;
    }
    snprintf(r->state, sizeof r->state, "offering");
    int queued = 0, rc = OP_OK;
    for (const cJSON *s = sites ? sites->child : NULL; s && rc != OP_ESTORE; s = s->next) {
        rc = submit_step(h, r, s->valuestring, "offer");
        if (rc == OP_OK) queued++;
    }
    if (rc != OP_ESTORE && !queued) finish(h, r, "done", "no site could be offered the pool");
    return rc == OP_ESTORE ? rc : OP_OK;
}

/*
 * Moves the round on from where it stands: the next visit (skipping those
 * that cannot be submitted), the offers after the last visit, the end
 * after the last offer. The round's row is updated. OP_OK, OP_ESTORE.
 */
static int advance(hub *h, hubdb_pool_round *r)
{
    cJSON *sites = cJSON_Parse(r->sites);
    int64_t n = cJSON_GetArraySize(sites), running = 0;
    int rc = OP_OK;
    while (!strcmp(r->state, "visiting") && r->step < r->passes * n) {
        const cJSON *site = cJSON_GetArrayItem(sites, (int)(r->step % n));
        r->step++;
        rc = submit_step(h, r, site->valuestring, "visit");
        if (rc != 1) break;
        rc = OP_OK;
    }
    if (rc == OP_OK && !strcmp(r->state, "visiting") && r->step >= r->passes * n) {
        rc = hub__check(h, hubdb_pool_jobs_running(h->db, r->id, "visit", &running));
        if (rc == OP_OK && running == 0) rc = start_offers(h, r, sites);
    } else if (rc == OP_OK && !strcmp(r->state, "offering")) {
        rc = hub__check(h, hubdb_pool_jobs_running(h->db, r->id, "offer", &running));
        if (rc == OP_OK && running == 0) finish(h, r, "done", "every site was offered the pool");
    }
    cJSON_Delete(sites);
    return rc == OP_OK ? hub__check(h, hubdb_pool_round_update(h->db, r)) : rc;
}

int hub__pool_result(hub *h, const cJSON *learn, int64_t job_id, int64_t version)
{
    hubdb_pool_job j;
    hubdb_pool_round r;
    int rc = hubdb_pool_job_get(h->db, job_id, &j);
    if (rc == OP_ENOTFOUND || (rc == OP_OK && strcmp(j.outcome, "running"))) return OP_OK;
    if (hub__check(h, rc) != OP_OK ||
        hub__check(h, hubdb_pool_round_get(h->db, j.round, NULL, &r)) != OP_OK)
        return OP_ESTORE;
    const char *verdict = jsonx_str(learn, "verdict"), *reason = jsonx_str(learn, "reason");
    const char *incumbent = jsonx_str(learn, "incumbent");
    double mae = 0, incumbent_mae = 0;
    int64_t heldout = 0;
    jsonx_num(learn, "challenger_mae", &mae);
    jsonx_num(learn, "incumbent_mae", &incumbent_mae);
    jsonx_int(learn, "heldout_rows", 0, INT64_MAX, &heldout);
    int visit = !strcmp(j.mode, "visit");
    const char *outcome = visit ? (version ? "visited" : "skipped")
                          : verdict && !strcmp(verdict, "adopted") ? "adopted"
                                                                   : "refused";
    char detail[400];
    snprintf(detail, sizeof detail, "%s: pooled MAE %.1f s vs %s %.1f s on %lld held-out rows",
             reason ? reason : "no reason given", mae, incumbent ? incumbent : "incumbent",
             incumbent_mae, (long long)heldout);
    if (visit && version) r.versions++;
    step_note(h, &r, job_id, j.site, j.mode, outcome, detail, version);
    rc = hub__check(h, hubdb_pool_round_update(h->db, &r));
    hubdb_pool_round_clear(&r);
    return rc;
}

void hub__pool_job_ended(hub *h, int64_t job_id, int state)
{
    hubdb_pool_job j;
    hubdb_pool_round r;
    if (hubdb_pool_job_get(h->db, job_id, &j) != OP_OK) return;
    if (hub__check(h, hubdb_pool_round_get(h->db, j.round, NULL, &r)) != OP_OK) return;
    if (!strcmp(j.outcome, "running")) {
        /* ended without a learn verdict: failed, cancelled, or a result with none */
        char *reason = NULL, detail[400];
        hubdb_job_reason(h->db, job_id, &reason);
        snprintf(detail, sizeof detail, "job %s%s%s", jobstate_name(state),
                 reason && reason[0] ? ": " : "", reason ? reason : "");
        free(reason);
        step_note(h, &r, job_id, j.site, j.mode, !strcmp(j.mode, "visit") ? "skipped" : "failed",
                  detail, 0);
    }
    if (!strcmp(r.state, "visiting") || !strcmp(r.state, "offering")) advance(h, &r);
    hubdb_pool_round_clear(&r);
}

/* The owner's sites a round visits, in the order of their ids, as a JSON array (caller frees). */
static cJSON *owner_sites(hub *h, const char *owner)
{
    const hub_site *pick[POOL_MAX_SITES];
    int n = 0;
    for (size_t i = 0; i < h->n_sites && n < POOL_MAX_SITES; i++) {
        const hub_site *s = &h->sites[i];
        if (strcmp(s->owner, owner) || s->departed) continue;
        int at = n++;
        while (at > 0 && strcmp(pick[at - 1]->id, s->id) > 0) {
            pick[at] = pick[at - 1];
            at--;
        }
        pick[at] = s;
    }
    cJSON *arr = n ? cJSON_CreateArray() : NULL;
    for (int i = 0; arr && i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(pick[i]->id));
    return arr;
}

/* The request's fields into r. OP_OK, or OP_EINVAL with c->err set. */
static int pool_args(hub *h, op_call *c, hubdb_pool_round *r, int64_t *deadline_s)
{
    const char *name = jsonx_str(c->req, "name"), *owner = jsonx_str(c->req, "owner");
    const char *own = jsonx_str(c->req, "own");
    size_t len = name ? strlen(name) : 0;
    r->passes = 2;
    r->rounds = 10;
    *deadline_s = 3600;
    if (!artifact_valid_name(name) || !owner || !owner[0] || strlen(owner) >= sizeof r->owner ||
        (cJSON_HasObjectItem(c->req, "visits") &&
         jsonx_int(c->req, "visits", 1, POOL_MAX_PASSES, &r->passes) != OP_OK) ||
        (cJSON_HasObjectItem(c->req, "rounds") &&
         jsonx_int(c->req, "rounds", 1, 100, &r->rounds) != OP_OK) ||
        (cJSON_HasObjectItem(c->req, "deadline_s") &&
         jsonx_int(c->req, "deadline_s", 60, JOBSPEC_MAX_DEADLINE_S, deadline_s) != OP_OK) ||
        (own && (!own[0] || strlen(own) > 40 || !artifact_valid_name(own)))) {
        snprintf(c->err, c->err_len,
                 "model pool needs a name, an owner, visits 1..%d, rounds 1..100, deadline_s"
                 " 60..%d, and own a model name prefix of at most 40 bytes",
                 POOL_MAX_PASSES, JOBSPEC_MAX_DEADLINE_S);
        return OP_EINVAL;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->owner, sizeof r->owner, "%s", owner);
    /* each site's own model: eta-pool -> eta-SITE, unless told */
    if (own)
        snprintf(r->own, sizeof r->own, "%s", own);
    else if (len > 5 && !strcmp(name + len - 5, "-pool"))
        snprintf(r->own, sizeof r->own, "%.*s-", (int)(len - 5), name);
    else
        snprintf(r->own, sizeof r->own, "%.40s-", name);
    snprintf(r->by, sizeof r->by, "%s", c->op_id);
    (void)h;
    return OP_OK;
}

/* The pool may be pooled by owner's sites: not site-private, its versions theirs. */
static int pool_allowed(hub *h, op_call *c, const hubdb_pool_round *r)
{
    hubdb_model latest = {0};
    hubdb_pool_round running = {0};
    int rc = hubdb_pool_round_get(h->db, 0, r->name, &running);
    if (rc == OP_OK)
        snprintf(c->err, c->err_len, "a pooling round of %s is under way (round %lld, %s)", r->name,
                 (long long)running.id, running.state);
    hubdb_pool_round_clear(&running);
    if (rc != OP_ENOTFOUND) return rc == OP_OK ? OP_EEXIST : OP_ESTORE;
    rc = hubdb_model_get(h->db, r->name, 0, &latest);
    const hub_site *origin = rc == OP_OK ? hub__find_site(h, latest.origin) : NULL;
    if (rc == OP_OK && latest.data_class == DATA_SITE_PRIVATE) {
        snprintf(c->err, c->err_len, "%s is site-private: a site-private model is never pooled",
                 r->name);
        rc = OP_EPERM;
    } else if (rc == OP_OK && (!origin || strcmp(origin->owner, r->owner))) {
        snprintf(c->err, c->err_len, "%s is pooled by the sites of another owner", r->name);
        rc = OP_EPERM;
    }
    hubdb_model_clear(&latest);
    return rc == OP_ENOTFOUND ? OP_OK : rc;
}

int hub__op_model_pool(hub *h, op_call *c)
{
    hubdb_pool_round r = {0};
    int64_t deadline_s;
    int rc = pool_args(h, c, &r, &deadline_s);
    if (rc == OP_OK) rc = pool_allowed(h, c, &r);
    cJSON *sites = rc == OP_OK ? owner_sites(h, r.owner) : NULL;
    if (rc == OP_OK && !sites) {
        snprintf(c->err, c->err_len, "owner %s has no enrolled site", r.owner);
        rc = OP_ENOTFOUND;
    }
    char probe[128];
    for (const cJSON *s = sites ? sites->child : NULL; rc == OP_OK && s; s = s->next) {
        snprintf(probe, sizeof probe, "%s%s", r.own, s->valuestring);
        if (!artifact_valid_name(probe)) {
            snprintf(c->err, c->err_len, "%s: not a model name (own is %s)", probe, r.own);
            rc = OP_EINVAL;
        }
    }
    if (rc == OP_OK && !(r.sites = cJSON_PrintUnformatted(sites))) rc = OP_ENOMEM;
    r.started_at_ms = os_now_ms();
    r.deadline_at_ms = r.started_at_ms + deadline_s * 1000;
    if (rc == OP_OK) rc = hub__check(h, hubdb_pool_round_add(h->db, &r, &r.id));
    if (rc == OP_OK) {
        snprintf(r.state, sizeof r.state, "visiting");
        cJSON *a = cJSON_CreateObject();
        if (a) {
            cJSON_AddStringToObject(a, "owner", r.owner);
            cJSON_AddItemToObject(a, "sites", cJSON_Duplicate(sites, 1));
            jsonx_add_int(a, "passes", r.passes);
            jsonx_add_int(a, "deadline_s", deadline_s);
            cJSON_AddStringToObject(a, "by", r.by);
        }
        pool_audit(h, &r, "pool-start", a);
        rc = advance(h, &r);
    }
    if (rc == OP_OK) {
        jsonx_add_int(c->data, "round", r.id);
        cJSON_AddItemToObject(c->data, "sites", sites);
        cJSON_AddStringToObject(c->data, "state", r.state);
        sites = NULL;
    } else if (rc == OP_ESTORE && !c->err[0]) {
        snprintf(c->err, c->err_len, "hub store failed; retry");
    }
    cJSON_Delete(sites);
    hubdb_pool_round_clear(&r);
    return rc;
}

void hub__pool_view(hub *h, const char *name, cJSON *data)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr && hubdb_pool_rounds_view(h->db, name, 3, arr) == OP_OK && cJSON_GetArraySize(arr))
        cJSON_AddItemToObject(data, "pooling", arr);
    else
        cJSON_Delete(arr);
}
