/*
 * learndata: the real trip data the learning replay stands on
 * (../shared/data/learning, its README says where each file comes from), read
 * into learn_trip records, one site per taxi company (Chicago) or pickup
 * borough (NYC). Parsers take a buffer (they are fuzzed); learndata_load reads
 * the folder. It owns the trips and the site names.
 *
 *   chicago  chicago_taxi_trips_tfx_sample.csv: Chicago taxi trips 2013-2016
 *            (City of Chicago); a trip is kept when trip_seconds > 0 and
 *            trip_miles > 0. Site: the company; companies with fewer than
 *            min_site_trips kept trips form one site "(other companies)", trips
 *            with no company one site "(no company recorded)".
 *   nyc      nyc_taxis_2019_03_seaborn.csv: NYC yellow and green taxi trips of
 *            March 2019 (NYC TLC); duration = dropoff - pickup (wall clocks,
 *            allowing for the DST change), kept when > 0 with a distance > 0 and
 *            a pickup borough. Site: the pickup borough. Zones become ids
 *            through nyc_taxi_zones_seaborn.csv.
 *
 * CSV: a header row naming the columns (any order; extra columns ignored),
 * fields separated by commas, double quotes around a field allowed ("" inside
 * is a quote), lines at most LEARNDATA_MAX_LINE bytes.
 */
#ifndef OUTPOST_LEARNDATA_H
#define OUTPOST_LEARNDATA_H

#include "learn/learn.h"

#include <stddef.h>

enum {
    LEARNDATA_MAX_LINE = 4096,
    LEARNDATA_MAX_FIELDS = 64,
    LEARNDATA_MAX_SITES = 4096,
    LEARNDATA_MAX_ZONES = 1024,
    LEARNDATA_MAX_NAME = 128, /* bytes of a site or zone name, longer ones are cut */
};

typedef enum { LEARNDATA_CHICAGO = 0, LEARNDATA_NYC = 1 } learndata_kind;

/* NYC TLC zones: name -> LocationID and borough index (learndata_borough). */
typedef struct learndata_zones {
    char (*name)[LEARNDATA_MAX_NAME];
    int *id, *borough;
    size_t n;
} learndata_zones;

typedef struct learndata {
    learn_trip *trips; /* in file order until learndata_sort */
    size_t n, cap;
    char (*sites)[LEARNDATA_MAX_NAME]; /* trips[i].site indexes this */
    size_t n_sites;
    size_t rows;    /* data rows read */
    size_t dropped; /* rows without a usable duration, distance or site */
} learndata;

/* NYC borough names to indexes: Bronx 0, Brooklyn 1, Manhattan 2, Queens 3, Staten Island 4,
 * EWR 5; -1 for anything else (and an empty name). */
int learndata_borough(const char *name);

/*
 * Each parser appends to its target from one file's text; on a malformed
 * line it returns OP_EINVAL with "line N: why" in err and keeps what it had.
 * Errors: OP_EINVAL (a missing column, a bad number, a line too long),
 * OP_ETOOBIG (too many sites or zones), OP_ENOMEM.
 */
int learndata_parse_zones(learndata_zones *z, const char *text, size_t len, char *err,
                          size_t err_len);
int learndata_parse_chicago(learndata *d, const char *text, size_t len, char *err, size_t err_len);
/* z may be empty (no zone ids then). */
int learndata_parse_nyc(learndata *d, const learndata_zones *z, const char *text, size_t len,
                        char *err, size_t err_len);

/* Chicago's grouping: sites with fewer than min_trips trips become one "(other companies)". */
int learndata_group_small_sites(learndata *d, size_t min_trips);

/* Orders the trips by start time (ties keep file order). OP_ENOMEM. */
int learndata_sort(learndata *d);

/*
 * Reads one data set from dir into *d (released with learndata_clear even on
 * an error), grouped and sorted. OP_ENOTFOUND (err names the file) when a
 * file is missing; the parsers' errors prefixed with the file's path.
 */
int learndata_load(learndata *d, learndata_kind kind, const char *dir, size_t min_site_trips,
                   char *err, size_t err_len);

void learndata_clear(learndata *d);
void learndata_zones_clear(learndata_zones *z);

#endif
