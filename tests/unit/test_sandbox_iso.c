/*
 * Tests for the sandbox's isolation: real jobs in their own user, PID and
 * mount namespaces, as root (a per-slot uid) or unprivileged (a user
 * namespace). Each test is skipped where sandbox_probe finds no isolation.
 * Every wait is bounded.
 */
#include "io/sandbox.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "helpers/testkit.h"

#define POLL_LIMIT_MS 15000
#define JOB_ID 2100000123u
#define UNIFIED_CGROUP "/sys/fs/cgroup/unified"

static sandbox_caps caps;

typedef struct fixture {
    char base[PATH_MAX];        /* what the job must not see: the secret beside its work dir */
    char workdir[PATH_MAX + 8]; /* base/work */
} fixture;

static int group_setup(void **state)
{
    (void)state;
    sandbox_probe(NULL, &caps);
    fprintf(stderr, "isolation=%d userns=%d netns=%d seccomp=%d missing=\"%s\"\n", caps.isolation,
            caps.userns, caps.netns, caps.seccomp, caps.missing);
    return 0;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || testkit_mkdtemp(fx->base, sizeof fx->base) != 0) {
        free(fx);
        return -1;
    }
    snprintf(fx->workdir, sizeof fx->workdir, "%s/work", fx->base);
    if (mkdir(fx->workdir, 0700) != 0) return -1;
    testkit_write_file(fx->base, "secret", "the site's key\n", 0600);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = testkit_rmtree(fx->base);
    free(fx);
    return rc;
}

static void require_isolation(void)
{
    if (!caps.isolation) skip();
}

static sandbox_spec make_spec(const fixture *fx, char *const *argv)
{
    sandbox_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.workdir = fx->workdir;
    spec.argv = argv;
    spec.limits.wall_ms = 20000;
    spec.use_netns = caps.netns;
    spec.use_seccomp = caps.seccomp;
    spec.use_isolation = 1;
    spec.use_userns = caps.userns;
    spec.job_uid = spec.job_gid = JOB_ID;
    return spec;
}

static void wait_done(sandbox_run *run, sandbox_result *result)
{
    int64_t deadline = os_mono_ms() + POLL_LIMIT_MS;
    for (;;) {
        int rc = sandbox_poll(run, result);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) return;
        if (os_mono_ms() > deadline) fail_msg("job still running");
        testkit_sleep_ms(10);
    }
}

static void run_job(const sandbox_spec *spec, sandbox_result *result)
{
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(spec, &run), OP_OK);
    wait_done(run, result);
    sandbox_free(run);
}

/* Runs sh -c script isolated; the result stays for the caller. */
static void run_sh(const fixture *fx, const char *script, sandbox_result *result)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    sandbox_spec spec = make_spec(fx, argv);
    run_job(&spec, result);
}

static void test_own_uid_without_capabilities(void **state)
{
    require_isolation();
    fixture *fx = *state;
    sandbox_result res;
    run_sh(fx,
           "id -u; id -g; id -G; grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status;"
           "grep NoNewPrivs /proc/self/status",
           &res);
    char expected[512];
    snprintf(expected, sizeof expected,
             "%u\n%u\n%u\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
             "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t%d\n",
             JOB_ID, JOB_ID, JOB_ID, caps.seccomp ? 1 : 0);
    assert_string_equal(res.stdout_text, expected);
    assert_int_equal(res.exit_code, 0);
    sandbox_result_clear(&res);
}

static void test_host_is_invisible(void **state)
{
    require_isolation();
    fixture *fx = *state;
    sandbox_result res;
    char script[PATH_MAX * 2];
    snprintf(script, sizeof script,
             "cat ../secret %s/secret /etc/passwd /etc/shadow 2>/dev/null && echo read;"
             "ls -A ..; ls -A /; ls /proc | grep -c '^[0-9]'",
             fx->base);
    run_sh(fx, script, &res);
    /* above the work dir only itself; the root: system dirs, the mounts, nothing of the host */
    testkit_assert_contains(res.stdout_text, "work\n");
    assert_null(strstr(res.stdout_text, "read\n"));
    assert_null(strstr(res.stdout_text, "secret"));
    assert_null(strstr(res.stdout_text, "root\n"));
    assert_null(strstr(res.stdout_text, "home\n"));
    assert_null(strstr(res.stdout_text, "var\n"));
    assert_null(strstr(res.stdout_text, "oldroot"));
    /* its init, sh, ls and grep: no process of the host */
    const char *last = strrchr(res.stdout_text, '\n');
    while (last > res.stdout_text && last[-1] != '\n')
        last--;
    assert_true(atoi(last) <= 5);
    sandbox_result_clear(&res);
}

static void test_writes_only_work_dir_and_tmp(void **state)
{
    require_isolation();
    fixture *fx = *state;
    sandbox_result res;
    run_sh(fx,
           "for f in /x /usr/x /etc/x /proc/x; do touch $f 2>/dev/null && echo wrote $f; done;"
           "touch ../x 2>/dev/null;" /* in the job's own /tmp (the work dir is under /tmp) */
           "python3 -c 'import multiprocessing as m; m.Lock()' || echo no shm;"
           "echo a > out && echo b > /tmp/t && cat out /tmp/t && echo $HOME",
           &res);
    char expected[PATH_MAX + 32];
    snprintf(expected, sizeof expected, "a\nb\n%s\n", fx->workdir);
    assert_string_equal(res.stdout_text, expected);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/out", fx->workdir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (!caps.userns) assert_int_equal(st.st_uid, JOB_ID);
    snprintf(path, sizeof path, "%s/x", fx->base);
    assert_int_equal(stat(path, &st), -1);
    sandbox_result_clear(&res);
}

/* 1 if a process whose command line holds marker still runs (zombies do not count). */
static int marker_running(const char *marker)
{
    DIR *d = opendir("/proc");
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char path[300], cmd[256] = "";
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (cmd[i] == '\0') cmd[i] = ' ';
        cmd[n] = '\0';
        found = n > 0 && strstr(cmd, marker) != NULL;
    }
    if (d) closedir(d);
    return found;
}

static void test_nothing_outlives_the_job(void **state)
{
    require_isolation();
    fixture *fx = *state;
    sandbox_result res;
    run_sh(fx, "setsid sleep 31.4159 & sleep 30.2718 & echo $$; sleep 0.2", &res);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(res.stdout_text, "2\n"); /* pid 1 is the sandbox's init */
    assert_false(marker_running("31.4159"));
    assert_false(marker_running("30.2718"));
    sandbox_result_clear(&res);
}

static long file_size(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/*
 * A paused job draws nothing: a child that left the job's process group
 * (setsid) stops with it and goes on after the resume: frozen through a
 * cgroup leaf in parent_cgroup, or (NULL) signalled through the PID
 * namespace walk.
 */
static void check_pause_stops_everything(const fixture *fx, const char *parent_cgroup)
{
    char *argv[] = {"sh", "-c",
                    "setsid sh -c 'while :; do echo x >> ticks; sleep 0.01; done' & sleep 30",
                    NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.cgroup_dir = parent_cgroup;
    spec.job_name = parent_cgroup ? "job-p" : NULL;
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    int64_t deadline = os_mono_ms() + POLL_LIMIT_MS;
    while (file_size(fx->workdir, "ticks") < 20 && os_mono_ms() < deadline)
        testkit_sleep_ms(20);
    assert_true(file_size(fx->workdir, "ticks") >= 20);
    sandbox_signal(run, SIGSTOP);
    testkit_sleep_ms(150);
    long paused = file_size(fx->workdir, "ticks");
    testkit_sleep_ms(500);
    assert_int_equal(file_size(fx->workdir, "ticks"), paused);
    sandbox_signal(run, SIGCONT);
    while (file_size(fx->workdir, "ticks") <= paused + 20 && os_mono_ms() < deadline)
        testkit_sleep_ms(20);
    assert_true(file_size(fx->workdir, "ticks") > paused + 20);
    sandbox_signal(run, SIGKILL);
    sandbox_result res;
    wait_done(run, &res);
    sandbox_result_clear(&res);
    sandbox_free(run);
}

static void test_pause_stops_children_that_left_the_group(void **state)
{
    require_isolation();
    check_pause_stops_everything(*state, NULL);
}

static void test_processes_limited(void **state)
{
    require_isolation();
    fixture *fx = *state;
    /* python, not sh: dash exits at the first fork that fails */
    char *argv[] = {"python3", "-c",
                    "import subprocess\nn = 0\nfor i in range(60):\n    try:\n"
                    "        subprocess.Popen(['sleep', '5']); n += 1\n"
                    "    except OSError:\n        pass\nprint(n)\n",
                    NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.limits.processes = 20;
    spec.limits.wall_ms = 3000;
    sandbox_result res;
    run_job(&spec, &res);
    int running = atoi(res.stdout_text ? res.stdout_text : "0");
    assert_true(running > 0 && running < 20);
    sandbox_result_clear(&res);
}

static void test_disk_quota(void **state)
{
    require_isolation();
    fixture *fx = *state;
    /* /tmp is a tmpfs of the quota's size */
    sandbox_result res;
    char *tmp_argv[] = {"sh", "-c", "head -c 3000000 /dev/zero > /tmp/big || echo full", NULL};
    sandbox_spec spec = make_spec(fx, tmp_argv);
    spec.limits.disk_bytes = 1024 * 1024;
    spec.limits.output_bytes = 8 * 1024 * 1024;
    run_job(&spec, &res);
    testkit_assert_contains(res.stdout_text, "full\n");
    sandbox_result_clear(&res);
    /* the work dir is measured and the job killed when over */
    char *work_argv[] = {"sh", "-c", "head -c 3000000 /dev/zero > big; sleep 10", NULL};
    spec.argv = work_argv;
    run_job(&spec, &res);
    assert_true(res.killed_quota);
    assert_int_equal(res.term_signal, SIGKILL);
    assert_true(res.wall_ms < 5000);
    sandbox_result_clear(&res);
}

static void test_job_status_and_signals(void **state)
{
    require_isolation();
    fixture *fx = *state;
    sandbox_result res;
    run_sh(fx, "exit 7", &res);
    assert_true(res.exited);
    assert_int_equal(res.exit_code, 7);
    sandbox_result_clear(&res);
    run_sh(fx, "kill -SEGV $$", &res);
    assert_false(res.exited);
    assert_int_equal(res.term_signal, SIGSEGV);
    sandbox_result_clear(&res);
    /* a grace stop reaches the job (its init does not swallow it) */
    char *argv[] = {"sleep", "30", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_run *run = NULL;
    assert_int_equal(sandbox_start(&spec, &run), OP_OK);
    testkit_sleep_ms(100);
    int64_t t0 = os_mono_ms();
    sandbox_signal(run, SIGTERM);
    wait_done(run, &res);
    assert_int_equal(res.term_signal, SIGTERM);
    assert_true(os_mono_ms() - t0 < 3000);
    sandbox_result_clear(&res);
    sandbox_free(run);
}

static void test_start_failures_and_refusals(void **state)
{
    require_isolation();
    fixture *fx = *state;
    char *argv[] = {"no-such-program-outpost", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    sandbox_result res;
    run_job(&spec, &res);
    assert_int_equal(res.exit_code, 127);
    testkit_assert_contains(res.error, "exec no-such-program-outpost");
    sandbox_result_clear(&res);
    sandbox_run *run = NULL;
    spec.job_uid = 0; /* never root */
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    spec.job_uid = JOB_ID;
    const char *relative[] = {"bin/sh", NULL};
    spec.ro_paths = relative;
    assert_int_equal(sandbox_start(&spec, &run), OP_EINVAL);
    assert_null(run);
}

static void test_ro_path_visible(void **state)
{
    require_isolation();
    fixture *fx = *state;
    char dir[PATH_MAX];
    assert_int_equal(testkit_mkdtemp(dir, sizeof dir), 0);
    chmod(dir, 0755);
    testkit_write_file(dir, "tool", "#!/bin/sh\necho tool ran\n", 0755);
    char tool[PATH_MAX + 8];
    snprintf(tool, sizeof tool, "%s/tool", dir);
    char *argv[] = {tool, NULL};
    sandbox_spec spec = make_spec(fx, argv);
    const char *ro[] = {tool, NULL};
    spec.ro_paths = ro;
    sandbox_result res;
    run_job(&spec, &res);
    testkit_rmtree(dir);
    assert_string_equal(res.stdout_text, "tool ran\n");
    sandbox_result_clear(&res);
}

/* The init joins the job's cgroup leaf (by writing "0": its pid is another namespace's). */
static void test_cgroup_joined(void **state)
{
    require_isolation();
    fixture *fx = *state;
    struct statfs fs;
    if (statfs(UNIFIED_CGROUP, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC ||
        access(UNIFIED_CGROUP, W_OK) != 0)
        skip();
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s/outpost-iso-%d", UNIFIED_CGROUP, (int)getpid());
    assert_int_equal(mkdir(parent, 0755), 0);
    char *argv[] = {"cat", "/proc/self/cgroup", NULL};
    sandbox_spec spec = make_spec(fx, argv);
    spec.cgroup_dir = parent;
    spec.job_name = "job-1";
    sandbox_result res;
    run_job(&spec, &res);
    check_pause_stops_everything(fx, parent); /* frozen through the cgroup */
    rmdir(parent);
    char expected[128];
    snprintf(expected, sizeof expected, "0::/outpost-iso-%d/job-1\n", (int)getpid());
    testkit_assert_contains(res.stdout_text, expected);
    sandbox_result_clear(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_own_uid_without_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_is_invisible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_only_work_dir_and_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_outlives_the_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_stops_children_that_left_the_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_processes_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_status_and_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failures_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ro_path_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_joined, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
