/*
 * cmd_backup: `outpost backup`, a consistent copy of a hub's (or a site's)
 * database taken while the daemon runs, through SQLite's online backup API
 * (io/store). A hub's copy is then checked the way `outpost audit verify`
 * checks the live file, so a backup is known good the moment it is made.
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
    snprintf(src, sizeof src, "%s", db ? db : "");
    if (!db) snprintf(src, sizeof src, "%s/hub.db", hub_dir);
    const char *out = argv[optind];
    if (store_backup(src, out, err, sizeof err) != OP_OK) {
        fprintf(stderr, "outpost backup: %s\n", err);
        return EXIT_FAILURE_RUNTIME;
    }
    printf("backup of %s written to %s\n", src, out);
    if (db) return EXIT_OK; /* a site's log is checked with the site's key: not here */
    snprintf(conf, sizeof conf, "%s/cli.conf", hub_dir);
    return cli__verify_audit_db(conf, out, NULL);
}
