/*
 * api_metrics: the hub's figures in the Prometheus text exposition format
 * (version 0.0.4) for GET /metrics. Names follow Prometheus' conventions:
 * outpost_ prefix, base units in the name (_seconds, _watts, _bytes),
 * counters end in _total. Each family has its HELP and TYPE lines.
 */
#include "base/err.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "hub/api_int.h"
#include "hub/hub_db_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_MAX_BYTES (8 * 1024 * 1024)

static const double placement_le[API_PLACEMENT_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                           2.5,  5,    10,  30,   60,  300};

void hub__api_observe_placement(hub *h, double seconds)
{
    if (!h->api) return;
    for (int i = 0; i < API_PLACEMENT_BUCKETS; i++)
        if (seconds <= placement_le[i]) h->api->placement_buckets[i]++;
    h->api->placement_count++;
    h->api->placement_sum_s += seconds;
}

void hub__api_count_status(hub *h, int status)
{
    if (!h->api) return;
    for (int i = 0; i < API_MAX_CODES; i++) {
        if (h->api->codes[i].status == status || h->api->codes[i].status == 0) {
            h->api->codes[i].status = status;
            h->api->codes[i].count++;
            return;
        }
    }
}

/* A bounded text buffer; a write past its bound marks it failed. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf;

__attribute__((format(printf, 2, 3))) static void put(text_buf *b, const char *fmt, ...)
{
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *grown = cap <= METRICS_MAX_BYTES ? realloc(b->data, cap) : NULL;
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
}

static void family(text_buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void jobs_metrics(hub *h, text_buf *b)
{
    family(b, "outpost_jobs_total", "counter",
           "Job steps committed since the hub started, by the state the job reached.");
    for (int i = 0; i < API_STEP_COUNT; i++)
        put(b, "outpost_jobs_total{state=\"%s\"} %llu\n", hub__api_step_names[i],
            (unsigned long long)h->api->jobs_total[i]);
    cJSON *counts = cJSON_CreateObject();
    if (counts && hubdb_jobs_counts(h->db, counts) == OP_OK) {
        family(b, "outpost_jobs", "gauge", "Jobs in the hub's store, by state.");
        for (const cJSON *c = counts->child; c; c = c->next)
            if (cJSON_IsNumber(c))
                put(b, "outpost_jobs{state=\"%s\"} %.0f\n", c->string, c->valuedouble);
    } else {
        b->failed = 1;
    }
    cJSON_Delete(counts);
    family(b, "outpost_placement_seconds", "histogram",
           "Time from a job's submission to its placement on a site.");
    for (int i = 0; i < API_PLACEMENT_BUCKETS; i++)
        put(b, "outpost_placement_seconds_bucket{le=\"%g\"} %llu\n", placement_le[i],
            (unsigned long long)h->api->placement_buckets[i]);
    put(b, "outpost_placement_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)h->api->placement_count);
    put(b, "outpost_placement_seconds_sum %.6f\n", h->api->placement_sum_s);
    put(b, "outpost_placement_seconds_count %llu\n", (unsigned long long)h->api->placement_count);
    family(b, "outpost_results_total", "counter", "Results from sites, by what became of them.");
    put(b, "outpost_results_total{outcome=\"applied\"} %llu\n",
        (unsigned long long)h->counted.results_applied);
    put(b, "outpost_results_total{outcome=\"duplicate\"} %llu\n",
        (unsigned long long)h->counted.results_duplicate);
    put(b, "outpost_results_total{outcome=\"stale\"} %llu\n",
        (unsigned long long)h->counted.results_stale);
}

static void site_metrics(hub *h, text_buf *b)
{
    static const unsigned bits[3] = {CLASS_POD, CLASS_CAR, CLASS_DC};
    static const char *const states[4] = {"alive", "presumed", "lost", "left"};
    family(b, "outpost_sites", "gauge", "Enrolled sites, by class and state.");
    for (int k = 0; k < 3; k++)
        for (int st = 0; st < 4; st++) {
            int n = 0;
            for (size_t i = 0; i < h->n_sites; i++)
                n += h->sites[i].class_bit == bits[k] &&
                     strcmp(hub__site_status(&h->sites[i]), states[st]) == 0;
            put(b, "outpost_sites{class=\"%s\",state=\"%s\"} %d\n", jobspec_class_name(bits[k]),
                states[st], n);
        }
    family(b, "outpost_site_power_watts", "gauge",
           "A site's power: its envelope, its draw (idle and running jobs) and the headroom "
           "left.");
    for (size_t i = 0; i < h->n_sites; i++) {
        const hub_site *s = &h->sites[i];
        double draw = s->idle_watts + s->reserved_cores * s->watts_per_core;
        put(b, "outpost_site_power_watts{site=\"%s\",kind=\"envelope\"} %g\n", s->id,
            s->power_budget_watts);
        put(b, "outpost_site_power_watts{site=\"%s\",kind=\"draw\"} %g\n", s->id, draw);
        put(b, "outpost_site_power_watts{site=\"%s\",kind=\"headroom\"} %g\n", s->id,
            s->power_budget_watts - draw);
    }
}

static void message_metrics(hub *h, text_buf *b)
{
    cJSON *m = cJSON_CreateObject();
    if (!m) {
        b->failed = 1;
        return;
    }
    msg_stats_to_json(&h->msg, m);
    family(b, "outpost_messages_accepted_total", "counter",
           "Signed messages the hub accepted from sites and operators.");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(m, "accepted");
    put(b, "outpost_messages_accepted_total %.0f\n", cJSON_IsNumber(acc) ? acc->valuedouble : 0);
    family(b, "outpost_messages_rejected_total", "counter",
           "Messages the hub dropped, by the reason.");
    for (const cJSON *c = m->child; c; c = c->next)
        if (cJSON_IsNumber(c) && strcmp(c->string, "accepted") != 0)
            put(b, "outpost_messages_rejected_total{reason=\"%s\"} %.0f\n", c->string,
                c->valuedouble);
    cJSON_Delete(m);
}

/* The audit log's size in bytes, read again at most every 30 s (a sum over its entries). */
static int64_t audit_bytes(hub *h)
{
    int64_t now = os_mono_ms();
    if (h->api->audit_bytes_mono_ms && now - h->api->audit_bytes_mono_ms < 30000)
        return h->api->audit_bytes;
    int64_t bytes = 0;
    if (hubdb_audit_bytes(h->db, &bytes) == OP_OK) {
        h->api->audit_bytes = bytes;
        h->api->audit_bytes_mono_ms = now;
    }
    return h->api->audit_bytes;
}

static void hub_metrics(hub *h, text_buf *b)
{
    family(b, "outpost_audit_entries", "gauge", "Entries in the hub's audit log.");
    put(b, "outpost_audit_entries %llu\n",
        (unsigned long long)(h->audit ? auditlog_size(h->audit) : 0));
    family(b, "outpost_audit_log_bytes", "gauge", "Bytes of the audit log's entries.");
    put(b, "outpost_audit_log_bytes %lld\n", (long long)(h->audit ? audit_bytes(h) : 0));
    if (h->bus) {
        family(b, "outpost_hub_broker_connected", "gauge",
               "1 when the hub's connection is up, by connection and the broker it is on.");
        uint64_t moves = 0;
        for (int i = 0; i < h->n_links; i++) {
            const hub_link *l = &h->links[i];
            char suffix[16] = "";
            if (i > 0) snprintf(suffix, sizeof suffix, "-%d", i); /* broker_mode all */
            put(b, "outpost_hub_broker_connected{connection=\"main%s\",broker=\"%s\"} %d\n", suffix,
                bus_broker_name(l->main), bus_connected(l->main));
            put(b, "outpost_hub_broker_connected{connection=\"beats%s\",broker=\"%s\"} %d\n",
                suffix, bus_broker_name(l->beats), bus_connected(l->beats));
            moves += bus_moves(l->main) + bus_moves(l->beats);
        }
        family(b, "outpost_hub_broker_moves_total", "counter",
               "Moves of the hub's connections to another broker of the list.");
        put(b, "outpost_hub_broker_moves_total %llu\n", (unsigned long long)moves);
    }
    family(b, "outpost_store_commits_total", "counter", "Loop transactions committed.");
    put(b, "outpost_store_commits_total %llu\n", (unsigned long long)h->commits);
    family(b, "outpost_http_requests_total", "counter", "HTTP answers given, by status code.");
    for (int i = 0; i < API_MAX_CODES && h->api->codes[i].status; i++)
        put(b, "outpost_http_requests_total{code=\"%d\"} %llu\n", h->api->codes[i].status,
            (unsigned long long)h->api->codes[i].count);
    http_stats st;
    http_get_stats(h->api->http, &st);
    family(b, "outpost_http_event_streams", "gauge", "Event streams open.");
    put(b, "outpost_http_event_streams %llu\n", (unsigned long long)st.streams_open);
    family(b, "outpost_http_event_streams_dropped_total", "counter",
           "Event streams closed because their client read too slowly.");
    put(b, "outpost_http_event_streams_dropped_total %llu\n",
        (unsigned long long)st.streams_dropped);
    long long pages_total = 0, pages_resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm && fscanf(statm, "%lld %lld", &pages_total, &pages_resident) == 2) {
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        put(b, "process_resident_memory_bytes %lld\n",
            pages_resident * (long long)sysconf(_SC_PAGESIZE));
    }
    if (statm) fclose(statm);
}

char *hub__api_metrics_text(hub *h, size_t *len)
{
    if (!h->api) return NULL;
    text_buf b = {0};
    jobs_metrics(h, &b);
    site_metrics(h, &b);
    message_metrics(h, &b);
    hub_metrics(h, &b);
    if (b.failed || !b.data) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
