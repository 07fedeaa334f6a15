/*
 * results: what sites report back. Results are idempotent by (job,
 * attempt): the first copy is recorded, and applied only if that attempt is
 * still the job's current one on that site (or it is the first success of
 * an earlier attempt: the first success wins). Every copy is acknowledged
 * so that the site's outbox drains. Also the checkpoints departing sites
 * hand back, and the jobs a site ran on its own (outpost submit --local).
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "core/outhash.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A result item as received. */
typedef struct incoming {
    int64_t job_id, attempt, exit_code, peak_rss_bytes, wall_ms;
    double cpu_seconds, energy_joules;
    const char *error;
    int success;
} incoming;

/* ---------- checkpoints ---------- */

/*
 * A checkpoint a departing site handed back with a job: kept (one per job,
 * the newest) and given to the next attempt as an input. Malformed ones are
 * dropped (counted): the job then starts again from the beginning.
 */
static int keep_checkpoint(hub *h, int64_t job_id, int64_t attempt, const cJSON *ck)
{
    if (!ck) return OP_OK;
    const char *name = jsonx_str(ck, "name"), *sha = jsonx_str(ck, "sha256");
    const char *data = jsonx_str(ck, "data_b64");
    if (!name || !sha || !data || strlen(sha) != 64 || !name[0] || name[0] == '.' ||
        strchr(name, '/') || strlen(name) >= 128 || strlen(data) > 2 * 1024 * 1024) {
        h->msg.malformed++;
        return OP_OK;
    }
    if (hub__check(h, hubdb_checkpoint_keep(h->db, job_id, attempt, name, sha, data)) != OP_OK)
        return OP_ESTORE;
    char detail[160];
    snprintf(detail, sizeof detail, "checkpoint %s (%zu bytes base64) kept for the next attempt",
             name, strlen(data));
    hub__job_event(h, job_id, attempt, NULL, "checkpoint", detail);
    return OP_OK;
}

void hub__attach_checkpoint(hub *h, int64_t job_id, cJSON *spec)
{
    cJSON *in = NULL;
    if (hubdb_checkpoint_input(h->db, job_id, &in) != OP_OK || !in) return;
    cJSON *inputs = cJSON_GetObjectItemCaseSensitive(spec, "inputs");
    if (!inputs) inputs = cJSON_AddArrayToObject(spec, "inputs");
    const char *name = jsonx_str(in, "name");
    for (int i = cJSON_GetArraySize(inputs) - 1; inputs && i >= 0; i--) {
        const char *n = jsonx_str(cJSON_GetArrayItem(inputs, i), "name");
        if (n && name && strcmp(n, name) == 0) cJSON_DeleteItemFromArray(inputs, i);
    }
    if (inputs)
        cJSON_AddItemToArray(inputs, in);
    else
        cJSON_Delete(in);
}

/* ---------- results ---------- */

int hub__finish(hub *h, int64_t job_id, int64_t attempt, const char *site_id, int state,
                const char *reason)
{
    if (hub__check(h, hubdb_job_finish(h->db, job_id, attempt, state, reason, os_now_ms())) !=
        OP_OK)
        return OP_ESTORE;
    hub__job_event(h, job_id, attempt, site_id, jobstate_name(state), reason);
    hub__notify_terminal(h, job_id, state);
    h->tx_counted.results_applied++;
    return state == JOB_SUCCEEDED ? hub__runtimes_learn(h, job_id, attempt, site_id) : OP_OK;
}

/* The item's fields; OP_EINVAL (counted as malformed) without a job and an attempt. */
static int parse_result(hub *h, const cJSON *item, incoming *r)
{
    memset(r, 0, sizeof *r);
    r->exit_code = -1;
    if (jsonx_int(item, "job", 1, INT64_MAX, &r->job_id) != OP_OK ||
        jsonx_int(item, "attempt", 1, INT64_MAX, &r->attempt) != OP_OK) {
        h->msg.malformed++;
        return OP_EINVAL;
    }
    jsonx_int(item, "exit_code", -1, 255, &r->exit_code);
    jsonx_int(item, "peak_rss_bytes", 0, INT64_MAX, &r->peak_rss_bytes);
    jsonx_int(item, "wall_ms", 0, INT64_MAX, &r->wall_ms);
    jsonx_num(item, "cpu_seconds", &r->cpu_seconds);
    jsonx_num(item, "energy_joules", &r->energy_joules);
    r->error = jsonx_str(item, "error");
    r->success = r->exit_code == 0 && !r->error;
    return OP_OK;
}

/*
 * Records the first copy of a result with its output hash (what replicas of
 * a job are compared by); *fresh 0 for a copy already recorded. A result
 * whose outputs are malformed (a stated hash that is not its data's) is
 * recorded without a hash: it can agree with no other.
 */
static int record_result(hub *h, hub_site *s, const cJSON *item, const incoming *r, int *fresh)
{
    *fresh = 0;
    char *text = cJSON_PrintUnformatted(item);
    if (!text) return OP_OK;
    char output_hash[65];
    int hashed = outhash_result(item, output_hash) == OP_OK;
    if (!hashed)
        log_warn("hub", "job %lld attempt %lld from %s: outputs malformed, no output hash",
                 (long long)r->job_id, (long long)r->attempt, s->id);
    hubdb_result row = {.job_id = r->job_id,
                        .attempt = r->attempt,
                        .site = s->id,
                        .received_at = os_now_ms(),
                        .exit_code = r->exit_code,
                        .cpu_seconds = r->cpu_seconds,
                        .peak_rss_bytes = r->peak_rss_bytes,
                        .wall_ms = r->wall_ms,
                        .energy_joules = r->energy_joules,
                        .body = text,
                        .output_hash = hashed ? output_hash : NULL};
    int rc = hub__check(h, hubdb_result_record(h->db, &row, fresh));
    free(text);
    return rc;
}

/* The first success wins: the earlier attempt's result applies, the current one is stopped. */
static int apply_earlier_success(hub *h, hub_site *s, const incoming *r, const hubdb_job *job)
{
    int next;
    if (jobstate_next(job->state, job->attempt, job->max_attempts, JOB_EV_EARLIER_OK, &next) !=
        OP_OK)
        return OP_OK;
    hub_site *cur = job->site[0] ? hub__find_site(h, job->site) : NULL;
    if (cur && (job->state == JOB_PLACED || job->state == JOB_RUNNING)) {
        hub__send_cancel(h, cur, r->job_id, job->attempt, "an earlier attempt finished first");
        hub__release(h, cur->id, job->cores, job->memory_mb);
    }
    char reason[160];
    snprintf(reason, sizeof reason, "exit code 0 (attempt %lld on %s finished first)",
             (long long)r->attempt, s->id);
    return hub__finish(h, r->job_id, r->attempt, s->id, next, reason);
}

static void note_stale(hub *h, hub_site *s, const incoming *r, const hubdb_job *job)
{
    h->tx_counted.results_stale++;
    char detail[200];
    snprintf(detail, sizeof detail,
             "late result from %s for attempt %lld (current attempt %lld, %s): recorded,"
             " not applied",
             s->id, (long long)r->attempt, (long long)job->attempt, jobstate_name(job->state));
    log_info("hub", "job %lld: %s", (long long)r->job_id, detail);
    hub__job_event(h, r->job_id, r->attempt, s->id, "stale-result", detail);
}

/* The site could not run it (e.g. its sandbox failed, or it left). */
int hub__hand_back(hub *h, hub_site *s, const cJSON *item, int64_t job_id, int64_t attempt,
                   const char *error)
{
    if (keep_checkpoint(h, job_id, attempt, cJSON_GetObjectItemCaseSensitive(item, "checkpoint")) !=
        OP_OK)
        return OP_ESTORE;
    char why[300];
    snprintf(why, sizeof why, "%s could not run it: %.200s", s->id, error);
    /*
     * Tried elsewhere, not there again; but site-private work has nowhere
     * else to go: excluding its origin would fail it for a passing error.
     */
    hubdb_job job;
    int only_there = hubdb_job_get(h->db, job_id, &job) == OP_OK && job.site_private;
    hub__requeue(h, job_id, why, !only_there, 1);
    return OP_OK;
}

/*
 * Whether the attempt was placed on s: a site answers only for its own
 * attempts. Without this check a site could record a result under another
 * site's attempt (the first copy of (job, attempt) is the one kept) or
 * finish any unfinished job as "an earlier attempt". The job's current
 * attempt answers it from the row already read; only an earlier attempt's
 * result costs a look at the job's history.
 */
static int answers_own_attempt(hub *h, hub_site *s, const incoming *r, const hubdb_job *job,
                               int *own)
{
    *own = job->attempt == r->attempt && strcmp(job->site, s->id) == 0;
    if (!*own &&
        hub__check(h, hubdb_attempt_was_on(h->db, r->job_id, r->attempt, s->id, own)) != OP_OK)
        return OP_ESTORE;
    if (!*own) {
        h->tx_counted.results_stale++;
        log_warn("hub",
                 "result from %s for job %lld attempt %lld, which was not placed there:"
                 " dropped",
                 s->id, (long long)r->job_id, (long long)r->attempt);
    }
    return OP_OK;
}

/* The current attempt's result: succeeded or failed, as the state machine says. */
static int apply_current(hub *h, hub_site *s, const incoming *r, const hubdb_job *job, int local)
{
    int next;
    if (jobstate_next(job->state, job->attempt, job->attempt,
                      r->success ? JOB_EV_RESULT_OK : JOB_EV_RESULT_FAIL, &next) != OP_OK)
        return OP_OK;
    char reason[300];
    if (r->error)
        snprintf(reason, sizeof reason, "%.250s", r->error);
    else
        snprintf(reason, sizeof reason, "exit code %lld", (long long)r->exit_code);
    if (!local)
        hub__release(h, s->id, job->cores, job->memory_mb); /* a local job reserved nothing */
    return hub__finish(h, r->job_id, r->attempt, s->id, next, reason);
}

int hub__apply_result(hub *h, hub_site *s, const cJSON *item, int local)
{
    incoming r;
    if (parse_result(h, item, &r) != OP_OK) return OP_OK;
    cJSON *ack = local ? NULL : cJSON_CreateObject(); /* local ones are acknowledged by id */
    if (ack) {
        jsonx_add_int(ack, "job", r.job_id);
        jsonx_add_int(ack, "attempt", r.attempt);
        hub__site_batch(h, s, &s->acks, ack);
    }
    hubdb_job job;
    int rc = hubdb_job_get(h->db, r.job_id, &job);
    if (rc == OP_ENOTFOUND) {
        h->tx_counted.results_stale++;
        log_warn("hub", "result from %s for unknown job %lld: dropped", s->id, (long long)r.job_id);
        return OP_OK;
    }
    if (rc != OP_OK) return OP_ESTORE;
    int own = 1, fresh;
    if (!local && answers_own_attempt(h, s, &r, &job, &own) != OP_OK) return OP_ESTORE;
    if (!own) return OP_OK;
    if (record_result(h, s, item, &r, &fresh) != OP_OK) return OP_ESTORE;
    if (!fresh) {
        h->tx_counted.results_duplicate++;
        log_debug("hub", "duplicate result for job %lld attempt %lld from %s", (long long)r.job_id,
                  (long long)r.attempt, s->id);
        return OP_OK;
    }
    int live = jobstate_result_applies(job.state, job.attempt, job.site, r.attempt, s->id);
    if (!local && job.verify_wanted >= 2 && !jobstate_terminal(job.state))
        return hub__verify_result(h, s, item, r.attempt, &job, r.job_id, live, r.error);
    if (!live && !local &&
        jobstate_earlier_success_wins(job.state, job.attempt, r.attempt, r.success))
        return apply_earlier_success(h, s, &r, &job);
    if (!live) {
        note_stale(h, s, &r, &job);
        return OP_OK;
    }
    if (r.error && jsonx_str(item, "retryable"))
        return hub__hand_back(h, s, item, r.job_id, r.attempt, r.error);
    if (r.success && hub__pooling_learned(h, s, item, r.job_id) != OP_OK) return OP_ESTORE;
    return apply_current(h, s, &r, &job, local);
}

/* ---------- jobs a site ran on its own ---------- */

/* The job row of a local job: placed on its site and started there, one attempt. */
static int record_local_job(hub *h, hub_site *s, const cJSON *spec_json, const jobspec *spec,
                            int64_t *job_id)
{
    int placed, running;
    if (jobstate_next(JOB_QUEUED, 0, 1, JOB_EV_PLACE, &placed) != OP_OK ||
        jobstate_next(placed, 1, 1, JOB_EV_START, &running) != OP_OK)
        return OP_EINVAL;
    char *text = cJSON_PrintUnformatted(spec_json);
    if (!text) return OP_ESTORE;
    char by[96];
    snprintf(by, sizeof by, "local:%s", s->id);
    int64_t now = os_now_ms();
    hubdb_new_job row = {.name = spec->name[0] ? spec->name : NULL,
                         .kind = jobspec_kind_name(spec->kind),
                         .spec_json = text,
                         .state = running,
                         .attempt = 1,
                         .site = s->id,
                         .cores = spec->cores,
                         .memory_mb = spec->memory_mb,
                         .class_mask = spec->class_mask,
                         .origin = spec->origin[0] ? spec->origin : s->id,
                         .site_private = spec->data_class == DATA_SITE_PRIVATE,
                         .max_attempts = 1,
                         .submitted_by = by,
                         .submitted_at = now,
                         .placed_at = now,
                         .program = spec->argc > 0 ? spec->argv[0] : NULL,
                         .data_class = spec->data_class,
                         .expected_ms = spec->expected_s * 1000,
                         .may_defer = spec->deferrable,
                         .deterministic = jobspec_deterministic(spec)};
    int rc = hub__check(h, hubdb_job_insert(h->db, &row, job_id));
    free(text);
    return rc;
}

/* The local job's result, renumbered as attempt 1 of its hub job, applied like any other. */
static int apply_local_result(hub *h, hub_site *s, const cJSON *result, int64_t job_id)
{
    cJSON *copy = cJSON_Duplicate(result, 1);
    if (!copy) return OP_ENOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "job");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "attempt");
    jsonx_add_int(copy, "job", job_id);
    jsonx_add_int(copy, "attempt", 1);
    int rc = hub__apply_result(h, s, copy, 1);
    cJSON_Delete(copy);
    return rc;
}

/*
 * A job a site ran on its own (outpost submit --local), reported with its
 * spec and result, maybe long after: recorded once per (site, local id) as a
 * job that ran there, then its result applied like any other. Every copy is
 * acknowledged so the site's outbox drains.
 */
int hub__apply_local(hub *h, hub_site *s, const cJSON *item)
{
    int64_t local_id;
    const cJSON *spec_json = cJSON_GetObjectItemCaseSensitive(item, "spec");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(item, "result");
    if (jsonx_int(item, "local_id", 1, INT64_MAX, &local_id) != OP_OK || !spec_json ||
        !cJSON_IsObject(result)) {
        h->msg.malformed++;
        return OP_OK;
    }
    cJSON *ack = cJSON_CreateObject();
    if (ack) {
        jsonx_add_int(ack, "local", local_id);
        hub__site_batch(h, s, &s->acks, ack);
    }
    int known;
    if (hub__check(h, hubdb_local_known(h->db, s->id, local_id, &known)) != OP_OK) return OP_ESTORE;
    if (known) {
        h->tx_counted.results_duplicate++;
        return OP_OK;
    }
    jobspec spec;
    char why[256];
    if (jobspec_from_json(spec_json, &spec, why, sizeof why) != OP_OK) {
        h->msg.malformed++;
        log_warn("hub", "local job %lld of %s has a bad spec (%s): acknowledged, not recorded",
                 (long long)local_id, s->id, why);
        return OP_OK;
    }
    int64_t job_id;
    int rc = record_local_job(h, s, spec_json, &spec, &job_id);
    jobspec_clear(&spec);
    if (rc != OP_OK || hub__check(h, hubdb_local_map(h->db, s->id, local_id, job_id)) != OP_OK)
        return OP_ESTORE;
    char detail[96];
    snprintf(detail, sizeof detail, "submitted on %s as local job %lld", s->id,
             (long long)local_id);
    hub__job_event(h, job_id, 1, s->id, "local", detail);
    rc = apply_local_result(h, s, result, job_id);
    h->tx_counted.jobs_submitted++;
    return rc;
}

void hub__handle_results(hub *h, hub_site *s, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "results"))
    {
        if (hub__apply_result(h, s, item, 0) != OP_OK) return;
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "locals"))
    {
        if (hub__apply_local(h, s, item) != OP_OK) return;
    }
}
