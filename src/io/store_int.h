/*
 * store_int: what the two engines of the store (store.c, SQLite, and
 * store_pg.c, PostgreSQL) share and nothing else sees: the handle's and a
 * statement's layout, and the PostgreSQL backend's entry points.
 */
#ifndef OUTPOST_STORE_INT_H
#define OUTPOST_STORE_INT_H

#include "io/store.h"

#define STORE_MAX_STMTS 160
#define STORE_MAX_PARAMS 48
#define STORE_MAX_COLS 40

struct pg_conn;
struct pg_result;

struct store_q {
    store *s;
    const char *sql; /* the caller's string literal: compared by pointer, then text */
    sqlite3_stmt *lite;
    /* PostgreSQL: the rewritten text, its server-side name and the text of each binding */
    char *pg_sql;
    char name[16];
    int prepared; /* on the current connection */
    int n_params;
    char *param[STORE_MAX_PARAMS];
    int param_len[STORE_MAX_PARAMS];
    int param_binary[STORE_MAX_PARAMS];
    struct pg_result *res;
    int row, n_rows, started;
    unsigned char *blob[STORE_MAX_COLS]; /* decoded bytea of the current row */
    size_t blob_len[STORE_MAX_COLS];
};

struct store {
    sqlite3 *db;
    struct pg_conn *pg;
    store_q *cache[STORE_MAX_STMTS];
    int n_cached;
    int tx_depth;
    int64_t pg_changes;   /* rows the last PostgreSQL statement changed */
    int pg_tx_broken;     /* the connection was reset inside a transaction: only a rollback helps */
    char path[512];       /* the file, or the URL with any password masked */
    char last_error[512]; /* the last error line, for rate limiting */
    int64_t last_error_ms;
    unsigned repeats; /* identical lines not printed since */
};

/* An error line, rate limited (store.c). */
void store__error(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* store_pg.c: connect (conninfo) and set up the schema. OP_OK or OP_ESTORE (logged). */
int store__pg_open(store *s, const char *conninfo, const char *schema_sql);
void store__pg_close(store *s);
int store__pg_exec(store *s, const char *sql);
int store__pg_has_column(store *s, const char *table, const char *column);
int64_t store__pg_now_ms(store *s);
int64_t store__pg_last_id(store *s);
/* Rewrites q->sql and prepares it on the server (again after a reconnect). */
int store__pg_prepare(store_q *q);
void store__pg_forget(store_q *q);
int store__pg_step(store_q *q);
void store__pg_reset(store_q *q);
void store__pg_bind(store_q *q, int idx, const char *text, size_t len, int binary);
const char *store__pg_text(store_q *q, int col);
const void *store__pg_blob(store_q *q, int col, int *len);
int store__pg_is_null(store_q *q, int col);

/*
 * Rewrites SQL in the common dialect for PostgreSQL (store.h): into out
 * (cap bytes). conflict_cols is the primary key of the table an INSERT OR
 * REPLACE names ("a,b"), NULL otherwise. Pure text work, tested on its own.
 * OP_OK, OP_ETOOBIG.
 */
int store__pg_rewrite(const char *sql, const char *conflict_cols, char *out, size_t cap);

#endif
