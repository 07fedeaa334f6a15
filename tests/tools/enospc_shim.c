/*
 * enospc_shim: an LD_PRELOAD library for the fault suite that makes a data
 * directory behave as a full disk without root (tests/faults/run.py loads
 * it where it cannot mount a small tmpfs). No test hook lives in the
 * outpost binary: the shim sits between it (and the SQLite library it
 * links) and libc.
 *
 * ENOSPC_SHIM_CONTROL names a control file. While that file exists, every
 * line of it is a directory, and a write to a file under one of them fails
 * with ENOSPC: write, pwrite, pwrite64, writev, pwritev (what SQLite's unix
 * VFS calls is pwrite64, per strace of a hub and a site; the others catch
 * the rest), fallocate and posix_fallocate, and an ftruncate that would grow
 * the file (shrinking frees space, as on a real file system). Every write
 * fails, including one that would overwrite bytes already allocated: harsher
 * than a real full disk, so an episode always bites. Removing the control
 * file ends the episode. Sockets, pipes and files elsewhere are untouched.
 * Each call opens the control file, and reads it and /proc/self/fd while
 * it exists: a few system calls per write, fine for tests.
 *
 * Loaded into an ASan binary it must come before the ASan runtime, which
 * ASan refuses unless ASAN_OPTIONS has verify_asan_link_order=0. It is
 * built without sanitizers (build/tools/enospc_shim.so). It calls nothing
 * that allocates after its constructor: a forked child between fork and
 * exec may run it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, pwrite64 */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char control_path[PATH_MAX];

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*fallocate_fn)(int, int, off_t, off_t);
typedef int (*posix_fallocate_fn)(int, off_t, off_t);

static struct {
    write_fn write;
    pwrite_fn pwrite, pwrite64;
    writev_fn writev;
    pwritev_fn pwritev, pwritev64;
    ftruncate_fn ftruncate, ftruncate64;
    fallocate_fn fallocate, fallocate64;
    posix_fallocate_fn posix_fallocate, posix_fallocate64;
} real;

/* The next definition of name after this library: libc's, or ASan's interceptor. */
static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

/* Resolved once, before main, so that no call after a fork needs dlsym. */
__attribute__((constructor)) static void shim_init(void)
{
    const char *control = getenv("ENOSPC_SHIM_CONTROL");
    if (control && strlen(control) < sizeof control_path)
        memcpy(control_path, control, strlen(control) + 1);
    real.write = (write_fn)next("write");
    real.pwrite = (pwrite_fn)next("pwrite");
    real.pwrite64 = (pwrite_fn)next("pwrite64");
    real.writev = (writev_fn)next("writev");
    real.pwritev = (pwritev_fn)next("pwritev");
    real.pwritev64 = (pwritev_fn)next("pwritev64");
    real.ftruncate = (ftruncate_fn)next("ftruncate");
    real.ftruncate64 = (ftruncate_fn)next("ftruncate64");
    real.fallocate = (fallocate_fn)next("fallocate");
    real.fallocate64 = (fallocate_fn)next("fallocate64");
    real.posix_fallocate = (posix_fallocate_fn)next("posix_fallocate");
    real.posix_fallocate64 = (posix_fallocate_fn)next("posix_fallocate64");
}

/* path starts with dir (given without a trailing slash) followed by '/'. */
static int under(const char *path, const char *dir, size_t dir_len)
{
    return dir_len > 0 && strncmp(path, dir, dir_len) == 0 && path[dir_len] == '/';
}

/*
 * Whether a write to fd fails now: the control file exists and fd is a
 * regular file under one of the directories it lists. The path comes from
 * /proc/self/fd; the fd number is formatted by hand (no stdio after fork).
 */
static int full(int fd)
{
    if (!control_path[0] || fd < 0) return 0;
    int ctl = open(control_path, O_RDONLY | O_CLOEXEC);
    if (ctl < 0) return 0;
    char dirs[4096];
    ssize_t n = read(ctl, dirs, sizeof dirs - 1);
    close(ctl);
    if (n <= 0) return 0;
    dirs[n] = '\0';
    char link[32] = "/proc/self/fd/", digits[16];
    int d = 0;
    for (unsigned v = (unsigned)fd; d == 0 || v; v /= 10)
        digits[d++] = (char)('0' + v % 10);
    size_t at = strlen(link);
    while (d > 0)
        link[at++] = digits[--d];
    link[at] = '\0';
    char path[PATH_MAX];
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len <= 0 || path[0] != '/') return 0; /* a socket, a pipe, an anonymous file */
    path[len] = '\0';
    for (char *line = dirs; *line;) {
        char *end = strchr(line, '\n');
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        while (line_len > 1 && line[line_len - 1] == '/')
            line_len--;
        if (under(path, line, line_len)) return 1;
        if (!end) break;
        line = end + 1;
    }
    return 0;
}

/* An ftruncate that grows the file takes space; one that shrinks it frees some. */
static int grows(int fd, off_t length)
{
    struct stat st;
    return fstat(fd, &st) != 0 || length > st.st_size;
}

#define FAIL_IF_FULL(fd, failed)                                                                   \
    do {                                                                                           \
        if (full(fd)) {                                                                            \
            errno = ENOSPC;                                                                        \
            return failed;                                                                         \
        }                                                                                          \
    } while (0)

/*
 * The real function, resolved now if a library's constructor wrote before
 * ours ran; a name libc does not have fails as unsupported.
 */
#define NEED(fn, failed)                                                                           \
    do {                                                                                           \
        if (!real.fn) shim_init();                                                                 \
        if (!real.fn) {                                                                            \
            errno = ENOSYS;                                                                        \
            return failed;                                                                         \
        }                                                                                          \
    } while (0)

ssize_t write(int fd, const void *buf, size_t count)
{
    NEED(write, -1);
    FAIL_IF_FULL(fd, -1);
    return real.write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    NEED(pwrite, -1);
    FAIL_IF_FULL(fd, -1);
    return real.pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
    NEED(pwrite64, -1);
    FAIL_IF_FULL(fd, -1);
    return real.pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    NEED(writev, -1);
    FAIL_IF_FULL(fd, -1);
    return real.writev(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    NEED(pwritev, -1);
    FAIL_IF_FULL(fd, -1);
    return real.pwritev(fd, iov, iovcnt, offset);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    NEED(pwritev64, -1);
    FAIL_IF_FULL(fd, -1);
    return real.pwritev64(fd, iov, iovcnt, offset);
}

int ftruncate(int fd, off_t length)
{
    NEED(ftruncate, -1);
    if (grows(fd, length)) FAIL_IF_FULL(fd, -1);
    return real.ftruncate(fd, length);
}

int ftruncate64(int fd, off_t length)
{
    NEED(ftruncate64, -1);
    if (grows(fd, length)) FAIL_IF_FULL(fd, -1);
    return real.ftruncate64(fd, length);
}

int fallocate(int fd, int mode, off_t offset, off_t len)
{
    NEED(fallocate, -1);
    FAIL_IF_FULL(fd, -1);
    return real.fallocate(fd, mode, offset, len);
}

int fallocate64(int fd, int mode, off_t offset, off_t len)
{
    NEED(fallocate64, -1);
    FAIL_IF_FULL(fd, -1);
    return real.fallocate64(fd, mode, offset, len);
}

/* posix_fallocate returns the error number instead of setting errno. */
int posix_fallocate(int fd, off_t offset, off_t len)
{
    if (!real.posix_fallocate) shim_init();
    if (!real.posix_fallocate) return ENOSYS;
    if (full(fd)) return ENOSPC;
    return real.posix_fallocate(fd, offset, len);
}

int posix_fallocate64(int fd, off_t offset, off_t len)
{
    if (!real.posix_fallocate64) shim_init();
    if (!real.posix_fallocate64) return ENOSYS;
    if (full(fd)) return ENOSPC;
    return real.posix_fallocate64(fd, offset, len);
}
