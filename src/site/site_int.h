/*
 * site_int.h: the site agent's internals, shared by the files of src/site/
 * (no other role includes it). The site struct, one per agent process, owns
 * everything the agent holds: its identity, store, bus, running jobs, power
 * state and local socket. Functions here are `site__`; the data layer is
 * site_db.h (`sitedb_`).
 *
 * Where each concern lives:
 *   main.c      start-up, the loop and its timers, shutdown
 *   config.c    the configuration file
 *   site_db.c   site.db: schema, meta, accepted jobs, leases, the outbox (every SQL statement)
 *   hublink.c   the hub link: the hub pin, hello, heartbeats, bye, outbox resend, and the
 *               hub's messages (welcome, offers, acks, cancels, its witnessed audit head)
 *   jobs.c      admission, accepting, starting, polling, resuming after a restart, leaving
 *   results.c   results, their outputs and energy, handing a job back
 *   envelope.c  the power envelope and its sources (config, trace, meter), grid signals,
 *               the heartbeat's power report, energy receipts
 *   enforce.c   keeping the draw inside the envelope: shedding and pausing jobs
 *   leases.c    offline leases: jobs stop when the hub is silent longer than their lease
 *   metrics.c   the optional /metrics listener (Prometheus text)
 *   local.c     the local socket's requests (`outpost submit --local`, power, leave)
 *   probe.c     the hub's capacity probes: threads solving its puzzle, the answer
 *   artifacts.c the artifact cache (models), fetches and what jobs wait for them;
 *               artifacts_wire.c: the messages of fetches (hub, peers) and serving peers
 *
 * A job attempt on a site is not the hub's jobstate machine (core/jobstate.h:
 * queued/placed/running/... with attempts counted against a maximum). The
 * site sees one attempt: accepted (stored 'accepted') -> running in the
 * sandbox, possibly paused (SIGSTOP) and resumed, or stopping (SIGTERM for
 * leaving, shedding) -> done (a result in the outbox, stored 'done') ->
 * forgotten when the hub acknowledges it; a cancel or an expired lease
 * forgets it at once. Whether a handed-back attempt is retried is the hub's
 * decision, which the site does not know.
 */
#ifndef OUTPOST_SITE_INT_H
#define OUTPOST_SITE_INT_H

#include "base/timer.h"
#include "core/artifact.h"
#include "core/jobspec.h"
#include "core/policy.h"
#include "core/power.h"
#include "io/auditlog.h"
#include "io/bus.h"
#include "io/sandbox.h"
#include "io/store.h"
#include "learn/learn.h"
#include "site/site_db.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/token.h"

#include <cJSON.h>
#include <limits.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define SITE_MAX_RUNNING 256
#define SITE_MAX_OUTPUT_TOTAL (2 * 1024 * 1024)
#define SITE_MAX_STD_CAPTURE (256 * 1024)
#define SITE_FULL_BEAT_EVERY 10 /* heartbeats: one in full, then nine of what changed */
#define SITE_RESEND_BATCH 512   /* results per resend message; acks clock the next one out */
#define SITE_RESEND_BATCH_BYTES (2 * 1024 * 1024)
#define SITE_MAX_CHECKPOINT (1024 * 1024)    /* handed back with a departing job */
#define SITE_BYE_WAIT_MS 500                 /* how long a clean stop waits for its bye to go out */
#define SITE_DEFAULT_JOB_UID_BASE 2100000000 /* far above login and container ranges */

typedef struct site_job {
    int64_t job_id;
    int64_t attempt;
    jobspec spec;
    sandbox_run *run; /* exec jobs */
    char workdir[PATH_MAX];
    int slot; /* 0..max_jobs-1, unique among running jobs: its uid is job_uid_base + slot */
    int64_t started_mono;
    int cancelled;
    char *local_spec; /* jobs submitted on the site (job_id < 0): their spec, for the hub */
    int64_t lease_ms; /* from the hub's signed offer: how long it may run without word; 0: none */
    int64_t departing_until; /* the site is leaving: SIGTERM sent, SIGKILL after this (mono ms) */
    int shed;                /* handed back because the power envelope dropped */
    int64_t paused_since;    /* SIGSTOP for a short demand-response cut (mono ms), 0 running */
    /* the energy receipt, accumulated at each power check while it runs */
    int64_t metered_ms, within_ms; /* run time, and the part with the site inside its envelope */
    double price_ms_sum, carbon_ms_sum; /* price and carbon integrated over the run time */
    int64_t price_ms, carbon_ms;        /* run time with a price / carbon known */
    int fetching;                       /* waits for its model (artifacts.c) before it starts */
    char model_path[PATH_MAX];          /* its model, whole, read-only ("" none) */
    /* a learn job (learnjob.c): what it learns from, for the model's lineage */
    int64_t learn_rows, learn_to_id, learn_seen_id, learn_from_ms, learn_to_ms;
    int learn_class;            /* the highest data class of those rows */
    char route_model_note[160]; /* a route job: the model it planned with ("" none) */
} site_job;

#define SITE_MAX_ESCALATIONS 16 /* questions waiting for the hub at once */

typedef struct site {
    ident identity;
    char data_dir[PATH_MAX];
    char class_name[8];
    store *db;
    bus *bus;
    char broker_host[256]; /* one broker, or a list: host[:port], host[:port] (io/bus.h) */
    int64_t broker_port;
    int64_t broker_return_ms; /* on a broker other than the first: how often to try it again */
    uint64_t broker_moves;    /* bus_moves as last seen: a new one is logged */
    int64_t cores, memory_mb, heartbeat_ms, max_jobs, resend_ms, clock_skew_ms;
    double power_budget_watts, watts_per_core, idle_watts;
    char cgroup_dir[PATH_MAX];
    char route_program[PATH_MAX]; /* the outpost binary route jobs run (default: this one) */
    char route_model[64];         /* the travel-time model route jobs plan with ("" none) */
    /* predict.c: questions escalated to the hub, their asker's connection held open */
    struct site_escalation {
        int fd;           /* -1: a free slot */
        int64_t id;       /* the question's id in the "predict" event */
        int64_t due_mono; /* answered locally after this */
        cJSON *reply;     /* the local answer, completed by the hub's */
    } escalations[SITE_MAX_ESCALATIONS];
    int64_t next_escalation;
    sandbox_caps caps;
    /* isolated jobs: uids job_uid_base + slot (gids the same), their process and disk limits */
    int64_t job_uid_base, job_max_processes, job_disk_mb;
    char hub_id[64];
    uint8_t hub_pk[32];
    int have_hub;
    msg_window hub_window;
    /* hublink.c: the key its heartbeats are MAC'd under (wire/msg.h), new at every start,
     * sent in the sealed hello; used once a welcome names it, until the hub asks again */
    uint8_t beat_key[MSG_MAC_KEY_BYTES];
    char beat_key_id[MSG_MAC_KEY_ID_BYTES];
    int beat_mac;
    int enrolled; /* welcome received */
    int refused;
    char refusal[256];
    const char *token_text;
    char token_buf[1025]; /* the token out of a join bundle (token_text points here) */
    int broker_tls;       /* broker_tls = on: TLS with the certificate in <data-dir>/tls */
    site_job *jobs[SITE_MAX_RUNNING];
    int n_jobs;
    int used_cores;
    int64_t used_memory_mb;
    cJSON *events;  /* started/refused, sent after commit */
    cJSON *results; /* fresh results, sent after commit */
    /* hublink.c: the last heartbeat in full, and beats since the last full one (heartbeats
     * carry only what changed, a full one every SITE_FULL_BEAT_EVERY and after a hello) */
    cJSON *last_beat;
    int beats_since_full;
    int store_failed;
    fail_streak store_streak;     /* failed commits in a row, for the log */
    int64_t store_failed_last_ms; /* mono ms of the last failed write (a commit, a work dir) */
    auditlog *audit;              /* what this site accepted, refused and ran, in site.db */
    policy *policy;               /* the owner's own rules (policy_file), or NULL */
    audit_sth head;               /* its latest signed head, sent in heartbeats */
    audit_sth head_committed;     /* head as of the last commit: a rollback returns to it */
    uint64_t hub_head_size;       /* size of the hub's last head witnessed here */
    int64_t audit_head_ms;
    /* the loop's periodic chores (base/timer); hello and resend can be forced at once */
    timer head_timer, heartbeat_timer, hello_timer, resend_timer;
    int hello_now, resend_now;
    int ready_notified;      /* READY=1 sent to the service manager (sdnotify) */
    int was_enrolled;        /* enrolled in an earlier run: may report ready while offline */
    int64_t started_mono_ms; /* when the loop began (the offline grace runs from it) */
    msg_stats msg;
    uint64_t jobs_run, results_acked;
    int local_fd; /* outpost submit --local: a unix socket in the data dir */
    char local_path[PATH_MAX];
    char local_cfg[PATH_MAX];         /* local_socket from the config: a path, "off", or "" */
    char metrics_listen[128];         /* metrics_listen: ADDR:PORT for /metrics, "" off */
    struct http_server *metrics_http; /* metrics.c */
    int has_local_group;              /* local_socket_group: a group that may use the socket too */
    gid_t local_group;
    cJSON *locals;            /* results of local jobs to send after this iteration's commit */
    int64_t last_contact_ms;  /* wall clock of the hub's last authenticated message */
    int64_t contact_saved_ms; /* what the store holds (meta last_hub_contact) */
    timer lease_timer;
    int leaving;       /* `outpost leave`: the owner unplugs; stop, hand back, exit */
    int backlog;       /* the last resend was a full batch: more waits in the outbox */
    power_trace trace; /* power_trace: the envelope over time (offset from start, watts),
                          step-wise, and price and carbon where given */
    int64_t trace_start_mono, reaction_ms;
    timer power_timer; /* enforcement, every quarter of reaction_ms (at least 50 ms) */
    char trace_path[PATH_MAX];
    int64_t leave_deadline_ms; /* mono ms: exit by then even if results are still unsent */
    /* power signals: config, trace, meter topic and `outpost power` */
    double budget_watts;   /* power_budget_watts from the config */
    char meter_topic[256]; /* unsigned JSON from the site's own meter; "" off */
    power_meter meter;     /* the latest of each field from the meter or a command */
    int64_t region, pause_max_ms, departure_lead_ms;
    power_forecaster forecaster; /* the envelope's own history */
    power_grid_ring grid_ring;   /* price and carbon over the last day, for the grid rank */
    timer observe_timer;         /* the forecaster and grid ring learn once a minute */
    int64_t last_meter_check_ms;
    int inside_envelope;              /* draw <= envelope at the last check */
    struct site_probe *probe;         /* probe.c: the hub's capacity probe in progress, or NULL */
    struct site_artifacts *artifacts; /* artifacts.c: the cache and its fetches */
    int64_t artifact_cache_mb;        /* the cache's byte budget */
} site;

/* main.c: the site's own last sequence number into the open transaction (see own_seq_start). */
void site__store_own_seq(site *s);
/* main.c: the periods of the loop's timers, from the configuration (all due at once). */
void site__init_timers(site *s);

/* main.c: a site in memory with nothing open (local_fd -1), and its release (NULL-safe). */
site *site__new(void);
void site__free(site *s);

/* config.c: reads the configuration file into s. OP_OK, or an error with err set. */
int site__parse_config(site *s, const char *path, char *err, size_t err_len);

/* site_db.c: the loop's transaction, opened on first write; failure marks store_failed. */
int site__ensure_tx(site *s);
/* site_db.c: appends to the site's own audit log, in the loop's transaction. */
void site__audit_job(site *s, const char *kind, int64_t job_id, int64_t attempt,
                     const char *detail);

/* hublink.c */
int site__load_hub_pin(site *s, const char *token_text, char *err, size_t err_len);
/*
 * With broker_tls: the broker CA, certificate and key in <data-dir>/tls
 * (stored there at enrollment from the join bundle). OP_OK, OP_ENOTFOUND
 * (err says what to do), OP_ETOOBIG.
 */
int site__tls_files(const site *s, char ca[PATH_MAX], char cert[PATH_MAX], char key[PATH_MAX],
                    char *err, size_t err_len);
/*
 * text as given when it is not a join bundle (NULL too); else the bundle
 * parsed into b and its token copied to s->token_buf, *token_text pointing
 * there. OP_OK, or OP_EINVAL / OP_ETOOBIG with err set.
 */
int site__unbundle(site *s, const char *text, token_bundle *b, const char **token_text, char *err,
                   size_t err_len);
/* The bundle's CA, certificate and key into <data-dir>/tls (the key 0600). OP_OK or OP_EIO. */
int site__store_bundle(site *s, const token_bundle *b, char *err, size_t err_len);
/* The meter topic's required form with broker_tls: outpost/v1/meter/<site-id>/<meter-id>. */
int site__meter_topic_ok(const site *s);
int site__publish(site *s, const char *leaf, cJSON *body, const char *type);
void site__add_event(site *s, int64_t job_id, int64_t attempt, const char *event,
                     const char *reason);
void site__send_batches(site *s);
void site__send_hello(site *s);
void site__send_heartbeat(site *s);
void site__send_bye(site *s, const char *reason);
void site__resend_outbox(site *s);
void site__on_message(void *ctx, const char *topic, const void *payload, size_t len,
                      const char *kid, const char *sig);

/* jobs.c */
int site__admission(site *s, const jobspec *spec, char *why, size_t why_len);
site_job *site__find_job(site *s, int64_t job_id, int64_t attempt);
void site__accept_job(site *s, int64_t job_id, int64_t attempt, const cJSON *spec_json,
                      int from_store, int64_t lease_ms);
/* Starts an accepted job (its model here, if it has one); a failure hands it back. */
int site__start_job(site *s, site_job *j);
void site__remove_job(site *s, int index);
void site__poll_jobs(site *s);
void site__resume_jobs(site *s);
int site__start_leaving(site *s, int64_t grace_ms);

/* results.c */
cJSON *site__new_result(site *s, site_job *j);
void site__record_result(site *s, site_job *j, cJSON *result);
void site__finish_exec(site *s, site_job *j, sandbox_result *res);
void site__hand_back(site *s, site_job *j, const char *why, cJSON *checkpoint);
void site__departure_result(site *s, site_job *j);
char *site__read_output_file(const char *dir, const char *name, size_t cap, size_t *len,
                             int *too_big);

/* envelope.c */
int site__load_trace(site *s, const char *path, char *err, size_t err_len);
double site__current_envelope(const site *s, int64_t now_wall, const char **source);
int site__price(const site *s, double *out);
int site__carbon(const site *s, double *out);
int site__grid_signal(const site *s, double *out);
int site__apply_meter(site *s, const char *text, size_t len, const char *from, char *err,
                      size_t err_len);
void site__add_power_report(site *s, cJSON *body);
void site__add_receipt(site *s, site_job *j, cJSON *r, double joules);

/* enforce.c */
int site__job_draws(const site_job *j);
/*
 * The job to stop first when the site's draw (idle plus drawing jobs) is over
 * envelope: the newest, the least work lost. NULL when the draw fits. *draw
 * gets the draw.
 */
site_job *site__over_envelope(const site *s, double envelope, double *draw);
/* 1 when the cut now (source from site__current_envelope) is a demand-response event
 * that ends within pause_max_ms: jobs pause through it instead of being handed back. */
int site__short_cut(const site *s, const char *source, int64_t now_wall);
/* One power check: see enforce.c. Called every reaction_ms / 4 and on each meter message. */
void site__enforce_power(site *s);

/* leases.c */
void site__lease_expired(site *s, site_job *j, int64_t silent_ms);
void site__check_leases(site *s);

/* probe.c */
/* A challenge from the hub: threads start on it (one in progress is stopped first). */
void site__probe_start(site *s, const cJSON *body);
/* From the loop while connected: once the threads are done, the answer to the hub. */
void site__probe_poll(site *s);
/* Stops a probe in progress and frees it (at exit). */
void site__probe_stop(site *s);

/* ---------- artifacts.c, artifacts_wire.c: the artifact cache ---------- */

#define ART_MAX 256       /* artifacts the cache knows */
#define ART_WINDOW 16     /* chunks in flight per fetch */
#define ART_PEER_WINDOW 8 /* ... from one peer */
#define ART_MAX_PEERS 3
#define ART_MAX_FAILED 16
#define ART_MAX_GRANTS 64
#define ART_LATER_MS 300        /* a peer that said "later" is asked again after this */
#define ART_PEER_STALL_MS 20000 /* a peer that gave nothing this long is dropped */
#define ART_PULL_MAX 16         /* chunks one pull may ask for */
#define ART_PEER_CHUNKS_PER_S 400.0
#define ART_PEER_BURST 32.0
#define ART_REPORT_MAX 64 /* artifacts a heartbeat lists */

typedef struct art_peer {
    char id[64];
    uint8_t pk[32];
    msg_window window;
    int inflight, fails, dropped;
    int64_t later_until_mono; /* it said "later" (it fetches too): not asked before this */
    int64_t progress_mono;    /* its last chunk, or when it was named */
} art_peer;

typedef struct art_slot {
    int64_t index;
    int source; /* -1 the hub, else a peer's index */
    int64_t asked_mono;
} art_slot;

typedef struct art {
    char sha[65];
    int64_t size_bytes;
    int complete;
    int64_t last_used_ms;
    int have_manifest;
    artifact_manifest m;
    uint8_t *held, *asked; /* bitmaps over m's chunks */
    int fd;                /* the .partial file while fetching, -1 */
    int dirty;             /* chunks written since their bits were stored */
    art_slot slots[ART_WINDOW];
    int n_slots;
    art_peer peers[ART_MAX_PEERS];
    int n_peers, next_peer;
    char failed[ART_MAX_FAILED][64]; /* peers that failed this fetch, told to the hub */
    int n_failed;
    int hub_ok; /* the hub serves this site chunks of it */
    int64_t manifest_asked_mono, wait_until_mono, progress_mono, next_from;
    int verifying;
    int64_t verify_at;
    crypto_hash_sha256_state vh;
} art;

/* The hub told this site to serve `to` the artifact sha, until expires_mono. */
typedef struct art_grant {
    int used;
    char to[64], sha[65];
    uint8_t pk[32];
    int64_t expires_mono;
    msg_window window;
    msg_bucket budget;
} art_grant;

struct site_artifacts {
    art *items[ART_MAX];
    int n;
    art_grant grants[ART_MAX_GRANTS];
    int64_t connected_since_mono;
    uint64_t from_hub_bytes, from_peers_bytes, served_bytes, served_chunks;
    uint64_t chunks_dup, chunks_bad, evicted, restarts, pulls_refused;
};

/* The cache from site.db (files no row knows removed). OP_OK, OP_ENOMEM, OP_EIO, OP_ESTORE. */
int site__artifacts_open(site *s);
void site__artifacts_close(site *s);
/*
 * Whether the cache can take the spec's model: OP_OK (none, held, or room
 * can be made), OP_EPERM (not resolved by the hub, or larger than the whole
 * budget), OP_EFULL (the artifacts jobs use leave too little now).
 */
int site__artifacts_admit(site *s, const jobspec *spec, char *why, size_t why_len);
/*
 * The job's model: 1 when whole here (j->model_path set), 0 when the job
 * waits for it (j->fetching, a "fetching" event), OP_EFULL with why set
 * when no fetch could start.
 */
int site__artifacts_prepare(site *s, site_job *j, char *why, size_t why_len);
/* Every loop iteration: fetches driven, files verified, progress stored, grants expired. */
void site__artifacts_tick(site *s);
/* A hub message about artifacts: manifest, chunk, fetch_wait, fetch_refused, serve. */
void site__artifacts_from_hub(site *s, const char *type, const cJSON *body);
/* A message on this site's peer topics (outpost/v1/peer/<this site>/<from>). */
void site__artifacts_on_peer(site *s, const char *topic, const void *payload, size_t len,
                             const char *kid, const char *sig);
/* The heartbeat's "artifacts": what is held whole (hashes, bounded), transfers counted. */
void site__artifacts_report(site *s, cJSON *body);
/* Helpers the two files share. */
int site__art_path(const site *s, const char *sha, const char *suffix, char *out, size_t len);
art *site__art_find(site *s, const char *sha);
int site__art_users(const site *s, const char *sha);
void site__art_drop(site *s, int index);
int site__art_take_manifest(site *s, art *a, const char *text, const char *sig, char *err,
                            size_t err_len);
void site__art_give_back(site *s, art *a, const char *why);
void site__art_drop_peer(art *a, art_peer *p);
void site__art_free_slot(art *a, int k);

/* ---------- learning.c: exceptions, learn jobs, the site's models ---------- */

#define SITE_EXC_NEWEST 20000 /* exceptions kept: the newest ... */
#define SITE_EXC_SAMPLE 5000  /* ... and an evenly spread sample of older ones */

/* A route leg's features (JSON, learn/learn.h's columns) into row. OP_OK, OP_EINVAL (err). */
int site__learn_features(const cJSON *features, float row[LEARN_FEATURES], char *err,
                         size_t err_len);
/* One exception's JSON into e; *text (features' text) is the caller's to free. */
int site__exception_parse(const cJSON *o, sitedb_exception *e, char **text, char *err,
                          size_t err_len);
/* The local socket's "exceptions" op (all or none). */
void site__exceptions_op(site *s, const cJSON *req, cJSON *reply, char *why, size_t why_len);
void site__exceptions_prune(site *s);

/* learnjob.c: a learn job's command line (`outpost learn fit` in the sandbox). */
typedef struct learn_command {
    char rounds[16], depth[16], eta[32], rebuild[24], sha[65], cand_sha[65], prev_sha[65];
    char *argv[36];
} learn_command;
/* The champion of model name ("model") or the one before it ("model_prev"), NULL if none. */
cJSON *site__learn_champion(site *s, const char *name, const char *prefix);
int site__learn_model_path(const site *s, const char *sha, char *out, size_t len, int make_dir);
/* Rows and champion into the work dir, the command into cmd. OP_OK or an error (why). */
int site__learn_prepare(site *s, site_job *j, learn_command *cmd, char *why, size_t why_len);
/*
 * A route job of the owner's (not public) at a site with a route_model that
 * has a champion: the model copied into the work dir, its arguments
 * appended to argv at *n (room for 6), j->route_model_note set. OP_OK also
 * when there is no model to use.
 */
int site__route_model_args(site *s, site_job *j, char **argv, int *n, char sha[65], char start[24]);
/*
 * predict.c: the local socket's "predict" op. The site's own model answers
 * (in a child process); a question it is not confident about is escalated
 * to the hub when the site's policy lets its features leave and the hub is
 * in reach: then the connection fd is kept (returns 1) and answered by
 * site__predict_answered or site__predict_expire. 0: reply is the answer.
 */
int site__predict_op(site *s, const cJSON *req, cJSON *reply, int fd, char *why, size_t why_len);
/* The hub's "predicted": an escalated question's answer, to its asker. */
void site__predict_answered(site *s, const cJSON *body);
/* Escalations the hub did not answer in time are answered locally (each loop). */
void site__predict_expire(site *s, int all);
/* A learn job exited 0: decide, adopt or reject, audit, and say so in the result r. */
void site__learn_finish(site *s, site_job *j, cJSON *r);
/* A model file copied into the job's work dir as name. OP_OK, OP_EIO, OP_ETOOBIG. */
int site__learn_copy_model(const site_job *j, const char *from, const char *name);

/*
 * rollback.c: back to the champion before the current one. Before a train
 * or rollback job: the previous champion into the work dir (previous.ubj,
 * measured beside the champion; a rollback's candidate.ubj) and its hash
 * into cmd; a rollback with nothing to go back to is OP_ENOTFOUND (why set).
 */
int site__rollback_prepare(site *s, site_job *j, int has_champion, learn_command *cmd, char *why,
                           size_t why_len);
/*
 * After it: rolls back when the operator said so, or when the previous
 * champion beat the current one on the fresh rows (learn_rollback_decide);
 * audited "learn-rollback" with both MAEs and told to the hub in r's
 * "learn". 1 when it dealt with the job, 0 when the usual verdict applies.
 */
int site__rollback_finish(site *s, site_job *j, const cJSON *metrics, cJSON *r);

/* metrics.c: /metrics (Prometheus text) when metrics_listen is set */
void site__metrics_open(site *s);
/* Answers what scrapes are waiting, without blocking. */
void site__metrics_poll(site *s);
void site__metrics_close(site *s);

/* local.c */
void site__local_open(site *s);
void site__serve_local(site *s);
void site__local_close(site *s);

#endif
