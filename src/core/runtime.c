/*
 * runtime: learned run times (runtime.h). The table is open addressing
 * without deletion: a slot, once taken, stays taken (an eviction replaces
 * its key), so a lookup may stop at the first empty slot of its window.
 */
#include "core/runtime.h"

#include "base/err.h"
#include "base/util.h"
#include "core/jobspec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA 0.05          /* the weight of one run once 20 are known */
#define CLIP_FIRST 3.0      /* ln 20: the residual bound while fewer than 3 runs give a scale */
#define CLIP_MIN 0.405      /* ln 1.5: the residual bound never goes below this */
#define CLIP_SCALES 3.0     /* residuals clipped at 3 mean absolute deviations (about 2.5 sigma) */
#define MAD_TO_SIGMA 1.2533 /* sigma of a normal over its mean absolute deviation */
#define MIN_CAPACITY 64
#define MAX_CAPACITY (1u << 22)

typedef struct entry {
    uint64_t key; /* 0: empty */
    uint64_t tick;
    runtime_stats stats;
    uint8_t level;
    char label[RUNTIME_LABEL_MAX];
} entry;

struct runtime {
    entry *slots;
    size_t mask; /* slots - 1, a power of two minus one */
    size_t used;
    uint64_t tick; /* observations so far: "recently" without a clock */
};

runtime *runtime_new(size_t capacity)
{
    size_t n = MIN_CAPACITY;
    while (n < capacity && n < MAX_CAPACITY)
        n *= 2;
    runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    rt->slots = calloc(n, sizeof *rt->slots);
    if (!rt->slots) {
        free(rt);
        return NULL;
    }
    rt->mask = n - 1;
    return rt;
}

void runtime_free(runtime *rt)
{
    if (!rt) return;
    free(rt->slots);
    free(rt);
}

size_t runtime_capacity(const runtime *rt)
{
    return rt->mask + 1;
}

size_t runtime_used(const runtime *rt)
{
    return rt->used;
}

/* ---------- keys ---------- */

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/*
 * FNV-1a over the level and the key's parts (each ended by a NUL, so
 * ("ab", "c") and ("a", "bc") differ), then splitmix's finaliser so that
 * the low bits that pick a slot depend on every byte. Never 0 (the empty
 * slot's mark).
 */
uint64_t runtime_key(int level, const char *kind, const char *program, unsigned class_bit,
                     const char *site)
{
    char lv = (char)('0' + level);
    uint64_t h = fnv(14695981039346656037ULL, &lv, 1);
    h = fnv(h, kind ? kind : "", strlen(kind ? kind : "") + 1);
    h = fnv(h, program ? program : "", strlen(program ? program : "") + 1);
    if (level == RUNTIME_CLASS) {
        char c = (char)class_bit;
        h = fnv(h, &c, 1);
    } else if (level == RUNTIME_SITE) {
        h = fnv(h, site ? site : "", strlen(site ? site : "") + 1);
    }
    uint64_t mixed = util_splitmix64(&h);
    return mixed ? mixed : 1;
}

static void make_label(char *out, int level, const char *kind, const char *program,
                       unsigned class_bit, const char *site)
{
    const char *prog = program && program[0] ? program : "";
    const char *sep = prog[0] ? " " : "";
    if (level == RUNTIME_CLASS)
        snprintf(out, RUNTIME_LABEL_MAX, "%s%s%s on %s", kind, sep, prog,
                 jobspec_class_name(class_bit));
    else if (level == RUNTIME_SITE)
        snprintf(out, RUNTIME_LABEL_MAX, "%s%s%s on site %s", kind, sep, prog, site);
    else if (level == RUNTIME_RATIO)
        snprintf(out, RUNTIME_LABEL_MAX, "%s%s%s actual/declared", kind, sep, prog);
    else
        snprintf(out, RUNTIME_LABEL_MAX, "%s%s%s", kind, sep, prog);
}

/* ---------- the table ---------- */

static entry *find(const runtime *rt, uint64_t key)
{
    for (size_t i = 0; i < RUNTIME_PROBE; i++) {
        entry *e = &rt->slots[(key + i) & rt->mask];
        if (e->key == key) return e;
        if (e->key == 0) return NULL;
    }
    return NULL;
}

/*
 * The entry of key, made when missing: the first empty slot of its window,
 * else the least recently learned one there (its key into *evicted).
 */
static entry *find_or_take(runtime *rt, uint64_t key, uint64_t *evicted)
{
    entry *oldest = NULL;
    *evicted = 0;
    for (size_t i = 0; i < RUNTIME_PROBE; i++) {
        entry *e = &rt->slots[(key + i) & rt->mask];
        if (e->key == key) return e;
        if (e->key == 0) {
            rt->used++;
            memset(e, 0, sizeof *e);
            e->key = key;
            return e;
        }
        if (!oldest || e->tick < oldest->tick) oldest = e;
    }
    *evicted = oldest->key;
    memset(oldest, 0, sizeof *oldest);
    oldest->key = key;
    return oldest;
}

int runtime_lookup(const runtime *rt, uint64_t key, runtime_stats *out)
{
    const entry *e = find(rt, key);
    if (!e) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    *out = e->stats;
    return 1;
}

/*
 * One value (a ln) into a key's statistics: a running mean of the first 20,
 * then an exponentially weighted one; the residual is clipped so that one
 * wild run moves the location by at most a few scales' worth of one weight.
 * The scale follows the clipped residuals' absolute values the same way.
 */
static void learn(runtime_stats *s, double x)
{
    if (s->runs == 0) {
        s->log_ms = x;
        s->spread = 0;
        s->runs = 1;
        return;
    }
    double w = 1.0 / ((double)s->runs + 1.0);
    if (w < ALPHA) w = ALPHA;
    double clip = s->runs < 3 ? CLIP_FIRST : fmax(CLIP_SCALES * s->spread, CLIP_MIN);
    double r = x - s->log_ms;
    if (r > clip) r = clip;
    if (r < -clip) r = -clip;
    s->log_ms += w * r;
    s->spread += w * (fabs(r) - s->spread);
    if (s->runs < UINT32_MAX) s->runs++;
}

static void learn_key(runtime *rt, int level, const runtime_obs *o, double x, uint64_t *evicted,
                      int *n_evicted)
{
    uint64_t key = runtime_key(level, o->kind, o->program, o->class_bit, o->site), gone;
    entry *e = find_or_take(rt, key, &gone);
    if (gone && evicted) evicted[(*n_evicted)++] = gone;
    if (!e->label[0]) {
        e->level = (uint8_t)level;
        make_label(e->label, level, o->kind, o->program, o->class_bit, o->site);
    }
    learn(&e->stats, x);
    e->tick = rt->tick;
}

static double clamp_ms(int64_t ms)
{
    double v = (double)ms;
    return v < RUNTIME_MIN_MS ? RUNTIME_MIN_MS : v > RUNTIME_MAX_MS ? RUNTIME_MAX_MS : v;
}

int runtime_observe(runtime *rt, const runtime_obs *obs, uint64_t *evicted, int *n_evicted)
{
    int dummy = 0;
    if (!n_evicted) n_evicted = &dummy;
    *n_evicted = 0;
    if (!obs->kind || !obs->kind[0] || strlen(obs->kind) >= RUNTIME_LABEL_MAX ||
        (obs->program && strlen(obs->program) >= RUNTIME_LABEL_MAX) ||
        (obs->site && strlen(obs->site) >= RUNTIME_LABEL_MAX) || obs->actual_ms <= 0 ||
        obs->declared_ms < 0)
        return OP_EINVAL;
    rt->tick++;
    double x = log(clamp_ms(obs->actual_ms));
    learn_key(rt, RUNTIME_PROGRAM, obs, x, evicted, n_evicted);
    if (obs->class_bit) learn_key(rt, RUNTIME_CLASS, obs, x, evicted, n_evicted);
    if (obs->site && obs->site[0]) learn_key(rt, RUNTIME_SITE, obs, x, evicted, n_evicted);
    if (obs->declared_ms > 0)
        learn_key(rt, RUNTIME_RATIO, obs, x - log(clamp_ms(obs->declared_ms)), evicted, n_evicted);
    return OP_OK;
}

/* ---------- deciding ---------- */

static int64_t ms_of(double ln_ms)
{
    double v = exp(ln_ms);
    return v < RUNTIME_MIN_MS ? RUNTIME_MIN_MS : v > RUNTIME_MAX_MS ? RUNTIME_MAX_MS : llround(v);
}

static void keep_declared(runtime_estimate *out, int source)
{
    out->source = source;
    out->typical_ms = out->plan_ms = out->declared_ms;
}

/* The chosen statistics as the estimate: median and the planning quantile. */
static void use_learned(runtime_estimate *out, int source, double median_ln, double sigma)
{
    out->source = source;
    out->sigma = sigma;
    out->typical_ms = ms_of(median_ln);
    out->plan_ms = ms_of(median_ln + RUNTIME_PLAN_Z * sigma);
}

void runtime_decide(const runtime_stats *learned, int learned_level, const runtime_stats *ratio,
                    int64_t declared_ms, runtime_estimate *out)
{
    memset(out, 0, sizeof *out);
    out->declared_ms = declared_ms > 0 ? declared_ms : 0;
    out->level = learned_level;
    int have_learned = learned && learned->runs >= RUNTIME_MIN_RUNS;
    int have_ratio = ratio && ratio->runs >= RUNTIME_MIN_RUNS && declared_ms > 0;
    if (!have_learned && !have_ratio) {
        keep_declared(out, declared_ms > 0 ? RUNTIME_DECLARED : RUNTIME_UNKNOWN);
        return;
    }
    if (declared_ms <= 0) {
        out->runs = learned->runs;
        use_learned(out, RUNTIME_LEARNED, learned->log_ms, MAD_TO_SIGMA * learned->spread);
        return;
    }
    /* the better-founded of the two: the smaller spread (the run time itself on a tie) */
    int by_ratio = have_ratio && (!have_learned || ratio->spread < learned->spread);
    const runtime_stats *s = by_ratio ? ratio : learned;
    double ln_declared = log(clamp_ms(declared_ms));
    double median_ln = by_ratio ? ln_declared + ratio->log_ms : learned->log_ms;
    out->runs = s->runs;
    out->level = by_ratio ? RUNTIME_RATIO : learned_level;
    if (fabs(ln_declared - median_ln) <= log(RUNTIME_POOR_FACTOR)) {
        out->sigma = MAD_TO_SIGMA * s->spread;
        keep_declared(out, RUNTIME_DECLARED_AGREES);
        return;
    }
    use_learned(out, by_ratio ? RUNTIME_CORRECTED : RUNTIME_LEARNED_OVER, median_ln,
                MAD_TO_SIGMA * s->spread);
}

void runtime_predict(const runtime *rt, const char *kind, const char *program, unsigned class_bit,
                     const char *site, int64_t declared_ms, runtime_estimate *out)
{
    runtime_stats learned, ratio;
    int level = -1;
    if (site && site[0] &&
        runtime_lookup(rt, runtime_key(RUNTIME_SITE, kind, program, 0, site), &learned) &&
        learned.runs >= RUNTIME_MIN_RUNS)
        level = RUNTIME_SITE;
    if (level < 0 && class_bit &&
        runtime_lookup(rt, runtime_key(RUNTIME_CLASS, kind, program, class_bit, NULL), &learned) &&
        learned.runs >= RUNTIME_MIN_RUNS)
        level = RUNTIME_CLASS;
    if (level < 0 &&
        runtime_lookup(rt, runtime_key(RUNTIME_PROGRAM, kind, program, 0, NULL), &learned) &&
        learned.runs >= RUNTIME_MIN_RUNS)
        level = RUNTIME_PROGRAM;
    int have_ratio = declared_ms > 0 &&
                     runtime_lookup(rt, runtime_key(RUNTIME_RATIO, kind, program, 0, NULL), &ratio);
    runtime_decide(level >= 0 ? &learned : NULL, level, have_ratio ? &ratio : NULL, declared_ms,
                   out);
}

/* ---------- words ---------- */

static void fmt_duration(char *buf, size_t len, int64_t ms)
{
    double s = (double)ms / 1000.0;
    if (s < 120)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 120 * 60)
        snprintf(buf, len, "%.0f min", s / 60);
    else
        snprintf(buf, len, "%.1f h", s / 3600);
}

static const char *class_plural(unsigned class_bit)
{
    return class_bit == CLASS_POD ? "pods" : class_bit == CLASS_CAR ? "cars" : "data centers";
}

void runtime_describe(const runtime_estimate *e, const char *kind, const char *program,
                      unsigned class_bit, const char *site, char *buf, size_t len)
{
    if (!len) return;
    buf[0] = '\0';
    if (e->source == RUNTIME_UNKNOWN || e->source == RUNTIME_DECLARED) return;
    char what[RUNTIME_LABEL_MAX + 32], where[RUNTIME_LABEL_MAX + 8] = "";
    char typical[32], plan[32], declared[32];
    if (program && program[0])
        snprintf(what, sizeof what, "%s", program);
    else
        snprintf(what, sizeof what, "%s jobs", kind);
    if (e->level == RUNTIME_SITE && site)
        snprintf(where, sizeof where, " on %s", site);
    else if (e->level == RUNTIME_CLASS && class_bit)
        snprintf(where, sizeof where, " on %s", class_plural(class_bit));
    fmt_duration(typical, sizeof typical, e->typical_ms);
    fmt_duration(plan, sizeof plan, e->plan_ms);
    fmt_duration(declared, sizeof declared, e->declared_ms);
    if (e->source == RUNTIME_DECLARED_AGREES)
        snprintf(buf, len, "declared run time %s agrees with %u runs of %s%s", declared, e->runs,
                 what, where);
    else if (e->source == RUNTIME_CORRECTED)
        snprintf(buf, len,
                 "run time %s (planned %s): declared %s x %.2f, the ratio learned from %u runs "
                 "of %s",
                 typical, plan, declared, (double)e->typical_ms / (double)e->declared_ms, e->runs,
                 what);
    else
        snprintf(buf, len, "run time %s (planned %s) learned from %u runs of %s%s%s%s", typical,
                 plan, e->runs, what, where, e->declared_ms ? "; declared " : "",
                 e->declared_ms ? declared : "");
}

/* ---------- rows ---------- */

static void row_from(const entry *e, runtime_row *out)
{
    out->key = e->key;
    out->level = e->level;
    snprintf(out->label, sizeof out->label, "%s", e->label);
    out->stats = e->stats;
    out->tick = e->tick;
}

int runtime_each(const runtime *rt, int (*fn)(void *ctx, const runtime_row *row), void *ctx)
{
    for (size_t i = 0; i <= rt->mask; i++) {
        if (!rt->slots[i].key) continue;
        runtime_row row;
        row_from(&rt->slots[i], &row);
        int rc = fn(ctx, &row);
        if (rc) return rc;
    }
    return 0;
}

int runtime_row_of(const runtime *rt, uint64_t key, runtime_row *out)
{
    const entry *e = find(rt, key);
    if (!e) return 0;
    row_from(e, out);
    return 1;
}

int runtime_load(runtime *rt, const runtime_row *row, uint64_t *evicted, int *n_evicted)
{
    int dummy = 0;
    if (!n_evicted) n_evicted = &dummy;
    *n_evicted = 0;
    const runtime_stats *s = &row->stats;
    if (!row->key || row->level < 0 || row->level >= RUNTIME_LEVELS || s->runs == 0 ||
        !isfinite(s->log_ms) || !isfinite(s->spread) || fabs(s->log_ms) > 40 || s->spread < 0 ||
        s->spread > 40)
        return OP_EINVAL;
    uint64_t gone;
    entry *e = find_or_take(rt, row->key, &gone);
    if (gone && evicted) {
        evicted[0] = gone;
        *n_evicted = 1;
    }
    e->level = (uint8_t)row->level;
    snprintf(e->label, sizeof e->label, "%s", row->label);
    e->stats = *s;
    e->tick = row->tick;
    if (row->tick > rt->tick) rt->tick = row->tick;
    return OP_OK;
}
