/*
 * sim: the step loop. Every step the world moves (chargers plug in and out,
 * cars come and go, envelopes change), then each strategy in turn completes
 * its jobs, enforces the envelopes (Outpost only), refreshes its view of the
 * sites, queues the new arrivals, places what it can and counts what it
 * drew. The world is in sim_world.c, a strategy's state in sim_strategy.c.
 */
#include "sim/sim.h"

#include "base/err.h"
#include "sim/sim_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *strategy_names[SIM_STRATEGIES] = {"outpost", "least-loaded", "first-fit",
                                                     "outpost-learned"};
static const char *class_names[SIM_CLASSES] = {"pod", "car", "dc"};

const char *sim_strategy_name(int strategy)
{
    return strategy >= 0 && strategy < SIM_STRATEGIES ? strategy_names[strategy] : "?";
}

int sim_strategy_active(const sim_params *p, int strategy)
{
    return strategy >= 0 && strategy < SIM_STRATEGIES &&
           (strategy != SIM_OUTPOST_LEARNED || p->misstated);
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

/* What the loop keeps besides the world and the strategies: per-site buffers of the current step.
 */
typedef struct sim_loop {
    const sim_params *p;
    world w;
    strategy_state strat[SIM_STRATEGIES];
    double *hz;         /* n x SCHED_HORIZONS forecast envelope minima */
    uint8_t *was_alive; /* the site was there at the previous step */
    int32_t *stay;      /* a car's stated stay, else 0 */
    size_t next_job;    /* the first job not yet arrived */
    sim_report *out;
} sim_loop;

/* What the sites offer at this step, per class. */
typedef struct step_offer {
    double units[SIM_CLASSES], watts[SIM_CLASSES], hardware_watts[SIM_CLASSES];
} step_offer;

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

static int check_params(const sim_params *p, char *err, size_t err_len)
{
    if (p->sites < 1 || p->sites > 2000000 || p->jobs > 20000000 || p->days < 1 || p->days > 14 ||
        p->regions < 1 || p->regions > SCHED_MAX_REGIONS || p->step_s < 10 || p->step_s > 900 ||
        FORECAST_EVERY_S % p->step_s != 0) {
        snprintf(err, err_len,
                 "parameters: sites 1..2,000,000, jobs up to 20,000,000, days 1..14, regions "
                 "1..%d, step 10..900 s dividing 900",
                 SCHED_MAX_REGIONS);
        return OP_EINVAL;
    }
    return OP_OK;
}

/* The chargers that plugged in or out at this step change the pods' load. */
static void apply_charger_events(world *w, int step)
{
    for (int32_t e = w->event_at[step]; e < w->event_at[step + 1]; e++) {
        w->load[w->events[e].site] += w->events[e].delta_watts;
        if (w->load[w->events[e].site] < 0.5f) w->load[w->events[e].site] = 0;
    }
}

/* Site i's envelope now (0 for a car that is not there, with *alive 0); pods feed their forecaster.
 */
static double envelope_now(world *w, size_t i, int32_t now, int forecast_tick, int32_t *stay,
                           int *alive)
{
    int c = w->cls[i];
    double e;
    *alive = 1;
    *stay = 0;
    if (c == SIM_CLASS_POD) {
        e = sim__pod_envelope(w, i);
        if (forecast_tick) power_forecaster_observe(&w->fc[w->fc_index[i]], ms(now), e);
    } else if (c == SIM_CLASS_DC) {
        e = sim__dc_envelope(w, i, now);
    } else {
        e = sim__car_envelope(w, i, now, stay);
        *alive = e >= 0;
        if (e < 0) e = 0;
    }
    return e;
}

/* A car drove off: its jobs stop without warning, under every strategy. */
static int car_left(sim_loop *L, size_t i, int32_t now)
{
    for (int k = 0; k < SIM_STRATEGIES; k++) {
        strategy_state *st = &L->strat[k];
        if (!st->on) continue;
        while (st->tail[i] >= 0) {
            st->rep.lost_on_departure++;
            int rc = sim__stop_job(&L->w, st, st->tail[i], now, 0);
            if (rc != OP_OK) return rc;
        }
    }
    return OP_OK;
}

/* Step part 1: every site's envelope now, what the sites offer, and who left. */
static int sense_sites(sim_loop *L, int32_t now, int warm, int forecast_tick, step_offer *offer)
{
    world *w = &L->w;
    for (size_t i = 0; i < w->n; i++) {
        int c = w->cls[i], alive;
        double e = envelope_now(w, i, now, forecast_tick, &L->stay[i], &alive);
        w->env[i] = (float)e;
        if (!warm) {
            offer->watts[c] += e;
            if (alive) offer->units[c] += floor(e / w->wpc[i] + 1e-9);
            if (alive) offer->hardware_watts[c] += w->compute_max[i];
        }
        if (forecast_tick && !warm) sim__horizons(w, i, now, e, &L->hz[i * SCHED_HORIZONS]);
        if (L->was_alive[i] && !alive) {
            int rc = car_left(L, i, now);
            if (rc != OP_OK) return rc;
        }
        L->was_alive[i] = (uint8_t)alive;
    }
    return OP_OK;
}

/* Jobs whose end falls in this step are done (an entry of a job since restarted is stale). */
static void complete_jobs(const world *w, strategy_state *st, int step, int32_t now)
{
    for (int32_t e = st->wheel[step]; e >= 0; e = st->entry[e][1]) {
        int32_t jid = st->entry[e][0];
        sim_job_run *r = &st->run[jid];
        if (r->state == SIM_JOB_RUNNING && r->end_s <= now &&
            (int)ceil((double)r->end_s / w->p->step_s) + w->warm_steps == step) {
            sim__learn(w, st, jid, (size_t)r->site);
            sim__unlink_job(w, st, jid);
            r->state = SIM_JOB_DONE;
            st->rep.completed++;
            st->rep.on_time += r->end_s <= w->jobs[jid].deadline_s;
            st->demand_units[w->jobs[jid].mask] -= w->jobs[jid].cores;
        }
    }
}

/* Outpost's sites shed their newest jobs (they checkpoint) until under the envelope. */
static int enforce_envelopes(const world *w, strategy_state *st, int32_t now)
{
    if (!sim__is_outpost(st)) return OP_OK;
    for (size_t i = 0; i < w->n; i++) {
        if (st->draw[i] <= w->env[i] + 0.01f) continue;
        st->rep.within_reaction_site_s += w->p->reaction_s;
        while (st->draw[i] > w->env[i] + 0.01f && st->tail[i] >= 0) {
            st->rep.preempted++;
            int rc = sim__stop_job(w, st, st->tail[i], now, 1);
            if (rc != OP_OK) return rc;
        }
    }
    return OP_OK;
}

/* The views: every forecast tick, or when a site came or went (or, for Outpost, its headroom
 * moved). */
static void refresh_views(sim_loop *L, strategy_state *st, int step, int32_t now, int forecast_tick)
{
    const world *w = &L->w;
    int outpost = sim__is_outpost(st);
    for (size_t i = 0; i < w->n; i++) {
        int alive = L->was_alive[i];
        double *hz = &L->hz[i * SCHED_HORIZONS];
        if (alive != st->view[i].alive && !forecast_tick && outpost)
            sim__horizons(w, i, now, w->env[i], hz);
        int changed =
            alive != st->view[i].alive ||
            (outpost && (float)(w->env[i] - st->draw[i]) != (float)st->view[i].headroom_watts);
        if (forecast_tick || changed) sim__refresh_view(w, st, i, hz, L->stay[i], alive, step);
    }
}

static int enqueue_arrivals(const world *w, strategy_state *st, size_t from, size_t to)
{
    for (size_t j = from; j < to; j++) {
        st->run[j].state = SIM_JOB_QUEUED;
        st->demand_units[w->jobs[j].mask] += w->jobs[j].cores;
        int rc = sim__push_queue(st, (int32_t)j);
        if (rc != OP_OK) return rc;
    }
    return OP_OK;
}

/* What the strategy drew this step: energy within and above the envelopes, cost, carbon. */
static void account(const world *w, strategy_state *st, int step, float *series_row,
                    const step_offer *offer)
{
    double dt = w->p->step_s, used_units = 0;
    for (size_t i = 0; i < w->n; i++) {
        double draw = st->draw[i];
        if (draw <= 0) continue;
        int c = w->cls[i];
        double within = draw < w->env[i] ? draw : w->env[i];
        st->rep.used_kwh[c] += within * dt / 3.6e6;
        series_row[(size_t)c * (1 + SIM_STRATEGIES) + 1 + (size_t)st->strategy] += (float)draw;
        double over = draw - within;
        if (over > 0.01) {
            st->rep.over_kwh += over * dt / 3.6e6;
            if (!sim__is_outpost(st)) st->rep.violation_site_s += dt;
        }
        used_units += within / w->wpc[i];
        size_t k = (size_t)step * (size_t)w->p->regions + w->region[i];
        double kwh = draw * dt / 3.6e6;
        st->rep.cost_eur += kwh * w->price[k] / 1000.0;
        st->rep.carbon_kg += kwh * w->carbon[k] / 1000.0;
    }
    st->rep.used_unit_s += used_units * dt;
    st->rep.usable_unit_s += usable_units(offer->units, st->demand_units) * dt;
}

/* Step parts 3 to 7 for one strategy. */
static int step_strategy(sim_loop *L, strategy_state *st, int step, int32_t now, int forecast_tick,
                         size_t arrived_to, float *series_row, const step_offer *offer)
{
    const world *w = &L->w;
    complete_jobs(w, st, step, now);
    int rc = enforce_envelopes(w, st, now);
    if (rc != OP_OK) return rc;
    refresh_views(L, st, step, now, forecast_tick);
    if ((rc = enqueue_arrivals(w, st, L->next_job, arrived_to)) != OP_OK) return rc;
    if ((rc = sim__place_queue(w, st, now)) != OP_OK) return rc;
    account(w, st, step, series_row, offer);
    return OP_OK;
}

/* One time step: the world moves, then each strategy acts on it (nothing is counted in warm-up). */
static int run_step(sim_loop *L, int step)
{
    world *w = &L->w;
    sim_report *out = L->out;
    int32_t now = step_time(w, step);
    int warm = step < w->warm_steps;
    int forecast_tick = now % FORECAST_EVERY_S == 0;
    apply_charger_events(w, step);
    step_offer offer;
    memset(&offer, 0, sizeof offer);
    int rc = sense_sites(L, now, warm, forecast_tick, &offer);
    if (rc != OP_OK || warm) return rc;
    double dt = L->p->step_s;
    float *row = &out->series[(size_t)(step - w->warm_steps) * SIM_CLASSES * (1 + SIM_STRATEGIES)];
    for (int c = 0; c < SIM_CLASSES; c++) {
        out->offered_kwh[c] += offer.watts[c] * dt / 3.6e6;
        out->hardware_kwh[c] += offer.hardware_watts[c] * dt / 3.6e6;
        row[(size_t)c * (1 + SIM_STRATEGIES)] = (float)offer.watts[c];
    }
    size_t arrived_to = L->next_job;
    while (arrived_to < w->n_jobs && w->jobs[arrived_to].arrival_s <= now)
        arrived_to++;
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (L->strat[k].on && (rc = step_strategy(L, &L->strat[k], step, now, forecast_tick,
                                                  arrived_to, row, &offer)) != OP_OK)
            return rc;
    L->next_job = arrived_to;
    return OP_OK;
}

/* The world, the strategies and the loop's buffers. OP_OK or OP_ENOMEM. */
static int loop_setup(sim_loop *L, const simdata *data)
{
    const sim_params *p = L->p;
    sim_report *out = L->out;
    int rc = sim__world_build(&L->w, data, p);
    if (rc != OP_OK) return rc;
    for (int k = 0; k < SIM_STRATEGIES; k++) {
        if (!sim_strategy_active(p, k)) continue;
        if ((rc = sim__strategy_init(&L->w, &L->strat[k], k)) != OP_OK) return rc;
        L->strat[k].on = 1;
    }
    out->n_steps = (size_t)(L->w.steps - L->w.warm_steps);
    out->step_s = p->step_s;
    out->jobs = L->w.n_jobs;
    for (int c = 0; c < SIM_CLASSES; c++)
        out->sites_by_class[c] = L->w.class_count[c];
    out->series = calloc(out->n_steps * SIM_CLASSES * (1 + SIM_STRATEGIES), sizeof *out->series);
    L->hz = malloc(L->w.n * SCHED_HORIZONS * sizeof *L->hz);
    L->was_alive = calloc(L->w.n, 1);
    L->stay = calloc(L->w.n, sizeof *L->stay);
    return out->series && L->hz && L->was_alive && L->stay ? OP_OK : OP_ENOMEM;
}

static void loop_clear(sim_loop *L)
{
    free(L->hz);
    free(L->was_alive);
    free(L->stay);
    for (int k = 0; k < SIM_STRATEGIES; k++)
        sim__strategy_clear(&L->strat[k]);
    sim__world_clear(&L->w);
}

/*
 * A strategy's figures at the end: what is still queued or running, the
 * deadlines missed (dropped, or passed within the run late or not done),
 * and the mean error of the run times its fresh starts were planned with.
 */
static void finish_report(const world *w, const strategy_state *st, sim_strategy_report *rep)
{
    *rep = st->rep;
    rep->queued_at_end = (long)st->n_queue;
    int32_t end = end_time(w);
    for (size_t j = 0; j < w->n_jobs; j++) {
        const sim_job_run *r = &st->run[j];
        rep->running_at_end += r->state == SIM_JOB_RUNNING;
        if (r->state == SIM_JOB_DROPPED ||
            (w->jobs[j].deadline_s <= end &&
             !(r->state == SIM_JOB_DONE && r->end_s <= w->jobs[j].deadline_s)))
            rep->missed++;
    }
    long planned = rep->planned_declared + rep->planned_learned;
    rep->plan_log_error = planned ? st->plan_error_sum / (double)planned : 0;
}

int sim_run(const simdata *data, const sim_params *p, sim_report *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    int rc = check_params(p, err, err_len);
    if (rc != OP_OK) return rc;
    double wall0 = clock_s(p);
    sim_loop L;
    memset(&L, 0, sizeof L);
    L.p = p;
    L.out = out;
    if ((rc = loop_setup(&L, data)) != OP_OK) goto out;
    for (int step = 0; step < L.w.steps; step++) {
        if ((rc = run_step(&L, step)) != OP_OK) goto out;
        if (p->progress && step >= L.w.warm_steps && (step % 10 == 0 || step == L.w.steps - 1))
            p->progress(p->progress_ctx, (double)(step - L.w.warm_steps + 1) / (double)out->n_steps,
                        "simulating");
    }
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (L.strat[k].on) finish_report(&L.w, &L.strat[k], &out->strategy[k]);
    out->misstated = L.w.mis;
    out->sched_bytes_per_site = (double)sizeof(sched_site) + (double)sched_fleet_bytes_per_site();
    out->wall_s = clock_s(p) - wall0;
out:
    loop_clear(&L);
    if (rc != OP_OK) sim_report_clear(out);
    if (rc == OP_ENOMEM) snprintf(err, err_len, "out of memory");
    return rc;
}

void sim_report_clear(sim_report *r)
{
    free(r->series);
    memset(r, 0, sizeof *r);
}
