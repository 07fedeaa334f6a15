/*
 * verify: how far the hub trusts a result from a site it does not own
 * (pure: no I/O, no clocks; the caller passes the time and the randomness).
 *
 * It owns three decisions and the per-site trust record they share:
 *
 *   verify_plan          how many results a job needs before one is accepted
 *                        (1: the site's alone), whether the extra ones run on
 *                        the operator's trusted classes, or a refusal
 *   verify_decide        given the output hashes reported so far, whether
 *                        there is a quorum, which hash wins, who mismatched,
 *                        how many more replicas are needed
 *   verify_update_trust  a validated result grows trust; a mismatch resets it
 *                        and, repeated, quarantines the site (or its owner)
 *
 * The rule is BOINC's adaptive replication (a site is trusted after
 * trust_after consecutive validated results, then checked with probability
 * 1/consecutive) with four changes that the simulation in sim/sim_verify
 * measured (docs/verification.md): the check probability never falls below
 * a floor; k mismatches quarantine the site for good (BOINC only resets its
 * count, so a liar can cycle forever); a mismatch doubles the validated run
 * needed before the site is trusted again and raises its check probability;
 * and all of this applies to the owner too, so a liar's other cars lose
 * their trust with the one that was caught (verify_taint).
 *
 * Results from untrusted classes count only with a quorum of agreeing hashes
 * from distinct owners; a result from a trusted class settles a job alone.
 * Non-deterministic kinds cannot be compared, so they run on trusted classes
 * only.
 */
#ifndef OUTPOST_VERIFY_H
#define OUTPOST_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define VERIFY_MAX_RESULTS 8 /* replicas of one job at most, whatever the parameters say */
#define VERIFY_MAX_KINDS 8   /* per-kind overrides */

/*
 * What the hub persists per site (and per owner: the same record, updated
 * with every mismatch of any of its sites). Plain integers, no pointers, so
 * it stores as five columns.
 */
typedef struct verify_trust {
    uint32_t consecutive_valid; /* validated results since the last mismatch or taint */
    uint32_t total_valid;       /* validated results over its life */
    uint32_t mismatches;        /* results that disagreed with the accepted one, over its life */
    uint32_t quarantined;       /* 1: no work, until an operator clears it */
    int64_t last_mismatch_ms;   /* UTC ms of the last mismatch; 0: never */
} verify_trust;

/* A per-kind override of the adaptive rule (policy). */
typedef struct verify_kind_rule {
    int kind;          /* JOB_KIND_* */
    uint32_t replicas; /* 0: adaptive; 1: never verified; N >= 2: always N agreeing results */
    int trusted_only;  /* 1: this kind runs on trusted classes only */
} verify_kind_rule;

/*
 * The fleet's verification policy and thresholds. verify_params_default
 * gives the values the simulation justified; every field is documented
 * with its default.
 */
typedef struct verify_params {
    unsigned untrusted_classes; /* CLASS_* bits whose results need checking (CLASS_CAR) */
    unsigned trusted_classes;   /* the operator's own sites (CLASS_POD | CLASS_DC) */
    uint32_t trust_after;       /* validated run before unreplicated results (10, as BOINC) */
    double spot_check_floor;    /* a trusted site is checked at least this often (0.02) */
    double spot_check_tainted;  /* ...and this often once it or its owner mismatched (0.5) */
    uint32_t quarantine_after;  /* mismatches that quarantine a site or an owner (2) */
    uint32_t quorum;            /* agreeing results from distinct owners (2) */
    uint32_t max_replicas;      /* results collected before giving up on a job (5) */
    int reexec_on_trusted;      /* 1: checks run on trusted classes (cheaper there) (0) */
    verify_kind_rule kinds[VERIFY_MAX_KINDS];
    size_t n_kinds;
} verify_params;

void verify_params_default(verify_params *p);

/* Why a plan came out as it did (for the audit log and `outpost explain`). */
enum {
    VERIFY_WHY_TRUSTED_CLASS = 1, /* the site is the operator's own: one result */
    VERIFY_WHY_KIND_UNVERIFIED,   /* a kind rule says never verified */
    VERIFY_WHY_KIND_FIXED,        /* a kind rule fixes the replicas */
    VERIFY_WHY_NEW_SITE,          /* not yet trust_after validated results in a row */
    VERIFY_WHY_SPOT_CHECK,        /* trusted, and drawn for a check */
    VERIFY_WHY_TAINTED_CHECK,     /* trusted again after a mismatch, and drawn for a check */
    VERIFY_WHY_TRUSTED,           /* trusted, not drawn: its result alone */
    VERIFY_WHY_NONDETERMINISTIC,  /* refused: cannot be compared, trusted classes only */
    VERIFY_WHY_KIND_TRUSTED_ONLY, /* refused: a kind rule keeps it on trusted classes */
    VERIFY_WHY_QUARANTINED,       /* refused: the site or its owner is quarantined */
};

/* One line of text for a VERIFY_WHY_* ("refused: non-deterministic kind ..."); never NULL. */
const char *verify_why_text(int why);

typedef struct verify_plan_out {
    uint32_t replicas;        /* results to collect, this site's included (1: its alone) */
    unsigned check_class;     /* CLASS_* bits where the other replicas may run */
    int why;                  /* VERIFY_WHY_* */
    double check_probability; /* the probability drawn against (spot checks), else 0 or 1 */
} verify_plan_out;

/*
 * Plans a job of this kind on a site of class site_class (one CLASS_* bit)
 * with its trust record and its owner's (owner may be NULL: no owner
 * record). random: a uniform 64-bit value from the caller's generator (the
 * spot-check draw). OP_OK with *out filled, or OP_EPERM with out->why
 * saying why the job may not run there (non-deterministic or trusted-only
 * kind on an untrusted class, quarantined site or owner); OP_EINVAL on a
 * NULL argument or a site_class that is not one class.
 */
int verify_plan(const verify_params *p, int kind, int deterministic, unsigned site_class,
                const verify_trust *site, const verify_trust *owner, uint64_t random,
                verify_plan_out *out);

/* The validated run a site needs before its results go unreplicated (grows with mismatches). */
uint32_t verify_trust_needed(const verify_params *p, const verify_trust *site,
                             const verify_trust *owner);

/* One reported result of a job. The strings belong to the caller. */
typedef struct verify_result {
    const char *site_id;
    const char *owner_id;
    const char *hash; /* the output hash, compared as a string */
    int trusted;      /* 1: from a trusted class (settles the job alone) */
} verify_result;

enum {
    VERIFY_ACCEPT = 1, /* a winner: out->winner */
    VERIFY_NEED_MORE,  /* run out->more further replicas (on other owners) */
    VERIFY_GIVE_UP,    /* max_replicas reached without a quorum: fail the job, re-run later */
};

typedef struct verify_outcome {
    int state;         /* VERIFY_ACCEPT, VERIFY_NEED_MORE or VERIFY_GIVE_UP */
    int winner;        /* index of a result with the accepted hash; -1 without one */
    uint32_t agreeing; /* distinct owners behind the leading hash */
    uint32_t more;     /* VERIFY_NEED_MORE: replicas still needed */
    uint8_t mismatched[VERIFY_MAX_RESULTS]; /* per result: 1 if it disagrees with the winner */
    uint32_t n_mismatched;
} verify_outcome;

/*
 * Decides a job from its n results (n <= VERIFY_MAX_RESULTS) when it was
 * planned for `wanted` results (verify_plan_out.replicas). With wanted 1
 * and one result, that result is accepted (an unchecked trusted site).
 * Otherwise a trusted result wins alone (two trusted results that disagree
 * need another); without one, a hash wins when `quorum` distinct owners
 * report it (or `wanted` owners, when a kind rule asks for more). A second result from the same
 * site or owner never counts twice. Mismatched results are marked only once there is a winner.
 * OP_OK, OP_EINVAL (NULL, n 0 or too many, wanted 0, a NULL string).
 */
int verify_decide(const verify_params *p, const verify_result *results, size_t n, uint32_t wanted,
                  verify_outcome *out);

/*
 * 1 if owner_id already holds a replica among the n owners given (the
 * placement skips such sites: replicas of one job never share an owner).
 */
int verify_owner_taken(const char *const *owners, size_t n, const char *owner_id);

enum { VERIFY_VALID = 1, VERIFY_MISMATCH = 2 };

/*
 * Records what a checked result turned out to be (an unchecked one changes
 * nothing: it proves nothing). VERIFY_VALID grows consecutive_valid and
 * total_valid; VERIFY_MISMATCH zeroes consecutive_valid, counts the
 * mismatch at now_ms and quarantines at quarantine_after. Apply it to the
 * site and to its owner's record. Returns 1 if this call quarantined it,
 * else 0; OP_EINVAL on a NULL or an unknown outcome.
 */
int verify_update_trust(const verify_params *p, verify_trust *t, int outcome, int64_t now_ms);

/* Another site of the same owner mismatched: this one starts its validated run again. */
void verify_taint(verify_trust *t);

#endif
