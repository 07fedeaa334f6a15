/*
 * Unit tests of the routing solver (src/hgs.c) and the routing formats
 * (src/routeio.c): optimal costs on small instances cross-checked by an
 * exhaustive solver, determinism for a seed, resume from a checkpoint never
 * worse, the anytime limit on an injected clock, impossible instances named
 * with their culprit, the JSON form with its errors, solution round trips,
 * travel-time factors, and real instances from ../shared/data/vrp (skipped
 * with a message when that folder is missing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "helpers/testkit.h"
#include "route/hgs.h"
#include "route/route.h"
#include "route/routeio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VRP_DIR TESTKIT_SHARED_DATA "/vrp"

/* ---- an exhaustive solver for n <= 8 customers: every order, cut optimally ---- */

/* Cost of serving order[i..j-1] in one route, or INFINITY when infeasible. */
static double route_cost(const route_instance *inst, const int *order, int i, int j)
{
    int64_t load = 0;
    double d = 0, t = inst->types[0].shift_start;
    int prev = 0;
    for (int x = i; x <= j; x++) {
        int c = x < j ? order[x] : 0;
        double leg = route_distance(inst, prev, c);
        d += leg;
        if (inst->has_windows) {
            t += (prev ? inst->service[prev] : 0) + leg;
            if (c && t < inst->ready[c]) t = inst->ready[c];
            if (t > (c ? inst->due[c] : inst->types[0].shift_end) + 1e-9) return INFINITY;
        }
        if (c) load += inst->demand[c];
        prev = c;
    }
    return load > inst->capacity ? INFINITY : d;
}

/* Best split of one order into at most max_routes routes (0 = any number). */
static double best_split(const route_instance *inst, const int *order, int nc, int max_routes)
{
    double pot[10][10];
    int kmax = max_routes ? max_routes : nc;
    for (int k = 0; k <= kmax; k++)
        for (int j = 0; j <= nc; j++)
            pot[k][j] = INFINITY;
    pot[0][0] = 0;
    for (int k = 0; k < kmax; k++)
        for (int i = 0; i < nc; i++) {
            if (isinf(pot[k][i])) continue;
            for (int j = i + 1; j <= nc; j++) {
                double c = route_cost(inst, order, i, j);
                if (pot[k][i] + c < pot[k + 1][j]) pot[k + 1][j] = pot[k][i] + c;
            }
        }
    double best = INFINITY;
    for (int k = 1; k <= kmax; k++)
        if (pot[k][nc] < best) best = pot[k][nc];
    return best;
}

static double exact(const route_instance *inst)
{
    int nc = inst->n - 1, order[9], c[9] = {0};
    for (int i = 0; i < nc; i++)
        order[i] = i + 1;
    double best = best_split(inst, order, nc, inst->vehicles);
    /* Heap's algorithm: every permutation */
    for (int i = 0; i < nc;) {
        if (c[i] < i) {
            int s = i % 2 ? c[i] : 0, t = order[s];
            order[s] = order[i];
            order[i] = t;
            double v = best_split(inst, order, nc, inst->vehicles);
            if (v < best) best = v;
            c[i]++;
            i = 0;
        } else {
            c[i++] = 0;
        }
    }
    return best;
}

/* A small instance in the Solomon or CVRPLIB text form, from a seeded generator. */
static char *small_text(unsigned seed, int nc, int windows, int vehicles, int capacity)
{
    static char buf[4096];
    size_t len = 0;
    unsigned s = seed * 2654435761u + 12345u;
#define NEXT() (s = s * 1103515245u + 12345u, (s >> 8) % 100)
    if (windows) {
        len += (size_t)snprintf(buf + len, sizeof buf - len,
                                "SMALL%u\n\nVEHICLE\nNUMBER CAPACITY\n %d %d\n\nCUSTOMER\n"
                                "CUST NO. XCOORD. YCOORD. DEMAND READY TIME DUE DATE SERVICE TIME\n"
                                "0 50 50 0 0 400 0\n",
                                seed, vehicles, capacity);
        for (int i = 1; i <= nc; i++) {
            unsigned x = NEXT(), y = NEXT(), d = 1 + NEXT() % 9, r = NEXT() * 2;
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%d %u %u %u %u %u 10\n", i, x, y,
                                    d, r, r + 60 + NEXT());
        }
    } else {
        len += (size_t)snprintf(buf + len, sizeof buf - len,
                                "NAME : small%u\nTYPE : CVRP\nDIMENSION : %d\n"
                                "EDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : %d\nNODE_COORD_SECTION\n"
                                "1 50 50\n",
                                seed, nc + 1, capacity);
        for (int i = 2; i <= nc + 1; i++) {
            unsigned x = NEXT(), y = NEXT();
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%d %u %u\n", i, x, y);
        }
        len += (size_t)snprintf(buf + len, sizeof buf - len, "DEMAND_SECTION\n1 0\n");
        for (int i = 2; i <= nc + 1; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%d %u\n", i, 1 + NEXT() % 9);
        snprintf(buf + len, sizeof buf - len, "DEPOT_SECTION\n1\n-1\nEOF\n");
    }
#undef NEXT
    return buf;
}

static route_instance parse_ok(const char *text)
{
    route_instance inst;
    char err[256] = "";
    int rc = routeio_parse_any(text, "t", &inst, err, sizeof err);
    if (rc != OP_OK) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, OP_OK);
    return inst;
}

static double solve(const route_instance *inst, uint64_t seed, long iterations, route_solution *out)
{
    hgs_params p = {0};
    p.seed = seed;
    p.max_iterations = iterations;
    char err[256] = "";
    route_solution sol;
    int rc = hgs_solve(inst, &p, &sol, NULL, err, sizeof err);
    if (rc != OP_OK) fprintf(stderr, "hgs: %s\n", err);
    assert_int_equal(rc, OP_OK);
    double cost = sol.cost;
    if (out)
        *out = sol;
    else
        route_solution_clear(&sol);
    return cost;
}

static void test_optimal_on_small_instances(void **state)
{
    (void)state;
    int checked = 0;
    for (unsigned seed = 1; seed <= 12; seed++) {
        int windows = seed % 2, nc = 5 + (int)seed % 4; /* 5..8 customers */
        route_instance inst = parse_ok(small_text(seed, nc, windows, windows ? 4 : 0, 15));
        double want = exact(&inst);
        if (isinf(want)) {
            route_instance_clear(&inst);
            continue;
        }
        double got = solve(&inst, seed, 2000, NULL);
        if (fabs(got - want) > 1e-6)
            fprintf(stderr, "instance %u (%s, %d customers): hgs %.4f, exact %.4f\n", seed,
                    windows ? "VRPTW" : "CVRP", nc, got, want);
        assert_true(fabs(got - want) < 1e-6);
        checked++;
        route_instance_clear(&inst);
    }
    assert_true(checked >= 8);
}

static void test_deterministic_for_a_seed(void **state)
{
    (void)state;
    route_instance inst = parse_ok(small_text(99, 8, 1, 5, 20));
    route_solution a, b;
    solve(&inst, 7, 300, &a);
    solve(&inst, 7, 300, &b);
    assert_int_equal(a.n_routes, b.n_routes);
    assert_memory_equal(a.start, b.start, sizeof(int) * (size_t)(a.n_routes + 1));
    assert_memory_equal(a.nodes, b.nodes, sizeof(int) * (size_t)a.start[a.n_routes]);
    assert_true(a.cost == b.cost);
    route_solution_clear(&a);
    route_solution_clear(&b);
    route_instance_clear(&inst);
}

static void test_resume_never_worse(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len;
    const char *path = VRP_DIR "/x/X-n101-k25.vrp";
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "SKIP part: %s missing; resuming on a generated instance only\n", path);
        text = strdup(small_text(5, 8, 0, 0, 12));
    } else {
        assert_int_equal(os_read_file(path, 1 << 24, &text, &len), OP_OK);
    }
    route_instance inst = parse_ok(text);
    free(text);
    route_solution first;
    double c1 = solve(&inst, 1, 5, &first);
    /* through the checkpoint's JSON form, as `outpost route --resume` does */
    char *json = routeio_solution_to_json(&inst, &first, NULL);
    assert_non_null(json);
    route_solution back;
    char err[256];
    assert_int_equal(routeio_solution_from_json(&inst, json, &back, err, sizeof err), OP_OK);
    free(json);
    for (uint64_t seed = 2; seed <= 4; seed++) {
        hgs_params p = {0};
        p.seed = seed;
        p.max_iterations = 3;
        p.start = &back;
        route_solution again;
        assert_int_equal(hgs_solve(&inst, &p, &again, NULL, err, sizeof err), OP_OK);
        assert_true(again.cost <= c1 + 1e-9);
        route_solution_clear(&again);
    }
    route_solution_clear(&back);
    route_solution_clear(&first);
    route_instance_clear(&inst);
}

static double fake_now;
static double fake_clock(void)
{
    fake_now += 0.001; /* every reading moves the clock on a millisecond */
    return fake_now;
}

static void test_time_limit_on_injected_clock(void **state)
{
    (void)state;
    route_instance inst = parse_ok(small_text(3, 8, 1, 5, 20));
    hgs_params p = {0};
    p.time_limit_s = 0.5;
    p.now_s = fake_clock;
    route_solution sol;
    hgs_stats st;
    char err[256];
    fake_now = 0;
    assert_int_equal(hgs_solve(&inst, &p, &sol, &st, err, sizeof err), OP_OK);
    assert_true(st.elapsed_s >= 0.5 && st.elapsed_s < 0.6);
    assert_true(st.best_found_s <= st.elapsed_s);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

static void expect_impossible(const char *text, const char *culprit)
{
    route_instance inst = parse_ok(text);
    hgs_params p = {0};
    p.max_iterations = 10;
    p.strict = 1;
    route_solution sol;
    char err[256] = "";
    assert_int_equal(hgs_solve(&inst, &p, &sol, NULL, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, culprit);
    route_instance_clear(&inst);
}

static void test_impossible_instances_name_the_culprit(void **state)
{
    (void)state;
    expect_impossible("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":10}],"
                      "\"stops\":[{\"id\":\"A\",\"x\":1,\"y\":0,\"demand\":5},"
                      "{\"id\":\"B\",\"x\":2,\"y\":0,\"demand\":11}]}",
                      "stop 'B': demand 11 is more than any vehicle carries (10)");
    expect_impossible("{\"depot\":{\"x\":0,\"y\":0,\"due\":100},\"vehicles\":[{\"capacity\":10}],"
                      "\"stops\":[{\"id\":\"far\",\"x\":60,\"y\":0,\"due\":50},"
                      "{\"id\":\"near\",\"x\":1,\"y\":0}]}",
                      "stop 'far': no vehicle can reach it");
    expect_impossible("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":10,\"count\":1}],"
                      "\"stops\":[{\"x\":1,\"y\":0,\"demand\":6},{\"x\":2,\"y\":0,\"demand\":6}]}",
                      "total demand 12 is more than the whole fleet carries (10)");
}

/* Solves with an iteration limit; the plan passes the checker. */
static route_solution solve_partial(const route_instance *inst, long iterations)
{
    hgs_params p = {0};
    p.seed = 1;
    p.max_iterations = iterations;
    route_solution sol;
    char err[256] = "";
    int rc = hgs_solve(inst, &p, &sol, NULL, err, sizeof err);
    if (rc != OP_OK) fail_msg("hgs: %s", err);
    assert_int_equal(route_check_solution(inst, &sol, err, sizeof err), OP_OK);
    return sol;
}

/* Over-constrained problems get the best plan over the stops that fit and the rest listed. */
static void test_partial_plans(void **state)
{
    (void)state;
    /* a fleet of 2 for 10 stops' demand (3 each, capacity 10), and one stop no van carries */
    char text[2048];
    int len = snprintf(text, sizeof text,
                       "{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":"
                       "[{\"capacity\":10,\"count\":2}],\"stops\":["
                       "{\"id\":\"heavy\",\"x\":1,\"y\":1,\"demand\":11}");
    for (int i = 0; i < 10; i++)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        ",{\"id\":\"s%d\",\"x\":%d,\"y\":%d,\"demand\":3}", i, i % 4, i / 4);
    snprintf(text + len, sizeof text - (size_t)len, "]}");
    route_instance inst = parse_ok(text);
    route_solution sol = solve_partial(&inst, 50);
    assert_int_equal(sol.n_routes, 2);
    assert_int_equal(sol.n_unassigned, 5); /* 4 for room, the heavy one for its demand */
    int heavy = 0;
    for (int u = 0; u < sol.n_unassigned; u++) {
        if (sol.unassigned[u] == 1) {
            heavy = 1;
            assert_int_equal(sol.reason[u], ROUTE_UNSERVED_CAPACITY);
        } else {
            assert_int_equal(sol.reason[u], ROUTE_UNSERVED_FLEET);
        }
    }
    assert_true(heavy);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
    /* every stop unservable: an empty plan, all listed */
    inst = parse_ok("{\"depot\":{\"x\":0,\"y\":0,\"due\":10},\"vehicles\":[{\"capacity\":5}],"
                    "\"stops\":[{\"x\":50,\"y\":0,\"due\":5},{\"x\":1,\"y\":0,\"demand\":9}]}");
    sol = solve_partial(&inst, 5);
    assert_int_equal(sol.n_routes, 0);
    assert_int_equal(sol.n_unassigned, 2);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* The first plan exists before any offspring: one iteration is enough for a full plan. */
static void test_plan_from_the_first_iteration(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len;
    if (os_read_file(VRP_DIR "/solomon/R101.txt", 1 << 20, &text, &len) != OP_OK) {
        skip();
        return;
    }
    route_instance inst = parse_ok(text);
    free(text);
    route_solution sol = solve_partial(&inst, 1);
    assert_int_equal(sol.n_unassigned, 0);
    assert_true(sol.n_routes <= 25);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* Fixed and hourly vehicle costs are in the objective and in the checked cost. */
static void test_vehicle_costs(void **state)
{
    (void)state;
    /* two stops of 5: two small vans (no fixed cost) beat one big truck (fixed cost 100) */
    route_instance inst =
        parse_ok("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":["
                 "{\"name\":\"truck\",\"capacity\":10,\"fixed_cost\":100},"
                 "{\"name\":\"van\",\"capacity\":5,\"count\":2}],"
                 "\"stops\":[{\"x\":10,\"y\":0,\"demand\":5},{\"x\":10,\"y\":1,\"demand\":5}]}");
    route_solution sol = solve_partial(&inst, 30);
    assert_int_equal(sol.n_routes, 2);
    assert_string_equal(inst.types[sol.type[0]].name, "van");
    assert_true(fabs(sol.cost - sol.distance) < 1e-9);
    route_solution_clear(&sol);
    /* without the vans the truck's fixed cost is in the cost */
    inst.types[1].count = 0;
    inst.types[1].capacity = 1;
    sol = solve_partial(&inst, 30);
    assert_int_equal(sol.n_routes, 1);
    assert_true(fabs(sol.cost - sol.distance - 100) < 1e-9);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
    /* 60 per hour on minutes: a stop 10 away, open from 100, 5 of service; leaving at 90
     * the route takes 25 minutes (the waiting a later start avoids is not paid) */
    inst = parse_ok("{\"depot\":{\"x\":0,\"y\":0,\"due\":1000},\"vehicles\":[{\"capacity\":5,"
                    "\"cost_per_hour\":60}],\"stops\":[{\"x\":10,\"y\":0,\"ready\":100,"
                    "\"due\":200,\"service\":5}]}");
    sol = solve_partial(&inst, 5);
    assert_true(fabs(sol.distance - 20) < 1e-9);
    assert_true(fabs(sol.cost - 45) < 1e-9);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* Vehicles first: never more routes than the distance objective, on a real instance. */
static void test_vehicles_first(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len;
    if (os_read_file(VRP_DIR "/solomon/RC101.txt", 1 << 20, &text, &len) != OP_OK) {
        skip();
        return;
    }
    route_instance inst = parse_ok(text);
    free(text);
    route_solution by_distance = solve_partial(&inst, 100);
    hgs_params p = {0};
    p.seed = 1;
    p.max_iterations = 100;
    p.objective = HGS_OBJECTIVE_VEHICLES;
    route_solution by_vehicles;
    char err[256] = "";
    assert_int_equal(hgs_solve(&inst, &p, &by_vehicles, NULL, err, sizeof err), OP_OK);
    assert_int_equal(route_check_solution(&inst, &by_vehicles, err, sizeof err), OP_OK);
    assert_true(by_vehicles.n_routes <= by_distance.n_routes);
    assert_true(by_vehicles.n_routes <= 16); /* best known 14 */
    route_solution_clear(&by_distance);
    route_solution_clear(&by_vehicles);
    route_instance_clear(&inst);
}

static void test_json_form(void **state)
{
    (void)state;
    /* two vehicle kinds: only the truck can carry the pallet; a matrix gives travel times */
    const char *text =
        "{\"name\":\"yard\",\"depot\":{\"x\":0,\"y\":0,\"due\":1000},"
        "\"vehicles\":[{\"name\":\"van\",\"capacity\":5,\"count\":2},"
        "{\"name\":\"truck\",\"capacity\":20,\"count\":1,\"shift_start\":10,\"shift_end\":900}],"
        "\"stops\":[{\"id\":\"pallet\",\"x\":3,\"y\":4,\"demand\":12,\"service\":5},"
        "{\"id\":\"box\",\"x\":-3,\"y\":4,\"demand\":2,\"ready\":20,\"due\":200},"
        "{\"id\":\"letter\",\"x\":0,\"y\":-5,\"demand\":1}]}";
    route_instance inst = parse_ok(text);
    assert_int_equal(inst.n, 4);
    assert_int_equal(inst.n_types, 2);
    assert_true(inst.has_windows);
    assert_string_equal(inst.ids[1], "pallet");
    route_solution sol;
    solve(&inst, 1, 50, &sol);
    char *json = routeio_solution_to_json(&inst, &sol, NULL);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"truck\""));
    assert_non_null(strstr(json, "\"pallet\""));
    /* the pallet rides in the truck */
    for (int r = 0; r < sol.n_routes; r++)
        for (int x = sol.start[r]; x < sol.start[r + 1]; x++)
            if (sol.nodes[x] == 1) assert_int_equal(sol.type[r], 1);
    route_solution back;
    char err[256];
    assert_int_equal(routeio_solution_from_json(&inst, json, &back, err, sizeof err), OP_OK);
    assert_int_equal(route_check_solution(&inst, &back, err, sizeof err), OP_OK);
    assert_true(fabs(back.cost - sol.cost) < 1e-9);
    free(json);
    char *sol_text = routeio_solution_to_sol(&inst, &sol);
    assert_non_null(strstr(sol_text, "Route #1:"));
    free(sol_text);
    char *svg = routeio_solution_to_svg(&inst, &sol);
    assert_non_null(strstr(svg, "<polyline"));
    free(svg);
    route_solution_clear(&back);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

static void json_err(const char *text, const char *expect)
{
    route_instance inst;
    char err[256] = "";
    assert_int_equal(routeio_parse_any(text, "j", &inst, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, expect);
}

static void test_json_errors_name_the_field(void **state)
{
    (void)state;
    const char *v = "\"vehicles\":[{\"capacity\":10}]";
    char buf[512];
    json_err("{\"depot\":", "j:1: not valid JSON");
    json_err("{\"depot\": [1,2]}", "stops: must be a list");
    json_err("[1,2]", "incomplete file"); /* not the JSON form: read as a Solomon file */
    json_err("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":1,\"fixed_cost\":-1}],"
             "\"stops\":[{\"x\":1,\"y\":1}]}",
             "vehicles[0]: fixed_cost and cost_per_hour must be numbers >= 0");
    json_err("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":1,\"cost_per_hour\":\"x\"}],"
             "\"stops\":[{\"x\":1,\"y\":1}]}",
             "vehicles[0]: fixed_cost and cost_per_hour must be numbers >= 0");
    json_err("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":1}],\"time_unit\":\"days\","
             "\"stops\":[{\"x\":1,\"y\":1}]}",
             "time_unit: 'minutes' (default), 'seconds' or 'hours'");
    snprintf(buf, sizeof buf, "{\"depot\":{\"x\":0,\"y\":0},%s,\"stops\":[]}", v);
    json_err(buf, "stops: must be a list of 1 to");
    snprintf(buf, sizeof buf,
             "{\"depot\":{\"x\":0,\"y\":0},%s,\"stops\":[{\"x\":1,\"y\":1},{\"x\":1,\"y\":1,"
             "\"ready\":50,\"due\":10}]}",
             v);
    json_err(buf, "stops[1]: ready, due and service");
    snprintf(buf, sizeof buf,
             "{\"depot\":{\"x\":0,\"y\":0},%s,\"stops\":[{\"x\":1,\"y\":1,\"demand\":-1}]}", v);
    json_err(buf, "stops[0].demand");
    snprintf(buf, sizeof buf,
             "{\"depot\":{\"x\":0,\"y\":0},%s,\"stops\":[{\"id\":\"a\",\"x\":1,\"y\":1},"
             "{\"id\":\"a\",\"x\":2,\"y\":1}]}",
             v);
    json_err(buf, "stops[1].id: 'a' used twice");
    json_err("{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":0}],\"stops\":[{\"x\":1,"
             "\"y\":1}]}",
             "vehicles[0].capacity");
    snprintf(buf, sizeof buf,
             "{\"depot\":{},%s,\"stops\":[{\"x\":1,\"y\":1}],\"matrix\":[[0,1],[1]]}", v);
    json_err(buf, "matrix[1]: must have 2 numbers");
    snprintf(buf, sizeof buf, "{\"depot\":{},%s,\"stops\":[{\"x\":1,\"y\":1}]}", v);
    json_err(buf, "without a matrix every stop and the depot need x and y");
    snprintf(buf, sizeof buf,
             "{\"depot\":{\"x\":0,\"y\":0},%s,\"stops\":[{\"x\":1,\"y\":1}],\"distance\":\"km\"}",
             v);
    json_err(buf, "distance:");
}

static void test_factors_change_costs(void **state)
{
    (void)state;
    const char *text = "{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":10}],"
                       "\"stops\":[{\"id\":\"a\",\"x\":3,\"y\":4},{\"id\":\"b\",\"x\":6,\"y\":8}]}";
    route_instance inst = parse_ok(text);
    double plain = route_distance(&inst, 0, 1);
    routeio_factors f;
    char err[256];
    assert_int_equal(routeio_factors_parse(&inst,
                                           "{\"arcs\":[[\"depot\",\"a\",1.5],[\"a\",\"b\",2]]}", &f,
                                           err, sizeof err),
                     OP_OK);
    routeio_factors_attach(&inst, &f);
    assert_true(fabs(route_distance(&inst, 0, 1) - 1.5 * plain) < 1e-9);
    assert_true(fabs(route_distance(&inst, 1, 0) - plain) < 1e-9); /* only the arc named */
    route_solution sol;
    double cost = solve(&inst, 1, 20, &sol);
    /* 0->a->b->0 costs 7.5 + 10 + 10 = 27.5; 0->b->a->0 costs 10 + 5 + 5 = 20 */
    assert_true(fabs(cost - 20.0) < 1e-9);
    route_solution_clear(&sol);
    routeio_factors bad;
    assert_int_equal(
        routeio_factors_parse(&inst, "{\"arcs\":[[\"a\",\"zz\",1]]}", &bad, err, sizeof err),
        OP_EINVAL);
    assert_int_equal(
        routeio_factors_parse(&inst, "{\"arcs\":[[\"a\",\"b\",0]]}", &bad, err, sizeof err),
        OP_EINVAL);
    routeio_factors f2;
    assert_int_equal(routeio_factors_parse(&inst, "{\"arcs\":[]}", &f2, err, sizeof err), OP_OK);
    routeio_factors_clear(&f2);
    routeio_factors_clear(&f);
    route_instance_clear(&inst);
}

/* Real instances: feasible, and within a loose bound of the best known after a short run. */
static void test_real_instances(void **state)
{
    (void)state;
    struct {
        const char *path;
        double bks;
    } cases[] = {{VRP_DIR "/x/X-n101-k25.vrp", 27591},
                 {VRP_DIR "/solomon/C101.txt", 828.94},
                 {VRP_DIR "/solomon/R201.txt", 1149.68},
                 {VRP_DIR "/solomon/RC105.txt", 1518.58}};
    testkit_require_path(cases[0].path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text;
        size_t len;
        assert_int_equal(os_read_file(cases[i].path, 1 << 24, &text, &len), OP_OK);
        route_instance inst = parse_ok(text);
        free(text);
        double cost = solve(&inst, 1, 30, NULL);
        double gap = 100 * (cost - cases[i].bks) / cases[i].bks;
        fprintf(stderr, "%s: %.2f after 30 iterations, %.2f%% from the best known\n", inst.name,
                cost, gap);
        assert_true(gap > -0.05); /* not (meaningfully) below the best known */
        assert_true(gap < 10);
        route_instance_clear(&inst);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimal_on_small_instances),
        cmocka_unit_test(test_deterministic_for_a_seed),
        cmocka_unit_test(test_resume_never_worse),
        cmocka_unit_test(test_time_limit_on_injected_clock),
        cmocka_unit_test(test_impossible_instances_name_the_culprit),
        cmocka_unit_test(test_partial_plans),
        cmocka_unit_test(test_plan_from_the_first_iteration),
        cmocka_unit_test(test_vehicle_costs),
        cmocka_unit_test(test_vehicles_first),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_json_errors_name_the_field),
        cmocka_unit_test(test_factors_change_costs),
        cmocka_unit_test(test_real_instances),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
