/*
 * The hub's operator API, without processes: commands come from one table;
 * an unknown or missing command is an error answer; a command's audit kind
 * is recorded when it succeeds; `stats` answers counters, not job records;
 * a submission naming an origin that is not enrolled is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "core/jobspec.h"

#include <stdio.h>
#include <string.h>

static const char *error_of(const cJSON *resp)
{
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    return jsonx_str(resp, "error");
}

static void test_unknown_and_missing_commands_are_errors(void **state)
{
    hubfix *f = *state;
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"frobnicate\",\"rid\":\"r1\"}");
    assert_string_equal(error_of(resp), "unknown command 'frobnicate'");
    assert_string_equal(jsonx_str(resp, "rid"), "r1");
    cJSON_Delete(resp);
    resp = hubfix_request(f, "{\"rid\":\"r2\"}");
    assert_string_equal(error_of(resp), "request has no 'cmd'");
    cJSON_Delete(resp);
}

static void test_origin_must_be_enrolled(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    cJSON *resp = hubfix_request(
        f, "{\"cmd\":\"submit\",\"spec\":{\"kind\":\"noop\",\"origin\":\"nowhere\"}}");
    assert_string_equal(error_of(resp), "origin site nowhere is not enrolled");
    cJSON_Delete(resp);
    /* in a batch: the whole batch is refused, naming the spec */
    resp = hubfix_request(f, "{\"cmd\":\"submit\",\"specs\":[{\"kind\":\"noop\",\"origin\":"
                             "\"dc-1\"},{\"kind\":\"noop\",\"origin\":\"nowhere\"}]}");
    assert_string_equal(error_of(resp), "specs[1]: origin site nowhere is not enrolled");
    cJSON_Delete(resp);
    resp = hubfix_request(f, "{\"cmd\":\"jobs\"}");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "jobs")), 0);
    cJSON_Delete(resp);
    hubfix_submit(f, "{\"kind\":\"noop\",\"origin\":\"dc-1\"}");
}

static void test_stats_are_counters_not_records(void **state)
{
    hubfix *f = *state;
    hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    for (int i = 0; i < 3; i++)
        hubfix_submit(f, "{\"kind\":\"noop\"}");
    assert_int_equal(hub__commit(f->h), OP_OK);
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"stats\"}");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    assert_null(cJSON_GetObjectItemCaseSensitive(data, "jobs"));
    int64_t queued = 0, submitted = 0;
    assert_int_equal(
        jsonx_int(cJSON_GetObjectItemCaseSensitive(data, "counts"), "queued", 0, 100, &queued),
        OP_OK);
    assert_int_equal(queued, 3);
    assert_int_equal(jsonx_int(data, "jobs_submitted", 0, 100, &submitted), OP_OK);
    assert_int_equal(submitted, 3);
    for (const char *const *k =
             (const char *const[]){"messages", "results", "per_site", "applied_results",
                                   "bound_hits", "commits", "commit_ms_avg", NULL};
         *k; k++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(data, *k));
    cJSON_Delete(resp);
}

static void test_token_command_records_its_audit_kind(void **state)
{
    hubfix *f = *state;
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"token\",\"class\":\"pod\",\"site\":\"pod-1\"}");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    cJSON_Delete(resp);
    resp = hubfix_request(f, "{\"cmd\":\"token\",\"class\":\"boat\"}");
    assert_string_equal(error_of(resp), "--class must be pod, car or dc");
    cJSON_Delete(resp);
    resp = hubfix_request(f, "{\"cmd\":\"audit_entries\",\"kind\":\"token\"}");
    const cJSON *entries =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "entries");
    assert_int_equal(cJSON_GetArraySize(entries), 1); /* the refused one left no record */
    assert_string_equal(jsonx_str(cJSON_GetArrayItem(entries, 0), "subject"), "op:op-test");
    cJSON_Delete(resp);
}

/*
 * audit_entries pages from "start". The request arrives in a signed envelope
 * whose "from" is the operator's id, as here: a page asked for by a field of
 * that name always started at entry 0 (audit tail printed the first 50 entries
 * every second).
 */
static void test_audit_entries_page_from_start(void **state)
{
    hubfix *f = *state;
    for (int i = 0; i < 4; i++) /* each token created is an audit entry */
        cJSON_Delete(hubfix_request(f, "{\"cmd\":\"token\",\"class\":\"pod\",\"site\":\"pod-1\"}"));
    cJSON *resp = hubfix_request(
        f, "{\"cmd\":\"audit_entries\",\"from\":\"op-test\",\"start\":2,\"limit\":2}");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(data, "entries");
    assert_int_equal(cJSON_GetArraySize(entries), 2);
    int64_t first = -1;
    assert_int_equal(jsonx_int(cJSON_GetArrayItem(entries, 0), "i", 0, INT64_MAX, &first), OP_OK);
    assert_int_equal(first, 2);
    int64_t size = 0;
    assert_int_equal(jsonx_int(data, "size", 0, INT64_MAX, &size), OP_OK);
    assert_true(size >= 4);
    cJSON_Delete(resp);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_unknown_and_missing_commands_are_errors),
        HUB_TEST(test_origin_must_be_enrolled),
        HUB_TEST(test_stats_are_counters_not_records),
        HUB_TEST(test_audit_entries_page_from_start),
        HUB_TEST(test_token_command_records_its_audit_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
