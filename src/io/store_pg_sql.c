/*
 * store_pg_sql: SQL in the store's common dialect (SQLite's spelling where
 * the engines differ, store.h) rewritten for PostgreSQL. Text work only:
 * string literals pass unchanged, words are compared without case.
 */
#include "base/err.h"
#include "io/store_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *out;
    size_t cap, len;
    int overflow;
} sqlbuf;

static void put(sqlbuf *b, const char *text, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->out + b->len, text, n);
    b->len += n;
    b->out[b->len] = '\0';
}

static void puts_(sqlbuf *b, const char *text)
{
    put(b, text, strlen(text));
}

static int is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* p after spaces starts with the word w (case-insensitive, whole word). */
static const char *next_is(const char *p, const char *w)
{
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(w);
    return strncasecmp(p, w, n) == 0 && !is_word(p[n]) ? p + n : NULL;
}

/* The end of the parenthesised text that opens at p ('('), or NULL. */
static const char *matching(const char *p)
{
    int depth = 0, quoted = 0;
    for (; *p; p++) {
        if (*p == '\'') quoted = !quoted;
        if (quoted) continue;
        if (*p == '(') depth++;
        if (*p == ')' && --depth == 0) return p;
    }
    return NULL;
}

/* json_extract(x, '$.key') as (CAST(x AS jsonb)->>'key'); p at '('. The text after it. */
static const char *json_extract(sqlbuf *b, const char *p)
{
    const char *end = matching(p), *comma = strchr(p, ',');
    const char *key = comma ? strstr(comma, "'$.") : NULL;
    if (!end || !comma || !key || key > end) {
        puts_(b, "json_extract");
        return p;
    }
    puts_(b, "(CAST(");
    put(b, p + 1, (size_t)(comma - p - 1));
    puts_(b, " AS jsonb)->>'");
    const char *close = strchr(key + 3, '\'');
    put(b, key + 3, close ? (size_t)(close - key - 3) : 0);
    puts_(b, "')");
    return end + 1;
}

/*
 * ON CONFLICT for an INSERT OR IGNORE (mode 1) or OR REPLACE (mode 2)
 * whose column list is cols ("(a, b, c)"): replace sets every column that
 * is not in the key.
 */
static void on_conflict(sqlbuf *b, int mode, const char *cols, size_t cols_len, const char *key)
{
    if (mode == 1 || !key || !cols || cols_len < 2) {
        puts_(b, " ON CONFLICT DO NOTHING");
        return;
    }
    char line[1024];
    int n = snprintf(line, sizeof line, " ON CONFLICT (%s) DO UPDATE SET ", key);
    int first = 1;
    const char *p = cols + 1, *end = cols + cols_len - 1;
    while (p < end) {
        while (p < end && (isspace((unsigned char)*p) || *p == ','))
            p++;
        const char *w = p;
        while (p < end && is_word(*p))
            p++;
        if (p == w) break;
        char col[64];
        snprintf(col, sizeof col, "%.*s", (int)(p - w), w);
        char keyed[260];
        snprintf(keyed, sizeof keyed, ",%s,", key);
        char probe[70];
        snprintf(probe, sizeof probe, ",%s,", col);
        if (strstr(keyed, probe)) continue;
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%s=EXCLUDED.%s", first ? "" : ", ", col,
                      col);
        first = 0;
        if (n >= (int)sizeof line) break;
    }
    if (first) {
        puts_(b, " ON CONFLICT DO NOTHING");
        return;
    }
    puts_(b, line);
}

/* A CREATE TABLE body (p at '(') without a primary key gets a rowid of its own. */
static void create_table(sqlbuf *b, const char *p)
{
    const char *end = matching(p);
    int has_key = 0;
    for (const char *q = p; end && q < end && !has_key; q++)
        has_key = strncasecmp(q, "PRIMARY KEY", 11) == 0;
    puts_(b, "(");
    if (end && !has_key) puts_(b, "rowid BIGSERIAL, ");
}

/* One word of SQL outside literals, rewritten; returns the text after what it consumed. */
static const char *word(sqlbuf *b, const char *w, size_t n, int *conflict_mode, int *create)
{
    const char *after = w + n, *rest;
    if (n == 6 && strncasecmp(w, "IFNULL", n) == 0) {
        puts_(b, "COALESCE");
    } else if (n == 7 && strncasecmp(w, "INTEGER", n) == 0) {
        puts_(b, next_is(after, "PRIMARY") ? "BIGSERIAL" : "BIGINT");
    } else if (n == 4 && strncasecmp(w, "REAL", n) == 0) {
        puts_(b, "DOUBLE PRECISION");
    } else if (n == 4 && strncasecmp(w, "BLOB", n) == 0) {
        puts_(b, "BYTEA");
    } else if (n == 7 && strncasecmp(w, "WITHOUT", n) == 0 && (rest = next_is(after, "ROWID"))) {
        return rest;
    } else if (n == 6 && strncasecmp(w, "INSERT", n) == 0 && (rest = next_is(after, "OR"))) {
        const char *r;
        if ((r = next_is(rest, "IGNORE"))) *conflict_mode = 1;
        if (!r && (r = next_is(rest, "REPLACE"))) *conflict_mode = 2;
        puts_(b, "INSERT");
        return r ? r : after;
    } else if (n == 12 && strncasecmp(w, "json_extract", n) == 0 && *after == '(') {
        return json_extract(b, after);
    } else if (n == 5 && strncasecmp(w, "TABLE", n) == 0) {
        *create = 1;
        put(b, w, n);
    } else {
        put(b, w, n);
    }
    return after;
}

/* The number of the parameter at p ('?'), and where its text ends; *next counts bare ones. */
static int param_at(const char *p, const char **end, int *next)
{
    int k = *next + 1;
    if (isdigit((unsigned char)p[1]))
        k = (int)strtol(p + 1, (char **)end, 10);
    else
        *end = p + 1;
    if (k > *next) *next = k;
    return k;
}

int store__pg_rewrite(const char *sql, const char *conflict_cols, char *out, size_t cap)
{
    sqlbuf b = {out, cap, 0, 0};
    if (cap) out[0] = '\0';
    int next_param = 0, conflict_mode = 0, create = 0;
    const char *cols = NULL;
    size_t cols_len = 0;
    const char *p = sql;
    while (*p && !b.overflow) {
        if (*p == '\'') {
            const char *close = strchr(p + 1, '\'');
            while (close && close[1] == '\'')
                close = strchr(close + 2, '\'');
            size_t n = close ? (size_t)(close - p + 1) : strlen(p);
            put(&b, p, n);
            p += n;
        } else if (*p == '?') {
            char num[32];
            int k = param_at(p, &p, &next_param);
            /* PostgreSQL cannot type a parameter from "$n IS NULL": such a one is text */
            snprintf(num, sizeof num, next_is(p, "IS") ? "CAST($%d AS TEXT)" : "$%d", k);
            puts_(&b, num);
        } else if (is_word(*p) && !isdigit((unsigned char)*p)) {
            const char *w = p;
            while (is_word(*p))
                p++;
            p = word(&b, w, (size_t)(p - w), &conflict_mode, &create);
        } else if (*p == '(' && create) {
            create = 0;
            create_table(&b, p++);
        } else if (*p == '(' && conflict_mode && !cols) {
            const char *end = matching(p);
            cols = p;
            cols_len = end ? (size_t)(end - p + 1) : 0;
            put(&b, p++, 1);
        } else if (*p == ';') {
            if (conflict_mode) on_conflict(&b, conflict_mode, cols, cols_len, conflict_cols);
            conflict_mode = 0;
            create = 0;
            cols = NULL;
            put(&b, p++, 1);
        } else {
            if (isdigit((unsigned char)*p)) {
                const char *d = p;
                while (is_word(*p))
                    p++;
                put(&b, d, (size_t)(p - d));
                continue;
            }
            put(&b, p++, 1);
        }
    }
    if (conflict_mode && !b.overflow) on_conflict(&b, conflict_mode, cols, cols_len, conflict_cols);
    return b.overflow ? OP_ETOOBIG : OP_OK;
}
