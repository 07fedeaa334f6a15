#include "hub/hub.h"

#include "base/conf.h"
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/jobstate.h"
#include "core/policy.h"
#include "core/sched.h"
#include "io/auditlog.h"
#include "io/bus.h"
#include "io/keyfile.h"
#include "io/opclient.h"
#include "io/store.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"
#include "wire/token.h"

#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HUB_MAX_OPERATORS 64
#define HUB_PLACE_BATCH 512
#define HUB_OFFER_BATCH_BYTES (1024 * 1024)
#define HUB_MAX_RESULT_BYTES (5 * 1024 * 1024)

static const char *hub_conf_keys[] = {
    "hub_id",    "broker_host",      "broker_port",   "site_lost_after_ms",
    "lease_ms",  "offline_lease_ms", "clock_skew_ms", "max_queued_jobs",
    "log_level", "token_ttl_s",      "audit_head_ms", "fleet_index_from",
    NULL};

static const char *hub_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS sites(id TEXT PRIMARY KEY, pubkey TEXT NOT NULL,"
    " class TEXT NOT NULL, trust INTEGER NOT NULL DEFAULT 50, enrolled_at INTEGER NOT NULL,"
    " token_id TEXT, last_seq INTEGER NOT NULL DEFAULT 0, cores INTEGER DEFAULT 0,"
    " memory_mb INTEGER DEFAULT 0, power_budget_watts REAL DEFAULT 0,"
    " watts_per_core REAL DEFAULT 0, idle_watts REAL DEFAULT 0, protections_off TEXT);"
    "CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, class TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, created_by TEXT,"
    " used_at INTEGER, used_by TEXT);"
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, name TEXT, kind TEXT NOT NULL,"
    " spec TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, site TEXT,"
    " cores INTEGER NOT NULL, memory_mb INTEGER NOT NULL, class_mask INTEGER NOT NULL,"
    " origin TEXT, site_private INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
    " submitted_by TEXT, submitted_at INTEGER, placed_at INTEGER, started_at INTEGER,"
    " finished_at INTEGER, lease_expires_at INTEGER, reason TEXT, explanation TEXT,"
    " excluded TEXT NOT NULL DEFAULT '', notify TEXT,"
    " awaiting_approval INTEGER NOT NULL DEFAULT 0, program TEXT,"
    " data_class INTEGER NOT NULL DEFAULT 0, expected_ms INTEGER NOT NULL DEFAULT 0,"
    " deadline_at INTEGER NOT NULL DEFAULT 0, may_defer INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);"
    "CREATE INDEX IF NOT EXISTS jobs_site ON jobs(site, state);"
    "CREATE TABLE IF NOT EXISTS results(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " site TEXT NOT NULL, received_at INTEGER NOT NULL, applied INTEGER NOT NULL,"
    " exit_code INTEGER, cpu_seconds REAL, peak_rss_bytes INTEGER, wall_ms INTEGER,"
    " energy_joules REAL, body TEXT NOT NULL, PRIMARY KEY(job_id, attempt));"
    "CREATE TABLE IF NOT EXISTS checkpoints(job_id INTEGER PRIMARY KEY, attempt INTEGER NOT"
    " NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, data_b64 TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS local_jobs(site TEXT NOT NULL, local_id INTEGER NOT NULL,"
    " job_id INTEGER NOT NULL, PRIMARY KEY(site, local_id));"
    "CREATE TABLE IF NOT EXISTS job_events(job_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " attempt INTEGER, site TEXT, event TEXT NOT NULL, detail TEXT);"
    "CREATE INDEX IF NOT EXISTS job_events_job ON job_events(job_id);";

/* A site as the hub knows it: registry (durable) plus live view (memory). */
typedef struct hub_site {
    char id[64];
    uint8_t pk[32];
    unsigned class_bit;
    int trust;
    msg_window window;
    uint64_t persisted_seq;
    int alive;
    int heard; /* heartbeat received since this hub started */
    int64_t last_heartbeat_mono;
    int64_t last_heartbeat_wall;
    int cores;
    int64_t memory_mb;
    double power_budget_watts;
    double watts_per_core;
    double idle_watts;
    int reserved_cores; /* cores of jobs placed or running here */
    int64_t reserved_memory_mb;
    int reserved_jobs;
    int reported_running;
    /* power as the site reports it in each heartbeat (issue 3), memory only */
    int has_forecast;
    float forecast_watts[SCHED_HORIZONS]; /* least forecast envelope over each horizon */
    int64_t stay_until_ms;
    double grid_rank;
    int region;
    uint64_t attempts_placed, attempts_lost; /* the failure rate the scheduler sees */
    char protections_off[128];
    cJSON *messages;         /* the site's own message counters, from its heartbeat */
    uint64_t witnessed_size; /* size of the site's last signed audit head logged here */
    cJSON *offers;           /* batched for this iteration, sent after commit */
    size_t offers_bytes;
    cJSON *acks;
    cJSON *cancels;
} hub_site;

typedef struct hub_operator {
    char id[64];
    uint8_t pk[32];
    msg_window window;
    cJSON *done; /* final states for submit --wait, sent after commit */
} hub_operator;

typedef struct hub_reply {
    char topic[PROTO_TOPIC_MAX];
    cJSON *body;
    const char *type;
    struct hub_reply *next;
} hub_reply;

typedef struct hub {
    ident identity;
    char data_dir[PATH_MAX];
    store *db;
    bus *bus;
    char broker_host[256];
    int64_t broker_port;
    int64_t site_lost_after_ms;
    int64_t lease_ms;
    int64_t offline_lease_ms; /* how long a site may run a job without word from the hub */
    int64_t fleet_index_from; /* place through sched_fleet from this many sites (else scan) */
    int64_t clock_skew_ms;
    int64_t max_queued_jobs;
    int64_t token_ttl_s;
    hub_site *sites;
    size_t n_sites, cap_sites;
    hub_operator operators[HUB_MAX_OPERATORS];
    int n_operators;
    msg_stats msg;
    hub_reply *replies, *replies_tail;
    int placement_dirty;
    int store_failed;
    int64_t next_check_ms;
    int64_t next_place_ms;
    int64_t next_seq_flush_ms;
    uint64_t results_applied, results_duplicate, results_stale, jobs_submitted, offers_sent;
    uint64_t bound_hits;
    auditlog *audit; /* tamper-evident record of every decision, in hub.db */
    policy *policy;  /* <data-dir>/policy, or NULL: no rules beyond the built-in filters */
    char *policy_text;
    int64_t next_head_ms, audit_head_ms;
    uint64_t head_size; /* size of the last signed tree head */
    audit_sth head;     /* the last signed tree head, sent to sites with acknowledgements */
    uint64_t commits;   /* loop transactions committed, and their time in fsync'd COMMIT */
    int64_t commit_us;
} hub;

/* ---------- fleet registry ---------- */

/*
 * Columns added after a hub's database was first created (CREATE TABLE IF
 * NOT EXISTS leaves an existing table alone): added when missing.
 */
static int migrate(hub *h)
{
    static const char *added[][2] = {{"expected_ms", "INTEGER NOT NULL DEFAULT 0"},
                                     {"deadline_at", "INTEGER NOT NULL DEFAULT 0"},
                                     {"may_defer", "INTEGER NOT NULL DEFAULT 0"}};
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
        if (store_has_column(h->db, "jobs", added[i][0])) continue;
        char sql[200];
        snprintf(sql, sizeof sql, "ALTER TABLE jobs ADD COLUMN %s %s", added[i][0], added[i][1]);
        if (store_exec(h->db, sql) != OP_OK) {
            log_error("hub", "cannot add column jobs.%s", added[i][0]);
            return OP_ESTORE;
        }
        log_info("hub", "database: added column jobs.%s", added[i][0]);
    }
    return OP_OK;
}

static hub_site *find_site(hub *h, const char *id)
{
    for (size_t i = 0; i < h->n_sites; i++)
        if (strcmp(h->sites[i].id, id) == 0) return &h->sites[i];
    return NULL;
}

static hub_site *add_site(hub *h, const char *id)
{
    if (h->n_sites == h->cap_sites) {
        size_t cap = h->cap_sites ? h->cap_sites * 2 : 16;
        hub_site *grown = realloc(h->sites, cap * sizeof *grown);
        if (!grown) return NULL;
        h->sites = grown;
        h->cap_sites = cap;
    }
    hub_site *s = &h->sites[h->n_sites++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->trust = 50;
    return s;
}

static int load_sites(hub *h)
{
    sqlite3_stmt *st =
        store_stmt(h->db, "SELECT id, pubkey, class, trust, last_seq, cores, memory_mb,"
                          " power_budget_watts, watts_per_core, idle_watts,"
                          " protections_off FROM sites ORDER BY id");
    if (!st) return OP_ESTORE;
    int64_t now = os_mono_ms();
    while (sqlite3_step(st) == SQLITE_ROW) {
        hub_site *s = add_site(h, store_col_text(st, 0));
        if (!s) return OP_ENOMEM;
        if (util_unhex(store_col_text(st, 1), s->pk, 32) != OP_OK) {
            log_error("hub", "site %s has a corrupt public key in the registry; skipped", s->id);
            h->n_sites--;
            continue;
        }
        s->class_bit = jobspec_class_bit(store_col_text(st, 2));
        s->trust = sqlite3_column_int(st, 3);
        s->persisted_seq = (uint64_t)sqlite3_column_int64(st, 4);
        msg_window_restore(&s->window, s->persisted_seq);
        s->cores = sqlite3_column_int(st, 5);
        s->memory_mb = sqlite3_column_int64(st, 6);
        s->power_budget_watts = sqlite3_column_double(st, 7);
        s->watts_per_core = sqlite3_column_double(st, 8);
        s->idle_watts = sqlite3_column_double(st, 9);
        snprintf(s->protections_off, sizeof s->protections_off, "%s", store_col_text(st, 10));
        /* Grace period: every known site is presumed alive until it stays silent. */
        s->alive = 1;
        s->last_heartbeat_mono = now;
    }
    sqlite3_reset(st);
    st = store_stmt(h->db, "SELECT site, SUM(cores), SUM(memory_mb), COUNT(*) FROM jobs"
                           " WHERE state IN ('placed','running') GROUP BY site");
    if (!st) return OP_ESTORE;
    while (sqlite3_step(st) == SQLITE_ROW) {
        hub_site *s = find_site(h, store_col_text(st, 0));
        if (!s) continue;
        s->reserved_cores = sqlite3_column_int(st, 1);
        s->reserved_memory_mb = sqlite3_column_int64(st, 2);
        s->reserved_jobs = sqlite3_column_int(st, 3);
    }
    sqlite3_reset(st);
    return OP_OK;
}

/* Operators: "<64 hex public key> [comment]" per line; id = "op-" + first 16 hex digits. */
static int load_operators(hub *h)
{
    char path[PATH_MAX], *text = NULL;
    if (util_fmt(path, sizeof path, "%s/operators", h->data_dir) != OP_OK) return OP_ETOOBIG;
    int rc = os_read_file(path, 64 * 1024, &text, NULL);
    if (rc != OP_OK) {
        log_error("hub", "cannot read %s: %s", path, op_strerror(rc));
        return rc;
    }
    h->n_operators = 0;
    int line_no = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        line_no++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '#' || *line == '\0') continue;
        char hex[65] = {0};
        memcpy(hex, line, strnlen(line, 64));
        if (h->n_operators == HUB_MAX_OPERATORS) {
            log_warn("hub", "%s: more than %d operators; the rest ignored", path,
                     HUB_MAX_OPERATORS);
            break;
        }
        hub_operator *op = &h->operators[h->n_operators];
        memset(op, 0, sizeof *op);
        if (util_unhex(hex, op->pk, 32) != OP_OK) {
            log_warn("hub", "%s:%d: not a 64-hex-digit public key; ignored", path, line_no);
            continue;
        }
        opclient_id(hex, op->id);
        h->n_operators++;
    }
    free(text);
    log_info("hub", "%d operator key(s) authorized from %s", h->n_operators, path);
    return OP_OK;
}

/* ---------- message authentication ---------- */

static int lookup_site(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    hub_site *s = find_site(ctx, kid);
    if (!s) return OP_EUNKNOWN;
    *pk = s->pk;
    *window = &s->window;
    return OP_OK;
}

static int lookup_operator(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    hub *h = ctx;
    for (int i = 0; i < h->n_operators; i++)
        if (strcmp(h->operators[i].id, kid) == 0) {
            *pk = h->operators[i].pk;
            *window = &h->operators[i].window;
            return OP_OK;
        }
    return OP_EUNKNOWN;
}

/* ---------- outgoing messages (sent after commit) ---------- */

static void queue_reply(hub *h, const char *realm, const char *id, const char *leaf, cJSON *body,
                        const char *type)
{
    hub_reply *r = calloc(1, sizeof *r);
    if (!r || proto_topic(r->topic, sizeof r->topic, realm, id, leaf) != OP_OK) {
        free(r);
        cJSON_Delete(body);
        h->bound_hits++;
        return;
    }
    r->body = body;
    r->type = type;
    if (h->replies_tail)
        h->replies_tail->next = r;
    else
        h->replies = r;
    h->replies_tail = r;
}

static void add_to_batch(cJSON **batch, cJSON *item)
{
    if (!*batch) *batch = cJSON_CreateArray();
    if (*batch)
        cJSON_AddItemToArray(*batch, item);
    else
        cJSON_Delete(item);
}

static void flush_site_batches(hub *h, hub_site *s)
{
    char topic[PROTO_TOPIC_MAX];
    if (proto_topic(topic, sizeof topic, "site", s->id, "inbox") != OP_OK) return;
    struct {
        cJSON **batch;
        const char *key;
        const char *type;
    } kinds[] = {
        {&s->offers, "jobs", "offer"}, {&s->acks, "acks", "ack"}, {&s->cancels, "jobs", "cancel"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!*kinds[k].batch) continue;
        cJSON *body = cJSON_CreateObject();
        if (body) {
            cJSON_AddItemToObject(body, kinds[k].key, *kinds[k].batch);
            if (k == 1 && h->head.size > 0)
                cJSON_AddItemToObject(body, "hub_head", auditlog_head_to_json(&h->head));
            if (bus_publish(h->bus, topic, body, kinds[k].type) != OP_OK)
                log_warn("hub", "could not send %s to %s now; the protocol will retry",
                         kinds[k].type, s->id);
            else if (k == 0)
                h->offers_sent++;
            cJSON_Delete(body);
        } else {
            cJSON_Delete(*kinds[k].batch);
        }
        *kinds[k].batch = NULL;
    }
    s->offers_bytes = 0;
}

static void flush_outgoing(hub *h)
{
    for (size_t i = 0; i < h->n_sites; i++)
        flush_site_batches(h, &h->sites[i]);
    for (int i = 0; i < h->n_operators; i++) {
        hub_operator *op = &h->operators[i];
        if (!op->done) continue;
        char topic[PROTO_TOPIC_MAX];
        cJSON *body = cJSON_CreateObject();
        if (body && proto_topic(topic, sizeof topic, "op", op->id, "resp") == OP_OK) {
            cJSON_AddItemToObject(body, "jobs", op->done);
            op->done = NULL;
            if (bus_publish(h->bus, topic, body, "done") != OP_OK)
                log_warn("hub", "could not notify %s of finished jobs", op->id);
        }
        cJSON_Delete(body);
        cJSON_Delete(op->done);
        op->done = NULL;
    }
    while (h->replies) {
        hub_reply *r = h->replies;
        h->replies = r->next;
        if (bus_publish(h->bus, r->topic, r->body, r->type) != OP_OK)
            log_warn("hub", "could not publish %s on %s", r->type, r->topic);
        cJSON_Delete(r->body);
        free(r);
    }
    h->replies_tail = NULL;
}

/* Drops what was batched for a transaction that did not commit. */
static void discard_outgoing(hub *h)
{
    for (int i = 0; i < h->n_operators; i++) {
        cJSON_Delete(h->operators[i].done);
        h->operators[i].done = NULL;
    }
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        cJSON_Delete(s->offers);
        cJSON_Delete(s->acks);
        cJSON_Delete(s->cancels);
        s->offers = s->acks = s->cancels = NULL;
        s->offers_bytes = 0;
    }
    while (h->replies) {
        hub_reply *r = h->replies;
        h->replies = r->next;
        cJSON_Delete(r->body);
        free(r);
    }
    h->replies_tail = NULL;
}

/* ---------- job store helpers ---------- */

static int check_rc(hub *h, int rc)
{
    if (rc != OP_OK) h->store_failed = 1;
    return rc;
}

/* Appends to the audit log in the loop's transaction: it commits with the state it records. */
static void audit_record(hub *h, const char *kind, const char *subject, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!h->audit) {
        free(text);
        return;
    }
    if (!text || auditlog_append(h->audit, os_now_ms(), kind, subject, text, NULL) != OP_OK)
        h->store_failed = 1;
    free(text);
}

/* Signs a tree head over everything logged so far (when something was). */
static void audit_sign_head(hub *h)
{
    audit_sth head;
    if (!h->audit || auditlog_size(h->audit) == h->head_size) return;
    if (auditlog_sign_head(h->audit, &h->identity, os_now_ms(), &head) == OP_OK) {
        h->head_size = head.size;
        h->head = head;
    } else
        h->store_failed = 1;
}

static void job_event(hub *h, int64_t job_id, int64_t attempt, const char *site, const char *event,
                      const char *detail)
{
    char subject[40];
    snprintf(subject, sizeof subject, "job:%lld", (long long)job_id);
    cJSON *body = cJSON_CreateObject();
    if (body) {
        jsonx_add_int(body, "job", job_id);
        jsonx_add_int(body, "attempt", attempt);
        if (site) cJSON_AddStringToObject(body, "site", site);
        if (detail) cJSON_AddStringToObject(body, "detail", detail);
    }
    audit_record(h, event, subject, body);
    sqlite3_stmt *st = store_stmt(h->db, "INSERT INTO job_events(job_id, ts, attempt, site,"
                                         " event, detail) VALUES(?,?,?,?,?,?)");
    if (!st) {
        h->store_failed = 1;
        return;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, os_now_ms());
    sqlite3_bind_int64(st, 3, attempt);
    store_bind_text(st, 4, site);
    store_bind_text(st, 5, event);
    store_bind_text(st, 6, detail);
    check_rc(h, store_step_done(h->db, st));
}

static void attach_checkpoint(hub *h, int64_t job_id, cJSON *spec);

static void release(hub *h, const char *site_id, int cores, int64_t memory_mb)
{
    hub_site *s = find_site(h, site_id);
    if (!s) return;
    s->reserved_cores -= cores;
    s->reserved_memory_mb -= memory_mb;
    s->reserved_jobs--;
    if (s->reserved_cores < 0) s->reserved_cores = 0;
    if (s->reserved_memory_mb < 0) s->reserved_memory_mb = 0;
    if (s->reserved_jobs < 0) s->reserved_jobs = 0;
    h->placement_dirty = 1;
}

/* Tells the operator who asked for it (submit --wait) that a job reached a final state. */
static void notify_terminal(hub *h, int64_t job_id, const char *state)
{
    sqlite3_stmt *st = store_stmt(h->db, "SELECT notify FROM jobs WHERE id=? AND notify IS NOT"
                                         " NULL");
    if (!st) return;
    sqlite3_bind_int64(st, 1, job_id);
    char op_id[64] = "";
    if (sqlite3_step(st) == SQLITE_ROW) snprintf(op_id, sizeof op_id, "%s", store_col_text(st, 0));
    sqlite3_reset(st);
    if (!op_id[0]) return;
    for (int i = 0; i < h->n_operators; i++) {
        if (strcmp(h->operators[i].id, op_id) != 0) continue;
        cJSON *d = cJSON_CreateObject();
        if (!d) return;
        jsonx_add_int(d, "job", job_id);
        cJSON_AddStringToObject(d, "state", state);
        add_to_batch(&h->operators[i].done, d); /* one signed message per operator per batch */
        return;
    }
}

/*
 * Takes a placed or running job back from its site (site lost, lease
 * expired, refused, retryable error): queued again for another attempt, or
 * failed when its attempts are used up. exclude adds the site to the
 * job's excluded list (it refused the job); lost counts the attempt against
 * the site's reliability (it was lost, expired or handed back, not refused).
 */
static void requeue(hub *h, int64_t job_id, const char *why, int exclude, int lost)
{
    sqlite3_stmt *st = store_stmt(h->db, "SELECT attempt, max_attempts, site, cores, memory_mb,"
                                         " excluded, state FROM jobs WHERE id=?");
    if (!st) {
        h->store_failed = 1;
        return;
    }
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return;
    }
    int64_t attempt = sqlite3_column_int64(st, 0);
    int64_t max_attempts = sqlite3_column_int64(st, 1);
    char site[64], excluded[1024];
    snprintf(site, sizeof site, "%s", store_col_text(st, 2));
    int cores = sqlite3_column_int(st, 3);
    int64_t memory_mb = sqlite3_column_int64(st, 4);
    snprintf(excluded, sizeof excluded, "%s", store_col_text(st, 5));
    int state = jobstate_parse(store_col_text(st, 6)), next;
    sqlite3_reset(st);
    if (jobstate_next(state, attempt, max_attempts, JOB_EV_TAKEN_BACK, &next) != OP_OK) return;
    size_t used = strlen(excluded);
    if (exclude && used + strlen(site) + 2 < sizeof excluded)
        snprintf(excluded + used, sizeof excluded - used, "%s%s", used ? " " : "", site);
    int give_up = next == JOB_FAILED;
    st = store_stmt(h->db, "UPDATE jobs SET state=?, reason=?, excluded=?, lease_expires_at=NULL,"
                           " finished_at=? WHERE id=?");
    if (!st) {
        h->store_failed = 1;
        return;
    }
    char reason[256];
    snprintf(reason, sizeof reason, "%s%s", why,
             give_up ? "; no attempts left" : "; queued for another attempt");
    sqlite3_bind_text(st, 1, jobstate_name(next), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, excluded, -1, SQLITE_TRANSIENT);
    if (give_up)
        sqlite3_bind_int64(st, 4, os_now_ms());
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, job_id);
    check_rc(h, store_step_done(h->db, st));
    job_event(h, job_id, attempt, site, give_up ? "failed" : "requeued", reason);
    release(h, site, cores, memory_mb);
    hub_site *where = lost ? find_site(h, site) : NULL;
    if (where) where->attempts_lost++;
    if (give_up) notify_terminal(h, job_id, "failed");
    log_info("hub", "job %lld attempt %lld taken back from %s: %s", (long long)job_id,
             (long long)attempt, site, reason);
}

/* ---------- fleet view and placement ---------- */

static void fill_view(hub *h, sched_site *view, int optimistic)
{
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        sched_site *v = &view[i];
        v->id = s->id;
        v->class_bit = s->class_bit;
        v->alive = optimistic ? 1 : s->alive;
        v->cores = s->cores;
        v->memory_mb = s->memory_mb;
        v->watts_per_core = s->watts_per_core;
        v->free_cores = optimistic ? s->cores : s->cores - s->reserved_cores;
        v->free_memory_mb = optimistic ? s->memory_mb : s->memory_mb - s->reserved_memory_mb;
        /* a job's draw comes on top of the site's idle draw */
        v->headroom_watts = s->power_budget_watts - s->idle_watts -
                            (optimistic ? 0 : s->reserved_cores * s->watts_per_core);
        v->running_jobs = optimistic ? 0 : s->reserved_jobs;
        v->region = s->region;
        v->grid_rank = optimistic ? 0 : s->grid_rank;
        v->stay_until_ms = optimistic ? 0 : s->stay_until_ms;
        v->failure_rate =
            s->attempts_placed ? (double)s->attempts_lost / (double)s->attempts_placed : 0;
        v->has_forecast = !optimistic && s->has_forecast;
        /* like headroom_watts: the envelope less what is placed or running here */
        double committed = s->idle_watts + s->reserved_cores * s->watts_per_core;
        for (int k = 0; k < SCHED_HORIZONS; k++)
            v->horizon_watts[k] = (float)(s->forecast_watts[k] - committed);
    }
}

static void split_excluded(char *text, const char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(text, " "); tok && n < max - 1; tok = strtok(NULL, " "))
        out[n++] = tok;
    out[n] = NULL;
}

typedef struct policy_ctx {
    hub *h;
    const jobspec *spec;
    int64_t now_ms;
} policy_ctx;

/* sched_allow_fn over the hub's policy: the job's draw there is its cores x watts per core. */
static int policy_allows(void *ctx, const sched_site *site, char *why, size_t why_len)
{
    policy_ctx *pc = ctx;
    return policy_check_site(pc->h->policy, pc->spec, site->id, site->class_bit, pc->now_ms,
                             site->watts_per_core * pc->spec->cores, why, why_len);
}

static void place_queued(hub *h)
{
    if (h->n_sites == 0) return;
    sched_site *view = calloc(h->n_sites, sizeof *view);
    if (!view) return;
    fill_view(h, view, 0);
    /*
     * Large fleets: the index (a few exact checks per decision, a compact explanation);
     * small ones: the full scan, which names every site it filtered out.
     */
    sched_fleet *index =
        (int64_t)h->n_sites >= h->fleet_index_from ? sched_fleet_new(view, h->n_sites) : NULL;
    sqlite3_stmt *sel = store_stmt(h->db, "SELECT id, attempt, cores, memory_mb, class_mask,"
                                          " origin, site_private, excluded, spec, explanation,"
                                          " kind, program, data_class, expected_ms,"
                                          " deadline_at, may_defer"
                                          " FROM jobs WHERE state='queued' AND"
                                          " awaiting_approval=0 ORDER BY id LIMIT ?");
    if (!sel) {
        sched_fleet_free(index);
        free(view);
        h->store_failed = 1;
        return;
    }
    sqlite3_bind_int(sel, 1, HUB_PLACE_BATCH);
    /* Collect first: the UPDATE statements below must not run while sel is mid-step. */
    typedef struct pending {
        int64_t id, attempt;
        int site_index;
        int outcome;
        int cores;
        int64_t memory_mb;
        char *explanation;
        char *spec;
    } pending;
    pending *todo = calloc(HUB_PLACE_BATCH, sizeof *todo);
    int n_todo = 0;
    int64_t now = os_now_ms();
    while (todo && sqlite3_step(sel) == SQLITE_ROW) {
        char excluded_text[1024];
        const char *excluded[64];
        snprintf(excluded_text, sizeof excluded_text, "%s", store_col_text(sel, 7));
        split_excluded(excluded_text, excluded, 64);
        sched_job job = {.cores = sqlite3_column_int(sel, 2),
                         .memory_mb = sqlite3_column_int64(sel, 3),
                         .class_mask = (unsigned)sqlite3_column_int(sel, 4),
                         .origin = store_col_text(sel, 5),
                         .site_private = sqlite3_column_int(sel, 6),
                         .excluded = excluded,
                         .origin_index = -1,
                         .origin_region = -1,
                         .now_ms = now,
                         .duration_ms = sqlite3_column_int64(sel, 13),
                         .deadline_ms = sqlite3_column_int64(sel, 14),
                         .deferrable = sqlite3_column_int(sel, 15)};
        hub_site *from = job.origin[0] ? find_site(h, job.origin) : NULL;
        if (from) {
            job.origin_region = from->region;
            job.origin_index = (int)(from - h->sites);
        }
        /*
         * What the policy looks at, from the row's columns: re-parsing the spec here would
         * decode every queued job's inputs (up to 4 MiB each) on every placement pass.
         */
        jobspec spec;
        memset(&spec, 0, sizeof spec);
        char program[JOBSPEC_MAX_ARG_BYTES];
        snprintf(program, sizeof program, "%s", store_col_text(sel, 11));
        spec.kind = jobspec_kind_of(store_col_text(sel, 10));
        spec.argv[0] = program[0] ? program : NULL;
        spec.argc = program[0] ? 1 : 0;
        spec.cores = job.cores;
        spec.memory_mb = job.memory_mb;
        spec.class_mask = job.class_mask;
        spec.data_class = sqlite3_column_int(sel, 12);
        snprintf(spec.origin, sizeof spec.origin, "%s", job.origin);
        policy_ctx pc = {h, &spec, now};
        if (h->policy) {
            job.allowed = policy_allows;
            job.allowed_ctx = &pc;
        }
        sched_decision d;
        if ((index ? sched_fleet_place(index, &job, 1, &d)
                   : sched_place(view, h->n_sites, &job, &d)) != OP_OK)
            break;
        pending *p = &todo[n_todo];
        p->id = sqlite3_column_int64(sel, 0);
        p->attempt = sqlite3_column_int64(sel, 1) + 1;
        p->outcome = d.outcome;
        p->site_index = d.site_index;
        p->cores = job.cores;
        p->memory_mb = job.memory_mb;
        if (d.outcome == SCHED_WAIT && strcmp(store_col_text(sel, 9), d.explanation) == 0) {
            sched_decision_clear(&d); /* nothing new to record */
            continue;
        }
        p->explanation = d.explanation;
        if (d.outcome == SCHED_PLACED) {
            p->spec = strdup(store_col_text(sel, 8));
            if (index)
                sched_fleet_reserve(index, (size_t)d.site_index, &job);
            else
                sched_reserve(&view[d.site_index], &job);
            /* Bound one iteration's offer message per site; the rest go next iteration. */
            hub_site *target = &h->sites[d.site_index];
            target->offers_bytes += strlen(p->spec);
            if (target->offers_bytes >= HUB_OFFER_BATCH_BYTES) {
                view[d.site_index].free_cores = 0;
                if (index) sched_fleet_update(index, (size_t)d.site_index);
                h->placement_dirty = 1;
            }
        }
        n_todo++;
    }
    sqlite3_reset(sel);
    for (int i = 0; i < n_todo; i++) {
        pending *p = &todo[i];
        if (p->outcome == SCHED_PLACED && p->spec) {
            hub_site *s = &h->sites[p->site_index];
            sqlite3_stmt *up = store_stmt(h->db, "UPDATE jobs SET state='placed', attempt=?,"
                                                 " site=?, placed_at=?, lease_expires_at=?,"
                                                 " explanation=?, reason=NULL WHERE id=?");
            if (!up) {
                h->store_failed = 1;
                break;
            }
            sqlite3_bind_int64(up, 1, p->attempt);
            sqlite3_bind_text(up, 2, s->id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(up, 3, now);
            sqlite3_bind_int64(up, 4, now + h->lease_ms);
            sqlite3_bind_text(up, 5, p->explanation, -1, SQLITE_STATIC);
            sqlite3_bind_int64(up, 6, p->id);
            if (check_rc(h, store_step_done(h->db, up)) != OP_OK) break;
            job_event(h, p->id, p->attempt, s->id, "placed", p->explanation);
            s->reserved_cores += p->cores;
            s->reserved_memory_mb += p->memory_mb;
            s->reserved_jobs++;
            s->attempts_placed++;
            cJSON *offer = cJSON_CreateObject();
            if (offer) {
                jsonx_add_int(offer, "job", p->id);
                jsonx_add_int(offer, "attempt", p->attempt);
                jsonx_add_int(offer, "lease_ms", h->offline_lease_ms);
                cJSON *spec = cJSON_Parse(p->spec);
                if (spec && p->attempt > 1) attach_checkpoint(h, p->id, spec);
                if (spec) cJSON_AddItemToObject(offer, "spec", spec);
                add_to_batch(&s->offers, offer);
            }
            log_debug("hub", "job %lld -> %s: %s", (long long)p->id, s->id, p->explanation);
        } else if (p->outcome == SCHED_IMPOSSIBLE) {
            sqlite3_stmt *up = store_stmt(h->db, "UPDATE jobs SET state='failed', reason=?,"
                                                 " explanation=?, finished_at=? WHERE id=?");
            if (!up) {
                h->store_failed = 1;
                break;
            }
            sqlite3_bind_text(up, 1,
                              strstr(p->explanation, "deadline cannot be met")
                                  ? "its deadline can no longer be met"
                                  : "no site in the fleet can run it",
                              -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 2, p->explanation, -1, SQLITE_STATIC);
            sqlite3_bind_int64(up, 3, now);
            sqlite3_bind_int64(up, 4, p->id);
            check_rc(h, store_step_done(h->db, up));
            job_event(h, p->id, p->attempt - 1, NULL, "failed", p->explanation);
            notify_terminal(h, p->id, "failed");
        } else {
            sqlite3_stmt *up = store_stmt(h->db, "UPDATE jobs SET explanation=? WHERE id=?");
            if (!up) {
                h->store_failed = 1;
                break;
            }
            sqlite3_bind_text(up, 1, p->explanation, -1, SQLITE_STATIC);
            sqlite3_bind_int64(up, 2, p->id);
            check_rc(h, store_step_done(h->db, up));
        }
    }
    for (int i = 0; i < n_todo; i++) {
        free(todo[i].explanation);
        free(todo[i].spec);
    }
    free(todo);
    sched_fleet_free(index);
    free(view);
}

/* ---------- liveness and leases ---------- */

static void take_back_from_site(hub *h, const char *site_id, const char *why)
{
    int64_t ids[HUB_PLACE_BATCH];
    int n = 0;
    sqlite3_stmt *st = store_stmt(h->db, "SELECT id FROM jobs WHERE site=? AND state IN"
                                         " ('placed','running') LIMIT ?");
    if (!st) {
        h->store_failed = 1;
        return;
    }
    sqlite3_bind_text(st, 1, site_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, HUB_PLACE_BATCH);
    while (sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    for (int i = 0; i < n; i++)
        requeue(h, ids[i], why, 0, 1);
}

static void check_fleet(hub *h)
{
    int64_t now_mono = os_mono_ms();
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        if (!s->alive || now_mono - s->last_heartbeat_mono <= h->site_lost_after_ms) continue;
        s->alive = 0;
        char why[128];
        snprintf(why, sizeof why, "site %s lost (silent for %lld ms)", s->id,
                 (long long)(now_mono - s->last_heartbeat_mono));
        log_warn("hub", "%s", why);
        char subject[80];
        snprintf(subject, sizeof subject, "site:%s", s->id);
        cJSON *body = cJSON_CreateObject();
        if (body) cJSON_AddStringToObject(body, "detail", why);
        audit_record(h, "site-lost", subject, body);
        take_back_from_site(h, s->id, why);
    }
    int64_t ids[HUB_PLACE_BATCH];
    int n = 0;
    sqlite3_stmt *st = store_stmt(h->db, "SELECT id FROM jobs WHERE state IN ('placed','running')"
                                         " AND lease_expires_at < ? LIMIT ?");
    if (!st) {
        h->store_failed = 1;
        return;
    }
    sqlite3_bind_int64(st, 1, os_now_ms());
    sqlite3_bind_int(st, 2, HUB_PLACE_BATCH);
    while (sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    for (int i = 0; i < n; i++)
        requeue(h, ids[i], "lease expired (site did not confirm it)", 0, 1);
}

static void flush_seqs(hub *h)
{
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        if (s->window.top == s->persisted_seq) continue;
        sqlite3_stmt *st = store_stmt(h->db, "UPDATE sites SET last_seq=? WHERE id=?");
        if (!st) return;
        sqlite3_bind_int64(st, 1, (int64_t)s->window.top);
        sqlite3_bind_text(st, 2, s->id, -1, SQLITE_STATIC);
        if (store_step_done(h->db, st) == OP_OK) s->persisted_seq = s->window.top;
    }
}

/* ---------- site messages ---------- */

static void send_enroll_refusal(hub *h, const char *site_id, const char *reason)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "reason", reason);
    queue_reply(h, "site", site_id, "inbox", body, "refused");
}

static void send_welcome(hub *h, hub_site *s)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "class", jobspec_class_name(s->class_bit));
    jsonx_add_int(body, "lease_ms", h->lease_ms);
    queue_reply(h, "site", s->id, "inbox", body, "welcome");
}

/*
 * Enrollment of a site the hub does not know yet. The hello is signed by
 * the key it carries (proof of possession); the token, signed by this hub,
 * says which class the site gets and can be used once.
 */
static void update_site_capacity(hub *h, hub_site *s, const cJSON *body);

static void enroll(hub *h, const char *site_id, const char *topic, const void *payload, size_t len,
                   const char *kid, const char *sig)
{
    cJSON *body = NULL;
    msg_header hdr;
    uint8_t pk[32];
    char reason[256];
    if (!kid || !sig) {
        h->msg.unsigned_msgs++;
        log_warn("hub", "dropped unsigned hello on %s", topic);
        return;
    }
    if (msg_parse(payload, len, &body, &hdr) != OP_OK) {
        h->msg.malformed++;
        log_warn("hub", "dropped malformed hello on %s", topic);
        return;
    }
    const char *pk_hex = jsonx_str(body, "pubkey");
    const char *token_text = jsonx_str(body, "token");
    if (!pk_hex || util_unhex(pk_hex, pk, 32) != OP_OK ||
        msg_verify(pk, topic, payload, len, sig) != OP_OK || strcmp(kid, site_id) != 0 ||
        strcmp(hdr.from, site_id) != 0) {
        h->msg.forged++;
        log_warn("hub", "dropped hello for %s: signature does not match the key it carries",
                 site_id);
        goto out;
    }
    int64_t now = os_now_ms();
    if (hdr.ts_ms < now - h->clock_skew_ms || hdr.ts_ms > now + h->clock_skew_ms) {
        h->msg.expired++;
        log_warn("hub", "dropped hello from %s: timestamp off by %lld ms", site_id,
                 (long long)(hdr.ts_ms - now));
        goto out;
    }
    if (!token_text) {
        send_enroll_refusal(h, site_id,
                            "unknown site and no join token: run "
                            "`outpost token create --class CLASS` and start the "
                            "site with --token");
        log_warn("hub", "refused site %s: unknown and no token", site_id);
        goto out;
    }
    token tok;
    int rc = token_verify(token_text, h->identity.pk, now, &tok, reason, sizeof reason);
    if (rc == OP_OK) {
        sqlite3_stmt *st = store_stmt(h->db, "SELECT used_by FROM tokens WHERE id=?");
        if (!st) goto out;
        sqlite3_bind_text(st, 1, tok.tid, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        int known = step == SQLITE_ROW;
        int used = known && sqlite3_column_type(st, 0) != SQLITE_NULL;
        char used_by[64];
        snprintf(used_by, sizeof used_by, "%s", known ? store_col_text(st, 0) : "");
        sqlite3_reset(st);
        if (!known) {
            snprintf(reason, sizeof reason, "token was not issued by this hub's registry");
            rc = OP_ESIG;
        } else if (used) {
            snprintf(reason, sizeof reason, "token already used (by site %s); create a new one",
                     used_by);
            rc = OP_EUSED;
        }
    }
    if (rc != OP_OK) {
        send_enroll_refusal(h, site_id, reason);
        log_warn("hub", "refused enrollment of %s: %s", site_id, reason);
        goto out;
    }
    hub_site *s = add_site(h, site_id);
    if (!s) goto out;
    memcpy(s->pk, pk, 32);
    s->class_bit = jobspec_class_bit(tok.cls);
    msg_window_accept(&s->window, hdr.seq);
    s->alive = 1;
    s->last_heartbeat_mono = os_mono_ms();
    sqlite3_stmt *ins = store_stmt(h->db, "INSERT INTO sites(id, pubkey, class, enrolled_at,"
                                          " token_id, last_seq) VALUES(?,?,?,?,?,?)");
    sqlite3_stmt *use = store_stmt(h->db, "UPDATE tokens SET used_at=?, used_by=? WHERE id=?");
    if (!ins || !use) {
        h->store_failed = 1;
        goto out;
    }
    sqlite3_bind_text(ins, 1, site_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 2, pk_hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 3, tok.cls, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 4, now);
    sqlite3_bind_text(ins, 5, tok.tid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 6, (int64_t)hdr.seq);
    check_rc(h, store_step_done(h->db, ins));
    sqlite3_bind_int64(use, 1, now);
    sqlite3_bind_text(use, 2, site_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(use, 3, tok.tid, -1, SQLITE_TRANSIENT);
    check_rc(h, store_step_done(h->db, use));
    s->persisted_seq = hdr.seq;
    /* its capacity from this hello: jobs already queued must not see a site of 0 cores
     * (too small is permanent: they would fail as impossible) */
    update_site_capacity(h, s, body);
    log_info("hub", "enrolled site %s as class %s", site_id, tok.cls);
    char subject[80];
    snprintf(subject, sizeof subject, "site:%s", site_id);
    cJSON *abody = cJSON_CreateObject();
    if (abody) {
        cJSON_AddStringToObject(abody, "class", tok.cls);
        cJSON_AddStringToObject(abody, "token", tok.tid);
        cJSON_AddStringToObject(abody, "pubkey", pk_hex);
    }
    audit_record(h, "enrollment", subject, abody);
    send_welcome(h, s);
    h->placement_dirty = 1;
out:
    cJSON_Delete(body);
}

static void update_site_capacity(hub *h, hub_site *s, const cJSON *body)
{
    int64_t cores = s->cores, memory_mb = s->memory_mb;
    double budget = s->power_budget_watts, wpc = s->watts_per_core, idle = s->idle_watts;
    jsonx_int(body, "cores", 0, 4096, &cores);
    jsonx_int(body, "memory_mb", 0, 1 << 30, &memory_mb);
    jsonx_num(body, "power_budget_watts", &budget);
    jsonx_num(body, "watts_per_core", &wpc);
    jsonx_num(body, "idle_watts", &idle);
    const char *off = jsonx_str(body, "protections_off");
    int changed = cores != s->cores || memory_mb != s->memory_mb ||
                  budget != s->power_budget_watts || wpc != s->watts_per_core ||
                  idle != s->idle_watts || (off && strcmp(off, s->protections_off) != 0);
    if (!changed) return;
    s->cores = (int)cores;
    s->memory_mb = memory_mb;
    s->power_budget_watts = budget;
    s->watts_per_core = wpc;
    s->idle_watts = idle;
    if (off) snprintf(s->protections_off, sizeof s->protections_off, "%s", off);
    sqlite3_stmt *st = store_stmt(h->db, "UPDATE sites SET cores=?, memory_mb=?,"
                                         " power_budget_watts=?, watts_per_core=?, idle_watts=?,"
                                         " protections_off=? WHERE id=?");
    if (!st) return;
    sqlite3_bind_int(st, 1, s->cores);
    sqlite3_bind_int64(st, 2, s->memory_mb);
    sqlite3_bind_double(st, 3, budget);
    sqlite3_bind_double(st, 4, wpc);
    sqlite3_bind_double(st, 5, idle);
    sqlite3_bind_text(st, 6, s->protections_off, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, s->id, -1, SQLITE_STATIC);
    check_rc(h, store_step_done(h->db, st));
    h->placement_dirty = 1;
}

/*
 * What a site says of its power besides its envelope: the forecast envelope
 * over each horizon, when it leaves (a parked car's stated departure), where
 * its grid signal sits in the last day (grid_rank) and its region. Bad
 * values are ignored field by field (the site keeps its last good ones).
 */
static void update_site_power(hub *h, hub_site *s, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "forecast_watts");
    int changed = 0;
    if (cJSON_IsArray(f) && cJSON_GetArraySize(f) == SCHED_HORIZONS) {
        float v[SCHED_HORIZONS] = {0};
        int k = 0, ok = 1;
        const cJSON *x;
        cJSON_ArrayForEach(x, f)
        {
            ok = ok && cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e9;
            if (ok) v[k++] = (float)x->valuedouble;
        }
        if (ok) {
            changed = !s->has_forecast || memcmp(v, s->forecast_watts, sizeof v) != 0;
            memcpy(s->forecast_watts, v, sizeof v);
            s->has_forecast = 1;
        }
    }
    int64_t stay = 0, region = s->region;
    double rank = s->grid_rank;
    if (jsonx_int(o, "stay_until_ms", 0, INT64_MAX / 2, &stay) != OP_OK) stay = 0;
    if (jsonx_num(o, "grid_rank", &rank) != OP_OK || !(rank >= 0 && rank <= 1)) rank = s->grid_rank;
    jsonx_int(o, "region", 0, SCHED_MAX_REGIONS - 1, &region);
    changed = changed || stay != s->stay_until_ms || rank != s->grid_rank || region != s->region;
    s->stay_until_ms = stay;
    s->grid_rank = rank;
    s->region = (int)region;
    if (changed) h->placement_dirty = 1;
}

static void send_cancel(hub_site *s, int64_t job_id, int64_t attempt, const char *why)
{
    cJSON *c = cJSON_CreateObject();
    if (!c) return;
    jsonx_add_int(c, "job", job_id);
    jsonx_add_int(c, "attempt", attempt);
    cJSON_AddStringToObject(c, "reason", why);
    add_to_batch(&s->cancels, c);
}

/*
 * Each log witnesses the other: a site's signed head, verified with its key,
 * is written into the hub's log when it grew. A head that shrank means the
 * site's log lost history: logged as a conflict.
 */
static void witness_site_head(hub *h, hub_site *s, const cJSON *o)
{
    audit_sth head;
    if (!o || auditlog_head_from_json(o, &head) != OP_OK) return;
    if (head.size == s->witnessed_size) return;
    if (audit_sth_verify(s->pk, &head) != OP_OK) {
        h->msg.forged++;
        log_warn("hub", "site %s sent an audit head with a bad signature", s->id);
        return;
    }
    char subject[80];
    snprintf(subject, sizeof subject, "site:%s", s->id);
    const char *kind = head.size > s->witnessed_size ? "witness" : "witness-conflict";
    if (head.size < s->witnessed_size)
        log_warn("hub", "site %s's audit log went back from %llu to %llu entries", s->id,
                 (unsigned long long)s->witnessed_size, (unsigned long long)head.size);
    audit_record(h, kind, subject, auditlog_head_to_json(&head));
    s->witnessed_size = head.size;
}

static void handle_state(hub *h, hub_site *s, const cJSON *body)
{
    s->last_heartbeat_mono = os_mono_ms();
    s->last_heartbeat_wall = os_now_ms();
    s->heard = 1;
    if (!s->alive) {
        log_info("hub", "site %s is back", s->id);
        s->alive = 1;
        h->placement_dirty = 1;
    }
    update_site_capacity(h, s, body);
    update_site_power(h, s, cJSON_GetObjectItemCaseSensitive(body, "power"));
    witness_site_head(h, s, cJSON_GetObjectItemCaseSensitive(body, "audit_head"));
    /* Word from the hub for a site with work: its offline leases run from here. */
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(body, "running")) > 0) {
        cJSON *alive = cJSON_CreateObject();
        if (alive) {
            jsonx_add_int(alive, "alive", os_now_ms());
            add_to_batch(&s->acks, alive);
        }
    }
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (cJSON_IsObject(messages)) {
        cJSON_Delete(s->messages);
        s->messages = cJSON_Duplicate(messages, 1);
    }
    const cJSON *running = cJSON_GetObjectItemCaseSensitive(body, "running");
    s->reported_running = cJSON_GetArraySize(running);
    const cJSON *item;
    int64_t lease_until = os_now_ms() + h->lease_ms;
    cJSON_ArrayForEach(item, running)
    {
        int64_t job_id, attempt;
        if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
            continue;
        sqlite3_stmt *st = store_stmt(h->db, "UPDATE jobs SET lease_expires_at=? WHERE id=? AND"
                                             " attempt=? AND site=? AND state IN"
                                             " ('placed','running')");
        if (!st) return;
        sqlite3_bind_int64(st, 1, lease_until);
        sqlite3_bind_int64(st, 2, job_id);
        sqlite3_bind_int64(st, 3, attempt);
        sqlite3_bind_text(st, 4, s->id, -1, SQLITE_STATIC);
        if (check_rc(h, store_step_done(h->db, st)) != OP_OK) return;
        if (store_changes(h->db) == 0)
            send_cancel(s, job_id, attempt, "this attempt is no longer current on the hub");
    }
}

static void handle_events(hub *h, hub_site *s, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "events"))
    {
        int64_t job_id, attempt;
        const char *ev = jsonx_str(item, "event");
        if (!ev || jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK) {
            h->msg.malformed++;
            continue;
        }
        const char *why = jsonx_str(item, "reason");
        if (strcmp(ev, "started") == 0) {
            sqlite3_stmt *st = store_stmt(h->db, "UPDATE jobs SET state='running', started_at=?"
                                                 " WHERE id=? AND attempt=? AND site=? AND"
                                                 " state='placed'");
            if (!st) return;
            sqlite3_bind_int64(st, 1, os_now_ms());
            sqlite3_bind_int64(st, 2, job_id);
            sqlite3_bind_int64(st, 3, attempt);
            sqlite3_bind_text(st, 4, s->id, -1, SQLITE_STATIC);
            check_rc(h, store_step_done(h->db, st));
            if (store_changes(h->db)) job_event(h, job_id, attempt, s->id, "started", NULL);
        } else if (strcmp(ev, "refused") == 0 || strcmp(ev, "busy") == 0) {
            sqlite3_stmt *st = store_stmt(h->db, "SELECT 1 FROM jobs WHERE id=? AND attempt=?"
                                                 " AND site=? AND state IN ('placed','running')");
            if (!st) return;
            sqlite3_bind_int64(st, 1, job_id);
            sqlite3_bind_int64(st, 2, attempt);
            sqlite3_bind_text(st, 3, s->id, -1, SQLITE_STATIC);
            int current = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_reset(st);
            if (!current) continue;
            char reason[300];
            snprintf(reason, sizeof reason, "refused by %s: %.200s", s->id, why ? why : "?");
            /* a refusal keeps the job away from that site; "busy" (its view of the site's
             * capacity was behind, e.g. a cancelled attempt still stopping) does not */
            requeue(h, job_id, reason, strcmp(ev, "refused") == 0, 0);
        }
    }
}

/*
 * A checkpoint a departing site handed back with a job: kept (one per job,
 * the newest) and given to the next attempt as an input. Malformed ones are
 * dropped (counted): the job then starts again from the beginning.
 */
static int keep_checkpoint(hub *h, int64_t job_id, int64_t attempt, const cJSON *ck)
{
    if (!ck) return OP_OK;
    const char *name = jsonx_str(ck, "name"), *sha = jsonx_str(ck, "sha256");
    const char *data = jsonx_str(ck, "data_b64");
    if (!name || !sha || !data || strlen(sha) != 64 || !name[0] || name[0] == '.' ||
        strchr(name, '/') || strlen(name) >= 128 || strlen(data) > 2 * 1024 * 1024) {
        h->msg.malformed++;
        return OP_OK;
    }
    sqlite3_stmt *st = store_stmt(h->db, "INSERT OR REPLACE INTO checkpoints(job_id, attempt,"
                                         " name, sha256, data_b64) VALUES(?,?,?,?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, sha, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, data, -1, SQLITE_TRANSIENT);
    if (check_rc(h, store_step_done(h->db, st)) != OP_OK) return OP_ESTORE;
    char detail[160];
    snprintf(detail, sizeof detail, "checkpoint %s (%zu bytes base64) kept for the next attempt",
             name, strlen(data));
    job_event(h, job_id, attempt, NULL, "checkpoint", detail);
    return OP_OK;
}

/* Adds a job's kept checkpoint to the inputs of the spec offered to a site. */
static void attach_checkpoint(hub *h, int64_t job_id, cJSON *spec)
{
    sqlite3_stmt *st = store_stmt(h->db, "SELECT name, sha256, data_b64 FROM checkpoints WHERE"
                                         " job_id=?");
    if (!st) return;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *inputs = cJSON_GetObjectItemCaseSensitive(spec, "inputs");
        if (!inputs) inputs = cJSON_AddArrayToObject(spec, "inputs");
        const char *name = store_col_text(st, 0);
        for (int i = cJSON_GetArraySize(inputs) - 1; inputs && i >= 0; i--) {
            const char *n = jsonx_str(cJSON_GetArrayItem(inputs, i), "name");
            if (n && strcmp(n, name) == 0) cJSON_DeleteItemFromArray(inputs, i);
        }
        cJSON *in = cJSON_CreateObject();
        if (inputs && in) {
            cJSON_AddStringToObject(in, "name", name);
            cJSON_AddStringToObject(in, "sha256", store_col_text(st, 1));
            cJSON_AddStringToObject(in, "data_b64", store_col_text(st, 2));
            cJSON_AddItemToArray(inputs, in);
        } else {
            cJSON_Delete(in);
        }
    }
    sqlite3_reset(st);
}

/* A job's final state from an applied result: its row, the result marked applied, the event. */
static int apply_final(hub *h, int64_t job_id, int64_t attempt, const char *site_id,
                       const char *final, const char *reason)
{
    sqlite3_stmt *up = store_stmt(h->db, "UPDATE jobs SET state=?, finished_at=?, reason=?,"
                                         " lease_expires_at=NULL WHERE id=?");
    sqlite3_stmt *ap = store_stmt(h->db, "UPDATE results SET applied=1 WHERE job_id=? AND"
                                         " attempt=?");
    if (!up || !ap) return OP_ESTORE;
    sqlite3_bind_text(up, 1, final, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 2, os_now_ms());
    sqlite3_bind_text(up, 3, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 4, job_id);
    if (check_rc(h, store_step_done(h->db, up)) != OP_OK) return OP_ESTORE;
    sqlite3_bind_int64(ap, 1, job_id);
    sqlite3_bind_int64(ap, 2, attempt);
    if (check_rc(h, store_step_done(h->db, ap)) != OP_OK) return OP_ESTORE;
    job_event(h, job_id, attempt, site_id, final, reason);
    notify_terminal(h, job_id, final);
    h->results_applied++;
    return OP_OK;
}

/*
 * Results are idempotent by (job, attempt): the first copy is recorded;
 * it is applied only if that attempt is still the job's current one on
 * that site. Every copy is acknowledged so that the site's outbox drains.
 * OP_OK also when the item was dropped (counted); an error when the store
 * failed.
 */
static int apply_result(hub *h, hub_site *s, const cJSON *item, int local)
{
    int64_t job_id, attempt, exit_code = -1, rss = 0, wall_ms = 0;
    double cpu = 0, energy = 0;
    if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
        jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK) {
        h->msg.malformed++;
        return OP_OK;
    }
    jsonx_int(item, "exit_code", -1, 255, &exit_code);
    jsonx_int(item, "peak_rss_bytes", 0, INT64_MAX, &rss);
    jsonx_int(item, "wall_ms", 0, INT64_MAX, &wall_ms);
    jsonx_num(item, "cpu_seconds", &cpu);
    jsonx_num(item, "energy_joules", &energy);
    const char *error = jsonx_str(item, "error");
    cJSON *ack = local ? NULL : cJSON_CreateObject(); /* local ones are acknowledged by id */
    if (ack) {
        jsonx_add_int(ack, "job", job_id);
        jsonx_add_int(ack, "attempt", attempt);
        add_to_batch(&s->acks, ack);
    }
    char *text = cJSON_PrintUnformatted(item);
    if (!text) return OP_OK;
    sqlite3_stmt *ins = store_stmt(h->db, "INSERT OR IGNORE INTO results(job_id, attempt,"
                                          " site, received_at, applied, exit_code,"
                                          " cpu_seconds, peak_rss_bytes, wall_ms,"
                                          " energy_joules, body) VALUES(?,?,?,?,0,?,?,?,?,?,?)");
    if (!ins) {
        free(text);
        return OP_ESTORE;
    }
    sqlite3_bind_int64(ins, 1, job_id);
    sqlite3_bind_int64(ins, 2, attempt);
    sqlite3_bind_text(ins, 3, s->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 4, os_now_ms());
    sqlite3_bind_int64(ins, 5, exit_code);
    sqlite3_bind_double(ins, 6, cpu);
    sqlite3_bind_int64(ins, 7, rss);
    sqlite3_bind_int64(ins, 8, wall_ms);
    sqlite3_bind_double(ins, 9, energy);
    sqlite3_bind_text(ins, 10, text, -1, SQLITE_TRANSIENT);
    free(text);
    if (check_rc(h, store_step_done(h->db, ins)) != OP_OK) return OP_ESTORE;
    if (store_changes(h->db) == 0) {
        h->results_duplicate++;
        log_debug("hub", "duplicate result for job %lld attempt %lld from %s", (long long)job_id,
                  (long long)attempt, s->id);
        return OP_OK;
    }
    sqlite3_stmt *st = store_stmt(h->db, "SELECT cores, memory_mb, attempt, state, site,"
                                         " max_attempts FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        h->results_stale++;
        log_warn("hub", "result from %s for unknown job %lld: recorded, not applied", s->id,
                 (long long)job_id);
        return OP_OK;
    }
    int cores = sqlite3_column_int(st, 0);
    int64_t memory_mb = sqlite3_column_int64(st, 1);
    int64_t current = sqlite3_column_int64(st, 2);
    char state[16], site[64];
    snprintf(state, sizeof state, "%s", store_col_text(st, 3));
    snprintf(site, sizeof site, "%s", store_col_text(st, 4));
    sqlite3_reset(st);
    int live = jobstate_result_applies(jobstate_parse(state), current, site, attempt, s->id);
    if (!live && !local &&
        jobstate_earlier_success_wins(jobstate_parse(state), current, attempt,
                                      exit_code == 0 && !error)) {
        /* The first success wins: stop the attempt that is now redundant. */
        hub_site *cur = site[0] ? find_site(h, site) : NULL;
        if (cur && (!strcmp(state, "placed") || !strcmp(state, "running"))) {
            send_cancel(cur, job_id, current, "an earlier attempt finished first");
            release(h, cur->id, cores, memory_mb);
        }
        char reason[160];
        snprintf(reason, sizeof reason, "exit code 0 (attempt %lld on %s finished first)",
                 (long long)attempt, s->id);
        return apply_final(h, job_id, attempt, s->id, "succeeded", reason);
    }
    if (!live) {
        h->results_stale++;
        char detail[200];
        snprintf(detail, sizeof detail,
                 "late result from %s for attempt %lld (current attempt %lld, %s): recorded,"
                 " not applied",
                 s->id, (long long)attempt, (long long)current, state);
        log_info("hub", "job %lld: %s", (long long)job_id, detail);
        job_event(h, job_id, attempt, s->id, "stale-result", detail);
        return OP_OK;
    }
    if (error && jsonx_str(item, "retryable")) {
        /* The site could not run it (e.g. its sandbox failed, or it left): try elsewhere,
         * from the checkpoint it handed back if any. */
        if (keep_checkpoint(h, job_id, attempt,
                            cJSON_GetObjectItemCaseSensitive(item, "checkpoint")) != OP_OK)
            return OP_ESTORE;
        char why[300];
        snprintf(why, sizeof why, "%s could not run it: %.200s", s->id, error);
        requeue(h, job_id, why, 1, 1);
        return OP_OK;
    }
    int final_state;
    if (jobstate_next(jobstate_parse(state), current, current,
                      (exit_code == 0 && !error) ? JOB_EV_RESULT_OK : JOB_EV_RESULT_FAIL,
                      &final_state) != OP_OK)
        return OP_OK;
    const char *final = jobstate_name(final_state);
    char reason[300];
    if (error)
        snprintf(reason, sizeof reason, "%.250s", error);
    else
        snprintf(reason, sizeof reason, "exit code %lld", (long long)exit_code);
    if (!local) release(h, s->id, cores, memory_mb); /* a local job reserved nothing here */
    return apply_final(h, job_id, attempt, s->id, final, reason);
}

/*
 * A job a site ran on its own (outpost submit --local), reported with its
 * spec and result, maybe long after: recorded once per (site, local id) as a
 * job that ran there, then its result applied like any other. Every copy is
 * acknowledged so the site's outbox drains.
 */
static int apply_local(hub *h, hub_site *s, const cJSON *item)
{
    int64_t local_id;
    const cJSON *spec_json = cJSON_GetObjectItemCaseSensitive(item, "spec");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(item, "result");
    if (jsonx_int(item, "local_id", 1, INT64_MAX, &local_id) != OP_OK || !spec_json ||
        !cJSON_IsObject(result)) {
        h->msg.malformed++;
        return OP_OK;
    }
    cJSON *ack = cJSON_CreateObject();
    if (ack) {
        jsonx_add_int(ack, "local", local_id);
        add_to_batch(&s->acks, ack);
    }
    sqlite3_stmt *st = store_stmt(h->db, "SELECT job_id FROM local_jobs WHERE site=? AND"
                                         " local_id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, local_id);
    int known = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    if (known) {
        h->results_duplicate++;
        return OP_OK;
    }
    jobspec spec;
    char why[256];
    if (jobspec_from_json(spec_json, &spec, why, sizeof why) != OP_OK) {
        h->msg.malformed++;
        log_warn("hub", "local job %lld of %s has a bad spec (%s): acknowledged, not recorded",
                 (long long)local_id, s->id, why);
        return OP_OK;
    }
    char *text = cJSON_PrintUnformatted(spec_json);
    char by[96];
    snprintf(by, sizeof by, "local:%s", s->id);
    sqlite3_stmt *ins = store_stmt(h->db, "INSERT INTO jobs(name, kind, spec, state, attempt,"
                                          " site, cores, memory_mb, class_mask, origin,"
                                          " site_private, max_attempts, submitted_by,"
                                          " submitted_at, placed_at, program, data_class,"
                                          " expected_ms, may_defer)"
                                          " VALUES(?,?,?,'running',1,?,?,?,?,?,?,1,?,?,?,?,?,?,?)");
    sqlite3_stmt *map = store_stmt(h->db, "INSERT INTO local_jobs(site, local_id, job_id)"
                                          " VALUES(?,?,?)");
    if (!text || !ins || !map) {
        free(text);
        jobspec_clear(&spec);
        return OP_ESTORE;
    }
    int64_t now = os_now_ms();
    store_bind_text(ins, 1, spec.name[0] ? spec.name : NULL);
    sqlite3_bind_text(ins, 2, jobspec_kind_name(spec.kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 4, s->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(ins, 5, spec.cores);
    sqlite3_bind_int64(ins, 6, spec.memory_mb);
    sqlite3_bind_int(ins, 7, (int)spec.class_mask);
    store_bind_text(ins, 8, spec.origin[0] ? spec.origin : s->id);
    sqlite3_bind_int(ins, 9, spec.data_class == DATA_SITE_PRIVATE);
    sqlite3_bind_text(ins, 10, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 11, now);
    sqlite3_bind_int64(ins, 12, now);
    store_bind_text(ins, 13, spec.argc > 0 ? spec.argv[0] : NULL);
    sqlite3_bind_int(ins, 14, spec.data_class);
    sqlite3_bind_int64(ins, 15, spec.expected_s * 1000);
    sqlite3_bind_int(ins, 16, spec.deferrable);
    free(text);
    jobspec_clear(&spec);
    if (check_rc(h, store_step_done(h->db, ins)) != OP_OK) return OP_ESTORE;
    int64_t job_id = store_last_rowid(h->db);
    sqlite3_bind_text(map, 1, s->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(map, 2, local_id);
    sqlite3_bind_int64(map, 3, job_id);
    if (check_rc(h, store_step_done(h->db, map)) != OP_OK) return OP_ESTORE;
    char detail[96];
    snprintf(detail, sizeof detail, "submitted on %s as local job %lld", s->id,
             (long long)local_id);
    job_event(h, job_id, 1, s->id, "local", detail);
    cJSON *copy = cJSON_Duplicate(result, 1);
    if (!copy) return OP_ENOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "job");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "attempt");
    jsonx_add_int(copy, "job", job_id);
    jsonx_add_int(copy, "attempt", 1);
    int rc = apply_result(h, s, copy, 1);
    cJSON_Delete(copy);
    h->jobs_submitted++;
    return rc;
}

static void handle_results(hub *h, hub_site *s, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "results"))
    {
        if (apply_result(h, s, item, 0) != OP_OK) return;
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "locals"))
    {
        if (apply_local(h, s, item) != OP_OK) return;
    }
}

/*
 * The sender may only speak under its own topic id, then msg_open's checks.
 * Returns the body (caller frees) or NULL after counting and logging the drop.
 */
static cJSON *authenticate(hub *h, const char *topic_id, const char *topic, const void *payload,
                           size_t len, const char *kid, const char *sig, msg_lookup_fn lookup,
                           msg_header *hdr)
{
    cJSON *body = NULL;
    char reason[256];
    if (kid && strcmp(kid, topic_id) != 0) {
        h->msg.forged++;
        log_warn("hub", "dropped message on %s: kid '%.63s' may not publish there", topic, kid);
        return NULL;
    }
    if (msg_open(topic, payload, len, kid, sig, lookup, h, os_now_ms(), h->clock_skew_ms, &body,
                 hdr, &h->msg, reason, sizeof reason) != OP_OK) {
        log_warn("hub", "dropped: %s", reason);
        return NULL;
    }
    return body;
}

static void handle_site_message(hub *h, const char *site_id, const char *leaf, const char *topic,
                                const void *payload, size_t len, const char *kid, const char *sig)
{
    cJSON *body = NULL;
    msg_header hdr;
    hub_site *s = find_site(h, site_id);
    if (!s && strcmp(leaf, "hello") == 0) {
        enroll(h, site_id, topic, payload, len, kid, sig);
        return;
    }
    if (!(body = authenticate(h, site_id, topic, payload, len, kid, sig, lookup_site, &hdr)))
        return;
    if (strcmp(leaf, "hello") == 0) {
        update_site_capacity(h, s, body);
        send_welcome(h, s);
        s->last_heartbeat_mono = os_mono_ms();
        if (!s->alive) h->placement_dirty = 1;
        s->alive = 1;
    } else if (strcmp(leaf, "state") == 0) {
        handle_state(h, s, body);
    } else if (strcmp(leaf, "event") == 0) {
        handle_events(h, s, body);
    } else if (strcmp(leaf, "result") == 0) {
        handle_results(h, s, body);
    } else {
        h->msg.malformed++;
        log_warn("hub", "dropped message from %s on unknown topic %s", site_id, topic);
    }
    cJSON_Delete(body);
}

/* ---------- operator requests ---------- */

static cJSON *job_summary(sqlite3_stmt *st)
{
    /* Columns: id, name, kind, state, attempt, site, submitted_at, finished_at, reason */
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    jsonx_add_int(j, "id", sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(j, "name", store_col_text(st, 1));
    cJSON_AddStringToObject(j, "kind", store_col_text(st, 2));
    cJSON_AddStringToObject(j, "state", store_col_text(st, 3));
    jsonx_add_int(j, "attempt", sqlite3_column_int64(st, 4));
    cJSON_AddStringToObject(j, "site", store_col_text(st, 5));
    jsonx_add_int(j, "submitted_at", sqlite3_column_int64(st, 6));
    jsonx_add_int(j, "finished_at", sqlite3_column_int64(st, 7));
    cJSON_AddStringToObject(j, "reason", store_col_text(st, 8));
    return j;
}

static int op_submit_one(hub *h, const cJSON *spec_json, const char *op_id, int notify,
                         sched_site *view, int64_t *job_id, char *err, size_t err_len)
{
    jobspec spec;
    int rc = jobspec_from_json(spec_json, &spec, err, err_len);
    if (rc != OP_OK) return rc;
    if ((rc = policy_check_submit(h->policy, op_id, &spec, err, err_len)) != OP_OK) {
        jobspec_clear(&spec);
        return rc;
    }
    int awaiting = policy_needs_approval(h->policy, &spec);
    if (h->n_sites > 0) {
        policy_ctx pc = {h, &spec, os_now_ms()};
        sched_job job = {.cores = spec.cores,
                         .memory_mb = spec.memory_mb,
                         .class_mask = spec.class_mask,
                         .origin = spec.origin,
                         .site_private = spec.data_class == DATA_SITE_PRIVATE,
                         .allowed = h->policy ? policy_allows : NULL,
                         .allowed_ctx = &pc};
        sched_decision d;
        if (sched_place(view, h->n_sites, &job, &d) != OP_OK) {
            jobspec_clear(&spec);
            return OP_ENOMEM;
        }
        if (d.outcome == SCHED_IMPOSSIBLE) {
            snprintf(err, err_len, "no site in the fleet can ever run this job: %s", d.explanation);
            sched_decision_clear(&d);
            jobspec_clear(&spec);
            return OP_ECAPACITY;
        }
        sched_decision_clear(&d);
    }
    char *text = cJSON_PrintUnformatted(spec_json);
    sqlite3_stmt *st = store_stmt(h->db, "INSERT INTO jobs(name, kind, spec, state, cores,"
                                         " memory_mb, class_mask, origin, site_private,"
                                         " max_attempts, submitted_by, submitted_at, notify,"
                                         " awaiting_approval, program, data_class,"
                                         " expected_ms, deadline_at, may_defer)"
                                         " VALUES(?,?,?,'queued',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!text || !st) {
        free(text);
        jobspec_clear(&spec);
        snprintf(err, err_len, "hub store unavailable; retry");
        return OP_ESTORE;
    }
    store_bind_text(st, 1, spec.name[0] ? spec.name : NULL);
    sqlite3_bind_text(st, 2, jobspec_kind_name(spec.kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, spec.cores);
    sqlite3_bind_int64(st, 5, spec.memory_mb);
    sqlite3_bind_int(st, 6, (int)spec.class_mask);
    store_bind_text(st, 7, spec.origin[0] ? spec.origin : NULL);
    sqlite3_bind_int(st, 8, spec.data_class == DATA_SITE_PRIVATE);
    sqlite3_bind_int(st, 9, spec.max_attempts);
    sqlite3_bind_text(st, 10, op_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 11, os_now_ms());
    store_bind_text(st, 12, notify ? op_id : NULL);
    sqlite3_bind_int(st, 13, awaiting);
    store_bind_text(st, 14, spec.argc > 0 ? spec.argv[0] : NULL);
    sqlite3_bind_int(st, 15, spec.data_class);
    int64_t submitted = os_now_ms();
    sqlite3_bind_int64(st, 16, spec.expected_s * 1000);
    sqlite3_bind_int64(st, 17, spec.deadline_s ? submitted + spec.deadline_s * 1000 : 0);
    sqlite3_bind_int(st, 18, spec.deferrable);
    free(text);
    jobspec_clear(&spec);
    if (check_rc(h, store_step_done(h->db, st)) != OP_OK) {
        snprintf(err, err_len, "hub store failed; retry");
        return OP_ESTORE;
    }
    *job_id = store_last_rowid(h->db);
    job_event(h, *job_id, 0, NULL, "submitted", op_id);
    if (awaiting) {
        char why[96];
        snprintf(why, sizeof why, "policy v%d: needs `outpost approve %lld`",
                 policy_version(h->policy), (long long)*job_id);
        job_event(h, *job_id, 0, NULL, "awaiting-approval", why);
        sqlite3_stmt *up = store_stmt(h->db, "UPDATE jobs SET reason=? WHERE id=?");
        if (up) {
            sqlite3_bind_text(up, 1, why, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(up, 2, *job_id);
            check_rc(h, store_step_done(h->db, up));
        }
    }
    h->jobs_submitted++;
    h->placement_dirty = 1;
    return OP_OK;
}

static int64_t count_queued(hub *h)
{
    sqlite3_stmt *st = store_stmt(h->db, "SELECT COUNT(*) FROM jobs WHERE state='queued'");
    if (!st) return 0;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return n;
}

/* submit: {"spec": {...}} or {"specs": [...]}; all or nothing. */
static int op_submit(hub *h, const cJSON *req, const char *op_id, cJSON *data, char *err,
                     size_t err_len)
{
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(req, "spec");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(req, "specs");
    if (!one && !cJSON_IsArray(many)) {
        snprintf(err, err_len, "submit needs 'spec' (object) or 'specs' (array)");
        return OP_EINVAL;
    }
    int count = one ? 1 : cJSON_GetArraySize(many);
    int notify = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "notify"));
    int64_t queued = count_queued(h);
    if (queued + count > h->max_queued_jobs) {
        h->bound_hits++;
        snprintf(err, err_len, "hub queue full (%lld queued, limit %lld); retry later",
                 (long long)queued, (long long)h->max_queued_jobs);
        return OP_EFULL;
    }
    sched_site *view = calloc(h->n_sites ? h->n_sites : 1, sizeof *view);
    cJSON *ids = cJSON_AddArrayToObject(data, "ids");
    if (!view || !ids) {
        free(view);
        return OP_ENOMEM;
    }
    fill_view(h, view, 1);
    /* All or nothing: a bad spec in a batch undoes the ones before it. */
    int rc = store_exec(h->db, "SAVEPOINT submit");
    const cJSON *spec = one;
    int index = 0;
    if (many) spec = many->child;
    for (; rc == OP_OK && spec; spec = one ? NULL : spec->next, index++) {
        int64_t id;
        char why[400];
        rc = op_submit_one(h, spec, op_id, notify, view, &id, why, sizeof why);
        if (rc != OP_OK) {
            if (many)
                snprintf(err, err_len, "specs[%d]: %s", index, why);
            else
                snprintf(err, err_len, "%s", why);
            break;
        }
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id));
    }
    free(view);
    if (rc == OP_OK) {
        rc = store_exec(h->db, "RELEASE submit");
    } else {
        store_exec(h->db, "ROLLBACK TO submit");
        store_exec(h->db, "RELEASE submit");
        cJSON_DeleteItemFromObjectCaseSensitive(data, "ids");
    }
    return rc;
}

static int op_jobs(hub *h, const cJSON *req, cJSON *data)
{
    const char *state = jsonx_str(req, "state");
    int64_t limit = 50;
    jsonx_int(req, "limit", 1, 10000, &limit);
    sqlite3_stmt *st =
        state ? store_stmt(h->db, "SELECT id, name, kind, state, attempt, site, submitted_at,"
                                  " finished_at, reason FROM jobs WHERE state=? ORDER BY id DESC"
                                  " LIMIT ?")
              : store_stmt(h->db, "SELECT id, name, kind, state, attempt, site, submitted_at,"
                                  " finished_at, reason FROM jobs WHERE ?1 IS NULL ORDER BY id"
                                  " DESC LIMIT ?");
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, state);
    sqlite3_bind_int64(st, 2, limit);
    cJSON *arr = cJSON_AddArrayToObject(data, "jobs");
    while (arr && sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, job_summary(st));
    sqlite3_reset(st);
    cJSON *counts = cJSON_AddObjectToObject(data, "counts");
    st = store_stmt(h->db, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
    if (!st) return OP_ESTORE;
    while (counts && sqlite3_step(st) == SQLITE_ROW)
        jsonx_add_int(counts, store_col_text(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return OP_OK;
}

/* The "id" of a request about one job. OP_EINVAL with the message in err. */
static int req_job_id(const cJSON *req, int64_t *id, char *err, size_t err_len)
{
    if (jsonx_int(req, "id", 1, INT64_MAX, id) == OP_OK) return OP_OK;
    snprintf(err, err_len, "'id' must be a job number");
    return OP_EINVAL;
}

static int op_job(hub *h, const cJSON *req, cJSON *data, int with_outputs, char *err,
                  size_t err_len)
{
    int64_t id;
    if (req_job_id(req, &id, err, err_len) != OP_OK) return OP_EINVAL;
    sqlite3_stmt *st = store_stmt(h->db, "SELECT id, name, kind, state, attempt, site,"
                                         " submitted_at, finished_at, reason, explanation,"
                                         " placed_at, started_at, lease_expires_at, cores,"
                                         " memory_mb, max_attempts, submitted_by, excluded"
                                         " FROM jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        snprintf(err, err_len, "no job %lld", (long long)id);
        return OP_ENOTFOUND;
    }
    cJSON *job = job_summary(st);
    if (job) {
        cJSON_AddStringToObject(job, "explanation", store_col_text(st, 9));
        jsonx_add_int(job, "placed_at", sqlite3_column_int64(st, 10));
        jsonx_add_int(job, "started_at", sqlite3_column_int64(st, 11));
        jsonx_add_int(job, "lease_expires_at", sqlite3_column_int64(st, 12));
        jsonx_add_int(job, "cores", sqlite3_column_int64(st, 13));
        jsonx_add_int(job, "memory_mb", sqlite3_column_int64(st, 14));
        jsonx_add_int(job, "max_attempts", sqlite3_column_int64(st, 15));
        cJSON_AddStringToObject(job, "submitted_by", store_col_text(st, 16));
        cJSON_AddStringToObject(job, "excluded", store_col_text(st, 17));
        cJSON_AddItemToObject(data, "job", job);
    }
    sqlite3_reset(st);
    cJSON *events = cJSON_AddArrayToObject(data, "events");
    st = store_stmt(h->db, "SELECT ts, attempt, site, event, detail FROM job_events WHERE"
                           " job_id=? ORDER BY rowid LIMIT 200");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    while (events && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        jsonx_add_int(e, "ts", sqlite3_column_int64(st, 0));
        jsonx_add_int(e, "attempt", sqlite3_column_int64(st, 1));
        cJSON_AddStringToObject(e, "site", store_col_text(st, 2));
        cJSON_AddStringToObject(e, "event", store_col_text(st, 3));
        cJSON_AddStringToObject(e, "detail", store_col_text(st, 4));
        cJSON_AddItemToArray(events, e);
    }
    sqlite3_reset(st);
    cJSON *results = cJSON_AddArrayToObject(data, "results");
    st = store_stmt(h->db, "SELECT attempt, site, received_at, applied, exit_code, cpu_seconds,"
                           " peak_rss_bytes, wall_ms, energy_joules, body FROM results WHERE"
                           " job_id=? ORDER BY attempt");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    while (results && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *r = with_outputs ? cJSON_Parse(store_col_text(st, 9)) : cJSON_CreateObject();
        if (!r) break;
        cJSON_DeleteItemFromObjectCaseSensitive(r, "attempt");
        jsonx_add_int(r, "attempt", sqlite3_column_int64(st, 0));
        cJSON_DeleteItemFromObjectCaseSensitive(r, "site");
        cJSON_AddStringToObject(r, "site", store_col_text(st, 1));
        jsonx_add_int(r, "received_at", sqlite3_column_int64(st, 2));
        cJSON_AddBoolToObject(r, "applied", sqlite3_column_int(st, 3));
        if (!with_outputs) {
            jsonx_add_int(r, "exit_code", sqlite3_column_int64(st, 4));
            cJSON_AddNumberToObject(r, "cpu_seconds", sqlite3_column_double(st, 5));
            jsonx_add_int(r, "peak_rss_bytes", sqlite3_column_int64(st, 6));
            jsonx_add_int(r, "wall_ms", sqlite3_column_int64(st, 7));
            cJSON_AddNumberToObject(r, "energy_joules", sqlite3_column_double(st, 8));
            cJSON *body = cJSON_Parse(store_col_text(st, 9));
            cJSON *receipt = cJSON_DetachItemFromObjectCaseSensitive(body, "receipt");
            if (receipt) cJSON_AddItemToObject(r, "receipt", receipt);
            cJSON_Delete(body);
        }
        cJSON_AddItemToArray(results, r);
    }
    sqlite3_reset(st);
    return OP_OK;
}

static int op_sites(hub *h, cJSON *data)
{
    cJSON *arr = cJSON_AddArrayToObject(data, "sites");
    int64_t now_mono = os_mono_ms();
    for (size_t i = 0; arr && i < h->n_sites; i++) {
        hub_site *s = &h->sites[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "id", s->id);
        cJSON_AddStringToObject(o, "class", jobspec_class_name(s->class_bit));
        cJSON_AddStringToObject(o, "status", s->alive ? (s->heard ? "alive" : "presumed") : "lost");
        jsonx_add_int(o, "cores", s->cores);
        jsonx_add_int(o, "free_cores", s->cores - s->reserved_cores);
        jsonx_add_int(o, "memory_mb", s->memory_mb);
        jsonx_add_int(o, "free_memory_mb", s->memory_mb - s->reserved_memory_mb);
        cJSON_AddNumberToObject(o, "power_budget_watts", s->power_budget_watts);
        cJSON_AddNumberToObject(o, "headroom_watts",
                                s->power_budget_watts - s->idle_watts -
                                    s->reserved_cores * s->watts_per_core);
        cJSON_AddNumberToObject(o, "watts_per_core", s->watts_per_core);
        jsonx_add_int(o, "jobs", s->reserved_jobs);
        jsonx_add_int(o, "running_reported", s->reported_running);
        jsonx_add_int(o, "heartbeat_age_ms", s->heard ? now_mono - s->last_heartbeat_mono : -1);
        jsonx_add_int(o, "trust", s->trust);
        cJSON_AddStringToObject(o, "protections_off", s->protections_off);
        if (s->messages) cJSON_AddItemToObject(o, "messages", cJSON_Duplicate(s->messages, 1));
        cJSON *p = cJSON_AddObjectToObject(o, "power");
        if (p) {
            if (s->has_forecast) {
                cJSON *f = cJSON_AddArrayToObject(p, "forecast_watts");
                for (int k = 0; f && k < SCHED_HORIZONS; k++)
                    cJSON_AddItemToArray(f, cJSON_CreateNumber(s->forecast_watts[k]));
            }
            if (s->stay_until_ms) jsonx_add_int(p, "stay_until_ms", s->stay_until_ms);
            cJSON_AddNumberToObject(p, "grid_rank", s->grid_rank);
            jsonx_add_int(p, "region", s->region);
            jsonx_add_int(p, "attempts_placed", (int64_t)s->attempts_placed);
            jsonx_add_int(p, "attempts_lost", (int64_t)s->attempts_lost);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return OP_OK;
}

static int op_token(hub *h, const cJSON *req, const char *op_id, cJSON *data, char *err,
                    size_t err_len)
{
    const char *cls = jsonx_str(req, "class");
    int64_t ttl_s = h->token_ttl_s;
    if (!token_valid_class(cls)) {
        snprintf(err, err_len, "--class must be pod, car or dc");
        return OP_EINVAL;
    }
    if (cJSON_HasObjectItem(req, "ttl_s") &&
        jsonx_int(req, "ttl_s", 1, 365LL * 86400, &ttl_s) != OP_OK) {
        snprintf(err, err_len, "--ttl must be from 1 second to 365 days");
        return OP_EINVAL;
    }
    token tok;
    char *text = NULL;
    int64_t now = os_now_ms();
    int rc = token_create(&h->identity, cls, now + ttl_s * 1000, &text, &tok);
    if (rc != OP_OK) return rc;
    sqlite3_stmt *st = store_stmt(h->db, "INSERT INTO tokens(id, class, created_at, expires_at,"
                                         " created_by) VALUES(?,?,?,?,?)");
    if (!st) {
        free(text);
        return OP_ESTORE;
    }
    sqlite3_bind_text(st, 1, tok.tid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, cls, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, tok.expires_ms);
    sqlite3_bind_text(st, 5, op_id, -1, SQLITE_TRANSIENT);
    rc = check_rc(h, store_step_done(h->db, st));
    if (rc == OP_OK) {
        cJSON_AddStringToObject(data, "token", text);
        jsonx_add_int(data, "expires_at", tok.expires_ms);
        char subject[80];
        snprintf(subject, sizeof subject, "op:%s", op_id);
        cJSON *abody = cJSON_CreateObject();
        if (abody) {
            cJSON_AddStringToObject(abody, "class", cls);
            cJSON_AddStringToObject(abody, "token", tok.tid);
            jsonx_add_int(abody, "expires_at", tok.expires_ms);
        }
        audit_record(h, "token", subject, abody);
        log_info("hub", "operator %s created a %s join token valid for %lld s", op_id, cls,
                 (long long)ttl_s);
    }
    free(text);
    return rc;
}

static int op_cancel(hub *h, const cJSON *req, char *err, size_t err_len)
{
    int64_t id;
    if (req_job_id(req, &id, err, err_len) != OP_OK) return OP_EINVAL;
    sqlite3_stmt *st = store_stmt(h->db, "SELECT state, site, attempt, cores, memory_mb FROM"
                                         " jobs WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        snprintf(err, err_len, "no job %lld", (long long)id);
        return OP_ENOTFOUND;
    }
    char state[16], site[64];
    snprintf(state, sizeof state, "%s", store_col_text(st, 0));
    snprintf(site, sizeof site, "%s", store_col_text(st, 1));
    int64_t attempt = sqlite3_column_int64(st, 2);
    int cores = sqlite3_column_int(st, 3);
    int64_t memory_mb = sqlite3_column_int64(st, 4);
    sqlite3_reset(st);
    int next;
    if (jobstate_next(jobstate_parse(state), attempt, attempt + 1, JOB_EV_CANCEL, &next) != OP_OK) {
        snprintf(err, err_len, "job %lld is already %s", (long long)id, state);
        return OP_EINVAL;
    }
    st = store_stmt(h->db, "UPDATE jobs SET state='cancelled', finished_at=?, reason='cancelled"
                           " by operator', lease_expires_at=NULL WHERE id=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, os_now_ms());
    sqlite3_bind_int64(st, 2, id);
    int rc = check_rc(h, store_step_done(h->db, st));
    if (rc != OP_OK) return rc;
    job_event(h, id, attempt, site[0] ? site : NULL, "cancelled", "by operator");
    notify_terminal(h, id, "cancelled");
    if (strcmp(state, "queued") != 0) {
        hub_site *s = find_site(h, site);
        if (s) send_cancel(s, id, attempt, "cancelled by operator");
        release(h, site, cores, memory_mb);
    }
    return OP_OK;
}

static int op_stats(hub *h, cJSON *data)
{
    cJSON *m = cJSON_AddObjectToObject(data, "messages");
    if (m) msg_stats_to_json(&h->msg, m);
    cJSON *r = cJSON_AddObjectToObject(data, "results");
    if (r) {
        jsonx_add_int(r, "applied", (int64_t)h->results_applied);
        jsonx_add_int(r, "duplicate", (int64_t)h->results_duplicate);
        jsonx_add_int(r, "stale", (int64_t)h->results_stale);
    }
    cJSON *per_site = cJSON_AddObjectToObject(data, "per_site");
    sqlite3_stmt *st = store_stmt(h->db, "SELECT IFNULL(site,''), state, COUNT(*) FROM jobs"
                                         " GROUP BY site, state");
    if (!st) return OP_ESTORE;
    while (per_site && sqlite3_step(st) == SQLITE_ROW) {
        const char *site = store_col_text(st, 0);
        cJSON *o = cJSON_GetObjectItemCaseSensitive(per_site, site);
        if (!o) o = cJSON_AddObjectToObject(per_site, site);
        if (o) jsonx_add_int(o, store_col_text(st, 1), sqlite3_column_int64(st, 2));
    }
    sqlite3_reset(st);
    st = store_stmt(h->db, "SELECT COUNT(*), IFNULL(SUM(cpu_seconds),0),"
                           " IFNULL(SUM(energy_joules),0) FROM results WHERE applied=1");
    if (!st) return OP_ESTORE;
    if (sqlite3_step(st) == SQLITE_ROW) {
        jsonx_add_int(data, "applied_results", sqlite3_column_int64(st, 0));
        cJSON_AddNumberToObject(data, "cpu_seconds", sqlite3_column_double(st, 1));
        cJSON_AddNumberToObject(data, "energy_joules", sqlite3_column_double(st, 2));
    }
    sqlite3_reset(st);
    jsonx_add_int(data, "jobs_submitted", (int64_t)h->jobs_submitted);
    jsonx_add_int(data, "bound_hits", (int64_t)h->bound_hits);
    jsonx_add_int(data, "commits", (int64_t)h->commits);
    cJSON_AddNumberToObject(data, "commit_ms_avg",
                            h->commits ? (double)h->commit_us / 1000.0 / (double)h->commits : 0);
    return op_jobs(h, NULL, data);
}

static cJSON *op_dispatch(hub *h, const cJSON *req, const char *op_id);

static void handle_op_message(hub *h, const char *op_id, const char *topic, const void *payload,
                              size_t len, const char *kid, const char *sig)
{
    msg_header hdr;
    cJSON *req = authenticate(h, op_id, topic, payload, len, kid, sig, lookup_operator, &hdr);
    if (!req) return;
    cJSON *resp = op_dispatch(h, req, op_id);
    if (resp) queue_reply(h, "op", op_id, "resp", resp, "resp");
    cJSON_Delete(req);
}

static void add_head(cJSON *data, const audit_sth *head)
{
    cJSON *o = auditlog_head_to_json(head);
    if (o) cJSON_AddItemToObject(data, "head", o);
}

/* audit_head: a tree head signed now over the whole log. */
static int op_audit_head(hub *h, cJSON *data)
{
    audit_sth head;
    int rc = auditlog_sign_head(h->audit, &h->identity, os_now_ms(), &head);
    if (rc != OP_OK) return rc;
    h->head_size = head.size;
    add_head(data, &head);
    return OP_OK;
}

/* audit_prove {index}: the entry, its inclusion proof and the signed head it is proven against. */
static int op_audit_prove(hub *h, const cJSON *req, cJSON *data, char *err, size_t err_len)
{
    int64_t index;
    if (jsonx_int(req, "index", 0, INT64_MAX, &index) != OP_OK ||
        (uint64_t)index >= auditlog_size(h->audit)) {
        snprintf(err, err_len, "no audit entry %s (the log has %llu)",
                 cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(req, "index")) ? "with that index"
                                                                                : "given",
                 (unsigned long long)auditlog_size(h->audit));
        return OP_ENOTFOUND;
    }
    audit_sth head;
    int rc = auditlog_sign_head(h->audit, &h->identity, os_now_ms(), &head);
    if (rc != OP_OK) return rc;
    h->head_size = head.size;
    char *text = NULL;
    uint8_t leaf[32], proof[AUDIT_MAX_PROOF][32];
    size_t len = 0;
    if ((rc = auditlog_entry(h->audit, (uint64_t)index, &text, leaf)) != OP_OK) return rc;
    rc = auditlog_inclusion_proof(h->audit, (uint64_t)index, head.size, proof, &len);
    if (rc == OP_OK) {
        jsonx_add_int(data, "index", index);
        cJSON_AddStringToObject(data, "entry", text);
        cJSON *arr = cJSON_AddArrayToObject(data, "proof");
        for (size_t i = 0; arr && i < len; i++) {
            char hex[65];
            util_hex(proof[i], 32, hex);
            cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
        }
        add_head(data, &head);
        cJSON_AddStringToObject(data, "hub_pubkey", h->identity.pk_hex);
    }
    free(text);
    return rc;
}

/* audit_entries {from, limit, subject, kind}: entries in order, filtered. */
static int op_audit_entries(hub *h, const cJSON *req, cJSON *data)
{
    int64_t from = 0, limit = 50;
    jsonx_int(req, "from", 0, INT64_MAX, &from);
    jsonx_int(req, "limit", 1, 1000, &limit);
    const char *subject = jsonx_str(req, "subject");
    const char *kind = jsonx_str(req, "kind");
    sqlite3_stmt *st = store_stmt(h->db, "SELECT idx, entry FROM audit_entries WHERE idx >= ?1"
                                         " AND (?2 IS NULL OR json_extract(entry,'$.subject')=?2)"
                                         " AND (?3 IS NULL OR json_extract(entry,'$.kind')=?3)"
                                         " ORDER BY idx LIMIT ?4");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, from);
    store_bind_text(st, 2, subject);
    store_bind_text(st, 3, kind);
    sqlite3_bind_int64(st, 4, limit);
    cJSON *arr = cJSON_AddArrayToObject(data, "entries");
    while (arr && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *e = cJSON_Parse(store_col_text(st, 1));
        if (e) cJSON_AddItemToArray(arr, e);
    }
    sqlite3_reset(st);
    jsonx_add_int(data, "size", (int64_t)auditlog_size(h->audit));
    return OP_OK;
}

static int op_approve(hub *h, const cJSON *req, const char *op_id, char *err, size_t err_len)
{
    int64_t id;
    if (req_job_id(req, &id, err, err_len) != OP_OK) return OP_EINVAL;
    sqlite3_stmt *st = store_stmt(h->db, "UPDATE jobs SET awaiting_approval=0, reason=NULL WHERE"
                                         " id=? AND awaiting_approval=1 AND state='queued'");
    if (!st) return OP_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    int rc = check_rc(h, store_step_done(h->db, st));
    if (rc != OP_OK) return rc;
    if (store_changes(h->db) == 0) {
        snprintf(err, err_len, "job %lld is not awaiting approval", (long long)id);
        return OP_EINVAL;
    }
    job_event(h, id, 0, NULL, "approved", op_id);
    h->placement_dirty = 1;
    return OP_OK;
}

static int op_policy_get(hub *h, cJSON *data)
{
    cJSON_AddStringToObject(data, "text", h->policy_text ? h->policy_text : "");
    jsonx_add_int(data, "version", h->policy ? policy_version(h->policy) : 0);
    cJSON_AddStringToObject(data, "sha256", h->policy ? policy_hash(h->policy) : "");
    return OP_OK;
}

/* policy_set {text}: validated, written to <data-dir>/policy, in force at once, logged. */
static int op_policy_set(hub *h, const cJSON *req, const char *op_id, cJSON *data, char *err,
                         size_t err_len)
{
    const char *text = jsonx_str(req, "text");
    policy *p = NULL;
    if (!text) {
        snprintf(err, err_len, "'text' is required");
        return OP_EINVAL;
    }
    int rc = policy_parse(text, "policy", &p, err, err_len);
    if (rc != OP_OK) return rc;
    if (h->policy && policy_version(p) <= policy_version(h->policy)) {
        snprintf(err, err_len, "version %d is not newer than the policy in force (version %d)",
                 policy_version(p), policy_version(h->policy));
        policy_free(p);
        return OP_EINVAL;
    }
    char path[PATH_MAX];
    char *copy = strdup(text);
    if (!copy || util_fmt(path, sizeof path, "%s/policy", h->data_dir) != OP_OK ||
        os_write_file_atomic(path, text, strlen(text), 0644) != OP_OK) {
        free(copy);
        policy_free(p);
        snprintf(err, err_len, "cannot write the policy file");
        return OP_EIO;
    }
    cJSON *body = cJSON_CreateObject();
    if (body) {
        jsonx_add_int(body, "version", policy_version(p));
        cJSON_AddStringToObject(body, "sha256", policy_hash(p));
        cJSON_AddStringToObject(body, "previous", h->policy ? policy_hash(h->policy) : "");
    }
    char subject[80];
    snprintf(subject, sizeof subject, "op:%s", op_id);
    audit_record(h, "policy", subject, body);
    policy_free(h->policy);
    free(h->policy_text);
    h->policy = p;
    h->policy_text = copy;
    h->placement_dirty = 1;
    log_info("hub", "operator %s set policy version %d (sha256 %.16s...)", op_id, policy_version(p),
             policy_hash(p));
    return op_policy_get(h, data);
}

/* Runs one authenticated operator request; returns the response body (caller owns) or NULL. */
static cJSON *op_dispatch(hub *h, const cJSON *req, const char *op_id)
{
    int rc;
    cJSON *resp = cJSON_CreateObject();
    cJSON *data = cJSON_CreateObject();
    char err[512] = "";
    const char *cmd = jsonx_str(req, "cmd");
    const char *rid = jsonx_str(req, "rid");
    if (!resp || !data) {
        cJSON_Delete(resp);
        cJSON_Delete(data);
        return NULL;
    }
    if (!cmd)
        rc = OP_EINVAL, snprintf(err, sizeof err, "request has no 'cmd'");
    else if (strcmp(cmd, "submit") == 0)
        rc = op_submit(h, req, op_id, data, err, sizeof err);
    else if (strcmp(cmd, "jobs") == 0)
        rc = op_jobs(h, req, data);
    else if (strcmp(cmd, "job") == 0)
        rc = op_job(h, req, data, 0, err, sizeof err);
    else if (strcmp(cmd, "result") == 0)
        rc = op_job(h, req, data, 1, err, sizeof err);
    else if (strcmp(cmd, "sites") == 0)
        rc = op_sites(h, data);
    else if (strcmp(cmd, "token") == 0)
        rc = op_token(h, req, op_id, data, err, sizeof err);
    else if (strcmp(cmd, "cancel") == 0)
        rc = op_cancel(h, req, err, sizeof err);
    else if (strcmp(cmd, "stats") == 0)
        rc = op_stats(h, data);
    else if (strcmp(cmd, "approve") == 0)
        rc = op_approve(h, req, op_id, err, sizeof err);
    else if (strcmp(cmd, "policy_get") == 0)
        rc = op_policy_get(h, data);
    else if (strcmp(cmd, "policy_set") == 0)
        rc = op_policy_set(h, req, op_id, data, err, sizeof err);
    else if (!h->audit && strncmp(cmd, "audit_", 6) == 0)
        rc = OP_EINVAL, snprintf(err, sizeof err, "this hub keeps no audit log");
    else if (strcmp(cmd, "audit_head") == 0)
        rc = op_audit_head(h, data);
    else if (strcmp(cmd, "audit_prove") == 0)
        rc = op_audit_prove(h, req, data, err, sizeof err);
    else if (strcmp(cmd, "audit_entries") == 0)
        rc = op_audit_entries(h, req, data);
    else
        rc = OP_EINVAL, snprintf(err, sizeof err, "unknown command '%.32s'", cmd);
    cJSON_AddStringToObject(resp, "rid", rid ? rid : "");
    cJSON_AddBoolToObject(resp, "ok", rc == OP_OK);
    if (rc != OP_OK) {
        cJSON_AddStringToObject(resp, "error", err[0] ? err : op_strerror(rc));
        jsonx_add_int(resp, "code", rc);
        cJSON_Delete(data);
    } else {
        cJSON_AddItemToObject(resp, "data", data);
    }
    return resp;
}

/* ---------- loop ---------- */

static void on_message(void *ctx, const char *topic, const void *payload, size_t len,
                       const char *kid, const char *sig)
{
    hub *h = ctx;
    char realm[8], id[64], leaf[16];
    if (proto_parse_topic(topic, realm, id, leaf) != OP_OK) {
        h->msg.malformed++;
        log_warn("hub", "dropped message on unexpected topic '%.100s'", topic);
        return;
    }
    if (!store_in_tx(h->db) && store_begin(h->db) != OP_OK) {
        h->store_failed = 1;
        return;
    }
    if (strcmp(realm, "site") == 0)
        handle_site_message(h, id, leaf, topic, payload, len, kid, sig);
    else if (strcmp(leaf, "req") == 0)
        handle_op_message(h, id, topic, payload, len, kid, sig);
}

static int write_cli_conf(hub *h)
{
    char path[PATH_MAX], text[1024];
    if (util_fmt(path, sizeof path, "%s/cli.conf", h->data_dir) != OP_OK) return OP_ETOOBIG;
    if (util_fmt(text, sizeof text,
                 "# Written by `outpost hub` at start: what a CLI needs to reach this hub.\n"
                 "hub_id = %s\nhub_pubkey = %s\nbroker_host = %s\nbroker_port = %lld\n",
                 h->identity.id, h->identity.pk_hex, h->broker_host,
                 (long long)h->broker_port) != OP_OK)
        return OP_ETOOBIG;
    return os_write_file_atomic(path, text, strlen(text), 0644);
}

/* First start: a local admin operator identity, authorized in <data>/operators. */
static int ensure_operators(hub *h)
{
    char path[PATH_MAX], admin_dir[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/operators", h->data_dir) != OP_OK ||
        util_fmt(admin_dir, sizeof admin_dir, "%s/admin", h->data_dir) != OP_OK)
        return OP_ETOOBIG;
    if (access(path, F_OK) == 0) return OP_OK;
    ident admin;
    int rc = keyfile_load_or_create(admin_dir, "admin", &admin);
    if (rc != OP_OK) return rc;
    char line[PATH_MAX + 200];
    rc = util_fmt(line, sizeof line,
                  "# Authorized operator public keys, one per line (hex), then a comment.\n%s "
                  "local admin (%s)\n",
                  admin.pk_hex, admin_dir);
    ident_wipe(&admin);
    if (rc != OP_OK) return rc;
    log_info("hub", "created local admin operator identity in %s", admin_dir);
    return os_write_file_atomic(path, line, strlen(line), 0600);
}

static int parse_config(hub *h, const char *config_path, char *err, size_t err_len)
{
    conf *c = NULL;
    int rc = config_path ? conf_load(config_path, hub_conf_keys, &c, err, err_len) : OP_OK;
    if (rc != OP_OK) return rc;
    if (!c && !(c = conf_empty())) return OP_ENOMEM;
    const char *hub_id = conf_str(c, "hub_id", "hub");
    snprintf(h->identity.id, sizeof h->identity.id, "%s", hub_id);
    snprintf(h->broker_host, sizeof h->broker_host, "%s", conf_str(c, "broker_host", "127.0.0.1"));
    const char *level = conf_str(c, "log_level", NULL);
    if (!util_valid_id(hub_id)) {
        snprintf(err, err_len, "hub_id '%s' must be [A-Za-z0-9_-]{1,63}", hub_id);
        rc = OP_EINVAL;
    } else if (level && log_parse_level(level) < 0) {
        snprintf(err, err_len, "log_level must be debug, info, warn or error");
        rc = OP_EINVAL;
    }
    if (rc == OP_OK && level) log_set_level(log_parse_level(level));
    if (rc == OP_OK) rc = conf_int(c, "broker_port", 1883, 1, 65535, &h->broker_port, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "site_lost_after_ms", 6000, 200, 86400000, &h->site_lost_after_ms, err,
                      err_len);
    if (rc == OP_OK) rc = conf_int(c, "lease_ms", 15000, 200, 86400000, &h->lease_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "offline_lease_ms", 3600000, 1000, 7 * 86400000LL, &h->offline_lease_ms,
                      err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "clock_skew_ms", 120000, 1000, 86400000, &h->clock_skew_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "fleet_index_from", 500, 1, 100000000, &h->fleet_index_from, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "audit_head_ms", 10000, 100, 86400000, &h->audit_head_ms, err, err_len);
    if (rc == OP_OK)
        rc =
            conf_int(c, "max_queued_jobs", 100000, 1, 100000000, &h->max_queued_jobs, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "token_ttl_s", 86400, 1, 365LL * 86400, &h->token_ttl_s, err, err_len);
    conf_free(c);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost hub --data-dir DIR [--config FILE] [--broker-port N]\n"
                 "\n"
                 "Runs the hub: fleet registry, job store, placement, enrollment and the\n"
                 "operator API over the MQTT broker. State lives in DIR (created if missing):\n"
                 "hub.db, identity/, operators, admin/ (local operator key), cli.conf.\n"
                 "\n"
                 "  --data-dir DIR     state directory (required)\n"
                 "  --config FILE      configuration (see examples/hub.conf)\n"
                 "  --broker-port N    overrides broker_port from the configuration\n"
                 "  --log-level L      debug, info, warn or error\n"
                 "\n"
                 "SIGTERM or SIGINT stops it cleanly. Exit codes: 0 stopped, 1 runtime failure,\n"
                 "2 bad usage or configuration.\n");
}

int hub_main(int argc, char **argv)
{
    static struct option opts[] = {{"data-dir", required_argument, 0, 'd'},
                                   {"config", required_argument, 0, 'c'},
                                   {"broker-port", required_argument, 0, 'p'},
                                   {"log-level", required_argument, 0, 'l'},
                                   {"help", no_argument, 0, 'h'},
                                   {0, 0, 0, 0}};
    const char *data_dir = NULL, *config_path = NULL, *port_text = NULL, *level = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:p:l:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            data_dir = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'p':
            port_text = optarg;
            break;
        case 'l':
            level = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!data_dir) {
        fprintf(stderr, "outpost hub: --data-dir is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (level && log_parse_level(level) < 0) {
        fprintf(stderr, "outpost hub: --log-level must be debug, info, warn or error\n");
        return EXIT_USAGE;
    }
    hub *h = calloc(1, sizeof *h);
    if (!h) return EXIT_FAILURE_RUNTIME;
    int exit_code = EXIT_FAILURE_RUNTIME;
    char err[512] = "";
    snprintf(h->data_dir, sizeof h->data_dir, "%s", data_dir);
    if (parse_config(h, config_path, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost hub: %s\n", err);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (level) log_set_level(log_parse_level(level));
    if (port_text && util_parse_i64(port_text, 1, 65535, &h->broker_port) != OP_OK) {
        fprintf(stderr, "outpost hub: --broker-port must be 1-65535\n");
        exit_code = EXIT_USAGE;
        goto out;
    }
    char path[PATH_MAX];
    char hub_id[64];
    snprintf(hub_id, sizeof hub_id, "%s", h->identity.id);
    if (os_mkdir_p(data_dir) != OP_OK ||
        util_fmt(path, sizeof path, "%s/identity", data_dir) != OP_OK ||
        keyfile_load_or_create(path, hub_id, &h->identity) != OP_OK) {
        log_error("hub", "cannot set up identity in %s", data_dir);
        goto out;
    }
    if (ensure_operators(h) != OP_OK || load_operators(h) != OP_OK) goto out;
    if (util_fmt(path, sizeof path, "%s/policy", data_dir) == OP_OK &&
        os_read_file(path, 256 * 1024, &h->policy_text, NULL) == OP_OK &&
        policy_parse(h->policy_text, path, &h->policy, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost hub: %s\n", err);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (h->policy)
        log_info("hub", "policy version %d in force (%s)", policy_version(h->policy), path);
    if (util_fmt(path, sizeof path, "%s/hub.db", data_dir) != OP_OK ||
        store_open(path, hub_schema, 1, &h->db) != OP_OK)
        goto out;
    if (migrate(h) != OP_OK || load_sites(h) != OP_OK) goto out;
    if (auditlog_attach(h->db, &h->audit) != OP_OK) goto out;
    h->head_size = auditlog_size(h->audit);
    /* Fresh lease deadlines after a restart: sites get a full lease to check in again. */
    sqlite3_stmt *st = store_stmt(h->db, "UPDATE jobs SET lease_expires_at=? WHERE state IN"
                                         " ('placed','running')");
    if (!st) goto out;
    sqlite3_bind_int64(st, 1, os_now_ms() + h->lease_ms);
    if (store_step_done(h->db, st) != OP_OK) goto out;
    if (write_cli_conf(h) != OP_OK) {
        log_error("hub", "cannot write %s/cli.conf", data_dir);
        goto out;
    }
    char client_id[80];
    snprintf(client_id, sizeof client_id, "outpost-hub-%s", h->identity.id);
    bus_config bc = {.host = h->broker_host,
                     .port = (int)h->broker_port,
                     .client_id = client_id,
                     .clean_start = 0,
                     .session_expiry_s = 86400,
                     .keepalive_s = 10};
    if (bus_open(&bc, &h->identity, on_message, h, &h->bus) != OP_OK) goto out;
    const char *subs[] = {MSG_TOPIC_ROOT "site/+/hello", MSG_TOPIC_ROOT "site/+/state",
                          MSG_TOPIC_ROOT "site/+/event", MSG_TOPIC_ROOT "site/+/result",
                          MSG_TOPIC_ROOT "op/+/req"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        bus_subscribe(h->bus, subs[i]);
    runctl_install();
    log_info("hub", "hub %s started (pubkey %.16s..., %zu sites, broker %s:%lld, data %s)",
             h->identity.id, h->identity.pk_hex, h->n_sites, h->broker_host,
             (long long)h->broker_port, data_dir);
    h->placement_dirty = 1;
    while (!runctl_stopping()) {
        if (bus_loop(h->bus, 20) != OP_OK) break;
        int64_t now = os_mono_ms();
        if (now >= h->next_check_ms || h->placement_dirty || store_in_tx(h->db)) {
            if (!store_in_tx(h->db) && store_begin(h->db) != OP_OK) {
                h->store_failed = 1;
            } else {
                if (now >= h->next_check_ms) {
                    check_fleet(h);
                    h->next_check_ms = now + 250;
                }
                if (now >= h->next_seq_flush_ms) {
                    flush_seqs(h);
                    h->next_seq_flush_ms = now + 5000;
                }
                if (now >= h->next_head_ms) {
                    audit_sign_head(h);
                    h->next_head_ms = now + h->audit_head_ms;
                }
                if (h->placement_dirty || now >= h->next_place_ms) {
                    h->placement_dirty = 0;
                    place_queued(h);
                    h->next_place_ms = now + 1000;
                }
            }
        }
        if (store_in_tx(h->db)) {
            int64_t commit_start = os_mono_us();
            int rc = h->store_failed ? OP_ESTORE : store_commit(h->db);
            h->commits++;
            h->commit_us += os_mono_us() - commit_start;
            if (rc != OP_OK) {
                /* Nothing was promised yet: drop the batch; senders will retry. */
                store_rollback(h->db);
                discard_outgoing(h);
                log_error("hub", "store transaction failed; batch rolled back");
                h->store_failed = 0;
                continue;
            }
        }
        flush_outgoing(h);
    }
    if (!store_in_tx(h->db)) store_begin(h->db);
    audit_sign_head(h);
    store_commit(h->db);
    flush_seqs(h);
    flush_outgoing(h);
    log_info("hub",
             "stopping: %llu jobs submitted, %llu results applied, %llu duplicate,"
             " %llu stale this run",
             (unsigned long long)h->jobs_submitted, (unsigned long long)h->results_applied,
             (unsigned long long)h->results_duplicate, (unsigned long long)h->results_stale);
    exit_code = EXIT_OK;
out:
    if (h->bus) bus_close(h->bus);
    discard_outgoing(h);
    auditlog_close(h->audit);
    policy_free(h->policy);
    free(h->policy_text);
    store_close(h->db);
    ident_wipe(&h->identity);
    for (size_t i = 0; i < h->n_sites; i++)
        cJSON_Delete(h->sites[i].messages);
    free(h->sites);
    free(h);
    return exit_code;
}

/*
 * Fuzzing entry (fuzz/fuzz_hub.c): feeds one body, as if it came
 * authenticated from site "s1" or operator "op-fuzz", to the hub's handlers
 * and runs placement and the fleet checks, against an in-memory store. The
 * first byte picks the handler. Never used by the daemon.
 */
int hub__fuzz_one(const uint8_t *data, size_t len)
{
    static hub *h;
    static int calls;
    if (!h) {
        log_set_level(LOG_LEVEL_ERROR + 1);
        h = calloc(1, sizeof *h);
        if (!h || store_open(":memory:", hub_schema, 0, &h->db) != OP_OK) abort();
        snprintf(h->identity.id, sizeof h->identity.id, "hub");
        crypto_sign_keypair(h->identity.pk, h->identity.sk);
        h->lease_ms = 1000;
        h->offline_lease_ms = 60000;
        h->fleet_index_from = 0; /* through the index, which small fleets would not take */
        h->site_lost_after_ms = 1000;
        h->max_queued_jobs = 1000;
        h->token_ttl_s = 60;
        hub_site *s = add_site(h, "s1");
        s->class_bit = CLASS_DC;
        s->cores = 4;
        s->memory_mb = 4096;
        s->power_budget_watts = 400;
        s->watts_per_core = 40;
        s->alive = 1;
        s->last_heartbeat_mono = os_mono_ms();
        snprintf(h->operators[0].id, sizeof h->operators[0].id, "op-fuzz");
        h->n_operators = 1;
    }
    if (len < 1) return 0;
    cJSON *body = cJSON_ParseWithLength((const char *)data + 1, len - 1);
    if (!body) return 0;
    hub_site *s = &h->sites[0];
    store_begin(h->db);
    switch (data[0] % 5) {
    case 0:
        handle_state(h, s, body);
        break;
    case 1:
        handle_events(h, s, body);
        break;
    case 2:
        handle_results(h, s, body);
        break;
    case 3:
        update_site_capacity(h, s, body);
        break;
    default:
        cJSON_Delete(op_dispatch(h, body, "op-fuzz"));
        break;
    }
    place_queued(h);
    check_fleet(h);
    store_commit(h->db);
    discard_outgoing(h);
    cJSON_Delete(body);
    if (++calls % 500 == 0) /* keep the in-memory store small */
        store_exec(h->db, "DELETE FROM jobs; DELETE FROM results; DELETE FROM job_events;"
                          " DELETE FROM tokens;");
    return 0;
}
