#include "io/auditlog.h"

#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/util.h"
#include "io/store.h"

#include <cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDITLOG_LEVELS 64

static const char *auditlog_schema =
    "CREATE TABLE IF NOT EXISTS audit_entries(idx INTEGER PRIMARY KEY, entry TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit_nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS audit_heads(size INTEGER PRIMARY KEY, root BLOB NOT NULL,"
    " ts INTEGER NOT NULL, sig BLOB NOT NULL);";

struct auditlog {
    store *db;
    int owns_db;
    uint64_t size;
    /* frontier[l]: the complete subtree of 2^l leaves still waiting for its right sibling. */
    uint8_t frontier[AUDITLOG_LEVELS][32];
    /* opened for verification with a stored node missing: what is missing (appends refused) */
    char damage[96];
};

static int get_node(auditlog *log, int level, uint64_t idx, uint8_t out[32])
{
    store_q *st = store_prepare(log->db, "SELECT hash FROM audit_nodes WHERE level=? AND idx=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int(st, 1, level);
    store_q_bind_int64(st, 2, (int64_t)idx);
    int rc = OP_ENOTFOUND;
    if (store_q_step(st) == STORE_ROW && store_q_bytes(st, 0) == 32) {
        memcpy(out, store_q_blob(st, 0), 32);
        rc = OP_OK;
    }
    store_q_reset(st);
    return rc;
}

static int put_node(auditlog *log, int level, uint64_t idx, const uint8_t hash[32])
{
    store_q *st = store_prepare(
        log->db, "INSERT OR REPLACE INTO audit_nodes(level, idx, hash) VALUES(?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_int(st, 1, level);
    store_q_bind_int64(st, 2, (int64_t)idx);
    store_q_bind_blob(st, 3, hash, 32);
    return store_q_run(st);
}

static int load(auditlog *log);

int auditlog_open(const char *path, auditlog **out)
{
    auditlog *log = calloc(1, sizeof *log);
    if (!log) return OP_ENOMEM;
    int rc = store_open(path, auditlog_schema, 1, &log->db);
    if (rc != OP_OK) {
        free(log);
        return rc;
    }
    log->owns_db = 1;
    /* a missing stored node is kept for auditlog_verify to report; appends are refused */
    if ((rc = load(log)) != OP_OK && !log->damage[0]) {
        auditlog_close(log);
        return rc;
    }
    *out = log;
    return OP_OK;
}

int auditlog_attach(store *db, auditlog **out)
{
    auditlog *log = calloc(1, sizeof *log);
    if (!log) return OP_ENOMEM;
    log->db = db;
    int rc = store_exec(db, auditlog_schema);
    if (rc == OP_OK) rc = load(log);
    if (rc != OP_OK && log->damage[0])
        log_error("audit",
                  "the audit log's %s; `outpost audit verify` says what else is wrong; then "
                  "restore the last backup (docs/operations.md, Backups)",
                  log->damage);
    if (rc != OP_OK) {
        free(log);
        return rc;
    }
    *out = log;
    return OP_OK;
}

/* Size and frontier from the stored nodes; a missing node is named in log->damage. */
static int load(auditlog *log)
{
    store_q *st = store_prepare(log->db, "SELECT IFNULL(MAX(idx) + 1, 0) FROM audit_entries");
    if (!st || store_q_step(st) != STORE_ROW) {
        if (st) store_q_reset(st);
        return OP_ESTORE;
    }
    log->size = (uint64_t)store_q_int64(st, 0);
    store_q_reset(st);
    for (int l = 0; l < AUDITLOG_LEVELS && (log->size >> l); l++) {
        if (!((log->size >> l) & 1)) continue;
        if (get_node(log, l, (log->size >> l) - 1, log->frontier[l]) != OP_OK) {
            snprintf(log->damage, sizeof log->damage, "stored node (%d, %llu) is missing", l,
                     (unsigned long long)((log->size >> l) - 1));
            return OP_ESTORE;
        }
    }
    return OP_OK;
}

void auditlog_close(auditlog *log)
{
    if (!log) return;
    if (log->owns_db) store_close(log->db);
    free(log);
}

cJSON *auditlog_head_to_json(const audit_sth *head)
{
    cJSON *o = cJSON_CreateObject();
    char hex[129];
    if (!o) return NULL;
    jsonx_add_int(o, "size", (int64_t)head->size);
    util_hex(head->root, 32, hex);
    cJSON_AddStringToObject(o, "root", hex);
    jsonx_add_int(o, "ts", head->ts_ms);
    util_hex(head->sig, 64, hex);
    cJSON_AddStringToObject(o, "sig", hex);
    return o;
}

int auditlog_head_from_json(const cJSON *o, audit_sth *head)
{
    int64_t size, ts;
    memset(head, 0, sizeof *head);
    const char *root = jsonx_str(o, "root"), *sig = jsonx_str(o, "sig");
    if (!o || jsonx_int(o, "size", 0, INT64_MAX, &size) != OP_OK ||
        jsonx_int(o, "ts", 0, INT64_MAX, &ts) != OP_OK || !root || !sig ||
        util_unhex(root, head->root, 32) != OP_OK || util_unhex(sig, head->sig, 64) != OP_OK)
        return OP_EINVAL;
    head->size = (uint64_t)size;
    head->ts_ms = ts;
    return OP_OK;
}

int auditlog_begin(auditlog *log)
{
    return store_begin(log->db);
}

int auditlog_commit(auditlog *log)
{
    return store_commit(log->db);
}

uint64_t auditlog_size(const auditlog *log)
{
    return log->size;
}

int auditlog_reload(auditlog *log)
{
    memset(log->frontier, 0, sizeof log->frontier);
    log->damage[0] = '\0';
    int rc = load(log);
    if (rc != OP_OK && log->damage[0]) log_error("audit", "the audit log's %s", log->damage);
    return rc;
}

static char *entry_text(uint64_t idx, int64_t ts_ms, const char *kind, const char *subject,
                        const char *body)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    jsonx_add_int(o, "i", (int64_t)idx);
    jsonx_add_int(o, "ts", ts_ms);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "subject", subject ? subject : "");
    cJSON_AddStringToObject(o, "body", body ? body : "");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int auditlog_append(auditlog *log, int64_t ts_ms, const char *kind, const char *subject,
                    const char *body, uint64_t *index)
{
    if (!kind) return OP_EINVAL;
    if (log->damage[0]) return OP_ESTORE;
    uint64_t idx = log->size;
    char *text = entry_text(idx, ts_ms, kind, subject, body);
    if (!text) return OP_ENOMEM;
    int own_tx = !store_in_tx(log->db);
    int rc = own_tx ? store_begin(log->db) : OP_OK;
    store_q *st = rc == OP_OK
                      ? store_prepare(log->db, "INSERT INTO audit_entries(idx, entry) VALUES(?,?)")
                      : NULL;
    if (!st) rc = OP_ESTORE;
    uint8_t cur[32], frontier[AUDITLOG_LEVELS][32];
    memcpy(frontier, log->frontier, sizeof frontier);
    if (rc == OP_OK) {
        store_q_bind_int64(st, 1, (int64_t)idx);
        store_q_bind_text(st, 2, text);
        rc = store_q_run(st);
    }
    audit_leaf_hash(text, strlen(text), cur);
    free(text);
    if (rc == OP_OK) rc = put_node(log, 0, idx, cur);
    /* Every complete subtree this leaf closes gets its node. */
    for (int l = 0; rc == OP_OK && ((idx >> l) & 1); l++) {
        audit_node_hash(frontier[l], cur, cur);
        rc = put_node(log, l + 1, idx >> (l + 1), cur);
    }
    if (rc == OP_OK) {
        int l = 0;
        while ((idx >> l) & 1)
            l++;
        memcpy(frontier[l], cur, 32);
    }
    if (own_tx) {
        if (rc == OP_OK)
            rc = store_commit(log->db);
        else
            store_rollback(log->db);
    }
    if (rc != OP_OK) return rc;
    memcpy(log->frontier, frontier, sizeof frontier);
    log->size = idx + 1;
    if (index) *index = idx;
    return OP_OK;
}

/* MTH(D[start:end]) from stored complete subtrees. */
static int subtree(void *ctx, uint64_t start, uint64_t end, uint8_t out[32])
{
    auditlog *log = ctx;
    uint64_t n = end - start;
    if (start >= end || end > log->size) return OP_EINVAL;
    if ((n & (n - 1)) == 0 && start % n == 0) {
        int level = 0;
        while ((UINT64_C(1) << level) < n)
            level++;
        return get_node(log, level, start >> level, out);
    }
    uint64_t k = audit_split(n);
    uint8_t left[32], right[32];
    int rc = subtree(log, start, start + k, left);
    if (rc == OP_OK) rc = subtree(log, start + k, end, right);
    if (rc == OP_OK) audit_node_hash(left, right, out);
    return rc;
}

int auditlog_root(auditlog *log, uint64_t size, uint8_t out[32])
{
    if (size > log->size) return OP_EINVAL;
    if (size == 0) {
        audit_empty_root(out);
        return OP_OK;
    }
    return subtree(log, 0, size, out);
}

int auditlog_sign_head(auditlog *log, const ident *key, int64_t ts_ms, audit_sth *out)
{
    memset(out, 0, sizeof *out);
    out->size = log->size;
    out->ts_ms = ts_ms;
    int rc = auditlog_root(log, log->size, out->root);
    if (rc != OP_OK) return rc;
    audit_sth_sign(key, out);
    store_q *st = store_prepare(
        log->db, "INSERT OR REPLACE INTO audit_heads(size, root, ts, sig) VALUES(?,?,?,?)");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, (int64_t)out->size);
    store_q_bind_blob(st, 2, out->root, 32);
    store_q_bind_int64(st, 3, out->ts_ms);
    store_q_bind_blob(st, 4, out->sig, 64);
    return store_q_run(st);
}

int auditlog_inclusion_proof(auditlog *log, uint64_t index, uint64_t size, uint8_t proof[][32],
                             size_t *len)
{
    if (size > log->size) return OP_EINVAL;
    return audit_inclusion_proof(index, size, subtree, log, proof, len);
}

int auditlog_consistency_proof(auditlog *log, uint64_t old_size, uint64_t size, uint8_t proof[][32],
                               size_t *len)
{
    if (size > log->size) return OP_EINVAL;
    return audit_consistency_proof(old_size, size, subtree, log, proof, len);
}

int auditlog_entry(auditlog *log, uint64_t index, char **text, uint8_t leaf[32])
{
    store_q *st = store_prepare(log->db, "SELECT entry FROM audit_entries WHERE idx=?");
    if (!st) return OP_ESTORE;
    store_q_bind_int64(st, 1, (int64_t)index);
    int rc = OP_ENOTFOUND;
    if (store_q_step(st) == STORE_ROW) {
        *text = strdup(store_q_text(st, 0));
        rc = *text ? OP_OK : OP_ENOMEM;
        if (rc == OP_OK) audit_leaf_hash(*text, strlen(*text), leaf);
    }
    store_q_reset(st);
    return rc;
}

/* The signed heads, ascending by size (caller frees). */
static int load_heads(auditlog *log, audit_sth **heads, size_t *n)
{
    *heads = NULL;
    *n = 0;
    size_t cap = 0;
    store_q *st =
        store_prepare(log->db, "SELECT size, root, ts, sig FROM audit_heads ORDER BY size");
    if (!st) return OP_ESTORE;
    while (store_q_step(st) == STORE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            audit_sth *grown = realloc(*heads, cap * sizeof *grown);
            if (!grown) {
                store_q_reset(st);
                return OP_ENOMEM;
            }
            *heads = grown;
        }
        audit_sth *h = &(*heads)[(*n)++];
        memset(h, 0, sizeof *h);
        h->size = (uint64_t)store_q_int64(st, 0);
        h->ts_ms = store_q_int64(st, 2);
        if (store_q_bytes(st, 1) == 32) memcpy(h->root, store_q_blob(st, 1), 32);
        if (store_q_bytes(st, 3) == 64) memcpy(h->sig, store_q_blob(st, 3), 64);
    }
    store_q_reset(st);
    return OP_OK;
}

/* Root of the first `size` leaves from a frontier (the compact range of a prefix). */
static void frontier_root(uint8_t frontier[][32], uint64_t size, uint8_t out[32])
{
    if (size == 0) {
        audit_empty_root(out);
        return;
    }
    int have = 0;
    for (int l = 0; l < AUDITLOG_LEVELS; l++) {
        if (!((size >> l) & 1)) continue;
        if (!have) {
            memcpy(out, frontier[l], 32);
            have = 1;
        } else {
            audit_node_hash(frontier[l], out, out);
        }
    }
}

/* A verification in progress: the heads to meet, the tree of the entries checked so far. */
typedef struct verifier {
    const uint8_t *pk;
    const audit_sth *trusted;
    int trusted_checked;
    audit_sth *heads; /* the stored heads, ascending by size */
    size_t n_heads, next_head;
    uint8_t frontier[AUDITLOG_LEVELS][32];
    char *finding;
    size_t finding_len;
} verifier;

/*
 * With `size` entries checked, the trusted head (when it is of this size)
 * and every stored head of this size must verify with the key and match the
 * tree of those entries. OP_OK or OP_ESIG with the finding.
 */
static int check_heads_at(verifier *v, uint64_t size)
{
    uint8_t root[32];
    if (v->trusted && v->trusted->size == size) {
        v->trusted_checked = 1;
        frontier_root(v->frontier, size, root);
        if (audit_sth_verify(v->pk, v->trusted) != OP_OK) {
            snprintf(v->finding, v->finding_len, "the trusted head does not verify with this key");
            return OP_ESIG;
        }
        if (sodium_memcmp(root, v->trusted->root, 32) != 0) {
            snprintf(v->finding, v->finding_len,
                     "history rewritten: the first %llu entries no longer match the "
                     "trusted head",
                     (unsigned long long)v->trusted->size);
            return OP_ESIG;
        }
    }
    while (v->next_head < v->n_heads && v->heads[v->next_head].size == size) {
        const audit_sth *h = &v->heads[v->next_head++];
        frontier_root(v->frontier, size, root);
        if (audit_sth_verify(v->pk, h) != OP_OK) {
            snprintf(v->finding, v->finding_len, "the signed head at size %llu has a bad signature",
                     (unsigned long long)h->size);
            return OP_ESIG;
        }
        if (sodium_memcmp(root, h->root, 32) != 0) {
            snprintf(v->finding, v->finding_len,
                     "entries before %llu were changed after the head at size %llu was "
                     "signed (%s)",
                     (unsigned long long)size, (unsigned long long)h->size,
                     v->next_head > 1 ? "the earlier heads still verify" : "first head");
            return OP_ESIG;
        }
    }
    return OP_OK;
}

/*
 * The entry row st holds must be entry `expect`, say so inside, and hash to
 * its stored leaf (the next row of leaves); then it joins the frontier.
 * OP_OK or OP_ESIG with the finding.
 */
static int check_entry(verifier *v, store_q *st, store_q *leaves, uint64_t expect)
{
    uint64_t idx = (uint64_t)store_q_int64(st, 0);
    const char *text = store_q_text(st, 1);
    if (idx != expect) {
        snprintf(v->finding, v->finding_len, "entry %llu is missing (next is %llu)",
                 (unsigned long long)expect, (unsigned long long)idx);
        return OP_ESIG;
    }
    /* Entries are written as {"i":<index>,...}: the index inside must be the position. */
    char prefix[40];
    int plen = snprintf(prefix, sizeof prefix, "{\"i\":%llu,", (unsigned long long)idx);
    if (strncmp(text, prefix, (size_t)plen) != 0) {
        long long claimed = -1;
        if (strncmp(text, "{\"i\":", 5) == 0) claimed = strtoll(text + 5, NULL, 10);
        snprintf(v->finding, v->finding_len,
                 "entry at position %llu says it is entry %lld (reordered or rewritten)",
                 (unsigned long long)idx, claimed);
        return OP_ESIG;
    }
    uint8_t cur[32];
    audit_leaf_hash(text, (size_t)store_q_bytes(st, 1), cur);
    int leaf_step = store_q_step(leaves);
    if (leaf_step != STORE_ROW || (uint64_t)store_q_int64(leaves, 0) != idx ||
        store_q_bytes(leaves, 1) != 32 || sodium_memcmp(cur, store_q_blob(leaves, 1), 32) != 0) {
        snprintf(v->finding, v->finding_len,
                 "entry %llu was changed: it no longer matches its leaf", (unsigned long long)idx);
        return OP_ESIG;
    }
    int l = 0;
    for (; (idx >> l) & 1; l++)
        audit_node_hash(v->frontier[l], cur, cur);
    memcpy(v->frontier[l], cur, 32);
    return OP_OK;
}

/*
 * Two ordered scans merged side by side (entries and leaves), cheaper than
 * a lookup per entry; the heads are checked as the tree reaches their size.
 * On OP_OK *size is the number of entries.
 */
static int scan_entries(auditlog *log, verifier *v, uint64_t *size)
{
    store_q *st = store_prepare(log->db, "SELECT idx, entry FROM audit_entries ORDER BY idx");
    store_q *leaves =
        store_prepare(log->db, "SELECT idx, hash FROM audit_nodes WHERE level=0 ORDER BY idx");
    if (!st || !leaves) return OP_ESTORE;
    uint64_t expect = 0;
    int rc = OP_OK;
    for (;; expect++) {
        if ((rc = check_heads_at(v, expect)) != OP_OK) break;
        int step = store_q_step(st);
        if (step == STORE_DONE) break;
        if (step != STORE_ROW) {
            rc = OP_ESTORE;
            break;
        }
        if ((rc = check_entry(v, st, leaves, expect)) != OP_OK) break;
    }
    store_q_reset(st);
    store_q_reset(leaves);
    *size = expect;
    return rc;
}

int auditlog_verify(auditlog *log, const uint8_t pk[32], const audit_sth *trusted, char *finding,
                    size_t finding_len)
{
    verifier v = {.pk = pk, .trusted = trusted, .finding = finding, .finding_len = finding_len};
    int rc = load_heads(log, &v.heads, &v.n_heads);
    if (rc != OP_OK) {
        free(v.heads);
        return rc;
    }
    snprintf(finding, finding_len, "ok");
    uint64_t size = 0;
    rc = scan_entries(log, &v, &size);
    if (rc == OP_OK && v.next_head < v.n_heads) {
        snprintf(finding, finding_len, "log truncated: %llu entries, a signed head says %llu",
                 (unsigned long long)size, (unsigned long long)v.heads[v.next_head].size);
        rc = OP_ESIG;
    }
    if (rc == OP_OK && log->damage[0]) {
        snprintf(finding, finding_len,
                 "the entries and every signed head verify, but the %s (the stored tree is "
                 "incomplete)",
                 log->damage);
        rc = OP_ESIG;
    }
    if (rc == OP_OK && trusted && !v.trusted_checked) {
        snprintf(finding, finding_len,
                 "log truncated or rolled back: %llu entries, a trusted head says %llu",
                 (unsigned long long)size, (unsigned long long)trusted->size);
        rc = OP_ESIG;
    }
    free(v.heads);
    return rc;
}
