/*
 * Unit tests of the local socket protocol (src/io/localsock.c): a server and
 * a client in one test process (the server on a thread where both must run
 * at once), the path rule, requests refused for their size or shape, and
 * timeouts on both ends. Every wait is bounded.
 */
#include "io/localsock.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
    char dir[PATH_MAX], path[PATH_MAX];
    int listen_fd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_localsock.XXXXXX");
    if (!mkdtemp(f->dir) || localsock_path(f->dir, f->path, sizeof f->path) != OP_OK ||
        localsock_listen(f->path, &f->listen_fd) != OP_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    localsock_unlisten(f->listen_fd, f->path);
    os_rm_rf(f->dir);
    free(f);
    return 0;
}

/* One server exchange on a thread: accept, read, answer {"ok", "echo"} or {"ok":false}. */
typedef struct server {
    int listen_fd;
    size_t max_bytes;
    const char *reply_text; /* a fixed reply instead of the echo, or NULL */
    int rc;                 /* localsock_read_request's code */
    pthread_t thread;
} server;

static void *serve_one(void *arg)
{
    server *sv = arg;
    int fd = -1;
    int64_t deadline = os_mono_ms() + 5000;
    while ((fd = localsock_accept(sv->listen_fd)) < 0 && os_mono_ms() < deadline)
        usleep(1000);
    if (fd < 0) {
        sv->rc = OP_ETIMEOUT;
        return NULL;
    }
    cJSON *req = NULL;
    sv->rc = localsock_read_request(fd, 2000, sv->max_bytes, &req);
    cJSON *reply = sv->reply_text ? cJSON_Parse(sv->reply_text) : cJSON_CreateObject();
    if (!sv->reply_text) {
        cJSON_AddBoolToObject(reply, "ok", sv->rc == OP_OK);
        if (req)
            cJSON_AddItemToObject(reply, "echo", req);
        else
            cJSON_AddStringToObject(reply, "error", op_strerror(sv->rc));
    } else {
        cJSON_Delete(req);
    }
    localsock_reply(fd, reply);
    cJSON_Delete(reply);
    close(fd);
    return NULL;
}

static void server_start(server *sv, int listen_fd, size_t max_bytes, const char *reply_text)
{
    memset(sv, 0, sizeof *sv);
    sv->listen_fd = listen_fd;
    sv->max_bytes = max_bytes;
    sv->reply_text = reply_text;
    assert_int_equal(pthread_create(&sv->thread, NULL, serve_one, sv), 0);
}

static void server_join(server *sv)
{
    assert_int_equal(pthread_join(sv->thread, NULL), 0);
}

/* A raw client: connected, sends bytes (may be none), optionally ends its side. */
static int raw_client(const char *path, const char *bytes, int end_side)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    if (bytes) assert_int_equal(os_write_all(fd, bytes, strlen(bytes)), OP_OK);
    if (end_side) shutdown(fd, SHUT_WR);
    return fd;
}

static void test_path_rule(void **state)
{
    fixture *f = *state;
    char out[PATH_MAX], want[PATH_MAX], longer[200];
    assert_int_equal(util_fmt(want, sizeof want, "%s/local.sock", f->dir), OP_OK);
    assert_string_equal(f->path, want); /* a data dir: its local.sock */
    assert_int_equal(localsock_path("/run/site/x.sock", out, sizeof out), OP_OK);
    assert_string_equal(out, "/run/site/x.sock"); /* anything else: as given */
    memset(longer, 'a', sizeof longer - 1);
    longer[0] = '/';
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(localsock_path(longer, out, sizeof out), OP_ETOOBIG);
    assert_int_equal(localsock_path("/tmp", out, 8), OP_ETOOBIG);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
}

static void test_call_round_trip(void **state)
{
    fixture *f = *state;
    server sv;
    server_start(&sv, f->listen_fd, LOCALSOCK_MAX_REQUEST_BYTES, NULL);
    cJSON *req = cJSON_Parse("{\"op\":\"leave\",\"grace_s\":5}"), *reply = NULL;
    char err[300] = "";
    /* the data dir, resolved to its socket, as `outpost leave DIR` gives it */
    assert_int_equal(localsock_call(f->dir, req, 5000, &reply, err, sizeof err), OP_OK);
    server_join(&sv);
    assert_int_equal(sv.rc, OP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok")));
    assert_true(cJSON_Compare(cJSON_GetObjectItem(reply, "echo"), req, 1));
    cJSON_Delete(reply);
    cJSON_Delete(req);
}

static void test_large_request_within_bound(void **state)
{
    fixture *f = *state;
    server sv;
    server_start(&sv, f->listen_fd, LOCALSOCK_MAX_REQUEST_BYTES, "{\"ok\":true}");
    size_t n = 3 * 1024 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    cJSON_AddStringToObject(req, "pad", big);
    free(big);
    char err[300] = "";
    assert_int_equal(localsock_call(f->path, req, 10000, &reply, err, sizeof err), OP_OK);
    server_join(&sv);
    assert_int_equal(sv.rc, OP_OK);
    cJSON_Delete(reply);
    cJSON_Delete(req);
}

static void test_too_large_request_refused(void **state)
{
    fixture *f = *state;
    server sv;
    server_start(&sv, f->listen_fd, LOCALSOCK_MAX_REQUEST_BYTES, NULL);
    size_t n = LOCALSOCK_MAX_REQUEST_BYTES + 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    cJSON_AddStringToObject(req, "pad", big);
    free(big);
    char err[300] = "";
    int rc = localsock_call(f->path, req, 10000, &reply, err, sizeof err);
    server_join(&sv);
    assert_int_equal(sv.rc, OP_ETOOBIG);
    /* The refusal is read even though the request was not all taken; never a hang. */
    if (rc == OP_OK)
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(reply, "ok")));
    else
        assert_non_null(strstr(err, "no answer from the site"));
    cJSON_Delete(reply);
    cJSON_Delete(req);
}

static void test_small_bound_refused_without_a_newline(void **state)
{
    fixture *f = *state;
    char line[600];
    memset(line, '1', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    int client = raw_client(f->path, line, 0);
    int fd = localsock_accept(f->listen_fd);
    assert_true(fd >= 0);
    cJSON *req = NULL;
    assert_int_equal(localsock_read_request(fd, 2000, 512, &req), OP_ETOOBIG);
    assert_null(req);
    close(fd);
    close(client);
}

static void test_malformed_request_refused(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"not json\n", "{\"spec\": \n", "", "\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int client = raw_client(f->path, bad[i], 1);
        int fd = localsock_accept(f->listen_fd);
        assert_true(fd >= 0);
        cJSON *req = NULL;
        assert_int_equal(localsock_read_request(fd, 2000, LOCALSOCK_MAX_REQUEST_BYTES, &req),
                         OP_EINVAL);
        assert_null(req);
        close(fd);
        close(client);
    }
}

static void test_request_ends_at_newline_or_end(void **state)
{
    fixture *f = *state;
    int client = raw_client(f->path, "{\"op\":\"power\"}\n", 0); /* stays open */
    int fd = localsock_accept(f->listen_fd);
    cJSON *req = NULL;
    assert_int_equal(localsock_read_request(fd, 2000, LOCALSOCK_MAX_REQUEST_BYTES, &req), OP_OK);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(req, "op")), "power");
    cJSON_Delete(req);
    close(fd);
    close(client);
    client = raw_client(f->path, "{\"op\":\"leave\"}", 1); /* no newline, side ended */
    fd = localsock_accept(f->listen_fd);
    assert_int_equal(localsock_read_request(fd, 2000, LOCALSOCK_MAX_REQUEST_BYTES, &req), OP_OK);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(req, "op")), "leave");
    cJSON_Delete(req);
    close(fd);
    close(client);
}

static void test_server_times_out_on_a_silent_client(void **state)
{
    fixture *f = *state;
    int client = raw_client(f->path, "{\"op\":", 0); /* half a request, then nothing */
    int fd = localsock_accept(f->listen_fd);
    assert_true(fd >= 0);
    cJSON *req = NULL;
    int64_t t0 = os_mono_ms();
    assert_int_equal(localsock_read_request(fd, 200, LOCALSOCK_MAX_REQUEST_BYTES, &req),
                     OP_ETIMEOUT);
    int64_t took = os_mono_ms() - t0;
    assert_true(took >= 150 && took < 2000);
    close(fd);
    close(client);
}

static void test_client_times_out_on_a_silent_server(void **state)
{
    fixture *f = *state;
    cJSON *req = cJSON_Parse("{\"op\":\"power\"}"), *reply = NULL;
    char err[300] = "";
    int64_t t0 = os_mono_ms();
    /* listening but never accepting: the connection waits in the backlog */
    assert_int_equal(localsock_call(f->path, req, 200, &reply, err, sizeof err), OP_ETIMEOUT);
    int64_t took = os_mono_ms() - t0;
    assert_true(took >= 150 && took < 2000);
    assert_null(reply);
    assert_non_null(strstr(err, "no answer from the site at"));
    cJSON_Delete(req);
}

static void test_client_unreachable(void **state)
{
    fixture *f = *state;
    char missing[PATH_MAX], err[400] = "";
    assert_int_equal(util_fmt(missing, sizeof missing, "%s/none.sock", f->dir), OP_OK);
    cJSON *req = cJSON_Parse("{}"), *reply = NULL;
    assert_int_equal(localsock_call(missing, req, 200, &reply, err, sizeof err), OP_EIO);
    assert_non_null(strstr(err, "cannot reach the site at"));
    assert_non_null(strstr(err, "is the agent running"));
    cJSON_Delete(req);
}

static void test_reply_bounds(void **state)
{
    fixture *f = *state;
    server sv;
    server_start(&sv, f->listen_fd, LOCALSOCK_MAX_REQUEST_BYTES, "[1, 2");
    cJSON *req = cJSON_Parse("{}"), *reply = NULL;
    char err[300] = "";
    /* "[1, 2" does not parse, so the server sends nothing: no answer */
    assert_int_equal(localsock_call(f->path, req, 5000, &reply, err, sizeof err), OP_EINVAL);
    server_join(&sv);
    assert_non_null(strstr(err, "no answer from the site at"));
    size_t n = LOCALSOCK_MAX_REPLY_BYTES + 10;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "{\"pad\":\"", 8);
    memset(big + 8, 'x', n);
    memcpy(big + 8 + n, "\"}", 3);
    server_start(&sv, f->listen_fd, LOCALSOCK_MAX_REQUEST_BYTES, big);
    assert_int_equal(localsock_call(f->path, req, 5000, &reply, err, sizeof err), OP_ETOOBIG);
    server_join(&sv);
    assert_null(reply);
    free(big);
    cJSON_Delete(req);
}

static void test_unlisten_removes_the_socket(void **state)
{
    fixture *f = *state;
    struct stat st;
    localsock_unlisten(f->listen_fd, f->path);
    f->listen_fd = -1;
    assert_int_not_equal(stat(f->path, &st), 0);
    localsock_unlisten(-1, f->path); /* nothing to do */
}

/* The kernel's word on the peer: this very process, its groups, and a group it is not in. */
static void test_peer_credentials(void **state)
{
    (void)state;
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    localsock_peer peer;
    assert_int_equal(localsock_peer_of(pair[0], &peer), OP_OK);
    assert_int_equal(peer.uid, geteuid());
    assert_int_equal(peer.gid, getegid());
    assert_int_equal(peer.pid, getpid());
    assert_true(localsock_peer_in_group(&peer, getegid()));
    peer.gid = 12345;
    peer.n_groups = 1;
    peer.groups[0] = 777;
    assert_true(localsock_peer_in_group(&peer, 777));
    assert_false(localsock_peer_in_group(&peer, 778));
    close(pair[0]);
    close(pair[1]);
    /* not a socket: the error, not a guess */
    assert_int_equal(localsock_peer_of(-1, &peer), OP_ESYS);
}

#define LS_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LS_TEST(test_path_rule),
        LS_TEST(test_call_round_trip),
        LS_TEST(test_large_request_within_bound),
        LS_TEST(test_too_large_request_refused),
        LS_TEST(test_small_bound_refused_without_a_newline),
        LS_TEST(test_malformed_request_refused),
        LS_TEST(test_request_ends_at_newline_or_end),
        LS_TEST(test_server_times_out_on_a_silent_client),
        LS_TEST(test_client_times_out_on_a_silent_server),
        LS_TEST(test_client_unreachable),
        LS_TEST(test_reply_bounds),
        LS_TEST(test_unlisten_removes_the_socket),
        cmocka_unit_test(test_peer_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
