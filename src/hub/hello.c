/* hello: an unknown site's hello opened and checked off the hub's state (hello.h). */
#include "hub/hello.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sealed hello's text (caller frees), or NULL with the refusal in out. */
static char *unseal(const ident *self, const char *topic, const void *payload, size_t len,
                    const char *kid, const char *sig, size_t *text_len, hub_hello *out, int *rc)
{
    char *text = NULL;
    if (!kid || !sig) {
        out->stats.unsigned_msgs++;
        snprintf(out->reason, sizeof out->reason, "unsigned hello on %.150s", topic);
        *rc = OP_ESIG;
    } else if (!msg_is_sealed(payload, len)) {
        out->stats.unsealed++;
        snprintf(out->reason, sizeof out->reason, "unsealed hello on %.150s", topic);
        *rc = OP_EPERM;
    } else if (msg_unseal(self, payload, len, &text, text_len) != OP_OK) {
        out->stats.unopenable++;
        snprintf(out->reason, sizeof out->reason, "hello on %.150s not sealed to this hub", topic);
        *rc = OP_EINVAL;
    }
    return text;
}

/* The signature, the names and the clock; OP_OK or the refusal in out. */
static int check_sender(const char *site_id, const char *topic, const void *payload, size_t len,
                        const char *kid, const char *sig, int64_t now_ms, int64_t skew_ms,
                        hub_hello *out)
{
    const char *pk_hex = jsonx_str(out->body, "pubkey");
    if (!pk_hex || util_unhex(pk_hex, out->pk, 32) != OP_OK ||
        msg_verify(out->pk, topic, payload, len, sig) != OP_OK || strcmp(kid, site_id) != 0 ||
        strcmp(out->hdr.from, site_id) != 0) {
        out->stats.forged++;
        snprintf(out->reason, sizeof out->reason,
                 "hello for %.63s: signature does not match the key it carries", site_id);
        return OP_ESIG;
    }
    if (out->hdr.ts_ms < now_ms - skew_ms || out->hdr.ts_ms > now_ms + skew_ms) {
        out->stats.expired++;
        snprintf(out->reason, sizeof out->reason, "hello from %.63s: timestamp off by %lld ms",
                 site_id, (long long)(out->hdr.ts_ms - now_ms));
        return OP_EEXPIRED;
    }
    return OP_OK;
}

int hub_hello_open(const ident *self, const char *site_id, const char *topic, const void *payload,
                   size_t len, const char *kid, const char *sig, int64_t now_ms, int64_t skew_ms,
                   hub_hello *out)
{
    memset(out, 0, sizeof *out);
    int rc = OP_OK;
    size_t text_len = 0;
    char *text = unseal(self, topic, payload, len, kid, sig, &text_len, out, &rc);
    if (!text) return rc;
    rc = msg_parse(text, text_len, &out->body, &out->hdr);
    free(text);
    if (rc != OP_OK) {
        out->stats.malformed++;
        snprintf(out->reason, sizeof out->reason, "malformed hello on %.150s", topic);
        return OP_EINVAL;
    }
    rc = check_sender(site_id, topic, payload, len, kid, sig, now_ms, skew_ms, out);
    if (rc != OP_OK) {
        cJSON_Delete(out->body);
        out->body = NULL;
        return rc;
    }
    const char *token_text = jsonx_str(out->body, "token");
    out->has_token = token_text != NULL;
    if (token_text)
        out->token_rc =
            token_verify(token_text, self->pk, now_ms, &out->tok, out->reason, sizeof out->reason);
    return OP_OK;
}
