#include "helpers/testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TESTKIT_MOSQUITTO "/usr/sbin/mosquitto"
#define TESTKIT_BROKER_START_MS 10000
#define TESTKIT_BROKER_STOP_MS 5000

/* ---- temporary directories ---- */

/* Named after the test program so that a directory left behind by a crash says whose it is. */
int testkit_mkdtemp(char *dir, size_t size)
{
    char tmpl[PATH_MAX];
    if (util_fmt(tmpl, sizeof tmpl, "/tmp/outpost-%s-XXXXXX", program_invocation_short_name) !=
            OP_OK ||
        !mkdtemp(tmpl))
        return -1;
    char resolved[PATH_MAX];
    if (!realpath(tmpl, resolved) || util_fmt(dir, size, "%s", resolved) != OP_OK) {
        os_rm_rf(tmpl);
        return -1;
    }
    return 0;
}

int testkit_rmtree(const char *dir)
{
    return os_rm_rf(dir) == OP_OK ? 0 : -1;
}

int testkit_tmpdir_setup(void **state)
{
    char *dir = malloc(PATH_MAX);
    if (!dir || testkit_mkdtemp(dir, PATH_MAX) != 0) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

int testkit_tmpdir_teardown(void **state)
{
    char *dir = *state;
    int rc = testkit_rmtree(dir);
    free(dir);
    return rc;
}

void testkit_path(char *buf, size_t size, const char *dir, const char *name)
{
    assert_int_equal(util_fmt(buf, size, "%s/%s", dir, name), OP_OK);
}

void testkit_write_file(const char *dir, const char *name, const char *text, int mode)
{
    char path[PATH_MAX];
    testkit_path(path, sizeof path, dir, name);
    assert_int_equal(os_write_file_atomic(path, text, strlen(text), mode), OP_OK);
}

/* ---- identities ---- */

void testkit_ident(ident *out, const char *id, uint8_t seed_byte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof seed);
    memset(out, 0, sizeof *out);
    assert_int_equal(util_fmt(out->id, sizeof out->id, "%s", id), OP_OK);
    assert_int_equal(crypto_sign_seed_keypair(out->pk, out->sk, seed), 0);
    util_hex(out->pk, sizeof out->pk, out->pk_hex);
}

/* ---- assertions, data, time ---- */

void testkit__assert_contains(const char *text, const char *needle, const char *file, int line)
{
    if (text && strstr(text, needle)) return;
    print_error("expected \"%s\" in \"%s\"\n", needle, text ? text : "(null)");
    _fail(file, line);
}

void testkit_require_path(const char *path)
{
    if (access(path, R_OK) == 0) return;
    fprintf(stderr, "SKIP: %s missing (the shared data sets are not on this machine)\n", path);
    skip();
}

void testkit_known_defect(const char *what)
{
    const char *run = getenv("OUTPOST_TEST_KNOWN_DEFECTS");
    if (run && !strcmp(run, "1")) return;
    fprintf(stderr, "SKIP: known defect: %s (OUTPOST_TEST_KNOWN_DEFECTS=1 runs it)\n", what);
    skip();
}

void testkit_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- a real mosquitto broker ---- */

int testkit_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* 1 when something accepts a TCP connection on 127.0.0.1:port. */
static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

/*
 * Run as root, mosquitto switches to the user named in "user" (by default
 * "mosquitto", who cannot write the log into our 0700 directory): name
 * whoever runs the test, which changes nothing for anyone else.
 */
static int write_broker_conf(testkit_broker *b)
{
    const struct passwd *pw = getpwuid(geteuid());
    char text[PATH_MAX + 512];
    if (!pw || util_fmt(text, sizeof text,
                        "listener %d 127.0.0.1\n"
                        "allow_anonymous true\n"
                        "persistence false\n"
                        "user %s\n"
                        "log_dest file %s\n"
                        "log_type all\n"
                        "log_timestamp false\n",
                        b->port, pw->pw_name, b->log_path) != OP_OK)
        return -1;
    return os_write_file_atomic(b->conf_path, text, strlen(text), 0600) == OP_OK ? 0 : -1;
}

/*
 * The child's stdout and stderr go to dir/broker.out (mosquitto reports a
 * bad configuration or a busy port there before its log is open), and it
 * gets SIGKILL when the test process dies, so a failed test leaves no
 * broker behind.
 */
static pid_t spawn_broker(const testkit_broker *b)
{
    char out_path[PATH_MAX];
    if (util_fmt(out_path, sizeof out_path, "%s/broker.out", b->dir) != OP_OK) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    execl(TESTKIT_MOSQUITTO, "mosquitto", "-c", b->conf_path, (char *)NULL);
    _exit(127);
}

static void print_broker_output(const testkit_broker *b)
{
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    if (util_fmt(path, sizeof path, "%s/broker.out", b->dir) != OP_OK) return;
    if (os_read_file(path, 1 << 16, &text, &len) == OP_OK) fprintf(stderr, "%s", text);
    free(text);
}

/* Waits for the broker to accept connections; 0, or -1 when it exited or took too long. */
static int wait_listening(testkit_broker *b)
{
    int64_t deadline = os_mono_ms() + TESTKIT_BROKER_START_MS;
    while (os_mono_ms() < deadline) {
        int status;
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            b->pid = 0;
            return -1;
        }
        if (port_open(b->port)) return 0;
        testkit_sleep_ms(10);
    }
    return -1;
}

int testkit_broker_start(testkit_broker *b)
{
    if (b->pid) return -1;
    if (!b->dir[0]) {
        if (testkit_mkdtemp(b->dir, sizeof b->dir) != 0 ||
            util_fmt(b->conf_path, sizeof b->conf_path, "%s/mosquitto.conf", b->dir) != OP_OK ||
            util_fmt(b->log_path, sizeof b->log_path, "%s/broker.log", b->dir) != OP_OK) {
            fprintf(stderr, "testkit: no directory for the broker\n");
            return -1;
        }
    }
    /* A port chosen here may be taken by someone else before mosquitto binds it: try another. */
    int chosen = b->port == 0;
    for (int attempt = 0; attempt < (chosen ? 3 : 1); attempt++) {
        if (chosen) b->port = testkit_free_port();
        if (b->port <= 0 || write_broker_conf(b) != 0) return -1;
        b->pid = spawn_broker(b);
        if (b->pid < 0) {
            b->pid = 0;
            return -1;
        }
        if (wait_listening(b) == 0) return 0;
        if (b->pid) testkit_broker_kill(b);
    }
    fprintf(stderr, "testkit: mosquitto did not start on 127.0.0.1:%d\n", b->port);
    print_broker_output(b);
    return -1;
}

void testkit_broker_kill(testkit_broker *b)
{
    if (!b->pid) return;
    kill(b->pid, SIGKILL);
    while (waitpid(b->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    b->pid = 0;
}

void testkit_broker_stop(testkit_broker *b)
{
    if (b->pid) {
        kill(b->pid, SIGTERM);
        int64_t deadline = os_mono_ms() + TESTKIT_BROKER_STOP_MS;
        while (b->pid && os_mono_ms() < deadline) {
            if (waitpid(b->pid, NULL, WNOHANG) == b->pid)
                b->pid = 0;
            else
                testkit_sleep_ms(10);
        }
        testkit_broker_kill(b); /* one that ignored SIGTERM */
    }
    if (b->dir[0]) testkit_rmtree(b->dir);
    memset(b, 0, sizeof *b);
}

char *testkit_broker_log(const testkit_broker *b)
{
    char *text = NULL;
    size_t len = 0;
    if (os_read_file(b->log_path, 1 << 24, &text, &len) != OP_OK) return strdup("");
    return text;
}
