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

#endif
