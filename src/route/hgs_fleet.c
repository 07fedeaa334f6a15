/*
 * hgs_fleet: route minimisation for the vehicles-first objective, in the
 * manner of Nagata and Braysy's ejection pool with absence counters (as
 * Christiaens and Vanden Berghe weigh them): a route of a feasible plan is
 * dissolved and its stops go into a pool; each stop taken from the pool is
 * put at its cheapest feasible place or, when none exists, squeezed in (put
 * at its least penalised place, then a local search under heavy penalties
 * must make every route feasible again; tried at random, SQUEEZE_ODDS), or,
 * when that fails or is not tried, at a place
 * that becomes feasible by ejecting one or two stops, those whose absence
 * counters (how often they could not be placed) add up least (a pair of easy
 * stops before a single hard one), so that stops
 * hard to place get in and easy ones are moved. The attempt succeeds when the
 * pool is empty: every stop is back, feasibly, with one route less. Works on
 * the local search's route arrays (h->rn, h->rlen) and their summaries.
 */
#include "base/err.h"
#include "route/hgs_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Random relocations tried after each insertion that ejected stops (as
 * Nagata and Braysy's I_rand). 100 -> 1,000: over the Solomon set at 1 s
 * with the phase's larger share, 408.5 vans instead of 410.5 (seeds 5-8).
 */
#define FLEET_PERTURB_TRIES 1000

/* Scratch for one attempt: the reduced route's nodes, its prefix and closed suffix summaries. */
typedef struct fleet_work {
    int *nodes;
    seg *fwd, *bwd;
    int *pool;
    int n_pool;
    char *pooled; /* per stop: in the pool */
} fleet_work;

static int seg_ok(const hgs *h, seg s, int k)
{
    return s.load <= capacity(h, k) && s.warp < 1e-9;
}

/*
 * The most stops one insertion may eject. Over the 56 Solomon instances
 * (vehicles first, mean vans of seeds 1-16 at 0.1 s, squeeze odds 10):
 * 414.9 when pairs were tried only where no single ejection fitted, 412.7
 * and 413.1 (two runs) with pairs always in the search; triples 413.8 (their
 * search costs more than they find at this limit; at 1 s, seeds 1-4, 407.75
 * against 407.25 with pairs). A 16-seed mean moves by about a van from run
 * to run on this machine (docs/routing.md).
 */
#define EJECT_MAX 2

/*
 * Route k without the stops at positions q[0] < ... < q[nq - 1], as a node
 * list with prefix (from the start depot) and closed suffix summaries, so
 * that inserting a stop at any gap is O(1). Returns its length.
 */
static int reduced_route(const hgs *h, fleet_work *w, int k, const int *q, int nq)
{
    int m = 0, j = 0;
    for (int p = 1; p <= h->rlen[k]; p++) {
        if (j < nq && p == q[j]) {
            j++;
            continue;
        }
        w->nodes[++m] = RN(h, k, p);
    }
    w->fwd[0] = depot_seg(h, k);
    for (int i = 1; i <= m; i++)
        w->fwd[i] = merge(h, w->fwd[i - 1], node_seg(h, w->nodes[i]));
    w->bwd[m + 1] = depot_seg(h, k);
    for (int i = m; i >= 1; i--)
        w->bwd[i] = merge(h, node_seg(h, w->nodes[i]), w->bwd[i + 1]);
    return m;
}

/* The move found for a stop: route, ejected positions, insertion gap, its price. */
typedef struct fleet_move {
    int k, nq, gap;
    int q[EJECT_MAX];
    long absent;  /* the ejected stops' absence counters, summed */
    double added; /* the distance it adds, to break ties */
} fleet_move;

/* The cheapest feasible gap for c in route k without q[0..nq); updates *best when better. */
static void try_route(hgs *h, fleet_work *w, int k, const int *q, int nq, int c, long absent,
                      fleet_move *best)
{
    int m = reduced_route(h, w, k, q, nq);
    double base = w->fwd[m].dist + dist(h, w->nodes[m], 0);
    seg cs = node_seg(h, c);
    for (int g = 0; g <= m; g++) {
        seg s = merge(h, merge(h, w->fwd[g], cs), w->bwd[g + 1]);
        if (!seg_ok(h, s, k)) continue;
        /* with ejections, ties of absence go to a random one (the pool must not cycle) */
        double added = nq ? (double)rnd_below(h, 1 << 20) : s.dist - base;
        if (absent < best->absent || (absent == best->absent && added < best->added)) {
            *best = (fleet_move){.k = k, .nq = nq, .gap = g, .absent = absent, .added = added};
            memcpy(best->q, q, (size_t)nq * sizeof *q);
        }
    }
}

/*
 * The ejections of exactly want stops from route k (positions from `from` on,
 * in increasing order, q[0..depth) chosen) whose absence counters add up to
 * less than the best found; the load is checked before the insertion.
 */
static void eject_sets(hgs *h, fleet_work *w, int k, int c, int *q, int depth, int want,
                       long absent, int64_t load, fleet_move *best)
{
    if (depth == want) {
        if (load <= capacity(h, k)) try_route(h, w, k, q, want, c, absent, best);
        return;
    }
    int from = depth ? q[depth - 1] + 1 : 1;
    for (int p = from; p <= h->rlen[k] - (want - depth - 1); p++) {
        int a = RN(h, k, p);
        long sum = absent + h->absence[a];
        if (sum >= best->absent) continue;
        q[depth] = p;
        eject_sets(h, w, k, c, q, depth + 1, want, sum, load - h->demand[a], best);
    }
}

/*
 * Where c goes: a feasible place without ejections (eject 0), or (eject 1)
 * the ejection of up to EJECT_MAX stops of the least summed absence, fewer
 * stops first at equal absence (Nagata and Braysy's criterion: a pair whose
 * counters add up to less beats a single). Sets that cannot beat the best
 * found are skipped, so the search of pairs is rarely walked in full.
 */
static fleet_move find_place(hgs *h, fleet_work *w, int c, int eject)
{
    fleet_move best = {.k = -1, .absent = 1L << 62, .added = BIG};
    int q[EJECT_MAX] = {0};
    if (!eject) {
        for (int k = 0; k < h->K; k++)
            if (h->rlen[k]) try_route(h, w, k, q, 0, c, 0, &best);
        return best;
    }
    for (int want = 1; want <= EJECT_MAX; want++)
        for (int k = 0; k < h->K; k++)
            if (h->rlen[k] >= want)
                eject_sets(h, w, k, c, q, 0, want, 0, PRE(h, k, h->rlen[k]).load + h->demand[c],
                           &best);
    return best;
}

/* Applies mv for c: the ejected stops go to the pool, c into its gap. */
static void apply_move(hgs *h, fleet_work *w, const fleet_move *mv, int c)
{
    int k = mv->k;
    for (int j = 0; j < mv->nq; j++) {
        int out = RN(h, k, mv->q[j]);
        w->pooled[w->pool[w->n_pool++] = out] = 1;
        h->route_of[out] = -1; /* the local search passes over stops in the pool */
    }
    int m = reduced_route(h, w, k, mv->q, mv->nq);
    w->pooled[c] = 0;
    int p = 0;
    for (int i = 1; i <= mv->gap; i++)
        RN(h, k, ++p) = w->nodes[i];
    RN(h, k, ++p) = c;
    for (int i = mv->gap + 1; i <= m; i++)
        RN(h, k, ++p) = w->nodes[i];
    h->rlen[k] = p;
    hgs__route_update(h, k);
}

/*
 * Nagata and Braysy's perturbation: random feasible relocations of a stop
 * after one of its granular neighbours in another route, whatever they do to
 * the distance, so that the routes keep changing shape and the pool does not
 * cycle through the same ejections.
 */
static void perturb(hgs *h, fleet_work *w, int tries)
{
    for (int t = 0; t < tries; t++) {
        int u = 1 + rnd_below(h, h->nc);
        int v = h->neigh[(size_t)u * (size_t)h->granular + (size_t)rnd_below(h, h->granular)];
        if (w->pooled[u] || w->pooled[v]) continue;
        int ku = h->route_of[u], kv = h->route_of[v], pv = h->pos_of[v];
        if (ku == kv) continue;
        seg into = merge(h, merge(h, PRE(h, kv, pv), node_seg(h, u)),
                         pv < h->rlen[kv] ? merge(h, SUF(h, kv, pv + 1), depot_seg(h, kv))
                                          : depot_seg(h, kv));
        if (!seg_ok(h, into, kv)) continue;
        int pu = h->pos_of[u], m = h->rlen[ku] - 1;
        seg end = depot_seg(h, ku), rest = pu < m + 1 ? merge(h, SUF(h, ku, pu + 1), end) : end;
        if (m > 0 && !seg_ok(h, merge(h, PRE(h, ku, pu - 1), rest), ku)) continue;
        for (int i = pu; i <= m; i++)
            RN(h, ku, i) = RN(h, ku, i + 1);
        h->rlen[ku] = m;
        hgs__route_update(h, ku);
        for (int q = h->rlen[kv]; q > pv; q--)
            RN(h, kv, q + 1) = RN(h, kv, q);
        RN(h, kv, pv + 1) = u;
        h->rlen[kv]++;
        hgs__route_update(h, kv);
    }
}

static int work_alloc(const hgs *h, fleet_work *w)
{
    size_t len = (size_t)h->stride + 1;
    w->nodes = calloc(len, sizeof *w->nodes);
    w->fwd = calloc(len, sizeof *w->fwd);
    w->bwd = calloc(len, sizeof *w->bwd);
    w->pool = calloc((size_t)h->n + 1, sizeof *w->pool);
    w->pooled = calloc((size_t)h->n + 1, 1);
    w->n_pool = 0;
    return w->nodes && w->fwd && w->bwd && w->pool && w->pooled ? OP_OK : OP_ENOMEM;
}

static void work_free(fleet_work *w)
{
    free(w->nodes);
    free(w->fwd);
    free(w->bwd);
    free(w->pool);
    free(w->pooled);
}

int hgs__fleet_place(hgs *h, int c, int eject, int *q, int *nq, int *gap, long *absent)
{
    fleet_work w;
    if (work_alloc(h, &w) != OP_OK) {
        work_free(&w);
        return OP_ENOMEM;
    }
    fleet_move mv = find_place(h, &w, c, eject);
    work_free(&w);
    memcpy(q, mv.q, (size_t)mv.nq * sizeof *q);
    *nq = mv.nq;
    *gap = mv.gap;
    *absent = mv.absent;
    return mv.k;
}

/* The stops a polish round takes out at most. */
#define POLISH_REMOVE 12

/* A polish round's undo log: the routes it changed, as they were. */
typedef struct polish_undo {
    int *saved;  /* K x stride: route k's nodes before the round */
    int *len;    /* K: its length then */
    char *taken; /* K: saved this round */
    int *list, n;
} polish_undo;

static void undo_note(const hgs *h, polish_undo *u, int k)
{
    if (u->taken[k]) return;
    u->taken[k] = 1;
    u->list[u->n++] = k;
    u->len[k] = h->rlen[k];
    memcpy(u->saved + (size_t)k * (size_t)h->stride, &RN(h, k, 0),
           (size_t)(h->rlen[k] + 2) * sizeof(int));
}

/* Puts the changed routes back as they were (restore) or keeps them; empties the log. */
static void undo_end(hgs *h, polish_undo *u, int restore)
{
    for (int x = 0; x < u->n; x++) {
        int k = u->list[x];
        u->taken[k] = 0;
        if (!restore) continue;
        h->rlen[k] = u->len[k];
        memcpy(&RN(h, k, 0), u->saved + (size_t)k * (size_t)h->stride,
               (size_t)(u->len[k] + 2) * sizeof(int));
        hgs__route_update(h, k);
    }
    u->n = 0;
}

/* The closed distance of route k. */
static double closed_distance(const hgs *h, int k)
{
    return h->rlen[k] ? merge(h, PRE(h, k, h->rlen[k]), depot_seg(h, k)).dist : 0;
}

/* Takes stop c out of its route (the route's summaries are brought up to date). */
static void take_out(hgs *h, fleet_work *w, polish_undo *u, int c)
{
    int k = h->route_of[c];
    undo_note(h, u, k);
    int m = reduced_route(h, w, k, &h->pos_of[c], 1);
    for (int i = 1; i <= m; i++)
        RN(h, k, i) = w->nodes[i];
    h->rlen[k] = m;
    hgs__route_update(h, k);
    h->route_of[c] = -1;
}

/*
 * The cheapest feasible gap for c in route k, from the route's prefix and
 * suffix summaries (O(1) a gap); updates *best when better. A route
 * without room for c's load is passed over at once.
 */
static void cheapest_gap(const hgs *h, int k, int c, fleet_move *best)
{
    int m = h->rlen[k];
    if (PRE(h, k, m).load + h->demand[c] > capacity(h, k)) return;
    seg cs = node_seg(h, c), end = depot_seg(h, k);
    double base = closed_distance(h, k);
    for (int g = 0; g <= m; g++) {
        seg after = g < m ? merge(h, SUF(h, k, g + 1), end) : end;
        seg s = merge(h, merge(h, PRE(h, k, g), cs), after);
        if (!seg_ok(h, s, k) || s.dist - base >= best->added) continue;
        *best = (fleet_move){.k = k, .gap = g, .added = s.dist - base};
    }
}

/*
 * One ruin and recreate round: a random stop and some of its granular
 * neighbours (each with even odds, POLISH_REMOVE in all at most) leave
 * their routes, then each goes back, in random order, at its cheapest
 * feasible place in a route still in use. Returns the distance it adds
 * (negative: shorter), or BIG when a stop found no place (the slots then
 * hold a partial plan: undo the round).
 */
static double polish_round(hgs *h, fleet_work *w, polish_undo *u)
{
    int n_out = 0, first = 1 + rnd_below(h, h->nc);
    double before = 0, after = 0;
    w->pool[n_out++] = first;
    const int *row = h->neigh + (size_t)first * (size_t)h->granular;
    for (int x = 0; x < h->granular && n_out < POLISH_REMOVE; x++)
        if (rnd_below(h, 2)) w->pool[n_out++] = row[x];
    for (int x = 0; x < n_out; x++)
        undo_note(h, u, h->route_of[w->pool[x]]);
    for (int x = 0; x < u->n; x++)
        before += closed_distance(h, u->list[x]);
    for (int x = 0; x < n_out; x++)
        take_out(h, w, u, w->pool[x]);
    shuffle(h, w->pool, n_out);
    for (int x = 0; x < n_out; x++) {
        int c = w->pool[x];
        fleet_move best = {.k = -1, .added = BIG};
        for (int k = 0; k < h->K; k++)
            if (h->rlen[k]) cheapest_gap(h, k, c, &best);
        if (best.k < 0) return BIG;
        undo_note(h, u, best.k);
        apply_move(h, w, &best, c);
    }
    for (int x = 0; x < u->n; x++)
        after += closed_distance(h, u->list[x]);
    return after - before;
}

/* Copies the slots' routes to (save) or from (restore) a K x stride buffer and lengths. */
static void copy_plan(hgs *h, int *buf, int *len, int save)
{
    for (int k = 0; k < h->K; k++) {
        int *slot = buf + (size_t)k * (size_t)h->stride;
        if (save) {
            len[k] = h->rlen[k];
            memcpy(slot, &RN(h, k, 0), (size_t)(h->rlen[k] + 2) * sizeof(int));
        } else {
            h->rlen[k] = len[k];
            memcpy(&RN(h, k, 0), slot, (size_t)(len[k] + 2) * sizeof(int));
            hgs__route_update(h, k);
        }
    }
}

/*
 * Simulated annealing over polish rounds: a round that adds d > 0 to the
 * distance is kept with probability exp(-d / T), T falling linearly from
 * POLISH_TEMPERATURE x the plan's mean distance per stop to 0. Measured at
 * 5 s on c1_2_2 and rc2_2_3 (single runs): keeping only rounds that are not
 * worse stalled at 4,195 and 3,108; with 3x, 3,448 and 2,936; 10x and 30x
 * were worse again.
 */
#define POLISH_TEMPERATURE 3.0

int hgs__fleet_polish(hgs *h, long max_rounds)
{
    fleet_work w;
    polish_undo u = {0};
    size_t slots = (size_t)h->K * (size_t)h->stride;
    int rc = work_alloc(h, &w);
    u.saved = malloc(slots * sizeof *u.saved);
    u.len = calloc((size_t)h->K, sizeof *u.len);
    u.taken = calloc((size_t)h->K, 1);
    u.list = calloc((size_t)h->K, sizeof *u.list);
    int *best = malloc(slots * sizeof *best), *best_len = calloc((size_t)h->K, sizeof *best_len);
    if (rc != OP_OK || !u.saved || !u.len || !u.taken || !u.list || !best || !best_len) {
        rc = OP_ENOMEM;
        goto out;
    }
    for (int k = 0; k < h->K; k++)
        hgs__route_update(h, k);
    double current = 0;
    for (int k = 0; k < h->K; k++)
        current += closed_distance(h, k);
    double best_dist = current, t0 = POLISH_TEMPERATURE * current / h->nc;
    copy_plan(h, best, best_len, 1);
    for (long round = 0; round < max_rounds && !((round & 15) == 0 && hgs__time_up(h)); round++) {
        double temp = t0 * (1.0 - (double)round / (double)max_rounds);
        double added = polish_round(h, &w, &u), uniform = (1.0 + rnd_below(h, 1 << 20)) / (1 << 20);
        int keep = added < EPS || (added < BIG && added < -temp * log(uniform));
        undo_end(h, &u, !keep);
        if (!keep) continue;
        current += added;
        if (current < best_dist - EPS) {
            best_dist = current;
            copy_plan(h, best, best_len, 1);
        }
    }
    copy_plan(h, best, best_len, 0);
out:
    free(u.saved);
    free(u.len);
    free(u.taken);
    free(u.list);
    free(best);
    free(best_len);
    work_free(&w);
    return rc;
}

/*
 * Nagata and Braysy's squeeze, for a stop with no feasible place: it goes
 * to its least penalised place, then a local search with heavy penalties
 * on overload and lateness (SQUEEZE_PENALTY x the search's) and no route
 * opened tries to make every route feasible again. Returns 1 when it did
 * (c is placed), 0 when not (the plan is as before); snap and snap_len
 * (K x stride and K) are the caller's scratch.
 */
#define SQUEEZE_PENALTY 100.0
#define SQUEEZE_STEPS 20

/*
 * A stop with no feasible place is squeezed in with these odds (percent),
 * and always when it is the pool's last: a squeeze costs about 1 ms on 100
 * customers and, late in an attempt, succeeds in 1 of 10-70 tries, where an
 * ejecting insertion with its relocations costs some 50 us. Over the 56
 * Solomon instances (vehicles first, seeds 1-8, mean vans): at 0.1 s 416.5
 * with odds of 10 (416.8 with 20, 419.0 with 50, 421.4 with 0 and a squeeze
 * only for the last stop) against 419.2 with a squeeze every time; at 1 s
 * 409.6 against 409.3. With pairs of ejections always searched (EJECT_MAX),
 * seeds 1-16 at 0.1 s: odds of 5 (1 in 20) 413.0 (mean of eleven runs;
 * 412.6 and 412.4 in two interleaved with odds of 10), 10 412.8 (four runs;
 * 413.0 and 412.4 interleaved), 2 413.6: no difference between 5 and 10
 * shown; at 1 s (seeds 1-4) 5 407.25, 10 407.75.
 */
#define SQUEEZE_ODDS 5

static int squeeze(hgs *h, fleet_work *w, int c, int *snap, int *snap_len)
{
    double pl = h->pen_load, pw = h->pen_warp;
    h->pen_load = pl * SQUEEZE_PENALTY;
    h->pen_warp = pw * SQUEEZE_PENALTY;
    fleet_move best = {.k = -1, .added = BIG};
    seg cs = node_seg(h, c);
    for (int k = 0; k < h->K; k++) {
        int m = h->rlen[k];
        if (!m) continue;
        seg end = depot_seg(h, k), now_closed = merge(h, PRE(h, k, m), end);
        double base = penalized(h, now_closed.dist, now_closed.load, now_closed.warp, k,
                                h->pen_load, h->pen_warp);
        for (int g = 0; g <= m; g++) {
            seg after = g < m ? merge(h, SUF(h, k, g + 1), end) : end;
            seg s = merge(h, merge(h, PRE(h, k, g), cs), after);
            double added = penalized(h, s.dist, s.load, s.warp, k, h->pen_load, h->pen_warp) - base;
            if (added < best.added) best = (fleet_move){.k = k, .gap = g, .added = added};
        }
    }
    int ok = best.k >= 0;
    if (ok) {
        copy_plan(h, snap, snap_len, 1);
        apply_move(h, w, &best, c);
        h->fleet_locked = 1;
        hgs__local_search_from(h, best.k);
        h->fleet_locked = 0;
        for (int k = 0; k < h->K && ok; k++)
            if (h->rlen[k]) ok = seg_ok(h, merge(h, PRE(h, k, h->rlen[k]), depot_seg(h, k)), k);
    }
    h->pen_load = pl;
    h->pen_warp = pw;
    if (ok) { /* the routes' penalised costs, back to the search's penalties */
        for (int k = 0; k < h->K; k++)
            hgs__route_update(h, k);
    } else if (best.k >= 0) { /* the plan as it was, its routes' costs recomputed */
        copy_plan(h, snap, snap_len, 0);
        h->route_of[c] = -1;
        w->pooled[c] = 1;
    }
    return ok;
}

int hgs__fleet_remove(hgs *h, int gone, long max_steps, double until_s)
{
    if (!h->absence && !(h->absence = calloc((size_t)h->n, sizeof *h->absence))) return OP_ENOMEM;
    fleet_work w;
    size_t slots = (size_t)h->K * (size_t)h->stride;
    int *snap = malloc(slots * sizeof *snap), *snap_len = calloc((size_t)h->K, sizeof *snap_len);
    if (work_alloc(h, &w) != OP_OK || !snap || !snap_len) {
        work_free(&w);
        free(snap);
        free(snap_len);
        return OP_ENOMEM;
    }
    for (int k = 0; k < h->K; k++)
        hgs__route_update(h, k);
    for (int p = h->rlen[gone]; p >= 1; p--) {
        w.pooled[w.pool[w.n_pool++] = RN(h, gone, p)] = 1;
        h->route_of[RN(h, gone, p)] = -1;
    }
    h->rlen[gone] = 0;
    hgs__route_update(h, gone);
    /* the slot stays empty: no stop may go back into it */
    long steps = 0;
    for (; w.n_pool > 0 && steps < max_steps; steps++) {
        /* at every step: with squeezes, 16 steps took up to 10 ms (R104 at 1 s ran 0.46 s past
         * until_s) */
        if (hgs__time_up(h) || (until_s > 0 && h->params->now_s() - h->start_s >= until_s)) break;
        int c = w.pool[--w.n_pool];
        fleet_move mv = find_place(h, &w, c, 0);
        if (mv.k < 0 && (w.n_pool == 0 || rnd_below(h, 100) < SQUEEZE_ODDS)) {
            steps += SQUEEZE_STEPS - 1; /* its local search costs as much as many placements */
            if (squeeze(h, &w, c, snap, snap_len)) continue;
        }
        if (mv.k < 0) mv = find_place(h, &w, c, 1);
        if (mv.k < 0) { /* nowhere even with two ejections: it waits at the bottom */
            h->absence[c]++;
            memmove(w.pool + 1, w.pool, (size_t)w.n_pool * sizeof *w.pool);
            w.pool[0] = c;
            w.n_pool++;
            continue;
        }
        if (mv.nq) h->absence[c]++;
        apply_move(h, &w, &mv, c);
        if (mv.nq) perturb(h, &w, FLEET_PERTURB_TRIES);
    }
    h->fleet_steps += steps;
    int done = w.n_pool == 0;
    work_free(&w);
    free(snap);
    free(snap_len);
    return done;
}
