/*
 * The rich search: a first plan by regret insertion, then ruin and recreate
 * in the manner of SISR (Christiaens and Vanden Berghe 2020) under
 * simulated annealing, written for this code base.
 *
 * A state is one sequence of tasks per vehicle (breaks are placed by the
 * evaluator) and, per request, the vehicle serving it or -1. Every state is
 * feasible: a request that fits nowhere stays unassigned. Insertion prices
 * each position in O(1) from travel and distance alone (they do not depend
 * on times), sorts the positions by that price and runs the full forward
 * evaluation only in that order until one is feasible: the first feasible
 * is the cheapest, and most positions are never simulated.
 */
#include "route/rich_int.h"

#include "base/err.h"
#include "base/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEIGHBOURS 40
#define AVG_REMOVED 10 /* SISR's c-bar */
#define MAX_STRING 10  /* SISR's L-max */
#define BLINK 0.01
#define MAX_CANDIDATES 65536
#define NONE 1e300

/* A route of the search; version changes with every change, so copies skip equal routes. */
typedef struct rroute {
    int *seq;
    int len, cap;
    rich__eval ev;
    long version;
    int profile_valid;
    rich__profile profile;
} rroute;

typedef struct rstate {
    rroute *routes;
    int *where; /* per request: vehicle or -1 */
    double cost;
    double unassigned_priority;
    int unassigned;
} rstate;

typedef struct cand {
    double delta;
    int i, j; /* positions of the first and second task in the new sequence */
} cand;

typedef struct search {
    const rich_problem *p;
    const rich_params *params;
    uint64_t rng;
    int *neighbours; /* NEIGHBOURS per task */
    int n_neighbours;
    int *buf; /* a sequence being tried */
    cand *cands;
    int *pool;  /* requests to insert */
    int *mark;  /* per vehicle, per iteration */
    double big; /* the price of leaving one request out */
    double start_s;
    long versions;
    char *ok_first, *ok_second; /* per position: the cheap test passed */
    rstate cur, cand_state, best;
} search;

static double rnd(search *s)
{
    return (double)(util_splitmix64(&s->rng) >> 11) / 9007199254740992.0;
}

static int rnd_int(search *s, int n)
{
    return (int)(rnd(s) * n) % (n > 0 ? n : 1);
}

static double elapsed(const search *s)
{
    return s->params->now_s ? s->params->now_s() - s->start_s : 0;
}

/* The price of request r left out: priority first, then the count of tasks. */
static double penalty(const search *s, int r)
{
    const rich_task *t = &s->p->tasks[s->p->requests[r].first];
    return s->big * (1.0 + (double)t->priority * (s->p->n_requests + 1));
}

/* The annealing's scalar: cost plus the price of every request left out. */
static double objective(const rstate *st)
{
    return st->cost + st->unassigned_priority;
}

/* Lexicographic: more served priority, then more served requests, then lower cost. */
static int better(const search *s, const rstate *a, const rstate *b)
{
    (void)s;
    if (fabs(a->unassigned_priority - b->unassigned_priority) > 1e-6)
        return a->unassigned_priority < b->unassigned_priority;
    if (a->unassigned != b->unassigned) return a->unassigned < b->unassigned;
    return a->cost < b->cost - 1e-9;
}

static int state_alloc(rstate *st, const rich_problem *p)
{
    memset(st, 0, sizeof *st);
    st->routes = calloc((size_t)p->n_vehicles, sizeof *st->routes);
    st->where = malloc((size_t)p->n_requests * sizeof *st->where);
    if (!st->routes || !st->where) return OP_ENOMEM;
    for (int v = 0; v < p->n_vehicles; v++) {
        st->routes[v].cap = 8;
        st->routes[v].seq = malloc(8 * sizeof(int));
        if (!st->routes[v].seq) return OP_ENOMEM;
        st->routes[v].ev.feasible = 1;
    }
    for (int r = 0; r < p->n_requests; r++)
        st->where[r] = -1;
    return OP_OK;
}

static void state_free(rstate *st, const rich_problem *p)
{
    if (st->routes)
        for (int v = 0; v < p->n_vehicles; v++) {
            free(st->routes[v].seq);
            rich__profile_free(&st->routes[v].profile);
        }
    free(st->routes);
    free(st->where);
    memset(st, 0, sizeof *st);
}

static int route_reserve(rroute *rt, int len)
{
    if (len <= rt->cap) return OP_OK;
    int cap = rt->cap * 2 > len ? rt->cap * 2 : len;
    int *seq = realloc(rt->seq, (size_t)cap * sizeof *seq);
    if (!seq) return OP_ENOMEM;
    rt->seq = seq;
    rt->cap = cap;
    return OP_OK;
}

/* dst = src (same problem). OP_OK or OP_ENOMEM. */
static int state_copy(rstate *dst, const rstate *src, const rich_problem *p)
{
    for (int v = 0; v < p->n_vehicles; v++) {
        rroute *d = &dst->routes[v];
        const rroute *sr = &src->routes[v];
        if (d->version == sr->version) continue; /* the same contents */
        if (route_reserve(d, sr->len) != OP_OK) return OP_ENOMEM;
        memcpy(d->seq, sr->seq, (size_t)sr->len * sizeof(int));
        d->len = sr->len;
        d->ev = sr->ev;
        d->version = sr->version;
        d->profile_valid = 0;
    }
    memcpy(dst->where, src->where, (size_t)p->n_requests * sizeof *dst->where);
    dst->cost = src->cost;
    dst->unassigned_priority = src->unassigned_priority;
    dst->unassigned = src->unassigned;
    return OP_OK;
}

/* The objective's parts from the routes and assignments. */
static void state_total(const search *s, rstate *st)
{
    st->cost = 0;
    st->unassigned = 0;
    st->unassigned_priority = 0;
    for (int v = 0; v < s->p->n_vehicles; v++)
        st->cost += st->routes[v].ev.cost;
    for (int r = 0; r < s->p->n_requests; r++)
        if (st->where[r] < 0) {
            st->unassigned++;
            st->unassigned_priority += penalty(s, r);
        }
}

/* Travel and distance added by putting task t between locations a and b (a route of vehicle v). */
static double arc_delta(const search *s, int v, int a, int t, int b)
{
    const rich_problem *p = s->p;
    const rich_vehicle *veh = &p->vehicles[v];
    int l = p->tasks[t].loc;
    double travel =
        (double)(rich_duration(p, v, a, l) + rich_duration(p, v, l, b) - rich_duration(p, v, a, b));
    double dist =
        (double)(rich_distance(p, v, a, l) + rich_distance(p, v, l, b) - rich_distance(p, v, a, b));
    return veh->per_hour * travel / 3600.0 + veh->per_km * dist / 1000.0;
}

/* The location before position i of a route (the start, which may be absent). */
static int loc_before(const search *s, const rroute *rt, int v, int i)
{
    return i > 0 ? s->p->tasks[rt->seq[i - 1]].loc : s->p->vehicles[v].start_loc;
}

static int loc_at(const search *s, const rroute *rt, int v, int i)
{
    return i < rt->len ? s->p->tasks[rt->seq[i]].loc : s->p->vehicles[v].end_loc;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->delta != y->delta) return x->delta < y->delta ? -1 : 1;
    if (x->i != y->i) return x->i - y->i;
    return x->j - y->j;
}

/*
 * Candidate positions of request r in route v with their O(1) prices, those
 * the cheap test (rich__may_insert) rules out left out. A job gets i (j =
 * -1); a shipment gets its pickup at i and delivery at j > i (positions in
 * the new sequence). Returns the count, sorted by price.
 */
static int list_candidates(search *s, rroute *rt, int v, int r)
{
    const rich_request *rq = &s->p->requests[r];
    if (!rt->profile_valid) {
        if (rich__profile_build(s->p, v, rt->seq, rt->len, &rt->profile) != OP_OK) return 0;
        rt->profile_valid = 1;
    }
    double fixed = rt->len ? 0 : s->p->vehicles[v].fixed;
    for (int i = 0; i <= rt->len; i++) {
        s->ok_first[i] =
            (char)rich__may_insert(s->p, v, rt->seq, &rt->profile, i, rq->first, rq->second < 0);
        s->ok_second[i] =
            rq->second >= 0 && rich__may_insert(s->p, v, rt->seq, &rt->profile, i, rq->second, 0);
    }
    int n = 0;
    for (int i = 0; i <= rt->len && n < MAX_CANDIDATES; i++) {
        if (!s->ok_first[i]) continue;
        int a = loc_before(s, rt, v, i), b = loc_at(s, rt, v, i);
        double dp = arc_delta(s, v, a, rq->first, b);
        if (rq->second < 0) {
            s->cands[n++] = (cand){fixed + dp, i, -1};
            continue;
        }
        int pl = s->p->tasks[rq->first].loc;
        /* the delivery right after the pickup: P between a and b, then D between P and b */
        if (s->ok_second[i])
            s->cands[n++] = (cand){fixed + dp + arc_delta(s, v, pl, rq->second, b), i, i + 1};
        for (int k = i + 1; k <= rt->len && n < MAX_CANDIDATES; k++) {
            if (!s->ok_second[k]) continue;
            double dd = arc_delta(s, v, loc_before(s, rt, v, k), rq->second, loc_at(s, rt, v, k));
            s->cands[n++] = (cand){fixed + dp + dd, i, k + 1};
        }
    }
    qsort(s->cands, (size_t)n, sizeof *s->cands, cmp_cand);
    return n;
}

/* s->buf = route v with request r's tasks at c's positions; returns the new length. */
static int build_seq(search *s, const rroute *rt, int r, const cand *c)
{
    const rich_request *rq = &s->p->requests[r];
    int n = 0, from = 0, total = rt->len + (rq->second >= 0 ? 2 : 1);
    for (int pos = 0; pos < total; pos++) {
        if (pos == c->i)
            s->buf[n++] = rq->first;
        else if (rq->second >= 0 && pos == c->j)
            s->buf[n++] = rq->second;
        else if (from < rt->len)
            s->buf[n++] = rt->seq[from++];
    }
    return n;
}

/* Whether vehicle v can take request r at all (skills, task count). */
static int vehicle_fits(const search *s, const rroute *rt, int v, int r)
{
    const rich_request *rq = &s->p->requests[r];
    int add = rq->second >= 0 ? 2 : 1;
    if (rt->len + add > s->p->vehicles[v].max_tasks) return 0;
    if (!rich_skills_ok(s->p, v, rq->first)) return 0;
    return rq->second < 0 || rich_skills_ok(s->p, v, rq->second);
}

/*
 * The cheapest feasible insertion of r into route v (each position skipped
 * with probability blink): its cost delta, or NONE; *best the positions and
 * *ev the route's new evaluation.
 */
static double best_in_route(search *s, rroute *rt, int v, int r, double blink, cand *best,
                            rich__eval *ev)
{
    if (!vehicle_fits(s, rt, v, r)) return NONE;
    int n = list_candidates(s, rt, v, r);
    for (int k = 0; k < n; k++) {
        if (blink > 0 && rnd(s) < blink) continue;
        int len = build_seq(s, rt, r, &s->cands[k]);
        if (rich__simulate(s->p, v, s->buf, len, ev, NULL, NULL)) {
            *best = s->cands[k];
            return ev->cost - rt->ev.cost;
        }
    }
    return NONE;
}

/* Marks route rt changed: a new version, its profile stale. */
static void touched(search *s, rroute *rt)
{
    rt->version = ++s->versions;
    rt->profile_valid = 0;
}

/* Puts request r into route v at c (ev: the new evaluation). */
static int apply_insert(search *s, rstate *st, int v, int r, const cand *c, const rich__eval *ev)
{
    rroute *rt = &st->routes[v];
    int len = build_seq(s, rt, r, c);
    if (route_reserve(rt, len) != OP_OK) return OP_ENOMEM;
    memcpy(rt->seq, s->buf, (size_t)len * sizeof(int));
    rt->len = len;
    touched(s, rt);
    st->cost += ev->cost - rt->ev.cost;
    rt->ev = *ev;
    st->where[r] = v;
    st->unassigned--;
    st->unassigned_priority -= penalty(s, r);
    return OP_OK;
}

/* Greedy: each request of the pool, in order, at its cheapest place over all vehicles. */
static int insert_greedy(search *s, rstate *st, int n_pool, double blink)
{
    for (int q = 0; q < n_pool; q++) {
        int r = s->pool[q], best_v = -1;
        double best_delta = NONE;
        cand best_c = {0}, c;
        rich__eval best_ev = {0}, ev;
        for (int v = 0; v < s->p->n_vehicles; v++) {
            double d = best_in_route(s, &st->routes[v], v, r, blink, &c, &ev);
            if (d < best_delta) {
                best_delta = d;
                best_v = v;
                best_c = c;
                best_ev = ev;
            }
        }
        if (best_v >= 0 && apply_insert(s, st, best_v, r, &best_c, &best_ev) != OP_OK)
            return OP_ENOMEM;
    }
    return OP_OK;
}

/*
 * Regret-2: repeatedly insert the request whose best place is most ahead of
 * its second best (higher priority first), until none fits. Cached per
 * request and vehicle; only the column of the changed route is recomputed.
 */
static int insert_regret(search *s, rstate *st, int n_pool, double blink)
{
    int nv = s->p->n_vehicles, rc = OP_OK;
    double *delta = malloc((size_t)n_pool * (size_t)nv * sizeof *delta);
    if (!delta) return OP_ENOMEM;
    cand c;
    rich__eval ev;
    for (int q = 0; q < n_pool; q++)
        for (int v = 0; v < nv; v++)
            delta[(size_t)q * nv + v] =
                best_in_route(s, &st->routes[v], v, s->pool[q], blink, &c, &ev);
    for (int left = n_pool; left > 0;) {
        int pick = -1, pick_v = -1;
        double pick_regret = -1, pick_prio = -1;
        for (int q = 0; q < left; q++) {
            double b1 = NONE, b2 = NONE;
            int v1 = -1;
            for (int v = 0; v < nv; v++) {
                double d = delta[(size_t)q * nv + v];
                if (d < b1) {
                    b2 = b1;
                    b1 = d;
                    v1 = v;
                } else if (d < b2) {
                    b2 = d;
                }
            }
            if (v1 < 0) continue;
            double regret = b2 >= NONE ? 1e200 : b2 - b1;
            double prio = s->p->tasks[s->p->requests[s->pool[q]].first].priority;
            if (prio > pick_prio || (prio == pick_prio && regret > pick_regret)) {
                pick = q, pick_v = v1, pick_regret = regret, pick_prio = prio;
            }
        }
        if (pick < 0) break;
        int r = s->pool[pick];
        if (best_in_route(s, &st->routes[pick_v], pick_v, r, 0, &c, &ev) < NONE &&
            (rc = apply_insert(s, st, pick_v, r, &c, &ev)) != OP_OK)
            break;
        left--; /* move the last row into the picked one */
        s->pool[pick] = s->pool[left];
        memcpy(&delta[(size_t)pick * nv], &delta[(size_t)left * nv], (size_t)nv * sizeof *delta);
        for (int q = 0; q < left; q++)
            delta[(size_t)q * nv + pick_v] =
                best_in_route(s, &st->routes[pick_v], pick_v, s->pool[q], blink, &c, &ev);
    }
    free(delta);
    return rc;
}

/* Takes request r out of its route (its vehicle re-evaluated later by the caller). */
static void remove_request(search *s, rstate *st, int r)
{
    int v = st->where[r];
    if (v < 0) return;
    rroute *rt = &st->routes[v];
    const rich_request *rq = &s->p->requests[r];
    int n = 0;
    for (int k = 0; k < rt->len; k++)
        if (rt->seq[k] != rq->first && rt->seq[k] != rq->second) rt->seq[n++] = rt->seq[k];
    rt->len = n;
    touched(s, rt);
    st->where[r] = -1;
    s->mark[v] = 1;
}

/*
 * Re-evaluates the routes ruined (mark). Taking tasks out can make a route
 * infeasible when travel times break the triangle inequality or a break
 * no longer fits: such a route is emptied, its requests go to the pool.
 */
static int settle_ruined(search *s, rstate *st, int *n_pool)
{
    for (int v = 0; v < s->p->n_vehicles; v++) {
        if (!s->mark[v]) continue;
        s->mark[v] = 0;
        rroute *rt = &st->routes[v];
        if (rich__simulate(s->p, v, rt->seq, rt->len, &rt->ev, NULL, NULL)) continue;
        for (int k = 0; k < rt->len; k++) {
            int r = s->p->tasks[rt->seq[k]].request;
            if (st->where[r] == v) {
                st->where[r] = -1;
                s->pool[(*n_pool)++] = r;
            }
        }
        rt->len = 0;
        touched(s, rt);
        rich__simulate(s->p, v, rt->seq, 0, &rt->ev, NULL, NULL);
    }
    state_total(s, st);
    return OP_OK;
}

/* Adds request r to the pool unless it is there (pool order is the caller's). */
static void pool_add(search *s, int *n_pool, int r)
{
    for (int q = 0; q < *n_pool; q++)
        if (s->pool[q] == r) return;
    s->pool[(*n_pool)++] = r;
}

static void ruin_take(search *s, rstate *st, int r, int *n_pool)
{
    if (st->where[r] < 0) return;
    remove_request(s, st, r);
    pool_add(s, n_pool, r);
}

static int random_assigned_task(search *s, const rstate *st)
{
    for (int tries = 0; tries < 64; tries++) {
        int t = rnd_int(s, s->p->n_tasks);
        if (st->where[s->p->tasks[t].request] >= 0) return t;
    }
    for (int t = 0; t < s->p->n_tasks; t++)
        if (st->where[s->p->tasks[t].request] >= 0) return t;
    return -1;
}

/*
 * SISR's string removal: around a random seed task, strings of consecutive
 * tasks from up to ks routes met in the order of the seed's neighbours.
 */
static void ruin_strings(search *s, rstate *st, int *n_pool)
{
    int seed = random_assigned_task(s, st);
    if (seed < 0) return;
    int used = 0, tasks = 0;
    for (int v = 0; v < s->p->n_vehicles; v++)
        if (st->routes[v].len) used++, tasks += st->routes[v].len;
    double ls_max = fmin(MAX_STRING, (double)tasks / (used ? used : 1));
    int ks = 1 + rnd_int(s, (int)fmax(1, 4.0 * AVG_REMOVED / (1 + ls_max) - 1));
    int *done = calloc((size_t)s->p->n_vehicles, sizeof *done);
    if (!done) return;
    for (int k = -1; k < s->n_neighbours && ks > 0; k++) {
        int t = k < 0 ? seed : s->neighbours[(size_t)seed * s->n_neighbours + k];
        int v = st->where[s->p->tasks[t].request];
        if (v < 0 || done[v]) continue;
        rroute *rt = &st->routes[v];
        int at = 0;
        while (at < rt->len && rt->seq[at] != t)
            at++;
        int l = 1 + rnd_int(s, (int)fmin(ls_max, rt->len));
        int from = at - rnd_int(s, l);
        if (from < 0) from = 0;
        if (from + l > rt->len) from = rt->len - l;
        int reqs[MAX_STRING + 1], nr = 0;
        for (int q = from; q < from + l && nr <= MAX_STRING; q++)
            reqs[nr++] = s->p->tasks[rt->seq[q]].request;
        for (int q = 0; q < nr; q++)
            ruin_take(s, st, reqs[q], n_pool);
        done[v] = 1;
        ks--;
    }
    free(done);
}

/* Related removal: a seed and the assigned requests nearest to it. */
static void ruin_related(search *s, rstate *st, int *n_pool)
{
    int seed = random_assigned_task(s, st);
    if (seed < 0) return;
    int want = 1 + rnd_int(s, 2 * AVG_REMOVED);
    ruin_take(s, st, s->p->tasks[seed].request, n_pool);
    for (int k = 0; k < s->n_neighbours && *n_pool < want; k++)
        ruin_take(s, st, s->p->tasks[s->neighbours[(size_t)seed * s->n_neighbours + k]].request,
                  n_pool);
}

static void ruin_random(search *s, rstate *st, int *n_pool)
{
    int want = 1 + rnd_int(s, 2 * AVG_REMOVED);
    for (int k = 0; k < 4 * want && *n_pool < want; k++) {
        int t = random_assigned_task(s, st);
        if (t < 0) return;
        ruin_take(s, st, s->p->tasks[t].request, n_pool);
    }
}

/* The size of request r: the sum of its amounts (for SISR's "demand" order). */
static double request_size(const search *s, int r)
{
    const rich_task *t = &s->p->tasks[s->p->requests[r].first];
    double sum = 0;
    for (int d = 0; d < s->p->n_dims; d++)
        sum += (double)(t->amount[d][0] + t->amount[d][1]);
    return sum;
}

static const search *sort_ctx; /* qsort has no context argument; the search is single-threaded */

/* Higher priority first, then larger first, then by index (a total order: reproducible). */
static int cmp_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    int px = sort_ctx->p->tasks[sort_ctx->p->requests[x].first].priority;
    int py = sort_ctx->p->tasks[sort_ctx->p->requests[y].first].priority;
    if (px != py) return py - px;
    double sx = request_size(sort_ctx, x), sy = request_size(sort_ctx, y);
    return sx > sy ? -1 : sx < sy ? 1 : x - y;
}

/* SISR's orders for recreate: random, by size (larger first), priority always first. */
static void order_pool(search *s, int n_pool)
{
    for (int q = n_pool - 1; q > 0; q--) {
        int k = rnd_int(s, q + 1), tmp = s->pool[q];
        s->pool[q] = s->pool[k];
        s->pool[k] = tmp;
    }
    if (rnd(s) < 0.5) {
        sort_ctx = s;
        qsort(s->pool, (size_t)n_pool, sizeof *s->pool, cmp_desc);
    }
}

/* One ruin and recreate of cand_state (a copy of the current state). */
static int ruin_recreate(search *s, rstate *st)
{
    int n_pool = 0;
    double op = rnd(s);
    if (op < 0.6)
        ruin_strings(s, st, &n_pool);
    else if (op < 0.8)
        ruin_related(s, st, &n_pool);
    else
        ruin_random(s, st, &n_pool);
    settle_ruined(s, st, &n_pool);
    /* the requests left out before get a chance too (a few, when there are many) */
    int extra = 0;
    for (int r = 0; r < s->p->n_requests && extra < 2 * AVG_REMOVED; r++)
        if (st->where[r] < 0) {
            int before = n_pool;
            pool_add(s, &n_pool, r);
            extra += n_pool > before;
        }
    order_pool(s, n_pool);
    if (n_pool <= 40 && rnd(s) < 0.3) return insert_regret(s, st, n_pool, BLINK);
    return insert_greedy(s, st, n_pool, BLINK);
}

/* Per task the NEIGHBOURS nearest others by travel time both ways (the first vehicle's profile). */
static int build_neighbours(search *s)
{
    const rich_problem *p = s->p;
    int k = p->n_tasks - 1 < NEIGHBOURS ? p->n_tasks - 1 : NEIGHBOURS;
    s->n_neighbours = k;
    if (k <= 0) return OP_OK;
    s->neighbours = malloc((size_t)p->n_tasks * (size_t)k * sizeof *s->neighbours);
    double *key = malloc((size_t)k * sizeof *key);
    if (!s->neighbours || !key) {
        free(key);
        return OP_ENOMEM;
    }
    for (int a = 0; a < p->n_tasks; a++) {
        int *nb = &s->neighbours[(size_t)a * k], n = 0;
        for (int b = 0; b < p->n_tasks; b++) {
            if (b == a) continue;
            double d = (double)(rich_duration(p, 0, p->tasks[a].loc, p->tasks[b].loc) +
                                rich_duration(p, 0, p->tasks[b].loc, p->tasks[a].loc));
            if (n == k && d >= key[k - 1]) continue;
            int at = n < k ? n++ : k - 1; /* insertion into the sorted list */
            while (at > 0 && key[at - 1] > d) {
                key[at] = key[at - 1];
                nb[at] = nb[at - 1];
                at--;
            }
            key[at] = d;
            nb[at] = b;
        }
    }
    free(key);
    return OP_OK;
}

/* The price of leaving a request out: ten times the dearest route to one location and back. */
static double price_of_left_out(const rich_problem *p)
{
    int64_t max_d = 1, max_m = 1;
    size_t cells = (size_t)p->n_locations * (size_t)p->n_locations;
    for (int q = 0; q < p->n_profiles; q++)
        for (size_t i = 0; i < cells; i++) {
            if (p->durations[q][i] > max_d) max_d = p->durations[q][i];
            if (p->distances[q] && p->distances[q][i] > max_m) max_m = p->distances[q][i];
        }
    double worst = 1;
    for (int v = 0; v < p->n_vehicles; v++) {
        const rich_vehicle *veh = &p->vehicles[v];
        double c = veh->fixed + veh->per_hour * 2.0 * (double)max_d / 3600.0 +
                   veh->per_km * 2.0 * (double)max_m / 1000.0;
        if (c > worst) worst = c;
    }
    return 10 * worst + 1;
}

/* The plan of a state: every route's steps with their times, and the tasks left out. */
static int state_to_plan(const search *s, const rstate *st, rich_plan *plan)
{
    const rich_problem *p = s->p;
    int n_steps = 0, n_out = 0;
    for (int v = 0; v < p->n_vehicles; v++)
        n_steps += st->routes[v].len + (st->routes[v].len ? p->vehicles[v].n_breaks : 0);
    for (int r = 0; r < p->n_requests; r++)
        if (st->where[r] < 0) n_out += p->requests[r].second >= 0 ? 2 : 1;
    if (rich_plan_alloc(plan, p->n_vehicles, n_steps, n_out) != OP_OK) return OP_ENOMEM;
    int at = 0;
    for (int v = 0; v < p->n_vehicles; v++) {
        const rroute *rt = &st->routes[v];
        rich__eval ev;
        int ns = 0;
        plan->start[v] = at;
        rich__simulate(p, v, rt->seq, rt->len, &ev, plan->steps + at, &ns);
        plan->begin[v] = ev.begin;
        at += ns;
    }
    plan->start[p->n_vehicles] = at;
    plan->n_steps = at;
    for (int r = 0; r < p->n_requests; r++)
        if (st->where[r] < 0) {
            plan->unassigned[plan->n_unassigned++] = p->requests[r].first;
            if (p->requests[r].second >= 0)
                plan->unassigned[plan->n_unassigned++] = p->requests[r].second;
        }
    return OP_OK;
}

static void report(search *s, long iterations)
{
    if (!s->params->on_improve) return;
    rich_plan plan;
    if (state_to_plan(s, &s->best, &plan) != OP_OK) return;
    rich_progress pr = {elapsed(s), iterations, s->best.cost, plan.n_unassigned, &plan};
    s->params->on_improve(s->params->ctx, &pr);
    rich_plan_clear(&plan);
}

/* The first plan: regret insertion of every request (greedy, larger first, past 300). */
/*
 * The routes of a checkpoint into the current state (breaks dropped: the
 * evaluator places them). A route the evaluator finds infeasible (its
 * breaks were placed otherwise) is left empty and its requests inserted
 * again.
 */
static int load_start(search *s, const rich_plan *start)
{
    const rich_problem *p = s->p;
    for (int v = 0; v < p->n_vehicles; v++) {
        rroute *rt = &s->cur.routes[v];
        int len = 0;
        if (route_reserve(rt, start->start[v + 1] - start->start[v]) != OP_OK) return OP_ENOMEM;
        for (int k = start->start[v]; k < start->start[v + 1]; k++)
            if (!RICH_IS_BREAK(start->steps[k].what)) rt->seq[len++] = start->steps[k].what;
        rt->len = len;
        touched(s, rt);
        if (!rich__simulate(p, v, rt->seq, len, &rt->ev, NULL, NULL)) {
            rt->len = 0;
            rich__simulate(p, v, rt->seq, 0, &rt->ev, NULL, NULL);
            continue;
        }
        for (int k = 0; k < len; k++)
            s->cur.where[p->tasks[rt->seq[k]].request] = v;
    }
    return OP_OK;
}

static int construct(search *s)
{
    int n_pool = 0;
    if (s->params->start && load_start(s, s->params->start) != OP_OK) return OP_ENOMEM;
    for (int r = 0; r < s->p->n_requests; r++)
        if (s->cur.where[r] < 0) s->pool[n_pool++] = r;
    state_total(s, &s->cur);
    sort_ctx = s;
    qsort(s->pool, (size_t)n_pool, sizeof *s->pool, cmp_desc);
    int rc = n_pool <= 300 && (size_t)n_pool * (size_t)s->p->n_vehicles <= 3000000
                 ? insert_regret(s, &s->cur, n_pool, 0)
                 : insert_greedy(s, &s->cur, n_pool, 0);
    if (rc == OP_OK) state_total(s, &s->cur);
    return rc;
}

static int search_init(search *s, const rich_problem *p, const rich_params *params)
{
    memset(s, 0, sizeof *s);
    s->p = p;
    s->params = params;
    s->rng = params->seed ^ 0x9e3779b97f4a7c15ULL;
    s->start_s = params->now_s ? params->now_s() : 0;
    s->big = price_of_left_out(p);
    s->buf = malloc(((size_t)p->n_tasks + 4) * sizeof *s->buf);
    s->cands = malloc(MAX_CANDIDATES * sizeof *s->cands);
    s->pool = malloc(((size_t)p->n_requests + 1) * sizeof *s->pool);
    s->mark = calloc((size_t)p->n_vehicles, sizeof *s->mark);
    s->ok_first = malloc((size_t)p->n_tasks + 2);
    s->ok_second = malloc((size_t)p->n_tasks + 2);
    if (!s->buf || !s->cands || !s->pool || !s->mark || !s->ok_first || !s->ok_second)
        return OP_ENOMEM;
    if (state_alloc(&s->cur, p) != OP_OK || state_alloc(&s->cand_state, p) != OP_OK ||
        state_alloc(&s->best, p) != OP_OK)
        return OP_ENOMEM;
    return build_neighbours(s);
}

static void search_free(search *s)
{
    state_free(&s->cur, s->p);
    state_free(&s->cand_state, s->p);
    state_free(&s->best, s->p);
    free(s->buf);
    free(s->cands);
    free(s->pool);
    free(s->mark);
    free(s->ok_first);
    free(s->ok_second);
    free(s->neighbours);
}

/* How far the run is, 0..1, from the iteration and time limits. */
static double progress(const search *s, long it)
{
    double f = 0;
    if (s->params->max_iterations) f = (double)it / (double)s->params->max_iterations;
    if (s->params->time_limit_s > 0) f = fmax(f, elapsed(s) / s->params->time_limit_s);
    return f > 1 ? 1 : f;
}

/*
 * Simulated annealing over ruin and recreate. The temperature falls
 * geometrically from three times the first plan's mean cost per task to a
 * thousandth of that (SISR's 100 to 1 on Solomon's scale is about ten times
 * the mean arc; runs here are short, so the search starts cooler and ends
 * colder: measured on Solomon R1, R2 and RC2 at 1 s and 3 s).
 */
static int anneal(search *s, rich_stats *stats)
{
    const rich_params *pr = s->params;
    int served = 0;
    for (int r = 0; r < s->p->n_requests; r++)
        served += s->cur.where[r] >= 0;
    double t0 = 3 * s->cur.cost / (served ? served : 1) + 1e-9, t1 = t0 / 1000;
    long it = 0;
    while (1) {
        if (pr->max_iterations && it >= pr->max_iterations) break;
        if (pr->time_limit_s > 0 && elapsed(s) >= pr->time_limit_s) break;
        if (pr->stop && *pr->stop) break;
        if (s->p->n_requests == 0) break;
        if (state_copy(&s->cand_state, &s->cur, s->p) != OP_OK) return OP_ENOMEM;
        if (ruin_recreate(s, &s->cand_state) != OP_OK) return OP_ENOMEM;
        it++;
        double temp = t0 * pow(t1 / t0, progress(s, it));
        double u = rnd(s);
        if (objective(&s->cand_state) < objective(&s->cur) - temp * log(u > 0 ? u : 1e-300)) {
            rstate tmp = s->cur;
            s->cur = s->cand_state;
            s->cand_state = tmp;
            if (better(s, &s->cur, &s->best)) {
                if (state_copy(&s->best, &s->cur, s->p) != OP_OK) return OP_ENOMEM;
                stats->best_found_s = elapsed(s);
                report(s, it);
            }
        }
    }
    stats->iterations = it;
    return OP_OK;
}

int rich_solve(const rich_problem *p, const rich_params *params, rich_plan *best, rich_stats *stats,
               char *err, size_t err_len)
{
    rich_stats local = {0};
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    memset(best, 0, sizeof *best);
    if (!params || (params->time_limit_s <= 0 && params->max_iterations <= 0) ||
        (params->time_limit_s > 0 && !params->now_s) || p->n_vehicles < 1) {
        snprintf(err, err_len, "rich: a time limit (with a clock) or an iteration limit is needed");
        return OP_EINVAL;
    }
    if (params->start) {
        char why[256];
        rich_plan copy = *params->start; /* rich_check fills in totals: not in the caller's */
        if (rich_check(p, &copy, why, sizeof why) != OP_OK) {
            snprintf(err, err_len, "rich: the plan to start from fails the check: %s", why);
            return OP_EINVAL;
        }
    }
    search s;
    int rc = search_init(&s, p, params);
    if (rc == OP_OK) rc = construct(&s);
    if (rc == OP_OK) rc = state_copy(&s.best, &s.cur, p);
    if (rc == OP_OK) {
        report(&s, 0);
        rc = anneal(&s, stats);
    }
    if (rc == OP_OK) rc = state_to_plan(&s, &s.best, best);
    stats->elapsed_s = elapsed(&s);
    search_free(&s);
    if (rc != OP_OK) {
        snprintf(err, err_len, "rich: out of memory");
        rich_plan_clear(best);
        return rc;
    }
    char why[256];
    if (rich_check(p, best, why, sizeof why) != OP_OK) {
        snprintf(err, err_len, "rich: the plan fails the check (a solver bug): %s", why);
        rich_plan_clear(best);
        return OP_EINVAL;
    }
    return OP_OK;
}
