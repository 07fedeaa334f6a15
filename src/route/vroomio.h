/*
 * vroomio: VROOM's JSON form of a routing problem and of its answer, read
 * into and written from the rich model (route/rich.h). Input: jobs,
 * shipments, vehicles (with breaks, costs, skills, limits), and travel
 * times either from `matrices` per profile (or the legacy `matrix`) indexed
 * by location_index, or from [lon, lat] locations as great-circle distances
 * at VROOM_SPEED_KMH. Output: code, summary, unassigned and routes with
 * their steps, as VROOM writes them; also read back (for --check). Pure:
 * text in, text out. docs/routing.md lists what of VROOM's form is
 * supported and how.
 */
#ifndef OUTPOST_VROOMIO_H
#define OUTPOST_VROOMIO_H

#include "route/rich.h"

#include <stddef.h>

#define VROOM_SPEED_KMH 50.0 /* for travel times from coordinates (no road network here) */
#define VROOM_MAX_TEXT (64 * 1024 * 1024)

/*
 * Whether text looks like VROOM's form: a JSON object with `vehicles` and
 * `jobs` or `shipments` at the top level (cheap: parses it once).
 */
int vroomio_detect(const char *text);

/*
 * Parses a problem in VROOM's form. OP_OK, or OP_EINVAL / OP_ETOOBIG /
 * OP_ENOMEM with "name: path: what" in err (jobs[3].time_windows[0]: ...).
 * The caller frees out with rich_problem_clear.
 */
int vroomio_parse(const char *text, const char *name, rich_problem *out, char *err, size_t err_len);

/*
 * The plan in VROOM's output form (a malloc'd string, NULL when out of
 * memory); plan must have been through rich_check (its totals are used).
 * stats may be NULL (then no computing_times: equal runs, equal bytes).
 */
char *vroomio_plan_to_json(const rich_problem *p, const rich_plan *plan, const rich_stats *stats);

/*
 * Reads VROOM's output form back into a plan for rich_check: routes by
 * vehicle id, steps by type and id with their arrival and waiting_time,
 * unassigned by id and type. *stated_cost gets summary.cost (or -1).
 * OP_OK, OP_EINVAL with the path in err, OP_ENOMEM.
 */
int vroomio_plan_from_json(const rich_problem *p, const char *text, rich_plan *out,
                           double *stated_cost, char *err, size_t err_len);

#endif
