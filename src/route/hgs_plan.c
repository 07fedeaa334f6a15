/*
 * hgs_plan: hgs_solve, the solver's entry. It sets aside the stops no
 * vehicle can serve on its own (a demand over every capacity, a window no
 * vehicle reaches), searches the instance made of the others, and puts the
 * answer back in the caller's numbering with those stops listed as
 * unassigned with their reason. Progress reports and a checkpoint to resume
 * from are translated the same way.
 */
#include "base/err.h"
#include "route/hgs_int.h"

#include <stdlib.h>
#include <string.h>

/* The searched instance's nodes in the caller's numbering, and what was set aside. */
typedef struct plan_map {
    const route_instance *orig;
    const hgs_params *params;
    int *node;   /* sub node -> original node (0 -> 0) */
    int *sub_of; /* original node -> sub node, 0 for the set-aside */
    int *aside;  /* set-aside customers */
    int *reason; /* and why */
    int n_aside;
} plan_map;

static double sub_factor(void *ctx, int from, int to)
{
    const plan_map *m = ctx;
    return m->orig->arc_factor(m->orig->arc_factor_ctx, m->node[from], m->node[to]);
}

/* The instance of the stops kept (n_sub nodes with the depot). OP_OK or OP_ENOMEM. */
static int make_sub(plan_map *m, int n_sub, route_instance *sub)
{
    const route_instance *in = m->orig;
    memset(sub, 0, sizeof *sub);
    int rc = route_instance_alloc(sub, n_sub);
    if (rc != OP_OK) return rc;
    memcpy(sub->name, in->name, sizeof sub->name);
    sub->has_windows = in->has_windows;
    sub->round_nint = in->round_nint;
    sub->capacity = in->capacity;
    sub->vehicles = in->vehicles;
    sub->n_types = in->n_types;
    memcpy(sub->types, in->types, sizeof sub->types);
    sub->time_units_per_hour = in->time_units_per_hour;
    for (int i = 0; i < n_sub; i++) {
        int o = m->node[i];
        sub->x[i] = in->x[o];
        sub->y[i] = in->y[o];
        sub->demand[i] = in->demand[o];
        sub->ready[i] = in->ready[o];
        sub->due[i] = in->due[o];
        sub->service[i] = in->service[o];
    }
    if (in->matrix) {
        sub->matrix = malloc((size_t)n_sub * (size_t)n_sub * sizeof(double));
        if (!sub->matrix) return OP_ENOMEM;
        for (int i = 0; i < n_sub; i++)
            for (int j = 0; j < n_sub; j++)
                sub->matrix[(size_t)i * (size_t)n_sub + (size_t)j] =
                    in->matrix[(size_t)m->node[i] * (size_t)in->n + (size_t)m->node[j]];
    }
    if (in->arc_factor) {
        sub->arc_factor = sub_factor;
        sub->arc_factor_ctx = m;
    }
    return OP_OK;
}

/*
 * A solution in one numbering to the other: node[] maps each customer (0
 * for one to drop); the set-aside stops are appended as unassigned when
 * add_aside. OP_OK or OP_ENOMEM.
 */
static int translate(const plan_map *m, const route_solution *in, const int *node, int add_aside,
                     route_solution *out)
{
    int total = in->n_routes ? in->start[in->n_routes] : 0;
    int rc = route_solution_alloc(out, in->n_routes, total);
    int n_un = in->n_unassigned + (add_aside ? m->n_aside : 0);
    if (rc == OP_OK) rc = route_solution_set_unassigned(out, n_un);
    if (rc != OP_OK) {
        route_solution_clear(out);
        return rc;
    }
    int x = 0, u = 0;
    for (int r = 0; r < in->n_routes; r++) {
        out->start[r] = x;
        out->type[r] = in->type[r];
        for (int y = in->start[r]; y < in->start[r + 1]; y++)
            if (node[in->nodes[y]]) out->nodes[x++] = node[in->nodes[y]];
    }
    out->start[in->n_routes] = x;
    for (int y = 0; y < in->n_unassigned; y++)
        if (node[in->unassigned[y]]) {
            out->unassigned[u] = node[in->unassigned[y]];
            out->reason[u++] = in->reason[y];
        }
    for (int y = 0; add_aside && y < m->n_aside; y++) {
        out->unassigned[u] = m->aside[y];
        out->reason[u++] = m->reason[y];
    }
    out->n_unassigned = u;
    out->cost = in->cost;
    out->distance = in->distance;
    return OP_OK;
}

/* Progress of the searched instance, reported in the caller's numbering. */
static void sub_improve(void *ctx, const hgs_progress *progress)
{
    const plan_map *m = ctx;
    route_solution mapped;
    if (translate(m, progress->best, m->node, 1, &mapped) != OP_OK) return;
    hgs_progress p = *progress;
    p.best = &mapped;
    m->params->on_improve(m->params->ctx, &p);
    route_solution_clear(&mapped);
}

/* Sets aside the stops no vehicle serves alone; returns how many stay (with the depot). */
static int plan_split(plan_map *m)
{
    const route_instance *in = m->orig;
    int n_sub = 1;
    for (int c = 1; c < in->n; c++) {
        int problem = route_stop_problem(in, c);
        if (problem) {
            m->aside[m->n_aside] = c;
            m->reason[m->n_aside++] = problem;
        } else {
            m->sub_of[c] = n_sub;
            m->node[n_sub++] = c;
        }
    }
    return n_sub;
}

/* Searches the kept stops and translates back. */
static int solve_sub(plan_map *m, int n_sub, route_solution *best, hgs_stats *stats, char *err,
                     size_t err_len)
{
    route_instance sub;
    route_solution start = {0}, found = {0};
    hgs_params p = *m->params;
    int rc = make_sub(m, n_sub, &sub);
    if (rc == OP_OK && p.start) {
        rc = translate(m, p.start, m->sub_of, 0, &start);
        p.start = &start;
    }
    if (p.on_improve) {
        p.on_improve = sub_improve;
        p.ctx = m;
    }
    if (rc == OP_OK && n_sub > 1) rc = hgs__search(&sub, &p, &found, stats, err, err_len);
    if (rc == OP_OK) rc = translate(m, &found, m->node, 1, best);
    if (rc == OP_OK && (rc = route_check_solution(m->orig, best, err, err_len)) != OP_OK)
        route_solution_clear(best);
    route_solution_clear(&found);
    route_solution_clear(&start);
    sub.arc_factor = NULL;
    route_instance_clear(&sub);
    return rc;
}

int hgs_solve(const route_instance *inst, const hgs_params *params, route_solution *best,
              hgs_stats *stats, char *err, size_t err_len)
{
    memset(best, 0, sizeof *best);
    if (stats) memset(stats, 0, sizeof *stats);
    if (inst->n < 2 || params->strict) {
        int rc = inst->n < 2 ? OP_OK : route_precheck(inst, err, err_len);
        return rc != OP_OK ? rc : hgs__search(inst, params, best, stats, err, err_len);
    }
    plan_map m = {.orig = inst, .params = params};
    size_t n = (size_t)inst->n;
    m.node = calloc(n, sizeof(int));
    m.sub_of = calloc(n, sizeof(int));
    m.aside = calloc(n, sizeof(int));
    m.reason = calloc(n, sizeof(int));
    int rc = OP_ENOMEM;
    if (m.node && m.sub_of && m.aside && m.reason) {
        int n_sub = plan_split(&m);
        rc = m.n_aside ? solve_sub(&m, n_sub, best, stats, err, err_len)
                       : hgs__search(inst, params, best, stats, err, err_len);
    }
    free(m.node);
    free(m.sub_of);
    free(m.aside);
    free(m.reason);
    return rc;
}
