/*
 * The independent checker of rich plans. It shares no evaluation code with
 * the search (rich_eval.c): it reads the matrices itself, takes each step's
 * stated arrival and waiting and verifies them rather than recomputing
 * earliest times, so it also accepts any plan that is feasible for other
 * reasons (a later departure, a break placed elsewhere).
 */
#include "route/rich.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return OP_EINVAL;
}

static const char *kind_name(int kind)
{
    return kind == RICH_PICKUP ? "pickup" : kind == RICH_DELIVERY ? "delivery" : "job";
}

static int64_t cell(const int64_t *m, int n, int a, int b)
{
    if (!m || a < 0 || b < 0) return 0;
    return m[(size_t)a * (size_t)n + (size_t)b];
}

static int inside(const rich_tw *tw, int n, int64_t t)
{
    for (int w = 0; w < n; w++)
        if (tw[w].start <= t && t <= tw[w].end) return 1;
    return 0;
}

/* What one route walk keeps. */
typedef struct walker {
    int v, loc, n_tasks;
    int64_t t, travel, distance;
    int64_t load[RICH_MAX_DIMS];
    char *taken; /* breaks of this vehicle */
} walker;

/* Per task: the vehicle serving it and the order, or -1. */
typedef struct served_at {
    int vehicle, order;
} served_at;

static int check_break(const rich_problem *p, rich_plan *plan, walker *w, const rich_step *st,
                       int k, char *err, size_t err_len)
{
    const rich_vehicle *veh = &p->vehicles[w->v];
    int b = RICH_BREAK_INDEX(st->what);
    if (b >= veh->n_breaks)
        return bad(err, err_len, "vehicle %lld, step %d: no break %d", (long long)veh->id, k, b);
    const rich_break *br = &veh->breaks[b];
    if (w->taken[b])
        return bad(err, err_len, "vehicle %lld, step %d: break %lld taken twice",
                   (long long)veh->id, k, (long long)br->id);
    w->taken[b] = 1;
    if (st->arrival < w->t || st->waiting < 0)
        return bad(err, err_len,
                   "vehicle %lld, step %d (break %lld): begins before the vehicle is free",
                   (long long)veh->id, k, (long long)br->id);
    int64_t begin = st->arrival + st->waiting;
    if (!inside(br->tw, br->n_tw, begin))
        return bad(err, err_len,
                   "vehicle %lld, step %d (break %lld): begins at %lld, outside its windows",
                   (long long)veh->id, k, (long long)br->id, (long long)begin);
    for (int d = 0; br->has_max_load && d < p->n_dims; d++)
        if (w->load[d] > br->max_load[d])
            return bad(err, err_len,
                       "vehicle %lld, step %d (break %lld): load %lld over its max_load %lld "
                       "(dimension %d)",
                       (long long)veh->id, k, (long long)br->id, (long long)w->load[d],
                       (long long)br->max_load[d], d);
    plan->waiting += st->waiting;
    w->t = begin + br->service;
    return OP_OK;
}

static int check_task(const rich_problem *p, rich_plan *plan, walker *w, const rich_step *st, int k,
                      served_at *served, char *err, size_t err_len)
{
    const rich_vehicle *veh = &p->vehicles[w->v];
    int ti = st->what;
    if (ti >= p->n_tasks)
        return bad(err, err_len, "vehicle %lld, step %d: no task %d", (long long)veh->id, k, ti);
    const rich_task *tk = &p->tasks[ti];
    long long id = (long long)tk->id, vid = (long long)veh->id;
    const char *kind = kind_name(tk->kind);
    if (served[ti].vehicle >= 0)
        return bad(err, err_len, "vehicle %lld, step %d (%s %lld): served twice", vid, k, kind, id);
    for (int s = 0; s < RICH_SKILL_WORDS; s++)
        if (tk->skills[s] & ~veh->skills[s])
            return bad(err, err_len, "vehicle %lld, step %d (%s %lld): a skill is missing", vid, k,
                       kind, id);
    if (tk->kind == RICH_DELIVERY &&
        (served[tk->partner].vehicle != w->v || served[tk->partner].order >= w->n_tasks))
        return bad(
            err, err_len,
            "vehicle %lld, step %d (delivery %lld): its pickup is not earlier on this vehicle", vid,
            k, id);
    int64_t dt = cell(p->durations[veh->profile], p->n_locations, w->loc, tk->loc);
    if (st->arrival < w->t + dt || st->waiting < 0)
        return bad(err, err_len, "vehicle %lld, step %d (%s %lld): arrival %lld before %lld", vid,
                   k, kind, id, (long long)st->arrival, (long long)(w->t + dt));
    int64_t begin = st->arrival + st->waiting;
    if (!inside(tk->tw, tk->n_tw, begin))
        return bad(err, err_len,
                   "vehicle %lld, step %d (%s %lld): begins at %lld, outside its windows", vid, k,
                   kind, id, (long long)begin);
    int64_t setup = w->loc != tk->loc ? tk->setup : 0;
    w->travel += dt;
    w->distance += cell(p->distances[veh->profile], p->n_locations, w->loc, tk->loc);
    w->t = begin + setup + tk->service;
    w->loc = tk->loc;
    plan->setup += setup;
    plan->service += tk->service;
    plan->waiting += st->waiting;
    for (int d = 0; d < p->n_dims; d++) {
        w->load[d] += tk->delta[d];
        if (w->load[d] < 0 || w->load[d] > veh->capacity[d])
            return bad(err, err_len,
                       "vehicle %lld, step %d (%s %lld): load %lld in dimension %d, capacity %lld",
                       vid, k, kind, id, (long long)w->load[d], d, (long long)veh->capacity[d]);
    }
    served[ti] = (served_at){w->v, w->n_tasks++};
    plan->served++;
    plan->priority += tk->priority;
    return OP_OK;
}

/* The load a route leaves with: the deliveries of its jobs; within capacity. */
static int start_load(const rich_problem *p, const rich_plan *plan, walker *w, char *err,
                      size_t err_len)
{
    const rich_vehicle *veh = &p->vehicles[w->v];
    for (int k = plan->start[w->v]; k < plan->start[w->v + 1]; k++) {
        int what = plan->steps[k].what;
        if (what >= p->n_tasks)
            return bad(err, err_len, "vehicle %lld, step %d: no task %d", (long long)veh->id, k,
                       what);
        if (!RICH_IS_BREAK(what))
            for (int d = 0; d < p->n_dims; d++)
                w->load[d] += p->tasks[what].start_load[d];
    }
    for (int d = 0; d < p->n_dims; d++)
        if (w->load[d] > veh->capacity[d])
            return bad(err, err_len,
                       "vehicle %lld: leaves with %lld in dimension %d, capacity %lld",
                       (long long)veh->id, (long long)w->load[d], d, (long long)veh->capacity[d]);
    return OP_OK;
}

/* The vehicle's end and limits once its steps are walked; adds the route's cost. */
static int check_end(const rich_problem *p, rich_plan *plan, walker *w, char *err, size_t err_len)
{
    const rich_vehicle *veh = &p->vehicles[w->v];
    long long vid = (long long)veh->id;
    w->travel += cell(p->durations[veh->profile], p->n_locations, w->loc, veh->end_loc);
    w->distance += cell(p->distances[veh->profile], p->n_locations, w->loc, veh->end_loc);
    w->t += cell(p->durations[veh->profile], p->n_locations, w->loc, veh->end_loc);
    if (w->t > veh->tw.end)
        return bad(err, err_len, "vehicle %lld: done at %lld, after its time window ends (%lld)",
                   vid, (long long)w->t, (long long)veh->tw.end);
    for (int b = 0; b < veh->n_breaks; b++)
        if (!w->taken[b])
            return bad(err, err_len, "vehicle %lld: break %lld not taken", vid,
                       (long long)veh->breaks[b].id);
    if (w->travel > veh->max_travel_time)
        return bad(err, err_len, "vehicle %lld: travel time %lld over max_travel_time %lld", vid,
                   (long long)w->travel, (long long)veh->max_travel_time);
    if (w->distance > veh->max_distance)
        return bad(err, err_len, "vehicle %lld: distance %lld over max_distance %lld", vid,
                   (long long)w->distance, (long long)veh->max_distance);
    if (w->n_tasks > veh->max_tasks)
        return bad(err, err_len, "vehicle %lld: %d tasks over max_tasks %d", vid, w->n_tasks,
                   veh->max_tasks);
    plan->travel += w->travel;
    plan->distance += w->distance;
    plan->cost += veh->fixed + veh->per_hour * (double)w->travel / 3600.0 +
                  veh->per_km * (double)w->distance / 1000.0;
    return OP_OK;
}

static int check_route(const rich_problem *p, rich_plan *plan, int v, served_at *served, char *err,
                       size_t err_len)
{
    const rich_vehicle *veh = &p->vehicles[v];
    if (plan->start[v] == plan->start[v + 1]) return OP_OK;
    char taken[RICH_MAX_BREAKS] = {0};
    walker w = {v, veh->start_loc, 0, plan->begin[v], 0, 0, {0}, taken};
    if (plan->begin[v] < veh->tw.start)
        return bad(err, err_len, "vehicle %lld: leaves at %lld, before its time window",
                   (long long)veh->id, (long long)plan->begin[v]);
    int rc = start_load(p, plan, &w, err, err_len);
    for (int k = plan->start[v]; rc == OP_OK && k < plan->start[v + 1]; k++) {
        const rich_step *st = &plan->steps[k];
        rc = RICH_IS_BREAK(st->what)
                 ? check_break(p, plan, &w, st, k - plan->start[v], err, err_len)
                 : check_task(p, plan, &w, st, k - plan->start[v], served, err, err_len);
    }
    if (rc == OP_OK && w.n_tasks == 0)
        return bad(err, err_len, "vehicle %lld: breaks but no task", (long long)veh->id);
    return rc == OP_OK ? check_end(p, plan, &w, err, err_len) : rc;
}

/* Every task served once or listed once as unassigned; shipments whole on one vehicle. */
static int check_cover(const rich_problem *p, const rich_plan *plan, served_at *served, char *err,
                       size_t err_len)
{
    char *listed = calloc((size_t)p->n_tasks + 1, 1);
    if (!listed) return OP_ENOMEM;
    int rc = OP_OK;
    for (int u = 0; u < plan->n_unassigned && rc == OP_OK; u++) {
        int t = plan->unassigned[u];
        if (t < 0 || t >= p->n_tasks)
            rc = bad(err, err_len, "unassigned[%d]: no such task", u);
        else if (listed[t] || served[t].vehicle >= 0)
            rc = bad(err, err_len, "unassigned[%d] (%s %lld): listed twice or also served", u,
                     kind_name(p->tasks[t].kind), (long long)p->tasks[t].id);
        else
            listed[t] = 1;
    }
    for (int t = 0; t < p->n_tasks && rc == OP_OK; t++) {
        const rich_task *tk = &p->tasks[t];
        if (!listed[t] && served[t].vehicle < 0)
            rc = bad(err, err_len, "%s %lld: neither served nor listed as unassigned",
                     kind_name(tk->kind), (long long)tk->id);
        else if (tk->kind == RICH_PICKUP && served[t].vehicle >= 0 &&
                 served[tk->partner].vehicle != served[t].vehicle)
            rc = bad(err, err_len, "pickup %lld: its delivery is not served by the same vehicle",
                     (long long)tk->id);
    }
    free(listed);
    return rc;
}

int rich_check(const rich_problem *p, rich_plan *plan, char *err, size_t err_len)
{
    if (plan->n_vehicles != p->n_vehicles)
        return bad(err, err_len, "the plan has %d vehicles, the problem %d", plan->n_vehicles,
                   p->n_vehicles);
    served_at *served = malloc(((size_t)p->n_tasks + 1) * sizeof *served);
    if (!served) return OP_ENOMEM;
    for (int t = 0; t < p->n_tasks; t++)
        served[t] = (served_at){-1, -1};
    plan->cost = 0;
    plan->travel = plan->distance = plan->service = plan->setup = plan->waiting = 0;
    plan->priority = plan->served = 0;
    int rc = OP_OK;
    for (int v = 0; v < p->n_vehicles && rc == OP_OK; v++) {
        if (plan->start[v] < 0 || plan->start[v] > plan->start[v + 1] ||
            plan->start[v + 1] > plan->n_steps)
            rc = bad(err, err_len, "vehicle %d: bad step range", v);
        else
            rc = check_route(p, plan, v, served, err, err_len);
    }
    if (rc == OP_OK) rc = check_cover(p, plan, served, err, err_len);
    free(served);
    return rc;
}
