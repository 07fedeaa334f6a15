/*
 * hgs_split: Split without time windows in linear time, for the genetic
 * search's offspring of one vehicle type (hgs.c keeps the Bellman forms for
 * windows and for limited or mixed fleets).
 */
#include "route/hgs_int.h"

/*
 * The least cost of reaching customer j of the tour (1-based) with a route
 * that starts after customer i, without time windows: alpha(i), a hinge of
 * the route's load, and terms of j alone.
 */
static double split_alpha(const hgs *h, const int *tour, int i, double w)
{
    return h->pot[i] + w * (dist(h, 0, tour[i]) - h->split_dist[i + 1]);
}

static double split_reach(const hgs *h, const int *tour, int i, int j, double w)
{
    int64_t excess = h->split_load[j] - h->split_load[i] - capacity(h, 0);
    return split_alpha(h, tour, i, w) + (excess > 0 ? h->pen_load * (double)excess : 0) +
           w * (h->split_dist[j] + dist(h, tour[j - 1], 0)) + h->slot_fixed[0] + h->fleet_m;
}

/*
 * Split without time windows in O(n) (Vidal 2016, "Split algorithm in O(n)
 * for the capacitated vehicle routing problem"). Every predecessor's cost
 * is a hinge of the load reached with the same slope (the load penalty), so
 * a predecessor is dropped for good once a later one starts as low (it is
 * never better again), and a later one is never queued when its cost stays
 * above an earlier one's at every load. The queue's front is the best
 * predecessor, and the front moves on as the load grows. Exact (no cap on a
 * route's load, where the Bellman form stops at 1.5 capacities); the profile
 * of X-n214-k11 (11 routes of 20 customers) had the Bellman form at 19% of
 * the time.
 */
void hgs__split_linear(hgs *h, const int *tour)
{
    const int nc = h->nc;
    double *pot = h->pot, *along = h->split_dist, w = 1 + h->slot_hourly[0];
    int64_t *load = h->split_load;
    int *from = h->from, *q = h->split_queue, head = 0, tail = 0;
    along[0] = along[1] = 0;
    load[0] = 0;
    for (int j = 1; j <= nc; j++) {
        load[j] = load[j - 1] + h->demand[tour[j - 1]];
        if (j > 1) along[j] = along[j - 1] + dist(h, tour[j - 2], tour[j - 1]);
    }
    pot[0] = 0;
    q[tail++] = 0;
    for (int j = 1; j <= nc; j++) {
        pot[j] = split_reach(h, tour, q[head], j, w);
        from[j] = q[head];
        if (j == nc) break;
        double aj = split_alpha(h, tour, j, w);
        int b = q[tail - 1];
        if (aj <= split_alpha(h, tour, b, w) + h->pen_load * (double)(load[j] - load[b])) {
            while (tail > head && aj < split_alpha(h, tour, q[tail - 1], w) + EPS)
                tail--;
            q[tail++] = j;
        }
        while (tail - head > 1 && split_reach(h, tour, q[head], j + 1, w) >
                                      split_reach(h, tour, q[head + 1], j + 1, w) - EPS)
            head++;
    }
}
