/*
 * cli_conn: one CLI invocation's context: the common options, the
 * connection to the hub's broker (opened by the first request), and one
 * signed request with its signed answer.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "wire/proto.h"

#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void cli__init(cli *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->timeout_ms = 10000;
}

void cli__close(cli *c)
{
    cJSON_Delete(c->response);
    c->response = NULL;
    free(c->wait_ids);
    free(c->wait_state);
    c->wait_ids = NULL;
    c->wait_state = NULL;
    if (c->bus) bus_close(c->bus);
    c->bus = NULL;
    ident_wipe(&c->identity);
}

/* The merged option list: the command's own first, so that they win a name clash. */
static int getopt_prepare(cli *c, const char *shortopts, const struct option *own)
{
    static const struct option common[] = {
        {"hub-dir", required_argument, NULL, CLI_OPT_HUB_DIR},
        {"hub-conf", required_argument, NULL, CLI_OPT_HUB_CONF},
        {"identity", required_argument, NULL, CLI_OPT_IDENTITY},
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"help", no_argument, NULL, 'h'},
    };
    size_t n = 0, n_common = sizeof common / sizeof common[0];
    while (own && own[n].name)
        n++;
    if (n + n_common + 1 > CLI_MAX_OPTIONS ||
        util_fmt(c->shortopts, sizeof c->shortopts, ":%sh", shortopts) != OP_OK)
        return OP_ETOOBIG;
    memset(c->longopts, 0, sizeof c->longopts);
    if (n) memcpy(c->longopts, own, n * sizeof *own);
    memcpy(c->longopts + n, common, sizeof common);
    optind = 0; /* glibc: start over (a unit test parses several command lines) */
    opterr = 0; /* the messages below name the command */
    c->opt_ready = 1;
    return OP_OK;
}

/* A common option's value. 0, or '?' with the reason printed. */
static int common_option(cli *c, int code, const char *value)
{
    int64_t ms;
    switch (code) {
    case CLI_OPT_HUB_DIR:
        c->hub_dir = value;
        return 0;
    case CLI_OPT_HUB_CONF:
        c->hub_conf = value;
        return 0;
    case CLI_OPT_IDENTITY:
        c->identity_dir = value;
        return 0;
    case CLI_OPT_JSON:
        c->json = 1;
        return 0;
    default:
        break;
    }
    if (util_parse_i64(value, 100, 3600000, &ms) != OP_OK) {
        fprintf(stderr, "outpost: --timeout must be 100 to 3600000 ms\n");
        return '?';
    }
    c->timeout_ms = (int)ms;
    return 0;
}

int cli__getopt(cli *c, int argc, char **argv, const char *shortopts, const struct option *own)
{
    if (!c->opt_ready && getopt_prepare(c, shortopts, own) != OP_OK) {
        fprintf(stderr, "outpost %s: too many options\n", c->cmd);
        return '?';
    }
    for (;;) {
        int code = getopt_long(argc, argv, c->shortopts, c->longopts, NULL);
        const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (code >= CLI_OPT_HUB_DIR && code <= CLI_OPT_JSON) {
            if (common_option(c, code, optarg) != 0) return '?';
            continue;
        }
        if (code == ':') {
            fprintf(stderr, "outpost %s: %s needs a value\n", c->cmd, arg);
            return '?';
        }
        if (code == '?') {
            if (optopt && optopt < 0x100)
                fprintf(stderr, "outpost %s: unknown option -%c\n", c->cmd, optopt);
            else
                fprintf(stderr, "outpost %s: unknown option %s\n", c->cmd, arg);
            return '?';
        }
        return code;
    }
}

const char *cli__hub_dir(const cli *c)
{
    return c->hub_dir ? c->hub_dir : getenv("OUTPOST_HUB_DIR");
}

int cli__hub_store(const cli *c, const char *db, const char *conf_path, char *out, size_t len)
{
    const char *hub_dir = cli__hub_dir(c);
    opclient_hub hub;
    char err[512];
    int rc;
    if (db)
        rc = util_fmt(out, len, "%s", db);
    else if (opclient_load_hub(conf_path, &hub, err, sizeof err) == OP_OK && hub.store[0])
        rc = util_fmt(out, len, "%s", hub.store);
    else if (hub_dir)
        rc = util_fmt(out, len, "%s/hub.db", hub_dir);
    else {
        fprintf(stderr, "outpost %s: %s names no store: pass --db FILE-or-URL\n", c->cmd,
                conf_path);
        return EXIT_USAGE;
    }
    if (rc == OP_OK) return EXIT_OK;
    fprintf(stderr, "outpost %s: the database's name is too long\n", c->cmd);
    return EXIT_USAGE;
}

void cli__identity_dir(const cli *c, char *buf, size_t len)
{
    const char *hub_dir = cli__hub_dir(c);
    if (c->identity_dir)
        snprintf(buf, len, "%s", c->identity_dir);
    else if (hub_dir && !c->hub_conf)
        snprintf(buf, len, "%s/admin", hub_dir);
    else
        snprintf(buf, len, "%s/.outpost/operator", getenv("HOME") ? getenv("HOME") : ".");
}

static int lookup_hub(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    cli *c = ctx;
    if (strcmp(kid, c->hub.hub_id) != 0) return OP_EUNKNOWN;
    *pk = c->hub.hub_pk;
    *window = &c->hub_window;
    return OP_OK;
}

/* A "done" notification for submit --wait: records the final state of the jobs it waits for. */
static void note_done(cli *c, const cJSON *body)
{
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
}

/* Every message from the hub: kept when it answers the pending request, else dropped. */
static void on_message(void *ctx, const char *topic, const void *payload, size_t len,
                       const char *kid, const char *sig)
{
    cli *c = ctx;
    cJSON *body = NULL;
    msg_header hdr;
    char reason[256];
    int rc = msg_open_for(&c->identity, 1, topic, payload, len, kid, sig, lookup_hub, c,
                          os_now_ms(), 120000, &body, &hdr, &c->msg, reason, sizeof reason);
    if (rc != OP_OK) {
        if (rc == OP_EPERM)
            log_debug("cli", "ignored: %s", reason);
        else
            log_warn("cli", "ignored: %s", reason);
        return;
    }
    const char *rid = jsonx_str(body, "rid");
    if (strcmp(hdr.type, "done") == 0) {
        note_done(c, body);
        cJSON_Delete(body);
        return;
    }
    if (rid && strcmp(rid, c->rid) == 0 && !c->response) {
        c->response = body;
        return;
    }
    cJSON_Delete(body);
}

/* The hub's address and key (cli.conf) and this operator's identity, from the options. */
static int load_hub_and_identity(cli *c)
{
    char conf_path[PATH_MAX], id_dir[PATH_MAX], err[512];
    const char *hub_dir = cli__hub_dir(c);
    if (c->hub_conf)
        snprintf(conf_path, sizeof conf_path, "%s", c->hub_conf);
    else if (hub_dir)
        snprintf(conf_path, sizeof conf_path, "%s/cli.conf", hub_dir);
    else {
        fprintf(stderr, "outpost: which hub? pass --hub-dir DIR (the hub's data dir) or"
                        " --hub-conf FILE, or set OUTPOST_HUB_DIR\n");
        return EXIT_USAGE;
    }
    cli__identity_dir(c, id_dir, sizeof id_dir);
    if (opclient_load_hub(conf_path, &c->hub, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_USAGE;
    }
    if (opclient_identity(id_dir, &c->identity) != OP_OK) {
        fprintf(stderr, "outpost: cannot load operator identity from %s\n", id_dir);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/*
 * The first sequence number of this process: a random 52-bit nonce (wire/msg.h).
 * Many CLI processes share one operator key, so neither a shared counter nor
 * the wall clock can keep their numbers apart; chance can, at 2^-52 a pair.
 * Above 2^20 and below 2^52, so that counting up stays an exact JSON number.
 */
static uint64_t nonce_start(void)
{
    uint64_t r;
    randombytes_buf(&r, sizeof r);
    return ((r >> 12) | ((uint64_t)1 << 20)) & (((uint64_t)1 << 52) - 1);
}

/*
 * With broker_ca in cli.conf: the TLS files, the operator's certificate from
 * its key dir. EXIT_OK, or EXIT_USAGE with what to do printed.
 */
static int tls_files(cli *c, bus_config *bc, char *cert, char *key, size_t len)
{
    char id_dir[PATH_MAX];
    if (!c->hub.broker_ca[0]) return EXIT_OK;
    cli__identity_dir(c, id_dir, sizeof id_dir);
    if (opclient_broker_cert(id_dir, cert, key, len) != OP_OK) {
        fprintf(stderr,
                "outpost: no broker certificate in %s (broker.crt, broker.key): on the hub's"
                " machine run `outpost ca issue --hub-dir HUB_DIR --name %s --out %s`\n",
                id_dir, c->identity.id, id_dir);
        return EXIT_USAGE;
    }
    bc->tls_ca = c->hub.broker_ca;
    bc->tls_cert = cert;
    bc->tls_key = key;
    return EXIT_OK;
}

/* Connects to the hub's broker as this operator and subscribes to the answers. */
static int cli_connect(cli *c)
{
    char cert[PATH_MAX], key[PATH_MAX];
    int rc = load_hub_and_identity(c);
    if (rc != EXIT_OK) return rc;
    const char *op_id = c->identity.id;
    char client_id[96];
    uint8_t nonce[4];
    randombytes_buf(nonce, sizeof nonce);
    snprintf(client_id, sizeof client_id, "outpost-cli-%s-%02x%02x%02x%02x", op_id, nonce[0],
             nonce[1], nonce[2], nonce[3]);
    bus_broker brokers[BUS_MAX_BROKERS];
    int n_brokers = 0;
    char why[200];
    if (bus_parse_brokers(c->hub.broker_host, (int)c->hub.broker_port, brokers, BUS_MAX_BROKERS,
                          &n_brokers, why, sizeof why) != OP_OK) {
        fprintf(stderr, "outpost: cli.conf: broker_host: %s\n", why);
        return EXIT_USAGE;
    }
    /* Each broker of the list in turn until one answers; a command is too short to go back. */
    bus_config bc = {.brokers = brokers,
                     .n_brokers = n_brokers,
                     .client_id = client_id,
                     .clean_start = 1,
                     .session_expiry_s = 0,
                     .keepalive_s = 10,
                     .seq_start = nonce_start()};
    if ((rc = tls_files(c, &bc, cert, key, sizeof cert)) != EXIT_OK) return rc;
    if (bus_open(&bc, &c->identity, on_message, c, &c->bus) != OP_OK) return EXIT_UNREACHABLE;
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "op", op_id, "resp");
    bus_subscribe(c->bus, topic);
    if (bus_wait_connected(c->bus, c->timeout_ms) != OP_OK) {
        fprintf(stderr,
                "outpost: cannot reach the broker at %s (port %lld unless given; is the hub's"
                " broker running?%s)\n",
                c->hub.broker_host, (long long)c->hub.broker_port,
                c->hub.broker_ca[0] ? " does it trust this operator's certificate?" : "");
        return EXIT_UNREACHABLE;
    }
    /* Give the SUBACK a moment so that the response cannot arrive before the subscription. */
    bus_loop(c->bus, 20);
    return EXIT_OK;
}

/*
 * Waits for the answer to the request just published. A request can be lost
 * when the broker restarts without persistence before the hub has subscribed
 * again. It is asked again every 2 s (same rid, new nonce and signature):
 * the hub runs a command that changes something once per rid and answers a
 * second copy with the first answer, so a retried submit makes no second job.
 */
static void await_answer(cli *c, const char *topic, cJSON *req)
{
    int64_t deadline = os_mono_ms() + c->timeout_ms;
    int64_t resend_at = os_mono_ms() + 2000;
    while (!c->response && os_mono_ms() < deadline && !runctl_stopping()) {
        bus_loop(c->bus, 20);
        if (os_mono_ms() >= resend_at) {
            bus_publish_sealed(c->bus, topic, req, "req", c->hub.hub_pk);
            resend_at = os_mono_ms() + 2000;
        }
    }
}

/* The answer's verdict: the hub's refusal printed and mapped to an exit code. */
static int answer_verdict(cli *c, const char *cmd, cJSON **data)
{
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

int cli__request(cli *c, cJSON *req, const char *cmd, cJSON **data)
{
    if (!req) return EXIT_FAILURE_RUNTIME;
    if (!c->bus) {
        int rc = cli_connect(c);
        if (rc != EXIT_OK) {
            cJSON_Delete(req);
            return rc;
        }
    }
    uint8_t r[8];
    randombytes_buf(r, sizeof r);
    util_hex(r, sizeof r, c->rid);
    cJSON_AddStringToObject(req, "cmd", cmd);
    cJSON_AddStringToObject(req, "rid", c->rid);
    cJSON_AddBoolToObject(req, "once", 1); /* the rid is random: run it once (hub/replay.c) */
    cJSON_Delete(c->response);
    c->response = NULL;
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "op", c->identity.id, "req");
    int rc = bus_publish_sealed(c->bus, topic, req, "req", c->hub.hub_pk);
    if (rc != OP_OK) {
        cJSON_Delete(req);
        fprintf(stderr, "outpost: could not send the request: %s\n", op_strerror(rc));
        return EXIT_UNREACHABLE;
    }
    await_answer(c, topic, req);
    cJSON_Delete(req);
    return answer_verdict(c, cmd, data);
}

void cli__pause(cli *c, int64_t ms)
{
    int64_t until = os_mono_ms() + ms;
    while (os_mono_ms() < until && !runctl_stopping())
        bus_loop(c->bus, 50);
}
