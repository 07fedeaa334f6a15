/*
 * site_db_learn: the SQL of the site's exceptions (table exceptions,
 * created with the rest of the schema in site_db.c): what its learn jobs
 * train on. Rows never leave the site; only models and their metrics do.
 */
#include "base/err.h"
#include "site/site_db.h"

#include <stdlib.h>
#include <string.h>

int sitedb_exception_add(store *db, const sitedb_exception *e, int64_t *id)
{
    sqlite3_stmt *st = store_stmt(db, "INSERT INTO exceptions(kind, features, planned, actual,"
                                      " at_ms, data_class) VALUES(?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, e->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, e->features, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 3, e->planned_s);
    sqlite3_bind_double(st, 4, e->actual_s);
    sqlite3_bind_int64(st, 5, e->at_ms);
    sqlite3_bind_int(st, 6, e->data_class);
    int rc = store_step_done(db, st);
    if (rc == OP_OK && id) *id = store_last_rowid(db);
    return rc;
}

/* One integer from a query with up to two integer parameters. */
static int query_int(store *db, const char *sql, int n_params, int64_t a, int64_t b, int64_t *out)
{
    sqlite3_stmt *st = store_stmt(db, sql);
    if (!st) return OP_ESTORE;
    if (n_params > 0) sqlite3_bind_int64(st, 1, a);
    if (n_params > 1) sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st) == SQLITE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc;
}

int sitedb_exceptions_prune(store *db, int64_t keep_newest, int64_t keep_sample, int64_t *removed)
{
    int64_t cutoff = 0, older = 0, stride = 1;
    *removed = 0;
    /* the id at or below which rows are "older": the keep_newest-th newest's predecessor */
    int rc = query_int(db,
                       "SELECT COALESCE((SELECT id FROM exceptions ORDER BY id DESC LIMIT 1"
                       " OFFSET ?), 0)",
                       1, keep_newest, 0, &cutoff);
    if (rc != OP_OK || cutoff == 0) return rc;
    for (;;) {
        rc = query_int(db, "SELECT COUNT(*) FROM exceptions WHERE id <= ? AND id % ? = 0", 2,
                       cutoff, stride, &older);
        if (rc != OP_OK) return rc;
        if (older <= keep_sample || stride > ((int64_t)1 << 40)) break;
        stride *= 2;
    }
    sqlite3_stmt *st = store_stmt(db, "DELETE FROM exceptions WHERE id <= ? AND id % ? != 0");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, stride);
    rc = store_step_done(db, st);
    if (rc == OP_OK) *removed = store_changes(db);
    if (rc == OP_OK && keep_sample == 0) { /* stride 2^40 may still leave a row */
        st = store_stmt(db, "DELETE FROM exceptions WHERE id <= ?");
        if (!st) return OP_ESTORE;
        sqlite3_bind_int64(st, 1, cutoff);
        rc = store_step_done(db, st);
        if (rc == OP_OK) *removed += store_changes(db);
    }
    return rc;
}

int sitedb_exceptions_count(store *db, const char *kind, int64_t *count, int64_t *max_id)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM exceptions"
                                      " WHERE ?1 IS NULL OR kind = ?1");
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, kind);
    int rc = sqlite3_step(st) == SQLITE_ROW ? OP_OK : OP_ESTORE;
    if (rc == OP_OK) {
        *count = sqlite3_column_int64(st, 0);
        if (max_id) *max_id = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc;
}

int sitedb_exceptions_each(store *db, const char *kind, int max_class, int64_t after_id,
                           int (*fn)(void *ctx, const sitedb_exception *e), void *ctx)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT id, kind, features, planned, actual, at_ms,"
                                      " data_class FROM exceptions WHERE (?1 IS NULL OR kind = ?1)"
                                      " AND data_class <= ?2 AND id > ?3 ORDER BY id");
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, kind);
    sqlite3_bind_int(st, 2, max_class);
    sqlite3_bind_int64(st, 3, after_id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        sitedb_exception e = {.id = sqlite3_column_int64(st, 0),
                              .kind = store_col_text(st, 1),
                              .features = store_col_text(st, 2),
                              .planned_s = sqlite3_column_double(st, 3),
                              .actual_s = sqlite3_column_double(st, 4),
                              .at_ms = sqlite3_column_int64(st, 5),
                              .data_class = sqlite3_column_int(st, 6)};
        if (fn(ctx, &e) != 0) break;
    }
    sqlite3_reset(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? OP_OK : OP_ESTORE;
}
