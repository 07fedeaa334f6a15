/*
 * util: small helpers shared by every module: clocks, hex and base64url
 * codecs, SHA-256, bounded file reads, atomic file writes, directories.
 * Everything returns OP_* codes (err.h); nothing here allocates unless
 * its comment says so.
 */
#ifndef OUTPOST_UTIL_H
#define OUTPOST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the Unix epoch (for timestamps on the wire). */
int64_t util_now_ms(void);
/* Monotonic milliseconds (for timeouts and intervals). */
int64_t util_mono_ms(void);
/* Monotonic microseconds (for latency measurements). */
int64_t util_mono_us(void);

/* Lower-case hex of len bytes into out (needs 2*len+1 bytes). */
void util_hex(const uint8_t *bytes, size_t len, char *out);
/*
 * Index of the last of n sorted values that is <= x (the value in force at
 * x in a step series); 0 when x comes before them all. n must be > 0.
 */
size_t util_last_at_or_before(const int64_t *sorted, size_t n, int64_t x);

/* Parses exactly 2*len hex characters; OP_EINVAL on anything else. */
int util_unhex(const char *hex, uint8_t *out, size_t len);

/* SHA-256 of data as 64 hex characters plus NUL. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * Base64 (standard alphabet, padded). util_b64_encode returns a malloc'd
 * string the caller frees, or NULL. util_b64_decode returns a malloc'd
 * buffer in *out (caller frees) with its size in *out_len; OP_EINVAL on bad
 * input, OP_ETOOBIG if the decoded size would exceed max_len.
 */
char *util_b64_encode(const void *data, size_t len);
int util_b64_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len);
/* Same, URL-safe alphabet without padding (for tokens pasted in shells). */
char *util_b64url_encode(const void *data, size_t len);
int util_b64url_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len);

/*
 * Reads a whole file into a malloc'd, NUL-terminated buffer (caller frees).
 * OP_ENOTFOUND if it does not exist, OP_ETOOBIG if larger than max_len,
 * OP_EIO on other failures.
 */
int util_read_file(const char *path, size_t max_len, char **out, size_t *out_len);
/* Writes via a temporary file, fsync and rename, with the given mode. OP_EIO on failure. */
int util_write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* Writes all of data to fd, retrying on EINTR and short writes. OP_OK or OP_EIO. */
int util_write_all(int fd, const void *data, size_t len);
/* mkdir -p with mode 0700 for created components. OP_EIO on failure. */
int util_mkdir_p(const char *path);
/* rm -rf of a directory tree we created (no symlink following). */
int util_rm_rf(const char *path);

/* snprintf that reports truncation: OP_ETOOBIG if it did not fit. */
int util_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a decimal integer in [min,max]; OP_EINVAL otherwise (replaces atoi). */
int util_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);
/* Parses a finite double; OP_EINVAL otherwise. */
int util_parse_double(const char *text, double *out);

/* Valid identifiers for sites, hubs and operators: [A-Za-z0-9_-]{1,63}. */
int util_valid_id(const char *id);

#endif
