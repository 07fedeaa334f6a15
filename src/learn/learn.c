#include "learn/learn.h"

#include "base/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float known(int v)
{
    return v < 0 ? NAN : (float)v;
}

void learn_features(const learn_trip *t, float row[LEARN_FEATURES])
{
    row[LEARN_F_DISTANCE] = (float)t->distance_miles;
    row[LEARN_F_HOUR] = known(t->hour);
    row[LEARN_F_WEEKDAY] = known(t->weekday);
    row[LEARN_F_PICKUP_AREA] = known(t->pickup_area);
    row[LEARN_F_DROPOFF_AREA] = known(t->dropoff_area);
    row[LEARN_F_PICKUP_BOROUGH] = known(t->pickup_borough);
    row[LEARN_F_DROPOFF_BOROUGH] = known(t->dropoff_borough);
    row[LEARN_F_MONTH] = known(t->month);
    row[LEARN_F_YEAR] = known(t->year);
}

/* Days from 1970-01-01 to a civil date: the era/year-of-era arithmetic on a
 * calendar whose years start in March, so the leap day is the year's last. */
int64_t learn_days_from_civil(int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* The inverse of learn_days_from_civil, on the same March-based calendar. */
void learn_civil(int64_t t_s, int *year, int *month, int *day, int *hour, int *weekday)
{
    int64_t days = t_s >= 0 ? t_s / 86400 : -((-t_s + 86399) / 86400);
    int64_t secs = t_s - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t day_of_era = z - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t mp = (5 * day_of_year + 2) / 153;
    int64_t d = day_of_year - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (year) *year = (int)(year_of_era + era * 400 + (m <= 2));
    if (month) *month = (int)m;
    if (day) *day = (int)d;
    if (hour) *hour = (int)(secs / 3600);
    /* 1970-01-01 was a Thursday (3 with Monday = 0) */
    if (weekday) *weekday = (int)(((days % 7) + 7 + 3) % 7);
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return 0;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

int learn_parse_time(const char *text, int64_t *out_s)
{
    const char *p = text;
    int y, mo, d, h, mi, s;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || *p++ != ' ' || !digits(&p, 2, &h) || *p++ != ':' ||
        !digits(&p, 2, &mi) || *p++ != ':' || !digits(&p, 2, &s) || *p)
        return OP_EINVAL;
    static const int days_in[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > days_in[mo - 1] || h > 23 || mi > 59 || s > 59)
        return OP_EINVAL;
    *out_s = learn_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return OP_OK;
}

/* 02:00 on the n-th Sunday (1-based) of a month, as a wall time read as UTC. */
static int64_t nth_sunday_2am(int year, int month, int n)
{
    int64_t first = learn_days_from_civil(year, month, 1);
    int weekday; /* 0 = Monday */
    learn_civil(first * 86400, NULL, NULL, NULL, NULL, &weekday);
    int64_t first_sunday = first + (6 - weekday);
    return (first_sunday + 7 * (n - 1)) * 86400 + 2 * 3600;
}

int64_t learn_us_elapsed(int64_t from_wall_s, int64_t to_wall_s)
{
    int64_t elapsed = to_wall_s - from_wall_s;
    int y0, y1;
    learn_civil(from_wall_s, &y0, NULL, NULL, NULL, NULL);
    learn_civil(to_wall_s, &y1, NULL, NULL, NULL, NULL);
    for (int y = y0; y <= y1 && y - y0 < 2; y++) {
        int64_t spring = nth_sunday_2am(y, 3, 2), fall = nth_sunday_2am(y, 11, 1);
        if (from_wall_s < spring && to_wall_s >= spring + 3600) elapsed -= 3600;
        if (from_wall_s < fall - 3600 && to_wall_s >= fall) elapsed += 3600;
    }
    return elapsed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int learn_static_fit(const learn_trip *trips, size_t n, size_t first_n, double *speed_mph)
{
    if (first_n == 0 || first_n > n) return OP_EINVAL;
    double *speeds = malloc(first_n * sizeof *speeds);
    if (!speeds) return OP_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < first_n; i++)
        if (trips[i].actual_s > 0 && trips[i].distance_miles > 0)
            speeds[k++] = trips[i].distance_miles / (trips[i].actual_s / 3600.0);
    if (k == 0) {
        free(speeds);
        return OP_EINVAL;
    }
    qsort(speeds, k, sizeof *speeds, cmp_double);
    *speed_mph = k % 2 ? speeds[k / 2] : (speeds[k / 2 - 1] + speeds[k / 2]) / 2;
    free(speeds);
    return OP_OK;
}

double learn_static_estimate(double distance_miles, double speed_mph)
{
    return distance_miles / speed_mph * 3600.0;
}

void learn_static_apply(learn_trip *trips, size_t n, double speed_mph)
{
    for (size_t i = 0; i < n; i++)
        trips[i].planned_s = learn_static_estimate(trips[i].distance_miles, speed_mph);
}

float learn_target(learn_objective obj, double planned_s, double actual_s)
{
    if (obj == LEARN_OBJ_ABS) return (float)(actual_s - planned_s);
    return (float)log(actual_s / planned_s);
}

double learn_from_margin(learn_objective obj, double planned_s, double margin)
{
    double s = obj == LEARN_OBJ_ABS ? planned_s + margin : planned_s * exp(margin);
    return isfinite(s) && s >= 1 ? s : 1;
}

double learn_mae(const double *pred, const double *actual, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += fabs(pred[i] - actual[i]);
    return n ? sum / (double)n : 0;
}

learn_verdict learn_decide(const learn_rule *rule, int has_champion, double champion_mae,
                           double challenger_mae, size_t heldout_rows)
{
    learn_verdict v = {0, 0, ""};
    if (!has_champion) {
        v.adopt = 1;
        v.reason = "no champion yet";
        return v;
    }
    if (heldout_rows < rule->min_rows) {
        v.reason = "too few held-out rows to compare";
        return v;
    }
    v.gain = champion_mae > 0 ? (champion_mae - challenger_mae) / champion_mae : 0;
    if (!(challenger_mae < champion_mae * (1 - rule->margin))) {
        v.reason = "not better than the champion by the margin";
        return v;
    }
    v.adopt = 1;
    v.reason = "better than the champion by more than the margin";
    return v;
}

learn_verdict learn_rollback_decide(const learn_rule *rule, double champion_mae,
                                    double previous_mae, size_t heldout_rows)
{
    learn_verdict v = {0, 0, ""};
    if (heldout_rows < rule->min_rows) {
        v.reason = "too few fresh held-out rows to judge the champion";
        return v;
    }
    if (!isfinite(champion_mae) || !isfinite(previous_mae)) {
        v.reason = "no measure of both models";
        return v;
    }
    v.gain = champion_mae > 0 ? (champion_mae - previous_mae) / champion_mae : 0;
    if (!(previous_mae < champion_mae * (1 - rule->margin))) {
        v.reason = "the champion holds up on fresh rows";
        return v;
    }
    v.adopt = 1;
    v.reason = "the previous champion beats it on fresh rows by more than the margin";
    return v;
}

/* Appends one reason to why, "; " after the first. */
static void add_reason(char *why, size_t why_len, const char *text)
{
    size_t used = strlen(why);
    if (used + 3 >= why_len) return;
    snprintf(why + used, why_len - used, "%s%s", used ? "; " : "", text);
}

int learn_confident(const learn_model_facts *m, const float row[LEARN_FEATURES], double answer_s,
                    char *why, size_t why_len)
{
    static const char *const names[LEARN_FEATURES] = {
        "distance_miles",  "hour",  "weekday", "pickup_area", "dropoff_area", "pickup_borough",
        "dropoff_borough", "month", "year"};
    char scratch[2], text[160];
    if (!why || !why_len) {
        why = scratch;
        why_len = sizeof scratch;
    }
    why[0] = 0;
    if (!m->has_model) {
        add_reason(why, why_len, "no model");
        return 0;
    }
    int ok = 1;
    if (m->rows < LEARN_CONFIDENT_ROWS) {
        snprintf(text, sizeof text, "learned from only %lld rows (fewer than %d)",
                 (long long)m->rows, LEARN_CONFIDENT_ROWS);
        add_reason(why, why_len, text);
        ok = 0;
    }
    for (int k = 0; m->has_ranges && k < LEARN_FEATURES; k++) {
        float lo = m->range[k][0], hi = m->range[k][1];
        if (isnan(row[k]) || (!isnan(lo) && row[k] >= lo && row[k] <= hi)) continue;
        if (isnan(lo))
            snprintf(text, sizeof text, "%s never seen in training", names[k]);
        else
            snprintf(text, sizeof text, "%s %g outside the %g..%g it learned from", names[k],
                     (double)row[k], (double)lo, (double)hi);
        add_reason(why, why_len, text);
        ok = 0;
    }
    if (m->heldout_mae_s > 0 && answer_s > 0 &&
        m->heldout_mae_s > LEARN_CONFIDENT_REL_ERR * answer_s) {
        snprintf(text, sizeof text, "its held-out MAE %.0f s is over %.0f%% of the answer %.0f s",
                 m->heldout_mae_s, LEARN_CONFIDENT_REL_ERR * 100, answer_s);
        add_reason(why, why_len, text);
        ok = 0;
    }
    return ok;
}

static size_t window_capacity(const learn_window *w)
{
    return w->capacity && w->capacity < LEARN_WINDOW_MAX ? w->capacity : LEARN_WINDOW_MAX;
}

void learn_window_push(learn_window *w, double err_own, double err_candidate)
{
    size_t cap = window_capacity(w);
    if (w->next >= cap) w->next = 0;
    w->err_own[w->next] = (float)err_own;
    w->err_candidate[w->next] = (float)err_candidate;
    w->next = (w->next + 1) % cap;
    if (w->size < cap) w->size++;
}

void learn_window_mae(const learn_window *w, double *own, double *candidate)
{
    double a = 0, b = 0;
    for (size_t i = 0; i < w->size; i++) {
        a += w->err_own[i];
        b += w->err_candidate[i];
    }
    *own = w->size ? a / (double)w->size : 0;
    *candidate = w->size ? b / (double)w->size : 0;
}
