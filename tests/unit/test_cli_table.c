/*
 * Unit tests for the CLI's command table and dispatch, none needing a hub:
 * every command has a synopsis, a one-line summary and a --help that
 * prints its usage; names are unique; an unknown command is refused with
 * exit 2; bad options are usage errors; hub commands connect only once
 * their arguments are good.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/runctl.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "helpers/capture.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs `outpost ARGS...` in this process; the output of fd (1 or 2) into *out (malloc'd). */
static int run_cli(int fd, char **out, int argc, ...)
{
    char *argv[16] = {0};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 15; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    capture cap;
    assert_int_equal(capture_start(&cap, fd), 0);
    optind = 0; /* route and sim do not reset getopt all the way; every run starts afresh */
    int rc = cli_main(argc, argv);
    *out = capture_end(&cap);
    assert_non_null(*out);
    return rc;
}

static void test_every_command_is_described(void **state)
{
    (void)state;
    assert_true(cli__n_commands >= 18);
    for (size_t i = 0; i < cli__n_commands; i++) {
        const cli_command *cmd = &cli__commands[i];
        assert_non_null(cmd->name);
        assert_non_null(cmd->run);
        assert_true(cmd->synopsis && cmd->summary && *cmd->summary);
        /* the synopsis starts with the command's name; the summary is one line */
        assert_int_equal(strncmp(cmd->synopsis, cmd->name, strlen(cmd->name)), 0);
        assert_null(strchr(cmd->summary, '\n'));
        assert_true(cli_is_command(cmd->name));
        assert_ptr_equal(cli__find(cmd->name), cmd);
        for (size_t j = i + 1; j < cli__n_commands; j++)
            assert_string_not_equal(cmd->name, cli__commands[j].name);
    }
}

static void test_the_roles_and_nonsense_are_not_commands(void **state)
{
    (void)state;
    assert_false(cli_is_command("hub"));
    assert_false(cli_is_command("site"));
    assert_false(cli_is_command(""));
    assert_false(cli_is_command("stat"));
    assert_false(cli_is_command("--json"));
    assert_null(cli__find(NULL));
}

static void test_help_lists_every_command(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    cli_print_commands(out);
    fclose(out);
    for (size_t i = 0; i < cli__n_commands; i++) {
        char line[128];
        snprintf(line, sizeof line, "  outpost %s", cli__commands[i].synopsis);
        if (!strstr(text, line)) fail_msg("outpost help does not list '%s'", line);
        if (!strstr(text, cli__commands[i].summary))
            fail_msg("outpost help lacks the summary of %s", cli__commands[i].name);
    }
    assert_non_null(strstr(text, "Operator commands"));
    assert_non_null(strstr(text, "Site commands"));
    free(text);
}

static void test_unknown_command_is_refused(void **state)
{
    (void)state;
    char *err = NULL;
    int rc = run_cli(2, &err, 1, "frobnicate");
    assert_int_equal(rc, EXIT_USAGE);
    assert_non_null(strstr(err, "unknown command frobnicate; outpost help lists them"));
    free(err);
    /* never a silent stats: even with options that a real command would take */
    rc = run_cli(2, &err, 3, "statz", "--hub-dir", "/nonexistent");
    assert_int_equal(rc, EXIT_USAGE);
    assert_non_null(strstr(err, "unknown command statz"));
    free(err);
}

/* Every command's --help prints "usage: outpost NAME" on stdout and exits 0, with no hub. */
static void test_every_command_has_help(void **state)
{
    (void)state;
    unsetenv("OUTPOST_HUB_DIR");
    for (size_t i = 0; i < cli__n_commands; i++) {
        char *out = NULL, want[64];
        const char *name = cli__commands[i].name;
        int rc = run_cli(1, &out, 2, name, "--help");
        snprintf(want, sizeof want, "usage: outpost %s", name);
        if (rc != EXIT_OK || !strstr(out, want))
            fail_msg("outpost %s --help: exit %d, output '%.200s'", name, rc, out);
        free(out);
    }
}

/* The usage of a hub command names the common options; a site command's does not. */
static void test_usage_texts(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cli__usage(out, "submit");
    fclose(out);
    assert_non_null(strstr(text, "usage: outpost submit"));
    assert_non_null(strstr(text, "--quiet"));
    assert_non_null(strstr(text, "--hub-dir DIR"));
    free(text);
    out = open_memstream(&text, &len);
    cli__usage(out, "leave");
    fclose(out);
    assert_non_null(strstr(text, "--grace S"));
    assert_null(strstr(text, "--hub-dir"));
    free(text);
}

static void test_bad_options_are_usage_errors(void **state)
{
    (void)state;
    static const char *commands[] = {"jobs",    "job",    "result", "watch", "cancel",
                                     "sites",   "token",  "stats",  "audit", "explain",
                                     "approve", "policy", "leave",  "power", "operator-key"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char *err = NULL;
        int rc = run_cli(2, &err, 2, commands[i], "--no-such-option");
        if (rc != EXIT_USAGE || !strstr(err, "unknown option --no-such-option"))
            fail_msg("outpost %s --no-such-option: exit %d, '%.200s'", commands[i], rc, err);
        free(err);
    }
}

/* Arguments are checked before any connection: no hub is configured here. */
static void test_arguments_are_checked_before_connecting(void **state)
{
    (void)state;
    unsetenv("OUTPOST_HUB_DIR");
    char *err = NULL;
    assert_int_equal(run_cli(2, &err, 2, "job", "abc"), EXIT_USAGE);
    assert_non_null(strstr(err, "usage: outpost job ID"));
    assert_null(strstr(err, "which hub?"));
    free(err);
    assert_int_equal(run_cli(2, &err, 3, "audit", "prove", "x"), EXIT_USAGE);
    free(err);
    assert_int_equal(run_cli(2, &err, 4, "audit", "show", "--db", "f"), EXIT_USAGE);
    free(err);
    assert_int_equal(run_cli(2, &err, 3, "watch", "--interval", "5"), EXIT_USAGE);
    free(err);
    assert_int_equal(run_cli(2, &err, 4, "token", "mint", "--class", "pod"), EXIT_USAGE);
    free(err);
    assert_int_equal(run_cli(2, &err, 3, "power", "/nowhere", "--dr-watts=5"), EXIT_USAGE);
    assert_non_null(strstr(err, "--dr-watts and --dr-for go together"));
    free(err);
    /* good arguments: now it asks which hub */
    assert_int_equal(run_cli(2, &err, 2, "job", "7"), EXIT_USAGE);
    assert_non_null(strstr(err, "which hub?"));
    free(err);
    assert_int_equal(run_cli(2, &err, 3, "jobs", "--timeout", "5"), EXIT_USAGE);
    assert_non_null(strstr(err, "--timeout must be"));
    free(err);
}

/* policy check needs no hub; the common options may come before the subcommand. */
static void test_policy_check_runs_here(void **state)
{
    (void)state;
    char dir[] = "/tmp/outpost-test-cli-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/p.policy", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("version 3\ndata confidential on origin\n", f);
    fclose(f);
    char *out = NULL;
    int rc = run_cli(1, &out, 5, "policy", "--hub-dir", dir, "check", path);
    if (rc != EXIT_OK || !strstr(out, "valid, version 3"))
        fail_msg("policy check: exit %d, '%s'", rc, out);
    free(out);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_is_described),
        cmocka_unit_test(test_the_roles_and_nonsense_are_not_commands),
        cmocka_unit_test(test_help_lists_every_command),
        cmocka_unit_test(test_unknown_command_is_refused),
        cmocka_unit_test(test_every_command_has_help),
        cmocka_unit_test(test_usage_texts),
        cmocka_unit_test(test_bad_options_are_usage_errors),
        cmocka_unit_test(test_arguments_are_checked_before_connecting),
        cmocka_unit_test(test_policy_check_runs_here),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
