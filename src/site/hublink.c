/*
 * The site's side of its hub link: the hub pin, what the site sends (hello,
 * heartbeats, events, results and their resends, bye) and what it takes from
 * the hub (welcome, refused, offers, acks with the hub's audit head, cancels).
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "site/site_db.h"
#include "site/site_int.h"
#include "wire/proto.h"
#include "wire/token.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pin from the store after a first start: hub, enrollment, replay window, class. */
static int load_stored_pin(site *s, const char *token_text)
{
    char value[128];
    if (sitedb_meta_get(s->db, "hub_id", s->hub_id, sizeof s->hub_id) != OP_OK ||
        sitedb_meta_get(s->db, "hub_pubkey", value, sizeof value) != OP_OK ||
        util_unhex(value, s->hub_pk, 32) != OP_OK)
        return OP_ENOTFOUND;
    s->have_hub = 1;
    if (sitedb_meta_get(s->db, "enrolled", value, sizeof value) == OP_OK) s->enrolled = 1;
    int64_t top = 0;
    if (sitedb_meta_get(s->db, "hub_seq", value, sizeof value) == OP_OK &&
        util_parse_i64(value, 0, INT64_MAX, &top) == OP_OK)
        msg_window_restore(&s->hub_window, (uint64_t)top);
    sitedb_meta_get(s->db, "class", s->class_name, sizeof s->class_name);
    if (token_text && s->enrolled)
        log_info("site", "already enrolled with hub %s; --token ignored", s->hub_id);
    if (!s->enrolled) s->token_text = token_text;
    return OP_OK;
}

/* The join token's own checks at the site: well formed, unexpired, for this very site id. */
static int check_join_token(site *s, const char *token_text, token *tok, char *err, size_t err_len)
{
    char reason[200];
    int rc = token_parse(token_text, tok, reason, sizeof reason);
    if (rc != OP_OK) {
        snprintf(err, err_len, "bad join token: %s", reason);
        return rc;
    }
    if (tok->expires_ms <= os_now_ms()) {
        snprintf(err, err_len, "join token expired; ask the operator for a new one");
        return OP_EEXPIRED;
    }
    if (strcmp(tok->sid, s->identity.id) != 0) {
        snprintf(err, err_len, "this join token was made for site %s, not %s (site_id)", tok->sid,
                 s->identity.id);
        return OP_EINVAL;
    }
    return OP_OK;
}

/*
 * The hub pin comes from the store after enrollment, or from the join token
 * the first time (stored before any message is trusted). A join bundle
 * (opj1.) also brings the site's broker certificate, stored in tls/ first.
 */
int site__load_hub_pin(site *s, const char *token_text, char *err, size_t err_len)
{
    token_bundle bundle = {0};
    int rc = site__unbundle(s, token_text, &bundle, &token_text, err, err_len);
    if (rc == OP_OK && load_stored_pin(s, token_text) == OP_OK) goto out;
    if (rc == OP_OK && !token_text) {
        snprintf(err, err_len,
                 "not enrolled yet: pass --token TOKEN (from `outpost token create"
                 " --class CLASS --site ID` on the hub)");
        rc = OP_EINVAL;
    }
    token tok;
    if (rc == OP_OK) rc = check_join_token(s, token_text, &tok, err, err_len);
    if (rc == OP_OK && bundle.token) rc = site__store_bundle(s, &bundle, err, err_len);
    if (rc != OP_OK) goto out;
    char pk_hex[65];
    util_hex(tok.hub_pk, 32, pk_hex);
    if (sitedb_pin_hub(s->db, tok.hub_id, pk_hex) != OP_OK) {
        snprintf(err, err_len, "cannot store the hub pin");
        rc = OP_ESTORE;
        goto out;
    }
    snprintf(s->hub_id, sizeof s->hub_id, "%s", tok.hub_id);
    memcpy(s->hub_pk, tok.hub_pk, 32);
    s->have_hub = 1;
    s->token_text = token_text;
    log_info("site", "pinned hub %s (key %.16s...) from the join token", tok.hub_id, pk_hex);
out:
    token_bundle_free(&bundle);
    return rc;
}

/* ---------- messages to the hub ---------- */

/*
 * Sealed to the pinned hub, except heartbeats and goodbyes (proto_must_seal);
 * a heartbeat carries a MAC once the hub holds the site's key (wire/msg.h).
 */
int site__publish(site *s, const char *leaf, cJSON *body, const char *type)
{
    char topic[PROTO_TOPIC_MAX];
    int rc = proto_topic(topic, sizeof topic, "site", s->identity.id, leaf);
    if (rc != OP_OK) return rc;
    if (proto_must_seal(topic)) return bus_publish_sealed(s->bus, topic, body, type, s->hub_pk);
    if (s->beat_mac && strcmp(type, "state") == 0)
        return bus_publish_mac(s->bus, topic, body, type, s->beat_key);
    return bus_publish(s->bus, topic, body, type);
}

void site__add_event(site *s, int64_t job_id, int64_t attempt, const char *event,
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

/* Drops "started" events answered by a result in the same batch; NULL when none is left. */
static void drop_answered_starts(site *s)
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
}

/*
 * Sends this iteration's events and results (after its commit). A job that
 * finished within the iteration it started in (no-op, instant failure) needs
 * no "started" event: one message to the hub instead of two.
 */
void site__send_batches(site *s)
{
    drop_answered_starts(s);
    if (s->events) {
        cJSON *body = cJSON_CreateObject();
        if (body) {
            cJSON_AddItemToObject(body, "events", s->events);
            site__publish(s, "event", body, "event");
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
            site__publish(s, "result", body, "result");
            cJSON_Delete(body);
        } else {
            cJSON_Delete(s->results);
            cJSON_Delete(s->locals);
        }
        s->results = s->locals = NULL;
    }
}

void site__send_hello(site *s)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    char key_hex[2 * MSG_MAC_KEY_BYTES + 1];
    util_hex(s->beat_key, sizeof s->beat_key, key_hex);
    cJSON_AddStringToObject(body, "pubkey", s->identity.pk_hex);
    cJSON_AddStringToObject(body, "beat_key", key_hex); /* the hello is sealed to the hub */
    sodium_memzero(key_hex, sizeof key_hex);
    if (s->token_text && !s->enrolled) cJSON_AddStringToObject(body, "token", s->token_text);
    jsonx_add_int(body, "cores", s->cores);
    jsonx_add_int(body, "memory_mb", s->memory_mb);
    cJSON_AddNumberToObject(body, "power_budget_watts", s->power_budget_watts);
    cJSON_AddNumberToObject(body, "watts_per_core", s->watts_per_core);
    cJSON_AddNumberToObject(body, "idle_watts", s->idle_watts);
    cJSON_AddStringToObject(body, "protections_off", s->caps.missing);
    site__publish(s, "hello", body, "hello");
    cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "beat_key");
    if (key && key->valuestring) sodium_memzero(key->valuestring, strlen(key->valuestring));
    cJSON_Delete(body);
    s->beats_since_full = SITE_FULL_BEAT_EVERY; /* a new link, perhaps a new hub: all of it */
}

/*
 * A heartbeat carries only what changed since the last one: the hub keeps
 * every field it does not hear again. Two are always said, since their
 * absence means something: "running" (a lease renews only when its job is
 * named) and "store_failing" (absent: the store is fine). A full heartbeat
 * goes every SITE_FULL_BEAT_EVERY beats and after every hello, so that a hub
 * that restarted (its power views are memory only) has all of it again soon.
 */
static void keep_changes_only(site *s, cJSON *body)
{
    cJSON *full = cJSON_Duplicate(body, 1);
    if (s->last_beat && s->beats_since_full < SITE_FULL_BEAT_EVERY) {
        for (cJSON *item = body->child; item;) {
            cJSON *next = item->next;
            const cJSON *was = cJSON_GetObjectItemCaseSensitive(s->last_beat, item->string);
            if (strcmp(item->string, "running") != 0 &&
                strcmp(item->string, "store_failing") != 0 && was && cJSON_Compare(was, item, 1))
                cJSON_Delete(cJSON_DetachItemViaPointer(body, item));
            item = next;
        }
        s->beats_since_full++;
    } else {
        s->beats_since_full = 1;
    }
    if (!full) s->beats_since_full = SITE_FULL_BEAT_EVERY; /* no copy: the next one in full */
    cJSON_Delete(s->last_beat);
    s->last_beat = full;
}

/*
 * The heartbeat: capacity, draw, broker, audit head, message counters, power,
 * and jobs to renew; of them, what changed since the last one
 * (keep_changes_only).
 */
void site__send_heartbeat(site *s)
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
    /* the broker it is on, host:port (of its list): `outpost sites` shows it */
    if (s->bus) cJSON_AddStringToObject(body, "broker", bus_broker_name(s->bus));
    /* a write failed within 30 s: commits fail only now and then on a full disk */
    if (s->store_failed_last_ms && os_mono_ms() - s->store_failed_last_ms < 30000)
        cJSON_AddBoolToObject(body, "store_failing", 1);
    if (s->head.size > 0)
        cJSON_AddItemToObject(body, "audit_head", auditlog_head_to_json(&s->head));
    cJSON *rejected = cJSON_AddObjectToObject(body, "messages");
    if (rejected) msg_stats_to_json(&s->msg, rejected);
    site__add_power_report(s, body);
    site__artifacts_report(s, body);
    for (int i = 0; i < s->n_jobs; i++) {
        if (s->jobs[i]->job_id < 0) continue; /* local: not the hub's to renew */
        cJSON *r = cJSON_CreateObject();
        if (!r) break;
        jsonx_add_int(r, "job", s->jobs[i]->job_id);
        jsonx_add_int(r, "attempt", s->jobs[i]->attempt);
        cJSON_AddItemToArray(running, r);
    }
    keep_changes_only(s, body);
    /* not sent: the hub may not have what the next one leaves out */
    if (site__publish(s, "state", body, "state") != OP_OK)
        s->beats_since_full = SITE_FULL_BEAT_EVERY;
    cJSON_Delete(body);
}

/*
 * A clean stop says goodbye, so that the hub tells a departure from a loss:
 * a signed "bye" on the state topic, then up to SITE_BYE_WAIT_MS for the
 * broker to take it (and whatever else is still in flight). Only once
 * enrolled and connected: otherwise there is nobody to tell.
 */
void site__send_bye(site *s, const char *reason)
{
    if (!s->bus || !s->enrolled || !bus_connected(s->bus)) return;
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "type", "bye");
    cJSON_AddStringToObject(body, "reason", reason);
    int rc = site__publish(s, "state", body, "bye");
    cJSON_Delete(body);
    if (rc != OP_OK) {
        log_warn("site", "could not say goodbye to the hub: %s", op_strerror(rc));
        return;
    }
    int64_t deadline = os_mono_ms() + SITE_BYE_WAIT_MS;
    while (bus_pending(s->bus) > 0 && bus_connected(s->bus) && os_mono_ms() < deadline)
        if (bus_loop(s->bus, 20) != OP_OK) break;
    if (bus_pending(s->bus) > 0)
        log_info("site", "goodbye to the hub not confirmed within %d ms", SITE_BYE_WAIT_MS);
}

typedef struct resend_batch {
    cJSON *results, *locals;
    size_t bytes;
    int n;
} resend_batch;

/* One outbox entry into the batch; stops at the batch's byte bound. */
static int add_to_resend(void *ctx, int64_t job_id, const char *text)
{
    resend_batch *b = ctx;
    if (b->bytes >= SITE_RESEND_BATCH_BYTES) return 1;
    cJSON *r = cJSON_Parse(text);
    if (!r) return 0;
    b->bytes += strlen(text);
    cJSON_AddItemToArray(job_id < 0 ? b->locals : b->results, r);
    b->n++;
    return 0;
}

/*
 * Resends every outbox entry (oldest first, bounded batch) until the hub
 * acknowledges it; the hub is idempotent per (job, attempt).
 */
void site__resend_outbox(site *s)
{
    resend_batch b = {cJSON_CreateArray(), cJSON_CreateArray(), 0, 0};
    cJSON *body = NULL;
    if (b.results && b.locals &&
        sitedb_outbox_each(s->db, os_now_ms() - s->resend_ms, SITE_RESEND_BATCH, add_to_resend,
                           &b) == OP_OK) {
        s->backlog = b.n == SITE_RESEND_BATCH || b.bytes >= SITE_RESEND_BATCH_BYTES;
        body = b.n ? cJSON_CreateObject() : NULL;
    }
    if (!body) {
        cJSON_Delete(b.results);
        cJSON_Delete(b.locals);
        return;
    }
    cJSON_AddItemToObject(body, "results", b.results);
    cJSON_AddItemToObject(body, "locals", b.locals);
    log_debug("site", "resending %d unacknowledged result(s)", b.n);
    site__publish(s, "result", body, "result");
    cJSON_Delete(body);
}

/* ---------- messages from the hub ---------- */

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
        if (sitedb_job_known(s->db, job_id, attempt)) continue; /* redelivered offer */
        int64_t lease_ms = 0;
        jsonx_int(item, "lease_ms", 1, INT64_MAX / 4, &lease_ms);
        site__accept_job(s, job_id, attempt, spec, 0, lease_ms);
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
    if (text && s->audit && site__ensure_tx(s) == OP_OK &&
        auditlog_append(s->audit, os_now_ms(), "witness", subject, text, NULL) != OP_OK)
        s->store_failed = 1;
    free(text);
}

static void handle_acks(site *s, const cJSON *body)
{
    const cJSON *item;
    if (site__ensure_tx(s) != OP_OK) return;
    witness_hub_head(s, cJSON_GetObjectItemCaseSensitive(body, "hub_head"));
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(body, "acks"))
    {
        int64_t job_id, attempt = 1, local_id;
        if (jsonx_int(item, "local", 1, INT64_MAX, &local_id) == OP_OK)
            job_id = -local_id; /* a local job: stored under its negated id */
        else if (jsonx_int(item, "job", 1, INT64_MAX, &job_id) != OP_OK ||
                 jsonx_int(item, "attempt", 1, INT64_MAX, &attempt) != OP_OK)
            continue;
        int removed = 0;
        if (sitedb_result_acked(s->db, job_id, attempt, &removed) != OP_OK) s->store_failed = 1;
        if (removed) {
            s->results_acked++;
            /* acks clock a backlog out: its next batch goes now, not after resend_ms (no
             * extra outbox query per ack when there is no backlog) */
            if (s->backlog) s->resend_now = 1;
        }
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
        site_job *j = site__find_job(s, job_id, attempt);
        if (!j) continue;
        const char *why = jsonx_str(item, "reason");
        site__audit_job(s, "cancelled", job_id, attempt, why);
        log_info("site", "job %lld attempt %lld cancelled by hub: %s", (long long)job_id,
                 (long long)attempt, why ? why : "?");
        j->cancelled = 1;
        if (j->run) sandbox_signal(j->run, SIGKILL);
        if (site__ensure_tx(s) == OP_OK && sitedb_job_forget(s->db, job_id, attempt) != OP_OK)
            s->store_failed = 1;
    }
}

/*
 * The welcome completes enrollment: the class the hub gave is kept. When it
 * names this site's heartbeat key, the hub holds it: heartbeats go MAC'd.
 */
static void handle_welcome(site *s, const cJSON *body)
{
    const char *key_id = jsonx_str(body, "beat_key_id");
    if (key_id && !s->beat_mac && strcmp(key_id, s->beat_key_id) == 0) {
        s->beat_mac = 1;
        log_info("site", "hub holds this site's heartbeat key: heartbeats go with a MAC");
    }
    const char *cls = jsonx_str(body, "class");
    if (s->enrolled || !cls || !token_valid_class(cls)) return;
    if (site__ensure_tx(s) == OP_OK && sitedb_meta_set(s->db, "class", cls) == OP_OK &&
        sitedb_meta_set(s->db, "enrolled", "1") == OP_OK) {
        s->enrolled = 1;
        snprintf(s->class_name, sizeof s->class_name, "%s", cls);
        log_info("site", "enrolled with hub %s as class %s", s->hub_id, cls);
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

/* Dispatches an authenticated hub message by its type. */
static void handle_hub_message(site *s, const char *type, const cJSON *body)
{
    if (strcmp(type, "welcome") == 0) {
        handle_welcome(s, body);
    } else if (strcmp(type, "refused") == 0) {
        const char *why = jsonx_str(body, "reason");
        snprintf(s->refusal, sizeof s->refusal, "%s", why ? why : "no reason given");
        s->refused = 1;
    } else if (!s->enrolled) {
        log_warn("site", "ignored %s before enrollment completed", type);
    } else if (strcmp(type, "offer") == 0) {
        handle_offer(s, body);
    } else if (strcmp(type, "ack") == 0) {
        handle_acks(s, body);
    } else if (strcmp(type, "cancel") == 0) {
        handle_cancel(s, body);
    } else if (strcmp(type, "rekey") == 0) {
        /* the hub cannot check our MACs (it restarted without our key, say): sign, hello */
        const char *why = jsonx_str(body, "reason");
        log_info("site",
                 "hub asks for the heartbeat key again (%s): heartbeats signed until "
                 "it has it",
                 why ? why : "no reason given");
        s->beat_mac = 0;
        s->hello_now = 1;
    } else if (strcmp(type, "probe") == 0) {
        site__probe_start(s, body);
    } else if (strcmp(type, "predicted") == 0) {
        site__predict_answered(s, body); /* predict.c */
    } else if (!strcmp(type, "manifest") || !strcmp(type, "chunk") || !strcmp(type, "fetch_wait") ||
               !strcmp(type, "fetch_refused") || !strcmp(type, "serve")) {
        site__artifacts_from_hub(s, type, body); /* artifacts_wire.c */
    } else {
        s->msg.malformed++;
        log_warn("site", "ignored message of unknown type '%s'", type);
    }
}

/* The bus callback: the site's own meter topic, else a message the hub must have signed. */
void site__on_message(void *ctx, const char *topic, const void *payload, size_t len,
                      const char *kid, const char *sig)
{
    site *s = ctx;
    cJSON *body = NULL;
    msg_header hdr;
    char reason[256];
    if (s->meter_topic[0] && strcmp(topic, s->meter_topic) == 0) {
        /* the site's own meter: unsigned JSON, trusted as far as the broker's ACL */
        site__apply_meter(s, payload, len, "the meter topic", reason, sizeof reason);
        return;
    }
    if (strncmp(topic, MSG_TOPIC_ROOT "peer/", strlen(MSG_TOPIC_ROOT "peer/")) == 0) {
        site__artifacts_on_peer(s, topic, payload, len, kid, sig); /* another site's */
        return;
    }
    int rc = msg_open_for(&s->identity, proto_must_seal(topic), topic, payload, len, kid, sig,
                          lookup_hub, s, os_now_ms(), s->clock_skew_ms, &body, &hdr, &s->msg,
                          reason, sizeof reason);
    if (rc != OP_OK) {
        if (rc == OP_EPERM)
            log_debug("site", "dropped: %s", reason);
        else
            log_warn("site", "dropped: %s", reason);
        return;
    }
    s->last_contact_ms = os_now_ms(); /* authentic word from the hub: leases run from here */
    handle_hub_message(s, hdr.type, body);
    cJSON_Delete(body);
}
