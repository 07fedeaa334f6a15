/*
 * Unit tests for routeio, the routing problem's outside forms: the JSON
 * instance form (what each field becomes, and every refusal naming its JSON
 * path, with nothing left allocated), the text formats passed through, the
 * solution as JSON and back, the CVRPLIB .sol text and the SVG picture read
 * back and put through route's checker, and travel-time factors. Instances
 * are small and written here; one real CVRPLIB file from ../shared/data/vrp
 * is used when that folder is on the machine (skipped with a message when
 * it is not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#include "base/err.h"
#include "base/os.h"
#include "route/route.h"
#include "route/routeio.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REAL_VRP TESTKIT_SHARED_DATA "/vrp/x/X-n101-k25.vrp"

/* Fragments of a valid instance; each error case below breaks one thing. */
#define DEPOT "\"depot\":{\"x\":0,\"y\":0}"
#define VEHICLES "\"vehicles\":[{\"capacity\":10}]"
#define STOPS "\"stops\":[{\"x\":1,\"y\":1}]"
#define STOP_WITH(field) "\"stops\":[{\"x\":1,\"y\":1," field "}]"
#define VEHICLE_WITH(field) "\"vehicles\":[{\"capacity\":10," field "}]"

/* Two vehicle kinds and time windows; the hand-checked solution is in solved_yard(). */
static const char *const YARD =
    "{\"name\":\"yard\",\"depot\":{\"x\":0,\"y\":0,\"due\":1000},"
    "\"vehicles\":[{\"name\":\"van\",\"capacity\":5,\"count\":2},"
    "{\"name\":\"truck\",\"capacity\":20,\"count\":1,\"shift_start\":10,\"shift_end\":900}],"
    "\"stops\":[{\"id\":\"a\",\"x\":3,\"y\":4,\"demand\":2,\"service\":5},"
    "{\"id\":\"b\",\"x\":6,\"y\":8,\"demand\":3,\"ready\":20,\"due\":200},"
    "{\"id\":\"c\",\"x\":0,\"y\":-5,\"demand\":1}]}";

static const char *const TINY_CVRP =
    "NAME : tiny\r\nTYPE : CVRP\r\nDIMENSION : 4\r\nEDGE_WEIGHT_TYPE : EUC_2D\r\n"
    "CAPACITY : 10\r\nNODE_COORD_SECTION\r\n1\t0\t0\r\n2\t3\t4\r\n3\t0\t1\r\n4\t1\t1\r\n"
    "DEMAND_SECTION\r\n1 0\r\n2 6\r\n3 5\r\n4 4\r\nDEPOT_SECTION\r\n1\r\n-1\r\nEOF\r\n";

static route_instance parse_ok(const char *text)
{
    route_instance inst;
    char err[256] = "";
    int rc = routeio_parse_any(text, "t", &inst, err, sizeof err);
    if (rc != OP_OK) fail_msg("parse: %s", err);
    return inst;
}

/* Refused with OP_EINVAL naming want, and nothing left in the instance to free. */
static void expect_parse_error(const char *text, const char *want)
{
    route_instance inst;
    char err[512] = "";
    memset(&inst, 0xa5, sizeof inst);
    int rc = routeio_parse_any(text, "j", &inst, err, sizeof err);
    if (rc != OP_EINVAL) fail_msg("rc %d for %s", rc, text);
    testkit_assert_contains(err, want);
    assert_int_equal(inst.n, 0);
    assert_null(inst.x);
    assert_null(inst.ids);
    assert_null(inst.matrix);
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* A solution from a flat list: routes separated by -1, each route's vehicle kind in types. */
static route_solution make_solution(const int *flat, int len, const int *types)
{
    int n_routes = 1, n_nodes = 0;
    for (int i = 0; i < len; i++)
        flat[i] < 0 ? n_routes++ : n_nodes++;
    route_solution sol;
    assert_int_equal(route_solution_alloc(&sol, n_routes, n_nodes), OP_OK);
    int r = 0, x = 0;
    for (int i = 0; i < len; i++) {
        if (flat[i] < 0) {
            sol.start[++r] = x;
            continue;
        }
        sol.nodes[x++] = flat[i];
    }
    sol.start[n_routes] = x;
    for (r = 0; r < n_routes; r++)
        sol.type[r] = types ? types[r] : 0;
    return sol;
}

/* ---- the JSON instance form ---- */

static void test_json_minimal(void **state)
{
    (void)state;
    route_instance inst =
        parse_ok(" \n\t{" DEPOT "," VEHICLES ","
                 "\"stops\":[{\"x\":3,\"y\":4,\"demand\":2},{\"x\":-3,\"y\":4}]}");
    assert_string_equal(inst.name, "t"); /* no "name": the caller's */
    assert_int_equal(inst.n, 3);
    assert_string_equal(inst.ids[0], "depot");
    assert_string_equal(inst.ids[1], "1"); /* stops without an id are numbered */
    assert_string_equal(inst.ids[2], "2");
    assert_int_equal(inst.demand[1], 2);
    assert_int_equal(inst.demand[2], 0);
    assert_false(inst.has_windows);
    assert_false(inst.round_nint);
    assert_null(inst.matrix);
    assert_int_equal(inst.n_types, 1);
    assert_string_equal(inst.types[0].name, "vehicle");
    assert_int_equal(inst.types[0].capacity, 10);
    assert_int_equal(inst.types[0].count, 0); /* unlimited */
    assert_true(inst.types[0].shift_start == 0);
    assert_true(inst.types[0].shift_end == ROUTE_NO_LIMIT);
    assert_int_equal(inst.capacity, 10);
    assert_int_equal(inst.vehicles, 0);
    for (int i = 0; i < inst.n; i++) {
        assert_true(inst.ready[i] == 0);
        assert_true(inst.due[i] == ROUTE_NO_LIMIT);
        assert_true(inst.service[i] == 0);
    }
    assert_true(near(route_distance(&inst, 0, 1), 5));
    assert_true(near(route_distance(&inst, 1, 2), 6));
    route_instance_clear(&inst);
}

static void test_json_windows_and_vehicle_kinds(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    assert_string_equal(inst.name, "yard");
    assert_int_equal(inst.n, 4);
    assert_true(inst.has_windows);
    assert_int_equal(inst.n_types, 2);
    assert_string_equal(inst.types[0].name, "van");
    assert_int_equal(inst.types[0].capacity, 5);
    assert_int_equal(inst.types[0].count, 2);
    assert_true(inst.types[0].shift_start == 0);
    assert_true(inst.types[0].shift_end == 1000); /* bounded by the depot's due time */
    assert_string_equal(inst.types[1].name, "truck");
    assert_true(inst.types[1].shift_start == 10);
    assert_true(inst.types[1].shift_end == 900);
    assert_int_equal(inst.capacity, 5); /* types[0], for the benchmark formats */
    assert_int_equal(inst.vehicles, 2);
    assert_true(inst.due[0] == 1000);
    assert_true(inst.service[1] == 5);
    assert_true(inst.ready[2] == 20 && inst.due[2] == 200);
    assert_true(inst.due[3] == ROUTE_NO_LIMIT);
    route_instance_clear(&inst);

    /* a long name is cut to what the instance holds */
    char text[512];
    snprintf(text, sizeof text, "{\"name\":\"%070d\"," DEPOT "," VEHICLES "," STOPS "}", 7);
    inst = parse_ok(text);
    assert_int_equal(strlen(inst.name), sizeof inst.name - 1);
    route_instance_clear(&inst);
    /* a 63-character id is the longest allowed */
    snprintf(text, sizeof text, "{" DEPOT "," VEHICLES "," STOP_WITH("\"id\":\"%063d\"") "}", 5);
    inst = parse_ok(text);
    assert_int_equal(strlen(inst.ids[1]), 63);
    route_instance_clear(&inst);
}

static void test_json_matrix_and_distance(void **state)
{
    (void)state;
    /* no coordinates: the matrix gives travel times, asymmetric, its diagonal ignored */
    route_instance inst = parse_ok("{\"depot\":{}," VEHICLES ",\"stops\":[{},{}],"
                                   "\"matrix\":[[9,1,2],[3,9,4],[5,6,9]]}");
    assert_non_null(inst.matrix);
    assert_true(near(route_distance(&inst, 0, 1), 1));
    assert_true(near(route_distance(&inst, 1, 0), 3));
    assert_true(near(route_distance(&inst, 2, 1), 6));
    assert_true(near(route_distance(&inst, 1, 1), 0));
    route_instance_clear(&inst);

    inst = parse_ok("{" DEPOT "," VEHICLES "," STOPS ",\"distance\":\"euclidean-rounded\"}");
    assert_true(inst.round_nint);
    assert_true(near(route_distance(&inst, 0, 1), 1)); /* sqrt(2) to the nearest integer */
    route_instance_clear(&inst);
    inst = parse_ok("{" DEPOT "," VEHICLES "," STOPS ",\"distance\":\"euclidean\"}");
    assert_false(inst.round_nint);
    assert_true(near(route_distance(&inst, 0, 1), sqrt(2)));
    route_instance_clear(&inst);
}

static void test_text_formats_pass_through(void **state)
{
    (void)state;
    route_instance inst = parse_ok(TINY_CVRP);
    assert_int_equal(inst.n, 4);
    assert_int_equal(inst.capacity, 10);
    assert_true(inst.round_nint);
    assert_null(inst.ids); /* customers are numbers */
    assert_int_equal(inst.n_types, 1);
    route_instance_clear(&inst);
    /* a broken text file is reported by line, as route_parse does */
    expect_parse_error("NAME : x\nDIMENSION : 3\nCAPACITY : 0\n", "j:3: CAPACITY must be > 0");
}

/* ---- refusals, each naming where ---- */

static const struct {
    const char *text;
    const char *want;
} top_level_errors[] = {
    {"{" DEPOT "," VEHICLES "}", "j: stops: must be a list of 1 to 5000 stops"},
    {"{" DEPOT "," VEHICLES ",\"stops\":{}}", "j: stops: must be a list of 1 to 5000 stops"},
    {"{" DEPOT "," VEHICLES ",\"stops\":[]}", "j: stops: must be a list of 1 to 5000 stops"},
    {"{" VEHICLES "," STOPS "}", "j: depot: missing (an object)"},
    {"{\"depot\":[0,0]," VEHICLES "," STOPS "}", "j: depot: missing (an object)"},
    {"{\"depot\":{\"x\":0}," VEHICLES "," STOPS "}", "j: depot: x and y must be numbers given"},
    {"{\"depot\":{\"x\":\"0\",\"y\":0}," VEHICLES "," STOPS "}", "j: depot: x and y must be"},
    {"{\"depot\":{\"x\":2e9,\"y\":0}," VEHICLES "," STOPS "}", "j: depot: x and y must be"},
    {"{\"depot\":{\"x\":0,\"y\":0,\"demand\":0}," VEHICLES "," STOPS "}",
     "j: depot.demand: the depot has no demand"},
    {"{\"depot\":{\"x\":0,\"y\":0,\"due\":-1}," VEHICLES "," STOPS "}",
     "j: depot: ready, due and service must be times >= 0, ready <= due"},
    {"{\"depot\":{}," VEHICLES "," STOPS "}",
     "j: without a matrix every stop and the depot need x and y"},
    {"{" DEPOT "," VEHICLES ",\"stops\":[{\"x\":1,\"y\":1},{}]}",
     "j: without a matrix every stop and the depot need x and y"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"distance\":\"km\"}",
     "j: distance: 'euclidean' or 'euclidean-rounded'"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"distance\":1}", "j: distance: 'euclidean' or"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":5}",
     "j: matrix: must have 2 rows (the depot, then each stop)"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":[[0,1]]}", "j: matrix: must have 2 rows"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":[[0,1],[1]]}",
     "j: matrix[1]: must have 2 numbers"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":[[0,1],7]}", "j: matrix[1]: must have 2"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":[[0,-1],[1,0]]}",
     "j: matrix[0][1]: must be a number 0 to 1e9"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":[[0,1],[\"1\",0]]}",
     "j: matrix[1][0]: must be a number"},
    {"{" DEPOT "," VEHICLES "," STOPS ",\"matrix\":[[0,1],[2e9,0]]}",
     "j: matrix[1][0]: must be a number"},
};

static const struct {
    const char *text;
    const char *want;
} stop_errors[] = {
    {"{" DEPOT "," VEHICLES ",\"stops\":[{\"x\":1,\"y\":1},5]}", "j: stops[1]: not an object"},
    {"{" DEPOT "," VEHICLES ",\"stops\":[{\"x\":1,\"y\":1},{\"y\":1}]}",
     "j: stops[1]: x and y must be numbers given together"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"demand\":-1") "}",
     "j: stops[0].demand: must be an integer >= 0"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"demand\":1.5") "}", "j: stops[0].demand: must be"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"demand\":\"3\"") "}", "j: stops[0].demand: must be"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"demand\":1e19") "}", "j: stops[0].demand: must be"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"id\":\"\"") "}",
     "j: stops[0].id: must be a string of 1 to 63 characters"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"id\":7") "}", "j: stops[0].id: must be a string"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"id\":null") "}", "j: stops[0].id: must be a string"},
    {"{" DEPOT "," VEHICLES ","
     "\"stops\":[{\"id\":\"a\",\"x\":1,\"y\":1},{\"id\":\"a\",\"x\":2,\"y\":1}]}",
     "j: stops[1].id: 'a' used twice"},
    /* an id that is another stop's number */
    {"{" DEPOT "," VEHICLES ",\"stops\":[{\"x\":1,\"y\":1},{\"id\":\"1\",\"x\":2,\"y\":1}]}",
     "j: stops[1].id: '1' used twice"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"ready\":-1") "}",
     "j: stops[0]: ready, due and service must be times >= 0, ready <= due"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"ready\":50,\"due\":10") "}",
     "j: stops[0]: ready, due and service"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"service\":\"5\"") "}",
     "j: stops[0]: ready, due and service"},
    {"{" DEPOT "," VEHICLES "," STOP_WITH("\"due\":2e15") "}", "j: stops[0]: ready, due and"},
};

static const struct {
    const char *text;
    const char *want;
} vehicle_errors[] = {
    {"{" DEPOT "," STOPS "}", "j: vehicles: must be a list of 1 to 64 vehicle kinds"},
    {"{" DEPOT ",\"vehicles\":[]," STOPS "}", "j: vehicles: must be a list of 1 to 64"},
    {"{" DEPOT ",\"vehicles\":{\"capacity\":1}," STOPS "}", "j: vehicles: must be a list"},
    {"{" DEPOT ",\"vehicles\":[{\"capacity\":1},5]," STOPS "}", "j: vehicles[1]: not an object"},
    {"{" DEPOT "," VEHICLE_WITH("\"name\":\"abcdefghijklmnopqrstuvwxyz789012\"") "," STOPS "}",
     "j: vehicles[0].name: longer than 31"},
    {"{" DEPOT ",\"vehicles\":[{\"capacity\":1},{\"capacity\":2}]," STOPS "}",
     "j: vehicles[1].name: 'vehicle' used twice"},
    {"{" DEPOT ",\"vehicles\":[{\"count\":1}]," STOPS "}",
     "j: vehicles[0].capacity: must be an integer >= 1"},
    {"{" DEPOT ",\"vehicles\":[{\"capacity\":0}]," STOPS "}", "j: vehicles[0].capacity: must"},
    {"{" DEPOT ",\"vehicles\":[{\"capacity\":2.5}]," STOPS "}", "j: vehicles[0].capacity: must"},
    {"{" DEPOT ",\"vehicles\":[{\"capacity\":\"9\"}]," STOPS "}", "j: vehicles[0].capacity:"},
    {"{" DEPOT "," VEHICLE_WITH("\"count\":-1") "," STOPS "}",
     "j: vehicles[0].count: must be 0 (unlimited) to 100000"},
    {"{" DEPOT "," VEHICLE_WITH("\"count\":100001") "," STOPS "}", "j: vehicles[0].count: must"},
    {"{" DEPOT "," VEHICLE_WITH("\"count\":1.5") "," STOPS "}", "j: vehicles[0].count: must"},
    {"{" DEPOT "," VEHICLE_WITH("\"shift_start\":20,\"shift_end\":10") "," STOPS "}",
     "j: vehicles[0]: shift_start and shift_end must be times >= 0, start <= end"},
    {"{" DEPOT "," VEHICLE_WITH("\"shift_start\":-1") "," STOPS "}",
     "j: vehicles[0]: shift_start and shift_end"},
};

static void test_json_errors_top_level(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof top_level_errors / sizeof top_level_errors[0]; i++)
        expect_parse_error(top_level_errors[i].text, top_level_errors[i].want);
}

static void test_json_errors_stops(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof stop_errors / sizeof stop_errors[0]; i++)
        expect_parse_error(stop_errors[i].text, stop_errors[i].want);
}

static void test_json_errors_vehicles(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vehicle_errors / sizeof vehicle_errors[0]; i++)
        expect_parse_error(vehicle_errors[i].text, vehicle_errors[i].want);
}

static void test_json_syntax_error_names_the_line(void **state)
{
    (void)state;
    expect_parse_error("{\"depot\":", "j:1: not valid JSON");
    expect_parse_error("{\n  \"depot\": {\"x\": 0, \"y\": 0},\n  \"stops\": [1,,2]\n}",
                       "j:3: not valid JSON");
}

/* A JSON instance with n_stops stops on a line and n_kinds vehicle kinds (malloc'd). */
static char *sized_instance(int n_stops, int n_kinds)
{
    size_t cap = 256 + (size_t)n_stops * 32 + (size_t)n_kinds * 48, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "{" DEPOT ",\"vehicles\":[");
    for (int k = 0; k < n_kinds; k++)
        len += (size_t)snprintf(text + len, cap - len, "%s{\"name\":\"k%d\",\"capacity\":9}",
                                k ? "," : "", k);
    len += (size_t)snprintf(text + len, cap - len, "],\"stops\":[");
    for (int i = 0; i < n_stops; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s{\"x\":%d,\"y\":0}", i ? "," : "", i);
    snprintf(text + len, cap - len, "]}");
    return text;
}

static void test_json_size_bounds(void **state)
{
    (void)state;
    char *text = sized_instance(ROUTEIO_MAX_STOPS, ROUTE_MAX_TYPES);
    route_instance inst = parse_ok(text);
    assert_int_equal(inst.n, ROUTEIO_MAX_STOPS + 1);
    assert_int_equal(inst.n_types, ROUTE_MAX_TYPES);
    route_instance_clear(&inst);
    free(text);
    text = sized_instance(ROUTEIO_MAX_STOPS + 1, 1);
    expect_parse_error(text, "j: stops: must be a list of 1 to 5000 stops");
    free(text);
    text = sized_instance(1, ROUTE_MAX_TYPES + 1);
    expect_parse_error(text, "j: vehicles: must be a list of 1 to 64 vehicle kinds");
    free(text);

    /* past 64 MiB the text is refused before it is parsed */
    size_t big = 64u * 1024 * 1024 + 2;
    text = malloc(big + 1);
    assert_non_null(text);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    text[big] = '\0';
    char err[256] = "";
    assert_int_equal(routeio_parse_any(text, "huge", &inst, err, sizeof err), OP_ETOOBIG);
    testkit_assert_contains(err, "huge: larger than");
    assert_null(inst.x);
    free(text);
}

/* ---- solutions as JSON ---- */

/*
 * YARD solved by hand: the van takes a then b (5 + 5 + 10 = 20; it reaches
 * a at 5, leaves at 10 after service, reaches b at 15 and waits for its
 * ready time 20, is back at 30); the truck, whose shift starts at 10, takes
 * c (5 + 5; there at 15, back at 20). Cost 30.
 */
static route_solution solved_yard(const route_instance *inst)
{
    const int flat[] = {1, 2, -1, 3};
    const int types[] = {0, 1};
    route_solution sol = make_solution(flat, 4, types);
    char err[256] = "";
    if (route_check_solution(inst, &sol, err, sizeof err) != OP_OK) fail_msg("check: %s", err);
    assert_true(near(sol.cost, 30));
    return sol;
}

static void expect_numbers(const cJSON *array, const double *want, int n)
{
    assert_true(cJSON_IsArray(array));
    assert_int_equal(cJSON_GetArraySize(array), n);
    for (int i = 0; i < n; i++)
        assert_true(near(cJSON_GetArrayItem(array, i)->valuedouble, want[i]));
}

static void expect_route(const cJSON *route, const char *vehicle, const char *stops_json,
                         double load, double distance, const double *arrival, double back_at)
{
    assert_string_equal(cJSON_GetObjectItem(route, "vehicle")->valuestring, vehicle);
    char *stops = cJSON_PrintUnformatted(cJSON_GetObjectItem(route, "stops"));
    assert_string_equal(stops, stops_json);
    free(stops);
    assert_true(near(cJSON_GetObjectItem(route, "load")->valuedouble, load));
    assert_true(near(cJSON_GetObjectItem(route, "distance")->valuedouble, distance));
    const cJSON *arrivals = cJSON_GetObjectItem(route, "arrival");
    if (!arrival) {
        assert_null(arrivals);
        assert_null(cJSON_GetObjectItem(route, "back_at"));
        return;
    }
    expect_numbers(arrivals, arrival, cJSON_GetArraySize(cJSON_GetObjectItem(route, "stops")));
    assert_true(near(cJSON_GetObjectItem(route, "back_at")->valuedouble, back_at));
}

static void test_solution_json_fields(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    route_solution sol = solved_yard(&inst);
    hgs_stats stats = {.iterations = 77, .elapsed_s = 1.5, .best_found_s = 0.25};
    char *text = routeio_solution_to_json(&inst, &sol, &stats);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "instance")->valuestring, "yard");
    assert_true(near(cJSON_GetObjectItem(root, "cost")->valuedouble, 30));
    assert_int_equal(cJSON_GetObjectItem(root, "routes_used")->valueint, 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "feasible")));
    assert_int_equal(cJSON_GetObjectItem(root, "iterations")->valueint, 77);
    assert_true(near(cJSON_GetObjectItem(root, "elapsed_s")->valuedouble, 1.5));
    assert_true(near(cJSON_GetObjectItem(root, "best_found_s")->valuedouble, 0.25));
    const cJSON *routes = cJSON_GetObjectItem(root, "routes");
    assert_int_equal(cJSON_GetArraySize(routes), 2);
    const double van_arrival[] = {5, 20}, truck_arrival[] = {15};
    expect_route(cJSON_GetArrayItem(routes, 0), "van", "[\"a\",\"b\"]", 5, 20, van_arrival, 30);
    expect_route(cJSON_GetArrayItem(routes, 1), "truck", "[\"c\"]", 1, 10, truck_arrival, 20);
    cJSON_Delete(root);
    free(text);

    /* without stats there are no solver figures */
    text = routeio_solution_to_json(&inst, &sol, NULL);
    root = cJSON_Parse(text);
    assert_null(cJSON_GetObjectItem(root, "iterations"));
    assert_null(cJSON_GetObjectItem(root, "elapsed_s"));
    cJSON_Delete(root);
    free(text);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* to_json, from_json, and the same routes, kinds and cost through the checker. */
static void expect_json_round_trip(const route_instance *inst, const route_solution *sol)
{
    char *text = routeio_solution_to_json(inst, sol, NULL);
    assert_non_null(text);
    route_solution back;
    char err[256] = "";
    if (routeio_solution_from_json(inst, text, &back, err, sizeof err) != OP_OK)
        fail_msg("from_json: %s", err);
    assert_int_equal(back.n_routes, sol->n_routes);
    for (int r = 0; r <= sol->n_routes; r++)
        assert_int_equal(back.start[r], sol->start[r]);
    for (int r = 0; r < sol->n_routes; r++)
        assert_int_equal(back.type[r], sol->type[r]);
    for (int x = 0; x < sol->start[sol->n_routes]; x++)
        assert_int_equal(back.nodes[x], sol->nodes[x]);
    if (route_check_solution(inst, &back, err, sizeof err) != OP_OK) fail_msg("check: %s", err);
    assert_true(near(back.cost, sol->cost));
    route_solution_clear(&back);
    free(text);
}

static void test_solution_json_round_trip(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    route_solution sol = solved_yard(&inst);
    expect_json_round_trip(&inst, &sol);
    route_solution_clear(&sol);
    route_instance_clear(&inst);

    /* a text-format instance: stops are customer numbers, no arrival times */
    inst = parse_ok(TINY_CVRP);
    const int flat[] = {1, 3, -1, 2};
    sol = make_solution(flat, 4, NULL);
    char err[256] = "";
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    char *text = routeio_solution_to_json(&inst, &sol, NULL);
    cJSON *root = cJSON_Parse(text);
    /* 0 -> 1 is 5, 1 -> 3 is 3.6 and 3 -> 0 is 1.4, each rounded */
    expect_route(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "routes"), 0), "vehicle", "[1,3]", 10,
                 5 + 4 + 1, NULL, 0);
    cJSON_Delete(root);
    free(text);
    expect_json_round_trip(&inst, &sol);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

static void expect_solution_error(const route_instance *inst, const char *text, const char *want)
{
    route_solution sol;
    char err[256] = "";
    memset(&sol, 0xa5, sizeof sol);
    int rc = routeio_solution_from_json(inst, text, &sol, err, sizeof err);
    if (rc != OP_EINVAL) fail_msg("rc %d for %s", rc, text);
    testkit_assert_contains(err, want);
    assert_null(sol.start);
    assert_null(sol.nodes);
}

static void test_solution_from_json_errors(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    expect_solution_error(&inst, "{\"routes\":", "not valid JSON");
    expect_solution_error(&inst, "{}", "routes: must be a list of at most 4 routes");
    expect_solution_error(&inst, "{\"routes\":{}}", "routes: must be a list");
    expect_solution_error(&inst, "{\"routes\":[{},{},{},{},{}]}", "routes: must be a list of at");
    expect_solution_error(&inst, "{\"routes\":[{\"stops\":[\"a\"]},{}]}",
                          "routes[1].stops: missing");
    expect_solution_error(&inst, "{\"routes\":[{\"stops\":\"a\"}]}", "routes[0].stops: missing");
    expect_solution_error(&inst, "{\"routes\":[{\"vehicle\":\"bike\",\"stops\":[\"a\"]}]}",
                          "routes[0].vehicle: no vehicle kind 'bike'");
    const char *const not_stops[] = {"\"zz\"", "\"depot\"", "0", "4", "1.5", "-1", "null", "[1]"};
    for (size_t i = 0; i < sizeof not_stops / sizeof not_stops[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"routes\":[{\"stops\":[\"a\",%s]}]}", not_stops[i]);
        expect_solution_error(&inst, text, "routes[0].stops[1]: not a stop of this instance");
    }
    /* more stop entries than the instance has nodes do not fit */
    expect_solution_error(&inst, "{\"routes\":[{\"stops\":[1,2,3,1,2]}]}",
                          "routes[0].stops[4]: not a stop");
    route_instance_clear(&inst);

    /* names are only for instances that have them */
    inst = parse_ok(TINY_CVRP);
    expect_solution_error(&inst, "{\"routes\":[{\"stops\":[\"1\"]}]}",
                          "routes[0].stops[0]: not a stop");
    route_instance_clear(&inst);
}

/* Read back as given, not checked: a stop twice is the checker's to find. */
static void test_solution_from_json_is_not_checked(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    route_solution sol;
    char err[256] = "";
    assert_int_equal(
        routeio_solution_from_json(&inst, "{\"routes\":[{\"stops\":[\"a\",1]},{\"stops\":[]}]}",
                                   &sol, err, sizeof err),
        OP_OK);
    assert_int_equal(sol.n_routes, 2);
    assert_int_equal(sol.start[1], 2);
    assert_int_equal(sol.start[2], 2);
    assert_int_equal(sol.type[0], 0); /* no vehicle named: the first kind */
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, "customer 1 visited twice");
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* ---- .sol text, read back ---- */

/*
 * Reads "Route #k: a b c" lines (k counting from 1) and the "Cost" line,
 * and puts the routes through route_check; returns the checker's cost and
 * sets *printed to the written one.
 */
static double check_sol_text(const route_instance *inst, const char *text, double *printed)
{
    int **routes = calloc((size_t)inst->n, sizeof *routes);
    int *lens = calloc((size_t)inst->n, sizeof *lens), n_routes = 0, have_cost = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        int number = 0, used = 0;
        if (sscanf(line, "Route #%d:%n", &number, &used) == 1 && used > 0) {
            assert_int_equal(number, n_routes + 1);
            assert_true(n_routes < inst->n);
            routes[n_routes] = malloc((size_t)inst->n * sizeof(int));
            lens[n_routes] = 0;
            for (const char *p = line + used; p < end;) {
                int c, step;
                if (sscanf(p, "%d%n", &c, &step) != 1) break;
                assert_true(lens[n_routes] < inst->n);
                routes[n_routes][lens[n_routes]++] = c;
                p += step;
            }
            n_routes++;
        } else {
            assert_int_equal(sscanf(line, "Cost %lf", printed), 1);
            have_cost = 1;
            assert_int_equal(end[1], '\0'); /* the last line */
        }
        line = end + 1;
    }
    assert_true(have_cost);
    double cost = -1;
    char err[256] = "";
    int rc = route_check(inst, (const int *const *)routes, lens, n_routes, &cost, err, sizeof err);
    for (int r = 0; r < n_routes; r++)
        free(routes[r]);
    free(routes);
    free(lens);
    if (rc != OP_OK) fail_msg("check: %s", err);
    return cost;
}

static void test_sol_text_round_trip(void **state)
{
    (void)state;
    route_instance inst = parse_ok(TINY_CVRP);
    const int flat[] = {3, 1, -1, 2};
    route_solution sol = make_solution(flat, 4, NULL);
    char err[256] = "";
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    char *text = routeio_solution_to_sol(&inst, &sol);
    assert_string_equal(text, "Route #1: 3 1\nRoute #2: 2\nCost 12\n"); /* rounded distances */
    double printed, checked = check_sol_text(&inst, text, &printed);
    if (!near(checked, printed)) fail_msg("checked %g, printed %g", checked, printed);
    free(text);
    route_solution_clear(&sol);
    route_instance_clear(&inst);

    /* unrounded distances: two decimals */
    inst = parse_ok(YARD);
    sol = solved_yard(&inst);
    sol.cost = 30.004;
    text = routeio_solution_to_sol(&inst, &sol);
    testkit_assert_contains(text, "\nCost 30.00\n");
    checked = check_sol_text(&inst, text, &printed);
    assert_true(fabs(checked - printed) < 0.005);
    free(text);
    route_solution_clear(&sol);

    /* no routes at all */
    assert_int_equal(route_solution_alloc(&sol, 0, 0), OP_OK);
    text = routeio_solution_to_sol(&inst, &sol);
    assert_string_equal(text, "Cost 0.00\n");
    free(text);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* ---- the SVG picture, read back ---- */

typedef struct point {
    double x, y;
} point;

/* Drawn at the same spot: stops are written with one decimal, the depot's square from its corner.
 */
static int same_spot(point a, point b, double tolerance)
{
    return fabs(a.x - b.x) <= tolerance && fabs(a.y - b.y) <= tolerance;
}

/* The depot (at_depot) or a stop not yet taken drawn at p; -1 if none. */
static int node_at(const point *where, int n, point p, const char *taken, int at_depot)
{
    if (at_depot) return same_spot(where[0], p, 0.11) ? 0 : -1;
    for (int i = 1; i < n; i++)
        if (!taken[i] && same_spot(where[i], p, 0.01)) return i;
    return -1;
}

/* Where the picture puts each node: the depot square's centre, then one circle per stop. */
static void read_node_positions(const route_instance *inst, const char *svg, point *where)
{
    const char *rect = strstr(svg, "<rect x=\"");
    assert_non_null(rect);
    assert_int_equal(sscanf(rect, "<rect x=\"%lf\" y=\"%lf\"", &where[0].x, &where[0].y), 2);
    where[0].x += 5;
    where[0].y += 5;
    const char *p = svg;
    for (int i = 1; i < inst->n; i++) {
        p = strstr(p, "<circle cx=\"");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "<circle cx=\"%lf\" cy=\"%lf\"", &where[i].x, &where[i].y), 2);
        p++;
    }
    assert_null(strstr(p, "<circle cx=\"")); /* one circle per stop, no more */
}

/* The points of the polyline at p into out (at most max); returns how many. */
static int read_polyline(const char *p, point *out, int max)
{
    const char *at = strstr(p, "points=\"");
    assert_non_null(at);
    at += strlen("points=\"");
    int n = 0, used = 0;
    point q;
    while (sscanf(at, " %lf,%lf%n", &q.x, &q.y, &used) == 2) {
        assert_true(n < max);
        out[n++] = q;
        at += used;
    }
    assert_int_equal(*at, '"');
    return n;
}

/*
 * Turns each polyline back into a route (depot, stops, depot) by the node
 * drawn at each point, puts the routes through route_check and returns the
 * checker's cost. Stops drawn on the same spot are interchangeable: they
 * cost the same.
 */
static double check_svg(const route_instance *inst, const char *svg, int *n_routes)
{
    point *where = calloc((size_t)inst->n, sizeof *where);
    point *line = calloc((size_t)inst->n + 1, sizeof *line);
    char *taken = calloc((size_t)inst->n, 1);
    int **routes = calloc((size_t)inst->n, sizeof *routes);
    int *lens = calloc((size_t)inst->n, sizeof *lens);
    read_node_positions(inst, svg, where);
    *n_routes = 0;
    for (const char *p = strstr(svg, "<polyline"); p; p = strstr(p + 1, "<polyline")) {
        assert_true(*n_routes < inst->n);
        int len = read_polyline(p, line, inst->n + 1);
        assert_true(len >= 2);
        int *route = routes[*n_routes] = malloc((size_t)inst->n * sizeof(int));
        lens[(*n_routes)++] = len - 2; /* the depot at both ends is implicit */
        for (int k = 0; k < len; k++) {
            int node = node_at(where, inst->n, line[k], taken, k == 0 || k == len - 1);
            if (node < 0) fail_msg("nothing drawn at %.1f,%.1f", line[k].x, line[k].y);
            if (node == 0) continue;
            taken[node] = 1;
            route[k - 1] = node;
        }
    }
    double cost = -1;
    char err[256] = "";
    int rc = route_check(inst, (const int *const *)routes, lens, *n_routes, &cost, err, sizeof err);
    for (int r = 0; r < *n_routes; r++)
        free(routes[r]);
    free(routes);
    free(lens);
    free(taken);
    free(line);
    free(where);
    if (rc != OP_OK) fail_msg("check: %s", err);
    return cost;
}

/* The whole picture: one svg element, routes and cost in the title, every point in the frame. */
static void expect_svg(const route_instance *inst, const route_solution *sol, const char *svg)
{
    assert_int_equal(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39), 0);
    size_t len = strlen(svg);
    assert_true(len > 7 && !strcmp(svg + len - 7, "</svg>\n"));
    char title[128];
    snprintf(title, sizeof title, "<title>%s: %d routes, cost %.2f</title>", inst->name,
             sol->n_routes, sol->cost);
    testkit_assert_contains(svg, title);
    int n_routes;
    double cost = check_svg(inst, svg, &n_routes);
    assert_int_equal(n_routes, sol->n_routes);
    assert_true(fabs(cost - sol->cost) < 1e-6);
    for (const char *p = strstr(svg, "<circle cx=\""); p; p = strstr(p + 1, "<circle cx=\"")) {
        double x, y;
        assert_int_equal(sscanf(p, "<circle cx=\"%lf\" cy=\"%lf\"", &x, &y), 2);
        assert_true(x >= 0 && x <= 800 && y >= 0 && y <= 800);
    }
}

static void test_svg_round_trip(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    route_solution sol = solved_yard(&inst);
    char *svg = routeio_solution_to_svg(&inst, &sol);
    assert_non_null(svg);
    expect_svg(&inst, &sol, svg);
    free(svg);
    route_solution_clear(&sol);
    route_instance_clear(&inst);

    /* two stops on the same spot, and every stop on its own route */
    inst = parse_ok("{" DEPOT "," VEHICLES ",\"stops\":[{\"x\":2,\"y\":2},{\"x\":2,\"y\":2},"
                    "{\"x\":-4,\"y\":1}]}");
    const int flat[] = {2, -1, 1, -1, 3};
    sol = make_solution(flat, 5, NULL);
    char err[256] = "";
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    svg = routeio_solution_to_svg(&inst, &sol);
    expect_svg(&inst, &sol, svg);
    free(svg);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/*
 * The instance name goes into the picture's title and caption escaped: a
 * name with markup (from a JSON "name" or a CVRPLIB NAME line) must not
 * make the SVG ill-formed or run script when the file is opened.
 */
static void test_svg_escapes_the_name(void **state)
{
    (void)state;
    route_instance inst = parse_ok("{\"name\":\"a<b&c</title><script>x()</script>\"," DEPOT
                                   "," VEHICLES "," STOPS "}");
    const int flat[] = {1};
    route_solution sol = make_solution(flat, 1, NULL);
    char err[256] = "";
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    char *svg = routeio_solution_to_svg(&inst, &sol);
    assert_null(strstr(svg, "<script"));
    testkit_assert_contains(svg, "a&lt;b&amp;c");
    free(svg);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* ---- travel-time factors ---- */

static void test_factors(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    routeio_factors f;
    char err[256] = "";
    assert_int_equal(routeio_factors_parse(&inst, "{\"arcs\":[[\"depot\",\"a\",2],[2,0,100]]}", &f,
                                           err, sizeof err),
                     OP_OK);
    assert_int_equal(f.n, inst.n);
    double plain_0a = route_distance(&inst, 0, 1), plain_b0 = route_distance(&inst, 2, 0);
    double plain_a0 = route_distance(&inst, 1, 0);
    routeio_factors_attach(&inst, &f);
    assert_true(near(route_distance(&inst, 0, 1), 2 * plain_0a));   /* by id */
    assert_true(near(route_distance(&inst, 2, 0), 100 * plain_b0)); /* by number */
    assert_true(near(route_distance(&inst, 1, 0), plain_a0));       /* arcs are one-way */
    routeio_factors_clear(&f);
    assert_null(f.factor);
    inst.arc_factor = NULL;

    /* an empty list changes nothing, and attaching no factors leaves the instance alone */
    assert_int_equal(routeio_factors_parse(&inst, "{\"arcs\":[]}", &f, err, sizeof err), OP_OK);
    routeio_factors_clear(&f);
    routeio_factors_attach(&inst, &f);
    assert_null(inst.arc_factor);
    route_instance_clear(&inst);
}

static void expect_factors_error(const route_instance *inst, const char *text, const char *want)
{
    routeio_factors f;
    char err[256] = "";
    assert_int_equal(routeio_factors_parse(inst, text, &f, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, want);
    assert_null(f.factor);
}

static void test_factors_errors(void **state)
{
    (void)state;
    route_instance inst = parse_ok(YARD);
    const char *const bad_arcs[] = {
        "[\"a\",\"zz\",1]",
        "[\"a\",\"b\",0]",
        "[\"a\",\"b\",-1]",
        "[\"a\",\"b\",100.5]",
        "[\"a\",\"b\",\"2\"]",
        "[\"a\",\"b\"]",
        "[\"a\",\"b\",1,1]",
        "[4,0,1]",
        "[0.5,0,1]",
        "{\"from\":\"a\"}",
        "5",
    };
    for (size_t i = 0; i < sizeof bad_arcs / sizeof bad_arcs[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"arcs\":[[0,1,1.5],%s]}", bad_arcs[i]);
        expect_factors_error(&inst, text,
                             "arcs[1]: must be [from, to, factor] with known stops and 0 < factor "
                             "<= 100");
    }
    expect_factors_error(&inst, "{\"arcs\":", "not valid JSON");
    expect_factors_error(&inst, "{}", "arcs: missing (a list of [from, to, factor])");
    expect_factors_error(&inst, "{\"arcs\":{}}", "arcs: missing");
    route_instance_clear(&inst);

    /* names are only for instances that have them */
    inst = parse_ok(TINY_CVRP);
    expect_factors_error(&inst, "{\"arcs\":[[\"1\",2,1.5]]}", "arcs[0]: must be");
    route_instance_clear(&inst);
}

/* ---- a real instance ---- */

/* Customers in file order, a new route whenever the next one would overfill the vehicle. */
static route_solution fill_in_order(const route_instance *inst)
{
    int *flat = malloc((size_t)inst->n * 2 * sizeof(int)), len = 0;
    int64_t load = 0;
    for (int c = 1; c < inst->n; c++) {
        if (load + inst->demand[c] > inst->capacity) {
            flat[len++] = -1;
            load = 0;
        }
        flat[len++] = c;
        load += inst->demand[c];
    }
    route_solution sol = make_solution(flat, len, NULL);
    free(flat);
    return sol;
}

static void test_real_instance(void **state)
{
    (void)state;
    testkit_require_path(REAL_VRP);
    char *text = NULL;
    assert_int_equal(os_read_file(REAL_VRP, 1 << 24, &text, NULL), OP_OK);
    route_instance inst = parse_ok(text);
    free(text);
    assert_int_equal(inst.n, 101);
    route_solution sol = fill_in_order(&inst);
    char err[256] = "";
    if (route_check_solution(&inst, &sol, err, sizeof err) != OP_OK) fail_msg("check: %s", err);
    char *sol_text = routeio_solution_to_sol(&inst, &sol);
    double printed;
    double checked = check_sol_text(&inst, sol_text, &printed);
    assert_true(near(checked, sol.cost));
    assert_true(near(printed, sol.cost)); /* rounded distances: an integer cost */
    free(sol_text);
    char *svg = routeio_solution_to_svg(&inst, &sol);
    expect_svg(&inst, &sol, svg);
    free(svg);
    expect_json_round_trip(&inst, &sol);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_minimal),
        cmocka_unit_test(test_json_windows_and_vehicle_kinds),
        cmocka_unit_test(test_json_matrix_and_distance),
        cmocka_unit_test(test_text_formats_pass_through),
        cmocka_unit_test(test_json_errors_top_level),
        cmocka_unit_test(test_json_errors_stops),
        cmocka_unit_test(test_json_errors_vehicles),
        cmocka_unit_test(test_json_syntax_error_names_the_line),
        cmocka_unit_test(test_json_size_bounds),
        cmocka_unit_test(test_solution_json_fields),
        cmocka_unit_test(test_solution_json_round_trip),
        cmocka_unit_test(test_solution_from_json_errors),
        cmocka_unit_test(test_solution_from_json_is_not_checked),
        cmocka_unit_test(test_sol_text_round_trip),
        cmocka_unit_test(test_svg_round_trip),
        cmocka_unit_test(test_svg_escapes_the_name),
        cmocka_unit_test(test_factors),
        cmocka_unit_test(test_factors_errors),
        cmocka_unit_test(test_real_instance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
