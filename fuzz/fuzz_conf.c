/*
 * libFuzzer target for conf_parse: configuration files are edited by hand
 * and may be anything. The input is copied into a NUL-terminated buffer
 * (conf_parse takes a C string); accepted configurations are queried
 * through every getter and freed.
 */
#include "base/conf.h"
#include "base/err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const allowed[] = {"hub_id",   "broker",    "port",  "headroom_watts",
                                      "data_dir", "log_level", "class", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    conf *c = NULL;
    char err[256];
    err[0] = '\0';
    int rc = conf_parse(text, "fuzz.conf", allowed, &c, err, sizeof err);
    if (rc != OP_OK) {
        if (c != NULL || strncmp(err, "fuzz.conf", 9) != 0) abort();
        free(text);
        return 0;
    }
    for (const char *const *k = allowed; *k; k++) {
        const char *v = conf_str(c, *k, NULL);
        if (v && strchr(v, '\n')) abort(); /* values never span lines */
        int64_t i;
        double d;
        if (conf_int(c, *k, 1, -1000, 1000, &i, err, sizeof err) == OP_OK &&
            (i < -1000 || i > 1000))
            abort();
        if (conf_double(c, *k, 0.5, 0, 1e6, &d, err, sizeof err) == OP_OK && (d < 0 || d > 1e6))
            abort();
    }
    conf_free(c);
    free(text);
    return 0;
}
