/*
 * Unit tests for the rich routing model: VROOM's JSON form read (what each
 * key becomes, every refusal naming its path), the search on each kind of
 * problem (jobs in several dimensions, shipments, breaks, skills,
 * priorities with optional jobs, open routes) with every plan re-checked by
 * the independent checker, reproducibility for a seed, VROOM's output form
 * read back, and the checker refusing hand-made wrong plans: delivery
 * before pickup, over capacity in the second dimension, a skill missing, a
 * break not taken, max travel time exceeded, a job served twice, a task
 * forgotten, an arrival faster than the road.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "route/rich.h"
#include "route/vroomio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A small problem with every feature. Vehicle 1 (skill 1, two dimensions
 * [10, 2], a break, max travel 500) and vehicle 2 (no skill, open end).
 */
#define SMALL_VEHICLES                                                                             \
    "\"vehicles\":[{\"id\":1,\"start_index\":0,\"end_index\":0,\"capacity\":[10,2],"               \
    "\"skills\":[1],\"time_window\":[0,1000],\"max_travel_time\":MTT,"                             \
    "\"breaks\":[{\"id\":9,\"time_windows\":[[0,1000]],\"service\":10}]},"                         \
    "{\"id\":2,\"start_index\":0,\"capacity\":[10,2],\"time_window\":[0,1000]}]"
#define SMALL_TASKS                                                                                \
    "\"jobs\":[{\"id\":1,\"location_index\":1,\"delivery\":[3,1]},"                                \
    "{\"id\":2,\"location_index\":2,\"delivery\":[3,1],\"skills\":[1]},"                           \
    "{\"id\":3,\"location_index\":1,\"pickup\":[1,1]}],"                                           \
    "\"shipments\":[{\"amount\":[2,1],\"pickup\":{\"id\":5,\"location_index\":1},"                 \
    "\"delivery\":{\"id\":5,\"location_index\":2}}],"                                              \
    "\"matrix\":[[0,100,150],[100,0,60],[150,60,0]]"

static char *small_problem_text(int max_travel)
{
    const char *tmpl = "{" SMALL_VEHICLES "," SMALL_TASKS "}";
    char *out = malloc(strlen(tmpl) + 32);
    const char *at = strstr(tmpl, "MTT");
    sprintf(out, "%.*s%d%s", (int)(at - tmpl), tmpl, max_travel, at + 3);
    return out;
}

static void parse_small(rich_problem *p, int max_travel)
{
    char err[512] = "", *text = small_problem_text(max_travel);
    int rc = vroomio_parse(text, "small", p, err, sizeof err);
    free(text);
    if (rc != OP_OK) fail_msg("parse: %s", err);
}

/* The valid plan for the small problem (cost 410: 310 + 100). */
#define GOOD_V1                                                                                    \
    "{\"vehicle\":1,\"steps\":[{\"type\":\"start\",\"arrival\":0},"                                \
    "{\"type\":\"job\",\"id\":1,\"arrival\":100},{\"type\":\"pickup\",\"id\":5,\"arrival\":100},"  \
    "{\"type\":\"break\",\"id\":9,\"arrival\":100},{\"type\":\"job\",\"id\":2,\"arrival\":170},"   \
    "{\"type\":\"delivery\",\"id\":5,\"arrival\":170},{\"type\":\"end\",\"arrival\":320}]}"
#define GOOD_V2                                                                                    \
    "{\"vehicle\":2,\"steps\":[{\"type\":\"start\",\"arrival\":0},"                                \
    "{\"type\":\"job\",\"id\":3,\"arrival\":100}]}"

static int check_text(const rich_problem *p, const char *answer, char *err, size_t err_len,
                      rich_plan *plan)
{
    double stated;
    int rc = vroomio_plan_from_json(p, answer, plan, &stated, err, err_len);
    if (rc != OP_OK) return rc;
    return rich_check(p, plan, err, err_len);
}

static void expect_refused(const rich_problem *p, const char *answer, const char *why)
{
    char err[512] = "";
    rich_plan plan;
    int rc = check_text(p, answer, err, sizeof err, &plan);
    rich_plan_clear(&plan);
    if (rc != OP_EINVAL || !strstr(err, why))
        fail_msg("expected a refusal with '%s', got rc %d: '%s'", why, rc, err);
}

static void test_checker_accepts_the_good_plan(void **state)
{
    (void)state;
    rich_problem p;
    parse_small(&p, 500);
    char err[512] = "";
    rich_plan plan;
    int rc = check_text(&p, "{\"routes\":[" GOOD_V1 "," GOOD_V2 "],\"unassigned\":[]}", err,
                        sizeof err, &plan);
    if (rc != OP_OK) fail_msg("%s", err);
    assert_true(plan.cost > 409.99 && plan.cost < 410.01);
    assert_int_equal(plan.served, 5);
    assert_int_equal(plan.travel, 410);
    rich_plan_clear(&plan);
    rich_problem_clear(&p);
}

static void test_checker_refuses_wrong_plans(void **state)
{
    (void)state;
    rich_problem p;
    parse_small(&p, 500);
    /* delivery before pickup */
    expect_refused(&p,
                   "{\"routes\":[{\"vehicle\":1,\"steps\":[{\"type\":\"job\",\"id\":1,\"arrival\":"
                   "100},{\"type\":\"break\",\"id\":9,\"arrival\":100},{\"type\":\"job\",\"id\":2,"
                   "\"arrival\":170},{\"type\":\"delivery\",\"id\":5,\"arrival\":170},{\"type\":"
                   "\"pickup\",\"id\":5,\"arrival\":240}]}," GOOD_V2 "]}",
                   "its pickup is not earlier");
    /* over capacity in the second dimension: job 3's pickup on top of shipment 5 */
    expect_refused(
        &p,
        "{\"routes\":[{\"vehicle\":1,\"steps\":[{\"type\":\"job\",\"id\":1,\"arrival\":"
        "100},{\"type\":\"pickup\",\"id\":5,\"arrival\":100},{\"type\":\"job\",\"id\":3,"
        "\"arrival\":100},{\"type\":\"break\",\"id\":9,\"arrival\":100},{\"type\":\"job\","
        "\"id\":2,\"arrival\":170},{\"type\":\"delivery\",\"id\":5,\"arrival\":170}]}]}",
        "in dimension 1");
    /* a skill missing: job 2 on vehicle 2 */
    expect_refused(&p,
                   "{\"routes\":[{\"vehicle\":2,\"steps\":[{\"type\":\"job\",\"id\":2,\"arrival\":"
                   "150}]}]}",
                   "a skill is missing");
    /* the break not taken */
    expect_refused(&p,
                   "{\"routes\":[{\"vehicle\":1,\"steps\":[{\"type\":\"job\",\"id\":1,\"arrival\":"
                   "100},{\"type\":\"pickup\",\"id\":5,\"arrival\":100},{\"type\":\"job\",\"id\":2,"
                   "\"arrival\":160},{\"type\":\"delivery\",\"id\":5,\"arrival\":160}]}," GOOD_V2
                   "]}",
                   "break 9 not taken");
    /* a job served twice */
    expect_refused(&p,
                   "{\"routes\":[{\"vehicle\":2,\"steps\":[{\"type\":\"job\",\"id\":3,\"arrival\":"
                   "100},{\"type\":\"job\",\"id\":3,\"arrival\":100}]}]}",
                   "served twice");
    /* a task neither served nor listed */
    expect_refused(&p, "{\"routes\":[" GOOD_V1 "],\"unassigned\":[]}", "neither served nor listed");
    /* faster than the road */
    expect_refused(&p,
                   "{\"routes\":[{\"vehicle\":2,\"steps\":[{\"type\":\"job\",\"id\":3,\"arrival\":"
                   "99}]}]}",
                   "arrival 99 before 100");
    /* a shipment half served */
    expect_refused(
        &p,
        "{\"routes\":[" GOOD_V2 "],\"unassigned\":[{\"id\":1,\"type\":\"job\"},{\"id\":2,"
        "\"type\":\"job\"},{\"id\":5,\"type\":\"delivery\"},{\"id\":5,\"type\":\"pickup\"},"
        "{\"id\":5,\"type\":\"pickup\"}]}",
        "listed twice");
    rich_problem_clear(&p);
    /* max travel time exceeded: the good plan drives 310 where 300 are allowed */
    parse_small(&p, 300);
    expect_refused(&p, "{\"routes\":[" GOOD_V1 "," GOOD_V2 "]}", "over max_travel_time 300");
    rich_problem_clear(&p);
}

/* Solves text with an iteration limit; the plan passes the checker (rich_solve checks too). */
static void solve_text(const char *text, long iterations, uint64_t seed, rich_problem *p,
                       rich_plan *plan)
{
    char err[512] = "";
    if (vroomio_parse(text, "t", p, err, sizeof err) != OP_OK) fail_msg("parse: %s", err);
    rich_params params = {0};
    params.seed = seed;
    params.max_iterations = iterations;
    if (rich_solve(p, &params, plan, NULL, err, sizeof err) != OP_OK) fail_msg("solve: %s", err);
    if (rich_check(p, plan, err, sizeof err) != OP_OK) fail_msg("check: %s", err);
}

static void test_small_solved(void **state)
{
    (void)state;
    rich_problem p;
    rich_plan plan;
    char *text = small_problem_text(500);
    solve_text(text, 300, 1, &p, &plan);
    free(text);
    assert_int_equal(plan.n_unassigned, 0);
    assert_true(plan.cost <= 410.01); /* the hand-made plan is optimal or matched */
    rich_plan_clear(&plan);
    rich_problem_clear(&p);
}

static char *read_example(const char *name)
{
    char path[256], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "examples/vroom/%s", name);
    if (os_read_file(path, 1 << 20, &text, &len) != OP_OK) fail_msg("cannot read %s", path);
    return text;
}

static void test_examples_solved_and_checked(void **state)
{
    (void)state;
    const char *names[] = {"basic.json", "shipments.json", "breaks.json", "optional.json"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char *text = read_example(names[k]);
        rich_problem p;
        rich_plan plan;
        solve_text(text, 200, 3, &p, &plan);
        /* the answer read back passes the same check with the same cost */
        char *json = vroomio_plan_to_json(&p, &plan, NULL), err[512] = "";
        rich_plan back;
        double stated;
        assert_non_null(json);
        assert_int_equal(vroomio_plan_from_json(&p, json, &back, &stated, err, sizeof err), OP_OK);
        if (rich_check(&p, &back, err, sizeof err) != OP_OK) fail_msg("%s: %s", names[k], err);
        assert_true(back.cost > plan.cost - 1e-6 && back.cost < plan.cost + 1e-6);
        assert_true(stated > plan.cost - 1e-3 && stated < plan.cost + 1e-3);
        if (!strcmp(names[k], "optional.json")) {
            /* job 2 (priority 80) beats job 1 for the capacity; 3 lacks a skill, 4's window is late
             */
            assert_int_equal(plan.priority, 80);
            assert_int_equal(plan.n_unassigned, 3);
        } else {
            assert_int_equal(plan.n_unassigned, 0);
        }
        free(json);
        free(text);
        rich_plan_clear(&back);
        rich_plan_clear(&plan);
        rich_problem_clear(&p);
    }
}

static void test_reproducible(void **state)
{
    (void)state;
    char *text = read_example("shipments.json");
    char *answers[2];
    for (int run = 0; run < 2; run++) {
        rich_problem p;
        rich_plan plan;
        solve_text(text, 150, 7, &p, &plan);
        answers[run] = vroomio_plan_to_json(&p, &plan, NULL);
        rich_plan_clear(&plan);
        rich_problem_clear(&p);
    }
    assert_string_equal(answers[0], answers[1]);
    free(answers[0]);
    free(answers[1]);
    free(text);
}

/* Breaks land inside their windows and the load at break 1 stays within its max_load. */
static void test_breaks_taken(void **state)
{
    (void)state;
    char *text = read_example("breaks.json");
    rich_problem p;
    rich_plan plan;
    solve_text(text, 300, 1, &p, &plan);
    int breaks = 0;
    for (int k = 0; k < plan.n_steps; k++)
        breaks += RICH_IS_BREAK(plan.steps[k].what);
    int used = 0;
    for (int v = 0; v < plan.n_vehicles; v++)
        used += plan.start[v] < plan.start[v + 1];
    assert_true(breaks >= used); /* every used vehicle took all its breaks (checked) */
    free(text);
    rich_plan_clear(&plan);
    rich_problem_clear(&p);
}

/* An over-constrained problem is a plan with tasks unassigned, never an error. */
static void test_unservable_is_unassigned(void **state)
{
    (void)state;
    rich_problem p;
    rich_plan plan;
    solve_text("{\"vehicles\":[{\"id\":1,\"start_index\":0,\"capacity\":[1]}],"
               "\"jobs\":[{\"id\":1,\"location_index\":1,\"delivery\":[5]},"
               "{\"id\":2,\"location_index\":1,\"delivery\":[1]}],"
               "\"shipments\":[{\"amount\":[2],\"pickup\":{\"id\":1,\"location_index\":0},"
               "\"delivery\":{\"id\":1,\"location_index\":1}}],\"matrix\":[[0,5],[5,0]]}",
               50, 1, &p, &plan);
    assert_int_equal(plan.served, 1);
    assert_int_equal(plan.n_unassigned, 3); /* job 1 and both halves of the shipment */
    rich_plan_clear(&plan);
    rich_problem_clear(&p);
}

static void expect_parse_error(const char *text, const char *why)
{
    rich_problem p;
    char err[512] = "";
    int rc = vroomio_parse(text, "bad", &p, err, sizeof err);
    if (rc == OP_OK) {
        rich_problem_clear(&p);
        fail_msg("accepted, expected '%s'", why);
    }
    if (!strstr(err, why)) fail_msg("expected '%s', got '%s'", why, err);
}

#define V1 "\"vehicles\":[{\"id\":1,\"start_index\":0}]"
#define M2 "\"matrix\":[[0,1],[1,0]]"

static void test_parse_errors_name_the_path(void **state)
{
    (void)state;
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1},{\"id\":2,"
                       "\"location_index\":1,\"time_windows\":[[5,1]]}]," M2 "}",
                       "bad: jobs[1].time_windows[0]: must be [start, end]");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1,\"delivery\":[1]},{\"id\":"
                       "2,\"location_index\":1,\"pickup\":[1,2]}]," M2 "}",
                       "jobs[1].pickup: has 2 numbers where earlier amounts have 1");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":2}]," M2 "}",
                       "jobs[0].location_index: must be a row of the matrix, 0 to 1");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1}]," M2 "}", "jobs[0].location_index: missing");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1},{\"id\":1,"
                       "\"location_index\":0}]," M2 "}",
                       "job id 1 used twice");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1}],\"matrix\":[[0,1],[1]]}",
                       "matrix[1]: must have 2 numbers");
    expect_parse_error("{" V1
                       ",\"jobs\":[{\"id\":1,\"location_index\":1}],\"matrix\":[[0,-1],[1,0]]}",
                       "matrix[0][1]: must be an integer");
    expect_parse_error(
        "{\"vehicles\":[{\"id\":1,\"start_index\":0,\"costs\":{\"per_task_hour\":5}}],"
        "\"jobs\":[{\"id\":1,\"location_index\":1}]," M2 "}",
        "vehicles[0].costs.per_task_hour: not supported");
    expect_parse_error("{\"vehicles\":[{\"id\":1,\"start_index\":0,\"speed_factor\":1.5}],"
                       "\"jobs\":[{\"id\":1,\"location_index\":1}]," M2 "}",
                       "vehicles[0].speed_factor");
    expect_parse_error("{\"vehicles\":[{\"id\":1,\"start_index\":0,\"steps\":[]}],"
                       "\"jobs\":[{\"id\":1,\"location_index\":1}]," M2 "}",
                       "vehicles[0].steps: plan mode is not supported");
    expect_parse_error("{\"vehicles\":[{\"id\":1}],\"jobs\":[{\"id\":1,\"location_index\":1}]," M2
                       "}",
                       "vehicles[0]: needs a start or an end");
    expect_parse_error("{\"vehicles\":[{\"id\":1,\"start_index\":0,\"breaks\":[{\"id\":1}]}],"
                       "\"jobs\":[{\"id\":1,\"location_index\":1}]," M2 "}",
                       "vehicles[0].breaks[0].time_windows: missing");
    expect_parse_error("{" V1 ",\"shipments\":[{\"pickup\":{\"id\":1,\"location_index\":0},"
                       "\"delivery\":{\"location_index\":1}}]," M2 "}",
                       "shipments[0].delivery.id: must be an integer");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1,\"priority\":101}]," M2
                       "}",
                       "jobs[0].priority: must be an integer from 0 to 100");
    expect_parse_error("{\"vehicles\":[{\"id\":1,\"start\":[2,48]}],\"jobs\":[{\"id\":1,"
                       "\"location\":[200,1]}]}",
                       "jobs[0].location: must be [lon, lat]");
    expect_parse_error("{\"vehicles\":[{\"id\":1,\"profile\":\"bike\",\"start_index\":0}],\"jobs\":"
                       "[{\"id\":1,\"location_index\":1}],\"matrices\":{\"car\":{\"durations\":[[0,"
                       "1],[1,0]]}}}",
                       "vehicles[0].profile: no matrix for profile 'bike'");
    expect_parse_error("{\"vehicles\":[],\"jobs\":[]}", "vehicles: must be a list of 1 to 1000");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1}]," M2 ",\"zones\":[]}",
                       "zones: not supported");
    expect_parse_error("{\"vehicles\":[{\"id\":1,\"start_index\":0}],\"jobs\":[", "not valid JSON");
}

/* 5,001 tasks are refused; 5,000 are read. */
static void test_task_limit(void **state)
{
    (void)state;
    for (int n = 5000; n <= 5001; n++) {
        size_t cap = 64 + (size_t)n * 40;
        char *text = malloc(cap);
        size_t len = (size_t)snprintf(text, cap, "{" V1 "," M2 ",\"jobs\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s{\"id\":%d,\"location_index\":1}",
                                    i ? "," : "", i);
        snprintf(text + len, cap - len, "]}");
        rich_problem p;
        char err[512] = "";
        int rc = vroomio_parse(text, "big", &p, err, sizeof err);
        if (n == 5000) {
            assert_int_equal(rc, OP_OK);
            assert_int_equal(p.n_tasks, 5000);
            rich_problem_clear(&p);
        } else {
            assert_int_equal(rc, OP_EINVAL);
            assert_non_null(strstr(err, "more than 5000"));
        }
        free(text);
    }
}

/* Appends n copies of item (separated by commas, each '@' the copy's index) to buf at *len. */
static void repeat(char *buf, size_t cap, size_t *len, int n, const char *item)
{
    for (int i = 0; i < n; i++) {
        if (i) *len += (size_t)snprintf(buf + *len, cap - *len, ",");
        for (const char *c = item; *c; c++) {
            if (*c == '@')
                *len += (size_t)snprintf(buf + *len, cap - *len, "%d", i);
            else if (*len + 1 < cap)
                buf[(*len)++] = *c;
        }
        buf[*len] = '\0';
    }
}

/* Every bound is a refusal naming the path, never an overflow. */
static void test_bounds_refused(void **state)
{
    (void)state;
    size_t cap = 200000, len;
    char *text = malloc(cap);
    len = (size_t)snprintf(text, cap,
                           "{" V1 "," M2 ",\"jobs\":[{\"id\":1,\"location_index\":1,"
                           "\"time_windows\":[");
    repeat(text, cap, &len, 65, "[@0,@1]");
    snprintf(text + len, cap - len, "]}]}");
    expect_parse_error(text, "jobs[0].time_windows: must be a list of 1 to 64 windows");
    len = (size_t)snprintf(text, cap,
                           "{" M2 ",\"jobs\":[{\"id\":1,\"location_index\":1}],"
                           "\"vehicles\":[{\"id\":1,\"start_index\":0,\"breaks\":[");
    repeat(text, cap, &len, 17, "{\"id\":@,\"time_windows\":[[0,9]]}");
    snprintf(text + len, cap - len, "]}]}");
    expect_parse_error(text, "vehicles[0].breaks: must be a list of at most 16 breaks");
    len = (size_t)snprintf(text, cap,
                           "{" M2 ",\"jobs\":[{\"id\":1,\"location_index\":1,"
                           "\"skills\":[");
    repeat(text, cap, &len, 257, "@");
    snprintf(text + len, cap - len, "]}]," V1 "}");
    expect_parse_error(text, "jobs[0].skills[256]: more than 256 distinct skills");
    len = (size_t)snprintf(text, cap,
                           "{" M2 ",\"jobs\":[{\"id\":1,\"location_index\":1,"
                           "\"delivery\":[");
    repeat(text, cap, &len, 9, "1");
    snprintf(text + len, cap - len, "]}]," V1 "}");
    expect_parse_error(text, "jobs[0].delivery: must be a list of at most 8 integers");
    len = (size_t)snprintf(text, cap,
                           "{" M2 ",\"jobs\":[{\"id\":1,\"location_index\":1}],"
                           "\"vehicles\":[");
    repeat(text, cap, &len, 1001, "{\"id\":@,\"start_index\":0}");
    snprintf(text + len, cap - len, "]}");
    expect_parse_error(text, "vehicles: must be a list of 1 to 1000 vehicles");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1,\"delivery\":["
                       "1099511627777]}]," M2 "}",
                       "jobs[0].delivery[0]: must be an integer from 0 to 2^40");
    expect_parse_error("{" V1 ",\"jobs\":[{\"id\":1,\"location_index\":1,\"service\":-1}]," M2 "}",
                       "jobs[0].service: must be an integer from 0 to");
    free(text);
}

static void test_coordinates_become_great_circle(void **state)
{
    (void)state;
    char *text = read_example("basic.json");
    rich_problem p;
    char err[512] = "";
    assert_int_equal(vroomio_parse(text, "basic", &p, err, sizeof err), OP_OK);
    assert_true(p.has_coords);
    assert_int_equal(p.n_locations, 7);
    /* depot to job 1: about 26.6 km; at 50 km/h about 1,916 s */
    int64_t d = rich_distance(&p, 0, p.vehicles[0].start_loc, p.tasks[0].loc);
    int64_t t = rich_duration(&p, 0, p.vehicles[0].start_loc, p.tasks[0].loc);
    assert_true(d > 26000 && d < 27000);
    assert_true(t > d * 36 / 500 - 2 && t < d * 36 / 500 + 2);
    assert_int_equal(p.n_dims, 2);
    free(text);
    rich_problem_clear(&p);
}

static double fake_now;
static double fake_clock(void)
{
    fake_now += 0.001;
    return fake_now;
}

/* A time limit is honoured (a clock that advances 1 ms a reading) and a plan comes back. */
static void test_time_limit(void **state)
{
    (void)state;
    char *text = read_example("shipments.json");
    rich_problem p;
    char err[512] = "";
    assert_int_equal(vroomio_parse(text, "t", &p, err, sizeof err), OP_OK);
    rich_params params = {0};
    params.time_limit_s = 0.5;
    params.now_s = fake_clock;
    rich_plan plan;
    rich_stats stats;
    assert_int_equal(rich_solve(&p, &params, &plan, &stats, err, sizeof err), OP_OK);
    assert_true(stats.iterations > 0 && stats.iterations < 500);
    rich_params none = {0};
    rich_plan_clear(&plan);
    assert_int_equal(rich_solve(&p, &none, &plan, NULL, err, sizeof err), OP_EINVAL);
    free(text);
    rich_problem_clear(&p);
}

/* Going on from a plan never returns a worse one; a start that fails the check is refused. */
static void test_start_from_a_plan(void **state)
{
    (void)state;
    char *text = read_example("breaks.json"), err[512] = "";
    rich_problem p;
    rich_plan first, again;
    solve_text(text, 60, 2, &p, &first);
    rich_params params = {0};
    params.seed = 11;
    params.max_iterations = 3;
    params.start = &first;
    assert_int_equal(rich_solve(&p, &params, &again, NULL, err, sizeof err), OP_OK);
    assert_true(again.n_unassigned <= first.n_unassigned);
    assert_true(again.cost <= first.cost + 1e-9);
    rich_plan_clear(&again);
    first.n_unassigned = 0; /* now some tasks are neither served nor listed */
    for (int v = 0; v <= first.n_vehicles; v++)
        first.start[v] = 0;
    assert_int_equal(rich_solve(&p, &params, &again, NULL, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "the plan to start from fails the check"));
    rich_plan_clear(&first);
    rich_problem_clear(&p);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_accepts_the_good_plan),
        cmocka_unit_test(test_checker_refuses_wrong_plans),
        cmocka_unit_test(test_small_solved),
        cmocka_unit_test(test_examples_solved_and_checked),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_breaks_taken),
        cmocka_unit_test(test_unservable_is_unassigned),
        cmocka_unit_test(test_parse_errors_name_the_path),
        cmocka_unit_test(test_task_limit),
        cmocka_unit_test(test_bounds_refused),
        cmocka_unit_test(test_coordinates_become_great_circle),
        cmocka_unit_test(test_time_limit),
        cmocka_unit_test(test_start_from_a_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
