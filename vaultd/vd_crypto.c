/* vd_crypto.c - key generation, AES-256-GCM wrapping of private keys under the KEK, and the
 * vault's RSA / ECDSA signature algorithms over caller-supplied digests. */
#include "vd_crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kv_b64.h"
#include "kv_ecdsa.h"
#include "kv_jwk.h"
#include "vd_util.h"

#define VD_GCM_TAG_LEN 16

static const vd_alg vd_algs[] = {
    {"RS256", "RSA", VD_SIG_PKCS1, "SHA256", 32, NID_undef},
    {"RS384", "RSA", VD_SIG_PKCS1, "SHA384", 48, NID_undef},
    {"RS512", "RSA", VD_SIG_PKCS1, "SHA512", 64, NID_undef},
    {"PS256", "RSA", VD_SIG_PSS, "SHA256", 32, NID_undef},
    {"PS384", "RSA", VD_SIG_PSS, "SHA384", 48, NID_undef},
    {"PS512", "RSA", VD_SIG_PSS, "SHA512", 64, NID_undef},
    {"RSNULL", "RSA", VD_SIG_RSNULL, NULL, 0, NID_undef},
    {"ES256", "EC", VD_SIG_ECDSA, "SHA256", 32, NID_X9_62_prime256v1},
    {"ES384", "EC", VD_SIG_ECDSA, "SHA384", 48, NID_secp384r1},
    {"ES512", "EC", VD_SIG_ECDSA, "SHA512", 64, NID_secp521r1},
    {"ES256K", "EC", VD_SIG_ECDSA, "SHA256", 32, NID_secp256k1},
};

const vd_alg *vd_alg_by_name(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < sizeof(vd_algs) / sizeof(vd_algs[0]); i++)
        if (strcmp(vd_algs[i].name, name) == 0)
            return &vd_algs[i];
    return NULL;
}

kv_rv vd_crypto_generate(const char *kty, int bits, int curve_nid, EVP_PKEY **out)
{
    const char *group;

    if (kty == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    *out = NULL;
    if (strcmp(kty, "RSA") == 0) {
        if (bits != 2048 && bits != 3072 && bits != 4096)
            return KV_ERR_INVALID_ARG;
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    } else if (strcmp(kty, "EC") == 0) {
        group = kv_curve_group_from_nid(curve_nid);
        if (group == NULL)
            return KV_ERR_INVALID_ARG;
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    } else {
        return KV_ERR_INVALID_ARG;
    }
    return *out != NULL ? KV_OK : KV_ERR_INTERNAL;
}

int vd_crypto_curve_nid(const EVP_PKEY *pkey)
{
    char group[64];
    int nid;

    if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        NULL))
        return NID_undef;
    nid = OBJ_txt2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    return nid;
}

/* AES-256-GCM; enc = 1 encrypts in -> out||tag, enc = 0 decrypts in (ct||tag) -> out. */
static kv_rv vd_gcm(int enc, const uint8_t key[VD_KEK_LEN], const uint8_t iv[12], const char *aad,
                    const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t *buf = NULL;
    size_t ctlen, buflen;
    int n, fin;
    kv_rv rv = KV_ERR_INTERNAL;

    if (!enc && inlen < VD_GCM_TAG_LEN)
        return KV_ERR_INVALID_ARG;
    ctlen = enc ? inlen : inlen - VD_GCM_TAG_LEN;
    buflen = ctlen + VD_GCM_TAG_LEN;
    buf = malloc(buflen);
    c = EVP_CIPHER_CTX_new();
    if (buf == NULL || c == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
        EVP_CipherUpdate(c, buf, &n, in, (int)ctlen) != 1)
        goto done;
    if (!enc &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VD_GCM_TAG_LEN, (void *)(in + ctlen)) != 1)
        goto done;
    if (EVP_CipherFinal_ex(c, buf + n, &fin) != 1) {
        rv = KV_ERR_INVALID_ARG; /* authentication failed */
        goto done;
    }
    if (enc) {
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VD_GCM_TAG_LEN, buf + ctlen) != 1)
            goto done;
        *outlen = buflen;
    } else {
        *outlen = ctlen;
    }
    *out = buf;
    buf = NULL;
    rv = KV_OK;
done:
    EVP_CIPHER_CTX_free(c);
    if (buf != NULL)
        vd_free_secret(buf, buflen);
    return rv;
}

kv_rv vd_crypto_wrap_pkey(const uint8_t kek[VD_KEK_LEN], const char *aad, const EVP_PKEY *pkey,
                          uint8_t iv[12], uint8_t **out, size_t *outlen)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    uint8_t *der = NULL;
    int derlen = 0;
    kv_rv rv = KV_ERR_INTERNAL;

    if (kek == NULL || aad == NULL || pkey == NULL || iv == NULL || out == NULL || outlen == NULL)
        return KV_ERR_INVALID_ARG;
    p8 = EVP_PKEY2PKCS8(pkey);
    if (p8 == NULL)
        goto done;
    derlen = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    if (derlen <= 0) {
        der = NULL;
        goto done;
    }
    if (RAND_bytes(iv, 12) != 1)
        goto done;
    rv = vd_gcm(1, kek, iv, aad, der, (size_t)derlen, out, outlen);
done:
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (der != NULL) {
        OPENSSL_cleanse(der, (size_t)derlen);
        OPENSSL_free(der);
    }
    return rv;
}

kv_rv vd_crypto_unwrap_pkey(const uint8_t kek[VD_KEK_LEN], const char *aad, const uint8_t iv[12],
                            const uint8_t *in, size_t inlen, EVP_PKEY **out)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    uint8_t *der = NULL;
    const uint8_t *p;
    size_t derlen = 0;
    kv_rv rv;

    if (kek == NULL || aad == NULL || iv == NULL || in == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_gcm(0, kek, iv, aad, in, inlen, &der, &derlen);
    if (rv != KV_OK)
        goto done;
    rv = KV_ERR_INTERNAL;
    p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)derlen);
    if (p8 == NULL)
        goto done;
    *out = EVP_PKCS82PKEY(p8);
    if (*out != NULL)
        rv = KV_OK;
done:
    PKCS8_PRIV_KEY_INFO_free(p8);
    vd_free_secret(der, derlen);
    return rv;
}

kv_rv vd_crypto_pub_der(const EVP_PKEY *pkey, uint8_t **out, size_t *outlen)
{
    uint8_t *der = NULL, *copy;
    int len;

    if (pkey == NULL || out == NULL || outlen == NULL)
        return KV_ERR_INVALID_ARG;
    len = i2d_PUBKEY(pkey, &der);
    if (len <= 0)
        return KV_ERR_INTERNAL;
    copy = malloc((size_t)len);
    if (copy == NULL) {
        OPENSSL_free(der);
        return KV_ERR_NOMEM;
    }
    memcpy(copy, der, (size_t)len);
    OPENSSL_free(der);
    *out = copy;
    *outlen = (size_t)len;
    return KV_OK;
}

kv_rv vd_crypto_pub_from_der(const uint8_t *der, size_t len, EVP_PKEY **out)
{
    const uint8_t *p = der;

    if (der == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    *out = d2i_PUBKEY(NULL, &p, (long)len);
    return *out != NULL ? KV_OK : KV_ERR_INTERNAL;
}

bool vd_alg_fits_key(const vd_alg *alg, const EVP_PKEY *pkey)
{
    if (alg == NULL || pkey == NULL || !EVP_PKEY_is_a(pkey, alg->kty))
        return false;
    if (alg->kind == VD_SIG_ECDSA)
        return vd_crypto_curve_nid(pkey) == alg->curve_nid;
    return true;
}

/* A sign/verify context for alg with its padding and digest parameters set. */
static EVP_PKEY_CTX *vd_sig_ctx(EVP_PKEY *pkey, const vd_alg *alg, int sign)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = 0;

    if (pc == NULL)
        return NULL;
    if ((sign ? EVP_PKEY_sign_init(pc) : EVP_PKEY_verify_init(pc)) != 1)
        goto done;
    switch (alg->kind) {
    case VD_SIG_PKCS1:
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pc, EVP_get_digestbyname(alg->md)) == 1;
        break;
    case VD_SIG_PSS:
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pc, EVP_get_digestbyname(alg->md)) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_get_digestbyname(alg->md)) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, (int)alg->dlen) == 1;
        break;
    case VD_SIG_RSNULL:
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
        break;
    case VD_SIG_ECDSA:
        ok = 1;
        break;
    }
done:
    if (!ok) {
        EVP_PKEY_CTX_free(pc);
        return NULL;
    }
    return pc;
}

static kv_rv vd_check_input(EVP_PKEY *pkey, const vd_alg *alg, size_t inlen)
{
    if (alg->kind == VD_SIG_RSNULL) {
        size_t k = (size_t)EVP_PKEY_get_size(pkey);

        return inlen > 0 && inlen + 11 <= k ? KV_OK : KV_ERR_INVALID_ARG;
    }
    return inlen == alg->dlen ? KV_OK : KV_ERR_INVALID_ARG;
}

kv_rv vd_crypto_sign(EVP_PKEY *pkey, const vd_alg *alg, const uint8_t *in, size_t inlen,
                     uint8_t **sig, size_t *siglen)
{
    EVP_PKEY_CTX *pc = NULL;
    uint8_t *buf = NULL, *raw = NULL;
    size_t len = 0, n, rawlen;
    kv_rv rv;

    if (pkey == NULL || alg == NULL || in == NULL || sig == NULL || siglen == NULL)
        return KV_ERR_INVALID_ARG;
    if (!vd_alg_fits_key(alg, pkey))
        return KV_ERR_UNSUPPORTED;
    rv = vd_check_input(pkey, alg, inlen);
    if (rv != KV_OK)
        return rv;
    rv = KV_ERR_INTERNAL;
    pc = vd_sig_ctx(pkey, alg, 1);
    if (pc == NULL || EVP_PKEY_sign(pc, NULL, &len, in, inlen) != 1)
        goto done;
    buf = malloc(len);
    if (buf == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    if (EVP_PKEY_sign(pc, buf, &len, in, inlen) != 1)
        goto done;
    if (alg->kind == VD_SIG_ECDSA) {
        n = ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8;
        rawlen = 2 * n;
        raw = malloc(rawlen);
        if (raw == NULL) {
            rv = KV_ERR_NOMEM;
            goto done;
        }
        rv = kv_ecdsa_der_to_raw(buf, len, n, raw, &rawlen);
        if (rv != KV_OK)
            goto done;
        *sig = raw;
        *siglen = rawlen;
        raw = NULL;
    } else {
        *sig = buf;
        *siglen = len;
        buf = NULL;
    }
    rv = KV_OK;
done:
    EVP_PKEY_CTX_free(pc);
    free(buf);
    free(raw);
    return rv;
}

kv_rv vd_crypto_verify(EVP_PKEY *pkey, const vd_alg *alg, const uint8_t *in, size_t inlen,
                       const uint8_t *sig, size_t siglen, bool *ok)
{
    EVP_PKEY_CTX *pc = NULL;
    uint8_t *der = NULL;
    const uint8_t *s = sig;
    size_t slen = siglen, derlen = 0, n;
    kv_rv rv;

    if (pkey == NULL || alg == NULL || in == NULL || sig == NULL || ok == NULL)
        return KV_ERR_INVALID_ARG;
    *ok = false;
    if (!vd_alg_fits_key(alg, pkey))
        return KV_ERR_UNSUPPORTED;
    rv = vd_check_input(pkey, alg, inlen);
    if (rv != KV_OK)
        return rv;
    if (alg->kind == VD_SIG_ECDSA) {
        n = ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8;
        if (siglen != 2 * n)
            return KV_OK; /* malformed: not valid */
        if (kv_ecdsa_raw_to_der(sig, siglen, NULL, &derlen) != KV_OK)
            return KV_ERR_INTERNAL;
        der = malloc(derlen);
        if (der == NULL)
            return KV_ERR_NOMEM;
        rv = kv_ecdsa_raw_to_der(sig, siglen, der, &derlen);
        if (rv != KV_OK)
            goto done;
        s = der;
        slen = derlen;
    }
    rv = KV_ERR_INTERNAL;
    pc = vd_sig_ctx(pkey, alg, 0);
    if (pc == NULL)
        goto done;
    *ok = EVP_PKEY_verify(pc, s, slen, in, inlen) == 1;
    rv = KV_OK;
done:
    EVP_PKEY_CTX_free(pc);
    free(der);
    return rv;
}

/* ---- key lifecycle additions: RSA encryption, JWK import, backup blobs ---- */

bool vd_enc_alg_by_name(const char *name, vd_enc_alg *out)
{
    if (name == NULL || out == NULL)
        return false;
    if (strcmp(name, "RSA1_5") == 0)
        *out = VD_ENC_RSA1_5;
    else if (strcmp(name, "RSA-OAEP") == 0)
        *out = VD_ENC_RSA_OAEP;
    else if (strcmp(name, "RSA-OAEP-256") == 0)
        *out = VD_ENC_RSA_OAEP_256;
    else
        return false;
    return true;
}

size_t vd_crypto_enc_max(const EVP_PKEY *pkey, vd_enc_alg alg)
{
    size_t k = pkey ? (size_t)EVP_PKEY_get_size(pkey) : 0, over;

    over = alg == VD_ENC_RSA1_5 ? 11 : alg == VD_ENC_RSA_OAEP ? 42 : 66;
    return k > over ? k - over : 0;
}

static EVP_PKEY_CTX *vd_enc_ctx(EVP_PKEY *pkey, vd_enc_alg alg, int enc)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    if (c == NULL)
        return NULL;
    ok = (enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) == 1;
    if (ok && alg == VD_ENC_RSA1_5)
        ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1;
    if (ok && alg != VD_ENC_RSA1_5)
        ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1;
    if (ok && alg == VD_ENC_RSA_OAEP_256)
        ok = EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA256", NULL) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA256", NULL) == 1;
    if (ok && alg == VD_ENC_RSA_OAEP)
        ok = EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA1", NULL) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA1", NULL) == 1;
    if (!ok) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

static kv_rv vd_enc_run(EVP_PKEY *pkey, vd_enc_alg alg, int enc, const uint8_t *in, size_t inlen,
                        uint8_t **out, size_t *outlen)
{
    EVP_PKEY_CTX *c = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    kv_rv rv = KV_ERR_INTERNAL;

    if (pkey == NULL || in == NULL || out == NULL || outlen == NULL || !EVP_PKEY_is_a(pkey, "RSA"))
        return KV_ERR_INVALID_ARG;
    if (enc && inlen > vd_crypto_enc_max(pkey, alg))
        return KV_ERR_INVALID_ARG;
    if (!enc && inlen != (size_t)EVP_PKEY_get_size(pkey))
        return KV_ERR_INVALID_ARG;
    c = vd_enc_ctx(pkey, alg, enc);
    if (c == NULL)
        goto done;
    cap = (size_t)EVP_PKEY_get_size(pkey);
    buf = malloc(cap);
    if (buf == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    len = cap;
    if ((enc ? EVP_PKEY_encrypt(c, buf, &len, in, inlen)
             : EVP_PKEY_decrypt(c, buf, &len, in, inlen)) != 1) {
        rv = enc ? KV_ERR_INTERNAL : KV_ERR_INVALID_ARG;
        goto done;
    }
    *out = buf;
    *outlen = len;
    buf = NULL;
    rv = KV_OK;
done:
    if (buf != NULL)
        vd_free_secret(buf, cap);
    EVP_PKEY_CTX_free(c);
    return rv;
}

kv_rv vd_crypto_encrypt(EVP_PKEY *pkey, vd_enc_alg alg, const uint8_t *in, size_t inlen,
                        uint8_t **out, size_t *outlen)
{
    return vd_enc_run(pkey, alg, 1, in, inlen, out, outlen);
}

kv_rv vd_crypto_decrypt(EVP_PKEY *pkey, vd_enc_alg alg, const uint8_t *in, size_t inlen,
                        uint8_t **out, size_t *outlen)
{
    return vd_enc_run(pkey, alg, 0, in, inlen, out, outlen);
}

/* A base64url JWK member as a BIGNUM (NULL if missing or malformed). */
static BIGNUM *vd_jwk_bn(const json_t *jwk, const char *member)
{
    const json_t *v = json_object_get(jwk, member);
    uint8_t *raw = NULL;
    size_t len = 0;
    BIGNUM *bn = NULL;

    if (!json_is_string(v) || kv_b64_decode(json_string_value(v), &raw, &len) != KV_OK || len == 0)
        goto done;
    bn = BN_secure_new();
    if (bn != NULL && BN_bin2bn(raw, (int)len, bn) == NULL) {
        BN_clear_free(bn);
        bn = NULL;
    }
done:
    vd_free_secret(raw, len);
    return bn;
}

static kv_rv vd_import_rsa(const json_t *jwk, OSSL_PARAM_BLD *bld, BIGNUM **bns, char *why,
                           size_t whylen)
{
    static const char *const members[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    size_t i;

    for (i = 0; i < 8; i++) {
        bns[i] = vd_jwk_bn(jwk, members[i]);
        if (bns[i] == NULL) {
            snprintf(why, whylen,
                     "The RSA key is missing the parameter %s (n, e, d, p, q, dp, dq and qi are "
                     "required).",
                     members[i]);
            return KV_ERR_INVALID_ARG;
        }
        if (OSSL_PARAM_BLD_push_BN(bld, params[i], bns[i]) != 1)
            return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static kv_rv vd_import_ec(const json_t *jwk, OSSL_PARAM_BLD *bld, BIGNUM **bns, uint8_t *pt,
                          char *why, size_t whylen)
{
    const json_t *crv = json_object_get(jwk, "crv");
    const char *group;
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0, fl;
    int nid;
    kv_rv rv = KV_ERR_INVALID_ARG;

    nid = json_is_string(crv) ? kv_curve_nid_from_name(json_string_value(crv)) : NID_undef;
    group = nid != NID_undef ? kv_curve_group_from_nid(nid) : NULL;
    if (group == NULL || kv_curve_name_from_nid(nid) == NULL ||
        strcmp(kv_curve_name_from_nid(nid), json_string_value(crv)) != 0) {
        snprintf(why, whylen, "Invalid crv: use P-256, P-256K, P-384 or P-521.");
        goto done;
    }
    fl = nid == NID_secp521r1 ? 66 : nid == NID_secp384r1 ? 48 : 32;
    if (!json_is_string(json_object_get(jwk, "x")) || !json_is_string(json_object_get(jwk, "y")) ||
        kv_b64_decode(json_string_value(json_object_get(jwk, "x")), &x, &xl) != KV_OK ||
        kv_b64_decode(json_string_value(json_object_get(jwk, "y")), &y, &yl) != KV_OK || xl != fl ||
        yl != fl) {
        snprintf(why, whylen, "The EC key's x and y must be %zu-byte base64url values.", fl);
        goto done;
    }
    bns[0] = vd_jwk_bn(jwk, "d");
    if (bns[0] == NULL) {
        snprintf(why, whylen, "The EC key is missing its private part d.");
        goto done;
    }
    pt[0] = 4;
    memcpy(pt + 1, x, fl);
    memcpy(pt + 1 + fl, y, fl);
    rv = KV_ERR_INTERNAL;
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * fl) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bns[0]) != 1)
        goto done;
    rv = KV_OK;
done:
    free(x);
    free(y);
    return rv;
}

kv_rv vd_crypto_import_jwk(const json_t *jwk, EVP_PKEY **out, char *why, size_t whylen)
{
    const json_t *ktyj = json_object_get(jwk, "kty");
    const char *kty = json_is_string(ktyj) ? json_string_value(ktyj) : "";
    bool rsa = strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0;
    bool ec = strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *c = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bns[8] = {0};
    uint8_t pt[1 + 2 * 66];
    size_t i;
    int bits;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (jwk == NULL || out == NULL || why == NULL || whylen == 0)
        return KV_ERR_INVALID_ARG;
    why[0] = '\0';
    *out = NULL;
    if (!json_is_object(jwk)) {
        snprintf(why, whylen, "The parameter key must be a JSON Web Key object.");
        goto done;
    }
    if (!rsa && !ec) {
        snprintf(why, whylen,
                 "Key type %.20s cannot be imported here: use RSA, RSA-HSM, EC or "
                 "EC-HSM.",
                 kty);
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    rv = rsa ? vd_import_rsa(jwk, bld, bns, why, whylen)
             : vd_import_ec(jwk, bld, bns, pt, why, whylen);
    if (rv != KV_OK)
        goto done;
    rv = KV_ERR_INTERNAL;
    params = OSSL_PARAM_BLD_to_param(bld);
    c = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", NULL);
    if (params == NULL || c == NULL || EVP_PKEY_fromdata_init(c) != 1)
        goto done;
    rv = KV_ERR_INVALID_ARG;
    if (EVP_PKEY_fromdata(c, &pkey, EVP_PKEY_KEYPAIR, params) != 1 || pkey == NULL) {
        snprintf(why, whylen, "The key parameters do not form a valid %s key.", rsa ? "RSA" : "EC");
        goto done;
    }
    bits = EVP_PKEY_get_bits(pkey);
    if (rsa && bits != 2048 && bits != 3072 && bits != 4096) {
        snprintf(why, whylen, "Invalid RSA key size %d: the key must be 2048, 3072 or 4096 bits.",
                 bits);
        goto done;
    }
    EVP_PKEY_CTX_free(c);
    c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (c == NULL || EVP_PKEY_check(c) != 1) {
        snprintf(why, whylen,
                 "The key's public and private parts are not consistent (key check failed).");
        goto done;
    }
    *out = pkey;
    pkey = NULL;
    rv = KV_OK;
done:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    for (i = 0; i < 8; i++)
        BN_clear_free(bns[i]);
    OPENSSL_cleanse(pt, sizeof(pt));
    return rv;
}

#define VD_BACKUP_MAGIC "KVB1"

/* The instance backup key for one kind of blob: HKDF-SHA256(KEK, salt "kvault-backup",
 * info = label). */
static kv_rv vd_backup_key(const uint8_t kek[VD_KEK_LEN], const char *label, uint8_t key[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[5];
    kv_rv rv = KV_ERR_INTERNAL;

    if (kc == NULL)
        goto done;
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)kek, VD_KEK_LEN);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)"kvault-backup", 13);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label, strlen(label));
    p[4] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kc, key, 32, p) == 1)
        rv = KV_OK;
done:
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return rv;
}

kv_rv vd_crypto_backup_seal(const uint8_t kek[VD_KEK_LEN], const char *label, const uint8_t *in,
                            size_t inlen, uint8_t **out, size_t *outlen)
{
    uint8_t key[32], iv[12], *ct = NULL, *buf = NULL;
    size_t ctlen = 0;
    kv_rv rv;

    if (kek == NULL || label == NULL || in == NULL || out == NULL || outlen == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_backup_key(kek, label, key);
    if (rv != KV_OK)
        goto done;
    rv = KV_ERR_INTERNAL;
    if (RAND_bytes(iv, sizeof(iv)) != 1 ||
        vd_gcm(1, key, iv, label, in, inlen, &ct, &ctlen) != KV_OK)
        goto done;
    buf = malloc(4 + sizeof(iv) + ctlen);
    if (buf == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    memcpy(buf, VD_BACKUP_MAGIC, 4);
    memcpy(buf + 4, iv, sizeof(iv));
    memcpy(buf + 4 + sizeof(iv), ct, ctlen);
    *out = buf;
    *outlen = 4 + sizeof(iv) + ctlen;
    rv = KV_OK;
done:
    OPENSSL_cleanse(key, sizeof(key));
    free(ct);
    return rv;
}

kv_rv vd_crypto_backup_open(const uint8_t kek[VD_KEK_LEN], const char *label, const uint8_t *in,
                            size_t inlen, uint8_t **out, size_t *outlen)
{
    uint8_t key[32];
    kv_rv rv;

    if (kek == NULL || label == NULL || in == NULL || out == NULL || outlen == NULL)
        return KV_ERR_INVALID_ARG;
    if (inlen < 4 + 12 + VD_GCM_TAG_LEN || memcmp(in, VD_BACKUP_MAGIC, 4) != 0)
        return KV_ERR_INVALID_ARG;
    rv = vd_backup_key(kek, label, key);
    if (rv == KV_OK)
        rv = vd_gcm(0, key, in + 4, label, in + 16, inlen - 16, out, outlen);
    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}
