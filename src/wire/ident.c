#include "wire/ident.h"

#include "base/err.h"
#include "base/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void ident_wipe(ident *identity)
{
    sodium_memzero(identity->sk, sizeof identity->sk);
}

void ident_sign(const ident *identity, const void *data, size_t len, uint8_t sig[64])
{
    crypto_sign_detached(sig, NULL, data, len, identity->sk);
}

int ident_verify(const uint8_t pk[32], const void *data, size_t len, const uint8_t sig[64])
{
    return crypto_sign_verify_detached(sig, data, len, pk) == 0 ? OP_OK : OP_ESIG;
}

_Static_assert(IDENT_SEAL_OVERHEAD_BYTES == crypto_box_SEALBYTES, "sealed box overhead");

int ident_seal_bytes(const uint8_t pk[32], const void *data, size_t len, uint8_t *out)
{
    uint8_t x_pk[crypto_box_PUBLICKEYBYTES];
    if (crypto_sign_ed25519_pk_to_curve25519(x_pk, pk) != 0) return OP_EINVAL;
    return crypto_box_seal(out, data, len, x_pk) == 0 ? OP_OK : OP_EINVAL;
}

int ident_open_bytes(const ident *identity, const void *box, size_t box_len, uint8_t *out)
{
    uint8_t x_pk[crypto_box_PUBLICKEYBYTES], x_sk[crypto_box_SECRETKEYBYTES];
    int rc = OP_EINVAL;
    if (box_len >= crypto_box_SEALBYTES &&
        crypto_sign_ed25519_pk_to_curve25519(x_pk, identity->pk) == 0 &&
        crypto_sign_ed25519_sk_to_curve25519(x_sk, identity->sk) == 0 &&
        crypto_box_seal_open(out, box, box_len, x_pk, x_sk) == 0)
        rc = OP_OK;
    sodium_memzero(x_sk, sizeof x_sk);
    return rc;
}

int ident_seal(const uint8_t pk[32], const void *data, size_t len, char **out)
{
    *out = NULL;
    uint8_t *box = malloc(len + crypto_box_SEALBYTES);
    if (!box) return OP_ENOMEM;
    int rc = ident_seal_bytes(pk, data, len, box);
    if (rc == OP_OK) {
        *out = util_b64_encode(box, len + crypto_box_SEALBYTES);
        if (!*out) rc = OP_ENOMEM;
    }
    free(box);
    return rc;
}

int ident_open_sealed(const ident *identity, const char *sealed, size_t max_len, char **out,
                      size_t *out_len)
{
    uint8_t *box = NULL;
    size_t box_len = 0;
    *out = NULL;
    int rc = util_b64_decode(sealed, max_len + crypto_box_SEALBYTES, &box, &box_len);
    if (rc != OP_OK) return rc;
    if (box_len < crypto_box_SEALBYTES) {
        free(box);
        return OP_EINVAL;
    }
    size_t len = box_len - crypto_box_SEALBYTES;
    char *plain = malloc(len + 1);
    if (!plain) {
        rc = OP_ENOMEM;
    } else if ((rc = ident_open_bytes(identity, box, box_len, (uint8_t *)plain)) != OP_OK) {
        free(plain);
    } else {
        plain[len] = '\0';
        *out = plain;
        if (out_len) *out_len = len;
    }
    free(box);
    return rc;
}
