/*
 * runtime: learned run times. A pure, bounded table that learns from
 * finished jobs how long a program runs, and how far its submitters'
 * declared expected_s is from that, so the scheduler can plan with what the
 * fleet has seen instead of what a submitter typed (the hub's placement pass
 * and `outpost sim --misstated`; docs/scheduling.md).
 *
 * What it owns: one fixed-size table of entries, each the statistics of one
 * key. A finished job updates four keys:
 *   RUNTIME_PROGRAM  (kind, program)          its run time anywhere
 *   RUNTIME_CLASS    (kind, program, class)   on one site class
 *   RUNTIME_SITE     (kind, program, site)    on one site
 *   RUNTIME_RATIO    (kind, program)          actual / declared, when declared
 * "program" is an exec job's argv[0]; other kinds pass "" (the kind alone).
 *
 * Each entry is a robust online estimate in log space: a location (the log
 * of the typical run time) and a scale (the mean absolute deviation of the
 * log), updated with residuals clipped at 2.5 scales (one run that hung for
 * 100x moves the estimate by a bounded step), as a running mean for the
 * first 20 runs and an exponentially weighted one after (the last ~20 runs
 * count most: programs and fleets change). Run times are multiplicative
 * (a slow disk makes every step slower), so log space makes the error of a
 * 2x over- and a 2x under-estimate the same size.
 *
 * Bounded memory: the table never grows. A new key takes an empty slot
 * within RUNTIME_PROBE slots of its hash, or evicts the least recently
 * learned entry there (the caller is told which, to forget its copy).
 * Serialisable as rows (runtime_each, runtime_load) so the hub keeps it in
 * hub.db. No I/O, no clock: "recently" is a counter of observations.
 */
#ifndef OUTPOST_RUNTIME_H
#define OUTPOST_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

enum { RUNTIME_PROGRAM, RUNTIME_CLASS, RUNTIME_SITE, RUNTIME_RATIO, RUNTIME_LEVELS };

/* A level is used for a prediction only with this many runs behind it. */
#define RUNTIME_MIN_RUNS 5
/* A declared expected_s further than this factor from the learned run time is a poor one. */
#define RUNTIME_POOR_FACTOR 1.5
/* Placement plans with this quantile of the learned run time (z of the 80th percentile). */
#define RUNTIME_PLAN_Z 0.84
/* Run times are clamped to [1 s, 30 days] before they are learned. */
#define RUNTIME_MIN_MS 1000LL
#define RUNTIME_MAX_MS (30LL * 86400 * 1000)
/* A new key looks for a slot among this many after its hash. */
#define RUNTIME_PROBE 8
/* Labels (what a key is, for people and the hub's table) are cut to this many bytes. */
#define RUNTIME_LABEL_MAX 96

typedef struct runtime runtime;

/* One finished job, as the learner sees it. */
typedef struct runtime_obs {
    const char *kind;    /* "exec", "route", ...: required */
    const char *program; /* argv[0] of an exec job; NULL or "": the kind alone */
    unsigned class_bit;  /* the site's CLASS_* bit (jobspec.h); 0: not learned per class */
    const char *site;    /* the site's id; NULL: not learned per site */
    int64_t declared_ms; /* the submitter's expected_s x 1000; 0: none */
    int64_t actual_ms;   /* how long it really ran (the hub measures it on its own clock) */
} runtime_obs;

/* What one key has learned. */
typedef struct runtime_stats {
    uint32_t runs;
    double log_ms; /* location: ln of the typical run time in ms (ln of the ratio for RATIO) */
    double spread; /* mean absolute deviation of the ln, after clipping */
} runtime_stats;

/* Where an estimate came from. */
enum {
    RUNTIME_UNKNOWN,         /* nothing declared, too little learned: 0 */
    RUNTIME_DECLARED,        /* declared, too little learned to judge it */
    RUNTIME_DECLARED_AGREES, /* declared, within RUNTIME_POOR_FACTOR of what was learned */
    RUNTIME_LEARNED,         /* nothing declared: learned */
    RUNTIME_LEARNED_OVER,    /* declared a poor value: learned instead */
    RUNTIME_CORRECTED,       /* declared a poor value: declared x the learned ratio */
};

/* 1 when an estimate of this source plans with a learned run time (not the declared one). */
static inline int runtime_source_learned(int source)
{
    return source == RUNTIME_LEARNED || source == RUNTIME_LEARNED_OVER ||
           source == RUNTIME_CORRECTED;
}

typedef struct runtime_estimate {
    int source;          /* RUNTIME_UNKNOWN ... RUNTIME_CORRECTED */
    int level;           /* the level whose runs it rests on (RUNTIME_RATIO for CORRECTED) */
    uint32_t runs;       /* runs behind it (0 when nothing was learned) */
    double sigma;        /* its spread as a standard deviation of ln(run time) */
    int64_t declared_ms; /* as given */
    int64_t typical_ms;  /* the median run time it expects (the declared one when kept) */
    int64_t plan_ms;     /* what placement plans with: the 80th percentile (declared when kept) */
} runtime_estimate;

/*
 * A table of about capacity entries (rounded up to a power of two, 64 to
 * 4,194,304). NULL when out of memory. Released with runtime_free.
 */
runtime *runtime_new(size_t capacity);
void runtime_free(runtime *rt);
/* Its number of slots, and how many hold a key. */
size_t runtime_capacity(const runtime *rt);
size_t runtime_used(const runtime *rt);

/*
 * Learns from one finished job: its PROGRAM key, its CLASS and SITE keys
 * when given, its RATIO key when declared. Keys it had to evict to make
 * room are written to evicted[] (*n_evicted of them, at most
 * RUNTIME_LEVELS; either may be NULL). OP_OK, OP_EINVAL (no kind, a kind,
 * program or site longer than RUNTIME_LABEL_MAX, actual_ms <= 0 or
 * declared_ms < 0: nothing learned).
 */
int runtime_observe(runtime *rt, const runtime_obs *obs, uint64_t *evicted, int *n_evicted);

/*
 * The key of one level for (kind, program) and, for CLASS, class_bit, for
 * SITE, site; the same for every table and run (the hub stores it).
 */
uint64_t runtime_key(int level, const char *kind, const char *program, unsigned class_bit,
                     const char *site);
/* What the table knows under key into *out; 1 when known, else 0 (*out zeroed). */
int runtime_lookup(const runtime *rt, uint64_t key, runtime_stats *out);

/*
 * The estimate for one job from what was learned (learned: the most
 * specific level with RUNTIME_MIN_RUNS runs, or NULL; learned_level its
 * level; ratio: the RATIO stats with RUNTIME_MIN_RUNS runs, or NULL) and
 * what it declared (0: nothing). With nothing declared the learned run time
 * is used. A declared value is kept unless it is further than
 * RUNTIME_POOR_FACTOR from the learned median: then the better-founded of
 * the learned run time and the declared value x the learned ratio (the one
 * with the smaller spread: a program whose run time follows its input size
 * is better predicted by the ratio) replaces it. Pure arithmetic.
 */
void runtime_decide(const runtime_stats *learned, int learned_level, const runtime_stats *ratio,
                    int64_t declared_ms, runtime_estimate *out);

/*
 * The whole chain for one job on one site: SITE, then CLASS, then PROGRAM
 * (the first with RUNTIME_MIN_RUNS runs; class_bit 0 and site NULL skip
 * theirs), then the declared value (runtime_decide).
 */
void runtime_predict(const runtime *rt, const char *kind, const char *program, unsigned class_bit,
                     const char *site, int64_t declared_ms, runtime_estimate *out);

/*
 * One line for an explanation, e.g. "run time 12 min (planned 15 min)
 * learned from 40 runs of sha256sum on pods; declared 2 min": the class
 * (class_bit) or the site is named when the estimate rests on its level.
 * Empty when the estimate is RUNTIME_UNKNOWN or RUNTIME_DECLARED.
 */
void runtime_describe(const runtime_estimate *e, const char *kind, const char *program,
                      unsigned class_bit, const char *site, char *buf, size_t len);

/* ---------- rows: what the hub persists ---------- */

typedef struct runtime_row {
    uint64_t key;
    int level;
    char label[RUNTIME_LABEL_MAX]; /* "exec sha256sum on pod", for people reading the table */
    runtime_stats stats;
    uint64_t tick; /* when it last learned (the table's observation counter) */
} runtime_row;

/* Calls fn for every entry; stops at (and returns) fn's first non-zero return. */
int runtime_each(const runtime *rt, int (*fn)(void *ctx, const runtime_row *row), void *ctx);
/* The row of key into *out; 1 when known, else 0. */
int runtime_row_of(const runtime *rt, uint64_t key, runtime_row *out);
/*
 * Puts a stored row back (loading in increasing tick keeps the newest when
 * the table is smaller than the rows). A key it evicted goes to *evicted
 * (*n_evicted 0 or 1; either may be NULL). OP_OK, OP_EINVAL (key 0, a
 * level out of range, no runs, a location or spread that is not a finite
 * number in range: nothing loaded).
 */
int runtime_load(runtime *rt, const runtime_row *row, uint64_t *evicted, int *n_evicted);

#endif
