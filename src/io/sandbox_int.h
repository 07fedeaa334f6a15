/*
 * sandbox internals, shared by the sandbox's files:
 *   sandbox.c          the parent: sandbox_start prepares a plan and forks,
 *                      sandbox_poll waits and reaps, sandbox_probe;
 *   sandbox_child.c    the child between fork and exec (async-signal-safe
 *                      system calls only, on the prepared plan);
 *   sandbox_seccomp.c  the seccomp program, built in the parent as raw BPF;
 *   sandbox_cgroup.c   the job's cgroup v2 leaf: limits, kill, accounting,
 *                      removal, and the probe of a delegated cgroup dir.
 */
#ifndef OUTPOST_SANDBOX_INT_H
#define OUTPOST_SANDBOX_INT_H

#include "io/sandbox.h"

#include <linux/filter.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

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

/* ---- the child (sandbox_child.c) ---- */

/* Sets the child up on plan and execs; on a failure reports the step to the parent and exits 127.
 */
void sandbox__child_run(child_plan *plan) __attribute__((noreturn));
/*
 * Enters a new, empty network namespace (with a user namespace when not
 * privileged). 0 or an errno value. Also used by the probe.
 */
int sandbox__enter_netns(const child_plan *plan);
/* no_new_privs, then plan's seccomp filter; 0 or an errno value with the failed step in *step. */
int sandbox__install_seccomp(const child_plan *plan, int *step);
/* Writes text to an existing file (procfs, cgroupfs), safe in the child. 0 or an errno value. */
int sandbox__write_file(const char *path, const char *text);

/* ---- the seccomp program (sandbox_seccomp.c) ---- */

/*
 * Builds the filter and exports it as raw BPF into prog (prog->filter is
 * malloc'd; the caller frees it). OP_ESYS on failure (logged), OP_ENOMEM.
 */
int sandbox__seccomp_build(struct sock_fprog *prog);

/* ---- the cgroup leaf (sandbox_cgroup.c) ---- */

/*
 * Creates <cgroup_dir>/<job_name> with the limits written and opens its
 * cgroup.procs for the child. OP_OK, OP_EINVAL (path too long), OP_ENOMEM,
 * OP_ESYS (logged, leaf removed).
 */
int sandbox__cgroup_prepare(const sandbox_spec *spec, char **leaf_out, int *procs_fd_out);
/* Kills every process in a leaf. */
void sandbox__cgroup_kill(const char *leaf);
/* The leaf's cpu.stat usage and memory.peak into run. */
void sandbox__cgroup_read_stats(sandbox_run *run);
/* Removes the leaf, killing what is left, for up to SANDBOX_RMDIR_TRIES x 2 ms. */
void sandbox__cgroup_remove_leaf(const char *leaf);
/* 1 when dir is a writable cgroup v2 dir that hands cpu and memory to its children. */
int sandbox__probe_cgroup(const char *dir);

#endif
