/*
 * swarm.h: what the files of outpost-swarm share (bench/swarm.c drives the
 * sites; swarm_power.c their power; swarm_report.c the options and the
 * reports). Not part of the product: a load tool built from bench/.
 */
#ifndef OUTPOST_BENCH_SWARM_H
#define OUTPOST_BENCH_SWARM_H

#include "base/timer.h"
#include "cli/cli_int.h"
#include "io/opclient.h"
#include "wire/ident.h"
#include "wire/msg.h"

#include <pthread.h>
#include <stdint.h>

#define SWARM_MAX_UNACKED 32     /* results a site keeps until acknowledged */
#define SWARM_LATENCY_CAP 200000 /* offer latencies kept for the percentiles */
#define SWARM_SUBMITTED_BITS 18  /* the table of submission times: 2^18 slots */
#define SWARM_SKEW_MS 60000

typedef struct swarm swarm;

typedef struct vresult {
    int64_t job, attempt;
} vresult;

typedef struct vsite {
    ident me;
    swarm *sw;
    struct mosquitto *mosq;
    int fd;             /* the socket in the epoll set, -1 when none */
    int want_out;       /* something was queued: the epoll interest is looked at again */
    int out_registered; /* EPOLLOUT is in the epoll interest */
    int connected, enrolled, refused;
    int away;           /* left (churn) or cut: reconnects at back_at_ms */
    int connecting;     /* handed to a connector thread: the loop leaves it alone */
    int connect_rc;     /* the connector's result, read by the loop when it is back */
    int first_connect;  /* its first connect (with the session's properties) */
    int ever_connected; /* a connect succeeded once: later ones are reconnects */
    uint64_t seq;       /* the last sequence number signed */
    char *token;        /* the join token until the welcome, then NULL */
    int64_t next_beat_ms, next_resend_ms, back_at_ms, next_misc_ms;
    timer hello; /* the next hello until welcomed, backing off as a site's */
    msg_window hub_window;
    vresult unacked[SWARM_MAX_UNACKED];
    int n_unacked;
    int session;     /* the ACN session its power follows */
    int was_lost_ok; /* churned: a "lost" from the hub is expected */
    int beats_since_full;
    double last_envelope, last_rank;
    uint8_t beat_key[MSG_MAC_KEY_BYTES]; /* its heartbeat key, sent in its hello (wire/msg.h) */
    char beat_key_id[MSG_MAC_KEY_ID_BYTES];
    int beat_mac; /* a welcome named the key: heartbeats go with a MAC */
} vsite;

typedef struct swarm_opts {
    const char *hub_dir, *prefix, *cls, *power_dir;
    int broker_port; /* 0: the hub's (cli.conf); else another broker bridged to it */
    int sites, first, heartbeat_ms, duration_s, connect_per_s, report_ms;
    double jobs_per_s, churn_per_min, cut_per_min;
    int forge;      /* send one heartbeat signed by site 0 for site 1 (must be refused) */
    int full_beats; /* every heartbeat in full (the form before heartbeats carried changes) */
    int beat_sig;   /* every heartbeat signed (the form before heartbeats carried a MAC) */
} swarm_opts;

typedef struct counters {
    uint64_t connects, connacks, disconnects, enrolled, refused, hellos, beats, offers_jobs,
        refused_jobs, results, acks, dropped, publish_errors, churned, cut, submitted,
        submit_errors, keepalive_drops, rekeys;
} counters;

struct swarm {
    swarm_opts o;
    opclient_hub hub;
    cli *op_cli; /* the hub's admin operator: mints tokens, then submits jobs (its thread) */
    vsite *sites;
    int ep;
    counters n;
    int64_t start_ms;
    /* power: ACN sessions (plug-in and unplug second of the day) and the grid rank by slot */
    int n_sessions;
    int *plug_s, *unplug_s;
    float grid_rank[96];
    const char *power_source;
    /* offer latency: submission times by job id, latencies seen (both under lock) */
    pthread_mutex_t lock;
    int64_t *submitted_id, *submitted_ms;
    int64_t *latency_ms;
    size_t n_latency;
    volatile int stopping;
    volatile int submitter_done; /* the submitting thread returned */
    /* connects block (a TCP handshake with a busy broker): threads do them, the loop never waits */
    pthread_mutex_t cq_lock;
    pthread_cond_t cq_ready;
    vsite **cq_todo, **cq_done;
    int n_todo, n_done;
    /* with a broker on TLS (join bundles): each site's certificate and key, the CA, in a
     * directory of the swarm's own (mkdtemp, removed at exit); "" for plain TCP */
    char tls_dir[64];
};

#define SWARM_CONNECTORS 4

/* swarm_power.c: loads the trace (or notes the synthetic curve); a site's envelope and rank now */
void swarm__load_power(swarm *sw);
void swarm__power_now(const vsite *v, double budget, double idle, double *envelope, double *rank);

/* swarm_report.c: the options (0, or -1 after a message), one JSON report line */
int swarm__parse_args(int argc, char **argv, swarm_opts *o);
void swarm__report(swarm *sw, size_t *from, int final);

#endif
