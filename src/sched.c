#include "sched.h"

#include "err.h"
#include "jobspec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHED_EXPLAIN_MAX 4096
/* At most this many filtered sites are named one by one; the rest are counted by reason. */
#define SCHED_NAMED_MAX 12

enum {
    WHY_LOST,
    WHY_CLASS,
    WHY_RESIDENCY,
    WHY_EXCLUDED,
    WHY_TOO_SMALL,
    WHY_BUSY,
    WHY_POWER,
    WHY_POLICY,
    WHY_POLICY_LATER,
    WHY_COUNT
};
static const char *why_text[WHY_COUNT] = {"lost",
                                          "class not allowed",
                                          "data residency",
                                          "refused or lost this job before",
                                          "too small",
                                          "busy",
                                          "power headroom",
                                          "policy",
                                          "policy (not now)"};

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

static int is_excluded(const sched_job *job, const char *id)
{
    for (const char *const *e = job->excluded; e && *e; e++)
        if (strcmp(*e, id) == 0) return 1;
    return 0;
}

/* Permanent reasons first: a site filtered for one of these can never take the job. */
static int filter(const sched_site *s, const sched_job *job, char *detail, size_t detail_len)
{
    detail[0] = '\0';
    if (!(s->class_bit & job->class_mask)) return WHY_CLASS;
    if (job->site_private && (!job->origin || strcmp(job->origin, s->id) != 0))
        return WHY_RESIDENCY;
    if (s->cores < job->cores || s->memory_mb < job->memory_mb) {
        snprintf(detail, detail_len, " (%d cores/%lld MB)", s->cores, (long long)s->memory_mb);
        return WHY_TOO_SMALL;
    }
    if (is_excluded(job, s->id)) return WHY_EXCLUDED;
    if (job->allowed) {
        char why[160] = "";
        int verdict = job->allowed(job->allowed_ctx, s, why, sizeof why);
        if (verdict != 1) {
            snprintf(detail, detail_len, " (%.150s)", why);
            return verdict == 0 ? WHY_POLICY : WHY_POLICY_LATER;
        }
    }
    if (!s->alive) return WHY_LOST;
    if (s->free_cores < job->cores || s->free_memory_mb < job->memory_mb) {
        snprintf(detail, detail_len, " (%d cores/%lld MB free)", s->free_cores,
                 (long long)s->free_memory_mb);
        return WHY_BUSY;
    }
    double need = sched_job_watts(s, job);
    if (s->headroom_watts < need) {
        snprintf(detail, detail_len, " (%.0f W < %.0f W needed)", s->headroom_watts, need);
        return WHY_POWER;
    }
    return -1;
}

/*
 * Least loaded with headroom: the fraction of cores still free after
 * placing the job (weight 0.7) plus the fraction of power headroom left
 * (weight 0.3). Higher is better.
 */
static double score(const sched_site *s, const sched_job *job)
{
    double free_after = (double)(s->free_cores - job->cores) / (s->cores > 0 ? s->cores : 1);
    double need = sched_job_watts(s, job);
    double power_left =
        s->headroom_watts > 0 ? (s->headroom_watts - need) / s->headroom_watts : 0.0;
    return 0.7 * free_after + 0.3 * power_left;
}

int sched_place(const sched_site *sites, size_t n, const sched_job *job, sched_decision *out)
{
    text_buf b = {malloc(SCHED_EXPLAIN_MAX), 0};
    if (!b.data) return OP_ENOMEM;
    b.data[0] = '\0';
    int counts[WHY_COUNT] = {0};
    int best = -1, could_later = 0, named = 0;
    double best_score = -1e300;
    text_buf filtered = {malloc(SCHED_EXPLAIN_MAX), 0};
    if (!filtered.data) {
        free(b.data);
        return OP_ENOMEM;
    }
    filtered.data[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char detail[176];
        int why = filter(&sites[i], job, detail, sizeof detail);
        if (why >= 0) {
            counts[why]++;
            /* Lost, busy and power are transient: the job may fit there later. */
            if (why == WHY_LOST || why == WHY_BUSY || why == WHY_POWER || why == WHY_POLICY_LATER)
                could_later = 1;
            if (named < SCHED_NAMED_MAX) {
                append(&filtered, "%s%s: %s%s", named ? "; " : "", sites[i].id, why_text[why],
                       detail);
                named++;
            }
            continue;
        }
        double sc = score(&sites[i], job);
        if (sc > best_score) {
            best_score = sc;
            best = (int)i;
        }
    }
    out->site_index = best;
    out->score = best >= 0 ? best_score : 0.0;
    if (best >= 0) {
        const sched_site *w = &sites[best];
        out->outcome = SCHED_PLACED;
        append(&b,
               "placed on %s (score %.3f = 0.7 x free cores after %d/%d + 0.3 x power left "
               "%.0f/%.0f W); %zu candidates",
               w->id, best_score, w->free_cores - job->cores, w->cores,
               w->headroom_watts - sched_job_watts(w, job), w->headroom_watts, n);
    } else if (could_later) {
        out->outcome = SCHED_WAIT;
        append(&b, "waiting: no site can take it now among %zu", n);
    } else {
        out->outcome = SCHED_IMPOSSIBLE;
        append(&b, "impossible: no site in the fleet of %zu can ever run it", n);
    }
    int total_filtered = 0;
    for (int w = 0; w < WHY_COUNT; w++)
        total_filtered += counts[w];
    if (total_filtered) {
        append(&b, "; filtered %d:", total_filtered);
        for (int w = 0; w < WHY_COUNT; w++)
            if (counts[w]) append(&b, " %s=%d", why_text[w], counts[w]);
        append(&b, " [%s%s]", filtered.data, total_filtered > named ? "; ..." : "");
    }
    free(filtered.data);
    out->explanation = b.data;
    return OP_OK;
}

void sched_reserve(sched_site *site, const sched_job *job)
{
    site->free_cores -= job->cores;
    site->free_memory_mb -= job->memory_mb;
    site->headroom_watts -= sched_job_watts(site, job);
    site->running_jobs++;
}

void sched_decision_clear(sched_decision *decision)
{
    free(decision->explanation);
    decision->explanation = NULL;
}
