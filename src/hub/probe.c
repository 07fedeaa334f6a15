/*
 * probe: a site's claimed capacity checked against what it delivers. With
 * probe = on, the hub sends each site a challenge (core/probe: a seed and a
 * difficulty sized for the cores the site says are free) when it is first
 * heard, every probe_interval_ms after, and whenever it claims more cores
 * than when last checked; no new work goes to it while a challenge is out
 * or before its first verdict. The answer is judged on the hub's own clock:
 *
 *   ok           measured >= claimed free cores / probe_tolerance
 *   over-claims  counted as measured for placement (ranked down); a second
 *                time in a row quarantines the site
 *   forged       a nonce that is not a solution (or a repeat, or junk):
 *                quarantined at once
 *   unanswered   no answer within probe_timeout_ms while the site is heard,
 *                or a refusal: quarantined
 *
 * A quarantined site takes no work until an operator clears it (`outpost
 * sites clear ID`); its placed and running jobs are taken back. Every
 * verdict is on the audit log (claims-checked, site-quarantined) and in
 * `outpost sites`.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "hub/hub_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- set-up ---------- */

/*
 * The hub's own single-core rate: the best of four 50 ms runs, so that a
 * moment of load on the hub's machine does not make every site look fast.
 */
static double measure_core_rate(probe_hasher *hs)
{
    uint8_t seed[PROBE_SEED_BYTES];
    uint64_t next = 0, found[1];
    randombytes_buf(seed, sizeof seed);
    double best = 0;
    for (int run = 0; run < 4; run++) {
        int64_t start = os_mono_us(), elapsed = 0;
        uint64_t hashes = 0;
        size_t n = 0;
        while (elapsed < 50000) {
            probe_search(hs, seed, 30, &next, 4096, found, 1, &n);
            hashes += 4096;
            elapsed = os_mono_us() - start;
        }
        double rate = (double)hashes / ((double)elapsed / 1e6);
        if (rate > best) best = rate;
    }
    return best;
}

int hub__probe_setup(hub *h)
{
    if (!h->probing.on) return OP_OK;
    if (!h->probing.hasher && !(h->probing.hasher = probe_hasher_new())) return OP_ENOMEM;
    randombytes_buf(&h->probing.next_id, sizeof h->probing.next_id);
    h->probing.next_id = (h->probing.next_id & (PROBE_MAX_NONCE >> 1)) + 1; /* JSON-exact */
    if (!(h->probing.core_rate > 0)) h->probing.core_rate = measure_core_rate(h->probing.hasher);
    log_info("hub",
             "probe: one core here hashes %.2f M/s; sites' claims checked with %lld ms probes,"
             " every %lld s, tolerance %lldx",
             h->probing.core_rate / 1e6, (long long)h->probing.duration_ms,
             (long long)(h->probing.interval_ms / 1000), (long long)h->probing.tolerance);
    return OP_OK;
}

void hub__probe_free(hub *h)
{
    probe_hasher_free(h->probing.hasher);
    h->probing.hasher = NULL;
}

/* ---------- what placement sees ---------- */

/* probe = on and set up (unit tests and the fuzzer's hub skip hub__probe_setup). */
static int probing(const hub *h)
{
    return h->probing.on && h->probing.hasher;
}

int hub__site_cores(const hub_site *s)
{
    int counted = s->probe.counted;
    return counted > 0 && counted < s->cores ? counted : s->cores;
}

const char *hub__site_held(const hub *h, hub_site *s)
{
    const char *why = NULL;
    if (s->busy_until_mono && os_mono_ms() >= s->busy_until_mono) s->busy_until_mono = 0;
    if (s->quarantined[0])
        snprintf(s->held, sizeof s->held, "quarantined: %s", s->quarantined);
    else if (s->busy_until_mono)
        why = "it refused work as busy a moment ago";
    else if (!probing(h))
        return NULL;
    else if (s->probe.id)
        why = "its claimed capacity is being probed";
    else if (!s->probe.checked_at_ms)
        why = "its claims are not checked yet";
    else
        return NULL;
    if (why) snprintf(s->held, sizeof s->held, "%s", why);
    return s->held;
}

/* ---------- records ---------- */

static void store_claims(hub *h, const hub_site *s)
{
    const hub_probe *p = &s->probe;
    hubdb_claims c = {.site = s->id,
                      .max_cores = s->limits.cores,
                      .max_memory_mb = s->limits.memory_mb,
                      .max_watts = s->limits.watts,
                      .measured_cores = p->measured,
                      .counted_cores = p->counted,
                      .claimed_cores = p->claimed_at_check,
                      .failures = p->failures,
                      .checked_at_ms = p->checked_at_ms,
                      .verdict = p->verdict};
    hub__check(h, hubdb_claims_put(h->db, &c));
}

/* A claims-checked entry on the audit log: the figures the verdict rests on. */
static void audit_check(hub *h, const hub_site *s, const char *result, size_t solutions,
                        int64_t elapsed_ms)
{
    const hub_probe *p = &s->probe;
    cJSON *b = cJSON_CreateObject();
    if (b) {
        cJSON_AddStringToObject(b, "result", result);
        jsonx_add_int(b, "claimed_cores", p->claimed);
        jsonx_add_int(b, "free_claimed", p->free_claimed);
        if (p->measured >= 0) cJSON_AddNumberToObject(b, "measured_cores", p->measured);
        jsonx_add_int(b, "counted_cores", hub__site_cores(s));
        jsonx_add_int(b, "solutions", (int64_t)solutions);
        jsonx_add_int(b, "bits", p->bits);
        jsonx_add_int(b, "elapsed_ms", elapsed_ms);
        cJSON_AddNumberToObject(b, "core_rate", h->probing.core_rate);
        jsonx_add_int(b, "tolerance", h->probing.tolerance);
        jsonx_add_int(b, "failures", p->failures);
        cJSON_AddStringToObject(b, "verdict", p->verdict);
    }
    char subject[80];
    snprintf(subject, sizeof subject, "site:%s", s->id);
    hub__audit_record(h, "claims-checked", subject, b);
}

/* A probe that proved nothing (forged, refused, unanswered): recorded, then quarantine. */
static void probe_failed(hub *h, hub_site *s, const char *result, const char *why,
                         int64_t elapsed_ms)
{
    hub_probe *p = &s->probe;
    p->id = 0;
    p->failures++;
    p->claimed_at_check = p->claimed;
    p->checked_at_ms = os_now_ms();
    snprintf(p->verdict, sizeof p->verdict, "%s", why);
    store_claims(h, s);
    audit_check(h, s, result, 0, elapsed_ms);
    hub__quarantine(h, s, why);
}

/* ---------- challenges ---------- */

static void send_challenge(hub *h, hub_site *s, int free_cores)
{
    hub_probe *p = &s->probe;
    cJSON *body = cJSON_CreateObject();
    if (!body) return;
    randombytes_buf(p->seed, sizeof p->seed);
    p->id = h->probing.next_id++;
    p->claimed = s->cores;
    p->free_claimed = free_cores;
    p->lanes = free_cores > PROBE_MAX_LANES ? PROBE_MAX_LANES : free_cores;
    /* sized for the least the site may show: claim / tolerance finds the target count */
    p->bits =
        probe_bits_for(h->probing.core_rate, (double)free_cores / (double)h->probing.tolerance,
                       h->probing.duration_ms);
    p->sent_mono = os_mono_ms();
    p->sent_commit = h->commits;
    char seed_hex[2 * PROBE_SEED_BYTES + 1];
    util_hex(p->seed, sizeof p->seed, seed_hex);
    jsonx_add_int(body, "probe", (int64_t)p->id);
    cJSON_AddStringToObject(body, "seed", seed_hex);
    jsonx_add_int(body, "bits", p->bits);
    jsonx_add_int(body, "lanes", p->lanes);
    jsonx_add_int(body, "ms", h->probing.duration_ms);
    jsonx_add_int(body, "max", PROBE_MAX_SOLUTIONS);
    hub__queue_reply(h, "site", s->id, "inbox", body, "probe", s->pk);
    h->placement_dirty = 1;
    log_info("hub", "probing site %s: %d cores claimed free, %d-bit puzzle for %lld ms", s->id,
             free_cores, p->bits, (long long)h->probing.duration_ms);
}

/* Never checked, checked too long ago, or claiming more cores than when it was. */
static int check_due(const hub *h, const hub_site *s, int64_t now_wall)
{
    const hub_probe *p = &s->probe;
    return !p->checked_at_ms || s->cores > p->claimed_at_check ||
           now_wall - p->checked_at_ms >= h->probing.interval_ms;
}

void hub__probe_fleet(hub *h)
{
    if (!probing(h)) return;
    int64_t now_mono = os_mono_ms(), now_wall = os_now_ms();
    for (size_t i = 0; i < h->n_sites && !h->store_failed; i++) {
        hub_site *s = &h->sites[i];
        hub_probe *p = &s->probe;
        if (p->id && !s->alive) { /* lost or left: asked again when it is back, no blame */
            p->id = 0;
            h->placement_dirty = 1;
        } else if (p->id && now_mono - p->sent_mono > h->probing.timeout_ms) {
            char why[160];
            snprintf(why, sizeof why, "probe unanswered within %lld s while the site was heard",
                     (long long)(h->probing.timeout_ms / 1000));
            probe_failed(h, s, "unanswered", why, now_mono - p->sent_mono);
        } else if (!p->id && s->alive && s->heard && !s->quarantined[0]) {
            int free_cores = s->cores - s->reserved_cores;
            if (free_cores > 0 && check_due(h, s, now_wall)) send_challenge(h, s, free_cores);
        }
    }
}

/* ---------- answers ---------- */

/*
 * The answer's "nonces": an array of whole numbers in [0, PROBE_MAX_NONCE],
 * at most PROBE_MAX_SOLUTIONS of them (*out malloc'd, caller frees). OP_ESIG
 * with why for anything else, OP_ENOMEM.
 */
static int parse_nonces(const cJSON *body, uint64_t **out, size_t *n, char *why, size_t why_len)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "nonces"), *v;
    *out = NULL;
    *n = 0;
    int count = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || count > PROBE_MAX_SOLUTIONS) {
        snprintf(why, why_len, "'nonces' is not an array of at most %d", PROBE_MAX_SOLUTIONS);
        return OP_ESIG;
    }
    if (count == 0) return OP_OK;
    if (!(*out = malloc((size_t)count * sizeof **out))) return OP_ENOMEM;
    cJSON_ArrayForEach(v, arr)
    {
        double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (!(d >= 0 && d <= (double)PROBE_MAX_NONCE) || d != (double)(uint64_t)d) {
            snprintf(why, why_len, "nonce %zu of %d is not a whole number in range", *n + 1, count);
            free(*out);
            *out = NULL;
            return OP_ESIG;
        }
        (*out)[(*n)++] = (uint64_t)d;
    }
    return OP_OK;
}

/* "64 cores claimed" or, with some busy when the probe went out, "..., 60 of them free". */
static void claimed_text(const hub_probe *p, char *buf, size_t len)
{
    if (p->free_claimed < p->claimed)
        snprintf(buf, len, "%d cores claimed, %d of them free", p->claimed, p->free_claimed);
    else
        snprintf(buf, len, "%d cores claimed", p->claimed);
}

/* An answer that checked out: the estimate against the claim, and its consequence. */
static void judge(hub *h, hub_site *s, size_t solutions, int64_t elapsed_ms)
{
    hub_probe *p = &s->probe;
    int counted_free;
    p->measured = probe_effective_cores(solutions, p->bits, elapsed_ms, h->probing.core_rate);
    probe_verdict v =
        probe_judge(p->measured, p->free_claimed, (double)h->probing.tolerance, &counted_free);
    char claimed[80];
    claimed_text(p, claimed, sizeof claimed);
    p->claimed_at_check = p->claimed;
    p->checked_at_ms = os_now_ms();
    if (v == PROBE_OK) {
        p->failures = 0;
        p->counted = 0;
        snprintf(p->verdict, sizeof p->verdict, "ok: %s, %.1f measured", claimed, p->measured);
        log_info("hub", "site %s claims checked: %s", s->id, p->verdict);
    } else {
        p->failures++;
        /* the cores busy with its jobs when the probe went out count as they were */
        p->counted = p->claimed - p->free_claimed + counted_free;
        snprintf(p->verdict, sizeof p->verdict, "over-claims: %s, %.1f measured; counted as %d",
                 claimed, p->measured, p->counted);
        log_warn("hub", "site %s %s", s->id, p->verdict);
    }
    store_claims(h, s);
    audit_check(h, s, v == PROBE_OK ? "ok" : "over-claims", solutions, elapsed_ms);
    if (v != PROBE_OK && p->failures >= 2) {
        char why[160];
        snprintf(why, sizeof why, "over-claims again: %s, %.1f measured", claimed, p->measured);
        hub__quarantine(h, s, why);
    }
}

void hub__probe_answer(hub *h, hub_site *s, const cJSON *body)
{
    hub_probe *p = &s->probe;
    int64_t id = 0, elapsed = os_mono_ms() - p->sent_mono;
    if (jsonx_int(body, "probe", 1, INT64_MAX, &id) != OP_OK || !p->id || (uint64_t)id != p->id) {
        log_info("hub", "site %s answered a probe that is not in flight; ignored", s->id);
        return;
    }
    h->placement_dirty = 1;
    char why[200] = "", reason[160];
    const char *refused = jsonx_str(body, "refused");
    if (refused) {
        snprintf(reason, sizeof reason, "refused its probe: %.100s", refused);
        probe_failed(h, s, "refused", reason, elapsed);
        return;
    }
    uint64_t *nonces = NULL;
    size_t n = 0;
    int rc = parse_nonces(body, &nonces, &n, why, sizeof why);
    if (rc == OP_OK)
        rc = probe_check(h->probing.hasher, p->seed, p->bits, nonces, n, why, sizeof why);
    free(nonces);
    if (rc == OP_ENOMEM) return; /* still in flight: judged on a resend or timed out */
    p->id = 0;
    if (rc != OP_OK) {
        snprintf(reason, sizeof reason, "forged probe answer: %.130s", why);
        probe_failed(h, s, "forged", reason, elapsed);
        return;
    }
    judge(h, s, n, elapsed);
}

/* ---------- rollback ---------- */

static int reload_quarantine(void *ctx, const hubdb_site_row *row)
{
    hub_site *s = hub__find_site(ctx, row->id);
    if (s) snprintf(s->quarantined, sizeof s->quarantined, "%s", row->quarantined);
    return OP_OK;
}

/*
 * The verdicts and quarantines of a lost batch were never stored: they are
 * re-read. A challenge queued in it never went out (h->commits counted that
 * batch's failed commit): forgotten, so it is sent again rather than timed
 * out against a site that never saw it.
 */
void hub__probe_rollback(hub *h)
{
    for (size_t i = 0; i < h->n_sites; i++) {
        hub_probe *p = &h->sites[i].probe;
        if (p->id && p->sent_commit + 1 >= h->commits) p->id = 0;
        h->sites[i].limits = (token_limits){0};
        p->measured = -1;
        p->counted = p->failures = p->claimed_at_check = 0;
        p->checked_at_ms = 0;
        p->verdict[0] = '\0';
    }
    if (hub__load_claims(h) != OP_OK || hubdb_sites_each(h->db, reload_quarantine, h) != OP_OK)
        log_error("hub", "cannot re-read the sites' claims after a rollback");
}

/* ---------- quarantine ---------- */

void hub__quarantine(hub *h, hub_site *s, const char *why)
{
    if (s->quarantined[0]) return;
    snprintf(s->quarantined, sizeof s->quarantined, "%s", why);
    if (hub__check(h, hubdb_site_set_quarantined(h->db, s->id, s->quarantined)) != OP_OK) return;
    log_warn("hub", "site %s quarantined: %s; no work goes there until `outpost sites clear %s`",
             s->id, s->quarantined, s->id);
    hub__audit_detail(h, "site-quarantined", "site", s->id, s->quarantined);
    char taken[256];
    snprintf(taken, sizeof taken, "site %s quarantined: %.180s", s->id, s->quarantined);
    /* not excluded for good: the hold keeps them away until the site is cleared */
    hub__take_back(h, s->id, taken, 0);
    s->probe.id = 0;
    h->placement_dirty = 1;
}

int hub__quarantine_clear(hub *h, hub_site *s)
{
    int rc = hub__check(h, hubdb_site_set_quarantined(h->db, s->id, ""));
    if (rc != OP_OK) return rc;
    s->quarantined[0] = '\0';
    if ((rc = hub__verify_clear(h, s)) != OP_OK) return rc;
    /* checked anew: held until a first verdict, which starts a fresh count */
    hub_probe *p = &s->probe;
    p->failures = 0;
    p->counted = 0;
    p->checked_at_ms = 0;
    p->verdict[0] = '\0';
    store_claims(h, s);
    h->placement_dirty = 1;
    return OP_OK;
}

/* ---------- the operator's view ---------- */

void hub__claims_view(const hub *h, hub_site *s, cJSON *o)
{
    const token_limits *l = &s->limits;
    if (l->cores || l->memory_mb || l->watts > 0) {
        cJSON *lim = cJSON_AddObjectToObject(o, "limits");
        if (lim && l->cores) jsonx_add_int(lim, "cores", l->cores);
        if (lim && l->memory_mb) jsonx_add_int(lim, "memory_mb", l->memory_mb);
        if (lim && l->watts > 0) cJSON_AddNumberToObject(lim, "watts", l->watts);
    }
    const hub_probe *p = &s->probe;
    cJSON *c = cJSON_AddObjectToObject(o, "claims");
    if (c) {
        jsonx_add_int(c, "cores_counted", hub__site_cores(s));
        if (p->measured >= 0) cJSON_AddNumberToObject(c, "measured_cores", p->measured);
        jsonx_add_int(c, "checked_at", p->checked_at_ms);
        jsonx_add_int(c, "failures", p->failures);
        cJSON_AddBoolToObject(c, "probing", p->id != 0);
        cJSON_AddStringToObject(c, "verdict", p->verdict);
    }
    if (s->quarantined[0]) cJSON_AddStringToObject(o, "quarantined", s->quarantined);
    const char *held = hub__site_held(h, s);
    if (held) cJSON_AddStringToObject(o, "held", held);
}
