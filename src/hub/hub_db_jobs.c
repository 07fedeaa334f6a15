/*
 * hub_db_jobs: the half of the hub's data layer that holds the work: jobs
 * (placement, leases, state changes, events), results, checkpoints, the map
 * of jobs sites took in locally, and the operator's read-only views of them
 * (job lists, counts, one job's details, audit entries). Same interface as
 * the rest of hub_db (hub_db.h); the file, the schema and its migrations,
 * sites, tokens and operators' nonces live in hub_db.c.
 */
#include "hub/hub_db.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "core/jobstate.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- helpers ---------- */

/* Binds a state by the name the state machine gives it. */
static void bind_state(store_q *st, int idx, int state)
{
    store_q_bind_text(st, idx, jobstate_name(state));
}

/* Binds 0 as SQL NULL (a time that has not happened). */
static void bind_time(store_q *st, int idx, int64_t ms)
{
    if (ms)
        store_q_bind_int64(st, idx, ms);
    else
        store_q_bind_null(st, idx);
}

/* Steps a changing statement; *changed (when asked) gets the rows it changed. */
static int step_changed(hubdb *db, store_q *st, int *changed)
{
    int rc = store_q_run(st);
    if (changed) *changed = rc == OP_OK ? store_changes(db->st) : 0;
    return rc;
}

/* Collects the first column of up to max rows as ids. */
static int collect_ids(store_q *st, int64_t *ids, int max, int *n)
{
    *n = 0;
    while (*n < max && store_q_step(st) == STORE_ROW)
        ids[(*n)++] = store_q_int64(st, 0);
    store_q_reset(st);
    return OP_OK;
}

/* ---------- jobs ---------- */

int hubdb_job_get(hubdb *db, int64_t job_id, hubdb_job *out)
{
    store_q *st = store_prepare(db->st, "SELECT attempt, max_attempts, state, site, cores,"
                                        " memory_mb, excluded, verify_wanted, verify_owners,"
                                        " site_private FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    if (store_q_step(st) != STORE_ROW) {
        store_q_reset(st);
        return OP_ENOTFOUND;
    }
    out->attempt = store_q_int64(st, 0);
    out->max_attempts = store_q_int64(st, 1);
    out->state = jobstate_parse(store_q_text(st, 2));
    snprintf(out->site, sizeof out->site, "%s", store_q_text(st, 3));
    out->cores = store_q_int(st, 4);
    out->memory_mb = store_q_int64(st, 5);
    snprintf(out->excluded, sizeof out->excluded, "%s", store_q_text(st, 6));
    out->verify_wanted = store_q_int64(st, 7);
    snprintf(out->verify_owners, sizeof out->verify_owners, "%s", store_q_text(st, 8));
    out->site_private = store_q_int(st, 9);
    store_q_reset(st);
    return OP_OK;
}

int hubdb_job_spec(hubdb *db, int64_t job_id, char kind[16], char **spec)
{
    store_q *st = store_prepare(db->st, "SELECT kind, spec FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    int rc = store_q_step(st) == STORE_ROW ? OP_OK : OP_ENOTFOUND;
    if (rc == OP_OK) {
        snprintf(kind, 16, "%s", store_q_text(st, 0));
        *spec = strdup(store_q_text(st, 1));
        if (!*spec) rc = OP_ENOMEM;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_job_insert(hubdb *db, const hubdb_new_job *j, int64_t *job_id)
{
    store_q *st = store_prepare(db->st, "INSERT INTO jobs(name, kind, spec, state, attempt,"
                                        " site, cores, memory_mb, class_mask, origin,"
                                        " site_private, max_attempts, submitted_by,"
                                        " submitted_at, placed_at, notify, awaiting_approval,"
                                        " program, data_class, expected_ms, deadline_at,"
                                        " may_defer, deterministic, model, model_sha)"
                                        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                                        "?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, j->name);
    store_q_bind_text(st, 2, j->kind);
    store_q_bind_text(st, 3, j->spec_json);
    bind_state(st, 4, j->state);
    store_q_bind_int64(st, 5, j->attempt);
    store_q_bind_text(st, 6, j->site);
    store_q_bind_int(st, 7, j->cores);
    store_q_bind_int64(st, 8, j->memory_mb);
    store_q_bind_int(st, 9, (int)j->class_mask);
    store_q_bind_text(st, 10, j->origin);
    store_q_bind_int(st, 11, j->site_private);
    store_q_bind_int(st, 12, j->max_attempts);
    store_q_bind_text(st, 13, j->submitted_by);
    store_q_bind_int64(st, 14, j->submitted_at);
    bind_time(st, 15, j->placed_at);
    store_q_bind_text(st, 16, j->notify);
    store_q_bind_int(st, 17, j->awaiting_approval);
    store_q_bind_text(st, 18, j->program);
    store_q_bind_int(st, 19, j->data_class);
    store_q_bind_int64(st, 20, j->expected_ms);
    store_q_bind_int64(st, 21, j->deadline_at);
    store_q_bind_int(st, 22, j->may_defer);
    store_q_bind_int(st, 23, j->deterministic);
    store_q_bind_text(st, 24, j->model ? j->model : "");
    store_q_bind_text(st, 25, j->model_sha ? j->model_sha : "");
    int rc = store_q_run(st);
    if (rc == OP_OK) *job_id = store_last_rowid(db->st);
    return rc;
}

int hubdb_job_set_reason(hubdb *db, int64_t job_id, const char *reason)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET reason=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, reason);
    store_q_bind_int64(st, 2, job_id);
    return store_q_run(st);
}

int hubdb_jobs_count(hubdb *db, int state, int64_t *count)
{
    store_q *st = store_prepare(db->st, "SELECT COUNT(*) FROM jobs WHERE state=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    *count = store_q_step(st) == STORE_ROW ? store_q_int64(st, 0) : 0;
    store_q_reset(st);
    return OP_OK;
}

int hubdb_jobs_any(hubdb *db, int state, int *any)
{
    store_q *st = store_prepare(db->st, "SELECT 1 FROM jobs WHERE state=? LIMIT 1");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    int rc = store_q_step(st);
    *any = rc == STORE_ROW;
    store_q_reset(st);
    return rc == STORE_ROW || rc == STORE_DONE ? OP_OK : OP_ESTORE;
}

int hubdb_jobs_queued(hubdb *db, int limit, int (*fn)(void *ctx, const hubdb_queued *job),
                      void *ctx)
{
    store_q *sel = store_prepare(db->st, "SELECT id, attempt, cores, memory_mb, class_mask,"
                                         " origin, site_private, excluded, spec, explanation,"
                                         " kind, program, data_class, expected_ms,"
                                         " deadline_at, may_defer, max_attempts,"
                                         " deterministic, verify_wanted, verify_class,"
                                         " verify_owners, model, model_sha FROM jobs"
                                         " WHERE state='queued' AND"
                                         " awaiting_approval=0 ORDER BY id LIMIT ?");
    if (!sel) return OP_ESTORE;
    store_q_bind_int(sel, 1, limit);
    while (store_q_step(sel) == STORE_ROW) {
        hubdb_queued q = {.id = store_q_int64(sel, 0),
                          .attempt = store_q_int64(sel, 1),
                          .cores = store_q_int(sel, 2),
                          .memory_mb = store_q_int64(sel, 3),
                          .class_mask = (unsigned)store_q_int(sel, 4),
                          .origin = store_q_text(sel, 5),
                          .site_private = store_q_int(sel, 6),
                          .excluded = store_q_text(sel, 7),
                          .spec_json = store_q_text(sel, 8),
                          .explanation = store_q_text(sel, 9),
                          .kind = store_q_text(sel, 10),
                          .program = store_q_text(sel, 11),
                          .data_class = store_q_int(sel, 12),
                          .expected_ms = store_q_int64(sel, 13),
                          .deadline_at = store_q_int64(sel, 14),
                          .may_defer = store_q_int(sel, 15),
                          .max_attempts = store_q_int64(sel, 16),
                          .deterministic = store_q_int(sel, 17),
                          .verify_wanted = store_q_int64(sel, 18),
                          .verify_class = (unsigned)store_q_int(sel, 19),
                          .verify_owners = store_q_text(sel, 20),
                          .model = store_q_text(sel, 21),
                          .model_sha = store_q_text(sel, 22)};
        if (fn(ctx, &q)) break;
    }
    store_q_reset(sel);
    return OP_OK;
}

int hubdb_job_place(hubdb *db, int64_t job_id, int state, int64_t attempt, const char *site,
                    int64_t now_ms, int64_t lease_expires_ms, const char *explanation)
{
    store_q *up = store_prepare(db->st, "UPDATE jobs SET state=?, attempt=?, site=?,"
                                        " placed_at=?, lease_expires_at=?, explanation=?,"
                                        " reason=NULL WHERE id=?");
    if (!up) return OP_ESTORE;
    bind_state(up, 1, state);
    store_q_bind_int64(up, 2, attempt);
    store_q_bind_text(up, 3, site);
    store_q_bind_int64(up, 4, now_ms);
    store_q_bind_int64(up, 5, lease_expires_ms);
    store_q_bind_text(up, 6, explanation);
    store_q_bind_int64(up, 7, job_id);
    return store_q_run(up);
}

int hubdb_job_fail_unplaced(hubdb *db, int64_t job_id, int state, const char *reason,
                            const char *explanation, int64_t now_ms)
{
    store_q *up = store_prepare(db->st, "UPDATE jobs SET state=?, reason=?, explanation=?,"
                                        " finished_at=? WHERE id=?");
    if (!up) return OP_ESTORE;
    bind_state(up, 1, state);
    store_q_bind_text(up, 2, reason);
    store_q_bind_text(up, 3, explanation);
    store_q_bind_int64(up, 4, now_ms);
    store_q_bind_int64(up, 5, job_id);
    return store_q_run(up);
}

int hubdb_job_explain(hubdb *db, int64_t job_id, const char *explanation)
{
    store_q *up = store_prepare(db->st, "UPDATE jobs SET explanation=? WHERE id=?");
    if (!up) return OP_ESTORE;
    store_q_bind_text(up, 1, explanation);
    store_q_bind_int64(up, 2, job_id);
    return store_q_run(up);
}

int hubdb_job_more_attempts(hubdb *db, int64_t job_id, int64_t n)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET max_attempts=max_attempts+? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, n);
    store_q_bind_int64(st, 2, job_id);
    return store_q_run(st);
}

int hubdb_job_requeue(hubdb *db, int64_t job_id, int state, const char *reason,
                      const char *excluded, int64_t finished_ms)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET state=?, reason=?, excluded=?,"
                                        " lease_expires_at=NULL, finished_at=? WHERE id=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    store_q_bind_text(st, 2, reason);
    store_q_bind_text(st, 3, excluded);
    bind_time(st, 4, finished_ms);
    store_q_bind_int64(st, 5, job_id);
    return store_q_run(st);
}

int hubdb_job_start(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int from, int to,
                    int64_t now_ms, int *changed)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET state=?, started_at=? WHERE id=? AND"
                                        " attempt=? AND site=? AND state=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, to);
    store_q_bind_int64(st, 2, now_ms);
    store_q_bind_int64(st, 3, job_id);
    store_q_bind_int64(st, 4, attempt);
    store_q_bind_text(st, 5, site);
    bind_state(st, 6, from);
    return step_changed(db, st, changed);
}

int hubdb_job_is_current(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int *current)
{
    store_q *st = store_prepare(db->st, "SELECT 1 FROM jobs WHERE id=? AND attempt=?"
                                        " AND site=? AND state IN ('placed','running')");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    store_q_bind_int64(st, 2, attempt);
    store_q_bind_text(st, 3, site);
    *current = store_q_step(st) == STORE_ROW;
    store_q_reset(st);
    return OP_OK;
}

int hubdb_job_renew_lease(hubdb *db, int64_t job_id, int64_t attempt, const char *site,
                          int64_t until_ms, int *changed)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET lease_expires_at=? WHERE id=? AND"
                                        " attempt=? AND site=? AND state IN"
                                        " ('placed','running')");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, until_ms);
    store_q_bind_int64(st, 2, job_id);
    store_q_bind_int64(st, 3, attempt);
    store_q_bind_text(st, 4, site);
    return step_changed(db, st, changed);
}

int hubdb_leases_renew_all(hubdb *db, int64_t until_ms)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET lease_expires_at=? WHERE state IN"
                                        " ('placed','running')");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, until_ms);
    return store_q_run(st);
}

int hubdb_job_finish(hubdb *db, int64_t job_id, int64_t attempt, int state, const char *reason,
                     int64_t now_ms)
{
    store_q *up = store_prepare(db->st, "UPDATE jobs SET state=?, finished_at=?, reason=?,"
                                        " lease_expires_at=NULL WHERE id=?");
    store_q *ap = store_prepare(db->st, "UPDATE results SET applied=1 WHERE job_id=? AND"
                                        " attempt=?");
    if (!up || !ap) return OP_ESTORE;
    bind_state(up, 1, state);
    store_q_bind_int64(up, 2, now_ms);
    store_q_bind_text(up, 3, reason);
    store_q_bind_int64(up, 4, job_id);
    if (store_q_run(up) != OP_OK) return OP_ESTORE;
    store_q_bind_int64(ap, 1, job_id);
    store_q_bind_int64(ap, 2, attempt);
    return store_q_run(ap);
}

int hubdb_job_cancel(hubdb *db, int64_t job_id, int state, const char *reason, int64_t now_ms)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET state=?, finished_at=?, reason=?,"
                                        " lease_expires_at=NULL WHERE id=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    store_q_bind_int64(st, 2, now_ms);
    store_q_bind_text(st, 3, reason);
    store_q_bind_int64(st, 4, job_id);
    return store_q_run(st);
}

int hubdb_job_approve(hubdb *db, int64_t job_id, int *changed)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET awaiting_approval=0, reason=NULL WHERE"
                                        " id=? AND awaiting_approval=1 AND state='queued'");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    return step_changed(db, st, changed);
}

int hubdb_job_notify_target(hubdb *db, int64_t job_id, char op_id[64])
{
    store_q *st = store_prepare(db->st, "SELECT notify FROM jobs WHERE id=? AND notify IS NOT"
                                        " NULL");
    op_id[0] = '\0';
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    if (store_q_step(st) == STORE_ROW) snprintf(op_id, 64, "%s", store_q_text(st, 0));
    store_q_reset(st);
    return OP_OK;
}

int hubdb_jobs_on_site(hubdb *db, const char *site, int64_t *ids, int max, int *n)
{
    store_q *st = store_prepare(db->st, "SELECT id FROM jobs WHERE site=? AND state IN"
                                        " ('placed','running') LIMIT ?");
    *n = 0;
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, site);
    store_q_bind_int(st, 2, max);
    return collect_ids(st, ids, max, n);
}

int hubdb_jobs_lease_expired(hubdb *db, int64_t now_ms, int64_t *ids, int max, int *n)
{
    store_q *st = store_prepare(db->st, "SELECT id FROM jobs WHERE state IN"
                                        " ('placed','running') AND lease_expires_at < ? LIMIT ?");
    *n = 0;
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, now_ms);
    store_q_bind_int(st, 2, max);
    return collect_ids(st, ids, max, n);
}

int hubdb_job_event(hubdb *db, int64_t job_id, int64_t ts_ms, int64_t attempt, const char *site,
                    const char *event, const char *detail)
{
    store_q *st = store_prepare(db->st, "INSERT INTO job_events(job_id, ts, attempt, site,"
                                        " event, detail) VALUES(?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    store_q_bind_int64(st, 2, ts_ms);
    store_q_bind_int64(st, 3, attempt);
    store_q_bind_text(st, 4, site);
    store_q_bind_text(st, 5, event);
    store_q_bind_text(st, 6, detail);
    return store_q_run(st);
}

/* ---------- results, checkpoints, local jobs ---------- */

int hubdb_result_record(hubdb *db, const hubdb_result *r, int *inserted)
{
    store_q *ins = store_prepare(db->st, "INSERT OR IGNORE INTO results(job_id, attempt,"
                                         " site, received_at, applied, exit_code,"
                                         " cpu_seconds, peak_rss_bytes, wall_ms,"
                                         " energy_joules, body, output_hash)"
                                         " VALUES(?,?,?,?,0,?,?,?,?,?,?,?)");
    *inserted = 0;
    if (!ins) return OP_ESTORE;
    store_q_bind_int64(ins, 1, r->job_id);
    store_q_bind_int64(ins, 2, r->attempt);
    store_q_bind_text(ins, 3, r->site);
    store_q_bind_int64(ins, 4, r->received_at);
    store_q_bind_int64(ins, 5, r->exit_code);
    store_q_bind_double(ins, 6, r->cpu_seconds);
    store_q_bind_int64(ins, 7, r->peak_rss_bytes);
    store_q_bind_int64(ins, 8, r->wall_ms);
    store_q_bind_double(ins, 9, r->energy_joules);
    store_q_bind_text(ins, 10, r->body);
    store_q_bind_text(ins, 11, r->output_hash);
    return step_changed(db, ins, inserted);
}

int hubdb_checkpoint_keep(hubdb *db, int64_t job_id, int64_t attempt, const char *name,
                          const char *sha256, const char *data_b64)
{
    store_q *st = store_prepare(db->st, "INSERT OR REPLACE INTO checkpoints(job_id, attempt,"
                                        " name, sha256, data_b64) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    store_q_bind_int64(st, 2, attempt);
    store_q_bind_text(st, 3, name);
    store_q_bind_text(st, 4, sha256);
    store_q_bind_text(st, 5, data_b64);
    return store_q_run(st);
}

int hubdb_checkpoint_input(hubdb *db, int64_t job_id, cJSON **input)
{
    store_q *st = store_prepare(db->st, "SELECT name, sha256, data_b64 FROM checkpoints WHERE"
                                        " job_id=?");
    *input = NULL;
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    int rc = OP_OK;
    if (store_q_step(st) == STORE_ROW) {
        cJSON *in = cJSON_CreateObject();
        if (in) {
            cJSON_AddStringToObject(in, "name", store_q_text(st, 0));
            cJSON_AddStringToObject(in, "sha256", store_q_text(st, 1));
            cJSON_AddStringToObject(in, "data_b64", store_q_text(st, 2));
        }
        *input = in;
        rc = in ? OP_OK : OP_ENOMEM;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_local_known(hubdb *db, const char *site, int64_t local_id, int *known)
{
    store_q *st = store_prepare(db->st, "SELECT job_id FROM local_jobs WHERE site=? AND"
                                        " local_id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, site);
    store_q_bind_int64(st, 2, local_id);
    *known = store_q_step(st) == STORE_ROW;
    store_q_reset(st);
    return OP_OK;
}

int hubdb_local_map(hubdb *db, const char *site, int64_t local_id, int64_t job_id)
{
    store_q *map = store_prepare(db->st, "INSERT INTO local_jobs(site, local_id, job_id)"
                                         " VALUES(?,?,?)");
    if (!map) return OP_ESTORE;
    store_q_bind_text(map, 1, site);
    store_q_bind_int64(map, 2, local_id);
    store_q_bind_int64(map, 3, job_id);
    return store_q_run(map);
}

/* ---------- operator views ---------- */

/* Columns: id, name, kind, state, attempt, site, submitted_at, finished_at, reason. */
static cJSON *job_summary(store_q *st)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    jsonx_add_int(j, "id", store_q_int64(st, 0));
    cJSON_AddStringToObject(j, "name", store_q_text(st, 1));
    cJSON_AddStringToObject(j, "kind", store_q_text(st, 2));
    cJSON_AddStringToObject(j, "state", store_q_text(st, 3));
    jsonx_add_int(j, "attempt", store_q_int64(st, 4));
    cJSON_AddStringToObject(j, "site", store_q_text(st, 5));
    jsonx_add_int(j, "submitted_at", store_q_int64(st, 6));
    jsonx_add_int(j, "finished_at", store_q_int64(st, 7));
    cJSON_AddStringToObject(j, "reason", store_q_text(st, 8));
    return j;
}

int hubdb_jobs_list(hubdb *db, const char *state, int64_t limit, cJSON *arr)
{
    store_q *st =
        state
            ? store_prepare(db->st, "SELECT id, name, kind, state, attempt, site, submitted_at,"
                                    " finished_at, reason FROM jobs WHERE state=? ORDER BY id DESC"
                                    " LIMIT ?")
            : store_prepare(db->st, "SELECT id, name, kind, state, attempt, site, submitted_at,"
                                    " finished_at, reason FROM jobs WHERE ?1 IS NULL ORDER BY id"
                                    " DESC LIMIT ?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, state);
    store_q_bind_int64(st, 2, limit);
    while (arr && store_q_step(st) == STORE_ROW)
        cJSON_AddItemToArray(arr, job_summary(st));
    store_q_reset(st);
    return OP_OK;
}

int hubdb_jobs_counts(hubdb *db, cJSON *counts)
{
    store_q *st = store_prepare(db->st, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
    if (!st) return OP_ESTORE;
    while (counts && store_q_step(st) == STORE_ROW)
        jsonx_add_int(counts, store_q_text(st, 0), store_q_int64(st, 1));
    store_q_reset(st);
    return OP_OK;
}

int hubdb_jobs_per_site(hubdb *db, cJSON *per_site)
{
    store_q *st = store_prepare(db->st, "SELECT IFNULL(site,''), state, COUNT(*) FROM jobs"
                                        " GROUP BY site, state");
    if (!st) return OP_ESTORE;
    while (per_site && store_q_step(st) == STORE_ROW) {
        const char *site = store_q_text(st, 0);
        cJSON *o = cJSON_GetObjectItemCaseSensitive(per_site, site);
        if (!o) o = cJSON_AddObjectToObject(per_site, site);
        if (o) jsonx_add_int(o, store_q_text(st, 1), store_q_int64(st, 2));
    }
    store_q_reset(st);
    return OP_OK;
}

int hubdb_results_totals(hubdb *db, cJSON *data)
{
    store_q *st = store_prepare(db->st, "SELECT COUNT(*), IFNULL(SUM(cpu_seconds),0),"
                                        " IFNULL(SUM(energy_joules),0) FROM results WHERE"
                                        " applied=1");
    if (!st) return OP_ESTORE;
    if (store_q_step(st) == STORE_ROW) {
        jsonx_add_int(data, "applied_results", store_q_int64(st, 0));
        cJSON_AddNumberToObject(data, "cpu_seconds", store_q_double(st, 1));
        cJSON_AddNumberToObject(data, "energy_joules", store_q_double(st, 2));
    }
    store_q_reset(st);
    return OP_OK;
}

/* The job's row: the summary and the details `outpost job` shows. OP_ENOTFOUND. */
static int job_row(hubdb *db, int64_t job_id, cJSON *data)
{
    store_q *st = store_prepare(db->st, "SELECT id, name, kind, state, attempt, site,"
                                        " submitted_at, finished_at, reason, explanation,"
                                        " placed_at, started_at, lease_expires_at, cores,"
                                        " memory_mb, max_attempts, submitted_by, excluded,"
                                        " model, model_sha FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    if (store_q_step(st) != STORE_ROW) {
        store_q_reset(st);
        return OP_ENOTFOUND;
    }
    cJSON *job = job_summary(st);
    if (job) {
        cJSON_AddStringToObject(job, "explanation", store_q_text(st, 9));
        jsonx_add_int(job, "placed_at", store_q_int64(st, 10));
        jsonx_add_int(job, "started_at", store_q_int64(st, 11));
        jsonx_add_int(job, "lease_expires_at", store_q_int64(st, 12));
        jsonx_add_int(job, "cores", store_q_int64(st, 13));
        jsonx_add_int(job, "memory_mb", store_q_int64(st, 14));
        jsonx_add_int(job, "max_attempts", store_q_int64(st, 15));
        cJSON_AddStringToObject(job, "submitted_by", store_q_text(st, 16));
        cJSON_AddStringToObject(job, "excluded", store_q_text(st, 17));
        if (store_q_text(st, 18)[0]) { /* the model it reads, as resolved at submission */
            cJSON_AddStringToObject(job, "model", store_q_text(st, 18));
            cJSON_AddStringToObject(job, "model_sha256", store_q_text(st, 19));
        }
        cJSON_AddItemToObject(data, "job", job);
    }
    store_q_reset(st);
    return OP_OK;
}

static int job_events(hubdb *db, int64_t job_id, cJSON *events)
{
    store_q *st = store_prepare(db->st, "SELECT ts, attempt, site, event, detail FROM"
                                        " job_events WHERE job_id=? ORDER BY rowid LIMIT 200");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    while (events && store_q_step(st) == STORE_ROW) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        jsonx_add_int(e, "ts", store_q_int64(st, 0));
        jsonx_add_int(e, "attempt", store_q_int64(st, 1));
        cJSON_AddStringToObject(e, "site", store_q_text(st, 2));
        cJSON_AddStringToObject(e, "event", store_q_text(st, 3));
        cJSON_AddStringToObject(e, "detail", store_q_text(st, 4));
        cJSON_AddItemToArray(events, e);
    }
    store_q_reset(st);
    return OP_OK;
}

/* One attempt's result: the full body with outputs, or the figures and the receipt. */
static cJSON *result_view(store_q *st, int with_outputs)
{
    cJSON *r = with_outputs ? cJSON_Parse(store_q_text(st, 9)) : cJSON_CreateObject();
    if (!r) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(r, "attempt");
    jsonx_add_int(r, "attempt", store_q_int64(st, 0));
    cJSON_DeleteItemFromObjectCaseSensitive(r, "site");
    cJSON_AddStringToObject(r, "site", store_q_text(st, 1));
    jsonx_add_int(r, "received_at", store_q_int64(st, 2));
    cJSON_AddBoolToObject(r, "applied", store_q_int(st, 3));
    cJSON_DeleteItemFromObjectCaseSensitive(r, "output_hash");
    if (store_q_is_null(st, 10))
        cJSON_AddNullToObject(r, "output_hash");
    else
        cJSON_AddStringToObject(r, "output_hash", store_q_text(st, 10));
    if (!with_outputs) {
        jsonx_add_int(r, "exit_code", store_q_int64(st, 4));
        cJSON_AddNumberToObject(r, "cpu_seconds", store_q_double(st, 5));
        jsonx_add_int(r, "peak_rss_bytes", store_q_int64(st, 6));
        jsonx_add_int(r, "wall_ms", store_q_int64(st, 7));
        cJSON_AddNumberToObject(r, "energy_joules", store_q_double(st, 8));
        cJSON *body = cJSON_Parse(store_q_text(st, 9));
        cJSON *receipt = cJSON_DetachItemFromObjectCaseSensitive(body, "receipt");
        if (receipt) cJSON_AddItemToObject(r, "receipt", receipt);
        cJSON_Delete(body);
    }
    return r;
}

static int job_results(hubdb *db, int64_t job_id, int with_outputs, cJSON *results)
{
    store_q *st = store_prepare(db->st, "SELECT attempt, site, received_at, applied, exit_code,"
                                        " cpu_seconds, peak_rss_bytes, wall_ms, energy_joules,"
                                        " body, output_hash FROM results WHERE job_id=?"
                                        " ORDER BY attempt");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    while (results && store_q_step(st) == STORE_ROW) {
        cJSON *r = result_view(st, with_outputs);
        if (!r) break;
        cJSON_AddItemToArray(results, r);
    }
    store_q_reset(st);
    return OP_OK;
}

int hubdb_job_view(hubdb *db, int64_t job_id, int with_outputs, cJSON *data)
{
    int rc = job_row(db, job_id, data);
    if (rc != OP_OK) return rc;
    rc = job_events(db, job_id, cJSON_AddArrayToObject(data, "events"));
    if (rc != OP_OK) return rc;
    return job_results(db, job_id, with_outputs, cJSON_AddArrayToObject(data, "results"));
}

int hubdb_audit_entries(hubdb *db, int64_t from, const char *subject, const char *kind,
                        int64_t limit, cJSON *arr)
{
    store_q *st = store_prepare(db->st, "SELECT idx, entry FROM audit_entries WHERE idx >= ?1"
                                        " AND (?2 IS NULL OR json_extract(entry,'$.subject')=?2)"
                                        " AND (?3 IS NULL OR json_extract(entry,'$.kind')=?3)"
                                        " ORDER BY idx LIMIT ?4");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, from);
    store_q_bind_text(st, 2, subject);
    store_q_bind_text(st, 3, kind);
    store_q_bind_int64(st, 4, limit);
    while (arr && store_q_step(st) == STORE_ROW) {
        cJSON *e = cJSON_Parse(store_q_text(st, 1));
        if (e) cJSON_AddItemToArray(arr, e);
    }
    store_q_reset(st);
    return OP_OK;
}
