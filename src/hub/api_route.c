/*
 * api_route: the HTTP API's route table. A call (method, path, query, body)
 * becomes a route: what kind of call it is, the least role that may make
 * it and, for an operator command, the request object hub__op_dispatch
 * runs. Only the fields a route names are copied from a body into the
 * request, so a body cannot choose the command or its replay fields. No
 * I/O: fuzzed by fuzz/fuzz_api.c.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "hub/api_int.h"

#include <stdio.h>
#include <string.h>

enum { BODY_NONE, BODY_SPEC, BODY_FIELDS };
enum { PARAM_NONE, PARAM_JOB, PARAM_NAME };
enum { Q_END, Q_INT, Q_STR };

typedef struct query_def {
    int type; /* Q_* */
    const char *key;
    int64_t min, max;
    int required;
} query_def;

typedef struct route_def {
    const char *method;
    const char *pattern; /* "{}" is a path parameter */
    int kind;            /* API_* */
    const char *cmd;     /* API_OP: the operator command */
    int role;
    int status_ok;
    int param;             /* PARAM_*: what the "{}" is */
    const char *param_key; /* the request field it goes into */
    int body;              /* BODY_* */
    const char *fields[8]; /* BODY_FIELDS: the ones copied */
    query_def query[5];
} route_def;

#define V API_ROLE_VIEWER
#define O API_ROLE_OPERATOR
#define A API_ROLE_ADMIN
#define ROUTE(m, p, k, c, r, ok)                                                                   \
    .method = m, .pattern = p, .kind = k, .cmd = c, .role = r, .status_ok = ok
#define QINT(k, lo, hi)                                                                            \
    {                                                                                              \
        .type = Q_INT, .key = k, .min = lo, .max = hi                                              \
    }
#define QSTR(k)                                                                                    \
    {                                                                                              \
        .type = Q_STR, .key = k                                                                    \
    }
static const route_def routes[] = {
    {ROUTE("GET", "/v1/health", API_HEALTH, NULL, API_ROLE_NONE, 200)},
    {ROUTE("GET", "/v1/openapi.json", API_OPENAPI, NULL, API_ROLE_NONE, 200)},
    {ROUTE("POST", "/v1/login", API_LOGIN, NULL, API_ROLE_NONE, 200)},
    {ROUTE("POST", "/v1/logout", API_LOGOUT, NULL, API_ROLE_NONE, 200)},
    {ROUTE("GET", "/v1/events", API_EVENTS, NULL, V, 200)},
    {ROUTE("GET", "/metrics", API_METRICS, NULL, API_ROLE_NONE, 200)},
    {ROUTE("POST", "/v1/jobs", API_OP, "submit", O, 201), .body = BODY_SPEC},
    {ROUTE("GET", "/v1/jobs", API_OP, "jobs", V, 200),
     .query = {QSTR("state"), QINT("limit", 1, 10000)}},
    {ROUTE("GET", "/v1/jobs/{}", API_OP, "job", V, 200), .param = PARAM_JOB, .param_key = "id"},
    {ROUTE("GET", "/v1/jobs/{}/result", API_OP, "result", V, 200), .param = PARAM_JOB,
     .param_key = "id"},
    {ROUTE("POST", "/v1/jobs/{}/cancel", API_OP, "cancel", O, 200), .param = PARAM_JOB,
     .param_key = "id"},
    {ROUTE("POST", "/v1/jobs/{}/approve", API_OP, "approve", O, 200), .param = PARAM_JOB,
     .param_key = "id"},
    {ROUTE("GET", "/v1/sites", API_OP, "sites", V, 200)},
    {ROUTE("POST", "/v1/sites/{}/clear", API_OP, "site_clear", A, 200), .param = PARAM_NAME,
     .param_key = "site"},
    {ROUTE("GET", "/v1/stats", API_OP, "stats", V, 200)},
    {ROUTE("GET", "/v1/policy", API_OP, "policy_get", V, 200)},
    {ROUTE("PUT", "/v1/policy", API_OP, "policy_set", A, 200), .body = BODY_FIELDS,
     .fields = {"text"}},
    {ROUTE("POST", "/v1/tokens", API_OP, "token", A, 201), .body = BODY_FIELDS,
     .fields = {"class", "site", "owner", "ttl_s", "max_cores", "max_memory_mb", "max_watts"}},
    {ROUTE("GET", "/v1/api-tokens", API_OP, "api_token_list", A, 200)},
    {ROUTE("POST", "/v1/api-tokens", API_OP, "api_token_create", A, 201), .body = BODY_FIELDS,
     .fields = {"operator", "role", "expires_s"}},
    {ROUTE("DELETE", "/v1/api-tokens/{}", API_OP, "api_token_revoke", A, 200), .param = PARAM_NAME,
     .param_key = "id"},
    {ROUTE("GET", "/v1/audit/head", API_OP, "audit_head", V, 200)},
    {ROUTE("GET", "/v1/audit/prove", API_OP, "audit_prove", V, 200),
     .query = {{.type = Q_INT, .key = "index", .min = 0, .max = INT64_MAX, .required = 1}}},
    {ROUTE("GET", "/v1/audit/entries", API_OP, "audit_entries", V, 200),
     .query = {QINT("start", 0, INT64_MAX), QINT("limit", 1, 1000), QSTR("subject"), QSTR("kind")}},
    {ROUTE("GET", "/v1/models", API_OP, "model_list", V, 200), .query = {QINT("limit", 1, 1000)}},
    {ROUTE("GET", "/v1/models/{}", API_OP, "model_show", V, 200), .param = PARAM_NAME,
     .param_key = "name"},
    {ROUTE("POST", "/v1/models/{}/pool", API_OP, "model_pool", O, 200), .param = PARAM_NAME,
     .param_key = "name", .body = BODY_FIELDS,
     .fields = {"owner", "visits", "rounds", "deadline_s", "own"}},
    {ROUTE("GET", "/v1/power", API_OP, "power_history", V, 200), .query = {QINT("hours", 1, 24)}},
};
#undef ROUTE
#undef QINT
#undef QSTR
#undef V
#undef O
#undef A

/*
 * Whether path matches pattern segment by segment; a "{}" segment matches
 * one segment of [A-Za-z0-9_.-] (1 to 63 characters), copied into param.
 */
static int path_matches(const char *pattern, const char *path, char *param, size_t param_len)
{
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = 0;
            while (path[n] && path[n] != '/') {
                char ch = path[n];
                int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                         (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
                if (!ok || n + 1 >= param_len) return 0;
                param[n] = ch;
                n++;
            }
            if (n == 0 || (n <= 2 && path[0] == '.' && path[n - 1] == '.')) return 0;
            param[n] = 0;
            pattern += 2;
            path += n;
            continue;
        }
        if (*pattern != *path) return 0;
        pattern++;
        path++;
    }
    return *pattern == 0 && *path == 0;
}

/* The query arguments a route takes, into req. 0, or 400 with err set. */
static int add_query(const route_def *d, hub__api_arg_fn arg, void *ctx, cJSON *req, char *err,
                     size_t err_len)
{
    for (size_t i = 0; i < 5 && d->query[i].type != Q_END; i++) {
        const query_def *q = &d->query[i];
        const char *text = arg ? arg(ctx, q->key) : NULL;
        if (!text) {
            if (!q->required) continue;
            snprintf(err, err_len, "query argument '%s' is required", q->key);
            return 400;
        }
        if (q->type == Q_STR) {
            if (strlen(text) > 128) {
                snprintf(err, err_len, "query argument '%s' is over 128 characters", q->key);
                return 400;
            }
            cJSON_AddStringToObject(req, q->key, text);
            continue;
        }
        int64_t v;
        if (util_parse_i64(text, q->min, q->max, &v) != OP_OK) {
            snprintf(err, err_len, "query argument '%s' must be a whole number from %lld to %lld",
                     q->key, (long long)q->min, (long long)q->max);
            return 400;
        }
        jsonx_add_int(req, q->key, v);
    }
    return 0;
}

/* The body's fields into req as the route says. 0, or 400 with err set. */
static int add_body(const route_def *d, const char *body, size_t len, cJSON *req, char *err,
                    size_t err_len)
{
    if (d->body == BODY_NONE) return 0;
    if (!body || len == 0) {
        snprintf(err, err_len, "this call needs a JSON object body");
        return 400;
    }
    char why[160];
    cJSON *obj = jsonx_parse(body, len, why, sizeof why);
    if (!obj || !cJSON_IsObject(obj)) {
        snprintf(err, err_len, "the body is not a JSON object%s%s", obj ? "" : ": ",
                 obj ? "" : why);
        cJSON_Delete(obj);
        return 400;
    }
    if (d->body == BODY_SPEC) {
        /* a spec, or {"specs": [...]}, or {"spec": {...}} as the CLI sends it */
        cJSON *specs = cJSON_DetachItemFromObjectCaseSensitive(obj, "specs");
        cJSON *spec = cJSON_DetachItemFromObjectCaseSensitive(obj, "spec");
        if (specs)
            cJSON_AddItemToObject(req, "specs", specs);
        else if (spec)
            cJSON_AddItemToObject(req, "spec", spec);
        else
            cJSON_AddItemToObject(req, "spec", obj), obj = NULL;
        if (specs && spec) cJSON_Delete(spec);
        cJSON_Delete(obj);
        return 0;
    }
    for (size_t i = 0; i < 8 && d->fields[i]; i++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(obj, d->fields[i]);
        if (v) cJSON_AddItemToObject(req, d->fields[i], v);
    }
    cJSON_Delete(obj);
    return 0;
}

/* The request of an operator command's route. 0, or a status with err set. */
static int build_request(const route_def *d, const char *param, hub__api_arg_fn arg, void *ctx,
                         const char *body, size_t len, cJSON **out, char *err, size_t err_len)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) return 500;
    cJSON_AddStringToObject(req, "cmd", d->cmd);
    int status = add_query(d, arg, ctx, req, err, err_len);
    if (!status) status = add_body(d, body, len, req, err, err_len);
    if (!status && d->param == PARAM_JOB) {
        int64_t id;
        if (util_parse_i64(param, 1, INT64_MAX, &id) != OP_OK) {
            snprintf(err, err_len, "no job '%.64s': job ids are whole numbers from 1", param);
            status = 404;
        } else {
            jsonx_add_int(req, d->param_key, id);
        }
    } else if (!status && d->param == PARAM_NAME) {
        cJSON_DeleteItemFromObjectCaseSensitive(req, d->param_key);
        cJSON_AddStringToObject(req, d->param_key, param);
    }
    if (status) {
        cJSON_Delete(req);
        return status;
    }
    *out = req;
    return 0;
}

/* Static console files: "/" and anything under /console/. */
static int is_static(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, "/console") == 0 ||
           strncmp(path, "/console/", 9) == 0;
}

int hub__api_route(const char *method, const char *path, hub__api_arg_fn arg, void *arg_ctx,
                   const char *body, size_t len, hub__api_routed *route, char *err, size_t err_len,
                   char *allow, size_t allow_len)
{
    memset(route, 0, sizeof *route);
    if (allow_len) allow[0] = 0;
    if (!method || !path) return 400;
    if (is_static(path)) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            snprintf(allow, allow_len, "GET, HEAD");
            snprintf(err, err_len, "%s is not allowed here", method);
            return 405;
        }
        route->kind = API_STATIC;
        route->status_ok = 200;
        return 0;
    }
    char param[64] = "";
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const route_def *d = &routes[i];
        if (!path_matches(d->pattern, path, param, sizeof param)) continue;
        if (strcmp(d->method, method) != 0) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", d->method);
            path_known = 1;
            continue;
        }
        route->kind = d->kind;
        route->role = d->role;
        route->status_ok = d->status_ok;
        route->state_changing = strcmp(method, "GET") != 0;
        if (d->kind != API_OP) return 0;
        return build_request(d, param, arg, arg_ctx, body, len, &route->req, err, err_len);
    }
    if (path_known) {
        snprintf(err, err_len, "%s is not allowed on %.100s (allowed: %s)", method, path, allow);
        return 405;
    }
    snprintf(err, err_len, "no such route: %.100s", path);
    return 404;
}

size_t hub__api_body_limit(const char *method, const char *path)
{
    if (!method || !path || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) return 0;
    if (strcmp(path, "/v1/jobs") == 0 || strcmp(path, "/v1/policy") == 0) return API_LARGE_BODY;
    return API_SMALL_BODY;
}

int hub__api_login_token(const char *body, size_t len, char *out, size_t out_len)
{
    char why[128];
    cJSON *obj = body && len ? jsonx_parse(body, len, why, sizeof why) : NULL;
    const char *text = jsonx_str(obj, "token");
    int rc = OP_EINVAL;
    if (text && strlen(text) < out_len && strlen(text) > 0) {
        snprintf(out, out_len, "%s", text);
        rc = OP_OK;
    }
    cJSON_Delete(obj);
    return rc;
}

int hub__api_status_of(int rc)
{
    switch (rc) {
    case OP_OK:
        return 200;
    case OP_EINVAL:
    case OP_ECAPACITY:
        return 400;
    case OP_EPERM:
        return 403;
    case OP_ENOTFOUND:
        return 404;
    case OP_EEXIST:
    case OP_EUSED:
        return 409;
    case OP_ETOOBIG:
        return 413;
    case OP_EFULL:
        return 429;
    case OP_ESTORE:
    case OP_EIO:
        return 503;
    default:
        return 500;
    }
}

const char *hub__api_code_name(int status)
{
    static const struct {
        int status;
        const char *name;
    } names[] = {{400, "bad_request"},
                 {401, "unauthorized"},
                 {403, "forbidden"},
                 {404, "not_found"},
                 {405, "method_not_allowed"},
                 {409, "conflict"},
                 {413, "too_large"},
                 {415, "unsupported_media_type"},
                 {429, "busy"},
                 {500, "internal"},
                 {503, "unavailable"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].status == status) return names[i].name;
    return "error";
}

int hub__api_role_parse(const char *name)
{
    if (!name) return API_ROLE_NONE;
    if (strcmp(name, "viewer") == 0) return API_ROLE_VIEWER;
    if (strcmp(name, "operator") == 0) return API_ROLE_OPERATOR;
    if (strcmp(name, "admin") == 0) return API_ROLE_ADMIN;
    return API_ROLE_NONE;
}

const char *hub__api_role_name(int role)
{
    static const char *const names[] = {"none", "viewer", "operator", "admin"};
    return role >= 0 && role <= API_ROLE_ADMIN ? names[role] : "none";
}
