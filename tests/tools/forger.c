/*
 * forger: a test harness that lies with a real site's key. It loads an
 * enrolled site's identity and broker certificate from its data directory,
 * listens on that site's inbox like the site does, and answers every job
 * offered there at once with a forged result (the stdout and exit code
 * given), signed with the site's key and sealed to the hub: exactly what a
 * site whose binary was changed to lie would send. The real site may keep
 * running beside it (its heartbeats keep it alive at the hub); the forged
 * answer comes first. Used by tests/integration/test_verify.py.
 *
 *   forger --dir SITE_DIR --id SITE_ID --hub-pk HEX --port P
 *          [--stdout TEXT] [--exit N] [--seconds N]
 *
 * Prints "forged JOB ATTEMPT" for each forged result, "ready" once subscribed.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "io/bus.h"
#include "io/keyfile.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct forger {
    ident me;
    uint8_t hub_pk[32];
    msg_window hub_window;
    msg_stats stats;
    const char *out_text;
    int64_t exit_code;
    bus *b;
    int forged;
} forger;

static int lookup_hub(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    forger *fg = ctx;
    *pk = fg->hub_pk;
    *window = &fg->hub_window;
    return OP_OK;
}

/* The result a lying site sends for (job, attempt): what it claims the job printed. */
static void forge(forger *fg, int64_t job, int64_t attempt)
{
    cJSON *item = cJSON_CreateObject(), *body = cJSON_CreateObject();
    cJSON *results = body ? cJSON_AddArrayToObject(body, "results") : NULL;
    if (!item || !results) {
        cJSON_Delete(item);
        cJSON_Delete(body);
        return;
    }
    jsonx_add_int(item, "job", job);
    jsonx_add_int(item, "attempt", attempt);
    cJSON_AddStringToObject(item, "site", fg->me.id);
    cJSON_AddStringToObject(item, "kind", "exec");
    jsonx_add_int(item, "exit_code", fg->exit_code);
    jsonx_add_int(item, "term_signal", 0);
    cJSON_AddStringToObject(item, "stdout", fg->out_text);
    cJSON_AddStringToObject(item, "stderr", "");
    cJSON_AddNumberToObject(item, "cpu_seconds", 0.01);
    jsonx_add_int(item, "wall_ms", 10);
    cJSON_AddItemToArray(results, item);
    char topic[PROTO_TOPIC_MAX];
    if (proto_topic(topic, sizeof topic, "site", fg->me.id, "result") == OP_OK &&
        bus_publish_sealed(fg->b, topic, body, "result", fg->hub_pk) == OP_OK) {
        printf("forged %lld %lld\n", (long long)job, (long long)attempt);
        fflush(stdout);
        fg->forged++;
    }
    cJSON_Delete(body);
}

static void on_message(void *ctx, const char *topic, const void *payload, size_t len,
                       const char *kid, const char *sig)
{
    forger *fg = ctx;
    cJSON *body = NULL;
    msg_header hdr;
    char reason[200];
    if (msg_open_for(&fg->me, proto_must_seal(topic), topic, payload, len, kid, sig, lookup_hub, fg,
                     os_now_ms(), 60000, &body, &hdr, &fg->stats, reason, sizeof reason) != OP_OK) {
        fprintf(stderr, "forger: dropped a message on %s: %s\n", topic, reason);
        return;
    }
    if (strcmp(hdr.type, "offer") == 0) {
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(body, "jobs"))
        {
            int64_t job, attempt;
            if (jsonx_int(o, "job", 1, INT64_MAX, &job) == OP_OK &&
                jsonx_int(o, "attempt", 1, INT64_MAX, &attempt) == OP_OK)
                forge(fg, job, attempt);
        }
    }
    cJSON_Delete(body);
}

typedef struct args {
    const char *dir, *id, *hub_pk, *out_text;
    int port;
    int64_t exit_code, seconds;
} args;

static int parse(int argc, char **argv, args *a)
{
    static const struct option opts[] = {
        {"dir", required_argument, 0, 'd'},     {"id", required_argument, 0, 'i'},
        {"hub-pk", required_argument, 0, 'k'},  {"port", required_argument, 0, 'p'},
        {"stdout", required_argument, 0, 'o'},  {"exit", required_argument, 0, 'e'},
        {"seconds", required_argument, 0, 's'}, {0, 0, 0, 0}};
    *a = (args){.out_text = "FORGED RESULT 42\n", .seconds = 120};
    int c;
    int64_t port = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd') a->dir = optarg;
        if (c == 'i') a->id = optarg;
        if (c == 'k') a->hub_pk = optarg;
        if (c == 'o') a->out_text = optarg;
        if ((c == 'p' && util_parse_i64(optarg, 1, 65535, &port) != OP_OK) ||
            (c == 'e' && util_parse_i64(optarg, -1, 255, &a->exit_code) != OP_OK) ||
            (c == 's' && util_parse_i64(optarg, 1, 3600, &a->seconds) != OP_OK) || c == '?')
            return -1;
    }
    a->port = (int)port;
    return a->dir && a->id && a->hub_pk && a->port ? 0 : -1;
}

int main(int argc, char **argv)
{
    args a;
    forger fg = {0};
    char path[PATH_MAX], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], client_id[96],
        inbox[PROTO_TOPIC_MAX];
    if (sodium_init() < 0 || parse(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: forger --dir SITE_DIR --id SITE_ID --hub-pk HEX --port P"
                        " [--stdout TEXT] [--exit N] [--seconds N]\n");
        return 2;
    }
    fg.out_text = a.out_text;
    fg.exit_code = a.exit_code;
    if (util_unhex(a.hub_pk, fg.hub_pk, 32) != OP_OK ||
        util_fmt(path, sizeof path, "%s/identity", a.dir) != OP_OK ||
        keyfile_load_or_create(path, a.id, &fg.me) != OP_OK ||
        util_fmt(ca, sizeof ca, "%s/tls/ca.crt", a.dir) != OP_OK ||
        util_fmt(cert, sizeof cert, "%s/tls/site.crt", a.dir) != OP_OK ||
        util_fmt(key, sizeof key, "%s/tls/site.key", a.dir) != OP_OK ||
        util_fmt(client_id, sizeof client_id, "forger-%s", a.id) != OP_OK ||
        proto_topic(inbox, sizeof inbox, "site", a.id, "inbox") != OP_OK) {
        fprintf(stderr, "forger: cannot load the site's key from %s\n", a.dir);
        return 1;
    }
    bus_config cfg = {.host = "127.0.0.1",
                      .port = a.port,
                      .client_id = client_id,
                      .clean_start = 1,
                      .keepalive_s = 30,
                      .tls_ca = ca,
                      .tls_cert = cert,
                      .tls_key = key};
    if (bus_open(&cfg, &fg.me, on_message, &fg, &fg.b) != OP_OK ||
        bus_wait_connected(fg.b, 10000) != OP_OK || bus_subscribe(fg.b, inbox) != OP_OK) {
        fprintf(stderr, "forger: cannot connect to the broker on port %d\n", a.port);
        bus_close(fg.b);
        return 1;
    }
    bus_loop(fg.b, 300); /* the SUBACK */
    printf("ready\n");
    fflush(stdout);
    int64_t until = os_mono_ms() + a.seconds * 1000;
    while (os_mono_ms() < until)
        bus_loop(fg.b, 100);
    bus_close(fg.b);
    fprintf(stderr, "forger: %d results forged\n", fg.forged);
    return 0;
}
