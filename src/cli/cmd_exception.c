/*
 * cmd_exception: `outpost exception add`, how a route's consumer (a
 * driver's app, a warehouse system) or an operator tells a site what
 * really happened: planned against actual seconds, with the features known
 * when it was planned. One exception from flags, or many from a JSON lines
 * file, sent through the site's local socket in batches; the rows stay in
 * the site's store (docs/learning.md, "Exceptions at the site").
 */
#include "base/err.h"
#include "base/jsonx.h"
#include "base/util.h"
#include "cli/cli_int.h"
#include "io/localsock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXC_BATCH 2000
#define EXC_LINE_MAX 4096

/* Sends one batch (taken); prints the site's refusal. EXIT_OK or an exit code. */
static int send_batch(const char *path, cJSON *list, int64_t *rows)
{
    char err[512];
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    if (!req) {
        cJSON_Delete(list);
        return EXIT_FAILURE_RUNTIME;
    }
    cJSON_AddStringToObject(req, "op", "exceptions");
    cJSON_AddItemToObject(req, "exceptions", list);
    int rc = localsock_call(path, req, LOCALSOCK_CALL_TIMEOUT_MS, &reply, err, sizeof err);
    cJSON_Delete(req);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    const char *error = jsonx_str(reply, "error");
    if (error) fprintf(stderr, "outpost exception: the site refused: %s\n", error);
    jsonx_int(reply, "rows", 0, INT64_MAX, rows);
    cJSON_Delete(reply);
    return error ? EXIT_REJECTED : EXIT_OK;
}

/* Every line of file a JSON exception, sent EXC_BATCH at a time. */
static int add_file(const char *path, const char *file, int64_t *added, int64_t *rows)
{
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!in) {
        fprintf(stderr, "outpost exception: cannot read %s\n", file);
        return EXIT_USAGE;
    }
    char line[EXC_LINE_MAX];
    int rc = EXIT_OK, lineno = 0;
    cJSON *list = cJSON_CreateArray();
    while (rc == EXIT_OK && list && fgets(line, sizeof line, in)) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            fprintf(stderr, "outpost exception: %s line %d: not a JSON object (or over %d bytes)\n",
                    file, lineno, EXC_LINE_MAX - 1);
            cJSON_Delete(o);
            rc = EXIT_USAGE;
            break;
        }
        cJSON_AddItemToArray(list, o);
        if (cJSON_GetArraySize(list) == EXC_BATCH) {
            *added += EXC_BATCH;
            rc = send_batch(path, list, rows);
            list = cJSON_CreateArray();
        }
    }
    if (rc == EXIT_OK && list && cJSON_GetArraySize(list) > 0) {
        *added += cJSON_GetArraySize(list);
        rc = send_batch(path, list, rows);
        list = NULL;
    }
    cJSON_Delete(list);
    if (in != stdin) fclose(in);
    return rc;
}

/* One exception from the flags into a fresh one-element list; NULL after printing why. */
static cJSON *from_flags(const char *kind, const char *planned, const char *actual,
                         const char *features, const char *data_class)
{
    double p = 0, a = 0;
    if (!planned || !actual || util_parse_double(planned, &p) != OP_OK ||
        util_parse_double(actual, &a) != OP_OK) {
        fprintf(stderr, "outpost exception add: --planned S and --actual S (seconds) or --file\n");
        return NULL;
    }
    cJSON *f = features ? cJSON_Parse(features) : cJSON_CreateObject();
    if (!cJSON_IsObject(f)) {
        fprintf(stderr, "outpost exception add: --features takes a JSON object\n");
        cJSON_Delete(f);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
    if (!o || !list) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        cJSON_Delete(f);
        return NULL;
    }
    cJSON_AddStringToObject(o, "kind", kind ? kind : "route-leg");
    cJSON_AddNumberToObject(o, "planned_s", p);
    cJSON_AddNumberToObject(o, "actual_s", a);
    cJSON_AddItemToObject(o, "features", f);
    if (data_class) cJSON_AddStringToObject(o, "data_class", data_class);
    cJSON_AddItemToArray(list, o);
    return list;
}

/*
 * outpost exception add SITE_DIR|SOCKET (--planned S --actual S [--features
 * JSON] [--kind K] [--data-class C] | --file FILE.jsonl)
 */
int cli__cmd_exception(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"planned", required_argument, NULL, 'p'},
                                         {"actual", required_argument, NULL, 'a'},
                                         {"features", required_argument, NULL, 'f'},
                                         {"kind", required_argument, NULL, 'k'},
                                         {"data-class", required_argument, NULL, 'd'},
                                         {"file", required_argument, NULL, 'F'},
                                         {NULL, 0, NULL, 0}};
    const char *planned = NULL, *actual = NULL, *features = NULL, *kind = NULL, *dc = NULL,
               *file = NULL;
    int code;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        switch (code) {
        case 'h':
            cli__usage(stdout, "exception");
            return EXIT_OK;
        case 'p':
            planned = optarg;
            break;
        case 'a':
            actual = optarg;
            break;
        case 'f':
            features = optarg;
            break;
        case 'k':
            kind = optarg;
            break;
        case 'd':
            dc = optarg;
            break;
        case 'F':
            file = optarg;
            break;
        default:
            return cli__usage_error(c);
        }
    }
    if (optind != argc - 2 || strcmp(argv[optind], "add") != 0) return cli__usage_error(c);
    const char *path = argv[optind + 1];
    int64_t added = 0, rows = 0;
    int rc;
    if (file) {
        rc = add_file(path, file, &added, &rows);
    } else {
        cJSON *list = from_flags(kind, planned, actual, features, dc);
        if (!list) return EXIT_USAGE;
        added = 1;
        rc = send_batch(path, list, &rows);
    }
    if (rc == EXIT_OK)
        printf("added %lld exception(s); the site keeps %lld\n", (long long)added, (long long)rows);
    return rc;
}

/* The site's answer, readably: seconds, where from, confidence, escalation. */
static void print_prediction(const cJSON *reply, double planned)
{
    double s = 0, local = 0;
    int64_t version = 0;
    const char *why = jsonx_str(reply, "low_because"), *esc = jsonx_str(reply, "escalation");
    jsonx_num(reply, "seconds", &s);
    jsonx_int(reply, "version", 0, INT64_MAX, &version);
    printf("%.0f s (planned %.0f s), %s%s%s", s, planned, jsonx_str(reply, "source"),
           version ? ", model " : "", version ? jsonx_str(reply, "model") : "");
    if (version) printf(" site version %lld", (long long)version);
    if (jsonx_num(reply, "local_seconds", &local) == OP_OK) printf(" (local answer %.0f s)", local);
    printf("; confidence %s%s%s\n",
           jsonx_str(reply, "confidence") ? jsonx_str(reply, "confidence") : "?", why ? ": " : "",
           why ? why : "");
    if (esc) printf("not escalated: %s\n", esc);
}

/*
 * outpost predict SITE_DIR|SOCKET --planned S --features JSON [--model NAME]
 * [--data-class C]: the site's model's answer for one leg (or a larger
 * model's, escalated), through its local socket.
 */
int cli__cmd_predict(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"planned", required_argument, NULL, 'p'},
                                         {"features", required_argument, NULL, 'f'},
                                         {"model", required_argument, NULL, 'm'},
                                         {"data-class", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    const char *planned = NULL, *features = "{}", *model = NULL, *data_class = NULL;
    int code;
    while ((code = cli__getopt(c, argc, argv, "", opts)) != -1) {
        switch (code) {
        case 'h':
            cli__usage(stdout, "predict");
            return EXIT_OK;
        case 'p':
            planned = optarg;
            break;
        case 'f':
            features = optarg;
            break;
        case 'm':
        case 'd':
            *(code == 'm' ? &model : &data_class) = optarg;
            break;
        default:
            return cli__usage_error(c);
        }
    }
    double p = 0;
    cJSON *f = cJSON_Parse(features);
    if (optind != argc - 1 || !planned || util_parse_double(planned, &p) != OP_OK ||
        !cJSON_IsObject(f)) {
        cJSON_Delete(f);
        fprintf(stderr, "outpost predict: SITE_DIR --planned S --features JSON (an object)\n");
        return EXIT_USAGE;
    }
    char err[512];
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    if (!req) {
        cJSON_Delete(f);
        return EXIT_FAILURE_RUNTIME;
    }
    cJSON_AddStringToObject(req, "op", "predict");
    cJSON_AddNumberToObject(req, "planned_s", p);
    cJSON_AddItemToObject(req, "features", f);
    if (model) cJSON_AddStringToObject(req, "model", model);
    if (data_class) cJSON_AddStringToObject(req, "data_class", data_class);
    int rc = localsock_call(argv[optind], req, LOCALSOCK_CALL_TIMEOUT_MS, &reply, err, sizeof err);
    cJSON_Delete(req);
    if (rc != OP_OK) {
        fprintf(stderr, "outpost: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    const char *error = jsonx_str(reply, "error");
    if (error) {
        fprintf(stderr, "outpost predict: the site refused: %s\n", error);
        rc = EXIT_REJECTED;
    } else if (c->json) {
        char *text = cJSON_PrintUnformatted(reply);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        print_prediction(reply, p);
    }
    cJSON_Delete(reply);
    return rc;
}
