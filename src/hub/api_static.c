/*
 * api_static: what the API serves from the binary itself: the OpenAPI
 * document (docs/openapi.json) and the web console (web/), embedded at
 * build time by scripts/embed_files.py into a generated C file. Nothing is
 * read from disk at run time, so no path a client sends can reach a file:
 * a path is looked up by exact name in the table.
 */
#include "hub/api_int.h"

#include <string.h>

typedef struct hub__embedded_file {
    const char *path, *type;
    const unsigned char *data;
    size_t len;
} hub__embedded_file;

/* the generated file's tables */
extern const unsigned char hub__openapi_json[];
extern const size_t hub__openapi_json_len;
extern const hub__embedded_file hub__console_files[];
extern const size_t hub__n_console_files;

const char *hub__api_openapi(size_t *len)
{
    *len = hub__openapi_json_len;
    return (const char *)hub__openapi_json;
}

const unsigned char *hub__api_console_file(const char *path, size_t *len, const char **type)
{
    const char *name;
    if (!path) return NULL;
    if (strcmp(path, "/") == 0 || strcmp(path, "/console") == 0 || strcmp(path, "/console/") == 0)
        name = "index.html";
    else if (strncmp(path, "/console/", 9) == 0)
        name = path + 9;
    else
        return NULL;
    for (size_t i = 0; i < hub__n_console_files; i++) {
        if (strcmp(hub__console_files[i].path, name) != 0) continue;
        *len = hub__console_files[i].len;
        *type = hub__console_files[i].type;
        return hub__console_files[i].data;
    }
    return NULL;
}
