/*
 * Tests for the sandbox module: real jobs (coreutils, /bin/sh) run under
 * real limits. Protections this machine lacks (sandbox_probe) are skipped,
 * not faked. Every wait is bounded; timing assertions are generous.
 */
#include "io/sandbox.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#define POLL_LIMIT_MS 10000
#define UNIFIED_CGROUP "/sys/fs/cgroup/unified"

static sandbox_caps caps;

typedef struct fixture {
    char workdir[PATH_MAX];
} fixture;

static int group_setup(void **state)
{
    sandbox_probe(NULL, &caps);
    return 0;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    /* The path is resolved, as the job sees it (HOME, pwd). */
    if (testkit_mkdtemp(fx->workdir, sizeof fx->workdir) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = testkit_rmtree(fx->workdir);
    free(fx);
    return rc;
}

static sandbox_spec make_spec(const fixture *fx, char *const *argv)
{
    sandbox_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.workdir = fx->workdir;
    spec.argv = argv;
    spec.limits.wall_ms = 20000; /* a safety net: no test job should come near it */
    return spec;
}

/* Polls every 10 ms until the job finishes; fails the test after limit_ms. */
static void wait_done(sandbox_run *run, sandbox_result *result, int64_t limit_ms)
{
    int64_t deadline = os_mono_ms() + limit_ms;
    for (;;) {
        int rc = sandbox_poll(run, result);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) return;
        if (os_mono_ms() > deadline)
            fail_msg("job still running after %lld ms", (long long)limit_ms);
        testkit_sleep_ms(10);
    }
}

/* Starts, waits and frees a job; the result stays for the caller to check and clear. */
static void run_job(const sandbox_spec *spec, sandbox_result *result)
{
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(spec, &run), OP_OK);
    assert_non_null(run);
    wait_done(run, result, POLL_LIMIT_MS);
    sandbox_free(run);
}

/* 1 once pid no longer runs: gone, or a zombie waiting for an init that may never reap it. */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
    char path[64];
    char stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close_paren = strrchr(stat, ')');
    if (!close_paren || close_paren[1] != ' ') return 0;
    return close_paren[2] == 'Z' || close_paren[2] == 'X';
}

static int wait_gone(pid_t pid, int64_t limit_ms)
{
    int64_t deadline = os_mono_ms() + limit_ms;
    while (!process_gone(pid)) {
        if (os_mono_ms() > deadline) return 0;
        testkit_sleep_ms(10);
    }
    return 1;
}

static pid_t parse_pid_after(const char *text, const char *marker)
{
    const char *p = strstr(text, marker);
    if (!p) return -1;
    int64_t pid = 0;
    char digits[32];
    size_t n = 0;
    p += strlen(marker);
    while (n + 1 < sizeof digits && p[n] >= '0' && p[n] <= '9') {
        digits[n] = p[n];
        n++;
    }
    digits[n] = '\0';
    if (util_parse_i64(digits, 1, INT32_MAX, &pid) != OP_OK) return -1;
    return (pid_t)pid;
}

static void test_probe_reports_consistently(void **state)
{
    fixture *fx = *state;
    sandbox_caps probed;
    sandbox_probe(NULL, &probed);
    assert_int_equal(probed.rlimits, 1);
    assert_int_equal(probed.cgroup, 0);
    assert_non_null(strstr(probed.missing, "cgroup"));
    assert_int_equal(strstr(probed.missing, "netns") == NULL, probed.netns);
    assert_int_equal(strstr(probed.missing, "seccomp") == NULL, probed.seccomp);
    /* A plain directory is not a cgroup, whatever files it holds. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/cgroup.controllers", fx->workdir);
    assert_int_equal(os_write_file_atomic(path, "cpu memory\n", 11, 0600), OP_OK);
    sandbox_probe(fx->workdir, &probed);
    assert_int_equal(probed.cgroup, 0);
    sandbox_probe("/nonexistent/cgroup", &probed);
    assert_int_equal(probed.cgroup, 0);
}

static void test_normal_command(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"/bin/sh", "-c", "echo hi; echo err >&2; exit 3", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_run *run = NULL;
    sandbox_result result;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    assert_true(sandbox_pid(run) > 0);
    wait_done(run, &result, POLL_LIMIT_MS);
    assert_int_equal(result.exited, 1);
    assert_int_equal(result.exit_code, 3);
    assert_int_equal(result.term_signal, 0);
    assert_int_equal(result.killed_wall, 0);
    assert_string_equal(result.stdout_text, "hi\n");
    assert_int_equal(result.stdout_len, 3);
    assert_int_equal(result.stdout_truncated, 0);
    assert_string_equal(result.stderr_text, "err\n");
    assert_int_equal(result.stderr_truncated, 0);
    assert_string_equal(result.error, "");
    assert_true(result.wall_ms >= 0 && result.wall_ms < POLL_LIMIT_MS);
    assert_true(result.peak_rss_bytes > 0);
    sandbox_result_clear(&result);
    assert_null(result.stdout_text);
    assert_int_equal(result.exit_code, 0);

    /* Polling a finished job again gives the same answer. */
    assert_int_equal(sandbox_poll(run, &result), 1);
    assert_int_equal(result.exit_code, 3);
    assert_string_equal(result.stdout_text, "hi\n");
    sandbox_result_clear(&result);
    sandbox_free(run);

    struct stat st;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/.stdout", fx->workdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_environment_and_workdir(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "pwd; echo \"$PATH|$HOME|$LANG|$TMPDIR\"; env", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;
    assert_int_equal(setenv("SANDBOX_TEST_SECRET", "leaked", 1), 0);
    run_job(&spec, &result);
    unsetenv("SANDBOX_TEST_SECRET");
    char expected[4 * PATH_MAX];
    snprintf(expected, sizeof expected, "%s\n/usr/local/bin:/usr/bin:/bin|%s|C|%s\n", fx->workdir,
             fx->workdir, fx->workdir);
    assert_int_equal(result.exit_code, 0);
    assert_memory_equal(result.stdout_text, expected, strlen(expected));
    assert_null(strstr(result.stdout_text, "SANDBOX_TEST_SECRET"));
    sandbox_result_clear(&result);
}

/* Hints from the site (OUTPOST_*) reach the job; anything else is refused before it starts. */
static void test_extra_environment(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "echo \"$OUTPOST_STAY_S|$OUTPOST_CHECKPOINT\"", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    const char *env[] = {"OUTPOST_STAY_S=1790", "OUTPOST_CHECKPOINT=state.bin", NULL};
    spec.extra_env = env;
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 0);
    assert_string_equal(result.stdout_text, "1790|state.bin\n");
    sandbox_result_clear(&result);
    const char *bad[] = {"LD_PRELOAD=/tmp/x.so", NULL};
    spec.extra_env = bad;
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    assert_null(run);
    const char *many[] = {"OUTPOST_A=1", "OUTPOST_B=2", "OUTPOST_C=3",
                          "OUTPOST_D=4", "OUTPOST_E=5", NULL};
    spec.extra_env = many;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
}

static void test_descriptors_closed_and_stdin_null(void **state)
{
    fixture *fx = *state;
    int leaky = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    assert_true(leaky > 2);
    char *argv[] = {"ls", "/proc/self/fd", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;
    run_job(&spec, &result);
    close(leaky);
    assert_int_equal(result.exit_code, 0);
    /* 3 is ls's own handle on the directory. */
    assert_string_equal(result.stdout_text, "0\n1\n2\n3\n");
    sandbox_result_clear(&result);

    char *argv2[] = {"readlink", "/proc/self/fd/0", NULL};
    spec = make_spec(fx, argv2);
    run_job(&spec, &result);
    assert_string_equal(result.stdout_text, "/dev/null\n");
    sandbox_result_clear(&result);
}

static void test_own_process_group(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "read -r a b c d pgrp rest < /proc/$$/stat; echo \"$$ $pgrp\"",
                    NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_run *run = NULL;
    sandbox_result result;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    pid_t pid = sandbox_pid(run);
    wait_done(run, &result, POLL_LIMIT_MS);
    sandbox_free(run);
    char expected[64];
    snprintf(expected, sizeof expected, "%d %d\n", (int)pid, (int)pid);
    assert_string_equal(result.stdout_text, expected);
    sandbox_result_clear(&result);
}

static void test_cpu_time_accounted(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 0);
    assert_string_equal(result.stdout_text, "300000\n");
    assert_true(result.cpu_seconds > 0.01);
    assert_true(result.cpu_seconds < 60);
    sandbox_result_clear(&result);
}

static void test_wall_limit_kills(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sleep", "10", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.limits.wall_ms = 300;
    sandbox_result result;
    int64_t started = os_mono_ms();
    run_job(&spec, &result);
    int64_t elapsed = os_mono_ms() - started;
    assert_int_equal(result.killed_wall, 1);
    assert_int_equal(result.exited, 0);
    assert_int_equal(result.exit_code, -1);
    assert_int_equal(result.term_signal, SIGKILL);
    assert_true(elapsed >= 250);
    assert_true(elapsed < 5000);
    sandbox_result_clear(&result);
}

static void test_cpu_limit(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "while :; do :; done", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.limits.cpu_seconds = 1;
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.killed_wall, 0);
    assert_int_equal(result.exited, 0);
    assert_true(result.term_signal == SIGXCPU || result.term_signal == SIGKILL);
    assert_true(result.cpu_seconds >= 0.9);
    sandbox_result_clear(&result);
}

static void test_memory_limit(void **state)
{
    fixture *fx = *state;
    /* dd allocates its whole block up front and touches it while reading. */
    char *argv[] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;

    run_job(&spec, &result); /* control: fits without a limit */
    assert_int_equal(result.exit_code, 0);
    assert_true(result.peak_rss_bytes >= 90LL * 1024 * 1024);
    sandbox_result_clear(&result);

    spec.limits.memory_bytes = 32LL * 1024 * 1024;
    run_job(&spec, &result);
    assert_int_equal(result.exited, 1);
    assert_int_not_equal(result.exit_code, 0);
    assert_non_null(strstr(result.stderr_text, "memory"));
    assert_true(result.peak_rss_bytes < 32LL * 1024 * 1024);
    sandbox_result_clear(&result);
}

static void test_output_cap(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "yes | head -c 5000000", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.limits.output_bytes = 1000;
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.stdout_len, 1000);
    assert_int_equal(strlen(result.stdout_text), 1000);
    assert_int_equal(result.stdout_truncated, 1);
    assert_memory_equal(result.stdout_text, "y\ny\ny\n", 6);
    assert_int_equal(result.stderr_truncated, 0);
    sandbox_result_clear(&result);
    /* RLIMIT_FSIZE stopped the file itself at the cap, not just our read of it. */
    struct stat st;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/.stdout", fx->workdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 1000);

    /* Under the cap: whole output, not truncated. */
    char *argv2[] = {"sh", "-c", "head -c 999 /dev/zero | tr '\\0' x", NULL};
    spec = make_spec(fx, argv2);
    spec.limits.output_bytes = 1000;
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 0);
    assert_int_equal(result.stdout_len, 999);
    assert_int_equal(result.stdout_truncated, 0);
    sandbox_result_clear(&result);
}

static void test_open_files_limit(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "ulimit -n; exec 12</dev/null; echo opened", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.limits.open_files = 10;
    sandbox_result result;
    run_job(&spec, &result);
    assert_string_equal(result.stdout_text, "10\n");
    assert_int_not_equal(result.exit_code, 0);
    sandbox_result_clear(&result);

    /* Default is 64. */
    char *argv2[] = {"sh", "-c", "ulimit -n", NULL};
    spec = make_spec(fx, argv2);
    run_job(&spec, &result);
    assert_string_equal(result.stdout_text, "64\n");
    sandbox_result_clear(&result);
}

static void test_missing_binary(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"no-such-command-outpost-test", "arg", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.exited, 1);
    assert_int_equal(result.exit_code, 127);
    assert_non_null(strstr(result.error, "exec no-such-command-outpost-test"));
    assert_non_null(strstr(result.error, "No such file"));
    sandbox_result_clear(&result);

    /* A normal run leaves error empty: the text above came from the child's report. */
    char *argv2[] = {"sh", "-c", "exit 127", NULL};
    spec = make_spec(fx, argv2);
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 127);
    assert_string_equal(result.error, "");
    sandbox_result_clear(&result);
}

static void test_no_network_in_netns(void **state)
{
    fixture *fx = *state;
    if (!caps.netns) skip();
    char *argv[] = {"cat", "/proc/net/dev", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.use_netns = 1;
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 0);
    size_t lines = 0;
    for (const char *p = result.stdout_text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3); /* two header lines and lo */
    assert_non_null(strstr(result.stdout_text, "lo:"));
    sandbox_result_clear(&result);

    /* The job keeps its identity (an unprivileged caller gets a user namespace mapping it). */
    char *argv2[] = {"sh", "-c", "id -u; id -g", NULL};
    spec = make_spec(fx, argv2);
    spec.use_netns = 1;
    run_job(&spec, &result);
    char expected[64];
    snprintf(expected, sizeof expected, "%u\n%u\n", (unsigned)geteuid(), (unsigned)getegid());
    assert_string_equal(result.stdout_text, expected);
    sandbox_result_clear(&result);
}

static void test_seccomp_blocks_namespaces(void **state)
{
    fixture *fx = *state;
    if (!caps.seccomp) skip();
    char *argv[] = {"unshare", "-n", "true", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.use_seccomp = 1;
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.exited, 1);
    assert_int_not_equal(result.exit_code, 0);
    assert_non_null(strstr(result.stderr_text, "Operation not permitted"));
    assert_string_equal(result.error, "");
    sandbox_result_clear(&result);

    /* Ordinary work, including fork and pipes, still runs under the filter. */
    char *argv2[] = {"sh", "-c", "echo a | cat; (true) & wait; echo done", NULL};
    spec = make_spec(fx, argv2);
    spec.use_seccomp = 1;
    spec.use_netns = caps.netns;
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 0);
    assert_string_equal(result.stdout_text, "a\ndone\n");
    sandbox_result_clear(&result);
}

static void test_stragglers_killed_with_group(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "sleep 100 & echo \"bg $!\"", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;
    run_job(&spec, &result);
    assert_int_equal(result.exit_code, 0);
    pid_t straggler = parse_pid_after(result.stdout_text, "bg ");
    sandbox_result_clear(&result);
    assert_true(straggler > 0);
    int gone = wait_gone(straggler, 2000);
    if (!gone) kill(straggler, SIGKILL);
    assert_true(gone);
}

static void test_free_kills_running_job(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "sleep 100 & echo \"bg $!\"; wait", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    pid_t pid = sandbox_pid(run);

    /* Wait until the background sleep's pid shows up in the job's stdout. */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/.stdout", fx->workdir);
    pid_t straggler = -1;
    for (int64_t deadline = os_mono_ms() + POLL_LIMIT_MS; straggler < 0;) {
        char *text = NULL;
        if (os_read_file(path, 4096, &text, NULL) == OP_OK) {
            straggler = parse_pid_after(text, "bg ");
            free(text);
        }
        if (straggler < 0 && os_mono_ms() > deadline) fail_msg("job printed nothing");
        if (straggler < 0) testkit_sleep_ms(10);
    }
    sandbox_result result;
    assert_int_equal(sandbox_poll(run, &result), 0);
    sandbox_free(run);
    /* free reaped the job itself, so no zombie is left. */
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    int gone = wait_gone(straggler, 2000);
    if (!gone) kill(straggler, SIGKILL);
    assert_true(gone);
}

static void test_signal_reaches_job(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sleep", "100", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_run *run = NULL;
    sandbox_result result;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    sandbox_signal(run, SIGTERM);
    wait_done(run, &result, POLL_LIMIT_MS);
    assert_int_equal(result.exited, 0);
    assert_int_equal(result.term_signal, SIGTERM);
    assert_int_equal(result.killed_wall, 0);
    sandbox_result_clear(&result);
    sandbox_signal(run, SIGKILL); /* after reaping: must be a harmless no-op */
    sandbox_free(run);
    sandbox_free(NULL);
}

static void test_status_lost_when_reaped_elsewhere(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"sh", "-c", "echo before", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_run *run = NULL;
    sandbox_result result;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    int status = 0;
    assert_int_equal(waitpid(sandbox_pid(run), &status, 0), sandbox_pid(run));
    assert_int_equal(sandbox_poll(run, &result), OP_ESYS);
    assert_int_equal(result.exit_code, -1);
    assert_int_equal(result.exited, 0);
    assert_true(result.error[0] != '\0');
    assert_string_equal(result.stdout_text, "before\n");
    sandbox_result_clear(&result);
    sandbox_free(run);
}

static void test_invalid_specs_refused(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"true", NULL};
    char *empty_argv[] = {NULL};
    char *blank_argv[] = {"", NULL};
    sandbox_run *run = (sandbox_run *)&run; /* must be reset to NULL on failure */
    sandbox_spec spec = make_spec(fx, argv);

    assert_int_equal(sandbox_start(NULL, &run), OP_EINVAL);
    assert_null(run);
    assert_int_equal(sandbox_start(&spec, NULL), OP_EINVAL);

    spec.workdir = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.workdir = "/nonexistent/outpost-sandbox";
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.workdir = "/etc/hostname"; /* not a directory */
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);

    spec = make_spec(fx, NULL);
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.argv = empty_argv;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.argv = blank_argv;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);

    spec = make_spec(fx, argv);
    spec.limits.memory_bytes = -1;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec = make_spec(fx, argv);
    spec.limits.cpu_cores = NAN;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);

    spec = make_spec(fx, argv);
    spec.cgroup_dir = fx->workdir;
    spec.job_name = "../escape";
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.job_name = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.job_name = "..";
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    assert_null(run);

    sandbox_result result;
    assert_int_equal(sandbox_poll(NULL, &result), OP_EINVAL);
    sandbox_signal(NULL, SIGTERM);
    assert_int_equal(sandbox_pid(NULL), -1);
    sandbox_result_clear(NULL);
}

static void test_hostile_output_files_replaced(void **state)
{
    fixture *fx = *state;
    /* A previous job left .stdout as a symlink and .stderr as a FIFO. */
    char path[PATH_MAX + 16];
    char target[PATH_MAX + 16];
    snprintf(target, sizeof target, "%s/victim", fx->workdir);
    assert_int_equal(os_write_file_atomic(target, "keep", 4, 0600), OP_OK);
    snprintf(path, sizeof path, "%s/.stdout", fx->workdir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/.stderr", fx->workdir);
    assert_int_equal(mkfifo(path, 0600), 0);

    char *argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result result;
    run_job(&spec, &result);
    assert_string_equal(result.stdout_text, "out\n");
    assert_string_equal(result.stderr_text, "err\n");
    sandbox_result_clear(&result);
    char *victim = NULL;
    assert_int_equal(os_read_file(target, 64, &victim, NULL), OP_OK);
    assert_string_equal(victim, "keep");
    free(victim);
}

static void test_cgroup_dir_not_a_cgroup_fails_cleanly(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"true", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.cgroup_dir = fx->workdir;
    spec.job_name = "job-1";
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_ESYS);
    assert_null(run);
    char leaf[PATH_MAX + 16];
    snprintf(leaf, sizeof leaf, "%s/job-1", fx->workdir);
    assert_int_equal(access(leaf, F_OK), -1); /* the leaf it made was removed */
}

/* 1 if UNIFIED_CGROUP is a cgroup2 mount we may create children in. */
static int unified_cgroup_usable(void)
{
    struct statfs fs;
    return statfs(UNIFIED_CGROUP, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC &&
           access(UNIFIED_CGROUP, W_OK) == 0;
}

/*
 * Real cgroup v2 path, without cpu/memory controllers (this machine has
 * none): the leaf is created, the job runs inside it, cgroup.kill catches a
 * process that left the process group, and the leaf is removed.
 */
static void test_cgroup_leaf_lifecycle(void **state)
{
    fixture *fx = *state;
    if (!unified_cgroup_usable()) skip();
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s/outpost-test-%d", UNIFIED_CGROUP, (int)getpid());
    assert_int_equal(mkdir(parent, 0755), 0);

    char *argv[] = {"sh", "-c", "cat /proc/self/cgroup; setsid sleep 100 & echo \"bg $!\"", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.cgroup_dir = parent;
    spec.job_name = "job-1";
    sandbox_run *run = NULL;
    sandbox_result result;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    char leaf[PATH_MAX + 16];
    snprintf(leaf, sizeof leaf, "%s/job-1", parent);
    assert_int_equal(access(leaf, F_OK), 0);
    wait_done(run, &result, POLL_LIMIT_MS);
    pid_t escaped = parse_pid_after(result.stdout_text, "bg ");
    char expected[128];
    snprintf(expected, sizeof expected, "0::/outpost-test-%d/job-1\n", (int)getpid());
    int in_leaf = strstr(result.stdout_text, expected) != NULL;
    sandbox_result_clear(&result);
    int gone = escaped > 0 && wait_gone(escaped, 2000);
    if (escaped > 0 && !gone) kill(escaped, SIGKILL);
    sandbox_free(run);
    int leaf_removed = access(leaf, F_OK) != 0;

    /* A limit the leaf cannot take refuses the job and cleans up: the fresh parent enables no
     * controller for its children, so the leaf has no cpu.max. */
    spec.limits.cpu_cores = 0.5;
    int limited_rc = sandbox_start(&spec, &run);
    if (limited_rc == OP_OK) sandbox_free(run);
    int leaf_removed_after_refusal = access(leaf, F_OK) != 0;
    rmdir(parent);

    assert_true(in_leaf);
    assert_true(escaped > 0);
    assert_true(gone);
    assert_true(leaf_removed);
    assert_int_equal(limited_rc, OP_ESYS);
    assert_true(leaf_removed_after_refusal);
}

/* /proc/self/cgroup's v2 line, among v1 lines or alone; none, or a relative one, is not found. */
static void test_cgroup_own_path(void **state)
{
    char out[64];
    assert_int_equal(sandbox_cgroup_own_path("12:cpu:/x\n0::/system.slice/outpost-site.service\n",
                                             out, sizeof out),
                     OP_OK);
    assert_string_equal(out, "/system.slice/outpost-site.service");
    assert_int_equal(sandbox_cgroup_own_path("0::/", out, sizeof out), OP_OK);
    assert_string_equal(out, "/");
    assert_int_equal(sandbox_cgroup_own_path("4:memory:/a\n1:cpu:/\n", out, sizeof out),
                     OP_ENOTFOUND);
    assert_int_equal(sandbox_cgroup_own_path("0::\n", out, sizeof out), OP_ENOTFOUND);
    assert_int_equal(sandbox_cgroup_own_path("0::relative\n", out, sizeof out), OP_ENOTFOUND);
    assert_int_equal(sandbox_cgroup_own_path("", out, sizeof out), OP_ENOTFOUND);
    assert_int_equal(sandbox_cgroup_own_path("0::/a/very/long/path\n", out, 8), OP_ETOOBIG);
}

/* Here (a container: root cgroup or none) there is nothing delegated to take over. */
static void test_cgroup_adopt_refuses_the_root(void **state)
{
    char text[4096] = "", own[256], dir[PATH_MAX];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    if (sandbox_cgroup_own_path(text, own, sizeof own) == OP_OK && strcmp(own, "/") != 0)
        skip(); /* in a real cgroup: adopting it would move this test process */
    int rc = sandbox_cgroup_adopt(dir, sizeof dir);
    assert_true(rc == OP_EPERM || rc == OP_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_reports_consistently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_and_workdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptors_closed_and_stdin_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_process_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_time_accounted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wall_limit_kills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_files_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_network_in_netns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seccomp_blocks_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stragglers_killed_with_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_kills_running_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_reaches_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_lost_when_reaped_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_specs_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_output_files_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_dir_not_a_cgroup_fails_cleanly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_leaf_lifecycle, setup, teardown),
        cmocka_unit_test(test_cgroup_own_path),
        cmocka_unit_test(test_cgroup_adopt_refuses_the_root),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
