/*
 * Unit tests for artifact: the hub's signed manifest of an artifact's
 * chunks (made, written, opened back; one signed by another key or altered
 * refused; hostile sizes refused), each chunk checked against it (a wrong
 * or cut chunk refused), the bitmap of chunks held and the plan of what to
 * ask for next (a resume asks only for missing chunks, never one held or
 * in flight), model references, lineages and records, and the "model"
 * field of a job spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "core/artifact.h"
#include "core/jobspec.h"
#include "helpers/testkit.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096
#define SIZE (CHUNK * 5 + 100) /* six chunks, the last of 100 bytes */

/* An artifact of SIZE bytes and its manifest, signed by hub. */
typedef struct fixture {
    uint8_t data[SIZE];
    artifact_manifest m;
    char *text;
    char sig[129];
    ident hub;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || sodium_init() < 0) return -1;
    for (size_t i = 0; i < SIZE; i++)
        f->data[i] = (uint8_t)(i * 7 + i / 300);
    uint8_t whole[32], chunks[6][32];
    crypto_hash_sha256(whole, f->data, SIZE);
    for (int k = 0; k < 6; k++)
        crypto_hash_sha256(chunks[k], f->data + k * CHUNK, k < 5 ? CHUNK : SIZE - 5 * CHUNK);
    if (artifact_manifest_make(whole, SIZE, CHUNK, (const uint8_t(*)[32])chunks, &f->m) != OP_OK)
        return -1;
    testkit_ident(&f->hub, "hub", 3);
    f->text = artifact_manifest_text(&f->m);
    artifact_sign(&f->hub, ARTIFACT_MANIFEST_DOMAIN, f->text, f->sig);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    artifact_manifest_clear(&f->m);
    free(f->text);
    free(f);
    return 0;
}

static void test_manifest_round_trip(void **state)
{
    fixture *f = *state;
    artifact_manifest back;
    char err[200];
    assert_int_equal(artifact_manifest_open(f->text, f->sig, f->hub.pk, &back, err, sizeof err),
                     OP_OK);
    assert_int_equal(back.n_chunks, 6);
    assert_int_equal(back.size_bytes, SIZE);
    assert_int_equal(back.chunk_bytes, CHUNK);
    assert_string_equal(back.sha256_hex, f->m.sha256_hex);
    assert_memory_equal(back.chunk_sha, f->m.chunk_sha, 6 * 32);
    assert_int_equal(artifact_chunk_len(&back, 5), 100);
    assert_int_equal(artifact_chunk_len(&back, 6), 0);
    artifact_manifest_clear(&back);
    artifact_manifest_clear(&back); /* twice is safe */
}

static void test_manifest_not_signed_by_the_hub_refused(void **state)
{
    fixture *f = *state;
    artifact_manifest back;
    char err[200], sig[129];
    ident other;
    testkit_ident(&other, "site-1", 9);
    /* signed by another key: a site or a peer making up a manifest */
    artifact_sign(&other, ARTIFACT_MANIFEST_DOMAIN, f->text, sig);
    assert_int_equal(artifact_manifest_open(f->text, sig, f->hub.pk, &back, err, sizeof err),
                     OP_ESIG);
    assert_non_null(strstr(err, "not signed by the hub"));
    /* the hub's signature over another domain (a model record) */
    artifact_sign(&f->hub, ARTIFACT_RECORD_DOMAIN, f->text, sig);
    assert_int_equal(artifact_manifest_open(f->text, sig, f->hub.pk, &back, err, sizeof err),
                     OP_ESIG);
    /* the hub's manifest with one chunk hash changed */
    char *altered = strdup(f->text);
    char *chunks = strstr(altered, "\"chunks\":\"") + 10;
    chunks[3] = chunks[3] == 'a' ? 'b' : 'a';
    assert_int_equal(artifact_manifest_open(altered, f->sig, f->hub.pk, &back, err, sizeof err),
                     OP_ESIG);
    free(altered);
    /* no signature, junk signature */
    assert_int_equal(artifact_manifest_open(f->text, "", f->hub.pk, &back, err, sizeof err),
                     OP_ESIG);
    assert_int_equal(artifact_manifest_open(f->text, NULL, f->hub.pk, &back, err, sizeof err),
                     OP_ESIG);
    assert_int_equal(artifact_manifest_open(NULL, f->sig, f->hub.pk, &back, err, sizeof err),
                     OP_ETOOBIG);
}

/* A manifest the hub signed but whose fields do not add up is refused too. */
static void test_signed_manifest_with_bad_fields_refused(void **state)
{
    fixture *f = *state;
    /* each with SHA where the artifact's hash goes */
    static const char *bad[] = {
        "{\"v\":1,\"sha256\":\"SHA\",\"size\":0,\"chunk_bytes\":4096,\"chunks\":\"\"}",
        "{\"v\":1,\"sha256\":\"SHA\",\"size\":20580,\"chunk_bytes\":4096,\"chunks\":\"00\"}",
        "{\"v\":1,\"sha256\":\"SHA\",\"size\":20580,\"chunk_bytes\":100,\"chunks\":\"\"}",
        "{\"v\":2,\"sha256\":\"SHA\",\"size\":1,\"chunk_bytes\":4096,\"chunks\":\"\"}",
        "{\"v\":1,\"sha256\":\"SHA\",\"size\":99999999999,\"chunk_bytes\":4096,\"chunks\":\"\"}",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], sig[129], err[200];
        artifact_manifest back;
        const char *at = strstr(bad[i], "SHA");
        if (at)
            snprintf(text, sizeof text, "%.*s%s%s", (int)(at - bad[i]), bad[i], f->m.sha256_hex,
                     at + 3);
        else
            snprintf(text, sizeof text, "%s", bad[i]);
        artifact_sign(&f->hub, ARTIFACT_MANIFEST_DOMAIN, text, sig);
        int rc = artifact_manifest_open(text, sig, f->hub.pk, &back, err, sizeof err);
        assert_true(rc == OP_EINVAL || rc == OP_ETOOBIG);
        assert_null(back.chunk_sha);
    }
    uint8_t whole[32] = {0}, chunks[1][32] = {{0}};
    artifact_manifest m;
    assert_int_equal(artifact_manifest_make(whole, 0, CHUNK, (const uint8_t(*)[32])chunks, &m),
                     OP_EINVAL);
    assert_int_equal(artifact_manifest_make(whole, ARTIFACT_MAX_BYTES + 1, ARTIFACT_CHUNK_BYTES,
                                            (const uint8_t(*)[32])chunks, &m),
                     OP_EINVAL);
}

static void test_wrong_chunk_refused(void **state)
{
    fixture *f = *state;
    for (int k = 0; k < 6; k++)
        assert_int_equal(artifact_chunk_check(&f->m, k, f->data + k * CHUNK,
                                              (size_t)artifact_chunk_len(&f->m, k)),
                         OP_OK);
    /* another chunk's bytes under this index, one byte changed, cut short, out of range */
    assert_int_equal(artifact_chunk_check(&f->m, 1, f->data, CHUNK), OP_ESIG);
    uint8_t copy[CHUNK];
    memcpy(copy, f->data + 2 * CHUNK, CHUNK);
    copy[CHUNK / 2] ^= 1;
    assert_int_equal(artifact_chunk_check(&f->m, 2, copy, CHUNK), OP_ESIG);
    assert_int_equal(artifact_chunk_check(&f->m, 2, f->data + 2 * CHUNK, CHUNK - 1), OP_EINVAL);
    assert_int_equal(artifact_chunk_check(&f->m, 5, f->data + 5 * CHUNK, CHUNK), OP_EINVAL);
    assert_int_equal(artifact_chunk_check(&f->m, 6, f->data, 1), OP_EINVAL);
    assert_int_equal(artifact_chunk_check(&f->m, -1, f->data, CHUNK), OP_EINVAL);
}

static void test_resume_asks_only_for_missing_chunks(void **state)
{
    (void)state;
    enum { N = 100 };
    uint8_t held[13] = {0}, asked[13] = {0};
    int64_t out[N];
    assert_int_equal(artifact_bitmap_bytes(N), 13);
    /* a fetch cut after chunks 0-39 and 60 were written; 40-47 were in flight */
    for (int i = 0; i < 40; i++)
        artifact_bit_set(held, i);
    artifact_bit_set(held, 60);
    for (int i = 40; i < 48; i++)
        artifact_bit_set(asked, i);
    assert_int_equal(artifact_bits_count(held, N), 41);
    /* after a restart (nothing in flight) exactly the 59 missing ones, none held */
    int n = artifact_missing(held, NULL, N, 0, out, N);
    assert_int_equal(n, 59);
    for (int i = 0; i < n; i++) {
        assert_false(artifact_bit(held, out[i]));
        assert_true(out[i] >= 40 && out[i] != 60);
    }
    /* with chunks in flight, neither held nor asked ones; a window of 16 from where it was */
    n = artifact_missing(held, asked, N, 48, out, 16);
    assert_int_equal(n, 16);
    assert_int_equal(out[0], 48);
    assert_int_equal(out[12], 61); /* 60 is held */
    /* wrapping round from the end */
    n = artifact_missing(held, asked, N, 98, out, 4);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], 98);
    assert_int_equal(out[2], 48);
    /* all held: nothing to ask */
    for (int i = 0; i < N; i++)
        artifact_bit_set(held, i);
    assert_int_equal(artifact_missing(held, NULL, N, 0, out, N), 0);
    artifact_bit_clear(held, 77);
    assert_int_equal(artifact_missing(held, NULL, N, 0, out, N), 1);
    assert_int_equal(out[0], 77);
}

static void test_model_refs_and_names(void **state)
{
    (void)state;
    char name[64];
    int64_t v;
    assert_int_equal(artifact_parse_ref("eta", name, &v), OP_OK);
    assert_string_equal(name, "eta");
    assert_int_equal(v, 0);
    assert_int_equal(artifact_parse_ref("eta_v2-x@17", name, &v), OP_OK);
    assert_string_equal(name, "eta_v2-x");
    assert_int_equal(v, 17);
    static const char *bad[] = {"",     "@3",  "eta@",    "eta@0", "eta@-1", "eta@x",
                                "../x", "a/b", "eta@1@2", "e ta",  NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(artifact_parse_ref(bad[i], name, &v), OP_EINVAL);
    char long_name[100];
    memset(long_name, 'a', 70);
    long_name[70] = '\0';
    assert_int_equal(artifact_parse_ref(long_name, name, &v), OP_EINVAL);
    assert_true(
        artifact_sha_ok("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(
        artifact_sha_ok("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(artifact_sha_ok("0123"));
}

static void test_lineage_and_record(void **state)
{
    fixture *f = *state;
    char err[200];
    cJSON *good =
        cJSON_Parse("{\"site\":\"wh-1\",\"from\":\"2019-03-01\",\"to\":1700000000000,"
                    "\"rows\":9000,\"metrics\":{\"mae\":41.5,\"rmse\":60},\"note\":\"x\"}");
    assert_int_equal(artifact_lineage_check(good, err, sizeof err), OP_OK);
    static const char *bad[] = {"[]",
                                "{\"rowz\":1}",
                                "{\"rows\":-1}",
                                "{\"site\":\"a b\"}",
                                "{\"metrics\":{\"mae\":\"low\"}}",
                                "{\"metrics\":[1]}",
                                NULL};
    for (int i = 0; bad[i]; i++) {
        cJSON *l = cJSON_Parse(bad[i]);
        assert_int_not_equal(artifact_lineage_check(l, err, sizeof err), OP_OK);
        cJSON_Delete(l);
    }
    artifact_record r = {.version = 3,
                         .size_bytes = SIZE,
                         .created_at_ms = 1700000000000LL,
                         .parent = 2,
                         .data_class = DATA_SITE_PRIVATE,
                         .lineage = good};
    snprintf(r.name, sizeof r.name, "eta");
    snprintf(r.sha256_hex, sizeof r.sha256_hex, "%s", f->m.sha256_hex);
    snprintf(r.created_by, sizeof r.created_by, "op-1");
    snprintf(r.origin, sizeof r.origin, "wh-1");
    char *text = artifact_record_text(&r), sig[129];
    assert_non_null(strstr(text, "\"data_class\":\"site-private\""));
    assert_non_null(strstr(text, "\"mae\":41.5"));
    artifact_sign(&f->hub, ARTIFACT_RECORD_DOMAIN, text, sig);
    assert_int_equal(artifact_verify(f->hub.pk, ARTIFACT_RECORD_DOMAIN, text, sig), OP_OK);
    assert_int_equal(artifact_verify(f->hub.pk, ARTIFACT_MANIFEST_DOMAIN, text, sig), OP_ESIG);
    text[10] ^= 1;
    assert_int_equal(artifact_verify(f->hub.pk, ARTIFACT_RECORD_DOMAIN, text, sig), OP_ESIG);
    free(text);
    cJSON_Delete(good);
}

static void test_jobspec_model_field(void **state)
{
    (void)state;
    jobspec spec;
    char err[200];
    const char *ok = "{\"kind\":\"noop\",\"model\":\"eta@4\",\"model_sha256\":"
                     "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                     "\"model_bytes\":1000}";
    assert_int_equal(jobspec_parse(ok, strlen(ok), &spec, err, sizeof err), OP_OK);
    assert_string_equal(spec.model, "eta");
    assert_int_equal(spec.model_version, 4);
    assert_int_equal(spec.model_bytes, 1000);
    jobspec_clear(&spec);
    static const char *bad[] = {"{\"kind\":\"noop\",\"model\":\"../etc\"}",
                                "{\"kind\":\"noop\",\"model\":7}",
                                "{\"kind\":\"noop\",\"model\":\"eta@0\"}",
                                "{\"kind\":\"noop\",\"model_sha256\":\"00\"}",
                                "{\"kind\":\"noop\",\"model\":\"eta\",\"model_sha256\":\"ABC\"}",
                                "{\"kind\":\"noop\",\"model\":\"eta\",\"model_bytes\":-5}",
                                NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(jobspec_parse(bad[i], strlen(bad[i]), &spec, err, sizeof err), OP_EINVAL);
        assert_non_null(strstr(err, "model"));
    }
}

/* The chunk codec agrees with libsodium's, both ways, at every length; junk is refused. */
static void test_chunk_base64(void **state)
{
    (void)state;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len < sizeof data; len++) {
        char *mine = artifact_b64_encode(data, len), *ref = util_b64_encode(data, len);
        assert_string_equal(mine, ref);
        uint8_t *back = NULL;
        size_t back_len = 0;
        assert_int_equal(artifact_b64_decode(ref, sizeof data, &back, &back_len), OP_OK);
        assert_int_equal(back_len, len);
        assert_memory_equal(back, data, len);
        free(back);
        free(mine);
        free(ref);
    }
    static const char *bad[] = {"abc", "ab=c", "a===", "ab\nc", "ab c", "====", "\xff\xff\xff\xff",
                                NULL};
    for (int i = 0; bad[i]; i++) {
        uint8_t *out = NULL;
        size_t n;
        assert_int_not_equal(artifact_b64_decode(bad[i], 100, &out, &n), OP_OK);
        assert_null(out);
    }
    uint8_t *out = NULL;
    size_t n;
    assert_int_equal(artifact_b64_decode("AAAAAAAA", 5, &out, &n), OP_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_manifest_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_not_signed_by_the_hub_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_signed_manifest_with_bad_fields_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_chunk_refused, setup, teardown),
        cmocka_unit_test(test_resume_asks_only_for_missing_chunks),
        cmocka_unit_test(test_model_refs_and_names),
        cmocka_unit_test_setup_teardown(test_lineage_and_record, setup, teardown),
        cmocka_unit_test(test_jobspec_model_field),
        cmocka_unit_test(test_chunk_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
