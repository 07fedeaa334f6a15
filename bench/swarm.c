/*
 * outpost-swarm: thousands of virtual sites in one process, for load tests of
 * a hub (bench/swarm.py, tests/integration/test_swarm.py).
 *
 * Each virtual site is what a real site is on the wire: its own Ed25519
 * identity, its own MQTT 5 connection (client id outpost-site-<id>,
 * persistent session, keepalive 10 s, QoS 1), a join token minted by the hub
 * (the operator command "tokens", sealed to the hub's admin key and opened
 * here), a hello sealed to the hub, heartbeats every --heartbeat-ms with the
 * fields a site sends, and signed, sealed results. The messages are built by
 * the same wire code the site uses (msg_encode, msg_seal, msg_sign), so the
 * hub cannot tell a swarm site from a real one. What a swarm site cannot do is
 * run work: it answers "noop" jobs (a real site answers them without a
 * sandbox too, with the same result) and refuses every other kind, as a site
 * refuses what it cannot run.
 *
 * One thread drives every connection: one epoll set over the libmosquitto
 * sockets (mosquitto_loop_read/write/misc), not a thread per client. A second
 * thread submits noop jobs at --jobs-per-s through an ordinary operator
 * connection and notes when each was submitted, so that the first thread can
 * time each offer (submission to the offer's arrival: the offer latency).
 *
 * Power: each site replays one EV charging session of the Caltech ACN data
 * (../shared/data/power, plugged-in hours repeated daily: its envelope is its
 * budget while plugged, its idle draw otherwise) and the German grid's carbon
 * intensity (its 15-minute rank within its day as grid_rank). Without the
 * data (--power none or files missing) a synthetic daily sine is used; the
 * output says which.
 *
 * Churn: --churn-per-min sites a minute leave (a goodbye, then disconnect)
 * and come back 5-30 s later; --cut-per-min links a minute are cut without a
 * word (the socket closed) and come back the same way. Both at 0 by default.
 *
 * Prints one JSON line of counters every --report-ms, and one at the end.
 * Not part of the product: it builds from bench/ and links libcore.a.
 */
#include "swarm.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "io/bus.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"
#include "wire/token.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

/* ---------- publishing as a site does ---------- */

/* Signs body (sealed to the hub unless a heartbeat) and publishes it on <leaf>; QoS 1. */
static int publish_as(vsite *v, const ident *signer, const char *topic_id, const char *leaf,
                      cJSON *body, const char *type)
{
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len = 0;
    uint8_t *sealed = NULL;
    if (!v->connected || proto_topic(topic, sizeof topic, "site", topic_id, leaf) != OP_OK)
        return OP_EBUS;
    char *text = msg_encode(body, signer->id, type, ++v->seq, os_now_ms(), &len);
    if (!text) return OP_ENOMEM;
    const void *payload = text;
    if (proto_must_seal(topic)) {
        size_t sealed_len = 0;
        if (msg_seal(v->sw->hub.hub_pk, text, len, &sealed, &sealed_len) != OP_OK) {
            free(text);
            return OP_ENOMEM;
        }
        payload = sealed;
        len = sealed_len;
    }
    int rc = OP_OK;
    if (v->beat_mac && signer == &v->me && !strcmp(type, "state"))
        msg_mac(v->beat_key, topic, payload, len, sig); /* the hub holds its key */
    else
        rc = msg_sign(signer, topic, payload, len, sig);
    mosquitto_property *props = NULL;
    mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "kid", signer->id);
    mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "sig", sig);
    if (rc == OP_OK && mosquitto_publish_v5(v->mosq, NULL, topic, (int)len, payload, 1, false,
                                            props) != MOSQ_ERR_SUCCESS)
        rc = OP_EBUS;
    mosquitto_property_free_all(&props);
    free(text);
    free(sealed);
    if (rc != OP_OK) v->sw->n.publish_errors++;
    v->want_out = 1;
    return rc;
}

static int publish(vsite *v, const char *leaf, cJSON *body, const char *type)
{
    return publish_as(v, &v->me, v->me.id, leaf, body, type);
}

/* A site's capacity, as its configuration would give it (a small pod). */
#define SWARM_CORES 2
#define SWARM_MEMORY_MB 2048
#define SWARM_BUDGET_W 200.0
#define SWARM_WPC 15.0
#define SWARM_IDLE_W 10.0

static void add_capacity(cJSON *body)
{
    jsonx_add_int(body, "cores", SWARM_CORES);
    jsonx_add_int(body, "memory_mb", SWARM_MEMORY_MB);
    cJSON_AddNumberToObject(body, "power_budget_watts", SWARM_BUDGET_W);
    cJSON_AddNumberToObject(body, "watts_per_core", SWARM_WPC);
    cJSON_AddNumberToObject(body, "idle_watts", SWARM_IDLE_W);
    cJSON_AddStringToObject(body, "protections_off", "broker_tls");
}

static void send_hello(vsite *v)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "pubkey", v->me.pk_hex);
    if (v->token) cJSON_AddStringToObject(body, "token", v->token);
    if (!v->sw->o.beat_sig) {
        char key_hex[2 * MSG_MAC_KEY_BYTES + 1];
        util_hex(v->beat_key, sizeof v->beat_key, key_hex);
        cJSON_AddStringToObject(body, "beat_key", key_hex); /* sealed: the hub reads it */
    }
    v->beats_since_full = 10; /* the next heartbeat in full */
    add_capacity(body);
    if (publish(v, "hello", body, "hello") == OP_OK) v->sw->n.hellos++;
    cJSON_Delete(body);
}

/* The heartbeat a site sends: capacity, draw, counters, power, the jobs it runs (none). */
static cJSON *heartbeat_body(vsite *v, int full)
{
    cJSON *body = cJSON_CreateObject();
    if (!body || !cJSON_AddArrayToObject(body, "running")) {
        cJSON_Delete(body);
        return NULL;
    }
    double envelope, rank;
    swarm__power_now(v, SWARM_BUDGET_W, SWARM_IDLE_W, &envelope, &rank);
    if (full) {
        add_capacity(body);
        jsonx_add_int(body, "free_cores", SWARM_CORES);
        jsonx_add_int(body, "free_memory_mb", SWARM_MEMORY_MB);
        cJSON_AddNumberToObject(body, "draw_watts", SWARM_IDLE_W);
        msg_stats none = {0};
        cJSON *m = cJSON_AddObjectToObject(body, "messages");
        if (m) msg_stats_to_json(&none, m);
    }
    /* what changes here is the power: said when it did (a site says what changed) */
    cJSON *p = full || envelope != v->last_envelope || rank != v->last_rank
                   ? cJSON_AddObjectToObject(body, "power")
                   : NULL;
    v->last_envelope = envelope;
    v->last_rank = rank;
    if (p) {
        cJSON_AddNumberToObject(p, "envelope_watts", envelope);
        cJSON_AddStringToObject(p, "source", "meter");
        cJSON_AddBoolToObject(p, "inside_envelope", 1);
        cJSON_AddNumberToObject(p, "grid_rank", rank);
        jsonx_add_int(p, "region", 0);
    }
    return body;
}

/* A heartbeat as a site sends it: in full every tenth and after a hello, else what changed. */
static void send_heartbeat(vsite *v)
{
    int full = v->beats_since_full >= 10 || v->sw->o.full_beats;
    cJSON *body = heartbeat_body(v, full);
    v->beats_since_full = full ? 1 : v->beats_since_full + 1;
    if (body && publish(v, "state", body, "state") == OP_OK)
        v->sw->n.beats++;
    else
        v->beats_since_full = 10;
    cJSON_Delete(body);
}

/* Every unacknowledged result, again (the hub is idempotent per job and attempt). */
static void send_results(vsite *v)
{
    if (v->n_unacked == 0) return;
    cJSON *body = cJSON_CreateObject();
    cJSON *list = body ? cJSON_AddArrayToObject(body, "results") : NULL;
    for (int i = 0; list && i < v->n_unacked; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r) break;
        jsonx_add_int(r, "job", v->unacked[i].job);
        jsonx_add_int(r, "attempt", v->unacked[i].attempt);
        cJSON_AddStringToObject(r, "site", v->me.id);
        cJSON_AddStringToObject(r, "kind", "noop");
        jsonx_add_int(r, "exit_code", 0);
        cJSON_AddNumberToObject(r, "cpu_seconds", 0);
        cJSON_AddNumberToObject(r, "energy_joules", 0);
        cJSON_AddItemToArray(list, r);
    }
    if (list && publish(v, "result", body, "result") == OP_OK) v->sw->n.results += v->n_unacked;
    cJSON_Delete(body);
    v->next_resend_ms = os_mono_ms() + 5000;
}

/* ---------- messages from the hub ---------- */

static void note_latency(swarm *sw, int64_t job)
{
    size_t slot = (size_t)job & ((1u << SWARM_SUBMITTED_BITS) - 1);
    pthread_mutex_lock(&sw->lock);
    if (sw->submitted_id[slot] == job && sw->n_latency < SWARM_LATENCY_CAP) {
        sw->latency_ms[sw->n_latency++] = os_mono_ms() - sw->submitted_ms[slot];
        sw->submitted_id[slot] = 0; /* a redelivered offer is not timed twice */
    }
    pthread_mutex_unlock(&sw->lock);
}

/* Offers: noop jobs answered at once, anything else refused as a site refuses it. */
static void handle_offer(vsite *v, const cJSON *body)
{
    const cJSON *item;
    cJSON *events = NULL;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "jobs"))
    {
        int64_t job, attempt;
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(item, "spec");
        if (jsonx_int(item, "job", 1, INT64_MAX, &job) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK || !spec)
            continue;
        v->sw->n.offers_jobs++;
        note_latency(v->sw, job);
        const char *kind = jsonx_str(spec, "kind");
        if (kind && strcmp(kind, "noop") == 0 && v->n_unacked < SWARM_MAX_UNACKED) {
            v->unacked[v->n_unacked++] = (vresult){job, attempt};
            continue;
        }
        v->sw->n.refused_jobs++;
        if (!events && !(events = cJSON_CreateArray())) continue;
        cJSON *e = cJSON_CreateObject();
        if (!e) continue;
        jsonx_add_int(e, "job", job);
        jsonx_add_int(e, "attempt", attempt);
        cJSON_AddStringToObject(e, "event", kind && !strcmp(kind, "noop") ? "busy" : "refused");
        cJSON_AddStringToObject(e, "reason", "a swarm site runs noop jobs only");
        cJSON_AddItemToArray(events, e);
    }
    send_results(v);
    if (!events) return;
    cJSON *b = cJSON_CreateObject();
    if (b) {
        cJSON_AddItemToObject(b, "events", events);
        publish(v, "event", b, "event");
        cJSON_Delete(b);
    } else {
        cJSON_Delete(events);
    }
}

static void handle_acks(vsite *v, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "acks"))
    {
        int64_t job, attempt;
        if (jsonx_int(item, "job", 1, INT64_MAX, &job) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
            continue;
        for (int i = 0; i < v->n_unacked; i++)
            if (v->unacked[i].job == job && v->unacked[i].attempt == attempt) {
                v->unacked[i] = v->unacked[--v->n_unacked];
                v->sw->n.acks++;
                break;
            }
    }
}

static int lookup_hub(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    vsite *v = ctx;
    if (strcmp(kid, v->sw->hub.hub_id) != 0) return OP_EUNKNOWN;
    *pk = v->sw->hub.hub_pk;
    *window = &v->hub_window;
    return OP_OK;
}

/* libmosquitto's message callback: a message the hub must have signed (and sealed to us). */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    vsite *v = obj;
    char *name = NULL, *value = NULL, kid[64] = "", sig[160] = "";
    const mosquitto_property *p =
        mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false);
    while (p) {
        if (name && value && !strcmp(name, "kid")) snprintf(kid, sizeof kid, "%s", value);
        if (name && value && !strcmp(name, "sig")) snprintf(sig, sizeof sig, "%s", value);
        free(name);
        free(value);
        name = value = NULL;
        p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, true);
    }
    cJSON *body = NULL;
    msg_header hdr;
    msg_stats st = {0};
    char reason[256];
    if (msg_open_for(&v->me, proto_must_seal(m->topic), m->topic, m->payload, (size_t)m->payloadlen,
                     kid[0] ? kid : NULL, sig[0] ? sig : NULL, lookup_hub, v, os_now_ms(),
                     SWARM_SKEW_MS, &body, &hdr, &st, reason, sizeof reason) != OP_OK) {
        v->sw->n.dropped++;
        return;
    }
    const char *key_id = jsonx_str(body, "beat_key_id");
    if (!strcmp(hdr.type, "welcome") && key_id && !strcmp(key_id, v->beat_key_id)) v->beat_mac = 1;
    if (!strcmp(hdr.type, "rekey")) { /* the hub has no key for it: signed, and a hello */
        v->beat_mac = 0;
        v->sw->n.rekeys++;
        timer_init(&v->hello, PROTO_HELLO_FIRST_MS);
    } else if (!strcmp(hdr.type, "welcome") && !v->enrolled) {
        v->enrolled = 1;
        v->sw->n.enrolled++;
        free(v->token);
        v->token = NULL;
        v->next_beat_ms = os_mono_ms() + randombytes_uniform((uint32_t)v->sw->o.heartbeat_ms);
    } else if (!strcmp(hdr.type, "refused")) {
        v->refused = 1;
        v->sw->n.refused++;
        fprintf(stderr, "swarm: site %s refused: %s\n", v->me.id, jsonx_str(body, "reason"));
    } else if (!strcmp(hdr.type, "offer")) {
        handle_offer(v, body);
    } else if (!strcmp(hdr.type, "ack")) {
        handle_acks(v, body);
    }
    cJSON_Delete(body);
    (void)mosq;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    vsite *v = obj;
    if (rc != 0) return;
    char inbox[PROTO_TOPIC_MAX];
    proto_topic(inbox, sizeof inbox, "site", v->me.id, "inbox");
    mosquitto_subscribe_v5(mosq, NULL, inbox, 1, 0, NULL);
    v->connected = 1;
    v->sw->n.connacks++;
    timer_init(&v->hello, PROTO_HELLO_FIRST_MS); /* hello after every (re)connect, as a site */
    v->next_resend_ms = os_mono_ms();
    v->want_out = 1;
    (void)flags;
    (void)props;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    vsite *v = obj;
    v->connected = 0;
    v->sw->n.disconnects++;
    (void)mosq;
    (void)rc;
    (void)props;
}

/* ---------- connections: one epoll set, paced connects, jittered reconnects ---------- */

static void watch(vsite *v)
{
    int fd = mosquitto_socket(v->mosq);
    if (fd < 0) return;
    struct epoll_event ev = {.events = EPOLLIN | (mosquitto_want_write(v->mosq) ? EPOLLOUT : 0),
                             .data.ptr = v};
    v->out_registered = (ev.events & EPOLLOUT) != 0;
    if (v->fd != fd) {
        v->fd = fd;
        epoll_ctl(v->sw->ep, EPOLL_CTL_ADD, fd, &ev);
    } else {
        epoll_ctl(v->sw->ep, EPOLL_CTL_MOD, fd, &ev);
    }
    v->want_out = 0;
}

/* Reconnects after 1-30 s (jittered): as a site's bus does, no thundering herd. */
static void schedule_back(vsite *v, int64_t min_ms, int64_t spread_ms)
{
    v->away = 1;
    v->connected = 0;
    v->fd = -1;
    v->back_at_ms = os_mono_ms() + min_ms + (int64_t)randombytes_uniform((uint32_t)spread_ms);
}

/* In a connector thread: the blocking part of a connect (TCP, then CONNECT sent). */
static int connect_now(vsite *v)
{
    mosquitto_property *props = NULL;
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 86400);
    /* past 20,000 connections the loopback's ephemeral ports run short: more source addresses */
    char bind_to[32];
    long index = (long)(v - v->sw->sites);
    snprintf(bind_to, sizeof bind_to, "127.0.0.%ld", 2 + index / 20000);
    int many = v->sw->o.sites > 20000 && strcmp(v->sw->hub.broker_host, "127.0.0.1") == 0;
    int rc = v->first_connect ? mosquitto_connect_bind_v5(v->mosq, v->sw->hub.broker_host,
                                                          (int)v->sw->hub.broker_port, 10,
                                                          many ? bind_to : NULL, props)
                              : mosquitto_reconnect(v->mosq);
    mosquitto_property_free_all(&props);
    return rc;
}

static void *connector(void *arg)
{
    swarm *sw = arg;
    pthread_mutex_lock(&sw->cq_lock);
    while (!sw->stopping) {
        if (sw->n_todo == 0) {
            pthread_cond_wait(&sw->cq_ready, &sw->cq_lock);
            continue;
        }
        vsite *v = sw->cq_todo[--sw->n_todo];
        pthread_mutex_unlock(&sw->cq_lock);
        v->connect_rc = connect_now(v);
        pthread_mutex_lock(&sw->cq_lock);
        sw->cq_done[sw->n_done++] = v;
    }
    pthread_mutex_unlock(&sw->cq_lock);
    return NULL;
}

/* Hands the site to the connector threads. */
static void start_connect(vsite *v, int first)
{
    swarm *sw = v->sw;
    v->away = 0;
    v->connecting = 1;
    v->first_connect = first;
    sw->n.connects++;
    pthread_mutex_lock(&sw->cq_lock);
    sw->cq_todo[sw->n_todo++] = v;
    pthread_cond_signal(&sw->cq_ready);
    pthread_mutex_unlock(&sw->cq_lock);
}

/* The connects the threads finished: into the epoll set, or back later. */
static void take_connected(swarm *sw)
{
    pthread_mutex_lock(&sw->cq_lock);
    for (int i = 0; i < sw->n_done; i++) {
        vsite *v = sw->cq_done[i];
        v->connecting = 0;
        v->fd = -1;
        if (v->connect_rc != MOSQ_ERR_SUCCESS) {
            schedule_back(v, 1000, 4000);
            continue;
        }
        v->ever_connected = 1;
        watch(v);
    }
    sw->n_done = 0;
    pthread_mutex_unlock(&sw->cq_lock);
}

static int new_client(vsite *v)
{
    char client_id[96];
    snprintf(client_id, sizeof client_id, "outpost-site-%s", v->me.id);
    v->mosq = mosquitto_new(client_id, false, v);
    if (!v->mosq) return OP_ENOMEM;
    mosquitto_int_option(v->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(v->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
    mosquitto_int_option(v->mosq, MOSQ_OPT_SEND_MAXIMUM, 1000);
    mosquitto_int_option(v->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(v->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(v->mosq, on_disconnect);
    mosquitto_message_v5_callback_set(v->mosq, on_message);
    v->fd = -1;
    if (!v->sw->tls_dir[0]) return OP_OK;
    char ca[128], cert[160], key[160];
    snprintf(ca, sizeof ca, "%s/ca.crt", v->sw->tls_dir);
    snprintf(cert, sizeof cert, "%s/%s.crt", v->sw->tls_dir, v->me.id);
    snprintf(key, sizeof key, "%s/%s.key", v->sw->tls_dir, v->me.id);
    return mosquitto_tls_set(v->mosq, ca, NULL, cert, key, NULL) == MOSQ_ERR_SUCCESS ? OP_OK
                                                                                     : OP_EINVAL;
}

/* The link went down under us (broker gone, cut): back after a jittered 1-10 s. */
static void lost_link(vsite *v)
{
    if (v->fd >= 0) epoll_ctl(v->sw->ep, EPOLL_CTL_DEL, v->fd, NULL);
    v->sw->n.disconnects += v->connected;
    schedule_back(v, 1000, 9000);
}

/*
 * Writes what a site queued at once (its socket is almost always writable):
 * only what is left waits for EPOLLOUT, so a publish costs no epoll_ctl
 * (two of them per message before, a third of the swarm's kernel time).
 */
static void flush_out(vsite *v)
{
    v->want_out = 0;
    if (mosquitto_want_write(v->mosq) && mosquitto_loop_write(v->mosq, 1) != MOSQ_ERR_SUCCESS) {
        lost_link(v);
        return;
    }
    if (v->out_registered != (int)mosquitto_want_write(v->mosq)) watch(v);
}

/* A site leaves with a goodbye, or has its link cut without one; back in 5-30 s. */
static void churn_one(swarm *sw, int cut)
{
    vsite *v = &sw->sites[randombytes_uniform((uint32_t)sw->o.sites)];
    if (!v->connected || !v->enrolled) return;
    if (cut) {
        shutdown(v->fd, SHUT_RDWR); /* the next read fails: lost_link */
        sw->n.cut++;
        return;
    }
    cJSON *body = cJSON_CreateObject();
    if (body) {
        cJSON_AddStringToObject(body, "type", "bye");
        cJSON_AddStringToObject(body, "reason", "leave");
        publish(v, "state", body, "bye");
        cJSON_Delete(body);
    }
    mosquitto_loop_write(v->mosq, 1);
    if (v->fd >= 0) epoll_ctl(sw->ep, EPOLL_CTL_DEL, v->fd, NULL);
    mosquitto_disconnect_v5(v->mosq, 0, NULL);
    sw->n.churned++;
    v->was_lost_ok = 1;
    schedule_back(v, 5000, 25000);
}

/* One site's timers: hello, heartbeat, results resent, keepalive. */
static void tick_site(vsite *v, int64_t now)
{
    if (!v->connected || v->refused) return;
    if (timer_ready(&v->hello, now)) {
        send_hello(v);
        /* until welcomed, backing off as a site does */
        if (v->enrolled)
            v->hello.next_ms = INT64_MAX;
        else
            timer_backoff(&v->hello, now, PROTO_HELLO_MAX_MS, randombytes_random());
    }
    if (v->enrolled && now >= v->next_beat_ms) {
        send_heartbeat(v);
        v->next_beat_ms = now + v->sw->o.heartbeat_ms;
    }
    if (v->enrolled && v->n_unacked && now >= v->next_resend_ms) send_results(v);
    if (now >= v->next_misc_ms) {
        mosquitto_loop_misc(v->mosq);
        v->next_misc_ms = now + 1000;
        if (!v->connected) { /* libmosquitto closed it (no PINGRESP in time): back later */
            v->fd = -1;      /* closed: epoll dropped it already, and the number may be reused */
            v->sw->n.keepalive_drops++;
            schedule_back(v, 1000, 9000);
        }
    }
}

/* Every site's timers, connects paced at connect_per_s, churn and cuts at their rates. */
static void tick_all(swarm *sw, int64_t now, int64_t dt_ms, double *connect_credit)
{
    *connect_credit += (double)sw->o.connect_per_s * (double)dt_ms / 1000.0;
    if (*connect_credit > sw->o.connect_per_s) *connect_credit = sw->o.connect_per_s;
    for (int i = 0; i < sw->o.sites; i++) {
        vsite *v = &sw->sites[i];
        if (v->connecting) continue;
        if (v->away && now >= v->back_at_ms && *connect_credit >= 1) {
            *connect_credit -= 1;
            start_connect(v, !v->ever_connected);
            continue;
        }
        tick_site(v, now);
        if (v->want_out && v->fd >= 0) flush_out(v);
    }
    double churn = sw->o.churn_per_min * (double)dt_ms / 60000.0;
    double cut = sw->o.cut_per_min * (double)dt_ms / 60000.0;
    for (; churn > 0; churn -= 1)
        if (churn >= 1 || randombytes_uniform(1000000) < churn * 1e6) churn_one(sw, 0);
    for (; cut > 0; cut -= 1)
        if (cut >= 1 || randombytes_uniform(1000000) < cut * 1e6) churn_one(sw, 1);
}

static void handle_events(swarm *sw, struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        vsite *v = evs[i].data.ptr;
        int rc = MOSQ_ERR_SUCCESS;
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) rc = mosquitto_loop_read(v->mosq, 1);
        if (rc == MOSQ_ERR_SUCCESS && (evs[i].events & EPOLLOUT))
            rc = mosquitto_loop_write(v->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            lost_link(v);
            continue;
        }
        if (v->want_out)
            flush_out(v);
        else if (v->out_registered != (int)mosquitto_want_write(v->mosq))
            watch(v);
    }
    (void)sw;
}

/* ---------- tokens and jobs through the hub's operator interface ---------- */

/* Writes text to dir/name (0600). OP_OK or OP_EIO. */
static int write_secret(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return OP_EIO;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    return close(fd) == 0 && ok ? OP_OK : OP_EIO;
}

/*
 * A broker on TLS: the hub mints join bundles (token, CA, the site's broker
 * certificate and key), each site connecting with its own certificate as a
 * real site does. The files go to the swarm's directory; the token stays.
 */
static int take_bundle(swarm *sw, vsite *v)
{
    token_bundle b;
    char why[200];
    if (token_bundle_parse(v->token, &b, why, sizeof why) != OP_OK) {
        fprintf(stderr, "swarm: join bundle for %s: %s\n", v->me.id, why);
        return OP_EINVAL;
    }
    char name[96];
    int rc = OP_OK;
    if (!sw->tls_dir[0]) {
        snprintf(sw->tls_dir, sizeof sw->tls_dir, "/tmp/outpost-swarm-XXXXXX");
        if (!mkdtemp(sw->tls_dir)) rc = OP_EIO;
        if (rc == OP_OK) fprintf(stderr, "swarm: TLS files in %s\n", sw->tls_dir);
        if (rc == OP_OK) rc = write_secret(sw->tls_dir, "ca.crt", b.ca);
    }
    snprintf(name, sizeof name, "%s.crt", v->me.id);
    if (rc == OP_OK) rc = write_secret(sw->tls_dir, name, b.cert);
    snprintf(name, sizeof name, "%s.key", v->me.id);
    if (rc == OP_OK) rc = write_secret(sw->tls_dir, name, b.key);
    char *kept = rc == OP_OK ? strdup(b.token) : NULL;
    token_bundle_free(&b);
    if (!kept) return rc == OP_OK ? OP_ENOMEM : rc;
    sodium_memzero(v->token, strlen(v->token));
    free(v->token);
    v->token = kept;
    return OP_OK;
}

/* Removes the TLS directory and what is in it. */
static void drop_tls_dir(swarm *sw)
{
    if (!sw->tls_dir[0]) return;
    char path[256];
    snprintf(path, sizeof path, "%s/ca.crt", sw->tls_dir);
    unlink(path);
    for (int i = 0; i < sw->o.sites; i++) {
        snprintf(path, sizeof path, "%s/%s.crt", sw->tls_dir, sw->sites[i].me.id);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.key", sw->tls_dir, sw->sites[i].me.id);
        unlink(path);
    }
    rmdir(sw->tls_dir);
}

/* Join tokens for every site, minted in batches by the "tokens" command and opened here. */
static int mint_tokens(swarm *sw, cli *c)
{
    /* join bundles (the hub's broker on TLS: cli.conf names its CA) are ~12 KB each sealed:
     * 200 keep an answer within a message */
    char path[4096], err[256];
    opclient_hub conf;
    snprintf(path, sizeof path, "%s/cli.conf", sw->o.hub_dir);
    int most =
        opclient_load_hub(path, &conf, err, sizeof err) == OP_OK && conf.broker_ca[0] ? 200 : 2000;
    for (int done = 0; done < sw->o.sites;) {
        int count = sw->o.sites - done > most ? most : sw->o.sites - done;
        cJSON *req = cJSON_CreateObject(), *data = NULL;
        if (!req) return OP_ENOMEM;
        cJSON_AddStringToObject(req, "class", sw->o.cls);
        cJSON_AddStringToObject(req, "prefix", sw->o.prefix);
        jsonx_add_int(req, "first", sw->o.first + done);
        jsonx_add_int(req, "count", count);
        if (cli__request(c, req, "tokens", &data) != EXIT_OK) return OP_EINVAL;
        const cJSON *t;
        int k = done;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(data, "tokens"))
        {
            const char *sealed = jsonx_str(t, "sealed_token");
            size_t len = 0;
            if (k >= sw->o.sites || !sealed ||
                ident_open_sealed(&c->identity, sealed, 64 * 1024, &sw->sites[k].token, &len) !=
                    OP_OK)
                return OP_EINVAL;
            if (strncmp(sw->sites[k].token, TOKEN_BUNDLE_PREFIX, strlen(TOKEN_BUNDLE_PREFIX)) ==
                    0 &&
                take_bundle(sw, &sw->sites[k]) != OP_OK)
                return OP_EINVAL;
            k++;
        }
        if (k != done + count) return OP_EINVAL;
        done += count;
    }
    return OP_OK;
}

/* One batch of noop jobs; their ids and the time they were asked for go in the table. */
static void submit_batch(swarm *sw, cli *c, int count)
{
    cJSON *req = cJSON_CreateObject(), *data = NULL;
    cJSON *specs = req ? cJSON_AddArrayToObject(req, "specs") : NULL;
    for (int i = 0; specs && i < count; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON *res = s ? cJSON_AddObjectToObject(s, "resources") : NULL;
        if (!res) break;
        cJSON_AddStringToObject(s, "kind", "noop");
        jsonx_add_int(res, "cores", 1);
        jsonx_add_int(res, "memory_mb", 64);
        cJSON_AddItemToArray(specs, s);
    }
    int64_t asked = os_mono_ms();
    if (!specs || cli__request(c, req, "submit", &data) != EXIT_OK) {
        sw->n.submit_errors += (uint64_t)count;
        return;
    }
    const cJSON *id;
    pthread_mutex_lock(&sw->lock);
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(data, "ids"))
    {
        size_t slot = (size_t)id->valuedouble & ((1u << SWARM_SUBMITTED_BITS) - 1);
        sw->submitted_id[slot] = (int64_t)id->valuedouble;
        sw->submitted_ms[slot] = asked;
        sw->n.submitted++;
    }
    pthread_mutex_unlock(&sw->lock);
}

/*
 * The submitting thread: jobs_per_s, in batches about five a second, until
 * the swarm stops, on the operator connection that minted the tokens (the
 * thread's own from then on). What is owed follows the clock, not the
 * number of batches: a slow answer from the hub makes the next batch
 * larger rather than the rate lower.
 */
static void *submitter(void *arg)
{
    swarm *sw = arg;
    cli *c = sw->op_cli;
    int64_t start = os_mono_ms();
    double asked = 0;
    while (!sw->stopping) {
        double due = sw->o.jobs_per_s * (double)(os_mono_ms() - start) / 1000.0;
        int count = (int)(due - asked);
        if (count > 0) {
            if (count > 1000) count = 1000;
            submit_batch(sw, c, count);
            asked += count;
        }
        cli__pause(c, 200);
    }
    sw->submitter_done = 1;
    return NULL;
}

/* One heartbeat on site 1's topic from site 0: with its own kid, then claiming site 1's. */
static void forge(swarm *sw)
{
    if (sw->o.sites < 2 || !sw->sites[0].connected) return;
    vsite *a = &sw->sites[0], *b = &sw->sites[1];
    cJSON *body = heartbeat_body(a, 1);
    if (!body) return;
    publish_as(a, &a->me, b->me.id, "state", body, "state");
    ident claimed = a->me; /* site 1's name, site 0's key: the signature cannot match */
    snprintf(claimed.id, sizeof claimed.id, "%s", b->me.id);
    publish_as(a, &claimed, b->me.id, "state", body, "state");
    ident_wipe(&claimed);
    cJSON_Delete(body);
    fprintf(stderr, "swarm: sent 2 forged heartbeats for %s from %s\n", b->me.id, a->me.id);
}

/* ---------- start and run ---------- */

/* As many descriptors as the hard limit allows (raised first when privileged). */
static void raise_fd_limit(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if ((rlim_t)want > rl.rlim_max) {
        struct rlimit more = {(rlim_t)want, (rlim_t)want};
        if (setrlimit(RLIMIT_NOFILE, &more) == 0) return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)want > rl.rlim_max)
        fprintf(stderr, "swarm: the fd limit is %llu, fewer than %d sites need\n",
                (unsigned long long)rl.rlim_max, want);
}

static int make_sites(swarm *sw)
{
    sw->sites = calloc((size_t)sw->o.sites, sizeof *sw->sites);
    if (!sw->sites) return OP_ENOMEM;
    for (int i = 0; i < sw->o.sites; i++) {
        vsite *v = &sw->sites[i];
        v->sw = sw;
        crypto_sign_keypair(v->me.pk, v->me.sk);
        util_hex(v->me.pk, 32, v->me.pk_hex);
        randombytes_buf(v->beat_key, sizeof v->beat_key);
        msg_mac_key_id(v->beat_key, v->beat_key_id);
        snprintf(v->me.id, sizeof v->me.id, "%s%d", sw->o.prefix, sw->o.first + i);
        v->seq = (uint64_t)os_now_ms() * 1000;
        v->session = sw->n_sessions ? (int)randombytes_uniform((uint32_t)sw->n_sessions) : i;
        v->away = 1; /* connects are paced from the loop */
        v->back_at_ms = 0;
        v->next_beat_ms = INT64_MAX;
        v->hello.next_ms = INT64_MAX;
    }
    return OP_OK;
}

/*
 * The clients, after the operator connection is open: libmosquitto's own
 * loop (which the operator connection uses) polls with select(), so its
 * socket must come before the thousands of descriptors these take.
 */
static int make_clients(swarm *sw)
{
    for (int i = 0; i < sw->o.sites; i++)
        if (new_client(&sw->sites[i]) != OP_OK) return OP_ENOMEM;
    return OP_OK;
}

static int run(swarm *sw)
{
    struct epoll_event evs[1024];
    int64_t last = os_mono_ms(), next_report = last + sw->o.report_ms;
    int64_t end = sw->o.duration_s > 0 ? last + (int64_t)sw->o.duration_s * 1000 : INT64_MAX;
    double credit = 0;
    size_t from = 0;
    int forged = !sw->o.forge;
    while (!got_signal && os_mono_ms() < end) {
        int n = epoll_wait(sw->ep, evs, 1024, 10);
        if (n > 0) handle_events(sw, evs, n);
        take_connected(sw);
        int64_t now = os_mono_ms();
        if (now - last >= 20) {
            tick_all(sw, now, now - last, &credit);
            last = now;
        }
        if (!forged && sw->n.enrolled >= 2 && sw->sites[0].enrolled && sw->sites[1].enrolled) {
            forge(sw);
            forged = 1;
        }
        if (now >= next_report) {
            swarm__report(sw, &from, 0);
            next_report = now + sw->o.report_ms;
        }
    }
    swarm__report(sw, &from, 1);
    return 0;
}

/*
 * The broker the sites connect to: cli.conf's broker_host may be a list (a
 * hub on several brokers at once): the entry with --broker-port, or the
 * first; --broker-port alone names a broker on the first entry's host.
 */
static int pick_broker(swarm *sw)
{
    bus_broker list[BUS_MAX_BROKERS];
    int n = 0;
    char err[200];
    if (bus_parse_brokers(sw->hub.broker_host, (int)sw->hub.broker_port, list, BUS_MAX_BROKERS, &n,
                          err, sizeof err) != OP_OK) {
        fprintf(stderr, "swarm: the hub's broker_host: %s\n", err);
        return OP_EINVAL;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (list[i].port == sw->o.broker_port) k = i;
    snprintf(sw->hub.broker_host, sizeof sw->hub.broker_host, "%s", list[k].host);
    sw->hub.broker_port = sw->o.broker_port > 0 ? sw->o.broker_port : list[k].port;
    return OP_OK;
}

int main(int argc, char **argv)
{
    static swarm sw;
    if (swarm__parse_args(argc, argv, &sw.o) != 0) return 2;
    if (sodium_init() < 0 || mosquitto_lib_init() != MOSQ_ERR_SUCCESS) return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    raise_fd_limit(sw.o.sites * 3 + 1024); /* a socket and a socket pair per client */
    pthread_mutex_init(&sw.lock, NULL);
    pthread_mutex_init(&sw.cq_lock, NULL);
    pthread_cond_init(&sw.cq_ready, NULL);
    sw.cq_todo = calloc((size_t)sw.o.sites, sizeof *sw.cq_todo);
    sw.cq_done = calloc((size_t)sw.o.sites, sizeof *sw.cq_done);
    if (!sw.cq_todo || !sw.cq_done) return 1;
    sw.submitted_id = calloc(1u << SWARM_SUBMITTED_BITS, sizeof *sw.submitted_id);
    sw.submitted_ms = calloc(1u << SWARM_SUBMITTED_BITS, sizeof *sw.submitted_ms);
    sw.latency_ms = calloc(SWARM_LATENCY_CAP, sizeof *sw.latency_ms);
    sw.ep = epoll_create1(EPOLL_CLOEXEC);
    swarm__load_power(&sw);
    cli c;
    cli__init(&c, "swarm");
    c.hub_dir = sw.o.hub_dir;
    c.timeout_ms = 60000;
    int64_t t0 = os_mono_ms();
    if (!sw.submitted_id || !sw.submitted_ms || !sw.latency_ms || sw.ep < 0 ||
        make_sites(&sw) != OP_OK || mint_tokens(&sw, &c) != OP_OK || make_clients(&sw) != OP_OK) {
        fprintf(stderr, "swarm: cannot set up the sites or mint their tokens\n");
        return 1;
    }
    sw.hub = c.hub;
    if (pick_broker(&sw) != OP_OK) return 1;
    sw.op_cli = &c;
    fprintf(stderr, "swarm: %d sites, tokens minted in %lld ms; power: %s\n", sw.o.sites,
            (long long)(os_mono_ms() - t0), sw.power_source);
    sw.start_ms = os_mono_ms();
    pthread_t connectors[SWARM_CONNECTORS];
    for (int i = 0; i < SWARM_CONNECTORS; i++)
        if (pthread_create(&connectors[i], NULL, connector, &sw) != 0) return 1;
    pthread_t th;
    int submitting = sw.o.jobs_per_s > 0 && pthread_create(&th, NULL, submitter, &sw) == 0;
    run(&sw);
    drop_tls_dir(&sw);
    pthread_mutex_lock(&sw.cq_lock);
    sw.stopping = 1;
    pthread_cond_broadcast(&sw.cq_ready);
    pthread_mutex_unlock(&sw.cq_lock);
    for (int i = 0; i < SWARM_CONNECTORS; i++)
        pthread_join(connectors[i], NULL);
    /* a request to a hub that is gone waits out its timeout: the process does not */
    for (int i = 0; submitting && !sw.submitter_done && i < 100; i++)
        usleep(20000);
    if (submitting && !sw.submitter_done) return 0; /* exits with the thread still waiting */
    if (submitting) pthread_join(th, NULL);
    cli__close(&c);
    return 0;
}
