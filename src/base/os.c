#include "base/os.h"

#include "base/err.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t os_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t os_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t os_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int os_read_file(const char *path, size_t max_len, char **out, size_t *out_len)
{
    int rc = OP_EIO;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? OP_ENOTFOUND : OP_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) goto out;
    if (!S_ISREG(st.st_mode)) goto out;
    if ((size_t)st.st_size > max_len) {
        rc = OP_ETOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = OP_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto out;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    if (out_len) *out_len = got;
    buf = NULL;
    rc = OP_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

int os_write_file_atomic(const char *path, const void *data, size_t len, int mode)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device or a pipe (--out /dev/null, /dev/stdout, a FIFO) is written to, never
         * replaced: renaming a file over /dev/null as root made it a regular file */
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) return OP_EIO;
        int rc = os_write_all(fd, data, len);
        return close(fd) != 0 ? OP_EIO : rc;
    }
    char tmp[PATH_MAX];
    if (util_fmt(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) != OP_OK) return OP_ETOOBIG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return OP_EIO;
    if (os_write_all(fd, data, len) != OP_OK) {
        close(fd);
        unlink(tmp);
        return OP_EIO;
    }
    if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return OP_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return OP_EIO;
    }
    return OP_OK;
}

int os_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (util_fmt(buf, sizeof buf, "%s", path) != OP_OK) return OP_ETOOBIG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return OP_EIO;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return OP_EIO;
    return OP_OK;
}

int os_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? OP_OK : OP_EIO;
    if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? OP_OK : OP_EIO;
    DIR *dir = opendir(path);
    if (!dir) return OP_EIO;
    int rc = OP_OK;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char child[PATH_MAX];
        if (util_fmt(child, sizeof child, "%s/%s", path, entry->d_name) != OP_OK) {
            rc = OP_ETOOBIG;
            continue;
        }
        int sub = os_rm_rf(child);
        if (sub != OP_OK) rc = sub;
    }
    closedir(dir);
    if (rmdir(path) != 0) rc = OP_EIO;
    return rc;
}

int os_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return OP_EIO;
        p += n;
        len -= (size_t)n;
    }
    return OP_OK;
}
