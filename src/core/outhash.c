#include "core/outhash.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define OUTHASH_DOMAIN "outpost-outhash-1"
/* The decoded size of one output file; results are bounded far below this on the wire. */
#define OUTHASH_MAX_FILE_BYTES (64u * 1024 * 1024)

/* A signed 64-bit integer, big-endian: the same bytes on every host. */
static void feed_i64(crypto_hash_sha256_state *h, int64_t v)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)(u & 0xff);
        u >>= 8;
    }
    crypto_hash_sha256_update(h, b, sizeof b);
}

/* Length first, so that "ab","c" and "a","bc" differ. */
static void feed_bytes(crypto_hash_sha256_state *h, const void *data, size_t len)
{
    feed_i64(h, (int64_t)len);
    if (len) crypto_hash_sha256_update(h, data, len);
}

static void feed_text(crypto_hash_sha256_state *h, const char *text)
{
    feed_bytes(h, text ? text : "", text ? strlen(text) : 0);
}

/* An entry's name: a string item itself (missing_outputs) or its "name" field (outputs). */
static const char *entry_name(const cJSON *item)
{
    return cJSON_IsString(item) ? item->valuestring : jsonx_str(item, "name");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(entry_name(*(const cJSON *const *)a), entry_name(*(const cJSON *const *)b));
}

/*
 * The array's entries sorted by name (order of arrival must not matter),
 * into items; OP_EINVAL for an entry without a name, a repeated name, or too
 * many. An absent array is an empty one.
 */
static int sorted_entries(const cJSON *arr, const cJSON *items[OUTHASH_MAX_FILES], size_t *n)
{
    *n = 0;
    if (!arr) return OP_OK;
    if (!cJSON_IsArray(arr)) return OP_EINVAL;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        if (*n == OUTHASH_MAX_FILES || !entry_name(item)) return OP_EINVAL;
        items[(*n)++] = item;
    }
    qsort(items, *n, sizeof items[0], by_name);
    for (size_t i = 1; i < *n; i++)
        if (strcmp(entry_name(items[i - 1]), entry_name(items[i])) == 0) return OP_EINVAL;
    return OP_OK;
}

/* One output file: its name and the SHA-256 of its decoded data, checked against its own. */
static int feed_output(crypto_hash_sha256_state *h, const cJSON *out)
{
    const char *data_b64 = jsonx_str(out, "data_b64"), *stated = jsonx_str(out, "sha256");
    uint8_t *data = NULL;
    size_t len = 0;
    if (!data_b64) return OP_EINVAL;
    int rc = util_b64_decode(data_b64, OUTHASH_MAX_FILE_BYTES, &data, &len);
    if (rc != OP_OK) return rc == OP_ENOMEM ? OP_ENOMEM : OP_EINVAL;
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    free(data);
    if (stated) {
        uint8_t claimed[crypto_hash_sha256_BYTES];
        if (util_unhex(stated, claimed, sizeof claimed) != OP_OK ||
            sodium_memcmp(claimed, digest, sizeof digest) != 0)
            return OP_EINVAL;
    }
    feed_text(h, entry_name(out));
    crypto_hash_sha256_update(h, digest, sizeof digest);
    return OP_OK;
}

int outhash_result(const cJSON *result, char hex[65])
{
    if (!cJSON_IsObject(result)) return OP_EINVAL;
    const cJSON *outputs[OUTHASH_MAX_FILES], *missing[OUTHASH_MAX_FILES];
    size_t n_outputs, n_missing;
    int rc =
        sorted_entries(cJSON_GetObjectItemCaseSensitive(result, "outputs"), outputs, &n_outputs);
    if (rc == OP_OK)
        rc = sorted_entries(cJSON_GetObjectItemCaseSensitive(result, "missing_outputs"), missing,
                            &n_missing);
    if (rc != OP_OK) return rc;
    int64_t exit_code = -1, term_signal = 0;
    jsonx_int(result, "exit_code", INT64_MIN, INT64_MAX, &exit_code);
    jsonx_int(result, "term_signal", INT64_MIN, INT64_MAX, &term_signal);
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)OUTHASH_DOMAIN, strlen(OUTHASH_DOMAIN));
    feed_i64(&h, exit_code);
    feed_i64(&h, term_signal);
    feed_text(&h, jsonx_str(result, "stdout"));
    feed_text(&h, jsonx_str(result, "stderr"));
    feed_i64(&h, (int64_t)n_outputs);
    for (size_t i = 0; i < n_outputs && rc == OP_OK; i++)
        rc = feed_output(&h, outputs[i]);
    feed_i64(&h, (int64_t)n_missing);
    for (size_t i = 0; i < n_missing; i++)
        feed_text(&h, entry_name(missing[i]));
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, digest);
    if (rc == OP_OK) util_hex(digest, sizeof digest, hex);
    return rc;
}
