/*
 * libFuzzer target: the trip data readers of `outpost learn replay` (outside
 * input: CSV files a user points --dir at). The first byte picks the parser:
 * Chicago trips, NYC trips (against a small zone table), or the zone table.
 */
#include "base/err.h"
#include "io/learndata.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_trips(const learndata *d)
{
    if (d->n > d->rows || d->n + d->dropped > d->rows) abort();
    for (size_t i = 0; i < d->n; i++) {
        const learn_trip *t = &d->trips[i];
        if (!(t->actual_s > 0) || !(t->distance_miles > 0) || t->site < 0 ||
            (size_t)t->site >= d->n_sites)
            abort();
        if (t->hour < -1 || t->hour > 23 || t->weekday < -1 || t->weekday > 6) abort();
        float row[LEARN_FEATURES];
        learn_features(t, row);
        if (isinf(row[LEARN_F_DISTANCE])) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    learndata d;
    memset(&d, 0, sizeof d);
    learndata_zones z;
    memset(&z, 0, sizeof z);
    char err[256] = "";
    int rc;
    switch (data[0] % 3) {
    case 0:
        rc = learndata_parse_chicago(&d, text, len, err, sizeof err);
        if (rc == OP_OK) rc = learndata_group_small_sites(&d, 3);
        break;
    case 1: {
        static const char zones[] = "LocationID,zone,borough\n43,Central Park,Manhattan\n"
                                    "138,LaGuardia Airport,Queens\n";
        rc = learndata_parse_zones(&z, zones, sizeof zones - 1, err, sizeof err);
        if (rc == OP_OK) rc = learndata_parse_nyc(&d, &z, text, len, err, sizeof err);
        break;
    }
    default:
        rc = learndata_parse_zones(&z, text, len, err, sizeof err);
        break;
    }
    if (rc != OP_OK && rc != OP_ENOMEM && !err[0]) abort(); /* a refusal always says why */
    if (rc == OP_OK && learndata_sort(&d) == OP_OK)
        for (size_t i = 1; i < d.n; i++)
            if (d.trips[i].start_s < d.trips[i - 1].start_s) abort();
    check_trips(&d);
    learndata_clear(&d);
    learndata_zones_clear(&z);
    return 0;
}
