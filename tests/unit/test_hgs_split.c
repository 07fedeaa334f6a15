/*
 * Unit test of the linear Split (src/route/hgs_split.c, hgs__split_linear): on
 * random CVRP instances and random giant tours, the least cost of serving
 * each prefix of the tour must equal a Bellman recursion over every
 * predecessor, with route costs walked here from the distance matrix (load
 * penalty, per-distance and fixed vehicle costs included), and the routes
 * read back from the predecessors must cost what the potential says.
 * Demands from 0 to above the capacity and penalties from 0.1 to 1,000, so
 * that both overloaded and light routes are the best at times.
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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 80

/* Customers tour[i..j) as one route, walked. */
static double route_cost(const hgs *h, const int *tour, int i, int j)
{
    double d = 0;
    int64_t load = 0;
    int prev = 0;
    for (int x = i; x < j; x++) {
        d += h->D[(size_t)prev * (size_t)h->n + (size_t)tour[x]];
        load += h->demand[tour[x]];
        prev = tour[x];
    }
    d += h->D[(size_t)prev * (size_t)h->n];
    int64_t excess = load - h->slot_cap[0];
    return d * (1 + h->slot_hourly[0]) + h->slot_fixed[0] + h->fleet_m +
           (excess > 0 ? h->pen_load * (double)excess : 0);
}

static void check_tour(const hgs *h, const int *tour, long *overloaded)
{
    double best[MAX_N + 1];
    best[0] = 0;
    for (int j = 1; j <= h->nc; j++) {
        best[j] = INFINITY;
        for (int i = 0; i < j; i++) {
            double c = best[i] + route_cost(h, tour, i, j);
            if (c < best[j]) best[j] = c;
        }
        if (fabs(h->pot[j] - best[j]) > 1e-6 * (1 + best[j]))
            fail_msg("prefix %d of %d: split %.6f, Bellman %.6f (penalty %.1f)", j, h->nc,
                     h->pot[j], best[j], h->pen_load);
    }
    double sum = 0;
    for (int j = h->nc; j > 0; j = h->from[j]) {
        assert_true(h->from[j] >= 0 && h->from[j] < j);
        int64_t load = 0;
        for (int x = h->from[j]; x < j; x++)
            load += h->demand[tour[x]];
        if (load > h->slot_cap[0]) (*overloaded)++;
        sum += route_cost(h, tour, h->from[j], j);
    }
    assert_true(fabs(sum - best[h->nc]) <= 1e-6 * (1 + best[h->nc]));
}

static void test_linear_split_matches_bellman(void **state)
{
    (void)state;
    static const double pens[] = {0.1, 1, 10, 1000};
    uint32_t x = 7;
    long tours = 0, overloaded = 0;
    for (int inst_no = 0; inst_no < 24; inst_no++) {
        int n = 1 + routegen_below(&x, MAX_N);
        int cap = 10 + routegen_below(&x, 90);
        route_instance inst;
        char err[256] = "";
        if (routegen_cvrp(n, (uint32_t)inst_no + 1, cap, cap + cap / 2, &inst, err, sizeof err) !=
            OP_OK)
            fail_msg("parse: %s", err);
        hgs_params params = {0};
        params.seed = 1;
        params.max_iterations = 1;
        hgs h;
        memset(&h, 0, sizeof h);
        assert_int_equal(hgs__setup(&h, &inst, &params), OP_OK);
        assert_false(h.has_tw);
        int tour[MAX_N];
        for (int round = 0; round < 20; round++) {
            for (int c = 0; c < h.nc; c++)
                tour[c] = c + 1;
            for (int c = h.nc - 1; c > 0; c--) {
                int o = routegen_below(&x, c + 1), t = tour[c];
                tour[c] = tour[o];
                tour[o] = t;
            }
            h.pen_load = pens[round % 4];
            h.slot_hourly[0] = round % 3 == 0 ? 0.5 : 0;
            h.slot_fixed[0] = round % 5 == 0 ? 30 : 0;
            hgs__split_linear(&h, tour);
            check_tour(&h, tour, &overloaded);
            tours++;
        }
        hgs__free_arrays(&h);
        route_instance_clear(&inst);
    }
    print_message("%ld tours, %ld overloaded routes in the splits\n", tours, overloaded);
    assert_true(overloaded > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_split_matches_bellman),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
