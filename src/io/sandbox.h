/*
 * sandbox: runs one exec job as a child process under limits, without
 * blocking the caller.
 *
 * Protections, each applied when this machine allows it and reported by
 * sandbox_probe() otherwise:
 *   - isolation (spec.use_isolation): the job runs in its own user (when the
 *     agent is not root), PID, mount, IPC and UTS namespaces:
 *       - its own uid/gid (spec.job_uid, one per job slot): as root a real
 *         unprivileged id (setresuid, supplementary groups cleared); when the
 *         agent is not root the id it has inside a user namespace that maps it
 *         to the agent's uid, the only mapping an unprivileged process may make;
 *       - no capabilities: the bounding and ambient sets are emptied and the
 *         job execs as a non-zero uid under NoNewPrivs;
 *       - pid 1 of its namespace is the sandbox's own small init (the job's
 *         parent): when the job ends the init ends and the kernel kills every
 *         process left in the namespace, setsid() or not;
 *       - a minimal root on a tmpfs: /usr, /bin, /sbin, /lib* and a few /etc
 *         entries (ld.so cache and config, alternatives, localtime; no passwd)
 *         read-only, spec.ro_paths read-only at their own paths, the work dir
 *         (at its own path, so HOME and the job's view of it do not change)
 *         and a private size-limited /tmp writable, its own /proc and a /dev
 *         of null, zero, full, random, urandom and a private /dev/shm (at
 *         most 64 MiB, besides the quota); nothing else of the host: the
 *         directories above the work dir are empty, and the agent's data dir,
 *         keys, database, local socket and other jobs' work dirs are not in
 *         the tree at all;
 *       - RLIMIT_NPROC (limits.processes), which is per uid: per-slot uids (as
 *         root) or a user namespace per job (otherwise) make it a per-job limit;
 *       - a quota on the bytes it may write (limits.disk_bytes): /tmp is a tmpfs
 *         of that size, and the work dir (a bind mount of the host directory,
 *         so outputs survive any kind of end) is measured at each poll, at most
 *         every SANDBOX_QUOTA_EVERY_MS, and the job killed when over (with
 *         killed_quota). Why not a tmpfs work dir too: its files die with the
 *         mount namespace, so a job killed for its wall time or after a grace
 *         stop would lose its outputs and checkpoint unless copied out first,
 *         and a tmpfs spends RAM, which cars and pods lack. The price: a
 *         job may pass the quota by what it writes between two measures (each
 *         file is still capped by RLIMIT_FSIZE), and nothing it wrote is left
 *         after the job, as the caller removes the work dir;
 *   - own work directory (chdir), minimal environment, own process group,
 *     killed with the parent (PR_SET_PDEATHSIG);
 *   - rlimits: CPU seconds, address space, open files, file size (caps
 *     output files and captured stdout/stderr);
 *   - wall-time limit enforced by the parent (SIGKILL to the group);
 *   - own network namespace with no interfaces (no network);
 *   - seccomp filter denying syscalls a job never needs (mount, ptrace,
 *     kexec, bpf, module loading, namespace changes, ...);
 *   - cgroup v2 leaf with cpu.max and memory.max, when a delegated cgroup
 *     directory is given and writable.
 *
 * Why our own namespaces and not bubblewrap (bwrap): the sandbox already
 * forks and prepares every system call of the child in the parent; adding
 * namespaces there is a clone() with more flags and a few mounts, while bwrap
 * is one more program to install (it is not on every machine; Debian 12 has
 * 0.8), one more exec and argument parsing per job (start latency), and its
 * own process between us and the job, which would hide the job's status and
 * rusage and the cgroup join behind it. It needs the same kernel features
 * (unprivileged user namespaces when not root), so it would not run on more
 * machines. What we lose: bwrap's years of review; the code below follows
 * its recipe (tmpfs root, pivot_root, read-only remounts keeping locked
 * flags, /proc of the new PID namespace).
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
 *   - The wall-time limit and the work dir quota are enforced when
 *     sandbox_poll() is called.
 *   - With a cgroup: cgroup_dir's subtree_control must offer cpu and memory
 *     (sandbox_probe enables them when it can), so the agent itself must not
 *     live directly in cgroup_dir (cgroup v2 "no internal processes").
 *   - With isolation as root: job_uid..job_uid + slots must belong to no one
 *     else; sandbox_start chowns the work dir and its top-level entries to it.
 *
 * Accounting: cpu_seconds and peak_rss_bytes come from wait4(), which covers
 * the job and the descendants it waited for itself (with isolation: every
 * process of the namespace, which its init reaps); processes killed after
 * the job exits are not counted otherwise. With a cgroup leaf, its cpu.stat
 * and memory.peak (whole tree) are used when larger.
 *
 * Containment: without isolation or a cgroup, leftover processes are killed
 * through the job's process group, so a process that calls setsid() escapes
 * that; the PID namespace (or the cgroup's cgroup.kill) catches it.
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
    int64_t processes;    /* RLIMIT_NPROC; 0 = no limit (per uid: set it with isolation only) */
    int64_t disk_bytes;   /* with isolation: /tmp size and work dir quota; 0 = default 1 GiB */
    double cpu_cores;     /* cgroup cpu.max quota in cores; 0 = no limit */
} sandbox_limits;

/* What this machine lets the sandbox do (sandbox_probe fills it). */
typedef struct sandbox_caps {
    int netns;         /* 1 if a new network namespace can be created */
    int seccomp;       /* 1 if a seccomp filter can be installed */
    int cgroup;        /* 1 if cgroup_dir is a writable cgroup v2 dir with cpu+memory */
    int rlimits;       /* always 1 */
    int isolation;     /* 1 if jobs can get their own uid and user/PID/mount namespaces */
    int userns;        /* isolation goes through a user namespace (the agent is not root) */
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
    int use_isolation;      /* from caps: own uid, PID and mount namespaces, minimal root */
    int use_userns;         /* from caps (userns): isolation through a user namespace */
    uint32_t job_uid;       /* with isolation: the job's uid and gid (see the header comment) */
    uint32_t job_gid;
    /* with isolation: absolute paths shown read-only at their own place (a program outside the
     * system dirs), NULL-terminated, at most SANDBOX_MAX_RO_PATHS; NULL for none */
    const char *const *ro_paths;
    /* "NAME=value" entries added to the minimal environment, NULL-terminated, at most
     * SANDBOX_MAX_EXTRA_ENV; NULL for none. Names must start with OUTPOST_. */
    const char *const *extra_env;
} sandbox_spec;

#define SANDBOX_MAX_EXTRA_ENV 4
#define SANDBOX_MAX_RO_PATHS 4
#define SANDBOX_QUOTA_EVERY_MS 250 /* how often sandbox_poll measures an isolated work dir */

typedef struct sandbox_result {
    int exited;             /* 1 if the process exited normally */
    int exit_code;          /* exit status when exited, else -1 */
    int term_signal;        /* signal that ended it, or 0 */
    int killed_wall;        /* 1 if the wall-time limit killed it */
    int killed_quota;       /* 1 if it was killed for writing more than limits.disk_bytes */
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

/*
 * The cgroup v2 path of this process ("/system.slice/x.service") out of
 * the text of /proc/self/cgroup (its "0::" line) into out. OP_OK;
 * OP_ENOTFOUND without a cgroup v2 line; OP_ETOOBIG when out is too small.
 */
int sandbox_cgroup_own_path(const char *proc_cgroup_text, char *out, size_t out_len);

/*
 * For an agent whose service manager delegated its cgroup to it (systemd's
 * Delegate=yes): cgroup v2 gives no controllers to the children of a
 * cgroup that holds processes ("no internal processes"), so the agent
 * moves itself into <own cgroup>/agent and its jobs' leaves go beside it.
 * Writes /sys/fs/cgroup<own cgroup> into dir, for sandbox_probe and
 * sandbox_spec.cgroup_dir. Call before any thread starts. Idempotent: an
 * agent already in .../agent keeps its place. OP_OK; OP_ENOTFOUND when this
 * process is in no cgroup v2 hierarchy; OP_EPERM for the root cgroup (never
 * taken over); OP_ESYS when the move failed (logged with errno).
 */
int sandbox_cgroup_adopt(char *dir, size_t dir_len);

/*
 * Detects the available protections. cgroup_dir may be NULL. Never fails.
 * Where SIGCHLD is at its default it installs a do-nothing handler
 * (SA_RESTART | SA_NOCLDSTOP), so that a job's end interrupts the caller's
 * poll()/select() and its loop polls the job at once.
 */
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

/*
 * Sends sig to the job's process group (SIGTERM for a grace stop, SIGKILL).
 * SIGSTOP and SIGCONT pause and resume the whole job, processes that left
 * its group included: through cgroup.freeze when the job has a cgroup leaf,
 * else to every process of its PID namespace when isolated, else (neither)
 * to its process group only.
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
