/*
 * sandbox_cgroup: a job's cgroup v2 leaf under a delegated directory:
 * created with cpu.max, memory.max (no swap) and pids.max, killed with
 * cgroup.kill (or process by process), read for CPU time and peak memory,
 * removed once empty; the probe that tells whether a directory can hold
 * such leaves; and an agent taking over the cgroup its service manager
 * delegated to it.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/util.h"
#include "io/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Kills every process in a cgroup leaf: cgroup.kill (Linux 5.14+), else one by one. */
void sandbox__cgroup_kill(const char *leaf)
{
    char path[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/cgroup.kill", leaf) != OP_OK) return;
    if (sandbox__write_file(path, "1") == 0) return;
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

void sandbox__cgroup_read_stats(sandbox_run *run)
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

void sandbox__cgroup_remove_leaf(const char *leaf)
{
    for (int i = 0; i < SANDBOX_RMDIR_TRIES; i++) {
        if (rmdir(leaf) == 0 || errno == ENOENT) return;
        if (errno != EBUSY) break;
        sandbox__cgroup_kill(leaf);
        sleep_ms(2);
    }
    log_warn("sandbox", "cannot remove cgroup %s: %s", leaf, strerror(errno));
}

/*
 * Creates <cgroup_dir>/<job_name> with the limits written and opens its
 * cgroup.procs for the child. Limits left at 0 are not written: a fresh
 * leaf already has "max". OP_ESYS on failure (logged, leaf removed).
 */
int sandbox__cgroup_prepare(const sandbox_spec *spec, char **leaf_out, int *procs_fd_out)
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
        if ((errno = sandbox__write_file(path, value)) != 0) goto fail;
    }
    if (spec->limits.memory_bytes > 0) {
        what = "memory.max";
        if (util_fmt(path, sizeof path, "%s/memory.max", leaf) != OP_OK) goto fail;
        util_fmt(value, sizeof value, "%lld", (long long)spec->limits.memory_bytes);
        if ((errno = sandbox__write_file(path, value)) != 0) goto fail;
        /* Without this the job could exceed memory.max by swapping; absent without swap. */
        if (util_fmt(path, sizeof path, "%s/memory.swap.max", leaf) == OP_OK)
            sandbox__write_file(path, "0");
    }
    if (spec->limits.processes > 0 && util_fmt(path, sizeof path, "%s/pids.max", leaf) == OP_OK &&
        access(path, F_OK) == 0) {
        what = "pids.max";
        util_fmt(value, sizeof value, "%lld", (long long)spec->limits.processes);
        if ((errno = sandbox__write_file(path, value)) != 0) goto fail;
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

/*
 * A usable cgroup dir is on cgroup2, writable, offers cpu and memory, and
 * hands them to its children (subtree_control; enabled here if missing,
 * which only works when the dir itself holds no processes).
 */
int sandbox__probe_cgroup(const char *dir)
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
        int err = sandbox__write_file(path, "+cpu +memory");
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

int sandbox_cgroup_own_path(const char *proc_cgroup_text, char *out, size_t out_len)
{
    const char *line = proc_cgroup_text;
    while (line && *line) {
        if (strncmp(line, "0::", 3) == 0) {
            const char *path = line + 3, *end = strchr(path, '\n');
            size_t len = end ? (size_t)(end - path) : strlen(path);
            if (len == 0 || path[0] != '/') return OP_ENOTFOUND;
            if (len >= out_len) return OP_ETOOBIG;
            memcpy(out, path, len);
            out[len] = '\0';
            return OP_OK;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return OP_ENOTFOUND;
}

int sandbox_cgroup_adopt(char *dir, size_t dir_len)
{
    char text[4096], own[PATH_MAX], agent[PATH_MAX], procs[PATH_MAX];
    if (read_small_file("/proc/self/cgroup", text, sizeof text) != 0) return OP_ENOTFOUND;
    int rc = sandbox_cgroup_own_path(text, own, sizeof own);
    if (rc != OP_OK) return rc;
    size_t len = strlen(own);
    /* a restart in place (same cgroup): the agent is already where it goes */
    if (len >= 6 && strcmp(own + len - 6, "/agent") == 0) own[len - 6] = '\0';
    if (own[0] == '\0' || strcmp(own, "/") == 0) return OP_EPERM;
    if (util_fmt(dir, dir_len, "/sys/fs/cgroup%s", own) != OP_OK ||
        util_fmt(agent, sizeof agent, "%s/agent", dir) != OP_OK ||
        util_fmt(procs, sizeof procs, "%s/cgroup.procs", agent) != OP_OK)
        return OP_ETOOBIG;
    if (mkdir(agent, 0755) != 0 && errno != EEXIST) {
        log_warn("sandbox", "cannot make %s: %s", agent, strerror(errno));
        return OP_ESYS;
    }
    int err = sandbox__write_file(procs, "0");
    if (err != 0) {
        log_warn("sandbox", "cannot move the agent into %s: %s", agent, strerror(err));
        return OP_ESYS;
    }
    log_info("sandbox", "took over the delegated cgroup %s (the agent in %s)", dir, agent);
    return OP_OK;
}
