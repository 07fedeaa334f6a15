/*
 * The site's configuration file (examples/site.conf): every key it knows,
 * each read with its default and range into the site struct. The first
 * error found is reported, naming the file and the key.
 */
#include "base/conf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/sched.h"
#include "site/site_int.h"

#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *site_conf_keys[] = {"site_id",
                                       "broker_host",
                                       "broker_port",
                                       "cores",
                                       "memory_mb",
                                       "power_budget_watts",
                                       "watts_per_core",
                                       "idle_watts",
                                       "heartbeat_ms",
                                       "max_jobs",
                                       "cgroup_dir",
                                       "log_level",
                                       "resend_ms",
                                       "clock_skew_ms",
                                       "audit_head_ms",
                                       "policy_file",
                                       "route_program",
                                       "local_socket",
                                       "local_socket_group",
                                       "power_trace",
                                       "reaction_ms",
                                       "meter_topic",
                                       "region",
                                       "pause_max_ms",
                                       "departure_lead_ms",
                                       "price",
                                       "carbon",
                                       "job_uid_base",
                                       "job_max_processes",
                                       "job_disk_mb",
                                       "broker_tls",
                                       "artifact_cache_mb",
                                       "route_model",
                                       "metrics_listen",
                                       "broker_return_ms",
                                       NULL};

/* site_id (required) and log_level, then the plain strings. */
static int parse_names(site *s, const conf *c, const char *path, char *err, size_t err_len)
{
    const char *id = conf_str(c, "site_id", NULL);
    const char *level = conf_str(c, "log_level", NULL);
    if (!id || !util_valid_id(id)) {
        snprintf(err, err_len, "%s: site_id is required ([A-Za-z0-9_-]{1,63})", path);
        return OP_EINVAL;
    }
    if (level && log_parse_level(level) < 0) {
        snprintf(err, err_len, "%s: log_level must be debug, info, warn or error", path);
        return OP_EINVAL;
    }
    if (level) log_set_level(log_parse_level(level));
    snprintf(s->identity.id, sizeof s->identity.id, "%s", id);
    const char *brokers = conf_str(c, "broker_host", "127.0.0.1");
    bus_broker list[BUS_MAX_BROKERS];
    int n_brokers = 0;
    char why[200];
    if (strlen(brokers) >= sizeof s->broker_host) {
        snprintf(err, err_len, "%s: broker_host: longer than 255 characters", path);
        return OP_EINVAL;
    }
    if (bus_parse_brokers(brokers, 1883, list, BUS_MAX_BROKERS, &n_brokers, why, sizeof why) !=
        OP_OK) {
        snprintf(err, err_len, "%s: broker_host: %s", path, why);
        return OP_EINVAL;
    }
    snprintf(s->broker_host, sizeof s->broker_host, "%s", brokers);
    snprintf(s->cgroup_dir, sizeof s->cgroup_dir, "%s", conf_str(c, "cgroup_dir", ""));
    snprintf(s->local_cfg, sizeof s->local_cfg, "%s", conf_str(c, "local_socket", ""));
    snprintf(s->metrics_listen, sizeof s->metrics_listen, "%s", conf_str(c, "metrics_listen", ""));
    const char *tls = conf_str(c, "broker_tls", "on");
    if (strcmp(tls, "on") != 0 && strcmp(tls, "off") != 0) {
        snprintf(err, err_len, "%s: broker_tls must be on or off", path);
        return OP_EINVAL;
    }
    s->broker_tls = strcmp(tls, "on") == 0;
    return OP_OK;
}

/*
 * local_socket_group: a group (name or number) whose members may use the
 * local socket besides the site's own user and root; none by default.
 */
static int parse_local_group(site *s, const conf *c, const char *path, char *err, size_t err_len)
{
    const char *name = conf_str(c, "local_socket_group", "");
    int64_t gid;
    if (!*name) return OP_OK;
    if (util_parse_i64(name, 0, INT32_MAX, &gid) != OP_OK) {
        struct group *g = getgrnam(name);
        if (!g) {
            snprintf(err, err_len, "%s: local_socket_group: no group '%.64s'", path, name);
            return OP_EINVAL;
        }
        gid = g->gr_gid;
    }
    s->local_group = (gid_t)gid;
    s->has_local_group = 1;
    return OP_OK;
}

/* The program route jobs run: route_program, by default this very binary. */
static int parse_route_program(site *s, const conf *c, const char *path, char *err, size_t err_len)
{
    const char *route_program = conf_str(c, "route_program", NULL);
    if (route_program && *route_program) {
        snprintf(s->route_program, sizeof s->route_program, "%s", route_program);
    } else {
        ssize_t n = readlink("/proc/self/exe", s->route_program, sizeof s->route_program - 1);
        s->route_program[n > 0 ? n : 0] = '\0';
    }
    const char *model = conf_str(c, "route_model", NULL);
    if (model && *model && !artifact_valid_name(model)) {
        snprintf(err, err_len, "%s: route_model: a model name ([A-Za-z0-9_-]{1,63})", path);
        return OP_EINVAL;
    }
    snprintf(s->route_model, sizeof s->route_model, "%s", model ? model : "");
    if (access(s->route_program, X_OK) != 0) {
        snprintf(err, err_len, "%s: route_program '%.200s' is not an executable", path,
                 s->route_program);
        return OP_EINVAL;
    }
    return OP_OK;
}

/* The files the config names: power_trace and policy_file. */
static int parse_files(site *s, const conf *c, const char *path, char *err, size_t err_len)
{
    const char *trace = conf_str(c, "power_trace", NULL);
    int rc = OP_OK;
    if (trace && *trace) rc = site__load_trace(s, trace, err, err_len);
    if (rc == OP_OK) rc = parse_route_program(s, c, path, err, err_len);
    const char *policy_path = conf_str(c, "policy_file", NULL);
    if (rc != OP_OK || !policy_path || !*policy_path) return rc;
    char *text = NULL;
    rc = os_read_file(policy_path, 256 * 1024, &text, NULL);
    if (rc != OP_OK)
        snprintf(err, err_len, "%s: cannot read policy_file %s: %s", path, policy_path,
                 op_strerror(rc));
    else
        rc = policy_parse(text, policy_path, &s->policy, err, err_len);
    free(text);
    return rc;
}

/* Capacity, power and the envelope's timing. */
static int parse_capacity(site *s, const conf *c, char *err, size_t err_len)
{
    int rc = conf_int(c, "broker_port", 1883, 1, 65535, &s->broker_port, err, err_len);
    if (rc == OP_OK) rc = conf_int(c, "cores", 1, 1, 4096, &s->cores, err, err_len);
    if (rc == OP_OK) rc = conf_int(c, "memory_mb", 1024, 16, 1 << 30, &s->memory_mb, err, err_len);
    if (rc == OP_OK)
        rc =
            conf_double(c, "power_budget_watts", 100, 0, 1e7, &s->power_budget_watts, err, err_len);
    if (rc == OP_OK)
        rc = conf_double(c, "watts_per_core", 10, 0, 1e5, &s->watts_per_core, err, err_len);
    if (rc == OP_OK) rc = conf_double(c, "idle_watts", 5, 0, 1e6, &s->idle_watts, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "heartbeat_ms", 2000, 100, 600000, &s->heartbeat_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "reaction_ms", 2000, 100, 600000, &s->reaction_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "region", 0, 0, SCHED_MAX_REGIONS - 1, &s->region, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "pause_max_ms", 120000, 0, 3600000, &s->pause_max_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "departure_lead_ms", 600000, 0, 86400000, &s->departure_lead_ms, err,
                      err_len);
    return rc;
}

/* The grid's price and carbon when fixed, and the meter's topic. */
static int parse_grid(site *s, const conf *c, const char *path, char *err, size_t err_len)
{
    int rc = OP_OK;
    if (conf_str(c, "price", NULL)) {
        rc = conf_double(c, "price", 0, -1e5, 1e5, &s->meter.price, err, err_len);
        s->meter.has |= POWER_METER_PRICE;
    }
    if (rc == OP_OK && conf_str(c, "carbon", NULL)) {
        rc = conf_double(c, "carbon", 0, 0, 1e5, &s->meter.carbon, err, err_len);
        s->meter.has |= POWER_METER_CARBON;
    }
    if (rc != OP_OK) return rc;
    const char *mt = conf_str(c, "meter_topic", "");
    if (strlen(mt) >= sizeof s->meter_topic || strchr(mt, '+') || strchr(mt, '#')) {
        snprintf(err, err_len, "%s: meter_topic: one MQTT topic without wildcards", path);
        return OP_EINVAL;
    }
    snprintf(s->meter_topic, sizeof s->meter_topic, "%s", mt);
    return OP_OK;
}

/* Job slots and the hub link's timing. */
static int parse_link(site *s, const conf *c, char *err, size_t err_len)
{
    int rc = conf_int(c, "max_jobs", s->cores, 1, SITE_MAX_RUNNING, &s->max_jobs, err, err_len);
    if (rc == OP_OK) rc = conf_int(c, "resend_ms", 3000, 100, 3600000, &s->resend_ms, err, err_len);
    /* on a broker other than the first of broker_host's list: how often to try going back */
    if (rc == OP_OK)
        rc =
            conf_int(c, "broker_return_ms", 60000, 0, 86400000, &s->broker_return_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "clock_skew_ms", 120000, 1000, 86400000, &s->clock_skew_ms, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "audit_head_ms", 10000, 100, 86400000, &s->audit_head_ms, err, err_len);
    return rc;
}

/*
 * Isolated jobs: the uid range (job_uid_base .. + max_jobs - 1, never root,
 * below the kernel's (uid_t)-1), their process count and the bytes they may
 * write.
 */
static int parse_job_limits(site *s, const conf *c, char *err, size_t err_len)
{
    int rc = conf_int(c, "job_uid_base", SITE_DEFAULT_JOB_UID_BASE, 1,
                      INT64_C(4294967294) - SITE_MAX_RUNNING, &s->job_uid_base, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "job_max_processes", 128, 1, 1 << 20, &s->job_max_processes, err, err_len);
    if (rc == OP_OK)
        rc = conf_int(c, "job_disk_mb", 1024, 1, 1 << 24, &s->job_disk_mb, err, err_len);
    /* the artifact cache's budget (models jobs read; docs/models.md) */
    if (rc == OP_OK)
        rc =
            conf_int(c, "artifact_cache_mb", 4096, 1, 1 << 24, &s->artifact_cache_mb, err, err_len);
    return rc;
}

int site__parse_config(site *s, const char *path, char *err, size_t err_len)
{
    conf *c = NULL;
    int rc = conf_load(path, site_conf_keys, &c, err, err_len);
    if (rc != OP_OK) return rc;
    rc = parse_names(s, c, path, err, err_len);
    if (rc == OP_OK) rc = parse_local_group(s, c, path, err, err_len);
    if (rc == OP_OK) rc = parse_files(s, c, path, err, err_len);
    if (rc == OP_OK) rc = parse_capacity(s, c, err, err_len);
    if (rc == OP_OK) rc = parse_grid(s, c, path, err, err_len);
    s->budget_watts = s->power_budget_watts;
    if (rc == OP_OK) rc = parse_link(s, c, err, err_len);
    if (rc == OP_OK) rc = parse_job_limits(s, c, err, err_len);
    conf_free(c);
    return rc;
}
