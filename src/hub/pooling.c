/*
 * pooling: what the hub does with what sites learn. A site's learn job
 * that adopted a model says so in its result ("learn": the verdict, the
 * metrics, the lineage, the hash, and the bytes only when every row the
 * model learned from may leave the site). The hub checks that the result is
 * the answer of a learn job of that model at its origin, then registers the
 * model as the next version of its name, created by the site, with the
 * site as its origin and the lineage as sent: signed like any version,
 * audited as "model-put" (so `outpost audit prove` proves it), and shown by
 * `outpost model show`. A site-private model's version is a record only:
 * its bytes stay at the site, so no job elsewhere can be given it.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/artifact.h"
#include "hub/hub_db.h"
#include "hub/hub_int.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_MAX_MODEL_BYTES (4 * 1024 * 1024) /* what a result may carry */

/* A pool's versions all come from sites of one owner: the latest one's origin is s's. */
static int same_owner_pool(hub *h, const hub_site *s, const char *name)
{
    hubdb_model latest = {0};
    int rc = hubdb_model_get(h->db, name, 0, &latest);
    const hub_site *origin = rc == OP_OK ? hub__find_site(h, latest.origin) : NULL;
    int ok = rc == OP_ENOTFOUND || (origin && strcmp(origin->owner, s->owner) == 0);
    hubdb_model_clear(&latest);
    return ok;
}

/* The job was a learn job of model name whose origin is site. */
int hub__is_learn_job_of(hub *h, int64_t job_id, const char *site_id, const char *name)
{
    char kind[16] = "", *text = NULL;
    if (hubdb_job_spec(h->db, job_id, kind, &text) != OP_OK) return 0;
    cJSON *spec = cJSON_Parse(text);
    free(text);
    int ok = strcmp(kind, "learn") == 0 && spec && name &&
             strcmp(jsonx_str(spec, "model") ? jsonx_str(spec, "model") : "", name) == 0 &&
             strcmp(jsonx_str(spec, "origin") ? jsonx_str(spec, "origin") : "", site_id) == 0;
    cJSON_Delete(spec);
    return ok;
}

/*
 * The bytes a site sent for a model that may leave it: checked against
 * their hash, written to the hub's model store with their manifest, as an
 * upload would. OP_OK, OP_ESIG (not the bytes named), OP_EINVAL, OP_EIO.
 */
static int keep_bytes(hub *h, const char *sha, const char *b64)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    char hex[65], path[PATH_MAX];
    if (hubdb_artifact_get(h->db, sha, NULL, NULL, NULL) == OP_OK) return OP_OK;
    if (util_b64_decode(b64, POOL_MAX_MODEL_BYTES, &bytes, &len) != OP_OK || len == 0)
        return OP_EINVAL;
    util_sha256_hex(bytes, len, hex);
    int rc = strcmp(hex, sha) == 0 ? OP_OK : OP_ESIG;
    int64_t n = ((int64_t)len + ARTIFACT_CHUNK_BYTES - 1) / ARTIFACT_CHUNK_BYTES;
    uint8_t(*chunk_sha)[32] = rc == OP_OK ? calloc((size_t)n, 32) : NULL;
    if (rc == OP_OK && !chunk_sha) rc = OP_ENOMEM;
    for (int64_t i = 0; rc == OP_OK && i < n; i++) {
        size_t at = (size_t)i * ARTIFACT_CHUNK_BYTES;
        crypto_hash_sha256(chunk_sha[i], bytes + at,
                           len - at < ARTIFACT_CHUNK_BYTES ? len - at : ARTIFACT_CHUNK_BYTES);
    }
    uint8_t whole[32];
    crypto_hash_sha256(whole, bytes, len);
    artifact_manifest m = {0};
    char *text = NULL, sig[129];
    if (rc == OP_OK)
        rc = artifact_manifest_make(whole, (int64_t)len, ARTIFACT_CHUNK_BYTES,
                                    (const uint8_t(*)[32])chunk_sha, &m);
    if (rc == OP_OK && !(text = artifact_manifest_text(&m))) rc = OP_ENOMEM;
    if (rc == OP_OK && hub__artifact_path(h, sha, "", path, sizeof path, 1) != OP_OK) rc = OP_EIO;
    if (rc == OP_OK && os_write_file_atomic(path, bytes, len, 0644) != OP_OK) rc = OP_EIO;
    if (rc == OP_OK) {
        artifact_sign(&h->identity, ARTIFACT_MANIFEST_DOMAIN, text, sig);
        rc = hub__check(h, hubdb_artifact_add(h->db, sha, (int64_t)len, text, sig, os_now_ms()));
    }
    free(text);
    artifact_manifest_clear(&m);
    free(chunk_sha);
    free(bytes);
    return rc;
}

/* The audit entry of a learned version: what model-put entries carry, and the metrics. */
static cJSON *learned_audit(const artifact_record *r, const char *sig, const cJSON *learn,
                            int64_t job_id)
{
    cJSON *a = hub__model_put_audit(r, sig);
    if (!a) return NULL;
    jsonx_add_int(a, "learn_job", job_id);
    double v = 0;
    if (jsonx_num(learn, "challenger_mae", &v) == OP_OK) cJSON_AddNumberToObject(a, "mae", v);
    if (jsonx_num(learn, "incumbent_mae", &v) == OP_OK)
        cJSON_AddNumberToObject(a, "incumbent_mae", v);
    return a;
}

/* The record's fields from the result's "learn". OP_OK or OP_EINVAL (why set). */
static int learned_record(hub *h, hub_site *s, const cJSON *learn, artifact_record *r, char *why,
                          size_t why_len)
{
    const char *name = jsonx_str(learn, "model"), *sha = jsonx_str(learn, "sha256");
    const char *dc = jsonx_str(learn, "data_class");
    cJSON *lineage = cJSON_GetObjectItemCaseSensitive(learn, "lineage");
    memset(r, 0, sizeof *r);
    r->data_class = !dc                               ? -1
                    : strcmp(dc, "public") == 0       ? DATA_PUBLIC
                    : strcmp(dc, "confidential") == 0 ? DATA_CONFIDENTIAL
                    : strcmp(dc, "site-private") == 0 ? DATA_SITE_PRIVATE
                                                      : -1;
    if (!artifact_valid_name(name) || !artifact_sha_ok(sha) || r->data_class < 0 ||
        jsonx_int(learn, "size", 1, POOL_MAX_MODEL_BYTES, &r->size_bytes) != OP_OK ||
        (lineage && artifact_lineage_check(lineage, why, why_len) != OP_OK) ||
        (lineage &&
         strcmp(jsonx_str(lineage, "site") ? jsonx_str(lineage, "site") : "", s->id) != 0)) {
        if (!why[0]) snprintf(why, why_len, "learn: a model, sha256, size and data class");
        return OP_EINVAL;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->sha256_hex, sizeof r->sha256_hex, "%s", sha);
    snprintf(r->origin, sizeof r->origin, "%s", s->id);
    snprintf(r->created_by, sizeof r->created_by, "%s", s->id);
    r->lineage = lineage;
    return OP_OK;
}

/* Signs and stores the version r (its number, parent and time set here), audited. */
static int put_version(hub *h, artifact_record *r, const cJSON *learn, int64_t job_id)
{
    hubdb_model latest = {0};
    if (hubdb_model_get(h->db, r->name, 0, &latest) == OP_OK) r->parent = latest.version;
    hubdb_model_clear(&latest);
    int rc = hub__check(h, hubdb_model_next_version(h->db, r->name, &r->version));
    if (rc != OP_OK) return rc;
    r->created_at_ms = os_now_ms();
    char *text = artifact_record_text(r), sig[129], subject[80];
    if (!text) return OP_ENOMEM;
    artifact_sign(&h->identity, ARTIFACT_RECORD_DOMAIN, text, sig);
    hubdb_model row = {.version = r->version,
                       .size_bytes = r->size_bytes,
                       .data_class = r->data_class,
                       .created_at_ms = r->created_at_ms,
                       .record = text,
                       .sig = sig};
    snprintf(row.name, sizeof row.name, "%s", r->name);
    snprintf(row.sha256, sizeof row.sha256, "%s", r->sha256_hex);
    snprintf(row.origin, sizeof row.origin, "%s", r->origin);
    rc = hub__check(h, hubdb_model_insert(h->db, &row));
    if (rc == OP_OK) {
        snprintf(subject, sizeof subject, "model:%s", r->name);
        hub__audit_record(h, "model-put", subject, learned_audit(r, sig, learn, job_id));
        log_info("hub", "site %s learned model %s: version %lld (%s, %s)", r->origin, r->name,
                 (long long)r->version, r->sha256_hex, jobspec_data_class_name(r->data_class));
    }
    free(text);
    return rc;
}

/* The model of a learn result registered when it should be; *version the one made, or 0. */
static int register_learned(hub *h, hub_site *s, const cJSON *learn, int64_t job_id,
                            int64_t *version)
{
    const char *verdict = jsonx_str(learn, "verdict");
    if (!verdict || (strcmp(verdict, "adopted") && strcmp(verdict, "visited"))) return OP_OK;
    char why[256] = "";
    artifact_record r;
    if (!hub__is_learn_job_of(h, job_id, s->id, jsonx_str(learn, "model"))) {
        log_warn("hub", "site %s: job %lld is not its learn job of that model: model ignored",
                 s->id, (long long)job_id);
        return OP_OK;
    }
    if (learned_record(h, s, learn, &r, why, sizeof why) != OP_OK) {
        log_warn("hub", "site %s: learn job %lld: %s: model ignored", s->id, (long long)job_id,
                 why);
        return OP_OK;
    }
    if (!strcmp(verdict, "visited") && !same_owner_pool(h, s, r.name)) {
        log_warn("hub", "site %s: learn job %lld visited %s, a pool of another owner: ignored",
                 s->id, (long long)job_id, r.name);
        return OP_OK;
    }
    const char *b64 = jsonx_str(learn, "model_b64");
    int held = hubdb_artifact_get(h->db, r.sha256_hex, NULL, NULL, NULL) == OP_OK;
    if (r.data_class != DATA_SITE_PRIVATE && held) {
        /* an offered pooled model the site adopted: the hub has its bytes already */
    } else if (r.data_class != DATA_SITE_PRIVATE && b64) {
        int rc = keep_bytes(h, r.sha256_hex, b64);
        if (rc == OP_ESTORE) return rc;
        if (rc != OP_OK) {
            log_warn("hub",
                     "site %s: learn job %lld: the model's bytes: %s: kept as a record"
                     " only, site-private",
                     s->id, (long long)job_id, op_strerror(rc));
            r.data_class = DATA_SITE_PRIVATE;
        }
    } else {
        r.data_class = DATA_SITE_PRIVATE; /* no bytes here: only its origin can use it */
    }
    int rc = put_version(h, &r, learn, job_id);
    if (rc == OP_OK) *version = r.version;
    return rc;
}

int hub__pooling_learned(hub *h, hub_site *s, const cJSON *item, int64_t job_id)
{
    const cJSON *learn = cJSON_GetObjectItemCaseSensitive(item, "learn");
    const char *verdict = jsonx_str(learn, "verdict");
    if (verdict && !strcmp(verdict, "rolled-back"))
        return hub__rollback_learned(h, s, learn, job_id);
    int64_t version = 0;
    int rc = register_learned(h, s, learn, job_id, &version);
    return rc == OP_OK && learn ? hub__pool_result(h, learn, job_id, version) : rc;
}
