/*
 * sim internals, shared by the simulator's three files:
 *   sim_world.c     the world built from the data (sites, car days, charger
 *                   events, jobs, grid signals) and its envelopes now and
 *                   forecast;
 *   sim_strategy.c  one placement strategy's run state: running jobs, the
 *                   queue, the completion wheel, and placement (Outpost's
 *                   scheduler or a baseline);
 *   sim.c           the step loop that runs the strategies side by side;
 *   sim_misstate.c  submitters' misstated run times and the learned ones
 *                   (outpost-learned).
 * Pure, like sim.h. The constants are those of docs/simulator.md.
 */
#ifndef OUTPOST_SIM_INT_H
#define OUTPOST_SIM_INT_H

#include "base/util.h"
#include "core/power.h"
#include "core/runtime.h"
#include "core/sched.h"
#include "sim/sim.h"
#include "sim/simdata.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* ---------- the constants of the world (docs/simulator.md) ---------- */

#define DAY_S 86400
#define FORECAST_EVERY_S 900 /* the forecasters observe and the horizons refresh */
#define POD_GRID_RATIO 0.42  /* ACN's 150 kW transformer over 54 EVSEs x 208 V x 32 A */
#define PILE_WATTS 6656.0    /* 208 V x 32 A */
#define POD_MARGIN 0.05      /* of the grid limit */
#define POD_UNIT_WATTS 300.0 /* an accelerator-class work unit */
#define CAR_UNITS 2
#define CAR_UNIT_WATTS 60.0
#define CAR_LEAD_S 600           /* stop this long before the stated departure */
#define CAR_PLUG_PROBABILITY 0.7 /* a car plugs in on a given day */
#define DC_UNIT_WATTS 250.0
#define CHECKPOINT_S 1800      /* every job checkpoints this often */
#define CAR_CHECKPOINT_S 600   /* Outpost: more often on short-stay hosts */
#define SIGNAL_START_DAY 18414 /* 2020-06-01: carbon series (2020) */
#define PRICE_START_DAY 16953  /* 2016-06-01: the NL price series (2016) */

/* ---------- misstated run times (sim_misstate.c, docs/simulator.md) ---------- */

#define MIS_PROGRAMS 500        /* programs the jobs run; popularity Zipf (s = 1) */
#define MIS_UNDECLARED 0.2      /* share of jobs submitted without expected_s */
#define MIS_FACTOR_MEDIAN 2.5   /* a program's submitter declares this many times its typical run */
#define MIS_FACTOR_SIGMA 0.7    /* ln spread of that factor over programs (about 10% under) */
#define MIS_RUN_SIGMA 0.45      /* ln spread of one program's runs: NYC taxi trips around a plan */
#define MIS_LEARN_CAPACITY 4096 /* outpost-learned's table: the hub's size */

/* ---------- random numbers (util_splitmix64: seeded, reproducible) ---------- */

static inline double sim__uniform(uint64_t *s)
{
    return (double)(util_splitmix64(s) >> 11) / 9007199254740992.0;
}
static inline double sim__normal(uint64_t *s)
{
    double u = sim__uniform(s), v = sim__uniform(s);
    return sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}
static inline uint32_t sim__below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(sim__uniform(s) * n);
}

/* ---------- the world ---------- */

typedef struct car_day {
    int32_t plug_s, leave_s, stated_s; /* sim seconds; plug_s < 0: not plugged that day */
} car_day;

typedef struct pod_event {
    int32_t site;
    float delta_watts;
} pod_event;

/*
 * A generated job: when it comes, what it needs, where it may run. est_s is
 * its declared expected_s (with misstated, 0 when it declared none); work_s
 * how long it really runs.
 */
typedef struct sim_job {
    int32_t arrival_s, deadline_s, est_s, work_s;
    int32_t origin; /* site index for site-private jobs, else -1 */
    uint8_t cores, mask, deferrable, origin_region;
    uint16_t program; /* misstated: the program it runs (0 .. MIS_PROGRAMS-1) */
} sim_job;

typedef struct world {
    const sim_params *p;
    size_t n;
    uint8_t *cls, *region; /* cls: a SIM_CLASS_* index */
    uint16_t *units;
    float *wpc, *limit, *load, *env, *compute_max;
    int32_t *order_in_class; /* position in its class's segment tree */
    size_t class_count[SIM_CLASSES];
    int32_t *class_members[SIM_CLASSES];
    car_day *car;         /* n x days_total, for cars */
    power_forecaster *fc; /* pods */
    int32_t *fc_index;    /* site -> forecaster, -1 */
    pod_event *events;
    int32_t *event_at; /* CSR: events of step s are [event_at[s], event_at[s+1]) */
    int days_total, steps, steps_per_day, warm_steps;
    sim_job *jobs;
    size_t n_jobs;
    float *rank, *price, *carbon; /* per step x region */
    char **ids;
    sim_misstatement mis; /* with misstated: how the jobs' expected_s are off */
} world;

static inline int64_t ms(int32_t s)
{
    return (int64_t)s * 1000;
}

/* Sim time t_s: 0 is midnight (local) of the first simulated day; warm-up is negative. */
static inline int32_t step_time(const world *w, int step)
{
    return (int32_t)((step - w->warm_steps) * w->p->step_s);
}

/* The caller's monotonic clock in seconds (timing figures only), 0 without one. */
static inline double clock_s(const sim_params *p)
{
    return p->now_s ? p->now_s() : 0;
}

/* The simulated time the run ends at (the last step's end). */
static inline int32_t end_time(const world *w)
{
    return step_time(w, w->steps - 1) + w->p->step_s;
}

/*
 * Builds the whole world for p from the data, the same for every seed-equal
 * run: site ids, sites, charger events, jobs, grid signals. OP_OK or
 * OP_ENOMEM; either way the caller releases it with sim__world_clear.
 */
int sim__world_build(world *w, const simdata *data, const sim_params *p);
void sim__world_clear(world *w);

/* Envelopes now: a pod's (grid limit - chargers - margin), a dc's schedule. */
double sim__pod_envelope(const world *w, size_t i);
double sim__dc_envelope(const world *w, size_t i, int32_t t_s);
/* A car's envelope at t_s, -1 when it is not there; *stay_until its stated stay (else 0). */
double sim__car_envelope(const world *w, size_t i, int32_t t_s, int32_t *stay_until);
/* Forecast envelope minima over every sched horizon from now_s, into out[SCHED_HORIZONS]. */
void sim__horizons(const world *w, size_t i, int32_t now_s, double env_now, double *out);

/* ---------- one strategy's run ---------- */

enum { SIM_JOB_FUTURE, SIM_JOB_QUEUED, SIM_JOB_RUNNING, SIM_JOB_DONE, SIM_JOB_DROPPED };

typedef struct sim_job_run {
    int32_t site, start_s, done_s, end_s;
    int32_t next, prev; /* per-site running list */
    uint8_t state;      /* SIM_JOB_* */
} sim_job_run;

/* outpost-learned: what one program's runs taught, read once per step. */
typedef struct sim_learned {
    int32_t stamp; /* the step time it was read at, INT32_MIN never */
    uint8_t have_learned, have_ratio;
    runtime_stats learned, ratio;
} sim_learned;

typedef struct strategy_state {
    int strategy; /* SIM_OUTPOST, SIM_LEAST_LOADED, SIM_FIRST_FIT, SIM_OUTPOST_LEARNED */
    int on;       /* it runs (sim_strategy_active) */
    sched_site *view;
    sched_fleet *fleet; /* outpost */
    int32_t *tree;      /* baselines: max free cores per class, segment trees */
    size_t tree_size;
    float *draw;          /* watts drawn by running jobs per site */
    int32_t *head, *tail; /* running jobs per site, oldest first */
    uint32_t *attempts, *failures;
    sim_job_run *run;
    int32_t *queue;
    size_t n_queue, cap_queue;
    int32_t *wheel;      /* completion lists per step: first entry, or -1 */
    int32_t (*entry)[2]; /* (job, next entry); a restarted job gets a new entry */
    size_t n_entry, cap_entry;
    double demand_units[8]; /* outstanding job cores per class mask */
    runtime *rt;            /* outpost-learned: run times learned from finished jobs */
    sim_learned *learned;   /* per program */
    uint64_t (*keys)[2];    /* per program: its PROGRAM and RATIO keys */
    double plan_error_sum;  /* |ln(planned / actual)| over fresh starts with a plan */
    sim_strategy_report rep;
} strategy_state;

/* Outpost's placer and its sites' enforcement: outpost and outpost-learned. */
static inline int sim__is_outpost(const strategy_state *st)
{
    return st->strategy == SIM_OUTPOST || st->strategy == SIM_OUTPOST_LEARNED;
}

/* Allocates st for strategy over w. OP_OK or OP_ENOMEM (release with sim__strategy_clear). */
int sim__strategy_init(const world *w, strategy_state *st, int strategy);
void sim__strategy_clear(strategy_state *st);

/* A job finished or was stopped: off its site's list, its cores and draw released. */
void sim__unlink_job(const world *w, strategy_state *st, int32_t jid);
/*
 * A job stops before its end and goes back to the queue. graceful: the site
 * asked it to stop and it checkpointed; else the work since its last
 * periodic checkpoint is lost. OP_OK or OP_ENOMEM.
 */
int sim__stop_job(const world *w, strategy_state *st, int32_t jid, int32_t now_s, int graceful);
int sim__push_queue(strategy_state *st, int32_t jid);
/* Brings the strategy's view of site i up to date (see sim_strategy.c). */
void sim__refresh_view(const world *w, strategy_state *st, size_t i, const double *horizon_env,
                       int32_t stay_until, int alive, int step);
/* Places what it can from the queue, in arrival order. OP_OK or OP_ENOMEM. */
int sim__place_queue(const world *w, strategy_state *st, int32_t now_s);

/* ---------- sim_misstate.c ---------- */

/*
 * With misstated: each job runs one of MIS_PROGRAMS programs, whose
 * submitter declares a program-wide factor times its typical run time (or
 * nothing), and whose runs vary around that typical time; deadlines follow
 * what the submitter believes. Replaces the jobs' est_s, work_s and
 * deadline_s from a random stream of its own (the rest of the world is the
 * same as without), and fills w->mis. OP_OK or OP_ENOMEM.
 */
int sim__misstate_jobs(world *w);
/* outpost-learned's table and per-program cache (st->rt...). OP_OK or OP_ENOMEM. */
int sim__learned_init(strategy_state *st);
void sim__learned_clear(strategy_state *st);
/* A job that ran whole (never stopped) finished on site: its run time is learned. */
void sim__learn(const world *w, strategy_state *st, int32_t jid, size_t site);
/*
 * The run time, left after its work done, that st plans job jid with
 * (*plan_s, at least 60 s) and the shortest it believes (*least_s: its
 * deadline is judged with it). Returns 1 when learned, 0 when declared (or
 * unknown: est_s 0).
 */
int sim__planned(const world *w, strategy_state *st, int32_t jid, int32_t now_s, int32_t *plan_s,
                 int32_t *least_s);

#endif
