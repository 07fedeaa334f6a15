/*
 * cli_print: how the CLI shows what the hub answers: times, texts,
 * paths, and the tables whose columns are as wide as their data (a site id
 * may be 63 characters; none is cut).
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli__print_json(FILE *out, const cJSON *data)
{
    char *text = cJSON_Print(data);
    if (text) fprintf(out, "%s\n", text);
    free(text);
}

const char *cli__fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) return "-";
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%H:%M:%S", &tm);
    return buf;
}

const char *cli__text(const cJSON *obj, const char *key, const char *fallback)
{
    const char *s = jsonx_str(obj, key);
    return s && *s ? s : fallback;
}

int64_t cli__count(const cJSON *obj, const char *key)
{
    int64_t n = 0;
    jsonx_int(obj, key, 0, INT64_MAX, &n);
    return n;
}

int cli__column_width(const cJSON *rows, const char *key, const char *fallback, const char *header,
                      int max)
{
    size_t width = strlen(header);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        size_t len = strlen(cli__text(row, key, fallback));
        if (len > width) width = len;
    }
    return width > (size_t)max ? max : (int)width;
}

int cli__path_join(char *buf, size_t len, const char *dir, const char *name)
{
    if (!name || !*name) return OP_EINVAL;
    size_t dir_len = strlen(dir);
    while (dir_len > 1 && dir[dir_len - 1] == '/')
        dir_len--;
    if (dir_len == 0) return util_fmt(buf, len, "%s", name) == OP_OK ? OP_OK : OP_ETOOBIG;
    const char *sep = dir[dir_len - 1] == '/' ? "" : "/";
    return util_fmt(buf, len, "%.*s%s%s", (int)dir_len, dir, sep, name) == OP_OK ? OP_OK
                                                                                 : OP_ETOOBIG;
}

/* A job's label: its name, else its kind (a route job submitted without --name). */
static const char *job_label(const cJSON *j)
{
    return cli__text(j, "name", cli__text(j, "kind", "-"));
}

void cli__print_jobs(FILE *out, const cJSON *data)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(data, "jobs"), *j;
    int name_w = 4, site_w = cli__column_width(jobs, "site", "", "SITE", 63);
    cJSON_ArrayForEach(j, jobs)
    {
        int len = (int)strlen(job_label(j));
        if (len > name_w) name_w = len > 63 ? 63 : len;
    }
    fprintf(out, "%-8s %-*s %-5s %-10s %-7s %-*s %s\n", "ID", name_w, "NAME", "KIND", "STATE",
            "ATTEMPT", site_w, "SITE", "REASON");
    cJSON_ArrayForEach(j, jobs)
    {
        fprintf(out, "%-8lld %-*.*s %-5s %-10s %-7lld %-*.*s %.60s\n",
                (long long)cli__count(j, "id"), name_w, name_w, job_label(j),
                cli__text(j, "kind", ""), cli__text(j, "state", ""),
                (long long)cli__count(j, "attempt"), site_w, site_w, cli__text(j, "site", ""),
                cli__text(j, "reason", ""));
    }
    const cJSON *cnt;
    fprintf(out, "totals:");
    cJSON_ArrayForEach(cnt, cJSON_GetObjectItemCaseSensitive(data, "counts"))
        fprintf(out, " %s=%lld", cnt->string, (long long)cnt->valuedouble);
    fprintf(out, "\n");
}

/*
 * The site's status: "quarantined" (no work until an operator clears it),
 * or "no-store" while an alive site says it cannot store (a full disk).
 */
static const char *site_status(const cJSON *s)
{
    const char *status = cli__text(s, "status", "");
    if (jsonx_str(s, "quarantined")) return "quarantined";
    if (strcmp(status, "alive") == 0 &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "store_failing")))
        return "no-store";
    return status;
}

/* Messages a site dropped (forged, replayed, unsigned ...), from its heartbeat. */
static int64_t site_rejected(const cJSON *s)
{
    int64_t rejected = 0;
    const cJSON *counter;
    cJSON_ArrayForEach(counter, cJSON_GetObjectItemCaseSensitive(s, "messages"))
    {
        if (strcmp(counter->string, "accepted") != 0 && cJSON_IsNumber(counter))
            rejected += (int64_t)counter->valuedouble;
    }
    return rejected;
}

/* A site's power columns: the forecast envelope's least over the next hour, and a stated
 * departure in minutes. */
static void site_power(const cJSON *s, int64_t now_ms, char next_s[24], char leaves_s[24])
{
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(s, "power");
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(pw, "forecast_watts");
    snprintf(next_s, 24, "-");
    snprintf(leaves_s, 24, "-");
    if (cJSON_GetArraySize(fc) > 2 && cJSON_IsNumber(cJSON_GetArrayItem(fc, 2)))
        snprintf(next_s, 24, "%.0f W", cJSON_GetArrayItem(fc, 2)->valuedouble);
    int64_t stay = 0;
    if (jsonx_int(pw, "stay_until_ms", 1, INT64_MAX, &stay) == OP_OK) {
        int64_t left_s = (stay - now_ms) / 1000;
        snprintf(leaves_s, 24, "%lldm", (long long)(left_s > 0 ? left_s / 60 : 0));
    }
}

/*
 * A line under a site the hub holds work back from or counts as less than
 * it claims: quarantined (and how to clear it), over-claiming, being probed.
 */
static void print_site_note(FILE *out, const cJSON *s)
{
    const char *quarantined = jsonx_str(s, "quarantined");
    const char *verdict = jsonx_str(cJSON_GetObjectItemCaseSensitive(s, "claims"), "verdict");
    const char *held = jsonx_str(s, "held");
    if (quarantined)
        fprintf(out, "  ^ quarantined: %s (`outpost sites clear %s` lets it take work again)\n",
                quarantined, cli__text(s, "id", "?"));
    else if (verdict && strncmp(verdict, "over-claims", 11) == 0)
        fprintf(out, "  ^ %s\n", verdict);
    else if (held)
        fprintf(out, "  ^ held: %s\n", held);
}

/* The widths of the columns that vary: 0 for OWNER or BROKER when the column is left out. */
typedef struct site_cols {
    int id_w, owner_w, broker_w;
} site_cols;

static void print_site_row(FILE *out, const cJSON *s, const site_cols *w, int64_t now_ms)
{
    int64_t cores = 0, free_cores = 0, mem = 0, free_mem = 0, age = -1;
    double headroom = 0;
    jsonx_int(s, "cores", 0, INT64_MAX, &cores);
    /* the cores placement counts on: fewer than claimed after an over-claim */
    jsonx_int(cJSON_GetObjectItemCaseSensitive(s, "claims"), "cores_counted", 0, INT64_MAX, &cores);
    jsonx_int(s, "free_cores", INT64_MIN, INT64_MAX, &free_cores);
    jsonx_int(s, "memory_mb", 0, INT64_MAX, &mem);
    jsonx_int(s, "free_memory_mb", INT64_MIN, INT64_MAX, &free_mem);
    jsonx_int(s, "heartbeat_age_ms", -1, INT64_MAX, &age);
    jsonx_num(s, "headroom_watts", &headroom);
    char cores_s[48], mem_s[48], age_s[32], next_s[24], leaves_s[24];
    snprintf(cores_s, sizeof cores_s, "%lld/%lld", (long long)free_cores, (long long)cores);
    snprintf(mem_s, sizeof mem_s, "%lld/%lld", (long long)free_mem, (long long)mem);
    if (age < 0)
        snprintf(age_s, sizeof age_s, "never");
    else
        snprintf(age_s, sizeof age_s, "%.1fs", (double)age / 1000.0);
    site_power(s, now_ms, next_s, leaves_s);
    /* TRUST: "own" for the operator's own classes, else validated results in a row / needed */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "trust");
    char trust_s[32];
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "trusted_class")))
        snprintf(trust_s, sizeof trust_s, "own");
    else
        snprintf(trust_s, sizeof trust_s, "%lld/%lld", (long long)cli__count(t, "valid_in_a_row"),
                 (long long)cli__count(t, "needed"));
    fprintf(out, "%-*.*s %-5s ", w->id_w, w->id_w, cli__text(s, "id", ""),
            cli__text(s, "class", ""));
    if (w->owner_w) fprintf(out, "%-*.*s ", w->owner_w, w->owner_w, cli__text(s, "owner", ""));
    fprintf(out, "%-11s %-9s %-11s %7.0f W %-9s %-7s %-8s %-5lld %-7s %-8lld ", site_status(s),
            cores_s, mem_s, headroom, next_s, leaves_s, age_s, (long long)cli__count(s, "jobs"),
            trust_s, (long long)site_rejected(s));
    if (w->broker_w) {
        const char *broker = cli__text(s, "broker", "");
        fprintf(out, "%-*.*s ", w->broker_w, w->broker_w, broker[0] ? broker : "-");
    }
    fprintf(out, "%s\n", cli__text(s, "protections_off", "none"));
    print_site_note(out, s);
}

void cli__print_sites(FILE *out, const cJSON *data, int64_t now_ms)
{
    const cJSON *sites = cJSON_GetObjectItemCaseSensitive(data, "sites"), *s;
    site_cols w = {cli__column_width(sites, "id", "", "SITE", 63), 0, 0};
    /* the OWNER column only says something when a site is not its own owner; BROKER once a
     * site said which broker it is on (an older site does not) */
    cJSON_ArrayForEach(s, sites)
    {
        if (strcmp(cli__text(s, "owner", cli__text(s, "id", "")), cli__text(s, "id", "")) != 0)
            w.owner_w = cli__column_width(sites, "owner", "", "OWNER", 63);
        if (cli__text(s, "broker", "")[0])
            w.broker_w = cli__column_width(sites, "broker", "", "BROKER", 63);
    }
    fprintf(out, "%-*s %-5s ", w.id_w, "SITE", "CLASS");
    if (w.owner_w) fprintf(out, "%-*s ", w.owner_w, "OWNER");
    fprintf(out, "%-11s %-9s %-11s %-9s %-9s %-7s %-8s %-5s %-7s %-8s ", "STATUS", "CORES",
            "MEM MB", "HEADROOM", "NEXT 1H", "LEAVES", "HEARTBT", "JOBS", "TRUST", "REJECTED");
    if (w.broker_w) fprintf(out, "%-*s ", w.broker_w, "BROKER");
    fprintf(out, "PROTECTIONS OFF\n");
    cJSON_ArrayForEach(s, sites) print_site_row(out, s, &w, now_ms);
}

void cli__print_per_site(FILE *out, const cJSON *per_site)
{
    const cJSON *site;
    int id_w = 4;
    cJSON_ArrayForEach(site, per_site)
    {
        int len = (int)strlen(site->string);
        if (len > id_w) id_w = len > 63 ? 63 : len;
    }
    fprintf(out, "%-*s %8s %8s %10s %8s %10s\n", id_w, "SITE", "PLACED", "RUNNING", "SUCCEEDED",
            "FAILED", "CANCELLED");
    cJSON_ArrayForEach(site, per_site)
    {
        if (!site->string[0]) continue; /* queued jobs: no site yet */
        fprintf(out, "%-*.*s %8lld %8lld %10lld %8lld %10lld\n", id_w, id_w, site->string,
                (long long)cli__count(site, "placed"), (long long)cli__count(site, "running"),
                (long long)cli__count(site, "succeeded"), (long long)cli__count(site, "failed"),
                (long long)cli__count(site, "cancelled"));
    }
}

/* "name n, name n, ..." for every number in obj except skip. */
static void print_counters(FILE *out, const cJSON *obj, const char *skip)
{
    const cJSON *n;
    const char *sep = "";
    cJSON_ArrayForEach(n, obj)
    {
        if (!cJSON_IsNumber(n) || (skip && strcmp(n->string, skip) == 0)) continue;
        fprintf(out, "%s%s %lld", sep, n->string, (long long)n->valuedouble);
        sep = ", ";
    }
}

void cli__print_stats(FILE *out, const cJSON *data, const char *hub_id)
{
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(data, "counts");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(data, "results");
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(data, "messages");
    double cpu = 0, joules = 0, commit_ms = 0;
    jsonx_num(data, "cpu_seconds", &cpu);
    jsonx_num(data, "energy_joules", &joules);
    jsonx_num(data, "commit_ms_avg", &commit_ms);
    fprintf(out, "hub %s\n", hub_id);
    fprintf(out, "jobs:      ");
    print_counters(out, counts, NULL);
    fprintf(out, "%s%lld submitted since the hub started\n", cJSON_GetArraySize(counts) ? "; " : "",
            (long long)cli__count(data, "jobs_submitted"));
    fprintf(out,
            "results:   %lld applied, %lld duplicates and %lld stale ones ignored; %.1f CPU s,"
            " %.1f kJ\n",
            (long long)cli__count(results, "applied"), (long long)cli__count(results, "duplicate"),
            (long long)cli__count(results, "stale"), cpu, joules / 1000.0);
    fprintf(out,
            "messages:  %lld accepted; dropped: ", (long long)cli__count(messages, "accepted"));
    print_counters(out, messages, "accepted");
    fprintf(out, "\nbounds:    %lld hits (a full queue or outbox refused work)\n",
            (long long)cli__count(data, "bound_hits"));
    fprintf(out, "store:     %lld commits, %.2f ms each on average\n",
            (long long)cli__count(data, "commits"), commit_ms);
    const cJSON *per_site = cJSON_GetObjectItemCaseSensitive(data, "per_site");
    if (cJSON_GetArraySize(per_site) > 0) {
        fprintf(out, "\n");
        cli__print_per_site(out, per_site);
    }
}
