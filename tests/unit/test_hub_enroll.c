/*
 * The hub's enrollment, without processes: a hello signed by the key it
 * carries, with a join token this hub issued, enrolls the site with the
 * capacity it claims (durably); a used, expired, foreign or missing token is
 * refused with a reason; a hello not signed by the key it carries is dropped,
 * and so is one in clear or sealed to another key than the hub's; the
 * welcome is sealed to the new site's key. The owner a token names is the
 * site's (its own id by default), also in a database from before owners.
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
#include "wire/token.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The hello of a new site with key, signed by signer (normally the same key). */
static void hello(hubfix *f, const ident *key, const ident *signer, const char *token_text)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "pubkey", key->pk_hex);
    if (token_text) cJSON_AddStringToObject(body, "token", token_text);
    jsonx_add_int(body, "cores", 8);
    jsonx_add_int(body, "memory_mb", 16384);
    cJSON_AddNumberToObject(body, "power_budget_watts", 500);
    cJSON_AddNumberToObject(body, "watts_per_core", 30);
    cJSON_AddNumberToObject(body, "idle_watts", 20);
    cJSON_AddStringToObject(body, "protections_off", "seccomp");
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len;
    assert_int_equal(proto_topic(topic, sizeof topic, "site", key->id, "hello"), OP_OK);
    char *payload = hubfix_signed(f, signer, topic, body, "hello", &len, sig);
    hub__site_message(f->h, key->id, "hello", topic, payload, len, key->id, sig);
    free(payload);
    cJSON_Delete(body);
}

/* The last reply queued for site id: its type, and its reason when refused. */
static const char *last_reply(hubfix *f, const char *id, const char **reason)
{
    const hub_reply *last = NULL;
    for (const hub_reply *r = f->h->replies; r; r = r->next)
        if (strstr(r->topic, id)) last = r;
    if (!last) return NULL;
    if (reason) *reason = jsonx_str(last->body, "reason");
    return last->type;
}

static void test_valid_token_enrolls_with_claimed_capacity(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-9");
    ident site;
    hubfix_ident(&site, "dc-9", 50);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hello(f, &site, &site, tok);
    hub_site *s = hub__find_site(f->h, "dc-9");
    assert_non_null(s);
    assert_int_equal(s->class_bit, CLASS_DC);
    assert_int_equal(s->cores, 8);
    assert_int_equal(s->memory_mb, 16384);
    assert_true(s->alive);
    assert_string_equal(last_reply(f, "dc-9", NULL), "welcome");
    assert_int_equal(hub__commit(f->h), OP_OK);
    free(tok);
    /* durable: a restarted hub knows the site, its key and what it claimed */
    hubfix_reopen(f);
    s = hub__find_site(f->h, "dc-9");
    assert_non_null(s);
    assert_memory_equal(s->pk, site.pk, 32);
    assert_int_equal(s->cores, 8);
    assert_int_equal(s->memory_mb, 16384);
    assert_true(s->power_budget_watts == 500);
    assert_true(s->watts_per_core == 30);
    assert_true(s->idle_watts == 20);
    assert_string_equal(s->protections_off, "seccomp");
}

/*
 * A car that claims a data center's worth (256 cores, 1 TB, 100 kW, a negative
 * idle draw) is counted as its class allows, and the fleet view says so.
 */
static void test_claims_capped_to_the_class_limits(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "car", "car-9");
    ident site;
    hubfix_ident(&site, "car-9", 58);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hello(f, &site, &site, tok);
    free(tok);
    hub_site *s = hub__find_site(f->h, "car-9");
    assert_non_null(s);
    assert_int_equal(s->cores, 8); /* within a car's 16 */
    assert_string_equal(s->claims_capped, "");
    cJSON *claims = cJSON_Parse("{\"cores\":256,\"memory_mb\":1000000,"
                                "\"power_budget_watts\":100000,\"watts_per_core\":30,"
                                "\"idle_watts\":-5}");
    hub__update_capacity(f->h, s, claims);
    cJSON_Delete(claims);
    assert_int_equal(s->cores, 16);
    assert_int_equal(s->memory_mb, 65536);
    assert_true(s->power_budget_watts == 2000);
    assert_true(s->idle_watts == 0);
    assert_non_null(strstr(s->claims_capped, "cores 256 -> 16"));
    assert_non_null(strstr(s->claims_capped, "idle_watts -5 -> 0"));
    assert_int_equal(hub__commit(f->h), OP_OK);
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    const cJSON *sites =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "data"), "sites");
    const cJSON *view = cJSON_GetArrayItem(sites, 0);
    assert_non_null(strstr(jsonx_str(view, "claims_capped"), "memory_mb 1000000 -> 65536"));
    cJSON_Delete(resp);
}

/* A site that said goodbye is still "left", not presumed alive, after the hub restarts. */
static void test_departure_survives_a_hub_restart(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-8");
    ident site;
    hubfix_ident(&site, "dc-8", 59);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hello(f, &site, &site, tok);
    free(tok);
    hub__site_left(f->h, hub__find_site(f->h, "dc-8"), "shutdown");
    assert_int_equal(hub__commit(f->h), OP_OK);
    hubfix_reopen(f);
    hub_site *s = hub__find_site(f->h, "dc-8");
    assert_non_null(s);
    assert_true(s->departed);
    assert_false(s->alive);
    assert_string_equal(hub__site_status(s), "left");
    /* heard again: back, and so after the next restart */
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    cJSON *beat = cJSON_CreateObject();
    hub__handle_state(f->h, s, beat);
    cJSON_Delete(beat);
    assert_int_equal(hub__commit(f->h), OP_OK);
    hubfix_reopen(f);
    s = hub__find_site(f->h, "dc-8");
    assert_false(s->departed);
    assert_true(s->alive);
}

/* A token names its site: another id is refused and the token stays good for its own. */
static void test_token_for_another_site_refused(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "pod", "pod-1");
    ident first, second;
    hubfix_ident(&first, "pod-1", 51);
    hubfix_ident(&second, "pod-2", 52);
    hello(f, &second, &second, tok);
    assert_null(hub__find_site(f->h, "pod-2"));
    const char *reason = NULL;
    assert_string_equal(last_reply(f, "pod-2", &reason), "refused");
    assert_non_null(strstr(reason, "this join token was made for site pod-1, not pod-2"));
    hello(f, &first, &first, tok);
    free(tok);
    assert_non_null(hub__find_site(f->h, "pod-1"));
}

/* No token for the hub's name, an operator's, or a site already enrolled. */
static void test_token_names_refused(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "pod", "pod-1");
    ident site;
    hubfix_ident(&site, "pod-1", 51);
    hello(f, &site, &site, tok);
    free(tok);
    const char *names[] = {"hub", "op-test", "op-0123456789abcdef", "pod-1", "a/b", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char req[160];
        snprintf(req, sizeof req, "{\"cmd\":\"token\",\"class\":\"pod\",\"site\":\"%s\"}",
                 names[i]);
        cJSON *resp = hubfix_request(f, req);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
        cJSON_Delete(resp);
    }
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"token\",\"class\":\"pod\"}");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    cJSON_Delete(resp);
}

static void test_expired_and_foreign_tokens_refused(void **state)
{
    hubfix *f = *state;
    /* signed by this hub and in its registry, but expired */
    char *text = NULL;
    token tok;
    int64_t now = os_now_ms();
    assert_int_equal(token_create(&f->h->identity, "car", "car-1", NULL, now - 1000, &text, &tok),
                     OP_OK);
    assert_int_equal(
        hubdb_token_create(f->h->db, tok.tid, "car", now - 5000, tok.expires_ms, "op-test"), OP_OK);
    ident car;
    hubfix_ident(&car, "car-1", 53);
    hello(f, &car, &car, text);
    free(text);
    assert_null(hub__find_site(f->h, "car-1"));
    const char *reason = NULL;
    assert_string_equal(last_reply(f, "car-1", &reason), "refused");
    assert_non_null(strstr(reason, "expired"));
    /* signed by this hub but never recorded in its registry */
    assert_int_equal(token_create(&f->h->identity, "car", "car-1", NULL, now + 60000, &text, &tok),
                     OP_OK);
    hello(f, &car, &car, text);
    free(text);
    assert_null(hub__find_site(f->h, "car-1"));
    assert_string_equal(last_reply(f, "car-1", &reason), "refused");
    assert_non_null(strstr(reason, "not issued by this hub's registry"));
    /* no token at all */
    hello(f, &car, &car, NULL);
    assert_string_equal(last_reply(f, "car-1", &reason), "refused");
    assert_non_null(strstr(reason, "no join token"));
}

static void test_hello_not_signed_by_its_key_dropped(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-7");
    ident site, thief;
    hubfix_ident(&site, "dc-7", 54);
    hubfix_ident(&thief, "dc-7", 55);
    hello(f, &site, &thief, tok);
    free(tok);
    assert_null(hub__find_site(f->h, "dc-7"));
    assert_int_equal(f->h->msg.forged, 1);
    assert_null(last_reply(f, "dc-7", NULL)); /* no answer to a forgery */
}

/* A hello with a valid token, signed by its key, in clear or sealed to seal_to. */
static void raw_hello(hubfix *f, const ident *key, const char *token_text, const uint8_t *seal_to)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "pubkey", key->pk_hex);
    cJSON_AddStringToObject(body, "token", token_text);
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len;
    assert_int_equal(proto_topic(topic, sizeof topic, "site", key->id, "hello"), OP_OK);
    char *payload = msg_encode(body, key->id, "hello", f->seq++, os_now_ms(), &len);
    cJSON_Delete(body);
    if (seal_to) {
        uint8_t *sealed = NULL;
        assert_int_equal(msg_seal(seal_to, payload, len, &sealed, &len), OP_OK);
        free(payload);
        payload = (char *)sealed;
    }
    assert_int_equal(msg_sign(key, topic, payload, len, sig), OP_OK);
    hub__site_message(f->h, key->id, "hello", topic, payload, len, key->id, sig);
    free(payload);
}

static void test_hello_in_clear_or_sealed_elsewhere_dropped(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "dc", "dc-6");
    ident site, other;
    hubfix_ident(&site, "dc-6", 56);
    hubfix_ident(&other, "other", 57);
    raw_hello(f, &site, tok, NULL); /* the token would cross the broker in clear */
    assert_null(hub__find_site(f->h, "dc-6"));
    assert_int_equal(f->h->msg.unsealed, 1);
    raw_hello(f, &site, tok, other.pk);
    assert_null(hub__find_site(f->h, "dc-6"));
    assert_int_equal(f->h->msg.unopenable, 1);
    assert_null(last_reply(f, "dc-6", NULL));
    /* sealed to the hub it enrolls, and the welcome goes back sealed to the site's key */
    raw_hello(f, &site, tok, f->h->identity.pk);
    free(tok);
    assert_non_null(hub__find_site(f->h, "dc-6"));
    assert_string_equal(last_reply(f, "dc-6", NULL), "welcome");
    const hub_reply *r = f->h->replies;
    while (r->next)
        r = r->next;
    assert_memory_equal(r->to_pk, site.pk, 32);
}

/* The site's row in the operator's `sites` view. */
static const cJSON *sites_row(const cJSON *resp, const char *id)
{
    const cJSON *sites = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(resp, "data"), "sites"),
                *row;
    cJSON_ArrayForEach(row, sites) if (strcmp(jsonx_str(row, "id"), id) == 0) return row;
    return NULL;
}

/* The owner a token names is the site's: kept, shown, durable; the default is the site itself.
 * (The fixture keeps no audit log: the enrollment entry's owner is checked in test_fleet.) */
static void test_owner_from_token(void **state)
{
    hubfix *f = *state;
    cJSON *resp = hubfix_request(
        f, "{\"cmd\":\"token\",\"class\":\"car\",\"site\":\"car-7\",\"owner\":\"alice\"}");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    assert_string_equal(jsonx_str(data, "owner"), "alice");
    char *tok = NULL;
    assert_int_equal(
        ident_open_sealed(&f->op, jsonx_str(data, "sealed_token"), TOKEN_MAX_TEXT, &tok, NULL),
        OP_OK);
    cJSON_Delete(resp);
    char *own_tok = hubfix_token(f, "car", "car-8");
    ident site, own;
    hubfix_ident(&site, "car-7", 60);
    hubfix_ident(&own, "car-8", 61);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hello(f, &site, &site, tok);
    hello(f, &own, &own, own_tok);
    assert_int_equal(hub__commit(f->h), OP_OK);
    free(tok);
    free(own_tok);
    assert_string_equal(hub__find_site(f->h, "car-7")->owner, "alice");
    assert_string_equal(hub__find_site(f->h, "car-8")->owner, "car-8");
    hubfix_reopen(f);
    assert_string_equal(hub__find_site(f->h, "car-7")->owner, "alice");
    resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    assert_string_equal(jsonx_str(sites_row(resp, "car-7"), "owner"), "alice");
    assert_string_equal(jsonx_str(sites_row(resp, "car-8"), "owner"), "car-8");
    cJSON_Delete(resp);
}

/* An owner that is not an id is refused with the option's name. */
static void test_bad_owner_refused(void **state)
{
    hubfix *f = *state;
    const char *owners[] = {"\"\"", "\"a b\"", "\"../x\"", "7", "null"};
    for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++) {
        char req[160];
        snprintf(req, sizeof req,
                 "{\"cmd\":\"token\",\"class\":\"car\",\"site\":\"car-1\",\"owner\":%s}",
                 owners[i]);
        cJSON *resp = hubfix_request(f, req);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
        assert_non_null(strstr(jsonx_str(resp, "error"), "--owner"));
        cJSON_Delete(resp);
    }
}

/* A hub.db from before owners: the column is added and every site owns itself. */
static void test_owner_column_migrated(void **state)
{
    hubfix *f = *state;
    char *tok = hubfix_token(f, "pod", "pod-3");
    ident site;
    hubfix_ident(&site, "pod-3", 62);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hello(f, &site, &site, tok);
    assert_int_equal(hub__commit(f->h), OP_OK);
    free(tok);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->db_path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "ALTER TABLE sites DROP COLUMN owner", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    hubfix_reopen(f);
    assert_string_equal(hub__find_site(f->h, "pod-3")->owner, "pod-3");
    assert_int_equal(sqlite3_open(f->db_path, &raw), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(raw, "SELECT owner FROM sites WHERE id='pod-3'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "pod-3");
    sqlite3_finalize(st);
    sqlite3_close(raw);
}

/*
 * A token's limits on what its site may claim, below its class's: the site's hello (8 cores,
 * 500 W) is counted at the token's (4 cores, 100 W), audited as capped, and the limits hold
 * after a restart. Limits out of range are refused with the option's name.
 */
static void test_token_limits_cap_claims(void **state)
{
    hubfix *f = *state;
    cJSON *resp = hubfix_request(f, "{\"cmd\":\"token\",\"class\":\"dc\",\"site\":\"dc-4\","
                                    "\"max_cores\":4,\"max_watts\":100}");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(data, "limits");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(lim, "cores")->valueint, 4);
    char *tok = NULL;
    assert_int_equal(
        ident_open_sealed(&f->op, jsonx_str(data, "sealed_token"), TOKEN_MAX_TEXT, &tok, NULL),
        OP_OK);
    cJSON_Delete(resp);
    ident site;
    hubfix_ident(&site, "dc-4", 63);
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hello(f, &site, &site, tok);
    free(tok);
    hub_site *s = hub__find_site(f->h, "dc-4");
    assert_non_null(s);
    assert_int_equal(s->cores, 4);
    assert_true(s->power_budget_watts == 100);
    assert_int_equal(s->memory_mb, 16384); /* no memory limit: the class's holds */
    assert_non_null(strstr(s->claims_capped, "cores 8 -> 4"));
    assert_int_equal(hub__commit(f->h), OP_OK);
    hubfix_reopen(f);
    s = hub__find_site(f->h, "dc-4");
    assert_int_equal(s->limits.cores, 4);
    cJSON *claims = cJSON_Parse("{\"cores\":64,\"power_budget_watts\":9000}");
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__update_capacity(f->h, s, claims);
    cJSON_Delete(claims);
    assert_int_equal(hub__commit(f->h), OP_OK);
    assert_int_equal(s->cores, 4);
    assert_true(s->power_budget_watts == 100);
    resp = hubfix_request(f, "{\"cmd\":\"sites\"}");
    lim = cJSON_GetObjectItemCaseSensitive(sites_row(resp, "dc-4"), "limits");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(lim, "cores")->valueint, 4);
    assert_true(cJSON_GetObjectItemCaseSensitive(lim, "watts")->valuedouble == 100);
    cJSON_Delete(resp);
    const char *bad[] = {"\"max_cores\":0",      "\"max_cores\":5000", "\"max_cores\":\"4\"",
                         "\"max_memory_mb\":-1", "\"max_watts\":0",    "\"max_watts\":1e12"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char req[160];
        snprintf(req, sizeof req, "{\"cmd\":\"token\",\"class\":\"dc\",\"site\":\"dc-5\",%s}",
                 bad[i]);
        resp = hubfix_request(f, req);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok")));
        assert_non_null(strstr(jsonx_str(resp, "error"), "--max-cores"));
        cJSON_Delete(resp);
    }
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_valid_token_enrolls_with_claimed_capacity),
        HUB_TEST(test_claims_capped_to_the_class_limits),
        HUB_TEST(test_departure_survives_a_hub_restart),
        HUB_TEST(test_token_for_another_site_refused),
        HUB_TEST(test_token_names_refused),
        HUB_TEST(test_expired_and_foreign_tokens_refused),
        HUB_TEST(test_hello_not_signed_by_its_key_dropped),
        HUB_TEST(test_hello_in_clear_or_sealed_elsewhere_dropped),
        HUB_TEST(test_owner_from_token),
        HUB_TEST(test_bad_owner_refused),
        HUB_TEST(test_owner_column_migrated),
        HUB_TEST(test_token_limits_cap_claims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
