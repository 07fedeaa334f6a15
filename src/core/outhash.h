/*
 * outhash: the output hash of a job's result (pure: no I/O). Two results
 * that produced the same thing have the same hash, whatever site ran them,
 * how long they took or what they cost; this is what result verification
 * compares between replicas (docs/verification.md).
 *
 * The hash is SHA-256 over a canonical form of what the job produced, and
 * of nothing else:
 *
 *   "outpost-outhash-1"
 *   exit_code, term_signal             (each 8 bytes, big-endian, signed)
 *   stdout, stderr                     (each: 8-byte length, the bytes)
 *   the output files, sorted by name   (each: name as above, then the SHA-256
 *                                      of its data as 32 bytes)
 *   the missing outputs, sorted        (each: name as above)
 *
 * with a count (8 bytes) before each list. An output's hash is computed
 * here from its data_b64, not taken from the site's "sha256": a stated
 * hash that does not match the data makes the result malformed. Absent
 * fields count as their empty value (exit code -1, signal 0, no text, no
 * files). Left out on purpose: wall time, CPU, memory, energy, receipts,
 * the site's id, the attempt, the truncation flags and error text (which
 * name paths and sites).
 */
#ifndef OUTPOST_OUTHASH_H
#define OUTPOST_OUTHASH_H

#include <cJSON.h>

/* Largest number of output and missing-output entries a result may carry. */
#define OUTHASH_MAX_FILES 64

/*
 * The output hash of result (a result item as a site sends it) as 64 hex
 * characters and a NUL. OP_EINVAL when the result is not an object, an
 * output lacks a name or data, its data is not base64 or differs from its
 * stated sha256, a name appears twice, or there are more than
 * OUTHASH_MAX_FILES entries; OP_ENOMEM.
 */
int outhash_result(const cJSON *result, char hex[65]);

#endif
