#include "base/conf.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_ENTRIES 128
#define CONF_MAX_BYTES (64 * 1024)

struct conf_entry {
    char *key;
    char *value;
    int line;
};

struct conf {
    char name[256];
    struct conf_entry entries[CONF_MAX_ENTRIES];
    int count;
};

conf *conf_empty(void)
{
    return calloc(1, sizeof(conf));
}

void conf_free(conf *c)
{
    if (!c) return;
    for (int i = 0; i < c->count; i++) {
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    free(c);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static const struct conf_entry *find(const conf *c, const char *key)
{
    for (int i = 0; i < c->count; i++)
        if (strcmp(c->entries[i].key, key) == 0) return &c->entries[i];
    return NULL;
}

int conf_parse(const char *text, const char *name, const char *const *allowed, conf **out,
               char *err, size_t err_len)
{
    int rc = OP_EINVAL;
    char *copy = NULL;
    conf *c = conf_empty();
    if (!c) return OP_ENOMEM;
    snprintf(c->name, sizeof c->name, "%s", name);
    if (strlen(text) > CONF_MAX_BYTES) {
        snprintf(err, err_len, "%s: file larger than %d bytes", name, CONF_MAX_BYTES);
        goto fail;
    }
    copy = strdup(text);
    if (!copy) {
        rc = OP_ENOMEM;
        goto fail;
    }
    int line_no = 0;
    char *next = copy;
    while (next) {
        char *raw = next;
        char *nl = strchr(raw, '\n');
        if (nl) *nl = '\0';
        next = nl ? nl + 1 : NULL;
        line_no++;
        char *s = trim(raw);
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, err_len, "%s:%d: expected 'key = value'", name, line_no);
            goto fail;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        int known = 0;
        for (const char *const *a = allowed; a && *a; a++)
            if (strcmp(*a, key) == 0) known = 1;
        if (!known) {
            snprintf(err, err_len, "%s:%d: unknown key '%.64s'", name, line_no, key);
            goto fail;
        }
        if (find(c, key)) {
            snprintf(err, err_len, "%s:%d: key '%.64s' set twice", name, line_no, key);
            goto fail;
        }
        if (c->count == CONF_MAX_ENTRIES) {
            snprintf(err, err_len, "%s:%d: too many keys", name, line_no);
            goto fail;
        }
        struct conf_entry *e = &c->entries[c->count];
        e->key = strdup(key);
        e->value = strdup(value);
        e->line = line_no;
        c->count++;
        if (!e->key || !e->value) {
            rc = OP_ENOMEM;
            goto fail;
        }
    }
    free(copy);
    *out = c;
    return OP_OK;
fail:
    free(copy);
    conf_free(c);
    return rc;
}

int conf_load(const char *path, const char *const *allowed, conf **out, char *err, size_t err_len)
{
    char *text = NULL;
    int rc = os_read_file(path, CONF_MAX_BYTES, &text, NULL);
    if (rc != OP_OK) {
        snprintf(err, err_len, "%s: cannot read config: %s", path, op_strerror(rc));
        return rc;
    }
    rc = conf_parse(text, path, allowed, out, err, err_len);
    free(text);
    return rc;
}

const char *conf_str(const conf *c, const char *key, const char *def)
{
    const struct conf_entry *e = c ? find(c, key) : NULL;
    return e ? e->value : def;
}

int conf_int(const conf *c, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
             char *err, size_t err_len)
{
    const struct conf_entry *e = c ? find(c, key) : NULL;
    if (!e) {
        *out = def;
        return OP_OK;
    }
    if (util_parse_i64(e->value, min, max, out) != OP_OK) {
        snprintf(err, err_len, "%s:%d: %s must be an integer from %lld to %lld, got '%.64s'",
                 c->name, e->line, key, (long long)min, (long long)max, e->value);
        return OP_EINVAL;
    }
    return OP_OK;
}

int conf_double(const conf *c, const char *key, double def, double min, double max, double *out,
                char *err, size_t err_len)
{
    const struct conf_entry *e = c ? find(c, key) : NULL;
    if (!e) {
        *out = def;
        return OP_OK;
    }
    double v;
    if (util_parse_double(e->value, &v) != OP_OK || v < min || v > max) {
        snprintf(err, err_len, "%s:%d: %s must be a number from %g to %g, got '%.64s'", c->name,
                 e->line, key, min, max, e->value);
        return OP_EINVAL;
    }
    *out = v;
    return OP_OK;
}
