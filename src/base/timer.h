/*
 * timer: a periodic deadline for daemon loops (pure: the caller passes the
 * time in). Replaces the repeated `if (now >= next_x) { ...; next_x = now +
 * period; }` blocks: one timer per periodic chore, checked each iteration.
 *
 *   timer check;
 *   timer_init(&check, 250);            // due at once, then every 250 ms
 *   if (timer_due(&check, now, 0)) ...  // fires and re-arms for now + 250
 */
#ifndef OUTPOST_TIMER_H
#define OUTPOST_TIMER_H

#include <stdint.h>

typedef struct timer {
    int64_t period_ms;
    int64_t next_ms; /* due when now >= next_ms; 0 at init: due at the first check */
} timer;

/* A timer of period_ms that is due at its first check. */
void timer_init(timer *t, int64_t period_ms);

/*
 * 1 when the timer is due at now_ms, or force is set (work that cannot wait
 * for the period); it is then re-armed for now_ms + period_ms. 0 otherwise.
 */
int timer_due(timer *t, int64_t now_ms, int force);

/* 1 when timer_due would fire at now_ms without force; does not re-arm. */
int timer_ready(const timer *t, int64_t now_ms);

/*
 * Re-arms a timer that has just fired as an exponential backoff with jitter: due again
 * between half its period and its period after now_ms (r: a uniform random number), its
 * period then doubled, up to max_ms. A retry that nobody answers (a hub behind a broker
 * minutes late) then costs less and less, and a fleet does not retry in lockstep.
 */
void timer_backoff(timer *t, int64_t now_ms, int64_t max_ms, uint32_t r);

/*
 * A run of failures of one kind (a store that cannot commit), reported when
 * it starts, then at most every period, and when it ends, instead of once
 * per failure. A zeroed streak is not running.
 */
typedef struct fail_streak {
    int64_t since_ms;    /* first failure of the run; 0: not running */
    int64_t reported_ms; /* when it was last reported */
    uint64_t count;      /* failures in the run */
    int64_t ok_since_ms; /* first success since the last failure; 0: none */
} fail_streak;

#define FAIL_STREAK_SETTLE_MS 2000 /* successes in a row for this long end a run */

enum { STREAK_QUIET, STREAK_STARTED, STREAK_STILL };

/* Counts a failure at now_ms: STREAK_STARTED (report it), STREAK_STILL (report again), or QUIET. */
int fail_streak_fail(fail_streak *s, int64_t now_ms, int64_t period_ms);
/*
 * A success: 1 when it ends a run, that is when the successes since the last
 * failure have lasted FAIL_STREAK_SETTLE_MS (report count and the run's
 * seconds; the streak is then zeroed), else 0.
 */
int fail_streak_ok(fail_streak *s, int64_t now_ms, uint64_t *count, double *seconds);

#endif
