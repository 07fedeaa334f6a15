/*
 * site_db: the site agent's data layer. site.db (SQLite through io/store)
 * and every SQL statement the site runs, as named operations (site_db.c,
 * site_db_artifacts.c); no other file of the site holds SQL or calls store_*
 * or sqlite3_*.
 *
 * Tables (created if missing; a database of an earlier version opens as it
 * is, there has been no migration so far):
 *   meta     key/value: the hub pin (hub_id, hub_pubkey), enrolled, class,
 *            hub_seq, last_hub_contact, next_local_id
 *   jobs     each accepted attempt with its spec; state 'accepted' until its
 *            result is in the outbox, then 'done'
 *   outbox   results until the hub acknowledges them (one per attempt)
 *   leases   the offline lease a signed offer gave an attempt
 *   artifacts  the artifact cache (site_db_artifacts.c): each artifact's size, signed
 *            manifest, the bitmap of chunks held, whether complete, when last used
 *   exceptions  what the site learns from (site_db_learn.c): kind, features (JSON),
 *            planned and actual seconds, when, data class; bounded by pruning
 * The site's own audit log (io/auditlog) lives in the same file.
 *
 * Every write joins the caller's transaction (sitedb_begin...commit): the
 * site's loop commits once per iteration. Errors are OP_ESTORE (logged by
 * the store) unless a function says otherwise.
 */
#ifndef OUTPOST_SITE_DB_H
#define OUTPOST_SITE_DB_H

#include "io/store.h"

#include <stddef.h>
#include <stdint.h>

/* An accepted attempt without a result yet, as sitedb_unfinished_jobs lists it. */
typedef struct sitedb_job_row {
    int64_t job_id, attempt;
    int64_t lease_ms; /* 0: no lease */
    char *spec;       /* malloc'd JSON text: the caller frees it */
} sitedb_job_row;

/* Opens (creating) the site's database at path. OP_ESTORE, OP_ENOMEM. */
int sitedb_open(const char *path, store **out);
void sitedb_close(store *db);

/* The transaction (store.h's nesting rules). */
int sitedb_begin(store *db);
int sitedb_commit(store *db);
void sitedb_rollback(store *db);
int sitedb_in_tx(const store *db);

/* A meta value into out (truncated to out_len). OP_ENOTFOUND when unset. */
int sitedb_meta_get(store *db, const char *key, char *out, size_t out_len);
int sitedb_meta_set(store *db, const char *key, const char *value);

/* Pins the hub (id and hex public key) in its own transaction. */
int sitedb_pin_hub(store *db, const char *hub_id, const char *pk_hex);

/* 1 when (job, attempt) was accepted here before (also when the store fails: never twice). */
int sitedb_job_known(store *db, int64_t job_id, int64_t attempt);
/* Records an accepted attempt and its spec (JSON text). */
int sitedb_job_accept(store *db, int64_t job_id, int64_t attempt, const char *spec,
                      int64_t accepted_at_ms);
/* Forgets an attempt the hub cancelled. */
int sitedb_job_forget(store *db, int64_t job_id, int64_t attempt);
/* Keeps the offline lease of an attempt. */
int sitedb_lease_set(store *db, int64_t job_id, int64_t attempt, int64_t lease_ms);

/*
 * Lists up to max attempts accepted and not done, oldest first, with their
 * leases. *n is the count; the caller frees each row's spec.
 */
int sitedb_unfinished_jobs(store *db, sitedb_job_row *rows, int max, int *n);

/* Puts a result (JSON text) in the outbox, once per attempt, and marks the attempt done. */
int sitedb_result_store(store *db, int64_t job_id, int64_t attempt, const char *body,
                        int64_t created_at_ms);

/*
 * The hub acknowledged (job, attempt): its result leaves the outbox and the
 * done attempt is forgotten. *removed is 1 when an outbox entry went.
 */
int sitedb_result_acked(store *db, int64_t job_id, int64_t attempt, int *removed);

/*
 * Calls fn for each outbox entry created before created_before_ms, oldest
 * first, at most limit, until fn returns nonzero. body is valid during the
 * call only; fn must not write to the store.
 */
typedef int (*sitedb_outbox_fn)(void *ctx, int64_t job_id, const char *body);
int sitedb_outbox_each(store *db, int64_t created_before_ms, int limit, sitedb_outbox_fn fn,
                       void *ctx);

/* The number of results waiting in the outbox. */
int sitedb_outbox_count(store *db, int64_t *count);

/* ---------- the artifact cache (site_db_artifacts.c) ---------- */

/* One artifact as the cache stores it; strings and held valid during the callback only. */
typedef struct sitedb_artifact_row {
    const char *sha256;
    int64_t size_bytes;
    const char *manifest, *sig; /* NULL until the manifest came */
    const uint8_t *held;        /* the bitmap of chunks held, NULL when none */
    size_t held_len;
    int complete;
    int64_t last_used_ms;
} sitedb_artifact_row;

/* Adds or replaces an artifact's row. */
int sitedb_artifact_put(store *db, const sitedb_artifact_row *row);
/* The bitmap of chunks held, and whether the artifact is complete. */
int sitedb_artifact_held(store *db, const char *sha256, const uint8_t *held, size_t held_len,
                         int complete);
/* When the artifact was last used (LRU). */
int sitedb_artifact_touch(store *db, const char *sha256, int64_t last_used_ms);
int sitedb_artifact_delete(store *db, const char *sha256);
/* Calls fn for every artifact row; fn must not write to the store; non-zero stops. */
int sitedb_artifacts_each(store *db, int (*fn)(void *ctx, const sitedb_artifact_row *row),
                          void *ctx);

/* ---------- exceptions (site_db_learn.c) ---------- */

/* One exception; strings valid during a callback only. */
typedef struct sitedb_exception {
    int64_t id;           /* assigned by sitedb_exception_add, increasing */
    const char *kind;     /* "route-leg", "job-duration", "correction" */
    const char *features; /* JSON object text */
    double planned_s, actual_s;
    int64_t at_ms;  /* when it happened (wall clock, ms) */
    int data_class; /* DATA_* of core/jobspec */
} sitedb_exception;

/* Adds one; *id (may be NULL) gets its id. */
int sitedb_exception_add(store *db, const sitedb_exception *e, int64_t *id);
/*
 * Bounds the table: the newest keep_newest rows stay, and of the older ones
 * only those whose id is a multiple of the smallest power of two that
 * leaves at most keep_sample of them: a sample spread evenly over time,
 * the same rows on every run (a row dropped once never comes back, and a
 * row kept at stride 2k was kept at stride k). *removed gets the count.
 */
int sitedb_exceptions_prune(store *db, int64_t keep_newest, int64_t keep_sample, int64_t *removed);
/* Rows of kind (NULL: any), and the highest id (0 when none). */
int sitedb_exceptions_count(store *db, const char *kind, int64_t *count, int64_t *max_id);
/*
 * Calls fn for the rows of kind whose data class is at most max_class, id
 * above after_id, oldest first, until fn returns nonzero; fn must not
 * write to the store.
 */
int sitedb_exceptions_each(store *db, const char *kind, int max_class, int64_t after_id,
                           int (*fn)(void *ctx, const sitedb_exception *e), void *ctx);

#endif
