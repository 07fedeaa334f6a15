#include "core/sched.h"

#include "base/err.h"
#include "core/jobspec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHED_EXPLAIN_MAX 4096
/* At most this many filtered sites are named one by one; the rest are counted by reason. */
#define SCHED_NAMED_MAX 12

const int64_t sched_horizon_ms[SCHED_HORIZONS] = {15 * 60000LL,   30 * 60000LL,  3600000LL,
                                                  2 * 3600000LL,  4 * 3600000LL, 8 * 3600000LL,
                                                  12 * 3600000LL, 24 * 3600000LL};

/* The text of each reason, as the explanation names it. */
static const char *why_text[SCHED_WHY_COUNT] = {"lost",
                                                "class not allowed",
                                                "data residency",
                                                "refused or lost this job before",
                                                "too small",
                                                "busy",
                                                "power headroom",
                                                "forecast headroom",
                                                "leaves before the job can finish",
                                                "grid power dear now (deferrable)",
                                                "policy",
                                                "policy (not now)",
                                                "held",
                                                "deadline cannot be met"};

/* Reasons that may pass with time: the job stays queued when only these stand in the way. */
static int transient(int why)
{
    return why == SCHED_WHY_LOST || why == SCHED_WHY_BUSY || why == SCHED_WHY_POWER ||
           why == SCHED_WHY_FORECAST || why == SCHED_WHY_LEAVES || why == SCHED_WHY_DEARER ||
           why == SCHED_WHY_POLICY_LATER || why == SCHED_WHY_HELD;
}

typedef struct text_buf {
    char *data;
    size_t len;
} text_buf;

static void append(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(text_buf *b, const char *fmt, ...)
{
    if (b->len >= SCHED_EXPLAIN_MAX - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, SCHED_EXPLAIN_MAX - b->len, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
    if (b->len >= SCHED_EXPLAIN_MAX) b->len = SCHED_EXPLAIN_MAX - 1;
}

double sched_job_watts(const sched_site *site, const sched_job *job)
{
    return site->watts_per_core * job->cores;
}

int sched_horizon_for(int64_t duration_ms)
{
    for (int k = 0; k < SCHED_HORIZONS; k++)
        if (duration_ms <= sched_horizon_ms[k]) return k;
    return SCHED_HORIZONS - 1;
}

static int is_excluded(const sched_job *job, const char *id)
{
    for (const char *const *e = job->excluded; e && *e; e++)
        if (strcmp(*e, id) == 0) return 1;
    return 0;
}

static int has_slack(const sched_job *job, int64_t duration_ms)
{
    return job->deadline_ms > 0 &&
           job->deadline_ms - job->now_ms - duration_ms >= SCHED_DEFER_SLACK_MS;
}

/* The run time the job plans with on site s (its own when the caller knows it). */
static int64_t duration_on(const sched_site *s, const sched_job *job)
{
    int64_t d = job->duration_on ? job->duration_on(job->duration_ctx, s) : 0;
    return d > 0 ? d : job->duration_ms;
}

/* The detail text only when asked for: formatting numbers costs more than the whole check. */
#define DETAIL(...)                                                                                \
    do {                                                                                           \
        if (detail_len) snprintf(detail, detail_len, __VA_ARGS__);                                 \
    } while (0)

/* Permanent reasons first: a site filtered for one of these can never take the job. */
int sched_filter(const sched_site *s, const sched_job *job, char *detail, size_t detail_len)
{
    if (detail_len) detail[0] = '\0';
    if (!(s->class_bit & job->class_mask)) return SCHED_WHY_CLASS;
    if (job->site_private && (!job->origin || !s->id || strcmp(job->origin, s->id) != 0))
        return SCHED_WHY_RESIDENCY;
    if (s->cores < job->cores || s->memory_mb < job->memory_mb) {
        DETAIL(" (%d cores/%lld MB)", s->cores, (long long)s->memory_mb);
        return SCHED_WHY_TOO_SMALL;
    }
    if (s->id && is_excluded(job, s->id)) return SCHED_WHY_EXCLUDED;
    if (job->allowed) {
        char why[160] = "";
        int verdict = job->allowed(job->allowed_ctx, s, why, sizeof why);
        if (verdict != 1) {
            DETAIL(" (%.150s)", why);
            return verdict == 0 ? SCHED_WHY_POLICY : SCHED_WHY_POLICY_LATER;
        }
    }
    if (!s->alive) return SCHED_WHY_LOST;
    if (s->held && s->held[0]) {
        DETAIL(" (%.150s)", s->held);
        return SCHED_WHY_HELD;
    }
    if (s->free_cores < job->cores || s->free_memory_mb < job->memory_mb) {
        DETAIL(" (%d cores/%lld MB free)", s->free_cores, (long long)s->free_memory_mb);
        return SCHED_WHY_BUSY;
    }
    double need = sched_job_watts(s, job);
    if (s->headroom_watts < need) {
        DETAIL(" (%.0f W < %.0f W needed)", s->headroom_watts, need);
        return SCHED_WHY_POWER;
    }
    int64_t duration_ms = duration_on(s, job);
    if (s->stay_until_ms > 0 && job->now_ms + duration_ms > s->stay_until_ms) {
        DETAIL(" (in %lld s; the job needs %lld s)",
               (long long)((s->stay_until_ms - job->now_ms) / 1000),
               (long long)(duration_ms / 1000));
        return SCHED_WHY_LEAVES;
    }
    if (s->has_forecast && duration_ms > 0) {
        int k = sched_horizon_for(duration_ms);
        if (s->horizon_watts[k] < need) {
            DETAIL(" (%.0f W over the next %lld min < %.0f W)", (double)s->horizon_watts[k],
                   (long long)(sched_horizon_ms[k] / 60000), need);
            return SCHED_WHY_FORECAST;
        }
    }
    if (job->deferrable && s->grid_rank > SCHED_DEFER_RANK && has_slack(job, duration_ms)) {
        DETAIL(" (rank %.2f)", s->grid_rank);
        return SCHED_WHY_DEARER;
    }
    return SCHED_WHY_NONE;
}

static double near_term(const sched_site *s, const sched_job *job)
{
    return job->origin_region < 0 || job->origin_region == s->region ? 1.0 : 0.0;
}

static int holds_model(const sched_site *s, const sched_job *job)
{
    return job->holds && job->holds(job->holds_ctx, s) == 1;
}

double sched_score(const sched_site *s, const sched_job *job)
{
    double free_after = (double)(s->free_cores - job->cores) / (s->cores > 0 ? s->cores : 1);
    double need = sched_job_watts(s, job);
    double power_left =
        s->headroom_watts > 0 ? (s->headroom_watts - need) / s->headroom_watts : 0.0;
    double load = 0.7 * free_after + 0.3 * power_left;
    return 0.5 * load + 0.2 * (1.0 - s->grid_rank) + 0.2 * (1.0 - s->failure_rate) +
           0.1 * near_term(s, job) + (holds_model(s, job) ? SCHED_MODEL_BONUS : 0.0);
}

/* The deadline check shared by both placers: no start now finishes in time. */
static int deadline_missed(const sched_job *job)
{
    return job->deadline_ms > 0 && job->now_ms + job->duration_ms > job->deadline_ms;
}

/*
 * The reason for a job left unplaced: the filter that stopped the most sites
 * among those of the outcome's kind (permanent ones for SCHED_IMPOSSIBLE,
 * passing ones for SCHED_WAIT), ties to the lower code; fallback when no site
 * was filtered for such a reason.
 */
static sched_why dominant_why(const sched_decision *d, sched_why fallback)
{
    int want_transient = d->outcome == SCHED_WAIT, most = 0;
    sched_why best = fallback;
    for (int w = 0; w < SCHED_WHY_COUNT; w++)
        if (d->filtered[w] > most && transient(w) == want_transient) {
            most = d->filtered[w];
            best = (sched_why)w;
        }
    return best;
}

static void explain_filtered(text_buf *b, const sched_decision *d, const char *named, int n_named)
{
    int total = 0;
    for (int w = 0; w < SCHED_WHY_COUNT; w++)
        total += d->filtered[w];
    if (!total) return;
    append(b, "; filtered %d:", total);
    for (int w = 0; w < SCHED_WHY_COUNT; w++)
        if (d->filtered[w]) append(b, " %s=%d", why_text[w], d->filtered[w]);
    if (named) append(b, " [%s%s]", named, total > n_named ? "; ..." : "");
}

static void explain_winner(text_buf *b, const sched_site *w, const sched_job *job, double score)
{
    append(b,
           "placed on %s (score %.3f: free cores after %d/%d, power left %.0f/%.0f W, "
           "grid rank %.2f, failure rate %.2f%s%s%s)",
           w->id ? w->id : "?", score, w->free_cores - job->cores, w->cores,
           w->headroom_watts - sched_job_watts(w, job), w->headroom_watts, w->grid_rank,
           w->failure_rate, near_term(w, job) > 0 ? "" : ", outside the origin's region",
           holds_model(w, job) ? ", holds model " : "",
           holds_model(w, job) && job->model ? job->model : "");
}

/*
 * The first part of an explanation, from the decision's outcome and reason
 * code: the winner, the deadline, or why nothing among the n sites fits.
 */
static void explain_outcome(text_buf *b, const sched_decision *d, const sched_site *sites, size_t n,
                            const sched_job *job)
{
    if (d->why == SCHED_WHY_DEADLINE)
        append(b, "impossible: its %s (needs %lld s, %lld s left)", why_text[SCHED_WHY_DEADLINE],
               (long long)(job->duration_ms / 1000),
               (long long)((job->deadline_ms - job->now_ms) / 1000));
    else if (d->outcome == SCHED_PLACED)
        explain_winner(b, &sites[d->site_index], job, d->score);
    else if (d->outcome == SCHED_WAIT)
        append(b, "waiting: no site can take it now among %zu", n);
    else
        append(b, "impossible: no site in the fleet of %zu can ever run it", n);
}

/*
 * The scan: every site filtered (the first SCHED_NAMED_MAX named in named
 * with their reason and detail) or scored; the best score wins.
 */
static void scan_sites(const sched_site *sites, size_t n, const sched_job *job, sched_decision *out,
                       text_buf *named, int *n_named)
{
    int best = -1, could_later = 0;
    double best_score = -1e300;
    for (size_t i = 0; i < n; i++) {
        char detail[176];
        int why = sched_filter(&sites[i], job, detail, sizeof detail);
        out->looked_at++;
        if (why >= 0) {
            out->filtered[why]++;
            if (transient(why)) could_later = 1;
            if (*n_named < SCHED_NAMED_MAX) {
                append(named, "%s%s: %s%s", *n_named ? "; " : "", sites[i].id, why_text[why],
                       detail);
                (*n_named)++;
            }
            continue;
        }
        double sc = sched_score(&sites[i], job);
        if (sc > best_score) {
            best_score = sc;
            best = (int)i;
        }
    }
    out->site_index = best;
    out->score = best >= 0 ? best_score : 0.0;
    out->outcome = best >= 0 ? SCHED_PLACED : could_later ? SCHED_WAIT : SCHED_IMPOSSIBLE;
    out->why = best >= 0 ? SCHED_WHY_NONE : dominant_why(out, SCHED_WHY_NONE);
}

int sched_place(const sched_site *sites, size_t n, const sched_job *job, sched_decision *out)
{
    memset(out, 0, sizeof *out);
    out->site_index = -1;
    out->why = SCHED_WHY_NONE;
    text_buf b = {malloc(SCHED_EXPLAIN_MAX), 0};
    text_buf named = {malloc(SCHED_EXPLAIN_MAX), 0};
    if (!b.data || !named.data) {
        free(b.data);
        free(named.data);
        return OP_ENOMEM;
    }
    b.data[0] = named.data[0] = '\0';
    int n_named = 0;
    if (deadline_missed(job)) {
        out->outcome = SCHED_IMPOSSIBLE;
        out->why = SCHED_WHY_DEADLINE;
    } else {
        scan_sites(sites, n, job, out, &named, &n_named);
    }
    explain_outcome(&b, out, sites, n, job);
    if (out->outcome == SCHED_PLACED) append(&b, "; %zu candidate%s", n, n == 1 ? "" : "s");
    explain_filtered(&b, out, named.data, n_named);
    free(named.data);
    out->explanation = b.data;
    return OP_OK;
}

static void add_power(sched_site *site, double watts)
{
    site->headroom_watts += watts;
    if (site->has_forecast)
        for (int k = 0; k < SCHED_HORIZONS; k++)
            site->horizon_watts[k] += (float)watts;
}

void sched_reserve(sched_site *site, const sched_job *job)
{
    site->free_cores -= job->cores;
    site->free_memory_mb -= job->memory_mb;
    add_power(site, -sched_job_watts(site, job));
    site->running_jobs++;
}

void sched_release(sched_site *site, const sched_job *job)
{
    site->free_cores += job->cores;
    site->free_memory_mb += job->memory_mb;
    add_power(site, sched_job_watts(site, job));
    site->running_jobs--;
}

void sched_decision_clear(sched_decision *decision)
{
    free(decision->explanation);
    decision->explanation = NULL;
}

/* ---------- the fleet index ---------- */

/*
 * Sites are filed per (class, region) group and per horizon in buckets by
 * their power-limited free slots: min(free cores, forecast headroom over the
 * horizon / watts per core), 1..63 (63: 63 or more; 0: not filed). A 64-bit
 * mask per group and horizon says which buckets hold a site, so "a site with
 * at least c slots, the most first" is one count-leading-zeros.
 */
#define SLOT_MAX 63
#define NONE UINT32_MAX
#define N_CLASSES 3

typedef struct group {
    uint64_t mask[SCHED_HORIZONS];
    uint32_t head[SCHED_HORIZONS][SLOT_MAX + 1];
    double grid_rank;
    int used;
} group;

struct sched_fleet {
    sched_site *sites;
    size_t n;
    uint16_t *group_of;
    uint8_t (*bucket)[SCHED_HORIZONS];
    uint32_t (*next)[SCHED_HORIZONS];
    uint32_t (*prev)[SCHED_HORIZONS];
    group *groups; /* N_CLASSES x SCHED_MAX_REGIONS */
    int max_cores[N_CLASSES];
    uint16_t used[N_CLASSES][SCHED_MAX_REGIONS]; /* the groups that hold sites, per class */
    int n_used[N_CLASSES];
};

static int class_index(unsigned bit)
{
    return bit == CLASS_POD ? 0 : bit == CLASS_CAR ? 1 : 2;
}

size_t sched_fleet_bytes_per_site(void)
{
    return sizeof(uint16_t) + SCHED_HORIZONS * (sizeof(uint8_t) + 2 * sizeof(uint32_t));
}

static int slots_of(const sched_site *s, int k)
{
    if (!s->alive || s->free_cores <= 0 || (s->held && s->held[0])) return 0;
    double watts = s->has_forecast ? s->horizon_watts[k] : s->headroom_watts;
    if (s->headroom_watts < watts) watts = s->headroom_watts;
    int slots = s->free_cores;
    if (s->watts_per_core > 0) {
        double by_power = watts / s->watts_per_core + 1e-9;
        if (by_power < slots) slots = by_power < 0 ? 0 : (int)by_power;
    }
    return slots > SLOT_MAX ? SLOT_MAX : slots;
}

static void unlink_site(sched_fleet *f, uint32_t i, int k)
{
    int b = f->bucket[i][k];
    if (!b) return;
    group *g = &f->groups[f->group_of[i]];
    uint32_t p = f->prev[i][k], nx = f->next[i][k];
    if (p != NONE)
        f->next[p][k] = nx;
    else
        g->head[k][b] = nx;
    if (nx != NONE) f->prev[nx][k] = p;
    if (g->head[k][b] == NONE) g->mask[k] &= ~(1ULL << b);
    f->bucket[i][k] = 0;
}

static void link_site(sched_fleet *f, uint32_t i, int k, int b)
{
    f->bucket[i][k] = (uint8_t)b;
    if (!b) return;
    group *g = &f->groups[f->group_of[i]];
    f->prev[i][k] = NONE;
    f->next[i][k] = g->head[k][b];
    if (g->head[k][b] != NONE) f->prev[g->head[k][b]][k] = i;
    g->head[k][b] = i;
    g->mask[k] |= 1ULL << b;
}

void sched_fleet_update(sched_fleet *f, size_t i)
{
    const sched_site *s = &f->sites[i];
    f->groups[f->group_of[i]].grid_rank = s->grid_rank;
    for (int k = 0; k < SCHED_HORIZONS; k++) {
        int b = slots_of(s, k);
        if (b == f->bucket[i][k]) continue;
        unlink_site(f, (uint32_t)i, k);
        link_site(f, (uint32_t)i, k, b);
    }
}

sched_fleet *sched_fleet_new(sched_site *sites, size_t n)
{
    if (n >= NONE) return NULL;
    sched_fleet *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->sites = sites;
    f->n = n;
    size_t m = n ? n : 1;
    f->group_of = calloc(m, sizeof *f->group_of);
    f->bucket = calloc(m, sizeof *f->bucket);
    f->next = calloc(m, sizeof *f->next);
    f->prev = calloc(m, sizeof *f->prev);
    f->groups = calloc(N_CLASSES * SCHED_MAX_REGIONS, sizeof *f->groups);
    if (!f->group_of || !f->bucket || !f->next || !f->prev || !f->groups) {
        sched_fleet_free(f);
        return NULL;
    }
    for (int g = 0; g < N_CLASSES * SCHED_MAX_REGIONS; g++)
        for (int k = 0; k < SCHED_HORIZONS; k++)
            for (int b = 0; b <= SLOT_MAX; b++)
                f->groups[g].head[k][b] = NONE;
    for (size_t i = 0; i < n; i++) {
        int c = class_index(sites[i].class_bit);
        int r = sites[i].region >= 0 && sites[i].region < SCHED_MAX_REGIONS ? sites[i].region : 0;
        f->group_of[i] = (uint16_t)(c * SCHED_MAX_REGIONS + r);
        if (!f->groups[f->group_of[i]].used) f->used[c][f->n_used[c]++] = f->group_of[i];
        f->groups[f->group_of[i]].used = 1;
        if (sites[i].cores > f->max_cores[c]) f->max_cores[c] = sites[i].cores;
        sched_fleet_update(f, i);
    }
    return f;
}

void sched_fleet_free(sched_fleet *f)
{
    if (!f) return;
    free(f->group_of);
    free(f->bucket);
    free(f->next);
    free(f->prev);
    free(f->groups);
    free(f);
}

void sched_fleet_reserve(sched_fleet *f, size_t i, const sched_job *job)
{
    sched_reserve(&f->sites[i], job);
    sched_fleet_update(f, i);
}

void sched_fleet_release(sched_fleet *f, size_t i, const sched_job *job)
{
    sched_release(&f->sites[i], job);
    sched_fleet_update(f, i);
}

/* The highest bucket >= c holding a site, or 0. */
static int top_bucket(uint64_t mask, int c)
{
    uint64_t m = c >= 64 ? 0 : mask & ~((1ULL << c) - 1);
    return m ? 63 - __builtin_clzll(m) : 0;
}

/* The lowest bucket >= c holding a site, or 0. */
static int low_bucket(uint64_t mask, int c)
{
    uint64_t m = c >= 64 ? 0 : mask & ~((1ULL << c) - 1);
    return m ? __builtin_ctzll(m) : 0;
}

#define GROUPS_TRIED 3
#define CANDIDATES_PER_GROUP 2
#define PROBES_PER_GROUP SCHED_FLEET_PROBES

/* The origin alone (data residency): the one site that may take it, checked exactly. */
static void place_private(sched_fleet *f, const sched_job *job, sched_decision *out)
{
    if (job->origin_index < 0 || (size_t)job->origin_index >= f->n) {
        out->outcome = SCHED_IMPOSSIBLE;
        out->filtered[SCHED_WHY_RESIDENCY]++;
        out->why = SCHED_WHY_RESIDENCY;
        return;
    }
    char detail[8];
    int why = sched_filter(&f->sites[job->origin_index], job, detail, 0);
    out->looked_at = 1;
    if (why < 0) {
        out->outcome = SCHED_PLACED;
        out->site_index = job->origin_index;
        out->score = sched_score(&f->sites[job->origin_index], job);
        return;
    }
    out->filtered[why]++;
    out->outcome = transient(why) ? SCHED_WAIT : SCHED_IMPOSSIBLE;
    out->why = (sched_why)why;
}

/*
 * The groups that could hold the job in horizon k with c slots, best grid
 * signal and nearest to the origin first (an insertion sort: few groups).
 * Groups too dear for a deferring job are counted as filtered instead.
 * Returns how many went to cand; *could_ever says whether any allowed class
 * has a site big enough, *class_present whether any allowed class has sites.
 */
static int rank_groups(const sched_fleet *f, const sched_job *job, int k, int c, int *cand,
                       sched_decision *out, int *could_ever, int *class_present)
{
    int deferring = job->deferrable && has_slack(job, job->duration_ms);
    double cand_score[N_CLASSES * SCHED_MAX_REGIONS];
    int n_cand = 0;
    for (int ci = 0; ci < N_CLASSES; ci++) {
        if (!(job->class_mask & (1u << ci))) continue;
        if (f->max_cores[ci] >= job->cores) *could_ever = 1;
        if (f->n_used[ci]) *class_present = 1;
        for (int u = 0; u < f->n_used[ci]; u++) {
            int gi = f->used[ci][u], r = gi % SCHED_MAX_REGIONS;
            const group *g = &f->groups[gi];
            if (!top_bucket(g->mask[k], c)) continue;
            if (deferring && g->grid_rank > SCHED_DEFER_RANK) {
                out->filtered[SCHED_WHY_DEARER]++;
                continue;
            }
            double gs = 0.2 * (1.0 - g->grid_rank) +
                        0.1 * (job->origin_region < 0 || job->origin_region == r);
            int pos = n_cand++;
            while (pos > 0 && cand_score[pos - 1] < gs) {
                cand[pos] = cand[pos - 1];
                cand_score[pos] = cand_score[pos - 1];
                pos--;
            }
            cand[pos] = gi;
            cand_score[pos] = gs;
        }
    }
    return n_cand;
}

/*
 * One group's best-fit probes: sites from the tightest bucket up, checked
 * exactly, until CANDIDATES_PER_GROUP pass or PROBES_PER_GROUP were checked;
 * the passing ones are scored against *best_score. Returns how many passed.
 */
static int probe_group(const sched_fleet *f, const group *g, const sched_job *job, int k, int c,
                       sched_decision *out, double *best_score)
{
    int passing = 0, probes = 0;
    for (int b = low_bucket(g->mask[k], c);
         b && passing < CANDIDATES_PER_GROUP && probes < PROBES_PER_GROUP;
         b = b < SLOT_MAX ? low_bucket(g->mask[k], b + 1) : 0) {
        for (uint32_t i = g->head[k][b];
             i != NONE && passing < CANDIDATES_PER_GROUP && probes < PROBES_PER_GROUP;
             i = f->next[i][k]) {
            probes++;
            out->looked_at++;
            int why = sched_filter(&f->sites[i], job, NULL, 0);
            if (why >= 0) {
                out->filtered[why]++;
                continue;
            }
            passing++;
            double sc = sched_score(&f->sites[i], job);
            if (sc > *best_score || (sc == *best_score && (int)i < out->site_index)) {
                *best_score = sc;
                out->site_index = (int)i;
            }
        }
    }
    return passing;
}

/* A job that may run anywhere its classes allow: ranked groups, then probes in each. */
static void place_anywhere(sched_fleet *f, const sched_job *job, int k, int c, sched_decision *out)
{
    int cand[N_CLASSES * SCHED_MAX_REGIONS];
    int could_ever = 0, class_present = 0;
    int n_cand = rank_groups(f, job, k, c, cand, out, &could_ever, &class_present);
    /* the first GROUPS_TRIED groups with a site that passes give two candidates each */
    double best_score = -1e300;
    int groups_with_winner = 0;
    for (int t = 0; t < n_cand && groups_with_winner < GROUPS_TRIED; t++)
        if (probe_group(f, &f->groups[cand[t]], job, k, c, out, &best_score)) groups_with_winner++;
    if (out->site_index >= 0) {
        out->outcome = SCHED_PLACED;
        out->score = best_score;
    } else if (could_ever) {
        out->outcome = SCHED_WAIT;
        out->why = dominant_why(out, SCHED_WHY_BUSY);
    } else {
        out->outcome = SCHED_IMPOSSIBLE;
        out->why = dominant_why(out, class_present ? SCHED_WHY_TOO_SMALL : SCHED_WHY_CLASS);
    }
}

/* The index's explanation: the outcome (with the index's own wording) and the exact checks. */
static int explain_fleet(const sched_fleet *f, const sched_job *job, int k, sched_decision *out)
{
    text_buf b = {malloc(SCHED_EXPLAIN_MAX), 0};
    if (!b.data) return OP_ENOMEM;
    b.data[0] = '\0';
    if (out->outcome == SCHED_WAIT && !out->looked_at && !job->site_private)
        append(&b,
               "waiting: no site among %zu has %d free cores within its power over the next "
               "%lld min",
               f->n, job->cores, (long long)(sched_horizon_ms[k] / 60000));
    else if (out->outcome == SCHED_IMPOSSIBLE && job->site_private &&
             out->why != SCHED_WHY_DEADLINE)
        append(&b, "impossible: it must run on its origin %s, which can never take it",
               job->origin ? job->origin : "(unknown)");
    else
        explain_outcome(&b, out, f->sites, f->n, job);
    append(&b, "; %d site%s checked exactly", out->looked_at, out->looked_at == 1 ? "" : "s");
    explain_filtered(&b, out, NULL, 0);
    out->explanation = b.data;
    return OP_OK;
}

int sched_fleet_place(sched_fleet *f, const sched_job *job, int explain, sched_decision *out)
{
    memset(out, 0, sizeof *out);
    out->site_index = -1;
    out->why = SCHED_WHY_NONE;
    int k = job->duration_ms > 0 ? sched_horizon_for(job->duration_ms) : 0;
    int c = job->cores < 1 ? 1 : job->cores > SLOT_MAX ? SLOT_MAX : job->cores;
    if (deadline_missed(job)) {
        out->outcome = SCHED_IMPOSSIBLE;
        out->why = SCHED_WHY_DEADLINE;
    } else if (job->site_private) {
        place_private(f, job, out);
    } else {
        place_anywhere(f, job, k, c, out);
    }
    return explain ? explain_fleet(f, job, k, out) : OP_OK;
}

int sched_fleet_place_batch(sched_fleet *f, const sched_job *jobs, size_t n, sched_decision *out,
                            size_t *placed)
{
    uint64_t full[(8 * (SLOT_MAX + 1) * SCHED_HORIZONS * 2) / 64];
    memset(full, 0, sizeof full);
    *placed = 0;
    for (size_t j = 0; j < n; j++) {
        const sched_job *job = &jobs[j];
        int memo = !job->excluded && !job->allowed && !job->duration_on && !job->site_private &&
                   job->cores >= 1 && job->cores <= SLOT_MAX && !deadline_missed(job);
        size_t key = 0;
        if (memo) {
            int k = job->duration_ms > 0 ? sched_horizon_for(job->duration_ms) : 0;
            key = ((((size_t)(job->class_mask & 7) * (SLOT_MAX + 1) + (size_t)job->cores) *
                        SCHED_HORIZONS +
                    (size_t)k) *
                   2) +
                  (size_t)(job->deferrable && has_slack(job, job->duration_ms));
            if (full[key / 64] & (1ULL << (key % 64))) {
                memset(&out[j], 0, sizeof out[j]);
                out[j].outcome = SCHED_WAIT;
                out[j].site_index = -1;
                out[j].why = SCHED_WHY_BUSY;
                continue;
            }
        }
        int rc = sched_fleet_place(f, job, 0, &out[j]);
        if (rc != OP_OK) return rc;
        if (out[j].outcome == SCHED_PLACED) {
            sched_fleet_reserve(f, (size_t)out[j].site_index, job);
            (*placed)++;
        } else if (memo && out[j].outcome == SCHED_WAIT) {
            full[key / 64] |= 1ULL << (key % 64);
        }
    }
    return OP_OK;
}
