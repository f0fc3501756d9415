/* test_kv_token.c - cmocka unit tests for vaultclient's token sources: the client assertion JWT
 * (structure, thumbprints, claims, signature verified with the certificate's public key for
 * PS256, RS256 and ES256), certificate file errors, expires_on parsing, which credential a
 * configuration plus environment resolves to (precedence), identity endpoint URL rules, and the
 * 401 challenge rules (tenant and resource learning, refused authorities and resources). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kv_b64.h"
#include "kv_client.h"
#include "kv_config.h"
#include "kv_ecdsa.h"
#include "kv_http.h"
#include "kv_token.h"
#include "kv_token_int.h"

/* ---- helpers ---- */

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *n;

    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    return x;
}

/* Writes cert(s) and key into a temporary PEM; returns its path (static buffer per slot). */
static const char *write_pem(int slot, X509 *leaf, X509 *extra, EVP_PKEY *key)
{
    static char paths[4][64];
    FILE *f;
    int fd;

    snprintf(paths[slot], sizeof(paths[slot]), "/tmp/kvtoken-test-XXXXXX");
    fd = mkstemp(paths[slot]);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    if (leaf != NULL)
        PEM_write_X509(f, leaf);
    if (extra != NULL)
        PEM_write_X509(f, extra);
    if (key != NULL)
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return paths[slot];
}

static json_t *decode_part(const char *start, size_t len)
{
    char *part = strndup(start, len);
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_t *j;

    assert_int_equal(kv_b64_decode(part, &raw, &rawlen), KV_OK);
    j = json_loadb((const char *)raw, rawlen, 0, NULL);
    free(raw);
    free(part);
    assert_non_null(j);
    return j;
}

static void cert_hash_b64(X509 *x, const char *md, char **out)
{
    unsigned char *der = NULL, h[32];
    unsigned hl = 0;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    assert_true(EVP_Digest(der, (size_t)n, h, &hl, EVP_get_digestbyname(md), NULL));
    *out = kv_b64url_encode(h, hl);
    OPENSSL_free(der);
}

/* Makes an assertion with key, checks everything, verifies the signature. */
static void check_assertion(EVP_PKEY *key, int rs256, int send_chain, const char *want_alg)
{
    X509 *x = self_signed(key, "kvault-test"), *other;
    EVP_PKEY *okey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *path;
    kv_cert_cred cc;
    kv_err e;
    char *jwt = NULL, *want_thumb = NULL;
    const char *d1, *d2;
    json_t *h, *c;
    long long now = (long long)time(NULL);
    uint8_t *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *aud = "https://localhost:8443/t1/oauth2/v2.0/token";

    other = self_signed(okey, "unrelated-ca");
    path = write_pem(0, other, x, key); /* leaf is not first: found by its key */
    memset(&cc, 0, sizeof(cc));
    assert_int_equal(kv_cert_load(path, NULL, &cc, &e), KV_OK);
    assert_int_equal(cc.nx5c, 2);
    assert_int_equal(
        kv_assertion_make(&cc, NULL, "client-1", aud, rs256, send_chain, now, &jwt, &e), KV_OK);
    d1 = strchr(jwt, '.');
    assert_non_null(d1);
    d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    h = decode_part(jwt, (size_t)(d1 - jwt));
    c = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    assert_string_equal(json_string_value(json_object_get(h, "alg")), want_alg);
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    if (strcmp(want_alg, "RS256") == 0) {
        cert_hash_b64(x, "SHA1", &want_thumb);
        assert_string_equal(json_string_value(json_object_get(h, "x5t")), want_thumb);
        assert_null(json_object_get(h, "x5t#S256"));
    } else {
        cert_hash_b64(x, "SHA256", &want_thumb);
        assert_string_equal(json_string_value(json_object_get(h, "x5t#S256")), want_thumb);
        assert_null(json_object_get(h, "x5t"));
    }
    if (send_chain) {
        json_t *x5c = json_object_get(h, "x5c");
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        char *b = kv_b64_encode(der, (size_t)n);

        assert_int_equal(json_array_size(x5c), 2);
        assert_string_equal(json_string_value(json_array_get(x5c, 0)), b); /* leaf first */
        free(b);
        OPENSSL_free(der);
    } else {
        assert_null(json_object_get(h, "x5c"));
    }
    assert_string_equal(json_string_value(json_object_get(c, "aud")), aud);
    assert_string_equal(json_string_value(json_object_get(c, "iss")), "client-1");
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "client-1");
    assert_int_equal(strlen(json_string_value(json_object_get(c, "jti"))), 36);
    assert_int_equal(json_string_value(json_object_get(c, "jti"))[14], '4');
    assert_int_equal(json_integer_value(json_object_get(c, "nbf")), now);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), now);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), now + 600);

    /* the signature verifies with the certificate's public key */
    assert_int_equal(kv_b64_decode(d2 + 1, &sig, &siglen), KV_OK);
    assert_true(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(x)) == 1);
    if (strcmp(want_alg, "PS256") == 0) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1);
    }
    if (strcmp(want_alg, "ES256") == 0) {
        uint8_t der[80];
        size_t dl = sizeof(der);

        assert_int_equal(siglen, 64);
        assert_int_equal(kv_ecdsa_raw_to_der(sig, siglen, der, &dl), KV_OK);
        assert_int_equal(
            EVP_DigestVerify(md, der, dl, (const unsigned char *)jwt, (size_t)(d2 - jwt)), 1);
    } else {
        assert_int_equal(
            EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(d2 - jwt)), 1);
    }
    /* ... and not with another key */
    EVP_MD_CTX_reset(md);
    if (strcmp(want_alg, "ES256") == 0) {
        uint8_t der[80];
        size_t dl = sizeof(der);

        assert_true(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, okey) == 1);
        assert_int_equal(kv_ecdsa_raw_to_der(sig, siglen, der, &dl), KV_OK);
        assert_int_not_equal(
            EVP_DigestVerify(md, der, dl, (const unsigned char *)jwt, (size_t)(d2 - jwt)), 1);
    }
    unlink(path);
    free(sig);
    free(want_thumb);
    kv_free_secret(jwt);
    json_decref(h);
    json_decref(c);
    kv_cert_clear(&cc);
    EVP_MD_CTX_free(md);
    X509_free(x);
    X509_free(other);
    EVP_PKEY_free(okey);
}

static void test_assertion_ps256(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

    (void)state;
    check_assertion(k, 0, 0, "PS256");
    check_assertion(k, 0, 1, "PS256");
    EVP_PKEY_free(k);
}

static void test_assertion_rs256(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

    (void)state;
    check_assertion(k, 1, 0, "RS256");
    EVP_PKEY_free(k);
}

static void test_assertion_es256(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    (void)state;
    check_assertion(k, 0, 1, "ES256");
    EVP_PKEY_free(k);
}

static void test_cert_errors(void **state)
{
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *xa = self_signed(a, "a");
    kv_cert_cred cc;
    kv_err e;
    const char *p;

    (void)state;
    memset(&cc, 0, sizeof(cc));
    p = write_pem(1, xa, NULL, b); /* key of another certificate */
    assert_int_equal(kv_cert_load(p, NULL, &cc, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "no certificate matches the key"));
    unlink(p);
    p = write_pem(1, xa, NULL, NULL); /* no key */
    assert_int_equal(kv_cert_load(p, NULL, &cc, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "no unencrypted private key"));
    unlink(p);
    p = write_pem(1, NULL, NULL, a); /* no certificate */
    assert_int_equal(kv_cert_load(p, NULL, &cc, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "holds no certificate"));
    unlink(p);
    assert_int_equal(kv_cert_load("/nonexistent/x.pem", NULL, &cc, &e), KV_ERR_CONFIG);
    assert_null(cc.key);
    X509_free(xa);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

/* ---- expires_on ---- */

static void test_expires_on(void **state)
{
    long long v = 0;

    (void)state;
    assert_int_equal(kv_parse_expires_on("1700000000", &v), KV_OK);
    assert_int_equal(v, 1700000000LL);
    assert_int_equal(kv_parse_expires_on(" 1700000000.0 ", &v), KV_OK);
    assert_int_equal(v, 1700000000LL);
    assert_int_equal(kv_parse_expires_on("2023-11-14T22:13:20Z", &v), KV_OK);
    assert_int_equal(v, 1700000000LL);
    assert_int_equal(kv_parse_expires_on("2023-11-14T23:13:20+01:00", &v), KV_OK);
    assert_int_equal(v, 1700000000LL);
    assert_int_equal(kv_parse_expires_on("2023-11-14T17:13:20-0500", &v), KV_OK);
    assert_int_equal(v, 1700000000LL);
    assert_int_equal(kv_parse_expires_on("2023-11-14 22:13:20.1234567Z", &v), KV_OK);
    assert_int_equal(v, 1700000000LL);
    assert_int_equal(kv_parse_expires_on("2000-02-29T00:00:00Z", &v), KV_OK);
    assert_int_equal(v, 951782400LL);
    assert_int_not_equal(kv_parse_expires_on("", &v), KV_OK);
    assert_int_not_equal(kv_parse_expires_on("tomorrow", &v), KV_OK);
    assert_int_not_equal(kv_parse_expires_on("-5", &v), KV_OK);
    assert_int_not_equal(kv_parse_expires_on("2023-13-14T22:13:20Z", &v), KV_OK);
    assert_int_not_equal(kv_parse_expires_on("2023-11-14T22:13:20Zjunk", &v), KV_OK);
    assert_int_not_equal(kv_parse_expires_on("1700000000abc", &v), KV_OK);
}

/* ---- configuration + environment ---- */

static const char *const *fake_env;

static const char *env_fn(const char *name)
{
    size_t i;

    for (i = 0; fake_env != NULL && fake_env[i] != NULL; i += 2)
        if (strcmp(fake_env[i], name) == 0)
            return fake_env[i + 1];
    return NULL;
}

static kv_rv resolve(const char *section, const char *const *env, kv_cred *c, kv_err *e)
{
    kv_conf *conf = NULL;
    char text[2048];
    kv_rv rv;

    snprintf(text, sizeof(text), "[vault dev]\nurl = https://dev.vault.localhost:8443\n%s",
             section);
    rv = kv_conf_parse(text, "t.conf", &conf, e);
    if (rv != KV_OK)
        return rv;
    fake_env = env;
    rv = kv_cred_resolve(&conf->vaults[0], env_fn, c, e);
    kv_conf_free(conf);
    return rv;
}

static void test_precedence(void **state)
{
    static const char *const sp_env[] = {"AZURE_TENANT_ID",
                                         "env-tenant",
                                         "AZURE_CLIENT_ID",
                                         "env-client",
                                         "AZURE_CLIENT_SECRET",
                                         "env-secret",
                                         "AZURE_AUTHORITY_HOST",
                                         "https://env-authority:1",
                                         "IDENTITY_ENDPOINT",
                                         "http://127.0.0.1:9/msi/token",
                                         "IDENTITY_HEADER",
                                         "h",
                                         NULL};
    static const char *const cert_env[] = {
        "AZURE_TENANT_ID", "t", "AZURE_CLIENT_ID", "c", "AZURE_CLIENT_CERTIFICATE_PATH",
        "/x.pem",          NULL};
    static const char *const mi_env[] = {"IDENTITY_ENDPOINT",
                                         "http://127.0.0.1:9/msi/token",
                                         "IDENTITY_HEADER",
                                         "hdr",
                                         "AZURE_CLIENT_ID",
                                         "uami",
                                         NULL};
    static const char *const mi_nohdr[] = {"IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token",
                                           NULL};
    static const char *const pod_env[] = {"AZURE_POD_IDENTITY_AUTHORITY_HOST",
                                          "http://127.0.0.1:7/", NULL};
    static const char *const half_env[] = {"AZURE_CLIENT_SECRET", "s", "AZURE_CLIENT_ID", "c",
                                           NULL};
    static const char *const far_mi[] = {"IDENTITY_ENDPOINT", "http://example.com/msi",
                                         "IDENTITY_HEADER", "h", NULL};
    kv_cred c;
    kv_err e;

    (void)state;
    /* a section without credential: the environment's service principal */
    assert_int_equal(resolve("", sp_env, &c, &e), KV_OK);
    assert_int_equal(c.kind, KV_CRED_SECRET);
    assert_true(c.from_env);
    assert_string_equal(c.tenant, "env-tenant");
    assert_string_equal(c.client_id, "env-client");
    assert_string_equal(c.secret, "env-secret");
    assert_string_equal(c.authority, "https://env-authority:1");
    kv_cred_clear(&c);
    /* explicit configuration wins, setting by setting; env fills the gaps */
    assert_int_equal(resolve("client_id = conf-client\nclient_secret = conf-secret\n"
                             "authority = https://conf-authority:2\n",
                             sp_env, &c, &e),
                     KV_OK);
    assert_int_equal(c.kind, KV_CRED_SECRET);
    assert_false(c.from_env);
    assert_string_equal(c.client_id, "conf-client");
    assert_string_equal(c.secret, "conf-secret");
    assert_string_equal(c.tenant, "env-tenant");
    assert_string_equal(c.authority, "https://conf-authority:2");
    kv_cred_clear(&c);
    /* an explicit auth line: no environment at all (tenant then comes from the challenge) */
    assert_int_equal(
        resolve("auth = client_secret\nclient_id = a\nclient_secret = b\n", sp_env, &c, &e), KV_OK);
    assert_null(c.tenant);
    assert_string_equal(c.authority, KV_DEFAULT_AUTHORITY);
    kv_cred_clear(&c);
    /* DefaultAzureCredential's order: secret, certificate, managed identity */
    assert_int_equal(resolve("auth = env\n", cert_env, &c, &e), KV_OK);
    assert_int_equal(c.kind, KV_CRED_CERT);
    assert_string_equal(c.cert_path, "/x.pem");
    assert_false(c.rs256);
    kv_cred_clear(&c);
    assert_int_equal(resolve("auth = env\n", mi_env, &c, &e), KV_OK);
    assert_int_equal(c.kind, KV_CRED_MI_APPSVC);
    assert_string_equal(c.mi_url, "http://127.0.0.1:9/msi/token");
    assert_string_equal(c.mi_header, "hdr");
    assert_string_equal(c.client_id, "uami");
    kv_cred_clear(&c);
    assert_int_equal(resolve("", pod_env, &c, &e), KV_OK);
    assert_int_equal(c.kind, KV_CRED_MI_IMDS);
    assert_string_equal(c.mi_url, "http://127.0.0.1:7/metadata/identity/oauth2/token");
    kv_cred_clear(&c);
    assert_int_equal(resolve("", NULL, &c, &e), KV_OK);
    assert_int_equal(c.kind, KV_CRED_MI_IMDS);
    assert_string_equal(c.mi_url, KV_DEFAULT_IMDS);
    assert_null(c.client_id);
    kv_cred_clear(&c);
    /* clear errors */
    assert_int_equal(resolve("auth = env\n", mi_nohdr, &c, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "IDENTITY_HEADER is missing"));
    kv_cred_clear(&c);
    assert_int_equal(resolve("", half_env, &c, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "AZURE_TENANT_ID"));
    kv_cred_clear(&c);
    assert_int_equal(resolve("", far_mi, &c, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "loopback"));
    kv_cred_clear(&c);
    assert_int_equal(resolve("auth = env\nclient_secret = x\n", NULL, &c, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "remove client_secret"));
    /* managed identity from the configuration beats the environment */
    assert_int_equal(resolve("auth = managed_identity\nimds_endpoint = http://127.0.0.1:5/m\n"
                             "client_id = conf-uami\n",
                             mi_env, &c, &e),
                     KV_OK);
    assert_int_equal(c.kind, KV_CRED_MI_IMDS);
    assert_string_equal(c.mi_url, "http://127.0.0.1:5/m");
    assert_string_equal(c.client_id, "conf-uami");
    kv_cred_clear(&c);
    assert_int_equal(resolve("auth = client_certificate\nclient_id = a\nclient_certificate = /p\n"
                             "client_assertion_alg = RS256\nclient_certificate_send_chain = true\n",
                             NULL, &c, &e),
                     KV_OK);
    assert_int_equal(c.kind, KV_CRED_CERT);
    assert_true(c.rs256);
    assert_true(c.send_chain);
    kv_cred_clear(&c);
    assert_int_equal(resolve("auth = static_token\ntoken_file = /t\n", sp_env, &c, &e), KV_OK);
    assert_int_equal(c.kind, KV_CRED_STATIC);
    kv_cred_clear(&c);
    assert_int_equal(resolve("auth = static_token\n", NULL, &c, &e), KV_ERR_CONFIG);
    assert_int_equal(resolve("auth = magic\n", NULL, &c, &e), KV_ERR_CONFIG);
    assert_int_equal(resolve("auth = client_secret\nclient_id=a\nclient_secret=b\n"
                             "client_assertion_alg = RS256\n",
                             NULL, &c, &e),
                     KV_ERR_CONFIG);
}

static void test_identity_urls(void **state)
{
    (void)state;
    assert_true(kv_identity_url_ok("http://169.254.169.254/metadata/identity/oauth2/token"));
    assert_true(kv_identity_url_ok("http://127.0.0.1:41234/msi/token"));
    assert_true(kv_identity_url_ok("http://localhost:8081/msi/token"));
    assert_true(kv_identity_url_ok("http://[::1]:8081/msi/token"));
    assert_true(kv_identity_url_ok("https://identity.example.com/token"));
    assert_false(kv_identity_url_ok("http://identity.example.com/token"));
    assert_false(kv_identity_url_ok("http://10.0.0.1/token"));
    assert_false(kv_identity_url_ok("http://127.0.0.1@evil.example/token"));
    assert_false(kv_identity_url_ok("ftp://127.0.0.1/token"));
    assert_false(kv_identity_url_ok("http://localhost.evil.example/x"));
}

/* ---- the 401 challenge ---- */

static kv_token_src *challenge_src(const char *section, kv_conf **conf, kv_http **http)
{
    char text[1024];
    kv_token_src *ts = NULL;
    kv_err e;

    snprintf(text, sizeof(text), "[vault dev]\nurl = https://dev.vault.localhost:8443\n%s",
             section);
    assert_int_equal(kv_conf_parse(text, "t.conf", conf, &e), KV_OK);
    assert_int_equal(kv_http_new(5, 0, http, &e), KV_OK);
    assert_int_equal(kv_token_src_new(&(*conf)->vaults[0], *http, &ts, &e), KV_OK);
    return ts;
}

static void test_challenge(void **state)
{
    kv_conf *conf = NULL;
    kv_http *http = NULL;
    kv_token_src *ts;
    kv_err e;

    (void)state;
    /* no tenant: learned from a challenge of the configured authority */
    ts = challenge_src("auth = client_secret\nclient_id = a\nclient_secret = b\n"
                       "authority = https://localhost:8443\n",
                       &conf, &http);
    assert_true(kv_token_needs_challenge(ts));
    assert_int_equal(kv_token_challenge(ts,
                                        "Bearer authorization=\"https://evil.example/t666\", "
                                        "resource=\"https://vault.azure.net\"",
                                        NULL, &e),
                     KV_ERR_AUTH);
    assert_non_null(strstr(e.message, "not the configured authority"));
    assert_true(kv_token_needs_challenge(ts));
    assert_int_equal(kv_token_challenge(ts,
                                        "Bearer authorization=\"https://LOCALHOST:8443/t-42\", "
                                        "resource=\"https://vault.azure.net\"",
                                        NULL, &e),
                     KV_OK);
    assert_false(kv_token_needs_challenge(ts));
    /* a resource that is no Key Vault resource for this host is refused */
    assert_int_equal(kv_token_challenge(ts,
                                        "Bearer authorization=\"https://localhost:8443/t-42\", "
                                        "resource=\"https://management.azure.com\"",
                                        NULL, &e),
                     KV_ERR_AUTH);
    assert_non_null(strstr(e.message, "not a Key Vault resource"));
    /* the MHSM resource is (challenge learning when resource is not pinned) */
    assert_int_equal(kv_token_challenge(ts,
                                        "Bearer authorization=\"https://localhost:8443/t-42\", "
                                        "resource=\"https://managedhsm.azure.net\"",
                                        NULL, &e),
                     KV_OK);
    /* nothing new, tenant known (another thread learnt it): the probe may be retried */
    assert_int_equal(kv_token_challenge(ts,
                                        "Bearer authorization=\"https://localhost:8443/t-42\", "
                                        "resource=\"https://managedhsm.azure.net\"",
                                        NULL, &e),
                     KV_OK);
    kv_token_src_free(ts);
    kv_http_free(http);
    kv_conf_free(conf);

    /* pinned tenant: a challenge for another tenant is an error */
    ts = challenge_src("tenant_id = t1\nclient_id = a\nclient_secret = b\n", &conf, &http);
    assert_false(kv_token_needs_challenge(ts));
    assert_int_equal(kv_token_challenge(ts,
                                        "Bearer authorization=\"https://login.windows.net/t2\", "
                                        "resource=\"https://vault.azure.net\"",
                                        "old-token", &e),
                     KV_ERR_AUTH);
    assert_non_null(strstr(e.message, "tenant t2"));
    /* same tenant, token rejected: retry */
    assert_int_equal(
        kv_token_challenge(ts,
                           "Bearer authorization=\"https://login.microsoftonline.com/t1\", "
                           "resource=\"https://vault.azure.net\"",
                           "old-token", &e),
        KV_OK);
    /* no challenge at all but a rejected token: retry once */
    assert_int_equal(kv_token_challenge(ts, "", "old-token", &e), KV_OK);
    kv_token_src_free(ts);
    kv_http_free(http);
    kv_conf_free(conf);
}

/* ---- static token: cache, re-read on change, JWT expiry ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *fake_jwt(long long exp)
{
    char claims[64], *c64, *out = malloc(256);

    snprintf(claims, sizeof(claims), "{\"exp\":%lld}", exp);
    c64 = kv_b64url_encode((const uint8_t *)claims, strlen(claims));
    snprintf(out, 256, "eyJhbGciOiJub25lIn0.%s.sig", c64);
    free(c64);
    return out;
}

static void test_static_token(void **state)
{
    char path[] = "/tmp/kvtoken-static-XXXXXX", section[128];
    kv_conf *conf = NULL;
    kv_http *http = NULL;
    kv_token_src *ts;
    char *tok = NULL, *jwt;
    long long exp = 0, now = (long long)time(NULL);
    kv_err e;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    jwt = fake_jwt(now + 1000);
    write_file(path, "  opaque-token-1\n");
    snprintf(section, sizeof(section), "auth = static_token\ntoken_file = %s\n", path);
    ts = challenge_src(section, &conf, &http);
    assert_false(kv_token_needs_challenge(ts));
    assert_int_equal(kv_token_get(ts, &tok, &exp, &e), KV_OK);
    assert_string_equal(tok, "opaque-token-1");
    kv_free_secret(tok);
    usleep(20000);
    write_file(path, jwt); /* the file changed: read again; exp from the JWT */
    assert_int_equal(kv_token_get(ts, &tok, &exp, &e), KV_OK);
    assert_string_equal(tok, jwt);
    assert_int_equal(exp, now + 1000);
    kv_free_secret(tok);
    free(jwt);
    usleep(20000);
    jwt = fake_jwt(now - 10);
    write_file(path, jwt);
    assert_int_equal(kv_token_get(ts, &tok, &exp, &e), KV_ERR_AUTH);
    assert_non_null(strstr(e.message, "expired"));
    assert_int_equal(kv_jwt_exp_unverified(jwt), now - 10);
    assert_int_equal(kv_jwt_exp_unverified("not-a-jwt"), 0);
    free(jwt);
    unlink(path);
    assert_int_equal(kv_token_get(ts, &tok, &exp, &e), KV_ERR_AUTH);
    assert_non_null(strstr(e.message, "cannot read token_file"));
    kv_token_src_free(ts);
    kv_http_free(http);
    kv_conf_free(conf);
}

/* A credential problem is reported by every kv_token_get, not by the source's creation. */
static void test_deferred_error(void **state)
{
    kv_conf *conf = NULL;
    kv_http *http = NULL;
    kv_token_src *ts;
    char *tok = NULL;
    kv_err e;

    (void)state;
    setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token", 1);
    unsetenv("IDENTITY_HEADER");
    ts = challenge_src("auth = managed_identity\n", &conf, &http);
    unsetenv("IDENTITY_ENDPOINT");
    assert_int_equal(kv_token_get(ts, &tok, NULL, &e), KV_ERR_CONFIG);
    assert_non_null(strstr(e.message, "IDENTITY_HEADER is missing"));
    assert_null(tok);
    kv_token_src_free(ts);
    kv_http_free(http);
    kv_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assertion_ps256), cmocka_unit_test(test_assertion_rs256),
        cmocka_unit_test(test_assertion_es256), cmocka_unit_test(test_cert_errors),
        cmocka_unit_test(test_expires_on),      cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_identity_urls),   cmocka_unit_test(test_challenge),
        cmocka_unit_test(test_static_token),    cmocka_unit_test(test_deferred_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
