/*
 * libFuzzer target for what the hub's HTTP API parses from a client before
 * any token is checked: the route (method, path and its parameters), the
 * query arguments, the request bodies the routes copy fields from, and the
 * login body. The input is "METHOD\nPATH\nQUERY\nBODY"; the query is split
 * on '&' and '=' here as libmicrohttpd would hand it over (decoded).
 */
#include "hub/api_int.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 16

typedef struct args {
    char *keys[MAX_ARGS], *values[MAX_ARGS];
    int n;
} args;

static const char *arg_of(void *ctx, const char *key)
{
    args *a = ctx;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->keys[i], key) == 0) return a->values[i];
    return NULL;
}

static void split_query(char *query, args *a)
{
    a->n = 0;
    for (char *part = strtok(query, "&"); part && a->n < MAX_ARGS; part = strtok(NULL, "&")) {
        char *eq = strchr(part, '=');
        if (eq) *eq = 0;
        a->keys[a->n] = part;
        a->values[a->n] = eq ? eq + 1 : part + strlen(part);
        a->n++;
    }
}

/* The next line of text (NUL-terminated in place), or NULL at the end. */
static char *next_line(char **at, char *end)
{
    if (*at >= end) return NULL;
    char *line = *at, *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl) return NULL;
    *nl = 0;
    *at = nl + 1;
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *at = text, *end = text + size;
    char *method = next_line(&at, end), *path = next_line(&at, end);
    char *query = next_line(&at, end);
    if (method && path && query) {
        args a;
        split_query(query, &a);
        size_t body_len = (size_t)(end - at);
        hub__api_routed route;
        char err[256], allow[64];
        int status = hub__api_route(method, path, arg_of, &a, at, body_len, &route, err, sizeof err,
                                    allow, sizeof allow);
        if (status == 0) cJSON_Delete(route.req);
        (void)hub__api_body_limit(method, path);
        char token[160];
        (void)hub__api_login_token(at, body_len, token, sizeof token);
    }
    free(text);
    return 0;
}
