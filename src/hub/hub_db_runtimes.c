/*
 * hub_db_runtimes: the part of the hub's data layer that learned run times
 * use (same interface, hub_db.h): the runtimes table (one row per key of
 * core/runtime's table, written as it learns) and the facts of a finished
 * attempt that its run time is learned from.
 */
#include "hub/hub_db.h"

#include "base/err.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <string.h>

int hubdb__runtimes_schema(hubdb *db)
{
    return store_exec(db->st, "CREATE TABLE IF NOT EXISTS runtimes(key INTEGER PRIMARY KEY,"
                              " level INTEGER NOT NULL, label TEXT NOT NULL,"
                              " runs INTEGER NOT NULL, log_ms REAL NOT NULL,"
                              " spread REAL NOT NULL, tick INTEGER NOT NULL)");
}

int hubdb_runtimes_each(hubdb *db, int (*fn)(void *ctx, const runtime_row *row), void *ctx)
{
    store_q *st = store_prepare(db->st, "SELECT key, level, label, runs, log_ms, spread, tick"
                                        " FROM runtimes ORDER BY tick, key");
    if (!st) return OP_ESTORE;
    int rc = OP_OK, step;
    while (rc == OP_OK && (step = store_q_step(st)) == STORE_ROW) {
        runtime_row row;
        memset(&row, 0, sizeof row);
        /* keys are 64-bit hashes, stored as SQLite's signed integers */
        row.key = (uint64_t)store_q_int64(st, 0);
        row.level = store_q_int(st, 1);
        snprintf(row.label, sizeof row.label, "%s", store_q_text(st, 2));
        int64_t runs = store_q_int64(st, 3);
        row.stats.runs = runs < 0 ? 0 : runs > UINT32_MAX ? UINT32_MAX : (uint32_t)runs;
        row.stats.log_ms = store_q_double(st, 4);
        row.stats.spread = store_q_double(st, 5);
        int64_t tick = store_q_int64(st, 6);
        row.tick = tick < 0 ? 0 : (uint64_t)tick;
        rc = fn(ctx, &row);
    }
    store_q_reset(st);
    return rc;
}

int hubdb_runtime_put(hubdb *db, const runtime_row *row)
{
    store_q *st = store_prepare(db->st, "INSERT OR REPLACE INTO runtimes(key, level, label,"
                                        " runs, log_ms, spread, tick) VALUES(?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, (int64_t)row->key);
    store_q_bind_int(st, 2, row->level);
    store_q_bind_text(st, 3, row->label);
    store_q_bind_int64(st, 4, row->stats.runs);
    store_q_bind_double(st, 5, row->stats.log_ms);
    store_q_bind_double(st, 6, row->stats.spread);
    store_q_bind_int64(st, 7, (int64_t)row->tick);
    return store_q_run(st);
}

int hubdb_runtime_forget(hubdb *db, uint64_t key)
{
    store_q *st = store_prepare(db->st, "DELETE FROM runtimes WHERE key=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, (int64_t)key);
    return store_q_run(st);
}

int hubdb_run_facts_get(hubdb *db, int64_t job_id, int64_t attempt, hubdb_run_facts *out)
{
    memset(out, 0, sizeof *out);
    store_q *st =
        store_prepare(db->st, "SELECT kind, IFNULL(program, ''), expected_ms,"
                              " (SELECT MIN(ts) FROM job_events WHERE job_id=?1 AND attempt=?2"
                              "  AND event='placed'),"
                              " EXISTS(SELECT 1 FROM checkpoints WHERE job_id=?1 AND attempt<?2),"
                              " substr(IFNULL(submitted_by, ''), 1, 6) = 'local:'"
                              " FROM jobs WHERE id=?1");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, job_id);
    store_q_bind_int64(st, 2, attempt);
    int step = store_q_step(st);
    if (step == STORE_ROW) {
        snprintf(out->kind, sizeof out->kind, "%s", store_q_text(st, 0));
        snprintf(out->program, sizeof out->program, "%s", store_q_text(st, 1));
        out->expected_ms = store_q_int64(st, 2);
        out->placed_ms = store_q_int64(st, 3);
        out->resumed = store_q_int(st, 4);
        out->local = store_q_int(st, 5);
    }
    store_q_reset(st);
    return step == STORE_ROW ? OP_OK : step == STORE_DONE ? OP_ENOTFOUND : OP_ESTORE;
}
