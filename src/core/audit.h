/*
 * audit: the Merkle tree of the tamper-evident log, as in RFC 6962 /
 * RFC 9162 (Certificate Transparency), with no I/O.
 *
 *   leaf hash  = SHA-256(0x00 || entry)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH(D[n])  = the root over n leaves, split at the largest power of two
 *                smaller than n; MTH of no leaves = SHA-256("").
 *
 * Proofs are built from subtree hashes supplied by the caller's storage
 * (audit_subtree_fn), so that this module stays pure; verification needs
 * nothing but the proof and trusts nothing the log says. Signed tree heads
 * bind (size, root, time) with the log's Ed25519 key.
 */
#ifndef OUTPOST_AUDIT_H
#define OUTPOST_AUDIT_H

#include "wire/ident.h"

#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_BYTES 32
/* Proofs are at most 2 x ceil(log2(size)) hashes; 128 covers any 64-bit size. */
#define AUDIT_MAX_PROOF 128

/*
 * Use OpenSSL's SHA-256 (CPU SHA extensions) from now on: for programs that
 * verify whole logs. Daemons leave it off and use libsodium.
 */
void audit_hash_accelerate(int on);

void audit_leaf_hash(const void *entry, size_t len, uint8_t out[32]);
void audit_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);
void audit_empty_root(uint8_t out[32]);

/* Largest power of two strictly smaller than n (n >= 2). */
uint64_t audit_split(uint64_t n);

/*
 * Reference root over n leaf hashes (O(n) time, O(log n) stack): what every
 * optimized path is checked against.
 */
void audit_root_of(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[32]);

/*
 * Supplies MTH(D[start:end]) for 0 <= start < end <= size, from storage.
 * Returns OP_OK or an error, which the caller passes through.
 */
typedef int (*audit_subtree_fn)(void *ctx, uint64_t start, uint64_t end, uint8_t out[32]);

/*
 * PATH(index, D[size]) of RFC 6962 2.1.1. *len receives the number of
 * hashes written to proof. OP_EINVAL if index >= size.
 */
int audit_inclusion_proof(uint64_t index, uint64_t size, audit_subtree_fn subtree, void *ctx,
                          uint8_t proof[][32], size_t *len);

/* PROOF(old_size, D[size]) of RFC 6962 2.1.2. OP_EINVAL unless 0 < old_size <= size. */
int audit_consistency_proof(uint64_t old_size, uint64_t size, audit_subtree_fn subtree, void *ctx,
                            uint8_t proof[][32], size_t *len);

/* RFC 9162 2.1.3.2. OP_OK if leaf is entry index of the tree (size, root), else OP_ESIG. */
int audit_verify_inclusion(const uint8_t leaf[32], uint64_t index, uint64_t size,
                           const uint8_t proof[][32], size_t len, const uint8_t root[32]);

/*
 * RFC 9162 2.1.4.2. OP_OK if the tree (size, root) extends (old_size,
 * old_root), else OP_ESIG. Equal sizes need an empty proof and equal roots;
 * an old size of 0 is consistent with anything.
 */
int audit_verify_consistency(uint64_t old_size, uint64_t size, const uint8_t old_root[32],
                             const uint8_t root[32], const uint8_t proof[][32], size_t len);

/* A signed tree head. */
typedef struct audit_sth {
    uint64_t size;
    uint8_t root[32];
    int64_t ts_ms;
    uint8_t sig[64];
} audit_sth;

/* Signs "outpost-sth-v1" || size || ts || root (big-endian integers). */
void audit_sth_sign(const ident *log_key, audit_sth *sth);
/* OP_OK if sth carries pk's signature, else OP_ESIG. */
int audit_sth_verify(const uint8_t pk[32], const audit_sth *sth);

#endif
