#include "io/learndata.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_COMPANY "(no company recorded)"
#define OTHER_COMPANIES "(other companies)"

/* A CSV reader over one buffer: a record at a time, unquoted into buf. */
typedef struct csv {
    const char *text;
    size_t len, pos;
    size_t line;       /* physical line the next record starts on */
    size_t first_line; /* line of the record just read */
    char buf[LEARNDATA_MAX_LINE + 1];
    char *field[LEARNDATA_MAX_FIELDS];
    int n_fields;
} csv;

static int csv_error(const csv *c, char *err, size_t err_len, const char *why)
{
    snprintf(err, err_len, "line %zu: %s", c->first_line, why);
    return OP_EINVAL;
}

/* A field may start quoted; inside quotes "" is a quote and commas and newlines are text. */
static int csv_char(csv *c, size_t *out, int *in_quotes, int *done, char *err, size_t err_len)
{
    char ch = c->text[c->pos++];
    if (ch == '\0') return csv_error(c, err, err_len, "a NUL byte");
    if (*in_quotes) {
        if (ch == '"' && c->pos < c->len && c->text[c->pos] == '"') {
            c->pos++;
        } else if (ch == '"') {
            *in_quotes = 0;
            char next = c->pos < c->len ? c->text[c->pos] : '\n';
            if (next != ',' && next != '\n' && next != '\r')
                return csv_error(c, err, err_len, "text after a closing quote");
            return OP_OK;
        }
        if (ch == '\n') c->line++;
    } else if (ch == '"') {
        if (*out != (size_t)(c->field[c->n_fields - 1] - c->buf))
            return csv_error(c, err, err_len, "a quote inside an unquoted field");
        *in_quotes = 1;
        return OP_OK;
    } else if (ch == ',') {
        if (c->n_fields == LEARNDATA_MAX_FIELDS)
            return csv_error(c, err, err_len, "more fields than the reader allows");
        c->buf[(*out)++] = '\0';
        c->field[c->n_fields++] = c->buf + *out;
        return OP_OK;
    } else if (ch == '\n' || (ch == '\r' && c->pos < c->len && c->text[c->pos] == '\n')) {
        if (ch == '\r') c->pos++;
        c->line++;
        *done = 1;
        return OP_OK;
    }
    if (*out >= LEARNDATA_MAX_LINE) return csv_error(c, err, err_len, "a line over 4096 bytes");
    c->buf[(*out)++] = ch;
    return OP_OK;
}

/* The next record: 1 when one was read, 0 at the end, OP_EINVAL (err says why). Blank lines
 * are skipped. */
static int csv_next(csv *c, char *err, size_t err_len)
{
    while (c->pos < c->len && (c->text[c->pos] == '\n' || c->text[c->pos] == '\r')) {
        if (c->text[c->pos] == '\n') c->line++;
        c->pos++;
    }
    if (c->pos >= c->len) return 0;
    c->first_line = c->line;
    c->n_fields = 1;
    c->field[0] = c->buf;
    size_t out = 0;
    int in_quotes = 0, done = 0;
    while (!done && c->pos < c->len) {
        int rc = csv_char(c, &out, &in_quotes, &done, err, err_len);
        if (rc != OP_OK) return rc;
    }
    if (in_quotes) return csv_error(c, err, err_len, "a quote that is never closed");
    c->buf[out] = '\0';
    return 1;
}

static void csv_open(csv *c, const char *text, size_t len)
{
    memset(c, 0, sizeof *c);
    c->text = text;
    c->len = len;
    c->line = 1;
}

/* Reads the header and finds each wanted column; OP_EINVAL naming the first one missing. */
static int csv_columns(csv *c, const char *const *names, int *index, int n, int *n_header,
                       char *err, size_t err_len)
{
    int rc = csv_next(c, err, err_len);
    if (rc == 0) {
        snprintf(err, err_len, "empty file: no header row");
        return OP_EINVAL;
    }
    if (rc < 0) return rc;
    *n_header = c->n_fields;
    for (int i = 0; i < n; i++) {
        index[i] = -1;
        for (int f = 0; f < c->n_fields && index[i] < 0; f++)
            if (strcmp(c->field[f], names[i]) == 0) index[i] = f;
        if (index[i] < 0) {
            snprintf(err, err_len, "line 1: no column '%s' in the header", names[i]);
            return OP_EINVAL;
        }
    }
    return OP_OK;
}

/* The next data row, with as many fields as the header: 1, 0 at the end, OP_EINVAL. */
static int csv_row(csv *c, int n_header, char *err, size_t err_len)
{
    int rc = csv_next(c, err, err_len);
    if (rc == 1 && c->n_fields != n_header) {
        char why[96];
        snprintf(why, sizeof why, "%d fields where the header has %d", c->n_fields, n_header);
        return csv_error(c, err, err_len, why);
    }
    return rc;
}

/* A number field: OP_OK with *out, 1 when empty (unknown), OP_EINVAL (err says which). */
static int number(const csv *c, const char *text, const char *column, double *out, char *err,
                  size_t err_len)
{
    if (!*text) return 1;
    if (util_parse_double(text, out) == OP_OK) return OP_OK;
    char why[160];
    snprintf(why, sizeof why, "%s is not a number: '%.40s'", column, text);
    return csv_error(c, err, err_len, why);
}

/* An integer field in [min, max], -1 when empty. */
static int small_int(const csv *c, const char *text, const char *column, int min, int max, int *out,
                     char *err, size_t err_len)
{
    double v;
    int rc = number(c, text, column, &v, err, err_len);
    if (rc == 1) {
        *out = -1;
        return OP_OK;
    }
    if (rc != OP_OK) return rc;
    if (v < min || v > max || v != (double)(int)v) {
        char why[160];
        snprintf(why, sizeof why, "%s is not a whole number from %d to %d: '%.40s'", column, min,
                 max, text);
        return csv_error(c, err, err_len, why);
    }
    *out = (int)v;
    return OP_OK;
}

static int find_site(learndata *d, const char *name, int *out)
{
    for (size_t i = 0; i < d->n_sites; i++)
        if (strncmp(d->sites[i], name, LEARNDATA_MAX_NAME - 1) == 0) {
            *out = (int)i;
            return OP_OK;
        }
    if (d->n_sites == LEARNDATA_MAX_SITES) return OP_ETOOBIG;
    void *grown = realloc(d->sites, (d->n_sites + 1) * sizeof *d->sites);
    if (!grown) return OP_ENOMEM;
    d->sites = grown;
    snprintf(d->sites[d->n_sites], LEARNDATA_MAX_NAME, "%s", name);
    *out = (int)d->n_sites++;
    return OP_OK;
}

static int push_trip(learndata *d, const learn_trip *t)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        learn_trip *grown = realloc(d->trips, cap * sizeof *grown);
        if (!grown) return OP_ENOMEM;
        d->trips = grown;
        d->cap = cap;
    }
    d->trips[d->n++] = *t;
    return OP_OK;
}

int learndata_borough(const char *name)
{
    static const char *const names[] = {"Bronx",  "Brooklyn",      "Manhattan",
                                        "Queens", "Staten Island", "EWR"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

int learndata_parse_zones(learndata_zones *z, const char *text, size_t len, char *err,
                          size_t err_len)
{
    static const char *const cols[] = {"LocationID", "zone", "borough"};
    int at[3], n_header, rc;
    csv *c = malloc(sizeof *c);
    if (!c) return OP_ENOMEM;
    csv_open(c, text, len);
    rc = csv_columns(c, cols, at, 3, &n_header, err, err_len);
    while (rc == OP_OK && (rc = csv_row(c, n_header, err, err_len)) == 1) {
        int id;
        rc = small_int(c, c->field[at[0]], "LocationID", 1, 100000, &id, err, err_len);
        if (rc == OP_OK && id < 0) rc = csv_error(c, err, err_len, "LocationID is empty");
        if (rc != OP_OK) break;
        if (z->n == LEARNDATA_MAX_ZONES) {
            snprintf(err, err_len, "line %zu: more than %d zones", c->first_line,
                     LEARNDATA_MAX_ZONES);
            rc = OP_ETOOBIG;
            break;
        }
        void *names = realloc(z->name, (z->n + 1) * sizeof *z->name);
        if (names) z->name = names;
        int *ids = names ? realloc(z->id, (z->n + 1) * sizeof *ids) : NULL;
        if (ids) z->id = ids;
        int *boroughs = ids ? realloc(z->borough, (z->n + 1) * sizeof *boroughs) : NULL;
        if (!boroughs) {
            rc = OP_ENOMEM;
            break;
        }
        z->borough = boroughs;
        snprintf(z->name[z->n], LEARNDATA_MAX_NAME, "%s", c->field[at[1]]);
        z->id[z->n] = id;
        z->borough[z->n++] = learndata_borough(c->field[at[2]]);
        rc = OP_OK;
    }
    free(c);
    return rc < 0 ? rc : OP_OK;
}

static int zone_id(const learndata_zones *z, const char *name)
{
    for (size_t i = 0; *name && z && i < z->n; i++)
        if (strncmp(z->name[i], name, LEARNDATA_MAX_NAME - 1) == 0) return z->id[i];
    return -1;
}

enum {
    CH_SECONDS,
    CH_MILES,
    CH_START,
    CH_HOUR,
    CH_DAY,
    CH_MONTH,
    CH_PICKUP,
    CH_DROPOFF,
    CH_COMPANY,
    CH_COLUMNS
};

/* A trip is kept with a positive duration and distance, both far below what a float holds
 * (the real files have up to 72,120 s and 1,710 miles: kept). */
static int plausible(double seconds, double miles)
{
    return seconds > 0 && seconds <= 1e8 && miles > 0 && miles <= 1e6;
}

/* One Chicago row into t; 1 when the row has no usable duration or distance (dropped). */
static int chicago_row(const csv *c, const int *at, learn_trip *t, char *err, size_t err_len)
{
    static const char *const what[] = {"trip_seconds", "trip_miles", "trip_start_timestamp"};
    double v[3];
    for (int i = 0; i < 3; i++) {
        int rc = number(c, c->field[at[i]], what[i], &v[i], err, err_len);
        if (rc != OP_OK) return rc; /* 1: empty, dropped */
    }
    if (!plausible(v[0], v[1])) return 1;
    if (v[2] < 0 || v[2] > 4e9)
        return csv_error(c, err, err_len, "trip_start_timestamp out of range");
    memset(t, 0, sizeof *t);
    t->actual_s = v[0];
    t->distance_miles = v[1];
    t->start_s = (int64_t)v[2];
    t->pickup_borough = t->dropoff_borough = -1;
    int day = -1,
        rc = small_int(c, c->field[at[CH_HOUR]], "trip_start_hour", 0, 23, &t->hour, err, err_len);
    if (rc == OP_OK)
        rc = small_int(c, c->field[at[CH_DAY]], "trip_start_day", 1, 7, &day, err, err_len);
    if (rc == OP_OK)
        rc = small_int(c, c->field[at[CH_MONTH]], "trip_start_month", 1, 12, &t->month, err,
                       err_len);
    if (rc == OP_OK)
        rc = small_int(c, c->field[at[CH_PICKUP]], "pickup_community_area", 0, 1000,
                       &t->pickup_area, err, err_len);
    if (rc == OP_OK)
        rc = small_int(c, c->field[at[CH_DROPOFF]], "dropoff_community_area", 0, 1000,
                       &t->dropoff_area, err, err_len);
    /* trip_start_day counts from Sunday = 1; ours from Monday = 0 */
    t->weekday = day < 0 ? -1 : (day + 5) % 7;
    learn_civil(t->start_s, &t->year, NULL, NULL, NULL, NULL);
    return rc;
}

int learndata_parse_chicago(learndata *d, const char *text, size_t len, char *err, size_t err_len)
{
    static const char *const cols[CH_COLUMNS] = {
        "trip_seconds",   "trip_miles",       "trip_start_timestamp",  "trip_start_hour",
        "trip_start_day", "trip_start_month", "pickup_community_area", "dropoff_community_area",
        "company"};
    int at[CH_COLUMNS], n_header, rc;
    csv *c = malloc(sizeof *c);
    if (!c) return OP_ENOMEM;
    csv_open(c, text, len);
    rc = csv_columns(c, cols, at, CH_COLUMNS, &n_header, err, err_len);
    while (rc == OP_OK && (rc = csv_row(c, n_header, err, err_len)) == 1) {
        learn_trip t;
        d->rows++;
        rc = chicago_row(c, at, &t, err, err_len);
        if (rc == 1) {
            d->dropped++;
            rc = OP_OK;
            continue;
        }
        const char *company = c->field[at[CH_COMPANY]];
        if (rc == OP_OK) rc = find_site(d, *company ? company : NO_COMPANY, &t.site);
        if (rc == OP_ETOOBIG) snprintf(err, err_len, "more than %d sites", LEARNDATA_MAX_SITES);
        if (rc == OP_OK) rc = push_trip(d, &t);
    }
    free(c);
    return rc < 0 ? rc : OP_OK;
}

enum { NY_PICKUP, NY_DROPOFF, NY_DISTANCE, NY_PZONE, NY_DZONE, NY_PBORO, NY_DBORO, NY_COLUMNS };

/* One NYC row into t; 1 when the row is dropped (no duration, distance or pickup borough). */
static int nyc_row(const csv *c, const int *at, const learndata_zones *z, learn_trip *t, char *err,
                   size_t err_len)
{
    int64_t pickup, dropoff;
    if (learn_parse_time(c->field[at[NY_PICKUP]], &pickup) != OP_OK ||
        learn_parse_time(c->field[at[NY_DROPOFF]], &dropoff) != OP_OK)
        return csv_error(c, err, err_len, "pickup or dropoff is not 'YYYY-MM-DD HH:MM:SS'");
    double miles;
    int rc = number(c, c->field[at[NY_DISTANCE]], "distance", &miles, err, err_len);
    if (rc != OP_OK) return rc;
    memset(t, 0, sizeof *t);
    t->start_s = pickup;
    t->actual_s = (double)learn_us_elapsed(pickup, dropoff);
    t->distance_miles = miles;
    learn_civil(pickup, &t->year, &t->month, NULL, &t->hour, &t->weekday);
    t->pickup_area = zone_id(z, c->field[at[NY_PZONE]]);
    t->dropoff_area = zone_id(z, c->field[at[NY_DZONE]]);
    t->pickup_borough = learndata_borough(c->field[at[NY_PBORO]]);
    t->dropoff_borough = learndata_borough(c->field[at[NY_DBORO]]);
    if (!plausible(t->actual_s, miles) || t->pickup_borough < 0) return 1;
    return OP_OK;
}

int learndata_parse_nyc(learndata *d, const learndata_zones *z, const char *text, size_t len,
                        char *err, size_t err_len)
{
    static const char *const cols[NY_COLUMNS] = {"pickup",         "dropoff",      "distance",
                                                 "pickup_zone",    "dropoff_zone", "pickup_borough",
                                                 "dropoff_borough"};
    int at[NY_COLUMNS], n_header, rc;
    csv *c = malloc(sizeof *c);
    if (!c) return OP_ENOMEM;
    csv_open(c, text, len);
    rc = csv_columns(c, cols, at, NY_COLUMNS, &n_header, err, err_len);
    while (rc == OP_OK && (rc = csv_row(c, n_header, err, err_len)) == 1) {
        learn_trip t;
        d->rows++;
        rc = nyc_row(c, at, z, &t, err, err_len);
        if (rc == 1) {
            d->dropped++;
            rc = OP_OK;
            continue;
        }
        if (rc == OP_OK) rc = find_site(d, c->field[at[NY_PBORO]], &t.site);
        if (rc == OP_ETOOBIG) snprintf(err, err_len, "more than %d sites", LEARNDATA_MAX_SITES);
        if (rc == OP_OK) rc = push_trip(d, &t);
    }
    free(c);
    return rc < 0 ? rc : OP_OK;
}

/* Keeps the sites with at least min_trips trips in their order, then one site for the rest. */
int learndata_group_small_sites(learndata *d, size_t min_trips)
{
    size_t *count = calloc(d->n_sites + 1, sizeof *count);
    int *map = calloc(d->n_sites + 1, sizeof *map);
    char(*names)[LEARNDATA_MAX_NAME] = calloc(d->n_sites + 1, sizeof *names);
    if (!count || !map || !names) {
        free(count);
        free(map);
        free(names);
        return OP_ENOMEM;
    }
    for (size_t i = 0; i < d->n; i++)
        count[d->trips[i].site]++;
    size_t kept = 0, small = 0;
    for (size_t s = 0; s < d->n_sites; s++) {
        if (count[s] >= min_trips) {
            memcpy(names[kept], d->sites[s], LEARNDATA_MAX_NAME);
            map[s] = (int)kept++;
        } else {
            map[s] = -1;
            small += count[s] > 0;
        }
    }
    if (small) snprintf(names[kept++], LEARNDATA_MAX_NAME, "%s", OTHER_COMPANIES);
    for (size_t i = 0; i < d->n; i++) {
        int to = map[d->trips[i].site];
        d->trips[i].site = to >= 0 ? to : (int)kept - 1;
    }
    free(d->sites);
    d->sites = names;
    d->n_sites = kept;
    free(count);
    free(map);
    return OP_OK;
}

typedef struct order {
    int64_t start_s;
    size_t index;
} order;

static int cmp_order(const void *a, const void *b)
{
    const order *x = a, *y = b;
    if (x->start_s != y->start_s) return x->start_s < y->start_s ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int learndata_sort(learndata *d)
{
    if (d->n < 2) return OP_OK;
    order *o = malloc(d->n * sizeof *o);
    learn_trip *sorted = malloc(d->n * sizeof *sorted);
    if (!o || !sorted) {
        free(o);
        free(sorted);
        return OP_ENOMEM;
    }
    for (size_t i = 0; i < d->n; i++)
        o[i] = (order){d->trips[i].start_s, i};
    qsort(o, d->n, sizeof *o, cmp_order);
    for (size_t i = 0; i < d->n; i++)
        sorted[i] = d->trips[o[i].index];
    free(o);
    free(d->trips);
    d->trips = sorted;
    d->cap = d->n;
    return OP_OK;
}

static int read_named(const char *dir, const char *name, char **text, size_t *len, char *err,
                      size_t err_len)
{
    char path[1024];
    if (util_fmt(path, sizeof path, "%s/%s", dir, name) != OP_OK) return OP_EINVAL;
    int rc = os_read_file(path, 256u << 20, text, len);
    if (rc != OP_OK) {
        snprintf(err, err_len, "%s: cannot read it (%s)", path, op_strerror(rc));
        return OP_ENOTFOUND;
    }
    return OP_OK;
}

static void prefix_error(const char *dir, const char *name, char *err, size_t err_len)
{
    char why[512];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, err_len, "%s/%s: %s", dir, name, why);
}

int learndata_load(learndata *d, learndata_kind kind, const char *dir, size_t min_site_trips,
                   char *err, size_t err_len)
{
    static const char chicago[] = "chicago_taxi_trips_tfx_sample.csv",
                      nyc[] = "nyc_taxis_2019_03_seaborn.csv",
                      zones_file[] = "nyc_taxi_zones_seaborn.csv";
    memset(d, 0, sizeof *d);
    learndata_zones zones = {0};
    char *text = NULL;
    size_t len = 0;
    const char *name = kind == LEARNDATA_CHICAGO ? chicago : zones_file;
    int rc = read_named(dir, name, &text, &len, err, err_len);
    if (rc == OP_OK && kind == LEARNDATA_CHICAGO) {
        rc = learndata_parse_chicago(d, text, len, err, err_len);
        if (rc == OP_OK) rc = learndata_group_small_sites(d, min_site_trips);
    } else if (rc == OP_OK) {
        rc = learndata_parse_zones(&zones, text, len, err, err_len);
        free(text);
        text = NULL;
        if (rc == OP_OK) rc = read_named(dir, name = nyc, &text, &len, err, err_len);
        if (rc == OP_OK) rc = learndata_parse_nyc(d, &zones, text, len, err, err_len);
    }
    if (rc != OP_OK && rc != OP_ENOTFOUND) prefix_error(dir, name, err, err_len);
    if (rc == OP_OK) rc = learndata_sort(d);
    free(text);
    learndata_zones_clear(&zones);
    return rc;
}

void learndata_clear(learndata *d)
{
    free(d->trips);
    free(d->sites);
    memset(d, 0, sizeof *d);
}

void learndata_zones_clear(learndata_zones *z)
{
    free(z->name);
    free(z->id);
    free(z->borough);
    memset(z, 0, sizeof *z);
}
