/*
 * cmd_ca: `outpost ca broker` and `outpost ca issue`, the hub CA used on the
 * hub's machine with no hub running (the files in HUB_DIR/tls). `ca broker`
 * makes what a broker needs: the CA certificate to check clients with, its
 * own server certificate and key, and the ACL file whose patterns give each
 * certificate's common name its own topics; with --bridge, the ACL's section
 * for a bridge between two brokers of the fleet and that bridge's client
 * certificate. `ca issue` makes a client certificate for another operator or
 * a meter.
 */
#include "base/conf.h"
#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "io/pki.h"
#include "wire/msg.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options of both subcommands. */
typedef struct ca_args {
    const char *sub, *out, *hub_id, *bridge;
    const char *names[PKI_MAX_NAMES];
    size_t n_names;
    int64_t days;
    int help;
} ca_args;

static int parse_ca_args(cli *c, int argc, char **argv, ca_args *a)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},    {"name", required_argument, NULL, 'n'},
        {"hub-id", required_argument, NULL, 'i'}, {"days", required_argument, NULL, 'd'},
        {"bridge", required_argument, NULL, 'b'}, {NULL, 0, NULL, 0}};
    int code;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'o') {
            a->out = optarg;
        } else if (code == 'n') {
            if (a->n_names == PKI_MAX_NAMES) {
                fprintf(stderr, "outpost ca: at most %d --name\n", PKI_MAX_NAMES);
                return EXIT_USAGE;
            }
            a->names[a->n_names++] = optarg;
        } else if (code == 'i') {
            a->hub_id = optarg;
        } else if (code == 'b') {
            a->bridge = optarg;
        } else if (code == 'd') {
            if (util_parse_i64(optarg, 1, PKI_CA_DAYS, &a->days) != OP_OK) {
                fprintf(stderr, "outpost ca: --days must be 1 to %d\n", PKI_CA_DAYS);
                return EXIT_USAGE;
            }
        } else if (code == 'h') {
            cli__usage(stdout, "ca");
            a->help = 1;
            return EXIT_OK;
        } else {
            return cli__usage_error(c);
        }
    }
    if (optind != argc - 1) return cli__usage_error(c);
    a->sub = argv[optind];
    if (!cli__hub_dir(c) || !a->out) {
        fprintf(stderr, "outpost ca %s: --hub-dir DIR and --out DIR are required\n", a->sub);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The hub id: --hub-id, else the one in HUB_DIR/cli.conf (a hub ran there), else "hub". */
static int hub_id_of(cli *c, const ca_args *a, char *id, size_t len)
{
    static const char *keys[] = {"hub_id",      "hub_pubkey", "broker_host",
                                 "broker_port", "broker_ca",  NULL};
    char path[PATH_MAX], err[256];
    conf *cf = NULL;
    const char *found = a->hub_id;
    if (!found && util_fmt(path, sizeof path, "%s/cli.conf", cli__hub_dir(c)) == OP_OK &&
        conf_load(path, keys, &cf, err, sizeof err) == OP_OK)
        found = conf_str(cf, "hub_id", NULL);
    snprintf(id, len, "%s", found ? found : "hub");
    conf_free(cf);
    if (!util_valid_id(id)) {
        fprintf(stderr, "outpost ca: hub id '%s' must be [A-Za-z0-9_-]{1,63}\n", id);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/*
 * A bridge between two brokers of one fleet (a site on one, the hub on the
 * other) carries each kind of Outpost topic both ways and nothing else: the
 * topics named one by one, as its configuration's `topic` lines name them
 * (a subscription is allowed only where the ACL names its very pattern).
 * Its name starts with "bridge-", which the hub never gives a site.
 */
#define BRIDGE_ACL                                                                                 \
    "\n# The bridge between two brokers of this fleet: every Outpost topic, both ways\n"           \
    "user %s\n%s"
#define BRIDGE_TOPIC(access, t) "topic " access " " MSG_TOPIC_ROOT t "\n"
#define BRIDGE_TOPICS(access)                                                                      \
    BRIDGE_TOPIC(access, "site/+/hello")                                                           \
    BRIDGE_TOPIC(access, "site/+/state")                                                           \
    BRIDGE_TOPIC(access, "site/+/event")                                                           \
    BRIDGE_TOPIC(access, "site/+/result")                                                          \
    BRIDGE_TOPIC(access, "site/+/inbox")                                                           \
    BRIDGE_TOPIC(access, "op/+/req")                                                               \
    BRIDGE_TOPIC(access, "op/+/resp")                                                              \
    BRIDGE_TOPIC(access, "peer/+/+")                                                               \
    BRIDGE_TOPIC(access, "meter/+/+")

/*
 * The broker's ACL: the hub reads what sites and operators send and writes
 * their inboxes and answers; everyone else (a site, an operator, a meter)
 * only the topics named after its own certificate's CN (%u). Sites also
 * talk to each other on peer/<to>/<from> (artifact chunks, docs/models.md):
 * each writes only as <from> and reads only as <to>.
 */
static int write_acl(const char *dir, const char *hub_id, const char *bridge)
{
    char path[PATH_MAX], text[8192];
    if (util_fmt(path, sizeof path, "%s/acl", dir) != OP_OK) return OP_ETOOBIG;
    int rc = util_fmt(
        text, sizeof text,
        "# Outpost broker ACL (mosquitto acl_file), written by `outpost ca broker`.\n"
        "# User names are the client certificates' common names (use_identity_as_username).\n"
        "# Site ids, operator ids and meter ids share one name space with the hub id.\n\n"
        "# The hub\n"
        "user %s\n"
        "topic read " MSG_TOPIC_ROOT "site/+/hello\n"
        "topic read " MSG_TOPIC_ROOT "site/+/state\n"
        "topic read " MSG_TOPIC_ROOT "site/+/event\n"
        "topic read " MSG_TOPIC_ROOT "site/+/result\n"
        "topic read " MSG_TOPIC_ROOT "op/+/req\n"
        "topic write " MSG_TOPIC_ROOT "site/+/inbox\n"
        "topic write " MSG_TOPIC_ROOT "op/+/resp\n\n"
        "# Every client, under its own name: a site\n"
        "pattern write " MSG_TOPIC_ROOT "site/%%u/hello\n"
        "pattern write " MSG_TOPIC_ROOT "site/%%u/state\n"
        "pattern write " MSG_TOPIC_ROOT "site/%%u/event\n"
        "pattern write " MSG_TOPIC_ROOT "site/%%u/result\n"
        "pattern read " MSG_TOPIC_ROOT "site/%%u/inbox\n"
        "# a site pulls artifact chunks from a peer site and answers: peer/<to>/<from>\n"
        "pattern write " MSG_TOPIC_ROOT "peer/+/%%u\n"
        "pattern read " MSG_TOPIC_ROOT "peer/%%u/+\n"
        "# an operator\n"
        "pattern write " MSG_TOPIC_ROOT "op/%%u/req\n"
        "pattern read " MSG_TOPIC_ROOT "op/%%u/resp\n"
        "# a meter writes meter/<site-id>/<its own id>; only that site reads it\n"
        "pattern write " MSG_TOPIC_ROOT "meter/+/%%u\n"
        "pattern read " MSG_TOPIC_ROOT "meter/%%u/+\n",
        hub_id);
    size_t used = strlen(text);
    if (rc == OP_OK && bridge)
        rc = util_fmt(text + used, sizeof text - used, BRIDGE_ACL, bridge,
                      BRIDGE_TOPICS("readwrite"));
    return rc == OP_OK ? os_write_file_atomic(path, text, strlen(text), 0644) : rc;
}

/* OUTDIR/ca.crt: the CA clients and the broker check each other with. */
static int write_ca_cert(const pki_ca *ca, const char *dir)
{
    char path[PATH_MAX];
    int rc = os_mkdir_p(dir);
    if (rc == OP_OK && util_fmt(path, sizeof path, "%s/ca.crt", dir) != OP_OK) rc = OP_ETOOBIG;
    if (rc == OP_OK)
        rc = os_write_file_atomic(path, pki_ca_cert_pem(ca), strlen(pki_ca_cert_pem(ca)), 0644);
    return rc;
}

/* --bridge NAME: its client certificate, OUTDIR/bridge.crt and bridge.key. */
static int issue_bridge(const pki_ca *ca, const ca_args *a)
{
    pki_issued issued;
    int rc =
        pki_issue(ca, PKI_CLIENT, &a->bridge, 1, a->days ? (int)a->days : PKI_CLIENT_DAYS, &issued);
    if (rc == OP_OK) rc = pki_write_pair(a->out, "bridge", &issued);
    pki_issued_free(&issued);
    return rc;
}

/* ca broker: server certificate for the names given (default 127.0.0.1 and localhost). */
static int ca_broker(cli *c, const pki_ca *ca, ca_args *a)
{
    char hub_id[64];
    int rc = hub_id_of(c, a, hub_id, sizeof hub_id);
    if (rc != EXIT_OK) return rc;
    if (a->n_names == 0) {
        a->names[a->n_names++] = "127.0.0.1";
        a->names[a->n_names++] = "localhost";
    }
    if (a->bridge && (strncmp(a->bridge, "bridge-", 7) != 0 || !util_valid_id(a->bridge))) {
        fprintf(stderr, "outpost ca broker: --bridge must be bridge-[A-Za-z0-9_-]{1,56}\n");
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < a->n_names; i++)
        if (!pki_valid_name(PKI_SERVER, a->names[i])) {
            fprintf(stderr, "outpost ca broker: --name '%s' is not a DNS name or an address\n",
                    a->names[i]);
            return EXIT_USAGE;
        }
    pki_issued server;
    int prc = pki_issue(ca, PKI_SERVER, a->names, a->n_names,
                        a->days ? (int)a->days : PKI_SERVER_DAYS, &server);
    if (prc == OP_OK) prc = write_ca_cert(ca, a->out);
    if (prc == OP_OK) prc = pki_write_pair(a->out, "server", &server);
    if (prc == OP_OK) prc = write_acl(a->out, hub_id, a->bridge);
    pki_issued_free(&server);
    if (prc == OP_OK && a->bridge) prc = issue_bridge(ca, a);
    if (prc != OP_OK) {
        fprintf(stderr, "outpost ca broker: cannot write into %s: %s\n", a->out, op_strerror(prc));
        return EXIT_FAILURE_RUNTIME;
    }
    printf("wrote %s/ca.crt, server.crt, server.key%s and acl (hub %s)\n", a->out,
           a->bridge ? ", bridge.crt, bridge.key" : "", hub_id);
    return EXIT_OK;
}

/* ca issue: a client certificate (operator or meter) named --name. */
static int ca_issue(const pki_ca *ca, const ca_args *a)
{
    if (a->n_names != 1 || !pki_valid_name(PKI_CLIENT, a->names[0])) {
        fprintf(stderr, "outpost ca issue: one --name ID ([A-Za-z0-9_-]{1,63}: an operator's id"
                        " from `outpost operator-key`, or a meter's)\n");
        return EXIT_USAGE;
    }
    pki_issued issued;
    int rc =
        pki_issue(ca, PKI_CLIENT, a->names, 1, a->days ? (int)a->days : PKI_CLIENT_DAYS, &issued);
    if (rc == OP_OK) rc = write_ca_cert(ca, a->out);
    if (rc == OP_OK) rc = pki_write_pair(a->out, "broker", &issued);
    pki_issued_free(&issued);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost ca issue: cannot write into %s: %s\n", a->out, op_strerror(rc));
        return EXIT_FAILURE_RUNTIME;
    }
    printf("wrote %s/broker.crt, broker.key and ca.crt for %s\n", a->out, a->names[0]);
    return EXIT_OK;
}

int cli__cmd_ca(cli *c, int argc, char **argv)
{
    ca_args a = {0};
    int rc = parse_ca_args(c, argc, argv, &a);
    if (rc != EXIT_OK || a.help) return rc;
    int broker = strcmp(a.sub, "broker") == 0;
    if (!broker && strcmp(a.sub, "issue") != 0) return cli__usage_error(c);
    char dir[PATH_MAX];
    pki_ca *ca = NULL;
    if (util_fmt(dir, sizeof dir, "%s/tls", cli__hub_dir(c)) != OP_OK) return EXIT_USAGE;
    int prc = pki_ca_open(dir, broker, &ca);
    if (prc != OP_OK) {
        fprintf(stderr, "outpost ca %s: no usable CA in %s (%s)%s\n", a.sub, dir, op_strerror(prc),
                broker ? "" : "; `outpost ca broker` or the hub makes it");
        return prc == OP_ENOTFOUND ? EXIT_NOT_FOUND : EXIT_FAILURE_RUNTIME;
    }
    rc = broker ? ca_broker(c, ca, &a) : ca_issue(ca, &a);
    pki_ca_free(ca);
    return rc;
}
