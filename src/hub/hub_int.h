/*
 * hub_int: what the files of the hub role share (internal to src/hub/).
 *
 * The hub struct and its in-memory views of the fleet (sites, operators,
 * the messages waiting for the commit), and the hub__ functions one concern
 * offers the others. The concerns, one file each:
 *
 *   hub_db.c     the data layer: schema, migrations, every SQL statement
 *                (hub_db_jobs.c, hub_db_claims.c, hub_db_verify.c, hub_db_models.c)
 *   registry.c   sites and operators in memory, message authentication, enrollment
 *   intake.c     the cheap checks before a signature: size by topic, senders' budgets
 *   replay.c     operators' request nonces and their answers kept by request id
 *   heartbeat.c  heartbeats, power views, sites lost, departed and back, leases
 *   jobs.c       job state changes shared by the others (taken back, released, told)
 *   place.c      the placement pass
 *   runtimes.c   learned run times: learned from results, used by placement
 *   results.c    results, checkpoints, jobs a site ran on its own
 *   verifying.c  results from untrusted classes: replicas, quorum, trust
 *   probe.c      claims checked: the capacity probe, its verdicts, quarantine
 *   operator.c   the operator API: a table of commands
 *   routemap.c   a route job's plan as coordinates and routes, for its result view
 *   models.c     the model registry: uploads, versions, resolving a job's model
 *   models_serve.c  artifacts on their way to sites: manifests, chunks, peers
 *   pooling.c    models sites learned: registered from their learn jobs' results
 *   pool_round.c pooling rounds the hub drives: visits in turn, then offers
 *   outgoing.c   offers, acknowledgements, cancels and replies, sent after commit
 *   auditing.c   what the hub writes to its audit log
 *   tls.c        the broker CA in tls/, the hub's and the admin's broker certificates, join
 *                bundles
 *   loop.c       the event loop: one transaction per iteration, timers, commit
 *   beats.c      heartbeats checked on worker threads (workers.c), finished on the loop
 *   main.c       `outpost hub`: options, configuration, start and stop
 *
 * Everything runs on the loop's thread. Work done while handling messages
 * joins the loop's open transaction; messages to others are only queued
 * (hub__queue_reply and the per-site batches) and leave after the commit,
 * or are dropped with a rolled-back transaction. A hub without a bus (unit
 * tests, fuzzing) queues and drops the same way.
 */
#ifndef OUTPOST_HUB_INT_H
#define OUTPOST_HUB_INT_H

#include "base/conf.h"
#include "base/timer.h"
#include "core/artifact.h"
#include "core/audit.h"
#include "core/jobspec.h"
#include "core/policy.h"
#include "core/probe.h"
#include "core/runtime.h"
#include "core/sched.h"
#include "core/verify.h"
#include "hub/hello.h"
#include "hub/hub_db.h"
#include "io/auditlog.h"
#include "io/bus.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"
#include "wire/token.h"

#include <cJSON.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define HUB_MAX_OPERATORS 64
#define HUB_PLACE_BATCH 512     /* queued jobs decided per placement pass */
#define HUB_STORM_MAX_MS 300000 /* longest reconnect storm after a broker outage (heartbeat.c) */
#define HUB_BUSY_HOLD_MS 1000   /* a site that refused work as busy is offered none for this long */
#define HUB_HELLO_SLOTS 4096    /* beats.c: counters of unknown sites' hellos in the workers */
#define HUB_WELCOME_RTT_MS 2000 /* registry.c: a hello repeated this soon is not welcomed again */
#define HUB_OFFER_BATCH_BYTES (1024 * 1024) /* one iteration's offers to one site */
#define HUB_RUNTIMES_CAPACITY 4096          /* learned run time keys kept (runtimes.c) */
#define HUB_LOSSES_LOGGED 10 /* sites lost in one fleet check logged each; the rest in one line */
/* a hello or heartbeat's payload bound plus room for its topic and signature properties */
#define HUB_BEAT_MAX_PACKET (PROTO_SMALL_BYTES + 4096)

/*
 * A site's claimed cores checked against what it delivers (probe.c): the
 * challenge in flight, and the last verdict (stored in site_claims).
 */
typedef struct hub_probe {
    uint64_t id; /* the challenge in flight, 0 when none */
    uint8_t seed[PROBE_SEED_BYTES];
    int bits;              /* its difficulty */
    int claimed;           /* the cores the site claimed when it went out */
    int free_claimed;      /* of them, the ones not busy with its jobs: what it must show */
    int lanes;             /* the threads asked for: free_claimed, at most PROBE_MAX_LANES */
    int64_t sent_mono;     /* when it was queued: the hub's clock times the answer */
    uint64_t sent_commit;  /* h->commits then: a rollback of that batch forgets it */
    double measured;       /* effective cores at the last verdict, -1 never probed */
    int counted;           /* cores placement counts on after an over-claim, 0 no cap */
    int failures;          /* failed probes in a row */
    int claimed_at_check;  /* the claim the last verdict judged */
    int64_t checked_at_ms; /* wall clock of the last verdict, 0 never */
    char verdict[160];     /* "ok: ...", "over-claims: ...", "" never */
} hub_probe;

/* A site as the hub knows it: registry (durable) plus live view (memory). */
typedef struct hub_site {
    char id[64];
    char owner[64]; /* who owns it (its join token's "own"; its own id unless told) */
    uint8_t pk[32];
    unsigned class_bit;
    int trust;
    msg_window window;      /* its events and results */
    msg_window beat_window; /* its hellos and heartbeats, which come on another connection */
    uint64_t persisted_seq; /* the higher top of the two, as last stored */
    msg_bucket budget;      /* intake.c: verification spent on forgeries under this name */
    int alive;
    int departed; /* said goodbye: not alive, not lost; its leases govern its jobs */
    int heard;    /* heartbeat received since this hub started */
    int64_t last_heartbeat_mono;
    int64_t last_heartbeat_wall;
    int64_t welcomed_mono; /* registry.c: when it was last sent a welcome (0: never) */
    /* beatkey.c: the key its heartbeats' MACs are under (msg.h), from its sealed hello */
    uint8_t beat_key[MSG_MAC_KEY_BYTES];
    int has_beat_key;
    int64_t rekey_mono; /* when it was last asked for its key again (0: never) */
    int cores;
    int64_t memory_mb;
    double power_budget_watts;
    double watts_per_core;
    double idle_watts;
    int reserved_cores; /* cores of jobs placed or running here */
    int64_t reserved_memory_mb;
    int reserved_jobs;
    int reported_running;
    int store_failing;       /* its last heartbeat said it cannot store (a full disk) */
    char claims_capped[160]; /* what of its claims the hub capped to its class's limits, or "" */
    token_limits limits;     /* from its join token: what it may claim at most (0: no limit) */
    char quarantined[160];   /* why no work is placed here until an operator clears it, or "" */
    char held[200];          /* hub__site_held's text, valid until its next call */
    int64_t busy_until_mono; /* it refused work as busy: none offered before this, or 0 */
    hub_probe probe;
    /* power as the site reports it in each heartbeat, memory only */
    int has_forecast;
    float forecast_watts[SCHED_HORIZONS]; /* least forecast envelope over each horizon */
    int64_t stay_until_ms;
    double grid_rank;
    int region;
    uint64_t attempts_placed, attempts_lost; /* the failure rate the scheduler sees */
    char protections_off[128];
    char broker[128]; /* the broker it said it is on (host:port), memory only; "" unknown */
    int link;         /* the hub's link it was last heard on: what is sent to it goes there */
    cJSON *messages;  /* the site's own message counters, from its heartbeat */
    uint64_t witnessed_size; /* size of the site's last signed audit head logged here */
    verify_trust vt;         /* verifying.c: its validated results and mismatches */
    /* models.c: the artifacts it holds whole (from its heartbeat), its transfer counters,
     * and the peer grants it was given lately (to spread peers' load) */
    uint8_t (*holds)[32];
    int n_holds;
    cJSON *artifacts;
    double peer_load;
    int64_t peer_load_mono;
    cJSON *offers; /* batched for this iteration, sent after commit */
    /* predict.c: escalated questions answered in the current minute (a bound per site) */
    int64_t predict_minute;
    int predict_count;
    size_t offers_bytes;
    cJSON *acks;
    cJSON *cancels;
    int queued; /* outgoing.c: something is batched for it, and it is in h->queued_sites */
} hub_site;

typedef struct hub_operator {
    char id[64];
    uint8_t pk[32];
    msg_nonces nonces;          /* request nonces seen within the clock skew (replay.c) */
    int64_t persisted_floor_ms; /* nonces.floor_ms as last stored */
    msg_bucket budget;          /* intake.c */
    cJSON *done;                /* final states for submit --wait, sent after commit */
    int link;                   /* the link its last request came in on: its answers go there */
} hub_operator;

typedef struct hub_reply {
    char topic[PROTO_TOPIC_MAX];
    cJSON *body;
    const char *type;
    uint8_t to_pk[32]; /* sealed to this key: the site or operator it answers */
    int link;          /* sent on the link the message it answers came in on */
    struct hub_reply *next;
} hub_reply;

/* The HTTP API's state (api_int.h); NULL in unit tests and fuzzing. */
typedef struct hub_api hub_api;

/* Work counted for the stopping line and `outpost stats`. */
typedef struct hub_counts {
    uint64_t jobs_submitted, results_applied, results_duplicate, results_stale;
} hub_counts;

/*
 * A link: the hub's two sessions on one broker (main: publishes everything,
 * reads events, results and operator requests; beats: hellos and
 * heartbeats). broker_mode = failover: one link, on the first broker of the
 * list that answers (a bridged pair, a cluster). broker_mode = all: one link
 * per broker of the list, all at once (brokers not bridged, the sites spread
 * over them by their own lists); each site is answered on the link it was
 * last heard on.
 */
typedef struct hub_link {
    struct hub *h;
    int index;
    bus *main, *beats;
    uint64_t moves_seen; /* the main session's moves handled (outgoing.c) */
    /* heartbeat.c: since when its beats session is down (0: up), and when it last came back:
     * a site heard last on it is not lost while it is down, silence counts from its return */
    int64_t deaf_since_mono, heard_again_mono;
    int64_t returning_mono; /* when a site silent since the link returned was last heard */
    int after_outage;       /* heard_again_mono ended an outage (not the first connection) */
    int heard_once;         /* the beats session was subscribed at least once */
    int64_t outage_mono;    /* when its last outage began (kept after it ended); 0 none */
    /* heartbeat.c: how far behind the hub finishes this link's heartbeats (the least age
     * among those of the last second), which silence of its sites must exceed on top of
     * site_lost_after_ms: one broker's backlog does not hide another's sites going silent */
    int64_t beat_lag_ms, lag_window_start_ms, lag_window_min_ms;
} hub_link;

typedef struct hub {
    ident identity;
    char data_dir[PATH_MAX];
    hubdb *db;
    bus *bus; /* links[0].main; NULL in tests and fuzzing: outgoing messages are queued, then
               * dropped */
    /*
     * Sites' hellos and heartbeats on a connection of their own, on which the
     * broker sends no packet over HUB_BEAT_MAX_PACKET (MQTT 5 Maximum Packet
     * Size): junk on those topics is discarded by the broker, unread here.
     */
    bus *beat_bus; /* links[0].beats */
    hub_link links[BUS_MAX_BROKERS];
    int n_links;           /* 0 in tests and fuzzing */
    int broker_all;        /* broker_mode = all: a link to every broker of the list */
    uint64_t out_seq;      /* the sequence numbers of every link's publishes (bus seq_shared) */
    int msg_link;          /* the link the message being handled came in on */
    int ready_notified;    /* READY=1 sent to the service manager (sdnotify) */
    char broker_host[256]; /* one broker, or a list: host[:port], host[:port] (io/bus.h) */
    int64_t broker_port;
    int64_t broker_return_ms; /* on a broker other than the first: how often to try it again */
    int broker_tls; /* broker_tls = on: TLS with certificates from the CA in <data-dir>/tls */
    char tls_ca[PATH_MAX], tls_cert[PATH_MAX], tls_key[PATH_MAX]; /* set by hub__tls_setup */
    int64_t site_lost_after_ms;
    int64_t lease_ms;
    int64_t offline_lease_ms; /* how long a site may run a job without word from the hub */
    int64_t fleet_index_from; /* place through sched_fleet from this many sites (else scan) */
    int64_t clock_skew_ms;
    int64_t max_queued_jobs;
    int64_t token_ttl_s;
    int64_t audit_head_ms;
    hub_site *sites;
    size_t n_sites, cap_sites;
    int32_t *site_slots; /* registry.c: sites by id (indices into sites, -1 empty) */
    size_t site_slots_cap;
    hub_operator operators[HUB_MAX_OPERATORS];
    int n_operators;
    msg_stats msg;
    hub_reply *replies, *replies_tail;
    /* outgoing.c: the sites with a batch queued (indices into sites, each once: at most
     * n_sites), so that a flush visits those only; queued_all when the list could not grow
     * (the flush then visits every site) */
    size_t *queued_sites;
    size_t n_queued, cap_queued;
    int queued_all;
    uint64_t sites_flushed;    /* sites a flush visited (or dropped the batches of), in all */
    msg_bucket unknown_budget; /* intake.c: every sender the hub does not know, together */
    msg_bucket *charged;       /* the budget the message in hand was charged to, and how much */
    double charged_cost, charged_burst;
    int64_t intake_logged_ms; /* intake.c logs a line a second at most */
    uint64_t intake_unlogged;
    int placement_dirty;
    int store_failed;
    timer check_timer, place_timer, seq_flush_timer, head_timer;
    hub_counts counted; /* committed work only: tx_counted is added after each commit */
    hub_counts tx_counted;
    uint64_t offers_sent, bound_hits;
    /* place.c: placement passes run and their time (the swarm's table reads them in stats) */
    uint64_t place_passes;
    uint64_t place_skipped; /* passes with nothing queued: no view refresh (place.c) */
    int64_t place_us, place_max_us, place_last_us;
    /* place.c: the fleet view and its index, kept from pass to pass (rebuilt only when the
     * sites were added or moved): each pass re-files only the sites whose entry changed */
    sched_site *view;
    size_t view_n;
    const hub_site *view_base;
    sched_fleet *fleet;
    uint64_t view_rebuilds, view_refiled;
    auditlog *audit; /* tamper-evident record of every decision, in hub.db */
    policy *policy;  /* <data-dir>/policy, or NULL: no rules beyond the built-in filters */
    char *policy_text;
    uint64_t head_size; /* size of the last signed tree head */
    audit_sth head;     /* the last signed tree head, sent to sites with acknowledgements */
    uint64_t head_size_committed; /* head_size and head as of the last commit */
    audit_sth head_committed;
    struct {
        int64_t cores, memory_mb, watts;
    } claim_limit[3]; /* per class (pod, car, dc): what a site may claim */
    /* probe.c: capacity probes, from the configuration; on and set up by hub__probe_setup */
    struct {
        int on;
        int64_t duration_ms, interval_ms, timeout_ms, tolerance;
        double core_rate;     /* the hub's own single-core hash rate, measured at start */
        uint64_t next_id;     /* challenge ids: random start, then counting */
        probe_hasher *hasher; /* checks answers */
    } probing;
    fail_streak store_streak; /* failed commits in a row, for the log */
    verify_params verify;     /* how results from untrusted classes are checked (policy) */
    uint64_t commits;         /* loop transactions committed, and their time in fsync'd COMMIT */
    int64_t commit_us;
    /* models.c: uploads in progress, who fetches from the hub, what was served; the
     * configuration: peers on (artifact_peers), how many sites fetch one artifact from the
     * hub itself at once while no peer holds it (artifact_hub_streams) */
    struct hub_models *models;
    struct hub_serving *serving; /* models_serve.c */
    int artifact_peers;
    int64_t artifact_hub_streams;
    int64_t beat_workers; /* worker threads for heartbeats; 0: the cores less one (beats.c) */
    runtime *runtimes;    /* runtimes.c: learned run times, as stored in hub.db; NULL: none */
    /* predict.c: the program run in a child for escalated questions (predict_program, by
     * default this binary), and the sandbox's protections for it (probed on first use) */
    char predict_program[PATH_MAX];
    int predict_probed, predict_seccomp, predict_netns;
    struct hub_predicting *predicting; /* predict.c: questions whose child still runs */
    int n_predicting;
    hub_api *api; /* api*.c: the HTTP API, live events, metrics, the power history */
    /* the database: a SQLite file (default <data-dir>/hub.db) or a PostgreSQL URL (`store`) */
    char store_where[PATH_MAX];
    struct hub_failover *failover; /* lease.c: failover = on, the lease and its holder */
    /* loop.c: heartbeats authenticated on worker threads (workers.h) while the loop runs;
     * NULL in tests and fuzzing (checked inline), and those checked inline for a full lane */
    struct hub_workers *workers;
    uint64_t beats_offloaded, beats_inline;
    /* beats.c: unknown sites' hellos in the workers, counted by a hash of the site id; a
     * second hello for one of them is dropped, not checked again (it repeats every 2 s) */
    uint16_t hello_inflight[HUB_HELLO_SLOTS];
    uint64_t hellos_offloaded, hellos_repeated;
    uint64_t losses_deferred;
    /* beatkey.c: heartbeats taken on a MAC, sites asked for their key again */
    uint64_t beats_mac, rekeys;
} hub;

/* ---------- lease.c: failover (docs/failover.md) ---------- */

/* store, store_url, failover, failover_lease_ms, hub_instance. OP_EINVAL, OP_ENOMEM. */
int hub__failover_configure(hub *h, conf *c, char *err, size_t err_len);
void hub__failover_free(hub *h);
int hub__failover_on(const hub *h);
/* With failover on: opens the database at where, waits to hold the lease. OP_ETIMEOUT (stopped). */
int hub__failover_open(hub *h, const char *where);
/* The hub-takeover audit entry, committed. OP_OK without failover. */
int hub__failover_record(hub *h);
/* Each loop iteration, first: -1 when the hub must stop (the lease is lost or stale). */
int hub__failover_tick(hub *h);
/* 1 when the hub stopped for its lease: it must not commit or publish again. */
int hub__failover_stopped(const hub *h);
/* At a clean stop, after the last commit: the lease expires now. */
void hub__failover_release(hub *h);

/* ---------- main.c: life of a hub ---------- */

/* A hub with the configuration's defaults and no state opened yet; NULL when out of memory. */
hub *hub__new(void);
/* Closes whatever is open and frees h (NULL is fine). */
void hub__free(hub *h);
/*
 * Opens the store at path (hub.db, or ":memory:"), its audit log, and loads
 * the registry from it. OP_ESTORE, OP_ENOMEM.
 */
int hub__open_store(hub *h, const char *path, int synchronous_full);

/* ---------- loop.c ---------- */

/* Records a store result: any failure rolls back the loop's transaction. Returns rc. */
int hub__check(hub *h, int rc);
/*
 * Commits the loop's transaction, then adds its counts to the committed
 * ones; on failure rolls it back and drops the messages queued with it.
 * OP_OK when nothing was open. OP_ESTORE.
 */
int hub__commit(hub *h);
/* The bus callback: one received message into the loop's transaction (ctx: the hub). */
void hub__on_message(void *ctx, const char *topic, const void *payload, size_t len, const char *kid,
                     const char *sig);
/* The same, from a link (ctx: a hub_link), which answers go back on. */
void hub__on_link_message(void *ctx, const char *topic, const void *payload, size_t len,
                          const char *kid, const char *sig);
/* Fills fds with every link's two sessions' sockets (POLLIN), up to max; their count. */
struct pollfd;
int hub__link_fds(hub *h, struct pollfd *fds, int max);
/* Runs the loop until a stop is asked or the bus fails. */
void hub__run(hub *h);
/*
 * The loop's worker pool for heartbeats: lanes threads (0: as many as the
 * machine has cores less one, 1 to 8). Without it (tests, or when it cannot
 * start: logged) heartbeats are checked on the loop. OP_OK, or the pool's error.
 */
int hub__workers_start(hub *h, int lanes);
/*
 * A heartbeat or hello (site_id's state or hello topic; leaf says which)
 * handed to the workers: 1 when taken (the pool owns a copy, or it repeats
 * an unknown site's hello still in the pool: dropped, counted), 0 when the
 * caller must check it inline (no pool, a heartbeat from an unknown site,
 * kid not the topic's id, or a full lane: counted).
 */
int hub__beat_offload(hub *h, const char *site_id, const char *leaf, const char *topic,
                      const void *payload, size_t len, const char *kid, const char *sig);
/* Finishes every heartbeat and hello the workers checked (on the loop's thread). */
void hub__finish_beats(hub *h);
/* Stops the pool; heartbeats still in it are dropped (the next ones come soon). */
void hub__workers_stop(hub *h);

/* ---------- registry.c ---------- */

/* The site with this id, or NULL; a hash lookup (sites are never removed while running). */
hub_site *hub__find_site(hub *h, const char *id);
/*
 * A new site in memory (zeroed, trust 50); NULL when out of memory. It may
 * move h->sites: pointers to other sites are stale after it.
 */
hub_site *hub__add_site(hub *h, const char *id);
/* Frees the lookup table (hub__free). */
void hub__registry_free(hub *h);
/* FNV-1a of a site or operator id (the table's, and the workers' lanes for unknown sites). */
uint32_t hub__id_hash(const char *id);
/*
 * An unknown site's hello that passed hub_hello_open (here or on a worker):
 * its token checked against the registry, then the site enrolled and
 * welcomed, or refused (the refusal sealed to the key it proved).
 */
void hub__enroll_checked(hub *h, const char *site_id, hub_hello *hello);
/* A hello hub_hello_open refused (rc): its counter into the hub's, and the log line. */
void hub__hello_refused(hub *h, int rc, const hub_hello *hello);
/* A known site's authenticated hello (registry.c). */
void hub__handle_hello(hub *h, hub_site *s, const cJSON *body);
hub_operator *hub__find_operator(hub *h, const char *id);

/* ---- tls.c ---- */
/*
 * With broker_tls: the CA in <data-dir>/tls (made at first start), the hub's
 * own broker certificate (tls/hub.crt, tls/hub.key; CN = hub id) and the
 * local admin operator's (admin/broker.crt, broker.key; CN = its operator
 * id), each issued when missing or within 30 days of expiry. OP_OK, or a pki
 * error (logged).
 */
int hub__tls_setup(hub *h);
/* The paths the hub's bus connections use (with broker_tls), or NULLs. */
void hub__tls_files(const hub *h, const char **ca, const char **cert, const char **key);
/*
 * What `token create` hands the operator for site sid: with broker_tls a
 * join bundle (token_text, the CA, a new client certificate and key for
 * sid), else token_text as it is. *out malloc'd (the caller wipes and frees
 * it). OP_ENOMEM, OP_EIO, OP_ENOTFOUND (no CA), OP_ETOOBIG.
 */
int hub__join_text(hub *h, const char *sid, const char *token_text, char **out);
/* Sites and their reservations from the store; every site presumed alive for a loss timeout. */
/*
 * The sites' reservations recomputed from the jobs table: after a rolled-back
 * batch, placements it made in memory are forgotten with it. OP_ESTORE.
 */
int hub__reload_reservations(hub *h);
int hub__load_sites(hub *h);
/* Each site's token limits and last probe verdict from the store (in hub__load_sites). */
int hub__load_claims(hub *h);
/* <data-dir>/operators: the operator keys allowed to use the API. */
int hub__load_operators(hub *h);
/* msg_lookup_fn over operators (ctx: the hub). */
int hub__lookup_operator(void *ctx, const char *kid, const uint8_t **pk, msg_window **window);
/*
 * The checks of a signed message from topic_id: the sender speaks under its
 * own id only, then msg_open's. Returns the body (caller frees) or NULL after
 * counting and logging the drop.
 */
cJSON *hub__authenticate(hub *h, const char *topic_id, const char *topic, const void *payload,
                         size_t len, const char *kid, const char *sig, msg_lookup_fn lookup,
                         msg_header *hdr);

/* ---------- beatkey.c: heartbeats authenticated by a MAC (wire/msg.h) ---------- */

#define HUB_REKEY_EVERY_MS 10000 /* a site is asked for its heartbeat key at most this often */

/* The key a site's hello carries ("beat_key"): kept, and stored sealed, when new. 1 if new. */
int hub__beat_key_take(hub *h, hub_site *s, const cJSON *hello);
/* A stored key (its registry row) into s; one that does not open is dropped, logged. */
void hub__beat_key_load(hub *h, hub_site *s, const char *sealed_hex);
/* Names the key held for s in its welcome ("beat_key_id"): the site's cue to use it. */
void hub__beat_key_welcome(const hub_site *s, cJSON *welcome);
/*
 * A heartbeat with a MAC from s on topic: its body (the caller frees) or
 * NULL, counted and logged. The replay window is the site's heartbeat window.
 */
cJSON *hub__authenticate_mac(hub *h, hub_site *s, const char *topic, const void *payload,
                             size_t len, const char *kid, const char *mac, msg_header *hdr);
/* A MAC'd heartbeat refused (rc, reason): a MAC that failed asks the site for its key again. */
void hub__beat_mac_refused(hub *h, hub_site *s, int rc, const char *reason);

/* Cores, memory and power the site claims (hello, heartbeat), stored when they change. */
void hub__update_capacity(hub *h, hub_site *s, const cJSON *body);
/* A message on a site's topics, dispatched by its leaf and type. */
void hub__site_message(hub *h, const char *site_id, const char *leaf, const char *topic,
                       const void *payload, size_t len, const char *kid, const char *sig);

/* ---------- intake.c ---------- */

/*
 * The checks a message passes before anything costly, in order: its size
 * against its topic's bound (proto_max_bytes), then its sender's budget
 * (the site's or operator's named by kid, or one budget shared by every
 * sender the hub does not know), charged by size. OP_OK, or OP_ETOOBIG /
 * OP_EFULL after counting (oversize, throttled) and logging the drop.
 */
int hub__intake(hub *h, const char *realm, const char *id, const char *leaf, const char *topic,
                size_t len, const char *kid);
/* The message in hand proved authentic: its charge goes back to its sender's budget. */
void hub__intake_refund(hub *h);
/* Gives cost back to a known site's budget (a heartbeat proven authentic off the loop). */
void hub__intake_give(hub_site *s, double cost);
/* The burst of the budget every unknown sender shares (a refund is capped at it). */
double hub__intake_unknown_burst(void);

/* ---------- replay.c ---------- */

/*
 * An authenticated operator request's nonce (its seq) against the
 * operator's seen-set, stored with the request's transaction. OP_OK, or
 * OP_EREPLAY after counting and logging the drop, OP_ENOMEM.
 */
int hub__op_fresh(hub *h, hub_operator *op, const msg_header *hdr);
/* Every operator's seen-set and floor from the store (after hub__load_operators). */
int hub__replay_load(hub *h);
/* Periodic: forgets nonces the clock skew already refuses (raising floors), old answers. */
void hub__replay_prune(hub *h);
/*
 * A command that must run once per request id: the answer given before to
 * this operator's request rid with the same content (caller frees), or NULL.
 * digest receives the content's SHA-256 (hex) for hub__answer_keep.
 */
cJSON *hub__answer_recall(hub *h, const char *op_id, const char *rid, const cJSON *req,
                          char digest[65]);
/* Keeps the answer to rid in the loop's transaction, for hub__answer_recall. */
void hub__answer_keep(hub *h, const char *op_id, const char *rid, const char digest[65],
                      const cJSON *resp);

/* ---------- heartbeat.c ---------- */

/* A heartbeat: alive, capacity, power, audit head, leases of the jobs it runs. */
/* A site was heard (a heartbeat, a hello): its silence ends; counts a reconnect storm. */
void hub__site_heard(hub *h, hub_site *s);
void hub__handle_state(hub *h, hub_site *s, const cJSON *body);
/* A clean goodbye: the site left (not lost); its jobs stay under their leases. */
void hub__site_left(hub *h, hub_site *s, const char *reason);
/* Marks a site departed (said goodbye) or back, in memory and in the store. */
void hub__set_departed(hub *h, hub_site *s, int departed);
/*
 * Takes back every placed or running job of the site (why: the reason each
 * job records); exclude keeps them from going back there.
 */
void hub__take_back(hub *h, const char *site_id, const char *why, int exclude);
/*
 * Sites silent for too long are lost (their jobs taken back; each on the
 * audit log, the first HUB_LOSSES_LOGGED of a check on the hub's log and the
 * rest in one line); expired leases taken back. Too long: site_lost_after_ms
 * plus the hub's own lag.
 */
void hub__check_fleet(hub *h);
/*
 * A heartbeat sent at ts_ms (the site's clock) came in on link h->msg_link
 * and was just finished: its age feeds that link's lag (the least age of a
 * second's heartbeats, so that one site's clock cannot make it).
 */
void hub__note_beat_age(hub *h, int64_t ts_ms);
/* The largest of the links' lags, for stats. */
int64_t hub__beat_lag_ms(const hub *h);
/* Persists the sites' replay windows that moved, and the hub's own sequence number. */
void hub__flush_seqs(hub *h);
/* The scheduler's view of the fleet (optimistic: as if empty, alive, with no forecast). */
void hub__fill_view(hub *h, sched_site *view, int optimistic);
/* The same for site i alone. */
void hub__fill_site(hub *h, size_t i, sched_site *v, int optimistic);
/* Frees the placement passes' kept fleet view (place.c). */
void hub__place_free(hub *h);
/* "alive", "presumed" (not heard since this hub started), "lost" or "left". */
const char *hub__site_status(const hub_site *s);
/*
 * Adds "fleet" to stats: the sites by status, and the placement passes'
 * count and times (what a load test reads without listing every site).
 */
void hub__fleet_stats(const hub *h, cJSON *stats);

/* ---------- jobs.c ---------- */

/* Gives back a job's reservation on the site (it ended or left). */
void hub__release(hub *h, const char *site_id, int cores, int64_t memory_mb);
/* Tells the operator who asked (submit --wait) that the job reached state (a final one). */
void hub__notify_terminal(hub *h, int64_t job_id, int state);
/*
 * Takes a placed or running job back from its site: queued again, or failed
 * when its attempts are used up. exclude keeps it away from that site (it
 * refused); lost counts the attempt against the site's reliability.
 */
void hub__requeue(hub *h, int64_t job_id, const char *why, int exclude, int lost);
/* started / refused / busy events of a site's jobs. */
void hub__handle_events(hub *h, hub_site *s, const cJSON *body);

/* ---------- place.c ---------- */

/*
 * sched_allow_fn over the hub's policy and the verification rules (ctx: a
 * hub__policy_ctx): the policy file, then the classes the job may not use
 * because its result could not be checked there and the owners that
 * already hold one of its replicas. (Quarantined sites are held back before
 * this: probe.c, hub__site_held.)
 */
typedef struct hub__policy_ctx {
    hub *h;
    const jobspec *spec;
    int64_t now_ms;
    unsigned unverifiable;     /* classes where its result could not be checked */
    const char *const *owners; /* owners holding a replica, NULL-terminated, or NULL */
} hub__policy_ctx;
int hub__policy_allows(void *ctx, const sched_site *site, char *why, size_t why_len);
/* Decides up to HUB_PLACE_BATCH queued jobs: placed (offer queued), failed, or still waiting. */
void hub__place_pass(hub *h);

/* ---------- runtimes.c ---------- */

/*
 * The learned run times from hub.db (hub__open_store): a table of
 * HUB_RUNTIMES_CAPACITY keys; rows it refuses are skipped and logged.
 * OP_OK (without a table when out of memory: nothing is learned), OP_ESTORE.
 */
int hub__runtimes_load(hub *h);
void hub__runtimes_free(hub *h);
/*
 * After a rolled-back batch: what it learned is forgotten with it (read
 * again from hub.db; if that fails too, the table in memory is kept).
 */
void hub__runtimes_rollback(hub *h);
/*
 * A job's attempt succeeded on site_id (hub__finish): its run time, on the
 * hub's clock from the attempt's placement to now, is learned
 * with its kind, program, the site and its class and the declared
 * expected_s. Not learned: jobs a site ran on its own and attempts that
 * resumed from a checkpoint (the hub saw only part of the run). OP_ESTORE.
 */
int hub__runtimes_learn(hub *h, int64_t job_id, int64_t attempt, const char *site_id);
/* One observation learned and its rows stored (hub__runtimes_learn; tests). OP_ESTORE. */
int hub__runtimes_observe(hub *h, const runtime_obs *obs);

/* What placement knows of one queued job's run time (hub__runtimes_plan fills it). */
typedef struct hub__runtime_plan {
    const runtime *rt;
    char kind[32];
    char program[RUNTIME_LABEL_MAX];
    int64_t declared_ms;
    runtime_stats ratio; /* actual / declared, when known well enough */
    int have_ratio;
    uint32_t program_runs;
    runtime_estimate overall;     /* the program's, on any site */
    runtime_estimate by_class[3]; /* on a pod, a car, a data center (CLASS_* bit order) */
    int learned;                  /* some class plans with a learned run time */
    unsigned class_mask;          /* the classes the job may run on */
} hub__runtime_plan;

/*
 * Sets job's run time from what was learned (q: the queued row): where the
 * job declared none or a poor one, job->duration_ms becomes the shortest
 * credible run time over its classes (the learned median, or the declared
 * value when shorter: a prediction alone never makes a declared job's
 * deadline impossible) and job->duration_on plans each site with its own
 * (site, then class, then program; the 80th percentile). plan must outlive
 * the placement. Unchanged when nothing was learned.
 */
void hub__runtimes_plan(hub *h, const hubdb_queued *q, sched_job *job, hub__runtime_plan *plan);
/*
 * Appends what the decision planned with to *explanation (malloc'd; kept
 * when it cannot grow): on site (the winner) or, with NULL, on the one
 * class the job may use, else for the program anywhere. Nothing when the
 * job planned with its declared value.
 */
void hub__runtimes_explain(const hub__runtime_plan *plan, const sched_site *site,
                           char **explanation);

/* ---------- results.c ---------- */

/*
 * One result of a site (local: a job it ran on its own, which reserved
 * nothing here and is acknowledged by its local id). Applied once, to the
 * current attempt on that site; duplicates and stale attempts recorded, not
 * applied. OP_OK also when dropped (counted); OP_ESTORE when the store failed.
 */
int hub__apply_result(hub *h, hub_site *s, const cJSON *item, int local);
/* A job a site ran on its own, with its spec and result: recorded once, result applied. */
int hub__apply_local(hub *h, hub_site *s, const cJSON *item);
/* A result message: its "results" then its "locals". */
void hub__handle_results(hub *h, hub_site *s, const cJSON *body);
/* outgoing.c: which broker each of the hub's two connections is on, and its moves, for stats */
void hub__broker_stats(hub *h, cJSON *data);
/*
 * Offers again the attempts placed on s and not started (up to one batch):
 * after a site's hello, which follows every reconnect and move of broker.
 */
void hub__reoffer_placed(hub *h, hub_site *s);
/* Adds the job's kept checkpoint to the inputs of the spec offered to a site. */
void hub__attach_checkpoint(hub *h, int64_t job_id, cJSON *spec);
/* A final state from the result of attempt on site_id: the row, that result applied, told. */
int hub__finish(hub *h, int64_t job_id, int64_t attempt, const char *site_id, int state,
                const char *reason);
/* The site could not run it (its error in item): tried elsewhere, from its checkpoint if any. */
int hub__hand_back(hub *h, hub_site *s, const cJSON *item, int64_t job_id, int64_t attempt,
                   const char *error);

/* ---------- verifying.c ---------- */

/* The verification rules in force: the policy's, over the defaults. */
void hub__verify_configure(hub *h);
/* Every site's trust record from the store (after hub__load_sites). OP_ESTORE. */
int hub__verify_load(hub *h);
/* 1 if a site of this class settles a job alone (the operator's own: pods, DCs by default). */
int hub__verify_trusted_class(const hub *h, unsigned class_bit);
/* CLASS_* bits whose results need checking, for the job's kind and determinism. */
unsigned hub__verify_unverifiable(const hub *h, int kind, int deterministic);
/* The placement filter of a site for the job in ctx (hub__policy_allows calls it first). */
int hub__verify_allows(const hub__policy_ctx *pc, const hub_site *s, char *why, size_t why_len);
/*
 * The job was placed on s: unless replicas of it are already recorded, how
 * many results it needs (core/verify's plan) is stored, and for an
 * untrusted site the plan is a step of its history. Site-private work is
 * not checked (its data may not leave its origin for a replica); that too
 * is a step of its history. OP_ESTORE.
 */
int hub__verify_placed(hub *h, int64_t job_id, int64_t attempt, hub_site *s, int kind,
                       int deterministic, int in_verification, int site_private);
/*
 * A fresh result (r_*) of a job in verification (job->verify_wanted >= 2),
 * from s, for an attempt placed there; live: it is the current attempt.
 * Decides with every recorded replica: accepted (the job ends with the
 * winner's result), another replica wanted, or given up; trust updated.
 */
int hub__verify_result(hub *h, hub_site *s, const cJSON *item, int64_t attempt,
                       const hubdb_job *job, int64_t job_id, int live, const char *error);

/*
 * An operator cleared s's quarantine: its trust record and its owner's are
 * no longer quarantined (their mismatches still count: trust comes back
 * slowly). OP_ESTORE.
 */
int hub__verify_clear(hub *h, hub_site *s);

/* ---------- probe.c ---------- */

/*
 * With probe = on: the hasher and the hub's own single-core hash rate
 * (measured now, about 0.2 s, unless probing.core_rate is set already).
 * OP_OK, OP_ENOMEM.
 */
int hub__probe_setup(hub *h);
void hub__probe_free(hub *h);
/*
 * Periodic: challenges that went unanswered past probe_timeout_ms (the site
 * quarantined), and new challenges to sites whose claims are due a check
 * (never checked, checked longer than probe_interval_ms ago, or claiming
 * more cores than when checked).
 */
void hub__probe_fleet(hub *h);
/* A site's answer to its challenge (an event message of type "probe"): judged. */
void hub__probe_answer(hub *h, hub_site *s, const cJSON *body);
/* After a rolled-back batch: challenges queued in it are forgotten, verdicts re-read. */
void hub__probe_rollback(hub *h);
/* The cores placement counts on: the claim, or less after an over-claim. */
int hub__site_cores(const hub_site *s);
/* Why no work is placed on the site now (quarantined, being probed), or NULL. */
const char *hub__site_held(const hub *h, hub_site *s);
/*
 * No work for the site until an operator clears it: the reason kept and
 * stored, logged and audited (site-quarantined), its placed and running
 * jobs taken back. A site already quarantined keeps its first reason.
 */
void hub__quarantine(hub *h, hub_site *s, const char *why);
/* An operator lets the site take work again; its claims are checked anew. OP_OK, OP_ESTORE. */
int hub__quarantine_clear(hub *h, hub_site *s);
/* The site's claims view (limits, verdict, measure, quarantine) into o. */
void hub__claims_view(const hub *h, hub_site *s, cJSON *o);

/* ---------- operator.c ---------- */

/* One operator request as a command's handler sees it. */
typedef struct op_call {
    const cJSON *req;
    const char *op_id;
    cJSON *data; /* the answer's "data" */
    char *err;   /* the error message when the handler fails */
    size_t err_len;
    cJSON *audit; /* the body of the command's audit record (taken by the dispatcher) */
} op_call;

/* Runs one authenticated operator request; the response body (caller owns) or NULL. */
cJSON *hub__op_dispatch(hub *h, const cJSON *req, const char *op_id);
/* A message on an operator's request topic: authenticated, run, answered after commit. */
void hub__op_message(hub *h, const char *op_id, const char *topic, const void *payload, size_t len,
                     const char *kid, const char *sig);
/*
 * A job the hub submits itself on an operator's behalf (a pooling round's
 * learn jobs): checked, resolved, admitted and queued as a submit by op_id
 * would be, within the queue's bound. OP_OK with *job_id, or an error with
 * the message in err.
 */
int hub__submit_spec(hub *h, const cJSON *spec_json, const char *op_id, int64_t *job_id, char *err,
                     size_t err_len);

/* ---------- outgoing.c ---------- */

/*
 * A reply on <realm>/<id>/<leaf> of type, sealed to to_pk (the key of the
 * site or operator it goes to), sent after commit (body taken).
 */
void hub__queue_reply(hub *h, const char *realm, const char *id, const char *leaf, cJSON *body,
                      const char *type, const uint8_t to_pk[32]);
/* Appends item to a batch array (created on first use); item taken. */
void hub__add_to_batch(cJSON **batch, cJSON *item);
/*
 * Appends item to one of s's batches (batch: &s->offers, &s->acks or
 * &s->cancels), sent after commit; item taken. Every site batch goes through
 * here: it is how the flush knows which sites to visit.
 */
void hub__site_batch(hub *h, hub_site *s, cJSON **batch, cJSON *item);
/*
 * s has something for the next flush (a batch, or offer bytes counted
 * against this iteration's bound): the flush visits it, sends what it has
 * and resets the count. hub__site_batch calls it.
 */
void hub__site_queued(hub *h, hub_site *s);
/* Asks the site to stop an attempt (sent with the next batch). */
void hub__send_cancel(hub *h, hub_site *s, int64_t job_id, int64_t attempt, const char *why);
/* Publishes what the committed transaction queued. */
void hub__flush_outgoing(hub *h);
/* Drops what was queued for a transaction that did not commit. */
/*
 * After a batch that could not be stored: every operator answered in it is
 * told why instead (nothing of its request was applied), everything else
 * queued is dropped as by hub__discard_outgoing.
 */
void hub__fail_outgoing(hub *h, const char *why);
void hub__discard_outgoing(hub *h);

/* ---------- models.c ---------- */

/* Frees the registry's memory (uploads, and the serving state with hub__serving_free). */
void hub__models_free(hub *h);
/* <data-dir>/models/<sha><suffix> into path (the directory made when make_dir). */
int hub__artifact_path(hub *h, const char *sha, const char *suffix, char *path, size_t len,
                       int make_dir);
/*
 * The operator commands of the registry (operator.c's table): model_upload
 * (a piece of an artifact's bytes, in order), model_put (a new version of a
 * name, audited "model-put"), model_list, model_show, model_rm (audited
 * "model-rm"). OP_OK, or an error with the message in c->err.
 */
int hub__op_model_upload(hub *h, op_call *c);
int hub__op_model_put(hub *h, op_call *c);
int hub__op_model_list(hub *h, op_call *c);
int hub__op_model_show(hub *h, op_call *c);
int hub__op_model_rm(hub *h, op_call *c);
/* The audit entry of a model-put: version, sha256, size, data class, origin, parent, by, sig. */
cJSON *hub__model_put_audit(const artifact_record *r, const char *sig);
/*
 * A submitted job's "model": resolved to a version not removed, whose
 * version, sha256 and size are written into spec_json (and spec); refused
 * when the model's data class does not allow the job (a site-private model
 * for a job that could run elsewhere than its origin, a confidential one
 * for a public job). OP_OK (nothing to do without a model), OP_ENOTFOUND,
 * OP_EPERM, OP_ESTORE, with the message in err.
 */
int hub__models_resolve(hub *h, cJSON *spec_json, jobspec *spec, char *err, size_t err_len);
/* ---------- pooling.c ---------- */
/*
 * A result of a learn job (item, of job_id, from s) that adopted a model:
 * the model registered as the next version of its name, origin s, audited
 * model-put. A result that is not s's learn job of that model changes
 * nothing (logged). OP_OK, OP_ESTORE (the transaction fails).
 */
int hub__pooling_learned(hub *h, hub_site *s, const cJSON *item, int64_t job_id);
/* The job was a learn job of model name whose origin is site_id (pooling.c). */
int hub__is_learn_job_of(hub *h, int64_t job_id, const char *site_id, const char *name);

/*
 * rollback.c: a site that went back to its previous champion (automatic, or
 * the operator's `outpost model rollback`) says so in its learn job's result;
 * the hub records it on the model's lineage (model_rollbacks, audited
 * "model-rollback" on model:NAME). OP_OK (also for a result it ignores, logged),
 * OP_ESTORE.
 */
int hub__rollback_learned(hub *h, hub_site *s, const cJSON *learn, int64_t job_id);
/* `outpost model rollback NAME --site SITE`: a rollback learn job submitted at the site. */
int hub__op_model_rollback(hub *h, op_call *c);
/*
 * predict.c: a question a site escalated (event "predict": features that
 * its policy lets leave, a plan) answered by the larger model: the one the
 * site's policy names, else the newest pool of its owner; evaluated in a
 * child process (io/predictor), never in the hub's. The answer or the
 * refusal goes back as "predicted".
 */
void hub__predict_question(hub *h, hub_site *s, const cJSON *body);
/* Answers the questions whose child has ended (or was killed at its time limit); never blocks. */
void hub__predict_tick(hub *h);
/* Kills the children of questions still being answered. */
void hub__predict_free(hub *h);

/* The newest rollbacks of name into data's "rollbacks" (model show). */
void hub__rollback_view(hub *h, const char *name, cJSON *data);

/* ---------- pool_round.c ---------- */
/*
 * model_pool {name, owner, visits, deadline_s, rounds, own}: a pooling
 * round the hub drives (visits of the owner's sites in turn, then an offer
 * to each), audited pool-start. OP_OK with data.round, or an error in c->err.
 */
int hub__op_model_pool(hub *h, op_call *c);
/* The newest pooling rounds of name, with their jobs, into data ("pooling"). */
void hub__pool_view(hub *h, const char *name, cJSON *data);
/*
 * A learn job's result (pooling.c, after registering): when the job is a
 * round's, what came of it (version: the one registered, 0 none). OP_ESTORE.
 */
int hub__pool_result(hub *h, const cJSON *learn, int64_t job_id, int64_t version);
/* A job reached a final state: a round's job moves its round on (jobs.c). */
void hub__pool_job_ended(hub *h, int64_t job_id, int state);

/* ---------- models_serve.c ---------- */

/* Frees the serving state and the sites' held lists. */
void hub__serving_free(hub *h);
/* The artifacts a heartbeat lists as held, and the site's transfer counters. */
void hub__models_heartbeat(hub *h, hub_site *s, const cJSON *body);
/* A site's "fetch" event: the manifest and peers, chunks from the hub, or why not. */
void hub__models_fetch(hub *h, hub_site *s, const cJSON *body);
/* A site waits for its job's model (a "fetching" event): a step of the job's history. */
void hub__models_job_fetching(hub *h, hub_site *s, int64_t job_id, int64_t attempt,
                              const char *detail);
/* sched_job.holds over the hub's sites: ctx is the artifact's sha256 (hex). */
int hub__site_holds(void *ctx, const sched_site *site);
/* What the hub served of artifacts, for `outpost stats`. */
void hub__models_stats(hub *h, cJSON *data);

/* ---------- routemap.c ---------- */

/* Adds "route_map" (coordinates and routes) to a route job's result view. OP_OK, OP_ENOMEM. */
int hub__route_map(hub *h, int64_t job_id, cJSON *data);

/* ---------- auditing.c ---------- */

/* Appends to the audit log in the loop's transaction (body taken). */
void hub__audit_record(hub *h, const char *kind, const char *subject, cJSON *body);
/* The same, with subject "<prefix>:<id>" and one "detail" field. */
void hub__audit_detail(hub *h, const char *kind, const char *prefix, const char *id,
                       const char *detail);
/* Signs a tree head over everything logged so far (when something was). */
void hub__audit_sign_head(hub *h);
/*
 * After a rolled-back transaction (or savepoint): the audit log's in-memory
 * tree re-read from the store and the head back to the last committed one,
 * so that nothing appended or signed in the lost batch is built on.
 */
void hub__audit_rollback(hub *h);
/* After a commit: the head signed in it is the one a rollback returns to. */
void hub__audit_committed(hub *h);
/* One step of a job's history: in the job's events and on the audit log. */
void hub__job_event(hub *h, int64_t job_id, int64_t attempt, const char *site, const char *event,
                    const char *detail);

#endif
