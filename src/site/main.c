/*
 * `outpost site`: the agent's start-up, its loop and shutdown. The loop runs
 * the bus for up to 20 ms, then the jobs, the local socket and the periodic
 * work (power checks, leases, hello, audit head, heartbeat, outbox resend),
 * and commits what the iteration wrote before anything of it is sent.
 */
#include "site/site.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "io/keyfile.h"
#include "io/sdnotify.h"
#include "site/site_db.h"
#include "site/site_int.h"
#include "wire/proto.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITE_LEASE_CHECK_MS 1000
#define SITE_OBSERVE_EVERY_MS 60000 /* the forecaster and grid ring learn once a minute */
#define SITE_OFFLINE_READY_MS 5000  /* an enrolled site unable to reach the broker runs offline */

/* How the loop ended. */
enum { SITE_RUNNING, SITE_STOPPED, SITE_LEFT, SITE_REFUSED, SITE_BUS_FAILED };

typedef struct site_args {
    const char *data_dir, *config_path, *token_text, *token_file, *port_text, *level;
    char *token_read; /* --token-file's text (freed by site_main) */
} site_args;

site *site__new(void)
{
    site *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->local_fd = -1;
    site__init_timers(s);
    return s;
}

void site__init_timers(site *s)
{
    timer_init(&s->hello_timer, PROTO_HELLO_FIRST_MS);
    timer_init(&s->head_timer, s->audit_head_ms);
    timer_init(&s->heartbeat_timer, s->heartbeat_ms);
    timer_init(&s->resend_timer, s->resend_ms);
    timer_init(&s->power_timer, s->reaction_ms / 4 > 50 ? s->reaction_ms / 4 : 50);
    timer_init(&s->lease_timer, SITE_LEASE_CHECK_MS);
    timer_init(&s->observe_timer, SITE_OBSERVE_EVERY_MS);
}

void site__free(site *s)
{
    if (!s) return;
    while (s->n_jobs > 0) {
        /* Keep the stored 'accepted' row and the work dir: the job restarts with the agent. */
        s->jobs[0]->workdir[0] = '\0';
        site__remove_job(s, 0);
    }
    site__probe_stop(s);
    site__artifacts_close(s);
    cJSON_Delete(s->events);
    cJSON_Delete(s->results);
    cJSON_Delete(s->locals);
    cJSON_Delete(s->last_beat);
    site__predict_expire(s, 1); /* questions still waiting for the hub get the local answer */
    site__local_close(s);
    site__metrics_close(s);
    if (s->bus) bus_close(s->bus);
    auditlog_close(s->audit);
    power_trace_clear(&s->trace);
    policy_free(s->policy);
    sitedb_close(s->db);
    ident_wipe(&s->identity);
    sodium_memzero(s->beat_key, sizeof s->beat_key);
    free(s);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost site --config FILE --data-dir DIR [--token TEXT | --token-file F]\n"
            "\n"
            "Runs a site agent: enrolls with the hub (first start needs a one-time token or\n"
            "join bundle from `outpost token create --class pod|car|dc --site ID`), reports\n"
            "capacity and power\n"
            "budget, runs offered jobs in the sandbox and keeps results until the hub\n"
            "acknowledges them.\n"
            "\n"
            "  --config FILE      site configuration (see examples/site.conf); required\n"
            "  --data-dir DIR     state directory (created if missing); required\n"
            "  --token TEXT       one-time join token or bundle (opj1.: with the site's\n"
            "                     broker certificate, kept in DIR/tls); first start only\n"
            "  --token-file FILE  the same, read from FILE (keeps it out of ps)\n"
            "  --broker-port N    overrides broker_port from the configuration\n"
            "  --log-level L      debug, info, warn or error\n"
            "\n"
            "Exit codes: 0 stopped, 1 runtime failure, 2 bad usage/config/token,\n"
            "3 enrollment refused by the hub.\n");
}

/* The command line into a; -1 to go on, else the exit code (after usage or an error). */
static int parse_args(int argc, char **argv, site_args *a)
{
    static struct option opts[] = {{"data-dir", required_argument, 0, 'd'},
                                   {"config", required_argument, 0, 'c'},
                                   {"token", required_argument, 0, 't'},
                                   {"token-file", required_argument, 0, 'f'},
                                   {"broker-port", required_argument, 0, 'p'},
                                   {"log-level", required_argument, 0, 'l'},
                                   {"help", no_argument, 0, 'h'},
                                   {0, 0, 0, 0}};
    int opt;
    optind = 1;
    memset(a, 0, sizeof *a);
    while ((opt = getopt_long(argc, argv, "d:c:t:f:p:l:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            a->data_dir = optarg;
            break;
        case 'c':
            a->config_path = optarg;
            break;
        case 't':
            a->token_text = optarg;
            break;
        case 'f':
            a->token_file = optarg;
            break;
        case 'p':
            a->port_text = optarg;
            break;
        case 'l':
            a->level = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!a->data_dir || !a->config_path) {
        fprintf(stderr, "outpost site: --config and --data-dir are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (a->level && log_parse_level(a->level) < 0) {
        fprintf(stderr, "outpost site: --log-level must be debug, info, warn or error\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* The configuration file, then the command line's overrides. EXIT_OK or EXIT_USAGE. */
static int configure(site *s, const site_args *a)
{
    char err[512] = "";
    snprintf(s->data_dir, sizeof s->data_dir, "%s", a->data_dir);
    if (site__parse_config(s, a->config_path, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost site: %s\n", err);
        return EXIT_USAGE;
    }
    if (a->level) log_set_level(log_parse_level(a->level));
    if (a->port_text && util_parse_i64(a->port_text, 1, 65535, &s->broker_port) != OP_OK) {
        fprintf(stderr, "outpost site: --broker-port must be 1-65535\n");
        return EXIT_USAGE;
    }
    site__init_timers(s);
    return EXIT_OK;
}

/* The data dir: identity, site.db with its audit log, the hub pin, work/. An exit code. */
static int open_state(site *s, const site_args *a)
{
    char err[512] = "", path[PATH_MAX], site_id[64];
    snprintf(site_id, sizeof site_id, "%s", s->identity.id);
    if (os_mkdir_p(a->data_dir) != OP_OK ||
        util_fmt(path, sizeof path, "%s/identity", a->data_dir) != OP_OK ||
        keyfile_load_or_create(path, site_id, &s->identity) != OP_OK) {
        log_error("site", "cannot set up identity in %s", a->data_dir);
        return EXIT_FAILURE_RUNTIME;
    }
    randombytes_buf(s->beat_key, sizeof s->beat_key);
    msg_mac_key_id(s->beat_key, s->beat_key_id);
    if (util_fmt(path, sizeof path, "%s/site.db", a->data_dir) != OP_OK ||
        sitedb_open(path, &s->db) != OP_OK || auditlog_attach(s->db, &s->audit) != OP_OK)
        return EXIT_FAILURE_RUNTIME;
    char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    if (site__load_hub_pin(s, a->token_text, err, sizeof err) != OP_OK ||
        (s->broker_tls && site__tls_files(s, ca, cert, key, err, sizeof err) != OP_OK)) {
        fprintf(stderr, "outpost site: %s\n", err);
        return EXIT_USAGE;
    }
    s->was_enrolled = s->enrolled;
    if (util_fmt(path, sizeof path, "%s/work", a->data_dir) != OP_OK || os_mkdir_p(path) != OP_OK)
        return EXIT_FAILURE_RUNTIME;
    return EXIT_OK;
}

/*
 * Where the site's own sequence numbers start: the wall clock in
 * microseconds, or past the last one stored when that is higher (the clock
 * stepped back since the last run). The hub keeps this site's top and refuses
 * anything not above it, so without the stored number a clock set back would
 * silence the site until it caught up. The number is stored with work the
 * site records anyway (an accepted offer) and at a clean stop, never on its
 * own (an idle site writes nothing); the margin covers what was sent since.
 */
static uint64_t own_seq_start(site *s)
{
    const uint64_t margin = 1000000000ULL;
    uint64_t clock_us = (uint64_t)os_now_ms() * 1000;
    char text[32] = "";
    int64_t stored = 0;
    if (sitedb_meta_get(s->db, "own_seq", text, sizeof text) != OP_OK ||
        util_parse_i64(text, 1, INT64_MAX, &stored) != OP_OK)
        return clock_us;
    return (uint64_t)stored + margin > clock_us ? (uint64_t)stored + margin : clock_us;
}

void site__store_own_seq(site *s)
{
    if (!s->bus || !s->db) return;
    char value[32];
    snprintf(value, sizeof value, "%llu", (unsigned long long)bus_seq(s->bus));
    if (site__ensure_tx(s) != OP_OK || sitedb_meta_set(s->db, "own_seq", value) != OP_OK)
        s->store_failed = 1;
}

/*
 * The link's own protections: without broker_tls the site says so at start
 * and among the protections it lacks (the hub shows them); with it, a meter
 * topic of another form than the ACL's is one that any client may write.
 */
static void check_link(site *s)
{
    size_t used = strlen(s->caps.missing);
    if (!s->broker_tls) {
        log_warn("site", "broker_tls is off: the broker link is not authenticated or encrypted");
        snprintf(s->caps.missing + used, sizeof s->caps.missing - used, "%sbroker_tls",
                 used ? "," : "");
    } else if (s->meter_topic[0] && !site__meter_topic_ok(s)) {
        log_warn("site",
                 "meter_topic %s is not " MSG_TOPIC_ROOT "meter/%s/<meter-id>: the broker's ACL"
                 " lets only that form be written by the meter alone and read by this site alone",
                 s->meter_topic, s->identity.id);
    }
}

/* The sandbox's protections on this machine, then the broker: inbox and meter topic. */
static int connect_bus(site *s)
{
    char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], err[512];
    if (strcmp(s->cgroup_dir, "delegated") == 0 &&
        sandbox_cgroup_adopt(s->cgroup_dir, sizeof s->cgroup_dir) != OP_OK) {
        log_warn("site", "cgroup_dir = delegated, but no delegated cgroup could be taken over "
                         "(is the unit's Delegate=yes set?): jobs run without a cgroup");
        s->cgroup_dir[0] = '\0';
    }
    sandbox_probe(s->cgroup_dir[0] ? s->cgroup_dir : NULL, &s->caps);
    if (s->caps.missing[0])
        log_warn("site", "sandbox protections off on this machine: %s", s->caps.missing);
    check_link(s);
    char client_id[80], inbox[PROTO_TOPIC_MAX];
    bus_broker brokers[BUS_MAX_BROKERS];
    int n_brokers = 0;
    if (bus_parse_brokers(s->broker_host, (int)s->broker_port, brokers, BUS_MAX_BROKERS, &n_brokers,
                          err, sizeof err) != OP_OK) {
        log_error("site", "broker_host: %s", err);
        return OP_EINVAL;
    }
    snprintf(client_id, sizeof client_id, "outpost-site-%s", s->identity.id);
    bus_config bc = {.brokers = brokers,
                     .n_brokers = n_brokers,
                     .return_after_ms = (int)s->broker_return_ms,
                     .client_id = client_id,
                     .clean_start = 0,
                     .session_expiry_s = 86400,
                     .keepalive_s = 10,
                     .seq_start = own_seq_start(s)};
    if (s->broker_tls && site__tls_files(s, ca, cert, key, err, sizeof err) == OP_OK) {
        bc.tls_ca = ca;
        bc.tls_cert = cert;
        bc.tls_key = key;
    }
    if (bus_open(&bc, &s->identity, site__on_message, s, &s->bus) != OP_OK) return OP_EBUS;
    proto_topic(inbox, sizeof inbox, "site", s->identity.id, "inbox");
    bus_subscribe(s->bus, inbox);
    char peers[PROTO_TOPIC_MAX]; /* artifact chunks from other sites: peer/<this site>/+ */
    if (proto_peer_topic(peers, sizeof peers, s->identity.id, "x") == OP_OK) {
        peers[strlen(peers) - 1] = '+';
        bus_subscribe(s->bus, peers);
    }
    if (s->meter_topic[0]) {
        bus_subscribe(s->bus, s->meter_topic);
        log_info("site", "reading its power envelope and grid signals from %s", s->meter_topic);
    }
    return OP_OK;
}

/*
 * What runs before the loop: the hub's last contact (leases run from it),
 * the power state and its first check, jobs accepted before a restart, and
 * the local socket.
 */
static void start_work(site *s)
{
    char value[32];
    int64_t saved = 0;
    s->last_contact_ms = os_now_ms();
    if (sitedb_meta_get(s->db, "last_hub_contact", value, sizeof value) == OP_OK &&
        util_parse_i64(value, 1, INT64_MAX, &saved) == OP_OK)
        s->last_contact_ms = s->contact_saved_ms = saved;
    s->trace_start_mono = os_mono_ms(); /* power_trace offsets count from here */
    power_forecaster_init(&s->forecaster, 0.2, 3600000.0);
    power_grid_ring_init(&s->grid_ring);
    site__enforce_power(s); /* the envelope, and the forecaster's first observation */
    if (site__artifacts_open(s) != OP_OK)
        log_error("site", "the artifact cache in %s/artifacts cannot be read", s->data_dir);
    site__resume_jobs(s);
    site__local_open(s);
    site__metrics_open(s);
    log_info("site", "site %s started (%lld cores, %lld MB, %.0f W budget, broker %s)",
             s->identity.id, (long long)s->cores, (long long)s->memory_mb, s->power_budget_watts,
             s->broker_host);
}

/* A failed commit, logged when the store starts failing and then every 30 s. */
static void note_store_failure(site *s)
{
    int64_t now = os_mono_ms();
    s->store_failed_last_ms = now;
    int report = fail_streak_fail(&s->store_streak, now, 30000);
    if (report == STREAK_STARTED)
        log_error("site", "store transaction failed; results stay unsent until they are stored"
                          " (is the disk full?). Logged every 30 s from now");
    else if (report == STREAK_STILL)
        log_error("site", "store still failing: %llu commits in %.0f s",
                  (unsigned long long)s->store_streak.count,
                  (double)(now - s->store_streak.since_ms) / 1000.0);
}

/*
 * Commits the iteration's writes. On failure they are rolled back and the
 * fresh results dropped: they stay unsent until they are stored.
 */
static void commit_iteration(site *s)
{
    if (!sitedb_in_tx(s->db)) {
        s->head_committed = s->head;
        return;
    }
    if (s->store_failed || sitedb_commit(s->db) != OP_OK) {
        sitedb_rollback(s->db);
        /* the log's tree and head as the store holds them, not as the lost batch left them */
        if (s->audit && auditlog_reload(s->audit) != OP_OK)
            log_error("site", "audit log: cannot re-read after a rollback");
        s->head = s->head_committed;
        cJSON_Delete(s->results);
        s->results = NULL;
        s->store_failed = 0;
        note_store_failure(s);
        return;
    }
    s->head_committed = s->head;
    uint64_t failed;
    double seconds;
    if (fail_streak_ok(&s->store_streak, os_mono_ms(), &failed, &seconds))
        log_info("site", "store writable again after %llu failed commits in %.0f s",
                 (unsigned long long)failed, seconds);
}

/* Leaving is over once every job is handed back and sent, or its deadline passed. */
static int left_for_good(site *s, int64_t now)
{
    if (!s->leaving || s->n_jobs > 0 || sitedb_in_tx(s->db)) return 0;
    int64_t unsent = 1;
    if (sitedb_outbox_count(s->db, &unsent) != OP_OK) unsent = 1;
    if (unsent != 0 && now <= s->leave_deadline_ms) return 0;
    log_info("site", "left: every job handed back%s",
             unsent ? "; unsent results wait in the outbox for the next start" : "");
    return 1;
}

/*
 * Offline: results are safe in the outbox (committed) and go out from there
 * on reconnect; holding them here too would grow with the backlog.
 */
static void drop_unsent(site *s)
{
    cJSON_Delete(s->results);
    cJSON_Delete(s->locals);
    cJSON_Delete(s->events);
    s->results = s->locals = s->events = NULL;
}

/* The periodic messages to the hub, each on its own timer. */
static void send_periodic(site *s, int64_t now)
{
    int again = s->hello_now;
    if ((!s->enrolled || again) && timer_due(&s->hello_timer, now, again)) {
        s->hello_now = 0;
        if (again) s->hello_timer.period_ms = PROTO_HELLO_FIRST_MS; /* a new connection */
        site__send_hello(s);
        timer_backoff(&s->hello_timer, now, PROTO_HELLO_MAX_MS, randombytes_random());
    }
    if (s->audit && timer_due(&s->head_timer, now, 0)) {
        /* A signed head over this site's own log, sent with the next heartbeats. */
        if (auditlog_size(s->audit) != s->head.size &&
            auditlog_sign_head(s->audit, &s->identity, os_now_ms(), &s->head) != OP_OK)
            log_error("site", "cannot sign the audit log head");
    }
    if (s->enrolled && timer_due(&s->heartbeat_timer, now, 0)) site__send_heartbeat(s);
    if (s->enrolled && timer_due(&s->resend_timer, now, s->resend_now)) {
        s->resend_now = 0;
        site__resend_outbox(s);
    }
}

/* One iteration of the loop. SITE_RUNNING to go on, else how it ended. */
static int loop_once(site *s, int *was_connected)
{
    if (bus_loop(s->bus, 20) != OP_OK) return SITE_BUS_FAILED;
    int64_t now = os_mono_ms();
    if (bus_connected(s->bus) && !*was_connected) {
        s->hello_now = 1; /* say hello again after every (re)connect */
        s->resend_now = 1;
        if (bus_moves(s->bus) != s->broker_moves) {
            /* the hub learns at once: the hello makes it offer again what it had placed here */
            s->broker_moves = bus_moves(s->bus);
            log_info("site", "now on broker %s: hello, results and events again",
                     bus_broker_name(s->bus));
        }
    }
    *was_connected = bus_connected(s->bus);
    if (s->refused) return SITE_REFUSED;
    site__poll_jobs(s);
    site__serve_local(s);
    site__predict_expire(s, 0);
    site__metrics_poll(s);
    if (timer_due(&s->power_timer, now, 0)) site__enforce_power(s);
    if (timer_due(&s->lease_timer, now, 0)) site__check_leases(s);
    site__artifacts_tick(s); /* fetches, and their progress into this commit */
    commit_iteration(s);
    if (left_for_good(s, now)) return SITE_LEFT;
    if (!bus_connected(s->bus)) {
        drop_unsent(s);
        return SITE_RUNNING;
    }
    site__send_batches(s);
    send_periodic(s, now);
    site__probe_poll(s);
    return SITE_RUNNING;
}

/*
 * Ready for the service manager: once enrolled with the broker connected
 * and its subscriptions answered; or, for a site enrolled in an earlier
 * run, after SITE_OFFLINE_READY_MS without the broker, since it works
 * offline (accepted jobs, the local socket). A first start stays not ready
 * until the hub welcomes it: without enrollment it does nothing. A refused
 * subscription (a meter topic the ACL does not give it) is in the status,
 * not a reason to be restarted: the site works without it.
 */
static void notify_progress(site *s, int64_t now)
{
    sdnotify_watchdog_tick(now);
    if (s->ready_notified) return;
    if (s->enrolled && bus_subscribed(s->bus)) {
        int refused = bus_refused_subscriptions(s->bus);
        log_info("site", "ready: enrolled, broker connected, subscribed");
        sdnotify_sendf("READY=1\nSTATUS=site %s enrolled with hub %s, connected to %s%s",
                       s->identity.id, s->hub_id, bus_broker_name(s->bus),
                       refused ? " (a subscription refused: see the log)" : "");
    } else if (s->was_enrolled && now - s->started_mono_ms >= SITE_OFFLINE_READY_MS) {
        log_info("site", "ready: running offline");
        if (bus_broker_count(s->bus) == 1)
            sdnotify_sendf("READY=1\nSTATUS=site %s running offline (broker %s unreachable)",
                           s->identity.id, bus_broker_name(s->bus));
        else
            sdnotify_sendf("READY=1\nSTATUS=site %s running offline (brokers %s unreachable)",
                           s->identity.id, s->broker_host);
    } else {
        return;
    }
    s->ready_notified = 1;
}

static int run_loop(site *s)
{
    int was_connected = 0, end = SITE_RUNNING;
    s->started_mono_ms = os_mono_ms();
    while (end == SITE_RUNNING && !runctl_stopping()) {
        end = loop_once(s, &was_connected);
        notify_progress(s, os_mono_ms());
    }
    return end == SITE_RUNNING ? SITE_STOPPED : end;
}

/*
 * A stop after the loop: running jobs keep their stored rows and resume at
 * the next start, within their leases (the hub's last contact is kept for
 * that); a clean stop says goodbye to the hub.
 */
static void shut_down(site *s, int end)
{
    sdnotify_send("STOPPING=1\nSTATUS=stopping: jobs keep their rows and resume at next start");
    if (s->n_jobs > 0) {
        char value[32];
        snprintf(value, sizeof value, "%lld", (long long)s->last_contact_ms);
        if (site__ensure_tx(s) == OP_OK) sitedb_meta_set(s->db, "last_hub_contact", value);
    }
    site__store_own_seq(s);
    if (sitedb_in_tx(s->db) && sitedb_commit(s->db) != OP_OK) sitedb_rollback(s->db);
    if (end == SITE_STOPPED || end == SITE_LEFT)
        site__send_bye(s, end == SITE_LEFT ? "leave" : "shutdown");
    log_info("site",
             "stopping: %llu jobs run, %llu results acknowledged this run; %d running"
             " jobs stop now and resume at next start",
             (unsigned long long)s->jobs_run, (unsigned long long)s->results_acked, s->n_jobs);
}

/* Start-up to shutdown of one agent. Returns a process exit code. */
static int run_site(site *s, const site_args *a)
{
    int rc = configure(s, a);
    if (rc == EXIT_OK) rc = open_state(s, a);
    if (rc != EXIT_OK) return rc;
    if (connect_bus(s) != OP_OK) return EXIT_FAILURE_RUNTIME;
    runctl_install();
    start_work(s);
    int end = run_loop(s);
    if (end == SITE_REFUSED) {
        fprintf(stderr, "outpost site: the hub refused this site: %s\n", s->refusal);
        log_error("site", "enrollment refused: %s", s->refusal);
        return EXIT_REFUSED;
    }
    shut_down(s, end);
    return EXIT_OK;
}

/* --token-file: the token or bundle from a file, its trailing white space dropped. */
static int read_token_file(site_args *a)
{
    if (a->token_text) {
        fprintf(stderr, "outpost site: --token and --token-file exclude each other\n");
        return EXIT_USAGE;
    }
    int rc = os_read_file(a->token_file, TOKEN_BUNDLE_MAX + 64, &a->token_read, NULL);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost site: cannot read --token-file %s: %s\n", a->token_file,
                op_strerror(rc));
        return EXIT_USAGE;
    }
    size_t n = strlen(a->token_read);
    while (n > 0 && strchr(" \t\r\n", a->token_read[n - 1]))
        a->token_read[--n] = '\0';
    a->token_text = a->token_read;
    return EXIT_OK;
}

int site_main(int argc, char **argv)
{
    site_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    if (sdnotify_init() < 0) log_warn("site", "NOTIFY_SOCKET is malformed: not notifying");
    if (a.token_file && (rc = read_token_file(&a)) != EXIT_OK) return rc;
    site *s = site__new();
    if (!s) return EXIT_FAILURE_RUNTIME;
    rc = run_site(s, &a);
    site__free(s);
    if (a.token_read) {
        sodium_memzero(a.token_read, strlen(a.token_read));
        free(a.token_read);
    }
    return rc;
}
