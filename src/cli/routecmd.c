#include "cli/routecmd.h"

#include "base/err.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "route/hgs.h"
#include "route/routeio.h"

#include <cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX_FILE (64 * 1024 * 1024)

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost route FILE [options]\n"
                 "Plans vehicle routes for FILE (CVRPLIB .vrp, Solomon .txt or the JSON form of\n"
                 "docs/routing.md) on this machine, and prints the routes as JSON.\n\n"
                 "  --time-limit S   stop after S seconds (default 10) and return the best found\n"
                 "  --iterations N   stop after N offspring (deterministic for a seed)\n"
                 "  --seed N         random seed (default 1)\n"
                 "  --resume FILE    start from a solution (a checkpoint: JSON written by --out)\n"
                 "  --out FILE       write the JSON there instead of standard output\n"
                 "  --checkpoint FILE  rewrite FILE with the best solution each time it improves\n"
                 "  --sol FILE       also write the solution in the CVRPLIB .sol format\n"
                 "  --svg FILE       also draw the routes as SVG (needs coordinates)\n"
                 "  --factors FILE   travel-time correction factors (JSON, see docs/routing.md)\n"
                 "  --quiet          no progress on standard error\n");
}

/* SIGTERM / SIGINT: stop searching, write what was found (the checkpoint included). */
static volatile int stop_requested;
static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct progress_ctx {
    const route_instance *inst;
    const char *checkpoint;
    int quiet;
    double last_write_s;
} progress_ctx;

static int write_text(const char *path, const char *text, const char *what)
{
    int rc = os_write_file_atomic(path, text, strlen(text), 0644);
    if (rc != OP_OK)
        fprintf(stderr, "route: cannot write %s %s: %s\n", what, path, op_strerror(rc));
    return rc;
}

/* Progress on stderr; the checkpoint is rewritten at most once a second (and at the end). */
static void on_improve(void *ctx, const hgs_progress *p)
{
    progress_ctx *pc = ctx;
    if (!pc->quiet)
        fprintf(stderr, "route: %8.3f s  iteration %ld  cost %.2f  routes %d\n", p->elapsed_s,
                p->iterations, p->best_cost, p->best_routes);
    if (pc->checkpoint && p->elapsed_s - pc->last_write_s >= 1.0) {
        char *json = routeio_solution_to_json(pc->inst, p->best, NULL);
        if (json) write_text(pc->checkpoint, json, "checkpoint");
        free(json);
        pc->last_write_s = p->elapsed_s;
    }
}

static double mono_s(void)
{
    return (double)os_mono_us() / 1e6;
}

int routecmd_main(int argc, char **argv)
{
    static const struct option opts[] = {{"time-limit", required_argument, 0, 't'},
                                         {"iterations", required_argument, 0, 'i'},
                                         {"seed", required_argument, 0, 's'},
                                         {"resume", required_argument, 0, 'r'},
                                         {"out", required_argument, 0, 'o'},
                                         {"checkpoint", required_argument, 0, 'c'},
                                         {"sol", required_argument, 0, 'S'},
                                         {"svg", required_argument, 0, 'g'},
                                         {"factors", required_argument, 0, 'f'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    hgs_params params = {0};
    params.seed = 1;
    params.time_limit_s = 10;
    params.now_s = mono_s;
    const char *resume = NULL, *out_path = NULL, *sol_path = NULL, *svg_path = NULL;
    const char *checkpoint = NULL, *factors_path = NULL;
    int quiet = 0, saw_time = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int64_t v;
        switch (c) {
        case 't': {
            char *end;
            saw_time = 1;
            params.time_limit_s = strtod(optarg, &end);
            if (*end || !(params.time_limit_s > 0) || params.time_limit_s > 86400) {
                fprintf(stderr,
                        "route: --time-limit must be a number of seconds, 0 < S <= 86400\n");
                return EXIT_USAGE;
            }
            break;
        }
        case 'i':
            if (util_parse_i64(optarg, 1, 1000000000, &v) != OP_OK) {
                fprintf(stderr, "route: --iterations must be 1 to 1000000000\n");
                return EXIT_USAGE;
            }
            params.max_iterations = (long)v;
            break;
        case 's':
            if (util_parse_i64(optarg, 0, INT64_MAX, &v) != OP_OK) {
                fprintf(stderr, "route: --seed must be a non-negative integer\n");
                return EXIT_USAGE;
            }
            params.seed = (uint64_t)v;
            break;
        case 'r':
            resume = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'c':
            checkpoint = optarg;
            break;
        case 'S':
            sol_path = optarg;
            break;
        case 'g':
            svg_path = optarg;
            break;
        case 'f':
            factors_path = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    /* with only --iterations, no time limit: the run is reproducible */
    if (params.max_iterations && !saw_time) params.time_limit_s = 0;

    const char *path = argv[optind];
    char *text = NULL, err[512] = "";
    size_t len;
    route_instance inst;
    route_solution start = {0}, best = {0};
    routeio_factors factors = {0};
    int rc = os_read_file(path, ROUTE_MAX_FILE, &text, &len);
    if (rc != OP_OK) {
        fprintf(stderr, "route: cannot read %s: %s\n", path, op_strerror(rc));
        return EXIT_USAGE;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    rc = routeio_parse_any(text, base, &inst, err, sizeof err);
    free(text);
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s\n", err);
        return EXIT_USAGE;
    }
    int exit_code = EXIT_OK;
    if (factors_path) {
        if (os_read_file(factors_path, ROUTE_MAX_FILE, &text, &len) != OP_OK ||
            routeio_factors_parse(&inst, text, &factors, err, sizeof err) != OP_OK) {
            fprintf(stderr, "route: %s: %s\n", factors_path, err[0] ? err : "cannot read");
            free(text);
            exit_code = EXIT_USAGE;
            goto out;
        }
        free(text);
        routeio_factors_attach(&inst, &factors);
    }
    if (resume) {
        text = NULL;
        rc = os_read_file(resume, ROUTE_MAX_FILE, &text, &len);
        if (rc == OP_OK)
            rc = routeio_solution_from_json(&inst, text, &start, err, sizeof err);
        else
            snprintf(err, sizeof err, "cannot read: %s", op_strerror(rc));
        free(text);
        if (rc != OP_OK) {
            fprintf(stderr, "route: %s: %s\n", resume, err);
            exit_code = EXIT_USAGE;
            goto out;
        }
        params.start = &start;
    }
    progress_ctx pc = {&inst, checkpoint, quiet, 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    params.stop = &stop_requested;
    params.on_improve = on_improve;
    params.ctx = &pc;
    hgs_stats stats = {0};
    rc = hgs_solve(&inst, &params, &best, &stats, err, sizeof err);
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s: %s\n", inst.name, err);
        exit_code = rc == OP_EINVAL ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
        goto out;
    }
    char *json = routeio_solution_to_json(&inst, &best, &stats);
    if (!json) {
        exit_code = EXIT_FAILURE_RUNTIME;
        goto out;
    }
    if (out_path) {
        if (write_text(out_path, json, "solution") != OP_OK) exit_code = EXIT_FAILURE_RUNTIME;
    } else {
        printf("%s\n", json);
    }
    if (checkpoint && write_text(checkpoint, json, "checkpoint") != OP_OK)
        exit_code = EXIT_FAILURE_RUNTIME;
    free(json);
    if (sol_path) {
        char *sol = routeio_solution_to_sol(&inst, &best);
        if (!sol || write_text(sol_path, sol, "solution") != OP_OK)
            exit_code = EXIT_FAILURE_RUNTIME;
        free(sol);
    }
    if (svg_path) {
        char *svg = routeio_solution_to_svg(&inst, &best);
        if (!svg || write_text(svg_path, svg, "picture") != OP_OK) exit_code = EXIT_FAILURE_RUNTIME;
        free(svg);
    }
    if (stop_requested)
        fprintf(stderr, "route: stopped early by a signal; the best solution so far is written\n");
    if (!quiet)
        fprintf(stderr,
                "route: %s: cost %.2f, %d routes, %ld iterations in %.2f s (best at %.2f s)\n",
                inst.name, best.cost, best.n_routes, stats.iterations, stats.elapsed_s,
                stats.best_found_s);
out:
    route_solution_clear(&best);
    route_solution_clear(&start);
    routeio_factors_clear(&factors);
    route_instance_clear(&inst);
    return exit_code;
}
