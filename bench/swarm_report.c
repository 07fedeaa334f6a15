/*
 * swarm_report: the swarm's options and its JSON report lines.
 */
#include "swarm.h"

#include "base/os.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- reporting ---------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p50 and p99 of the latencies since the last report (from *from on), in ms; -1 when none. */
static void percentiles(swarm *sw, size_t *from, int64_t *p50, int64_t *p99, int64_t *max)
{
    pthread_mutex_lock(&sw->lock);
    size_t n = sw->n_latency - *from;
    *p50 = *p99 = *max = -1;
    if (n > 0) {
        int64_t *part = sw->latency_ms + *from;
        qsort(part, n, sizeof *part, cmp_i64);
        *p50 = part[n / 2];
        *p99 = part[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
        *max = part[n - 1];
    }
    *from = sw->n_latency;
    pthread_mutex_unlock(&sw->lock);
}

void swarm__report(swarm *sw, size_t *from, int final)
{
    int connected = 0, enrolled = 0;
    for (int i = 0; i < sw->o.sites; i++) {
        connected += sw->sites[i].connected;
        enrolled += sw->sites[i].enrolled;
    }
    int64_t p50, p99, max;
    size_t all = 0;
    percentiles(sw, final ? &all : from, &p50, &p99, &max);
    const counters *n = &sw->n;
    printf("{\"t_s\":%.1f,\"final\":%d,\"sites\":%d,\"connected\":%d,\"enrolled\":%d,"
           "\"connects\":%llu,\"disconnects\":%llu,\"refused\":%llu,\"hellos\":%llu,"
           "\"beats\":%llu,\"offered\":%llu,\"refused_jobs\":%llu,\"results\":%llu,"
           "\"acks\":%llu,\"dropped\":%llu,\"publish_errors\":%llu,\"churned\":%llu,"
           "\"cut\":%llu,\"keepalive_drops\":%llu,\"submitted\":%llu,\"submit_errors\":%llu,"
           "\"rekeys\":%llu,"
           "\"latency_p50_ms\":%lld,"
           "\"latency_p99_ms\":%lld,\"latency_max_ms\":%lld,\"power\":\"%s\"}\n",
           (double)(os_mono_ms() - sw->start_ms) / 1000.0, final, sw->o.sites, connected, enrolled,
           (unsigned long long)n->connects, (unsigned long long)n->disconnects,
           (unsigned long long)n->refused, (unsigned long long)n->hellos,
           (unsigned long long)n->beats, (unsigned long long)n->offers_jobs,
           (unsigned long long)n->refused_jobs, (unsigned long long)n->results,
           (unsigned long long)n->acks, (unsigned long long)n->dropped,
           (unsigned long long)n->publish_errors, (unsigned long long)n->churned,
           (unsigned long long)n->cut, (unsigned long long)n->keepalive_drops,
           (unsigned long long)n->submitted, (unsigned long long)n->submit_errors,
           (unsigned long long)n->rekeys, (long long)p50, (long long)p99, (long long)max,
           sw->power_source);
    fflush(stdout);
}

/* One option's value into its field: 'i' int, 'd' double, 's' string, 'f' flag. */
typedef struct swarm_option {
    const char *name;
    char kind;
    size_t offset;
} swarm_option;

#define OPT(name, kind, field)                                                                     \
    {                                                                                              \
        name, kind, offsetof(swarm_opts, field)                                                    \
    }
static const swarm_option options[] = {
    OPT("hub-dir", 's', hub_dir),
    OPT("sites", 'i', sites),
    OPT("prefix", 's', prefix),
    OPT("first", 'i', first),
    OPT("class", 's', cls),
    OPT("heartbeat-ms", 'i', heartbeat_ms),
    OPT("duration-s", 'i', duration_s),
    OPT("jobs-per-s", 'd', jobs_per_s),
    OPT("churn-per-min", 'd', churn_per_min),
    OPT("cut-per-min", 'd', cut_per_min),
    OPT("power", 's', power_dir),
    OPT("connect-per-s", 'i', connect_per_s),
    OPT("report-ms", 'i', report_ms),
    OPT("forge", 'f', forge),
    OPT("broker-port", 'i', broker_port),
    OPT("full-beats", 'f', full_beats),
    OPT("beat-sig", 'f', beat_sig),
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static int usage(void)
{
    fprintf(stderr,
            "usage: outpost-swarm --hub-dir DIR [--sites N] [--prefix P] [--first K] [--class "
            "pod|car|dc] [--heartbeat-ms MS] [--duration-s S] [--jobs-per-s R] "
            "[--churn-per-min C] [--cut-per-min X] [--power DIR|none] [--connect-per-s N] "
            "[--report-ms MS] [--forge] [--broker-port P] [--full-beats] [--beat-sig]\n");
    return -1;
}

int swarm__parse_args(int argc, char **argv, swarm_opts *o)
{
    struct option longopts[N_OPTIONS + 1];
    memset(longopts, 0, sizeof longopts);
    for (size_t i = 0; i < N_OPTIONS; i++)
        longopts[i] = (struct option){options[i].name, options[i].kind != 'f', NULL, (int)i};
    *o = (swarm_opts){.prefix = "swarm-",
                      .cls = "pod",
                      .power_dir = "../shared/data/power",
                      .sites = 100,
                      .heartbeat_ms = 10000,
                      .connect_per_s = 1000,
                      .report_ms = 5000};
    int k;
    while ((k = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (k < 0 || (size_t)k >= N_OPTIONS) return usage();
        char *field = (char *)o + options[k].offset;
        char *end = NULL;
        if (options[k].kind == 'i') *(int *)(void *)field = (int)strtol(optarg, &end, 10);
        if (options[k].kind == 'd') *(double *)(void *)field = strtod(optarg, &end);
        if (options[k].kind == 's') *(const char **)(void *)field = optarg;
        if (options[k].kind == 'f') *(int *)(void *)field = 1;
        if (end && *end) return usage();
    }
    if (!o->hub_dir || o->sites < 1 || o->sites > 1000000 || o->heartbeat_ms < 100 ||
        o->connect_per_s < 1 || o->report_ms < 100 || o->jobs_per_s < 0 || o->churn_per_min < 0 ||
        o->cut_per_min < 0)
        return usage();
    return 0;
}
