/*
 * power: a site's power envelope. Pure: numbers in,
 * numbers out; no I/O, no clock. Times are UTC milliseconds, power in watts.
 *
 * The envelope is the power a site may spend on compute at a moment:
 *   pod (charging site): grid connection limit - the chargers' draw - margin
 *   car (parked, plugged): the car computer's budget while plugged in, before
 *        the owner's stated departure (less a safety lead), above the battery
 *        floor; 0 otherwise (a car may leave at any moment)
 *   dc (warehouse): a fixed budget, or a daily schedule
 * A forecaster predicts a site's envelope from its own history: persistence
 * blended with a learned time-of-day profile (replaceable behind the
 * power_forecaster interface).
 */
#ifndef OUTPOST_POWER_H
#define OUTPOST_POWER_H

#include <stddef.h>
#include <stdint.h>

/* A charging session: the car draws kwh evenly from connect to done (or disconnect). */
typedef struct power_session {
    int64_t connect_ms, done_ms;
    double kwh;
} power_session;

/*
 * The chargers' draw at a site, sampled every step_ms from t0_ms into
 * out[n_steps] (watts, the mean over each step), from its sessions. Energy is
 * conserved: sum(out) * step equals the sessions' energy inside the window.
 * Sessions with done <= connect or negative energy are skipped; returns how
 * many were used.
 */
size_t power_sessions_load(const power_session *sessions, size_t n, int64_t t0_ms, int64_t step_ms,
                           double *out, size_t n_steps);

/* Pod: grid limit - chargers - margin, never below 0. */
double power_pod_envelope(double grid_limit_watts, double chargers_watts, double margin_watts);

typedef struct power_car {
    int64_t plug_in_ms, departure_ms; /* the driver's stated departure */
    int64_t departure_lead_ms;        /* stop this long before it: the car may leave early */
    double budget_watts;              /* the car computer's allowance while plugged in */
    double battery_kwh, floor_kwh;    /* state of charge now, and the owner's floor */
} power_car;

/* Car: its budget while plugged in, before departure - lead, above the floor; else 0. */
double power_car_envelope(const power_car *car, int64_t t_ms);

/* Warehouse data center: a fixed budget, or per-slot budgets over a UTC day. */
typedef struct power_dc {
    double budget_watts;
    int n_slots;         /* 0: fixed budget; else slots of 86400000 / n_slots ms */
    const double *slots; /* watts per slot of the day */
} power_dc;

double power_dc_envelope(const power_dc *dc, int64_t t_ms);

/* A job's draw at a site: work units x watts per unit of that site's hardware. */
double power_job_draw(double units, double watts_per_unit);

/*
 * Forecast of a site's envelope: persistence blended with a time-of-day
 * profile (96 slots of 15 minutes, an exponentially weighted mean of what the
 * site saw in each). The weight of persistence decays with the horizon:
 * w = exp(-horizon / tau). Before a slot has been seen, the profile there is
 * the last observation (pure persistence).
 */
#define POWER_PROFILE_SLOTS 96

typedef struct power_forecaster {
    double profile[POWER_PROFILE_SLOTS];
    unsigned char seen[POWER_PROFILE_SLOTS];
    double alpha;  /* EWMA weight of a new observation, 0 < alpha <= 1 */
    double tau_ms; /* persistence horizon */
    double last_watts;
    int64_t last_ms;
    int have_last;
} power_forecaster;

void power_forecaster_init(power_forecaster *f, double alpha, double tau_ms);
/* Learns from an observation (t_ms non-decreasing). */
void power_forecaster_observe(power_forecaster *f, int64_t t_ms, double watts);
/* The forecast envelope at t_ms (>= the last observation), or 0 before any. */
double power_forecast(const power_forecaster *f, int64_t t_ms);
/*
 * The least forecast envelope over [from_ms, from_ms + duration_ms], sampled
 * every step_ms: what a job of that length may count on.
 */
double power_forecast_min(const power_forecaster *f, int64_t from_ms, int64_t duration_ms,
                          int64_t step_ms);

/*
 * A site meter's message (MQTT topic, or `outpost power` through the site's
 * local socket), JSON with any of:
 *   {"watts": 1800,                       the envelope now (spare power for compute)
 *    "price": 42.5, "carbon": 180,        grid price (per MWh) and carbon (g/kWh) now
 *    "departure_ms": 1764400000000,       a parked car's stated departure (0: none)
 *    "dr": {"watts": 200, "until_ms": T}} a demand-response cap until T (watts 0 allowed)
 * At least one field; numbers finite and in range; nothing else. OP_EINVAL
 * with the field named in err.
 */
enum {
    POWER_METER_WATTS = 1,
    POWER_METER_PRICE = 2,
    POWER_METER_CARBON = 4,
    POWER_METER_DEPARTURE = 8,
    POWER_METER_DR = 16,
};
typedef struct power_meter {
    unsigned has; /* POWER_METER_* bits */
    double watts, price, carbon, dr_watts;
    int64_t departure_ms, dr_until_ms;
} power_meter;

#define POWER_METER_MAX_BYTES 4096
int power_meter_parse(const char *text, size_t len, power_meter *out, char *err, size_t err_len);

/*
 * A site's power trace: lines "seconds,watts[,price[,carbon]]" (seconds from
 * the agent's start, non-decreasing; watts >= 0; price per MWh and carbon in
 * g/kWh optional per line, NAN when absent); '#' comments, blank lines and
 * a header line are skipped. OP_EINVAL with "line N: why" in err; OP_ENOMEM.
 * The caller frees with power_trace_clear.
 */
typedef struct power_trace {
    int64_t *offset_ms;
    double *watts, *price, *carbon;
    size_t n;
} power_trace;

#define POWER_TRACE_MAX_LINES 1000000
int power_trace_parse(const char *text, size_t len, power_trace *out, char *err, size_t err_len);
/* The row in force offset_ms after the start (the first before its time). */
size_t power_trace_at(const power_trace *t, int64_t offset_ms);
/* Frees what t owns and zeroes it. */
void power_trace_clear(power_trace *t);

/*
 * Where a grid signal now sits among the last day's hourly samples (0: the
 * lowest, 1: the highest). The ring keeps one sample per hour.
 */
typedef struct power_grid_ring {
    double hourly[24];
    int64_t hour[24]; /* the hour (t / 3600000) each slot holds, -1 empty */
} power_grid_ring;

void power_grid_ring_init(power_grid_ring *r);
void power_grid_ring_observe(power_grid_ring *r, int64_t t_ms, double value);
/* The rank of value among the samples of the 24 hours before t_ms; 0 with none. */
double power_grid_rank(const power_grid_ring *r, int64_t t_ms, double value);

#endif
