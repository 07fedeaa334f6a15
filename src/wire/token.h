/*
 * token: one-time join tokens (pure, no I/O).
 *
 * Text form: "opt1.<claims>.<sig>", both parts base64url. Claims are JSON
 * {"tid","cls","sid","own","lim","hub","hpk","exp"}: token id, site class
 * the site will get, the site id it is for (only that site may use it), the
 * site's owner (an id; tokens without "own" name the site its own owner),
 * what the site may claim at most ("lim": {"cores","memory_mb","watts"},
 * each optional, the whole optional), hub id, hub public key (hex) and
 * expiry (ms since epoch). sig is the hub's
 * Ed25519 signature over "opt1.<claims>". A site pins hpk as the only key
 * it trusts for hub messages; the hub checks the signature with its own key
 * and that tid was issued by it, is unused and unexpired (its store).
 */
#ifndef OUTPOST_TOKEN_H
#define OUTPOST_TOKEN_H

#include "wire/ident.h"

#include <stdint.h>

#define TOKEN_MAX_TEXT 1024

/*
 * A join bundle: what a new site needs on a broker with TLS: "opj1." and
 * base64url of JSON {"token","ca","cert","key"}: the token, the hub CA's
 * certificate, and the site's broker certificate and key (PEM).
 */
#define TOKEN_BUNDLE_PREFIX "opj1."
#define TOKEN_BUNDLE_MAX 16384

/*
 * What a site enrolled with the token may claim at most, on top of its
 * class's limits at the hub (the lower counts); 0: no limit of the token's.
 */
typedef struct token_limits {
    int64_t cores;     /* 0 or 1..TOKEN_MAX_CORES */
    int64_t memory_mb; /* 0 or 1..TOKEN_MAX_MEMORY_MB */
    double watts;      /* 0 or (0, TOKEN_MAX_WATTS]: budget, per core and idle draw alike */
} token_limits;

#define TOKEN_MAX_CORES 4096
#define TOKEN_MAX_MEMORY_MB (1LL << 30)
#define TOKEN_MAX_WATTS 100000000.0

typedef struct token {
    char tid[33];
    char cls[8];
    char sid[64];
    char owner[64];
    char hub_id[64];
    uint8_t hub_pk[32];
    int64_t expires_ms;
    token_limits limits;
} token;

/* Valid site classes: "pod" (charging-site pod), "car" (parked car), "dc" (on-site data center). */
int token_valid_class(const char *cls);

/*
 * Issues a token for site sid owned by owner (NULL: the site is its own
 * owner), random tid. *text is malloc'd (caller frees). OP_EINVAL for a bad
 * class, site id or owner id.
 */
int token_create(const ident *hub, const char *cls, const char *sid, const char *owner,
                 int64_t expires_ms, char **text, token *out);
/*
 * The same with limits on what the site may claim (NULL or all 0: none).
 * OP_EINVAL also for a limit out of its range.
 */
int token_create_limited(const ident *hub, const char *cls, const char *sid, const char *owner,
                         const token_limits *limits, int64_t expires_ms, char **text, token *out);
/* 1 when each limit is 0 or within its range. */
int token_limits_valid(const token_limits *limits);

/*
 * Parses text and checks its signature against the key it carries.
 * OP_EINVAL (malformed, limits out of range, with reason), OP_ESIG
 * (signature does not verify).
 */
int token_parse(const char *text, token *out, char *reason, size_t reason_len);

/*
 * Full hub-side check: parse, signed by hub_pk, not expired at now_ms.
 * OP_EINVAL, OP_ESIG (forged or for another hub), OP_EEXPIRED.
 */
int token_verify(const char *text, const uint8_t hub_pk[32], int64_t now_ms, token *out,
                 char *reason, size_t reason_len);

typedef struct token_bundle {
    char *token, *ca, *cert, *key; /* malloc'd; token_bundle_free wipes and frees them */
} token_bundle;

/* The bundle's text, malloc'd (caller frees). OP_ENOMEM, OP_ETOOBIG. */
int token_bundle_make(const token_bundle *b, char **text);
/*
 * Parses a bundle's text (nothing in it checked but its shape: the token is
 * checked by token_parse, the certificates by TLS). OP_EINVAL with reason,
 * OP_ENOMEM. On error out holds nothing.
 */
int token_bundle_parse(const char *text, token_bundle *out, char *reason, size_t reason_len);
void token_bundle_free(token_bundle *b);

#endif
