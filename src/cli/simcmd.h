/*
 * simcmd: `outpost sim`, the command around the simulator (sim): options,
 * progress bar, the report on standard output, CSV and SVG files.
 */
#ifndef OUTPOST_SIMCMD_H
#define OUTPOST_SIMCMD_H

int simcmd_main(int argc, char **argv);
/* `outpost sim --verify ...` (simverifycmd.c): simcmd_main hands it argv from "--verify" on. */
int simverify_main(int argc, char **argv);
/* The progress bar on stderr both simulations draw (their progress callback). */
void simcmd_progress(void *ctx, double fraction, const char *what);

#endif
