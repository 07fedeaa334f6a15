#include "route/route.h"

#include "base/err.h"
#include "base/util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX_TEXT (16 * 1024 * 1024)

typedef struct lines {
    const char *p;
    int no;
    char buf[512];
} lines;

/* Next line without its CR/LF; 0 at the end. Lines longer than the buffer are an error. */
static int next_line(lines *l, int *too_long)
{
    *too_long = 0;
    if (!*l->p) return 0;
    const char *end = strchr(l->p, '\n');
    size_t len = end ? (size_t)(end - l->p) : strlen(l->p);
    l->no++;
    if (len >= sizeof l->buf) {
        *too_long = 1;
        len = sizeof l->buf - 1;
    }
    memcpy(l->buf, l->p, len);
    l->buf[len] = '\0';
    while (len > 0 && (l->buf[len - 1] == '\r' || isspace((unsigned char)l->buf[len - 1])))
        l->buf[--len] = '\0';
    l->p = end ? end + 1 : l->p + strlen(l->p);
    return 1;
}

static int fail(char *err, size_t err_len, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t err_len, const char *name, int line, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, err_len, "%s:%d: %s", name, line, what);
    return OP_EINVAL;
}

int route_instance_alloc(route_instance *inst, int n)
{
    inst->n = n;
    inst->x = calloc((size_t)n, sizeof *inst->x);
    inst->y = calloc((size_t)n, sizeof *inst->y);
    inst->demand = calloc((size_t)n, sizeof *inst->demand);
    inst->ready = calloc((size_t)n, sizeof *inst->ready);
    inst->due = calloc((size_t)n, sizeof *inst->due);
    inst->service = calloc((size_t)n, sizeof *inst->service);
    return inst->x && inst->y && inst->demand && inst->ready && inst->due && inst->service
               ? OP_OK
               : OP_ENOMEM;
}

void route_instance_clear(route_instance *inst)
{
    free(inst->x);
    free(inst->y);
    free(inst->demand);
    free(inst->ready);
    free(inst->due);
    free(inst->service);
    free(inst->matrix);
    if (inst->ids)
        for (int i = 0; i < inst->n; i++)
            free(inst->ids[i]);
    free(inst->ids);
    memset(inst, 0, sizeof *inst);
}

/* Splits a line into at most max numbers; returns how many, or -1 if a word is not a number. */
static int numbers(const char *line, double *out, int max)
{
    int n = 0;
    const char *p = line;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p) break;
        if (n == max) return -1;
        char *end = NULL;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || (*end && !isspace((unsigned char)*end))) return -1;
        out[n++] = v;
        p = end;
    }
    return n;
}

static int integral(double v)
{
    return floor(v) == v && fabs(v) < 1e15;
}

/* Where a CVRPLIB reader is: the dimension, the current section, what it has seen. */
typedef struct cvrplib {
    const char *name;
    route_instance *inst;
    char *err;
    size_t err_len;
    int line, dim;
    int section; /* 1 coords, 2 demands, 3 depot, 0 none */
    int coords, demands;
    char *seen; /* ids already given: coordinates [0, dim), demands [dim, 2 dim) */
} cvrplib;

/* "DIMENSION: N", once and first: allocates the instance. */
static int cvrplib_dimension(cvrplib *c, const char *value)
{
    int64_t v;
    if (c->dim || util_parse_i64(value, 2, ROUTE_MAX_NODES, &v) != OP_OK)
        return fail(c->err, c->err_len, c->name, c->line, "DIMENSION must be 2 to %d, once",
                    ROUTE_MAX_NODES);
    c->dim = (int)v;
    int rc = route_instance_alloc(c->inst, c->dim);
    if (rc != OP_OK) return rc;
    c->seen = calloc((size_t)c->dim * 2, 1);
    return c->seen ? OP_OK : OP_ENOMEM;
}

/* A "KEY : value" line (or a section header), s without leading blanks. */
static int cvrplib_keyword(cvrplib *c, const char *s)
{
    char key[64] = "";
    const char *colon = strchr(s, ':');
    size_t klen = colon ? (size_t)(colon - s) : strlen(s);
    while (klen > 0 && isspace((unsigned char)s[klen - 1]))
        klen--;
    if (klen >= sizeof key) klen = sizeof key - 1;
    memcpy(key, s, klen);
    const char *value = colon ? colon + 1 : "";
    while (isspace((unsigned char)*value))
        value++;
    c->section = 0;
    if (!strcmp(key, "NODE_COORD_SECTION") || !strcmp(key, "DEMAND_SECTION")) {
        if (!c->dim) return fail(c->err, c->err_len, c->name, c->line, "DIMENSION must come first");
        c->section = key[0] == 'N' ? 1 : 2;
    } else if (!strcmp(key, "DEPOT_SECTION")) {
        c->section = 3;
    } else if (!strcmp(key, "NAME")) {
        snprintf(c->inst->name, sizeof c->inst->name, "%.63s", value);
    } else if (!strcmp(key, "TYPE")) {
        if (strcmp(value, "CVRP") != 0)
            return fail(c->err, c->err_len, c->name, c->line, "TYPE %s is not supported (CVRP)",
                        value);
    } else if (!strcmp(key, "EDGE_WEIGHT_TYPE")) {
        if (strcmp(value, "EUC_2D") != 0)
            return fail(c->err, c->err_len, c->name, c->line,
                        "EDGE_WEIGHT_TYPE %s is not supported (EUC_2D)", value);
    } else if (!strcmp(key, "DIMENSION")) {
        return cvrplib_dimension(c, value);
    } else if (!strcmp(key, "CAPACITY")) {
        int64_t v;
        if (util_parse_i64(value, 1, INT64_MAX / 4, &v) != OP_OK)
            return fail(c->err, c->err_len, c->name, c->line, "CAPACITY must be > 0");
        c->inst->capacity = v;
    } else if (strcmp(key, "COMMENT") != 0) {
        return fail(c->err, c->err_len, c->name, c->line, "unknown keyword '%s'", key);
    }
    return OP_OK;
}

/* A line of numbers inside a section: "id x y", "id demand" or the depot's "1" / "-1". */
static int cvrplib_data(cvrplib *c, const char *s)
{
    double v[4];
    int k = numbers(s, v, 4), dim = c->dim;
    if (c->section == 1) {
        if (k != 3 || !integral(v[0]) || v[0] < 1 || v[0] > dim || c->seen[(int)v[0] - 1])
            return fail(c->err, c->err_len, c->name, c->line,
                        "expected 'id x y' with a new id 1..%d", dim);
        int id = (int)v[0] - 1;
        c->seen[id] = 1;
        c->inst->x[id] = v[1];
        c->inst->y[id] = v[2];
        c->coords++;
    } else if (c->section == 2) {
        if (k != 2 || !integral(v[0]) || v[0] < 1 || v[0] > dim || c->seen[dim + (int)v[0] - 1] ||
            !integral(v[1]) || v[1] < 0)
            return fail(c->err, c->err_len, c->name, c->line,
                        "expected 'id demand' with a new id 1..%d", dim);
        c->seen[dim + (int)v[0] - 1] = 1;
        c->inst->demand[(int)v[0] - 1] = (int64_t)v[1];
        c->demands++;
    } else if (c->section == 3) {
        if (k != 1 || (v[0] != 1 && v[0] != -1))
            return fail(c->err, c->err_len, c->name, c->line, "only node 1 may be the depot");
    } else {
        return fail(c->err, c->err_len, c->name, c->line, "data outside a section");
    }
    return OP_OK;
}

/* The whole file, line by line up to EOF; then every node must have coordinates and a demand. */
static int cvrplib_lines(cvrplib *c, const char *text)
{
    lines l = {text, 0, {0}};
    int too_long, rc = OP_OK;
    while (rc == OP_OK && next_line(&l, &too_long)) {
        c->line = l.no;
        if (too_long) return fail(c->err, c->err_len, c->name, l.no, "line too long");
        char *s = l.buf;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s) continue;
        if (strcmp(s, "EOF") == 0) break;
        rc = isalpha((unsigned char)*s) ? cvrplib_keyword(c, s) : cvrplib_data(c, s);
    }
    if (rc != OP_OK) return rc;
    c->line = l.no;
    if (!c->dim) return fail(c->err, c->err_len, c->name, l.no, "no DIMENSION");
    if (!c->inst->capacity) return fail(c->err, c->err_len, c->name, l.no, "no CAPACITY");
    if (c->coords != c->dim || c->demands != c->dim)
        return fail(c->err, c->err_len, c->name, l.no, "%d coordinates and %d demands for %d nodes",
                    c->coords, c->demands, c->dim);
    if (c->inst->demand[0] != 0)
        return fail(c->err, c->err_len, c->name, l.no, "the depot has a demand");
    c->inst->round_nint = 1;
    return OP_OK;
}

static int parse_cvrplib(const char *text, const char *name, route_instance *inst, char *err,
                         size_t err_len)
{
    cvrplib c = {.name = name, .inst = inst, .err = err, .err_len = err_len};
    int rc = cvrplib_lines(&c, text);
    free(c.seen);
    return rc;
}

static int parse_solomon(const char *text, const char *name, route_instance *inst, char *err,
                         size_t err_len)
{
    lines l = {text, 0, {0}};
    int too_long, state = 0, rows = 0, cap_rows = 0;
    double(*row)[7] = NULL;
    snprintf(inst->name, sizeof inst->name, "%.63s", "");
    while (next_line(&l, &too_long)) {
        if (too_long) return free(row), fail(err, err_len, name, l.no, "line too long");
        char *s = l.buf;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s) continue;
        if (state == 0) {
            snprintf(inst->name, sizeof inst->name, "%.63s", s);
            state = 1;
        } else if (state == 1 && !strcmp(s, "VEHICLE")) {
            state = 2;
        } else if (state == 2 && !strncmp(s, "NUMBER", 6)) {
            state = 3;
        } else if (state == 3) {
            double v[3];
            if (numbers(s, v, 3) != 2 || !integral(v[0]) || v[0] < 1 || v[0] > 100000 ||
                !integral(v[1]) || v[1] < 1)
                return fail(err, err_len, name, l.no, "expected 'vehicles capacity'");
            inst->vehicles = (int)v[0];
            inst->capacity = (int64_t)v[1];
            state = 4;
        } else if (state == 4 && !strcmp(s, "CUSTOMER")) {
            state = 5;
        } else if (state == 5 && !strncmp(s, "CUST", 4)) {
            state = 6;
        } else if (state == 6) {
            double v[8];
            int k = numbers(s, v, 8);
            if (k != 7 || !integral(v[0]) || v[0] != rows || v[3] < 0 || !integral(v[3]) ||
                v[4] < 0 || v[5] < v[4] || v[6] < 0)
                return free(row),
                       fail(err, err_len, name, l.no,
                            "expected 'no x y demand ready due service' for customer %d", rows);
            if (rows == cap_rows) {
                cap_rows = cap_rows ? cap_rows * 2 : 128;
                if (cap_rows > ROUTE_MAX_NODES) cap_rows = ROUTE_MAX_NODES;
                if (rows == cap_rows)
                    return free(row),
                           fail(err, err_len, name, l.no, "more than %d nodes", ROUTE_MAX_NODES);
                double(*grown)[7] = realloc(row, (size_t)cap_rows * sizeof *row);
                if (!grown) return free(row), OP_ENOMEM;
                row = grown;
            }
            memcpy(row[rows++], v, sizeof row[0]);
        } else {
            return free(row), fail(err, err_len, name, l.no, "unexpected '%.40s'", s);
        }
    }
    if (state != 6 || rows < 2)
        return free(row), fail(err, err_len, name, l.no, "incomplete file (depot and customers)");
    int rc = route_instance_alloc(inst, rows);
    for (int i = 0; rc == OP_OK && i < rows; i++) {
        inst->x[i] = row[i][1];
        inst->y[i] = row[i][2];
        inst->demand[i] = (int64_t)row[i][3];
        inst->ready[i] = row[i][4];
        inst->due[i] = row[i][5];
        inst->service[i] = row[i][6];
    }
    free(row);
    if (rc == OP_OK && inst->demand[0] != 0)
        return fail(err, err_len, name, 0, "the depot has a demand");
    inst->has_windows = 1;
    return rc;
}

/* The single vehicle type of the benchmark formats, from capacity, vehicles and the depot window.
 */
static void default_type(route_instance *inst)
{
    route_vehicle *v = &inst->types[0];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "vehicle");
    v->capacity = inst->capacity;
    v->count = inst->vehicles;
    v->shift_start = inst->has_windows ? inst->ready[0] : 0;
    v->shift_end = inst->has_windows ? inst->due[0] : ROUTE_NO_LIMIT;
    inst->n_types = 1;
}

int route_parse(const char *text, const char *name, route_instance *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (strlen(text) > ROUTE_MAX_TEXT) {
        snprintf(err, err_len, "%s: larger than %d bytes", name, ROUTE_MAX_TEXT);
        return OP_ETOOBIG;
    }
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    int rc = strncmp(p, "NAME", 4) == 0 ? parse_cvrplib(text, name, out, err, err_len)
                                        : parse_solomon(text, name, out, err, err_len);
    if (rc != OP_OK)
        route_instance_clear(out);
    else
        default_type(out);
    return rc;
}

double route_distance(const route_instance *inst, int i, int j)
{
    double d;
    if (inst->matrix) {
        d = inst->matrix[(size_t)i * (size_t)inst->n + (size_t)j];
    } else {
        d = hypot(inst->x[i] - inst->x[j], inst->y[i] - inst->y[j]);
        if (inst->round_nint) d = floor(d + 0.5);
    }
    if (inst->arc_factor && i != j) d *= inst->arc_factor(inst->arc_factor_ctx, i, j);
    return d;
}

int route_solution_alloc(route_solution *sol, int n_routes, int n_nodes)
{
    memset(sol, 0, sizeof *sol);
    sol->start = calloc((size_t)n_routes + 1, sizeof *sol->start);
    sol->nodes = calloc((size_t)n_nodes + 1, sizeof *sol->nodes);
    sol->type = calloc((size_t)n_routes + 1, sizeof *sol->type);
    if (!sol->start || !sol->nodes || !sol->type) {
        route_solution_clear(sol);
        return OP_ENOMEM;
    }
    sol->n_routes = n_routes;
    return OP_OK;
}

void route_solution_clear(route_solution *sol)
{
    free(sol->unassigned);
    free(sol->reason);
    free(sol->start);
    free(sol->nodes);
    free(sol->type);
    memset(sol, 0, sizeof *sol);
}

int route_stop_problem(const route_instance *inst, int c)
{
    int carried = 0;
    for (int t = 0; t < inst->n_types; t++) {
        const route_vehicle *v = &inst->types[t];
        if (inst->demand[c] > v->capacity) continue;
        carried = 1;
        if (!inst->has_windows) return 0;
        double arrive = v->shift_start + route_distance(inst, 0, c);
        if (arrive < inst->ready[c]) arrive = inst->ready[c];
        double back = arrive + inst->service[c] + route_distance(inst, c, 0);
        if (arrive <= inst->due[c] + 1e-9 && back <= v->shift_end + 1e-9) return 0;
    }
    return carried ? ROUTE_UNSERVED_WINDOW : ROUTE_UNSERVED_CAPACITY;
}

const char *route_unserved_str(int reason)
{
    switch (reason) {
    case ROUTE_UNSERVED_CAPACITY:
        return "demand over every vehicle's capacity";
    case ROUTE_UNSERVED_WINDOW:
        return "no vehicle can reach it inside its window and be back by the end of its shift";
    case ROUTE_UNSERVED_FLEET:
        return "no room for it in the fleet's routes";
    }
    return "unknown";
}

int route_solution_set_unassigned(route_solution *sol, int n)
{
    free(sol->unassigned);
    free(sol->reason);
    sol->n_unassigned = 0;
    sol->unassigned = calloc((size_t)n + 1, sizeof *sol->unassigned);
    sol->reason = calloc((size_t)n + 1, sizeof *sol->reason);
    if (!sol->unassigned || !sol->reason) {
        free(sol->unassigned);
        free(sol->reason);
        sol->unassigned = sol->reason = NULL;
        return OP_ENOMEM;
    }
    sol->n_unassigned = n;
    return OP_OK;
}

/*
 * Leaving the depot later saves waiting on the way as long as no window is
 * missed: with t_i the earliest service starts and W_i the waiting up to and
 * at stop i, a departure delayed by d <= min_i(W_i + due_i - t_i) and
 * d <= W (all the waiting) shortens the route by d. That minimal duration is
 * what the hourly cost is charged on (the search's segment durations agree).
 */
double route_vehicle_cost(const route_instance *inst, int t, const int *nodes, int len)
{
    const route_vehicle *v = &inst->types[t];
    if (len == 0) return 0;
    double cost = v->fixed_cost;
    if (v->cost_per_hour <= 0) return cost;
    double time = v->shift_start, waited = 0, slack = ROUTE_NO_LIMIT;
    int prev = 0;
    for (int k = 0; k <= len; k++) {
        int c = k < len ? nodes[k] : 0;
        time += (prev ? inst->service[prev] : 0) + route_distance(inst, prev, c);
        if (inst->has_windows && c) {
            if (time < inst->ready[c]) {
                waited += inst->ready[c] - time;
                time = inst->ready[c];
            }
            if (waited + inst->due[c] - time < slack) slack = waited + inst->due[c] - time;
        }
        prev = c;
    }
    if (inst->has_windows && waited + v->shift_end - time < slack)
        slack = waited + v->shift_end - time;
    double saved = slack < waited ? slack : waited;
    if (saved < 0) saved = 0;
    double per_hour = inst->time_units_per_hour > 0 ? inst->time_units_per_hour : 60;
    return cost + v->cost_per_hour * (time - v->shift_start - saved) / per_hour;
}

int route_precheck(const route_instance *inst, char *err, size_t err_len)
{
    int64_t max_capacity = 0, fleet_capacity = 0, total_demand = 0;
    int unlimited = 0;
    for (int t = 0; t < inst->n_types; t++) {
        const route_vehicle *v = &inst->types[t];
        if (v->capacity > max_capacity) max_capacity = v->capacity;
        if (v->count == 0)
            unlimited = 1;
        else
            fleet_capacity += v->capacity * v->count;
    }
    for (int c = 1; c < inst->n; c++) {
        total_demand += inst->demand[c];
        const char *id = inst->ids ? inst->ids[c] : NULL;
        char who[64];
        if (id)
            snprintf(who, sizeof who, "stop '%.40s'", id);
        else
            snprintf(who, sizeof who, "customer %d", c);
        int problem = route_stop_problem(inst, c);
        if (problem == ROUTE_UNSERVED_CAPACITY) {
            snprintf(err, err_len, "%s: demand %lld is more than any vehicle carries (%lld)", who,
                     (long long)inst->demand[c], (long long)max_capacity);
            return OP_EINVAL;
        }
        if (problem == ROUTE_UNSERVED_WINDOW) {
            snprintf(err, err_len,
                     "%s: no vehicle can reach it inside its window [%.2f, %.2f] and be back "
                     "by the end of its shift",
                     who, inst->ready[c], inst->due[c]);
            return OP_EINVAL;
        }
    }
    if (!unlimited && total_demand > fleet_capacity) {
        snprintf(err, err_len, "total demand %lld is more than the whole fleet carries (%lld)",
                 (long long)total_demand, (long long)fleet_capacity);
        return OP_EINVAL;
    }
    return OP_OK;
}

int route_check(const route_instance *inst, const int *const *routes, const int *lens, int n_routes,
                double *cost, char *err, size_t err_len)
{
    int total = 0;
    for (int r = 0; r < n_routes; r++) {
        if (lens[r] < 0 || lens[r] > inst->n) {
            snprintf(err, err_len, "route %d: bad length %d", r + 1, lens[r]);
            return OP_EINVAL;
        }
        total += lens[r];
    }
    route_solution sol;
    int rc = route_solution_alloc(&sol, n_routes, total);
    if (rc != OP_OK) return rc;
    for (int r = 0, k = 0; r < n_routes; r++) {
        sol.start[r] = k;
        for (int i = 0; i < lens[r]; i++)
            sol.nodes[k++] = routes[r][i];
        sol.start[r + 1] = k;
    }
    rc = route_check_solution(inst, &sol, err, err_len);
    if (rc == OP_OK) *cost = sol.cost;
    route_solution_clear(&sol);
    return rc;
}

/* Every customer served (visited[c] set) or listed as unassigned, exactly once in all. */
static int check_unassigned(const route_instance *inst, const route_solution *sol, char *visited,
                            char *err, size_t err_len)
{
    if (sol->n_unassigned < 0 || sol->n_unassigned >= inst->n) {
        snprintf(err, err_len, "%d unassigned customers of %d", sol->n_unassigned, inst->n - 1);
        return OP_EINVAL;
    }
    for (int u = 0; u < sol->n_unassigned; u++) {
        int c = sol->unassigned[u];
        if (c < 1 || c >= inst->n) {
            snprintf(err, err_len, "unassigned: %d is not a customer", c);
            return OP_EINVAL;
        }
        if (visited[c]++) {
            snprintf(err, err_len, "customer %d both served and unassigned, or listed twice", c);
            return OP_EINVAL;
        }
    }
    for (int c = 1; c < inst->n; c++)
        if (!visited[c]) {
            snprintf(err, err_len, "customer %d neither visited nor listed as unassigned", c);
            return OP_EINVAL;
        }
    return OP_OK;
}

int route_check_solution(const route_instance *inst, route_solution *sol, char *err, size_t err_len)
{
    int rc = OP_OK;
    char *visited = calloc((size_t)inst->n, 1);
    int used[ROUTE_MAX_TYPES] = {0};
    if (!visited) return OP_ENOMEM;
    double total = 0;
    for (int r = 0; rc == OP_OK && r < sol->n_routes; r++) {
        int t = sol->type[r];
        if (t < 0 || t >= inst->n_types) {
            snprintf(err, err_len, "route %d: no vehicle type %d", r + 1, t);
            rc = OP_EINVAL;
            break;
        }
        const route_vehicle *v = &inst->types[t];
        if (v->count && ++used[t] > v->count) {
            snprintf(err, err_len, "%d routes for %d vehicles of type '%s'", used[t], v->count,
                     v->name);
            rc = OP_EINVAL;
            break;
        }
        int64_t load = 0;
        double time = v->shift_start;
        int prev = 0, len = sol->start[r + 1] - sol->start[r];
        const int *route = sol->nodes + sol->start[r];
        for (int k = 0; rc == OP_OK && k <= len; k++) {
            int c = k < len ? route[k] : 0;
            if (k < len) {
                if (c < 1 || c >= inst->n) {
                    snprintf(err, err_len, "route %d: %d is not a customer", r + 1, c);
                    rc = OP_EINVAL;
                    break;
                }
                if (visited[c]++) {
                    snprintf(err, err_len, "customer %d visited twice", c);
                    rc = OP_EINVAL;
                    break;
                }
                load += inst->demand[c];
            }
            double d = route_distance(inst, prev, c);
            total += d;
            if (inst->has_windows) {
                time += (prev ? inst->service[prev] : 0) + d;
                if (c && time < inst->ready[c]) time = inst->ready[c];
                double due = c ? inst->due[c] : v->shift_end;
                if (time > due + 1e-6) {
                    snprintf(err, err_len, "route %d: %s %d reached at %.2f, after %.2f", r + 1,
                             c ? "customer" : "depot", c, time, due);
                    rc = OP_EINVAL;
                }
            }
            prev = c;
        }
        if (rc == OP_OK && load > v->capacity) {
            snprintf(err, err_len, "route %d: load %lld over capacity %lld", r + 1, (long long)load,
                     (long long)v->capacity);
            rc = OP_EINVAL;
        }
    }
    if (rc == OP_OK) rc = check_unassigned(inst, sol, visited, err, err_len);
    free(visited);
    if (rc != OP_OK) return rc;
    sol->distance = total;
    sol->cost = total;
    for (int r = 0; r < sol->n_routes; r++)
        sol->cost += route_vehicle_cost(inst, sol->type[r], sol->nodes + sol->start[r],
                                        sol->start[r + 1] - sol->start[r]);
    return OP_OK;
}
