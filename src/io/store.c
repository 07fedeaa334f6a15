#include "io/store.h"

#include "io/store_int.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * An error line, unless it repeats the last one within 30 s (a full disk
 * fails every batch the same way): repeats are counted and the count is
 * printed with the next line that goes out.
 */
void store__error(store *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    int64_t now = os_mono_ms();
    if (strcmp(line, s->last_error) == 0 && now - s->last_error_ms < 30000) {
        s->repeats++;
        return;
    }
    if (s->repeats)
        log_error("store", "%s (and %u times more like the one before)", line, s->repeats);
    else
        log_error("store", "%s", line);
    snprintf(s->last_error, sizeof s->last_error, "%s", line);
    s->last_error_ms = now;
    s->repeats = 0;
}

static int fail(store *s, const char *what)
{
    store__error(s, "%s: %s (%s)", what, sqlite3_errmsg(s->db), s->path);
    return OP_ESTORE;
}

/*
 * SQLite's quick_check (B-tree structure, no index-content cross-check):
 * a damaged file is refused at open instead of failing somewhere later.
 * OP_OK, or OP_ESTORE with the first problems logged.
 */
static int quick_check(store *s)
{
    sqlite3_stmt *st = NULL;
    char found[512] = "";
    size_t used = 0;
    int ok = 0;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(3)", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = SQLITE_ROW;
    while (rc == SQLITE_ROW && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(st, 0);
        if (row && strcmp(row, "ok") == 0) ok = 1;
        if (row && used < sizeof found - 1)
            used +=
                (size_t)snprintf(found + used, sizeof found - used, "%s%s", used ? "; " : "", row);
    }
    sqlite3_finalize(st); /* a damaged header fails the prepare or the first step */
    if (rc == SQLITE_DONE && ok) return OP_OK;
    log_error("store",
              "%s is damaged (SQLite quick_check: %s); stop, keep the file for analysis and "
              "restore the last backup (docs/operations.md, Backups)",
              s->path, found[0] ? found : sqlite3_errmsg(s->db));
    return OP_ESTORE;
}

int store_open(const char *path, const char *schema_sql, int synchronous_full, store **out)
{
    store *s = calloc(1, sizeof *s);
    if (!s) return OP_ENOMEM;
    if (store_is_url(path)) {
        if (store__pg_open(s, path, schema_sql) != OP_OK) {
            store_close(s);
            return OP_ESTORE;
        }
        *out = s;
        return OP_OK;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        if (s->db) fail(s, "open");
        store_close(s);
        return OP_ESTORE;
    }
    sqlite3_busy_timeout(s->db, 5000);
    const char *pragmas = synchronous_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                             "PRAGMA foreign_keys=ON;"
                                           : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                             "PRAGMA foreign_keys=ON;";
    if (quick_check(s) != OP_OK || store_exec(s, pragmas) != OP_OK ||
        store_exec(s, schema_sql) != OP_OK) {
        store_close(s);
        return OP_ESTORE;
    }
    *out = s;
    return OP_OK;
}

void store_close(store *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_cached; i++) {
        store_q *q = s->cache[i];
        sqlite3_finalize(q->lite);
        store__pg_forget(q);
        free(q);
    }
    if (s->db) sqlite3_close(s->db);
    store__pg_close(s);
    free(s);
}

int store_is_url(const char *where)
{
    return strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0 ||
           strncmp(where, "host=", 5) == 0 || strncmp(where, "dbname=", 7) == 0;
}

int store_is_pg(const store *s)
{
    return s->pg != NULL;
}

int64_t store_now_ms(store *s)
{
    return s->pg ? store__pg_now_ms(s) : os_now_ms();
}

int store_exec(store *s, const char *sql)
{
    if (s->pg) return store__pg_exec(s, sql);
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        store__error(s, "%s: %s (%s)", sql, err ? err : "?", s->path);
        sqlite3_free(err);
        return OP_ESTORE;
    }
    return OP_OK;
}

int store_has_column(store *s, const char *table, const char *column)
{
    if (s->pg) return store__pg_has_column(s, table, column);
    sqlite3_stmt *st = NULL;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s') WHERE name=?", table);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_text(st, 1, column, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int store_begin(store *s)
{
    if (s->tx_depth++ > 0) return OP_OK;
    s->pg_tx_broken = 0;
    if (store_exec(s, s->pg ? "BEGIN" : "BEGIN IMMEDIATE") != OP_OK) {
        s->tx_depth = 0;
        return OP_ESTORE;
    }
    return OP_OK;
}

int store_commit(store *s)
{
    if (s->tx_depth == 0) return OP_OK;
    if (--s->tx_depth > 0) return OP_OK;
    if (store_exec(s, "COMMIT") != OP_OK) {
        /* SQLite rolls a transaction back by itself after some failures (a full disk) */
        if (s->pg || !sqlite3_get_autocommit(s->db)) store_exec(s, "ROLLBACK");
        s->pg_tx_broken = 0;
        return OP_ESTORE;
    }
    return OP_OK;
}

void store_rollback(store *s)
{
    if (s->tx_depth == 0) return;
    s->tx_depth = 0;
    s->pg_tx_broken = 0;
    if (s->pg || !sqlite3_get_autocommit(s->db)) store_exec(s, "ROLLBACK");
}

int store_in_tx(const store *s)
{
    return s->tx_depth;
}

/*
 * The statement for sql from the cache, or prepared and cached. A full
 * cache is an error, not an eviction: the roles use a fixed set of
 * statements, so running past it is a bug to see, not to paper over.
 */
store_q *store_prepare(store *s, const char *sql)
{
    for (int i = 0; i < s->n_cached; i++) {
        store_q *q = s->cache[i];
        if (q->sql == sql || strcmp(q->sql, sql) == 0) {
            store_q_reset(q);
            if (q->lite) sqlite3_clear_bindings(q->lite);
            for (int p = 0; p < q->n_params; p++)
                store__pg_bind(q, p + 1, NULL, 0, 0);
            if (s->pg && !q->prepared && store__pg_prepare(q) != OP_OK) return NULL;
            return q;
        }
    }
    if (s->n_cached == STORE_MAX_STMTS) {
        log_error("store", "statement cache full; raise STORE_MAX_STMTS");
        return NULL;
    }
    store_q *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->s = s;
    q->sql = sql;
    int rc = OP_OK;
    if (s->pg) {
        snprintf(q->name, sizeof q->name, "q%d", s->n_cached);
        rc = store__pg_prepare(q);
    } else if (sqlite3_prepare_v2(s->db, sql, -1, &q->lite, NULL) != SQLITE_OK) {
        store__error(s, "prepare '%s': %s", sql, sqlite3_errmsg(s->db));
        rc = OP_ESTORE;
    }
    if (rc != OP_OK) {
        sqlite3_finalize(q->lite);
        store__pg_forget(q);
        free(q);
        return NULL;
    }
    s->cache[s->n_cached++] = q;
    return q;
}

void store_q_bind_int(store_q *q, int idx, int value)
{
    store_q_bind_int64(q, idx, value);
}

void store_q_bind_int64(store_q *q, int idx, int64_t value)
{
    if (q->lite) {
        sqlite3_bind_int64(q->lite, idx, value);
        return;
    }
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)value);
    store__pg_bind(q, idx, text, strlen(text), 0);
}

void store_q_bind_double(store_q *q, int idx, double value)
{
    if (q->lite) {
        sqlite3_bind_double(q->lite, idx, value);
        return;
    }
    char text[40];
    snprintf(text, sizeof text, "%.17g", value);
    store__pg_bind(q, idx, text, strlen(text), 0);
}

void store_q_bind_text(store_q *q, int idx, const char *text)
{
    if (q->lite)
        store_bind_text(q->lite, idx, text);
    else
        store__pg_bind(q, idx, text, text ? strlen(text) : 0, 0);
}

void store_q_bind_blob(store_q *q, int idx, const void *data, size_t len)
{
    if (!q->lite)
        store__pg_bind(q, idx, data, len, 1);
    else if (data)
        sqlite3_bind_blob(q->lite, idx, data, (int)len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q->lite, idx);
}

void store_q_bind_null(store_q *q, int idx)
{
    if (q->lite)
        sqlite3_bind_null(q->lite, idx);
    else
        store__pg_bind(q, idx, NULL, 0, 0);
}

int store_q_step(store_q *q)
{
    if (!q->lite) return store__pg_step(q);
    int rc = sqlite3_step(q->lite);
    if (rc == SQLITE_ROW) return STORE_ROW;
    if (rc == SQLITE_DONE) return STORE_DONE;
    store__error(q->s, "step '%s': %s", q->sql, sqlite3_errmsg(q->s->db));
    return OP_ESTORE;
}

void store_q_reset(store_q *q)
{
    if (q->lite)
        sqlite3_reset(q->lite);
    else
        store__pg_reset(q);
}

int store_q_run(store_q *q)
{
    if (!q) return OP_ESTORE;
    int rc = store_q_step(q);
    store_q_reset(q);
    return rc == OP_ESTORE ? OP_ESTORE : OP_OK;
}

int store_q_int(store_q *q, int col)
{
    return (int)store_q_int64(q, col);
}

int64_t store_q_int64(store_q *q, int col)
{
    if (q->lite) return sqlite3_column_int64(q->lite, col);
    const char *t = store__pg_text(q, col);
    if (t[0] == 't' && t[1] == '\0') return 1; /* a boolean expression's value */
    return strtoll(t, NULL, 10);
}

double store_q_double(store_q *q, int col)
{
    if (q->lite) return sqlite3_column_double(q->lite, col);
    return strtod(store__pg_text(q, col), NULL);
}

const char *store_q_text(store_q *q, int col)
{
    return q->lite ? store_col_text(q->lite, col) : store__pg_text(q, col);
}

const void *store_q_blob(store_q *q, int col)
{
    int len = 0;
    return q->lite ? sqlite3_column_blob(q->lite, col) : store__pg_blob(q, col, &len);
}

int store_q_bytes(store_q *q, int col)
{
    int len = 0;
    if (q->lite) return sqlite3_column_bytes(q->lite, col);
    store__pg_blob(q, col, &len);
    return len;
}

int store_q_is_null(store_q *q, int col)
{
    if (q->lite) return sqlite3_column_type(q->lite, col) == SQLITE_NULL;
    return store__pg_is_null(q, col);
}

sqlite3_stmt *store_stmt(store *s, const char *sql)
{
    if (s->pg) {
        log_error("store", "a SQLite-only statement on a PostgreSQL store: '%s'", sql);
        return NULL;
    }
    store_q *q = store_prepare(s, sql);
    return q ? q->lite : NULL;
}

int store_step_done(store *s, sqlite3_stmt *stmt)
{
    if (!stmt) return OP_ESTORE;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store__error(s, "step '%s': %s", sqlite3_sql(stmt), sqlite3_errmsg(s->db));
        sqlite3_reset(stmt);
        return OP_ESTORE;
    }
    sqlite3_reset(stmt);
    return OP_OK;
}

int store_changes(store *s)
{
    return s->pg ? (int)s->pg_changes : sqlite3_changes(s->db);
}

int64_t store_last_rowid(store *s)
{
    return s->pg ? store__pg_last_id(s) : sqlite3_last_insert_rowid(s->db);
}

sqlite3 *store_db(store *s)
{
    return s->db;
}

void store_bind_text(sqlite3_stmt *stmt, int idx, const char *text)
{
    if (text)
        sqlite3_bind_text(stmt, idx, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, idx);
}

const char *store_col_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t ? (const char *)t : "";
}

/* Copies src (open read-only) into dest with SQLite's online backup API. OP_OK or OP_ESTORE. */
static int copy_database(const char *src_path, const char *dest_path, char *err, size_t err_len)
{
    sqlite3 *src = NULL, *dest = NULL;
    int rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(src, 5000);
        sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
        if (!b) {
            rc = sqlite3_errcode(dest);
        } else {
            do {
                rc = sqlite3_backup_step(b, 256);
                if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
            } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
            rc = sqlite3_backup_finish(b);
        }
    }
    if (rc != SQLITE_OK)
        snprintf(err, err_len, "backup of %s: %s", src_path,
                 dest  ? sqlite3_errmsg(dest)
                 : src ? sqlite3_errmsg(src)
                       : "out of memory");
    sqlite3_close(src);
    sqlite3_close(dest);
    return rc == SQLITE_OK ? OP_OK : OP_ESTORE;
}

int store_backup(const char *src_path, const char *dest_path, char *err, size_t err_len)
{
    char tmp[600];
    if (snprintf(tmp, sizeof tmp, "%s.partial", dest_path) >= (int)sizeof tmp) {
        snprintf(err, err_len, "path too long: %s", dest_path);
        return OP_ETOOBIG;
    }
    unlink(tmp);
    int rc = copy_database(src_path, tmp, err, err_len);
    store *check = NULL;
    if (rc == OP_OK && (rc = store_open(tmp, "", 1, &check)) != OP_OK)
        snprintf(err, err_len, "the copy of %s does not check out", src_path);
    store_close(check);
    if (rc == OP_OK && rename(tmp, dest_path) != 0) {
        snprintf(err, err_len, "rename %s: %s", tmp, strerror(errno));
        rc = OP_EIO;
    }
    if (rc != OP_OK) unlink(tmp);
    return rc;
}
