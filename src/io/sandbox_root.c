/*
 * sandbox_root: isolation, the parent's side. What the job's minimal root
 * holds (the child mounts it, sandbox_ns.c), the work dir handed to the
 * job's uid, and the measure of the work dir behind its quota.
 */
#include "base/err.h"
#include "base/log.h"
#include "base/util.h"
#include "io/sandbox_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* System directories a program needs, read-only (links, as on merged-/usr systems, kept). */
static const char *const root_system_paths[] = {"/usr",   "/bin",   "/sbin",   "/lib",
                                                "/lib32", "/lib64", "/libx32", NULL};
/* The /etc a dynamically linked program uses; no passwd, group, hosts or keys. */
static const char *const root_etc_paths[] = {"/etc/ld.so.cache",  "/etc/ld.so.conf",
                                             "/etc/ld.so.conf.d", "/etc/alternatives",
                                             "/etc/localtime",    NULL};
static const char *const root_dev_nodes[] = {"null", "zero", "full", "random", "urandom", NULL};

typedef struct root_list {
    child_mount *mounts;
    int count;
} root_list;

static child_mount *root_add(root_list *list, int kind, const char *dst)
{
    if (list->count == SANDBOX_MAX_MOUNTS) return NULL;
    child_mount *m = &list->mounts[list->count];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    /* relative to the new root: "/usr" -> "usr" */
    while (*dst == '/')
        dst++;
    if (!*dst || util_fmt(m->dst, sizeof m->dst, "%s", dst) != OP_OK) return NULL;
    list->count++;
    return m;
}

/*
 * A host path as it is: a link recreated, a directory or file bound
 * (read-only unless kind says otherwise). Missing or other types are
 * skipped when optional. OP_OK, OP_EINVAL.
 */
static int root_add_host(root_list *list, const char *path, int kind, int optional)
{
    struct stat st;
    if (path[0] != '/' || lstat(path, &st) != 0) return optional ? OP_OK : OP_EINVAL;
    child_mount *m;
    if (S_ISLNK(st.st_mode)) {
        if (!(m = root_add(list, MOUNT_SYMLINK, path))) return OP_EINVAL;
        ssize_t n = readlink(path, m->src, sizeof m->src - 1);
        if (n <= 0) return OP_EINVAL;
        m->src[n] = '\0';
        return OP_OK;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) return optional ? OP_OK : OP_EINVAL;
    if (!(m = root_add(list, kind, path))) return OP_EINVAL;
    m->is_dir = S_ISDIR(st.st_mode);
    return util_fmt(m->src, sizeof m->src, "/oldroot%s", path) == OP_OK ? OP_OK : OP_EINVAL;
}

/*
 * /dev: a small tmpfs with the harmless nodes bound from the host, the /proc
 * links, and a private /dev/shm (POSIX semaphores and shared memory, as
 * Python's multiprocessing uses) of at most SANDBOX_SHM_MAX_BYTES.
 */
static int root_add_dev(root_list *list, int64_t tmp_bytes)
{
    child_mount *m = root_add(list, MOUNT_TMPFS, "dev");
    if (!m) return OP_EINVAL;
    util_fmt(m->data, sizeof m->data, "mode=0755,size=64k");
    if (!(m = root_add(list, MOUNT_TMPFS, "dev/shm"))) return OP_EINVAL;
    util_fmt(m->data, sizeof m->data, "mode=1777,size=%lld",
             (long long)(tmp_bytes < SANDBOX_SHM_MAX_BYTES ? tmp_bytes : SANDBOX_SHM_MAX_BYTES));
    for (int i = 0; root_dev_nodes[i]; i++) {
        char dst[64];
        util_fmt(dst, sizeof dst, "dev/%s", root_dev_nodes[i]);
        if (!(m = root_add(list, MOUNT_BIND_DEV, dst))) return OP_EINVAL;
        util_fmt(m->src, sizeof m->src, "/oldroot/dev/%s", root_dev_nodes[i]);
    }
    static const char *const links[][2] = {{"dev/fd", "/proc/self/fd"},
                                           {"dev/stdin", "/proc/self/fd/0"},
                                           {"dev/stdout", "/proc/self/fd/1"},
                                           {"dev/stderr", "/proc/self/fd/2"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (!(m = root_add(list, MOUNT_SYMLINK, links[i][0]))) return OP_EINVAL;
        util_fmt(m->src, sizeof m->src, "%s", links[i][1]);
    }
    return root_add(list, MOUNT_PROC, "proc") ? OP_OK : OP_EINVAL;
}

/* The work dir and programs shown to the job may not sit where the root's own mounts are. */
static int root_path_allowed(const char *path)
{
    static const char *const reserved[] = {"/proc", "/dev", "/oldroot", NULL};
    if (path[0] != '/' || strcmp(path, "/") == 0) return 0;
    for (int i = 0; reserved[i]; i++) {
        size_t n = strlen(reserved[i]);
        if (strncmp(path, reserved[i], n) == 0 && (path[n] == '/' || path[n] == '\0')) return 0;
    }
    return 1;
}

/*
 * Order matters: parents before what is mounted inside them, so the work
 * dir and ro_paths come last (a work dir under /tmp lands in the job's own
 * /tmp, a program under /usr on top of the read-only /usr).
 */
static int root_fill(root_list *list, const char *workdir, const char *const *ro_paths,
                     int64_t tmp_bytes)
{
    int rc = OP_OK;
    for (int i = 0; rc == OP_OK && root_system_paths[i]; i++)
        rc = root_add_host(list, root_system_paths[i], MOUNT_BIND_RO, 1);
    for (int i = 0; rc == OP_OK && root_etc_paths[i]; i++)
        rc = root_add_host(list, root_etc_paths[i], MOUNT_BIND_RO, 1);
    child_mount *tmp = rc == OP_OK ? root_add(list, MOUNT_TMPFS, "tmp") : NULL;
    if (!tmp) return OP_EINVAL;
    util_fmt(tmp->data, sizeof tmp->data, "mode=1777,size=%lld", (long long)tmp_bytes);
    if ((rc = root_add_dev(list, tmp_bytes)) != OP_OK) return rc;
    if (workdir && (!root_path_allowed(workdir) ||
                    (rc = root_add_host(list, workdir, MOUNT_BIND_RW, 0)) != OP_OK))
        return OP_EINVAL;
    for (int i = 0; ro_paths && ro_paths[i]; i++) {
        char *real = realpath(ro_paths[i], NULL);
        rc = real && root_path_allowed(real) ? root_add_host(list, real, MOUNT_BIND_RO, 0)
                                             : OP_EINVAL;
        free(real);
        if (rc != OP_OK) return rc;
    }
    return OP_OK;
}

int sandbox__root_plan(const char *workdir, const char *const *ro_paths, int64_t tmp_bytes,
                       child_mount **out, int *count)
{
    root_list list = {calloc(SANDBOX_MAX_MOUNTS, sizeof(child_mount)), 0};
    *out = NULL;
    *count = 0;
    if (!list.mounts) return OP_ENOMEM;
    int rc = root_fill(&list, workdir, ro_paths, tmp_bytes);
    if (rc != OP_OK) {
        log_warn("sandbox", "cannot plan the job's root (work dir %s)", workdir ? workdir : "-");
        free(list.mounts);
        return rc;
    }
    *out = list.mounts;
    *count = list.count;
    return OP_OK;
}

int sandbox__give_workdir(const char *workdir, uint32_t uid, uint32_t gid)
{
    int dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int list_fd = dfd >= 0 ? dup(dfd) : -1;
    DIR *dir = list_fd >= 0 ? fdopendir(list_fd) : NULL;
    int rc = dir && fchown(dfd, uid, gid) == 0 ? OP_OK : OP_ESYS;
    for (struct dirent *e; rc == OP_OK && (e = readdir(dir)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) rc = OP_ESYS;
    }
    if (rc != OP_OK) log_error("sandbox", "giving %s to uid %u: %s", workdir, uid, strerror(errno));
    if (dir)
        closedir(dir);
    else if (list_fd >= 0)
        close(list_fd);
    if (dfd >= 0) close(dfd);
    return rc;
}

/* Bytes under the directory open at dfd (which it takes), counting entries; -1: over. */
static int64_t usage_at(int dfd, int depth, int64_t *entries)
{
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return -1;
    }
    int64_t total = 0;
    for (struct dirent *e; total >= 0 && (e = readdir(dir)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct stat st;
        if (++*entries > SANDBOX_QUOTA_MAX_ENTRIES) total = -1;
        if (total < 0 || fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* over, or gone meanwhile */
        total += (int64_t)st.st_blocks * 512;
        if (!S_ISDIR(st.st_mode)) continue;
        int sub = depth < 64 ? openat(dirfd(dir), e->d_name,
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                             : -1;
        if (sub < 0 && depth < 64 && errno == ENOENT) continue;
        int64_t below = sub >= 0 ? usage_at(sub, depth + 1, entries) : -1;
        total = below < 0 ? -1 : total + below;
    }
    closedir(dir);
    return total;
}

/* A directory the job hides from us (mode 000, too deep) cannot be measured: over quota. */
int64_t sandbox__dir_usage(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return -1;
    int64_t entries = 0;
    return usage_at(dfd, 0, &entries);
}
