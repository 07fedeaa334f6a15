/*
 * The hub's model registry, without processes: uploads in order (a piece
 * out of order answered with where to go on, bytes that do not hash to
 * their name refused), versions signed and audited, a job's model resolved
 * into its spec or refused by its data class, fetches answered by data
 * class (a site-private model to its origin only, a confidential one to a
 * site running a job that uses it), peers named from what heartbeats say is
 * held, chunks served, and placement preferring a holder, saying so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "core/artifact.h"
#include "core/jobstate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE (ARTIFACT_CHUNK_BYTES + 5000) /* two chunks */

static uint8_t *artifact_bytes(char sha[65])
{
    uint8_t *data = malloc(SIZE), raw[32];
    assert_non_null(data);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 13 + i / 1000);
    crypto_hash_sha256(raw, data, SIZE);
    util_hex(raw, 32, sha);
    return data;
}

/* A model_upload request of data[offset, offset + len) as the CLI sends it. */
static cJSON *upload(hubfix *f, const char *sha, const uint8_t *data, int64_t offset, size_t len)
{
    cJSON *req = cJSON_CreateObject();
    char *b64 = util_b64_encode(data + offset, len);
    cJSON_AddStringToObject(req, "cmd", "model_upload");
    cJSON_AddStringToObject(req, "sha256", sha);
    jsonx_add_int(req, "size", SIZE);
    jsonx_add_int(req, "offset", offset);
    cJSON_AddStringToObject(req, "data", b64);
    free(b64);
    cJSON *resp = hub__op_dispatch(f->h, req, "op-test");
    cJSON_Delete(req);
    return resp;
}

static const cJSON *data_of(const cJSON *resp)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")))
        fail_msg("refused: %s", jsonx_str(resp, "error"));
    return cJSON_GetObjectItemCaseSensitive(resp, "data");
}

/* Uploads the artifact whole and puts it as name with extra fields; returns its sha. */
static void put_model(hubfix *f, const char *name, const char *extra, char sha[65])
{
    uint8_t *data = artifact_bytes(sha);
    cJSON *r = upload(f, sha, data, 0, SIZE);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(data_of(r), "complete")));
    cJSON_Delete(r);
    free(data);
    char req[512];
    snprintf(req, sizeof req, "{\"cmd\":\"model_put\",\"name\":\"%s\",\"sha256\":\"%s\"%s}", name,
             sha, extra);
    r = hubfix_request(f, req);
    data_of(r);
    cJSON_Delete(r);
}

static void test_upload_in_order_and_checked(void **state)
{
    hubfix *f = *state;
    char sha[65];
    uint8_t *data = artifact_bytes(sha);
    /* the second piece first: the hub says where to start */
    cJSON *r = upload(f, sha, data, ARTIFACT_CHUNK_BYTES, 5000);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(data_of(r), "next_offset")->valuedouble, 0);
    cJSON_Delete(r);
    /* a piece that is not whole chunks (but the last) is refused */
    r = upload(f, sha, data, 0, 1000);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    cJSON_Delete(r);
    r = upload(f, sha, data, 0, ARTIFACT_CHUNK_BYTES);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(data_of(r), "next_offset")->valuedouble,
                     ARTIFACT_CHUNK_BYTES);
    cJSON_Delete(r);
    /* the last piece altered: the bytes do not hash to their name, nothing is kept */
    data[SIZE - 1] ^= 1;
    r = upload(f, sha, data, ARTIFACT_CHUNK_BYTES, 5000);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    assert_non_null(strstr(jsonx_str(r, "error"), "hash to"));
    cJSON_Delete(r);
    assert_int_equal(hubdb_artifact_get(f->h->db, sha, NULL, NULL, NULL), OP_ENOTFOUND);
    /* no artifact, no version */
    char req[256];
    snprintf(req, sizeof req, "{\"cmd\":\"model_put\",\"name\":\"eta\",\"sha256\":\"%s\"}", sha);
    r = hubfix_request(f, req);
    assert_non_null(strstr(jsonx_str(r, "error"), "upload it first"));
    cJSON_Delete(r);
    free(data);
}

static void test_versions_signed_and_audited(void **state)
{
    hubfix *f = *state;
    char sha[65];
    put_model(f, "eta", ",\"lineage\":{\"rows\":12,\"metrics\":{\"mae\":3.5}}", sha);
    put_model(f, "eta", ",\"parent\":1", sha);
    cJSON *r = hubfix_request(f, "{\"cmd\":\"model_show\",\"name\":\"eta\",\"version\":1}");
    const cJSON *d = data_of(r);
    assert_int_equal(artifact_verify(f->h->identity.pk, ARTIFACT_RECORD_DOMAIN,
                                     jsonx_str(d, "record"), jsonx_str(d, "sig")),
                     OP_OK);
    assert_non_null(strstr(jsonx_str(d, "record"), "\"mae\":3.5"));
    cJSON_Delete(r);
    r = hubfix_request(f, "{\"cmd\":\"model_show\",\"name\":\"eta\"}");
    assert_non_null(strstr(jsonx_str(data_of(r), "record"), "\"version\":2"));
    assert_non_null(strstr(jsonx_str(data_of(r), "record"), "\"parent\":1"));
    cJSON_Delete(r);
    /* a parent that does not exist, a site-private model without its origin */
    r = hubfix_request(f, "{\"cmd\":\"model_put\",\"name\":\"eta\",\"sha256\":"
                          "\"0000000000000000000000000000000000000000000000000000000000000000\"}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    cJSON_Delete(r);
    char req[256];
    snprintf(req, sizeof req,
             "{\"cmd\":\"model_put\",\"name\":\"eta\",\"sha256\":\"%s\",\"parent\":9}", sha);
    r = hubfix_request(f, req);
    assert_non_null(strstr(jsonx_str(r, "error"), "no version 9"));
    cJSON_Delete(r);
    snprintf(req, sizeof req,
             "{\"cmd\":\"model_put\",\"name\":\"eta\",\"sha256\":\"%s\","
             "\"data_class\":\"site-private\"}",
             sha);
    r = hubfix_request(f, req);
    assert_non_null(strstr(jsonx_str(r, "error"), "origin"));
    cJSON_Delete(r);
    char *text = NULL;
    uint8_t leaf[32];
    int puts = 0;
    for (uint64_t i = 0; i < auditlog_size(f->h->audit); i++) {
        assert_int_equal(auditlog_entry(f->h->audit, i, &text, leaf), OP_OK);
        puts += strstr(text, "model-put") && strstr(text, "model:eta") ? 1 : 0;
        free(text);
    }
    assert_int_equal(puts, 2);
}

static void test_job_model_resolved_or_refused_by_class(void **state)
{
    hubfix *f = *state;
    char sha[65], detail[512];
    hubfix_site(f, "wh-1", CLASS_DC, 4, 400, 10);
    put_model(f, "pub", "", sha);
    put_model(f, "own", ",\"data_class\":\"site-private\",\"origin\":\"wh-1\"", sha);
    put_model(f, "sec", ",\"data_class\":\"confidential\"", sha);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"model\":\"pub\"}");
    cJSON *r = hubfix_request(f, "{\"cmd\":\"job\",\"id\":1}");
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(data_of(r), "job");
    assert_string_equal(jsonx_str(job, "model"), "pub@1");
    assert_string_equal(jsonx_str(job, "model_sha256"), sha);
    char *text = cJSON_PrintUnformatted(r);
    snprintf(detail, sizeof detail, "pub@1 sha256 %s", sha); /* its history says so, audited */
    assert_non_null(strstr(text, detail));
    free(text);
    cJSON_Delete(r);
    assert_true(id > 0);
    static const struct {
        const char *spec, *error;
    } refused[] = {
        {"{\"kind\":\"noop\",\"model\":\"own\"}", "site-private to wh-1"},
        {"{\"kind\":\"noop\",\"model\":\"own\",\"data_class\":\"confidential\"}",
         "site-private to wh-1"},
        {"{\"kind\":\"noop\",\"model\":\"sec\"}", "confidential"},
        {"{\"kind\":\"noop\",\"model\":\"pub@7\"}", "no pub"},
        {"{\"kind\":\"noop\",\"model\":\"nope\"}", "no nope"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char req[512];
        snprintf(req, sizeof req, "{\"cmd\":\"submit\",\"spec\":%s}", refused[i].spec);
        r = hubfix_request(f, req);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
        if (!strstr(jsonx_str(r, "error"), refused[i].error))
            fail_msg("%s: %s", refused[i].spec, jsonx_str(r, "error"));
        cJSON_Delete(r);
    }
    hubfix_submit(f, "{\"kind\":\"noop\",\"model\":\"own\",\"data_class\":\"site-private\","
                     "\"origin\":\"wh-1\"}");
    hubfix_submit(f, "{\"kind\":\"noop\",\"model\":\"sec\",\"data_class\":\"confidential\"}");
}

/* The replies queued for a site in this transaction, of type type; the first one's body. */
static const cJSON *reply_to(hubfix *f, const char *site, const char *type, int *count)
{
    char topic[PROTO_TOPIC_MAX];
    const cJSON *first = NULL;
    proto_topic(topic, sizeof topic, "site", site, "inbox");
    *count = 0;
    for (hub_reply *r = f->h->replies; r; r = r->next)
        if (!strcmp(r->topic, topic) && !strcmp(r->type, type)) {
            if (!first) first = r->body;
            (*count)++;
        }
    return first;
}

static void fetch(hubfix *f, const char *site, const char *sha, const char *want)
{
    char text[256];
    snprintf(text, sizeof text, "{\"sha256\":\"%s\",\"manifest\":%s%s%s}", sha,
             want ? "false" : "true", want ? ",\"want\":" : "", want ? want : "");
    cJSON *body = cJSON_Parse(text);
    hubfix_site_says(f, site, "event", "fetch", body);
    cJSON_Delete(body);
}

static void test_fetch_answered_by_data_class(void **state)
{
    hubfix *f = *state;
    char pub[65], own[65];
    int n;
    hubfix_site(f, "wh-1", CLASS_DC, 4, 400, 10);
    hubfix_site(f, "wh-2", CLASS_DC, 4, 400, 10);
    put_model(f, "own", ",\"data_class\":\"site-private\",\"origin\":\"wh-1\"", own);
    /* the same bytes only as a site-private model: wh-2 may not have them */
    fetch(f, "wh-2", own, NULL);
    const cJSON *b = reply_to(f, "wh-2", "fetch_refused", &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(jsonx_str(b, "reason"), "site-private to wh-1"));
    assert_null(reply_to(f, "wh-2", "manifest", &n));
    fetch(f, "wh-1", own, NULL);
    b = reply_to(f, "wh-1", "manifest", &n);
    assert_non_null(b);
    artifact_manifest m;
    char err[200];
    assert_int_equal(artifact_manifest_open(jsonx_str(b, "manifest"), jsonx_str(b, "sig"),
                                            f->h->identity.pk, &m, err, sizeof err),
                     OP_OK);
    assert_int_equal(m.n_chunks, 2);
    artifact_manifest_clear(&m);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "hub")));
    /* chunks: each one a message, the bytes the manifest names */
    hub__discard_outgoing(f->h);
    fetch(f, "wh-1", own, "[1, 0, 99]");
    reply_to(f, "wh-1", "chunk", &n);
    assert_int_equal(n, 2);
    /* a public model: anyone enrolled; unknown bytes: refused */
    hub__discard_outgoing(f->h);
    put_model(f, "pub", "", pub);
    fetch(f, "wh-2", pub, NULL);
    assert_non_null(reply_to(f, "wh-2", "manifest", &n));
    fetch(f, "wh-2", "1111111111111111111111111111111111111111111111111111111111111111", NULL);
    assert_non_null(reply_to(f, "wh-2", "fetch_refused", &n));
    hub__discard_outgoing(f->h);
}

static void test_confidential_only_to_a_site_running_it(void **state)
{
    hubfix *f = *state;
    char sha[65];
    int n;
    hubfix_site(f, "wh-1", CLASS_DC, 4, 400, 10);
    hubfix_site(f, "wh-2", CLASS_DC, 4, 400, 10);
    put_model(f, "sec", ",\"data_class\":\"confidential\"", sha);
    fetch(f, "wh-1", sha, NULL);
    assert_non_null(reply_to(f, "wh-1", "fetch_refused", &n));
    hub__discard_outgoing(f->h);
    hubfix_submit(f, "{\"kind\":\"noop\",\"model\":\"sec\",\"data_class\":\"confidential\","
                     "\"resources\":{\"cores\":4}}");
    hub__place_pass(f->h);
    hubdb_job job;
    assert_int_equal(hubdb_job_get(f->h->db, 1, &job), OP_OK);
    fetch(f, job.site, sha, NULL);
    assert_non_null(reply_to(f, job.site, "manifest", &n));
    const char *other = strcmp(job.site, "wh-1") ? "wh-1" : "wh-2";
    fetch(f, other, sha, NULL);
    assert_non_null(reply_to(f, other, "fetch_refused", &n));
    hub__discard_outgoing(f->h);
}

/* A heartbeat saying the site holds sha whole. */
static void holds(hubfix *f, const char *site, const char *sha)
{
    char text[256];
    snprintf(text, sizeof text, "{\"artifacts\":{\"held\":[\"%s\",\"junk\"],\"served_bytes\":0}}",
             sha);
    cJSON *body = cJSON_Parse(text);
    hubfix_site_says(f, site, "state", "state", body);
    cJSON_Delete(body);
}

static void test_peers_named_and_told_to_serve(void **state)
{
    hubfix *f = *state;
    char sha[65];
    int n;
    hubfix_site(f, "wh-1", CLASS_DC, 4, 400, 10);
    hubfix_site(f, "wh-2", CLASS_DC, 4, 400, 10);
    hubfix_site(f, "wh-3", CLASS_DC, 4, 400, 10);
    put_model(f, "eta", "", sha);
    holds(f, "wh-1", sha);
    assert_int_equal(f->h->sites[0].n_holds, 1); /* the junk entry is not one */
    hub__discard_outgoing(f->h);
    fetch(f, "wh-2", sha, NULL);
    const cJSON *b = reply_to(f, "wh-2", "manifest", &n);
    const cJSON *peers = cJSON_GetObjectItemCaseSensitive(b, "peers");
    assert_int_equal(cJSON_GetArraySize(peers), 1);
    assert_string_equal(jsonx_str(cJSON_GetArrayItem(peers, 0), "site"), "wh-1");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "hub")));
    const cJSON *grant = reply_to(f, "wh-1", "serve", &n);
    assert_int_equal(n, 1);
    assert_string_equal(jsonx_str(grant, "to"), "wh-2");
    assert_string_equal(jsonx_str(grant, "pk"), hubfix_site_key(f, "wh-2")->pk_hex);
    /* that peer failed: the next answer names no peer and lets the hub serve */
    hub__discard_outgoing(f->h);
    char text[256];
    snprintf(text, sizeof text, "{\"sha256\":\"%s\",\"manifest\":true,\"failed_peers\":[\"wh-1\"]}",
             sha);
    cJSON *body = cJSON_Parse(text);
    hubfix_site_says(f, "wh-2", "event", "fetch", body);
    cJSON_Delete(body);
    b = reply_to(f, "wh-2", "manifest", &n);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "peers")), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "hub")));
    hub__discard_outgoing(f->h);
}

static void test_hub_streams_bounded_the_others_pull_from_earlier_fetchers(void **state)
{
    hubfix *f = *state;
    char sha[65], id[16];
    int n, served = 0;
    f->h->artifact_peers = 1;
    f->h->artifact_hub_streams = 2;
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "wh-%d", i);
        hubfix_site(f, id, CLASS_DC, 4, 400, 10);
    }
    put_model(f, "eta", "", sha);
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "wh-%d", i);
        fetch(f, id, sha, NULL);
        const cJSON *b = reply_to(f, id, "manifest", &n);
        served += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "hub"));
        /* the ones the hub does not serve pull from those that asked before them */
        const cJSON *peers = cJSON_GetObjectItemCaseSensitive(b, "peers");
        assert_int_equal(cJSON_GetArraySize(peers), i < 2 ? 0 : i);
        if (i >= 2) assert_null(cJSON_GetObjectItemCaseSensitive(b, "wait_ms"));
        /* the least loaded first: wh-2 was named to nobody yet, wh-0 and wh-1 to wh-2 */
        if (i == 3) assert_string_equal(jsonx_str(cJSON_GetArrayItem(peers, 0), "site"), "wh-2");
    }
    assert_int_equal(served, 2);
    /* with peers off the hub serves everyone */
    hub__discard_outgoing(f->h);
    f->h->artifact_peers = 0;
    snprintf(id, sizeof id, "wh-3");
    fetch(f, id, sha, "[0]");
    reply_to(f, id, "chunk", &n);
    assert_int_equal(n, 1);
    hub__discard_outgoing(f->h);
}

static void test_placement_prefers_the_holder_and_says_so(void **state)
{
    hubfix *f = *state;
    char sha[65], reason[256], explanation[2048];
    hubfix_site(f, "wh-1", CLASS_DC, 4, 400, 10);
    hubfix_site(f, "wh-2", CLASS_DC, 8, 800, 10); /* emptier: it would win without the model */
    put_model(f, "eta", "", sha);
    holds(f, "wh-1", sha);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\",\"model\":\"eta\"}");
    hub__place_pass(f->h);
    hubfix_job_text(f, id, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "placed on wh-1"));
    assert_non_null(strstr(explanation, "holds model eta@1"));
    int64_t plain = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    hubfix_job_text(f, plain, reason, sizeof reason, explanation, sizeof explanation);
    assert_non_null(strstr(explanation, "placed on wh-2"));
    assert_null(strstr(explanation, "holds model"));
    hub__discard_outgoing(f->h);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_upload_in_order_and_checked),
        HUB_TEST(test_versions_signed_and_audited),
        HUB_TEST(test_job_model_resolved_or_refused_by_class),
        HUB_TEST(test_fetch_answered_by_data_class),
        HUB_TEST(test_confidential_only_to_a_site_running_it),
        HUB_TEST(test_peers_named_and_told_to_serve),
        HUB_TEST(test_hub_streams_bounded_the_others_pull_from_earlier_fetchers),
        HUB_TEST(test_placement_prefers_the_holder_and_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
