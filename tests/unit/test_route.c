/*
 * Unit tests of the VRP instances, parsers and feasibility checker
 * (src/route.c): tiny hand-checked instances, every violation the checker
 * must catch, malformed files named by line, and every real instance under
 * ../shared/data/vrp (skipped with a message when that folder is missing).
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
#include "route/route.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VRP_DIR TESTKIT_SHARED_DATA "/vrp"

static const char *tiny_cvrp = "NAME : tiny\r\nTYPE : CVRP\r\nDIMENSION : 4\r\n"
                               "EDGE_WEIGHT_TYPE : EUC_2D\r\nCAPACITY : 10\r\n"
                               "NODE_COORD_SECTION\r\n1\t0\t0\r\n2\t3\t4\r\n3\t0\t1\r\n4\t1\t1\r\n"
                               "DEMAND_SECTION\r\n1 0\r\n2 6\r\n3 5\r\n4 4\r\n"
                               "DEPOT_SECTION\r\n1\r\n-1\r\nEOF\r\n";

static const char *tiny_vrptw = "TINY\n\nVEHICLE\nNUMBER     CAPACITY\n  2         10\n\nCUSTOMER\n"
                                "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   "
                                "SERVICE   TIME\n\n"
                                "    0      0   0   0    0   100   0\n"
                                "    1      3   4   5   10    20   5\n"
                                "    2      6   8   5    0    18   5\n";

static route_instance parse_ok(const char *text)
{
    route_instance inst;
    char err[256] = "";
    int rc = route_parse(text, "t", &inst, err, sizeof err);
    if (rc != OP_OK) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, OP_OK);
    return inst;
}

static void parse_err(const char *text, const char *expect)
{
    route_instance inst;
    char err[256] = "";
    assert_int_equal(route_parse(text, "t", &inst, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, expect);
}

static int check(const route_instance *inst, int n_routes, const int *const *routes,
                 const int *lens, double *cost, char *err)
{
    return route_check(inst, routes, lens, n_routes, cost, err, 256);
}

static void test_cvrp_parse_and_distances(void **state)
{
    (void)state;
    route_instance inst = parse_ok(tiny_cvrp);
    assert_string_equal(inst.name, "tiny");
    assert_int_equal(inst.n, 4);
    assert_int_equal(inst.capacity, 10);
    assert_int_equal(inst.demand[1], 6);
    assert_false(inst.has_windows);
    /* EUC_2D rounds to the nearest integer: |(0,0)-(1,1)| = 1.414 -> 1; (3,4) -> 5. */
    assert_true(route_distance(&inst, 0, 3) == 1.0);
    assert_true(route_distance(&inst, 0, 1) == 5.0);
    route_instance_clear(&inst);
}

static void test_checker_accepts_and_costs(void **state)
{
    (void)state;
    route_instance inst = parse_ok(tiny_cvrp);
    int r1[] = {1}, r2[] = {2, 3};
    const int *routes[] = {r1, r2};
    int lens[] = {1, 2};
    double cost = 0;
    char err[256];
    assert_int_equal(check(&inst, 2, routes, lens, &cost, err), OP_OK);
    /* 0-1-0 = 5+5; 0-2-3-0 = 1+1+1. */
    assert_true(fabs(cost - 13.0) < 1e-9);
    route_instance_clear(&inst);
}

static void test_checker_violations(void **state)
{
    (void)state;
    route_instance inst = parse_ok(tiny_cvrp);
    double cost;
    char err[256];
    int over[] = {1, 2}, rest[] = {3};
    const int *r_over[] = {over, rest};
    int l_over[] = {2, 1};
    assert_int_equal(check(&inst, 2, r_over, l_over, &cost, err), OP_EINVAL);
    assert_non_null(strstr(err, "route 1: load 11 over capacity 10"));
    int twice[] = {1, 1}, b[] = {2, 3};
    const int *r_twice[] = {twice, b};
    int l_twice[] = {2, 2};
    assert_int_equal(check(&inst, 2, r_twice, l_twice, &cost, err), OP_EINVAL);
    assert_non_null(strstr(err, "customer 1 visited twice"));
    int a[] = {1}, c[] = {2};
    const int *r_missing[] = {a, c};
    int l_missing[] = {1, 1};
    assert_int_equal(check(&inst, 2, r_missing, l_missing, &cost, err), OP_EINVAL);
    assert_non_null(strstr(err, "customer 3 neither visited"));
    int depot[] = {0, 1}, d[] = {2, 3};
    const int *r_depot[] = {depot, d};
    int l_depot[] = {2, 2};
    assert_int_equal(check(&inst, 2, r_depot, l_depot, &cost, err), OP_EINVAL);
    assert_non_null(strstr(err, "0 is not a customer"));
    route_instance_clear(&inst);
}

/* Unassigned customers: each listed once, never also served, and every customer accounted for. */
static void test_checker_unassigned(void **state)
{
    (void)state;
    route_instance inst = parse_ok(tiny_cvrp);
    route_solution sol;
    char err[256] = "";
    assert_int_equal(route_solution_alloc(&sol, 1, 2), OP_OK);
    sol.start[0] = 0;
    sol.start[1] = 2;
    sol.nodes[0] = 2;
    sol.nodes[1] = 3;
    assert_int_equal(route_solution_set_unassigned(&sol, 1), OP_OK);
    sol.unassigned[0] = 1;
    sol.reason[0] = ROUTE_UNSERVED_FLEET;
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    assert_true(sol.distance > 0 && sol.cost == sol.distance);
    sol.unassigned[0] = 2; /* served and unassigned */
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, "customer 2 both served and unassigned");
    sol.unassigned[0] = 0; /* the depot */
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, "unassigned: 0 is not a customer");
    assert_int_equal(route_solution_set_unassigned(&sol, 2), OP_OK);
    sol.unassigned[0] = sol.unassigned[1] = 1; /* listed twice */
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, "customer 1 both served and unassigned, or listed twice");
    sol.n_unassigned = 0; /* neither */
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, "customer 1 neither visited nor listed as unassigned");
    sol.n_unassigned = 99;
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_EINVAL);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

static void test_time_windows(void **state)
{
    (void)state;
    route_instance inst = parse_ok(tiny_vrptw);
    assert_true(inst.has_windows);
    assert_int_equal(inst.vehicles, 2);
    assert_true(inst.due[0] == 100);
    double cost;
    char err[256];
    /* 0 -> 2 at 10 (ready 0, due 18), service 5 -> 1 at 20 (due 20): exactly on time. */
    int both[] = {2, 1};
    const int *r_both[] = {both};
    int l_both[] = {2};
    assert_int_equal(check(&inst, 1, r_both, l_both, &cost, err), OP_OK);
    assert_true(fabs(cost - 20.0) < 1e-9); /* 10 + 5 + 5, unrounded */
    /* 0 -> 1 at 5, waits to 10, service 5 -> 2 at 20 > due 18: late. */
    int late[] = {1, 2};
    const int *r_late[] = {late};
    assert_int_equal(check(&inst, 1, r_late, l_both, &cost, err), OP_EINVAL);
    assert_non_null(strstr(err, "customer 2 reached at 20.00, after 18.00"));
    /* More routes than vehicles. */
    int x[] = {1}, y[] = {2}, z[] = {};
    (void)z;
    const int *r3[] = {x, y, y};
    int l3[] = {1, 1, 0};
    assert_int_equal(check(&inst, 3, r3, l3, &cost, err), OP_EINVAL);
    assert_non_null(strstr(err, "3 routes for 2 vehicles"));
    route_instance_clear(&inst);
}

static void test_malformed_files(void **state)
{
    (void)state;
    parse_err("NAME : x\nTYPE : CVRP\nCAPACITY : 5\nNODE_COORD_SECTION\n1 0 0\n",
              "t:4: DIMENSION must come first");
    parse_err("NAME : x\nTYPE : TSP\n", "t:2: TYPE TSP is not supported");
    parse_err("NAME : x\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EXPLICIT\n",
              "t:3: EDGE_WEIGHT_TYPE EXPLICIT is not supported");
    parse_err("NAME : x\nDIMENSION : 2\nCAPACITY : 5\nNODE_COORD_SECTION\n1 0 0\n1 1 1\n",
              "t:6: expected 'id x y' with a new id 1..2");
    parse_err("NAME : x\nDIMENSION : 2\nCAPACITY : 5\nNODE_COORD_SECTION\n1 0 zero\n",
              "t:5: expected 'id x y'");
    parse_err("NAME : x\nDIMENSION : 2\nCAPACITY : 5\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n"
              "DEMAND_SECTION\n1 0\nEOF\n",
              "1 demands for 2 nodes");
    parse_err("NAME : x\nSHAPE : round\n", "t:2: unknown keyword 'SHAPE'");
    parse_err("NAME : x\nDIMENSION : 1\n", "t:2: DIMENSION must be 2");
    parse_err("C1\nVEHICLE\nNUMBER CAPACITY\n 25 two\n", "t:4: expected 'vehicles capacity'");
    parse_err("C1\nVEHICLE\nNUMBER CAPACITY\n 25 200\nCUSTOMER\nCUST NO.\n 0 1 1 0 0 100 0\n"
              " 2 1 1 0 0 100 0\n",
              "t:8: expected 'no x y demand ready due service' for customer 1");
    parse_err("C1\nVEHICLE\nNUMBER CAPACITY\n 25 200\nCUSTOMER\nCUST NO.\n 0 1 1 0 0 100 0\n"
              " 1 1 1 5 50 40 0\n",
              "t:8: expected");
    parse_err("C1\nVEHICLE\n", "incomplete file");
}

static char *read_text(const char *path)
{
    char *text = NULL;
    return os_read_file(path, 16 * 1024 * 1024, &text, NULL) == OP_OK ? text : NULL;
}

static void test_real_instances(void **state)
{
    (void)state;
    testkit_require_path(VRP_DIR "/x");
    const char *sets[] = {VRP_DIR "/x", VRP_DIR "/solomon"};
    int parsed = 0;
    for (int s = 0; s < 2; s++) {
        DIR *dir = opendir(sets[s]);
        assert_non_null(dir);
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len < 4 ||
                (strcmp(e->d_name + len - 4, ".vrp") && strcmp(e->d_name + len - 4, ".txt")))
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", sets[s], e->d_name);
            char *text = read_text(path);
            assert_non_null(text);
            route_instance inst;
            char err[256];
            int rc = route_parse(text, path, &inst, err, sizeof err);
            if (rc != OP_OK) fprintf(stderr, "%s\n", err);
            assert_int_equal(rc, OP_OK);
            assert_true(inst.n >= 101);
            assert_int_equal(inst.has_windows, s == 1);
            route_instance_clear(&inst);
            free(text);
            parsed++;
        }
        closedir(dir);
    }
    assert_int_equal(parsed, 80 + 56);
    /* Known shapes, and the checker on a trivial solution: one customer per route. */
    char *text = read_text(VRP_DIR "/x/X-n101-k25.vrp");
    route_instance inst;
    char err[256];
    assert_int_equal(route_parse(text, "X-n101-k25", &inst, err, sizeof err), OP_OK);
    free(text);
    assert_string_equal(inst.name, "X-n101-k25");
    assert_int_equal(inst.n, 101);
    assert_int_equal(inst.capacity, 206);
    int ids[100], lens[100];
    const int *routes[100];
    double want = 0, cost = 0;
    for (int i = 0; i < 100; i++) {
        ids[i] = i + 1;
        routes[i] = &ids[i];
        lens[i] = 1;
        want += 2 * route_distance(&inst, 0, i + 1);
    }
    assert_int_equal(route_check(&inst, routes, lens, 100, &cost, err, sizeof err), OP_OK);
    assert_true(cost == want);
    route_instance_clear(&inst);
    text = read_text(VRP_DIR "/solomon/C101.txt");
    assert_int_equal(route_parse(text, "C101", &inst, err, sizeof err), OP_OK);
    free(text);
    assert_int_equal(inst.n, 101);
    assert_int_equal(inst.vehicles, 25);
    assert_int_equal(inst.capacity, 200);
    assert_true(inst.due[0] == 1236);
    assert_int_equal(route_check(&inst, routes, lens, 100, &cost, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "26 routes for 25 vehicles"));
    route_instance_clear(&inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cvrp_parse_and_distances),
        cmocka_unit_test(test_checker_accepts_and_costs),
        cmocka_unit_test(test_checker_violations),
        cmocka_unit_test(test_checker_unassigned),
        cmocka_unit_test(test_time_windows),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_real_instances),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
