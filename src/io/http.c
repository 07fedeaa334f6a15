/*
 * http: libmicrohttpd in external mode over epoll, driven by its caller's
 * loop. See http.h.
 */
#include "io/http.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Headers and the connection's own buffers: beyond this a request is refused (431/413). */
#define HTTP_CONNECTION_MEMORY (32 * 1024)
#define HTTP_MAX_CERT_BYTES (256 * 1024)

typedef struct stream_q {
    struct stream_q *next, *prev;
    http_server *server;
    struct MHD_Connection *conn;
    char *buf;
    size_t len, off;
    int suspended;
    int dropped; /* its queue filled, or the server stops: the reader ends it */
} stream_q;

struct http_req {
    http_server *server;
    struct MHD_Connection *conn;
    const char *method, *url;
    char *body;
    size_t body_len, body_cap, limit;
    int too_big;
    int handled;
    int deferred;  /* waiting, suspended, for http_respond */
    int completed; /* MHD is done with the connection: free on answer */
    struct MHD_Response *response;
    int status;
    struct http_req *next_deferred, *prev_deferred;
};

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler_fn handler;
    http_limit_fn limit_fn;
    void *ctx;
    int epoll_fd;
    int port;
    int max_streams;
    size_t stream_queue_bytes;
    stream_q *streams;
    int n_streams;
    http_req *deferred;
    http_stats stats;
    char *cert, *key;
};

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    log_debug("http", "%s", line);
}

/* ---------- answering ---------- */

static struct MHD_Response *make_response(const char *content_type, const char *body, size_t len,
                                          const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return NULL;
    if (content_type) MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    return resp;
}

static void unlink_deferred(http_req *r)
{
    http_server *s = r->server;
    if (r->prev_deferred)
        r->prev_deferred->next_deferred = r->next_deferred;
    else if (s->deferred == r)
        s->deferred = r->next_deferred;
    if (r->next_deferred) r->next_deferred->prev_deferred = r->prev_deferred;
    r->next_deferred = r->prev_deferred = NULL;
}

static enum MHD_Result queue_stored(http_req *r)
{
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, r->response);
    MHD_destroy_response(r->response);
    r->response = NULL;
    r->server->stats.requests++;
    return ok;
}

int http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len,
                 const char *const *headers)
{
    struct MHD_Response *resp = make_response(content_type, body ? body : "", len, headers);
    if (r->response) MHD_destroy_response(r->response);
    r->response = resp;
    r->status = status;
    if (r->deferred) {
        r->deferred = 0;
        unlink_deferred(r);
        /* its handler is called again on resume, and queues the stored answer */
        MHD_resume_connection(r->conn);
    }
    return resp ? OP_OK : OP_ENOMEM;
}

void http_defer(http_req *r)
{
    r->deferred = 1;
}

static enum MHD_Result refuse_too_big(http_req *r)
{
    static const char body[] =
        "{\"error\": \"request body over its limit\", \"code\": \"too_large\"}";
    r->server->stats.refused_too_big++;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->too_big = 1;
    static const char *const close_hdr[] = {"Connection", "close", NULL};
    r->response = make_response("application/json", body, sizeof body - 1, close_hdr);
    r->status = 413;
    if (!r->response) return MHD_NO;
    return queue_stored(r);
}

/* ---------- event streams ---------- */

static void stream_wake(stream_q *q)
{
    if (!q->suspended) return;
    q->suspended = 0;
    MHD_resume_connection(q->conn);
}

/* What a stream has queued, as libmicrohttpd asks for it; suspended while empty. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_q *q = cls;
    if (q->dropped) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (q->off < q->len) {
        size_t n = q->len - q->off < max ? q->len - q->off : max;
        memcpy(buf, q->buf + q->off, n);
        q->off += n;
        if (q->off == q->len) q->off = q->len = 0;
        return (ssize_t)n;
    }
    q->suspended = 1;
    MHD_suspend_connection(q->conn);
    return 0;
}

static void stream_free(void *cls)
{
    stream_q *q = cls;
    http_server *s = q->server;
    if (q->prev)
        q->prev->next = q->next;
    else if (s->streams == q)
        s->streams = q->next;
    if (q->next) q->next->prev = q->prev;
    s->n_streams--;
    free(q->buf);
    free(q);
}

int http_stream(http_req *r, const char *const *headers)
{
    http_server *s = r->server;
    if (s->n_streams >= s->max_streams) return OP_EFULL;
    stream_q *q = calloc(1, sizeof *q);
    if (!q || !(q->buf = malloc(s->stream_queue_bytes))) {
        free(q);
        return OP_ENOMEM;
    }
    q->server = s;
    q->conn = r->conn;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, q, stream_free);
    if (!resp) {
        free(q->buf);
        free(q);
        return OP_ENOMEM;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    q->next = s->streams;
    if (s->streams) s->streams->prev = q;
    s->streams = q;
    s->n_streams++;
    s->stats.streams_open++;
    if (r->response) MHD_destroy_response(r->response);
    r->response = resp;
    r->status = 200;
    return OP_OK;
}

void http_broadcast(http_server *s, const char *text, size_t len)
{
    for (stream_q *q = s ? s->streams : NULL; q; q = q->next) {
        if (q->dropped) continue;
        if (q->off) {
            memmove(q->buf, q->buf + q->off, q->len - q->off);
            q->len -= q->off;
            q->off = 0;
        }
        if (q->len + len > s->stream_queue_bytes) {
            q->dropped = 1;
            s->stats.streams_dropped++;
            log_warn("http",
                     "event stream dropped: its client reads too slowly (%zu bytes "
                     "waiting)",
                     q->len);
        } else {
            memcpy(q->buf + q->len, text, len);
            q->len += len;
        }
        stream_wake(q);
    }
}

/* ---------- requests ---------- */

static enum MHD_Result first_call(http_server *s, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
    http_req *r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->server = s;
    r->conn = conn;
    r->method = method;
    r->url = url;
    r->limit = s->limit_fn ? s->limit_fn(s->ctx, method, url) : 0;
    *con_cls = r;
    /* a declared length over the limit is refused before a byte of the body is read */
    const char *declared = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (declared && strtoull(declared, NULL, 10) > r->limit) return refuse_too_big(r);
    return MHD_YES;
}

/* A piece of the body: kept while within the limit, else the request is refused at once. */
static enum MHD_Result body_piece(http_req *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (r->too_big) return MHD_YES;
    if (r->body_len + n > r->limit) return refuse_too_big(r);
    if (r->body_len + n + 1 > r->body_cap) {
        /* doubling, from the declared length when there is one: few copies of a big body */
        size_t cap = r->body_cap ? r->body_cap * 2 : 4096;
        const char *declared =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
        if (!r->body_cap && declared) cap = strtoull(declared, NULL, 10) + 1;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > r->limit + 1) cap = r->limit + 1;
        char *grown = realloc(r->body, cap);
        if (!grown) return MHD_NO;
        r->body = grown;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    http_server *s = cls;
    http_req *r = *con_cls;
    if (!r) return first_call(s, conn, url, method, con_cls);
    if (*upload_size) return body_piece(r, upload_data, upload_size);
    if (r->response) return queue_stored(r);
    if (r->too_big || r->handled) return MHD_YES;
    r->handled = 1;
    s->handler(s->ctx, r);
    if (r->response) return queue_stored(r);
    if (r->deferred) {
        r->next_deferred = s->deferred;
        if (s->deferred) s->deferred->prev_deferred = r;
        s->deferred = r;
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    return MHD_NO; /* no answer: the connection is closed */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_req *r = *con_cls;
    if (!r) return;
    if (r->deferred) unlink_deferred(r);
    if (r->response) MHD_destroy_response(r->response);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---------- the server ---------- */

/* "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" into a socket address. OP_EINVAL. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, int *v6)
{
    char host[64];
    const char *colon = NULL;
    if (!text) return OP_EINVAL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return OP_EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = 0;
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host) return OP_EINVAL;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || port < 0 || port > 65535) return OP_EINVAL;
    memset(ss, 0, sizeof *ss);
    *v6 = text[0] == '[';
    if (*v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? OP_OK : OP_EINVAL;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (!host[0]) return OP_OK; /* INADDR_ANY */
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? OP_OK : OP_EINVAL;
}

static int read_tls(http_server *s, const http_config *c, char *err, size_t err_len)
{
    if (!c->cert_path && !c->key_path) return OP_OK;
    if (!c->cert_path || !c->key_path) {
        snprintf(err, err_len, "TLS needs both a certificate and a key");
        return OP_EINVAL;
    }
    if (os_read_file(c->cert_path, HTTP_MAX_CERT_BYTES, &s->cert, NULL) != OP_OK ||
        os_read_file(c->key_path, HTTP_MAX_CERT_BYTES, &s->key, NULL) != OP_OK) {
        snprintf(err, err_len, "cannot read the TLS certificate %s or key %s", c->cert_path,
                 c->key_path);
        return OP_EIO;
    }
    return OP_OK;
}

static int start_daemon(http_server *s, const http_config *c, const struct sockaddr_storage *ss,
                        int v6)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (v6) flags |= MHD_USE_IPv6;
    if (s->cert) flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cert},
        {s->cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->key},
        {MHD_OPTION_END, 0, NULL}};
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(c->max_connections > 0 ? c->max_connections : 64),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(c->timeout_s > 0 ? c->timeout_s : 30),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!s->daemon) return OP_EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    s->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->epoll_fd >= 0 ? OP_OK : OP_EIO;
}

int http_start(const http_config *config, http_handler_fn handler, http_limit_fn limit_fn,
               void *ctx, http_server **out, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    int v6 = 0;
    *out = NULL;
    if (parse_listen(config->listen, &ss, &v6) != OP_OK) {
        snprintf(err, err_len, "listen address '%.80s' must be ADDR:PORT, [ADDR6]:PORT or :PORT",
                 config->listen ? config->listen : "");
        return OP_EINVAL;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s) return OP_ENOMEM;
    s->handler = handler;
    s->limit_fn = limit_fn;
    s->ctx = ctx;
    s->max_streams = config->max_streams > 0 ? config->max_streams : 32;
    s->stream_queue_bytes =
        config->stream_queue_bytes ? config->stream_queue_bytes : (size_t)256 * 1024;
    int rc = read_tls(s, config, err, err_len);
    if (rc == OP_OK && (rc = start_daemon(s, config, &ss, v6)) != OP_OK)
        snprintf(err, err_len, "cannot listen on %s (in use, or a bad certificate?)",
                 config->listen);
    if (rc != OP_OK) {
        http_stop(s);
        return rc;
    }
    *out = s;
    return OP_OK;
}

void http_stop(http_server *s)
{
    if (!s) return;
    static const char body[] = "{\"error\": \"the hub is stopping\", \"code\": \"unavailable\"}";
    while (s->deferred)
        http_respond(s->deferred, 503, "application/json", body, sizeof body - 1, NULL);
    for (stream_q *q = s->streams; q; q = q->next) {
        q->dropped = 1;
        stream_wake(q);
    }
    if (s->daemon) {
        MHD_run(s->daemon); /* resumed connections leave the suspended list */
        MHD_stop_daemon(s->daemon);
    }
    if (s->key) {
        memset(s->key, 0, strlen(s->key));
        free(s->key);
    }
    free(s->cert);
    free(s);
}

int http_fd(const http_server *s)
{
    return s ? s->epoll_fd : -1;
}

int http_timeout_ms(http_server *s, int cap_ms)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (!s || MHD_get_timeout(s->daemon, &t) != MHD_YES) return cap_ms;
    return t < (MHD_UNSIGNED_LONG_LONG)cap_ms ? (int)t : cap_ms;
}

void http_run(http_server *s)
{
    if (s) MHD_run(s->daemon);
}

int http_port(const http_server *s)
{
    return s ? s->port : 0;
}

void http_get_stats(const http_server *s, http_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s) return;
    *out = s->stats;
    out->streams_open = (uint64_t)s->n_streams;
}

/* ---------- request accessors ---------- */

const char *http_method(const http_req *r)
{
    return r->method;
}

const char *http_path(const http_req *r)
{
    return r->url;
}

const char *http_query(const http_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_cookie(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

const char *http_body(const http_req *r, size_t *len)
{
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}
