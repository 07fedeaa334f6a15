/*
 * sched: placement of one job on the fleet (pure: no I/O, no clock, no
 * allocation except the explanation text).
 *
 * sched_place() filters every site (alive, class allowed by the job, data
 * residency, not excluded for this job, capacity that could ever fit, free
 * capacity now, power headroom for the job's draw) and scores the rest;
 * the first policy is "capacity fit + headroom + least loaded". Every
 * decision carries a written explanation: which sites were filtered out
 * and why, and the winner's score. The power-aware scheduler replaces the
 * policy behind this same interface.
 */
#ifndef OUTPOST_SCHED_H
#define OUTPOST_SCHED_H

#include <stddef.h>
#include <stdint.h>

/* A site as the scheduler sees it (the fleet view), filled by the hub. */
typedef struct sched_site {
    const char *id;
    unsigned class_bit; /* CLASS_POD / CLASS_CAR / CLASS_DC (jobspec.h) */
    int alive;          /* heartbeat seen within the loss timeout */
    int cores;          /* total cores the site offers */
    int free_cores;     /* cores not reserved by running or placed jobs */
    int64_t memory_mb;
    int64_t free_memory_mb;
    double headroom_watts; /* power still available for new work */
    double watts_per_core; /* draw of one busy core on this site's hardware */
    int running_jobs;
} sched_site;

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
    int site_private;    /* 1: may run only on origin */
    const char *const
        *excluded;          /* site ids that refused or lost this job; NULL-terminated or NULL */
    sched_allow_fn allowed; /* NULL: no rules beyond the built-in filters */
    void *allowed_ctx;
} sched_job;

enum {
    SCHED_PLACED = 0,     /* site_index is the winner */
    SCHED_WAIT = 1,       /* some site could run it later: keep it queued */
    SCHED_IMPOSSIBLE = 2, /* no site in the fleet can ever run it */
};

typedef struct sched_decision {
    int outcome;    /* SCHED_* */
    int site_index; /* index into the sites array when placed, else -1 */
    double score;
    char *explanation; /* malloc'd; caller frees with sched_decision_clear */
} sched_decision;

/*
 * Decides where job goes among n sites. Returns OP_OK (see decision.outcome)
 * or OP_ENOMEM. Ties are broken by lower index, so a decision is a pure
 * function of its inputs.
 */
int sched_place(const sched_site *sites, size_t n, const sched_job *job, sched_decision *out);

/* Reserves the job's cores, memory and power on the chosen site (batch placement). */
void sched_reserve(sched_site *site, const sched_job *job);

/* Watts a job would add on a site: cores x watts_per_core. */
double sched_job_watts(const sched_site *site, const sched_job *job);

void sched_decision_clear(sched_decision *decision);

#endif
