/* test_prov_basic.c - unit tests of kvault's OpenSSL provider face that need no vault: lazy
 * start (loading never reads the configuration), provider parameters, store errors for
 * malformed URIs and unknown vaults, that unrelated fetches stay with the default provider
 * even with kvault activated first, and public-only keys (import, local verify, the
 * AlgorithmIdentifier of each signature scheme, and a clear refusal to sign). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx);

typedef struct {
    OSSL_LIB_CTX *lc;
    OSSL_PROVIDER *kv, *def;
    char conf[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    FILE *fp;
    int fd;

    assert_non_null(f);
    snprintf(f->conf, sizeof(f->conf), "/tmp/kvprovtest.XXXXXX");
    fd = mkstemp(f->conf);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fprintf(fp, "[kvault]\ntimeout = 2\nretries = 0\n[vault dev]\n"
                "url = https://dev.vault.localhost:1\ntenant_id = t\nclient_id = c\n"
                "client_secret = s\nauthority = https://localhost:1\n");
    fclose(fp);
    /* A configuration that does not exist yet: loading must not read it. */
    setenv("KVAULT_CONF", "/nonexistent/kvault.conf", 1);
    f->lc = OSSL_LIB_CTX_new();
    assert_non_null(f->lc);
    assert_int_equal(OSSL_PROVIDER_add_builtin(f->lc, "kvault", OSSL_provider_init), 1);
    f->kv = OSSL_PROVIDER_load(f->lc, "kvault"); /* before default, on purpose */
    assert_non_null(f->kv);
    f->def = OSSL_PROVIDER_load(f->lc, "default");
    assert_non_null(f->def);
    setenv("KVAULT_CONF", f->conf, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    OSSL_PROVIDER_unload(f->kv);
    OSSL_PROVIDER_unload(f->def);
    OSSL_LIB_CTX_free(f->lc);
    unlink(f->conf);
    free(f);
    return 0;
}

/* The data of the most recent error whose library is kvault's, or "". */
static const char *last_error_data(char *buf, size_t len)
{
    const char *data = NULL, *reason;
    unsigned long e;
    int flags = 0;

    buf[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        reason = ERR_reason_error_string(e);
        snprintf(buf, len, "%s: %s", reason != NULL ? reason : "?",
                 (flags & ERR_TXT_STRING) && data != NULL ? data : "");
    }
    return buf;
}

static void test_params(void **state)
{
    fixture *f = *state;
    const char *name = NULL, *version = NULL;
    int status = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, &name, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, &version, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, &status),
        OSSL_PARAM_END,
    };

    assert_int_equal(OSSL_PROVIDER_get_params(f->kv, params), 1);
    assert_non_null(name);
    assert_non_null(strstr(name, "kvault"));
    assert_non_null(version);
    assert_int_equal(status, 1);
}

static void test_store_malformed_uri(void **state)
{
    fixture *f = *state;
    OSSL_STORE_CTX *st;
    char buf[600];

    ERR_clear_error();
    st = OSSL_STORE_open_ex("kvault://x", f->lc, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_null(st);
    assert_non_null(strstr(last_error_data(buf, sizeof(buf)), "malformed kvault URI"));
    st = OSSL_STORE_open_ex("kvault://dev/certs/a", f->lc, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_null(st);
    assert_non_null(strstr(last_error_data(buf, sizeof(buf)), "malformed kvault URI"));
}

static void test_store_unknown_vault(void **state)
{
    fixture *f = *state;
    OSSL_STORE_CTX *st;
    char buf[600];

    ERR_clear_error();
    st = OSSL_STORE_open_ex("kvault://nosuch/keys/k1", f->lc, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_null(st);
    last_error_data(buf, sizeof(buf));
    assert_non_null(strstr(buf, "no vault named nosuch in the kvault configuration"));
    assert_non_null(strstr(buf, f->conf));
}

static void test_unrelated_fetches_stay_default(void **state)
{
    fixture *f = *state;
    EVP_KEYMGMT *km;
    EVP_SIGNATURE *sig;
    EVP_PKEY_CTX *gctx;
    EVP_PKEY *pk = NULL;

    km = EVP_KEYMGMT_fetch(f->lc, "RSA", NULL);
    assert_non_null(km);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_KEYMGMT_get0_provider(km)), "default");
    EVP_KEYMGMT_free(km);
    km = EVP_KEYMGMT_fetch(f->lc, "EC", NULL);
    assert_non_null(km);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_KEYMGMT_get0_provider(km)), "default");
    EVP_KEYMGMT_free(km);
    sig = EVP_SIGNATURE_fetch(f->lc, "ECDSA", NULL);
    assert_non_null(sig);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(sig)), "default");
    EVP_SIGNATURE_free(sig);
    /* kvault offers no digests and no key generation */
    assert_null(EVP_MD_fetch(f->lc, "SHA256", "provider=kvault"));
    ERR_clear_error();
    gctx = EVP_PKEY_CTX_new_from_name(f->lc, "EC", NULL);
    assert_non_null(gctx);
    assert_int_equal(EVP_PKEY_keygen_init(gctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_group_name(gctx, "P-256"), 1);
    assert_int_equal(EVP_PKEY_generate(gctx, &pk), 1);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(gctx);
}

/* Moves a default-provider public key into kvault's keymgmt (public import). */
static EVP_PKEY *to_kvault(fixture *f, EVP_PKEY *soft, const char *type)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *out = NULL;

    assert_int_equal(EVP_PKEY_todata(soft, EVP_PKEY_PUBLIC_KEY, &params), 1);
    ctx = EVP_PKEY_CTX_new_from_name(f->lc, type, "provider=kvault");
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(out)), "kvault");
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return out;
}

static void sign_soft(EVP_PKEY *soft, const char *md, int pss, const unsigned char *msg,
                      size_t mlen, unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;

    assert_non_null(mc);
    assert_int_equal(EVP_DigestSignInit_ex(mc, &pc, md, NULL, NULL, soft, NULL), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(mc, sig, siglen, msg, mlen), 1);
    EVP_MD_CTX_free(mc);
}

static int verify_kv(fixture *f, EVP_PKEY *kvpub, const char *md, int pss, const unsigned char *msg,
                     size_t mlen, const unsigned char *sig, size_t siglen, unsigned char *aid,
                     size_t *aidlen)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    OSSL_PARAM params[2];
    int rc;

    assert_non_null(mc);
    assert_int_equal(EVP_DigestVerifyInit_ex(mc, &pc, md, f->lc, "provider=kvault", kvpub, NULL),
                     1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, *aidlen);
    params[1] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_PKEY_CTX_get_params(pc, params), 1);
    *aidlen = params[0].return_size;
    rc = EVP_DigestVerify(mc, sig, siglen, msg, mlen);
    EVP_MD_CTX_free(mc);
    return rc;
}

static void test_rsa_public_key(void **state)
{
    fixture *f = *state;
    static const unsigned char aid_rs256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                              0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
    static const unsigned char pss_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                            0xf7, 0x0d, 0x01, 0x01, 0x0a};
    unsigned char msg[] = "kvault provider unit test", sig[512], aid[128];
    size_t siglen = sizeof(sig), aidlen = sizeof(aid);
    EVP_PKEY *soft, *kvpub;
    EVP_PKEY_CTX *sc;
    char buf[600];

    soft = EVP_PKEY_Q_keygen(f->lc, "provider=default", "RSA", (size_t)2048);
    assert_non_null(soft);
    kvpub = to_kvault(f, soft, "RSA");
    assert_int_equal(EVP_PKEY_get_bits(kvpub), 2048);
    assert_int_equal(EVP_PKEY_get_size(kvpub), 256);
    assert_int_equal(EVP_PKEY_eq(kvpub, soft), 1);

    sign_soft(soft, "SHA256", 0, msg, sizeof(msg), sig, &siglen);
    assert_int_equal(verify_kv(f, kvpub, "SHA256", 0, msg, sizeof(msg), sig, siglen, aid, &aidlen),
                     1);
    assert_int_equal(aidlen, sizeof(aid_rs256));
    assert_memory_equal(aid, aid_rs256, sizeof(aid_rs256));
    sig[10] ^= 1;
    aidlen = sizeof(aid);
    assert_int_not_equal(
        verify_kv(f, kvpub, "SHA256", 0, msg, sizeof(msg), sig, siglen, aid, &aidlen), 1);

    siglen = sizeof(sig);
    aidlen = sizeof(aid);
    sign_soft(soft, "SHA384", 1, msg, sizeof(msg), sig, &siglen);
    assert_int_equal(verify_kv(f, kvpub, "SHA384", 1, msg, sizeof(msg), sig, siglen, aid, &aidlen),
                     1);
    assert_true(aidlen > sizeof(pss_oid) + 2);
    assert_memory_equal(aid + 2, pss_oid, sizeof(pss_oid));

    /* a public-only key cannot sign, and says why */
    ERR_clear_error();
    sc = EVP_PKEY_CTX_new_from_pkey(f->lc, kvpub, "provider=kvault");
    assert_non_null(sc);
    assert_int_not_equal(EVP_PKEY_sign_init(sc), 1);
    assert_non_null(strstr(last_error_data(buf, sizeof(buf)), "no vault key"));
    EVP_PKEY_CTX_free(sc);
    EVP_PKEY_free(kvpub);
    EVP_PKEY_free(soft);
}

static void test_ec_public_key(void **state)
{
    fixture *f = *state;
    static const unsigned char aid_es384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                              0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
    unsigned char msg[] = "kvault provider unit test", sig[160], aid[128];
    size_t siglen = sizeof(sig), aidlen = sizeof(aid);
    char group[32];
    EVP_PKEY *soft, *kvpub;

    soft = EVP_PKEY_Q_keygen(f->lc, "provider=default", "EC", "P-256");
    assert_non_null(soft);
    kvpub = to_kvault(f, soft, "EC");
    assert_int_equal(EVP_PKEY_get_bits(kvpub), 256);
    assert_int_equal(EVP_PKEY_get_group_name(kvpub, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(EVP_PKEY_eq(kvpub, soft), 1);

    sign_soft(soft, "SHA384", 0, msg, sizeof(msg), sig, &siglen);
    assert_int_equal(verify_kv(f, kvpub, "SHA384", 0, msg, sizeof(msg), sig, siglen, aid, &aidlen),
                     1);
    assert_int_equal(aidlen, sizeof(aid_es384));
    assert_memory_equal(aid, aid_es384, sizeof(aid_es384));
    EVP_PKEY_free(kvpub);
    EVP_PKEY_free(soft);
}

static void test_import_refuses_private(void **state)
{
    fixture *f = *state;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *soft, *out = NULL;

    soft = EVP_PKEY_Q_keygen(f->lc, "provider=default", "RSA", (size_t)2048);
    assert_non_null(soft);
    assert_int_equal(EVP_PKEY_todata(soft, EVP_PKEY_KEYPAIR, &params), 1);
    ctx = EVP_PKEY_CTX_new_from_name(f->lc, "RSA", "provider=kvault");
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_not_equal(EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_KEYPAIR, params), 1);
    assert_null(out);
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    EVP_PKEY_free(soft);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_store_malformed_uri),
        cmocka_unit_test(test_store_unknown_vault),
        cmocka_unit_test(test_unrelated_fetches_stay_default),
        cmocka_unit_test(test_rsa_public_key),
        cmocka_unit_test(test_ec_public_key),
        cmocka_unit_test(test_import_refuses_private),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
