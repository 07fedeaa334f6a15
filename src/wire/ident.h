/*
 * ident: an Ed25519 identity (hub, site or operator) and its signatures.
 * Pure: loading and creating the key files is io/keyfile's job.
 */
#ifndef OUTPOST_IDENT_H
#define OUTPOST_IDENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ident {
    char id[64]; /* hub, site or operator id */
    uint8_t pk[32];
    uint8_t sk[64];
    char pk_hex[65];
} ident;

/* Zeroes the secret key. */
void ident_wipe(ident *identity);
/* Ed25519 signature of data. */
void ident_sign(const ident *identity, const void *data, size_t len, uint8_t sig[64]);
/* OP_OK if sig is pk's signature of data, else OP_ESIG. */
int ident_verify(const uint8_t pk[32], const void *data, size_t len, const uint8_t sig[64]);

#endif
