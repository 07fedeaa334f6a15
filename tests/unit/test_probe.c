/*
 * Unit tests of the capacity probe's puzzle (src/core/probe.c): solutions
 * found by the search pass the check and non-solutions, repeats, nonces out
 * of range and too many nonces are refused; the digest is SHA-256 of seed
 * and nonce as documented (checked against libsodium); the difficulty
 * aims at the target count; the estimate and the verdict.
 */
#include "base/err.h"
#include "core/probe.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t seed[PROBE_SEED_BYTES];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < PROBE_SEED_BYTES; i++)
        seed[i] = (uint8_t)(i * 7 + 3);
    return sodium_init() < 0 ? -1 : 0;
}

/* Solutions of difficulty bits from nonce 0 on, n of them. */
static void find(probe_hasher *hs, int bits, uint64_t *found, size_t n)
{
    size_t got = 0;
    uint64_t next = 0;
    while (got < n)
        probe_search(hs, seed, bits, &next, 1000, found, n, &got);
}

static void test_found_solutions_pass_the_check(void **state)
{
    (void)state;
    probe_hasher *hs = probe_hasher_new();
    assert_non_null(hs);
    uint64_t found[50];
    char why[160] = "";
    find(hs, 8, found, 50);
    assert_int_equal(probe_check(hs, seed, 8, found, 50, why, sizeof why), OP_OK);
    assert_int_equal(probe_check(hs, seed, 8, found, 0, why, sizeof why), OP_OK);
    probe_hasher_free(hs);
}

/* The digest is the documented one: SHA-256 of seed || nonce (little-endian), by libsodium. */
static void test_digest_is_sha256_of_seed_and_nonce(void **state)
{
    (void)state;
    probe_hasher *hs = probe_hasher_new();
    uint64_t found[20];
    find(hs, 10, found, 20);
    for (int i = 0; i < 20; i++) {
        uint8_t msg[40], d[32];
        memcpy(msg, seed, 32);
        for (int b = 0; b < 8; b++)
            msg[32 + b] = (uint8_t)(found[i] >> (8 * b));
        crypto_hash_sha256(d, msg, sizeof msg);
        assert_int_equal(d[0], 0);
        assert_int_equal(d[1] >> 6, 0); /* 10 leading zero bits */
    }
    probe_hasher_free(hs);
}

static void test_forgeries_refused(void **state)
{
    (void)state;
    probe_hasher *hs = probe_hasher_new();
    uint64_t found[40];
    char why[160] = "";
    find(hs, 12, found, 40);
    uint64_t bad[40];
    /* a nonce that is not a solution (the one before a solution rarely is one) */
    memcpy(bad, found, sizeof bad);
    bad[17] = found[17] + 1;
    if (probe_solves(hs, seed, 12, bad[17])) bad[17]++;
    assert_int_equal(probe_check(hs, seed, 12, bad, 40, why, sizeof why), OP_ESIG);
    assert_non_null(strstr(why, "not a solution"));
    /* a repeat */
    memcpy(bad, found, sizeof bad);
    bad[30] = bad[3];
    assert_int_equal(probe_check(hs, seed, 12, bad, 40, why, sizeof why), OP_ESIG);
    assert_non_null(strstr(why, "twice"));
    /* out of range */
    memcpy(bad, found, sizeof bad);
    bad[0] = PROBE_MAX_NONCE + 1;
    assert_int_equal(probe_check(hs, seed, 12, bad, 40, why, sizeof why), OP_ESIG);
    assert_non_null(strstr(why, "out of range"));
    /* too many */
    uint64_t *many = calloc(PROBE_MAX_SOLUTIONS + 1, sizeof *many);
    assert_int_equal(probe_check(hs, seed, 12, many, PROBE_MAX_SOLUTIONS + 1, why, sizeof why),
                     OP_ESIG);
    free(many);
    /* another seed: the same nonces prove nothing */
    uint8_t other[PROBE_SEED_BYTES];
    memcpy(other, seed, sizeof other);
    other[5] ^= 1;
    assert_int_equal(probe_check(hs, other, 12, found, 40, why, sizeof why), OP_ESIG);
    probe_hasher_free(hs);
}

/* About one in 2^bits nonces solves: 2^16 tried at 8 bits give about 256. */
static void test_solution_density(void **state)
{
    (void)state;
    probe_hasher *hs = probe_hasher_new();
    uint64_t next = 0, found[1];
    size_t n = 0;
    size_t hits = probe_search(hs, seed, 8, &next, 1 << 16, found, 1, &n);
    assert_int_equal(next, 1 << 16);
    assert_int_equal(n, 1);
    assert_true(hits > 200 && hits < 320);
    probe_hasher_free(hs);
}

static void test_bits_aim_at_the_target(void **state)
{
    (void)state;
    /* 10 M/s per core, 2 cores, 2 s: 40 M hashes, 256 wanted: 2^17 = 131072 each */
    int bits = probe_bits_for(10e6, 2, 2000);
    assert_int_equal(bits, 17);
    double expected = 10e6 * 2 * 2.0 / ldexp(1.0, bits);
    assert_true(expected >= PROBE_TARGET_SOLUTIONS && expected < 2 * PROBE_TARGET_SOLUTIONS);
    assert_int_equal(probe_bits_for(10e6, 64, 2000), 22);
    assert_int_equal(probe_bits_for(1.0, 1, 100), PROBE_MIN_BITS);
    assert_int_equal(probe_bits_for(1e30, 1024, 10000), PROBE_MAX_BITS);
    assert_int_equal(probe_bits_for(10e6, 0, 2000), PROBE_MIN_BITS);
    assert_int_equal(probe_bits_for(10e6, 0.25, 2000), 14); /* 2 cores over a tolerance of 8 */
}

static void test_estimate(void **state)
{
    (void)state;
    /* 256 solutions of 2^17 in 2 s at 10 M/s per core: 1.68 cores */
    double cores = probe_effective_cores(256, 17, 2000, 10e6);
    assert_true(fabs(cores - 256.0 * 131072 / 2.0 / 10e6) < 1e-9);
    assert_true(probe_effective_cores(0, 17, 2000, 10e6) == 0.0);
    assert_true(probe_effective_cores(10, 17, 0, 10e6) == 0.0);
    assert_true(probe_effective_cores(10, 17, 2000, 0) == 0.0);
}

static void test_verdict(void **state)
{
    (void)state;
    int counted = -1;
    assert_int_equal(probe_judge(1.9, 2, 8, &counted), PROBE_OK);
    assert_int_equal(counted, 2);
    assert_int_equal(probe_judge(0.3, 2, 8, &counted), PROBE_OK); /* slow cores, within 8x */
    assert_int_equal(probe_judge(1.9, 64, 8, &counted), PROBE_OVERCLAIMS);
    assert_int_equal(counted, 2);
    assert_int_equal(probe_judge(7.9, 64, 8, &counted), PROBE_OVERCLAIMS);
    assert_int_equal(counted, 8);
    assert_int_equal(probe_judge(8.0, 64, 8, &counted), PROBE_OK);
    assert_int_equal(counted, 64);
    assert_int_equal(probe_judge(0.0, 4, 4, &counted), PROBE_OVERCLAIMS);
    assert_int_equal(counted, 1); /* never below one core */
    assert_int_equal(probe_judge(0.5, 4, 0.1, &counted), PROBE_OVERCLAIMS); /* tolerance >= 1 */
    assert_int_equal(probe_judge(0.0, 0, 4, &counted), PROBE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_solutions_pass_the_check),
        cmocka_unit_test(test_digest_is_sha256_of_seed_and_nonce),
        cmocka_unit_test(test_forgeries_refused),
        cmocka_unit_test(test_solution_density),
        cmocka_unit_test(test_bits_aim_at_the_target),
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_verdict),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
