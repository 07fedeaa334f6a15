/*
 * `outpost sim --verify`: the command around sim_verify. Options, the table
 * on standard output, and with --out the CSV (sim_verify.csv) and a plot
 * (sim_verify.svg: lies accepted per million, log scale, per rule,
 * strategy and liar fraction, with each bar's overhead written on it).
 */
#include "cli/simcmd.h"

#include "base/err.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "sim/sim_verify.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost sim --verify [options]\n"
                 "Compares result verification rules (none, fixed 2-of-2, BOINC's adaptive\n"
                 "replication, Outpost's) against liars on a synthetic car fleet, in one run.\n"
                 "  --cars N     cars (default 10000)\n"
                 "  --days D     simulated days, one job per plugged-in car and hour (default 60)\n"
                 "  --seed N     random seed (default 1); the same seed gives the same table\n"
                 "  --out DIR    write sim_verify.csv and sim_verify.svg there\n"
                 "  --quiet      no progress bar\n");
}

static void fmt_quarantine(char *buf, size_t len, const sim_verify_cell *c)
{
    if (c->rule == SV_RULE_NONE || c->rule == SV_RULE_FIXED2 || c->rule == SV_RULE_BOINC)
        util_fmt(buf, len, "no quarantine");
    else if (c->median_quarantine_h < 0)
        util_fmt(buf, len, "never (%u/%u)", c->liars_quarantined, c->liars);
    else
        util_fmt(buf, len, "%.0f h, %.0f jobs", c->median_quarantine_h, c->median_quarantine_jobs);
}

static void print_table(const sim_verify_params *p, const sim_verify_cell *cells, size_t n)
{
    printf("%u cars for %u days (plugged in %.0f%% of hours, one job per plugged-in hour), "
           "liars own %u cars each, seed %llu\n\n",
           p->cars, p->days, p->plugged_in * 100, p->cars_per_liar_owner,
           (unsigned long long)p->seed);
    printf("%-6s %-11s %-8s %10s %10s %9s %10s %20s %8s\n", "liars", "strategy", "rule", "lies/M",
           "wrong/M", "overhead", "accepted", "median quarantine", "honest-q");
    for (size_t i = 0; i < n; i++) {
        const sim_verify_cell *c = &cells[i];
        char q[48];
        fmt_quarantine(q, sizeof q, c);
        printf("%5.0f%% %-11s %-8s %10.1f %10.1f %8.3fx %10llu %20s %8u\n", c->liar_fraction * 100,
               sim_verify_strategy_name(c->strategy), sim_verify_rule_name(c->rule),
               sim_verify_lies_ppm(c), sim_verify_wrong_ppm(c), sim_verify_overhead(c),
               (unsigned long long)c->accepted, q, c->honest_quarantined);
        if (c->rule == SV_RULES - 1 && i + 1 < n) printf("\n");
    }
}

static int write_csv(const char *dir, const sim_verify_cell *cells, size_t n)
{
    char path[4096];
    if (util_fmt(path, sizeof path, "%s/sim_verify.csv", dir) != OP_OK) return OP_ETOOBIG;
    FILE *f = fopen(path, "w");
    if (!f) return OP_EIO;
    fprintf(f, "liar_fraction,strategy,rule,jobs,accepted,lies_accepted,lies_per_million,"
               "wrong_accepted,wrong_per_million,"
               "attempts,overhead,given_up,wrong_sent,liars,liars_quarantined,"
               "honest_quarantined,median_quarantine_h,median_quarantine_jobs\n");
    for (size_t i = 0; i < n; i++) {
        const sim_verify_cell *c = &cells[i];
        fprintf(f,
                "%.2f,%s,%s,%llu,%llu,%llu,%.3f,%llu,%.3f,%llu,%.4f,%llu,%llu,%u,%u,%u,%.1f,%.1f\n",
                c->liar_fraction, sim_verify_strategy_name(c->strategy),
                sim_verify_rule_name(c->rule), (unsigned long long)c->jobs,
                (unsigned long long)c->accepted, (unsigned long long)c->lies_accepted,
                sim_verify_lies_ppm(c), (unsigned long long)c->wrong_accepted,
                sim_verify_wrong_ppm(c), (unsigned long long)c->attempts, sim_verify_overhead(c),
                (unsigned long long)c->given_up, (unsigned long long)c->wrong_sent, c->liars,
                c->liars_quarantined, c->honest_quarantined, c->median_quarantine_h,
                c->median_quarantine_jobs);
    }
    return fclose(f) == 0 ? OP_OK : OP_EIO;
}

/* Bar height on a log scale from 0.1 to 10^6 per million; zero sits on the axis. */
/* One colour per rule, in the table's order: none, 2-of-2, BOINC, Outpost. */
static const char *rule_colors[SV_RULES] = {"#d73027", "#4575b4", "#fdae61", "#1a9850"};

static double bar_y(double ppm, double top, double height)
{
    double v = ppm < 0.1 ? 0.1 : ppm;
    return top + height - height * (log10(v) + 1.0) / 7.0;
}

static void svg_panel(FILE *f, const sim_verify_params *p, const sim_verify_cell *cells, int s,
                      int left, int top, int width, int height)
{
    fprintf(f, "<text x='%d' y='%d' font-weight='bold'>liars: %s</text>\n", left, top - 8,
            sim_verify_strategy_name(s));
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>\n", left,
            top, width, height);
    for (int e = -1; e <= 6; e++) {
        double y = bar_y(pow(10, e), top, height);
        fprintf(f, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#eee'/>", left, left + width,
                y, y);
        fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>1e%d</text>\n", left - 4, y + 4, e);
    }
    double group = (double)width / (double)p->n_fractions, bar = group / (SV_RULES + 1);
    for (size_t fi = 0; fi < p->n_fractions; fi++) {
        double gx = left + group * (double)fi + bar / 2;
        fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%.0f%% liars</text>\n",
                gx + bar * SV_RULES / 2, top + height + 16, p->liar_fractions[fi] * 100);
        for (int r = 0; r < SV_RULES; r++) {
            const sim_verify_cell *c = &cells[(fi * SV_STRATEGIES + (size_t)s) * SV_RULES + r];
            double y = bar_y(sim_verify_lies_ppm(c), top, height);
            double x = gx + bar * r;
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>", x, y,
                    bar - 2, top + height - y, rule_colors[r]);
            fprintf(f,
                    "<text x='%.1f' y='%.1f' font-size='9' text-anchor='middle' "
                    "transform='rotate(-90 %.1f %.1f)'>%.2fx</text>\n",
                    x + bar / 2, y - 14, x + bar / 2, y - 14, sim_verify_overhead(c));
        }
    }
}

static int write_svg(const char *dir, const sim_verify_params *p, const sim_verify_cell *cells)
{
    char path[4096];
    if (util_fmt(path, sizeof path, "%s/sim_verify.svg", dir) != OP_OK) return OP_ETOOBIG;
    FILE *f = fopen(path, "w");
    if (!f) return OP_EIO;
    int W = 1100, H = 420, L = 60, T = 60, PW = 300, PH = 300, GAP = 50;
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='11'>\n<rect width='100%%' height='100%%' "
            "fill='white'/>\n<text x='%d' y='20' font-size='14'>Lies accepted per "
            "million (log scale; 0 sits on the axis), overhead (attempts per accepted result) "
            "on each bar</text>\n",
            W, H, L);
    for (int s = 0; s < SV_STRATEGIES; s++)
        svg_panel(f, p, cells, s, L + s * (PW + GAP), T, PW, PH);
    for (int r = 0; r < SV_RULES; r++)
        fprintf(f,
                "<rect x='%d' y='%d' width='12' height='12' fill='%s'/><text x='%d' "
                "y='%d'>%s</text>\n",
                L + r * 110, H - 22, rule_colors[r], L + r * 110 + 16, H - 12,
                sim_verify_rule_name(r));
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? OP_OK : OP_EIO;
}

static int parse_args(int argc, char **argv, sim_verify_params *p, const char **out_dir)
{
    static const struct option opts[] = {{"cars", required_argument, 0, 'c'},
                                         {"days", required_argument, 0, 'd'},
                                         {"seed", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c, quiet = 0;
    int64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *what = c == 'c' ? "--cars" : c == 'd' ? "--days" : "--seed";
        int64_t min = c == 'c' ? 10 : c == 'd' ? 1 : 0;
        int64_t max = c == 'c' ? 1000000 : c == 'd' ? 3650 : INT64_MAX;
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        } else if (c == 'o') {
            *out_dir = optarg;
        } else if (c == 'q') {
            quiet = 1;
        } else if (c == 'c' || c == 'd' || c == 's') {
            if (util_parse_i64(optarg, min, max, &v) != OP_OK) {
                fprintf(stderr, "sim: %s: expected an integer from %lld to %lld, got '%s'\n", what,
                        (long long)min, (long long)max, optarg);
                return EXIT_USAGE;
            }
            if (c == 'c') p->cars = (uint32_t)v;
            if (c == 'd') p->days = (uint32_t)v;
            if (c == 's') p->seed = (uint64_t)v;
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sim: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!quiet) p->progress = simcmd_progress;
    return -1;
}

int simverify_main(int argc, char **argv)
{
    sim_verify_params p;
    sim_verify_params_default(&p);
    const char *out_dir = NULL;
    int exit_code = parse_args(argc, argv, &p, &out_dir);
    if (exit_code >= 0) return exit_code;
    size_t n = sim_verify_cell_count(&p);
    sim_verify_cell *cells = calloc(n, sizeof *cells);
    if (!cells) return EXIT_FAILURE_RUNTIME;
    char err[256] = "";
    int rc = sim_verify_run(&p, cells, n, err, sizeof err);
    if (rc != OP_OK) {
        fprintf(stderr, "sim: %s\n", err);
        free(cells);
        return rc == OP_EINVAL ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
    }
    print_table(&p, cells, n);
    exit_code = EXIT_OK;
    if (out_dir) {
        if (os_mkdir_p(out_dir) != OP_OK || write_csv(out_dir, cells, n) != OP_OK ||
            write_svg(out_dir, &p, cells) != OP_OK) {
            fprintf(stderr, "sim: cannot write the files in %s\n", out_dir);
            exit_code = EXIT_FAILURE_RUNTIME;
        } else {
            printf("\nwrote %s/sim_verify.csv, sim_verify.svg\n", out_dir);
        }
    }
    free(cells);
    return exit_code;
}
