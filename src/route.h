/*
 * route: vehicle-routing problems (issue 6, first step): instances, the two
 * benchmark formats, and the feasibility checker every solver result goes
 * through. Pure: text in, data out; no I/O.
 *
 * Node 0 is the depot, nodes 1..n-1 the customers. Distances follow each
 * format's convention: CVRPLIB EUC_2D rounds Euclidean distance to the
 * nearest integer (TSPLIB nint); Solomon uses it unrounded (double). Travel
 * time equals distance. A route is a sequence of customers; it starts and
 * ends at the depot implicitly.
 */
#ifndef OUTPOST_ROUTE_H
#define OUTPOST_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_MAX_NODES 20001

typedef struct route_instance {
    char name[64];
    int n;           /* nodes including the depot */
    int has_windows; /* VRPTW (Solomon) */
    int round_nint;  /* CVRPLIB EUC_2D convention */
    int64_t capacity;
    int vehicles; /* available vehicles, 0 = unlimited */
    double *x, *y;
    int64_t *demand;
    double *ready, *due, *service; /* time windows (VRPTW) */
} route_instance;

/*
 * Parses a CVRPLIB (TSPLIB-style .vrp, EUC_2D) or Solomon (.txt) text,
 * detected from its first line. On error returns OP_EINVAL (or OP_ETOOBIG,
 * OP_ENOMEM) with "name:line: what" in err. The caller frees with
 * route_instance_free.
 */
int route_parse(const char *text, const char *name, route_instance *out, char *err, size_t err_len);
void route_instance_free(route_instance *inst);

/* Travel cost and time between two nodes under the instance's convention. */
double route_distance(const route_instance *inst, int i, int j);

/*
 * Checks a solution: routes[r] has lens[r] customers. Every customer exactly
 * once, loads within capacity, no more routes than vehicles (when limited),
 * and for VRPTW every service started by its due time (waiting when early)
 * and every return to the depot by the horizon. OP_OK with the total cost
 * in *cost, or OP_EINVAL with the first violation in err.
 */
int route_check(const route_instance *inst, const int *const *routes, const int *lens, int n_routes,
                double *cost, char *err, size_t err_len);

#endif
