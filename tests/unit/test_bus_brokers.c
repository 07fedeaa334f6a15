/*
 * The bus's broker list against two real mosquitto brokers: the list's
 * parser (good and hostile lists), failing over when the broker in use is
 * killed, subscriptions made again on the new broker, going back to the
 * first once it answers again, and a first broker down at start.
 */
#include "base/err.h"
#include "base/os.h"
#include "helpers/testkit.h"
#include "io/bus.h"

#include <cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define TOPIC "outpost/v1/test/brokers"
#define WAIT_MS 15000

typedef struct fixture {
    testkit_broker first, second;
    ident signer;
    int received;
} fixture;

static void count_message(void *ctx, const char *topic, const void *payload, size_t len,
                          const char *kid, const char *sig)
{
    fixture *fx = ctx;
    fx->received++;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (testkit_broker_start(&fx->first) != 0 || testkit_broker_start(&fx->second) != 0) {
        testkit_broker_stop(&fx->first);
        free(fx);
        return -1;
    }
    testkit_ident(&fx->signer, "brokers-test", 7);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    testkit_broker_stop(&fx->first);
    testkit_broker_stop(&fx->second);
    free(fx);
    return 0;
}

static void test_parse_lists(void **state)
{
    bus_broker list[BUS_MAX_BROKERS];
    int n = 0;
    char err[200];
    assert_int_equal(
        bus_parse_brokers(" a.example , 10.0.0.2:8883,[::1]:1884", 1883, list, 8, &n, err, 200),
        OP_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].host, "a.example");
    assert_int_equal(list[0].port, 1883);
    assert_string_equal(list[1].host, "10.0.0.2");
    assert_int_equal(list[1].port, 8883);
    assert_string_equal(list[2].host, "::1");
    assert_int_equal(list[2].port, 1884);
    assert_int_equal(bus_parse_brokers("h", 9, list, 8, &n, err, 200), OP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].port, 9);

    char long_host[300];
    memset(long_host, 'x', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    const char *bad[] = {"",
                         ",",
                         "a,",
                         "a:0",
                         "a:65536",
                         "a:b",
                         "a:",
                         "[::1",
                         "[::1]x",
                         "h h",
                         "a:1:2",
                         ":1883",
                         "a,,b",
                         "a:+1883",
                         "a:18 83",
                         long_host,
                         "[]:1",
                         "a:99999999",
                         "a,b,c,d,e,f,g,h,i"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (bus_parse_brokers(bad[i], 1883, list, 8, &n, err, 200) != OP_EINVAL)
            fail_msg("accepted '%.40s'", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static bus *open_list(fixture *fx, const char *client_id, int first_port, int second_port,
                      int return_after_ms)
{
    bus_broker list[2] = {{"127.0.0.1", first_port}, {"127.0.0.1", second_port}};
    bus_config config = {.brokers = list,
                         .n_brokers = 2,
                         .return_after_ms = return_after_ms,
                         .client_id = client_id,
                         .session_expiry_s = 60,
                         .keepalive_s = 5};
    bus *b = NULL;
    assert_int_equal(bus_open(&config, &fx->signer, count_message, fx, &b), OP_OK);
    return b;
}

/* Runs b until it is subscribed on broker index, or fails the test. */
static void until_on(bus *b, int index)
{
    int64_t deadline = os_mono_ms() + WAIT_MS;
    while (!(bus_subscribed(b) && bus_broker_index(b) == index)) {
        if (os_mono_ms() > deadline) fail_msg("not on broker %d (%s)", index, bus_broker_name(b));
        assert_int_equal(bus_loop(b, 10), OP_OK);
    }
}

/* A message published on b comes back to it through its subscription. */
static void round_trip(fixture *fx, bus *b)
{
    int before = fx->received;
    cJSON *body = cJSON_CreateObject();
    assert_int_equal(bus_publish(b, TOPIC, body, "test"), OP_OK);
    cJSON_Delete(body);
    int64_t deadline = os_mono_ms() + WAIT_MS;
    while (fx->received == before) {
        if (os_mono_ms() > deadline) fail_msg("nothing came back on %s", bus_broker_name(b));
        assert_int_equal(bus_loop(b, 10), OP_OK);
    }
}

static void test_fails_over_and_goes_back(void **state)
{
    fixture *fx = *state;
    bus *b = open_list(fx, "brokers-client", fx->first.port, fx->second.port, 200);
    assert_int_equal(bus_subscribe(b, TOPIC), OP_OK);
    until_on(b, 0);
    round_trip(fx, b);
    assert_int_equal(bus_moves(b), 0);

    testkit_broker_kill(&fx->first);
    until_on(b, 1); /* the subscription was made again on the second broker */
    char expected[64];
    snprintf(expected, sizeof expected, "127.0.0.1:%d", fx->second.port);
    assert_string_equal(bus_broker_name(b), expected);
    assert_int_equal(bus_moves(b), 1);
    round_trip(fx, b);

    assert_int_equal(testkit_broker_start(&fx->first), 0); /* back, same port */
    until_on(b, 0);
    assert_int_equal(bus_moves(b), 2);
    round_trip(fx, b);
    bus_close(b);
}

static void test_first_down_at_start_uses_the_second(void **state)
{
    fixture *fx = *state;
    int dead = testkit_free_port();
    bus *b = open_list(fx, "brokers-late", dead, fx->second.port, 0);
    assert_int_equal(bus_subscribe(b, TOPIC), OP_OK);
    until_on(b, 1);
    assert_int_equal(bus_moves(b), 0); /* a first connection is not a move */
    round_trip(fx, b);
    bus_close(b);
}

/* return_after_ms 0: a client stays where it is (a CLI command, a cluster). */
static void test_no_return_when_not_asked(void **state)
{
    fixture *fx = *state;
    bus *b = open_list(fx, "brokers-stay", fx->first.port, fx->second.port, 0);
    until_on(b, 0);
    testkit_broker_kill(&fx->first);
    until_on(b, 1);
    assert_int_equal(testkit_broker_start(&fx->first), 0);
    int64_t until = os_mono_ms() + 1500;
    while (os_mono_ms() < until)
        assert_int_equal(bus_loop(b, 10), OP_OK);
    assert_int_equal(bus_broker_index(b), 1);
    assert_int_equal(bus_moves(b), 1);
    bus_close(b);
}

static void test_too_many_brokers_refused(void **state)
{
    fixture *fx = *state;
    bus_broker list[BUS_MAX_BROKERS + 1];
    for (int i = 0; i <= BUS_MAX_BROKERS; i++)
        list[i] = (bus_broker){"127.0.0.1", 1883};
    bus_config config = {.brokers = list, .n_brokers = BUS_MAX_BROKERS + 1, .client_id = "x"};
    bus *b = NULL;
    assert_int_equal(bus_open(&config, &fx->signer, count_message, fx, &b), OP_EINVAL);
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_lists),
        cmocka_unit_test_setup_teardown(test_fails_over_and_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_down_at_start_uses_the_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_return_when_not_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_brokers_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
