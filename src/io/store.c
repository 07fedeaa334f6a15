#include "io/store.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORE_MAX_STMTS 128

struct store {
    sqlite3 *db;
    struct {
        const char *sql; /* the caller's string literal: compared by pointer, then text */
        sqlite3_stmt *stmt;
    } cache[STORE_MAX_STMTS];
    int n_cached;
    int tx_depth;
    char path[512];
    char last_error[512]; /* the last error line, for rate limiting */
    int64_t last_error_ms;
    unsigned repeats; /* identical lines not printed since */
};

/*
 * An error line, unless it repeats the last one within 30 s (a full disk
 * fails every batch the same way): repeats are counted and the count is
 * printed with the next line that goes out.
 */
static void store_error(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void store_error(store *s, const char *fmt, ...)
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
    store_error(s, "%s: %s (%s)", what, sqlite3_errmsg(s->db), s->path);
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
    for (int i = 0; i < s->n_cached; i++)
        sqlite3_finalize(s->cache[i].stmt);
    if (s->db) sqlite3_close(s->db);
    free(s);
}

int store_exec(store *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        store_error(s, "%s: %s (%s)", sql, err ? err : "?", s->path);
        sqlite3_free(err);
        return OP_ESTORE;
    }
    return OP_OK;
}

int store_has_column(store *s, const char *table, const char *column)
{
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
    if (store_exec(s, "BEGIN IMMEDIATE") != OP_OK) {
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
        if (!sqlite3_get_autocommit(s->db)) store_exec(s, "ROLLBACK");
        return OP_ESTORE;
    }
    return OP_OK;
}

void store_rollback(store *s)
{
    if (s->tx_depth == 0) return;
    s->tx_depth = 0;
    if (!sqlite3_get_autocommit(s->db)) store_exec(s, "ROLLBACK");
}

int store_in_tx(const store *s)
{
    return s->tx_depth > 0;
}

sqlite3_stmt *store_stmt(store *s, const char *sql)
{
    for (int i = 0; i < s->n_cached; i++) {
        if (s->cache[i].sql == sql || strcmp(s->cache[i].sql, sql) == 0) {
            sqlite3_stmt *stmt = s->cache[i].stmt;
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            return stmt;
        }
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        store_error(s, "prepare '%s': %s", sql, sqlite3_errmsg(s->db));
        return NULL;
    }
    if (s->n_cached < STORE_MAX_STMTS) {
        s->cache[s->n_cached].sql = sql;
        s->cache[s->n_cached].stmt = stmt;
        s->n_cached++;
        return stmt;
    }
    /* The cache is sized for every statement the roles use; past it the call fails. */
    log_error("store", "statement cache full; raise STORE_MAX_STMTS");
    sqlite3_finalize(stmt);
    return NULL;
}

int store_step_done(store *s, sqlite3_stmt *stmt)
{
    if (!stmt) return OP_ESTORE;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_error(s, "step '%s': %s", sqlite3_sql(stmt), sqlite3_errmsg(s->db));
        sqlite3_reset(stmt);
        return OP_ESTORE;
    }
    sqlite3_reset(stmt);
    return OP_OK;
}

int store_changes(store *s)
{
    return sqlite3_changes(s->db);
}

int64_t store_last_rowid(store *s)
{
    return sqlite3_last_insert_rowid(s->db);
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
