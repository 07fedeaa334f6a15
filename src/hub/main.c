/*
 * main: `outpost hub`. Options and configuration, the state in the data
 * directory (identity, operators, policy, hub.db, cli.conf), the broker
 * connection, then the loop (loop.c) until SIGTERM or SIGINT, and a clean
 * stop that commits and sends what is pending.
 */
#include "base/conf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "hub/api_int.h"
#include "hub/hub.h"
#include "hub/hub_int.h"
#include "io/keyfile.h"
#include "io/sdnotify.h"
#include "io/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *hub_conf_keys[] = {"hub_id",
                                      "broker_host",
                                      "broker_port",
                                      "site_lost_after_ms",
                                      "lease_ms",
                                      "offline_lease_ms",
                                      "clock_skew_ms",
                                      "max_queued_jobs",
                                      "log_level",
                                      "token_ttl_s",
                                      "audit_head_ms",
                                      "fleet_index_from",
                                      "broker_tls",
                                      "max_cores_pod",
                                      "max_cores_car",
                                      "max_cores_dc",
                                      "max_memory_mb_pod",
                                      "max_memory_mb_car",
                                      "max_memory_mb_dc",
                                      "max_watts_pod",
                                      "max_watts_car",
                                      "max_watts_dc",
                                      "probe",
                                      "probe_ms",
                                      "probe_interval_ms",
                                      "probe_timeout_ms",
                                      "probe_tolerance",
                                      "artifact_peers",
                                      "artifact_hub_streams",
                                      "beat_workers",
                                      "predict_program",
                                      "http_listen",
                                      "http_cert",
                                      "http_key",
                                      "http_metrics_auth",
                                      "power_history_step_s",
                                      "http_stream_queue_bytes",
                                      "broker_return_ms",
                                      "broker_mode",
                                      "store",
                                      "store_url",
                                      "failover",
                                      "failover_lease_ms",
                                      "hub_instance",
                                      NULL};

/* open_state's code for a standby stopped before it held the lease: a clean exit. */
#define EXIT_STOPPED_WAITING 100

/* ---------- life of a hub ---------- */

static int read_config(hub *h, const char *config_path, char *err, size_t err_len);

hub *hub__new(void)
{
    char err[256];
    hub *h = calloc(1, sizeof *h);
    if (h && read_config(h, NULL, err, sizeof err) != OP_OK) {
        free(h);
        return NULL;
    }
    if (h) hub__verify_configure(h);
    return h;
}

void hub__free(hub *h)
{
    if (!h) return;
    for (int i = 0; i < h->n_links; i++) {
        if (h->links[i].main) bus_close(h->links[i].main);
        if (h->links[i].beats) bus_close(h->links[i].beats);
    }
    if (h->n_links == 0 && h->bus) bus_close(h->bus); /* a unit test's, set by hand */
    if (h->n_links == 0 && h->beat_bus) bus_close(h->beat_bus);
    hub__discard_outgoing(h);
    free(h->queued_sites);
    auditlog_close(h->audit);
    policy_free(h->policy);
    free(h->policy_text);
    hubdb_close(h->db);
    hub__probe_free(h);
    hub__models_free(h);
    hub__runtimes_free(h);
    hub__api_free(h);
    hub__predict_free(h);
    hub__failover_free(h);
    ident_wipe(&h->identity);
    for (size_t i = 0; i < h->n_sites; i++)
        cJSON_Delete(h->sites[i].messages);
    for (int i = 0; i < HUB_MAX_OPERATORS; i++)
        msg_nonces_clear(&h->operators[i].nonces);
    free(h->sites);
    hub__registry_free(h);
    free(h);
}

/* The numeric settings: name, default, bounds, where they go. */
static int configure_numbers(hub *h, conf *c, char *err, size_t err_len)
{
    const struct {
        const char *key;
        int64_t def, min, max;
        int64_t *out;
    } keys[] = {
        {"broker_port", 1883, 1, 65535, &h->broker_port},
        /* on a broker other than the first of broker_host's list: how often to try going back */
        {"broker_return_ms", 60000, 0, 86400000, &h->broker_return_ms},
        {"site_lost_after_ms", 6000, 200, 86400000, &h->site_lost_after_ms},
        {"lease_ms", 15000, 200, 86400000, &h->lease_ms},
        {"offline_lease_ms", 3600000, 1000, 7 * 86400000LL, &h->offline_lease_ms},
        {"clock_skew_ms", 120000, 1000, 86400000, &h->clock_skew_ms},
        {"fleet_index_from", 500, 1, 100000000, &h->fleet_index_from},
        {"audit_head_ms", 10000, 100, 86400000, &h->audit_head_ms},
        {"max_queued_jobs", 100000, 1, 100000000, &h->max_queued_jobs},
        {"token_ttl_s", 86400, 1, 365LL * 86400, &h->token_ttl_s},
        /* what a site of each class may claim (claims above are capped and audited) */
        {"max_cores_pod", 64, 1, 4096, &h->claim_limit[0].cores},
        {"max_cores_car", 16, 1, 4096, &h->claim_limit[1].cores},
        {"max_cores_dc", 1024, 1, 4096, &h->claim_limit[2].cores},
        {"max_memory_mb_pod", 262144, 1, 1LL << 30, &h->claim_limit[0].memory_mb},
        {"max_memory_mb_car", 65536, 1, 1LL << 30, &h->claim_limit[1].memory_mb},
        {"max_memory_mb_dc", 4194304, 1, 1LL << 30, &h->claim_limit[2].memory_mb},
        {"max_watts_pod", 50000, 1, 100000000, &h->claim_limit[0].watts},
        {"max_watts_car", 2000, 1, 100000000, &h->claim_limit[1].watts},
        {"max_watts_dc", 500000, 1, 100000000, &h->claim_limit[2].watts},
        /* capacity probes (probe.c): how long one runs, how often, how long an answer may
         * take, and how much slower than the hub's a site's cores may be */
        {"probe_ms", 2000, PROBE_MIN_MS, PROBE_MAX_MS, &h->probing.duration_ms},
        {"probe_interval_ms", 86400000, 1000, 365LL * 86400000, &h->probing.interval_ms},
        {"probe_timeout_ms", 30000, 1000, 86400000, &h->probing.timeout_ms},
        {"probe_tolerance", 8, 1, 1000, &h->probing.tolerance},
        /* models.c: sites fetching one artifact from the hub itself at once (no peer yet) */
        {"artifact_hub_streams", 2, 1, 100000, &h->artifact_hub_streams},
        /* threads that check heartbeats and hellos (beats.c); 0: the cores less one */
        {"beat_workers", 0, 0, 64, &h->beat_workers},
    };
    int rc = OP_OK;
    for (size_t i = 0; rc == OP_OK && i < sizeof keys / sizeof keys[0]; i++)
        rc = conf_int(c, keys[i].key, keys[i].def, keys[i].min, keys[i].max, keys[i].out, err,
                      err_len);
    return rc;
}

/*
 * Reads the configuration (config_path NULL: the defaults) into h.
 * OP_EINVAL, OP_ENOMEM or a conf error, with the message in err.
 */
static int read_config(hub *h, const char *config_path, char *err, size_t err_len)
{
    conf *c = NULL;
    int rc = config_path ? conf_load(config_path, hub_conf_keys, &c, err, err_len) : OP_OK;
    if (rc != OP_OK) return rc;
    if (!c && !(c = conf_empty())) return OP_ENOMEM;
    const char *hub_id = conf_str(c, "hub_id", "hub");
    snprintf(h->identity.id, sizeof h->identity.id, "%s", hub_id);
    const char *brokers = conf_str(c, "broker_host", "127.0.0.1");
    snprintf(h->broker_host, sizeof h->broker_host, "%s", brokers);
    const char *level = conf_str(c, "log_level", NULL);
    const char *tls = conf_str(c, "broker_tls", "on");
    h->broker_tls = strcmp(tls, "on") == 0;
    const char *mode = conf_str(c, "broker_mode", "failover");
    h->broker_all = strcmp(mode, "all") == 0;
    const char *probe = conf_str(c, "probe", "on");
    h->probing.on = strcmp(probe, "on") == 0;
    const char *peers = conf_str(c, "artifact_peers", "on");
    h->artifact_peers = strcmp(peers, "on") == 0;
    /* the program that answers escalated questions in a child (predict.c): this binary */
    const char *predict = conf_str(c, "predict_program", NULL);
    if (predict && *predict) {
        snprintf(h->predict_program, sizeof h->predict_program, "%s", predict);
    } else {
        ssize_t n = readlink("/proc/self/exe", h->predict_program, sizeof h->predict_program - 1);
        h->predict_program[n > 0 ? n : 0] = '\0';
    }
    bus_broker list[BUS_MAX_BROKERS];
    int n_brokers = 0;
    char why[200];
    if (!util_valid_id(hub_id)) {
        snprintf(err, err_len, "hub_id '%s' must be [A-Za-z0-9_-]{1,63}", hub_id);
        rc = OP_EINVAL;
    } else if (strlen(brokers) >= sizeof h->broker_host ||
               bus_parse_brokers(brokers, 1883, list, BUS_MAX_BROKERS, &n_brokers, why,
                                 sizeof why) != OP_OK) {
        snprintf(err, err_len, "broker_host: %s",
                 strlen(brokers) >= sizeof h->broker_host ? "longer than 255 characters" : why);
        rc = OP_EINVAL;
    } else if (level && log_parse_level(level) < 0) {
        snprintf(err, err_len, "log_level must be debug, info, warn or error");
        rc = OP_EINVAL;
    } else if (strcmp(tls, "on") != 0 && strcmp(tls, "off") != 0) {
        snprintf(err, err_len, "broker_tls must be on or off");
        rc = OP_EINVAL;
    } else if (strcmp(mode, "failover") != 0 && strcmp(mode, "all") != 0) {
        snprintf(err, err_len, "broker_mode must be failover or all");
        rc = OP_EINVAL;
    } else if (strcmp(probe, "on") != 0 && strcmp(probe, "off") != 0) {
        snprintf(err, err_len, "probe must be on or off");
        rc = OP_EINVAL;
    } else if (strcmp(peers, "on") != 0 && strcmp(peers, "off") != 0) {
        snprintf(err, err_len, "artifact_peers must be on or off");
        rc = OP_EINVAL;
    }
    if (rc == OP_OK && level) log_set_level(log_parse_level(level));
    if (rc == OP_OK) rc = configure_numbers(h, c, err, err_len);
    if (rc == OP_OK) rc = hub__api_configure(h, c, err, err_len);
    if (rc == OP_OK) rc = hub__failover_configure(h, c, err, err_len);
    conf_free(c);
    timer_init(&h->check_timer, 250);
    timer_init(&h->place_timer, 1000);
    timer_init(&h->seq_flush_timer, 5000);
    timer_init(&h->head_timer, h->audit_head_ms);
    return rc;
}

int hub__open_store(hub *h, const char *path, int synchronous_full)
{
    int rc = h->db ? OP_OK : hubdb_open(path, synchronous_full, &h->db);
    if (rc == OP_OK) rc = hub__load_sites(h);
    if (rc == OP_OK) rc = hub__verify_load(h);
    if (rc == OP_OK) rc = hub__runtimes_load(h);
    if (rc == OP_OK) rc = hubdb_attach_audit(h->db, &h->audit);
    if (rc == OP_OK) h->head_size = h->head_size_committed = auditlog_size(h->audit);
    return rc;
}

/* ---------- state in the data directory ---------- */

/*
 * cli.conf's store line: the store the config names, for `outpost audit
 * verify` and `outpost backup` (none for the default <data-dir>/hub.db).
 * cli.conf is world-readable, so a PostgreSQL password is left out (the CLI
 * finds it in ~/.pgpass or PGPASSWORD, or takes --db), and a relative path
 * is made absolute (the CLI runs elsewhere).
 */
static void cli_conf_store_line(const hub *h, char *line, size_t len)
{
    char where[PATH_MAX];
    int had_password = 0;
    line[0] = '\0';
    if (!h->store_where[0]) return;
    if (!store_is_url(h->store_where) && realpath(h->store_where, where)) {
        util_fmt(line, len, "store = %s\n", where);
    } else if (store_where_public(h->store_where, where, sizeof where, &had_password) == OP_OK &&
               util_fmt(line, len, "store = %s\n", where) == OP_OK) {
        if (had_password)
            log_info("hub", "cli.conf names the store without its password: give the CLI's "
                            "user a ~/.pgpass entry, or pass --db");
    } else {
        line[0] = '\0';
        log_warn("hub", "the store's name does not fit cli.conf: pass --db to the CLI");
    }
}

/* broker_ca is relative to cli.conf's directory, so the hub dir can be copied elsewhere. */
static int write_cli_conf(hub *h)
{
    char path[PATH_MAX], text[PATH_MAX + 1024], store_line[PATH_MAX + 16];
    if (util_fmt(path, sizeof path, "%s/cli.conf", h->data_dir) != OP_OK) return OP_ETOOBIG;
    cli_conf_store_line(h, store_line, sizeof store_line);
    if (util_fmt(text, sizeof text,
                 "# Written by `outpost hub` at start: what a CLI needs to reach this hub.\n"
                 "hub_id = %s\nhub_pubkey = %s\nbroker_host = %s\nbroker_port = %lld\n%s%s",
                 h->identity.id, h->identity.pk_hex, h->broker_host, (long long)h->broker_port,
                 h->broker_tls ? "broker_ca = tls/ca.crt\n" : "", store_line) != OP_OK)
        return OP_ETOOBIG;
    return os_write_file_atomic(path, text, strlen(text), 0644);
}

/* First start: a local admin operator identity, authorized in <data>/operators. */
static int ensure_operators(hub *h)
{
    char path[PATH_MAX], admin_dir[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/operators", h->data_dir) != OP_OK ||
        util_fmt(admin_dir, sizeof admin_dir, "%s/admin", h->data_dir) != OP_OK)
        return OP_ETOOBIG;
    if (access(path, F_OK) == 0) return OP_OK;
    ident admin;
    int rc = keyfile_load_or_create(admin_dir, "admin", &admin);
    if (rc != OP_OK) return rc;
    char line[PATH_MAX + 200];
    rc = util_fmt(line, sizeof line,
                  "# Authorized operator public keys, one per line (hex), then a comment.\n%s "
                  "local admin (%s)\n",
                  admin.pk_hex, admin_dir);
    ident_wipe(&admin);
    if (rc != OP_OK) return rc;
    log_info("hub", "created local admin operator identity in %s", admin_dir);
    return os_write_file_atomic(path, line, strlen(line), 0600);
}

/* <data-dir>/policy when there is one. EXIT_OK, or EXIT_USAGE for a policy that does not parse. */
static int load_policy(hub *h)
{
    char path[PATH_MAX], err[512] = "";
    if (util_fmt(path, sizeof path, "%s/policy", h->data_dir) == OP_OK &&
        os_read_file(path, 256 * 1024, &h->policy_text, NULL) == OP_OK &&
        policy_parse(h->policy_text, path, &h->policy, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost hub: %s\n", err);
        return EXIT_USAGE;
    }
    if (h->policy)
        log_info("hub", "policy version %d in force (%s)", policy_version(h->policy), path);
    hub__verify_configure(h);
    return EXIT_OK;
}

/* Identity, operators, policy, store, cli.conf. An exit code (EXIT_OK to go on). */
static int open_state(hub *h)
{
    char path[PATH_MAX];
    char hub_id[64];
    snprintf(hub_id, sizeof hub_id, "%s", h->identity.id);
    if (os_mkdir_p(h->data_dir) != OP_OK ||
        util_fmt(path, sizeof path, "%s/identity", h->data_dir) != OP_OK ||
        keyfile_load_or_create(path, hub_id, &h->identity) != OP_OK) {
        log_error("hub", "cannot set up identity in %s", h->data_dir);
        return EXIT_FAILURE_RUNTIME;
    }
    if (ensure_operators(h) != OP_OK || hub__load_operators(h) != OP_OK ||
        hub__tls_setup(h) != OP_OK)
        return EXIT_FAILURE_RUNTIME;
    int rc = load_policy(h);
    if (rc != EXIT_OK) return rc;
    if (h->store_where[0])
        snprintf(path, sizeof path, "%s", h->store_where);
    else if (util_fmt(path, sizeof path, "%s/hub.db", h->data_dir) != OP_OK)
        return EXIT_FAILURE_RUNTIME;
    /* a standby waits here, before it reads any state or speaks to the broker */
    if ((rc = hub__failover_open(h, path)) != OP_OK)
        return rc == OP_ETIMEOUT ? EXIT_STOPPED_WAITING : EXIT_FAILURE_RUNTIME;
    if (hub__open_store(h, path, 1) != OP_OK || hub__replay_load(h) != OP_OK)
        return EXIT_FAILURE_RUNTIME;
    /* Fresh lease deadlines after a restart: sites get a full lease to check in again. */
    if (hubdb_leases_renew_all(h->db, os_now_ms() + h->lease_ms) != OP_OK)
        return EXIT_FAILURE_RUNTIME;
    if (write_cli_conf(h) != OP_OK) {
        log_error("hub", "cannot write %s/cli.conf", h->data_dir);
        return EXIT_FAILURE_RUNTIME;
    }
    return hub__failover_record(h) == OP_OK ? EXIT_OK : EXIT_FAILURE_RUNTIME;
}

/*
 * Where the hub's sequence numbers start: the wall clock in microseconds, or
 * past the last one stored when that is higher (the clock stepped back since
 * the last run). Sites keep the hub's top and refuse anything not above it,
 * so without the stored number a clock set back would silence the hub until
 * it caught up. The margin covers what was sent after the last store (it is
 * stored every 5 s and at a clean stop).
 */
static uint64_t own_seq_start(hub *h)
{
    const uint64_t margin = 1000000000ULL;
    uint64_t stored = 0, clock_us = (uint64_t)os_now_ms() * 1000;
    if (hubdb_own_seq_get(h->db, &stored) != OP_OK || stored == 0) return clock_us;
    return stored + margin > clock_us ? stored + margin : clock_us;
}

/*
 * A link (hub_int.h) to brokers: two persistent sessions. The main one
 * publishes everything and reads events, results and operator requests (up
 * to 6 MiB each); the other reads hellos and heartbeats only, with a Maximum
 * Packet Size that makes the broker discard bigger junk on those topics
 * instead of sending it (a flood of 6 MB forgeries on a heartbeat topic
 * costs the hub nothing). The main session drops the subscriptions that
 * moved, which a session of an older hub may still hold.
 */
static int open_link(hub *h, bus_config *bc, int index)
{
    char client_id[96], beat_id[112];
    hub_link *l = &h->links[index];
    l->h = h;
    l->index = index;
    h->n_links = index + 1; /* closed at hub__free, even if half open */
    /* one broker of several at once: a session of its own there, named after it */
    if (h->broker_all && index > 0) {
        snprintf(client_id, sizeof client_id, "outpost-hub-%s-%d", h->identity.id, index);
        snprintf(beat_id, sizeof beat_id, "outpost-hub-%s-%d-beats", h->identity.id, index);
    } else {
        snprintf(client_id, sizeof client_id, "outpost-hub-%s", h->identity.id);
        snprintf(beat_id, sizeof beat_id, "outpost-hub-%s-beats", h->identity.id);
    }
    bc->client_id = client_id;
    bc->max_packet_bytes = 0;
    int rc = bus_open(bc, &h->identity, hub__on_link_message, l, &l->main);
    if (rc != OP_OK) return rc;
    bc->client_id = beat_id;
    bc->max_packet_bytes = HUB_BEAT_MAX_PACKET;
    rc = bus_open(bc, &h->identity, hub__on_link_message, l, &l->beats);
    if (rc != OP_OK) return rc;
    const char *subs[] = {MSG_TOPIC_ROOT "site/+/event", MSG_TOPIC_ROOT "site/+/result",
                          MSG_TOPIC_ROOT "op/+/req"};
    const char *beats[] = {MSG_TOPIC_ROOT "site/+/hello", MSG_TOPIC_ROOT "site/+/state"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        bus_subscribe(l->main, subs[i]);
    for (size_t i = 0; i < sizeof beats / sizeof beats[0]; i++) {
        bus_unsubscribe(l->main, beats[i]);
        bus_subscribe(l->beats, beats[i]);
    }
    return OP_OK;
}

/*
 * broker_mode = failover: one link on the list (the first broker that
 * answers); all: a link on each broker of the list, its sessions' sequence
 * numbers one shared counter (a site hears the hub's through any of them).
 */
static int connect_bus(hub *h)
{
    char err[200];
    bus_broker brokers[BUS_MAX_BROKERS];
    int n_brokers = 0;
    if (bus_parse_brokers(h->broker_host, (int)h->broker_port, brokers, BUS_MAX_BROKERS, &n_brokers,
                          err, sizeof err) != OP_OK) {
        log_error("hub", "broker_host: %s", err);
        return OP_EINVAL;
    }
    h->out_seq = own_seq_start(h);
    bus_config bc = {.brokers = brokers,
                     .n_brokers = n_brokers,
                     .return_after_ms = (int)h->broker_return_ms,
                     .clean_start = 0,
                     .session_expiry_s = 86400,
                     .keepalive_s = 10,
                     .seq_start = h->out_seq,
                     .seq_shared = &h->out_seq};
    hub__tls_files(h, &bc.tls_ca, &bc.tls_cert, &bc.tls_key);
    if (!h->broker_tls)
        log_warn("hub", "broker_tls is off: the broker link is not authenticated or encrypted");
    int links = h->broker_all ? n_brokers : 1;
    for (int i = 0; i < links; i++) {
        if (h->broker_all) {
            bc.brokers = &brokers[i];
            bc.n_brokers = 1;
            bc.return_after_ms = 0;
        }
        int rc = open_link(h, &bc, i);
        if (rc != OP_OK) return rc;
    }
    h->bus = h->links[0].main;
    h->beat_bus = h->links[0].beats;
    if (h->broker_all)
        log_info("hub", "broker_mode all: a link to each of %d brokers (%s)", links,
                 h->broker_host);
    return OP_OK;
}

/* A clean stop: the last head signed and committed, replay windows and messages out. */
static void stop(hub *h)
{
    sdnotify_send("STOPPING=1\nSTATUS=stopping: committing and sending what is pending");
    if (!hubdb_in_tx(h->db)) hubdb_begin(h->db);
    hub__audit_sign_head(h);
    if (hub__commit(h) == OP_OK) hub__flush_outgoing(h);
    hub__flush_seqs(h);
    log_info("hub",
             "stopping: %llu jobs submitted, %llu results applied, %llu duplicate,"
             " %llu stale this run",
             (unsigned long long)h->counted.jobs_submitted,
             (unsigned long long)h->counted.results_applied,
             (unsigned long long)h->counted.results_duplicate,
             (unsigned long long)h->counted.results_stale);
}

/* ---------- the command ---------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost hub --data-dir DIR [--config FILE] [--broker-port N]\n"
                 "\n"
                 "Runs the hub: fleet registry, job store, placement, enrollment and the\n"
                 "operator API over the MQTT broker. State lives in DIR (created if missing):\n"
                 "hub.db, identity/, operators, admin/ (local operator key and broker\n"
                 "certificate), tls/ (the broker CA and the hub's certificate), cli.conf.\n"
                 "The job state may live in PostgreSQL instead (store = postgresql://...),\n"
                 "shared by an active hub and standbys (failover = on; docs/failover.md).\n"
                 "\n"
                 "  --data-dir DIR     state directory (required)\n"
                 "  --config FILE      configuration (see examples/hub.conf)\n"
                 "  --broker-port N    overrides broker_port (the port of brokers listed\n"
                 "                     in broker_host without one)\n"
                 "  --log-level L      debug, info, warn or error\n"
                 "\n"
                 "SIGTERM or SIGINT stops it cleanly. Exit codes: 0 stopped, 1 runtime failure,\n"
                 "2 bad usage or configuration.\n");
}

typedef struct hub_args {
    const char *data_dir, *config_path, *port_text, *level;
} hub_args;

/* The options. -1 to go on, else the exit code (help, bad usage). */
static int parse_args(int argc, char **argv, hub_args *a)
{
    static struct option opts[] = {{"data-dir", required_argument, 0, 'd'},
                                   {"config", required_argument, 0, 'c'},
                                   {"broker-port", required_argument, 0, 'p'},
                                   {"log-level", required_argument, 0, 'l'},
                                   {"help", no_argument, 0, 'h'},
                                   {0, 0, 0, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:p:l:h", opts, NULL)) != -1) {
        if (opt == 'd')
            a->data_dir = optarg;
        else if (opt == 'c')
            a->config_path = optarg;
        else if (opt == 'p')
            a->port_text = optarg;
        else if (opt == 'l')
            a->level = optarg;
        else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? EXIT_OK : EXIT_USAGE;
        }
    }
    if (!a->data_dir) {
        fprintf(stderr, "outpost hub: --data-dir is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (a->level && log_parse_level(a->level) < 0) {
        fprintf(stderr, "outpost hub: --log-level must be debug, info, warn or error\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* The configuration file, then the options over it. An exit code (EXIT_OK to go on). */
static int configure(hub *h, const hub_args *a)
{
    char err[512] = "";
    snprintf(h->data_dir, sizeof h->data_dir, "%s", a->data_dir);
    if (read_config(h, a->config_path, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost hub: %s\n", err);
        return EXIT_USAGE;
    }
    if (a->level) log_set_level(log_parse_level(a->level));
    if (a->port_text && util_parse_i64(a->port_text, 1, 65535, &h->broker_port) != OP_OK) {
        fprintf(stderr, "outpost hub: --broker-port must be 1-65535\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int hub_main(int argc, char **argv)
{
    hub_args a = {0};
    int exit_code = parse_args(argc, argv, &a);
    if (exit_code >= 0) return exit_code;
    if (sdnotify_init() < 0) log_warn("hub", "NOTIFY_SOCKET is malformed: not notifying");
    hub *h = hub__new();
    if (!h) return EXIT_FAILURE_RUNTIME;
    exit_code = configure(h, &a);
    /* the probe's core rate is measured first: a standby taking over need not wait for it */
    if (exit_code == EXIT_OK && hub__probe_setup(h) != OP_OK) exit_code = EXIT_FAILURE_RUNTIME;
    if (exit_code == EXIT_OK) exit_code = open_state(h);
    if (exit_code == EXIT_OK && connect_bus(h) != OP_OK) exit_code = EXIT_FAILURE_RUNTIME;
    if (exit_code == EXIT_OK && hub__api_start(h) != OP_OK) exit_code = EXIT_FAILURE_RUNTIME;
    if (exit_code == EXIT_OK) {
        runctl_install();
        log_info("hub", "%s started (pubkey %.16s..., %zu sites, broker %s, data %s)",
                 h->identity.id, h->identity.pk_hex, h->n_sites, bus_broker_name(h->bus),
                 h->data_dir);
        hub__run(h);
        if (hub__failover_stopped(h)) {
            exit_code = EXIT_FAILURE_RUNTIME; /* nothing more is written or sent */
        } else {
            stop(h);
            hub__failover_release(h);
        }
    }
    if (exit_code == EXIT_STOPPED_WAITING) exit_code = EXIT_OK;
    hub__free(h);
    return exit_code;
}
