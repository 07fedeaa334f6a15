/*
 * sandbox_child: the job's side of the fork. It may be a fork of a
 * multithreaded process, so from here to exec it makes only
 * async-signal-safe system calls on the plan the parent prepared (no
 * malloc, no stdio, no libseccomp). A failure is written as a small report
 * to the close-on-exec pipe and the child exits 127.
 */
#include "io/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h> /* CLONE_* without _GNU_SOURCE sched.h wrappers; unshare via syscall() */
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

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
int sandbox__write_file(const char *path, const char *text)
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
int sandbox__enter_netns(const child_plan *plan)
{
    if (syscall(SYS_unshare, CLONE_NEWNET) == 0) return 0;
    if (syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
    int err = sandbox__write_file("/proc/self/setgroups", "deny");
    if (err != 0 && err != ENOENT) return err;
    err = sandbox__write_file("/proc/self/uid_map", plan->uid_map);
    if (err != 0) return err;
    return sandbox__write_file("/proc/self/gid_map", plan->gid_map);
}

int sandbox__install_seccomp(const child_plan *plan, int *step)
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

void sandbox__child_run(child_plan *plan)
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
        err = sandbox__enter_netns(plan);
        if (err != 0) child_fail(plan, STEP_NETNS, err);
    }

    /* execvp searches the PATH of the current environment, so switch it first. */
    environ = plan->envp;

    if (plan->seccomp_prog) {
        int step = STEP_SECCOMP;
        err = sandbox__install_seccomp(plan, &step);
        if (err != 0) child_fail(plan, step, err);
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    execvp(plan->argv[0], plan->argv);
    child_fail(plan, STEP_EXEC, errno);
}
