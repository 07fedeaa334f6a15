/*
 * swarm_power: the swarm's power, from the ACN charging sessions and the
 * German grid's carbon intensity in ../shared/data/power, or a daily sine.
 */
#include "swarm.h"

#include "base/os.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- power: the trace or the synthetic curve ---------- */

/* "YYYY-MM-DDTHH:MM:SS" -> second of its day; -1 when it is not that shape. */
static int second_of_day(const char *text)
{
    int y, mo, d, hh, mm, ss;
    if (sscanf(text, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &hh, &mm, &ss) != 6) return -1;
    return hh * 3600 + mm * 60 + ss;
}

/* The ACN sessions' plug-in hours: columns 7 and 8 (connection, disconnection, UTC). */
static void load_sessions(swarm *sw, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    int cap = 0;
    while (fgets(line, sizeof line, f) && sw->n_sessions < 100000) {
        char *fields[9] = {0};
        int k = 0;
        for (char *p = line, *tok; k < 9 && (tok = strsep(&p, ",")); k++)
            fields[k] = tok;
        int a = k >= 8 ? second_of_day(fields[6]) : -1, b = k >= 8 ? second_of_day(fields[7]) : -1;
        if (a < 0 || b < 0) continue;
        if (sw->n_sessions == cap) {
            cap = cap ? cap * 2 : 1024;
            sw->plug_s = realloc(sw->plug_s, (size_t)cap * sizeof *sw->plug_s);
            sw->unplug_s = realloc(sw->unplug_s, (size_t)cap * sizeof *sw->unplug_s);
            if (!sw->plug_s || !sw->unplug_s) exit(1);
        }
        sw->plug_s[sw->n_sessions] = a;
        sw->unplug_s[sw->n_sessions++] = b;
    }
    fclose(f);
}

/* The grid's carbon intensity over the file's first day: each 15-minute slot's rank in it. */
static int load_grid(swarm *sw, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    double v[96];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < 96) {
        char *comma = strchr(line, ',');
        if (comma && line[0] >= '0' && line[0] <= '9') v[n++] = strtod(comma + 1, NULL);
    }
    fclose(f);
    for (int i = 0; i < n; i++) {
        int below = 0;
        for (int j = 0; j < n; j++)
            below += v[j] < v[i];
        sw->grid_rank[i] = n > 1 ? (float)below / (float)(n - 1) : 0.5f;
    }
    return n == 96;
}

void swarm__load_power(swarm *sw)
{
    char path[4096];
    sw->power_source = "synthetic (a daily sine; no trace)";
    if (strcmp(sw->o.power_dir, "none") == 0) return;
    snprintf(path, sizeof path, "%s/acn_caltech_sessions_2020-12_2021-09.csv", sw->o.power_dir);
    load_sessions(sw, path);
    snprintf(path, sizeof path, "%s/ci_de_2020.csv", sw->o.power_dir);
    int grid = load_grid(sw, path);
    if (sw->n_sessions > 0 && grid)
        sw->power_source = "trace (ACN Caltech sessions, carbon intensity DE 2020)";
    else
        sw->n_sessions = 0;
}

/* The site's envelope now and the grid's rank: from its session, else the sine. */
void swarm__power_now(const vsite *v, double budget, double idle, double *envelope, double *rank)
{
    const swarm *sw = v->sw;
    int64_t now_s = os_now_ms() / 1000;
    int sod = (int)(now_s % 86400);
    if (sw->n_sessions > 0) {
        int a = sw->plug_s[v->session], b = sw->unplug_s[v->session];
        int plugged = a <= b ? (sod >= a && sod < b) : (sod >= a || sod < b);
        *envelope = plugged ? budget : idle;
        *rank = sw->grid_rank[sod / 900];
    } else {
        double phase = 2 * M_PI * ((double)sod / 86400.0 + (double)v->session / 97.0);
        *envelope = idle + (budget - idle) * (0.5 + 0.5 * sin(phase));
        *rank = 0.5 + 0.5 * cos(phase);
    }
}
