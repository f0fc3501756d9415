/* test_vaultclient.c - cmocka unit tests for vaultclient's pure parts: configuration,
 * kvault URIs, base64url, ECDSA format conversion, JWK <-> EVP_PKEY, algorithm table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "kv_b64.h"
#include "kv_client.h"
#include "kv_config.h"
#include "kv_ecdsa.h"
#include "kv_jwk.h"
#include "kv_uri.h"

static const char *good_conf = "# comment\n"
                               "[kvault]\n"
                               "timeout = 7\n"
                               "retries = 2\n"
                               "\n"
                               "[vault dev]\n"
                               "url = https://dev.vault.localhost:8443/\n"
                               "ca_file = /tmp/ca.pem\n"
                               "auth = client_secret\n"
                               "tenant_id = t1\n"
                               "client_id = c1\n"
                               "client_secret = s3cret\n"
                               "authority = https://localhost:8443/\n"
                               "[vault prod-1]\n"
                               "url = https://prod-1.vault.azure.net\n"
                               "tenant_id = t2\n"
                               "client_id = c2\n"
                               "client_secret = x\n";

static void test_conf_good(void **state)
{
    kv_conf *c = NULL;
    kv_err e;

    (void)state;
    assert_int_equal(kv_conf_parse(good_conf, "t.conf", &c, &e), KV_OK);
    assert_int_equal(c->timeout, 7);
    assert_int_equal(c->retries, 2);
    assert_int_equal(c->nvaults, 2);
    assert_string_equal(c->vaults[0].name, "dev");
    assert_string_equal(c->vaults[0].url, "https://dev.vault.localhost:8443");
    assert_string_equal(c->vaults[0].authority, "https://localhost:8443");
    assert_string_equal(c->vaults[1].name, "prod-1");
    assert_null(c->vaults[1].authority);
    kv_conf_free(c);
}

static void expect_conf_error(const char *text, const char *needle)
{
    kv_conf *c = NULL;
    kv_err e;

    kv_err_clear(&e);
    assert_int_equal(kv_conf_parse(text, "bad.conf", &c, &e), KV_ERR_CONFIG);
    assert_null(c);
    if (strstr(e.message, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", e.message, needle);
}

static void test_conf_errors(void **state)
{
    (void)state;
    expect_conf_error("[vault dev]\nurl = https://x\ntenant_id=a\nclient_id=b\nbogus = 1\n",
                      "bad.conf:5: unknown setting 'bogus'");
    expect_conf_error("[vault dev]\nurl = http://x\ntenant_id=a\nclient_id=b\nclient_secret=c\n",
                      "https://");
    expect_conf_error("[vault dev]\nurl = https://x\nauth = client_secret\n", "needs client_id");
    expect_conf_error("[vault x]\n", "3-24 characters");
    expect_conf_error("[kvault]\ntimeout = 0\n", "timeout");
    expect_conf_error("[nope]\n", "unknown section");
    expect_conf_error("timeout = 1\n", "outside a section");
    expect_conf_error("[vault dev]\nurl=https://a\n[vault DEV]\n", "defined twice");
    expect_conf_error("[kvault\n", "malformed section");
}

static void test_conf_missing_named_file(void **state)
{
    kv_conf *c = NULL;
    kv_err e;

    (void)state;
    assert_int_equal(kv_conf_load("/nonexistent/kvault.conf", &c, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "/nonexistent/kvault.conf"));
}

static void test_uri(void **state)
{
    kv_uri u;
    kv_err e;

    (void)state;
    assert_int_equal(kv_uri_parse("kvault://dev/keys/k1", &u, &e), KV_OK);
    assert_string_equal(u.vault, "dev");
    assert_string_equal(u.name, "k1");
    assert_string_equal(u.version, "");
    assert_int_equal(kv_uri_parse("KVAULT://my-vault/keys/a-b/0123abcd", &u, &e), KV_OK);
    assert_string_equal(u.version, "0123abcd");
    assert_int_equal(kv_uri_parse("kvault://x", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("kvault://dev/keys/", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("kvault://dev/secrets/k", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("kvault://dev/keys/k1/", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("kvault://dev/keys/k_1", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("kvault://dev/keys/k1/v-1", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("kvault://dev/keys/k1?x", &u, &e), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_uri_parse("file:///x", &u, &e), KV_ERR_INVALID_ARG);
    assert_non_null(strstr(e.message, "malformed kvault URI"));
    assert_true(kv_uri_is_kvault("kvault://a"));
    assert_false(kv_uri_is_kvault("pkcs11:token=a"));
}

static void test_b64(void **state)
{
    const uint8_t in[] = {0xfb, 0xff, 0xfe, 0x00, 0x01};
    uint8_t *out = NULL;
    size_t n = 0;
    char *s;

    (void)state;
    s = kv_b64url_encode(in, sizeof(in));
    assert_string_equal(s, "-__-AAE");
    assert_int_equal(kv_b64_decode(s, &out, &n), KV_OK);
    assert_int_equal(n, sizeof(in));
    assert_memory_equal(out, in, n);
    free(out);
    free(s);
    s = kv_b64_encode(in, sizeof(in));
    assert_string_equal(s, "+//+AAE=");
    assert_int_equal(kv_b64_decode(s, &out, &n), KV_OK);
    assert_int_equal(n, sizeof(in));
    free(out);
    free(s);
    assert_int_equal(kv_b64_decode("a", &out, &n), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_b64_decode("ab$d", &out, &n), KV_ERR_INVALID_ARG);
    assert_int_equal(kv_b64_decode("", &out, &n), KV_OK);
    assert_int_equal(n, 0);
    free(out);
}

static void test_ecdsa_roundtrip(void **state)
{
    uint8_t raw[64], der[80], back[64];
    size_t derlen = sizeof(der), backlen = sizeof(back), max = 0;

    (void)state;
    memset(raw, 0, sizeof(raw));
    raw[31] = 1;    /* r = 1 */
    raw[32] = 0x80; /* s has its top bit set: DER needs a leading zero */
    raw[63] = 7;
    assert_int_equal(kv_ecdsa_raw_to_der(raw, 64, NULL, &max), KV_OK);
    assert_int_equal(kv_ecdsa_raw_to_der(raw, 64, der, &derlen), KV_OK);
    assert_true(derlen <= max);
    assert_int_equal(der[0], 0x30);
    assert_int_equal(kv_ecdsa_der_to_raw(der, derlen, 32, back, &backlen), KV_OK);
    assert_int_equal(backlen, 64);
    assert_memory_equal(back, raw, 64);
    assert_int_equal(kv_ecdsa_raw_to_der(raw, 63, der, &derlen), KV_ERR_INVALID_ARG);
    der[1] ^= 0x01;
    assert_int_equal(kv_ecdsa_der_to_raw(der, derlen, 32, back, &backlen), KV_ERR_INVALID_ARG);
}

static void jwk_roundtrip(const char *type, const char *param, int curve_nid)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, type, param);
    EVP_PKEY *back = NULL;
    json_t *jwk;
    kv_kty kty;
    int nid = 0, bits = 0, hsm = 0;
    kv_err e;

    assert_non_null(pk);
    jwk = kv_jwk_from_public_pkey(pk, 1);
    assert_non_null(jwk);
    assert_null(json_object_get(jwk, "d"));
    assert_int_equal(kv_jwk_to_public_pkey(NULL, NULL, jwk, &back, &kty, &nid, &bits, &hsm, &e),
                     KV_OK);
    assert_int_equal(hsm, 1);
    assert_int_equal(EVP_PKEY_eq(pk, back), 1);
    if (curve_nid != 0) {
        assert_int_equal(kty, KV_KTY_EC);
        assert_int_equal(nid, curve_nid);
    } else {
        assert_int_equal(kty, KV_KTY_RSA);
        assert_int_equal(bits, 2048);
    }
    EVP_PKEY_free(back);
    EVP_PKEY_free(pk);
    json_decref(jwk);
}

static void test_jwk(void **state)
{
    json_t *bad;
    EVP_PKEY *pk = NULL;
    kv_err e;

    (void)state;
    jwk_roundtrip("EC", "P-256", NID_X9_62_prime256v1);
    jwk_roundtrip("EC", "P-384", NID_secp384r1);
    jwk_roundtrip("EC", "P-521", NID_secp521r1);
    {
        EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        json_t *jwk = kv_jwk_from_public_pkey(rsa, 0);
        EVP_PKEY *back = NULL;
        kv_kty kty;
        int bits = 0;

        assert_non_null(jwk);
        assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
        assert_int_equal(kv_jwk_to_public_pkey(NULL, NULL, jwk, &back, &kty, NULL, &bits, NULL, &e),
                         KV_OK);
        assert_int_equal(bits, 2048);
        assert_int_equal(EVP_PKEY_eq(rsa, back), 1);
        EVP_PKEY_free(back);
        EVP_PKEY_free(rsa);
        json_decref(jwk);
    }
    bad = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256", "x", "AAAA", "y", "AAAA");
    assert_int_not_equal(kv_jwk_to_public_pkey(NULL, NULL, bad, &pk, NULL, NULL, NULL, NULL, &e),
                         KV_OK);
    assert_null(pk);
    json_decref(bad);
    bad = json_pack("{s:s}", "kty", "oct");
    assert_int_equal(kv_jwk_to_public_pkey(NULL, NULL, bad, &pk, NULL, NULL, NULL, NULL, &e),
                     KV_ERR_UNSUPPORTED);
    json_decref(bad);
}

static void test_alg(void **state)
{
    (void)state;
    assert_int_equal(kv_alg_from_name("PS384"), KV_ALG_PS384);
    assert_string_equal(kv_alg_name(KV_ALG_ES512), "ES512");
    assert_int_equal(kv_alg_digest_len(KV_ALG_RS512), 64);
    assert_int_equal(kv_alg_from_name("HS256"), KV_ALG_NONE);
    assert_int_equal(kv_alg_ecdsa_for_curve(NID_secp384r1), KV_ALG_ES384);
    assert_int_equal(kv_alg_ecdsa_for_curve(NID_sect163k1), KV_ALG_NONE);
}

static void test_sign_precondition(void **state)
{
    kv_key k;
    uint8_t d[32] = {0}, sig[256];
    size_t siglen = 10;
    kv_err e;

    (void)state;
    memset(&k, 0, sizeof(k));
    k.kty = KV_KTY_RSA;
    k.bits = 2048;
    /* Length query never touches the vault (the vault pointer is only checked non-NULL). */
    assert_int_equal(kv_vault_sign((kv_vault *)&k, &k, KV_ALG_RS256, d, 32, NULL, &siglen, &e),
                     KV_OK);
    assert_int_equal(siglen, 256);
    siglen = 100;
    assert_int_equal(kv_vault_sign((kv_vault *)&k, &k, KV_ALG_RS256, d, 32, sig, &siglen, &e),
                     KV_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(siglen, 256);
    siglen = sizeof(sig);
    assert_int_equal(kv_vault_sign((kv_vault *)&k, &k, KV_ALG_RS256, d, 31, sig, &siglen, &e),
                     KV_ERR_INVALID_ARG);
    assert_int_equal(kv_vault_sign((kv_vault *)&k, &k, KV_ALG_ES256, d, 32, sig, &siglen, &e),
                     KV_ERR_UNSUPPORTED);
    assert_int_equal(kv_vault_sign(NULL, &k, KV_ALG_RS256, d, 32, sig, &siglen, &e),
                     KV_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_good),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_conf_missing_named_file),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_ecdsa_roundtrip),
        cmocka_unit_test(test_jwk),
        cmocka_unit_test(test_alg),
        cmocka_unit_test(test_sign_precondition),
    };
    return cmocka_run_group_tests_name("vaultclient", tests, NULL, NULL);
}
