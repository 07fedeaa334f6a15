/*
 * Unit tests for log's two line formats: our own ("<UTC time> LEVEL
 * component: text") on a stderr that is a file, and journald's ("<N>LEVEL
 * component: text", N the syslog priority, no timestamp) only when
 * JOURNAL_STREAM names the very stream stderr is. stderr is redirected to a
 * file in the test's directory and read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#include "base/log.h"
#include "base/os.h"

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sends stderr to dir/name (a fresh file); returns the saved stderr to restore. */
static int redirect_stderr(const char *dir, const char *name, char *path, size_t size)
{
    testkit_path(path, size, dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    return saved;
}

/* Restores stderr and returns what was written to path (malloc'd). */
static char *restore_stderr(int saved, const char *path)
{
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = NULL;
    assert_int_equal(os_read_file(path, 1 << 20, &text, NULL), 0);
    return text;
}

/* JOURNAL_STREAM set to stderr's own device and inode ("<dev>:<ino>"). */
static void point_journal_stream_at_stderr(void)
{
    struct stat st;
    char value[64];
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(value, sizeof value, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", value, 1);
}

static void test_journal_lines_carry_priorities_and_no_time(void **state)
{
    char path[PATH_MAX];
    int saved = redirect_stderr(*state, "journal", path, sizeof path);
    point_journal_stream_at_stderr();
    assert_int_equal(log_journal_detect(), 1);
    log_set_level(LOG_LEVEL_DEBUG);
    log_debug("hub", "d %d", 1);
    log_info("hub", "ready");
    log_warn("site", "w");
    log_error("bus", "e");
    log_set_level(LOG_LEVEL_INFO);
    char *text = restore_stderr(saved, path);
    assert_string_equal(text, "<7>DEBUG hub: d 1\n<6>INFO hub: ready\n<4>WARN site: w\n"
                              "<3>ERROR bus: e\n");
    free(text);
    unsetenv("JOURNAL_STREAM");
    assert_int_equal(log_journal_detect(), 0);
}

/* A file under a JOURNAL_STREAM of another stream (inherited, then redirected): timestamps. */
static void test_other_stream_keeps_timestamps(void **state)
{
    const char *values[] = {"1:2", "garbage", "12:34x", ""};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char path[PATH_MAX];
        int saved = redirect_stderr(*state, "plain", path, sizeof path);
        setenv("JOURNAL_STREAM", values[i], 1);
        assert_int_equal(log_journal_detect(), 0);
        log_info("hub", "started");
        char *text = restore_stderr(saved, path);
        regex_t re;
        assert_int_equal(
            regcomp(&re,
                    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                    "INFO hub: started\n$",
                    REG_EXTENDED),
            0);
        if (regexec(&re, text, 0, NULL, 0) != 0) fail_msg("unexpected line: %s", text);
        regfree(&re);
        free(text);
    }
    unsetenv("JOURNAL_STREAM");
}

static void test_forced_format(void **state)
{
    char path[PATH_MAX];
    int saved = redirect_stderr(*state, "forced", path, sizeof path);
    log_set_journal(1);
    log_warn("x", "y");
    log_set_journal(0);
    char *text = restore_stderr(saved, path);
    assert_string_equal(text, "<4>WARN x: y\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_journal_lines_carry_priorities_and_no_time,
                                        testkit_tmpdir_setup, testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_other_stream_keeps_timestamps, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_forced_format, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
