/*
 * Unit tests for store, against real SQLite files in a fresh mkdtemp
 * directory (removed by the teardown): schema and pragmas at open,
 * transactions and their nesting, the statement cache, error mapping to
 * OP_ESTORE, corrupt and unwritable files, and durability when the process
 * dies mid-transaction (a forked child that _exits or is SIGKILLed).
 *
 * Forked children never call cmocka: an assertion there would longjmp into
 * the runner's copy in the child and run the remaining tests twice. They
 * report through their exit status instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"
#include "helpers/capture.h"
#include "helpers/testkit.h"
#include "io/store.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCHEMA                                                                                     \
    "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT);"                                   \
    "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, note TEXT);"

/* Relative to the repository root, where tests/run.sh runs every test. */
#define GARBAGE_FIXTURE "tests/fixtures/store/garbage.db"

static const char *const SQL_PUT = "INSERT INTO kv(k, v) VALUES(?1, ?2)";
static const char *const SQL_COUNT_KEY = "SELECT count(*) FROM kv WHERE k = ?1";
static const char *const SQL_GET = "SELECT v, v IS NULL FROM kv WHERE k = ?1";
static const char *const SQL_ALL_KEYS = "SELECT k FROM kv ORDER BY k";

typedef struct {
    char dir[PATH_MAX];
    char db_path[PATH_MAX];
} fixture;

static int store_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (testkit_mkdtemp(f->dir, sizeof f->dir) != 0 ||
        util_fmt(f->db_path, sizeof f->db_path, "%s/state.db", f->dir) != OP_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    fixture *f = *state;
    int rc = testkit_rmtree(f->dir);
    free(f);
    return rc;
}

static store *open_store(const char *path, int synchronous_full)
{
    store *s = NULL;
    assert_int_equal(store_open(path, SCHEMA, synchronous_full, &s), OP_OK);
    assert_non_null(s);
    return s;
}

/* Inserts (k, v); returns store_step_done's code. Safe in forked children. */
static int put(store *s, const char *k, const char *v)
{
    sqlite3_stmt *st = store_stmt(s, SQL_PUT);
    if (!st) return OP_ESTORE;
    store_bind_text(st, 1, k);
    store_bind_text(st, 2, v);
    return store_step_done(s, st);
}

/* Rows with key k (0 or 1); -1 if the query failed. Safe in forked children. */
static int count_key(store *s, const char *k)
{
    sqlite3_stmt *st = store_stmt(s, SQL_COUNT_KEY);
    if (!st) return -1;
    store_bind_text(st, 1, k);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    return n;
}

/* First column of a one-row PRAGMA (or any query) run on the raw handle. */
static int64_t query_int(store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void query_text(store *s, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, size, "%s", store_col_text(st, 0));
    sqlite3_finalize(st);
}

static void test_open_creates_file_schema_idempotent(void **state)
{
    fixture *f = *state;
    struct stat st;
    assert_int_not_equal(stat(f->db_path, &st), 0);

    store *s = open_store(f->db_path, 1);
    assert_int_equal(stat(f->db_path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(query_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 2);
    assert_int_equal(put(s, "kept", "1"), OP_OK);
    store_close(s);

    /* The same schema again: no error, no duplicate tables, data untouched. */
    s = open_store(f->db_path, 1);
    assert_int_equal(query_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 2);
    assert_int_equal(count_key(s, "kept"), 1);
    store_close(s);
    store_close(NULL);
}

static void test_pragmas_synchronous_full(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    char mode[16];
    query_text(s, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(query_int(s, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(query_int(s, "PRAGMA foreign_keys"), 1);
    store_close(s);
}

static void test_pragmas_synchronous_normal(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 0);
    char mode[16];
    query_text(s, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(query_int(s, "PRAGMA synchronous"), 1); /* NORMAL */
    store_close(s);
}

static void test_commit_durable_across_reopen(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_false(store_in_tx(s));
    assert_int_equal(store_begin(s), OP_OK);
    assert_true(store_in_tx(s));
    assert_int_equal(put(s, "job-1", "queued"), OP_OK);
    assert_int_equal(put(s, "job-2", "queued"), OP_OK);
    assert_int_equal(store_commit(s), OP_OK);
    assert_false(store_in_tx(s));
    store_close(s);

    s = open_store(f->db_path, 1);
    assert_int_equal(count_key(s, "job-1"), 1);
    assert_int_equal(count_key(s, "job-2"), 1);
    store_close(s);
}

static void test_rollback_discards(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(put(s, "before", "1"), OP_OK);
    assert_int_equal(store_begin(s), OP_OK);
    assert_int_equal(put(s, "doomed", "1"), OP_OK);
    assert_int_equal(count_key(s, "doomed"), 1); /* visible inside the transaction */
    store_rollback(s);
    assert_false(store_in_tx(s));
    assert_int_equal(count_key(s, "doomed"), 0);
    assert_int_equal(count_key(s, "before"), 1);
    store_rollback(s); /* no transaction: a no-op */
    store_close(s);

    s = open_store(f->db_path, 1);
    assert_int_equal(count_key(s, "doomed"), 0);
    store_close(s);
}

/*
 * A second connection on the same file sees only committed data, so it
 * tells whether the inner store_commit really committed or only counted.
 */
static void test_nested_commit_only_at_outermost(void **state)
{
    fixture *f = *state;
    store *writer = open_store(f->db_path, 1);
    store *reader = open_store(f->db_path, 1);

    assert_int_equal(store_begin(writer), OP_OK);
    assert_int_equal(store_begin(writer), OP_OK);
    assert_int_equal(put(writer, "inner", "1"), OP_OK);
    assert_int_equal(store_commit(writer), OP_OK);
    assert_true(store_in_tx(writer));
    assert_int_equal(count_key(writer, "inner"), 1);
    assert_int_equal(count_key(reader, "inner"), 0);

    assert_int_equal(store_commit(writer), OP_OK);
    assert_false(store_in_tx(writer));
    assert_int_equal(count_key(reader, "inner"), 1);

    store_close(reader);
    store_close(writer);
}

static void test_nested_outer_rollback_discards_inner(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(store_begin(s), OP_OK);
    assert_int_equal(put(s, "outer", "1"), OP_OK);
    assert_int_equal(store_begin(s), OP_OK);
    assert_int_equal(put(s, "inner", "1"), OP_OK);
    assert_int_equal(store_commit(s), OP_OK);
    store_rollback(s);
    assert_false(store_in_tx(s));
    assert_int_equal(count_key(s, "inner"), 0);
    assert_int_equal(count_key(s, "outer"), 0);
    store_close(s);

    s = open_store(f->db_path, 1);
    assert_int_equal(count_key(s, "inner"), 0);
    store_close(s);
}

static void test_commit_without_tx_is_ok(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(store_commit(s), OP_OK);
    assert_false(store_in_tx(s));
    /* The extra commit did not unbalance the count: a later pair still works. */
    assert_int_equal(store_begin(s), OP_OK);
    assert_true(store_in_tx(s));
    assert_int_equal(put(s, "k", "v"), OP_OK);
    assert_int_equal(store_commit(s), OP_OK);
    assert_false(store_in_tx(s));
    assert_int_equal(count_key(s, "k"), 1);
    store_close(s);
}

static void test_stmt_cache_returns_reset_statement(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(put(s, "a", "1"), OP_OK);
    assert_int_equal(put(s, "b", "2"), OP_OK);
    assert_int_equal(put(s, "c", "3"), OP_OK);

    /* Half-step a SELECT, then fetch it again: the same statement, from its first row. */
    sqlite3_stmt *first = store_stmt(s, SQL_ALL_KEYS);
    assert_non_null(first);
    assert_int_equal(sqlite3_step(first), SQLITE_ROW);
    assert_string_equal(store_col_text(first, 0), "a");
    assert_int_equal(sqlite3_step(first), SQLITE_ROW);
    assert_string_equal(store_col_text(first, 0), "b");

    sqlite3_stmt *again = store_stmt(s, SQL_ALL_KEYS);
    assert_ptr_equal(again, first);
    assert_int_equal(sqlite3_step(again), SQLITE_ROW);
    assert_string_equal(store_col_text(again, 0), "a");

    /* Found by text as well as by pointer. */
    char copy[64];
    snprintf(copy, sizeof copy, "%s", SQL_ALL_KEYS);
    assert_ptr_equal(store_stmt(s, copy), first);
    assert_ptr_not_equal(store_stmt(s, SQL_COUNT_KEY), first);

    /* Bindings are cleared on re-fetch. */
    static const char *const sql_param = "SELECT ?1";
    sqlite3_stmt *param = store_stmt(s, sql_param);
    assert_non_null(param);
    sqlite3_bind_int(param, 1, 42);
    assert_int_equal(sqlite3_step(param), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(param, 0), 42);
    assert_ptr_equal(store_stmt(s, sql_param), param);
    assert_int_equal(sqlite3_step(param), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(param, 0), SQLITE_NULL);

    store_close(s);
}

/*
 * The cache is bounded: past the bound store_stmt refuses (NULL, logged)
 * rather than hand out statements nobody would finalize. The bound itself is
 * private to store.c; a thousand distinct statements is far beyond it.
 */
static void test_stmt_cache_bound(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    enum { TRIES = 1000 };
    static char sql[TRIES][32]; /* the cache keeps the caller's pointers */
    sqlite3_stmt *first = NULL;
    int cached = 0;
    for (; cached < TRIES; cached++) {
        snprintf(sql[cached], sizeof sql[cached], "SELECT %d", cached);
        sqlite3_stmt *st = store_stmt(s, sql[cached]);
        if (!st) break;
        if (!first) first = st;
    }
    assert_true(cached > 0);
    assert_true(cached < TRIES);
    /* Past the bound it keeps refusing; cached statements still come back and work. */
    assert_null(store_stmt(s, "SELECT 'one more'"));
    assert_ptr_equal(store_stmt(s, sql[0]), first);
    sqlite3_stmt *last = store_stmt(s, sql[cached - 1]);
    assert_non_null(last);
    assert_int_equal(sqlite3_step(last), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(last, 0), cached - 1);
    store_close(s);
}

/*
 * store_step_done resets even when rows were left unread: a statement left
 * mid-step would pin this connection's read snapshot, hiding later commits
 * made through other connections.
 */
static void test_step_done_resets(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    store *other = open_store(f->db_path, 1);
    assert_int_equal(put(s, "a", "1"), OP_OK);
    assert_int_equal(put(s, "b", "2"), OP_OK);

    sqlite3_stmt *all = store_stmt(s, SQL_ALL_KEYS);
    assert_int_equal(store_step_done(s, all), OP_OK); /* one row of two read */
    assert_false(sqlite3_stmt_busy(all));

    assert_int_equal(put(other, "late", "1"), OP_OK);
    assert_int_equal(count_key(s, "late"), 1);
    store_close(other);
    store_close(s);
}

static void test_bad_sql(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_null(store_stmt(s, "SELEC 1"));
    assert_null(store_stmt(s, "SELECT * FROM no_such_table"));
    assert_int_equal(store_step_done(s, NULL), OP_ESTORE);
    assert_int_equal(store_exec(s, "this is not sql"), OP_ESTORE);
    assert_int_equal(store_exec(s, "INSERT INTO kv(k) VALUES('x'); NOT SQL"), OP_ESTORE);
    /* Still usable afterwards. */
    assert_int_equal(store_exec(s, "INSERT INTO kv(k, v) VALUES('ok', '1')"), OP_OK);
    assert_int_equal(count_key(s, "ok"), 1);
    store_close(s);
}

static void test_constraint_violation(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(put(s, "dup", "first"), OP_OK);
    assert_int_equal(put(s, "dup", "second"), OP_ESTORE);
    assert_int_equal(count_key(s, "dup"), 1);

    sqlite3_stmt *get = store_stmt(s, SQL_GET);
    store_bind_text(get, 1, "dup");
    assert_int_equal(sqlite3_step(get), SQLITE_ROW);
    assert_string_equal(store_col_text(get, 0), "first");

    /* The failed statement was reset: the same cached INSERT works again. */
    assert_int_equal(put(s, "other", "x"), OP_OK);
    assert_int_equal(store_changes(s), 1);

    /* Inside a transaction the violation fails only its statement. */
    assert_int_equal(store_begin(s), OP_OK);
    assert_int_equal(put(s, "in-tx", "1"), OP_OK);
    assert_int_equal(put(s, "in-tx", "2"), OP_ESTORE);
    assert_true(store_in_tx(s));
    assert_int_equal(store_commit(s), OP_OK);
    assert_int_equal(count_key(s, "in-tx"), 1);
    store_close(s);
}

static void test_changes_and_last_rowid(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    static const char *const sql_note = "INSERT INTO notes(note) VALUES(?1)";
    for (int i = 1; i <= 3; i++) {
        sqlite3_stmt *st = store_stmt(s, sql_note);
        store_bind_text(st, 1, "n");
        assert_int_equal(store_step_done(s, st), OP_OK);
        assert_int_equal(store_last_rowid(s), i);
        assert_int_equal(store_changes(s), 1);
    }
    assert_int_equal(store_exec(s, "UPDATE notes SET note = 'x' WHERE id >= 2"), OP_OK);
    assert_int_equal(store_changes(s), 2);
    assert_int_equal(store_exec(s, "DELETE FROM notes WHERE id > 100"), OP_OK);
    assert_int_equal(store_changes(s), 0);
    store_close(s);
}

static void test_bind_text_null_and_col_text(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(put(s, "nothing", NULL), OP_OK);

    sqlite3_stmt *get = store_stmt(s, SQL_GET);
    store_bind_text(get, 1, "nothing");
    assert_int_equal(sqlite3_step(get), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(get, 0), SQLITE_NULL);
    assert_int_equal(sqlite3_column_int(get, 1), 1); /* v IS NULL */
    assert_non_null(store_col_text(get, 0));
    assert_string_equal(store_col_text(get, 0), "");

    /* Text is copied at bind time: changing the buffer before the step does not matter. */
    char value[16];
    snprintf(value, sizeof value, "before");
    sqlite3_stmt *ins = store_stmt(s, SQL_PUT);
    store_bind_text(ins, 1, "copied");
    store_bind_text(ins, 2, value);
    snprintf(value, sizeof value, "after!");
    assert_int_equal(store_step_done(s, ins), OP_OK);

    get = store_stmt(s, SQL_GET);
    store_bind_text(get, 1, "copied");
    assert_int_equal(sqlite3_step(get), SQLITE_ROW);
    assert_string_equal(store_col_text(get, 0), "before");
    assert_int_equal(sqlite3_column_int(get, 1), 0);
    store_close(s);
}

static void test_open_unwritable_path(void **state)
{
    fixture *f = *state;
    char plain[160], under_file[192], missing_dir[192];
    testkit_path(plain, sizeof plain, f->dir, "plain");
    assert_int_equal(os_write_file_atomic(plain, "x", 1, 0600), OP_OK);
    assert_int_equal(util_fmt(under_file, sizeof under_file, "%s/state.db", plain), OP_OK);
    testkit_path(missing_dir, sizeof missing_dir, f->dir, "missing/state.db");

    store *s = NULL;
    assert_int_equal(store_open(under_file, SCHEMA, 1, &s), OP_ESTORE);
    assert_null(s);
    assert_int_equal(store_open(missing_dir, SCHEMA, 1, &s), OP_ESTORE);
    assert_null(s);
    assert_int_equal(store_open(f->dir, SCHEMA, 1, &s), OP_ESTORE); /* a directory */
    assert_null(s);
}

/* The committed fixture: 2 KiB of bytes that are not an SQLite file at all. */
static void test_open_garbage_fixture(void **state)
{
    fixture *f = *state;
    char *bytes = NULL;
    size_t len = 0;
    assert_int_equal(os_read_file(GARBAGE_FIXTURE, 4096, &bytes, &len), OP_OK);
    assert_true(len > 100);
    /* Open a copy: a failed open must not be able to alter the committed fixture. */
    char copy[160];
    testkit_path(copy, sizeof copy, f->dir, "garbage.db");
    assert_int_equal(os_write_file_atomic(copy, bytes, len, 0600), OP_OK);

    store *s = NULL;
    assert_int_equal(store_open(copy, SCHEMA, 1, &s), OP_ESTORE);
    assert_null(s);
    assert_int_equal(store_open(copy, SCHEMA, 0, &s), OP_ESTORE);
    assert_null(s);

    /* Refused, not "repaired": the file still holds the same bytes. */
    char *after = NULL;
    size_t after_len = 0;
    assert_int_equal(os_read_file(copy, 1 << 20, &after, &after_len), OP_OK);
    assert_int_equal(after_len, len);
    assert_memory_equal(after, bytes, len);
    free(after);
    free(bytes);
}

/* A real database whose first page is trashed after the 100-byte header. */
static void test_open_corrupt_schema_page(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(put(s, "k", "v"), OP_OK);
    store_close(s);

    FILE *fp = fopen(f->db_path, "r+b");
    assert_non_null(fp);
    unsigned char junk[200];
    memset(junk, 0xa5, sizeof junk);
    assert_int_equal(fseek(fp, 100, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, sizeof junk, fp), sizeof junk);
    assert_int_equal(fclose(fp), 0);

    s = NULL;
    assert_int_equal(store_open(f->db_path, SCHEMA, 1, &s), OP_ESTORE);
    assert_null(s);
}

/*
 * A table's pages trashed in the middle of a bigger file (the header and the
 * schema intact): quick_check at open refuses it and says so.
 */
static void test_open_damaged_table_pages(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(store_begin(s), OP_OK);
    for (int i = 0; i < 2000; i++) {
        char k[48];
        snprintf(k, sizeof k, "key-%05d-with-some-length", i);
        assert_int_equal(put(s, k, "a value long enough to fill a few pages of the table"), OP_OK);
    }
    assert_int_equal(store_commit(s), OP_OK);
    store_close(s);
    FILE *fp = fopen(f->db_path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long pages = ftell(fp) / 4096;
    assert_true(pages > 8);
    unsigned char page[4096];
    for (long p = pages / 2; p < pages / 2 + 4; p++) {
        assert_int_equal(fseek(fp, p * 4096, SEEK_SET), 0);
        assert_int_equal(fread(page, 1, sizeof page, fp), sizeof page);
        for (size_t i = 0; i < sizeof page; i++)
            page[i] ^= 0x5a;
        assert_int_equal(fseek(fp, p * 4096, SEEK_SET), 0);
        assert_int_equal(fwrite(page, 1, sizeof page, fp), sizeof page);
    }
    assert_int_equal(fclose(fp), 0);
    capture cap;
    assert_int_equal(capture_start(&cap, STDERR_FILENO), 0);
    s = NULL;
    int rc = store_open(f->db_path, SCHEMA, 1, &s);
    char *text = capture_end(&cap);
    assert_int_equal(rc, OP_ESTORE);
    assert_null(s);
    testkit_assert_contains(text, "is damaged (SQLite quick_check");
    free(text);
}

/* A backup taken while the store is open and mid-transaction holds what was committed. */
static void test_backup_of_a_live_store(void **state)
{
    fixture *f = *state;
    store *s = open_store(f->db_path, 1);
    assert_int_equal(put(s, "committed", "1"), OP_OK);
    assert_int_equal(store_begin(s), OP_OK);
    assert_int_equal(put(s, "pending", "1"), OP_OK);
    char copy[PATH_MAX + 16], err[256] = "";
    snprintf(copy, sizeof copy, "%s/copy.db", f->dir);
    assert_int_equal(store_backup(f->db_path, copy, err, sizeof err), OP_OK);
    store_rollback(s);
    store_close(s);
    s = open_store(copy, 1);
    assert_int_equal(count_key(s, "committed"), 1);
    assert_int_equal(count_key(s, "pending"), 0);
    store_close(s);
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/none/copy.db", f->dir);
    assert_int_not_equal(store_backup(f->db_path, missing, err, sizeof err), OP_OK);
    assert_true(err[0] != '\0');
}

/*
 * Child body for the crash tests: commits "committed", then opens a second
 * transaction with "pending" in it and dies without committing: by _exit(0)
 * when notify_fd < 0, else by waiting for the parent's SIGKILL after writing
 * one byte to notify_fd. Exit codes 10.. name the step that failed.
 */
static void child_commit_then_die(const char *path, int notify_fd)
{
    store *s = NULL;
    if (store_open(path, SCHEMA, 1, &s) != OP_OK) _exit(10);
    if (store_begin(s) != OP_OK || put(s, "committed", "1") != OP_OK || store_commit(s) != OP_OK)
        _exit(11);
    if (store_begin(s) != OP_OK) _exit(12);
    if (put(s, "pending", "1") != OP_OK || count_key(s, "pending") != 1) _exit(13);
    if (notify_fd < 0) _exit(0);
    if (write(notify_fd, "k", 1) != 1) _exit(14);
    for (;;)
        pause();
}

static void assert_committed_survived(const char *path)
{
    store *s = open_store(path, 1);
    assert_int_equal(count_key(s, "committed"), 1);
    assert_int_equal(count_key(s, "pending"), 0);
    /* The store is writable after recovery. */
    assert_int_equal(put(s, "after", "1"), OP_OK);
    store_close(s);
}

static void test_crash_exit_without_commit(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) child_commit_then_die(f->db_path, -1);

    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_committed_survived(f->db_path);
}

static void test_crash_sigkill_after_commit(void **state)
{
    fixture *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_commit_then_die(f->db_path, fds[1]);
    }
    close(fds[1]);

    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int ready = poll(&pfd, 1, 20000);
    char byte = 0;
    ssize_t n = ready == 1 ? read(fds[0], &byte, 1) : -1;
    close(fds[0]);
    kill(pid, SIGKILL); /* also when the child failed: never leave it behind */
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (n != 1 || byte != 'k')
        fail_msg("child did not report its commit (exit status %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_committed_survived(f->db_path);
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_open_creates_file_schema_idempotent),
        STORE_TEST(test_pragmas_synchronous_full),
        STORE_TEST(test_pragmas_synchronous_normal),
        STORE_TEST(test_commit_durable_across_reopen),
        STORE_TEST(test_rollback_discards),
        STORE_TEST(test_nested_commit_only_at_outermost),
        STORE_TEST(test_nested_outer_rollback_discards_inner),
        STORE_TEST(test_commit_without_tx_is_ok),
        STORE_TEST(test_stmt_cache_returns_reset_statement),
        STORE_TEST(test_stmt_cache_bound),
        STORE_TEST(test_step_done_resets),
        STORE_TEST(test_bad_sql),
        STORE_TEST(test_constraint_violation),
        STORE_TEST(test_changes_and_last_rowid),
        STORE_TEST(test_bind_text_null_and_col_text),
        STORE_TEST(test_open_unwritable_path),
        STORE_TEST(test_open_garbage_fixture),
        STORE_TEST(test_open_corrupt_schema_page),
        STORE_TEST(test_open_damaged_table_pages),
        STORE_TEST(test_backup_of_a_live_store),
        STORE_TEST(test_crash_exit_without_commit),
        STORE_TEST(test_crash_sigkill_after_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
