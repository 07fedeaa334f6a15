#include "core/probe.h"

#include "base/err.h"

#include <math.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct probe_hasher {
    EVP_MD *md;      /* NULL: libsodium */
    EVP_MD_CTX *ctx; /* reused for every hash: a fresh one per hash would cost more than it */
};

probe_hasher *probe_hasher_new(void)
{
    probe_hasher *hs = calloc(1, sizeof *hs);
    if (!hs) return NULL;
    hs->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hs->ctx = hs->md ? EVP_MD_CTX_new() : NULL;
    if (!hs->ctx) {
        EVP_MD_free(hs->md);
        hs->md = NULL;
    }
    return hs;
}

void probe_hasher_free(probe_hasher *hs)
{
    if (!hs) return;
    EVP_MD_CTX_free(hs->ctx);
    EVP_MD_free(hs->md);
    free(hs);
}

/* SHA-256(seed || nonce, 8 bytes little-endian): one 40-byte message, one block. */
static void digest(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], uint64_t nonce,
                   uint8_t out[32])
{
    uint8_t msg[PROBE_SEED_BYTES + 8];
    memcpy(msg, seed, PROBE_SEED_BYTES);
    for (int i = 0; i < 8; i++)
        msg[PROBE_SEED_BYTES + i] = (uint8_t)(nonce >> (8 * i));
    unsigned int len = 0;
    if (hs->md && EVP_DigestInit_ex2(hs->ctx, hs->md, NULL) == 1 &&
        EVP_DigestUpdate(hs->ctx, msg, sizeof msg) == 1 &&
        EVP_DigestFinal_ex(hs->ctx, out, &len) == 1 && len == 32)
        return;
    crypto_hash_sha256(out, msg, sizeof msg);
}

/* 1 when the digest starts with bits zero bits. */
static int leading_zeros(const uint8_t d[32], int bits)
{
    int whole = bits / 8, rest = bits % 8;
    for (int i = 0; i < whole; i++)
        if (d[i]) return 0;
    return rest == 0 || (d[whole] >> (8 - rest)) == 0;
}

int probe_solves(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], int bits, uint64_t nonce)
{
    uint8_t d[32];
    digest(hs, seed, nonce, d);
    return leading_zeros(d, bits);
}

size_t probe_search(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], int bits,
                    uint64_t *next, uint64_t count, uint64_t *found, size_t max_found,
                    size_t *n_found)
{
    size_t hits = 0;
    uint64_t nonce = *next;
    for (uint64_t i = 0; i < count; i++, nonce++) {
        if (!probe_solves(hs, seed, bits, nonce)) continue;
        hits++;
        if (*n_found < max_found) found[(*n_found)++] = nonce;
    }
    *next = nonce;
    return hits;
}

int probe_bits_for(double core_rate, double cores, int64_t duration_ms)
{
    double expected = core_rate * (cores > 0 ? cores : 1e-9) * (double)duration_ms / 1000.0;
    double ratio = expected / PROBE_TARGET_SOLUTIONS;
    int bits = ratio >= 2.0 ? (int)floor(log2(ratio)) : PROBE_MIN_BITS;
    if (bits < PROBE_MIN_BITS) bits = PROBE_MIN_BITS;
    return bits > PROBE_MAX_BITS ? PROBE_MAX_BITS : bits;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * The cheap checks first (count, range, repeats: a sorted copy), then one
 * hash per nonce: a forged answer costs the hub at most PROBE_MAX_SOLUTIONS
 * hashes, about a millisecond.
 */
int probe_check(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], int bits,
                const uint64_t *nonces, size_t n, char *why, size_t why_len)
{
    if (n > PROBE_MAX_SOLUTIONS) {
        snprintf(why, why_len, "%zu nonces, more than the %d allowed", n, PROBE_MAX_SOLUTIONS);
        return OP_ESIG;
    }
    uint64_t *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (n && !sorted) return OP_ENOMEM;
    if (n) memcpy(sorted, nonces, n * sizeof *sorted);
    if (n) qsort(sorted, n, sizeof *sorted, cmp_u64);
    int rc = OP_OK;
    for (size_t i = 0; rc == OP_OK && i < n; i++) {
        if (sorted[i] > PROBE_MAX_NONCE) {
            snprintf(why, why_len, "nonce %llu is out of range", (unsigned long long)sorted[i]);
            rc = OP_ESIG;
        } else if (i > 0 && sorted[i] == sorted[i - 1]) {
            snprintf(why, why_len, "nonce %llu is given twice", (unsigned long long)sorted[i]);
            rc = OP_ESIG;
        }
    }
    free(sorted);
    for (size_t i = 0; rc == OP_OK && i < n; i++) {
        if (!probe_solves(hs, seed, bits, nonces[i])) {
            snprintf(why, why_len, "nonce %zu of %zu (%llu) is not a solution", i + 1, n,
                     (unsigned long long)nonces[i]);
            rc = OP_ESIG;
        }
    }
    return rc;
}

double probe_effective_cores(size_t n, int bits, int64_t elapsed_ms, double core_rate)
{
    if (elapsed_ms <= 0 || !(core_rate > 0)) return 0.0;
    double hashes = ldexp((double)n, bits);
    return hashes / ((double)elapsed_ms / 1000.0) / core_rate;
}

probe_verdict probe_judge(double measured, int claimed, double tolerance, int *counted)
{
    if (tolerance < 1.0) tolerance = 1.0;
    if (claimed <= 0 || measured * tolerance >= (double)claimed) {
        *counted = claimed;
        return PROBE_OK;
    }
    long rounded = lround(measured);
    *counted = rounded < 1 ? 1 : rounded > claimed ? claimed : (int)rounded;
    return PROBE_OVERCLAIMS;
}
