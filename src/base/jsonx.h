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
/*
 * Whether JSON text from outside is free of NUL characters: no raw NUL byte
 * and no \u0000 escape in a string. cJSON decodes "tr\u0000ue" and the C
 * string it hands out stops at the NUL ("tr"), so a check on the parsed
 * tree cannot see it: the text is checked before it is parsed. OP_OK, or
 * OP_EINVAL with the offset of the first NUL in *at (when at is not NULL).
 */
int jsonx_check_nul(const char *text, size_t len, size_t *at);
/*
 * Parses JSON text from outside: jsonx_check_nul, then cJSON. NULL when the
 * text holds a NUL or is not JSON, with the reason and offset in err. The
 * caller frees the tree with cJSON_Delete.
 */
cJSON *jsonx_parse(const char *text, size_t len, char *err, size_t err_len);
/* Adds an integer as a JSON number, printed exactly (any int64_t). */
void jsonx_add_int(cJSON *obj, const char *key, int64_t value);

#endif
