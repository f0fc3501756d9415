/* test_vd_audit_chain.c - the audit log's hash chain (vaultd/vd_audit_chain.c): sealing and
 * checking records, a known-answer hash, and detection of an edited byte, a wrong prev, a
 * sequence gap, a malformed suffix and an over-long line; the head file (its path, format and
 * the comparison of a log's end with it: records cut off the end, a replaced log). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vd_audit_chain.h"

/* Seals {"seq":SEQ,"op":"x","prev":PREV}; returns the line without its '\n'. */
static char *seal(long long seq, const char *prev, char hash[VD_AUDIT_HASH_HEX + 1])
{
    char content[256], *line = NULL;
    size_t len = 0;

    snprintf(content, sizeof(content), "{\"seq\":%lld,\"op\":\"KeySign\",\"prev\":\"%s\"}", seq,
             prev);
    assert_int_equal(vd_audit_chain_seal(content, strlen(content), prev, &line, &len, hash), KV_OK);
    assert_true(len > 0 && line[len - 1] == '\n');
    assert_int_equal(strlen(line), len);
    line[len - 1] = '\0';
    return line;
}

static void test_known_answer(void **state)
{
    char hash[VD_AUDIT_HASH_HEX + 1];

    (void)state;
    /* sha256("000...0" "\n" "{}") */
    assert_int_equal(vd_audit_chain_hash(VD_AUDIT_GENESIS, "{}", 2, hash), KV_OK);
    assert_string_equal(hash, "5649d09ed68c17156095d175eef152856c5b1a81c117c409c1e00f096aa6838e");
    assert_int_equal(vd_audit_chain_hash("short", "{}", 2, hash), KV_ERR_INVALID_ARG);
}

static void test_chain_roundtrip(void **state)
{
    char h1[VD_AUDIT_HASH_HEX + 1], h2[VD_AUDIT_HASH_HEX + 1], got[VD_AUDIT_HASH_HEX + 1];
    char *l1 = seal(1, VD_AUDIT_GENESIS, h1), *l2 = seal(2, h1, h2);
    const char *why = NULL;
    long long seq = 0;

    (void)state;
    assert_non_null(strstr(l1, ",\"hash\":\""));
    assert_int_equal(vd_audit_chain_check(l1, strlen(l1), VD_AUDIT_GENESIS, 1, &seq, got, &why),
                     KV_OK);
    assert_int_equal(seq, 1);
    assert_string_equal(got, h1);
    assert_null(why);
    assert_int_equal(vd_audit_chain_check(l2, strlen(l2), h1, 2, &seq, got, &why), KV_OK);
    assert_string_equal(got, h2);
    /* tail mode: own prev, any seq */
    assert_int_equal(vd_audit_chain_check(l2, strlen(l2), NULL, 0, &seq, got, &why), KV_OK);
    assert_int_equal(seq, 2);
    free(l1);
    free(l2);
}

static void test_detects_tampering(void **state)
{
    char h1[VD_AUDIT_HASH_HEX + 1], h2[VD_AUDIT_HASH_HEX + 1], got[VD_AUDIT_HASH_HEX + 1];
    char *l1 = seal(1, VD_AUDIT_GENESIS, h1), *l2 = seal(2, h1, h2);
    const char *why = NULL;
    long long seq = 0;
    char *p;

    (void)state;
    /* an edited byte */
    p = strstr(l1, "KeySign");
    p[0] = 'X';
    assert_int_not_equal(vd_audit_chain_check(l1, strlen(l1), VD_AUDIT_GENESIS, 1, &seq, got, &why),
                         KV_OK);
    assert_non_null(strstr(why, "hash mismatch"));
    p[0] = 'K';
    /* line 2 checked as if it were line 1 (line 1 removed) */
    assert_int_not_equal(vd_audit_chain_check(l2, strlen(l2), VD_AUDIT_GENESIS, 1, &seq, got, &why),
                         KV_OK);
    assert_non_null(strstr(why, "sequence gap"));
    /* the right seq but another predecessor */
    assert_int_not_equal(vd_audit_chain_check(l2, strlen(l2), VD_AUDIT_GENESIS, 2, &seq, got, &why),
                         KV_OK);
    assert_non_null(strstr(why, "prev does not match"));
    /* a cut-off line and garbage */
    assert_int_not_equal(vd_audit_chain_check(l1, strlen(l1) - 3, NULL, 0, &seq, got, &why), KV_OK);
    assert_int_not_equal(vd_audit_chain_check("{}", 2, NULL, 0, &seq, got, &why), KV_OK);
    /* a changed hash */
    p = strstr(l1, ",\"hash\":\"") + 9;
    p[0] = p[0] == 'a' ? 'b' : 'a';
    assert_int_not_equal(vd_audit_chain_check(l1, strlen(l1), VD_AUDIT_GENESIS, 1, &seq, got, &why),
                         KV_OK);
    free(l1);
    free(l2);
}

static void test_seal_limits(void **state)
{
    char hash[VD_AUDIT_HASH_HEX + 1], *line = NULL, *big;
    size_t len = 0;

    (void)state;
    assert_int_equal(vd_audit_chain_seal("[]", 2, VD_AUDIT_GENESIS, &line, &len, hash),
                     KV_ERR_INVALID_ARG);
    big = malloc(VD_AUDIT_LINE_MAX + 1);
    assert_non_null(big);
    memset(big, ' ', VD_AUDIT_LINE_MAX);
    big[0] = '{';
    big[VD_AUDIT_LINE_MAX - 1] = '}';
    big[VD_AUDIT_LINE_MAX] = '\0';
    assert_int_equal(
        vd_audit_chain_seal(big, VD_AUDIT_LINE_MAX, VD_AUDIT_GENESIS, &line, &len, hash),
        KV_ERR_INVALID_ARG);
    assert_null(line);
    free(big);
}

static void test_head_path(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(vd_audit_head_path("/var/lib/vaultd/audit/audit.log", out, sizeof(out)),
                     KV_OK);
    assert_string_equal(out, "/var/lib/vaultd/audit/audit.head");
    assert_int_equal(vd_audit_head_path("audit.log", out, sizeof(out)), KV_OK);
    assert_string_equal(out, "audit.head");
    assert_int_equal(vd_audit_head_path("/mnt/logs/vaultd.log", out, sizeof(out)), KV_OK);
    assert_string_equal(out, "/mnt/logs/vaultd.log.head");
    assert_int_equal(vd_audit_head_path("/x/my-audit.log", out, sizeof(out)), KV_OK);
    assert_string_equal(out, "/x/my-audit.log.head");
    assert_int_equal(vd_audit_head_path("", out, sizeof(out)), KV_ERR_INVALID_ARG);
    assert_int_equal(
        vd_audit_head_path("/a/very/long/path/that/does/not/fit/into/the/buffer.log", out, 16),
        KV_ERR_INVALID_ARG);
}

static void test_head_format_parse(void **state)
{
    char h1[VD_AUDIT_HASH_HEX + 1], got[VD_AUDIT_HASH_HEX + 1], text[VD_AUDIT_HEAD_MAX];
    char *l1 = seal(1, VD_AUDIT_GENESIS, h1);
    long long seq = -1;
    size_t n = 0;

    (void)state;
    assert_int_equal(vd_audit_head_format(42, h1, text, sizeof(text), &n), KV_OK);
    assert_int_equal(strlen(text), n);
    assert_true(text[n - 1] == '\n');
    assert_int_equal(vd_audit_head_parse(text, n, &seq, got), KV_OK);
    assert_int_equal(seq, 42);
    assert_string_equal(got, h1);
    assert_int_equal(vd_audit_head_format(0, VD_AUDIT_GENESIS, text, sizeof(text), &n), KV_OK);
    assert_int_equal(vd_audit_head_parse(text, n, &seq, got), KV_OK);
    assert_int_equal(seq, 0);
    /* bad input */
    assert_int_equal(vd_audit_head_format(-1, h1, text, sizeof(text), &n), KV_ERR_INVALID_ARG);
    assert_int_equal(vd_audit_head_format(1, "abc", text, sizeof(text), &n), KV_ERR_INVALID_ARG);
    assert_int_equal(vd_audit_head_format(1, h1, text, 20, &n), KV_ERR_INVALID_ARG);
    assert_int_not_equal(vd_audit_head_parse("", 0, &seq, got), KV_OK);
    assert_int_not_equal(vd_audit_head_parse("{\"seq\":1}", 9, &seq, got), KV_OK);
    snprintf(text, sizeof(text), "{\"seq\":-3,\"hash\":\"%s\"}", h1);
    assert_int_not_equal(vd_audit_head_parse(text, strlen(text), &seq, got), KV_OK);
    snprintf(text, sizeof(text), "{\"seq\":3,\"hash\":\"%.63sZ\"}", h1);
    assert_int_not_equal(vd_audit_head_parse(text, strlen(text), &seq, got), KV_OK);
    snprintf(text, sizeof(text), "{\"seq\":3,\"hash\":\"%s\"", h1); /* truncated */
    assert_int_not_equal(vd_audit_head_parse(text, strlen(text), &seq, got), KV_OK);
    free(l1);
}

static void test_head_check(void **state)
{
    char h1[VD_AUDIT_HASH_HEX + 1], h2[VD_AUDIT_HASH_HEX + 1], msg[512];
    char *l1 = seal(1, VD_AUDIT_GENESIS, h1), *l2 = seal(2, h1, h2);

    (void)state;
    /* the log ends at the head, or past it (records after the head's last update) */
    assert_int_equal(vd_audit_head_check(2, 2, h2, h2, msg, sizeof(msg)), KV_OK);
    assert_int_equal(vd_audit_head_check(2, 1, h1, h1, msg, sizeof(msg)), KV_OK);
    assert_int_equal(
        vd_audit_head_check(0, 0, VD_AUDIT_GENESIS, VD_AUDIT_GENESIS, msg, sizeof(msg)), KV_OK);
    assert_int_equal(
        vd_audit_head_check(2, 0, VD_AUDIT_GENESIS, VD_AUDIT_GENESIS, msg, sizeof(msg)), KV_OK);
    /* the last record cut off */
    assert_int_not_equal(vd_audit_head_check(1, 2, h2, NULL, msg, sizeof(msg)), KV_OK);
    assert_non_null(strstr(msg, "ends at seq 1 but its head names seq 2: record 2 is missing"));
    /* the last three cut off; all of them */
    assert_int_not_equal(vd_audit_head_check(7, 10, h2, NULL, msg, sizeof(msg)), KV_OK);
    assert_non_null(strstr(msg, "records 8..10 are missing"));
    assert_int_not_equal(vd_audit_head_check(0, 2, h2, NULL, msg, sizeof(msg)), KV_OK);
    assert_non_null(strstr(msg, "ends at seq 0"));
    /* the head names a hash the log does not have (replaced log, or a head from elsewhere) */
    assert_int_not_equal(vd_audit_head_check(2, 2, h1, h2, msg, sizeof(msg)), KV_OK);
    assert_non_null(strstr(msg, "replaced or rewritten"));
    assert_int_not_equal(vd_audit_head_check(2, 0, h1, VD_AUDIT_GENESIS, msg, sizeof(msg)), KV_OK);
    assert_int_not_equal(vd_audit_head_check(3, 2, h2, NULL, msg, sizeof(msg)), KV_OK);
    assert_non_null(strstr(msg, "not in the log"));
    free(l1);
    free(l2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),      cmocka_unit_test(test_chain_roundtrip),
        cmocka_unit_test(test_detects_tampering), cmocka_unit_test(test_seal_limits),
        cmocka_unit_test(test_head_path),         cmocka_unit_test(test_head_format_parse),
        cmocka_unit_test(test_head_check),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
