/*
 * A site's goodbye, without processes: a signed message of type "bye" marks
 * the site as departed, not lost: it says so at INFO, `outpost sites` shows
 * it as "left", it takes no new work, its jobs stay under their leases, and
 * a heartbeat brings it back. A site that falls silent is still lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "core/jobstate.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The "status" of site id in the operator API's sites view (into buf). */
static void site_status(hubfix *f, const char *id, char *buf, size_t size)
{
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    const cJSON *site;
    buf[0] = '\0';
    cJSON_ArrayForEach(site, cJSON_GetObjectItemCaseSensitive(
                                 cJSON_GetObjectItemCaseSensitive(resp, "data"), "sites"))
    {
        if (strcmp(jsonx_str(site, "id"), id) == 0)
            snprintf(buf, size, "%s", jsonx_str(site, "status"));
    }
    cJSON_Delete(resp);
}

static void say_bye(hubfix *f, const char *id, const char *leaf)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "reason", "shutdown");
    hubfix_site_says(f, id, leaf, "bye", body);
    cJSON_Delete(body);
}

/* Runs the goodbye with the hub's log in a file; its text into log (caller frees). */
static char *bye_logged(hubfix *f, const char *id)
{
    char path[PATH_MAX];
    assert_int_equal(util_fmt(path, sizeof path, "%s/log", f->dir), OP_OK);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, 2);
    log_set_level(LOG_LEVEL_INFO);
    say_bye(f, id, "state");
    hub__check_fleet(f->h);
    log_set_level(LOG_LEVEL_ERROR + 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char *text = NULL;
    assert_int_equal(os_read_file(path, 1 << 20, &text, NULL), OP_OK);
    return text;
}

static void test_bye_marks_site_left_not_lost(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    char *log = bye_logged(f, "dc-1");
    assert_non_null(strstr(log, "INFO hub: site dc-1 left (said goodbye)"));
    assert_null(strstr(log, "lost"));
    free(log);
    assert_false(s->alive);
    assert_true(s->departed);
    char status[16];
    site_status(f, "dc-1", status, sizeof status);
    assert_string_equal(status, "left");
    /* its job stays placed under its lease; nothing counts against the site */
    assert_int_equal(hubfix_state(f, id), JOB_PLACED);
    assert_int_equal(s->attempts_lost, 0);
    /* and it takes no new work */
    int64_t next = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    assert_int_equal(hubfix_state(f, next), JOB_QUEUED);
    /* on the audit log as a departure */
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"audit_entries\",\"kind\":\"site-left\"}");
    const cJSON *entries =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "entries");
    assert_int_equal(cJSON_GetArraySize(entries), 1);
    cJSON_Delete(resp);
}

static void test_heartbeat_brings_departed_site_back(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    say_bye(f, "dc-1", "state");
    assert_true(s->departed);
    cJSON *body = cJSON_CreateObject();
    jsonx_add_int(body, "cores", 4);
    hubfix_site_says(f, "dc-1", "state", "state", body);
    cJSON_Delete(body);
    assert_true(s->alive);
    assert_false(s->departed);
    char status[16];
    site_status(f, "dc-1", status, sizeof status);
    assert_string_equal(status, "alive");
}

static void test_silent_site_lost_and_jobs_taken_back(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    int64_t id = hubfix_submit(f, "{\"kind\":\"noop\"}");
    hub__place_pass(f->h);
    s->last_heartbeat_mono = os_mono_ms() - f->h->site_lost_after_ms - 1000;
    hub__check_fleet(f->h);
    assert_false(s->alive);
    assert_false(s->departed);
    char status[16];
    site_status(f, "dc-1", status, sizeof status);
    assert_string_equal(status, "lost");
    assert_int_equal(hubfix_state(f, id), JOB_QUEUED);
    assert_int_equal(s->attempts_lost, 1);
}

/* A goodbye must be signed by the site: a forged one changes nothing. */
static void test_forged_bye_ignored(void **state)
{
    hubfix *f = *state;
    hub_site *s = hubfix_site(f, "dc-1", CLASS_DC, 4, 400, 40);
    ident other;
    hubfix_ident(&other, "dc-1", 99);
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len;
    assert_int_equal(proto_topic(topic, sizeof topic, "site", "dc-1", "state"), OP_OK);
    cJSON *body = cJSON_CreateObject();
    char *payload = hubfix_signed(f, &other, topic, body, "bye", &len, sig);
    hub__site_message(f->h, "dc-1", "state", topic, payload, len, "dc-1", sig);
    free(payload);
    cJSON_Delete(body);
    assert_true(s->alive);
    assert_false(s->departed);
    assert_int_equal(f->h->msg.forged, 1);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_bye_marks_site_left_not_lost),
        HUB_TEST(test_heartbeat_brings_departed_site_back),
        HUB_TEST(test_silent_site_lost_and_jobs_taken_back),
        HUB_TEST(test_forged_bye_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
