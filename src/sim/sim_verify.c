/*
 * sim_verify: four verification rules against liars on one synthetic car
 * fleet (see sim_verify.h). An hour at a time, every plugged-in car that is
 * not quarantined starts one job; the rule says how many results it needs;
 * replicas go to other plugged-in cars of other owners; the quorum is
 * verify_decide's for every rule, so the rules differ only in how often
 * they replicate and what a mismatch costs the liar.
 */
#include "sim/sim_verify.h"

#include "base/err.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/verify.h"

#include <stdlib.h>
#include <string.h>

#define SV_BOINC_TRUST_AFTER 10 /* BOINC's threshold of consecutive valid results */
#define SV_PICK_TRIES 64        /* draws to find a replica car of another owner */
#define SV_ID_LEN 24

typedef struct sv_car {
    verify_trust trust; /* boinc: CV in consecutive_valid; outpost: the hub's record */
    uint32_t owner;
    uint8_t liar;
    uint8_t out; /* quarantined (outpost): no more jobs */
    uint32_t results;
    int32_t out_hour; /* -1: never */
    uint32_t out_results;
} sv_car;

typedef struct sv_world {
    const sim_verify_params *p;
    sv_car *cars;
    verify_trust *owners; /* outpost's owner records */
    uint32_t *owner_first, *owner_cars;
    char (*car_id)[SV_ID_LEN];
    char (*owner_id)[SV_ID_LEN];
    char (*lie_hash)[SV_ID_LEN];
    uint32_t n_owners;
    uint32_t *present;
    size_t n_present;
    int rule, strategy;
    verify_params vp;    /* outpost's rule (core/verify defaults) */
    verify_params boinc; /* the same quorum, no quarantine */
    uint64_t rng;
    uint32_t hour;
    sim_verify_cell *cell;
} sv_world;

void sim_verify_params_default(sim_verify_params *p)
{
    memset(p, 0, sizeof *p);
    p->cars = 10000;
    p->days = 60;
    p->plugged_in = 0.35;
    p->cars_per_liar_owner = 5;
    p->random_lie = 0.1;
    p->honest_glitch = 1e-5;
    p->liar_fractions[0] = 0.01;
    p->liar_fractions[1] = 0.10;
    p->liar_fractions[2] = 0.30;
    p->n_fractions = 3;
    p->seed = 1;
}

const char *sim_verify_rule_name(int rule)
{
    static const char *names[SV_RULES] = {"none", "2-of-2", "boinc", "outpost"};
    return rule >= 0 && rule < SV_RULES ? names[rule] : "?";
}

const char *sim_verify_strategy_name(int strategy)
{
    static const char *names[SV_STRATEGIES] = {"always", "random", "after-trust"};
    return strategy >= 0 && strategy < SV_STRATEGIES ? names[strategy] : "?";
}

size_t sim_verify_cell_count(const sim_verify_params *p)
{
    return p->n_fractions * SV_STRATEGIES * SV_RULES;
}

double sim_verify_wrong_ppm(const sim_verify_cell *c)
{
    return c->accepted ? 1e6 * (double)c->wrong_accepted / (double)c->accepted : 0.0;
}

double sim_verify_lies_ppm(const sim_verify_cell *c)
{
    return c->accepted ? 1e6 * (double)c->lies_accepted / (double)c->accepted : 0.0;
}

double sim_verify_overhead(const sim_verify_cell *c)
{
    return c->accepted ? (double)c->attempts / (double)c->accepted : 0.0;
}

static double draw(sv_world *w)
{
    return (double)(util_splitmix64(&w->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* Plugged in during this hour: a hash of (seed, car, hour), the same for every rule. */
static int plugged_in(const sim_verify_params *p, uint32_t car, uint32_t hour)
{
    uint64_t s = p->seed ^ ((uint64_t)car << 32) ^ ((uint64_t)hour * 0x9e3779b97f4a7c15ULL);
    return (double)(util_splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0) < p->plugged_in;
}

/* Trusted, as the rule the car faces means it (what the after-trust liar waits for). */
static int car_trusted(const sv_world *w, const sv_car *c)
{
    switch (w->rule) {
    case SV_RULE_NONE:
        return 1;
    case SV_RULE_BOINC:
        return c->trust.consecutive_valid >= SV_BOINC_TRUST_AFTER;
    case SV_RULE_OUTPOST:
        return c->trust.consecutive_valid >=
               verify_trust_needed(&w->vp, &c->trust, &w->owners[c->owner]);
    default:
        return 0;
    }
}

/* The hash car c reports: the right one, its owner's forgery, or a glitch of its own. */
static const char *car_result(sv_world *w, uint32_t car, char glitch[SV_ID_LEN])
{
    sv_car *c = &w->cars[car];
    c->results++;
    w->cell->attempts++;
    int lies = 0;
    if (c->liar) {
        lies = w->strategy == SV_LIE_ALWAYS   ? 1
               : w->strategy == SV_LIE_RANDOM ? draw(w) < w->p->random_lie
                                              : car_trusted(w, c);
    }
    if (lies) {
        w->cell->wrong_sent++;
        return w->lie_hash[c->owner];
    }
    if (w->p->honest_glitch > 0 && draw(w) < w->p->honest_glitch) {
        w->cell->wrong_sent++;
        util_fmt(glitch, SV_ID_LEN, "glitch-%u", car);
        return glitch;
    }
    return "ok";
}

/* Results the rule wants for a job on this car; 0: the car gets no job (quarantined). */
static uint32_t rule_plan(sv_world *w, const sv_car *c)
{
    switch (w->rule) {
    case SV_RULE_NONE:
        return 1;
    case SV_RULE_FIXED2:
        return 2;
    case SV_RULE_BOINC: {
        uint32_t cv = c->trust.consecutive_valid;
        if (cv < SV_BOINC_TRUST_AFTER) return 2;
        return draw(w) < 1.0 / (double)cv ? 2 : 1;
    }
    default: {
        verify_plan_out plan;
        int rc = verify_plan(&w->vp, JOB_KIND_EXEC, 1, CLASS_CAR, &c->trust, &w->owners[c->owner],
                             util_splitmix64(&w->rng), &plan);
        return rc == OP_OK ? plan.replicas : 0;
    }
    }
}

/* A plugged-in, not quarantined car of an owner not yet on this job; UINT32_MAX if none found. */
static uint32_t pick_replica(sv_world *w, const uint32_t *chosen, size_t n)
{
    for (int t = 0; t < SV_PICK_TRIES && w->n_present; t++) {
        uint32_t car = w->present[util_splitmix64(&w->rng) % w->n_present];
        if (w->cars[car].out) continue;
        int taken = 0;
        for (size_t i = 0; i < n && !taken; i++)
            taken = w->cars[chosen[i]].owner == w->cars[car].owner;
        if (!taken) return car;
    }
    return UINT32_MAX;
}

static void mark_out(sv_world *w, uint32_t car)
{
    sv_car *c = &w->cars[car];
    if (c->out) return;
    c->out = 1;
    c->out_hour = (int32_t)w->hour;
    c->out_results = c->results;
}

/*
 * A checked job's verdict on one car. BOINC zeroes or grows CV; Outpost
 * also counts the mismatch against the owner, restarts the owner's other
 * cars (verify_taint) and takes quarantined cars out of the pool.
 */
static void judge(sv_world *w, uint32_t car, int mismatched)
{
    sv_car *c = &w->cars[car];
    int outcome = mismatched ? VERIFY_MISMATCH : VERIFY_VALID;
    int64_t now_ms = (int64_t)w->hour * 3600000;
    if (w->rule == SV_RULE_BOINC) {
        verify_update_trust(&w->boinc, &c->trust, outcome, now_ms);
        return;
    }
    if (w->rule != SV_RULE_OUTPOST) return;
    verify_update_trust(&w->vp, &c->trust, outcome, now_ms);
    if (!mismatched) return;
    verify_trust *owner = &w->owners[c->owner];
    verify_update_trust(&w->vp, owner, VERIFY_MISMATCH, now_ms);
    uint32_t first = w->owner_first[c->owner], n = w->owner_cars[c->owner];
    for (uint32_t i = first; i < first + n; i++) {
        if (i != car) verify_taint(&w->cars[i].trust);
        if (owner->quarantined) mark_out(w, i);
    }
    if (c->trust.quarantined) mark_out(w, car);
}

static void run_job(sv_world *w, uint32_t primary)
{
    uint32_t wanted = rule_plan(w, &w->cars[primary]);
    if (wanted == 0) return;
    uint32_t chosen[VERIFY_MAX_RESULTS];
    verify_result res[VERIFY_MAX_RESULTS];
    char glitch[VERIFY_MAX_RESULTS][SV_ID_LEN];
    size_t n = 0;
    uint32_t need = wanted;
    verify_outcome o;
    w->cell->jobs++;
    for (;;) {
        while (n < need) {
            uint32_t car = n == 0 ? primary : pick_replica(w, chosen, n);
            if (car == UINT32_MAX) break;
            chosen[n] = car;
            res[n] = (verify_result){w->car_id[car], w->owner_id[w->cars[car].owner],
                                     car_result(w, car, glitch[n]), 0};
            n++;
        }
        if (n < need || verify_decide(&w->boinc, res, n, wanted, &o) != OP_OK) {
            w->cell->given_up++;
            return;
        }
        if (o.state != VERIFY_NEED_MORE) break;
        need = (uint32_t)n + o.more;
    }
    if (o.state != VERIFY_ACCEPT) {
        w->cell->given_up++;
        return;
    }
    w->cell->accepted++;
    if (strcmp(res[o.winner].hash, "ok") != 0) w->cell->wrong_accepted++;
    if (strncmp(res[o.winner].hash, "forged", 6) == 0) w->cell->lies_accepted++;
    if (n > 1)
        for (size_t i = 0; i < n; i++)
            judge(w, chosen[i], o.mismatched[i]);
}

/* One simulated hour: the cars plugged in each start a job, from a random first car on. */
static void run_hour(sv_world *w)
{
    w->n_present = 0;
    for (uint32_t c = 0; c < w->p->cars; c++)
        if (!w->cars[c].out && plugged_in(w->p, c, w->hour)) w->present[w->n_present++] = c;
    if (!w->n_present) return;
    size_t start = util_splitmix64(&w->rng) % w->n_present, n = w->n_present;
    for (size_t k = 0; k < n; k++) {
        uint32_t car = w->present[(start + k) % n];
        if (!w->cars[car].out) run_job(w, car);
    }
}

static void world_free(sv_world *w)
{
    free(w->cars);
    free(w->owners);
    free(w->owner_first);
    free(w->owner_cars);
    free(w->car_id);
    free(w->owner_id);
    free(w->lie_hash);
    free(w->present);
    memset(w, 0, sizeof *w);
}

/*
 * The fleet for one liar fraction: the liars' cars come first, in owners of
 * cars_per_liar_owner, then one honest owner per car. The plug-in hours do
 * not depend on the index (a hash per car and hour), and each hour starts
 * its jobs from a random car, so the order carries no advantage.
 */
static int world_init(sv_world *w, const sim_verify_params *p, double fraction)
{
    memset(w, 0, sizeof *w);
    w->p = p;
    uint32_t per = p->cars_per_liar_owner ? p->cars_per_liar_owner : 1;
    uint32_t liar_cars = (uint32_t)(fraction * p->cars + 0.5);
    uint32_t liar_owners = (liar_cars + per - 1) / per;
    w->n_owners = liar_owners + (p->cars - liar_cars);
    w->cars = calloc(p->cars, sizeof *w->cars);
    w->owners = calloc(w->n_owners, sizeof *w->owners);
    w->owner_first = calloc(w->n_owners, sizeof *w->owner_first);
    w->owner_cars = calloc(w->n_owners, sizeof *w->owner_cars);
    w->car_id = calloc(p->cars, sizeof *w->car_id);
    w->owner_id = calloc(w->n_owners, sizeof *w->owner_id);
    w->lie_hash = calloc(w->n_owners, sizeof *w->lie_hash);
    w->present = calloc(p->cars, sizeof *w->present);
    if (!w->cars || !w->owners || !w->owner_first || !w->owner_cars || !w->car_id || !w->owner_id ||
        !w->lie_hash || !w->present) {
        world_free(w);
        return OP_ENOMEM;
    }
    for (uint32_t c = 0; c < p->cars; c++) {
        uint32_t o = c < liar_cars ? c / per : liar_owners + (c - liar_cars);
        w->cars[c].owner = o;
        w->cars[c].liar = c < liar_cars;
        w->cars[c].out_hour = -1;
        if (!w->owner_cars[o]) w->owner_first[o] = c;
        w->owner_cars[o]++;
        util_fmt(w->car_id[c], SV_ID_LEN, "car-%u", c);
    }
    for (uint32_t o = 0; o < w->n_owners; o++) {
        util_fmt(w->owner_id[o], SV_ID_LEN, "owner-%u", o);
        util_fmt(w->lie_hash[o], SV_ID_LEN, "forged-by-%u", o);
    }
    verify_params_default(&w->vp);
    w->boinc = w->vp;
    w->boinc.quarantine_after = 0;
    return OP_OK;
}

/* Resets the cars and owners between rules: the same fleet, fresh trust. */
static void world_reset(sv_world *w, int rule, int strategy, uint64_t seed)
{
    for (uint32_t c = 0; c < w->p->cars; c++) {
        sv_car *car = &w->cars[c];
        memset(&car->trust, 0, sizeof car->trust);
        car->out = 0;
        car->results = 0;
        car->out_hour = -1;
        car->out_results = 0;
    }
    memset(w->owners, 0, w->n_owners * sizeof *w->owners);
    w->rule = rule;
    w->strategy = strategy;
    w->rng = seed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median over liar cars of a figure, never-quarantined ones counted as infinite. */
static double liar_median(const sv_world *w, double *scratch, int in_results)
{
    size_t n = 0;
    for (uint32_t c = 0; c < w->p->cars; c++) {
        const sv_car *car = &w->cars[c];
        if (!car->liar) continue;
        scratch[n++] = car->out_hour < 0 ? 1e300
                       : in_results      ? (double)car->out_results
                                         : (double)car->out_hour + 1.0;
    }
    if (!n) return -1;
    qsort(scratch, n, sizeof *scratch, cmp_double);
    double m = scratch[(n - 1) / 2];
    return m >= 1e300 ? -1 : m;
}

static void finish_cell(sv_world *w, sim_verify_cell *cell, double *scratch)
{
    for (uint32_t c = 0; c < w->p->cars; c++) {
        const sv_car *car = &w->cars[c];
        cell->liars += car->liar;
        if (car->out_hour >= 0) {
            if (car->liar)
                cell->liars_quarantined++;
            else
                cell->honest_quarantined++;
        }
    }
    cell->median_quarantine_h = liar_median(w, scratch, 0);
    cell->median_quarantine_jobs = liar_median(w, scratch, 1);
}

static int check_params(const sim_verify_params *p, size_t n_cells, char *err, size_t err_len)
{
    const char *bad = NULL;
    if (p->cars < 10 || p->cars > 1000000)
        bad = "cars: from 10 to 1,000,000";
    else if (p->days < 1 || p->days > 3650)
        bad = "days: from 1 to 3,650";
    else if (!(p->plugged_in > 0 && p->plugged_in <= 1))
        bad = "plugged_in: a probability above 0";
    else if (!(p->random_lie >= 0 && p->random_lie <= 1) ||
             !(p->honest_glitch >= 0 && p->honest_glitch <= 1))
        bad = "random_lie, honest_glitch: probabilities";
    else if (p->n_fractions < 1 || p->n_fractions > SV_MAX_FRACTIONS)
        bad = "liar fractions: from 1 to 4 of them";
    else if (n_cells < sim_verify_cell_count(p))
        bad = "cells: too few for the run";
    for (size_t i = 0; !bad && i < p->n_fractions; i++)
        if (!(p->liar_fractions[i] >= 0 && p->liar_fractions[i] < 1))
            bad = "liar fractions: each from 0 to below 1";
    if (bad) util_fmt(err, err_len, "%s", bad);
    return bad ? OP_EINVAL : OP_OK;
}

int sim_verify_run(const sim_verify_params *p, sim_verify_cell *cells, size_t n_cells, char *err,
                   size_t err_len)
{
    if (!p || !cells) return OP_EINVAL;
    int rc = check_params(p, n_cells, err, err_len);
    if (rc != OP_OK) return rc;
    double *scratch = calloc(p->cars, sizeof *scratch);
    if (!scratch) return OP_ENOMEM;
    size_t k = 0, total = sim_verify_cell_count(p);
    for (size_t f = 0; f < p->n_fractions && rc == OP_OK; f++) {
        sv_world w;
        rc = world_init(&w, p, p->liar_fractions[f]);
        for (int s = 0; s < SV_STRATEGIES && rc == OP_OK; s++) {
            for (int r = 0; r < SV_RULES; r++, k++) {
                /* every rule meets the same fleet, plug-in hours and first random numbers */
                world_reset(&w, r, s, p->seed * 0x2545f4914f6cdd1dULL + f * 131 + (uint64_t)s);
                sim_verify_cell *cell = &cells[k];
                memset(cell, 0, sizeof *cell);
                cell->liar_fraction = p->liar_fractions[f];
                cell->strategy = s;
                cell->rule = r;
                w.cell = cell;
                for (w.hour = 0; w.hour < p->days * 24; w.hour++)
                    run_hour(&w);
                finish_cell(&w, cell, scratch);
                if (p->progress) p->progress(p->progress_ctx, (double)(k + 1) / total, "cells");
            }
        }
        if (rc == OP_OK) world_free(&w);
    }
    free(scratch);
    if (rc == OP_ENOMEM) util_fmt(err, err_len, "out of memory");
    return rc;
}
