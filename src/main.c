/*
 * outpost: one binary, several roles (hub, site) and the commands of the
 * CLI's table (cli_main dispatches those, and refuses unknown ones).
 */
#include "base/runctl.h"
#include "base/version.h"
#include "cli/cli.h"
#include "hub/hub.h"
#include "site/site.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "outpost %s: a governed compute fleet of small sites\n\n"
            "Roles:\n"
            "  outpost hub  --data-dir DIR [--config FILE]      run the hub\n"
            "  outpost site --data-dir DIR --config FILE [--token T]  run a site agent\n\n",
            OUTPOST_VERSION);
    cli_print_commands(out);
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
    return cli_main(argc - 1, argv + 1);
}
