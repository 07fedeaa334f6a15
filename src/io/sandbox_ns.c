/*
 * sandbox_ns: isolation, the child's side. The child was cloned into new
 * PID, mount, IPC and UTS namespaces (and a user namespace when the agent is
 * not root); it is pid 1 there. Like sandbox_child.c it may be a copy of a
 * multithreaded process made by a raw clone(), so it makes only system calls
 * on the prepared plan: no malloc, no stdio, and no libc wrapper that walks
 * the parent's threads (set*id and setgroups go through syscall()).
 */
#include "io/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t sandbox__clone(unsigned long flags)
{
#if defined(__s390__) || defined(__s390x__)
    return (pid_t)syscall(SYS_clone, 0, flags | SIGCHLD, NULL, NULL, NULL);
#else
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
#endif
}

/* mkdir of every directory above path (relative to the new root). 0 or an errno value. */
static int make_parents(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) return ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i < len; i++) {
        if (buf[i] != '/') continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return errno;
        buf[i] = '/';
    }
    return 0;
}

/* A directory or an empty file to mount on, unless something is there already. */
static int make_mount_point(const char *path, int is_dir)
{
    struct stat st;
    if (stat(path, &st) == 0) return 0;
    int err = make_parents(path);
    if (err != 0) return err;
    if (is_dir) return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

/*
 * The flags of the mount at path that a remount must keep: in a user
 * namespace the kernel locks nosuid, nodev, noexec and the atime flags of
 * mounts inherited from the host, and refuses a remount that drops them.
 */
static unsigned long locked_flags(const char *path)
{
    struct statfs st;
    if (statfs(path, &st) != 0) return 0;
    unsigned long flags = 0;
    if (st.f_flags & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flags & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flags & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flags & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

/* A bind mount of m->src at m->dst, remounted with extra flags (read-only, nosuid, ...). */
static int bind_mount(const child_mount *m, unsigned long extra)
{
    int err = make_mount_point(m->dst, m->is_dir);
    if (err != 0) return err;
    if (mount(m->src, m->dst, NULL, MS_BIND | MS_REC, NULL) != 0) return errno;
    if (mount(NULL, m->dst, NULL, MS_REMOUNT | MS_BIND | locked_flags(m->dst) | extra, NULL) != 0)
        return errno;
    return 0;
}

static int apply_mount(const child_mount *m)
{
    int err;
    switch (m->kind) {
    case MOUNT_BIND_RO:
        return bind_mount(m, MS_RDONLY | MS_NOSUID | MS_NODEV);
    case MOUNT_BIND_RW:
        return bind_mount(m, MS_NOSUID | MS_NODEV);
    case MOUNT_BIND_DEV:
        if ((err = make_mount_point(m->dst, 0)) != 0) return err;
        return mount(m->src, m->dst, NULL, MS_BIND, NULL) == 0 ? 0 : errno;
    case MOUNT_SYMLINK:
        if ((err = make_parents(m->dst)) != 0) return err;
        return symlink(m->src, m->dst) == 0 || errno == EEXIST ? 0 : errno;
    case MOUNT_TMPFS:
        if ((err = make_mount_point(m->dst, 1)) != 0) return err;
        return mount("tmpfs", m->dst, "tmpfs", MS_NOSUID | MS_NODEV, m->data) == 0 ? 0 : errno;
    case MOUNT_PROC:
        if ((err = make_mount_point(m->dst, 1)) != 0) return err;
        /* Refused where /proc is partly masked (some containers): the job then has none. */
        mount("proc", m->dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        return 0;
    }
    return EINVAL;
}

/* The maps of a user namespace made by an unprivileged agent: one id, its own. */
static int write_maps(const child_plan *plan)
{
    int err = sandbox__write_file("/proc/self/setgroups", "deny");
    if (err != 0 && err != ENOENT) return err;
    if ((err = sandbox__write_file("/proc/self/uid_map", plan->uid_map)) != 0) return err;
    return sandbox__write_file("/proc/self/gid_map", plan->gid_map);
}

/*
 * bubblewrap's recipe: a tmpfs over /tmp becomes the new root by
 * pivot_root, with the old root at /oldroot while the plan's binds are made
 * from it (the old /tmp is whole again there: the tmpfs left it for /), then
 * the old root is detached and the new root made read-only.
 */
int sandbox__ns_enter(const child_plan *plan, int *step)
{
    int err;
    *step = STEP_USERNS;
    if (plan->userns && (err = write_maps(plan)) != 0) return err;
    *step = STEP_MOUNTS;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, SANDBOX_ROOT_TMPFS) != 0 ||
        chdir("/tmp") != 0 || mkdir("oldroot", 0700) != 0 ||
        syscall(SYS_pivot_root, ".", "oldroot") != 0 || chdir("/") != 0)
        return errno;
    /* the root's directories are traversable whatever the agent's umask; the job gets it back */
    mode_t umask_before = umask(022);
    for (int i = 0; i < plan->mount_count; i++)
        if ((err = apply_mount(&plan->mounts[i])) != 0) return err;
    umask(umask_before);
    if (umount2("/oldroot", MNT_DETACH) != 0 || rmdir("/oldroot") != 0) return errno;
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        return errno;
    *step = STEP_CHDIR;
    return chdir(plan->workdir) == 0 ? 0 : errno;
}

int sandbox__drop_to_job(const child_plan *plan)
{
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return errno;
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break; /* past the kernel's last capability */
        return errno;
    }
    if (plan->userns) return 0; /* already job_uid inside its namespace; exec drops the rest */
    if (syscall(SYS_setgroups, 0, NULL) != 0 ||
        syscall(SYS_setresgid, plan->job_gid, plan->job_gid, plan->job_gid) != 0 ||
        syscall(SYS_setresuid, plan->job_uid, plan->job_uid, plan->job_uid) != 0)
        return errno;
    return 0;
}

/*
 * Signals stay blocked here (the parent blocked them around the clone): the
 * group's SIGTERM reaches the job, not its init, and pid 1 needs no handler.
 * SIGKILL and SIGSTOP from the agent still apply, and SIGKILL here kills the
 * namespace.
 */
void sandbox__init_run(child_plan *plan, void (*job_main)(child_plan *))
{
    pid_t job = sandbox__clone(0);
    if (job < 0) sandbox__child_fail(plan, STEP_FORK, errno);
    if (job == 0) job_main(plan);
    close(plan->report_fd); /* the job's now: EOF for the parent at its exec */
    int status = 0;
    for (;;) {
        int st = 0;
        pid_t got = waitpid(-1, &st, __WALL);
        if (got == job) {
            status = st;
            break;
        }
        if (got < 0 && errno != EINTR) {
            status = 127 << 8;
            break;
        }
    }
    child_report done = {STEP_DONE, status};
    ssize_t n;
    do {
        n = write(plan->status_fd, &done, sizeof done);
    } while (n < 0 && errno == EINTR);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}
