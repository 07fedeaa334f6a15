/*
 * Unit tests of the routing solver at scale and in parallel: a first plan
 * on 2,000 customers within a tenth of a second (the savings construction),
 * time limits that hold on large instances (the first local search stops
 * with them), and islands in threads (hgs_par.c): checked plans, the
 * iteration limit shared out, progress reports one at a time and never
 * worse, errors and partial plans as with one thread. The 2,000-customer
 * instance is tests/fixtures/route/X-n2001-merged.vrp (bench/make_merged_x.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "helpers/testkit.h"
#include "route/hgs.h"
#include "route/route.h"
#include "route/routeio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define X2000 "tests/fixtures/route/X-n2001-merged.vrp"
#define X101 TESTKIT_SHARED_DATA "/vrp/x/X-n101-k25.vrp"

/* Sanitizers slow the search several times; limits are checked with this much room (CPU time
 * for one thread, so other work on the machine does not count). */
#define SLACK_S 0.4

static double mono_s(void)
{
    return (double)os_mono_us() / 1e6;
}

/* This process's CPU time: a one-thread search's limits, measured whatever else the machine
 * runs (the tests run in parallel with others). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static route_instance load(const char *path)
{
    char *text = NULL, err[256] = "";
    size_t len;
    route_instance inst;
    assert_int_equal(os_read_file(path, 1 << 24, &text, &len), OP_OK);
    int rc = routeio_parse_any(text, path, &inst, err, sizeof err);
    free(text);
    if (rc != OP_OK) fail_msg("%s: %s", path, err);
    return inst;
}

/* A CVRP of nc random customers (coordinates 0..99, demand 1..9, capacity 20). */
static route_instance generated(unsigned seed, int nc)
{
    static char buf[16384];
    size_t len = (size_t)snprintf(buf, sizeof buf,
                                  "NAME : g%u\nTYPE : CVRP\nDIMENSION : %d\nEDGE_WEIGHT_TYPE : "
                                  "EUC_2D\nCAPACITY : 20\nNODE_COORD_SECTION\n1 50 50\n",
                                  seed, nc + 1);
    for (int i = 2; i <= nc + 1; i++) {
        seed = seed * 1103515245u + 12345u;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%d %u %u\n", i, (seed >> 8) % 100,
                                (seed >> 20) % 100);
    }
    len += (size_t)snprintf(buf + len, sizeof buf - len, "DEMAND_SECTION\n1 0\n");
    for (int i = 2; i <= nc + 1; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%d %d\n", i, 1 + i * 7 % 9);
    snprintf(buf + len, sizeof buf - len, "DEPOT_SECTION\n1\n-1\nEOF\n");
    route_instance inst;
    char err[256] = "";
    assert_int_equal(routeio_parse_any(buf, "g", &inst, err, sizeof err), OP_OK);
    return inst;
}

/* What the progress callback saw: calls, whether two overlapped, the costs in order. */
typedef struct seen {
    pthread_mutex_t lock;
    int calls, inside, overlapped, worse;
    double first_s, last_cost;
} seen;

static void on_improve(void *ctx, const hgs_progress *p)
{
    seen *s = ctx;
    pthread_mutex_lock(&s->lock);
    if (s->inside) s->overlapped = 1;
    s->inside = 1;
    if (s->calls && p->best_cost > s->last_cost + 1e-9) s->worse = 1;
    if (!s->calls) s->first_s = p->elapsed_s;
    s->calls++;
    s->last_cost = p->best_cost;
    pthread_mutex_unlock(&s->lock);
    /* long enough for another island to arrive, were the calls not one at a time */
    for (volatile int spin = 0; spin < 100000; spin++) {
    }
    pthread_mutex_lock(&s->lock);
    s->inside = 0;
    pthread_mutex_unlock(&s->lock);
}

static int solve_timed(const route_instance *inst, double limit_s, int threads, seen *progress,
                       route_solution *sol, hgs_stats *st)
{
    hgs_params p = {0};
    p.seed = 1;
    p.time_limit_s = limit_s;
    p.now_s = threads > 1 ? mono_s : cpu_s;
    p.threads = threads;
    if (progress) {
        p.on_improve = on_improve;
        p.ctx = progress;
    }
    char err[256] = "";
    int rc = hgs_solve(inst, &p, sol, st, err, sizeof err);
    if (rc != OP_OK) fprintf(stderr, "hgs: %s\n", err);
    return rc;
}

/* 2,000 customers: a full, checked plan at a 0.1 s limit, found within it, and the limit kept. */
static void test_first_plan_on_2000_customers(void **state)
{
    (void)state;
    route_instance inst = load(X2000);
    assert_int_equal(inst.n, 2001);
    seen progress = {.lock = PTHREAD_MUTEX_INITIALIZER};
    route_solution sol;
    hgs_stats st;
    assert_int_equal(solve_timed(&inst, 0.1, 1, &progress, &sol, &st), OP_OK);
    char err[256];
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    assert_int_equal(sol.n_unassigned, 0);
    fprintf(stderr, "X-n2001: first plan at %.3f s, %d routes, cost %.0f, ended at %.3f s\n",
            progress.first_s, sol.n_routes, sol.cost, st.elapsed_s);
    assert_true(progress.calls >= 1);
    assert_true(progress.first_s < 0.1 + SLACK_S);
    assert_true(st.elapsed_s < 0.1 + SLACK_S);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* The limit holds on a large instance: the first local searches stop with it. */
static void test_limit_holds_on_large_instances(void **state)
{
    (void)state;
    route_instance inst = load(X2000);
    route_solution sol;
    hgs_stats st;
    double t0 = cpu_s();
    assert_int_equal(solve_timed(&inst, 0.5, 1, NULL, &sol, &st), OP_OK);
    double used = cpu_s() - t0;
    fprintf(stderr, "X-n2001 at 0.5 s: ended at %.3f s (%.3f s in all), cost %.0f\n", st.elapsed_s,
            used, sol.cost);
    assert_true(st.elapsed_s < 0.5 + SLACK_S);
    assert_true(used < 0.5 + 2 * SLACK_S);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* Islands: a checked plan, progress one call at a time and never worse, effort summed. */
static void test_islands(void **state)
{
    (void)state;
    route_instance inst = access(X101, R_OK) == 0 ? load(X101) : generated(7, 100);
    seen progress = {.lock = PTHREAD_MUTEX_INITIALIZER};
    route_solution sol;
    hgs_stats st;
    assert_int_equal(solve_timed(&inst, 1.0, 3, &progress, &sol, &st), OP_OK);
    char err[256];
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    assert_true(st.iterations > 0);
    assert_true(st.elapsed_s < 1.0 + SLACK_S);
    assert_true(progress.calls >= 1);
    assert_false(progress.overlapped);
    assert_false(progress.worse);
    /* the last report is the answer */
    assert_true(sol.cost <= progress.last_cost + 1e-9);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

/* An iteration limit is shared out between the islands; vehicles first works as with one. */
static void test_islands_with_an_iteration_limit(void **state)
{
    (void)state;
    route_instance inst = generated(3, 60);
    for (int objective = 0; objective < 2; objective++) {
        hgs_params p = {0};
        p.seed = 5;
        p.max_iterations = 40;
        p.threads = 4;
        p.objective = objective;
        route_solution sol;
        hgs_stats st;
        char err[256] = "";
        assert_int_equal(hgs_solve(&inst, &p, &sol, &st, err, sizeof err), OP_OK);
        assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
        assert_true(st.iterations >= 40 && st.iterations <= 40 + 4);
        route_solution_clear(&sol);
    }
    route_instance_clear(&inst);
}

/* One thread is the search as it always was: the same plan for a seed, islands or not built. */
static void test_one_thread_is_reproducible(void **state)
{
    (void)state;
    route_instance inst = generated(11, 50);
    route_solution a, b;
    for (int run = 0; run < 2; run++) {
        hgs_params p = {0};
        p.seed = 9;
        p.max_iterations = 200;
        p.threads = run; /* 0 and 1: both one island */
        char err[256] = "";
        assert_int_equal(hgs_solve(&inst, &p, run ? &b : &a, NULL, err, sizeof err), OP_OK);
    }
    assert_int_equal(a.n_routes, b.n_routes);
    assert_memory_equal(a.nodes, b.nodes, sizeof(int) * (size_t)a.start[a.n_routes]);
    assert_true(a.cost == b.cost);
    route_solution_clear(&a);
    route_solution_clear(&b);
    route_instance_clear(&inst);
}

/* Errors and partial plans come out of islands as out of one search. */
static void test_islands_refuse_and_leave_out_as_one(void **state)
{
    (void)state;
    route_instance inst;
    char err[256] = "";
    const char *small_fleet = "{\"depot\":{\"x\":0,\"y\":0},\"vehicles\":[{\"capacity\":10,"
                              "\"count\":1}],\"stops\":[{\"x\":1,\"y\":0,\"demand\":6},"
                              "{\"x\":2,\"y\":0,\"demand\":6},{\"x\":3,\"y\":0,\"demand\":3}]}";
    assert_int_equal(routeio_parse_any(small_fleet, "j", &inst, err, sizeof err), OP_OK);
    hgs_params p = {0};
    p.max_iterations = 20;
    p.threads = 2;
    route_solution sol;
    assert_int_equal(hgs_solve(&inst, &p, &sol, NULL, err, sizeof err), OP_OK);
    assert_int_equal(sol.n_unassigned, 1); /* 6 + 3 fit one van, one 6 does not */
    assert_int_equal(route_check_solution(&inst, &sol, err, sizeof err), OP_OK);
    route_solution_clear(&sol);
    p.strict = 1;
    assert_int_equal(hgs_solve(&inst, &p, &sol, NULL, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, "total demand 15 is more than the whole fleet carries (10)");
    route_instance_clear(&inst);
    /* one customer: nothing to share between islands */
    inst = generated(1, 1);
    p.strict = 0;
    assert_int_equal(hgs_solve(&inst, &p, &sol, NULL, err, sizeof err), OP_OK);
    assert_int_equal(sol.n_routes, 1);
    route_solution_clear(&sol);
    route_instance_clear(&inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_plan_on_2000_customers),
        cmocka_unit_test(test_limit_holds_on_large_instances),
        cmocka_unit_test(test_islands),
        cmocka_unit_test(test_islands_with_an_iteration_limit),
        cmocka_unit_test(test_one_thread_is_reproducible),
        cmocka_unit_test(test_islands_refuse_and_leave_out_as_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
