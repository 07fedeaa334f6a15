/*
 * route: vehicle-routing problems: instances, the two
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

#define ROUTE_MAX_TYPES 64
#define ROUTE_NO_LIMIT 1e15 /* a shift or window without an end */

/* A kind of vehicle: how much it carries, how many there are, its shift at the depot. */
typedef struct route_vehicle {
    char name[32];
    int64_t capacity;
    int count;            /* 0 = as many as needed */
    double shift_start;   /* leaves the depot at or after */
    double shift_end;     /* back at the depot by */
    double fixed_cost;    /* added to the cost of each route this kind drives (default 0) */
    double cost_per_hour; /* per hour of a route's duration (travel, service, waiting) */
} route_vehicle;

/*
 * Optional travel-time correction: the cost and time of arc (from, to) is
 * multiplied by what this returns (a site's learned model supplies it; with
 * no hook the factor is 1). Must return a value > 0 and be deterministic.
 */
typedef double (*route_arc_factor_fn)(void *ctx, int from, int to);

typedef struct route_instance {
    char name[64];
    int n;            /* nodes including the depot */
    int has_windows;  /* time windows and service times are in force */
    int round_nint;   /* CVRPLIB EUC_2D convention */
    int64_t capacity; /* of types[0]; kept for the benchmark formats */
    int vehicles;     /* count of types[0], 0 = unlimited */
    double *x, *y;
    int64_t *demand;
    double *ready, *due, *service; /* time windows; due[0] is the horizon */
    int n_types;                   /* >= 1 after a successful parse */
    route_vehicle types[ROUTE_MAX_TYPES];
    double *matrix; /* optional n*n travel times, row = from; NULL = from coordinates */
    char **ids;     /* optional stop names (JSON form); NULL = node numbers */
    route_arc_factor_fn arc_factor;
    void *arc_factor_ctx;
    double time_units_per_hour; /* for cost_per_hour; 0 = 60 (times in minutes) */
} route_instance;

/* Why a stop is left out of a plan (route_solution.reason). */
enum route_unserved {
    ROUTE_UNSERVED_CAPACITY = 1, /* its demand is more than any vehicle carries */
    ROUTE_UNSERVED_WINDOW = 2,   /* no vehicle reaches it inside its window and gets back */
    ROUTE_UNSERVED_FLEET = 3,    /* no room for it in the fleet's routes (in the time given) */
};

/*
 * A solution: route r visits nodes[start[r] .. start[r+1]-1] (customers,
 * depot implicit at both ends) with a vehicle of type[r]. Customers no route
 * serves are listed once each in unassigned[], with a route_unserved code in
 * reason[] (a plan for an over-constrained problem). Owned by the caller;
 * route_solution_clear releases it.
 */
typedef struct route_solution {
    int n_routes;
    int *start; /* n_routes + 1 offsets */
    int *nodes;
    int *type;
    double cost;     /* distance plus the vehicles' fixed and hourly costs */
    double distance; /* total travel distance */
    int n_unassigned;
    int *unassigned; /* n_unassigned customers, or NULL */
    int *reason;     /* route_unserved code of each */
} route_solution;

/*
 * Parses a CVRPLIB (TSPLIB-style .vrp, EUC_2D) or Solomon (.txt) text,
 * detected from its first line. On error returns OP_EINVAL (or OP_ETOOBIG,
 * OP_ENOMEM) with "name:line: what" in err. The caller frees with
 * route_instance_clear.
 */
int route_parse(const char *text, const char *name, route_instance *out, char *err, size_t err_len);
/* Frees what inst owns and zeroes it (a zeroed instance is fine). */
void route_instance_clear(route_instance *inst);
/* Allocates the per-node arrays of inst for n nodes (zeroed). OP_OK or OP_ENOMEM. */
int route_instance_alloc(route_instance *inst, int n);

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

/*
 * The same check for a typed solution: each route against its vehicle type's
 * capacity and shift, no more routes of a type than it has vehicles, and
 * every customer either served once or listed once as unassigned (never
 * both). OP_OK with the distance in sol->distance and the cost (distance
 * plus vehicle costs) in *cost and sol->cost, OP_EINVAL with the first
 * violation, OP_ENOMEM.
 */
int route_check_solution(const route_instance *inst, route_solution *sol, char *err,
                         size_t err_len);

/*
 * Finds what makes an instance impossible whatever the routes: a demand no
 * vehicle can carry, a stop no vehicle can reach inside its window and come
 * back from by the end of its shift, more demand than a limited fleet holds.
 * OP_OK, or OP_EINVAL naming the culprit in err.
 */
int route_precheck(const route_instance *inst, char *err, size_t err_len);

/*
 * What makes customer c impossible to serve on its own: ROUTE_UNSERVED_CAPACITY,
 * ROUTE_UNSERVED_WINDOW, or 0 when some vehicle can serve it alone.
 */
int route_stop_problem(const route_instance *inst, int c);
/* A route_unserved code in words ("demand over every vehicle's capacity", ...). */
const char *route_unserved_str(int reason);
/* Makes room for n unassigned customers in sol (replacing any list). OP_OK or OP_ENOMEM. */
int route_solution_set_unassigned(route_solution *sol, int n);
/*
 * The minimal duration of a route (travel, service and the waiting that no
 * later departure avoids) on a vehicle of type t, and the vehicle costs of
 * it (fixed cost plus hourly cost). nodes are the route's len customers.
 */
double route_vehicle_cost(const route_instance *inst, int t, const int *nodes, int len);

/* Allocates a solution for n_routes routes holding n_nodes customers in all. */
int route_solution_alloc(route_solution *sol, int n_routes, int n_nodes);
/* Frees what sol owns and zeroes it (a zeroed solution is fine). */
void route_solution_clear(route_solution *sol);

#endif
