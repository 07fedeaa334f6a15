#include "site/site_db.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "site/site_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *site_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " spec TEXT NOT NULL, state TEXT NOT NULL, accepted_at INTEGER NOT NULL,"
    " PRIMARY KEY(job_id, attempt));"
    "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " job_id INTEGER NOT NULL, attempt INTEGER NOT NULL, body TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, UNIQUE(job_id, attempt));"
    "CREATE TABLE IF NOT EXISTS leases(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " lease_ms INTEGER NOT NULL, PRIMARY KEY(job_id, attempt));"
    /* the artifact cache (site_db_artifacts.c) */
    "CREATE TABLE IF NOT EXISTS artifacts(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " manifest TEXT, sig TEXT, held BLOB, complete INTEGER NOT NULL DEFAULT 0,"
    " last_used INTEGER NOT NULL DEFAULT 0);"
    /* exceptions to learn from (site_db_learn.c) */
    "CREATE TABLE IF NOT EXISTS exceptions(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, features TEXT NOT NULL, planned REAL NOT NULL, actual REAL NOT NULL,"
    " at_ms INTEGER NOT NULL, data_class INTEGER NOT NULL);";

int sitedb_open(const char *path, store **out)
{
    return store_open(path, site_schema, 1, out);
}

void sitedb_close(store *db)
{
    store_close(db);
}

int sitedb_begin(store *db)
{
    return store_begin(db);
}

int sitedb_commit(store *db)
{
    return store_commit(db);
}

void sitedb_rollback(store *db)
{
    store_rollback(db);
}

int sitedb_in_tx(const store *db)
{
    return store_in_tx(db);
}

int sitedb_meta_get(store *db, const char *key, char *out, size_t out_len)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT value FROM meta WHERE key=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = OP_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, out_len, "%s", store_col_text(st, 0));
        rc = OP_OK;
    }
    sqlite3_reset(st);
    return rc;
}

int sitedb_meta_set(store *db, const char *key, const char *value)
{
    sqlite3_stmt *st = store_stmt(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    return store_step_done(db, st);
}

int sitedb_pin_hub(store *db, const char *hub_id, const char *pk_hex)
{
    if (store_begin(db) != OP_OK || sitedb_meta_set(db, "hub_id", hub_id) != OP_OK ||
        sitedb_meta_set(db, "hub_pubkey", pk_hex) != OP_OK || store_commit(db) != OP_OK) {
        store_rollback(db);
        return OP_ESTORE;
    }
    return OP_OK;
}

/* Binds (job, attempt) to the first two parameters of st and runs it. */
static int step_pair(store *db, sqlite3_stmt *st, int64_t job_id, int64_t attempt)
{
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    return store_step_done(db, st);
}

int sitedb_job_known(store *db, int64_t job_id, int64_t attempt)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT 1 FROM jobs WHERE job_id=? AND attempt=?");
    if (!st) return 1;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    int known = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return known;
}

int sitedb_job_accept(store *db, int64_t job_id, int64_t attempt, const char *spec,
                      int64_t accepted_at_ms)
{
    sqlite3_stmt *st = store_stmt(db, "INSERT INTO jobs(job_id, attempt, spec, state,"
                                      " accepted_at) VALUES(?,?,?,'accepted',?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, spec, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, accepted_at_ms);
    return store_step_done(db, st);
}

int sitedb_job_forget(store *db, int64_t job_id, int64_t attempt)
{
    return step_pair(db, store_stmt(db, "DELETE FROM jobs WHERE job_id=? AND attempt=?"), job_id,
                     attempt);
}

int sitedb_lease_set(store *db, int64_t job_id, int64_t attempt, int64_t lease_ms)
{
    sqlite3_stmt *st = store_stmt(db, "INSERT OR REPLACE INTO leases(job_id, attempt,"
                                      " lease_ms) VALUES(?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 3, lease_ms);
    return step_pair(db, st, job_id, attempt);
}

int sitedb_unfinished_jobs(store *db, sitedb_job_row *rows, int max, int *n)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT j.job_id, j.attempt, j.spec, l.lease_ms FROM jobs"
                                      " j LEFT JOIN leases l ON l.job_id=j.job_id AND"
                                      " l.attempt=j.attempt WHERE j.state != 'done'"
                                      " ORDER BY j.accepted_at");
    *n = 0;
    if (!st) return OP_ESTORE;
    while (*n < max && sqlite3_step(st) == SQLITE_ROW) {
        sitedb_job_row *r = &rows[*n];
        r->job_id = sqlite3_column_int64(st, 0);
        r->attempt = sqlite3_column_int64(st, 1);
        r->lease_ms = sqlite3_column_int64(st, 3); /* 0 when NULL: no lease */
        r->spec = strdup(store_col_text(st, 2));
        if (r->spec) (*n)++;
    }
    sqlite3_reset(st);
    return OP_OK;
}

int sitedb_result_store(store *db, int64_t job_id, int64_t attempt, const char *body,
                        int64_t created_at_ms)
{
    sqlite3_stmt *ins = store_stmt(db, "INSERT OR IGNORE INTO outbox(job_id, attempt, body,"
                                       " created_at) VALUES(?,?,?,?)");
    sqlite3_stmt *up = store_stmt(db, "UPDATE jobs SET state='done' WHERE job_id=? AND"
                                      " attempt=?");
    if (!ins || !up) return OP_ESTORE;
    sqlite3_bind_text(ins, 3, body, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 4, created_at_ms);
    int rc = step_pair(db, ins, job_id, attempt);
    int rc_up = step_pair(db, up, job_id, attempt);
    return rc != OP_OK ? rc : rc_up;
}

int sitedb_result_acked(store *db, int64_t job_id, int64_t attempt, int *removed)
{
    sqlite3_stmt *del = store_stmt(db, "DELETE FROM outbox WHERE job_id=? AND attempt=?");
    sqlite3_stmt *done = store_stmt(db, "DELETE FROM jobs WHERE job_id=? AND attempt=?"
                                        " AND state='done'");
    *removed = 0;
    if (!del || !done) return OP_ESTORE;
    int rc = step_pair(db, del, job_id, attempt);
    *removed = store_changes(db) > 0;
    int rc_done = step_pair(db, done, job_id, attempt);
    return rc != OP_OK ? rc : rc_done;
}

int sitedb_outbox_each(store *db, int64_t created_before_ms, int limit, sitedb_outbox_fn fn,
                       void *ctx)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT body, job_id FROM outbox WHERE created_at < ?"
                                      " ORDER BY id LIMIT ?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, created_before_ms);
    sqlite3_bind_int(st, 2, limit);
    while (sqlite3_step(st) == SQLITE_ROW)
        if (fn(ctx, sqlite3_column_int64(st, 1), store_col_text(st, 0))) break;
    sqlite3_reset(st);
    return OP_OK;
}

int sitedb_outbox_count(store *db, int64_t *count)
{
    sqlite3_stmt *q = store_stmt(db, "SELECT COUNT(*) FROM outbox");
    if (!q) return OP_ESTORE;
    int rc = OP_ESTORE;
    if (sqlite3_step(q) == SQLITE_ROW) {
        *count = sqlite3_column_int64(q, 0);
        rc = OP_OK;
    }
    sqlite3_reset(q);
    return rc;
}

/* ---------- the site's transaction and audit log over this store ---------- */

int site__ensure_tx(site *s)
{
    if (store_in_tx(s->db)) return OP_OK;
    int rc = store_begin(s->db);
    if (rc != OP_OK) s->store_failed = 1;
    return rc;
}

void site__audit_job(site *s, const char *kind, int64_t job_id, int64_t attempt, const char *detail)
{
    if (!s->audit || site__ensure_tx(s) != OP_OK) return;
    char subject[40];
    snprintf(subject, sizeof subject, "job:%lld", (long long)job_id);
    cJSON *body = cJSON_CreateObject();
    char *text = NULL;
    if (body) {
        jsonx_add_int(body, "job", job_id);
        jsonx_add_int(body, "attempt", attempt);
        if (detail) cJSON_AddStringToObject(body, "detail", detail);
        text = cJSON_PrintUnformatted(body);
    }
    cJSON_Delete(body);
    if (!text || auditlog_append(s->audit, os_now_ms(), kind, subject, text, NULL) != OP_OK)
        s->store_failed = 1;
    free(text);
}
