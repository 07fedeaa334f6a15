/*
 * os: the operating system as the adapters and roles see it: clocks, bounded
 * file reads, atomic file writes, directories. Kept apart from util so that
 * the pure modules (core, wire, route, sim) cannot reach a clock or a file:
 * scripts/lint_layers.py refuses an include of this header there.
 * Every function returns OP_* codes (err.h) unless it returns a time.
 */
#ifndef OUTPOST_OS_H
#define OUTPOST_OS_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the Unix epoch (for timestamps on the wire). */
int64_t os_now_ms(void);

/* Monotonic milliseconds (for timeouts and intervals). */
int64_t os_mono_ms(void);

/* Monotonic microseconds (for latency measurements). */
int64_t os_mono_us(void);

/*
 * Reads a whole file into a malloc'd, NUL-terminated buffer (caller frees).
 * OP_ENOTFOUND if it does not exist, OP_ETOOBIG if larger than max_len,
 * OP_EIO on other failures.
 */
int os_read_file(const char *path, size_t max_len, char **out, size_t *out_len);

/*
 * Writes via a temporary file, fsync and rename, with the given mode. A path
 * that is not a regular file (/dev/null, /dev/stdout, a FIFO) is written to
 * in place instead, never replaced. OP_EIO on failure.
 */
int os_write_file_atomic(const char *path, const void *data, size_t len, int mode);

/* Writes all of data to fd, retrying on EINTR and short writes. OP_OK or OP_EIO. */
int os_write_all(int fd, const void *data, size_t len);

/* mkdir -p with mode 0700 for created components. OP_EIO on failure. */
int os_mkdir_p(const char *path);

/* rm -rf of a directory tree we created (no symlink following). */
int os_rm_rf(const char *path);

#endif
