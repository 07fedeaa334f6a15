/*
 * outpost-bench: the measuring programs behind `make bench`. Every figure
 * is printed next to a baseline measured in the same run, as a ratio; none
 * is asserted.
 *
 *   outpost-bench micro
 *       message sign+verify (our envelope) vs raw Ed25519 on the same bytes;
 *       placement (sched_place) vs a bare free-core scan, at 8 and 10,000
 *       sites; job spec parsing vs cJSON parsing alone.
 *   outpost-bench fleet [N]
 *       power-aware placement through the fleet index (sched_fleet_place +
 *       reserve, a running job released whenever a job must wait) at 1,000,
 *       10,000 and 100,000 sites with every constraint on, vs the full scan
 *       (sched_place) on the same fleet; scheduler bytes per site.
 *   outpost-bench mqtt --port P --count N --window W [--ca F --cert F --key F]
 *       baseline: QoS 1 round trips through the broker to an echo client
 *       (over TLS with that client certificate when given, as Outpost's own
 *       clients connect).
 *   outpost-bench e2e --hub-dir D --kind noop|exec --count N --batch B --window W
 *       end to end through hub and sites: submit with notification, time
 *       from send to the hub's "done" per job; throughput over the run.
 * Each subcommand prints one JSON object on stdout.
 */
#include "base/conf.h"
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/sched.h"
#include "io/auditlog.h"
#include "io/bus.h"
#include "io/opclient.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile double sink;

static double seconds_since(int64_t start_us)
{
    return (double)(os_mono_us() - start_us) / 1e6;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(int64_t *us, size_t n, double p)
{
    if (n == 0) return NAN;
    qsort(us, n, sizeof *us, cmp_i64);
    size_t idx = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)us[idx] / 1000.0;
}

/* ---------- micro ---------- */

static void micro_sign_verify(cJSON *out)
{
    ident id;
    memset(&id, 0, sizeof id);
    snprintf(id.id, sizeof id.id, "dc-1");
    crypto_sign_keypair(id.pk, id.sk);
    const char *topic = "outpost/v1/site/dc-1/state";
    cJSON *body = cJSON_Parse("{\"cores\":4,\"memory_mb\":4096,\"free_cores\":3,"
                              "\"power_budget_watts\":400,\"watts_per_core\":45,"
                              "\"running\":[{\"job\":17,\"attempt\":1}]}");
    size_t len;
    char *payload = msg_encode(body, "dc-1", "state", 1, os_now_ms(), &len);
    const int n = 20000;
    char sig[129];
    int64_t t0 = os_mono_us();
    for (int i = 0; i < n; i++) {
        msg_sign(&id, topic, payload, len, sig);
        if (msg_verify(id.pk, topic, payload, len, sig) != OP_OK) abort();
    }
    double ours = n / seconds_since(t0);
    /* Baseline: libsodium alone over the same bytes, no envelope. */
    size_t total = strlen(topic) + 1 + len;
    uint8_t *buf = malloc(total), raw_sig[64];
    memcpy(buf, topic, strlen(topic) + 1);
    memcpy(buf + strlen(topic) + 1, payload, len);
    t0 = os_mono_us();
    for (int i = 0; i < n; i++) {
        crypto_sign_detached(raw_sig, NULL, buf, total, id.sk);
        if (crypto_sign_verify_detached(raw_sig, buf, total, id.pk) != 0) abort();
    }
    double raw = n / seconds_since(t0);
    /* Whole receive path: msg_open (parse, window, checks) after a sign. */
    msg_window window;
    memset(&window, 0, sizeof window);
    msg_stats stats;
    memset(&stats, 0, sizeof stats);
    t0 = os_mono_us();
    for (int i = 0; i < n; i++) {
        char *p = msg_encode(body, "dc-1", "state", (uint64_t)i + 2, os_now_ms(), &len);
        msg_sign(&id, topic, p, len, sig);
        free(p);
    }
    double encode_sign = n / seconds_since(t0);
    free(buf);
    free(payload);
    cJSON_Delete(body);
    cJSON *o = cJSON_AddObjectToObject(out, "sign_verify");
    cJSON_AddNumberToObject(o, "payload_bytes", (double)len);
    cJSON_AddNumberToObject(o, "envelope_per_s", ours);
    cJSON_AddNumberToObject(o, "raw_ed25519_per_s", raw);
    cJSON_AddNumberToObject(o, "ratio_vs_raw", ours / raw);
    cJSON_AddNumberToObject(o, "encode_and_sign_per_s", encode_sign);
}

/*
 * Sealing one message of len bytes to a recipient (msg_seal) and opening it
 * there (msg_unseal), timed apart, p50 of n: the cost sealing adds to every
 * message but a heartbeat. Baseline: the signature check the receiver runs
 * on the same sealed bytes anyway (msg_verify).
 */
static void micro_seal_one(cJSON *out, const char *key, size_t len, int n)
{
    ident to;
    memset(&to, 0, sizeof to);
    crypto_sign_keypair(to.pk, to.sk);
    char *text = malloc(len);
    int64_t *seal_us = calloc((size_t)n, sizeof *seal_us);
    int64_t *open_us = calloc((size_t)n, sizeof *open_us);
    int64_t *both_us = calloc((size_t)n, sizeof *both_us);
    int64_t *verify_us = calloc((size_t)n, sizeof *verify_us);
    if (!text || !seal_us || !open_us || !both_us || !verify_us) abort();
    for (size_t i = 0; i < len; i++)
        text[i] = (char)('a' + i % 26);
    const char *topic = "outpost/v1/site/dc-1/result";
    for (int i = 0; i < n; i++) {
        uint8_t *sealed = NULL;
        char *plain = NULL, sig[129];
        size_t sealed_len = 0, plain_len = 0;
        int64_t t0 = os_mono_us();
        if (msg_seal(to.pk, text, len, &sealed, &sealed_len) != OP_OK) abort();
        int64_t t1 = os_mono_us();
        if (msg_unseal(&to, sealed, sealed_len, &plain, &plain_len) != OP_OK) abort();
        int64_t t2 = os_mono_us();
        msg_sign(&to, topic, sealed, sealed_len, sig);
        int64_t t3 = os_mono_us();
        if (msg_verify(to.pk, topic, sealed, sealed_len, sig) != OP_OK) abort();
        verify_us[i] = os_mono_us() - t3;
        seal_us[i] = t1 - t0;
        open_us[i] = t2 - t1;
        both_us[i] = t2 - t0;
        free(sealed);
        free(plain);
    }
    cJSON *o = cJSON_AddObjectToObject(out, key);
    cJSON_AddNumberToObject(o, "bytes", (double)len);
    cJSON_AddNumberToObject(o, "seal_p50_ms", percentile_ms(seal_us, (size_t)n, 0.5));
    cJSON_AddNumberToObject(o, "open_p50_ms", percentile_ms(open_us, (size_t)n, 0.5));
    cJSON_AddNumberToObject(o, "seal_open_p50_ms", percentile_ms(both_us, (size_t)n, 0.5));
    cJSON_AddNumberToObject(o, "verify_p50_ms", percentile_ms(verify_us, (size_t)n, 0.5));
    free(text);
    free(seal_us);
    free(open_us);
    free(both_us);
    free(verify_us);
}

static void micro_sched(cJSON *out, size_t n_sites, const char *key)
{
    sched_site *sites = calloc(n_sites, sizeof *sites);
    char(*names)[16] = calloc(n_sites, sizeof *names);
    for (size_t i = 0; i < n_sites; i++) {
        snprintf(names[i], sizeof names[i], "s%zu", i);
        sites[i] = (sched_site){.id = names[i],
                                .class_bit = 1u << (i % 3),
                                .alive = i % 17 != 0,
                                .cores = 4,
                                .free_cores = (int)(i % 5),
                                .memory_mb = 4096,
                                .free_memory_mb = 2048,
                                .headroom_watts = (double)(i % 400),
                                .watts_per_core = 25};
    }
    sched_job job = {.cores = 1, .memory_mb = 256, .class_mask = 7};
    int iters = n_sites > 1000 ? 500 : 200000;
    int64_t t0 = os_mono_us();
    for (int i = 0; i < iters; i++) {
        sched_decision d;
        sched_place(sites, n_sites, &job, &d);
        sink += d.score;
        sched_decision_clear(&d);
    }
    double ours = iters / seconds_since(t0);
    /* Baseline: the cheapest possible placement, a scan for the most free cores. */
    t0 = os_mono_us();
    for (int i = 0; i < iters; i++) {
        int best = -1;
        for (size_t k = 0; k < n_sites; k++)
            if (sites[k].alive && sites[k].free_cores >= 1 &&
                (best < 0 || sites[k].free_cores > sites[best].free_cores))
                best = (int)k;
        sink += best;
    }
    double bare = iters / seconds_since(t0);
    cJSON *o = cJSON_AddObjectToObject(out, key);
    cJSON_AddNumberToObject(o, "sites", (double)n_sites);
    cJSON_AddNumberToObject(o, "placements_per_s", ours);
    cJSON_AddNumberToObject(o, "bare_scan_per_s", bare);
    cJSON_AddNumberToObject(o, "ratio_vs_bare_scan", ours / bare);
    free(sites);
    free(names);
}

static void micro_jobspec(cJSON *out)
{
    const char *text =
        "{\"kind\":\"exec\",\"name\":\"hash\",\"command\":[\"sha256sum\",\"in.csv\"],"
        "\"resources\":{\"cores\":1,\"memory_mb\":256,\"wall_s\":60},"
        "\"outputs\":[\"out.gz\"],\"site_classes\":[\"pod\",\"dc\"],"
        "\"inputs\":[{\"name\":\"in.csv\",\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e"
        "29e1b161e5c1fa7425e73043362938b9824\",\"data_b64\":\"aGVsbG8=\"}]}";
    const int n = 100000;
    char err[256];
    int64_t t0 = os_mono_us();
    for (int i = 0; i < n; i++) {
        jobspec spec;
        if (jobspec_parse(text, strlen(text), &spec, err, sizeof err) != OP_OK) abort();
        sink += spec.cores;
        jobspec_clear(&spec);
    }
    double ours = n / seconds_since(t0);
    t0 = os_mono_us();
    for (int i = 0; i < n; i++) {
        cJSON *j = cJSON_ParseWithLength(text, strlen(text));
        sink += j != NULL;
        cJSON_Delete(j);
    }
    double json = n / seconds_since(t0);
    cJSON *o = cJSON_AddObjectToObject(out, "jobspec_parse");
    cJSON_AddNumberToObject(o, "per_s", ours);
    cJSON_AddNumberToObject(o, "cjson_only_per_s", json);
    cJSON_AddNumberToObject(o, "ratio_vs_cjson", ours / json);
}

/* ---------- clients ---------- */

typedef struct client {
    ident identity;
    char hub_id[64];
    uint8_t hub_pk[32];
    msg_window window;
    msg_stats stats;
    bus *bus;
    /* e2e */
    int64_t *sent_us; /* by job id - first id */
    int64_t *latency_us;
    int64_t first_id;
    int64_t *req_sent_us; /* pipelined submits, by request number */
    size_t n_req, n_resp;
    int failed;
    size_t capacity;
    size_t done;
    /* mqtt baseline */
    int64_t *echo_sent_us;
    size_t echoed;
} client;

static int lookup_hub(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    client *c = ctx;
    if (strcmp(kid, c->hub_id) != 0) return OP_EUNKNOWN;
    *pk = c->hub_pk;
    *window = &c->window;
    return OP_OK;
}

static void on_e2e(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                   const char *sig)
{
    client *c = ctx;
    cJSON *body = NULL;
    msg_header hdr;
    char reason[200];
    if (msg_open_for(&c->identity, 1, topic, payload, len, kid, sig, lookup_hub, c, os_now_ms(),
                     120000, &body, &hdr, &c->stats, reason, sizeof reason) != OP_OK)
        return;
    if (strcmp(hdr.type, "done") == 0) {
        const cJSON *d;
        int64_t now = os_mono_us();
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(body, "jobs"))
        {
            int64_t id;
            if (jsonx_int(d, "job", 1, INT64_MAX, &id) != OP_OK || id < c->first_id ||
                (size_t)(id - c->first_id) >= c->capacity)
                continue;
            size_t k = (size_t)(id - c->first_id);
            if (c->latency_us[k] == 0 && c->sent_us[k] != 0) {
                c->latency_us[k] = now - c->sent_us[k];
                c->done++;
            }
        }
        cJSON_Delete(body);
        return;
    }
    const char *rid = jsonx_str(body, "rid");
    if (rid && c->req_sent_us && rid[0] == 'r') {
        /* Pipelined submissions: the rid names the request and its send time. */
        int64_t idx;
        if (util_parse_i64(rid + 1, 0, (int64_t)c->n_req - 1, &idx) == OP_OK) {
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(body, "data"), "ids");
            const cJSON *id;
            if (!cJSON_IsArray(ids)) {
                const char *e = jsonx_str(body, "error");
                fprintf(stderr, "submit failed: %s\n", e ? e : "?");
                c->failed = 1;
            }
            if (cJSON_IsArray(ids) && ids->child && c->first_id == 0)
                c->first_id = (int64_t)ids->child->valuedouble;
            cJSON_ArrayForEach(id, ids)
            {
                size_t k = (size_t)((int64_t)id->valuedouble - c->first_id);
                if (k < c->capacity) c->sent_us[k] = c->req_sent_us[idx];
            }
            c->n_resp++;
        }
        cJSON_Delete(body);
        return;
    }
    cJSON_Delete(body);
}

static int connect_operator(client *c, const char *hub_dir)
{
    char path[PATH_MAX], err[512];
    opclient_hub hub;
    snprintf(path, sizeof path, "%s/cli.conf", hub_dir);
    if (opclient_load_hub(path, &hub, err, sizeof err) != OP_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(c->hub_id, sizeof c->hub_id, "%s", hub.hub_id);
    memcpy(c->hub_pk, hub.hub_pk, 32);
    snprintf(path, sizeof path, "%s/admin", hub_dir);
    if (opclient_identity(path, &c->identity) != OP_OK) return -1;
    const char *op_id = c->identity.id;
    char cert[PATH_MAX], key[PATH_MAX];
    bus_config bc = {.host = hub.broker_host,
                     .port = (int)hub.broker_port,
                     .client_id = "outpost-bench",
                     .clean_start = 1,
                     .keepalive_s = 30};
    if (hub.broker_ca[0]) { /* TLS with the admin operator's certificate, as the CLI does */
        if (opclient_broker_cert(path, cert, key, sizeof cert) != OP_OK) return -1;
        bc.tls_ca = hub.broker_ca;
        bc.tls_cert = cert;
        bc.tls_key = key;
    }
    if (bus_open(&bc, &c->identity, on_e2e, c, &c->bus) != OP_OK) return -1;
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "op", op_id, "resp");
    bus_subscribe(c->bus, topic);
    if (bus_wait_connected(c->bus, 10000) != OP_OK) return -1;
    for (int i = 0; i < 5; i++)
        bus_loop(c->bus, 10);
    return 0;
}

/* Sends one submit of count copies without waiting; the response is matched by its rid. */
static int submit_async(client *c, const cJSON *spec, int count)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *specs = cJSON_AddArrayToObject(req, "specs");
    for (int i = 0; i < count; i++)
        cJSON_AddItemToArray(specs, cJSON_Duplicate(spec, 1));
    char rid[32];
    snprintf(rid, sizeof rid, "r%zu", c->n_req);
    cJSON_AddStringToObject(req, "cmd", "submit");
    cJSON_AddStringToObject(req, "rid", rid);
    cJSON_AddBoolToObject(req, "notify", 1);
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "op", c->identity.id, "req");
    c->req_sent_us[c->n_req++] = os_mono_us();
    int rc = bus_publish_sealed(c->bus, topic, req, "req", c->hub_pk);
    cJSON_Delete(req);
    return rc;
}

typedef struct e2e_args {
    const char *hub_dir, *kind;
    int64_t count, batch, window, timeout_s, pipeline, rate;
} e2e_args;

/* Options of `outpost-bench e2e`; 0, or 2 after printing the usage. */
static int e2e_parse(int argc, char **argv, e2e_args *a)
{
    *a = (e2e_args){
        .kind = "noop", .count = 2000, .batch = 50, .window = 400, .timeout_s = 600, .pipeline = 1};
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--hub-dir"))
            a->hub_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--kind"))
            a->kind = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            util_parse_i64(argv[i + 1], 1, 10000000, &a->count);
        else if (!strcmp(argv[i], "--batch"))
            util_parse_i64(argv[i + 1], 1, 1000, &a->batch);
        else if (!strcmp(argv[i], "--window"))
            util_parse_i64(argv[i + 1], 1, 1000000, &a->window);
        else if (!strcmp(argv[i], "--timeout"))
            util_parse_i64(argv[i + 1], 1, 86400, &a->timeout_s);
        else if (!strcmp(argv[i], "--pipeline"))
            util_parse_i64(argv[i + 1], 1, 64, &a->pipeline);
        else if (!strcmp(argv[i], "--rate"))
            util_parse_i64(argv[i + 1], 1, 1000000, &a->rate);
    }
    if (a->hub_dir) return 0;
    fprintf(stderr, "usage: outpost-bench e2e --hub-dir D [--kind noop|exec] [--count N]"
                    " [--batch B] [--window W]\n");
    return 2;
}

/* The run's figures as one JSON line on stdout. */
static void e2e_report(const e2e_args *a, const client *c, double elapsed)
{
    int64_t *lat = malloc((size_t)a->count * sizeof *lat);
    size_t n = 0;
    for (size_t k = 0; lat && k < c->capacity; k++)
        if (c->latency_us[k] > 0 && n < (size_t)a->count) lat[n++] = c->latency_us[k];
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "kind", a->kind);
    cJSON_AddNumberToObject(out, "jobs", (double)a->count);
    cJSON_AddNumberToObject(out, "batch", (double)a->batch);
    cJSON_AddNumberToObject(out, "window", (double)a->window);
    cJSON_AddNumberToObject(out, "pipeline", (double)a->pipeline);
    cJSON_AddNumberToObject(out, "offered_rate", (double)a->rate);
    cJSON_AddNumberToObject(out, "seconds", elapsed);
    cJSON_AddNumberToObject(out, "jobs_per_s", (double)a->count / elapsed);
    cJSON_AddNumberToObject(out, "p50_ms", lat ? percentile_ms(lat, n, 0.50) : 0);
    cJSON_AddNumberToObject(out, "p99_ms", lat ? percentile_ms(lat, n, 0.99) : 0);
    char *text = cJSON_PrintUnformatted(out);
    puts(text);
    free(text);
    cJSON_Delete(out);
    free(lat);
}

static int run_e2e(int argc, char **argv)
{
    e2e_args a;
    if (e2e_parse(argc, argv, &a) != 0) return 2;
    const char *hub_dir = a.hub_dir, *kind = a.kind;
    int64_t count = a.count, batch = a.batch, window = a.window, timeout_s = a.timeout_s,
            pipeline = a.pipeline, rate = a.rate;
    client c;
    memset(&c, 0, sizeof c);
    if (connect_operator(&c, hub_dir) != 0) return 1;
    /* Job ids are assigned consecutively by the hub; leave room for other submitters. */
    c.capacity = (size_t)count * 2 + 16;
    c.sent_us = calloc(c.capacity, sizeof *c.sent_us);
    c.latency_us = calloc(c.capacity, sizeof *c.latency_us);
    c.req_sent_us = calloc((size_t)(count / batch) + 16, sizeof *c.req_sent_us);
    cJSON *spec = strcmp(kind, "exec") == 0
                      /* deterministic: cars take their share, checked by a second owner */
                      ? cJSON_Parse("{\"kind\":\"exec\",\"command\":[\"true\"],"
                                    "\"deterministic\":true,"
                                    "\"resources\":{\"cores\":1,\"memory_mb\":64}}")
                      : cJSON_Parse("{\"kind\":\"noop\",\"resources\":{\"memory_mb\":1}}");
    int64_t submitted = 0;
    int64_t t0 = os_mono_us();
    /* Open loop at a fixed rate (--rate): a batch every batch/rate seconds, whatever the
     * answers; otherwise closed loop bounded by window and pipeline. */
    int64_t next_us = t0;
    while ((int64_t)c.done < count) {
        int64_t in_flight = submitted - (int64_t)c.done;
        int due = rate ? os_mono_us() >= next_us
                       : in_flight + batch <= window && (int64_t)(c.n_req - c.n_resp) < pipeline;
        if (submitted < count && due) {
            if (rate) next_us += batch * 1000000 / rate;
            int n = (int)(count - submitted < batch ? count - submitted : batch);
            if (submit_async(&c, spec, n) != OP_OK || c.failed) return 1;
            submitted += n;
            continue;
        }
        if (c.failed) return 1;
        bus_loop(c.bus, rate ? 1 : 5);
        if (seconds_since(t0) > timeout_s) {
            fprintf(stderr,
                    "e2e: timed out with %zu of %lld done (messages accepted %llu, replayed "
                    "%llu, expired %llu, forged %llu, malformed %llu)\n",
                    c.done, (long long)count, (unsigned long long)c.stats.accepted,
                    (unsigned long long)c.stats.replayed, (unsigned long long)c.stats.expired,
                    (unsigned long long)c.stats.forged, (unsigned long long)c.stats.malformed);
            return 1;
        }
    }
    e2e_report(&a, &c, seconds_since(t0));
    cJSON_Delete(spec);
    free(c.sent_us);
    free(c.latency_us);
    free(c.req_sent_us);
    bus_close(c.bus);
    return 0;
}

/* ---------- MQTT baseline ---------- */

typedef struct echo_ctx {
    bus *bus;
} echo_ctx;

static void on_echo(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                    const char *sig)
{
    echo_ctx *e = ctx;
    bus_publish_raw(e->bus, "bench/pong", payload, len, NULL, NULL);
}

static void on_pong(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                    const char *sig)
{
    client *c = ctx;
    uint64_t k;
    if (len != sizeof k) return;
    memcpy(&k, payload, sizeof k);
    if (k < c->capacity && c->echo_sent_us[k] && !c->latency_us[k]) {
        c->latency_us[k] = os_mono_us() - c->echo_sent_us[k];
        c->echoed++;
    }
}

static int run_mqtt(int argc, char **argv)
{
    int64_t port = 1883, count = 20000, window = 400;
    const char *ca = NULL, *cert = NULL, *key = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--ca"))
            ca = argv[i + 1];
        else if (!strcmp(argv[i], "--cert"))
            cert = argv[i + 1];
        else if (!strcmp(argv[i], "--key"))
            key = argv[i + 1];
        else if (!strcmp(argv[i], "--port"))
            util_parse_i64(argv[i + 1], 1, 65535, &port);
        else if (!strcmp(argv[i], "--count"))
            util_parse_i64(argv[i + 1], 1, 10000000, &count);
        else if (!strcmp(argv[i], "--window"))
            util_parse_i64(argv[i + 1], 1, 1000000, &window);
    }
    ident none;
    memset(&none, 0, sizeof none);
    snprintf(none.id, sizeof none.id, "bench");
    echo_ctx echo;
    client c;
    memset(&c, 0, sizeof c);
    c.capacity = (size_t)count;
    c.echo_sent_us = calloc(c.capacity, sizeof *c.echo_sent_us);
    c.latency_us = calloc(c.capacity, sizeof *c.latency_us);
    bus_config ec = {.host = "127.0.0.1",
                     .port = (int)port,
                     .client_id = "bench-echo",
                     .clean_start = 1,
                     .keepalive_s = 30,
                     .tls_ca = ca,
                     .tls_cert = cert,
                     .tls_key = key};
    bus_config pc = ec;
    pc.client_id = "bench-ping";
    if (bus_open(&ec, &none, on_echo, &echo, &echo.bus) != OP_OK ||
        bus_open(&pc, &none, on_pong, &c, &c.bus) != OP_OK)
        return 1;
    bus_subscribe(echo.bus, "bench/ping");
    bus_subscribe(c.bus, "bench/pong");
    if (bus_wait_connected(echo.bus, 5000) != OP_OK || bus_wait_connected(c.bus, 5000) != OP_OK)
        return 1;
    for (int i = 0; i < 10; i++) {
        bus_loop(echo.bus, 5);
        bus_loop(c.bus, 5);
    }
    /* The echo client runs in this same thread: both sides share one core, as hub and site
     * processes share this machine's two. */
    uint64_t sent = 0;
    int64_t t0 = os_mono_us();
    while (c.echoed < (size_t)count) {
        while (sent < (uint64_t)count && (int64_t)(sent - c.echoed) < window) {
            c.echo_sent_us[sent] = os_mono_us();
            bus_publish_raw(c.bus, "bench/ping", &sent, sizeof sent, NULL, NULL);
            sent++;
        }
        bus_loop(c.bus, 1);
        bus_loop(echo.bus, 1);
        if (seconds_since(t0) > 120) break;
    }
    double elapsed = seconds_since(t0);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "round_trips", (double)c.echoed);
    cJSON_AddNumberToObject(out, "round_trips_per_s", (double)c.echoed / elapsed);
    cJSON_AddNumberToObject(out, "p50_ms", percentile_ms(c.latency_us, c.echoed, 0.5));
    cJSON_AddNumberToObject(out, "p99_ms", percentile_ms(c.latency_us, c.echoed, 0.99));
    char *text = cJSON_PrintUnformatted(out);
    puts(text);
    free(text);
    cJSON_Delete(out);
    bus_close(c.bus);
    bus_close(echo.bus);
    free(c.echo_sent_us);
    free(c.latency_us);
    return 0;
}

/* ---------- audit log ---------- */

/* Baseline of a verification: just reading every entry and hashing its bytes once. */
static double audit_scan_seconds(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t h[32];
    int64_t t0 = os_mono_us();
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, "SELECT entry FROM audit_entries ORDER BY idx", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW)
        audit_leaf_hash(sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0), h);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return seconds_since(t0);
}

static int run_audit(int argc, char **argv)
{
    int64_t entries = 1000000;
    for (int i = 2; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--entries")) util_parse_i64(argv[i + 1], 1000, 100000000, &entries);
    char dir[] = "/tmp/outpost-bench-audit-XXXXXX", path[128];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/audit.db", dir);
    ident key;
    memset(&key, 0, sizeof key);
    crypto_sign_keypair(key.pk, key.sk);
    auditlog *log = NULL;
    if (auditlog_open(path, &log) != OP_OK) return 1;
    char body[96];
    /* Durable appends, one commit (fsync) each. */
    const int single = 300;
    int64_t t0 = os_mono_us();
    for (int i = 0; i < single; i++) {
        snprintf(body, sizeof body, "job %d placed on dc-%d (score 0.812)", i, i % 8);
        if (auditlog_append(log, os_now_ms(), "placement", "job", body, NULL) != OP_OK) return 1;
    }
    double single_per_s = single / seconds_since(t0);
    /* Batched: 10,000 appends per commit. */
    t0 = os_mono_us();
    for (int64_t i = single; i < entries; i += 10000) {
        auditlog_begin(log);
        for (int64_t j = i; j < i + 10000 && j < entries; j++) {
            snprintf(body, sizeof body, "job %lld placed on dc-%lld (score 0.812)", (long long)j,
                     (long long)(j % 8));
            if (auditlog_append(log, os_now_ms(), "placement", "job", body, NULL) != OP_OK)
                return 1;
        }
        if (auditlog_commit(log) != OP_OK) return 1;
    }
    double batched_per_s = (double)(entries - single) / seconds_since(t0);
    audit_sth head;
    if (auditlog_sign_head(log, &key, os_now_ms(), &head) != OP_OK) return 1;
    auditlog_close(log);
    /* Verify the whole log from a fresh open, as `outpost audit verify` does (accelerated). */
    audit_hash_accelerate(1);
    char finding[256];
    t0 = os_mono_us();
    if (auditlog_open(path, &log) != OP_OK) return 1;
    int vrc = auditlog_verify(log, key.pk, &head, finding, sizeof finding);
    double verify_s = seconds_since(t0);
    double scan_s = audit_scan_seconds(path);
    uint8_t proof[AUDIT_MAX_PROOF][32];
    size_t inc_len = 0, con_len = 0;
    auditlog_inclusion_proof(log, (uint64_t)entries / 3, (uint64_t)entries, proof, &inc_len);
    auditlog_consistency_proof(log, (uint64_t)entries / 2 + 1, (uint64_t)entries, proof, &con_len);
    t0 = os_mono_us();
    for (int i = 0; i < 1000; i++)
        auditlog_inclusion_proof(log, (uint64_t)(i * 997) % (uint64_t)entries, (uint64_t)entries,
                                 proof, &inc_len);
    double proofs_per_s = 1000 / seconds_since(t0);
    auditlog_close(log);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "entries", (double)entries);
    cJSON_AddNumberToObject(out, "durable_appends_single_per_s", single_per_s);
    cJSON_AddNumberToObject(out, "durable_appends_batched_per_s", batched_per_s);
    cJSON_AddNumberToObject(out, "verify_seconds", verify_s);
    cJSON_AddBoolToObject(out, "verify_ok", vrc == OP_OK);
    cJSON_AddNumberToObject(out, "scan_and_hash_seconds", scan_s);
    cJSON_AddNumberToObject(out, "verify_ratio_vs_scan", verify_s / scan_s);
    cJSON_AddNumberToObject(out, "inclusion_proof_hashes", (double)inc_len);
    cJSON_AddNumberToObject(out, "consistency_proof_hashes", (double)con_len);
    cJSON_AddNumberToObject(out, "inclusion_proofs_per_s", proofs_per_s);
    char *text = cJSON_PrintUnformatted(out);
    puts(text);
    free(text);
    cJSON_Delete(out);
    os_rm_rf(dir);
    return vrc == OP_OK ? 0 : 1;
}

/* ---------- fleet placement at scale ---------- */

static uint64_t bench_rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return bench_rng;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * 4;
}

/*
 * A fleet with the constraints on: 45% pods, 45% parked cars (with stated
 * departures filed as 0 W past them), 10% data centers, 8 regions with grid
 * ranks, forecasts that dip over the day, failure rates; jobs of 1-8 cores,
 * 5 min-8 h, a class mask, 1% pinned to their origin, 40% deferrable.
 */
enum { FLEET_JOBS = 4096, FLEET_BATCH = 256 };

/* The fleet's sites (45% pods, 45% cars, 10% data centers); names[i] is sites[i].id. */
static void fleet_sites(sched_site *sites, char (*names)[16], size_t n, int64_t now)
{
    static const double region_rank[8] = {0.1, 0.95, 0.4, 0.6, 0.25, 0.8, 0.5, 0.0};
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "s%zu", i);
        uint64_t u = rnd() % 100;
        unsigned cls = u < 45 ? CLASS_POD : u < 90 ? CLASS_CAR : CLASS_DC;
        int cores = cls == CLASS_POD   ? 1 + (int)(rnd() % 16)
                    : cls == CLASS_CAR ? 2
                                       : 8 + (int)(rnd() % 25);
        double wpc = cls == CLASS_POD ? 300 : cls == CLASS_CAR ? 60 : 250;
        double env = cores * wpc * (double)(rnd() % 101) / 100.0;
        sched_site *s = &sites[i];
        *s = (sched_site){.id = names[i],
                          .class_bit = cls,
                          .alive = cls != CLASS_CAR || rnd() % 3 == 0,
                          .cores = cores,
                          .free_cores = cores,
                          .memory_mb = 1 << 20,
                          .free_memory_mb = 1 << 20,
                          .headroom_watts = env,
                          .watts_per_core = wpc,
                          .has_forecast = 1,
                          .failure_rate = (double)(rnd() % 10) / 100.0,
                          .region = (int)(rnd() % 8)};
        s->grid_rank = region_rank[s->region]; /* a grid signal is the region's */
        double h = env;
        for (int k = 0; k < SCHED_HORIZONS; k++) {
            if (rnd() % 3 == 0) h *= (double)(rnd() % 100) / 100.0;
            s->horizon_watts[k] = (float)h;
        }
        if (cls == CLASS_CAR) {
            s->stay_until_ms = now + (int64_t)(rnd() % (10 * 3600000ULL));
            for (int k = 0; k < SCHED_HORIZONS; k++)
                if (now + sched_horizon_ms[k] > s->stay_until_ms) s->horizon_watts[k] = 0;
        }
    }
}

/* The jobs the fleet is offered, in a ring of FLEET_JOBS (1% pinned to a site of names). */
static void fleet_jobs(sched_job *jobs, char (*names)[16], size_t n, int64_t now)
{
    for (int j = 0; j < FLEET_JOBS; j++) {
        uint64_t u = rnd() % 100;
        int64_t dur = 300000 + (int64_t)(rnd() % (8 * 3600000ULL));
        jobs[j] = (sched_job){.cores = u < 50   ? 1
                                       : u < 75 ? 2
                                       : u < 90 ? 4
                                                : 8,
                              .memory_mb = 256,
                              .class_mask = 1 + (unsigned)(rnd() % 7),
                              .origin_index = -1,
                              .origin_region = (int)(rnd() % 8),
                              .now_ms = now,
                              .duration_ms = dur,
                              .deadline_ms = now + dur * 3,
                              .deferrable = rnd() % 100 < 40};
        if (rnd() % 100 == 0) {
            size_t o = rnd() % n;
            jobs[j].site_private = 1;
            jobs[j].origin = names[o];
            jobs[j].origin_index = (int)o;
        }
    }
}

/* The running jobs (site index, job index), growing as placements are made. */
typedef struct fleet_run {
    int32_t (*running)[2];
    size_t n, cap, target;
    long placed, waited, tried;
    int64_t release_us;
} fleet_run;

static void run_add(fleet_run *r, int32_t site, int32_t job)
{
    if (r->n == r->cap) r->running = realloc(r->running, (r->cap *= 2) * sizeof *r->running);
    r->running[r->n][0] = site;
    r->running[r->n][1] = job;
    r->n++;
}

/*
 * Steady state: fill the fleet (untimed) until jobs keep waiting, which
 * gives what it can hold with these constraints; then 30% of that finishes,
 * and the timed loop keeps 70% running.
 */
static void fleet_fill(sched_fleet *f, const sched_job *jobs, fleet_run *r)
{
    for (int misses = 0; misses < 200; r->tried++) {
        const sched_job *job = &jobs[r->tried % FLEET_JOBS];
        sched_decision d;
        sched_fleet_place(f, job, 0, &d);
        if (d.outcome != SCHED_PLACED) {
            misses++;
            continue;
        }
        misses = 0;
        sched_fleet_reserve(f, (size_t)d.site_index, job);
        run_add(r, d.site_index, (int32_t)(r->tried % FLEET_JOBS));
    }
    r->target = r->n * 7 / 10;
    while (r->n > r->target) {
        r->n--;
        sched_fleet_release(f, (size_t)r->running[r->n][0], &jobs[r->running[r->n][1]]);
    }
    r->tried = 0;
}

/* Timed: batches of FLEET_BATCH queued jobs; before each, as many random running jobs finish. */
static void fleet_timed(sched_fleet *f, const sched_job *jobs, fleet_run *r, long placements)
{
    sched_job batch[FLEET_BATCH];
    sched_decision decided[FLEET_BATCH];
    while (r->placed < placements) {
        int64_t r0 = os_mono_us();
        while (r->n > r->target) {
            size_t k = rnd() % r->n;
            sched_fleet_release(f, (size_t)r->running[k][0], &jobs[r->running[k][1]]);
            r->running[k][0] = r->running[--r->n][0];
            r->running[k][1] = r->running[r->n][1];
        }
        r->release_us += os_mono_us() - r0;
        int32_t first = (int32_t)(r->tried % FLEET_JOBS);
        for (int b = 0; b < FLEET_BATCH; b++)
            batch[b] = jobs[(r->tried + b) % FLEET_JOBS];
        r->tried += FLEET_BATCH;
        size_t got;
        sched_fleet_place_batch(f, batch, FLEET_BATCH, decided, &got);
        for (int b = 0; b < FLEET_BATCH; b++) {
            if (decided[b].outcome != SCHED_PLACED)
                r->waited++;
            else
                run_add(r, decided[b].site_index, (int32_t)((first + b) % FLEET_JOBS));
        }
        r->placed += (long)got;
    }
}

/* Baseline: the full scan (sched_place, same filter and score) on the same fleet; per second. */
static double fleet_scan_rate(const sched_site *sites, size_t n, const sched_job *jobs)
{
    int scans = n > 10000 ? 20 : n > 1000 ? 200 : 2000;
    int64_t t1 = os_mono_us();
    for (int i = 0; i < scans; i++) {
        sched_decision d;
        sched_place(sites, n, &jobs[i % FLEET_JOBS], &d);
        sink += d.score;
        sched_decision_clear(&d);
    }
    return scans / seconds_since(t1);
}

static void fleet_report(cJSON *out, size_t n, const fleet_run *r, double secs_all,
                         double scan_per_s, const long rss[3])
{
    double secs = secs_all - (double)r->release_us / 1e6;
    long decisions = r->placed + r->waited;
    char key[48];
    snprintf(key, sizeof key, "fleet_%zu_sites", n);
    cJSON *o = cJSON_AddObjectToObject(out, key);
    cJSON_AddNumberToObject(o, "sites", (double)n);
    cJSON_AddNumberToObject(o, "placements", (double)r->placed);
    cJSON_AddNumberToObject(o, "waits", (double)r->waited);
    cJSON_AddNumberToObject(o, "running_at_end", (double)r->n);
    cJSON_AddNumberToObject(o, "fleet_holds", (double)r->target * 10 / 7);
    cJSON_AddNumberToObject(o, "decisions_per_s", (double)decisions / secs);
    cJSON_AddNumberToObject(o, "placements_per_s", (double)r->placed / secs);
    cJSON_AddNumberToObject(o, "placements_per_s_with_releases", (double)r->placed / secs_all);
    cJSON_AddNumberToObject(o, "ns_per_decision", secs * 1e9 / (double)decisions);
    cJSON_AddNumberToObject(o, "scan_placements_per_s", scan_per_s);
    cJSON_AddNumberToObject(o, "ratio_vs_scan", (double)r->placed / secs / scan_per_s);
    cJSON_AddNumberToObject(o, "bytes_per_site_structs",
                            (double)(sizeof(sched_site) + sched_fleet_bytes_per_site()));
    cJSON_AddNumberToObject(o, "bytes_per_site_rss", (double)(rss[2] - rss[0]) * 1024.0 / n);
    cJSON_AddNumberToObject(o, "index_bytes_per_site_rss", (double)(rss[2] - rss[1]) * 1024.0 / n);
}

static void bench_fleet(cJSON *out, size_t n, long placements)
{
    long rss[3]; /* before the sites, after them, after the index (KiB) */
    rss[0] = rss_kib();
    sched_site *sites = calloc(n, sizeof *sites);
    char(*names)[16] = calloc(n, sizeof *names);
    int64_t now = 1000000000;
    fleet_sites(sites, names, n, now);
    rss[1] = rss_kib();
    sched_fleet *f = sched_fleet_new(sites, n);
    rss[2] = rss_kib();
    sched_job *jobs = calloc(FLEET_JOBS, sizeof *jobs);
    fleet_jobs(jobs, names, n, now);
    fleet_run r = {.cap = 64};
    r.running = calloc(r.cap, sizeof *r.running);
    fleet_fill(f, jobs, &r);
    int64_t t0 = os_mono_us();
    fleet_timed(f, jobs, &r, placements);
    double secs_all = seconds_since(t0);
    fleet_report(out, n, &r, secs_all, fleet_scan_rate(sites, n, jobs), rss);
    sched_fleet_free(f);
    free(r.running);
    free(jobs);
    free(sites);
    free(names);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) return 1;
    log_set_level(LOG_LEVEL_WARN);
    if (argc >= 2 && strcmp(argv[1], "micro") == 0) {
        cJSON *out = cJSON_CreateObject();
        micro_sign_verify(out);
        micro_seal_one(out, "seal_1k", 1024, 5000);
        micro_seal_one(out, "seal_4m", 4 * 1024 * 1024, 30);
        micro_sched(out, 8, "sched_8_sites");
        micro_sched(out, 10000, "sched_10000_sites");
        micro_jobspec(out);
        char *text = cJSON_PrintUnformatted(out);
        puts(text);
        free(text);
        cJSON_Delete(out);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "fleet") == 0) {
        long count = argc >= 3 ? strtol(argv[2], NULL, 10) : 2000000;
        cJSON *out = cJSON_CreateObject();
        bench_fleet(out, 1000, count);
        bench_fleet(out, 10000, count);
        bench_fleet(out, 100000, count);
        char *text = cJSON_PrintUnformatted(out);
        puts(text);
        free(text);
        cJSON_Delete(out);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "e2e") == 0) return run_e2e(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "mqtt") == 0) return run_mqtt(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "audit") == 0) return run_audit(argc, argv);
    fprintf(stderr, "usage: outpost-bench micro | mqtt --port P | e2e --hub-dir D ... | audit\n");
    return 2;
}
