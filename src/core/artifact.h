/*
 * artifact: files that travel the fleet (models above all) as the hub
 * describes them, signed (pure: no I/O; docs/models.md).
 *
 * Three documents, each canonical JSON text signed by the hub's Ed25519 key
 * over a domain string and the text, so that one kind can never pass for
 * another:
 *
 *   - the manifest of an artifact's bytes: its SHA-256, size, chunk size
 *     and the SHA-256 of every chunk. A site keeps it with the chunks it
 *     holds and checks every chunk against it, whoever sent the chunk (the
 *     hub or a peer site): a wrong chunk is refused before it is written.
 *   - the model record: one version of a named model in the hub's registry
 *     (name, version, the artifact's hash and size, who made it and when,
 *     its parent version, its lineage and its data class). `outpost model
 *     show` checks its signature with the hub key from cli.conf.
 *
 * Chunks held are a bitmap (bit i: chunk i is written and checked), which
 * a site persists so that a cut link or a restart resumes where it
 * stopped, asking only for the chunks it lacks.
 *
 * Also here: model names and references ("NAME" or "NAME@VERSION") and the
 * lineage a record may carry.
 */
#ifndef OUTPOST_ARTIFACT_H
#define OUTPOST_ARTIFACT_H

#include "wire/ident.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define ARTIFACT_CHUNK_BYTES (256 * 1024)  /* what the hub cuts artifacts into */
#define ARTIFACT_MIN_CHUNK_BYTES 4096      /* a manifest's chunk size, at least */
#define ARTIFACT_MAX_CHUNK_BYTES (1 << 20) /* and at most: one chunk, one message */
#define ARTIFACT_MAX_BYTES (4LL << 30)     /* 4 GiB */
#define ARTIFACT_MAX_CHUNKS 65536          /* the manifest then holds 4 MiB of hex */
#define ARTIFACT_MAX_MANIFEST_BYTES (ARTIFACT_MAX_CHUNKS * 64 + 512)
#define ARTIFACT_MAX_RECORD_BYTES (8 * 1024) /* a model record, its lineage included */
#define ARTIFACT_MAX_LINEAGE_BYTES 4096

/* The domains the hub signs under: a manifest's signature cannot pass for a record's. */
#define ARTIFACT_MANIFEST_DOMAIN "outpost-manifest-v1\n"
#define ARTIFACT_RECORD_DOMAIN "outpost-model-v1\n"

typedef struct artifact_manifest {
    uint8_t sha256[32]; /* of the whole artifact */
    char sha256_hex[65];
    int64_t size_bytes;
    int64_t chunk_bytes;
    int64_t n_chunks;
    uint8_t (*chunk_sha)[32]; /* n_chunks hashes, owned (artifact_manifest_clear) */
} artifact_manifest;

/*
 * A manifest from the artifact's hash, size, chunk size and chunk hashes
 * (copied). OP_OK, OP_EINVAL (sizes out of the bounds above, or a chunk
 * count that does not match the size), OP_ENOMEM. Released with
 * artifact_manifest_clear.
 */
int artifact_manifest_make(const uint8_t sha256[32], int64_t size_bytes, int64_t chunk_bytes,
                           const uint8_t (*chunk_sha)[32], artifact_manifest *out);
/* Frees the chunk hashes and zeroes m (twice is safe). */
void artifact_manifest_clear(artifact_manifest *m);
/* The canonical text of m (malloc'd, the caller frees), or NULL when out of memory. */
char *artifact_manifest_text(const artifact_manifest *m);
/*
 * A manifest the site was given: its signature by hub_pk over the
 * manifest domain and text first, then its fields, bounds and chunk count.
 * OP_OK (out filled: artifact_manifest_clear), OP_ESIG, OP_EINVAL,
 * OP_ETOOBIG, OP_ENOMEM; err says what is wrong.
 */
int artifact_manifest_open(const char *text, const char *sig_hex, const uint8_t hub_pk[32],
                           artifact_manifest *out, char *err, size_t err_len);

/* The length of chunk index (the last one may be shorter), 0 when out of range. */
int64_t artifact_chunk_len(const artifact_manifest *m, int64_t index);
/*
 * Whether data is chunk index of the artifact: index in range, the chunk's
 * exact length, then its SHA-256. OP_OK, OP_EINVAL (index or length),
 * OP_ESIG (the hash differs: altered or another chunk).
 */
int artifact_chunk_check(const artifact_manifest *m, int64_t index, const void *data, size_t len);

/*
 * Chunks on the wire are base64 inside their JSON message. These two are
 * table-driven, several times faster than libsodium's constant-time
 * codec, which made base64 the site's largest cost per chunk: chunk bytes
 * are model weights, not keys, and every chunk is checked against the
 * manifest after decoding anyway. Encode: *out malloc'd, NUL-terminated (the
 * caller frees), NULL when out of memory. Decode (padded standard
 * alphabet, nothing else): at most max_len bytes into *out (malloc'd);
 * OP_OK, OP_EINVAL, OP_ETOOBIG, OP_ENOMEM.
 */
char *artifact_b64_encode(const uint8_t *data, size_t len);
int artifact_b64_decode(const char *text, size_t max_len, uint8_t **out, size_t *out_len);

/* Ed25519 signature (hex) of domain || text. */
void artifact_sign(const ident *signer, const char *domain, const char *text, char sig_hex[129]);
/* OP_OK if sig_hex is pk's signature of domain || text, else OP_ESIG. */
int artifact_verify(const uint8_t pk[32], const char *domain, const char *text,
                    const char *sig_hex);

/* ---------- which chunks are held ---------- */

/* The bytes of a bitmap of n chunks. */
size_t artifact_bitmap_bytes(int64_t n_chunks);
int artifact_bit(const uint8_t *bits, int64_t index);
void artifact_bit_set(uint8_t *bits, int64_t index);
void artifact_bit_clear(uint8_t *bits, int64_t index);
int64_t artifact_bits_count(const uint8_t *bits, int64_t n_chunks);
/*
 * Up to max chunk indices into out, lowest first from index from (then
 * wrapping round), that are neither held nor asked (asked may be NULL):
 * what to request next. Returns how many.
 */
int artifact_missing(const uint8_t *held, const uint8_t *asked, int64_t n_chunks, int64_t from,
                     int64_t *out, int max);

/* ---------- models: names, references, records ---------- */

/* 1 if text is a SHA-256 as 64 lowercase hex digits. */
int artifact_sha_ok(const char *text);
/* 1 if name is a model name: [A-Za-z0-9_-]{1,63}. */
int artifact_valid_name(const char *name);
/*
 * "NAME" (version 0: the latest) or "NAME@VERSION" (1 .. 2^31-1) into name
 * and *version. OP_OK or OP_EINVAL.
 */
int artifact_parse_ref(const char *ref, char name[64], int64_t *version);

/* The data classes a model may have (jobspec's DATA_* numbers). */
typedef struct artifact_record {
    char name[64];
    int64_t version;
    char sha256_hex[65];
    int64_t size_bytes;
    int64_t created_at_ms;
    char created_by[64];  /* an operator id, or a site id for a model a site learned */
    int64_t parent;       /* the version it was made from, 0 none */
    int data_class;       /* DATA_PUBLIC, DATA_CONFIDENTIAL, DATA_SITE_PRIVATE */
    char origin[64];      /* the site whose data it learned from ("" none; required for
                             site-private) */
    const cJSON *lineage; /* borrowed: artifact_lineage_check'ed object, or NULL */
} artifact_record;

/*
 * A lineage as a record may carry it: an object of at most
 * ARTIFACT_MAX_LINEAGE_BYTES with only "site" (an id), "from" and "to" (the
 * data window: a string of up to 64 characters or a number), "rows" (an
 * integer >= 0), "metrics" (up to 32 numbers by name) and "note" (up to 256
 * characters). OP_OK, or OP_EINVAL / OP_ETOOBIG with err naming the field.
 */
int artifact_lineage_check(const cJSON *lineage, char *err, size_t err_len);
/* The canonical text of r (malloc'd, the caller frees), or NULL when out of memory. */
char *artifact_record_text(const artifact_record *r);

#endif
