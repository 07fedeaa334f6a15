/*
 * Unit tests for util: hex and base64 codecs, SHA-256, integer parsing,
 * identifiers, bounded file reads, atomic writes and directory helpers.
 * File tests work inside a fresh mkdtemp directory removed by the teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/os.h"
#include "base/timer.h"
#include "base/util.h"
#include "helpers/testkit.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * An atomic write to a path that is not a regular file writes to it in
 * place: `outpost route --out /dev/null` run as root used to rename its
 * temporary file over /dev/null and leave a regular file there. A FIFO with
 * the test holding its read end stands in for /dev/null.
 */
static void test_atomic_write_keeps_a_fifo(void **state)
{
    (void)state;
    char dir[256], path[300], got[16] = "";
    assert_int_equal(testkit_mkdtemp(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDWR | O_NONBLOCK); /* a reader, so the writer does not block */
    assert_true(rd >= 0);
    assert_int_equal(os_write_file_atomic(path, "plan", 4, 0644), OP_OK);
    assert_int_equal(read(rd, got, sizeof got), 4);
    assert_memory_equal(got, "plan", 4);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    close(rd);
    unlink(path);
    rmdir(dir);
}

static void test_hex_round_trip(void **state)
{
    uint8_t bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    char hex[513];
    util_hex(bytes, sizeof bytes, hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f", 32);
    assert_string_equal(hex + 510, "ff");
    uint8_t back[256];
    assert_int_equal(util_unhex(hex, back, sizeof back), OP_OK);
    assert_memory_equal(back, bytes, sizeof bytes);

    uint8_t two[2];
    assert_int_equal(util_unhex("ABcd", two, 2), OP_OK);
    assert_int_equal(two[0], 0xab);
    assert_int_equal(two[1], 0xcd);
}

static void test_unhex_rejects_bad_input(void **state)
{
    uint8_t out[4];
    assert_int_equal(util_unhex("0011223", out, 4), OP_EINVAL);    /* too short, odd */
    assert_int_equal(util_unhex("001122", out, 4), OP_EINVAL);     /* too short */
    assert_int_equal(util_unhex("0011223344", out, 4), OP_EINVAL); /* too long */
    assert_int_equal(util_unhex("0011223g", out, 4), OP_EINVAL);   /* not hex */
    assert_int_equal(util_unhex("zz112233", out, 4), OP_EINVAL);
    assert_int_equal(util_unhex("00 11223", out, 4), OP_EINVAL);
    assert_int_equal(util_unhex("", out, 4), OP_EINVAL);
    assert_int_equal(util_unhex("", out, 0), OP_OK);
}

static void test_sha256_known_vectors(void **state)
{
    char out[65];
    util_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    util_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_b64_round_trip(void **state)
{
    static const struct {
        const char *plain;
        const char *encoded;
    } vectors[] = {{"", ""},
                   {"f", "Zg=="},
                   {"fo", "Zm8="},
                   {"foo", "Zm9v"},
                   {"foob", "Zm9vYg=="},
                   {"fooba", "Zm9vYmE="},
                   {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t len = strlen(vectors[i].plain);
        char *enc = util_b64_encode(vectors[i].plain, len);
        assert_non_null(enc);
        assert_string_equal(enc, vectors[i].encoded);
        uint8_t *dec = NULL;
        size_t dec_len = 99;
        assert_int_equal(util_b64_decode(enc, 1024, &dec, &dec_len), OP_OK);
        assert_int_equal(dec_len, len);
        if (len) assert_memory_equal(dec, vectors[i].plain, len);
        free(dec);
        free(enc);
    }
    /* Binary bytes that use '+' and '/' in the standard alphabet. */
    uint8_t bin[3] = {0xfb, 0xff, 0xfe};
    char *enc = util_b64_encode(bin, 3);
    assert_string_equal(enc, "+//+");
    free(enc);
}

static void test_b64url_round_trip(void **state)
{
    uint8_t bin[3] = {0xfb, 0xff, 0xfe};
    char *enc = util_b64url_encode(bin, 3);
    assert_non_null(enc);
    assert_string_equal(enc, "-__-");
    uint8_t *dec = NULL;
    size_t dec_len = 0;
    assert_int_equal(util_b64url_decode(enc, 3, &dec, &dec_len), OP_OK);
    assert_int_equal(dec_len, 3);
    assert_memory_equal(dec, bin, 3);
    free(dec);
    free(enc);

    /* No padding in the URL variant. */
    enc = util_b64url_encode("f", 1);
    assert_string_equal(enc, "Zg");
    assert_int_equal(util_b64url_decode(enc, 16, &dec, &dec_len), OP_OK);
    assert_int_equal(dec_len, 1);
    assert_int_equal(dec[0], 'f');
    free(dec);
    free(enc);

    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    enc = util_b64url_encode(all, sizeof all);
    assert_null(strpbrk(enc, "+/="));
    assert_int_equal(util_b64url_decode(enc, sizeof all, &dec, &dec_len), OP_OK);
    assert_int_equal(dec_len, sizeof all);
    assert_memory_equal(dec, all, sizeof all);
    free(dec);
    free(enc);
}

static void test_b64_rejects_bad_input(void **state)
{
    uint8_t *dec = (uint8_t *)"untouched";
    size_t dec_len = 0;
    assert_int_equal(util_b64_decode("Zm9v!", 64, &dec, &dec_len), OP_EINVAL);
    assert_int_equal(util_b64_decode("Zg", 64, &dec, &dec_len), OP_EINVAL); /* missing pad */
    assert_int_equal(util_b64_decode("Zg=", 64, &dec, &dec_len), OP_EINVAL);
    assert_int_equal(util_b64_decode("-__-", 64, &dec, &dec_len), OP_EINVAL); /* url alphabet */
    assert_int_equal(util_b64_decode("Zm9v Zm9v", 64, &dec, &dec_len), OP_EINVAL);
    assert_int_equal(util_b64url_decode("+//+", 64, &dec, &dec_len), OP_EINVAL);
    assert_int_equal(util_b64url_decode("Zg==", 64, &dec, &dec_len), OP_EINVAL); /* padding */
    assert_int_equal(util_b64url_decode("Z", 64, &dec, &dec_len), OP_EINVAL);    /* 6 bits */
    assert_int_equal(util_b64url_decode("Zh", 64, &dec, &dec_len), OP_EINVAL);   /* stray bits */
    /* Nothing was handed out on failure. */
    assert_string_equal((const char *)dec, "untouched");
}

static void test_b64_max_len(void **state)
{
    uint8_t data[100];
    memset(data, 0x5a, sizeof data);
    char *enc = util_b64_encode(data, sizeof data);
    char *enc_url = util_b64url_encode(data, sizeof data);
    uint8_t *dec = NULL;
    size_t dec_len = 0;
    assert_int_equal(util_b64_decode(enc, 99, &dec, &dec_len), OP_ETOOBIG);
    assert_int_equal(util_b64_decode(enc, 10, &dec, &dec_len), OP_ETOOBIG);
    assert_int_equal(util_b64url_decode(enc_url, 99, &dec, &dec_len), OP_ETOOBIG);
    assert_int_equal(util_b64url_decode(enc_url, 0, &dec, &dec_len), OP_ETOOBIG);
    assert_null(dec);
    assert_int_equal(util_b64_decode(enc, 100, &dec, &dec_len), OP_OK);
    assert_int_equal(dec_len, 100);
    free(dec);
    dec = NULL;
    assert_int_equal(util_b64url_decode(enc_url, 100, &dec, &dec_len), OP_OK);
    assert_int_equal(dec_len, 100);
    assert_memory_equal(dec, data, 100);
    free(dec);
    free(enc);
    free(enc_url);

    /* Exactly max_len decoded bytes are accepted whatever the padding (n mod 3). */
    for (size_t n = 95; n <= 100; n++) {
        enc = util_b64_encode(data, n);
        enc_url = util_b64url_encode(data, n);
        dec = NULL;
        assert_int_equal(util_b64_decode(enc, n, &dec, &dec_len), OP_OK);
        assert_int_equal(dec_len, n);
        free(dec);
        dec = NULL;
        assert_int_equal(util_b64url_decode(enc_url, n, &dec, &dec_len), OP_OK);
        assert_int_equal(dec_len, n);
        free(dec);
        dec = NULL;
        assert_int_equal(util_b64_decode(enc, n - 1, &dec, &dec_len), OP_ETOOBIG);
        assert_int_equal(util_b64url_decode(enc_url, n - 1, &dec, &dec_len), OP_ETOOBIG);
        assert_null(dec);
        free(enc);
        free(enc_url);
    }
}

static void test_parse_i64(void **state)
{
    int64_t v = 0;
    assert_int_equal(util_parse_i64("42", 0, 100, &v), OP_OK);
    assert_int_equal(v, 42);
    assert_int_equal(util_parse_i64("-7", -10, 10, &v), OP_OK);
    assert_int_equal(v, -7);
    assert_int_equal(util_parse_i64("0", 0, 0, &v), OP_OK);
    assert_int_equal(v, 0);
    assert_int_equal(util_parse_i64("100", 0, 100, &v), OP_OK); /* bounds are inclusive */
    assert_int_equal(v, 100);
    assert_int_equal(util_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), OP_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(util_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), OP_OK);
    assert_true(v == INT64_MIN);

    v = 1234;
    assert_int_equal(util_parse_i64("101", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("-1", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("12x", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("x12", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64(NULL, 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("1.5", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("12 ", 0, 100, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), OP_EINVAL);
    assert_int_equal(util_parse_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v),
                     OP_EINVAL);
    assert_int_equal(v, 1234); /* untouched on failure */
}

static void test_parse_double(void **state)
{
    double d = 0;
    assert_int_equal(util_parse_double("2.5", &d), OP_OK);
    assert_true(d == 2.5);
    assert_int_equal(util_parse_double("-1e3", &d), OP_OK);
    assert_true(d == -1000.0);
    assert_int_equal(util_parse_double("", &d), OP_EINVAL);
    assert_int_equal(util_parse_double("1.0x", &d), OP_EINVAL);
    assert_int_equal(util_parse_double("inf", &d), OP_EINVAL);
    assert_int_equal(util_parse_double("nan", &d), OP_EINVAL);
    assert_int_equal(util_parse_double("1e999", &d), OP_EINVAL);
}

static void test_valid_id(void **state)
{
    assert_true(util_valid_id("site-1"));
    assert_true(util_valid_id("A_b-9"));
    assert_true(util_valid_id("x"));
    char id[80];
    memset(id, 'a', sizeof id);
    id[63] = '\0';
    assert_true(util_valid_id(id)); /* 63 characters is the maximum */
    id[63] = 'a';
    id[64] = '\0';
    assert_false(util_valid_id(id));
    assert_false(util_valid_id(""));
    assert_false(util_valid_id(NULL));
    assert_false(util_valid_id("a/b"));
    assert_false(util_valid_id("a b"));
    assert_false(util_valid_id("a.b"));
    assert_false(util_valid_id(".."));
    assert_false(util_valid_id("caf\xc3\xa9"));
    assert_false(util_valid_id("a\nb"));
}

static void test_fmt_truncation(void **state)
{
    char buf[8];
    assert_int_equal(util_fmt(buf, sizeof buf, "%s", "1234567"), OP_OK);
    assert_string_equal(buf, "1234567");
    assert_int_equal(util_fmt(buf, sizeof buf, "%s", "12345678"), OP_ETOOBIG);
}

static void test_read_file_bounds(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX];
    testkit_path(path, sizeof path, dir, "data.txt");
    assert_int_equal(os_write_file_atomic(path, "hello world", 11, 0600), OP_OK);

    char *text = NULL;
    size_t len = 0;
    assert_int_equal(os_read_file(path, 11, &text, &len), OP_OK);
    assert_int_equal(len, 11);
    assert_string_equal(text, "hello world"); /* NUL-terminated */
    free(text);
    text = NULL;
    assert_int_equal(os_read_file(path, 1024, &text, NULL), OP_OK);
    assert_string_equal(text, "hello world");
    free(text);
    text = NULL;

    assert_int_equal(os_read_file(path, 10, &text, &len), OP_ETOOBIG);
    assert_null(text);

    char missing[PATH_MAX];
    testkit_path(missing, sizeof missing, dir, "missing.txt");
    assert_int_equal(os_read_file(missing, 1024, &text, &len), OP_ENOTFOUND);
    assert_null(text);

    /* A directory is not a regular file. */
    assert_int_equal(os_read_file(dir, 1024, &text, &len), OP_EIO);
    assert_null(text);

    /* Empty file. */
    char empty[PATH_MAX];
    testkit_path(empty, sizeof empty, dir, "empty");
    assert_int_equal(os_write_file_atomic(empty, "", 0, 0600), OP_OK);
    assert_int_equal(os_read_file(empty, 0, &text, &len), OP_OK);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
}

static void test_write_file_atomic_mode(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX];
    struct stat st;
    testkit_path(path, sizeof path, dir, "secret");
    assert_int_equal(os_write_file_atomic(path, "abc", 3, 0600), OP_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 3);

    /* Overwrite: new content and new mode, no temporary file left behind. */
    assert_int_equal(os_write_file_atomic(path, "defgh", 5, 0644), OP_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char *text = NULL;
    assert_int_equal(os_read_file(path, 64, &text, NULL), OP_OK);
    assert_string_equal(text, "defgh");
    free(text);
    char tmp[PATH_MAX];
    assert_int_equal(util_fmt(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()), OP_OK);
    assert_int_equal(access(tmp, F_OK), -1);

    /* Into a directory that does not exist. */
    char bad[PATH_MAX];
    testkit_path(bad, sizeof bad, dir, "no/such/dir/file");
    assert_int_equal(os_write_file_atomic(bad, "x", 1, 0600), OP_EIO);
}

static void test_mkdir_p_and_rm_rf(void **state)
{
    const char *dir = *state;
    char deep[PATH_MAX], file[PATH_MAX], top[PATH_MAX];
    testkit_path(top, sizeof top, dir, "a");
    testkit_path(deep, sizeof deep, dir, "a/b/c/d");
    assert_int_equal(os_mkdir_p(deep), OP_OK);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0077, 0);    /* created 0700 (or tighter with umask) */
    assert_int_equal(os_mkdir_p(deep), OP_OK); /* idempotent */

    testkit_path(file, sizeof file, dir, "a/b/c/d/f.txt");
    assert_int_equal(os_write_file_atomic(file, "x", 1, 0600), OP_OK);
    testkit_path(file, sizeof file, dir, "a/b/g.txt");
    assert_int_equal(os_write_file_atomic(file, "y", 1, 0600), OP_OK);

    /* A symlink inside the tree is removed, not followed. */
    char outside[PATH_MAX], link_path[PATH_MAX];
    testkit_path(outside, sizeof outside, dir, "keep.txt");
    assert_int_equal(os_write_file_atomic(outside, "keep", 4, 0600), OP_OK);
    testkit_path(link_path, sizeof link_path, dir, "a/b/link");
    assert_int_equal(symlink(dir, link_path), 0);

    /* A file in the way of mkdir_p. */
    char blocked[PATH_MAX];
    testkit_path(blocked, sizeof blocked, dir, "keep.txt/sub");
    assert_int_equal(os_mkdir_p(blocked), OP_EIO);

    assert_int_equal(os_rm_rf(top), OP_OK);
    assert_int_equal(lstat(top, &st), -1);
    assert_int_equal(stat(outside, &st), 0);
    assert_int_equal(os_rm_rf(top), OP_OK); /* already gone */
}

static void test_clocks(void **state)
{
    int64_t now = os_now_ms();
    assert_true(now > 1600000000000LL); /* after 2020 */
    int64_t a = os_mono_ms();
    int64_t b = os_mono_ms();
    assert_true(b >= a);
    int64_t ua = os_mono_us();
    int64_t ub = os_mono_us();
    assert_true(ub >= ua);
}

/* Periodic chores and runs of failures, on a clock the test moves by hand. */
static void test_timer_and_fail_streak(void **state)
{
    (void)state;
    timer t;
    timer_init(&t, 250);
    assert_true(timer_due(&t, 1000, 0));
    assert_false(timer_due(&t, 1100, 0));
    assert_true(timer_due(&t, 1100, 1));
    assert_true(timer_due(&t, 1350, 0));
    fail_streak fs = {0};
    uint64_t n = 0;
    double seconds = 0;
    assert_false(fail_streak_ok(&fs, 500, &n, &seconds)); /* nothing to end */
    assert_int_equal(fail_streak_fail(&fs, 1000, 30000), STREAK_STARTED);
    assert_int_equal(fail_streak_fail(&fs, 1260, 30000), STREAK_QUIET);
    assert_int_equal(fail_streak_fail(&fs, 31000, 30000), STREAK_STILL);
    assert_int_equal(fail_streak_fail(&fs, 31260, 30000), STREAK_QUIET);
    /* successes between failures (a full disk lets empty commits through) keep the run */
    assert_false(fail_streak_ok(&fs, 31300, &n, &seconds));
    assert_int_equal(fail_streak_fail(&fs, 31500, 30000), STREAK_QUIET);
    assert_false(fail_streak_ok(&fs, 41000, &n, &seconds));
    assert_true(fail_streak_ok(&fs, 41000 + FAIL_STREAK_SETTLE_MS, &n, &seconds));
    assert_int_equal(n, 5);
    assert_true(seconds == 40.0);
    assert_false(fail_streak_ok(&fs, 44000, &n, &seconds));
    assert_int_equal(fail_streak_fail(&fs, 45000, 30000), STREAK_STARTED);
}

/* A retry that backs off: due within [period/2, period], the period doubling to its cap. */
static void test_timer_backoff(void **state)
{
    (void)state;
    timer t;
    timer_init(&t, 2000);
    assert_true(timer_due(&t, 0, 0));
    timer_backoff(&t, 0, 16000, 0); /* the lowest draw: half the period */
    assert_false(timer_ready(&t, 999));
    assert_true(timer_ready(&t, 1000));
    assert_int_equal(t.period_ms, 4000);
    assert_true(timer_due(&t, 1000, 0));
    timer_backoff(&t, 1000, 16000, 4000); /* the highest draw: the whole period */
    assert_false(timer_ready(&t, 4999));
    assert_true(timer_ready(&t, 5000));
    int64_t now = 5000;
    for (int i = 0; i < 10; i++) { /* never past the cap, never sooner than half of it */
        timer_backoff(&t, now, 16000, (uint32_t)(1234567u * (uint32_t)i));
        assert_true(t.period_ms <= 16000);
        now = t.next_ms;
    }
    assert_int_equal(t.period_ms, 16000);
    timer_backoff(&t, now, 16000, 0);
    assert_int_equal(t.next_ms, now + 8000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_timer_and_fail_streak),
        cmocka_unit_test(test_timer_backoff),
        cmocka_unit_test(test_unhex_rejects_bad_input),
        cmocka_unit_test(test_sha256_known_vectors),
        cmocka_unit_test(test_b64_round_trip),
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_atomic_write_keeps_a_fifo),
        cmocka_unit_test(test_b64_rejects_bad_input),
        cmocka_unit_test(test_b64_max_len),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_fmt_truncation),
        cmocka_unit_test_setup_teardown(test_read_file_bounds, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_write_file_atomic_mode, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p_and_rm_rf, testkit_tmpdir_setup,
                                        testkit_tmpdir_teardown),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
