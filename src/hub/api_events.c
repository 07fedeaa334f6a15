/*
 * api_events: what the hub tells event streams (GET /v1/events) and keeps
 * for the power chart.
 *
 * Job steps are noted as hub__job_event records them, inside the loop's
 * transaction, and only counted and sent once it commits (a rolled-back
 * step never happened). Site changes are found by comparing each site with
 * what was last sent, once a second. The power history samples, every
 * power_history_step_s, the watts sites offer (their envelope above idle)
 * and the watts their running jobs use, per class, in a bounded ring.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "hub/api_int.h"
#include "hub/hub_db_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hub__api_step_names[API_STEP_COUNT] = {
    "submitted", "placed", "started", "succeeded", "failed", "cancelled", "requeued"};
/* the state each step leaves its job in */
static const char *const step_states[API_STEP_COUNT] = {
    "queued", "placed", "running", "succeeded", "failed", "cancelled", "queued"};

void hub__api_job_step(hub *h, int64_t job_id, const char *event, const char *site)
{
    if (!h->api || !event) return;
    int step = -1;
    for (int i = 0; i < API_STEP_COUNT && step < 0; i++)
        if (strcmp(hub__api_step_names[i], event) == 0) step = i;
    if (step < 0) return;
    hub_api *a = h->api;
    a->tx_jobs[step]++;
    if (a->n_steps >= API_MAX_STEPS) {
        a->steps_unsent++;
        return;
    }
    a->steps[a->n_steps].job = job_id;
    a->steps[a->n_steps].step = step;
    snprintf(a->steps[a->n_steps].site, sizeof a->steps[a->n_steps].site, "%s",
             site && step != API_STEP_REQUEUED ? site : "");
    a->n_steps++;
}

static int streams_open(const hub_api *a)
{
    http_stats st;
    http_get_stats(a->http, &st);
    return st.streams_open > 0;
}

/* One server-sent event: "event: NAME\ndata: JSON\n\n" to every stream. */
static void send_event(hub_api *a, const char *name, const cJSON *data)
{
    char *json = cJSON_PrintUnformatted(data);
    if (!json) return;
    size_t len = strlen(json) + strlen(name) + 32;
    char *text = malloc(len);
    if (text) {
        int n = snprintf(text, len, "event: %s\ndata: %s\n\n", name, json);
        if (n > 0) http_broadcast(a->http, text, (size_t)n);
    }
    free(text);
    free(json);
}

/* One step of a job as an event: the state it led to, the job's kind, the site. */
static void send_step(hub *h, int64_t job_id, int step, const char *site, hubdb_job_brief *brief,
                      int64_t *brief_of)
{
    if (*brief_of != job_id) {
        if (hubdb_job_brief_get(h->db, job_id, brief) != OP_OK) return;
        *brief_of = job_id;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    jsonx_add_int(o, "id", job_id);
    cJSON_AddStringToObject(o, "state", step_states[step]);
    cJSON_AddStringToObject(o, "kind", brief->kind);
    if (site[0])
        cJSON_AddStringToObject(o, "site", site);
    else
        cJSON_AddNullToObject(o, "site");
    send_event(h->api, "job", o);
    cJSON_Delete(o);
}

void hub__api_steps_committed(hub *h)
{
    hub_api *a = h->api;
    for (int i = 0; i < API_STEP_COUNT; i++)
        a->jobs_total[i] += a->tx_jobs[i];
    memset(a->tx_jobs, 0, sizeof a->tx_jobs);
    int streaming = a->http && streams_open(a);
    hubdb_job_brief brief;
    int64_t brief_of = 0;
    for (size_t i = 0; i < a->n_steps; i++) {
        int64_t job = a->steps[i].job;
        if (a->steps[i].step == API_STEP_PLACED) {
            hubdb_job_brief b;
            if (hubdb_job_brief_get(h->db, job, &b) == OP_OK && b.placed_at_ms >= b.submitted_at_ms)
                hub__api_observe_placement(h,
                                           (double)(b.placed_at_ms - b.submitted_at_ms) / 1000.0);
        }
        if (streaming) send_step(h, job, a->steps[i].step, a->steps[i].site, &brief, &brief_of);
    }
    a->n_steps = 0;
}

/* ---------- sites ---------- */

static double site_draw_watts(const hub_site *s)
{
    return s->idle_watts + s->reserved_cores * s->watts_per_core;
}

/* Sites whose state, draw or headroom changed since last sent, as events. */
static void send_site_changes(hub *h)
{
    hub_api *a = h->api;
    if (a->n_seen < h->n_sites) {
        hub__api_site_seen *grown = realloc(a->seen, h->n_sites * sizeof *grown);
        if (!grown) return;
        memset(grown + a->n_seen, 0, (h->n_sites - a->n_seen) * sizeof *grown);
        a->seen = grown;
        a->n_seen = h->n_sites;
    }
    for (size_t i = 0; i < h->n_sites; i++) {
        const hub_site *s = &h->sites[i];
        hub__api_site_seen *seen = &a->seen[i];
        const char *status = hub__site_status(s);
        double draw = site_draw_watts(s), headroom = s->power_budget_watts - draw;
        if (strcmp(seen->id, s->id) == 0 && strcmp(seen->status, status) == 0 &&
            fabs(seen->draw_watts - draw) < 0.5 && fabs(seen->headroom_watts - headroom) < 0.5)
            continue;
        snprintf(seen->id, sizeof seen->id, "%s", s->id);
        snprintf(seen->status, sizeof seen->status, "%s", status);
        seen->draw_watts = draw;
        seen->headroom_watts = headroom;
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        cJSON_AddStringToObject(o, "id", s->id);
        cJSON_AddStringToObject(o, "state", status);
        cJSON_AddStringToObject(o, "class", jobspec_class_name(s->class_bit));
        cJSON_AddNumberToObject(o, "draw_w", draw);
        cJSON_AddNumberToObject(o, "headroom_w", headroom);
        send_event(a, "site", o);
        cJSON_Delete(o);
    }
}

static void send_stats(hub *h)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) return;
    cJSON_AddStringToObject(req, "cmd", "stats");
    cJSON *resp = hub__op_dispatch(h, req, h->identity.id);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    if (data) send_event(h->api, "stats", data);
    cJSON_Delete(resp);
    cJSON_Delete(req);
}

/* ---------- the power history ---------- */

static int class_index(unsigned class_bit)
{
    return class_bit == CLASS_POD ? 0 : class_bit == CLASS_CAR ? 1 : 2;
}

static void sample_power(hub *h)
{
    double offered[3] = {0}, used[3] = {0};
    for (size_t i = 0; i < h->n_sites; i++) {
        const hub_site *s = &h->sites[i];
        if (!s->alive) continue;
        int k = class_index(s->class_bit);
        double spare = s->power_budget_watts - s->idle_watts;
        offered[k] += spare > 0 ? spare : 0;
        used[k] += s->reserved_cores * s->watts_per_core;
    }
    int64_t t = os_now_ms() / 1000;
    for (int k = 0; k < 3; k++) {
        hub__power_ring *ring = &h->api->power[k];
        size_t at = (ring->start + ring->count) % API_POWER_SAMPLES;
        if (ring->count == API_POWER_SAMPLES)
            ring->start = (ring->start + 1) % API_POWER_SAMPLES;
        else
            ring->count++;
        ring->t_s[at] = t;
        ring->offered_watts[at] = (float)offered[k];
        ring->used_watts[at] = (float)used[k];
    }
}

void hub__api_stream_opened(hub *h)
{
    for (size_t i = 0; i < h->api->n_seen; i++)
        h->api->seen[i].id[0] = 0;
    h->api->next_sites_ms = h->api->next_stats_ms = 0;
}

void hub__api_tick(hub *h, int64_t now_mono_ms)
{
    hub_api *a = h->api;
    if (!a) return;
    if (now_mono_ms >= a->next_power_ms) {
        sample_power(h);
        a->next_power_ms = now_mono_ms + a->power_step_s * 1000;
    }
    if (!a->http || !streams_open(a)) return;
    if (now_mono_ms >= a->next_sites_ms) {
        send_site_changes(h);
        a->next_sites_ms = now_mono_ms + 1000;
    }
    if (now_mono_ms >= a->next_stats_ms) {
        send_stats(h);
        a->next_stats_ms = now_mono_ms + 5000;
    }
    if (now_mono_ms >= a->next_ping_ms) {
        static const char ping[] = ": ping\n\n";
        http_broadcast(a->http, ping, sizeof ping - 1);
        a->next_ping_ms = now_mono_ms + 15000;
    }
}

/* power_history {hours}: {"step_s", "classes": {"pod": {"t", "offered_w", "used_w"}, ...}}. */
int hub__op_power_history(hub *h, op_call *c)
{
    int64_t hours = 24;
    if (cJSON_HasObjectItem(c->req, "hours") &&
        jsonx_int(c->req, "hours", 1, 24, &hours) != OP_OK) {
        snprintf(c->err, c->err_len, "'hours' must be from 1 to 24");
        return OP_EINVAL;
    }
    jsonx_add_int(c->data, "step_s", h->api ? h->api->power_step_s : 0);
    cJSON *classes = cJSON_AddObjectToObject(c->data, "classes");
    static const unsigned bits[3] = {CLASS_POD, CLASS_CAR, CLASS_DC};
    int64_t since = os_now_ms() / 1000 - hours * 3600;
    for (int k = 0; classes && k < 3; k++) {
        cJSON *o = cJSON_AddObjectToObject(classes, jobspec_class_name(bits[k]));
        cJSON *t = cJSON_AddArrayToObject(o, "t");
        cJSON *offered = cJSON_AddArrayToObject(o, "offered_w");
        cJSON *used = cJSON_AddArrayToObject(o, "used_w");
        const hub__power_ring *ring = h->api ? &h->api->power[k] : NULL;
        for (size_t i = 0; ring && used && i < ring->count; i++) {
            size_t at = (ring->start + i) % API_POWER_SAMPLES;
            if (ring->t_s[at] < since) continue;
            cJSON_AddItemToArray(t, cJSON_CreateNumber((double)ring->t_s[at]));
            cJSON_AddItemToArray(offered, cJSON_CreateNumber(ring->offered_watts[at]));
            cJSON_AddItemToArray(used, cJSON_CreateNumber(ring->used_watts[at]));
        }
    }
    return OP_OK;
}
