/*
 * libFuzzer target: a site meter's message (outside input: the meter topic,
 * unsigned, and `outpost power` through the local socket).
 */
#include "base/err.h"
#include "core/power.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    power_meter m;
    char err[256] = "";
    int rc = power_meter_parse((const char *)data, size, &m, err, sizeof err);
    if (rc != OP_OK) {
        if (!err[0]) abort(); /* a refusal always says why */
        return 0;
    }
    if (!m.has) abort();
    if ((m.has & POWER_METER_WATTS) && !(m.watts >= 0 && isfinite(m.watts))) abort();
    if ((m.has & POWER_METER_DR) && !(m.dr_watts >= 0 && m.dr_until_ms >= 0)) abort();
    return 0;
}
