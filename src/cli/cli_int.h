/*
 * cli_int: what the files of the CLI share. The command table (cli_main.c),
 * the per-invocation context with its lazy hub connection and the common
 * options (cli_conn.c), the output helpers (cli_print.c), and each
 * command's handler, one file per concern:
 *   cmd_submit.c  submit (and submit --wait)
 *   cmd_jobs.c    jobs, job, result, watch, cancel
 *   cmd_fleet.c   sites, token, approve, stats, operator-key
 *   cmd_audit.c   audit verify|prove|show|tail|head, explain
 *   cmd_api.c     api-token create|list|revoke, power-history
 *   cmd_policy.c  policy check|show|diff|set
 *   cmd_local.c   leave, power, submit --local (a site's local socket)
 *   cmd_ca.c      ca broker, ca issue (the hub's broker CA, local files)
 *   cmd_model.c   model put|list|show|rm (the hub's model registry)
 * Not a public interface: only src/cli includes it (and the CLI's unit tests).
 */
#ifndef OUTPOST_CLI_INT_H
#define OUTPOST_CLI_INT_H

#include "base/runctl.h" /* the EXIT_* codes every command returns */
#include "io/bus.h"
#include "io/learndata.h"
#include "io/opclient.h"
#include "io/xgb.h"
#include "learn/learn.h"
#include "wire/ident.h"
#include "wire/msg.h"

#include <cJSON.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_OPTIONS 32

/* The common options, as getopt_long codes above any character. */
enum {
    CLI_OPT_HUB_DIR = 0x100,
    CLI_OPT_HUB_CONF,
    CLI_OPT_IDENTITY,
    CLI_OPT_TIMEOUT,
    CLI_OPT_JSON,
};

/* One invocation of one command. Zeroed and filled by cli__init, released by cli__close. */
typedef struct cli {
    const char *cmd; /* the command's name, for messages */
    const char *hub_dir, *hub_conf, *identity_dir;
    int timeout_ms;
    int json;
    /* the hub connection, opened by the first cli__request */
    ident identity;
    opclient_hub hub;
    msg_window hub_window;
    bus *bus;
    char rid[40];
    cJSON *response;
    msg_stats msg;
    /* submit --wait: collecting the hub's "done" notifications */
    int waiting;
    int64_t *wait_ids;
    char (*wait_state)[16];
    int n_wait, n_done;
    /* cli__getopt's merged option list: the command's own and the common ones */
    int opt_ready;
    char shortopts[32];
    struct option longopts[CLI_MAX_OPTIONS];
} cli;

/* What a command talks to: how `outpost help` groups it and whether the common hub options
 * (--hub-dir, --timeout, --json ...) are listed under its --help. */
typedef enum { CLI_NEEDS_HUB, CLI_NEEDS_SITE, CLI_NEEDS_NOTHING } cli_needs;

typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv); /* argv[0] is the name; returns an exit code */
    cli_needs needs;
    const char *synopsis; /* the arguments, after "outpost " */
    const char *summary;  /* one line */
    const char *details;  /* options explained by --help, or NULL */
} cli_command;

/* ---- cli_main.c: the table ---- */
extern const cli_command cli__commands[];
extern const size_t cli__n_commands;
/* The table entry called name, NULL if there is none. */
const cli_command *cli__find(const char *name);
/* `outpost CMD --help`: the command's usage, details and (hub commands) the common options. */
void cli__usage(FILE *out, const char *name);
/* Prints "usage: outpost SYNOPSIS" to stderr and returns EXIT_USAGE. */
int cli__usage_error(const cli *c);

/* ---- cli_conn.c: context, options, hub connection ---- */
void cli__init(cli *c, const char *cmd);
void cli__close(cli *c);
/*
 * getopt_long over the command's own options (own, ending with a zero entry;
 * shortopts as for getopt, "" for none) and the common ones, which it
 * handles itself. Returns the next own option's code, 'h' for --help/-h,
 * '?' on a bad option (message printed), -1 at the end (optind is then the
 * first positional argument; arguments are permuted GNU-style).
 */
int cli__getopt(cli *c, int argc, char **argv, const char *shortopts, const struct option *own);
/*
 * Sends req (consumed) as command cmd to the hub, connecting first if needed,
 * and waits for the answer. On EXIT_OK *data is the answer's data object
 * (owned by c, valid until the next request). Otherwise prints why and
 * returns EXIT_USAGE (no hub configured), EXIT_UNREACHABLE, EXIT_NOT_FOUND or
 * EXIT_REJECTED.
 */
int cli__request(cli *c, cJSON *req, const char *cmd, cJSON **data);
/* Runs the bus for ms milliseconds (notifications, keepalive), or until stopping. */
void cli__pause(cli *c, int64_t ms);
/* The operator key dir the options name (--identity, else HUB_DIR/admin, else ~/.outpost). */
void cli__identity_dir(const cli *c, char *buf, size_t len);
/* The hub dir from --hub-dir, else $OUTPOST_HUB_DIR, else NULL. */
const char *cli__hub_dir(const cli *c);
/*
 * The hub's database for the commands that open it without the hub (audit
 * verify, backup): db (--db) when given, else the store the hub's cli.conf
 * at conf_path names (written there when the hub's config sets one), else
 * <hub-dir>/hub.db. EXIT_OK, or EXIT_USAGE (printed) when none of them does.
 */
int cli__hub_store(const cli *c, const char *db, const char *conf_path, char *out, size_t len);

/* ---- cli_print.c: output helpers ---- */
void cli__print_json(FILE *out, const cJSON *data);
/* "HH:MM:SS" (UTC) of a time in ms, "-" for none. */
const char *cli__fmt_time(int64_t ms, char *buf, size_t len);
/* obj's string key, or fallback when absent or empty. */
const char *cli__text(const cJSON *obj, const char *key, const char *fallback);
/* obj's integer key in [0, INT64_MAX], 0 when absent. */
int64_t cli__count(const cJSON *obj, const char *key);
/* The width of a column: the longest of header and each row's value of key (fallback when
 * empty), at most max. */
int cli__column_width(const cJSON *rows, const char *key, const char *fallback, const char *header,
                      int max);
/* dir "/" name with exactly one slash between them. OP_OK, OP_EINVAL (empty name), OP_ETOOBIG. */
int cli__path_join(char *buf, size_t len, const char *dir, const char *name);
/* The tables of `outpost jobs`, `outpost sites` (now_ms: for a departure's minutes) and the
 * per-site counts of `outpost watch` and `outpost stats`. */
void cli__print_jobs(FILE *out, const cJSON *data);
void cli__print_sites(FILE *out, const cJSON *data, int64_t now_ms);
void cli__print_per_site(FILE *out, const cJSON *per_site);
/* `outpost stats`: the hub's counters, readably (not its job list). */
void cli__print_stats(FILE *out, const cJSON *data, const char *hub_id);

/* ---- cmd_submit.c ---- */
typedef struct cli_submit {
    cJSON *req;        /* {"spec": {...}} or {"specs": [...]}; the caller frees it */
    const char *local; /* --local: a site's data dir or socket, no hub */
    int wait;          /* --wait */
    int quiet;         /* --quiet: bare ids, one a line */
    int help;          /* --help was printed */
} cli_submit;
/* Turns submit's arguments into a request (reading spec files and inputs). EXIT_OK (with
 * s->req, or s->help), EXIT_USAGE with the reason printed, EXIT_FAILURE_RUNTIME. */
int cli__submit_parse(cli *c, int argc, char **argv, cli_submit *s);
int cli__cmd_submit(cli *c, int argc, char **argv);

/* ---- cmd_jobs.c ---- */
int cli__cmd_jobs(cli *c, int argc, char **argv);
int cli__cmd_job(cli *c, int argc, char **argv);
int cli__cmd_result(cli *c, int argc, char **argv);
int cli__cmd_watch(cli *c, int argc, char **argv);
int cli__cmd_cancel(cli *c, int argc, char **argv);
/* The single job id argument of job, result, cancel, explain, approve, at argv[optind] once
 * the options are read. EXIT_OK or EXIT_USAGE (printed). */
int cli__job_id_arg(const cli *c, int argc, char **argv, int64_t *id);
/* The whole command line of a command that takes a job id and no option of its own. EXIT_OK
 * with *id, or with *help when --help was printed; EXIT_USAGE (printed). */
int cli__job_id_only(cli *c, int argc, char **argv, int64_t *id, int *help);
/* A command on one job with no answer to show (cancel, approve): the request cmd, then
 * "job N <done>". An exit code. */
int cli__job_action(cli *c, int argc, char **argv, const char *cmd, const char *done);

/* ---- cmd_fleet.c ---- */
int cli__cmd_sites(cli *c, int argc, char **argv);
int cli__cmd_token(cli *c, int argc, char **argv);
int cli__cmd_approve(cli *c, int argc, char **argv);
int cli__cmd_stats(cli *c, int argc, char **argv);
int cli__cmd_operator_key(cli *c, int argc, char **argv);

/* ---- cmd_audit.c ---- */
int cli__cmd_audit(cli *c, int argc, char **argv);
/*
 * Recomputes the hub log in db_path and checks its heads with the hub key
 * from conf_path (and trusted_path's head when not NULL); prints the
 * outcome. EXIT_OK, EXIT_AUDIT_FAILED, EXIT_USAGE, EXIT_FAILURE_RUNTIME.
 */
int cli__verify_audit_db(const char *conf_path, const char *db_path, const char *trusted_path);
/* cmd_backup.c */
int cli__cmd_backup(cli *c, int argc, char **argv);
int cli__cmd_explain(cli *c, int argc, char **argv);

/* ---- cmd_api.c ---- */
int cli__cmd_api_token(cli *c, int argc, char **argv);
int cli__cmd_power_history(cli *c, int argc, char **argv);

/* ---- cmd_policy.c ---- */
int cli__cmd_policy(cli *c, int argc, char **argv);

/* ---- cmd_model.c ---- */
int cli__cmd_model(cli *c, int argc, char **argv);

/* ---- cmd_ca.c ---- */
int cli__cmd_ca(cli *c, int argc, char **argv);

/* ---- cmd_local.c ---- */
int cli__cmd_leave(cli *c, int argc, char **argv);
int cli__cmd_power(cli *c, int argc, char **argv);
/* cmd_exception.c: outpost exception add (through the site's local socket). */
int cli__cmd_exception(cli *c, int argc, char **argv);
/* cmd_exception.c: outpost predict (the site's own model, through its local socket). */
int cli__cmd_predict(cli *c, int argc, char **argv);
/* submit --local: sends req (consumed) to the site; prints "local ID" (quiet: "ID") per job. */
int cli__local_submit(const char *path, cJSON *req, int quiet);

/* ---- learnopts.c: `outpost learn replay`'s options (learncmd.c runs the replay) ---- */
typedef struct cli_learn_opts {
    learndata_kind kind;
    const char *dir, *out;
    int quick, quiet, print_every, max_periods;
    learn_objective objective;
    xgb_params xgb;       /* rounds: trees per update */
    size_t batch, window; /* new rows before an update; rows an update fits on (at least) */
    size_t calibrate, min_site_trips, few_trips, seen_goal, holdout;
    learn_rule rule;
    int64_t period_s;
    int warmup;         /* periods before the overall figures count */
    int central_rounds; /* the central model is retrained from scratch with this many trees */
    int passes;         /* rounds of the sites the pooled-cyclic model makes per period */
    int personal;       /* trees a site adds to the pooled model on its own rows (0: none) */
    int rebuild;        /* a site's learner is retrained with this many trees (0: continued) */
    int sticky;         /* a site leaves the model it answers with only for a better one */
} cli_learn_opts;
/* The usage text of `outpost learn replay`. */
void cli__learn_usage(FILE *out);
/* Fills o from argv (defaults first); -1 to go on, else the exit code (--help, a bad value). */
int cli__learn_replay_args(int argc, char **argv, cli_learn_opts *o);

#endif
