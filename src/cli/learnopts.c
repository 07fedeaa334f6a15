/*
 * `outpost learn replay`'s options: their usage text, their defaults (the
 * settings docs/learning.md's figures come from) and their parsing, with a
 * clear error for a bad value. The replay itself is learncmd.c.
 */
#include "base/err.h"
#include "base/util.h"
#include "cli/cli_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli__learn_usage(FILE *out)
{
    fprintf(out,
            "usage: outpost learn replay [options]\n"
            "       outpost learn fit ...   what a site's learn job runs (docs/learning.md)\n"
            "Replays real taxi trips as a fleet's exceptions, period by period: each site\n"
            "predicts the period's trips, then learns from them (docs/learning.md).\n\n"
            "  --data chicago|nyc  the data set (default nyc): NYC March 2019 by pickup\n"
            "                  borough, days; Chicago 2013-2016 by company, weeks\n"
            "  --dir DIR       the data folder (default $OUTPOST_LEARN_DATA, else\n"
            "                  ../shared/data/learning)\n"
            "  --out DIR       write learn_<data>.csv and learn_<data>.svg there\n"
            "  --quick         a short replay: the first 10 days (nyc) or 52 weeks (chicago)\n"
            "  --objective log|abs  squared error on log(actual/static) (default) or\n"
            "                  absolute error on actual - static\n"
            "  --rounds N      trees a continued update adds (default 20; see --rebuild)\n"
            "  --depth N       tree depth (default 6)\n"
            "  --eta X         learning rate (default 0.1)\n"
            "  --batch N       new rows a model waits for before an update (default 50)\n"
            "  --window N|all  an update fits on at least the site's last N rows (default\n"
            "                  all the rows it kept; 0: the new rows only)\n"
            "  --margin X      a challenger must be this fraction better (default 0.02)\n"
            "  --holdout N     held-out recent rows compared (default 200)\n"
            "  --min-rows N    held-out rows needed before any change (default 20)\n"
            "  --period-days N days per period (default 1 for nyc, 7 for chicago)\n"
            "  --central-rounds N  trees of the central model, retrained on all rows each\n"
            "                  period (default 200); pooled-cyclic grows as many\n"
            "  --passes N      rounds of the sites pooled-cyclic makes per period (default 10)\n"
            "  --personal N    trees a site adds to the pooled model on its own rows before\n"
            "                  weighing it against its own (default 20; 0: as it comes)\n"
            "  --rebuild N     a site's model is retrained from scratch with N trees on its\n"
            "                  rows at each update (default 100; 0: continued, --rounds more)\n"
            "  --sticky 0|1    a site switches between its own and the pooled model only\n"
            "                  for one better by the margin (default 1; 0: the pooled one\n"
            "                  must win anew each period)\n"
            "  --quiet         no per-period lines\n");
}

static void opts_default(cli_learn_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = LEARNDATA_NYC;
    o->dir = getenv("OUTPOST_LEARN_DATA");
    if (!o->dir || !*o->dir) o->dir = "../shared/data/learning";
    o->objective = LEARN_OBJ_LOG;
    xgb_params_default(&o->xgb);
    o->xgb.rounds = 20;
    o->batch = 50;
    o->window = SIZE_MAX;
    o->calibrate = 200;
    o->min_site_trips = 10;
    o->few_trips = 500;
    o->seen_goal = 300;
    o->holdout = 200;
    o->rule.margin = 0.02;
    o->rule.min_rows = 20;
    o->central_rounds = 200;
    o->passes = 10;
    o->personal = 20;
    o->rebuild = 100;
    o->sticky = 1;
}

static int parse_number(const char *text, const char *what, double min, double max, double *out)
{
    if (util_parse_double(text, out) == OP_OK && *out >= min && *out <= max) return 1;
    fprintf(stderr, "learn: %s: expected a number from %g to %g, got '%s'\n", what, min, max, text);
    return 0;
}

/*
 * The options of the champion rule, the pooling and the central model into
 * o; 1 to go on, 0 on a bad value or an unknown option (said).
 */
static int parse_pool_option(int c, const char *arg, cli_learn_opts *o)
{
    double v;
    switch (c) {
    case 'm':
        if (!parse_number(arg, "--margin", 0, 0.9, &v)) return 0;
        o->rule.margin = v;
        return 1;
    case 'H':
        if (!parse_number(arg, "--holdout", 1, LEARN_WINDOW_MAX, &v)) return 0;
        o->holdout = (size_t)v;
        return 1;
    case 'M':
        if (!parse_number(arg, "--min-rows", 0, LEARN_WINDOW_MAX, &v)) return 0;
        o->rule.min_rows = (size_t)v;
        return 1;
    case 'c':
        if (!parse_number(arg, "--passes", 1, 1000, &v)) return 0;
        o->passes = (int)v;
        return 1;
    case 'C':
        if (!parse_number(arg, "--central-rounds", 1, 5000, &v)) return 0;
        o->central_rounds = (int)v;
        return 1;
    case 'S':
        if (!parse_number(arg, "--sticky", 0, 1, &v)) return 0;
        o->sticky = (int)v;
        return 1;
    case 'R':
        if (!parse_number(arg, "--rebuild", 0, 5000, &v)) return 0;
        o->rebuild = (int)v;
        return 1;
    case 'L':
        if (!parse_number(arg, "--personal", 0, 1000, &v)) return 0;
        o->personal = (int)v;
        return 1;
    }
    cli__learn_usage(stderr);
    return 0;
}

/* One option into o; 1 to go on, 0 on a bad value (said). */
static int parse_option(int c, const char *arg, cli_learn_opts *o, double *period_days)
{
    double v;
    switch (c) {
    case 'D':
        if (strcmp(arg, "nyc") == 0 || strcmp(arg, "chicago") == 0) {
            o->kind = arg[0] == 'n' ? LEARNDATA_NYC : LEARNDATA_CHICAGO;
            return 1;
        }
        fprintf(stderr, "learn: --data: expected chicago or nyc, got '%s'\n", arg);
        return 0;
    case 'O':
        if (strcmp(arg, "log") == 0 || strcmp(arg, "abs") == 0) {
            o->objective = arg[0] == 'l' ? LEARN_OBJ_LOG : LEARN_OBJ_ABS;
            return 1;
        }
        fprintf(stderr, "learn: --objective: expected log or abs, got '%s'\n", arg);
        return 0;
    case 'd':
        o->dir = arg;
        return 1;
    case 'o':
        o->out = arg;
        return 1;
    case 'q':
        o->quick = 1;
        return 1;
    case 'Q':
        o->quiet = 1;
        return 1;
    case 'r':
        if (!parse_number(arg, "--rounds", 1, 1000, &v)) return 0;
        o->xgb.rounds = (int)v;
        return 1;
    case 'p':
        if (!parse_number(arg, "--depth", 1, 16, &v)) return 0;
        o->xgb.max_depth = (int)v;
        return 1;
    case 'e':
        if (!parse_number(arg, "--eta", 0.001, 1, &v)) return 0;
        o->xgb.eta = v;
        return 1;
    case 'b':
        if (!parse_number(arg, "--batch", 1, 1e6, &v)) return 0;
        o->batch = (size_t)v;
        return 1;
    case 'w':
        if (strcmp(arg, "all") == 0) {
            o->window = SIZE_MAX;
            return 1;
        }
        if (!parse_number(arg, "--window", 0, 1e7, &v)) return 0;
        o->window = (size_t)v;
        return 1;
    case 'P':
        return parse_number(arg, "--period-days", 1, 366, period_days);
    }
    return parse_pool_option(c, arg, o);
}

/* Returns -1 to go on, else the exit code (after --help or a usage error). */
int cli__learn_replay_args(int argc, char **argv, cli_learn_opts *o)
{
    static const struct option long_opts[] = {{"data", required_argument, 0, 'D'},
                                              {"dir", required_argument, 0, 'd'},
                                              {"out", required_argument, 0, 'o'},
                                              {"quick", no_argument, 0, 'q'},
                                              {"quiet", no_argument, 0, 'Q'},
                                              {"objective", required_argument, 0, 'O'},
                                              {"rounds", required_argument, 0, 'r'},
                                              {"depth", required_argument, 0, 'p'},
                                              {"eta", required_argument, 0, 'e'},
                                              {"batch", required_argument, 0, 'b'},
                                              {"window", required_argument, 0, 'w'},
                                              {"margin", required_argument, 0, 'm'},
                                              {"holdout", required_argument, 0, 'H'},
                                              {"min-rows", required_argument, 0, 'M'},
                                              {"period-days", required_argument, 0, 'P'},
                                              {"central-rounds", required_argument, 0, 'C'},
                                              {"passes", required_argument, 0, 'c'},
                                              {"personal", required_argument, 0, 'L'},
                                              {"rebuild", required_argument, 0, 'R'},
                                              {"sticky", required_argument, 0, 'S'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    opts_default(o);
    double period_days = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == 'h') {
            cli__learn_usage(stdout);
            return EXIT_OK;
        }
        if (!parse_option(c, optarg, o, &period_days)) return EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, "learn: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    int chicago = o->kind == LEARNDATA_CHICAGO;
    if (period_days == 0) period_days = chicago ? 7 : 1;
    o->period_s = (int64_t)(period_days * 86400);
    o->warmup = chicago ? 4 : 1;
    o->print_every = chicago ? 4 : 1;
    if (o->quick) o->max_periods = chicago ? 52 : 10;
    return -1;
}
