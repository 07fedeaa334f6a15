#include "route/rich_int.h"

#include "base/err.h"

#include <stdlib.h>
#include <string.h>

void rich_problem_clear(rich_problem *p)
{
    if (!p) return;
    free(p->tasks);
    free(p->requests);
    free(p->vehicles);
    for (int i = 0; i < RICH_MAX_PROFILES; i++) {
        free(p->durations[i]);
        free(p->distances[i]);
    }
    free(p->lon);
    free(p->lat);
    free(p->tw_pool);
    free(p->break_pool);
    memset(p, 0, sizeof *p);
}

int64_t rich_duration(const rich_problem *p, int v, int a, int b)
{
    if (a < 0 || b < 0) return 0;
    return p->durations[p->vehicles[v].profile][(size_t)a * (size_t)p->n_locations + (size_t)b];
}

int64_t rich_distance(const rich_problem *p, int v, int a, int b)
{
    const int64_t *m = p->distances[p->vehicles[v].profile];
    if (a < 0 || b < 0 || !m) return 0;
    return m[(size_t)a * (size_t)p->n_locations + (size_t)b];
}

int rich_skills_ok(const rich_problem *p, int v, int t)
{
    for (int w = 0; w < RICH_SKILL_WORDS; w++)
        if (p->tasks[t].skills[w] & ~p->vehicles[v].skills[w]) return 0;
    return 1;
}

double rich__route_cost(const rich_problem *p, int v, int64_t travel, int64_t distance)
{
    const rich_vehicle *veh = &p->vehicles[v];
    return veh->fixed + veh->per_hour * (double)travel / 3600.0 +
           veh->per_km * (double)distance / 1000.0;
}

int rich_plan_alloc(rich_plan *plan, int n_vehicles, int n_steps, int n_unassigned)
{
    memset(plan, 0, sizeof *plan);
    plan->n_vehicles = n_vehicles;
    plan->start = calloc((size_t)n_vehicles + 1, sizeof *plan->start);
    plan->begin = calloc((size_t)n_vehicles + 1, sizeof *plan->begin);
    plan->steps = calloc((size_t)n_steps + 1, sizeof *plan->steps);
    plan->unassigned = calloc((size_t)n_unassigned + 1, sizeof *plan->unassigned);
    if (!plan->start || !plan->begin || !plan->steps || !plan->unassigned) {
        rich_plan_clear(plan);
        return OP_ENOMEM;
    }
    return OP_OK;
}

void rich_plan_clear(rich_plan *plan)
{
    if (!plan) return;
    free(plan->start);
    free(plan->begin);
    free(plan->steps);
    free(plan->unassigned);
    memset(plan, 0, sizeof *plan);
}
