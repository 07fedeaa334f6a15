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
    sqlite3_stmt *st = store_stmt(db->st, "SELECT key, level, label, runs, log_ms, spread, tick"
                                          " FROM runtimes ORDER BY tick, key");
    if (!st) return OP_ESTORE;
    int rc = OP_OK, step;
    while (rc == OP_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        runtime_row row;
        memset(&row, 0, sizeof row);
        /* keys are 64-bit hashes, stored as SQLite's signed integers */
        row.key = (uint64_t)sqlite3_column_int64(st, 0);
        row.level = sqlite3_column_int(st, 1);
        snprintf(row.label, sizeof row.label, "%s", store_col_text(st, 2));
        int64_t runs = sqlite3_column_int64(st, 3);
        row.stats.runs = runs < 0 ? 0 : runs > UINT32_MAX ? UINT32_MAX : (uint32_t)runs;
        row.stats.log_ms = sqlite3_column_double(st, 4);
        row.stats.spread = sqlite3_column_double(st, 5);
        int64_t tick = sqlite3_column_int64(st, 6);
        row.tick = tick < 0 ? 0 : (uint64_t)tick;
        rc = fn(ctx, &row);
    }
    sqlite3_reset(st);
    return rc;
}

int hubdb_runtime_put(hubdb *db, const runtime_row *row)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT OR REPLACE INTO runtimes(key, level, label,"
                                          " runs, log_ms, spread, tick) VALUES(?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, (int64_t)row->key);
    sqlite3_bind_int(st, 2, row->level);
    sqlite3_bind_text(st, 3, row->label, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, row->stats.runs);
    sqlite3_bind_double(st, 5, row->stats.log_ms);
    sqlite3_bind_double(st, 6, row->stats.spread);
    sqlite3_bind_int64(st, 7, (int64_t)row->tick);
    return store_step_done(db->st, st);
}

int hubdb_runtime_forget(hubdb *db, uint64_t key)
{
    sqlite3_stmt *st = store_stmt(db->st, "DELETE FROM runtimes WHERE key=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, (int64_t)key);
    return store_step_done(db->st, st);
}

int hubdb_run_facts_get(hubdb *db, int64_t job_id, int64_t attempt, hubdb_run_facts *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st =
        store_stmt(db->st, "SELECT kind, IFNULL(program, ''), expected_ms,"
                           " (SELECT MIN(ts) FROM job_events WHERE job_id=?1 AND attempt=?2"
                           "  AND event='placed'),"
                           " EXISTS(SELECT 1 FROM checkpoints WHERE job_id=?1 AND attempt<?2),"
                           " substr(IFNULL(submitted_by, ''), 1, 6) = 'local:'"
                           " FROM jobs WHERE id=?1");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(out->kind, sizeof out->kind, "%s", store_col_text(st, 0));
        snprintf(out->program, sizeof out->program, "%s", store_col_text(st, 1));
        out->expected_ms = sqlite3_column_int64(st, 2);
        out->placed_ms = sqlite3_column_int64(st, 3);
        out->resumed = sqlite3_column_int(st, 4);
        out->local = sqlite3_column_int(st, 5);
    }
    sqlite3_reset(st);
    return step == SQLITE_ROW ? OP_OK : step == SQLITE_DONE ? OP_ENOTFOUND : OP_ESTORE;
}
