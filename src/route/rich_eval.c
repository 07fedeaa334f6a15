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
