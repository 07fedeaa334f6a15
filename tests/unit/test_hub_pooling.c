/*
 * Unit tests of the hub's side of learning (src/hub/pooling.c): a model is
 * registered only from its site's own learn job of that model; a
 * site-private one as a record without bytes; bytes that do not hash to
 * their name are not kept (the version stays a record, site-private); a
 * pooled visit only from a site of the pool's owner. Nothing is registered
 * from a forged claim.
 */
#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "hub/hub_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A result item whose "learn" says verdict for model, with the bytes when b64 is given. */
static cJSON *learned(const char *model, const char *verdict, const char *sha, const char *dc,
                      const char *b64, const char *site)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"exit_code\":0,\"learn\":{\"model\":\"%s\",\"verdict\":\"%s\",\"sha256\":\"%s\","
             "\"size\":5,\"data_class\":\"%s\",\"challenger_mae\":10,\"incumbent_mae\":20,"
             "\"lineage\":{\"site\":\"%s\",\"rows\":300,\"metrics\":{\"mae\":10}}%s%s%s}}",
             model, verdict, sha, dc, site, b64 ? ",\"model_b64\":\"" : "", b64 ? b64 : "",
             b64 ? "\"" : "");
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    return o;
}

static int64_t versions(hubfix *f, const char *name)
{
    hubdb_model m = {0};
    int rc = hubdb_model_get(f->h->db, name, 0, &m);
    int64_t v = rc == OP_OK ? m.version : 0;
    hubdb_model_clear(&m);
    return v;
}

static void test_only_the_sites_own_learn_job(void **state)
{
    hubfix *f = *state;
    hub_site *wh1 = hubfix_site(f, "wh1", CLASS_DC, 4, 400, 10);
    hub_site *wh2 = hubfix_site(f, "wh2", CLASS_DC, 4, 400, 10);
    int64_t learn = hubfix_submit(f, "{\"kind\":\"learn\",\"model\":\"eta\",\"data_class\":"
                                     "\"site-private\",\"origin\":\"wh1\"}");
    int64_t exec = hubfix_submit(f, "{\"kind\":\"exec\",\"command\":[\"true\"]}");
    char sha[65];
    util_sha256_hex("hello", 5, sha);
    /* an exec job's result claiming a model, another site claiming wh1's job, another model */
    cJSON *item = learned("eta", "adopted", sha, "site-private", NULL, "wh1");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, exec), OP_OK);
    assert_int_equal(hub__pooling_learned(f->h, wh2, item, learn), OP_OK);
    cJSON_Delete(item);
    item = learned("other", "adopted", sha, "site-private", NULL, "wh1");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, learn), OP_OK);
    cJSON_Delete(item);
    /* a lineage naming another site */
    item = learned("eta", "adopted", sha, "site-private", NULL, "wh2");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, learn), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(versions(f, "eta") + versions(f, "other"), 0);
    /* a rejection registers nothing */
    item = learned("eta", "rejected", sha, "site-private", NULL, "wh1");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, learn), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(versions(f, "eta"), 0);
    /* the real thing: a record, site-private, its bytes not at the hub */
    item = learned("eta", "adopted", sha, "site-private", NULL, "wh1");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, learn), OP_OK);
    cJSON_Delete(item);
    hubdb_model m = {0};
    assert_int_equal(hubdb_model_get(f->h->db, "eta", 0, &m), OP_OK);
    assert_int_equal(m.version, 1);
    assert_int_equal(m.data_class, DATA_SITE_PRIVATE);
    assert_string_equal(m.origin, "wh1");
    assert_non_null(strstr(m.record, "\"created_by\":\"wh1\""));
    hubdb_model_clear(&m);
    assert_int_equal(hubdb_artifact_get(f->h->db, sha, NULL, NULL, NULL), OP_ENOTFOUND);
}

#define VISIT                                                                                      \
    "{\"kind\":\"learn\",\"model\":\"pool\",\"data_class\":\"site-private\",\"origin\":\"%s\","    \
    "\"learn\":{\"mode\":\"visit\"}}"

static void test_bytes_and_pool_owners(void **state)
{
    hubfix *f = *state;
    hub_site *wh1 = hubfix_site(f, "wh1", CLASS_DC, 4, 400, 10);
    hub_site *wh2 = hubfix_site(f, "wh2", CLASS_DC, 4, 400, 10);
    hub_site *rival = hubfix_site(f, "rival", CLASS_DC, 4, 400, 10);
    snprintf(wh1->owner, sizeof wh1->owner, "acme");
    snprintf(wh2->owner, sizeof wh2->owner, "acme");
    snprintf(rival->owner, sizeof rival->owner, "rival-co");
    char spec[256], sha[65], *b64 = util_b64_encode("hello", 5);
    util_sha256_hex("hello", 5, sha);
    snprintf(spec, sizeof spec, VISIT, "wh1");
    int64_t j1 = hubfix_submit(f, spec);
    snprintf(spec, sizeof spec, VISIT, "rival");
    int64_t j3 = hubfix_submit(f, spec);
    snprintf(spec, sizeof spec, VISIT, "wh2");
    int64_t j2 = hubfix_submit(f, spec);
    /* bytes that are not what they claim: not kept, the version a record, site-private */
    char *wrong = util_b64_encode("hellO", 5);
    cJSON *item = learned("pool", "visited", sha, "confidential", wrong, "wh1");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, j1), OP_OK);
    cJSON_Delete(item);
    free(wrong);
    hubdb_model m = {0};
    assert_int_equal(hubdb_model_get(f->h->db, "pool", 0, &m), OP_OK);
    assert_int_equal(m.data_class, DATA_SITE_PRIVATE);
    hubdb_model_clear(&m);
    assert_int_equal(hubdb_artifact_get(f->h->db, sha, NULL, NULL, NULL), OP_ENOTFOUND);
    /* the right bytes: kept with a manifest, the version confidential */
    item = learned("pool", "visited", sha, "confidential", b64, "wh1");
    assert_int_equal(hub__pooling_learned(f->h, wh1, item, j1), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(hubdb_model_get(f->h->db, "pool", 0, &m), OP_OK);
    assert_int_equal(m.version, 2);
    assert_int_equal(m.data_class, DATA_CONFIDENTIAL);
    hubdb_model_clear(&m);
    int64_t size = 0;
    assert_int_equal(hubdb_artifact_get(f->h->db, sha, &size, NULL, NULL), OP_OK);
    assert_int_equal(size, 5);
    /* another owner's site cannot add to acme's pool; acme's other site can */
    item = learned("pool", "visited", sha, "confidential", b64, "rival");
    assert_int_equal(hub__pooling_learned(f->h, rival, item, j3), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(versions(f, "pool"), 2);
    item = learned("pool", "visited", sha, "confidential", b64, "wh2");
    assert_int_equal(hub__pooling_learned(f->h, wh2, item, j2), OP_OK);
    cJSON_Delete(item);
    assert_int_equal(versions(f, "pool"), 3);
    free(b64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_only_the_sites_own_learn_job, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_bytes_and_pool_owners, hubfix_setup, hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
