/*
 * The site's local socket server (protocol: io/localsock.h). Works with or
 * without the hub: a warehouse re-plans its routes while its uplink is down.
 * Requests:
 *   {"spec": {...}} or {"specs": [...]}  `outpost submit --local`: only kinds
 *       the site's own policy lists under `local` are taken. Jobs get negative
 *       ids here; their results carry their spec to the hub, which records
 *       each (site, local id) once. Reply {"ok", "error"?, "ids": [...]}.
 *   {"op": "power", "meter": {...}}  `outpost power`: a meter message;
 *       the reply adds "envelope_watts".
 *   {"op": "leave", "grace_s": N}    `outpost leave`; the reply adds "stopping".
 *   {"op": "exceptions", "exceptions": [...]}  `outpost exception add`: planned
 *       vs actual rows to learn from (learning.c); the reply adds "added", "rows".
 *   {"op": "predict", ...}  `outpost predict`: the site's own model answers,
 *       or a larger one through the hub (predict.c); the reply adds "seconds",
 *       "source", "model", "version", "confidence".
 *
 * Who may ask: the socket file is mode 0660, and every connection is checked
 * again by the kernel's word on its peer (SO_PEERCRED): the site's own
 * user, root, or a member of local_socket_group. Anyone else (a job running
 * under its own uid that still reached the socket, a user the file mode let
 * through) is refused and logged before its request is read.
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/util.h"
#include "io/localsock.h"
#include "site/site_db.h"
#include "site/site_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITE_LOCAL_MAX_SPECS 10000
#define SITE_LOCAL_PER_LOOP 4 /* connections served per loop iteration */

/*
 * Listens on local_socket from the config (a path, or "off"), by default
 * <data-dir>/local.sock (mode 0660: the site's user and group may submit).
 * A failure only turns local submission off.
 */
void site__local_open(site *s)
{
    const char *wanted = s->local_cfg[0] ? s->local_cfg : s->data_dir;
    if (strcmp(wanted, "off") == 0) return;
    int rc = localsock_path(wanted, s->local_path, sizeof s->local_path);
    if (rc == OP_OK) rc = localsock_listen(s->local_path, &s->local_fd);
    if (rc != OP_OK)
        log_warn("site", "local submission off: cannot listen on %s: %s",
                 rc == OP_ESYS ? s->local_path : wanted,
                 rc == OP_ESYS ? strerror(errno) : op_strerror(rc));
    else if (s->has_local_group && chown(s->local_path, (uid_t)-1, s->local_group) != 0)
        log_warn("site",
                 "local_socket_group: cannot give %s to group %d: %s (its members are"
                 " still let in when the file mode lets them reach it)",
                 s->local_path, (int)s->local_group, strerror(errno));
}

/*
 * Whether the peer of conn may use the socket: the site's own user, root, or
 * a member of local_socket_group. A refusal is logged with who it was, and
 * why is the answer's error.
 */
static int peer_allowed(site *s, int conn, char *why, size_t why_len)
{
    localsock_peer peer;
    if (localsock_peer_of(conn, &peer) != OP_OK) {
        log_warn("site", "local socket: refused a connection whose peer is unknown: %s",
                 strerror(errno));
        snprintf(why, why_len, "refused: the site cannot tell who you are");
        return 0;
    }
    if (peer.uid == 0 || peer.uid == geteuid() ||
        (s->has_local_group && localsock_peer_in_group(&peer, s->local_group)))
        return 1;
    log_warn("site", "local socket: refused uid %d gid %d (pid %d): only uid %d, root%s may use it",
             (int)peer.uid, (int)peer.gid, (int)peer.pid, (int)geteuid(),
             s->has_local_group ? " or local_socket_group's members" : "");
    snprintf(why, why_len,
             "refused: uid %d may not use this site's local socket (the site's own user, root%s"
             " may)",
             (int)peer.uid, s->has_local_group ? " or members of its local_socket_group" : "");
    return 0;
}

void site__local_close(site *s)
{
    localsock_unlisten(s->local_fd, s->local_path);
    s->local_fd = -1;
}

/* `outpost power`: a meter message from the owner. */
static void op_power(site *s, const cJSON *req, cJSON *reply, char *why, size_t why_len)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(req, "meter");
    char *text = cJSON_IsObject(m) ? cJSON_PrintUnformatted(m) : NULL;
    char err[200] = "meter: must be an object";
    if (!text ||
        site__apply_meter(s, text, strlen(text), "outpost power", err, sizeof err) != OP_OK)
        snprintf(why, why_len, "%s", err);
    else
        cJSON_AddNumberToObject(reply, "envelope_watts", s->power_budget_watts);
    free(text);
}

/* `outpost leave`: the owner unplugs after a grace period. */
static void op_leave(site *s, const cJSON *req, cJSON *reply, char *why, size_t why_len)
{
    int64_t grace_s = 10;
    if (jsonx_int(req, "grace_s", 0, 3600, &grace_s) == OP_EINVAL) {
        snprintf(why, why_len, "grace_s: 0 to 3600 seconds");
        return;
    }
    cJSON_AddNumberToObject(reply, "stopping", site__start_leaving(s, grace_s * 1000));
}

/* The request's specs ("spec", or "specs" up to the bound) as references, or NULL. */
static cJSON *collect_specs(const cJSON *req)
{
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(req, "spec");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(req, "specs");
    cJSON *list = cJSON_CreateArray();
    if (!list) return NULL;
    if (cJSON_IsObject(one))
        cJSON_AddItemReferenceToArray(list, (cJSON *)one);
    else if (cJSON_IsArray(many) && cJSON_GetArraySize(many) <= SITE_LOCAL_MAX_SPECS)
        cJSON_ArrayForEach(one, many) cJSON_AddItemReferenceToArray(list, (cJSON *)one);
    return list;
}

/* Why spec k may never run here as a local job, into why; "" when it may. */
static void check_local_spec(site *s, int k, const jobspec *spec, char *why, size_t why_len)
{
    unsigned own = jobspec_class_bit(s->class_name);
    if (!policy_allows_local(s->policy, spec->kind))
        snprintf(why, why_len,
                 "spec %d: this site's policy does not take local %s jobs (add 'local %s'"
                 " to its policy_file)",
                 k, jobspec_kind_name(spec->kind), jobspec_kind_name(spec->kind));
    else if (own && !(spec->class_mask & own))
        snprintf(why, why_len, "spec %d: job does not allow site class %s", k, s->class_name);
    else if (spec->data_class == DATA_SITE_PRIVATE && strcmp(spec->origin, s->identity.id))
        snprintf(why, why_len, "spec %d: site-private data of %s may not run here", k,
                 spec->origin);
}

/* All or nothing for what does not change: validity, policy, class, residency. */
static int check_specs(site *s, const cJSON *list, char *why, size_t why_len)
{
    int k = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        jobspec spec;
        char err[256];
        if (jobspec_from_json(item, &spec, err, sizeof err) != OP_OK) {
            snprintf(why, why_len, "spec %d: %s", k, err);
            return OP_EINVAL;
        }
        check_local_spec(s, k, &spec, why, why_len);
        jobspec_clear(&spec);
        if (why[0]) return OP_EPERM;
        k++;
    }
    return OP_OK;
}

/*
 * Admits and starts the specs in order under fresh local ids, until one does
 * not fit now (capacity, power): those before it run, the rest are refused.
 */
static void admit_specs(site *s, const cJSON *list, cJSON *ids, char *why, size_t why_len)
{
    char value[32] = "1";
    int64_t next = 1;
    if (sitedb_meta_get(s->db, "next_local_id", value, sizeof value) == OP_OK &&
        util_parse_i64(value, 1, INT64_MAX / 2, &next) != OP_OK)
        next = 1;
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        jobspec spec;
        char err[256];
        jobspec_from_json(item, &spec, err, sizeof err);
        int rc = site__admission(s, &spec, err, sizeof err);
        jobspec_clear(&spec);
        if (rc != OP_OK) {
            snprintf(why, why_len, "accepted %d of %d; the rest refused: %s",
                     cJSON_GetArraySize(ids), cJSON_GetArraySize(list), err);
            break;
        }
        int64_t id = next++;
        site__accept_job(s, -id, 1, item, 0, 0);
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id));
        site__poll_jobs(s); /* a no-op finishes at once and frees its share */
    }
    snprintf(value, sizeof value, "%lld", (long long)next);
    if (site__ensure_tx(s) != OP_OK || sitedb_meta_set(s->db, "next_local_id", value) != OP_OK)
        s->store_failed = 1;
}

/* `outpost submit --local`: one spec or a batch. */
static void op_submit(site *s, const cJSON *req, cJSON *ids, char *why, size_t why_len)
{
    cJSON *list = collect_specs(req);
    if (!list) return;
    if (cJSON_GetArraySize(list) == 0)
        snprintf(why, why_len, "give a spec or 1 to %d specs", SITE_LOCAL_MAX_SPECS);
    else if (check_specs(s, list, why, why_len) == OP_OK)
        admit_specs(s, list, ids, why, why_len);
    cJSON_Delete(list);
}

/*
 * Answers one connection: its request, then {"ok", "error"?, "ids", ...}.
 * A peer that may not use the socket is answered without being read.
 */
static int local_client(site *s, int fd)
{
    int kept = 0;
    char why[320] = "";
    cJSON *reply = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *req = NULL;
    int allowed = peer_allowed(s, fd, why, sizeof why);
    int rc = OP_EPERM;
    if (allowed)
        rc = localsock_read_request(fd, LOCALSOCK_READ_TIMEOUT_MS, LOCALSOCK_MAX_REQUEST_BYTES,
                                    &req);
    if (reply && ids) {
        const char *op = req ? jsonx_str(req, "op") : NULL;
        if (allowed && rc != OP_OK)
            snprintf(why, sizeof why, "request unreadable (not JSON, too slow or over %d bytes)",
                     LOCALSOCK_MAX_REQUEST_BYTES);
        else if (allowed && op && strcmp(op, "power") == 0)
            op_power(s, req, reply, why, sizeof why);
        else if (allowed && op && strcmp(op, "leave") == 0)
            op_leave(s, req, reply, why, sizeof why);
        else if (allowed && op && strcmp(op, "exceptions") == 0)
            site__exceptions_op(s, req, reply, why, sizeof why);
        else if (allowed && op && strcmp(op, "predict") == 0)
            kept = site__predict_op(s, req, reply, fd, why, sizeof why);
        else if (allowed)
            op_submit(s, req, ids, why, sizeof why);
        cJSON_AddBoolToObject(reply, "ok", why[0] == 0);
        if (why[0]) cJSON_AddStringToObject(reply, "error", why);
        cJSON_AddItemToObject(reply, "ids", ids);
    } else {
        cJSON_Delete(ids);
    }
    if (why[0] && allowed) log_info("site", "local submission: %s", why);
    cJSON_Delete(req);
    if (kept) return 1; /* an escalated question: predict.c answers it and closes fd */
    if (reply) localsock_reply(fd, reply);
    cJSON_Delete(reply);
    return 0;
}

/* Serves the connections waiting now, a few per loop iteration. */
void site__serve_local(site *s)
{
    for (int k = 0; s->local_fd >= 0 && k < SITE_LOCAL_PER_LOOP; k++) {
        int fd = localsock_accept(s->local_fd);
        if (fd < 0) return;
        if (!local_client(s, fd)) close(fd);
    }
}
