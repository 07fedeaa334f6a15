/*
 * routecmd: `outpost route FILE`, the solver on this machine.
 * Reads an instance, runs hgs within a time or iteration limit, writes the
 * solution as JSON (and optionally .sol, SVG, a checkpoint as it improves).
 */
#ifndef OUTPOST_ROUTECMD_H
#define OUTPOST_ROUTECMD_H

/* Returns a runctl exit code: 0 solved, 2 bad usage or input or an impossible instance, 1
 * otherwise. */
int routecmd_main(int argc, char **argv);

#endif
