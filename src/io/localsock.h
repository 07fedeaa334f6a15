/*
 * localsock: the site agent's local Unix socket, both ends of it.
 *
 * A site agent listens on a Unix stream socket, by default
 * "<data-dir>/local.sock" (mode 0660: the site's user and group may use it),
 * for `outpost submit --local`, `outpost power` and `outpost leave` run on
 * the same machine, whether or not its hub is reachable.
 *
 * Protocol, one exchange per connection: the client sends one JSON object
 * followed by a newline (or ends its side of the connection after it); the
 * server answers with one JSON object followed by a newline and closes.
 * Bounds: a request is smaller than LOCALSOCK_MAX_REQUEST_BYTES and arrives
 * within LOCALSOCK_READ_TIMEOUT_MS of the connection being accepted; a reply
 * is at most LOCALSOCK_MAX_REPLY_BYTES. What the objects say (op, spec,
 * specs, meter, grace_s; ok, error, ids...) is the site's business
 * (src/site/local.c), not this module's.
 *
 * This module owns the socket's path rule, the framing, the size and time
 * bounds, the server's listen/accept/read/reply steps, the peer's
 * credentials (who may use the socket is the site's rule) and the client's
 * call.
 * Single-threaded and blocking on one connection at a time, always within a
 * deadline. Writes never raise SIGPIPE.
 */
#ifndef OUTPOST_LOCALSOCK_H
#define OUTPOST_LOCALSOCK_H

#include <cJSON.h>
#include <stddef.h>
#include <sys/types.h>

#define LOCALSOCK_FILE "local.sock" /* the socket's name in a site's data dir */
#define LOCALSOCK_MAX_REQUEST_BYTES (8 * 1024 * 1024)
#define LOCALSOCK_MAX_REPLY_BYTES (1024 * 1024)
#define LOCALSOCK_READ_TIMEOUT_MS 2000  /* the server's wait for a whole request */
#define LOCALSOCK_CALL_TIMEOUT_MS 60000 /* a sensible client wait for the reply */

/*
 * The socket for dir_or_socket: "<dir>/local.sock" when it names an existing
 * directory (a site's data dir), else the path as given. OP_OK, or
 * OP_ETOOBIG when the result does not fit out or a socket address.
 */
int localsock_path(const char *dir_or_socket, char *out, size_t out_len);

/*
 * Listens on path (non-blocking, close-on-exec, mode 0660), replacing a
 * stale socket file of an earlier run: the caller makes sure no other live
 * process owns it (the site does through its store's lock). On OP_OK *fd_out
 * is the listening socket. Errors: OP_ETOOBIG (path too long for a socket
 * address), OP_ESYS (socket, bind or listen failed; errno is kept).
 */
int localsock_listen(const char *path, int *fd_out);

/* Closes a listening socket and removes its file. Accepts fd < 0 (does nothing). */
void localsock_unlisten(int fd, const char *path);

/*
 * The next waiting client's connection (blocking, close-on-exec), or -1 when
 * none waits. The caller closes it after localsock_reply.
 */
int localsock_accept(int listen_fd);

/* Who is at the other end of an accepted connection, as the kernel saw it at connect time. */
#define LOCALSOCK_MAX_GROUPS 64

typedef struct localsock_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    gid_t groups[LOCALSOCK_MAX_GROUPS]; /* supplementary groups (SO_PEERGROUPS) */
    int n_groups;                       /* -1: not known (older kernel, or more than the bound) */
} localsock_peer;

/* SO_PEERCRED and SO_PEERGROUPS of conn. OP_OK, or OP_ESYS (errno kept). */
int localsock_peer_of(int conn, localsock_peer *out);

/* 1 when the peer's primary or supplementary groups include gid. */
int localsock_peer_in_group(const localsock_peer *peer, gid_t gid);

/*
 * Reads one request from a client: bytes up to a newline or the end of the
 * client's side, within timeout_ms (<= 0: no limit), parsed as JSON. max_bytes bounds it
 * (LOCALSOCK_MAX_REQUEST_BYTES for the site). On OP_OK *out is the request
 * (the caller frees it). Errors: OP_ETIMEOUT (too slow), OP_ETOOBIG (max_bytes
 * reached without an end), OP_EINVAL (not JSON), OP_EIO (poll failed),
 * OP_ENOMEM.
 */
int localsock_read_request(int fd, int timeout_ms, size_t max_bytes, cJSON **out);

/*
 * Sends reply as one line. The caller still owns reply. Errors: OP_ENOMEM,
 * OP_EIO (the client went away).
 */
int localsock_reply(int fd, const cJSON *reply);

/*
 * One request to a site agent on this machine, the client's whole side:
 * connects to the socket (path: the socket or a site's data dir, resolved by
 * localsock_path), sends req as one line, and reads the one JSON reply until
 * the server closes, at most LOCALSOCK_MAX_REPLY_BYTES, within timeout_ms
 * (<= 0: no limit) from the connection. The caller still owns req; on OP_OK
 * *reply_out is the answer (the caller frees it). Otherwise err says what
 * went wrong in words for the user ("cannot reach the site at PATH: ...",
 * "no answer from the site at PATH"). Errors: OP_EIO (cannot reach: no such
 * socket, refused, no permission), OP_ETOOBIG (path too long, reply over its
 * bound), OP_ETIMEOUT, OP_EINVAL (the reply is not JSON, or none came),
 * OP_ENOMEM.
 */
int localsock_call(const char *path, const cJSON *req, int timeout_ms, cJSON **reply_out, char *err,
                   size_t err_len);

#endif
