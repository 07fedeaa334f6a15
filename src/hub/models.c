/*
 * models: the model registry at the hub (docs/models.md). An operator
 * uploads an artifact's bytes in pieces (model_upload, in order, hashed as
 * they come), then names them as a new version of a model (model_put): a
 * record signed by the hub, in the audit log. The bytes live in
 * <data-dir>/models/<sha256>, content-addressed, written whole before they
 * are renamed there; hub.db keeps the records and each artifact's signed
 * manifest (core/artifact). A job that names a model gets it resolved at
 * submission: the version, the artifact's hash and size written into its
 * spec, refused where the model's data class does not let the job use it.
 * How artifacts reach sites is models_serve.c.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/os.h"
#include "base/util.h"
#include "core/artifact.h"
#include "core/jobstate.h"
#include "hub/hub_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODELS_MAX_UPLOADS 4
#define MODELS_UPLOAD_IDLE_MS (10 * 60 * 1000) /* an upload silent this long may be replaced */
#define MODELS_MAX_PIECE_BYTES (4 * 1024 * 1024)
#define MODELS_LIST_MAX 1000

/* An upload in progress: the next byte expected and the hashes so far. */
typedef struct upload {
    int used;
    char sha[65];
    int64_t size_bytes, next_offset;
    crypto_hash_sha256_state whole;
    uint8_t (*chunk_sha)[32];
    int64_t touched_mono;
} upload;

struct hub_models {
    upload uploads[MODELS_MAX_UPLOADS];
    uint64_t uploads_done;
};

static struct hub_models *state(hub *h)
{
    if (!h->models) h->models = calloc(1, sizeof *h->models);
    return h->models;
}

static void upload_drop(upload *u)
{
    free(u->chunk_sha);
    memset(u, 0, sizeof *u);
}

void hub__models_free(hub *h)
{
    hub__serving_free(h);
    if (!h->models) return;
    for (int i = 0; i < MODELS_MAX_UPLOADS; i++)
        upload_drop(&h->models->uploads[i]);
    free(h->models);
    h->models = NULL;
}

int hub__artifact_path(hub *h, const char *sha, const char *suffix, char *path, size_t len,
                       int make_dir)
{
    char dir[PATH_MAX];
    if (!h->data_dir[0]) return OP_EINVAL; /* a hub without a data dir (fuzzing) keeps none */
    if (util_fmt(dir, sizeof dir, "%s/models", h->data_dir) != OP_OK) return OP_ETOOBIG;
    if (make_dir && os_mkdir_p(dir) != OP_OK) return OP_EIO;
    return util_fmt(path, len, "%s/%s%s", dir, sha, suffix);
}

/* ---------- uploads ---------- */

static upload *find_upload(struct hub_models *m, const char *sha)
{
    for (int i = 0; i < MODELS_MAX_UPLOADS; i++)
        if (m->uploads[i].used && strcmp(m->uploads[i].sha, sha) == 0) return &m->uploads[i];
    return NULL;
}

/* A slot for a new upload: a free one, or the one idle longest past MODELS_UPLOAD_IDLE_MS. */
static upload *new_upload(struct hub_models *m, const char *sha, int64_t size)
{
    upload *slot = NULL;
    int64_t now = os_mono_ms();
    for (int i = 0; i < MODELS_MAX_UPLOADS && !slot; i++)
        if (!m->uploads[i].used) slot = &m->uploads[i];
    for (int i = 0; i < MODELS_MAX_UPLOADS && !slot; i++)
        if (now - m->uploads[i].touched_mono > MODELS_UPLOAD_IDLE_MS) slot = &m->uploads[i];
    if (!slot) return NULL;
    upload_drop(slot);
    int64_t n = (size + ARTIFACT_CHUNK_BYTES - 1) / ARTIFACT_CHUNK_BYTES;
    slot->chunk_sha = malloc((size_t)n * 32);
    if (!slot->chunk_sha) return NULL;
    slot->used = 1;
    snprintf(slot->sha, sizeof slot->sha, "%s", sha);
    slot->size_bytes = size;
    crypto_hash_sha256_init(&slot->whole);
    slot->touched_mono = now;
    return slot;
}

/* The piece's bytes into the upload's file at its offset. OP_OK, OP_EIO. */
static int write_piece(hub *h, const upload *u, int64_t offset, const uint8_t *data, size_t len)
{
    char path[PATH_MAX];
    if (hub__artifact_path(h, u->sha, ".upload", path, sizeof path, 1) != OP_OK) return OP_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0), 0644);
    if (fd < 0) return OP_EIO;
    int rc = OP_OK;
    for (size_t done = 0; rc == OP_OK && done < len;) {
        ssize_t n = pwrite(fd, data + done, len - done, (off_t)(offset + (int64_t)done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            rc = OP_EIO;
        else
            done += (size_t)n;
    }
    if (rc == OP_OK && offset + (int64_t)len == u->size_bytes && fsync(fd) != 0) rc = OP_EIO;
    close(fd);
    return rc;
}

/*
 * The last piece came: the whole hash checked against the name it was
 * uploaded under, the file renamed to its content address, the manifest
 * signed and stored. OP_OK, OP_ESIG (the bytes are not what they claimed:
 * dropped), OP_EIO, OP_ESTORE, OP_ENOMEM.
 */
static int finish_upload(hub *h, upload *u, char *err, size_t err_len)
{
    uint8_t sha[32];
    char hex[65], from[PATH_MAX], to[PATH_MAX];
    crypto_hash_sha256_final(&u->whole, sha);
    util_hex(sha, 32, hex);
    if (hub__artifact_path(h, u->sha, ".upload", from, sizeof from, 0) != OP_OK ||
        hub__artifact_path(h, u->sha, "", to, sizeof to, 0) != OP_OK)
        return OP_EIO;
    if (strcmp(hex, u->sha) != 0) {
        unlink(from);
        snprintf(err, err_len, "the %lld bytes uploaded hash to %s, not %s: upload again",
                 (long long)u->size_bytes, hex, u->sha);
        return OP_ESIG;
    }
    artifact_manifest m;
    int rc = artifact_manifest_make(sha, u->size_bytes, ARTIFACT_CHUNK_BYTES,
                                    (const uint8_t(*)[32])u->chunk_sha, &m);
    char *text = rc == OP_OK ? artifact_manifest_text(&m) : NULL;
    char sig[129];
    if (rc == OP_OK && !text) rc = OP_ENOMEM;
    if (rc == OP_OK && rename(from, to) != 0) rc = OP_EIO;
    if (rc == OP_OK) {
        artifact_sign(&h->identity, ARTIFACT_MANIFEST_DOMAIN, text, sig);
        rc =
            hub__check(h, hubdb_artifact_add(h->db, u->sha, u->size_bytes, text, sig, os_now_ms()));
    }
    if (rc != OP_OK)
        snprintf(err, err_len, "the hub could not keep the artifact: %s", op_strerror(rc));
    free(text);
    artifact_manifest_clear(&m);
    return rc;
}

/* The piece's chunks hashed (pieces are whole chunks but for the artifact's last). */
static void hash_piece(upload *u, int64_t offset, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_update(&u->whole, data, len);
    for (size_t at = 0; at < len; at += ARTIFACT_CHUNK_BYTES) {
        size_t n = len - at < ARTIFACT_CHUNK_BYTES ? len - at : ARTIFACT_CHUNK_BYTES;
        crypto_hash_sha256(u->chunk_sha[(offset + (int64_t)at) / ARTIFACT_CHUNK_BYTES], data + at,
                           n);
    }
}

/* The fields of a model_upload request. OP_OK or OP_EINVAL with the message in err. */
static int upload_args(op_call *c, const char **sha, int64_t *size, int64_t *offset, uint8_t **data,
                       size_t *len)
{
    *sha = jsonx_str(c->req, "sha256");
    const char *b64 = jsonx_str(c->req, "data");
    if (!artifact_sha_ok(*sha) || jsonx_int(c->req, "size", 1, ARTIFACT_MAX_BYTES, size) != OP_OK ||
        jsonx_int(c->req, "offset", 0, *size - 1, offset) != OP_OK || !b64 ||
        util_b64_decode(b64, MODELS_MAX_PIECE_BYTES, data, len) != OP_OK || *len == 0) {
        snprintf(c->err, c->err_len,
                 "model_upload needs sha256 (hex), size (1 to %lld), offset (below size) and "
                 "data (base64, 1 byte to %d)",
                 (long long)ARTIFACT_MAX_BYTES, MODELS_MAX_PIECE_BYTES);
        return OP_EINVAL;
    }
    int last = *offset + (int64_t)*len == *size;
    if (*offset % ARTIFACT_CHUNK_BYTES || *offset + (int64_t)*len > *size ||
        (!last && *len % ARTIFACT_CHUNK_BYTES)) {
        snprintf(c->err, c->err_len, "model_upload: pieces are whole %d-byte chunks but the last",
                 ARTIFACT_CHUNK_BYTES);
        return OP_EINVAL;
    }
    return OP_OK;
}

/*
 * model_upload {sha256, size, offset, data}: one piece of an artifact, in
 * order from offset 0. The answer's next_offset is where the next piece
 * goes (0 when the hub lost the upload: start again); complete when the
 * hub holds the bytes (at once when it held them before).
 */
int hub__op_model_upload(hub *h, op_call *c)
{
    struct hub_models *m = state(h);
    const char *sha;
    int64_t size, offset;
    uint8_t *data = NULL;
    size_t len = 0;
    if (!m) return OP_ENOMEM;
    int rc = upload_args(c, &sha, &size, &offset, &data, &len);
    upload *u = rc == OP_OK ? find_upload(m, sha) : NULL;
    int64_t held = 0;
    if (rc == OP_OK && hubdb_artifact_get(h->db, sha, &held, NULL, NULL) == OP_OK) {
        cJSON_AddBoolToObject(c->data, "complete", 1);
        jsonx_add_int(c->data, "next_offset", held);
        free(data);
        return OP_OK;
    }
    if (rc == OP_OK && offset == 0 && u) upload_drop(u); /* started again */
    if (rc == OP_OK && offset == 0 && !(u = new_upload(m, sha, size))) {
        snprintf(c->err, c->err_len, "the hub takes %d uploads at once; retry later",
                 MODELS_MAX_UPLOADS);
        rc = OP_EFULL;
    }
    if (rc == OP_OK && (!u || u->size_bytes != size || u->next_offset != offset)) {
        /* out of order, or an upload the hub forgot (a restart): where to go on from */
        jsonx_add_int(c->data, "next_offset", u && u->size_bytes == size ? u->next_offset : 0);
        cJSON_AddBoolToObject(c->data, "complete", 0);
        free(data);
        return OP_OK;
    }
    if (rc == OP_OK && (rc = write_piece(h, u, offset, data, len)) != OP_OK)
        snprintf(c->err, c->err_len, "the hub could not write the piece: %s", strerror(errno));
    if (rc == OP_OK) {
        hash_piece(u, offset, data, len);
        u->next_offset += (int64_t)len;
        u->touched_mono = os_mono_ms();
        if (u->next_offset == size) {
            rc = finish_upload(h, u, c->err, c->err_len);
            if (rc == OP_OK) m->uploads_done++;
            upload_drop(u);
        }
    }
    if (rc == OP_OK) {
        jsonx_add_int(c->data, "next_offset", offset + (int64_t)len);
        cJSON_AddBoolToObject(c->data, "complete", offset + (int64_t)len == size);
    }
    free(data);
    return rc;
}

/* ---------- versions ---------- */

static int data_class_of(const char *name)
{
    if (!name || !strcmp(name, "public")) return DATA_PUBLIC;
    if (!strcmp(name, "confidential")) return DATA_CONFIDENTIAL;
    if (!strcmp(name, "site-private")) return DATA_SITE_PRIVATE;
    return -1;
}

/* The record's fields from a model_put request. OP_OK or OP_EINVAL with the message in err. */
static int put_args(hub *h, op_call *c, artifact_record *r, int64_t *size)
{
    const char *name = jsonx_str(c->req, "name"), *sha = jsonx_str(c->req, "sha256");
    const char *origin = jsonx_str(c->req, "origin");
    const cJSON *lineage = cJSON_GetObjectItemCaseSensitive(c->req, "lineage");
    memset(r, 0, sizeof *r);
    r->data_class = data_class_of(jsonx_str(c->req, "data_class"));
    if (!artifact_valid_name(name) || !artifact_sha_ok(sha)) {
        snprintf(c->err, c->err_len, "model_put needs name ([A-Za-z0-9_-]{1,63}) and sha256");
        return OP_EINVAL;
    }
    if (r->data_class < 0) {
        snprintf(c->err, c->err_len, "data_class: public, confidential or site-private");
        return OP_EINVAL;
    }
    if ((origin && !hub__find_site(h, origin)) || (r->data_class == DATA_SITE_PRIVATE && !origin)) {
        snprintf(c->err, c->err_len, "origin: %s",
                 origin ? "not an enrolled site" : "required for a site-private model");
        return OP_EINVAL;
    }
    if (cJSON_HasObjectItem(c->req, "parent") &&
        jsonx_int(c->req, "parent", 1, INT32_MAX, &r->parent) != OP_OK) {
        snprintf(c->err, c->err_len, "parent: a version number");
        return OP_EINVAL;
    }
    if (lineage && artifact_lineage_check(lineage, c->err, c->err_len) != OP_OK) return OP_EINVAL;
    if (hubdb_artifact_get(h->db, sha, size, NULL, NULL) != OP_OK) {
        snprintf(c->err, c->err_len, "the hub holds no artifact %.16s...: upload it first", sha);
        return OP_ENOTFOUND;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->sha256_hex, sizeof r->sha256_hex, "%s", sha);
    snprintf(r->origin, sizeof r->origin, "%s", origin ? origin : "");
    r->lineage = lineage;
    return OP_OK;
}

/* The parent must be a version of the same name (removed ones too: lineage stays). */
static int check_parent(hub *h, op_call *c, const artifact_record *r)
{
    hubdb_model parent;
    if (!r->parent) return OP_OK;
    int rc = hubdb_model_get(h->db, r->name, r->parent, &parent);
    hubdb_model_clear(&parent);
    if (rc == OP_ENOTFOUND)
        snprintf(c->err, c->err_len, "parent: %s has no version %lld", r->name,
                 (long long)r->parent);
    return rc;
}

cJSON *hub__model_put_audit(const artifact_record *r, const char *sig)
{
    cJSON *a = cJSON_CreateObject();
    if (!a) return NULL;
    jsonx_add_int(a, "version", r->version);
    cJSON_AddStringToObject(a, "sha256", r->sha256_hex);
    jsonx_add_int(a, "size", r->size_bytes);
    cJSON_AddStringToObject(a, "data_class", jobspec_data_class_name(r->data_class));
    cJSON_AddStringToObject(a, "origin", r->origin);
    jsonx_add_int(a, "parent", r->parent);
    cJSON_AddStringToObject(a, "by", r->created_by);
    cJSON_AddStringToObject(a, "sig", sig);
    return a;
}

/*
 * model_put {name, sha256, parent, data_class, origin, lineage}: a new
 * version of name over an uploaded artifact, its record signed and kept,
 * audited as model-put on model:NAME.
 */
int hub__op_model_put(hub *h, op_call *c)
{
    artifact_record r;
    int rc = put_args(h, c, &r, &r.size_bytes);
    if (rc == OP_OK) rc = check_parent(h, c, &r);
    if (rc == OP_OK) rc = hub__check(h, hubdb_model_next_version(h->db, r.name, &r.version));
    if (rc != OP_OK) return rc;
    r.created_at_ms = os_now_ms();
    snprintf(r.created_by, sizeof r.created_by, "%s", c->op_id);
    char *text = artifact_record_text(&r);
    if (!text) return OP_ENOMEM;
    char sig[129], subject[80];
    artifact_sign(&h->identity, ARTIFACT_RECORD_DOMAIN, text, sig);
    hubdb_model row = {.version = r.version,
                       .size_bytes = r.size_bytes,
                       .data_class = r.data_class,
                       .created_at_ms = r.created_at_ms,
                       .record = text,
                       .sig = sig};
    snprintf(row.name, sizeof row.name, "%s", r.name);
    snprintf(row.sha256, sizeof row.sha256, "%s", r.sha256_hex);
    snprintf(row.origin, sizeof row.origin, "%s", r.origin);
    rc = hub__check(h, hubdb_model_insert(h->db, &row));
    if (rc == OP_OK) {
        snprintf(subject, sizeof subject, "model:%s", r.name);
        hub__audit_record(h, "model-put", subject, hub__model_put_audit(&r, sig));
        cJSON_AddStringToObject(c->data, "name", r.name);
        jsonx_add_int(c->data, "version", r.version);
        cJSON_AddStringToObject(c->data, "record", text);
        cJSON_AddStringToObject(c->data, "sig", sig);
        log_info("hub", "operator %s put model %s version %lld (%s, %lld bytes)", c->op_id, r.name,
                 (long long)r.version, r.sha256_hex, (long long)r.size_bytes);
    }
    free(text);
    return rc;
}

/* model_list {name, all, limit}: versions, newest first (removed ones with all). */
int hub__op_model_list(hub *h, op_call *c)
{
    int64_t limit = 200;
    jsonx_int(c->req, "limit", 1, MODELS_LIST_MAX, &limit);
    const char *name = jsonx_str(c->req, "name");
    if (name && !artifact_valid_name(name)) {
        snprintf(c->err, c->err_len, "name: [A-Za-z0-9_-]{1,63}");
        return OP_EINVAL;
    }
    int all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->req, "all"));
    return hubdb_models_list(h->db, name, all, limit, cJSON_AddArrayToObject(c->data, "models"));
}

/* The sites that report holding sha whole, into arr. */
static void add_holders(hub *h, const char *sha, cJSON *arr)
{
    uint8_t raw[32];
    if (!arr || util_unhex(sha, raw, 32) != OP_OK) return;
    for (size_t i = 0; i < h->n_sites; i++)
        for (int k = 0; k < h->sites[i].n_holds; k++)
            if (memcmp(h->sites[i].holds[k], raw, 32) == 0)
                cJSON_AddItemToArray(arr, cJSON_CreateString(h->sites[i].id));
}

/* The model ref of a request: name and version (0: the latest). OP_EINVAL with err set. */
static int ref_args(op_call *c, char name[64], int64_t *version)
{
    const char *n = jsonx_str(c->req, "name");
    *version = 0;
    if (!artifact_valid_name(n) || (cJSON_HasObjectItem(c->req, "version") &&
                                    jsonx_int(c->req, "version", 1, INT32_MAX, version) != OP_OK)) {
        snprintf(c->err, c->err_len, "needs name ([A-Za-z0-9_-]{1,63}) and maybe a version");
        return OP_EINVAL;
    }
    snprintf(name, 64, "%s", n);
    return OP_OK;
}

/* model_show {name, version}: the signed record, whether removed, the sites that hold it. */
int hub__op_model_show(hub *h, op_call *c)
{
    char name[64];
    int64_t version;
    hubdb_model m;
    int rc = ref_args(c, name, &version);
    if (rc == OP_OK) rc = hubdb_model_get(h->db, name, version, &m);
    if (rc == OP_ENOTFOUND)
        snprintf(c->err, c->err_len, "no model %s%s", name, version ? " of that version" : "");
    if (rc != OP_OK) return rc;
    cJSON_AddStringToObject(c->data, "record", m.record);
    cJSON_AddStringToObject(c->data, "sig", m.sig);
    jsonx_add_int(c->data, "removed_at", m.removed_at_ms);
    add_holders(h, m.sha256, cJSON_AddArrayToObject(c->data, "held_by"));
    hub__pool_view(h, name, c->data);
    hub__rollback_view(h, name, c->data);
    hubdb_model_clear(&m);
    return OP_OK;
}

/* Bytes no version names any more leave the disk and the manifests. */
static void forget_unused(hub *h, const char *sha)
{
    int used = 1;
    char path[PATH_MAX];
    if (hub__check(h, hubdb_sha_in_use(h->db, sha, &used)) != OP_OK || used) return;
    if (hub__check(h, hubdb_artifact_delete(h->db, sha)) != OP_OK) return;
    if (hub__artifact_path(h, sha, "", path, sizeof path, 0) == OP_OK) unlink(path);
}

/* model_rm {name, version}: that version, or every version, removed; audited. */
int hub__op_model_rm(hub *h, op_call *c)
{
    char name[64], subject[80];
    int64_t version;
    int removed = 0;
    int rc = ref_args(c, name, &version);
    cJSON *rows = rc == OP_OK ? cJSON_CreateArray() : NULL;
    if (rc == OP_OK && !rows) rc = OP_ENOMEM;
    if (rc == OP_OK) rc = hubdb_models_list(h->db, name, 0, MODELS_LIST_MAX, rows);
    if (rc == OP_OK)
        rc = hub__check(h, hubdb_model_remove(h->db, name, version, os_now_ms(), &removed));
    if (rc == OP_OK && !removed) {
        snprintf(c->err, c->err_len, "no version of %s to remove", name);
        rc = OP_ENOTFOUND;
    }
    const cJSON *row;
    cJSON *removed_rows = rc == OP_OK ? rows : NULL;
    cJSON_ArrayForEach(row, removed_rows)
    {
        int64_t v = 0;
        jsonx_int(row, "version", 1, INT32_MAX, &v);
        if (version == 0 || v == version) forget_unused(h, jsonx_str(row, "sha256"));
    }
    cJSON_Delete(rows);
    if (rc != OP_OK) return rc;
    cJSON *a = cJSON_CreateObject();
    if (a) {
        jsonx_add_int(a, "version", version);
        jsonx_add_int(a, "removed", removed);
        cJSON_AddStringToObject(a, "by", c->op_id);
    }
    snprintf(subject, sizeof subject, "model:%s", name);
    hub__audit_record(h, "model-rm", subject, a);
    jsonx_add_int(c->data, "removed", removed);
    return OP_OK;
}

/* ---------- jobs that use a model ---------- */

/* Whether the model's data class lets the job use it. OP_OK or OP_EPERM with err set. */
static int class_allows(const hubdb_model *m, const jobspec *spec, char *err, size_t err_len)
{
    if (m->data_class == DATA_SITE_PRIVATE &&
        (spec->data_class != DATA_SITE_PRIVATE || strcmp(spec->origin, m->origin) != 0)) {
        snprintf(err, err_len,
                 "model %s@%lld is site-private to %s: only a site-private job with origin %s "
                 "may use it (it never leaves that site)",
                 m->name, (long long)m->version, m->origin, m->origin);
        return OP_EPERM;
    }
    if (m->data_class == DATA_CONFIDENTIAL && spec->data_class == DATA_PUBLIC) {
        snprintf(err, err_len,
                 "model %s@%lld is confidential: a job that uses it must be confidential too",
                 m->name, (long long)m->version);
        return OP_EPERM;
    }
    return OP_OK;
}

/*
 * A learn job's "from" (a visit's or an offer's pooled model): resolved to
 * a version whose bytes the hub holds, written back as NAME@VERSION with
 * the artifact's hash and size, which the site fetches like any model.
 */
static int resolve_learn_from(hub *h, cJSON *spec_json, jobspec *spec, char *err, size_t err_len)
{
    hubdb_model m = {0};
    int rc = hubdb_model_get(h->db, spec->learn_from, spec->learn_from_version, &m);
    if (rc == OP_OK &&
        (m.removed_at_ms || hubdb_artifact_get(h->db, m.sha256, NULL, NULL, NULL) != OP_OK))
        rc = OP_ENOTFOUND;
    if (rc != OP_OK) {
        hubdb_model_clear(&m);
        snprintf(err, err_len, "learn.from: the registry holds no bytes of %s%s", spec->learn_from,
                 spec->learn_from_version ? " of that version" : "");
        return rc == OP_ENOTFOUND ? rc : OP_ESTORE;
    }
    rc = m.data_class == DATA_SITE_PRIVATE ? OP_EPERM : OP_OK;
    if (rc != OP_OK) snprintf(err, err_len, "learn.from: a site-private model is never pooled");
    cJSON *learn = cJSON_GetObjectItemCaseSensitive(spec_json, "learn");
    if (rc == OP_OK && learn) {
        char ref[96];
        snprintf(ref, sizeof ref, "%s@%lld", m.name, (long long)m.version);
        spec->learn_from_version = m.version;
        snprintf(spec->model_sha256, sizeof spec->model_sha256, "%s", m.sha256);
        spec->model_bytes = m.size_bytes;
        cJSON_DeleteItemFromObjectCaseSensitive(learn, "from");
        cJSON_AddStringToObject(learn, "from", ref);
        cJSON_DeleteItemFromObjectCaseSensitive(spec_json, "model_sha256");
        cJSON_DeleteItemFromObjectCaseSensitive(spec_json, "model_bytes");
        cJSON_AddStringToObject(spec_json, "model_sha256", m.sha256);
        jsonx_add_int(spec_json, "model_bytes", m.size_bytes);
    }
    hubdb_model_clear(&m);
    return rc;
}

int hub__models_resolve(hub *h, cJSON *spec_json, jobspec *spec, char *err, size_t err_len)
{
    hubdb_model m;
    /* a learn job's model is the one it makes; what it reads is its pooled "from", if any */
    if (!spec->model[0] || (spec->kind == JOB_KIND_LEARN && !spec->learn_from[0])) return OP_OK;
    if (spec->kind == JOB_KIND_LEARN) return resolve_learn_from(h, spec_json, spec, err, err_len);
    int rc = hubdb_model_get(h->db, spec->model, spec->model_version, &m);
    if (rc == OP_OK && m.removed_at_ms) {
        hubdb_model_clear(&m);
        rc = OP_ENOTFOUND;
    }
    if (rc == OP_ENOTFOUND) {
        snprintf(err, err_len, "model: the registry has no %s%s", spec->model,
                 spec->model_version ? " of that version (or it was removed)" : "");
        return rc;
    }
    if (rc != OP_OK) {
        snprintf(err, err_len, "hub store failed; retry");
        return OP_ESTORE;
    }
    rc = class_allows(&m, spec, err, err_len);
    if (rc == OP_OK && hubdb_artifact_get(h->db, m.sha256, NULL, NULL, NULL) != OP_OK) {
        snprintf(err, err_len, "model %s@%lld: its bytes stay at %s, the site that learned it",
                 m.name, (long long)m.version, m.origin);
        rc = OP_EPERM;
    }
    if (rc == OP_OK) {
        char ref[96];
        snprintf(ref, sizeof ref, "%s@%lld", m.name, (long long)m.version);
        spec->model_version = m.version;
        snprintf(spec->model_sha256, sizeof spec->model_sha256, "%s", m.sha256);
        spec->model_bytes = m.size_bytes;
        cJSON_DeleteItemFromObjectCaseSensitive(spec_json, "model");
        cJSON_DeleteItemFromObjectCaseSensitive(spec_json, "model_sha256");
        cJSON_DeleteItemFromObjectCaseSensitive(spec_json, "model_bytes");
        cJSON_AddStringToObject(spec_json, "model", ref);
        cJSON_AddStringToObject(spec_json, "model_sha256", m.sha256);
        jsonx_add_int(spec_json, "model_bytes", m.size_bytes);
    }
    hubdb_model_clear(&m);
    return rc;
}

void hub__models_job_fetching(hub *h, hub_site *s, int64_t job_id, int64_t attempt,
                              const char *detail)
{
    hubdb_job job;
    if (hubdb_job_get(h->db, job_id, &job) != OP_OK || strcmp(job.site, s->id) != 0 ||
        job.attempt != attempt)
        return; /* not this site's attempt: nothing of it goes in the job's history */
    char text[200];
    snprintf(text, sizeof text, "%.190s", detail ? detail : "its model");
    hub__job_event(h, job_id, attempt, s->id, "fetching", text);
}
