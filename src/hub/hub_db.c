#include "hub/hub_db.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "core/jobstate.h"
#include "io/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hubdb {
    store *st;
};

static const char *hub_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS sites(id TEXT PRIMARY KEY, pubkey TEXT NOT NULL,"
    " class TEXT NOT NULL, trust INTEGER NOT NULL DEFAULT 50, enrolled_at INTEGER NOT NULL,"
    " token_id TEXT, last_seq INTEGER NOT NULL DEFAULT 0, cores INTEGER DEFAULT 0,"
    " memory_mb INTEGER DEFAULT 0, power_budget_watts REAL DEFAULT 0,"
    " watts_per_core REAL DEFAULT 0, idle_watts REAL DEFAULT 0, protections_off TEXT);"
    "CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, class TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, created_by TEXT,"
    " used_at INTEGER, used_by TEXT);"
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, name TEXT, kind TEXT NOT NULL,"
    " spec TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, site TEXT,"
    " cores INTEGER NOT NULL, memory_mb INTEGER NOT NULL, class_mask INTEGER NOT NULL,"
    " origin TEXT, site_private INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
    " submitted_by TEXT, submitted_at INTEGER, placed_at INTEGER, started_at INTEGER,"
    " finished_at INTEGER, lease_expires_at INTEGER, reason TEXT, explanation TEXT,"
    " excluded TEXT NOT NULL DEFAULT '', notify TEXT,"
    " awaiting_approval INTEGER NOT NULL DEFAULT 0, program TEXT,"
    " data_class INTEGER NOT NULL DEFAULT 0, expected_ms INTEGER NOT NULL DEFAULT 0,"
    " deadline_at INTEGER NOT NULL DEFAULT 0, may_defer INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);"
    "CREATE INDEX IF NOT EXISTS jobs_site ON jobs(site, state);"
    "CREATE TABLE IF NOT EXISTS results(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " site TEXT NOT NULL, received_at INTEGER NOT NULL, applied INTEGER NOT NULL,"
    " exit_code INTEGER, cpu_seconds REAL, peak_rss_bytes INTEGER, wall_ms INTEGER,"
    " energy_joules REAL, body TEXT NOT NULL, PRIMARY KEY(job_id, attempt));"
    "CREATE TABLE IF NOT EXISTS checkpoints(job_id INTEGER PRIMARY KEY, attempt INTEGER NOT"
    " NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, data_b64 TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS local_jobs(site TEXT NOT NULL, local_id INTEGER NOT NULL,"
    " job_id INTEGER NOT NULL, PRIMARY KEY(site, local_id));"
    "CREATE TABLE IF NOT EXISTS job_events(job_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " attempt INTEGER, site TEXT, event TEXT NOT NULL, detail TEXT);"
    "CREATE INDEX IF NOT EXISTS job_events_job ON job_events(job_id);"
    "CREATE TABLE IF NOT EXISTS op_nonces(op_id TEXT NOT NULL, nonce INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, PRIMARY KEY(op_id, nonce));"
    "CREATE TABLE IF NOT EXISTS op_floors(op_id TEXT PRIMARY KEY, floor_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS op_answers(op_id TEXT NOT NULL, rid TEXT NOT NULL,"
    " digest TEXT NOT NULL, at INTEGER NOT NULL, answer TEXT NOT NULL,"
    " PRIMARY KEY(op_id, rid));"
    "CREATE INDEX IF NOT EXISTS op_answers_at ON op_answers(at);";

/* ---------- the file ---------- */

/*
 * Columns added after a hub's database was first created (CREATE TABLE IF
 * NOT EXISTS leaves an existing table alone): added when missing.
 */
static int migrate(hubdb *db)
{
    static const char *added[][2] = {{"expected_ms", "INTEGER NOT NULL DEFAULT 0"},
                                     {"deadline_at", "INTEGER NOT NULL DEFAULT 0"},
                                     {"may_defer", "INTEGER NOT NULL DEFAULT 0"}};
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
        if (store_has_column(db->st, "jobs", added[i][0])) continue;
        char sql[200];
        snprintf(sql, sizeof sql, "ALTER TABLE jobs ADD COLUMN %s %s", added[i][0], added[i][1]);
        if (store_exec(db->st, sql) != OP_OK) {
            log_error("hub", "cannot add column jobs.%s", added[i][0]);
            return OP_ESTORE;
        }
        log_info("hub", "database: added column jobs.%s", added[i][0]);
    }
    return OP_OK;
}

int hubdb_open(const char *path, int synchronous_full, hubdb **out)
{
    hubdb *db = calloc(1, sizeof *db);
    if (!db) return OP_ENOMEM;
    int rc = store_open(path, hub_schema, synchronous_full, &db->st);
    if (rc == OP_OK) rc = migrate(db);
    if (rc != OP_OK) {
        hubdb_close(db);
        return rc;
    }
    *out = db;
    return OP_OK;
}

void hubdb_close(hubdb *db)
{
    if (!db) return;
    store_close(db->st);
    free(db);
}

int hubdb_attach_audit(hubdb *db, auditlog **out)
{
    return auditlog_attach(db->st, out);
}

int hubdb_begin(hubdb *db)
{
    return store_begin(db->st);
}

int hubdb_commit(hubdb *db)
{
    return store_commit(db->st);
}

void hubdb_rollback(hubdb *db)
{
    store_rollback(db->st);
}

int hubdb_in_tx(const hubdb *db)
{
    return store_in_tx(db->st);
}

int hubdb_savepoint(hubdb *db)
{
    return store_exec(db->st, "SAVEPOINT submit");
}

int hubdb_savepoint_release(hubdb *db)
{
    return store_exec(db->st, "RELEASE submit");
}

void hubdb_savepoint_undo(hubdb *db)
{
    store_exec(db->st, "ROLLBACK TO submit");
    store_exec(db->st, "RELEASE submit");
}

int hubdb_clear_jobs(hubdb *db)
{
    return store_exec(db->st, "DELETE FROM jobs; DELETE FROM results; DELETE FROM job_events;"
                              " DELETE FROM tokens; DELETE FROM op_nonces;"
                              " DELETE FROM op_answers;");
}

/* ---------- helpers ---------- */

/* Binds a state by the name the state machine gives it. */
static void bind_state(sqlite3_stmt *st, int idx, int state)
{
    sqlite3_bind_text(st, idx, jobstate_name(state), -1, SQLITE_STATIC);
}

/* Binds 0 as SQL NULL (a time that has not happened). */
static void bind_time(sqlite3_stmt *st, int idx, int64_t ms)
{
    if (ms)
        sqlite3_bind_int64(st, idx, ms);
    else
        sqlite3_bind_null(st, idx);
}

/* Steps a changing statement; *changed (when asked) gets the rows it changed. */
static int step_changed(hubdb *db, sqlite3_stmt *st, int *changed)
{
    int rc = store_step_done(db->st, st);
    if (changed) *changed = rc == OP_OK ? store_changes(db->st) : 0;
    return rc;
}

/* Collects the first column of up to max rows as ids. */
static int collect_ids(sqlite3_stmt *st, int64_t *ids, int max, int *n)
{
    *n = 0;
    while (*n < max && sqlite3_step(st) == SQLITE_ROW)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return OP_OK;
}

/* ---------- sites and tokens ---------- */

int hubdb_sites_each(hubdb *db, int (*fn)(void *ctx, const hubdb_site_row *row), void *ctx)
{
    sqlite3_stmt *st =
        store_stmt(db->st, "SELECT id, pubkey, class, trust, last_seq, cores, memory_mb,"
                           " power_budget_watts, watts_per_core, idle_watts,"
                           " protections_off FROM sites ORDER BY id");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (rc == OP_OK && sqlite3_step(st) == SQLITE_ROW) {
        hubdb_site_row row = {.id = store_col_text(st, 0),
                              .pubkey_hex = store_col_text(st, 1),
                              .class_name = store_col_text(st, 2),
                              .trust = sqlite3_column_int(st, 3),
                              .last_seq = (uint64_t)sqlite3_column_int64(st, 4),
                              .cores = sqlite3_column_int(st, 5),
                              .memory_mb = sqlite3_column_int64(st, 6),
                              .power_budget_watts = sqlite3_column_double(st, 7),
                              .watts_per_core = sqlite3_column_double(st, 8),
                              .idle_watts = sqlite3_column_double(st, 9),
                              .protections_off = store_col_text(st, 10)};
        rc = fn(ctx, &row);
    }
    sqlite3_reset(st);
    return rc;
}

int hubdb_reservations_each(hubdb *db,
                            void (*fn)(void *ctx, const char *site, int cores, int64_t memory_mb,
                                       int jobs),
                            void *ctx)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT site, SUM(cores), SUM(memory_mb), COUNT(*)"
                                          " FROM jobs WHERE state IN ('placed','running')"
                                          " GROUP BY site");
    if (!st) return OP_ESTORE;
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, store_col_text(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2),
           sqlite3_column_int(st, 3));
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_site_enroll(hubdb *db, const char *site_id, const char *pubkey_hex,
                      const char *class_name, const char *token_id, int64_t now_ms, uint64_t seq)
{
    sqlite3_stmt *ins = store_stmt(db->st, "INSERT INTO sites(id, pubkey, class, enrolled_at,"
                                           " token_id, last_seq) VALUES(?,?,?,?,?,?)");
    sqlite3_stmt *use = store_stmt(db->st, "UPDATE tokens SET used_at=?, used_by=? WHERE id=?");
    if (!ins || !use) return OP_ESTORE;
    sqlite3_bind_text(ins, 1, site_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 2, pubkey_hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 3, class_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 4, now_ms);
    sqlite3_bind_text(ins, 5, token_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 6, (int64_t)seq);
    int rc = store_step_done(db->st, ins);
    sqlite3_bind_int64(use, 1, now_ms);
    sqlite3_bind_text(use, 2, site_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(use, 3, token_id, -1, SQLITE_TRANSIENT);
    int rc_use = store_step_done(db->st, use);
    return rc != OP_OK ? rc : rc_use;
}

int hubdb_site_set_capacity(hubdb *db, const char *site_id, int cores, int64_t memory_mb,
                            double power_budget_watts, double watts_per_core, double idle_watts,
                            const char *protections_off)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE sites SET cores=?, memory_mb=?,"
                                          " power_budget_watts=?, watts_per_core=?, idle_watts=?,"
                                          " protections_off=? WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int(st, 1, cores);
    sqlite3_bind_int64(st, 2, memory_mb);
    sqlite3_bind_double(st, 3, power_budget_watts);
    sqlite3_bind_double(st, 4, watts_per_core);
    sqlite3_bind_double(st, 5, idle_watts);
    sqlite3_bind_text(st, 6, protections_off, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, site_id, -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

int hubdb_site_set_seq(hubdb *db, const char *site_id, uint64_t seq)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE sites SET last_seq=? WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, (int64_t)seq);
    sqlite3_bind_text(st, 2, site_id, -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

int hubdb_own_seq_get(hubdb *db, uint64_t *seq)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT CAST(value AS INTEGER) FROM meta"
                                          " WHERE key='bus_seq'");
    if (!st) return OP_ESTORE;
    *seq = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_own_seq_set(hubdb *db, uint64_t seq)
{
    sqlite3_stmt *st =
        store_stmt(db->st, "INSERT OR REPLACE INTO meta(key, value) VALUES('bus_seq', ?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, (int64_t)seq);
    return store_step_done(db->st, st);
}

int hubdb_token_create(hubdb *db, const char *token_id, const char *class_name, int64_t created_ms,
                       int64_t expires_ms, const char *created_by)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT INTO tokens(id, class, created_at, expires_at,"
                                          " created_by) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, token_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, class_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_int64(st, 4, expires_ms);
    sqlite3_bind_text(st, 5, created_by, -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

int hubdb_token_lookup(hubdb *db, const char *token_id, int *known, char used_by[64])
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT used_by FROM tokens WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, token_id, -1, SQLITE_TRANSIENT);
    *known = sqlite3_step(st) == SQLITE_ROW;
    int used = *known && sqlite3_column_type(st, 0) != SQLITE_NULL;
    snprintf(used_by, 64, "%s", used ? store_col_text(st, 0) : "");
    sqlite3_reset(st);
    return OP_OK;
}

/* ---------- operators' nonces and answers ---------- */

int hubdb_op_nonce_add(hubdb *db, const char *op_id, uint64_t nonce, int64_t ts_ms)
{
    sqlite3_stmt *st =
        store_stmt(db->st, "INSERT OR IGNORE INTO op_nonces(op_id, nonce, ts) VALUES(?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)nonce);
    sqlite3_bind_int64(st, 3, ts_ms);
    return store_step_done(db->st, st);
}

int hubdb_op_nonces_each(hubdb *db, const char *op_id, int64_t *floor_ms,
                         void (*fn)(void *ctx, uint64_t nonce, int64_t ts_ms), void *ctx)
{
    sqlite3_stmt *fl = store_stmt(db->st, "SELECT floor_ms FROM op_floors WHERE op_id=?");
    sqlite3_stmt *st =
        store_stmt(db->st, "SELECT nonce, ts FROM op_nonces WHERE op_id=? AND ts>? ORDER BY ts");
    if (!fl || !st) return OP_ESTORE;
    sqlite3_bind_text(fl, 1, op_id, -1, SQLITE_TRANSIENT);
    *floor_ms = sqlite3_step(fl) == SQLITE_ROW ? sqlite3_column_int64(fl, 0) : 0;
    sqlite3_reset(fl);
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, *floor_ms);
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_op_floor_set(hubdb *db, const char *op_id, int64_t floor_ms)
{
    sqlite3_stmt *st =
        store_stmt(db->st, "INSERT OR REPLACE INTO op_floors(op_id, floor_ms) VALUES(?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, floor_ms);
    return store_step_done(db->st, st);
}

int hubdb_op_answer_get(hubdb *db, const char *op_id, const char *rid, const char *digest,
                        char **answer)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT answer FROM op_answers WHERE op_id=? AND"
                                          " rid=? AND digest=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, digest, -1, SQLITE_TRANSIENT);
    int rc = OP_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *answer = strdup(store_col_text(st, 0));
        rc = *answer ? OP_OK : OP_ENOMEM;
    }
    sqlite3_reset(st);
    return rc;
}

int hubdb_op_answer_put(hubdb *db, const char *op_id, const char *rid, const char *digest,
                        int64_t at_ms, const char *answer)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT OR REPLACE INTO op_answers(op_id, rid, digest,"
                                          " at, answer) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, digest, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, at_ms);
    sqlite3_bind_text(st, 5, answer, -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

int hubdb_op_prune(hubdb *db, int64_t nonces_before_ms, int64_t answers_before_ms,
                   int64_t answers_kept)
{
    sqlite3_stmt *n = store_stmt(db->st, "DELETE FROM op_nonces WHERE ts<?");
    sqlite3_stmt *a = store_stmt(db->st, "DELETE FROM op_answers WHERE at<? OR at<(SELECT at"
                                         " FROM op_answers ORDER BY at DESC LIMIT 1 OFFSET ?)");
    if (!n || !a) return OP_ESTORE;
    sqlite3_bind_int64(n, 1, nonces_before_ms);
    sqlite3_bind_int64(a, 1, answers_before_ms);
    sqlite3_bind_int64(a, 2, answers_kept - 1);
    int rc = store_step_done(db->st, n);
    return rc != OP_OK ? rc : store_step_done(db->st, a);
}

/* ---------- jobs ---------- */

int hubdb_job_get(hubdb *db, int64_t job_id, hubdb_job *out)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT attempt, max_attempts, state, site, cores,"
                                          " memory_mb, excluded FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return OP_ENOTFOUND;
    }
    out->attempt = sqlite3_column_int64(st, 0);
    out->max_attempts = sqlite3_column_int64(st, 1);
    out->state = jobstate_parse(store_col_text(st, 2));
    snprintf(out->site, sizeof out->site, "%s", store_col_text(st, 3));
    out->cores = sqlite3_column_int(st, 4);
    out->memory_mb = sqlite3_column_int64(st, 5);
    snprintf(out->excluded, sizeof out->excluded, "%s", store_col_text(st, 6));
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_job_insert(hubdb *db, const hubdb_new_job *j, int64_t *job_id)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT INTO jobs(name, kind, spec, state, attempt,"
                                          " site, cores, memory_mb, class_mask, origin,"
                                          " site_private, max_attempts, submitted_by,"
                                          " submitted_at, placed_at, notify, awaiting_approval,"
                                          " program, data_class, expected_ms, deadline_at,"
                                          " may_defer)"
                                          " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, j->name);
    sqlite3_bind_text(st, 2, j->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, j->spec_json, -1, SQLITE_TRANSIENT);
    bind_state(st, 4, j->state);
    sqlite3_bind_int64(st, 5, j->attempt);
    store_bind_text(st, 6, j->site);
    sqlite3_bind_int(st, 7, j->cores);
    sqlite3_bind_int64(st, 8, j->memory_mb);
    sqlite3_bind_int(st, 9, (int)j->class_mask);
    store_bind_text(st, 10, j->origin);
    sqlite3_bind_int(st, 11, j->site_private);
    sqlite3_bind_int(st, 12, j->max_attempts);
    store_bind_text(st, 13, j->submitted_by);
    sqlite3_bind_int64(st, 14, j->submitted_at);
    bind_time(st, 15, j->placed_at);
    store_bind_text(st, 16, j->notify);
    sqlite3_bind_int(st, 17, j->awaiting_approval);
    store_bind_text(st, 18, j->program);
    sqlite3_bind_int(st, 19, j->data_class);
    sqlite3_bind_int64(st, 20, j->expected_ms);
    sqlite3_bind_int64(st, 21, j->deadline_at);
    sqlite3_bind_int(st, 22, j->may_defer);
    int rc = store_step_done(db->st, st);
    if (rc == OP_OK) *job_id = store_last_rowid(db->st);
    return rc;
}

int hubdb_job_set_reason(hubdb *db, int64_t job_id, const char *reason)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET reason=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, reason);
    sqlite3_bind_int64(st, 2, job_id);
    return store_step_done(db->st, st);
}

int hubdb_jobs_count(hubdb *db, int state, int64_t *count)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT COUNT(*) FROM jobs WHERE state=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    *count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_jobs_queued(hubdb *db, int limit, int (*fn)(void *ctx, const hubdb_queued *job),
                      void *ctx)
{
    sqlite3_stmt *sel = store_stmt(db->st, "SELECT id, attempt, cores, memory_mb, class_mask,"
                                           " origin, site_private, excluded, spec, explanation,"
                                           " kind, program, data_class, expected_ms,"
                                           " deadline_at, may_defer, max_attempts"
                                           " FROM jobs WHERE state='queued' AND"
                                           " awaiting_approval=0 ORDER BY id LIMIT ?");
    if (!sel) return OP_ESTORE;
    sqlite3_bind_int(sel, 1, limit);
    while (sqlite3_step(sel) == SQLITE_ROW) {
        hubdb_queued q = {.id = sqlite3_column_int64(sel, 0),
                          .attempt = sqlite3_column_int64(sel, 1),
                          .cores = sqlite3_column_int(sel, 2),
                          .memory_mb = sqlite3_column_int64(sel, 3),
                          .class_mask = (unsigned)sqlite3_column_int(sel, 4),
                          .origin = store_col_text(sel, 5),
                          .site_private = sqlite3_column_int(sel, 6),
                          .excluded = store_col_text(sel, 7),
                          .spec_json = store_col_text(sel, 8),
                          .explanation = store_col_text(sel, 9),
                          .kind = store_col_text(sel, 10),
                          .program = store_col_text(sel, 11),
                          .data_class = sqlite3_column_int(sel, 12),
                          .expected_ms = sqlite3_column_int64(sel, 13),
                          .deadline_at = sqlite3_column_int64(sel, 14),
                          .may_defer = sqlite3_column_int(sel, 15),
                          .max_attempts = sqlite3_column_int64(sel, 16)};
        if (fn(ctx, &q)) break;
    }
    sqlite3_reset(sel);
    return OP_OK;
}

int hubdb_job_place(hubdb *db, int64_t job_id, int state, int64_t attempt, const char *site,
                    int64_t now_ms, int64_t lease_expires_ms, const char *explanation)
{
    sqlite3_stmt *up = store_stmt(db->st, "UPDATE jobs SET state=?, attempt=?, site=?,"
                                          " placed_at=?, lease_expires_at=?, explanation=?,"
                                          " reason=NULL WHERE id=?");
    if (!up) return OP_ESTORE;
    bind_state(up, 1, state);
    sqlite3_bind_int64(up, 2, attempt);
    sqlite3_bind_text(up, 3, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 4, now_ms);
    sqlite3_bind_int64(up, 5, lease_expires_ms);
    sqlite3_bind_text(up, 6, explanation, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 7, job_id);
    return store_step_done(db->st, up);
}

int hubdb_job_fail_unplaced(hubdb *db, int64_t job_id, int state, const char *reason,
                            const char *explanation, int64_t now_ms)
{
    sqlite3_stmt *up = store_stmt(db->st, "UPDATE jobs SET state=?, reason=?, explanation=?,"
                                          " finished_at=? WHERE id=?");
    if (!up) return OP_ESTORE;
    bind_state(up, 1, state);
    sqlite3_bind_text(up, 2, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(up, 3, explanation, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 4, now_ms);
    sqlite3_bind_int64(up, 5, job_id);
    return store_step_done(db->st, up);
}

int hubdb_job_explain(hubdb *db, int64_t job_id, const char *explanation)
{
    sqlite3_stmt *up = store_stmt(db->st, "UPDATE jobs SET explanation=? WHERE id=?");
    if (!up) return OP_ESTORE;
    sqlite3_bind_text(up, 1, explanation, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 2, job_id);
    return store_step_done(db->st, up);
}

int hubdb_job_requeue(hubdb *db, int64_t job_id, int state, const char *reason,
                      const char *excluded, int64_t finished_ms)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET state=?, reason=?, excluded=?,"
                                          " lease_expires_at=NULL, finished_at=? WHERE id=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, excluded, -1, SQLITE_TRANSIENT);
    bind_time(st, 4, finished_ms);
    sqlite3_bind_int64(st, 5, job_id);
    return store_step_done(db->st, st);
}

int hubdb_job_start(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int from, int to,
                    int64_t now_ms, int *changed)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET state=?, started_at=? WHERE id=? AND"
                                          " attempt=? AND site=? AND state=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, to);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, job_id);
    sqlite3_bind_int64(st, 4, attempt);
    sqlite3_bind_text(st, 5, site, -1, SQLITE_TRANSIENT);
    bind_state(st, 6, from);
    return step_changed(db, st, changed);
}

int hubdb_job_is_current(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int *current)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT 1 FROM jobs WHERE id=? AND attempt=?"
                                          " AND site=? AND state IN ('placed','running')");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, site, -1, SQLITE_TRANSIENT);
    *current = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_job_renew_lease(hubdb *db, int64_t job_id, int64_t attempt, const char *site,
                          int64_t until_ms, int *changed)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET lease_expires_at=? WHERE id=? AND"
                                          " attempt=? AND site=? AND state IN"
                                          " ('placed','running')");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, until_ms);
    sqlite3_bind_int64(st, 2, job_id);
    sqlite3_bind_int64(st, 3, attempt);
    sqlite3_bind_text(st, 4, site, -1, SQLITE_TRANSIENT);
    return step_changed(db, st, changed);
}

int hubdb_leases_renew_all(hubdb *db, int64_t until_ms)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET lease_expires_at=? WHERE state IN"
                                          " ('placed','running')");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, until_ms);
    return store_step_done(db->st, st);
}

int hubdb_job_finish(hubdb *db, int64_t job_id, int64_t attempt, int state, const char *reason,
                     int64_t now_ms)
{
    sqlite3_stmt *up = store_stmt(db->st, "UPDATE jobs SET state=?, finished_at=?, reason=?,"
                                          " lease_expires_at=NULL WHERE id=?");
    sqlite3_stmt *ap = store_stmt(db->st, "UPDATE results SET applied=1 WHERE job_id=? AND"
                                          " attempt=?");
    if (!up || !ap) return OP_ESTORE;
    bind_state(up, 1, state);
    sqlite3_bind_int64(up, 2, now_ms);
    sqlite3_bind_text(up, 3, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 4, job_id);
    if (store_step_done(db->st, up) != OP_OK) return OP_ESTORE;
    sqlite3_bind_int64(ap, 1, job_id);
    sqlite3_bind_int64(ap, 2, attempt);
    return store_step_done(db->st, ap);
}

int hubdb_job_cancel(hubdb *db, int64_t job_id, int state, const char *reason, int64_t now_ms)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET state=?, finished_at=?, reason=?,"
                                          " lease_expires_at=NULL WHERE id=?");
    if (!st) return OP_ESTORE;
    bind_state(st, 1, state);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, job_id);
    return store_step_done(db->st, st);
}

int hubdb_job_approve(hubdb *db, int64_t job_id, int *changed)
{
    sqlite3_stmt *st = store_stmt(db->st, "UPDATE jobs SET awaiting_approval=0, reason=NULL WHERE"
                                          " id=? AND awaiting_approval=1 AND state='queued'");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    return step_changed(db, st, changed);
}

int hubdb_job_notify_target(hubdb *db, int64_t job_id, char op_id[64])
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT notify FROM jobs WHERE id=? AND notify IS NOT"
                                          " NULL");
    op_id[0] = '\0';
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) == SQLITE_ROW) snprintf(op_id, 64, "%s", store_col_text(st, 0));
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_jobs_on_site(hubdb *db, const char *site, int64_t *ids, int max, int *n)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT id FROM jobs WHERE site=? AND state IN"
                                          " ('placed','running') LIMIT ?");
    *n = 0;
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, max);
    return collect_ids(st, ids, max, n);
}

int hubdb_jobs_lease_expired(hubdb *db, int64_t now_ms, int64_t *ids, int max, int *n)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT id FROM jobs WHERE state IN"
                                          " ('placed','running') AND lease_expires_at < ? LIMIT ?");
    *n = 0;
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, max);
    return collect_ids(st, ids, max, n);
}

int hubdb_job_event(hubdb *db, int64_t job_id, int64_t ts_ms, int64_t attempt, const char *site,
                    const char *event, const char *detail)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT INTO job_events(job_id, ts, attempt, site,"
                                          " event, detail) VALUES(?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, ts_ms);
    sqlite3_bind_int64(st, 3, attempt);
    store_bind_text(st, 4, site);
    store_bind_text(st, 5, event);
    store_bind_text(st, 6, detail);
    return store_step_done(db->st, st);
}

/* ---------- results, checkpoints, local jobs ---------- */

int hubdb_result_record(hubdb *db, const hubdb_result *r, int *inserted)
{
    sqlite3_stmt *ins = store_stmt(db->st, "INSERT OR IGNORE INTO results(job_id, attempt,"
                                           " site, received_at, applied, exit_code,"
                                           " cpu_seconds, peak_rss_bytes, wall_ms,"
                                           " energy_joules, body) VALUES(?,?,?,?,0,?,?,?,?,?,?)");
    *inserted = 0;
    if (!ins) return OP_ESTORE;
    sqlite3_bind_int64(ins, 1, r->job_id);
    sqlite3_bind_int64(ins, 2, r->attempt);
    sqlite3_bind_text(ins, 3, r->site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 4, r->received_at);
    sqlite3_bind_int64(ins, 5, r->exit_code);
    sqlite3_bind_double(ins, 6, r->cpu_seconds);
    sqlite3_bind_int64(ins, 7, r->peak_rss_bytes);
    sqlite3_bind_int64(ins, 8, r->wall_ms);
    sqlite3_bind_double(ins, 9, r->energy_joules);
    sqlite3_bind_text(ins, 10, r->body, -1, SQLITE_TRANSIENT);
    return step_changed(db, ins, inserted);
}

int hubdb_checkpoint_keep(hubdb *db, int64_t job_id, int64_t attempt, const char *name,
                          const char *sha256, const char *data_b64)
{
    sqlite3_stmt *st = store_stmt(db->st, "INSERT OR REPLACE INTO checkpoints(job_id, attempt,"
                                          " name, sha256, data_b64) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, sha256, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, data_b64, -1, SQLITE_TRANSIENT);
    return store_step_done(db->st, st);
}

int hubdb_checkpoint_input(hubdb *db, int64_t job_id, cJSON **input)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT name, sha256, data_b64 FROM checkpoints WHERE"
                                          " job_id=?");
    *input = NULL;
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    int rc = OP_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *in = cJSON_CreateObject();
        if (in) {
            cJSON_AddStringToObject(in, "name", store_col_text(st, 0));
            cJSON_AddStringToObject(in, "sha256", store_col_text(st, 1));
            cJSON_AddStringToObject(in, "data_b64", store_col_text(st, 2));
        }
        *input = in;
        rc = in ? OP_OK : OP_ENOMEM;
    }
    sqlite3_reset(st);
    return rc;
}

int hubdb_local_known(hubdb *db, const char *site, int64_t local_id, int *known)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT job_id FROM local_jobs WHERE site=? AND"
                                          " local_id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, local_id);
    *known = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_local_map(hubdb *db, const char *site, int64_t local_id, int64_t job_id)
{
    sqlite3_stmt *map = store_stmt(db->st, "INSERT INTO local_jobs(site, local_id, job_id)"
                                           " VALUES(?,?,?)");
    if (!map) return OP_ESTORE;
    sqlite3_bind_text(map, 1, site, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(map, 2, local_id);
    sqlite3_bind_int64(map, 3, job_id);
    return store_step_done(db->st, map);
}

/* ---------- operator views ---------- */

/* Columns: id, name, kind, state, attempt, site, submitted_at, finished_at, reason. */
static cJSON *job_summary(sqlite3_stmt *st)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    jsonx_add_int(j, "id", sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(j, "name", store_col_text(st, 1));
    cJSON_AddStringToObject(j, "kind", store_col_text(st, 2));
    cJSON_AddStringToObject(j, "state", store_col_text(st, 3));
    jsonx_add_int(j, "attempt", sqlite3_column_int64(st, 4));
    cJSON_AddStringToObject(j, "site", store_col_text(st, 5));
    jsonx_add_int(j, "submitted_at", sqlite3_column_int64(st, 6));
    jsonx_add_int(j, "finished_at", sqlite3_column_int64(st, 7));
    cJSON_AddStringToObject(j, "reason", store_col_text(st, 8));
    return j;
}

int hubdb_jobs_list(hubdb *db, const char *state, int64_t limit, cJSON *arr)
{
    sqlite3_stmt *st =
        state ? store_stmt(db->st, "SELECT id, name, kind, state, attempt, site, submitted_at,"
                                   " finished_at, reason FROM jobs WHERE state=? ORDER BY id DESC"
                                   " LIMIT ?")
              : store_stmt(db->st, "SELECT id, name, kind, state, attempt, site, submitted_at,"
                                   " finished_at, reason FROM jobs WHERE ?1 IS NULL ORDER BY id"
                                   " DESC LIMIT ?");
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, state);
    sqlite3_bind_int64(st, 2, limit);
    while (arr && sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, job_summary(st));
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_jobs_counts(hubdb *db, cJSON *counts)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
    if (!st) return OP_ESTORE;
    while (counts && sqlite3_step(st) == SQLITE_ROW)
        jsonx_add_int(counts, store_col_text(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_jobs_per_site(hubdb *db, cJSON *per_site)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT IFNULL(site,''), state, COUNT(*) FROM jobs"
                                          " GROUP BY site, state");
    if (!st) return OP_ESTORE;
    while (per_site && sqlite3_step(st) == SQLITE_ROW) {
        const char *site = store_col_text(st, 0);
        cJSON *o = cJSON_GetObjectItemCaseSensitive(per_site, site);
        if (!o) o = cJSON_AddObjectToObject(per_site, site);
        if (o) jsonx_add_int(o, store_col_text(st, 1), sqlite3_column_int64(st, 2));
    }
    sqlite3_reset(st);
    return OP_OK;
}

int hubdb_results_totals(hubdb *db, cJSON *data)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT COUNT(*), IFNULL(SUM(cpu_seconds),0),"
                                          " IFNULL(SUM(energy_joules),0) FROM results WHERE"
                                          " applied=1");
    if (!st) return OP_ESTORE;
    if (sqlite3_step(st) == SQLITE_ROW) {
        jsonx_add_int(data, "applied_results", sqlite3_column_int64(st, 0));
        cJSON_AddNumberToObject(data, "cpu_seconds", sqlite3_column_double(st, 1));
        cJSON_AddNumberToObject(data, "energy_joules", sqlite3_column_double(st, 2));
    }
    sqlite3_reset(st);
    return OP_OK;
}

/* The job's row: the summary and the details `outpost job` shows. OP_ENOTFOUND. */
static int job_row(hubdb *db, int64_t job_id, cJSON *data)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT id, name, kind, state, attempt, site,"
                                          " submitted_at, finished_at, reason, explanation,"
                                          " placed_at, started_at, lease_expires_at, cores,"
                                          " memory_mb, max_attempts, submitted_by, excluded"
                                          " FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return OP_ENOTFOUND;
    }
    cJSON *job = job_summary(st);
    if (job) {
        cJSON_AddStringToObject(job, "explanation", store_col_text(st, 9));
        jsonx_add_int(job, "placed_at", sqlite3_column_int64(st, 10));
        jsonx_add_int(job, "started_at", sqlite3_column_int64(st, 11));
        jsonx_add_int(job, "lease_expires_at", sqlite3_column_int64(st, 12));
        jsonx_add_int(job, "cores", sqlite3_column_int64(st, 13));
        jsonx_add_int(job, "memory_mb", sqlite3_column_int64(st, 14));
        jsonx_add_int(job, "max_attempts", sqlite3_column_int64(st, 15));
        cJSON_AddStringToObject(job, "submitted_by", store_col_text(st, 16));
        cJSON_AddStringToObject(job, "excluded", store_col_text(st, 17));
        cJSON_AddItemToObject(data, "job", job);
    }
    sqlite3_reset(st);
    return OP_OK;
}

static int job_events(hubdb *db, int64_t job_id, cJSON *events)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT ts, attempt, site, event, detail FROM"
                                          " job_events WHERE job_id=? ORDER BY rowid LIMIT 200");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    while (events && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        jsonx_add_int(e, "ts", sqlite3_column_int64(st, 0));
        jsonx_add_int(e, "attempt", sqlite3_column_int64(st, 1));
        cJSON_AddStringToObject(e, "site", store_col_text(st, 2));
        cJSON_AddStringToObject(e, "event", store_col_text(st, 3));
        cJSON_AddStringToObject(e, "detail", store_col_text(st, 4));
        cJSON_AddItemToArray(events, e);
    }
    sqlite3_reset(st);
    return OP_OK;
}

/* One attempt's result: the full body with outputs, or the figures and the receipt. */
static cJSON *result_view(sqlite3_stmt *st, int with_outputs)
{
    cJSON *r = with_outputs ? cJSON_Parse(store_col_text(st, 9)) : cJSON_CreateObject();
    if (!r) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(r, "attempt");
    jsonx_add_int(r, "attempt", sqlite3_column_int64(st, 0));
    cJSON_DeleteItemFromObjectCaseSensitive(r, "site");
    cJSON_AddStringToObject(r, "site", store_col_text(st, 1));
    jsonx_add_int(r, "received_at", sqlite3_column_int64(st, 2));
    cJSON_AddBoolToObject(r, "applied", sqlite3_column_int(st, 3));
    if (!with_outputs) {
        jsonx_add_int(r, "exit_code", sqlite3_column_int64(st, 4));
        cJSON_AddNumberToObject(r, "cpu_seconds", sqlite3_column_double(st, 5));
        jsonx_add_int(r, "peak_rss_bytes", sqlite3_column_int64(st, 6));
        jsonx_add_int(r, "wall_ms", sqlite3_column_int64(st, 7));
        cJSON_AddNumberToObject(r, "energy_joules", sqlite3_column_double(st, 8));
        cJSON *body = cJSON_Parse(store_col_text(st, 9));
        cJSON *receipt = cJSON_DetachItemFromObjectCaseSensitive(body, "receipt");
        if (receipt) cJSON_AddItemToObject(r, "receipt", receipt);
        cJSON_Delete(body);
    }
    return r;
}

static int job_results(hubdb *db, int64_t job_id, int with_outputs, cJSON *results)
{
    sqlite3_stmt *st = store_stmt(db->st, "SELECT attempt, site, received_at, applied, exit_code,"
                                          " cpu_seconds, peak_rss_bytes, wall_ms, energy_joules,"
                                          " body FROM results WHERE job_id=? ORDER BY attempt");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    while (results && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *r = result_view(st, with_outputs);
        if (!r) break;
        cJSON_AddItemToArray(results, r);
    }
    sqlite3_reset(st);
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
    sqlite3_stmt *st = store_stmt(db->st, "SELECT idx, entry FROM audit_entries WHERE idx >= ?1"
                                          " AND (?2 IS NULL OR json_extract(entry,'$.subject')=?2)"
                                          " AND (?3 IS NULL OR json_extract(entry,'$.kind')=?3)"
                                          " ORDER BY idx LIMIT ?4");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, from);
    store_bind_text(st, 2, subject);
    store_bind_text(st, 3, kind);
    sqlite3_bind_int64(st, 4, limit);
    while (arr && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *e = cJSON_Parse(store_col_text(st, 1));
        if (e) cJSON_AddItemToArray(arr, e);
    }
    sqlite3_reset(st);
    return OP_OK;
}
