/*
 * sandbox internals, shared by the sandbox's files:
 *   sandbox.c          the parent: sandbox_start prepares a plan and forks,
 *                      sandbox_poll waits and reaps, sandbox_probe;
 *   sandbox_child.c    the child between fork and exec (async-signal-safe
 *                      system calls only, on the prepared plan);
 *   sandbox_seccomp.c  the seccomp program, built in the parent as raw BPF;
 *   sandbox_cgroup.c   the job's cgroup v2 leaf: limits, kill, accounting,
 *                      removal, and the probe of a delegated cgroup dir;
 *   sandbox_root.c     isolation, parent side: the list of mounts of the
 *                      job's minimal root, the work dir handed to the job's
 *                      uid, the work dir quota's measure;
 *   sandbox_ns.c       isolation, child side: user namespace maps, the
 *                      minimal root built and entered, the job's init, the
 *                      drop to the job's uid without capabilities.
 */
#ifndef OUTPOST_SANDBOX_INT_H
#define OUTPOST_SANDBOX_INT_H

#include "io/sandbox.h"

#include <limits.h>
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
#define SANDBOX_DEFAULT_DISK_BYTES (1024LL * 1024 * 1024)
#define SANDBOX_MAX_MOUNTS 48
#define SANDBOX_ROOT_TMPFS "mode=0755,size=4m"     /* holds only mount points and /dev's nodes */
#define SANDBOX_QUOTA_MAX_ENTRIES 100000           /* a work dir with more entries is over quota */
#define SANDBOX_SHM_MAX_BYTES (64LL * 1024 * 1024) /* an isolated job's /dev/shm */
#define SANDBOX_PROBE_ID 65534u /* the probe's unprivileged uid and gid (nobody) */

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
    STEP_USERNS,
    STEP_MOUNTS,
    STEP_CREDS,
    STEP_FORK,
    STEP_DONE, /* not a failure: the init's report of the job's wait status (in err) */
};

/* What the isolated child mounts, in order, relative to its new root. */
enum child_mount_kind {
    MOUNT_BIND_RO,  /* a host directory or file, read-only */
    MOUNT_BIND_RW,  /* the work dir */
    MOUNT_BIND_DEV, /* a device node of the host's /dev */
    MOUNT_SYMLINK,  /* src is the link's target (merged /usr: /bin -> usr/bin) */
    MOUNT_TMPFS,    /* data: the tmpfs options */
    MOUNT_PROC,     /* the PID namespace's own /proc; skipped where the kernel refuses it */
};

typedef struct child_mount {
    int kind;
    int is_dir;         /* binds: the mount point is a directory, else an empty file */
    char src[PATH_MAX]; /* binds: "/oldroot/<host path>"; symlinks: the target */
    char dst[PATH_MAX]; /* relative to the new root, e.g. "usr" */
    char data[64];      /* tmpfs options */
} child_mount;

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
    /* isolation: the init (this child) keeps status_fd to report the job's status */
    int isolation;
    int userns;
    int status_fd;
    uint32_t job_uid, job_gid;
    const child_mount *mounts;
    int mount_count;
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
    int report_fd;      /* the child's report of a failure before exec, read after the reaping */
    char program[128];  /* argv[0], for that report */
    int status_fd;      /* isolation: the init's report of the job's status, read after reaping */
    char *quota_dir;    /* isolation: the work dir whose usage is checked, NULL otherwise */
    int64_t disk_bytes; /* its quota */
    int64_t quota_checked_ms;
    int killed_quota;
    int isolated; /* own PID namespace: run->pid is its init */
};

/* ---- the child (sandbox_child.c) ---- */

/* Reports the failed step to the parent on the report pipe and exits 127. */
void sandbox__child_fail(const child_plan *plan, int step, int err) __attribute__((noreturn));
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
/*
 * Stops (stop=1) or continues (0) every process of the job, not only its
 * process group (sandbox_pause.c). 0, or -1 when only the process group can
 * be reached (no cgroup leaf, no PID namespace).
 */
int sandbox__pause(sandbox_run *run, int stop);

/* ---- isolation, child side (sandbox_ns.c) ---- */

/*
 * In the freshly cloned init: writes the user namespace maps (when userns),
 * builds the minimal root from plan->mounts, pivots into it and chdirs to the
 * work dir. 0 or an errno value with the failed step in *step.
 */
int sandbox__ns_enter(const child_plan *plan, int *step);
/*
 * Empties the capability bounding and ambient sets and, as root, becomes
 * plan->job_uid/job_gid without supplementary groups. 0 or an errno value.
 */
int sandbox__drop_to_job(const child_plan *plan);
/*
 * The init: forks the job (which runs job_main, never returning), reaps
 * every process of the namespace until the job ends, reports its wait
 * status on plan->status_fd and exits with it (128 + signal when killed).
 */
void sandbox__init_run(child_plan *plan, void (*job_main)(child_plan *)) __attribute__((noreturn));
/* clone() with namespace flags and SIGCHLD, fork-like (same stack). The pid, 0 in the child. */
pid_t sandbox__clone(unsigned long flags);

/* ---- isolation, parent side (sandbox_root.c) ---- */

/*
 * The mounts of the minimal root: system dirs, the /etc entries a program
 * needs, ro_paths, the work dir (NULL: none, for the probe) at /work, /tmp
 * of tmp_bytes, /dev, /proc. *out is malloc'd (the caller frees).
 * OP_OK, OP_ENOMEM, OP_EINVAL (a path too long or not absolute).
 */
int sandbox__root_plan(const char *workdir, const char *const *ro_paths, int64_t tmp_bytes,
                       child_mount **out, int *count);
/* Hands the work dir and its top-level entries to uid:gid (links not followed). OP_OK, OP_ESYS. */
int sandbox__give_workdir(const char *workdir, uint32_t uid, uint32_t gid);
/*
 * Bytes the tree under dir takes (allocated blocks, links not followed), or
 * -1 when it cannot be measured or holds more than SANDBOX_QUOTA_MAX_ENTRIES
 * entries (both count as over quota).
 */
int64_t sandbox__dir_usage(const char *dir);

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
