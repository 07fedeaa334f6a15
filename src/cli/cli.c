#include "cli/cli.h"

#include "base/conf.h"
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "core/audit.h"
#include "core/jobspec.h"
#include "core/policy.h"
#include "io/auditlog.h"
#include "io/bus.h"
#include "io/opclient.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLI_MAX_SPEC_BYTES (8 * 1024 * 1024)

typedef struct cli {
    const char *local_socket; /* submit --local: the site's socket, no hub involved */
    ident identity;
    opclient_hub hub;
    msg_window hub_window;
    bus *bus;
    int timeout_ms;
    int json;
    char rid[40];
    cJSON *response;
    msg_stats msg;
    int waiting; /* submit --wait: collecting "done" notifications */
    int64_t *wait_ids;
    char (*wait_state)[16];
    int n_wait, n_done;
} cli;

static const struct {
    const char *name;
    const char *summary;
} commands[] = {
    {"token", "token create --class pod|car|dc   one-time join token for a new site"},
    {"submit", "submit FILE|- | submit [flags] -- CMD ARGS   queue jobs"},
    {"jobs", "jobs [--state S] [--limit N]       list jobs"},
    {"job", "job ID                             status, attempts, where and why"},
    {"result", "result ID [--save DIR]             outputs of a finished job"},
    {"sites", "sites                              fleet: class, capacity, power, heartbeat"},
    {"watch", "watch [--until-done]               live progress per site"},
    {"cancel", "cancel ID                          cancel a job"},
    {"stats", "stats                              counters: messages rejected, results"},
    {"audit", "audit verify|prove N|show|tail|head  the hub's tamper-evident log"},
    {"explain", "explain JOB                        why the job ran where it ran (from the log)"},
    {"approve", "approve JOB                        let a job that policy holds for approval run"},
    {"policy", "policy check FILE | show | diff FILE | set FILE   the hub's governance rules"},
    {"operator-key", "operator-key                       print this operator's public key"},
    {"leave", "leave SITE_DIR [--grace S]         a site's owner unplugs: hand its jobs back"},
    {"power", "power SITE_DIR [--watts W] [--price P] [--carbon C] [--dr-watts W --dr-for S]\n"
              "        [--departure-in S | --no-departure]   set a site's power signals"},
};

int cli_is_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0) return 1;
    return 0;
}

void cli_print_commands(void)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  outpost %s\n", commands[i].summary);
}

static void common_help(void)
{
    printf("\nCommon options (before or after the command's own):\n"
           "  --hub-dir DIR     the hub's data dir: uses DIR/cli.conf and DIR/admin\n"
           "                    (default $OUTPOST_HUB_DIR)\n"
           "  --hub-conf FILE   hub address and key (default DIR/cli.conf)\n"
           "  --identity DIR    operator key dir (default DIR/admin, else ~/.outpost)\n"
           "  --timeout MS      how long to wait for the hub (default 10000)\n"
           "  --json            print the hub's JSON answer\n"
           "Exit codes: 0 ok, 2 bad usage, 4 not found, 5 hub unreachable, 6 rejected.\n");
}

/* ---------- connection ---------- */

static int lookup_hub(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    cli *c = ctx;
    if (strcmp(kid, c->hub.hub_id) != 0) return OP_EUNKNOWN;
    *pk = c->hub.hub_pk;
    *window = &c->hub_window;
    return OP_OK;
}

static void on_message(void *ctx, const char *topic, const void *payload, size_t len,
                       const char *kid, const char *sig)
{
    cli *c = ctx;
    cJSON *body = NULL;
    msg_header hdr;
    char reason[256];
    if (msg_open(topic, payload, len, kid, sig, lookup_hub, c, os_now_ms(), 120000, &body, &hdr,
                 &c->msg, reason, sizeof reason) != OP_OK) {
        log_warn("cli", "ignored: %s", reason);
        return;
    }
    const char *rid = jsonx_str(body, "rid");
    if (strcmp(hdr.type, "done") == 0) {
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(body, "jobs"))
        {
            int64_t job_id;
            if (!c->waiting || jsonx_int(d, "job", 1, INT64_MAX, &job_id) != OP_OK) continue;
            for (int i = 0; i < c->n_wait; i++)
                if (c->wait_ids[i] == job_id && !c->wait_state[i][0]) {
                    snprintf(c->wait_state[i], sizeof c->wait_state[i], "%s",
                             jsonx_str(d, "state") ? jsonx_str(d, "state") : "?");
                    c->n_done++;
                }
        }
        cJSON_Delete(body);
        return;
    }
    if (rid && strcmp(rid, c->rid) == 0 && !c->response) {
        c->response = body;
        return;
    }
    cJSON_Delete(body);
}

typedef struct cli_paths {
    const char *hub_dir;
    const char *hub_conf;
    const char *identity;
} cli_paths;

static int cli_connect(cli *c, const cli_paths *p)
{
    char conf_path[PATH_MAX], id_dir[PATH_MAX], err[512];
    const char *hub_dir = p->hub_dir ? p->hub_dir : getenv("OUTPOST_HUB_DIR");
    if (p->hub_conf)
        snprintf(conf_path, sizeof conf_path, "%s", p->hub_conf);
    else if (hub_dir)
        snprintf(conf_path, sizeof conf_path, "%s/cli.conf", hub_dir);
    else {
        fprintf(stderr, "outpost: which hub? pass --hub-dir DIR (the hub's data dir) or"
                        " --hub-conf FILE, or set OUTPOST_HUB_DIR\n");
        return EXIT_USAGE;
    }
    if (p->identity)
        snprintf(id_dir, sizeof id_dir, "%s", p->identity);
    else if (hub_dir && !p->hub_conf)
        snprintf(id_dir, sizeof id_dir, "%s/admin", hub_dir);
    else
        snprintf(id_dir, sizeof id_dir, "%s/.outpost/operator",
                 getenv("HOME") ? getenv("HOME") : ".");
    if (opclient_load_hub(conf_path, &c->hub, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_USAGE;
    }
    if (opclient_identity(id_dir, &c->identity) != OP_OK) {
        fprintf(stderr, "outpost: cannot load operator identity from %s\n", id_dir);
        return EXIT_USAGE;
    }
    const char *op_id = c->identity.id;
    char client_id[96];
    uint8_t nonce[4];
    randombytes_buf(nonce, sizeof nonce);
    snprintf(client_id, sizeof client_id, "outpost-cli-%s-%02x%02x%02x%02x", op_id, nonce[0],
             nonce[1], nonce[2], nonce[3]);
    bus_config bc = {.host = c->hub.broker_host,
                     .port = (int)c->hub.broker_port,
                     .client_id = client_id,
                     .clean_start = 1,
                     .session_expiry_s = 0,
                     .keepalive_s = 10};
    if (bus_open(&bc, &c->identity, on_message, c, &c->bus) != OP_OK) return EXIT_UNREACHABLE;
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "op", op_id, "resp");
    bus_subscribe(c->bus, topic);
    if (bus_wait_connected(c->bus, c->timeout_ms) != OP_OK) {
        fprintf(stderr,
                "outpost: cannot reach the broker at %s:%lld (is the hub's broker"
                " running?)\n",
                c->hub.broker_host, (long long)c->hub.broker_port);
        return EXIT_UNREACHABLE;
    }
    /* Give the SUBACK a moment so that the response cannot arrive before the subscription. */
    bus_loop(c->bus, 20);
    return EXIT_OK;
}

/*
 * Sends req (consumed) and waits for the matching response. On success
 * *data is the response's data object (owned by c->response). Prints the
 * hub's error and returns an exit code otherwise.
 */
static int request(cli *c, cJSON *req, const char *cmd, cJSON **data)
{
    uint8_t r[8];
    randombytes_buf(r, sizeof r);
    util_hex(r, sizeof r, c->rid);
    cJSON_AddStringToObject(req, "cmd", cmd);
    cJSON_AddStringToObject(req, "rid", c->rid);
    cJSON_Delete(c->response);
    c->response = NULL;
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "op", c->identity.id, "req");
    int rc = bus_publish(c->bus, topic, req, "req");
    if (rc != OP_OK) {
        cJSON_Delete(req);
        fprintf(stderr, "outpost: could not send the request: %s\n", op_strerror(rc));
        return EXIT_UNREACHABLE;
    }
    /*
     * A request can be lost when the broker restarts without persistence before the hub
     * has subscribed again. Reads are asked again every 2 s (same rid, new signature);
     * commands that change state are not, since the hub does not deduplicate them yet.
     */
    int read_only =
        strcmp(cmd, "submit") != 0 && strcmp(cmd, "token") != 0 && strcmp(cmd, "cancel") != 0;
    int64_t deadline = os_mono_ms() + c->timeout_ms;
    int64_t resend_at = os_mono_ms() + 2000;
    while (!c->response && os_mono_ms() < deadline && !runctl_stopping()) {
        bus_loop(c->bus, 20);
        if (read_only && os_mono_ms() >= resend_at) {
            bus_publish(c->bus, topic, req, "req");
            resend_at = os_mono_ms() + 2000;
        }
    }
    cJSON_Delete(req);
    if (!c->response) {
        fprintf(stderr,
                "outpost: no answer from hub %s within %d ms (is it running? is this operator"
                " key %s in its operators file?)\n",
                c->hub.hub_id, c->timeout_ms, c->identity.pk_hex);
        return EXIT_UNREACHABLE;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->response, "ok"))) {
        const char *error = jsonx_str(c->response, "error");
        int64_t code = 0;
        jsonx_int(c->response, "code", -100, 0, &code);
        fprintf(stderr, "outpost: hub refused %s: %s\n", cmd, error ? error : "?");
        return code == OP_ENOTFOUND ? EXIT_NOT_FOUND : EXIT_REJECTED;
    }
    *data = cJSON_GetObjectItemCaseSensitive(c->response, "data");
    return *data ? EXIT_OK : EXIT_REJECTED;
}

static void print_json(const cJSON *data)
{
    char *text = cJSON_Print(data);
    if (text) puts(text);
    free(text);
}

static const char *fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) return "-";
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%H:%M:%S", &tm);
    return buf;
}

/* ---------- commands ---------- */

static int cmd_token(cli *c, int argc, char **argv)
{
    const char *cls = NULL;
    int64_t ttl = 0;
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "usage: outpost token create --class pod|car|dc [--ttl SECONDS]\n");
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--class") == 0 && i + 1 < argc)
            cls = argv[++i];
        else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            if (util_parse_i64(argv[++i], 1, 365LL * 86400, &ttl) != OP_OK) {
                fprintf(stderr, "outpost token: --ttl must be 1 to 31536000 seconds\n");
                return EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "outpost token: unexpected '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!cls || !jobspec_class_bit(cls)) {
        fprintf(stderr, "outpost token create: --class must be pod, car or dc\n");
        return EXIT_USAGE;
    }
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "class", cls);
    if (ttl) jsonx_add_int(req, "ttl_s", ttl);
    int rc = request(c, req, "token", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json)
        print_json(data);
    else
        printf("%s\n", jsonx_str(data, "token"));
    return EXIT_OK;
}

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

/*
 * One request to a site agent on this machine through its socket (path: the
 * socket or the site's data dir). Takes req. On EXIT_OK *reply is the
 * answer (the caller frees it).
 */
static int local_call(const char *path, cJSON *req, cJSON **reply_out)
{
    char sock_path[PATH_MAX];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(sock_path, sizeof sock_path, "%s/local.sock", path);
    else
        snprintf(sock_path, sizeof sock_path, "%s", path);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!text || fd < 0 || strlen(sock_path) >= sizeof addr.sun_path) {
        free(text);
        if (fd >= 0) close(fd);
        fprintf(stderr, "outpost submit: cannot reach the site at %s\n", sock_path);
        return EXIT_UNREACHABLE;
    }
    memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1); /* length checked above */
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr,
                "outpost submit: cannot reach the site at %s: %s (is the agent running,"
                " and may you use its socket?)\n",
                sock_path, strerror(errno));
        free(text);
        close(fd);
        return EXIT_UNREACHABLE;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* one request per line; the NUL after it is not sent */
    os_write_all(fd, text, len + 1);
    free(text);
    char buf[65536];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || (got += (size_t)n) == sizeof buf - 1) break;
    }
    close(fd);
    buf[got] = '\0';
    cJSON *reply = cJSON_Parse(buf);
    if (!reply) {
        fprintf(stderr, "outpost: no answer from the site at %s\n", sock_path);
        return EXIT_UNREACHABLE;
    }
    *reply_out = reply;
    return EXIT_OK;
}

/*
 * submit --local: the site runs the jobs whether or not the hub is reachable.
 * Takes req. Prints "local ID" per job.
 */
static int local_submit(const char *path, cJSON *req)
{
    cJSON *reply = NULL;
    int rc = local_call(path, req, &reply);
    if (rc != EXIT_OK) return rc;
    const cJSON *id;
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(reply, "ids"))
        printf("local %lld\n", (long long)id->valuedouble);
    const char *error = jsonx_str(reply, "error");
    if (error) {
        fprintf(stderr, "outpost submit: the site refused: %s\n", error);
        rc = EXIT_REJECTED;
    }
    cJSON_Delete(reply);
    return rc;
}

/*
 * outpost leave SITE_DATA_DIR [--grace S]: the owner unplugs (a car leaves).
 * The site refuses new work, asks its jobs to stop (SIGTERM, SIGKILL after
 * the grace period), hands them back with their checkpoints, and exits.
 */
static int cmd_leave(int argc, char **argv)
{
    const char *dir = NULL;
    int64_t grace = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
            if (util_parse_i64(argv[++i], 0, 3600, &grace) != OP_OK) {
                fprintf(stderr, "outpost leave: --grace takes 0 to 3600 seconds\n");
                return EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "usage: outpost leave SITE_DATA_DIR|SOCKET [--grace S]\n");
            return EXIT_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: outpost leave SITE_DATA_DIR|SOCKET [--grace S]\n");
        return EXIT_USAGE;
    }
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
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(reply, "stopping");
        printf("leaving: %d running job(s) asked to stop; they are handed back with their"
               " checkpoints, then the agent exits\n",
               cJSON_IsNumber(n) ? (int)n->valuedouble : 0);
    }
    cJSON_Delete(reply);
    return rc;
}

/*
 * outpost power SITE_DATA_DIR [options]: the site's power signals by hand (a
 * meter message through its local socket): the envelope, the grid price and
 * carbon, a demand-response cap for a while, a parked car's stated departure.
 */
static int cmd_power(int argc, char **argv)
{
    static const char *usage =
        "usage: outpost power SITE_DATA_DIR|SOCKET [--watts W] [--price P] [--carbon C]\n"
        "         [--dr-watts W --dr-for S] [--departure-in S | --no-departure]\n";
    const char *dir = NULL;
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    cJSON *meter = req ? cJSON_AddObjectToObject(req, "meter") : NULL;
    double dr_watts = -1, dr_for = -1;
    if (!meter) {
        cJSON_Delete(req);
        return EXIT_FAILURE_RUNTIME;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v = 0;
        int takes = strcmp(a, "--watts") == 0 || strcmp(a, "--price") == 0 ||
                    strcmp(a, "--carbon") == 0 || strcmp(a, "--dr-watts") == 0 ||
                    strcmp(a, "--dr-for") == 0 || strcmp(a, "--departure-in") == 0;
        if (takes && (i + 1 >= argc || util_parse_double(argv[i + 1], &v) != OP_OK)) {
            fprintf(stderr, "outpost power: %s takes a number\n%s", a, usage);
            cJSON_Delete(req);
            return EXIT_USAGE;
        }
        if (takes) i++;
        if (strcmp(a, "--watts") == 0)
            cJSON_AddNumberToObject(meter, "watts", v);
        else if (strcmp(a, "--price") == 0)
            cJSON_AddNumberToObject(meter, "price", v);
        else if (strcmp(a, "--carbon") == 0)
            cJSON_AddNumberToObject(meter, "carbon", v);
        else if (strcmp(a, "--dr-watts") == 0)
            dr_watts = v;
        else if (strcmp(a, "--dr-for") == 0)
            dr_for = v;
        else if (strcmp(a, "--departure-in") == 0)
            cJSON_AddNumberToObject(meter, "departure_ms", (double)os_now_ms() + v * 1000);
        else if (strcmp(a, "--no-departure") == 0)
            cJSON_AddNumberToObject(meter, "departure_ms", 0);
        else if (a[0] != '-' && !dir)
            dir = a;
        else {
            fprintf(stderr, "%s", usage);
            cJSON_Delete(req);
            return EXIT_USAGE;
        }
    }
    if ((dr_watts >= 0) != (dr_for >= 0)) {
        fprintf(stderr, "outpost power: --dr-watts and --dr-for go together\n");
        cJSON_Delete(req);
        return EXIT_USAGE;
    }
    if (dr_watts >= 0) {
        cJSON *dr = cJSON_AddObjectToObject(meter, "dr");
        cJSON_AddNumberToObject(dr, "watts", dr_watts);
        cJSON_AddNumberToObject(dr, "until_ms", (double)os_now_ms() + dr_for * 1000);
    }
    if (!dir || cJSON_GetArraySize(meter) == 0) {
        fprintf(stderr, "%s", usage);
        cJSON_Delete(req);
        return EXIT_USAGE;
    }
    cJSON_AddStringToObject(req, "op", "power");
    int rc = local_call(dir, req, &reply);
    if (rc != EXIT_OK) return rc;
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

static void submit_usage(FILE *out)
{
    fprintf(
        out,
        "usage: outpost submit FILE|-                    (a job spec, or an array of specs,"
        " as JSON)\n"
        "       outpost submit [flags] -- PROGRAM ARGS...  (an exec job)\n"
        "       outpost submit --kind noop [--count N]\n"
        "       outpost submit --local SITE_DATA_DIR|SOCKET ...  (run on this site, also\n"
        "         offline; the site's policy must list the kind under 'local')\n"
        "       outpost submit --kind route INSTANCE [--time-limit S] [--seed N]  (plan routes\n"
        "         for a CVRPLIB, Solomon or JSON instance; outputs solution.json, routes.svg)\n"
        "  --name NAME  --cores N  --memory-mb N  --wall-s N  --classes pod,car,dc\n"
        "  --input FILE (attached, repeatable)  --output NAME (returned, repeatable)\n"
        "  --count N (N copies)  --data-class public|confidential|site-private\n"
        "  --origin SITE  --wait (until every job ends; prints 'ID STATE', exit 0 if all"
        " succeeded)\n"
        "The spec format is in docs/jobs.md. Prints the new job ids.\n");
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
        for (int i = 0; i < c->n_wait; i++) {
            if (c->wait_state[i][0]) continue;
            cJSON *req = cJSON_CreateObject(), *data = NULL;
            jsonx_add_int(req, "id", c->wait_ids[i]);
            if (request(c, req, "job", &data) != EXIT_OK) continue;
            const char *st = jsonx_str(cJSON_GetObjectItemCaseSensitive(data, "job"), "state");
            if (st &&
                (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
                snprintf(c->wait_state[i], sizeof c->wait_state[i], "%s", st);
                c->n_done++;
            }
        }
    }
    int all_ok = c->n_done == c->n_wait;
    for (int i = 0; i < c->n_wait; i++) {
        printf("%lld %s\n", (long long)c->wait_ids[i],
               c->wait_state[i][0] ? c->wait_state[i] : "unknown");
        if (strcmp(c->wait_state[i], "succeeded") != 0) all_ok = 0;
    }
    return all_ok ? EXIT_OK : EXIT_REJECTED;
}

static int cmd_submit(cli *c, int argc, char **argv)
{
    cJSON *spec = cJSON_CreateObject();
    cJSON *inputs = cJSON_CreateArray();
    cJSON *outputs = cJSON_CreateArray();
    cJSON *resources = cJSON_CreateObject();
    cJSON *from_file = NULL;
    int64_t count = 1;
    int rc = EXIT_USAGE;
    const char *kind = NULL;
    cJSON *route_opts = NULL;
    int route_kind = 0;
    for (int j = 1; j + 1 < argc; j++)
        if (strcmp(argv[j], "--kind") == 0 && strcmp(argv[j + 1], "route") == 0) route_kind = 1;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (route_kind && a[0] != '-') { /* the instance of a route job */
            if ((rc = attach_input(inputs, a)) != EXIT_OK) goto out;
            rc = EXIT_USAGE;
            continue;
        } else if (route_kind && v && (!strcmp(a, "--time-limit") || !strcmp(a, "--seed"))) {
            char *end;
            double num = strtod(v, &end);
            if (*end || !(num >= 0)) {
                fprintf(stderr, "outpost submit: %s needs a number\n", a);
                goto out;
            }
            if (!route_opts) route_opts = cJSON_CreateObject();
            cJSON_AddNumberToObject(route_opts, a[2] == 't' ? "time_limit_s" : "seed", num);
            i++;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--wait") == 0) {
            c->waiting = 1;
            continue;
        } else if (strcmp(a, "--help") == 0) {
            submit_usage(stdout);
            rc = EXIT_OK;
            goto out;
        } else if (a[0] != '-' || strcmp(a, "-") == 0) {
            char *text = NULL;
            size_t len = 0;
            int r =
                strcmp(a, "-") == 0 ? OP_EINVAL : os_read_file(a, CLI_MAX_SPEC_BYTES, &text, &len);
            if (strcmp(a, "-") == 0) {
                size_t cap = 1 << 16;
                text = malloc(cap);
                while (text) {
                    size_t got = fread(text + len, 1, cap - len - 1, stdin);
                    len += got;
                    if (got == 0) break;
                    if (len + 1 == cap) {
                        if (cap >= CLI_MAX_SPEC_BYTES) break;
                        char *grown = realloc(text, cap * 2);
                        if (!grown) break;
                        text = grown;
                        cap *= 2;
                    }
                }
                if (text) text[len] = '\0';
                r = text ? OP_OK : OP_ENOMEM;
            }
            if (r != OP_OK) {
                fprintf(stderr, "outpost submit: cannot read %s: %s\n", a, op_strerror(r));
                free(text);
                goto out;
            }
            from_file = cJSON_ParseWithLength(text, len);
            free(text);
            if (!from_file) {
                fprintf(stderr, "outpost submit: %s is not valid JSON\n", a);
                goto out;
            }
        } else if (!v) {
            fprintf(stderr, "outpost submit: %s needs a value\n", a);
            goto out;
        } else if (strcmp(a, "--kind") == 0) {
            kind = v, i++;
        } else if (strcmp(a, "--local") == 0) {
            i++; /* taken by cli_main */
        } else if (strcmp(a, "--name") == 0) {
            cJSON_AddStringToObject(spec, "name", v), i++;
        } else if (strcmp(a, "--origin") == 0) {
            cJSON_AddStringToObject(spec, "origin", v), i++;
        } else if (strcmp(a, "--data-class") == 0) {
            cJSON_AddStringToObject(spec, "data_class", v), i++;
        } else if (strcmp(a, "--input") == 0) {
            if ((rc = attach_input(inputs, v)) != EXIT_OK) goto out;
            rc = EXIT_USAGE;
            i++;
        } else if (strcmp(a, "--output") == 0) {
            cJSON_AddItemToArray(outputs, cJSON_CreateString(v)), i++;
        } else if (strcmp(a, "--classes") == 0) {
            cJSON *arr = cJSON_AddArrayToObject(spec, "site_classes");
            char buf[64];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
                cJSON_AddItemToArray(arr, cJSON_CreateString(t));
            i++;
        } else if ((strcmp(a, "--cores") == 0 || strcmp(a, "--memory-mb") == 0 ||
                    strcmp(a, "--wall-s") == 0 || strcmp(a, "--count") == 0)) {
            if (util_parse_i64(v, 1, 100000000, &n) != OP_OK) {
                fprintf(stderr, "outpost submit: %s needs a positive integer\n", a);
                goto out;
            }
            if (strcmp(a, "--count") == 0)
                count = n;
            else
                jsonx_add_int(resources,
                              strcmp(a, "--cores") == 0       ? "cores"
                              : strcmp(a, "--memory-mb") == 0 ? "memory_mb"
                                                              : "wall_s",
                              n);
            i++;
        } else {
            fprintf(stderr, "outpost submit: unknown option %s\n", a);
            submit_usage(stderr);
            goto out;
        }
    }
    cJSON *req = cJSON_CreateObject();
    if (from_file) {
        cJSON_AddItemToObject(req, cJSON_IsArray(from_file) ? "specs" : "spec", from_file);
        from_file = NULL;
    } else {
        if (i < argc) {
            cJSON *command = cJSON_AddArrayToObject(spec, "command");
            for (; i < argc; i++)
                cJSON_AddItemToArray(command, cJSON_CreateString(argv[i]));
            if (!kind) kind = "exec";
        }
        if (!kind) {
            fprintf(stderr, "outpost submit: give a spec FILE, or -- PROGRAM ARGS, or --kind"
                            " noop\n");
            submit_usage(stderr);
            cJSON_Delete(req);
            goto out;
        }
        cJSON_AddStringToObject(spec, "kind", kind);
        if (route_opts) {
            cJSON_AddItemToObject(spec, "route", route_opts);
            route_opts = NULL;
        }
        if (cJSON_GetArraySize(resources) > 0) {
            cJSON_AddItemToObject(spec, "resources", resources);
            resources = NULL;
        }
        if (cJSON_GetArraySize(inputs) > 0) {
            cJSON_AddItemToObject(spec, "inputs", inputs);
            inputs = NULL;
        }
        if (cJSON_GetArraySize(outputs) > 0) {
            cJSON_AddItemToObject(spec, "outputs", outputs);
            outputs = NULL;
        }
        if (count == 1) {
            cJSON_AddItemToObject(req, "spec", spec);
        } else {
            cJSON *specs = cJSON_AddArrayToObject(req, "specs");
            for (int64_t k = 0; k < count; k++)
                cJSON_AddItemToArray(specs, cJSON_Duplicate(spec, 1));
            cJSON_Delete(spec);
        }
        spec = NULL;
    }
    cJSON *data = NULL;
    if (c->local_socket) {
        rc = local_submit(c->local_socket, req);
        goto out;
    }
    if (c->waiting) cJSON_AddBoolToObject(req, "notify", 1);
    rc = request(c, req, "submit", &data);
    if (rc == EXIT_OK && c->waiting) {
        rc = wait_done(c, cJSON_GetObjectItemCaseSensitive(data, "ids"));
    } else if (rc == EXIT_OK) {
        if (c->json) {
            print_json(data);
        } else {
            const cJSON *id;
            cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(data, "ids"))
                printf("%lld\n", (long long)id->valuedouble);
        }
    }
out:
    cJSON_Delete(spec);
    cJSON_Delete(inputs);
    cJSON_Delete(outputs);
    cJSON_Delete(route_opts);
    cJSON_Delete(resources);
    cJSON_Delete(from_file);
    return rc;
}

static int cmd_jobs(cli *c, int argc, char **argv)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    for (int i = 1; i < argc; i++) {
        int64_t n;
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            cJSON_AddStringToObject(req, "state", argv[++i]);
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
                   util_parse_i64(argv[i + 1], 1, 10000, &n) == OP_OK) {
            jsonx_add_int(req, "limit", n);
            i++;
        } else {
            fprintf(stderr, "usage: outpost jobs [--state queued|placed|running|succeeded|"
                            "failed|cancelled] [--limit N]\n");
            cJSON_Delete(req);
            return EXIT_USAGE;
        }
    }
    int rc = request(c, req, "jobs", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        print_json(data);
        return EXIT_OK;
    }
    printf("%-8s %-16s %-5s %-10s %-7s %-12s %s\n", "ID", "NAME", "KIND", "STATE", "ATTEMPT",
           "SITE", "REASON");
    const cJSON *j;
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(data, "jobs"))
    {
        int64_t id = 0, attempt = 0;
        jsonx_int(j, "id", 0, INT64_MAX, &id);
        jsonx_int(j, "attempt", 0, INT64_MAX, &attempt);
        printf("%-8lld %-16.16s %-5s %-10s %-7lld %-12.12s %.60s\n", (long long)id,
               jsonx_str(j, "name"), jsonx_str(j, "kind"), jsonx_str(j, "state"),
               (long long)attempt, jsonx_str(j, "site"), jsonx_str(j, "reason"));
    }
    const cJSON *cnt;
    printf("totals:");
    cJSON_ArrayForEach(cnt, cJSON_GetObjectItemCaseSensitive(data, "counts"))
        printf(" %s=%lld", cnt->string, (long long)cnt->valuedouble);
    printf("\n");
    return EXIT_OK;
}

static int parse_id_arg(int argc, char **argv, const char *usage_text, int64_t *id)
{
    if (argc < 2 || util_parse_i64(argv[1], 1, INT64_MAX, id) != OP_OK) {
        fprintf(stderr, "usage: %s\n", usage_text);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_job(cli *c, int argc, char **argv)
{
    int64_t id;
    int rc = parse_id_arg(argc, argv, "outpost job ID", &id);
    if (rc != EXIT_OK) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = request(c, req, "job", &data)) != EXIT_OK) return rc;
    if (c->json) {
        print_json(data);
        return EXIT_OK;
    }
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(data, "job");
    int64_t attempt = 0, max_attempts = 0;
    jsonx_int(j, "attempt", 0, INT64_MAX, &attempt);
    jsonx_int(j, "max_attempts", 0, INT64_MAX, &max_attempts);
    printf("job %lld  %s  %s\n", (long long)id, jsonx_str(j, "kind"), jsonx_str(j, "name"));
    printf("  state:    %s (attempt %lld of %lld)\n", jsonx_str(j, "state"), (long long)attempt,
           (long long)max_attempts);
    printf("  site:     %s\n", *jsonx_str(j, "site") ? jsonx_str(j, "site") : "-");
    printf("  reason:   %s\n", *jsonx_str(j, "reason") ? jsonx_str(j, "reason") : "-");
    printf("  why here: %s\n", *jsonx_str(j, "explanation") ? jsonx_str(j, "explanation") : "-");
    printf("  history:\n");
    const cJSON *e;
    char tbuf[16];
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(data, "events"))
    {
        int64_t ts = 0, att = 0;
        jsonx_int(e, "ts", 0, INT64_MAX, &ts);
        jsonx_int(e, "attempt", 0, INT64_MAX, &att);
        printf("    %s  #%lld %-12s %-10s %s\n", fmt_time(ts, tbuf, sizeof tbuf), (long long)att,
               jsonx_str(e, "event"), jsonx_str(e, "site"), jsonx_str(e, "detail"));
    }
    printf("  results:\n");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(data, "results"))
    {
        int64_t att = 0, exit_code = 0;
        double cpu = 0, joules = 0;
        jsonx_int(e, "attempt", 0, INT64_MAX, &att);
        jsonx_int(e, "exit_code", -1, 255, &exit_code);
        jsonx_num(e, "cpu_seconds", &cpu);
        jsonx_num(e, "energy_joules", &joules);
        printf("    #%lld from %-10s exit %lld, %.2f CPU s, %.1f J  %s\n", (long long)att,
               jsonx_str(e, "site"), (long long)exit_code, cpu, joules,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "applied"))
                   ? "applied"
                   : "recorded, not applied");
        const cJSON *receipt = cJSON_GetObjectItemCaseSensitive(e, "receipt");
        double share = 1, cost = 0, carbon = 0;
        if (cJSON_IsObject(receipt)) {
            jsonx_num(receipt, "spare_share", &share);
            printf("      energy receipt: %.1f J, %.0f%% of its run time inside the envelope",
                   joules, share * 100);
            if (jsonx_num(receipt, "cost", &cost) == OP_OK) printf(", cost %.6f", cost);
            if (jsonx_num(receipt, "carbon_g", &carbon) == OP_OK) printf(", %.3f g CO2", carbon);
            printf("\n");
        }
    }
    return EXIT_OK;
}

static int cmd_result(cli *c, int argc, char **argv)
{
    int64_t id;
    const char *save = NULL;
    int rc = parse_id_arg(argc, argv, "outpost result ID [--save DIR]", &id);
    if (rc != EXIT_OK) return rc;
    if (argc == 4 && strcmp(argv[2], "--save") == 0) save = argv[3];
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = request(c, req, "result", &data)) != EXIT_OK) return rc;
    const cJSON *applied = NULL, *r;
    cJSON_ArrayForEach(
        r, cJSON_GetObjectItemCaseSensitive(
               data, "results")) if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "applied")))
        applied = r;
    if (c->json) {
        print_json(applied ? applied : data);
        return EXIT_OK;
    }
    if (!applied) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(data, "job");
        fprintf(stderr, "outpost result: job %lld has no applied result yet (state %s)\n",
                (long long)id, jsonx_str(j, "state") ? jsonx_str(j, "state") : "?");
        return EXIT_NOT_FOUND;
    }
    int64_t exit_code = -1;
    double cpu = 0;
    jsonx_int(applied, "exit_code", -1, 255, &exit_code);
    jsonx_num(applied, "cpu_seconds", &cpu);
    printf("job %lld on %s: exit %lld, %.2f CPU s\n", (long long)id, jsonx_str(applied, "site"),
           (long long)exit_code, cpu);
    if (jsonx_str(applied, "error")) printf("error: %s\n", jsonx_str(applied, "error"));
    printf("--- stdout\n%s", jsonx_str(applied, "stdout") ? jsonx_str(applied, "stdout") : "");
    printf("--- stderr\n%s", jsonx_str(applied, "stderr") ? jsonx_str(applied, "stderr") : "");
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(applied, "outputs"))
    {
        const char *name = jsonx_str(o, "name");
        const char *b64 = jsonx_str(o, "data_b64");
        const char *hash = jsonx_str(o, "sha256");
        if (!name || !b64 || !hash) continue;
        uint8_t *bytes = NULL;
        size_t len = 0;
        char check[65];
        if (util_b64_decode(b64, SIZE_MAX / 2, &bytes, &len) != OP_OK) continue;
        util_sha256_hex(bytes, len, check);
        int ok = strcmp(check, hash) == 0;
        printf("--- output %s: %zu bytes, sha256 %s %s\n", name, len, hash,
               ok ? "(verified)" : "(MISMATCH)");
        if (save && ok && !strchr(name, '/')) {
            char path[PATH_MAX];
            if (os_mkdir_p(save) == OP_OK &&
                util_fmt(path, sizeof path, "%s/%s", save, name) == OP_OK &&
                os_write_file_atomic(path, bytes, len, 0644) == OP_OK)
                printf("    saved to %s\n", path);
        }
        free(bytes);
    }
    return EXIT_OK;
}

static int cmd_sites(cli *c, int argc, char **argv)
{
    cJSON *data = NULL;
    int rc = request(c, cJSON_CreateObject(), "sites", &data);
    if (rc != EXIT_OK) return rc;
    if (c->json) {
        print_json(data);
        return EXIT_OK;
    }
    printf("%-12s %-5s %-8s %-9s %-11s %-9s %-9s %-7s %-8s %-5s %-5s %-8s %s\n", "SITE", "CLASS",
           "STATUS", "CORES", "MEM MB", "HEADROOM", "NEXT 1H", "LEAVES", "HEARTBT", "JOBS", "TRUST",
           "REJECTED", "PROTECTIONS OFF");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(data, "sites"))
    {
        int64_t cores = 0, free_cores = 0, mem = 0, free_mem = 0, age = -1, jobs = 0, trust = 0;
        double headroom = 0;
        jsonx_int(s, "cores", 0, INT64_MAX, &cores);
        jsonx_int(s, "free_cores", INT64_MIN, INT64_MAX, &free_cores);
        jsonx_int(s, "memory_mb", 0, INT64_MAX, &mem);
        jsonx_int(s, "free_memory_mb", INT64_MIN, INT64_MAX, &free_mem);
        jsonx_int(s, "heartbeat_age_ms", -1, INT64_MAX, &age);
        jsonx_int(s, "jobs", 0, INT64_MAX, &jobs);
        jsonx_int(s, "trust", 0, 100, &trust);
        jsonx_num(s, "headroom_watts", &headroom);
        char cores_s[24], mem_s[32], age_s[24];
        snprintf(cores_s, sizeof cores_s, "%lld/%lld", (long long)free_cores, (long long)cores);
        snprintf(mem_s, sizeof mem_s, "%lld/%lld", (long long)free_mem, (long long)mem);
        if (age < 0)
            snprintf(age_s, sizeof age_s, "never");
        else
            snprintf(age_s, sizeof age_s, "%.1fs", (double)age / 1000.0);
        const char *off = jsonx_str(s, "protections_off");
        /* Messages this site dropped (forged, replayed, unsigned ...), from its heartbeat. */
        int64_t rejected = 0;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(s, "messages"), *counter;
        cJSON_ArrayForEach(counter, m) if (strcmp(counter->string, "accepted") != 0 &&
                                           cJSON_IsNumber(counter)) rejected +=
            (int64_t)counter->valuedouble;
        /* power: the forecast envelope's least over the next hour, and a stated departure */
        const cJSON *pw = cJSON_GetObjectItemCaseSensitive(s, "power");
        const cJSON *fc = cJSON_GetObjectItemCaseSensitive(pw, "forecast_watts");
        char next_s[24] = "-", leaves_s[24] = "-";
        if (cJSON_GetArraySize(fc) > 2 && cJSON_IsNumber(cJSON_GetArrayItem(fc, 2)))
            snprintf(next_s, sizeof next_s, "%.0f W", cJSON_GetArrayItem(fc, 2)->valuedouble);
        int64_t stay = 0;
        if (jsonx_int(pw, "stay_until_ms", 1, INT64_MAX, &stay) == OP_OK) {
            int64_t left_s = (stay - os_now_ms()) / 1000;
            snprintf(leaves_s, sizeof leaves_s, "%lldm", (long long)(left_s > 0 ? left_s / 60 : 0));
        }
        printf("%-12.12s %-5s %-8s %-9s %-11s %7.0f W %-9s %-7s %-8s %-5lld %-5lld %-8lld %s\n",
               jsonx_str(s, "id"), jsonx_str(s, "class"), jsonx_str(s, "status"), cores_s, mem_s,
               headroom, next_s, leaves_s, age_s, (long long)jobs, (long long)trust,
               (long long)rejected, off && *off ? off : "none");
    }
    return EXIT_OK;
}

static int64_t count_of(const cJSON *obj, const char *key)
{
    int64_t n = 0;
    jsonx_int(obj, key, 0, INT64_MAX, &n);
    return n;
}

static int cmd_watch(cli *c, int argc, char **argv)
{
    int until_done = 0;
    int64_t interval = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--until-done") == 0)
            until_done = 1;
        else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc &&
                 util_parse_i64(argv[i + 1], 100, 60000, &interval) == OP_OK)
            i++;
        else {
            fprintf(stderr, "usage: outpost watch [--until-done] [--interval MS]\n");
            return EXIT_USAGE;
        }
    }
    int tty = isatty(STDOUT_FILENO);
    runctl_install();
    while (!runctl_stopping()) {
        cJSON *data = NULL;
        int rc = request(c, cJSON_CreateObject(), "stats", &data);
        if (rc != EXIT_OK) return rc;
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(data, "counts");
        int64_t active =
            count_of(counts, "queued") + count_of(counts, "placed") + count_of(counts, "running");
        char tbuf[16];
        if (tty) printf("\033[H\033[2J");
        printf("outpost watch  %s UTC  hub %s\n", fmt_time(os_now_ms(), tbuf, sizeof tbuf),
               c->hub.hub_id);
        printf("%-14s %8s %8s %10s %8s %10s\n", "SITE", "PLACED", "RUNNING", "SUCCEEDED", "FAILED",
               "CANCELLED");
        const cJSON *site;
        cJSON_ArrayForEach(site, cJSON_GetObjectItemCaseSensitive(data, "per_site"))
        {
            if (!site->string[0]) continue;
            printf("%-14.14s %8lld %8lld %10lld %8lld %10lld\n", site->string,
                   (long long)count_of(site, "placed"), (long long)count_of(site, "running"),
                   (long long)count_of(site, "succeeded"), (long long)count_of(site, "failed"),
                   (long long)count_of(site, "cancelled"));
        }
        double cpu = 0, joules = 0;
        jsonx_num(data, "cpu_seconds", &cpu);
        jsonx_num(data, "energy_joules", &joules);
        printf("queued %lld, placed %lld, running %lld, succeeded %lld, failed %lld, cancelled"
               " %lld | %.1f CPU s, %.1f kJ\n",
               (long long)count_of(counts, "queued"), (long long)count_of(counts, "placed"),
               (long long)count_of(counts, "running"), (long long)count_of(counts, "succeeded"),
               (long long)count_of(counts, "failed"), (long long)count_of(counts, "cancelled"), cpu,
               joules / 1000.0);
        fflush(stdout);
        if (until_done && active == 0) break;
        int64_t until = os_mono_ms() + interval;
        while (os_mono_ms() < until && !runctl_stopping())
            bus_loop(c->bus, 50);
    }
    return EXIT_OK;
}

static int cmd_cancel(cli *c, int argc, char **argv)
{
    int64_t id;
    int rc = parse_id_arg(argc, argv, "outpost cancel ID", &id);
    if (rc != EXIT_OK) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = request(c, req, "cancel", &data)) != EXIT_OK) return rc;
    printf("job %lld cancelled\n", (long long)id);
    return EXIT_OK;
}

static void print_entry(const cJSON *e)
{
    int64_t i = 0, ts = 0;
    char tbuf[16];
    jsonx_int(e, "i", 0, INT64_MAX, &i);
    jsonx_int(e, "ts", 0, INT64_MAX, &ts);
    printf("#%-6lld %s  %-12s %-16s %s\n", (long long)i, fmt_time(ts, tbuf, sizeof tbuf),
           jsonx_str(e, "kind") ? jsonx_str(e, "kind") : "?",
           jsonx_str(e, "subject") ? jsonx_str(e, "subject") : "",
           jsonx_str(e, "body") ? jsonx_str(e, "body") : "");
}

static int audit_prove(cli *c, int argc, char **argv)
{
    int64_t index;
    if (argc < 3 || util_parse_i64(argv[2], 0, INT64_MAX, &index) != OP_OK) {
        fprintf(stderr, "usage: outpost audit prove ENTRY\n");
        return EXIT_USAGE;
    }
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "index", index);
    int rc = request(c, req, "audit_prove", &data);
    if (rc != EXIT_OK) return rc;
    /* Check it here with the hub's public key alone, as any third party can. */
    audit_sth head;
    uint8_t leaf[32], proof[AUDIT_MAX_PROOF][32];
    size_t len = 0;
    const char *entry = jsonx_str(data, "entry");
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(data, "proof"))
    {
        if (len == AUDIT_MAX_PROOF || !cJSON_IsString(p) ||
            util_unhex(p->valuestring, proof[len], 32) != OP_OK) {
            fprintf(stderr, "outpost audit: malformed proof from the hub\n");
            return EXIT_REJECTED;
        }
        len++;
    }
    if (!entry ||
        auditlog_head_from_json(cJSON_GetObjectItemCaseSensitive(data, "head"), &head) != OP_OK) {
        fprintf(stderr, "outpost audit: malformed proof from the hub\n");
        return EXIT_REJECTED;
    }
    audit_leaf_hash(entry, strlen(entry), leaf);
    int ok = audit_sth_verify(c->hub.hub_pk, &head) == OP_OK &&
             audit_verify_inclusion(leaf, (uint64_t)index, head.size, (const uint8_t(*)[32])proof,
                                    len, head.root) == OP_OK;
    print_json(data);
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

static int audit_show(cli *c, int argc, char **argv, int follow)
{
    int64_t from = 0, limit = 50, job = 0;
    const char *kind = NULL, *site = NULL;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--job") && v && util_parse_i64(v, 1, INT64_MAX, &job) == OP_OK)
            i++;
        else if (!strcmp(argv[i], "--site") && v)
            site = v, i++;
        else if (!strcmp(argv[i], "--kind") && v)
            kind = v, i++;
        else if (!strcmp(argv[i], "--from") && v && util_parse_i64(v, 0, INT64_MAX, &from) == OP_OK)
            i++;
        else if (!strcmp(argv[i], "--limit") && v && util_parse_i64(v, 1, 1000, &limit) == OP_OK)
            i++;
        else {
            fprintf(stderr, "usage: outpost audit show|tail [--job ID | --site ID] [--kind K]"
                            " [--from N] [--limit N]\n");
            return EXIT_USAGE;
        }
    }
    char subject[80] = "";
    if (job) snprintf(subject, sizeof subject, "job:%lld", (long long)job);
    if (site) snprintf(subject, sizeof subject, "site:%.70s", site);
    if (follow) {
        cJSON *data = NULL;
        cJSON *req = cJSON_CreateObject();
        jsonx_add_int(req, "limit", 1);
        int rc = request(c, req, "audit_entries", &data);
        if (rc != EXIT_OK) return rc;
        int64_t size = 0;
        jsonx_int(data, "size", 0, INT64_MAX, &size);
        from = size > 20 ? size - 20 : 0;
        runctl_install();
    }
    do {
        cJSON *req = cJSON_CreateObject(), *data = NULL;
        jsonx_add_int(req, "from", from);
        jsonx_add_int(req, "limit", limit);
        if (subject[0]) cJSON_AddStringToObject(req, "subject", subject);
        if (kind) cJSON_AddStringToObject(req, "kind", kind);
        int rc = request(c, req, "audit_entries", &data);
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
            int64_t i = 0;
            jsonx_int(e, "i", 0, INT64_MAX, &i);
            from = i + 1;
        }
        fflush(stdout);
        if (follow) {
            int64_t until = os_mono_ms() + 1000;
            while (os_mono_ms() < until && !runctl_stopping())
                bus_loop(c->bus, 50);
        }
    } while (follow && !runctl_stopping());
    return EXIT_OK;
}

static int cmd_audit(cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "prove")) return audit_prove(c, argc, argv);
    if (!strcmp(sub, "show")) return audit_show(c, argc, argv, 0);
    if (!strcmp(sub, "tail")) return audit_show(c, argc, argv, 1);
    if (!strcmp(sub, "head")) {
        cJSON *data = NULL;
        int rc = request(c, cJSON_CreateObject(), "audit_head", &data);
        if (rc == EXIT_OK) print_json(cJSON_GetObjectItemCaseSensitive(data, "head"));
        return rc;
    }
    fprintf(stderr, "usage: outpost audit verify [--db FILE] [--trusted-head FILE]\n"
                    "       outpost audit prove ENTRY | show [filters] | tail | head\n");
    return EXIT_USAGE;
}

/*
 * explain JOB: the job's decisions as the audit log recorded them, each with
 * its entry number (which `outpost audit prove` can prove).
 */
static int cmd_explain(cli *c, int argc, char **argv)
{
    int64_t id;
    int rc = parse_id_arg(argc, argv, "outpost explain JOB", &id);
    if (rc != EXIT_OK) return rc;
    char subject[40];
    snprintf(subject, sizeof subject, "job:%lld", (long long)id);
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON_AddStringToObject(req, "subject", subject);
    jsonx_add_int(req, "limit", 1000);
    if ((rc = request(c, req, "audit_entries", &data)) != EXIT_OK) return rc;
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(data, "entries");
    if (cJSON_GetArraySize(entries) == 0) {
        fprintf(stderr, "outpost explain: the audit log has nothing about job %lld\n",
                (long long)id);
        return EXIT_NOT_FOUND;
    }
    if (c->json) {
        print_json(entries);
        return EXIT_OK;
    }
    printf(
        "job %lld, from the audit log (entry numbers can be proven with `outpost audit prove`):\n",
        (long long)id);
    const cJSON *e;
    const char *last = NULL;
    cJSON_ArrayForEach(e, entries)
    {
        int64_t i = 0, ts = 0, attempt = 0;
        char tbuf[16];
        jsonx_int(e, "i", 0, INT64_MAX, &i);
        jsonx_int(e, "ts", 0, INT64_MAX, &ts);
        const char *kind = jsonx_str(e, "kind") ? jsonx_str(e, "kind") : "?";
        cJSON *body = jsonx_str(e, "body") ? cJSON_Parse(jsonx_str(e, "body")) : NULL;
        jsonx_int(body, "attempt", 0, INT64_MAX, &attempt);
        const char *site = jsonx_str(body, "site");
        const char *detail = jsonx_str(body, "detail");
        printf("  #%-6lld %s  attempt %lld  %-12s %s%s%s\n", (long long)i,
               fmt_time(ts, tbuf, sizeof tbuf), (long long)attempt, kind, site ? site : "",
               site && detail ? ": " : "", detail ? detail : "");
        last = kind;
        cJSON_Delete(body);
    }
    if (last && (!strcmp(last, "submitted") || !strcmp(last, "requeued")))
        printf("  not running yet: see `outpost job %lld` for the scheduler's latest reason\n",
               (long long)id);
    return EXIT_OK;
}

static int cmd_approve(cli *c, int argc, char **argv)
{
    int64_t id;
    int rc = parse_id_arg(argc, argv, "outpost approve JOB", &id);
    if (rc != EXIT_OK) return rc;
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    jsonx_add_int(req, "id", id);
    if ((rc = request(c, req, "approve", &data)) == EXIT_OK)
        printf("job %lld approved\n", (long long)id);
    return rc;
}

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

/* Lines only in a ("- ") and only in b ("+ "), in order: enough for policies of a page. */
static void print_line_diff(const char *a, const char *b)
{
    const char *texts[2] = {a, b};
    const char *marks[2] = {"- ", "+ "};
    for (int side = 0; side < 2; side++) {
        const char *other = texts[1 - side];
        const char *line = texts[side];
        while (*line) {
            const char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            int found = 0;
            for (const char *o = other; *o && !found;) {
                const char *oe = strchr(o, '\n');
                size_t olen = oe ? (size_t)(oe - o) : strlen(o);
                if (olen == len && strncmp(o, line, len) == 0) found = 1;
                o = oe ? oe + 1 : o + olen;
            }
            if (!found) printf("%s%.*s\n", marks[side], (int)len, line);
            line = end ? end + 1 : line + len;
        }
    }
}

static int cmd_policy(cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    cJSON *data = NULL;
    int rc;
    if (!strcmp(sub, "show")) {
        if ((rc = request(c, cJSON_CreateObject(), "policy_get", &data)) != EXIT_OK) return rc;
        const char *text = jsonx_str(data, "text");
        if (!text || !*text) {
            printf("# no policy in force on hub %s (everything the built-in checks allow)\n",
                   c->hub.hub_id);
            return EXIT_OK;
        }
        fputs(text, stdout);
        return EXIT_OK;
    }
    if ((!strcmp(sub, "diff") || !strcmp(sub, "set")) && argc == 3) {
        char *text = NULL;
        policy *p = NULL;
        if ((rc = read_policy_file(argv[2], &text, &p)) != EXIT_OK) return rc;
        policy_free(p);
        if (!strcmp(sub, "diff")) {
            rc = request(c, cJSON_CreateObject(), "policy_get", &data);
            if (rc == EXIT_OK) {
                int64_t version = 0;
                jsonx_int(data, "version", 0, INT64_MAX, &version);
                printf("# in force: version %lld; %s: the new file\n", (long long)version, argv[2]);
                print_line_diff(jsonx_str(data, "text") ? jsonx_str(data, "text") : "", text);
            }
        } else {
            cJSON *req = cJSON_CreateObject();
            cJSON_AddStringToObject(req, "text", text);
            rc = request(c, req, "policy_set", &data);
            if (rc == EXIT_OK) {
                int64_t version = 0;
                jsonx_int(data, "version", 0, INT64_MAX, &version);
                printf("policy version %lld in force (sha256 %s)\n", (long long)version,
                       jsonx_str(data, "sha256") ? jsonx_str(data, "sha256") : "?");
            }
        }
        free(text);
        return rc;
    }
    fprintf(stderr, "usage: outpost policy check FILE | show | diff FILE | set FILE\n");
    return EXIT_USAGE;
}

/* policy check FILE: local, no hub needed. */
static int policy_check_local(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: outpost policy check FILE\n");
        return EXIT_USAGE;
    }
    char *text = NULL;
    policy *p = NULL;
    int rc = read_policy_file(argv[2], &text, &p);
    if (rc != EXIT_OK) return rc;
    printf("%s: valid, version %d, sha256 %s\n", argv[2], policy_version(p), policy_hash(p));
    policy_free(p);
    free(text);
    return EXIT_OK;
}

/*
 * audit verify runs locally on the hub's database file and needs no broker:
 * it recomputes the whole tree and checks every signed head with the hub's
 * public key (from cli.conf), and a head kept elsewhere if given.
 */
static int audit_verify_local(const cli_paths *p, int argc, char **argv)
{
    const char *db = NULL, *trusted_path = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strcmp(argv[i], "--trusted-head") && i + 1 < argc)
            trusted_path = argv[++i];
        else {
            fprintf(stderr, "usage: outpost audit verify [--db FILE] [--trusted-head FILE]\n");
            return EXIT_USAGE;
        }
    }
    const char *hub_dir = p->hub_dir ? p->hub_dir : getenv("OUTPOST_HUB_DIR");
    char conf_path[PATH_MAX], db_path[PATH_MAX], err[512];
    if (!hub_dir && !p->hub_conf) {
        fprintf(stderr,
                "outpost audit verify: pass --hub-dir DIR (or --hub-conf FILE --db FILE)\n");
        return EXIT_USAGE;
    }
    snprintf(conf_path, sizeof conf_path, "%s", p->hub_conf ? p->hub_conf : "");
    if (!p->hub_conf) snprintf(conf_path, sizeof conf_path, "%s/cli.conf", hub_dir);
    if (db)
        snprintf(db_path, sizeof db_path, "%s", db);
    else if (hub_dir)
        snprintf(db_path, sizeof db_path, "%s/hub.db", hub_dir);
    else {
        fprintf(stderr, "outpost audit verify: --db FILE is required with --hub-conf\n");
        return EXIT_USAGE;
    }
    opclient_hub hub;
    if (opclient_load_hub(conf_path, &hub, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_USAGE;
    }
    audit_sth trusted;
    if (trusted_path) {
        char *text = NULL;
        cJSON *o = NULL;
        if (os_read_file(trusted_path, 64 * 1024, &text, NULL) != OP_OK ||
            !(o = cJSON_Parse(text)) || auditlog_head_from_json(o, &trusted) != OP_OK) {
            fprintf(stderr,
                    "outpost audit verify: %s is not a head printed by `outpost audit"
                    " head`\n",
                    trusted_path);
            free(text);
            cJSON_Delete(o);
            return EXIT_USAGE;
        }
        free(text);
        cJSON_Delete(o);
    }
    auditlog *log = NULL;
    if (access(db_path, R_OK) != 0 || auditlog_open(db_path, &log) != OP_OK) {
        fprintf(stderr, "outpost audit verify: cannot open %s\n", db_path);
        return EXIT_FAILURE_RUNTIME;
    }
    char finding[512];
    audit_hash_accelerate(1);
    int64_t t0 = os_mono_us();
    int rc =
        auditlog_verify(log, hub.hub_pk, trusted_path ? &trusted : NULL, finding, sizeof finding);
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

static int cmd_stats(cli *c, int argc, char **argv)
{
    cJSON *data = NULL;
    int rc = request(c, cJSON_CreateObject(), "stats", &data);
    if (rc == EXIT_OK) print_json(data);
    return rc;
}

int cli_main(int argc, char **argv)
{
    cli_paths paths = {0};
    cli c;
    memset(&c, 0, sizeof c);
    c.timeout_ms = 10000;
    const char *cmd = argv[0];
    /* Pull the common options out, leaving the command's own arguments in order. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0, want_help = 0;
    if (!rest) return EXIT_FAILURE_RUNTIME;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                rest[n_rest++] = argv[i++];
            break;
        }
        if (strcmp(a, "--hub-dir") == 0 && v)
            paths.hub_dir = v, i++;
        else if (strcmp(a, "--hub-conf") == 0 && v)
            paths.hub_conf = v, i++;
        else if (strcmp(a, "--identity") == 0 && v)
            paths.identity = v, i++;
        else if (strcmp(a, "--timeout") == 0 && v) {
            int64_t t;
            if (util_parse_i64(v, 100, 3600000, &t) != OP_OK) {
                fprintf(stderr, "outpost: --timeout must be 100 to 3600000 ms\n");
                free(rest);
                return EXIT_USAGE;
            }
            c.timeout_ms = (int)t;
            i++;
        } else if (strcmp(a, "--json") == 0)
            c.json = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            want_help = 1;
        else
            rest[n_rest++] = argv[i];
    }
    int rc;
    if (want_help) {
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(commands[i].name, cmd) == 0)
                printf("usage: outpost %s\n", commands[i].summary);
        if (strcmp(cmd, "submit") == 0) submit_usage(stdout);
        common_help();
        free(rest);
        return EXIT_OK;
    }
    if (strcmp(cmd, "operator-key") == 0) {
        const char *hub_dir = paths.hub_dir ? paths.hub_dir : getenv("OUTPOST_HUB_DIR");
        char dir[PATH_MAX];
        if (paths.identity)
            snprintf(dir, sizeof dir, "%s", paths.identity);
        else if (hub_dir)
            snprintf(dir, sizeof dir, "%s/admin", hub_dir);
        else
            snprintf(dir, sizeof dir, "%s/.outpost/operator",
                     getenv("HOME") ? getenv("HOME") : ".");
        rc = opclient_identity(dir, &c.identity) == OP_OK ? EXIT_OK : EXIT_USAGE;
        if (rc == EXIT_OK)
            printf("%s operator key (add this line to the hub's operators file)\n",
                   c.identity.pk_hex);
        ident_wipe(&c.identity);
        free(rest);
        return rc;
    }
    if (strcmp(cmd, "policy") == 0 && n_rest > 1 && strcmp(rest[1], "check") == 0) {
        rc = policy_check_local(n_rest, rest);
        free(rest);
        return rc;
    }
    if (strcmp(cmd, "audit") == 0 && n_rest > 1 && strcmp(rest[1], "verify") == 0) {
        rc = audit_verify_local(&paths, n_rest, rest);
        free(rest);
        return rc;
    }
    if (strcmp(cmd, "leave") == 0) {
        rc = cmd_leave(n_rest, rest);
        free(rest);
        return rc;
    }
    if (strcmp(cmd, "power") == 0) {
        rc = cmd_power(n_rest, rest);
        free(rest);
        return rc;
    }
    if (strcmp(cmd, "submit") == 0) {
        for (int k = 1; k + 1 < n_rest; k++)
            if (strcmp(rest[k], "--local") == 0) c.local_socket = rest[k + 1];
        if (c.local_socket) {
            rc = cmd_submit(&c, n_rest, rest);
            free(rest);
            return rc;
        }
    }
    rc = cli_connect(&c, &paths);
    if (rc == EXIT_OK) {
        if (strcmp(cmd, "token") == 0)
            rc = cmd_token(&c, n_rest, rest);
        else if (strcmp(cmd, "submit") == 0)
            rc = cmd_submit(&c, n_rest, rest);
        else if (strcmp(cmd, "jobs") == 0)
            rc = cmd_jobs(&c, n_rest, rest);
        else if (strcmp(cmd, "job") == 0)
            rc = cmd_job(&c, n_rest, rest);
        else if (strcmp(cmd, "result") == 0)
            rc = cmd_result(&c, n_rest, rest);
        else if (strcmp(cmd, "sites") == 0)
            rc = cmd_sites(&c, n_rest, rest);
        else if (strcmp(cmd, "watch") == 0)
            rc = cmd_watch(&c, n_rest, rest);
        else if (strcmp(cmd, "cancel") == 0)
            rc = cmd_cancel(&c, n_rest, rest);
        else if (strcmp(cmd, "audit") == 0)
            rc = cmd_audit(&c, n_rest, rest);
        else if (strcmp(cmd, "explain") == 0)
            rc = cmd_explain(&c, n_rest, rest);
        else if (strcmp(cmd, "approve") == 0)
            rc = cmd_approve(&c, n_rest, rest);
        else if (strcmp(cmd, "policy") == 0)
            rc = cmd_policy(&c, n_rest, rest);
        else
            rc = cmd_stats(&c, n_rest, rest);
    }
    cJSON_Delete(c.response);
    free(c.wait_ids);
    free(c.wait_state);
    if (c.bus) bus_close(c.bus);
    ident_wipe(&c.identity);
    free(rest);
    return rc;
}
