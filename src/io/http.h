/*
 * http: the HTTP server adapter (libmicrohttpd) under the hub's API and the
 * metrics listeners. It owns the listening socket, the connections, the
 * request bodies (each bounded by a limit its caller names per route) and
 * the event streams (server-sent events, each with a bounded queue).
 *
 * It runs in its caller's thread and event loop (libmicrohttpd's external
 * mode over one epoll descriptor): the caller polls http_fd() with at most
 * http_timeout_ms() and calls http_run(), which calls the handler for each
 * complete request. Nothing here blocks, and nothing runs on another thread.
 *
 * A handler answers at once (http_respond), later (http_defer, then
 * http_respond from the same thread: the connection waits, suspended), or
 * turns the request into an event stream (http_stream). A request pointer
 * is valid from the handler's call until it is answered.
 */
#ifndef OUTPOST_HTTP_H
#define OUTPOST_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_server http_server;
typedef struct http_req http_req;

typedef struct http_config {
    const char *listen;    /* "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" (every IPv4 address) */
    const char *cert_path; /* PEM certificate and key: TLS when both are set */
    const char *key_path;
    int max_connections;       /* open connections at most (default 64) */
    int max_streams;           /* event streams at most (default 32) */
    size_t stream_queue_bytes; /* what one stream may have waiting (default 256 KiB) */
    int timeout_s;             /* an idle connection is closed after (default 30) */
} http_config;

/* A complete request (head and body within its limit). */
typedef void (*http_handler_fn)(void *ctx, http_req *req);
/* The largest body the request may carry, decided from its head (method and path). */
typedef size_t (*http_limit_fn)(void *ctx, const char *method, const char *path);

/*
 * Listens as config says. limit_fn NULL: no bodies. OP_OK, OP_EINVAL (bad
 * address), OP_EIO (certificate or key unreadable, cannot listen), OP_ENOMEM;
 * the reason in err.
 */
int http_start(const http_config *config, http_handler_fn handler, http_limit_fn limit_fn,
               void *ctx, http_server **out, char *err, size_t err_len);
/* Requests still deferred are answered 503; streams closed; everything freed. NULL is fine. */
void http_stop(http_server *s);
/* The descriptor to poll for input (readable: call http_run). */
int http_fd(const http_server *s);
/* How long the caller may wait before http_run is due, at most cap_ms. */
int http_timeout_ms(http_server *s, int cap_ms);
/* Accepts, reads, calls handlers, writes: whatever is ready, without blocking. */
void http_run(http_server *s);
/* The port it listens on (the one picked when the configuration said 0). */
int http_port(const http_server *s);

/* ---- a request ---- */

const char *http_method(const http_req *r);
/* The path without its query string, as sent (not decoded). */
const char *http_path(const http_req *r);
/* A query argument (decoded), or NULL. */
const char *http_query(const http_req *r, const char *key);
/* A header (case-insensitive name), or NULL. */
const char *http_header(const http_req *r, const char *name);
/* A cookie's value, or NULL. */
const char *http_cookie(const http_req *r, const char *name);
/* The body (NUL-terminated; "" when none) and its length. */
const char *http_body(const http_req *r, size_t *len);

/*
 * Answers with status, content type and body (copied); headers: NULL or
 * name, value, ..., NULL. Works inside the handler and later, for a
 * deferred request. The request is no longer the caller's after this.
 * OP_OK, OP_ENOMEM (the connection is closed instead).
 */
int http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len,
                 const char *const *headers);
/* The answer comes later (http_respond): the connection waits, reading nothing. */
void http_defer(http_req *r);
/*
 * Turns the request into an event stream (status 200, text/event-stream):
 * it gets what http_broadcast sends from now on. OP_OK, OP_EFULL (max_streams
 * open: the caller answers), OP_ENOMEM.
 */
int http_stream(http_req *r, const char *const *headers);
/*
 * Queues text on every open stream. A stream whose queue would pass
 * stream_queue_bytes is closed (its client reads too slowly): counted, never
 * waited for.
 */
void http_broadcast(http_server *s, const char *text, size_t len);

/* What the server counted. */
typedef struct http_stats {
    uint64_t requests;        /* answered (any status) */
    uint64_t refused_too_big; /* bodies over their limit (413) */
    uint64_t streams_open;
    uint64_t streams_dropped; /* slow clients whose queue filled */
} http_stats;
void http_get_stats(const http_server *s, http_stats *out);

#endif
