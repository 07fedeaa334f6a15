/*
 * Unit tests for what the CLI prints, from answers built here: columns as
 * wide as their data (63-character site ids whole and aligned in sites,
 * jobs and per-site tables), the broker each site is on, a route job without a name labelled by its
 * kind, paths joined with one slash, and stats as readable counters
 * without the job records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "cli/cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LONG_ID "dc-warehouse-a-long-name-that-uses-all-sixty-three-characters-x"

typedef struct printed {
    char *text;
    size_t len;
    FILE *out;
} printed;

static void begin(printed *p)
{
    p->text = NULL;
    p->out = open_memstream(&p->text, &p->len);
    assert_non_null(p->out);
}

static void end(printed *p)
{
    fclose(p->out);
}

/* The line of text that starts with prefix (a static copy), failing the test if none does. */
static const char *line_starting(const char *text, const char *prefix)
{
    static char line[1024];
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (strncmp(l, prefix, strlen(prefix)) == 0 && len < sizeof line) {
            memcpy(line, l, len);
            line[len] = '\0';
            return line;
        }
        l = nl ? nl + 1 : NULL;
    }
    fail_msg("no line starts with '%s' in:\n%s", prefix, text);
    return NULL;
}

/* The column where word starts in line. */
static long column_of(const char *line, const char *word)
{
    const char *at = strstr(line, word);
    if (!at) fail_msg("'%s' not in '%s'", word, line);
    return at - line;
}

static void test_long_id_fits_in_63(void **state)
{
    (void)state;
    assert_int_equal(strlen(LONG_ID), 63);
}

static void test_column_width(void **state)
{
    (void)state;
    cJSON *rows = cJSON_Parse("[{\"id\": \"a\"}, {\"id\": \"" LONG_ID "\"}, {\"x\": 1}]");
    assert_int_equal(cli__column_width(rows, "id", "", "SITE", 63), 63);
    assert_int_equal(cli__column_width(rows, "id", "", "SITE", 20), 20);
    assert_int_equal(cli__column_width(rows, "nope", "", "SITE", 63), 4);
    assert_int_equal(cli__column_width(rows, "nope", "fallback", "ID", 63), 8);
    cJSON_Delete(rows);
}

static void test_sites_show_long_ids_whole(void **state)
{
    (void)state;
    cJSON *data = cJSON_Parse("{\"sites\": [{\"id\": \"pod-1\", \"class\": \"pod\", \"status\": "
                              "\"alive\", \"cores\": 2, \"free_cores\": 2, \"heartbeat_age_ms\": "
                              "500}, {\"id\": \"" LONG_ID "\", \"class\": \"dc\", \"status\": "
                              "\"alive\", \"cores\": 4, \"free_cores\": 1}]}");
    printed p;
    begin(&p);
    cli__print_sites(p.out, data, 0);
    end(&p);
    const char *header = line_starting(p.text, "SITE ");
    long class_col = column_of(header, "CLASS");
    assert_int_equal(class_col, 64);
    const char *row = line_starting(p.text, LONG_ID " ");
    assert_int_equal(column_of(row, " dc ") + 1, class_col);
    row = line_starting(p.text, "pod-1 ");
    assert_int_equal(column_of(row, " pod ") + 1, class_col);
    assert_non_null(strstr(row, "0.5s"));
    assert_non_null(strstr(row, "none")); /* no protection off */
    free(p.text);
    cJSON_Delete(data);
}

/* BROKER: where each site said it is, "-" for one that did not; no column when none did. */
static void test_sites_show_their_broker(void **state)
{
    (void)state;
    cJSON *data = cJSON_Parse("{\"sites\": [{\"id\": \"dc-1\", \"class\": \"dc\", \"status\": "
                              "\"alive\", \"broker\": \"broker-b.example.org:8883\"}, {\"id\": "
                              "\"dc-2\", \"class\": \"dc\", \"status\": \"alive\", \"broker\": "
                              "\"\"}]}");
    printed p;
    begin(&p);
    cli__print_sites(p.out, data, 0);
    end(&p);
    const char *header = line_starting(p.text, "SITE ");
    long broker_col = column_of(header, "BROKER"), rest_col = column_of(header, "PROTECTIONS");
    const char *row = line_starting(p.text, "dc-1 ");
    assert_int_equal(column_of(row, "broker-b.example.org:8883"), broker_col);
    assert_int_equal(column_of(row, " none") + 1, rest_col);
    row = line_starting(p.text, "dc-2 ");
    assert_int_equal(strncmp(row + broker_col, "- ", 2), 0);
    free(p.text);
    /* no site said: no column */
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(data, "sites"), 0), "broker",
                              cJSON_CreateString(""));
    begin(&p);
    cli__print_sites(p.out, data, 0);
    end(&p);
    assert_null(strstr(p.text, "BROKER"));
    free(p.text);
    cJSON_Delete(data);
}

static void test_jobs_show_long_sites_and_route_kind(void **state)
{
    (void)state;
    cJSON *data = cJSON_Parse(
        "{\"jobs\": [{\"id\": 12, \"name\": \"\", \"kind\": \"route\", \"state\": \"running\", "
        "\"attempt\": 1, \"site\": \"" LONG_ID "\", \"reason\": \"\"}, {\"id\": 3, \"name\": "
        "\"hash-pod\", \"kind\": \"exec\", \"state\": \"queued\", \"attempt\": 0, \"site\": "
        "\"\", \"reason\": \"waiting\"}], \"counts\": {\"queued\": 1, \"running\": 1}}");
    printed p;
    begin(&p);
    cli__print_jobs(p.out, data);
    end(&p);
    const char *header = line_starting(p.text, "ID ");
    long kind_col = column_of(header, "KIND"), reason_col = column_of(header, "REASON");
    long name_col = column_of(header, "NAME");
    const char *row = line_starting(p.text, "12 ");
    assert_non_null(strstr(row, LONG_ID));
    /* the unnamed route job is labelled by its kind in the NAME column */
    assert_int_equal(column_of(row, "route"), name_col);
    row = line_starting(p.text, "3 ");
    assert_int_equal(column_of(row, "exec"), kind_col);
    assert_int_equal(column_of(row, "waiting"), reason_col);
    assert_non_null(strstr(p.text, "totals: queued=1 running=1"));
    free(p.text);
    cJSON_Delete(data);
}

static void test_per_site_table(void **state)
{
    (void)state;
    cJSON *per_site = cJSON_Parse("{\"\": {\"queued\": 4}, \"" LONG_ID "\": {\"succeeded\": 9}, "
                                  "\"car-1\": {\"running\": 1}}");
    printed p;
    begin(&p);
    cli__print_per_site(p.out, per_site);
    end(&p);
    const char *header = line_starting(p.text, "SITE ");
    long placed_col = column_of(header, "PLACED");
    const char *row = line_starting(p.text, LONG_ID " ");
    assert_non_null(strstr(row, " 9 "));
    /* numbers end where their right-aligned header ends */
    row = line_starting(p.text, "car-1 ");
    assert_int_equal(row[placed_col + 5], '0');
    assert_int_equal(row[placed_col + 4], ' ');
    assert_int_equal(row[placed_col + 6], ' ');
    free(p.text);
    cJSON_Delete(per_site);
}

static void test_path_join(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(cli__path_join(buf, sizeof buf, "out/", "file"), OP_OK);
    assert_string_equal(buf, "out/file");
    assert_int_equal(cli__path_join(buf, sizeof buf, "out", "file"), OP_OK);
    assert_string_equal(buf, "out/file");
    assert_int_equal(cli__path_join(buf, sizeof buf, "out///", "file"), OP_OK);
    assert_string_equal(buf, "out/file");
    assert_int_equal(cli__path_join(buf, sizeof buf, "/", "file"), OP_OK);
    assert_string_equal(buf, "/file");
    assert_int_equal(cli__path_join(buf, sizeof buf, "", "file"), OP_OK);
    assert_string_equal(buf, "file");
    assert_int_equal(cli__path_join(buf, sizeof buf, "/tmp/a/", "b.gz"), OP_OK);
    assert_string_equal(buf, "/tmp/a/b.gz");
    assert_int_equal(cli__path_join(buf, sizeof buf, "out", ""), OP_EINVAL);
    assert_int_equal(cli__path_join(buf, 8, "out", "toolong"), OP_ETOOBIG);
}

static void test_stats_are_counters_not_records(void **state)
{
    (void)state;
    cJSON *data = cJSON_Parse(
        "{\"messages\": {\"accepted\": 120, \"unsigned\": 0, \"forged\": 2, \"replayed\": 1},"
        " \"results\": {\"applied\": 50, \"duplicate\": 3, \"stale\": 0},"
        " \"per_site\": {\"\": {\"queued\": 1}, \"dc-1\": {\"succeeded\": 50}},"
        " \"applied_results\": 50, \"cpu_seconds\": 12.5, \"energy_joules\": 4200,"
        " \"jobs_submitted\": 51, \"bound_hits\": 0, \"commits\": 80, \"commit_ms_avg\": 0.25,"
        " \"jobs\": [{\"id\": 51, \"name\": \"a-job-record\"}],"
        " \"counts\": {\"queued\": 1, \"succeeded\": 50}}");
    printed p;
    begin(&p);
    cli__print_stats(p.out, data, "hub-a");
    end(&p);
    assert_non_null(strstr(p.text, "hub hub-a\n"));
    assert_non_null(strstr(p.text, "jobs:      queued 1, succeeded 50; 51 submitted"));
    assert_non_null(strstr(p.text, "results:   50 applied, 3 duplicates"));
    assert_non_null(strstr(p.text, "12.5 CPU s, 4.2 kJ"));
    assert_non_null(strstr(p.text, "messages:  120 accepted; dropped: unsigned 0, forged 2, "
                                   "replayed 1\n"));
    assert_non_null(strstr(p.text, "80 commits, 0.25 ms"));
    assert_non_null(strstr(line_starting(p.text, "dc-1 "), "50"));
    assert_null(strstr(p.text, "a-job-record"));
    assert_null(strstr(p.text, "{"));
    free(p.text);
    cJSON_Delete(data);
}

static void test_text_and_time_helpers(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"a\": \"x\", \"e\": \"\", \"n\": 5, \"neg\": -3}");
    assert_string_equal(cli__text(o, "a", "-"), "x");
    assert_string_equal(cli__text(o, "e", "-"), "-");
    assert_string_equal(cli__text(o, "missing", "-"), "-");
    assert_string_equal(cli__text(NULL, "a", "?"), "?");
    assert_int_equal(cli__count(o, "n"), 5);
    assert_int_equal(cli__count(o, "neg"), 0);
    assert_int_equal(cli__count(o, "missing"), 0);
    char buf[16];
    assert_string_equal(cli__fmt_time(0, buf, sizeof buf), "-");
    assert_string_equal(cli__fmt_time(3723000, buf, sizeof buf), "01:02:03");
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_id_fits_in_63),
        cmocka_unit_test(test_column_width),
        cmocka_unit_test(test_sites_show_long_ids_whole),
        cmocka_unit_test(test_sites_show_their_broker),
        cmocka_unit_test(test_jobs_show_long_sites_and_route_kind),
        cmocka_unit_test(test_per_site_table),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_stats_are_counters_not_records),
        cmocka_unit_test(test_text_and_time_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
