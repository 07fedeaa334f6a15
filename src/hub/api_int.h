/*
 * api_int: what the files of the hub's HTTP API share (internal to src/hub/).
 *
 * The API is another door to the operator commands: each call is mapped to
 * a request object ({"cmd": ..., ...}) and run by hub__op_dispatch under the
 * operator its token acts as, in the loop's transaction, and answered only
 * after that transaction commits (as MQTT answers are). The files:
 *
 *   api.c         life of the API (configuration, start, stop), the loop's
 *                 hooks, one request from route to answer
 *   api_route.c   the route table: method and path to a command, a role, a
 *                 body limit (pure: fuzzed)
 *   api_auth.c    API tokens (the api_token_* commands), login sessions,
 *                 who is calling and with which role
 *   api_events.c  job steps and site changes as server-sent events, the
 *                 power history (the power_history command)
 *   api_metrics.c /metrics in the Prometheus text format
 *   api_static.c  the OpenAPI document and the console's files, embedded
 */
#ifndef OUTPOST_HUB_API_INT_H
#define OUTPOST_HUB_API_INT_H

#include "base/conf.h"
#include "hub/hub_int.h"
#include "io/http.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define API_SMALL_BODY (64 * 1024)       /* the limit of most bodies */
#define API_LARGE_BODY (4 * 1024 * 1024) /* submit and policy */
#define API_MAX_SESSIONS 256
#define API_MAX_STEPS 4096 /* job steps remembered per transaction for events */
#define API_POWER_SAMPLES 2016
#define API_PLACEMENT_BUCKETS 12
#define API_MAX_CODES 24
#define API_SESSION_MAX_MS (12 * 3600 * 1000LL)

enum { API_ROLE_NONE = 0, API_ROLE_VIEWER = 1, API_ROLE_OPERATOR = 2, API_ROLE_ADMIN = 3 };

/* "viewer" ... "admin" to API_ROLE_*, API_ROLE_NONE when unknown; and back. */
int hub__api_role_parse(const char *name);
const char *hub__api_role_name(int role);

/* ---------- api_route.c ---------- */

/* What a call is, once routed. */
enum {
    API_OP = 1,  /* an operator command: route.req */
    API_HEALTH,  /* GET /v1/health, no token */
    API_OPENAPI, /* GET /v1/openapi.json, no token */
    API_LOGIN,   /* POST /v1/login: the body's token for a session cookie */
    API_LOGOUT,  /* POST /v1/logout */
    API_EVENTS,  /* GET /v1/events */
    API_METRICS, /* GET /metrics */
    API_STATIC,  /* GET / and /console/...: the console's files */
};

typedef struct hub__api_routed {
    int kind;      /* API_* */
    int role;      /* the least role that may call it */
    int status_ok; /* 200, or 201 for a submit */
    cJSON *req;    /* API_OP: the command's request (caller frees) */
    int state_changing;
} hub__api_routed;

/* A query argument by name, or NULL (http_query over a request, or the fuzzer's). */
typedef const char *(*hub__api_arg_fn)(void *ctx, const char *key);

/*
 * Maps a call to its route: method, path (not decoded), query arguments,
 * and the JSON body (NULL or len 0: none). Returns 0 with *route filled, or
 * the HTTP status of the refusal (400, 404, 405) with the message in err
 * and, for 405, the methods allowed in allow.
 */
int hub__api_route(const char *method, const char *path, hub__api_arg_fn arg, void *arg_ctx,
                   const char *body, size_t len, hub__api_routed *route, char *err, size_t err_len,
                   char *allow, size_t allow_len);
/* The largest body a call to method path may carry (from its head). */
size_t hub__api_body_limit(const char *method, const char *path);
/* A login body's token ({"token": "..."}), copied into out. OP_OK, OP_EINVAL. */
int hub__api_login_token(const char *body, size_t len, char *out, size_t out_len);
/* The HTTP status for an operator command's result code. */
int hub__api_status_of(int rc);
/* The short code of an HTTP status ("bad_request", "not_found", ...). */
const char *hub__api_code_name(int status);

/* ---------- api_auth.c ---------- */

/* Who is calling, once authenticated. */
typedef struct hub__api_caller {
    char op_id[64];
    int role;
    char token_id[17];
    int64_t expires_at_ms; /* the token's, 0 never */
    int by_cookie; /* a session cookie, not a bearer token: state changes need the CSRF header */
    int capped;    /* its role was lowered by the hub's policy (`api OP ROLE`) */
} hub__api_caller;

/*
 * A token's text ("oat1_<id>_<secret>") checked against hub.db: known, not
 * revoked, not expired, its secret's hash equal (compared in constant time).
 * OP_OK with *caller, OP_EPERM (any of those), OP_ESTORE.
 */
int hub__api_check_token(hub *h, const char *text, hub__api_caller *caller);
/*
 * The caller of an HTTP request: its "Authorization: Bearer" token, else
 * its session cookie. OP_OK, OP_EPERM (none or not valid), OP_ESTORE.
 */
int hub__api_authenticate(hub *h, http_req *r, hub__api_caller *caller);
/*
 * A session for the caller (after a login): its cookie value (64 hex) in
 * out, valid until the token's expiry or 12 h. The oldest session goes when
 * the table is full.
 */
void hub__api_session_new(hub *h, const hub__api_caller *caller, char out[65]);
/* Forgets the session of this cookie value (logout). */
void hub__api_session_end(hub *h, const char *cookie);
/*
 * The commands api_token_create {operator, role, expires_s} (the secret
 * answered once, its hash stored, audited "api-token"), api_token_list and
 * api_token_revoke {id} (audited "api-token-revoked"). OP_OK or an error
 * with c->err set.
 */
int hub__op_api_token_create(hub *h, op_call *c);
int hub__op_api_token_list(hub *h, op_call *c);
int hub__op_api_token_revoke(hub *h, op_call *c);

/* ---------- api_events.c ---------- */

/* The job steps counted by outpost_jobs_total (API_STEP_*), from hub__job_event's names. */
enum {
    API_STEP_SUBMITTED,
    API_STEP_PLACED,
    API_STEP_STARTED,
    API_STEP_SUCCEEDED,
    API_STEP_FAILED,
    API_STEP_CANCELLED,
    API_STEP_REQUEUED,
    API_STEP_COUNT
};
extern const char *const hub__api_step_names[API_STEP_COUNT];

/* Committed steps: counted, and each sent to event streams with the state it led to. */
void hub__api_steps_committed(hub *h);
/* A stream opened: every site and the stats are sent again soon, for it to start from. */
void hub__api_stream_opened(hub *h);
/* Every loop iteration: site changes, stats every 5 s, a ping every 15 s, power samples. */
void hub__api_tick(hub *h, int64_t now_mono_ms);
/* The power_history command {hours}: offered and used watts per class. */
int hub__op_power_history(hub *h, op_call *c);

/* ---------- api_metrics.c ---------- */

/* The Prometheus text exposition of the hub (malloc'd, caller frees), or NULL. */
char *hub__api_metrics_text(hub *h, size_t *len);
/* Seconds from submit to placement, for the histogram. */
void hub__api_observe_placement(hub *h, double seconds);
/* An answer of status given (outpost_http_requests_total). */
void hub__api_count_status(hub *h, int status);

/* ---------- api_static.c ---------- */

/* The OpenAPI document (static, NUL-terminated). */
const char *hub__api_openapi(size_t *len);
/*
 * The embedded console file for a path ("/" is /console/index.html): its
 * bytes and content type, or NULL when there is none (a traversal, an
 * unknown name).
 */
const unsigned char *hub__api_console_file(const char *path, size_t *len, const char **type);

/* ---------- the API's state (api.c) ---------- */

typedef struct hub__api_session {
    uint8_t sid[32];
    char token_id[17];
    int64_t expires_at_ms;
    int64_t created_mono_ms;
    int used;
} hub__api_session;

typedef struct hub__api_pending {
    http_req *req;
    int status;
    char *body;
    struct hub__api_pending *next;
} hub__api_pending;

typedef struct hub__api_site_seen {
    char id[64];
    char status[16];
    double draw_watts, headroom_watts;
} hub__api_site_seen;

typedef struct hub__power_ring {
    int64_t t_s[API_POWER_SAMPLES];
    float offered_watts[API_POWER_SAMPLES];
    float used_watts[API_POWER_SAMPLES];
    size_t start, count;
} hub__power_ring;

struct hub_api {
    http_server *http; /* NULL when http_listen is not set */
    char listen[128];
    char cert_path[PATH_MAX], key_path[PATH_MAX];
    int metrics_auth;
    int64_t power_step_s;
    int64_t stream_queue_bytes;
    hub__api_pending *pending, *pending_tail; /* answers waiting for the commit */
    struct {
        int64_t job;
        int step;
        char site[64];
    } steps[API_MAX_STEPS]; /* job steps of the open transaction */
    size_t n_steps;
    uint64_t tx_jobs[API_STEP_COUNT]; /* steps of the open transaction, counted */
    uint64_t steps_unsent; /* steps past API_MAX_STEPS in one transaction (counted, not sent) */
    uint64_t jobs_total[API_STEP_COUNT];
    uint64_t placement_buckets[API_PLACEMENT_BUCKETS];
    uint64_t placement_count;
    double placement_sum_s;
    struct {
        int status;
        uint64_t count;
    } codes[API_MAX_CODES];
    hub__api_session sessions[API_MAX_SESSIONS];
    hub__api_site_seen *seen;
    size_t n_seen;
    int64_t next_stats_ms, next_ping_ms, next_sites_ms, next_power_ms;
    hub__power_ring power[3]; /* pod, car, dc */
    int64_t audit_bytes, audit_bytes_mono_ms;
};

/* ---------- api.c ---------- */

/*
 * The API's settings from the configuration (http_listen, http_cert,
 * http_key, http_metrics_auth, http_stream_queue_bytes,
 * power_history_step_s): allocates h->api. OP_OK, OP_EINVAL (message in
 * err), OP_ENOMEM.
 */
int hub__api_configure(hub *h, const conf *c, char *err, size_t err_len);
/* Listens when http_listen is set (logged). OP_OK, or the http error (logged). */
int hub__api_start(hub *h);
/* Stops listening (deferred answers 503) and frees h->api. */
void hub__api_free(hub *h);
/*
 * Waits up to timeout_ms for the HTTP server or either bus connection to
 * have input; 0 when the API is off (the caller waits in bus_loop then).
 */
int hub__api_wait(hub *h, int timeout_ms);
/* Runs the HTTP server: handlers dispatch into the loop's open transaction. */
void hub__api_run(hub *h);
/*
 * After the loop's commit (committed 1) or rollback (0): the deferred
 * answers go out (503 after a rollback), the committed steps are counted
 * and sent to streams.
 */
void hub__api_after_commit(hub *h, int committed);
/* A step of a job's history in the open transaction (hub__job_event). */
void hub__api_job_step(hub *h, int64_t job_id, const char *event, const char *site);

#endif
