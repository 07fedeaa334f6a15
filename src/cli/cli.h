/*
 * cli: the operator commands (`outpost token|submit|jobs|job|result|sites|
 * watch|cancel|stats|operator-key`). Each command is one signed request to
 * the hub over the bus and one signed response, verified with the hub key
 * from the hub's cli.conf. The operator's own identity must be listed in
 * the hub's operators file.
 */
#ifndef OUTPOST_CLI_H
#define OUTPOST_CLI_H

/* Runs the operator command argv[0] (already known to be a CLI command). Returns an exit code. */
int cli_main(int argc, char **argv);
/* 1 if name is an operator command. */
int cli_is_command(const char *name);
/* Prints the operator commands' one-line summaries. */
void cli_print_commands(void);

#endif
