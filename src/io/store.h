/*
 * store: the SQLite adapter under the data layers. Only the roles' data
 * layers (hub_db, site_db) and auditlog include it; they hold the SQL and
 * offer named operations, and nothing above them sees SQLite.
 *
 * One database file per process in its data dir, WAL journal, and
 * synchronous=FULL by default (a commit is on disk when store_commit
 * returns: losing it would lose a job or a result). Statements are prepared
 * once and cached by their SQL text.
 *
 * What is SQLite's and what is ours: the functions here return OP_* codes
 * (SQLite result codes become OP_ESTORE, logged with SQLite's message), but
 * the data layers work on SQLite's own types: store_stmt hands out a cached
 * sqlite3_stmt to bind and step with sqlite3_* calls, and store_db the
 * connection. Those layers map every result to OP_* before returning, so
 * SQLite types and codes stop at them.
 */
#ifndef OUTPOST_STORE_H
#define OUTPOST_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/*
 * Opens (creating) path and runs schema_sql (idempotent CREATE ... IF NOT
 * EXISTS statements). synchronous_full=0 selects NORMAL for stores whose
 * loss is harmless. A file that fails SQLite's quick_check is refused with
 * a message that says so. Errors: OP_ESTORE (message logged), OP_ENOMEM.
 */
int store_open(const char *path, const char *schema_sql, int synchronous_full, store **out);
void store_close(store *s);

/*
 * A consistent copy of the database at src_path into dest_path, taken with
 * SQLite's online backup API while its owner keeps writing (WAL readers do
 * not block it). Written to dest_path.partial, checked (quick_check), then
 * renamed: dest_path is complete or absent. OP_OK, or OP_ESTORE / OP_EIO /
 * OP_ETOOBIG with err set.
 */
int store_backup(const char *src_path, const char *dest_path, char *err, size_t err_len);

/* Runs one or more statements without results. OP_ESTORE. */
int store_exec(store *s, const char *sql);
/* 1 when table (a name from our own code, not outside input) has column, else 0. */
int store_has_column(store *s, const char *table, const char *column);

/*
 * BEGIN IMMEDIATE / COMMIT / ROLLBACK. OP_ESTORE. store_begin nests by
 * counting and only the outermost commit commits. store_rollback at any
 * depth rolls back the whole transaction and ends it: outer callers must
 * not assume their work survived (the roles roll back only at the top).
 */
int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);
int store_in_tx(const store *s);

/*
 * Returns the cached prepared statement for sql, reset and with bindings
 * cleared, or NULL (logged; also when the cache of STORE_MAX_STMTS is full).
 * The statement stays owned by the store. sql must live as long as the
 * store (pass string literals): the cache keeps the pointer.
 */
sqlite3_stmt *store_stmt(store *s, const char *sql);

/*
 * Steps a statement that returns no rows (or whose rows are ignored) and
 * resets it. Returns OP_OK or OP_ESTORE (logged with the SQL).
 */
int store_step_done(store *s, sqlite3_stmt *stmt);

/* Number of rows changed by the last statement. */
int store_changes(store *s);
int64_t store_last_rowid(store *s);
sqlite3 *store_db(store *s);

/* Bind helpers that accept NULL strings as SQL NULL. */
void store_bind_text(sqlite3_stmt *stmt, int idx, const char *text);
/* Column text as a C string ("" for NULL). */
const char *store_col_text(sqlite3_stmt *stmt, int col);

#endif
