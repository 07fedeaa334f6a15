/*
 * The site's results: what a finished attempt reports (exit, usage, energy
 * and its receipt, captured stdout/stderr, output files), a job handed back
 * unfinished (with its checkpoint when it left one), and the outbox entry
 * that keeps each until the hub acknowledges it.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A file of the job's work dir, at most cap bytes (*too_big when larger).
 * NULL when it is missing, not a regular file, a link, or unreadable.
 */
char *site__read_output_file(const char *dir, const char *name, size_t cap, size_t *len,
                             int *too_big)
{
    char path[PATH_MAX];
    *too_big = 0;
    if (util_fmt(path, sizeof path, "%s/%s", dir, name) != OP_OK) return NULL;
    /* The job controls its work dir: never follow a link it planted. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto out;
    if ((size_t)st.st_size > cap) {
        *too_big = 1;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) goto out;
    ssize_t n = read(fd, buf, (size_t)st.st_size);
    if (n != st.st_size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = (size_t)n;
out:
    close(fd);
    return buf;
}

static void add_text(cJSON *r, const char *key, const char *text, size_t len, int truncated)
{
    char trunc_key[40];
    size_t n = len > SITE_MAX_STD_CAPTURE ? SITE_MAX_STD_CAPTURE : len;
    char *copy = malloc(n + 1);
    if (!copy) return;
    memcpy(copy, text ? text : "", text ? n : 0);
    copy[text ? n : 0] = '\0';
    /* cJSON escapes control bytes; invalid UTF-8 passes through as bytes. */
    cJSON_AddStringToObject(r, key, copy);
    free(copy);
    snprintf(trunc_key, sizeof trunc_key, "%s_truncated", key);
    cJSON_AddBoolToObject(r, trunc_key, truncated || len > n);
}

/* A local job travels with its spec: the hub records it when it hears of it. Takes result. */
static cJSON *wrap_local(site_job *j, cJSON *result)
{
    cJSON *item = cJSON_CreateObject();
    cJSON *spec = j->local_spec ? cJSON_Parse(j->local_spec) : NULL;
    if (!item || !spec) {
        cJSON_Delete(item);
        cJSON_Delete(spec);
        cJSON_Delete(result);
        return NULL;
    }
    jsonx_add_int(item, "local_id", -j->job_id);
    cJSON_AddItemToObject(item, "spec", spec);
    cJSON_AddItemToObject(item, "result", result);
    return item;
}

/*
 * Stores a result in the outbox (in the loop's transaction) and queues it to
 * be sent after the commit. Takes result.
 */
void site__record_result(site *s, site_job *j, cJSON *result)
{
    if (j->job_id < 0 && !(result = wrap_local(j, result))) {
        s->store_failed = 1;
        return;
    }
    char *text = cJSON_PrintUnformatted(result);
    if (!text || site__ensure_tx(s) != OP_OK) {
        free(text);
        cJSON_Delete(result);
        s->store_failed = 1;
        return;
    }
    if (sitedb_result_store(s->db, j->job_id, j->attempt, text, os_now_ms()) != OP_OK)
        s->store_failed = 1;
    free(text);
    cJSON **queue = j->job_id < 0 ? &s->locals : &s->results;
    if (!*queue) *queue = cJSON_CreateArray();
    int64_t exit_code = -1;
    const cJSON *inner =
        j->job_id < 0 ? cJSON_GetObjectItemCaseSensitive(result, "result") : result;
    jsonx_int(inner, "exit_code", -1, 255, &exit_code);
    if (*queue)
        cJSON_AddItemToArray(*queue, result);
    else
        cJSON_Delete(result);
    s->jobs_run++;
    char detail[64];
    snprintf(detail, sizeof detail, "exit code %lld", (long long)exit_code);
    site__audit_job(s, "result", j->job_id, j->attempt, detail);
}

cJSON *site__new_result(site *s, site_job *j)
{
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    jsonx_add_int(r, "job", j->job_id);
    jsonx_add_int(r, "attempt", j->attempt);
    cJSON_AddStringToObject(r, "site", s->identity.id);
    cJSON_AddStringToObject(r, "kind", jobspec_kind_name(j->spec.kind));
    return r;
}

/* One output file as {name, sha256, size, data_b64}; NULL when it cannot be encoded. Takes data. */
static cJSON *encode_output(const char *name, char *data, size_t len)
{
    char hash[65];
    util_sha256_hex(data, len, hash);
    char *b64 = util_b64_encode(data, len);
    free(data);
    cJSON *o = cJSON_CreateObject();
    if (!o || !b64) {
        cJSON_Delete(o);
        free(b64);
        return NULL;
    }
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "sha256", hash);
    jsonx_add_int(o, "size", (int64_t)len);
    cJSON_AddStringToObject(o, "data_b64", b64);
    free(b64);
    return o;
}

/*
 * The spec's output files, within one budget for all of them (the job's
 * output_bytes, at most SITE_MAX_OUTPUT_TOTAL); what is missing or too big
 * is named in missing_outputs.
 */
static void add_outputs(site_job *j, cJSON *r)
{
    cJSON *outputs = cJSON_AddArrayToObject(r, "outputs");
    cJSON *missing = cJSON_AddArrayToObject(r, "missing_outputs");
    size_t budget = (size_t)j->spec.output_bytes < SITE_MAX_OUTPUT_TOTAL
                        ? (size_t)j->spec.output_bytes
                        : SITE_MAX_OUTPUT_TOTAL;
    for (int i = 0; outputs && missing && i < j->spec.n_outputs; i++) {
        size_t len = 0;
        int too_big = 0;
        char *data = site__read_output_file(j->workdir, j->spec.outputs[i], budget, &len, &too_big);
        if (!data) {
            cJSON_AddItemToArray(missing, cJSON_CreateString(j->spec.outputs[i]));
            if (too_big)
                log_info("site", "job %lld: output %s exceeds its size limit", (long long)j->job_id,
                         j->spec.outputs[i]);
            continue;
        }
        budget -= len;
        cJSON *o = encode_output(j->spec.outputs[i], data, len);
        if (o) cJSON_AddItemToArray(outputs, o);
    }
}

/* The result of a job that ran to its end in the sandbox. */
void site__finish_exec(site *s, site_job *j, sandbox_result *res)
{
    cJSON *r = site__new_result(s, j);
    if (!r) return;
    jsonx_add_int(r, "exit_code", res->exit_code);
    jsonx_add_int(r, "term_signal", res->term_signal);
    cJSON_AddBoolToObject(r, "killed_wall", res->killed_wall);
    if (res->killed_quota) /* wrote more than job_disk_mb */
        cJSON_AddBoolToObject(r, "killed_quota", 1);
    cJSON_AddNumberToObject(r, "cpu_seconds", res->cpu_seconds);
    jsonx_add_int(r, "peak_rss_bytes", res->peak_rss_bytes);
    jsonx_add_int(r, "wall_ms", res->wall_ms);
    /* Energy estimate: busy core-seconds at this site's watts per core. */
    cJSON_AddNumberToObject(r, "energy_joules", res->cpu_seconds * s->watts_per_core);
    site__add_receipt(s, j, r, res->cpu_seconds * s->watts_per_core);
    add_text(r, "stdout", res->stdout_text, res->stdout_len, res->stdout_truncated);
    add_text(r, "stderr", res->stderr_text, res->stderr_len, res->stderr_truncated);
    if (res->error[0]) cJSON_AddStringToObject(r, "error", res->error);
    add_outputs(j, r);
    if (j->route_model_note[0]) /* which model the plan's travel times came from */
        cJSON_AddStringToObject(r, "route_model", j->route_model_note);
    if (res->exit_code == 0 && !res->term_signal && j->spec.kind == JOB_KIND_LEARN)
        site__learn_finish(s, j, r);
    log_info("site", "job %lld attempt %lld finished: exit %d, %.2f CPU s, %lld KiB peak",
             (long long)j->job_id, (long long)j->attempt, res->exit_code, res->cpu_seconds,
             (long long)(res->peak_rss_bytes / 1024));
    site__record_result(s, j, r);
}

/*
 * A job this site gives back unfinished (could not start it, lease ran out,
 * leaving, over its power envelope): a retryable result with the reason and,
 * when given, the checkpoint (taken). The hub places it again elsewhere.
 */
void site__hand_back(site *s, site_job *j, const char *why, cJSON *checkpoint)
{
    j->fetching = 0; /* a job waiting for its model waits no more */
    cJSON *r = site__new_result(s, j);
    if (!r) {
        cJSON_Delete(checkpoint);
        return;
    }
    jsonx_add_int(r, "exit_code", -1);
    cJSON_AddStringToObject(r, "error", why);
    cJSON_AddStringToObject(r, "retryable", "site");
    if (checkpoint) cJSON_AddItemToObject(r, "checkpoint", checkpoint);
    site__record_result(s, j, r);
}

/* The job's checkpoint file as {name, sha256, data_b64}, or NULL (none, too big: *too_big). */
static cJSON *read_checkpoint(site_job *j, int *too_big)
{
    size_t len = 0;
    *too_big = 0;
    char *data = j->spec.checkpoint[0] ? site__read_output_file(j->workdir, j->spec.checkpoint,
                                                                SITE_MAX_CHECKPOINT, &len, too_big)
                                       : NULL;
    char *b64 = data ? util_b64_encode((const uint8_t *)data, len) : NULL;
    cJSON *ck = b64 ? cJSON_CreateObject() : NULL;
    if (ck) {
        char hash[65];
        util_sha256_hex(data, len, hash);
        cJSON_AddStringToObject(ck, "name", j->spec.checkpoint);
        cJSON_AddStringToObject(ck, "sha256", hash);
        cJSON_AddStringToObject(ck, "data_b64", b64);
    }
    free(data);
    free(b64);
    return ck;
}

/*
 * A job stopped because the site leaves or sheds it: handed back (retryable)
 * with its checkpoint file when it wrote one, so that it resumes elsewhere
 * from there.
 */
void site__departure_result(site *s, site_job *j)
{
    int too_big = 0;
    cJSON *ck = read_checkpoint(j, &too_big);
    char why[200];
    snprintf(why, sizeof why, "%s %s; %s", s->identity.id,
             j->shed ? "shed it: its power envelope dropped below its draw"
                     : "left (its owner unplugged)",
             ck        ? "resumes elsewhere from its checkpoint"
             : too_big ? "its checkpoint was too big to hand back: starts again elsewhere"
                       : "no checkpoint: starts again elsewhere");
    log_info("site", "job %lld attempt %lld handed back: %s", (long long)j->job_id,
             (long long)j->attempt, why);
    site__hand_back(s, j, why, ck);
}
