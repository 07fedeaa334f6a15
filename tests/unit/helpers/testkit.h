/*
 * testkit: what the cmocka unit tests share. It owns the fixtures that used
 * to be copied from test to test: a fresh temporary directory per test
 * (made in setup, removed with everything in it in teardown), paths and
 * small files inside it, deterministic Ed25519 identities, the shared data
 * sets that may be missing on a machine (the test is skipped with a message,
 * never faked), an assertion on error texts that prints what it got, and a
 * real mosquitto broker on a free loopback port with its own configuration
 * and data directory (for the bus tests).
 *
 * The helpers use cmocka's assertions, so they are called from inside a
 * test (or a setup/teardown); the ones that return int do not assert and
 * can also be used where an assertion would be out of place.
 */
#ifndef OUTPOST_TESTKIT_H
#define OUTPOST_TESTKIT_H

#include "wire/ident.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The data sets shared between worktrees, relative to the repository root (tests/run.sh's cwd). */
#define TESTKIT_SHARED_DATA "../shared/data"

/* ---- temporary directories ---- */

/*
 * Creates a fresh directory /tmp/outpost-<test program>-XXXXXX and writes its
 * resolved path (no symlinks: jobs and key files see the same path) into
 * dir. 0, or -1 when it cannot be made or dir is too small.
 */
int testkit_mkdtemp(char *dir, size_t size);
/* Removes dir and everything under it. 0, or -1 when something stayed. */
int testkit_rmtree(const char *dir);

/* cmocka setup/teardown pair: *state is a fresh directory's path (a malloc'd string). */
int testkit_tmpdir_setup(void **state);
int testkit_tmpdir_teardown(void **state);

/* dir/name into buf; fails the test when it does not fit. */
void testkit_path(char *buf, size_t size, const char *dir, const char *name);
/* Writes text to dir/name with the given mode; fails the test on error. */
void testkit_write_file(const char *dir, const char *name, const char *text, int mode);

/* ---- identities ---- */

/* A deterministic identity named id: the Ed25519 key pair from 32 bytes of seed_byte. */
void testkit_ident(ident *out, const char *id, uint8_t seed_byte);

/* ---- assertions, data, time ---- */

/* Fails at the caller's line, printing both texts, unless needle occurs in text (NULL fails). */
#define testkit_assert_contains(text, needle)                                                      \
    testkit__assert_contains((text), (needle), __FILE__, __LINE__)
void testkit__assert_contains(const char *text, const char *needle, const char *file, int line);

/* Skips the running test with a message naming path unless it can be read (file or folder). */
void testkit_require_path(const char *path);

/*
 * For a test that shows a known defect in the code under test (what names
 * it): skips the test with that message unless OUTPOST_TEST_KNOWN_DEFECTS=1
 * is set, so that the suite stays green while the fix is pending and the
 * test can still be run to see it fail. Delete the call once the code is
 * fixed.
 */
void testkit_known_defect(const char *what);

/* Sleeps ms milliseconds, resuming after signals. */
void testkit_sleep_ms(long ms);

/* ---- a real mosquitto broker ---- */

/*
 * One broker process listening on 127.0.0.1:port only, anonymous, no
 * persistence, logging everything to log_path. dir holds its configuration
 * and log, and stays across testkit_broker_kill so that the broker can be
 * started again on the same port.
 */
typedef struct testkit_broker {
    pid_t pid; /* 0 when not running */
    int port;  /* 0 before the first start: a free port is chosen */
    char dir[PATH_MAX];
    char conf_path[PATH_MAX];
    char log_path[PATH_MAX];
} testkit_broker;

/* A TCP port on 127.0.0.1 that nothing listens on right now; -1 on error. */
int testkit_free_port(void);

/*
 * Starts /usr/sbin/mosquitto (first call: in a new temporary directory, on a
 * free port; later calls: same directory and port) and waits until it
 * accepts connections. The broker dies with the test process. 0, or -1
 * with the reason on stderr (the broker's own output included).
 */
int testkit_broker_start(testkit_broker *b);
/* SIGKILL, as a crash would: no goodbye to clients. Waits for the process. */
void testkit_broker_kill(testkit_broker *b);
/* Stops the broker (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
void testkit_broker_stop(testkit_broker *b);
/* The broker's log so far (malloc'd, caller frees; "" when there is none yet). */
char *testkit_broker_log(const testkit_broker *b);

#endif
