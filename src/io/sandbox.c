/*
 * sandbox: one exec job as a child process under limits (see sandbox.h).
 *
 * Shape of a run: sandbox_start() prepares everything that needs memory or
 * formatting in the parent (resolved work directory, environment, output
 * files, cgroup leaf, the seccomp program as raw BPF), then forks. The child
 * only makes system calls on that prepared plan (it may be a fork of a
 * multithreaded process, so nothing that could take a lock: no malloc, no
 * stdio, no libseccomp) and execs. A failure before exec is written as a
 * small fixed-size report to a close-on-exec pipe; the parent's read of that
 * pipe returns at exec (EOF) or at the failure, so it never waits on the job.
 *
 * sandbox_poll() detects the exit with waitid(WNOWAIT) so that the zombie
 * still holds its pid while the process group (and cgroup) is killed, then
 * reaps with wait4() for the rusage. Killing the group before reaping means
 * the group id cannot have been reused by an unrelated process.
 *
 * Accounting and containment limits are stated in sandbox.h.
 */
#include "io/sandbox.h"

#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/sched.h> /* CLONE_* without _GNU_SOURCE sched.h wrappers; unshare via syscall() */
#include <linux/seccomp.h>
#include <math.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SANDBOX_DEFAULT_OPEN_FILES 64
#define SANDBOX_DEFAULT_OUTPUT_BYTES (1024 * 1024)
#define SANDBOX_CPU_PERIOD_US 100000
#define SANDBOX_CGROUP_READ_MAX 65536
#define SANDBOX_JOB_NAME_MAX 63
#define SANDBOX_RMDIR_TRIES 100 /* x 2 ms: how long sandbox_free waits for a leaf to empty */
#define SANDBOX_CHILD_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

/* Steps of the child's setup, reported to the parent when one fails. */
enum child_step {
    STEP_FDS,
    STEP_PGID,
    STEP_PDEATHSIG,
    STEP_PARENT_GONE,
    STEP_CGROUP,
    STEP_CHDIR,
    STEP_STDIO,
    STEP_RLIMIT,
    STEP_NETNS,
    STEP_NO_NEW_PRIVS,
    STEP_SECCOMP,
    STEP_EXEC,
};

static const char *step_name(int step)
{
    static const char *names[] = {
        "moving descriptors",  "setpgid",        "PR_SET_PDEATHSIG",
        "parent exited",       "joining cgroup", "chdir to workdir",
        "redirecting stdio",   "setrlimit",      "network namespace",
        "PR_SET_NO_NEW_PRIVS", "seccomp filter", "exec",
    };
    if (step < 0 || (size_t)step >= sizeof names / sizeof names[0]) return "setup";
    return names[step];
}

/* What the child writes to the report pipe; one write, smaller than PIPE_BUF. */
typedef struct child_report {
    int step;
    int err;
} child_report;

typedef struct child_limit {
    int resource;
    rlim_t soft;
    rlim_t hard;
} child_limit;

/* Everything the child needs, prepared before fork. */
typedef struct child_plan {
    pid_t parent_pid;
    int report_fd;
    int null_fd;
    int out_fd;
    int err_fd;
    int cgroup_procs_fd; /* -1 without a cgroup */
    const char *workdir;
    char *const *argv;
    char **envp;
    child_limit limits[6];
    int limit_count;
    int use_netns;
    char uid_map[48];
    char gid_map[48];
    const struct sock_fprog *seccomp_prog; /* NULL without seccomp */
} child_plan;

struct sandbox_run {
    pid_t pid;
    int reaped;
    int lost; /* reaped by someone else: status unknown */
    int status;
    struct rusage usage;
    int killed_wall;
    int64_t started_ms;
    int64_t ended_ms;
    int64_t wall_limit_ms;
    int64_t output_bytes;
    int out_fd; /* parent's own handles on .stdout/.stderr: the job cannot swap them */
    int err_fd;
    char *cgroup_leaf; /* malloc'd path, NULL without a cgroup */
    double cgroup_cpu_seconds;
    int64_t cgroup_peak_bytes;
    int child_failed;
    char child_error[256];
};

/* ---------------------------------------------------------------------------
 * Child side: only async-signal-safe system calls from here to exec.
 */

static void child_fail(const child_plan *plan, int step, int err) __attribute__((noreturn));
static void child_fail(const child_plan *plan, int step, int err)
{
    child_report report = {step, err};
    ssize_t n;
    do {
        n = write(plan->report_fd, &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    _exit(127);
}

/* Writes text to an existing file (procfs, cgroupfs). Returns 0 or an errno value. */
static int child_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = n == (ssize_t)len ? 0 : (n < 0 ? errno : EIO);
    close(fd);
    return err;
}

/* Decimal digits of value into buf (needs 24 bytes), NUL-terminated. */
static void child_format_u64(uint64_t value, char *buf)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    for (int i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    buf[n] = '\0';
}

/*
 * Enters a new, empty network namespace. As root (or with CAP_SYS_ADMIN)
 * a plain CLONE_NEWNET works; otherwise a user namespace is created along
 * with it, mapping only our own uid and gid so that the job keeps its
 * identity and loses the namespace capabilities at exec. Returns 0 or an
 * errno value. Shared with the probe so that the probe tests the real path.
 */
static int child_enter_netns(const child_plan *plan)
{
    if (syscall(SYS_unshare, CLONE_NEWNET) == 0) return 0;
    if (syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
    int err = child_write_file("/proc/self/setgroups", "deny");
    if (err != 0 && err != ENOENT) return err;
    err = child_write_file("/proc/self/uid_map", plan->uid_map);
    if (err != 0) return err;
    return child_write_file("/proc/self/gid_map", plan->gid_map);
}

static int child_install_seccomp(const child_plan *plan, int *step)
{
    *step = STEP_NO_NEW_PRIVS;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    *step = STEP_SECCOMP;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan->seccomp_prog) != 0) return errno;
    return 0;
}

/* Moves *fd above 2 so that the dup2 onto 0/1/2 cannot clobber it. */
static int child_lift_fd(int *fd)
{
    if (*fd < 0 || *fd > 2) return 0;
    int lifted = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (lifted < 0) return errno;
    *fd = lifted;
    return 0;
}

static int child_close_fds_except(int keep)
{
#ifdef SYS_close_range
    int ok = 1;
    if (keep > 3 && syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) != 0) ok = 0;
    if (ok && syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0) return 0;
#endif
    struct rlimit rl;
    rlim_t max_fd = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_fd)
        max_fd = rl.rlim_cur;
    for (rlim_t fd = 3; fd < max_fd; fd++)
        if ((int)fd != keep) close((int)fd);
    return 0;
}

static void child_run(child_plan *plan) __attribute__((noreturn));
static void child_run(child_plan *plan)
{
    int err = child_lift_fd(&plan->report_fd);
    if (err == 0) err = child_lift_fd(&plan->null_fd);
    if (err == 0) err = child_lift_fd(&plan->out_fd);
    if (err == 0) err = child_lift_fd(&plan->err_fd);
    if (err == 0) err = child_lift_fd(&plan->cgroup_procs_fd);
    if (err != 0) child_fail(plan, STEP_FDS, err);

    if (setpgid(0, 0) != 0) child_fail(plan, STEP_PGID, errno);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) child_fail(plan, STEP_PDEATHSIG, errno);
    /* The parent may have died before PDEATHSIG was armed. */
    if (getppid() != plan->parent_pid) child_fail(plan, STEP_PARENT_GONE, ESRCH);

    /* All signals are blocked (the parent did it around fork); reset handlers before unblocking. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL); /* EINVAL for reserved */

    if (plan->cgroup_procs_fd >= 0) {
        char pid_text[24];
        child_format_u64((uint64_t)getpid(), pid_text);
        size_t len = strlen(pid_text);
        if (write(plan->cgroup_procs_fd, pid_text, len) != (ssize_t)len)
            child_fail(plan, STEP_CGROUP, errno ? errno : EIO);
    }

    if (chdir(plan->workdir) != 0) child_fail(plan, STEP_CHDIR, errno);

    if (dup2(plan->null_fd, 0) < 0 || dup2(plan->out_fd, 1) < 0 || dup2(plan->err_fd, 2) < 0)
        child_fail(plan, STEP_STDIO, errno);
    child_close_fds_except(plan->report_fd);

    for (int i = 0; i < plan->limit_count; i++) {
        const child_limit *want = &plan->limits[i];
        struct rlimit current, next;
        if (getrlimit(want->resource, &current) != 0) child_fail(plan, STEP_RLIMIT, errno);
        /* Never try to raise: an unprivileged caller cannot, and lower is what we want. */
        next.rlim_max = want->hard < current.rlim_max ? want->hard : current.rlim_max;
        next.rlim_cur = want->soft < next.rlim_max ? want->soft : next.rlim_max;
        if (setrlimit(want->resource, &next) != 0) child_fail(plan, STEP_RLIMIT, errno);
    }

    if (plan->use_netns) {
        err = child_enter_netns(plan);
        if (err != 0) child_fail(plan, STEP_NETNS, err);
    }

    /* execvp searches the PATH of the current environment, so switch it first. */
    environ = plan->envp;

    if (plan->seccomp_prog) {
        int step = STEP_SECCOMP;
        err = child_install_seccomp(plan, &step);
        if (err != 0) child_fail(plan, step, err);
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    execvp(plan->argv[0], plan->argv);
    child_fail(plan, STEP_EXEC, errno);
}

/* ---------------------------------------------------------------------------
 * Seccomp program, built in the parent.
 */

/* Syscalls a batch job never needs. Names unknown to libseccomp are skipped. */
static const char *const seccomp_denied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "syslog",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "iopl",
    "ioperm",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "fanotify_init",
    "mount_setattr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "vm86",
    "vm86old",
};

/*
 * Denying unshare alone leaves clone(CLONE_NEW*) as a way into new
 * namespaces: refuse those flags. clone3 passes its flags in memory that
 * seccomp cannot read, so it gets ENOSYS, which makes libc fall back to
 * clone (the same approach as Docker's and systemd's filters).
 */
static int seccomp_add_clone_rules(scmp_filter_ctx ctx)
{
#if !defined(__s390__) && !defined(__s390x__) /* there clone's flags are the second argument */
    static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (rc < 0) return rc;
    }
#endif
    int clone3_nr = seccomp_syscall_resolve_name("clone3");
    if (clone3_nr >= 0) return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3_nr, 0);
    return 0;
}

/*
 * Builds the filter and exports it as raw BPF into prog (prog->filter is
 * malloc'd; the caller frees it). OP_ESYS on failure (logged).
 */
static int seccomp_build(struct sock_fprog *prog)
{
    int rc = OP_ESYS;
    int memfd = -1;
    void *buf = NULL;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        log_error("sandbox", "seccomp_init failed");
        return OP_ESYS;
    }
    /* A syscall from a foreign ABI (e.g. 32-bit int 0x80) would bypass the list: kill it. */
    int lrc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (lrc < 0) lrc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
    if (lrc < 0) goto libfail;
    for (size_t i = 0; i < sizeof seccomp_denied / sizeof seccomp_denied[0]; i++) {
        int nr = seccomp_syscall_resolve_name(seccomp_denied[i]);
        if (nr == __NR_SCMP_ERROR || nr < 0) continue; /* unknown, or not on this architecture */
        lrc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (lrc < 0) goto libfail;
    }
    lrc = seccomp_add_clone_rules(ctx);
    if (lrc < 0) goto libfail;

    memfd = memfd_create("sandbox-bpf", MFD_CLOEXEC);
    if (memfd < 0) {
        log_error("sandbox", "memfd_create: %s", strerror(errno));
        goto out;
    }
    lrc = seccomp_export_bpf(ctx, memfd);
    if (lrc < 0) goto libfail;
    off_t size = lseek(memfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > USHRT_MAX) {
        log_error("sandbox", "seccomp export produced %lld bytes", (long long)size);
        goto out;
    }
    buf = malloc((size_t)size);
    if (!buf) {
        rc = OP_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t n = pread(memfd, (char *)buf + got, (size_t)size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_error("sandbox", "reading seccomp program: %s", n < 0 ? strerror(errno) : "EOF");
            goto out;
        }
        got += (size_t)n;
    }
    prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    prog->filter = buf;
    buf = NULL;
    rc = OP_OK;
    goto out;
libfail:
    log_error("sandbox", "libseccomp: %s", strerror(-lrc));
out:
    free(buf);
    if (memfd >= 0) close(memfd);
    seccomp_release(ctx);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Parent-side helpers.
 */

/* Reads up to cap-1 bytes of a (possibly size-less procfs/cgroupfs) file. 0 or errno. */
static int read_small_file(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno;
    size_t got = 0;
    int err = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return err;
}

static int write_text_file(const char *path, const char *text)
{
    return child_write_file(path, text); /* same code; safe in the parent too */
}

/* 1 if word appears as a whitespace-separated token of list ("cpuset" is not "cpu"). */
static int has_word(const char *list, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += len) {
        int starts = p == list || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '\t';
        char end = p[len];
        if (starts && (end == '\0' || end == ' ' || end == '\n' || end == '\t')) return 1;
    }
    return 0;
}

static int valid_job_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > SANDBOX_JOB_NAME_MAX) return 0;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

static int sigchld_is_ignored(void)
{
    struct sigaction current;
    if (sigaction(SIGCHLD, NULL, &current) != 0) return 0;
    return current.sa_handler == SIG_IGN || (current.sa_flags & SA_NOCLDWAIT);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits (blocking) for a child we forked; returns its status or -1. */
static int wait_child(pid_t pid)
{
    int status = 0;
    for (;;) {
        if (waitpid(pid, &status, 0) == pid) return status;
        if (errno != EINTR) return -1;
    }
}

/* Kills every process in a cgroup leaf: cgroup.kill (Linux 5.14+), else one by one. */
static void cgroup_kill(const char *leaf)
{
    char path[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/cgroup.kill", leaf) != OP_OK) return;
    if (write_text_file(path, "1") == 0) return;
    if (util_fmt(path, sizeof path, "%s/cgroup.procs", leaf) != OP_OK) return;
    char *pids = malloc(SANDBOX_CGROUP_READ_MAX);
    if (!pids) return;
    /* A few passes: a process may fork while we kill its siblings. */
    for (int pass = 0; pass < 3; pass++) {
        if (read_small_file(path, pids, SANDBOX_CGROUP_READ_MAX) != 0 || pids[0] == '\0') break;
        for (char *p = pids; *p;) {
            char *end = NULL;
            long pid = strtol(p, &end, 10);
            if (end == p) break;
            if (pid > 0) kill((pid_t)pid, SIGKILL);
            p = end;
        }
    }
    free(pids);
}

static void cgroup_read_stats(sandbox_run *run)
{
    char path[PATH_MAX];
    char text[4096];
    if (util_fmt(path, sizeof path, "%s/cpu.stat", run->cgroup_leaf) == OP_OK &&
        read_small_file(path, text, sizeof text) == 0) {
        const char *usage = strstr(text, "usage_usec ");
        if (usage) run->cgroup_cpu_seconds = strtod(usage + strlen("usage_usec "), NULL) / 1e6;
    }
    if (util_fmt(path, sizeof path, "%s/memory.peak", run->cgroup_leaf) == OP_OK &&
        read_small_file(path, text, sizeof text) == 0)
        run->cgroup_peak_bytes = strtoll(text, NULL, 10);
}

static void cgroup_remove_leaf(const char *leaf)
{
    for (int i = 0; i < SANDBOX_RMDIR_TRIES; i++) {
        if (rmdir(leaf) == 0 || errno == ENOENT) return;
        if (errno != EBUSY) break;
        cgroup_kill(leaf);
        sleep_ms(2);
    }
    log_warn("sandbox", "cannot remove cgroup %s: %s", leaf, strerror(errno));
}

/*
 * Creates <cgroup_dir>/<job_name> with the limits written and opens its
 * cgroup.procs for the child. Limits left at 0 are not written: a fresh
 * leaf already has "max". OP_ESYS on failure (logged, leaf removed).
 */
static int cgroup_prepare(const sandbox_spec *spec, char **leaf_out, int *procs_fd_out)
{
    char leaf[PATH_MAX];
    char path[PATH_MAX];
    char value[64];
    const char *what = "mkdir";
    if (util_fmt(leaf, sizeof leaf, "%s/%s", spec->cgroup_dir, spec->job_name) != OP_OK)
        return OP_EINVAL;
    if (mkdir(leaf, 0755) != 0) {
        /* A leaf left by a crashed run can be reused once it is empty. */
        if (errno != EEXIST || rmdir(leaf) != 0 || mkdir(leaf, 0755) != 0) goto fail_nodir;
    }
    if (spec->limits.cpu_cores > 0) {
        double quota = spec->limits.cpu_cores * SANDBOX_CPU_PERIOD_US;
        int64_t quota_us = quota < 1000 ? 1000 : (quota > 1e15 ? (int64_t)1e15 : (int64_t)quota);
        what = "cpu.max";
        if (util_fmt(path, sizeof path, "%s/cpu.max", leaf) != OP_OK) goto fail;
        util_fmt(value, sizeof value, "%lld %d", (long long)quota_us, SANDBOX_CPU_PERIOD_US);
        if ((errno = write_text_file(path, value)) != 0) goto fail;
    }
    if (spec->limits.memory_bytes > 0) {
        what = "memory.max";
        if (util_fmt(path, sizeof path, "%s/memory.max", leaf) != OP_OK) goto fail;
        util_fmt(value, sizeof value, "%lld", (long long)spec->limits.memory_bytes);
        if ((errno = write_text_file(path, value)) != 0) goto fail;
        /* Without this the job could exceed memory.max by swapping; absent without swap. */
        if (util_fmt(path, sizeof path, "%s/memory.swap.max", leaf) == OP_OK)
            write_text_file(path, "0");
    }
    if (spec->limits.processes > 0 && util_fmt(path, sizeof path, "%s/pids.max", leaf) == OP_OK &&
        access(path, F_OK) == 0) {
        what = "pids.max";
        util_fmt(value, sizeof value, "%lld", (long long)spec->limits.processes);
        if ((errno = write_text_file(path, value)) != 0) goto fail;
    }
    what = "cgroup.procs";
    if (util_fmt(path, sizeof path, "%s/cgroup.procs", leaf) != OP_OK) goto fail;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) goto fail;
    *leaf_out = strdup(leaf);
    if (!*leaf_out) {
        close(fd);
        rmdir(leaf);
        return OP_ENOMEM;
    }
    *procs_fd_out = fd;
    return OP_OK;
fail : {
    int saved = errno;
    rmdir(leaf);
    errno = saved;
}
fail_nodir:
    log_error("sandbox", "cgroup %s: %s: %s", leaf, what, strerror(errno));
    return OP_ESYS;
}

/* Creates a fresh output file: unlinked first so that a FIFO or symlink left in workdir cannot
 * redirect it. Returns the fd or -1. */
static int open_output(const char *workdir, const char *name)
{
    char path[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/%s", workdir, name) != OP_OK) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) return -1;
    return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static int spec_valid(const sandbox_spec *spec)
{
    const sandbox_limits *lim = &spec->limits;
    if (!spec->workdir || !spec->workdir[0]) return 0;
    if (!spec->argv || !spec->argv[0] || !spec->argv[0][0]) return 0;
    if (lim->cpu_seconds < 0 || lim->memory_bytes < 0 || lim->open_files < 0 ||
        lim->output_bytes < 0 || lim->wall_ms < 0 || lim->processes < 0)
        return 0;
    if (!isfinite(lim->cpu_cores) || lim->cpu_cores < 0) return 0;
    if (spec->cgroup_dir && (!spec->job_name || !valid_job_name(spec->job_name))) return 0;
    return 1;
}

static void plan_add_limit(child_plan *plan, int resource, int64_t soft, int64_t hard)
{
    child_limit *limit = &plan->limits[plan->limit_count++];
    limit->resource = resource;
    limit->soft = (rlim_t)soft;
    limit->hard = (rlim_t)hard;
}

static void run_release(sandbox_run *run)
{
    if (run->out_fd >= 0) close(run->out_fd);
    if (run->err_fd >= 0) close(run->err_fd);
    free(run->cgroup_leaf);
    free(run);
}

int sandbox_start(const sandbox_spec *spec, sandbox_run **out)
{
    int rc = OP_ESYS;
    sandbox_run *run = NULL;
    char *workdir = NULL;
    char *env_home = NULL;
    char *env_tmpdir = NULL;
    int report_pipe[2] = {-1, -1};
    int null_fd = -1;
    int procs_fd = -1;
    struct sock_fprog prog = {0, NULL};
    child_plan plan;
    memset(&plan, 0, sizeof plan);

    if (!out) return OP_EINVAL;
    *out = NULL;
    if (!spec || !spec_valid(spec)) {
        log_warn("sandbox", "refusing invalid spec");
        return OP_EINVAL;
    }
    if (sigchld_is_ignored()) {
        log_error("sandbox", "SIGCHLD is ignored: jobs could not be waited for");
        return OP_ESYS;
    }
    workdir = realpath(spec->workdir, NULL);
    struct stat st;
    if (!workdir || stat(workdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_warn("sandbox", "workdir %s: %s", spec->workdir,
                 workdir ? "not a directory" : strerror(errno));
        free(workdir);
        return OP_EINVAL;
    }

    run = calloc(1, sizeof *run);
    if (!run) {
        rc = OP_ENOMEM;
        goto fail;
    }
    run->pid = -1;
    run->out_fd = -1;
    run->err_fd = -1;
    run->wall_limit_ms = spec->limits.wall_ms;
    run->output_bytes =
        spec->limits.output_bytes > 0 ? spec->limits.output_bytes : SANDBOX_DEFAULT_OUTPUT_BYTES;

    size_t home_len = strlen("HOME=") + strlen(workdir) + 1;
    size_t tmp_len = strlen("TMPDIR=") + strlen(workdir) + 1;
    env_home = malloc(home_len);
    env_tmpdir = malloc(tmp_len);
    if (!env_home || !env_tmpdir) {
        rc = OP_ENOMEM;
        goto fail;
    }
    util_fmt(env_home, home_len, "HOME=%s", workdir);
    util_fmt(env_tmpdir, tmp_len, "TMPDIR=%s", workdir);
    char *envp[5 + SANDBOX_MAX_EXTRA_ENV] = {SANDBOX_CHILD_PATH, env_home, "LANG=C", env_tmpdir};
    for (int e = 0; spec->extra_env && spec->extra_env[e]; e++) {
        if (e == SANDBOX_MAX_EXTRA_ENV || strncmp(spec->extra_env[e], "OUTPOST_", 8) != 0 ||
            !strchr(spec->extra_env[e], '=')) {
            rc = OP_EINVAL;
            goto fail;
        }
        envp[4 + e] = (char *)spec->extra_env[e];
    }

    run->out_fd = open_output(workdir, ".stdout");
    if (run->out_fd < 0) {
        log_error("sandbox", "creating %s/.stdout: %s", workdir, strerror(errno));
        goto fail;
    }
    run->err_fd = open_output(workdir, ".stderr");
    if (run->err_fd < 0) {
        log_error("sandbox", "creating %s/.stderr: %s", workdir, strerror(errno));
        goto fail;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || pipe2(report_pipe, O_CLOEXEC) != 0) {
        log_error("sandbox", "opening /dev/null or pipe: %s", strerror(errno));
        goto fail;
    }
    if (spec->use_seccomp) {
        rc = seccomp_build(&prog);
        if (rc != OP_OK) goto fail;
    }
    if (spec->cgroup_dir) {
        rc = cgroup_prepare(spec, &run->cgroup_leaf, &procs_fd);
        if (rc != OP_OK) goto fail;
    }

    plan.parent_pid = getpid();
    plan.report_fd = report_pipe[1];
    plan.null_fd = null_fd;
    plan.out_fd = run->out_fd;
    plan.err_fd = run->err_fd;
    plan.cgroup_procs_fd = procs_fd;
    plan.workdir = workdir;
    plan.argv = spec->argv;
    plan.envp = envp;
    plan.use_netns = spec->use_netns;
    plan.seccomp_prog = prog.filter ? &prog : NULL;
    util_fmt(plan.uid_map, sizeof plan.uid_map, "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    util_fmt(plan.gid_map, sizeof plan.gid_map, "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    const sandbox_limits *lim = &spec->limits;
    if (lim->cpu_seconds > 0) /* SIGXCPU at the soft limit, SIGKILL one second later */
        plan_add_limit(&plan, RLIMIT_CPU, lim->cpu_seconds, lim->cpu_seconds + 1);
    if (lim->memory_bytes > 0)
        plan_add_limit(&plan, RLIMIT_AS, lim->memory_bytes, lim->memory_bytes);
    int64_t open_files = lim->open_files > 0 ? lim->open_files : SANDBOX_DEFAULT_OPEN_FILES;
    plan_add_limit(&plan, RLIMIT_NOFILE, open_files, open_files);
    plan_add_limit(&plan, RLIMIT_FSIZE, run->output_bytes, run->output_bytes);
    if (lim->processes > 0) plan_add_limit(&plan, RLIMIT_NPROC, lim->processes, lim->processes);
    plan_add_limit(&plan, RLIMIT_CORE, 0, 0);

    /* Block every signal across fork so no handler of ours runs in the child before it resets
     * them; the child unblocks just before exec. */
    sigset_t all, saved_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_mask);
    run->started_ms = os_mono_ms();
    pid_t pid = fork();
    if (pid == 0) child_run(&plan);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    if (pid < 0) {
        log_error("sandbox", "fork: %s", strerror(fork_errno));
        rc = OP_ESYS;
        goto fail;
    }
    run->pid = pid;
    /* Also from this side, so that killpg works even before the child ran. EACCES after exec. */
    setpgid(pid, pid);
    close(report_pipe[1]);
    report_pipe[1] = -1;

    child_report report;
    ssize_t n;
    do {
        n = read(report_pipe[0], &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof report) {
        run->child_failed = 1;
        if (report.step == STEP_EXEC)
            util_fmt(run->child_error, sizeof run->child_error, "exec %s: %s", spec->argv[0],
                     strerror(report.err));
        else
            util_fmt(run->child_error, sizeof run->child_error, "%s: %s", step_name(report.step),
                     strerror(report.err));
        log_warn("sandbox", "job pid %d failed before exec: %s", (int)pid, run->child_error);
    } else {
        log_info("sandbox", "started pid %d: %s (netns=%d seccomp=%d cgroup=%s)", (int)pid,
                 spec->argv[0], spec->use_netns ? 1 : 0, spec->use_seccomp ? 1 : 0,
                 run->cgroup_leaf ? run->cgroup_leaf : "-");
    }
    *out = run;
    run = NULL;
    rc = OP_OK;

fail:
    if (report_pipe[0] >= 0) close(report_pipe[0]);
    if (report_pipe[1] >= 0) close(report_pipe[1]);
    if (null_fd >= 0) close(null_fd);
    if (procs_fd >= 0) close(procs_fd);
    free(prog.filter);
    free(env_home);
    free(env_tmpdir);
    free(workdir);
    if (run) {
        if (run->cgroup_leaf) rmdir(run->cgroup_leaf);
        run_release(run);
    }
    return rc;
}

/* Kills whatever is left of the job. Only while the job's pid is still ours (not yet reaped),
 * so the group id cannot belong to anyone else. */
static void kill_tree(sandbox_run *run)
{
    if (!run->reaped && run->pid > 0) killpg(run->pid, SIGKILL);
    if (run->cgroup_leaf) cgroup_kill(run->cgroup_leaf);
}

/* Reads at most cap bytes of a captured output file. OP_OK or OP_ENOMEM. */
static int read_output(int fd, int64_t cap, char **text, size_t *len, int *truncated)
{
    struct stat st;
    int64_t size = 0;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = st.st_size;
    int64_t want = size < cap ? size : cap;
    char *buf = malloc((size_t)want + 1);
    if (!buf) return OP_ENOMEM;
    size_t got = 0;
    while ((int64_t)got < want) {
        ssize_t n = pread(fd, buf + got, (size_t)want - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* the job may have truncated it meanwhile */
        got += (size_t)n;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    /* RLIMIT_FSIZE stops the file at exactly cap, so reaching cap counts as truncated. */
    *truncated = size >= cap;
    return OP_OK;
}

static int fill_result(const sandbox_run *run, sandbox_result *result)
{
    memset(result, 0, sizeof *result);
    result->exit_code = -1;
    if (run->lost) {
        util_fmt(result->error, sizeof result->error, "job status lost: reaped by someone else");
    } else if (WIFEXITED(run->status)) {
        result->exited = 1;
        result->exit_code = WEXITSTATUS(run->status);
    } else if (WIFSIGNALED(run->status)) {
        result->term_signal = WTERMSIG(run->status);
    }
    if (run->child_failed) {
        result->exited = 1;
        result->exit_code = 127;
        result->term_signal = 0;
        memcpy(result->error, run->child_error, sizeof result->error);
    }
    result->killed_wall = run->killed_wall;
    const struct rusage *ru = &run->usage;
    result->cpu_seconds = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
                          (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
    if (run->cgroup_cpu_seconds > result->cpu_seconds)
        result->cpu_seconds = run->cgroup_cpu_seconds;
    result->peak_rss_bytes = (int64_t)ru->ru_maxrss * 1024;
    if (run->cgroup_peak_bytes > result->peak_rss_bytes)
        result->peak_rss_bytes = run->cgroup_peak_bytes;
    result->wall_ms = run->ended_ms - run->started_ms;
    if (read_output(run->out_fd, run->output_bytes, &result->stdout_text, &result->stdout_len,
                    &result->stdout_truncated) != OP_OK ||
        read_output(run->err_fd, run->output_bytes, &result->stderr_text, &result->stderr_len,
                    &result->stderr_truncated) != OP_OK) {
        sandbox_result_clear(result);
        return OP_ENOMEM;
    }
    return OP_OK;
}

/* Reaps the (already exited) job, after killing what is left of its group. */
static void reap(sandbox_run *run, int blocking)
{
    kill_tree(run);
    for (;;) {
        pid_t got = wait4(run->pid, &run->status, blocking ? 0 : WNOHANG, &run->usage);
        if (got == run->pid) break;
        if (got == 0) return; /* cannot happen after WNOWAIT saw it exit; try again next poll */
        if (errno == EINTR) continue;
        log_error("sandbox", "wait4 pid %d: %s", (int)run->pid, strerror(errno));
        run->lost = 1;
        break;
    }
    run->reaped = 1;
    run->ended_ms = os_mono_ms();
    if (run->cgroup_leaf) {
        cgroup_kill(run->cgroup_leaf);
        cgroup_read_stats(run);
    }
}

int sandbox_poll(sandbox_run *run, sandbox_result *result)
{
    if (!run || !result) return OP_EINVAL;
    if (!run->reaped) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        int rc;
        do {
            rc = waitid(P_PID, (id_t)run->pid, &info, WEXITED | WNOHANG | WNOWAIT);
        } while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            log_error("sandbox", "waitid pid %d: %s", (int)run->pid, strerror(errno));
            run->lost = 1;
            run->reaped = 1;
            run->ended_ms = os_mono_ms();
            if (run->cgroup_leaf) cgroup_kill(run->cgroup_leaf);
        } else if (info.si_pid == 0) {
            if (run->wall_limit_ms > 0 && !run->killed_wall &&
                os_mono_ms() - run->started_ms >= run->wall_limit_ms) {
                log_info("sandbox", "pid %d: wall limit %lld ms reached, killing", (int)run->pid,
                         (long long)run->wall_limit_ms);
                run->killed_wall = 1;
                kill_tree(run);
            }
            return 0;
        } else {
            reap(run, 0);
            if (!run->reaped) return 0;
            log_info("sandbox", "pid %d finished: status 0x%x, %lld ms", (int)run->pid,
                     (unsigned)run->status, (long long)(run->ended_ms - run->started_ms));
        }
    }
    int rc = fill_result(run, result);
    if (rc != OP_OK) return rc;
    return run->lost ? OP_ESYS : 1;
}

void sandbox_signal(sandbox_run *run, int sig)
{
    if (!run || run->reaped || run->pid <= 0) return;
    if (killpg(run->pid, sig) != 0 && errno != ESRCH)
        log_warn("sandbox", "killpg %d, signal %d: %s", (int)run->pid, sig, strerror(errno));
    if (sig == SIGKILL && run->cgroup_leaf) cgroup_kill(run->cgroup_leaf);
}

pid_t sandbox_pid(const sandbox_run *run)
{
    return run ? run->pid : -1;
}

void sandbox_free(sandbox_run *run)
{
    if (!run) return;
    if (!run->reaped && run->pid > 0) reap(run, 1);
    if (run->cgroup_leaf) cgroup_remove_leaf(run->cgroup_leaf);
    run_release(run);
}

void sandbox_result_clear(sandbox_result *result)
{
    if (!result) return;
    free(result->stdout_text);
    free(result->stderr_text);
    memset(result, 0, sizeof *result);
}

/* ---------------------------------------------------------------------------
 * Probe.
 */

/* Forks a child that enters a network namespace the way jobs do. */
static int probe_netns(void)
{
    child_plan plan;
    memset(&plan, 0, sizeof plan);
    util_fmt(plan.uid_map, sizeof plan.uid_map, "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    util_fmt(plan.gid_map, sizeof plan.gid_map, "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) _exit(child_enter_netns(&plan) == 0 ? 0 : 1);
    int status = wait_child(pid);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Forks a child that installs the job filter and checks that a denied call is refused. */
static int probe_seccomp(void)
{
    struct sock_fprog prog = {0, NULL};
    if (seccomp_build(&prog) != OP_OK) return 0;
    child_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.seccomp_prog = &prog;
    pid_t pid = fork();
    if (pid == 0) {
        int step = 0;
        if (child_install_seccomp(&plan, &step) != 0) _exit(1);
        /* unshare(0) is a harmless no-op unless the filter refuses it. */
        _exit(syscall(SYS_unshare, 0) == -1 && errno == EPERM ? 0 : 2);
    }
    free(prog.filter);
    if (pid < 0) return 0;
    int status = wait_child(pid);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * A usable cgroup dir is on cgroup2, writable, offers cpu and memory, and
 * hands them to its children (subtree_control; enabled here if missing,
 * which only works when the dir itself holds no processes).
 */
static int probe_cgroup(const char *dir)
{
    char path[PATH_MAX];
    char text[1024];
    struct statfs fs;
    if (!dir) return 0;
    if (statfs(dir, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) return 0;
    if (access(dir, W_OK) != 0) return 0;
    if (util_fmt(path, sizeof path, "%s/cgroup.controllers", dir) != OP_OK ||
        read_small_file(path, text, sizeof text) != 0 || !has_word(text, "cpu") ||
        !has_word(text, "memory"))
        return 0;
    if (util_fmt(path, sizeof path, "%s/cgroup.subtree_control", dir) != OP_OK ||
        read_small_file(path, text, sizeof text) != 0)
        return 0;
    if (!has_word(text, "cpu") || !has_word(text, "memory")) {
        int err = write_text_file(path, "+cpu +memory");
        if (err != 0) {
            log_warn("sandbox", "enabling cpu,memory in %s: %s", path, strerror(err));
            return 0;
        }
        if (read_small_file(path, text, sizeof text) != 0 || !has_word(text, "cpu") ||
            !has_word(text, "memory"))
            return 0;
    }
    return 1;
}

static void append_missing(sandbox_caps *caps, const char *name)
{
    size_t used = strlen(caps->missing);
    util_fmt(caps->missing + used, sizeof caps->missing - used, "%s%s", used ? "," : "", name);
}

void sandbox_probe(const char *cgroup_dir, sandbox_caps *caps)
{
    if (!caps) return;
    memset(caps, 0, sizeof *caps);
    caps->rlimits = 1;
    if (sigchld_is_ignored()) {
        log_error("sandbox", "SIGCHLD is ignored: cannot probe (and cannot run jobs)");
    } else {
        caps->netns = probe_netns();
        caps->seccomp = probe_seccomp();
    }
    caps->cgroup = probe_cgroup(cgroup_dir);
    if (!caps->netns) append_missing(caps, "netns");
    if (!caps->seccomp) append_missing(caps, "seccomp");
    if (!caps->cgroup) append_missing(caps, "cgroup");
    log_info("sandbox", "probe: netns=%d seccomp=%d cgroup=%d (%s) missing=\"%s\"", caps->netns,
             caps->seccomp, caps->cgroup, cgroup_dir ? cgroup_dir : "no cgroup dir", caps->missing);
}
