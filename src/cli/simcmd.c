#include "cli/simcmd.h"

#include "base/err.h"
#include "base/os.h"
#include "base/runctl.h"
#include "base/util.h"
#include "core/sched.h"
#include "io/simfiles.h"
#include "sim/sim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost sim [options]\n"
            "Simulates a fleet of charging-site pods, parked cars and warehouse data centers\n"
            "built from real data, and runs Outpost's scheduler and two baselines on it\n"
            "side by side (docs/simulator.md).\n\n"
            "  --sites N      sites (default 100000)\n"
            "  --jobs N       jobs over the simulated days (default 1000000)\n"
            "  --days D       simulated days, after one day of warm-up (default 1)\n"
            "  --seed N       random seed (default 1); the same seed gives the same run\n"
            "  --regions R    grid regions, each with its own carbon and price series (default 8)\n"
            "  --step S       time step in seconds, dividing 900 (default 60)\n"
            "  --data DIR     the power data (default $OUTPOST_DATA, else ../shared/data/power)\n"
            "  --out DIR      write sim_summary.csv, sim_series.csv and sim_power.svg there\n"
            "  --no-defer     no job is deferrable (what waiting for cheaper power costs)\n"
            "  --misstated    submitters misstate expected_s; adds outpost-learned, which plans\n"
            "                 with run times learned from finished jobs\n"
            "  --quiet        no progress bar\n"
            "       outpost sim --verify [--help]: result verification rules against liars\n");
}

void simcmd_progress(void *ctx, double fraction, const char *what)
{
    (void)ctx;
    int width = 40, done = (int)(fraction * width + 0.5);
    if (done > width) done = width;
    fprintf(stderr, "\r[%.*s%*s] %3.0f%% %s", done, "########################################",
            width - done, "", fraction * 100, what);
    if (fraction >= 1) fputc('\n', stderr);
    fflush(stderr);
}

static int parse_count(const char *text, const char *what, int64_t min, int64_t max, int64_t *out)
{
    if (util_parse_i64(text, min, max, out) == OP_OK) return 1;
    fprintf(stderr, "sim: %s: expected an integer from %lld to %lld, got '%s'\n", what,
            (long long)min, (long long)max, text);
    return 0;
}

/* How the world's submitters misstated expected_s (--misstated). */
static void report_misstatement(const sim_misstatement *m)
{
    printf("submitters' expected_s (--misstated): %.0f%% of jobs declare none; the others declare "
           "%.2fx the actual run time at the median (%.0f%% below it, %.0f%% at 2x or more; "
           "sigma of ln %.2f); %d programs; %.1f%% of jobs run longer than their deadline "
           "allows\n\n",
           100 * m->undeclared, m->median_ratio, 100 * m->under, 100 * m->over2, m->log_sigma,
           m->programs, 100 * m->infeasible);
}

static void report(const sim_params *p, const sim_report *r)
{
    const sim_strategy_report *q = r->strategy;
    double offered = 0;
    for (int c = 0; c < SIM_CLASSES; c++)
        offered += r->offered_kwh[c];
    printf("outpost sim: %zu sites (%zu pods, %zu cars, %zu data centers), %zu jobs, %d day%s, "
           "seed %llu, %d regions, step %d s\n",
           p->sites, r->sites_by_class[SIM_CLASS_POD], r->sites_by_class[SIM_CLASS_CAR],
           r->sites_by_class[SIM_CLASS_DC], r->jobs, p->days, p->days > 1 ? "s" : "",
           (unsigned long long)p->seed, p->regions, p->step_s);
    printf("spare energy offered: %.1f MWh (pods %.1f, cars %.1f, data centers %.1f)\n",
           offered / 1000, r->offered_kwh[SIM_CLASS_POD] / 1000,
           r->offered_kwh[SIM_CLASS_CAR] / 1000, r->offered_kwh[SIM_CLASS_DC] / 1000);
    printf("envelope / hardware of the sites present: pods %.1f%%, cars %.1f%%, data centers "
           "%.1f%%\n\n",
           100 * r->offered_kwh[SIM_CLASS_POD] / (r->hardware_kwh[SIM_CLASS_POD] + 1e-9),
           100 * r->offered_kwh[SIM_CLASS_CAR] / (r->hardware_kwh[SIM_CLASS_CAR] + 1e-9),
           100 * r->offered_kwh[SIM_CLASS_DC] / (r->hardware_kwh[SIM_CLASS_DC] + 1e-9));
    if (p->misstated) report_misstatement(&r->misstated);
    printf("%-46s", "");
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k)) printf(" %15s", sim_strategy_name(k));
    printf("\n");
#define ROW(label, fmt, expr)                                                                      \
    do {                                                                                           \
        printf("%-46s", label);                                                                    \
        for (int k = 0; k < SIM_STRATEGIES; k++) {                                                 \
            const sim_strategy_report *x = &q[k];                                                  \
            (void)x;                                                                               \
            if (sim_strategy_active(p, k)) printf(" " fmt, expr);                                  \
        }                                                                                          \
        printf("\n");                                                                              \
    } while (0)
    ROW("spare energy used within envelopes (MWh)", "%15.1f",
        (x->used_kwh[0] + x->used_kwh[1] + x->used_kwh[2]) / 1000);
    ROW("  of the spare offered (%)", "%15.1f",
        100 * (x->used_kwh[0] + x->used_kwh[1] + x->used_kwh[2]) / (offered > 0 ? offered : 1));
    ROW("  of what eligible queued work could use (%)", "%15.1f",
        100 * x->used_unit_s / (x->usable_unit_s > 0 ? x->usable_unit_s : 1));
    ROW("envelope violations (site-s past reaction time)", "%15.0f", x->violation_site_s);
    ROW("  over-envelope shed within reaction (site-s)", "%15.0f", x->within_reaction_site_s);
    ROW("energy drawn above envelopes (kWh)", "%15.1f", x->over_kwh);
    ROW("jobs completed", "%15ld", x->completed);
    ROW("  by their deadline (% of all jobs)", "%15.1f",
        100.0 * (double)x->on_time / (double)(r->jobs ? r->jobs : 1));
    ROW("dropped: deadline could no longer be met", "%15ld", x->dropped);
    ROW("deadlines missed (dropped, late, unfinished)", "%15ld", x->missed);
    ROW("preemptions (envelope drops; checkpointed)", "%15ld", x->preempted);
    ROW("jobs cut off by a car driving away", "%15ld", x->lost_on_departure);
    ROW("wasted work (unit-hours redone)", "%15.0f", x->wasted_unit_h);
    ROW("energy cost (EUR)", "%15.0f", x->cost_eur);
    ROW("carbon (t CO2)", "%15.2f", x->carbon_kg / 1000);
    ROW("  per MWh used (kg)", "%15.1f",
        x->carbon_kg /
            ((x->used_kwh[0] + x->used_kwh[1] + x->used_kwh[2] + x->over_kwh) / 1000 + 1e-9));
    ROW("placements", "%15ld", x->placements);
    ROW("placements per second (placement code)", "%15.0f",
        x->place_s > 0 ? (double)x->placements / x->place_s : 0);
    if (p->misstated) {
        ROW("fresh starts planned with: declared", "%15ld", x->planned_declared);
        ROW("  learned", "%15ld", x->planned_learned);
        ROW("  nothing (no expected_s)", "%15ld", x->planned_unknown);
        ROW("  mean |ln(planned / actual run time)|", "%15.2f", x->plan_log_error);
    }
    printf("%-46s", "still queued / running at the end");
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k))
            printf(" %9ld/%5ld", q[k].queued_at_end, q[k].running_at_end);
    printf("\n");
#undef ROW
    printf("\noutpost scheduler memory per site: %.0f bytes (sched_site %zu + index %.0f)\n",
           r->sched_bytes_per_site, sizeof(sched_site),
           r->sched_bytes_per_site - (double)sizeof(sched_site));
    printf("wall time: %.1f s\n", r->wall_s);
}

static int write_summary(const char *dir, const sim_params *p, const sim_report *r)
{
    char path[1024];
    util_fmt(path, sizeof path, "%s/sim_summary.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) return OP_EIO;
    fprintf(f, "metric");
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k)) fprintf(f, ",%s", sim_strategy_name(k));
    fprintf(f, "\n");
    const sim_strategy_report *q = r->strategy;
#define LINE(name, expr)                                                                           \
    do {                                                                                           \
        fprintf(f, "%s", name);                                                                    \
        for (int k = 0; k < SIM_STRATEGIES; k++) {                                                 \
            const sim_strategy_report *x = &q[k];                                                  \
            (void)x;                                                                               \
            if (sim_strategy_active(p, k)) fprintf(f, ",%.6g", (double)(expr));                    \
        }                                                                                          \
        fprintf(f, "\n");                                                                          \
    } while (0)
    LINE("offered_kwh", r->offered_kwh[0] + r->offered_kwh[1] + r->offered_kwh[2]);
    LINE("used_kwh_pod", x->used_kwh[SIM_CLASS_POD]);
    LINE("used_kwh_car", x->used_kwh[SIM_CLASS_CAR]);
    LINE("used_kwh_dc", x->used_kwh[SIM_CLASS_DC]);
    LINE("used_share_of_usable", x->used_unit_s / (x->usable_unit_s > 0 ? x->usable_unit_s : 1));
    LINE("violation_site_s", x->violation_site_s);
    LINE("within_reaction_site_s", x->within_reaction_site_s);
    LINE("over_envelope_kwh", x->over_kwh);
    LINE("jobs", r->jobs);
    LINE("completed", x->completed);
    LINE("on_time", x->on_time);
    LINE("dropped", x->dropped);
    LINE("missed", x->missed);
    LINE("preempted", x->preempted);
    LINE("lost_on_departure", x->lost_on_departure);
    LINE("wasted_unit_h", x->wasted_unit_h);
    LINE("cost_eur", x->cost_eur);
    LINE("carbon_kg", x->carbon_kg);
    LINE("placements", x->placements);
    LINE("placements_per_s", x->place_s > 0 ? (double)x->placements / x->place_s : 0);
    LINE("planned_declared", x->planned_declared);
    LINE("planned_learned", x->planned_learned);
    LINE("planned_unknown", x->planned_unknown);
    LINE("plan_log_error", x->plan_log_error);
#undef LINE
    fprintf(f, "sites");
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k)) fprintf(f, ",%zu", p->sites);
    fprintf(f, "\nseed");
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k)) fprintf(f, ",%llu", (unsigned long long)p->seed);
    fprintf(f, "\n");
    return fclose(f) == 0 ? OP_OK : OP_EIO;
}

static const float *series_row(const sim_report *r, size_t step, int cls)
{
    return &r->series[(step * SIM_CLASSES + (size_t)cls) * (1 + SIM_STRATEGIES)];
}

static int write_series(const char *dir, const sim_params *p, const sim_report *r)
{
    char path[1024];
    util_fmt(path, sizeof path, "%s/sim_series.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) return OP_EIO;
    fprintf(f, "minute,class,offered_w");
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k)) fprintf(f, ",%s_w", sim_strategy_name(k));
    fprintf(f, "\n");
    for (size_t s = 0; s < r->n_steps; s++)
        for (int c = 0; c < SIM_CLASSES; c++) {
            const float *v = series_row(r, s, c);
            fprintf(f, "%.1f,%s,%.0f", (double)s * r->step_s / 60.0, sim_class_name(c), v[0]);
            for (int k = 0; k < SIM_STRATEGIES; k++)
                if (sim_strategy_active(p, k)) fprintf(f, ",%.0f", v[1 + k]);
            fprintf(f, "\n");
        }
    return fclose(f) == 0 ? OP_OK : OP_EIO;
}

/* Offered vs drawn power over the run, one panel per site class. */
static int write_svg(const char *dir, const sim_params *p, const sim_report *r)
{
    char path[1024];
    util_fmt(path, sizeof path, "%s/sim_power.svg", dir);
    FILE *f = fopen(path, "w");
    if (!f) return OP_EIO;
    const int W = 900, H = 230, L = 70, R = 20, T = 30, B = 40;
    static const char *colors[SIM_STRATEGIES] = {"#1a9850", "#f46d43", "#4575b4", "#762a83"};
    static const char *dashes[SIM_STRATEGIES] = {"", "6,3", "2,2", "8,2,2,2"};
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' "
            "fill='white'/>\n",
            W, H * SIM_CLASSES + 30);
    double hours = (double)r->n_steps * r->step_s / 3600.0;
    for (int c = 0; c < SIM_CLASSES; c++) {
        int y0 = c * H + 10;
        double top = 1;
        for (size_t s = 0; s < r->n_steps; s++)
            for (int k = 0; k <= SIM_STRATEGIES; k++)
                if (series_row(r, s, c)[k] > top) top = series_row(r, s, c)[k];
        top *= 1.05;
        double pw = W - L - R, ph = H - T - B;
#define X(s) (L + pw * (double)(s) / (double)(r->n_steps > 1 ? r->n_steps - 1 : 1))
#define Y(v) (y0 + T + ph - ph * (double)(v) / top)
        fprintf(f,
                "<text x='%d' y='%d' font-weight='bold'>%s: offered spare power vs drawn</text>\n",
                L, y0 + 18, sim_class_name(c));
        fprintf(f, "<rect x='%d' y='%d' width='%.0f' height='%.0f' fill='none' stroke='#999'/>\n",
                L, y0 + T, pw, ph);
        for (int g = 0; g <= 4; g++) {
            double v = top * g / 4;
            fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>%.2f MW</text>\n", L - 4, Y(v) + 4,
                    v / 1e6);
        }
        for (int hmark = 0; hmark <= (int)hours; hmark += hours > 48 ? 24 : 3)
            fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%dh</text>\n",
                    L + pw * hmark / (hours > 0 ? hours : 1), y0 + H - B + 14, hmark);
        /* offered: a grey area */
        fprintf(f, "<path fill='#d9d9d9' stroke='none' d='M%.1f,%.1f", X(0), Y(0));
        for (size_t s = 0; s < r->n_steps; s++)
            fprintf(f, " L%.1f,%.1f", X(s), Y(series_row(r, s, c)[0]));
        fprintf(f, " L%.1f,%.1f Z'/>\n", X(r->n_steps - 1), Y(0));
        for (int k = 0; k < SIM_STRATEGIES; k++) {
            if (!sim_strategy_active(p, k)) continue;
            fprintf(f, "<path fill='none' stroke='%s' stroke-width='1.3' stroke-dasharray='%s' d='",
                    colors[k], dashes[k]);
            for (size_t s = 0; s < r->n_steps; s++)
                fprintf(f, "%s%.1f,%.1f", s ? " L" : "M", X(s), Y(series_row(r, s, c)[1 + k]));
            fprintf(f, "'/>\n");
        }
#undef X
#undef Y
    }
    int ly = H * SIM_CLASSES + 15;
    fprintf(f,
            "<rect x='%d' y='%d' width='14' height='10' fill='#d9d9d9'/><text x='%d' y='%d'>"
            "spare power offered</text>\n",
            L, ly - 9, L + 18, ly);
    for (int k = 0; k < SIM_STRATEGIES; k++)
        if (sim_strategy_active(p, k))
            fprintf(f,
                    "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2' "
                    "stroke-dasharray='%s'/><text x='%d' y='%d'>%s (drawn)</text>\n",
                    L + 180 + k * 155, ly - 4, L + 200 + k * 155, ly - 4, colors[k], dashes[k],
                    L + 205 + k * 155, ly, sim_strategy_name(k));
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? OP_OK : OP_EIO;
}

static double mono_s(void)
{
    return (double)os_mono_us() / 1e6;
}

/* One option into p (or the data and output folders). 1 to go on, 0 on a bad value (said). */
static int parse_option(int c, const char *arg, sim_params *p, const char **data_dir,
                        const char **out_dir, int *quiet)
{
    int64_t v;
    switch (c) {
    case 's':
        if (!parse_count(arg, "--sites", 1, 2000000, &v)) return 0;
        p->sites = (size_t)v;
        return 1;
    case 'j':
        if (!parse_count(arg, "--jobs", 0, 20000000, &v)) return 0;
        p->jobs = (size_t)v;
        return 1;
    case 'd':
        if (!parse_count(arg, "--days", 1, 14, &v)) return 0;
        p->days = (int)v;
        return 1;
    case 'S':
        if (!parse_count(arg, "--seed", 0, INT64_MAX, &v)) return 0;
        p->seed = (uint64_t)v;
        return 1;
    case 'r':
        if (!parse_count(arg, "--regions", 1, 64, &v)) return 0;
        p->regions = (int)v;
        return 1;
    case 't':
        if (!parse_count(arg, "--step", 10, 900, &v)) return 0;
        if (900 % v != 0) {
            fprintf(stderr, "sim: --step: must divide 900 (the forecast interval)\n");
            return 0;
        }
        p->step_s = (int)v;
        return 1;
    case 'D':
        *data_dir = arg;
        return 1;
    case 'o':
        *out_dir = arg;
        return 1;
    case 'q':
        *quiet = 1;
        return 1;
    case 'n':
        p->no_defer = 1;
        return 1;
    case 'm':
        p->misstated = 1;
        return 1;
    }
    usage(stderr);
    return 0;
}

/*
 * The command line into p, *data_dir and *out_dir. Returns -1 to go on,
 * else the exit code (after --help, or a usage error already reported).
 */
static int parse_args(int argc, char **argv, sim_params *p, const char **data_dir,
                      const char **out_dir)
{
    static const struct option opts[] = {{"sites", required_argument, 0, 's'},
                                         {"jobs", required_argument, 0, 'j'},
                                         {"days", required_argument, 0, 'd'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"regions", required_argument, 0, 'r'},
                                         {"step", required_argument, 0, 't'},
                                         {"data", required_argument, 0, 'D'},
                                         {"out", required_argument, 0, 'o'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"no-defer", no_argument, 0, 'n'},
                                         {"misstated", no_argument, 0, 'm'},
                                         {0, 0, 0, 0}};
    sim_params_default(p);
    p->now_s = mono_s;
    *data_dir = getenv("OUTPOST_DATA");
    if (!*data_dir || !**data_dir) *data_dir = "../shared/data/power";
    *out_dir = NULL;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (!parse_option(c, optarg, p, data_dir, out_dir, &quiet)) return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "sim: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!quiet) p->progress = simcmd_progress;
    return -1;
}

int simcmd_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--verify") == 0) return simverify_main(argc - 1, argv + 1);
    sim_params p;
    const char *data_dir, *out_dir;
    int exit_code = parse_args(argc, argv, &p, &data_dir, &out_dir);
    if (exit_code >= 0) return exit_code;
    simdata data;
    char err[512] = "";
    int rc = simfiles_load(&data, data_dir, err, sizeof err);
    if (rc != OP_OK) {
        fprintf(stderr, "sim: %s\n", err);
        return rc == OP_ENOTFOUND ? EXIT_NOT_FOUND : EXIT_USAGE;
    }
    sim_report r;
    rc = sim_run(&data, &p, &r, err, sizeof err);
    simdata_clear(&data);
    if (rc != OP_OK) {
        fprintf(stderr, "sim: %s\n", err);
        return rc == OP_EINVAL ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
    }
    report(&p, &r);
    exit_code = EXIT_OK;
    if (out_dir) {
        if (os_mkdir_p(out_dir) != OP_OK || write_summary(out_dir, &p, &r) != OP_OK ||
            write_series(out_dir, &p, &r) != OP_OK || write_svg(out_dir, &p, &r) != OP_OK) {
            fprintf(stderr, "sim: cannot write the files in %s\n", out_dir);
            exit_code = EXIT_FAILURE_RUNTIME;
        } else {
            printf("wrote %s/sim_summary.csv, sim_series.csv, sim_power.svg\n", out_dir);
        }
    }
    sim_report_clear(&r);
    return exit_code;
}
