/*
 * Unit tests for workers: heartbeats checked on a pool of threads. Each
 * site's heartbeats come back in the order they went in, whatever the lanes
 * do meanwhile; a forged one comes back refused and counted; a lane holds
 * its bound and no more (in and out together); a pool freed with work in
 * flight frees it (ASan checks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "helpers/testkit.h"
#include "hub/workers.h"
#include "wire/ident.h"
#include "wire/msg.h"
#include "wire/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITES 8
#define PER_SITE 150

/* A heartbeat of site signed by signer, ready to submit (the caller submits or frees it). */
static hub_beat *beat_at(const ident *site, const ident *signer, size_t index, uint64_t seq,
                         int64_t ts_ms)
{
    char topic[PROTO_TOPIC_MAX], sig[129];
    assert_int_equal(proto_topic(topic, sizeof topic, "site", site->id, "state"), OP_OK);
    cJSON *body = cJSON_CreateObject();
    assert_non_null(body);
    cJSON_AddNumberToObject(body, "cores", 2);
    size_t len = 0;
    char *text = msg_encode(body, site->id, "state", seq, ts_ms, &len);
    cJSON_Delete(body);
    assert_non_null(text);
    assert_int_equal(msg_sign(signer, topic, text, len, sig), OP_OK);
    hub_beat *b = hub_beat_new(text, len);
    free(text);
    assert_non_null(b);
    snprintf(b->topic, sizeof b->topic, "%s", topic);
    snprintf(b->kid, sizeof b->kid, "%s", site->id);
    snprintf(b->sig, sizeof b->sig, "%s", sig);
    memcpy(b->pk, site->pk, 32);
    b->site = index;
    return b;
}

static hub_beat *beat(const ident *site, const ident *signer, size_t index, uint64_t seq)
{
    return beat_at(site, signer, index, seq, os_now_ms());
}

/* The next checked beat, waiting up to 10 s for it. */
static hub_beat *take_wait(hub_workers *w)
{
    for (int i = 0; i < 10000; i++) {
        hub_beat *b = hub_workers_take(w);
        if (b) return b;
        usleep(1000);
    }
    fail_msg("no beat came back within 10 s");
    return NULL;
}

static void test_order_per_site(void **state)
{
    (void)state;
    ident hub_id, sites[SITES];
    testkit_ident(&hub_id, "hub", 1);
    for (int i = 0; i < SITES; i++) {
        char name[32];
        snprintf(name, sizeof name, "site-%d", i);
        testkit_ident(&sites[i], name, (uint8_t)(10 + i));
    }
    hub_workers *w = NULL;
    assert_int_equal(hub_workers_new(3, SITES * PER_SITE, &hub_id, 30000, &w), OP_OK);
    /* interleaved: site 0's first, site 1's first, ... then every site's second */
    for (int k = 0; k < PER_SITE; k++)
        for (int i = 0; i < SITES; i++)
            assert_int_equal(
                hub_workers_submit(w, beat(&sites[i], &sites[i], (size_t)i, (uint64_t)(1000 + k))),
                OP_OK);
    uint64_t last[SITES] = {0};
    for (int n = 0; n < SITES * PER_SITE; n++) {
        hub_beat *b = take_wait(w);
        assert_int_equal(b->rc, OP_OK);
        assert_non_null(b->body);
        assert_true(b->hdr.seq > last[b->site]); /* never behind its site's previous one */
        last[b->site] = b->hdr.seq;
        assert_int_equal(b->stats.accepted, 1);
        hub_beat_free(b);
    }
    for (int i = 0; i < SITES; i++)
        assert_int_equal(last[i], 1000 + PER_SITE - 1);
    assert_int_equal(hub_workers_pending(w), 0);
    assert_null(hub_workers_take(w));
    hub_workers_free(w);
}

static void test_forged_refused(void **state)
{
    (void)state;
    ident hub_id, a, b;
    testkit_ident(&hub_id, "hub", 1);
    testkit_ident(&a, "site-a", 2);
    testkit_ident(&b, "site-b", 3);
    hub_workers *w = NULL;
    assert_int_equal(hub_workers_new(2, 16, &hub_id, 30000, &w), OP_OK);
    /* site b's heartbeat, signed with a's key: the signature cannot match b's */
    assert_int_equal(hub_workers_submit(w, beat(&b, &a, 1, 5)), OP_OK);
    hub_beat *got = take_wait(w);
    assert_int_equal(got->rc, OP_ESIG);
    assert_null(got->body);
    assert_int_equal(got->stats.forged, 1);
    assert_int_equal(got->stats.accepted, 0);
    hub_beat_free(got);
    /* a timestamp ten minutes old: refused as expired, whatever its signature */
    assert_int_equal(hub_workers_submit(w, beat_at(&a, &a, 0, 6, os_now_ms() - 600000)), OP_OK);
    got = take_wait(w);
    assert_int_equal(got->rc, OP_EEXPIRED);
    assert_int_equal(got->stats.expired, 1);
    hub_beat_free(got);
    /* and a good one still passes */
    assert_int_equal(hub_workers_submit(w, beat(&a, &a, 0, 7)), OP_OK);
    got = take_wait(w);
    assert_int_equal(got->rc, OP_OK);
    hub_beat_free(got);
    hub_workers_free(w);
}

static void test_lane_full(void **state)
{
    (void)state;
    ident hub_id, a;
    testkit_ident(&hub_id, "hub", 1);
    testkit_ident(&a, "site-a", 2);
    hub_workers *w = NULL;
    assert_int_equal(hub_workers_new(1, 4, &hub_id, 30000, &w), OP_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(hub_workers_submit(w, beat(&a, &a, 0, (uint64_t)(10 + i))), OP_OK);
    /* in or out, the four count until taken: the fifth is refused and stays the caller's */
    hub_beat *extra = beat(&a, &a, 0, 20);
    assert_int_equal(hub_workers_submit(w, extra), OP_EFULL);
    assert_int_equal(hub_workers_pending(w), 4);
    hub_beat *first = take_wait(w);
    assert_int_equal(first->hdr.seq, 10);
    hub_beat_free(first);
    assert_int_equal(hub_workers_submit(w, extra), OP_OK); /* room again */
    hub_workers_free(w);                                   /* frees the four held */
}

static void test_shutdown_in_flight(void **state)
{
    (void)state;
    ident hub_id, a;
    testkit_ident(&hub_id, "hub", 1);
    testkit_ident(&a, "site-a", 2);
    hub_workers *w = NULL;
    assert_int_equal(hub_workers_new(4, 1000, &hub_id, 30000, &w), OP_OK);
    for (int i = 0; i < 500; i++)
        assert_int_equal(hub_workers_submit(w, beat(&a, &a, (size_t)i, (uint64_t)(100 + i))),
                         OP_OK);
    hub_workers_free(w); /* some checked, some not: all freed, threads joined */
    hub_workers_free(NULL);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ident hub_id;
    testkit_ident(&hub_id, "hub", 1);
    hub_workers *w = (hub_workers *)&hub_id;
    assert_int_equal(hub_workers_new(0, 10, &hub_id, 30000, &w), OP_EINVAL);
    assert_null(w);
    assert_int_equal(hub_workers_new(65, 10, &hub_id, 30000, &w), OP_EINVAL);
    assert_int_equal(hub_workers_new(2, 0, &hub_id, 30000, &w), OP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_per_site), cmocka_unit_test(test_forged_refused),
        cmocka_unit_test(test_lane_full),      cmocka_unit_test(test_shutdown_in_flight),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
