/*
 * cmd_api: `outpost api-token create|list|revoke`, the HTTP API's tokens
 * (see docs/api.md), and `outpost power-history`, the spare power the fleet
 * offered and used per class (what GET /v1/power answers). Both go to the
 * hub as operator commands over MQTT, so they are signed and audited like
 * the others.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "cli/cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `api-token create` asks for. */
typedef struct token_opts {
    const char *op_id, *role;
    int64_t expires_s; /* 0: until revoked */
} token_opts;

/* create --operator OP --role R [--expires-s N]: the token is printed once. */
static int token_create(cli *c, const token_opts *o)
{
    if (!o->op_id || !o->role) return cli__usage_error(c);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "operator", o->op_id);
    cJSON_AddStringToObject(req, "role", o->role);
    if (o->expires_s) jsonx_add_int(req, "expires_s", o->expires_s);
    cJSON *data = NULL;
    int rc = cli__request(c, req, "api_token_create", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    printf("%s\n", cli__text(data, "token", "?"));
    fprintf(stderr,
            "API token %s for %s (%s); shown once: the hub keeps only its hash. "
            "Revoke with `outpost api-token revoke %s`.\n",
            cli__text(data, "id", "?"), cli__text(data, "operator", "?"),
            cli__text(data, "role", "?"), cli__text(data, "id", "?"));
    return EXIT_OK;
}

static int token_list(cli *c)
{
    cJSON *data = NULL;
    int rc = cli__request(c, cJSON_CreateObject(), "api_token_list", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    printf("%-16s  %-24s  %-8s  %-8s  %s\n", "ID", "OPERATOR", "ROLE", "STATE", "EXPIRES");
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(data, "tokens"))
    {
        char when[32];
        int64_t expires = cli__count(t, "expires_at");
        printf("%-16s  %-24s  %-8s  %-8s  %s\n", cli__text(t, "id", "?"),
               cli__text(t, "operator", "?"), cli__text(t, "role", "?"),
               cli__count(t, "revoked_at") ? "revoked" : "live",
               expires ? cli__fmt_time(expires, when, sizeof when) : "never");
    }
    return EXIT_OK;
}

static int token_revoke(cli *c, const char *id)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "id", id);
    cJSON *data = NULL;
    int rc = cli__request(c, req, "api_token_revoke", &data);
    if (rc == EXIT_OK) printf("API token %s revoked\n", id);
    return rc;
}

int cli__cmd_api_token(cli *c, int argc, char **argv)
{
    static const struct option own[] = {{"operator", required_argument, NULL, 'o'},
                                        {"role", required_argument, NULL, 'r'},
                                        {"expires-s", required_argument, NULL, 'e'},
                                        {NULL, 0, NULL, 0}};
    token_opts o = {0};
    int code;
    while ((code = cli__getopt(c, argc, argv, "", own)) != -1) {
        if (code == 'o')
            o.op_id = optarg;
        else if (code == 'r')
            o.role = optarg;
        else if (code == 'e' && util_parse_i64(optarg, 1, 10 * 365LL * 86400, &o.expires_s) == 0)
            continue;
        else if (code == 'h') {
            cli__usage(stdout, "api-token");
            return EXIT_OK;
        } else
            return cli__usage_error(c);
    }
    const char *sub = optind < argc ? argv[optind] : "";
    int n_args = argc - optind;
    if (!strcmp(sub, "create") && n_args == 1) return token_create(c, &o);
    if (o.op_id || o.role || o.expires_s) return cli__usage_error(c);
    if (!strcmp(sub, "list") && n_args == 1) return token_list(c);
    if (!strcmp(sub, "revoke") && n_args == 2) return token_revoke(c, argv[optind + 1]);
    return cli__usage_error(c);
}

/* power-history [--hours N]: one line per class and sample. */
int cli__cmd_power_history(cli *c, int argc, char **argv)
{
    static const struct option own[] = {{"hours", required_argument, NULL, 'H'},
                                        {NULL, 0, NULL, 0}};
    int64_t hours = 24;
    int code;
    while ((code = cli__getopt(c, argc, argv, "", own)) != -1) {
        if (code == 'H' && util_parse_i64(optarg, 1, 24, &hours) == 0) continue;
        if (code == 'h') {
            cli__usage(stdout, "power-history");
            return EXIT_OK;
        }
        return cli__usage_error(c);
    }
    cJSON *req = cJSON_CreateObject();
    jsonx_add_int(req, "hours", hours);
    cJSON *data = NULL;
    int rc = cli__request(c, req, "power_history", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    printf("%-5s  %-8s  %10s  %10s\n", "CLASS", "TIME", "OFFERED_W", "USED_W");
    const cJSON *cls;
    cJSON_ArrayForEach(cls, cJSON_GetObjectItemCaseSensitive(data, "classes"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cls, "t");
        const cJSON *offered = cJSON_GetObjectItemCaseSensitive(cls, "offered_w");
        const cJSON *used = cJSON_GetObjectItemCaseSensitive(cls, "used_w");
        int n = cJSON_GetArraySize(t);
        for (int i = 0; i < n; i++) {
            char when[32];
            cli__fmt_time((int64_t)cJSON_GetArrayItem(t, i)->valuedouble * 1000, when, sizeof when);
            printf("%-5s  %-8s  %10.0f  %10.0f\n", cls->string, when,
                   cJSON_GetArrayItem(offered, i)->valuedouble,
                   cJSON_GetArrayItem(used, i)->valuedouble);
        }
    }
    return EXIT_OK;
}
