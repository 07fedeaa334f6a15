/*
 * auditlog: the append-only audit log stored in SQLite, over the pure
 * Merkle core in audit.h.
 *
 * Tables: audit_entries(idx, entry) holds each entry's canonical JSON text
 * {"i","ts","kind","subject","body"} (the index inside the text makes a
 * reordering visible); audit_nodes(level, idx, hash) holds the leaf hashes
 * (level 0) and the hash of every complete aligned subtree, so that a root
 * or a proof costs O(log n) lookups; audit_heads holds signed tree heads.
 * Appends are batched by the caller's transaction (auditlog_begin/commit).
 * auditlog_verify() trusts none of the stored hashes: it recomputes the
 * tree from the entries and checks it against every signed head and an
 * optional head trusted from elsewhere, naming what it finds.
 */
#ifndef OUTPOST_AUDITLOG_H
#define OUTPOST_AUDITLOG_H

#include "core/audit.h"
#include "io/store.h"
#include "wire/ident.h"

#include <cJSON.h>

#include <stddef.h>
#include <stdint.h>

typedef struct auditlog auditlog;

/*
 * A signed tree head as JSON {"size","root","ts","sig"} (hex), as it travels
 * in messages, proofs and trusted-head files. to_json returns NULL on
 * allocation failure; from_json returns OP_EINVAL for anything malformed.
 */
cJSON *auditlog_head_to_json(const audit_sth *head);
int auditlog_head_from_json(const cJSON *obj, audit_sth *head);

/* Opens (creating) the log in the SQLite file at path. OP_ESTORE, OP_ENOMEM. */
int auditlog_open(const char *path, auditlog **out);
/*
 * Keeps the log in an existing store (its tables next to the caller's), so
 * that entries commit in the caller's transactions. The store stays the
 * caller's; auditlog_close does not close it.
 */
int auditlog_attach(store *db, auditlog **out);
void auditlog_close(auditlog *log);

/* Batch appends in one durable transaction. OP_ESTORE. */
int auditlog_begin(auditlog *log);
int auditlog_commit(auditlog *log);

/*
 * Appends one entry (outside a batch it commits by itself). *index gets its
 * position. OP_ESTORE, OP_ENOMEM, OP_EINVAL (NULL kind).
 */
int auditlog_append(auditlog *log, int64_t ts_ms, const char *kind, const char *subject,
                    const char *body, uint64_t *index);

uint64_t auditlog_size(const auditlog *log);

/*
 * Re-reads the size and the frontier from the store. An attached log keeps
 * them in memory as entries are appended inside the caller's transaction;
 * after the caller rolls that transaction back (or back to a savepoint) it
 * calls this, or the next append continues a tree the store does not hold.
 * OP_ESTORE (a node missing: the store is damaged).
 */
int auditlog_reload(auditlog *log);

/* MTH of the first size entries. OP_EINVAL if size > the log's size. */
int auditlog_root(auditlog *log, uint64_t size, uint8_t out[32]);

/* Signs the current (size, root) with key, stores and returns it. */
int auditlog_sign_head(auditlog *log, const ident *key, int64_t ts_ms, audit_sth *out);

int auditlog_inclusion_proof(auditlog *log, uint64_t index, uint64_t size, uint8_t proof[][32],
                             size_t *len);
int auditlog_consistency_proof(auditlog *log, uint64_t old_size, uint64_t size, uint8_t proof[][32],
                               size_t *len);

/* The stored entry text (malloc'd, caller frees) and its leaf hash. OP_ENOTFOUND. */
int auditlog_entry(auditlog *log, uint64_t index, char **text, uint8_t leaf[32]);

/*
 * Recomputes the whole tree from the entries. OP_OK if every entry is in
 * place and matches its stored leaf, every stored head verifies with pk and
 * matches the recomputed root at its size, and trusted (if not NULL) does
 * too and is not ahead of the log. Otherwise OP_ESIG (or OP_ESTORE) with
 * the first finding in finding, e.g. "entry 41 is missing" or "log
 * truncated: 900 entries, a trusted head says 1000".
 */
int auditlog_verify(auditlog *log, const uint8_t pk[32], const audit_sth *trusted, char *finding,
                    size_t finding_len);

#endif
