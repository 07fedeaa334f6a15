/*
 * A route job's result view carries its map (routemap.c): the instance's
 * coordinates from the job's input and the solution's routes as node
 * indices, for the web console to draw. Other kinds, damaged or hostile
 * solutions and instances without coordinates give no map and no error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/jobstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_JSON                                                                                   \
    "{\"name\":\"day\",\"depot\":{\"x\":0,\"y\":0},"                                               \
    "\"vehicles\":[{\"name\":\"van\",\"capacity\":10}],"                                           \
    "\"stops\":[{\"id\":\"a\",\"x\":3,\"y\":4,\"demand\":2},{\"id\":\"b\",\"x\":6,\"y\":8,"        \
    "\"demand\":2},{\"id\":\"c\",\"x\":-3,\"y\":-4,\"demand\":9}]}"
#define MATRIX_JSON                                                                                \
    "{\"name\":\"m\",\"vehicles\":[{\"name\":\"van\",\"capacity\":10}],"                           \
    "\"stops\":[{\"id\":\"a\",\"demand\":1}],\"matrix\":[[0,5],[5,0]]}"

/* The file {name, sha256, data_b64} a spec or a result carries, as JSON text (caller frees). */
static char *file_json(const char *name, const char *text)
{
    char sha[65];
    util_sha256_hex(text, strlen(text), sha);
    char *b64 = util_b64_encode(text, strlen(text));
    assert_non_null(b64);
    size_t len = strlen(b64) + 256;
    char *out = malloc(len);
    assert_non_null(out);
    snprintf(out, len, "{\"name\":\"%s\",\"sha256\":\"%s\",\"data_b64\":\"%s\"}", name, sha, b64);
    free(b64);
    return out;
}

/* A route job on the instance, placed on dc-1, its result applied with solution.json. */
static int64_t route_job_done(hubfix *f, const char *instance, const char *solution)
{
    char *input = file_json("day.json", instance);
    size_t len = strlen(input) + 64;
    char *spec = malloc(len);
    assert_non_null(spec);
    snprintf(spec, len, "{\"kind\":\"route\",\"inputs\":[%s]}", input);
    int64_t id = hubfix_submit(f, spec);
    free(spec);
    free(input);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    char *output = file_json("solution.json", solution);
    len = strlen(output) + 128;
    char *text = malloc(len);
    assert_non_null(text);
    snprintf(text, len, "{\"job\":%lld,\"attempt\":1,\"exit_code\":0,\"outputs\":[%s]}",
             (long long)id, output);
    cJSON *item = cJSON_Parse(text);
    assert_non_null(item);
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, "dc-1"), item, 0), OP_OK);
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    cJSON_Delete(item);
    free(text);
    free(output);
    return id;
}

/* The answer to {"cmd":"result","id":id}, asserted ok (caller deletes). */
static cJSON *result_of(hubfix *f, int64_t id)
{
    char req[80];
    snprintf(req, sizeof req, "{\"cmd\":\"result\",\"id\":%lld}", (long long)id);
    cJSON *resp = hubfix_request(f, req);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    return resp;
}

static const cJSON *route_map(const cJSON *resp)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"),
                                            "route_map");
}

static void test_route_result_carries_its_map(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = route_job_done(f, DAY_JSON,
                                "{\"cost\":30,\"routes\":[{\"vehicle\":\"van\",\"stops\":[\"b\","
                                "\"a\"]},{\"vehicle\":\"van\",\"stops\":[\"c\"]}]}");
    cJSON *resp = result_of(f, id);
    const cJSON *m = route_map(resp);
    assert_non_null(m);
    const cJSON *points = cJSON_GetObjectItemCaseSensitive(m, "points");
    assert_int_equal(cJSON_GetArraySize(points), 4); /* the depot, then a, b, c */
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(points, 2), 0)->valueint, 6);
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(points, 2), 1)->valueint, 8);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "ids"), 3)->valuestring, "c");
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(m, "routes");
    assert_int_equal(cJSON_GetArraySize(routes), 2);
    const cJSON *first = cJSON_GetArrayItem(routes, 0);
    assert_string_equal(jsonx_str(first, "vehicle"), "van");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(first, "nodes");
    assert_int_equal(cJSON_GetArraySize(nodes), 2);
    assert_int_equal(cJSON_GetArrayItem(nodes, 0)->valueint, 2); /* b */
    assert_int_equal(cJSON_GetArrayItem(nodes, 1)->valueint, 1); /* a */
    double distance = 0;
    assert_int_equal(jsonx_num(first, "distance", &distance), OP_OK);
    assert_true(distance > 19.999 && distance < 20.001); /* 0 -> b 10, b -> a 5, a -> 0 5 */
    assert_int_equal(jsonx_num(m, "cost", &distance), OP_OK);
    assert_true(distance > 29.999 && distance < 30.001); /* and 0 -> c -> 0 */
    cJSON_Delete(resp);
}

/* What a site could send instead of a solution: no map, and the result is still answered. */
static void test_damaged_or_hostile_solution_gives_no_map(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    static const char *const bad[] = {
        "not json at all",
        "{\"routes\":[{\"vehicle\":\"van\",\"stops\":[\"zz\"]}]}",
        "{\"routes\":[{\"vehicle\":\"lorry\",\"stops\":[\"a\"]}]}",
        "{\"routes\":[{\"vehicle\":\"van\",\"stops\":[99999999999]}]}",
        "{\"routes\":7}",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t id = route_job_done(f, DAY_JSON, bad[i]);
        cJSON *resp = result_of(f, id);
        assert_null(route_map(resp));
        cJSON_Delete(resp);
    }
}

/* A travel-time matrix has no coordinates to draw; other kinds have no plan. */
static void test_no_map_without_coordinates_or_for_other_kinds(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id =
        route_job_done(f, MATRIX_JSON, "{\"routes\":[{\"vehicle\":\"van\",\"stops\":[\"a\"]}]}");
    cJSON *resp = result_of(f, id);
    assert_null(route_map(resp));
    cJSON_Delete(resp);
    int64_t noop = hubfix_submit(f, "{\"kind\":\"noop\"}");
    resp = result_of(f, noop);
    assert_null(route_map(resp));
    cJSON_Delete(resp);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_route_result_carries_its_map),
        HUB_TEST(test_damaged_or_hostile_solution_gives_no_map),
        HUB_TEST(test_no_map_without_coordinates_or_for_other_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
