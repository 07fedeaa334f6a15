/*
 * Unit tests of the SQLite audit log (src/auditlog.c) on real files:
 * roots and proofs against the pure reference, reopen and continue, and
 * tampering done to the file behind the log's back (a changed byte, a
 * deleted entry, two entries swapped, a truncated tail, a rewrite with
 * recomputed hashes, a rollback to an earlier copy): verification fails and
 * names what it found.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "helpers/testkit.h"
#include "io/auditlog.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX];
    ident key;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (testkit_mkdtemp(f->dir, sizeof f->dir) != 0 ||
        util_fmt(f->path, sizeof f->path, "%s/audit.db", f->dir) != OP_OK) {
        free(f);
        return -1;
    }
    crypto_sign_keypair(f->key.pk, f->key.sk);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = testkit_rmtree(f->dir);
    free(f);
    return rc;
}

static auditlog *filled(fixture *f, uint64_t n, audit_sth *head)
{
    auditlog *log = NULL;
    assert_int_equal(auditlog_open(f->path, &log), OP_OK);
    assert_int_equal(auditlog_begin(log), OP_OK);
    for (uint64_t i = 0; i < n; i++) {
        char body[64];
        snprintf(body, sizeof body, "job %llu placed on dc-%llu", (unsigned long long)i,
                 (unsigned long long)(i % 3));
        uint64_t idx;
        assert_int_equal(
            auditlog_append(log, 1795816226000 + (int64_t)i, "placement", "job", body, &idx),
            OP_OK);
        assert_int_equal(idx, i);
    }
    assert_int_equal(auditlog_commit(log), OP_OK);
    if (head) assert_int_equal(auditlog_sign_head(log, &f->key, 1795816227000, head), OP_OK);
    return log;
}

/* Reference root recomputed from the stored entry texts alone. */
static void reference_root(auditlog *log, uint64_t size, uint8_t out[32])
{
    uint8_t(*leaves)[32] = calloc(size ? size : 1, 32);
    for (uint64_t i = 0; i < size; i++) {
        char *text = NULL;
        assert_int_equal(auditlog_entry(log, i, &text, leaves[i]), OP_OK);
        free(text);
    }
    audit_root_of((const uint8_t(*)[32])leaves, size, out);
    free(leaves);
}

static void sql(fixture *f, const char *statement)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, statement, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "sql: %s\n", err);
    sqlite3_free(err);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

static void expect_finding(fixture *f, const audit_sth *trusted, const char *needle)
{
    auditlog *log = NULL;
    char finding[256];
    assert_int_equal(auditlog_open(f->path, &log), OP_OK);
    assert_int_equal(auditlog_verify(log, f->key.pk, trusted, finding, sizeof finding), OP_ESIG);
    testkit_assert_contains(finding, needle);
    auditlog_close(log);
}

static void test_roots_proofs_and_reopen(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog *log = filled(f, 1000, &head);
    uint8_t want[32], root[32];
    reference_root(log, 1000, want);
    assert_memory_equal(head.root, want, 32);
    for (uint64_t size = 0; size <= 1000; size += 37) {
        reference_root(log, size, want);
        assert_int_equal(auditlog_root(log, size, root), OP_OK);
        assert_memory_equal(root, want, 32);
    }
    uint8_t proof[AUDIT_MAX_PROOF][32];
    size_t len;
    for (uint64_t i = 0; i < 1000; i += 71) {
        char *text;
        uint8_t leaf[32];
        assert_int_equal(auditlog_entry(log, i, &text, leaf), OP_OK);
        free(text);
        assert_int_equal(auditlog_inclusion_proof(log, i, 1000, proof, &len), OP_OK);
        assert_int_equal(
            audit_verify_inclusion(leaf, i, 1000, (const uint8_t(*)[32])proof, len, head.root),
            OP_OK);
    }
    uint8_t old_root[32];
    assert_int_equal(auditlog_root(log, 333, old_root), OP_OK);
    assert_int_equal(auditlog_consistency_proof(log, 333, 1000, proof, &len), OP_OK);
    assert_int_equal(
        audit_verify_consistency(333, 1000, old_root, head.root, (const uint8_t(*)[32])proof, len),
        OP_OK);
    char finding[256];
    assert_int_equal(auditlog_verify(log, f->key.pk, &head, finding, sizeof finding), OP_OK);
    auditlog_close(log);
    /* Reopen and continue: the frontier is rebuilt from the stored nodes. */
    assert_int_equal(auditlog_open(f->path, &log), OP_OK);
    assert_int_equal(auditlog_size(log), 1000);
    for (int i = 0; i < 25; i++)
        assert_int_equal(auditlog_append(log, 1, "x", "y", "z", NULL), OP_OK);
    reference_root(log, 1025, want);
    assert_int_equal(auditlog_root(log, 1025, root), OP_OK);
    assert_memory_equal(root, want, 32);
    assert_int_equal(auditlog_verify(log, f->key.pk, &head, finding, sizeof finding), OP_OK);
    auditlog_close(log);
}

static void test_changed_byte_is_named(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog_close(filled(f, 100, &head));
    sql(f, "UPDATE audit_entries SET entry = replace(entry, 'dc-1', 'dc-9') WHERE idx = 40");
    expect_finding(f, &head, "entry 40 was changed");
}

static void test_deleted_entry_is_named(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog_close(filled(f, 100, &head));
    sql(f, "DELETE FROM audit_entries WHERE idx = 41");
    expect_finding(f, &head, "entry 41 is missing");
}

/*
 * A stored subtree node gone (what a rollback the log did not follow used to
 * leave): the daemons refuse to attach, and verify, the command their error
 * names, still runs and says what is missing; no append builds on it.
 */
static void test_missing_node_is_named_by_verify(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog_close(filled(f, 100, &head)); /* 100 = 64 + 32 + 4: frontier nodes at 6, 5, 2 */
    sql(f, "DELETE FROM audit_nodes WHERE level = 5 AND idx = 2");
    expect_finding(f, &head, "stored node (5, 2) is missing");
    auditlog *log = NULL;
    assert_int_equal(auditlog_open(f->path, &log), OP_OK);
    assert_int_equal(auditlog_append(log, 1795816230000, "placement", "job", "x", NULL), OP_ESTORE);
    auditlog_close(log);
    store *db = NULL;
    assert_int_equal(store_open(f->path, "", 1, &db), OP_OK);
    assert_int_not_equal(auditlog_attach(db, &log), OP_OK);
    store_close(db);
}

static void test_reordered_entries_are_named(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog_close(filled(f, 100, &head));
    sql(f, "UPDATE audit_entries SET idx = -1 WHERE idx = 10;"
           "UPDATE audit_entries SET idx = 10 WHERE idx = 11;"
           "UPDATE audit_entries SET idx = 11 WHERE idx = -1;");
    expect_finding(f, &head, "position 10 says it is entry 11");
}

static void test_truncated_tail_is_found(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog_close(filled(f, 100, &head));
    sql(f, "DELETE FROM audit_entries WHERE idx >= 90");
    expect_finding(f, NULL, "log truncated: 90 entries, a signed head says 100");
}

static void test_rewrite_with_recomputed_hashes_is_found(void **state)
{
    fixture *f = *state;
    audit_sth head;
    auditlog_close(filled(f, 100, &head));
    /* The attacker edits an entry and fixes its leaf hash too; the signed head gives it away. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    const char *forged = "{\"i\":7,\"ts\":1,\"kind\":\"placement\",\"subject\":\"job\","
                         "\"body\":\"job 7 placed on car-evil\"}";
    uint8_t leaf[32];
    audit_leaf_hash(forged, strlen(forged), leaf);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "UPDATE audit_entries SET entry=? WHERE idx=7", -1, &st, NULL);
    sqlite3_bind_text(st, 1, forged, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "UPDATE audit_nodes SET hash=? WHERE level=0 AND idx=7", -1, &st, NULL);
    sqlite3_bind_blob(st, 1, leaf, 32, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    expect_finding(f, NULL, "were changed after the head at size 100 was signed");
    expect_finding(f, &head, "history rewritten: the first 100 entries no longer match");
}

static void test_rollback_to_earlier_copy_is_found(void **state)
{
    fixture *f = *state;
    auditlog *log = filled(f, 50, NULL);
    auditlog_close(log);
    char copy[PATH_MAX], cmd[4 * PATH_MAX + 64];
    testkit_path(copy, sizeof copy, f->dir, "copy.db");
    assert_int_equal(util_fmt(cmd, sizeof cmd, "cp %s %s", f->path, copy), OP_OK);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(auditlog_open(f->path, &log), OP_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(auditlog_append(log, 1, "x", "y", "z", NULL), OP_OK);
    audit_sth trusted; /* e.g. kept by a site, which witnessed this head */
    assert_int_equal(auditlog_sign_head(log, &f->key, 2, &trusted), OP_OK);
    auditlog_close(log);
    assert_int_equal(util_fmt(cmd, sizeof cmd, "rm -f %s-wal %s-shm && cp %s %s", f->path, f->path,
                              copy, f->path),
                     OP_OK);
    assert_int_equal(system(cmd), 0);
    expect_finding(f, &trusted, "rolled back: 50 entries, a trusted head says 100");
    /* A head from another key is not trusted. */
    ident other;
    crypto_sign_keypair(other.pk, other.sk);
    audit_sth foreign = trusted;
    foreign.size = 10;
    audit_sth_sign(&other, &foreign);
    expect_finding(f, &foreign, "does not verify");
}

/*
 * Entries appended in a transaction the caller rolls back: after a reload
 * the log continues from what the store holds, and verifies (without the
 * reload the next append refers to nodes that were never stored).
 */
static void test_rolled_back_appends_are_forgotten(void **state)
{
    fixture *f = *state;
    auditlog_close(filled(f, 5, NULL));
    store *db = NULL;
    auditlog *log = NULL;
    assert_int_equal(store_open(f->path, "", 1, &db), OP_OK);
    assert_int_equal(auditlog_attach(db, &log), OP_OK);
    assert_int_equal(store_begin(db), OP_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(auditlog_append(log, 1795816228000, "placement", "job", "lost", NULL),
                         OP_OK);
    assert_int_equal(auditlog_size(log), 8);
    store_rollback(db);
    assert_int_equal(auditlog_reload(log), OP_OK);
    assert_int_equal(auditlog_size(log), 5);
    uint64_t idx = 0;
    assert_int_equal(auditlog_append(log, 1795816229000, "placement", "job", "kept", &idx), OP_OK);
    assert_int_equal(idx, 5);
    audit_sth head;
    assert_int_equal(auditlog_sign_head(log, &f->key, 1795816230000, &head), OP_OK);
    uint8_t want[32];
    reference_root(log, 6, want);
    assert_memory_equal(head.root, want, 32);
    char finding[256] = "";
    assert_int_equal(auditlog_verify(log, f->key.pk, &head, finding, sizeof finding), OP_OK);
    auditlog_close(log);
    store_close(db);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roots_proofs_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_byte_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_entry_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reordered_entries_are_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_node_is_named_by_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail_is_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_with_recomputed_hashes_is_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollback_to_earlier_copy_is_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_appends_are_forgotten, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
