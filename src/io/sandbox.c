/*
 * sandbox: one exec job as a child process under limits (see sandbox.h).
 *
 * Shape of a run: sandbox_start() prepares everything that needs memory or
 * formatting in the parent (resolved work directory, environment, output
 * files, cgroup leaf, the seccomp program as raw BPF, with isolation the
 * job's root), then forks (with isolation: clones into new namespaces). The
 * child (sandbox_child.c, sandbox_ns.c) only makes system calls on that
 * prepared plan (it may be a fork of a multithreaded process, so nothing
 * that could take a lock: no malloc, no stdio, no libseccomp) and execs. A
 * failure before exec is written as a small fixed-size report to a
 * close-on-exec pipe, which the parent reads after reaping the job: it holds
 * the report or nothing by then, so sandbox_start returns without waiting for
 * the child's setup.
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
#include "io/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *step_name(int step)
{
    static const char *names[] = {
        "moving descriptors",
        "setpgid",
        "PR_SET_PDEATHSIG",
        "parent exited",
        "joining cgroup",
        "chdir to workdir",
        "redirecting stdio",
        "setrlimit",
        "network namespace",
        "PR_SET_NO_NEW_PRIVS",
        "seccomp filter",
        "exec",
        "user namespace maps",
        "building the job's root",
        "dropping to the job's uid",
        "forking the job",
    };
    if (step < 0 || (size_t)step >= sizeof names / sizeof names[0]) return "setup";
    return names[step];
}

/* ---------------------------------------------------------------------------
 * Parent-side helpers.
 */

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
/* Waits (blocking) for a child we forked; returns its status or -1. */
static int wait_child(pid_t pid)
{
    int status = 0;
    for (;;) {
        if (waitpid(pid, &status, 0) == pid) return status;
        if (errno != EINTR) return -1;
    }
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
        lim->output_bytes < 0 || lim->wall_ms < 0 || lim->processes < 0 || lim->disk_bytes < 0)
        return 0;
    /* an isolated job never runs as root, inside or outside a user namespace */
    if (spec->use_isolation && (spec->job_uid == 0 || spec->job_gid == 0)) return 0;
    for (int i = 0; spec->ro_paths && spec->ro_paths[i]; i++)
        if (i == SANDBOX_MAX_RO_PATHS || spec->ro_paths[i][0] != '/') return 0;
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
    if (run->status_fd >= 0) close(run->status_fd);
    if (run->report_fd >= 0) close(run->report_fd);
    free(run->cgroup_leaf);
    free(run->quota_dir);
    free(run);
}

/* What sandbox_start prepares before the fork; start_release frees it whatever happened. */
typedef struct start_prep {
    char *workdir; /* resolved */
    char *env_home, *env_tmpdir;
    char *envp[5 + SANDBOX_MAX_EXTRA_ENV];
    int report_pipe[2];
    int status_pipe[2]; /* isolation: the init's report of the job's status */
    int null_fd, procs_fd;
    child_mount *mounts; /* isolation: the job's root */
    int mount_count;
    struct sock_fprog prog;
    child_plan plan;
} start_prep;

/* The spec is usable and the job can be waited for. OP_OK, OP_EINVAL, OP_ESYS (logged). */
static int check_start(const sandbox_spec *spec)
{
    if (!spec || !spec_valid(spec)) {
        log_warn("sandbox", "refusing invalid spec");
        return OP_EINVAL;
    }
    if (sigchld_is_ignored()) {
        log_error("sandbox", "SIGCHLD is ignored: jobs could not be waited for");
        return OP_ESYS;
    }
    return OP_OK;
}

/* The work directory, resolved (the child chdirs there; HOME and TMPDIR point there). */
static int resolve_workdir(const sandbox_spec *spec, char **workdir)
{
    *workdir = realpath(spec->workdir, NULL);
    struct stat st;
    if (!*workdir || stat(*workdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_warn("sandbox", "workdir %s: %s", spec->workdir,
                 *workdir ? "not a directory" : strerror(errno));
        free(*workdir);
        *workdir = NULL;
        return OP_EINVAL;
    }
    return OP_OK;
}

static sandbox_run *run_new(const sandbox_spec *spec)
{
    sandbox_run *run = calloc(1, sizeof *run);
    if (!run) return NULL;
    run->pid = -1;
    run->out_fd = -1;
    run->err_fd = -1;
    run->status_fd = -1;
    run->report_fd = -1;
    run->wall_limit_ms = spec->limits.wall_ms;
    run->disk_bytes =
        spec->limits.disk_bytes > 0 ? spec->limits.disk_bytes : SANDBOX_DEFAULT_DISK_BYTES;
    run->output_bytes =
        spec->limits.output_bytes > 0 ? spec->limits.output_bytes : SANDBOX_DEFAULT_OUTPUT_BYTES;
    return run;
}

/* The minimal environment: PATH, HOME, LANG, TMPDIR and the spec's OUTPOST_* extras. */
static int prepare_env(start_prep *prep, const sandbox_spec *spec)
{
    size_t home_len = strlen("HOME=") + strlen(prep->workdir) + 1;
    size_t tmp_len = strlen("TMPDIR=") + strlen(prep->workdir) + 1;
    prep->env_home = malloc(home_len);
    prep->env_tmpdir = malloc(tmp_len);
    if (!prep->env_home || !prep->env_tmpdir) return OP_ENOMEM;
    util_fmt(prep->env_home, home_len, "HOME=%s", prep->workdir);
    util_fmt(prep->env_tmpdir, tmp_len, "TMPDIR=%s", prep->workdir);
    prep->envp[0] = SANDBOX_CHILD_PATH;
    prep->envp[1] = prep->env_home;
    prep->envp[2] = "LANG=C";
    prep->envp[3] = prep->env_tmpdir;
    for (int e = 0; spec->extra_env && spec->extra_env[e]; e++) {
        if (e == SANDBOX_MAX_EXTRA_ENV || strncmp(spec->extra_env[e], "OUTPOST_", 8) != 0 ||
            !strchr(spec->extra_env[e], '='))
            return OP_EINVAL;
        prep->envp[4 + e] = (char *)spec->extra_env[e];
    }
    return OP_OK;
}

/*
 * Isolation: the job's root, the status pipe, the work dir handed to the
 * job's uid (as root; in a user namespace the agent's own uid is the job's)
 * and remembered for the quota. OP_OK, OP_ESYS (logged), OP_ENOMEM, OP_EINVAL.
 */
static int prepare_isolation(start_prep *prep, const sandbox_spec *spec, sandbox_run *run)
{
    int rc = sandbox__root_plan(prep->workdir, spec->ro_paths, run->disk_bytes, &prep->mounts,
                                &prep->mount_count);
    if (rc != OP_OK) return rc;
    if (pipe2(prep->status_pipe, O_CLOEXEC) != 0) {
        log_error("sandbox", "pipe: %s", strerror(errno));
        return OP_ESYS;
    }
    if (!spec->use_userns && sandbox__give_workdir(prep->workdir, spec->job_uid, spec->job_gid))
        return OP_ESYS;
    run->quota_dir = strdup(prep->workdir);
    return run->quota_dir ? OP_OK : OP_ENOMEM;
}

/*
 * The descriptors and the confinement the child will use: the output files,
 * /dev/null, the report pipe, the seccomp program, the cgroup leaf. OP_OK,
 * OP_ESYS (logged), OP_ENOMEM, OP_EINVAL.
 */
static int prepare_confinement(start_prep *prep, const sandbox_spec *spec, sandbox_run *run)
{
    run->out_fd = open_output(prep->workdir, ".stdout");
    if (run->out_fd < 0) {
        log_error("sandbox", "creating %s/.stdout: %s", prep->workdir, strerror(errno));
        return OP_ESYS;
    }
    run->err_fd = open_output(prep->workdir, ".stderr");
    if (run->err_fd < 0) {
        log_error("sandbox", "creating %s/.stderr: %s", prep->workdir, strerror(errno));
        return OP_ESYS;
    }
    prep->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (prep->null_fd < 0 || pipe2(prep->report_pipe, O_CLOEXEC) != 0) {
        log_error("sandbox", "opening /dev/null or pipe: %s", strerror(errno));
        return OP_ESYS;
    }
    int rc = OP_OK;
    if (spec->use_seccomp && (rc = sandbox__seccomp_build(&prep->prog)) != OP_OK) return rc;
    if (spec->use_isolation && (rc = prepare_isolation(prep, spec, run)) != OP_OK) return rc;
    if (spec->cgroup_dir) rc = sandbox__cgroup_prepare(spec, &run->cgroup_leaf, &prep->procs_fd);
    return rc;
}

/* The plan the child follows: descriptors, work directory, argv, environment, limits. */
static void plan_fill(start_prep *prep, const sandbox_spec *spec, const sandbox_run *run)
{
    child_plan *plan = &prep->plan;
    plan->parent_pid = getpid();
    plan->report_fd = prep->report_pipe[1];
    plan->null_fd = prep->null_fd;
    plan->out_fd = run->out_fd;
    plan->err_fd = run->err_fd;
    plan->cgroup_procs_fd = prep->procs_fd;
    plan->workdir = prep->workdir;
    plan->argv = spec->argv;
    plan->envp = prep->envp;
    plan->use_netns = spec->use_netns;
    plan->seccomp_prog = prep->prog.filter ? &prep->prog : NULL;
    plan->isolation = spec->use_isolation;
    plan->userns = spec->use_isolation && spec->use_userns;
    plan->status_fd = prep->status_pipe[1];
    plan->job_uid = spec->job_uid;
    plan->job_gid = spec->job_gid;
    plan->mounts = prep->mounts;
    plan->mount_count = prep->mount_count;
    /* in a job's user namespace the agent's uid is the job's; without isolation it is itself */
    unsigned inner_uid = plan->userns ? spec->job_uid : (unsigned)geteuid();
    unsigned inner_gid = plan->userns ? spec->job_gid : (unsigned)getegid();
    util_fmt(plan->uid_map, sizeof plan->uid_map, "%u %u 1\n", inner_uid, (unsigned)geteuid());
    util_fmt(plan->gid_map, sizeof plan->gid_map, "%u %u 1\n", inner_gid, (unsigned)getegid());
    const sandbox_limits *lim = &spec->limits;
    if (lim->cpu_seconds > 0) /* SIGXCPU at the soft limit, SIGKILL one second later */
        plan_add_limit(plan, RLIMIT_CPU, lim->cpu_seconds, lim->cpu_seconds + 1);
    if (lim->memory_bytes > 0)
        plan_add_limit(plan, RLIMIT_AS, lim->memory_bytes, lim->memory_bytes);
    int64_t open_files = lim->open_files > 0 ? lim->open_files : SANDBOX_DEFAULT_OPEN_FILES;
    plan_add_limit(plan, RLIMIT_NOFILE, open_files, open_files);
    plan_add_limit(plan, RLIMIT_FSIZE, run->output_bytes, run->output_bytes);
    if (lim->processes > 0) plan_add_limit(plan, RLIMIT_NPROC, lim->processes, lim->processes);
    plan_add_limit(plan, RLIMIT_CORE, 0, 0);
}

/*
 * The child's report of a failure before exec, read once the job has been
 * reaped (the pipe is close-on-exec, so it holds a report or nothing and
 * never makes us wait): the agent's loop does not stall while the child sets
 * up (with isolation, its whole root).
 */
static void read_child_report(sandbox_run *run)
{
    if (run->report_fd < 0) return;
    child_report report;
    ssize_t n;
    do {
        n = read(run->report_fd, &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    close(run->report_fd);
    run->report_fd = -1;
    if (n != (ssize_t)sizeof report) return;
    run->child_failed = 1;
    if (report.step == STEP_EXEC)
        util_fmt(run->child_error, sizeof run->child_error, "exec %s: %s", run->program,
                 strerror(report.err));
    else
        util_fmt(run->child_error, sizeof run->child_error, "%s: %s", step_name(report.step),
                 strerror(report.err));
    log_warn("sandbox", "job pid %d failed before exec: %s", (int)run->pid, run->child_error);
}

/* The namespaces an isolated job's init is cloned into. */
static unsigned long isolation_flags(const sandbox_spec *spec)
{
    unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    if (spec->use_userns) flags |= CLONE_NEWUSER;
    if (spec->use_netns) flags |= CLONE_NEWNET;
    return flags;
}

/* Forks the child on the prepared plan. OP_OK (also when the child failed before exec), OP_ESYS. */
static int fork_child(start_prep *prep, const sandbox_spec *spec, sandbox_run *run)
{
    /* Block every signal across fork so no handler of ours runs in the child before it resets
     * them; the child unblocks just before exec. */
    sigset_t all, saved_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_mask);
    run->started_ms = os_mono_ms();
    pid_t pid = spec->use_isolation ? sandbox__clone(isolation_flags(spec)) : fork();
    if (pid == 0) sandbox__child_run(&prep->plan);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    if (pid < 0) {
        log_error("sandbox", "fork: %s", strerror(fork_errno));
        return OP_ESYS;
    }
    run->pid = pid;
    run->isolated = spec->use_isolation ? 1 : 0;
    /* Also from this side, so that killpg works even before the child ran. EACCES after exec. */
    setpgid(pid, pid);
    close(prep->report_pipe[1]);
    prep->report_pipe[1] = -1;
    fcntl(prep->report_pipe[0], F_SETFL, O_NONBLOCK);
    run->report_fd = prep->report_pipe[0];
    prep->report_pipe[0] = -1;
    if (prep->status_pipe[0] >= 0) { /* read after the reaping, never waited on */
        close(prep->status_pipe[1]);
        prep->status_pipe[1] = -1;
        fcntl(prep->status_pipe[0], F_SETFL, O_NONBLOCK);
        run->status_fd = prep->status_pipe[0];
        prep->status_pipe[0] = -1;
    }
    util_fmt(run->program, sizeof run->program, "%s", spec->argv[0]);
    log_info("sandbox", "started pid %d: %s (netns=%d seccomp=%d isolation=%d cgroup=%s)",
             (int)run->pid, spec->argv[0], spec->use_netns ? 1 : 0, spec->use_seccomp ? 1 : 0,
             spec->use_isolation ? 1 : 0, run->cgroup_leaf ? run->cgroup_leaf : "-");
    return OP_OK;
}

/* Frees what start prepared, and run unless it was handed to the caller (NULL then). */
static void start_release(start_prep *prep, sandbox_run *run)
{
    if (prep->report_pipe[0] >= 0) close(prep->report_pipe[0]);
    if (prep->report_pipe[1] >= 0) close(prep->report_pipe[1]);
    if (prep->status_pipe[0] >= 0) close(prep->status_pipe[0]);
    if (prep->status_pipe[1] >= 0) close(prep->status_pipe[1]);
    free(prep->mounts);
    if (prep->null_fd >= 0) close(prep->null_fd);
    if (prep->procs_fd >= 0) close(prep->procs_fd);
    free(prep->prog.filter);
    free(prep->env_home);
    free(prep->env_tmpdir);
    free(prep->workdir);
    if (run) {
        if (run->cgroup_leaf) rmdir(run->cgroup_leaf);
        run_release(run);
    }
}

int sandbox_start(const sandbox_spec *spec, sandbox_run **out)
{
    if (!out) return OP_EINVAL;
    *out = NULL;
    int rc = check_start(spec);
    if (rc != OP_OK) return rc;
    start_prep prep;
    memset(&prep, 0, sizeof prep);
    prep.report_pipe[0] = prep.report_pipe[1] = -1;
    prep.status_pipe[0] = prep.status_pipe[1] = -1;
    prep.null_fd = prep.procs_fd = -1;
    if ((rc = resolve_workdir(spec, &prep.workdir)) != OP_OK) return rc;
    sandbox_run *run = run_new(spec);
    if (!run)
        rc = OP_ENOMEM;
    else if ((rc = prepare_env(&prep, spec)) == OP_OK &&
             (rc = prepare_confinement(&prep, spec, run)) == OP_OK) {
        plan_fill(&prep, spec, run);
        rc = fork_child(&prep, spec, run);
    }
    if (rc == OP_OK) {
        *out = run;
        run = NULL;
    }
    start_release(&prep, run);
    return rc;
}

/* Kills whatever is left of the job. Only while the job's pid is still ours (not yet reaped),
 * so the group id cannot belong to anyone else. */
static void kill_tree(sandbox_run *run)
{
    if (!run->reaped && run->pid > 0) killpg(run->pid, SIGKILL);
    if (run->cgroup_leaf) sandbox__cgroup_kill(run->cgroup_leaf);
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
    result->killed_quota = run->killed_quota;
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

/*
 * With isolation the reaped process is the job's init: the job's own wait
 * status, when the init reported it, is the run's (so that a job killed by a
 * signal shows as such, which pid 1 cannot reproduce on itself).
 */
static void read_job_status(sandbox_run *run)
{
    if (run->status_fd < 0 || run->lost) return;
    child_report report;
    ssize_t n;
    do {
        n = read(run->status_fd, &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof report && report.step == STEP_DONE) run->status = report.err;
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
    read_job_status(run);
    if (!run->lost) read_child_report(run);
    if (run->cgroup_leaf) {
        sandbox__cgroup_kill(run->cgroup_leaf);
        sandbox__cgroup_read_stats(run);
    }
}

/*
 * The parent's limits on a running job: wall time, and (isolation) the
 * bytes in its work dir, measured at most every SANDBOX_QUOTA_EVERY_MS.
 */
static void enforce_limits(sandbox_run *run)
{
    int64_t now = os_mono_ms();
    if (run->wall_limit_ms > 0 && !run->killed_wall &&
        now - run->started_ms >= run->wall_limit_ms) {
        log_info("sandbox", "pid %d: wall limit %lld ms reached, killing", (int)run->pid,
                 (long long)run->wall_limit_ms);
        run->killed_wall = 1;
        kill_tree(run);
    }
    if (!run->quota_dir || run->killed_quota ||
        now - run->quota_checked_ms < SANDBOX_QUOTA_EVERY_MS)
        return;
    run->quota_checked_ms = now;
    int64_t used = sandbox__dir_usage(run->quota_dir);
    if (used >= 0 && used <= run->disk_bytes) return;
    log_warn("sandbox", "pid %d: work dir over its quota of %lld bytes (%lld), killing",
             (int)run->pid, (long long)run->disk_bytes, (long long)used);
    run->killed_quota = 1;
    kill_tree(run);
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
            if (run->cgroup_leaf) sandbox__cgroup_kill(run->cgroup_leaf);
        } else if (info.si_pid == 0) {
            enforce_limits(run);
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
    if ((sig == SIGSTOP || sig == SIGCONT) && sandbox__pause(run, sig == SIGSTOP) == 0) return;
    if (killpg(run->pid, sig) != 0 && errno != ESRCH)
        log_warn("sandbox", "killpg %d, signal %d: %s", (int)run->pid, sig, strerror(errno));
    if (sig == SIGKILL && run->cgroup_leaf) sandbox__cgroup_kill(run->cgroup_leaf);
}

pid_t sandbox_pid(const sandbox_run *run)
{
    return run ? run->pid : -1;
}

void sandbox_free(sandbox_run *run)
{
    if (!run) return;
    if (!run->reaped && run->pid > 0) reap(run, 1);
    if (run->cgroup_leaf) sandbox__cgroup_remove_leaf(run->cgroup_leaf);
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
    if (pid == 0) _exit(sandbox__enter_netns(&plan) == 0 ? 0 : 1);
    int status = wait_child(pid);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Forks a child that installs the job filter and checks that a denied call is refused. */
static int probe_seccomp(void)
{
    struct sock_fprog prog = {0, NULL};
    if (sandbox__seccomp_build(&prog) != OP_OK) return 0;
    child_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.seccomp_prog = &prog;
    pid_t pid = fork();
    if (pid == 0) {
        int step = 0;
        if (sandbox__install_seccomp(&plan, &step) != 0) _exit(1);
        /* unshare(0) is a harmless no-op unless the filter refuses it. */
        _exit(syscall(SYS_unshare, 0) == -1 && errno == EPERM ? 0 : 2);
    }
    free(prog.filter);
    if (pid < 0) return 0;
    int status = wait_child(pid);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Clones a child into the namespaces of an isolated job, which builds the
 * job's root (without a work dir) and drops to an unprivileged uid: the
 * real path, so that what the probe reports is what jobs get.
 */
static int probe_isolation(int userns)
{
    child_plan plan;
    memset(&plan, 0, sizeof plan);
    child_mount *mounts = NULL;
    if (sandbox__root_plan(NULL, NULL, 1024 * 1024, &mounts, &plan.mount_count) != OP_OK) return 0;
    plan.mounts = mounts;
    plan.isolation = 1;
    plan.userns = userns;
    plan.workdir = "/";
    plan.job_uid = plan.job_gid = SANDBOX_PROBE_ID;
    util_fmt(plan.uid_map, sizeof plan.uid_map, "%u %u 1\n", SANDBOX_PROBE_ID, (unsigned)geteuid());
    util_fmt(plan.gid_map, sizeof plan.gid_map, "%u %u 1\n", SANDBOX_PROBE_ID, (unsigned)getegid());
    sandbox_spec spec = {.use_userns = userns, .use_netns = 1};
    pid_t pid = sandbox__clone(isolation_flags(&spec));
    if (pid == 0) {
        int step = 0;
        if (sandbox__ns_enter(&plan, &step) != 0) _exit(1);
        if (sandbox__drop_to_job(&plan) != 0) _exit(2);
        _exit(access("/oldroot", F_OK) == 0 || getuid() == 0 ? 3 : 0);
    }
    free(mounts);
    if (pid < 0) return 0;
    int status = wait_child(pid);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void on_sigchld(int sig)
{
    (void)sig;
}

/*
 * A job's end should wake the caller's event loop at once rather than at its
 * next timeout (an isolated job takes a millisecond or two more to start and
 * end, just past the hub's acknowledgement that used to wake the loop): a
 * do-nothing handler makes SIGCHLD interrupt poll()/select() (SA_RESTART
 * keeps other calls going). Only where SIGCHLD is at its default.
 */
static void install_wake_on_exit(void)
{
    struct sigaction current;
    if (sigaction(SIGCHLD, NULL, &current) != 0 || current.sa_handler != SIG_DFL ||
        (current.sa_flags & SA_SIGINFO))
        return;
    struct sigaction wake;
    memset(&wake, 0, sizeof wake);
    wake.sa_handler = on_sigchld;
    sigemptyset(&wake.sa_mask);
    wake.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &wake, NULL);
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
        caps->userns = geteuid() != 0;
        caps->isolation = caps->netns && probe_isolation(caps->userns);
        install_wake_on_exit();
    }
    caps->cgroup = sandbox__probe_cgroup(cgroup_dir);
    if (!caps->netns) append_missing(caps, "netns");
    if (!caps->seccomp) append_missing(caps, "seccomp");
    if (!caps->cgroup) append_missing(caps, "cgroup");
    if (!caps->isolation) append_missing(caps, "isolation");
    log_info("sandbox", "probe: netns=%d seccomp=%d cgroup=%d (%s) isolation=%d%s missing=\"%s\"",
             caps->netns, caps->seccomp, caps->cgroup, cgroup_dir ? cgroup_dir : "no cgroup dir",
             caps->isolation, caps->userns ? " (user namespace)" : "", caps->missing);
}
