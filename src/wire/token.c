#include "wire/token.h"

#include "base/err.h"
#include "base/util.h"

#include <cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "opt1."
/* Largest exact JSON integer: casting a bigger double to int64_t is undefined. */
#define TOKEN_MAX_EXP_MS 9007199254740991.0

int token_valid_class(const char *cls)
{
    return cls && (strcmp(cls, "pod") == 0 || strcmp(cls, "car") == 0 || strcmp(cls, "dc") == 0);
}

int token_limits_valid(const token_limits *l)
{
    return l->cores >= 0 && l->cores <= TOKEN_MAX_CORES && l->memory_mb >= 0 &&
           l->memory_mb <= TOKEN_MAX_MEMORY_MB && l->watts >= 0 && l->watts <= TOKEN_MAX_WATTS;
}

/* The "lim" claim: only the limits set; NULL (no claim) when none is. */
static cJSON *limits_json(const token_limits *l)
{
    if (!l || (!l->cores && !l->memory_mb && !(l->watts > 0))) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (l->cores) cJSON_AddNumberToObject(o, "cores", (double)l->cores);
    if (l->memory_mb) cJSON_AddNumberToObject(o, "memory_mb", (double)l->memory_mb);
    if (l->watts > 0) cJSON_AddNumberToObject(o, "watts", l->watts);
    return o;
}

/* One limit of a "lim" claim: absent (0), or a number in (0, max] (whole where whole). */
static int limit_field(const cJSON *lim, const char *key, double max, int whole, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(lim, key);
    *out = 0;
    if (!v) return OP_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= max) ||
        (whole && v->valuedouble != (double)(int64_t)v->valuedouble))
        return OP_EINVAL;
    *out = v->valuedouble;
    return OP_OK;
}

static int parse_limits(const cJSON *lim, token_limits *out)
{
    double cores, memory_mb;
    memset(out, 0, sizeof *out);
    if (!lim) return OP_OK;
    if (!cJSON_IsObject(lim) || limit_field(lim, "cores", TOKEN_MAX_CORES, 1, &cores) != OP_OK ||
        limit_field(lim, "memory_mb", (double)TOKEN_MAX_MEMORY_MB, 1, &memory_mb) != OP_OK ||
        limit_field(lim, "watts", TOKEN_MAX_WATTS, 0, &out->watts) != OP_OK)
        return OP_EINVAL;
    out->cores = (int64_t)cores;
    out->memory_mb = (int64_t)memory_mb;
    return OP_OK;
}

int token_create(const ident *hub, const char *cls, const char *sid, const char *owner,
                 int64_t expires_ms, char **text, token *out)
{
    return token_create_limited(hub, cls, sid, owner, NULL, expires_ms, text, out);
}

int token_create_limited(const ident *hub, const char *cls, const char *sid, const char *owner,
                         const token_limits *limits, int64_t expires_ms, char **text, token *out)
{
    if (!owner) owner = sid;
    if (!token_valid_class(cls) || !util_valid_id(sid) || !util_valid_id(owner) ||
        (limits && !token_limits_valid(limits)))
        return OP_EINVAL;
    int rc = OP_ENOMEM;
    char *claims_json = NULL, *claims_b64 = NULL, *sig_b64 = NULL, *signed_part = NULL;
    uint8_t tid_bytes[16];
    randombytes_buf(tid_bytes, sizeof tid_bytes);
    memset(out, 0, sizeof *out);
    util_hex(tid_bytes, 16, out->tid);
    snprintf(out->cls, sizeof out->cls, "%s", cls);
    snprintf(out->hub_id, sizeof out->hub_id, "%s", hub->id);
    snprintf(out->sid, sizeof out->sid, "%s", sid);
    snprintf(out->owner, sizeof out->owner, "%s", owner);
    memcpy(out->hub_pk, hub->pk, 32);
    out->expires_ms = expires_ms;
    if (limits) out->limits = *limits;

    cJSON *claims = cJSON_CreateObject();
    if (!claims) goto out;
    cJSON_AddStringToObject(claims, "tid", out->tid);
    cJSON_AddStringToObject(claims, "cls", cls);
    cJSON_AddStringToObject(claims, "sid", sid);
    cJSON_AddStringToObject(claims, "own", owner);
    cJSON *lim = limits_json(limits);
    if (lim) cJSON_AddItemToObject(claims, "lim", lim);
    cJSON_AddStringToObject(claims, "hub", hub->id);
    cJSON_AddStringToObject(claims, "hpk", hub->pk_hex);
    cJSON_AddNumberToObject(claims, "exp", (double)expires_ms);
    claims_json = cJSON_PrintUnformatted(claims);
    cJSON_Delete(claims);
    if (!claims_json) goto out;
    claims_b64 = util_b64url_encode(claims_json, strlen(claims_json));
    if (!claims_b64) goto out;
    size_t signed_len = strlen(TOKEN_PREFIX) + strlen(claims_b64);
    signed_part = malloc(signed_len + 1);
    if (!signed_part) goto out;
    snprintf(signed_part, signed_len + 1, "%s%s", TOKEN_PREFIX, claims_b64);
    uint8_t sig[64];
    ident_sign(hub, signed_part, signed_len, sig);
    sig_b64 = util_b64url_encode(sig, sizeof sig);
    if (!sig_b64) goto out;
    size_t total = signed_len + 1 + strlen(sig_b64) + 1;
    *text = malloc(total);
    if (!*text) goto out;
    snprintf(*text, total, "%s.%s", signed_part, sig_b64);
    rc = OP_OK;
out:
    free(claims_json);
    free(claims_b64);
    free(signed_part);
    free(sig_b64);
    return rc;
}

int token_parse(const char *text, token *out, char *reason, size_t reason_len)
{
    int rc = OP_EINVAL;
    char *copy = NULL;
    uint8_t *claims_raw = NULL, *sig_raw = NULL;
    size_t claims_len = 0, sig_len = 0;
    cJSON *claims = NULL;
    memset(out, 0, sizeof *out);
    if (!text || strlen(text) > TOKEN_MAX_TEXT || strncmp(text, TOKEN_PREFIX, 5) != 0) {
        snprintf(reason, reason_len, "not an Outpost join token (expected 'opt1.' prefix)");
        goto out;
    }
    copy = strdup(text);
    if (!copy) {
        rc = OP_ENOMEM;
        goto out;
    }
    char *dot = strrchr(copy, '.');
    if (!dot || dot == copy + 4) {
        snprintf(reason, reason_len, "token has no signature part");
        goto out;
    }
    *dot = '\0';
    const char *claims_b64 = copy + 5;
    if (util_b64url_decode(claims_b64, TOKEN_MAX_TEXT, &claims_raw, &claims_len) != OP_OK ||
        util_b64url_decode(dot + 1, 64, &sig_raw, &sig_len) != OP_OK || sig_len != 64) {
        snprintf(reason, reason_len, "token is not valid base64url");
        goto out;
    }
    claims = cJSON_ParseWithLength((const char *)claims_raw, claims_len);
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(claims, "tid");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(claims, "cls");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(claims, "sid");
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(claims, "own");
    const cJSON *hub = cJSON_GetObjectItemCaseSensitive(claims, "hub");
    const cJSON *hpk = cJSON_GetObjectItemCaseSensitive(claims, "hpk");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    if (!cJSON_IsObject(claims) || !cJSON_IsString(tid) || strlen(tid->valuestring) != 32 ||
        !cJSON_IsString(cls) || !token_valid_class(cls->valuestring) || !cJSON_IsString(sid) ||
        !util_valid_id(sid->valuestring) ||
        (own && (!cJSON_IsString(own) || !util_valid_id(own->valuestring))) ||
        !cJSON_IsString(hub) || !util_valid_id(hub->valuestring) || !cJSON_IsString(hpk) ||
        util_unhex(hpk->valuestring, out->hub_pk, 32) != OP_OK || !cJSON_IsNumber(exp) ||
        !(exp->valuedouble >= 0 && exp->valuedouble <= TOKEN_MAX_EXP_MS)) {
        snprintf(reason, reason_len, "token claims are malformed");
        goto out;
    }
    snprintf(out->tid, sizeof out->tid, "%s", tid->valuestring);
    snprintf(out->cls, sizeof out->cls, "%s", cls->valuestring);
    snprintf(out->sid, sizeof out->sid, "%s", sid->valuestring);
    /* Tokens issued before owners existed: the site is its own owner. */
    snprintf(out->owner, sizeof out->owner, "%s", own ? own->valuestring : sid->valuestring);
    snprintf(out->hub_id, sizeof out->hub_id, "%s", hub->valuestring);
    out->expires_ms = (int64_t)exp->valuedouble;
    if (parse_limits(cJSON_GetObjectItemCaseSensitive(claims, "lim"), &out->limits) != OP_OK) {
        snprintf(reason, reason_len, "token limits are malformed");
        goto out;
    }
    if (ident_verify(out->hub_pk, copy, strlen(copy), sig_raw) != OP_OK) {
        snprintf(reason, reason_len, "token signature does not verify (forged or altered)");
        rc = OP_ESIG;
        goto out;
    }
    rc = OP_OK;
out:
    cJSON_Delete(claims);
    free(claims_raw);
    free(sig_raw);
    free(copy);
    return rc;
}

int token_verify(const char *text, const uint8_t hub_pk[32], int64_t now_ms, token *out,
                 char *reason, size_t reason_len)
{
    int rc = token_parse(text, out, reason, reason_len);
    if (rc != OP_OK) return rc;
    if (sodium_memcmp(out->hub_pk, hub_pk, 32) != 0) {
        snprintf(reason, reason_len, "token was not issued by this hub");
        return OP_ESIG;
    }
    if (out->expires_ms <= now_ms) {
        snprintf(reason, reason_len, "token expired %lld s ago; create a new one",
                 (long long)((now_ms - out->expires_ms) / 1000));
        return OP_EEXPIRED;
    }
    return OP_OK;
}

/* ---------- join bundles ---------- */

static const char *const bundle_keys[] = {"token", "ca", "cert", "key"};

static char **bundle_field(token_bundle *b, size_t i)
{
    char **fields[] = {&b->token, &b->ca, &b->cert, &b->key};
    return fields[i];
}

void token_bundle_free(token_bundle *b)
{
    for (size_t i = 0; i < 4; i++) {
        char **f = bundle_field(b, i);
        if (*f) sodium_memzero(*f, strlen(*f));
        free(*f);
        *f = NULL;
    }
}

int token_bundle_make(const token_bundle *b, char **text)
{
    *text = NULL;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < 4; i++)
        if (!cJSON_AddStringToObject(o, bundle_keys[i], *bundle_field((token_bundle *)b, i))) break;
    char *json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!json) return OP_ENOMEM;
    char *b64 = util_b64url_encode(json, strlen(json));
    sodium_memzero(json, strlen(json));
    free(json);
    size_t len = b64 ? strlen(TOKEN_BUNDLE_PREFIX) + strlen(b64) + 1 : 0;
    if (b64 && len <= TOKEN_BUNDLE_MAX && (*text = malloc(len)))
        snprintf(*text, len, "%s%s", TOKEN_BUNDLE_PREFIX, b64);
    int rc = *text ? OP_OK : (b64 && len > TOKEN_BUNDLE_MAX ? OP_ETOOBIG : OP_ENOMEM);
    if (b64) sodium_memzero(b64, strlen(b64));
    free(b64);
    return rc;
}

/* The bundle's JSON object: four strings, each copied out. */
static int bundle_fields(const cJSON *o, token_bundle *out)
{
    for (size_t i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, bundle_keys[i]);
        if (!cJSON_IsString(v) || !*v->valuestring) return OP_EINVAL;
        if (!(*bundle_field(out, i) = strdup(v->valuestring))) return OP_ENOMEM;
    }
    return OP_OK;
}

int token_bundle_parse(const char *text, token_bundle *out, char *reason, size_t reason_len)
{
    memset(out, 0, sizeof *out);
    size_t prefix = strlen(TOKEN_BUNDLE_PREFIX);
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (!text || strlen(text) > TOKEN_BUNDLE_MAX || strncmp(text, TOKEN_BUNDLE_PREFIX, prefix)) {
        snprintf(reason, reason_len, "not a join bundle (expected 'opj1.' prefix)");
        return OP_EINVAL;
    }
    if (util_b64url_decode(text + prefix, TOKEN_BUNDLE_MAX, &raw, &raw_len) != OP_OK ||
        memchr(raw, 0, raw_len)) {
        free(raw);
        snprintf(reason, reason_len, "join bundle is not valid base64url JSON");
        return OP_EINVAL;
    }
    cJSON *o = cJSON_ParseWithLength((const char *)raw, raw_len);
    sodium_memzero(raw, raw_len);
    free(raw);
    int rc = cJSON_IsObject(o) ? bundle_fields(o, out) : OP_EINVAL;
    cJSON_Delete(o);
    if (rc != OP_OK) {
        token_bundle_free(out);
        snprintf(reason, reason_len, "join bundle lacks its token, ca, cert or key");
    }
    return rc;
}
