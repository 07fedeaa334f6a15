/*
 * cmd_policy: `outpost policy`, the hub's governance rules. `check FILE`
 * validates a policy here without a hub; `show`, `diff FILE` and `set FILE`
 * read or replace the one in force on the hub.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "cli/cli_int.h"
#include "core/policy.h"

#include <stdlib.h>
#include <string.h>

static int read_policy_file(const char *path, char **text, policy **p)
{
    char err[512];
    int rc = os_read_file(path, 256 * 1024, text, NULL);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost policy: cannot read %s: %s\n", path, op_strerror(rc));
        return EXIT_USAGE;
    }
    if (policy_parse(*text, path, p, err, sizeof err) != OP_OK) {
        fprintf(stderr, "%s\n", err);
        free(*text);
        *text = NULL;
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Whether the line [line, line+len) appears in text. */
static int has_line(const char *text, const char *line, size_t len)
{
    for (const char *o = text; *o;) {
        const char *oe = strchr(o, '\n');
        size_t olen = oe ? (size_t)(oe - o) : strlen(o);
        if (olen == len && strncmp(o, line, len) == 0) return 1;
        o = oe ? oe + 1 : o + olen;
    }
    return 0;
}

/* Lines only in a ("- ") and only in b ("+ "), in order: enough for policies of a page. */
static void print_line_diff(const char *a, const char *b)
{
    const char *texts[2] = {a, b};
    const char *marks[2] = {"- ", "+ "};
    for (int side = 0; side < 2; side++) {
        const char *line = texts[side];
        while (*line) {
            const char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            if (!has_line(texts[1 - side], line, len))
                printf("%s%.*s\n", marks[side], (int)len, line);
            line = end ? end + 1 : line + len;
        }
    }
}

/* policy check FILE: local, no hub needed. */
static int policy_check(const char *path)
{
    char *text = NULL;
    policy *p = NULL;
    int rc = read_policy_file(path, &text, &p);
    if (rc != EXIT_OK) return rc;
    printf("%s: valid, version %d, sha256 %s\n", path, policy_version(p), policy_hash(p));
    policy_free(p);
    free(text);
    return EXIT_OK;
}

static int policy_show(cli *c)
{
    cJSON *data = NULL;
    int rc = cli__request(c, cJSON_CreateObject(), "policy_get", &data);
    if (rc != EXIT_OK) return rc;
    const char *text = jsonx_str(data, "text");
    if (!text || !*text) {
        printf("# no policy in force on hub %s (everything the built-in checks allow)\n",
               c->hub.hub_id);
        return EXIT_OK;
    }
    fputs(text, stdout);
    return EXIT_OK;
}

/* policy diff FILE | set FILE: the file is checked here first. */
static int policy_diff_or_set(cli *c, const char *sub, const char *path)
{
    char *text = NULL;
    policy *p = NULL;
    cJSON *data = NULL;
    int rc = read_policy_file(path, &text, &p);
    if (rc != EXIT_OK) return rc;
    policy_free(p);
    if (!strcmp(sub, "diff")) {
        rc = cli__request(c, cJSON_CreateObject(), "policy_get", &data);
        if (rc == EXIT_OK) {
            printf("# in force: version %lld; %s: the new file\n",
                   (long long)cli__count(data, "version"), path);
            print_line_diff(cli__text(data, "text", ""), text);
        }
    } else {
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "text", text);
        rc = cli__request(c, req, "policy_set", &data);
        if (rc == EXIT_OK)
            printf("policy version %lld in force (sha256 %s)\n",
                   (long long)cli__count(data, "version"), cli__text(data, "sha256", "?"));
    }
    free(text);
    return rc;
}

int cli__cmd_policy(cli *c, int argc, char **argv)
{
    static const struct option no_options[] = {{NULL, 0, NULL, 0}};
    int code;
    while ((code = cli__getopt(c, argc, argv, "", no_options)) != -1) {
        if (code != 'h') return cli__usage_error(c);
        cli__usage(stdout, "policy");
        return EXIT_OK;
    }
    const char *sub = optind < argc ? argv[optind] : "";
    int n_args = argc - optind - 1;
    if (!strcmp(sub, "show") && n_args == 0) return policy_show(c);
    if (!strcmp(sub, "check") && n_args == 1) return policy_check(argv[optind + 1]);
    if ((!strcmp(sub, "diff") || !strcmp(sub, "set")) && n_args == 1)
        return policy_diff_or_set(c, sub, argv[optind + 1]);
    return cli__usage_error(c);
}
