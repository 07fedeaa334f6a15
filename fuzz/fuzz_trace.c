/* libFuzzer target: a site's power trace (outside input: a file the site's owner writes). */
#include "base/err.h"
#include "core/power.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    power_trace t;
    char err[256] = "";
    int rc = power_trace_parse((const char *)data, size, &t, err, sizeof err);
    if (rc != OP_OK) {
        if (!err[0] && rc != OP_ENOMEM) abort(); /* a refusal always says why */
        return 0;
    }
    if (!t.n) abort();
    for (size_t i = 0; i < t.n; i++) {
        if (!(t.watts[i] >= 0) || t.offset_ms[i] < 0) abort();
        if (i && t.offset_ms[i] < t.offset_ms[i - 1]) abort();
        if (!isnan(t.carbon[i]) && t.carbon[i] < 0) abort();
    }
    if (power_trace_at(&t, -1) != 0 || power_trace_at(&t, INT64_MAX) != t.n - 1) abort();
    power_trace_clear(&t);
    return 0;
}
