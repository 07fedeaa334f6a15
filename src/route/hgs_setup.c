/*
 * hgs_setup: what the search needs before it starts. Vehicle slots (as
 * many as each type has, or enough for its share of the demand when
 * unlimited, largest first), the distance matrix, node data with time
 * windows made explicit, polar angles for SWAP*'s sectors, initial
 * penalties, the granular neighbourhoods; and a checkpoint's routes as a
 * starting individual.
 */
#include "base/err.h"
#include "route/hgs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hgs__load_start(hgs *h, indiv *s, const route_solution *start, char *err, size_t err_len)
{
    char *used_slot = calloc((size_t)h->K, 1);
    char *seen = calloc((size_t)h->n, 1);
    int rc = OP_OK;
    if (!used_slot || !seen) {
        rc = OP_ENOMEM;
        goto out;
    }
    int *slot_of_route = calloc((size_t)start->n_routes + 1, sizeof(int));
    if (!slot_of_route) {
        rc = OP_ENOMEM;
        goto out;
    }
    for (int r = 0; r < start->n_routes && rc == OP_OK; r++) {
        int k = 0;
        while (k < h->K && (used_slot[k] || h->slot_type[k] != start->type[r]))
            k++;
        if (k == h->K) {
            snprintf(err, err_len, "checkpoint: more routes of type %d than vehicles",
                     start->type[r]);
            rc = OP_EINVAL;
        } else {
            used_slot[k] = 1;
            slot_of_route[r] = k;
        }
    }
    int x = 0;
    for (int k = 0; k < h->K && rc == OP_OK; k++) {
        s->rstart[k] = x;
        for (int r = 0; r < start->n_routes; r++) {
            if (slot_of_route[r] != k || !used_slot[k]) continue;
            for (int y = start->start[r]; y < start->start[r + 1] && rc == OP_OK; y++) {
                int c = start->nodes[y];
                if (c < 1 || c > h->nc || seen[c]++ || x >= h->nc) {
                    snprintf(err, err_len, "checkpoint: customer %d is unknown or repeated", c);
                    rc = OP_EINVAL;
                } else {
                    s->giant[x++] = c;
                }
            }
        }
    }
    /* a partial plan's unassigned stops join the last slot: a full, penalised start */
    for (int c = 1; rc == OP_OK && c <= h->nc; c++)
        if (!seen[c]) s->giant[x++] = c;
    s->rstart[h->K] = x;
    free(slot_of_route);
out:
    free(used_slot);
    free(seen);
    return rc;
}

/* Distances from coordinates without factors: d(i, j) = d(j, i). */
static int symmetric_matrix(const route_instance *inst)
{
    return !inst->matrix && !inst->arc_factor;
}

/* The distance matrix; a symmetric one is filled by halves: half the square roots. */
static void fill_matrix(const route_instance *inst, double *D)
{
    size_t n = (size_t)inst->n;
    int symmetric = symmetric_matrix(inst);
    for (int i = 0; i < inst->n; i++)
        for (int j = symmetric ? i : 0; j < inst->n; j++) {
            double d = route_distance(inst, i, j);
            D[(size_t)i * n + (size_t)j] = d;
            if (symmetric) D[(size_t)j * n + (size_t)i] = d;
        }
}

double *hgs__matrix(const route_instance *inst)
{
    double *D = malloc((size_t)inst->n * (size_t)inst->n * sizeof(double));
    if (D) fill_matrix(inst, D);
    return D;
}

static int cmp_slot(const void *x, const void *y, void *ctx)
{
    const route_instance *inst = ctx;
    int64_t a = inst->types[*(const int *)x].capacity, b = inst->types[*(const int *)y].capacity;
    if (a != b) return a > b ? -1 : 1;
    return *(const int *)x - *(const int *)y;
}

/*
 * Vehicle slots: as many as each type has or, when unlimited, HGS-CVRP's
 * bound on the routes needed (never more than the customers), sorted by
 * capacity, largest first. OP_OK or OP_ENOMEM.
 */
static int make_slots(hgs *h, const route_instance *inst)
{
    int64_t total_demand = 0;
    for (int c = 1; c < h->n; c++)
        total_demand += inst->demand[c];
    int K = 0, count[ROUTE_MAX_TYPES];
    for (int t = 0; t < inst->n_types; t++) {
        count[t] = inst->types[t].count;
        if (!count[t])
            count[t] = (int)ceil(1.3 * (double)total_demand / (double)inst->types[t].capacity) + 3;
        if (count[t] > h->nc) count[t] = h->nc;
        K += count[t];
    }
    h->K = K;
    h->slot_type = calloc((size_t)K, sizeof(int));
    if (!h->slot_type) return OP_ENOMEM;
    for (int t = 0, k = 0; t < inst->n_types; t++)
        for (int x = 0; x < count[t]; x++)
            h->slot_type[k++] = t;
    qsort_r(h->slot_type, (size_t)K, sizeof(int), cmp_slot, (void *)inst);
    return OP_OK;
}

/* Every array of the search, sized by nodes (n) and slots (K). OP_OK or OP_ENOMEM. */
static int alloc_arrays(hgs *h)
{
    size_t n = (size_t)h->n, K = (size_t)h->K;
    if (!h->shared_D) h->own_D = malloc(n * n * sizeof(double));
    h->D = h->shared_D ? h->shared_D : h->own_D;
    h->demand = calloc(n, sizeof(int64_t));
    h->ready = calloc(n, sizeof(double));
    h->due = calloc(n, sizeof(double));
    h->service = calloc(n, sizeof(double));
    h->stride = h->n + 2;
    size_t cells = K * (size_t)h->stride;
    h->rn = calloc(cells, sizeof(int));
    h->rlen = calloc(K, sizeof(int));
    h->pre = calloc(cells, sizeof(seg));
    h->suf = calloc(cells, sizeof(seg));
    h->rcum = calloc(cells, sizeof(double));
    h->cd = calloc(cells, sizeof(double));
    h->cl = calloc(cells, sizeof(int64_t));
    h->slot_cap = calloc(K, sizeof(int64_t));
    h->slot_fixed = calloc(K, sizeof(double));
    h->slot_hourly = calloc(K, sizeof(double));
    h->rcost = calloc(K, sizeof(double));
    h->rpen = calloc(K, sizeof(double));
    h->route_of = calloc(n, sizeof(int));
    h->pos_of = calloc(n, sizeof(int));
    h->order = calloc(n, sizeof(int));
    h->modified = calloc(K, sizeof(long));
    h->tested = calloc(n, sizeof(long));
    h->swapstar_tested = calloc(K, sizeof(long));
    h->angle = calloc(n, sizeof(int));
    h->sector_start = calloc(K, sizeof(int));
    h->sector_end = calloc(K, sizeof(int));
    h->ins_cost = calloc((n + 2) * 3, sizeof(double));
    h->ins_pos = calloc((n + 2) * 3, sizeof(int));
    h->swap_edge = calloc(n + 2, sizeof(double));
    h->swap_gain = calloc(n + 2, sizeof(double));
    h->tmp_a = calloc(n + 2, sizeof(int));
    h->tmp_b = calloc(n + 2, sizeof(int));
    h->pot = calloc((K + 1) * (n + 1), sizeof(double));
    h->from = calloc((K + 1) * (n + 1), sizeof(int));
    h->split_dist = calloc(n + 1, sizeof(double));
    h->split_load = calloc(n + 1, sizeof(int64_t));
    h->split_queue = calloc(n + 1, sizeof(int));
    h->neigh = calloc(n * (size_t)(h->granular + 1), sizeof(int));
    h->unserved = calloc(n + 1, sizeof(int));
    if (!h->D || !h->demand || !h->ready || !h->due || !h->service || !h->rn || !h->rlen ||
        !h->pre || !h->suf || !h->rcum || !h->cd || !h->cl || !h->slot_cap || !h->slot_fixed ||
        !h->slot_hourly || !h->rcost || !h->rpen || !h->route_of || !h->pos_of || !h->order ||
        !h->modified || !h->tested || !h->swapstar_tested || !h->angle || !h->sector_start ||
        !h->sector_end || !h->ins_cost || !h->ins_pos || !h->swap_edge || !h->swap_gain ||
        !h->tmp_a || !h->tmp_b || !h->pot || !h->from || !h->split_dist || !h->split_load ||
        !h->split_queue || !h->neigh || !h->unserved)
        return OP_ENOMEM;
    return OP_OK;
}

/*
 * Slot capacities, the distance matrix, node data (without time windows:
 * always open, no service), the customer order, polar angles for SWAP*'s
 * route sectors, and the starting penalties (load: the longest arc over
 * the largest demand, within 0.1..1000).
 */
static void fill_data(hgs *h, const route_instance *inst)
{
    size_t n = (size_t)h->n;
    int64_t max_demand = 1;
    for (int c = 1; c < h->n; c++)
        if (inst->demand[c] > max_demand) max_demand = inst->demand[c];
    double per_hour = inst->time_units_per_hour > 0 ? inst->time_units_per_hour : 60;
    for (int k = 0; k < h->K; k++) {
        const route_vehicle *v = &inst->types[h->slot_type[k]];
        h->slot_cap[k] = v->capacity;
        h->slot_fixed[k] = v->fixed_cost;
        h->slot_hourly[k] = v->cost_per_hour / per_hour;
    }
    if (h->own_D) fill_matrix(inst, h->own_D);
    double max_dist = 0;
    for (size_t x = 0; x < n * n; x++)
        if (h->D[x] > max_dist) max_dist = h->D[x];
    for (int i = 0; i < h->n; i++) {
        h->demand[i] = i ? inst->demand[i] : 0;
        h->ready[i] = h->has_tw ? inst->ready[i] : 0;
        h->due[i] = h->has_tw ? inst->due[i] : BIG;
        h->service[i] = h->has_tw ? inst->service[i] : 0;
    }
    for (int c = 0; c < h->nc; c++)
        h->order[c] = c + 1;
    for (int i = 0; i < h->n; i++)
        h->angle[i] =
            inst->matrix
                ? -1
                : pmod((int)(32768.0 * atan2(inst->y[i] - inst->y[0], inst->x[i] - inst->x[0]) /
                             M_PI));
    h->pen_load = fmax(0.1, fmin(1000, max_dist / (double)max_demand));
    /* vehicles first: a route costs as much as the longest return trip from the depot */
    double farthest = 0;
    for (int c = 1; c < h->n; c++)
        farthest = fmax(farthest, dist(h, 0, c) + dist(h, c, 0));
    h->fleet_m = h->params->objective == HGS_OBJECTIVE_VEHICLES ? farthest : 0;
    h->pen_warp = 1.0;
}

/* How close j is to i for the neighbourhoods: distance, with time windows counted (PyVRP's
 * measure: the waiting and the time warp of going either way). */
static double proximity(const hgs *h, int i, int j)
{
    double prox = dist(h, i, j);
    if (!h->has_tw) return prox;
    double a = prox + 0.2 * fmax(0, h->ready[j] - h->service[i] - dist(h, i, j) - h->due[i]) +
               fmax(0, h->ready[i] + h->service[i] + dist(h, i, j) - h->due[j]);
    double b = dist(h, j, i) +
               0.2 * fmax(0, h->ready[i] - h->service[j] - dist(h, j, i) - h->due[j]) +
               fmax(0, h->ready[j] + h->service[j] + dist(h, j, i) - h->due[i]);
    return fmin(a, b);
}

/*
 * The granular neighbourhoods: each customer's `granular` closest customers,
 * nearest first (ties to the lower number). One pass per row keeps the best
 * so far in a sorted list, so a row costs O(n) plus the rare insertions:
 * on 2,000 customers this is milliseconds where a selection sort took a
 * tenth of a second. OP_OK or OP_ENOMEM.
 */
static int build_neighbours(hgs *h)
{
    int g = h->granular;
    double *key = malloc(((size_t)g + 1) * sizeof(double));
    if (!key) return OP_ENOMEM;
    for (int i = 1; i < h->n; i++) {
        int *row = h->neigh + (size_t)i * (size_t)g, m = 0;
        for (int j = 1; j < h->n; j++) {
            if (j == i) continue;
            double k = proximity(h, i, j);
            if (m == g && !(k < key[m - 1])) continue; /* j > every listed index: ties lose */
            int x = m < g ? m++ : m - 1;
            while (x > 0 && k < key[x - 1]) {
                key[x] = key[x - 1];
                row[x] = row[x - 1];
                x--;
            }
            key[x] = k;
            row[x] = j;
        }
    }
    free(key);
    return OP_OK;
}

int hgs__setup(hgs *h, const route_instance *inst, const hgs_params *params)
{
    h->inst = inst;
    h->params = params;
    h->n = inst->n;
    h->nc = inst->n - 1;
    h->has_tw = inst->has_windows;
    h->symmetric = symmetric_matrix(inst);
    h->reversible = !inst->has_windows && h->symmetric;
    h->rng = params->seed ^ 0x5eedf00dULL;
    h->granular = params->granular > 0 ? params->granular : 20;
    if (h->granular > h->nc - 1) h->granular = h->nc - 1 > 0 ? h->nc - 1 : 0;
    int rc = make_slots(h, inst);
    if (rc == OP_OK) rc = alloc_arrays(h);
    if (rc != OP_OK) return rc;
    fill_data(h, inst);
    return build_neighbours(h);
}

void hgs__free_arrays(hgs *h)
{
    free(h->slot_type);
    free(h->absence);
    free(h->own_D);
    free(h->demand);
    free(h->ready);
    free(h->due);
    free(h->service);
    free(h->rn);
    free(h->rlen);
    free(h->pre);
    free(h->suf);
    free(h->rcum);
    free(h->cd);
    free(h->cl);
    free(h->slot_cap);
    free(h->slot_fixed);
    free(h->slot_hourly);
    free(h->rcost);
    free(h->rpen);
    free(h->route_of);
    free(h->pos_of);
    free(h->order);
    free(h->modified);
    free(h->tested);
    free(h->swapstar_tested);
    free(h->angle);
    free(h->sector_start);
    free(h->sector_end);
    free(h->ins_cost);
    free(h->ins_pos);
    free(h->swap_edge);
    free(h->swap_gain);
    free(h->tmp_a);
    free(h->tmp_b);
    free(h->pot);
    free(h->from);
    free(h->split_dist);
    free(h->split_load);
    free(h->split_queue);
    free(h->neigh);
    free(h->unserved);
    route_solution_clear(&h->fallback);
}
