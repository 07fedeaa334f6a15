/*
 * hgs_par: the search in parallel, as islands. With params->threads > 1,
 * hgs__search runs that many whole genetic searches (hgs.c) at once, one
 * per thread, each with its own population, seed and scratch arrays,
 * sharing the instance and the distance matrix read only. The exchange
 * owns the best plan any island has found, under a mutex: every
 * HGS_MIGRATE_EVERY offspring an island takes it into its population when
 * another island found it, so all islands work near the best region found
 * while their populations stay their own. The answer is the best of the
 * islands' answers.
 *
 * Why islands rather than a parallel local search or one shared
 * population: an offspring's local search is a few milliseconds of work
 * on data that changes at every move, too fine to split between threads,
 * and a shared population would take a lock at each of its thousands of
 * insertions a second; islands touch the lock only when the best improves
 * and at migrations.
 */
#include "base/err.h"
#include "route/hgs_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hgs_exchange {
    pthread_mutex_t lock;
    int objective;
    int *giant, *rstart; /* the best plan, allocated at the first offer */
    int nc, K, n_routes, owner;
    double cost;
    long version; /* 0: none yet */
};

void hgs__exchange_lock(hgs_exchange *x)
{
    pthread_mutex_lock(&x->lock);
}

void hgs__exchange_unlock(hgs_exchange *x)
{
    pthread_mutex_unlock(&x->lock);
}

int hgs__exchange_offer(hgs_exchange *x, int island, const int *giant, const int *rstart, int K,
                        int n_routes, double cost)
{
    if (x->version) {
        if (x->objective == HGS_OBJECTIVE_VEHICLES && n_routes != x->n_routes) {
            if (n_routes > x->n_routes) return 0;
        } else if (!(cost < x->cost - EPS)) {
            return 0;
        }
    } else {
        x->giant = malloc(((size_t)x->nc + 1) * sizeof(int));
        x->rstart = malloc(((size_t)K + 1) * sizeof(int));
        if (!x->giant || !x->rstart) return 0; /* no migration; each island goes on alone */
        x->K = K;
    }
    memcpy(x->giant, giant, (size_t)x->nc * sizeof(int));
    memcpy(x->rstart, rstart, ((size_t)K + 1) * sizeof(int));
    x->n_routes = n_routes;
    x->cost = cost;
    x->owner = island;
    x->version++;
    return 1;
}

long hgs__exchange_take(hgs_exchange *x, int island, long seen, int *giant, int *rstart, int K)
{
    long version = 0;
    pthread_mutex_lock(&x->lock);
    if (x->version > seen && x->owner != island && x->K == K && x->giant && x->rstart) {
        memcpy(giant, x->giant, (size_t)x->nc * sizeof(int));
        memcpy(rstart, x->rstart, ((size_t)K + 1) * sizeof(int));
        version = x->version;
    }
    pthread_mutex_unlock(&x->lock);
    return version;
}

/* One island's work and answer. */
typedef struct island_run {
    const route_instance *inst;
    hgs_params params;
    hgs_island island;
    route_solution best;
    hgs_stats stats;
    char err[256];
    int rc;
} island_run;

static void *island_main(void *arg)
{
    island_run *r = arg;
    r->rc =
        hgs__island(r->inst, &r->params, &r->island, &r->best, &r->stats, r->err, sizeof r->err);
    return NULL;
}

/* a is a better answer than b: fewer stops left out, (fewer routes first,) lower cost. */
static int answer_better(const route_solution *a, const route_solution *b, int objective)
{
    if (a->n_unassigned != b->n_unassigned) return a->n_unassigned < b->n_unassigned;
    if (objective == HGS_OBJECTIVE_VEHICLES && a->n_routes != b->n_routes)
        return a->n_routes < b->n_routes;
    return a->cost < b->cost - EPS;
}

/*
 * The islands' answers into one: the best, its error when none succeeded,
 * the effort summed. Frees the others.
 */
static int gather(island_run *runs, int n, int objective, route_solution *best, hgs_stats *stats,
                  char *err, size_t err_len)
{
    int chosen = -1;
    hgs_stats sum = {0};
    for (int i = 0; i < n; i++) {
        sum.iterations += runs[i].stats.iterations;
        sum.restarts += runs[i].stats.restarts;
        sum.moves += runs[i].stats.moves;
        if (runs[i].stats.elapsed_s > sum.elapsed_s) sum.elapsed_s = runs[i].stats.elapsed_s;
        if (runs[i].rc != OP_OK) continue;
        if (chosen < 0 || answer_better(&runs[i].best, &runs[chosen].best, objective)) chosen = i;
    }
    for (int i = 0; i < n; i++)
        if (i != chosen) route_solution_clear(&runs[i].best);
    if (chosen < 0) {
        snprintf(err, err_len, "%s", runs[0].err);
        return runs[0].rc;
    }
    *best = runs[chosen].best;
    sum.best_found_s = runs[chosen].stats.best_found_s;
    if (stats) *stats = sum;
    return OP_OK;
}

/* Island i's parameters: its own seed (island 0 keeps the caller's), its share of iterations. */
static void island_params(const hgs_params *params, int i, int n, hgs_params *out)
{
    *out = *params;
    out->seed = params->seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    if (params->max_iterations) out->max_iterations = (params->max_iterations + n - 1) / n;
}

int hgs__search(const route_instance *inst, const hgs_params *params, route_solution *best,
                hgs_stats *stats, char *err, size_t err_len)
{
    int n = params->threads > HGS_MAX_THREADS ? HGS_MAX_THREADS : params->threads;
    if (n <= 1 || inst->n < 3) return hgs__island(inst, params, NULL, best, stats, err, err_len);
    memset(best, 0, sizeof *best);
    hgs_exchange x = {.objective = params->objective, .nc = inst->n - 1};
    island_run *runs = calloc((size_t)n, sizeof *runs);
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    double *D = hgs__matrix(inst);
    int rc = OP_ENOMEM, started = 1;
    if (!runs || !tids || !D || pthread_mutex_init(&x.lock, NULL) != 0) goto out;
    double start_s = params->now_s ? params->now_s() : 0;
    for (int i = 0; i < n; i++) {
        runs[i].inst = inst;
        island_params(params, i, n, &runs[i].params);
        runs[i].island = (hgs_island){&x, i, D, start_s};
    }
    /* islands 1.. in threads of 2 MiB stacks (the search keeps its data on the heap) */
    pthread_attr_t attr;
    int attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok) pthread_attr_setstacksize(&attr, (size_t)2 << 20);
    for (int i = 1; i < n; i++, started++)
        if (pthread_create(&tids[i], attr_ok ? &attr : NULL, island_main, &runs[i]) != 0)
            break; /* fewer islands: the search goes on with those running */
    if (attr_ok) pthread_attr_destroy(&attr);
    island_main(&runs[0]);
    for (int i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    rc = gather(runs, started, params->objective, best, stats, err, err_len);
    pthread_mutex_destroy(&x.lock);
out:
    if (rc == OP_ENOMEM && !*err) snprintf(err, err_len, "out of memory");
    free(x.giant);
    free(x.rstart);
    free(D);
    free(tids);
    free(runs);
    return rc;
}
