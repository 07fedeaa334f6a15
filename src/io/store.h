/*
 * store: the database adapter under the data layers. Only the roles' data
 * layers (hub_db, site_db) and auditlog include it; they hold the SQL and
 * offer named operations, and nothing above them sees a database library.
 *
 * Two engines behind one interface. SQLite (the default; a path): one
 * database file per process in its data dir, WAL journal, and
 * synchronous=FULL by default (a commit is on disk when store_commit
 * returns: losing it would lose a job or a result). PostgreSQL (a
 * "postgresql://" or "postgres://" URL, or "host=... dbname=..." key words;
 * store_pg.c over libpq): the hub's state shared by an active hub and its
 * standbys (docs/failover.md).
 *
 * The portable interface is store_prepare and the store_q_* calls: SQL is
 * written once, in the common dialect of both engines with SQLite's spelling
 * where they differ (`?` and `?N` parameters, INSERT OR IGNORE / OR REPLACE,
 * IFNULL, json_extract(x, '$.key'), INTEGER PRIMARY KEY as the generated key,
 * INTEGER, REAL and BLOB columns), and the PostgreSQL backend rewrites it
 * (`$n`, ON CONFLICT, COALESCE, ->>, BIGSERIAL, BIGINT, DOUBLE PRECISION,
 * BYTEA). A parameter tested with "? IS NULL" must be text (PostgreSQL
 * cannot infer its type there; it is cast). Statements are prepared once
 * and cached by their SQL text.
 *
 * The site agent's data layer still uses the SQLite-only calls at the end
 * of this header (store_stmt hands out a sqlite3_stmt); they refuse a
 * PostgreSQL store. Engine result codes become OP_ESTORE, logged with the
 * engine's message, and never leak upward.
 */
#ifndef OUTPOST_STORE_H
#define OUTPOST_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
/* A prepared statement, owned by its store's cache (never freed by callers). */
typedef struct store_q store_q;

/* What store_q_step returns besides OP_ESTORE. */
enum { STORE_ROW = 100, STORE_DONE = 101 };

/*
 * Opens (creating) path and runs schema_sql (idempotent CREATE ... IF NOT
 * EXISTS statements). synchronous_full=0 selects NORMAL for stores whose
 * loss is harmless. A file that fails SQLite's quick_check is refused with
 * a message that says so. A PostgreSQL URL (store_is_url) connects instead
 * (schema set up under an advisory lock, so hubs starting together do not
 * race); an unreachable server is refused with its message.
 * Errors: OP_ESTORE (message logged), OP_ENOMEM.
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

/* 1 when where names a PostgreSQL server rather than a SQLite file. */
int store_is_url(const char *where);
/*
 * where as it may be written into a file others read (the hub's cli.conf):
 * a SQLite path, or a PostgreSQL URL or key words without a password, as
 * they are; with one (user:password@, password=...), the same settings as
 * key words without it, and *had_password set (libpq then takes the
 * password from ~/.pgpass or PGPASSWORD). OP_OK; OP_EINVAL when libpq
 * cannot parse it or nothing is left that names a server (no host, no
 * dbname); OP_ETOOBIG when out is too small.
 */
int store_where_public(const char *where, char *out, size_t cap, int *had_password);
/* 1 when s is a PostgreSQL store. */
int store_is_pg(const store *s);
/*
 * The database's clock in ms since the epoch (the server's under
 * PostgreSQL, so hubs on different machines agree on a lease's expiry; this
 * machine's under SQLite). 0 when it cannot be read (logged).
 */
int64_t store_now_ms(store *s);

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
/* The transaction's nesting depth: 0 outside one. */
int store_in_tx(const store *s);

/* ---------- the portable interface ---------- */

/*
 * Returns the cached prepared statement for sql, reset and with bindings
 * cleared, or NULL (logged; also when the cache of STORE_MAX_STMTS is full).
 * The statement stays owned by the store. sql must live as long as the
 * store (pass string literals): the cache keeps the pointer.
 */
store_q *store_prepare(store *s, const char *sql);

/* Bindings, numbered from 1; a NULL text or blob binds SQL NULL. Kept across store_q_reset. */
void store_q_bind_int(store_q *q, int idx, int value);
void store_q_bind_int64(store_q *q, int idx, int64_t value);
void store_q_bind_double(store_q *q, int idx, double value);
void store_q_bind_text(store_q *q, int idx, const char *text);
void store_q_bind_blob(store_q *q, int idx, const void *data, size_t len);
void store_q_bind_null(store_q *q, int idx);

/*
 * The next row: STORE_ROW (columns readable until the next step or reset),
 * STORE_DONE, or OP_ESTORE (logged with the SQL).
 */
int store_q_step(store_q *q);
/* Back to before the first row; bindings stay. */
void store_q_reset(store_q *q);
/*
 * Steps a statement that returns no rows (or whose rows are ignored) and
 * resets it. Returns OP_OK or OP_ESTORE (logged with the SQL).
 */
int store_q_run(store_q *q);

/* Columns of the current row, numbered from 0. NULL reads as 0, 0.0 and "". */
int store_q_int(store_q *q, int col);
int64_t store_q_int64(store_q *q, int col);
double store_q_double(store_q *q, int col);
const char *store_q_text(store_q *q, int col);
/* A blob's bytes (valid until the next step or reset) and their count. */
const void *store_q_blob(store_q *q, int col);
int store_q_bytes(store_q *q, int col);
int store_q_is_null(store_q *q, int col);

/* Number of rows changed by the last statement. */
int store_changes(store *s);
/* The key generated by the last insert into a table with an INTEGER PRIMARY KEY. */
int64_t store_last_rowid(store *s);

/* ---------- SQLite only (the site agent's data layer) ---------- */

/* As store_prepare, the SQLite statement itself; NULL (logged) on a PostgreSQL store. */
sqlite3_stmt *store_stmt(store *s, const char *sql);
/* As store_q_run, for a statement from store_stmt. */
int store_step_done(store *s, sqlite3_stmt *stmt);
/* The SQLite connection; NULL on a PostgreSQL store. */
sqlite3 *store_db(store *s);

/* Bind helpers that accept NULL strings as SQL NULL. */
void store_bind_text(sqlite3_stmt *stmt, int idx, const char *text);
/* Column text as a C string ("" for NULL). */
const char *store_col_text(sqlite3_stmt *stmt, int col);

#endif
