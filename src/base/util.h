/*
 * util: pure helpers shared by every module: hex and base64 codecs, SHA-256,
 * bounded formatting and number parsing, identifier checks, step-series
 * lookup, a seedable random sequence. No I/O and no clocks (those are in
 * os.h), so pure modules may use it. Everything returns OP_* codes (err.h);
 * nothing here allocates unless its comment says so.
 */
#ifndef OUTPOST_UTIL_H
#define OUTPOST_UTIL_H

#include <stddef.h>
#include <stdint.h>

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

/* snprintf that reports truncation: OP_ETOOBIG if it did not fit. */
int util_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a decimal integer in [min,max]; OP_EINVAL otherwise (replaces atoi). */
int util_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);
/* Parses a finite double; OP_EINVAL otherwise. */
int util_parse_double(const char *text, double *out);

/* Valid identifiers for sites, hubs and operators: [A-Za-z0-9_-]{1,63}. */
int util_valid_id(const char *id);

/*
 * The next number of the splitmix64 sequence that *state holds (Steele,
 * Lea and Flood 2014): small, seedable, the same on every machine, so that
 * the route solver and the simulator give the same run for the same seed.
 * Inline because both call it in inner loops.
 */
static inline uint64_t util_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
