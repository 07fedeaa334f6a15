/*
 * api_auth: API tokens and login sessions.
 *
 * A token is "oat1_<id>_<secret>": 8 random bytes of id (hex, the row's
 * key, shown in lists and the audit log) and 32 random bytes of secret
 * (hex, shown once). hub.db keeps BLAKE2b-256 of the secret, not the secret.
 * A fast hash is the right one here: the secret is 256 random bits, so no
 * dictionary or brute force can invert its hash, and a slow password hash
 * (crypto_pwhash) would only spend about 0.1 s of the hub's one thread on
 * every call. Hashes are compared with sodium_memcmp (constant time).
 *
 * A session (the console's login) is 32 random bytes in an HttpOnly,
 * SameSite=Strict cookie, kept in memory only (a restart logs consoles out)
 * and bound to its token: a revoked or expired token ends its sessions.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "hub/api_int.h"
#include "hub/hub_db_api.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_PREFIX "oat1_"
#define TOKEN_ID_BYTES 8
#define TOKEN_SECRET_BYTES 32
#define TOKEN_TEXT_LEN (5 + 2 * TOKEN_ID_BYTES + 1 + 2 * TOKEN_SECRET_BYTES)

/* Splits a token's text into its id (hex) and secret bytes. OP_EINVAL. */
static int split_token(const char *text, char id[17], uint8_t secret[TOKEN_SECRET_BYTES])
{
    if (!text || strlen(text) != TOKEN_TEXT_LEN || strncmp(text, TOKEN_PREFIX, 5) != 0 ||
        text[5 + 2 * TOKEN_ID_BYTES] != '_')
        return OP_EINVAL;
    uint8_t id_bytes[TOKEN_ID_BYTES];
    char id_hex[2 * TOKEN_ID_BYTES + 1];
    memcpy(id_hex, text + 5, 2 * TOKEN_ID_BYTES);
    id_hex[2 * TOKEN_ID_BYTES] = 0;
    if (util_unhex(id_hex, id_bytes, TOKEN_ID_BYTES) != OP_OK) return OP_EINVAL;
    util_hex(id_bytes, TOKEN_ID_BYTES, id); /* lower case, as stored */
    return util_unhex(text + 6 + 2 * TOKEN_ID_BYTES, secret, TOKEN_SECRET_BYTES);
}

static void secret_hash(const uint8_t secret[TOKEN_SECRET_BYTES], uint8_t out[32])
{
    crypto_generichash(out, 32, secret, TOKEN_SECRET_BYTES, NULL, 0);
}

/* Whether the stored token may be used now. */
static int token_live(const hubdb_api_token *t, int64_t now_ms)
{
    return t->revoked_at_ms == 0 && (t->expires_at_ms == 0 || now_ms < t->expires_at_ms) &&
           hub__api_role_parse(t->role) != API_ROLE_NONE;
}

_Static_assert((int)API_ROLE_VIEWER == (int)POLICY_ROLE_VIEWER &&
                   (int)API_ROLE_ADMIN == (int)POLICY_ROLE_ADMIN &&
                   (int)API_ROLE_NONE == (int)POLICY_ROLE_NONE,
               "the API's roles and the policy's are one scale");

/*
 * The caller a live token makes: its role capped by the governance policy
 * (`api OP ROLE`, read at every call, so a policy change applies to open
 * sessions too; a role of none is then refused every call with 403).
 */
static int caller_of(const hub *h, const hubdb_api_token *t, hub__api_caller *caller)
{
    memset(caller, 0, sizeof *caller);
    snprintf(caller->op_id, sizeof caller->op_id, "%s", t->op_id);
    snprintf(caller->token_id, sizeof caller->token_id, "%s", t->id);
    caller->role = hub__api_role_parse(t->role);
    caller->expires_at_ms = t->expires_at_ms;
    int cap = policy_api_role(h->policy, caller->op_id);
    if (caller->role > cap) {
        caller->role = cap;
        caller->capped = 1;
    }
    return OP_OK;
}

int hub__api_check_token(hub *h, const char *text, hub__api_caller *caller)
{
    char id[17];
    uint8_t secret[TOKEN_SECRET_BYTES], hash[32], stored[32];
    hubdb_api_token t;
    if (split_token(text, id, secret) != OP_OK) return OP_EPERM;
    int rc = hubdb_api_token_get(h->db, id, &t);
    secret_hash(secret, hash);
    sodium_memzero(secret, sizeof secret);
    if (rc == OP_ENOTFOUND) return OP_EPERM;
    if (rc != OP_OK) return OP_ESTORE;
    if (util_unhex(t.hash, stored, sizeof stored) != OP_OK) return OP_EPERM;
    if (sodium_memcmp(hash, stored, sizeof hash) != 0 || !token_live(&t, os_now_ms()))
        return OP_EPERM;
    return caller_of(h, &t, caller);
}

/* ---------- sessions ---------- */

/* The live session of a cookie value, or NULL; compares every slot in constant time. */
static hub__api_session *find_session(hub *h, const char *cookie)
{
    uint8_t sid[32];
    if (!cookie || strlen(cookie) != 64 || util_unhex(cookie, sid, sizeof sid) != OP_OK)
        return NULL;
    hub__api_session *found = NULL;
    for (int i = 0; i < API_MAX_SESSIONS; i++) {
        hub__api_session *s = &h->api->sessions[i];
        if (s->used && sodium_memcmp(s->sid, sid, sizeof sid) == 0) found = s;
    }
    if (found && found->expires_at_ms <= os_now_ms()) {
        memset(found, 0, sizeof *found);
        found = NULL;
    }
    return found;
}

void hub__api_session_new(hub *h, const hub__api_caller *caller, char out[65])
{
    hub__api_session *slot = NULL;
    for (int i = 0; i < API_MAX_SESSIONS; i++) {
        hub__api_session *s = &h->api->sessions[i];
        if (!s->used) {
            slot = s;
            break;
        }
        if (!slot || s->created_mono_ms < slot->created_mono_ms) slot = s;
    }
    int64_t now = os_now_ms();
    slot->used = 1;
    randombytes_buf(slot->sid, sizeof slot->sid);
    snprintf(slot->token_id, sizeof slot->token_id, "%s", caller->token_id);
    slot->expires_at_ms = now + API_SESSION_MAX_MS;
    if (caller->expires_at_ms && caller->expires_at_ms < slot->expires_at_ms)
        slot->expires_at_ms = caller->expires_at_ms;
    slot->created_mono_ms = os_mono_ms();
    util_hex(slot->sid, sizeof slot->sid, out);
}

void hub__api_session_end(hub *h, const char *cookie)
{
    hub__api_session *s = find_session(h, cookie);
    if (s) memset(s, 0, sizeof *s);
}

/* The caller of a session: its token read again (revoked or expired ends the session). */
static int session_caller(hub *h, const char *cookie, hub__api_caller *caller)
{
    hub__api_session *s = find_session(h, cookie);
    if (!s) return OP_EPERM;
    hubdb_api_token t;
    int rc = hubdb_api_token_get(h->db, s->token_id, &t);
    if (rc == OP_ESTORE) return rc;
    if (rc != OP_OK || !token_live(&t, os_now_ms())) {
        memset(s, 0, sizeof *s);
        return OP_EPERM;
    }
    rc = caller_of(h, &t, caller);
    caller->by_cookie = 1;
    return rc;
}

int hub__api_authenticate(hub *h, http_req *r, hub__api_caller *caller)
{
    const char *auth = http_header(r, "Authorization");
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7) != 0) return OP_EPERM;
        return hub__api_check_token(h, auth + 7, caller);
    }
    const char *cookie = http_cookie(r, "outpost_session");
    return cookie ? session_caller(h, cookie, caller) : OP_EPERM;
}

/* ---------- the commands ---------- */

int hub__op_api_token_create(hub *h, op_call *c)
{
    const char *op_id = jsonx_str(c->req, "operator");
    const char *role = jsonx_str(c->req, "role");
    int64_t expires_s = 0;
    if (!op_id || !util_valid_id(op_id)) {
        snprintf(c->err, c->err_len, "'operator' must be [A-Za-z0-9_-]{1,63}");
        return OP_EINVAL;
    }
    if (hub__api_role_parse(role) == API_ROLE_NONE) {
        snprintf(c->err, c->err_len, "'role' must be viewer, operator or admin");
        return OP_EINVAL;
    }
    if (cJSON_HasObjectItem(c->req, "expires_s") &&
        jsonx_int(c->req, "expires_s", 1, 10 * 365LL * 86400, &expires_s) != OP_OK) {
        snprintf(c->err, c->err_len, "'expires_s' must be from 1 second to 10 years");
        return OP_EINVAL;
    }
    uint8_t id_bytes[TOKEN_ID_BYTES], secret[TOKEN_SECRET_BYTES], hash[32];
    randombytes_buf(id_bytes, sizeof id_bytes);
    randombytes_buf(secret, sizeof secret);
    secret_hash(secret, hash);
    hubdb_api_token t;
    memset(&t, 0, sizeof t);
    util_hex(id_bytes, sizeof id_bytes, t.id);
    util_hex(hash, sizeof hash, t.hash);
    snprintf(t.op_id, sizeof t.op_id, "%s", op_id);
    snprintf(t.role, sizeof t.role, "%s", role);
    snprintf(t.created_by, sizeof t.created_by, "%s", c->op_id);
    t.created_at_ms = os_now_ms();
    t.expires_at_ms = expires_s ? t.created_at_ms + expires_s * 1000 : 0;
    int rc = hub__check(h, hubdb_api_token_put(h->db, &t));
    if (rc != OP_OK) {
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    char text[TOKEN_TEXT_LEN + 1], secret_hex[2 * TOKEN_SECRET_BYTES + 1];
    util_hex(secret, sizeof secret, secret_hex);
    snprintf(text, sizeof text, "%s%s_%s", TOKEN_PREFIX, t.id, secret_hex);
    cJSON_AddStringToObject(c->data, "token", text);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(secret_hex, sizeof secret_hex);
    sodium_memzero(text, sizeof text);
    cJSON_AddStringToObject(c->data, "id", t.id);
    cJSON_AddStringToObject(c->data, "operator", t.op_id);
    cJSON_AddStringToObject(c->data, "role", t.role);
    jsonx_add_int(c->data, "expires_at", t.expires_at_ms);
    c->audit = cJSON_CreateObject();
    if (c->audit) {
        cJSON_AddStringToObject(c->audit, "id", t.id);
        cJSON_AddStringToObject(c->audit, "operator", t.op_id);
        cJSON_AddStringToObject(c->audit, "role", t.role);
        jsonx_add_int(c->audit, "expires_at", t.expires_at_ms);
    }
    log_info("hub", "operator %s created API token %s (%s, acting as %s)", c->op_id, t.id, t.role,
             t.op_id);
    return OP_OK;
}

int hub__op_api_token_list(hub *h, op_call *c)
{
    return hubdb_api_tokens_list(h->db, cJSON_AddArrayToObject(c->data, "tokens"));
}

int hub__op_api_token_revoke(hub *h, op_call *c)
{
    const char *id = jsonx_str(c->req, "id");
    int changed = 0;
    if (!id || strlen(id) != 2 * TOKEN_ID_BYTES) {
        snprintf(c->err, c->err_len, "'id' must be a token id (16 hex digits)");
        return OP_EINVAL;
    }
    int rc = hub__check(h, hubdb_api_token_revoke(h->db, id, os_now_ms(), &changed));
    if (rc != OP_OK) return rc;
    if (!changed) {
        snprintf(c->err, c->err_len, "no live API token %s", id);
        return OP_ENOTFOUND;
    }
    cJSON_AddStringToObject(c->data, "id", id);
    c->audit = cJSON_CreateObject();
    if (c->audit) cJSON_AddStringToObject(c->audit, "id", id);
    log_info("hub", "operator %s revoked API token %s", c->op_id, id);
    return OP_OK;
}
