/*
 * libFuzzer target: the simulator's data parsers (outside input: CSV files
 * a user points `outpost sim --data` at). The first byte picks the parser.
 */
#include "base/err.h"
#include "sim/simdata.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    simdata d;
    memset(&d, 0, sizeof d);
    char err[256] = "";
    int rc;
    switch (data[0] % 5) {
    case 0:
        rc = simdata_parse_acn(&d, text, len, err, sizeof err);
        break;
    case 1:
        rc = simdata_parse_turku(&d, text, len, err, sizeof err);
        break;
    case 2:
        rc = simdata_parse_piles(&d, text, len, err, sizeof err);
        break;
    case 3:
        rc = simdata_parse_series(&d.price, text, len, err, sizeof err);
        break;
    default: {
        char stamp[64];
        size_t n = len < sizeof stamp - 1 ? len : sizeof stamp - 1;
        memcpy(stamp, text, n);
        stamp[n] = '\0';
        int64_t t;
        rc = simdata_parse_time(stamp, &t);
        err[0] = rc == OP_OK ? '\0' : 'x';
        break;
    }
    }
    if (rc != OP_OK && rc != OP_ENOMEM && !err[0]) abort(); /* a refusal always says why */
    for (size_t i = 0; i < d.n_sessions; i++) {
        const simdata_session *s = &d.sessions[i];
        if (s->plugged_s <= 0 || s->charging_s <= 0 || s->charging_s > s->plugged_s ||
            s->connect_tod_s < 0 || s->connect_tod_s >= 86400 || !(s->kwh > 0))
            abort();
    }
    for (size_t i = 1; i < d.price.n; i++)
        if (d.price.t_s[i] <= d.price.t_s[i - 1]) abort();
    if (d.price.n) (void)simdata_series_at(&d.price, 0);
    simdata_clear(&d);
    return 0;
}
