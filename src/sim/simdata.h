/*
 * simdata: the real data the simulator is built from (../shared/data/power,
 * its README says where each file comes from). Parsers take a buffer (they
 * are fuzzed); io/simfiles reads the folder.
 *
 *   sessions  charging sessions from Caltech ACN (workplace garage; plug-in,
 *             charging end, departure, energy, and the driver's stated
 *             departure) and the City of Turku (public chargers; plug-in,
 *             plug-out, energy). Kept as local time of day + durations.
 *   piles     charge points per station of 1,362 Shenzhen stations (UrbanEV)
 *   carbon    grid carbon intensity, gCO2/kWh: GB, FR, DE 2020 (ENTSO-E)
 *   price     Dutch day-ahead price 2016, EUR/MWh, hourly
 */
#ifndef OUTPOST_SIMDATA_H
#define OUTPOST_SIMDATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct simdata_session {
    int32_t connect_tod_s; /* local time of day of the plug-in */
    int32_t plugged_s;     /* plug-in to plug-out */
    int32_t charging_s;    /* plug-in to the end of charging (<= plugged_s) */
    float kwh;
    int32_t stated_stay_s; /* the driver's stated departure - plug-in; -1 when not given */
} simdata_session;

/* A time series, sorted by time (seconds since the Unix epoch, UTC as the files give it). */
typedef struct simdata_series {
    int64_t *t_s;
    float *value;
    size_t n;
} simdata_series;

enum { SIMDATA_CI_GB, SIMDATA_CI_FR, SIMDATA_CI_DE, SIMDATA_N_CARBON };

typedef struct simdata {
    simdata_session *sessions; /* all sessions with energy; the first n_stated have a stated stay */
    size_t n_sessions, n_stated, cap_sessions;
    double turku_sessions_per_point_day; /* measured: sessions / charge points / day */
    int *piles;
    size_t n_piles;
    simdata_series carbon[SIMDATA_N_CARBON];
    simdata_series price;
} simdata;

/* "YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z]" to seconds since the epoch; OP_EINVAL otherwise. */
int simdata_parse_time(const char *text, int64_t *out_s);

/*
 * Each parser appends to d from one file's text; on a bad line it returns
 * OP_EINVAL with "line N: why" in err and keeps what it had. OP_ENOMEM.
 */
int simdata_parse_acn(simdata *d, const char *text, size_t len, char *err, size_t err_len);
int simdata_parse_turku(simdata *d, const char *text, size_t len, char *err, size_t err_len);
int simdata_parse_piles(simdata *d, const char *text, size_t len, char *err, size_t err_len);
/* "time,value" (carbon) or "date,hour,value" (price) lines after a header. */
int simdata_parse_series(simdata_series *s, const char *text, size_t len, char *err,
                         size_t err_len);

/* Frees what d owns (sessions, piles, series) and zeroes it. */
void simdata_clear(simdata *d);

/* The value in force at t_s (the latest sample at or before it; the first before the start). */
double simdata_series_at(const simdata_series *s, int64_t t_s);

#endif
