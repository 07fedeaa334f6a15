/*
 * registry: who the hub talks to. Sites (durable in hub.db, live in memory)
 * and operators (keys in <data-dir>/operators), the authentication of their
 * signed messages, enrollment of new sites with a one-time join token, and
 * the dispatch of site messages to the concern that handles them.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "hub/hub_int.h"
#include "io/opclient.h"
#include "wire/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- sites and operators in memory ---------- */

/*
 * Sites by id: an open-addressing table of indices into h->sites (which
 * moves when it grows, so no pointers), at most half full. Every message a
 * site sends looks its sender up two or three times; a scan of 20,000 ids
 * each time was the hub's largest cost per heartbeat.
 */
uint32_t hub__id_hash(const char *id)
{
    uint32_t x = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        x = (x ^ *p) * 16777619u;
    return x;
}

static void slot_put(int32_t *slots, size_t cap, const char *id, int32_t index)
{
    size_t i = hub__id_hash(id) & (cap - 1);
    while (slots[i] >= 0)
        i = (i + 1) & (cap - 1);
    slots[i] = index;
}

/* Room for one more site in the table: doubled and refilled when half full. */
static int slots_reserve(hub *h)
{
    if ((h->n_sites + 1) * 2 <= h->site_slots_cap) return OP_OK;
    size_t cap = h->site_slots_cap ? h->site_slots_cap * 2 : 64;
    int32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return OP_ENOMEM;
    memset(slots, 0xff, cap * sizeof *slots); /* -1: empty */
    for (size_t i = 0; i < h->n_sites; i++)
        slot_put(slots, cap, h->sites[i].id, (int32_t)i);
    free(h->site_slots);
    h->site_slots = slots;
    h->site_slots_cap = cap;
    return OP_OK;
}

hub_site *hub__find_site(hub *h, const char *id)
{
    if (!h->site_slots_cap) return NULL;
    for (size_t i = hub__id_hash(id) & (h->site_slots_cap - 1);;
         i = (i + 1) & (h->site_slots_cap - 1)) {
        int32_t k = h->site_slots[i];
        if (k < 0) return NULL;
        if (strcmp(h->sites[k].id, id) == 0) return &h->sites[k];
    }
}

hub_site *hub__add_site(hub *h, const char *id)
{
    if (h->n_sites == h->cap_sites) {
        size_t cap = h->cap_sites ? h->cap_sites * 2 : 16;
        hub_site *grown = realloc(h->sites, cap * sizeof *grown);
        if (!grown) return NULL;
        h->sites = grown;
        h->cap_sites = cap;
    }
    if (slots_reserve(h) != OP_OK) return NULL;
    hub_site *s = &h->sites[h->n_sites];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->owner, sizeof s->owner, "%s", id);
    s->trust = 50;
    s->probe.measured = -1;
    s->link = h->msg_link; /* enrolling: where its hello came from */
    slot_put(h->site_slots, h->site_slots_cap, s->id, (int32_t)h->n_sites);
    h->n_sites++;
    return s;
}

void hub__registry_free(hub *h)
{
    hub__place_free(h);
    free(h->site_slots);
    h->site_slots = NULL;
    h->site_slots_cap = 0;
}

hub_operator *hub__find_operator(hub *h, const char *id)
{
    for (int i = 0; i < h->n_operators; i++)
        if (strcmp(h->operators[i].id, id) == 0) return &h->operators[i];
    return NULL;
}

/* One registry row into memory; a site whose key is corrupt is skipped (logged). */
static int load_site_row(void *ctx, const hubdb_site_row *row)
{
    hub *h = ctx;
    uint8_t pk[32];
    if (util_unhex(row->pubkey_hex, pk, 32) != OP_OK) {
        log_error("hub", "site %s has a corrupt public key in the registry; skipped", row->id);
        return OP_OK;
    }
    hub_site *s = hub__add_site(h, row->id);
    if (!s) return OP_ENOMEM;
    memcpy(s->pk, pk, 32);
    s->class_bit = jobspec_class_bit(row->class_name);
    s->trust = row->trust;
    s->persisted_seq = row->last_seq;
    msg_window_restore(&s->window, s->persisted_seq);
    msg_window_restore(&s->beat_window, s->persisted_seq);
    s->cores = row->cores;
    s->memory_mb = row->memory_mb;
    s->power_budget_watts = row->power_budget_watts;
    s->watts_per_core = row->watts_per_core;
    s->idle_watts = row->idle_watts;
    snprintf(s->protections_off, sizeof s->protections_off, "%s", row->protections_off);
    snprintf(s->owner, sizeof s->owner, "%s", row->owner);
    /* Grace period: every known site is presumed alive until it stays silent, except one
     * that said goodbye: it left, and takes no work until it is heard again. */
    s->departed = row->departed;
    snprintf(s->quarantined, sizeof s->quarantined, "%s", row->quarantined ? row->quarantined : "");
    s->alive = !row->departed;
    s->last_heartbeat_mono = os_mono_ms();
    hub__beat_key_load(h, s, row->beat_key);
    return OP_OK;
}

static void load_reservation(void *ctx, const char *site, int cores, int64_t memory_mb, int jobs)
{
    hub_site *s = hub__find_site(ctx, site);
    if (!s) return;
    s->reserved_cores = cores;
    s->reserved_memory_mb = memory_mb;
    s->reserved_jobs = jobs;
}

int hub__reload_reservations(hub *h)
{
    for (size_t i = 0; i < h->n_sites; i++) {
        h->sites[i].reserved_cores = 0;
        h->sites[i].reserved_memory_mb = 0;
        h->sites[i].reserved_jobs = 0;
    }
    return hubdb_reservations_each(h->db, load_reservation, h);
}

/* A site's claims row: its token's limits and its last probe verdict. */
static int load_claims_row(void *ctx, const hubdb_claims *c)
{
    hub_site *s = hub__find_site(ctx, c->site);
    if (!s) return OP_OK;
    s->limits = (token_limits){c->max_cores, c->max_memory_mb, c->max_watts};
    hub_probe *p = &s->probe;
    p->measured = c->measured_cores;
    p->counted = c->counted_cores;
    p->claimed_at_check = c->claimed_cores;
    p->failures = c->failures;
    p->checked_at_ms = c->checked_at_ms;
    snprintf(p->verdict, sizeof p->verdict, "%s", c->verdict);
    return OP_OK;
}

int hub__load_claims(hub *h)
{
    return hubdb_claims_each(h->db, load_claims_row, h);
}

int hub__load_sites(hub *h)
{
    int rc = hubdb_sites_each(h->db, load_site_row, h);
    if (rc == OP_OK) rc = hub__load_claims(h);
    if (rc == OP_OK) rc = hubdb_reservations_each(h->db, load_reservation, h);
    return rc;
}

/* Operators: "<64 hex public key> [comment]" per line; id = "op-" + first 16 hex digits. */
int hub__load_operators(hub *h)
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
        msg_nonces_clear(&op->nonces);
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
    hub_site *s = hub__find_site(ctx, kid);
    if (!s) return OP_EUNKNOWN;
    *pk = s->pk;
    *window = &s->window;
    return OP_OK;
}

/*
 * Hellos and heartbeats arrive on their own connection, so they may overtake
 * or trail the site's other messages by more than a window: they get a
 * window of their own. A message cannot move between the two, since its
 * signature covers its topic.
 */
static int lookup_site_beat(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    hub_site *s = hub__find_site(ctx, kid);
    if (!s) return OP_EUNKNOWN;
    *pk = s->pk;
    *window = &s->beat_window;
    return OP_OK;
}

/* Operators have no sliding window: their requests carry nonces (hub__op_fresh, wire/msg.h). */
int hub__lookup_operator(void *ctx, const char *kid, const uint8_t **pk, msg_window **window)
{
    hub_operator *op = hub__find_operator(ctx, kid);
    if (!op) return OP_EUNKNOWN;
    *pk = op->pk;
    *window = NULL;
    return OP_OK;
}

cJSON *hub__authenticate(hub *h, const char *topic_id, const char *topic, const void *payload,
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
    int rc =
        msg_open_for(&h->identity, proto_must_seal(topic), topic, payload, len, kid, sig, lookup, h,
                     os_now_ms(), h->clock_skew_ms, &body, hdr, &h->msg, reason, sizeof reason);
    if (rc == OP_EPERM) { /* in clear where it must be sealed: counted, not worth a warning */
        log_debug("hub", "dropped: %s", reason);
        return NULL;
    }
    if (rc != OP_OK) {
        log_warn("hub", "dropped: %s", reason);
        return NULL;
    }
    hub__intake_refund(h);
    return body;
}

/* ---------- enrollment ---------- */

/* Sealed to the key the hello carried and proved: the site that asked reads it. */
static void send_enroll_refusal(hub *h, const char *site_id, const uint8_t pk[32],
                                const char *reason)
{
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "reason", reason);
    hub__queue_reply(h, "site", site_id, "inbox", body, "refused", pk);
}

static void send_welcome(hub *h, hub_site *s)
{
    s->welcomed_mono = os_mono_ms();
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    cJSON_AddStringToObject(body, "class", jobspec_class_name(s->class_bit));
    jsonx_add_int(body, "lease_ms", h->lease_ms);
    hub__beat_key_welcome(s, body);
    hub__queue_reply(h, "site", s->id, "inbox", body, "welcome", s->pk);
}

/*
 * A join token whose signature and expiry passed (hub_hello_open) is good
 * when this hub's registry issued it and no site used it yet. OP_OK, or an
 * error with the reason to send back (OP_ESTORE: the registry could not be
 * read).
 */
static int check_token(hub *h, const token *tok, char *reason, size_t reason_len)
{
    int known;
    char used_by[64];
    if (hubdb_token_lookup(h->db, tok->tid, &known, used_by) != OP_OK) return OP_ESTORE;
    if (!known) {
        snprintf(reason, reason_len, "token was not issued by this hub's registry");
        return OP_ESIG;
    }
    if (used_by[0]) {
        snprintf(reason, reason_len, "token already used (by site %s); create a new one", used_by);
        return OP_EUSED;
    }
    return OP_OK;
}

/* A token's limits on what its site may claim, for the record: only those it set. */
static void add_limits(cJSON *o, const token_limits *l)
{
    if (!l->cores && !l->memory_mb && !(l->watts > 0)) return;
    cJSON *lim = cJSON_AddObjectToObject(o, "limits");
    if (!lim) return;
    if (l->cores) jsonx_add_int(lim, "cores", l->cores);
    if (l->memory_mb) jsonx_add_int(lim, "memory_mb", l->memory_mb);
    if (l->watts > 0) cJSON_AddNumberToObject(lim, "watts", l->watts);
}

/* The new site: in memory and in the registry, its token spent, welcomed, on the log. */
static void register_site(hub *h, const char *site_id, const uint8_t pk[32], const token *tok,
                          const msg_header *hdr, const cJSON *body)
{
    hub_site *s = hub__add_site(h, site_id);
    if (!s) return;
    const char *pk_hex = jsonx_str(body, "pubkey");
    memcpy(s->pk, pk, 32);
    s->class_bit = jobspec_class_bit(tok->cls);
    snprintf(s->owner, sizeof s->owner, "%s", tok->owner);
    msg_window_accept(&s->beat_window, hdr->seq);
    msg_window_restore(&s->window, hdr->seq);
    s->alive = 1;
    s->last_heartbeat_mono = os_mono_ms();
    s->limits = tok->limits;
    hubdb_claims claims = {.site = site_id,
                           .max_cores = tok->limits.cores,
                           .max_memory_mb = tok->limits.memory_mb,
                           .max_watts = tok->limits.watts,
                           .measured_cores = -1};
    if (hub__check(h, hubdb_site_enroll(h->db, site_id, pk_hex, tok->cls, tok->owner, tok->tid,
                                        os_now_ms(), hdr->seq)) != OP_OK ||
        hub__check(h, hubdb_claims_put(h->db, &claims)) != OP_OK)
        return;
    s->persisted_seq = hdr->seq;
    /* its capacity from this hello: jobs already queued must not see a site of 0 cores
     * (too small is permanent: they would fail as impossible) */
    hub__update_capacity(h, s, body);
    log_info("hub", "enrolled site %s as class %s, owner %s", site_id, tok->cls, tok->owner);
    char subject[80];
    snprintf(subject, sizeof subject, "site:%s", site_id);
    cJSON *abody = cJSON_CreateObject();
    if (abody) {
        cJSON_AddStringToObject(abody, "class", tok->cls);
        cJSON_AddStringToObject(abody, "owner", tok->owner);
        cJSON_AddStringToObject(abody, "token", tok->tid);
        cJSON_AddStringToObject(abody, "pubkey", pk_hex);
        add_limits(abody, &tok->limits);
    }
    hub__audit_record(h, "enrollment", subject, abody);
    hub__beat_key_take(h, s, body);
    send_welcome(h, s);
    h->placement_dirty = 1;
}

void hub__enroll_checked(hub *h, const char *site_id, hub_hello *hello)
{
    char reason[256];
    int rc = hello->token_rc;
    if (!hello->has_token) {
        send_enroll_refusal(h, site_id, hello->pk,
                            "unknown site and no join token: run "
                            "`outpost token create --class CLASS --site ID` and start "
                            "the site with --token");
        log_warn("hub", "refused site %s: unknown and no token", site_id);
        return;
    }
    snprintf(reason, sizeof reason, "%s", hello->reason);
    if (rc == OP_OK && (rc = check_token(h, &hello->tok, reason, sizeof reason)) == OP_ESTORE) {
        log_warn("hub", "enrollment of %s postponed: the token registry cannot be read", site_id);
        return;
    }
    if (rc == OP_OK && strcmp(hello->tok.sid, site_id) != 0) {
        /* a token (and the broker certificate beside it) is for one site id only */
        snprintf(reason, sizeof reason, "this join token was made for site %s, not %s",
                 hello->tok.sid, site_id);
        rc = OP_EINVAL;
    }
    if (rc != OP_OK) {
        send_enroll_refusal(h, site_id, hello->pk, reason);
        log_warn("hub", "refused enrollment of %s: %s", site_id, reason);
        return;
    }
    register_site(h, site_id, hello->pk, &hello->tok, &hello->hdr, hello->body);
}

void hub__hello_refused(hub *h, int rc, const hub_hello *hello)
{
    h->msg.unsigned_msgs += hello->stats.unsigned_msgs;
    h->msg.unsealed += hello->stats.unsealed;
    h->msg.unopenable += hello->stats.unopenable;
    h->msg.malformed += hello->stats.malformed;
    h->msg.forged += hello->stats.forged;
    h->msg.expired += hello->stats.expired;
    if (rc == OP_EPERM)
        log_debug("hub", "dropped %s", hello->reason);
    else
        log_warn("hub", "dropped %s", hello->reason);
}

/* A hello from a site the hub does not know, checked here: enrolled, or refused. */
static void enroll(hub *h, const char *site_id, const char *topic, const void *payload, size_t len,
                   const char *kid, const char *sig)
{
    hub_hello hello;
    int rc = hub_hello_open(&h->identity, site_id, topic, payload, len, kid, sig, os_now_ms(),
                            h->clock_skew_ms, &hello);
    if (rc != OP_OK) {
        hub__hello_refused(h, rc, &hello);
        return;
    }
    hub__intake_refund(h);
    hub__enroll_checked(h, site_id, &hello);
    cJSON_Delete(hello.body);
}

/* Caps *value at limit (and at 0 below), noting what was capped in note. */
static void cap_claim(const char *name, double *value, double limit, char *note, size_t len)
{
    if (*value >= 0 && *value <= limit) return;
    size_t used = strlen(note);
    snprintf(note + used, len - used, "%s%s %.0f -> %.0f", used ? ", " : "", name, *value,
             *value < 0 ? 0.0 : limit);
    *value = *value < 0 ? 0.0 : limit;
}

/* The lower of a class's limit and a token's (0: the token sets none). */
static double lower_limit(double class_limit, double token_limit)
{
    return token_limit > 0 && token_limit < class_limit ? token_limit : class_limit;
}

/*
 * A site's claims held to its class's limits (hub configuration) and to its
 * join token's, the lower of the two: a site that says it has 256 cores or
 * a negative idle draw is counted as the limits allow. The first capping of
 * each kind is logged and audited.
 */
static void cap_claims(hub *h, hub_site *s, int64_t *cores, int64_t *memory_mb, double *budget,
                       double *wpc, double *idle)
{
    int k = s->class_bit == CLASS_POD ? 0 : s->class_bit == CLASS_CAR ? 1 : 2;
    char note[sizeof s->claims_capped] = "";
    double c = (double)*cores, m = (double)*memory_mb;
    double watts = lower_limit((double)h->claim_limit[k].watts, s->limits.watts);
    cap_claim("cores", &c, lower_limit((double)h->claim_limit[k].cores, (double)s->limits.cores),
              note, sizeof note);
    cap_claim("memory_mb", &m,
              lower_limit((double)h->claim_limit[k].memory_mb, (double)s->limits.memory_mb), note,
              sizeof note);
    cap_claim("power_budget_watts", budget, watts, note, sizeof note);
    cap_claim("watts_per_core", wpc, watts, note, sizeof note);
    cap_claim("idle_watts", idle, watts, note, sizeof note);
    *cores = (int64_t)c;
    *memory_mb = (int64_t)m;
    if (strcmp(note, s->claims_capped) == 0) return;
    snprintf(s->claims_capped, sizeof s->claims_capped, "%s", note);
    if (!note[0]) return;
    log_warn("hub", "site %s claims more than its class or token allows; counted as: %s", s->id,
             note);
    hub__audit_detail(h, "claims-capped", "site", s->id, note);
}

void hub__update_capacity(hub *h, hub_site *s, const cJSON *body)
{
    int64_t cores = s->cores, memory_mb = s->memory_mb;
    double budget = s->power_budget_watts, wpc = s->watts_per_core, idle = s->idle_watts;
    jsonx_int(body, "cores", 0, 4096, &cores);
    jsonx_int(body, "memory_mb", 0, 1 << 30, &memory_mb);
    jsonx_num(body, "power_budget_watts", &budget);
    jsonx_num(body, "watts_per_core", &wpc);
    jsonx_num(body, "idle_watts", &idle);
    cap_claims(h, s, &cores, &memory_mb, &budget, &wpc, &idle);
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
    hub__check(h, hubdb_site_set_capacity(h->db, s->id, s->cores, s->memory_mb, budget, wpc, idle,
                                          s->protections_off));
    h->placement_dirty = 1;
}

/* ---------- site messages ---------- */

/*
 * A known site says hello again (it restarted or moved): capacity, welcome,
 * offers, alive. A site repeats its hello every 2 s until welcomed; a
 * repeat within HUB_WELCOME_RTT_MS of the last welcome is not welcomed
 * again (in an enrollment storm, welcomes take that long to arrive).
 */
void hub__handle_hello(hub *h, hub_site *s, const cJSON *body)
{
    hub__update_capacity(h, s, body);
    int new_key = hub__beat_key_take(h, s, body); /* a new key is welcomed at once */
    if (!new_key && s->welcomed_mono && os_mono_ms() - s->welcomed_mono < HUB_WELCOME_RTT_MS) {
        /* its hello again before our welcome reached it: that welcome answers both */
        h->hellos_repeated++;
    } else {
        send_welcome(h, s);
        hub__reoffer_placed(h, s); /* offers lost in a broker's session while it moved */
    }
    hub__site_heard(h, s);
    if (!s->alive) h->placement_dirty = 1;
    s->alive = 1;
    if (s->departed) hub__set_departed(h, s, 0);
}

/*
 * Site messages go by topic leaf (hello, state, event, result), except a
 * goodbye: a message of type "bye" (the site sends it on its state topic)
 * says the site stops cleanly.
 */
void hub__site_message(hub *h, const char *site_id, const char *leaf, const char *topic,
                       const void *payload, size_t len, const char *kid, const char *sig)
{
    msg_header hdr;
    hub_site *s = hub__find_site(h, site_id);
    if (!s && strcmp(leaf, "hello") == 0) {
        enroll(h, site_id, topic, payload, len, kid, sig);
        return;
    }
    int beat = strcmp(leaf, "hello") == 0 || strcmp(leaf, "state") == 0;
    cJSON *body = s && strcmp(leaf, "state") == 0 && msg_is_mac(sig)
                      ? hub__authenticate_mac(h, s, topic, payload, len, kid, sig, &hdr)
                      : hub__authenticate(h, site_id, topic, payload, len, kid, sig,
                                          beat ? lookup_site_beat : lookup_site, &hdr);
    if (!body) return;
    if (s) s->link = h->msg_link; /* what goes to it goes where it was heard (hub_int.h) */
    if (strcmp(hdr.type, "bye") == 0) {
        hub__site_left(h, s, jsonx_str(body, "reason"));
    } else if (strcmp(leaf, "event") == 0 && strcmp(hdr.type, "probe") == 0) {
        hub__probe_answer(h, s, body);
    } else if (strcmp(leaf, "event") == 0 && strcmp(hdr.type, "fetch") == 0) {
        hub__models_fetch(h, s, body);
    } else if (strcmp(leaf, "event") == 0 && strcmp(hdr.type, "predict") == 0) {
        hub__predict_question(h, s, body);
    } else if (strcmp(leaf, "hello") == 0) {
        hub__handle_hello(h, s, body);
    } else if (strcmp(leaf, "state") == 0) {
        hub__note_beat_age(h, hdr.ts_ms);
        hub__handle_state(h, s, body);
    } else if (strcmp(leaf, "event") == 0) {
        hub__handle_events(h, s, body);
    } else if (strcmp(leaf, "result") == 0) {
        hub__handle_results(h, s, body);
    } else {
        h->msg.malformed++;
        log_warn("hub", "dropped message from %s on unknown topic %s", site_id, topic);
    }
    cJSON_Delete(body);
}
