/* test_kv_hsm.c - kv_hsm (the local HSM pool, a PKCS#11 consumer) against a SoftHSMv2 token
 * created in a temporary directory: key generation, signatures checked with OpenSSL, RSA
 * decryption, AES-GCM/CBC/key wrap, random, destroy, a wrong PIN, and use after fork; the
 * pool wrapping key: provisioning (SO PIN: CKA_TRUSTED) on two member tokens, wrap on one and
 * unwrap on the other for RSA / EC / AES keys, replication, a foreign wrapping key, a tampered
 * blob, the untrusted fallback, legacy non-extractable keys, and the passphrase escrow; the
 * [pool NAME] configuration and the local-pool backend (kv_pool.c) through kv_client.h on three
 * member tokens (replication, every op, RFC 5649 against OpenSSL, a member removed and back).
 * Skips when SoftHSMv2 is not installed. Env KV_SOFTHSM_MODULE overrides the module path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "kv_client.h"
#include "kv_config.h"
#include "kv_ecdsa.h"
#include "kv_hsm.h"
#include "kv_pool.h"

typedef struct kv_test_state {
    char dir[256];
    const char *module;
    kv_hsm_pool *pool;
} kv_test_state;

static int kv_run(const char *cmd)
{
    int rc = system(cmd);

    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int kv_setup(void **state)
{
    static kv_test_state st;
    kv_hsm_member_cfg m = {0};
    char conf[300], cmd[900];
    FILE *f;
    kv_err err;

    memset(&st, 0, sizeof(st));
    st.module = getenv("KV_SOFTHSM_MODULE");
    if (st.module == NULL)
        st.module = "/usr/lib/softhsm/libsofthsm2.so";
    if (access(st.module, R_OK) != 0)
        return -1;
    snprintf(st.dir, sizeof(st.dir), "/tmp/kv_hsm_test.XXXXXX");
    if (mkdtemp(st.dir) == NULL)
        return -1;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", st.dir);
    snprintf(cmd, sizeof(cmd), "%s/tokens", st.dir);
    mkdir(cmd, 0700);
    f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            st.dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label kvtest --so-pin 123456 --pin 654321 "
             ">/dev/null");
    if (kv_run(cmd) != 0)
        return -1;
    /* kvw1 + kvw2: a two-member pool with a trusted wrapping key; kvw3: another pool;
     * kvp1..3: the [pool upool] of test_pool_backend (kv_pool.c through kv_client.h) */
    snprintf(
        cmd, sizeof(cmd),
        "for t in kvw1 kvw2 kvw3 kvp1 kvp2 kvp3; do softhsm2-util --init-token --free --label $t "
        "--so-pin 123456 --pin 654321 >/dev/null || exit 1; done");
    if (kv_run(cmd) != 0)
        return -1;
    /* a second token, never logged in, for the wrong-PIN case */
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label kvtest2 --so-pin 123456 --pin 111111 "
             ">/dev/null");
    if (kv_run(cmd) != 0)
        return -1;
    m.module = st.module;
    m.token_label = "kvtest";
    m.pin = "654321";
    if (kv_hsm_pool_open("p1", &m, 1, 3, &st.pool, &err) != KV_OK) {
        fprintf(stderr, "pool open: %s\n", err.message);
        return -1;
    }
    *state = &st;
    return 0;
}

static int kv_teardown(void **state)
{
    kv_test_state *st = *state;
    char cmd[300];

    kv_hsm_pool_free(st->pool);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", st->dir);
    kv_run(cmd);
    return 0;
}

static void kv_digest(const char *md, const char *msg, uint8_t *out, size_t *len)
{
    unsigned int l = 0;

    assert_int_equal(EVP_Digest(msg, strlen(msg), out, &l, EVP_get_digestbyname(md), NULL), 1);
    *len = l;
}

static void kv_verify(EVP_PKEY *pub, int pad, const EVP_MD *md, const uint8_t *d, size_t dlen,
                      const uint8_t *sig, size_t siglen)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);

    assert_non_null(c);
    assert_int_equal(EVP_PKEY_verify_init(c), 1);
    if (pad != 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, pad), 1);
        if (pad == RSA_PKCS1_PSS_PADDING)
            assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, md), 1);
    assert_int_equal(EVP_PKEY_verify(c, sig, siglen, d, dlen), 1);
    EVP_PKEY_CTX_free(c);
}

static void test_rsa(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_keyspec spec = {KV_HSM_RSA, 2048, 0};
    char ref[KV_HSM_REF_MAX];
    EVP_PKEY *pub = NULL, *pub2 = NULL;
    uint8_t d[64], *sig = NULL, *pt = NULL, ct[512], msg[32];
    size_t dlen, siglen, ptlen, ctlen;
    EVP_PKEY_CTX *c;
    kv_err err;
    int pads[] = {KV_HSM_PAD_PKCS1, KV_HSM_PAD_OAEP_SHA1, KV_HSM_PAD_OAEP_SHA256}, i;
    kv_hsm_member_info mi;
    unsigned long served;

    assert_int_equal(kv_hsm_generate(st->pool, &spec, "unit/rsa", ref, &pub, &err), KV_OK);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_get_bits(pub), 2048);
    assert_non_null(strstr(ref, "pkcs11:token=kvtest;id=%"));
    assert_int_equal(kv_hsm_get_public(st->pool, ref, &pub2, &err), KV_OK);
    assert_int_equal(EVP_PKEY_eq(pub, pub2), 1);

    kv_digest("SHA256", "hello", d, &dlen);
    assert_int_equal(kv_hsm_member_info_get(st->pool, 0, &mi, &err), KV_OK);
    served = mi.served;
    assert_int_equal(
        kv_hsm_sign(st->pool, ref, KV_HSM_SIG_PKCS1, EVP_sha256(), d, dlen, &sig, &siglen, &err),
        KV_OK);
    assert_int_equal(siglen, 256);
    kv_verify(pub, RSA_PKCS1_PADDING, EVP_sha256(), d, dlen, sig, siglen);
    free(sig);
    /* the member's counter of completed operations (kvault pool status "served") */
    assert_int_equal(kv_hsm_member_info_get(st->pool, 0, &mi, &err), KV_OK);
    assert_int_equal(mi.served, served + 1);
    kv_digest("SHA384", "hello", d, &dlen);
    assert_int_equal(
        kv_hsm_sign(st->pool, ref, KV_HSM_SIG_PSS, EVP_sha384(), d, dlen, &sig, &siglen, &err),
        KV_OK);
    kv_verify(pub, RSA_PKCS1_PSS_PADDING, EVP_sha384(), d, dlen, sig, siglen);
    free(sig);
    /* wrong digest length is refused before the token */
    assert_int_equal(
        kv_hsm_sign(st->pool, ref, KV_HSM_SIG_PKCS1, EVP_sha256(), d, 20, &sig, &siglen, &err),
        KV_ERR_INVALID_ARG);

    for (i = 0; i < 3; i++) {
        RAND_bytes(msg, sizeof(msg));
        c = EVP_PKEY_CTX_new(pub, NULL);
        assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
        if (pads[i] == KV_HSM_PAD_PKCS1) {
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING);
        } else {
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING);
            EVP_PKEY_CTX_set_rsa_oaep_md(c, pads[i] == KV_HSM_PAD_OAEP_SHA1 ? EVP_sha1()
                                                                            : EVP_sha256());
            EVP_PKEY_CTX_set_rsa_mgf1_md(c, pads[i] == KV_HSM_PAD_OAEP_SHA1 ? EVP_sha1()
                                                                            : EVP_sha256());
        }
        ctlen = sizeof(ct);
        assert_int_equal(EVP_PKEY_encrypt(c, ct, &ctlen, msg, sizeof(msg)), 1);
        EVP_PKEY_CTX_free(c);
        if (kv_hsm_rsa_decrypt(st->pool, ref, (kv_hsm_rsa_pad)pads[i], ct, ctlen, &pt, &ptlen,
                               &err) != KV_OK)
            fail_msg("decrypt pad %d: %s", pads[i], err.message);
        assert_int_equal(ptlen, sizeof(msg));
        assert_memory_equal(pt, msg, sizeof(msg));
        OPENSSL_clear_free(pt, ptlen);
    }
    ct[5] ^= 1;
    assert_int_not_equal(
        kv_hsm_rsa_decrypt(st->pool, ref, KV_HSM_PAD_OAEP_SHA256, ct, ctlen, &pt, &ptlen, &err),
        KV_OK);
    assert_int_equal(kv_hsm_destroy(st->pool, ref, &err), KV_OK);
    assert_int_equal(kv_hsm_find(st->pool, ref, &err), KV_ERR_NOT_FOUND);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(pub2);
}

static void test_ec(void **state)
{
    kv_test_state *st = *state;
    static const struct {
        int nid;
        const char *md;
        size_t rs;
    } curves[] = {{NID_X9_62_prime256v1, "SHA256", 64},
                  {NID_secp384r1, "SHA384", 96},
                  {NID_secp521r1, "SHA512", 132},
                  {NID_secp256k1, "SHA256", 64}};
    size_t i;

    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        kv_hsm_keyspec spec = {KV_HSM_EC, 0, curves[i].nid};
        char ref[KV_HSM_REF_MAX];
        EVP_PKEY *pub = NULL;
        uint8_t d[64], *sig = NULL, der[160];
        size_t dlen, siglen, derlen = sizeof(der);
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        kv_err err;

        assert_int_equal(kv_hsm_generate(st->pool, &spec, "unit/ec", ref, &pub, &err), KV_OK);
        kv_digest(curves[i].md, "hello ec", d, &dlen);
        assert_int_equal(
            kv_hsm_sign(st->pool, ref, KV_HSM_SIG_ECDSA, NULL, d, dlen, &sig, &siglen, &err),
            KV_OK);
        assert_int_equal(siglen, curves[i].rs);
        assert_int_equal(kv_ecdsa_raw_to_der(sig, siglen, der, &derlen), KV_OK);
        {
            EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);

            assert_int_equal(EVP_PKEY_verify_init(c), 1);
            assert_int_equal(EVP_PKEY_verify(c, der, derlen, d, dlen), 1);
            EVP_PKEY_CTX_free(c);
        }
        free(sig);
        EVP_MD_CTX_free(m);
        EVP_PKEY_free(pub);
    }
}

static void test_aes(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_keyspec spec = {KV_HSM_AES, 256, 0};
    char ref[KV_HSM_REF_MAX];
    uint8_t iv[12], tag[16], *ct = NULL, *pt = NULL, msg[45], civ[16], key[32];
    size_t ctlen, ptlen;
    kv_err err;

    RAND_bytes(msg, sizeof(msg));
    assert_int_equal(kv_hsm_generate(st->pool, &spec, "unit/aes", ref, NULL, &err), KV_OK);
    assert_non_null(strstr(ref, "type=secret-key"));
    /* GCM */
    assert_int_equal(kv_hsm_aes_gcm_encrypt(st->pool, ref, (const uint8_t *)"aad", 3, msg,
                                            sizeof(msg), iv, &ct, &ctlen, tag, &err),
                     KV_OK);
    assert_int_equal(ctlen, sizeof(msg));
    assert_int_equal(kv_hsm_aes_gcm_decrypt(st->pool, ref, iv, (const uint8_t *)"aad", 3, ct, ctlen,
                                            tag, &pt, &ptlen, &err),
                     KV_OK);
    assert_memory_equal(pt, msg, sizeof(msg));
    free(pt);
    tag[0] ^= 1;
    if (kv_hsm_aes_gcm_decrypt(st->pool, ref, iv, (const uint8_t *)"aad", 3, ct, ctlen, tag, &pt,
                               &ptlen, &err) != KV_ERR_BAD_REQUEST)
        fail_msg("tampered GCM: %s", err.message);
    free(ct);
    /* CBC with and without padding */
    RAND_bytes(civ, sizeof(civ));
    assert_int_equal(
        kv_hsm_aes_cbc(st->pool, ref, true, true, civ, msg, sizeof(msg), &ct, &ctlen, &err), KV_OK);
    assert_int_equal(ctlen, 48);
    assert_int_equal(kv_hsm_aes_cbc(st->pool, ref, false, true, civ, ct, ctlen, &pt, &ptlen, &err),
                     KV_OK);
    assert_int_equal(ptlen, sizeof(msg));
    assert_memory_equal(pt, msg, sizeof(msg));
    free(ct);
    free(pt);
    assert_int_equal(kv_hsm_aes_cbc(st->pool, ref, true, false, civ, msg, 32, &ct, &ctlen, &err),
                     KV_OK);
    assert_int_equal(ctlen, 32);
    assert_int_equal(kv_hsm_aes_cbc(st->pool, ref, false, false, civ, ct, ctlen, &pt, &ptlen, &err),
                     KV_OK);
    assert_memory_equal(pt, msg, 32);
    free(ct);
    free(pt);
    assert_int_equal(kv_hsm_aes_cbc(st->pool, ref, true, false, civ, msg, 45, &ct, &ctlen, &err),
                     KV_ERR_BAD_REQUEST);
    /* key wrap, RFC 3394 and RFC 5649 */
    RAND_bytes(key, sizeof(key));
    assert_int_equal(kv_hsm_aes_wrap(st->pool, ref, true, false, key, 32, &ct, &ctlen, &err),
                     KV_OK);
    assert_int_equal(ctlen, 40);
    assert_int_equal(kv_hsm_aes_wrap(st->pool, ref, false, false, ct, ctlen, &pt, &ptlen, &err),
                     KV_OK);
    assert_int_equal(ptlen, 32);
    assert_memory_equal(pt, key, 32);
    OPENSSL_clear_free(pt, ptlen);
    ct[3] ^= 1;
    assert_int_equal(kv_hsm_aes_wrap(st->pool, ref, false, false, ct, ctlen, &pt, &ptlen, &err),
                     KV_ERR_BAD_REQUEST);
    free(ct);
    /* RFC 5649: SoftHSMv2 2.6.1 returns the zero-padded length on unwrap, so use a multiple
     * of 8 here (kv_hsm.h documents the caveat) */
    assert_int_equal(kv_hsm_aes_wrap(st->pool, ref, true, true, key, 24, &ct, &ctlen, &err), KV_OK);
    assert_int_equal(ctlen, 32);
    assert_int_equal(kv_hsm_aes_wrap(st->pool, ref, false, true, ct, ctlen, &pt, &ptlen, &err),
                     KV_OK);
    assert_int_equal(ptlen, 24);
    assert_memory_equal(pt, key, 24);
    OPENSSL_clear_free(pt, ptlen);
    free(ct);
}

static void test_random_and_errors(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_member_cfg m = {st->module, "kvtest2", "000000", NULL};
    kv_hsm_member_cfg nt = {st->module, "no-such-token", "1234", NULL};
    kv_hsm_pool *bad = NULL;
    uint8_t buf[128], zero[128] = {0};
    EVP_PKEY *pub = NULL;
    kv_err err;

    assert_int_equal(kv_hsm_random(st->pool, buf, sizeof(buf), &err), KV_OK);
    assert_memory_not_equal(buf, zero, sizeof(buf));
    assert_int_equal(kv_hsm_get_public(st->pool, "pkcs11:token=kvtest;id=%01%02", &pub, &err),
                     KV_ERR_NOT_FOUND);
    assert_int_equal(kv_hsm_find(st->pool, "pkcs11:token=other;id=%01", &err), KV_ERR_NOT_FOUND);
    assert_int_equal(kv_hsm_find(st->pool, "nonsense", &err), KV_ERR_INVALID_ARG);
    /* a wrong PIN: the pool is unavailable, and the message names it */
    assert_int_equal(kv_hsm_pool_open("badpin", &m, 1, 1, &bad, &err), KV_ERR_SERVER);
    assert_non_null(strstr(err.message, "HSM pool 'badpin' unavailable"));
    assert_non_null(strstr(err.message, "CKR_PIN_INCORRECT"));
    assert_int_equal(kv_hsm_random(bad, buf, 8, &err), KV_ERR_SERVER);
    kv_hsm_pool_free(bad);
    bad = NULL;
    assert_int_equal(kv_hsm_pool_open("nt", &nt, 1, 1, &bad, &err), KV_ERR_SERVER);
    assert_non_null(strstr(err.message, "CKR_TOKEN_NOT_PRESENT"));
    kv_hsm_pool_free(bad);
}

static void test_import(void **state)
{
    kv_test_state *st = *state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-384"), *pub = NULL;
    char ref[KV_HSM_REF_MAX];
    uint8_t d[48], *sig = NULL, key[32], iv[16], msg[32], *ct = NULL, ref_ct[48], der[120];
    size_t siglen, ctlen, derlen = sizeof(der);
    int outl = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    kv_err err;

    assert_non_null(rsa);
    assert_non_null(ec);
    memset(d, 3, sizeof(d));
    assert_int_equal(kv_hsm_import_pkey(st->pool, rsa, "unit/imp-rsa", ref, &err), KV_OK);
    assert_int_equal(kv_hsm_get_public(st->pool, ref, &pub, &err), KV_OK);
    assert_int_equal(EVP_PKEY_eq(pub, rsa), 1);
    EVP_PKEY_free(pub);
    assert_int_equal(
        kv_hsm_sign(st->pool, ref, KV_HSM_SIG_PKCS1, EVP_sha256(), d, 32, &sig, &siglen, &err),
        KV_OK);
    kv_verify(rsa, RSA_PKCS1_PADDING, EVP_sha256(), d, 32, sig, siglen);
    free(sig);
    assert_int_equal(kv_hsm_import_pkey(st->pool, ec, "unit/imp-ec", ref, &err), KV_OK);
    assert_int_equal(kv_hsm_sign(st->pool, ref, KV_HSM_SIG_ECDSA, NULL, d, 48, &sig, &siglen, &err),
                     KV_OK);
    assert_int_equal(siglen, 96);
    assert_int_equal(kv_ecdsa_raw_to_der(sig, siglen, der, &derlen), KV_OK);
    {
        EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(ec, NULL);

        assert_int_equal(EVP_PKEY_verify_init(v), 1);
        assert_int_equal(EVP_PKEY_verify(v, der, derlen, d, 48), 1);
        EVP_PKEY_CTX_free(v);
    }
    free(sig);
    /* AES: the pool's CBC equals OpenSSL's under the imported key */
    RAND_bytes(key, sizeof(key));
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(msg, sizeof(msg));
    assert_int_equal(kv_hsm_import_aes(st->pool, key, 32, "unit/imp-aes", ref, &err), KV_OK);
    assert_int_equal(kv_hsm_aes_cbc(st->pool, ref, true, false, iv, msg, 32, &ct, &ctlen, &err),
                     KV_OK);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv), 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_int_equal(EVP_EncryptUpdate(c, ref_ct, &outl, msg, 32), 1);
    assert_int_equal(outl, 32);
    assert_memory_equal(ct, ref_ct, 32);
    assert_int_equal(kv_hsm_import_aes(st->pool, key, 20, "unit/bad", ref, &err),
                     KV_ERR_INVALID_ARG);
    free(ct);
    EVP_CIPHER_CTX_free(c);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

static void test_fork(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_keyspec spec = {KV_HSM_EC, 0, NID_X9_62_prime256v1};
    char ref[KV_HSM_REF_MAX];
    uint8_t d[32], *sig = NULL;
    size_t siglen;
    kv_err err;
    pid_t pid;
    int status = -1;

    memset(d, 7, sizeof(d));
    assert_int_equal(kv_hsm_generate(st->pool, &spec, "unit/fork", ref, NULL, &err), KV_OK);
    assert_int_equal(kv_hsm_sign(st->pool, ref, KV_HSM_SIG_ECDSA, NULL, d, 32, &sig, &siglen, &err),
                     KV_OK);
    free(sig);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kv_rv rv = kv_hsm_sign(st->pool, ref, KV_HSM_SIG_ECDSA, NULL, d, 32, &sig, &siglen, &err);

        if (rv != KV_OK)
            fprintf(stderr, "child: %s\n", err.message);
        _exit(rv == KV_OK && siglen == 64 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the parent's sessions still work */
    assert_int_equal(kv_hsm_sign(st->pool, ref, KV_HSM_SIG_ECDSA, NULL, d, 32, &sig, &siglen, &err),
                     KV_OK);
    free(sig);
}

/* ---- the pool wrapping key ---- */

static kv_hsm_pool *kv_open2(kv_test_state *st, const char *name, const char *t1, const char *t2,
                             const char *so_pin)
{
    kv_hsm_member_cfg m[2];
    kv_hsm_pool *p = NULL;
    kv_err err;

    memset(m, 0, sizeof(m));
    m[0].module = m[1].module = st->module;
    m[0].token_label = t1;
    m[1].token_label = t2;
    m[0].pin = m[1].pin = "654321";
    m[0].so_pin = m[1].so_pin = so_pin;
    assert_int_equal(kv_hsm_pool_open(name, m, t2 ? 2 : 1, 2, &p, &err), KV_OK);
    return p;
}

/* ref with its token label replaced (the same CKA_ID on another member). */
static void kv_ref_on(const char *ref, const char *from, const char *to, char out[KV_HSM_REF_MAX])
{
    const char *p = strstr(ref, from);

    assert_non_null(p);
    snprintf(out, KV_HSM_REF_MAX, "%.*s%s%s", (int)(p - ref), ref, to, p + strlen(from));
}

static void kv_sign_check(kv_hsm_pool *p, const char *ref, EVP_PKEY *pub, bool rsa)
{
    uint8_t d[32], *sig = NULL, der[160];
    size_t siglen = 0, derlen = sizeof(der);
    kv_err err;

    memset(d, 0x5a, sizeof(d));
    assert_int_equal(kv_hsm_sign(p, ref, rsa ? KV_HSM_SIG_PKCS1 : KV_HSM_SIG_ECDSA, EVP_sha256(), d,
                                 sizeof(d), &sig, &siglen, &err),
                     KV_OK);
    if (rsa) {
        kv_verify(pub, RSA_PKCS1_PADDING, EVP_sha256(), d, sizeof(d), sig, siglen);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);

        assert_int_equal(kv_ecdsa_raw_to_der(sig, siglen, der, &derlen), KV_OK);
        assert_int_equal(EVP_PKEY_verify_init(c), 1);
        assert_int_equal(EVP_PKEY_verify(c, der, derlen, d, sizeof(d)), 1);
        EVP_PKEY_CTX_free(c);
    }
    free(sig);
}

static void test_wrapkey(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_pool *p = kv_open2(st, "wp", "kvw1", "kvw2", "123456"), *p3;
    uint8_t mat[KV_HSM_WRAPKEY_LEN], mat2[KV_HSM_WRAPKEY_LEN], back[KV_HSM_WRAPKEY_LEN];
    char fp[KV_HSM_FP_HEX], *escrow = NULL;
    kv_hsm_wrapkey_status ws;
    size_t made = 9;
    kv_err err;

    assert_int_equal(RAND_bytes(mat, sizeof(mat)), 1);
    assert_int_equal(RAND_bytes(mat2, sizeof(mat2)), 1);
    assert_int_equal(kv_hsm_wrapkey_status_get(p, &ws, &err), KV_OK);
    assert_int_equal(ws.holding, 0);
    assert_string_equal(ws.missing, "kvw1, kvw2");
    /* provision both members (SO PIN: trusted), idempotent, a different key conflicts */
    assert_int_equal(kv_hsm_wrapkey_provision(p, mat, &made, &err), KV_OK);
    assert_int_equal(made, 2);
    assert_int_equal(kv_hsm_wrapkey_provision(p, mat, &made, &err), KV_OK);
    assert_int_equal(made, 0);
    assert_int_equal(kv_hsm_wrapkey_provision(p, mat2, &made, &err), KV_ERR_CONFLICT);
    assert_int_equal(kv_hsm_wrapkey_status_get(p, &ws, &err), KV_OK);
    assert_int_equal(ws.reachable, 2);
    assert_int_equal(ws.holding, 2);
    assert_int_equal(ws.trusted, 2);
    assert_true(ws.consistent);
    assert_int_equal(kv_hsm_wrapkey_fingerprint(mat, fp, &err), KV_OK);
    assert_string_equal(ws.fingerprint, fp);
    /* escrow round trip; a wrong passphrase fails */
    assert_int_equal(kv_hsm_wrapkey_seal(mat, "correct horse", &escrow, &err), KV_OK);
    assert_non_null(strstr(escrow, fp));
    assert_int_equal(kv_hsm_wrapkey_unseal(escrow, "wrong horse", back, &err), KV_ERR_BAD_REQUEST);
    assert_int_equal(kv_hsm_wrapkey_unseal(escrow, "correct horse", back, &err), KV_OK);
    assert_memory_equal(back, mat, sizeof(mat));
    free(escrow);
    /* a third token gets another wrapping key without an SO PIN: not trusted */
    p3 = kv_open2(st, "p3", "kvw3", NULL, NULL);
    assert_int_equal(kv_hsm_wrapkey_provision(p3, mat2, &made, &err), KV_OK);
    assert_int_equal(made, 1);
    assert_int_equal(kv_hsm_wrapkey_status_get(p3, &ws, &err), KV_OK);
    assert_int_equal(ws.holding, 1);
    assert_int_equal(ws.trusted, 0);
    kv_hsm_pool_free(p3);
    /* a wrong SO PIN is a configuration error, and nothing is provisioned */
    {
        kv_hsm_member_cfg m = {st->module, "kvtest2", "111111", NULL, "999999", NULL};

        assert_int_equal(kv_hsm_pool_open("badso", &m, 1, 1, &p3, &err), KV_OK);
        assert_int_equal(kv_hsm_wrapkey_provision(p3, mat, &made, &err), KV_ERR_CONFIG);
        assert_non_null(strstr(err.message, "SO PIN"));
        assert_int_equal(kv_hsm_wrapkey_status_get(p3, &ws, &err), KV_OK);
        assert_int_equal(ws.holding, 0);
        kv_hsm_pool_free(p3);
    }
    OPENSSL_cleanse(mat, sizeof(mat));
    OPENSSL_cleanse(mat2, sizeof(mat2));
    kv_hsm_pool_free(p);
}

/* wrap on one member, unwrap on the other; the copy works and matches */
static void test_wrap_unwrap(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_pool *p = kv_open2(st, "wp", "kvw1", "kvw2", "123456");
    static const kv_hsm_keyspec specs[] = {
        {KV_HSM_RSA, 2048, 0},
        {KV_HSM_EC, 0, NID_X9_62_prime256v1},
        {KV_HSM_EC, 0, NID_secp384r1},
        {KV_HSM_AES, 256, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        kv_hsm_unwrap_spec us = {"unit/unwrapped", false, NULL};
        char ref[KV_HSM_REF_MAX], ref2[KV_HSM_REF_MAX], fp[KV_HSM_FP_HEX];
        const char *from;
        EVP_PKEY *pub = NULL, *pub2 = NULL;
        uint8_t *blob = NULL, *ct = NULL, *pt = NULL, iv[12], tag[16];
        size_t bloblen = 0, ctlen = 0, ptlen = 0;
        bool aes = specs[i].type == KV_HSM_AES;
        kv_err err;

        assert_int_equal(kv_hsm_generate(p, &specs[i], "unit/wrapme", ref, aes ? NULL : &pub, &err),
                         KV_OK);
        from = strstr(ref, "token=kvw1") ? "kvw1" : "kvw2";
        us.member = strcmp(from, "kvw1") == 0 ? "kvw2" : "kvw1";
        assert_int_equal(kv_hsm_wrap_key(p, ref, &blob, &bloblen, &err), KV_OK);
        assert_int_equal(kv_hsm_blob_fingerprint(blob, bloblen, fp, &err), KV_OK);
        assert_int_equal(kv_hsm_unwrap_key(p, blob, bloblen, &us, ref2, &err), KV_OK);
        assert_non_null(strstr(ref2, us.member));
        if (aes) {
            int bits = 0;

            assert_int_equal(kv_hsm_secret_bits(p, ref2, &bits, &err), KV_OK);
            assert_int_equal(bits, 256);
            assert_int_equal(kv_hsm_aes_gcm_encrypt(p, ref, NULL, 0, (const uint8_t *)"abc", 3, iv,
                                                    &ct, &ctlen, tag, &err),
                             KV_OK);
            assert_int_equal(
                kv_hsm_aes_gcm_decrypt(p, ref2, iv, NULL, 0, ct, ctlen, tag, &pt, &ptlen, &err),
                KV_OK);
            assert_int_equal(ptlen, 3);
            assert_memory_equal(pt, "abc", 3);
            free(ct);
            free(pt);
        } else {
            assert_int_equal(kv_hsm_get_public(p, ref2, &pub2, &err), KV_OK);
            assert_int_equal(EVP_PKEY_eq(pub, pub2), 1);
            kv_sign_check(p, ref2, pub, specs[i].type == KV_HSM_RSA);
            kv_sign_check(p, ref, pub, specs[i].type == KV_HSM_RSA);
        }
        /* a tampered blob fails the integrity check */
        blob[bloblen - 3] ^= 0x40;
        assert_int_equal(kv_hsm_unwrap_key(p, blob, bloblen, &us, ref2, &err), KV_ERR_BAD_REQUEST);
        blob[bloblen - 3] ^= 0x40;
        /* the other pool's wrapping key (kvw3) is different: a clear refusal */
        {
            kv_hsm_pool *p3 = kv_open2(st, "p3", "kvw3", NULL, NULL);

            assert_int_equal(kv_hsm_unwrap_key(p3, blob, bloblen, NULL, ref2, &err),
                             KV_ERR_BAD_REQUEST);
            assert_non_null(strstr(err.message, "different pool wrapping key"));
            assert_non_null(strstr(err.message, fp));
            kv_hsm_pool_free(p3);
        }
        free(blob);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(pub2);
    }
    kv_hsm_pool_free(p);
}

static void test_replicate_and_legacy(void **state)
{
    kv_test_state *st = *state;
    kv_hsm_pool *p = kv_open2(st, "wp", "kvw1", "kvw2", "123456"), *p3;
    kv_hsm_keyspec spec = {KV_HSM_EC, 0, NID_X9_62_prime256v1};
    char ref[KV_HSM_REF_MAX], other[KV_HSM_REF_MAX];
    EVP_PKEY *pub = NULL, *pub2 = NULL;
    uint8_t *blob = NULL, raw[32];
    size_t copies = 9, bloblen = 0;
    kv_err err;

    assert_int_equal(kv_hsm_generate(p, &spec, "unit/replicated", ref, &pub, &err), KV_OK);
    if (strstr(ref, "token=kvw1"))
        kv_ref_on(ref, "kvw1", "kvw2", other);
    else
        kv_ref_on(ref, "kvw2", "kvw1", other);
    assert_int_equal(kv_hsm_replicate(p, ref, &copies, &err), KV_OK);
    assert_int_equal(copies, 1);
    assert_int_equal(kv_hsm_replicate(p, ref, &copies, &err), KV_OK);
    assert_int_equal(copies, 0);
    kv_sign_check(p, other, pub, false);
    /* the original gone: its reference is served by the replica (failover by CKA_ID) */
    assert_int_equal(kv_hsm_destroy(p, other, &err), KV_OK); /* every copy */
    assert_int_equal(kv_hsm_find(p, ref, &err), KV_ERR_NOT_FOUND);
    assert_int_equal(kv_hsm_generate(p, &spec, "unit/replicated2", ref, NULL, &err), KV_OK);
    assert_int_equal(kv_hsm_replicate(p, ref, &copies, &err), KV_OK);
    assert_int_equal(copies, 1);
    assert_int_equal(kv_hsm_get_public(p, ref, &pub2, &err), KV_OK);
    {
        char cmd[600];

        /* remove the copy on the member the reference names (another process, pkcs11-tool) */
        snprintf(cmd, sizeof(cmd),
                 "pkcs11-tool --module '%s' --token-label %s --login --pin 654321 "
                 "--delete-object --type privkey --label unit/replicated2 >/dev/null 2>&1",
                 st->module, strstr(ref, "token=kvw1") ? "kvw1" : "kvw2");
        assert_int_equal(kv_run(cmd), 0);
    }
    kv_sign_check(p, ref, pub2, false); /* served by the replica */
    /* replicating again (from the replica) puts it back on the reference's member */
    assert_int_equal(kv_hsm_replicate(p, ref, &copies, &err), KV_OK);
    assert_int_equal(copies, 1);
    kv_sign_check(p, ref, pub2, false);
    EVP_PKEY_free(pub2);
    EVP_PKEY_free(pub);
    pub = NULL;
    /* untrusted fallback (kvw3, no SO PIN): keys are extractable and wrap/unwrap works */
    p3 = kv_open2(st, "p3", "kvw3", NULL, NULL);
    assert_int_equal(kv_hsm_generate(p3, &spec, "unit/untrusted", ref, &pub, &err), KV_OK);
    assert_int_equal(kv_hsm_wrap_key(p3, ref, &blob, &bloblen, &err), KV_OK);
    assert_int_equal(kv_hsm_unwrap_key(p3, blob, bloblen, NULL, other, &err), KV_OK);
    kv_sign_check(p3, other, pub, false);
    free(blob);
    EVP_PKEY_free(pub);
    kv_hsm_pool_free(p3);
    kv_hsm_pool_free(p);
    /* a key made where there is no wrapping key (st->pool, token kvtest) is never extractable */
    assert_int_equal(kv_hsm_generate(st->pool, &spec, "unit/legacy", ref, NULL, &err), KV_OK);
    assert_int_equal(kv_hsm_wrap_key(st->pool, ref, &blob, &bloblen, &err), KV_ERR_UNSUPPORTED);
    memset(raw, 1, sizeof(raw));
    assert_int_equal(kv_hsm_import_aes(st->pool, raw, sizeof(raw), "unit/legacy-aes", ref, &err),
                     KV_OK);
    assert_int_equal(kv_hsm_wrap_key(st->pool, ref, &blob, &bloblen, &err), KV_ERR_UNSUPPORTED);
}

/* ---- kv_pool.c: a [pool NAME] section as a kv_vault (kvault.so's local-pool slots) ---- */

static void test_pool_config(void **state)
{
    static const struct {
        const char *text, *want; /* want: NULL = accepted, else part of the error */
    } cases[] = {
        {"[pool pp1]\nmember = pkcs11:token=a?module-path=/m.so&pin-source=file:/pin\n", NULL},
        {"[pool pp1]\nmodule = /m.so\npin_file = /pin\nmember = pkcs11:token=a%20b;serial=1\n"
         "member = pkcs11:token=c?pin-value=1234\nsessions = 2\nretry_seconds = 0\n",
         NULL},
        {"[pool pp1]\n", "at least one 'member"},
        {"[pool pp1]\nmember = token=a\n", "must be a PKCS#11 URI"},
        {"[pool pp1]\nmember = pkcs11:model=x?module-path=/m.so&pin-value=1\n", "token=LABEL"},
        {"[pool pp1]\nmember = pkcs11:token=a;object=k?module-path=/m.so&pin-value=1\n",
         "unsupported attribute 'object'"},
        {"[pool pp1]\nmember = pkcs11:token=a?module-name=softhsm2&pin-value=1\n", "module-path"},
        {"[pool pp1]\nmember = pkcs11:token=a?pin-value=1\n", "has no module"},
        {"[pool pp1]\nmember = pkcs11:token=a?module-path=/m.so\n", "has no PIN"},
        {"[pool pp1]\nmember = pkcs11:token=a?module-path=/m.so&pin-source=rel/pin\n", "ABSOLUTE"},
        {"[pool pp1]\nmodule=/m\npin_file=/p\nmember = pkcs11:token=a\nmember = pkcs11:token=a\n",
         "given twice"},
        {"[pool pp1]\nmember = pkcs11:token=a%zz?module-path=/m\n", "percent-encoding"},
        {"[pool pp1]\nurl = https://x.vault.azure.net\n", "unknown setting 'url' in a pool"},
        {"[vault pp1]\nurl = https://x.vault.azure.net\n[pool PP1]\nmodule=/m\npin_file=/p\n"
         "member = pkcs11:token=a\n",
         "defined twice"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_conf *c = NULL;
        kv_err err;
        kv_rv rv = kv_conf_parse(cases[i].text, "t.conf", &c, &err);

        if (cases[i].want == NULL) {
            if (rv != KV_OK)
                fail_msg("case %zu: %s", i, err.message);
            assert_non_null(c->vaults[0].pool);
            assert_string_equal(c->vaults[0].url, "pkcs11:token=pp1");
            assert_string_equal(c->vaults[0].pool->members[0].module, "/m.so");
        } else if (rv != KV_ERR_CONFIG || strstr(err.message, cases[i].want) == NULL) {
            fail_msg("case %zu: %d %s", i, rv, rv ? err.message : "accepted");
        }
        if (i == 1) {
            assert_string_equal(c->vaults[0].pool->members[0].token, "a b");
            assert_string_equal(c->vaults[0].pool->members[0].pin_file, "/pin");
            assert_null(c->vaults[0].pool->members[1].pin_file);
            assert_string_equal(c->vaults[0].pool->members[1].pin, "1234");
            assert_int_equal(c->vaults[0].pool->sessions, 2);
            assert_int_equal(c->vaults[0].pool->retry_seconds, 0);
        }
        kv_conf_free(c);
    }
}

/* Copies of name on the members of h (every version). */
static size_t kv_pool_copies(kv_hsm_pool *h, const char *name)
{
    kv_hsm_keyinfo *ks = NULL;
    size_t n = 0, c = 0, i;
    kv_err err;

    assert_int_equal(kv_hsm_list_keys(h, name, &ks, &n, &err), KV_OK);
    for (i = 0; i < n; i++)
        c += ks[i].copies;
    kv_hsm_keyinfo_free(ks, n);
    return c;
}

static void kv_pool_sign_check(kv_vault *v, kv_key *k)
{
    uint8_t d[32], sig[512], der[160];
    size_t siglen = sizeof(sig), derlen = sizeof(der);
    kv_alg alg = k->kty == KV_KTY_RSA ? KV_ALG_PS256 : KV_ALG_ES256;
    kv_err err;

    memset(d, 0x3c, sizeof(d));
    if (kv_vault_sign(v, k, alg, d, sizeof(d), sig, &siglen, &err) != KV_OK)
        fail_msg("sign %s: %s", k->name, err.message);
    if (k->kty == KV_KTY_RSA) {
        kv_verify(k->pub, RSA_PKCS1_PSS_PADDING, EVP_sha256(), d, sizeof(d), sig, siglen);
        siglen = sizeof(sig);
        assert_int_equal(kv_vault_sign(v, k, KV_ALG_RS256, d, sizeof(d), sig, &siglen, &err),
                         KV_OK);
        kv_verify(k->pub, RSA_PKCS1_PADDING, EVP_sha256(), d, sizeof(d), sig, siglen);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pub, NULL);

        assert_int_equal(kv_ecdsa_raw_to_der(sig, siglen, der, &derlen), KV_OK);
        assert_int_equal(EVP_PKEY_verify_init(c), 1);
        assert_int_equal(EVP_PKEY_verify(c, der, derlen, d, sizeof(d)), 1);
        EVP_PKEY_CTX_free(c);
    }
}

static void test_pool_backend(void **state)
{
    kv_test_state *st = *state;
    kv_key_create_params rsa = {KV_KTY_RSA, 2048, 0, true, 0}, ec = {KV_KTY_EC, 0, 0, true, 0};
    kv_key_create_params aes = {KV_KTY_OCT, 256, 0, true, 0};
    kv_key_update_params up = {0, KV_KEEP, KV_KEEP, KV_KEEP};
    kv_key_import_params ip = {0};
    kv_key *kr = NULL, *ke = NULL, *ka = NULL, *k = NULL, **list = NULL;
    kv_sym_params sp;
    uint8_t material[KV_HSM_WRAPKEY_LEN], buf[512], pt[48], oct[16], *out = NULL, *out2 = NULL;
    size_t n = 0, outlen = 0, out2len = 0, made = 0, len, i;
    char conf[400], cmd[900];
    EVP_PKEY *ecpriv = NULL;
    EVP_PKEY_CTX *pc = NULL;
    EVP_CIPHER_CTX *cc = NULL;
    kv_hsm_pool *h = NULL;
    kv_ctx *ctx = NULL;
    kv_vault *v;
    kv_err err;
    FILE *f;
    int l;

    ec.curve_nid = NID_X9_62_prime256v1;
    snprintf(conf, sizeof(conf), "%s/kvault.conf", st->dir);
    snprintf(cmd, sizeof(cmd), "%s/user.pin", st->dir);
    f = fopen(cmd, "w");
    assert_non_null(f);
    fputs("654321\n", f);
    fclose(f);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[pool upool]\nmodule = %s\npin_so = x\n", st->module);
    fclose(f);
    assert_int_equal(kv_ctx_new(conf, &ctx, &err), KV_ERR_CONFIG); /* unknown setting */
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[pool upool]\nmodule = %s\npin_file = %s/user.pin\nretry_seconds = 1\n"
            "member = pkcs11:token=kvp1?module-path=%s/softhsm-copy.so\n"
            "member = pkcs11:token=kvp2\n"
            "member = pkcs11:token=kvp3?module-path=%s&pin-value=654321\n",
            st->module, st->dir, st->dir, st->module);
    fclose(f);
    /* kvp1 alone uses its module (a copy: its own SoftHSMv2 instance), so it can restart it to
     * see its token again after the token came back (kv_hsm: SoftHSMv2 rescans only then) */
    snprintf(cmd, sizeof(cmd), "cp '%s' %s/softhsm-copy.so", st->module, st->dir);
    assert_int_equal(kv_run(cmd), 0);
    if (kv_ctx_new(conf, &ctx, &err) != KV_OK)
        fail_msg("ctx: %s", err.message);
    v = kv_ctx_vault_by_name(ctx, "upool");
    assert_non_null(v);
    assert_true(kv_vault_is_local_pool(v));
    assert_true(kv_vault_has_rng(v));
    assert_true(kv_vault_has_oct(v));
    assert_string_equal(kv_vault_url(v), "pkcs11:token=upool");
    /* no wrapping key yet: a key cannot be replicated, so it is not kept */
    assert_int_equal(kv_vault_create_key(v, "early", &ec, &k, &err), KV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "kvault pool init"));
    assert_int_equal(kv_pool_hsm(v, &h, &err), KV_OK);
    assert_int_equal(kv_pool_copies(h, "early"), 0);
    assert_int_equal(RAND_bytes(material, sizeof(material)), 1);
    assert_int_equal(kv_hsm_wrapkey_provision(h, material, &made, &err), KV_OK);
    assert_int_equal(made, 3);

    /* generated keys: on every member */
    if (kv_vault_create_key(v, "rsa1", &rsa, &kr, &err) != KV_OK)
        fail_msg("create rsa1: %s", err.message);
    assert_int_equal(kv_vault_create_key(v, "ec1", &ec, &ke, &err), KV_OK);
    assert_int_equal(kv_vault_create_key(v, "aes1", &aes, &ka, &err), KV_OK);
    assert_int_equal(kv_pool_copies(h, "rsa1"), 3);
    assert_int_equal(kv_pool_copies(h, "ec1"), 3);
    assert_int_equal(kv_pool_copies(h, "aes1"), 3);
    assert_int_equal(kr->kty, KV_KTY_RSA);
    assert_int_equal(kr->bits, 2048);
    assert_int_equal(strlen(kr->version), 32);
    assert_true(strncmp(kr->kid, "pkcs11:token=upool;object=rsa1;id=%", 35) == 0);
    assert_false(kr->imported);
    assert_true(kr->enabled && kr->hsm);
    assert_int_equal(kr->key_ops & (KV_OP_SIGN | KV_OP_DECRYPT | KV_OP_UNWRAP),
                     KV_OP_SIGN | KV_OP_DECRYPT | KV_OP_UNWRAP);
    assert_true(strncmp(kr->ref, "pkcs11:token=kvp", 16) == 0);
    assert_int_equal(ke->kty, KV_KTY_EC);
    assert_int_equal(ke->curve_nid, NID_X9_62_prime256v1);
    assert_int_equal(ke->bits, 256);
    assert_int_equal(ke->key_ops, KV_OP_SIGN | KV_OP_VERIFY);
    assert_int_equal(ka->kty, KV_KTY_OCT);
    assert_int_equal(ka->bits, 256);
    assert_null(ka->pub);
    assert_int_equal(kv_vault_create_key(v, "rsa1", &rsa, &k, &err), KV_ERR_CONFLICT);
    assert_int_equal(kv_vault_update_key(v, kr, &up, NULL, &err), KV_ERR_UNSUPPORTED);
    assert_int_equal(kv_vault_get_key(v, "rsa1", kr->version, &k, &err), KV_OK);
    kv_key_unref(k);
    assert_int_equal(kv_vault_get_key(v, "rsa1", "00", &k, &err), KV_ERR_NOT_FOUND);
    assert_int_equal(kv_vault_list_keys(v, &list, &n, &err), KV_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->name, "aes1");
    assert_string_equal(list[2]->name, "rsa1");
    kv_key_list_free(list, n);
    assert_int_equal(kv_vault_list_key_versions(v, "ec1", &list, &n, &err), KV_OK);
    assert_int_equal(n, 1);
    kv_key_list_free(list, n);
    for (i = 0; i < 4; i++) { /* spread over the members */
        kv_pool_sign_check(v, kr);
        kv_pool_sign_check(v, ke);
    }

    /* RSA decryption (OAEP SHA-1 and SHA-256) of a local encryption, and RSA key wrap */
    for (i = 0; i < 2; i++) {
        memset(pt, 0x41, sizeof(pt));
        pc = EVP_PKEY_CTX_new(kr->pub, NULL);
        len = sizeof(buf);
        assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING), 1);
        if (i == 1) {
            assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()), 1);
        }
        assert_int_equal(EVP_PKEY_encrypt(pc, buf, &len, pt, sizeof(pt)), 1);
        EVP_PKEY_CTX_free(pc);
        outlen = sizeof(pt) + 300;
        out = malloc(outlen);
        assert_int_equal(kv_vault_decrypt(v, kr, i ? KV_ENC_RSA_OAEP_256 : KV_ENC_RSA_OAEP, buf,
                                          len, out, &outlen, &err),
                         KV_OK);
        assert_int_equal(outlen, sizeof(pt));
        assert_memory_equal(out, pt, sizeof(pt));
        free(out);
        assert_int_equal(kv_vault_wrap(v, kr, i ? KV_ENC_RSA_OAEP_256 : KV_ENC_RSA1_5, pt, 32, &out,
                                       &outlen, &err),
                         KV_OK);
        assert_int_equal(outlen, 256);
        assert_int_equal(kv_vault_unwrap(v, kr, i ? KV_ENC_RSA_OAEP_256 : KV_ENC_RSA1_5, out,
                                         outlen, &out2, &out2len, &err),
                         KV_OK);
        assert_int_equal(out2len, 32);
        assert_memory_equal(out2, pt, 32);
        free(out);
        free(out2);
    }
    assert_int_equal(kv_vault_random(v, buf, 300, &err), KV_OK);

    /* AES: GCM with the caller's iv (deterministic) and with a generated one, CBC, key wrap */
    memset(&sp, 0, sizeof(sp));
    memset(sp.iv, 7, 12);
    sp.ivlen = 12;
    sp.aad = (const uint8_t *)"aad";
    sp.aadlen = 3;
    assert_int_equal(kv_vault_encrypt_sym(v, ka, KV_ENC_A256GCM, &sp, pt, 20, &out, &outlen, &err),
                     KV_OK);
    assert_int_equal(outlen, 20);
    assert_int_equal(sp.taglen, 16);
    assert_int_equal(
        kv_vault_encrypt_sym(v, ka, KV_ENC_A256GCM, &sp, pt, 20, &out2, &out2len, &err), KV_OK);
    assert_memory_equal(out, out2, 20); /* same key, iv, aad: same ciphertext */
    free(out2);
    assert_int_equal(
        kv_vault_decrypt_sym(v, ka, KV_ENC_A256GCM, &sp, out, outlen, &out2, &out2len, &err),
        KV_OK);
    assert_memory_equal(out2, pt, 20);
    free(out2);
    sp.tag[0] ^= 1;
    assert_int_equal(
        kv_vault_decrypt_sym(v, ka, KV_ENC_A256GCM, &sp, out, outlen, &out2, &out2len, &err),
        KV_ERR_BAD_REQUEST);
    free(out);
    sp.ivlen = 0;
    assert_int_equal(kv_vault_encrypt_sym(v, ka, KV_ENC_A256GCM, &sp, pt, 20, &out, &outlen, &err),
                     KV_OK);
    assert_int_equal(sp.ivlen, 12);
    assert_int_equal(
        kv_vault_decrypt_sym(v, ka, KV_ENC_A256GCM, &sp, out, outlen, &out2, &out2len, &err),
        KV_OK);
    assert_memory_equal(out2, pt, 20);
    free(out);
    free(out2);
    memset(&sp, 0, sizeof(sp));
    sp.ivlen = 16;
    assert_int_equal(
        kv_vault_encrypt_sym(v, ka, KV_ENC_A256CBCPAD, &sp, pt, 20, &out, &outlen, &err), KV_OK);
    assert_int_equal(outlen, 32);
    assert_int_equal(
        kv_vault_decrypt_sym(v, ka, KV_ENC_A256CBCPAD, &sp, out, outlen, &out2, &out2len, &err),
        KV_OK);
    assert_int_equal(out2len, 20);
    free(out);
    free(out2);
    assert_int_equal(kv_vault_wrap(v, ka, KV_ENC_A256KW, pt, 32, &out, &outlen, &err), KV_OK);
    assert_int_equal(outlen, 40);
    assert_int_equal(kv_vault_unwrap(v, ka, KV_ENC_A256KW, out, outlen, &out2, &out2len, &err),
                     KV_OK);
    assert_int_equal(out2len, 32);
    free(out);
    free(out2);
    memset(pt, 0, sizeof(pt));
    pt[0] = 1; /* trailing zero bytes: the padded length must be trimmed to the real one */
    for (len = 17; len <= 24; len += 7) {
        assert_int_equal(kv_vault_wrap(v, ka, KV_ENC_AES_KWP, pt, len, &out, &outlen, &err), KV_OK);
        assert_int_equal(kv_vault_unwrap(v, ka, KV_ENC_AES_KWP, out, outlen, &out2, &out2len, &err),
                         KV_OK);
        assert_int_equal(out2len, len);
        assert_memory_equal(out2, pt, len);
        free(out);
        free(out2);
    }

    /* imports: an EC key and AES bytes, replicated; the caller's GCM iv matches OpenSSL's */
    pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    assert_int_equal(EVP_PKEY_keygen_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_group_name(pc, "P-256"), 1);
    assert_int_equal(EVP_PKEY_keygen(pc, &ecpriv), 1);
    EVP_PKEY_CTX_free(pc);
    ip.pkey = ecpriv;
    ip.hsm = true;
    assert_int_equal(kv_vault_import_key(v, "imp1", &ip, &k, &err), KV_OK);
    assert_true(k->imported);
    assert_int_equal(EVP_PKEY_eq(k->pub, ecpriv), 1);
    assert_int_equal(kv_pool_copies(h, "imp1"), 3);
    kv_pool_sign_check(v, k);
    kv_key_unref(k);
    EVP_PKEY_free(ecpriv);
    memset(&ip, 0, sizeof(ip));
    memset(oct, 0x11, sizeof(oct));
    ip.oct = oct;
    ip.octlen = sizeof(oct);
    assert_int_equal(kv_vault_import_key(v, "impaes", &ip, &k, &err), KV_OK);
    assert_int_equal(k->bits, 128);
    assert_int_equal(kv_pool_copies(h, "impaes"), 3);
    memset(&sp, 0, sizeof(sp));
    memset(sp.iv, 9, 12);
    sp.ivlen = 12;
    assert_int_equal(kv_vault_encrypt_sym(v, k, KV_ENC_A128GCM, &sp, pt, 16, &out, &outlen, &err),
                     KV_OK);
    cc = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(cc, EVP_aes_128_gcm(), NULL, oct, sp.iv), 1);
    assert_int_equal(EVP_EncryptUpdate(cc, buf, &l, pt, 16), 1);
    assert_int_equal(l, 16);
    assert_memory_equal(buf, out, 16);
    EVP_CIPHER_CTX_free(cc);
    free(out);
    /* AES-KWP is RFC 5649 (OpenSSL's wrap_pad gives the same bytes) for any length */
    for (len = 9; len <= 21; len += 4) {
        assert_int_equal(kv_vault_wrap(v, k, KV_ENC_AES_KWP, pt, len, &out, &outlen, &err), KV_OK);
        cc = EVP_CIPHER_CTX_new();
        EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        assert_int_equal(EVP_EncryptInit_ex(cc, EVP_aes_128_wrap_pad(), NULL, oct, NULL), 1);
        assert_int_equal(EVP_EncryptUpdate(cc, buf, &l, pt, (int)len), 1);
        assert_int_equal((size_t)l, outlen);
        assert_memory_equal(buf, out, outlen);
        EVP_CIPHER_CTX_free(cc);
        out[outlen - 1] ^= 1;
        assert_int_equal(kv_vault_unwrap(v, k, KV_ENC_AES_KWP, out, outlen, &out2, &out2len, &err),
                         KV_ERR_BAD_REQUEST);
        free(out);
    }
    kv_key_unref(k);

    /* one member gone (its token directory moved away): the others serve, then it is back */
    snprintf(
        cmd, sizeof(cmd),
        "d=$(dirname \"$(grep -l kvp1 %s/tokens/*/token.object)\") && echo \"$d\" >%s/away.name "
        "&& mv \"$d\" %s/away",
        st->dir, st->dir, st->dir);
    assert_int_equal(kv_run(cmd), 0);
    for (i = 0; i < 6; i++) {
        kv_pool_sign_check(v, kr);
        kv_pool_sign_check(v, ke);
    }
    assert_int_equal(kv_vault_list_keys(v, &list, &n, &err), KV_OK);
    assert_int_equal(n, 5);
    kv_key_list_free(list, n);
    assert_int_equal(kv_vault_random(v, buf, 64, &err), KV_OK);
    snprintf(cmd, sizeof(cmd), "mv %s/away \"$(cat %s/away.name)\"", st->dir, st->dir);
    assert_int_equal(kv_run(cmd), 0);
    sleep(2); /* retry_seconds = 1 */
    for (i = 0; i < 3; i++)
        kv_pool_sign_check(v, kr);
    {
        kv_hsm_member_info mi;

        assert_int_equal(kv_hsm_member_info_get(h, 0, &mi, &err), KV_OK);
        if (!mi.reachable)
            fail_msg("member kvp1 after its return: %s", mi.error);
        assert_true(mi.wrapkey);
        assert_int_equal(mi.keys, 5);
    }
    assert_int_equal(kv_pool_copies(h, "rsa1"), 3);

    /* delete: every copy */
    assert_int_equal(kv_vault_delete_key(v, "ec1", &err), KV_OK);
    assert_int_equal(kv_pool_copies(h, "ec1"), 0);
    assert_int_equal(kv_vault_get_key(v, "ec1", NULL, &k, &err), KV_ERR_NOT_FOUND);
    assert_int_equal(kv_vault_delete_key(v, "ec1", &err), KV_ERR_NOT_FOUND);
    kv_key_unref(kr);
    kv_key_unref(ke);
    kv_key_unref(ka);
    kv_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_ec),
        cmocka_unit_test(test_aes),
        cmocka_unit_test(test_random_and_errors),
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_wrapkey),
        cmocka_unit_test(test_wrap_unwrap),
        cmocka_unit_test(test_replicate_and_legacy),
        cmocka_unit_test(test_pool_config),
        cmocka_unit_test(test_pool_backend),
    };

    if (access(getenv("KV_SOFTHSM_MODULE") ? getenv("KV_SOFTHSM_MODULE")
                                           : "/usr/lib/softhsm/libsofthsm2.so",
               R_OK) != 0) {
        printf("SKIP: SoftHSMv2 not installed\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, kv_setup, kv_teardown);
}
