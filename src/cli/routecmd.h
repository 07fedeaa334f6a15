/*
 * routecmd: `outpost route FILE`, the solver on this machine.
 * Reads an instance, runs hgs within a time or iteration limit, writes the
 * solution as JSON (and optionally .sol, SVG, a checkpoint as it improves).
 * A problem in VROOM's form goes to the rich search instead (routevroom.c).
 */
#ifndef OUTPOST_ROUTECMD_H
#define OUTPOST_ROUTECMD_H

#include "route/route.h"
#include "route/routeio.h"

#include <stddef.h>
#include <stdint.h>

/* Returns a runctl exit code: 0 solved, 2 bad usage or input or an impossible instance, 1
 * otherwise. */
int routecmd_main(int argc, char **argv);

/*
 * routemodel.c: the arc factors of inst from a travel-time model (its bytes
 * at model_path must hash to sha256), departing at start_s (seconds since
 * the epoch, local clock read as UTC); *mean_factor the mean over arcs.
 * OP_OK (out filled: routeio_factors_clear), OP_EINVAL, OP_ETOOBIG (over
 * 1,000 stops), OP_ENOMEM, OP_EIO; err says what.
 */
int routemodel_factors(const route_instance *inst, const char *model_path, const char *sha256,
                       int64_t start_s, routeio_factors *out, double *mean_factor, char *err,
                       size_t err_len);

/* A VROOM-form problem on the command line (routevroom.c): what `outpost route` passes on. */
typedef struct routecmd__vroom_opts {
    const char *path, *out_path, *checkpoint, *svg_path, *check_path, *resume;
    double time_limit_s; /* 0: none */
    long max_iterations; /* 0: none */
    uint64_t seed;
    int quiet;
    volatile int *stop; /* set by SIGTERM/SIGINT */
    double (*now_s)(void);
} routecmd__vroom_opts;

/*
 * Plans (or with check_path, checks a VROOM answer against) the VROOM-form
 * problem in text; writes VROOM's output form to out_path or stdout, the
 * checkpoint and the SVG. Returns a runctl exit code (2: malformed input or
 * a plan that fails the check; 1: out of memory or an unwritable file).
 */
int routecmd__vroom(const routecmd__vroom_opts *o, const char *text);

/* Writes text to path atomically (mode 0644); on failure says so on stderr naming what. */
int routecmd__write_text(const char *path, const char *text, const char *what);
/* A solution's JSON to out_path (or stdout) and to the checkpoint; a runctl exit code. */
int routecmd__emit(const char *out_path, const char *checkpoint, const char *json);

#endif
