#include "base/jsonx.h"

#include "base/err.h"
#include "base/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* 1 if the escape at text[i] ('\\' at i) is \u0000. */
static int escaped_nul(const char *text, size_t len, size_t i)
{
    if (i + 5 >= len || text[i + 1] != 'u') return 0;
    return memcmp(text + i + 2, "0000", 4) == 0;
}

int jsonx_check_nul(const char *text, size_t len, size_t *at)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int bad = c == '\0' || (in_string && c == '\\' && escaped_nul(text, len, i));
        if (bad) {
            if (at) *at = i;
            return OP_EINVAL;
        }
        if (in_string && c == '\\')
            i++; /* the escaped character (of \uXXXX the rest is plain hex) */
        else if (c == '"')
            in_string = !in_string;
    }
    return OP_OK;
}

cJSON *jsonx_parse(const char *text, size_t len, char *err, size_t err_len)
{
    size_t at = 0;
    if (jsonx_check_nul(text, len, &at) != OP_OK) {
        if (err) snprintf(err, err_len, "a string holds a NUL character (\\u0000) at byte %zu", at);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root && err) {
        const char *where = cJSON_GetErrorPtr();
        long offset = where && where >= text && where <= text + len ? (long)(where - text) : -1;
        snprintf(err, err_len, "not valid JSON (near byte %ld)", offset);
    }
    return root;
}
