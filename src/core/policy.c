#include "core/policy.h"

#include "base/err.h"
#include "base/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_MAX_RULES 32
#define POLICY_MAX_NAMES 32
#define POLICY_MAX_TOKENS 40
#define POLICY_MAX_TEXT (256 * 1024)

/* Where a verify setting was stated (line 0: not stated, the default holds). */
typedef struct where {
    int line, col;
} where;

typedef struct name_list {
    char names[POLICY_MAX_NAMES][64];
    int n;
    int any; /* "*" */
} name_list;

struct policy {
    int version;
    char hash[65];
    unsigned local_kinds; /* "local": kinds this site runs when submitted on it */
    int local_line;
    struct {
        unsigned classes; /* bit per DATA_* whose questions may leave the site */
        char model[64];   /* the larger model named, "" for the owner's pooled model */
        int line;
    } escalate;
    struct {
        unsigned kinds; /* bit per JOB_KIND_* */
        name_list ops;
        int line;
    } submit[POLICY_MAX_RULES];
    int n_submit;
    struct {
        name_list ops;
        int role; /* POLICY_ROLE_* */
        int line;
    } api[POLICY_MAX_RULES];
    int n_api;
    struct {
        int set;
        unsigned classes;
        int origin_only;
        int line;
    } data[3];
    struct {
        int kind;
        unsigned classes;
        int start_min, end_min;
        int line;
    } window[POLICY_MAX_RULES];
    int n_window;
    struct {
        unsigned class_bit; /* 0 when it names a site */
        char site[64];
        double watts;
        int line;
    } power[POLICY_MAX_RULES];
    int n_power;
    struct {
        int kind;
        int min_cores;
        int line;
    } approve[POLICY_MAX_RULES];
    int n_approve;
    struct {
        int set;
        name_list programs;
        int line;
    } commands[3];
    struct {
        verify_params params; /* verify_params_default, then the verify lines */
        where untrusted, checks, quorum, trust_after, quarantine_after, max_replicas, spot_check;
        where kind[VERIFY_MAX_KINDS]; /* where params.kinds[i] was ruled (col: its value) */
    } verify;
};

typedef struct token {
    char text[128];
    int col;
} token;

typedef struct parser {
    const char *name;
    int line;
    char *err;
    size_t err_len;
} parser;

static int fail(parser *ps, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *ps, int col, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->err_len, "%s:%d:%d: %s", ps->name, ps->line, col, what);
    return OP_EINVAL;
}

static int kind_of(const char *s)
{
    return jobspec_kind_of(s);
}

static int data_class_of(const char *s)
{
    if (strcmp(s, "public") == 0) return DATA_PUBLIC;
    if (strcmp(s, "confidential") == 0) return DATA_CONFIDENTIAL;
    if (strcmp(s, "site-private") == 0) return DATA_SITE_PRIVATE;
    return -1;
}

static int class_index(unsigned bit)
{
    return bit == CLASS_POD ? 0 : bit == CLASS_CAR ? 1 : 2;
}

/* Splits a comma list in one token into names. */
static int split_names(parser *ps, const token *t, name_list *out)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", t->text);
    for (char *save = NULL, *n = strtok_r(buf, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
        if (strcmp(n, "*") == 0) {
            out->any = 1;
            continue;
        }
        if (!util_valid_id(n)) return fail(ps, t->col, "'%s' is not a valid name", n);
        if (out->n == POLICY_MAX_NAMES)
            return fail(ps, t->col, "more than %d names", POLICY_MAX_NAMES);
        snprintf(out->names[out->n++], 64, "%s", n);
    }
    return OP_OK;
}

static int parse_classes(parser *ps, const token *tok, int from, int n, unsigned *mask)
{
    *mask = 0;
    for (int i = from; i < n; i++) {
        unsigned bit = jobspec_class_bit(tok[i].text);
        if (!bit)
            return fail(ps, tok[i].col, "unknown site class '%s' (pod, car, dc)", tok[i].text);
        *mask |= bit;
    }
    if (!*mask) return fail(ps, tok[n > 0 ? n - 1 : 0].col, "expected site classes");
    return OP_OK;
}

static int parse_hhmm(const char *s, int *minutes)
{
    int h, m;
    char extra;
    if (sscanf(s, "%2d:%2d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        return OP_EINVAL;
    *minutes = h * 60 + m;
    return OP_OK;
}

/* A comma list of job kinds in one token, as bits (1 << JOB_KIND_*). */
static int parse_kinds(parser *ps, const token *t, unsigned *kinds)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", t->text);
    for (char *save = NULL, *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        int kind = kind_of(k);
        if (!kind) return fail(ps, t->col, "unknown job kind '%s' (exec, noop, route)", k);
        *kinds |= 1u << kind;
    }
    return OP_OK;
}

/* version N */
static int stmt_version(policy *p, parser *ps, const token *tok, int n)
{
    int64_t v;
    if (n != 2 || util_parse_i64(tok[1].text, 1, 1000000000, &v) != OP_OK)
        return fail(ps, n > 1 ? tok[1].col : tok[0].col, "version needs a positive integer");
    if (p->version) return fail(ps, tok[0].col, "version given twice");
    p->version = (int)v;
    return OP_OK;
}

/* submit KIND[,KIND] by OP[,OP]|* */
static int stmt_submit(policy *p, parser *ps, const token *tok, int n)
{
    if (n != 4 || strcmp(tok[2].text, "by") != 0)
        return fail(ps, n > 2 ? tok[2].col : tok[0].col, "expected 'submit KIND by OPERATORS'");
    if (p->n_submit == POLICY_MAX_RULES) return fail(ps, tok[0].col, "too many submit rules");
    unsigned kinds = 0;
    int rc = parse_kinds(ps, &tok[1], &kinds);
    if (rc != OP_OK) return rc;
    p->submit[p->n_submit].kinds = kinds;
    p->submit[p->n_submit].line = ps->line;
    rc = split_names(ps, &tok[3], &p->submit[p->n_submit].ops);
    if (rc == OP_OK) p->n_submit++;
    return rc;
}

/* local KIND[,KIND] */
static int stmt_local(policy *p, parser *ps, const token *tok, int n)
{
    if (n != 2) return fail(ps, tok[0].col, "expected 'local KIND[,KIND]'");
    if (p->local_line)
        return fail(ps, tok[0].col, "local already ruled on line %d: contradictory", p->local_line);
    int rc = parse_kinds(ps, &tok[1], &p->local_kinds);
    if (rc != OP_OK) return rc;
    p->local_line = ps->line;
    return OP_OK;
}

/* The line of an earlier api statement naming op ("*" for any), or 0. */
static int api_named(const policy *p, const char *op)
{
    for (int i = 0; i < p->n_api; i++) {
        if (strcmp(op, "*") == 0 && p->api[i].ops.any) return p->api[i].line;
        for (int k = 0; k < p->api[i].ops.n; k++)
            if (strcmp(p->api[i].ops.names[k], op) == 0) return p->api[i].line;
    }
    return 0;
}

/*
 * api OPERATORS none|viewer|operator|admin: the most an operator's HTTP API
 * tokens may do, whatever role they were created with. Once any api line
 * exists, operators it does not name (nor '*') have no API access.
 */
static int stmt_api(policy *p, parser *ps, const token *tok, int n)
{
    static const char *const roles[] = {"none", "viewer", "operator", "admin"};
    if (n != 3) return fail(ps, tok[0].col, "expected 'api OPERATORS none|viewer|operator|admin'");
    if (p->n_api == POLICY_MAX_RULES) return fail(ps, tok[0].col, "too many api rules");
    int role = -1;
    for (int r = 0; r < 4; r++)
        if (strcmp(tok[2].text, roles[r]) == 0) role = r;
    if (role < 0)
        return fail(ps, tok[2].col, "unknown role '%s' (none, viewer, operator, admin)",
                    tok[2].text);
    name_list ops = {0};
    int rc = split_names(ps, &tok[1], &ops);
    if (rc != OP_OK) return rc;
    for (int k = -1; k < ops.n; k++) {
        const char *op = k < 0 ? (ops.any ? "*" : NULL) : ops.names[k];
        int line = op ? api_named(p, op) : 0;
        if (line)
            return fail(ps, tok[1].col,
                        "the API role of '%s' is already ruled on line %d: "
                        "contradictory",
                        op, line);
    }
    p->api[p->n_api].ops = ops;
    p->api[p->n_api].role = role;
    p->api[p->n_api++].line = ps->line;
    return OP_OK;
}

int policy_api_role(const policy *p, const char *op_id)
{
    if (!p || p->n_api == 0) return POLICY_ROLE_ADMIN;
    int any = POLICY_ROLE_NONE;
    for (int i = 0; i < p->n_api; i++) {
        for (int k = 0; op_id && k < p->api[i].ops.n; k++)
            if (strcmp(p->api[i].ops.names[k], op_id) == 0) return p->api[i].role;
        if (p->api[i].ops.any) any = p->api[i].role;
    }
    return any;
}

/* The "to MODEL" of a predict statement: [A-Za-z0-9_-]{1,63}. */
static int model_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') return 0;
    return 1;
}

/*
 * predict escalate off | predict escalate CLASS[,CLASS] [to MODEL]: which
 * questions `outpost predict` may send off the site to a larger model, by
 * the data class of their features. Site-private features never leave.
 */
static int stmt_predict(policy *p, parser *ps, const token *tok, int n)
{
    if (n < 3 || strcmp(tok[1].text, "escalate") != 0 || (n != 3 && n != 5) ||
        (n == 5 && strcmp(tok[3].text, "to") != 0))
        return fail(ps, n > 1 ? tok[1].col : tok[0].col,
                    "expected 'predict escalate off' or 'predict escalate CLASS[,CLASS] [to"
                    " MODEL]'");
    if (p->escalate.line)
        return fail(ps, tok[0].col, "predict escalate already ruled on line %d: contradictory",
                    p->escalate.line);
    if (strcmp(tok[2].text, "off") == 0 && n == 3) {
        p->escalate.line = ps->line;
        return OP_OK;
    }
    name_list classes = {0};
    int rc = split_names(ps, &tok[2], &classes);
    for (int i = 0; rc == OP_OK && i < classes.n; i++) {
        int dc = data_class_of(classes.names[i]);
        if (dc == DATA_SITE_PRIVATE)
            return fail(ps, tok[2].col, "site-private features never leave the site");
        if (dc < 0)
            return fail(ps, tok[2].col, "unknown data class '%s' (public, confidential, or off)",
                        classes.names[i]);
        p->escalate.classes |= 1u << dc;
    }
    if (rc == OP_OK && classes.any)
        return fail(ps, tok[2].col, "name the data classes (public, confidential), not '*'");
    if (rc == OP_OK && n == 5 && !model_name_ok(tok[4].text))
        return fail(ps, tok[4].col, "'%s' is not a model name ([A-Za-z0-9_-], 1 to 63)",
                    tok[4].text);
    if (rc == OP_OK && n == 5)
        snprintf(p->escalate.model, sizeof p->escalate.model, "%.63s", tok[4].text);
    if (rc == OP_OK) p->escalate.line = ps->line;
    return rc;
}

/* data CLASS on SITECLASS... | origin */
static int stmt_data(policy *p, parser *ps, const token *tok, int n)
{
    if (n < 4 || strcmp(tok[2].text, "on") != 0)
        return fail(ps, n > 2 ? tok[2].col : tok[0].col, "expected 'data CLASS on SITECLASS...'");
    int dc = data_class_of(tok[1].text);
    if (dc < 0)
        return fail(ps, tok[1].col, "unknown data class '%s' (public, confidential, site-private)",
                    tok[1].text);
    if (p->data[dc].set)
        return fail(ps, tok[0].col, "data %s already ruled on line %d: contradictory", tok[1].text,
                    p->data[dc].line);
    p->data[dc].set = 1;
    p->data[dc].line = ps->line;
    if (n == 4 && strcmp(tok[3].text, "origin") == 0) {
        p->data[dc].origin_only = 1;
        p->data[dc].classes = CLASS_ALL;
        return OP_OK;
    }
    if (dc == DATA_SITE_PRIVATE)
        return fail(ps, tok[3].col, "site-private data may only run on its 'origin'");
    return parse_classes(ps, tok, 3, n, &p->data[dc].classes);
}

/* window KIND on SITECLASS... HH:MM-HH:MM */
static int stmt_window(policy *p, parser *ps, const token *tok, int n)
{
    if (n < 5 || strcmp(tok[2].text, "on") != 0)
        return fail(ps, n > 2 ? tok[2].col : tok[0].col,
                    "expected 'window KIND on SITECLASS... HH:MM-HH:MM'");
    int kind = kind_of(tok[1].text);
    if (!kind) return fail(ps, tok[1].col, "unknown job kind '%s' (exec, noop)", tok[1].text);
    char range[128];
    snprintf(range, sizeof range, "%s", tok[n - 1].text);
    char *dash = strchr(range, '-');
    int start, end;
    if (!dash) return fail(ps, tok[n - 1].col, "expected HH:MM-HH:MM");
    *dash = '\0';
    if (parse_hhmm(range, &start) != OP_OK || parse_hhmm(dash + 1, &end) != OP_OK || start == end)
        return fail(ps, tok[n - 1].col, "expected HH:MM-HH:MM (UTC, start != end)");
    unsigned classes;
    int rc = parse_classes(ps, tok, 3, n - 1, &classes);
    if (rc != OP_OK) return rc;
    for (int i = 0; i < p->n_window; i++)
        if (p->window[i].kind == kind && (p->window[i].classes & classes))
            return fail(ps, tok[0].col, "window for %s on these classes already set on line %d",
                        tok[1].text, p->window[i].line);
    if (p->n_window == POLICY_MAX_RULES) return fail(ps, tok[0].col, "too many windows");
    p->window[p->n_window].kind = kind;
    p->window[p->n_window].classes = classes;
    p->window[p->n_window].start_min = start;
    p->window[p->n_window].end_min = end;
    p->window[p->n_window].line = ps->line;
    p->n_window++;
    return OP_OK;
}

/* power SITECLASS WATTS | power site ID WATTS */
static int stmt_power(policy *p, parser *ps, const token *tok, int n)
{
    double watts;
    if (n != 3 && !(n == 4 && strcmp(tok[1].text, "site") == 0))
        return fail(ps, tok[0].col, "expected 'power SITECLASS WATTS' or 'power site ID WATTS'");
    if (util_parse_double(tok[n - 1].text, &watts) != OP_OK || watts < 0)
        return fail(ps, tok[n - 1].col, "watts must be a number >= 0");
    if (p->n_power == POLICY_MAX_RULES) return fail(ps, tok[0].col, "too many power limits");
    unsigned bit = 0;
    const char *site = "";
    if (n == 4) {
        if (!util_valid_id(tok[2].text)) return fail(ps, tok[2].col, "not a site id");
        site = tok[2].text;
    } else if (!(bit = jobspec_class_bit(tok[1].text))) {
        return fail(ps, tok[1].col, "unknown site class '%s' (pod, car, dc)", tok[1].text);
    }
    for (int i = 0; i < p->n_power; i++)
        if (p->power[i].class_bit == bit && strcmp(p->power[i].site, site) == 0)
            return fail(ps, tok[0].col, "power limit already set on line %d: contradictory",
                        p->power[i].line);
    p->power[p->n_power].class_bit = bit;
    snprintf(p->power[p->n_power].site, 64, "%.63s", site);
    p->power[p->n_power].watts = watts;
    p->power[p->n_power].line = ps->line;
    p->n_power++;
    return OP_OK;
}

/* approve KIND [cores>=N] */
static int stmt_approve(policy *p, parser *ps, const token *tok, int n)
{
    int kind = n >= 2 ? kind_of(tok[1].text) : 0;
    if (!kind) return fail(ps, n >= 2 ? tok[1].col : tok[0].col, "expected 'approve KIND'");
    int64_t min_cores = 0;
    if (n == 3) {
        if (strncmp(tok[2].text, "cores>=", 7) != 0 ||
            util_parse_i64(tok[2].text + 7, 1, JOBSPEC_MAX_CORES, &min_cores) != OP_OK)
            return fail(ps, tok[2].col, "expected cores>=N");
    } else if (n > 3) {
        return fail(ps, tok[3].col, "unexpected '%s'", tok[3].text);
    }
    if (p->n_approve == POLICY_MAX_RULES) return fail(ps, tok[0].col, "too many approvals");
    p->approve[p->n_approve].kind = kind;
    p->approve[p->n_approve].min_cores = (int)min_cores;
    p->approve[p->n_approve].line = ps->line;
    p->n_approve++;
    return OP_OK;
}

/* commands SITECLASS PROGRAM... */
static int stmt_commands(policy *p, parser *ps, const token *tok, int n)
{
    unsigned bit = n >= 3 ? jobspec_class_bit(tok[1].text) : 0;
    if (!bit)
        return fail(ps, n >= 2 ? tok[1].col : tok[0].col,
                    "expected 'commands SITECLASS PROGRAM...'");
    int ci = class_index(bit);
    if (p->commands[ci].set)
        return fail(ps, tok[0].col, "commands for %s already listed on line %d", tok[1].text,
                    p->commands[ci].line);
    p->commands[ci].set = 1;
    p->commands[ci].line = ps->line;
    name_list *programs = &p->commands[ci].programs;
    for (int i = 2; i < n; i++) {
        if (programs->n == POLICY_MAX_NAMES)
            return fail(ps, tok[i].col, "more than %d programs", POLICY_MAX_NAMES);
        if (strchr(tok[i].text, '/')) return fail(ps, tok[i].col, "a program name, not a path");
        snprintf(programs->names[programs->n++], 64, "%.63s", tok[i].text);
    }
    return OP_OK;
}

/* The settings a verify line may name, for messages. */
#define VERIFY_SETTINGS                                                                            \
    "untrusted, checks, quorum, trust-after, quarantine-after, max-replicas, spot-check, or a "    \
    "job kind: exec, noop, route"

/* "line N" when the setting was stated, "the default" when not. */
static const char *stated(const where *w, char *buf, size_t len)
{
    if (!w->line) return "the default";
    snprintf(buf, len, "line %d", w->line);
    return buf;
}

/* verify untrusted SITECLASS...: the rest of the classes become the trusted ones. */
static int verify_untrusted(policy *p, parser *ps, const token *tok, int n)
{
    if (p->verify.untrusted.line)
        return fail(ps, tok[0].col, "verify untrusted already ruled on line %d: contradictory",
                    p->verify.untrusted.line);
    unsigned classes;
    int rc = parse_classes(ps, tok, 2, n, &classes);
    if (rc != OP_OK) return rc;
    p->verify.params.untrusted_classes = classes;
    p->verify.params.trusted_classes = CLASS_ALL & ~classes;
    p->verify.untrusted = (where){ps->line, tok[0].col};
    return OP_OK;
}

/* verify checks on trusted|any */
static int verify_checks(policy *p, parser *ps, const token *tok, int n)
{
    int on_trusted = n == 4 && strcmp(tok[3].text, "trusted") == 0;
    if (n != 4 || strcmp(tok[2].text, "on") != 0 ||
        (!on_trusted && strcmp(tok[3].text, "any") != 0))
        return fail(ps, n > 2 ? tok[2].col : tok[1].col,
                    "expected 'verify checks on trusted' or 'verify checks on any'");
    if (p->verify.checks.line)
        return fail(ps, tok[0].col, "verify checks already ruled on line %d: contradictory",
                    p->verify.checks.line);
    p->verify.params.reexec_on_trusted = on_trusted;
    p->verify.checks = (where){ps->line, tok[3].col};
    return OP_OK;
}

/* verify spot-check P */
static int verify_spot_check(policy *p, parser *ps, const token *tok, int n)
{
    double prob;
    if (n != 3) return fail(ps, tok[0].col, "expected 'verify spot-check P' (0 < P <= 1)");
    if (util_parse_double(tok[2].text, &prob) != OP_OK || !(prob > 0) || prob > 1)
        return fail(ps, tok[2].col, "spot-check needs a probability P, 0 < P <= 1 (e.g. 0.02)");
    if (p->verify.spot_check.line)
        return fail(ps, tok[0].col, "verify spot-check already set on line %d: contradictory",
                    p->verify.spot_check.line);
    p->verify.params.spot_check_floor = prob;
    p->verify.spot_check = (where){ps->line, tok[2].col};
    return OP_OK;
}

/* verify quorum|trust-after|quarantine-after|max-replicas N */
static int verify_number(policy *p, parser *ps, const token *tok, int n)
{
    struct {
        const char *name;
        uint32_t *field;
        where *at;
        int64_t min, max;
    } settings[] = {
        {"quorum", &p->verify.params.quorum, &p->verify.quorum, 2, VERIFY_MAX_RESULTS},
        {"trust-after", &p->verify.params.trust_after, &p->verify.trust_after, 1, 1000},
        {"quarantine-after", &p->verify.params.quarantine_after, &p->verify.quarantine_after, 1,
         100},
        {"max-replicas", &p->verify.params.max_replicas, &p->verify.max_replicas, 2,
         VERIFY_MAX_RESULTS},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (strcmp(tok[1].text, settings[i].name) != 0) continue;
        int64_t v;
        if (n != 3) return fail(ps, tok[0].col, "expected 'verify %s N'", settings[i].name);
        if (util_parse_i64(tok[2].text, settings[i].min, settings[i].max, &v) != OP_OK)
            return fail(ps, tok[2].col, "verify %s needs an integer from %lld to %lld",
                        settings[i].name, (long long)settings[i].min, (long long)settings[i].max);
        if (settings[i].at->line)
            return fail(ps, tok[0].col, "verify %s already set on line %d: contradictory",
                        settings[i].name, settings[i].at->line);
        *settings[i].field = (uint32_t)v;
        *settings[i].at = (where){ps->line, tok[2].col};
        return OP_OK;
    }
    return fail(ps, tok[1].col, "unknown verify setting '%.40s' (" VERIFY_SETTINGS ")",
                tok[1].text);
}

/* verify KIND replicas N | adaptive | trusted-only: one rule per kind. */
static int verify_kind(policy *p, parser *ps, const token *tok, int n, int kind)
{
    verify_kind_rule rule = {kind, 0, 0};
    const char *how = tok[2].text;
    int64_t replicas = 0;
    if (strcmp(how, "replicas") == 0) {
        if (n != 4 || util_parse_i64(tok[3].text, 1, VERIFY_MAX_RESULTS, &replicas) != OP_OK)
            return fail(ps, n > 3 ? tok[3].col : tok[2].col,
                        "replicas needs N from 1 (never checked) to %d", VERIFY_MAX_RESULTS);
        rule.replicas = (uint32_t)replicas;
    } else if (strcmp(how, "trusted-only") == 0 && n == 3) {
        rule.trusted_only = 1;
    } else if (strcmp(how, "adaptive") != 0 || n != 3) {
        return fail(ps, tok[2].col,
                    "expected 'verify %s replicas N', 'verify %s adaptive' or "
                    "'verify %s trusted-only'",
                    tok[1].text, tok[1].text, tok[1].text);
    }
    verify_params *vp = &p->verify.params;
    for (size_t i = 0; i < vp->n_kinds; i++) {
        if (vp->kinds[i].kind != kind) continue;
        if (p->verify.kind[i].line == 0) { /* a built-in default (noop): the policy overrides it */
            p->verify.kind[i] = (where){ps->line, tok[n - 1].col};
            vp->kinds[i] = rule;
            return OP_OK;
        }
        return fail(ps, tok[0].col, "verify %s already ruled on line %d: contradictory",
                    tok[1].text, p->verify.kind[i].line);
    }
    if (vp->n_kinds == VERIFY_MAX_KINDS)
        return fail(ps, tok[0].col, "more than %d verify kind rules", VERIFY_MAX_KINDS);
    p->verify.kind[vp->n_kinds] = (where){ps->line, tok[n - 1].col};
    vp->kinds[vp->n_kinds++] = rule;
    return OP_OK;
}

/* verify ...: the first word after "verify" says which rule. */
static int stmt_verify(policy *p, parser *ps, const token *tok, int n)
{
    if (n < 3)
        return fail(ps, n > 1 ? tok[1].col : tok[0].col,
                    "expected 'verify SETTING VALUE' (" VERIFY_SETTINGS ")");
    const char *what = tok[1].text;
    if (strcmp(what, "untrusted") == 0) return verify_untrusted(p, ps, tok, n);
    if (strcmp(what, "checks") == 0) return verify_checks(p, ps, tok, n);
    if (strcmp(what, "spot-check") == 0) return verify_spot_check(p, ps, tok, n);
    int kind = kind_of(what);
    if (kind) return verify_kind(p, ps, tok, n, kind);
    return verify_number(p, ps, tok, n);
}

/*
 * Rules that only contradict each other once the whole file is read (the
 * order of lines does not matter): the quorum must fit in max-replicas, a
 * kind's fixed replicas between the two, and checks on trusted classes or a
 * trusted-only kind need a trusted class to exist.
 */
static int verify_finish(policy *p, parser *ps)
{
    const verify_params *vp = &p->verify.params;
    char a[32], b[32];
    if (vp->quorum > vp->max_replicas) {
        const where *at = p->verify.max_replicas.line ? &p->verify.max_replicas : &p->verify.quorum;
        ps->line = at->line;
        return fail(ps, at->col,
                    "quorum %u (%s) exceeds max-replicas %u (%s): no job could reach it",
                    vp->quorum, stated(&p->verify.quorum, a, sizeof a), vp->max_replicas,
                    stated(&p->verify.max_replicas, b, sizeof b));
    }
    for (size_t i = 0; i < vp->n_kinds; i++) {
        uint32_t r = vp->kinds[i].replicas;
        const char *kind = jobspec_kind_name(vp->kinds[i].kind);
        ps->line = p->verify.kind[i].line;
        if (r > vp->max_replicas)
            return fail(ps, p->verify.kind[i].col,
                        "verify %s replicas %u exceeds max-replicas %u (%s): a job gives up "
                        "after %u results",
                        kind, r, vp->max_replicas, stated(&p->verify.max_replicas, a, sizeof a),
                        vp->max_replicas);
        if (r >= 2 && r < vp->quorum)
            return fail(ps, p->verify.kind[i].col,
                        "verify %s replicas %u is below the quorum %u (%s): a job needs %u "
                        "agreeing results anyway",
                        kind, r, vp->quorum, stated(&p->verify.quorum, a, sizeof a), vp->quorum);
        if (vp->kinds[i].trusted_only && !vp->trusted_classes)
            return fail(ps, p->verify.kind[i].col,
                        "verify %s trusted-only, but 'verify untrusted' on line %d leaves no "
                        "trusted class: it could never run",
                        kind, p->verify.untrusted.line);
    }
    if (vp->reexec_on_trusted && !vp->trusted_classes) {
        ps->line = p->verify.checks.line;
        return fail(ps, p->verify.checks.col,
                    "checks on trusted, but 'verify untrusted' on line %d leaves no trusted "
                    "class: contradictory",
                    p->verify.untrusted.line);
    }
    return OP_OK;
}

/* The statements, by their first word. */
static const struct {
    const char *keyword;
    int (*parse)(policy *p, parser *ps, const token *tok, int n);
} statements[] = {
    {"version", stmt_version}, {"submit", stmt_submit},     {"local", stmt_local},
    {"data", stmt_data},       {"window", stmt_window},     {"power", stmt_power},
    {"approve", stmt_approve}, {"commands", stmt_commands}, {"verify", stmt_verify},
    {"predict", stmt_predict}, {"api", stmt_api},
};

static int statement(policy *p, parser *ps, const token *tok, int n)
{
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++)
        if (strcmp(tok[0].text, statements[i].keyword) == 0)
            return statements[i].parse(p, ps, tok, n);
    return fail(ps, tok[0].col,
                "unknown statement '%s' (version, submit, data, window, power, approve, commands,"
                " local, verify, predict, api)",
                tok[0].text);
}

int policy_parse(const char *text, const char *name, policy **out, char *err, size_t err_len)
{
    if (strlen(text) > POLICY_MAX_TEXT) {
        snprintf(err, err_len, "%s: larger than %d bytes", name, POLICY_MAX_TEXT);
        return OP_ETOOBIG;
    }
    policy *p = calloc(1, sizeof *p);
    if (!p) return OP_ENOMEM;
    util_sha256_hex(text, strlen(text), p->hash);
    verify_params_default(&p->verify.params);
    parser ps = {name, 0, err, err_len};
    const char *line = text;
    int rc = OP_OK;
    while (rc == OP_OK && *line) {
        ps.line++;
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        token tok[POLICY_MAX_TOKENS];
        int n = 0;
        size_t i = 0;
        while (i < len && rc == OP_OK) {
            while (i < len && isspace((unsigned char)line[i]))
                i++;
            if (i >= len || line[i] == '#') break;
            size_t start = i;
            while (i < len && !isspace((unsigned char)line[i]) && line[i] != '#')
                i++;
            if (n == POLICY_MAX_TOKENS) {
                rc = fail(&ps, (int)start + 1, "line has too many words");
                break;
            }
            if (i - start >= sizeof tok[n].text) {
                rc = fail(&ps, (int)start + 1, "word too long");
                break;
            }
            memcpy(tok[n].text, line + start, i - start);
            tok[n].text[i - start] = '\0';
            tok[n].col = (int)start + 1;
            n++;
        }
        if (rc == OP_OK && n > 0) rc = statement(p, &ps, tok, n);
        line = end ? end + 1 : line + len;
    }
    if (rc == OP_OK && !p->version) {
        snprintf(err, err_len, "%s:1:1: 'version N' is required", name);
        rc = OP_EINVAL;
    }
    if (rc == OP_OK) rc = verify_finish(p, &ps);
    if (rc != OP_OK) {
        free(p);
        return rc;
    }
    *out = p;
    return OP_OK;
}

void policy_free(policy *p)
{
    free(p);
}

int policy_version(const policy *p)
{
    return p->version;
}

const char *policy_hash(const policy *p)
{
    return p->hash;
}

static int in_list(const name_list *l, const char *name)
{
    if (l->any) return 1;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) return 1;
    return 0;
}

int policy_check_submit(const policy *p, const char *op_id, const jobspec *spec, char *why,
                        size_t why_len)
{
    if (!p || p->n_submit == 0) return OP_OK;
    for (int i = 0; i < p->n_submit; i++)
        if ((p->submit[i].kinds & (1u << spec->kind)) && in_list(&p->submit[i].ops, op_id))
            return OP_OK;
    snprintf(why, why_len, "policy v%d: operator %s may not submit %s jobs", p->version, op_id,
             jobspec_kind_name(spec->kind));
    return OP_EPERM;
}

int policy_check_site(const policy *p, const jobspec *spec, const char *site_id,
                      unsigned site_class, int64_t now_ms, double job_watts, char *why,
                      size_t why_len)
{
    if (!p) return POLICY_ALLOW;
    const char *cls = jobspec_class_name(site_class);
    if (p->data[spec->data_class].set) {
        if (p->data[spec->data_class].origin_only && strcmp(spec->origin, site_id) != 0) {
            snprintf(why, why_len, "policy v%d line %d: %s data runs only on its origin %s",
                     p->version, p->data[spec->data_class].line,
                     jobspec_data_class_name(spec->data_class), spec->origin);
            return POLICY_DENY;
        }
        if (!(p->data[spec->data_class].classes & site_class)) {
            snprintf(why, why_len, "policy v%d line %d: %s data may not run on a %s", p->version,
                     p->data[spec->data_class].line, jobspec_data_class_name(spec->data_class),
                     cls);
            return POLICY_DENY;
        }
    }
    for (int i = 0; i < p->n_power; i++) {
        int applies = p->power[i].class_bit ? p->power[i].class_bit == site_class
                                            : strcmp(p->power[i].site, site_id) == 0;
        if (applies && job_watts > p->power[i].watts) {
            snprintf(why, why_len, "policy v%d line %d: job draws %.0f W, limit %.0f W here",
                     p->version, p->power[i].line, job_watts, p->power[i].watts);
            return POLICY_DENY;
        }
    }
    if (spec->kind == JOB_KIND_EXEC && spec->argc > 0) {
        int ci = class_index(site_class);
        if (p->commands[ci].set && !in_list(&p->commands[ci].programs, spec->argv[0])) {
            snprintf(why, why_len, "policy v%d line %d: '%.60s' may not run on a %s", p->version,
                     p->commands[ci].line, spec->argv[0], cls);
            return POLICY_DENY;
        }
    }
    int minute = (int)((now_ms / 60000) % (24 * 60));
    for (int i = 0; i < p->n_window; i++) {
        if (p->window[i].kind != spec->kind || !(p->window[i].classes & site_class)) continue;
        int s = p->window[i].start_min, e = p->window[i].end_min;
        int inside = s < e ? (minute >= s && minute < e) : (minute >= s || minute < e);
        if (!inside) {
            snprintf(why, why_len,
                     "policy v%d line %d: %s jobs start on a %s only %02d:%02d-%02d:%02d UTC",
                     p->version, p->window[i].line, jobspec_kind_name(spec->kind), cls, s / 60,
                     s % 60, e / 60, e % 60);
            return POLICY_NOT_NOW;
        }
    }
    return POLICY_ALLOW;
}

int policy_needs_approval(const policy *p, const jobspec *spec)
{
    if (!p) return 0;
    for (int i = 0; i < p->n_approve; i++)
        if (p->approve[i].kind == spec->kind && spec->cores >= p->approve[i].min_cores) return 1;
    return 0;
}

int policy_predict_escalates(const policy *p, int data_class, const char **model)
{
    if (model) *model = p && p->escalate.model[0] ? p->escalate.model : NULL;
    if (!p || data_class < 0 || data_class == DATA_SITE_PRIVATE || data_class > DATA_SITE_PRIVATE)
        return 0;
    return (p->escalate.classes & (1u << data_class)) != 0;
}

int policy_allows_local(const policy *p, int kind)
{
    return p && (p->local_kinds & (1u << kind)) != 0;
}

void policy_verify_params(const policy *p, verify_params *out)
{
    if (!out) return;
    if (!p) {
        verify_params_default(out);
        return;
    }
    *out = p->verify.params;
}
