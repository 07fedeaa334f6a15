/*
 * The hub's replay protection and intake, without processes: an operator's
 * request is refused when its nonce comes again, also after a restart;
 * requests with unordered nonces (many CLI processes on one key) all pass;
 * a command that changes something runs once per request id (a resubmitted
 * submit makes no second job, a replayed token create mints no second
 * token); oversize messages and forgeries beyond a sender's budget are
 * dropped before their signature is checked.
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

#define OP_ID "op-replay"

/* The operator key the tests sign with, authorized on the hub in f (again after a reopen). */
static void authorize(hubfix *f, ident *key)
{
    hubfix_ident(key, OP_ID, 77);
    hub_operator *op = &f->h->operators[0];
    snprintf(op->id, sizeof op->id, "%s", OP_ID);
    memcpy(op->pk, key->pk, 32);
    f->h->n_operators = 1;
    assert_int_equal(hub__replay_load(f->h), OP_OK);
}

/* A signed request with nonce seq and timestamp ts_ms (caller frees; len and sig set). */
static char *request(hubfix *f, const ident *key, const char *json, uint64_t seq, int64_t ts_ms,
                     size_t *len, char sig[129])
{
    char topic[PROTO_TOPIC_MAX];
    assert_int_equal(proto_topic(topic, sizeof topic, "op", OP_ID, "req"), OP_OK);
    cJSON *body = cJSON_Parse(json);
    assert_non_null(body);
    char *payload = msg_encode(body, key->id, "req", seq, ts_ms, len);
    cJSON_Delete(body);
    return hubfix_wrap(f, key, topic, payload, len, sig);
}

/*
 * Delivers a payload as the bus would, commits, and returns the answer it
 * queued (caller frees), or NULL when it was dropped.
 */
static cJSON *deliver(hubfix *f, const char *payload, size_t len, const char *sig)
{
    char topic[PROTO_TOPIC_MAX];
    assert_int_equal(proto_topic(topic, sizeof topic, "op", OP_ID, "req"), OP_OK);
    hub__on_message(f->h, topic, payload, len, OP_ID, sig);
    cJSON *answer = NULL;
    for (hub_reply *r = f->h->replies; r; r = r->next)
        if (strstr(r->topic, OP_ID)) answer = cJSON_Duplicate(r->body, 1);
    assert_int_equal(hub__commit(f->h), OP_OK);
    hub__discard_outgoing(f->h);
    return answer;
}

/* Signs and delivers one request; its answer or NULL. */
static cJSON *ask(hubfix *f, const ident *key, const char *json, uint64_t seq)
{
    size_t len;
    char sig[129];
    char *payload = request(f, key, json, seq, os_now_ms(), &len, sig);
    cJSON *answer = deliver(f, payload, len, sig);
    free(payload);
    return answer;
}

static int64_t count_jobs(hubfix *f)
{
    int64_t n = 0;
    assert_int_equal(hubdb_jobs_count(f->h->db, JOB_QUEUED, &n), OP_OK);
    return n;
}

static void test_replayed_request_refused_also_after_restart(void **state)
{
    hubfix *f = *state;
    ident key;
    authorize(f, &key);
    size_t len;
    char sig[129];
    char *payload =
        request(f, &key, "{\"cmd\":\"stats\",\"rid\":\"a\"}", 4242, os_now_ms(), &len, sig);
    cJSON *first = deliver(f, payload, len, sig);
    assert_non_null(first);
    cJSON_Delete(first);
    assert_null(deliver(f, payload, len, sig));
    assert_int_equal(f->h->msg.replayed, 1);
    hubfix_reopen(f);
    authorize(f, &key);
    assert_null(deliver(f, payload, len, sig));
    assert_int_equal(f->h->msg.replayed, 1);
    free(payload);
}

static void test_unordered_nonces_all_answered(void **state)
{
    hubfix *f = *state;
    ident key;
    authorize(f, &key);
    /* twenty CLI processes on one key: random starts, in no order */
    const uint64_t nonces[] = {900000, 5, 1u << 30, 77, 899999, 6, 123456789, 1, 40, 41};
    for (size_t i = 0; i < sizeof nonces / sizeof nonces[0]; i++) {
        cJSON *answer = ask(f, &key, "{\"cmd\":\"stats\",\"rid\":\"s\"}", nonces[i]);
        assert_non_null(answer);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(answer, "ok")));
        cJSON_Delete(answer);
    }
    assert_int_equal(f->h->msg.replayed, 0);
}

static void test_submit_runs_once_per_request_id(void **state)
{
    hubfix *f = *state;
    ident key;
    authorize(f, &key);
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    const char *req =
        "{\"cmd\":\"submit\",\"rid\":\"r-1\",\"once\":true,\"spec\":{\"kind\":\"noop\"}}";
    cJSON *first = ask(f, &key, req, 10);
    assert_non_null(first);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(first, "ok")));
    assert_int_equal(count_jobs(f), 1);
    /* the same request again under a new nonce (a retry), then after a restart */
    cJSON *again = ask(f, &key, req, 11);
    assert_non_null(again);
    char *a = cJSON_PrintUnformatted(first), *b = cJSON_PrintUnformatted(again);
    assert_string_equal(a, b);
    free(b);
    cJSON_Delete(again);
    hubfix_reopen(f);
    authorize(f, &key);
    again = ask(f, &key, req, 12);
    b = cJSON_PrintUnformatted(again);
    assert_string_equal(a, b);
    assert_int_equal(count_jobs(f), 1);
    /* a different request under the same rid is a new request */
    cJSON *other = ask(f, &key,
                       "{\"cmd\":\"submit\",\"rid\":\"r-1\",\"once\":true,\"spec\":{\"kind\":"
                       "\"noop\",\"name\":\"b\"}}",
                       13);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(other, "ok")));
    assert_int_equal(count_jobs(f), 2);
    free(a);
    free(b);
    cJSON_Delete(first);
    cJSON_Delete(again);
    cJSON_Delete(other);
}

static void test_without_once_a_reused_rid_runs_again(void **state)
{
    hubfix *f = *state;
    ident key;
    authorize(f, &key);
    const char *req = "{\"cmd\":\"submit\",\"rid\":\"r0\",\"spec\":{\"kind\":\"noop\"}}";
    cJSON *first = ask(f, &key, req, 50), *second = ask(f, &key, req, 51);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(second, "ok")));
    assert_int_equal(count_jobs(f), 2);
    cJSON_Delete(first);
    cJSON_Delete(second);
}

static void test_token_create_mints_once(void **state)
{
    hubfix *f = *state;
    ident key;
    authorize(f, &key);
    const char *req =
        "{\"cmd\":\"token\",\"rid\":\"t-1\",\"once\":true,\"class\":\"pod\",\"site\":\"pod-1\"}";
    cJSON *first = ask(f, &key, req, 20);
    cJSON *again = ask(f, &key, req, 21);
    const char *t1 = jsonx_str(cJSON_GetObjectItemCaseSensitive(first, "data"), "sealed_token");
    const char *t2 = jsonx_str(cJSON_GetObjectItemCaseSensitive(again, "data"), "sealed_token");
    assert_non_null(t1);
    assert_non_null(t2);
    assert_string_equal(t1, t2);
    cJSON_Delete(first);
    cJSON_Delete(again);
}

static void test_floor_survives_restart(void **state)
{
    hubfix *f = *state;
    ident key;
    authorize(f, &key);
    /* a request as old as the skew allows, then pruning: the floor rises past it */
    int64_t old_ts = os_now_ms() - f->h->clock_skew_ms + 500;
    size_t len;
    char sig[129];
    char *payload = request(f, &key, "{\"cmd\":\"stats\",\"rid\":\"o\"}", 31, old_ts, &len, sig);
    cJSON *answer = deliver(f, payload, len, sig);
    assert_non_null(answer);
    cJSON_Delete(answer);
    f->h->clock_skew_ms -= 1000; /* as if a second had passed */
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__replay_prune(f->h);
    assert_int_equal(hub__commit(f->h), OP_OK);
    assert_true(f->h->operators[0].nonces.floor_ms >= old_ts);
    int64_t skew = f->h->clock_skew_ms;
    hubfix_reopen(f);
    authorize(f, &key);
    f->h->clock_skew_ms = skew + 1000;
    assert_true(f->h->operators[0].nonces.floor_ms >= old_ts);
    assert_null(deliver(f, payload, len, sig));
    free(payload);
}

static void test_oversize_state_dropped_before_signature(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    size_t len = 6 * 1000 * 1000;
    char *junk = malloc(len);
    assert_non_null(junk);
    memset(junk, 'x', len);
    char zero_sig[129];
    memset(zero_sig, '0', 128);
    zero_sig[128] = '\0';
    hub__on_message(f->h, "outpost/v1/site/dc-1/state", junk, len, "dc-1", zero_sig);
    assert_int_equal(f->h->msg.oversize, 1);
    assert_int_equal(f->h->msg.forged, 0); /* never got as far as the signature */
    free(junk);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_forgeries_spend_the_budget_genuine_do_not(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    char zero_sig[129];
    memset(zero_sig, '0', 128);
    zero_sig[128] = '\0';
    const char *junk = "{\"from\":\"dc-1\"}";
    for (int i = 0; i < 3000; i++)
        hub__on_message(f->h, "outpost/v1/site/dc-1/state", junk, strlen(junk), "dc-1", zero_sig);
    assert_true(f->h->msg.throttled > 0);
    assert_true(f->h->msg.forged < 3000);
    assert_int_equal(f->h->msg.forged + f->h->msg.throttled, 3000);
    assert_int_equal(hub__commit(f->h), OP_OK);
    hub__discard_outgoing(f->h);
    /* unknown senders share one smaller budget */
    uint64_t before = f->h->msg.throttled;
    for (int i = 0; i < 1000; i++)
        hub__on_message(f->h, "outpost/v1/site/ghost/state", junk, strlen(junk), "ghost", zero_sig);
    assert_true(f->h->msg.throttled > before);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_genuine_sender_never_throttled(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    for (int i = 0; i < 3000; i++) {
        cJSON *body = cJSON_CreateObject();
        jsonx_add_int(body, "cores", 4);
        char topic[] = "outpost/v1/site/dc-1/state", sig[129];
        size_t len;
        char *payload =
            hubfix_signed(f, hubfix_site_key(f, "dc-1"), topic, body, "state", &len, sig);
        hub__on_message(f->h, topic, payload, len, "dc-1", sig);
        free(payload);
        cJSON_Delete(body);
    }
    assert_int_equal(f->h->msg.throttled, 0);
    assert_int_equal(hub__commit(f->h), OP_OK);
    hub__discard_outgoing(f->h);
}

static void test_own_seq_kept_across_restarts(void **state)
{
    hubfix *f = *state;
    uint64_t seq = 1;
    assert_int_equal(hubdb_own_seq_get(f->h->db, &seq), OP_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(hubdb_own_seq_set(f->h->db, 1764500000000000ULL + 7), OP_OK);
    hubfix_reopen(f);
    assert_int_equal(hubdb_own_seq_get(f->h->db, &seq), OP_OK);
    assert_int_equal(seq, 1764500000000000ULL + 7);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_replayed_request_refused_also_after_restart),
        HUB_TEST(test_unordered_nonces_all_answered),
        HUB_TEST(test_submit_runs_once_per_request_id),
        HUB_TEST(test_without_once_a_reused_rid_runs_again),
        HUB_TEST(test_token_create_mints_once),
        HUB_TEST(test_floor_survives_restart),
        HUB_TEST(test_oversize_state_dropped_before_signature),
        HUB_TEST(test_forgeries_spend_the_budget_genuine_do_not),
        HUB_TEST(test_genuine_sender_never_throttled),
        HUB_TEST(test_own_seq_kept_across_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
