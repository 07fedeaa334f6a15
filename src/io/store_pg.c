/*
 * store_pg: the store's PostgreSQL engine over libpq. One connection per
 * store; statements are rewritten from the common dialect (store.h),
 * prepared once per connection under a name of their own and run with
 * text parameters (blobs in binary, as bytea) and text results. A lost
 * connection is reset at the next failure and its statements prepared
 * again: the transaction it was in is gone, which the roles see as a failed
 * commit and roll back.
 */
#include "base/err.h"
#include "base/log.h"
#include "io/store_int.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Taken while a store sets up its schema: hubs starting together must not race on CREATE. */
#define STORE_PG_SCHEMA_LOCK 7231001
/* pg_type's oid of bytea (fixed in PostgreSQL's catalog) */
#define STORE_PG_BYTEA_OID 17

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The conninfo with any password hidden, for log lines. */
static void mask_password(const char *conninfo, char *out, size_t cap)
{
    snprintf(out, cap, "%s", conninfo);
    char *scheme = strstr(out, "://");
    if (scheme) {
        char *at = strchr(scheme + 3, '@');
        char *colon = strchr(scheme + 3, ':');
        if (at && colon && colon < at)
            memmove(colon + 1, "***", 3), memmove(colon + 4, at, strlen(at) + 1);
    }
    char *pw = strstr(out, "password=");
    if (pw) {
        char *end = strchr(pw, ' ');
        size_t tail = end ? strlen(end) + 1 : 1;
        memmove(pw + 9, "***", 3);
        memmove(pw + 12, end ? end : pw + strlen(pw), tail);
    }
}

/* After a failure: a connection that broke is reset, and every statement is prepared again. */
static void check_connection(store *s)
{
    if (PQstatus(s->pg) != CONNECTION_BAD) return;
    /* the server rolled the transaction back: statements until the caller's rollback would
     * each commit on their own on the new connection, so they fail instead */
    if (s->tx_depth > 0) s->pg_tx_broken = 1;
    PQreset(s->pg);
    for (int i = 0; i < s->n_cached; i++)
        s->cache[i]->prepared = 0;
    if (PQstatus(s->pg) == CONNECTION_OK) {
        PQsetNoticeProcessor(s->pg, ignore_notice, NULL);
        log_warn("store", "connection to %s lost and made again", s->path);
    }
}

/* OP_OK when res succeeded; else logged with what and the server's message, and cleared. */
static int result_ok(store *s, PGresult *res, const char *what)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        s->pg_changes = strtoll(PQcmdTuples(res), NULL, 10);
        return OP_OK;
    }
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(s->pg);
    char line[300];
    snprintf(line, sizeof line, "%s", msg && msg[0] ? msg : PQerrorMessage(s->pg));
    line[strcspn(line, "\n")] = '\0';
    store__error(s, "%.200s: %s (%s)", what, line, s->path);
    PQclear(res);
    check_connection(s);
    return OP_ESTORE;
}

int store__pg_open(store *s, const char *conninfo, const char *schema_sql)
{
    mask_password(conninfo, s->path, sizeof s->path);
    const char *keys[] = {"connect_timeout", "dbname", NULL};
    const char *values[] = {"5", conninfo, NULL};
    s->pg = PQconnectdbParams(keys, values, 1);
    if (!s->pg) return OP_ENOMEM;
    if (PQstatus(s->pg) != CONNECTION_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(s->pg));
        msg[strcspn(msg, "\n")] = '\0';
        log_error("store", "cannot reach PostgreSQL at %s: %s", s->path, msg);
        return OP_ESTORE;
    }
    PQsetNoticeProcessor(s->pg, ignore_notice, NULL);
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", STORE_PG_SCHEMA_LOCK);
    if (store__pg_exec(s, lock) != OP_OK) return OP_ESTORE;
    int rc = schema_sql[0] ? store__pg_exec(s, schema_sql) : OP_OK;
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", STORE_PG_SCHEMA_LOCK);
    if (store__pg_exec(s, lock) != OP_OK) rc = OP_ESTORE;
    return rc;
}

void store__pg_close(store *s)
{
    if (s->pg) PQfinish(s->pg);
    s->pg = NULL;
}

/* One statement of a script; an index that exists already is skipped (see below). */
static int exec_one(store *s, const char *text, const char *original)
{
    char name[96];
    if (sscanf(text, " CREATE INDEX IF NOT EXISTS %95[A-Za-z0-9_]", name) == 1) {
        const char *param[1] = {name};
        PGresult *res = PQexecParams(s->pg, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, param,
                                     NULL, NULL, 0);
        int exists = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                     PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (exists) return OP_OK;
    }
    PGresult *res = PQexec(s->pg, text);
    int rc = result_ok(s, res, original);
    if (rc == OP_OK) PQclear(res);
    return rc;
}

/*
 * A script runs statement by statement, each in its own transaction unless
 * the caller opened one: PostgreSQL would run the whole string as one
 * transaction, and a standby setting up its schema while the active hub
 * writes would then hold one table's lock while waiting for another's (a
 * deadlock). CREATE INDEX locks its table even when the index exists, so
 * existing indexes are not created again.
 */
/* After a reset inside a transaction, everything but its rollback fails (logged). */
static int tx_broken(store *s, const char *sql)
{
    if (!s->pg_tx_broken) return 0;
    store__error(s, "%.120s: the connection was lost inside this transaction (%s)", sql, s->path);
    return 1;
}

int store__pg_exec(store *s, const char *sql)
{
    if (strcmp(sql, "ROLLBACK") != 0 && tx_broken(s, sql)) return OP_ESTORE;
    size_t cap = strlen(sql) * 2 + 256;
    char *text = malloc(cap);
    if (!text) return OP_ENOMEM;
    int rc = store__pg_rewrite(sql, NULL, text, cap);
    char *p = text;
    while (rc == OP_OK && *p) {
        char *end = p;
        int quoted = 0;
        for (; *end && (quoted || *end != ';'); end++)
            if (*end == '\'') quoted = !quoted;
        char saved = *end;
        *end = '\0';
        if (strspn(p, " \t\n") != strlen(p)) rc = exec_one(s, p, sql);
        p = saved ? end + 1 : end;
    }
    free(text);
    return rc;
}

/* One row, one column, from a query with up to two text parameters: into out. OP_ENOTFOUND. */
static int query_one(store *s, const char *sql, const char *p1, const char *p2, char *out,
                     size_t cap)
{
    const char *params[2] = {p1, p2};
    PGresult *res = PQexecParams(s->pg, sql, p2 ? 2 : p1 ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (result_ok(s, res, sql) != OP_OK) return OP_ESTORE;
    int rc = PQntuples(res) > 0 ? OP_OK : OP_ENOTFOUND;
    if (rc == OP_OK && out) snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

int store__pg_has_column(store *s, const char *table, const char *column)
{
    return query_one(s,
                     "SELECT 1 FROM information_schema.columns WHERE table_schema=current_schema()"
                     " AND table_name=$1 AND column_name=$2",
                     table, column, NULL, 0) == OP_OK;
}

int64_t store__pg_now_ms(store *s)
{
    char text[32];
    if (query_one(s, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", NULL, NULL,
                  text, sizeof text) != OP_OK)
        return 0;
    return strtoll(text, NULL, 10);
}

int64_t store__pg_last_id(store *s)
{
    char text[32];
    if (query_one(s, "SELECT lastval()", NULL, NULL, text, sizeof text) != OP_OK) return 0;
    return strtoll(text, NULL, 10);
}

/* The primary key's columns of table, "a,b", for an INSERT OR REPLACE into it. */
static int primary_key(store *s, const char *table, char *out, size_t cap)
{
    const char *sql = "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey::int2[],"
                      " a.attnum)) FROM pg_index i JOIN pg_attribute a ON a.attrelid=i.indrelid"
                      " AND a.attnum=ANY(i.indkey) WHERE i.indrelid=$1::regclass AND"
                      " i.indisprimary";
    int rc = query_one(s, sql, table, NULL, out, cap);
    if (rc == OP_OK && !out[0]) rc = OP_ENOTFOUND;
    if (rc != OP_OK) store__error(s, "no primary key found for table %s", table);
    return rc == OP_OK ? OP_OK : OP_ESTORE;
}

/* The highest $n in text: the statement's number of parameters. */
static int count_params(const char *text)
{
    int n = 0, quoted = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\'') quoted = !quoted;
        if (quoted || *p != '$' || !isdigit((unsigned char)p[1])) continue;
        int k = (int)strtol(p + 1, NULL, 10);
        if (k > n) n = k;
    }
    return n;
}

int store__pg_prepare(store_q *q)
{
    store *s = q->s;
    if (!q->pg_sql) {
        char pk[200] = "", *conflict = NULL;
        const char *into = strcasestr(q->sql, "INSERT OR REPLACE INTO ");
        if (into) {
            char table[64];
            size_t n = strcspn(into + 23, "( ");
            snprintf(table, sizeof table, "%.*s", (int)(n < 63 ? n : 63), into + 23);
            if (primary_key(s, table, pk, sizeof pk) != OP_OK) return OP_ESTORE;
            conflict = pk;
        }
        size_t cap = strlen(q->sql) * 3 + 512;
        if (!(q->pg_sql = malloc(cap))) return OP_ENOMEM;
        if (store__pg_rewrite(q->sql, conflict, q->pg_sql, cap) != OP_OK) {
            free(q->pg_sql);
            q->pg_sql = NULL;
            return OP_ETOOBIG;
        }
        q->n_params = count_params(q->pg_sql);
        if (q->n_params > STORE_MAX_PARAMS) {
            store__error(s, "too many parameters in '%s'", q->sql);
            return OP_ETOOBIG;
        }
    }
    PGresult *res = PQprepare(s->pg, q->name, q->pg_sql, 0, NULL);
    if (result_ok(s, res, q->sql) != OP_OK) return OP_ESTORE;
    PQclear(res);
    q->prepared = 1;
    return OP_OK;
}

static void free_blobs(store_q *q)
{
    for (int c = 0; c < STORE_MAX_COLS; c++) {
        PQfreemem(q->blob[c]);
        q->blob[c] = NULL;
    }
}

void store__pg_forget(store_q *q)
{
    store__pg_reset(q);
    for (int i = 0; i < STORE_MAX_PARAMS; i++) {
        free(q->param[i]);
        q->param[i] = NULL;
    }
    free(q->pg_sql);
    q->pg_sql = NULL;
}

void store__pg_reset(store_q *q)
{
    PQclear(q->res);
    q->res = NULL;
    q->started = 0;
    q->row = -1;
    q->n_rows = 0;
    free_blobs(q);
}

void store__pg_bind(store_q *q, int idx, const char *text, size_t len, int binary)
{
    if (idx < 1 || idx > STORE_MAX_PARAMS) return;
    int i = idx - 1;
    free(q->param[i]);
    q->param[i] = NULL;
    q->param_len[i] = 0;
    q->param_binary[i] = binary;
    if (!text) return;
    if (!(q->param[i] = malloc(len + 1))) return; /* runs as NULL: a NOT NULL column refuses */
    memcpy(q->param[i], text, len);
    q->param[i][len] = '\0';
    q->param_len[i] = (int)len;
}

int store__pg_step(store_q *q)
{
    store *s = q->s;
    if (!q->started) {
        if (tx_broken(s, q->sql)) return OP_ESTORE;
        q->started = 1;
        if (!q->prepared && store__pg_prepare(q) != OP_OK) return OP_ESTORE;
        PGresult *res = PQexecPrepared(s->pg, q->name, q->n_params, (const char *const *)q->param,
                                       q->param_len, q->param_binary, 0);
        if (result_ok(s, res, q->sql) != OP_OK) return OP_ESTORE;
        q->res = res;
        q->n_rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
        q->row = -1;
    }
    free_blobs(q);
    if (q->row + 1 >= q->n_rows) return STORE_DONE;
    q->row++;
    return STORE_ROW;
}

static int has_value(store_q *q, int col)
{
    return q->res && q->row >= 0 && q->row < q->n_rows && col >= 0 && col < PQnfields(q->res);
}

const char *store__pg_text(store_q *q, int col)
{
    return has_value(q, col) ? PQgetvalue(q->res, q->row, col) : "";
}

int store__pg_is_null(store_q *q, int col)
{
    return !has_value(q, col) || PQgetisnull(q->res, q->row, col);
}

/*
 * A bytea column comes back in PostgreSQL's hex text form: decoded once per
 * row. Any other column's bytes are its text (as SQLite hands them out).
 */
const void *store__pg_blob(store_q *q, int col, int *len)
{
    *len = 0;
    if (store__pg_is_null(q, col) || col >= STORE_MAX_COLS) return NULL;
    if (PQftype(q->res, col) != STORE_PG_BYTEA_OID) {
        *len = PQgetlength(q->res, q->row, col);
        return PQgetvalue(q->res, q->row, col);
    }
    if (!q->blob[col]) {
        size_t n = 0;
        q->blob[col] = PQunescapeBytea((const unsigned char *)PQgetvalue(q->res, q->row, col), &n);
        q->blob_len[col] = n;
    }
    *len = (int)q->blob_len[col];
    return q->blob[col];
}

/* Appends " key='value'" (the first without its space), quoted as libpq reads key words. */
static int append_pair(char *out, size_t cap, size_t *len, const char *key, const char *value)
{
    size_t n = *len;
    int w = snprintf(out + n, cap - n, "%s%s='", n ? " " : "", key);
    if (w < 0 || (size_t)w >= cap - n) return OP_ETOOBIG;
    n += (size_t)w;
    for (const char *p = value; *p; p++) {
        if (n + 4 > cap) return OP_ETOOBIG;
        if (*p == '\'' || *p == '\\') out[n++] = '\\';
        out[n++] = *p;
    }
    if (n + 2 > cap) return OP_ETOOBIG;
    out[n++] = '\'';
    out[n] = '\0';
    *len = n;
    return OP_OK;
}

/*
 * The parsed options again as key words, without the password. The first
 * key is host (or dbname) so that store_is_url still knows it for a server.
 */
static int rebuild_without_password(const PQconninfoOption *opts, char *out, size_t cap)
{
    const char *first = NULL;
    for (const PQconninfoOption *o = opts; o->keyword && !first; o++)
        if (o->val && o->val[0] && !strcmp(o->keyword, "host")) first = "host";
    for (const PQconninfoOption *o = opts; o->keyword && !first; o++)
        if (o->val && o->val[0] && !strcmp(o->keyword, "dbname")) first = "dbname";
    if (!first) return OP_EINVAL;
    size_t len = 0;
    int rc = OP_OK;
    out[0] = '\0';
    for (int pass = 0; pass < 2 && rc == OP_OK; pass++) {
        for (const PQconninfoOption *o = opts; o->keyword && rc == OP_OK; o++) {
            if (!o->val || !strcmp(o->keyword, "password") ||
                (strcmp(o->keyword, first) == 0) != (pass == 0))
                continue;
            rc = append_pair(out, cap, &len, o->keyword, o->val);
        }
    }
    return rc;
}

int store_where_public(const char *where, char *out, size_t cap, int *had_password)
{
    *had_password = 0;
    if (!store_is_url(where)) {
        if (strlen(where) >= cap) return OP_ETOOBIG;
        snprintf(out, cap, "%s", where);
        return OP_OK;
    }
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(where, &why);
    if (!opts) {
        PQfreemem(why);
        return OP_EINVAL;
    }
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && !strcmp(o->keyword, "password")) *had_password = 1;
    int rc = OP_OK;
    if (*had_password)
        rc = rebuild_without_password(opts, out, cap);
    else if (strlen(where) >= cap)
        rc = OP_ETOOBIG;
    else
        snprintf(out, cap, "%s", where);
    PQconninfoFree(opts);
    return rc;
}
