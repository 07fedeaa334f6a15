/*
 * VROOM's output form: a plan written as VROOM writes its answers, and read
 * back for the checker. Step times come from the plan (the search's or the
 * file's); loads, durations and totals are walked again here.
 */
#include "route/vroomio.h"

#include "base/err.h"
#include "base/jsonx.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(int kind)
{
    return kind == RICH_PICKUP ? "pickup" : kind == RICH_DELIVERY ? "delivery" : "job";
}

static cJSON *amount_array(const int64_t *a, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int d = 0; arr && d < n; d++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)a[d]));
    return arr;
}

/* A location as the input gave it: location_index with a matrix, [lon, lat] otherwise. */
static void add_location(const rich_problem *p, cJSON *o, int loc)
{
    if (loc < 0) return;
    if (p->has_coords) {
        cJSON *pair = cJSON_AddArrayToObject(o, "location");
        if (pair) {
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(p->lon[loc]));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(p->lat[loc]));
        }
    } else {
        cJSON_AddNumberToObject(o, "location_index", loc);
    }
}

/* The totals of one route, as the summary sums them. */
typedef struct route_sum {
    int64_t delivery[RICH_MAX_DIMS], pickup[RICH_MAX_DIMS];
    int64_t setup, service, travel, waiting, distance;
    int priority;
    double cost;
} route_sum;

static cJSON *step_object(const char *type, int64_t arrival, int64_t travel, int64_t distance,
                          const int64_t *load, const rich_problem *p)
{
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
    cJSON_AddStringToObject(s, "type", type);
    cJSON_AddNumberToObject(s, "arrival", (double)arrival);
    cJSON_AddNumberToObject(s, "duration", (double)travel);
    cJSON_AddItemToObject(s, "load", amount_array(load, p->n_dims));
    if (p->distances[0]) cJSON_AddNumberToObject(s, "distance", (double)distance);
    return s;
}

/* The walk of one route: where, when, how loaded. */
typedef struct owalk {
    int loc;
    int64_t t, load[RICH_MAX_DIMS];
} owalk;

static void add_task_step(const rich_problem *p, int v, const rich_step *st, owalk *w,
                          route_sum *sum, cJSON *steps)
{
    const rich_task *tk = &p->tasks[st->what];
    int64_t dt = rich_duration(p, v, w->loc, tk->loc);
    sum->travel += dt;
    sum->distance += rich_distance(p, v, w->loc, tk->loc);
    int64_t setup = w->loc != tk->loc ? tk->setup : 0;
    for (int d = 0; d < p->n_dims; d++) {
        w->load[d] += tk->delta[d];
        sum->delivery[d] += tk->amount[d][0];
        sum->pickup[d] += tk->amount[d][1];
    }
    cJSON *s =
        step_object(type_name(tk->kind), st->arrival, sum->travel, sum->distance, w->load, p);
    if (s) {
        cJSON_AddNumberToObject(s, "id", (double)tk->id);
        add_location(p, s, tk->loc);
        cJSON_AddNumberToObject(s, "setup", (double)setup);
        cJSON_AddNumberToObject(s, "service", (double)tk->service);
        cJSON_AddNumberToObject(s, "waiting_time", (double)st->waiting);
        cJSON_AddItemToArray(steps, s);
    }
    sum->setup += setup;
    sum->service += tk->service;
    sum->waiting += st->waiting;
    sum->priority += tk->priority;
    w->t = st->arrival + st->waiting + setup + tk->service;
    w->loc = tk->loc;
}

static void add_break_step(const rich_problem *p, int v, const rich_step *st, owalk *w,
                           route_sum *sum, cJSON *steps)
{
    const rich_break *b = &p->vehicles[v].breaks[RICH_BREAK_INDEX(st->what)];
    cJSON *s = step_object("break", st->arrival, sum->travel, sum->distance, w->load, p);
    if (s) {
        cJSON_AddNumberToObject(s, "id", (double)b->id);
        cJSON_AddNumberToObject(s, "setup", 0);
        cJSON_AddNumberToObject(s, "service", (double)b->service);
        cJSON_AddNumberToObject(s, "waiting_time", (double)st->waiting);
        cJSON_AddItemToArray(steps, s);
    }
    sum->service += b->service;
    sum->waiting += st->waiting;
    w->t = st->arrival + st->waiting + b->service;
}

/* One route: its steps (start, tasks and breaks, end) and totals; adds them to sum. */
static cJSON *route_object(const rich_problem *p, const rich_plan *plan, int v, route_sum *sum)
{
    const rich_vehicle *veh = &p->vehicles[v];
    cJSON *ro = cJSON_CreateObject(), *steps = cJSON_CreateArray();
    if (!ro || !steps) {
        cJSON_Delete(ro);
        cJSON_Delete(steps);
        return NULL;
    }
    owalk w = {veh->start_loc, plan->begin[v], {0}};
    for (int k = plan->start[v]; k < plan->start[v + 1]; k++)
        if (!RICH_IS_BREAK(plan->steps[k].what))
            for (int d = 0; d < p->n_dims; d++)
                w.load[d] += p->tasks[plan->steps[k].what].start_load[d];
    if (veh->start_loc >= 0) {
        cJSON *s = step_object("start", w.t, 0, 0, w.load, p);
        if (s) add_location(p, s, veh->start_loc), cJSON_AddItemToArray(steps, s);
    }
    for (int k = plan->start[v]; k < plan->start[v + 1]; k++) {
        if (RICH_IS_BREAK(plan->steps[k].what))
            add_break_step(p, v, &plan->steps[k], &w, sum, steps);
        else
            add_task_step(p, v, &plan->steps[k], &w, sum, steps);
    }
    if (veh->end_loc >= 0) {
        sum->travel += rich_duration(p, v, w.loc, veh->end_loc);
        sum->distance += rich_distance(p, v, w.loc, veh->end_loc);
        cJSON *s = step_object("end", w.t + rich_duration(p, v, w.loc, veh->end_loc), sum->travel,
                               sum->distance, w.load, p);
        if (s) add_location(p, s, veh->end_loc), cJSON_AddItemToArray(steps, s);
    }
    sum->cost = veh->fixed + veh->per_hour * (double)sum->travel / 3600.0 +
                veh->per_km * (double)sum->distance / 1000.0;
    jsonx_add_int(ro, "vehicle", veh->id);
    cJSON_AddItemToObject(ro, "steps", steps);
    return ro;
}

static void add_totals(const rich_problem *p, cJSON *o, const route_sum *s)
{
    cJSON_AddNumberToObject(o, "cost", s->cost);
    cJSON_AddItemToObject(o, "delivery", amount_array(s->delivery, p->n_dims));
    cJSON_AddItemToObject(o, "pickup", amount_array(s->pickup, p->n_dims));
    cJSON_AddNumberToObject(o, "setup", (double)s->setup);
    cJSON_AddNumberToObject(o, "service", (double)s->service);
    cJSON_AddNumberToObject(o, "duration", (double)s->travel);
    cJSON_AddNumberToObject(o, "waiting_time", (double)s->waiting);
    cJSON_AddNumberToObject(o, "priority", s->priority);
    if (p->distances[0]) cJSON_AddNumberToObject(o, "distance", (double)s->distance);
    cJSON_AddItemToObject(o, "violations", cJSON_CreateArray());
}

static void add_route_sum(route_sum *total, const route_sum *r, int dims)
{
    for (int d = 0; d < dims; d++) {
        total->delivery[d] += r->delivery[d];
        total->pickup[d] += r->pickup[d];
    }
    total->setup += r->setup;
    total->service += r->service;
    total->travel += r->travel;
    total->waiting += r->waiting;
    total->distance += r->distance;
    total->priority += r->priority;
    total->cost += r->cost;
}

static void add_unassigned(const rich_problem *p, const rich_plan *plan, cJSON *root)
{
    cJSON *list = cJSON_AddArrayToObject(root, "unassigned");
    for (int u = 0; list && u < plan->n_unassigned; u++) {
        const rich_task *tk = &p->tasks[plan->unassigned[u]];
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        jsonx_add_int(o, "id", tk->id);
        cJSON_AddStringToObject(o, "type", type_name(tk->kind));
        add_location(p, o, tk->loc);
        cJSON_AddItemToArray(list, o);
    }
}

char *vroomio_plan_to_json(const rich_problem *p, const rich_plan *plan, const rich_stats *stats)
{
    cJSON *root = cJSON_CreateObject(), *routes = cJSON_CreateArray();
    if (!root || !routes) {
        cJSON_Delete(root);
        cJSON_Delete(routes);
        return NULL;
    }
    cJSON_AddNumberToObject(root, "code", 0);
    route_sum total = {0};
    int used = 0;
    for (int v = 0; v < p->n_vehicles; v++) {
        if (plan->start[v] == plan->start[v + 1]) continue;
        route_sum sum = {0};
        cJSON *ro = route_object(p, plan, v, &sum);
        if (!ro) continue;
        add_totals(p, ro, &sum);
        cJSON_AddItemToArray(routes, ro);
        add_route_sum(&total, &sum, p->n_dims);
        used++;
    }
    cJSON *summary = cJSON_AddObjectToObject(root, "summary");
    if (summary) {
        cJSON_AddNumberToObject(summary, "routes", used);
        cJSON_AddNumberToObject(summary, "unassigned", plan->n_unassigned);
        add_totals(p, summary, &total);
        if (stats) {
            cJSON *ct = cJSON_AddObjectToObject(summary, "computing_times");
            if (ct)
                cJSON_AddNumberToObject(ct, "solving", (double)(int64_t)(stats->elapsed_s * 1000));
            cJSON_AddNumberToObject(summary, "iterations", (double)stats->iterations);
        }
    }
    add_unassigned(p, plan, root);
    cJSON_AddItemToObject(root, "routes", routes);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* ---- reading an answer back (for the checker) ---- */

static int rfail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rfail(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return OP_EINVAL;
}

static int kind_of(const char *type)
{
    if (!type) return -1;
    if (!strcmp(type, "job")) return RICH_JOB;
    if (!strcmp(type, "pickup")) return RICH_PICKUP;
    if (!strcmp(type, "delivery")) return RICH_DELIVERY;
    return -1;
}

static int find_task(const rich_problem *p, int kind, int64_t id)
{
    for (int t = 0; t < p->n_tasks; t++)
        if (p->tasks[t].kind == kind && p->tasks[t].id == id) return t;
    return -1;
}

/* One step of routes[r] into out (a task or a break); start and end only set the departure. */
static int read_step(const rich_problem *p, int v, const cJSON *s, const char *path, rich_plan *out,
                     char *err, size_t err_len)
{
    const char *type = jsonx_str(s, "type");
    int64_t arrival, waiting = 0, id = 0;
    if (!type || jsonx_int(s, "arrival", 0, RICH_MAX_TIME, &arrival) != OP_OK ||
        jsonx_int(s, "waiting_time", 0, RICH_MAX_TIME, &waiting) == OP_EINVAL)
        return rfail(err, err_len, "%s: needs type, arrival (and waiting_time) as integers >= 0",
                     path);
    if (!strcmp(type, "start")) {
        out->begin[v] = arrival;
        return OP_OK;
    }
    if (!strcmp(type, "end")) {
        if (out->begin[v] < 0) out->begin[v] = arrival;
        return OP_OK;
    }
    if (jsonx_int(s, "id", 0, INT64_MAX / 2, &id) != OP_OK)
        return rfail(err, err_len, "%s.id: must be an integer >= 0", path);
    int what = -1;
    if (!strcmp(type, "break")) {
        int found = -1;
        for (int b = 0; b < p->vehicles[v].n_breaks; b++)
            if (p->vehicles[v].breaks[b].id == id) found = b;
        if (found < 0)
            return rfail(err, err_len, "%s: the vehicle has no break %lld", path, (long long)id);
        what = RICH_BREAK(found);
    } else {
        int kind = kind_of(type);
        if (kind < 0)
            return rfail(err, err_len, "%s.type: start, job, pickup, delivery, break or end", path);
        if ((what = find_task(p, kind, id)) < 0)
            return rfail(err, err_len, "%s: no %s %lld in the problem", path, type, (long long)id);
    }
    if (out->n_steps == out->start[p->n_vehicles])
        return rfail(err, err_len, "%s: far more steps than the problem has tasks and breaks",
                     path);
    if (out->begin[v] < 0) { /* no start step: left just in time for the first step */
        int64_t lead =
            what >= 0 ? rich_duration(p, v, p->vehicles[v].start_loc, p->tasks[what].loc) : 0;
        out->begin[v] =
            arrival - lead > p->vehicles[v].tw.start ? arrival - lead : p->vehicles[v].tw.start;
    }
    out->steps[out->n_steps++] = (rich_step){what, arrival, waiting};
    return OP_OK;
}

static int read_routes(const rich_problem *p, const cJSON *routes, rich_plan *out, int capacity,
                       char *err, size_t err_len)
{
    int *route_of = malloc((size_t)p->n_vehicles * sizeof *route_of), r = 0, rc = OP_OK;
    if (!route_of) return OP_ENOMEM;
    for (int v = 0; v < p->n_vehicles; v++)
        route_of[v] = -1;
    const cJSON *ro;
    cJSON_ArrayForEach(ro, routes)
    {
        int64_t vid;
        int v = 0;
        if (jsonx_int(ro, "vehicle", 0, INT64_MAX / 2, &vid) != OP_OK) {
            rc = rfail(err, err_len, "routes[%d].vehicle: must be a vehicle id", r);
            break;
        }
        while (v < p->n_vehicles && p->vehicles[v].id != vid)
            v++;
        if (v == p->n_vehicles || route_of[v] >= 0) {
            rc = rfail(err, err_len,
                       "routes[%d].vehicle: %lld is not a vehicle of the problem, or twice", r,
                       (long long)vid);
            break;
        }
        route_of[v] = r++;
    }
    /* the plan keeps routes in the problem's vehicle order */
    out->start[p->n_vehicles] = capacity;
    for (int v = 0; rc == OP_OK && v < p->n_vehicles; v++) {
        out->start[v] = out->n_steps;
        out->begin[v] = 0;
        if (route_of[v] < 0) continue;
        out->begin[v] = -1;
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetArrayItem(routes, route_of[v]), "steps"),
                    *s;
        if (!cJSON_IsArray(steps))
            rc = rfail(err, err_len, "routes[%d].steps: must be a list", route_of[v]);
        int k = 0;
        cJSON_ArrayForEach(s, steps)
        {
            char path[64];
            snprintf(path, sizeof path, "routes[%d].steps[%d]", route_of[v], k++);
            if (rc == OP_OK) rc = read_step(p, v, s, path, out, err, err_len);
        }
    }
    out->start[p->n_vehicles] = out->n_steps;
    free(route_of);
    return rc;
}

static int read_unassigned(const rich_problem *p, const cJSON *list, rich_plan *out, char *err,
                           size_t err_len)
{
    const cJSON *u;
    int k = 0;
    cJSON_ArrayForEach(u, list)
    {
        int64_t id;
        const char *type = jsonx_str(u, "type");
        int kind = type ? kind_of(type) : RICH_JOB, t;
        if (jsonx_int(u, "id", 0, INT64_MAX / 2, &id) != OP_OK || kind < 0)
            return rfail(err, err_len,
                         "unassigned[%d]: needs an id and a type (job, pickup, delivery)", k);
        if ((t = find_task(p, kind, id)) < 0)
            return rfail(err, err_len, "unassigned[%d]: no %s %lld in the problem", k,
                         type ? type : "job", (long long)id);
        if (out->n_unassigned > p->n_tasks)
            return rfail(err, err_len, "unassigned[%d]: more than the problem has tasks", k);
        out->unassigned[out->n_unassigned++] = t;
        k++;
    }
    return OP_OK;
}

int vroomio_plan_from_json(const rich_problem *p, const char *text, rich_plan *out,
                           double *stated_cost, char *err, size_t err_len)
{
    char why[200];
    memset(out, 0, sizeof *out);
    *stated_cost = -1;
    cJSON *root = jsonx_parse(text, strlen(text), why, sizeof why);
    if (!root) return rfail(err, err_len, "not valid JSON: %s", why);
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(root, "routes");
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(root, "unassigned");
    int rc = OP_OK, capacity = p->n_tasks;
    for (int v = 0; v < p->n_vehicles; v++)
        capacity += p->vehicles[v].n_breaks;
    capacity = 2 * capacity + 16; /* room for a wrong answer's repeats, for the checker to name */
    if (!cJSON_IsArray(routes) || (un && !cJSON_IsArray(un)))
        rc = rfail(err, err_len, "routes and unassigned: must be lists");
    else if (rich_plan_alloc(out, p->n_vehicles, capacity, p->n_tasks + 1) != OP_OK)
        rc = OP_ENOMEM;
    if (rc == OP_OK) rc = read_routes(p, routes, out, capacity, err, err_len);
    if (rc == OP_OK) rc = read_unassigned(p, un, out, err, err_len);
    double cost;
    const cJSON *summary = cJSON_GetObjectItemCaseSensitive(root, "summary");
    if (rc == OP_OK && summary && jsonx_num(summary, "cost", &cost) == OP_OK) *stated_cost = cost;
    cJSON_Delete(root);
    if (rc != OP_OK) rich_plan_clear(out);
    return rc;
}
