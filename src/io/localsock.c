#include "io/localsock.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/os.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills a socket address for path. OP_ETOOBIG when it does not fit. */
static int make_addr(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof addr->sun_path) return OP_ETOOBIG;
    memcpy(addr->sun_path, path, len + 1);
    return OP_OK;
}

/* Milliseconds left until deadline (mono ms) for poll(): -1 for no deadline (0), 0 when past. */
static int left_ms(int64_t deadline)
{
    if (deadline == 0) return -1;
    int64_t left = deadline - os_mono_ms();
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits until fd is ready for events or deadline passes: OP_OK, OP_ETIMEOUT or OP_EIO. */
static int wait_ready(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        int left = left_ms(deadline);
        if (left == 0) return OP_ETIMEOUT;
        int n = poll(&pfd, 1, left);
        if (n > 0) return OP_OK;
        if (n == 0) return OP_ETIMEOUT;
        if (errno != EINTR) return OP_EIO;
    }
}

int localsock_path(const char *dir_or_socket, char *out, size_t out_len)
{
    struct stat st;
    struct sockaddr_un addr;
    int rc;
    if (stat(dir_or_socket, &st) == 0 && S_ISDIR(st.st_mode))
        rc = util_fmt(out, out_len, "%s/%s", dir_or_socket, LOCALSOCK_FILE);
    else
        rc = util_fmt(out, out_len, "%s", dir_or_socket);
    if (rc != OP_OK) return OP_ETOOBIG;
    return make_addr(out, &addr);
}

int localsock_listen(const char *path, int *fd_out)
{
    struct sockaddr_un addr;
    if (make_addr(path, &addr) != OP_OK) return OP_ETOOBIG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return OP_ESYS;
    unlink(path); /* a stale socket of an earlier run */
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc != 0 || listen(fd, 8) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return OP_ESYS;
    }
    *fd_out = fd;
    return OP_OK;
}

void localsock_unlisten(int fd, const char *path)
{
    if (fd < 0) return;
    close(fd);
    unlink(path);
}

int localsock_accept(int listen_fd)
{
    return listen_fd < 0 ? -1 : accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

int localsock_peer_of(int conn, localsock_peer *out)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    memset(out, 0, sizeof *out);
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return OP_ESYS;
    out->uid = cred.uid;
    out->gid = cred.gid;
    out->pid = cred.pid;
    len = sizeof out->groups;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, out->groups, &len) == 0)
        out->n_groups = (int)(len / sizeof out->groups[0]);
    else
        out->n_groups = -1;
    return OP_OK;
}

int localsock_peer_in_group(const localsock_peer *peer, gid_t gid)
{
    if (peer->gid == gid) return 1;
    for (int i = 0; i < peer->n_groups; i++)
        if (peer->groups[i] == gid) return 1;
    return 0;
}

/*
 * Reads into a growing buffer until a newline, the end of the client's side
 * or max_bytes. Doubling from 4 KiB keeps small requests (one spec) cheap
 * while a batch of specs may use the whole bound.
 */
int localsock_read_request(int fd, int timeout_ms, size_t max_bytes, cJSON **out)
{
    size_t cap = max_bytes < 4096 ? max_bytes : 4096, len = 0;
    char *buf = cap >= 2 ? malloc(cap) : NULL;
    int64_t deadline = timeout_ms > 0 ? os_mono_ms() + timeout_ms : 0;
    int rc = buf ? OP_OK : OP_ENOMEM;
    while (rc == OP_OK) {
        if ((rc = wait_ready(fd, POLLIN, deadline)) != OP_OK) break;
        if (len + 1 == cap) {
            if (cap >= max_bytes) {
                rc = OP_ETOOBIG;
                break;
            }
            size_t grown_cap = cap * 2 < max_bytes ? cap * 2 : max_bytes;
            char *grown = realloc(buf, grown_cap);
            if (!grown) {
                rc = OP_ENOMEM;
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* the client's side ended: what came is the request */
        len += (size_t)n;
        if (memchr(buf + len - (size_t)n, '\n', (size_t)n)) break;
    }
    if (rc == OP_OK) {
        buf[len] = '\0';
        /* a NUL would cut a string short in the tree the site sees: refused whole */
        *out = jsonx_check_nul(buf, len, NULL) == OP_OK ? cJSON_ParseWithLength(buf, len) : NULL;
        if (!*out) rc = OP_EINVAL;
    }
    free(buf);
    return rc;
}

/* Writes all of data (non-blocking or not) without SIGPIPE, within deadline. */
static int send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_ready(fd, POLLOUT, deadline);
            if (rc != OP_OK) return rc;
            continue;
        }
        if (n <= 0) return OP_EIO;
        data += n;
        len -= (size_t)n;
    }
    return OP_OK;
}

/* Prints json as one line: text plus a newline (in place of the NUL, which is not sent). */
static char *print_line(const cJSON *json, size_t *len)
{
    char *text = cJSON_PrintUnformatted(json);
    if (!text) return NULL;
    *len = strlen(text);
    text[*len] = '\n';
    (*len)++;
    return text;
}

int localsock_reply(int fd, const cJSON *reply)
{
    size_t len = 0;
    char *text = reply ? print_line(reply, &len) : NULL;
    if (!text) return OP_ENOMEM;
    int rc = send_all(fd, text, len, 0);
    free(text);
    return rc;
}

/* Connects to the socket at path (blocking), then switches to non-blocking. -1 with errno. */
static int connect_to(const char *path)
{
    struct sockaddr_un addr;
    if (make_addr(path, &addr) != OP_OK) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Reads the reply until the server closes (or resets after answering), within deadline. */
static int read_reply(int fd, int64_t deadline, char **out)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = buf ? OP_OK : OP_ENOMEM;
    while (rc == OP_OK) {
        if (len + 1 == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                rc = OP_ENOMEM;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_ready(fd, POLLIN, deadline);
            continue;
        }
        if (n <= 0) break;
        len += (size_t)n;
        if (len > LOCALSOCK_MAX_REPLY_BYTES) rc = OP_ETOOBIG;
    }
    if (rc == OP_OK) {
        buf[len] = '\0';
        *out = buf;
        return OP_OK;
    }
    free(buf);
    return rc;
}

int localsock_call(const char *path, const cJSON *req, int timeout_ms, cJSON **reply_out, char *err,
                   size_t err_len)
{
    char sock_path[PATH_MAX], *text = NULL;
    size_t len = 0;
    *reply_out = NULL;
    if (localsock_path(path, sock_path, sizeof sock_path) != OP_OK) {
        snprintf(err, err_len, "cannot reach the site at %.200s: path too long for a socket", path);
        return OP_ETOOBIG;
    }
    if (!(text = print_line(req, &len))) {
        snprintf(err, err_len, "out of memory");
        return OP_ENOMEM;
    }
    int fd = connect_to(sock_path);
    if (fd < 0) {
        snprintf(err, err_len,
                 "cannot reach the site at %s: %s (is the agent running, and may you use its"
                 " socket?)",
                 sock_path, strerror(errno));
        free(text);
        return OP_EIO;
    }
    int64_t deadline = timeout_ms > 0 ? os_mono_ms() + timeout_ms : 0;
    /* A refused request may be answered before it was all read: read the answer anyway. */
    int rc = send_all(fd, text, len, deadline);
    free(text);
    char *answer = NULL;
    if (rc != OP_ETIMEOUT) rc = read_reply(fd, deadline, &answer);
    close(fd);
    if (rc == OP_OK && !(*reply_out = cJSON_Parse(answer))) rc = OP_EINVAL;
    free(answer);
    if (rc == OP_ETIMEOUT)
        snprintf(err, err_len, "no answer from the site at %s within %d ms", sock_path, timeout_ms);
    else if (rc == OP_ETOOBIG)
        snprintf(err, err_len, "the answer of the site at %s is over %d bytes", sock_path,
                 LOCALSOCK_MAX_REPLY_BYTES);
    else if (rc != OP_OK)
        snprintf(err, err_len, "no answer from the site at %s", sock_path);
    return rc;
}
