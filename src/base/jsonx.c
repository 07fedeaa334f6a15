#include "base/jsonx.h"

#include "base/err.h"
#include "base/util.h"

#include <math.h>
#include <stdio.h>

int jsonx_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) return OP_ENOTFOUND;
    if (cJSON_IsRaw(item)) { /* an exact integer written by jsonx_add_int, read back */
        int64_t exact;
        if (util_parse_i64(item->valuestring, min, max, &exact) != OP_OK) return OP_EINVAL;
        *out = exact;
        return OP_OK;
    }
    if (!cJSON_IsNumber(item)) return OP_EINVAL;
    double v = item->valuedouble;
    /* The range of int64_t first, as doubles (2^63 is exact, INT64_MAX is not), so that the
     * conversion is defined; then the bounds, as integers, which a double could not hold. */
    if (!isfinite(v) || floor(v) != v || v < -9223372036854775808.0 || v >= 9223372036854775808.0)
        return OP_EINVAL;
    int64_t i = (int64_t)v;
    if (i < min || i > max) return OP_EINVAL;
    *out = i;
    return OP_OK;
}

int jsonx_num(const cJSON *obj, const char *key, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) return OP_ENOTFOUND;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble)) return OP_EINVAL;
    *out = item->valuedouble;
    return OP_OK;
}

const char *jsonx_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/*
 * Beyond 2^52 cJSON may print a number with 15 significant digits that it
 * wrongly judges close enough, losing the last digit: there the integer is
 * written as exact decimal text (a raw item, which jsonx_int reads back).
 */
void jsonx_add_int(cJSON *obj, const char *key, int64_t value)
{
    if (value > (INT64_C(1) << 52) || value < -(INT64_C(1) << 52)) {
        char text[24];
        snprintf(text, sizeof text, "%lld", (long long)value);
        cJSON_AddRawToObject(obj, key, text);
        return;
    }
    cJSON_AddNumberToObject(obj, key, (double)value);
}
