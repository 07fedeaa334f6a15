/*
 * Unit tests of the site's data layer (src/site/site_db.c) on a store in a
 * temp dir: meta, the hub pin, accepted attempts and leases, the outbox from
 * a result to its acknowledgement, and a database reopened as it is.
 */
#include "site/site_db.h"

#include "base/err.h"
#include "base/os.h"
#include "base/util.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct fixture {
    char dir[PATH_MAX], path[PATH_MAX];
    store *db;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_site_db.XXXXXX");
    if (!mkdtemp(f->dir) || util_fmt(f->path, sizeof f->path, "%s/site.db", f->dir) != OP_OK ||
        sitedb_open(f->path, &f->db) != OP_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sitedb_close(f->db);
    os_rm_rf(f->dir);
    free(f);
    return 0;
}

static void test_meta_and_pin(void **state)
{
    fixture *f = *state;
    char value[64];
    assert_int_equal(sitedb_meta_get(f->db, "class", value, sizeof value), OP_ENOTFOUND);
    assert_int_equal(sitedb_meta_set(f->db, "class", "car"), OP_OK);
    assert_int_equal(sitedb_meta_set(f->db, "class", "dc"), OP_OK);
    assert_int_equal(sitedb_meta_get(f->db, "class", value, sizeof value), OP_OK);
    assert_string_equal(value, "dc");
    assert_int_equal(sitedb_pin_hub(f->db, "hub", "abcd"), OP_OK);
    assert_false(sitedb_in_tx(f->db));
    assert_int_equal(sitedb_meta_get(f->db, "hub_id", value, sizeof value), OP_OK);
    assert_string_equal(value, "hub");
    assert_int_equal(sitedb_meta_get(f->db, "hub_pubkey", value, sizeof value), OP_OK);
    assert_string_equal(value, "abcd");
}

static void test_accepted_jobs_and_leases(void **state)
{
    fixture *f = *state;
    sitedb_job_row rows[4];
    int n = -1;
    assert_int_equal(sitedb_begin(f->db), OP_OK);
    assert_int_equal(sitedb_job_accept(f->db, 5, 1, "{\"kind\":\"noop\"}", 2000), OP_OK);
    assert_int_equal(sitedb_job_accept(f->db, -1, 1, "{\"kind\":\"exec\"}", 1000), OP_OK);
    assert_int_equal(sitedb_lease_set(f->db, 5, 1, 30000), OP_OK);
    assert_int_equal(sitedb_commit(f->db), OP_OK);
    assert_int_equal(sitedb_job_known(f->db, 5, 1), 1);
    assert_int_equal(sitedb_job_known(f->db, 5, 2), 0);
    assert_int_not_equal(sitedb_job_accept(f->db, 5, 1, "{}", 3000), OP_OK); /* once */
    assert_int_equal(sitedb_unfinished_jobs(f->db, rows, 4, &n), OP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].job_id, -1); /* oldest first */
    assert_int_equal(rows[0].lease_ms, 0);
    assert_int_equal(rows[1].job_id, 5);
    assert_int_equal(rows[1].lease_ms, 30000);
    assert_string_equal(rows[1].spec, "{\"kind\":\"noop\"}");
    for (int i = 0; i < n; i++)
        free(rows[i].spec);
    assert_int_equal(sitedb_job_forget(f->db, -1, 1), OP_OK);
    assert_int_equal(sitedb_job_known(f->db, -1, 1), 0);
}

typedef struct seen {
    int n;
    int64_t job_ids[8];
    int stop_after;
} seen;

static int collect(void *ctx, int64_t job_id, const char *body)
{
    seen *s = ctx;
    assert_non_null(strstr(body, "exit_code"));
    s->job_ids[s->n++] = job_id;
    return s->stop_after && s->n >= s->stop_after;
}

static void test_outbox_until_acknowledged(void **state)
{
    fixture *f = *state;
    sitedb_job_row rows[4];
    int n = -1, removed = -1;
    int64_t count = -1;
    assert_int_equal(sitedb_job_accept(f->db, 5, 1, "{}", 1000), OP_OK);
    assert_int_equal(sitedb_result_store(f->db, 5, 1, "{\"exit_code\":0}", 1000), OP_OK);
    assert_int_equal(sitedb_result_store(f->db, 5, 1, "{\"exit_code\":1}", 1100), OP_OK);
    assert_int_equal(sitedb_result_store(f->db, -2, 1, "{\"exit_code\":0}", 2000), OP_OK);
    assert_int_equal(sitedb_result_store(f->db, 6, 1, "{\"exit_code\":0}", 3000), OP_OK);
    assert_int_equal(sitedb_outbox_count(f->db, &count), OP_OK);
    assert_int_equal(count, 3); /* one per attempt */
    assert_int_equal(sitedb_unfinished_jobs(f->db, rows, 4, &n), OP_OK);
    assert_int_equal(n, 0); /* done */
    seen all = {0};
    assert_int_equal(sitedb_outbox_each(f->db, 2500, 10, collect, &all), OP_OK);
    assert_int_equal(all.n, 2); /* created before 2500, oldest first */
    assert_int_equal(all.job_ids[0], 5);
    assert_int_equal(all.job_ids[1], -2);
    seen first = {.stop_after = 1};
    assert_int_equal(sitedb_outbox_each(f->db, 5000, 10, collect, &first), OP_OK);
    assert_int_equal(first.n, 1);
    seen limited = {0};
    assert_int_equal(sitedb_outbox_each(f->db, 5000, 2, collect, &limited), OP_OK);
    assert_int_equal(limited.n, 2);
    assert_int_equal(sitedb_result_acked(f->db, 5, 1, &removed), OP_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(sitedb_job_known(f->db, 5, 1), 0); /* done and acknowledged: forgotten */
    assert_int_equal(sitedb_result_acked(f->db, 5, 1, &removed), OP_OK);
    assert_int_equal(removed, 0); /* a duplicate ack */
    assert_int_equal(sitedb_outbox_count(f->db, &count), OP_OK);
    assert_int_equal(count, 2);
}

static void test_reopen_keeps_everything(void **state)
{
    fixture *f = *state;
    char value[32];
    int64_t count = 0;
    assert_int_equal(sitedb_meta_set(f->db, "next_local_id", "42"), OP_OK);
    assert_int_equal(sitedb_result_store(f->db, 9, 2, "{\"exit_code\":0}", 1), OP_OK);
    sitedb_close(f->db);
    f->db = NULL;
    assert_int_equal(sitedb_open(f->path, &f->db), OP_OK);
    assert_int_equal(sitedb_meta_get(f->db, "next_local_id", value, sizeof value), OP_OK);
    assert_string_equal(value, "42");
    assert_int_equal(sitedb_outbox_count(f->db, &count), OP_OK);
    assert_int_equal(count, 1);
}

/* Collects the ids the table still holds. */
static int collect_id(void *ctx, const sitedb_exception *e)
{
    int64_t *ids = ctx;
    ids[1 + ids[0]++] = e->id;
    return 0;
}

/* Adds n route-leg exceptions of data class dc. */
static void add_exceptions(store *db, int n, int dc)
{
    for (int i = 0; i < n; i++) {
        sitedb_exception e = {.kind = "route-leg",
                              .features = "{\"distance_miles\":1.5}",
                              .planned_s = 100,
                              .actual_s = 100 + i,
                              .at_ms = i,
                              .data_class = dc};
        assert_int_equal(sitedb_exception_add(db, &e, NULL), OP_OK);
    }
}

/*
 * The bound: the newest rows stay, older ones are thinned to every 2^k-th
 * id (spread over time), never more than the sample; thinning again keeps
 * a subset of what it kept before.
 */
static void test_exceptions_bounded(void **state)
{
    fixture *f = *state;
    int64_t removed = 0, count = 0, max_id = 0;
    int64_t ids[1 + 400] = {0};
    assert_int_equal(sitedb_begin(f->db), OP_OK);
    add_exceptions(f->db, 300, 2);
    assert_int_equal(sitedb_exceptions_prune(f->db, 100, 30, &removed), OP_OK);
    assert_int_equal(sitedb_exceptions_count(f->db, "route-leg", &count, &max_id), OP_OK);
    assert_int_equal(max_id, 300);
    assert_true(count <= 130 && count >= 115); /* 100 newest and 25 of the 200 older (stride 8) */
    assert_int_equal(removed, 300 - count);
    assert_int_equal(sitedb_exceptions_each(f->db, NULL, 2, 0, collect_id, ids), OP_OK);
    assert_int_equal(ids[0], count);
    for (int64_t i = 1; i <= ids[0]; i++)
        if (ids[i] <= 200) assert_int_equal(ids[i] % 8, 0);
    assert_int_equal(ids[ids[0]], 300);
    /* more rows: thinner still, the newest 100 whole */
    add_exceptions(f->db, 200, 1);
    assert_int_equal(sitedb_exceptions_prune(f->db, 100, 30, &removed), OP_OK);
    memset(ids, 0, sizeof ids);
    assert_int_equal(sitedb_exceptions_each(f->db, NULL, 2, 0, collect_id, ids), OP_OK);
    assert_true(ids[0] <= 130);
    int newest = 0;
    for (int64_t i = 1; i <= ids[0]; i++)
        if (ids[i] > 400)
            newest++;
        else
            assert_int_equal(ids[i] % 16, 0);
    assert_int_equal(newest, 100);
    /* data class: a model that may leave the site reads only rows that may */
    memset(ids, 0, sizeof ids);
    assert_int_equal(sitedb_exceptions_each(f->db, NULL, 1, 0, collect_id, ids), OP_OK);
    assert_int_equal(ids[0], 107); /* 401-500, and 304, 320, ... 400 */
    memset(ids, 0, sizeof ids);
    assert_int_equal(sitedb_exceptions_each(f->db, "correction", 2, 0, collect_id, ids), OP_OK);
    assert_int_equal(ids[0], 0);
    assert_int_equal(sitedb_commit(f->db), OP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_meta_and_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepted_jobs_and_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_until_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exceptions_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
