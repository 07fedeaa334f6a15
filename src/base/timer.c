#include "base/timer.h"

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
