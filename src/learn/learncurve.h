/*
 * learncurve: the figures of a prequential replay, from its predictions. A
 * replay predicts every trip with each strategy before any model learns from
 * it; this module owns nothing but the arithmetic over those predictions
 * (MAE per period, per site, after a warm-up or after a site has seen enough
 * exceptions) and the CSV and SVG texts of the learning curve. No I/O: the
 * caller writes the texts.
 */
#ifndef OUTPOST_LEARNCURVE_H
#define OUTPOST_LEARNCURVE_H

#include <stddef.h>
#include <stdint.h>

enum { LEARNCURVE_MAX_STRATEGIES = 16 };

/* What a replay predicted; every array is the caller's and is only read. */
typedef struct learncurve {
    size_t n_trips, n_strategies, n_periods, n_sites;
    const int *period;             /* [n_trips]: 0 .. n_periods - 1, non-decreasing */
    const int *site;               /* [n_trips]: 0 .. n_sites - 1 */
    const size_t *seen;            /* [n_trips]: trips of its site learned from before it */
    const double *actual;          /* [n_trips]: seconds */
    const double *const *pred;     /* [n_strategies][n_trips]: seconds */
    const char *const *names;      /* [n_strategies] */
    const int64_t *period_start_s; /* [n_periods]: for the CSV's dates (data clock) */
} learncurve;

/* Which trips a figure counts: from period min_period on, whose site had seen at least
 * min_seen, of one site (or all with site < 0). */
typedef struct learncurve_filter {
    int min_period;
    size_t min_seen;
    int site;
} learncurve_filter;

/*
 * MAE of every strategy over the trips the filter keeps, into mae[n_strategies];
 * returns the number of trips (0: every mae is 0).
 */
size_t learncurve_mae(const learncurve *lc, const learncurve_filter *f, double *mae);

/* MAE per period and strategy into mae[n_periods * n_strategies], trips into count[n_periods]. */
void learncurve_by_period(const learncurve *lc, double *mae, size_t *count);

/*
 * The CSV text (malloc'd, the caller frees): period, start date, trips, then
 * one MAE column per strategy. NULL when out of memory.
 */
char *learncurve_csv(const learncurve *lc);

/*
 * The learning curve as an SVG (malloc'd): MAE per period, one line per
 * strategy whose bit is set in plot_mask, each point the trip-weighted MAE of
 * the last `smooth` periods (1: none). NULL when out of memory.
 */
char *learncurve_svg(const learncurve *lc, const char *title, unsigned plot_mask, int smooth);

#endif
