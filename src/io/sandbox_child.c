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
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

void sandbox__child_fail(const child_plan *plan, int step, int err)
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

/* Closes every descriptor above 2 except keep_a and keep_b (-1: none). */
static void child_close_fds_except(int keep_a, int keep_b)
{
    int low = keep_a < keep_b ? keep_a : keep_b, high = keep_a < keep_b ? keep_b : keep_a;
    if (low < 3) low = high; /* only one to keep */
#ifdef SYS_close_range
    int ok = 1;
    if (low > 3 && syscall(SYS_close_range, 3U, (unsigned)low - 1, 0U) != 0) ok = 0;
    if (ok && high > low + 1 &&
        syscall(SYS_close_range, (unsigned)low + 1, (unsigned)high - 1, 0U) != 0)
        ok = 0;
    if (ok && syscall(SYS_close_range, (unsigned)high + 1, ~0U, 0U) == 0) return;
#endif
    struct rlimit rl;
    rlim_t max_fd = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_fd)
        max_fd = rl.rlim_cur;
    for (rlim_t fd = 3; fd < max_fd; fd++)
        if ((int)fd != keep_a && (int)fd != keep_b) close((int)fd);
}

/* The parent's own checks and the plan's rlimits, lowered only: an unprivileged caller cannot
 * raise them, and lower is what we want. */
static void child_set_limits(const child_plan *plan)
{
    for (int i = 0; i < plan->limit_count; i++) {
        const child_limit *want = &plan->limits[i];
        struct rlimit current, next;
        if (getrlimit(want->resource, &current) != 0) sandbox__child_fail(plan, STEP_RLIMIT, errno);
        next.rlim_max = want->hard < current.rlim_max ? want->hard : current.rlim_max;
        next.rlim_cur = want->soft < next.rlim_max ? want->soft : next.rlim_max;
        if (setrlimit(want->resource, &next) != 0) sandbox__child_fail(plan, STEP_RLIMIT, errno);
    }
}

/* The job's last steps: its uid (isolation), no_new_privs and seccomp, signals, exec. */
static void child_exec(child_plan *plan) __attribute__((noreturn));
static void child_exec(child_plan *plan)
{
    int err;
    if (plan->isolation && (err = sandbox__drop_to_job(plan)) != 0)
        sandbox__child_fail(plan, STEP_CREDS, err);
    if (plan->seccomp_prog) {
        int step = STEP_SECCOMP;
        err = sandbox__install_seccomp(plan, &step);
        if (err != 0) sandbox__child_fail(plan, step, err);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(plan->argv[0], plan->argv);
    sandbox__child_fail(plan, STEP_EXEC, errno);
}

/*
 * In a new PID namespace getppid() is 0, so the parent's death before
 * PDEATHSIG was armed shows instead on the report pipe: its only reader was
 * the parent (our copy is closed by now), and a pipe without readers polls
 * POLLERR.
 */
static int child_parent_gone(const child_plan *plan)
{
    if (!plan->isolation) return getppid() != plan->parent_pid;
    struct pollfd p = {.fd = plan->report_fd, .events = 0, .revents = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/* Joins the cgroup leaf: by pid, or "0" (the writer) where our pid is another namespace's. */
static void child_join_cgroup(const child_plan *plan)
{
    if (plan->cgroup_procs_fd < 0) return;
    char pid_text[24] = "0";
    if (!plan->isolation) child_format_u64((uint64_t)getpid(), pid_text);
    size_t len = strlen(pid_text);
    if (write(plan->cgroup_procs_fd, pid_text, len) != (ssize_t)len)
        sandbox__child_fail(plan, STEP_CGROUP, errno ? errno : EIO);
}

void sandbox__child_run(child_plan *plan)
{
    int err = child_lift_fd(&plan->report_fd);
    if (err == 0) err = child_lift_fd(&plan->null_fd);
    if (err == 0) err = child_lift_fd(&plan->out_fd);
    if (err == 0) err = child_lift_fd(&plan->err_fd);
    if (err == 0) err = child_lift_fd(&plan->cgroup_procs_fd);
    if (err == 0) err = child_lift_fd(&plan->status_fd);
    if (err != 0) sandbox__child_fail(plan, STEP_FDS, err);

    if (setpgid(0, 0) != 0) sandbox__child_fail(plan, STEP_PGID, errno);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        sandbox__child_fail(plan, STEP_PDEATHSIG, errno);

    /* All signals are blocked (the parent did it around fork); reset handlers before unblocking. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL); /* EINVAL for reserved */

    child_join_cgroup(plan);
    if (plan->isolation) {
        int step = STEP_MOUNTS;
        if ((err = sandbox__ns_enter(plan, &step)) != 0) sandbox__child_fail(plan, step, err);
    } else if (chdir(plan->workdir) != 0) {
        sandbox__child_fail(plan, STEP_CHDIR, errno);
    }

    if (dup2(plan->null_fd, 0) < 0 || dup2(plan->out_fd, 1) < 0 || dup2(plan->err_fd, 2) < 0)
        sandbox__child_fail(plan, STEP_STDIO, errno);
    child_close_fds_except(plan->report_fd, plan->isolation ? plan->status_fd : -1);
    /* The parent may have died before PDEATHSIG was armed. */
    if (child_parent_gone(plan)) sandbox__child_fail(plan, STEP_PARENT_GONE, ESRCH);
    child_set_limits(plan);

    if (plan->use_netns && !plan->isolation) { /* with isolation the clone made it */
        err = sandbox__enter_netns(plan);
        if (err != 0) sandbox__child_fail(plan, STEP_NETNS, err);
    }

    /* execvp searches the PATH of the current environment, so switch it first. */
    environ = plan->envp;
    if (plan->isolation) sandbox__init_run(plan, child_exec);
    child_exec(plan);
}
