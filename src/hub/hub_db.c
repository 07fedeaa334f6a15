#include "hub/hub_db.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "hub/hub_db_int.h"
#include "io/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *hub_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS sites(id TEXT PRIMARY KEY, pubkey TEXT NOT NULL,"
    " class TEXT NOT NULL, trust INTEGER NOT NULL DEFAULT 50, enrolled_at INTEGER NOT NULL,"
    " token_id TEXT, last_seq INTEGER NOT NULL DEFAULT 0, cores INTEGER DEFAULT 0,"
    " memory_mb INTEGER DEFAULT 0, power_budget_watts REAL DEFAULT 0,"
    " watts_per_core REAL DEFAULT 0, idle_watts REAL DEFAULT 0, protections_off TEXT,"
    " owner TEXT, departed INTEGER NOT NULL DEFAULT 0, quarantined TEXT NOT NULL DEFAULT '',"
    " beat_key TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS trust(subject TEXT PRIMARY KEY,"
    " consecutive_valid INTEGER NOT NULL, total_valid INTEGER NOT NULL,"
    " mismatches INTEGER NOT NULL, quarantined INTEGER NOT NULL, last_mismatch_ms INTEGER NOT "
    "NULL);"
    "CREATE TABLE IF NOT EXISTS site_claims(site TEXT PRIMARY KEY,"
    " max_cores INTEGER NOT NULL DEFAULT 0, max_memory_mb INTEGER NOT NULL DEFAULT 0,"
    " max_watts REAL NOT NULL DEFAULT 0, measured_cores REAL NOT NULL DEFAULT -1,"
    " counted_cores INTEGER NOT NULL DEFAULT 0, claimed_cores INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0, checked_at INTEGER NOT NULL DEFAULT 0,"
    " verdict TEXT NOT NULL DEFAULT '');"
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
    " deadline_at INTEGER NOT NULL DEFAULT 0, may_defer INTEGER NOT NULL DEFAULT 0,"
    " deterministic INTEGER NOT NULL DEFAULT 0, verify_wanted INTEGER NOT NULL DEFAULT 0,"
    " verify_class INTEGER NOT NULL DEFAULT 0, verify_owners TEXT NOT NULL DEFAULT '',"
    " model TEXT NOT NULL DEFAULT '', model_sha TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);"
    "CREATE INDEX IF NOT EXISTS jobs_site ON jobs(site, state);"
    "CREATE TABLE IF NOT EXISTS results(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " site TEXT NOT NULL, received_at INTEGER NOT NULL, applied INTEGER NOT NULL,"
    " exit_code INTEGER, cpu_seconds REAL, peak_rss_bytes INTEGER, wall_ms INTEGER,"
    " energy_joules REAL, body TEXT NOT NULL, output_hash TEXT, PRIMARY KEY(job_id, attempt));"
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
    "CREATE INDEX IF NOT EXISTS op_answers_at ON op_answers(at);"
    /* the model registry (hub_db_models.c) */
    "CREATE TABLE IF NOT EXISTS models(name TEXT NOT NULL, version INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, size INTEGER NOT NULL, data_class INTEGER NOT NULL,"
    " origin TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, record TEXT NOT NULL,"
    " sig TEXT NOT NULL, removed_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(name, version));"
    "CREATE INDEX IF NOT EXISTS models_sha ON models(sha256);"
    "CREATE TABLE IF NOT EXISTS artifacts(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " manifest TEXT NOT NULL, sig TEXT NOT NULL, created_at INTEGER NOT NULL);";

/* ---------- the file ---------- */

/*
 * Columns added after a hub's database was first created (CREATE TABLE IF
 * NOT EXISTS leaves an existing table alone): added when missing, then
 * filled for the rows already there where a later hub needs a value (a site
 * enrolled before owners existed is its own owner; results applied before
 * output hashes keep none).
 */
static int migrate(hubdb *db)
{
    static const char *added[][4] = {
        {"jobs", "expected_ms", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"jobs", "deadline_at", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"jobs", "may_defer", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"sites", "owner", "TEXT", "UPDATE sites SET owner=id WHERE owner IS NULL"},
        {"results", "output_hash", "TEXT", NULL},
        {"sites", "departed", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"sites", "quarantined", "TEXT NOT NULL DEFAULT ''", NULL},
        {"jobs", "deterministic", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"jobs", "verify_wanted", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"jobs", "verify_class", "INTEGER NOT NULL DEFAULT 0", NULL},
        {"jobs", "verify_owners", "TEXT NOT NULL DEFAULT ''", NULL},
        {"jobs", "model", "TEXT NOT NULL DEFAULT ''", NULL},
        {"jobs", "model_sha", "TEXT NOT NULL DEFAULT ''", NULL},
        {"sites", "beat_key", "TEXT NOT NULL DEFAULT ''", NULL}};
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
        const char *table = added[i][0], *column = added[i][1];
        if (store_has_column(db->st, table, column)) continue;
        char sql[200];
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, column, added[i][2]);
        if (store_exec(db->st, sql) != OP_OK ||
            (added[i][3] && store_exec(db->st, added[i][3]) != OP_OK)) {
            log_error("hub", "cannot add column %s.%s", table, column);
            return OP_ESTORE;
        }
        log_info("hub", "database: added column %s.%s", table, column);
    }
    return OP_OK;
}

/*
 * The schema's version in meta: a database written by a newer hub (a
 * rolling upgrade of a failover pair, or a restored backup) is refused
 * rather than misread; an older one is brought up by migrate() and marked.
 */
static int check_version(hubdb *db)
{
    store_q *get = store_prepare(db->st, "SELECT CAST(value AS INTEGER) FROM meta"
                                         " WHERE key='schema_version'");
    store_q *set = store_prepare(db->st, "INSERT OR REPLACE INTO meta(key, value)"
                                         " VALUES('schema_version', ?)");
    if (!get || !set) return OP_ESTORE;
    int64_t found = store_q_step(get) == STORE_ROW ? store_q_int64(get, 0) : 0;
    store_q_reset(get);
    if (found > HUBDB_SCHEMA_VERSION) {
        log_error("hub",
                  "the database was written by a newer hub (schema version %lld; this hub "
                  "knows up to %d): run the newer outpost, or restore a backup made by this one",
                  (long long)found, HUBDB_SCHEMA_VERSION);
        return OP_ESTORE;
    }
    if (found == HUBDB_SCHEMA_VERSION) return OP_OK;
    store_q_bind_text(set, 1, HUBDB_SCHEMA_VERSION_TEXT);
    return store_q_run(set);
}

int hubdb_open(const char *path, int synchronous_full, hubdb **out)
{
    hubdb *db = calloc(1, sizeof *db);
    if (!db) return OP_ENOMEM;
    int rc = store_open(path, hub_schema, synchronous_full, &db->st);
    if (rc == OP_OK) rc = check_version(db);
    if (rc == OP_OK) rc = migrate(db);
    if (rc == OP_OK) rc = hubdb__lease_schema(db);
    if (rc == OP_OK) rc = hubdb__runtimes_schema(db);
    if (rc == OP_OK) rc = hubdb__pool_schema(db);
    if (rc == OP_OK) rc = hubdb__api_schema(db);
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

/*
 * With a lease taken (failover), the outermost commit is fenced by it: the
 * transaction renews the lease, or is rolled back when another hub holds
 * it (hubdb_lease_lost then says so and the hub stops).
 */
int hubdb_commit(hubdb *db)
{
    if (db->fence.on && store_in_tx(db->st) == 1) {
        if (db->fence.lost) {
            store_rollback(db->st);
            return OP_EEXPIRED;
        }
        int rc = hubdb__lease_fence(db);
        if (rc != OP_OK) {
            store_rollback(db->st);
            return rc;
        }
        rc = store_commit(db->st);
        if (rc == OP_OK) db->fence.renewed_mono_ms = db->fence.pending_mono_ms;
        return rc;
    }
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

/* ---------- sites and tokens ---------- */

int hubdb_sites_each(hubdb *db, int (*fn)(void *ctx, const hubdb_site_row *row), void *ctx)
{
    store_q *st =
        store_prepare(db->st, "SELECT id, pubkey, class, trust, last_seq, cores, memory_mb,"
                              " power_budget_watts, watts_per_core, idle_watts,"
                              " protections_off, IFNULL(owner, id), departed,"
                              " IFNULL(quarantined, ''), beat_key FROM sites ORDER BY id");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (rc == OP_OK && store_q_step(st) == STORE_ROW) {
        hubdb_site_row row = {.id = store_q_text(st, 0),
                              .pubkey_hex = store_q_text(st, 1),
                              .class_name = store_q_text(st, 2),
                              .trust = store_q_int(st, 3),
                              .last_seq = (uint64_t)store_q_int64(st, 4),
                              .cores = store_q_int(st, 5),
                              .memory_mb = store_q_int64(st, 6),
                              .power_budget_watts = store_q_double(st, 7),
                              .watts_per_core = store_q_double(st, 8),
                              .idle_watts = store_q_double(st, 9),
                              .protections_off = store_q_text(st, 10),
                              .owner = store_q_text(st, 11),
                              .departed = store_q_int(st, 12),
                              .quarantined = store_q_text(st, 13),
                              .beat_key = store_q_text(st, 14)};
        rc = fn(ctx, &row);
    }
    store_q_reset(st);
    return rc;
}

int hubdb_reservations_each(hubdb *db,
                            void (*fn)(void *ctx, const char *site, int cores, int64_t memory_mb,
                                       int jobs),
                            void *ctx)
{
    store_q *st = store_prepare(db->st, "SELECT site, SUM(cores), SUM(memory_mb), COUNT(*)"
                                        " FROM jobs WHERE state IN ('placed','running')"
                                        " GROUP BY site");
    if (!st) return OP_ESTORE;
    while (store_q_step(st) == STORE_ROW)
        fn(ctx, store_q_text(st, 0), store_q_int(st, 1), store_q_int64(st, 2), store_q_int(st, 3));
    store_q_reset(st);
    return OP_OK;
}

int hubdb_site_enroll(hubdb *db, const char *site_id, const char *pubkey_hex,
                      const char *class_name, const char *owner, const char *token_id,
                      int64_t now_ms, uint64_t seq)
{
    store_q *ins = store_prepare(db->st, "INSERT INTO sites(id, pubkey, class, enrolled_at,"
                                         " token_id, last_seq, owner) VALUES(?,?,?,?,?,?,?)");
    store_q *use = store_prepare(db->st, "UPDATE tokens SET used_at=?, used_by=? WHERE id=?");
    if (!ins || !use) return OP_ESTORE;
    store_q_bind_text(ins, 1, site_id);
    store_q_bind_text(ins, 2, pubkey_hex);
    store_q_bind_text(ins, 3, class_name);
    store_q_bind_int64(ins, 4, now_ms);
    store_q_bind_text(ins, 5, token_id);
    store_q_bind_int64(ins, 6, (int64_t)seq);
    store_q_bind_text(ins, 7, owner);
    int rc = store_q_run(ins);
    store_q_bind_int64(use, 1, now_ms);
    store_q_bind_text(use, 2, site_id);
    store_q_bind_text(use, 3, token_id);
    int rc_use = store_q_run(use);
    return rc != OP_OK ? rc : rc_use;
}

int hubdb_site_set_capacity(hubdb *db, const char *site_id, int cores, int64_t memory_mb,
                            double power_budget_watts, double watts_per_core, double idle_watts,
                            const char *protections_off)
{
    store_q *st = store_prepare(db->st, "UPDATE sites SET cores=?, memory_mb=?,"
                                        " power_budget_watts=?, watts_per_core=?, idle_watts=?,"
                                        " protections_off=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int(st, 1, cores);
    store_q_bind_int64(st, 2, memory_mb);
    store_q_bind_double(st, 3, power_budget_watts);
    store_q_bind_double(st, 4, watts_per_core);
    store_q_bind_double(st, 5, idle_watts);
    store_q_bind_text(st, 6, protections_off);
    store_q_bind_text(st, 7, site_id);
    return store_q_run(st);
}

int hubdb_site_set_beat_key(hubdb *db, const char *site_id, const char *sealed_hex)
{
    store_q *st = store_prepare(db->st, "UPDATE sites SET beat_key=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, sealed_hex);
    store_q_bind_text(st, 2, site_id);
    return store_q_run(st);
}

int hubdb_site_set_departed(hubdb *db, const char *site_id, int departed)
{
    store_q *st = store_prepare(db->st, "UPDATE sites SET departed=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int(st, 1, departed ? 1 : 0);
    store_q_bind_text(st, 2, site_id);
    return store_q_run(st);
}

int hubdb_site_set_seq(hubdb *db, const char *site_id, uint64_t seq)
{
    store_q *st = store_prepare(db->st, "UPDATE sites SET last_seq=? WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, (int64_t)seq);
    store_q_bind_text(st, 2, site_id);
    return store_q_run(st);
}

int hubdb_own_seq_get(hubdb *db, uint64_t *seq)
{
    store_q *st = store_prepare(db->st, "SELECT CAST(value AS INTEGER) FROM meta"
                                        " WHERE key='bus_seq'");
    if (!st) return OP_ESTORE;
    *seq = store_q_step(st) == STORE_ROW ? (uint64_t)store_q_int64(st, 0) : 0;
    store_q_reset(st);
    return OP_OK;
}

int hubdb_own_seq_set(hubdb *db, uint64_t seq)
{
    store_q *st =
        store_prepare(db->st, "INSERT OR REPLACE INTO meta(key, value) VALUES('bus_seq', ?)");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, (int64_t)seq);
    return store_q_run(st);
}

int hubdb_token_create(hubdb *db, const char *token_id, const char *class_name, int64_t created_ms,
                       int64_t expires_ms, const char *created_by)
{
    store_q *st = store_prepare(db->st, "INSERT INTO tokens(id, class, created_at, expires_at,"
                                        " created_by) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, token_id);
    store_q_bind_text(st, 2, class_name);
    store_q_bind_int64(st, 3, created_ms);
    store_q_bind_int64(st, 4, expires_ms);
    store_q_bind_text(st, 5, created_by);
    return store_q_run(st);
}

int hubdb_token_lookup(hubdb *db, const char *token_id, int *known, char used_by[64])
{
    store_q *st = store_prepare(db->st, "SELECT used_by FROM tokens WHERE id=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, token_id);
    *known = store_q_step(st) == STORE_ROW;
    int used = *known && !store_q_is_null(st, 0);
    snprintf(used_by, 64, "%s", used ? store_q_text(st, 0) : "");
    store_q_reset(st);
    return OP_OK;
}

/* ---------- operators' nonces and answers ---------- */

int hubdb_op_nonce_add(hubdb *db, const char *op_id, uint64_t nonce, int64_t ts_ms)
{
    store_q *st =
        store_prepare(db->st, "INSERT OR IGNORE INTO op_nonces(op_id, nonce, ts) VALUES(?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, op_id);
    store_q_bind_int64(st, 2, (int64_t)nonce);
    store_q_bind_int64(st, 3, ts_ms);
    return store_q_run(st);
}

int hubdb_op_nonces_each(hubdb *db, const char *op_id, int64_t *floor_ms,
                         void (*fn)(void *ctx, uint64_t nonce, int64_t ts_ms), void *ctx)
{
    store_q *fl = store_prepare(db->st, "SELECT floor_ms FROM op_floors WHERE op_id=?");
    store_q *st =
        store_prepare(db->st, "SELECT nonce, ts FROM op_nonces WHERE op_id=? AND ts>? ORDER BY ts");
    if (!fl || !st) return OP_ESTORE;
    store_q_bind_text(fl, 1, op_id);
    *floor_ms = store_q_step(fl) == STORE_ROW ? store_q_int64(fl, 0) : 0;
    store_q_reset(fl);
    store_q_bind_text(st, 1, op_id);
    store_q_bind_int64(st, 2, *floor_ms);
    while (store_q_step(st) == STORE_ROW)
        fn(ctx, (uint64_t)store_q_int64(st, 0), store_q_int64(st, 1));
    store_q_reset(st);
    return OP_OK;
}

int hubdb_op_floor_set(hubdb *db, const char *op_id, int64_t floor_ms)
{
    store_q *st =
        store_prepare(db->st, "INSERT OR REPLACE INTO op_floors(op_id, floor_ms) VALUES(?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, op_id);
    store_q_bind_int64(st, 2, floor_ms);
    return store_q_run(st);
}

int hubdb_op_answer_get(hubdb *db, const char *op_id, const char *rid, const char *digest,
                        char **answer)
{
    store_q *st = store_prepare(db->st, "SELECT answer FROM op_answers WHERE op_id=? AND"
                                        " rid=? AND digest=?");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, op_id);
    store_q_bind_text(st, 2, rid);
    store_q_bind_text(st, 3, digest);
    int rc = OP_ENOTFOUND;
    if (store_q_step(st) == STORE_ROW) {
        *answer = strdup(store_q_text(st, 0));
        rc = *answer ? OP_OK : OP_ENOMEM;
    }
    store_q_reset(st);
    return rc;
}

int hubdb_op_answer_put(hubdb *db, const char *op_id, const char *rid, const char *digest,
                        int64_t at_ms, const char *answer)
{
    store_q *st = store_prepare(db->st, "INSERT OR REPLACE INTO op_answers(op_id, rid, digest,"
                                        " at, answer) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_text(st, 1, op_id);
    store_q_bind_text(st, 2, rid);
    store_q_bind_text(st, 3, digest);
    store_q_bind_int64(st, 4, at_ms);
    store_q_bind_text(st, 5, answer);
    return store_q_run(st);
}

int hubdb_op_prune(hubdb *db, int64_t nonces_before_ms, int64_t answers_before_ms,
                   int64_t answers_kept)
{
    store_q *n = store_prepare(db->st, "DELETE FROM op_nonces WHERE ts<?");
    store_q *a = store_prepare(db->st, "DELETE FROM op_answers WHERE at<? OR at<(SELECT at"
                                       " FROM op_answers ORDER BY at DESC LIMIT 1 OFFSET ?)");
    if (!n || !a) return OP_ESTORE;
    store_q_bind_int64(n, 1, nonces_before_ms);
    store_q_bind_int64(a, 1, answers_before_ms);
    store_q_bind_int64(a, 2, answers_kept - 1);
    int rc = store_q_run(n);
    return rc != OP_OK ? rc : store_q_run(a);
}
