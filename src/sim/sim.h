/*
 * sim: the fleet simulator behind `outpost sim`. Virtual time, a fleet of
 * charging-site pods, parked cars and warehouse data centers generated from
 * real data (simdata), and three placement strategies run side by side on
 * the same world, step by step:
 *
 *   outpost       sched_fleet_place (the same filter and score as the hub's
 *                 sched_place) with power forecasts (power_forecaster),
 *                 stated departures and grid signals; each site enforces
 *                 its envelope (sheds the newest jobs, which checkpoint)
 *   least-loaded  power-oblivious spread: the site with the most free cores
 *                 (a default Kubernetes/Nomad-style spread)
 *   first-fit     the first site, in a fixed order, with the cores free
 *                 (first fit on static capacity)
 *
 * With misstated set, submitters misstate expected_s (a per-program factor
 * drawn from what the literature on users' run time estimates reports, the
 * runs themselves varying as much as real taxi trips vary around a
 * distance-based plan; docs/simulator.md), and a fourth strategy runs on
 * the same world:
 *   outpost-learned  Outpost's placer planning with run times it learns from
 *                    the jobs that finish (core/runtime, as the hub does)
 *                    where a job declared none or a poor one
 *
 * The world (envelopes, departures, jobs) is a pure function of the data and
 * the parameters, seed included. docs/simulator.md gives every modelling
 * choice and constant.
 */
#ifndef OUTPOST_SIM_H
#define OUTPOST_SIM_H

#include "core/jobspec.h"
#include "sim/simdata.h"

#include <stddef.h>
#include <stdint.h>

/* The placement strategies compared, in report order (the last only with misstated). */
enum { SIM_OUTPOST, SIM_LEAST_LOADED, SIM_FIRST_FIT, SIM_OUTPOST_LEARNED, SIM_STRATEGIES };
/*
 * Site classes as array indices (0, 1, 2), in report order. Not the
 * CLASS_POD/CAR/DC bits of jobspec.h (1, 2, 4): sim_class_bit maps one to
 * the other.
 */
enum { SIM_CLASS_POD, SIM_CLASS_CAR, SIM_CLASS_DC, SIM_CLASSES };

typedef struct sim_params {
    size_t sites;
    size_t jobs;
    int days; /* simulated days after one day of warm-up (forecasters learn) */
    uint64_t seed;
    int regions; /* 1..SCHED_MAX_REGIONS; each gets its own carbon and price series */
    int step_s;  /* time step, 10..900 */
    double
        reaction_s; /* a site's enforcement reaction time (counted, not simulated below a step) */
    int no_defer;   /* 1: no job is deferrable (to measure what deferral costs and saves) */
    int misstated;  /* 1: submitters misstate expected_s; outpost-learned runs too */
    void (*progress)(void *ctx, double fraction, const char *what);
    void *progress_ctx;
    double (*now_s)(void); /* a monotonic clock for the timing figures; NULL: not timed */
} sim_params;

void sim_params_default(sim_params *p);

/* What one strategy achieved over the simulated days. */
typedef struct sim_strategy_report {
    double used_kwh[SIM_CLASSES];  /* energy drawn within the envelope */
    double over_kwh;               /* energy drawn above an envelope */
    double violation_site_s;       /* site-seconds above the envelope beyond the reaction time */
    double within_reaction_site_s; /* site-seconds above it, each shed within the reaction time */
    double used_unit_s, usable_unit_s; /* spare used vs what eligible work could have used */
    long completed, on_time, dropped, preempted, lost_on_departure;
    long missed; /* deadlines missed: dropped, or passed within the run late or unfinished */
    double wasted_unit_h; /* work redone after a loss */
    double cost_eur, carbon_kg;
    long placements;
    double place_s; /* time spent deciding placements */
    long queued_at_end, running_at_end;
    /* fresh starts by what their run time was planned with, and how far off that was */
    long planned_declared, planned_learned, planned_unknown;
    double plan_log_error; /* mean |ln(planned / actual run time)| over fresh starts with a plan */
} sim_strategy_report;

/* How the submitters misstated expected_s (misstated runs), over every job. */
typedef struct sim_misstatement {
    double undeclared;   /* share of jobs without expected_s */
    double median_ratio; /* median of declared / actual among the others */
    double under, over2; /* shares declared below the actual, at 2x it or more */
    double log_sigma;    /* standard deviation of ln(declared / actual) */
    double infeasible;   /* share of jobs whose run takes longer than their deadline allows */
    int programs;        /* programs the jobs run */
} sim_misstatement;

typedef struct sim_report {
    size_t sites_by_class[SIM_CLASSES];
    size_t jobs;
    double offered_kwh[SIM_CLASSES];
    double hardware_kwh[SIM_CLASSES]; /* what the sites present could draw at full load */
    sim_strategy_report strategy[SIM_STRATEGIES];
    size_t n_steps;
    int step_s;
    /* per step and class: offered watts, then each strategy's draw */
    float *series; /* n_steps x SIM_CLASSES x (1 + SIM_STRATEGIES) */
    double sched_bytes_per_site;
    double wall_s;
    sim_misstatement misstated; /* zero unless p->misstated */
} sim_report;

/* "outpost", "least-loaded", "first-fit", "outpost-learned"; "?" out of range. */
const char *sim_strategy_name(int strategy);
/* 1 when the strategy runs with p (outpost-learned only with p->misstated). */
int sim_strategy_active(const sim_params *p, int strategy);
/* "pod", "car", "dc"; "?" out of range. */
const char *sim_class_name(int cls);
/* The jobspec CLASS_* bit of a SIM_CLASS_* index; 0 out of range. Inline: placement calls it. */
static inline unsigned sim_class_bit(int cls)
{
    return cls == SIM_CLASS_POD   ? CLASS_POD
           : cls == SIM_CLASS_CAR ? CLASS_CAR
           : cls == SIM_CLASS_DC  ? CLASS_DC
                                  : 0;
}

/*
 * Runs the simulation. OP_OK, OP_EINVAL (err says which parameter), OP_ENOMEM.
 * On OP_OK the caller releases *out with sim_report_clear.
 */
int sim_run(const simdata *data, const sim_params *p, sim_report *out, char *err, size_t err_len);
/* Frees the report's series and zeroes it. */
void sim_report_clear(sim_report *r);

#endif
