#include "base/timer.h"

#include <string.h>

void timer_init(timer *t, int64_t period_ms)
{
    t->period_ms = period_ms;
    t->next_ms = 0;
}

int timer_due(timer *t, int64_t now_ms, int force)
{
    if (!force && now_ms < t->next_ms) return 0;
    t->next_ms = now_ms + t->period_ms;
    return 1;
}

int timer_ready(const timer *t, int64_t now_ms)
{
    return now_ms >= t->next_ms;
}

void timer_backoff(timer *t, int64_t now_ms, int64_t max_ms, uint32_t r)
{
    int64_t p = t->period_ms > 0 ? t->period_ms : 1;
    t->next_ms = now_ms + p / 2 + (int64_t)(r % (uint64_t)(p + 1)) / 2;
    t->period_ms = p * 2 < max_ms ? p * 2 : max_ms;
}

int fail_streak_fail(fail_streak *s, int64_t now_ms, int64_t period_ms)
{
    s->count++;
    s->ok_since_ms = 0; /* a success between failures does not end the run */
    if (!s->since_ms) {
        s->since_ms = s->reported_ms = now_ms ? now_ms : 1;
        return STREAK_STARTED;
    }
    if (now_ms - s->reported_ms < period_ms) return STREAK_QUIET;
    s->reported_ms = now_ms;
    return STREAK_STILL;
}

int fail_streak_ok(fail_streak *s, int64_t now_ms, uint64_t *count, double *seconds)
{
    if (!s->since_ms) return 0;
    /*
     * A run ends only after FAIL_STREAK_SETTLE_MS of successes: a full disk
     * lets small or empty commits through between the failing ones, and each
     * of those must not start the logging over.
     */
    if (!s->ok_since_ms) s->ok_since_ms = now_ms ? now_ms : 1;
    if (now_ms - s->ok_since_ms < FAIL_STREAK_SETTLE_MS) return 0;
    *count = s->count;
    *seconds = (double)(s->ok_since_ms - s->since_ms) / 1000.0;
    memset(s, 0, sizeof *s);
    return 1;
}
