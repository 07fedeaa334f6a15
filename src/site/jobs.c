/*
 * The site's jobs: admission against its own limits, accepting an offer (or
 * a local submission), starting it in the sandbox, polling it to its end,
 * resuming accepted jobs after a restart, and leaving (`outpost leave`).
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Less room than this left on the work dir's file system counts as a full disk. */
#define SITE_FULL_BELOW_BYTES (64 * 1024)

/* What never changes for a spec on this site: leaving, its class, residency. */
static int admission_fixed(site *s, const jobspec *spec, unsigned own, char *why, size_t why_len)
{
    if (s->leaving) {
        snprintf(why, why_len, "site %s is leaving", s->identity.id);
        return OP_EFULL;
    }
    if (own && !(spec->class_mask & own)) {
        snprintf(why, why_len, "job does not allow site class %s", s->class_name);
        return OP_EPERM;
    }
    if (spec->data_class == DATA_SITE_PRIVATE && strcmp(spec->origin, s->identity.id) != 0) {
        snprintf(why, why_len, "site-private data of %s may not run here", spec->origin);
        return OP_EPERM;
    }
    /* Without its own uid and root, a job could read another's inputs and outputs. */
    if (spec->data_class == DATA_CONFIDENTIAL && spec->kind != JOB_KIND_NOOP &&
        !s->caps.isolation) {
        snprintf(why, why_len, "confidential data needs job isolation, which site %s lacks",
                 s->identity.id);
        return OP_EPERM;
    }
    return OP_OK;
}

/*
 * Whether this site takes spec now, and if not why: OP_EPERM for what will
 * not change (class, residency, the owner's policy), OP_EFULL for what is
 * busy now (leaving, job slots, cores, memory, the power envelope), so that
 * the hub may offer it here again later. The envelope counts the site's idle
 * draw plus its jobs' cores at watts_per_core.
 */
int site__admission(site *s, const jobspec *spec, char *why, size_t why_len)
{
    unsigned own = jobspec_class_bit(s->class_name);
    int rc = admission_fixed(s, spec, own, why, why_len);
    if (rc != OP_OK) return rc;
    if (s->n_jobs >= s->max_jobs || s->n_jobs >= SITE_MAX_RUNNING) {
        snprintf(why, why_len, "site runs its maximum of %lld jobs", (long long)s->max_jobs);
        return OP_EFULL;
    }
    if (s->used_cores + spec->cores > s->cores) {
        snprintf(why, why_len, "needs %d cores, %lld free", spec->cores,
                 (long long)(s->cores - s->used_cores));
        return OP_EFULL;
    }
    if (s->used_memory_mb + spec->memory_mb > s->memory_mb) {
        snprintf(why, why_len, "needs %lld MB, %lld free", (long long)spec->memory_mb,
                 (long long)(s->memory_mb - s->used_memory_mb));
        return OP_EFULL;
    } /* The owner's policy is sovereign: it can only refuse more than the hub's. */
    if (s->policy) {
        char rule[200];
        int verdict =
            policy_check_site(s->policy, spec, s->identity.id, own ? own : CLASS_ALL, os_now_ms(),
                              spec->cores * s->watts_per_core, rule, sizeof rule);
        if (verdict != POLICY_ALLOW) {
            snprintf(why, why_len, "site policy: %.200s", rule);
            return OP_EPERM;
        }
    }
    double draw = s->idle_watts + (s->used_cores + spec->cores) * s->watts_per_core;
    if (draw > s->power_budget_watts + 1e-9) {
        snprintf(why, why_len, "would draw %.0f W over a %.0f W budget", draw,
                 s->power_budget_watts);
        return OP_EFULL;
    }
    return site__artifacts_admit(s, spec, why, why_len); /* its model fits the cache */
}

site_job *site__find_job(site *s, int64_t job_id, int64_t attempt)
{
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i]->job_id == job_id && (attempt == 0 || s->jobs[i]->attempt == attempt))
            return s->jobs[i];
    return NULL;
}

void site__remove_job(site *s, int index)
{
    site_job *j = s->jobs[index];
    s->used_cores -= j->spec.cores;
    s->used_memory_mb -= j->spec.memory_mb;
    sandbox_free(j->run);
    if (j->workdir[0]) os_rm_rf(j->workdir);
    jobspec_clear(&j->spec);
    free(j->local_spec);
    free(j);
    s->jobs[index] = s->jobs[--s->n_jobs];
}

static int write_inputs(site_job *j)
{
    for (int i = 0; i < j->spec.n_inputs; i++) {
        char path[PATH_MAX];
        if (util_fmt(path, sizeof path, "%s/%s", j->workdir, j->spec.inputs[i].name) != OP_OK)
            return OP_ETOOBIG;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return OP_EIO;
        size_t off = 0;
        while (off < j->spec.inputs[i].len) {
            ssize_t n = write(fd, j->spec.inputs[i].data + off, j->spec.inputs[i].len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fd);
                return OP_EIO;
            }
            off += (size_t)n;
        }
        close(fd);
    }
    return OP_OK;
}

/* A fresh work dir for the attempt with its input files. OP_OK, or an error with why set. */
static int prepare_workdir(site *s, site_job *j, char *why, size_t why_len)
{
    if (util_fmt(j->workdir, sizeof j->workdir, "%s/work/%lld-%lld", s->data_dir,
                 (long long)j->job_id, (long long)j->attempt) != OP_OK) {
        snprintf(why, why_len, "work dir path too long");
        return OP_ETOOBIG;
    }
    os_rm_rf(j->workdir);
    if (os_mkdir_p(j->workdir) != OP_OK || write_inputs(j) != OP_OK) {
        if (errno == ENOSPC || errno == EDQUOT) s->store_failed_last_ms = os_mono_ms();
        snprintf(why, why_len, "cannot prepare work dir %.150s: %.60s", j->workdir,
                 strerror(errno));
        return OP_EIO;
    }
    return OP_OK;
}

/* The command line of a route job: this site's own solver, `outpost route`. */
typedef struct route_command {
    char limit[32], seed[32], threads[16], model_sha[65], model_start[24];
    char *argv[28];
} route_command;

static void build_route_command(site *s, site_job *j, route_command *cmd)
{
    int n = 0;
    snprintf(cmd->limit, sizeof cmd->limit, "%g", j->spec.route_time_limit_s);
    snprintf(cmd->seed, sizeof cmd->seed, "%lld", (long long)j->spec.route_seed);
    cmd->argv[n++] = s->route_program;
    cmd->argv[n++] = "route";
    cmd->argv[n++] = j->spec.inputs[0].name;
    if (j->spec.route_iterations > 0) { /* reproducible: no time limit (the wall limit holds) */
        snprintf(cmd->limit, sizeof cmd->limit, "%lld", (long long)j->spec.route_iterations);
        cmd->argv[n++] = "--iterations";
    } else {
        cmd->argv[n++] = "--time-limit";
    }
    cmd->argv[n++] = cmd->limit;
    cmd->argv[n++] = "--seed";
    cmd->argv[n++] = cmd->seed;
    /* the job's CPU share in islands; one with an iteration limit, to stay reproducible */
    snprintf(cmd->threads, sizeof cmd->threads, "%d",
             j->spec.route_iterations > 0 || j->spec.cores < 1 ? 1 : j->spec.cores);
    cmd->argv[n++] = "--threads";
    cmd->argv[n++] = cmd->threads;
    cmd->argv[n++] = "--out";
    cmd->argv[n++] = "solution.json";
    cmd->argv[n++] = "--svg";
    cmd->argv[n++] = "routes.svg";
    cmd->argv[n++] = "--quiet";
    cmd->argv[n++] = "--checkpoint";
    cmd->argv[n++] = j->spec.checkpoint;
    char ckpt_path[PATH_MAX];
    if (util_fmt(ckpt_path, sizeof ckpt_path, "%s/%s", j->workdir, j->spec.checkpoint) == OP_OK &&
        access(ckpt_path, R_OK) == 0) {
        cmd->argv[n++] = "--resume"; /* handed back by a departing site: go on from there */
        cmd->argv[n++] = j->spec.checkpoint;
    }
    site__route_model_args(s, j, cmd->argv, &n, cmd->model_sha, cmd->model_start);
    cmd->argv[n] = NULL;
}

/* The OUTPOST_* variables a job gets: its stay, its checkpoint hints, its model. */
typedef struct job_env {
    char stay[48], every[48], checkpoint[160], model[PATH_MAX + 16];
    const char *extra[SANDBOX_MAX_EXTRA_ENV + 1];
} job_env;

/*
 * Checkpoint hints: a job on a host that will leave (a parked car's stated
 * departure) is told how long it has and to checkpoint more often (a
 * quarter of the stay, 1-30 min).
 */
static void build_job_env(site *s, site_job *j, job_env *e)
{
    int n = 0;
    int64_t every_s = 1800;
    memset(e, 0, sizeof *e);
    if ((s->meter.has & POWER_METER_DEPARTURE) && s->meter.departure_ms > 0) {
        int64_t stay_s = (s->meter.departure_ms - s->departure_lead_ms - os_now_ms()) / 1000;
        if (stay_s < 0) stay_s = 0;
        every_s = stay_s / 4 < 60 ? 60 : stay_s / 4 > 1800 ? 1800 : stay_s / 4;
        snprintf(e->stay, sizeof e->stay, "OUTPOST_STAY_S=%lld", (long long)stay_s);
        e->extra[n++] = e->stay;
    }
    if (j->spec.checkpoint[0]) {
        snprintf(e->checkpoint, sizeof e->checkpoint, "OUTPOST_CHECKPOINT=%s", j->spec.checkpoint);
        snprintf(e->every, sizeof e->every, "OUTPOST_CHECKPOINT_EVERY_S=%lld", (long long)every_s);
        e->extra[n++] = e->checkpoint;
        e->extra[n++] = e->every;
    }
    if (j->model_path[0]) { /* the model, whole and read-only (artifacts.c) */
        snprintf(e->model, sizeof e->model, "OUTPOST_MODEL=%s", j->model_path);
        e->extra[n++] = e->model;
    }
}

/* The lowest job slot no running job holds (admission keeps n_jobs below max_jobs). */
static int free_slot(const site *s)
{
    for (int slot = 0;; slot++) {
        int taken = 0;
        for (int i = 0; i < s->n_jobs && !taken; i++)
            taken = s->jobs[i]->slot == slot;
        if (!taken) return slot;
    }
}

/*
 * Isolation: the slot's uid, the limits that need it, and the route program
 * and the job's model made visible, read-only at their own paths.
 */
static void isolate(site *s, site_job *j, sandbox_spec *spec, const char **ro_paths)
{
    int n = 0;
    if (!s->caps.isolation) return;
    spec->use_isolation = 1;
    spec->use_userns = s->caps.userns;
    spec->job_uid = spec->job_gid = (uint32_t)(s->job_uid_base + j->slot);
    spec->limits.processes = s->job_max_processes;
    spec->limits.disk_bytes = s->job_disk_mb * 1024 * 1024;
    if (j->spec.kind == JOB_KIND_ROUTE || j->spec.kind == JOB_KIND_LEARN)
        ro_paths[n++] = s->route_program;
    if (j->model_path[0]) ro_paths[n++] = j->model_path;
    if (n) spec->ro_paths = ro_paths;
}

/* Starts an exec or route job in the sandbox. OP_OK, or an error with why set. */
static int start_in_sandbox(site *s, site_job *j, char *why, size_t why_len)
{
    char name[64];
    const char *ro_paths[3] = {NULL, NULL, NULL};
    snprintf(name, sizeof name, "job-%lld-%lld", (long long)j->job_id, (long long)j->attempt);
    route_command route = {0};
    learn_command learn = {0};
    job_env env;
    char **argv = j->spec.argv;
    if (j->spec.kind == JOB_KIND_ROUTE) {
        build_route_command(s, j, &route);
        argv = route.argv;
    } else if (j->spec.kind == JOB_KIND_LEARN) {
        int rc = site__learn_prepare(s, j, &learn, why, why_len);
        if (rc != OP_OK) return rc;
        argv = learn.argv;
    }
    build_job_env(s, j, &env);
    sandbox_spec spec = {
        .extra_env = env.extra,
        .workdir = j->workdir,
        .argv = argv,
        .limits = {.cpu_seconds = j->spec.cpu_s,
                   .memory_bytes = j->spec.memory_mb * 1024 * 1024,
                   .open_files = j->spec.open_files,
                   .output_bytes = j->spec.output_bytes,
                   .wall_ms = j->spec.wall_s * 1000,
                   .cpu_cores = j->spec.cores},
        .cgroup_dir = s->caps.cgroup ? s->cgroup_dir : NULL,
        .job_name = name,
        .use_netns = s->caps.netns,
        .use_seccomp = s->caps.seccomp,
    };
    isolate(s, j, &spec, ro_paths);
    int rc = sandbox_start(&spec, &j->run);
    if (rc != OP_OK) {
        snprintf(why, why_len, "sandbox could not start the job: %s", op_strerror(rc));
        return rc;
    }
    j->started_mono = os_mono_ms();
    return OP_OK;
}

/*
 * Starts an accepted job: one whose model is not here yet waits for it
 * (artifacts.c starts it when it is); a no-op finishes at once; anything
 * else runs in the sandbox. Returns OP_OK, or an error after handing the
 * job back (a retryable failure for the hub).
 */
int site__start_job(site *s, site_job *j)
{
    char why[256] = "";
    if (j->spec.model[0] && !j->model_path[0] &&
        (j->spec.kind != JOB_KIND_LEARN || j->spec.learn_from[0])) {
        int ready = site__artifacts_prepare(s, j, why, sizeof why);
        if (ready < 0) {
            site__hand_back(s, j, why, NULL);
            log_error("site", "job %lld: %s", (long long)j->job_id, why);
            return ready;
        }
        if (!ready) return OP_OK;
    }
    if (j->spec.kind == JOB_KIND_NOOP) {
        cJSON *r = site__new_result(s, j);
        if (!r) return OP_ENOMEM;
        jsonx_add_int(r, "exit_code", 0);
        cJSON_AddNumberToObject(r, "cpu_seconds", 0);
        cJSON_AddNumberToObject(r, "energy_joules", 0);
        site__record_result(s, j, r);
        return OP_OK;
    }
    int rc = prepare_workdir(s, j, why, sizeof why);
    if (rc == OP_OK) rc = start_in_sandbox(s, j, why, sizeof why);
    if (rc != OP_OK) {
        site__hand_back(s, j, why, NULL);
        log_error("site", "job %lld: %s", (long long)j->job_id, why);
    }
    return rc;
}

/*
 * Records a newly accepted attempt: the hub's sequence number (after a
 * restart only newer hub messages are accepted, msg_window_restore, at no
 * extra write), the attempt with its spec, and its lease. OP_OK, or OP_ESTORE
 * when the attempt could not be recorded (it is then not run).
 */
static int record_accepted(site *s, int64_t job_id, int64_t attempt, const cJSON *spec_json,
                           int64_t lease_ms)
{
    char top[24];
    snprintf(top, sizeof top, "%llu", (unsigned long long)s->hub_window.top);
    if (site__ensure_tx(s) != OP_OK || sitedb_meta_set(s->db, "hub_seq", top) != OP_OK)
        s->store_failed = 1;
    site__store_own_seq(s);
    char *text = cJSON_PrintUnformatted(spec_json);
    int rc = text && site__ensure_tx(s) == OP_OK
                 ? sitedb_job_accept(s->db, job_id, attempt, text, os_now_ms())
                 : OP_ESTORE;
    free(text);
    if (rc == OP_OK && lease_ms > 0 &&
        (site__ensure_tx(s) != OP_OK ||
         sitedb_lease_set(s->db, job_id, attempt, lease_ms) != OP_OK))
        s->store_failed = 1;
    if (rc != OP_OK) s->store_failed = 1;
    return rc;
}

/* Refuses an offer: "busy" (capacity, power now) is transient, the hub may offer it here again. */
static void refuse(site *s, int64_t job_id, int64_t attempt, int rc, const char *why)
{
    log_info("site", "refused job %lld attempt %lld: %s", (long long)job_id, (long long)attempt,
             why);
    site__add_event(s, job_id, attempt, rc == OP_EFULL ? "busy" : "refused", why);
    site__audit_job(s, "refused", job_id, attempt, why);
}

/*
 * Takes an offered attempt (or a local one, job_id < 0): admitted, recorded,
 * counted against the site's cores and memory, and started. from_store: an
 * attempt accepted before a restart, neither admitted nor recorded again.
 */
void site__accept_job(site *s, int64_t job_id, int64_t attempt, const cJSON *spec_json,
                      int from_store, int64_t lease_ms)
{
    char why[300];
    site_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->job_id = job_id;
    j->attempt = attempt;
    int rc = jobspec_from_json(spec_json, &j->spec, why, sizeof why);
    if (rc == OP_OK && !from_store) rc = site__admission(s, &j->spec, why, sizeof why);
    if (rc != OP_OK) refuse(s, job_id, attempt, rc, why);
    if (rc == OP_OK && !from_store) rc = record_accepted(s, job_id, attempt, spec_json, lease_ms);
    if (rc != OP_OK) {
        jobspec_clear(&j->spec);
        free(j);
        return;
    }
    if (job_id < 0) j->local_spec = cJSON_PrintUnformatted(spec_json);
    j->lease_ms = lease_ms;
    j->slot = free_slot(s);
    s->jobs[s->n_jobs++] = j;
    s->used_cores += j->spec.cores;
    s->used_memory_mb += j->spec.memory_mb;
    site__add_event(s, job_id, attempt, "started", NULL);
    if (!from_store)
        site__audit_job(s, "accepted", job_id, attempt, jobspec_kind_name(j->spec.kind));
    log_info("site", "job %lld attempt %lld accepted (%s, %d cores)", (long long)job_id,
             (long long)attempt, jobspec_kind_name(j->spec.kind), j->spec.cores);
    site__start_job(s, j);
}

/* A running job's grace period after SIGTERM is over: SIGKILL, once. */
static void kill_after_grace(site_job *j)
{
    if (j->departing_until && os_mono_ms() > j->departing_until) {
        sandbox_signal(j->run, SIGKILL);
        j->departing_until = INT64_MAX;
    }
}

/*
 * A job that failed while its work dir's disk had no room left most likely
 * failed for want of it (its stdout and stderr are files there): the site's
 * fault, not the job's, so it is handed back to run again instead of failing
 * for good. A job over its own limits (wall time, disk quota) failed by itself.
 */
static int failed_for_want_of_space(site *s, const site_job *j, const sandbox_result *res)
{
    struct statvfs st;
    if ((res->exit_code == 0 && res->term_signal == 0) || res->killed_wall || res->killed_quota)
        return 0;
    if (statvfs(j->workdir, &st) != 0 ||
        (uint64_t)st.f_bavail * st.f_frsize >= SITE_FULL_BELOW_BYTES)
        return 0;
    s->store_failed_last_ms = os_mono_ms(); /* the hub shows this site as no-store */
    log_warn("site", "job %lld attempt %lld failed while the disk was full: handed back",
             (long long)j->job_id, (long long)j->attempt);
    return 1;
}

/*
 * Reaps finished jobs: a departing one (leaving, shed) is handed back with
 * its checkpoint, a cancelled one leaves no result, any other gets its
 * result. Jobs that never ran (no-op, failed start) already have theirs.
 */
void site__poll_jobs(site *s)
{
    for (int i = 0; i < s->n_jobs;) {
        site_job *j = s->jobs[i];
        if (!j->run && j->fetching && !j->cancelled) { /* waits for its model */
            i++;
            continue;
        }
        if (!j->run) {
            site__remove_job(s, i);
            continue;
        }
        sandbox_result res;
        memset(&res, 0, sizeof res);
        int rc = sandbox_poll(j->run, &res);
        if (rc == 0) {
            kill_after_grace(j);
            i++;
            continue;
        }
        if (rc == 1 && !j->cancelled && j->departing_until)
            site__departure_result(s, j);
        else if (rc == 1 && !j->cancelled && failed_for_want_of_space(s, j, &res))
            site__hand_back(s, j, "the site's disk was full while the job ran", NULL);
        else if (rc == 1 && !j->cancelled)
            site__finish_exec(s, j, &res);
        if (rc < 0)
            log_error("site", "job %lld: sandbox poll failed: %s", (long long)j->job_id,
                      op_strerror(rc));
        sandbox_result_clear(&res);
        site__remove_job(s, i);
    }
}

/* An attempt accepted before a restart: started again, or handed back if its lease ran out. */
static void resume_one(site *s, const sitedb_job_row *row)
{
    cJSON *spec = cJSON_Parse(row->spec);
    int64_t silent = os_now_ms() - s->last_contact_ms;
    if (spec && row->lease_ms > 0 && silent > row->lease_ms) {
        /* Cold start after the lease ran out: the hub has surely placed it again. */
        site_job tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.job_id = row->job_id;
        tmp.attempt = row->attempt;
        if (jobspec_from_json(spec, &tmp.spec, NULL, 0) == OP_OK) {
            site__lease_expired(s, &tmp, silent);
            jobspec_clear(&tmp.spec);
        }
    } else if (spec) {
        log_info("site", "resuming job %lld attempt %lld accepted before restart",
                 (long long)row->job_id, (long long)row->attempt);
        site__accept_job(s, row->job_id, row->attempt, spec, 1, row->lease_ms);
    }
    cJSON_Delete(spec);
}

/*
 * Jobs accepted before a restart are started again from their stored spec.
 * The list is read whole first: starting a job writes to the store.
 */
void site__resume_jobs(site *s)
{
    sitedb_job_row rows[SITE_MAX_RUNNING];
    int n = 0;
    if (sitedb_unfinished_jobs(s->db, rows, SITE_MAX_RUNNING, &n) != OP_OK) return;
    for (int i = 0; i < n; i++) {
        resume_one(s, &rows[i]);
        free(rows[i].spec);
    }
    /* Their "started" events are informational; the heartbeat renews their leases. */
    cJSON_Delete(s->events);
    s->events = NULL;
}

/* The owner unplugs: refuse new work, ask running jobs to stop, exit once handed back. */
int site__start_leaving(site *s, int64_t grace_ms)
{
    int n = 0;
    s->leaving = 1;
    s->leave_deadline_ms = os_mono_ms() + grace_ms + 30000;
    for (int i = 0; i < s->n_jobs; i++) {
        site_job *j = s->jobs[i];
        if (j->fetching && !j->cancelled) { /* never started: handed back as it is */
            site__hand_back(s, j, "the site is leaving", NULL);
            continue;
        }
        if (!j->run || j->cancelled || j->departing_until) continue;
        j->departing_until = os_mono_ms() + grace_ms;
        sandbox_signal(j->run, SIGTERM);
        n++;
    }
    log_info("site", "leaving: %d running job(s) asked to stop (grace %lld ms)", n,
             (long long)grace_ms);
    site__audit_job(s, "leaving", 0, 0, "the owner unplugs");
    return n;
}
