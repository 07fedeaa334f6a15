#include "wire/ident.h"

#include "base/err.h"
#include "base/util.h"

#include <sodium.h>
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
