/*
 * VROOM's input form into the rich model. Every error names its path
 * (jobs[3].time_windows[0]: ...). Limits: RICH_MAX_TASKS tasks,
 * RICH_MAX_VEHICLES vehicles, RICH_MAX_DIMS capacity dimensions,
 * RICH_MAX_BREAKS breaks per vehicle, RICH_MAX_WINDOWS windows each,
 * RICH_MAX_LOCATIONS matrix rows, 256 distinct skills.
 */
#include "route/vroomio.h"

#include "base/err.h"
#include "base/jsonx.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_AMOUNT ((int64_t)1 << 40)
#define MAX_MATRIX_CELL ((int64_t)1 << 40)

/* What parsing carries along: where errors go, the dimensions and skills met so far. */
typedef struct pctx {
    const char *name;
    char *err;
    size_t err_len;
    rich_problem *p;
    int dims_known;
    int n_skills;
    int64_t skill_values[RICH_SKILL_WORDS * 64];
    int matrix_mode;
    int n_tw; /* windows used in p->tw_pool */
    int tw_cap;
} pctx;

static int fail(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx *c, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_len, "%s: %s", c->name, what);
    return OP_EINVAL;
}

static const cJSON *item(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* An optional integer in [min,max]; absent leaves *out. */
static int opt_int(pctx *c, const cJSON *o, const char *key, int64_t min, int64_t max, int64_t *out,
                   const char *path)
{
    int rc = jsonx_int(o, key, min, max, out);
    if (rc == OP_EINVAL)
        return fail(c, "%s.%s: must be an integer from %lld to %lld", path, key, (long long)min,
                    (long long)max);
    return OP_OK;
}

/* Windows [[start, end], ...] into the pool; absent: one window always open. */
static int parse_windows(pctx *c, const cJSON *arr, const char *path, const char *key,
                         rich_tw **out, int *n_out)
{
    rich_tw *tw = c->p->tw_pool + c->n_tw;
    int n = 0;
    if (!arr) {
        if (c->n_tw >= c->tw_cap) return fail(c, "%s: too many time windows", path);
        tw[0] = (rich_tw){0, RICH_MAX_TIME};
        n = 1;
    } else {
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
            cJSON_GetArraySize(arr) > RICH_MAX_WINDOWS)
            return fail(c, "%s.%s: must be a list of 1 to %d windows", path, key, RICH_MAX_WINDOWS);
        const cJSON *w;
        cJSON_ArrayForEach(w, arr)
        {
            const cJSON *a = cJSON_GetArrayItem(w, 0), *b = cJSON_GetArrayItem(w, 1);
            if (!cJSON_IsArray(w) || cJSON_GetArraySize(w) != 2 || !cJSON_IsNumber(a) ||
                !cJSON_IsNumber(b) || a->valuedouble != floor(a->valuedouble) ||
                b->valuedouble != floor(b->valuedouble) || a->valuedouble < 0 ||
                b->valuedouble < a->valuedouble || b->valuedouble > (double)RICH_MAX_TIME)
                return fail(c,
                            "%s.%s[%d]: must be [start, end], integers, 0 <= start <= end <= 2^50",
                            path, key, n);
            if (c->n_tw + n >= c->tw_cap) return fail(c, "%s: too many time windows", path);
            tw[n] = (rich_tw){(int64_t)a->valuedouble, (int64_t)b->valuedouble};
            if (n > 0 && tw[n].start <= tw[n - 1].end)
                return fail(c, "%s.%s[%d]: windows must be sorted and apart", path, key, n);
            n++;
        }
    }
    c->n_tw += n;
    *out = tw;
    *n_out = n;
    return OP_OK;
}

/* An amount (integers >= 0), all amounts and capacities of one length; absent: zeros. */
static int parse_amount(pctx *c, const cJSON *o, const char *key, const char *path, int64_t *out,
                        int64_t absent)
{
    const cJSON *arr = item(o, key);
    for (int d = 0; d < RICH_MAX_DIMS; d++)
        out[d] = absent;
    if (!arr) return OP_OK;
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n > RICH_MAX_DIMS)
        return fail(c, "%s.%s: must be a list of at most %d integers", path, key, RICH_MAX_DIMS);
    if (c->dims_known && n != c->p->n_dims)
        return fail(c, "%s.%s: has %d numbers where earlier amounts have %d", path, key, n,
                    c->p->n_dims);
    c->dims_known = 1;
    c->p->n_dims = n;
    int d = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 ||
            x->valuedouble > (double)MAX_AMOUNT)
            return fail(c, "%s.%s[%d]: must be an integer from 0 to 2^40", path, key, d);
        out[d++] = (int64_t)x->valuedouble;
    }
    return OP_OK;
}

/* Skills (integers) as bits; distinct values are numbered as they are met. */
static int parse_skills(pctx *c, const cJSON *o, const char *path, uint64_t *bits)
{
    const cJSON *arr = item(o, "skills"), *x;
    memset(bits, 0, RICH_SKILL_WORDS * sizeof *bits);
    if (!arr) return OP_OK;
    if (!cJSON_IsArray(arr)) return fail(c, "%s.skills: must be a list of integers", path);
    int k = 0;
    cJSON_ArrayForEach(x, arr)
    {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
            fabs(x->valuedouble) > 9e15)
            return fail(c, "%s.skills[%d]: must be an integer", path, k);
        int64_t v = (int64_t)x->valuedouble;
        int at = 0;
        while (at < c->n_skills && c->skill_values[at] != v)
            at++;
        if (at == c->n_skills) {
            if (c->n_skills == RICH_SKILL_WORDS * 64)
                return fail(c, "%s.skills[%d]: more than %d distinct skills", path, k,
                            RICH_SKILL_WORDS * 64);
            c->skill_values[c->n_skills++] = v;
        }
        bits[at / 64] |= (uint64_t)1 << (at % 64);
        k++;
    }
    return OP_OK;
}

/* The location of a point: a location_index into the matrices, or [lon, lat] made a location. */
static int parse_place(pctx *c, const cJSON *o, const char *loc_key, const char *index_key,
                       const char *path, int required, int *out)
{
    const cJSON *idx = item(o, index_key), *coords = item(o, loc_key);
    *out = -1;
    if (c->matrix_mode) {
        if (!idx)
            return required ? fail(c, "%s.%s: missing (a matrix is given)", path, index_key)
                            : OP_OK;
        if (!cJSON_IsNumber(idx) || idx->valuedouble != floor(idx->valuedouble) ||
            idx->valuedouble < 0 || idx->valuedouble >= c->p->n_locations)
            return fail(c, "%s.%s: must be a row of the matrix, 0 to %d", path, index_key,
                        c->p->n_locations - 1);
        *out = (int)idx->valuedouble;
        return OP_OK;
    }
    if (!coords)
        return required ? fail(c, "%s.%s: missing ([lon, lat]; or give a matrix)", path, loc_key)
                        : OP_OK;
    const cJSON *lon = cJSON_GetArrayItem(coords, 0), *lat = cJSON_GetArrayItem(coords, 1);
    if (!cJSON_IsArray(coords) || cJSON_GetArraySize(coords) != 2 || !cJSON_IsNumber(lon) ||
        !cJSON_IsNumber(lat) || fabs(lon->valuedouble) > 180 || fabs(lat->valuedouble) > 90)
        return fail(c, "%s.%s: must be [lon, lat] in degrees", path, loc_key);
    rich_problem *p = c->p;
    for (int l = 0; l < p->n_locations; l++)
        if (p->lon[l] == lon->valuedouble && p->lat[l] == lat->valuedouble) {
            *out = l;
            return OP_OK;
        }
    if (p->n_locations >= RICH_MAX_LOCATIONS)
        return fail(c, "%s.%s: more than %d distinct locations", path, loc_key, RICH_MAX_LOCATIONS);
    p->lon[p->n_locations] = lon->valuedouble;
    p->lat[p->n_locations] = lat->valuedouble;
    *out = p->n_locations++;
    return OP_OK;
}

/* What a job and a shipment's pickup or delivery have in common: id, place, times. */
static int parse_point(pctx *c, const cJSON *o, const char *path, rich_task *t)
{
    if (!cJSON_IsObject(o)) return fail(c, "%s: must be an object", path);
    if (jsonx_int(o, "id", 0, INT64_MAX / 2, &t->id) != OP_OK)
        return fail(c, "%s.id: must be an integer >= 0", path);
    int rc = parse_place(c, o, "location", "location_index", path, 1, &t->loc);
    if (rc == OP_OK) rc = opt_int(c, o, "setup", 0, RICH_MAX_TIME, &t->setup, path);
    if (rc == OP_OK) rc = opt_int(c, o, "service", 0, RICH_MAX_TIME, &t->service, path);
    if (rc == OP_OK)
        rc = parse_windows(c, item(o, "time_windows"), path, "time_windows", &t->tw, &t->n_tw);
    if (rc == OP_OK && item(o, "description") && !cJSON_IsString(item(o, "description")))
        rc = fail(c, "%s.description: must be a string", path);
    return rc;
}

static int parse_priority(pctx *c, const cJSON *o, const char *path, int *out)
{
    int64_t prio = 0;
    int rc = opt_int(c, o, "priority", 0, 100, &prio, path);
    *out = (int)prio;
    return rc;
}

static int parse_job(pctx *c, const cJSON *o, int i)
{
    char path[48];
    snprintf(path, sizeof path, "jobs[%d]", i);
    rich_problem *p = c->p;
    rich_task *t = &p->tasks[p->n_tasks];
    t->kind = RICH_JOB;
    t->partner = -1;
    int64_t delivery[RICH_MAX_DIMS], pickup[RICH_MAX_DIMS];
    int rc = parse_point(c, o, path, t);
    if (rc == OP_OK && item(o, "amount"))
        rc = fail(c, "%s.amount: deprecated in VROOM and not read: use delivery or pickup", path);
    if (rc == OP_OK) rc = parse_amount(c, o, "delivery", path, delivery, 0);
    if (rc == OP_OK) rc = parse_amount(c, o, "pickup", path, pickup, 0);
    if (rc == OP_OK) rc = parse_skills(c, o, path, t->skills);
    if (rc == OP_OK) rc = parse_priority(c, o, path, &t->priority);
    if (rc != OP_OK) return rc;
    for (int d = 0; d < RICH_MAX_DIMS; d++) {
        t->start_load[d] = delivery[d];
        t->delta[d] = pickup[d] - delivery[d];
        t->amount[d][0] = delivery[d];
        t->amount[d][1] = pickup[d];
    }
    t->request = p->n_requests;
    p->requests[p->n_requests++] = (rich_request){p->n_tasks++, -1};
    return OP_OK;
}

static int parse_shipment(pctx *c, const cJSON *o, int i)
{
    char path[48], half[64];
    snprintf(path, sizeof path, "shipments[%d]", i);
    if (!cJSON_IsObject(o)) return fail(c, "%s: must be an object", path);
    rich_problem *p = c->p;
    rich_task *pk = &p->tasks[p->n_tasks], *dl = &p->tasks[p->n_tasks + 1];
    int64_t amount[RICH_MAX_DIMS];
    snprintf(half, sizeof half, "%s.pickup", path);
    int rc = parse_point(c, item(o, "pickup"), half, pk);
    snprintf(half, sizeof half, "%s.delivery", path);
    if (rc == OP_OK) rc = parse_point(c, item(o, "delivery"), half, dl);
    if (rc == OP_OK) rc = parse_amount(c, o, "amount", path, amount, 0);
    if (rc == OP_OK) rc = parse_skills(c, o, path, pk->skills);
    if (rc == OP_OK) rc = parse_priority(c, o, path, &pk->priority);
    if (rc != OP_OK) return rc;
    memcpy(dl->skills, pk->skills, sizeof dl->skills);
    dl->priority = pk->priority;
    pk->kind = RICH_PICKUP;
    dl->kind = RICH_DELIVERY;
    pk->partner = p->n_tasks + 1;
    dl->partner = p->n_tasks;
    for (int d = 0; d < RICH_MAX_DIMS; d++) {
        pk->delta[d] = amount[d];
        dl->delta[d] = -amount[d];
        pk->amount[d][1] = amount[d];
        dl->amount[d][0] = amount[d];
    }
    pk->request = dl->request = p->n_requests;
    p->requests[p->n_requests++] = (rich_request){p->n_tasks, p->n_tasks + 1};
    p->n_tasks += 2;
    return OP_OK;
}

static int parse_break(pctx *c, const cJSON *o, const char *path, rich_break *b)
{
    if (!cJSON_IsObject(o)) return fail(c, "%s: must be an object", path);
    if (jsonx_int(o, "id", 0, INT64_MAX / 2, &b->id) != OP_OK)
        return fail(c, "%s.id: must be an integer >= 0", path);
    int rc = opt_int(c, o, "service", 0, RICH_MAX_TIME, &b->service, path);
    if (rc == OP_OK && !item(o, "time_windows"))
        rc = fail(c, "%s.time_windows: missing (a break needs its windows)", path);
    if (rc == OP_OK)
        rc = parse_windows(c, item(o, "time_windows"), path, "time_windows", &b->tw, &b->n_tw);
    b->has_max_load = item(o, "max_load") != NULL;
    if (rc == OP_OK) rc = parse_amount(c, o, "max_load", path, b->max_load, INT64_MAX / 4);
    return rc;
}

/* Breaks in the order of their first window (the evaluator takes them in that order). */
static int cmp_break(const void *a, const void *b)
{
    const rich_break *x = a, *y = b;
    if (x->tw[0].start != y->tw[0].start) return x->tw[0].start < y->tw[0].start ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int parse_breaks(pctx *c, const cJSON *o, const char *path, rich_vehicle *v, int *used)
{
    const cJSON *arr = item(o, "breaks"), *b;
    char bpath[64];
    v->breaks = c->p->break_pool + *used;
    if (!arr) return OP_OK;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > RICH_MAX_BREAKS)
        return fail(c, "%s.breaks: must be a list of at most %d breaks", path, RICH_MAX_BREAKS);
    cJSON_ArrayForEach(b, arr)
    {
        snprintf(bpath, sizeof bpath, "%s.breaks[%d]", path, v->n_breaks);
        int rc = parse_break(c, b, bpath, &v->breaks[v->n_breaks]);
        if (rc != OP_OK) return rc;
        for (int k = 0; k < v->n_breaks; k++)
            if (v->breaks[k].id == v->breaks[v->n_breaks].id)
                return fail(c, "%s.id: %lld used twice", bpath, (long long)v->breaks[k].id);
        v->n_breaks++;
        (*used)++;
    }
    qsort(v->breaks, (size_t)v->n_breaks, sizeof *v->breaks, cmp_break);
    return OP_OK;
}

static int parse_costs(pctx *c, const cJSON *o, const char *path, rich_vehicle *v)
{
    const cJSON *costs = item(o, "costs");
    v->fixed = 0;
    v->per_hour = 3600; /* VROOM's default: the cost is the travel time in seconds */
    v->per_km = 0;
    if (!costs) return OP_OK;
    if (!cJSON_IsObject(costs)) return fail(c, "%s.costs: must be an object", path);
    static const char *keys[] = {"fixed", "per_hour", "per_km"};
    double *outs[] = {&v->fixed, &v->per_hour, &v->per_km};
    for (int k = 0; k < 3; k++) {
        int64_t x;
        int rc = jsonx_int(costs, keys[k], 0, (int64_t)1 << 40, &x);
        if (rc == OP_EINVAL)
            return fail(c, "%s.costs.%s: must be an integer from 0 to 2^40", path, keys[k]);
        if (rc == OP_OK) *outs[k] = (double)x;
    }
    const cJSON *x;
    cJSON_ArrayForEach(x, costs)
    {
        if (strcmp(x->string, "fixed") && strcmp(x->string, "per_hour") &&
            strcmp(x->string, "per_km"))
            return fail(c, "%s.costs.%s: not supported (fixed, per_hour and per_km are)", path,
                        x->string);
    }
    return OP_OK;
}

/* The profile a vehicle drives: an index of the matrices (coordinates: one profile for all). */
static int parse_profile(pctx *c, const cJSON *o, const char *path, rich_vehicle *v)
{
    const cJSON *pr = item(o, "profile");
    if (pr && !cJSON_IsString(pr)) return fail(c, "%s.profile: must be a string", path);
    const char *name = pr ? pr->valuestring : "car";
    v->profile = 0;
    if (!c->matrix_mode) return OP_OK;
    for (int k = 0; k < c->p->n_profiles; k++)
        if (!strcmp(c->p->profile_names[k], name)) {
            v->profile = k;
            return OP_OK;
        }
    return fail(c, "%s.profile: no matrix for profile '%.31s'", path, name);
}

/* Vehicle keys this reader refuses rather than ignore: a plan that would silently differ. */
static int refuse_vehicle_keys(pctx *c, const cJSON *o, const char *path)
{
    if (item(o, "steps")) return fail(c, "%s.steps: plan mode is not supported (VROOM -c)", path);
    double f = 1;
    if (item(o, "speed_factor") && (jsonx_num(o, "speed_factor", &f) != OP_OK || f != 1.0))
        return fail(c, "%s.speed_factor: only 1 is supported (travel times are used as given)",
                    path);
    return OP_OK;
}

static int parse_vehicle(pctx *c, const cJSON *o, int i, int *breaks_used)
{
    char path[48];
    snprintf(path, sizeof path, "vehicles[%d]", i);
    if (!cJSON_IsObject(o)) return fail(c, "%s: must be an object", path);
    rich_vehicle *v = &c->p->vehicles[i];
    if (jsonx_int(o, "id", 0, INT64_MAX / 2, &v->id) != OP_OK)
        return fail(c, "%s.id: must be an integer >= 0", path);
    for (int k = 0; k < i; k++)
        if (c->p->vehicles[k].id == v->id)
            return fail(c, "%s.id: %lld used twice", path, (long long)v->id);
    int rc = refuse_vehicle_keys(c, o, path);
    if (rc == OP_OK) rc = parse_profile(c, o, path, v);
    if (rc == OP_OK) rc = parse_place(c, o, "start", "start_index", path, 0, &v->start_loc);
    if (rc == OP_OK) rc = parse_place(c, o, "end", "end_index", path, 0, &v->end_loc);
    if (rc == OP_OK && v->start_loc < 0 && v->end_loc < 0 && !item(o, "start") && !item(o, "end") &&
        !item(o, "start_index") && !item(o, "end_index"))
        rc = fail(c, "%s: needs a start or an end (or both)", path);
    if (rc == OP_OK) rc = parse_amount(c, o, "capacity", path, v->capacity, INT64_MAX / 4);
    if (rc == OP_OK) rc = parse_skills(c, o, path, v->skills);
    if (rc != OP_OK) return rc;
    v->tw = (rich_tw){0, RICH_MAX_TIME};
    const cJSON *tw = item(o, "time_window");
    if (tw) {
        const cJSON *a = cJSON_GetArrayItem(tw, 0), *b = cJSON_GetArrayItem(tw, 1);
        if (!cJSON_IsArray(tw) || cJSON_GetArraySize(tw) != 2 || !cJSON_IsNumber(a) ||
            !cJSON_IsNumber(b) || a->valuedouble != floor(a->valuedouble) ||
            b->valuedouble != floor(b->valuedouble) || a->valuedouble < 0 ||
            b->valuedouble < a->valuedouble || b->valuedouble > (double)RICH_MAX_TIME)
            return fail(c,
                        "%s.time_window: must be [start, end], integers, 0 <= start <= end <= 2^50",
                        path);
        v->tw = (rich_tw){(int64_t)a->valuedouble, (int64_t)b->valuedouble};
    }
    int64_t x = RICH_MAX_TIME;
    v->max_travel_time = v->max_distance = RICH_MAX_TIME;
    rc = opt_int(c, o, "max_travel_time", 0, RICH_MAX_TIME, &v->max_travel_time, path);
    if (rc == OP_OK) rc = opt_int(c, o, "max_distance", 0, RICH_MAX_TIME, &v->max_distance, path);
    if (rc == OP_OK) rc = opt_int(c, o, "max_tasks", 0, INT32_MAX, &x, path);
    v->max_tasks = x > INT32_MAX ? INT32_MAX : (int)x;
    if (rc == OP_OK) rc = parse_costs(c, o, path, v);
    if (rc == OP_OK) rc = parse_breaks(c, o, path, v, breaks_used);
    return rc;
}

/* One square matrix of integers >= 0 into a fresh n*n array (n from the first matrix). */
static int parse_square(pctx *c, const cJSON *m, const char *path, int64_t **out)
{
    int n = cJSON_GetArraySize(m);
    if (!cJSON_IsArray(m) || n < 1 || n > RICH_MAX_LOCATIONS ||
        (c->p->n_locations && n != c->p->n_locations))
        return fail(c, "%s: must be a square list of 1 to %d rows%s", path, RICH_MAX_LOCATIONS,
                    c->p->n_locations ? ", as large as the other matrices" : "");
    c->p->n_locations = n;
    *out = malloc((size_t)n * (size_t)n * sizeof **out);
    if (!*out) return OP_ENOMEM;
    int i = 0;
    const cJSON *row, *x;
    cJSON_ArrayForEach(row, m)
    {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != n)
            return fail(c, "%s[%d]: must have %d numbers", path, i, n);
        int j = 0;
        cJSON_ArrayForEach(x, row)
        {
            if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
                x->valuedouble < 0 || x->valuedouble > (double)MAX_MATRIX_CELL)
                return fail(c, "%s[%d][%d]: must be an integer from 0 to 2^40", path, i, j);
            (*out)[(size_t)i * n + j] = (int64_t)x->valuedouble;
            j++;
        }
        i++;
    }
    return OP_OK;
}

/* `matrices` per profile (durations, optional distances) or the legacy `matrix` (durations). */
static int parse_matrices(pctx *c, const cJSON *root)
{
    const cJSON *ms = item(root, "matrices"), *legacy = item(root, "matrix"), *m;
    rich_problem *p = c->p;
    char path[96];
    if (legacy) {
        snprintf(p->profile_names[0], sizeof p->profile_names[0], "car");
        p->n_profiles = 1;
        return parse_square(c, legacy, "matrix", &p->durations[0]);
    }
    if (!cJSON_IsObject(ms) || cJSON_GetArraySize(ms) < 1 ||
        cJSON_GetArraySize(ms) > RICH_MAX_PROFILES)
        return fail(c, "matrices: must be an object of 1 to %d profiles", RICH_MAX_PROFILES);
    cJSON_ArrayForEach(m, ms)
    {
        int k = p->n_profiles;
        if (strlen(m->string) >= sizeof p->profile_names[k] || !cJSON_IsObject(m))
            return fail(c, "matrices.%.40s: a profile name under 32 characters, an object",
                        m->string);
        snprintf(p->profile_names[k], sizeof p->profile_names[k], "%s", m->string);
        p->n_profiles++;
        if (item(m, "costs"))
            return fail(c, "matrices.%s.costs: custom cost matrices are not supported", m->string);
        if (!item(m, "durations")) return fail(c, "matrices.%s.durations: missing", m->string);
        snprintf(path, sizeof path, "matrices.%s.durations", m->string);
        int rc = parse_square(c, item(m, "durations"), path, &p->durations[k]);
        if (rc == OP_OK && item(m, "distances")) {
            snprintf(path, sizeof path, "matrices.%s.distances", m->string);
            rc = parse_square(c, item(m, "distances"), path, &p->distances[k]);
        }
        if (rc != OP_OK) return rc;
    }
    for (int k = 1; k < p->n_profiles; k++)
        if ((p->distances[k] != NULL) != (p->distances[0] != NULL))
            return fail(c, "matrices: give distances for every profile or for none");
    return OP_OK;
}

/* Great-circle distances (metres) and times at VROOM_SPEED_KMH between the locations met. */
static int coordinate_matrices(rich_problem *p)
{
    int n = p->n_locations;
    p->n_profiles = 1;
    snprintf(p->profile_names[0], sizeof p->profile_names[0], "car");
    p->durations[0] = malloc((size_t)n * (size_t)n * sizeof(int64_t));
    p->distances[0] = malloc((size_t)n * (size_t)n * sizeof(int64_t));
    if (!p->durations[0] || !p->distances[0]) return OP_ENOMEM;
    const double rad = M_PI / 180, earth_m = 6371008.8, speed_mps = VROOM_SPEED_KMH / 3.6;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dlat = (p->lat[j] - p->lat[i]) * rad, dlon = (p->lon[j] - p->lon[i]) * rad;
            double h = sin(dlat / 2) * sin(dlat / 2) +
                       cos(p->lat[i] * rad) * cos(p->lat[j] * rad) * sin(dlon / 2) * sin(dlon / 2);
            double m = 2 * earth_m * asin(sqrt(fmin(1, h)));
            p->distances[0][(size_t)i * n + j] = (int64_t)llround(m);
            p->durations[0][(size_t)i * n + j] = (int64_t)llround(m / speed_mps);
        }
    p->has_coords = 1;
    return OP_OK;
}

/* Windows and breaks the problem holds, to size the pools before parsing. */
static void count_pools(const cJSON *root, int *windows, int *breaks)
{
    const cJSON *x, *b;
    *windows = 0;
    *breaks = 0;
    cJSON_ArrayForEach(x, item(root, "jobs")) *windows +=
        1 + cJSON_GetArraySize(item(x, "time_windows"));
    cJSON_ArrayForEach(x, item(root, "shipments"))
    {
        *windows += 1 + cJSON_GetArraySize(item(item(x, "pickup"), "time_windows"));
        *windows += 1 + cJSON_GetArraySize(item(item(x, "delivery"), "time_windows"));
    }
    cJSON_ArrayForEach(x, item(root, "vehicles"))
    {
        *windows += 2;
        cJSON_ArrayForEach(b, item(x, "breaks"))
        {
            *windows += 1 + cJSON_GetArraySize(item(b, "time_windows"));
            (*breaks)++;
        }
    }
}

/* Ids unique among jobs, among pickups and among deliveries (VROOM's id spaces). */
static int check_ids(pctx *c)
{
    rich_problem *p = c->p;
    static const char *names[] = {"job", "pickup", "delivery"};
    for (int a = 0; a < p->n_tasks; a++)
        for (int b = a + 1; b < p->n_tasks; b++)
            if (p->tasks[a].kind == p->tasks[b].kind && p->tasks[a].id == p->tasks[b].id)
                return fail(c, "%s id %lld used twice", names[p->tasks[a].kind],
                            (long long)p->tasks[a].id);
    return OP_OK;
}

/* Sizes and allocations from the top-level lists; the lists themselves are checked here. */
static int allocate(pctx *c, const cJSON *root)
{
    const cJSON *jobs = item(root, "jobs"), *ships = item(root, "shipments"),
                *vs = item(root, "vehicles");
    if (jobs && !cJSON_IsArray(jobs)) return fail(c, "jobs: must be a list");
    if (ships && !cJSON_IsArray(ships)) return fail(c, "shipments: must be a list");
    if (!cJSON_IsArray(vs) || cJSON_GetArraySize(vs) < 1 ||
        cJSON_GetArraySize(vs) > RICH_MAX_VEHICLES)
        return fail(c, "vehicles: must be a list of 1 to %d vehicles", RICH_MAX_VEHICLES);
    int64_t n_tasks = (int64_t)cJSON_GetArraySize(jobs) + 2 * (int64_t)cJSON_GetArraySize(ships);
    if (n_tasks > RICH_MAX_TASKS)
        return fail(c, "jobs and shipments: %lld tasks, more than %d (a shipment is two)",
                    (long long)n_tasks, RICH_MAX_TASKS);
    rich_problem *p = c->p;
    int windows, breaks;
    count_pools(root, &windows, &breaks);
    c->tw_cap = windows + 1;
    p->n_vehicles = cJSON_GetArraySize(vs);
    p->tasks = calloc((size_t)n_tasks + 1, sizeof *p->tasks);
    p->requests = calloc((size_t)n_tasks + 1, sizeof *p->requests);
    p->vehicles = calloc((size_t)p->n_vehicles, sizeof *p->vehicles);
    p->tw_pool = calloc((size_t)c->tw_cap, sizeof *p->tw_pool);
    p->break_pool = calloc((size_t)breaks + 1, sizeof *p->break_pool);
    if (!p->tasks || !p->requests || !p->vehicles || !p->tw_pool || !p->break_pool)
        return OP_ENOMEM;
    if (c->matrix_mode) return parse_matrices(c, root);
    p->lon = calloc(RICH_MAX_LOCATIONS, sizeof *p->lon);
    p->lat = calloc(RICH_MAX_LOCATIONS, sizeof *p->lat);
    return p->lon && p->lat ? OP_OK : OP_ENOMEM;
}

static int parse_body(pctx *c, const cJSON *root)
{
    if (!cJSON_IsObject(root)) return fail(c, "not a JSON object");
    static const char *refused[] = {"zones", "plan", "costs"};
    for (size_t k = 0; k < sizeof refused / sizeof *refused; k++)
        if (item(root, refused[k])) return fail(c, "%s: not supported", refused[k]);
    c->matrix_mode = item(root, "matrices") || item(root, "matrix");
    int rc = allocate(c, root), i = 0, breaks_used = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, item(root, "jobs"))
    {
        if (rc == OP_OK) rc = parse_job(c, x, i++);
    }
    i = 0;
    cJSON_ArrayForEach(x, item(root, "shipments"))
    {
        if (rc == OP_OK) rc = parse_shipment(c, x, i++);
    }
    i = 0;
    cJSON_ArrayForEach(x, item(root, "vehicles"))
    {
        if (rc == OP_OK) rc = parse_vehicle(c, x, i++, &breaks_used);
    }
    if (rc == OP_OK) rc = check_ids(c);
    if (rc == OP_OK && !c->matrix_mode) {
        if (c->p->n_locations == 0) return fail(c, "no locations: give [lon, lat] or a matrix");
        rc = coordinate_matrices(c->p);
    }
    return rc;
}

int vroomio_detect(const char *text)
{
    const char *q = text;
    while (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')
        q++;
    if (*q != '{') return 0;
    cJSON *root = cJSON_Parse(text);
    int yes = root && cJSON_IsArray(item(root, "vehicles")) &&
              (item(root, "jobs") || item(root, "shipments"));
    cJSON_Delete(root);
    return yes;
}

int vroomio_parse(const char *text, const char *name, rich_problem *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(text);
    if (len > VROOM_MAX_TEXT) {
        snprintf(err, err_len, "%s: larger than %d bytes", name, VROOM_MAX_TEXT);
        return OP_ETOOBIG;
    }
    char why[200];
    cJSON *root = jsonx_parse(text, len, why, sizeof why);
    if (!root) {
        snprintf(err, err_len, "%s: not valid JSON: %s", name, why);
        return OP_EINVAL;
    }
    pctx c = {.name = name, .err = err, .err_len = err_len, .p = out};
    int rc = parse_body(&c, root);
    cJSON_Delete(root);
    if (rc == OP_ENOMEM) snprintf(err, err_len, "%s: out of memory", name);
    if (rc != OP_OK) rich_problem_clear(out);
    return rc;
}
