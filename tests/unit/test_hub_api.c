/*
 * The hub's HTTP API without sockets: the route table (a body cannot choose
 * the command or add fields the route does not name, path parameters and
 * query arguments are checked), API tokens (stored hashed, refused once
 * revoked or altered), the power history command, and the metrics text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "hub/api_int.h"
#include "hub/hub_db_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct query {
    const char *key, *value;
} query;

static const char *arg_of(void *ctx, const char *key)
{
    for (const query *q = ctx; q && q->key; q++)
        if (strcmp(q->key, key) == 0) return q->value;
    return NULL;
}

/* Routes a call; returns the status (0 when routed) with the route in *r. */
static int route(const char *method, const char *path, const query *q, const char *body,
                 hub__api_routed *r, char *allow)
{
    char err[256], allow_buf[64];
    return hub__api_route(method, path, arg_of, (void *)q, body, body ? strlen(body) : 0, r, err,
                          sizeof err, allow ? allow : allow_buf, 64);
}

static void test_a_body_cannot_choose_the_command(void **state)
{
    hub__api_routed r;
    assert_int_equal(route("POST", "/v1/jobs", NULL,
                           "{\"cmd\": \"policy_set\", \"kind\": \"noop\", \"once\": true}", &r,
                           NULL),
                     0);
    assert_string_equal(jsonx_str(r.req, "cmd"), "submit");
    assert_null(cJSON_GetObjectItemCaseSensitive(r.req, "once"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(r.req, "spec"));
    assert_int_equal(r.role, API_ROLE_OPERATOR);
    assert_int_equal(r.status_ok, 201);
    cJSON_Delete(r.req);
    /* only the fields a route names are copied */
    assert_int_equal(route("PUT", "/v1/policy", NULL,
                           "{\"text\": \"version 2\\n\", \"cmd\": \"token\", \"rid\": \"x\"}", &r,
                           NULL),
                     0);
    assert_string_equal(jsonx_str(r.req, "cmd"), "policy_set");
    assert_null(cJSON_GetObjectItemCaseSensitive(r.req, "rid"));
    assert_int_equal(r.role, API_ROLE_ADMIN);
    cJSON_Delete(r.req);
}

static void test_paths_and_queries_are_checked(void **state)
{
    hub__api_routed r;
    char allow[64];
    assert_int_equal(route("GET", "/v1/jobs/12/result", NULL, NULL, &r, NULL), 0);
    int64_t id = 0;
    assert_int_equal(jsonx_int(r.req, "id", 1, 100, &id), OP_OK);
    assert_int_equal(id, 12);
    cJSON_Delete(r.req);
    assert_int_equal(route("GET", "/v1/jobs/0", NULL, NULL, &r, NULL), 404);
    assert_int_equal(route("GET", "/v1/jobs/1e3", NULL, NULL, &r, NULL), 404);
    assert_int_equal(route("GET", "/v1/models/..", NULL, NULL, &r, NULL), 404);
    assert_int_equal(route("GET", "/v1/models/a%2Fb", NULL, NULL, &r, NULL), 404);
    assert_int_equal(route("GET", "/v1/jobs/", NULL, NULL, &r, NULL), 404);
    assert_int_equal(route("DELETE", "/v1/jobs", NULL, NULL, &r, allow), 405);
    assert_string_equal(allow, "POST, GET");
    assert_int_equal(
        route("GET", "/v1/jobs", (const query[]){{"limit", "0"}, {NULL, NULL}}, NULL, &r, NULL),
        400);
    assert_int_equal(route("GET", "/v1/audit/prove", NULL, NULL, &r, NULL), 400);
    assert_int_equal(route("GET", "/v1/jobs",
                           (const query[]){{"state", "queued"}, {"limit", "5"}, {NULL, NULL}}, NULL,
                           &r, NULL),
                     0);
    assert_string_equal(jsonx_str(r.req, "state"), "queued");
    cJSON_Delete(r.req);
    assert_int_equal(route("POST", "/v1/jobs", NULL, "[1]", &r, NULL), 400);
    assert_int_equal(route("POST", "/v1/jobs", NULL, NULL, &r, NULL), 400);
    assert_int_equal(route("GET", "/console/../hub.db", NULL, NULL, &r, NULL), 0);
    assert_int_equal(r.kind, API_STATIC);
    size_t len;
    const char *type;
    assert_null(hub__api_console_file("/console/../hub.db", &len, &type));
    assert_non_null(hub__api_console_file("/", &len, &type));
    assert_int_equal(hub__api_body_limit("POST", "/v1/jobs"), API_LARGE_BODY);
    assert_int_equal(hub__api_body_limit("POST", "/v1/login"), API_SMALL_BODY);
    assert_int_equal(hub__api_body_limit("GET", "/v1/jobs"), 0);
}

static void test_tokens_are_stored_hashed_and_revocable(void **state)
{
    hubfix *f = *state;
    cJSON *resp = hubfix_request(
        f, "{\"cmd\":\"api_token_create\",\"operator\":\"op-x\",\"role\":\"viewer\"}");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    const char *text = jsonx_str(data, "token"), *id = jsonx_str(data, "id");
    assert_non_null(text);
    hub__api_caller caller;
    assert_int_equal(hub__api_check_token(f->h, text, &caller), OP_OK);
    assert_string_equal(caller.op_id, "op-x");
    assert_int_equal(caller.role, API_ROLE_VIEWER);
    hubdb_api_token row;
    assert_int_equal(hubdb_api_token_get(f->h->db, id, &row), OP_OK);
    assert_null(strstr(text, row.hash));
    assert_null(strstr(row.hash, text + 22));
    char altered[160];
    snprintf(altered, sizeof altered, "%s", text);
    altered[strlen(altered) - 1] = altered[strlen(altered) - 1] == '0' ? '1' : '0';
    assert_int_equal(hub__api_check_token(f->h, altered, &caller), OP_EPERM);
    assert_int_equal(hub__api_check_token(f->h, "oat1_short", &caller), OP_EPERM);
    char req[128];
    snprintf(req, sizeof req, "{\"cmd\":\"api_token_revoke\",\"id\":\"%s\"}", id);
    cJSON_Delete(hubfix_request(f, req));
    assert_int_equal(hub__api_check_token(f->h, text, &caller), OP_EPERM);
    cJSON_Delete(resp);
    resp =
        hubfix_request(f, "{\"cmd\":\"api_token_create\",\"operator\":\"op-x\",\"role\":\"root\"}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    cJSON_Delete(resp);
}

static void test_power_history_and_metrics(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "pod-1", CLASS_POD, 4, 400, 40);
    assert_non_null(f->h->api);
    hub__api_tick(f->h, 1);
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"power_history\",\"hours\":1}");
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "classes"),
        "pod");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(pod, "offered_w")), 1);
    cJSON_Delete(resp);
    hub__api_observe_placement(f->h, 0.2);
    size_t len = 0;
    char *text = hub__api_metrics_text(f->h, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE outpost_jobs_total counter\n"));
    assert_non_null(strstr(text, "outpost_placement_seconds_bucket{le=\"0.25\"} 1\n"));
    assert_non_null(strstr(text, "outpost_placement_seconds_bucket{le=\"0.1\"} 0\n"));
    assert_non_null(strstr(text, "outpost_sites{class=\"pod\",state=\"alive\"} 1\n"));
    assert_non_null(strstr(text, "outpost_site_power_watts{site=\"pod-1\",kind=\"envelope\"} 400"));
    free(text);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_body_cannot_choose_the_command),
        cmocka_unit_test(test_paths_and_queries_are_checked),
        HUB_TEST(test_tokens_are_stored_hashed_and_revocable),
        HUB_TEST(test_power_history_and_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
