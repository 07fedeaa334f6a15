/*
 * Unit tests of the Merkle tree core (src/audit.c): roots against the
 * reference recursion and RFC 6962 test vectors, every inclusion and
 * consistency proof for trees up to 70 leaves checked by the verifiers,
 * and tampered proofs, sizes and roots rejected. The independent check in
 * Python (hashlib only) is tests/integration/test_audit_python.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "core/audit.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEAVES 1000

typedef struct tree {
    uint8_t (*leaves)[32];
    uint64_t n;
} tree;

static int subtree(void *ctx, uint64_t start, uint64_t end, uint8_t out[32])
{
    tree *t = ctx;
    if (start >= end || end > t->n) return OP_EINVAL;
    audit_root_of((const uint8_t(*)[32])(t->leaves + start), end - start, out);
    return OP_OK;
}

static tree make_tree(uint64_t n)
{
    tree t = {calloc(n ? n : 1, 32), n};
    for (uint64_t i = 0; i < n; i++) {
        char entry[32];
        snprintf(entry, sizeof entry, "entry-%llu", (unsigned long long)i);
        audit_leaf_hash(entry, strlen(entry), t.leaves[i]);
    }
    return t;
}

static void hex_of(const uint8_t h[32], char out[65])
{
    util_hex(h, 32, out);
}

static void test_empty_and_single(void **state)
{
    (void)state;
    uint8_t root[32];
    char hex[65];
    audit_root_of(NULL, 0, root);
    hex_of(root, hex);
    /* SHA-256 of the empty string (RFC 6962: MTH({}) = SHA-256()). */
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* RFC 6962 test vector: the leaf hash of the empty entry, SHA-256(0x00). */
    uint8_t leaf[32];
    audit_leaf_hash("", 0, leaf);
    hex_of(leaf, hex);
    assert_string_equal(hex, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    audit_root_of((const uint8_t(*)[32]) & leaf, 1, root);
    assert_memory_equal(root, leaf, 32);
}

static void test_split(void **state)
{
    (void)state;
    assert_int_equal(audit_split(2), 1);
    assert_int_equal(audit_split(3), 2);
    assert_int_equal(audit_split(4), 2);
    assert_int_equal(audit_split(5), 4);
    assert_int_equal(audit_split(8), 4);
    assert_int_equal(audit_split(9), 8);
    assert_int_equal(audit_split(1000), 512);
}

static void test_root_shapes(void **state)
{
    (void)state;
    tree t = make_tree(3);
    uint8_t ab[32], want[32], root[32];
    audit_node_hash(t.leaves[0], t.leaves[1], ab);
    audit_node_hash(ab, t.leaves[2], want);
    audit_root_of((const uint8_t(*)[32])t.leaves, 3, root);
    assert_memory_equal(root, want, 32);
    /* Leaf and node hashes are domain-separated: a node is never a leaf of its bytes. */
    uint8_t buf[64], as_leaf[32];
    memcpy(buf, t.leaves[0], 32);
    memcpy(buf + 32, t.leaves[1], 32);
    audit_leaf_hash(buf, 64, as_leaf);
    assert_memory_not_equal(as_leaf, ab, 32);
    free(t.leaves);
}

static void test_all_inclusion_proofs_verify(void **state)
{
    (void)state;
    for (uint64_t n = 1; n <= 70; n++) {
        tree t = make_tree(n);
        uint8_t root[32], proof[AUDIT_MAX_PROOF][32];
        audit_root_of((const uint8_t(*)[32])t.leaves, n, root);
        for (uint64_t i = 0; i < n; i++) {
            size_t len = 0;
            assert_int_equal(audit_inclusion_proof(i, n, subtree, &t, proof, &len), OP_OK);
            assert_int_equal(
                audit_verify_inclusion(t.leaves[i], i, n, (const uint8_t(*)[32])proof, len, root),
                OP_OK);
            /* The wrong leaf or index, or a flipped or truncated proof, fail. */
            uint64_t other = (i + 1) % n;
            if (other != i)
                assert_int_equal(audit_verify_inclusion(t.leaves[other], i, n,
                                                        (const uint8_t(*)[32])proof, len, root),
                                 OP_ESIG);
            /* (A wrong size can have the same path shape: the size is bound by the signed
             * tree head, not by the proof, as in RFC 9162.) */
            assert_int_equal(
                audit_verify_inclusion(t.leaves[i], n, n, (const uint8_t(*)[32])proof, len, root),
                OP_ESIG);
            if (len > 0) {
                proof[len / 2][7] ^= 0x40;
                assert_int_equal(audit_verify_inclusion(t.leaves[i], i, n,
                                                        (const uint8_t(*)[32])proof, len, root),
                                 OP_ESIG);
                /* A truncated proof fails too. */
                proof[len / 2][7] ^= 0x40;
                assert_int_equal(audit_verify_inclusion(t.leaves[i], i, n,
                                                        (const uint8_t(*)[32])proof, len - 1, root),
                                 OP_ESIG);
            }
        }
        size_t len;
        assert_int_equal(audit_inclusion_proof(n, n, subtree, &t, proof, &len), OP_EINVAL);
        free(t.leaves);
    }
}

static void test_all_consistency_proofs_verify(void **state)
{
    (void)state;
    tree t = make_tree(70);
    uint8_t roots[71][32];
    for (uint64_t n = 0; n <= 70; n++)
        audit_root_of((const uint8_t(*)[32])t.leaves, n, roots[n]);
    uint8_t proof[AUDIT_MAX_PROOF][32];
    for (uint64_t n = 1; n <= 70; n++) {
        t.n = n;
        for (uint64_t m = 1; m <= n; m++) {
            size_t len = 0;
            assert_int_equal(audit_consistency_proof(m, n, subtree, &t, proof, &len), OP_OK);
            if (m == n) assert_int_equal(len, 0);
            assert_int_equal(audit_verify_consistency(m, n, roots[m], roots[n],
                                                      (const uint8_t(*)[32])proof, len),
                             OP_OK);
            if (m < n) {
                /* A rewritten history (another old root) or a forged new root fails. */
                assert_int_equal(audit_verify_consistency(m, n, roots[m - 1], roots[n],
                                                          (const uint8_t(*)[32])proof, len),
                                 OP_ESIG);
                assert_int_equal(audit_verify_consistency(m, n, roots[m], roots[n - 1],
                                                          (const uint8_t(*)[32])proof, len),
                                 OP_ESIG);
                proof[0][0] ^= 1;
                assert_int_equal(audit_verify_consistency(m, n, roots[m], roots[n],
                                                          (const uint8_t(*)[32])proof, len),
                                 OP_ESIG);
                proof[0][0] ^= 1;
                assert_int_equal(audit_verify_consistency(m, n, roots[m], roots[n],
                                                          (const uint8_t(*)[32])proof, 0),
                                 OP_ESIG);
            }
        }
        size_t len;
        assert_int_equal(audit_consistency_proof(0, n, subtree, &t, proof, &len), OP_EINVAL);
        assert_int_equal(audit_consistency_proof(n + 1, n, subtree, &t, proof, &len), OP_EINVAL);
    }
    /* Edge cases of the verifier. */
    assert_int_equal(audit_verify_consistency(0, 5, roots[0], roots[5], NULL, 0), OP_OK);
    assert_int_equal(audit_verify_consistency(5, 5, roots[5], roots[5], NULL, 0), OP_OK);
    assert_int_equal(audit_verify_consistency(5, 5, roots[5], roots[4], NULL, 0), OP_ESIG);
    assert_int_equal(audit_verify_consistency(6, 5, roots[6], roots[5], NULL, 0), OP_ESIG);
    free(t.leaves);
}

static void test_proof_sizes_are_logarithmic(void **state)
{
    (void)state;
    tree t = make_tree(MAX_LEAVES);
    uint8_t proof[AUDIT_MAX_PROOF][32];
    size_t len;
    assert_int_equal(audit_inclusion_proof(517, MAX_LEAVES, subtree, &t, proof, &len), OP_OK);
    assert_true(len <= 10); /* ceil(log2(1000)) */
    assert_int_equal(audit_consistency_proof(300, MAX_LEAVES, subtree, &t, proof, &len), OP_OK);
    assert_true(len <= 20);
    free(t.leaves);
}

static void test_accelerated_hash_is_the_same(void **state)
{
    (void)state;
    tree t = make_tree(100);
    uint8_t plain[32], fast[32], leaf_plain[32], leaf_fast[32];
    audit_hash_accelerate(0);
    audit_root_of((const uint8_t(*)[32])t.leaves, 100, plain);
    audit_leaf_hash("entry-7", 7, leaf_plain);
    audit_hash_accelerate(1);
    audit_root_of((const uint8_t(*)[32])t.leaves, 100, fast);
    audit_leaf_hash("entry-7", 7, leaf_fast);
    audit_hash_accelerate(0);
    assert_memory_equal(plain, fast, 32);
    assert_memory_equal(leaf_plain, leaf_fast, 32);
    assert_memory_equal(leaf_plain, t.leaves[7], 32);
    free(t.leaves);
}

static void test_signed_tree_head(void **state)
{
    (void)state;
    ident key, other;
    memset(&key, 0, sizeof key);
    memset(&other, 0, sizeof other);
    crypto_sign_keypair(key.pk, key.sk);
    crypto_sign_keypair(other.pk, other.sk);
    audit_sth sth = {.size = 1000, .ts_ms = 1795816226000};
    memset(sth.root, 0xab, 32);
    audit_sth_sign(&key, &sth);
    assert_int_equal(audit_sth_verify(key.pk, &sth), OP_OK);
    assert_int_equal(audit_sth_verify(other.pk, &sth), OP_ESIG);
    sth.size = 999;
    assert_int_equal(audit_sth_verify(key.pk, &sth), OP_ESIG);
    sth.size = 1000;
    sth.ts_ms++;
    assert_int_equal(audit_sth_verify(key.pk, &sth), OP_ESIG);
    sth.ts_ms--;
    sth.root[31] ^= 1;
    assert_int_equal(audit_sth_verify(key.pk, &sth), OP_ESIG);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_root_shapes),
        cmocka_unit_test(test_all_inclusion_proofs_verify),
        cmocka_unit_test(test_all_consistency_proofs_verify),
        cmocka_unit_test(test_proof_sizes_are_logarithmic),
        cmocka_unit_test(test_accelerated_hash_is_the_same),
        cmocka_unit_test(test_signed_tree_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
