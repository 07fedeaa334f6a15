/*
 * sim_strategy: the run of one placement strategy over the world: its view
 * of every site, the jobs running per site (oldest first), the queue, the
 * completion wheel, and placement by Outpost's scheduler (sched_fleet_place)
 * or by a baseline (segment trees of free cores per class).
 */
#include "base/err.h"
#include "sim/sim_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------- baselines: segment trees of free cores per class ---------- */

static void tree_set(strategy_state *st, const world *w, size_t i, int32_t value)
{
    int c = w->cls[i];
    size_t base = (size_t)c * st->tree_size * 2;
    size_t pos = st->tree_size + (size_t)w->order_in_class[i];
    st->tree[base + pos] = value;
    for (pos /= 2; pos >= 1; pos /= 2) {
        int32_t a = st->tree[base + 2 * pos], b = st->tree[base + 2 * pos + 1];
        st->tree[base + pos] = a > b ? a : b;
    }
}

/* First (leftmost) member of class c with at least need free cores, or -1. */
static int32_t tree_first(const strategy_state *st, int c, int need)
{
    size_t base = (size_t)c * st->tree_size * 2;
    if (st->tree[base + 1] < need) return -1;
    size_t pos = 1;
    while (pos < st->tree_size)
        pos = st->tree[base + 2 * pos] >= need ? 2 * pos : 2 * pos + 1;
    return (int32_t)(pos - st->tree_size);
}

/* Member of class c with the most free cores (leftmost on ties), or -1. */
static int32_t tree_max(const strategy_state *st, int c, int32_t *value)
{
    size_t base = (size_t)c * st->tree_size * 2;
    *value = st->tree[base + 1];
    if (*value <= 0) return -1;
    size_t pos = 1;
    while (pos < st->tree_size)
        pos = st->tree[base + 2 * pos] == *value ? 2 * pos : 2 * pos + 1;
    return (int32_t)(pos - st->tree_size);
}

/* ---------- running jobs ---------- */

static void refresh_baseline(strategy_state *st, const world *w, size_t i)
{
    tree_set(st, w, i, st->view[i].alive ? st->view[i].free_cores : -1);
}

static sched_job job_view(const world *w, const sim_job *s, int32_t now_s, int32_t remaining_s)
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

static int start_job(const world *w, strategy_state *st, int32_t jid, size_t site, int32_t now_s)
{
    const sim_job *s = &w->jobs[jid];
    sim_job_run *r = &st->run[jid];
    r->state = SIM_JOB_RUNNING;
    r->site = (int32_t)site;
    r->start_s = now_s;
    r->end_s = now_s + (s->work_s - r->done_s);
    sched_job j = job_view(w, s, now_s, s->est_s - r->done_s);
    if (sim__is_outpost(st))
        sched_fleet_reserve(st->fleet, site, &j);
    else
        sched_reserve(&st->view[site], &j);
    st->draw[site] += (float)(s->cores * w->wpc[site]);
    /* append to the site's running list (newest last) */
    r->prev = st->tail[site];
    r->next = -1;
    if (r->prev >= 0)
        st->run[r->prev].next = jid;
    else
        st->head[site] = jid;
    st->tail[site] = jid;
    int end_step = (int)ceil((double)r->end_s / w->p->step_s) + w->warm_steps;
    if (end_step < w->steps) {
        if (st->n_entry == st->cap_entry) {
            size_t cap = st->cap_entry ? st->cap_entry * 2 : 1 << 16;
            int32_t(*m)[2] = realloc(st->entry, cap * sizeof *m);
            if (!m) return OP_ENOMEM;
            st->entry = m;
            st->cap_entry = cap;
        }
        st->entry[st->n_entry][0] = jid;
        st->entry[st->n_entry][1] = st->wheel[end_step];
        st->wheel[end_step] = (int32_t)st->n_entry++;
    }
    st->attempts[site]++;
    if (!sim__is_outpost(st)) refresh_baseline(st, w, site);
    return OP_OK;
}

void sim__unlink_job(const world *w, strategy_state *st, int32_t jid)
{
    const sim_job *s = &w->jobs[jid];
    sim_job_run *r = &st->run[jid];
    size_t site = (size_t)r->site;
    if (r->prev >= 0)
        st->run[r->prev].next = r->next;
    else
        st->head[site] = r->next;
    if (r->next >= 0)
        st->run[r->next].prev = r->prev;
    else
        st->tail[site] = r->prev;
    sched_job j = job_view(w, s, 0, 0);
    if (sim__is_outpost(st))
        sched_fleet_release(st->fleet, site, &j);
    else
        sched_release(&st->view[site], &j);
    st->draw[site] -= (float)(s->cores * w->wpc[site]);
    if (st->draw[site] < 0.01f) st->draw[site] = 0;
    if (!sim__is_outpost(st)) refresh_baseline(st, w, site);
}

int sim__push_queue(strategy_state *st, int32_t jid)
{
    if (st->n_queue == st->cap_queue) {
        size_t cap = st->cap_queue ? st->cap_queue * 2 : 4096;
        int32_t *q = realloc(st->queue, cap * sizeof *q);
        if (!q) return OP_ENOMEM;
        st->queue = q;
        st->cap_queue = cap;
    }
    st->queue[st->n_queue++] = jid;
    return OP_OK;
}

/*
 * A job stops before its end. graceful: the site asked it to stop (SIGTERM)
 * and it wrote a checkpoint, so no work is lost; else (the car drove off) the
 * work since its last periodic checkpoint is.
 */
int sim__stop_job(const world *w, strategy_state *st, int32_t jid, int32_t now_s, int graceful)
{
    sim_job_run *r = &st->run[jid];
    const sim_job *s = &w->jobs[jid];
    int32_t elapsed = now_s - r->start_s;
    int32_t every =
        sim__is_outpost(st) && w->cls[r->site] == SIM_CLASS_CAR ? CAR_CHECKPOINT_S : CHECKPOINT_S;
    int32_t kept = graceful ? elapsed : (elapsed / every) * every;
    st->rep.wasted_unit_h += (double)(elapsed - kept) * s->cores / 3600.0;
    r->done_s += kept;
    if (r->done_s > s->work_s) r->done_s = s->work_s;
    if (!graceful) st->failures[r->site]++;
    sim__unlink_job(w, st, jid);
    r->state = SIM_JOB_QUEUED;
    r->site = -1;
    return sim__push_queue(st, jid);
}

/* Releases what st owns and zeroes it. */
void sim__strategy_clear(strategy_state *st)
{
    free(st->view);
    sched_fleet_free(st->fleet);
    free(st->tree);
    free(st->draw);
    free(st->head);
    free(st->tail);
    free(st->attempts);
    free(st->failures);
    free(st->run);
    free(st->queue);
    free(st->wheel);
    free(st->entry);
    sim__learned_clear(st);
    memset(st, 0, sizeof *st);
}

int sim__strategy_init(const world *w, strategy_state *st, int strategy)
{
    st->strategy = strategy;
    size_t n = w->n ? w->n : 1;
    st->view = calloc(n, sizeof *st->view);
    st->draw = calloc(n, sizeof *st->draw);
    st->head = malloc(n * sizeof *st->head);
    st->tail = malloc(n * sizeof *st->tail);
    st->attempts = calloc(n, sizeof *st->attempts);
    st->failures = calloc(n, sizeof *st->failures);
    st->run = calloc(w->n_jobs ? w->n_jobs : 1, sizeof *st->run);
    st->wheel = malloc((size_t)w->steps * sizeof *st->wheel);
    if (!st->view || !st->draw || !st->head || !st->tail || !st->attempts || !st->failures ||
        !st->run || !st->wheel)
        return OP_ENOMEM;
    for (size_t i = 0; i < w->n; i++) {
        st->head[i] = st->tail[i] = -1;
        sched_site *v = &st->view[i];
        v->id = w->ids[i];
        v->class_bit = sim_class_bit(w->cls[i]);
        v->cores = v->free_cores = w->units[i];
        v->memory_mb = v->free_memory_mb = 1 << 20;
        v->watts_per_core = w->wpc[i];
        v->region = w->region[i];
    }
    for (int s = 0; s < w->steps; s++)
        st->wheel[s] = -1;
    for (size_t j = 0; j < w->n_jobs; j++)
        st->run[j] = (sim_job_run){.site = -1, .next = -1, .prev = -1};
    if (st->strategy == SIM_OUTPOST_LEARNED && sim__learned_init(st) != OP_OK) return OP_ENOMEM;
    if (sim__is_outpost(st)) {
        st->fleet = sched_fleet_new(st->view, w->n);
        if (!st->fleet) return OP_ENOMEM;
    } else {
        size_t most = 1;
        for (int c = 0; c < SIM_CLASSES; c++)
            if (w->class_count[c] > most) most = w->class_count[c];
        st->tree_size = 1;
        while (st->tree_size < most)
            st->tree_size *= 2;
        st->tree = malloc(SIM_CLASSES * 2 * st->tree_size * sizeof *st->tree);
        if (!st->tree) return OP_ENOMEM;
        for (size_t k = 0; k < SIM_CLASSES * 2 * st->tree_size; k++)
            st->tree[k] = -1;
    }
    return OP_OK;
}

/*
 * The view one strategy has of site i now. Outpost sees the envelope, its
 * forecast over each horizon and the stated departure; the baselines see only
 * whether the site is there and its cores (they are power-oblivious).
 */
void sim__refresh_view(const world *w, strategy_state *st, size_t i, const double *horizon_env,
                       int32_t stay_until, int alive, int step)
{
    sched_site *v = &st->view[i];
    v->alive = alive;
    if (!sim__is_outpost(st)) {
        v->headroom_watts = 1e12;
        refresh_baseline(st, w, i);
        return;
    }
    double draw = st->draw[i];
    v->headroom_watts = w->env[i] - draw;
    v->stay_until_ms = stay_until > 0 ? ms(stay_until) : 0;
    v->grid_rank = w->rank[(size_t)step * (size_t)w->p->regions + w->region[i]];
    v->failure_rate = st->attempts[i] ? (double)st->failures[i] / st->attempts[i] : 0;
    v->has_forecast = 1;
    for (int k = 0; k < SCHED_HORIZONS; k++) {
        double h = horizon_env[k] - draw;
        v->horizon_watts[k] = (float)(h > 0 ? h : 0);
    }
    sched_fleet_update(st->fleet, i);
}

/*
 * The baselines: a site-private job goes to its origin if it has the cores;
 * first-fit takes the first site (classes in order) with the cores free,
 * least-loaded the one with the most free cores. -1: none.
 */
static int32_t baseline_site(const world *w, const strategy_state *st, const sim_job *s)
{
    if (s->origin >= 0) {
        const sched_site *v = &st->view[s->origin];
        return v->alive && v->free_cores >= s->cores ? s->origin : -1;
    }
    int32_t best = -1, best_free = -1;
    for (int c = 0; c < SIM_CLASSES; c++) {
        if (!(s->mask & sim_class_bit(c))) continue;
        if (st->strategy == SIM_FIRST_FIT) {
            int32_t pos = tree_first(st, c, s->cores);
            if (pos >= 0) return w->class_members[c][pos];
            continue;
        }
        int32_t free_cores = 0, pos = tree_max(st, c, &free_cores);
        if (pos >= 0 && free_cores >= s->cores && free_cores > best_free) {
            best = w->class_members[c][pos];
            best_free = free_cores;
        }
    }
    return best;
}

/* sched_job.duration_on for outpost-learned: the learned plan, the same on every site. */
static int64_t planned_everywhere(void *ctx, const sched_site *site)
{
    (void)site;
    return *(const int64_t *)ctx;
}

/* A fresh start (no work done before): what its run time was planned with, and how far off. */
static void count_plan(strategy_state *st, const sim_job *s, int learned, int32_t plan_s)
{
    if (!learned && s->est_s <= 0) {
        st->rep.planned_unknown++;
        return;
    }
    if (learned)
        st->rep.planned_learned++;
    else
        st->rep.planned_declared++;
    st->plan_error_sum += fabs(log((double)plan_s / s->work_s));
}

/* Outpost's placer for one job: the site, or -1. OP_ENOMEM as -2. */
static int32_t outpost_site(const world *w, strategy_state *st, const sim_job *s, int32_t now_s,
                            int learned, int32_t plan_s, int32_t least_s)
{
    /* learned: the deadline judged with the shortest credible run time, sites with the plan */
    int64_t plan_ms = ms(plan_s);
    sched_job j = job_view(w, s, now_s, learned ? least_s : plan_s);
    if (learned) {
        j.duration_on = planned_everywhere;
        j.duration_ctx = &plan_ms;
    }
    sched_decision d;
    if (sched_fleet_place(st->fleet, &j, 0, &d) != OP_OK) return -2;
    return d.outcome == SCHED_PLACED ? d.site_index : -1;
}

int sim__place_queue(const world *w, strategy_state *st, int32_t now_s)
{
    /* a key that failed this step fails again for the same (mask, cores, horizon, deferring) */
    uint8_t failed[2][8][4][SCHED_HORIZONS];
    memset(failed, 0, sizeof failed);
    size_t keep = 0;
    double t0 = clock_s(w->p);
    int outpost = sim__is_outpost(st);
    for (size_t q = 0; q < st->n_queue; q++) {
        int32_t jid = st->queue[q];
        const sim_job *s = &w->jobs[jid];
        sim_job_run *r = &st->run[jid];
        int32_t plan_s, least_s;
        int learned = sim__planned(w, st, jid, now_s, &plan_s, &least_s);
        if (now_s + least_s > s->deadline_s) { /* cannot finish in time: dropped */
            r->state = SIM_JOB_DROPPED;
            st->rep.dropped++;
            st->demand_units[s->mask] -= s->cores;
            continue;
        }
        int ci = s->cores == 1 ? 0 : s->cores == 2 ? 1 : s->cores == 4 ? 2 : 3;
        int k = sched_horizon_for(ms(plan_s));
        int deferring =
            s->deferrable && s->deadline_s - now_s - plan_s >= SCHED_DEFER_SLACK_MS / 1000;
        int key_k = outpost ? k : 0, key_d = outpost ? deferring : 0;
        if (s->origin < 0 && failed[key_d][s->mask][ci][key_k]) {
            st->queue[keep++] = jid;
            continue;
        }
        int32_t site = outpost ? outpost_site(w, st, s, now_s, learned, plan_s, least_s)
                               : baseline_site(w, st, s);
        if (site == -2) return OP_ENOMEM;
        if (site < 0) {
            if (s->origin < 0) failed[key_d][s->mask][ci][key_k] = 1;
            st->queue[keep++] = jid;
            continue;
        }
        st->rep.placements++;
        if (r->done_s == 0) count_plan(st, s, learned, plan_s);
        if (start_job(w, st, jid, (size_t)site, now_s) != OP_OK) return OP_ENOMEM;
    }
    st->rep.place_s += clock_s(w->p) - t0;
    st->n_queue = keep;
    return OP_OK;
}
