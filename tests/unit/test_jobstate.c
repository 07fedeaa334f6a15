/* Unit tests of the job lifecycle (src/jobstate.c). */
#include "base/err.h"
#include "core/jobstate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static int next_of(int state, int64_t attempt, int64_t max, int event)
{
    int next = -1;
    return jobstate_next(state, attempt, max, event, &next) == OP_OK ? next : -1;
}

static void test_names_round_trip(void **unused)
{
    (void)unused;
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        assert_int_equal(jobstate_parse(jobstate_name(s)), s);
    assert_int_equal(jobstate_parse("done"), -1);
    assert_int_equal(jobstate_parse(NULL), -1);
    assert_string_equal(jobstate_name(99), "?");
}

static void test_happy_path(void **unused)
{
    (void)unused;
    assert_int_equal(next_of(JOB_QUEUED, 0, 3, JOB_EV_PLACE), JOB_PLACED);
    assert_int_equal(next_of(JOB_PLACED, 1, 3, JOB_EV_START), JOB_RUNNING);
    assert_int_equal(next_of(JOB_RUNNING, 1, 3, JOB_EV_RESULT_OK), JOB_SUCCEEDED);
    assert_int_equal(next_of(JOB_RUNNING, 1, 3, JOB_EV_RESULT_FAIL), JOB_FAILED);
    /* A fast job's result may arrive before its "started" event. */
    assert_int_equal(next_of(JOB_PLACED, 1, 3, JOB_EV_RESULT_OK), JOB_SUCCEEDED);
}

static void test_taken_back_until_attempts_run_out(void **unused)
{
    (void)unused;
    assert_int_equal(next_of(JOB_RUNNING, 1, 3, JOB_EV_TAKEN_BACK), JOB_QUEUED);
    assert_int_equal(next_of(JOB_PLACED, 2, 3, JOB_EV_TAKEN_BACK), JOB_QUEUED);
    assert_int_equal(next_of(JOB_RUNNING, 3, 3, JOB_EV_TAKEN_BACK), JOB_FAILED);
    assert_int_equal(next_of(JOB_QUEUED, 1, 3, JOB_EV_TAKEN_BACK), -1);
    /* No placement beyond the last attempt. */
    assert_int_equal(next_of(JOB_QUEUED, 3, 3, JOB_EV_PLACE), -1);
}

static void test_terminal_states_are_final(void **unused)
{
    (void)unused;
    int terminal[] = {JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED};
    for (int i = 0; i < 3; i++) {
        assert_true(jobstate_terminal(terminal[i]));
        for (int ev = JOB_EV_PLACE; ev <= JOB_EV_IMPOSSIBLE; ev++)
            assert_int_equal(next_of(terminal[i], 1, 3, ev), -1);
    }
    assert_false(jobstate_terminal(JOB_QUEUED));
    assert_false(jobstate_terminal(JOB_RUNNING));
}

static void test_cancel_and_impossible(void **unused)
{
    (void)unused;
    assert_int_equal(next_of(JOB_QUEUED, 0, 3, JOB_EV_CANCEL), JOB_CANCELLED);
    assert_int_equal(next_of(JOB_PLACED, 1, 3, JOB_EV_CANCEL), JOB_CANCELLED);
    assert_int_equal(next_of(JOB_RUNNING, 1, 3, JOB_EV_CANCEL), JOB_CANCELLED);
    assert_int_equal(next_of(JOB_QUEUED, 0, 3, JOB_EV_IMPOSSIBLE), JOB_FAILED);
    assert_int_equal(next_of(JOB_RUNNING, 1, 3, JOB_EV_IMPOSSIBLE), -1);
    assert_int_equal(next_of(JOB_QUEUED, 0, 3, JOB_EV_START), -1);
    assert_int_equal(next_of(JOB_QUEUED, 0, 3, JOB_EV_RESULT_OK), -1);
    assert_int_equal(next_of(-1, 0, 3, JOB_EV_CANCEL), -1);
    assert_int_equal(next_of(JOB_QUEUED, 0, 3, 42), -1);
}

static void test_result_applies_only_to_current_attempt_on_its_site(void **unused)
{
    (void)unused;
    assert_true(jobstate_result_applies(JOB_RUNNING, 2, "dc-1", 2, "dc-1"));
    assert_true(jobstate_result_applies(JOB_PLACED, 2, "dc-1", 2, "dc-1"));
    assert_false(jobstate_result_applies(JOB_RUNNING, 2, "dc-1", 1, "dc-1"));   /* late */
    assert_false(jobstate_result_applies(JOB_RUNNING, 2, "dc-1", 2, "pod-1"));  /* wrong site */
    assert_false(jobstate_result_applies(JOB_SUCCEEDED, 2, "dc-1", 2, "dc-1")); /* twice */
    assert_false(jobstate_result_applies(JOB_QUEUED, 2, "dc-1", 2, "dc-1"));
    assert_false(jobstate_result_applies(JOB_CANCELLED, 2, "dc-1", 2, "dc-1"));
    assert_false(jobstate_result_applies(JOB_RUNNING, 2, NULL, 2, "dc-1"));
}

static void test_earlier_success_wins(void **unused)
{
    (void)unused;
    int next;
    /* attempt 1's site came back with a success while attempt 2 runs elsewhere */
    assert_true(jobstate_earlier_success_wins(JOB_RUNNING, 2, 1, 1));
    assert_true(jobstate_earlier_success_wins(JOB_QUEUED, 2, 1, 1));
    assert_true(jobstate_earlier_success_wins(JOB_PLACED, 3, 2, 1));
    assert_false(jobstate_earlier_success_wins(JOB_RUNNING, 2, 1, 0));   /* a failure waits */
    assert_false(jobstate_earlier_success_wins(JOB_SUCCEEDED, 2, 1, 1)); /* first wins */
    assert_false(jobstate_earlier_success_wins(JOB_CANCELLED, 2, 1, 1));
    assert_false(jobstate_earlier_success_wins(JOB_RUNNING, 2, 2, 1)); /* current: not earlier */
    assert_false(jobstate_earlier_success_wins(JOB_RUNNING, 2, 3, 1));
    assert_int_equal(jobstate_next(JOB_QUEUED, 2, 3, JOB_EV_EARLIER_OK, &next), OP_OK);
    assert_int_equal(next, JOB_SUCCEEDED);
    assert_int_equal(jobstate_next(JOB_FAILED, 2, 3, JOB_EV_EARLIER_OK, &next), OP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_earlier_success_wins),
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_taken_back_until_attempts_run_out),
        cmocka_unit_test(test_terminal_states_are_final),
        cmocka_unit_test(test_cancel_and_impossible),
        cmocka_unit_test(test_result_applies_only_to_current_attempt_on_its_site),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
