/*
 * sim_misstate: run times as submitters state them and as the fleet learns
 * them (`outpost sim --misstated`, docs/simulator.md).
 *
 * The world: every job runs one of MIS_PROGRAMS programs (Zipf popularity:
 * a few programs run often, most rarely). A program has a typical run time
 * (the default world's distribution: log-normal, median 90 min, 5 min-8 h)
 * and its runs vary around it log-normally with sigma MIS_RUN_SIGMA, the
 * spread of real taxi trips around a distance-over-speed plan. Its
 * submitter declares the same round value for each of its jobs: the
 * typical run time times a factor of the program's, log-normal with median
 * MIS_FACTOR_MEDIAN (users overestimate by 2-5x) and sigma
 * MIS_FACTOR_SIGMA, rounded up to a value a person types; MIS_UNDECLARED of
 * the jobs declare nothing. The deadline follows what the submitter
 * believes: the declared time (else the typical one) x 1.2-3, plus 0-4 h.
 *
 * outpost-learned: a core/runtime table of the hub's size, taught by every
 * job that ran whole, asked once per step and program.
 */
#include "base/err.h"
#include "core/jobspec.h"
#include "sim/sim_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values a person types, in minutes: a declared run time is rounded up to one of them. */
static const int round_minutes[] = {5,   10,  15,  20,  30,  45,  60,   90,  120,
                                    180, 240, 360, 480, 720, 960, 1440, 2880};

static int32_t round_up(double s)
{
    size_t n = sizeof round_minutes / sizeof round_minutes[0];
    for (size_t i = 0; i < n; i++)
        if (s <= round_minutes[i] * 60.0) return round_minutes[i] * 60;
    return round_minutes[n - 1] * 60;
}

static void program_name(int program, char out[16])
{
    snprintf(out, 16, "p%03d", program);
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* How far the declared values are from the real ones, over every job: w->mis. */
static int measure(world *w)
{
    float *ratio = malloc((w->n_jobs ? w->n_jobs : 1) * sizeof *ratio);
    if (!ratio) return OP_ENOMEM;
    size_t n = 0, under = 0, over2 = 0, infeasible = 0;
    double sum = 0, sum2 = 0;
    for (size_t j = 0; j < w->n_jobs; j++) {
        const sim_job *s = &w->jobs[j];
        infeasible += s->work_s > s->deadline_s - s->arrival_s;
        if (s->est_s <= 0) continue;
        double r = (double)s->est_s / s->work_s, l = log(r);
        ratio[n++] = (float)r;
        under += r < 1;
        over2 += r >= 2;
        sum += l;
        sum2 += l * l;
    }
    qsort(ratio, n, sizeof *ratio, cmp_float);
    double nd = n ? (double)n : 1, mean = sum / nd;
    w->mis =
        (sim_misstatement){.undeclared = w->n_jobs ? 1.0 - (double)n / (double)w->n_jobs : 0,
                           .median_ratio = n ? ratio[n / 2] : 0,
                           .under = (double)under / nd,
                           .over2 = (double)over2 / nd,
                           .log_sigma = sqrt(fmax(sum2 / nd - mean * mean, 0)),
                           .infeasible = w->n_jobs ? (double)infeasible / (double)w->n_jobs : 0,
                           .programs = MIS_PROGRAMS};
    free(ratio);
    return OP_OK;
}

int sim__misstate_jobs(world *w)
{
    uint64_t rng = w->p->seed * 0x9E3779B97F4A7C15ULL + 7; /* a stream of its own */
    double typical[MIS_PROGRAMS], factor[MIS_PROGRAMS], cumulative[MIS_PROGRAMS], total = 0;
    for (int k = 0; k < MIS_PROGRAMS; k++) {
        typical[k] = clampd(90 * 60 * exp(0.8 * sim__normal(&rng)), 300, 8 * 3600);
        factor[k] = MIS_FACTOR_MEDIAN * exp(MIS_FACTOR_SIGMA * sim__normal(&rng));
        total += 1.0 / (k + 1);
        cumulative[k] = total;
    }
    for (size_t j = 0; j < w->n_jobs; j++) {
        sim_job *s = &w->jobs[j];
        double u = sim__uniform(&rng) * total;
        int lo = 0, hi = MIS_PROGRAMS - 1;
        while (lo < hi) { /* the first program whose cumulative weight reaches u */
            int mid = (lo + hi) / 2;
            if (cumulative[mid] >= u)
                hi = mid;
            else
                lo = mid + 1;
        }
        s->program = (uint16_t)lo;
        s->work_s =
            (int32_t)clampd(typical[lo] * exp(MIS_RUN_SIGMA * sim__normal(&rng)), 60, 16 * 3600);
        s->est_s = sim__uniform(&rng) < MIS_UNDECLARED ? 0 : round_up(typical[lo] * factor[lo]);
        double believed = s->est_s > 0 ? s->est_s : typical[lo];
        s->deadline_s = s->arrival_s + (int32_t)(believed * (1.2 + 1.8 * sim__uniform(&rng)) +
                                                 sim__uniform(&rng) * 4 * 3600);
    }
    return measure(w);
}

/* ---------- outpost-learned ---------- */

int sim__learned_init(strategy_state *st)
{
    st->rt = runtime_new(MIS_LEARN_CAPACITY);
    st->learned = calloc(MIS_PROGRAMS, sizeof *st->learned);
    st->keys = calloc(MIS_PROGRAMS, sizeof *st->keys);
    if (!st->rt || !st->learned || !st->keys) return OP_ENOMEM;
    for (int k = 0; k < MIS_PROGRAMS; k++) {
        char name[16];
        program_name(k, name);
        st->learned[k].stamp = INT32_MIN;
        st->keys[k][0] = runtime_key(RUNTIME_PROGRAM, "exec", name, 0, NULL);
        st->keys[k][1] = runtime_key(RUNTIME_RATIO, "exec", name, 0, NULL);
    }
    return OP_OK;
}

void sim__learned_clear(strategy_state *st)
{
    runtime_free(st->rt);
    free(st->learned);
    free(st->keys);
    st->rt = NULL;
    st->learned = NULL;
    st->keys = NULL;
}

void sim__learn(const world *w, strategy_state *st, int32_t jid, size_t site)
{
    const sim_job *s = &w->jobs[jid];
    if (!st->rt || st->run[jid].done_s != 0) return; /* a resumed run shows only its end */
    char name[16];
    program_name(s->program, name);
    runtime_obs o = {.kind = "exec",
                     .program = name,
                     .class_bit = sim_class_bit(w->cls[site]),
                     .declared_ms = ms(s->est_s),
                     .actual_ms = ms(s->work_s)};
    runtime_observe(st->rt, &o, NULL, NULL);
}

int sim__planned(const world *w, strategy_state *st, int32_t jid, int32_t now_s, int32_t *plan_s,
                 int32_t *least_s)
{
    const sim_job *s = &w->jobs[jid];
    int32_t plan = s->est_s, least = s->est_s, learned = 0;
    if (st->rt) {
        sim_learned *c = &st->learned[s->program];
        if (c->stamp != now_s) {
            c->stamp = now_s;
            c->have_learned = runtime_lookup(st->rt, st->keys[s->program][0], &c->learned) &&
                              c->learned.runs >= RUNTIME_MIN_RUNS;
            c->have_ratio = runtime_lookup(st->rt, st->keys[s->program][1], &c->ratio) &&
                            c->ratio.runs >= RUNTIME_MIN_RUNS;
        }
        runtime_estimate e;
        runtime_decide(c->have_learned ? &c->learned : NULL, RUNTIME_PROGRAM,
                       c->have_ratio ? &c->ratio : NULL, ms(s->est_s), &e);
        if (runtime_source_learned(e.source)) {
            learned = 1;
            plan = (int32_t)(e.plan_ms / 1000);
            least = (int32_t)(e.typical_ms / 1000);
            if (s->est_s > 0 && s->est_s < least) least = s->est_s;
        }
    }
    int32_t done = st->run[jid].done_s;
    *plan_s = plan - done < 60 ? 60 : plan - done;
    *least_s = least - done < 60 ? 60 : least - done;
    return learned;
}
