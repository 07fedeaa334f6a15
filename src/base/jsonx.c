#include "base/jsonx.h"

#include "base/err.h"

#include <math.h>

int jsonx_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) return OP_ENOTFOUND;
    if (!cJSON_IsNumber(item)) return OP_EINVAL;
    double v = item->valuedouble;
    if (!isfinite(v) || floor(v) != v || v < (double)min || v > (double)max) return OP_EINVAL;
    *out = (int64_t)v;
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

void jsonx_add_int(cJSON *obj, const char *key, int64_t value)
{
    cJSON_AddNumberToObject(obj, key, (double)value);
}
