/*
 * libFuzzer target: VROOM's JSON form (src/route/vroomio.c). The first byte
 * picks what the rest is: a problem (then, when small, a short solve whose
 * plan must pass the independent checker and survive being written and
 * read back), or an answer read against a fixed problem and checked.
 */
#include "base/err.h"
#include "route/rich.h"
#include "route/vroomio.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *base_problem =
    "{\"vehicles\":[{\"id\":1,\"start_index\":0,\"end_index\":0,\"capacity\":[10,2],"
    "\"skills\":[1],\"time_window\":[0,1000],\"breaks\":[{\"id\":9,\"time_windows\":[[0,1000]],"
    "\"service\":10}]},{\"id\":2,\"start_index\":0,\"capacity\":[10,2]}],"
    "\"jobs\":[{\"id\":1,\"location_index\":1,\"delivery\":[3,1]},{\"id\":2,\"location_index\":2,"
    "\"delivery\":[3,1],\"skills\":[1]}],\"shipments\":[{\"amount\":[2,1],\"pickup\":{\"id\":5,"
    "\"location_index\":1},\"delivery\":{\"id\":5,\"location_index\":2}}],"
    "\"matrix\":[[0,100,150],[100,0,60],[150,60,0]]}";

static void solve_small(const rich_problem *p)
{
    char err[512] = "";
    rich_params params = {0};
    params.max_iterations = 3;
    rich_plan plan;
    if (rich_solve(p, &params, &plan, NULL, err, sizeof err) != OP_OK) {
        if (!strstr(err, "out of memory")) abort(); /* every problem has a plan */
        return;
    }
    if (rich_check(p, &plan, err, sizeof err) != OP_OK) abort();
    char *json = vroomio_plan_to_json(p, &plan, NULL);
    if (json) {
        rich_plan back;
        double stated;
        if (vroomio_plan_from_json(p, json, &back, &stated, err, sizeof err) != OP_OK) abort();
        if (rich_check(p, &back, err, sizeof err) != OP_OK) abort();
        rich_plan_clear(&back);
    }
    free(json);
    rich_plan_clear(&plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[512] = "";
    rich_problem p;
    if (data[0] % 2 == 0) {
        if (vroomio_parse(text, "fuzz", &p, err, sizeof err) == OP_OK) {
            if (p.n_vehicles < 1 || p.n_locations < 1) abort();
            if (p.n_tasks <= 12 && p.n_vehicles <= 4) solve_small(&p);
            rich_problem_clear(&p);
        } else if (!err[0]) {
            abort();
        }
    } else if (vroomio_parse(base_problem, "base", &p, err, sizeof err) == OP_OK) {
        rich_plan plan;
        double stated;
        if (vroomio_plan_from_json(&p, text, &plan, &stated, err, sizeof err) == OP_OK) {
            rich_check(&p, &plan, err, sizeof err);
            rich_plan_clear(&plan);
        }
        rich_problem_clear(&p);
    }
    free(text);
    return 0;
}
