/*
 * The route evaluator of the rich search: one forward pass over a route
 * (earliest times with waiting, loads per dimension, the vehicle's limits).
 *
 * Breaks are not part of the search's routes: the pass places them. Before
 * each task (and before the end) it considers the vehicle's next break and
 * takes it there, at the previous location, when that costs the next task
 * nothing (the vehicle would wait anyway), or when after the next task no
 * window of the break would still be open. A break whose max_load the
 * current load exceeds is put off. A used vehicle must take all its breaks.
 */
#include "route/rich_int.h"

#include "base/err.h"

#include <stdlib.h>
#include <string.h>

/* The earliest begin at or after t inside one of the windows, or -1. */
static int64_t earliest_in(const rich_tw *tw, int n_tw, int64_t t)
{
    for (int w = 0; w < n_tw; w++)
        if (tw[w].end >= t) return t > tw[w].start ? t : tw[w].start;
    return -1;
}

/* Where the walk stands: time, place, load. */
typedef struct walk {
    int64_t t;
    int loc;
    int64_t load[RICH_MAX_DIMS];
} walk;

/* When the task would be done if begun from w: -1 when its windows are closed. */
static int64_t task_done(const rich_problem *p, int v, const walk *w, int task, int64_t *begin_at)
{
    const rich_task *tk = &p->tasks[task];
    int64_t arrival = w->t + rich_duration(p, v, w->loc, tk->loc);
    int64_t begin = earliest_in(tk->tw, tk->n_tw, arrival);
    if (begin < 0) return -1;
    if (begin_at) *begin_at = begin;
    return begin + (w->loc != tk->loc ? tk->setup : 0) + tk->service;
}

static int load_fits(const rich_problem *p, const int64_t *load, const int64_t *limit)
{
    for (int d = 0; d < p->n_dims; d++)
        if (load[d] > limit[d]) return 0;
    return 1;
}

/* Whether to take break b now, before task next (-1: the end); see the file comment. */
static int take_break_now(const rich_problem *p, int v, const walk *w, const rich_break *b,
                          int next)
{
    if (b->has_max_load && !load_fits(p, w->load, b->max_load)) return 0;
    int64_t bbegin = earliest_in(b->tw, b->n_tw, w->t);
    if (bbegin < 0) return 1; /* too late for it anywhere: let the caller fail */
    if (next < 0) return 1;
    int64_t without_begin = 0, with_begin = 0;
    int64_t done = task_done(p, v, w, next, &without_begin);
    if (done < 0) return 1;
    walk after = *w;
    after.t = bbegin + b->service;
    if (task_done(p, v, &after, next, &with_begin) >= 0 && with_begin == without_begin) return 1;
    return b->tw[b->n_tw - 1].end < done;
}

/* Takes the breaks due before task next; 0 when one can no longer be taken. */
static int place_breaks(const rich_problem *p, int v, walk *w, int *nb, int next, rich_step *steps,
                        int *ns)
{
    const rich_vehicle *veh = &p->vehicles[v];
    while (*nb < veh->n_breaks) {
        const rich_break *b = &veh->breaks[*nb];
        if (!take_break_now(p, v, w, b, next)) return 1;
        int64_t bbegin = earliest_in(b->tw, b->n_tw, w->t);
        if (bbegin < 0) return 0;
        if (steps) steps[*ns] = (rich_step){RICH_BREAK(*nb), w->t, bbegin - w->t};
        (*ns)++;
        w->t = bbegin + b->service;
        (*nb)++;
    }
    return 1;
}

/* The end of the route: back at the end location (if any) inside the vehicle's window. */
static int finish(const rich_problem *p, int v, walk *w, int len, rich__eval *ev)
{
    const rich_vehicle *veh = &p->vehicles[v];
    ev->travel += rich_duration(p, v, w->loc, veh->end_loc);
    ev->distance += rich_distance(p, v, w->loc, veh->end_loc);
    w->t += rich_duration(p, v, w->loc, veh->end_loc);
    if (w->t > veh->tw.end || ev->travel > veh->max_travel_time ||
        ev->distance > veh->max_distance || len > veh->max_tasks)
        return 0;
    ev->cost = rich__route_cost(p, v, ev->travel, ev->distance);
    return 1;
}

int rich__simulate(const rich_problem *p, int v, const int *seq, int len, rich__eval *ev,
                   rich_step *steps, int *n_steps)
{
    const rich_vehicle *veh = &p->vehicles[v];
    memset(ev, 0, sizeof *ev);
    ev->begin = veh->tw.start;
    if (n_steps) *n_steps = 0;
    if (len == 0) return ev->feasible = 1;
    walk w = {veh->tw.start, veh->start_loc, {0}};
    for (int k = 0; k < len; k++)
        for (int d = 0; d < p->n_dims; d++)
            w.load[d] += p->tasks[seq[k]].start_load[d];
    if (!load_fits(p, w.load, veh->capacity)) return 0;
    int nb = 0, ns = 0;
    for (int k = 0; k < len; k++) {
        const rich_task *tk = &p->tasks[seq[k]];
        if (!place_breaks(p, v, &w, &nb, seq[k], steps, &ns)) return 0;
        int64_t begin = 0, done = task_done(p, v, &w, seq[k], &begin);
        if (done < 0) return 0;
        int64_t arrival = w.t + rich_duration(p, v, w.loc, tk->loc);
        if (steps) steps[ns] = (rich_step){seq[k], arrival, begin - arrival};
        ns++;
        ev->travel += rich_duration(p, v, w.loc, tk->loc);
        ev->distance += rich_distance(p, v, w.loc, tk->loc);
        w.t = done;
        w.loc = tk->loc;
        for (int d = 0; d < p->n_dims; d++)
            w.load[d] += tk->delta[d];
        if (!load_fits(p, w.load, veh->capacity)) return 0;
    }
    if (!place_breaks(p, v, &w, &nb, -1, steps, &ns) || nb < veh->n_breaks) return 0;
    if (n_steps) *n_steps = ns;
    return ev->feasible = finish(p, v, &w, len, ev);
}

void rich__profile_free(rich__profile *pf)
{
    free(pf->dep);
    free(pf->lat);
    free(pf->pm);
    free(pf->sm);
    memset(pf, 0, sizeof *pf);
}

static int profile_reserve(rich__profile *pf, int len)
{
    if (len + 1 <= pf->cap) return OP_OK;
    int cap = (len + 1) * 2;
    int64_t *dep = realloc(pf->dep, (size_t)cap * sizeof *dep);
    if (dep) pf->dep = dep;
    int64_t *lat = realloc(pf->lat, (size_t)cap * sizeof *lat);
    if (lat) pf->lat = lat;
    int64_t *pm = realloc(pf->pm, (size_t)cap * RICH_MAX_DIMS * sizeof *pm);
    if (pm) pf->pm = pm;
    int64_t *sm = realloc(pf->sm, (size_t)cap * RICH_MAX_DIMS * sizeof *sm);
    if (sm) pf->sm = sm;
    if (!dep || !lat || !pm || !sm) return OP_ENOMEM;
    pf->cap = cap;
    return OP_OK;
}

/* The latest begin at or before limit inside one of the windows, or a very early time. */
static int64_t latest_in(const rich_tw *tw, int n_tw, int64_t limit)
{
    for (int w = n_tw - 1; w >= 0; w--)
        if (tw[w].start <= limit) return tw[w].end < limit ? tw[w].end : limit;
    return -RICH_MAX_TIME * 4;
}

/* Loads before each position (pm), then prefix and suffix maxima in place. */
static void profile_loads(const rich_problem *p, const int *seq, int len, rich__profile *pf)
{
    int64_t *before = pf->pm, load[RICH_MAX_DIMS] = {0};
    for (int k = 0; k < len; k++)
        for (int d = 0; d < p->n_dims; d++)
            load[d] += p->tasks[seq[k]].start_load[d];
    for (int k = 0; k <= len; k++) {
        for (int d = 0; d < p->n_dims; d++) {
            before[k * RICH_MAX_DIMS + d] = load[d];
            if (k < len) load[d] += p->tasks[seq[k]].delta[d];
        }
    }
    for (int d = 0; d < p->n_dims; d++) {
        pf->sm[len * RICH_MAX_DIMS + d] = before[len * RICH_MAX_DIMS + d];
        for (int k = len - 1; k >= 0; k--) {
            int64_t a = before[k * RICH_MAX_DIMS + d], b = pf->sm[(k + 1) * RICH_MAX_DIMS + d];
            pf->sm[k * RICH_MAX_DIMS + d] = a > b ? a : b;
        }
        for (int k = 1; k <= len; k++) {
            int64_t a = before[k * RICH_MAX_DIMS + d], b = before[(k - 1) * RICH_MAX_DIMS + d];
            before[k * RICH_MAX_DIMS + d] = a > b ? a : b;
        }
    }
}

int rich__profile_build(const rich_problem *p, int v, const int *seq, int len, rich__profile *pf)
{
    const rich_vehicle *veh = &p->vehicles[v];
    if (profile_reserve(pf, len) != OP_OK) return OP_ENOMEM;
    pf->len = len;
    int64_t t = veh->tw.start;
    int loc = veh->start_loc;
    pf->dep[0] = t;
    for (int k = 0; k < len; k++) {
        const rich_task *tk = &p->tasks[seq[k]];
        int64_t arrival = t + rich_duration(p, v, loc, tk->loc);
        int64_t begin = earliest_in(tk->tw, tk->n_tw, arrival);
        t = (begin < 0 ? arrival : begin) + (loc != tk->loc ? tk->setup : 0) + tk->service;
        loc = tk->loc;
        pf->dep[k + 1] = t;
    }
    pf->lat[len] = veh->tw.end;
    for (int k = len - 1; k >= 0; k--) {
        const rich_task *tk = &p->tasks[seq[k]];
        int next = k + 1 < len ? p->tasks[seq[k + 1]].loc : veh->end_loc;
        int64_t limit = pf->lat[k + 1] - rich_duration(p, v, tk->loc, next) - tk->service;
        pf->lat[k] = latest_in(tk->tw, tk->n_tw, limit);
    }
    profile_loads(p, seq, len, pf);
    return OP_OK;
}

int rich__may_insert(const rich_problem *p, int v, const int *seq, const rich__profile *pf, int i,
                     int t, int check_load)
{
    const rich_vehicle *veh = &p->vehicles[v];
    const rich_task *tk = &p->tasks[t];
    int prev = i > 0 ? p->tasks[seq[i - 1]].loc : veh->start_loc;
    int next = i < pf->len ? p->tasks[seq[i]].loc : veh->end_loc;
    int64_t begin = earliest_in(tk->tw, tk->n_tw, pf->dep[i] + rich_duration(p, v, prev, tk->loc));
    if (begin < 0) return 0;
    int64_t done = begin + (prev != tk->loc ? tk->setup : 0) + tk->service;
    if (done + rich_duration(p, v, tk->loc, next) > pf->lat[i]) return 0;
    for (int d = 0; check_load && d < p->n_dims; d++) {
        if (pf->pm[i * RICH_MAX_DIMS + d] + tk->start_load[d] > veh->capacity[d]) return 0;
        if (pf->sm[i * RICH_MAX_DIMS + d] + tk->start_load[d] + tk->delta[d] > veh->capacity[d])
            return 0;
    }
    return 1;
}
