/* Unit tests of the policy language (src/core/policy.c): each rule type, the verification rules,
 * defaults, contradictions and malformed files reported with line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/jobspec.h"
#include "core/policy.h"
#include "core/verify.h"
#include "helpers/testkit.h"

#include <stdio.h>
#include <string.h>

/* 2026-11-27 12:00 UTC and 20:00 UTC, in ms. */
#define NOON 1795780800000LL
#define EVENING (NOON + 8 * 3600 * 1000LL)

static const char *sample = "# sample policy\n"
                            "version 3\n"
                            "submit exec,noop by op-aaaaaaaaaaaaaaaa\n"
                            "submit noop by *\n"
                            "data public on pod car dc\n"
                            "data confidential on pod dc   # never on a car\n"
                            "data site-private on origin\n"
                            "window exec on car 18:00-07:00\n"
                            "power car 40\n"
                            "power site dc-small 20\n"
                            "approve exec cores>=4\n"
                            "commands car sha256sum gzip xz\n";

static policy *parse_ok(const char *text)
{
    policy *p = NULL;
    char err[256] = "";
    int rc = policy_parse(text, "test.policy", &p, err, sizeof err);
    if (rc != OP_OK) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, OP_OK);
    return p;
}

static void parse_err(const char *text, const char *expect)
{
    policy *p = NULL;
    char err[256] = "";
    assert_int_equal(policy_parse(text, "test.policy", &p, err, sizeof err), OP_EINVAL);
    testkit_assert_contains(err, expect);
    assert_null(p);
}

static jobspec exec_job(const char *program, int cores, int data_class, const char *origin)
{
    jobspec s;
    memset(&s, 0, sizeof s);
    s.kind = JOB_KIND_EXEC;
    s.argv[0] = (char *)program;
    s.argc = 1;
    s.cores = cores;
    s.data_class = data_class;
    snprintf(s.origin, sizeof s.origin, "%s", origin ? origin : "");
    return s;
}

static void test_version_and_hash(void **state)
{
    (void)state;
    policy *p = parse_ok(sample);
    assert_int_equal(policy_version(p), 3);
    assert_int_equal(strlen(policy_hash(p)), 64);
    policy_free(p);
}

static void test_submit_rules(void **state)
{
    (void)state;
    policy *p = parse_ok(sample);
    char why[256];
    jobspec e = exec_job("gzip", 1, DATA_PUBLIC, NULL), n = e;
    n.kind = JOB_KIND_NOOP;
    assert_int_equal(policy_check_submit(p, "op-aaaaaaaaaaaaaaaa", &e, why, sizeof why), OP_OK);
    assert_int_equal(policy_check_submit(p, "op-bbbbbbbbbbbbbbbb", &e, why, sizeof why), OP_EPERM);
    assert_non_null(strstr(why, "may not submit exec jobs"));
    assert_int_equal(policy_check_submit(p, "op-bbbbbbbbbbbbbbbb", &n, why, sizeof why), OP_OK);
    /* No policy, or no submit lines: everyone may submit. */
    assert_int_equal(policy_check_submit(NULL, "op-x", &e, why, sizeof why), OP_OK);
    policy *open = parse_ok("version 1\npower car 10\n");
    assert_int_equal(policy_check_submit(open, "op-x", &e, why, sizeof why), OP_OK);
    policy_free(open);
    policy_free(p);
}

static void test_data_classes(void **state)
{
    (void)state;
    policy *p = parse_ok(sample);
    char why[256];
    jobspec conf = exec_job("gzip", 1, DATA_CONFIDENTIAL, NULL);
    assert_int_equal(policy_check_site(p, &conf, "car-1", CLASS_CAR, EVENING, 10, why, sizeof why),
                     POLICY_DENY);
    assert_non_null(strstr(why, "confidential data may not run on a car"));
    assert_non_null(strstr(why, "line 6"));
    assert_int_equal(policy_check_site(p, &conf, "dc-1", CLASS_DC, NOON, 10, why, sizeof why),
                     POLICY_ALLOW);
    jobspec priv = exec_job("gzip", 1, DATA_SITE_PRIVATE, "dc-1");
    assert_int_equal(policy_check_site(p, &priv, "dc-2", CLASS_DC, NOON, 10, why, sizeof why),
                     POLICY_DENY);
    assert_non_null(strstr(why, "only on its origin dc-1"));
    assert_int_equal(policy_check_site(p, &priv, "dc-1", CLASS_DC, NOON, 10, why, sizeof why),
                     POLICY_ALLOW);
    policy_free(p);
}

static void test_windows_power_commands(void **state)
{
    (void)state;
    policy *p = parse_ok(sample);
    char why[256];
    jobspec job = exec_job("gzip", 1, DATA_PUBLIC, NULL);
    /* The car window wraps midnight: 18:00-07:00. */
    assert_int_equal(policy_check_site(p, &job, "car-1", CLASS_CAR, NOON, 10, why, sizeof why),
                     POLICY_NOT_NOW);
    assert_non_null(strstr(why, "18:00-07:00"));
    assert_int_equal(policy_check_site(p, &job, "car-1", CLASS_CAR, EVENING, 10, why, sizeof why),
                     POLICY_ALLOW);
    assert_int_equal(policy_check_site(p, &job, "pod-1", CLASS_POD, NOON, 10, why, sizeof why),
                     POLICY_ALLOW);
    /* Power caps per class and per site. */
    assert_int_equal(policy_check_site(p, &job, "car-1", CLASS_CAR, EVENING, 45, why, sizeof why),
                     POLICY_DENY);
    assert_non_null(strstr(why, "45 W, limit 40 W"));
    assert_int_equal(policy_check_site(p, &job, "dc-small", CLASS_DC, NOON, 25, why, sizeof why),
                     POLICY_DENY);
    assert_int_equal(policy_check_site(p, &job, "dc-big", CLASS_DC, NOON, 25, why, sizeof why),
                     POLICY_ALLOW);
    /* Commands on cars only from the list; other classes unrestricted. */
    jobspec curl = exec_job("curl", 1, DATA_PUBLIC, NULL);
    assert_int_equal(policy_check_site(p, &curl, "car-1", CLASS_CAR, EVENING, 10, why, sizeof why),
                     POLICY_DENY);
    assert_non_null(strstr(why, "'curl' may not run on a car"));
    assert_int_equal(policy_check_site(p, &curl, "dc-1", CLASS_DC, NOON, 10, why, sizeof why),
                     POLICY_ALLOW);
    assert_int_equal(policy_check_site(NULL, &curl, "car-1", CLASS_CAR, NOON, 1e9, why, sizeof why),
                     POLICY_ALLOW);
    policy_free(p);
}

static void test_approval(void **state)
{
    (void)state;
    policy *p = parse_ok(sample);
    jobspec small = exec_job("gzip", 2, DATA_PUBLIC, NULL),
            big = exec_job("gzip", 4, DATA_PUBLIC, NULL);
    assert_false(policy_needs_approval(p, &small));
    assert_true(policy_needs_approval(p, &big));
    assert_false(policy_needs_approval(NULL, &big));
    policy_free(p);
    p = parse_ok("version 1\napprove exec\n");
    assert_true(policy_needs_approval(p, &small));
    policy_free(p);
}

static void test_local_kinds(void **state)
{
    (void)state;
    policy *p = parse_ok("version 1\nlocal exec,route\n");
    assert_int_equal(policy_allows_local(p, JOB_KIND_EXEC), 1);
    assert_int_equal(policy_allows_local(p, JOB_KIND_ROUTE), 1);
    assert_int_equal(policy_allows_local(p, JOB_KIND_NOOP), 0);
    policy_free(p);
    p = parse_ok("version 1\n");
    assert_int_equal(policy_allows_local(p, JOB_KIND_EXEC), 0); /* off unless listed */
    policy_free(p);
    assert_int_equal(policy_allows_local(NULL, JOB_KIND_EXEC), 0);
    parse_err("version 1\nlocal boat\n", "test.policy:2:7: unknown job kind 'boat'");
    parse_err("version 1\nlocal exec\nlocal noop\n",
              "test.policy:3:1: local already ruled on line 2: contradictory");
    parse_err("version 1\nlocal\n", "test.policy:2:1: expected 'local KIND[,KIND]'");
}

static void test_predict_escalate(void **state)
{
    (void)state;
    const char *model = "x";
    policy *p = parse_ok("version 1\n");
    assert_int_equal(policy_predict_escalates(p, DATA_CONFIDENTIAL, &model),
                     0); /* off by default */
    assert_null(model);
    policy_free(p);
    p = parse_ok("version 1\npredict escalate confidential,public\n");
    assert_int_equal(policy_predict_escalates(p, DATA_CONFIDENTIAL, &model), 1);
    assert_int_equal(policy_predict_escalates(p, DATA_PUBLIC, NULL), 1);
    assert_int_equal(policy_predict_escalates(p, DATA_SITE_PRIVATE, NULL), 0);
    assert_int_equal(policy_predict_escalates(p, 7, NULL), 0);
    assert_null(model);
    policy_free(p);
    p = parse_ok("version 1\npredict escalate public to eta-big\n");
    assert_int_equal(policy_predict_escalates(p, DATA_CONFIDENTIAL, &model), 0);
    assert_int_equal(policy_predict_escalates(p, DATA_PUBLIC, &model), 1);
    assert_string_equal(model, "eta-big");
    policy_free(p);
    p = parse_ok("version 1\npredict escalate off\n");
    assert_int_equal(policy_predict_escalates(p, DATA_PUBLIC, NULL), 0);
    policy_free(p);
    assert_int_equal(policy_predict_escalates(NULL, DATA_PUBLIC, NULL), 0);
    parse_err("version 1\npredict escalate site-private\n",
              "test.policy:2:18: site-private features never leave the site");
    parse_err("version 1\npredict escalate public,site-private\n",
              "test.policy:2:18: site-private features never leave the site");
    parse_err("version 1\npredict escalate secret\n",
              "test.policy:2:18: unknown data class 'secret'");
    parse_err("version 1\npredict escalate *\n", "test.policy:2:18: name the data classes");
    parse_err("version 1\npredict escalate public to a/b\n",
              "test.policy:2:28: 'a/b' is not a model name");
    parse_err("version 1\npredict escalate public from eta\n",
              "test.policy:2:9: expected 'predict escalate off'");
    parse_err("version 1\npredict always\n", "test.policy:2:9: expected 'predict escalate off'");
    parse_err("version 1\npredict\n", "test.policy:2:1: expected 'predict escalate off'");
    parse_err("version 1\npredict escalate off\npredict escalate public\n",
              "test.policy:3:1: predict escalate already ruled on line 2: contradictory");
}

static void test_api_roles(void **state)
{
    (void)state;
    policy *p = parse_ok("version 1\n");
    assert_int_equal(policy_api_role(p, "op-a"), POLICY_ROLE_ADMIN); /* unruled: the token's */
    policy_free(p);
    p = parse_ok("version 1\napi op-a,op-b viewer\napi op-c admin\n");
    assert_int_equal(policy_api_role(p, "op-a"), POLICY_ROLE_VIEWER);
    assert_int_equal(policy_api_role(p, "op-b"), POLICY_ROLE_VIEWER);
    assert_int_equal(policy_api_role(p, "op-c"), POLICY_ROLE_ADMIN);
    assert_int_equal(policy_api_role(p, "op-d"), POLICY_ROLE_NONE); /* listed lines only */
    policy_free(p);
    p = parse_ok("version 1\napi op-a none\napi * operator\n");
    assert_int_equal(policy_api_role(p, "op-a"), POLICY_ROLE_NONE);
    assert_int_equal(policy_api_role(p, "op-z"), POLICY_ROLE_OPERATOR);
    policy_free(p);
    parse_err("version 1\napi op-a root\n", "test.policy:2:10: unknown role 'root'");
    parse_err("version 1\napi op-a\n", "test.policy:2:1: expected 'api OPERATORS");
    parse_err("version 1\napi op-a viewer\napi op-b,op-a admin\n",
              "test.policy:3:5: the API role of 'op-a' is already ruled on line 2");
    parse_err("version 1\napi * viewer\napi * admin\n",
              "test.policy:3:5: the API role of '*' is already ruled on line 2");
    parse_err("version 1\napi op/a viewer\n", "test.policy:2:5: 'op/a' is not a valid name");
}

static void test_malformed_and_contradictory(void **state)
{
    (void)state;
    parse_err("power car 40\n", "test.policy:1:1: 'version N' is required");
    parse_err("version 1\nversion 2\n", "test.policy:2:1: version given twice");
    parse_err("version 1\nallow everything\n", "test.policy:2:1: unknown statement 'allow'");
    parse_err("version 1\ndata secret on pod\n", "test.policy:2:6: unknown data class 'secret'");
    parse_err("version 1\ndata public on pod boat\n",
              "test.policy:2:20: unknown site class 'boat'");
    parse_err("version 1\ndata public on pod\ndata public on dc\n",
              "test.policy:3:1: data public already ruled on line 2: contradictory");
    parse_err("version 1\ndata site-private on dc\n",
              "site-private data may only run on its 'origin'");
    parse_err("version 1\nsubmit exec to op-a\n",
              "test.policy:2:13: expected 'submit KIND by OPERATORS'");
    parse_err("version 1\nsubmit rocket by *\n", "unknown job kind 'rocket'");
    parse_err("version 1\nwindow exec on car 25:00-07:00\n",
              "test.policy:2:20: expected HH:MM-HH:MM");
    parse_err("version 1\nwindow exec on car 18:00-07:00\nwindow exec on car 19:00-06:00\n",
              "window for exec on these classes already set on line 2");
    parse_err("version 1\npower car -5\n", "test.policy:2:11: watts must be a number >= 0");
    parse_err("version 1\npower car 40\npower car 50\n", "power limit already set on line 2");
    parse_err("version 1\napprove exec cores>0\n", "test.policy:2:14: expected cores>=N");
    parse_err("version 1\ncommands car /bin/sh\n", "a program name, not a path");
    parse_err("version 0\n", "version needs a positive integer");
}

/* Field by field: a struct copy need not carry the padding that memcmp would compare. */
static void assert_params_equal(const verify_params *a, const verify_params *b)
{
    assert_int_equal(a->untrusted_classes, b->untrusted_classes);
    assert_int_equal(a->trusted_classes, b->trusted_classes);
    assert_int_equal(a->trust_after, b->trust_after);
    assert_true(a->spot_check_floor == b->spot_check_floor);
    assert_true(a->spot_check_tainted == b->spot_check_tainted);
    assert_int_equal(a->quarantine_after, b->quarantine_after);
    assert_int_equal(a->quorum, b->quorum);
    assert_int_equal(a->max_replicas, b->max_replicas);
    assert_int_equal(a->reexec_on_trusted, b->reexec_on_trusted);
    assert_int_equal(a->n_kinds, b->n_kinds);
    for (size_t i = 0; i < a->n_kinds; i++) {
        assert_int_equal(a->kinds[i].kind, b->kinds[i].kind);
        assert_int_equal(a->kinds[i].replicas, b->kinds[i].replicas);
        assert_int_equal(a->kinds[i].trusted_only, b->kinds[i].trusted_only);
    }
}

static void test_verify_defaults(void **state)
{
    (void)state;
    verify_params want, got;
    verify_params_default(&want);
    memset(&got, 0xa5, sizeof got);
    policy_verify_params(NULL, &got);
    assert_params_equal(&got, &want);
    /* A policy without verify lines leaves every value at its default. */
    policy *p = parse_ok(sample);
    memset(&got, 0xa5, sizeof got);
    policy_verify_params(p, &got);
    assert_params_equal(&got, &want);
    policy_free(p);
    policy_verify_params(NULL, NULL); /* no crash */
}

/* The rule for kind in v, or NULL. */
static const verify_kind_rule *kind_rule(const verify_params *v, int kind)
{
    for (size_t i = 0; i < v->n_kinds; i++)
        if (v->kinds[i].kind == kind) return &v->kinds[i];
    return NULL;
}

static void test_verify_statements(void **state)
{
    (void)state;
    policy *p = parse_ok("version 4\n"
                         "verify exec replicas 6     # before max-replicas: order does not matter\n"
                         "verify untrusted car dc\n"
                         "verify noop adaptive\n"
                         "verify route trusted-only\n"
                         "verify checks on trusted\n"
                         "verify quorum 3\n"
                         "verify trust-after 20\n"
                         "verify quarantine-after 3\n"
                         "verify max-replicas 7\n"
                         "verify spot-check 0.05\n");
    verify_params v;
    policy_verify_params(p, &v);
    assert_int_equal(v.untrusted_classes, CLASS_CAR | CLASS_DC);
    assert_int_equal(v.trusted_classes, CLASS_POD);
    assert_int_equal(v.reexec_on_trusted, 1);
    assert_int_equal(v.quorum, 3);
    assert_int_equal(v.trust_after, 20);
    assert_int_equal(v.quarantine_after, 3);
    assert_int_equal(v.max_replicas, 7);
    assert_true(v.spot_check_floor == 0.05);
    assert_true(v.spot_check_tainted == 0.5); /* no statement: the default */
    assert_int_equal(v.n_kinds, 3);
    verify_kind_rule want[3] = {
        {JOB_KIND_EXEC, 6, 0}, {JOB_KIND_NOOP, 0, 0}, {JOB_KIND_ROUTE, 0, 1}};
    for (int i = 0; i < 3; i++) {
        const verify_kind_rule *r = kind_rule(&v, want[i].kind);
        assert_non_null(r);
        assert_int_equal(r->replicas, want[i].replicas);
        assert_int_equal(r->trusted_only, want[i].trusted_only);
    }
    policy_free(p);
    /* Never checked, checks anywhere, every class untrusted (allowed: everything checked). */
    p = parse_ok("version 1\nverify exec replicas 1\nverify checks on any\n"
                 "verify untrusted pod car dc\nverify spot-check 1\n");
    policy_verify_params(p, &v);
    assert_int_equal(kind_rule(&v, JOB_KIND_EXEC)->replicas, 1);
    assert_int_equal(kind_rule(&v, JOB_KIND_NOOP)->replicas, 1); /* the built-in default */
    assert_int_equal(v.reexec_on_trusted, 0);
    assert_int_equal(v.untrusted_classes, CLASS_ALL);
    assert_int_equal(v.trusted_classes, 0);
    assert_true(v.spot_check_floor == 1.0);
    policy_free(p);
    /* The built-in "noop never checked" is a default a policy may override, not a rule. */
    p = parse_ok("version 1\nverify noop adaptive\n");
    policy_verify_params(p, &v);
    assert_int_equal(kind_rule(&v, JOB_KIND_NOOP)->replicas, 0);
    policy_free(p);
    /* Cars trusted, only pods checked: the operator's call. */
    p = parse_ok("version 1\nverify untrusted pod\n");
    policy_verify_params(p, &v);
    assert_int_equal(v.untrusted_classes, CLASS_POD);
    assert_int_equal(v.trusted_classes, CLASS_CAR | CLASS_DC);
    policy_free(p);
}

static void test_verify_malformed(void **state)
{
    (void)state;
    parse_err("version 1\nverify\n", "test.policy:2:1: expected 'verify SETTING VALUE'");
    parse_err("version 1\nverify quorum\n", "test.policy:2:8: expected 'verify SETTING VALUE'");
    parse_err("version 1\nverify sometimes 3\n",
              "test.policy:2:8: unknown verify setting 'sometimes' (untrusted, checks,");
    parse_err("version 1\nverify untrusted boat\n",
              "test.policy:2:18: unknown site class 'boat' (pod, car, dc)");
    parse_err("version 1\nverify checks on nobody\n",
              "test.policy:2:15: expected 'verify checks on trusted' or 'verify checks on any'");
    parse_err("version 1\nverify checks trusted\n", "test.policy:2:15: expected 'verify checks");
    parse_err("version 1\nverify quorum 1\n",
              "test.policy:2:15: verify quorum needs an integer from 2 to 8");
    parse_err("version 1\nverify quorum 9\n", "test.policy:2:15: verify quorum needs");
    parse_err("version 1\nverify quorum two\n", "test.policy:2:15: verify quorum needs");
    parse_err("version 1\nverify quorum 2 3\n", "test.policy:2:1: expected 'verify quorum N'");
    parse_err("version 1\nverify trust-after 0\n",
              "test.policy:2:20: verify trust-after needs an integer from 1 to 1000");
    parse_err("version 1\nverify trust-after 1001\n", "test.policy:2:20: verify trust-after");
    parse_err("version 1\nverify quarantine-after 101\n",
              "test.policy:2:25: verify quarantine-after needs an integer from 1 to 100");
    parse_err("version 1\nverify max-replicas 9\n",
              "test.policy:2:21: verify max-replicas needs an integer from 2 to 8");
    parse_err("version 1\nverify max-replicas 1\n", "test.policy:2:21: verify max-replicas");
    const char *bad_p[] = {"0", "-0.1", "1.01", "nan", "inf", "2%", "abc"};
    for (size_t i = 0; i < sizeof bad_p / sizeof bad_p[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "version 1\nverify spot-check %s\n", bad_p[i]);
        parse_err(text, "test.policy:2:19: spot-check needs a probability P, 0 < P <= 1");
    }
    parse_err("version 1\nverify spot-check\n", "test.policy:2:8: expected 'verify SETTING");
    parse_err("version 1\nverify exec replicas 0\n",
              "test.policy:2:22: replicas needs N from 1 (never checked) to 8");
    parse_err("version 1\nverify exec replicas 9\n", "test.policy:2:22: replicas needs N");
    parse_err("version 1\nverify exec replicas\n", "test.policy:2:13: replicas needs N");
    parse_err("version 1\nverify exec sometimes\n",
              "test.policy:2:13: expected 'verify exec replicas N', 'verify exec adaptive' or "
              "'verify exec trusted-only'");
    parse_err("version 1\nverify exec adaptive now\n", "test.policy:2:13: expected 'verify exec");
    parse_err("version 1\nverify route trusted-only yes\n",
              "test.policy:2:14: expected 'verify route");
}

/* Rules that clash with another line, wherever it stands in the file. */
static void test_verify_contradictions(void **state)
{
    (void)state;
    parse_err("version 1\nverify untrusted car\nverify untrusted car dc\n",
              "test.policy:3:1: verify untrusted already ruled on line 2: contradictory");
    parse_err("version 1\nverify checks on trusted\nverify checks on any\n",
              "test.policy:3:1: verify checks already ruled on line 2: contradictory");
    parse_err("version 1\nverify quorum 2\nverify quorum 2\n",
              "test.policy:3:1: verify quorum already set on line 2: contradictory");
    parse_err("version 1\nverify spot-check 0.1\nverify spot-check 0.2\n",
              "test.policy:3:1: verify spot-check already set on line 2: contradictory");
    parse_err("version 1\nverify trust-after 5\n\nverify trust-after 6\n",
              "test.policy:4:1: verify trust-after already set on line 2");
    parse_err("version 1\nverify exec replicas 2\nverify exec adaptive\n",
              "test.policy:3:1: verify exec already ruled on line 2: contradictory");
    parse_err("version 1\nverify exec trusted-only\nverify exec replicas 3\n",
              "test.policy:3:1: verify exec already ruled on line 2: contradictory");
    parse_err("version 1\nverify noop adaptive\nverify noop adaptive\n",
              "test.policy:3:1: verify noop already ruled on line 2");
    /* Fixed replicas beyond max-replicas, stated or default, before or after it. */
    parse_err("version 1\nverify exec replicas 6\n",
              "test.policy:2:22: verify exec replicas 6 exceeds max-replicas 5 (the default): a "
              "job gives up after 5 results");
    parse_err("version 1\nverify max-replicas 3\nverify exec replicas 4\n",
              "test.policy:3:22: verify exec replicas 4 exceeds max-replicas 3 (line 2)");
    parse_err("version 1\nverify exec replicas 4\nverify max-replicas 3\n",
              "test.policy:2:22: verify exec replicas 4 exceeds max-replicas 3 (line 3)");
    /* Fixed replicas below the quorum: the quorum would need more anyway. */
    parse_err("version 1\nverify quorum 3\nverify route replicas 2\n",
              "test.policy:3:23: verify route replicas 2 is below the quorum 3 (line 2): a job "
              "needs 3 agreeing results anyway");
    /* A quorum no job could reach. */
    parse_err("version 1\nverify quorum 6\n",
              "test.policy:2:15: quorum 6 (line 2) exceeds max-replicas 5 (the default): no job "
              "could reach it");
    parse_err("version 1\nverify quorum 4\nverify max-replicas 3\n",
              "test.policy:3:21: quorum 4 (line 2) exceeds max-replicas 3 (line 3)");
    /* No trusted class left, yet checks or a kind are sent to trusted classes. */
    parse_err("version 1\nverify untrusted pod car dc\nverify checks on trusted\n",
              "test.policy:3:18: checks on trusted, but 'verify untrusted' on line 2 leaves no "
              "trusted class: contradictory");
    parse_err("version 1\nverify checks on trusted\nverify untrusted dc car pod\n",
              "test.policy:2:18: checks on trusted, but 'verify untrusted' on line 3");
    parse_err("version 1\nverify untrusted pod car dc\nverify route trusted-only\n",
              "test.policy:3:14: verify route trusted-only, but 'verify untrusted' on line 2 "
              "leaves no trusted class: it could never run");
    /* Consistent combinations pass. */
    policy_free(parse_ok("version 1\nverify quorum 5\nverify exec replicas 5\n"));
    policy_free(parse_ok("version 1\nverify max-replicas 8\nverify quorum 8\n"
                         "verify noop replicas 8\nverify untrusted pod car\n"
                         "verify checks on trusted\nverify route trusted-only\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_hash),
        cmocka_unit_test(test_submit_rules),
        cmocka_unit_test(test_data_classes),
        cmocka_unit_test(test_windows_power_commands),
        cmocka_unit_test(test_approval),
        cmocka_unit_test(test_local_kinds),
        cmocka_unit_test(test_predict_escalate),
        cmocka_unit_test(test_api_roles),
        cmocka_unit_test(test_malformed_and_contradictory),
        cmocka_unit_test(test_verify_defaults),
        cmocka_unit_test(test_verify_statements),
        cmocka_unit_test(test_verify_malformed),
        cmocka_unit_test(test_verify_contradictions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
