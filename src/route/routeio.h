/*
 * routeio: the routing problem's outside forms. The JSON form of
 * an instance for real use (stops, vehicles, optional travel-time matrix),
 * solutions as JSON (also read back as checkpoints), the CVRPLIB .sol text,
 * an SVG picture of the routes, and travel-time correction factors. Pure:
 * text in, text out; the caller does the files.
 */
#ifndef OUTPOST_ROUTEIO_H
#define OUTPOST_ROUTEIO_H

#include "route/hgs.h"
#include "route/route.h"

#include <stddef.h>

#define ROUTEIO_MAX_STOPS 5000

/*
 * Parses an instance: the JSON form when the text starts with '{', else
 * CVRPLIB or Solomon (route_parse). OP_OK, or OP_EINVAL / OP_ETOOBIG /
 * OP_ENOMEM with "name: where: what" in err (a line for the text formats, a
 * JSON path such as stops[3].due for JSON).
 */
int routeio_parse_any(const char *text, const char *name, route_instance *out, char *err,
                      size_t err_len);

/*
 * The solution as JSON (a malloc'd string the caller frees; NULL when out of
 * memory): cost, routes with their vehicle, stops (ids for the JSON form,
 * customer numbers otherwise), load, distance and, with time windows, the
 * arrival at each stop. stats may be NULL.
 */
char *routeio_solution_to_json(const route_instance *inst, const route_solution *sol,
                               const hgs_stats *stats);

/*
 * Reads a solution written by routeio_solution_to_json (a checkpoint). Stops
 * may be ids or customer numbers; the vehicle is the type name. The result
 * is not checked for feasibility here (hgs does). OP_OK or OP_EINVAL/OP_ENOMEM.
 */
int routeio_solution_from_json(const route_instance *inst, const char *text, route_solution *out,
                               char *err, size_t err_len);

/* The CVRPLIB .sol text ("Route #1: 3 7 ...", "Cost 1234"); malloc'd, NULL when out of memory. */
char *routeio_solution_to_sol(const route_instance *inst, const route_solution *sol);

/* An SVG picture of the routes (a polyline per route, the depot as a square); malloc'd. */
char *routeio_solution_to_svg(const route_instance *inst, const route_solution *sol);

/*
 * Travel-time correction factors: {"arcs": [[from, to, factor], ...]} with
 * stops named as in the instance (ids, or numbers with 0 the depot) and
 * 0 < factor <= 100. Arcs not listed keep factor 1.
 */
typedef struct routeio_factors {
    int n;
    float *factor; /* n*n, or NULL */
} routeio_factors;

int routeio_factors_parse(const route_instance *inst, const char *text, routeio_factors *out,
                          char *err, size_t err_len);
/* Makes inst's arc costs use the factors (they must outlive inst's use). */
void routeio_factors_attach(route_instance *inst, routeio_factors *factors);
/* Frees the factors and zeroes the struct; an instance they are attached to must not be used after.
 */
void routeio_factors_clear(routeio_factors *factors);

#endif
