/*
 * Result verification in the hub (hub/verifying.c over core/verify): a
 * car's result counts only with a quorum of agreeing replicas from other
 * owners, or a trusted class's; a forged result never becomes the job's;
 * repeated mismatches quarantine the site; non-deterministic jobs stay off
 * untrusted classes; a site answers only for its own attempts.
 */
#include "helpers/hub_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/jsonx.h"
#include "core/jobstate.h"
#include "hub/hub_int.h"

#include <stdio.h>
#include <string.h>

#define CAR_JOB                                                                                    \
    "{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"echo 7\"],\"deterministic\":true,"            \
    "\"site_classes\":[\"car\"]}"

static hub_site *car(hubfix *f, const char *id, const char *owner)
{
    hub_site *s = hubfix_site(f, id, CLASS_CAR, 2, 200, 10);
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    return s;
}

/* Only the named sites are alive (the others parked elsewhere). */
static void only_alive(hubfix *f, const char *const *ids)
{
    for (size_t i = 0; i < f->h->n_sites; i++) {
        hub_site *s = &f->h->sites[i];
        s->alive = 0;
        for (const char *const *id = ids; *id; id++)
            if (strcmp(*id, s->id) == 0) s->alive = 1;
    }
}

static hubdb_job job_of(hubfix *f, int64_t id)
{
    hubdb_job job;
    assert_int_equal(hubdb_job_get(f->h->db, id, &job), OP_OK);
    return job;
}

/* The site reports stdout and exit code for the job's current attempt there. */
static void report(hubfix *f, const char *site, int64_t job_id, int64_t attempt, const char *out,
                   int exit_code)
{
    char text[300];
    snprintf(text, sizeof text,
             "{\"job\":%lld,\"attempt\":%lld,\"exit_code\":%d,\"stdout\":\"%s\"}",
             (long long)job_id, (long long)attempt, exit_code, out);
    cJSON *item = cJSON_Parse(text);
    assert_non_null(item);
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, site), item, 0), OP_OK);
    cJSON_Delete(item);
}

/* Places the queued job and reports from wherever it went; returns that site's id. */
static const char *run_on(hubfix *f, int64_t id, const char *out, int exit_code)
{
    hub__place_pass(f->h);
    hubdb_job job = job_of(f, id);
    assert_int_equal(job.state, JOB_PLACED);
    hub_site *s = hub__find_site(f->h, job.site);
    assert_non_null(s);
    report(f, s->id, id, job.attempt, out, exit_code);
    return s->id;
}

/* The stdout of the job's applied result, as `outpost job ID` shows it (into buf). */
static void applied_stdout(hubfix *f, int64_t id, char *buf, size_t len)
{
    char req[80];
    snprintf(req, sizeof req, "{\"cmd\":\"result\",\"id\":%lld}", (long long)id);
    cJSON *resp = hubfix_request(f, req);
    const cJSON *results =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "results");
    buf[0] = '\0';
    const cJSON *r;
    cJSON_ArrayForEach(r, results)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "applied")) && jsonx_str(r, "stdout"))
            snprintf(buf, len, "%s", jsonx_str(r, "stdout"));
    }
    cJSON_Delete(resp);
}

static void test_car_result_counts_with_a_second_owner(void **state)
{
    hubfix *f = *state;
    car(f, "car-a", "alice");
    car(f, "car-b", "bob");
    int64_t id = hubfix_submit(f, CAR_JOB);
    const char *first = run_on(f, id, "7", 0);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED); /* one car's word is not enough */
    hubdb_job job = job_of(f, id);
    assert_int_equal(job.verify_wanted, 2);
    assert_string_equal(job.verify_owners, strcmp(first, "car-a") == 0 ? "alice" : "bob");
    const char *second = run_on(f, id, "7", 0);
    assert_string_not_equal(first, second); /* the other owner's car */
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    assert_int_equal(hub__find_site(f->h, "car-a")->vt.consecutive_valid, 1);
    assert_int_equal(hub__find_site(f->h, "car-b")->vt.consecutive_valid, 1);
    verify_trust owner;
    assert_int_equal(hubdb_trust_get(f->h->db, "owner:alice", &owner), OP_OK);
    assert_int_equal(owner.total_valid, 1);
}

/*
 * A liar's forged answer against two honest cars: the honest answer wins,
 * the liar's trust resets, and its second mismatch quarantines it (and it
 * gets no work after that).
 */
static void test_forged_result_never_accepted_and_liar_quarantined(void **state)
{
    hubfix *f = *state;
    car(f, "car-liar", "mallory");
    car(f, "car-a", "alice");
    car(f, "car-b", "bob");
    const char *liar_only[] = {"car-liar", NULL}, *all[] = {"car-liar", "car-a", "car-b", NULL};
    for (int round = 0; round < 2; round++) {
        int64_t id = hubfix_submit(f, CAR_JOB);
        only_alive(f, liar_only);
        assert_string_equal(run_on(f, id, "FORGED RESULT 42", 0), "car-liar");
        only_alive(f, all);
        run_on(f, id, "real answer 7", 3);                 /* 1 against 1: another replica */
        assert_int_equal(hubfix_state(f, id), JOB_QUEUED); /* no quorum yet */
        run_on(f, id, "real answer 7", 3);
        assert_int_equal(hubfix_state(f, id), JOB_FAILED); /* the honest exit code 3 */
        char out[64];
        applied_stdout(f, id, out, sizeof out);
        assert_string_equal(out, "real answer 7");
    }
    hub_site *liar = hub__find_site(f->h, "car-liar");
    assert_int_equal(liar->vt.mismatches, 2);
    assert_int_equal(liar->vt.consecutive_valid, 0);
    assert_true(liar->quarantined[0] != '\0');
    /* no more work for it, even alone in the fleet: the job waits */
    only_alive(f, liar_only);
    int64_t id = hubfix_submit(f, CAR_JOB);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    char reason[256], explanation[512];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "quarantined"));
}

/* A trusted class's result settles the job alone; the car that disagreed mismatched. */
static void test_pod_result_settles_and_catches_the_car(void **state)
{
    hubfix *f = *state;
    car(f, "car-liar", "mallory");
    hubfix_site(f, "pod-1", CLASS_POD, 2, 200, 10);
    const char *liar_only[] = {"car-liar", NULL}, *pod_only[] = {"pod-1", NULL};
    int64_t id = hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"true\"],"
                                  "\"deterministic\":true}");
    only_alive(f, liar_only);
    run_on(f, id, "FORGED", 0);
    only_alive(f, pod_only);
    assert_string_equal(run_on(f, id, "real", 0), "pod-1");
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    char out[64];
    applied_stdout(f, id, out, sizeof out);
    assert_string_equal(out, "real");
    assert_int_equal(hub__find_site(f->h, "car-liar")->vt.mismatches, 1);
}

/* A job that may give different answers on each run cannot be checked: not on cars. */
static void test_nondeterministic_job_stays_off_cars(void **state)
{
    hubfix *f = *state;
    car(f, "car-a", "alice");
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"submit\",\"spec\":{\"kind\":\"exec\","
                                    "\"command\":[\"date\"],\"site_classes\":[\"car\"]}}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    assert_non_null(strstr(jsonx_str(resp, "error"), "not declared deterministic"));
    cJSON_Delete(resp);
    hub_site *pod = hubfix_site(f, "pod-1", CLASS_POD, 1, 100, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"date\"]}");
    hub__place_pass(f->h);
    assert_string_equal(job_of(f, id).site, pod->id); /* the car had more room */
}

/* A site answers only for attempts placed on it: another's result is dropped unrecorded. */
static void test_result_for_another_sites_attempt_dropped(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 2, 200, 10);
    hubfix_site(f, "dc-2", CLASS_DC, 2, 200, 10);
    int64_t id = hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"true\"]}");
    hub__place_pass(f->h);
    hubdb_job job = job_of(f, id);
    const char *other = strcmp(job.site, "dc-1") == 0 ? "dc-2" : "dc-1";
    report(f, other, id, 1, "forged", 0);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    report(f, job.site, id, 1, "real", 0);
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
    char out[64];
    applied_stdout(f, id, out, sizeof out);
    assert_string_equal(out, "real"); /* the forged copy did not take the attempt's place */
}

/* Two cars of one owner: the replica waits for another owner rather than ask the same one. */
static void test_replica_never_on_the_same_owner(void **state)
{
    hubfix *f = *state;
    car(f, "car-1", "alice");
    car(f, "car-2", "alice");
    int64_t id = hubfix_submit(f, CAR_JOB);
    run_on(f, id, "7", 0);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    char reason[256], explanation[512];
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "owner alice already holds a replica"));
    car(f, "car-3", "bob");
    assert_string_equal(run_on(f, id, "7", 0), "car-3");
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
}

/* A car trusted by a long validated run gets its result accepted alone (no replica). */
static void test_trusted_car_result_stands_alone(void **state)
{
    hubfix *f = *state;
    hub_site *s = car(f, "car-a", "alice");
    s->vt.consecutive_valid = UINT32_MAX; /* check probability 2^-32: drawn never in practice */
    f->h->verify.spot_check_floor = 0;
    int64_t id = hubfix_submit(f, CAR_JOB);
    run_on(f, id, "7", 0);
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED);
}

/*
 * Site-private work stays on its origin car: no replica can check it, so it
 * is taken unchecked (determinism or not), and a passing error there hands
 * it back without shutting it out of the only site it may use.
 */
static void test_site_private_on_a_car_taken_unchecked_and_handed_back(void **state)
{
    hubfix *f = *state;
    car(f, "car-a", "alice");
    car(f, "car-b", "bob");
    int64_t id = hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"date\"],"
                                  "\"data_class\":\"site-private\",\"origin\":\"car-a\"}");
    hub__place_pass(f->h);
    hubdb_job job = job_of(f, id);
    assert_string_equal(job.site, "car-a");
    cJSON *item = cJSON_Parse("{\"job\":0,\"attempt\":1,\"exit_code\":-1,"
                              "\"error\":\"work dir full\",\"retryable\":\"site\"}");
    cJSON_ReplaceItemInObject(item, "job", cJSON_CreateNumber((double)id));
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, "car-a"), item, 0), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    assert_string_equal(job_of(f, id).excluded, "");
    assert_string_equal(run_on(f, id, "Tue", 0), "car-a");
    assert_int_equal(hubfix_state(f, id), JOB_SUCCEEDED); /* one result: its own */
}

/* Trust and quarantine survive a restart of the hub. */
static void test_trust_and_quarantine_survive_restart(void **state)
{
    hubfix *f = *state;
    hub_site *s = car(f, "car-a", "alice");
    const char *pk_hex = hubfix_site_key(f, "car-a")->pk_hex;
    assert_int_equal(hubdb_site_enroll(f->h->db, "car-a", pk_hex, "car", "alice", "t1", 1, 0),
                     OP_OK);
    s->vt.mismatches = 1;
    assert_int_equal(hubdb_trust_put(f->h->db, "site:car-a", &s->vt), OP_OK);
    hub__quarantine(f->h, s, "test: two mismatches");
    hubfix_reopen(f);
    hub_site *again = hub__find_site(f->h, "car-a");
    assert_non_null(again);
    assert_string_equal(again->quarantined, "test: two mismatches");
    assert_int_equal(again->vt.mismatches, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_car_result_counts_with_a_second_owner, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_forged_result_never_accepted_and_liar_quarantined,
                                        hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_pod_result_settles_and_catches_the_car, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_nondeterministic_job_stays_off_cars, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_result_for_another_sites_attempt_dropped, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_replica_never_on_the_same_owner, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_trusted_car_result_stands_alone, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_site_private_on_a_car_taken_unchecked_and_handed_back,
                                        hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_trust_and_quarantine_survive_restart, hubfix_setup,
                                        hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
