#include "sim/sim.h"

#include "base/err.h"
#include "core/jobspec.h"
#include "core/power.h"
#include "core/sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- the constants of the world (docs/simulator.md) ---------- */

#define DAY_S 86400
#define FORECAST_EVERY_S 900 /* the forecasters observe and the horizons refresh */
#define POD_GRID_RATIO 0.42  /* ACN's 150 kW transformer over 54 EVSEs x 208 V x 32 A */
#define PILE_WATTS 6656.0    /* 208 V x 32 A */
#define POD_MARGIN 0.05      /* of the grid limit */
#define POD_UNIT_WATTS 300.0 /* an accelerator-class work unit */
#define CAR_UNITS 2
#define CAR_UNIT_WATTS 60.0
#define CAR_LEAD_S 600           /* stop this long before the stated departure */
#define CAR_PLUG_PROBABILITY 0.7 /* a car plugs in on a given day */
#define DC_UNIT_WATTS 250.0
#define CHECKPOINT_S 1800      /* every job checkpoints this often */
#define CAR_CHECKPOINT_S 600   /* Outpost: more often on short-stay hosts */
#define SIGNAL_START_DAY 18414 /* 2020-06-01: carbon series (2020) */
#define PRICE_START_DAY 16953  /* 2016-06-01: the NL price series (2016) */

static const char *policy_names[SIM_POLICIES] = {"outpost", "least-loaded", "first-fit"};
static const char *class_names[SIM_CLASSES] = {"pod", "car", "dc"};
static const unsigned class_bits[SIM_CLASSES] = {CLASS_POD, CLASS_CAR, CLASS_DC};
/* dc budget over the day, per hour: full at night, peak-shaved in the evening */
static const double dc_schedule[24] = {1,   1,   1,   1,   1,   1,   1,   0.7, 0.7, 0.7, 0.7, 0.7,
                                       0.7, 0.7, 0.7, 0.7, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5, 1,   1};

const char *sim_policy_name(int policy)
{
    return policy >= 0 && policy < SIM_POLICIES ? policy_names[policy] : "?";
}
const char *sim_class_name(int cls)
{
    return cls >= 0 && cls < SIM_CLASSES ? class_names[cls] : "?";
}

void sim_params_default(sim_params *p)
{
    memset(p, 0, sizeof *p);
    p->sites = 100000;
    p->jobs = 1000000;
    p->days = 1;
    p->seed = 1;
    p->regions = 8;
    p->step_s = 60;
    p->reaction_s = 1.0;
}

/* ---------- random numbers (splitmix64: seeded, reproducible) ---------- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double uniform(uint64_t *s)
{
    return (double)(next_u64(s) >> 11) / 9007199254740992.0;
}
static double normal(uint64_t *s)
{
    double u = uniform(s), v = uniform(s);
    return sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}
static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(uniform(s) * n);
}

/* ---------- the world ---------- */

typedef struct car_day {
    int32_t plug_s, leave_s, stated_s; /* sim seconds; plug_s < 0: not plugged that day */
} car_day;

typedef struct pod_event {
    int32_t site;
    float delta_watts;
} pod_event;

typedef struct job_spec {
    int32_t arrival_s, deadline_s, est_s, work_s;
    int32_t origin; /* site index for site-private jobs, else -1 */
    uint8_t cores, mask, deferrable, origin_region;
} job_spec;

enum { JOB_FUTURE, JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DROPPED };

typedef struct job_run {
    int32_t site, start_s, done_s, end_s;
    int32_t next, prev; /* per-site running list */
    uint8_t state;
} job_run;

typedef struct policy_state {
    sched_site *view;
    sched_fleet *fleet; /* outpost */
    int32_t *tree;      /* baselines: max free cores per class, segment trees */
    size_t tree_size;
    float *draw;          /* watts drawn by running jobs per site */
    int32_t *head, *tail; /* running jobs per site, oldest first */
    uint32_t *attempts, *failures;
    job_run *run;
    int32_t *queue;
    size_t n_queue, cap_queue;
    int32_t *wheel;      /* completion lists per step: first entry, or -1 */
    int32_t (*entry)[2]; /* (job, next entry); a restarted job gets a new entry */
    size_t n_entry, cap_entry;
    double demand_units[8]; /* outstanding job cores per class mask */
    sim_policy_report rep;
} policy_state;

typedef struct world {
    const sim_params *p;
    size_t n;
    uint8_t *cls, *region;
    uint16_t *units;
    float *wpc, *limit, *load, *env, *compute_max;
    int32_t *order_in_class; /* position in its class's segment tree */
    size_t class_count[SIM_CLASSES];
    int32_t *class_members[SIM_CLASSES];
    car_day *car;         /* n x days_total, for cars */
    power_forecaster *fc; /* pods */
    int32_t *fc_index;    /* site -> forecaster, -1 */
    pod_event *events;
    int32_t *event_at; /* CSR: events of step s are [event_at[s], event_at[s+1]) */
    int days_total, steps, steps_per_day, warm_steps;
    job_spec *jobs;
    size_t n_jobs;
    float *rank, *price, *carbon; /* per step x region */
    char **ids;
} world;

static int64_t ms(int32_t s)
{
    return (int64_t)s * 1000;
}

/* Sim time t_s: 0 is midnight (local) of the first simulated day; warm-up is negative. */
static int32_t step_time(const world *w, int step)
{
    return (int32_t)((step - w->warm_steps) * w->p->step_s);
}

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

static double car_envelope(const world *w, size_t i, int32_t t_s, int32_t *stay_until)
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

static double dc_envelope(const world *w, size_t i, int32_t t_s)
{
    double slots[24];
    for (int h = 0; h < 24; h++)
        slots[h] = w->compute_max[i] * dc_schedule[h];
    power_dc dc = {.budget_watts = w->compute_max[i], .n_slots = 24, .slots = slots};
    return power_dc_envelope(&dc, ms(t_s));
}

static double pod_envelope(const world *w, size_t i)
{
    double e = power_pod_envelope(w->limit[i], w->load[i], w->limit[i] * POD_MARGIN);
    return e < w->compute_max[i] ? e : w->compute_max[i];
}

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
        double u = uniform(rng);
        int c = u < 0.45 ? SIM_POD : u < 0.90 ? SIM_CAR : SIM_DC;
        w->cls[i] = (uint8_t)c;
        w->region[i] = (uint8_t)below(rng, (uint32_t)w->p->regions);
        w->fc_index[i] = -1;
        if (c == SIM_POD) {
            int piles = d->piles[below(rng, (uint32_t)d->n_piles)];
            int units = piles / 4;
            w->units[i] = (uint16_t)(units < 1 ? 1 : units > 16 ? 16 : units);
            w->wpc[i] = POD_UNIT_WATTS;
            w->limit[i] = (float)(POD_GRID_RATIO * piles * PILE_WATTS);
            w->fc_index[i] = (int32_t)n_pods++; /* its chargers: build_pod_events */
        } else if (c == SIM_CAR) {
            w->units[i] = CAR_UNITS;
            w->wpc[i] = CAR_UNIT_WATTS;
            for (int day = 0; day < w->days_total; day++) {
                car_day *cd = &w->car[i * (size_t)w->days_total + (size_t)day];
                cd->plug_s = -1;
                if (uniform(rng) >= CAR_PLUG_PROBABILITY) continue;
                const simdata_session *s = &d->sessions[below(rng, (uint32_t)d->n_stated)];
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
            w->units[i] = (uint16_t)(8 + below(rng, 25));
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
        if (w->cls[i] != SIM_POD) continue;
        int piles = (int)(w->limit[i] / (POD_GRID_RATIO * PILE_WATTS) + 0.5);
        for (int day = 0; day < w->days_total; day++) {
            /* Poisson count with mean piles x lambda (Knuth; means are small) */
            double mean = piles * lambda, l = exp(-mean), prod = uniform(rng);
            int k = 0;
            while (prod > l && k < 10000) {
                prod *= uniform(rng);
                k++;
            }
            for (int s = 0; s < k; s++) {
                const simdata_session *ss = &d->sessions[below(rng, (uint32_t)d->n_sessions)];
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
    const job_spec *x = a, *y = b;
    return (x->arrival_s > y->arrival_s) - (x->arrival_s < y->arrival_s);
}

static int build_jobs(world *w, uint64_t *rng)
{
    w->jobs = calloc(w->n_jobs ? w->n_jobs : 1, sizeof *w->jobs);
    if (!w->jobs) return OP_ENOMEM;
    size_t n_dc = w->class_count[SIM_DC];
    for (size_t j = 0; j < w->n_jobs; j++) {
        job_spec *s = &w->jobs[j];
        /* arrivals uniform over the run, the last step included */
        s->arrival_s = (int32_t)(uniform(rng) * (w->p->days * DAY_S - w->p->step_s + 1));
        double u = uniform(rng);
        s->cores = u < 0.5 ? 1 : u < 0.75 ? 2 : u < 0.9 ? 4 : 8;
        double est = 90 * 60 * exp(0.8 * normal(rng));
        est = est < 300 ? 300 : est > 8 * 3600 ? 8 * 3600 : est;
        s->est_s = (int32_t)est;
        s->work_s = (int32_t)(est * (0.8 + 0.35 * uniform(rng)));
        s->deadline_s =
            s->arrival_s + (int32_t)(est * (1.2 + 1.8 * uniform(rng)) + uniform(rng) * 4 * 3600);
        s->deferrable = uniform(rng) < 0.4 && !w->p->no_defer;
        s->origin_region = (uint8_t)below(rng, (uint32_t)w->p->regions);
        s->origin = -1;
        u = uniform(rng);
        s->mask = u < 0.55   ? CLASS_ALL
                  : u < 0.75 ? (CLASS_POD | CLASS_DC)
                  : u < 0.90 ? CLASS_DC
                             : (CLASS_POD | CLASS_CAR);
        if (n_dc && uniform(rng) < 0.01) { /* site-private: its data stays on its warehouse */
            s->origin = w->class_members[SIM_DC][below(rng, (uint32_t)n_dc)];
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

/* ---------- baselines: segment trees of free cores per class ---------- */

static void tree_set(policy_state *ps, const world *w, size_t i, int32_t value)
{
    int c = w->cls[i];
    size_t base = (size_t)c * ps->tree_size * 2;
    size_t pos = ps->tree_size + (size_t)w->order_in_class[i];
    ps->tree[base + pos] = value;
    for (pos /= 2; pos >= 1; pos /= 2) {
        int32_t a = ps->tree[base + 2 * pos], b = ps->tree[base + 2 * pos + 1];
        ps->tree[base + pos] = a > b ? a : b;
    }
}

/* First (leftmost) member of class c with at least need free cores, or -1. */
static int32_t tree_first(const policy_state *ps, int c, int need)
{
    size_t base = (size_t)c * ps->tree_size * 2;
    if (ps->tree[base + 1] < need) return -1;
    size_t pos = 1;
    while (pos < ps->tree_size)
        pos = ps->tree[base + 2 * pos] >= need ? 2 * pos : 2 * pos + 1;
    return (int32_t)(pos - ps->tree_size);
}

/* Member of class c with the most free cores (leftmost on ties), or -1. */
static int32_t tree_max(const policy_state *ps, int c, int32_t *value)
{
    size_t base = (size_t)c * ps->tree_size * 2;
    *value = ps->tree[base + 1];
    if (*value <= 0) return -1;
    size_t pos = 1;
    while (pos < ps->tree_size)
        pos = ps->tree[base + 2 * pos] == *value ? 2 * pos : 2 * pos + 1;
    return (int32_t)(pos - ps->tree_size);
}

/* ---------- running jobs ---------- */

static void refresh_baseline(policy_state *ps, const world *w, size_t i)
{
    tree_set(ps, w, i, ps->view[i].alive ? ps->view[i].free_cores : -1);
}

static sched_job job_view(const world *w, const job_spec *s, int32_t now_s, int32_t remaining_s)
{
    sched_job j = {.cores = s->cores,
                   .memory_mb = 0,
                   .class_mask = s->mask,
                   .origin = s->origin >= 0 ? w->ids[s->origin] : NULL,
                   .origin_index = s->origin,
                   .origin_region = s->origin_region,
                   .site_private = s->origin >= 0,
                   .now_ms = ms(now_s),
                   .duration_ms = ms(remaining_s),
                   .deadline_ms = ms(s->deadline_s),
                   .deferrable = s->deferrable};
    return j;
}

static int start_job(world *w, policy_state *ps, int policy, int32_t jid, size_t site,
                     int32_t now_s)
{
    const job_spec *s = &w->jobs[jid];
    job_run *r = &ps->run[jid];
    r->state = JOB_RUNNING;
    r->site = (int32_t)site;
    r->start_s = now_s;
    r->end_s = now_s + (s->work_s - r->done_s);
    sched_job j = job_view(w, s, now_s, s->est_s - r->done_s);
    if (policy == SIM_OUTPOST)
        sched_fleet_reserve(ps->fleet, site, &j);
    else
        sched_reserve(&ps->view[site], &j);
    ps->draw[site] += (float)(s->cores * w->wpc[site]);
    /* append to the site's running list (newest last) */
    r->prev = ps->tail[site];
    r->next = -1;
    if (r->prev >= 0)
        ps->run[r->prev].next = jid;
    else
        ps->head[site] = jid;
    ps->tail[site] = jid;
    int end_step = (int)ceil((double)r->end_s / w->p->step_s) + w->warm_steps;
    if (end_step < w->steps) {
        if (ps->n_entry == ps->cap_entry) {
            size_t cap = ps->cap_entry ? ps->cap_entry * 2 : 1 << 16;
            int32_t(*m)[2] = realloc(ps->entry, cap * sizeof *m);
            if (!m) return OP_ENOMEM;
            ps->entry = m;
            ps->cap_entry = cap;
        }
        ps->entry[ps->n_entry][0] = jid;
        ps->entry[ps->n_entry][1] = ps->wheel[end_step];
        ps->wheel[end_step] = (int32_t)ps->n_entry++;
    }
    ps->attempts[site]++;
    if (policy != SIM_OUTPOST) refresh_baseline(ps, w, site);
    return OP_OK;
}

static void unlink_job(world *w, policy_state *ps, int policy, int32_t jid)
{
    const job_spec *s = &w->jobs[jid];
    job_run *r = &ps->run[jid];
    size_t site = (size_t)r->site;
    if (r->prev >= 0)
        ps->run[r->prev].next = r->next;
    else
        ps->head[site] = r->next;
    if (r->next >= 0)
        ps->run[r->next].prev = r->prev;
    else
        ps->tail[site] = r->prev;
    sched_job j = job_view(w, s, 0, 0);
    if (policy == SIM_OUTPOST)
        sched_fleet_release(ps->fleet, site, &j);
    else
        sched_release(&ps->view[site], &j);
    ps->draw[site] -= (float)(s->cores * w->wpc[site]);
    if (ps->draw[site] < 0.01f) ps->draw[site] = 0;
    if (policy != SIM_OUTPOST) refresh_baseline(ps, w, site);
}

static int push_queue(policy_state *ps, int32_t jid)
{
    if (ps->n_queue == ps->cap_queue) {
        size_t cap = ps->cap_queue ? ps->cap_queue * 2 : 4096;
        int32_t *q = realloc(ps->queue, cap * sizeof *q);
        if (!q) return OP_ENOMEM;
        ps->queue = q;
        ps->cap_queue = cap;
    }
    ps->queue[ps->n_queue++] = jid;
    return OP_OK;
}

/*
 * A job stops before its end. graceful: the site asked it to stop (SIGTERM)
 * and it wrote a checkpoint, so no work is lost; else (the car drove off) the
 * work since its last periodic checkpoint is.
 */
static int stop_job(world *w, policy_state *ps, int policy, int32_t jid, int32_t now_s,
                    int graceful)
{
    job_run *r = &ps->run[jid];
    const job_spec *s = &w->jobs[jid];
    int32_t elapsed = now_s - r->start_s;
    int32_t every =
        policy == SIM_OUTPOST && w->cls[r->site] == SIM_CAR ? CAR_CHECKPOINT_S : CHECKPOINT_S;
    int32_t kept = graceful ? elapsed : (elapsed / every) * every;
    ps->rep.wasted_unit_h += (double)(elapsed - kept) * s->cores / 3600.0;
    r->done_s += kept;
    if (r->done_s > s->work_s) r->done_s = s->work_s;
    if (!graceful) ps->failures[r->site]++;
    unlink_job(w, ps, policy, jid);
    r->state = JOB_QUEUED;
    r->site = -1;
    return push_queue(ps, jid);
}

/* ---------- the simulation ---------- */

static void free_world(world *w)
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
}

static void free_policy(policy_state *ps)
{
    free(ps->view);
    sched_fleet_free(ps->fleet);
    free(ps->tree);
    free(ps->draw);
    free(ps->head);
    free(ps->tail);
    free(ps->attempts);
    free(ps->failures);
    free(ps->run);
    free(ps->queue);
    free(ps->wheel);
    free(ps->entry);
}

static int init_policy(world *w, policy_state *ps, int policy)
{
    size_t n = w->n ? w->n : 1;
    ps->view = calloc(n, sizeof *ps->view);
    ps->draw = calloc(n, sizeof *ps->draw);
    ps->head = malloc(n * sizeof *ps->head);
    ps->tail = malloc(n * sizeof *ps->tail);
    ps->attempts = calloc(n, sizeof *ps->attempts);
    ps->failures = calloc(n, sizeof *ps->failures);
    ps->run = calloc(w->n_jobs ? w->n_jobs : 1, sizeof *ps->run);
    ps->wheel = malloc((size_t)w->steps * sizeof *ps->wheel);
    if (!ps->view || !ps->draw || !ps->head || !ps->tail || !ps->attempts || !ps->failures ||
        !ps->run || !ps->wheel)
        return OP_ENOMEM;
    for (size_t i = 0; i < w->n; i++) {
        ps->head[i] = ps->tail[i] = -1;
        sched_site *v = &ps->view[i];
        v->id = w->ids[i];
        v->class_bit = class_bits[w->cls[i]];
        v->cores = v->free_cores = w->units[i];
        v->memory_mb = v->free_memory_mb = 1 << 20;
        v->watts_per_core = w->wpc[i];
        v->region = w->region[i];
    }
    for (int s = 0; s < w->steps; s++)
        ps->wheel[s] = -1;
    for (size_t j = 0; j < w->n_jobs; j++)
        ps->run[j] = (job_run){.site = -1, .next = -1, .prev = -1};
    if (policy == SIM_OUTPOST) {
        ps->fleet = sched_fleet_new(ps->view, w->n);
        if (!ps->fleet) return OP_ENOMEM;
    } else {
        size_t most = 1;
        for (int c = 0; c < SIM_CLASSES; c++)
            if (w->class_count[c] > most) most = w->class_count[c];
        ps->tree_size = 1;
        while (ps->tree_size < most)
            ps->tree_size *= 2;
        ps->tree = malloc(SIM_CLASSES * 2 * ps->tree_size * sizeof *ps->tree);
        if (!ps->tree) return OP_ENOMEM;
        for (size_t k = 0; k < SIM_CLASSES * 2 * ps->tree_size; k++)
            ps->tree[k] = -1;
    }
    return OP_OK;
}

/*
 * The view one policy has of site i now. Outpost sees the envelope, its
 * forecast over each horizon and the stated departure; the baselines see only
 * whether the site is there and its cores (they are power-oblivious).
 */
static void refresh_view(world *w, policy_state *ps, int policy, size_t i,
                         const double *horizon_env, int32_t stay_until, int alive, int step)
{
    sched_site *v = &ps->view[i];
    v->alive = alive;
    if (policy != SIM_OUTPOST) {
        v->headroom_watts = 1e12;
        refresh_baseline(ps, w, i);
        return;
    }
    double draw = ps->draw[i];
    v->headroom_watts = w->env[i] - draw;
    v->stay_until_ms = stay_until > 0 ? ms(stay_until) : 0;
    v->grid_rank = w->rank[(size_t)step * (size_t)w->p->regions + w->region[i]];
    v->failure_rate = ps->attempts[i] ? (double)ps->failures[i] / ps->attempts[i] : 0;
    v->has_forecast = 1;
    for (int k = 0; k < SCHED_HORIZONS; k++) {
        double h = horizon_env[k] - draw;
        v->horizon_watts[k] = (float)(h > 0 ? h : 0);
    }
    sched_fleet_update(ps->fleet, i);
}

/* Forecast envelope minima over every horizon, from now: pods by their forecaster, the rest
 * exactly. */
static void horizons(const world *w, size_t i, int32_t now_s, double env_now, double *out)
{
    int c = w->cls[i];
    double least = env_now;
    int k = 0;
    for (int q = 1; q <= 96 && k < SCHED_HORIZONS; q++) {
        int32_t t = now_s + q * 900;
        double e;
        if (c == SIM_POD) {
            e = power_forecast(&w->fc[w->fc_index[i]], ms(t));
            if (e > w->compute_max[i]) e = w->compute_max[i];
        } else if (c == SIM_DC) {
            e = dc_envelope(w, i, t);
        } else {
            int32_t stay;
            e = car_envelope(w, i, t, &stay);
            if (e < 0) e = 0;
        }
        if (e < least) least = e;
        while (k < SCHED_HORIZONS && (int64_t)q * 900000 >= sched_horizon_ms[k])
            out[k++] = least;
    }
    while (k < SCHED_HORIZONS)
        out[k++] = least;
}

/* The most units of eligible outstanding work that the offered units could run (max flow). */
static double usable_units(const double *offered, const double *demand)
{
    double best = 1e300;
    for (unsigned cut = 0; cut < 8; cut++) { /* the classes on the cut side */
        double v = 0;
        for (int c = 0; c < SIM_CLASSES; c++)
            if (cut & (1u << c)) v += offered[c];
        for (unsigned m = 1; m < 8; m++)
            if ((m & ~cut) != 0) v += demand[m];
        if (v < best) best = v;
    }
    return best;
}

static double clock_s(const sim_params *p)
{
    return p->now_s ? p->now_s() : 0;
}

/*
 * The baselines: a site-private job goes to its origin if it has the cores;
 * first-fit takes the first site (classes in order) with the cores free,
 * least-loaded the one with the most free cores. -1: none.
 */
static int32_t baseline_site(const world *w, const policy_state *ps, int policy, const job_spec *s)
{
    if (s->origin >= 0) {
        const sched_site *v = &ps->view[s->origin];
        return v->alive && v->free_cores >= s->cores ? s->origin : -1;
    }
    int32_t best = -1, best_free = -1;
    for (int c = 0; c < SIM_CLASSES; c++) {
        if (!(s->mask & class_bits[c])) continue;
        if (policy == SIM_FIRST_FIT) {
            int32_t pos = tree_first(ps, c, s->cores);
            if (pos >= 0) return w->class_members[c][pos];
            continue;
        }
        int32_t free_cores = 0, pos = tree_max(ps, c, &free_cores);
        if (pos >= 0 && free_cores >= s->cores && free_cores > best_free) {
            best = w->class_members[c][pos];
            best_free = free_cores;
        }
    }
    return best;
}

/* Places what it can from the queue, in arrival order. */
static int place_queue(world *w, policy_state *ps, int policy, int32_t now_s)
{
    /* a key that failed this step fails again for the same (mask, cores, horizon, deferring) */
    uint8_t failed[2][8][4][SCHED_HORIZONS];
    memset(failed, 0, sizeof failed);
    size_t keep = 0;
    double t0 = clock_s(w->p);
    for (size_t q = 0; q < ps->n_queue; q++) {
        int32_t jid = ps->queue[q];
        const job_spec *s = &w->jobs[jid];
        job_run *r = &ps->run[jid];
        int32_t remaining_est = s->est_s - r->done_s;
        if (remaining_est < 60) remaining_est = 60;
        if (now_s + remaining_est > s->deadline_s) { /* cannot finish in time: dropped */
            r->state = JOB_DROPPED;
            ps->rep.dropped++;
            ps->demand_units[s->mask] -= s->cores;
            continue;
        }
        int ci = s->cores == 1 ? 0 : s->cores == 2 ? 1 : s->cores == 4 ? 2 : 3;
        int k = sched_horizon_for(ms(remaining_est));
        int deferring =
            s->deferrable && s->deadline_s - now_s - remaining_est >= SCHED_DEFER_SLACK_MS / 1000;
        int key_k = policy == SIM_OUTPOST ? k : 0, key_d = policy == SIM_OUTPOST ? deferring : 0;
        if (s->origin < 0 && failed[key_d][s->mask][ci][key_k]) {
            ps->queue[keep++] = jid;
            continue;
        }
        int32_t site = -1;
        if (policy == SIM_OUTPOST) {
            sched_job j = job_view(w, s, now_s, remaining_est);
            sched_decision d;
            if (sched_fleet_place(ps->fleet, &j, 0, &d) != OP_OK) return OP_ENOMEM;
            site = d.outcome == SCHED_PLACED ? d.site_index : -1;
        } else {
            site = baseline_site(w, ps, policy, s);
        }
        if (site < 0) {
            if (s->origin < 0) failed[key_d][s->mask][ci][key_k] = 1;
            ps->queue[keep++] = jid;
            continue;
        }
        ps->rep.placements++;
        if (start_job(w, ps, policy, jid, (size_t)site, now_s) != OP_OK) return OP_ENOMEM;
    }
    ps->rep.place_s += clock_s(w->p) - t0;
    ps->n_queue = keep;
    return OP_OK;
}

int sim_run(const simdata *data, const sim_params *p, sim_report *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (p->sites < 1 || p->sites > 2000000 || p->jobs > 20000000 || p->days < 1 || p->days > 14 ||
        p->regions < 1 || p->regions > SCHED_MAX_REGIONS || p->step_s < 10 || p->step_s > 900 ||
        FORECAST_EVERY_S % p->step_s != 0) {
        snprintf(err, err_len,
                 "parameters: sites 1..2,000,000, jobs up to 20,000,000, days 1..14, regions "
                 "1..%d, step 10..900 s dividing 900",
                 SCHED_MAX_REGIONS);
        return OP_EINVAL;
    }
    double wall0 = clock_s(p);
    world w;
    memset(&w, 0, sizeof w);
    w.p = p;
    w.n = p->sites;
    w.n_jobs = p->jobs;
    w.days_total = p->days + 1;
    w.steps_per_day = DAY_S / p->step_s;
    w.warm_steps = w.steps_per_day;
    w.steps = w.steps_per_day * w.days_total;
    policy_state ps[SIM_POLICIES];
    memset(ps, 0, sizeof ps);
    uint64_t rng = p->seed * 0x2545F4914F6CDD1DULL + 1;
    int rc = OP_ENOMEM;
    w.ids = calloc(w.n, sizeof *w.ids);
    if (!w.ids) goto out;
    for (size_t i = 0; i < w.n; i++) {
        char id[32];
        snprintf(id, sizeof id, "s%zu", i);
        if (!(w.ids[i] = strdup(id))) goto out;
    }
    if (p->progress) p->progress(p->progress_ctx, 0, "building the fleet from the data");
    if ((rc = build_sites(&w, data, &rng)) != OP_OK) goto out;
    if ((rc = build_pod_events(&w, data, &rng)) != OP_OK) goto out;
    if ((rc = build_jobs(&w, &rng)) != OP_OK) goto out;
    if ((rc = build_signals(&w, data)) != OP_OK) goto out;
    for (int pol = 0; pol < SIM_POLICIES; pol++)
        if ((rc = init_policy(&w, &ps[pol], pol)) != OP_OK) goto out;
    out->n_steps = (size_t)(w.steps - w.warm_steps);
    out->step_s = p->step_s;
    out->jobs = w.n_jobs;
    for (int c = 0; c < SIM_CLASSES; c++)
        out->sites_by_class[c] = w.class_count[c];
    out->series = calloc(out->n_steps * SIM_CLASSES * (1 + SIM_POLICIES), sizeof *out->series);
    double *hz = malloc(w.n * SCHED_HORIZONS * sizeof *hz);
    uint8_t *was_alive = calloc(w.n, 1);
    int32_t *stay = calloc(w.n, sizeof *stay);
    if (!out->series || !hz || !was_alive || !stay) {
        free(hz);
        free(was_alive);
        free(stay);
        rc = OP_ENOMEM;
        goto out;
    }
    size_t next_job = 0;
    double dt = p->step_s;
    for (int step = 0; step < w.steps; step++) {
        int32_t now = step_time(&w, step);
        int warm = step < w.warm_steps;
        int forecast_tick = now % FORECAST_EVERY_S == 0;
        for (int32_t e = w.event_at[step]; e < w.event_at[step + 1]; e++) {
            w.load[w.events[e].site] += w.events[e].delta_watts;
            if (w.load[w.events[e].site] < 0.5f) w.load[w.events[e].site] = 0;
        }
        double offered_units[SIM_CLASSES] = {0}, offered_w[SIM_CLASSES] = {0},
               hardware_w[SIM_CLASSES] = {0};
        /* 1. envelopes now, and who is there */
        for (size_t i = 0; i < w.n; i++) {
            int c = w.cls[i];
            double e;
            int alive = 1;
            stay[i] = 0;
            if (c == SIM_POD) {
                e = pod_envelope(&w, i);
                if (forecast_tick) power_forecaster_observe(&w.fc[w.fc_index[i]], ms(now), e);
            } else if (c == SIM_DC) {
                e = dc_envelope(&w, i, now);
            } else {
                e = car_envelope(&w, i, now, &stay[i]);
                alive = e >= 0;
                if (e < 0) e = 0;
            }
            w.env[i] = (float)e;
            if (!warm) {
                offered_w[c] += e;
                if (alive) offered_units[c] += floor(e / w.wpc[i] + 1e-9);
                if (alive) hardware_w[c] += w.compute_max[i];
            }
            if (forecast_tick && !warm) horizons(&w, i, now, e, &hz[i * SCHED_HORIZONS]);
            /* cars that drove off: their jobs stop without warning (all policies) */
            if (was_alive[i] && !alive)
                for (int pol = 0; pol < SIM_POLICIES; pol++)
                    while (ps[pol].tail[i] >= 0) {
                        ps[pol].rep.lost_on_departure++;
                        if ((rc = stop_job(&w, &ps[pol], pol, ps[pol].tail[i], now, 0)) != OP_OK)
                            goto out_free;
                    }
            was_alive[i] = (uint8_t)alive;
        }
        if (warm) continue;
        size_t row = (size_t)(step - w.warm_steps) * SIM_CLASSES * (1 + SIM_POLICIES);
        for (int c = 0; c < SIM_CLASSES; c++) {
            out->offered_kwh[c] += offered_w[c] * dt / 3.6e6;
            out->hardware_kwh[c] += hardware_w[c] * dt / 3.6e6;
            out->series[row + (size_t)c * (1 + SIM_POLICIES)] = (float)offered_w[c];
        }
        /* 2. arrivals */
        size_t arrived_to = next_job;
        while (arrived_to < w.n_jobs && w.jobs[arrived_to].arrival_s <= now)
            arrived_to++;
        for (int pol = 0; pol < SIM_POLICIES; pol++) {
            policy_state *s = &ps[pol];
            /* 3. completions */
            for (int32_t e = s->wheel[step]; e >= 0; e = s->entry[e][1]) {
                int32_t jid = s->entry[e][0];
                job_run *r = &s->run[jid];
                if (r->state == JOB_RUNNING && r->end_s <= now &&
                    (int)ceil((double)r->end_s / p->step_s) + w.warm_steps == step) {
                    unlink_job(&w, s, pol, jid);
                    r->state = JOB_DONE;
                    s->rep.completed++;
                    s->rep.on_time += r->end_s <= w.jobs[jid].deadline_s;
                    s->demand_units[w.jobs[jid].mask] -= w.jobs[jid].cores;
                }
            }
            /* 4. enforcement: Outpost's sites shed their newest jobs (they checkpoint) */
            for (size_t i = 0; i < w.n; i++) {
                if (s->draw[i] > w.env[i] + 0.01f) {
                    if (pol == SIM_OUTPOST) {
                        s->rep.within_reaction_site_s += p->reaction_s;
                        while (s->draw[i] > w.env[i] + 0.01f && s->tail[i] >= 0) {
                            s->rep.preempted++;
                            if ((rc = stop_job(&w, s, pol, s->tail[i], now, 1)) != OP_OK)
                                goto out_free;
                        }
                    }
                }
            }
            /* 5. the views: every forecast tick, or when a site came or went */
            for (size_t i = 0; i < w.n; i++) {
                int alive = was_alive[i];
                if (alive != s->view[i].alive && !forecast_tick && pol == SIM_OUTPOST)
                    horizons(&w, i, now, w.env[i], &hz[i * SCHED_HORIZONS]);
                int changed = alive != s->view[i].alive ||
                              (pol == SIM_OUTPOST &&
                               (float)(w.env[i] - s->draw[i]) != (float)s->view[i].headroom_watts);
                if (forecast_tick || changed)
                    refresh_view(&w, s, pol, i, &hz[i * SCHED_HORIZONS], stay[i], alive, step);
            }
            for (size_t j = next_job; j < arrived_to; j++) {
                s->run[j].state = JOB_QUEUED;
                s->demand_units[w.jobs[j].mask] += w.jobs[j].cores;
                if ((rc = push_queue(s, (int32_t)j)) != OP_OK) goto out_free;
            }
            /* 6. placement */
            if ((rc = place_queue(&w, s, pol, now)) != OP_OK) goto out_free;
            /* 7. accounting */
            double used_units = 0;
            for (size_t i = 0; i < w.n; i++) {
                double draw = s->draw[i];
                if (draw <= 0) continue;
                int c = w.cls[i];
                double within = draw < w.env[i] ? draw : w.env[i];
                s->rep.used_kwh[c] += within * dt / 3.6e6;
                out->series[row + (size_t)c * (1 + SIM_POLICIES) + 1 + (size_t)pol] += (float)draw;
                double over = draw - within;
                if (over > 0.01) {
                    s->rep.over_kwh += over * dt / 3.6e6;
                    if (pol != SIM_OUTPOST) s->rep.violation_site_s += dt;
                }
                used_units += within / w.wpc[i];
                size_t k = (size_t)step * (size_t)p->regions + w.region[i];
                double kwh = draw * dt / 3.6e6;
                s->rep.cost_eur += kwh * w.price[k] / 1000.0;
                s->rep.carbon_kg += kwh * w.carbon[k] / 1000.0;
            }
            s->rep.used_unit_s += used_units * dt;
            s->rep.usable_unit_s += usable_units(offered_units, s->demand_units) * dt;
        }
        next_job = arrived_to;
        if (p->progress && (step % 10 == 0 || step == w.steps - 1))
            p->progress(p->progress_ctx, (double)(step - w.warm_steps + 1) / (double)out->n_steps,
                        "simulating");
    }
    for (int pol = 0; pol < SIM_POLICIES; pol++) {
        ps[pol].rep.queued_at_end = (long)ps[pol].n_queue;
        for (size_t j = 0; j < w.n_jobs; j++)
            ps[pol].rep.running_at_end += ps[pol].run[j].state == JOB_RUNNING;
        out->policy[pol] = ps[pol].rep;
    }
    out->sched_bytes_per_site = (double)sizeof(sched_site) + (double)sched_fleet_bytes_per_site();
    out->wall_s = clock_s(p) - wall0;
    rc = OP_OK;
out_free:
    free(hz);
    free(was_alive);
    free(stay);
out:
    for (int pol = 0; pol < SIM_POLICIES; pol++)
        free_policy(&ps[pol]);
    free_world(&w);
    if (rc != OP_OK) sim_report_free(out);
    if (rc == OP_ENOMEM) snprintf(err, err_len, "out of memory");
    return rc;
}

void sim_report_free(sim_report *r)
{
    free(r->series);
    r->series = NULL;
}
