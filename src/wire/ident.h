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

/* What a sealed box adds to its plaintext: an ephemeral X25519 key and a MAC. */
#define IDENT_SEAL_OVERHEAD_BYTES 48

/*
 * The binary sealed box of len bytes to the holder of the Ed25519 key pk
 * (see ident_seal): out receives len + IDENT_SEAL_OVERHEAD_BYTES bytes.
 * OP_OK, OP_EINVAL (pk is not a valid key).
 */
int ident_seal_bytes(const uint8_t pk[32], const void *data, size_t len, uint8_t *out);
/*
 * Opens a binary sealed box made for this identity: out receives
 * box_len - IDENT_SEAL_OVERHEAD_BYTES bytes. OP_OK, OP_EINVAL (too short,
 * not sealed to this identity, or altered).
 */
int ident_open_bytes(const ident *identity, const void *box, size_t box_len, uint8_t *out);

/*
 * A sealed box (libsodium crypto_box_seal: an ephemeral X25519 key and
 * XSalsa20-Poly1305) of len bytes to the holder of the Ed25519 key pk, whose
 * X25519 key is derived from it: only that identity can open it, and nobody
 * on the way (the broker, its other clients) reads it. *out is base64 text,
 * malloc'd (the caller frees). OP_OK, OP_EINVAL (pk is not a valid key),
 * OP_ENOMEM.
 */
int ident_seal(const uint8_t pk[32], const void *data, size_t len, char **out);
/*
 * Opens what ident_seal made for this identity: *out is the plaintext,
 * NUL-terminated and malloc'd (the caller frees), *out_len its length.
 * OP_OK, OP_EINVAL (not base64, not sealed to this identity, or altered),
 * OP_ETOOBIG (over max_len), OP_ENOMEM.
 */
int ident_open_sealed(const ident *identity, const char *sealed, size_t max_len, char **out,
                      size_t *out_len);

#endif
