/*
 * cmd_local: the commands that talk to a site agent on this machine through
 * its local socket, with no hub involved: `outpost leave` (the owner
 * unplugs), `outpost power` (the site's power signals by hand) and
 * `outpost submit --local` (work that runs even while the hub is away).
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "io/localsock.h"

#include <stdlib.h>
#include <string.h>

/*
 * One request to a site agent on this machine through its socket (path: the
 * socket or the site's data dir; io/localsock does the framing, the bounds
 * and the timeout). Takes req. On EXIT_OK *reply_out is the answer (the
 * caller frees it); else EXIT_UNREACHABLE after printing why.
 */
static int local_call(const char *path, cJSON *req, cJSON **reply_out)
{
    char err[512];
    int rc = localsock_call(path, req, LOCALSOCK_CALL_TIMEOUT_MS, reply_out, err, sizeof err);
    cJSON_Delete(req);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    return EXIT_OK;
}

int cli__local_submit(const char *path, cJSON *req, int quiet)
{
    cJSON *reply = NULL;
    int rc = local_call(path, req, &reply);
    if (rc != EXIT_OK) return rc;
    const cJSON *id;
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(reply, "ids"))
        printf(quiet ? "%lld\n" : "local %lld\n", (long long)id->valuedouble);
    const char *error = jsonx_str(reply, "error");
    if (error) {
        fprintf(stderr, "outpost submit: the site refused: %s\n", error);
        rc = EXIT_REJECTED;
    }
    cJSON_Delete(reply);
    return rc;
}

/* The one positional argument of leave and power: the site's data dir or its socket. */
static const char *site_arg(const cli *c, int argc, char **argv)
{
    if (optind == argc - 1) return argv[optind];
    cli__usage_error(c);
    return NULL;
}

/*
 * outpost leave SITE_DATA_DIR [--grace S]: the owner unplugs (a car leaves).
 * The site refuses new work, asks its jobs to stop (SIGTERM, SIGKILL after
 * the grace period), hands them back with their checkpoints, and exits.
 */
int cli__cmd_leave(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"grace", required_argument, NULL, 'g'},
                                         {NULL, 0, NULL, 0}};
    int64_t grace = 10;
    int code;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'h') {
            cli__usage(stdout, "leave");
            return EXIT_OK;
        }
        if (code != 'g') return cli__usage_error(c);
        if (util_parse_i64(optarg, 0, 3600, &grace) != OP_OK) {
            fprintf(stderr, "outpost leave: --grace takes 0 to 3600 seconds\n");
            return EXIT_USAGE;
        }
    }
    const char *dir = site_arg(c, argc, argv);
    if (!dir) return EXIT_USAGE;
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    if (!req) return EXIT_FAILURE_RUNTIME;
    cJSON_AddStringToObject(req, "op", "leave");
    cJSON_AddNumberToObject(req, "grace_s", (double)grace);
    int rc = local_call(dir, req, &reply);
    if (rc != EXIT_OK) return rc;
    const char *error = jsonx_str(reply, "error");
    if (error) {
        fprintf(stderr, "outpost leave: %s\n", error);
        rc = EXIT_REJECTED;
    } else {
        printf("leaving: %lld running job(s) asked to stop; they are handed back with their"
               " checkpoints, then the agent exits\n",
               (long long)cli__count(reply, "stopping"));
    }
    cJSON_Delete(reply);
    return rc;
}

enum { PW_WATTS = 1, PW_PRICE, PW_CARBON, PW_DR_WATTS, PW_DR_FOR, PW_DEPARTURE, PW_NO_DEPARTURE };

/* One power option into the meter message; dr_watts and dr_for wait for each other. */
static int power_option(cJSON *meter, int code, const char *value, double *dr_watts, double *dr_for)
{
    static const char *field[] = {
        [PW_WATTS] = "watts", [PW_PRICE] = "price", [PW_CARBON] = "carbon"};
    static const char *flag[] = {
        [PW_WATTS] = "--watts",       [PW_PRICE] = "--price",   [PW_CARBON] = "--carbon",
        [PW_DR_WATTS] = "--dr-watts", [PW_DR_FOR] = "--dr-for", [PW_DEPARTURE] = "--departure-in"};
    double v = 0;
    if (code == PW_NO_DEPARTURE) {
        cJSON_AddNumberToObject(meter, "departure_ms", 0);
        return EXIT_OK;
    }
    if (util_parse_double(value, &v) != OP_OK) {
        fprintf(stderr, "outpost power: %s takes a number\n", flag[code]);
        return EXIT_USAGE;
    }
    if (code == PW_DR_WATTS)
        *dr_watts = v;
    else if (code == PW_DR_FOR)
        *dr_for = v;
    else if (code == PW_DEPARTURE)
        cJSON_AddNumberToObject(meter, "departure_ms", (double)os_now_ms() + v * 1000);
    else
        cJSON_AddNumberToObject(meter, field[code], v);
    return EXIT_OK;
}

/* The power command line into req's meter message. EXIT_OK (*help: printed), EXIT_USAGE. */
static int parse_power_args(cli *c, int argc, char **argv, cJSON *meter, int *help)
{
    static const struct option opts[] = {{"watts", required_argument, NULL, PW_WATTS},
                                         {"price", required_argument, NULL, PW_PRICE},
                                         {"carbon", required_argument, NULL, PW_CARBON},
                                         {"dr-watts", required_argument, NULL, PW_DR_WATTS},
                                         {"dr-for", required_argument, NULL, PW_DR_FOR},
                                         {"departure-in", required_argument, NULL, PW_DEPARTURE},
                                         {"no-departure", no_argument, NULL, PW_NO_DEPARTURE},
                                         {NULL, 0, NULL, 0}};
    double dr_watts = -1, dr_for = -1;
    int code;
    *help = 0;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'h') {
            cli__usage(stdout, "power");
            *help = 1;
            return EXIT_OK;
        }
        if (code == '?') return cli__usage_error(c);
        if (power_option(meter, code, optarg, &dr_watts, &dr_for) != EXIT_OK)
            return cli__usage_error(c);
    }
    if ((dr_watts >= 0) != (dr_for >= 0)) {
        fprintf(stderr, "outpost power: --dr-watts and --dr-for go together\n");
        return EXIT_USAGE;
    }
    if (dr_watts >= 0) {
        cJSON *dr = cJSON_AddObjectToObject(meter, "dr");
        cJSON_AddNumberToObject(dr, "watts", dr_watts);
        cJSON_AddNumberToObject(dr, "until_ms", (double)os_now_ms() + dr_for * 1000);
    }
    if (cJSON_GetArraySize(meter) == 0) return cli__usage_error(c);
    return EXIT_OK;
}

/*
 * outpost power SITE_DATA_DIR [options]: the site's power signals by hand (a
 * meter message through its local socket): the envelope, the grid price and
 * carbon, a demand-response cap for a while, a parked car's stated departure.
 */
int cli__cmd_power(cli *c, int argc, char **argv)
{
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    cJSON *meter = req ? cJSON_AddObjectToObject(req, "meter") : NULL;
    int help = 0;
    int rc = meter ? parse_power_args(c, argc, argv, meter, &help) : EXIT_FAILURE_RUNTIME;
    const char *dir = rc == EXIT_OK && !help ? site_arg(c, argc, argv) : NULL;
    if (!dir) {
        cJSON_Delete(req);
        return rc != EXIT_OK || help ? rc : EXIT_USAGE;
    }
    cJSON_AddStringToObject(req, "op", "power");
    if ((rc = local_call(dir, req, &reply)) != EXIT_OK) return rc;
    const char *error = jsonx_str(reply, "error");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(reply, "envelope_watts");
    if (error) {
        fprintf(stderr, "outpost power: the site refused: %s\n", error);
        rc = EXIT_REJECTED;
    } else {
        printf("envelope now %.0f W\n", cJSON_IsNumber(env) ? env->valuedouble : 0);
    }
    cJSON_Delete(reply);
    return rc;
}
