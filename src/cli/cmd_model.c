/*
 * cmd_model: `outpost model put|list|show|rm|pool|rollback`, the hub's model registry
 * (docs/models.md). `put` hashes the file here, uploads it in pieces (each
 * one sealed request, resumed from where the hub says it stands), then
 * names it as a new version; `show` checks the record's signature with the
 * hub key from cli.conf before printing its lineage.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "core/artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_PIECE_BYTES (4 * 1024 * 1024) /* one upload request: 5.6 MB of base64 */

typedef struct model_args {
    const char *sub, *name, *file;
    const char *data_class, *origin, *metrics, *lineage;
    const char *owner, *own; /* pool */
    const char *site;        /* rollback */
    int64_t parent, version, visits, deadline_s, rounds;
    int all, help;
} model_args;

static int parse_model_args(cli *c, int argc, char **argv, model_args *a)
{
    static const struct option opts[] = {{"parent", required_argument, NULL, 'p'},
                                         {"version", required_argument, NULL, 'v'},
                                         {"data-class", required_argument, NULL, 'd'},
                                         {"origin", required_argument, NULL, 'o'},
                                         {"metrics", required_argument, NULL, 'm'},
                                         {"lineage", required_argument, NULL, 'l'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"owner", required_argument, NULL, 'O'},
                                         {"own", required_argument, NULL, 'w'},
                                         {"visits", required_argument, NULL, 'V'},
                                         {"deadline-s", required_argument, NULL, 'D'},
                                         {"rounds", required_argument, NULL, 'R'},
                                         {"site", required_argument, NULL, 'S'},
                                         {NULL, 0, NULL, 0}};
    int code;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'h') {
            cli__usage(stdout, "model");
            a->help = 1;
            return EXIT_OK;
        } else if ((code == 'p' && util_parse_i64(optarg, 1, INT32_MAX, &a->parent) != OP_OK) ||
                   (code == 'v' && util_parse_i64(optarg, 1, INT32_MAX, &a->version) != OP_OK)) {
            fprintf(stderr, "outpost model: --parent and --version take a version number\n");
            return EXIT_USAGE;
        } else if (code == 'd') {
            a->data_class = optarg;
        } else if (code == 'o') {
            a->origin = optarg;
        } else if (code == 'm') {
            a->metrics = optarg;
        } else if (code == 'l') {
            a->lineage = optarg;
        } else if (code == 'a') {
            a->all = 1;
        } else if (code == 'O' || code == 'w' || code == 'S') {
            *(code == 'O' ? &a->owner : code == 'w' ? &a->own : &a->site) = optarg;
        } else if ((code == 'V' && util_parse_i64(optarg, 1, 10, &a->visits) != OP_OK) ||
                   (code == 'R' && util_parse_i64(optarg, 1, 100, &a->rounds) != OP_OK) ||
                   (code == 'D' && util_parse_i64(optarg, 60, 30 * 24 * 3600, &a->deadline_s))) {
            fprintf(stderr, "outpost model pool: --visits 1..10, --rounds 1..100, --deadline-s "
                            "60..2592000\n");
            return EXIT_USAGE;
        } else if (code != 'p' && code != 'v' && code != 'V' && code != 'R' && code != 'D') {
            return cli__usage_error(c);
        }
    }
    int n = argc - optind;
    a->sub = n > 0 ? argv[optind] : "";
    a->name = n > 1 ? argv[optind + 1] : NULL;
    a->file = n > 2 ? argv[optind + 2] : NULL;
    int want = !strcmp(a->sub, "put") ? 3 : !strcmp(a->sub, "list") ? (n == 2 ? 2 : 1) : 2;
    if (strcmp(a->sub, "put") && strcmp(a->sub, "list") && strcmp(a->sub, "show") &&
        strcmp(a->sub, "rm") && strcmp(a->sub, "pool") && strcmp(a->sub, "rollback"))
        return cli__usage_error(c);
    if (!strcmp(a->sub, "rollback") && !a->site) {
        fprintf(stderr, "outpost model rollback: --site SITE names the site that goes back\n");
        return EXIT_USAGE;
    }
    if (!strcmp(a->sub, "pool") && !a->owner) {
        fprintf(stderr, "outpost model pool: --owner OWNER names whose sites pool\n");
        return EXIT_USAGE;
    }
    if (n != want || (a->name && !artifact_valid_name(a->name))) {
        if (a->name && !artifact_valid_name(a->name))
            fprintf(stderr, "outpost model: NAME must be [A-Za-z0-9_-]{1,63}\n");
        return cli__usage_error(c);
    }
    return EXIT_OK;
}

/* ---------- put ---------- */

/* The file's SHA-256 (hex) and size, read once. EXIT_OK or EXIT_USAGE (printed). */
static int hash_file(const char *path, char sha[65], int64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf = fd >= 0 ? malloc(1 << 20) : NULL;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    *size = 0;
    ssize_t n = buf ? 1 : -1;
    while (buf && (n = read(fd, buf, 1 << 20)) > 0) {
        crypto_hash_sha256_update(&st, buf, (size_t)n);
        *size += n;
    }
    free(buf);
    if (fd >= 0) close(fd);
    if (n < 0 || *size == 0 || *size > ARTIFACT_MAX_BYTES) {
        fprintf(stderr, "outpost model put: %s: %s\n", path,
                n < 0 ? strerror(errno) : "empty or over 4 GiB");
        return EXIT_USAGE;
    }
    uint8_t raw[32];
    crypto_hash_sha256_final(&st, raw);
    util_hex(raw, 32, sha);
    return EXIT_OK;
}

/* One piece from offset: its request, the hub's next offset and whether it has it all. */
static int upload_piece(cli *c, int fd, const char *sha, int64_t size, int64_t offset,
                        int64_t *next, int *complete)
{
    size_t len = (size_t)(size - offset < MODEL_PIECE_BYTES ? size - offset : MODEL_PIECE_BYTES);
    uint8_t *buf = malloc(len);
    ssize_t got = buf ? pread(fd, buf, len, (off_t)offset) : -1;
    char *b64 = got == (ssize_t)len ? util_b64_encode(buf, len) : NULL;
    free(buf);
    if (!b64) {
        fprintf(stderr, "outpost model put: cannot read the file at %lld\n", (long long)offset);
        return EXIT_FAILURE_RUNTIME;
    }
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "sha256", sha);
    jsonx_add_int(req, "size", size);
    jsonx_add_int(req, "offset", offset);
    cJSON_AddStringToObject(req, "data", b64);
    free(b64);
    int rc = cli__request(c, req, "model_upload", &data);
    if (rc != EXIT_OK) return rc;
    *next = cli__count(data, "next_offset");
    *complete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(data, "complete"));
    return EXIT_OK;
}

/* The bytes up to the hub, in order, from wherever the hub says it stands. */
static int upload(cli *c, const char *path, const char *sha, int64_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "outpost model put: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    int64_t offset = 0, next = 0;
    int complete = 0, rc = EXIT_OK, restarts = 0;
    while (rc == EXIT_OK && !complete) {
        rc = upload_piece(c, fd, sha, size, offset, &next, &complete);
        if (rc == EXIT_OK && !complete && next <= offset && ++restarts > 3) {
            fprintf(stderr, "outpost model put: the hub keeps losing the upload\n");
            rc = EXIT_FAILURE_RUNTIME;
        }
        offset = next;
    }
    close(fd);
    return rc;
}

/* The lineage to send: --lineage's object with --metrics's as its metrics. NULL: none. */
static int build_lineage(const model_args *a, cJSON **out)
{
    char err[200];
    *out = NULL;
    if (!a->lineage && !a->metrics) return EXIT_OK;
    cJSON *lineage = a->lineage ? jsonx_parse(a->lineage, strlen(a->lineage), err, sizeof err)
                                : cJSON_CreateObject();
    cJSON *metrics =
        a->metrics ? jsonx_parse(a->metrics, strlen(a->metrics), err, sizeof err) : NULL;
    if (!lineage || (a->metrics && !metrics)) {
        fprintf(stderr, "outpost model put: --%s is not JSON: %s\n",
                lineage ? "metrics" : "lineage", err);
        cJSON_Delete(lineage);
        cJSON_Delete(metrics);
        return EXIT_USAGE;
    }
    if (metrics) {
        cJSON_DeleteItemFromObjectCaseSensitive(lineage, "metrics");
        cJSON_AddItemToObject(lineage, "metrics", metrics);
    }
    if (artifact_lineage_check(lineage, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost model put: %s\n", err);
        cJSON_Delete(lineage);
        return EXIT_USAGE;
    }
    *out = lineage;
    return EXIT_OK;
}

static int model_put(cli *c, const model_args *a)
{
    char sha[65];
    int64_t size;
    cJSON *lineage = NULL, *data = NULL;
    int rc = build_lineage(a, &lineage);
    if (rc == EXIT_OK) rc = hash_file(a->file, sha, &size);
    if (rc == EXIT_OK) rc = upload(c, a->file, sha, size);
    if (rc != EXIT_OK) {
        cJSON_Delete(lineage);
        return rc;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "name", a->name);
    cJSON_AddStringToObject(req, "sha256", sha);
    if (a->parent) jsonx_add_int(req, "parent", a->parent);
    if (a->data_class) cJSON_AddStringToObject(req, "data_class", a->data_class);
    if (a->origin) cJSON_AddStringToObject(req, "origin", a->origin);
    if (lineage) cJSON_AddItemToObject(req, "lineage", lineage);
    if ((rc = cli__request(c, req, "model_put", &data)) != EXIT_OK) return rc;
    if (c->json)
        cli__print_json(stdout, data);
    else
        printf("model %s version %lld (sha256 %s, %lld bytes)\n", a->name,
               (long long)cli__count(data, "version"), sha, (long long)size);
    return EXIT_OK;
}

/* ---------- list, show, rm ---------- */

static int model_list(cli *c, const model_args *a)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    if (a->name) cJSON_AddStringToObject(req, "name", a->name);
    if (a->all) cJSON_AddBoolToObject(req, "all", 1);
    int rc = cli__request(c, req, "model_list", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(data, "models"), *m;
    int w = cli__column_width(models, "name", "-", "NAME", 40);
    printf("%-*s %7s %12s  %-16s %s\n", w, "NAME", "VERSION", "BYTES", "SHA256", "CREATED");
    cJSON_ArrayForEach(m, models)
    {
        char when[32];
        printf("%-*s %7lld %12lld  %.16s %s%s\n", w, cli__text(m, "name", "-"),
               (long long)cli__count(m, "version"), (long long)cli__count(m, "size"),
               cli__text(m, "sha256", "-"),
               cli__fmt_time(cli__count(m, "created_at"), when, sizeof when),
               cli__count(m, "removed_at") ? " (removed)" : "");
    }
    return EXIT_OK;
}

/* The record's lineage, readably. */
static void print_lineage(const cJSON *lineage)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, lineage)
    {
        char *v = cJSON_PrintUnformatted(f);
        printf("  lineage.%-10s %s\n", f->string, v ? v : "?");
        free(v);
    }
}

/* The pooling rounds model_show answers with, readably. */
static void print_pooling(const cJSON *rounds)
{
    const cJSON *r, *j;
    cJSON_ArrayForEach(r, rounds)
    {
        printf("pooling round %lld (owner %s, by %s): %s, %lld version(s)\n",
               (long long)cli__count(r, "round"), cli__text(r, "owner", "?"),
               cli__text(r, "by", "?"), cli__text(r, "state", "?"),
               (long long)cli__count(r, "versions"));
        cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(r, "jobs"))
        {
            printf("  job %lld %-5s %-16s %-8s", (long long)cli__count(j, "job"),
                   cli__text(j, "mode", "?"), cli__text(j, "site", "?"),
                   cli__text(j, "outcome", "?"));
            if (cli__count(j, "version")) printf(" v%lld", (long long)cli__count(j, "version"));
            printf(" %s\n", cli__text(j, "detail", ""));
        }
    }
}

/* The rollbacks model_show answers with: which site went back, why, both MAEs. */
static void print_rollbacks(const cJSON *rollbacks)
{
    const cJSON *r;
    char when[32];
    cJSON_ArrayForEach(r, rollbacks)
    {
        double champion = 0, previous = 0;
        jsonx_num(r, "champion_mae", &champion);
        jsonx_num(r, "previous_mae", &previous);
        printf("rollback at %s %s (%s): v%lld -> v%lld, champion MAE %.1f s vs previous %.1f s"
               " on %lld held-out rows (%s), job %lld\n",
               cli__text(r, "site", "?"), cli__fmt_time(cli__count(r, "at"), when, sizeof when),
               cli__text(r, "trigger", "?"), (long long)cli__count(r, "from_version"),
               (long long)cli__count(r, "to_version"), champion, previous,
               (long long)cli__count(r, "heldout_rows"), cli__text(r, "reason", ""),
               (long long)cli__count(r, "job"));
    }
}

static int model_show(cli *c, const model_args *a)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "name", a->name);
    if (a->version) jsonx_add_int(req, "version", a->version);
    int rc = cli__request(c, req, "model_show", &data);
    if (rc != EXIT_OK) return rc;
    const char *record = cli__text(data, "record", "");
    int ok = artifact_verify(c->hub.hub_pk, ARTIFACT_RECORD_DOMAIN, record,
                             cli__text(data, "sig", "")) == OP_OK;
    cJSON *r = cJSON_Parse(record);
    if (c->json) {
        cJSON_AddBoolToObject(data, "verified", ok);
        if (r) cJSON_AddItemToObject(data, "fields", r);
        cli__print_json(stdout, data);
        return ok ? EXIT_OK : EXIT_AUDIT_FAILED;
    }
    printf("model %s version %lld\n", cli__text(r, "name", "?"),
           (long long)cli__count(r, "version"));
    static const char *keys[] = {"sha256", "created_by", "data_class", "origin", NULL};
    printf("  %-18s %lld bytes\n", "size", (long long)cli__count(r, "size"));
    for (int i = 0; keys[i]; i++)
        printf("  %-18s %s\n", keys[i], cli__text(r, keys[i], "-"));
    char when[32];
    printf("  %-18s %s\n", "created_at",
           cli__fmt_time(cli__count(r, "created_at"), when, sizeof when));
    if (cli__count(r, "parent"))
        printf("  %-18s %lld\n", "parent", (long long)cli__count(r, "parent"));
    print_lineage(cJSON_GetObjectItemCaseSensitive(r, "lineage"));
    char *held = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(data, "held_by"));
    printf("  %-18s %s\n", "held by", held ? held : "[]");
    free(held);
    if (cli__count(data, "removed_at")) printf("  removed\n");
    printf("signature: %s (hub %s)\n", ok ? "verified" : "INVALID", c->hub.hub_id);
    print_pooling(cJSON_GetObjectItemCaseSensitive(data, "pooling"));
    print_rollbacks(cJSON_GetObjectItemCaseSensitive(data, "rollbacks"));
    cJSON_Delete(r);
    return ok ? EXIT_OK : EXIT_AUDIT_FAILED;
}

/* pool: the hub drives a round of visits, then offers (docs/learning.md). */
static int model_pool(cli *c, const model_args *a)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "name", a->name);
    cJSON_AddStringToObject(req, "owner", a->owner);
    if (a->own) cJSON_AddStringToObject(req, "own", a->own);
    if (a->visits) jsonx_add_int(req, "visits", a->visits);
    if (a->rounds) jsonx_add_int(req, "rounds", a->rounds);
    if (a->deadline_s) jsonx_add_int(req, "deadline_s", a->deadline_s);
    int rc = cli__request(c, req, "model_pool", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    char *sites = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(data, "sites"));
    printf("pooling round %lld of %s: %s, sites %s (outpost model show %s follows it)\n",
           (long long)cli__count(data, "round"), a->name, cli__text(data, "state", "?"),
           sites ? sites : "[]", a->name);
    free(sites);
    return EXIT_OK;
}

/* rollback: a learn job at the site that takes it back to its previous champion. */
static int model_rollback(cli *c, const model_args *a)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "name", a->name);
    cJSON_AddStringToObject(req, "site", a->site);
    int rc = cli__request(c, req, "model_rollback", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    printf("rollback of %s at %s: job %lld (outpost model show %s shows it once the site has"
           " gone back)\n",
           a->name, a->site, (long long)cli__count(data, "job"), a->name);
    return EXIT_OK;
}

static int model_rm(cli *c, const model_args *a)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "name", a->name);
    if (a->version) jsonx_add_int(req, "version", a->version);
    int rc = cli__request(c, req, "model_rm", &data);
    if (rc == EXIT_OK)
        printf("removed %lld version(s) of %s\n", (long long)cli__count(data, "removed"), a->name);
    return rc;
}

int cli__cmd_model(cli *c, int argc, char **argv)
{
    model_args a = {0};
    int rc = parse_model_args(c, argc, argv, &a);
    if (rc != EXIT_OK || a.help) return rc;
    if (!strcmp(a.sub, "put")) return model_put(c, &a);
    if (!strcmp(a.sub, "list")) return model_list(c, &a);
    if (!strcmp(a.sub, "show")) return model_show(c, &a);
    if (!strcmp(a.sub, "pool")) return model_pool(c, &a);
    if (!strcmp(a.sub, "rollback")) return model_rollback(c, &a);
    return model_rm(c, &a);
}
