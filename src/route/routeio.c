#include "route/routeio.h"

#include "base/err.h"
#include "base/jsonx.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTEIO_MAX_TEXT (64 * 1024 * 1024)
#define ROUTEIO_MAX_ID 63

static int fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return OP_EINVAL;
}

/* An optional finite number >= 0 field; *present says whether it was there. */
static int opt_time(const cJSON *o, const char *key, double *out, int *present)
{
    int rc = jsonx_num(o, key, out);
    if (rc == OP_ENOTFOUND) return OP_OK;
    if (rc != OP_OK || *out < 0 || *out > ROUTE_NO_LIMIT) return OP_EINVAL;
    *present = 1;
    return OP_OK;
}

/* An optional cost >= 0 (absent: 0). OP_OK or OP_EINVAL. */
static int opt_cost(const cJSON *o, const char *key, double *out)
{
    int rc = jsonx_num(o, key, out);
    if (rc == OP_ENOTFOUND) {
        *out = 0;
        return OP_OK;
    }
    return rc == OP_OK && *out >= 0 && *out <= 1e12 ? OP_OK : OP_EINVAL;
}

static int parse_vehicles(const cJSON *vs, route_instance *inst, int *windows, const char *name,
                          char *err, size_t err_len)
{
    if (!cJSON_IsArray(vs) || cJSON_GetArraySize(vs) < 1 ||
        cJSON_GetArraySize(vs) > ROUTE_MAX_TYPES)
        return fail(err, err_len, "%s: vehicles: must be a list of 1 to %d vehicle kinds", name,
                    ROUTE_MAX_TYPES);
    int t = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vs)
    {
        route_vehicle *rv = &inst->types[t];
        if (!cJSON_IsObject(v))
            return fail(err, err_len, "%s: vehicles[%d]: not an object", name, t);
        const char *vn = jsonx_str(v, "name");
        if (vn && strlen(vn) >= sizeof rv->name)
            return fail(err, err_len, "%s: vehicles[%d].name: longer than %zu", name, t,
                        sizeof rv->name - 1);
        snprintf(rv->name, sizeof rv->name, "%s", vn ? vn : "vehicle");
        for (int u = 0; u < t; u++)
            if (!strcmp(inst->types[u].name, rv->name))
                return fail(err, err_len, "%s: vehicles[%d].name: '%s' used twice", name, t,
                            rv->name);
        int64_t x;
        if (jsonx_int(v, "capacity", 1, INT64_MAX / 4, &x) != OP_OK)
            return fail(err, err_len, "%s: vehicles[%d].capacity: must be an integer >= 1", name,
                        t);
        rv->capacity = x;
        int rc = jsonx_int(v, "count", 0, 100000, &x);
        if (rc == OP_EINVAL)
            return fail(err, err_len, "%s: vehicles[%d].count: must be 0 (unlimited) to 100000",
                        name, t);
        rv->count = rc == OP_OK ? (int)x : 0;
        if (opt_cost(v, "fixed_cost", &rv->fixed_cost) != OP_OK ||
            opt_cost(v, "cost_per_hour", &rv->cost_per_hour) != OP_OK)
            return fail(err, err_len,
                        "%s: vehicles[%d]: fixed_cost and cost_per_hour must be numbers >= 0", name,
                        t);
        rv->shift_start = 0;
        rv->shift_end = ROUTE_NO_LIMIT;
        if (opt_time(v, "shift_start", &rv->shift_start, windows) != OP_OK ||
            opt_time(v, "shift_end", &rv->shift_end, windows) != OP_OK ||
            rv->shift_end < rv->shift_start)
            return fail(err, err_len,
                        "%s: vehicles[%d]: shift_start and shift_end must be times >= 0, start <= "
                        "end",
                        name, t);
        t++;
    }
    inst->n_types = t;
    inst->capacity = inst->types[0].capacity;
    inst->vehicles = inst->types[0].count;
    return OP_OK;
}

static int parse_matrix(const cJSON *m, route_instance *inst, const char *name, char *err,
                        size_t err_len)
{
    int n = inst->n;
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != n)
        return fail(err, err_len, "%s: matrix: must have %d rows (the depot, then each stop)", name,
                    n);
    inst->matrix = malloc((size_t)n * (size_t)n * sizeof(double));
    if (!inst->matrix) return OP_ENOMEM;
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, m)
    {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != n)
            return fail(err, err_len, "%s: matrix[%d]: must have %d numbers", name, i, n);
        int j = 0;
        const cJSON *cell;
        cJSON_ArrayForEach(cell, row)
        {
            if (!cJSON_IsNumber(cell) || !isfinite(cell->valuedouble) || cell->valuedouble < 0 ||
                cell->valuedouble > 1e9)
                return fail(err, err_len, "%s: matrix[%d][%d]: must be a number 0 to 1e9", name, i,
                            j);
            inst->matrix[(size_t)i * (size_t)n + (size_t)j] = i == j ? 0 : cell->valuedouble;
            j++;
        }
        i++;
    }
    return OP_OK;
}

static int parse_stop(const cJSON *s, route_instance *inst, int i, int *windows, int *coords,
                      const char *name, const char *where, char *err, size_t err_len)
{
    if (!cJSON_IsObject(s)) return fail(err, err_len, "%s: %s: not an object", name, where);
    double x = 0, y = 0;
    int rx = jsonx_num(s, "x", &x), ry = jsonx_num(s, "y", &y);
    if (rx == OP_EINVAL || ry == OP_EINVAL || (rx == OP_OK) != (ry == OP_OK) || fabs(x) > 1e9 ||
        fabs(y) > 1e9)
        return fail(err, err_len, "%s: %s: x and y must be numbers given together", name, where);
    if (rx == OP_OK) (*coords)++;
    inst->x[i] = x;
    inst->y[i] = y;
    if (i > 0) {
        int64_t d = 0;
        int rc = jsonx_int(s, "demand", 0, INT64_MAX / 4, &d);
        if (rc == OP_EINVAL)
            return fail(err, err_len, "%s: %s.demand: must be an integer >= 0", name, where);
        inst->demand[i] = d;
        const char *id = jsonx_str(s, "id");
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        if (cJSON_GetObjectItemCaseSensitive(s, "id") &&
            (!id || !*id || strlen(id) > ROUTEIO_MAX_ID))
            return fail(err, err_len, "%s: %s.id: must be a string of 1 to %d characters", name,
                        where, ROUTEIO_MAX_ID);
        inst->ids[i] = strdup(id ? id : num);
        if (!inst->ids[i]) return OP_ENOMEM;
        for (int j = 1; j < i; j++)
            if (!strcmp(inst->ids[j], inst->ids[i]))
                return fail(err, err_len, "%s: %s.id: '%s' used twice", name, where, inst->ids[i]);
    }
    inst->ready[i] = 0;
    inst->due[i] = ROUTE_NO_LIMIT;
    inst->service[i] = 0;
    if (opt_time(s, "ready", &inst->ready[i], windows) != OP_OK ||
        opt_time(s, "due", &inst->due[i], windows) != OP_OK ||
        opt_time(s, "service", &inst->service[i], windows) != OP_OK ||
        inst->due[i] < inst->ready[i])
        return fail(err, err_len, "%s: %s: ready, due and service must be times >= 0, ready <= due",
                    name, where);
    return OP_OK;
}

static int parse_json_body(const cJSON *root, const char *name, route_instance *inst, char *err,
                           size_t err_len)
{
    if (!cJSON_IsObject(root)) return fail(err, err_len, "%s: not a JSON object", name);
    const char *iname = jsonx_str(root, "name");
    snprintf(inst->name, sizeof inst->name, "%.63s", iname ? iname : name);
    const cJSON *stops = cJSON_GetObjectItemCaseSensitive(root, "stops");
    const cJSON *depot = cJSON_GetObjectItemCaseSensitive(root, "depot");
    if (!cJSON_IsArray(stops) || cJSON_GetArraySize(stops) < 1 ||
        cJSON_GetArraySize(stops) > ROUTEIO_MAX_STOPS)
        return fail(err, err_len, "%s: stops: must be a list of 1 to %d stops", name,
                    ROUTEIO_MAX_STOPS);
    if (!cJSON_IsObject(depot)) return fail(err, err_len, "%s: depot: missing (an object)", name);
    int n = cJSON_GetArraySize(stops) + 1;
    if (route_instance_alloc(inst, n) != OP_OK) return OP_ENOMEM;
    inst->ids = calloc((size_t)n, sizeof *inst->ids);
    if (!inst->ids) return OP_ENOMEM;
    inst->ids[0] = strdup("depot");
    if (!inst->ids[0]) return OP_ENOMEM;
    int windows = 0, coords = 0, rc;
    if ((rc = parse_stop(depot, inst, 0, &windows, &coords, name, "depot", err, err_len)) != OP_OK)
        return rc;
    if (cJSON_GetObjectItemCaseSensitive(depot, "demand"))
        return fail(err, err_len, "%s: depot.demand: the depot has no demand", name);
    int i = 1;
    const cJSON *s;
    cJSON_ArrayForEach(s, stops)
    {
        char where[32];
        snprintf(where, sizeof where, "stops[%d]", i - 1);
        if ((rc = parse_stop(s, inst, i, &windows, &coords, name, where, err, err_len)) != OP_OK)
            return rc;
        i++;
    }
    if ((rc = parse_vehicles(cJSON_GetObjectItemCaseSensitive(root, "vehicles"), inst, &windows,
                             name, err, err_len)) != OP_OK)
        return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "matrix");
    if (m) {
        if ((rc = parse_matrix(m, inst, name, err, err_len)) != OP_OK) return rc;
    } else if (coords != n) {
        return fail(err, err_len, "%s: without a matrix every stop and the depot need x and y",
                    name);
    }
    const char *distance = jsonx_str(root, "distance");
    if (cJSON_GetObjectItemCaseSensitive(root, "distance") &&
        (!distance || (strcmp(distance, "euclidean") && strcmp(distance, "euclidean-rounded"))))
        return fail(err, err_len, "%s: distance: 'euclidean' or 'euclidean-rounded'", name);
    inst->round_nint = distance && !strcmp(distance, "euclidean-rounded");
    const char *unit = jsonx_str(root, "time_unit");
    if (cJSON_GetObjectItemCaseSensitive(root, "time_unit") &&
        (!unit || (strcmp(unit, "minutes") && strcmp(unit, "seconds") && strcmp(unit, "hours"))))
        return fail(err, err_len, "%s: time_unit: 'minutes' (default), 'seconds' or 'hours'", name);
    inst->time_units_per_hour = !unit || unit[0] == 'm' ? 60 : unit[0] == 's' ? 3600 : 1;
    inst->has_windows = windows;
    /* the depot's due time bounds every shift */
    for (int t = 0; t < inst->n_types; t++)
        if (inst->types[t].shift_end > inst->due[0]) inst->types[t].shift_end = inst->due[0];
    if (!windows)
        for (int t = 0; t < inst->n_types; t++) {
            inst->types[t].shift_start = 0;
            inst->types[t].shift_end = ROUTE_NO_LIMIT;
        }
    return OP_OK;
}

int routeio_parse_any(const char *text, const char *name, route_instance *out, char *err,
                      size_t err_len)
{
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '{') return route_parse(text, name, out, err, err_len);
    memset(out, 0, sizeof *out);
    if (strlen(text) > ROUTEIO_MAX_TEXT) {
        snprintf(err, err_len, "%s: larger than %d bytes", name, ROUTEIO_MAX_TEXT);
        return OP_ETOOBIG;
    }
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        for (const char *q = text; at && q < at && *q; q++)
            line += *q == '\n';
        return fail(err, err_len, "%s:%d: not valid JSON", name, line);
    }
    int rc = parse_json_body(root, name, out, err, err_len);
    cJSON_Delete(root);
    if (rc == OP_ENOMEM) snprintf(err, err_len, "%s: out of memory", name);
    if (rc != OP_OK) route_instance_clear(out);
    return rc;
}

/* ---- solutions ---- */

static void stop_name(const route_instance *inst, int c, char *buf, size_t len)
{
    if (inst->ids)
        snprintf(buf, len, "%s", inst->ids[c]);
    else
        snprintf(buf, len, "%d", c);
}

/* "unassigned": [{"id": ..., "reason": ...}] (VROOM's way), always present. */
static void add_unassigned(const route_instance *inst, const route_solution *sol, cJSON *root)
{
    cJSON *list = cJSON_AddArrayToObject(root, "unassigned");
    for (int u = 0; list && u < sol->n_unassigned; u++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        cJSON_AddItemToArray(list, o);
        int c = sol->unassigned[u];
        if (inst->ids)
            cJSON_AddStringToObject(o, "id", inst->ids[c]);
        else
            cJSON_AddNumberToObject(o, "id", c);
        cJSON_AddStringToObject(o, "reason", route_unserved_str(sol->reason[u]));
    }
}

char *routeio_solution_to_json(const route_instance *inst, const route_solution *sol,
                               const hgs_stats *stats)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "instance", inst->name);
    cJSON_AddNumberToObject(root, "cost", sol->cost);
    cJSON_AddNumberToObject(root, "distance", sol->distance);
    cJSON_AddNumberToObject(root, "routes_used", sol->n_routes);
    cJSON_AddNumberToObject(root, "vehicles", sol->n_routes);
    cJSON_AddBoolToObject(root, "feasible", 1);
    add_unassigned(inst, sol, root);
    if (stats) {
        cJSON_AddNumberToObject(root, "iterations", (double)stats->iterations);
        cJSON_AddNumberToObject(root, "elapsed_s", stats->elapsed_s);
        cJSON_AddNumberToObject(root, "best_found_s", stats->best_found_s);
    }
    cJSON *routes = cJSON_AddArrayToObject(root, "routes");
    for (int r = 0; routes && r < sol->n_routes; r++) {
        cJSON *ro = cJSON_CreateObject();
        if (!ro) break;
        cJSON_AddItemToArray(routes, ro);
        const route_vehicle *v = &inst->types[sol->type[r]];
        cJSON_AddStringToObject(ro, "vehicle", v->name);
        cJSON *stops = cJSON_AddArrayToObject(ro, "stops");
        cJSON *arrivals = inst->has_windows ? cJSON_AddArrayToObject(ro, "arrival") : NULL;
        int64_t load = 0;
        double d = 0, t = v->shift_start;
        int prev = 0;
        for (int x = sol->start[r]; x <= sol->start[r + 1]; x++) {
            int c = x < sol->start[r + 1] ? sol->nodes[x] : 0;
            double leg = route_distance(inst, prev, c);
            d += leg;
            t += (prev ? inst->service[prev] : 0) + leg;
            if (c && t < inst->ready[c]) t = inst->ready[c];
            if (c) {
                char name[80];
                stop_name(inst, c, name, sizeof name);
                if (inst->ids)
                    cJSON_AddItemToArray(stops, cJSON_CreateString(name));
                else
                    cJSON_AddItemToArray(stops, cJSON_CreateNumber(c));
                if (arrivals)
                    cJSON_AddItemToArray(arrivals, cJSON_CreateNumber(round(t * 100) / 100));
                load += inst->demand[c];
            }
            prev = c;
        }
        jsonx_add_int(ro, "load", load);
        cJSON_AddNumberToObject(ro, "distance", d);
        if (inst->has_windows) cJSON_AddNumberToObject(ro, "back_at", round(t * 100) / 100);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int routeio_solution_from_json(const route_instance *inst, const char *text, route_solution *out,
                               char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(text);
    if (!root) return fail(err, err_len, "not valid JSON");
    int rc = OP_OK;
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(root, "routes");
    if (!cJSON_IsArray(routes) || cJSON_GetArraySize(routes) > inst->n) {
        rc = fail(err, err_len, "routes: must be a list of at most %d routes", inst->n);
        goto out;
    }
    int nr = cJSON_GetArraySize(routes);
    if ((rc = route_solution_alloc(out, nr, inst->n)) != OP_OK) goto out;
    int r = 0, x = 0;
    const cJSON *ro;
    cJSON_ArrayForEach(ro, routes)
    {
        const cJSON *stops = cJSON_GetObjectItemCaseSensitive(ro, "stops");
        if (!cJSON_IsArray(stops)) {
            rc = fail(err, err_len, "routes[%d].stops: missing", r);
            goto out;
        }
        const char *vn = jsonx_str(ro, "vehicle");
        out->type[r] = 0;
        if (vn) {
            int t = 0;
            while (t < inst->n_types && strcmp(inst->types[t].name, vn))
                t++;
            if (t == inst->n_types) {
                rc = fail(err, err_len, "routes[%d].vehicle: no vehicle kind '%.40s'", r, vn);
                goto out;
            }
            out->type[r] = t;
        }
        out->start[r] = x;
        const cJSON *s;
        int k = 0;
        cJSON_ArrayForEach(s, stops)
        {
            int c = -1;
            if (cJSON_IsNumber(s) && s->valuedouble >= 1 && s->valuedouble < inst->n &&
                floor(s->valuedouble) == s->valuedouble)
                c = (int)s->valuedouble;
            else if (cJSON_IsString(s) && inst->ids)
                for (int y = 1; y < inst->n && c < 0; y++)
                    if (!strcmp(inst->ids[y], s->valuestring)) c = y;
            if (c < 0 || x >= inst->n) {
                rc = fail(err, err_len, "routes[%d].stops[%d]: not a stop of this instance", r, k);
                goto out;
            }
            out->nodes[x++] = c;
            k++;
        }
        r++;
    }
    out->start[r] = x;
out:
    cJSON_Delete(root);
    if (rc != OP_OK) route_solution_clear(out);
    return rc;
}

char *routeio_solution_to_sol(const route_instance *inst, const route_solution *sol)
{
    size_t cap = 64 + (size_t)sol->start[sol->n_routes] * 12 + (size_t)sol->n_routes * 24;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t len = 0;
    for (int r = 0; r < sol->n_routes; r++) {
        len += (size_t)snprintf(buf + len, cap - len, "Route #%d:", r + 1);
        for (int x = sol->start[r]; x < sol->start[r + 1]; x++)
            len += (size_t)snprintf(buf + len, cap - len, " %d", sol->nodes[x]);
        len += (size_t)snprintf(buf + len, cap - len, "\n");
    }
    if (inst->round_nint)
        snprintf(buf + len, cap - len, "Cost %.0f\n", sol->cost);
    else
        snprintf(buf + len, cap - len, "Cost %.2f\n", sol->cost);
    return buf;
}

/* name with & < > " ' as entities, cut to fit out (which holds at least 1 byte). */
static void xml_escape(const char *name, char *out, size_t out_len)
{
    size_t len = 0;
    for (const char *p = name; *p; p++) {
        const char *ent = *p == '&'    ? "&amp;"
                          : *p == '<'  ? "&lt;"
                          : *p == '>'  ? "&gt;"
                          : *p == '"'  ? "&quot;"
                          : *p == '\'' ? "&#39;"
                                       : NULL;
        size_t n = ent ? strlen(ent) : 1;
        if (len + n >= out_len) break;
        memcpy(out + len, ent ? ent : p, n);
        len += n;
    }
    out[len] = '\0';
}

char *routeio_solution_to_svg(const route_instance *inst, const route_solution *sol)
{
    char name[6 * sizeof inst->name]; /* the instance's name, escaped: it is outside input */
    xml_escape(inst->name, name, sizeof name);
    double minx = inst->x[0], maxx = inst->x[0], miny = inst->y[0], maxy = inst->y[0];
    for (int i = 1; i < inst->n; i++) {
        minx = fmin(minx, inst->x[i]);
        maxx = fmax(maxx, inst->x[i]);
        miny = fmin(miny, inst->y[i]);
        maxy = fmax(maxy, inst->y[i]);
    }
    double span = fmax(fmax(maxx - minx, maxy - miny), 1e-9), size = 800, pad = 20;
    double scale = (size - 2 * pad) / span;
    size_t cap = 1024 + 2 * strlen(name) + (size_t)inst->n * 120 + (size_t)sol->n_routes * 160;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t len = 0;
#define SX(i) (pad + (inst->x[i] - minx) * scale)
#define SY(i) (size - pad - (inst->y[i] - miny) * scale)
    len += (size_t)snprintf(buf + len, cap - len,
                            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
                            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n"
                            "<title>%s: %d routes, cost %.2f</title>\n"
                            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                            size, size + 24, size, size + 24, name, sol->n_routes, sol->cost);
    for (int r = 0; r < sol->n_routes; r++) {
        double hue = fmod(r * 137.508, 360.0);
        len += (size_t)snprintf(buf + len, cap - len,
                                "<polyline fill=\"none\" stroke=\"hsl(%.0f,70%%,42%%)\" "
                                "stroke-width=\"1.5\" points=\"%.1f,%.1f",
                                hue, SX(0), SY(0));
        for (int x = sol->start[r]; x < sol->start[r + 1]; x++)
            len += (size_t)snprintf(buf + len, cap - len, " %.1f,%.1f", SX(sol->nodes[x]),
                                    SY(sol->nodes[x]));
        len += (size_t)snprintf(buf + len, cap - len, " %.1f,%.1f\"/>\n", SX(0), SY(0));
    }
    for (int i = 1; i < inst->n; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n", SX(i), SY(i));
    len +=
        (size_t)snprintf(buf + len, cap - len,
                         "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"red\"/>\n"
                         "<text x=\"%.0f\" y=\"%.0f\" font-family=\"sans-serif\" "
                         "font-size=\"14\">%s: %d routes, cost %.2f</text>\n</svg>\n",
                         SX(0) - 5, SY(0) - 5, pad, size + 16, name, sol->n_routes, sol->cost);
#undef SX
#undef SY
    return buf;
}

/* ---- travel-time factors ---- */

static int node_by_name(const route_instance *inst, const cJSON *v)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < inst->n &&
        floor(v->valuedouble) == v->valuedouble)
        return (int)v->valuedouble;
    if (cJSON_IsString(v) && inst->ids)
        for (int i = 0; i < inst->n; i++)
            if (!strcmp(inst->ids[i], v->valuestring)) return i;
    return -1;
}

int routeio_factors_parse(const route_instance *inst, const char *text, routeio_factors *out,
                          char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(text);
    if (!root) return fail(err, err_len, "not valid JSON");
    int rc = OP_OK;
    const cJSON *arcs = cJSON_GetObjectItemCaseSensitive(root, "arcs");
    if (!cJSON_IsArray(arcs)) {
        rc = fail(err, err_len, "arcs: missing (a list of [from, to, factor])");
        goto out;
    }
    out->n = inst->n;
    out->factor = malloc((size_t)inst->n * (size_t)inst->n * sizeof(float));
    if (!out->factor) {
        rc = OP_ENOMEM;
        goto out;
    }
    for (size_t x = 0; x < (size_t)inst->n * (size_t)inst->n; x++)
        out->factor[x] = 1.0f;
    int k = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, arcs)
    {
        const cJSON *f = cJSON_GetArrayItem(a, 2);
        int from = node_by_name(inst, cJSON_GetArrayItem(a, 0));
        int to = node_by_name(inst, cJSON_GetArrayItem(a, 1));
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3 || from < 0 || to < 0 ||
            !cJSON_IsNumber(f) || !(f->valuedouble > 0) || f->valuedouble > 100) {
            rc = fail(err, err_len,
                      "arcs[%d]: must be [from, to, factor] with known stops and "
                      "0 < factor <= 100",
                      k);
            goto out;
        }
        out->factor[(size_t)from * (size_t)inst->n + (size_t)to] = (float)f->valuedouble;
        k++;
    }
out:
    cJSON_Delete(root);
    if (rc != OP_OK) routeio_factors_clear(out);
    return rc;
}

static double factor_of(void *ctx, int from, int to)
{
    const routeio_factors *f = ctx;
    return f->factor[(size_t)from * (size_t)f->n + (size_t)to];
}

void routeio_factors_attach(route_instance *inst, routeio_factors *factors)
{
    if (!factors->factor) return;
    inst->arc_factor = factor_of;
    inst->arc_factor_ctx = factors;
}

void routeio_factors_clear(routeio_factors *factors)
{
    free(factors->factor);
    memset(factors, 0, sizeof *factors);
}
