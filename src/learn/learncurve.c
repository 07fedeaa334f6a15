#include "learn/learncurve.h"

#include "learn/learn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX ((size_t)64 << 20) /* a bound on any text this module builds */

/* A growing text; once an append fails (memory, bound) it stays failed and yields NULL. */
typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *grown = cap <= TEXT_MAX ? realloc(t->buf, cap) : NULL;
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static char *finish(text *t)
{
    if (!t->failed && t->buf) return t->buf;
    free(t->buf);
    return NULL;
}

static int keeps(const learncurve *lc, const learncurve_filter *f, size_t i)
{
    return lc->period[i] >= f->min_period && lc->seen[i] >= f->min_seen &&
           (f->site < 0 || lc->site[i] == f->site);
}

size_t learncurve_mae(const learncurve *lc, const learncurve_filter *f, double *mae)
{
    double sum[LEARNCURVE_MAX_STRATEGIES] = {0};
    size_t n = 0;
    for (size_t i = 0; i < lc->n_trips; i++) {
        if (!keeps(lc, f, i)) continue;
        n++;
        for (size_t s = 0; s < lc->n_strategies && s < LEARNCURVE_MAX_STRATEGIES; s++)
            sum[s] += fabs(lc->pred[s][i] - lc->actual[i]);
    }
    for (size_t s = 0; s < lc->n_strategies && s < LEARNCURVE_MAX_STRATEGIES; s++)
        mae[s] = n ? sum[s] / (double)n : 0;
    return n;
}

void learncurve_by_period(const learncurve *lc, double *mae, size_t *count)
{
    size_t ns = lc->n_strategies;
    memset(mae, 0, lc->n_periods * ns * sizeof *mae);
    memset(count, 0, lc->n_periods * sizeof *count);
    for (size_t i = 0; i < lc->n_trips; i++) {
        size_t p = (size_t)lc->period[i];
        count[p]++;
        for (size_t s = 0; s < ns; s++)
            mae[p * ns + s] += fabs(lc->pred[s][i] - lc->actual[i]);
    }
    for (size_t p = 0; p < lc->n_periods; p++)
        for (size_t s = 0; s < ns && count[p]; s++)
            mae[p * ns + s] /= (double)count[p];
}

char *learncurve_csv(const learncurve *lc)
{
    size_t ns = lc->n_strategies;
    double *mae = malloc((lc->n_periods * ns + 1) * sizeof *mae);
    size_t *count = malloc((lc->n_periods + 1) * sizeof *count);
    text t = {0};
    if (!mae || !count) t.failed = 1;
    if (!t.failed) learncurve_by_period(lc, mae, count);
    add(&t, "period,start,trips");
    for (size_t s = 0; s < ns; s++)
        add(&t, ",mae_%s_s", lc->names[s]);
    add(&t, "\n");
    for (size_t p = 0; p < lc->n_periods && !t.failed; p++) {
        int y, m, d;
        learn_civil(lc->period_start_s[p], &y, &m, &d, NULL, NULL);
        add(&t, "%zu,%04d-%02d-%02d,%zu", p, y, m, d, count[p]);
        for (size_t s = 0; s < ns; s++)
            add(&t, count[p] ? ",%.1f" : ",", mae[p * ns + s]);
        add(&t, "\n");
    }
    free(mae);
    free(count);
    return finish(&t);
}

/* Trip-weighted MAE of periods (p - smooth, p] for strategy s; NAN when they hold no trip. */
static double smoothed(const double *mae, const size_t *count, size_t ns, size_t p, size_t s,
                       int smooth)
{
    double sum = 0;
    size_t n = 0;
    for (size_t q = p + 1 > (size_t)smooth ? p + 1 - (size_t)smooth : 0; q <= p; q++) {
        sum += mae[q * ns + s] * (double)count[q];
        n += count[q];
    }
    return n ? sum / (double)n : NAN;
}

static const char *const colors[] = {"#555555", "#1f78b4", "#a6cee3", "#b2df8a",
                                     "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a"};

/* The axes, the grid and the lines of the plot into t. */
static void plot(text *t, const learncurve *lc, const double *mae, const size_t *count,
                 unsigned mask, int smooth, double top)
{
    const double L = 70, T = 40, W = 760, H = 360;
    size_t ns = lc->n_strategies, np = lc->n_periods;
    add(t, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#999'/>\n", L, T,
        W, H);
    for (int g = 0; g <= 5; g++) {
        double v = top * g / 5, y = T + H - H * v / top;
        add(t, "<line x1='%.0f' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#eee'/>", L, y, L + W, y);
        add(t, "<text x='%.0f' y='%.1f' text-anchor='end'>%.0f s</text>\n", L - 4, y + 4, v);
    }
    size_t step = np > 20 ? (np + 9) / 10 : 1;
    for (size_t p = 0; p < np; p += step)
        add(t, "<text x='%.1f' y='%.0f' text-anchor='middle'>%zu</text>\n",
            L + W * (double)p / (double)(np > 1 ? np - 1 : 1), T + H + 16, p);
    for (size_t s = 0; s < ns; s++) {
        if (!(mask & (1u << s))) continue;
        add(t, "<path fill='none' stroke='%s' stroke-width='1.6' d='",
            colors[s % (sizeof colors / sizeof colors[0])]);
        int pen_down = 0;
        for (size_t p = 0; p < np; p++) {
            double v = smoothed(mae, count, ns, p, s, smooth);
            if (isnan(v)) continue;
            add(t, "%s%.1f,%.1f", pen_down ? " L" : "M",
                L + W * (double)p / (double)(np > 1 ? np - 1 : 1), T + H - H * fmin(v, top) / top);
            pen_down = 1;
        }
        add(t, "'/>\n");
    }
}

char *learncurve_svg(const learncurve *lc, const char *title, unsigned plot_mask, int smooth)
{
    size_t ns = lc->n_strategies, np = lc->n_periods;
    double *mae = malloc((np * ns + 1) * sizeof *mae);
    size_t *count = malloc((np + 1) * sizeof *count);
    text t = {0};
    if (!mae || !count || np == 0) t.failed = 1;
    if (smooth < 1) smooth = 1;
    double top = 1;
    if (!t.failed) {
        learncurve_by_period(lc, mae, count);
        for (size_t p = 0; p < np; p++)
            for (size_t s = 0; s < ns; s++) {
                double v = smoothed(mae, count, ns, p, s, smooth);
                if ((plot_mask & (1u << s)) && !isnan(v) && v > top) top = v;
            }
        top = ceil(top * 1.05 / 50) * 50;
    }
    add(&t,
        "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='470' "
        "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' "
        "fill='white'/>\n<text x='70' y='24' font-weight='bold'>%s</text>\n",
        title);
    if (!t.failed) plot(&t, lc, mae, count, plot_mask, smooth, top);
    add(&t, "<text x='450' y='432' text-anchor='middle'>period</text>\n");
    double x = 70;
    for (size_t s = 0; s < ns; s++) {
        if (!(plot_mask & (1u << s))) continue;
        add(&t,
            "<line x1='%.0f' y1='452' x2='%.0f' y2='452' stroke='%s' stroke-width='3'/>"
            "<text x='%.0f' y='456'>%s</text>\n",
            x, x + 18, colors[s % (sizeof colors / sizeof colors[0])], x + 22, lc->names[s]);
        x += 30 + 7.0 * (double)strlen(lc->names[s]);
    }
    add(&t, "</svg>\n");
    free(mae);
    free(count);
    return finish(&t);
}
