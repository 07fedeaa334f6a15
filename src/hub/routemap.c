/*
 * routemap: a route job's plan as numbers a picture is drawn from (the web
 * console's map of a route job's result): the instance's coordinates, read
 * from the job's one input with the solver's own parsers, and the routes of
 * its solution.json output as node indices into them (0 is the depot).
 * Only the result view asks for it, so its cost (parsing the instance) is paid
 * by whoever opens a route job's result, never by the loop's other work.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "hub/hub_int.h"
#include "route/route.h"
#include "route/routeio.h"

#include <stdlib.h>
#include <string.h>

/* Inputs and outputs travel base64 in JSON; neither is ever above the job limits' 4 MiB. */
#define ROUTEMAP_MAX_BYTES (4u * 1024 * 1024)

/* The decoded bytes of item's data_b64 as a NUL-terminated string (malloc'd), or NULL. */
static char *decoded_text(const cJSON *item)
{
    const char *b64 = jsonx_str(item, "data_b64");
    uint8_t *raw = NULL;
    size_t len = 0;
    if (!b64 || util_b64_decode(b64, ROUTEMAP_MAX_BYTES, &raw, &len) != OP_OK) return NULL;
    char *text = realloc(raw, len + 1);
    if (!text) {
        free(raw);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

/* The solution.json output of the result that counted (the applied one), decoded. */
static char *applied_solution(const cJSON *results)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, results)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "applied"))) continue;
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(r, "outputs"))
        {
            const char *name = jsonx_str(o, "name");
            if (name && strcmp(name, "solution.json") == 0) return decoded_text(o);
        }
    }
    return NULL;
}

/* The instance from the job's spec (its one input). OP_OK, or an error: no map. */
static int job_instance(hub *h, int64_t job_id, route_instance *inst)
{
    char kind[16], err[256];
    char *spec_text = NULL;
    if (hubdb_job_spec(h->db, job_id, kind, &spec_text) != OP_OK) return OP_ENOTFOUND;
    cJSON *spec = strcmp(kind, "route") == 0 ? cJSON_Parse(spec_text) : NULL;
    free(spec_text);
    const cJSON *input =
        spec ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "inputs"), 0) : NULL;
    char *text = input ? decoded_text(input) : NULL;
    const char *name = input ? jsonx_str(input, "name") : NULL;
    int rc =
        text ? routeio_parse_any(text, name ? name : "instance", inst, err, sizeof err) : OP_EINVAL;
    free(text);
    cJSON_Delete(spec);
    return rc;
}

/*
 * {"cost", "points": [[x, y], ...], "ids": [...], "routes": [{"vehicle", "nodes", "distance"}]}.
 * Distances and their sum (cost) are computed here over the instance: a
 * solution file's own figures are the site's word, the map shows the plan.
 */
static cJSON *map_json(const route_instance *inst, const route_solution *sol)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *points = cJSON_AddArrayToObject(m, "points");
    cJSON *ids = inst->ids ? cJSON_AddArrayToObject(m, "ids") : NULL;
    cJSON *routes = cJSON_AddArrayToObject(m, "routes");
    if (!m || !points || !routes) goto fail;
    for (int i = 0; i < inst->n; i++) {
        const double xy[2] = {inst->x[i], inst->y[i]};
        cJSON *p = cJSON_CreateDoubleArray(xy, 2);
        if (!p) goto fail;
        cJSON_AddItemToArray(points, p);
        if (ids) cJSON_AddItemToArray(ids, cJSON_CreateString(inst->ids[i] ? inst->ids[i] : ""));
    }
    double cost = 0;
    for (int r = 0; r < sol->n_routes; r++) {
        int first = sol->start[r], count = sol->start[r + 1] - first;
        cJSON *o = cJSON_CreateObject();
        cJSON *nodes = o ? cJSON_CreateIntArray(sol->nodes + first, count) : NULL;
        if (!nodes) {
            cJSON_Delete(o);
            goto fail;
        }
        double distance = 0;
        for (int k = 0, prev = 0; k <= count; k++) {
            int node = k < count ? sol->nodes[first + k] : 0;
            distance += route_distance(inst, prev, node);
            prev = node;
        }
        cJSON_AddStringToObject(o, "vehicle", inst->types[sol->type[r]].name);
        cJSON_AddItemToObject(o, "nodes", nodes);
        cJSON_AddNumberToObject(o, "distance", distance);
        cJSON_AddItemToArray(routes, o);
        cost += distance;
    }
    cJSON_AddNumberToObject(m, "cost", cost);
    return m;
fail:
    cJSON_Delete(m);
    return NULL;
}

/*
 * Adds "route_map" to a route job's result view (data as hubdb_job_view
 * with outputs made it). Nothing is added for other kinds, for a job without
 * a solution yet, or for an instance given only as a travel-time matrix (no
 * coordinates to draw); a damaged input or output is skipped the same way:
 * the map is a picture, never a reason to refuse the result. OP_OK or
 * OP_ENOMEM.
 */
int hub__route_map(hub *h, int64_t job_id, cJSON *data)
{
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(data, "job");
    const char *kind = jsonx_str(job, "kind");
    if (!kind || strcmp(kind, "route") != 0) return OP_OK;
    char *solution = applied_solution(cJSON_GetObjectItemCaseSensitive(data, "results"));
    if (!solution) return OP_OK;
    route_instance inst;
    route_solution sol;
    memset(&inst, 0, sizeof inst);
    memset(&sol, 0, sizeof sol);
    char err[256];
    int rc = OP_OK;
    if (job_instance(h, job_id, &inst) == OP_OK && !inst.matrix &&
        routeio_solution_from_json(&inst, solution, &sol, err, sizeof err) == OP_OK) {
        cJSON *m = map_json(&inst, &sol);
        if (m)
            cJSON_AddItemToObject(data, "route_map", m);
        else
            rc = OP_ENOMEM;
    }
    route_solution_clear(&sol);
    route_instance_clear(&inst);
    free(solution);
    return rc;
}
