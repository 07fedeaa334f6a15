/*
 * ident: an Ed25519 identity (hub, site or operator), kept in a directory
 * as identity.key (secret key, hex, mode 0600) and identity.pub (public
 * key, hex). Generated on first use.
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

/*
 * Loads dir/identity.key or creates it (and dir) when missing. A key file
 * readable by group or others is refused (OP_EPERM): fix its mode to 0600.
 * Errors: OP_EIO, OP_EINVAL (corrupt key file), OP_EPERM.
 */
int ident_load_or_create(const char *dir, const char *id, ident *out);
/* Zeroes the secret key. */
void ident_wipe(ident *identity);
/* Ed25519 signature of data. */
void ident_sign(const ident *identity, const void *data, size_t len, uint8_t sig[64]);
/* OP_OK if sig is pk's signature of data, else OP_ESIG. */
int ident_verify(const uint8_t pk[32], const void *data, size_t len, const uint8_t sig[64]);

#endif
