/*
 * cmd_fleet: the commands about the fleet and who may join or act in it:
 * `outpost sites` (and `sites clear`, a quarantined site let back), `token
 * create` (a site's one-time join token, with limits on its claims), `approve`
 * (a job policy holds), `stats` (the hub's counters) and `operator-key`.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "core/jobspec.h"
#include "wire/token.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option no_options[] = {{NULL, 0, NULL, 0}};

/* The options of a command that takes none (positional arguments left at optind): EXIT_OK, or
 * help printed (*help), or EXIT_USAGE. */
static int no_arguments_but(cli *c, int argc, char **argv, int *help)
{
    int code;
    *help = 0;
    while ((code = cli__getopt(c, argc, argv, "", no_options)) != -1) {
        if (code != 'h') return cli__usage_error(c);
        cli__usage(stdout, c->cmd);
        *help = 1;
        return EXIT_OK;
    }
    return EXIT_OK;
}

/* The command line of a command that takes no argument: EXIT_OK, or help printed (*help), or
 * EXIT_USAGE. */
static int no_arguments(cli *c, int argc, char **argv, int *help)
{
    int rc = no_arguments_but(c, argc, argv, help);
    return rc == EXIT_OK && !*help && optind < argc ? cli__usage_error(c) : rc;
}

/* `outpost sites clear ID`: a quarantined site may take work again (its claims are checked anew).
 */
static int sites_clear(cli *c, const char *id)
{
    if (!util_valid_id(id)) {
        fprintf(stderr, "outpost sites clear: ID must be a site id ([A-Za-z0-9_-]{1,63})\n");
        return EXIT_USAGE;
    }
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "site", id);
    int rc = cli__request(c, req, "site_clear", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json)
        cli__print_json(stdout, data);
    else
        printf("site %s cleared: it may take work again once its claims check out\n", id);
    return EXIT_OK;
}

int cli__cmd_sites(cli *c, int argc, char **argv)
{
    int help;
    int rc = no_arguments_but(c, argc, argv, &help);
    if (rc != EXIT_OK || help) return rc;
    if (optind < argc) {
        if (optind + 2 != argc || strcmp(argv[optind], "clear") != 0) return cli__usage_error(c);
        return sites_clear(c, argv[optind + 1]);
    }
    cJSON *data = NULL;
    if ((rc = cli__request(c, cJSON_CreateObject(), "sites", &data)) != EXIT_OK) return rc;
    if (c->json)
        cli__print_json(stdout, data);
    else
        cli__print_sites(stdout, data, os_now_ms());
    return EXIT_OK;
}

int cli__cmd_stats(cli *c, int argc, char **argv)
{
    int help;
    int rc = no_arguments(c, argc, argv, &help);
    if (rc != EXIT_OK || help) return rc;
    cJSON *data = NULL;
    if ((rc = cli__request(c, cJSON_CreateObject(), "stats", &data)) != EXIT_OK) return rc;
    if (c->json)
        cli__print_json(stdout, data);
    else
        cli__print_stats(stdout, data, c->hub.hub_id);
    return EXIT_OK;
}

/* What `token create` asks for; owner NULL: the hub makes the site its own owner. */
typedef struct token_args {
    const char *cls, *sid, *owner;
    int64_t ttl;
    token_limits limits; /* 0: none */
} token_args;

/* --max-cores, --max-memory-mb, --max-watts: what the site may claim at most. */
static int parse_limit(int code, const char *text, token_limits *l)
{
    double watts = 0;
    int ok = code == 'C'   ? util_parse_i64(text, 1, TOKEN_MAX_CORES, &l->cores) == OP_OK
             : code == 'M' ? util_parse_i64(text, 1, TOKEN_MAX_MEMORY_MB, &l->memory_mb) == OP_OK
                           : util_parse_double(text, &watts) == OP_OK && watts > 0 &&
                                 watts <= TOKEN_MAX_WATTS;
    if (code == 'W') l->watts = watts;
    if (ok) return EXIT_OK;
    fprintf(stderr,
            "outpost token create: --max-cores must be 1 to %d, --max-memory-mb 1 to %lld,"
            " --max-watts above 0 and at most %.0f\n",
            TOKEN_MAX_CORES, (long long)TOKEN_MAX_MEMORY_MB, TOKEN_MAX_WATTS);
    return EXIT_USAGE;
}

static int parse_token_args(cli *c, int argc, char **argv, token_args *a, int *help)
{
    static const struct option opts[] = {{"class", required_argument, NULL, 'c'},
                                         {"site", required_argument, NULL, 's'},
                                         {"owner", required_argument, NULL, 'o'},
                                         {"ttl", required_argument, NULL, 't'},
                                         {"max-cores", required_argument, NULL, 'C'},
                                         {"max-memory-mb", required_argument, NULL, 'M'},
                                         {"max-watts", required_argument, NULL, 'W'},
                                         {NULL, 0, NULL, 0}};
    int code;
    *help = 0;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'c') {
            a->cls = optarg;
        } else if (code == 's') {
            a->sid = optarg;
        } else if (code == 'o') {
            a->owner = optarg;
        } else if (code == 't') {
            if (util_parse_i64(optarg, 1, 365LL * 86400, &a->ttl) != OP_OK) {
                fprintf(stderr, "outpost token: --ttl must be 1 to 31536000 seconds\n");
                return EXIT_USAGE;
            }
        } else if (code == 'C' || code == 'M' || code == 'W') {
            if (parse_limit(code, optarg, &a->limits) != EXIT_OK) return EXIT_USAGE;
        } else if (code == 'h') {
            cli__usage(stdout, "token");
            *help = 1;
            return EXIT_OK;
        } else {
            return cli__usage_error(c);
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "create") != 0) return cli__usage_error(c);
    if (!a->cls || !jobspec_class_bit(a->cls)) {
        fprintf(stderr, "outpost token create: --class must be pod, car or dc\n");
        return EXIT_USAGE;
    }
    if (!a->sid || !util_valid_id(a->sid)) {
        fprintf(stderr, "outpost token create: --site ID is required: the site id the token is"
                        " for ([A-Za-z0-9_-]{1,63}, its site_id)\n");
        return EXIT_USAGE;
    }
    if (a->owner && !util_valid_id(a->owner)) {
        fprintf(stderr, "outpost token create: --owner must be an id ([A-Za-z0-9_-]{1,63})\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cli__cmd_token(cli *c, int argc, char **argv)
{
    token_args a = {0};
    int help;
    int rc = parse_token_args(c, argc, argv, &a, &help);
    if (rc != EXIT_OK || help) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "class", a.cls);
    cJSON_AddStringToObject(req, "site", a.sid);
    if (a.owner) cJSON_AddStringToObject(req, "owner", a.owner);
    if (a.ttl) jsonx_add_int(req, "ttl_s", a.ttl);
    if (a.limits.cores) jsonx_add_int(req, "max_cores", a.limits.cores);
    if (a.limits.memory_mb) jsonx_add_int(req, "max_memory_mb", a.limits.memory_mb);
    if (a.limits.watts > 0) cJSON_AddNumberToObject(req, "max_watts", a.limits.watts);
    if ((rc = cli__request(c, req, "token", &data)) != EXIT_OK) return rc;
    /* The hub seals the token (or the join bundle with the site's broker key) to this
     * operator's key: only here is it plain text. */
    char *text = NULL;
    const char *sealed = cli__text(data, "sealed_token", "");
    if (ident_open_sealed(&c->identity, sealed, TOKEN_BUNDLE_MAX, &text, NULL) != OP_OK) {
        fprintf(stderr, "outpost token: the hub's answer holds no token sealed to this key\n");
        return EXIT_REJECTED;
    }
    if (c->json) {
        cJSON_DeleteItemFromObjectCaseSensitive(data, "sealed_token");
        cJSON_AddStringToObject(data, "token", text);
        cli__print_json(stdout, data);
    } else {
        printf("%s\n", text);
    }
    sodium_memzero(text, strlen(text));
    free(text);
    return EXIT_OK;
}

int cli__cmd_approve(cli *c, int argc, char **argv)
{
    return cli__job_action(c, argc, argv, "approve", "approved");
}

/* operator-key: this operator's public key, to add to the hub's operators file. No hub. */
int cli__cmd_operator_key(cli *c, int argc, char **argv)
{
    int help;
    int rc = no_arguments(c, argc, argv, &help);
    if (rc != EXIT_OK || help) return rc;
    char dir[PATH_MAX];
    cli__identity_dir(c, dir, sizeof dir);
    if (opclient_identity(dir, &c->identity) != OP_OK) {
        fprintf(stderr, "outpost: cannot load operator identity from %s\n", dir);
        return EXIT_USAGE;
    }
    printf("%s operator key (add this line to the hub's operators file)\n", c->identity.pk_hex);
    return EXIT_OK;
}
