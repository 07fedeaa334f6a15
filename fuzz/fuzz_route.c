/* libFuzzer target: the CVRPLIB and Solomon instance parsers (files from outside). */
#include "base/err.h"
#include "route/route.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    route_instance inst;
    char err[256];
    if (route_parse(text, "fuzz", &inst, err, sizeof err) == OP_OK) {
        if (inst.n < 2 || inst.capacity < 1) abort();
        for (int i = 0; i < inst.n; i++)
            if (route_distance(&inst, 0, i) < 0) abort();
        route_instance_clear(&inst);
    } else if (!err[0]) {
        abort();
    }
    free(text);
    return 0;
}
