/*
 * jsonx: strict accessors over cJSON for messages from outside: a field of
 * the wrong type is an error, never a silent zero.
 */
#ifndef OUTPOST_JSONX_H
#define OUTPOST_JSONX_H

#include <cJSON.h>
#include <stdint.h>

/*
 * Integer field in [min,max] (a JSON number, or the exact text jsonx_add_int
 * wrote): OP_OK, OP_ENOTFOUND (absent), OP_EINVAL (wrong type/range).
 */
int jsonx_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out);
/* Number field (finite). Same codes. */
int jsonx_num(const cJSON *obj, const char *key, double *out);
/* String field or NULL when absent or not a string. The pointer lives as long as obj. */
const char *jsonx_str(const cJSON *obj, const char *key);
/* Adds an integer as a JSON number, printed exactly (any int64_t). */
void jsonx_add_int(cJSON *obj, const char *key, int64_t value);

#endif
