/*
 * probe: the capacity probe's puzzle, its check and the estimate drawn from
 * it (pure: no I/O, no clock; the callers time it).
 *
 * A site says how many cores it has; the hub asks it to prove it. The hub
 * sends a random 32-byte seed and a difficulty of k bits; the site hashes
 * for a while on the cores it says are free and sends back every nonce it
 * found whose
 *
 *   SHA-256(seed || nonce as 8 bytes, little-endian)
 *
 * starts with k zero bits. Finding one costs 2^k hashes on average and
 * cannot be done ahead (the seed is new) or skipped (each nonce is checked);
 * checking one costs the hub one hash. So the count of solutions, times 2^k,
 * over the time the hub itself measured from sending the challenge to
 * receiving the answer, is the site's hash rate whatever the site says; over
 * the hub's own single-core rate, its effective cores. A site can look
 * faster only by hashing faster (more or faster cores, SHA instructions, a
 * GPU), never by saying so. docs/verification.md ("Claims") has the rule the
 * hub applies to the estimate.
 *
 * Hashing uses OpenSSL's SHA-256 (the CPU's SHA extensions where present:
 * 3.5x libsodium's portable code here), so that an honest site does not
 * lose to a tuned one by the width of an implementation; libsodium when
 * OpenSSL cannot provide it. Both compute the same digest.
 */
#ifndef OUTPOST_PROBE_H
#define OUTPOST_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_SEED_BYTES 32
#define PROBE_MIN_BITS 1
#define PROBE_MAX_BITS 40
/* Solutions a probe aims at on the cores it asks for: a 6% estimate, 5 KB of nonces. */
#define PROBE_TARGET_SOLUTIONS 256
/* At most this many nonces in an answer (a site that finds them sooner stops early). */
#define PROBE_MAX_SOLUTIONS 4096
/* Nonces are JSON numbers: exact up to 2^53 - 1. */
#define PROBE_MAX_NONCE ((UINT64_C(1) << 53) - 1)
/* Lanes (threads) a probe asks for at most, and how long it may run. */
#define PROBE_MAX_LANES 1024
#define PROBE_MIN_MS 100
#define PROBE_MAX_MS 10000

/* One hashing context (one per thread). Opaque; probe_hasher_new / probe_hasher_free. */
typedef struct probe_hasher probe_hasher;

/* A hasher, or NULL when out of memory. */
probe_hasher *probe_hasher_new(void);
/* Releases it (NULL is fine). */
void probe_hasher_free(probe_hasher *hs);

/* 1 when nonce solves the puzzle (seed, bits), else 0. */
int probe_solves(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], int bits, uint64_t nonce);

/*
 * Tries count nonces from *next upwards, appending each solution to
 * found[*n_found] while *n_found < max_found; *next moves past the tried
 * ones. Returns the number of solutions found in this call (those that did
 * not fit in found included).
 */
size_t probe_search(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], int bits,
                    uint64_t *next, uint64_t count, uint64_t *found, size_t max_found,
                    size_t *n_found);

/*
 * The difficulty for a probe of duration_ms when one core hashes core_rate
 * times a second: the largest k at which `cores` cores find at least
 * PROBE_TARGET_SOLUTIONS on average (between that and twice that), within
 * [PROBE_MIN_BITS, PROBE_MAX_BITS]. The hub sizes it for the least a site
 * may show (its claim over the tolerance), so that an over-claimer's
 * measure still rests on enough solutions; an honest site reaches
 * PROBE_MAX_SOLUTIONS early and answers then.
 */
int probe_bits_for(double core_rate, double cores, int64_t duration_ms);

/*
 * Checks an answer: at most PROBE_MAX_SOLUTIONS nonces, each at most
 * PROBE_MAX_NONCE, none twice, each a solution of (seed, bits). OP_OK, or
 * OP_ESIG with the first fault in why (a forged answer); OP_ENOMEM.
 */
int probe_check(probe_hasher *hs, const uint8_t seed[PROBE_SEED_BYTES], int bits,
                const uint64_t *nonces, size_t n, char *why, size_t why_len);

/*
 * Effective cores: n solutions of difficulty bits in elapsed_ms (the hub's
 * own measure) over core_rate hashes a second per core. 0 when elapsed_ms
 * or core_rate is not positive.
 */
double probe_effective_cores(size_t n, int bits, int64_t elapsed_ms, double core_rate);

/* The verdict on an estimate. */
typedef enum probe_verdict {
    PROBE_OK = 0,     /* measured at least claimed / tolerance */
    PROBE_OVERCLAIMS, /* measured less: counted as measured */
} probe_verdict;

/*
 * Whether measured effective cores bear out claimed ones with the given
 * tolerance (>= 1: how much slower than the hub's a site's cores may be),
 * and the cores placement should count on: claimed when they are borne out,
 * else the measure rounded, at least 1.
 */
probe_verdict probe_judge(double measured, int claimed, double tolerance, int *counted);

#endif
