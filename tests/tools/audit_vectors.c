/*
 * Prints, as JSON, what src/core/audit.c computes for entries "entry-0",
 * "entry-1", ...: roots for tree sizes 0, 1, 2, 3, 7, 8 and 1000, inclusion
 * proofs and consistency proofs. tests/integration/test_audit_python.py
 * recomputes all of it with Python's hashlib alone.
 */
#include "base/err.h"
#include "base/util.h"
#include "core/audit.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000

static uint8_t leaves[N][32];

static int subtree(void *ctx, uint64_t start, uint64_t end, uint8_t out[32])
{
    (void)ctx;
    if (start >= end || end > N) return OP_EINVAL;
    audit_root_of((const uint8_t(*)[32])(leaves + start), end - start, out);
    return OP_OK;
}

static void print_hashes(uint8_t proof[][32], size_t len)
{
    printf("[");
    for (size_t i = 0; i < len; i++) {
        char hex[65];
        util_hex(proof[i], 32, hex);
        printf("%s\"%s\"", i ? "," : "", hex);
    }
    printf("]");
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    for (int i = 0; i < N; i++) {
        char entry[32];
        snprintf(entry, sizeof entry, "entry-%d", i);
        audit_leaf_hash(entry, strlen(entry), leaves[i]);
    }
    static const uint64_t sizes[] = {0, 1, 2, 3, 7, 8, 1000};
    printf("{\"roots\":{");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint8_t root[32];
        char hex[65];
        audit_root_of((const uint8_t(*)[32])leaves, sizes[s], root);
        util_hex(root, 32, hex);
        printf("%s\"%llu\":\"%s\"", s ? "," : "", (unsigned long long)sizes[s], hex);
    }
    printf("},\"inclusion\":[");
    static const uint64_t inc[][2] = {{0, 1}, {0, 2}, {1, 2},    {2, 3},      {0, 7},
                                      {6, 7}, {3, 8}, {0, 1000}, {517, 1000}, {999, 1000}};
    uint8_t proof[AUDIT_MAX_PROOF][32];
    size_t len;
    for (size_t k = 0; k < sizeof inc / sizeof inc[0]; k++) {
        if (audit_inclusion_proof(inc[k][0], inc[k][1], subtree, NULL, proof, &len) != OP_OK)
            return 1;
        printf("%s{\"index\":%llu,\"size\":%llu,\"proof\":", k ? "," : "",
               (unsigned long long)inc[k][0], (unsigned long long)inc[k][1]);
        print_hashes(proof, len);
        printf("}");
    }
    printf("],\"consistency\":[");
    static const uint64_t con[][2] = {{1, 1}, {1, 2},    {1, 3},    {2, 3},      {3, 7},     {4, 7},
                                      {7, 8}, {1, 1000}, {8, 1000}, {999, 1000}, {513, 1000}};
    for (size_t k = 0; k < sizeof con / sizeof con[0]; k++) {
        if (audit_consistency_proof(con[k][0], con[k][1], subtree, NULL, proof, &len) != OP_OK)
            return 1;
        printf("%s{\"old\":%llu,\"size\":%llu,\"proof\":", k ? "," : "",
               (unsigned long long)con[k][0], (unsigned long long)con[k][1]);
        print_hashes(proof, len);
        printf("}");
    }
    printf("]}\n");
    return 0;
}
