#include "site/site.h"

#include "base/conf.h"
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/policy.h"
#include "core/power.h"
#include "core/sched.h"
#include "io/auditlog.h"
#include "io/bus.h"
#include "io/keyfile.h"
#include "io/sandbox.h"
#include "io/store.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"
#include "wire/token.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SITE_MAX_RUNNING 256
#define SITE_MAX_OUTPUT_TOTAL (2 * 1024 * 1024)
#define SITE_MAX_STD_CAPTURE (256 * 1024)
#define SITE_RESEND_BATCH 512 /* results per resend message; acks clock the next one out */
#define SITE_RESEND_BATCH_BYTES (2 * 1024 * 1024)

static const char *site_conf_keys[] = {"site_id",        "broker_host",   "broker_port",
                                       "cores",          "memory_mb",     "power_budget_watts",
                                       "watts_per_core", "idle_watts",    "heartbeat_ms",
                                       "max_jobs",       "cgroup_dir",    "log_level",
                                       "resend_ms",      "clock_skew_ms", "audit_head_ms",
                                       "policy_file",    "route_program", "local_socket",
                                       "power_trace",    "reaction_ms",   "meter_topic",
                                       "region",         "pause_max_ms",  "departure_lead_ms",
                                       "price",          "carbon",        NULL};

static const char *site_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " spec TEXT NOT NULL, state TEXT NOT NULL, accepted_at INTEGER NOT NULL,"
    " PRIMARY KEY(job_id, attempt));"
    "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " job_id INTEGER NOT NULL, attempt INTEGER NOT NULL, body TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, UNIQUE(job_id, attempt));"
    "CREATE TABLE IF NOT EXISTS leases(job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " lease_ms INTEGER NOT NULL, PRIMARY KEY(job_id, attempt));";

typedef struct site_job {
    int64_t job_id;
    int64_t attempt;
    jobspec spec;
    sandbox_run *run; /* exec jobs */
    char workdir[PATH_MAX];
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
} site_job;

typedef struct site {
    ident identity;
    char data_dir[PATH_MAX];
    char class_name[8];
    store *db;
    bus *bus;
    char broker_host[256];
    int64_t broker_port;
    int64_t cores, memory_mb, heartbeat_ms, max_jobs, resend_ms, clock_skew_ms;
    double power_budget_watts, watts_per_core, idle_watts;
    char cgroup_dir[PATH_MAX];
    char route_program[PATH_MAX]; /* the outpost binary route jobs run (default: this one) */
    sandbox_caps caps;
    char hub_id[64];
    uint8_t hub_pk[32];
    int have_hub;
    msg_window hub_window;
    int enrolled; /* welcome received */
    int refused;
    char refusal[256];
    const char *token_text;
    site_job *jobs[SITE_MAX_RUNNING];
    int n_jobs;
    int used_cores;
    int64_t used_memory_mb;
    cJSON *events;  /* started/refused, sent after commit */
    cJSON *results; /* fresh results, sent after commit */
    int store_failed;
    auditlog *audit;        /* what this site accepted, refused and ran, in site.db */
    policy *policy;         /* the owner's own rules (policy_file), or NULL */
    audit_sth head;         /* its latest signed head, sent in heartbeats */
    uint64_t hub_head_size; /* size of the hub's last head witnessed here */
    int64_t next_head_ms, audit_head_ms;
    int64_t next_heartbeat_ms, next_hello_ms, next_resend_ms;
    msg_stats msg;
    uint64_t jobs_run, results_acked;
    int local_fd; /* outpost submit --local: a unix socket in the data dir */
    char local_path[PATH_MAX];
    char local_cfg[PATH_MAX]; /* local_socket from the config: a path, "off", or "" */
    cJSON *locals;            /* results of local jobs to send after this iteration's commit */
    int64_t last_contact_ms;  /* wall clock of the hub's last authenticated message */
    int64_t contact_saved_ms; /* what the store holds (meta last_hub_contact) */
    int64_t next_lease_check_ms;
    int leaving; /* `outpost leave`: the owner unplugs; stop, hand back, exit */
    int backlog; /* the last resend was a full batch: more waits in the outbox */
    /* power_trace: the envelope over time (offset from start, watts), step-wise */
    power_trace trace; /* power_trace: watts, and price and carbon where given */
    int64_t trace_start_mono, reaction_ms, next_power_check_ms;
    char trace_path[PATH_MAX];
    int64_t leave_deadline_ms; /* mono ms: exit by then even if results are still unsent */
    /* power signals (issue 3): config, trace, meter topic and `outpost power` */
    double budget_watts;   /* power_budget_watts from the config */
    char meter_topic[256]; /* unsigned JSON from the site's own meter; "" off */
    power_meter meter;     /* the latest of each field from the meter or a command */
    int64_t region, pause_max_ms, departure_lead_ms;
    power_forecaster forecaster; /* the envelope's own history */
    power_grid_ring grid_ring;   /* price and carbon over the last day, for the grid rank */
    int64_t next_observe_ms, last_meter_check_ms;
    int inside_envelope; /* draw <= envelope at the last check */
} site;

static void add_power_report(site *s, cJSON *body);
static void add_receipt(site *s, site_job *j, cJSON *r, double joules);

#define SITE_LOCAL_MAX_REQUEST (8 * 1024 * 1024)
#define SITE_MAX_CHECKPOINT (1024 * 1024) /* handed back with a departing job */

/* ---------- durable state ---------- */

static int meta_get(site *s, const char *key, char *out, size_t out_len)
{
    sqlite3_stmt *st = store_stmt(s->db, "SELECT value FROM meta WHERE key=?");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = OP_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, out_len, "%s", store_col_text(st, 0));
        rc = OP_OK;
    }
    sqlite3_reset(st);
    return rc;
}

static int meta_set(site *s, const char *key, const char *value)
{
    sqlite3_stmt *st = store_stmt(s->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)");
    if (!st) return OP_ESTORE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    return store_step_done(s->db, st);
}

static int ensure_tx(site *s)
{
    if (store_in_tx(s->db)) return OP_OK;
    int rc = store_begin(s->db);
    if (rc != OP_OK) s->store_failed = 1;
    return rc;
}

/* Appends to the site's own audit log, in the loop's transaction. */
static void audit_job(site *s, const char *kind, int64_t job_id, int64_t attempt,
                      const char *detail)
{
    if (!s->audit || ensure_tx(s) != OP_OK) return;
    char subject[40];
    snprintf(subject, sizeof subject, "job:%lld", (long long)job_id);
    cJSON *body = cJSON_CreateObject();
    char *text = NULL;
    if (body) {
        jsonx_add_int(body, "job", job_id);
        jsonx_add_int(body, "attempt", attempt);
        if (detail) cJSON_AddStringToObject(body, "detail", detail);
        text = cJSON_PrintUnformatted(body);
    }
    cJSON_Delete(body);
    if (!text || auditlog_append(s->audit, os_now_ms(), kind, subject, text, NULL) != OP_OK)
        s->store_failed = 1;
    free(text);
}

/* ---------- messages to the hub ---------- */

static int publish(site *s, const char *leaf, cJSON *body, const char *type)
{
    char topic[PROTO_TOPIC_MAX];
    int rc = proto_topic(topic, sizeof topic, "site", s->identity.id, leaf);
    if (rc == OP_OK) rc = bus_publish(s->bus, topic, body, type);
    return rc;
}

static void add_event(site *s, int64_t job_id, int64_t attempt, const char *event,
                      const char *reason)
{
    if (job_id < 0) return; /* a local job: the hub hears of it with its result */
    if (!s->events) s->events = cJSON_CreateArray();
    cJSON *e = cJSON_CreateObject();
    if (!s->events || !e) {
        cJSON_Delete(e);
        return;
    }
    jsonx_add_int(e, "job", job_id);
    jsonx_add_int(e, "attempt", attempt);
    cJSON_AddStringToObject(e, "event", event);
    if (reason) cJSON_AddStringToObject(e, "reason", reason);
    cJSON_AddItemToArray(s->events, e);
}

/* 1 if this iteration's results already answer (job, attempt): its "started" is redundant. */
static int has_result(const site *s, const cJSON *event)
{
    int64_t job, attempt, rj, ra;
    const cJSON *r;
    if (jsonx_int(event, "job", 1, INT64_MAX, &job) != OP_OK ||
        jsonx_int(event, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
        return 0;
    cJSON_ArrayForEach(r, s->results) if (jsonx_int(r, "job", 1, INT64_MAX, &rj) == OP_OK &&
                                          jsonx_int(r, "attempt", 1, INT64_MAX, &ra) == OP_OK &&
                                          rj == job && ra == attempt) return 1;
    return 0;
}

/*
 * Sends this iteration's events and results (after its commit). A job that
 * finished within the iteration it started in (no-op, instant failure) needs
 * no "started" event: one message to the hub instead of two.
 */
static void send_batches(site *s)
{
    for (cJSON *e = s->events ? s->events->child : NULL; e;) {
        cJSON *next = e->next;
        const char *kind = jsonx_str(e, "event");
        if (kind && strcmp(kind, "started") == 0 && has_result(s, e))
            cJSON_Delete(cJSON_DetachItemViaPointer(s->events, e));
        e = next;
    }
    if (s->events && !s->events->child) {
        cJSON_Delete(s->events);
        s->events = NULL;
    }
    if (s->events) {
        cJSON *body = cJSON_CreateObject();
        if (body) {
            cJSON_AddItemToObject(body, "events", s->events);
            publish(s, "event", body, "event");
            cJSON_Delete(body);
        } else {
            cJSON_Delete(s->events);
        }
        s->events = NULL;
    }
    if (s->results || s->locals) {
        cJSON *body = cJSON_CreateObject();
        if (body) {
            if (s->results) cJSON_AddItemToObject(body, "results", s->results);
            if (s->locals) cJSON_AddItemToObject(body, "locals", s->locals);
            publish(s, "result", body, "result");
            cJSON_Delete(body);
        } else {
            cJSON_Delete(s->results);
            cJSON_Delete(s->locals);
        }
        s->results = s->locals = NULL;
    }
}

static void send_hello(site *s)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "pubkey", s->identity.pk_hex);
    if (s->token_text && !s->enrolled) cJSON_AddStringToObject(body, "token", s->token_text);
    jsonx_add_int(body, "cores", s->cores);
    jsonx_add_int(body, "memory_mb", s->memory_mb);
    cJSON_AddNumberToObject(body, "power_budget_watts", s->power_budget_watts);
    cJSON_AddNumberToObject(body, "watts_per_core", s->watts_per_core);
    cJSON_AddNumberToObject(body, "idle_watts", s->idle_watts);
    cJSON_AddStringToObject(body, "protections_off", s->caps.missing);
    publish(s, "hello", body, "hello");
    cJSON_Delete(body);
}

static void send_heartbeat(site *s)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *running = body ? cJSON_AddArrayToObject(body, "running") : NULL;
    if (!running) {
        cJSON_Delete(body);
        return;
    }
    jsonx_add_int(body, "cores", s->cores);
    jsonx_add_int(body, "memory_mb", s->memory_mb);
    jsonx_add_int(body, "free_cores", s->leaving ? 0 : s->cores - s->used_cores);
    jsonx_add_int(body, "free_memory_mb", s->memory_mb - s->used_memory_mb);
    cJSON_AddNumberToObject(body, "power_budget_watts", s->power_budget_watts);
    cJSON_AddNumberToObject(body, "watts_per_core", s->watts_per_core);
    cJSON_AddNumberToObject(body, "idle_watts", s->idle_watts);
    cJSON_AddNumberToObject(body, "draw_watts", s->idle_watts + s->used_cores * s->watts_per_core);
    cJSON_AddStringToObject(body, "protections_off", s->caps.missing);
    if (s->head.size > 0)
        cJSON_AddItemToObject(body, "audit_head", auditlog_head_to_json(&s->head));
    cJSON *rejected = cJSON_AddObjectToObject(body, "messages");
    if (rejected) msg_stats_to_json(&s->msg, rejected);
    add_power_report(s, body);
    for (int i = 0; i < s->n_jobs; i++) {
        if (s->jobs[i]->job_id < 0) continue; /* local: not the hub's to renew */
        cJSON *r = cJSON_CreateObject();
        if (!r) break;
        jsonx_add_int(r, "job", s->jobs[i]->job_id);
        jsonx_add_int(r, "attempt", s->jobs[i]->attempt);
        cJSON_AddItemToArray(running, r);
    }
    publish(s, "state", body, "state");
    cJSON_Delete(body);
}

/*
 * Resends every outbox entry (oldest first, bounded batch) until the hub
 * acknowledges it; the hub is idempotent per (job, attempt).
 */
static void resend_outbox(site *s)
{
    sqlite3_stmt *st = store_stmt(s->db, "SELECT body, job_id FROM outbox WHERE created_at < ?"
                                         " ORDER BY id LIMIT ?");
    if (!st) return;
    sqlite3_bind_int64(st, 1, os_now_ms() - s->resend_ms);
    sqlite3_bind_int(st, 2, SITE_RESEND_BATCH);
    cJSON *results = cJSON_CreateArray(), *locals = cJSON_CreateArray();
    size_t bytes = 0;
    int n = 0;
    while (results && locals && sqlite3_step(st) == SQLITE_ROW && bytes < SITE_RESEND_BATCH_BYTES) {
        const char *text = store_col_text(st, 0);
        cJSON *r = cJSON_Parse(text);
        if (!r) continue;
        bytes += strlen(text);
        cJSON_AddItemToArray(sqlite3_column_int64(st, 1) < 0 ? locals : results, r);
        n++;
    }
    sqlite3_reset(st);
    s->backlog = n == SITE_RESEND_BATCH || bytes >= SITE_RESEND_BATCH_BYTES;
    cJSON *body = n ? cJSON_CreateObject() : NULL;
    if (!body) {
        cJSON_Delete(results);
        cJSON_Delete(locals);
        return;
    }
    cJSON_AddItemToObject(body, "results", results);
    cJSON_AddItemToObject(body, "locals", locals);
    log_debug("site", "resending %d unacknowledged result(s)", n);
    publish(s, "result", body, "result");
    cJSON_Delete(body);
}

/* ---------- running jobs ---------- */

static void remove_job(site *s, int index)
{
    site_job *j = s->jobs[index];
    s->used_cores -= j->spec.cores;
    s->used_memory_mb -= j->spec.memory_mb;
    sandbox_free(j->run);
    if (j->workdir[0]) os_rm_rf(j->workdir);
    jobspec_clear(&j->spec);
    free(j->local_spec);
    free(j);
    s->jobs[index] = s->jobs[--s->n_jobs];
}

static char *read_output_file(const char *dir, const char *name, size_t cap, size_t *len,
                              int *too_big)
{
    char path[PATH_MAX];
    *too_big = 0;
    if (util_fmt(path, sizeof path, "%s/%s", dir, name) != OP_OK) return NULL;
    /* The job controls its work dir: never follow a link it planted. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto out;
    if ((size_t)st.st_size > cap) {
        *too_big = 1;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) goto out;
    ssize_t n = read(fd, buf, (size_t)st.st_size);
    if (n != st.st_size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = (size_t)n;
out:
    close(fd);
    return buf;
}

static void add_text(cJSON *r, const char *key, const char *text, size_t len, int truncated)
{
    char trunc_key[40];
    size_t n = len > SITE_MAX_STD_CAPTURE ? SITE_MAX_STD_CAPTURE : len;
    char *copy = malloc(n + 1);
    if (!copy) return;
    memcpy(copy, text ? text : "", text ? n : 0);
    copy[text ? n : 0] = '\0';
    /* cJSON escapes control bytes; invalid UTF-8 passes through as bytes. */
    cJSON_AddStringToObject(r, key, copy);
    free(copy);
    snprintf(trunc_key, sizeof trunc_key, "%s_truncated", key);
    cJSON_AddBoolToObject(r, trunc_key, truncated || len > n);
}

/* Stores a result in the outbox (in the loop's transaction) and queues it to be sent. */
static void record_result(site *s, site_job *j, cJSON *result)
{
    if (j->job_id < 0) {
        /* A local job travels with its spec: the hub records it when it hears of it. */
        cJSON *item = cJSON_CreateObject();
        cJSON *spec = j->local_spec ? cJSON_Parse(j->local_spec) : NULL;
        if (!item || !spec) {
            cJSON_Delete(item);
            cJSON_Delete(spec);
            cJSON_Delete(result);
            s->store_failed = 1;
            return;
        }
        jsonx_add_int(item, "local_id", -j->job_id);
        cJSON_AddItemToObject(item, "spec", spec);
        cJSON_AddItemToObject(item, "result", result);
        result = item;
    }
    char *text = cJSON_PrintUnformatted(result);
    if (!text || ensure_tx(s) != OP_OK) {
        free(text);
        cJSON_Delete(result);
        s->store_failed = 1;
        return;
    }
    sqlite3_stmt *ins = store_stmt(s->db, "INSERT OR IGNORE INTO outbox(job_id, attempt, body,"
                                          " created_at) VALUES(?,?,?,?)");
    sqlite3_stmt *up = store_stmt(s->db, "UPDATE jobs SET state='done' WHERE job_id=? AND"
                                         " attempt=?");
    if (!ins || !up) {
        free(text);
        cJSON_Delete(result);
        s->store_failed = 1;
        return;
    }
    sqlite3_bind_int64(ins, 1, j->job_id);
    sqlite3_bind_int64(ins, 2, j->attempt);
    sqlite3_bind_text(ins, 3, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 4, os_now_ms());
    free(text);
    if (store_step_done(s->db, ins) != OP_OK) s->store_failed = 1;
    sqlite3_bind_int64(up, 1, j->job_id);
    sqlite3_bind_int64(up, 2, j->attempt);
    if (store_step_done(s->db, up) != OP_OK) s->store_failed = 1;
    cJSON **queue = j->job_id < 0 ? &s->locals : &s->results;
    if (!*queue) *queue = cJSON_CreateArray();
    int64_t exit_code = -1;
    const cJSON *inner =
        j->job_id < 0 ? cJSON_GetObjectItemCaseSensitive(result, "result") : result;
    jsonx_int(inner, "exit_code", -1, 255, &exit_code);
    if (*queue)
        cJSON_AddItemToArray(*queue, result);
    else
        cJSON_Delete(result);
    s->jobs_run++;
    char detail[64];
    snprintf(detail, sizeof detail, "exit code %lld", (long long)exit_code);
    audit_job(s, "result", j->job_id, j->attempt, detail);
}

static cJSON *new_result(site *s, site_job *j)
{
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    jsonx_add_int(r, "job", j->job_id);
    jsonx_add_int(r, "attempt", j->attempt);
    cJSON_AddStringToObject(r, "site", s->identity.id);
    cJSON_AddStringToObject(r, "kind", jobspec_kind_name(j->spec.kind));
    return r;
}

static void finish_exec(site *s, site_job *j, sandbox_result *res)
{
    cJSON *r = new_result(s, j);
    if (!r) return;
    jsonx_add_int(r, "exit_code", res->exit_code);
    jsonx_add_int(r, "term_signal", res->term_signal);
    cJSON_AddBoolToObject(r, "killed_wall", res->killed_wall);
    cJSON_AddNumberToObject(r, "cpu_seconds", res->cpu_seconds);
    jsonx_add_int(r, "peak_rss_bytes", res->peak_rss_bytes);
    jsonx_add_int(r, "wall_ms", res->wall_ms);
    /* Energy estimate: busy core-seconds at this site's watts per core. */
    cJSON_AddNumberToObject(r, "energy_joules", res->cpu_seconds * s->watts_per_core);
    add_receipt(s, j, r, res->cpu_seconds * s->watts_per_core);
    add_text(r, "stdout", res->stdout_text, res->stdout_len, res->stdout_truncated);
    add_text(r, "stderr", res->stderr_text, res->stderr_len, res->stderr_truncated);
    if (res->error[0]) cJSON_AddStringToObject(r, "error", res->error);
    cJSON *outputs = cJSON_AddArrayToObject(r, "outputs");
    cJSON *missing = cJSON_AddArrayToObject(r, "missing_outputs");
    size_t budget = (size_t)j->spec.output_bytes < SITE_MAX_OUTPUT_TOTAL
                        ? (size_t)j->spec.output_bytes
                        : SITE_MAX_OUTPUT_TOTAL;
    for (int i = 0; outputs && missing && i < j->spec.n_outputs; i++) {
        size_t len = 0;
        int too_big = 0;
        char *data = read_output_file(j->workdir, j->spec.outputs[i], budget, &len, &too_big);
        if (!data) {
            cJSON_AddItemToArray(missing, cJSON_CreateString(j->spec.outputs[i]));
            if (too_big)
                log_info("site", "job %lld: output %s exceeds its size limit", (long long)j->job_id,
                         j->spec.outputs[i]);
            continue;
        }
        budget -= len;
        char hash[65];
        util_sha256_hex(data, len, hash);
        char *b64 = util_b64_encode(data, len);
        free(data);
        cJSON *o = cJSON_CreateObject();
        if (!o || !b64) {
            cJSON_Delete(o);
            free(b64);
            continue;
        }
        cJSON_AddStringToObject(o, "name", j->spec.outputs[i]);
        cJSON_AddStringToObject(o, "sha256", hash);
        jsonx_add_int(o, "size", (int64_t)len);
        cJSON_AddStringToObject(o, "data_b64", b64);
        free(b64);
        cJSON_AddItemToArray(outputs, o);
    }
    log_info("site", "job %lld attempt %lld finished: exit %d, %.2f CPU s, %lld KiB peak",
             (long long)j->job_id, (long long)j->attempt, res->exit_code, res->cpu_seconds,
             (long long)(res->peak_rss_bytes / 1024));
    record_result(s, j, r);
}

static int write_inputs(site_job *j)
{
    for (int i = 0; i < j->spec.n_inputs; i++) {
        char path[PATH_MAX];
        if (util_fmt(path, sizeof path, "%s/%s", j->workdir, j->spec.inputs[i].name) != OP_OK)
            return OP_ETOOBIG;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return OP_EIO;
        size_t off = 0;
        while (off < j->spec.inputs[i].len) {
            ssize_t n = write(fd, j->spec.inputs[i].data + off, j->spec.inputs[i].len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fd);
                return OP_EIO;
            }
            off += (size_t)n;
        }
        close(fd);
    }
    return OP_OK;
}

/*
 * A job this site gives back unfinished (could not start it, lease ran out,
 * leaving, over its power envelope): a retryable result with the reason and,
 * when given, the checkpoint (taken). The hub places it again elsewhere.
 */
static void hand_back(site *s, site_job *j, const char *why, cJSON *checkpoint)
{
    cJSON *r = new_result(s, j);
    if (!r) {
        cJSON_Delete(checkpoint);
        return;
    }
    jsonx_add_int(r, "exit_code", -1);
    cJSON_AddStringToObject(r, "error", why);
    cJSON_AddStringToObject(r, "retryable", "site");
    if (checkpoint) cJSON_AddItemToObject(r, "checkpoint", checkpoint);
    record_result(s, j, r);
}

/* Starts an accepted job. Returns OP_OK, or an error after recording a retryable failure. */
static int start_job(site *s, site_job *j)
{
    char why[256] = "";
    if (j->spec.kind == JOB_KIND_NOOP) {
        cJSON *r = new_result(s, j);
        if (!r) return OP_ENOMEM;
        jsonx_add_int(r, "exit_code", 0);
        cJSON_AddNumberToObject(r, "cpu_seconds", 0);
        cJSON_AddNumberToObject(r, "energy_joules", 0);
        record_result(s, j, r);
        return OP_OK;
    }
    int rc = OP_OK;
    if (util_fmt(j->workdir, sizeof j->workdir, "%s/work/%lld-%lld", s->data_dir,
                 (long long)j->job_id, (long long)j->attempt) != OP_OK) {
        snprintf(why, sizeof why, "work dir path too long");
        rc = OP_ETOOBIG;
        goto fail;
    }
    os_rm_rf(j->workdir);
    if (os_mkdir_p(j->workdir) != OP_OK || write_inputs(j) != OP_OK) {
        snprintf(why, sizeof why, "cannot prepare work dir %.150s: %.60s", j->workdir,
                 strerror(errno));
        rc = OP_EIO;
        goto fail;
    }
    char name[64];
    snprintf(name, sizeof name, "job-%lld-%lld", (long long)j->job_id, (long long)j->attempt);
    /* a route job runs this site's own solver, `outpost route`, in the same sandbox as exec */
    char limit[32], seed[32];
    snprintf(limit, sizeof limit, "%g", j->spec.route_time_limit_s);
    snprintf(seed, sizeof seed, "%lld", (long long)j->spec.route_seed);
    char *route_argv[20];
    int ra = 0;
    route_argv[ra++] = s->route_program;
    route_argv[ra++] = "route";
    route_argv[ra++] = j->spec.inputs[0].name;
    route_argv[ra++] = "--time-limit";
    route_argv[ra++] = limit;
    route_argv[ra++] = "--seed";
    route_argv[ra++] = seed;
    route_argv[ra++] = "--out";
    route_argv[ra++] = "solution.json";
    route_argv[ra++] = "--svg";
    route_argv[ra++] = "routes.svg";
    route_argv[ra++] = "--quiet";
    route_argv[ra++] = "--checkpoint";
    route_argv[ra++] = j->spec.checkpoint;
    char ckpt_path[PATH_MAX];
    if (util_fmt(ckpt_path, sizeof ckpt_path, "%s/%s", j->workdir, j->spec.checkpoint) == OP_OK &&
        access(ckpt_path, R_OK) == 0) {
        route_argv[ra++] = "--resume"; /* handed back by a departing site: go on from there */
        route_argv[ra++] = j->spec.checkpoint;
    }
    route_argv[ra] = NULL;
    /*
     * Checkpoint hints: a job on a host that will leave (a parked car's stated departure)
     * is told how long it has and to checkpoint more often (a quarter of the stay, 1-30 min).
     */
    char env_stay[48] = "", env_every[48] = "", env_ckpt[160] = "";
    const char *extra_env[4] = {NULL};
    int ne = 0;
    int64_t every_s = 1800;
    if ((s->meter.has & POWER_METER_DEPARTURE) && s->meter.departure_ms > 0) {
        int64_t stay_s = (s->meter.departure_ms - s->departure_lead_ms - os_now_ms()) / 1000;
        if (stay_s < 0) stay_s = 0;
        every_s = stay_s / 4 < 60 ? 60 : stay_s / 4 > 1800 ? 1800 : stay_s / 4;
        snprintf(env_stay, sizeof env_stay, "OUTPOST_STAY_S=%lld", (long long)stay_s);
        extra_env[ne++] = env_stay;
    }
    if (j->spec.checkpoint[0]) {
        snprintf(env_ckpt, sizeof env_ckpt, "OUTPOST_CHECKPOINT=%s", j->spec.checkpoint);
        snprintf(env_every, sizeof env_every, "OUTPOST_CHECKPOINT_EVERY_S=%lld",
                 (long long)every_s);
        extra_env[ne++] = env_ckpt;
        extra_env[ne++] = env_every;
    }
    sandbox_spec spec = {
        .extra_env = extra_env,
        .workdir = j->workdir,
        .argv = j->spec.kind == JOB_KIND_ROUTE ? route_argv : j->spec.argv,
        .limits = {.cpu_seconds = j->spec.cpu_s,
                   .memory_bytes = j->spec.memory_mb * 1024 * 1024,
                   .open_files = j->spec.open_files,
                   .output_bytes = j->spec.output_bytes,
                   .wall_ms = j->spec.wall_s * 1000,
                   .cpu_cores = j->spec.cores},
        .cgroup_dir = s->caps.cgroup ? s->cgroup_dir : NULL,
        .job_name = name,
        .use_netns = s->caps.netns,
        .use_seccomp = s->caps.seccomp,
    };
    rc = sandbox_start(&spec, &j->run);
    if (rc != OP_OK) {
        snprintf(why, sizeof why, "sandbox could not start the job: %s", op_strerror(rc));
        goto fail;
    }
    j->started_mono = os_mono_ms();
    return OP_OK;
fail:
    hand_back(s, j, why, NULL);
    log_error("site", "job %lld: %s", (long long)j->job_id, why);
    return rc;
}

/*
 * A job stopped because the site leaves: handed back (retryable) with its
 * checkpoint file when it wrote one, so that it resumes elsewhere from there.
 */
static void departure_result(site *s, site_job *j)
{
    size_t len = 0;
    int too_big = 0;
    char *data = j->spec.checkpoint[0] ? read_output_file(j->workdir, j->spec.checkpoint,
                                                          SITE_MAX_CHECKPOINT, &len, &too_big)
                                       : NULL;
    char *b64 = data ? util_b64_encode((const uint8_t *)data, len) : NULL;
    cJSON *ck = b64 ? cJSON_CreateObject() : NULL;
    if (ck) {
        char hash[65];
        util_sha256_hex(data, len, hash);
        cJSON_AddStringToObject(ck, "name", j->spec.checkpoint);
        cJSON_AddStringToObject(ck, "sha256", hash);
        cJSON_AddStringToObject(ck, "data_b64", b64);
    }
    char why[200];
    snprintf(why, sizeof why, "%s %s; %s", s->identity.id,
             j->shed ? "shed it: its power envelope dropped below its draw"
                     : "left (its owner unplugged)",
             ck        ? "resumes elsewhere from its checkpoint"
             : too_big ? "its checkpoint was too big to hand back: starts again elsewhere"
                       : "no checkpoint: starts again elsewhere");
    log_info("site", "job %lld attempt %lld handed back: %s", (long long)j->job_id,
             (long long)j->attempt, why);
    free(data);
    free(b64);
    hand_back(s, j, why, ck);
}

/* The trace's row now (offsets count from the agent's start). */
static size_t trace_row(const site *s)
{
    return power_trace_at(&s->trace, os_mono_ms() - s->trace_start_mono);
}

/*
 * A grid signal now (price or carbon): the meter's or a command's (the config's
 * value stands there too), else the trace's column when that row gives one.
 */
static int grid_value(const site *s, unsigned bit, double meter_value, const double *column,
                      double *out)
{
    if (!(s->meter.has & bit) && s->trace.n) {
        double v = column[trace_row(s)];
        if (!isnan(v)) {
            *out = v;
            return 1;
        }
    }
    *out = meter_value;
    return (s->meter.has & bit) != 0;
}

static int site_price(const site *s, double *out)
{
    return grid_value(s, POWER_METER_PRICE, s->meter.price, s->trace.price, out);
}

static int site_carbon(const site *s, double *out)
{
    return grid_value(s, POWER_METER_CARBON, s->meter.carbon, s->trace.carbon, out);
}

/*
 * The envelope now and where it comes from: the meter's (or `outpost power`'s)
 * watts, else the trace, else the config; capped by a demand-response event
 * while it lasts; 0 from a parked car's stated departure, less a lead.
 */
static double current_envelope(const site *s, int64_t now_wall, const char **source)
{
    double e = s->budget_watts;
    *source = "config";
    if (s->trace.n) {
        e = s->trace.watts[trace_row(s)];
        *source = "trace";
    }
    if (s->meter.has & POWER_METER_WATTS) {
        e = s->meter.watts;
        *source = "meter";
    }
    if ((s->meter.has & POWER_METER_DR) && now_wall < s->meter.dr_until_ms &&
        s->meter.dr_watts < e) {
        e = s->meter.dr_watts;
        *source = "demand response";
    }
    if ((s->meter.has & POWER_METER_DEPARTURE) && s->meter.departure_ms > 0 &&
        now_wall >= s->meter.departure_ms - s->departure_lead_ms) {
        e = 0;
        *source = "departure";
    }
    return e;
}

static int job_draws(const site_job *j)
{
    return j->run && !j->cancelled && !j->departing_until && !j->paused_since;
}

/* The grid signal the rank is computed on: the price when known, else carbon. */
static int grid_signal(const site *s, double *out)
{
    return site_price(s, out) || site_carbon(s, out);
}

static void shed_job(site *s, site_job *j, double draw, double envelope)
{
    log_warn("site", "draw %.0f W over the %.0f W envelope: handing back job %lld", draw, envelope,
             (long long)j->job_id);
    if (j->paused_since) sandbox_signal(j->run, SIGCONT); /* so it can write its checkpoint */
    j->paused_since = 0;
    j->shed = 1;
    j->departing_until = os_mono_ms() + s->reaction_ms / 2;
    sandbox_signal(j->run, SIGTERM);
}

/*
 * The site is the last line. Every check: the envelope from its sources, the
 * forecaster and the grid ring learn (once a minute), the running jobs' energy
 * receipts advance, paused jobs resume when they fit again. When the draw of
 * running jobs exceeds the envelope, jobs stop newest first (the least work
 * lost): paused (SIGSTOP) when the cut is a demand-response event that ends
 * within pause_max_ms, else handed back (SIGTERM, SIGKILL after half the
 * reaction time, checkpoint kept) to be placed elsewhere. A job paused for
 * longer than pause_max_ms is handed back too.
 */
static void enforce_power(site *s)
{
    int64_t now = os_now_ms(), mono = os_mono_ms();
    const char *source;
    double envelope = current_envelope(s, now, &source);
    if (envelope != s->power_budget_watts)
        log_info("site", "power envelope now %.0f W (%s%s%s)", envelope, source,
                 s->trace.n && strcmp(source, "trace") == 0 ? " " : "",
                 s->trace.n && strcmp(source, "trace") == 0 ? s->trace_path : "");
    s->power_budget_watts = envelope;
    double signal;
    int have_signal = grid_signal(s, &signal);
    if (mono >= s->next_observe_ms) {
        power_forecaster_observe(&s->forecaster, now, envelope);
        if (have_signal) power_grid_ring_observe(&s->grid_ring, now, signal);
        s->next_observe_ms = mono + 60000;
    }
    /* receipts: time run, inside the envelope or not, at what price and carbon */
    int64_t dt = s->last_meter_check_ms ? mono - s->last_meter_check_ms : 0;
    s->last_meter_check_ms = mono;
    double draw = s->idle_watts; /* the site's own draw, then its jobs' */
    for (int i = 0; i < s->n_jobs; i++)
        if (job_draws(s->jobs[i])) draw += s->jobs[i]->spec.cores * s->watts_per_core;
    s->inside_envelope = draw <= envelope + 1e-9;
    double price, carbon;
    int have_price = site_price(s, &price), have_carbon = site_carbon(s, &carbon);
    for (int i = 0; i < s->n_jobs && dt > 0; i++) {
        site_job *j = s->jobs[i];
        if (!job_draws(j)) continue;
        j->metered_ms += dt;
        if (s->inside_envelope) j->within_ms += dt;
        if (have_price) {
            j->price_ms_sum += price * (double)dt;
            j->price_ms += dt;
        }
        if (have_carbon) {
            j->carbon_ms_sum += carbon * (double)dt;
            j->carbon_ms += dt;
        }
    }
    /* paused jobs: resume those that fit again, oldest first; hand back the ones paused too long */
    for (;;) {
        site_job *oldest = NULL;
        for (int i = 0; i < s->n_jobs; i++) {
            site_job *j = s->jobs[i];
            if (j->paused_since && !j->departing_until &&
                (!oldest || j->started_mono < oldest->started_mono))
                oldest = j;
        }
        if (!oldest) break;
        double need = oldest->spec.cores * s->watts_per_core;
        if (draw + need <= envelope + 1e-9) {
            sandbox_signal(oldest->run, SIGCONT);
            oldest->paused_since = 0;
            draw += need;
            log_info("site", "job %lld resumed: the envelope (%.0f W) has room again",
                     (long long)oldest->job_id, envelope);
            audit_job(s, "resumed", oldest->job_id, oldest->attempt, "the envelope has room again");
        } else if (mono - oldest->paused_since > s->pause_max_ms) {
            shed_job(s, oldest, draw + need, envelope);
        } else {
            break;
        }
    }
    int short_cut =
        strcmp(source, "demand response") == 0 && s->meter.dr_until_ms - now <= s->pause_max_ms;
    for (;;) {
        draw = s->idle_watts;
        site_job *newest = NULL;
        for (int i = 0; i < s->n_jobs; i++) {
            site_job *j = s->jobs[i];
            if (!job_draws(j)) continue;
            draw += j->spec.cores * s->watts_per_core;
            if (!newest || j->started_mono > newest->started_mono) newest = j;
        }
        if (!newest || draw <= envelope + 1e-9) return;
        if (short_cut) {
            log_warn("site",
                     "draw %.0f W over the %.0f W demand-response cap (%lld s left): pausing job "
                     "%lld",
                     draw, envelope, (long long)((s->meter.dr_until_ms - now) / 1000),
                     (long long)newest->job_id);
            sandbox_signal(newest->run, SIGSTOP);
            newest->paused_since = mono;
            audit_job(s, "paused", newest->job_id, newest->attempt,
                      "demand-response cut shorter than pause_max_ms");
        } else {
            shed_job(s, newest, draw, envelope);
        }
    }
}

/* A meter message (the meter topic, or `outpost power`): validated, then each field kept. */
static int apply_meter(site *s, const char *text, size_t len, const char *from, char *err,
                       size_t err_len)
{
    power_meter m;
    if (power_meter_parse(text, len, &m, err, err_len) != OP_OK) {
        log_warn("site", "meter message from %s refused: %s", from, err);
        return OP_EINVAL;
    }
    if (m.has & POWER_METER_WATTS) s->meter.watts = m.watts;
    if (m.has & POWER_METER_PRICE) s->meter.price = m.price;
    if (m.has & POWER_METER_CARBON) s->meter.carbon = m.carbon;
    if (m.has & POWER_METER_DEPARTURE) s->meter.departure_ms = m.departure_ms;
    if (m.has & POWER_METER_DR) {
        s->meter.dr_watts = m.dr_watts;
        s->meter.dr_until_ms = m.dr_until_ms;
    }
    s->meter.has |= m.has;
    log_debug("site", "meter message from %s applied", from);
    enforce_power(s); /* react now, not at the next check */
    return OP_OK;
}

/* What the scheduler needs of this site's power, in each heartbeat. */
static void add_power_report(site *s, cJSON *body)
{
    cJSON *p = cJSON_AddObjectToObject(body, "power");
    if (!p) return;
    int64_t now = os_now_ms();
    const char *source;
    double envelope = current_envelope(s, now, &source);
    cJSON_AddNumberToObject(p, "envelope_watts", envelope);
    cJSON_AddStringToObject(p, "source", source);
    cJSON_AddBoolToObject(p, "inside_envelope", s->inside_envelope);
    int64_t stay = 0;
    if ((s->meter.has & POWER_METER_DEPARTURE) && s->meter.departure_ms > 0)
        stay = s->meter.departure_ms - s->departure_lead_ms;
    if (s->forecaster.have_last) {
        cJSON *f = cJSON_AddArrayToObject(p, "forecast_watts");
        for (int k = 0; f && k < SCHED_HORIZONS; k++) {
            double v = power_forecast_min(&s->forecaster, now, sched_horizon_ms[k], 900000);
            if (envelope < v) v = envelope;
            if (stay && now + sched_horizon_ms[k] > stay) v = 0;
            cJSON_AddItemToArray(f, cJSON_CreateNumber(v > 0 ? v : 0));
        }
    }
    if (stay) jsonx_add_int(p, "stay_until_ms", stay);
    double signal;
    if (grid_signal(s, &signal))
        cJSON_AddNumberToObject(p, "grid_rank", power_grid_rank(&s->grid_ring, now, signal));
    double value;
    if (site_price(s, &value)) cJSON_AddNumberToObject(p, "price", value);
    if (site_carbon(s, &value)) cJSON_AddNumberToObject(p, "carbon", value);
    jsonx_add_int(p, "region", s->region);
}

/*
 * The energy receipt of a finished attempt: joules (busy core-seconds at this
 * site's watts per core), the share of its run time the site was inside its
 * envelope (spare power: never above it longer than the reaction time), and
 * cost and carbon at the mean price and carbon of the time it ran.
 */
static void add_receipt(site *s, site_job *j, cJSON *r, double joules)
{
    cJSON *o = cJSON_AddObjectToObject(r, "receipt");
    if (!o) return;
    double kwh = joules / 3.6e6;
    cJSON_AddNumberToObject(o, "joules", joules);
    double share = j->metered_ms > 0 ? (double)j->within_ms / (double)j->metered_ms : 1.0;
    cJSON_AddNumberToObject(o, "spare_share", share);
    cJSON_AddNumberToObject(o, "spare_joules", joules * share);
    if (j->price_ms > 0) {
        double price = j->price_ms_sum / (double)j->price_ms;
        cJSON_AddNumberToObject(o, "price_per_mwh", price);
        cJSON_AddNumberToObject(o, "cost", kwh * price / 1000.0);
    }
    if (j->carbon_ms > 0) {
        double carbon = j->carbon_ms_sum / (double)j->carbon_ms;
        cJSON_AddNumberToObject(o, "carbon_g_per_kwh", carbon);
        cJSON_AddNumberToObject(o, "carbon_g", kwh * carbon);
    }
}

static int load_trace(site *s, const char *path, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    if (os_read_file(path, 64 * 1024 * 1024, &text, &len) != OP_OK) {
        snprintf(err, err_len, "cannot read power_trace %s", path);
        return OP_EINVAL;
    }
    char why[200] = "";
    int rc = power_trace_parse(text, len, &s->trace, why, sizeof why);
    free(text);
    if (rc != OP_OK) snprintf(err, err_len, "power_trace %s: %s", path, why);
    snprintf(s->trace_path, sizeof s->trace_path, "%s", path);
    return rc;
}

/* The owner unplugs: refuse new work, ask running jobs to stop, exit once handed back. */
static int start_leaving(site *s, int64_t grace_ms)
{
    int n = 0;
    s->leaving = 1;
    s->leave_deadline_ms = os_mono_ms() + grace_ms + 30000;
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (!j->run || j->cancelled || j->departing_until) continue;
        j->departing_until = os_mono_ms() + grace_ms;
        sandbox_signal(j->run, SIGTERM);
        n++;
    }
    log_info("site", "leaving: %d running job(s) asked to stop (grace %lld ms)", n,
             (long long)grace_ms);
    audit_job(s, "leaving", 0, 0, "the owner unplugs");
    return n;
}

static void poll_jobs(site *s)
{
    for (int i = 0; i < s->n_jobs;) {
        site_job *j = s->jobs[i];
        if (!j->run) { /* noop or failed to start: its result is already recorded */
            remove_job(s, i);
            continue;
        }
        sandbox_result res;
        memset(&res, 0, sizeof res);
        int rc = sandbox_poll(j->run, &res);
        if (rc == 0) {
            if (j->departing_until && os_mono_ms() > j->departing_until) {
                sandbox_signal(j->run, SIGKILL); /* the grace period is over */
                j->departing_until = INT64_MAX;
            }
            i++;
            continue;
        }
        if (rc == 1 && !j->cancelled && j->departing_until)
            departure_result(s, j);
        else if (rc == 1 && !j->cancelled)
            finish_exec(s, j, &res);
        if (rc < 0)
            log_error("site", "job %lld: sandbox poll failed: %s", (long long)j->job_id,
                      op_strerror(rc));
        sandbox_result_clear(&res);
        remove_job(s, i);
    }
}

/* ---------- hub messages ---------- */

static int admission(site *s, const jobspec *spec, char *why, size_t why_len)
{
    if (s->leaving) {
        snprintf(why, why_len, "site %s is leaving", s->identity.id);
        return OP_EFULL;
    }
    unsigned own = jobspec_class_bit(s->class_name);
    if (own && !(spec->class_mask & own)) {
        snprintf(why, why_len, "job does not allow site class %s", s->class_name);
        return OP_EPERM;
    }
    if (spec->data_class == DATA_SITE_PRIVATE && strcmp(spec->origin, s->identity.id) != 0) {
        snprintf(why, why_len, "site-private data of %s may not run here", spec->origin);
        return OP_EPERM;
    }
    if (s->n_jobs >= s->max_jobs || s->n_jobs >= SITE_MAX_RUNNING) {
        snprintf(why, why_len, "site runs its maximum of %lld jobs", (long long)s->max_jobs);
        return OP_EFULL;
    }
    if (s->used_cores + spec->cores > s->cores) {
        snprintf(why, why_len, "needs %d cores, %lld free", spec->cores,
                 (long long)(s->cores - s->used_cores));
        return OP_EFULL;
    }
    if (s->used_memory_mb + spec->memory_mb > s->memory_mb) {
        snprintf(why, why_len, "needs %lld MB, %lld free", (long long)spec->memory_mb,
                 (long long)(s->memory_mb - s->used_memory_mb));
        return OP_EFULL;
    } /* The owner's policy is sovereign: it can only refuse more than the hub's. */
    if (s->policy) {
        char rule[200];
        int verdict =
            policy_check_site(s->policy, spec, s->identity.id, own ? own : CLASS_ALL, os_now_ms(),
                              spec->cores * s->watts_per_core, rule, sizeof rule);
        if (verdict != POLICY_ALLOW) {
            snprintf(why, why_len, "site policy: %.200s", rule);
            return OP_EPERM;
        }
    }
    double draw = s->idle_watts + (s->used_cores + spec->cores) * s->watts_per_core;
    if (draw > s->power_budget_watts + 1e-9) {
        snprintf(why, why_len, "would draw %.0f W over a %.0f W budget", draw,
                 s->power_budget_watts);
        return OP_EFULL;
    }
    return OP_OK;
}

static site_job *find_job(site *s, int64_t job_id, int64_t attempt)
{
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i]->job_id == job_id && (attempt == 0 || s->jobs[i]->attempt == attempt))
            return s->jobs[i];
    return NULL;
}

static int known_attempt(site *s, int64_t job_id, int64_t attempt)
{
    sqlite3_stmt *st = store_stmt(s->db, "SELECT 1 FROM jobs WHERE job_id=? AND attempt=?");
    if (!st) return 1;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    int known = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return known;
}

static void accept_job(site *s, int64_t job_id, int64_t attempt, const cJSON *spec_json,
                       int from_store, int64_t lease_ms)
{
    char why[300];
    site_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->job_id = job_id;
    j->attempt = attempt;
    int rc = jobspec_from_json(spec_json, &j->spec, why, sizeof why);
    if (rc == OP_OK && !from_store) rc = admission(s, &j->spec, why, sizeof why);
    if (rc != OP_OK) {
        log_info("site", "refused job %lld attempt %lld: %s", (long long)job_id, (long long)attempt,
                 why);
        /* "busy" (capacity, power now) is transient: the hub may offer it here again */
        add_event(s, job_id, attempt, rc == OP_EFULL ? "busy" : "refused", why);
        audit_job(s, "refused", job_id, attempt, why);
        jobspec_clear(&j->spec);
        free(j);
        return;
    }
    if (!from_store) {
        /* The hub's sequence number travels with the accepted job: after a restart only
         * newer hub messages are accepted (msg_window_restore), at no extra write. */
        char top[24];
        snprintf(top, sizeof top, "%llu", (unsigned long long)s->hub_window.top);
        if (ensure_tx(s) != OP_OK || meta_set(s, "hub_seq", top) != OP_OK) s->store_failed = 1;
        char *text = cJSON_PrintUnformatted(spec_json);
        sqlite3_stmt *st = store_stmt(s->db, "INSERT INTO jobs(job_id, attempt, spec, state,"
                                             " accepted_at) VALUES(?,?,?,'accepted',?)");
        if (!text || !st || ensure_tx(s) != OP_OK) {
            free(text);
            jobspec_clear(&j->spec);
            free(j);
            s->store_failed = 1;
            return;
        }
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int64(st, 2, attempt);
        sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, os_now_ms());
        free(text);
        if (store_step_done(s->db, st) != OP_OK) s->store_failed = 1;
    }
    if (job_id < 0) j->local_spec = cJSON_PrintUnformatted(spec_json);
    j->lease_ms = lease_ms;
    if (!from_store && lease_ms > 0) {
        sqlite3_stmt *ls = store_stmt(s->db, "INSERT OR REPLACE INTO leases(job_id, attempt,"
                                             " lease_ms) VALUES(?,?,?)");
        if (ls && ensure_tx(s) == OP_OK) {
            sqlite3_bind_int64(ls, 1, job_id);
            sqlite3_bind_int64(ls, 2, attempt);
            sqlite3_bind_int64(ls, 3, lease_ms);
            if (store_step_done(s->db, ls) != OP_OK) s->store_failed = 1;
        } else {
            s->store_failed = 1;
        }
    }
    s->jobs[s->n_jobs++] = j;
    s->used_cores += j->spec.cores;
    s->used_memory_mb += j->spec.memory_mb;
    add_event(s, job_id, attempt, "started", NULL);
    if (!from_store) audit_job(s, "accepted", job_id, attempt, jobspec_kind_name(j->spec.kind));
    log_info("site", "job %lld attempt %lld accepted (%s, %d cores)", (long long)job_id,
             (long long)attempt, jobspec_kind_name(j->spec.kind), j->spec.cores);
    start_job(s, j);
}

/* ---------- local submission: `outpost submit --local` on the site itself ---------- */

/*
 * A unix socket in the data dir (mode 0660: the site's user and group may
 * submit). Works with or without the hub: a warehouse re-plans its routes
 * while its uplink is down. Only kinds the site's own policy lists under
 * `local` are taken. Jobs get negative ids here; their results carry their
 * spec to the hub, which records each (site, local id) once.
 */
static int local_open(site *s, const char *path)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) return OP_ETOOBIG;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return OP_ESYS;
    unlink(path); /* a stale socket of an earlier run; the store lock keeps runs apart */
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc != 0 || listen(fd, 8) != 0) {
        close(fd);
        return OP_ESYS;
    }
    s->local_fd = fd;
    snprintf(s->local_path, sizeof s->local_path, "%s", path);
    return OP_OK;
}

/* Reads one request (up to a newline or EOF) within 2 s. NULL on timeout or overflow. */
static char *local_read(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = os_mono_ms() + 2000;
    while (buf) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - os_mono_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) break;
        if (len + 1 == cap) {
            if (cap >= SITE_LOCAL_MAX_REQUEST) break;
            char *grown = realloc(buf, cap * 2);
            if (!grown) break;
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            buf[len] = '\0';
            return buf;
        }
        len += (size_t)n;
        if (memchr(buf + len - (size_t)n, '\n', (size_t)n)) {
            buf[len] = '\0';
            return buf;
        }
    }
    free(buf);
    return NULL;
}

static void local_reply(int fd, cJSON *reply)
{
    char *text = reply ? cJSON_PrintUnformatted(reply) : NULL;
    if (text) {
        size_t len = strlen(text);
        text[len] = '\n'; /* one answer per line */
        os_write_all(fd, text, len + 1);
    }
    free(text);
    cJSON_Delete(reply);
}

static void local_client(site *s, int fd)
{
    char why[320] = "";
    cJSON *reply = cJSON_CreateObject();
    cJSON *ids = cJSON_CreateArray();
    char *text = local_read(fd);
    cJSON *req = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(req, "spec");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(req, "specs");
    cJSON *list = NULL;
    if (!reply || !ids) goto out;
    if (!req) {
        snprintf(why, sizeof why, "request unreadable (not JSON, too slow or over %d bytes)",
                 SITE_LOCAL_MAX_REQUEST);
        goto out;
    }
    const char *op = jsonx_str(req, "op");
    if (op && strcmp(op, "power") == 0) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(req, "meter");
        char *mt = cJSON_IsObject(m) ? cJSON_PrintUnformatted(m) : NULL;
        char perr[200] = "meter: must be an object";
        if (!mt || apply_meter(s, mt, strlen(mt), "outpost power", perr, sizeof perr) != OP_OK)
            snprintf(why, sizeof why, "%s", perr);
        else
            cJSON_AddNumberToObject(reply, "envelope_watts", s->power_budget_watts);
        free(mt);
        goto out;
    }
    if (op && strcmp(op, "leave") == 0) {
        int64_t grace_s = 10;
        if (jsonx_int(req, "grace_s", 0, 3600, &grace_s) == OP_EINVAL) {
            snprintf(why, sizeof why, "grace_s: 0 to 3600 seconds");
            goto out;
        }
        cJSON_AddNumberToObject(reply, "stopping", start_leaving(s, grace_s * 1000));
        goto out;
    }
    list = cJSON_CreateArray();
    if (!list) goto out;
    if (cJSON_IsObject(one))
        cJSON_AddItemReferenceToArray(list, (cJSON *)one);
    else if (cJSON_IsArray(many) && cJSON_GetArraySize(many) <= 10000)
        cJSON_ArrayForEach(one, many) cJSON_AddItemReferenceToArray(list, (cJSON *)one);
    if (cJSON_GetArraySize(list) == 0) {
        snprintf(why, sizeof why, "give a spec or 1 to 10000 specs");
        goto out;
    }
    /* all or nothing for what does not change: validity, class, residency, policy */
    int k = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        jobspec spec;
        char err[256];
        if (jobspec_from_json(item, &spec, err, sizeof err) != OP_OK) {
            snprintf(why, sizeof why, "spec %d: %s", k, err);
            goto out;
        }
        int allowed = policy_allows_local(s->policy, spec.kind);
        unsigned own = jobspec_class_bit(s->class_name);
        if (!allowed)
            snprintf(why, sizeof why,
                     "spec %d: this site's policy does not take local %s jobs (add 'local %s'"
                     " to its policy_file)",
                     k, jobspec_kind_name(spec.kind), jobspec_kind_name(spec.kind));
        else if (own && !(spec.class_mask & own))
            snprintf(why, sizeof why, "spec %d: job does not allow site class %s", k,
                     s->class_name);
        else if (spec.data_class == DATA_SITE_PRIVATE && strcmp(spec.origin, s->identity.id))
            snprintf(why, sizeof why, "spec %d: site-private data of %s may not run here", k,
                     spec.origin);
        jobspec_clear(&spec);
        if (why[0]) goto out;
        k++;
    }
    char value[32] = "1";
    int64_t next = 1;
    if (meta_get(s, "next_local_id", value, sizeof value) == OP_OK &&
        util_parse_i64(value, 1, INT64_MAX / 2, &next) != OP_OK)
        next = 1;
    cJSON_ArrayForEach(item, list)
    {
        jobspec spec;
        char err[256];
        jobspec_from_json(item, &spec, err, sizeof err);
        int rc = admission(s, &spec, err, sizeof err);
        jobspec_clear(&spec);
        if (rc != OP_OK) {
            snprintf(why, sizeof why, "accepted %d of %d; the rest refused: %s",
                     cJSON_GetArraySize(ids), cJSON_GetArraySize(list), err);
            break;
        }
        int64_t id = next++;
        accept_job(s, -id, 1, item, 0, 0);
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id));
        poll_jobs(s); /* a no-op finishes at once and frees its share */
    }
    snprintf(value, sizeof value, "%lld", (long long)next);
    if (ensure_tx(s) != OP_OK || meta_set(s, "next_local_id", value) != OP_OK) s->store_failed = 1;
out:
    if (reply) {
        cJSON_AddBoolToObject(reply, "ok", why[0] == 0);
        if (why[0]) cJSON_AddStringToObject(reply, "error", why);
        if (ids)
            cJSON_AddItemToObject(reply, "ids", ids);
        else
            cJSON_Delete(ids);
    } else {
        cJSON_Delete(ids);
    }
    if (why[0]) log_info("site", "local submission: %s", why);
    cJSON_Delete(list);
    cJSON_Delete(req);
    local_reply(fd, reply);
}

static void serve_local(site *s)
{
    for (int k = 0; s->local_fd >= 0 && k < 4; k++) {
        int fd = accept4(s->local_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) return;
        local_client(s, fd);
        close(fd);
    }
}

static void handle_offer(site *s, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "jobs"))
    {
        int64_t job_id, attempt;
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(item, "spec");
        if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK || !spec) {
            s->msg.malformed++;
            log_warn("site", "malformed offer ignored");
            continue;
        }
        if (known_attempt(s, job_id, attempt)) continue; /* redelivered offer */
        int64_t lease_ms = 0;
        jsonx_int(item, "lease_ms", 1, INT64_MAX / 4, &lease_ms);
        accept_job(s, job_id, attempt, spec, 0, lease_ms);
    }
}

/*
 * Each log witnesses the other: the hub's signed head rides on its
 * acknowledgements, and a newer one is written into this site's log.
 */
static void witness_hub_head(site *s, const cJSON *o)
{
    audit_sth head;
    if (!o || auditlog_head_from_json(o, &head) != OP_OK) return;
    if (head.size <= s->hub_head_size) {
        if (head.size < s->hub_head_size)
            log_warn("site", "hub head went back from %llu to %llu entries",
                     (unsigned long long)s->hub_head_size, (unsigned long long)head.size);
        return;
    }
    if (audit_sth_verify(s->hub_pk, &head) != OP_OK) {
        log_warn("site", "hub head with a bad signature ignored");
        return;
    }
    s->hub_head_size = head.size;
    cJSON *j = auditlog_head_to_json(&head);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    char subject[80];
    snprintf(subject, sizeof subject, "hub:%s", s->hub_id);
    if (text && s->audit && ensure_tx(s) == OP_OK &&
        auditlog_append(s->audit, os_now_ms(), "witness", subject, text, NULL) != OP_OK)
        s->store_failed = 1;
    free(text);
}

static void handle_acks(site *s, const cJSON *body)
{
    const cJSON *item;
    if (ensure_tx(s) != OP_OK) return;
    witness_hub_head(s, cJSON_GetObjectItemCaseSensitive(body, "hub_head"));
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "acks"))
    {
        int64_t job_id, attempt = 1, local_id;
        if (jsonx_int(item, "local", 1, INT64_MAX, &local_id) == OP_OK)
            job_id = -local_id; /* a local job: stored under its negated id */
        else if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
                 jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
            continue;
        sqlite3_stmt *del = store_stmt(s->db, "DELETE FROM outbox WHERE job_id=? AND attempt=?");
        sqlite3_stmt *done = store_stmt(s->db, "DELETE FROM jobs WHERE job_id=? AND attempt=?"
                                               " AND state='done'");
        if (!del || !done) {
            s->store_failed = 1;
            return;
        }
        sqlite3_bind_int64(del, 1, job_id);
        sqlite3_bind_int64(del, 2, attempt);
        if (store_step_done(s->db, del) != OP_OK) s->store_failed = 1;
        if (store_changes(s->db)) {
            s->results_acked++;
            /* acks clock a backlog out: its next batch goes now, not after resend_ms (no
             * extra outbox query per ack when there is no backlog) */
            if (s->backlog) s->next_resend_ms = 0;
        }
        sqlite3_bind_int64(done, 1, job_id);
        sqlite3_bind_int64(done, 2, attempt);
        if (store_step_done(s->db, done) != OP_OK) s->store_failed = 1;
    }
}

static void handle_cancel(site *s, const cJSON *body)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "jobs"))
    {
        int64_t job_id, attempt;
        if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
            jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
            continue;
        site_job *j = find_job(s, job_id, attempt);
        if (!j) continue;
        const char *why = jsonx_str(item, "reason");
        audit_job(s, "cancelled", job_id, attempt, why);
        log_info("site", "job %lld attempt %lld cancelled by hub: %s", (long long)job_id,
                 (long long)attempt, why ? why : "?");
        j->cancelled = 1;
        if (j->run) sandbox_signal(j->run, SIGKILL);
        sqlite3_stmt *st = store_stmt(s->db, "DELETE FROM jobs WHERE job_id=? AND attempt=?");
        if (st && ensure_tx(s) == OP_OK) {
            sqlite3_bind_int64(st, 1, job_id);
            sqlite3_bind_int64(st, 2, attempt);
            if (store_step_done(s->db, st) != OP_OK) s->store_failed = 1;
        }
    }
}

static int lookup_hub(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    site *s = ctx;
    if (!s->have_hub || strcmp(kid, s->hub_id) != 0) return OP_EUNKNOWN;
    *pk = s->hub_pk;
    *window = &s->hub_window;
    return OP_OK;
}

static void on_message(void *ctx, const char *topic, const void *payload, size_t len,
                       const char *kid, const char *sig)
{
    site *s = ctx;
    cJSON *body = NULL;
    msg_header hdr;
    char reason[256];
    if (s->meter_topic[0] && strcmp(topic, s->meter_topic) == 0) {
        /* the site's own meter: unsigned JSON, trusted as far as the broker's ACL */
        apply_meter(s, payload, len, "the meter topic", reason, sizeof reason);
        return;
    }
    int rc = msg_open(topic, payload, len, kid, sig, lookup_hub, s, os_now_ms(), s->clock_skew_ms,
                      &body, &hdr, &s->msg, reason, sizeof reason);
    if (rc != OP_OK) {
        log_warn("site", "dropped: %s", reason);
        return;
    }
    s->last_contact_ms = os_now_ms(); /* authentic word from the hub: leases run from here */
    if (strcmp(hdr.type, "welcome") == 0) {
        const char *cls = jsonx_str(body, "class");
        if (!s->enrolled && cls && token_valid_class(cls)) {
            if (ensure_tx(s) == OP_OK && meta_set(s, "class", cls) == OP_OK &&
                meta_set(s, "enrolled", "1") == OP_OK) {
                s->enrolled = 1;
                snprintf(s->class_name, sizeof s->class_name, "%s", cls);
                log_info("site", "enrolled with hub %s as class %s", s->hub_id, cls);
            }
        }
    } else if (strcmp(hdr.type, "refused") == 0) {
        const char *why = jsonx_str(body, "reason");
        snprintf(s->refusal, sizeof s->refusal, "%s", why ? why : "no reason given");
        s->refused = 1;
    } else if (!s->enrolled) {
        log_warn("site", "ignored %s before enrollment completed", hdr.type);
    } else if (strcmp(hdr.type, "offer") == 0) {
        handle_offer(s, body);
    } else if (strcmp(hdr.type, "ack") == 0) {
        handle_acks(s, body);
    } else if (strcmp(hdr.type, "cancel") == 0) {
        handle_cancel(s, body);
    } else {
        s->msg.malformed++;
        log_warn("site", "ignored message of unknown type '%s'", hdr.type);
    }
    cJSON_Delete(body);
}

/* ---------- start-up ---------- */

/* Jobs accepted before a restart are started again from their stored spec. */
/*
 * A job whose offline lease ran out (no word from the hub for longer than the
 * lease its signed offer gave): stopped, with a retryable result that tells
 * the hub why when the link returns (by then it is usually placed elsewhere:
 * the result is then recorded as stale, never applied).
 */
static void lease_expired(site *s, site_job *j, int64_t silent_ms)
{
    char why[200];
    snprintf(why, sizeof why,
             "offline lease expired: no word from the hub for %lld s (lease %lld s)",
             (long long)(silent_ms / 1000), (long long)(j->lease_ms / 1000));
    log_warn("site", "job %lld attempt %lld stopped: %s", (long long)j->job_id,
             (long long)j->attempt, why);
    audit_job(s, "lease-expired", j->job_id, j->attempt, why);
    hand_back(s, j, why, NULL);
}

/* Once a second: stops running jobs whose offline lease ran out; keeps the contact time. */
static void check_leases(site *s)
{
    int64_t now = os_now_ms(), silent = now - s->last_contact_ms;
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (j->lease_ms <= 0 || j->cancelled || silent <= j->lease_ms) continue;
        j->cancelled = 1; /* once; its process's end is not a result */
        lease_expired(s, j, silent);
        if (j->run) sandbox_signal(j->run, SIGKILL);
    }
    /* Saved while there is leased work, at most once a minute or a quarter of the
     * shortest lease (a restart while offline needs it); an idle site writes nothing. */
    int leased = 0;
    int64_t every = 60000;
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i]->lease_ms > 0 && !s->jobs[i]->cancelled) {
            leased = 1;
            if (s->jobs[i]->lease_ms / 4 < every) every = s->jobs[i]->lease_ms / 4;
        }
    if (leased && s->last_contact_ms - s->contact_saved_ms >= every) {
        char value[32];
        snprintf(value, sizeof value, "%lld", (long long)s->last_contact_ms);
        if (ensure_tx(s) == OP_OK && meta_set(s, "last_hub_contact", value) == OP_OK)
            s->contact_saved_ms = s->last_contact_ms;
    }
}

static void resume_jobs(site *s)
{
    sqlite3_stmt *st = store_stmt(s->db, "SELECT j.job_id, j.attempt, j.spec, l.lease_ms FROM jobs"
                                         " j LEFT JOIN leases l ON l.job_id=j.job_id AND"
                                         " l.attempt=j.attempt WHERE j.state != 'done'"
                                         " ORDER BY j.accepted_at");
    if (!st) return;
    typedef struct {
        int64_t job_id, attempt, lease_ms;
        char *spec;
    } saved;
    saved list[SITE_MAX_RUNNING];
    int n = 0;
    while (n < SITE_MAX_RUNNING && sqlite3_step(st) == SQLITE_ROW) {
        list[n].job_id = sqlite3_column_int64(st, 0);
        list[n].attempt = sqlite3_column_int64(st, 1);
        list[n].lease_ms = sqlite3_column_int64(st, 3); /* 0 when NULL: no lease */
        list[n].spec = strdup(store_col_text(st, 2));
        if (list[n].spec) n++;
    }
    sqlite3_reset(st);
    for (int i = 0; i < n; i++) {
        cJSON *spec = cJSON_Parse(list[i].spec);
        int64_t silent = os_now_ms() - s->last_contact_ms;
        if (spec && list[i].lease_ms > 0 && silent > list[i].lease_ms) {
            /* Cold start after the lease ran out: the hub has surely placed it again. */
            site_job tmp;
            memset(&tmp, 0, sizeof tmp);
            tmp.job_id = list[i].job_id;
            tmp.attempt = list[i].attempt;
            if (jobspec_from_json(spec, &tmp.spec, NULL, 0) == OP_OK) {
                lease_expired(s, &tmp, silent);
                jobspec_clear(&tmp.spec);
            }
        } else if (spec) {
            log_info("site", "resuming job %lld attempt %lld accepted before restart",
                     (long long)list[i].job_id, (long long)list[i].attempt);
            accept_job(s, list[i].job_id, list[i].attempt, spec, 1, list[i].lease_ms);
        }
        cJSON_Delete(spec);
        free(list[i].spec);
    }
    /* Their "started" events are informational; the heartbeat renews their leases. */
    cJSON_Delete(s->events);
    s->events = NULL;
}

static int parse_config(site *s, const char *path, char *err, size_t err_len)
{
    conf *c = NULL;
    int rc = conf_load(path, site_conf_keys, &c, err, err_len);
    if (rc != OP_OK) return rc;
    const char *id = conf_str(c, "site_id", NULL);
    const char *level = conf_str(c, "log_level", NULL);
    if (!id || !util_valid_id(id)) {
        snprintf(err, err_len, "%s: site_id is required ([A-Za-z0-9_-]{1,63})", path);
        rc = OP_EINVAL;
    } else if (level && log_parse_level(level) < 0) {
        snprintf(err, err_len, "%s: log_level must be debug, info, warn or error", path);
        rc = OP_EINVAL;
    }
    if (rc == OP_OK) {
        snprintf(s->identity.id, sizeof s->identity.id, "%s", id);
        snprintf(s->broker_host, sizeof s->broker_host, "%s",
                 conf_str(c, "broker_host", "127.0.0.1"));
        snprintf(s->cgroup_dir, sizeof s->cgroup_dir, "%s", conf_str(c, "cgroup_dir", ""));
        snprintf(s->local_cfg, sizeof s->local_cfg, "%s", conf_str(c, "local_socket", ""));
        const char *trace = conf_str(c, "power_trace", NULL);
        if (trace && *trace && rc == OP_OK) rc = load_trace(s, trace, err, err_len);
        const char *route_program = conf_str(c, "route_program", NULL);
        if (route_program && *route_program) {
            snprintf(s->route_program, sizeof s->route_program, "%s", route_program);
        } else {
            ssize_t n = readlink("/proc/self/exe", s->route_program, sizeof s->route_program - 1);
            s->route_program[n > 0 ? n : 0] = '\0';
        }
        if (access(s->route_program, X_OK) != 0) {
            snprintf(err, err_len, "%s: route_program '%.200s' is not an executable", path,
                     s->route_program);
            rc = OP_EINVAL;
        }
        const char *policy_path = conf_str(c, "policy_file", NULL);
        char *text = NULL;
        if (policy_path && *policy_path) {
            rc = os_read_file(policy_path, 256 * 1024, &text, NULL);
            if (rc != OP_OK)
                snprintf(err, err_len, "%s: cannot read policy_file %s: %s", path, policy_path,
                         op_strerror(rc));
            else
                rc = policy_parse(text, policy_path, &s->policy, err, err_len);
            free(text);
        }
        if (level) log_set_level(log_parse_level(level));
    }
    if (rc == OP_OK) rc = conf_int(c, "broker_port", 1883, 1, 65535, &s->broker_port, err, err_len);
    if (rc == OP_OK) rc = conf_int(c, "cores", 1, 1, 4096, &s->cores, err, err_len);
    if (rc == OP_OK) rc = conf_int(c, "memory_mb", 1024, 16, 1 << 30, &s->memory_mb, err, err_len);
    if (rc == OP_OK)
        rc =
            conf_double(c, "power_budget_watts", 100, 0, 1e7, &s->power_budget_watts, err, err_len);
    if (rc == OP_OK)
        rc = conf_double(c, "watts_per_core", 10, 0, 1e5, &s->watts_per_core, err, err_len);
    if (rc == OP_OK) rc = conf_double(c, "idle_watts", 5, 0, 1e6, &s->idle_watts, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "heartbeat_ms", 2000, 100, 600000, &s->heartbeat_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "reaction_ms", 2000, 100, 600000, &s->reaction_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "region", 0, 0, SCHED_MAX_REGIONS - 1, &s->region, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "pause_max_ms", 120000, 0, 3600000, &s->pause_max_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "departure_lead_ms", 600000, 0, 86400000, &s->departure_lead_ms, err,
                      err_len);
    if (rc == OP_OK && conf_str(c, "price", NULL)) {
        rc = conf_double(c, "price", 0, -1e5, 1e5, &s->meter.price, err, err_len);
        s->meter.has |= POWER_METER_PRICE;
    }
    if (rc == OP_OK && conf_str(c, "carbon", NULL)) {
        rc = conf_double(c, "carbon", 0, 0, 1e5, &s->meter.carbon, err, err_len);
        s->meter.has |= POWER_METER_CARBON;
    }
    if (rc == OP_OK) {
        const char *mt = conf_str(c, "meter_topic", "");
        if (strlen(mt) >= sizeof s->meter_topic || strchr(mt, '+') || strchr(mt, '#')) {
            snprintf(err, err_len, "%s: meter_topic: one MQTT topic without wildcards", path);
            rc = OP_EINVAL;
        } else {
            snprintf(s->meter_topic, sizeof s->meter_topic, "%s", mt);
        }
    }
    s->budget_watts = s->power_budget_watts;
    if (rc == OP_OK)
        rc = conf_int(c, "max_jobs", s->cores, 1, SITE_MAX_RUNNING, &s->max_jobs, err, err_len);
    if (rc == OP_OK) rc = conf_int(c, "resend_ms", 3000, 100, 3600000, &s->resend_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "clock_skew_ms", 120000, 1000, 86400000, &s->clock_skew_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "audit_head_ms", 10000, 100, 86400000, &s->audit_head_ms, err, err_len);
    conf_free(c);
    return rc;
}

/* The hub pin comes from the store after enrollment, or from the token the first time. */
static int load_hub_pin(site *s, const char *token_text, char *err, size_t err_len)
{
    char value[128];
    if (meta_get(s, "hub_id", s->hub_id, sizeof s->hub_id) == OP_OK &&
        meta_get(s, "hub_pubkey", value, sizeof value) == OP_OK &&
        util_unhex(value, s->hub_pk, 32) == OP_OK) {
        s->have_hub = 1;
        if (meta_get(s, "enrolled", value, sizeof value) == OP_OK) s->enrolled = 1;
        int64_t top = 0;
        if (meta_get(s, "hub_seq", value, sizeof value) == OP_OK &&
            util_parse_i64(value, 0, INT64_MAX, &top) == OP_OK)
            msg_window_restore(&s->hub_window, (uint64_t)top);
        meta_get(s, "class", s->class_name, sizeof s->class_name);
        if (token_text && s->enrolled)
            log_info("site", "already enrolled with hub %s; --token ignored", s->hub_id);
        if (!s->enrolled) s->token_text = token_text;
        return OP_OK;
    }
    if (!token_text) {
        snprintf(err, err_len,
                 "not enrolled yet: pass --token TOKEN (from `outpost token create"
                 " --class CLASS` on the hub)");
        return OP_EINVAL;
    }
    token tok;
    char reason[200];
    int rc = token_parse(token_text, &tok, reason, sizeof reason);
    if (rc != OP_OK) {
        snprintf(err, err_len, "bad join token: %s", reason);
        return rc;
    }
    if (tok.expires_ms <= os_now_ms()) {
        snprintf(err, err_len, "join token expired; ask the operator for a new one");
        return OP_EEXPIRED;
    }
    char pk_hex[65];
    util_hex(tok.hub_pk, 32, pk_hex);
    if (store_begin(s->db) != OP_OK || meta_set(s, "hub_id", tok.hub_id) != OP_OK ||
        meta_set(s, "hub_pubkey", pk_hex) != OP_OK || store_commit(s->db) != OP_OK) {
        store_rollback(s->db);
        snprintf(err, err_len, "cannot store the hub pin");
        return OP_ESTORE;
    }
    snprintf(s->hub_id, sizeof s->hub_id, "%s", tok.hub_id);
    memcpy(s->hub_pk, tok.hub_pk, 32);
    s->have_hub = 1;
    s->token_text = token_text;
    log_info("site", "pinned hub %s (key %.16s...) from the join token", tok.hub_id, pk_hex);
    return OP_OK;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost site --config FILE --data-dir DIR [--token TOKEN]\n"
                 "\n"
                 "Runs a site agent: enrolls with the hub (first start needs a one-time --token\n"
                 "from `outpost token create --class pod|car|dc`), reports capacity and power\n"
                 "budget, runs offered jobs in the sandbox and keeps results until the hub\n"
                 "acknowledges them.\n"
                 "\n"
                 "  --config FILE      site configuration (see examples/site.conf); required\n"
                 "  --data-dir DIR     state directory (created if missing); required\n"
                 "  --token TOKEN      one-time join token (first start only)\n"
                 "  --broker-port N    overrides broker_port from the configuration\n"
                 "  --log-level L      debug, info, warn or error\n"
                 "\n"
                 "Exit codes: 0 stopped, 1 runtime failure, 2 bad usage/config/token,\n"
                 "3 enrollment refused by the hub.\n");
}

int site_main(int argc, char **argv)
{
    static struct option opts[] = {{"data-dir", required_argument, 0, 'd'},
                                   {"config", required_argument, 0, 'c'},
                                   {"token", required_argument, 0, 't'},
                                   {"broker-port", required_argument, 0, 'p'},
                                   {"log-level", required_argument, 0, 'l'},
                                   {"help", no_argument, 0, 'h'},
                                   {0, 0, 0, 0}};
    const char *data_dir = NULL, *config_path = NULL, *token_text = NULL, *port_text = NULL;
    const char *level = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:t:p:l:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            data_dir = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 't':
            token_text = optarg;
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
    if (!data_dir || !config_path) {
        fprintf(stderr, "outpost site: --config and --data-dir are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (level && log_parse_level(level) < 0) {
        fprintf(stderr, "outpost site: --log-level must be debug, info, warn or error\n");
        return EXIT_USAGE;
    }
    site *s = calloc(1, sizeof *s);
    if (s) s->local_fd = -1;
    if (!s) return EXIT_FAILURE_RUNTIME;
    int exit_code = EXIT_FAILURE_RUNTIME;
    char err[512] = "", path[PATH_MAX];
    snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
    if (parse_config(s, config_path, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost site: %s\n", err);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (level) log_set_level(log_parse_level(level));
    if (port_text && util_parse_i64(port_text, 1, 65535, &s->broker_port) != OP_OK) {
        fprintf(stderr, "outpost site: --broker-port must be 1-65535\n");
        exit_code = EXIT_USAGE;
        goto out;
    }
    char site_id[64];
    snprintf(site_id, sizeof site_id, "%s", s->identity.id);
    if (os_mkdir_p(data_dir) != OP_OK ||
        util_fmt(path, sizeof path, "%s/identity", data_dir) != OP_OK ||
        keyfile_load_or_create(path, site_id, &s->identity) != OP_OK) {
        log_error("site", "cannot set up identity in %s", data_dir);
        goto out;
    }
    if (util_fmt(path, sizeof path, "%s/site.db", data_dir) != OP_OK ||
        store_open(path, site_schema, 1, &s->db) != OP_OK ||
        auditlog_attach(s->db, &s->audit) != OP_OK)
        goto out;
    if (load_hub_pin(s, token_text, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost site: %s\n", err);
        exit_code = EXIT_USAGE;
        goto out;
    }
    if (util_fmt(path, sizeof path, "%s/work", data_dir) != OP_OK || os_mkdir_p(path) != OP_OK)
        goto out;
    sandbox_probe(s->cgroup_dir[0] ? s->cgroup_dir : NULL, &s->caps);
    if (s->caps.missing[0])
        log_warn("site", "sandbox protections off on this machine: %s", s->caps.missing);
    char client_id[80];
    snprintf(client_id, sizeof client_id, "outpost-site-%s", site_id);
    bus_config bc = {.host = s->broker_host,
                     .port = (int)s->broker_port,
                     .client_id = client_id,
                     .clean_start = 0,
                     .session_expiry_s = 86400,
                     .keepalive_s = 10};
    if (bus_open(&bc, &s->identity, on_message, s, &s->bus) != OP_OK) goto out;
    char inbox[PROTO_TOPIC_MAX];
    proto_topic(inbox, sizeof inbox, "site", site_id, "inbox");
    bus_subscribe(s->bus, inbox);
    if (s->meter_topic[0]) {
        bus_subscribe(s->bus, s->meter_topic);
        log_info("site", "reading its power envelope and grid signals from %s", s->meter_topic);
    }
    runctl_install();
    {
        char value[32];
        int64_t saved = 0;
        s->last_contact_ms = os_now_ms();
        if (meta_get(s, "last_hub_contact", value, sizeof value) == OP_OK &&
            util_parse_i64(value, 1, INT64_MAX, &saved) == OP_OK)
            s->last_contact_ms = s->contact_saved_ms = saved;
    }
    s->trace_start_mono = os_mono_ms(); /* power_trace offsets count from here */
    power_forecaster_init(&s->forecaster, 0.2, 3600000.0);
    power_grid_ring_init(&s->grid_ring);
    enforce_power(s); /* the envelope, and the forecaster's first observation */
    resume_jobs(s);
    {
        const char *lp = s->local_cfg[0] ? s->local_cfg : NULL;
        char def[PATH_MAX];
        if (!lp && util_fmt(def, sizeof def, "%s/local.sock", s->data_dir) == OP_OK) lp = def;
        if (lp && strcmp(lp, "off") != 0 && local_open(s, lp) != OP_OK)
            log_warn("site", "local submission off: cannot listen on %s: %s", lp, strerror(errno));
    }
    log_info("site", "site %s started (%lld cores, %lld MB, %.0f W budget, broker %s:%lld)",
             site_id, (long long)s->cores, (long long)s->memory_mb, s->power_budget_watts,
             s->broker_host, (long long)s->broker_port);
    int was_connected = 0;
    while (!runctl_stopping()) {
        if (bus_loop(s->bus, 20) != OP_OK) break;
        int64_t now = os_mono_ms();
        if (bus_connected(s->bus) && !was_connected) {
            s->next_hello_ms = 0; /* say hello again after every (re)connect */
            s->next_resend_ms = 0;
        }
        was_connected = bus_connected(s->bus);
        if (s->refused) {
            fprintf(stderr, "outpost site: the hub refused this site: %s\n", s->refusal);
            log_error("site", "enrollment refused: %s", s->refusal);
            exit_code = EXIT_REFUSED;
            goto out;
        }
        poll_jobs(s);
        serve_local(s);
        if (now >= s->next_power_check_ms) {
            enforce_power(s);
            s->next_power_check_ms = now + (s->reaction_ms / 4 > 50 ? s->reaction_ms / 4 : 50);
        }
        if (now >= s->next_lease_check_ms) {
            check_leases(s);
            s->next_lease_check_ms = now + 1000;
        }
        if (store_in_tx(s->db)) {
            if (s->store_failed || store_commit(s->db) != OP_OK) {
                store_rollback(s->db);
                log_error("site", "store transaction failed; results stay unsent until"
                                  " they are stored");
                cJSON_Delete(s->results);
                s->results = NULL;
                s->store_failed = 0;
            }
        }
        if (s->leaving && s->n_jobs == 0 && !store_in_tx(s->db)) {
            sqlite3_stmt *q = store_stmt(s->db, "SELECT COUNT(*) FROM outbox");
            int64_t unsent = q && sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 1;
            if (q) sqlite3_reset(q);
            if (unsent == 0 || now > s->leave_deadline_ms) {
                log_info("site", "left: every job handed back%s",
                         unsent ? "; unsent results wait in the outbox for the next start" : "");
                break;
            }
        }
        if (!bus_connected(s->bus)) {
            /* Offline: results are safe in the outbox (committed above) and go out from
             * there on reconnect; holding them here too would grow with the backlog. */
            cJSON_Delete(s->results);
            cJSON_Delete(s->locals);
            cJSON_Delete(s->events);
            s->results = s->locals = s->events = NULL;
            continue;
        }
        send_batches(s);
        if (now >= s->next_hello_ms && (!s->enrolled || s->next_hello_ms == 0)) {
            send_hello(s);
            s->next_hello_ms = now + 2000;
        }
        if (s->audit && now >= s->next_head_ms) {
            /* A signed head over this site's own log, sent with the next heartbeats. */
            if (auditlog_size(s->audit) != s->head.size &&
                auditlog_sign_head(s->audit, &s->identity, os_now_ms(), &s->head) != OP_OK)
                log_error("site", "cannot sign the audit log head");
            s->next_head_ms = now + s->audit_head_ms;
        }
        if (s->enrolled && now >= s->next_heartbeat_ms) {
            send_heartbeat(s);
            s->next_heartbeat_ms = now + s->heartbeat_ms;
        }
        if (s->enrolled && now >= s->next_resend_ms) {
            resend_outbox(s);
            s->next_resend_ms = now + s->resend_ms;
        }
    }
    if (s->n_jobs > 0) { /* they resume at the next start, within their leases */
        char value[32];
        snprintf(value, sizeof value, "%lld", (long long)s->last_contact_ms);
        if (ensure_tx(s) == OP_OK) meta_set(s, "last_hub_contact", value);
    }
    if (store_in_tx(s->db) && store_commit(s->db) != OP_OK) store_rollback(s->db);
    log_info("site",
             "stopping: %llu jobs run, %llu results acknowledged this run; %d running"
             " jobs stop now and resume at next start",
             (unsigned long long)s->jobs_run, (unsigned long long)s->results_acked, s->n_jobs);
    exit_code = EXIT_OK;
out:
    while (s->n_jobs > 0) {
        /* Keep the stored 'accepted' row: the job restarts with the agent. */
        s->jobs[0]->workdir[0] = '\0';
        remove_job(s, 0);
    }
    cJSON_Delete(s->events);
    cJSON_Delete(s->results);
    cJSON_Delete(s->locals);
    if (s->local_fd >= 0) {
        close(s->local_fd);
        unlink(s->local_path);
    }
    if (s->bus) bus_close(s->bus);
    auditlog_close(s->audit);
    power_trace_clear(&s->trace);
    policy_free(s->policy);
    store_close(s->db);
    ident_wipe(&s->identity);
    free(s);
    return exit_code;
}
