/*
 * cmd_jobs: the commands about jobs once submitted: `outpost jobs` (the
 * list), `job ID` (one job's story), `result ID` (its outputs, verified and
 * optionally saved), `watch` (live progress per site) and `cancel ID`.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "cli/cli_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct option no_options[] = {{NULL, 0, NULL, 0}};

int cli__job_id_arg(const cli *c, int argc, char **argv, int64_t *id)
{
    if (optind != argc - 1 || util_parse_i64(argv[optind], 1, INT64_MAX, id) != OP_OK) {
        if (optind < argc) fprintf(stderr, "outpost %s: expected one job number\n", c->cmd);
        return cli__usage_error(c);
    }
    return EXIT_OK;
}

int cli__job_id_only(cli *c, int argc, char **argv, int64_t *id, int *help)
{
    int code;
    *help = 0;
    while ((code = cli__getopt(c, argc, argv, "", no_options)) != -1) {
        if (code != 'h') return cli__usage_error(c);
        cli__usage(stdout, c->cmd);
        *help = 1;
        return EXIT_OK;
    }
    return cli__job_id_arg(c, argc, argv, id);
}

int cli__cmd_jobs(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {NULL, 0, NULL, 0}};
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    int code, rc = req ? EXIT_OK : EXIT_FAILURE_RUNTIME;
    int64_t n;
    while (rc == EXIT_OK && (code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 's')
            cJSON_AddStringToObject(req, "state", optarg);
        else if (code == 'l' && util_parse_i64(optarg, 1, 10000, &n) == OP_OK)
            jsonx_add_int(req, "limit", n);
        else if (code == 'h') {
            cli__usage(stdout, "jobs");
            cJSON_Delete(req);
            return EXIT_OK;
        } else
            rc = cli__usage_error(c);
    }
    if (rc == EXIT_OK && optind < argc) rc = cli__usage_error(c);
    if (rc != EXIT_OK) {
        cJSON_Delete(req);
        return rc;
    }
    if ((rc = cli__request(c, req, "jobs", &data)) != EXIT_OK) return rc;
    if (c->json)
        cli__print_json(stdout, data);
    else
        cli__print_jobs(stdout, data);
    return EXIT_OK;
}

/* `outpost job`'s results part: one line per result, and its energy receipt. */
static void print_job_results(const cJSON *results)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, results)
    {
        int64_t att = 0, exit_code = 0;
        double cpu = 0, joules = 0;
        jsonx_int(e, "attempt", 0, INT64_MAX, &att);
        jsonx_int(e, "exit_code", -1, 255, &exit_code);
        jsonx_num(e, "cpu_seconds", &cpu);
        jsonx_num(e, "energy_joules", &joules);
        printf("    #%lld from %-10s exit %lld, %.2f CPU s, %.1f J  %s\n", (long long)att,
               cli__text(e, "site", ""), (long long)exit_code, cpu, joules,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "applied"))
                   ? "applied"
                   : "recorded, not applied");
        const cJSON *receipt = cJSON_GetObjectItemCaseSensitive(e, "receipt");
        double share = 1, cost = 0, carbon = 0;
        if (!cJSON_IsObject(receipt)) continue;
        jsonx_num(receipt, "spare_share", &share);
        printf("      energy receipt: %.1f J, %.0f%% of its run time inside the envelope", joules,
               share * 100);
        if (jsonx_num(receipt, "cost", &cost) == OP_OK) printf(", cost %.6f", cost);
        if (jsonx_num(receipt, "carbon_g", &carbon) == OP_OK) printf(", %.3f g CO2", carbon);
        printf("\n");
    }
}

static void print_job(int64_t id, const cJSON *data)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(data, "job");
    printf("job %lld  %s  %s\n", (long long)id, cli__text(j, "kind", ""), cli__text(j, "name", ""));
    printf("  state:    %s (attempt %lld of %lld)\n", cli__text(j, "state", ""),
           (long long)cli__count(j, "attempt"), (long long)cli__count(j, "max_attempts"));
    printf("  site:     %s\n", cli__text(j, "site", "-"));
    printf("  reason:   %s\n", cli__text(j, "reason", "-"));
    printf("  why here: %s\n", cli__text(j, "explanation", "-"));
    printf("  history:\n");
    const cJSON *e;
    char tbuf[16];
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(data, "events"))
    {
        printf("    %s  #%lld %-12s %-10s %s\n",
               cli__fmt_time(cli__count(e, "ts"), tbuf, sizeof tbuf),
               (long long)cli__count(e, "attempt"), cli__text(e, "event", ""),
               cli__text(e, "site", ""), cli__text(e, "detail", ""));
    }
    printf("  results:\n");
    print_job_results(cJSON_GetObjectItemCaseSensitive(data, "results"));
}

int cli__cmd_job(cli *c, int argc, char **argv)
{
    int64_t id;
    int help;
    int rc = cli__job_id_only(c, argc, argv, &id, &help);
    if (rc != EXIT_OK || help) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = cli__request(c, req, "job", &data)) != EXIT_OK) return rc;
    if (c->json)
        cli__print_json(stdout, data);
    else
        print_job(id, data);
    return EXIT_OK;
}

/* One output of a result: decoded, checked against its hash, saved into save_dir if given. */
static void print_output(const cJSON *o, const char *save_dir)
{
    const char *name = jsonx_str(o, "name");
    const char *b64 = jsonx_str(o, "data_b64");
    const char *hash = jsonx_str(o, "sha256");
    if (!name || !b64 || !hash) return;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char check[65];
    if (util_b64_decode(b64, SIZE_MAX / 2, &bytes, &len) != OP_OK) return;
    util_sha256_hex(bytes, len, check);
    int ok = strcmp(check, hash) == 0;
    printf("--- output %s: %zu bytes, sha256 %s %s\n", name, len, hash,
           ok ? "(verified)" : "(MISMATCH)");
    if (save_dir && ok && !strchr(name, '/')) {
        char path[PATH_MAX];
        if (os_mkdir_p(save_dir) == OP_OK &&
            cli__path_join(path, sizeof path, save_dir, name) == OP_OK &&
            os_write_file_atomic(path, bytes, len, 0644) == OP_OK)
            printf("    saved to %s\n", path);
    }
    free(bytes);
}

static int parse_result_args(cli *c, int argc, char **argv, int64_t *id, const char **save,
                             int *help)
{
    static const struct option opts[] = {{"save", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int code;
    *help = 0;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 's') {
            *save = optarg;
        } else if (code == 'h') {
            cli__usage(stdout, "result");
            *help = 1;
            return EXIT_OK;
        } else {
            return cli__usage_error(c);
        }
    }
    return cli__job_id_arg(c, argc, argv, id);
}

int cli__cmd_result(cli *c, int argc, char **argv)
{
    int64_t id;
    const char *save = NULL;
    int help;
    int rc = parse_result_args(c, argc, argv, &id, &save, &help);
    if (rc != EXIT_OK || help) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = cli__request(c, req, "result", &data)) != EXIT_OK) return rc;
    const cJSON *applied = NULL, *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(data, "results"))
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "applied"))) applied = r;
    }
    if (c->json) {
        cli__print_json(stdout, applied ? applied : data);
        return EXIT_OK;
    }
    if (!applied) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(data, "job");
        fprintf(stderr, "outpost result: job %lld has no applied result yet (state %s)\n",
                (long long)id, cli__text(j, "state", "?"));
        return EXIT_NOT_FOUND;
    }
    int64_t exit_code = -1;
    double cpu = 0;
    jsonx_int(applied, "exit_code", -1, 255, &exit_code);
    jsonx_num(applied, "cpu_seconds", &cpu);
    printf("job %lld on %s: exit %lld, %.2f CPU s\n", (long long)id, cli__text(applied, "site", ""),
           (long long)exit_code, cpu);
    if (jsonx_str(applied, "error")) printf("error: %s\n", jsonx_str(applied, "error"));
    printf("--- stdout\n%s", jsonx_str(applied, "stdout") ? jsonx_str(applied, "stdout") : "");
    printf("--- stderr\n%s", jsonx_str(applied, "stderr") ? jsonx_str(applied, "stderr") : "");
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(applied, "outputs"))
        print_output(o, save);
    return EXIT_OK;
}

/* One screen of `outpost watch`; *active is the number of jobs not finished yet. */
static void print_watch(const cli *c, const cJSON *data, int tty, int64_t *active)
{
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(data, "counts");
    *active =
        cli__count(counts, "queued") + cli__count(counts, "placed") + cli__count(counts, "running");
    char tbuf[16];
    if (tty) printf("\033[H\033[2J");
    printf("outpost watch  %s UTC  hub id: %s\n", cli__fmt_time(os_now_ms(), tbuf, sizeof tbuf),
           c->hub.hub_id);
    cli__print_per_site(stdout, cJSON_GetObjectItemCaseSensitive(data, "per_site"));
    double cpu = 0, joules = 0;
    jsonx_num(data, "cpu_seconds", &cpu);
    jsonx_num(data, "energy_joules", &joules);
    printf("queued %lld, placed %lld, running %lld, succeeded %lld, failed %lld, cancelled"
           " %lld | %.1f CPU s, %.1f kJ\n",
           (long long)cli__count(counts, "queued"), (long long)cli__count(counts, "placed"),
           (long long)cli__count(counts, "running"), (long long)cli__count(counts, "succeeded"),
           (long long)cli__count(counts, "failed"), (long long)cli__count(counts, "cancelled"), cpu,
           joules / 1000.0);
    fflush(stdout);
}

int cli__cmd_watch(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"until-done", no_argument, NULL, 'u'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {NULL, 0, NULL, 0}};
    int until_done = 0, code;
    int64_t interval = 1000;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'u') {
            until_done = 1;
        } else if (code == 'i' && util_parse_i64(optarg, 100, 60000, &interval) == OP_OK) {
            continue;
        } else if (code == 'h') {
            cli__usage(stdout, "watch");
            return EXIT_OK;
        } else {
            return cli__usage_error(c);
        }
    }
    if (optind < argc) return cli__usage_error(c);
    int tty = isatty(STDOUT_FILENO);
    runctl_install();
    while (!runctl_stopping()) {
        cJSON *data = NULL;
        int64_t active = 0;
        int rc = cli__request(c, cJSON_CreateObject(), "stats", &data);
        if (rc != EXIT_OK) return rc;
        print_watch(c, data, tty, &active);
        if (until_done && active == 0) break;
        cli__pause(c, interval);
    }
    return EXIT_OK;
}

int cli__job_action(cli *c, int argc, char **argv, const char *cmd, const char *done)
{
    int64_t id;
    int help;
    int rc = cli__job_id_only(c, argc, argv, &id, &help);
    if (rc != EXIT_OK || help) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = cli__request(c, req, cmd, &data)) != EXIT_OK) return rc;
    printf("job %lld %s\n", (long long)id, done);
    return EXIT_OK;
}

int cli__cmd_cancel(cli *c, int argc, char **argv)
{
    return cli__job_action(c, argc, argv, "cancel", "cancelled");
}
