/*
 * rich_int: what the files of the rich solver share (rich_model.c,
 * rich_eval.c, rich_search.c): the route evaluator the search uses. The
 * checker (richcheck.c) deliberately does not include this header.
 */
#ifndef OUTPOST_RICH_INT_H
#define OUTPOST_RICH_INT_H

#include "route/rich.h"

/* What one route costs and whether it is feasible. */
typedef struct rich__eval {
    int feasible;
    int64_t travel, distance, begin;
    double cost; /* 0 for an empty route */
} rich__eval;

/*
 * Drives vehicle v through the tasks seq[0..len): forward time propagation
 * with waiting, breaks placed on the way (rich_eval.c says how), loads per
 * dimension at every step, the vehicle's limits. Fills ev; when steps is
 * not NULL (room for len + the vehicle's breaks) also the steps with their
 * times, and *n_steps. Returns ev->feasible. Precedence of shipments is the
 * caller's to keep.
 */
int rich__simulate(const rich_problem *p, int v, const int *seq, int len, rich__eval *ev,
                   rich_step *steps, int *n_steps);

/*
 * What the cheap insertion test needs of a route, computed in one pass each
 * way without breaks (breaks only delay, so the test stays necessary):
 * dep[i] the earliest departure from what precedes position i (the start
 * for 0), lat[i] the latest arrival at what is at position i (the end for
 * len) that keeps the rest of the route inside its windows (setups counted
 * as 0), and per dimension the highest load at or before / at or after
 * each position.
 */
typedef struct rich__profile {
    int cap, len;
    int64_t *dep, *lat;
    int64_t *pm, *sm; /* (len + 1) * RICH_MAX_DIMS */
} rich__profile;

/* Builds pf for vehicle v driving seq[0..len). OP_OK or OP_ENOMEM. */
int rich__profile_build(const rich_problem *p, int v, const int *seq, int len, rich__profile *pf);
void rich__profile_free(rich__profile *pf);

/*
 * Whether task t could go at position i of the route pf describes: a
 * necessary condition from the times (and, with check_load, the loads of a
 * job). O(1 + windows of t).
 */
int rich__may_insert(const rich_problem *p, int v, const int *seq, const rich__profile *pf, int i,
                     int t, int check_load);

/* Cost of a route of vehicle v with this travel time and distance (fixed included). */
double rich__route_cost(const rich_problem *p, int v, int64_t travel, int64_t distance);

#endif
