#include "core/audit.h"

#include "base/err.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <string.h>

/*
 * Verifying a log means millions of SHA-256 over short inputs: OpenSSL's
 * implementation uses the CPU's SHA extensions where present (3.6x faster
 * than libsodium's portable code on this machine, bench/ "audit"). It is
 * switched on by the programs that verify whole logs (audit_hash_accelerate):
 * daemons hash a few entries at a time and keep libsodium, which costs them
 * no memory for OpenSSL's providers. One context is reused (the module is
 * used from one thread per process); if OpenSSL cannot provide SHA-256,
 * libsodium computes the same digest.
 */
static EVP_MD_CTX *sha_ctx;
static EVP_MD *sha_md;
static int sha_state = -1; /* 0 untried, 1 OpenSSL, -1 libsodium */

void audit_hash_accelerate(int on)
{
    if (!on)
        sha_state = -1;
    else if (sha_state == -1)
        sha_state = sha_ctx ? 1 : 0;
}

static void sha256_2(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[32])
{
    if (sha_state == 0) {
        sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        sha_ctx = sha_md ? EVP_MD_CTX_new() : NULL;
        sha_state = sha_ctx ? 1 : -1;
    }
    unsigned int len = 0;
    if (sha_state == 1 && EVP_DigestInit_ex(sha_ctx, sha_md, NULL) == 1 &&
        EVP_DigestUpdate(sha_ctx, a, a_len) == 1 && EVP_DigestUpdate(sha_ctx, b, b_len) == 1 &&
        EVP_DigestFinal_ex(sha_ctx, out, &len) == 1 && len == 32)
        return;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, a, a_len);
    crypto_hash_sha256_update(&st, b, b_len);
    crypto_hash_sha256_final(&st, out);
}

void audit_leaf_hash(const void *entry, size_t len, uint8_t out[32])
{
    const uint8_t prefix = 0x00;
    sha256_2(&prefix, 1, entry, len, out);
}

void audit_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
    uint8_t buf[65];
    buf[0] = 0x01;
    memcpy(buf + 1, left, 32);
    memcpy(buf + 33, right, 32);
    sha256_2(buf, sizeof buf, NULL, 0, out);
}

void audit_empty_root(uint8_t out[32])
{
    crypto_hash_sha256(out, (const uint8_t *)"", 0);
}

uint64_t audit_split(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

static void root_range(const uint8_t (*leaves)[32], uint64_t start, uint64_t end, uint8_t out[32])
{
    if (end - start == 1) {
        memcpy(out, leaves[start], 32);
        return;
    }
    uint64_t k = audit_split(end - start);
    uint8_t left[32], right[32];
    root_range(leaves, start, start + k, left);
    root_range(leaves, start + k, end, right);
    audit_node_hash(left, right, out);
}

void audit_root_of(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[32])
{
    if (n == 0)
        audit_empty_root(out);
    else
        root_range(leaves, 0, n, out);
}

/* PATH(m, D[start:end]) appended to proof, leaf to root. */
static int path(uint64_t m, uint64_t start, uint64_t end, audit_subtree_fn subtree, void *ctx,
                uint8_t proof[][32], size_t *len)
{
    uint64_t n = end - start;
    if (n <= 1) return OP_OK;
    uint64_t k = audit_split(n);
    int rc;
    if (m < k) {
        if ((rc = path(m, start, start + k, subtree, ctx, proof, len)) != OP_OK) return rc;
        if (*len >= AUDIT_MAX_PROOF) return OP_ETOOBIG;
        return subtree(ctx, start + k, end, proof[(*len)++]);
    }
    if ((rc = path(m - k, start + k, end, subtree, ctx, proof, len)) != OP_OK) return rc;
    if (*len >= AUDIT_MAX_PROOF) return OP_ETOOBIG;
    return subtree(ctx, start, start + k, proof[(*len)++]);
}

int audit_inclusion_proof(uint64_t index, uint64_t size, audit_subtree_fn subtree, void *ctx,
                          uint8_t proof[][32], size_t *len)
{
    *len = 0;
    if (index >= size) return OP_EINVAL;
    return path(index, 0, size, subtree, ctx, proof, len);
}

/* SUBPROOF(m, D[start:end], b) appended to proof. */
static int subproof(uint64_t m, uint64_t start, uint64_t end, int b, audit_subtree_fn subtree,
                    void *ctx, uint8_t proof[][32], size_t *len)
{
    uint64_t n = end - start;
    int rc;
    if (m == n) {
        if (b) return OP_OK;
        if (*len >= AUDIT_MAX_PROOF) return OP_ETOOBIG;
        return subtree(ctx, start, end, proof[(*len)++]);
    }
    uint64_t k = audit_split(n);
    if (m <= k) {
        if ((rc = subproof(m, start, start + k, b, subtree, ctx, proof, len)) != OP_OK) return rc;
        if (*len >= AUDIT_MAX_PROOF) return OP_ETOOBIG;
        return subtree(ctx, start + k, end, proof[(*len)++]);
    }
    if ((rc = subproof(m - k, start + k, end, 0, subtree, ctx, proof, len)) != OP_OK) return rc;
    if (*len >= AUDIT_MAX_PROOF) return OP_ETOOBIG;
    return subtree(ctx, start, start + k, proof[(*len)++]);
}

int audit_consistency_proof(uint64_t old_size, uint64_t size, audit_subtree_fn subtree, void *ctx,
                            uint8_t proof[][32], size_t *len)
{
    *len = 0;
    if (old_size == 0 || old_size > size) return OP_EINVAL;
    return subproof(old_size, 0, size, 1, subtree, ctx, proof, len);
}

int audit_verify_inclusion(const uint8_t leaf[32], uint64_t index, uint64_t size,
                           const uint8_t proof[][32], size_t len, const uint8_t root[32])
{
    if (index >= size) return OP_ESIG;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[32];
    memcpy(r, leaf, 32);
    for (size_t i = 0; i < len; i++) {
        if (sn == 0) return OP_ESIG;
        if ((fn & 1) || fn == sn) {
            audit_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            audit_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(r, root, 32) == 0 ? OP_OK : OP_ESIG;
}

int audit_verify_consistency(uint64_t old_size, uint64_t size, const uint8_t old_root[32],
                             const uint8_t root[32], const uint8_t proof[][32], size_t len)
{
    if (old_size > size) return OP_ESIG;
    if (old_size == size)
        return len == 0 && sodium_memcmp(old_root, root, 32) == 0 ? OP_OK : OP_ESIG;
    if (old_size == 0) return len == 0 ? OP_OK : OP_ESIG;
    if (len == 0) return OP_ESIG;
    /* When old_size is a power of two its root is the first element of the path. */
    int prepend = (old_size & (old_size - 1)) == 0;
    size_t total = len + (size_t)prepend;
    uint64_t fn = old_size - 1, sn = size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[32], sr[32];
    const uint8_t *first = prepend ? old_root : proof[0];
    memcpy(fr, first, 32);
    memcpy(sr, first, 32);
    for (size_t i = 1; i < total; i++) {
        const uint8_t *c = proof[i - (size_t)prepend];
        if (sn == 0) return OP_ESIG;
        if ((fn & 1) || fn == sn) {
            audit_node_hash(c, fr, fr);
            audit_node_hash(c, sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            audit_node_hash(sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(fr, old_root, 32) == 0 && sodium_memcmp(sr, root, 32) == 0
               ? OP_OK
               : OP_ESIG;
}

static void sth_message(const audit_sth *sth, uint8_t msg[14 + 8 + 8 + 32])
{
    memcpy(msg, "outpost-sth-v1", 14);
    for (int i = 0; i < 8; i++)
        msg[14 + i] = (uint8_t)(sth->size >> (56 - 8 * i));
    for (int i = 0; i < 8; i++)
        msg[22 + i] = (uint8_t)((uint64_t)sth->ts_ms >> (56 - 8 * i));
    memcpy(msg + 30, sth->root, 32);
}

void audit_sth_sign(const ident *log_key, audit_sth *sth)
{
    uint8_t msg[62];
    sth_message(sth, msg);
    ident_sign(log_key, msg, sizeof msg, sth->sig);
}

int audit_sth_verify(const uint8_t pk[32], const audit_sth *sth)
{
    uint8_t msg[62];
    sth_message(sth, msg);
    return ident_verify(pk, msg, sizeof msg, sth->sig);
}
