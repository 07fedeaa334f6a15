/*
 * Unit test of route minimisation's choice of place for a stop
 * (src/route/hgs_fleet.c, through hgs__fleet_place): on feasible windowed
 * plans with random absence counters, each stop in turn is taken out and the
 * choice is compared with a brute force over every route, every single and
 * pair of stops ejected and every gap, whose feasibility is walked here
 * (arrival, wait, service, travel, load), not taken from the solver's
 * summaries. Without ejection the place must be the cheapest feasible one;
 * with ejection the summed absence the least, and at equal absence the fewer
 * stops (a pair of easy stops beats a single hard one). The pruning of the
 * search may skip sets but never the best.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "helpers/routegen.h"
#include "route/hgs.h"
#include "route/hgs_int.h"
#include "route/route.h"
#include "route/routeio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define below routegen_below

/* An instance of n customers with windows `width` wide and demands of 5 to 20. */
static route_instance windowed(int n, int width, uint32_t seed)
{
    routegen_spec spec = {n, seed, 4, width, 1000, 5, 16};
    route_instance inst;
    char err[256] = "";
    if (routegen_windowed(&spec, &inst, err, sizeof err) != OP_OK) fail_msg("parse: %s", err);
    return inst;
}

/* Whether the stops r[0..len) make a feasible route of slot k, walked stop by stop. */
static int walk_ok(const hgs *h, int k, const int *r, int len)
{
    const route_vehicle *v = &h->inst->types[h->slot_type[k]];
    double t = v->shift_start;
    int64_t load = 0;
    int prev = 0;
    for (int i = 0; i < len; i++) {
        int c = r[i];
        t += h->service[prev] + h->D[(size_t)prev * (size_t)h->n + (size_t)c];
        if (t < h->ready[c]) t = h->ready[c];
        if (t > h->due[c] + 1e-7) return 0;
        load += h->demand[c];
        prev = c;
    }
    t += h->service[prev] + h->D[(size_t)prev * (size_t)h->n];
    return t <= v->shift_end + 1e-7 && load <= h->slot_cap[k];
}

static double walk_dist(const hgs *h, const int *r, int len)
{
    double d = 0;
    int prev = 0;
    for (int i = 0; i < len; i++) {
        d += h->D[(size_t)prev * (size_t)h->n + (size_t)r[i]];
        prev = r[i];
    }
    return d + h->D[(size_t)prev * (size_t)h->n];
}

/* Route k without its positions q[0..nq) (1-based, increasing) and with c after gap g. */
static int with_c(const hgs *h, int k, const int *q, int nq, int c, int g, int *out)
{
    int m = 0, j = 0, len = 0;
    int kept[512];
    for (int p = 1; p <= h->rlen[k]; p++) {
        if (j < nq && p == q[j]) {
            j++;
            continue;
        }
        kept[m++] = RN(h, k, p);
    }
    for (int i = 0; i < g; i++)
        out[len++] = kept[i];
    out[len++] = c;
    for (int i = g; i < m; i++)
        out[len++] = kept[i];
    return len;
}

/* The brute force: the best (least absence, then fewest stops) over one route's sets of nq. */
typedef struct oracle {
    long absent;
    int nq;
    double added; /* without ejection: the cheapest distance added */
} oracle;

static void brute(const hgs *h, int k, int c, int nq, oracle *best)
{
    int len = h->rlen[k], r[512];
    int q[2] = {0, 0};
    double base = walk_dist(h, &RN(h, k, 1), len);
    for (q[0] = nq ? 1 : 0; q[0] <= (nq ? len : 0); q[0]++)
        for (q[1] = nq == 2 ? q[0] + 1 : 0; q[1] <= (nq == 2 ? len : 0); q[1]++) {
            long absent = 0;
            for (int j = 0; j < nq; j++)
                absent += h->absence[RN(h, k, q[j])];
            for (int g = 0; g <= len - nq; g++) {
                int m = with_c(h, k, q, nq, c, g, r);
                if (!walk_ok(h, k, r, m)) continue;
                double added = walk_dist(h, r, m) - base;
                if (absent < best->absent || (absent == best->absent && nq < best->nq))
                    *best = (oracle){absent, nq, added};
                if (nq == 0 && added < best->added) best->added = added;
            }
        }
}

/* What the checks met: choices checked, places without ejection, ejections, pairs over a single. */
typedef struct counts {
    long checked, placed, ejections, pairs_first;
} counts;

/* hgs__fleet_place's choice for c (out of every route) against the brute force. */
static void check_choice(hgs *h, int c, int eject, counts *n)
{
    /* the best over each number of ejected stops, then the least absence, fewer stops at ties */
    oracle by[3] = {{1L << 62, 3, 1e300}, {1L << 62, 3, 1e300}, {1L << 62, 3, 1e300}};
    for (int nq = eject; nq <= 2 * eject; nq++)
        for (int k = 0; k < h->K; k++)
            if (h->rlen[k] && h->rlen[k] >= nq) brute(h, k, c, nq, &by[nq]);
    oracle want = by[eject];
    if (eject && by[2].absent < want.absent) want = by[2];
    int q[2] = {0, 0}, nq = -1, gap = -1;
    long absent = -1;
    int k = hgs__fleet_place(h, c, eject, q, &nq, &gap, &absent);
    n->checked++;
    if (want.nq == 3) {
        assert_int_equal(k, -1);
        return;
    }
    assert_true(k >= 0 && k < h->K);
    assert_int_equal(nq, want.nq);
    assert_int_equal(absent, want.absent);
    long sum = 0;
    for (int j = 0; j < nq; j++)
        sum += h->absence[RN(h, k, q[j])];
    assert_int_equal(sum, absent);
    int r[512], m = with_c(h, k, q, nq, c, gap, r);
    assert_true(walk_ok(h, k, r, m));
    if (!eject) {
        double added = walk_dist(h, r, m) - walk_dist(h, &RN(h, k, 1), h->rlen[k]);
        assert_true(added <= want.added + 1e-6);
        n->placed++;
        return;
    }
    n->ejections++;
    if (nq == 2 && by[1].nq == 1) n->pairs_first++; /* a single was possible, at more absence */
}

/* Moves c from position p0 of route k0 out (out 1) or back (out 0). */
static void move_stop(hgs *h, int c, int k0, int p0, int out)
{
    if (out) {
        for (int p = p0; p < h->rlen[k0]; p++)
            RN(h, k0, p) = RN(h, k0, p + 1);
        h->rlen[k0]--;
    } else {
        for (int p = h->rlen[k0]; p >= p0; p--)
            RN(h, k0, p + 1) = RN(h, k0, p);
        RN(h, k0, p0) = c;
        h->rlen[k0]++;
    }
    hgs__route_update(h, k0);
    if (out) h->route_of[c] = -1;
}

static void test_place_is_the_least_absent(void **state)
{
    (void)state;
    counts n = {0, 0, 0, 0};
    for (int round = 0; round < 6; round++) {
        route_instance inst = windowed(45, 40 + 130 * (round % 3), 100u + (uint32_t)round);
        hgs_params params = {0};
        params.seed = 5;
        params.max_iterations = 1;
        hgs h;
        memset(&h, 0, sizeof h);
        assert_int_equal(hgs__setup(&h, &inst, &params), OP_OK);
        assert_non_null(h.absence = calloc((size_t)h.n, sizeof *h.absence));
        int n_unserved = 0;
        hgs__construct(&h, h.unserved, &n_unserved);
        assert_int_equal(n_unserved, 0);
        for (int k = 0; k < h.K; k++) {
            hgs__route_update(&h, k);
            assert_true(walk_ok(&h, k, &RN(&h, k, 1), h.rlen[k]));
        }
        uint32_t x = 17u + (uint32_t)round;
        for (int c = 1; c <= h.nc; c++)
            h.absence[c] = below(&x, 8);
        for (int c = 1; c <= h.nc; c++) {
            int k0 = h.route_of[c], p0 = h.pos_of[c];
            int64_t demand = h.demand[c];
            move_stop(&h, c, k0, p0, 1);
            check_choice(&h, c, 0, &n);
            /* with ejection, c made heavy at times: room for it often takes two stops out */
            if (below(&x, 2)) h.demand[c] = 25 + below(&x, 20);
            check_choice(&h, c, 1, &n);
            h.demand[c] = demand;
            move_stop(&h, c, k0, p0, 0);
        }
        hgs__free_arrays(&h);
        route_instance_clear(&inst);
    }
    print_message("%ld checked, %ld placed, %ld ejections, %ld pairs over a single\n", n.checked,
                  n.placed, n.ejections, n.pairs_first);
    /* every kind of answer was met: places, ejections, and pairs chosen over a single */
    assert_true(n.checked > 400);
    assert_true(n.placed > 50);
    assert_true(n.ejections > 50);
    assert_true(n.pairs_first > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_is_the_least_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
