/*
 * learn: the pure parts of learning from a site's exceptions. An exception
 * is a trip (or a job, a route leg) whose actual duration differs from what
 * a static plan said; this module owns the record of one (learn_trip), the
 * features a model sees, the static estimate a planner without learning
 * uses, the learning target (the exception relative to that estimate), the
 * mean absolute error, and the champion/challenger rule that decides when a
 * new model replaces the one a site answers with.
 *
 * Models themselves (XGBoost boosters) live in io/xgb; this module does no
 * I/O and keeps no state beyond what callers hand it.
 */
#ifndef OUTPOST_LEARN_H
#define OUTPOST_LEARN_H

#include <stddef.h>
#include <stdint.h>

/* The columns of a feature row, in this order. Unknown values are NaN (a model's "missing"). */
enum {
    LEARN_F_DISTANCE,        /* miles, as the trip recorded them */
    LEARN_F_HOUR,            /* local hour of the start, 0-23 */
    LEARN_F_WEEKDAY,         /* local day of the week, 0 = Monday .. 6 = Sunday */
    LEARN_F_PICKUP_AREA,     /* Chicago community area (1-77) or NYC TLC zone (1-263) */
    LEARN_F_DROPOFF_AREA,    /* the same for the drop-off */
    LEARN_F_PICKUP_BOROUGH,  /* NYC borough index; NaN in Chicago */
    LEARN_F_DROPOFF_BOROUGH, /* NYC borough index; NaN in Chicago */
    LEARN_F_MONTH,           /* 1-12 */
    LEARN_F_YEAR,            /* e.g. 2015: taxi fares and traffic drift over years */
    LEARN_FEATURES
};

/*
 * One exception: what a plan said, what happened, and what was known when
 * the plan was made. Only fields known before the trip are features (the
 * fare and the tip, known after it, are not kept).
 */
typedef struct learn_trip {
    int64_t start_s;                     /* start, seconds since the epoch on the data's clock */
    double distance_miles;               /* > 0 */
    double actual_s;                     /* > 0: how long it really took */
    double planned_s;                    /* the static estimate (learn_static_apply); 0 before */
    int site;                            /* index of the site that saw it */
    int hour, weekday;                   /* local: 0-23, 0 = Monday .. 6 */
    int month, year;                     /* local: 1-12, e.g. 2019 */
    int pickup_area, dropoff_area;       /* -1 when unknown */
    int pickup_borough, dropoff_borough; /* -1 when unknown or not part of the data */
} learn_trip;

/* Fills row[LEARN_FEATURES] from a trip (NaN where a field is unknown). */
void learn_features(const learn_trip *t, float row[LEARN_FEATURES]);

/* Civil fields of a time in seconds since the epoch (UTC, or a local clock read as UTC). */
void learn_civil(int64_t t_s, int *year, int *month, int *day, int *hour, int *weekday);
/* Seconds since the epoch of a civil date at midnight (proleptic Gregorian). */
int64_t learn_days_from_civil(int64_t year, int64_t month, int64_t day);

/* "YYYY-MM-DD HH:MM:SS" (a wall clock) to seconds since the epoch read as UTC; OP_EINVAL. */
int learn_parse_time(const char *text, int64_t *out_s);
/*
 * Real seconds between two US wall-clock times (read as UTC), allowing for the
 * daylight-saving changes in between (since 2007: the second Sunday of March,
 * the first Sunday of November, at 02:00): a trip over the spring change took
 * an hour less than its wall clocks say.
 */
int64_t learn_us_elapsed(int64_t from_wall_s, int64_t to_wall_s);

/*
 * The static estimate: distance over one fixed speed. The speed is the median
 * speed (miles per hour) of the first `first_n` trips in the order given
 * (callers sort by start): a planner calibrating once on the first day and
 * never again. OP_EINVAL when first_n is 0 or larger than n.
 */
int learn_static_fit(const learn_trip *trips, size_t n, size_t first_n, double *speed_mph);
double learn_static_estimate(double distance_miles, double speed_mph);
/* Sets planned_s of every trip from speed_mph. */
void learn_static_apply(learn_trip *trips, size_t n, double speed_mph);

/*
 * What a model learns and how its output becomes seconds. Models learn the
 * exception relative to the plan, so a model with no trees answers the plan:
 *   LEARN_OBJ_LOG  squared error on log(actual / planned)  (XGBoost reg:squarederror)
 *   LEARN_OBJ_ABS  absolute error on actual - planned      (XGBoost reg:absoluteerror)
 */
typedef enum { LEARN_OBJ_LOG = 0, LEARN_OBJ_ABS = 1 } learn_objective;

float learn_target(learn_objective obj, double planned_s, double actual_s);
/* A model's output (margin) for a trip as seconds, at least one second. */
double learn_from_margin(learn_objective obj, double planned_s, double margin);

/* Mean absolute error of pred against actual over n values; 0 when n is 0. */
double learn_mae(const double *pred, const double *actual, size_t n);

/*
 * The champion/challenger rule. A challenger replaces the champion only when
 * its MAE on the site's held-out most recent rows is lower than the
 * champion's by more than margin (a fraction: 0.02 = 2% lower), measured on
 * at least min_rows rows; a site with no champion takes any challenger.
 */
typedef struct learn_rule {
    double margin;   /* fraction, >= 0 */
    size_t min_rows; /* held-out rows needed before anything is replaced */
} learn_rule;

typedef struct learn_verdict {
    int adopt;          /* 1: the challenger becomes the champion */
    double gain;        /* (champion - challenger) / champion; 0 without a champion */
    const char *reason; /* static text for the log and the audit entry */
} learn_verdict;

/* has_champion 0: champion_mae is ignored. */
learn_verdict learn_decide(const learn_rule *rule, int has_champion, double champion_mae,
                           double challenger_mae, size_t heldout_rows);

/*
 * The rollback rule: a champion adopted on one held-out window is watched on
 * the next ones, of rows that came after it was chosen. If the champion it
 * replaced (kept by the site) beats it there by more than rule->margin, on
 * at least rule->min_rows rows, the site goes back to that one: adopting
 * was a mistake the fresh rows show (drift, or a window that flattered the
 * challenger). adopt 1 means roll back; gain is how much better the
 * previous champion is, as a fraction of the champion's MAE. A NaN MAE
 * never rolls back (nothing is known).
 */
learn_verdict learn_rollback_decide(const learn_rule *rule, double champion_mae,
                                    double previous_mae, size_t heldout_rows);

/*
 * How far a model's answer for one question can be trusted. A model is
 * judged by what is known of it without looking inside: the rows it learned
 * from, its MAE on held-out rows, and the range of each feature over the
 * rows it learned from (trees extrapolate flat: past the last split a
 * question gets the answer of the edge of what was seen). An answer is not
 * confident when the model learned from fewer than LEARN_CONFIDENT_ROWS
 * rows, when a feature given lies outside the range it was trained on, or
 * when its held-out MAE is more than LEARN_CONFIDENT_REL_ERR of the answer
 * itself (a 200 s typical error on a 5-minute trip says little). No model
 * at all is never confident.
 */
#define LEARN_CONFIDENT_ROWS 500
#define LEARN_CONFIDENT_REL_ERR 0.5

typedef struct learn_model_facts {
    int has_model;
    int64_t rows;                   /* rows it learned from */
    double heldout_mae_s;           /* its MAE on held-out rows; <= 0 unknown */
    int has_ranges;                 /* 0: ranges unknown (not judged by them) */
    float range[LEARN_FEATURES][2]; /* min, max of each feature; NaN when never seen */
} learn_model_facts;

/*
 * 1 when the answer answer_s to the question row is confident, 0 when not,
 * with why (every reason, "; " between them) in why (may be NULL).
 */
int learn_confident(const learn_model_facts *m, const float row[LEARN_FEATURES], double answer_s,
                    char *why, size_t why_len);

/*
 * A site's held-out record: the absolute errors two models (the site's own, a
 * candidate) made on the site's most recent rows, each made before either
 * model learned from that row (prequential), so the rows are held out from
 * both. A ring of at most LEARN_WINDOW_MAX rows; the caller embeds it zeroed.
 */
enum { LEARN_WINDOW_MAX = 1024 };
typedef struct learn_window {
    float err_own[LEARN_WINDOW_MAX], err_candidate[LEARN_WINDOW_MAX];
    size_t size;     /* rows kept, <= capacity */
    size_t next;     /* where the next row goes */
    size_t capacity; /* 0 means LEARN_WINDOW_MAX */
} learn_window;

void learn_window_push(learn_window *w, double err_own, double err_candidate);
/* MAE of the own model and of the candidate over the rows kept. */
void learn_window_mae(const learn_window *w, double *own, double *candidate);

#endif
