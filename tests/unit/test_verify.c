/*
 * Unit tests of the verification rule (src/core/verify.c): quorum agreement
 * and disagreement, owner exclusion, trust growth and reset, quarantine,
 * refusal of non-deterministic kinds on untrusted classes, and the plan per
 * class, kind rule and trust state.
 */
#include "base/err.h"
#include "core/jobspec.h"
#include "core/verify.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#define DRAW_LOW 0ULL        /* a draw below any probability: checked */
#define DRAW_HIGH UINT64_MAX /* a draw above any probability below 1: not checked */

static verify_trust trusted_site(uint32_t run)
{
    verify_trust t;
    memset(&t, 0, sizeof t);
    t.consecutive_valid = run;
    t.total_valid = run;
    return t;
}

static void test_plan_per_class(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_trust fresh = trusted_site(0);
    verify_plan_out out;
    /* the operator's own pods and data centers: one result, whatever the trust */
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_POD, &fresh, NULL, DRAW_LOW, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 1);
    assert_int_equal(out.why, VERIFY_WHY_TRUSTED_CLASS);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 0, CLASS_DC, &fresh, NULL, DRAW_LOW, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 1);
    /* a new car: replicated to a quorum, checks anywhere but on its own class too */
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &fresh, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 2);
    assert_int_equal(out.why, VERIFY_WHY_NEW_SITE);
    assert_int_equal(out.check_class, CLASS_ALL);
    /* re-execution on the operator's own sites where that is cheaper */
    p.reexec_on_trusted = 1;
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &fresh, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.check_class, CLASS_POD | CLASS_DC);
    /* a class in neither set is treated as untrusted */
    p.trusted_classes = CLASS_DC;
    p.untrusted_classes = CLASS_CAR;
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_POD, &fresh, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 2);
    /* bad arguments */
    assert_int_equal(
        verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR | CLASS_POD, &fresh, NULL, 0, &out), OP_EINVAL);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, 0, &fresh, NULL, 0, &out), OP_EINVAL);
    assert_int_equal(verify_plan(NULL, JOB_KIND_EXEC, 1, CLASS_CAR, &fresh, NULL, 0, &out),
                     OP_EINVAL);
}

static void test_nondeterministic_refused_on_untrusted(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_trust veteran = trusted_site(5000);
    verify_plan_out out;
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 0, CLASS_CAR, &veteran, NULL, DRAW_HIGH, &out),
                     OP_EPERM);
    assert_int_equal(out.why, VERIFY_WHY_NONDETERMINISTIC);
    assert_non_null(strstr(verify_why_text(out.why), "non-deterministic"));
    /* a kind rule can keep a kind on trusted classes even when deterministic */
    p.kinds[0] = (verify_kind_rule){JOB_KIND_ROUTE, 0, 1};
    p.n_kinds = 1;
    assert_int_equal(verify_plan(&p, JOB_KIND_ROUTE, 1, CLASS_CAR, &veteran, NULL, DRAW_HIGH, &out),
                     OP_EPERM);
    assert_int_equal(out.why, VERIFY_WHY_KIND_TRUSTED_ONLY);
    assert_int_equal(verify_plan(&p, JOB_KIND_ROUTE, 1, CLASS_POD, &veteran, NULL, DRAW_HIGH, &out),
                     OP_OK);
}

static void test_kind_rules(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    p.kinds[0] = (verify_kind_rule){JOB_KIND_NOOP, 1, 0};
    p.kinds[1] = (verify_kind_rule){JOB_KIND_ROUTE, 3, 0};
    p.n_kinds = 2;
    verify_trust veteran = trusted_site(5000);
    verify_plan_out out;
    assert_int_equal(verify_plan(&p, JOB_KIND_NOOP, 1, CLASS_CAR, &veteran, NULL, DRAW_LOW, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 1);
    assert_int_equal(out.why, VERIFY_WHY_KIND_UNVERIFIED);
    assert_int_equal(verify_plan(&p, JOB_KIND_ROUTE, 1, CLASS_CAR, &veteran, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 3);
    assert_int_equal(out.why, VERIFY_WHY_KIND_FIXED);
    p.kinds[1].replicas = 50; /* bounded by max_replicas */
    assert_int_equal(verify_plan(&p, JOB_KIND_ROUTE, 1, CLASS_CAR, &veteran, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 5);
}

static void test_trust_growth_and_spot_checks(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_trust t = trusted_site(0);
    verify_plan_out out;
    for (int i = 0; i < 9; i++)
        assert_int_equal(verify_update_trust(&p, &t, VERIFY_VALID, 1000), 0);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &t, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.why, VERIFY_WHY_NEW_SITE); /* 9 < 10 */
    verify_update_trust(&p, &t, VERIFY_VALID, 1000);
    assert_int_equal(t.consecutive_valid, 10);
    assert_int_equal(t.total_valid, 10);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &t, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.replicas, 1);
    assert_int_equal(out.why, VERIFY_WHY_TRUSTED);
    assert_true(out.check_probability > 0.099 && out.check_probability < 0.101); /* 1/10 */
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &t, NULL, DRAW_LOW, &out), OP_OK);
    assert_int_equal(out.replicas, 2);
    assert_int_equal(out.why, VERIFY_WHY_SPOT_CHECK);
    /* long-trusted: never checked less often than the floor */
    verify_trust veteran = trusted_site(100000);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &veteran, NULL, DRAW_HIGH, &out),
                     OP_OK);
    assert_true(out.check_probability >= p.spot_check_floor);
    uint64_t just_below = (uint64_t)(0.019 * 18446744073709551615.0);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &veteran, NULL, just_below, &out),
                     OP_OK);
    assert_int_equal(out.why, VERIFY_WHY_SPOT_CHECK);
}

static void test_mismatch_resets_and_quarantines(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_trust site = trusted_site(40), owner = trusted_site(0);
    verify_plan_out out;
    assert_int_equal(verify_update_trust(&p, &site, VERIFY_MISMATCH, 5000), 0);
    assert_int_equal(verify_update_trust(&p, &owner, VERIFY_MISMATCH, 5000), 0);
    assert_int_equal(site.consecutive_valid, 0);
    assert_int_equal(site.total_valid, 40); /* history kept */
    assert_int_equal(site.mismatches, 1);
    assert_int_equal(site.last_mismatch_ms, 5000);
    assert_false(site.quarantined);
    /* trust must be earned again, over twice the run */
    assert_int_equal(verify_trust_needed(&p, &site, &owner), 20);
    for (int i = 0; i < 19; i++)
        verify_update_trust(&p, &site, VERIFY_VALID, 6000);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &site, &owner, DRAW_HIGH, &out),
                     OP_OK);
    assert_int_equal(out.why, VERIFY_WHY_NEW_SITE);
    verify_update_trust(&p, &site, VERIFY_VALID, 6000);
    /* trusted again, but checked at the tainted rate */
    uint64_t draw_040 = (uint64_t)(0.40 * 18446744073709551615.0);
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &site, &owner, draw_040, &out),
                     OP_OK);
    assert_int_equal(out.why, VERIFY_WHY_TAINTED_CHECK);
    assert_true(out.check_probability >= 0.5);
    /* the second mismatch quarantines; the plan refuses from then on */
    assert_int_equal(verify_update_trust(&p, &site, VERIFY_MISMATCH, 7000), 1);
    assert_true(site.quarantined);
    assert_int_equal(verify_update_trust(&p, &site, VERIFY_MISMATCH, 8000), 0); /* already */
    assert_int_equal(verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &site, &owner, DRAW_HIGH, &out),
                     OP_EPERM);
    assert_int_equal(out.why, VERIFY_WHY_QUARANTINED);
    assert_int_equal(verify_update_trust(&p, &site, 99, 0), OP_EINVAL);
}

static void test_owner_taint_and_quarantine(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_trust sibling = trusted_site(500), owner = trusted_site(0);
    verify_plan_out out;
    /* one of the owner's other cars mismatched: this one starts over, twice as long */
    verify_update_trust(&p, &owner, VERIFY_MISMATCH, 1);
    verify_taint(&sibling);
    assert_int_equal(sibling.consecutive_valid, 0);
    assert_int_equal(verify_trust_needed(&p, &sibling, &owner), 20);
    assert_int_equal(
        verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &sibling, &owner, DRAW_HIGH, &out), OP_OK);
    assert_int_equal(out.why, VERIFY_WHY_NEW_SITE);
    /* a second mismatch on any car quarantines the owner, and so every car of it */
    assert_int_equal(verify_update_trust(&p, &owner, VERIFY_MISMATCH, 2), 1);
    assert_int_equal(
        verify_plan(&p, JOB_KIND_EXEC, 1, CLASS_CAR, &sibling, &owner, DRAW_HIGH, &out), OP_EPERM);
    assert_int_equal(out.why, VERIFY_WHY_QUARANTINED);
}

static void test_quorum_agreement(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_result r[3] = {{"car-1", "alice", "aa", 0}, {"car-2", "bob", "aa", 0}};
    verify_outcome o;
    assert_int_equal(verify_decide(&p, r, 1, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_NEED_MORE);
    assert_int_equal(o.more, 1);
    assert_int_equal(verify_decide(&p, r, 2, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_ACCEPT);
    assert_string_equal(r[o.winner].hash, "aa");
    assert_int_equal(o.agreeing, 2);
    assert_int_equal(o.n_mismatched, 0);
    /* an unchecked trusted site: its result alone */
    assert_int_equal(verify_decide(&p, r, 1, 1, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_ACCEPT);
    assert_int_equal(o.winner, 0);
    /* a kind ruled to 3 replicas wants 3 agreeing owners, more than the quorum of 2 */
    r[2] = (verify_result){"car-3", "carol", "aa", 0};
    assert_int_equal(verify_decide(&p, r, 2, 3, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_NEED_MORE);
    assert_int_equal(o.more, 1);
    assert_int_equal(verify_decide(&p, r, 3, 3, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_ACCEPT);
    assert_int_equal(o.agreeing, 3);
}

static void test_quorum_disagreement(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_result r[6] = {
        {"car-1", "alice", "aa", 0}, {"car-2", "mallory", "ff", 0}, {"car-3", "carol", "aa", 0}};
    verify_outcome o;
    assert_int_equal(verify_decide(&p, r, 2, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_NEED_MORE);
    assert_int_equal(o.more, 1);
    assert_int_equal(o.winner, -1);
    assert_int_equal(o.n_mismatched, 0); /* nobody is blamed without a winner */
    assert_int_equal(verify_decide(&p, r, 3, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_ACCEPT);
    assert_string_equal(r[o.winner].hash, "aa");
    assert_int_equal(o.n_mismatched, 1);
    assert_true(o.mismatched[1]);
    assert_false(o.mismatched[0] || o.mismatched[2]);
    /* five results and no two owners agree: give up */
    verify_result all_differ[5] = {{"a", "oa", "1", 0},
                                   {"b", "ob", "2", 0},
                                   {"c", "oc", "3", 0},
                                   {"d", "od", "4", 0},
                                   {"e", "oe", "5", 0}};
    assert_int_equal(verify_decide(&p, all_differ, 5, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_GIVE_UP);
    assert_int_equal(verify_decide(&p, all_differ, 0, 2, &o), OP_EINVAL);
    all_differ[2].hash = NULL;
    assert_int_equal(verify_decide(&p, all_differ, 3, 2, &o), OP_EINVAL);
}

static void test_one_owner_never_makes_a_quorum(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    /* two cars of one owner agreeing on a forgery are one vote */
    verify_result r[3] = {
        {"car-1", "mallory", "ff", 0}, {"car-2", "mallory", "ff", 0}, {"car-3", "alice", "aa", 0}};
    verify_outcome o;
    assert_int_equal(verify_decide(&p, r, 2, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_NEED_MORE);
    assert_int_equal(o.agreeing, 1);
    assert_int_equal(verify_decide(&p, r, 3, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_NEED_MORE); /* ff 1 vote, aa 1 vote */
    /* the same site reporting twice is one vote too */
    verify_result twice[2] = {{"car-1", "mallory", "ff", 0}, {"car-1", "mallory", "ff", 0}};
    assert_int_equal(verify_decide(&p, twice, 2, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_NEED_MORE);
    /* the placement helper */
    const char *owners[] = {"mallory", "alice"};
    assert_true(verify_owner_taken(owners, 2, "alice"));
    assert_false(verify_owner_taken(owners, 2, "bob"));
    assert_false(verify_owner_taken(owners, 0, "alice"));
    assert_false(verify_owner_taken(NULL, 2, "alice"));
}

static void test_trusted_reexecution_settles(void **unused)
{
    (void)unused;
    verify_params p;
    verify_params_default(&p);
    verify_result r[3] = {{"car-1", "mallory", "ff", 0},
                          {"pod-1", "operator", "aa", 1},
                          {"dc-1", "operator", "bb", 1}};
    verify_outcome o;
    assert_int_equal(verify_decide(&p, r, 2, 2, &o), OP_OK);
    assert_int_equal(o.state, VERIFY_ACCEPT);
    assert_int_equal(o.winner, 1);
    assert_true(o.mismatched[0]);
    /* two trusted results that disagree settle nothing */
    assert_int_equal(verify_decide(&p, r, 3, 2, &o), OP_OK);
    assert_int_not_equal(o.state, VERIFY_ACCEPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_per_class),
        cmocka_unit_test(test_nondeterministic_refused_on_untrusted),
        cmocka_unit_test(test_kind_rules),
        cmocka_unit_test(test_trust_growth_and_spot_checks),
        cmocka_unit_test(test_mismatch_resets_and_quarantines),
        cmocka_unit_test(test_owner_taint_and_quarantine),
        cmocka_unit_test(test_quorum_agreement),
        cmocka_unit_test(test_quorum_disagreement),
        cmocka_unit_test(test_one_owner_never_makes_a_quorum),
        cmocka_unit_test(test_trusted_reexecution_settles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
