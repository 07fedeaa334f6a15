/*
 * sched: where a job goes on the fleet (pure: no I/O, no clock; the caller
 * passes the time in).
 *
 * Filter then score. A site is filtered out, with a reason, when it is of a
 * class the job does not allow, it is not the job's origin and the job must
 * stay there (data residency), it is too small ever to run the job, it refused
 * or lost this job before, policy forbids it, it is lost, it is busy, its
 * power headroom now is below the job's draw, its forecast headroom over the
 * job's expected duration is, it will leave (a parked car's stated departure)
 * before the job can finish, the job is deferrable with slack and the
 * site's grid power is dear right now, or the hub holds work back from it
 * (quarantined, or its capacity being probed). A job whose deadline cannot be met by
 * any start now is impossible, not queued forever.
 *
 * The remaining sites are scored (higher is better), every term in [0, 1]:
 *   0.5 x load     0.7 x cores free after + 0.3 x power headroom left
 *   0.2 x green    1 - grid_rank (where the site's price/carbon now sits in
 *                  its region's day ahead: 0 cheapest and cleanest)
 *   0.2 x reliable 1 - the site's failure rate so far
 *   0.1 x near     1 when the site is in the job's origin region
 *   0.3 x model    1 when the site already holds the job's model (no fetch before it
 *                  starts: for a large model the biggest saving a placement can make)
 *
 * Two placers share that filter and that score:
 *   sched_place        scans every site and explains every filtered one (the
 *                      hub, whose fleets are small; every decision is written
 *                      to the job's record)
 *   sched_fleet_place  uses an index of (class, region) groups and buckets of
 *                      power-limited free slots per forecast horizon, so one
 *                      placement costs a few bucket lookups and a handful of
 *                      exact checks instead of a scan (the
 *                      simulator's fleets of 100,000 sites; docs/scheduling.md)
 */
#ifndef OUTPOST_SCHED_H
#define OUTPOST_SCHED_H

#include <stddef.h>
#include <stdint.h>

/* Forecast horizons: a job of expected duration d is checked against the first H >= d. */
#define SCHED_HORIZONS 8
extern const int64_t sched_horizon_ms[SCHED_HORIZONS]; /* 15 min .. 24 h */

/* A site as the scheduler sees it (the fleet view), filled by the hub or the simulator. */
typedef struct sched_site {
    const char *id;
    unsigned class_bit; /* CLASS_POD / CLASS_CAR / CLASS_DC (jobspec.h) */
    int alive;          /* heartbeat seen within the loss timeout (a car: plugged in) */
    int cores;          /* total cores (work units) the site offers */
    int free_cores;     /* cores not reserved by running or placed jobs */
    int64_t memory_mb;
    int64_t free_memory_mb;
    double headroom_watts; /* envelope now minus the draw of running and placed jobs */
    double watts_per_core; /* draw of one busy core on this site's hardware */
    int running_jobs;
    /*
     * Forecast headroom: the least forecast envelope over [now, now + horizon]
     * minus the committed draw, per sched_horizon_ms. has_forecast 0: flat at
     * headroom_watts (no forecast known).
     */
    int has_forecast;
    float horizon_watts[SCHED_HORIZONS];
    int64_t stay_until_ms; /* 0: no known departure; else the site leaves at this time */
    double grid_rank;      /* 0..1, see above; 0 when unknown */
    double failure_rate;   /* 0..1: attempts lost or failed by the site / attempts; 0 unknown */
    int region;            /* 0 .. SCHED_MAX_REGIONS-1 */
    /*
     * NULL or "": the site may take work. Else why it takes none for now
     * (quarantined until an operator clears it, its capacity being probed):
     * a passing filter, named with this text in the explanation.
     */
    const char *held;
} sched_site;

#define SCHED_MAX_REGIONS 64

/*
 * Optional rule check per site (policy): returns 1 allow, 0 never (a
 * permanent filter) or -1 not now (a transient one), with the rule in why.
 */
typedef int (*sched_allow_fn)(void *ctx, const sched_site *site, char *why, size_t why_len);

typedef struct sched_job {
    int cores;
    int64_t memory_mb;
    unsigned class_mask; /* allowed site classes */
    const char *origin;  /* origin site id or NULL */
    int origin_index;    /* sched_fleet_place only: the origin's index, -1 unknown */
    int origin_region;   /* region of the origin, -1 none */
    int site_private;    /* 1: may run only on origin */
    const char *const
        *excluded;          /* site ids that refused or lost this job; NULL-terminated or NULL */
    sched_allow_fn allowed; /* NULL: no rules beyond the built-in filters */
    void *allowed_ctx;
    int64_t now_ms;      /* the time of the decision (deadlines, departures) */
    int64_t duration_ms; /* expected run time, 0 unknown (checked against headroom now only) */
    int64_t deadline_ms; /* 0: none */
    int deferrable;      /* may wait for cheaper/cleaner power inside its deadline */
    /*
     * The job's model ("NAME@VERSION", for the explanation) and whether a
     * site holds its artifact already (holds: 1 yes); NULL: no model.
     */
    const char *model;
    int (*holds)(void *ctx, const sched_site *site);
    void *holds_ctx;
    /*
     * Optional: the run time to plan with on one site (learned per site or
     * class, core/runtime), for its departure, forecast and deferral checks;
     * NULL, or 0 from it: duration_ms. duration_ms still decides the
     * deadline and the index's horizon, so it should be the shortest
     * credible run time.
     */
    int64_t (*duration_on)(void *ctx, const sched_site *site);
    void *duration_ctx;
} sched_job;

#define SCHED_MODEL_BONUS 0.3

/*
 * A deferrable job waits while grid_rank > this (its site's grid signal is
 * the dearest of the last 24 hourly samples) and its slack is at least
 * SCHED_DEFER_SLACK_MS. Measured in `outpost sim` (docs/scheduling.md):
 * waiting through the dearest half of the day cut 7% of the energy cost but
 * left 19% of the usable spare power unused; this setting keeps 95.4% of it.
 */
#define SCHED_DEFER_RANK 0.95
#define SCHED_DEFER_SLACK_MS (2 * 3600 * 1000LL)

enum {
    SCHED_PLACED = 0,     /* site_index is the winner */
    SCHED_WAIT = 1,       /* some site could run it later: keep it queued */
    SCHED_IMPOSSIBLE = 2, /* no site in the fleet can ever run it (or its deadline is past) */
};

/*
 * The reasons the scheduler works with: why a site was filtered out (each
 * filter of sched_filter has one code, counted per decision), and why a job
 * could not be placed (SCHED_WHY_DEADLINE: no start now meets the job's
 * deadline, whatever the sites). The explanation text is built from these
 * codes; callers decide on the codes, never on the text.
 */
typedef enum sched_why {
    SCHED_WHY_NONE = -1, /* nothing stands in the way (the site may take the job) */
    SCHED_WHY_LOST = 0,
    SCHED_WHY_CLASS,
    SCHED_WHY_RESIDENCY,
    SCHED_WHY_EXCLUDED, /* the site refused or lost this job before */
    SCHED_WHY_TOO_SMALL,
    SCHED_WHY_BUSY,
    SCHED_WHY_POWER,        /* power headroom now */
    SCHED_WHY_FORECAST,     /* forecast headroom over the job's expected duration */
    SCHED_WHY_LEAVES,       /* departure before the job can finish */
    SCHED_WHY_DEARER,       /* deferral: grid power dear now and the job has slack */
    SCHED_WHY_POLICY,       /* a policy rule forbids it */
    SCHED_WHY_POLICY_LATER, /* a policy rule forbids it now */
    SCHED_WHY_HELD,         /* the hub holds work back from it (sched_site.held says why) */
    SCHED_WHY_DEADLINE,
    SCHED_WHY_COUNT
} sched_why;

typedef struct sched_decision {
    int outcome;    /* SCHED_* */
    int site_index; /* index into the sites array when placed, else -1 */
    double score;
    /*
     * Why the job was not placed: SCHED_WHY_DEADLINE, else the filter that
     * stopped the most sites (for SCHED_IMPOSSIBLE the most frequent
     * permanent one, for SCHED_WAIT the most frequent passing one).
     * SCHED_WHY_NONE when placed or when no site was there to look at.
     */
    sched_why why;
    int filtered[SCHED_WHY_COUNT]; /* sites filtered per reason (the ones looked at) */
    int looked_at;                 /* sites checked exactly */
    char *explanation; /* malloc'd by sched_place (always) and sched_fleet_place (when asked) */
} sched_decision;

/*
 * Decides where job goes among n sites by scanning them all. Returns OP_OK
 * (see decision.outcome) or OP_ENOMEM. Ties are broken by lower index, so a
 * decision is a pure function of its inputs.
 */
int sched_place(const sched_site *sites, size_t n, const sched_job *job, sched_decision *out);

/* Reserves the job's cores, memory and power (now and over every horizon) on the site. */
void sched_reserve(sched_site *site, const sched_job *job);
/* Gives them back (a job ended or was handed back). */
void sched_release(sched_site *site, const sched_job *job);

/* Watts a job would add on a site: cores x watts_per_core. */
double sched_job_watts(const sched_site *site, const sched_job *job);
/* The horizon index a job of this duration is checked against. */
int sched_horizon_for(int64_t duration_ms);
/* The filter (a SCHED_WHY_* code, SCHED_WHY_NONE when the site may take the job) and the score. */
int sched_filter(const sched_site *site, const sched_job *job, char *detail, size_t detail_len);
double sched_score(const sched_site *site, const sched_job *job);

void sched_decision_clear(sched_decision *decision);

/* ---------- the fleet index ---------- */

/* At most this many sites are checked exactly per group by sched_fleet_place. */
#define SCHED_FLEET_PROBES 8

typedef struct sched_fleet sched_fleet;

/*
 * An index over the caller's array of n sites (the caller keeps the array
 * alive and calls sched_fleet_update after changing a site outside the
 * reserve/release calls below). NULL when out of memory.
 */
sched_fleet *sched_fleet_new(sched_site *sites, size_t n);
void sched_fleet_free(sched_fleet *f);
/* Re-files site i after its fields changed (envelope, forecast, alive, departure). */
void sched_fleet_update(sched_fleet *f, size_t i);
/*
 * Places a job: the (class, region) groups that could hold it are ranked by
 * their grid signal and distance to the origin; in that order, the sites
 * whose power-limited free slots over the job's horizon fit the job most
 * tightly (best fit: it packs work, keeps large holes for large jobs, and in
 * the simulator uses 8 points more of the usable spare energy than spreading)
 * are checked exactly (sched_filter, at most SCHED_FLEET_PROBES per group),
 * and the first two that pass in each of the first three groups that have one
 * are scored (sched_score). Sites must be filed honestly: a known departure shows as 0 W
 * in the horizons past it, or the probes are spent on sites that will leave. Deterministic for the
 * same inputs. Sets out->explanation only when explain is 1. Returns OP_OK or OP_ENOMEM. Does not
 * reserve: call sched_fleet_reserve on the winner.
 */
int sched_fleet_place(sched_fleet *f, const sched_job *job, int explain, sched_decision *out);
/*
 * Places a batch in order, reserving each winner before the next decision.
 * A job without per-job rules (no excluded list, no policy callback, not
 * site-private) that must wait marks its (classes, cores, horizon, deferring)
 * as full for the rest of the batch: capacity only shrinks inside a batch, so
 * later jobs of the same shape wait at once (outcome SCHED_WAIT, looked_at 0).
 * out[i] gets each decision without explanation; *placed counts the winners.
 * OP_OK or OP_ENOMEM.
 */
int sched_fleet_place_batch(sched_fleet *f, const sched_job *jobs, size_t n, sched_decision *out,
                            size_t *placed);
void sched_fleet_reserve(sched_fleet *f, size_t i, const sched_job *job);
void sched_fleet_release(sched_fleet *f, size_t i, const sched_job *job);
/* Bytes the index holds per site (besides the caller's sched_site array). */
size_t sched_fleet_bytes_per_site(void);

#endif
