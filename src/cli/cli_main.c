/*
 * cli_main: the table of every `outpost COMMAND` other than the hub and site
 * roles, and the dispatch through it. The same table answers `outpost help`,
 * each command's --help, and cli_is_command.
 */
#include "base/log.h"
#include "base/runctl.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "cli/learncmd.h"
#include "cli/routecmd.h"
#include "cli/simcmd.h"

#include <string.h>

/* route, sim and learn parse their own arguments (and --help) from argv. */
static int run_route(cli *c, int argc, char **argv)
{
    (void)c;
    return routecmd_main(argc, argv);
}

static int run_sim(cli *c, int argc, char **argv)
{
    (void)c;
    return simcmd_main(argc, argv);
}

static int run_learn(cli *c, int argc, char **argv)
{
    (void)c;
    return learncmd_main(argc, argv);
}

static const char submit_details[] =
    "  outpost submit FILE|-               a job spec, or an array of specs, as JSON\n"
    "  outpost submit [flags] -- PROGRAM ARGS...   an exec job\n"
    "  outpost submit --kind noop [--count N]\n"
    "  outpost submit --local SITE_DATA_DIR|SOCKET ...   run on this site, also offline\n"
    "      (the site's policy must list the kind under 'local')\n"
    "  outpost submit --kind route INSTANCE [--time-limit S] [--seed N] [--iterations N]\n"
    "      plan routes for a CVRPLIB, Solomon or JSON instance; outputs solution.json,\n"
    "      routes.svg (--iterations: reproducible, so its result can be verified)\n"
    "  --deterministic   the exec job gives the same outputs wherever it runs: it may run\n"
    "      on untrusted classes (cars), where its result counts once replicas agree\n"
    "  --name NAME  --cores N  --memory-mb N  --wall-s N  --classes pod,car,dc\n"
    "  --input FILE (attached, repeatable)  --output NAME (returned, repeatable)\n"
    "  --count N (N copies)  --data-class public|confidential|site-private  --origin SITE\n"
    "  --wait        until every job ends; prints 'ID STATE', exit 0 if all succeeded\n"
    "  --quiet, -q   print only the new job ids, one a line (for scripts)\n"
    "The spec format is in docs/jobs.md. Prints 'submitted job ID' per new job.\n";

static const char power_details[] =
    "  --watts W          the site's envelope (what it may draw now)\n"
    "  --price P          the grid price now\n"
    "  --carbon C         the grid's carbon intensity now (g CO2 per kWh)\n"
    "  --dr-watts W --dr-for S   a demand-response cap of W watts for S seconds\n"
    "  --departure-in S   a parked car leaves in S seconds; --no-departure: no stated time\n";

static const char audit_details[] =
    "  outpost audit verify [--db FILE|URL] [--trusted-head FILE]   recompute the whole log\n"
    "      from the hub's database (no hub process needed) and check every signed head; the\n"
    "      database: --db, else the store in DIR/cli.conf, else DIR/hub.db\n"
    "  outpost audit verify --site-dir DIR [--site-key HEX] [--trusted-head FILE]   the same\n"
    "      for a site's own log (DIR/site.db, its heads checked with --site-key: the pubkey\n"
    "      of its enrollment entry, `outpost audit show --kind enrollment`; else the site's\n"
    "      DIR/identity/identity.pub); lists its learn entries (adoptions, rollbacks, ...)\n"
    "  outpost audit prove ENTRY    an inclusion proof, checked here with the hub's key\n"
    "  outpost audit show [--job ID | --site ID] [--kind K] [--from N] [--limit N]\n"
    "  outpost audit tail [filters]  follow the log as it grows\n"
    "  outpost audit head           a head the hub signs now (keep it: --trusted-head)\n";

static const char policy_details[] =
    "  outpost policy check FILE   parse and validate here (no hub needed)\n"
    "  outpost policy show         the policy in force on the hub\n"
    "  outpost policy diff FILE    lines that FILE would remove (-) and add (+)\n"
    "  outpost policy set FILE     put FILE in force (its version must be newer)\n";

static const char model_details[] =
    "  outpost model put NAME FILE [--parent V] [--metrics JSON] [--lineage JSON]\n"
    "      [--data-class public|confidential|site-private] [--origin SITE]\n"
    "      uploads FILE (in pieces, resumed) and names it the next version of NAME;\n"
    "      --lineage {\"site\", \"from\", \"to\", \"rows\", \"note\"}, --metrics {\"mae\": ...}\n"
    "  outpost model list [NAME] [--all]   versions, newest first (--all: removed ones too)\n"
    "  outpost model show NAME [--version V]   the record and its lineage; its signature is\n"
    "      checked with the hub key in cli.conf (exit 7 when it does not verify)\n"
    "  outpost model rm NAME [--version V]   removes one version, or every version\n"
    "  outpost model pool NAME --owner OWNER [--visits N] [--deadline-s S] [--rounds N]\n"
    "      [--own PREFIX]   the hub drives a pooling round: learn jobs that visit the\n"
    "      owner's sites in turn, N passes (default 2), then offer NAME to each site as its\n"
    "      own model PREFIX<site> (default: eta-pool -> eta-<site>); deferrable within S\n"
    "      seconds (default 3600); progress and outcome in model show and the audit log\n"
    "  outpost model rollback NAME --site SITE   SITE goes back to the champion of NAME\n"
    "      before its current one (a learn job; both measured on its fresh rows, then\n"
    "      rolled back); shown by model show and audited as model-rollback\n"
    "A job names a model with \"model\": \"NAME\" or \"NAME@VERSION\" (docs/models.md).\n";

static const char ca_details[] =
    "  outpost ca broker --hub-dir DIR --out OUTDIR [--name ADDR|HOST ...] [--hub-id ID]\n"
    "                    [--bridge bridge-NAME]\n"
    "      the CA in DIR/tls (made if missing); writes OUTDIR/ca.crt, server.crt,\n"
    "      server.key (0600) for the names given (default 127.0.0.1 and localhost), and acl,\n"
    "      the broker's ACL file (hub id: --hub-id, else DIR/cli.conf's, else 'hub');\n"
    "      --bridge: the ACL lets that bridge carry Outpost's topics between two brokers, and\n"
    "      its client certificate is OUTDIR/bridge.crt, bridge.key (docs/brokers.md)\n"
    "  outpost ca issue --hub-dir DIR --name ID --out OUTDIR\n"
    "      a client certificate for an operator (its id: `outpost operator-key`) or a\n"
    "      meter: OUTDIR/broker.crt, broker.key (0600) and ca.crt\n"
    "  --days N   validity (default 825 for a broker, 365 for a client)\n"
    "No hub needs to run: these read and write files under DIR. docs/operations.md says how\n"
    "to set up the broker with them.\n";

static const char common_details[] =
    "\nCommon options (before or after the command's own):\n"
    "  --hub-dir DIR     the hub's data dir: uses DIR/cli.conf and DIR/admin\n"
    "                    (default $OUTPOST_HUB_DIR)\n"
    "  --hub-conf FILE   hub address and key (default DIR/cli.conf)\n"
    "  --identity DIR    operator key dir (default DIR/admin, else ~/.outpost/operator)\n"
    "  --timeout MS      how long to wait for the hub (default 10000)\n"
    "  --json            print the hub's JSON answer\n"
    "Exit codes: 0 ok, 2 bad usage, 4 not found, 5 hub unreachable, 6 rejected,\n"
    "7 the audit log or a proof does not verify.\n";

const cli_command cli__commands[] = {
    {"token", cli__cmd_token, CLI_NEEDS_HUB,
     "token create --class pod|car|dc --site ID [--owner ID] [--ttl S] [--max-* N]",
     "a one-time join token (or bundle) for a new site",
     "  --class C   the site class the new site gets\n"
     "  --site ID   the only site id that may use it (its site_id)\n"
     "  --owner ID  who owns the site (default: the site's own id); replicas of one\n"
     "              job are not run on two sites of one owner\n"
     "  --ttl S     seconds it stays valid (default: the hub's token_ttl_s)\n"
     "  --max-cores N, --max-memory-mb N, --max-watts W\n"
     "              the most the site may claim (its power budget, per-core and idle\n"
     "              draw each at most W); the lower of these and its class's limits count\n"
     "With a broker on TLS it prints a join bundle (opj1.): the token, the broker CA, and a\n"
     "broker certificate and key for the site. Pass it to `outpost site --token-file FILE`.\n"},
    {"submit", cli__cmd_submit, CLI_NEEDS_HUB, "submit FILE|- | submit [flags] -- PROGRAM ARGS",
     "queue jobs", submit_details},
    {"jobs", cli__cmd_jobs, CLI_NEEDS_HUB, "jobs [--state S] [--limit N]", "list jobs",
     "  --state queued|placed|running|succeeded|failed|cancelled   only jobs in that state\n"
     "  --limit N   at most N jobs, the newest first (default 50)\n"},
    {"job", cli__cmd_job, CLI_NEEDS_HUB, "job ID", "a job's status, attempts, where and why", NULL},
    {"result", cli__cmd_result, CLI_NEEDS_HUB, "result ID [--save DIR]",
     "the outputs of a finished job", "  --save DIR   write the verified output files into DIR\n"},
    {"watch", cli__cmd_watch, CLI_NEEDS_HUB, "watch [--until-done] [--interval MS]",
     "live progress per site",
     "  --until-done    stop when no job is queued, placed or running\n"
     "  --interval MS   refresh period (100 to 60000, default 1000)\n"},
    {"cancel", cli__cmd_cancel, CLI_NEEDS_HUB, "cancel ID", "cancel a job", NULL},
    {"sites", cli__cmd_sites, CLI_NEEDS_HUB, "sites [clear ID]",
     "the fleet: class, capacity, power, heartbeat, claims checked",
     "  clear ID   a quarantined site may take work again (its claims are checked anew)\n"
     "A site's note line says why it is held: quarantined (a forged or unanswered probe, an\n"
     "over-claim twice), over-claiming (counted as the cores it showed), or being probed.\n"},
    {"approve", cli__cmd_approve, CLI_NEEDS_HUB, "approve JOB",
     "let a job that policy holds for approval run", NULL},
    {"stats", cli__cmd_stats, CLI_NEEDS_HUB, "stats",
     "the hub's counters: jobs, results, messages dropped", NULL},
    {"audit", cli__cmd_audit, CLI_NEEDS_HUB, "audit verify|prove N|show|tail|head",
     "the hub's tamper-evident log", audit_details},
    {"backup", cli__cmd_backup, CLI_NEEDS_NOTHING, "backup [--db FILE] OUT",
     "a consistent copy of the hub's database, taken while it runs, then verified",
     "  (no --db)   copies <hub-dir>/hub.db (or the SQLite store cli.conf names) and checks\n"
     "              the copy's audit log; a PostgreSQL store is refused: use pg_dump\n"
     "  --db FILE   copies another database (a site's site.db), checked by SQLite only\n"
     "Restore: stop the daemon, replace its database with the copy, delete the -wal and\n"
     "-shm files beside it, start it (docs/operations.md, Backups).\n"},
    {"explain", cli__cmd_explain, CLI_NEEDS_HUB, "explain JOB",
     "why the job ran where it ran (from the audit log)", NULL},
    {"policy", cli__cmd_policy, CLI_NEEDS_HUB, "policy check FILE | show | diff FILE | set FILE",
     "the hub's governance rules", policy_details},
    {"api-token", cli__cmd_api_token, CLI_NEEDS_HUB,
     "api-token create --operator OP --role viewer|operator|admin [--expires-s N] | list | "
     "revoke ID",
     "tokens for the hub's HTTP API (docs/api.md)",
     "  create   a token acting as operator OP with that role; printed once (the hub keeps\n"
     "           its hash only); --expires-s N: valid for N seconds (default: until revoked)\n"
     "  list     every token: id, operator, role, live or revoked, expiry\n"
     "  revoke   the token stops working at once (and the console sessions made with it)\n"},
    {"power-history", cli__cmd_power_history, CLI_NEEDS_HUB, "power-history [--hours N]",
     "spare power the fleet offered and used, per class, sampled by the hub",
     "  --hours N   the last N hours (1 to 24, default 24)\n"},
    {"model", cli__cmd_model, CLI_NEEDS_HUB,
     "model put NAME FILE | list [NAME] | show NAME | rm NAME | pool NAME --owner O | "
     "rollback NAME --site S",
     "the hub's model registry", model_details},
    {"leave", cli__cmd_leave, CLI_NEEDS_SITE, "leave SITE_DIR|SOCKET [--grace S]",
     "a site's owner unplugs: hand its jobs back",
     "  --grace S   seconds the jobs get to stop before they are killed (0 to 3600, default "
     "10)\n"},
    {"power", cli__cmd_power, CLI_NEEDS_SITE, "power SITE_DIR|SOCKET [options]",
     "set a site's power signals by hand", power_details},
    {"exception", cli__cmd_exception, CLI_NEEDS_SITE,
     "exception add SITE_DIR|SOCKET --planned S --actual S [--features JSON] | --file F",
     "tell a site what really happened (planned vs actual), to learn from",
     "  --planned S, --actual S   seconds: what the plan said, what it took\n"
     "  --features JSON   what was known when planned: {\"distance_miles\": 2.1, \"start\":\n"
     "                    EPOCH_S, \"pickup_area\": 161, ...} (docs/learning.md)\n"
     "  --kind K          route-leg (default) or correction\n"
     "  --data-class C    site-private (default), confidential or public: what may leave\n"
     "                    the site in a model learned from it\n"
     "  --file F          one JSON exception per line ({\"planned_s\", \"actual_s\",\n"
     "                    \"features\", \"kind\"?, \"data_class\"?, \"at_ms\"?}); - is stdin\n"},
    {"predict", cli__cmd_predict, CLI_NEEDS_SITE,
     "predict SITE_DIR|SOCKET --planned S --features JSON [--model NAME] [--data-class C] "
     "[--json]",
     "how long a leg will take, from the site's own model",
     "  --planned S       what the plan says (seconds)\n"
     "  --features JSON   as for outpost exception add ({\"distance_miles\": 2.1, ...})\n"
     "  --model NAME      the site's model (default: its route_model, else eta)\n"
     "  --data-class C    the features' class: site-private (default: they never leave the\n"
     "                    site), confidential or public (the site's policy decides whether\n"
     "                    a question its model is not confident about goes to a larger one)\n"
     "The answer says where it came from: local, local (offline) when the hub is out of\n"
     "reach, the static plan when the site has no model yet, or escalated to MODEL@V at the\n"
     "hub (with both predictions); its confidence, and why it is low.\n"},
    {"ca", cli__cmd_ca, CLI_NEEDS_NOTHING, "ca broker|issue --hub-dir DIR --out OUTDIR ...",
     "broker certificates from the hub's CA", ca_details},
    {"operator-key", cli__cmd_operator_key, CLI_NEEDS_NOTHING, "operator-key",
     "print this operator's public key", NULL},
    {"route", run_route, CLI_NEEDS_NOTHING, "route FILE [--time-limit S]",
     "plan vehicle routes on this machine", NULL},
    {"sim", run_sim, CLI_NEEDS_NOTHING, "sim [--sites N] [--jobs N] [--out DIR]",
     "simulate a fleet on real data", NULL},
    {"learn", run_learn, CLI_NEEDS_NOTHING, "learn replay [--data chicago|nyc] [--out DIR]",
     "replay real taxi trips: sites learning from their exceptions", NULL},
};
const size_t cli__n_commands = sizeof cli__commands / sizeof cli__commands[0];

const cli_command *cli__find(const char *name)
{
    for (size_t i = 0; name && i < cli__n_commands; i++)
        if (strcmp(cli__commands[i].name, name) == 0) return &cli__commands[i];
    return NULL;
}

int cli_is_command(const char *name)
{
    return cli__find(name) != NULL;
}

void cli_print_commands(FILE *out)
{
    static const struct {
        cli_needs needs;
        const char *title;
    } groups[] = {
        {CLI_NEEDS_HUB, "Operator commands (talk to a running hub):"},
        {CLI_NEEDS_SITE, "Site commands (talk to a site agent on this machine):"},
        {CLI_NEEDS_NOTHING, "Tools (need no hub and no site):"},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        fprintf(out, "%s%s\n", g ? "\n" : "", groups[g].title);
        for (size_t i = 0; i < cli__n_commands; i++) {
            const cli_command *cmd = &cli__commands[i];
            if (cmd->needs != groups[g].needs) continue;
            if (strlen(cmd->synopsis) > 44)
                fprintf(out, "  outpost %s\n  %52s%s\n", cmd->synopsis, "", cmd->summary);
            else
                fprintf(out, "  outpost %-44s%s\n", cmd->synopsis, cmd->summary);
        }
    }
}

void cli__usage(FILE *out, const char *name)
{
    const cli_command *cmd = cli__find(name);
    if (!cmd) return;
    fprintf(out, "usage: outpost %s\n  %s\n", cmd->synopsis, cmd->summary);
    if (cmd->details) fprintf(out, "\n%s", cmd->details);
    if (cmd->needs != CLI_NEEDS_SITE) fprintf(out, "%s", common_details);
}

int cli__usage_error(const cli *c)
{
    const cli_command *cmd = cli__find(c->cmd);
    if (cmd)
        fprintf(stderr, "usage: outpost %s\n(outpost %s --help says more)\n", cmd->synopsis,
                cmd->name);
    return EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    const cli_command *cmd = argc > 0 ? cli__find(argv[0]) : NULL;
    if (!cmd) {
        fprintf(stderr, "outpost: unknown command %s; outpost help lists them\n",
                argc > 0 ? argv[0] : "(none)");
        return EXIT_USAGE;
    }
    log_set_level(LOG_LEVEL_WARN);
    cli c;
    cli__init(&c, cmd->name);
    int rc = cmd->run(&c, argc, argv);
    cli__close(&c);
    return rc;
}
