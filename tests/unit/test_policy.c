/* Unit tests of the policy language (src/policy.c): each rule type, defaults, contradictions
 * and malformed files reported with line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/jobspec.h"
#include "core/policy.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_hash),
        cmocka_unit_test(test_submit_rules),
        cmocka_unit_test(test_data_classes),
        cmocka_unit_test(test_windows_power_commands),
        cmocka_unit_test(test_approval),
        cmocka_unit_test(test_local_kinds),
        cmocka_unit_test(test_malformed_and_contradictory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
