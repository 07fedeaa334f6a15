/*
 * metrics: the site agent's optional /metrics listener (metrics_listen =
 * ADDR:PORT), in the Prometheus text format, for a Prometheus next to the
 * site: its power (envelope, draw, headroom), its jobs, the messages it
 * dropped and its memory. Only GET /metrics is answered; it runs in the
 * agent's loop (polled each iteration, never blocking) and reads memory only.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "io/http.h"
#include "site/site_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITE_METRICS_MAX_BYTES (64 * 1024)

/* The exposition into buf; its length, or 0 when it did not fit. */
static size_t metrics_text(site *s, char *buf, size_t cap)
{
    const char *source = NULL;
    double envelope = site__current_envelope(s, os_now_ms(), &source), draw = 0;
    site__over_envelope(s, envelope, &draw);
    size_t n = 0;
    int w =
        snprintf(buf, cap,
                 "# HELP outpost_site_power_watts The site's power: envelope, draw and "
                 "headroom.\n# TYPE outpost_site_power_watts gauge\n"
                 "outpost_site_power_watts{site=\"%s\",kind=\"envelope\"} %g\n"
                 "outpost_site_power_watts{site=\"%s\",kind=\"draw\"} %g\n"
                 "outpost_site_power_watts{site=\"%s\",kind=\"headroom\"} %g\n"
                 "# HELP outpost_site_jobs_running Jobs running on the site now.\n"
                 "# TYPE outpost_site_jobs_running gauge\noutpost_site_jobs_running %d\n"
                 "# HELP outpost_site_jobs_run_total Jobs the site ran since it started.\n"
                 "# TYPE outpost_site_jobs_run_total counter\noutpost_site_jobs_run_total "
                 "%llu\n"
                 "# HELP outpost_site_inside_envelope 1 when the draw was within the "
                 "envelope at the last check.\n# TYPE outpost_site_inside_envelope gauge\n"
                 "outpost_site_inside_envelope %d\n",
                 s->identity.id, envelope, s->identity.id, draw, s->identity.id, envelope - draw,
                 s->n_jobs, (unsigned long long)s->jobs_run, s->inside_envelope);
    if (w < 0 || (size_t)w >= cap) return 0;
    n = (size_t)w;
    const struct {
        const char *reason;
        uint64_t count;
    } rejected[] = {{"unsigned", s->msg.unsigned_msgs}, {"unknown_sender", s->msg.unknown_sender},
                    {"forged", s->msg.forged},          {"malformed", s->msg.malformed},
                    {"expired", s->msg.expired},        {"replayed", s->msg.replayed},
                    {"oversize", s->msg.oversize},      {"throttled", s->msg.throttled},
                    {"unsealed", s->msg.unsealed},      {"unopenable", s->msg.unopenable}};
    w = snprintf(buf + n, cap - n,
                 "# HELP outpost_messages_rejected_total Messages the site dropped, by the "
                 "reason.\n# TYPE outpost_messages_rejected_total counter\n");
    for (size_t i = 0; w >= 0 && (size_t)w < cap - n && i < sizeof rejected / sizeof *rejected;
         i++) {
        n += (size_t)w;
        w = snprintf(buf + n, cap - n, "outpost_messages_rejected_total{reason=\"%s\"} %llu\n",
                     rejected[i].reason, (unsigned long long)rejected[i].count);
    }
    if (w < 0 || (size_t)w >= cap - n) return 0;
    n += (size_t)w;
    if (s->bus) {
        w = snprintf(buf + n, cap - n,
                     "# HELP outpost_site_broker_connected 1 when the site's link is up, by the"
                     " broker it is on.\n# TYPE outpost_site_broker_connected gauge\n"
                     "outpost_site_broker_connected{broker=\"%s\"} %d\n"
                     "# HELP outpost_site_broker_moves_total Moves to another broker of the "
                     "list.\n# TYPE outpost_site_broker_moves_total counter\n"
                     "outpost_site_broker_moves_total %llu\n",
                     bus_broker_name(s->bus), bus_connected(s->bus),
                     (unsigned long long)bus_moves(s->bus));
        if (w < 0 || (size_t)w >= cap - n) return 0;
        n += (size_t)w;
    }
    long long pages_total = 0, pages_resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm && fscanf(statm, "%lld %lld", &pages_total, &pages_resident) == 2) {
        w = snprintf(buf + n, cap - n,
                     "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                     "# TYPE process_resident_memory_bytes gauge\n"
                     "process_resident_memory_bytes %lld\n",
                     pages_resident * (long long)sysconf(_SC_PAGESIZE));
        if (w > 0 && (size_t)w < cap - n) n += (size_t)w;
    }
    if (statm) fclose(statm);
    return n;
}

static void on_request(void *ctx, http_req *r)
{
    site *s = ctx;
    if (strcmp(http_path(r), "/metrics") != 0) {
        static const char body[] = "{\"error\": \"only /metrics here\", \"code\": \"not_found\"}";
        http_respond(r, 404, "application/json", body, sizeof body - 1, NULL);
        return;
    }
    if (strcmp(http_method(r), "GET") != 0 && strcmp(http_method(r), "HEAD") != 0) {
        static const char body[] = "{\"error\": \"GET only\", \"code\": \"method_not_allowed\"}";
        static const char *const allow[] = {"Allow", "GET, HEAD", NULL};
        http_respond(r, 405, "application/json", body, sizeof body - 1, allow);
        return;
    }
    char *buf = malloc(SITE_METRICS_MAX_BYTES);
    size_t n = buf ? metrics_text(s, buf, SITE_METRICS_MAX_BYTES) : 0;
    if (n)
        http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, n, NULL);
    else
        http_respond(r, 500, "text/plain", "metrics unavailable\n", 20, NULL);
    free(buf);
}

void site__metrics_open(site *s)
{
    if (!s->metrics_listen[0]) return;
    char err[200] = "";
    http_config hc = {.listen = s->metrics_listen, .max_connections = 8, .timeout_s = 10};
    if (http_start(&hc, on_request, NULL, s, &s->metrics_http, err, sizeof err) != OP_OK) {
        log_error("site", "metrics: %s (the site runs without /metrics)", err);
        return;
    }
    log_info("site", "metrics on http://%s/metrics (port %d)", s->metrics_listen,
             http_port(s->metrics_http));
}

void site__metrics_poll(site *s)
{
    if (s->metrics_http) http_run(s->metrics_http);
}

void site__metrics_close(site *s)
{
    http_stop(s->metrics_http);
    s->metrics_http = NULL;
}
