/*
 * conf: the configuration file of every role.
 *
 * Format: one "key = value" per line; '#' starts a comment line; blank
 * lines ignored; values are taken verbatim after trimming (no quoting).
 * Keys are checked against the role's list, so a typo is an error with its
 * file and line, never silently ignored. See the examples/ folder.
 */
#ifndef OUTPOST_CONF_H
#define OUTPOST_CONF_H

#include <stddef.h>
#include <stdint.h>

typedef struct conf conf;

/*
 * Parses text (name is used in error messages). allowed is a NULL-terminated
 * list of keys. On error returns OP_EINVAL (or OP_ENOMEM) with a message
 * "name:line: what" in err. *out is owned by the caller (conf_free).
 */
int conf_parse(const char *text, const char *name, const char *const *allowed, conf **out,
               char *err, size_t err_len);
/* Reads path and parses it. OP_ENOTFOUND if the file is missing. */
int conf_load(const char *path, const char *const *allowed, conf **out, char *err, size_t err_len);
/* Empty configuration (all defaults). */
conf *conf_empty(void);
void conf_free(conf *c);

/* The value, or def when the key is absent. The pointer lives as long as c. */
const char *conf_str(const conf *c, const char *key, const char *def);
/* Integer in [min,max] or def when absent; OP_EINVAL with "name:line: ..." in err. */
int conf_int(const conf *c, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
             char *err, size_t err_len);
int conf_double(const conf *c, const char *key, double def, double min, double max, double *out,
                char *err, size_t err_len);

#endif
