/*
 * hgs: the vehicle-routing solver. A hybrid genetic search in the
 * manner of Vidal's HGS-CVRP (2022) and its time-window variant (PyVRP):
 * giant-tour chromosomes cut into routes by an exact Split, a granular local
 * search (relocate, swap, 2-opt, 2-opt* on the nearest neighbours of each
 * customer) that evaluates every move in O(1) from route-segment
 * concatenation (load, distance, duration, time warp), feasible and
 * infeasible sub-populations with penalties for overload and time warp that
 * adapt to keep about a fifth of new solutions feasible, and survivor
 * selection by cost and diversity (broken-pairs distance).
 *
 * With params->threads > 1 it runs that many islands (populations) in
 * threads that share the best plan found (hgs_par.c).
 *
 * Pure: no I/O. It reads a clock (replaceable) only to honour the time
 * limit. For a given seed and an iteration limit the result is the same on
 * every run with one thread; with a time limit it depends on how far the
 * search got.
 * Anytime: the best feasible solution so far is returned when the limit
 * strikes, and a solution given as `start` (a checkpoint) seeds the search
 * and is never worsened.
 */
#ifndef OUTPOST_HGS_H
#define OUTPOST_HGS_H

#include "route/route.h"

#include <stddef.h>
#include <stdint.h>

#define HGS_MAX_THREADS 64

/* What a better plan is, after serving more stops: the lower cost, or fewer vehicles first. */
enum hgs_objective { HGS_OBJECTIVE_DISTANCE = 0, HGS_OBJECTIVE_VEHICLES = 1 };

typedef struct hgs_progress {
    double elapsed_s;
    long iterations;
    double best_cost; /* of the best feasible solution, or -1 when none yet */
    int best_routes;
    const route_solution *best; /* the new best (valid during the call only) */
} hgs_progress;

typedef struct hgs_params {
    uint64_t seed;
    double time_limit_s;         /* 0 = none (then max_iterations must be set) */
    long max_iterations;         /* offspring to make; 0 = none */
    long restart_after;          /* iterations without improvement before a restart; 0 = 20,000 */
    int granular;                /* neighbours per customer; 0 = 20 */
    const route_solution *start; /* a checkpoint to resume from, or NULL */
    double (*now_s)(void);       /* seconds on a monotonic clock; needed by time_limit_s */
    volatile int *stop; /* when it becomes non-zero the search ends (a signal); may be NULL */
    int strict;         /* refuse (OP_EINVAL) rather than leave stops unassigned */
    int objective;      /* HGS_OBJECTIVE_DISTANCE (0) or HGS_OBJECTIVE_VEHICLES */
    /*
     * Islands searched at once, one thread each (at most HGS_MAX_THREADS);
     * 0 or 1: one, in the caller's thread. With several, on_improve and
     * now_s are called from any of them (one call at a time for on_improve;
     * now_s must be safe to call concurrently, as is the instance's
     * arc_factor), an iteration limit is shared out between the islands,
     * and no run is reproducible.
     */
    int threads;
    /* Called when the best solution improves; may be NULL. */
    void (*on_improve)(void *ctx, const hgs_progress *progress);
    void *ctx;
} hgs_params;

typedef struct hgs_stats {
    long iterations; /* offspring made (the initial population not counted) */
    long restarts;
    long moves; /* local-search moves applied */
    double elapsed_s;
    double best_found_s; /* when the returned solution was found */
} hgs_stats;

/*
 * Solves inst within the limits in params. On OP_OK *best holds the best
 * feasible plan found (the caller frees it with route_solution_clear),
 * checked by route_check_solution, and *stats the effort (stats may be
 * NULL). A feasible plan exists from the first milliseconds (a sequential
 * insertion runs before the genetic search). Stops no vehicle can serve
 * (route_stop_problem) and, when no full plan was found in the time given
 * (a fleet too small, windows that cannot all be met), the fewest stops the
 * best partial plan could not fit are listed in best->unassigned with their
 * reason; such plans are preferred by fewer unassigned stops, then cost.
 * With params->strict those cases are refused instead: OP_EINVAL naming
 * the culprit (route_precheck) or "no feasible solution found". Other
 * errors: OP_EINVAL when params or the checkpoint are bad; OP_ENOMEM.
 */
int hgs_solve(const route_instance *inst, const hgs_params *params, route_solution *best,
              hgs_stats *stats, char *err, size_t err_len);

#endif
