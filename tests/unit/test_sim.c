/*
 * Unit tests for sim: on a small generated world, Outpost never draws above
 * an envelope while the power-oblivious baselines do; every job is accounted
 * for; energy used never exceeds energy offered; a seed gives the same run;
 * bad parameters are refused. With misstated run times, outpost-learned
 * plans closer to the real run times than the declared ones, on the same
 * world. With ../shared/data/power present, a run on
 * the real data uses at least 90% of the spare energy usable by the queued
 * work (skipped, with a message, when the data is not on this machine).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "helpers/testkit.h"
#include "io/simfiles.h"
#include "sim/sim.h"
#include "sim/simdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POWER_DIR TESTKIT_SHARED_DATA "/power"

/* A small stand-in for the real data: sessions, piles and flat-ish signals. */
static void small_data(simdata *d)
{
    memset(d, 0, sizeof *d);
    static simdata_session sessions[] = {{8 * 3600, 9 * 3600, 3 * 3600, 12.0f, 8 * 3600},
                                         {7 * 3600, 10 * 3600, 2 * 3600, 8.0f, 9 * 3600},
                                         {12 * 3600, 3 * 3600, 2 * 3600, 6.0f, 4 * 3600},
                                         {17 * 3600, 13 * 3600, 4 * 3600, 20.0f, 12 * 3600},
                                         {9 * 3600, 2 * 3600, 3600, 30.0f, -1},
                                         {18 * 3600, 3600, 1800, 25.0f, -1},
                                         {10 * 3600, 5 * 3600, 5 * 3600, 9.0f, -1}};
    d->sessions = sessions;
    d->n_sessions = sizeof sessions / sizeof sessions[0];
    d->n_stated = 4;
    d->turku_sessions_per_point_day = 1.2;
    static int piles[] = {4, 10, 20, 8, 40};
    d->piles = piles;
    d->n_piles = 5;
    static int64_t t_carbon[] = {1590969600, 1591012800,
                                 1591056000}; /* 2020-06-01 00:00, 12:00, 2020-06-02 */
    static float v_carbon[] = {200, 120, 260};
    static int64_t t_price[] = {1464739200, 1464782400, 1464825600}; /* 2016-06-01 ... */
    static float v_price[] = {30, 45, 25};
    for (int i = 0; i < SIMDATA_N_CARBON; i++)
        d->carbon[i] = (simdata_series){t_carbon, v_carbon, 3};
    d->price = (simdata_series){t_price, v_price, 3};
}

static sim_params small_params(uint64_t seed)
{
    sim_params p;
    sim_params_default(&p);
    p.sites = 400;
    p.jobs = 6000;
    p.seed = seed;
    p.regions = 4;
    return p;
}

static void run_ok(const simdata *d, const sim_params *p, sim_report *r)
{
    char err[256] = "";
    int rc = sim_run(d, p, r, err, sizeof err);
    if (rc != OP_OK) print_error("sim_run: %s\n", err);
    assert_int_equal(rc, OP_OK);
}

static void test_outpost_stays_inside_envelopes(void **state)
{
    simdata d;
    small_data(&d);
    sim_params p = small_params(3);
    sim_report r;
    run_ok(&d, &p, &r);
    const sim_strategy_report *o = &r.strategy[SIM_OUTPOST];
    print_message("outpost: over %.3f kWh, violations %.0f site-s, %ld completed, %ld preempted; "
                  "least-loaded over %.1f kWh; first-fit over %.1f kWh\n",
                  o->over_kwh, o->violation_site_s, o->completed, o->preempted,
                  r.strategy[SIM_LEAST_LOADED].over_kwh, r.strategy[SIM_FIRST_FIT].over_kwh);
    assert_true(o->over_kwh == 0);
    assert_true(o->violation_site_s == 0);
    assert_true(o->completed > 4000);
    /* the baselines do not look at power: the data centers' evening cut catches them */
    assert_true(r.strategy[SIM_LEAST_LOADED].over_kwh > 1);
    assert_true(r.strategy[SIM_LEAST_LOADED].violation_site_s > 0);
    assert_true(r.strategy[SIM_FIRST_FIT].violation_site_s > 0);
    sim_report_clear(&r);
}

static void test_every_job_accounted_for(void **state)
{
    simdata d;
    small_data(&d);
    sim_params p = small_params(4);
    sim_report r;
    run_ok(&d, &p, &r);
    for (int k = 0; k < SIM_STRATEGIES; k++) {
        const sim_strategy_report *x = &r.strategy[k];
        if (!sim_strategy_active(&p, k)) {
            assert_int_equal(x->completed + x->placements, 0); /* outpost-learned: --misstated */
            continue;
        }
        long total = x->completed + x->dropped + x->queued_at_end + x->running_at_end;
        if (total != (long)p.jobs)
            print_error("%s: %ld completed + %ld dropped + %ld queued + %ld running != %zu\n",
                        sim_strategy_name(k), x->completed, x->dropped, x->queued_at_end,
                        x->running_at_end, p.jobs);
        assert_int_equal(total, (long)p.jobs);
        for (int c = 0; c < SIM_CLASSES; c++)
            assert_true(x->used_kwh[c] <= r.offered_kwh[c] + 1e-6);
        assert_true(x->used_unit_s <= x->usable_unit_s * 1.0001 + 1);
        assert_true(x->on_time <= x->completed);
        assert_true(x->cost_eur > 0 && x->carbon_kg > 0);
    }
    for (int c = 0; c < SIM_CLASSES; c++)
        assert_true(r.offered_kwh[c] <= r.hardware_kwh[c] + 1e-6);
    assert_int_equal(r.n_steps, 1440);
    sim_report_clear(&r);
}

static void test_seeded_and_reproducible(void **state)
{
    simdata d;
    small_data(&d);
    sim_params p = small_params(7);
    sim_report a, b, c;
    run_ok(&d, &p, &a);
    run_ok(&d, &p, &b);
    p.seed = 8;
    run_ok(&d, &p, &c);
    for (int k = 0; k < SIM_STRATEGIES; k++) {
        assert_int_equal(a.strategy[k].completed, b.strategy[k].completed);
        assert_int_equal(a.strategy[k].preempted, b.strategy[k].preempted);
        assert_true(a.strategy[k].used_unit_s == b.strategy[k].used_unit_s);
        assert_true(a.strategy[k].cost_eur == b.strategy[k].cost_eur);
    }
    assert_memory_equal(a.series, b.series,
                        a.n_steps * SIM_CLASSES * (1 + SIM_STRATEGIES) * sizeof(float));
    assert_true(a.strategy[SIM_OUTPOST].used_unit_s != c.strategy[SIM_OUTPOST].used_unit_s);
    sim_report_clear(&a);
    sim_report_clear(&b);
    sim_report_clear(&c);
}

/*
 * Misstated run times: the submitters' errors are what the model says, the
 * world is otherwise the same, every job of outpost-learned is accounted
 * for, it stays inside the envelopes, plans most fresh starts with learned
 * run times and plans them much closer to the real ones; seeded too.
 */
static void test_misstated_learned_plans_closer(void **state)
{
    simdata d;
    small_data(&d);
    sim_params p = small_params(5);
    sim_report plain, r, again;
    run_ok(&d, &p, &plain);
    p.misstated = 1;
    run_ok(&d, &p, &r);
    run_ok(&d, &p, &again);
    const sim_misstatement *m = &r.misstated;
    print_message("misstated: %.0f%% undeclared, median declared/actual %.2f, %.0f%% under, "
                  "sigma %.2f\n",
                  100 * m->undeclared, m->median_ratio, 100 * m->under, m->log_sigma);
    assert_true(m->undeclared > 0.17 && m->undeclared < 0.23);
    assert_true(m->median_ratio > 2 && m->median_ratio < 5);
    assert_true(m->under > 0.04 && m->under < 0.2);
    assert_int_equal(m->programs, 500);
    assert_true(plain.misstated.programs == 0);
    for (int c = 0; c < SIM_CLASSES; c++) /* the same sites and envelopes */
        assert_true(plain.offered_kwh[c] == r.offered_kwh[c]);
    const sim_strategy_report *o = &r.strategy[SIM_OUTPOST], *l = &r.strategy[SIM_OUTPOST_LEARNED];
    print_message("outpost: missed %ld, preempted %ld, cut off %ld, plan error %.2f; "
                  "learned: missed %ld, preempted %ld, cut off %ld, plan error %.2f (%ld learned, "
                  "%ld declared, %ld none)\n",
                  o->missed, o->preempted, o->lost_on_departure, o->plan_log_error, l->missed,
                  l->preempted, l->lost_on_departure, l->plan_log_error, l->planned_learned,
                  l->planned_declared, l->planned_unknown);
    assert_int_equal(l->completed + l->dropped + l->queued_at_end + l->running_at_end,
                     (long)p.jobs);
    assert_true(l->over_kwh == 0 && l->violation_site_s == 0);
    assert_true(l->planned_learned > l->planned_declared + l->planned_unknown);
    assert_int_equal(o->planned_learned, 0);
    assert_true(l->plan_log_error < 0.7 * o->plan_log_error);
    assert_true(l->missed <= o->missed);
    assert_int_equal(l->completed, again.strategy[SIM_OUTPOST_LEARNED].completed);
    assert_true(l->used_unit_s == again.strategy[SIM_OUTPOST_LEARNED].used_unit_s);
    sim_report_clear(&plain);
    sim_report_clear(&r);
    sim_report_clear(&again);
}

static void test_bad_parameters(void **state)
{
    simdata d;
    small_data(&d);
    sim_params p = small_params(1);
    sim_report r;
    char err[256] = "";
    p.sites = 0;
    assert_int_equal(sim_run(&d, &p, &r, err, sizeof err), OP_EINVAL);
    assert_non_null(strstr(err, "sites 1..2,000,000"));
    p = small_params(1);
    p.step_s = 7;
    assert_int_equal(sim_run(&d, &p, &r, err, sizeof err), OP_EINVAL);
    p = small_params(1);
    p.regions = 65;
    assert_int_equal(sim_run(&d, &p, &r, err, sizeof err), OP_EINVAL);
}

static void test_real_data(void **state)
{
    testkit_require_path(POWER_DIR "/acn_caltech_sessions_2020-12_2021-09.csv");
    simdata d;
    char err[512] = "";
    assert_int_equal(simfiles_load(&d, POWER_DIR, err, sizeof err), OP_OK);
    print_message("real data: %zu sessions (%zu with a stated departure), %.2f sessions per "
                  "point per day (Turku), %zu stations\n",
                  d.n_sessions, d.n_stated, d.turku_sessions_per_point_day, d.n_piles);
    assert_true(d.n_stated > 1000 && d.n_sessions > 5000 && d.n_piles == 1362);
    sim_params p;
    sim_params_default(&p);
    p.sites = 3000;
    p.jobs = 30000;
    sim_report r;
    run_ok(&d, &p, &r);
    const sim_strategy_report *o = &r.strategy[SIM_OUTPOST];
    double share = o->used_unit_s / o->usable_unit_s;
    print_message("outpost used %.1f%% of the usable spare; violations %.0f; least-loaded %.1f%%\n",
                  100 * share, o->violation_site_s,
                  100 * r.strategy[SIM_LEAST_LOADED].used_unit_s /
                      r.strategy[SIM_LEAST_LOADED].usable_unit_s);
    assert_true(share >= 0.90);
    assert_true(o->violation_site_s == 0 && o->over_kwh == 0);
    assert_true(r.strategy[SIM_LEAST_LOADED].violation_site_s > 0);
    sim_report_clear(&r);
    simdata_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outpost_stays_inside_envelopes),
        cmocka_unit_test(test_every_job_accounted_for),
        cmocka_unit_test(test_seeded_and_reproducible),
        cmocka_unit_test(test_misstated_learned_plans_closer),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_real_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
