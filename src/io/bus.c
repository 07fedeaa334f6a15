#include "io/bus.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/timer.h"
#include "base/util.h"
#include "wire/msg.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUS_MAX_SUBS 16
#define BUS_BACKOFF_MIN_MS 100
/* Packets read per bus_loop call beyond the first. */
#define BUS_READ_BUDGET 1024
/* A probe of the first broker that has not connected by then counts as failed. */
#define BUS_PROBE_TIMEOUT_MS 2000
/* A return that failed doubles the wait before the next one, up to this. */
#define BUS_RETURN_MAX_MS (30 * 60 * 1000)

struct bus {
    struct mosquitto *mosq;
    const ident *signer;
    bus_message_fn on_message;
    void *ctx;
    bus_broker brokers[BUS_MAX_BROKERS];
    int n_brokers;
    int cur;                             /* the broker tried or connected now */
    int last_connected;                  /* the broker of the last CONNACK, -1 before the first */
    int attempt_open;                    /* an attempt on cur started and has not reached CONNACK */
    char name[300];                      /* "host:port" of cur, for logs and bus_broker_name */
    int return_after_ms, return_wait_ms; /* the configured wait, and the current one */
    int64_t next_probe_ms;
    int probe_fd; /* a TCP connect to the first broker in progress, or -1 */
    int64_t probe_deadline_ms;
    int probe_ok;  /* probes in a row the first broker answered */
    int returning; /* left for the first broker, not yet connected to it */
    int keepalive_s;
    int session_expiry_s;
    char *subs[BUS_MAX_SUBS];
    int n_subs;
    char *unsubs[BUS_MAX_SUBS];
    int n_unsubs;
    uint32_t max_packet_bytes;
    int connected;
    int ever_connected;
    int subacks_due;  /* subscriptions of this connection not yet acknowledged */
    int subs_refused; /* ... that the broker refused (its ACL, most likely) */
    int tls;
    int problem_logged; /* a refusal was logged since the last CONNACK: not again each retry */
    int pending;
    uint64_t seq;
    uint64_t *seqp; /* &seq, or the counter the config shares with other connections */
    timer retry;    /* the next connection attempt: due at next_ms, backing off (period_ms) */
    bus_stats stats;
};

static int lib_ready;

/* One entry of a broker list, trimmed, into out. */
static int parse_one_broker(const char *entry, size_t len, int default_port, bus_broker *out,
                            char *err, size_t err_len)
{
    while (len > 0 && (*entry == ' ' || *entry == '\t')) {
        entry++;
        len--;
    }
    while (len > 0 && (entry[len - 1] == ' ' || entry[len - 1] == '\t'))
        len--;
    const char *host = entry, *port_text = NULL;
    size_t host_len = len;
    if (len > 0 && entry[0] == '[') { /* [IPv6]:port */
        const char *close = memchr(entry, ']', len);
        if (!close) goto bad;
        host = entry + 1;
        host_len = (size_t)(close - host);
        if ((size_t)(close + 1 - entry) < len) {
            if (close[1] != ':') goto bad;
            port_text = close + 2;
        }
    } else {
        const char *colon = memchr(entry, ':', len);
        if (colon) {
            host_len = (size_t)(colon - entry);
            port_text = colon + 1;
        }
    }
    if (host_len == 0 || host_len >= sizeof out->host || memchr(host, ' ', host_len) ||
        memchr(host, '\t', host_len))
        goto bad;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = default_port;
    if (port_text) {
        char digits[8];
        int64_t port;
        size_t n = (size_t)(entry + len - port_text);
        if (n == 0 || n >= sizeof digits || strspn(port_text, "0123456789") < n) goto bad;
        memcpy(digits, port_text, n);
        digits[n] = '\0';
        if (util_parse_i64(digits, 1, 65535, &port) != OP_OK) goto bad;
        out->port = (int)port;
    }
    return OP_OK;
bad:
    snprintf(err, err_len, "broker '%.*s': expected host, host:port or [address]:port",
             (int)(len > 80 ? 80 : len), entry);
    return OP_EINVAL;
}

int bus_parse_brokers(const char *text, int default_port, bus_broker *out, int max, int *n,
                      char *err, size_t err_len)
{
    *n = 0;
    const char *p = text ? text : "";
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n == max) {
            snprintf(err, err_len, "more than %d brokers", max);
            return OP_EINVAL;
        }
        int rc = parse_one_broker(p, len, default_port, &out[*n], err, err_len);
        if (rc != OP_OK) return rc;
        (*n)++;
        if (!comma) return OP_OK;
        p = comma + 1;
    }
}

/* cur becomes broker i; the name logs and bus_broker_name show follows it. */
static void set_current(bus *b, int i)
{
    b->cur = i;
    const bus_broker *k = &b->brokers[i];
    snprintf(b->name, sizeof b->name, strchr(k->host, ':') ? "[%s]:%d" : "%s:%d", k->host, k->port);
}

static void probe_stop(bus *b)
{
    if (b->probe_fd >= 0) close(b->probe_fd);
    b->probe_fd = -1;
}

/*
 * A CONNACK: a move to another broker is counted and logged (the roles
 * re-send what the old broker's session may have lost), a return to the
 * first one resets the wait before the next return.
 */
static void note_connected(bus *b)
{
    if (b->last_connected >= 0 && b->last_connected != b->cur) {
        b->stats.moves++;
        log_warn("bus", "moved from broker %s:%d to %s", b->brokers[b->last_connected].host,
                 b->brokers[b->last_connected].port, b->name);
    } else if (b->ever_connected) {
        log_info("bus", "reconnected to %s", b->name);
    } else if (b->n_brokers > 1) {
        log_info("bus", "connected to broker %s (%d of %d)", b->name, b->cur + 1, b->n_brokers);
    }
    if (b->cur == 0) {
        b->return_wait_ms = b->return_after_ms;
        b->returning = 0;
    }
    b->probe_ok = 0;
    b->next_probe_ms = os_mono_ms() + b->return_wait_ms;
    probe_stop(b);
    b->last_connected = b->cur;
    b->ever_connected = 1;
}

/*
 * A broker that refuses us (bad certificate, not authorised, unreachable)
 * refuses every retry the same way: the first time is a warning with what to
 * check, the others are debug lines, until a connection succeeds.
 */
static void report_problem(bus *b, const char *what)
{
    if (b->problem_logged) {
        log_debug("bus", "broker %s: %s", b->name, what);
        return;
    }
    b->problem_logged = 1;
    log_warn("bus", "broker %s: %s%s (retrying quietly)", b->name, what,
             b->tls ? "; check the broker CA, this client's certificate and the broker's ACL" : "");
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    bus *b = obj;
    if (rc != 0) {
        char what[160];
        snprintf(what, sizeof what, "refused the connection: %s", mosquitto_reason_string(rc));
        report_problem(b, what);
        return;
    }
    b->connected = 1;
    b->problem_logged = 0;
    b->attempt_open = 0;
    b->retry.period_ms = BUS_BACKOFF_MIN_MS;
    note_connected(b);
    for (int i = 0; i < b->n_unsubs; i++)
        mosquitto_unsubscribe_v5(mosq, NULL, b->unsubs[i], NULL);
    b->subacks_due = 0;
    b->subs_refused = 0;
    for (int i = 0; i < b->n_subs; i++)
        if (mosquitto_subscribe_v5(mosq, NULL, b->subs[i], 1, 0, NULL) == MOSQ_ERR_SUCCESS)
            b->subacks_due++;
}

/*
 * SUBACKs: a reason code of 0x80 or more is a refusal (MQTT 5), which the
 * broker gives for a pattern its ACL denies: counted for the daemon to
 * judge (bus_refused_subscriptions) and logged once per connection.
 */
static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    bus *b = obj;
    if (b->subacks_due > 0) b->subacks_due--;
    for (int i = 0; i < count; i++)
        if (granted[i] >= 0x80) {
            if (!b->subs_refused)
                log_error("bus", "broker %s refused a subscription (reason 0x%02x): check its ACL",
                          b->name, (unsigned)granted[i]);
            b->subs_refused++;
        }
}

/*
 * rc 0 is a disconnect we asked for (bus_close at a command's end or a
 * daemon's clean exit): not a loss, so it is only a debug line. Any other rc
 * is the link failing under us.
 */
static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    bus *b = obj;
    if (b->connected && rc == 0)
        log_debug("bus", "disconnected from %s", b->name);
    else if (b->connected)
        log_warn("bus", "lost connection to %s (%d)", b->name, rc);
    b->connected = 0;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    bus *b = obj;
    if (b->pending > 0) b->pending--;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    bus *b = obj;
    char *kid = NULL, *sig = NULL;
    char *name = NULL, *value = NULL;
    b->stats.received++;
    const mosquitto_property *p =
        mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false);
    while (p) {
        if (name && value && strcmp(name, "kid") == 0 && !kid) {
            kid = value;
            value = NULL;
        } else if (name && value && strcmp(name, "sig") == 0 && !sig) {
            sig = value;
            value = NULL;
        }
        free(name);
        free(value);
        name = value = NULL;
        p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, true);
    }
    b->on_message(b->ctx, m->topic, m->payload, (size_t)(m->payloadlen > 0 ? m->payloadlen : 0),
                  kid, sig);
    free(kid);
    free(sig);
}

/*
 * TLS with the broker: its certificate checked against ca_file and the host
 * name or address (never the insecure mode), ours shown from cert and key.
 */
static int setup_tls(bus *b, const bus_config *config)
{
    if (!config->tls_ca && !config->tls_cert && !config->tls_key) return OP_OK;
    if (!config->tls_ca || !config->tls_cert || !config->tls_key) {
        log_error("bus", "TLS needs a CA file, a certificate and a key");
        return OP_EINVAL;
    }
    int rc =
        mosquitto_tls_set(b->mosq, config->tls_ca, NULL, config->tls_cert, config->tls_key, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_opts_set(b->mosq, 1 /* SSL_VERIFY_PEER */, "tlsv1.2", NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(b->mosq, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_error("bus", "cannot use TLS files %s, %s, %s: %s", config->tls_ca, config->tls_cert,
                  config->tls_key, mosquitto_strerror(rc));
        return OP_EINVAL;
    }
    b->tls = 1;
    return OP_OK;
}

int bus_open(const bus_config *config, const ident *signer, bus_message_fn on_msg, void *ctx,
             bus **out)
{
    if (!lib_ready) {
        mosquitto_lib_init();
        lib_ready = 1;
    }
    bus *b = calloc(1, sizeof *b);
    if (!b) return OP_ENOMEM;
    b->signer = signer;
    b->on_message = on_msg;
    b->ctx = ctx;
    b->keepalive_s = config->keepalive_s > 0 ? config->keepalive_s : 30;
    b->session_expiry_s = config->session_expiry_s;
    b->max_packet_bytes = config->max_packet_bytes;
    if (config->n_brokers > BUS_MAX_BROKERS || (config->n_brokers < 1 && !config->host)) {
        free(b);
        return OP_EINVAL;
    }
    if (config->n_brokers > 0) {
        memcpy(b->brokers, config->brokers, (size_t)config->n_brokers * sizeof b->brokers[0]);
        b->n_brokers = config->n_brokers;
    } else {
        snprintf(b->brokers[0].host, sizeof b->brokers[0].host, "%s", config->host);
        b->brokers[0].port = config->port;
        b->n_brokers = 1;
    }
    set_current(b, 0);
    b->last_connected = -1;
    b->probe_fd = -1;
    b->return_after_ms = b->return_wait_ms = config->return_after_ms;
    /* By default sequence numbers start at the wall clock in microseconds, so that they keep
     * increasing across restarts as long as the clock does not step back. */
    b->seq = config->seq_start ? config->seq_start : (uint64_t)os_now_ms() * 1000;
    b->seqp = config->seq_shared ? config->seq_shared : &b->seq;
    if (*b->seqp < b->seq) *b->seqp = b->seq;
    timer_init(&b->retry, BUS_BACKOFF_MIN_MS);
    b->mosq = mosquitto_new(config->client_id, config->clean_start ? true : false, b);
    if (!b->mosq) {
        free(b);
        return OP_ENOMEM;
    }
    mosquitto_int_option(b->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(b->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
    mosquitto_int_option(b->mosq, MOSQ_OPT_SEND_MAXIMUM, 1000);
    mosquitto_int_option(b->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    int rc = setup_tls(b, config);
    if (rc != OP_OK) {
        mosquitto_destroy(b->mosq);
        free(b);
        return rc;
    }
    mosquitto_connect_v5_callback_set(b->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(b->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(b->mosq, on_publish);
    mosquitto_subscribe_v5_callback_set(b->mosq, on_subscribe);
    mosquitto_message_v5_callback_set(b->mosq, on_message);
    *out = b;
    return OP_OK;
}

void bus_close(bus *b)
{
    if (!b) return;
    if (b->connected) {
        mosquitto_disconnect_v5(b->mosq, 0, NULL);
        mosquitto_loop(b->mosq, 50, 1);
    }
    mosquitto_destroy(b->mosq);
    probe_stop(b);
    for (int i = 0; i < b->n_subs; i++)
        free(b->subs[i]);
    for (int i = 0; i < b->n_unsubs; i++)
        free(b->unsubs[i]);
    free(b);
}

int bus_subscribe(bus *b, const char *pattern)
{
    if (b->n_subs == BUS_MAX_SUBS) return OP_EFULL;
    b->subs[b->n_subs] = strdup(pattern);
    if (!b->subs[b->n_subs]) return OP_ENOMEM;
    b->n_subs++;
    if (b->connected &&
        mosquitto_subscribe_v5(b->mosq, NULL, pattern, 1, 0, NULL) == MOSQ_ERR_SUCCESS)
        b->subacks_due++;
    return OP_OK;
}

int bus_unsubscribe(bus *b, const char *pattern)
{
    if (b->n_unsubs == BUS_MAX_SUBS) return OP_EFULL;
    b->unsubs[b->n_unsubs] = strdup(pattern);
    if (!b->unsubs[b->n_unsubs]) return OP_ENOMEM;
    b->n_unsubs++;
    if (b->connected) mosquitto_unsubscribe_v5(b->mosq, NULL, pattern, NULL);
    return OP_OK;
}

int bus_publish_raw(bus *b, const char *topic, const void *payload, size_t len, const char *kid,
                    const char *sig)
{
    mosquitto_property *props = NULL;
    if (len > MSG_MAX_PAYLOAD_BYTES) return OP_ETOOBIG;
    /* Refused before libmosquitto sees it: while down it would queue the message and send it
     * after the reconnect, although the caller was told it failed and sends it again. */
    if (!b->connected) {
        b->stats.publish_errors++;
        return OP_EBUS;
    }
    if (kid) mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "kid", kid);
    if (sig) mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "sig", sig);
    int rc = mosquitto_publish_v5(b->mosq, NULL, topic, (int)len, payload, 1, false, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) {
        b->stats.publish_errors++;
        return OP_EBUS;
    }
    b->stats.published++;
    b->pending++;
    return OP_OK;
}

int bus_publish(bus *b, const char *topic, cJSON *body, const char *type)
{
    size_t len = 0;
    char sig[129];
    char *text = msg_encode(body, b->signer->id, type, ++*b->seqp, os_now_ms(), &len);
    if (!text) return OP_ENOMEM;
    int rc = OP_ETOOBIG;
    if (len <= MSG_MAX_PAYLOAD_BYTES && (rc = msg_sign(b->signer, topic, text, len, sig)) == OP_OK)
        rc = bus_publish_raw(b, topic, text, len, b->signer->id, sig);
    free(text);
    return rc;
}

int bus_publish_mac(bus *b, const char *topic, cJSON *body, const char *type,
                    const uint8_t key[MSG_MAC_KEY_BYTES])
{
    size_t len = 0;
    char mac[MSG_MAC_HEX_BYTES];
    char *text = msg_encode(body, b->signer->id, type, ++*b->seqp, os_now_ms(), &len);
    if (!text) return OP_ENOMEM;
    int rc = OP_ETOOBIG;
    if (len <= MSG_MAX_PAYLOAD_BYTES) {
        msg_mac(key, topic, text, len, mac);
        rc = bus_publish_raw(b, topic, text, len, b->signer->id, mac);
    }
    free(text);
    return rc;
}

/*
 * The attempt on cur never reached CONNACK: the next broker of the list. A
 * failed return to the first one doubles the wait before the next return, so
 * a first broker that accepts connections and fails them is not followed
 * back and forth.
 */
static void advance(bus *b)
{
    if (b->returning && b->cur == 0) {
        b->returning = 0;
        b->return_wait_ms =
            b->return_wait_ms > BUS_RETURN_MAX_MS / 2 ? BUS_RETURN_MAX_MS : b->return_wait_ms * 2;
        log_warn("bus", "going back to broker %s failed: next try in %d s", b->name,
                 b->return_wait_ms / 1000);
    }
    if (b->n_brokers > 1) {
        set_current(b, (b->cur + 1) % b->n_brokers);
        log_debug("bus", "trying broker %s", b->name);
    }
}

static void try_connect(bus *b)
{
    int64_t now = os_mono_ms();
    if (!timer_ready(&b->retry, now)) return;
    if (b->attempt_open) advance(b);
    b->attempt_open = 1;
    /* The host may change from one attempt to the next: connect_bind sets it each time. */
    mosquitto_property *props = NULL;
    if (b->session_expiry_s > 0)
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                     (uint32_t)b->session_expiry_s);
    if (b->max_packet_bytes > 0)
        mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, b->max_packet_bytes);
    const bus_broker *k = &b->brokers[b->cur];
    int rc = mosquitto_connect_bind_v5(b->mosq, k->host, k->port, b->keepalive_s, NULL, props);
    mosquitto_property_free_all(&props);
    b->stats.reconnects++;
    if (rc == MOSQ_ERR_SUCCESS) {
        b->retry.next_ms = now + b->retry.period_ms; /* wait for CONNACK before trying again */
        return;
    }
    /* Exponential backoff with jitter, so that a fleet does not reconnect in lockstep. */
    timer_backoff(&b->retry, now, BUS_BACKOFF_MAX_MS, randombytes_random());
    char what[160];
    snprintf(what, sizeof what, "cannot connect: %s", mosquitto_strerror(rc));
    if (rc == MOSQ_ERR_ERRNO) /* nothing listening (yet): the broker starts or restarts */
        log_debug("bus", "connect to %s failed: %s", b->name, mosquitto_strerror(rc));
    else
        report_problem(b, what);
}

/* A non-blocking TCP connect to the first broker (its name resolved here). */
static void probe_start(bus *b, int64_t now)
{
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    snprintf(port, sizeof port, "%d", b->brokers[0].port);
    b->next_probe_ms = now + b->return_wait_ms;
    if (getaddrinfo(b->brokers[0].host, port, &hints, &ai) != 0 || !ai) {
        b->probe_ok = 0;
        return;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        b->probe_ok = 0;
        return;
    }
    b->probe_fd = fd;
    b->probe_deadline_ms = now + BUS_PROBE_TIMEOUT_MS;
}

/*
 * Leaves the broker this client is on for the first one: the session here is
 * ended (Session Expiry 0 on DISCONNECT), so it does not keep queueing what
 * the bridge brings for a client that is gone.
 */
static void go_back(bus *b)
{
    log_info("bus", "broker %s:%d answers again: leaving %s for it", b->brokers[0].host,
             b->brokers[0].port, b->name);
    mosquitto_property *props = NULL;
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0);
    mosquitto_disconnect_v5(b->mosq, 0, props);
    mosquitto_property_free_all(&props);
    mosquitto_loop(b->mosq, 50, 1);
    b->connected = 0;
    b->pending = 0;
    b->returning = 1;
    b->attempt_open = 0;
    timer_init(&b->retry, BUS_BACKOFF_MIN_MS);
    set_current(b, 0);
}

/*
 * On a broker other than the first: every return_wait_ms a TCP connect to the
 * first; after two in a row succeed (it has been up for a while, not just
 * restarting), the client goes back to it.
 */
static void probe_first(bus *b)
{
    int64_t now = os_mono_ms();
    if (b->probe_fd < 0) {
        if (now >= b->next_probe_ms) probe_start(b, now);
        return;
    }
    struct pollfd pfd = {.fd = b->probe_fd, .events = POLLOUT};
    int ready = poll(&pfd, 1, 0);
    if (ready == 0 && now < b->probe_deadline_ms) return;
    int error = ready > 0 ? 0 : ETIMEDOUT;
    socklen_t len = sizeof error;
    if (ready > 0 && getsockopt(b->probe_fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    probe_stop(b);
    b->probe_ok = error == 0 ? b->probe_ok + 1 : 0;
    log_debug("bus", "probe of broker %s:%d: %s", b->brokers[0].host, b->brokers[0].port,
              error == 0 ? "up" : "down");
    if (b->probe_ok >= 2) go_back(b);
}

int bus_socket(bus *b)
{
    return mosquitto_socket(b->mosq);
}

/*
 * One turn of the client's network work, as mosquitto_loop does it, but
 * waiting with poll(): mosquitto_loop waits with select() and refuses
 * (MOSQ_ERR_INVAL) a socket numbered FD_SETSIZE (1,024) or more, which a
 * process with many descriptors (the swarm: three per virtual site) gets
 * when it reconnects. Publishes happen on this thread, so libmosquitto's
 * wake-up socket pair is not needed to learn of them.
 */
static int loop_socket(bus *b, int timeout_ms)
{
    struct pollfd pfd = {.fd = mosquitto_socket(b->mosq), .events = POLLIN};
    if (pfd.fd < 0) return MOSQ_ERR_NO_CONN;
    if (mosquitto_want_write(b->mosq)) pfd.events |= POLLOUT;
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0) return errno == EINTR ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ERRNO;
    int rc = MOSQ_ERR_SUCCESS;
    if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
        rc = mosquitto_loop_read(b->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(b->mosq) < 0) return rc;
    }
    if (n > 0 && (pfd.revents & POLLOUT)) {
        rc = mosquitto_loop_write(b->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(b->mosq) < 0) return rc;
    }
    return mosquitto_loop_misc(b->mosq);
}

int bus_loop(bus *b, int timeout_ms)
{
    if (!b->connected && mosquitto_socket(b->mosq) < 0) {
        try_connect(b);
        if (mosquitto_socket(b->mosq) < 0) {
            struct timespec ts = {0, (long)(timeout_ms > 20 ? 20 : timeout_ms) * 1000000L};
            nanosleep(&ts, NULL);
            return OP_OK;
        }
    }
    int was_connected = b->connected; /* on_disconnect clears it inside the loop */
    int rc = loop_socket(b, timeout_ms);
    /*
     * mosquitto_loop reads about one packet per call; drain whatever else is
     * already readable (bounded) so that the caller handles a burst in one
     * batch, and one commit.
     */
    for (int i = 0; rc == MOSQ_ERR_SUCCESS && i < BUS_READ_BUDGET; i++) {
        struct pollfd pfd = {.fd = mosquitto_socket(b->mosq), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0) break;
        rc = mosquitto_loop_read(b->mosq, 1);
    }
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(b->mosq))
        rc = mosquitto_loop_write(b->mosq, 1);
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        if (b->connected && b->cur != 0 && b->return_after_ms > 0) probe_first(b);
        return OP_OK;
    case MOSQ_ERR_NO_CONN:
    case MOSQ_ERR_CONN_LOST:
    case MOSQ_ERR_CONN_REFUSED:
    case MOSQ_ERR_ERRNO:
    case MOSQ_ERR_PROTOCOL:
    case MOSQ_ERR_KEEPALIVE:
    case MOSQ_ERR_TLS:
    case MOSQ_ERR_AUTH:
    case MOSQ_ERR_NOT_SUPPORTED:
        if (b->connected)
            log_warn("bus", "connection to %s dropped: %s", b->name, mosquitto_strerror(rc));
        else if (was_connected) /* a drop on_disconnect logged, not a refusal */
            log_debug("bus", "connection to %s ended: %s", b->name, mosquitto_strerror(rc));
        else if (rc != MOSQ_ERR_CONN_LOST && rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_ERRNO)
            report_problem(b, mosquitto_strerror(rc));
        else if (b->tls)
            report_problem(b, "closed the link during the TLS handshake or CONNECT");
        b->connected = 0;
        b->pending = 0;
        try_connect(b);
        return OP_OK;
    default:
        log_error("bus", "client error: %s", mosquitto_strerror(rc));
        return OP_EBUS;
    }
}

int bus_connected(const bus *b)
{
    return b->connected;
}

int bus_subscribed(const bus *b)
{
    return b->connected && b->subacks_due == 0;
}

int bus_refused_subscriptions(const bus *b)
{
    return b->connected ? b->subs_refused : 0;
}

int bus_wait_connected(bus *b, int timeout_ms)
{
    int64_t deadline = os_mono_ms() + timeout_ms;
    while (!b->connected) {
        if (os_mono_ms() > deadline) return OP_ETIMEOUT;
        if (bus_loop(b, 20) != OP_OK) return OP_EBUS;
    }
    return OP_OK;
}

int bus_broker_index(const bus *b)
{
    return b->cur;
}

const char *bus_broker_name(const bus *b)
{
    return b->name;
}

int bus_broker_count(const bus *b)
{
    return b->n_brokers;
}

uint64_t bus_moves(const bus *b)
{
    return b->stats.moves;
}

uint64_t bus_seq(const bus *b)
{
    return *b->seqp;
}

int bus_pending(const bus *b)
{
    return b->pending;
}

const bus_stats *bus_get_stats(const bus *b)
{
    return &b->stats;
}

/* Sealed, then signed: the signature covers the bytes the broker carries (msg.h). */
int bus_publish_sealed(bus *b, const char *topic, cJSON *body, const char *type,
                       const uint8_t to_pk[32])
{
    size_t len = 0, sealed_len = 0;
    uint8_t *sealed = NULL;
    char sig[129];
    char *text = msg_encode(body, b->signer->id, type, ++*b->seqp, os_now_ms(), &len);
    if (!text) return OP_ENOMEM;
    int rc = OP_ETOOBIG;
    if (len + MSG_SEAL_OVERHEAD_BYTES <= MSG_MAX_PAYLOAD_BYTES &&
        (rc = msg_seal(to_pk, text, len, &sealed, &sealed_len)) == OP_OK &&
        (rc = msg_sign(b->signer, topic, sealed, sealed_len, sig)) == OP_OK)
        rc = bus_publish_raw(b, topic, sealed, sealed_len, b->signer->id, sig);
    sodium_memzero(text, len);
    free(text);
    free(sealed);
    return rc;
}
