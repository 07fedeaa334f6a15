/*
 * verify: replication plans, quorum decisions and trust records for results
 * from untrusted sites (see verify.h for the rule and its reasons).
 */
#include "core/verify.h"

#include "base/err.h"
#include "core/jobspec.h"

#include <string.h>

/* Doubling the validated run per mismatch stops here (trust_after x 64). */
#define VERIFY_MAX_DOUBLINGS 6

void verify_params_default(verify_params *p)
{
    memset(p, 0, sizeof *p);
    p->untrusted_classes = CLASS_CAR;
    p->trusted_classes = CLASS_POD | CLASS_DC;
    p->trust_after = 10;
    p->spot_check_floor = 0.02;
    p->spot_check_tainted = 0.5;
    p->quarantine_after = 2;
    p->quorum = 2;
    p->max_replicas = 5;
    p->reexec_on_trusted = 0;
    /* a noop job produces nothing: there is no answer to forge, so nothing to check */
    p->kinds[0] = (verify_kind_rule){JOB_KIND_NOOP, 1, 0};
    p->n_kinds = 1;
}

const char *verify_why_text(int why)
{
    switch (why) {
    case VERIFY_WHY_TRUSTED_CLASS:
        return "the operator's own site class: its result alone";
    case VERIFY_WHY_KIND_UNVERIFIED:
        return "the policy leaves this kind unverified";
    case VERIFY_WHY_KIND_FIXED:
        return "the policy fixes the replicas for this kind";
    case VERIFY_WHY_NEW_SITE:
        return "site not yet trusted (too few validated results in a row): replicated";
    case VERIFY_WHY_SPOT_CHECK:
        return "trusted site drawn for a spot check: replicated";
    case VERIFY_WHY_TAINTED_CHECK:
        return "site or owner mismatched before, drawn for a check: replicated";
    case VERIFY_WHY_TRUSTED:
        return "trusted site, not drawn for a check: its result alone";
    case VERIFY_WHY_NONDETERMINISTIC:
        return "refused: a non-deterministic kind cannot be verified, trusted classes only";
    case VERIFY_WHY_KIND_TRUSTED_ONLY:
        return "refused: the policy keeps this kind on trusted classes";
    case VERIFY_WHY_QUARANTINED:
        return "refused: the site or its owner is quarantined after repeated mismatches";
    default:
        return "?";
    }
}

static const verify_kind_rule *kind_rule(const verify_params *p, int kind)
{
    for (size_t i = 0; i < p->n_kinds && i < VERIFY_MAX_KINDS; i++)
        if (p->kinds[i].kind == kind) return &p->kinds[i];
    return NULL;
}

static uint32_t past_mismatches(const verify_trust *site, const verify_trust *owner)
{
    uint32_t m = site->mismatches;
    if (owner && owner->mismatches > m) m = owner->mismatches;
    return m;
}

/*
 * Each past mismatch doubles the run a site must show again: an attacker
 * who behaves until trusted pays twice as much honest work for each further
 * attempt, while an honest site's rare glitch costs it little.
 */
uint32_t verify_trust_needed(const verify_params *p, const verify_trust *site,
                             const verify_trust *owner)
{
    uint32_t m = past_mismatches(site, owner);
    if (m > VERIFY_MAX_DOUBLINGS) m = VERIFY_MAX_DOUBLINGS;
    return p->trust_after << m;
}

static uint32_t clamp_replicas(const verify_params *p, uint32_t n)
{
    uint32_t most = p->max_replicas ? p->max_replicas : 1;
    if (most > VERIFY_MAX_RESULTS) most = VERIFY_MAX_RESULTS;
    return n > most ? most : n < 1 ? 1 : n;
}

/* A uniform double in [0, 1) from the caller's 64-bit draw. */
static double unit_draw(uint64_t random)
{
    return (double)(random >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * The adaptive part, for a deterministic job on an untrusted site: BOINC's
 * 1/consecutive check probability, never below the floor, and at least
 * spot_check_tainted once the site or its owner mismatched.
 */
static void plan_adaptive(const verify_params *p, const verify_trust *site,
                          const verify_trust *owner, uint64_t random, verify_plan_out *out)
{
    uint32_t checked = clamp_replicas(p, p->quorum);
    if (site->consecutive_valid < verify_trust_needed(p, site, owner)) {
        out->replicas = checked;
        out->why = VERIFY_WHY_NEW_SITE;
        out->check_probability = 1.0;
        return;
    }
    double prob = 1.0 / (double)(site->consecutive_valid ? site->consecutive_valid : 1);
    if (prob < p->spot_check_floor) prob = p->spot_check_floor;
    int tainted = past_mismatches(site, owner) > 0;
    if (tainted && prob < p->spot_check_tainted) prob = p->spot_check_tainted;
    out->check_probability = prob;
    if (unit_draw(random) < prob) {
        out->replicas = checked;
        out->why = tainted ? VERIFY_WHY_TAINTED_CHECK : VERIFY_WHY_SPOT_CHECK;
    } else {
        out->replicas = 1;
        out->why = VERIFY_WHY_TRUSTED;
    }
}

int verify_plan(const verify_params *p, int kind, int deterministic, unsigned site_class,
                const verify_trust *site, const verify_trust *owner, uint64_t random,
                verify_plan_out *out)
{
    if (!p || !site || !out || !site_class || (site_class & (site_class - 1))) return OP_EINVAL;
    memset(out, 0, sizeof *out);
    out->replicas = 1;
    out->check_class =
        p->reexec_on_trusted ? p->trusted_classes : (p->trusted_classes | p->untrusted_classes);
    if (site->quarantined || (owner && owner->quarantined)) {
        out->why = VERIFY_WHY_QUARANTINED;
        return OP_EPERM;
    }
    /* A class in neither set is treated as untrusted: the safe reading of a gap. */
    int trusted_site = (site_class & p->trusted_classes) && !(site_class & p->untrusted_classes);
    if (trusted_site) {
        out->why = VERIFY_WHY_TRUSTED_CLASS;
        return OP_OK;
    }
    const verify_kind_rule *rule = kind_rule(p, kind);
    if (rule && rule->trusted_only) {
        out->why = VERIFY_WHY_KIND_TRUSTED_ONLY;
        return OP_EPERM;
    }
    /* never checked: whether it could be compared does not matter (the operator's call) */
    if (rule && rule->replicas == 1) {
        out->why = VERIFY_WHY_KIND_UNVERIFIED;
        return OP_OK;
    }
    if (!deterministic) {
        out->why = VERIFY_WHY_NONDETERMINISTIC;
        return OP_EPERM;
    }
    if (rule && rule->replicas >= 2) {
        out->replicas = clamp_replicas(p, rule->replicas);
        out->why = VERIFY_WHY_KIND_FIXED;
        out->check_probability = 1.0;
        return OP_OK;
    }
    plan_adaptive(p, site, owner, random, out);
    return OP_OK;
}

int verify_owner_taken(const char *const *owners, size_t n, const char *owner_id)
{
    if (!owners || !owner_id) return 0;
    for (size_t i = 0; i < n; i++)
        if (owners[i] && strcmp(owners[i], owner_id) == 0) return 1;
    return 0;
}

/* 1 if an earlier result came from the same site or owner (it does not count again). */
static int repeats_earlier(const verify_result *r, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(r[j].site_id, r[i].site_id) == 0 || strcmp(r[j].owner_id, r[i].owner_id) == 0)
            return 1;
    return 0;
}

/*
 * The leading hash: the trusted results' if any (they settle alone unless
 * they disagree), else the one backed by the most distinct owners.
 */
static void leading_hash(const verify_result *r, size_t n, int *lead, uint32_t *votes,
                         int *trusted_settles)
{
    *lead = -1;
    *votes = 0;
    *trusted_settles = 0;
    int trusted_conflict = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r[i].trusted) continue;
        if (*lead < 0)
            *lead = (int)i;
        else if (strcmp(r[*lead].hash, r[i].hash) != 0)
            trusted_conflict = 1;
    }
    if (*lead >= 0 && !trusted_conflict) {
        *trusted_settles = 1;
        *votes = 1;
        return;
    }
    *lead = -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = 0;
        for (size_t j = 0; j < n; j++)
            if (strcmp(r[i].hash, r[j].hash) == 0 && !repeats_earlier(r, j)) v++;
        if (v > *votes) {
            *votes = v;
            *lead = (int)i;
        }
    }
}

int verify_decide(const verify_params *p, const verify_result *results, size_t n, uint32_t wanted,
                  verify_outcome *out)
{
    if (!p || !results || !out || n == 0 || n > VERIFY_MAX_RESULTS || wanted == 0) return OP_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!results[i].site_id || !results[i].owner_id || !results[i].hash) return OP_EINVAL;
    memset(out, 0, sizeof *out);
    out->winner = -1;
    int lead, trusted_settles;
    uint32_t votes;
    leading_hash(results, n, &lead, &votes, &trusted_settles);
    out->agreeing = votes;
    /* a kind ruled to N replicas wants N agreeing results, never fewer than the quorum */
    uint32_t quorum = wanted == 1 ? 1 : clamp_replicas(p, p->quorum > wanted ? p->quorum : wanted);
    if (trusted_settles || votes >= quorum) {
        out->state = VERIFY_ACCEPT;
        out->winner = lead;
        for (size_t i = 0; i < n; i++) {
            out->mismatched[i] = strcmp(results[i].hash, results[lead].hash) != 0;
            out->n_mismatched += out->mismatched[i];
        }
        return OP_OK;
    }
    if (n >= clamp_replicas(p, p->max_replicas)) {
        out->state = VERIFY_GIVE_UP;
        return OP_OK;
    }
    out->state = VERIFY_NEED_MORE;
    out->more = quorum - votes;
    if (n + out->more > clamp_replicas(p, p->max_replicas))
        out->more = clamp_replicas(p, p->max_replicas) - (uint32_t)n;
    return OP_OK;
}

int verify_update_trust(const verify_params *p, verify_trust *t, int outcome, int64_t now_ms)
{
    if (!p || !t) return OP_EINVAL;
    if (outcome == VERIFY_VALID) {
        if (t->consecutive_valid < UINT32_MAX) t->consecutive_valid++;
        if (t->total_valid < UINT32_MAX) t->total_valid++;
        return 0;
    }
    if (outcome != VERIFY_MISMATCH) return OP_EINVAL;
    t->consecutive_valid = 0;
    if (t->mismatches < UINT32_MAX) t->mismatches++;
    t->last_mismatch_ms = now_ms;
    if (!t->quarantined && p->quarantine_after && t->mismatches >= p->quarantine_after) {
        t->quarantined = 1;
        return 1;
    }
    return 0;
}

void verify_taint(verify_trust *t)
{
    if (t) t->consecutive_valid = 0;
}
