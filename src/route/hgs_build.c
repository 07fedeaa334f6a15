/*
 * hgs_build: plans made without the genetic search, so that there is an
 * answer from the first milliseconds and for problems no full plan fits.
 * A sequential insertion (in the manner of Solomon's I1: open a route with a
 * seed, insert the cheapest feasible stop until none fits, open the next)
 * that respects capacities, windows and shifts; the completion of a partial
 * plan into a full (penalised) individual for the population; the repair of
 * an infeasible individual by dropping the stops that break its routes and
 * reinserting what fits; and the export of a partial plan with the stops it
 * leaves out. All work on the local search's route arrays (h->rn, h->rlen).
 */
#include "base/err.h"
#include "route/hgs_int.h"

#include <stdlib.h>
#include <string.h>

/* Route k with c inserted after position p, closed at the depot. */
static seg with_insert(const hgs *h, int k, int p, int c)
{
    seg a = merge(h, PRE(h, k, p), node_seg(h, c));
    if (p < h->rlen[k]) a = merge(h, a, SUF(h, k, p + 1));
    return merge(h, a, depot_seg(h, k));
}

static int seg_feasible(const hgs *h, seg s, int k)
{
    return s.load <= capacity(h, k) && s.warp < 1e-9;
}

static double route_dist(const hgs *h, int k)
{
    return merge(h, PRE(h, k, h->rlen[k]), depot_seg(h, k)).dist;
}

static void insert_at(hgs *h, int k, int p, int c)
{
    int m = h->rlen[k];
    for (int q = m; q > p; q--)
        RN(h, k, q + 1) = RN(h, k, q);
    RN(h, k, p + 1) = c;
    h->rlen[k] = m + 1;
    hgs__route_update(h, k);
}

/*
 * The cheapest place for c in route k that keeps it feasible (feasible = 1)
 * or, when feasible = 0, the place of least penalised cost. Returns the
 * added cost (BIG when none) and the position in *where.
 */
static double best_place(const hgs *h, int k, int c, int feasible, int *where)
{
    double before = route_dist(h, k), best = BIG;
    for (int p = 0; p <= h->rlen[k]; p++) {
        seg s = with_insert(h, k, p, c);
        double added;
        if (feasible) {
            if (!seg_feasible(h, s, k)) continue;
            added = s.dist - before;
        } else {
            added = penalized(h, s.dist, s.load, s.warp, k, h->pen_load, h->pen_warp) - h->rcost[k];
        }
        if (added < best) {
            best = added;
            *where = p;
        }
    }
    return best;
}

/* The seed of a new route: the stop due first (with windows) or farthest from the depot. */
static int pick_seed(const hgs *h, int k, const int *left, int n_left)
{
    int seed = -1;
    double seed_key = BIG;
    for (int x = 0; x < n_left; x++) {
        int c = left[x], where;
        double key = h->has_tw ? h->due[c] : -dist(h, 0, c);
        if (key >= seed_key) continue;
        if (best_place(h, k, c, 1, &where) >= BIG) continue;
        seed = x;
        seed_key = key;
    }
    return seed;
}

/*
 * The next stop for route k: the cheapest feasible insertion among the
 * unserved neighbours of its stops (the granular lists) and, when none of
 * those fits, among all unserved stops. The first scan keeps the
 * construction near-linear on large instances; the second makes sure a
 * route is closed only when nothing fits. Returns an index into unserved,
 * or -1. at[c] is c's index in unserved (-1 once served); seen[c] == stamp
 * marks the stops looked at in this call.
 */
static int next_stop(hgs *h, int k, const int *unserved, int n_left, const int *at, int *seen,
                     int stamp)
{
    double best = BIG;
    int x = -1, w;
    for (int p = 1; p <= h->rlen[k]; p++) {
        const int *nb = h->neigh + (size_t)RN(h, k, p) * (size_t)h->granular;
        for (int g = 0; g < h->granular; g++) {
            int c = nb[g];
            if (at[c] < 0 || seen[c] == stamp) continue;
            seen[c] = stamp;
            double added = best_place(h, k, c, 1, &w);
            if (added < best) {
                best = added;
                x = at[c];
            }
        }
    }
    for (int y = 0; x < 0 && y < n_left; y++) {
        double added = best_place(h, k, unserved[y], 1, &w);
        if (added < best) {
            best = added;
            x = y;
        }
    }
    return x;
}

/* A candidate merge of the savings construction: the routes ending at a and b, joined a-b. */
typedef struct saving {
    double value;
    int a, b;
} saving;

static int cmp_saving(const void *x, const void *y)
{
    const saving *p = x, *q = y;
    if (p->value != q->value) return p->value > q->value ? -1 : 1;
    if (p->a != q->a) return p->a - q->a;
    return p->b - q->b;
}

static int root_of(int *parent, int c)
{
    while (parent[c] != c) {
        parent[c] = parent[parent[c]];
        c = parent[c];
    }
    return c;
}

/* Reverses the route that contains c, given as next/prev links (0 ends it). */
static void reverse_route(int *next, int *prev, int c)
{
    while (prev[c])
        c = prev[c];
    while (c) {
        int t = next[c];
        next[c] = prev[c];
        prev[c] = t;
        c = t;
    }
}

/*
 * Joins the routes whose ends are a and b by the arc a-b, when both are
 * route ends of different routes and the load fits: a's route is turned to
 * end at a, b's to start at b. Returns 1 when joined.
 */
static int join_ends(int *next, int *prev, int *parent, int64_t *load, int64_t cap, int a, int b)
{
    int ra = root_of(parent, a), rb = root_of(parent, b);
    if (ra == rb || load[ra] + load[rb] > cap) return 0;
    if ((prev[a] && next[a]) || (prev[b] && next[b])) return 0; /* inside a route */
    if (next[a]) reverse_route(next, prev, a);
    if (prev[b]) reverse_route(next, prev, b);
    next[a] = b;
    prev[b] = a;
    parent[rb] = ra;
    load[ra] += load[rb];
    return 1;
}

/*
 * Clarke and Wright's savings for a capacitated problem without windows:
 * every customer on its own route, then routes joined by their ends in the
 * order of the distance saved, over the granular pairs only. O(n g log(n g))
 * where the sequential insertion is O(n^2)-ish: the first plan on 2,000
 * customers in milliseconds. Returns 1 with the routes in the slots, or 0
 * when they need more slots than the fleet has or memory is short (the
 * insertion runs instead). With noise > 0 each saving is scaled by a random
 * factor in 1 +- noise/2, for varied starts of the population.
 */
static int savings_construct(hgs *h, int *scratch, double noise)
{
    size_t n = (size_t)h->n, g = (size_t)h->granular;
    saving *pairs = malloc((size_t)h->nc * g * sizeof *pairs + 1);
    int *next = calloc(n, sizeof(int)), *prev = calloc(n, sizeof(int)), *parent = scratch;
    int64_t *load = calloc(n, sizeof(int64_t));
    int ok = 0;
    if (!pairs || !next || !prev || !load) goto out;
    size_t m = 0;
    for (int a = 1; a < h->n; a++) {
        parent[a] = a;
        load[a] = h->demand[a];
        for (size_t x = 0; x < g; x++) {
            int b = h->neigh[(size_t)a * g + x];
            double v = dist(h, a, 0) + dist(h, 0, b) - dist(h, a, b);
            if (noise > 0) v *= 1 + noise * ((double)rnd_below(h, 1 << 20) / (1 << 20) - 0.5);
            if (a < b && v > 0) pairs[m++] = (saving){v, a, b};
        }
    }
    qsort(pairs, m, sizeof *pairs, cmp_saving);
    for (size_t x = 0; x < m; x++)
        join_ends(next, prev, parent, load, capacity(h, 0), pairs[x].a, pairs[x].b);
    int k = 0;
    for (int c = 1; c < h->n; c++) {
        if (prev[c]) continue; /* not a route's first stop */
        if (k == h->K) goto out;
        h->rlen[k] = 0;
        for (int y = c; y; y = next[y])
            RN(h, k, ++h->rlen[k]) = y;
        k++;
    }
    for (int kk = 0; kk < h->K; kk++) {
        if (kk >= k) h->rlen[kk] = 0;
        hgs__route_update(h, kk);
    }
    ok = 1;
out:
    free(pairs);
    free(next);
    free(prev);
    free(load);
    return ok;
}

int hgs__construct(hgs *h, int *unserved, int *n_unserved)
{
    if (!h->has_tw && h->inst->n_types == 1 && savings_construct(h, h->tmp_a, 0)) {
        *n_unserved = 0;
        return OP_OK;
    }

    int n_left = h->nc, *at = h->tmp_a, *seen = h->tmp_b, stamp = 0;
    for (int c = 0; c < h->nc; c++) {
        unserved[c] = c + 1;
        at[c + 1] = c;
    }
    at[0] = -1;
    for (int c = 0; c < h->n; c++)
        seen[c] = 0;
    for (int k = 0; k < h->K; k++) {
        h->rlen[k] = 0;
        hgs__route_update(h, k);
    }
    for (int k = 0; k < h->K && n_left > 0; k++) {
        int x = pick_seed(h, k, unserved, n_left);
        while (x >= 0) {
            int c = unserved[x], where = 0;
            best_place(h, k, c, 1, &where);
            insert_at(h, k, where, c);
            unserved[x] = unserved[--n_left];
            at[unserved[x]] = x;
            at[c] = -1;
            x = next_stop(h, k, unserved, n_left, at, seen, ++stamp);
        }
    }
    *n_unserved = n_left;
    return OP_OK;
}

void hgs__complete(hgs *h, const int *unserved, int n_unserved)
{
    for (int x = 0; x < n_unserved; x++) {
        int best_k = 0, best_p = 0;
        double best = BIG;
        for (int k = 0; k < h->K; k++) {
            int p = 0;
            double added = best_place(h, k, unserved[x], 0, &p);
            if (added < best) {
                best = added;
                best_k = k;
                best_p = p;
            }
        }
        insert_at(h, best_k, best_p, unserved[x]);
    }
}

/* Drops stops from route k until it is feasible: each time the one whose removal helps most. */
static void drop_until_feasible(hgs *h, int k, int *unserved, int *n_unserved)
{
    for (;;) {
        seg all = merge(h, PRE(h, k, h->rlen[k]), depot_seg(h, k));
        if (seg_feasible(h, all, k) || h->rlen[k] == 0) return;
        int worst = 1;
        double worst_left = BIG;
        for (int p = 1; p <= h->rlen[k]; p++) {
            seg s = PRE(h, k, p - 1);
            if (p < h->rlen[k]) s = merge(h, s, SUF(h, k, p + 1));
            s = merge(h, s, depot_seg(h, k));
            int64_t excess = s.load - capacity(h, k);
            double left = (excess > 0 ? 1e6 * (double)excess : 0) + s.warp;
            if (left < worst_left) {
                worst_left = left;
                worst = p;
            }
        }
        unserved[(*n_unserved)++] = RN(h, k, worst);
        for (int q = worst; q < h->rlen[k]; q++)
            RN(h, k, q) = RN(h, k, q + 1);
        h->rlen[k]--;
        hgs__route_update(h, k);
    }
}

int hgs__repair(hgs *h, int *unserved, int *n_unserved)
{
    *n_unserved = 0;
    for (int k = 0; k < h->K; k++)
        hgs__route_update(h, k);
    for (int k = 0; k < h->K; k++)
        drop_until_feasible(h, k, unserved, n_unserved);
    /* what fits again goes back, cheapest place first come */
    int kept = 0;
    for (int x = 0; x < *n_unserved; x++) {
        int c = unserved[x], best_k = -1, best_p = 0;
        double best = BIG;
        for (int k = 0; k < h->K; k++) {
            int p = 0;
            double added = best_place(h, k, c, 1, &p);
            if (added < best) {
                best = added;
                best_k = k;
                best_p = p;
            }
        }
        if (best_k >= 0)
            insert_at(h, best_k, best_p, c);
        else
            unserved[kept++] = c;
    }
    *n_unserved = kept;
    return OP_OK;
}

int hgs__export_plan(const hgs *h, const int *unserved, int n_unserved, route_solution *out)
{
    int routes = 0, served = 0;
    for (int k = 0; k < h->K; k++) {
        routes += h->rlen[k] > 0;
        served += h->rlen[k];
    }
    int rc = route_solution_alloc(out, routes, served);
    if (rc == OP_OK) rc = route_solution_set_unassigned(out, n_unserved);
    if (rc != OP_OK) {
        route_solution_clear(out);
        return rc;
    }
    int r = 0, x = 0;
    double d = 0;
    for (int k = 0; k < h->K; k++) {
        if (!h->rlen[k]) continue;
        out->start[r] = x;
        out->type[r++] = h->slot_type[k];
        for (int p = 1; p <= h->rlen[k]; p++)
            out->nodes[x++] = RN(h, k, p);
        d += route_dist(h, k);
    }
    out->start[r] = x;
    for (int u = 0; u < n_unserved; u++) {
        out->unassigned[u] = unserved[u];
        out->reason[u] = ROUTE_UNSERVED_FLEET;
    }
    out->cost = out->distance = d;
    return OP_OK;
}

int hgs__savings(hgs *h, double noise)
{
    return !h->has_tw && h->inst->n_types == 1 && savings_construct(h, h->tmp_a, noise);
}
