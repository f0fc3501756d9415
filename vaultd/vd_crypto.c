/* vd_crypto.c - key generation, AES-256-GCM wrapping of private keys under the KEK, and the
 * vault's RSA / ECDSA signature algorithms over caller-supplied digests. */
#include "vd_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

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
