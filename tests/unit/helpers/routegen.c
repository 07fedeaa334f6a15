#include "routegen.h"

#include "route/routeio.h"

#include <stdio.h>

int routegen_below(uint32_t *x, int n)
{
    *x = *x * 1664525u + 1013904223u;
    return (int)((*x >> 8) % (uint32_t)n);
}

int routegen_windowed(const routegen_spec *spec, route_instance *inst, char *err, size_t err_len)
{
    static char text[1 << 16];
    size_t at = (size_t)snprintf(text, sizeof text,
                                 "W\n\nVEHICLE\nNUMBER     CAPACITY\n  %d         60\n\nCUSTOMER\n"
                                 "CUST NO.  XCOORD.  YCOORD.  DEMAND  READY TIME  DUE DATE  "
                                 "SERVICE TIME\n\n    0  50  50  0  0  %d  0\n",
                                 spec->n, spec->depot_due);
    uint32_t x = spec->seed;
    for (int c = 1; c <= spec->n && at < sizeof text; c++) {
        int v[4];
        for (int q = 0; q < 4; q++)
            v[q] = routegen_below(&x, 100);
        int ready = v[3] * spec->ready_step;
        at += (size_t)snprintf(text + at, sizeof text - at, "%5d %3d %3d %2d %4d %4d 10\n", c, v[0],
                               v[1], spec->demand_min + v[2] % spec->demand_span, ready,
                               ready + spec->width);
    }
    return routeio_parse_any(text, "w", inst, err, err_len);
}

int routegen_cvrp(int n, uint32_t seed, int capacity, int demand_max, route_instance *inst,
                  char *err, size_t err_len)
{
    static char text[1 << 16];
    size_t at =
        (size_t)snprintf(text, sizeof text,
                         "NAME : C\nTYPE : CVRP\nDIMENSION : %d\nEDGE_WEIGHT_TYPE : EUC_2D\n"
                         "CAPACITY : %d\nNODE_COORD_SECTION\n1 50 50\n",
                         n + 1, capacity);
    uint32_t x = seed;
    for (int c = 1; c <= n && at < sizeof text; c++) {
        int cx = routegen_below(&x, 100), cy = routegen_below(&x, 100);
        at += (size_t)snprintf(text + at, sizeof text - at, "%d %d %d\n", c + 1, cx, cy);
    }
    at += (size_t)snprintf(text + at, sizeof text - at, "DEMAND_SECTION\n1 0\n");
    for (int c = 1; c <= n && at < sizeof text; c++)
        at += (size_t)snprintf(text + at, sizeof text - at, "%d %d\n", c + 1,
                               routegen_below(&x, demand_max + 1));
    snprintf(text + at, sizeof text - at, "DEPOT_SECTION\n1\n-1\nEOF\n");
    return routeio_parse_any(text, "c", inst, err, err_len);
}
