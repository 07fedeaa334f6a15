#include "power.h"

#include <math.h>

#define DAY_MS 86400000LL
#define SLOT_MS (DAY_MS / POWER_PROFILE_SLOTS)

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

size_t power_sessions_load(const power_session *sessions, size_t n, int64_t t0_ms, int64_t step_ms,
                           double *out, size_t n_steps)
{
    for (size_t k = 0; k < n_steps; k++)
        out[k] = 0;
    if (step_ms <= 0 || n_steps == 0) return 0;
    int64_t t1_ms = t0_ms + step_ms * (int64_t)n_steps;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const power_session *s = &sessions[i];
        if (s->done_ms <= s->connect_ms || !(s->kwh >= 0)) continue;
        used++;
        double watts = s->kwh * 3.6e6 / ((double)(s->done_ms - s->connect_ms) / 1000.0);
        int64_t a = max64(s->connect_ms, t0_ms), b = min64(s->done_ms, t1_ms);
        if (a >= b) continue;
        /* spread over the steps it overlaps, in proportion to the overlap */
        for (int64_t k = (a - t0_ms) / step_ms; k < (int64_t)n_steps; k++) {
            int64_t ks = t0_ms + k * step_ms, ke = ks + step_ms;
            int64_t lo = max64(a, ks), hi = min64(b, ke);
            if (lo >= b) break;
            if (hi > lo) out[k] += watts * (double)(hi - lo) / (double)step_ms;
        }
    }
    return used;
}

double power_pod_envelope(double grid_limit_watts, double chargers_watts, double margin_watts)
{
    double e = grid_limit_watts - chargers_watts - margin_watts;
    return e > 0 ? e : 0;
}

double power_car_envelope(const power_car *car, int64_t t_ms)
{
    if (t_ms < car->plug_in_ms || t_ms >= car->departure_ms - car->departure_lead_ms) return 0;
    if (car->battery_kwh <= car->floor_kwh) return 0;
    return car->budget_watts > 0 ? car->budget_watts : 0;
}

double power_dc_envelope(const power_dc *dc, int64_t t_ms)
{
    if (dc->n_slots <= 0 || !dc->slots) return dc->budget_watts > 0 ? dc->budget_watts : 0;
    int64_t in_day = ((t_ms % DAY_MS) + DAY_MS) % DAY_MS;
    int slot = (int)(in_day / (DAY_MS / dc->n_slots));
    if (slot >= dc->n_slots) slot = dc->n_slots - 1;
    double w = dc->slots[slot];
    return w > 0 ? w : 0;
}

double power_job_draw(double units, double watts_per_unit)
{
    double w = units * watts_per_unit;
    return w > 0 ? w : 0;
}

static int slot_of(int64_t t_ms)
{
    int64_t in_day = ((t_ms % DAY_MS) + DAY_MS) % DAY_MS;
    return (int)(in_day / SLOT_MS);
}

void power_forecaster_init(power_forecaster *f, double alpha, double tau_ms)
{
    for (int i = 0; i < POWER_PROFILE_SLOTS; i++) {
        f->profile[i] = 0;
        f->seen[i] = 0;
    }
    f->alpha = alpha > 0 && alpha <= 1 ? alpha : 0.2;
    f->tau_ms = tau_ms > 0 ? tau_ms : 3600000.0;
    f->last_watts = 0;
    f->last_ms = 0;
    f->have_last = 0;
}

void power_forecaster_observe(power_forecaster *f, int64_t t_ms, double watts)
{
    int s = slot_of(t_ms);
    if (!f->seen[s]) {
        f->profile[s] = watts;
        f->seen[s] = 1;
    } else {
        f->profile[s] += f->alpha * (watts - f->profile[s]);
    }
    f->last_watts = watts;
    f->last_ms = t_ms;
    f->have_last = 1;
}

double power_forecast(const power_forecaster *f, int64_t t_ms)
{
    if (!f->have_last) return 0;
    double horizon = (double)(t_ms > f->last_ms ? t_ms - f->last_ms : 0);
    double w = exp(-horizon / f->tau_ms);
    int s = slot_of(t_ms);
    double profile = f->seen[s] ? f->profile[s] : f->last_watts;
    double v = w * f->last_watts + (1 - w) * profile;
    return v > 0 ? v : 0;
}

double power_forecast_min(const power_forecaster *f, int64_t from_ms, int64_t duration_ms,
                          int64_t step_ms)
{
    if (step_ms <= 0) step_ms = SLOT_MS;
    double least = power_forecast(f, from_ms);
    for (int64_t t = from_ms + step_ms; t <= from_ms + duration_ms; t += step_ms) {
        double v = power_forecast(f, t);
        if (v < least) least = v;
    }
    double end = power_forecast(f, from_ms + duration_ms);
    return end < least ? end : least;
}
