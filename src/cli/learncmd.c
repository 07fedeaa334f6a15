/*
 * `outpost learn replay`: the prequential replay (docs/learning.md). Trips are
 * taken in time order, period by period; in each period every strategy first
 * predicts the period's trips, then the models learn from them, so every
 * figure is on trips no model had seen. Strategies:
 *
 *   static            distance over one fixed speed (learn_static_fit)
 *   local             each site's own model: a learner retrained on the site's
 *                     rows at each update (or continued: --rebuild 0), answering
 *                     through a champion it replaces only when better on
 *                     held-out rows
 *   pooled-ensemble   the sites' champions averaged (weighted by rows learned):
 *                     models travel, rows do not
 *   pooled-cyclic     one shared model that visits the sites in turn, each
 *                     continuing it on its own new rows: models travel, rows do not
 *   outpost-*         per site, the pooled model (the cyclic one continued on
 *                     the site's rows first) only where it beats the site's own
 *                     champion on the site's most recent held-out rows
 *   central           one model retrained on everyone's rows each period: the
 *                     upper bound that needs the raw rows in one place
 * The options and their defaults are in learnopts.c.
 */
#include "cli/learncmd.h"

#include "cli/cli_int.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "io/learndata.h"
#include "io/xgb.h"
#include "learn/learn.h"
#include "learn/learncurve.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_STATIC, S_LOCAL, S_ENSEMBLE, S_CYCLIC, S_OUT_ENSEMBLE, S_OUT_CYCLIC, S_CENTRAL, S_COUNT };
static const char *const strategy_names[S_COUNT] = {
    "static",           "local",          "pooled-ensemble", "pooled-cyclic",
    "outpost-ensemble", "outpost-cyclic", "central"};
#define F LEARN_FEATURES

typedef cli_learn_opts opts;

/* A learner and the champion that answers for it (NULL: the static estimate answers). */
typedef struct line {
    xgb_model *learner, *champion;
    size_t learned, champion_rows;
    learn_window window; /* champion vs learner on rows neither had learned */
    int adoptions;
    int promote; /* the learner won: its next version becomes the champion */
} line;

typedef struct replay {
    const opts *o;
    learndata d;
    size_t n, n_periods;
    float *x, *y;          /* features and targets of every trip */
    int *period, *site;    /* per trip */
    size_t *seen;          /* per trip: its site's trips learned from before its period */
    double *actual;        /* per trip */
    double *pred[S_COUNT]; /* per strategy, per trip */
    int64_t *period_start;
    size_t **site_trips, *site_n, *cursor; /* each site's trips in order; seen so far */
    size_t *all;                           /* 0 .. n - 1: the central model's rows */
    line *local, central;
    xgb_model *shared;
    xgb_model **personal; /* per site: the shared model continued on the site's rows */
    double *pers;         /* per trip: what its site's personal (else shared) model answered */
    size_t *shared_learned;
    learn_window *win_ens, *win_cyc;
    int *use_ens, *use_cyc;
    size_t *pooled_ens_trips, *pooled_cyc_trips; /* trips answered by a pooled model */
    double bytes_ensemble, bytes_cyclic;         /* model bytes that travelled */
    float *bx, *by, *bout, *bout2;               /* scratch, n rows each */
    double *ens_sum, *ens_weight;                /* per trip of a period */
} replay;

/* Margins of model m for the rows idx[0..k) into out (through the scratch matrix). */
static int predict_rows(replay *r, const xgb_model *m, const size_t *idx, size_t k, float *out)
{
    for (size_t j = 0; j < k; j++)
        memcpy(r->bx + j * F, r->x + idx[j] * F, F * sizeof(float));
    return xgb_predict(m, r->bx, k, F, out);
}

/* Trains *m (or continues it) on rows idx[0..k); adds the artifact's size to *bytes if asked. */
static int learn_rows(replay *r, xgb_model **m, const size_t *idx, size_t k, int rounds,
                      double *bytes)
{
    for (size_t j = 0; j < k; j++) {
        memcpy(r->bx + j * F, r->x + idx[j] * F, F * sizeof(float));
        r->by[j] = r->y[idx[j]];
    }
    xgb_params p = r->o->xgb;
    p.rounds = rounds;
    int rc = *m ? xgb_continue(*m, &p, r->bx, k, F, r->by, rounds)
                : xgb_train(&p, r->bx, k, F, r->by, m);
    if (rc == OP_OK && bytes) {
        xgb_artifact a;
        rc = xgb_save(*m, &a);
        *bytes += (double)a.len;
        xgb_artifact_clear(&a);
    }
    return rc;
}

/*
 * Updates a learner once `batch` new rows have come (idx[0..n_seen) are the
 * rows seen, in order): continued training on the new rows, or on the last
 * `window` rows when that is more. Each row is learned once with window 0.
 */
static int line_learn(replay *r, line *l, const size_t *idx, size_t n_seen)
{
    size_t fresh = n_seen - l->learned;
    if (fresh == 0 || fresh < r->o->batch) return OP_OK;
    size_t take = fresh > r->o->window ? fresh : r->o->window;
    if (take > n_seen) take = n_seen;
    int rounds = r->o->xgb.rounds;
    if (r->o->rebuild) {
        xgb_free(l->learner);
        l->learner = NULL;
        rounds = r->o->rebuild;
    }
    int rc = learn_rows(r, &l->learner, idx + n_seen - take, take, rounds, NULL);
    if (rc == OP_OK) l->learned = n_seen;
    return rc;
}

/*
 * The champion/challenger rule on the line's held-out rows (each predicted by
 * both before either learned it). A winning learner is promoted after it has
 * learned the period's rows too (line_promote): the evidence is about the
 * learner's line, and its latest version is the one to answer with.
 */
static void line_gate(line *l, const learn_rule *rule)
{
    if (!l->learner) return;
    double own, candidate;
    learn_window_mae(&l->window, &own, &candidate);
    l->promote = learn_decide(rule, 1, own, candidate, l->window.size).adopt;
}

/* *out becomes a copy of m (through its bytes, as it would travel); *bytes counts them. */
static int model_copy(const xgb_model *m, xgb_model **out, double *bytes)
{
    xgb_artifact art;
    *out = NULL;
    int rc = xgb_save(m, &art);
    if (rc == OP_OK) rc = xgb_load(art.bytes, art.len, art.sha256, out);
    if (rc == OP_OK && bytes) *bytes += (double)art.len;
    xgb_artifact_clear(&art);
    return rc;
}

/* The champion becomes a copy of the learner when the gate said so; *bytes counts its size. */
static int line_promote(line *l, double *bytes)
{
    if (!l->promote) return OP_OK;
    xgb_model *copy = NULL;
    int rc = model_copy(l->learner, &copy, bytes); /* a new champion joins the pool */
    if (rc != OP_OK) return rc;
    xgb_free(l->champion);
    l->champion = copy;
    l->champion_rows = l->learned;
    l->adoptions++;
    l->promote = 0;
    l->window.size = l->window.next = 0;
    return OP_OK;
}

/* Seconds from a model's margins for trips idx (the static estimate where m is NULL). */
static int answer(replay *r, const xgb_model *m, const size_t *idx, size_t k, double *out)
{
    if (!m) {
        for (size_t j = 0; j < k; j++)
            out[j] = r->d.trips[idx[j]].planned_s;
        return OP_OK;
    }
    int rc = predict_rows(r, m, idx, k, r->bout);
    for (size_t j = 0; rc == OP_OK && j < k; j++)
        out[j] = learn_from_margin(r->o->objective, r->d.trips[idx[j]].planned_s, r->bout[j]);
    return rc;
}

/* The pooled ensemble for the period's trips a..b: the champions' margins, weighted by rows. */
static int ensemble(replay *r, size_t a, size_t b)
{
    size_t k = b - a;
    memset(r->ens_sum, 0, k * sizeof *r->ens_sum);
    memset(r->ens_weight, 0, k * sizeof *r->ens_weight);
    for (size_t s = 0; s < r->d.n_sites; s++) {
        const line *l = &r->local[s];
        if (!l->champion) continue;
        int rc = xgb_predict(l->champion, r->x + a * F, k, F, r->bout2);
        if (rc != OP_OK) return rc;
        for (size_t j = 0; j < k; j++) {
            r->ens_sum[j] += (double)l->champion_rows * r->bout2[j];
            r->ens_weight[j] += (double)l->champion_rows;
        }
    }
    for (size_t j = 0; j < k; j++) {
        const learn_trip *t = &r->d.trips[a + j];
        r->pred[S_ENSEMBLE][a + j] =
            r->ens_weight[j] > 0
                ? learn_from_margin(r->o->objective, t->planned_s, r->ens_sum[j] / r->ens_weight[j])
                : t->planned_s;
    }
    return OP_OK;
}

/* Every strategy's answer for one site's trips idx[0..k) of this period. */
static int predict_site(replay *r, int s, const size_t *idx, size_t k, double *learner,
                        double *central_learner)
{
    line *l = &r->local[s];
    double *tmp = malloc(k * sizeof *tmp);
    if (!tmp) return OP_ENOMEM;
    int rc = answer(r, l->champion, idx, k, tmp);
    for (size_t j = 0; rc == OP_OK && j < k; j++)
        r->pred[S_LOCAL][idx[j]] = tmp[j];
    if (rc == OP_OK) rc = answer(r, l->learner, idx, k, learner);
    if (rc == OP_OK) rc = answer(r, r->shared, idx, k, tmp);
    for (size_t j = 0; rc == OP_OK && j < k; j++)
        r->pred[S_CYCLIC][idx[j]] = r->pers[idx[j]] = tmp[j];
    if (rc == OP_OK && r->personal[s]) rc = answer(r, r->personal[s], idx, k, tmp);
    for (size_t j = 0; rc == OP_OK && r->personal[s] && j < k; j++)
        r->pers[idx[j]] = tmp[j];
    if (rc == OP_OK) rc = answer(r, r->central.champion, idx, k, tmp);
    for (size_t j = 0; rc == OP_OK && j < k; j++)
        r->pred[S_CENTRAL][idx[j]] = tmp[j];
    if (rc == OP_OK) rc = answer(r, r->central.learner, idx, k, central_learner);
    free(tmp);
    return rc;
}

/*
 * One site's trips of the period: answers, then the held-out records (every
 * answer was made before any model learned the row), then Outpost's choice
 * per trip from the choice made at the end of the previous period.
 */
static int site_period(replay *r, int s, const size_t *idx, size_t k)
{
    double *learner = malloc(2 * k * sizeof *learner);
    if (!learner) return OP_ENOMEM;
    double *central_learner = learner + k;
    int rc = predict_site(r, s, idx, k, learner, central_learner);
    for (size_t j = 0; rc == OP_OK && j < k; j++) {
        size_t i = idx[j];
        double act = r->actual[i], own = r->pred[S_LOCAL][i];
        r->pred[S_STATIC][i] = r->d.trips[i].planned_s;
        r->seen[i] = r->cursor[s];
        r->pred[S_OUT_ENSEMBLE][i] = r->use_ens[s] ? r->pred[S_ENSEMBLE][i] : own;
        r->pred[S_OUT_CYCLIC][i] = r->use_cyc[s] ? r->pers[i] : own;
        r->pooled_ens_trips[s] += r->use_ens[s] != 0;
        r->pooled_cyc_trips[s] += r->use_cyc[s] != 0;
        learn_window_push(&r->local[s].window, fabs(own - act), fabs(learner[j] - act));
        learn_window_push(&r->central.window, fabs(r->pred[S_CENTRAL][i] - act),
                          fabs(central_learner[j] - act));
        learn_window_push(&r->win_ens[s], fabs(own - act), fabs(r->pred[S_ENSEMBLE][i] - act));
        learn_window_push(&r->win_cyc[s], fabs(own - act), fabs(r->pers[i] - act));
    }
    free(learner);
    return rc;
}

/*
 * Whether a site answers with the pooled model next period: the champion and
 * challenger rule with the model in use as the champion, so a site switches
 * (either way) only when the other is better by the margin, and does not flip
 * on noise.
 */
static int use_pooled(const learn_rule *rule, const learn_window *w, int in_use, int sticky)
{
    double own, pooled;
    learn_window_mae(w, &own, &pooled);
    if (in_use && sticky) return !learn_decide(rule, 1, pooled, own, w->size).adopt;
    return learn_decide(rule, 1, own, pooled, w->size).adopt;
}

/* Where each site answers from next period: the pooled model only where it is better. */
static void choose_pooled(replay *r)
{
    for (size_t s = 0; s < r->d.n_sites; s++) {
        r->use_ens[s] = use_pooled(&r->o->rule, &r->win_ens[s], r->use_ens[s], r->o->sticky);
        r->use_cyc[s] = use_pooled(&r->o->rule, &r->win_cyc[s], r->use_cyc[s], r->o->sticky);
    }
}

/*
 * Each site continues the round's pooled model on its own rows before it
 * weighs it against its own model: the trees other sites fitted on their
 * rows apply to this site's trips too (a site's rows cannot teach a tree
 * to stay out of trips unlike them: in NYC every row of a site has the same
 * pickup borough), and a few trees on the site's rows correct that bias.
 * The model travels to the site (counted); the rows stay.
 */
static int personalise(replay *r)
{
    int rc = OP_OK;
    for (size_t s = 0; rc == OP_OK && s < r->d.n_sites; s++) {
        xgb_free(r->personal[s]);
        r->personal[s] = NULL;
        if (r->o->personal == 0 || r->cursor[s] == 0) continue;
        rc = model_copy(r->shared, &r->personal[s], &r->bytes_cyclic);
        if (rc == OP_OK)
            rc = learn_rows(r, &r->personal[s], r->site_trips[s], r->cursor[s], r->o->personal,
                            NULL);
    }
    return rc;
}

/*
 * Pooling by training that visits the sites in turn: once enough new rows
 * have come, a fresh shared model makes `passes` rounds of the sites (each
 * round starting at another site); each site continues it on its own rows
 * with trees in proportion to its share of the rows (a count, not a row),
 * and passes it on. About as many trees as the central model, each fitted
 * where the rows are; the model's bytes travel, the rows stay.
 */
static int cyclic(replay *r, int p)
{
    size_t ns = r->d.n_sites, seen = 0, fresh = 0;
    for (size_t s = 0; s < ns; s++) {
        seen += r->cursor[s];
        fresh += r->cursor[s] - r->shared_learned[s];
    }
    if (fresh == 0 || fresh < r->o->batch) return OP_OK;
    const int passes = r->o->passes;
    xgb_model *model = NULL;
    int rc = OP_OK;
    for (int pass = 0; rc == OP_OK && pass < passes; pass++)
        for (size_t v = 0; rc == OP_OK && v < ns; v++) {
            size_t s = (v + (size_t)p + (size_t)pass) % ns;
            if (r->cursor[s] == 0) continue;
            /* the site's trees over the whole round, spread evenly over the passes */
            long total = lround((double)r->cursor[s] / (double)seen * r->o->central_rounds);
            int rounds = (int)((pass + 1) * total / passes - pass * total / passes);
            if (rounds < 1) continue;
            rc = learn_rows(r, &model, r->site_trips[s], r->cursor[s], rounds, &r->bytes_cyclic);
        }
    if (rc != OP_OK) {
        xgb_free(model);
        return rc;
    }
    xgb_free(r->shared);
    r->shared = model;
    memcpy(r->shared_learned, r->cursor, ns * sizeof *r->cursor);
    return personalise(r);
}

/* After the answers: the sites learn, the shared model visits them, the central model learns. */
static int learn_period(replay *r, int p, size_t b)
{
    int rc = OP_OK;
    size_t ns = r->d.n_sites;
    for (size_t s = 0; rc == OP_OK && s < ns; s++)
        rc = line_learn(r, &r->local[s], r->site_trips[s], r->cursor[s]);
    if (rc == OP_OK) rc = cyclic(r, p);
    if (rc == OP_OK && b - r->central.learned >= r->o->batch) {
        /* the upper bound: everyone's rows in one place, a fresh model on all of them */
        xgb_params central = r->o->xgb;
        central.rounds = r->o->central_rounds;
        for (size_t j = 0; j < b; j++)
            r->by[j] = r->y[j];
        xgb_model *fresh = NULL;
        rc = xgb_train(&central, r->x, b, F, r->by, &fresh);
        if (rc == OP_OK) {
            xgb_free(r->central.learner);
            r->central.learner = fresh;
            r->central.learned = b;
        }
    }
    return rc;
}

/* One period, trips a..b: predict everything, record, gate, learn. */
static int run_period(replay *r, int p, size_t a, size_t b)
{
    int rc = ensemble(r, a, b);
    size_t *idx = malloc((b - a) * sizeof *idx);
    if (!idx) return OP_ENOMEM;
    for (size_t s = 0; rc == OP_OK && s < r->d.n_sites; s++) {
        size_t k = 0, c = r->cursor[s];
        while (c + k < r->site_n[s] && r->period[r->site_trips[s][c + k]] == p)
            idx[k] = r->site_trips[s][c + k], k++;
        if (k) rc = site_period(r, (int)s, idx, k);
    }
    free(idx);
    for (size_t s = 0; rc == OP_OK && s < r->d.n_sites; s++) {
        while (r->cursor[s] < r->site_n[s] && r->period[r->site_trips[s][r->cursor[s]]] == p)
            r->cursor[s]++;
        line_gate(&r->local[s], &r->o->rule);
    }
    line_gate(&r->central, &r->o->rule);
    if (rc == OP_OK) choose_pooled(r);
    if (rc == OP_OK) rc = learn_period(r, p, b);
    for (size_t s = 0; rc == OP_OK && s < r->d.n_sites; s++)
        rc = line_promote(&r->local[s], &r->bytes_ensemble);
    if (rc == OP_OK) rc = line_promote(&r->central, NULL);
    return rc;
}

/* calloc for `count` items, counted against *failed. */
static void *alloc(size_t count, size_t size, int *failed)
{
    void *p = calloc(count ? count : 1, size);
    if (!p) *failed = 1;
    return p;
}

/* Periods start at midnight of the first trip's day, on a Monday when they are whole weeks. */
static int64_t period_origin(int64_t first_s, int64_t period_s)
{
    int64_t day = first_s >= 0 ? first_s / 86400 : -((-first_s + 86399) / 86400);
    int weekday;
    learn_civil(day * 86400, NULL, NULL, NULL, NULL, &weekday);
    if (period_s % (7 * 86400) == 0) day -= weekday;
    return day * 86400;
}

static int alloc_arrays(replay *r)
{
    int failed = 0;
    size_t n = r->n, ns = r->d.n_sites;
    r->x = alloc(n * F, sizeof *r->x, &failed);
    r->y = alloc(n, sizeof *r->y, &failed);
    r->period = alloc(n, sizeof *r->period, &failed);
    r->site = alloc(n, sizeof *r->site, &failed);
    r->seen = alloc(n, sizeof *r->seen, &failed);
    r->actual = alloc(n, sizeof *r->actual, &failed);
    for (int s = 0; s < S_COUNT; s++)
        r->pred[s] = alloc(n, sizeof(double), &failed);
    r->all = alloc(n, sizeof *r->all, &failed);
    r->site_trips = alloc(ns, sizeof *r->site_trips, &failed);
    r->site_n = alloc(ns, sizeof *r->site_n, &failed);
    r->cursor = alloc(ns, sizeof *r->cursor, &failed);
    r->local = alloc(ns, sizeof *r->local, &failed);
    r->shared_learned = alloc(ns, sizeof *r->shared_learned, &failed);
    r->personal = alloc(ns, sizeof *r->personal, &failed);
    r->pers = alloc(n, sizeof *r->pers, &failed);
    r->win_ens = alloc(ns, sizeof *r->win_ens, &failed);
    r->win_cyc = alloc(ns, sizeof *r->win_cyc, &failed);
    r->use_ens = alloc(ns, sizeof *r->use_ens, &failed);
    r->use_cyc = alloc(ns, sizeof *r->use_cyc, &failed);
    r->pooled_ens_trips = alloc(ns, sizeof(size_t), &failed);
    r->pooled_cyc_trips = alloc(ns, sizeof(size_t), &failed);
    r->bx = alloc(n * F, sizeof *r->bx, &failed);
    r->by = alloc(n, sizeof *r->by, &failed);
    r->bout = alloc(n, sizeof *r->bout, &failed);
    r->bout2 = alloc(n, sizeof *r->bout2, &failed);
    r->ens_sum = alloc(n, sizeof *r->ens_sum, &failed);
    r->ens_weight = alloc(n, sizeof *r->ens_weight, &failed);
    return failed ? OP_ENOMEM : OP_OK;
}

/* Per-trip arrays, each site's trip list, and the held-out windows' capacity. */
static int index_trips(replay *r, int64_t origin)
{
    int failed = 0;
    for (size_t i = 0; i < r->n; i++) {
        const learn_trip *t = &r->d.trips[i];
        learn_features(t, r->x + i * F);
        r->y[i] = learn_target(r->o->objective, t->planned_s, t->actual_s);
        r->period[i] = (int)((t->start_s - origin) / r->o->period_s);
        r->site[i] = t->site;
        r->actual[i] = t->actual_s;
        r->all[i] = i;
        r->site_n[t->site]++;
    }
    r->n_periods = r->n ? (size_t)r->period[r->n - 1] + 1 : 0;
    r->period_start = alloc(r->n_periods, sizeof *r->period_start, &failed);
    for (size_t p = 0; !failed && p < r->n_periods; p++)
        r->period_start[p] = origin + (int64_t)p * r->o->period_s;
    for (size_t s = 0; s < r->d.n_sites; s++) {
        r->site_trips[s] = alloc(r->site_n[s], sizeof **r->site_trips, &failed);
        r->local[s].window.capacity = r->win_ens[s].capacity = r->win_cyc[s].capacity =
            r->o->holdout;
    }
    r->central.window.capacity = r->o->holdout;
    if (failed) return OP_ENOMEM;
    memset(r->cursor, 0, r->d.n_sites * sizeof *r->cursor);
    for (size_t i = 0; i < r->n; i++)
        r->site_trips[r->site[i]][r->cursor[r->site[i]]++] = i;
    memset(r->cursor, 0, r->d.n_sites * sizeof *r->cursor);
    return OP_OK;
}

/* Loads the data, fits the static speed, cuts the replay into periods. */
static int setup(replay *r, const opts *o, double *speed_mph, char *err, size_t err_len)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    size_t min_trips = o->kind == LEARNDATA_CHICAGO ? o->min_site_trips : 0;
    int rc = learndata_load(&r->d, o->kind, o->dir, min_trips, err, err_len);
    if (rc != OP_OK) return rc;
    if (r->d.n < o->calibrate || r->d.n_sites == 0) {
        snprintf(err, err_len,
                 "%s: %zu usable trips, fewer than the %zu the static estimate is "
                 "fitted on",
                 o->dir, r->d.n, o->calibrate);
        return OP_EINVAL;
    }
    rc = learn_static_fit(r->d.trips, r->d.n, o->calibrate, speed_mph);
    if (rc != OP_OK) return rc;
    learn_static_apply(r->d.trips, r->d.n, *speed_mph);
    int64_t origin = period_origin(r->d.trips[0].start_s, o->period_s);
    r->n = r->d.n;
    if (o->max_periods)
        for (size_t i = 0; i < r->d.n; i++)
            if ((r->d.trips[i].start_s - origin) / o->period_s >= o->max_periods) {
                r->n = i;
                break;
            }
    rc = alloc_arrays(r);
    if (rc == OP_OK) rc = index_trips(r, origin);
    return rc;
}

static void free_line(line *l)
{
    xgb_free(l->learner);
    xgb_free(l->champion);
}

static void teardown(replay *r)
{
    for (size_t s = 0; r->site_trips && s < r->d.n_sites; s++)
        free(r->site_trips[s]);
    for (size_t s = 0; r->local && s < r->d.n_sites; s++)
        free_line(&r->local[s]);
    free_line(&r->central);
    xgb_free(r->shared);
    for (size_t s = 0; r->personal && s < r->d.n_sites; s++)
        xgb_free(r->personal[s]);
    void *arrays[] = {r->personal,
                      r->pers,
                      r->x,
                      r->y,
                      r->period,
                      r->site,
                      r->seen,
                      r->actual,
                      r->all,
                      r->site_trips,
                      r->site_n,
                      r->cursor,
                      r->local,
                      r->shared_learned,
                      r->win_ens,
                      r->win_cyc,
                      r->use_ens,
                      r->use_cyc,
                      r->pooled_ens_trips,
                      r->pooled_cyc_trips,
                      r->bx,
                      r->by,
                      r->bout,
                      r->bout2,
                      r->ens_sum,
                      r->ens_weight,
                      r->period_start};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
    for (int s = 0; s < S_COUNT; s++)
        free(r->pred[s]);
    learndata_clear(&r->d);
}

static learncurve curve_of(const replay *r)
{
    learncurve lc = {r->n,           S_COUNT,        r->n_periods,
                     r->d.n_sites,   r->period,      r->site,
                     r->seen,        r->actual,      (const double *const *)r->pred,
                     strategy_names, r->period_start};
    return lc;
}

static double pct_below(double mae, double base)
{
    return base > 0 ? 100 * (base - mae) / base : 0;
}

/* Per-period MAE, in blocks of print_every periods (trip-weighted). */
static int print_periods(const replay *r, const learncurve *lc)
{
    double *mae = malloc(r->n_periods * S_COUNT * sizeof *mae);
    size_t *count = malloc(r->n_periods * sizeof *count);
    if (!mae || !count) {
        free(mae);
        free(count);
        return OP_ENOMEM;
    }
    learncurve_by_period(lc, mae, count);
    int every = r->o->print_every;
    printf("%-9s %-10s %6s %8s %8s %8s %8s %8s %8s %8s   (MAE, s)\n", "period", "start", "trips",
           "static", "local", "pool-ens", "pool-cyc", "out-ens", "out-cyc", "central");
    for (size_t p = 0; p < r->n_periods; p += (size_t)every) {
        double sum[S_COUNT] = {0};
        size_t n = 0, last = p + (size_t)every - 1 < r->n_periods ? p + (size_t)every - 1
                                                                  : r->n_periods - 1;
        for (size_t q = p; q <= last; q++) {
            n += count[q];
            for (int s = 0; s < S_COUNT; s++)
                sum[s] += mae[q * S_COUNT + s] * (double)count[q];
        }
        int y, m, d;
        learn_civil(r->period_start[p], &y, &m, &d, NULL, NULL);
        char label[24];
        snprintf(label, sizeof label, every > 1 ? "%zu-%zu" : "%zu", p, last);
        printf("%-9s %04d-%02d-%02d %6zu", label, y, m, d, n);
        for (int s = 0; s < S_COUNT; s++)
            if (n)
                printf(" %8.0f", sum[s] / (double)n);
            else
                printf(" %8s", "-");
        printf("\n");
    }
    free(mae);
    free(count);
    return OP_OK;
}

/* MAE over the trips after warm-up of sites with fewer (few = 1) or at least (0) few_trips. */
static size_t group_mae(const replay *r, int few, double *mae)
{
    double sum[S_COUNT] = {0};
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->period[i] < r->o->warmup || (r->site_n[r->site[i]] < r->o->few_trips) != few)
            continue;
        n++;
        for (int s = 0; s < S_COUNT; s++)
            sum[s] += fabs(r->pred[s][i] - r->actual[i]);
    }
    for (int s = 0; s < S_COUNT; s++)
        mae[s] = n ? sum[s] / (double)n : 0;
    return n;
}

static void print_sites(const replay *r, const learncurve *lc, int chosen)
{
    printf("\nper site (periods >= %d; MAE, s):\n%-32s %6s %8s %8s %8s %8s  %9s %7s %7s\n",
           r->o->warmup, "site", "trips", "static", "local",
           chosen == S_OUT_ENSEMBLE ? "out-ens" : "out-cyc", "central", "local<st", "pooled",
           "adopts");
    for (size_t s = 0; s < r->d.n_sites; s++) {
        learncurve_filter f = {r->o->warmup, 0, (int)s};
        double mae[S_COUNT];
        size_t n = learncurve_mae(lc, &f, mae);
        size_t pooled = chosen == S_OUT_ENSEMBLE ? r->pooled_ens_trips[s] : r->pooled_cyc_trips[s];
        printf("%-32.32s %6zu %8.0f %8.0f %8.0f %8.0f  %8.1f%% %6.0f%% %7d\n", r->d.sites[s], n,
               mae[S_STATIC], mae[S_LOCAL], mae[chosen], mae[S_CENTRAL],
               pct_below(mae[S_LOCAL], mae[S_STATIC]),
               r->site_n[s] ? 100.0 * (double)pooled / (double)r->site_n[s] : 0,
               r->local[s].adoptions);
    }
    for (int few = 1; few >= 0; few--) {
        double mae[S_COUNT];
        size_t n = group_mae(r, few, mae);
        printf("sites with %s %zu trips: %zu trips; local %.0f s, %s %.0f s: pooling gains "
               "%.1f%% over local-only\n",
               few ? "fewer than" : "at least", r->o->few_trips, n, mae[S_LOCAL],
               strategy_names[chosen], mae[chosen], pct_below(mae[chosen], mae[S_LOCAL]));
    }
}

/* The final table and the goals, met or not. */
static void print_summary(const replay *r, const learncurve *lc, double speed_mph, double wall_s)
{
    learncurve_filter after = {r->o->warmup, 0, -1};
    double mae[S_COUNT];
    size_t n = learncurve_mae(lc, &after, mae);
    int chosen = mae[S_OUT_CYCLIC] <= mae[S_OUT_ENSEMBLE] ? S_OUT_CYCLIC : S_OUT_ENSEMBLE;
    printf("\noverall, periods >= %d (%zu trips; static = distance at %.2f mph):\n"
           "%-18s %8s %13s %15s\n",
           r->o->warmup, n, speed_mph, "strategy", "MAE s", "below static", "gap to central");
    for (int s = 0; s < S_COUNT; s++)
        printf("%-18s %8.1f %12.1f%% %14.1f%%%s\n", strategy_names[s], mae[s],
               pct_below(mae[s], mae[S_STATIC]), -pct_below(mae[s], mae[S_CENTRAL]),
               s == chosen ? "   <- Outpost (the pooling with the lower MAE in this run)" : "");
    print_sites(r, lc, chosen);
    learncurve_filter seen = {0, r->o->seen_goal, -1};
    double ms[S_COUNT];
    size_t n_seen = learncurve_mae(lc, &seen, ms);
    double below = pct_below(ms[chosen], ms[S_STATIC]);
    double gap = -pct_below(mae[chosen], mae[S_CENTRAL]);
    printf("\ngoal: MAE >= 20%% below static once a site has seen %zu exceptions: %zu trips, "
           "static %.0f s, local %.0f s (%.1f%% below), %s %.0f s (%.1f%% below): %s\n",
           r->o->seen_goal, n_seen, ms[S_STATIC], ms[S_LOCAL], pct_below(ms[S_LOCAL], ms[S_STATIC]),
           strategy_names[chosen], ms[chosen], below, n_seen && below >= 20 ? "MET" : "NOT MET");
    printf("goal: Outpost within 5%% of central: %s %.1f s vs central %.1f s, gap %.1f%%: %s\n",
           strategy_names[chosen], mae[chosen], mae[S_CENTRAL], gap, gap <= 5 ? "MET" : "NOT MET");
    printf("rows that left a site: 0 (central needs all %zu); model bytes that travelled: "
           "ensemble %.1f MB, cyclic %.1f MB\n",
           r->n, r->bytes_ensemble / 1e6, r->bytes_cyclic / 1e6);
    printf("RESULT %s below_static=%.1f gap_central=%.1f pooling_gain_few=", strategy_names[chosen],
           pct_below(mae[chosen], mae[S_STATIC]), gap);
    double g[S_COUNT];
    size_t nf = group_mae(r, 1, g);
    double gain_few = pct_below(g[chosen], g[S_LOCAL]);
    size_t nm = group_mae(r, 0, g);
    printf("%.1f pooling_gain_many=%.1f", nf ? gain_few : NAN,
           nm ? pct_below(g[chosen], g[S_LOCAL]) : NAN);
    printf(" wall_s=%.1f\n", wall_s);
}

static int write_outputs(const replay *r, const learncurve *lc, const char *data_name)
{
    const char *dir = r->o->out;
    if (os_mkdir_p(dir) != OP_OK) {
        fprintf(stderr, "learn: cannot create %s\n", dir);
        return OP_EIO;
    }
    char title[160], path[1024];
    snprintf(title, sizeof title, "%s taxi trips: MAE per %s (s), predicted before learning",
             data_name, r->o->period_s % (7 * 86400) == 0 ? "week" : "day");
    char *csv = learncurve_csv(lc);
    /* the SVG shows static, local, the chosen-or-not pooled lines' Outpost and central */
    unsigned mask = (1u << S_STATIC) | (1u << S_LOCAL) | (1u << S_OUT_ENSEMBLE) |
                    (1u << S_OUT_CYCLIC) | (1u << S_CENTRAL);
    char *svg = learncurve_svg(lc, title, mask, r->o->print_every);
    int rc = csv && svg ? OP_OK : OP_ENOMEM;
    if (rc == OP_OK && util_fmt(path, sizeof path, "%s/learn_%s.csv", dir, data_name) == OP_OK)
        rc = os_write_file_atomic(path, csv, strlen(csv), 0644);
    if (rc == OP_OK && util_fmt(path, sizeof path, "%s/learn_%s.svg", dir, data_name) == OP_OK)
        rc = os_write_file_atomic(path, svg, strlen(svg), 0644);
    if (rc != OP_OK) fprintf(stderr, "learn: cannot write into %s: %s\n", dir, op_strerror(rc));
    free(csv);
    free(svg);
    return rc;
}

static int replay_main(int argc, char **argv)
{
    opts o;
    int code = cli__learn_replay_args(argc, argv, &o);
    if (code >= 0) return code;
    const char *data_name = o.kind == LEARNDATA_CHICAGO ? "chicago" : "nyc";
    double t0 = (double)os_mono_us() / 1e6, speed = 0;
    char err[768] = "";
    replay r;
    int rc = setup(&r, &o, &speed, err, sizeof err);
    if (rc != OP_OK) {
        fprintf(stderr, "learn: %s\n", err[0] ? err : op_strerror(rc));
        teardown(&r);
        return rc == OP_ENOTFOUND ? EXIT_NOT_FOUND : EXIT_FAILURE_RUNTIME;
    }
    printf("outpost learn replay --data %s: %zu trips (%zu rows read, %zu dropped), %zu sites, "
           "%zu periods of %.0f day(s); objective %s, a site's model %s %d trees each >= %zu new "
           "rows, depth %d, eta %.3g; pooled: %d passes, %d trees of the site's own, %s\n",
           data_name, r.n, r.d.rows, r.d.dropped, r.d.n_sites, r.n_periods,
           (double)o.period_s / 86400, o.objective == LEARN_OBJ_LOG ? "log" : "abs",
           o.rebuild ? "retrained with" : "continued by", o.rebuild ? o.rebuild : o.xgb.rounds,
           o.batch, o.xgb.max_depth, o.xgb.eta, o.passes, o.personal,
           o.sticky ? "sticky choice" : "choice anew each period");
    size_t a = 0;
    for (size_t p = 0; rc == OP_OK && p < r.n_periods; p++) {
        size_t b = a;
        while (b < r.n && r.period[b] == (int)p)
            b++;
        if (b > a) rc = run_period(&r, (int)p, a, b);
        a = b;
    }
    learncurve lc = curve_of(&r);
    if (rc == OP_OK && !o.quiet) rc = print_periods(&r, &lc);
    if (rc == OP_OK) print_summary(&r, &lc, speed, (double)os_mono_us() / 1e6 - t0);
    if (rc == OP_OK && o.out) rc = write_outputs(&r, &lc, data_name);
    if (rc != OP_OK)
        fprintf(stderr, "learn: the replay failed: %s (%s)\n", op_strerror(rc), xgb_last_error());
    teardown(&r);
    return rc == OP_OK ? EXIT_OK : EXIT_FAILURE_RUNTIME;
}

int learncmd_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        cli__learn_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "fit") == 0) return learnfit_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "predict") == 0) return learnpredict_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") != 0) {
        fprintf(stderr, "learn: unknown subcommand '%s' (outpost learn --help)\n", argv[1]);
        return EXIT_USAGE;
    }
    log_set_level(LOG_LEVEL_WARN);
    return replay_main(argc - 1, argv + 1);
}
