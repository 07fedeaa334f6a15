/*
 * hgs internals, shared by the solver's files:
 *   hgs.c        the genetic loop: individuals, Split, the population and
 *                its diversity, crossover, penalties, hgs_solve;
 *   hgs_ls.c     the local search (relocate, swap, 2-opt, 2-opt*, SWAP*)
 *                on routes held as position arrays with segment summaries;
 *   hgs_setup.c  the solver's arrays, vehicle slots, the distance matrix,
 *                the granular neighbourhoods, and loading a checkpoint.
 *   hgs_fleet.c  route minimisation for the vehicles-first objective.
 * The inline helpers below are the hot path of every move evaluation.
 */
#ifndef OUTPOST_HGS_INT_H
#define OUTPOST_HGS_INT_H

#include "base/util.h"
#include "route/hgs.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Population parameters from HGS-CVRP (Vidal 2022, table 1). */
#define POP_MU 25
#define POP_LAMBDA 40
#define POP_ELITE 4
#define POP_CLOSE 5
#define POP_MAX (POP_MU + POP_LAMBDA + 1)
#define TARGET_FEASIBLE 0.2
#define PENALTY_WINDOW 100
#define EPS 1e-7
#define BIG 1e30

/*
 * A route segment's summary (Vidal et al. 2013): enough to get the distance,
 * load and time warp of a concatenation of segments in O(1). early/late are
 * the earliest and latest start of the segment's first service that keep its
 * time warp at warp; dur includes service and unavoidable waiting.
 */
typedef struct seg {
    double dist, dur, warp, early, late;
    int64_t load;
    int first, last;
} seg;

/* A range of positions i..j of route k, walked backwards when rev. */
typedef struct piece {
    int k, i, j, rev;
} piece;

typedef struct indiv {
    double penalized, dist, warp;
    double cost;      /* dist plus the vehicles' fixed and hourly costs */
    double fleet_pen; /* the vehicle costs the search counts (cost - dist, plus fleet_m a route) */
    int64_t excess;
    int feasible, n_routes;
    int *giant;  /* nc customers, route after route */
    int *rstart; /* K + 1 offsets into giant: slot k's customers */
    int *succ, *pred;
    double fitness;
    int n_prox;
    double prox_d[POP_MAX];
    struct indiv *prox_i[POP_MAX];
} indiv;

typedef struct subpop {
    indiv *v[POP_MAX];
    int n;
} subpop;

/* The islands' shared best plan (hgs_par.c); opaque. */
typedef struct hgs_exchange hgs_exchange;

/* Offspring between two looks of an island at the other islands' best. */
#define HGS_MIGRATE_EVERY 100

typedef struct hgs {
    const route_instance *inst;
    hgs_exchange *x;        /* NULL when searching alone */
    int island;             /* this island's number, 0 alone */
    long migrated;          /* the exchange's version last taken in */
    const double *shared_D; /* a distance matrix the islands share, or NULL */
    const hgs_params *params;
    int n, nc, K, has_tw, granular;
    int reversible;  /* no windows and a symmetric matrix: a reversed route costs the same */
    int symmetric;   /* distances from coordinates: d(i, j) = d(j, i) */
    const double *D; /* shared_D, or own_D */
    double *own_D;
    int64_t *demand;
    double *ready, *due, *service;
    int *slot_type;
    uint64_t rng;
    double pen_load, pen_warp;
    int *neigh; /* nc+1 rows of granular */
    /* local search state */
    int stride;     /* n + 2 */
    int *rn, *rlen; /* route k's nodes at rn[k*stride + p], p = 0 and rlen+1 are the depot */
    seg *pre, *suf; /* prefix (with start depot) and suffix (customers only) summaries */
    double *rcum;   /* reverse-direction distance prefix sums */
    double *cd;     /* forward distance prefix sums (compact copy of pre[].dist) */
    int64_t *cl;    /* load prefix sums */
    int64_t *slot_cap;
    double *slot_fixed;  /* fixed cost of a route in slot k */
    double *slot_hourly; /* cost per time unit of its duration */
    double fleet_m;      /* added per route with the vehicles-first objective */
    long improvements;   /* times the best plan improved */
    double *rcost;       /* penalized cost per route */
    double *rpen;        /* of which penalties (overload, time warp) */
    int *route_of, *pos_of, *order;
    long moves, *modified, *tested, *swapstar_tested;
    int *angle; /* polar angle of each node around the depot, 0..65535 (-1: no coordinates) */
    int *sector_start, *sector_end; /* per route: the circle sector its customers span */
    /* SWAP* preprocessing: three best insertion positions of each node into the other route */
    double *ins_cost;
    int *ins_pos;
    double *swap_edge, *swap_gain; /* SWAP*: two routes' edges and each stop's removal gain */
    int *tmp_a, *tmp_b;
    /* split */
    double *pot;
    int *from;
    double *split_dist;  /* the linear Split's distance along the tour, */
    int64_t *split_load; /* load of its first customers, */
    int *split_queue;    /* and its queue of candidate predecessors */
    /* population */
    subpop feas, infeas;
    indiv *best;
    double best_found_s, start_s;
    int load_hist[PENALTY_WINDOW], warp_hist[PENALTY_WINDOW], hist_n;
    int hist_adapted; /* hist_n at the last adaptation of the penalties */
    double adapted_s; /* and when, under a time limit */
    long iterations, restarts;
    long *absence;     /* route minimisation: how often each stop could not be placed */
    long fleet_steps;  /* stops taken from its ejection pool */
    int fleet_floor;   /* no plan has fewer routes (vehicles first; 0 before it is known) */
    int fleet_removed; /* route minimisation removed a route */
    int fleet_locked;  /* the local search may not open a route (route minimisation's squeeze) */
    /* a partial plan (the construction's, when it could not place every stop) */
    route_solution fallback;
    int *unserved; /* nc + 1 scratch entries */
} hgs;

/* ---- randomness (the one sequence of the search, seeded from params->seed) ---- */

static inline int rnd_below(hgs *h, int n)
{
    return (int)(((util_splitmix64(&h->rng) >> 32) * (uint64_t)n) >> 32);
}

static inline void shuffle(hgs *h, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rnd_below(h, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/*
 * The time limit or a stop request has struck. Never true with only an
 * iteration limit, so such runs stay reproducible for a seed.
 */
static inline int hgs__time_up(const hgs *h)
{
    const hgs_params *p = h->params;
    if (p->stop && *p->stop) return 1;
    return p->time_limit_s > 0 && p->now_s() - h->start_s >= p->time_limit_s;
}

/* ---- segments ---- */

static inline double dist(const hgs *h, int i, int j)
{
    return h->D[(size_t)i * (size_t)h->n + (size_t)j];
}

static inline seg node_seg(const hgs *h, int c)
{
    seg s = {0, h->service[c], 0, h->ready[c], h->due[c], h->demand[c], c, c};
    return s;
}

static inline seg depot_seg(const hgs *h, int k)
{
    const route_vehicle *v = &h->inst->types[h->slot_type[k]];
    seg s = {0, 0, 0, v->shift_start, v->shift_end, 0, 0, 0};
    return s;
}

static inline seg merge(const hgs *h, seg a, seg b)
{
    double edge = dist(h, a.last, b.first);
    seg r;
    r.dist = a.dist + b.dist + edge;
    r.load = a.load + b.load;
    r.first = a.first;
    r.last = b.last;
    if (!h->has_tw) {
        r.dur = r.warp = r.early = 0;
        r.late = BIG;
        return r;
    }
    double delta = a.dur - a.warp + edge;
    double wait = b.early - delta - a.late;
    double warp = a.early + delta - b.late;
    if (wait < 0) wait = 0;
    if (warp < 0) warp = 0;
    r.dur = a.dur + b.dur + edge + wait;
    r.warp = a.warp + b.warp + warp;
    /* not fmax and fmin: they are calls into libm here (3% of a vehicles-first run) */
    double early = b.early - delta, late = b.late - delta;
    r.early = (early > a.early ? early : a.early) - wait;
    r.late = (late < a.late ? late : a.late) + warp;
    return r;
}

static inline int64_t capacity(const hgs *h, int k)
{
    return h->slot_cap[k];
}

static inline double penalized(const hgs *h, double d, int64_t load, double warp, int k,
                               double pen_load, double pen_warp)
{
    int64_t excess = load - capacity(h, k);
    return d + (excess > 0 ? pen_load * (double)excess : 0) + pen_warp * warp;
}

/*
 * What a non-empty route in slot k costs beyond its distance: its vehicle's
 * fixed cost, its hourly cost on its duration (the distance without time
 * windows), and fleet_m with the vehicles-first objective (with_m).
 */
static inline double vehicle_cost(const hgs *h, int k, seg closed, int with_m)
{
    double duration = h->has_tw ? closed.dur : closed.dist;
    return h->slot_fixed[k] + h->slot_hourly[k] * duration + (with_m ? h->fleet_m : 0);
}

/* ---- local search: routes as position arrays with prefix/suffix summaries ---- */

#define RN(h, k, p) ((h)->rn[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define PRE(h, k, p) ((h)->pre[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define SUF(h, k, p) ((h)->suf[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define RCUM(h, k, p) ((h)->rcum[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define CD(h, k, p) ((h)->cd[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])
#define CL(h, k, p) ((h)->cl[(size_t)(k) * (size_t)(h)->stride + (size_t)(p)])

/* An angle in 1/65536 turns, brought into 0..65535. */
static inline int pmod(int i)
{
    return ((i % 65536) + 65536) % 65536;
}

/* Moves within a route (hgs_ls.c): the distance each changes, BIG where it does not apply. */
enum { INTRA_RELOCATE, INTRA_PAIR, INTRA_PAIR_REVERSED, INTRA_SWAP, INTRA_TWO_OPT, INTRA_MOVES };
void hgs__intra_deltas(const hgs *h, int u, int pv, double *d);

/* Local search on the routes loaded into h->rn/h->rlen (hgs_ls.c). */
void hgs__local_search(hgs *h);
/* The same after only route slot focus changed (-1: a full search). */
void hgs__local_search_from(hgs *h, int focus);
/* Recomputes route slot k's summaries after its nodes changed (hgs_ls.c). */
void hgs__route_update(hgs *h, int k);

/*
 * The local search's first filter and full evaluation of route slot k made of
 * pieces (for tests: the filter must never exceed the full cost, or moves
 * that improve would be passed over).
 */
void hgs__eval_both(const hgs *h, const piece *ps, int np, int k, double *fast, double *full);

/*
 * Plans without the genetic search (hgs_build.c), on h->rn/h->rlen:
 * hgs__construct fills the slots by sequential feasible insertion and lists
 * the stops that did not fit in unserved (nc entries of room);
 * hgs__complete puts such stops at their least penalised places (a full,
 * perhaps infeasible plan); hgs__repair drops stops until every route is
 * feasible and puts back what fits, listing the rest; hgs__export_plan
 * writes the slots and the unserved stops as a solution (OP_OK, OP_ENOMEM).
 */
int hgs__construct(hgs *h, int *unserved, int *n_unserved);
/* Clarke and Wright savings with the savings scaled by random factors 1 +- noise/2 (CVRP with one
 * vehicle type only): 1 with the plan in the slots, 0 when it does not apply or fit. */
int hgs__savings(hgs *h, double noise);
void hgs__complete(hgs *h, const int *unserved, int n_unserved);
int hgs__repair(hgs *h, int *unserved, int *n_unserved);
int hgs__export_plan(const hgs *h, const int *unserved, int n_unserved, route_solution *out);

/*
 * Route minimisation (hgs_fleet.c) on a feasible plan in the slots: route
 * slot `gone` is dissolved and its stops are put back by an ejection pool
 * with absence counters and squeezes, for at most max_steps steps (a stop
 * taken from the pool; a squeeze counts as SQUEEZE_STEPS) and
 * until until_s (seconds since the start; 0: no such bound). Returns 1 when
 * every stop is back (the slots then hold a feasible plan with one route
 * less), 0 when not (the slots hold a partial plan: reload them), or
 * OP_ENOMEM.
 */
int hgs__fleet_remove(hgs *h, int gone, long max_steps, double until_s);

/*
 * Route minimisation's choice for stop c, out of every route (route_of[c]
 * -1), on a feasible plan in the slots and h->absence (exposed for
 * tests/unit/test_hgs_eject.c): with eject 0 its cheapest feasible place,
 * else the ejection of the fewest stops among those of the least summed
 * absence that makes a place feasible. Returns the route (the plan is not
 * changed), -1 when there is none, or OP_ENOMEM; fills the ejected
 * positions q (room for 2), their count, the gap after which c goes in the
 * route without them, and the summed absence.
 */
int hgs__fleet_place(hgs *h, int c, int eject, int *q, int *nq, int *gap, long *absent);

/*
 * Distance within the fleet (hgs_fleet.c), on a feasible plan with every
 * stop in the slots: max_rounds rounds of ruin and recreate that keep the
 * plan feasible and never use an empty slot, accepted by simulated
 * annealing on the distance; ends sooner when the time is up. The slots
 * then hold the shortest plan seen (feasible, never longer, perhaps with
 * fewer routes). OP_OK or OP_ENOMEM (the slots unchanged).
 */
int hgs__fleet_polish(hgs *h, long max_rounds);

/*
 * The search on an instance whose every stop can be served on its own
 * (hgs_par.c: one island, or several in threads); hgs_solve (hgs_plan.c)
 * sets aside the others first. Same contract as hgs_solve.
 */
int hgs__search(const route_instance *inst, const hgs_params *params, route_solution *best,
                hgs_stats *stats, char *err, size_t err_len);

/* What an island of a parallel search shares with the others. */
typedef struct hgs_island {
    hgs_exchange *exchange;
    int index;
    const double *D; /* the distance matrix (hgs__matrix), read only */
    double start_s;  /* when the whole search started, on params->now_s */
} hgs_island;

/*
 * One genetic search (hgs.c): alone when island is NULL, else as one island
 * of several. Same contract as hgs_solve.
 */
int hgs__island(const route_instance *inst, const hgs_params *params, const hgs_island *island,
                route_solution *best, hgs_stats *stats, char *err, size_t err_len);

/*
 * The exchange (hgs_par.c). hgs__exchange_offer, with the lock held, keeps
 * a feasible plan (giant tour and K + 1 route starts) when it beats the
 * best so far by the search's objective, and returns 1 then.
 * hgs__exchange_take copies the best into giant/rstart when it is newer
 * than version seen and found by another island than `island`, and returns
 * its version, else 0 (it takes the lock itself).
 */
void hgs__exchange_lock(hgs_exchange *x);
void hgs__exchange_unlock(hgs_exchange *x);
int hgs__exchange_offer(hgs_exchange *x, int island, const int *giant, const int *rstart, int K,
                        int n_routes, double cost);
long hgs__exchange_take(hgs_exchange *x, int island, long seen, int *giant, int *rstart, int K);

/* The distance matrix of inst (n x n, the caller frees it), or NULL when out of memory. */
double *hgs__matrix(const route_instance *inst);

/*
 * Allocates and fills the solver's arrays for inst (hgs_setup.c). OP_OK or
 * OP_ENOMEM; either way hgs__free_arrays releases them.
 */
int hgs__setup(hgs *h, const route_instance *inst, const hgs_params *params);

/*
 * Split of a giant tour (tour[0..nc), customer numbers) without time windows
 * for slot 0's vehicle type: h->pot[j] is the least cost of serving its first
 * j customers, h->from[j] where the last of those routes starts (hgs_split.c).
 */
void hgs__split_linear(hgs *h, const int *tour);
void hgs__free_arrays(hgs *h);
/* Puts a checkpoint's routes into s, in slots of matching vehicle types. OP_EINVAL, OP_ENOMEM. */
int hgs__load_start(hgs *h, indiv *s, const route_solution *start, char *err, size_t err_len);

#endif
