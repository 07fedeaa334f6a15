/*
 * hub_db: the hub's data layer. Owns the hub's database (hub.db, or a
 * PostgreSQL database through the same store calls): its schema, the migrations of
 * databases made by older hubs, and every SQL statement the hub runs, as
 * named operations (hubdb_job_place, hubdb_site_enroll, ...). Nothing above
 * it sees SQL or SQLite: job states go in and come out as jobstate codes
 * (the state machine decides them, this layer stores them), rows come out
 * as plain structs or as the JSON views the operator API answers with.
 * hub_db.c holds the file, schema, sites, tokens and operators' records;
 * hub_db_jobs.c jobs, results, checkpoints and the operator views;
 * hub_db_claims.c sites' claims checked and their quarantine.
 *
 * Tables: meta, sites, site_claims, tokens, jobs, results, checkpoints,
 * local_jobs, job_events, op_nonces, op_floors, op_answers, trust, hub_lease
 * (hub_db_lease.c: which hub of a failover group is active) (and
 * audit_entries, owned by io/auditlog on the same store). hub_db_verify.c
 * holds what result verification stores (trust records, a job's replicas),
 * hub_db_claims.c what the capacity checks store, hub_db_runtimes.c the
 * learned run times (table runtimes, made by hubdb__runtimes_schema), hub_db_pool.c
 * the pooling rounds the hub drives (pool_rounds, pool_jobs) and sites' rollbacks
 * (model_rollbacks).
 *
 * Every operation returns OP_OK or OP_ESTORE (the store logs the database's
 * message), and OP_ENOTFOUND or OP_ENOMEM where its comment says so. Strings
 * in a row handed to a callback are valid during that callback only.
 */
#ifndef OUTPOST_HUB_DB_H
#define OUTPOST_HUB_DB_H

#include "core/runtime.h"
#include "core/verify.h"
#include "io/auditlog.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hubdb hubdb;

/* The schema this hub writes; a database marked with a higher one is refused. */
#define HUBDB_SCHEMA_VERSION 1
#define HUBDB_SCHEMA_VERSION_TEXT "1"

/* ---------- the file ---------- */

/*
 * Opens (creating) path, a SQLite file, or a PostgreSQL server's URL
 * (store.h), applies the schema and adds the columns newer hubs use to an
 * older database; a database written by a newer hub is refused (logged).
 * synchronous_full 0 for throwaway stores (tests, fuzzing). OP_ESTORE,
 * OP_ENOMEM.
 */
int hubdb_open(const char *path, int synchronous_full, hubdb **out);
void hubdb_close(hubdb *db);
/* The audit log kept in the same file, committed with the hub's transactions. */
int hubdb_attach_audit(hubdb *db, auditlog **out);

/*
 * The loop's transaction (nests by counting, see store.h). With a failover
 * lease taken, the outermost hubdb_commit renews it and returns OP_EEXPIRED
 * (rolled back) when another hub holds it; otherwise OP_OK or OP_ESTORE.
 */
int hubdb_begin(hubdb *db);
int hubdb_commit(hubdb *db);
void hubdb_rollback(hubdb *db);
int hubdb_in_tx(const hubdb *db);
/* A savepoint inside the transaction: a batch of submissions is all or nothing. */
int hubdb_savepoint(hubdb *db);
int hubdb_savepoint_release(hubdb *db);
void hubdb_savepoint_undo(hubdb *db);

/* ---------- the failover lease (hub_db_lease.c) ---------- */

typedef struct hubdb_lease {
    char holder[128]; /* "" before any hub took it */
    int64_t epoch;    /* counts takeovers: each holder's is higher than the last one's */
    int64_t expires_at_ms, now_ms; /* on the database's clock */
} hubdb_lease;

/*
 * Takes the lease for holder (a name unique to this process) when it has
 * expired, for lease_ms: *taken 1, before the row as it was (the previous
 * holder and epoch), after as it is now. From then on every outermost
 * commit renews it and is refused when another hub holds it. OP_ESTORE.
 */
int hubdb_lease_try(hubdb *db, const char *holder, int64_t lease_ms, int *taken,
                    hubdb_lease *before, hubdb_lease *after);
/* The lease's row as it is, and the database's clock. OP_ESTORE. */
int hubdb_lease_get(hubdb *db, hubdb_lease *out);
/* 1 once a commit found another hub holding the lease: stop without writing. */
int hubdb_lease_lost(const hubdb *db);
/* When the last commit renewed this hub's lease (monotonic ms); 0 without a lease. */
int64_t hubdb_lease_renewed_mono_ms(const hubdb *db);
/* Outside a transaction: lets the lease expire now (a clean stop), if still held. OP_ESTORE. */
int hubdb_lease_release(hubdb *db);

/* Empties jobs, results, job events and tokens (the fuzzer keeps its store small). */
int hubdb_clear_jobs(hubdb *db);

/* ---------- sites and tokens ---------- */

typedef struct hubdb_site_row {
    const char *id, *pubkey_hex, *class_name, *protections_off;
    const char *owner; /* from its join token; the site's own id unless the token named one */
    int trust;
    uint64_t last_seq;
    int cores;
    int64_t memory_mb;
    double power_budget_watts, watts_per_core, idle_watts;
    int departed;            /* said goodbye and not heard since */
    const char *quarantined; /* why it takes no work until an operator clears it, or "" */
    const char *beat_key;    /* its heartbeat key sealed by the hub (hub__beat_key_*), or "" */
} hubdb_site_row;

/* Calls fn for each enrolled site, by id; stops at (and returns) fn's first non-OK code. */
int hubdb_sites_each(hubdb *db, int (*fn)(void *ctx, const hubdb_site_row *row), void *ctx);

/* Calls fn per site with the cores, memory and count of its placed and running jobs. */
int hubdb_reservations_each(hubdb *db,
                            void (*fn)(void *ctx, const char *site, int cores, int64_t memory_mb,
                                       int jobs),
                            void *ctx);

/* Registers an enrolled site (owned by owner) and marks its join token used, both at now_ms. */
int hubdb_site_enroll(hubdb *db, const char *site_id, const char *pubkey_hex,
                      const char *class_name, const char *owner, const char *token_id,
                      int64_t now_ms, uint64_t seq);

/* What a site says it has (its hello and heartbeats). */
int hubdb_site_set_capacity(hubdb *db, const char *site_id, int cores, int64_t memory_mb,
                            double power_budget_watts, double watts_per_core, double idle_watts,
                            const char *protections_off);

/* The site's heartbeat key as the hub sealed it for the store (hex; "" forgets it). */
int hubdb_site_set_beat_key(hubdb *db, const char *site_id, const char *sealed_hex);

/* A site said goodbye (1), or was heard again (0): a restarted hub knows it left, not lost. */
int hubdb_site_set_departed(hubdb *db, const char *site_id, int departed);

/* The highest message sequence number accepted from the site (replay window after restarts). */
int hubdb_site_set_seq(hubdb *db, const char *site_id, uint64_t seq);
/* The hub's own last sequence number, kept in meta ("bus_seq"; 0 when never stored). */
int hubdb_own_seq_get(hubdb *db, uint64_t *seq);
int hubdb_own_seq_set(hubdb *db, uint64_t seq);

/* A join token this hub issued. */
int hubdb_token_create(hubdb *db, const char *token_id, const char *class_name, int64_t created_ms,
                       int64_t expires_ms, const char *created_by);

/* Whether this hub issued token_id (*known) and, if used, by which site (used_by, else ""). */
int hubdb_token_lookup(hubdb *db, const char *token_id, int *known, char used_by[64]);

/* ---------- claims checked, quarantine (hub_db_claims.c) ---------- */

/* A site's claims as checked: its token's limits and its last probe verdict. */
typedef struct hubdb_claims {
    const char *site;
    int64_t max_cores, max_memory_mb; /* from its join token, 0: none */
    double max_watts;
    double measured_cores; /* effective cores at the last probe, -1: never probed */
    int counted_cores;     /* cores placement counts on after an over-claim, 0: no cap */
    int claimed_cores;     /* the claim the last probe judged */
    int failures;          /* failed probes in a row */
    int64_t checked_at_ms; /* 0: never */
    const char *verdict;
} hubdb_claims;

/* Stores (replacing) the site's claims row. */
int hubdb_claims_put(hubdb *db, const hubdb_claims *claims);
/* Calls fn for each site's claims row; stops at (and returns) fn's first non-OK code. */
int hubdb_claims_each(hubdb *db, int (*fn)(void *ctx, const hubdb_claims *claims), void *ctx);
/* The site's quarantine: reason, or "" when cleared. */
int hubdb_site_set_quarantined(hubdb *db, const char *site_id, const char *reason);
/*
 * What each site delivered, from its applied results: {site: {results,
 * cpu_seconds, wall_ms (the site's word), observed_ms (placed or started to
 * finished, on the hub's clock), core_seconds (cores reserved x observed)}}
 * into by_site.
 */
int hubdb_sites_delivered(hubdb *db, cJSON *by_site);

/* ---------- operators' nonces and answers (replay protection, wire/msg.h) ---------- */

/* Records an operator's request nonce with its timestamp (a second copy is ignored). */
int hubdb_op_nonce_add(hubdb *db, const char *op_id, uint64_t nonce, int64_t ts_ms);
/* The operator's floor (0 when none) into *floor_ms, then fn for each nonce above it, oldest first.
 */
int hubdb_op_nonces_each(hubdb *db, const char *op_id, int64_t *floor_ms,
                         void (*fn)(void *ctx, uint64_t nonce, int64_t ts_ms), void *ctx);
int hubdb_op_floor_set(hubdb *db, const char *op_id, int64_t floor_ms);
/*
 * The answer given to the operator's request rid whose content had digest
 * (caller frees *answer). OP_ENOTFOUND when there is none for that content,
 * OP_ENOMEM.
 */
int hubdb_op_answer_get(hubdb *db, const char *op_id, const char *rid, const char *digest,
                        char **answer);
/* Keeps an answer (replacing one for the same rid). */
int hubdb_op_answer_put(hubdb *db, const char *op_id, const char *rid, const char *digest,
                        int64_t at_ms, const char *answer);
/* Forgets nonces older than nonces_before_ms, answers older than answers_before_ms or beyond the
 * newest answers_kept (>= 1). */
int hubdb_op_prune(hubdb *db, int64_t nonces_before_ms, int64_t answers_before_ms,
                   int64_t answers_kept);

/* ---------- jobs ---------- */

/* A job as the hub's logic reads it back. */
typedef struct hubdb_job {
    int64_t attempt, max_attempts;
    int state;     /* JOB_*, -1 for a state this hub does not know */
    char site[64]; /* "" when none */
    int cores;
    int64_t memory_mb;
    char excluded[1024];     /* space-separated ids of sites that refused it */
    int site_private;        /* it may run on its origin only */
    int64_t verify_wanted;   /* results the job needs (core/verify); 0: not planned yet */
    char verify_owners[512]; /* space-separated owners holding a replica (placement skips them) */
} hubdb_job;

/* OP_ENOTFOUND when there is no such job. */
int hubdb_job_get(hubdb *db, int64_t job_id, hubdb_job *out);
/* A job's kind and spec (JSON text, malloc'd: the caller frees). OP_ENOTFOUND, OP_ENOMEM. */
int hubdb_job_spec(hubdb *db, int64_t job_id, char kind[16], char **spec);

/* A new job row: submitted (queued) or run by a site on its own (running there). */
typedef struct hubdb_new_job {
    const char *name, *kind, *spec_json;
    int state;
    int64_t attempt;
    const char *site; /* NULL: none yet */
    int cores;
    int64_t memory_mb;
    unsigned class_mask;
    const char *origin;
    int site_private, max_attempts;
    const char *submitted_by;
    int64_t submitted_at, placed_at; /* placed_at 0: not placed */
    const char *notify;              /* operator told of its final state, or NULL */
    int awaiting_approval;
    const char *program;
    int data_class;
    int64_t expected_ms, deadline_at;
    int may_defer;
    int deterministic; /* jobspec_deterministic: its result can be checked by replicas */
    const char *model, *model_sha; /* the model it uses ("NAME@VERSION", its sha256) or NULL */
} hubdb_new_job;

int hubdb_job_insert(hubdb *db, const hubdb_new_job *job, int64_t *job_id);
int hubdb_job_set_reason(hubdb *db, int64_t job_id, const char *reason);
int hubdb_jobs_count(hubdb *db, int state, int64_t *count);
/* *any = 1 when some job is in state (one index probe, however many there are). OP_ESTORE. */
int hubdb_jobs_any(hubdb *db, int state, int *any);

/* A queued job as the placement pass reads it. */
typedef struct hubdb_queued {
    int64_t id, attempt, max_attempts;
    int cores;
    int64_t memory_mb;
    unsigned class_mask;
    const char *origin; /* "" when none */
    int site_private;
    const char *excluded, *spec_json, *explanation, *kind, *program;
    int data_class;
    int64_t expected_ms, deadline_at;
    int may_defer;
    int deterministic;
    int64_t verify_wanted;         /* 0: no result yet planned; >= 2: in verification */
    unsigned verify_class;         /* 0, or the classes the further replicas may run on */
    const char *verify_owners;     /* owners that already hold a replica ("" when none) */
    const char *model, *model_sha; /* its model ("NAME@VERSION") and the artifact's sha256, "" */
} hubdb_queued;

/*
 * Calls fn for up to limit queued jobs not awaiting approval, oldest first.
 * fn must not call other hubdb operations; a non-zero return stops the walk.
 */
int hubdb_jobs_queued(hubdb *db, int limit, int (*fn)(void *ctx, const hubdb_queued *job),
                      void *ctx);

/* Queued -> state (placed) on site for attempt, leased until lease_expires_ms. */
int hubdb_job_place(hubdb *db, int64_t job_id, int state, int64_t attempt, const char *site,
                    int64_t now_ms, int64_t lease_expires_ms, const char *explanation);
/* Queued -> state (failed) without an attempt: no site can ever run it. */
int hubdb_job_fail_unplaced(hubdb *db, int64_t job_id, int state, const char *reason,
                            const char *explanation, int64_t now_ms);
/* A queued job's latest placement explanation (it still waits). */
int hubdb_job_explain(hubdb *db, int64_t job_id, const char *explanation);
/* Taken back from its site: state (queued, or failed with finished_ms), lease cleared. */
int hubdb_job_requeue(hubdb *db, int64_t job_id, int state, const char *reason,
                      const char *excluded, int64_t finished_ms);
/*
 * from -> to for the attempt on site, when the job is still in from there;
 * *changed says whether it was.
 */
int hubdb_job_start(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int from, int to,
                    int64_t now_ms, int *changed);
/* *current: the attempt on site is the job's current one, placed or running. */
int hubdb_job_is_current(hubdb *db, int64_t job_id, int64_t attempt, const char *site,
                         int *current);
/* Extends the current attempt's lease; *changed 0 when the attempt is no longer current. */
int hubdb_job_renew_lease(hubdb *db, int64_t job_id, int64_t attempt, const char *site,
                          int64_t until_ms, int *changed);
/* Every placed or running job's lease to until_ms (a restarted hub gives sites a full lease). */
int hubdb_leases_renew_all(hubdb *db, int64_t until_ms);
/* A final state from a result: the job's row, and that attempt's result marked applied. */
int hubdb_job_finish(hubdb *db, int64_t job_id, int64_t attempt, int state, const char *reason,
                     int64_t now_ms);
/* An operator's cancellation: state (cancelled) with reason, lease cleared. */
int hubdb_job_cancel(hubdb *db, int64_t job_id, int state, const char *reason, int64_t now_ms);
/* Releases a queued job held for approval; *changed 0 when it was not held. */
int hubdb_job_approve(hubdb *db, int64_t job_id, int *changed);
/* The operator to tell when the job ends (submit --wait), "" when none. */
int hubdb_job_notify_target(hubdb *db, int64_t job_id, char op_id[64]);
/* Up to max ids of placed or running jobs: on site, or whose lease ended before now_ms. */
int hubdb_jobs_on_site(hubdb *db, const char *site, int64_t *ids, int max, int *n);
int hubdb_jobs_lease_expired(hubdb *db, int64_t now_ms, int64_t *ids, int max, int *n);
/* One line of a job's history (outpost job ID). */
int hubdb_job_event(hubdb *db, int64_t job_id, int64_t ts_ms, int64_t attempt, const char *site,
                    const char *event, const char *detail);

/* ---------- results, checkpoints, local jobs ---------- */

typedef struct hubdb_result {
    int64_t job_id, attempt;
    const char *site;
    int64_t received_at, exit_code;
    double cpu_seconds;
    int64_t peak_rss_bytes, wall_ms;
    double energy_joules;
    const char *body;        /* the result as received */
    const char *output_hash; /* core/outhash of body, or NULL (malformed outputs) */
} hubdb_result;

/* Records a result unless one for (job, attempt) is already there (*inserted 0). */
int hubdb_result_record(hubdb *db, const hubdb_result *result, int *inserted);
/* Keeps a job's checkpoint (one per job: the newest replaces the last). */
int hubdb_checkpoint_keep(hubdb *db, int64_t job_id, int64_t attempt, const char *name,
                          const char *sha256, const char *data_b64);
/*
 * The job's kept checkpoint as a job input {name, sha256, data_b64} (caller
 * frees), or *input NULL when it has none. OP_ENOMEM.
 */
int hubdb_checkpoint_input(hubdb *db, int64_t job_id, cJSON **input);
/* Whether the site's local job local_id was recorded already. */
int hubdb_local_known(hubdb *db, const char *site, int64_t local_id, int *known);
int hubdb_local_map(hubdb *db, const char *site, int64_t local_id, int64_t job_id);

/* ---------- result verification (hub_db_verify.c) ---------- */

/* A site's or an owner's trust record (subject "site:ID" or "owner:ID"); zeroes when none. */
int hubdb_trust_get(hubdb *db, const char *subject, verify_trust *out);
int hubdb_trust_put(hubdb *db, const char *subject, const verify_trust *t);
/* Calls fn for every stored record whose subject starts with prefix. */
int hubdb_trust_each(hubdb *db, const char *prefix,
                     void (*fn)(void *ctx, const char *subject, const verify_trust *t), void *ctx);

/* The results a job needs before one is accepted, and where further replicas may run. */
int hubdb_job_set_verify(hubdb *db, int64_t job_id, int64_t wanted, unsigned check_class);

/* One result of a job as verification compares it. */
typedef struct hubdb_replica {
    int64_t attempt, exit_code;
    char site[64];
    char hash[65]; /* core/outhash, or "" for a result whose outputs were malformed */
    int failed;    /* not exit code 0 (a site-side error reports -1) */
} hubdb_replica;

/* The job's recorded results but site-side errors (nothing produced), by attempt (at most max). */
int hubdb_job_replicas(hubdb *db, int64_t job_id, hubdb_replica *out, int max, int *n);
/*
 * Back to the queue for one more replica: state (queued), reason, the owners
 * placement must now skip, and more attempts allowed (a replica is not a
 * retry: it does not use up the job's attempts).
 */
/* Gives a job n more attempts (an attempt a busy site refused does not count). */
int hubdb_job_more_attempts(hubdb *db, int64_t job_id, int64_t n);
int hubdb_job_await_replica(hubdb *db, int64_t job_id, int state, const char *reason,
                            const char *owners, int64_t more_attempts);
/* *placed 1 if the job's attempt was placed on (or run locally by) site. */
int hubdb_attempt_was_on(hubdb *db, int64_t job_id, int64_t attempt, const char *site, int *placed);

/* ---------- learned run times (hub_db_runtimes.c) ---------- */

/* The run time table's rows (core/runtime): calls fn for each, oldest learned first. */
int hubdb_runtimes_each(hubdb *db, int (*fn)(void *ctx, const runtime_row *row), void *ctx);
/* Stores (replacing) one row. */
int hubdb_runtime_put(hubdb *db, const runtime_row *row);
/* Forgets one row (the table evicted it). */
int hubdb_runtime_forget(hubdb *db, uint64_t key);

/* What the hub knows of one finished attempt's run, for learning its run time. */
typedef struct hubdb_run_facts {
    char kind[32];
    char program[RUNTIME_LABEL_MAX]; /* argv[0] of an exec job, "" otherwise */
    int64_t expected_ms;             /* declared, 0: none */
    int64_t placed_ms;               /* the attempt's placement on the hub's clock, 0: none */
    int resumed;                     /* it started from a checkpoint of an earlier attempt */
    int local;                       /* a site ran it on its own: the hub did not see it run */
} hubdb_run_facts;

/* The facts of (job, attempt). OP_ENOTFOUND when there is no such job. */
int hubdb_run_facts_get(hubdb *db, int64_t job_id, int64_t attempt, hubdb_run_facts *out);

/* ---------- operator views (JSON added to the caller's objects) ---------- */

/* Summaries of up to limit jobs, newest first, in state (NULL: any), into arr. */
int hubdb_jobs_list(hubdb *db, const char *state, int64_t limit, cJSON *arr);
/* {state: count} over every job. */
int hubdb_jobs_counts(hubdb *db, cJSON *counts);
/* {site: {state: count}} over every job ("" for jobs never placed). */
int hubdb_jobs_per_site(hubdb *db, cJSON *per_site);
/* applied_results, cpu_seconds and energy_joules over applied results, into data. */
int hubdb_results_totals(hubdb *db, cJSON *data);
/*
 * "job" (the row), "events" (its history) and "results" (each attempt's, with
 * the outputs when with_outputs, else the figures and receipt) into data.
 * OP_ENOTFOUND.
 */
int hubdb_job_view(hubdb *db, int64_t job_id, int with_outputs, cJSON *data);
/* Audit entries from index from, filtered by subject and kind (NULL: any), into arr. */
int hubdb_audit_entries(hubdb *db, int64_t from, const char *subject, const char *kind,
                        int64_t limit, cJSON *arr);

/* ---------- the model registry (hub_db_models.c) ---------- */

/* One version of a model. */
typedef struct hubdb_model {
    char name[64];
    int64_t version;
    char sha256[65];
    int64_t size_bytes;
    int data_class; /* DATA_* */
    char origin[64];
    int64_t created_at_ms, removed_at_ms; /* removed_at_ms 0: not removed */
    char *record, *sig; /* the signed record (core/artifact) and its signature, malloc'd */
} hubdb_model;
/* Frees what a read filled (record, sig) and zeroes m. */
void hubdb_model_clear(hubdb_model *m);

/* The manifest of an artifact's bytes, once (a second add of the same hash changes nothing). */
int hubdb_artifact_add(hubdb *db, const char *sha256, int64_t size_bytes, const char *manifest,
                       const char *sig, int64_t now_ms);
/* An artifact's size, manifest and signature (each optional; strings malloc'd). OP_ENOTFOUND. */
int hubdb_artifact_get(hubdb *db, const char *sha256, int64_t *size_bytes, char **manifest,
                       char **sig);
int hubdb_artifact_delete(hubdb *db, const char *sha256);
/* The next version of name: one above any it ever had, removed ones included. */
int hubdb_model_next_version(hubdb *db, const char *name, int64_t *version);
int hubdb_model_insert(hubdb *db, const hubdb_model *m);
/*
 * Version version of name (removed or not), or with version 0 its latest
 * version not removed. OP_ENOTFOUND. The caller clears out.
 */
int hubdb_model_get(hubdb *db, const char *name, int64_t version, hubdb_model *out);
/* A version not removed whose bytes are sha256 (the strictest data class first). OP_ENOTFOUND. */
int hubdb_model_by_sha(hubdb *db, const char *sha256, hubdb_model *out);
/* Up to limit versions (of name, or of every model), newest first, as objects into out. */
int hubdb_models_list(hubdb *db, const char *name, int with_removed, int64_t limit, cJSON *out);
/* Marks version (0: every version) of name removed; *removed counts the rows that changed. */
int hubdb_model_remove(hubdb *db, const char *name, int64_t version, int64_t now_ms, int *removed);
/*
 * fn(data_class, origin) for every version not removed whose bytes are
 * sha256, until fn returns non-zero (fn must not use the store).
 */
int hubdb_model_classes(hubdb *db, const char *sha256,
                        int (*fn)(void *ctx, int data_class, const char *origin), void *ctx);
/* *used: 1 when a version not removed names these bytes. */
int hubdb_sha_in_use(hubdb *db, const char *sha256, int *used);
/* *has: 1 when a job placed on or running at site uses the model whose bytes are sha256. */
int hubdb_site_has_model_job(hubdb *db, const char *site, const char *sha256, int *has);

/* ---------- pooling rounds the hub drives (hub_db_pool.c) ---------- */

/* A pooling round: visits of the owner's sites in turn, then an offer to each. */
typedef struct hubdb_pool_round {
    int64_t id;
    char name[64];  /* the pooled model */
    char owner[64]; /* whose sites */
    char own[64];   /* each site's own model is this prefix and the site's id */
    char *sites;    /* JSON array of site ids, in visiting order (malloc'd) */
    int64_t passes, rounds, deadline_at_ms;
    int64_t step;     /* the next visit (0 .. passes * sites - 1), then the offers */
    int64_t versions; /* versions of the pool this round registered */
    char state[16];   /* visiting, offering, done, failed */
    char by[64];      /* the operator who started it */
    int64_t started_at_ms, finished_at_ms;
} hubdb_pool_round;
/* Frees sites and zeroes r. */
void hubdb_pool_round_clear(hubdb_pool_round *r);

/* One job of a round. */
typedef struct hubdb_pool_job {
    int64_t job_id, round;
    char site[64];
    char mode[8];     /* visit, offer */
    char outcome[16]; /* running, visited, skipped, adopted, refused, failed */
} hubdb_pool_job;

/* A new round (state visiting, step 0); *id its number. */
int hubdb_pool_round_add(hubdb *db, const hubdb_pool_round *r, int64_t *id);
/* Round id, or with id 0 the latest round of name that is still visiting or offering. */
int hubdb_pool_round_get(hubdb *db, int64_t id, const char *name, hubdb_pool_round *out);
/* A round's progress: step, versions, state and finished_at_ms as in r. */
int hubdb_pool_round_update(hubdb *db, const hubdb_pool_round *r);
int hubdb_pool_job_add(hubdb *db, int64_t job_id, int64_t round, const char *site,
                       const char *mode);
/* The round's job job_id. OP_ENOTFOUND when it is no round's. */
int hubdb_pool_job_get(hubdb *db, int64_t job_id, hubdb_pool_job *out);
/* What came of a round's job: outcome, a detail, the version it registered (0 none). */
int hubdb_pool_job_set(hubdb *db, int64_t job_id, const char *outcome, const char *detail,
                       int64_t version);
/* *n: the round's jobs of mode still running. */
int hubdb_pool_jobs_running(hubdb *db, int64_t round, const char *mode, int64_t *n);
/* A job's final reason (malloc'd, "" when none). OP_ENOTFOUND, OP_ENOMEM. */
int hubdb_job_reason(hubdb *db, int64_t job_id, char **reason);
/* The newest limit rounds of name, each with its jobs, as objects into out. */
int hubdb_pool_rounds_view(hubdb *db, const char *name, int64_t limit, cJSON *out);

/* The name of owner's newest pooling round (the owner's pooled model). OP_ENOTFOUND. */
int hubdb_pool_latest_of(hubdb *db, const char *owner, char name[64]);

/* Rollbacks of a model at its sites (table model_rollbacks): the entry as JSON text. */
int hubdb_rollback_add(hubdb *db, const char *name, int64_t at_ms, const char *entry);
/* The newest `limit` of name's rollbacks, parsed, appended to out. OP_ESTORE. */
int hubdb_rollbacks_view(hubdb *db, const char *name, int64_t limit, cJSON *out);
/* The registry's version of name with that sha256 made at site (newest), or OP_ENOTFOUND. */
int hubdb_model_version_of(hubdb *db, const char *name, const char *sha256, const char *site,
                           int64_t *version);

#endif
