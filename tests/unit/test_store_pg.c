/*
 * Unit tests for the store's PostgreSQL engine (io/store_pg.c,
 * store_pg_sql.c) and what the hub keeps there: the dialect's rewriting
 * (no server), then against a real PostgreSQL 15 server started for this
 * file (helpers/pgkit; skipped with a message when the binaries are
 * missing), a fresh database per test: values of every type and NULLs both
 * ways, INSERT OR REPLACE / OR IGNORE, generated keys, transactions, an
 * unreachable server, a schema written by a newer hub, the audit log
 * reopened from the database, and the failover lease: one holder at a
 * time, and a hub whose lease was taken cannot commit (fenced); the lease
 * also on a SQLite file (no server needed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "helpers/capture.h"
#include "helpers/pgkit.h"
#include "helpers/testkit.h"
#include "hub/hub_db.h"
#include "io/auditlog.h"
#include "io/store.h"
#include "io/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pgkit server;
static int server_up;
static int n_databases;

static void rewrites_to(const char *sql, const char *key, const char *want)
{
    char out[2048];
    assert_int_equal(store__pg_rewrite(sql, key, out, sizeof out), OP_OK);
    if (strcmp(out, want) != 0) fail_msg("rewrote\n  %s\nto\n  %s\nwanted\n  %s", sql, out, want);
}

static void test_rewrite_dialect(void **state)
{
    (void)state;
    rewrites_to("SELECT a FROM t WHERE b=? AND c=?", NULL, "SELECT a FROM t WHERE b=$1 AND c=$2");
    rewrites_to("SELECT ?2, ?1, ?", NULL, "SELECT $2, $1, $3");
    rewrites_to("SELECT 'what?' || ?", NULL, "SELECT 'what?' || $1");
    rewrites_to("SELECT 'it''s ?', IFNULL(x, 0)", NULL, "SELECT 'it''s ?', COALESCE(x, 0)");
    rewrites_to("INSERT OR IGNORE INTO t(a, b) VALUES(?,?)", NULL,
                "INSERT INTO t(a, b) VALUES($1,$2) ON CONFLICT DO NOTHING");
    rewrites_to("INSERT OR REPLACE INTO t(a, b, c) VALUES(?,?,?)", "a",
                "INSERT INTO t(a, b, c) VALUES($1,$2,$3) ON CONFLICT (a) DO UPDATE SET "
                "b=EXCLUDED.b, c=EXCLUDED.c");
    rewrites_to("INSERT OR REPLACE INTO t(a, b) VALUES(?,?)", "a,b",
                "INSERT INTO t(a, b) VALUES($1,$2) ON CONFLICT DO NOTHING");
    rewrites_to("SELECT json_extract(body, '$.error') FROM r", NULL,
                "SELECT (CAST(body AS jsonb)->>'error') FROM r");
    rewrites_to("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, w REAL, h BLOB NOT NULL,"
                " n INTEGER) WITHOUT ROWID;",
                NULL,
                "CREATE TABLE IF NOT EXISTS t(id BIGSERIAL PRIMARY KEY, w DOUBLE PRECISION, h "
                "BYTEA NOT NULL, n BIGINT) ;");
    rewrites_to("CREATE TABLE IF NOT EXISTS e(job INTEGER NOT NULL, ts INTEGER);", NULL,
                "CREATE TABLE IF NOT EXISTS e(rowid BIGSERIAL, job BIGINT NOT NULL, ts BIGINT);");
    rewrites_to("SELECT a FROM t WHERE ?1 IS NULL LIMIT ?", NULL,
                "SELECT a FROM t WHERE CAST($1 AS TEXT) IS NULL LIMIT $2");
    rewrites_to("SELECT a FROM t WHERE (?1 IS NULL OR a=?1)", NULL,
                "SELECT a FROM t WHERE (CAST($1 AS TEXT) IS NULL OR a=$1)");
    rewrites_to("SELECT CAST(value AS INTEGER) FROM meta", NULL,
                "SELECT CAST(value AS BIGINT) FROM meta");
    char tiny[8];
    assert_int_equal(store__pg_rewrite("SELECT 1 FROM somewhere", NULL, tiny, sizeof tiny),
                     OP_ETOOBIG);
}

static int group_setup(void **state)
{
    (void)state;
    if (access("/usr/lib/postgresql/15/bin/postgres", X_OK) != 0) return 0;
    server_up = pgkit_start(&server) == 0;
    return server_up ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (server_up) pgkit_stop(&server);
    return 0;
}

/* A fresh database for the running test: its URL. */
static void fresh(char *url, size_t size)
{
    pgkit_require();
    assert_true(server_up);
    char name[32];
    snprintf(name, sizeof name, "t%d", ++n_databases);
    assert_int_equal(pgkit_database(&server, name, url, size), 0);
}

#define SCHEMA                                                                                     \
    "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT, n INTEGER, w REAL, b BLOB);"        \
    "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, note TEXT);"

static const char *const SQL_PUT = "INSERT OR REPLACE INTO kv(k, v, n, w, b) VALUES(?,?,?,?,?)";
static const char *const SQL_GET = "SELECT v, n, w, b, v IS NULL FROM kv WHERE k=?";

static void public_is(const char *where, const char *want, int want_had_password)
{
    char out[512];
    int had = -1;
    assert_int_equal(store_where_public(where, out, sizeof out, &had), OP_OK);
    assert_string_equal(out, want);
    assert_int_equal(had, want_had_password);
    assert_int_equal(store_is_url(out), store_is_url(where));
}

/* What the hub writes into its world-readable cli.conf: never a password. */
static void test_where_public_leaves_the_password_out(void **state)
{
    (void)state;
    public_is("/var/lib/outpost/hub/hub.db", "/var/lib/outpost/hub/hub.db", 0);
    public_is("postgresql://outpost@db.example.net/outpost?sslmode=verify-full",
              "postgresql://outpost@db.example.net/outpost?sslmode=verify-full", 0);
    public_is("postgresql://outpost:s3cr%27t@db.example.net:5433/outpost",
              "host='db.example.net' user='outpost' dbname='outpost' port='5433'", 1);
    public_is("postgres://db.example.net/outpost?user=op&password=hunter2&sslmode=require",
              "host='db.example.net' user='op' dbname='outpost' sslmode='require'", 1);
    public_is("dbname=outpost password='it\\'s' user='o\\'k'", "dbname='outpost' user='o\\'k'", 1);
    char out[512];
    int had;
    assert_int_equal(store_where_public("postgresql://:pw@/", out, sizeof out, &had), OP_EINVAL);
    assert_int_equal(store_where_public("host=x password=", out, 8, &had), OP_ETOOBIG);
    assert_int_equal(store_where_public("host='unterminated", out, sizeof out, &had), OP_EINVAL);
}

static void test_values_round_trip(void **state)
{
    (void)state;
    char url[256];
    fresh(url, sizeof url);
    store *s = NULL;
    assert_int_equal(store_open(url, SCHEMA, 1, &s), OP_OK);
    assert_true(store_is_pg(s));
    const uint8_t blob[5] = {0, 1, 0xff, '\\', 'x'};
    store_q *put = store_prepare(s, SQL_PUT);
    assert_non_null(put);
    store_q_bind_text(put, 1, "a");
    store_q_bind_text(put, 2, "it's \"quoted\" ?");
    store_q_bind_int64(put, 3, 1796105021893LL);
    store_q_bind_double(put, 4, 0.1);
    store_q_bind_blob(put, 5, blob, sizeof blob);
    assert_int_equal(store_q_run(put), OP_OK);
    assert_int_equal(store_changes(s), 1);
    put = store_prepare(s, SQL_PUT);
    store_q_bind_text(put, 1, "nulls");
    assert_int_equal(store_q_run(put), OP_OK);

    store_q *get = store_prepare(s, SQL_GET);
    store_q_bind_text(get, 1, "a");
    assert_int_equal(store_q_step(get), STORE_ROW);
    assert_string_equal(store_q_text(get, 0), "it's \"quoted\" ?");
    assert_true(store_q_int64(get, 1) == 1796105021893LL);
    assert_true(store_q_double(get, 2) == 0.1);
    assert_int_equal(store_q_bytes(get, 3), 5);
    assert_memory_equal(store_q_blob(get, 3), blob, 5);
    assert_int_equal(store_q_int(get, 4), 0);
    assert_int_equal(store_q_step(get), STORE_DONE);
    get = store_prepare(s, SQL_GET);
    store_q_bind_text(get, 1, "nulls");
    assert_int_equal(store_q_step(get), STORE_ROW);
    assert_true(store_q_is_null(get, 0) && store_q_is_null(get, 3));
    assert_string_equal(store_q_text(get, 0), "");
    assert_int_equal(store_q_int(get, 4), 1);
    store_q_reset(get);

    /* replace keeps one row per key and takes the new values */
    put = store_prepare(s, SQL_PUT);
    store_q_bind_text(put, 1, "a");
    store_q_bind_text(put, 2, "second");
    assert_int_equal(store_q_run(put), OP_OK);
    get = store_prepare(s, SQL_GET);
    store_q_bind_text(get, 1, "a");
    assert_int_equal(store_q_step(get), STORE_ROW);
    assert_string_equal(store_q_text(get, 0), "second");
    assert_true(store_q_is_null(get, 1));
    store_q_reset(get);
    store_close(s);
}

static void test_keys_and_transactions(void **state)
{
    (void)state;
    char url[256];
    fresh(url, sizeof url);
    store *s = NULL;
    assert_int_equal(store_open(url, SCHEMA, 1, &s), OP_OK);
    store_q *ins = store_prepare(s, "INSERT INTO notes(note) VALUES(?)");
    store_q_bind_text(ins, 1, "one");
    assert_int_equal(store_q_run(ins), OP_OK);
    assert_true(store_last_rowid(s) == 1);
    assert_int_equal(store_begin(s), OP_OK);
    assert_int_equal(store_begin(s), OP_OK); /* nests */
    ins = store_prepare(s, "INSERT INTO notes(note) VALUES(?)");
    store_q_bind_text(ins, 1, "two");
    assert_int_equal(store_q_run(ins), OP_OK);
    assert_true(store_last_rowid(s) == 2);
    assert_int_equal(store_commit(s), OP_OK);
    assert_int_equal(store_in_tx(s), 1);
    store_rollback(s);
    store_q *count = store_prepare(s, "SELECT COUNT(*) FROM notes");
    assert_int_equal(store_q_step(count), STORE_ROW);
    assert_int_equal(store_q_int(count, 0), 1);
    store_q_reset(count);
    /* a failing statement is an error, and the store works after the rollback */
    assert_int_equal(store_begin(s), OP_OK);
    assert_null(store_prepare(s, "SELECT nonsense FROM nowhere"));
    store_rollback(s);
    count = store_prepare(s, "SELECT COUNT(*) FROM notes");
    assert_int_equal(store_q_step(count), STORE_ROW);
    store_q_reset(count);
    /* the SQLite-only calls refuse a PostgreSQL store */
    assert_null(store_stmt(s, "SELECT 1"));
    assert_null(store_db(s));
    store_close(s);
}

/*
 * The server drops the connection inside a transaction (here: another
 * session terminates it): what follows in that transaction fails instead
 * of committing piecemeal on the new connection, the commit fails, and after
 * the rollback the store works again with its statements prepared anew.
 */
static void test_connection_lost_inside_a_transaction(void **state)
{
    (void)state;
    char url[256];
    fresh(url, sizeof url);
    store *s = NULL, *killer = NULL;
    assert_int_equal(store_open(url, SCHEMA, 1, &s), OP_OK);
    assert_int_equal(store_open(url, "", 1, &killer), OP_OK);
    assert_int_equal(store_begin(s), OP_OK);
    store_q *ins = store_prepare(s, "INSERT INTO notes(note) VALUES(?)");
    store_q_bind_text(ins, 1, "before");
    assert_int_equal(store_q_run(ins), OP_OK);
    assert_int_equal(store_exec(killer, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                        " WHERE pid <> pg_backend_pid() AND"
                                        " datname = current_database()"),
                     OP_OK);
    capture c;
    assert_int_equal(capture_start(&c, 2), 0);
    ins = store_prepare(s, "INSERT INTO notes(note) VALUES(?)");
    int first = ins ? (store_q_bind_text(ins, 1, "lost"), store_q_run(ins)) : OP_ESTORE;
    ins = store_prepare(s, "INSERT INTO notes(note) VALUES(?)");
    int second = ins ? (store_q_bind_text(ins, 1, "after the reset"), store_q_run(ins)) : OP_ESTORE;
    int commit = store_commit(s);
    char *err = capture_end(&c);
    assert_int_equal(first, OP_ESTORE);
    assert_int_equal(second, OP_ESTORE);
    assert_int_equal(commit, OP_ESTORE);
    testkit_assert_contains(err, "lost inside this transaction");
    free(err);
    store_rollback(s);
    store_q *count = store_prepare(s, "SELECT COUNT(*) FROM notes");
    assert_non_null(count);
    assert_int_equal(store_q_step(count), STORE_ROW);
    assert_int_equal(store_q_int(count, 0), 0);
    store_q_reset(count);
    assert_int_equal(store_begin(s), OP_OK);
    ins = store_prepare(s, "INSERT INTO notes(note) VALUES(?)");
    store_q_bind_text(ins, 1, "again");
    assert_int_equal(store_q_run(ins), OP_OK);
    assert_int_equal(store_commit(s), OP_OK);
    store_close(killer);
    store_close(s);
}

static void test_unreachable_server_is_a_clear_error(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "postgresql://outpost:secret@127.0.0.1:%d/none", testkit_free_port());
    capture c;
    assert_int_equal(capture_start(&c, 2), 0);
    store *s = NULL;
    int rc = store_open(url, SCHEMA, 1, &s);
    char *err = capture_end(&c);
    assert_int_equal(rc, OP_ESTORE);
    assert_null(s);
    testkit_assert_contains(err, "cannot reach PostgreSQL at postgresql://outpost:***@127.0.0.1");
    assert_null(strstr(err, "secret"));
    free(err);
}

static void test_schema_of_a_newer_hub_refused(void **state)
{
    (void)state;
    char url[256];
    fresh(url, sizeof url);
    hubdb *db = NULL;
    assert_int_equal(hubdb_open(url, 1, &db), OP_OK);
    hubdb_close(db);
    store *s = NULL;
    assert_int_equal(store_open(url, "", 1, &s), OP_OK);
    assert_int_equal(store_exec(s, "UPDATE meta SET value='99' WHERE key='schema_version'"), OP_OK);
    store_close(s);
    capture c;
    assert_int_equal(capture_start(&c, 2), 0);
    int rc = hubdb_open(url, 1, &db);
    char *err = capture_end(&c);
    assert_int_equal(rc, OP_ESTORE);
    testkit_assert_contains(err, "written by a newer hub (schema version 99");
    free(err);
}

static void test_audit_log_continues_from_the_database(void **state)
{
    (void)state;
    char url[256];
    fresh(url, sizeof url);
    ident key;
    testkit_ident(&key, "hub", 7);
    hubdb *db = NULL;
    auditlog *log = NULL;
    assert_int_equal(hubdb_open(url, 1, &db), OP_OK);
    assert_int_equal(hubdb_attach_audit(db, &log), OP_OK);
    audit_sth head;
    assert_int_equal(hubdb_begin(db), OP_OK);
    for (int i = 0; i < 37; i++)
        assert_int_equal(auditlog_append(log, 1000 + i, "test", "x", "{\"n\":1}", NULL), OP_OK);
    assert_int_equal(auditlog_sign_head(log, &key, 2000, &head), OP_OK);
    assert_int_equal(hubdb_commit(db), OP_OK);
    auditlog_close(log);
    hubdb_close(db);
    /* another process (the next active hub) continues the same log */
    assert_int_equal(hubdb_open(url, 1, &db), OP_OK);
    assert_int_equal(hubdb_attach_audit(db, &log), OP_OK);
    assert_int_equal(auditlog_size(log), 37);
    assert_int_equal(hubdb_begin(db), OP_OK);
    assert_int_equal(auditlog_append(log, 3000, "test", "y", "{}", NULL), OP_OK);
    assert_int_equal(auditlog_sign_head(log, &key, 3001, &head), OP_OK);
    assert_int_equal(hubdb_commit(db), OP_OK);
    auditlog_close(log);
    hubdb_close(db);
    char finding[256];
    assert_int_equal(auditlog_open(url, &log), OP_OK);
    assert_int_equal(auditlog_verify(log, key.pk, NULL, finding, sizeof finding), OP_OK);
    assert_int_equal(auditlog_size(log), 38);
    auditlog_close(log);
    ident_wipe(&key);
}

/* Makes the lease look expired, as a paused holder's would after its lease time. */
static void expire_lease(const char *url)
{
    store *s = NULL;
    assert_int_equal(store_open(url, "", 1, &s), OP_OK);
    assert_int_equal(store_exec(s, "UPDATE hub_lease SET expires_at=0"), OP_OK);
    store_close(s);
}

/* Two hubs' handles on the database at url: one holder at a time, and the fence. */
static void lease_and_fence(const char *url)
{
    hubdb *a = NULL, *b = NULL;
    assert_int_equal(hubdb_open(url, 1, &a), OP_OK);
    assert_int_equal(hubdb_open(url, 1, &b), OP_OK);
    hubdb_lease before, after;
    int taken = 0;
    assert_int_equal(hubdb_lease_try(a, "A", 3000, &taken, &before, &after), OP_OK);
    assert_true(taken);
    assert_int_equal(after.epoch, 1);
    assert_string_equal(before.holder, "");
    assert_int_equal(hubdb_lease_try(b, "B", 3000, &taken, &before, &after), OP_OK);
    assert_false(taken);
    assert_string_equal(after.holder, "A");
    /* A commits, fenced and renewing */
    assert_int_equal(hubdb_begin(a), OP_OK);
    assert_int_equal(hubdb_own_seq_set(a, 11), OP_OK);
    assert_int_equal(hubdb_commit(a), OP_OK);
    /* A is paused past its lease; B takes over */
    expire_lease(url);
    assert_int_equal(hubdb_lease_try(b, "B", 3000, &taken, &before, &after), OP_OK);
    assert_true(taken);
    assert_string_equal(before.holder, "A");
    assert_int_equal(before.epoch, 1);
    assert_int_equal(after.epoch, 2);
    /* A resumes: its transaction is refused and nothing of it is written */
    capture c;
    assert_int_equal(capture_start(&c, 2), 0);
    assert_int_equal(hubdb_begin(a), OP_OK);
    assert_int_equal(hubdb_own_seq_set(a, 99), OP_OK);
    int rc = hubdb_commit(a);
    char *err = capture_end(&c);
    assert_int_equal(rc, OP_EEXPIRED);
    assert_true(hubdb_lease_lost(a));
    testkit_assert_contains(err, "lease lost");
    free(err);
    uint64_t seq = 0;
    assert_int_equal(hubdb_own_seq_get(b, &seq), OP_OK);
    assert_int_equal(seq, 11);
    /* B's commits go through */
    assert_int_equal(hubdb_begin(b), OP_OK);
    assert_int_equal(hubdb_own_seq_set(b, 12), OP_OK);
    assert_int_equal(hubdb_commit(b), OP_OK);
    hubdb_close(a);
    hubdb_close(b);
}

static void test_lease_one_holder_and_the_fence(void **state)
{
    (void)state;
    char url[256];
    fresh(url, sizeof url);
    lease_and_fence(url);
}

/* The same on one SQLite file (two processes of one machine): no server needed. */
static void test_lease_on_sqlite(void **state)
{
    char path[PATH_MAX];
    testkit_path(path, sizeof path, *state, "hub.db");
    lease_and_fence(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_dialect),
        cmocka_unit_test(test_where_public_leaves_the_password_out),
        cmocka_unit_test(test_values_round_trip),
        cmocka_unit_test(test_keys_and_transactions),
        cmocka_unit_test(test_connection_lost_inside_a_transaction),
        cmocka_unit_test(test_unreachable_server_is_a_clear_error),
        cmocka_unit_test(test_schema_of_a_newer_hub_refused),
        cmocka_unit_test(test_audit_log_continues_from_the_database),
        cmocka_unit_test(test_lease_one_holder_and_the_fence),
        cmocka_unit_test_setup_teardown(test_lease_on_sqlite, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
