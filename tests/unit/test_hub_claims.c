/*
 * The hub's check of what sites claim (src/hub/probe.c), without processes:
 * a site takes no work before its first verdict or while a probe is out;
 * an honest answer passes; an over-claimer is counted as measured (a job
 * bigger than that is refused at submission), then quarantined the second
 * time, its jobs taken back and the placement explanation naming why; a
 * forged answer (a non-solution, a repeat, junk) or an unanswered probe
 * quarantines at once, a probe to a site that went away is dropped without
 * blame; an operator clears a quarantine (checked anew); verdicts and
 * quarantine survive a restart; a rolled-back batch forgets the challenge it
 * queued; a claim that grows is checked again; the sites view shows what a
 * site delivered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "core/jobspec.h"
#include "core/jobstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Probing on, with a fixed reference rate (no calibration): 1 M hashes/s per core. */
static int setup(void **state)
{
    if (hubfix_setup(state) != 0) return -1;
    hubfix *f = *state;
    f->h->probing.on = 1;
    f->h->probing.core_rate = 1e6;
    return hub__probe_setup(f->h) == OP_OK ? 0 : -1;
}

/* A live site that is also in the registry (so that what is stored about it is kept). */
static hub_site *enrolled(hubfix *f, const char *id, unsigned class_bit, int cores)
{
    hub_site *s = hubfix_site(f, id, class_bit, cores, 100.0 * cores, 10);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    assert_int_equal(hubdb_site_enroll(f->h->db, id, hubfix_site_key(f, id)->pk_hex,
                                       jobspec_class_name(class_bit), id, "t", os_now_ms(), 1),
                     OP_OK);
    assert_int_equal(hubdb_site_set_capacity(f->h->db, id, cores, s->memory_mb,
                                             s->power_budget_watts, 10, 0, ""),
                     OP_OK);
    assert_int_equal(hub__commit(f->h), OP_OK);
    return s;
}

/* The number of replies of type "probe" queued for site id. */
static int probes_queued(hubfix *f, const char *id)
{
    int n = 0;
    for (const hub_reply *r = f->h->replies; r; r = r->next)
        if (strstr(r->topic, id) && strcmp(r->type, "probe") == 0) n++;
    return n;
}

/* The site's answer: n true solutions of its challenge, as if elapsed_ms after it was sent. */
static void answer(hubfix *f, hub_site *s, size_t n, int64_t elapsed_ms)
{
    probe_hasher *hs = probe_hasher_new();
    uint64_t *found = calloc(n ? n : 1, sizeof *found), next = 0;
    size_t got = 0;
    while (got < n)
        probe_search(hs, s->probe.seed, s->probe.bits, &next, 4096, found, n, &got);
    probe_hasher_free(hs);
    cJSON *body = cJSON_CreateObject();
    jsonx_add_int(body, "probe", (int64_t)s->probe.id);
    cJSON *arr = cJSON_AddArrayToObject(body, "nonces");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)found[i]));
    free(found);
    s->probe.sent_mono = os_mono_ms() - elapsed_ms;
    hubfix_site_says(f, s->id, "event", "probe", body);
    cJSON_Delete(body);
}

/* A body sent as the answer to the site's challenge (JSON text after "probe": id,). */
static void answer_raw(hubfix *f, hub_site *s, const char *rest)
{
    char text[512];
    snprintf(text, sizeof text, "{\"probe\":%llu,%s}", (unsigned long long)s->probe.id, rest);
    cJSON *body = cJSON_Parse(text);
    assert_non_null(body);
    hubfix_site_says(f, s->id, "event", "probe", body);
    cJSON_Delete(body);
}

static const cJSON *site_row(cJSON *resp, const char *id)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
                              cJSON_GetObjectItemCaseSensitive(resp, "data"), "sites"))
    {
        if (strcmp(jsonx_str(s, "id"), id) == 0) return s;
    }
    fail_msg("no site %s in the view", id);
    return NULL;
}

static void test_held_until_checked_then_ok(void **state)
{
    hubfix *f = *state;
    hub_site *s = enrolled(f, "pod-1", CLASS_POD, 4);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    assert_string_equal(hub__site_held(f->h, s), "its claims are not checked yet");
    int64_t job = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, job), JOB_QUEUED);
    char reason[256], explanation[1024];
    hubfix_job_text(f, job, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "pod-1: held (its claims are not checked yet)"));
    hub__probe_fleet(f->h);
    assert_true(s->probe.id != 0);
    assert_int_equal(probes_queued(f, "pod-1"), 1);
    assert_int_equal(s->probe.lanes, 4);
    assert_string_equal(hub__site_held(f->h, s), "its claimed capacity is being probed");
    hub__probe_fleet(f->h); /* one challenge at a time */
    assert_int_equal(probes_queued(f, "pod-1"), 1);
    /* bits for 4 / 8 cores at 1 M/s over 2 s: 11; 600 solutions in 0.5 s = 2.46 cores */
    assert_int_equal(s->probe.bits, 11);
    answer(f, s, 600, 500);
    assert_int_equal(s->probe.id, 0);
    assert_null(hub__site_held(f->h, s));
    assert_non_null(strstr(s->probe.verdict, "ok: 4 cores claimed, 2."));
    assert_int_equal(hub__site_cores(s), 4);
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, job), JOB_PLACED);
    assert_int_equal(hub__commit(f->h), OP_OK);
    /* the verdict survives a restart: no new hold, no probe before the interval */
    hubfix_reopen(f);
    f->h->probing.on = 1;
    f->h->probing.core_rate = 1e6;
    assert_int_equal(hub__probe_setup(f->h), OP_OK);
    s = hub__find_site(f->h, "pod-1");
    s->heard = 1;
    assert_non_null(strstr(s->probe.verdict, "ok: 4 cores claimed"));
    assert_null(hub__site_held(f->h, s));
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    assert_int_equal(s->probe.id, 0);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_overclaimer_ranked_down_then_quarantined(void **state)
{
    hubfix *f = *state;
    hub_site *s = enrolled(f, "dc-1", CLASS_DC, 64);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    /* bits for 64 / 8 cores: 15; 20 solutions in 2 s: 0.33 cores */
    assert_int_equal(s->probe.bits, 15);
    answer(f, s, 20, 2000);
    assert_non_null(strstr(s->probe.verdict, "over-claims: 64 cores claimed, 0.3 measured;"
                                             " counted as 1"));
    assert_int_equal(s->probe.failures, 1);
    assert_int_equal(hub__site_cores(s), 1);
    assert_string_equal(s->quarantined, "");
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    const cJSON *claims = cJSON_GetObjectItemCaseSensitive(site_row(resp, "dc-1"), "claims");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(claims, "cores_counted")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(site_row(resp, "dc-1"), "cores")->valueint,
                     64);
    cJSON_Delete(resp);
    /* ranked down: the scheduler sees one core; a two-core job cannot ever run here */
    resp = hubfix_request(
        f, "{\"cmd\":\"submit\",\"spec\":{\"kind\":\"noop\",\"resources\":{\"cores\":2}}}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    assert_non_null(strstr(jsonx_str(resp, "error"), "too small"));
    cJSON_Delete(resp);
    int64_t job = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, job), JOB_PLACED);
    /* the next check (due after the interval) fails again: quarantined, the job taken back */
    hub__probe_fleet(f->h);
    assert_int_equal(s->probe.id, 0);
    s->probe.checked_at_ms -= f->h->probing.interval_ms;
    hub__probe_fleet(f->h);
    assert_true(s->probe.id != 0);
    assert_int_equal(s->probe.free_claimed, 63); /* one core is busy with the job */
    answer(f, s, 20, 2000);
    assert_int_equal(s->probe.failures, 2);
    assert_non_null(strstr(s->quarantined, "over-claims again: 64 cores claimed, 63 of them free"));
    assert_int_equal(hubfix_state(f, job), JOB_QUEUED);
    hub__place_pass(f->h);
    char reason[256], explanation[1024];
    hubfix_job_text(f, job, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(reason, "site dc-1 quarantined: over-claims again"));
    assert_non_null(strstr(explanation, "dc-1: held (quarantined: over-claims again"));
    assert_int_equal(hubfix_state(f, job), JOB_QUEUED);
    assert_int_equal(hub__commit(f->h), OP_OK);
    /* no probe goes to a quarantined site */
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    s->probe.checked_at_ms = 0;
    hub__probe_fleet(f->h);
    assert_int_equal(s->probe.id, 0);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_forged_answers_quarantine_at_once(void **state)
{
    hubfix *f = *state;
    static const char *forgeries[] = {
        "\"nonces\":[1,2,3,4,5,6,7,8,9,10]", /* not solutions (at 11 bits, surely) */
        "\"nonces\":\"lots\"",               /* not an array */
        "\"nonces\":[1.5]",                  /* not a whole number */
        "\"nonces\":[-1]",                   /* out of range */
        "\"nonces\":[9007199254740992]",     /* beyond 2^53 - 1 */
        "\"refused\":\"not today\"",         /* a refusal */
    };
    char id[16];
    for (size_t i = 0; i < sizeof forgeries / sizeof forgeries[0]; i++) {
        snprintf(id, sizeof id, "pod-%zu", i);
        hub_site *s = enrolled(f, id, CLASS_POD, 4);
        assert_int_equal(hubdb_begin(f->h->db), OP_OK);
        hub__probe_fleet(f->h);
        uint64_t sent = s->probe.id;
        assert_true(sent != 0);
        answer_raw(f, s, forgeries[i]);
        if (!s->quarantined[0]) fail_msg("%s: not quarantined", forgeries[i]);
        assert_true(strstr(s->quarantined, i == 5 ? "refused its probe: not today"
                                                  : "forged probe answer: ") != NULL);
        assert_int_equal(s->probe.id, 0);
        assert_int_equal(hub__commit(f->h), OP_OK);
        /* a fixture holds 8 site keys: start over with a fresh hub each time */
        hubfix_teardown(state);
        assert_int_equal(setup(state), 0);
        f = *state;
    }
    /* a repeated true solution is forged too; an answer to another probe id is ignored */
    hub_site *s = enrolled(f, "pod-r", CLASS_POD, 4);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    probe_hasher *hs = probe_hasher_new();
    uint64_t next = 0, one[1];
    size_t got = 0;
    while (!got)
        probe_search(hs, s->probe.seed, s->probe.bits, &next, 4096, one, 1, &got);
    probe_hasher_free(hs);
    uint64_t id_sent = s->probe.id;
    char rest[128];
    cJSON *other = cJSON_Parse("{\"probe\":1,\"nonces\":[]}");
    hubfix_site_says(f, "pod-r", "event", "probe", other);
    cJSON_Delete(other);
    assert_int_equal(s->probe.id, id_sent);
    assert_string_equal(s->quarantined, "");
    snprintf(rest, sizeof rest, "\"nonces\":[%llu,%llu]", (unsigned long long)one[0],
             (unsigned long long)one[0]);
    answer_raw(f, s, rest);
    assert_non_null(strstr(s->quarantined, "forged probe answer: nonce"));
    assert_non_null(strstr(s->quarantined, "twice"));
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_unanswered_quarantines_gone_does_not(void **state)
{
    hubfix *f = *state;
    hub_site *quiet = enrolled(f, "car-1", CLASS_CAR, 2);
    hub_site *gone = enrolled(f, "car-2", CLASS_CAR, 2);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    assert_true(quiet->probe.id && gone->probe.id);
    quiet->probe.sent_mono -= f->h->probing.timeout_ms + 1;
    gone->probe.sent_mono -= f->h->probing.timeout_ms + 1;
    gone->alive = 0; /* lost or left: its probe goes with it, no blame */
    hub__probe_fleet(f->h);
    assert_non_null(strstr(quiet->quarantined, "probe unanswered within 30 s"));
    assert_string_equal(gone->quarantined, "");
    assert_int_equal(gone->probe.id, 0);
    assert_int_equal(gone->probe.failures, 0);
    /* back: asked again */
    gone->alive = 1;
    hub__probe_fleet(f->h);
    assert_true(gone->probe.id != 0);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_operator_clears_a_quarantine(void **state)
{
    hubfix *f = *state;
    hub_site *s = enrolled(f, "dc-2", CLASS_DC, 8);
    enrolled(f, "dc-3", CLASS_DC, 8);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__quarantine(f->h, s, "forged results");
    assert_int_equal(hub__commit(f->h), OP_OK);
    hubfix_reopen(f);
    f->h->probing.on = 1;
    f->h->probing.core_rate = 1e6;
    assert_int_equal(hub__probe_setup(f->h), OP_OK);
    s = hub__find_site(f->h, "dc-2");
    assert_string_equal(s->quarantined, "forged results");
    assert_string_equal(hub__site_held(f->h, s), "quarantined: forged results");
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    assert_string_equal(jsonx_str(site_row(resp, "dc-2"), "quarantined"), "forged results");
    cJSON_Delete(resp);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    resp = hubfix_request(f, "{\"cmd\":\"site_clear\",\"site\":\"dc-3\"}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    assert_non_null(strstr(jsonx_str(resp, "error"), "not quarantined"));
    cJSON_Delete(resp);
    resp = hubfix_request(f, "{\"cmd\":\"site_clear\",\"site\":\"nope\"}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    cJSON_Delete(resp);
    resp = hubfix_request(f, "{\"cmd\":\"site_clear\",\"site\":\"dc-2\"}");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    cJSON_Delete(resp);
    assert_string_equal(s->quarantined, "");
    assert_string_equal(hub__site_held(f->h, s), "its claims are not checked yet");
    assert_int_equal(hub__commit(f->h), OP_OK);
    hubfix_reopen(f);
    assert_string_equal(hub__find_site(f->h, "dc-2")->quarantined, "");
}

static void test_rollback_forgets_what_the_batch_did(void **state)
{
    hubfix *f = *state;
    hub_site *s = enrolled(f, "pod-9", CLASS_POD, 4);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    assert_true(s->probe.id != 0);
    f->h->store_failed = 1; /* the batch cannot be stored: its challenge never goes out */
    assert_int_not_equal(hub__commit(f->h), OP_OK);
    assert_int_equal(s->probe.id, 0);
    /* sent again; a verdict in a batch that is lost is not kept either */
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    assert_int_equal(hub__commit(f->h), OP_OK);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    answer(f, s, 600, 500);
    assert_true(s->probe.checked_at_ms != 0);
    hub__quarantine(f->h, s, "for the test");
    f->h->store_failed = 1;
    assert_int_not_equal(hub__commit(f->h), OP_OK);
    assert_int_equal(s->probe.checked_at_ms, 0);
    assert_string_equal(s->probe.verdict, "");
    assert_string_equal(s->quarantined, "");
}

static void test_growing_claim_is_checked_again(void **state)
{
    hubfix *f = *state;
    hub_site *s = enrolled(f, "pod-2", CLASS_POD, 2);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__probe_fleet(f->h);
    answer(f, s, 600, 500);
    assert_null(hub__site_held(f->h, s));
    hub__probe_fleet(f->h);
    assert_int_equal(s->probe.id, 0);
    cJSON *claims = cJSON_Parse("{\"cores\":32}");
    hub__update_capacity(f->h, s, claims);
    cJSON_Delete(claims);
    hub__probe_fleet(f->h);
    assert_true(s->probe.id != 0);
    assert_int_equal(s->probe.free_claimed, 32);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_sites_view_shows_delivery(void **state)
{
    hubfix *f = *state;
    f->h->probing.on = 0; /* placement without probes here */
    hubfix_site(f, "dc-7", CLASS_DC, 4, 400, 40);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"resources\":{\"cores\":2}}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    char text[200];
    snprintf(text, sizeof text,
             "{\"job\":%lld,\"attempt\":1,\"exit_code\":0,\"cpu_seconds\":1.5,\"wall_ms\":900}",
             (long long)id);
    cJSON *item = cJSON_Parse(text);
    assert_int_equal(hub__apply_result(f->h, hub__find_site(f->h, "dc-7"), item, 0), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(hub__commit(f->h), OP_OK);
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(site_row(resp, "dc-7"), "delivered");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(d, "results")->valueint, 1);
    assert_true(cJSON_GetObjectItemCaseSensitive(d, "cpu_seconds")->valuedouble == 1.5);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(d, "wall_ms")->valueint, 900);
    assert_true(cJSON_GetObjectItemCaseSensitive(d, "observed_ms")->valuedouble >= 0);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(d, "core_seconds"));
    cJSON_Delete(resp);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_held_until_checked_then_ok),
        HUB_TEST(test_overclaimer_ranked_down_then_quarantined),
        HUB_TEST(test_forged_answers_quarantine_at_once),
        HUB_TEST(test_unanswered_quarantines_gone_does_not),
        HUB_TEST(test_operator_clears_a_quarantine),
        HUB_TEST(test_rollback_forgets_what_the_batch_did),
        HUB_TEST(test_growing_claim_is_checked_again),
        HUB_TEST(test_sites_view_shows_delivery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
