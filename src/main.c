/*
 * outpost: one binary, several roles (hub, site, operator CLI).
 */
#include "base/log.h"
#include "base/runctl.h"
#include "cli/cli.h"
#include "cli/routecmd.h"
#include "cli/simcmd.h"
#include "hub/hub.h"
#include "site/site.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define OUTPOST_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "outpost %s: a governed compute fleet of small sites\n\n"
            "Roles:\n"
            "  outpost hub  --data-dir DIR [--config FILE]      run the hub\n"
            "  outpost site --data-dir DIR --config FILE [--token T]  run a site agent\n"
            "  outpost route FILE [--time-limit S]             plan vehicle routes here\n"
            "  outpost sim [--sites N] [--jobs N] [--out DIR]  simulate a fleet on real data\n"
            "\nOperator commands (talk to a running hub):\n",
            OUTPOST_VERSION);
    if (out == stdout) cli_print_commands();
    fprintf(out, "\nEvery command takes --help. See README.md and docs/.\n");
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "outpost: libsodium failed to initialise\n");
        return EXIT_FAILURE_RUNTIME;
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("outpost %s\n", OUTPOST_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "hub") == 0) return hub_main(argc - 1, argv + 1);
    if (strcmp(cmd, "site") == 0) return site_main(argc - 1, argv + 1);
    if (strcmp(cmd, "route") == 0) return routecmd_main(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0) return simcmd_main(argc - 1, argv + 1);
    if (cli_is_command(cmd)) {
        log_set_level(LOG_LEVEL_WARN);
        return cli_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "outpost: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
