/*
 * hgs_ls: the local search of the solver. Each route slot holds its nodes
 * in a position array with prefix and suffix segment summaries, so that a
 * move (rebuilding one or two routes from pieces of existing ones) is
 * evaluated in O(pieces) and applied only when it lowers the penalized cost.
 * Neighbourhoods are granular (the nearest customers of each), as in
 * HGS-CVRP, plus SWAP* between routes whose sectors overlap.
 */
#include "base/err.h"
#include "route/hgs_int.h"

#include <string.h>

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
    if (m) h->rcost[k] += vehicle_cost(h, k, all, 1);
    sector_update(h, k);
    h->modified[k] = h->moves;
}

void hgs__route_update(hgs *h, int k)
{
    route_update(h, k);
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
 * improve once time warp is counted. With windows the filter also counts
 * the time warp of the pieces that are a route's prefix or suffix: a route's
 * warp is at least the sum of its pieces' (a merge only adds to it). The
 * plans stay the same; the full merges fall by 37-62% in route minimisation
 * (R109, RC102, R201, --objective vehicles --iterations 1) and by 22-36% in
 * 1,000 iterations of the genetic search (also C101), where late routes are
 * rarer than in a squeeze; such a route-minimisation run takes 4-12% less
 * time (R109 1.03 -> 0.91 s, RC102 1.19 -> 1.14 s, best of 3).
 */
static double eval_fast(const hgs *h, const piece *ps, int np, int k)
{
    double d = 0, warp = 0;
    int64_t load = 0;
    int last = -1, nodes_in = 0;
    for (int x = 0; x < np; x++) {
        const piece *p = &ps[x];
        if (p->i > p->j) continue;
        nodes_in += p->j - p->i + 1;
        size_t base = (size_t)p->k * (size_t)h->stride;
        const int *nodes = h->rn + base;
        int first_node, last_node;
        if (!p->rev) {
            d += h->cd[base + (size_t)p->j] - h->cd[base + (size_t)p->i];
            first_node = nodes[p->i];
            last_node = nodes[p->j];
            if (p->i == 0)
                warp += PRE(h, p->k, p->j).warp;
            else if (p->j == h->rlen[p->k])
                warp += SUF(h, p->k, p->i).warp;
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
    double cost = d + (excess > 0 ? h->pen_load * (double)excess : 0) + h->pen_warp * warp;
    if (nodes_in > 1) { /* more than the start depot: a vehicle goes out */
        seg closed = {.dist = d};
        /* with windows the hourly cost waits for eval_full: a lower bound here */
        cost += h->has_tw ? h->slot_fixed[k] + h->fleet_m : vehicle_cost(h, k, closed, 1);
    }
    return cost;
}

static double eval_full(const hgs *h, const piece *ps, int np, int k)
{
    seg acc = {0};
    int started = 0, nodes_in = 0;
    for (int x = 0; x < np; x++) {
        if (ps[x].i > ps[x].j) continue;
        nodes_in += ps[x].j - ps[x].i + 1;
        seg s = piece_seg(h, ps[x]);
        acc = started ? merge(h, acc, s) : s;
        started = 1;
    }
    acc = merge(h, acc, depot_seg(h, k));
    return penalized(h, acc.dist, acc.load, acc.warp, k, h->pen_load, h->pen_warp) +
           (nodes_in > 1 ? vehicle_cost(h, k, acc, 1) : 0);
}

void hgs__eval_both(const hgs *h, const piece *ps, int np, int k, double *fast, double *full)
{
    *fast = eval_fast(h, ps, np, k);
    *full = eval_full(h, ps, np, k);
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

/*
 * The load penalty of slot k carrying load: a lower bound of a route's
 * penalty after a move (only time warp adds to it), exact without windows.
 * The filters add it only for moves that leave both routes with stops: one
 * that empties a route also saves its vehicle's costs (with vehicles first,
 * more than an overload costs).
 */
static inline double load_pen(const hgs *h, int k, int64_t load)
{
    int64_t excess = load - h->slot_cap[k];
    return excess > 0 ? h->pen_load * (double)excess : 0;
}

/*
 * Distance change d passes: below pens, then without windows also with the
 * routes' loads after the move, which makes the filter exact for CVRP (with
 * windows most moves that pass the distance fail on time warp, and the load
 * test cost R101 5% more instructions than it saved). Not with an hourly
 * cost, where a fall in distance saves more than itself.
 */
static inline int passes(const hgs *h, double d, double pens, int ku, int64_t load_u, int kv,
                         int64_t load_v)
{
    if (d >= pens) return 0;
    if (h->has_tw || h->slot_hourly[ku] > 0 || h->slot_hourly[kv] > 0) return 1;
    return d + load_pen(h, ku, load_u) + load_pen(h, kv, load_v) < pens;
}

/*
 * Swaps between U's route and V's (pv >= 1): U and V; (U, X) and V; (U, X)
 * and (V, Y), each after its distance filter (swaps never empty a route, so
 * the filters hold with vehicle costs too).
 */
static int swaps_inter(hgs *h, int u, int kv, int pv, double pens)
{
    int ku = h->route_of[u], pu = h->pos_of[u], mu = h->rlen[ku], mv = h->rlen[kv];
    int pu_node = RN(h, ku, pu - 1), x_node = RN(h, ku, pu + 1);
    int v_node = RN(h, kv, pv), y_node = RN(h, kv, pv + 1);
    int xx_node = pu < mu ? RN(h, ku, pu + 2) : 0;
    int64_t lu = 0, lv = 0, du = 0, dv = 0, dx = 0, dy = 0; /* read only for passes() */
    if (!h->has_tw) {
        lu = CL(h, ku, mu), lv = CL(h, kv, mv), du = h->demand[u], dv = h->demand[v_node];
        dx = h->demand[x_node], dy = h->demand[y_node];
    }
    piece a[4], b[4];
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
    if (passes(h, swap, pens, ku, lu - du + dv, kv, lv + du - dv) &&
        try_move(h, a, 3, ku, b, 3, kv))
        return 1;
    if (pu < mu) {
        a[2] = P(ku, pu + 2, mu, 0);
        b[1] = P(ku, pu, pu + 1, 0);
        double out_u = dist(h, pu_node, v_node) + dist(h, v_node, xx_node) - dist(h, pu_node, u) -
                       dist(h, x_node, xx_node) + dist(h, pv_node, u) - dist(h, pv_node, v_node);
        if (passes(h, out_u + dist(h, x_node, y_node) - dist(h, v_node, y_node), pens, ku,
                   lu - du - dx + dv, kv, lv + du + dx - dv) &&
            try_move(h, a, 3, ku, b, 3, kv))
            return 1;
        if (pv < mv) {
            a[1] = P(kv, pv, pv + 1, 0);
            b[2] = P(kv, pv + 2, mv, 0);
            int yy_node = RN(h, kv, pv + 2);
            double both = out_u - dist(h, v_node, xx_node) + dist(h, y_node, xx_node) +
                          dist(h, x_node, yy_node) - dist(h, y_node, yy_node);
            if (passes(h, both, pens, ku, lu - du - dx + dv + dy, kv, lv + du + dx - dv - dy) &&
                try_move(h, a, 3, ku, b, 3, kv))
                return 1;
        }
    }
    return 0;
}

/*
 * The other 2-opt* (HGS-CVRP's move 8): (U, X) and (V, Y) become (U, V)
 * and (X, Y), so U's route goes on with V's head backwards and V's route
 * starts with U's tail backwards. Only where reversing a stretch keeps its
 * cost (no windows, a symmetric matrix), so the distance filter holds.
 */
static int two_opt_star_crossed(hgs *h, int u, int kv, int pv, double pens)
{
    int ku = h->route_of[u], pu = h->pos_of[u], mu = h->rlen[ku], mv = h->rlen[kv];
    int x_node = RN(h, ku, pu + 1), v_node = RN(h, kv, pv), y_node = RN(h, kv, pv + 1);
    int64_t head_u = CL(h, ku, pu), head_v = CL(h, kv, pv);
    double delta =
        dist(h, u, v_node) + dist(h, x_node, y_node) - dist(h, u, x_node) - dist(h, v_node, y_node);
    if (pu == mu && pv == mv ? delta >= pens /* V's route would be left empty */
                             : !passes(h, delta, pens, ku, head_u + head_v, kv,
                                       CL(h, ku, mu) - head_u + CL(h, kv, mv) - head_v))
        return 0;
    piece a[2] = {P(ku, 0, pu, 0), P(kv, 1, pv, 1)};
    piece b[3] = {P(kv, 0, 0, 0), P(ku, pu + 1, mu, 1), P(kv, pv + 1, mv, 0)};
    return try_move(h, a, 2, ku, b, 3, kv);
}

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
    int64_t lu = 0, lv = 0, du = 0, dx = 0, head_u = 0, head_v = 0; /* read only for passes() */
    if (!h->has_tw) {
        lu = CL(h, ku, mu), lv = CL(h, kv, mv), du = h->demand[u], dx = h->demand[x_node];
        head_u = CL(h, ku, pu), head_v = CL(h, kv, pv);
    }
    double remove_u = dist(h, pu_node, x_node) - dist(h, pu_node, u) - dist(h, u, x_node);
    /* relocate U after V */
    a[0] = P(ku, 0, pu - 1, 0);
    a[1] = P(ku, pu + 1, mu, 0);
    b[0] = P(kv, 0, pv, 0);
    b[1] = P(ku, pu, pu, 0);
    b[2] = P(kv, pv + 1, mv, 0);
    double relocate = remove_u + dist(h, v_node, u) + dist(h, u, y_node) - dist(h, v_node, y_node);
    if ((mu > 1 ? passes(h, relocate, pens, ku, lu - du, kv, lv + du) : relocate < pens) &&
        try_move(h, a, 2, ku, b, 3, kv))
        return 1;
    if (pu < mu) {
        /* the filters hold when route U keeps a customer (else it also saves a vehicle's costs) */
        int xx_node = RN(h, ku, pu + 2);
        double remove_ux =
            dist(h, pu_node, xx_node) - dist(h, pu_node, u) - dist(h, x_node, xx_node);
        /* relocate (U, X) and (X, U) after V */
        a[1] = P(ku, pu + 2, mu, 0);
        b[1] = P(ku, pu, pu + 1, 0);
        int64_t dux = du + dx;
        double gap = remove_ux - dist(h, v_node, y_node);
        int keeps = mu > 2;
        if ((!keeps || passes(h, gap + dist(h, v_node, u) + dist(h, x_node, y_node), pens, ku,
                              lu - dux, kv, lv + dux)) &&
            try_move(h, a, 2, ku, b, 3, kv))
            return 1;
        b[1].rev = 1;
        double turn = dist(h, x_node, u) - dist(h, u, x_node); /* 0 unless asymmetric */
        if ((!keeps || passes(h, gap + turn + dist(h, v_node, x_node) + dist(h, u, y_node), pens,
                              ku, lu - dux, kv, lv + dux)) &&
            try_move(h, a, 2, ku, b, 3, kv))
            return 1;
    }
    if (pv >= 1 && swaps_inter(h, u, kv, pv, pens)) return 1;
    /* 2-opt*: exchange the tails after U and after V */
    a[0] = P(ku, 0, pu, 0);
    a[1] = P(kv, pv + 1, mv, 0);
    b[0] = P(kv, 0, pv, 0);
    b[1] = P(ku, pu + 1, mu, 0);
    double tails =
        dist(h, u, y_node) + dist(h, v_node, x_node) - dist(h, u, x_node) - dist(h, v_node, y_node);
    if ((pv == 0 && pu == mu
             ? tails < pens /* V's route would be left empty */
             : passes(h, tails, pens, ku, head_u + lv - head_v, kv, head_v + lu - head_u)) &&
        try_move(h, a, 2, ku, b, 2, kv))
        return 1;
    return h->reversible && two_opt_star_crossed(h, u, kv, pv, pens);
}

/*
 * What the moves of U (at position pu of its route) relative to V (at pv,
 * 0: the depot) within their route change in distance, BIG where a move
 * does not apply: U after V; (U, X) after V either way round; U and V
 * swapped; the stretch between them reversed (2-opt).
 */
void hgs__intra_deltas(const hgs *h, int u, int pv, double *d)
{
    int k = h->route_of[u], pu = h->pos_of[u], m = h->rlen[k];
    int pu_node = RN(h, k, pu - 1), x_node = RN(h, k, pu + 1);
    int v_node = RN(h, k, pv), y_node = RN(h, k, pv + 1);
    for (int i = 0; i < INTRA_MOVES; i++)
        d[i] = BIG;
    if (pv != pu && pv != pu - 1)
        d[INTRA_RELOCATE] = dist(h, pu_node, x_node) - dist(h, pu_node, u) - dist(h, u, x_node) +
                            dist(h, v_node, u) + dist(h, u, y_node) - dist(h, v_node, y_node);
    if (pu < m && (pv < pu - 1 || pv > pu + 1)) {
        int xx_node = RN(h, k, pu + 2);
        double out = dist(h, pu_node, xx_node) - dist(h, pu_node, u) - dist(h, x_node, xx_node) -
                     dist(h, v_node, y_node);
        d[INTRA_PAIR] = out + dist(h, v_node, u) + dist(h, x_node, y_node);
        d[INTRA_PAIR_REVERSED] = out + dist(h, v_node, x_node) + dist(h, u, y_node) +
                                 dist(h, x_node, u) - dist(h, u, x_node);
    }
    if (pv == pu) return;
    int lo = pu < pv ? pu : pv, hi = pu < pv ? pv : pu;
    int l_node = RN(h, k, lo), h_node = RN(h, k, hi), after = RN(h, k, hi + 1);
    int l_next = RN(h, k, lo + 1), h_prev = RN(h, k, hi - 1);
    int before = lo ? RN(h, k, lo - 1) : 0;
    if (pv >= 1 && hi == lo + 1) /* no swap with the depot */
        d[INTRA_SWAP] = dist(h, before, h_node) + dist(h, h_node, l_node) + dist(h, l_node, after) -
                        dist(h, before, l_node) - dist(h, l_node, h_node) - dist(h, h_node, after);
    else if (pv >= 1)
        d[INTRA_SWAP] = dist(h, before, h_node) + dist(h, h_node, l_next) +
                        dist(h, h_prev, l_node) + dist(h, l_node, after) - dist(h, before, l_node) -
                        dist(h, l_node, l_next) - dist(h, h_prev, h_node) - dist(h, h_node, after);
    if (hi - lo >= 2) {
        /* the stretch lo+1..hi backwards costs its reversed sums (the same when symmetric) */
        double turn = RCUM(h, k, hi) - RCUM(h, k, lo + 1) - (CD(h, k, hi) - CD(h, k, lo + 1));
        d[INTRA_TWO_OPT] = dist(h, l_node, h_node) + dist(h, l_next, after) -
                           dist(h, l_node, l_next) - dist(h, h_node, after) + turn;
    }
}

/*
 * The moves above, each after a distance-only filter as between routes: a
 * move within a route keeps its load, so its penalized cost can fall only by
 * what the distance falls plus the route's penalty now. Not with windows
 * and an hourly cost, where a longer route may wait less. A profile of
 * X-n214-k11 (routes of 20 stops, many neighbours in the same route) had
 * these moves' unfiltered evaluations at a third of the instructions.
 */
static int moves_intra(hgs *h, int u, int pv)
{
    int k = h->route_of[u], pu = h->pos_of[u], m = h->rlen[k];
    double pens = h->has_tw && h->slot_hourly[k] > 0 ? BIG : h->rpen[k] - EPS;
    double d[INTRA_MOVES];
    hgs__intra_deltas(h, u, pv, d);
    piece a[5];
    if (d[INTRA_RELOCATE] < pens) { /* relocate U after V */
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
    for (int rev = 0; rev < 2; rev++) { /* relocate (U, X) after V, either way round */
        if (d[rev ? INTRA_PAIR_REVERSED : INTRA_PAIR] >= pens) continue;
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
    int lo = pu < pv ? pu : pv, hi = pu < pv ? pv : pu;
    if (d[INTRA_SWAP] < pens) { /* swap U and V */
        a[0] = P(k, 0, lo - 1, 0);
        a[1] = P(k, hi, hi, 0);
        a[2] = P(k, lo + 1, hi - 1, 0);
        a[3] = P(k, lo, lo, 0);
        a[4] = P(k, hi + 1, m, 0);
        if (try_move(h, a, 5, k, NULL, 0, k)) return 1;
    }
    if (d[INTRA_TWO_OPT] < pens) { /* 2-opt: reverse the stretch between them */
        a[0] = P(k, 0, lo, 0);
        a[1] = P(k, lo + 1, hi, 1);
        a[2] = P(k, hi + 1, m, 0);
        if (try_move(h, a, 3, k, NULL, 0, k)) return 1;
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

/*
 * The three cheapest places (positions to insert after) of customer u in
 * route to, whose edges are edge[0..m]. With a symmetric matrix d(a, u) is
 * the d(u, b) of the place before: one lookup per place, in u's row.
 */
static void three_places(const hgs *h, int u, int to, const double *edge, double *c, int *pos)
{
    int mt = h->rlen[to];
    const int *nodes = &RN(h, to, 0);
    const double *row = h->D + (size_t)u * (size_t)h->n;
    double in = dist(h, nodes[0], u);
    c[0] = c[1] = c[2] = BIG;
    pos[0] = pos[1] = pos[2] = -1;
    for (int q = 0; q <= mt; q++) {
        int b = nodes[q + 1];
        double out = row[b];
        double d = in + out - edge[q];
        in = h->symmetric ? out : dist(h, b, u);
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

/*
 * Route k's edges into edge[0..m] and what taking each stop out saves into
 * gain[1..m] (negative: the cost of the detour it was).
 */
static void route_edges(const hgs *h, int k, double *edge, double *gain)
{
    int m = h->rlen[k];
    const int *nodes = &RN(h, k, 0);
    for (int q = 0; q <= m; q++)
        edge[q] = dist(h, nodes[q], nodes[q + 1]);
    for (int p = 1; p <= m; p++)
        gain[p] = dist(h, nodes[p - 1], nodes[p + 1]) - edge[p - 1] - edge[p];
}

/* The places of every customer of route from in route to, into the scratch slots from slot_base. */
static void swapstar_preprocess(hgs *h, int from, int to, const double *to_edge, int slot_base)
{
    for (int p = 1; p <= h->rlen[from]; p++)
        three_places(h, RN(h, from, p), to, to_edge, h->ins_cost + (size_t)(slot_base + p) * 3,
                     h->ins_pos + (size_t)(slot_base + p) * 3);
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
    /* route k1's edges and gains at 0.., k2's after them */
    double *edge1 = h->swap_edge, *edge2 = h->swap_edge + m1 + 1;
    double *gain1 = h->swap_gain, *gain2 = h->swap_gain + m1 + 1;
    route_edges(h, k1, edge1, gain1);
    route_edges(h, k2, edge2, gain2);
    swapstar_preprocess(h, k1, k2, edge2, 0);
    swapstar_preprocess(h, k2, k1, edge1, m1 + 1);
    int64_t load1 = CL(h, k1, m1), load2 = CL(h, k2, m2);
    double best = -EPS;
    int bu = -1, bv = -1, bqu = -1, bqv = -1;
    for (int pu = 1; pu <= m1; pu++) {
        int u = RN(h, k1, pu);
        double remove_u = gain1[pu];
        for (int pv = 1; pv <= m2; pv++) {
            int v = RN(h, k2, pv);
            int64_t new1 = load1 - h->demand[u] + h->demand[v],
                    new2 = load2 + h->demand[u] - h->demand[v];
            int64_t ex1 = new1 - h->slot_cap[k1], ex2 = new2 - h->slot_cap[k2];
            double pen = (ex1 > 0 ? h->pen_load * (double)ex1 : 0) +
                         (ex2 > 0 ? h->pen_load * (double)ex2 : 0) - h->rpen[k1] - h->rpen[k2];
            double remove_v = gain2[pv];
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

void hgs__local_search(hgs *h)
{
    hgs__local_search_from(h, -1);
}

/*
 * focus >= 0: the plan was searched before and only route focus changed
 * since, so every stop and route pair counts as tested at the start but those
 * touching focus (and, as moves apply, the routes they change). Route
 * minimisation's squeeze searches so: a full search from every stop took
 * about as long a squeeze (0.5-0.6 ms on 100 customers) and left more vans
 * over the Solomon set at 1 s (410.6 against 409.3, mean of 8 seeds).
 */
void hgs__local_search_from(hgs *h, int focus)
{
    long start = focus >= 0 ? h->moves : -1;
    for (int k = 0; k < h->K; k++) {
        route_update(h, k);
        h->swapstar_tested[k] = start;
    }
    if (focus >= 0) h->modified[focus] = start + 1;
    shuffle(h, h->order, h->nc);
    for (int c = 1; c <= h->nc; c++) {
        h->tested[c] = start;
        shuffle(h, h->neigh + (size_t)c * (size_t)h->granular, h->granular);
    }
    int improved = 1;
    /* as HGS-CVRP: the second pass always runs, since only it tries opening routes */
    for (int loop = 0; improved || loop < 2; loop++) {
        improved = 0;
        for (int x = 0; x < h->nc; x++) {
            /* a first local search on 1,000+ customers takes longer than a short limit */
            if ((x & 31) == 31 && hgs__time_up(h)) return;
            int u = h->order[x];
            if (h->route_of[u] < 0) continue; /* in route minimisation's pool */
            long last = h->tested[u];
            h->tested[u] = h->moves;
            const int *nb = h->neigh + (size_t)u * (size_t)h->granular;
            for (int y = 0; y < h->granular; y++) {
                int v = nb[y];
                if (h->route_of[v] < 0) continue;
                long mod = h->modified[h->route_of[u]];
                if (h->modified[h->route_of[v]] > mod) mod = h->modified[h->route_of[v]];
                if ((loop > 0 || focus >= 0) && mod <= last) continue;
                if (moves_pair(h, u, v)) improved = 1;
            }
            if (loop > 0 && !h->fleet_locked && moves_empty(h, u)) improved = 1;
        }
        for (int k1 = 0; k1 < h->K; k1++) {
            if (!h->rlen[k1]) continue;
            if (hgs__time_up(h)) return;
            long last = h->swapstar_tested[k1];
            h->swapstar_tested[k1] = h->moves;
            for (int k2 = k1 + 1; k2 < h->K; k2++) {
                if (!h->rlen[k2] || !h->rlen[k1]) continue;
                long mod = h->modified[k1] > h->modified[k2] ? h->modified[k1] : h->modified[k2];
                if ((loop > 0 || focus >= 0) && mod <= last) continue;
                if (sectors_overlap(h, k1, k2) && swapstar(h, k1, k2)) improved = 1;
            }
        }
    }
}
