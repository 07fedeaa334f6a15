/*
 * Many sites lost at once, without processes, against an in-memory store:
 * every lost site is on the audit log (one site-lost entry each), the jobs
 * of those that held some are taken back, and the hub's log says it in a
 * few lines rather than one per site. The time 20,000 losses take is
 * printed (never asserted: speed is the benchmarks' business). And after
 * the hub's broker link returns, no site is lost while others silent since
 * the outage are still coming back (a reconnect storm). With a link per
 * broker (broker_mode all), a link that is down spares the sites heard last
 * on it, and only them, for at most HUB_STORM_MAX_MS while another hears.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers/capture.h"
#include "helpers/hub_fixture.h"
#include "helpers/testkit.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "core/jobstate.h"
#include "io/bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASS_SITES 20000
#define MASS_JOBS 200

/* n live sites "m-00000"..., 4 cores and 400 W each. */
static void add_sites(hubfix *f, int n)
{
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "m-%05d", i);
        hub_site *s = hub__add_site(f->h, id);
        assert_non_null(s);
        s->class_bit = CLASS_DC;
        s->cores = 4;
        s->memory_mb = 4096;
        s->power_budget_watts = 400;
        s->watts_per_core = 10;
        s->alive = 1;
        s->heard = 1;
        s->last_heartbeat_mono = os_mono_ms();
    }
}

/* Every site silent for longer than the loss timeout. */
static void silence_all(hubfix *f)
{
    int64_t long_ago = os_mono_ms() - f->h->site_lost_after_ms - 1000;
    for (size_t i = 0; i < f->h->n_sites; i++)
        f->h->sites[i].last_heartbeat_mono = long_ago;
}

static int count_audited(hubfix *f, const char *kind)
{
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(hubdb_audit_entries(f->h->db, 0, NULL, kind, INT64_MAX, arr), OP_OK);
    int n = cJSON_GetArraySize(arr);
    cJSON_Delete(arr);
    return n;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (strstr(buf, needle)) n++;
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* The fleet check in one transaction, as the loop runs it, with the log at INFO: its text. */
static char *check_logged(hubfix *f, int64_t *check_us, int64_t *commit_us)
{
    capture cap;
    assert_int_equal(capture_start(&cap, 2), 0);
    log_set_level(LOG_LEVEL_INFO);
    int64_t start = os_mono_us();
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__check_fleet(f->h);
    int64_t checked = os_mono_us();
    int rc = hub__commit(f->h);
    *commit_us = os_mono_us() - checked;
    *check_us = checked - start;
    log_set_level(LOG_LEVEL_ERROR + 1);
    char *text = capture_end(&cap);
    assert_int_equal(rc, OP_OK);
    assert_non_null(text);
    return text;
}

static void test_mass_loss(void **state)
{
    hubfix *f = *state;
    add_sites(f, MASS_SITES);
    int64_t ids[MASS_JOBS];
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    for (int i = 0; i < MASS_JOBS; i++)
        ids[i] = hubfix_submit(f, "{\"kind\":\"noop\",\"resources\":{\"cores\":4}}");
    hub__place_pass(f->h);
    assert_int_equal(hub__commit(f->h), OP_OK);
    int holding = 0;
    for (size_t i = 0; i < f->h->n_sites; i++)
        holding += f->h->sites[i].reserved_jobs > 0;
    for (int i = 0; i < MASS_JOBS; i++)
        assert_int_equal(hubfix_state(f, ids[i]), JOB_PLACED);
    silence_all(f);
    int64_t check_us, commit_us;
    char *log = check_logged(f, &check_us, &commit_us);
    print_message("lost %d sites (%d holding jobs): fleet check %.1f ms, commit %.1f ms, "
                  "%zu bytes of log\n",
                  MASS_SITES, holding, (double)check_us / 1000.0, (double)commit_us / 1000.0,
                  strlen(log));
    for (size_t i = 0; i < f->h->n_sites; i++)
        assert_false(f->h->sites[i].alive);
    for (int i = 0; i < MASS_JOBS; i++)
        assert_int_equal(hubfix_state(f, ids[i]), JOB_QUEUED);
    assert_int_equal(count_audited(f, "site-lost"), MASS_SITES);
    /* the first few sites by name, then one line for the rest (each job taken back keeps
     * its own line) */
    assert_int_equal(count_lines(log, "WARN hub: site m-"), HUB_LOSSES_LOGGED);
    assert_int_equal(count_lines(log, "WARN hub: 19990 more sites lost"), 1);
    assert_int_equal(count_lines(log, "WARN hub:"), HUB_LOSSES_LOGGED + 1);
    free(log);
}

static int alive_count(hubfix *f)
{
    int n = 0;
    for (size_t i = 0; i < f->h->n_sites; i++)
        n += f->h->sites[i].alive;
    return n;
}

static void check_fleet(hubfix *f)
{
    assert_int_equal(hubdb_begin(f->h->db), OP_OK);
    hub__check_fleet(f->h);
    assert_int_equal(hub__commit(f->h), OP_OK);
}

static void test_reconnect_storm_loses_nothing_while_sites_return(void **state)
{
    hubfix *f = *state;
    add_sites(f, 100);
    int64_t now = os_mono_ms(), lost_after = f->h->site_lost_after_ms;
    /* the link returned long ago enough that the backoff grace is over */
    f->h->links[0].heard_again_mono = now - lost_after - BUS_BACKOFF_MAX_MS - 5000;
    for (size_t i = 0; i < f->h->n_sites; i++) /* every site silent since before that */
        f->h->sites[i].last_heartbeat_mono = f->h->links[0].heard_again_mono - 1000;
    for (size_t i = 0; i < 10; i++)
        hub__site_heard(f->h, &f->h->sites[i]); /* returning now */
    check_fleet(f);
    assert_int_equal(alive_count(f), 100); /* the storm goes on: the other 90 wait */
    /* the returns stopped longer ago than the loss timeout: the rest are lost */
    f->h->links[0].returning_mono = now - lost_after - 2000;
    for (size_t i = 0; i < 10; i++)
        f->h->sites[i].last_heartbeat_mono = now;
    check_fleet(f);
    assert_int_equal(alive_count(f), 10);
    /* a site returning long after the link did (past HUB_STORM_MAX_MS) shields no one */
    add_sites(f, 5);
    for (size_t i = 100; i < 105; i++)
        f->h->sites[i].last_heartbeat_mono = now - lost_after - 1000;
    f->h->links[0].heard_again_mono = now - HUB_STORM_MAX_MS - 1;
    hub__site_heard(f->h, &f->h->sites[0]);
    f->h->sites[0].last_heartbeat_mono = f->h->links[0].heard_again_mono - 1;
    hub__site_heard(f->h, &f->h->sites[0]);
    check_fleet(f);
    assert_int_equal(alive_count(f), 10);
}

static void ignore_message(void *ctx, const char *topic, const void *payload, size_t len,
                           const char *kid, const char *sig)
{
}

/* A beats session that cannot connect (nothing listens on its port): a link that is down. */
static bus *dead_link_bus(hubfix *f)
{
    bus_config config = {.host = "127.0.0.1",
                         .port = testkit_free_port(),
                         .client_id = "loss-test-dead-link",
                         .clean_start = 1,
                         .keepalive_s = 10};
    bus *b = NULL;
    assert_int_equal(bus_open(&config, &f->h->identity, ignore_message, NULL, &b), OP_OK);
    assert_int_equal(bus_loop(b, 0), OP_OK);
    assert_false(bus_subscribed(b));
    return b;
}

static void test_link_down_spares_only_its_own_sites(void **state)
{
    hubfix *f = *state;
    add_sites(f, 10);
    f->h->n_links = 2; /* link 0 without a bus hears (as in every unit test); link 1 is down */
    f->h->links[1].beats = dead_link_bus(f);
    for (size_t i = 5; i < 10; i++)
        f->h->sites[i].link = 1;
    silence_all(f);
    check_fleet(f);
    assert_int_equal(alive_count(f), 5); /* link 0's five lost, link 1's spared */
    for (size_t i = 5; i < 10; i++)
        assert_true(f->h->sites[i].alive);
    /* down for longer than a storm while link 0 hears: its sites had time to move; lost */
    f->h->links[1].deaf_since_mono = os_mono_ms() - HUB_STORM_MAX_MS - 1;
    check_fleet(f);
    assert_int_equal(alive_count(f), 0);
}

/*
 * A site heard on link 0 after link 1 went down may have gone back to link
 * 1's broker before the hub's link did: spared while link 1 is down; one
 * silent since before the outage began is not.
 */
static void test_a_site_silent_since_another_link_went_down_is_spared(void **state)
{
    hubfix *f = *state;
    add_sites(f, 2);
    int64_t now = os_mono_ms(), lost_after = f->h->site_lost_after_ms;
    f->h->n_links = 2;
    f->h->links[1].beats = dead_link_bus(f);
    f->h->links[1].deaf_since_mono = f->h->links[1].outage_mono = now - lost_after - 5000;
    f->h->sites[0].last_heartbeat_mono = now - lost_after - 1000; /* after link 1 went down */
    f->h->sites[1].last_heartbeat_mono = now - lost_after - 9000; /* before */
    check_fleet(f);
    assert_true(f->h->sites[0].alive);
    assert_false(f->h->sites[1].alive);
    /* down past a storm's length while link 0 hears: no longer spared */
    f->h->links[1].deaf_since_mono = now - HUB_STORM_MAX_MS - 1;
    check_fleet(f);
    assert_false(f->h->sites[0].alive);
}

static void test_the_only_link_down_spares_every_site_however_long(void **state)
{
    hubfix *f = *state;
    add_sites(f, 10);
    f->h->n_links = 1; /* broker_mode failover: the hub hears nobody at all */
    f->h->links[0].beats = dead_link_bus(f);
    silence_all(f);
    check_fleet(f);
    f->h->links[0].deaf_since_mono = os_mono_ms() - HUB_STORM_MAX_MS - 1;
    check_fleet(f);
    assert_int_equal(alive_count(f), 10);
}

#define HUB_TEST(fn) cmocka_unit_test_setup_teardown(fn, hubfix_setup_memory, hubfix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HUB_TEST(test_mass_loss),
        HUB_TEST(test_reconnect_storm_loses_nothing_while_sites_return),
        HUB_TEST(test_link_down_spares_only_its_own_sites),
        HUB_TEST(test_the_only_link_down_spares_every_site_however_long),
        HUB_TEST(test_a_site_silent_since_another_link_went_down_is_spared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
