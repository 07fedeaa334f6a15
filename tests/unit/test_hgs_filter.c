/*
 * Unit test of the local search's first filter (src/route/hgs_ls.c,
 * eval_fast): on windowed plans full of lateness and overload, for every
 * kind of piece list the moves build (prefix and suffix of two routes, a
 * stop put between, a reversed stretch), the filter never exceeds the full
 * evaluation. A filter above it would pass over moves that improve.
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

/* A number in 0..n-1 from a fixed LCG. */
#define below routegen_below

/* An instance of n customers with narrow windows. */
static route_instance windowed(int n, uint32_t seed)
{
    routegen_spec spec = {n, seed, 3, 20, 400, 1, 20};
    route_instance inst;
    char err[256] = "";
    if (routegen_windowed(&spec, &inst, err, sizeof err) != OP_OK) fail_msg("parse: %s", err);
    return inst;
}

/* Every piece list checked: the filter at most the full cost (up to rounding). */
static void check(const hgs *h, const piece *ps, int np, int k, long *checked, long *late)
{
    double fast, full;
    hgs__eval_both(h, ps, np, k, &fast, &full);
    if (fast > full + 1e-6 * (1.0 + full))
        fail_msg("filter %.6f above the full cost %.6f (slot %d, %d pieces)", fast, full, k, np);
    (*checked)++;
    if (full > fast + 1e-6) (*late)++;
}

static void test_filter_never_above_full_cost(void **state)
{
    (void)state;
    route_instance inst = windowed(60, 7);
    hgs_params params = {0};
    params.seed = 3;
    params.max_iterations = 1;
    hgs h;
    memset(&h, 0, sizeof h);
    assert_int_equal(hgs__setup(&h, &inst, &params), OP_OK);
    assert_true(h.has_tw);
    h.pen_load = 50;
    h.pen_warp = 100;
    uint32_t x = 11;
    long checked = 0, late = 0;
    for (int round = 0; round < 200; round++) {
        /* random routes in random order: most are late, some overloaded */
        int K = 2 + below(&x, h.K - 1 < 8 ? h.K - 1 : 8);
        for (int k = 0; k < h.K; k++)
            h.rlen[k] = 0;
        for (int c = 1; c <= h.nc; c++) {
            int k = below(&x, K);
            RN(&h, k, ++h.rlen[k]) = c;
        }
        for (int k = 0; k < h.K; k++)
            hgs__route_update(&h, k);
        for (int t = 0; t < 200; t++) {
            int a = below(&x, K), b = below(&x, K);
            int la = h.rlen[a], lb = h.rlen[b];
            if (!la || !lb || a == b) continue;
            int pa = below(&x, la + 1), pb = below(&x, lb + 1), u = 1 + below(&x, lb);
            /* 2-opt*: a's prefix, b's suffix */
            piece two[2] = {{a, 0, pa, 0}, {b, pb + 1, lb, 0}};
            check(&h, two, 2, a, &checked, &late);
            /* relocate: a's prefix, b's stop u, a's suffix */
            piece rel[3] = {{a, 0, pa, 0}, {b, u, u, 0}, {a, pa + 1, la, 0}};
            check(&h, rel, 3, a, &checked, &late);
            /* a stretch of a reversed in place */
            int i = 1 + below(&x, la), j = i + below(&x, la - i + 1);
            piece rev[3] = {{a, 0, i - 1, 0}, {a, i, j, 1}, {a, j + 1, la, 0}};
            check(&h, rev, 3, a, &checked, &late);
            /* b's prefix closed at a's slot (the depot is a's) */
            piece pre[1] = {{b, 0, pb, 0}};
            check(&h, pre, 1, a, &checked, &late);
        }
    }
    /* the plans were late: the full cost was above the filter on many lists, so the
     * filter's own warp was tried against real lateness */
    assert_true(checked > 10000);
    assert_true(late > checked / 10);
    hgs__free_arrays(&h);
    route_instance_clear(&inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_never_above_full_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
