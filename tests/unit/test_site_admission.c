/*
 * Unit tests of the site's admission (src/site/jobs.c) on a site built in
 * memory: what fits is admitted; what does not is refused with its reason,
 * "busy" (OP_EFULL) for what may fit later, "refused" (OP_EPERM) for what
 * never will. Accepting an offer is followed through to the store.
 */
#include "base/err.h"
#include "core/jobspec.h"
#include "core/policy.h"
#include "helpers/site_fixture.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    *state = site_fixture_new(0);
    return *state ? 0 : -1;
}

static int setup_with_store(void **state)
{
    *state = site_fixture_new(1);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    site *s = *state;
    while (s->n_jobs > 0 && !s->jobs[s->n_jobs - 1]) /* slots only counted, never filled */
        s->n_jobs--;
    site_fixture_free(s);
    return 0;
}

static jobspec spec_of(const char *text)
{
    jobspec spec;
    char err[256] = "";
    cJSON *json = site_fixture_json(text);
    int rc = jobspec_from_json(json, &spec, err, sizeof err);
    if (rc != OP_OK) fprintf(stderr, "spec: %s\n", err);
    assert_int_equal(rc, OP_OK);
    cJSON_Delete(json);
    return spec;
}

/* Admission of spec_text on s: the code, and the reason in why. */
static int admit(site *s, const char *spec_text, char *why, size_t why_len)
{
    jobspec spec = spec_of(spec_text);
    why[0] = '\0';
    int rc = site__admission(s, &spec, why, why_len);
    jobspec_clear(&spec);
    return rc;
}

#define TWO_CORES "{\"kind\":\"exec\",\"command\":[\"sleep\",\"1\"],\"resources\":{\"cores\":2}}"

static void test_fitting_job_admitted(void **state)
{
    site *s = *state;
    char why[300];
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_OK);
    assert_string_equal(why, "");
    s->used_cores = 6; /* exactly the last two cores; 5 + 8 * 10 = 85 W of 100 */
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_OK);
}

static void test_over_free_cores_busy(void **state)
{
    site *s = *state;
    char why[300];
    s->used_cores = 7;
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_EFULL);
    assert_string_equal(why, "needs 2 cores, 1 free");
}

static void test_over_free_memory_busy(void **state)
{
    site *s = *state;
    char why[300];
    s->used_memory_mb = 8000;
    assert_int_equal(admit(s,
                           "{\"kind\":\"exec\",\"command\":[\"true\"],"
                           "\"resources\":{\"memory_mb\":256}}",
                           why, sizeof why),
                     OP_EFULL);
    assert_string_equal(why, "needs 256 MB, 192 free");
}

static void test_over_power_envelope_busy(void **state)
{
    site *s = *state;
    char why[300];
    /* idle 5 W + 2 cores at 10 W = 25 W fits 25 W exactly; 24 W does not */
    s->power_budget_watts = 25;
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_OK);
    s->power_budget_watts = 24;
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_EFULL);
    assert_string_equal(why, "would draw 25 W over a 24 W budget");
    /* the idle draw counts too: running cores plus the new ones plus idle */
    s->power_budget_watts = 100;
    s->used_cores = 5;
    s->idle_watts = 40;
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_EFULL);
    assert_string_equal(why, "would draw 110 W over a 100 W budget");
}

static void test_job_slots_busy(void **state)
{
    site *s = *state;
    char why[300];
    s->max_jobs = 1;
    s->n_jobs = 1; /* admission only counts them */
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_EFULL);
    assert_string_equal(why, "site runs its maximum of 1 jobs");
}

static void test_leaving_busy(void **state)
{
    site *s = *state;
    char why[300];
    s->leaving = 1;
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_EFULL);
    assert_string_equal(why, "site site-a is leaving");
}

static void test_class_and_residency_refused(void **state)
{
    site *s = *state;
    char why[300];
    assert_int_equal(
        admit(s, "{\"kind\":\"noop\",\"site_classes\":[\"pod\",\"car\"]}", why, sizeof why),
        OP_EPERM);
    assert_string_equal(why, "job does not allow site class dc");
    assert_int_equal(admit(s,
                           "{\"kind\":\"noop\",\"data_class\":\"site-private\","
                           "\"origin\":\"site-b\"}",
                           why, sizeof why),
                     OP_EPERM);
    assert_string_equal(why, "site-private data of site-b may not run here");
    assert_int_equal(admit(s,
                           "{\"kind\":\"noop\",\"data_class\":\"site-private\","
                           "\"origin\":\"site-a\"}",
                           why, sizeof why),
                     OP_OK);
}

static void test_owner_policy_refused(void **state)
{
    site *s = *state;
    char why[300], err[256] = "";
    assert_int_equal(policy_parse("version 1\ncommands dc sha256sum\n", "site.policy", &s->policy,
                                  err, sizeof err),
                     OP_OK);
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_EPERM);
    assert_non_null(strstr(why, "site policy: "));
    assert_int_equal(
        admit(s, "{\"kind\":\"exec\",\"command\":[\"sha256sum\",\"x\"]}", why, sizeof why), OP_OK);
}

/* The event the site queued for the hub last, and its reason. */
static const char *last_event(const site *s, const char **reason)
{
    const cJSON *e =
        s->events ? cJSON_GetArrayItem(s->events, cJSON_GetArraySize(s->events) - 1) : NULL;
    *reason = e ? cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason")) : NULL;
    return e ? cJSON_GetStringValue(cJSON_GetObjectItem(e, "event")) : NULL;
}

static void test_offer_accepted_and_recorded(void **state)
{
    site *s = *state;
    const char *reason;
    cJSON *noop = site_fixture_json("{\"kind\":\"noop\"}");
    site__accept_job(s, 7, 1, noop, 0, 30000);
    cJSON_Delete(noop);
    assert_string_equal(last_event(s, &reason), "started");
    assert_int_equal(sitedb_job_known(s->db, 7, 1), 1);
    /* a no-op finishes at once: its result waits in the outbox and in this iteration's batch */
    int64_t unsent = 0;
    assert_int_equal(sitedb_outbox_count(s->db, &unsent), OP_OK);
    assert_int_equal(unsent, 1);
    assert_int_equal(cJSON_GetArraySize(s->results), 1);
    assert_int_equal(s->store_failed, 0);
    assert_int_equal(sitedb_commit(s->db), OP_OK);
    site__poll_jobs(s); /* frees its share */
    assert_int_equal(s->n_jobs, 0);
    assert_int_equal(s->used_cores, 0);
}

static void test_offer_over_capacity_reported_busy(void **state)
{
    site *s = *state;
    const char *reason;
    s->used_cores = 7;
    cJSON *spec = site_fixture_json(TWO_CORES);
    site__accept_job(s, 8, 2, spec, 0, 0);
    cJSON_Delete(spec);
    assert_string_equal(last_event(s, &reason), "busy");
    assert_string_equal(reason, "needs 2 cores, 1 free");
    assert_int_equal(s->n_jobs, 0);
    assert_int_equal(sitedb_job_known(s->db, 8, 2), 0);
    spec = site_fixture_json("{\"kind\":\"noop\",\"site_classes\":[\"pod\"]}");
    site__accept_job(s, 9, 1, spec, 0, 0);
    cJSON_Delete(spec);
    assert_string_equal(last_event(s, &reason), "refused");
    assert_string_equal(reason, "job does not allow site class dc");
}

/* Without job isolation a site takes no confidential work (a no-op carries no data). */
static void test_confidential_needs_isolation(void **state)
{
    site *s = *state;
    char why[300];
    const char *conf = "{\"kind\":\"exec\",\"command\":[\"true\"],\"data_class\":\"confidential\"}";
    s->caps.isolation = 0;
    assert_int_equal(admit(s, conf, why, sizeof why), OP_EPERM);
    assert_non_null(strstr(why, "confidential data needs job isolation"));
    assert_int_equal(
        admit(s, "{\"kind\":\"noop\",\"data_class\":\"confidential\"}", why, sizeof why), OP_OK);
    assert_int_equal(admit(s, TWO_CORES, why, sizeof why), OP_OK);
    s->caps.isolation = 1;
    assert_int_equal(admit(s, conf, why, sizeof why), OP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fitting_job_admitted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_free_cores_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_free_memory_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_power_envelope_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_slots_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaving_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_class_and_residency_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_policy_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confidential_needs_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offer_accepted_and_recorded, setup_with_store,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offer_over_capacity_reported_busy, setup_with_store,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
