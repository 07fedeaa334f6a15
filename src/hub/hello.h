/*
 * hello: the checks on the hello of a site the hub does not know yet, as a
 * pure function of the message, the hub's identity and the clock, so that
 * it runs on a worker thread (workers.h) as well as on the loop.
 *
 * Such a hello is sealed to this hub (it carries a join token), and the key
 * that signed it is inside: the open comes before the signature check,
 * then the signature against that key (proof of possession), the sender
 * named by the topic, the signature's kid and the header's "from" all the
 * same, the timestamp within the clock skew, and last the join token's own
 * signature (by this hub) and expiry. What needs the store (was the token
 * issued here, is it spent) stays with the loop.
 */
#ifndef OUTPOST_HUB_HELLO_H
#define OUTPOST_HUB_HELLO_H

#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/token.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hub_hello {
    cJSON *body; /* OP_OK: the parsed body (the holder frees it) */
    msg_header hdr;
    uint8_t pk[32];   /* the key the hello carried and proved */
    int has_token;    /* it carried a join token (else: refused for want of one) */
    int token_rc;     /* token_verify's result against this hub's key */
    token tok;        /* token_rc OP_OK: the token */
    char reason[256]; /* the open's refusal, or the token's */
    msg_stats stats;  /* the one counter a refused open moved */
} hub_hello;

/*
 * Opens and checks the hello on topic (site_id's) at now_ms. OP_OK: out
 * holds the body, the key and the token's check (token_rc may still refuse
 * it). Else the open failed: OP_EPERM (not sealed: a client that never
 * enrolled, logged quietly), OP_ESIG (unsigned, forged, not from site_id),
 * OP_EINVAL (not sealed to this hub, malformed), OP_EEXPIRED (clock), with
 * out->reason and one counter of out->stats.
 */
int hub_hello_open(const ident *self, const char *site_id, const char *topic, const void *payload,
                   size_t len, const char *kid, const char *sig, int64_t now_ms, int64_t skew_ms,
                   hub_hello *out);

#endif
