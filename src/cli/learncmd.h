/*
 * learncmd: `outpost learn replay`, the prequential replay of real taxi trips
 * as a fleet's exceptions (docs/learning.md): each site predicts a period's
 * trips, then learns from them, with a static estimate, local-only models,
 * two ways of pooling without moving rows, Outpost's pooled-only-where-better
 * and a central model side by side; a table on standard output, a CSV and an
 * SVG learning curve.
 */
#ifndef OUTPOST_LEARNCMD_H
#define OUTPOST_LEARNCMD_H

int learncmd_main(int argc, char **argv);
/* `outpost learn fit`: a learn job's training run (learnfit.c; argv[0] is "fit"). */
int learnfit_main(int argc, char **argv);
/* `outpost learn predict`: one question to one model, in a child (learnpredict.c). */
int learnpredict_main(int argc, char **argv);

#endif
