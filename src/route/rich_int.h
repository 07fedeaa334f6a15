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

/* Cost of a route of vehicle v with this travel time and distance (fixed included). */
double rich__route_cost(const rich_problem *p, int v, int64_t travel, int64_t distance);

#endif
