#include "core/artifact.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "core/jobspec.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- manifests ---------- */

static int64_t chunks_for(int64_t size_bytes, int64_t chunk_bytes)
{
    return (size_bytes + chunk_bytes - 1) / chunk_bytes;
}

/* The bounds every manifest keeps, whoever made it. */
static int sizes_ok(int64_t size_bytes, int64_t chunk_bytes, int64_t n_chunks)
{
    return size_bytes > 0 && size_bytes <= ARTIFACT_MAX_BYTES &&
           chunk_bytes >= ARTIFACT_MIN_CHUNK_BYTES && chunk_bytes <= ARTIFACT_MAX_CHUNK_BYTES &&
           n_chunks == chunks_for(size_bytes, chunk_bytes) && n_chunks <= ARTIFACT_MAX_CHUNKS;
}

int artifact_manifest_make(const uint8_t sha256[32], int64_t size_bytes, int64_t chunk_bytes,
                           const uint8_t (*chunk_sha)[32], artifact_manifest *out)
{
    memset(out, 0, sizeof *out);
    int64_t n = chunk_bytes > 0 ? chunks_for(size_bytes, chunk_bytes) : 0;
    if (!sizes_ok(size_bytes, chunk_bytes, n)) return OP_EINVAL;
    out->chunk_sha = malloc((size_t)n * 32);
    if (!out->chunk_sha) return OP_ENOMEM;
    memcpy(out->chunk_sha, chunk_sha, (size_t)n * 32);
    memcpy(out->sha256, sha256, 32);
    util_hex(sha256, 32, out->sha256_hex);
    out->size_bytes = size_bytes;
    out->chunk_bytes = chunk_bytes;
    out->n_chunks = n;
    return OP_OK;
}

void artifact_manifest_clear(artifact_manifest *m)
{
    if (!m) return;
    free(m->chunk_sha);
    memset(m, 0, sizeof *m);
}

/*
 * Written by hand, not by cJSON: the text is what is signed, so its bytes
 * must not depend on a library's number formatting.
 */
char *artifact_manifest_text(const artifact_manifest *m)
{
    size_t cap = 256 + (size_t)m->n_chunks * 64;
    char *text = malloc(cap);
    if (!text) return NULL;
    int used = snprintf(text, cap,
                        "{\"v\":1,\"sha256\":\"%s\",\"size\":%lld,\"chunk_bytes\":%lld,"
                        "\"chunks\":\"",
                        m->sha256_hex, (long long)m->size_bytes, (long long)m->chunk_bytes);
    if (used < 0 || (size_t)used >= cap) {
        free(text);
        return NULL;
    }
    size_t at = (size_t)used;
    for (int64_t i = 0; i < m->n_chunks; i++, at += 64)
        util_hex(m->chunk_sha[i], 32, text + at);
    memcpy(text + at, "\"}", 3);
    return text;
}

void artifact_sign(const ident *signer, const char *domain, const char *text, char sig_hex[129])
{
    size_t dlen = strlen(domain), tlen = strlen(text);
    uint8_t sig[64];
    char *joined = malloc(dlen + tlen + 1);
    if (!joined) {
        sig_hex[0] = '\0';
        return;
    }
    memcpy(joined, domain, dlen);
    memcpy(joined + dlen, text, tlen + 1);
    ident_sign(signer, joined, dlen + tlen, sig);
    free(joined);
    util_hex(sig, 64, sig_hex);
}

int artifact_verify(const uint8_t pk[32], const char *domain, const char *text, const char *sig_hex)
{
    uint8_t sig[64];
    if (!sig_hex || strlen(sig_hex) != 128 || util_unhex(sig_hex, sig, 64) != OP_OK) return OP_ESIG;
    size_t dlen = strlen(domain), tlen = strlen(text);
    char *joined = malloc(dlen + tlen + 1);
    if (!joined) return OP_ESIG;
    memcpy(joined, domain, dlen);
    memcpy(joined + dlen, text, tlen + 1);
    int rc = ident_verify(pk, joined, dlen + tlen, sig);
    free(joined);
    return rc == OP_OK ? OP_OK : OP_ESIG;
}

/* The fields of a signed manifest's text into out. OP_OK or OP_EINVAL with err set. */
static int manifest_fields(const cJSON *root, artifact_manifest *out, char *err, size_t err_len)
{
    int64_t v = 0, size = 0, chunk = 0;
    const char *sha = jsonx_str(root, "sha256"), *chunks = jsonx_str(root, "chunks");
    if (jsonx_int(root, "v", 1, 1, &v) != OP_OK ||
        jsonx_int(root, "size", 1, ARTIFACT_MAX_BYTES, &size) != OP_OK ||
        jsonx_int(root, "chunk_bytes", ARTIFACT_MIN_CHUNK_BYTES, ARTIFACT_MAX_CHUNK_BYTES,
                  &chunk) != OP_OK ||
        !sha || strlen(sha) != 64 || util_unhex(sha, out->sha256, 32) != OP_OK || !chunks) {
        snprintf(err, err_len, "manifest: v, sha256, size, chunk_bytes or chunks missing or bad");
        return OP_EINVAL;
    }
    int64_t n = chunks_for(size, chunk);
    if (!sizes_ok(size, chunk, n) || strlen(chunks) != (size_t)n * 64) {
        snprintf(err, err_len, "manifest: %lld chunks of %lld bytes do not make %lld bytes",
                 (long long)(strlen(chunks) / 64), (long long)chunk, (long long)size);
        return OP_EINVAL;
    }
    out->chunk_sha = malloc((size_t)n * 32);
    if (!out->chunk_sha) return OP_ENOMEM;
    if (util_unhex(chunks, (uint8_t *)out->chunk_sha, (size_t)n * 32) != OP_OK) {
        snprintf(err, err_len, "manifest: chunks is not hex");
        return OP_EINVAL;
    }
    util_hex(out->sha256, 32, out->sha256_hex);
    out->size_bytes = size;
    out->chunk_bytes = chunk;
    out->n_chunks = n;
    return OP_OK;
}

int artifact_manifest_open(const char *text, const char *sig_hex, const uint8_t hub_pk[32],
                           artifact_manifest *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!text || strlen(text) > ARTIFACT_MAX_MANIFEST_BYTES) {
        snprintf(err, err_len, "manifest missing or over %d bytes", ARTIFACT_MAX_MANIFEST_BYTES);
        return OP_ETOOBIG;
    }
    if (artifact_verify(hub_pk, ARTIFACT_MANIFEST_DOMAIN, text, sig_hex) != OP_OK) {
        snprintf(err, err_len, "manifest not signed by the hub");
        return OP_ESIG;
    }
    cJSON *root = jsonx_parse(text, strlen(text), err, err_len);
    if (!root) return OP_EINVAL;
    int rc = manifest_fields(root, out, err, err_len);
    cJSON_Delete(root);
    if (rc != OP_OK) artifact_manifest_clear(out);
    return rc;
}

int64_t artifact_chunk_len(const artifact_manifest *m, int64_t index)
{
    if (index < 0 || index >= m->n_chunks) return 0;
    int64_t start = index * m->chunk_bytes;
    int64_t left = m->size_bytes - start;
    return left < m->chunk_bytes ? left : m->chunk_bytes;
}

int artifact_chunk_check(const artifact_manifest *m, int64_t index, const void *data, size_t len)
{
    int64_t want = artifact_chunk_len(m, index);
    if (want == 0 || (int64_t)len != want) return OP_EINVAL;
    uint8_t sha[32];
    crypto_hash_sha256(sha, data, len);
    return sodium_memcmp(sha, m->chunk_sha[index], 32) == 0 ? OP_OK : OP_ESIG;
}

/* ---------- chunks as base64 ---------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *artifact_b64_encode(const uint8_t *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3, o += 4) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = b64_alphabet[(v >> 6) & 63];
        o[3] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    *o = '\0';
    return out;
}

/* The value of each base64 character, 255 for anything else. */
static const uint8_t b64_values[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 62,  255, 255, 255, 63,  52,  53,  54,  55,  56,  57,  58,  59,  60,
    61,  255, 255, 255, 255, 255, 255, 255, 0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,
    11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25,  255, 255, 255, 255,
    255, 255, 26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,  41,  42,
    43,  44,  45,  46,  47,  48,  49,  50,  51,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255,
};

int artifact_b64_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len)
{
    const uint8_t *val = b64_values;
    size_t n = strlen(text), pad = 0;
    *out = NULL;
    if (n % 4) return OP_EINVAL;
    while (pad < 2 && n > pad && text[n - 1 - pad] == '=')
        pad++;
    size_t len = n / 4 * 3 - pad;
    if (len > max_len) return OP_ETOOBIG;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return OP_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t a = val[(uint8_t)text[i]], b = val[(uint8_t)text[i + 1]];
        int last = i + 4 == n;
        uint32_t c = last && pad == 2 ? 0 : val[(uint8_t)text[i + 2]];
        uint32_t d = last && pad >= 1 ? 0 : val[(uint8_t)text[i + 3]];
        if ((a | b | c | d) > 63) {
            free(buf);
            return OP_EINVAL;
        }
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        buf[o++] = (uint8_t)(v >> 16);
        if (o < len) buf[o++] = (uint8_t)(v >> 8);
        if (o < len) buf[o++] = (uint8_t)v;
    }
    *out = buf;
    *out_len = len;
    return OP_OK;
}

/* ---------- bitmaps ---------- */

size_t artifact_bitmap_bytes(int64_t n_chunks)
{
    return n_chunks > 0 ? (size_t)((n_chunks + 7) / 8) : 0;
}

int artifact_bit(const uint8_t *bits, int64_t index)
{
    return (bits[index / 8] >> (index % 8)) & 1;
}

void artifact_bit_set(uint8_t *bits, int64_t index)
{
    bits[index / 8] |= (uint8_t)(1u << (index % 8));
}

void artifact_bit_clear(uint8_t *bits, int64_t index)
{
    bits[index / 8] &= (uint8_t) ~(1u << (index % 8));
}

int64_t artifact_bits_count(const uint8_t *bits, int64_t n_chunks)
{
    int64_t count = 0;
    for (int64_t i = 0; i < n_chunks; i++)
        count += artifact_bit(bits, i);
    return count;
}

int artifact_missing(const uint8_t *held, const uint8_t *asked, int64_t n_chunks, int64_t from,
                     int64_t *out, int max)
{
    int found = 0;
    if (n_chunks <= 0 || max <= 0) return 0;
    if (from < 0 || from >= n_chunks) from = 0;
    for (int64_t k = 0; k < n_chunks && found < max; k++) {
        int64_t i = (from + k) % n_chunks;
        if (!artifact_bit(held, i) && !(asked && artifact_bit(asked, i))) out[found++] = i;
    }
    return found;
}

/* ---------- models ---------- */

int artifact_sha_ok(const char *text)
{
    size_t n = 0;
    if (!text) return 0;
    for (; text[n]; n++)
        if (!((text[n] >= '0' && text[n] <= '9') || (text[n] >= 'a' && text[n] <= 'f'))) return 0;
    return n == 64;
}

int artifact_valid_name(const char *name)
{
    return name && util_valid_id(name);
}

int artifact_parse_ref(const char *ref, char name[64], int64_t *version)
{
    const char *at = ref ? strchr(ref, '@') : NULL;
    size_t len = at ? (size_t)(at - ref) : ref ? strlen(ref) : 0;
    if (len == 0 || len >= 64) return OP_EINVAL;
    memcpy(name, ref, len);
    name[len] = '\0';
    *version = 0;
    if (!artifact_valid_name(name)) return OP_EINVAL;
    if (at && util_parse_i64(at + 1, 1, INT32_MAX, version) != OP_OK) return OP_EINVAL;
    return OP_OK;
}

/* A lineage's data window end: a short string or a number. */
static int window_ok(const cJSON *v)
{
    return cJSON_IsNumber(v) || (cJSON_IsString(v) && strlen(v->valuestring) <= 64);
}

static int metrics_ok(const cJSON *metrics)
{
    int n = 0;
    const cJSON *m;
    if (!cJSON_IsObject(metrics)) return 0;
    cJSON_ArrayForEach(m, metrics)
    {
        if (++n > 32 || !cJSON_IsNumber(m) || !m->string || strlen(m->string) > 64) return 0;
    }
    return 1;
}

/* One field of a lineage: a known name with a value of its type. */
static int lineage_field_ok(const cJSON *f)
{
    const char *k = f->string ? f->string : "";
    if (!strcmp(k, "site")) return cJSON_IsString(f) && util_valid_id(f->valuestring);
    if (!strcmp(k, "from") || !strcmp(k, "to")) return window_ok(f);
    if (!strcmp(k, "rows")) return cJSON_IsNumber(f) && f->valuedouble >= 0;
    if (!strcmp(k, "metrics")) return metrics_ok(f);
    if (!strcmp(k, "note")) return cJSON_IsString(f) && strlen(f->valuestring) <= 256;
    return 0;
}

int artifact_lineage_check(const cJSON *lineage, char *err, size_t err_len)
{
    if (!cJSON_IsObject(lineage)) {
        snprintf(err, err_len, "lineage: must be a JSON object");
        return OP_EINVAL;
    }
    char *text = cJSON_PrintUnformatted(lineage);
    size_t len = text ? strlen(text) : 0;
    free(text);
    if (!text || len > ARTIFACT_MAX_LINEAGE_BYTES) {
        snprintf(err, err_len, "lineage: over %d bytes", ARTIFACT_MAX_LINEAGE_BYTES);
        return OP_ETOOBIG;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, lineage)
    {
        if (!lineage_field_ok(f)) {
            snprintf(err, err_len,
                     "lineage.%.64s: unknown or bad (site: an id; from, to: a string or number; "
                     "rows: >= 0; metrics: up to 32 numbers; note: up to 256 characters)",
                     f->string ? f->string : "?");
            return OP_EINVAL;
        }
    }
    return OP_OK;
}

char *artifact_record_text(const artifact_record *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    jsonx_add_int(o, "v", 1);
    cJSON_AddStringToObject(o, "name", r->name);
    jsonx_add_int(o, "version", r->version);
    cJSON_AddStringToObject(o, "sha256", r->sha256_hex);
    jsonx_add_int(o, "size", r->size_bytes);
    jsonx_add_int(o, "created_at", r->created_at_ms);
    cJSON_AddStringToObject(o, "created_by", r->created_by);
    jsonx_add_int(o, "parent", r->parent);
    cJSON_AddStringToObject(o, "data_class", jobspec_data_class_name(r->data_class));
    cJSON_AddStringToObject(o, "origin", r->origin);
    cJSON_AddItemToObject(o, "lineage",
                          r->lineage ? cJSON_Duplicate(r->lineage, 1) : cJSON_CreateObject());
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}
