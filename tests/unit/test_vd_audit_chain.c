/* test_vd_audit_chain.c - the audit log's hash chain (vaultd/vd_audit_chain.c): sealing and
 * checking records, a known-answer hash, and detection of an edited byte, a wrong prev, a
 * sequence gap, a malformed suffix and an over-long line. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_chain_roundtrip),
        cmocka_unit_test(test_detects_tampering),
        cmocka_unit_test(test_seal_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
