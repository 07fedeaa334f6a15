/*
 * sandbox: runs one exec job as a child process under limits, without
 * blocking the caller.
 *
 * Protections, each applied when this machine allows it and reported by
 * sandbox_probe() otherwise:
 *   - own work directory (chdir), minimal environment, own process group,
 *     killed with the parent (PR_SET_PDEATHSIG);
 *   - rlimits: CPU seconds, address space, open files, file size (caps
 *     output files and captured stdout/stderr), processes;
 *   - wall-time limit enforced by the parent (SIGKILL to the group);
 *   - own network namespace with no interfaces (no network);
 *   - seccomp filter denying syscalls a job never needs (mount, ptrace,
 *     kexec, bpf, module loading, namespace changes, ...);
 *   - cgroup v2 leaf with cpu.max and memory.max, when a delegated cgroup
 *     directory is given and writable.
 *
 * The caller owns the work directory (creates it, writes input files into
 * it, removes it). Output capture: stdout and stderr go to files
 * "<workdir>/.stdout" and "<workdir>/.stderr"; sandbox_poll() reads at most
 * limits.output_bytes of each into the result.
 *
 * Caller obligations (clarifications of the contract below):
 *   - SIGCHLD must not be ignored (SIG_IGN / SA_NOCLDWAIT) and nothing else
 *     may reap the job (no waitpid(-1) elsewhere): sandbox_poll() waits for
 *     its own pid only.
 *   - PR_SET_PDEATHSIG fires when the *thread* that called sandbox_start()
 *     exits, so start jobs from a long-lived thread (the agent's main loop).
 *   - The wall-time limit is enforced when sandbox_poll() is called.
 *   - With a cgroup: cgroup_dir's subtree_control must offer cpu and memory
 *     (sandbox_probe enables them when it can), so the agent itself must not
 *     live directly in cgroup_dir (cgroup v2 "no internal processes").
 *
 * Accounting: cpu_seconds and peak_rss_bytes come from wait4(), which covers
 * the job and the descendants it waited for itself; processes killed after
 * the job exits are not counted. With a cgroup leaf, its cpu.stat and
 * memory.peak (whole tree) are used when larger.
 *
 * Containment: without a cgroup, leftover processes are killed through the
 * job's process group, so a process that calls setsid()/setpgid() escapes
 * that; with a cgroup, cgroup.kill catches it.
 */
#ifndef OUTPOST_SANDBOX_H
#define OUTPOST_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sandbox_limits {
    int64_t cpu_seconds;  /* RLIMIT_CPU; 0 = no limit */
    int64_t memory_bytes; /* RLIMIT_AS and cgroup memory.max; 0 = no limit */
    int64_t open_files;   /* RLIMIT_NOFILE; 0 = default 64 */
    int64_t output_bytes; /* RLIMIT_FSIZE and capture cap; 0 = default 1 MiB */
    int64_t wall_ms;      /* killed after this; 0 = no limit */
    int64_t processes;    /* RLIMIT_NPROC; 0 = no limit (NPROC is per-uid, so loose) */
    double cpu_cores;     /* cgroup cpu.max quota in cores; 0 = no limit */
} sandbox_limits;

/* What this machine lets the sandbox do (sandbox_probe fills it). */
typedef struct sandbox_caps {
    int netns;         /* 1 if a new network namespace can be created */
    int seccomp;       /* 1 if a seccomp filter can be installed */
    int cgroup;        /* 1 if cgroup_dir is a writable cgroup v2 dir with cpu+memory */
    int rlimits;       /* always 1 */
    char missing[256]; /* human-readable list of protections that are off, "" if none */
} sandbox_caps;

typedef struct sandbox_spec {
    const char *workdir; /* existing directory; the child chdirs into it */
    char *const *argv;   /* argv[0] is looked up in PATH=/usr/local/bin:/usr/bin:/bin */
    sandbox_limits limits;
    const char *cgroup_dir; /* delegated cgroup v2 parent, or NULL */
    const char *job_name;   /* used to name the cgroup leaf; [A-Za-z0-9_.-] */
    int use_netns;          /* from caps */
    int use_seccomp;        /* from caps */
    /* "NAME=value" entries added to the minimal environment, NULL-terminated, at most
     * SANDBOX_MAX_EXTRA_ENV; NULL for none. Names must start with OUTPOST_. */
    const char *const *extra_env;
} sandbox_spec;

#define SANDBOX_MAX_EXTRA_ENV 4

typedef struct sandbox_result {
    int exited;             /* 1 if the process exited normally */
    int exit_code;          /* exit status when exited, else -1 */
    int term_signal;        /* signal that ended it, or 0 */
    int killed_wall;        /* 1 if the wall-time limit killed it */
    double cpu_seconds;     /* user + system CPU of the job and its children */
    int64_t peak_rss_bytes; /* ru_maxrss of the job's process tree */
    char *stdout_text;      /* malloc'd, at most output_bytes, NUL-terminated */
    size_t stdout_len;
    int stdout_truncated;
    char *stderr_text;
    size_t stderr_len;
    int stderr_truncated;
    int64_t wall_ms; /* from start to reaping */
    char error[256]; /* set when the sandbox itself failed to start the job */
} sandbox_result;

typedef struct sandbox_run sandbox_run;

/* Detects the available protections. cgroup_dir may be NULL. Never fails. */
void sandbox_probe(const char *cgroup_dir, sandbox_caps *caps);

/*
 * Starts the job. On OP_OK *out is a running job the caller must poll until
 * it finishes and then free. Errors: OP_EINVAL (bad spec), OP_ESYS (fork or
 * setup failed; details logged). A failure inside the child before exec
 * (seccomp, chdir, exec not found) is reported as a finished run with
 * exit_code 127 and result.error set.
 */
int sandbox_start(const sandbox_spec *spec, sandbox_run **out);

/*
 * Non-blocking. Returns 0 while running, 1 when finished (result filled;
 * the caller frees it with sandbox_result_clear), or a negative OP_* code.
 * Enforces the wall-time limit.
 * result is only written when returning 1 (or OP_ESYS): it is overwritten
 * without being freed, so clear a previous result first. Polling again after
 * 1 fills it again. OP_ESYS: the job's status was lost (reaped elsewhere);
 * result is filled as for 1 (clear it too), with exit_code -1 and
 * result.error set. OP_ENOMEM: the
 * output could not be read (try again). OP_EINVAL: NULL argument.
 * *_truncated is set when the captured file reached output_bytes (RLIMIT_FSIZE
 * stops it exactly there, so an output of exactly output_bytes counts).
 */
int sandbox_poll(sandbox_run *run, sandbox_result *result);

/* Sends sig to the job's whole process group (SIGTERM for a grace stop, SIGKILL, SIGSTOP, SIGCONT).
 */
void sandbox_signal(sandbox_run *run, int sig);

pid_t sandbox_pid(const sandbox_run *run);

/*
 * Kills (SIGKILL) the job if still running, reaps it, removes its cgroup leaf, frees. NULL ok.
 * Blocks until the killed job is reaped, and up to ~200 ms for the cgroup leaf to empty.
 */
void sandbox_free(sandbox_run *run);

void sandbox_result_clear(sandbox_result *result);

#endif
