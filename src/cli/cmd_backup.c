/*
 * cmd_backup: `outpost backup`, a consistent copy of a hub's (or a site's)
 * database taken while the daemon runs, through SQLite's online backup API
 * (io/store). A hub's copy is then checked the way `outpost audit verify`
 * checks the live file, so a backup is known good the moment it is made.
 * Without --db it copies the store the hub's cli.conf names, else
 * <hub-dir>/hub.db; a PostgreSQL store is refused with a pointer to pg_dump
 * (the server's own tool makes a consistent copy; a second one here would
 * be a worse pg_dump).
 */
#include "base/err.h"
#include "cli/cli_int.h"
#include "io/store.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int cli__cmd_backup(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
    const char *db = NULL;
    int code;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        if (code == 'd') {
            db = optarg;
        } else if (code == 'h') {
            cli__usage(stdout, c->cmd);
            return EXIT_OK;
        } else {
            return cli__usage_error(c);
        }
    }
    const char *hub_dir = cli__hub_dir(c);
    if (optind != argc - 1 || (!db && !hub_dir)) return cli__usage_error(c);
    char src[PATH_MAX], conf[PATH_MAX], err[768];
    snprintf(conf, sizeof conf, "%s/cli.conf", hub_dir ? hub_dir : ".");
    int rc = cli__hub_store(c, db, conf, src, sizeof src);
    if (rc != EXIT_OK) return rc;
    if (store_is_url(src)) {
        int had_password;
        if (store_where_public(src, err, sizeof err, &had_password) != OP_OK)
            snprintf(err, sizeof err, "its URL not shown");
        fprintf(stderr,
                "outpost backup: the hub's store is PostgreSQL (%s), and outpost backup copies "
                "SQLite files only: back it up with pg_dump (docs/failover.md)\n",
                err);
        return EXIT_USAGE;
    }
    const char *out = argv[optind];
    if (store_backup(src, out, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost backup: %s\n", err);
        return EXIT_FAILURE_RUNTIME;
    }
    printf("backup of %s written to %s\n", src, out);
    if (db) return EXIT_OK; /* a site's log is checked with the site's key: not here */
    return cli__verify_audit_db(conf, out, NULL);
}
