/*
 * `outpost route` for problems in VROOM's form: the rich search
 * (route/rich.h) instead of HGS, VROOM's output form, and `--check` to run
 * the independent checker over an answer file (ours or VROOM's own).
 */
#include "cli/routecmd.h"

#include "base/err.h"
#include "base/os.h"
#include "base/runctl.h"
#include "route/rich.h"
#include "route/vroomio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX_BYTES (64 * 1024 * 1024)

typedef struct vroom_progress {
    const rich_problem *p;
    const routecmd__vroom_opts *o;
    double last_write_s;
} vroom_progress;

/* Progress on stderr; the checkpoint (VROOM's output form) at most once a second. */
static void on_improve(void *ctx, const rich_progress *pr)
{
    vroom_progress *vp = ctx;
    if (!vp->o->quiet)
        fprintf(stderr, "route: %8.3f s  iteration %ld  cost %.2f  unassigned %d\n", pr->elapsed_s,
                pr->iterations, pr->best_cost, pr->best_unassigned);
    if (vp->o->checkpoint && pr->elapsed_s - vp->last_write_s >= 1.0) {
        char *json = vroomio_plan_to_json(vp->p, pr->best, NULL);
        if (json) routecmd__write_text(vp->o->checkpoint, json, "checkpoint");
        free(json);
        vp->last_write_s = pr->elapsed_s;
    }
}

/* A picture of the routes over [lon, lat]; without coordinates, an empty picture that says so. */
static char *plan_svg(const rich_problem *p, const rich_plan *plan)
{
    size_t cap = 4096 + (size_t)plan->n_steps * 48 + (size_t)p->n_vehicles * 160, len = 0;
    char *svg = malloc(cap);
    if (!svg) return NULL;
    len += (size_t)snprintf(
        svg, cap, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1000 1000\">\n");
    if (!p->has_coords) {
        snprintf(
            svg + len, cap - len,
            "<text x=\"20\" y=\"40\">no coordinates: travel times from a matrix</text>\n</svg>\n");
        return svg;
    }
    double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
    for (int l = 0; l < p->n_locations; l++) {
        x0 = p->lon[l] < x0 ? p->lon[l] : x0, x1 = p->lon[l] > x1 ? p->lon[l] : x1;
        y0 = p->lat[l] < y0 ? p->lat[l] : y0, y1 = p->lat[l] > y1 ? p->lat[l] : y1;
    }
    double sx = 960 / (x1 - x0 > 1e-9 ? x1 - x0 : 1), sy = 960 / (y1 - y0 > 1e-9 ? y1 - y0 : 1);
    for (int v = 0; v < p->n_vehicles && len < cap - 256; v++) {
        if (plan->start[v] == plan->start[v + 1]) continue;
        len += (size_t)snprintf(svg + len, cap - len,
                                "<polyline fill=\"none\" stroke=\"hsl(%d,70%%,40%%)\" points=\"",
                                (v * 47) % 360);
        int locs[2] = {p->vehicles[v].start_loc, p->vehicles[v].end_loc};
        for (int k = plan->start[v] - 1; k <= plan->start[v + 1] && len < cap - 128; k++) {
            int loc = k < plan->start[v]         ? locs[0]
                      : k == plan->start[v + 1]  ? locs[1]
                      : plan->steps[k].what >= 0 ? p->tasks[plan->steps[k].what].loc
                                                 : -1;
            if (loc < 0) continue;
            len += (size_t)snprintf(svg + len, cap - len, "%.1f,%.1f ",
                                    20 + (p->lon[loc] - x0) * sx, 980 - (p->lat[loc] - y0) * sy);
        }
        len += (size_t)snprintf(svg + len, cap - len, "\"/>\n");
    }
    snprintf(svg + len, cap - len, "</svg>\n");
    return svg;
}

/* --check: the answer in check_path through rich_check, its stated cost compared. */
static int check_answer(const routecmd__vroom_opts *o, const rich_problem *p)
{
    char *text = NULL, err[512] = "";
    size_t len;
    int rc = os_read_file(o->check_path, ANSWER_MAX_BYTES, &text, &len);
    if (rc != OP_OK) {
        fprintf(stderr, "route: cannot read %s: %s\n", o->check_path, op_strerror(rc));
        return EXIT_USAGE;
    }
    rich_plan plan;
    double stated = -1;
    rc = vroomio_plan_from_json(p, text, &plan, &stated, err, sizeof err);
    free(text);
    if (rc == OP_OK) rc = rich_check(p, &plan, err, sizeof err);
    if (rc == OP_OK && stated >= 0 &&
        (stated - plan.cost > 1e-6 * plan.cost + 0.5 ||
         plan.cost - stated > 1e-6 * plan.cost + 0.5)) {
        snprintf(err, sizeof err, "summary.cost %.2f, but the routes cost %.2f", stated, plan.cost);
        rc = OP_EINVAL;
    }
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s: fails the check: %s\n", o->check_path,
                rc == OP_ENOMEM ? "out of memory" : err);
        rich_plan_clear(&plan);
        return rc == OP_ENOMEM ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
    }
    printf("{\"check\": \"ok\", \"cost\": %.2f, \"served\": %d, \"unassigned\": %d, \"priority\": "
           "%d}\n",
           plan.cost, plan.served, plan.n_unassigned, plan.priority);
    rich_plan_clear(&plan);
    return EXIT_OK;
}

/* --resume: a checkpoint (an answer in VROOM's form) to go on from; it must pass the check. */
static int read_resume(const routecmd__vroom_opts *o, const rich_problem *p, rich_plan *start)
{
    char *text = NULL, err[512] = "";
    size_t len;
    double stated;
    int rc = os_read_file(o->resume, ANSWER_MAX_BYTES, &text, &len);
    if (rc == OP_OK)
        rc = vroomio_plan_from_json(p, text, start, &stated, err, sizeof err);
    else
        snprintf(err, sizeof err, "cannot read: %s", op_strerror(rc));
    free(text);
    if (rc == OP_OK && (rc = rich_check(p, start, err, sizeof err)) != OP_OK)
        rich_plan_clear(start);
    if (rc == OP_OK) return EXIT_OK;
    fprintf(stderr, "route: %s: %s\n", o->resume, err);
    return rc == OP_ENOMEM ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
}

static int write_answer(const routecmd__vroom_opts *o, const rich_problem *p, const rich_plan *plan,
                        const rich_stats *stats)
{
    int exit_code = EXIT_OK;
    char *json = vroomio_plan_to_json(p, plan, o->time_limit_s > 0 ? stats : NULL);
    if (!json) return EXIT_FAILURE_RUNTIME;
    exit_code = routecmd__emit(o->out_path, o->checkpoint, json);
    free(json);
    if (o->svg_path) {
        char *svg = plan_svg(p, plan);
        if (!svg || routecmd__write_text(o->svg_path, svg, "picture") != OP_OK)
            exit_code = EXIT_FAILURE_RUNTIME;
        free(svg);
    }
    return exit_code;
}

int routecmd__vroom(const routecmd__vroom_opts *o, const char *text)
{
    rich_problem p;
    char err[512] = "";
    const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
    int rc = vroomio_parse(text, base, &p, err, sizeof err);
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s\n", err);
        return rc == OP_ENOMEM ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
    }
    if (o->check_path) {
        int exit_code = check_answer(o, &p);
        rich_problem_clear(&p);
        return exit_code;
    }
    rich_plan start = {0};
    if (o->resume && (rc = read_resume(o, &p, &start)) != EXIT_OK) {
        rich_problem_clear(&p);
        return rc;
    }
    vroom_progress vp = {&p, o, 0};
    rich_params params = {
        o->seed, o->time_limit_s,          o->max_iterations, o->now_s, o->stop, on_improve,
        &vp,     o->resume ? &start : NULL};
    rich_plan plan;
    rich_stats stats;
    rc = rich_solve(&p, &params, &plan, &stats, err, sizeof err);
    rich_plan_clear(&start);
    if (rc != OP_OK) {
        fprintf(stderr, "route: %s: %s\n", base, err);
        rich_problem_clear(&p);
        return rc == OP_EINVAL ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
    }
    int exit_code = write_answer(o, &p, &plan, &stats);
    if (plan.n_unassigned)
        fprintf(stderr, "route: warning: %d of %d tasks unassigned (listed in the answer)\n",
                plan.n_unassigned, p.n_tasks);
    if (!o->quiet)
        fprintf(stderr,
                "route: %s: cost %.2f, %d tasks served, %d unassigned, %ld iterations in %.2f s "
                "(best at %.2f s)\n",
                base, plan.cost, plan.served, plan.n_unassigned, stats.iterations, stats.elapsed_s,
                stats.best_found_s);
    rich_plan_clear(&plan);
    rich_problem_clear(&p);
    return exit_code;
}
