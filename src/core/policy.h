/*
 * policy: the governance rules of a hub or a site (pure, no I/O).
 *
 * A policy file is line-based; '#' starts a comment. Statements:
 *
 *   version N                               required, increases with each change
 *   submit KIND[,KIND] by OP[,OP]|*         who may submit which kinds (exec, noop)
 *   data CLASS on SITECLASS... | origin     where a data class may run
 *                                           (public, confidential, site-private)
 *   window KIND on SITECLASS HH:MM-HH:MM    UTC hours when such jobs may start there
 *   power SITECLASS|site:ID WATTS           the most a job may draw there
 *   approve KIND [cores>=N]                 needs `outpost approve JOB` first
 *   commands SITECLASS PROGRAM...           the programs exec jobs may run there
 *   local KIND[,KIND]                       (a site's own policy) kinds it runs when
 *                                           submitted on the site itself, also offline
 *   verify untrusted SITECLASS...           classes whose results need checking (car);
 *                                           the others are trusted (settle a job alone)
 *   verify KIND replicas N|adaptive|trusted-only
 *                                           N >= 2: always N replicas; 1: never checked;
 *                                           adaptive (the default); trusted classes only
 *   verify checks on trusted|any            where the check replicas run
 *   verify quorum|trust-after|quarantine-after|max-replicas N
 *   verify spot-check P                     floor of the check probability (0 < P <= 1)
 *   predict escalate CLASS[,CLASS] [to M]|off  (a site's own policy) questions that may
 *                                           leave it for a larger model
 *   api OP[,OP]|* none|viewer|operator|admin  the most an operator's HTTP API tokens may do
 *
 * Without a statement for something, it is allowed, except: once any
 * "submit" line exists, kinds and operators not listed may not submit; once
 * any "api" line exists, operators not listed have no HTTP API access; and
 * verification follows verify_params_default unless a verify line says else.
 * Two statements about the same thing are a contradiction and an error.
 * Errors name the file, line and column: "policy:7:12: unknown site class 'boat'".
 * The hub evaluates its policy at submission and placement; a site
 * evaluates its own, which can only refuse more.
 */
#ifndef OUTPOST_POLICY_H
#define OUTPOST_POLICY_H

#include "core/jobspec.h"
#include "core/verify.h"

#include <stddef.h>
#include <stdint.h>

typedef struct policy policy;

/* Parses text (name for messages). OP_EINVAL with "name:line:col: what" in err; OP_ENOMEM. */
int policy_parse(const char *text, const char *name, policy **out, char *err, size_t err_len);
void policy_free(policy *p);

int policy_version(const policy *p);
/* SHA-256 of the policy text, hex (what the audit log records). */
const char *policy_hash(const policy *p);

/* May operator op_id submit this job? OP_OK or OP_EPERM with the rule in why. */
int policy_check_submit(const policy *p, const char *op_id, const jobspec *spec, char *why,
                        size_t why_len);

enum { POLICY_ALLOW = 1, POLICY_DENY = 0, POLICY_NOT_NOW = -1 };

/*
 * May this job run on this site now (UTC ms)? POLICY_ALLOW, POLICY_DENY
 * (never: class, data class, power, command) or POLICY_NOT_NOW (outside a
 * time window), with the rule in why. job_watts: the job's draw there.
 */
int policy_check_site(const policy *p, const jobspec *spec, const char *site_id,
                      unsigned site_class, int64_t now_ms, double job_watts, char *why,
                      size_t why_len);

/*
 * 1 if a site under this policy may send a prediction question whose
 * features are of data_class off the site, to a larger model (`predict
 * escalate CLASS[,CLASS] [to MODEL]`); never for site-private features, and
 * not without the statement. *model (may be NULL) gets the model the policy
 * names, or NULL for the owner's pooled model.
 */
int policy_predict_escalates(const policy *p, int data_class, const char **model);

enum { POLICY_ROLE_NONE, POLICY_ROLE_VIEWER, POLICY_ROLE_OPERATOR, POLICY_ROLE_ADMIN };

/*
 * The most op_id's HTTP API tokens may do under this policy (`api OPERATORS
 * ROLE`): POLICY_ROLE_*. Without any api statement, POLICY_ROLE_ADMIN (a
 * token's own role rules); with some, an operator not named and no '*'
 * line gets POLICY_ROLE_NONE.
 */
int policy_api_role(const policy *p, const char *op_id);

/* 1 if a site under this policy runs jobs of this kind submitted locally (`local`). */
int policy_allows_local(const policy *p, int kind);

/* 1 if the job needs an operator's approval before placement. */
int policy_needs_approval(const policy *p, const jobspec *spec);

/*
 * The verification rules of the policy over verify_params_default's values
 * (p may be NULL: the defaults). out is the caller's and is filled whole;
 * the values were checked at parse time (quorum <= max-replicas, each kind's
 * replicas within them, kinds[] within VERIFY_MAX_KINDS).
 */
void policy_verify_params(const policy *p, verify_params *out);

#endif
