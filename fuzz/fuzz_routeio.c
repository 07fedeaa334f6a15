/*
 * libFuzzer target: the routing inputs from outside (src/routeio.c): the JSON
 * form of an instance (then a tiny solve when it is small, since a route job
 * runs whatever instance it is given), a solution read back as a checkpoint,
 * and travel-time factors. The first byte picks which.
 */
#include "base/err.h"
#include "route/hgs.h"
#include "route/route.h"
#include "route/routeio.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *base_instance =
    "{\"depot\":{\"x\":0,\"y\":0,\"due\":500},\"vehicles\":[{\"name\":\"van\",\"capacity\":10,"
    "\"count\":3}],\"stops\":[{\"id\":\"a\",\"x\":1,\"y\":2,\"demand\":3,\"due\":100},"
    "{\"id\":\"b\",\"x\":-4,\"y\":2,\"demand\":5},{\"id\":\"c\",\"x\":3,\"y\":-3,\"demand\":4}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[512] = "";
    route_instance inst;
    int mode = data[0] % 3;
    if (mode == 0) {
        if (routeio_parse_any(text, "fuzz", &inst, err, sizeof err) == OP_OK) {
            if (inst.n < 2 || inst.n_types < 1) abort();
            if (inst.n <= 10) {
                hgs_params p = {0};
                p.max_iterations = 2;
                route_solution sol;
                if (hgs_solve(&inst, &p, &sol, NULL, err, sizeof err) == OP_OK) {
                    if (route_check_solution(&inst, &sol, err, sizeof err) != OP_OK) abort();
                    route_solution_clear(&sol);
                }
            }
            route_instance_clear(&inst);
        } else if (!err[0]) {
            abort();
        }
    } else if (routeio_parse_any(base_instance, "base", &inst, err, sizeof err) == OP_OK) {
        if (mode == 1) {
            route_solution sol;
            if (routeio_solution_from_json(&inst, text, &sol, err, sizeof err) == OP_OK) {
                route_check_solution(&inst, &sol, err, sizeof err);
                route_solution_clear(&sol);
            }
        } else {
            routeio_factors f;
            if (routeio_factors_parse(&inst, text, &f, err, sizeof err) == OP_OK) {
                routeio_factors_attach(&inst, &f);
                if (!(route_distance(&inst, 0, 1) >= 0)) abort();
                routeio_factors_clear(&f);
            }
        }
        route_instance_clear(&inst);
    }
    free(text);
    return 0;
}
