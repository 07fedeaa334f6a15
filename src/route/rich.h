/*
 * rich: the vehicle-routing problems depots have, beyond CVRP and VRPTW:
 * jobs with delivery and pickup amounts in several dimensions, shipments
 * (a pickup and its delivery on the same vehicle, pickup first), skills,
 * vehicles each with its own start and end (either may be absent: open
 * routes), shift, capacity, breaks, maximum travel time, distance and task
 * count, costs (fixed, per hour of travel, per km), several time windows
 * per task, setup and service times, priorities and optional jobs. This is
 * the model VROOM's JSON describes (vroomio reads and writes that form).
 *
 * The module owns the problem (rich_problem), plans (rich_plan), the route
 * evaluator the search uses (rich_eval.c), the search itself (regret
 * insertion, then ruin and recreate under simulated annealing:
 * rich_search.c) and an independent checker (richcheck.c) that shares no
 * evaluation code with the search. Pure: data in, data out; a clock is read
 * only through params->now_s.
 *
 * Units: times in seconds, distances in metres, integers throughout (as
 * VROOM); costs are doubles. The objective (VROOM's): serve the most total
 * priority, then the most tasks, then the lowest cost. Tasks that no plan
 * found serves are listed as unassigned; that is never an error.
 */
#ifndef OUTPOST_RICH_H
#define OUTPOST_RICH_H

#include <stddef.h>
#include <stdint.h>

#define RICH_MAX_DIMS 8     /* capacity dimensions */
#define RICH_MAX_TASKS 5000 /* jobs plus twice the shipments */
#define RICH_MAX_VEHICLES 1000
#define RICH_MAX_BREAKS 16      /* per vehicle */
#define RICH_MAX_WINDOWS 64     /* per task, break or vehicle */
#define RICH_MAX_LOCATIONS 6000 /* rows of a matrix (6,000^2 x 8 bytes: 288 MB per profile) */
#define RICH_MAX_PROFILES 8
#define RICH_SKILL_WORDS 4 /* 256 distinct skill values */
#define RICH_MAX_TIME ((int64_t)1 << 50)

enum rich_kind { RICH_JOB = 0, RICH_PICKUP = 1, RICH_DELIVERY = 2 };

typedef struct rich_tw {
    int64_t start, end; /* both inclusive: a task begins at a time inside */
} rich_tw;

/*
 * One task: a job, or one half of a shipment. Loads: a route leaves with the
 * sum of its tasks' start_load (jobs' deliveries) aboard; each task then
 * changes the load by delta (a job: pickup - delivery; a shipment's pickup:
 * + amount; its delivery: - amount).
 */
typedef struct rich_task {
    int kind;      /* rich_kind */
    int64_t id;    /* the user's id (jobs and shipment steps have their own id spaces) */
    int loc;       /* location index */
    int partner;   /* the other half of a shipment, or -1 */
    int request;   /* the request (job or shipment) it belongs to */
    int64_t setup; /* when arriving from another location */
    int64_t service;
    int64_t start_load[RICH_MAX_DIMS];
    int64_t delta[RICH_MAX_DIMS];
    int64_t amount[RICH_MAX_DIMS][2]; /* as given: [d][0] delivery, [d][1] pickup (output) */
    uint64_t skills[RICH_SKILL_WORDS];
    int priority; /* 0..100 */
    int n_tw;     /* >= 1 */
    rich_tw *tw;  /* sorted, disjoint-or-touching; points into the problem */
} rich_task;

typedef struct rich_break {
    int64_t id;
    int64_t service;
    int n_tw;
    rich_tw *tw;
    int has_max_load;
    int64_t max_load[RICH_MAX_DIMS];
} rich_break;

typedef struct rich_vehicle {
    int64_t id;
    int start_loc, end_loc; /* -1: absent (the route starts/ends at its first/last task) */
    int profile;            /* index of its travel matrices */
    int64_t capacity[RICH_MAX_DIMS];
    uint64_t skills[RICH_SKILL_WORDS];
    rich_tw tw;              /* leaves at or after start, back (or done) by end */
    int64_t max_travel_time; /* RICH_MAX_TIME: none */
    int64_t max_distance;    /* RICH_MAX_TIME: none */
    int max_tasks;           /* INT32_MAX: none */
    double fixed, per_hour, per_km;
    int n_breaks;
    rich_break *breaks; /* in order of their first window */
} rich_vehicle;

/* A request: what is assigned or left out as a whole (a job, or both halves of a shipment). */
typedef struct rich_request {
    int first, second; /* tasks; second = -1 for a job */
} rich_request;

typedef struct rich_problem {
    int n_dims;
    int n_tasks, n_requests, n_vehicles, n_locations, n_profiles;
    rich_task *tasks;
    rich_request *requests;
    rich_vehicle *vehicles;
    int64_t *durations[RICH_MAX_PROFILES]; /* n_locations^2, row = from */
    int64_t *distances[RICH_MAX_PROFILES]; /* n_locations^2, or NULL: distances unknown */
    int has_coords;
    double *lon, *lat; /* per location when has_coords, else NULL */
    char profile_names[RICH_MAX_PROFILES][32];
    rich_tw *tw_pool;       /* every window the tasks and breaks point into */
    rich_break *break_pool; /* every vehicle's breaks */
} rich_problem;

/* Frees what p owns and zeroes it (a zeroed problem is fine). */
void rich_problem_clear(rich_problem *p);

/* Travel time and distance from location a to b for vehicle v (0 when a or b is -1). */
int64_t rich_duration(const rich_problem *p, int v, int a, int b);
int64_t rich_distance(const rich_problem *p, int v, int a, int b);

/* Whether vehicle v has every skill task t needs. */
int rich_skills_ok(const rich_problem *p, int v, int t);

/*
 * One step of a route: a task (>= 0) or break b of the vehicle (-(b+1));
 * arrival and waiting (the task or break begins at arrival + waiting).
 */
typedef struct rich_step {
    int what;
    int64_t arrival, waiting;
} rich_step;

#define RICH_BREAK(b) (-(b)-1)
#define RICH_IS_BREAK(w) ((w) < 0)
#define RICH_BREAK_INDEX(w) (-(w)-1)

/*
 * A plan: vehicle v drives steps[start[v] .. start[v+1]-1] (start and end
 * implicit: the vehicle leaves its start at begin[v]); an empty range is a
 * vehicle not used. Tasks no route serves are listed in unassigned[] (both
 * halves of a shipment). Owned by the caller; rich_plan_clear releases it.
 */
typedef struct rich_plan {
    int n_vehicles;
    int *start; /* n_vehicles + 1 */
    int64_t *begin;
    rich_step *steps;
    int n_steps;
    int n_unassigned;
    int *unassigned;
    /* filled by rich_check */
    double cost;
    int64_t travel, distance, service, setup, waiting;
    int priority, served;
} rich_plan;

/* Allocates a plan for n_vehicles with room for n_steps steps and n_unassigned. */
int rich_plan_alloc(rich_plan *plan, int n_vehicles, int n_steps, int n_unassigned);
/* Frees what plan owns and zeroes it. */
void rich_plan_clear(rich_plan *plan);

/*
 * The independent check (richcheck.c): re-walks every route from the steps
 * and their stated times: travel between locations, setup when the location
 * changes, each task and break begun inside one of its windows, loads per
 * dimension at every step within capacity (and a break's max_load), skills,
 * each shipment's pickup before its delivery on the same vehicle, the
 * vehicle's window, max_travel_time, max_distance and max_tasks, every
 * break of a used vehicle taken once, every task served at most once and
 * every unserved task listed exactly once. OP_OK with the cost, travel,
 * distance, service, setup, waiting, priority and served count filled in
 * plan, or OP_EINVAL with the first violation in err ("vehicle 3, step 4
 * (delivery 7): ...").
 */
int rich_check(const rich_problem *p, rich_plan *plan, char *err, size_t err_len);

typedef struct rich_progress {
    double elapsed_s;
    long iterations;
    double best_cost;
    int best_unassigned;
    const rich_plan *best; /* valid during the call only */
} rich_progress;

typedef struct rich_params {
    uint64_t seed;
    double time_limit_s;   /* 0 = none (then max_iterations must be set) */
    long max_iterations;   /* ruin-and-recreate steps; 0 = none */
    double (*now_s)(void); /* monotonic seconds; needed by time_limit_s */
    volatile int *stop;    /* becomes non-zero: stop and return the best */
    void (*on_improve)(void *ctx, const rich_progress *progress); /* may be NULL */
    void *ctx;
    const rich_plan *start; /* a plan to go on from (a checkpoint), or NULL */
} rich_params;

typedef struct rich_stats {
    long iterations;
    double elapsed_s, best_found_s;
} rich_stats;

/*
 * Plans p within the limits: regret insertion, then ruin and recreate (SISR
 * string removal, related and random removal; greedy or regret insertion
 * with blinks) under simulated annealing; the best plan (most priority,
 * then most tasks, then lowest cost) is kept. On OP_OK *best holds it,
 * already passed through rich_check (the caller frees it). Reproducible for
 * a seed with only max_iterations. With params->start (which must pass
 * rich_check) the search begins from that plan, its routes kept as they are
 * where the evaluator agrees they are feasible, and never returns a worse
 * one. OP_EINVAL (bad params, a start that fails the check), OP_ENOMEM.
 */
int rich_solve(const rich_problem *p, const rich_params *params, rich_plan *best, rich_stats *stats,
               char *err, size_t err_len);

#endif
