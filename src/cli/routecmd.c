#include "cli/routecmd.h"

#include "base/err.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "route/hgs.h"
#include "route/routeio.h"
#include "route/vroomio.h"

#include <cJSON.h>
#include <getopt.h>
#include <sched.h>
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
                 "  --threads N      search with N islands in parallel, 1 to 64 (default: the\n"
                 "                   CPUs this process may use; 1 with only --iterations, so\n"
                 "                   that such runs stay reproducible)\n"
                 "  --resume FILE    start from a solution (a checkpoint: JSON written by --out)\n"
                 "  --out FILE       write the JSON there instead of standard output\n"
                 "  --checkpoint FILE  rewrite FILE with the best solution (at most 1/s)\n"
                 "  --sol FILE       also write the solution in the CVRPLIB .sol format\n"
                 "  --svg FILE       also draw the routes as SVG (needs coordinates)\n"
                 "  --factors FILE   travel-time correction factors (JSON, see docs/routing.md)\n"
                 "  --model FILE --model-sha HEX [--model-start EPOCH_S]\n"
                 "                   the factors from a site's travel-time model instead\n"
                 "                   (docs/learning.md); coordinates read as miles\n"
                 "  --objective distance|vehicles\n"
                 "                   minimise the cost (default), or the vehicles used first\n"
                 "  --strict         refuse a problem with stops no plan can serve (exit 2)\n"
                 "                   instead of planning the rest and listing them unassigned\n"
                 "  --check ANSWER   (VROOM form) check an answer in VROOM's output form against\n"
                 "                   FILE with the independent checker, instead of planning\n"
                 "  --quiet          no progress on standard error\n"
                 "A FILE in VROOM's JSON form (top-level vehicles and jobs or shipments) is\n"
                 "planned by the rich search and answered in VROOM's output form.\n");
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

int routecmd__write_text(const char *path, const char *text, const char *what)
{
    int rc = os_write_file_atomic(path, text, strlen(text), 0644);
    if (rc != OP_OK)
        fprintf(stderr, "route: cannot write %s %s: %s\n", what, path, op_strerror(rc));
    return rc;
}

int routecmd__emit(const char *out_path, const char *checkpoint, const char *json)
{
    int exit_code = EXIT_OK;
    if (out_path) {
        if (routecmd__write_text(out_path, json, "solution") != OP_OK)
            exit_code = EXIT_FAILURE_RUNTIME;
    } else {
        printf("%s\n", json);
    }
    if (checkpoint && routecmd__write_text(checkpoint, json, "checkpoint") != OP_OK)
        exit_code = EXIT_FAILURE_RUNTIME;
    return exit_code;
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
        if (json) routecmd__write_text(pc->checkpoint, json, "checkpoint");
        free(json);
        pc->last_write_s = p->elapsed_s;
    }
}

/* The CPUs this process may run on (its affinity mask: a site's job gets its share), 1 to 64. */
static int usable_cpus(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > HGS_MAX_THREADS ? HGS_MAX_THREADS : n;
}

static double mono_s(void)
{
    return (double)os_mono_us() / 1e6;
}

/* The command line of `outpost route`. */
typedef struct route_opts {
    hgs_params params;
    const char *path, *resume, *out_path, *sol_path, *svg_path, *checkpoint, *factors_path;
    const char *model_path, *model_sha; /* a travel-time model instead of a factors file */
    const char *check_path;             /* VROOM form: check this answer instead of planning */
    int64_t model_start_s;
    int quiet;
} route_opts;

/* --threads N: 1 to HGS_MAX_THREADS islands. EXIT_OK or EXIT_USAGE (said on stderr). */
static int parse_threads(const char *arg, int *threads)
{
    int64_t v;
    if (util_parse_i64(arg, 1, HGS_MAX_THREADS, &v) != OP_OK) {
        fprintf(stderr, "route: --threads must be 1 to %d\n", HGS_MAX_THREADS);
        return EXIT_USAGE;
    }
    *threads = (int)v;
    return EXIT_OK;
}

/* One option into o. EXIT_OK, or EXIT_USAGE with the reason (or the usage) on stderr. */
static int parse_option(int c, const char *arg, route_opts *o, int *saw_time)
{
    int64_t v;
    char *end;
    switch (c) {
    case 't':
        *saw_time = 1;
        o->params.time_limit_s = strtod(arg, &end);
        if (*end || !(o->params.time_limit_s > 0) || o->params.time_limit_s > 86400) {
            fprintf(stderr, "route: --time-limit must be a number of seconds, 0 < S <= 86400\n");
            return EXIT_USAGE;
        }
        return EXIT_OK;
    case 'i':
        if (util_parse_i64(arg, 1, 1000000000, &v) != OP_OK) {
            fprintf(stderr, "route: --iterations must be 1 to 1000000000\n");
            return EXIT_USAGE;
        }
        o->params.max_iterations = (long)v;
        return EXIT_OK;
    case 's':
        if (util_parse_i64(arg, 0, INT64_MAX, &v) != OP_OK) {
            fprintf(stderr, "route: --seed must be a non-negative integer\n");
            return EXIT_USAGE;
        }
        o->params.seed = (uint64_t)v;
        return EXIT_OK;
    case 'T':
        return parse_threads(arg, &o->params.threads);
    case 'r':
        o->resume = arg;
        return EXIT_OK;
    case 'o':
        o->out_path = arg;
        return EXIT_OK;
    case 'c':
        o->checkpoint = arg;
        return EXIT_OK;
    case 'S':
        o->sol_path = arg;
        return EXIT_OK;
    case 'g':
        o->svg_path = arg;
        return EXIT_OK;
    case 'f':
        o->factors_path = arg;
        return EXIT_OK;
    case 'q':
        o->quiet = 1;
        return EXIT_OK;
    case 'x':
        o->params.strict = 1;
        return EXIT_OK;
    case 'O':
        if (strcmp(arg, "distance") && strcmp(arg, "vehicles")) {
            fprintf(stderr, "route: --objective must be 'distance' or 'vehicles'\n");
            return EXIT_USAGE;
        }
        o->params.objective = arg[0] == 'v' ? HGS_OBJECTIVE_VEHICLES : HGS_OBJECTIVE_DISTANCE;
        return EXIT_OK;
    case 'C':
        o->check_path = arg;
        return EXIT_OK;
    case 'm':
        o->model_path = arg;
        return EXIT_OK;
    case 'M':
        o->model_sha = arg;
        return EXIT_OK;
    case 'D':
        if (util_parse_i64(arg, 0, INT64_MAX / 2, &o->model_start_s) != OP_OK) {
            fprintf(stderr, "route: --model-start takes seconds since the epoch\n");
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    usage(stderr);
    return EXIT_USAGE;
}

/*
 * Fills o from the command line. Returns -1 to go on, else the exit code
 * (after --help, or a usage error already reported).
 */
static int parse_args(int argc, char **argv, route_opts *o)
{
    static const struct option opts[] = {{"time-limit", required_argument, 0, 't'},
                                         {"iterations", required_argument, 0, 'i'},
                                         {"seed", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"resume", required_argument, 0, 'r'},
                                         {"out", required_argument, 0, 'o'},
                                         {"checkpoint", required_argument, 0, 'c'},
                                         {"sol", required_argument, 0, 'S'},
                                         {"svg", required_argument, 0, 'g'},
                                         {"factors", required_argument, 0, 'f'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"strict", no_argument, 0, 'x'},
                                         {"objective", required_argument, 0, 'O'},
                                         {"model", required_argument, 0, 'm'},
                                         {"check", required_argument, 0, 'C'},
                                         {"model-sha", required_argument, 0, 'M'},
                                         {"model-start", required_argument, 0, 'D'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->params.seed = 1;
    o->params.time_limit_s = 10;
    o->params.now_s = mono_s;
    int saw_time = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        int rc = parse_option(c, optarg, o, &saw_time);
        if (rc != EXIT_OK) return rc;
    }
    if (optind != argc - 1 || (o->model_path && (!o->model_sha || o->factors_path))) {
        if (o->model_path) fprintf(stderr, "route: --model needs --model-sha, not --factors\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    /* with only --iterations, no time limit and one island: the run is reproducible */
    if (o->params.max_iterations && !saw_time) o->params.time_limit_s = 0;
    if (!o->params.threads) o->params.threads = o->params.time_limit_s > 0 ? usable_cpus() : 1;
    o->path = argv[optind];
    return -1;
}

/* The instance, its correction factors and the checkpoint to resume from. EXIT_OK or EXIT_USAGE. */
static int load_inputs(const route_opts *o, route_instance *inst, routeio_factors *factors,
                       route_solution *start)
{
    char *text = NULL, err[512] = "";
    size_t len;
    int rc = os_read_file(o->path, ROUTE_MAX_FILE, &text, &len);
    if (rc != OP_OK) {
        fprintf(stderr, "route: cannot read %s: %s\n", o->path, op_strerror(rc));
        return EXIT_USAGE;
    }
    const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
    rc = routeio_parse_any(text, base, inst, err, sizeof err);
    free(text);
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s\n", err);
        return EXIT_USAGE;
    }
    if (o->factors_path) {
        text = NULL;
        if (os_read_file(o->factors_path, ROUTE_MAX_FILE, &text, &len) != OP_OK ||
            routeio_factors_parse(inst, text, factors, err, sizeof err) != OP_OK) {
            fprintf(stderr, "route: %s: %s\n", o->factors_path, err[0] ? err : "cannot read");
            free(text);
            return EXIT_USAGE;
        }
        free(text);
        routeio_factors_attach(inst, factors);
    }
    if (o->model_path) {
        double mean = 1;
        int64_t depart_s = o->model_start_s ? o->model_start_s : os_now_ms() / 1000;
        if (routemodel_factors(inst, o->model_path, o->model_sha, depart_s, factors, &mean, err,
                               sizeof err) != OP_OK) {
            fprintf(stderr, "route: %s\n", err);
            return EXIT_USAGE;
        }
        routeio_factors_attach(inst, factors);
        fprintf(stderr, "route: travel times from the model %s (%.12s...): mean factor %.3f\n",
                o->model_path, o->model_sha, mean);
    }
    if (!o->resume) return EXIT_OK;
    text = NULL;
    rc = os_read_file(o->resume, ROUTE_MAX_FILE, &text, &len);
    if (rc == OP_OK)
        rc = routeio_solution_from_json(inst, text, start, err, sizeof err);
    else
        snprintf(err, sizeof err, "cannot read: %s", op_strerror(rc));
    free(text);
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s: %s\n", o->resume, err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The solution as JSON (to --out or stdout, and the checkpoint), .sol and SVG. An exit code. */
static int write_outputs(const route_opts *o, const route_instance *inst,
                         const route_solution *best, const hgs_stats *stats)
{
    int exit_code = EXIT_OK;
    /* a reproducible run (iterations, no time limit) writes no timings: equal runs, equal bytes */
    char *json = routeio_solution_to_json(inst, best, o->params.time_limit_s > 0 ? stats : NULL);
    if (!json) return EXIT_FAILURE_RUNTIME;
    exit_code = routecmd__emit(o->out_path, o->checkpoint, json);
    free(json);
    if (o->sol_path) {
        char *sol = routeio_solution_to_sol(inst, best);
        if (!sol || routecmd__write_text(o->sol_path, sol, "solution") != OP_OK)
            exit_code = EXIT_FAILURE_RUNTIME;
        free(sol);
    }
    if (o->svg_path) {
        char *svg = routeio_solution_to_svg(inst, best);
        if (!svg || routecmd__write_text(o->svg_path, svg, "picture") != OP_OK)
            exit_code = EXIT_FAILURE_RUNTIME;
        free(svg);
    }
    return exit_code;
}

/* Solves with SIGTERM/SIGINT ending the search early (the best so far is still written). */
static int solve(route_opts *o, const route_instance *inst, route_solution *best, hgs_stats *stats)
{
    char err[512] = "";
    progress_ctx pc = {inst, o->checkpoint, o->quiet, 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    o->params.stop = &stop_requested;
    o->params.on_improve = on_improve;
    o->params.ctx = &pc;
    int rc = hgs_solve(inst, &o->params, best, stats, err, sizeof err);
    o->params.ctx = NULL;
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s: %s\n", inst->name, err);
        return rc == OP_EINVAL ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
    }
    return EXIT_OK;
}

/* A plan that leaves stops out is still a plan (exit 0), with a warning naming them. */
static void warn_unassigned(const route_instance *inst, const route_solution *best)
{
    if (!best->n_unassigned) return;
    fprintf(stderr, "route: warning: %d of %d stops unassigned (listed in the solution)\n",
            best->n_unassigned, inst->n - 1);
    for (int u = 0; u < best->n_unassigned && u < 10; u++) {
        int c = best->unassigned[u];
        if (inst->ids)
            fprintf(stderr, "route:   stop '%s': %s\n", inst->ids[c],
                    route_unserved_str(best->reason[u]));
        else
            fprintf(stderr, "route:   customer %d: %s\n", c, route_unserved_str(best->reason[u]));
    }
}

/*
 * A problem in VROOM's form goes to the rich search (routevroom.c). Returns
 * its exit code, or -1 when the file is not in that form (or unreadable:
 * load_inputs reports it).
 */
static int dispatch_vroom(const route_opts *o)
{
    char *text = NULL;
    size_t len;
    if (os_read_file(o->path, ROUTE_MAX_FILE, &text, &len) != OP_OK) return -1;
    int exit_code = -1;
    if (vroomio_detect(text) && (o->sol_path || o->factors_path || o->model_path ||
                                 o->params.objective || o->params.strict)) {
        fprintf(stderr, "route: --sol, --factors, --model, --objective and --strict are not "
                        "for problems in VROOM's form\n");
        exit_code = EXIT_USAGE;
    } else if (vroomio_detect(text)) {
        routecmd__vroom_opts vo = {
            o->path,        o->out_path, o->checkpoint,          o->svg_path,
            o->check_path,  o->resume,   o->params.time_limit_s, o->params.max_iterations,
            o->params.seed, o->quiet,    &stop_requested,        mono_s};
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        exit_code = routecmd__vroom(&vo, text);
    } else if (o->check_path) {
        fprintf(stderr, "route: --check is for problems in VROOM's form\n");
        exit_code = EXIT_USAGE;
    }
    free(text);
    return exit_code;
}

int routecmd_main(int argc, char **argv)
{
    route_opts o;
    int exit_code = parse_args(argc, argv, &o);
    if (exit_code >= 0) return exit_code;
    if ((exit_code = dispatch_vroom(&o)) >= 0) return exit_code;
    route_instance inst = {0};
    route_solution start = {0}, best = {0};
    routeio_factors factors = {0};
    hgs_stats stats = {0};
    exit_code = load_inputs(&o, &inst, &factors, &start);
    if (exit_code != EXIT_OK) goto out;
    if (o.resume) o.params.start = &start;
    if ((exit_code = solve(&o, &inst, &best, &stats)) != EXIT_OK) goto out;
    exit_code = write_outputs(&o, &inst, &best, &stats);
    if (stop_requested)
        fprintf(stderr, "route: stopped early by a signal; the best solution so far is written\n");
    warn_unassigned(&inst, &best);
    if (!o.quiet)
        fprintf(stderr,
                "route: %s: cost %.2f, distance %.2f, %d routes, %d unassigned, %ld iterations "
                "in %.2f s (best at %.2f s)\n",
                inst.name, best.cost, best.distance, best.n_routes, best.n_unassigned,
                stats.iterations, stats.elapsed_s, stats.best_found_s);
out:
    route_solution_clear(&best);
    route_solution_clear(&start);
    routeio_factors_clear(&factors);
    route_instance_clear(&inst);
    return exit_code;
}
