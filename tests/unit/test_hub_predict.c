/*
 * The hub's side of joint inference and of rollbacks, without processes:
 * hostile escalated questions that never reach a model (site-private
 * features, a malformed row, a model the site may not use, a flood past the
 * bound), a model that never answers (the hub's loop goes on, the
 * children are bounded and killed at their time limit), and rollback
 * reports that are not the site's own learn job's answer, ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROW "[1.5, 9, 4, null, null, null, null, 3, 2019]"

/* The error of the first "predicted" reply queued for site (NULL: none, or an answer). */
static const char *predicted_error(hubfix *f, const char *site)
{
    char topic[PROTO_TOPIC_MAX];
    proto_topic(topic, sizeof topic, "site", site, "inbox");
    for (hub_reply *r = f->h->replies; r; r = r->next)
        if (!strcmp(r->topic, topic) && !strcmp(r->type, "predicted"))
            return jsonx_str(r->body, "error");
    fail_msg("no predicted reply for %s", site);
    return NULL;
}

/* A question from site (its body as JSON text); the refusal it got. */
static const char *ask(hubfix *f, const char *site, const char *body_json)
{
    hub__discard_outgoing(f->h);
    cJSON *body = cJSON_Parse(body_json);
    assert_non_null(body);
    hubfix_site_says(f, site, "event", "predict", body);
    cJSON_Delete(body);
    return predicted_error(f, site);
}

/* Registers a model record (bytes at the hub or not) as name. */
static void model(hubfix *f, const char *name, int data_class, const char *origin, int with_bytes)
{
    uint8_t raw[32];
    char sha[65], manifest[64] = "{}";
    crypto_hash_sha256(raw, (const uint8_t *)name, strlen(name));
    util_hex(raw, 32, sha);
    if (with_bytes)
        assert_int_equal(hubdb_artifact_add(f->h->db, sha, 10, manifest, "00", 1), OP_OK);
    hubdb_model m = {.version = 1,
                     .size_bytes = 10,
                     .data_class = data_class,
                     .created_at_ms = 1,
                     .record = "{}",
                     .sig = "00"};
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.sha256, sizeof m.sha256, "%s", sha);
    snprintf(m.origin, sizeof m.origin, "%s", origin);
    assert_int_equal(hubdb_model_insert(f->h->db, &m), OP_OK);
}

static void test_hostile_questions_never_reach_a_model(void **state)
{
    hubfix *f = *state;
    hub_site *wh1 = hubfix_site(f, "wh-1", CLASS_POD, 4, 400, 10);
    hub_site *wh2 = hubfix_site(f, "wh-2", CLASS_POD, 4, 400, 10);
    snprintf(wh1->owner, sizeof wh1->owner, "acme");
    snprintf(wh2->owner, sizeof wh2->owner, "rival");
    model(f, "rival-secret", DATA_CONFIDENTIAL, "wh-2", 1);
    model(f, "own-private", DATA_SITE_PRIVATE, "wh-1", 0);
    /* site-private features: refused whatever the site's policy said */
    const char *why = ask(f, "wh-1",
                          "{\"id\":1,\"planned_s\":600,\"data_class\":\"site-private\",\"row\":" ROW
                          ",\"model\":\"rival-secret\"}");
    assert_non_null(strstr(why, "only public or confidential features may leave a site"));
    /* malformed rows and plans */
    static const char *bad[] = {
        "{\"id\":2,\"planned_s\":600,\"data_class\":\"public\",\"row\":[1,2,3]}",
        "{\"id\":3,\"planned_s\":600,\"data_class\":\"public\",\"row\":"
        "[\"x\",1,1,1,1,1,1,1,1]}",
        "{\"id\":4,\"planned_s\":600,\"data_class\":\"public\",\"row\":[1e12,1,1,1,1,1,1,1,1]}",
        "{\"id\":5,\"planned_s\":-1,\"data_class\":\"public\",\"row\":" ROW "}",
        "{\"id\":6,\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW
        ",\"model\":\"../etc\"}",
        "{\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW "}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_non_null(strstr(ask(f, "wh-1", bad[i]), "a question needs"));
    /* another owner's confidential model, a site-private one, none, no pool */
    why = ask(f, "wh-1",
              "{\"id\":7,\"planned_s\":600,\"data_class\":\"confidential\",\"row\":" ROW
              ",\"model\":\"rival-secret\"}");
    assert_non_null(strstr(why, "another owner's confidential model"));
    why = ask(f, "wh-1",
              "{\"id\":8,\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW
              ",\"model\":\"own-private\"}");
    assert_non_null(strstr(why, "its bytes stay at its site"));
    why = ask(f, "wh-1",
              "{\"id\":9,\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW
              ",\"model\":\"nothing\"}");
    assert_non_null(strstr(why, "no model nothing"));
    why = ask(f, "wh-1", "{\"id\":10,\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW "}");
    assert_non_null(strstr(why, "owner acme has no pooled model"));
    /* a flood: past the bound a minute, refused before any model is looked at */
    int over = 0;
    for (int i = 0; i < 130; i++) {
        why = ask(f, "wh-2",
                  "{\"id\":11,\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW
                  ",\"model\":\"nothing\"}");
        over += strstr(why, "questions a minute") != NULL;
    }
    assert_int_equal(over, 10);
    hub__discard_outgoing(f->h);
}

/* The number of "predicted" replies queued for site. */
static int predicted_count(hubfix *f, const char *site)
{
    char topic[PROTO_TOPIC_MAX];
    int n = 0;
    proto_topic(topic, sizeof topic, "site", site, "inbox");
    for (hub_reply *r = f->h->replies; r; r = r->next)
        n += !strcmp(r->topic, topic) && !strcmp(r->type, "predicted");
    return n;
}

static void test_a_model_that_never_answers_does_not_stall_the_hub(void **state)
{
    hubfix *f = *state;
    hub_site *wh1 = hubfix_site(f, "wh-1", CLASS_POD, 4, 400, 10);
    snprintf(wh1->owner, sizeof wh1->owner, "acme");
    model(f, "slow", DATA_PUBLIC, "", 1);
    /* the child the hub starts: a "model" that takes longer than any answer may */
    char script[PATH_MAX];
    assert_int_equal(util_fmt(script, sizeof script, "%s/slow-model.sh", f->dir), OP_OK);
    FILE *fp = fopen(script, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\nexec sleep 30\n", fp);
    fclose(fp);
    assert_int_equal(chmod(script, 0755), 0);
    snprintf(f->h->predict_program, sizeof f->h->predict_program, "%s", script);
    hub__discard_outgoing(f->h);
    cJSON *q = cJSON_Parse("{\"id\":1,\"planned_s\":600,\"data_class\":\"public\",\"row\":" ROW
                           ",\"model\":\"slow\"}");
    assert_non_null(q);
    /* each question returns at once with its child running; no answer yet */
    for (int i = 0; i < 4; i++)
        hubfix_site_says(f, "wh-1", "event", "predict", q);
    assert_int_equal(f->h->n_predicting, 4);
    hub__predict_tick(f->h);
    assert_int_equal(predicted_count(f, "wh-1"), 0);
    /* past the children the hub runs at once: refused, not queued */
    hubfix_site_says(f, "wh-1", "event", "predict", q);
    assert_int_equal(f->h->n_predicting, 4);
    assert_non_null(strstr(predicted_error(f, "wh-1"), "answering 4 questions already"));
    cJSON_Delete(q);
    /* the time limit ends every child; each asker is told */
    for (int i = 0; i < 1000 && f->h->n_predicting > 0; i++) {
        hub__predict_tick(f->h);
        usleep(10000);
    }
    assert_int_equal(f->h->n_predicting, 0);
    assert_int_equal(predicted_count(f, "wh-1"), 5);
    int timed_out = 0;
    for (hub_reply *r = f->h->replies; r; r = r->next) {
        const char *e = jsonx_str(r->body, "error");
        timed_out += e && strstr(e, "did not answer in time") != NULL;
    }
    assert_int_equal(timed_out, 4);
    hub__discard_outgoing(f->h);
}

static void test_rollback_report_not_from_its_learn_job_ignored(void **state)
{
    hubfix *f = *state;
    hub_site *wh1 = hubfix_site(f, "wh-1", CLASS_POD, 4, 400, 10);
    int64_t job = hubfix_submit(f, "{\"kind\":\"noop\"}");
    char text[1024];
    snprintf(text, sizeof text,
             "{\"model\":\"eta\",\"verdict\":\"rolled-back\",\"trigger\":\"automatic\","
             "\"champion_mae\":300,\"previous_mae\":200,\"heldout_rows\":200,"
             "\"from_sha256\":\"%064d\",\"to_sha256\":\"%064d\"}",
             1, 2);
    cJSON *learn = cJSON_Parse(text);
    assert_int_equal(hub__rollback_learned(f->h, wh1, learn, job), OP_OK);
    assert_int_equal(hub__rollback_learned(f->h, wh1, learn, 999), OP_OK);
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(hubdb_rollbacks_view(f->h->db, "eta", 5, arr), OP_OK);
    assert_int_equal(cJSON_GetArraySize(arr), 0); /* not a learn job of eta at wh-1: nothing kept */
    cJSON_Delete(arr);
    cJSON_Delete(learn);
    /* a rollback order for a model the site did not learn, or a site that does not exist */
    cJSON *r = hubfix_request(f, "{\"cmd\":\"model_rollback\",\"name\":\"eta\",\"site\":\"wh-1\"}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    assert_non_null(strstr(jsonx_str(r, "error"), "no model eta"));
    cJSON_Delete(r);
    r = hubfix_request(f, "{\"cmd\":\"model_rollback\",\"name\":\"eta\",\"site\":\"nowhere\"}");
    assert_non_null(strstr(jsonx_str(r, "error"), "no site nowhere"));
    cJSON_Delete(r);
    r = hubfix_request(f, "{\"cmd\":\"model_rollback\",\"name\":\"e/ta\",\"site\":\"wh-1\"}");
    assert_non_null(strstr(jsonx_str(r, "error"), "needs a model name and a site"));
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_questions_never_reach_a_model, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_a_model_that_never_answers_does_not_stall_the_hub,
                                        hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_report_not_from_its_learn_job_ignored,
                                        hubfix_setup, hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
