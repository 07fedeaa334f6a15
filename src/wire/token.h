/*
 * token: one-time join tokens (pure, no I/O).
 *
 * Text form: "opt1.<claims>.<sig>", both parts base64url. Claims are JSON
 * {"tid","cls","hub","hpk","exp"}: token id, site class the site will get,
 * hub id, hub public key (hex) and expiry (ms since epoch). sig is the hub's
 * Ed25519 signature over "opt1.<claims>". A site pins hpk as the only key
 * it trusts for hub messages; the hub checks the signature with its own key
 * and that tid was issued by it, is unused and unexpired (its store).
 */
#ifndef OUTPOST_TOKEN_H
#define OUTPOST_TOKEN_H

#include "wire/ident.h"

#include <stdint.h>

#define TOKEN_MAX_TEXT 1024

typedef struct token {
    char tid[33];
    char cls[8];
    char hub_id[64];
    uint8_t hub_pk[32];
    int64_t expires_ms;
} token;

/* Valid site classes: "pod" (charging-site pod), "car" (parked car), "dc" (on-site data center). */
int token_valid_class(const char *cls);

/* Issues a token (random tid). *text is malloc'd (caller frees). OP_EINVAL for a bad class. */
int token_create(const ident *hub, const char *cls, int64_t expires_ms, char **text, token *out);

/*
 * Parses text and checks its signature against the key it carries.
 * OP_EINVAL (malformed, with reason), OP_ESIG (signature does not verify).
 */
int token_parse(const char *text, token *out, char *reason, size_t reason_len);

/*
 * Full hub-side check: parse, signed by hub_pk, not expired at now_ms.
 * OP_EINVAL, OP_ESIG (forged or for another hub), OP_EEXPIRED.
 */
int token_verify(const char *text, const uint8_t hub_pk[32], int64_t now_ms, token *out,
                 char *reason, size_t reason_len);

#endif
