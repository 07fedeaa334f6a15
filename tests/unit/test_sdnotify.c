/*
 * Unit tests for sdnotify, the service manager's notification protocol:
 * a real AF_UNIX datagram socket bound by the test (a path, and a name in
 * the abstract namespace) receives what a daemon would send; no socket
 * means silence; a malformed NOTIFY_SOCKET is refused; the variables are
 * gone from the environment after init (jobs never inherit them); the
 * watchdog interval is honoured only for this pid and ticks at half of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#include "base/err.h"
#include "io/sdnotify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A datagram socket bound at name ('@' for the abstract namespace), non-blocking. */
static int bind_listener(const char *name)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(name);
    assert_true(len < sizeof addr.sun_path);
    memcpy(addr.sun_path, name, len);
    if (name[0] == '@') addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, addr_len), 0);
    return fd;
}

/* The next datagram into buf ("" when none is waiting). */
static void receive(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

static void clear_env(void)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    sdnotify_reset();
}

static void test_no_socket_is_silence(void **state)
{
    clear_env();
    assert_int_equal(sdnotify_init(), 0);
    assert_int_equal(sdnotify_send("READY=1"), OP_OK);
    assert_int_equal(sdnotify_watchdog_ms(), 0);
    sdnotify_watchdog_tick(123456); /* nothing to do, nothing breaks */
}

static void test_path_socket_receives_and_env_is_cleared(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX], got[4200];
    testkit_path(path, sizeof path, dir, "notify");
    int fd = bind_listener(path);
    clear_env();
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(sdnotify_init(), 1);
    assert_null(getenv("NOTIFY_SOCKET"));
    assert_int_equal(sdnotify_send("READY=1\nSTATUS=up"), OP_OK);
    receive(fd, got, sizeof got);
    assert_string_equal(got, "READY=1\nSTATUS=up");
    assert_int_equal(sdnotify_sendf("STATUS=%d sites", 3), OP_OK);
    receive(fd, got, sizeof got);
    assert_string_equal(got, "STATUS=3 sites");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sdnotify_send(big), OP_ETOOBIG);
    assert_int_equal(sdnotify_sendf("%s", big), OP_ETOOBIG);
    close(fd);
    /* the listener gone: the send fails and says so, nothing else happens */
    unlink(path);
    assert_int_equal(sdnotify_send("STOPPING=1"), OP_ESYS);
    sdnotify_reset();
}

static void test_abstract_socket(void **state)
{
    char name[64], got[256];
    snprintf(name, sizeof name, "@outpost-test-notify-%d", (int)getpid());
    int fd = bind_listener(name);
    clear_env();
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(sdnotify_init(), 1);
    assert_int_equal(sdnotify_send("READY=1"), OP_OK);
    receive(fd, got, sizeof got);
    assert_string_equal(got, "READY=1");
    close(fd);
    sdnotify_reset();
}

static void test_malformed_socket_refused(void **state)
{
    const char *bad[] = {"relative/path", "notify", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv("NOTIFY_SOCKET", bad[i], 1);
        assert_int_equal(sdnotify_init(), OP_EINVAL);
        assert_null(getenv("NOTIFY_SOCKET"));
        assert_int_equal(sdnotify_send("READY=1"), OP_OK); /* off: a no-op */
    }
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    clear_env();
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(sdnotify_init(), OP_EINVAL);
}

static void test_watchdog_for_this_pid_only(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX], got[256], pid[32];
    testkit_path(path, sizeof path, dir, "notify");
    int fd = bind_listener(path);
    clear_env();
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sdnotify_init(), 1);
    assert_int_equal(sdnotify_watchdog_ms(), 0); /* meant for another process */
    assert_null(getenv("WATCHDOG_USEC"));

    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sdnotify_init(), 1);
    assert_int_equal(sdnotify_watchdog_ms(), 200);
    sdnotify_watchdog_tick(1000);
    receive(fd, got, sizeof got);
    assert_string_equal(got, "WATCHDOG=1");
    sdnotify_watchdog_tick(1050); /* under half the interval: nothing */
    receive(fd, got, sizeof got);
    assert_string_equal(got, "");
    sdnotify_watchdog_tick(1100);
    receive(fd, got, sizeof got);
    assert_string_equal(got, "WATCHDOG=1");

    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "junk", 1);
    assert_int_equal(sdnotify_init(), 1);
    assert_int_equal(sdnotify_watchdog_ms(), 0);
    close(fd);
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_socket_is_silence),
        cmocka_unit_test_setup_teardown(test_path_socket_receives_and_env_is_cleared,
                                        testkit_tmpdir_setup, testkit_tmpdir_teardown),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_malformed_socket_refused),
        cmocka_unit_test_setup_teardown(test_watchdog_for_this_pid_only, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
