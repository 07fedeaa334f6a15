/*
 * sim_verify: the simulation behind `outpost sim --verify` (pure: no I/O,
 * no clocks). A synthetic fleet of parked cars runs deterministic jobs; some
 * cars lie. Four verification rules face the same world (the same cars,
 * liars, owners and plug-in hours) in one run:
 *
 *   none    every result accepted alone
 *   2-of-2  every job replicated on two owners, a quorum of two
 *   boinc   BOINC's adaptive replication: a host is trusted after 10
 *           consecutive validated results, then replicated with
 *           probability 1/CV; a mismatch zeroes CV (no quarantine)
 *   outpost core/verify with its defaults (verify_plan, verify_decide,
 *           verify_update_trust, verify_taint), the hub's rule
 *
 * Three lying strategies: always; at random (a fraction of its results);
 * behave until trusted, then always lie, where "trusted" is what the rule
 * it faces means by it (none: at once; 2-of-2: never; boinc: CV >= 10;
 * outpost: a validated run of verify_trust_needed), so the attacker adapts
 * to the rule. Liars own several cars each and collude within an owner (its
 * cars forge the same hash); different owners forge different hashes.
 * docs/verification.md gives every choice and the figures.
 */
#ifndef OUTPOST_SIM_VERIFY_H
#define OUTPOST_SIM_VERIFY_H

#include <stddef.h>
#include <stdint.h>

enum { SV_RULE_NONE, SV_RULE_FIXED2, SV_RULE_BOINC, SV_RULE_OUTPOST, SV_RULES };
enum { SV_LIE_ALWAYS, SV_LIE_RANDOM, SV_LIE_AFTER_TRUST, SV_STRATEGIES };
#define SV_MAX_FRACTIONS 4

typedef struct sim_verify_params {
    uint32_t cars;                /* fleet size (10,000) */
    uint32_t days;                /* simulated days (60) */
    double plugged_in;            /* probability a car is plugged in during an hour (0.35) */
    uint32_t cars_per_liar_owner; /* a liar owns this many cars (5); honest owners one */
    double random_lie;            /* the random liar's lie probability per result (0.1) */
    double honest_glitch;         /* an honest car's wrong result per result (1e-5) */
    double liar_fractions[SV_MAX_FRACTIONS]; /* (0.01, 0.10, 0.30) */
    size_t n_fractions;
    uint64_t seed; /* (1): the same seed gives the same table */
    void (*progress)(void *ctx, double fraction, const char *what);
    void *progress_ctx;
} sim_verify_params;

void sim_verify_params_default(sim_verify_params *p);

/* One rule facing one liar fraction and strategy. */
typedef struct sim_verify_cell {
    double liar_fraction;
    int strategy;            /* SV_LIE_* */
    int rule;                /* SV_RULE_* */
    uint64_t jobs;           /* jobs started */
    uint64_t accepted;       /* jobs with an accepted result */
    uint64_t wrong_accepted; /* ...whose accepted result was wrong: a lie or a glitch */
    uint64_t lies_accepted;  /* ...of which a liar's forgery */
    uint64_t given_up;       /* jobs without a quorum after the most replicas */
    uint64_t attempts;       /* results computed (primary and replicas) */
    uint64_t wrong_sent;     /* wrong results computed (lies and glitches) */
    uint32_t liars, liars_quarantined, honest_quarantined;
    double median_quarantine_h;    /* over liar cars, -1 when half or more never are */
    double median_quarantine_jobs; /* results a liar car computed before it, same */
} sim_verify_cell;

/*
 * Wrong results accepted per million accepted (lies and honest glitches),
 * lies alone per million; attempts per accepted result.
 */
double sim_verify_wrong_ppm(const sim_verify_cell *c);
double sim_verify_lies_ppm(const sim_verify_cell *c);
double sim_verify_overhead(const sim_verify_cell *c);

const char *sim_verify_rule_name(int rule);
const char *sim_verify_strategy_name(int strategy);

/* Cells in a run: fractions x strategies x rules, in that order. */
size_t sim_verify_cell_count(const sim_verify_params *p);

/*
 * Runs every cell into cells[0 .. sim_verify_cell_count) (the caller's
 * array). OP_OK, OP_EINVAL (err says which parameter), OP_ENOMEM.
 */
int sim_verify_run(const sim_verify_params *p, sim_verify_cell *cells, size_t n_cells, char *err,
                   size_t err_len);

#endif
