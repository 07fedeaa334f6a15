/*
 * simfiles: reads the real power data folder (../shared/data/power) into a
 * simdata with the pure parsers of sim/simdata; the file I/O of `outpost sim`.
 */
#ifndef OUTPOST_SIMFILES_H
#define OUTPOST_SIMFILES_H

#include "sim/simdata.h"

#include <stddef.h>

/*
 * Reads every file from dir into *d (released with simdata_clear on OP_OK);
 * OP_ENOTFOUND (err names the file) when one is missing.
 */
int simfiles_load(simdata *d, const char *dir, char *err, size_t err_len);

#endif
