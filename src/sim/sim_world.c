/*
 * sim_world: the simulated world, built from the real data and the
 * parameters (seed included) alone: the sites and their classes, each car's
 * days, the chargers' load at every pod, the jobs, and the grid signals per
 * region; and the envelopes the sites offer now and forecast.
 */
#include "base/err.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "sim/sim_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dc budget over the day, per hour: full at night, peak-shaved in the evening */
static const double dc_schedule[24] = {1,   1,   1,   1,   1,   1,   1,   0.7, 0.7, 0.7, 0.7, 0.7,
                                       0.7, 0.7, 0.7, 0.7, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5, 1,   1};

/* ---------- envelopes ---------- */

static int car_day_index(const world *w, int32_t t_s)
{
    int d = (int)floor((double)t_s / DAY_S) + 1; /* warm-up day is 0 */
    return d < 0 ? 0 : d >= w->days_total ? w->days_total - 1 : d;
}

/* The car's state at t: its stated departure window from the day it plugged in (or the day before).
 */
static const car_day *car_at(const world *w, size_t i, int32_t t_s)
{
    int d = car_day_index(w, t_s);
    for (int k = d; k >= 0 && k >= d - 1; k--) {
        const car_day *c = &w->car[i * (size_t)w->days_total + (size_t)k];
        if (c->plug_s >= 0 && c->plug_s <= t_s && t_s < c->leave_s) return c;
    }
    return NULL;
}

double sim__car_envelope(const world *w, size_t i, int32_t t_s, int32_t *stay_until)
{
    const car_day *c = car_at(w, i, t_s);
    *stay_until = 0;
    if (!c) return -1; /* not there */
    power_car car = {.plug_in_ms = ms(c->plug_s),
                     .departure_ms = ms(c->stated_s),
                     .departure_lead_ms = ms(CAR_LEAD_S),
                     .budget_watts = w->compute_max[i],
                     .battery_kwh = 1,
                     .floor_kwh = 0};
    *stay_until = c->stated_s - CAR_LEAD_S;
    return power_car_envelope(&car, ms(t_s));
}

double sim__dc_envelope(const world *w, size_t i, int32_t t_s)
{
    double slots[24];
    for (int h = 0; h < 24; h++)
        slots[h] = w->compute_max[i] * dc_schedule[h];
    power_dc dc = {.budget_watts = w->compute_max[i], .n_slots = 24, .slots = slots};
    return power_dc_envelope(&dc, ms(t_s));
}

double sim__pod_envelope(const world *w, size_t i)
{
    double e = power_pod_envelope(w->limit[i], w->load[i], w->limit[i] * POD_MARGIN);
    return e < w->compute_max[i] ? e : w->compute_max[i];
}

/* ---------- building the world ---------- */

static int build_sites(world *w, const simdata *d, uint64_t *rng)
{
    size_t n = w->n;
    w->cls = calloc(n, 1);
    w->region = calloc(n, 1);
    w->units = calloc(n, sizeof *w->units);
    w->wpc = calloc(n, sizeof *w->wpc);
    w->limit = calloc(n, sizeof *w->limit);
    w->load = calloc(n, sizeof *w->load);
    w->env = calloc(n, sizeof *w->env);
    w->compute_max = calloc(n, sizeof *w->compute_max);
    w->order_in_class = calloc(n, sizeof *w->order_in_class);
    w->fc_index = calloc(n, sizeof *w->fc_index);
    w->car = calloc(n * (size_t)w->days_total, sizeof *w->car);
    if (!w->cls || !w->region || !w->units || !w->wpc || !w->limit || !w->load || !w->env ||
        !w->compute_max || !w->order_in_class || !w->fc_index || !w->car)
        return OP_ENOMEM;
    size_t n_pods = 0;
    for (size_t i = 0; i < n; i++) {
        double u = sim__uniform(rng);
        int c = u < 0.45 ? SIM_CLASS_POD : u < 0.90 ? SIM_CLASS_CAR : SIM_CLASS_DC;
        w->cls[i] = (uint8_t)c;
        w->region[i] = (uint8_t)sim__below(rng, (uint32_t)w->p->regions);
        w->fc_index[i] = -1;
        if (c == SIM_CLASS_POD) {
            int piles = d->piles[sim__below(rng, (uint32_t)d->n_piles)];
            int units = piles / 4;
            w->units[i] = (uint16_t)(units < 1 ? 1 : units > 16 ? 16 : units);
            w->wpc[i] = POD_UNIT_WATTS;
            w->limit[i] = (float)(POD_GRID_RATIO * piles * PILE_WATTS);
            w->fc_index[i] = (int32_t)n_pods++; /* its chargers: build_pod_events */
        } else if (c == SIM_CLASS_CAR) {
            w->units[i] = CAR_UNITS;
            w->wpc[i] = CAR_UNIT_WATTS;
            for (int day = 0; day < w->days_total; day++) {
                car_day *cd = &w->car[i * (size_t)w->days_total + (size_t)day];
                cd->plug_s = -1;
                if (sim__uniform(rng) >= CAR_PLUG_PROBABILITY) continue;
                const simdata_session *s = &d->sessions[sim__below(rng, (uint32_t)d->n_stated)];
                int32_t day0 = (day - 1) * DAY_S;
                cd->plug_s = day0 + s->connect_tod_s;
                cd->leave_s = cd->plug_s + s->plugged_s;
                cd->stated_s = cd->plug_s + s->stated_stay_s;
                /* the next day's session starts after this one ends */
                if (day > 0) {
                    car_day *prev = cd - 1;
                    if (prev->plug_s >= 0 && prev->leave_s > cd->plug_s) cd->plug_s = -1;
                }
            }
        } else {
            w->units[i] = (uint16_t)(8 + sim__below(rng, 25));
            w->wpc[i] = DC_UNIT_WATTS;
        }
        w->compute_max[i] = (float)(w->units[i] * w->wpc[i]);
    }
    w->fc = calloc(n_pods ? n_pods : 1, sizeof *w->fc);
    if (!w->fc) return OP_ENOMEM;
    for (size_t k = 0; k < n_pods; k++)
        power_forecaster_init(&w->fc[k], 0.3, 3600000.0);
    for (int c = 0; c < SIM_CLASSES; c++) {
        w->class_members[c] = calloc(n ? n : 1, sizeof(int32_t));
        if (!w->class_members[c]) return OP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int c = w->cls[i];
        w->order_in_class[i] = (int32_t)w->class_count[c];
        w->class_members[c][w->class_count[c]++] = (int32_t)i;
    }
    return OP_OK;
}

/* Charger sessions at every pod, from the real sessions, as +/- load events per step. */
static int build_pod_events(world *w, const simdata *d, uint64_t *rng)
{
    size_t cap = 0, n_ev = 0;
    typedef struct raw {
        int32_t step;
        int32_t site;
        float delta;
    } raw;
    raw *ev = NULL;
    double lambda = d->turku_sessions_per_point_day;
    for (size_t i = 0; i < w->n; i++) {
        if (w->cls[i] != SIM_CLASS_POD) continue;
        int piles = (int)(w->limit[i] / (POD_GRID_RATIO * PILE_WATTS) + 0.5);
        for (int day = 0; day < w->days_total; day++) {
            /* Poisson count with mean piles x lambda (Knuth; means are small) */
            double mean = piles * lambda, l = exp(-mean), prod = sim__uniform(rng);
            int k = 0;
            while (prod > l && k < 10000) {
                prod *= sim__uniform(rng);
                k++;
            }
            for (int s = 0; s < k; s++) {
                const simdata_session *ss = &d->sessions[sim__below(rng, (uint32_t)d->n_sessions)];
                int32_t start = (day - 1) * DAY_S + ss->connect_tod_s;
                int32_t end = start + (ss->charging_s > 60 ? ss->charging_s : 60);
                float watts = (float)(ss->kwh * 3.6e6 / (end - start));
                if (watts > PILE_WATTS * 8) watts = (float)(PILE_WATTS * 8); /* DC fast chargers */
                int32_t s0 = (int32_t)floor((double)start / w->p->step_s) + w->warm_steps;
                int32_t s1 = (int32_t)floor((double)end / w->p->step_s) + w->warm_steps;
                if (s0 >= w->steps || s1 <= 0 || s1 <= s0) continue;
                if (n_ev + 2 > cap) {
                    cap = cap ? cap * 2 : 1 << 16;
                    raw *m = realloc(ev, cap * sizeof *m);
                    if (!m) {
                        free(ev);
                        return OP_ENOMEM;
                    }
                    ev = m;
                }
                ev[n_ev++] = (raw){s0 < 0 ? 0 : s0, (int32_t)i, watts};
                if (s1 < w->steps) ev[n_ev++] = (raw){s1, (int32_t)i, -watts};
            }
        }
    }
    /* counting sort by step */
    w->event_at = calloc((size_t)w->steps + 1, sizeof *w->event_at);
    w->events = malloc((n_ev ? n_ev : 1) * sizeof *w->events);
    if (!w->event_at || !w->events) {
        free(ev);
        return OP_ENOMEM;
    }
    for (size_t e = 0; e < n_ev; e++)
        w->event_at[ev[e].step + 1]++;
    for (int s = 0; s < w->steps; s++)
        w->event_at[s + 1] += w->event_at[s];
    int32_t *fill = calloc((size_t)w->steps + 1, sizeof *fill);
    if (!fill) {
        free(ev);
        return OP_ENOMEM;
    }
    for (size_t e = 0; e < n_ev; e++) {
        int32_t pos = w->event_at[ev[e].step] + fill[ev[e].step]++;
        w->events[pos] = (pod_event){ev[e].site, ev[e].delta};
    }
    free(fill);
    free(ev);
    return OP_OK;
}

static int cmp_arrival(const void *a, const void *b)
{
    const sim_job *x = a, *y = b;
    return (x->arrival_s > y->arrival_s) - (x->arrival_s < y->arrival_s);
}

static int build_jobs(world *w, uint64_t *rng)
{
    w->jobs = calloc(w->n_jobs ? w->n_jobs : 1, sizeof *w->jobs);
    if (!w->jobs) return OP_ENOMEM;
    size_t n_dc = w->class_count[SIM_CLASS_DC];
    for (size_t j = 0; j < w->n_jobs; j++) {
        sim_job *s = &w->jobs[j];
        /* arrivals uniform over the run, the last step included */
        s->arrival_s = (int32_t)(sim__uniform(rng) * (w->p->days * DAY_S - w->p->step_s + 1));
        double u = sim__uniform(rng);
        s->cores = u < 0.5 ? 1 : u < 0.75 ? 2 : u < 0.9 ? 4 : 8;
        double est = 90 * 60 * exp(0.8 * sim__normal(rng));
        est = est < 300 ? 300 : est > 8 * 3600 ? 8 * 3600 : est;
        s->est_s = (int32_t)est;
        s->work_s = (int32_t)(est * (0.8 + 0.35 * sim__uniform(rng)));
        s->deadline_s = s->arrival_s + (int32_t)(est * (1.2 + 1.8 * sim__uniform(rng)) +
                                                 sim__uniform(rng) * 4 * 3600);
        s->deferrable = sim__uniform(rng) < 0.4 && !w->p->no_defer;
        s->origin_region = (uint8_t)sim__below(rng, (uint32_t)w->p->regions);
        s->origin = -1;
        u = sim__uniform(rng);
        s->mask = u < 0.55   ? CLASS_ALL
                  : u < 0.75 ? (CLASS_POD | CLASS_DC)
                  : u < 0.90 ? CLASS_DC
                             : (CLASS_POD | CLASS_CAR);
        if (n_dc && sim__uniform(rng) < 0.01) { /* site-private: its data stays on its warehouse */
            s->origin = w->class_members[SIM_CLASS_DC][sim__below(rng, (uint32_t)n_dc)];
            s->mask = CLASS_DC;
            s->origin_region = w->region[s->origin];
            if (s->cores > w->units[s->origin]) s->cores = 1;
        }
    }
    qsort(w->jobs, w->n_jobs, sizeof *w->jobs, cmp_arrival);
    return OP_OK;
}

/* Grid signals per region and step: price, carbon, and the rank of now among the last 24 h. */
static int build_signals(world *w, const simdata *d)
{
    size_t n = (size_t)w->steps * (size_t)w->p->regions;
    w->rank = calloc(n, sizeof *w->rank);
    w->price = calloc(n, sizeof *w->price);
    w->carbon = calloc(n, sizeof *w->carbon);
    if (!w->rank || !w->price || !w->carbon) return OP_ENOMEM;
    for (int r = 0; r < w->p->regions; r++) {
        const simdata_series *ci = &d->carbon[r % SIMDATA_N_CARBON];
        int64_t offset_days = 7 * (r / SIMDATA_N_CARBON);
        int64_t c0 = (SIGNAL_START_DAY + offset_days) * 86400LL;
        int64_t p0 = (PRICE_START_DAY + offset_days) * 86400LL;
        double mean_c = 0, mean_p = 0;
        int hours = (w->days_total + 1) * 24;
        double *hourly = calloc((size_t)hours, sizeof *hourly);
        if (!hourly) return OP_ENOMEM;
        /* hour h of the window starts at (h - 24 - 24) h before sim day 0: history for the ranks */
        for (int h = 0; h < hours; h++) {
            int64_t t = (int64_t)(h - 48) * 3600;
            mean_c += simdata_series_at(ci, c0 + t);
            mean_p += simdata_series_at(&d->price, p0 + t);
        }
        mean_c /= hours;
        mean_p /= hours;
        for (int h = 0; h < hours; h++) {
            int64_t t = (int64_t)(h - 48) * 3600;
            hourly[h] = 0.5 * simdata_series_at(ci, c0 + t) / (mean_c > 0 ? mean_c : 1) +
                        0.5 * simdata_series_at(&d->price, p0 + t) / (mean_p > 0 ? mean_p : 1);
        }
        for (int s = 0; s < w->steps; s++) {
            int32_t t = step_time(w, s);
            size_t k = (size_t)s * (size_t)w->p->regions + (size_t)r;
            w->carbon[k] = (float)simdata_series_at(ci, c0 + t);
            w->price[k] = (float)simdata_series_at(&d->price, p0 + t);
            int h = (int)floor((double)t / 3600) + 48;
            int lower = 0;
            for (int b = h - 24; b < h; b++)
                lower += b >= 0 && hourly[b] < hourly[h];
            w->rank[k] = (float)lower / 24.0f;
        }
        free(hourly);
    }
    return OP_OK;
}

/* Forecast envelope minima over every horizon, from now: pods by their forecaster, the rest
 * exactly. */
void sim__horizons(const world *w, size_t i, int32_t now_s, double env_now, double *out)
{
    int c = w->cls[i];
    double least = env_now;
    int k = 0;
    for (int q = 1; q <= 96 && k < SCHED_HORIZONS; q++) {
        int32_t t = now_s + q * 900;
        double e;
        if (c == SIM_CLASS_POD) {
            e = power_forecast(&w->fc[w->fc_index[i]], ms(t));
            if (e > w->compute_max[i]) e = w->compute_max[i];
        } else if (c == SIM_CLASS_DC) {
            e = sim__dc_envelope(w, i, t);
        } else {
            int32_t stay;
            e = sim__car_envelope(w, i, t, &stay);
            if (e < 0) e = 0;
        }
        if (e < least) least = e;
        while (k < SCHED_HORIZONS && (int64_t)q * 900000 >= sched_horizon_ms[k])
            out[k++] = least;
    }
    while (k < SCHED_HORIZONS)
        out[k++] = least;
}

/* Releases everything the world owns (also a half-built one) and zeroes it. */
void sim__world_clear(world *w)
{
    free(w->cls);
    free(w->region);
    free(w->units);
    free(w->wpc);
    free(w->limit);
    free(w->load);
    free(w->env);
    free(w->compute_max);
    free(w->order_in_class);
    free(w->fc_index);
    free(w->car);
    free(w->fc);
    free(w->events);
    free(w->event_at);
    free(w->jobs);
    free(w->rank);
    free(w->price);
    free(w->carbon);
    for (int c = 0; c < SIM_CLASSES; c++)
        free(w->class_members[c]);
    if (w->ids)
        for (size_t i = 0; i < w->n; i++)
            free(w->ids[i]);
    free(w->ids);
    memset(w, 0, sizeof *w);
}

/* Site ids "s0", "s1", ... (the scheduler names sites, and site-private jobs their origin). */
static int build_ids(world *w)
{
    w->ids = calloc(w->n, sizeof *w->ids);
    if (!w->ids) return OP_ENOMEM;
    for (size_t i = 0; i < w->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "s%zu", i);
        if (!(w->ids[i] = strdup(id))) return OP_ENOMEM;
    }
    return OP_OK;
}

/*
 * One random sequence, seeded from p->seed, drawn in a fixed order (sites,
 * charger events, jobs): the world depends on the data and p alone.
 */
int sim__world_build(world *w, const simdata *data, const sim_params *p)
{
    memset(w, 0, sizeof *w);
    w->p = p;
    w->n = p->sites;
    w->n_jobs = p->jobs;
    w->days_total = p->days + 1;
    w->steps_per_day = DAY_S / p->step_s;
    w->warm_steps = w->steps_per_day;
    w->steps = w->steps_per_day * w->days_total;
    uint64_t rng = p->seed * 0x2545F4914F6CDD1DULL + 1;
    int rc = build_ids(w);
    if (rc != OP_OK) return rc;
    if (p->progress) p->progress(p->progress_ctx, 0, "building the fleet from the data");
    if ((rc = build_sites(w, data, &rng)) != OP_OK) return rc;
    if ((rc = build_pod_events(w, data, &rng)) != OP_OK) return rc;
    if ((rc = build_jobs(w, &rng)) != OP_OK) return rc;
    if (p->misstated && (rc = sim__misstate_jobs(w)) != OP_OK) return rc;
    return build_signals(w, data);
}
