/*
 * Unit tests for token: join tokens created and parsed back, altered or
 * foreign tokens refused, expiry, and hostile strings refused without
 * crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "helpers/testkit.h"
#include "wire/ident.h"
#include "wire/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1700000000000LL
#define HOUR_MS 3600000LL

/* Builds "opt1.<b64url(claims_json)>.<b64url(sig)>" signed by hub over the first two parts. */
static char *forge(const ident *hub, const char *claims_json)
{
    char *claims = util_b64url_encode(claims_json, strlen(claims_json));
    assert_non_null(claims);
    size_t signed_len = 5 + strlen(claims);
    char *signed_part = malloc(signed_len + 1);
    assert_non_null(signed_part);
    snprintf(signed_part, signed_len + 1, "opt1.%s", claims);
    uint8_t sig[64];
    ident_sign(hub, signed_part, signed_len, sig);
    char *sig_b64 = util_b64url_encode(sig, 64);
    size_t total = signed_len + 1 + strlen(sig_b64) + 1;
    char *text = malloc(total);
    assert_non_null(text);
    snprintf(text, total, "%s.%s", signed_part, sig_b64);
    free(claims);
    free(signed_part);
    free(sig_b64);
    return text;
}

static void test_create_parse_round_trip(void **state)
{
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    char *text = NULL;
    token made, parsed;
    assert_int_equal(token_create(&hub, "car", "site-1", NULL, NOW_MS + HOUR_MS, &text, &made),
                     OP_OK);
    assert_non_null(text);
    assert_memory_equal(text, "opt1.", 5);
    assert_true(strlen(text) <= TOKEN_MAX_TEXT);
    /* Pasteable in a shell: only the base64url alphabet and the two dots. */
    assert_int_equal(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                  "-_.1"),
                     strlen(text));
    assert_int_equal(strlen(made.tid), 32);
    assert_string_equal(made.cls, "car");
    assert_string_equal(made.hub_id, "hub-1");
    assert_memory_equal(made.hub_pk, hub.pk, 32);
    assert_true(made.expires_ms == NOW_MS + HOUR_MS);

    char reason[128] = "";
    assert_int_equal(token_parse(text, &parsed, reason, sizeof reason), OP_OK);
    assert_string_equal(parsed.tid, made.tid);
    assert_string_equal(parsed.cls, "car");
    assert_string_equal(parsed.hub_id, "hub-1");
    assert_memory_equal(parsed.hub_pk, hub.pk, 32);
    assert_true(parsed.expires_ms == NOW_MS + HOUR_MS);

    assert_int_equal(token_verify(text, hub.pk, NOW_MS, &parsed, reason, sizeof reason), OP_OK);
    assert_string_equal(parsed.tid, made.tid);

    /* Two tokens get different ids. */
    char *text2 = NULL;
    token made2;
    assert_int_equal(token_create(&hub, "car", "site-1", NULL, NOW_MS + HOUR_MS, &text2, &made2),
                     OP_OK);
    assert_string_not_equal(made.tid, made2.tid);
    assert_string_not_equal(text, text2);
    free(text);
    free(text2);
    ident_wipe(&hub);
}

static void test_all_classes(void **state)
{
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    static const char *classes[] = {"pod", "car", "dc"};
    for (int i = 0; i < 3; i++) {
        char *text = NULL;
        token t;
        char reason[128];
        assert_true(token_valid_class(classes[i]));
        assert_int_equal(token_create(&hub, classes[i], "site-1", NULL, NOW_MS + 1, &text, &t),
                         OP_OK);
        assert_int_equal(token_verify(text, hub.pk, NOW_MS, &t, reason, sizeof reason), OP_OK);
        assert_string_equal(t.cls, classes[i]);
        free(text);
    }
    ident_wipe(&hub);
}

static void test_invalid_class_refused(void **state)
{
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    static const char *bad[] = {"", "Pod", "pods", "truck", "dc ", NULL};
    for (int i = 0; i < 6; i++) {
        char *text = (char *)0x1;
        token t;
        assert_false(token_valid_class(bad[i]));
        assert_int_equal(token_create(&hub, bad[i], "site-1", NULL, NOW_MS + HOUR_MS, &text, &t),
                         OP_EINVAL);
        assert_ptr_equal(text, (char *)0x1); /* nothing allocated */
    }
    ident_wipe(&hub);
}

static void test_altered_token_refused(void **state)
{
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    char *text = NULL;
    token t;
    char reason[128];
    assert_int_equal(token_create(&hub, "pod", "site-1", NULL, NOW_MS + HOUR_MS, &text, &t), OP_OK);
    size_t len = strlen(text);
    const char *sig_dot = strrchr(text, '.');
    size_t sig_start = (size_t)(sig_dot - text) + 1;

    /* Flip one character at a time across claims and signature: never accepted. */
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    int refused = 0;
    for (size_t i = 5; i < len; i++) {
        if (i == sig_start - 1) continue; /* the separating dot */
        memcpy(copy, text, len + 1);
        copy[i] = copy[i] == 'A' ? 'B' : 'A';
        int rc = token_parse(copy, &t, reason, sizeof reason);
        if (rc != OP_ESIG && rc != OP_EINVAL) print_error("position %zu: rc %d\n", i, rc);
        assert_true(rc == OP_ESIG || rc == OP_EINVAL);
        refused++;
    }
    assert_true(refused > 100);

    /* Claims rewritten to a longer expiry and re-encoded, keeping the old signature. */
    char *claims_json = NULL;
    {
        char *claims_b64 = strndup(text + 5, sig_start - 1 - 5);
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        assert_int_equal(util_b64url_decode(claims_b64, 1024, &raw, &raw_len), OP_OK);
        claims_json = strndup((const char *)raw, raw_len);
        free(raw);
        free(claims_b64);
    }
    char *exp_at = strstr(claims_json, "\"exp\":");
    assert_non_null(exp_at);
    exp_at[6] = '9'; /* the expiry now starts with 9: far in the future */
    char *claims_b64 = util_b64url_encode(claims_json, strlen(claims_json));
    size_t total = 5 + strlen(claims_b64) + 1 + strlen(text + sig_start) + 1;
    char *tampered = malloc(total);
    snprintf(tampered, total, "opt1.%s.%s", claims_b64, text + sig_start);
    assert_int_equal(token_parse(tampered, &t, reason, sizeof reason), OP_ESIG);
    assert_non_null(strstr(reason, "signature"));
    assert_int_equal(token_verify(tampered, hub.pk, NOW_MS, &t, reason, sizeof reason), OP_ESIG);

    /* Signature truncated or extended. */
    memcpy(copy, text, len + 1);
    copy[len - 4] = '\0';
    assert_int_equal(token_parse(copy, &t, reason, sizeof reason), OP_EINVAL);

    free(tampered);
    free(claims_b64);
    free(claims_json);
    free(copy);
    free(text);
    ident_wipe(&hub);
}

static void test_other_hub_refused(void **state)
{
    ident hub, other;
    testkit_ident(&hub, "hub-1", 7);
    testkit_ident(&other, "hub-1", 8); /* same id, different key */
    char *text = NULL;
    token t;
    char reason[128];
    assert_int_equal(token_create(&other, "dc", "site-1", NULL, NOW_MS + HOUR_MS, &text, &t),
                     OP_OK);
    /* Well formed and self-consistent ... */
    assert_int_equal(token_parse(text, &t, reason, sizeof reason), OP_OK);
    /* ... but not issued by this hub. */
    assert_int_equal(token_verify(text, hub.pk, NOW_MS, &t, reason, sizeof reason), OP_ESIG);
    assert_non_null(strstr(reason, "not issued by this hub"));
    assert_int_equal(token_verify(text, other.pk, NOW_MS, &t, reason, sizeof reason), OP_OK);

    /* Claims carrying this hub's key but signed by another key. */
    char claims[512];
    snprintf(claims, sizeof claims,
             "{\"tid\":\"0123456789abcdef0123456789abcdef\",\"cls\":\"pod\",\"sid\":\"site-1\","
             "\"hub\":\"hub-1\","
             "\"hpk\":\"%s\",\"exp\":%lld}",
             hub.pk_hex, (long long)(NOW_MS + HOUR_MS));
    char *forged = forge(&other, claims);
    assert_int_equal(token_parse(forged, &t, reason, sizeof reason), OP_ESIG);
    assert_int_equal(token_verify(forged, hub.pk, NOW_MS, &t, reason, sizeof reason), OP_ESIG);
    free(forged);
    /* The same claims signed by the hub itself are accepted (checks the forge helper). */
    forged = forge(&hub, claims);
    assert_int_equal(token_verify(forged, hub.pk, NOW_MS, &t, reason, sizeof reason), OP_OK);
    assert_string_equal(t.tid, "0123456789abcdef0123456789abcdef");
    free(forged);
    free(text);
    ident_wipe(&hub);
    ident_wipe(&other);
}

static void test_expired(void **state)
{
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    char *text = NULL;
    token t;
    char reason[128];
    assert_int_equal(token_create(&hub, "pod", "site-1", NULL, NOW_MS, &text, &t), OP_OK);
    assert_int_equal(token_verify(text, hub.pk, NOW_MS - 1, &t, reason, sizeof reason), OP_OK);
    assert_int_equal(token_verify(text, hub.pk, NOW_MS, &t, reason, sizeof reason), OP_EEXPIRED);
    assert_int_equal(token_verify(text, hub.pk, NOW_MS + 5000, &t, reason, sizeof reason),
                     OP_EEXPIRED);
    assert_non_null(strstr(reason, "expired 5 s ago"));
    /* Parsing alone does not look at the clock. */
    assert_int_equal(token_parse(text, &t, reason, sizeof reason), OP_OK);
    free(text);
    ident_wipe(&hub);
}

static void test_garbage_strings(void **state)
{
    token t;
    char reason[128];
    static const char *bad[] = {
        "",
        "opt1",
        "opt1.",
        "opt1..",
        "opt1...",
        "opt1.a.b",
        "opt1.a",
        "opt2.eyJ9.AAAA",
        "OPT1.a.b",
        "opt1.!!!!.????",
        "opt1.e30.AAAA", /* "{}" with a short signature */
        "opt1.e30." /* "{}" and an empty signature */,
        "opt1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "opt1.W10."
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        " opt1.a.b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reason[0] = '\0';
        int rc = token_parse(bad[i], &t, reason, sizeof reason);
        if (rc != OP_EINVAL) print_error("input '%s': rc %d\n", bad[i], rc);
        assert_int_equal(rc, OP_EINVAL);
        assert_true(reason[0] != '\0');
    }
    assert_int_equal(token_parse(NULL, &t, reason, sizeof reason), OP_EINVAL);

    /* Very long input: refused by its length. */
    size_t long_len = 100000;
    char *long_text = malloc(long_len + 1);
    assert_non_null(long_text);
    memcpy(long_text, "opt1.", 5);
    memset(long_text + 5, 'A', long_len - 5);
    long_text[long_len] = '\0';
    assert_int_equal(token_parse(long_text, &t, reason, sizeof reason), OP_EINVAL);
    /* Just over the bound with a dot in it. */
    long_text[TOKEN_MAX_TEXT - 10] = '.';
    long_text[TOKEN_MAX_TEXT + 1] = '\0';
    assert_int_equal(token_parse(long_text, &t, reason, sizeof reason), OP_EINVAL);
    free(long_text);
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    assert_int_equal(token_verify("opt1.a.b", hub.pk, NOW_MS, &t, reason, sizeof reason),
                     OP_EINVAL);
    ident_wipe(&hub);
}

static void test_malformed_claims_signed(void **state)
{
    /* Correctly signed tokens whose claims are wrong in one way each. */
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    char good_hpk[65];
    snprintf(good_hpk, sizeof good_hpk, "%s", hub.pk_hex);
    const char *tid = "0123456789abcdef0123456789abcdef";
    char claims[8][512];
    snprintf(claims[0], 512, "[1,2]");
    snprintf(claims[1], 512,
             "{\"cls\":\"pod\",\"sid\":\"site-1\",\"hub\":\"hub-1\",\"hpk\":\"%s\",\"exp\":1}",
             good_hpk);
    snprintf(claims[2], 512,
             "{\"tid\":\"short\",\"cls\":\"pod\",\"sid\":\"site-1\",\"hub\":\"hub-1\",\"hpk\":\"%"
             "s\",\"exp\":1}",
             good_hpk);
    snprintf(claims[3], 512,
             "{\"tid\":\"%s\",\"cls\":\"van\",\"sid\":\"site-1\",\"hub\":\"hub-1\",\"hpk\":\"%s\","
             "\"exp\":1}",
             tid, good_hpk);
    snprintf(claims[4], 512,
             "{\"tid\":\"%s\",\"cls\":\"pod\",\"sid\":\"site-1\",\"hub\":\"hub/"
             "1\",\"hpk\":\"%s\",\"exp\":1}",
             tid, good_hpk);
    snprintf(claims[5], 512,
             "{\"tid\":\"%s\",\"cls\":\"pod\",\"sid\":\"site-1\",\"hub\":\"hub-1\",\"hpk\":"
             "\"abcd\",\"exp\":1}",
             tid);
    snprintf(claims[6], 512,
             "{\"tid\":\"%s\",\"cls\":\"pod\",\"sid\":\"site-1\",\"hub\":\"hub-1\",\"hpk\":\"%s\","
             "\"exp\":\"1\"}",
             tid, good_hpk);
    snprintf(claims[7], 512,
             "{\"tid\":\"%s\",\"cls\":\"pod\",\"sid\":\"site-1\",\"hub\":\"hub-1\",\"hpk\":\"%s\"",
             tid, good_hpk); /* truncated JSON */
    for (int i = 0; i < 8; i++) {
        char *text = forge(&hub, claims[i]);
        token t;
        char reason[128];
        int rc = token_parse(text, &t, reason, sizeof reason);
        if (rc != OP_EINVAL) print_error("claims %d: rc %d\n", i, rc);
        assert_int_equal(rc, OP_EINVAL);
        free(text);
    }
    ident_wipe(&hub);
}

static void test_out_of_range_expiry(void **state)
{
    /* An expiry that is not a representable integer must be refused, not cast. The claims are
     * looked at before the signature, so they need not be signed by a known hub. */
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    static const char *exps[] = {"1e300", "-1e300", "1e400", "-1", "9007199254740993"};
    for (int i = 0; i < 5; i++) {
        char claims[512];
        snprintf(claims, sizeof claims,
                 "{\"tid\":\"0123456789abcdef0123456789abcdef\",\"cls\":\"pod\",\"sid\":\"site-1\","
                 "\"hub\":"
                 "\"hub-1\",\"hpk\":\"%s\",\"exp\":%s}",
                 hub.pk_hex, exps[i]);
        char *text = forge(&hub, claims);
        token t;
        char reason[128];
        int rc = token_verify(text, hub.pk, NOW_MS, &t, reason, sizeof reason);
        if (rc != OP_EINVAL) print_error("exp %s: rc %d\n", exps[i], rc);
        assert_int_equal(rc, OP_EINVAL);
        free(text);
    }
    ident_wipe(&hub);
}

static void test_owner(void **state)
{
    /* The owner is a signed claim: named, defaulted to the site, refused when not an id. */
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    char *text = NULL;
    token made, parsed;
    char reason[128];
    assert_int_equal(token_create(&hub, "car", "car-7", "alice", NOW_MS + HOUR_MS, &text, &made),
                     OP_OK);
    assert_string_equal(made.owner, "alice");
    assert_int_equal(token_verify(text, hub.pk, NOW_MS, &parsed, reason, sizeof reason), OP_OK);
    assert_string_equal(parsed.owner, "alice");
    assert_string_equal(parsed.sid, "car-7");
    free(text);
    assert_int_equal(token_create(&hub, "car", "car-8", NULL, NOW_MS + HOUR_MS, &text, &made),
                     OP_OK);
    assert_int_equal(token_parse(text, &parsed, reason, sizeof reason), OP_OK);
    assert_string_equal(parsed.owner, "car-8");
    free(text);
    static const char *bad[] = {"", "al ice", "../x", "a/b",
                                "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        text = NULL;
        assert_int_equal(token_create(&hub, "car", "car-9", bad[i], NOW_MS + 1, &text, &made),
                         OP_EINVAL);
        assert_null(text);
    }
    ident_wipe(&hub);
}

static void test_owner_claims(void **state)
{
    /* Signed claims: without "own" (tokens made before owners) the site owns itself; an "own"
     * that is not an id, or not a string, makes the token malformed. */
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    static const char *owns[] = {
        "", ",\"own\":\"bob\"", ",\"own\":\"b b\"", ",\"own\":\"\"", ",\"own\":7", ",\"own\":null"};
    static const int want[] = {OP_OK, OP_OK, OP_EINVAL, OP_EINVAL, OP_EINVAL, OP_EINVAL};
    static const char *owner[] = {"car-1", "bob"};
    for (size_t i = 0; i < sizeof owns / sizeof owns[0]; i++) {
        char claims[512];
        snprintf(claims, sizeof claims,
                 "{\"tid\":\"0123456789abcdef0123456789abcdef\",\"cls\":\"car\","
                 "\"sid\":\"car-1\",\"hub\":\"hub-1\",\"hpk\":\"%s\",\"exp\":1%s}",
                 hub.pk_hex, owns[i]);
        char *text = forge(&hub, claims);
        token t;
        char reason[128];
        int rc = token_parse(text, &t, reason, sizeof reason);
        if (rc != want[i]) print_error("own %s: rc %d\n", owns[i], rc);
        assert_int_equal(rc, want[i]);
        if (rc == OP_OK) assert_string_equal(t.owner, owner[i]);
        free(text);
    }
    ident_wipe(&hub);
}

static void test_limits(void **state)
{
    /* Limits on what the site may claim are signed claims: round trip, none by default,
     * out-of-range ones refused at creation. */
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    char *text = NULL;
    token made, parsed;
    char reason[128];
    token_limits lim = {.cores = 8, .memory_mb = 4096, .watts = 150.5};
    assert_int_equal(
        token_create_limited(&hub, "car", "car-7", NULL, &lim, NOW_MS + HOUR_MS, &text, &made),
        OP_OK);
    assert_int_equal(token_verify(text, hub.pk, NOW_MS, &parsed, reason, sizeof reason), OP_OK);
    assert_int_equal(parsed.limits.cores, 8);
    assert_int_equal(parsed.limits.memory_mb, 4096);
    assert_true(parsed.limits.watts == 150.5);
    assert_int_equal(made.limits.cores, 8);
    free(text);
    token_limits only_cores = {.cores = 2};
    assert_int_equal(token_create_limited(&hub, "car", "car-7", NULL, &only_cores, NOW_MS + HOUR_MS,
                                          &text, &made),
                     OP_OK);
    assert_int_equal(token_parse(text, &parsed, reason, sizeof reason), OP_OK);
    assert_int_equal(parsed.limits.cores, 2);
    assert_int_equal(parsed.limits.memory_mb, 0);
    assert_true(parsed.limits.watts == 0);
    free(text);
    assert_int_equal(token_create(&hub, "car", "car-8", NULL, NOW_MS + HOUR_MS, &text, &made),
                     OP_OK);
    assert_int_equal(token_parse(text, &parsed, reason, sizeof reason), OP_OK);
    assert_int_equal(parsed.limits.cores, 0);
    free(text);
    token_limits bad[] = {{.cores = -1},
                          {.cores = TOKEN_MAX_CORES + 1},
                          {.memory_mb = -5},
                          {.watts = -1},
                          {.watts = TOKEN_MAX_WATTS * 2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        text = NULL;
        assert_int_equal(
            token_create_limited(&hub, "car", "car-9", NULL, &bad[i], NOW_MS + 1, &text, &made),
            OP_EINVAL);
        assert_null(text);
    }
    ident_wipe(&hub);
}

static void test_limit_claims(void **state)
{
    /* A "lim" that is not an object, or holds a negative, zero, fractional (cores, memory),
     * too large or non-numeric limit makes the token malformed, even signed. */
    ident hub;
    testkit_ident(&hub, "hub-1", 7);
    static const char *lims[] = {",\"lim\":{}",
                                 ",\"lim\":{\"cores\":4,\"watts\":0.5}",
                                 ",\"lim\":7",
                                 ",\"lim\":{\"cores\":-4}",
                                 ",\"lim\":{\"cores\":0}",
                                 ",\"lim\":{\"cores\":2.5}",
                                 ",\"lim\":{\"cores\":5000}",
                                 ",\"lim\":{\"memory_mb\":\"1\"}",
                                 ",\"lim\":{\"watts\":1e300}"};
    static const int want[] = {OP_OK,     OP_OK,     OP_EINVAL, OP_EINVAL, OP_EINVAL,
                               OP_EINVAL, OP_EINVAL, OP_EINVAL, OP_EINVAL};
    for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
        char claims[512];
        snprintf(claims, sizeof claims,
                 "{\"tid\":\"0123456789abcdef0123456789abcdef\",\"cls\":\"car\","
                 "\"sid\":\"car-1\",\"hub\":\"hub-1\",\"hpk\":\"%s\",\"exp\":1%s}",
                 hub.pk_hex, lims[i]);
        char *text = forge(&hub, claims);
        token t;
        char reason[128];
        int rc = token_parse(text, &t, reason, sizeof reason);
        if (rc != want[i]) print_error("lim %s: rc %d\n", lims[i], rc);
        assert_int_equal(rc, want[i]);
        free(text);
    }
    ident_wipe(&hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_parse_round_trip),
        cmocka_unit_test(test_all_classes),
        cmocka_unit_test(test_invalid_class_refused),
        cmocka_unit_test(test_altered_token_refused),
        cmocka_unit_test(test_other_hub_refused),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_garbage_strings),
        cmocka_unit_test(test_malformed_claims_signed),
        cmocka_unit_test(test_out_of_range_expiry),
        cmocka_unit_test(test_owner),
        cmocka_unit_test(test_owner_claims),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_limit_claims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
