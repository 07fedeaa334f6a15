#include "route/hgs.h"

#include "base/err.h"
#include "base/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Population parameters from HGS-CVRP (Vidal 2022, table 1). */
#define POP_MU 25
#define POP_LAMBDA 40
#define POP_ELITE 4
#define POP_CLOSE 5
#define POP_MAX (POP_MU + POP_LAMBDA + 1)
#define TARGET_FEASIBLE 0.2
#define PENALTY_WINDOW 100
#define EPS 1e-7
#define BIG 1e30

/*
 * A route segment's summary (Vidal et al. 2013): enough to get the distance,
 * load and time warp of a concatenation of segments in O(1). early/late are
 * the earliest and latest start of the segment's first service that keep its
 * time warp at warp; dur includes service and unavoidable waiting.
 */
typedef struct seg {
    double dist, dur, warp, early, late;
    int64_t load;
    int first, last;
} seg;

/* A range of positions i..j of route k, walked backwards when rev. */
typedef struct piece {
    int k, i, j, rev;
} piece;

typedef struct indiv {
    double penalized, dist, warp;
    int64_t excess;
    int feasible, n_routes;
    int *giant;  /* nc customers, route after route */
    int *rstart; /* K + 1 offsets into giant: slot k's customers */
    int *succ, *pred;
    double fitness;
    int n_prox;
    double prox_d[POP_MAX];
    struct indiv *prox_i[POP_MAX];
} indiv;

typedef struct subpop {
    indiv *v[POP_MAX];
    int n;
} subpop;

typedef struct hgs {
    const route_instance *inst;
    const hgs_params *params;
    int n, nc, K, has_tw, granular;
    double *D;
    int64_t *demand;
    double *ready, *due, *service;
    int *slot_type;
    uint64_t rng;
    double pen_load, pen_warp;
    int *neigh; /* nc+1 rows of granular */
    /* local search state */
    int stride;     /* n + 2 */
    int *rn, *rlen; /* route k's nodes at rn[k*stride + p], p = 0 and rlen+1 are the depot */
    seg *pre, *suf; /* prefix (with start depot) and suffix (customers only) summaries */
    double *rcum;   /* reverse-direction distance prefix sums */
    double *cd;     /* forward distance prefix sums (compact copy of pre[].dist) */
    int64_t *cl;    /* load prefix sums */
    int64_t *slot_cap;
    double *rcost; /* penalized cost per route */
    double *rpen;  /* of which penalties (overload, time warp) */
    int *route_of, *pos_of, *order;
    long moves, *modified, *tested, *swapstar_tested;
    int *angle; /* polar angle of each node around the depot, 0..65535 (-1: no coordinates) */
    int *sector_start, *sector_end; /* per route: the circle sector its customers span */
    /* SWAP* preprocessing: three best insertion positions of each node into the other route */
    double *ins_cost;
    int *ins_pos;
    int *tmp_a, *tmp_b;
    /* split */
    double *pot;
    int *from;
    /* population */
    subpop feas, infeas;
    indiv *best;
    double best_found_s, start_s;
    int load_hist[PENALTY_WINDOW], warp_hist[PENALTY_WINDOW], hist_n;
    long iterations, restarts;
} hgs;

/* ---- randomness ---- */

static int rnd_below(hgs *h, int n)
{
    return (int)(((util_splitmix64(&h->rng) >> 32) * (uint64_t)n) >> 32);
}

static void shuffle(hgs *h, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rnd_below(h, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static double now(const hgs *h)
{
    return h->params->now_s ? h->params->now_s() - h->start_s : 0;
}

/* ---- segments ---- */

static inline double dist(const hgs *h, int i, int j)
{
    return h->D[(size_t)i * (size_t)h->n + (size_t)j];
}

static inline seg node_seg(const hgs *h, int c)
{
    seg s = {0, h->service[c], 0, h->ready[c], h->due[c], h->demand[c], c, c};
    return s;
}

static inline seg depot_seg(const hgs *h, int k)
{
    const route_vehicle *v = &h->inst->types[h->slot_type[k]];
    seg s = {0, 0, 0, v->shift_start, v->shift_end, 0, 0, 0};
    return s;
}

static inline seg merge(const hgs *h, seg a, seg b)
{
    double edge = dist(h, a.last, b.first);
    seg r;
    r.dist = a.dist + b.dist + edge;
    r.load = a.load + b.load;
    r.first = a.first;
    r.last = b.last;
    if (!h->has_tw) {
        r.dur = r.warp = r.early = 0;
        r.late = BIG;
        return r;
    }
    double delta = a.dur - a.warp + edge;
    double wait = b.early - delta - a.late;
    double warp = a.early + delta - b.late;
    if (wait < 0) wait = 0;
    if (warp < 0) warp = 0;
    r.dur = a.dur + b.dur + edge + wait;
    r.warp = a.warp + b.warp + warp;
    r.early = fmax(b.early - delta, a.early) - wait;
    r.late = fmin(b.late - delta, a.late) + warp;
    return r;
}

static inline int64_t capacity(const hgs *h, int k)
{
    return h->slot_cap[k];
}

static inline double penalized(const hgs *h, double d, int64_t load, double warp, int k,
                               double pen_load, double pen_warp)
{
    int64_t excess = load - capacity(h, k);
    return d + (excess > 0 ? pen_load * (double)excess : 0) + pen_warp * warp;
}

/* ---- local search: routes as position arrays with prefix/suffix summaries ---- */

#define RN(h, k, p) ((h)->rn[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define PRE(h, k, p) ((h)->pre[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define SUF(h, k, p) ((h)->suf[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define RCUM(h, k, p) ((h)->rcum[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define CD(h, k, p) ((h)->cd[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define CL(h, k, p) ((h)->cl[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])

static void sector_update(hgs *h, int k);

static void route_update(hgs *h, int k)
{
    int m = h->rlen[k];
    RN(h, k, 0) = 0;
    RN(h, k, m + 1) = 0;
    PRE(h, k, 0) = depot_seg(h, k);
    RCUM(h, k, 0) = 0;
    CD(h, k, 0) = 0;
    CL(h, k, 0) = 0;
    for (int p = 1; p <= m; p++) {
        int c = RN(h, k, p);
        h->route_of[c] = k;
        h->pos_of[c] = p;
        PRE(h, k, p) = merge(h, PRE(h, k, p - 1), node_seg(h, c));
        RCUM(h, k, p) = RCUM(h, k, p - 1) + dist(h, c, RN(h, k, p - 1));
        CD(h, k, p) = PRE(h, k, p).dist;
        CL(h, k, p) = PRE(h, k, p).load;
    }
    if (m) SUF(h, k, m) = node_seg(h, RN(h, k, m));
    for (int p = m - 1; p >= 1; p--)
        SUF(h, k, p) = merge(h, node_seg(h, RN(h, k, p)), SUF(h, k, p + 1));
    seg all = merge(h, PRE(h, k, m), depot_seg(h, k));
    h->rcost[k] = penalized(h, all.dist, all.load, all.warp, k, h->pen_load, h->pen_warp);
    h->rpen[k] = h->rcost[k] - all.dist;
    sector_update(h, k);
    h->modified[k] = h->moves;
}

static seg piece_seg(const hgs *h, piece p)
{
    int m = h->rlen[p.k];
    if (!p.rev) {
        if (p.i == 0) return PRE(h, p.k, p.j);
        if (p.j == m) return SUF(h, p.k, p.i);
        seg s = node_seg(h, RN(h, p.k, p.i));
        for (int q = p.i + 1; q <= p.j; q++)
            s = merge(h, s, node_seg(h, RN(h, p.k, q)));
        return s;
    }
    seg s = node_seg(h, RN(h, p.k, p.j));
    for (int q = p.j - 1; q >= p.i; q--)
        s = merge(h, s, node_seg(h, RN(h, p.k, q)));
    return s;
}

/*
 * The penalized cost of route slot k made of pieces. Without time windows
 * (and as a first filter with them) distance and load come from prefix sums
 * in O(pieces); the full segment merge runs only for moves that could still
 * improve once time warp is counted.
 */
static double eval_fast(const hgs *h, const piece *ps, int np, int k)
{
    double d = 0;
    int64_t load = 0;
    int last = -1;
    for (int x = 0; x < np; x++) {
        const piece *p = &ps[x];
        if (p->i > p->j) continue;
        size_t base = (size_t)p->k * (size_t)h->stride;
        const int *nodes = h->rn + base;
        int first_node, last_node;
        if (!p->rev) {
            d += h->cd[base + (size_t)p->j] - h->cd[base + (size_t)p->i];
            first_node = nodes[p->i];
            last_node = nodes[p->j];
        } else {
            d += h->rcum[base + (size_t)p->j] - h->rcum[base + (size_t)p->i];
            first_node = nodes[p->j];
            last_node = nodes[p->i];
        }
        load += h->cl[base + (size_t)p->j] - (p->i > 0 ? h->cl[base + (size_t)p->i - 1] : 0);
        if (last >= 0) d += dist(h, last, first_node);
        last = last_node;
    }
    d += dist(h, last, 0);
    int64_t excess = load - h->slot_cap[k];
    return d + (excess > 0 ? h->pen_load * (double)excess : 0);
}

static double eval_full(const hgs *h, const piece *ps, int np, int k)
{
    seg acc = {0};
    int started = 0;
    for (int x = 0; x < np; x++) {
        if (ps[x].i > ps[x].j) continue;
        seg s = piece_seg(h, ps[x]);
        acc = started ? merge(h, acc, s) : s;
        started = 1;
    }
    acc = merge(h, acc, depot_seg(h, k));
    return penalized(h, acc.dist, acc.load, acc.warp, k, h->pen_load, h->pen_warp);
}

static int write_pieces(const hgs *h, const piece *ps, int np, int *out)
{
    int len = 0;
    for (int x = 0; x < np; x++) {
        piece p = ps[x];
        if (p.i > p.j) continue;
        if (!p.rev)
            for (int q = p.i; q <= p.j; q++)
                out[len++] = RN(h, p.k, q);
        else
            for (int q = p.j; q >= p.i; q--)
                out[len++] = RN(h, p.k, q);
    }
    return len; /* includes the start depot at out[0] */
}

/*
 * Evaluates a move that rebuilds route ka from pa (and route kb from pb when
 * nb > 0) and applies it when it lowers the penalized cost. Returns 1 when
 * applied.
 */
static int try_move(hgs *h, const piece *pa, int na, int ka, const piece *pb, int nb, int kb)
{
    double before = h->rcost[ka] + (nb ? h->rcost[kb] : 0);
    double after = eval_fast(h, pa, na, ka) + (nb ? eval_fast(h, pb, nb, kb) : 0);
    if (after > before - EPS) return 0;
    if (h->has_tw) {
        after = eval_full(h, pa, na, ka) + (nb ? eval_full(h, pb, nb, kb) : 0);
        if (after > before - EPS) return 0;
    }
    int la = write_pieces(h, pa, na, h->tmp_a);
    int lb = nb ? write_pieces(h, pb, nb, h->tmp_b) : 0;
    h->moves++;
    memcpy(&RN(h, ka, 0), h->tmp_a, (size_t)la * sizeof(int));
    h->rlen[ka] = la - 1;
    if (nb) {
        memcpy(&RN(h, kb, 0), h->tmp_b, (size_t)lb * sizeof(int));
        h->rlen[kb] = lb - 1;
        route_update(h, kb);
    }
    route_update(h, ka);
    return 1;
}

#define P(k_, i_, j_, r_) ((piece){(k_), (i_), (j_), (r_)})

/* Moves of U (and its successor X) relative to V at position pv of route kv (pv = 0: the depot). */
static int moves_inter(hgs *h, int u, int kv, int pv)
{
    int ku = h->route_of[u], pu = h->pos_of[u], mu = h->rlen[ku], mv = h->rlen[kv];
    piece a[4], b[4];
    /*
     * Distance-only filters first (as HGS-CVRP does): a move whose distance
     * change is not below the two routes' current penalties cannot improve,
     * since penalties after the move are >= 0. They hold for forward pieces.
     */
    int pu_node = RN(h, ku, pu - 1), x_node = RN(h, ku, pu + 1);
    int v_node = RN(h, kv, pv), y_node = RN(h, kv, pv + 1);
    double pens = h->rpen[ku] + h->rpen[kv] - EPS;
    double remove_u = dist(h, pu_node, x_node) - dist(h, pu_node, u) - dist(h, u, x_node);
    /* relocate U after V */
    a[0] = P(ku, 0, pu - 1, 0);
    a[1] = P(ku, pu + 1, mu, 0);
    b[0] = P(kv, 0, pv, 0);
    b[1] = P(ku, pu, pu, 0);
    b[2] = P(kv, pv + 1, mv, 0);
    if (remove_u + dist(h, v_node, u) + dist(h, u, y_node) - dist(h, v_node, y_node) < pens &&
        try_move(h, a, 2, ku, b, 3, kv))
        return 1;
    if (pu < mu) {
        /* relocate (U, X) and (X, U) after V */
        a[1] = P(ku, pu + 2, mu, 0);
        b[1] = P(ku, pu, pu + 1, 0);
        if (try_move(h, a, 2, ku, b, 3, kv)) return 1;
        b[1].rev = 1;
        if (try_move(h, a, 2, ku, b, 3, kv)) return 1;
    }
    if (pv >= 1) {
        /* swap U and V; (U, X) and V; (U, X) and (V, Y) */
        a[0] = P(ku, 0, pu - 1, 0);
        a[1] = P(kv, pv, pv, 0);
        a[2] = P(ku, pu + 1, mu, 0);
        b[0] = P(kv, 0, pv - 1, 0);
        b[1] = P(ku, pu, pu, 0);
        b[2] = P(kv, pv + 1, mv, 0);
        int pv_node = RN(h, kv, pv - 1);
        double swap = dist(h, pu_node, v_node) + dist(h, v_node, x_node) - dist(h, pu_node, u) -
                      dist(h, u, x_node) + dist(h, pv_node, u) + dist(h, u, y_node) -
                      dist(h, pv_node, v_node) - dist(h, v_node, y_node);
        if (swap < pens && try_move(h, a, 3, ku, b, 3, kv)) return 1;
        if (pu < mu) {
            a[2] = P(ku, pu + 2, mu, 0);
            b[1] = P(ku, pu, pu + 1, 0);
            if (try_move(h, a, 3, ku, b, 3, kv)) return 1;
            if (pv < mv) {
                a[1] = P(kv, pv, pv + 1, 0);
                b[2] = P(kv, pv + 2, mv, 0);
                if (try_move(h, a, 3, ku, b, 3, kv)) return 1;
            }
        }
    }
    /* 2-opt*: exchange the tails after U and after V */
    a[0] = P(ku, 0, pu, 0);
    a[1] = P(kv, pv + 1, mv, 0);
    b[0] = P(kv, 0, pv, 0);
    b[1] = P(ku, pu + 1, mu, 0);
    double tails =
        dist(h, u, y_node) + dist(h, v_node, x_node) - dist(h, u, x_node) - dist(h, v_node, y_node);
    return tails < pens && try_move(h, a, 2, ku, b, 2, kv);
}

static int moves_intra(hgs *h, int u, int pv)
{
    int k = h->route_of[u], pu = h->pos_of[u], m = h->rlen[k];
    piece a[5];
    if (pv != pu && pv != pu - 1) { /* relocate U after V */
        if (pv < pu) {
            a[0] = P(k, 0, pv, 0);
            a[1] = P(k, pu, pu, 0);
            a[2] = P(k, pv + 1, pu - 1, 0);
        } else {
            a[0] = P(k, 0, pu - 1, 0);
            a[1] = P(k, pu + 1, pv, 0);
            a[2] = P(k, pu, pu, 0);
        }
        a[3] = P(k, (pv < pu ? pu : pv) + 1, m, 0);
        if (try_move(h, a, 4, k, NULL, 0, k)) return 1;
    }
    if (pu < m && (pv < pu - 1 || pv > pu + 1)) { /* relocate (U, X) after V, either way round */
        for (int rev = 0; rev < 2; rev++) {
            if (pv < pu) {
                a[0] = P(k, 0, pv, 0);
                a[1] = P(k, pu, pu + 1, rev);
                a[2] = P(k, pv + 1, pu - 1, 0);
                a[3] = P(k, pu + 2, m, 0);
            } else {
                a[0] = P(k, 0, pu - 1, 0);
                a[1] = P(k, pu + 2, pv, 0);
                a[2] = P(k, pu, pu + 1, rev);
                a[3] = P(k, pv + 1, m, 0);
            }
            if (try_move(h, a, 4, k, NULL, 0, k)) return 1;
        }
    }
    if (pv >= 1 && pv != pu) { /* swap U and V */
        int lo = pu < pv ? pu : pv, hi = pu < pv ? pv : pu;
        a[0] = P(k, 0, lo - 1, 0);
        a[1] = P(k, hi, hi, 0);
        a[2] = P(k, lo + 1, hi - 1, 0);
        a[3] = P(k, lo, lo, 0);
        a[4] = P(k, hi + 1, m, 0);
        if (try_move(h, a, 5, k, NULL, 0, k)) return 1;
    }
    if (pv != pu) { /* 2-opt: reverse the stretch between them */
        int lo = pu < pv ? pu : pv, hi = pu < pv ? pv : pu;
        if (hi - lo >= 2) {
            a[0] = P(k, 0, lo, 0);
            a[1] = P(k, lo + 1, hi, 1);
            a[2] = P(k, hi + 1, m, 0);
            if (try_move(h, a, 3, k, NULL, 0, k)) return 1;
        }
    }
    return 0;
}

static int moves_pair(hgs *h, int u, int v)
{
    int kv = h->route_of[v], pv = h->pos_of[v];
    if (h->route_of[u] == kv) {
        if (moves_intra(h, u, pv)) return 1;
        return pv == 1 && moves_intra(h, u, 0);
    }
    if (moves_inter(h, u, kv, pv)) return 1;
    return pv == 1 && moves_inter(h, u, kv, 0);
}

/* U into an empty route of each vehicle type (the moves above never open a route). */
static int moves_empty(hgs *h, int u)
{
    char tried[ROUTE_MAX_TYPES] = {0};
    for (int k = 0; k < h->K; k++) {
        int t = h->slot_type[k];
        if (h->rlen[k] || tried[t]) continue;
        tried[t] = 1;
        if (k != h->route_of[u] && moves_inter(h, u, k, 0)) return 1;
    }
    return 0;
}

/* ---- SWAP* (Vidal 2022): exchange U and V between two routes, each reinserted at its best place
 * ---- */

static inline int pmod(int i)
{
    return ((i % 65536) + 65536) % 65536;
}

static void sector_update(hgs *h, int k)
{
    int m = h->rlen[k];
    if (!m || h->angle[0] < 0) return;
    int start = h->angle[RN(h, k, 1)], end = start;
    for (int p = 2; p <= m; p++) {
        int a = h->angle[RN(h, k, p)];
        if (pmod(a - start) <= pmod(end - start)) continue;
        if (pmod(a - end) <= pmod(start - a))
            end = a;
        else
            start = a;
    }
    h->sector_start[k] = start;
    h->sector_end[k] = end;
}

static int sectors_overlap(const hgs *h, int k1, int k2)
{
    if (h->angle[0] < 0) return 1;
    int s1 = h->sector_start[k1], e1 = h->sector_end[k1];
    int s2 = h->sector_start[k2], e2 = h->sector_end[k2];
    return pmod(s2 - s1) <= pmod(e1 - s1) || pmod(s1 - s2) <= pmod(e2 - s2);
}

/* Three cheapest places (positions to insert after) of every customer of route from in route to. */
static void swapstar_preprocess(hgs *h, int from, int to, int slot_base)
{
    int mf = h->rlen[from], mt = h->rlen[to];
    for (int p = 1; p <= mf; p++) {
        int u = RN(h, from, p);
        double *c = h->ins_cost + (size_t)(slot_base + p) * 3;
        int *pos = h->ins_pos + (size_t)(slot_base + p) * 3;
        c[0] = c[1] = c[2] = BIG;
        pos[0] = pos[1] = pos[2] = -1;
        for (int q = 0; q <= mt; q++) {
            int a = RN(h, to, q), b = RN(h, to, q + 1);
            double d = dist(h, a, u) + dist(h, u, b) - dist(h, a, b);
            if (d >= c[2]) continue;
            int x = 2;
            while (x > 0 && d < c[x - 1]) {
                c[x] = c[x - 1];
                pos[x] = pos[x - 1];
                x--;
            }
            c[x] = d;
            pos[x] = q;
        }
    }
}

/* Best place for node w (at position pw of route from) in route to once the node at position gone
 * leaves it. */
static double best_insertion(const hgs *h, int w, int pw_slot, int to, int gone, int *where)
{
    const double *c = h->ins_cost + (size_t)pw_slot * 3;
    const int *pos = h->ins_pos + (size_t)pw_slot * 3;
    /* in the place of the node that leaves */
    int a = RN(h, to, gone - 1), b = RN(h, to, gone + 1);
    double best = dist(h, a, w) + dist(h, w, b) - dist(h, a, b);
    *where = gone - 1;
    for (int x = 0; x < 3; x++) {
        if (pos[x] < 0 || pos[x] == gone || pos[x] == gone - 1)
            continue; /* edges that no longer exist */
        if (c[x] < best) {
            best = c[x];
            *where = pos[x];
        }
        break; /* the cheapest valid one is the first valid one */
    }
    return best;
}

/* Pieces for route k without position gone and with route other's node at position ins inserted
 * after q. */
static int swapstar_pieces(piece *ps, int k, int gone, int q, int other, int ins, int m)
{
    if (q < gone) {
        ps[0] = P(k, 0, q, 0);
        ps[1] = P(other, ins, ins, 0);
        ps[2] = P(k, q + 1, gone - 1, 0);
        ps[3] = P(k, gone + 1, m, 0);
    } else {
        ps[0] = P(k, 0, gone - 1, 0);
        ps[1] = P(k, gone + 1, q, 0);
        ps[2] = P(other, ins, ins, 0);
        ps[3] = P(k, q + 1, m, 0);
    }
    return 4;
}

static int swapstar(hgs *h, int k1, int k2)
{
    int m1 = h->rlen[k1], m2 = h->rlen[k2];
    if (!m1 || !m2) return 0;
    swapstar_preprocess(h, k1, k2, 0);
    swapstar_preprocess(h, k2, k1, m1 + 1);
    int64_t load1 = CL(h, k1, m1), load2 = CL(h, k2, m2);
    double best = -EPS;
    int bu = -1, bv = -1, bqu = -1, bqv = -1;
    for (int pu = 1; pu <= m1; pu++) {
        int u = RN(h, k1, pu);
        double remove_u = dist(h, RN(h, k1, pu - 1), RN(h, k1, pu + 1)) -
                          dist(h, RN(h, k1, pu - 1), u) - dist(h, u, RN(h, k1, pu + 1));
        for (int pv = 1; pv <= m2; pv++) {
            int v = RN(h, k2, pv);
            int64_t new1 = load1 - h->demand[u] + h->demand[v],
                    new2 = load2 + h->demand[u] - h->demand[v];
            int64_t ex1 = new1 - h->slot_cap[k1], ex2 = new2 - h->slot_cap[k2];
            double pen = (ex1 > 0 ? h->pen_load * (double)ex1 : 0) +
                         (ex2 > 0 ? h->pen_load * (double)ex2 : 0) - h->rpen[k1] - h->rpen[k2];
            double remove_v = dist(h, RN(h, k2, pv - 1), RN(h, k2, pv + 1)) -
                              dist(h, RN(h, k2, pv - 1), v) - dist(h, v, RN(h, k2, pv + 1));
            if (pen + remove_u + remove_v >= best) continue;
            int qu, qv;
            double ins_u = best_insertion(h, u, pu, k2, pv, &qu);
            double ins_v = best_insertion(h, v, m1 + 1 + pv, k1, pu, &qv);
            double total = pen + remove_u + remove_v + ins_u + ins_v;
            if (total < best) {
                best = total;
                bu = pu;
                bv = pv;
                bqu = qu;
                bqv = qv;
            }
        }
    }
    if (bu < 0) return 0;
    piece a[4], b[4];
    swapstar_pieces(a, k1, bu, bqv, k2, bv, m1);
    swapstar_pieces(b, k2, bv, bqu, k1, bu, m2);
    return try_move(h, a, 4, k1, b, 4, k2);
}

static void local_search(hgs *h)
{
    for (int k = 0; k < h->K; k++) {
        route_update(h, k);
        h->swapstar_tested[k] = -1;
    }
    shuffle(h, h->order, h->nc);
    for (int c = 1; c <= h->nc; c++) {
        h->tested[c] = -1;
        shuffle(h, h->neigh + (size_t)c * (size_t)h->granular, h->granular);
    }
    int improved = 1;
    /* as HGS-CVRP: the second pass always runs, since only it tries opening routes */
    for (int loop = 0; improved || loop < 2; loop++) {
        improved = 0;
        for (int x = 0; x < h->nc; x++) {
            int u = h->order[x];
            long last = h->tested[u];
            h->tested[u] = h->moves;
            const int *nb = h->neigh + (size_t)u * (size_t)h->granular;
            for (int y = 0; y < h->granular; y++) {
                int v = nb[y];
                long mod = h->modified[h->route_of[u]];
                if (h->modified[h->route_of[v]] > mod) mod = h->modified[h->route_of[v]];
                if (loop > 0 && mod <= last) continue;
                if (moves_pair(h, u, v)) improved = 1;
            }
            if (loop > 0 && moves_empty(h, u)) improved = 1;
        }
        for (int k1 = 0; k1 < h->K; k1++) {
            if (!h->rlen[k1]) continue;
            long last = h->swapstar_tested[k1];
            h->swapstar_tested[k1] = h->moves;
            for (int k2 = k1 + 1; k2 < h->K; k2++) {
                if (!h->rlen[k2] || !h->rlen[k1]) continue;
                long mod = h->modified[k1] > h->modified[k2] ? h->modified[k1] : h->modified[k2];
                if (loop > 0 && mod <= last) continue;
                if (sectors_overlap(h, k1, k2) && swapstar(h, k1, k2)) improved = 1;
            }
        }
    }
}

/* ---- individuals ---- */

static void indiv_free(indiv *s)
{
    if (!s) return;
    free(s->giant);
    free(s->rstart);
    free(s->succ);
    free(s->pred);
    free(s);
}

static indiv *indiv_new(const hgs *h)
{
    indiv *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->giant = calloc((size_t)h->nc + 1, sizeof *s->giant);
    s->rstart = calloc((size_t)h->K + 1, sizeof *s->rstart);
    s->succ = calloc((size_t)h->n, sizeof *s->succ);
    s->pred = calloc((size_t)h->n, sizeof *s->pred);
    if (!s->giant || !s->rstart || !s->succ || !s->pred) {
        indiv_free(s);
        return NULL;
    }
    return s;
}

static void indiv_copy(const hgs *h, indiv *dst, const indiv *src)
{
    dst->penalized = src->penalized;
    dst->dist = src->dist;
    dst->warp = src->warp;
    dst->excess = src->excess;
    dst->feasible = src->feasible;
    dst->n_routes = src->n_routes;
    memcpy(dst->giant, src->giant, (size_t)h->nc * sizeof(int));
    memcpy(dst->rstart, src->rstart, ((size_t)h->K + 1) * sizeof(int));
    memcpy(dst->succ, src->succ, (size_t)h->n * sizeof(int));
    memcpy(dst->pred, src->pred, (size_t)h->n * sizeof(int));
    dst->n_prox = 0;
}

/* Recomputes cost, feasibility and neighbours of s from its routes. */
static void indiv_evaluate(const hgs *h, indiv *s)
{
    s->dist = s->warp = 0;
    s->excess = 0;
    s->n_routes = 0;
    for (int k = 0; k < h->K; k++) {
        int a = s->rstart[k], b = s->rstart[k + 1];
        if (a == b) continue;
        s->n_routes++;
        seg acc = depot_seg(h, k);
        for (int x = a; x < b; x++) {
            int c = s->giant[x];
            acc = merge(h, acc, node_seg(h, c));
            s->pred[c] = x > a ? s->giant[x - 1] : 0;
            s->succ[c] = x + 1 < b ? s->giant[x + 1] : 0;
        }
        acc = merge(h, acc, depot_seg(h, k));
        s->dist += acc.dist;
        s->warp += acc.warp;
        if (acc.load > capacity(h, k)) s->excess += acc.load - capacity(h, k);
    }
    s->feasible = s->excess == 0 && s->warp < 1e-9;
    s->penalized = s->dist + h->pen_load * (double)s->excess + h->pen_warp * s->warp;
}

static void ls_load(hgs *h, const indiv *s)
{
    for (int k = 0; k < h->K; k++) {
        int a = s->rstart[k], b = s->rstart[k + 1];
        h->rlen[k] = b - a;
        for (int x = a; x < b; x++)
            RN(h, k, x - a + 1) = s->giant[x];
    }
}

static void ls_store(const hgs *h, indiv *s)
{
    int x = 0;
    for (int k = 0; k < h->K; k++) {
        s->rstart[k] = x;
        for (int p = 1; p <= h->rlen[k]; p++)
            s->giant[x++] = RN(h, k, p);
    }
    s->rstart[h->K] = x;
    indiv_evaluate(h, s);
}

/* ---- split: cut a giant tour into routes, optimally for its order ---- */

/* Route cost of giant[i..j-1] on slot k, extended one customer at a time by the callers. */
static int split(hgs *h, indiv *s)
{
    const int nc = h->nc, K = h->K;
    double *pot = h->pot;
    int *from = h->from;
    int homogeneous = h->inst->n_types == 1;
    int64_t cap = capacity(h, 0);
    if (homogeneous) {
        /* unlimited fleet: one row of potentials */
        for (int j = 0; j <= nc; j++)
            pot[j] = BIG;
        pot[0] = 0;
        for (int i = 0; i < nc; i++) {
            if (pot[i] >= BIG) continue;
            seg acc = depot_seg(h, 0);
            for (int j = i + 1; j <= nc; j++) {
                acc = merge(h, acc, node_seg(h, s->giant[j - 1]));
                if (acc.load > cap * 3 / 2 && j > i + 1) break;
                seg closed = merge(h, acc, depot_seg(h, 0));
                double c = pot[i] + penalized(h, closed.dist, closed.load, closed.warp, 0,
                                              h->pen_load, h->pen_warp);
                if (c < pot[j]) {
                    pot[j] = c;
                    from[j] = i;
                }
            }
        }
        int routes = 0;
        for (int j = nc; j > 0; j = from[j])
            routes++;
        if (routes <= K) {
            int k = routes;
            for (int kk = routes; kk <= K; kk++)
                s->rstart[kk] = nc;
            for (int j = nc; j > 0; j = from[j])
                s->rstart[--k] = from[j];
            indiv_evaluate(h, s);
            return OP_OK;
        }
    }
    /* limited or mixed fleet: route r goes to slot r; a slot may stay empty */
    size_t w = (size_t)nc + 1;
    for (size_t x = 0; x < (size_t)(K + 1) * w; x++)
        pot[x] = BIG;
    pot[0] = 0;
    for (int k = 0; k < K; k++) {
        int64_t capk = capacity(h, k);
        for (int i = 0; i <= nc; i++) {
            double base = pot[(size_t)k * w + (size_t)i];
            if (base >= BIG) continue;
            if (base < pot[(size_t)(k + 1) * w + (size_t)i]) { /* slot k unused */
                pot[(size_t)(k + 1) * w + (size_t)i] = base;
                from[(size_t)(k + 1) * w + (size_t)i] = i;
            }
            seg acc = depot_seg(h, k);
            for (int j = i + 1; j <= nc; j++) {
                acc = merge(h, acc, node_seg(h, s->giant[j - 1]));
                if (k < K - 1 && acc.load > capk * 3 / 2 && j > i + 1) break;
                seg closed = merge(h, acc, depot_seg(h, k));
                double c = base + penalized(h, closed.dist, closed.load, closed.warp, k,
                                            h->pen_load, h->pen_warp);
                if (c < pot[(size_t)(k + 1) * w + (size_t)j]) {
                    pot[(size_t)(k + 1) * w + (size_t)j] = c;
                    from[(size_t)(k + 1) * w + (size_t)j] = i;
                }
            }
        }
    }
    s->rstart[K] = nc;
    for (int k = K, j = nc; k > 0; k--) {
        j = from[(size_t)k * w + (size_t)j];
        s->rstart[k - 1] = j;
    }
    s->rstart[0] = 0;
    indiv_evaluate(h, s);
    return OP_OK;
}

/* ---- population ---- */

static double broken_pairs(const hgs *h, const indiv *a, const indiv *b)
{
    int diff = 0;
    for (int c = 1; c <= h->nc; c++) {
        if (a->succ[c] != b->succ[c] && a->succ[c] != b->pred[c]) diff++;
        if (a->pred[c] == 0 && b->pred[c] != 0 && b->succ[c] != 0) diff++;
    }
    return (double)diff / (double)h->nc;
}

static void prox_add(indiv *a, indiv *b, double d)
{
    int x = a->n_prox++;
    while (x > 0 && a->prox_d[x - 1] > d) {
        a->prox_d[x] = a->prox_d[x - 1];
        a->prox_i[x] = a->prox_i[x - 1];
        x--;
    }
    a->prox_d[x] = d;
    a->prox_i[x] = b;
}

static void prox_remove(indiv *a, const indiv *b)
{
    for (int x = 0; x < a->n_prox; x++)
        if (a->prox_i[x] == b) {
            memmove(a->prox_d + x, a->prox_d + x + 1, (size_t)(a->n_prox - x - 1) * sizeof(double));
            memmove(a->prox_i + x, a->prox_i + x + 1,
                    (size_t)(a->n_prox - x - 1) * sizeof(indiv *));
            a->n_prox--;
            return;
        }
}

static double avg_close(const indiv *a)
{
    int k = a->n_prox < POP_CLOSE ? a->n_prox : POP_CLOSE;
    double sum = 0;
    for (int x = 0; x < k; x++)
        sum += a->prox_d[x];
    return k ? sum / k : 0;
}

static int cmp_cost(const void *x, const void *y)
{
    const indiv *a = *(indiv *const *)x, *b = *(indiv *const *)y;
    return a->penalized < b->penalized ? -1 : a->penalized > b->penalized;
}

/* Biased fitness (rank by cost + weighted rank by diversity); the pool is kept sorted by cost. */
static void update_fitness(subpop *p)
{
    int n = p->n;
    if (n == 0) return;
    if (n == 1) {
        p->v[0]->fitness = 0;
        return;
    }
    qsort(p->v, (size_t)n, sizeof p->v[0], cmp_cost);
    double div[POP_MAX];
    int rank[POP_MAX];
    for (int x = 0; x < n; x++) {
        div[x] = -avg_close(p->v[x]);
        rank[x] = x;
    }
    for (int x = 1; x < n; x++) /* insertion sort of positions by div (more diverse first) */
        for (int y = x; y > 0 && div[rank[y]] < div[rank[y - 1]]; y--) {
            int t = rank[y];
            rank[y] = rank[y - 1];
            rank[y - 1] = t;
        }
    for (int r = 0; r < n; r++) {
        int x = rank[r];
        double div_rank = (double)r / (n - 1), cost_rank = (double)x / (n - 1);
        double weight = n <= POP_ELITE ? 0 : 1.0 - (double)POP_ELITE / n;
        p->v[x]->fitness = cost_rank + weight * div_rank;
    }
}

static void remove_worst(subpop *p)
{
    update_fitness(p);
    int worst = -1, worst_clone = 0;
    double worst_fit = -1;
    for (int x = 1; x < p->n; x++) { /* never the best by cost (x = 0) */
        int clone = p->v[x]->n_prox > 0 && p->v[x]->prox_d[0] < 1e-9;
        if ((clone && !worst_clone) || (clone == worst_clone && p->v[x]->fitness > worst_fit)) {
            worst = x;
            worst_clone = clone;
            worst_fit = p->v[x]->fitness;
        }
    }
    if (worst < 0) return;
    indiv *gone = p->v[worst];
    p->v[worst] = p->v[--p->n];
    for (int x = 0; x < p->n; x++)
        prox_remove(p->v[x], gone);
    indiv_free(gone);
}

static int insert(hgs *h, const indiv *s)
{
    subpop *p = s->feasible ? &h->feas : &h->infeas;
    indiv *c = indiv_new(h);
    if (!c) return OP_ENOMEM;
    indiv_copy(h, c, s);
    for (int x = 0; x < p->n; x++) {
        double d = broken_pairs(h, c, p->v[x]);
        prox_add(c, p->v[x], d);
        prox_add(p->v[x], c, d);
    }
    p->v[p->n++] = c;
    if (p->n >= POP_MU + POP_LAMBDA)
        while (p->n > POP_MU)
            remove_worst(p);
    return OP_OK;
}

static void clear_pop(subpop *p)
{
    for (int x = 0; x < p->n; x++)
        indiv_free(p->v[x]);
    p->n = 0;
}

static const indiv *tournament(hgs *h)
{
    int total = h->feas.n + h->infeas.n;
    const indiv *pick[2];
    for (int t = 0; t < 2; t++) {
        int x = rnd_below(h, total);
        pick[t] = x < h->feas.n ? h->feas.v[x] : h->infeas.v[x - h->feas.n];
    }
    return pick[0]->fitness < pick[1]->fitness ? pick[0] : pick[1];
}

/* Ordered crossover (OX) on giant tours. */
static void crossover(hgs *h, indiv *child, const indiv *a, const indiv *b)
{
    int nc = h->nc;
    char *taken = (char *)h->tmp_b; /* n + 2 ints are plenty of bytes */
    memset(taken, 0, (size_t)h->n);
    int start = rnd_below(h, nc), end = rnd_below(h, nc);
    while (end == start && nc > 1)
        end = rnd_below(h, nc);
    int x = start;
    for (;;) {
        child->giant[x] = a->giant[x];
        taken[a->giant[x]] = 1;
        if (x == end) break;
        x = (x + 1) % nc;
    }
    int out = (end + 1) % nc;
    for (int y = 0; y < nc; y++) {
        int c = b->giant[(end + 1 + y) % nc];
        if (taken[c]) continue;
        child->giant[out] = c;
        out = (out + 1) % nc;
    }
}

/* ---- penalties ---- */

static void record_feasibility(hgs *h, const indiv *s)
{
    int slot = h->hist_n++ % PENALTY_WINDOW;
    h->load_hist[slot] = s->excess == 0;
    h->warp_hist[slot] = s->warp < 1e-9;
    if (h->hist_n % PENALTY_WINDOW) return;
    double fl = 0, fw = 0;
    for (int x = 0; x < PENALTY_WINDOW; x++) {
        fl += h->load_hist[x];
        fw += h->warp_hist[x];
    }
    fl /= PENALTY_WINDOW;
    fw /= PENALTY_WINDOW;
    if (fl < TARGET_FEASIBLE - 0.05) h->pen_load = fmin(h->pen_load * 1.2, 100000);
    if (fl > TARGET_FEASIBLE + 0.05) h->pen_load = fmax(h->pen_load * 0.85, 0.1);
    if (h->has_tw) {
        if (fw < TARGET_FEASIBLE - 0.05) h->pen_warp = fmin(h->pen_warp * 1.2, 100000);
        if (fw > TARGET_FEASIBLE + 0.05) h->pen_warp = fmax(h->pen_warp * 0.85, 0.1);
    }
    for (int x = 0; x < h->infeas.n; x++) {
        indiv *s2 = h->infeas.v[x];
        s2->penalized = s2->dist + h->pen_load * (double)s2->excess + h->pen_warp * s2->warp;
    }
}

/* ---- the search ---- */

/* The best individual as a route_solution (unchecked); the caller frees it. */
static int export_raw(const hgs *h, route_solution *out)
{
    const indiv *b = h->best;
    int rc = route_solution_alloc(out, b->n_routes, h->nc);
    if (rc != OP_OK) return rc;
    int r = 0, x = 0;
    for (int k = 0; k < h->K; k++) {
        if (b->rstart[k] == b->rstart[k + 1]) continue;
        out->start[r] = x;
        out->type[r] = h->slot_type[k];
        for (int y = b->rstart[k]; y < b->rstart[k + 1]; y++)
            out->nodes[x++] = b->giant[y];
        r++;
    }
    out->start[r] = x;
    out->cost = b->dist;
    return OP_OK;
}

static void note_best(hgs *h, const indiv *s)
{
    if (!s->feasible) return;
    if (h->best->feasible && s->dist >= h->best->dist - EPS) return;
    indiv_copy(h, h->best, s);
    h->best_found_s = now(h);
    if (h->params->on_improve) {
        route_solution sol;
        if (export_raw(h, &sol) != OP_OK) return;
        hgs_progress pr = {h->best_found_s, h->iterations, s->dist, s->n_routes, &sol};
        h->params->on_improve(h->params->ctx, &pr);
        route_solution_clear(&sol);
    }
}

/* Local search on s, insertion, and (half the time) a repair with heavier penalties. */
static int educate_and_insert(hgs *h, indiv *s)
{
    ls_load(h, s);
    local_search(h);
    ls_store(h, s);
    int rc = insert(h, s);
    if (rc != OP_OK) return rc;
    record_feasibility(h, s);
    note_best(h, s);
    if (!s->feasible && rnd_below(h, 2) == 0) {
        double pl = h->pen_load, pw = h->pen_warp;
        h->pen_load *= 10;
        h->pen_warp *= 10;
        ls_load(h, s);
        local_search(h);
        ls_store(h, s);
        h->pen_load = pl;
        h->pen_warp = pw;
        indiv_evaluate(h, s);
        if (s->feasible) {
            rc = insert(h, s);
            note_best(h, s);
        }
    }
    return rc;
}

static int out_of_time(const hgs *h)
{
    const hgs_params *p = h->params;
    if (p->stop && *p->stop) return 1;
    if (p->max_iterations && h->iterations >= p->max_iterations) return 1;
    return p->time_limit_s > 0 && now(h) >= p->time_limit_s;
}

/*
 * 4 x mu random tours, split and improved (HGS-CVRP's start). Under a time
 * limit it stops after a fifth of the limit once mu exist: on a one-second
 * budget the genetic search needs the rest more than 75 more random starts.
 */
static int initial_population(hgs *h, indiv *s)
{
    double started = now(h), limit = h->params->time_limit_s;
    for (int x = 0; x < 4 * POP_MU && !out_of_time(h); x++) {
        if (limit > 0 && x >= POP_MU && now(h) - started > 0.2 * limit) break;
        for (int c = 0; c < h->nc; c++)
            s->giant[c] = c + 1;
        shuffle(h, s->giant, h->nc);
        split(h, s);
        int rc = educate_and_insert(h, s);
        if (rc != OP_OK) return rc;
    }
    return OP_OK;
}

/* Puts a checkpoint's routes into slots of matching vehicle types. */
static int load_start(hgs *h, indiv *s, const route_solution *start, char *err, size_t err_len)
{
    char *used_slot = calloc((size_t)h->K, 1);
    char *seen = calloc((size_t)h->n, 1);
    int rc = OP_OK;
    if (!used_slot || !seen) {
        rc = OP_ENOMEM;
        goto out;
    }
    int *slot_of_route = calloc((size_t)start->n_routes + 1, sizeof(int));
    if (!slot_of_route) {
        rc = OP_ENOMEM;
        goto out;
    }
    for (int r = 0; r < start->n_routes && rc == OP_OK; r++) {
        int k = 0;
        while (k < h->K && (used_slot[k] || h->slot_type[k] != start->type[r]))
            k++;
        if (k == h->K) {
            snprintf(err, err_len, "checkpoint: more routes of type %d than vehicles",
                     start->type[r]);
            rc = OP_EINVAL;
        } else {
            used_slot[k] = 1;
            slot_of_route[r] = k;
        }
    }
    int x = 0;
    for (int k = 0; k < h->K && rc == OP_OK; k++) {
        s->rstart[k] = x;
        for (int r = 0; r < start->n_routes; r++) {
            if (slot_of_route[r] != k || !used_slot[k]) continue;
            for (int y = start->start[r]; y < start->start[r + 1] && rc == OP_OK; y++) {
                int c = start->nodes[y];
                if (c < 1 || c > h->nc || seen[c]++ || x >= h->nc) {
                    snprintf(err, err_len, "checkpoint: customer %d is unknown or repeated", c);
                    rc = OP_EINVAL;
                } else {
                    s->giant[x++] = c;
                }
            }
        }
    }
    if (rc == OP_OK && x != h->nc) {
        snprintf(err, err_len, "checkpoint: %d of %d customers", x, h->nc);
        rc = OP_EINVAL;
    }
    s->rstart[h->K] = x;
    free(slot_of_route);
out:
    free(used_slot);
    free(seen);
    return rc;
}

static int cmp_slot(const void *x, const void *y, void *ctx)
{
    const route_instance *inst = ctx;
    int64_t a = inst->types[*(const int *)x].capacity, b = inst->types[*(const int *)y].capacity;
    if (a != b) return a > b ? -1 : 1;
    return *(const int *)x - *(const int *)y;
}

static int setup(hgs *h, const route_instance *inst, const hgs_params *params)
{
    h->inst = inst;
    h->params = params;
    h->n = inst->n;
    h->nc = inst->n - 1;
    h->has_tw = inst->has_windows;
    h->rng = params->seed ^ 0x5eedf00dULL;
    h->granular = params->granular > 0 ? params->granular : 20;
    if (h->granular > h->nc - 1) h->granular = h->nc - 1 > 0 ? h->nc - 1 : 0;
    size_t n = (size_t)h->n;
    /* vehicle slots: as many as each type has, or enough for its share when unlimited */
    int64_t total_demand = 0, max_demand = 1;
    for (int c = 1; c < h->n; c++) {
        total_demand += inst->demand[c];
        if (inst->demand[c] > max_demand) max_demand = inst->demand[c];
    }
    int K = 0, count[ROUTE_MAX_TYPES];
    for (int t = 0; t < inst->n_types; t++) {
        count[t] = inst->types[t].count; /* unlimited: HGS-CVRP's bound on the routes needed */
        if (!count[t])
            count[t] = (int)ceil(1.3 * (double)total_demand / (double)inst->types[t].capacity) + 3;
        if (count[t] > h->nc) count[t] = h->nc;
        K += count[t];
    }
    h->K = K;
    h->slot_type = calloc((size_t)K, sizeof(int));
    if (!h->slot_type) return OP_ENOMEM;
    for (int t = 0, k = 0; t < inst->n_types; t++)
        for (int x = 0; x < count[t]; x++)
            h->slot_type[k++] = t;
    qsort_r(h->slot_type, (size_t)K, sizeof(int), cmp_slot, (void *)inst);
    h->D = malloc(n * n * sizeof(double));
    h->demand = calloc(n, sizeof(int64_t));
    h->ready = calloc(n, sizeof(double));
    h->due = calloc(n, sizeof(double));
    h->service = calloc(n, sizeof(double));
    h->stride = h->n + 2;
    size_t cells = (size_t)K * (size_t)h->stride;
    h->rn = calloc(cells, sizeof(int));
    h->rlen = calloc((size_t)K, sizeof(int));
    h->pre = calloc(cells, sizeof(seg));
    h->suf = calloc(cells, sizeof(seg));
    h->rcum = calloc(cells, sizeof(double));
    h->cd = calloc(cells, sizeof(double));
    h->cl = calloc(cells, sizeof(int64_t));
    h->slot_cap = calloc((size_t)K, sizeof(int64_t));
    h->rcost = calloc((size_t)K, sizeof(double));
    h->rpen = calloc((size_t)K, sizeof(double));
    h->route_of = calloc(n, sizeof(int));
    h->pos_of = calloc(n, sizeof(int));
    h->order = calloc(n, sizeof(int));
    h->modified = calloc((size_t)K, sizeof(long));
    h->tested = calloc(n, sizeof(long));
    h->swapstar_tested = calloc((size_t)K, sizeof(long));
    h->angle = calloc(n, sizeof(int));
    h->sector_start = calloc((size_t)K, sizeof(int));
    h->sector_end = calloc((size_t)K, sizeof(int));
    h->ins_cost = calloc((n + 2) * 3, sizeof(double));
    h->ins_pos = calloc((n + 2) * 3, sizeof(int));
    h->tmp_a = calloc(n + 2, sizeof(int));
    h->tmp_b = calloc(n + 2, sizeof(int));
    h->pot = calloc((size_t)(K + 1) * (n + 1), sizeof(double));
    h->from = calloc((size_t)(K + 1) * (n + 1), sizeof(int));
    h->neigh = calloc(n * (size_t)(h->granular + 1), sizeof(int));
    h->best = indiv_new(h);
    if (!h->D || !h->demand || !h->ready || !h->due || !h->service || !h->rn || !h->rlen ||
        !h->pre || !h->suf || !h->rcum || !h->cd || !h->cl || !h->slot_cap || !h->rcost ||
        !h->rpen || !h->route_of || !h->pos_of || !h->order || !h->modified || !h->tested ||
        !h->swapstar_tested || !h->angle || !h->sector_start || !h->sector_end || !h->ins_cost ||
        !h->ins_pos || !h->tmp_a || !h->tmp_b || !h->pot || !h->from || !h->neigh || !h->best)
        return OP_ENOMEM;
    for (int k = 0; k < K; k++)
        h->slot_cap[k] = inst->types[h->slot_type[k]].capacity;
    double max_dist = 0;
    for (int i = 0; i < h->n; i++)
        for (int j = 0; j < h->n; j++) {
            double d = route_distance(inst, i, j);
            h->D[(size_t)i * n + (size_t)j] = d;
            if (d > max_dist) max_dist = d;
        }
    for (int i = 0; i < h->n; i++) {
        h->demand[i] = i ? inst->demand[i] : 0;
        h->ready[i] = h->has_tw ? inst->ready[i] : 0;
        h->due[i] = h->has_tw ? inst->due[i] : BIG;
        h->service[i] = h->has_tw ? inst->service[i] : 0;
    }
    for (int c = 0; c < h->nc; c++)
        h->order[c] = c + 1;
    for (int i = 0; i < h->n; i++) /* polar angles, for SWAP*'s route sectors */
        h->angle[i] =
            inst->matrix
                ? -1
                : pmod((int)(32768.0 * atan2(inst->y[i] - inst->y[0], inst->x[i] - inst->x[0]) /
                             M_PI));
    h->pen_load = fmax(0.1, fmin(1000, max_dist / (double)max_demand));
    h->pen_warp = 1.0;
    /* granular neighbourhoods: the closest customers, with time windows counted (PyVRP's measure)
     */
    double *key = malloc(n * sizeof(double));
    int *idx = malloc(n * sizeof(int));
    if (!key || !idx) {
        free(key);
        free(idx);
        return OP_ENOMEM;
    }
    for (int i = 1; i < h->n; i++) {
        int m = 0;
        for (int j = 1; j < h->n; j++) {
            if (j == i) continue;
            double prox = dist(h, i, j);
            if (h->has_tw) {
                double a = prox +
                           0.2 * fmax(0, h->ready[j] - h->service[i] - dist(h, i, j) - h->due[i]) +
                           fmax(0, h->ready[i] + h->service[i] + dist(h, i, j) - h->due[j]);
                double b = dist(h, j, i) +
                           0.2 * fmax(0, h->ready[i] - h->service[j] - dist(h, j, i) - h->due[j]) +
                           fmax(0, h->ready[j] + h->service[j] + dist(h, j, i) - h->due[i]);
                prox = fmin(a, b);
            }
            key[m] = prox;
            idx[m++] = j;
        }
        /* partial selection sort: granular is small */
        for (int g = 0; g < h->granular; g++) {
            int bestx = g;
            for (int x = g + 1; x < m; x++)
                if (key[x] < key[bestx] || (key[x] == key[bestx] && idx[x] < idx[bestx])) bestx = x;
            double tk = key[g];
            int ti = idx[g];
            key[g] = key[bestx];
            idx[g] = idx[bestx];
            key[bestx] = tk;
            idx[bestx] = ti;
            h->neigh[(size_t)i * (size_t)h->granular + (size_t)g] = idx[g];
        }
    }
    free(key);
    free(idx);
    return OP_OK;
}

static void teardown(hgs *h)
{
    clear_pop(&h->feas);
    clear_pop(&h->infeas);
    indiv_free(h->best);
    free(h->slot_type);
    free(h->D);
    free(h->demand);
    free(h->ready);
    free(h->due);
    free(h->service);
    free(h->rn);
    free(h->rlen);
    free(h->pre);
    free(h->suf);
    free(h->rcum);
    free(h->cd);
    free(h->cl);
    free(h->slot_cap);
    free(h->rcost);
    free(h->rpen);
    free(h->route_of);
    free(h->pos_of);
    free(h->order);
    free(h->modified);
    free(h->tested);
    free(h->swapstar_tested);
    free(h->angle);
    free(h->sector_start);
    free(h->sector_end);
    free(h->ins_cost);
    free(h->ins_pos);
    free(h->tmp_a);
    free(h->tmp_b);
    free(h->pot);
    free(h->from);
    free(h->neigh);
}

int hgs_solve(const route_instance *inst, const hgs_params *params, route_solution *best,
              hgs_stats *stats, char *err, size_t err_len)
{
    memset(best, 0, sizeof *best);
    if (params->time_limit_s <= 0 && params->max_iterations <= 0) {
        snprintf(err, err_len, "set a time limit or an iteration limit");
        return OP_EINVAL;
    }
    if (params->time_limit_s > 0 && !params->now_s) {
        snprintf(err, err_len, "a time limit needs a clock (now_s)");
        return OP_EINVAL;
    }
    if (inst->n < 2) {
        snprintf(err, err_len, "no customers");
        return OP_EINVAL;
    }
    int rc = route_precheck(inst, err, err_len);
    if (rc != OP_OK) return rc;
    hgs h;
    memset(&h, 0, sizeof h);
    h.start_s = params->now_s ? params->now_s() : 0;
    indiv *s = NULL;
    if ((rc = setup(&h, inst, params)) != OP_OK) goto out;
    s = indiv_new(&h);
    if (!s) {
        rc = OP_ENOMEM;
        goto out;
    }
    if (params->start) {
        if ((rc = load_start(&h, s, params->start, err, err_len)) != OP_OK) goto out;
        indiv_evaluate(&h, s);
        note_best(&h, s);
        if ((rc = educate_and_insert(&h, s)) != OP_OK) goto out;
    }
    if ((rc = initial_population(&h, s)) != OP_OK) goto out;
    long restart_after = params->restart_after > 0 ? params->restart_after : 20000;
    long since_improvement = 0;
    double best_seen = h.best->feasible ? h.best->dist : BIG;
    while (!out_of_time(&h) && h.feas.n + h.infeas.n > 0) {
        h.iterations++;
        update_fitness(&h.feas);
        update_fitness(&h.infeas);
        const indiv *a = tournament(&h), *b = tournament(&h);
        crossover(&h, s, a, b);
        split(&h, s);
        if ((rc = educate_and_insert(&h, s)) != OP_OK) goto out;
        if (h.best->feasible && h.best->dist < best_seen - EPS) {
            best_seen = h.best->dist;
            since_improvement = 0;
        } else if (++since_improvement >= restart_after) {
            clear_pop(&h.feas);
            clear_pop(&h.infeas);
            h.restarts++;
            since_improvement = 0;
            if ((rc = initial_population(&h, s)) != OP_OK) goto out;
        }
    }
    if (!h.best->feasible) {
        snprintf(err, err_len, "no feasible solution found in %.1f s (%ld iterations)", now(&h),
                 h.iterations);
        rc = OP_EINVAL;
        goto out;
    }
    if ((rc = export_raw(&h, best)) == OP_OK &&
        (rc = route_check_solution(inst, best, err, err_len)) != OP_OK)
        route_solution_clear(best);
    if (stats) {
        stats->iterations = h.iterations;
        stats->restarts = h.restarts;
        stats->moves = h.moves;
        stats->elapsed_s = now(&h);
        stats->best_found_s = h.best_found_s;
    }
out:
    indiv_free(s);
    teardown(&h);
    return rc;
}
