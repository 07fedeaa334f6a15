/*
 * Unit test of the distance filters of the local search's moves within a
 * route (src/route/hgs_ls.c, hgs__intra_deltas): for every stop U of random
 * routes and every position V of its route (the depot included), each move
 * the search makes there (U after V; U and the stop after it after V, either
 * way round; U and V swapped; the stretch between them reversed) is built
 * here as a list and its distance walked from the matrix, and the filter's
 * change must equal it. On a symmetric CVRP instance, a windowed one, and
 * one whose travel times depend on the direction (so a reversed stretch
 * costs differently). A filter that overstates a change throws improving
 * moves away (the local search then ends elsewhere, often as good, which a
 * test of the search's end misses); one that understates it costs time.
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
#include <string.h>

#define MAX_LEN 256

static double walk_dist(const hgs *h, const int *r, int len)
{
    double d = 0;
    int prev = 0;
    for (int i = 0; i <= len; i++) {
        int c = i < len ? r[i] : 0;
        d += h->D[(size_t)prev * (size_t)h->n + (size_t)c];
        prev = c;
    }
    return d;
}

/* r without positions [a, a + n) (0-based), that stretch put back after position `after` of the
 * rest (-1: first), reversed when rev. */
static int moved(const int *r, int len, int a, int n, int after, int rev, int *out)
{
    int rest[MAX_LEN], m = 0, o = 0;
    for (int i = 0; i < len; i++)
        if (i < a || i >= a + n) rest[m++] = r[i];
    for (int i = -1; i < m; i++) {
        if (i >= 0) out[o++] = rest[i];
        if (i == after)
            for (int j = 0; j < n; j++)
                out[o++] = r[rev ? a + n - 1 - j : a + j];
    }
    return o;
}

/* The distance change of each move of the stop at pu relative to position pv (0: the depot) of
 * route k, NAN where the search does not make it. */
static void walked_deltas(const hgs *h, int k, int pu, int pv, double *want)
{
    int len = h->rlen[k], r[MAX_LEN], out[MAX_LEN];
    for (int p = 1; p <= len; p++)
        r[p - 1] = RN(h, k, p);
    double now = walk_dist(h, r, len);
    int iu = pu - 1, iv = pv - 1;
    for (int i = 0; i < INTRA_MOVES; i++)
        want[i] = NAN;
    for (int n = 1; n <= 2; n++) {
        if (iu + n > len || (iv >= iu - 1 && iv < iu + n)) continue;
        for (int rev = 0; rev < n; rev++) {
            int m = moved(r, len, iu, n, iv < iu ? iv : iv - n, rev, out);
            want[n == 1 ? INTRA_RELOCATE
                 : rev  ? INTRA_PAIR_REVERSED
                        : INTRA_PAIR] = walk_dist(h, out, m) - now;
        }
    }
    if (iv == iu) return;
    int lo = iu < iv ? iu : iv, hi = iu < iv ? iv : iu;
    if (iv >= 0) {
        memcpy(out, r, (size_t)len * sizeof(int));
        out[iu] = r[iv];
        out[iv] = r[iu];
        want[INTRA_SWAP] = walk_dist(h, out, len) - now;
    }
    if (hi - lo >= 2) {
        memcpy(out, r, (size_t)len * sizeof(int));
        for (int i = lo + 1, j = hi; i < j; i++, j--) {
            int t = out[i];
            out[i] = out[j];
            out[j] = t;
        }
        want[INTRA_TWO_OPT] = walk_dist(h, out, len) - now;
    }
}

static long check_instance(route_instance *inst)
{
    hgs_params params = {0};
    params.seed = 5;
    params.max_iterations = 1;
    hgs h;
    memset(&h, 0, sizeof h);
    assert_int_equal(hgs__setup(&h, inst, &params), OP_OK);
    uint32_t x = 17;
    long checked = 0;
    for (int round = 0; round < 4; round++) {
        int K = 2 + routegen_below(&x, h.K - 1 < 5 ? h.K - 1 : 5);
        for (int k = 0; k < h.K; k++)
            h.rlen[k] = 0;
        for (int c = 1; c <= h.nc; c++) {
            int k = routegen_below(&x, K);
            RN(&h, k, ++h.rlen[k]) = c;
        }
        for (int k = 0; k < h.K; k++)
            hgs__route_update(&h, k);
        for (int u = 1; u <= h.nc; u++) {
            int k = h.route_of[u];
            for (int pv = 0; pv <= h.rlen[k]; pv++) {
                double got[INTRA_MOVES], want[INTRA_MOVES];
                hgs__intra_deltas(&h, u, pv, got);
                walked_deltas(&h, k, h.pos_of[u], pv, want);
                for (int i = 0; i < INTRA_MOVES; i++) {
                    if (isnan(want[i]) != (got[i] >= BIG))
                        fail_msg("move %d of stop %d to after position %d: %s", i, u, pv,
                                 isnan(want[i]) ? "not made, yet filtered" : "made, not filtered");
                    if (!isnan(want[i]) && fabs(got[i] - want[i]) > 1e-7 * (1 + fabs(want[i])))
                        fail_msg("move %d of stop %d to after position %d: filter %.6f, walked "
                                 "%.6f",
                                 i, u, pv, got[i], want[i]);
                    checked += !isnan(want[i]);
                }
            }
        }
    }
    hgs__free_arrays(&h);
    return checked;
}

/* Travel one way takes up to 40% longer than back. */
static double one_way(void *ctx, int from, int to)
{
    (void)ctx;
    return from < to ? 1.0 + 0.1 * ((from * 7 + to * 3) % 5) : 1.0;
}

static void test_filters_equal_walked_changes(void **state)
{
    (void)state;
    route_instance inst;
    char err[256] = "";
    if (routegen_cvrp(90, 3, 60, 9, &inst, err, sizeof err) != OP_OK) fail_msg("parse: %s", err);
    long plain = check_instance(&inst);
    inst.arc_factor = one_way;
    long asymmetric = check_instance(&inst);
    route_instance_clear(&inst);
    routegen_spec spec = {80, 9, 4, 120, 1000, 1, 3};
    if (routegen_windowed(&spec, &inst, err, sizeof err) != OP_OK) fail_msg("parse: %s", err);
    assert_true(inst.has_windows);
    long windowed = check_instance(&inst);
    route_instance_clear(&inst);
    print_message("%ld, %ld and %ld moves checked (plain, one-way, windowed)\n", plain, asymmetric,
                  windowed);
    assert_true(plain > 10000 && asymmetric > 10000 && windowed > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters_equal_walked_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
