/*
 * verifying: results from sites the operator does not own (cars, by
 * default) count only once they are checked. The rule is core/verify's
 * (pure); this file applies it to the hub's jobs and sites:
 *
 *   placement   quarantined sites get nothing; a job whose result cannot be
 *               compared (not deterministic, or a kind kept on trusted
 *               classes) never goes to an untrusted class; a replica never
 *               goes to an owner that already holds one of the same job
 *   placed      the plan: how many results the job needs (1 on a trusted
 *               class or a trusted site not drawn for a check)
 *   results     with the replicas recorded so far: a winner by quorum (the
 *               job ends with its result, whichever attempt it was),
 *               another replica on another owner's site, or giving up
 *   trust       every checked result grows or resets its site's and its
 *               owner's record; repeated mismatches quarantine them
 *
 * Each decision is a step of the job's history (so on the audit log and in
 * `outpost explain`), and each trust change an audit entry of its own.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "core/policy.h"
#include "hub/hub_int.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define REPLICAS_MAX VERIFY_MAX_RESULTS

void hub__verify_configure(hub *h)
{
    policy_verify_params(h->policy, &h->verify); /* the defaults without a policy */
}

/* ---------- trust records ---------- */

static void load_one(void *ctx, const char *subject, const verify_trust *t)
{
    hub *h = ctx;
    hub_site *s = hub__find_site(h, subject + strlen("site:"));
    if (s) s->vt = *t;
}

int hub__verify_load(hub *h)
{
    return hubdb_trust_each(h->db, "site:", load_one, h);
}

int hub__verify_trusted_class(const hub *h, unsigned class_bit)
{
    return (class_bit & h->verify.trusted_classes) && !(class_bit & h->verify.untrusted_classes);
}

static void subject_of(char *out, size_t len, const char *prefix, const char *id)
{
    snprintf(out, len, "%s:%s", prefix, id);
}

/* Stores a record and logs it: the audit log says why a site is trusted or not. */
static int store_trust(hub *h, const char *prefix, const char *id, const verify_trust *t,
                       const char *what)
{
    char subject[80];
    subject_of(subject, sizeof subject, prefix, id);
    if (hub__check(h, hubdb_trust_put(h->db, subject, t)) != OP_OK) return OP_ESTORE;
    cJSON *body = cJSON_CreateObject();
    if (body) {
        cJSON_AddStringToObject(body, "event", what);
        jsonx_add_int(body, "consecutive_valid", t->consecutive_valid);
        jsonx_add_int(body, "total_valid", t->total_valid);
        jsonx_add_int(body, "mismatches", t->mismatches);
        cJSON_AddBoolToObject(body, "quarantined", t->quarantined != 0);
    }
    hub__audit_record(h, "trust", subject, body);
    return OP_OK;
}

int hub__verify_clear(hub *h, hub_site *s)
{
    char subject[80];
    verify_trust owner;
    subject_of(subject, sizeof subject, "owner", s->owner);
    if (hub__check(h, hubdb_trust_get(h->db, subject, &owner)) != OP_OK) return OP_ESTORE;
    if (s->vt.quarantined) {
        s->vt.quarantined = 0;
        if (store_trust(h, "site", s->id, &s->vt, "cleared") != OP_OK) return OP_ESTORE;
    }
    if (owner.quarantined) {
        owner.quarantined = 0;
        if (store_trust(h, "owner", s->owner, &owner, "cleared") != OP_OK) return OP_ESTORE;
    }
    return OP_OK;
}

/* Another site of a caught owner starts its validated run again; a quarantined owner's stop. */
static int spread_to_owner_sites(hub *h, const hub_site *caught, const verify_trust *owner)
{
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *o = &h->sites[i];
        if (o == caught || strcmp(o->owner, caught->owner) != 0) continue;
        verify_taint(&o->vt);
        if (store_trust(h, "site", o->id, &o->vt, "owner-mismatch") != OP_OK) return OP_ESTORE;
        if (owner->quarantined && !o->quarantined[0]) {
            char why[160];
            snprintf(why, sizeof why, "its owner %s is quarantined (a site of it mismatched)",
                     caught->owner);
            hub__quarantine(h, o, why);
        }
    }
    return OP_OK;
}

/* A checked result of s turned out valid or a mismatch: its record and its owner's. */
static int judge(hub *h, hub_site *s, int outcome)
{
    if (hub__verify_trusted_class(h, s->class_bit))
        return OP_OK; /* the yardstick, not the measured */
    int64_t now = os_now_ms();
    int site_caught = verify_update_trust(&h->verify, &s->vt, outcome, now) == 1;
    const char *what = outcome == VERIFY_VALID ? "valid" : "mismatch";
    if (store_trust(h, "site", s->id, &s->vt, what) != OP_OK) return OP_ESTORE;
    char subject[80];
    verify_trust owner;
    subject_of(subject, sizeof subject, "owner", s->owner);
    if (hub__check(h, hubdb_trust_get(h->db, subject, &owner)) != OP_OK) return OP_ESTORE;
    int owner_caught = verify_update_trust(&h->verify, &owner, outcome, now) == 1;
    if (store_trust(h, "owner", s->owner, &owner, what) != OP_OK) return OP_ESTORE;
    if (site_caught || (owner.quarantined && !s->quarantined[0])) {
        char why[160];
        snprintf(why, sizeof why, "%u results disagreed with the accepted ones", s->vt.mismatches);
        hub__quarantine(h, s, why);
    }
    if (outcome == VERIFY_MISMATCH || owner_caught) return spread_to_owner_sites(h, s, &owner);
    return OP_OK;
}

/* ---------- placement ---------- */

unsigned hub__verify_unverifiable(const hub *h, int kind, int deterministic)
{
    const verify_params *p = &h->verify;
    unsigned untrusted = CLASS_ALL & ~(p->trusted_classes & ~p->untrusted_classes);
    for (size_t i = 0; i < p->n_kinds; i++) {
        if (p->kinds[i].kind != kind) continue;
        if (p->kinds[i].trusted_only) return untrusted;
        if (p->kinds[i].replicas == 1) return 0; /* never checked: anything may run there */
    }
    return deterministic ? 0 : untrusted;
}

int hub__verify_allows(const hub__policy_ctx *pc, const hub_site *s, char *why, size_t why_len)
{
    if (pc->unverifiable & s->class_bit) {
        snprintf(why, why_len, "its result could not be verified on a %s: %s",
                 jobspec_class_name(s->class_bit),
                 pc->spec->kind == JOB_KIND_EXEC && !pc->spec->deterministic
                     ? "not declared deterministic"
                     : "kept on trusted classes");
        return POLICY_DENY;
    }
    for (const char *const *o = pc->owners; o && *o; o++) {
        if (strcmp(*o, s->owner) == 0) {
            snprintf(why, why_len, "owner %.60s already holds a replica", s->owner);
            return POLICY_NOT_NOW;
        }
    }
    return POLICY_ALLOW;
}

int hub__verify_placed(hub *h, int64_t job_id, int64_t attempt, hub_site *s, int kind,
                       int deterministic, int in_verification, int site_private)
{
    if (in_verification) return OP_OK; /* its plan stands; this is one more replica */
    if (site_private) {
        if (!hub__verify_trusted_class(h, s->class_bit))
            hub__job_event(h, job_id, attempt, s->id, "verify",
                           "site-private: its data may not leave its site for a replica, so its"
                           " result is taken unchecked");
        return OP_OK;
    }
    char subject[80];
    verify_trust owner;
    subject_of(subject, sizeof subject, "owner", s->owner);
    if (hub__check(h, hubdb_trust_get(h->db, subject, &owner)) != OP_OK) return OP_ESTORE;
    uint64_t draw;
    randombytes_buf(&draw, sizeof draw);
    verify_plan_out plan;
    if (verify_plan(&h->verify, kind, deterministic, s->class_bit, &s->vt, &owner, draw, &plan) !=
        OP_OK) {
        /* the placement filter keeps such jobs away; should one slip through, check it */
        plan.replicas = h->verify.quorum > 1 ? h->verify.quorum : 2;
        plan.check_class = h->verify.trusted_classes;
    }
    /*
     * A trusted class's result settles the job alone whatever was planned
     * before (a replica lost with its site): nothing to store for it.
     */
    if (plan.why == VERIFY_WHY_TRUSTED_CLASS) return OP_OK;
    if (hub__check(h, hubdb_job_set_verify(h->db, job_id, plan.replicas,
                                           plan.replicas > 1 ? plan.check_class : 0)) != OP_OK)
        return OP_ESTORE;
    char detail[300];
    snprintf(detail, sizeof detail, "%s: %s; %u result%s needed (check probability %.3f)", s->id,
             verify_why_text(plan.why), plan.replicas, plan.replicas == 1 ? "" : "s",
             plan.check_probability);
    hub__job_event(h, job_id, attempt, s->id, "verify", detail);
    return OP_OK;
}

/* ---------- results ---------- */

typedef struct replicas {
    hubdb_replica rows[REPLICAS_MAX];
    verify_result in[REPLICAS_MAX];
    char fake[REPLICAS_MAX][32]; /* a hash no other result shares: malformed outputs */
    int n;
} replicas;

static int load_replicas(hub *h, int64_t job_id, replicas *rs)
{
    if (hub__check(h, hubdb_job_replicas(h->db, job_id, rs->rows, REPLICAS_MAX, &rs->n)) != OP_OK)
        return OP_ESTORE;
    int kept = 0;
    for (int i = 0; i < rs->n; i++) {
        hubdb_replica *r = &rs->rows[kept];
        *r = rs->rows[i];
        hub_site *s = hub__find_site(h, r->site);
        if (s && s->quarantined[0]) continue; /* a quarantined site's word counts no more */
        snprintf(rs->fake[kept], sizeof rs->fake[kept], "malformed:%lld", (long long)r->attempt);
        rs->in[kept] = (verify_result){.site_id = r->site,
                                       .owner_id = s ? s->owner : r->site,
                                       .hash = r->hash[0] ? r->hash : rs->fake[kept],
                                       .trusted = s && hub__verify_trusted_class(h, s->class_bit)};
        kept++;
    }
    rs->n = kept;
    return OP_OK;
}

/* "alice bob": the distinct owners behind the replicas, for the placement to skip. */
static void owners_text(const replicas *rs, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < rs->n; i++) {
        const char *owner = rs->in[i].owner_id;
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= strcmp(rs->in[j].owner_id, owner) == 0;
        size_t used = strlen(out);
        if (!seen && used + strlen(owner) + 2 < len)
            snprintf(out + used, len - used, "%s%s", used ? " " : "", owner);
    }
}

/* Stops the attempt in flight (placed or running) when the job ended without it. */
static void stop_current(hub *h, const hubdb_job *job, int64_t job_id, const char *why)
{
    if (job->state != JOB_PLACED && job->state != JOB_RUNNING) return;
    hub_site *cur = job->site[0] ? hub__find_site(h, job->site) : NULL;
    if (!cur) return;
    hub__send_cancel(h, cur, job_id, job->attempt, why);
    hub__release(h, cur->id, job->cores, job->memory_mb);
}

static int accept_winner(hub *h, const replicas *rs, const verify_outcome *out,
                         const hubdb_job *job, int64_t job_id, int live_done)
{
    const hubdb_replica *w = &rs->rows[out->winner];
    int next;
    if (jobstate_next(job->state, job->attempt, job->max_attempts,
                      w->failed ? JOB_EV_VERIFIED_FAIL : JOB_EV_VERIFIED_OK, &next) != OP_OK)
        return OP_OK;
    if (!live_done) stop_current(h, job, job_id, "its result was verified from other replicas");
    char detail[400];
    int off =
        snprintf(detail, sizeof detail,
                 "accepted the result of attempt %lld on %s:"
                 " %u agreeing result%s",
                 (long long)w->attempt, w->site, out->agreeing, out->agreeing == 1 ? "" : "s");
    for (int i = 0; i < rs->n && off > 0 && (size_t)off < sizeof detail; i++)
        if (out->mismatched[i])
            off += snprintf(detail + off, sizeof detail - (size_t)off,
                            "; %s (attempt %lld)"
                            " disagreed",
                            rs->rows[i].site, (long long)rs->rows[i].attempt);
    hub__job_event(h, job_id, w->attempt, w->site, "verify", detail);
    char reason[200];
    snprintf(reason, sizeof reason, "exit code %lld, verified by %u agreeing results",
             (long long)w->exit_code, out->agreeing);
    if (hub__finish(h, job_id, w->attempt, w->site, next, reason) != OP_OK) return OP_ESTORE;
    /* after the job ended: a quarantine takes back the site's other jobs, not this one */
    for (int i = 0; i < rs->n; i++) {
        hub_site *s = hub__find_site(h, rs->rows[i].site);
        if (s && judge(h, s, out->mismatched[i] ? VERIFY_MISMATCH : VERIFY_VALID) != OP_OK)
            return OP_ESTORE;
    }
    return OP_OK;
}

/* No quorum yet: one more replica on another owner's site (unless one is in flight). */
static int want_more(hub *h, const replicas *rs, const verify_outcome *out, const hubdb_job *job,
                     int64_t job_id, int live_done)
{
    char owners[512], detail[700];
    owners_text(rs, owners, sizeof owners);
    snprintf(detail, sizeof detail,
             "%d result%s so far, %u agreeing; %u more needed from sites"
             " of owners other than %s",
             rs->n, rs->n == 1 ? "" : "s", out->agreeing, out->more, owners);
    hub__job_event(h, job_id, job->attempt, NULL, "verify", detail);
    if (!live_done && (job->state == JOB_PLACED || job->state == JOB_RUNNING)) return OP_OK;
    int next = JOB_QUEUED; /* already waiting for a replica: only the owners to skip grow */
    if (job->state != JOB_QUEUED &&
        jobstate_next(job->state, job->attempt, job->max_attempts + out->more, JOB_EV_TAKEN_BACK,
                      &next) != OP_OK)
        return OP_OK;
    char reason[200];
    snprintf(reason, sizeof reason, "awaiting %u more replica%s for verification", out->more,
             out->more == 1 ? "" : "s");
    int64_t more = job->state == JOB_QUEUED ? 0 : out->more;
    if (hub__check(h, hubdb_job_await_replica(h->db, job_id, next, reason, owners, more)) != OP_OK)
        return OP_ESTORE;
    h->placement_dirty = 1;
    return OP_OK;
}

/* max_replicas results without a quorum: the job fails, no result is applied. */
static int give_up(hub *h, const replicas *rs, const hubdb_job *job, int64_t job_id, int live_done)
{
    int next;
    if (jobstate_next(job->state, job->attempt, job->max_attempts, JOB_EV_VERIFIED_FAIL, &next) !=
        OP_OK)
        return OP_OK;
    if (!live_done) stop_current(h, job, job_id, "its verification gave up");
    char reason[200];
    snprintf(reason, sizeof reason, "verification failed: no %u agreeing results among %d",
             h->verify.quorum, rs->n);
    hub__job_event(h, job_id, job->attempt, NULL, "verify", reason);
    return hub__finish(h, job_id, 0, NULL, next, reason); /* attempt 0: no result applied */
}

int hub__verify_result(hub *h, hub_site *s, const cJSON *item, int64_t attempt,
                       const hubdb_job *job, int64_t job_id, int live, const char *error)
{
    if (error) { /* nothing was produced: not a replica; the attempt is tried elsewhere */
        if (live) return hub__hand_back(h, s, item, job_id, attempt, error);
        return OP_OK;
    }
    if (live) hub__release(h, s->id, job->cores, job->memory_mb);
    if (s->quarantined[0]) return OP_OK; /* recorded, never counted */
    replicas rs;
    if (load_replicas(h, job_id, &rs) != OP_OK) return OP_ESTORE;
    if (rs.n == 0) return OP_OK;
    verify_outcome out;
    if (verify_decide(&h->verify, rs.in, (size_t)rs.n, (uint32_t)job->verify_wanted, &out) != OP_OK)
        return OP_OK;
    if (out.state == VERIFY_ACCEPT) return accept_winner(h, &rs, &out, job, job_id, live);
    if (out.state == VERIFY_NEED_MORE && rs.n < REPLICAS_MAX)
        return want_more(h, &rs, &out, job, job_id, live);
    return give_up(h, &rs, job, job_id, live);
}
