/*
 * api: the hub's HTTP API, from a request to its answer (api_int.h).
 *
 * Every call runs on the hub's thread, inside the loop's iteration: routed
 * (api_route.c), its caller authenticated (api_auth.c) and checked against
 * the route's role, then run by hub__op_dispatch in the loop's transaction
 * like an MQTT request. Its answer waits, with the connection suspended,
 * until that transaction commits; a rolled-back batch answers 503 and
 * applies nothing, so nothing is promised before it is durable.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/version.h"
#include "hub/api_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------- answers ---------- */

static void answer(hub *h, http_req *r, int status, const char *type, const char *body, size_t len,
                   const char *const *headers)
{
    hub__api_count_status(h, status);
    http_respond(r, status, type, body, len, headers);
}

static void answer_json(hub *h, http_req *r, int status, const cJSON *o, const char *const *headers)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    if (!text) {
        static const char oom[] = "{\"error\": \"out of memory\", \"code\": \"internal\"}";
        answer(h, r, 500, "application/json", oom, sizeof oom - 1, NULL);
        return;
    }
    answer(h, r, status, "application/json", text, strlen(text), headers);
    free(text);
}

/* {"error": message, "code": short_code} with status. */
static void answer_error(hub *h, http_req *r, int status, const char *message,
                         const char *const *headers)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "error", message);
        cJSON_AddStringToObject(o, "code", hub__api_code_name(status));
    }
    answer_json(h, r, status, o, headers);
    cJSON_Delete(o);
}

/* ---------- calls that are not operator commands ---------- */

static void answer_static(hub *h, http_req *r)
{
    size_t len;
    const char *type;
    const unsigned char *data = hub__api_console_file(http_path(r), &len, &type);
    if (!data) {
        answer_error(h, r, 404, "no such file", NULL);
        return;
    }
    static const char *const headers[] = {
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'",
        "X-Frame-Options",
        "DENY",
        "Referrer-Policy",
        "no-referrer",
        "Cache-Control",
        "no-cache",
        NULL};
    answer(h, r, 200, type, (const char *)data, len, headers);
}

static void answer_health(hub *h, http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "version", OUTPOST_VERSION);
        cJSON_AddStringToObject(o, "hub", h->identity.id);
    }
    answer_json(h, r, 200, o, NULL);
    cJSON_Delete(o);
}

static void answer_metrics(hub *h, http_req *r)
{
    size_t len = 0;
    char *text = hub__api_metrics_text(h, &len);
    if (!text) {
        answer_error(h, r, 503, "cannot read the hub's figures now", NULL);
        return;
    }
    answer(h, r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
    free(text);
}

/* POST /v1/login {"token"}: a session cookie for the console. */
static void answer_login(hub *h, http_req *r)
{
    size_t len;
    const char *body = http_body(r, &len);
    char token_text[160];
    hub__api_caller caller;
    if (hub__api_login_token(body, len, token_text, sizeof token_text) != OP_OK) {
        answer_error(h, r, 400, "the body must be {\"token\": \"oat1_...\"}", NULL);
        return;
    }
    int rc = hub__api_check_token(h, token_text, &caller);
    memset(token_text, 0, sizeof token_text);
    if (rc != OP_OK) {
        answer_error(h, r, rc == OP_ESTORE ? 503 : 401, "that token is not valid", NULL);
        return;
    }
    char sid[65], cookie[200];
    hub__api_session_new(h, &caller, sid);
    int64_t max_age = API_SESSION_MAX_MS / 1000;
    if (caller.expires_at_ms) {
        int64_t left = (caller.expires_at_ms - os_now_ms()) / 1000;
        if (left < max_age) max_age = left > 0 ? left : 1;
    }
    snprintf(cookie, sizeof cookie,
             "outpost_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", sid,
             (long long)max_age, h->api->cert_path[0] ? "; Secure" : "");
    memset(sid, 0, sizeof sid);
    const char *const headers[] = {"Set-Cookie", cookie, "Cache-Control", "no-store", NULL};
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "operator", caller.op_id);
        cJSON_AddStringToObject(o, "role", hub__api_role_name(caller.role));
        jsonx_add_int(o, "expires_at", caller.expires_at_ms);
    }
    answer_json(h, r, 200, o, headers);
    memset(cookie, 0, sizeof cookie);
    cJSON_Delete(o);
}

static void answer_logout(hub *h, http_req *r)
{
    const char *cookie = http_cookie(r, "outpost_session");
    if (cookie) hub__api_session_end(h, cookie);
    static const char *const headers[] = {
        "Set-Cookie", "outpost_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", NULL};
    static const char body[] = "{\"ok\": true}";
    answer(h, r, 200, "application/json", body, sizeof body - 1, headers);
}

/* ---------- operator commands ---------- */

/*
 * Runs the command in the loop's transaction and keeps its answer for
 * after the commit (hub__api_after_commit); the connection waits.
 */
static void run_command(hub *h, http_req *r, const hub__api_routed *route,
                        const hub__api_caller *caller)
{
    if (!hubdb_in_tx(h->db) && hubdb_begin(h->db) != OP_OK) {
        h->store_failed = 1;
        answer_error(h, r, 503, "the hub cannot open its store now; retry later", NULL);
        return;
    }
    cJSON *resp = hub__op_dispatch(h, route->req, caller->op_id);
    hub__api_pending *p = calloc(1, sizeof *p);
    int status = 500;
    cJSON *out = NULL;
    if (resp && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok"))) {
        status = route->status_ok;
        out = cJSON_DetachItemFromObjectCaseSensitive(resp, "data");
    } else if (resp) {
        int64_t code = OP_EINVAL;
        jsonx_int(resp, "code", INT32_MIN, INT32_MAX, &code);
        status = hub__api_status_of((int)code);
        out = cJSON_CreateObject();
        const char *message = jsonx_str(resp, "error");
        if (out) {
            cJSON_AddStringToObject(out, "error", message ? message : "failed");
            cJSON_AddStringToObject(out, "code", hub__api_code_name(status));
        }
    }
    cJSON_Delete(resp);
    char *text = out ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    if (!p || !text) {
        free(p);
        free(text);
        answer_error(h, r, 500, "out of memory", NULL);
        return;
    }
    p->req = r;
    p->status = status;
    p->body = text;
    if (h->api->pending_tail)
        h->api->pending_tail->next = p;
    else
        h->api->pending = p;
    h->api->pending_tail = p;
    http_defer(r);
}

/* A call that needs a caller: authenticated, its CSRF header and role checked, then run. */
static void run_authorized(hub *h, http_req *r, const hub__api_routed *route)
{
    hub__api_caller caller;
    static const char *const challenge[] = {"WWW-Authenticate", "Bearer realm=\"outpost\"", NULL};
    int rc = hub__api_authenticate(h, r, &caller);
    if (rc == OP_ESTORE) {
        answer_error(h, r, 503, "the hub cannot read its store now; retry later", NULL);
        return;
    }
    if (rc != OP_OK) {
        answer_error(h, r, 401, "a valid API token is needed (Authorization: Bearer oat1_...)",
                     challenge);
        return;
    }
    const char *csrf = http_header(r, "X-Outpost-CSRF");
    if (caller.by_cookie && route->state_changing && !(csrf && strcmp(csrf, "1") == 0)) {
        answer_error(h, r, 403,
                     "a change made with a session cookie needs the header "
                     "X-Outpost-CSRF: 1",
                     NULL);
        return;
    }
    if (caller.role < route->role) {
        char why[200];
        snprintf(why, sizeof why, "this call needs the %s role (this token has %s%s)",
                 hub__api_role_name(route->role), hub__api_role_name(caller.role),
                 caller.capped ? ": the hub's policy allows its operator no more" : "");
        answer_error(h, r, 403, why, NULL);
        return;
    }
    if (route->kind == API_METRICS) {
        answer_metrics(h, r);
    } else if (route->kind == API_EVENTS) {
        rc = http_stream(r, NULL);
        if (rc == OP_OK) {
            hub__api_count_status(h, 200);
            hub__api_stream_opened(h);
        } else {
            answer_error(h, r, 503, "too many event streams open; retry later", NULL);
        }
    } else {
        run_command(h, r, route, &caller);
    }
}

static const char *query_arg(void *ctx, const char *key)
{
    return http_query(ctx, key);
}

static size_t body_limit(void *ctx, const char *method, const char *path)
{
    return hub__api_body_limit(method, path);
}

/* One complete request, routed and answered (now, or after the commit). */
static void on_request(void *ctx, http_req *r)
{
    hub *h = ctx;
    size_t len;
    const char *body = http_body(r, &len);
    const char *type = http_header(r, "Content-Type");
    if (len > 0 && !(type && strncasecmp(type, "application/json", 16) == 0)) {
        answer_error(h, r, 415, "the body must be JSON (Content-Type: application/json)", NULL);
        return;
    }
    hub__api_routed route;
    char err[256] = "", allow[64] = "";
    int status = hub__api_route(http_method(r), http_path(r), query_arg, r, body, len, &route, err,
                                sizeof err, allow, sizeof allow);
    if (status) {
        const char *const allow_hdr[] = {"Allow", allow, NULL};
        answer_error(h, r, status, err[0] ? err : "bad request", status == 405 ? allow_hdr : NULL);
        return;
    }
    switch (route.kind) {
    case API_HEALTH:
        answer_health(h, r);
        break;
    case API_OPENAPI: {
        size_t n;
        const char *doc = hub__api_openapi(&n);
        answer(h, r, 200, "application/json", doc, n, NULL);
        break;
    }
    case API_STATIC:
        answer_static(h, r);
        break;
    case API_LOGIN:
        answer_login(h, r);
        break;
    case API_LOGOUT:
        answer_logout(h, r);
        break;
    case API_METRICS:
        if (!h->api->metrics_auth) {
            answer_metrics(h, r);
            break;
        }
        route.role = API_ROLE_VIEWER; /* with http_metrics_auth: a token of any role */
        run_authorized(h, r, &route);
        break;
    default:
        run_authorized(h, r, &route);
        break;
    }
    cJSON_Delete(route.req);
}

/* ---------- life and the loop ---------- */

int hub__api_configure(hub *h, const conf *c, char *err, size_t err_len)
{
    if (!h->api && !(h->api = calloc(1, sizeof *h->api))) return OP_ENOMEM;
    hub_api *a = h->api;
    const char *cert = conf_str(c, "http_cert", ""), *key = conf_str(c, "http_key", "");
    const char *metrics_auth = conf_str(c, "http_metrics_auth", "off");
    snprintf(a->listen, sizeof a->listen, "%s", conf_str(c, "http_listen", ""));
    snprintf(a->cert_path, sizeof a->cert_path, "%s", cert);
    snprintf(a->key_path, sizeof a->key_path, "%s", key);
    int rc = conf_int(c, "power_history_step_s", 300, 1, 3600, &a->power_step_s, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "http_stream_queue_bytes", 1024 * 1024, 4096, 64 * 1024 * 1024,
                      &a->stream_queue_bytes, err, err_len);
    if (rc != OP_OK) return rc;
    a->metrics_auth = strcmp(metrics_auth, "on") == 0;
    if (!a->metrics_auth && strcmp(metrics_auth, "off") != 0) {
        snprintf(err, err_len, "http_metrics_auth must be on or off");
        return OP_EINVAL;
    }
    if (!cert[0] != !key[0]) {
        snprintf(err, err_len, "http_cert and http_key go together (TLS needs both)");
        return OP_EINVAL;
    }
    return OP_OK;
}

int hub__api_start(hub *h)
{
    if (!h->api || !h->api->listen[0]) return OP_OK;
    hub_api *a = h->api;
    char err[256] = "";
    http_config hc = {.listen = a->listen,
                      .cert_path = a->cert_path[0] ? a->cert_path : NULL,
                      .key_path = a->key_path[0] ? a->key_path : NULL,
                      .stream_queue_bytes = (size_t)a->stream_queue_bytes};
    int rc = http_start(&hc, on_request, body_limit, h, &a->http, err, sizeof err);
    if (rc != OP_OK) {
        log_error("hub", "HTTP API: %s", err);
        return rc;
    }
    log_info("hub", "HTTP API on %s://%s (port %d)", a->cert_path[0] ? "https" : "http", a->listen,
             http_port(a->http));
    return OP_OK;
}

void hub__api_free(hub *h)
{
    if (!h->api) return;
    hub__api_after_commit(h, 0);
    http_stop(h->api->http);
    free(h->api->seen);
    free(h->api);
    h->api = NULL;
}

int hub__api_wait(hub *h, int timeout_ms)
{
    if (!h->api || !h->api->http) return 0;
    struct pollfd fds[1 + 2 * BUS_MAX_BROKERS] = {{.fd = http_fd(h->api->http), .events = POLLIN}};
    int n = 1 + hub__link_fds(h, fds + 1, 2 * BUS_MAX_BROKERS);
    /* work already in the open transaction (a call run after the last commit) commits now */
    poll(fds, (nfds_t)n, hubdb_in_tx(h->db) ? 0 : http_timeout_ms(h->api->http, timeout_ms));
    return 1;
}

void hub__api_run(hub *h)
{
    if (h->api && h->api->http) http_run(h->api->http);
}

void hub__api_after_commit(hub *h, int committed)
{
    if (!h->api) return;
    hub_api *a = h->api;
    static const char failed[] = "{\"error\": \"the hub could not store this request (is its "
                                 "disk full? see its log); nothing of it was applied: retry "
                                 "later\", \"code\": \"unavailable\"}";
    while (a->pending) {
        hub__api_pending *p = a->pending;
        a->pending = p->next;
        if (committed)
            answer(h, p->req, p->status, "application/json", p->body, strlen(p->body), NULL);
        else
            answer(h, p->req, 503, "application/json", failed, sizeof failed - 1, NULL);
        free(p->body);
        free(p);
    }
    a->pending_tail = NULL;
    if (committed)
        hub__api_steps_committed(h);
    else
        a->n_steps = 0;
}
