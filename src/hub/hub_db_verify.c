/*
 * hub_db_verify: the part of the hub's data layer that result verification
 * uses (same interface, hub_db.h): trust records of sites and owners, a
 * job's verification plan and its replicas, and
 * which site an attempt was placed on (a result counts only from there).
 */
#include "hub/hub_db.h"

#include "base/err.h"
#include "core/jobstate.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <string.h>

/* ---------- trust records ---------- */

static void read_trust(store_q *st, int col, verify_trust *t)
{
    t->consecutive_valid = (uint32_t)store_q_int64(st, col);
    t->total_valid = (uint32_t)store_q_int64(st, col + 1);
    t->mismatches = (uint32_t)store_q_int64(st, col + 2);
    t->quarantined = (uint32_t)store_q_int64(st, col + 3);
    t->last_mismatch_ms = store_q_int64(st, col + 4);
}

int hubdb_trust_get(hubdb *db, const char *subject, verify_trust *out)
{
    memset(out, 0, sizeof *out);
    store_q *st = store_prepare(db->st, "SELECT consecutive_valid, total_valid, mismatches,"
                                        " quarantined, last_mismatch_ms FROM trust"
                                        " WHERE subject=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, subject);
    int step = store_q_step(st);
    if (step == STORE_ROW) read_trust(st, 0, out);
    store_q_reset(st);
    return step == STORE_ROW || step == STORE_DONE ? OP_OK : OP_ESTORE;
}

int hubdb_trust_put(hubdb *db, const char *subject, const verify_trust *t)
{
    store_q *st = store_prepare(db->st, "INSERT OR REPLACE INTO trust(subject,"
                                        " consecutive_valid, total_valid, mismatches,"
                                        " quarantined, last_mismatch_ms) VALUES(?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, subject);
    store_q_bind_int64(st, 2, t->consecutive_valid);
    store_q_bind_int64(st, 3, t->total_valid);
    store_q_bind_int64(st, 4, t->mismatches);
    store_q_bind_int64(st, 5, t->quarantined);
    store_q_bind_int64(st, 6, t->last_mismatch_ms);
    return store_q_run(st);
}

int hubdb_trust_each(hubdb *db, const char *prefix,
                     void (*fn)(void *ctx, const char *subject, const verify_trust *t), void *ctx)
{
    store_q *st = store_prepare(db->st, "SELECT subject, consecutive_valid, total_valid,"
                                        " mismatches, quarantined, last_mismatch_ms FROM trust"
                                        " WHERE substr(subject, 1, length(?1)) = ?1");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, prefix);
    while (store_q_step(st) == STORE_ROW) {
        verify_trust t;
        read_trust(st, 1, &t);
        fn(ctx, store_q_text(st, 0), &t);
    }
    store_q_reset(st);
    return OP_OK;
}

/* ---------- a job's verification ---------- */

int hubdb_job_set_verify(hubdb *db, int64_t job_id, int64_t wanted, unsigned check_class)
{
    store_q *st =
        store_prepare(db->st, "UPDATE jobs SET verify_wanted=?, verify_class=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, wanted);
    store_q_bind_int(st, 2, (int)check_class);
    store_q_bind_int64(st, 3, job_id);
    return store_q_run(st);
}

int hubdb_job_replicas(hubdb *db, int64_t job_id, hubdb_replica *out, int max, int *n)
{
    *n = 0;
    store_q *st = store_prepare(db->st, "SELECT attempt, site, IFNULL(output_hash, ''),"
                                        " IFNULL(exit_code, -1)"
                                        " FROM results WHERE job_id=? AND"
                                        " json_extract(body, '$.error') IS NULL"
                                        " ORDER BY attempt");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    while (*n < max && store_q_step(st) == STORE_ROW) {
        hubdb_replica *r = &out[(*n)++];
        r->attempt = store_q_int64(st, 0);
        snprintf(r->site, sizeof r->site, "%s", store_q_text(st, 1));
        snprintf(r->hash, sizeof r->hash, "%s", store_q_text(st, 2));
        r->exit_code = store_q_int64(st, 3);
        r->failed = r->exit_code != 0; /* a site-side error reports exit code -1 */
    }
    store_q_reset(st);
    return OP_OK;
}

int hubdb_job_await_replica(hubdb *db, int64_t job_id, int state, const char *reason,
                            const char *owners, int64_t more_attempts)
{
    store_q *st = store_prepare(db->st, "UPDATE jobs SET state=?, reason=?, verify_owners=?,"
                                        " max_attempts=max_attempts+?, lease_expires_at=NULL"
                                        " WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, jobstate_name(state));
    store_q_bind_text(st, 2, reason);
    store_q_bind_text(st, 3, owners);
    store_q_bind_int64(st, 4, more_attempts);
    store_q_bind_int64(st, 5, job_id);
    return store_q_run(st);
}

int hubdb_attempt_was_on(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int *placed)
{
    *placed = 0;
    store_q *st = store_prepare(db->st, "SELECT 1 FROM job_events WHERE job_id=? AND"
                                        " attempt=? AND site=? AND event IN ('placed','local')"
                                        " LIMIT 1");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    store_q_bind_int64(st, 2, attempt);
    store_q_bind_text(st, 3, site);
    int step = store_q_step(st);
    *placed = step == STORE_ROW;
    store_q_reset(st);
    return step == STORE_ROW || step == STORE_DONE ? OP_OK : OP_ESTORE;
}
