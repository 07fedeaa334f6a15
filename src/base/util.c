#include "base/util.h"

#include "base/err.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void util_hex(const uint8_t *bytes, size_t len, char *out)
{
    sodium_bin2hex(out, len * 2 + 1, bytes, len);
}

int util_unhex(const char *hex, uint8_t *out, size_t len)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen(hex) != len * 2) return OP_EINVAL;
    if (sodium_hex2bin(out, len, hex, len * 2, NULL, &bin_len, &end) != 0) return OP_EINVAL;
    if (bin_len != len || *end != '\0') return OP_EINVAL;
    return OP_OK;
}

void util_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    util_hex(digest, sizeof digest, out);
}

static char *b64_encode(const void *data, size_t len, int variant)
{
    size_t cap = sodium_base64_encoded_len(len, variant);
    char *out = malloc(cap);
    if (!out) return NULL;
    sodium_bin2base64(out, cap, data, len, variant);
    return out;
}

static int b64_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len, int variant)
{
    size_t text_len = strlen(text);
    size_t cap = text_len / 4 * 3 + 3;
    /* Refuse early only when even the smallest decoding (two padding bytes) is too big;
     * the exact size is checked after decoding. */
    if (text_len / 4 * 3 > max_len + 2) return OP_ETOOBIG;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) return OP_ENOMEM;
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(buf, cap, text, text_len, NULL, &n, &end, variant) != 0 || *end != '\0') {
        free(buf);
        return OP_EINVAL;
    }
    if (n > max_len) {
        free(buf);
        return OP_ETOOBIG;
    }
    *out = buf;
    *out_len = n;
    return OP_OK;
}

char *util_b64_encode(const void *data, size_t len)
{
    return b64_encode(data, len, sodium_base64_VARIANT_ORIGINAL);
}

int util_b64_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len)
{
    return b64_decode(text, max_len, out, out_len, sodium_base64_VARIANT_ORIGINAL);
}

char *util_b64url_encode(const void *data, size_t len)
{
    return b64_encode(data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int util_b64url_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len)
{
    return b64_decode(text, max_len, out, out_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int util_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) return OP_ETOOBIG;
    return OP_OK;
}

int util_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (!text || !*text) return OP_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return OP_EINVAL;
    *out = (int64_t)v;
    return OP_OK;
}

int util_parse_double(const char *text, double *out)
{
    if (!text || !*text) return OP_EINVAL;
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v)) return OP_EINVAL;
    *out = v;
    return OP_OK;
}

int util_valid_id(const char *id)
{
    size_t n = 0;
    if (!id) return 0;
    for (; id[n]; n++) {
        char c = id[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok || n >= 63) return 0;
    }
    return n > 0;
}

size_t util_last_at_or_before(const int64_t *sorted, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}
