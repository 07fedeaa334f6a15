/*
 * cli: every `outpost COMMAND` except the hub and site roles: the operator
 * commands (one signed request to the hub over the bus and one signed
 * answer, verified with the hub key from the hub's cli.conf; the operator's
 * identity must be listed in the hub's operators file), the site commands
 * (a site agent's local socket on this machine) and the tools (route, sim,
 * operator-key). One table names them all; src/cli/cli_int.h says which
 * file holds each.
 */
#ifndef OUTPOST_CLI_H
#define OUTPOST_CLI_H

#include <stdio.h>

/* Runs `outpost argv[0] argv[1..]`. Returns an exit code (runctl's EXIT_*); an unknown command
 * is EXIT_USAGE with "unknown command X; outpost help lists them" on stderr. */
int cli_main(int argc, char **argv);
/* 1 if name is a command of the table. */
int cli_is_command(const char *name);
/* The commands' synopses and one-line summaries, grouped by what they talk to. */
void cli_print_commands(FILE *out);

#endif
