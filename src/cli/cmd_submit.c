/*
 * cmd_submit: `outpost submit`. Turns a spec file, or flags and a command
 * line, into one submit request (a spec, or an array of specs for --count),
 * sends it to the hub (or with --local to a site on this machine), and
 * with --wait follows the jobs to their end.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "core/jobspec.h"

#include <stdlib.h>
#include <string.h>

#define CLI_MAX_SPEC_BYTES (8 * 1024 * 1024)

/* The pieces of a spec given by flags, put together once every flag is read. */
typedef struct submit_build {
    cJSON *spec, *inputs, *outputs, *resources, *route_opts;
    const char *kind;
    int64_t count;
} submit_build;

enum {
    OPT_KIND = 1,
    OPT_NAME,
    OPT_ORIGIN,
    OPT_DATA_CLASS,
    OPT_INPUT,
    OPT_OUTPUT,
    OPT_CLASSES,
    OPT_CORES,
    OPT_MEMORY_MB,
    OPT_WALL_S,
    OPT_COUNT,
    OPT_LOCAL,
    OPT_WAIT,
    OPT_TIME_LIMIT,
    OPT_SEED,
    OPT_ITERATIONS,
    OPT_DETERMINISTIC,
};

static const struct option submit_options[] = {
    {"kind", required_argument, NULL, OPT_KIND},
    {"name", required_argument, NULL, OPT_NAME},
    {"origin", required_argument, NULL, OPT_ORIGIN},
    {"data-class", required_argument, NULL, OPT_DATA_CLASS},
    {"input", required_argument, NULL, OPT_INPUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"classes", required_argument, NULL, OPT_CLASSES},
    {"cores", required_argument, NULL, OPT_CORES},
    {"memory-mb", required_argument, NULL, OPT_MEMORY_MB},
    {"wall-s", required_argument, NULL, OPT_WALL_S},
    {"count", required_argument, NULL, OPT_COUNT},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"quiet", no_argument, NULL, 'q'},
    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"iterations", required_argument, NULL, OPT_ITERATIONS},
    {"deterministic", no_argument, NULL, OPT_DETERMINISTIC},
    {NULL, 0, NULL, 0},
};

/* Reads an input file and adds it to inputs as {name, sha256, data_b64}. */
static int attach_input(cJSON *inputs, const char *path)
{
    char *bytes = NULL;
    size_t len = 0;
    int rc = os_read_file(path, JOBSPEC_MAX_INPUT_BYTES, &bytes, &len);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost submit: cannot attach %s: %s (limit %d bytes)\n", path,
                op_strerror(rc), JOBSPEC_MAX_INPUT_BYTES);
        return EXIT_USAGE;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char hash[65];
    util_sha256_hex(bytes, len, hash);
    char *b64 = util_b64_encode(bytes, len);
    free(bytes);
    cJSON *in = cJSON_CreateObject();
    if (!b64 || !in) {
        free(b64);
        cJSON_Delete(in);
        return EXIT_FAILURE_RUNTIME;
    }
    cJSON_AddStringToObject(in, "name", base);
    cJSON_AddStringToObject(in, "sha256", hash);
    cJSON_AddStringToObject(in, "data_b64", b64);
    free(b64);
    cJSON_AddItemToArray(inputs, in);
    return EXIT_OK;
}

/* Standard input, up to CLI_MAX_SPEC_BYTES, NUL-terminated. */
static int read_stdin(char **text, size_t *len)
{
    size_t cap = 1 << 16;
    *len = 0;
    *text = malloc(cap);
    while (*text) {
        size_t got = fread(*text + *len, 1, cap - *len - 1, stdin);
        *len += got;
        if (got == 0) break;
        if (*len + 1 == cap) {
            if (cap >= CLI_MAX_SPEC_BYTES) break;
            char *grown = realloc(*text, cap * 2);
            if (!grown) break;
            *text = grown;
            cap *= 2;
        }
    }
    if (*text) (*text)[*len] = '\0';
    return *text ? OP_OK : OP_ENOMEM;
}

/* A spec file ("-": standard input) parsed as JSON; NULL with the reason printed. */
static cJSON *read_spec(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int r = strcmp(path, "-") == 0 ? read_stdin(&text, &len)
                                   : os_read_file(path, CLI_MAX_SPEC_BYTES, &text, &len);
    if (r != OP_OK) {
        fprintf(stderr, "outpost submit: cannot read %s: %s\n", path, op_strerror(r));
        free(text);
        return NULL;
    }
    char why[160] = "";
    cJSON *spec = jsonx_parse(text, len, why, sizeof why);
    free(text);
    if (!spec) fprintf(stderr, "outpost submit: %s: %s\n", path, why);
    return spec;
}

/* --classes pod,car: the site_classes array. */
static void add_classes(cJSON *spec, const char *list)
{
    cJSON *arr = cJSON_AddArrayToObject(spec, "site_classes");
    const char *p = list;
    while (arr && *p) {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
            cJSON_AddItemToArray(arr, cJSON_CreateString(name));
        }
        p += len;
        if (*p == ',') p++;
    }
}

/* --cores, --memory-mb, --wall-s, --count: a positive integer. */
static int number_option(submit_build *b, int code, const char *value)
{
    static const char *flag[] = {[OPT_CORES] = "--cores",
                                 [OPT_MEMORY_MB] = "--memory-mb",
                                 [OPT_WALL_S] = "--wall-s",
                                 [OPT_COUNT] = "--count"};
    static const char *field[] = {
        [OPT_CORES] = "cores", [OPT_MEMORY_MB] = "memory_mb", [OPT_WALL_S] = "wall_s"};
    int64_t n;
    if (util_parse_i64(value, 1, 100000000, &n) != OP_OK) {
        fprintf(stderr, "outpost submit: %s needs a positive integer\n", flag[code]);
        return EXIT_USAGE;
    }
    if (code == OPT_COUNT)
        b->count = n;
    else
        jsonx_add_int(b->resources, field[code], n);
    return EXIT_OK;
}

/* --time-limit S, --seed N, --iterations N: a route job's options, numbers >= 0. */
static int route_option(submit_build *b, int code, const char *value)
{
    static const char *const flags[] = {"--time-limit", "--seed", "--iterations"};
    static const char *const keys[] = {"time_limit_s", "seed", "iterations"};
    int k = code == OPT_TIME_LIMIT ? 0 : code == OPT_SEED ? 1 : 2;
    const char *flag = flags[k];
    double num;
    if (util_parse_double(value, &num) != OP_OK || !(num >= 0)) {
        fprintf(stderr, "outpost submit: %s needs a number\n", flag);
        return EXIT_USAGE;
    }
    if (!b->route_opts) b->route_opts = cJSON_CreateObject();
    cJSON_AddNumberToObject(b->route_opts, keys[k], num);
    return EXIT_OK;
}

/* One of submit's own options. */
static int submit_option(submit_build *b, cli_submit *s, int code, const char *value)
{
    switch (code) {
    case OPT_KIND:
        b->kind = value;
        return EXIT_OK;
    case OPT_NAME:
        cJSON_AddStringToObject(b->spec, "name", value);
        return EXIT_OK;
    case OPT_ORIGIN:
        cJSON_AddStringToObject(b->spec, "origin", value);
        return EXIT_OK;
    case OPT_DATA_CLASS:
        cJSON_AddStringToObject(b->spec, "data_class", value);
        return EXIT_OK;
    case OPT_INPUT:
        return attach_input(b->inputs, value);
    case OPT_OUTPUT:
        cJSON_AddItemToArray(b->outputs, cJSON_CreateString(value));
        return EXIT_OK;
    case OPT_CLASSES:
        add_classes(b->spec, value);
        return EXIT_OK;
    case OPT_CORES:
    case OPT_MEMORY_MB:
    case OPT_WALL_S:
    case OPT_COUNT:
        return number_option(b, code, value);
    case OPT_TIME_LIMIT:
    case OPT_SEED:
    case OPT_ITERATIONS:
        return route_option(b, code, value);
    case OPT_DETERMINISTIC:
        cJSON_AddBoolToObject(b->spec, "deterministic", 1);
        return EXIT_OK;
    case OPT_LOCAL:
        s->local = value;
        return EXIT_OK;
    case OPT_WAIT:
        s->wait = 1;
        return EXIT_OK;
    case 'q':
        s->quiet = 1;
        return EXIT_OK;
    default:
        return EXIT_USAGE;
    }
}

/* Moves item into obj under key when it holds something, and forgets it. */
static void move_if_any(cJSON *obj, const char *key, cJSON **item)
{
    if (*item && cJSON_GetArraySize(*item) > 0) {
        cJSON_AddItemToObject(obj, key, *item);
        *item = NULL;
    }
}

/* The request from the flags: a spec, or --count copies of it. Takes b's pieces. */
static cJSON *request_from_flags(submit_build *b, char **command, int n_command)
{
    if (n_command > 0) {
        cJSON *arr = cJSON_AddArrayToObject(b->spec, "command");
        for (int i = 0; i < n_command; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(command[i]));
        if (!b->kind) b->kind = "exec";
    }
    if (!b->kind) {
        fprintf(stderr, "outpost submit: give a spec FILE, or -- PROGRAM ARGS, or --kind noop\n");
        return NULL;
    }
    cJSON_AddStringToObject(b->spec, "kind", b->kind);
    if (b->route_opts) cJSON_AddItemToObject(b->spec, "route", b->route_opts);
    b->route_opts = NULL;
    move_if_any(b->spec, "resources", &b->resources);
    move_if_any(b->spec, "inputs", &b->inputs);
    move_if_any(b->spec, "outputs", &b->outputs);
    cJSON *req = cJSON_CreateObject();
    if (!req) return NULL;
    if (b->count == 1) {
        cJSON_AddItemToObject(req, "spec", b->spec);
    } else {
        cJSON *specs = cJSON_AddArrayToObject(req, "specs");
        for (int64_t k = 0; k < b->count; k++)
            cJSON_AddItemToArray(specs, cJSON_Duplicate(b->spec, 1));
        cJSON_Delete(b->spec);
    }
    b->spec = NULL;
    return req;
}

/*
 * The positional arguments: a route job's instances (attached as inputs),
 * else at most one spec FILE or "-", which then is the whole request.
 */
static int positionals(submit_build *b, char **args, int n, cJSON **from_file)
{
    int is_route = b->kind && strcmp(b->kind, "route") == 0;
    if (b->route_opts && !is_route) {
        fprintf(stderr,
                "outpost submit: --time-limit, --seed and --iterations are for --kind route\n");
        return EXIT_USAGE;
    }
    for (int i = 0; is_route && i < n; i++) {
        int rc = attach_input(b->inputs, args[i]);
        if (rc != EXIT_OK) return rc;
    }
    if (is_route || n == 0) return EXIT_OK;
    if (n > 1) {
        fprintf(stderr, "outpost submit: one spec FILE at a time (an array holds several)\n");
        return EXIT_USAGE;
    }
    *from_file = read_spec(args[0]);
    return *from_file ? EXIT_OK : EXIT_USAGE;
}

static void build_free(submit_build *b)
{
    cJSON_Delete(b->spec);
    cJSON_Delete(b->inputs);
    cJSON_Delete(b->outputs);
    cJSON_Delete(b->resources);
    cJSON_Delete(b->route_opts);
}

/* The index of the first "--" (what follows is the program), argc when there is none. */
static int program_start(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) return i;
    return argc;
}

int cli__submit_parse(cli *c, int argc, char **argv, cli_submit *s)
{
    memset(s, 0, sizeof *s);
    submit_build b = {.spec = cJSON_CreateObject(),
                      .inputs = cJSON_CreateArray(),
                      .outputs = cJSON_CreateArray(),
                      .resources = cJSON_CreateObject(),
                      .count = 1};
    cJSON *from_file = NULL;
    int rc = b.spec && b.inputs && b.outputs && b.resources ? EXIT_OK : EXIT_FAILURE_RUNTIME;
    int dashes = program_start(argc, argv), code;
    while (rc == EXIT_OK && (code = cli__getopt(c, dashes, argv, "q", submit_options)) != -1) {
        if (code == 'h') {
            cli__usage(stdout, "submit");
            s->help = 1;
            goto out;
        }
        rc = code == '?' ? cli__usage_error(c) : submit_option(&b, s, code, optarg);
    }
    if (rc == EXIT_OK) rc = positionals(&b, argv + optind, dashes - optind, &from_file);
    if (rc != EXIT_OK) goto out;
    if (from_file) {
        s->req = cJSON_CreateObject();
        cJSON_AddItemToObject(s->req, cJSON_IsArray(from_file) ? "specs" : "spec", from_file);
        from_file = NULL;
    } else {
        int n_command = dashes < argc ? argc - dashes - 1 : 0;
        s->req = request_from_flags(&b, argv + dashes + 1, n_command);
        if (!s->req) rc = cli__usage_error(c);
    }
out:
    build_free(&b);
    cJSON_Delete(from_file);
    return rc;
}

/* Asks the hub for the jobs whose end no notification has reported yet. */
static void poll_unfinished(cli *c)
{
    for (int i = 0; i < c->n_wait; i++) {
        if (c->wait_state[i][0]) continue;
        cJSON *req = cJSON_CreateObject(), *data = NULL;
        jsonx_add_int(req, "id", c->wait_ids[i]);
        if (cli__request(c, req, "job", &data) != EXIT_OK) continue;
        const char *st = jsonx_str(cJSON_GetObjectItemCaseSensitive(data, "job"), "state");
        if (st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
            snprintf(c->wait_state[i], sizeof c->wait_state[i], "%s", st);
            c->n_done++;
        }
    }
}

/* submit --wait: waits for every job's final state and prints it; exit 0 if all succeeded. */
static int wait_done(cli *c, const cJSON *ids)
{
    int n = cJSON_GetArraySize(ids);
    c->wait_ids = calloc((size_t)n + 1, sizeof *c->wait_ids);
    c->wait_state = calloc((size_t)n + 1, sizeof *c->wait_state);
    if (!c->wait_ids || !c->wait_state) return EXIT_FAILURE_RUNTIME;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) c->wait_ids[c->n_wait++] = (int64_t)id->valuedouble;
    /* A job may already have finished before the ids arrived: ask for those. */
    int64_t next_poll = os_mono_ms() + 2000;
    while (c->n_done < c->n_wait && !runctl_stopping()) {
        bus_loop(c->bus, 50);
        if (os_mono_ms() < next_poll) continue;
        next_poll = os_mono_ms() + 2000;
        poll_unfinished(c);
    }
    int all_ok = c->n_done == c->n_wait;
    for (int i = 0; i < c->n_wait; i++) {
        printf("%lld %s\n", (long long)c->wait_ids[i],
               c->wait_state[i][0] ? c->wait_state[i] : "unknown");
        if (strcmp(c->wait_state[i], "succeeded") != 0) all_ok = 0;
    }
    return all_ok ? EXIT_OK : EXIT_REJECTED;
}

int cli__cmd_submit(cli *c, int argc, char **argv)
{
    cli_submit s;
    int rc = cli__submit_parse(c, argc, argv, &s);
    if (rc != EXIT_OK || s.help) return rc;
    if (s.local) return cli__local_submit(s.local, s.req, s.quiet);
    c->waiting = s.wait;
    if (s.wait) cJSON_AddBoolToObject(s.req, "notify", 1);
    cJSON *data = NULL;
    if ((rc = cli__request(c, s.req, "submit", &data)) != EXIT_OK) return rc;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(data, "ids"), *id;
    if (s.wait) return wait_done(c, ids);
    if (c->json) {
        cli__print_json(stdout, data);
        return EXIT_OK;
    }
    cJSON_ArrayForEach(id, ids)
        printf(s.quiet ? "%lld\n" : "submitted job %lld\n", (long long)id->valuedouble);
    return EXIT_OK;
}
