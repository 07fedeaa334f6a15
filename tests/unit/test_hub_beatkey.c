/*
 * Heartbeats on a MAC at the hub (hub/beatkey.c), without processes: the
 * key a site's hello carries is kept, named in the welcome and stored
 * sealed (not in clear, and not movable to another site's row); a
 * restarted hub takes the site's MAC'd heartbeats; a MAC it cannot check
 * is dropped and the site asked for its key again, once per period however
 * many come; a MAC on another site's topic, on anything but a heartbeat, or
 * replayed gets nowhere; with worker threads running, MACs are still
 * checked on the loop (cheaper than the hand-off), signatures on the threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/hub_fixture.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"
#include "core/jobspec.h"
#include "hub/workers.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t KEY_A[MSG_MAC_KEY_BYTES] = {0xa1, 0xa2, 0xa3};
static const uint8_t KEY_B[MSG_MAC_KEY_BYTES] = {0xb1, 0xb2, 0xb3};

/* A site in memory and in the registry, so that a reopened hub loads it. */
static void enrolled(hubfix *f, const char *id)
{
    hubfix_site(f, id, CLASS_POD, 4, 200.0, 20.0);
    assert_int_equal(hubdb_site_enroll(f->h->db, id, hubfix_site_key(f, id)->pk_hex, "pod", id,
                                       "t-none", os_now_ms(), 0),
                     OP_OK);
}

/* Site id's hello carrying key (as its bus sends it: sealed to the hub, signed). */
static void hello_with_key(hubfix *f, const char *id, const uint8_t key[MSG_MAC_KEY_BYTES])
{
    char hex[2 * MSG_MAC_KEY_BYTES + 1];
    util_hex(key, MSG_MAC_KEY_BYTES, hex);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "pubkey", hubfix_site_key(f, id)->pk_hex);
    cJSON_AddStringToObject(body, "beat_key", hex);
    jsonx_add_int(body, "cores", 4);
    hubfix_site_says(f, id, "hello", "hello", body);
    cJSON_Delete(body);
}

/*
 * A heartbeat of type from `from` on site on_site's state topic, MAC'd under
 * key, delivered as the bus delivers it (hub__on_message: intake, workers
 * when started). The payload is kept in *copy when copy is not NULL.
 */
static void mac_beat(hubfix *f, const char *from, const char *on_site, const char *type,
                     const uint8_t key[MSG_MAC_KEY_BYTES], char **copy, size_t *copy_len)
{
    char topic[PROTO_TOPIC_MAX], mac[MSG_MAC_HEX_BYTES];
    size_t len;
    assert_int_equal(proto_topic(topic, sizeof topic, "site", on_site, "state"), OP_OK);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddArrayToObject(body, "running");
    jsonx_add_int(body, "free_cores", 3);
    char *text = msg_encode(body, from, type, f->seq++, os_now_ms(), &len);
    cJSON_Delete(body);
    msg_mac(key, topic, text, len, mac);
    hub__on_message(f->h, topic, text, len, from, mac);
    if (copy) {
        *copy = text;
        *copy_len = len;
    } else {
        free(text);
    }
}

/* Until the workers (if any) hold nothing. */
static void drain(hubfix *f)
{
    for (int i = 0; f->h->workers && i < 5000; i++) { /* a hang guard, not a speed limit */
        hub__finish_beats(f->h);
        if (!hub_workers_pending(f->h->workers)) return;
        usleep(1000);
    }
    if (f->h->workers) fail_msg("the workers did not finish");
}

/* Replies of type queued for site id; the last one's body in *last (may be NULL). */
static int replies(hubfix *f, const char *id, const char *type, const cJSON **last)
{
    int n = 0;
    for (const hub_reply *r = f->h->replies; r; r = r->next) {
        if (!strstr(r->topic, id) || strcmp(r->type, type) != 0) continue;
        n++;
        if (last) *last = r->body;
    }
    return n;
}

/* The sites row's beat_key, read from the file by another connection (committed data). */
static void stored_key(hubfix *f, const char *id, char *out, size_t out_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT beat_key FROM sites WHERE id=?", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, out_len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_key_taken_named_and_used(void **state)
{
    hubfix *f = *state;
    enrolled(f, "a");
    /* before the hub holds a key, a MAC is refused and the site asked for its key */
    mac_beat(f, "a", "a", "state", KEY_A, NULL, NULL);
    drain(f);
    assert_int_equal(f->h->beats_mac, 0);
    assert_int_equal(replies(f, "a", "rekey", NULL), 1);
    hello_with_key(f, "a", KEY_A);
    hub_site *s = hub__find_site(f->h, "a");
    assert_true(s->has_beat_key);
    const cJSON *welcome = NULL;
    assert_int_equal(replies(f, "a", "welcome", &welcome), 1);
    char want[MSG_MAC_KEY_ID_BYTES];
    msg_mac_key_id(KEY_A, want);
    assert_string_equal(jsonx_str(welcome, "beat_key_id"), want);
    uint64_t forged = f->h->msg.forged;
    mac_beat(f, "a", "a", "state", KEY_A, NULL, NULL);
    drain(f);
    assert_int_equal(f->h->beats_mac, 1);
    assert_int_equal(f->h->msg.forged, forged);
    assert_true(s->last_heartbeat_wall > 0);
}

/* Stored sealed under the hub's key, bound to its row; a reopened hub has it again. */
static void test_stored_sealed_and_restored(void **state)
{
    hubfix *f = *state;
    enrolled(f, "a");
    enrolled(f, "b");
    hello_with_key(f, "a", KEY_A);
    hello_with_key(f, "b", KEY_B);
    hubfix_reopen(f);
    char sealed_a[400], sealed_b[400], hex[2 * MSG_MAC_KEY_BYTES + 1];
    stored_key(f, "a", sealed_a, sizeof sealed_a);
    stored_key(f, "b", sealed_b, sizeof sealed_b);
    util_hex(KEY_A, MSG_MAC_KEY_BYTES, hex);
    assert_int_equal(strncmp(sealed_a, "k1.", 3), 0);
    assert_null(strstr(sealed_a, hex));
    hub_site *a = hub__find_site(f->h, "a"), *b = hub__find_site(f->h, "b");
    assert_true(a->has_beat_key && b->has_beat_key);
    assert_memory_equal(a->beat_key, KEY_A, MSG_MAC_KEY_BYTES);
    mac_beat(f, "a", "a", "state", KEY_A, NULL, NULL);
    assert_int_equal(f->h->beats_mac, 1);
    /* a's sealed key copied into b's row does not open there */
    assert_int_equal(hubdb_site_set_beat_key(f->h->db, "b", sealed_a), OP_OK);
    if (hubdb_in_tx(f->h->db)) assert_int_equal(hubdb_commit(f->h->db), OP_OK);
    hubfix_reopen(f);
    b = hub__find_site(f->h, "b");
    assert_false(b->has_beat_key);
    mac_beat(f, "b", "b", "state", KEY_A, NULL, NULL); /* not even under a's key */
    mac_beat(f, "b", "b", "state", KEY_B, NULL, NULL);
    assert_int_equal(f->h->beats_mac, 0);
    assert_int_equal(replies(f, "b", "rekey", NULL), 1); /* once for both */
    hello_with_key(f, "b", KEY_B);                       /* the site's answer */
    mac_beat(f, "b", "b", "state", KEY_B, NULL, NULL);
    assert_int_equal(f->h->beats_mac, 1);
}

/* A site asked for its key says hello at once: welcomed, even within a welcome's round trip. */
static void test_rekey_answer_welcomed(void **state)
{
    hubfix *f = *state;
    enrolled(f, "a");
    hello_with_key(f, "a", KEY_A);
    assert_int_equal(replies(f, "a", "welcome", NULL), 1);
    mac_beat(f, "a", "a", "state", KEY_B, NULL, NULL); /* a forgery: the hub asks */
    assert_int_equal(replies(f, "a", "rekey", NULL), 1);
    hello_with_key(f, "a", KEY_A);
    assert_int_equal(replies(f, "a", "welcome", NULL), 2);
}

/* Forged and replayed MACs: counted, dropped, one rekey per period at most. */
static void check_attacks(hubfix *f)
{
    enrolled(f, "a");
    enrolled(f, "b");
    hello_with_key(f, "a", KEY_A);
    hello_with_key(f, "b", KEY_B);
    uint64_t forged = f->h->msg.forged;
    for (int i = 0; i < 5; i++) /* under a key not a's */
        mac_beat(f, "a", "a", "state", KEY_B, NULL, NULL);
    drain(f);
    assert_int_equal(replies(f, "a", "rekey", NULL), 1);
    assert_int_equal(f->h->rekeys, 1);
    /* b's MAC under b's key, on a's topic: kid b may not speak there */
    mac_beat(f, "b", "a", "state", KEY_B, NULL, NULL);
    /* a goodbye under a's good MAC: goodbyes are signed */
    mac_beat(f, "a", "a", "bye", KEY_A, NULL, NULL);
    drain(f);
    assert_int_equal(f->h->msg.forged, forged + 7);
    assert_int_equal(f->h->beats_mac, 0);
    assert_true(hub__find_site(f->h, "a")->alive);
    /* a good one, then its copy */
    char *copy = NULL;
    size_t copy_len = 0;
    mac_beat(f, "a", "a", "state", KEY_A, &copy, &copy_len);
    drain(f);
    assert_int_equal(f->h->beats_mac, 1);
    char topic[PROTO_TOPIC_MAX], mac[MSG_MAC_HEX_BYTES];
    proto_topic(topic, sizeof topic, "site", "a", "state");
    msg_mac(KEY_A, topic, copy, copy_len, mac);
    uint64_t replayed = f->h->msg.replayed;
    hub__on_message(f->h, topic, copy, copy_len, "a", mac);
    drain(f);
    assert_int_equal(f->h->msg.replayed, replayed + 1);
    assert_int_equal(f->h->beats_mac, 1);
    free(copy);
}

static void test_attacks(void **state)
{
    check_attacks(*state);
}

/* With worker threads running, MAC'd heartbeats stay on the loop; signed ones still go. */
static void test_macs_stay_on_the_loop(void **state)
{
    hubfix *f = *state;
    enrolled(f, "a");
    hello_with_key(f, "a", KEY_A);
    for (int i = 0; i < 20; i++)
        mac_beat(f, "a", "a", "state", KEY_A, NULL, NULL);
    assert_int_equal(f->h->beats_mac, 20); /* at once: nothing to drain */
    assert_int_equal(f->h->beats_offloaded, 0);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddArrayToObject(body, "running");
    char topic[PROTO_TOPIC_MAX], sig[129];
    size_t len;
    proto_topic(topic, sizeof topic, "site", "a", "state");
    char *payload = hubfix_signed(f, hubfix_site_key(f, "a"), topic, body, "state", &len, sig);
    hub__on_message(f->h, topic, payload, len, "a", sig);
    drain(f);
    assert_int_equal(f->h->beats_offloaded, 1);
    assert_int_equal(replies(f, "a", "rekey", NULL), 0);
    free(payload);
    cJSON_Delete(body);
}

/* A known site's hello with a new key (it restarted) is welcomed at once, naming the new key. */
static void test_new_key_welcomed_at_once(void **state)
{
    hubfix *f = *state;
    enrolled(f, "a");
    hello_with_key(f, "a", KEY_A);
    hello_with_key(f, "a", KEY_A); /* a repeat within the welcome's round trip: not again */
    assert_int_equal(replies(f, "a", "welcome", NULL), 1);
    hello_with_key(f, "a", KEY_B);
    const cJSON *welcome = NULL;
    assert_int_equal(replies(f, "a", "welcome", &welcome), 2);
    char want[MSG_MAC_KEY_ID_BYTES];
    msg_mac_key_id(KEY_B, want);
    assert_string_equal(jsonx_str(welcome, "beat_key_id"), want);
    mac_beat(f, "a", "a", "state", KEY_A, NULL, NULL); /* the old key no longer */
    mac_beat(f, "a", "a", "state", KEY_B, NULL, NULL);
    assert_int_equal(f->h->beats_mac, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_taken_named_and_used, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_stored_sealed_and_restored, hubfix_setup,
                                        hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_rekey_answer_welcomed, hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_attacks, hubfix_setup, hubfix_teardown),
        cmocka_unit_test_setup_teardown(test_macs_stay_on_the_loop, hubfix_setup_workers,
                                        hubfix_teardown_workers),
        cmocka_unit_test_setup_teardown(test_new_key_welcomed_at_once, hubfix_setup,
                                        hubfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
