/*
 * Unit tests of the verification simulation (src/sim/sim_verify.c) on a
 * small fleet, checking what cannot be faked: without verification exactly
 * the wrong results sent are accepted; fixed 2-of-2 with owners excluded
 * accepts no lie at all (each liar owner forges its own hash); Outpost's
 * rule quarantines every always-liar and no honest car, accepts fewer lies
 * than BOINC's rule against every strategy at no more overhead; a seed gives
 * the same table; bad parameters are refused.
 */
#include "base/err.h"
#include "sim/sim_verify.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static sim_verify_params small_params(void)
{
    sim_verify_params p;
    sim_verify_params_default(&p);
    p.cars = 400;
    p.days = 15;
    p.honest_glitch = 0;
    p.liar_fractions[0] = 0.10;
    p.liar_fractions[1] = 0.30;
    p.n_fractions = 2;
    p.seed = 7;
    return p;
}

static sim_verify_cell *run(const sim_verify_params *p)
{
    size_t n = sim_verify_cell_count(p);
    sim_verify_cell *cells = calloc(n, sizeof *cells);
    assert_non_null(cells);
    char err[128];
    assert_int_equal(sim_verify_run(p, cells, n, err, sizeof err), OP_OK);
    return cells;
}

static void test_invariants(void **unused)
{
    (void)unused;
    sim_verify_params p = small_params();
    sim_verify_cell *cells = run(&p);
    for (size_t i = 0; i < sim_verify_cell_count(&p); i++) {
        const sim_verify_cell *c = &cells[i];
        assert_true(c->liars > 0);
        assert_true(c->accepted > 0);
        assert_true(c->accepted + c->given_up == c->jobs);
        assert_true(c->attempts >= c->jobs);
        assert_int_equal(c->honest_quarantined, 0); /* no glitches: no honest car is blamed */
        assert_int_equal(c->wrong_accepted, c->lies_accepted);
        if (c->rule == SV_RULE_NONE) {
            assert_int_equal(c->wrong_accepted, c->wrong_sent); /* every lie gets in */
            assert_int_equal(c->attempts, c->jobs);
        }
        if (c->rule == SV_RULE_FIXED2) assert_int_equal(c->lies_accepted, 0);
        if (c->rule == SV_RULE_OUTPOST && c->strategy == SV_LIE_ALWAYS) {
            assert_int_equal(c->liars_quarantined, c->liars);
            assert_int_equal(c->lies_accepted, 0);
        }
        if (c->rule == SV_RULE_OUTPOST) {
            const sim_verify_cell *boinc = c - 1;
            assert_int_equal(boinc->rule, SV_RULE_BOINC);
            assert_true(c->lies_accepted <= boinc->lies_accepted);
            assert_true(sim_verify_overhead(c) <= sim_verify_overhead(boinc) + 1e-9);
        }
    }
    free(cells);
}

static void test_same_seed_same_table(void **unused)
{
    (void)unused;
    sim_verify_params p = small_params();
    p.days = 5;
    p.honest_glitch = 1e-3;
    sim_verify_cell *a = run(&p), *b = run(&p);
    assert_memory_equal(a, b, sim_verify_cell_count(&p) * sizeof *a);
    free(a);
    free(b);
}

static void test_bad_parameters(void **unused)
{
    (void)unused;
    sim_verify_params p = small_params();
    sim_verify_cell cells[64];
    char err[128] = "";
    p.cars = 3;
    assert_int_equal(sim_verify_run(&p, cells, 64, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "cars"));
    p = small_params();
    p.liar_fractions[1] = 1.5;
    assert_int_equal(sim_verify_run(&p, cells, 64, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "fraction"));
    p = small_params();
    assert_int_equal(sim_verify_run(&p, cells, 2, err, sizeof err), OP_EINVAL);
    assert_string_equal(sim_verify_rule_name(SV_RULE_BOINC), "boinc");
    assert_string_equal(sim_verify_strategy_name(99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_same_seed_same_table),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
