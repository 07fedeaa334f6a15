#include "sim/simdata.h"

#include "base/err.h"
#include "base/util.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 24
#define MAX_LINE 2048
#define ACN_TZ_OFFSET_S (-8 * 3600) /* America/Los_Angeles, standard time (DST ignored) */

/* Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

int simdata_parse_time(const char *text, int64_t *out_s)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return OP_EINVAL;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) return OP_EINVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &s)) return OP_EINVAL;
            if (*p == '.')
                for (p++; isdigit((unsigned char)*p); p++)
                    ;
        }
        if (*p == 'Z') p++;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || s > 60) return OP_EINVAL;
    *out_s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return OP_OK;
}

/* Splits one line (no quoting in these files) into at most MAX_FIELDS fields, in place. */
static int split(char *line, char **field)
{
    int n = 0;
    field[n++] = line;
    for (char *c = line; *c; c++) {
        if (*c == '\r' || *c == '\n') {
            *c = '\0';
            break;
        }
        if (*c == ',') {
            if (n == MAX_FIELDS) return -1;
            *c = '\0';
            field[n++] = c + 1;
        }
    }
    return n;
}

/* Iterates the lines of a buffer after the header; calls fn for each non-empty one. */
typedef int (*line_fn)(void *ctx, char **field, int n, char *err, size_t err_len);

static int each_line(const char *text, size_t len, int min_fields, line_fn fn, void *ctx, char *err,
                     size_t err_len)
{
    size_t pos = 0;
    int line_no = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line_no++;
        size_t l = end - pos;
        if (line_no > 1 && l > 0 && !(l == 1 && text[pos] == '\r')) {
            char line[MAX_LINE];
            char *field[MAX_FIELDS];
            if (l >= sizeof line) {
                snprintf(err, err_len, "line %d: longer than %d bytes", line_no, MAX_LINE - 1);
                return OP_EINVAL;
            }
            memcpy(line, text + pos, l);
            line[l] = '\0';
            if (memchr(line, '\0', l)) {
                snprintf(err, err_len, "line %d: a NUL byte", line_no);
                return OP_EINVAL;
            }
            int n = split(line, field);
            if (n < min_fields) {
                snprintf(err, err_len, "line %d: %d fields, expected at least %d", line_no,
                         n < 0 ? MAX_FIELDS + 1 : n, min_fields);
                return OP_EINVAL;
            }
            char why[160] = "";
            int rc = fn(ctx, field, n, why, sizeof why);
            if (rc != OP_OK) {
                snprintf(err, err_len, "line %d: %s", line_no, why);
                return rc;
            }
        }
        pos = end + 1;
    }
    return OP_OK;
}

static int number(const char *text, double *out)
{
    return util_parse_double(text, out) == OP_OK && *out == *out && *out > -1e15 && *out < 1e15;
}

static int add_session(simdata *d, const simdata_session *s)
{
    if (d->n_sessions == d->cap_sessions) {
        size_t cap = d->cap_sessions ? d->cap_sessions * 2 : 1024;
        simdata_session *m = realloc(d->sessions, cap * sizeof *m);
        if (!m) return OP_ENOMEM;
        d->sessions = m;
        d->cap_sessions = cap;
    }
    d->sessions[d->n_sessions++] = *s;
    return OP_OK;
}

static int32_t tod(int64_t t_s)
{
    return (int32_t)(((t_s % 86400) + 86400) % 86400);
}

#define MAX_SESSION_S (7 * 86400)

/* ACN: connection, disconnect, done charging (may be empty), kWh, stated departure. */
static int acn_line(void *ctx, char **f, int n, char *why, size_t why_len)
{
    simdata *d = ctx;
    int64_t connect, disconnect, done, stated;
    double kwh;
    if (simdata_parse_time(f[6], &connect) || simdata_parse_time(f[7], &disconnect)) {
        snprintf(why, why_len, "connection/disconnect time: expected ISO-8601");
        return OP_EINVAL;
    }
    if (!number(f[9], &kwh) || kwh < 0) {
        snprintf(why, why_len, "kwh_delivered: expected a number >= 0");
        return OP_EINVAL;
    }
    if (disconnect <= connect || disconnect - connect > MAX_SESSION_S || kwh <= 0.05)
        return OP_OK; /* not a usable session: skipped, as the README's empty ones are */
    if (!f[8][0] || simdata_parse_time(f[8], &done) || done <= connect || done > disconnect)
        done = disconnect;
    simdata_session s = {.connect_tod_s = tod(connect + ACN_TZ_OFFSET_S),
                         .plugged_s = (int32_t)(disconnect - connect),
                         .charging_s = (int32_t)(done - connect),
                         .kwh = (float)kwh,
                         .stated_stay_s = -1};
    if (n > 14 && f[14][0] && simdata_parse_time(f[14], &stated) == OP_OK && stated > connect &&
        stated - connect <= MAX_SESSION_S)
        s.stated_stay_s = (int32_t)(stated - connect);
    int rc = add_session(d, &s);
    /* keep the sessions with a stated departure first: parked cars are drawn from them */
    if (rc == OP_OK && s.stated_stay_s >= 0) {
        simdata_session tmp = d->sessions[d->n_stated];
        d->sessions[d->n_stated] = d->sessions[d->n_sessions - 1];
        d->sessions[d->n_sessions - 1] = tmp;
        d->n_stated++;
    }
    return rc;
}

int simdata_parse_acn(simdata *d, const char *text, size_t len, char *err, size_t err_len)
{
    return each_line(text, len, 15, acn_line, d, err, err_len);
}

typedef struct turku_ctx {
    simdata *d;
    int64_t first_s, last_s;
    int points[4096];
    int n_points;
    size_t sessions;
} turku_ctx;

/* Turku: start and stop in local time, energy in Wh. */
static int turku_line(void *ctx, char **f, int n, char *why, size_t why_len)
{
    turku_ctx *t = ctx;
    int64_t start, stop;
    double wh, station;
    if (simdata_parse_time(f[3], &start) || simdata_parse_time(f[4], &stop)) {
        snprintf(why, why_len, "start_local/stop_local: expected ISO-8601");
        return OP_EINVAL;
    }
    if (!number(f[6], &wh) || !number(f[1], &station) || station < 0 || station > INT_MAX) {
        snprintf(why, why_len, "station_id/energy_wh: expected numbers (a station id 0..%d)",
                 INT_MAX);
        return OP_EINVAL;
    }
    /* zero-length, week-long and (a few) negative-energy rows are meter glitches: skipped */
    if (stop <= start || stop - start > MAX_SESSION_S || wh <= 50) return OP_OK;
    if (!t->sessions || start < t->first_s) t->first_s = start;
    if (!t->sessions || stop > t->last_s) t->last_s = stop;
    t->sessions++;
    int known = 0;
    for (int i = 0; i < t->n_points && !known; i++)
        known = t->points[i] == (int)station;
    if (!known && t->n_points < 4096) t->points[t->n_points++] = (int)station;
    simdata_session s = {.connect_tod_s = tod(start),
                         .plugged_s = (int32_t)(stop - start),
                         .charging_s = (int32_t)(stop - start),
                         .kwh = (float)(wh / 1000.0),
                         .stated_stay_s = -1};
    return add_session(t->d, &s);
}

int simdata_parse_turku(simdata *d, const char *text, size_t len, char *err, size_t err_len)
{
    turku_ctx *t = calloc(1, sizeof *t);
    if (!t) return OP_ENOMEM;
    t->d = d;
    int rc = each_line(text, len, 7, turku_line, t, err, err_len);
    double days = (double)(t->last_s - t->first_s) / 86400.0;
    if (rc == OP_OK && t->n_points && days >= 1)
        d->turku_sessions_per_point_day = (double)t->sessions / t->n_points / days;
    free(t);
    return rc;
}

static int piles_line(void *ctx, char **f, int n, char *why, size_t why_len)
{
    simdata *d = ctx;
    double count;
    if (!number(f[3], &count) || count < 1 || count > 10000) {
        snprintf(why, why_len, "charge_count: expected 1..10000");
        return OP_EINVAL;
    }
    int *m = realloc(d->piles, (d->n_piles + 1) * sizeof *m);
    if (!m) return OP_ENOMEM;
    d->piles = m;
    d->piles[d->n_piles++] = (int)count;
    return OP_OK;
}

int simdata_parse_piles(simdata *d, const char *text, size_t len, char *err, size_t err_len)
{
    return each_line(text, len, 4, piles_line, d, err, err_len);
}

static int series_line(void *ctx, char **f, int n, char *why, size_t why_len)
{
    simdata_series *s = ctx;
    int64_t t;
    double v;
    char stamp[64];
    const char *value = f[1];
    if (n >= 3) { /* date, hour, value */
        snprintf(stamp, sizeof stamp, "%.20s %.20s", f[0], f[1]);
        value = f[2];
    } else {
        snprintf(stamp, sizeof stamp, "%.40s", f[0]);
    }
    if (simdata_parse_time(stamp, &t) != OP_OK) {
        snprintf(why, why_len, "time: expected YYYY-MM-DD HH:MM[:SS]");
        return OP_EINVAL;
    }
    if (!number(value, &v)) {
        snprintf(why, why_len, "value: expected a number");
        return OP_EINVAL;
    }
    if (s->n && t == s->t_s[s->n - 1]) return OP_OK; /* local time: the hour repeated in autumn */
    if (s->n && t < s->t_s[s->n - 1]) {
        snprintf(why, why_len, "times must increase");
        return OP_EINVAL;
    }
    if ((s->n & (s->n - 1)) == 0) { /* grow at powers of two */
        size_t cap = s->n ? s->n * 2 : 1;
        int64_t *tt = realloc(s->t_s, cap * sizeof *tt);
        if (!tt) return OP_ENOMEM;
        s->t_s = tt;
        float *vv = realloc(s->value, cap * sizeof *vv);
        if (!vv) return OP_ENOMEM;
        s->value = vv;
    }
    s->t_s[s->n] = t;
    s->value[s->n++] = (float)v;
    return OP_OK;
}

int simdata_parse_series(simdata_series *s, const char *text, size_t len, char *err, size_t err_len)
{
    return each_line(text, len, 2, series_line, s, err, err_len);
}

double simdata_series_at(const simdata_series *s, int64_t t_s)
{
    return s->n ? s->value[util_last_at_or_before(s->t_s, s->n, t_s)] : 0;
}

static void series_clear(simdata_series *s)
{
    free(s->t_s);
    free(s->value);
    memset(s, 0, sizeof *s);
}

void simdata_clear(simdata *d)
{
    free(d->sessions);
    free(d->piles);
    for (int i = 0; i < SIMDATA_N_CARBON; i++)
        series_clear(&d->carbon[i]);
    series_clear(&d->price);
    memset(d, 0, sizeof *d);
}
