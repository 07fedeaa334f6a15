/*
 * bus: the MQTT 5 adapter (libmosquitto). Every message it publishes is
 * signed (msg.h): it adds from/type/seq/ts to the JSON body and the user
 * properties kid and sig, and bus_publish_sealed seals it to its recipient
 * first. Incoming messages are handed to the caller's
 * callback with their kid and sig, unverified: the role decides who it
 * trusts (msg_open). QoS 1, persistent sessions (clean_start=0 with a
 * session expiry), reconnect with exponential backoff and jitter.
 *
 * With tls_ca, tls_cert and tls_key the link is TLS 1.2 or later: the
 * broker's certificate must be signed by tls_ca and name the host (IP or
 * DNS), and the client shows its own certificate, whose common name is its
 * broker user name. Without them, plain TCP.
 *
 * Brokers: a list of up to BUS_MAX_BROKERS (a bridged pair, a cluster's
 * nodes), tried in order. A link that drops is retried on the same broker
 * first; an attempt that does not reach CONNACK moves on to the next, with
 * the jittered backoff growing once a whole round has failed. While on a
 * broker other than the first, the first is probed (a TCP connect) every
 * return_after_ms; once it has answered two probes in a row the client
 * leaves the other broker (its session there ended with a session expiry of
 * 0) and goes back, so a broker that flaps is not followed. The TLS files
 * apply to every broker: each broker's certificate must be signed by tls_ca
 * and name the host the list gives for it.
 *
 * A session is per broker (per cluster, where the nodes share sessions):
 * after a move to a broker of a bridged pair, nothing queued in the old
 * broker's session is delivered; the protocol's resends and idempotency
 * recover what was in flight (roles learn of a move from bus_moves). A
 * session left on a broker from an earlier visit may deliver what it queued
 * since: copies of what came through the other broker, which the receiver's
 * replay window drops. Going back to the first broker ends the session on the
 * one left, so it does not queue for a client that is gone.
 *
 * Single-threaded: all network work happens inside bus_loop(), and the
 * callback runs there, on the caller's thread.
 */
#ifndef OUTPOST_BUS_H
#define OUTPOST_BUS_H

#include "wire/ident.h"
#include "wire/msg.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bus bus;

#define BUS_MAX_BROKERS 8
/* The longest a client waits between reconnect attempts (jittered below it):
 * after a broker returns, every client is back within this plus a round trip. */
#define BUS_BACKOFF_MAX_MS 5000

/* One broker of a list: a host name or address, and a port. */
typedef struct bus_broker {
    char host[256];
    int port;
} bus_broker;

typedef void (*bus_message_fn)(void *ctx, const char *topic, const void *payload, size_t len,
                               const char *kid, const char *sig);

typedef struct bus_config {
    /* One broker (host, port), or a list of n_brokers (then host and port are ignored). */
    const char *host;
    int port;
    const bus_broker *brokers;
    int n_brokers;
    /*
     * How often a client on a broker other than the first probes the first
     * to go back to it; 0: never goes back (the CLI, a short-lived client).
     */
    int return_after_ms;
    const char *client_id; /* stable id for a persistent session */
    int clean_start;       /* 1 for throwaway clients (CLI) */
    int session_expiry_s;  /* how long the broker keeps the session offline */
    int keepalive_s;
    /*
     * The sequence number before the first message's: 0 takes the wall clock
     * in microseconds (a daemon that keeps no counter of its own); an
     * operator program passes a random nonce start (wire/msg.h), a daemon
     * that persists its counter passes the value it stored.
     */
    uint64_t seq_start;
    /*
     * NULL, or a counter shared by several connections of one sender (a hub
     * on several brokers at once): each publish takes the next number from
     * it, so a receiver hearing the sender through any of them sees one
     * increasing sequence. Raised to seq_start when below it; must outlive
     * the bus.
     */
    uint64_t *seq_shared;
    /*
     * 0, or the largest packet the broker may send this client (MQTT 5
     * Maximum Packet Size): the broker discards bigger ones for this client
     * without sending them, so junk never costs the client a byte read.
     */
    uint32_t max_packet_bytes;
    /* PEM files: the CA that signed the broker's certificate, this client's certificate and
     * key. All three, or NULL for plain TCP. */
    const char *tls_ca, *tls_cert, *tls_key;
} bus_config;

typedef struct bus_stats {
    uint64_t published;
    uint64_t publish_errors;
    uint64_t received;
    uint64_t reconnects;
    uint64_t moves; /* connections made to another broker than the one before */
} bus_stats;

/*
 * Parses a broker list, "host[:port], host[:port] ..." (an IPv6 address in
 * brackets: "[::1]:1883"), entries without a port taking default_port, into
 * out (up to max). OP_OK with *n >= 1; OP_EINVAL with the reason in err for
 * an empty list or entry, a bad port, a host over 255 characters or one with
 * spaces, or more than max entries.
 */
int bus_parse_brokers(const char *text, int default_port, bus_broker *out, int max, int *n,
                      char *err, size_t err_len);

/*
 * Creates the client and starts connecting (does not wait). signer signs
 * every publish and must outlive the bus. Errors: OP_ENOMEM, OP_EBUS,
 * OP_EINVAL (only some of the TLS files given, or libmosquitto cannot read
 * them: logged with the path).
 */
int bus_open(const bus_config *config, const ident *signer, bus_message_fn on_message, void *ctx,
             bus **out);
void bus_close(bus *b);

/*
 * Subscribes now (if connected) and again after every reconnect. QoS 1.
 * OP_OK, or OP_EFULL past the bound of 16 patterns, OP_ENOMEM.
 */
int bus_subscribe(bus *b, const char *pattern);

/*
 * Unsubscribes from pattern at every connect: a persistent session keeps
 * the subscriptions an earlier run of the same client made, and this drops
 * one that moved to another connection. OP_EFULL past 16, OP_ENOMEM.
 */
int bus_unsubscribe(bus *b, const char *pattern);

/*
 * Signs and publishes body (from/type/seq/ts are set on it; the caller
 * still owns body). QoS 1. OP_EBUS when not connected or the client
 * refused it (counted); OP_ETOOBIG past MSG_MAX_PAYLOAD_BYTES.
 */
int bus_publish(bus *b, const char *topic, cJSON *body, const char *type);

/*
 * Like bus_publish, with the JSON text sealed to the holder of the Ed25519
 * key to_pk (msg_seal) before it is signed: only that recipient reads it.
 * Errors: bus_publish's, and OP_EINVAL when to_pk is not a valid key.
 */
int bus_publish_sealed(bus *b, const char *topic, cJSON *body, const char *type,
                       const uint8_t to_pk[32]);

/*
 * Like bus_publish, authenticated by a MAC under key in place of a signature
 * (msg.h: a site's heartbeats once the hub holds its key).
 */
int bus_publish_mac(bus *b, const char *topic, cJSON *body, const char *type,
                    const uint8_t key[MSG_MAC_KEY_BYTES]);

/* Publishes bytes exactly as given with optional kid/sig (tests of forged input). */
int bus_publish_raw(bus *b, const char *topic, const void *payload, size_t len, const char *kid,
                    const char *sig);

/*
 * Runs the network for up to timeout_ms: reads (invoking the callback),
 * writes, keepalive, and reconnects with backoff when the link is down.
 * Returns OP_OK; OP_EBUS only for a fatal client error.
 */
int bus_loop(bus *b, int timeout_ms);
/* The connection's socket, to poll for input with other descriptors; -1 when not connected. */
int bus_socket(bus *b);

/* 1 once CONNACK arrived and until the connection drops. */
int bus_connected(const bus *b);
/*
 * 1 once connected and every subscription made on this connection was
 * answered by the broker (granted or refused); 0 before and after a drop.
 * With bus_refused_subscriptions, what "ready" means for a daemon.
 */
int bus_subscribed(const bus *b);
/* How many subscriptions the broker refused on this connection (its ACL; logged). */
int bus_refused_subscriptions(const bus *b);
/* Blocks in bus_loop until connected or timeout. OP_ETIMEOUT. */
int bus_wait_connected(bus *b, int timeout_ms);
/*
 * The broker this client is on, or tries: its index in the list (0 the
 * first) and "host:port". The text lives as long as the bus.
 */
int bus_broker_index(const bus *b);
const char *bus_broker_name(const bus *b);
/* How many brokers the list has (1 for a single one). */
int bus_broker_count(const bus *b);
/*
 * How many times this client has connected to a broker other than the one
 * it was on before (0 until the first move). A role compares it with the
 * value it saw last to learn that it moved: what it sent into the old
 * broker's session may be lost, and it re-sends what it must.
 */
uint64_t bus_moves(const bus *b);
/* The sequence number of the last message signed (to persist it). */
uint64_t bus_seq(const bus *b);
/* Number of QoS 1 publishes not yet acknowledged by the broker. */
int bus_pending(const bus *b);
const bus_stats *bus_get_stats(const bus *b);

#endif
