/*
 * sandbox_pause: stopping and continuing a whole job (a demand-response
 * pause). A signal to the job's process group misses every process that
 * left the group (setsid), and a paused job must draw nothing: with a
 * cgroup leaf the job is frozen through cgroup.freeze; an isolated job
 * without one has every process of its PID namespace signalled; only a
 * job with neither falls back to its process group.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/util.h"
#include "io/sandbox_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Passes over /proc for one stop: a process may fork while its siblings are being stopped. */
#define PAUSE_PASSES 8

/* Writes "1" (freeze) or "0" (thaw) to the leaf's cgroup.freeze. 0 or an errno value. */
static int cgroup_freeze(const char *leaf, int freeze)
{
    char path[PATH_MAX];
    if (util_fmt(path, sizeof path, "%s/cgroup.freeze", leaf) != OP_OK) return ENAMETOOLONG;
    return sandbox__write_file(path, freeze ? "1" : "0");
}

/* The pid namespace of /proc/<pid>, as device and inode. 0 or -1. */
static int pidns_of(long pid, dev_t *dev, ino_t *ino)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%ld/ns/pid", pid);
    if (stat(path, &st) != 0) return -1;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

/* 1 when /proc/<pid> is stopped (state T) or gone. */
static int is_stopped(long pid)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *close_paren = strrchr(text, ')'); /* the command may hold spaces and ')' */
    return !close_paren || close_paren[1] != ' ' || close_paren[2] == 'T' ||
           close_paren[2] == 't' || close_paren[2] == 'Z';
}

/*
 * One pass: sig to every process in the namespace (dev, ino). Returns how
 * many of them were not yet stopped when sig is SIGSTOP, else 0.
 */
static int signal_pass(dev_t dev, ino_t ino, int sig)
{
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int running = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        long pid = strtol(e->d_name, NULL, 10);
        dev_t pdev;
        ino_t pino;
        if (pidns_of(pid, &pdev, &pino) != 0 || pdev != dev || pino != ino) continue;
        if (sig == SIGSTOP && is_stopped(pid)) continue;
        if (kill((pid_t)pid, sig) == 0 && sig == SIGSTOP) running++;
    }
    closedir(d);
    return running;
}

/*
 * Signals every process in the job's PID namespace (the init's own), in
 * passes until none is left running for a stop. 0, or -1 when the
 * namespace cannot be read (the caller falls back to the process group).
 */
static int signal_pidns(const sandbox_run *run, int sig)
{
    dev_t dev;
    ino_t ino;
    if (pidns_of(run->pid, &dev, &ino) != 0) return -1;
    for (int pass = 0; pass < PAUSE_PASSES; pass++)
        if (signal_pass(dev, ino, sig) == 0) break;
    return 0;
}

int sandbox__pause(sandbox_run *run, int stop)
{
    if (run->cgroup_leaf) {
        int err = cgroup_freeze(run->cgroup_leaf, stop);
        if (err == 0) return 0;
        log_warn("sandbox", "cannot %s %s: %s", stop ? "freeze" : "thaw", run->cgroup_leaf,
                 strerror(err));
    }
    if (run->isolated && signal_pidns(run, stop ? SIGSTOP : SIGCONT) == 0) return 0;
    return -1;
}
