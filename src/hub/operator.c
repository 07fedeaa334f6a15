/*
 * operator: the operator API. Signed requests on op/<id>/req from the keys
 * in <data-dir>/operators, answered on op/<id>/resp after the commit. One
 * table lists every command with its handler and the kind of audit record
 * the dispatcher writes when it succeeds (subject "op:<id>"); commands on
 * jobs record each job's steps themselves. An unknown command is an error
 * answer.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "hub/api_int.h"
#include "hub/hub_int.h"
#include "wire/token.h"

#define HUB_TOKEN_BATCH 2000 /* join tokens one "tokens" request mints at most */

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a command is, beyond its handler. */
enum {
    OPC_AUDITLOG = 1, /* needs the hub's audit log */
    OPC_ONCE = 2,     /* changes something: runs once per request id when asked (replay.c) */
    OPC_BULKY = 4,    /* may carry up to MSG_MAX_PAYLOAD_BYTES (others PROTO_SMALL_BYTES) */
};

typedef struct op_command {
    const char *name;
    int (*run)(hub *h, op_call *c);
    const char *audit_kind; /* recorded on success; NULL: nothing beyond the jobs' own steps */
    int flags;              /* OPC_* */
} op_command;

/* ---------- submit ---------- */

/*
 * Whether the fleet could ever run the spec (sites as if empty and alive),
 * its origin is a site of this fleet, and the policy allows the operator to
 * submit it. OP_OK, or an error with the message in err.
 */
static int admit(hub *h, const jobspec *spec, const char *op_id, sched_site *view, char *err,
                 size_t err_len)
{
    if (spec->origin[0] && !hub__find_site(h, spec->origin)) {
        snprintf(err, err_len, "origin site %s is not enrolled", spec->origin);
        return OP_EINVAL;
    }
    int rc = policy_check_submit(h->policy, op_id, spec, err, err_len);
    if (rc != OP_OK || h->n_sites == 0) return rc;
    hub__policy_ctx pc = {
        h, spec, os_now_ms(),
        spec->data_class == DATA_SITE_PRIVATE
            ? 0
            : hub__verify_unverifiable(h, spec->kind, jobspec_deterministic(spec)),
        NULL};
    sched_job job = {
        .cores = spec->cores,
        .memory_mb = spec->memory_mb,
        .class_mask = spec->class_mask,
        .origin = spec->origin,
        .site_private = spec->data_class == DATA_SITE_PRIVATE,
        .allowed = h->policy || (pc.unverifiable & spec->class_mask) ? hub__policy_allows : NULL,
        .allowed_ctx = &pc};
    sched_decision d;
    if (sched_place(view, h->n_sites, &job, &d) != OP_OK) return OP_ENOMEM;
    if (d.outcome == SCHED_IMPOSSIBLE) {
        snprintf(err, err_len, "no site in the fleet can ever run this job: %s", d.explanation);
        rc = OP_ECAPACITY;
    }
    sched_decision_clear(&d);
    return rc;
}

/* The queued job's row and its first steps (submitted; held for approval when policy says). */
static int queue_job(hub *h, const cJSON *spec_json, const jobspec *spec, const char *op_id,
                     int notify, int64_t *job_id, char *err, size_t err_len)
{
    int awaiting = policy_needs_approval(h->policy, spec);
    char *text = cJSON_PrintUnformatted(spec_json);
    char model[96];
    snprintf(model, sizeof model, "%s@%lld", spec->model, (long long)spec->model_version);
    int64_t now = os_now_ms();
    hubdb_new_job row = {.name = spec->name[0] ? spec->name : NULL,
                         .kind = jobspec_kind_name(spec->kind),
                         .spec_json = text,
                         .state = JOB_QUEUED,
                         .cores = spec->cores,
                         .memory_mb = spec->memory_mb,
                         .class_mask = spec->class_mask,
                         .origin = spec->origin[0] ? spec->origin : NULL,
                         .site_private = spec->data_class == DATA_SITE_PRIVATE,
                         .max_attempts = spec->max_attempts,
                         .submitted_by = op_id,
                         .submitted_at = now,
                         .notify = notify ? op_id : NULL,
                         .awaiting_approval = awaiting,
                         .program = spec->argc > 0 ? spec->argv[0] : NULL,
                         .data_class = spec->data_class,
                         .expected_ms = spec->expected_s * 1000,
                         .deadline_at = spec->deadline_s ? now + spec->deadline_s * 1000 : 0,
                         .may_defer = spec->deferrable,
                         .deterministic = jobspec_deterministic(spec),
                         .model = spec->model[0] ? model : NULL,
                         .model_sha = spec->model[0] ? spec->model_sha256 : NULL};
    int rc = text ? hub__check(h, hubdb_job_insert(h->db, &row, job_id)) : OP_ESTORE;
    free(text);
    if (rc != OP_OK) {
        snprintf(err, err_len, "hub store failed; retry");
        return OP_ESTORE;
    }
    hub__job_event(h, *job_id, 0, NULL, "submitted", op_id);
    if (spec->model[0]) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s sha256 %s, %lld bytes", model, spec->model_sha256,
                 (long long)spec->model_bytes);
        hub__job_event(h, *job_id, 0, NULL, "model", detail);
    }
    if (awaiting) {
        char why[96];
        snprintf(why, sizeof why, "policy v%d: needs `outpost approve %lld`",
                 policy_version(h->policy), (long long)*job_id);
        hub__job_event(h, *job_id, 0, NULL, "awaiting-approval", why);
        hub__check(h, hubdb_job_set_reason(h->db, *job_id, why));
    }
    h->tx_counted.jobs_submitted++;
    h->placement_dirty = 1;
    return OP_OK;
}

/* A job with a model is queued with the model resolved into its spec (models.c). */
static int submit_one(hub *h, const cJSON *spec_json, const char *op_id, int notify,
                      sched_site *view, int64_t *job_id, char *err, size_t err_len)
{
    jobspec spec;
    int rc = jobspec_from_json(spec_json, &spec, err, err_len);
    if (rc != OP_OK) return rc;
    cJSON *resolved = spec.model[0] ? cJSON_Duplicate(spec_json, 1) : NULL;
    if (spec.model[0] && !resolved) rc = OP_ENOMEM;
    if (rc == OP_OK && resolved) rc = hub__models_resolve(h, resolved, &spec, err, err_len);
    if (rc == OP_OK) rc = admit(h, &spec, op_id, view, err, err_len);
    if (rc == OP_OK)
        rc = queue_job(h, resolved ? resolved : spec_json, &spec, op_id, notify, job_id, err,
                       err_len);
    cJSON_Delete(resolved);
    jobspec_clear(&spec);
    return rc;
}

/*
 * Submits one spec, or each of many, in a savepoint: a bad spec in a batch
 * undoes the ones before it.
 */
static int submit_all(hub *h, op_call *c, const cJSON *one, const cJSON *many, cJSON *ids,
                      sched_site *view)
{
    int notify = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->req, "notify"));
    int rc = hubdb_savepoint(h->db);
    const cJSON *spec = many ? many->child : one;
    for (int index = 0; rc == OP_OK && spec; spec = many ? spec->next : NULL, index++) {
        int64_t id;
        char why[400];
        rc = submit_one(h, spec, c->op_id, notify, view, &id, why, sizeof why);
        if (rc != OP_OK) {
            if (many)
                snprintf(c->err, c->err_len, "specs[%d]: %s", index, why);
            else
                snprintf(c->err, c->err_len, "%s", why);
            break;
        }
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id));
    }
    if (rc == OP_OK) return hubdb_savepoint_release(h->db);
    hubdb_savepoint_undo(h->db);
    if (h->audit && auditlog_reload(h->audit) != OP_OK) h->store_failed = 1;
    return rc;
}

int hub__submit_spec(hub *h, const cJSON *spec_json, const char *op_id, int64_t *job_id, char *err,
                     size_t err_len)
{
    int64_t queued = 0;
    if (hub__check(h, hubdb_jobs_count(h->db, JOB_QUEUED, &queued)) != OP_OK) return OP_ESTORE;
    if (queued + 1 > h->max_queued_jobs) {
        h->bound_hits++;
        snprintf(err, err_len, "hub queue full (%lld queued)", (long long)queued);
        return OP_EFULL;
    }
    sched_site *view = calloc(h->n_sites ? h->n_sites : 1, sizeof *view);
    if (!view) return OP_ENOMEM;
    hub__fill_view(h, view, 1);
    int rc = submit_one(h, spec_json, op_id, 0, view, job_id, err, err_len);
    free(view);
    return rc;
}

/* submit: {"spec": {...}} or {"specs": [...]}; all or nothing, bounded by the queue's limit. */
static int op_submit(hub *h, op_call *c)
{
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(c->req, "spec");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(c->req, "specs");
    if (!one && !cJSON_IsArray(many)) {
        snprintf(c->err, c->err_len, "submit needs 'spec' (object) or 'specs' (array)");
        return OP_EINVAL;
    }
    if (one) many = NULL;
    int count = one ? 1 : cJSON_GetArraySize(many);
    int64_t queued = 0;
    hubdb_jobs_count(h->db, JOB_QUEUED, &queued);
    if (queued + count > h->max_queued_jobs) {
        h->bound_hits++;
        snprintf(c->err, c->err_len, "hub queue full (%lld queued, limit %lld); retry later",
                 (long long)queued, (long long)h->max_queued_jobs);
        return OP_EFULL;
    }
    sched_site *view = calloc(h->n_sites ? h->n_sites : 1, sizeof *view);
    cJSON *ids = cJSON_AddArrayToObject(c->data, "ids");
    if (!view || !ids) {
        free(view);
        return OP_ENOMEM;
    }
    hub__fill_view(h, view, 1);
    int rc = submit_all(h, c, one, many, ids, view);
    free(view);
    if (rc != OP_OK) cJSON_DeleteItemFromObjectCaseSensitive(c->data, "ids");
    return rc;
}

/* ---------- jobs ---------- */

static int op_jobs(hub *h, op_call *c)
{
    int64_t limit = 50;
    jsonx_int(c->req, "limit", 1, 10000, &limit);
    int rc = hubdb_jobs_list(h->db, jsonx_str(c->req, "state"), limit,
                             cJSON_AddArrayToObject(c->data, "jobs"));
    if (rc == OP_OK) rc = hubdb_jobs_counts(h->db, cJSON_AddObjectToObject(c->data, "counts"));
    return rc;
}

/* The "id" of a request about one job. OP_EINVAL with the message in err. */
static int req_job_id(op_call *c, int64_t *id)
{
    if (jsonx_int(c->req, "id", 1, INT64_MAX, id) == OP_OK) return OP_OK;
    snprintf(c->err, c->err_len, "'id' must be a job number");
    return OP_EINVAL;
}

static int job_view(hub *h, op_call *c, int with_outputs)
{
    int64_t id;
    if (req_job_id(c, &id) != OP_OK) return OP_EINVAL;
    int rc = hubdb_job_view(h->db, id, with_outputs, c->data);
    if (rc == OP_ENOTFOUND) snprintf(c->err, c->err_len, "no job %lld", (long long)id);
    return rc;
}

static int op_job(hub *h, op_call *c)
{
    return job_view(h, c, 0);
}

/* A route job's result carries its map too (routemap.c). */
static int op_result(hub *h, op_call *c)
{
    int rc = job_view(h, c, 1);
    int64_t id;
    if (rc == OP_OK && req_job_id(c, &id) == OP_OK) rc = hub__route_map(h, id, c->data);
    return rc;
}

static int op_cancel(hub *h, op_call *c)
{
    int64_t id;
    hubdb_job job;
    int next;
    if (req_job_id(c, &id) != OP_OK) return OP_EINVAL;
    int rc = hubdb_job_get(h->db, id, &job);
    if (rc == OP_ENOTFOUND) snprintf(c->err, c->err_len, "no job %lld", (long long)id);
    if (rc != OP_OK) return rc;
    if (jobstate_next(job.state, job.attempt, job.attempt + 1, JOB_EV_CANCEL, &next) != OP_OK) {
        snprintf(c->err, c->err_len, "job %lld is already %s", (long long)id,
                 jobstate_name(job.state));
        return OP_EINVAL;
    }
    rc = hub__check(h, hubdb_job_cancel(h->db, id, next, "cancelled by operator", os_now_ms()));
    if (rc != OP_OK) return rc;
    hub__job_event(h, id, job.attempt, job.site[0] ? job.site : NULL, "cancelled", "by operator");
    hub__notify_terminal(h, id, next);
    if (job.state != JOB_QUEUED) {
        hub_site *s = hub__find_site(h, job.site);
        if (s) hub__send_cancel(h, s, id, job.attempt, "cancelled by operator");
        hub__release(h, job.site, job.cores, job.memory_mb);
    }
    return OP_OK;
}

static int op_approve(hub *h, op_call *c)
{
    int64_t id;
    int changed;
    if (req_job_id(c, &id) != OP_OK) return OP_EINVAL;
    int rc = hub__check(h, hubdb_job_approve(h->db, id, &changed));
    if (rc != OP_OK) return rc;
    if (!changed) {
        snprintf(c->err, c->err_len, "job %lld is not awaiting approval", (long long)id);
        return OP_EINVAL;
    }
    hub__job_event(h, id, 0, NULL, "approved", c->op_id);
    h->placement_dirty = 1;
    return OP_OK;
}

/* ---------- the fleet ---------- */

static cJSON *site_power_view(const hub_site *s)
{
    cJSON *p = cJSON_CreateObject();
    if (!p) return NULL;
    if (s->has_forecast) {
        cJSON *f = cJSON_AddArrayToObject(p, "forecast_watts");
        for (int k = 0; f && k < SCHED_HORIZONS; k++)
            cJSON_AddItemToArray(f, cJSON_CreateNumber(s->forecast_watts[k]));
    }
    if (s->stay_until_ms) jsonx_add_int(p, "stay_until_ms", s->stay_until_ms);
    cJSON_AddNumberToObject(p, "grid_rank", s->grid_rank);
    jsonx_add_int(p, "region", s->region);
    jsonx_add_int(p, "attempts_placed", (int64_t)s->attempts_placed);
    jsonx_add_int(p, "attempts_lost", (int64_t)s->attempts_lost);
    return p;
}

/* What verification knows of the site: trusted class, or its validated run against the need. */
static void site_trust_view(const hub *h, const hub_site *s, cJSON *o)
{
    cJSON *t = cJSON_AddObjectToObject(o, "trust");
    if (!t) return;
    cJSON_AddBoolToObject(t, "trusted_class", hub__verify_trusted_class(h, s->class_bit));
    jsonx_add_int(t, "valid_in_a_row", s->vt.consecutive_valid);
    jsonx_add_int(t, "needed", verify_trust_needed(&h->verify, &s->vt, NULL));
    jsonx_add_int(t, "total_valid", s->vt.total_valid);
    jsonx_add_int(t, "mismatches", s->vt.mismatches);
}

static cJSON *site_view(hub *h, hub_site *s, int64_t now_mono)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "class", jobspec_class_name(s->class_bit));
    cJSON_AddStringToObject(o, "owner", s->owner);
    cJSON_AddStringToObject(o, "status", hub__site_status(s));
    jsonx_add_int(o, "cores", s->cores);
    jsonx_add_int(o, "free_cores", hub__site_cores(s) - s->reserved_cores);
    jsonx_add_int(o, "memory_mb", s->memory_mb);
    jsonx_add_int(o, "free_memory_mb", s->memory_mb - s->reserved_memory_mb);
    cJSON_AddNumberToObject(o, "power_budget_watts", s->power_budget_watts);
    cJSON_AddNumberToObject(o, "headroom_watts",
                            s->power_budget_watts - s->idle_watts -
                                s->reserved_cores * s->watts_per_core);
    cJSON_AddNumberToObject(o, "watts_per_core", s->watts_per_core);
    jsonx_add_int(o, "jobs", s->reserved_jobs);
    jsonx_add_int(o, "running_reported", s->reported_running);
    jsonx_add_int(o, "heartbeat_age_ms", s->heard ? now_mono - s->last_heartbeat_mono : -1);
    cJSON_AddStringToObject(o, "broker", s->broker); /* "" until its first heartbeat says */
    site_trust_view(h, s, o);
    cJSON_AddStringToObject(o, "protections_off", s->protections_off);
    cJSON_AddBoolToObject(o, "store_failing", s->store_failing);
    if (s->claims_capped[0]) cJSON_AddStringToObject(o, "claims_capped", s->claims_capped);
    hub__claims_view(h, s, o);
    if (s->messages) cJSON_AddItemToObject(o, "messages", cJSON_Duplicate(s->messages, 1));
    if (s->artifacts) cJSON_AddItemToObject(o, "artifacts", cJSON_Duplicate(s->artifacts, 1));
    cJSON *p = site_power_view(s);
    if (p) cJSON_AddItemToObject(o, "power", p);
    return o;
}

/* What the site delivered (hubdb_sites_delivered), zeros when nothing yet. */
static void add_delivered(cJSON *o, const cJSON *by_site, const char *id)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(by_site, id);
    if (d) {
        cJSON_AddItemToObject(o, "delivered", cJSON_Duplicate(d, 1));
        return;
    }
    cJSON *z = cJSON_AddObjectToObject(o, "delivered");
    static const char *const keys[] = {"results", "cpu_seconds", "wall_ms", "observed_ms",
                                       "core_seconds"};
    for (size_t i = 0; z && i < sizeof keys / sizeof keys[0]; i++)
        cJSON_AddNumberToObject(z, keys[i], 0);
}

static int op_sites(hub *h, op_call *c)
{
    cJSON *arr = cJSON_AddArrayToObject(c->data, "sites");
    cJSON *delivered = cJSON_CreateObject();
    int rc = delivered ? hubdb_sites_delivered(h->db, delivered) : OP_ENOMEM;
    int64_t now_mono = os_mono_ms();
    for (size_t i = 0; rc == OP_OK && arr && i < h->n_sites; i++) {
        cJSON *o = site_view(h, &h->sites[i], now_mono);
        if (!o) break;
        add_delivered(o, delivered, h->sites[i].id);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_Delete(delivered);
    return rc;
}

/*
 * site_clear {site}: an operator lets a quarantined site take work again.
 * Its claims are checked anew (held until the first verdict when probing).
 */
static int op_site_clear(hub *h, op_call *c)
{
    const char *id = jsonx_str(c->req, "site");
    hub_site *s = id ? hub__find_site(h, id) : NULL;
    if (!s) {
        snprintf(c->err, c->err_len, "no site %.64s", id ? id : "given ('site')");
        return OP_ENOTFOUND;
    }
    if (!s->quarantined[0]) {
        snprintf(c->err, c->err_len, "site %s is not quarantined", s->id);
        return OP_EINVAL;
    }
    c->audit = cJSON_CreateObject();
    if (c->audit) {
        cJSON_AddStringToObject(c->audit, "site", s->id);
        cJSON_AddStringToObject(c->audit, "was", s->quarantined);
    }
    int rc = hub__quarantine_clear(h, s);
    if (rc != OP_OK) return rc;
    log_info("hub", "operator %s cleared site %s's quarantine", c->op_id, s->id);
    cJSON_AddStringToObject(c->data, "site", s->id);
    return OP_OK;
}

/*
 * One name space for the broker's user names (certificate CNs): a site id
 * must not be the hub's, an operator's (or of an operator's form), a broker
 * bridge's (bridge-...: its ACL carries every site's topics), nor a site
 * already enrolled, or its certificate would carry another's broker rights.
 */
static int check_site_name(hub *h, const char *sid, char *err, size_t err_len)
{
    if (!sid || !util_valid_id(sid)) {
        snprintf(err, err_len, "--site must be [A-Za-z0-9_-]{1,63}");
        return OP_EINVAL;
    }
    if (strcmp(sid, h->identity.id) == 0 || strncmp(sid, "op-", 3) == 0 ||
        strncmp(sid, "bridge-", 7) == 0 || hub__find_operator(h, sid)) {
        snprintf(err, err_len,
                 "%s is the hub's, an operator's or a broker bridge's name; choose another site id",
                 sid);
        return OP_EEXIST;
    }
    if (hub__find_site(h, sid)) {
        snprintf(err, err_len, "site %s is already enrolled", sid);
        return OP_EEXIST;
    }
    return OP_OK;
}

/*
 * The limits a token puts on its site's claims: "max_cores", "max_memory_mb"
 * (whole numbers) and "max_watts", each optional. OP_OK, or OP_EINVAL with
 * c->err set.
 */
static int token_limit_args(op_call *c, token_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    int bad = 0;
    if (cJSON_HasObjectItem(c->req, "max_cores"))
        bad |= jsonx_int(c->req, "max_cores", 1, TOKEN_MAX_CORES, &lim->cores) != OP_OK;
    if (cJSON_HasObjectItem(c->req, "max_memory_mb"))
        bad |= jsonx_int(c->req, "max_memory_mb", 1, TOKEN_MAX_MEMORY_MB, &lim->memory_mb) != OP_OK;
    if (cJSON_HasObjectItem(c->req, "max_watts"))
        bad |= jsonx_num(c->req, "max_watts", &lim->watts) != OP_OK || !(lim->watts > 0) ||
               lim->watts > TOKEN_MAX_WATTS;
    if (!bad) return OP_OK;
    snprintf(c->err, c->err_len,
             "--max-cores must be 1 to %d, --max-memory-mb 1 to %lld, --max-watts above 0 and at"
             " most %.0f",
             TOKEN_MAX_CORES, (long long)TOKEN_MAX_MEMORY_MB, TOKEN_MAX_WATTS);
    return OP_EINVAL;
}

/*
 * The token's arguments: class, site, owner (NULL: the site is its own) and
 * ttl. OP_OK, or an error with c->err set.
 */
static int token_args(hub *h, op_call *c, const char **cls, const char **sid, const char **owner,
                      int64_t *ttl_s)
{
    *cls = jsonx_str(c->req, "class");
    *sid = jsonx_str(c->req, "site");
    *owner = jsonx_str(c->req, "owner");
    *ttl_s = h->token_ttl_s;
    if (!token_valid_class(*cls)) {
        snprintf(c->err, c->err_len, "--class must be pod, car or dc");
        return OP_EINVAL;
    }
    if (cJSON_HasObjectItem(c->req, "owner") && !util_valid_id(*owner)) {
        snprintf(c->err, c->err_len, "--owner must be [A-Za-z0-9_-]{1,63}");
        return OP_EINVAL;
    }
    if (cJSON_HasObjectItem(c->req, "ttl_s") &&
        jsonx_int(c->req, "ttl_s", 1, 365LL * 86400, ttl_s) != OP_OK) {
        snprintf(c->err, c->err_len, "--ttl must be from 1 second to 365 days");
        return OP_EINVAL;
    }
    return check_site_name(h, *sid, c->err, c->err_len);
}

static void token_made(hub *h, op_call *c, const token *tok, int64_t ttl_s)
{
    jsonx_add_int(c->data, "expires_at", tok->expires_ms);
    cJSON_AddStringToObject(c->data, "site", tok->sid);
    cJSON_AddStringToObject(c->data, "owner", tok->owner);
    c->audit = cJSON_CreateObject();
    if (c->audit) {
        cJSON_AddStringToObject(c->audit, "class", tok->cls);
        cJSON_AddStringToObject(c->audit, "site", tok->sid);
        cJSON_AddStringToObject(c->audit, "owner", tok->owner);
        cJSON_AddStringToObject(c->audit, "token", tok->tid);
        jsonx_add_int(c->audit, "expires_at", tok->expires_ms);
    }
    const token_limits *l = &tok->limits;
    cJSON *lim = l->cores || l->memory_mb || l->watts > 0 ? cJSON_CreateObject() : NULL;
    if (lim) {
        if (l->cores) jsonx_add_int(lim, "cores", l->cores);
        if (l->memory_mb) jsonx_add_int(lim, "memory_mb", l->memory_mb);
        if (l->watts > 0) cJSON_AddNumberToObject(lim, "watts", l->watts);
        if (c->audit) cJSON_AddItemToObject(c->audit, "limits", cJSON_Duplicate(lim, 1));
        cJSON_AddItemToObject(c->data, "limits", lim);
    }
    log_info("hub", "operator %s created a %s join token for site %s valid for %lld s", c->op_id,
             tok->cls, tok->sid, (long long)ttl_s);
}

/*
 * One join token for site sid, recorded in the registry and sealed to the
 * operator's key (*sealed: malloc'd, the caller frees). OP_OK, or
 * token_create_limited's, hub__join_text's, ident_seal's or the store's error.
 */
static int mint_token(hub *h, const hub_operator *op, op_call *c, const char *cls, const char *sid,
                      const char *owner, const token_limits *limits, int64_t ttl_s, token *tok,
                      char **sealed)
{
    char *text = NULL, *join = NULL;
    int64_t now = os_now_ms();
    *sealed = NULL;
    int rc =
        token_create_limited(&h->identity, cls, sid, owner, limits, now + ttl_s * 1000, &text, tok);
    if (rc != OP_OK) return rc;
    rc = hub__join_text(h, sid, text, &join);
    if (rc == OP_OK) rc = ident_seal(op->pk, join, strlen(join), sealed);
    if (rc == OP_OK)
        rc =
            hub__check(h, hubdb_token_create(h->db, tok->tid, cls, now, tok->expires_ms, c->op_id));
    sodium_memzero(text, strlen(text));
    if (join) sodium_memzero(join, strlen(join));
    free(text);
    free(join);
    if (rc != OP_OK) {
        free(*sealed);
        *sealed = NULL;
    }
    return rc;
}

/*
 * A join token for one site id; with broker_tls, in a join bundle with the
 * site's new broker certificate and key. It goes back sealed to the asking
 * operator's key: whoever reads the broker, or the answer kept for retries in
 * hub.db, cannot enroll a site with it.
 */
static int op_token(hub *h, op_call *c)
{
    const char *cls, *sid, *owner;
    int64_t ttl_s;
    token_limits limits;
    int rc = token_args(h, c, &cls, &sid, &owner, &ttl_s);
    if (rc == OP_OK) rc = token_limit_args(c, &limits);
    if (rc != OP_OK) return rc;
    const hub_operator *op = hub__find_operator(h, c->op_id);
    if (!op) {
        snprintf(c->err, c->err_len, "no key to seal a token to for operator %s", c->op_id);
        return OP_EPERM;
    }
    token tok;
    char *sealed = NULL;
    rc = mint_token(h, op, c, cls, sid, owner, &limits, ttl_s, &tok, &sealed);
    if (rc == OP_OK) {
        cJSON_AddStringToObject(c->data, "sealed_token", sealed);
        token_made(h, c, &tok, ttl_s);
    }
    free(sealed);
    return rc;
}

/*
 * Join tokens for a batch of sites named <prefix><n>, n from "first" for
 * "count" (at most HUB_TOKEN_BATCH), each its own owner, for fleets enrolled
 * by a program (a load test, a roll-out): one request instead of thousands.
 * All or none: one bad name refuses the batch. The audit record lists the
 * count and the first and last site; each token is in the registry.
 */
static int op_tokens(hub *h, op_call *c)
{
    const char *cls = jsonx_str(c->req, "class"), *prefix = jsonx_str(c->req, "prefix");
    int64_t first = 0, count = 0, ttl_s = h->token_ttl_s;
    const hub_operator *op = hub__find_operator(h, c->op_id);
    if (!token_valid_class(cls) || !prefix || strlen(prefix) > 40 ||
        jsonx_int(c->req, "first", 0, 1000000000, &first) != OP_OK ||
        jsonx_int(c->req, "count", 1, HUB_TOKEN_BATCH, &count) != OP_OK ||
        (cJSON_HasObjectItem(c->req, "ttl_s") &&
         jsonx_int(c->req, "ttl_s", 1, 365LL * 86400, &ttl_s) != OP_OK)) {
        snprintf(c->err, c->err_len,
                 "tokens needs class (pod, car or dc), prefix (at most 40 characters), first "
                 "(0 or more) and count (1 to %d)",
                 HUB_TOKEN_BATCH);
        return OP_EINVAL;
    }
    if (!op) {
        snprintf(c->err, c->err_len, "no key to seal a token to for operator %s", c->op_id);
        return OP_EPERM;
    }
    cJSON *list = cJSON_AddArrayToObject(c->data, "tokens");
    token_limits limits = {0};
    int rc = list ? OP_OK : OP_ENOMEM;
    char sid[64] = "";
    for (int64_t i = 0; rc == OP_OK && i < count; i++) {
        snprintf(sid, sizeof sid, "%s%lld", prefix, (long long)(first + i));
        rc = check_site_name(h, sid, c->err, c->err_len);
        token tok;
        char *sealed = NULL;
        if (rc == OP_OK) rc = mint_token(h, op, c, cls, sid, NULL, &limits, ttl_s, &tok, &sealed);
        cJSON *item = rc == OP_OK ? cJSON_CreateObject() : NULL;
        if (item) {
            cJSON_AddStringToObject(item, "site", sid);
            cJSON_AddStringToObject(item, "sealed_token", sealed);
            cJSON_AddItemToArray(list, item);
        } else if (rc == OP_OK) {
            rc = OP_ENOMEM;
        }
        free(sealed);
    }
    if (rc != OP_OK) return rc;
    c->audit = cJSON_CreateObject();
    if (c->audit) {
        cJSON_AddStringToObject(c->audit, "class", cls);
        jsonx_add_int(c->audit, "count", count);
        snprintf(sid, sizeof sid, "%s%lld", prefix, (long long)first);
        cJSON_AddStringToObject(c->audit, "first_site", sid);
        snprintf(sid, sizeof sid, "%s%lld", prefix, (long long)(first + count - 1));
        cJSON_AddStringToObject(c->audit, "last_site", sid);
    }
    log_info("hub", "operator %s created %lld %s join tokens (%s%lld...)", c->op_id,
             (long long)count, cls, prefix, (long long)first);
    return OP_OK;
}

/* Counters, message statistics and job counts; the jobs themselves are `outpost jobs`. */
static int op_stats(hub *h, op_call *c)
{
    cJSON *m = cJSON_AddObjectToObject(c->data, "messages");
    if (m) msg_stats_to_json(&h->msg, m);
    cJSON *r = cJSON_AddObjectToObject(c->data, "results");
    if (r) {
        jsonx_add_int(r, "applied", (int64_t)h->counted.results_applied);
        jsonx_add_int(r, "duplicate", (int64_t)h->counted.results_duplicate);
        jsonx_add_int(r, "stale", (int64_t)h->counted.results_stale);
    }
    int rc = hubdb_jobs_per_site(h->db, cJSON_AddObjectToObject(c->data, "per_site"));
    if (rc == OP_OK) rc = hubdb_results_totals(h->db, c->data);
    if (rc != OP_OK) return rc;
    jsonx_add_int(c->data, "jobs_submitted", (int64_t)h->counted.jobs_submitted);
    jsonx_add_int(c->data, "bound_hits", (int64_t)h->bound_hits);
    jsonx_add_int(c->data, "commits", (int64_t)h->commits);
    hub__broker_stats(h, c->data);
    hub__models_stats(h, c->data);
    hub__fleet_stats(h, c->data);
    cJSON_AddNumberToObject(c->data, "commit_ms_avg",
                            h->commits ? (double)h->commit_us / 1000.0 / (double)h->commits : 0);
    return hubdb_jobs_counts(h->db, cJSON_AddObjectToObject(c->data, "counts"));
}

/* ---------- policy ---------- */

static int op_policy_get(hub *h, op_call *c)
{
    cJSON_AddStringToObject(c->data, "text", h->policy_text ? h->policy_text : "");
    jsonx_add_int(c->data, "version", h->policy ? policy_version(h->policy) : 0);
    cJSON_AddStringToObject(c->data, "sha256", h->policy ? policy_hash(h->policy) : "");
    return OP_OK;
}

/* Parses a new policy that must be newer than the one in force. */
static int parse_newer_policy(hub *h, const char *text, policy **p, char *err, size_t err_len)
{
    int rc = policy_parse(text, "policy", p, err, err_len);
    if (rc != OP_OK) return rc;
    if (h->policy && policy_version(*p) <= policy_version(h->policy)) {
        snprintf(err, err_len, "version %d is not newer than the policy in force (version %d)",
                 policy_version(*p), policy_version(h->policy));
        policy_free(*p);
        *p = NULL;
        return OP_EINVAL;
    }
    return OP_OK;
}

/* policy_set {text}: validated, written to <data-dir>/policy, in force at once, logged. */
static int op_policy_set(hub *h, op_call *c)
{
    const char *text = jsonx_str(c->req, "text");
    policy *p = NULL;
    if (!text) {
        snprintf(c->err, c->err_len, "'text' is required");
        return OP_EINVAL;
    }
    int rc = parse_newer_policy(h, text, &p, c->err, c->err_len);
    if (rc != OP_OK) return rc;
    char path[PATH_MAX];
    char *copy = strdup(text);
    if (!copy || util_fmt(path, sizeof path, "%s/policy", h->data_dir) != OP_OK ||
        os_write_file_atomic(path, text, strlen(text), 0644) != OP_OK) {
        free(copy);
        policy_free(p);
        snprintf(c->err, c->err_len, "cannot write the policy file");
        return OP_EIO;
    }
    c->audit = cJSON_CreateObject();
    if (c->audit) {
        jsonx_add_int(c->audit, "version", policy_version(p));
        cJSON_AddStringToObject(c->audit, "sha256", policy_hash(p));
        cJSON_AddStringToObject(c->audit, "previous", h->policy ? policy_hash(h->policy) : "");
    }
    policy_free(h->policy);
    free(h->policy_text);
    h->policy = p;
    h->policy_text = copy;
    hub__verify_configure(h);
    h->placement_dirty = 1;
    log_info("hub", "operator %s set policy version %d (sha256 %.16s...)", c->op_id,
             policy_version(p), policy_hash(p));
    return op_policy_get(h, c);
}

/* ---------- the audit log ---------- */

static void add_head(cJSON *data, const audit_sth *head)
{
    cJSON *o = auditlog_head_to_json(head);
    if (o) cJSON_AddItemToObject(data, "head", o);
}

/* audit_head: a tree head signed now over the whole log. */
static int op_audit_head(hub *h, op_call *c)
{
    audit_sth head;
    int rc = auditlog_sign_head(h->audit, &h->identity, os_now_ms(), &head);
    if (rc != OP_OK) return rc;
    h->head_size = head.size;
    add_head(c->data, &head);
    return OP_OK;
}

/* The entry at index with its inclusion proof in the log of head.size entries. */
static int add_proof(hub *h, cJSON *data, int64_t index, const audit_sth *head)
{
    char *text = NULL;
    uint8_t leaf[32], proof[AUDIT_MAX_PROOF][32];
    size_t len = 0;
    int rc = auditlog_entry(h->audit, (uint64_t)index, &text, leaf);
    if (rc != OP_OK) return rc;
    rc = auditlog_inclusion_proof(h->audit, (uint64_t)index, head->size, proof, &len);
    if (rc == OP_OK) {
        jsonx_add_int(data, "index", index);
        cJSON_AddStringToObject(data, "entry", text);
        cJSON *arr = cJSON_AddArrayToObject(data, "proof");
        for (size_t i = 0; arr && i < len; i++) {
            char hex[65];
            util_hex(proof[i], 32, hex);
            cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
        }
        add_head(data, head);
        cJSON_AddStringToObject(data, "hub_pubkey", h->identity.pk_hex);
    }
    free(text);
    return rc;
}

/* audit_prove {index}: the entry, its inclusion proof and the signed head it is proven against. */
static int op_audit_prove(hub *h, op_call *c)
{
    int64_t index;
    if (jsonx_int(c->req, "index", 0, INT64_MAX, &index) != OP_OK ||
        (uint64_t)index >= auditlog_size(h->audit)) {
        snprintf(c->err, c->err_len, "no audit entry %s (the log has %llu)",
                 cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c->req, "index"))
                     ? "with that index"
                     : "given",
                 (unsigned long long)auditlog_size(h->audit));
        return OP_ENOTFOUND;
    }
    audit_sth head;
    int rc = auditlog_sign_head(h->audit, &h->identity, os_now_ms(), &head);
    if (rc != OP_OK) return rc;
    h->head_size = head.size;
    return add_proof(h, c->data, index, &head);
}

/* audit_entries {from, limit, subject, kind}: entries in order, filtered. */
/*
 * audit_entries: {"start": first index, "limit", "subject", "kind"}. Not
 * "from": every signed message carries its sender there (wire/msg), so a
 * request field of that name would always read as the operator's id.
 */
static int op_audit_entries(hub *h, op_call *c)
{
    int64_t from = 0, limit = 50;
    jsonx_int(c->req, "start", 0, INT64_MAX, &from);
    jsonx_int(c->req, "limit", 1, 1000, &limit);
    int rc =
        hubdb_audit_entries(h->db, from, jsonx_str(c->req, "subject"), jsonx_str(c->req, "kind"),
                            limit, cJSON_AddArrayToObject(c->data, "entries"));
    if (rc == OP_OK) jsonx_add_int(c->data, "size", (int64_t)auditlog_size(h->audit));
    return rc;
}

/* ---------- dispatch ---------- */

static const op_command commands[] = {
    {"submit", op_submit, NULL, OPC_ONCE | OPC_BULKY},
    {"jobs", op_jobs, NULL, 0},
    {"job", op_job, NULL, 0},
    {"result", op_result, NULL, 0},
    {"sites", op_sites, NULL, 0},
    {"site_clear", op_site_clear, "site-cleared", OPC_ONCE},
    {"token", op_token, "token", OPC_ONCE},
    {"tokens", op_tokens, "tokens", OPC_ONCE},
    {"cancel", op_cancel, NULL, OPC_ONCE},
    {"stats", op_stats, NULL, 0},
    {"approve", op_approve, NULL, OPC_ONCE},
    {"policy_get", op_policy_get, NULL, 0},
    {"policy_set", op_policy_set, "policy", OPC_ONCE | OPC_BULKY},
    {"audit_head", op_audit_head, NULL, OPC_AUDITLOG},
    {"audit_prove", op_audit_prove, NULL, OPC_AUDITLOG},
    {"audit_entries", op_audit_entries, NULL, OPC_AUDITLOG},
    {"model_upload", hub__op_model_upload, NULL, OPC_BULKY},
    {"model_put", hub__op_model_put, NULL, OPC_ONCE}, /* audited as model:NAME */
    {"model_list", hub__op_model_list, NULL, 0},
    {"model_show", hub__op_model_show, NULL, 0},
    {"model_rm", hub__op_model_rm, NULL, OPC_ONCE},
    {"model_pool", hub__op_model_pool, NULL, OPC_ONCE},         /* audited as model:NAME */
    {"model_rollback", hub__op_model_rollback, NULL, OPC_ONCE}, /* audited as model:NAME */
    /* the HTTP API's tokens (api_auth.c): the secret is in the answer, so never kept for
     * a replay (not OPC_ONCE) */
    {"api_token_create", hub__op_api_token_create, "api-token", 0},
    {"api_token_list", hub__op_api_token_list, NULL, 0},
    {"api_token_revoke", hub__op_api_token_revoke, "api-token-revoked", 0},
    {"power_history", hub__op_power_history, NULL, 0},
};

static const op_command *find_command(const char *name)
{
    for (size_t i = 0; name && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* Runs the command named by the request, with its audit record when it succeeds. */
static int run_command(hub *h, const char *cmd, op_call *c)
{
    const op_command *command = find_command(cmd);
    if (!cmd) {
        snprintf(c->err, c->err_len, "request has no 'cmd'");
        return OP_EINVAL;
    }
    if (!command) {
        snprintf(c->err, c->err_len, "unknown command '%.32s'", cmd);
        return OP_EINVAL;
    }
    if ((command->flags & OPC_AUDITLOG) && !h->audit) {
        snprintf(c->err, c->err_len, "this hub keeps no audit log");
        return OP_EINVAL;
    }
    int rc = command->run(h, c);
    if (rc == OP_OK && command->audit_kind) {
        char subject[80];
        snprintf(subject, sizeof subject, "op:%s", c->op_id);
        hub__audit_record(h, command->audit_kind, subject, c->audit);
    } else {
        cJSON_Delete(c->audit);
    }
    c->audit = NULL;
    return rc;
}

cJSON *hub__op_dispatch(hub *h, const cJSON *req, const char *op_id)
{
    char err[512] = "";
    cJSON *resp = cJSON_CreateObject();
    op_call c = {.req = req,
                 .op_id = op_id,
                 .data = cJSON_CreateObject(),
                 .err = err,
                 .err_len = sizeof err};
    if (!resp || !c.data) {
        cJSON_Delete(resp);
        cJSON_Delete(c.data);
        return NULL;
    }
    int rc = run_command(h, jsonx_str(req, "cmd"), &c);
    const char *rid = jsonx_str(req, "rid");
    cJSON_AddStringToObject(resp, "rid", rid ? rid : "");
    cJSON_AddBoolToObject(resp, "ok", rc == OP_OK);
    if (rc != OP_OK) {
        cJSON_AddStringToObject(resp, "error", err[0] ? err : op_strerror(rc));
        jsonx_add_int(resp, "code", rc);
        cJSON_Delete(c.data);
    } else {
        cJSON_AddItemToObject(resp, "data", c.data);
    }
    return resp;
}

/* An error answer to a request that was not run. */
static cJSON *refusal(const cJSON *req, const char *error, int code)
{
    cJSON *resp = cJSON_CreateObject();
    if (!resp) return NULL;
    const char *rid = jsonx_str(req, "rid");
    cJSON_AddStringToObject(resp, "rid", rid ? rid : "");
    cJSON_AddBoolToObject(resp, "ok", 0);
    cJSON_AddStringToObject(resp, "error", error);
    jsonx_add_int(resp, "code", code);
    return resp;
}

/*
 * Runs an authenticated, fresh request: refused when over its command's
 * size, answered as before when it is a command that runs once and this
 * request was answered already, else dispatched (and its answer kept).
 */
static cJSON *answer_request(hub *h, const cJSON *req, const char *op_id, size_t len)
{
    const op_command *command = find_command(jsonx_str(req, "cmd"));
    const char *rid = jsonx_str(req, "rid");
    if (command && !(command->flags & OPC_BULKY) && len > PROTO_SMALL_BYTES) {
        char why[160];
        snprintf(why, sizeof why, "a %s request of %zu bytes is over the %d bytes it may have",
                 command->name, len, PROTO_SMALL_BYTES);
        h->msg.oversize++;
        return refusal(req, why, OP_ETOOBIG);
    }
    int once = command && (command->flags & OPC_ONCE) && rid && rid[0] && strlen(rid) <= 128 &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "once"));
    char digest[65] = "";
    cJSON *resp = once ? hub__answer_recall(h, op_id, rid, req, digest) : NULL;
    if (resp) return resp;
    resp = hub__op_dispatch(h, req, op_id);
    if (resp && once) hub__answer_keep(h, op_id, rid, digest, resp);
    return resp;
}

void hub__op_message(hub *h, const char *op_id, const char *topic, const void *payload, size_t len,
                     const char *kid, const char *sig)
{
    msg_header hdr;
    cJSON *req =
        hub__authenticate(h, op_id, topic, payload, len, kid, sig, hub__lookup_operator, &hdr);
    if (!req) return;
    hub_operator *op = hub__find_operator(h, op_id);
    if (op && hub__op_fresh(h, op, &hdr) == OP_OK) {
        op->link = h->msg_link; /* its answers and done notices go back there */
        cJSON *resp = answer_request(h, req, op_id, len);
        if (resp) hub__queue_reply(h, "op", op_id, "resp", resp, "resp", op->pk);
    }
    cJSON_Delete(req);
}
