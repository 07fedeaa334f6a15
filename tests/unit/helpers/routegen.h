/*
 * Random windowed routing instances for unit tests of the solver's
 * internals, from a fixed LCG (the same instance for a seed everywhere).
 */
#ifndef OUTPOST_TEST_ROUTEGEN_H
#define OUTPOST_TEST_ROUTEGEN_H

#include "route/route.h"

#include <stdint.h>

/* A number in 0..n-1 from the LCG state *x. */
int routegen_below(uint32_t *x, int n);

typedef struct routegen_spec {
    int n;                       /* customers, on a 100 x 100 square, the depot at its centre */
    uint32_t seed;               /* of the LCG */
    int ready_step;              /* a window opens at 0..99 times this */
    int width;                   /* and stays open this long */
    int depot_due;               /* routes end by then */
    int demand_min, demand_span; /* demands demand_min .. demand_min + demand_span - 1 */
} routegen_spec;

/* A Solomon-format instance (capacity 60, service 10, n vehicles) parsed into *inst: OP_OK, or
 * the parser's error with its message in err. */
int routegen_windowed(const routegen_spec *spec, route_instance *inst, char *err, size_t err_len);

/* A CVRPLIB-format instance of n customers on a 100 x 100 square (the depot at its centre) with
 * demands 0..demand_max, parsed into *inst: OP_OK, or the parser's error. */
int routegen_cvrp(int n, uint32_t seed, int capacity, int demand_max, route_instance *inst,
                  char *err, size_t err_len);

#endif
