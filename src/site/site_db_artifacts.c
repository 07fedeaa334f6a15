/*
 * site_db_artifacts: the artifact cache's SQL (table artifacts, created
 * with the rest of the schema in site_db.c). The bytes are files in
 * <data-dir>/artifacts; a row says what the site knows of them.
 */
#include "base/err.h"
#include "site/site_db.h"

#include <stdlib.h>
#include <string.h>

int sitedb_artifact_put(store *db, const sitedb_artifact_row *r)
{
    sqlite3_stmt *st = store_stmt(db, "INSERT OR REPLACE INTO artifacts(sha256, size, manifest,"
                                      " sig, held, complete, last_used) VALUES(?,?,?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, r->sha256, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, r->size_bytes);
    store_bind_text(st, 3, r->manifest);
    store_bind_text(st, 4, r->sig);
    if (r->held)
        sqlite3_bind_blob(st, 5, r->held, (int)r->held_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int(st, 6, r->complete);
    sqlite3_bind_int64(st, 7, r->last_used_ms);
    return store_step_done(db, st);
}

int sitedb_artifact_held(store *db, const char *sha256, const uint8_t *held, size_t held_len,
                         int complete)
{
    sqlite3_stmt *st = store_stmt(db, "UPDATE artifacts SET held=?, complete=? WHERE sha256=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_blob(st, 1, held, (int)held_len, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, complete);
    sqlite3_bind_text(st, 3, sha256, -1, SQLITE_TRANSIENT);
    return store_step_done(db, st);
}

int sitedb_artifact_touch(store *db, const char *sha256, int64_t last_used_ms)
{
    sqlite3_stmt *st = store_stmt(db, "UPDATE artifacts SET last_used=? WHERE sha256=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, last_used_ms);
    sqlite3_bind_text(st, 2, sha256, -1, SQLITE_TRANSIENT);
    return store_step_done(db, st);
}

int sitedb_artifact_delete(store *db, const char *sha256)
{
    sqlite3_stmt *st = store_stmt(db, "DELETE FROM artifacts WHERE sha256=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, sha256, -1, SQLITE_TRANSIENT);
    return store_step_done(db, st);
}

int sitedb_artifacts_each(store *db, int (*fn)(void *ctx, const sitedb_artifact_row *row),
                          void *ctx)
{
    sqlite3_stmt *st = store_stmt(db, "SELECT sha256, size, manifest, sig, held, complete,"
                                      " last_used FROM artifacts ORDER BY last_used DESC");
    if (!st) return OP_ESTORE;
    int rc = OP_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sitedb_artifact_row r = {.sha256 = store_col_text(st, 0),
                                 .size_bytes = sqlite3_column_int64(st, 1),
                                 .manifest = (const char *)sqlite3_column_text(st, 2),
                                 .sig = (const char *)sqlite3_column_text(st, 3),
                                 .held = sqlite3_column_blob(st, 4),
                                 .held_len = (size_t)sqlite3_column_bytes(st, 4),
                                 .complete = sqlite3_column_int(st, 5),
                                 .last_used_ms = sqlite3_column_int64(st, 6)};
        if (fn(ctx, &r) != 0) break;
    }
    sqlite3_reset(st);
    return rc;
}
