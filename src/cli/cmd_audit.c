/*
 * cmd_audit: the hub's tamper-evident log seen from the CLI. `outpost audit
 * verify` recomputes it from the hub's database file (no hub process), or a
 * site's own from its site.db (--site-dir, with its learn entries);
 * `prove` fetches an inclusion proof and checks it here with the hub's key;
 * `show`, `tail` and `head` read it; `explain JOB` tells a job's decisions
 * as the log recorded them.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "core/audit.h"
#include "io/auditlog.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every option of every audit subcommand; which ones a subcommand accepts is checked after. */
typedef struct audit_args {
    const char *sub;
    int64_t index;                    /* prove */
    const char *db, *trusted_path;    /* verify */
    const char *site_dir, *site_key;  /* verify a site's own log */
    int64_t from, limit, job;         /* show, tail */
    const char *kind, *site;          /* show, tail */
    int verify_opts, show_opts, help; /* given: any verify option, any show option, --help */
} audit_args;

static int parse_audit_args(cli *c, int argc, char **argv, audit_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},       {"trusted-head", required_argument, NULL, 't'},
        {"job", required_argument, NULL, 'j'},      {"site", required_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},     {"from", required_argument, NULL, 'f'},
        {"limit", required_argument, NULL, 'l'},    {"site-dir", required_argument, NULL, 'D'},
        {"site-key", required_argument, NULL, 'K'}, {NULL, 0, NULL, 0}};
    int code, ok = 1;
    while (ok && (code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        a->verify_opts |= code == 'd' || code == 't' || code == 'D' || code == 'K';
        a->show_opts |= code == 'j' || code == 's' || code == 'k' || code == 'f' || code == 'l';
        switch (code) {
        case 'd':
            a->db = optarg;
            break;
        case 't':
            a->trusted_path = optarg;
            break;
        case 'D':
        case 'K':
            *(code == 'D' ? &a->site_dir : &a->site_key) = optarg;
            break;
        case 'j':
            ok = util_parse_i64(optarg, 1, INT64_MAX, &a->job) == OP_OK;
            break;
        case 's':
            a->site = optarg;
            break;
        case 'k':
            a->kind = optarg;
            break;
        case 'f':
            ok = util_parse_i64(optarg, 0, INT64_MAX, &a->from) == OP_OK;
            break;
        case 'l':
            ok = util_parse_i64(optarg, 1, 1000, &a->limit) == OP_OK;
            break;
        case 'h':
            cli__usage(stdout, "audit");
            a->help = 1;
            return EXIT_OK;
        default:
            ok = 0;
        }
    }
    if (!ok || optind >= argc) return cli__usage_error(c);
    a->sub = argv[optind];
    int is_verify = !strcmp(a->sub, "verify"), is_prove = !strcmp(a->sub, "prove");
    int is_show = !strcmp(a->sub, "show") || !strcmp(a->sub, "tail");
    int n_args = argc - optind - 1;
    if ((a->verify_opts && !is_verify) || (a->show_opts && !is_show) ||
        n_args != (is_prove ? 1 : 0))
        return cli__usage_error(c);
    if (is_prove && util_parse_i64(argv[optind + 1], 0, INT64_MAX, &a->index) != OP_OK)
        return cli__usage_error(c);
    if (!is_verify && !is_prove && !is_show && strcmp(a->sub, "head") != 0)
        return cli__usage_error(c);
    return EXIT_OK;
}

/* The proof's hashes and the signed head it ends in. EXIT_OK or EXIT_REJECTED (printed). */
static int read_proof(const cJSON *data, uint8_t proof[AUDIT_MAX_PROOF][32], size_t *len,
                      audit_sth *head)
{
    const cJSON *p;
    *len = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(data, "proof"))
    {
        if (*len == AUDIT_MAX_PROOF || !cJSON_IsString(p) ||
            util_unhex(p->valuestring, proof[*len], 32) != OP_OK) {
            fprintf(stderr, "outpost audit: malformed proof from the hub\n");
            return EXIT_REJECTED;
        }
        (*len)++;
    }
    if (!jsonx_str(data, "entry") ||
        auditlog_head_from_json(cJSON_GetObjectItemCaseSensitive(data, "head"), head) != OP_OK) {
        fprintf(stderr, "outpost audit: malformed proof from the hub\n");
        return EXIT_REJECTED;
    }
    return EXIT_OK;
}

/* audit prove N: checked here with the hub's public key alone, as any third party can. */
static int audit_prove(cli *c, int64_t index)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "index", index);
    int rc = cli__request(c, req, "audit_prove", &data);
    if (rc != EXIT_OK) return rc;
    audit_sth head;
    uint8_t leaf[32], proof[AUDIT_MAX_PROOF][32];
    size_t len = 0;
    if ((rc = read_proof(data, proof, &len, &head)) != EXIT_OK) return rc;
    const char *entry = jsonx_str(data, "entry");
    audit_leaf_hash(entry, strlen(entry), leaf);
    int ok = audit_sth_verify(c->hub.hub_pk, &head) == OP_OK &&
             audit_verify_inclusion(leaf, (uint64_t)index, head.size, (const uint8_t(*)[32])proof,
                                    len, head.root) == OP_OK;
    cli__print_json(stdout, data);
    if (!ok) {
        fprintf(stderr, "outpost audit: the proof does NOT verify against the hub's key\n");
        return EXIT_AUDIT_FAILED;
    }
    fprintf(stderr,
            "verified: entry %lld is in the log of %llu entries whose head hub %s signed "
            "(%zu hashes)\n",
            (long long)index, (unsigned long long)head.size, c->hub.hub_id, len);
    return EXIT_OK;
}

static void print_entry(const cJSON *e)
{
    char tbuf[16];
    printf("#%-6lld %s  %-12s %-16s %s\n", (long long)cli__count(e, "i"),
           cli__fmt_time(cli__count(e, "ts"), tbuf, sizeof tbuf), cli__text(e, "kind", "?"),
           cli__text(e, "subject", ""), cli__text(e, "body", ""));
}

/* audit tail starts 20 entries before the log's end. */
static int tail_start(cli *c, int64_t *from)
{
    cJSON *data = NULL, *req = cJSON_CreateObject();
    jsonx_add_int(req, "limit", 1);
    int rc = cli__request(c, req, "audit_entries", &data);
    if (rc != EXIT_OK) return rc;
    int64_t size = cli__count(data, "size");
    *from = size > 20 ? size - 20 : 0;
    return EXIT_OK;
}

/* One page of entries from *from on; *from moves past the last one printed. */
static int show_page(cli *c, const audit_args *a, const char *subject, int64_t *from)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "start", *from); /* "from" is the envelope's sender */
    jsonx_add_int(req, "limit", a->limit);
    if (subject[0]) cJSON_AddStringToObject(req, "subject", subject);
    if (a->kind) cJSON_AddStringToObject(req, "kind", a->kind);
    int rc = cli__request(c, req, "audit_entries", &data);
    if (rc != EXIT_OK) return rc;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(data, "entries"))
    {
        if (c->json) {
            char *text = cJSON_PrintUnformatted(e);
            if (text) puts(text);
            free(text);
        } else {
            print_entry(e);
        }
        *from = cli__count(e, "i") + 1;
    }
    fflush(stdout);
    return EXIT_OK;
}

/* audit show (one page), audit tail (the last 20, then new entries every second). */
static int audit_show(cli *c, const audit_args *a, int follow)
{
    char subject[80] = "";
    int64_t from = a->from;
    if (a->job) snprintf(subject, sizeof subject, "job:%lld", (long long)a->job);
    if (a->site) snprintf(subject, sizeof subject, "site:%.70s", a->site);
    if (follow) {
        int rc = tail_start(c, &from);
        if (rc != EXIT_OK) return rc;
        runctl_install();
    }
    do {
        int rc = show_page(c, a, subject, &from);
        if (rc != EXIT_OK) return rc;
        if (follow) cli__pause(c, 1000);
    } while (follow && !runctl_stopping());
    return EXIT_OK;
}

/*
 * The hub's cli.conf and database for verify: --db, else the store cli.conf
 * names, else <hub-dir>/hub.db. EXIT_OK or EXIT_USAGE (printed).
 */
static int verify_paths(const cli *c, const audit_args *a, char *conf_path, char *db_path,
                        size_t len)
{
    const char *hub_dir = cli__hub_dir(c);
    if (!hub_dir && !c->hub_conf) {
        fprintf(stderr,
                "outpost audit verify: pass --hub-dir DIR (or --hub-conf FILE --db FILE)\n");
        return EXIT_USAGE;
    }
    if (c->hub_conf)
        snprintf(conf_path, len, "%s", c->hub_conf);
    else
        snprintf(conf_path, len, "%s/cli.conf", hub_dir);
    return cli__hub_store(c, a->db, conf_path, db_path, len);
}

/* A head kept elsewhere (printed by `outpost audit head`). EXIT_OK or EXIT_USAGE (printed). */
static int read_trusted_head(const char *path, audit_sth *trusted)
{
    char *text = NULL;
    cJSON *o = NULL;
    int ok = os_read_file(path, 64 * 1024, &text, NULL) == OP_OK && (o = cJSON_Parse(text)) &&
             auditlog_head_from_json(o, trusted) == OP_OK;
    free(text);
    cJSON_Delete(o);
    if (ok) return EXIT_OK;
    fprintf(stderr, "outpost audit verify: %s is not a head printed by `outpost audit head`\n",
            path);
    return EXIT_USAGE;
}

/*
 * audit verify runs locally on the hub's database file and needs no broker:
 * it recomputes the whole tree and checks every signed head with the hub's
 * public key (from cli.conf), and a head kept elsewhere if given.
 */
int cli__verify_audit_db(const char *conf_path, const char *db_path, const char *trusted_path)
{
    char err[512], finding[512];
    opclient_hub hub;
    if (opclient_load_hub(conf_path, &hub, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_USAGE;
    }
    audit_sth trusted;
    int rc;
    if (trusted_path && (rc = read_trusted_head(trusted_path, &trusted)) != EXIT_OK) return rc;
    auditlog *log = NULL;
    if ((!store_is_url(db_path) && access(db_path, R_OK) != 0) ||
        auditlog_open(db_path, &log) != OP_OK) {
        fprintf(stderr, "outpost audit verify: cannot open %s (the lines above say why)\n",
                db_path);
        return EXIT_FAILURE_RUNTIME;
    }
    audit_hash_accelerate(1);
    int64_t t0 = os_mono_us();
    rc = auditlog_verify(log, hub.hub_pk, trusted_path ? &trusted : NULL, finding, sizeof finding);
    double seconds = (double)(os_mono_us() - t0) / 1e6;
    uint64_t size = auditlog_size(log);
    auditlog_close(log);
    if (rc != OP_OK) {
        printf("audit log FAILED verification: %s\n", finding);
        return EXIT_AUDIT_FAILED;
    }
    printf("audit log OK: %llu entries recomputed, every signed head matches (%.2f s)%s\n",
           (unsigned long long)size, seconds, trusted_path ? "; trusted head matches" : "");
    return EXIT_OK;
}

/* The site's public key: --site-key, else its identity.pub. EXIT_OK or EXIT_USAGE (printed). */
static int site_key(const audit_args *a, uint8_t pk[32], int *from_file)
{
    char path[PATH_MAX], *text = NULL, hex[65] = "";
    *from_file = !a->site_key;
    if (a->site_key) {
        snprintf(hex, sizeof hex, "%s", a->site_key);
    } else if (util_fmt(path, sizeof path, "%s/identity/identity.pub", a->site_dir) == OP_OK &&
               os_read_file(path, 256, &text, NULL) == OP_OK) {
        snprintf(hex, sizeof hex, "%.64s", text);
    }
    free(text);
    if (strlen(hex) == 64 && util_unhex(hex, pk, 32) == OP_OK) return EXIT_OK;
    fprintf(stderr, "outpost audit verify: %s\n",
            a->site_key ? "--site-key: the site's public key, 64 hex digits"
                        : "no DIR/identity/identity.pub: pass --site-key HEX");
    return EXIT_USAGE;
}

/* The site's learn-* entries: what it adopted, rejected, visited and rolled back. */
static void print_learn_entries(auditlog *log)
{
    uint64_t size = auditlog_size(log), shown = 0;
    uint8_t leaf[32];
    for (uint64_t i = 0; i < size; i++) {
        char *text = NULL;
        if (auditlog_entry(log, i, &text, leaf) != OP_OK) continue;
        cJSON *e = cJSON_Parse(text), *body = NULL;
        const char *kind = jsonx_str(e, "kind");
        if (kind && !strncmp(kind, "learn-", 6)) {
            body = cJSON_Parse(jsonx_str(e, "body") ? jsonx_str(e, "body") : "");
            printf("  %llu %-15s %s\n", (unsigned long long)i, kind,
                   jsonx_str(body, "detail") ? jsonx_str(body, "detail") : "");
            shown++;
        }
        cJSON_Delete(body);
        cJSON_Delete(e);
        free(text);
    }
    printf("learn entries: %llu\n", (unsigned long long)shown);
}

/*
 * A site's own log, offline: every entry recomputed, every head it signed
 * checked with its key, then its learn entries listed. A key read from the
 * site's own directory proves the log is whole and self-consistent, not
 * who wrote it; the pubkey the hub enrolled (its "enrollment" audit entry)
 * or a head kept elsewhere (--trusted-head) does.
 */
static int verify_site(const audit_args *a)
{
    char db_path[PATH_MAX], finding[512];
    uint8_t pk[32];
    audit_sth trusted;
    int from_file, rc = site_key(a, pk, &from_file);
    if (rc == EXIT_OK && a->trusted_path) rc = read_trusted_head(a->trusted_path, &trusted);
    if (rc != EXIT_OK) return rc;
    auditlog *log = NULL;
    if (util_fmt(db_path, sizeof db_path, "%s/site.db", a->site_dir) != OP_OK ||
        access(db_path, R_OK) != 0 || auditlog_open(db_path, &log) != OP_OK) {
        fprintf(stderr, "outpost audit verify: cannot open %s/site.db\n", a->site_dir);
        return EXIT_FAILURE_RUNTIME;
    }
    rc = auditlog_verify(log, pk, a->trusted_path ? &trusted : NULL, finding, sizeof finding);
    if (rc != OP_OK) {
        printf("site audit log FAILED verification: %s\n", finding);
        auditlog_close(log);
        return EXIT_AUDIT_FAILED;
    }
    printf("site audit log OK: %llu entries recomputed, every signed head matches (key %s)%s\n",
           (unsigned long long)auditlog_size(log),
           from_file ? "from the site's identity.pub" : "given",
           a->trusted_path ? "; trusted head matches" : "");
    print_learn_entries(log);
    auditlog_close(log);
    return EXIT_OK;
}

static int audit_verify(const cli *c, const audit_args *a)
{
    if (a->site_dir) return verify_site(a);
    if (a->site_key) {
        fprintf(stderr, "outpost audit verify: --site-key goes with --site-dir\n");
        return EXIT_USAGE;
    }
    char conf_path[PATH_MAX], db_path[PATH_MAX];
    int rc = verify_paths(c, a, conf_path, db_path, PATH_MAX);
    if (rc != EXIT_OK) return rc;
    return cli__verify_audit_db(conf_path, db_path, a->trusted_path);
}

int cli__cmd_audit(cli *c, int argc, char **argv)
{
    audit_args a = {.limit = 50};
    int rc = parse_audit_args(c, argc, argv, &a);
    if (rc != EXIT_OK || a.help) return rc;
    if (!strcmp(a.sub, "verify")) return audit_verify(c, &a);
    if (!strcmp(a.sub, "prove")) return audit_prove(c, a.index);
    if (!strcmp(a.sub, "show")) return audit_show(c, &a, 0);
    if (!strcmp(a.sub, "tail")) return audit_show(c, &a, 1);
    cJSON *data = NULL;
    rc = cli__request(c, cJSON_CreateObject(), "audit_head", &data);
    if (rc == EXIT_OK) cli__print_json(stdout, cJSON_GetObjectItemCaseSensitive(data, "head"));
    return rc;
}

/* One decision of explain: entry number, time, attempt, kind, site and detail. */
static void print_decision(const cJSON *e)
{
    char tbuf[16];
    const char *kind = cli__text(e, "kind", "?");
    cJSON *body = jsonx_str(e, "body") ? cJSON_Parse(jsonx_str(e, "body")) : NULL;
    const char *site = jsonx_str(body, "site");
    const char *detail = jsonx_str(body, "detail");
    printf("  #%-6lld %s  attempt %lld  %-12s %s%s%s\n", (long long)cli__count(e, "i"),
           cli__fmt_time(cli__count(e, "ts"), tbuf, sizeof tbuf),
           (long long)cli__count(body, "attempt"), kind, site ? site : "",
           site && detail ? ": " : "", detail ? detail : "");
    cJSON_Delete(body);
}

/*
 * explain JOB: the job's decisions as the audit log recorded them, each with
 * its entry number (which `outpost audit prove` can prove).
 */
int cli__cmd_explain(cli *c, int argc, char **argv)
{
    int64_t id;
    int help;
    int rc = cli__job_id_only(c, argc, argv, &id, &help);
    if (rc != EXIT_OK || help) return rc;
    char subject[40];
    snprintf(subject, sizeof subject, "job:%lld", (long long)id);
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "subject", subject);
    jsonx_add_int(req, "limit", 1000);
    if ((rc = cli__request(c, req, "audit_entries", &data)) != EXIT_OK) return rc;
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(data, "entries");
    if (cJSON_GetArraySize(entries) == 0) {
        fprintf(stderr, "outpost explain: the audit log has nothing about job %lld\n",
                (long long)id);
        return EXIT_NOT_FOUND;
    }
    if (c->json) {
        cli__print_json(stdout, entries);
        return EXIT_OK;
    }
    printf(
        "job %lld, from the audit log (entry numbers can be proven with `outpost audit prove`):\n",
        (long long)id);
    const cJSON *e, *last = NULL;
    cJSON_ArrayForEach(e, entries)
    {
        print_decision(e);
        last = e;
    }
    const char *last_kind = cli__text(last, "kind", "?");
    if (!strcmp(last_kind, "submitted") || !strcmp(last_kind, "requeued"))
        printf("  not running yet: see `outpost job %lld` for the scheduler's latest reason\n",
               (long long)id);
    return EXIT_OK;
}
