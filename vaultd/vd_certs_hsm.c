/* vd_certs_hsm.c - HSM-protected certificate keys (policy key_props.kty RSA-HSM / EC-HSM): the
 * key is generated in (or imported into) the local HSM pool through kv_hsm and never leaves
 * it in clear; the self-signed certificate and the CSR are signed there: the TBS is built and
 * encoded with OpenSSL, its digest is signed by the pool key, and the signature is put back into
 * the structure (re-parsed and verified against the public key before use). */
#include "vd_certs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "kv_ecdsa.h"
#include "kv_hsm.h"
#include "kv_jwk.h"
#include "vd_crypto.h"
#include "vd_hsm.h"

bool vd_certs_kty_is_hsm(const char *kty)
{
    return kty != NULL && (strcmp(kty, "RSA-HSM") == 0 || strcmp(kty, "EC-HSM") == 0);
}

void vd_certs_hsm_reply_err(vd_req *r, const kv_err *err, const char *what)
{
    switch (err->rv) {
    case KV_ERR_SERVER:
    case KV_ERR_NETWORK:
        vd_reply_error(r, 503, "ServiceUnavailable", NULL, "%s", err->message);
        break;
    case KV_ERR_UNSUPPORTED:
    case KV_ERR_BAD_REQUEST:
    case KV_ERR_INVALID_ARG:
        vd_reply_error(r, 400, "BadParameter", NULL, "%s: %s", what, err->message);
        break;
    default:
        vd_reply_error(r, 500, "InternalServerError", NULL, "%s: %s", what, err->message);
        break;
    }
}

static void vd_label(const char *vault, const char *name, const char *version, char *out,
                     size_t outlen)
{
    snprintf(out, outlen, "vaultd/%s/%s/%s", vault, name, version);
}

kv_rv vd_certs_hsm_generate(vd_ctx *ctx, const json_t *key_props, const char *vault,
                            const char *name, const char *version, char **ref, EVP_PKEY **pub,
                            kv_err *err)
{
    const char *kty = json_string_value(json_object_get(key_props, "kty"));
    kv_hsm_keyspec spec = {KV_HSM_RSA, 2048, 0};
    char r[KV_HSM_REF_MAX], label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    kv_hsm_pool *pool;
    kv_rv rv;

    *ref = NULL;
    *pub = NULL;
    if (kty == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "key_props.kty is missing");
    if (strncmp(kty, "EC", 2) == 0) {
        spec.type = KV_HSM_EC;
        spec.curve_nid =
            kv_curve_nid_from_name(json_string_value(json_object_get(key_props, "crv")));
        if (spec.curve_nid == NID_undef)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "key_props.crv is not supported");
    } else {
        spec.bits = (int)json_integer_value(json_object_get(key_props, "key_size"));
    }
    pool = vd_hsm_pool(ctx, err);
    if (pool == NULL)
        return err->rv;
    vd_label(vault, name, version, label, sizeof(label));
    rv = kv_hsm_generate(pool, &spec, label, r, pub, err);
    if (rv != KV_OK)
        return rv;
    *ref = strdup(r);
    if (*ref == NULL) {
        (void)kv_hsm_destroy(pool, r, NULL);
        EVP_PKEY_free(*pub);
        *pub = NULL;
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    }
    return KV_OK;
}

kv_rv vd_certs_hsm_import(vd_ctx *ctx, const EVP_PKEY *pkey, const char *vault, const char *name,
                          const char *version, char **ref, kv_err *err)
{
    char r[KV_HSM_REF_MAX], label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    kv_hsm_pool *pool;
    kv_rv rv;

    *ref = NULL;
    pool = vd_hsm_pool(ctx, err);
    if (pool == NULL)
        return err->rv;
    vd_label(vault, name, version, label, sizeof(label));
    rv = kv_hsm_import_pkey(pool, pkey, label, r, err);
    if (rv != KV_OK)
        return rv;
    *ref = strdup(r);
    if (*ref == NULL) {
        (void)kv_hsm_destroy(pool, r, NULL);
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    }
    return KV_OK;
}

kv_rv vd_certs_hsm_public(vd_ctx *ctx, const char *ref, EVP_PKEY **pub, kv_err *err)
{
    kv_hsm_pool *pool = vd_hsm_pool(ctx, err);

    if (pool == NULL)
        return err->rv;
    return kv_hsm_get_public(pool, ref, pub, err);
}

void vd_certs_hsm_destroy(vd_ctx *ctx, const char *ref)
{
    kv_err err;
    kv_hsm_pool *pool;

    if (ref == NULL)
        return;
    pool = vd_hsm_pool(ctx, &err);
    if (pool != NULL)
        (void)kv_hsm_destroy(pool, ref, &err);
}

/* The signature algorithm identifier for pub and md, and the pool mechanism. */
static kv_rv vd_sig_algor(EVP_PKEY *pub, const EVP_MD *md, X509_ALGOR *alg, kv_hsm_sig *kind)
{
    int nid = NID_undef;
    bool rsa = EVP_PKEY_is_a(pub, "RSA");

    if (!rsa && !EVP_PKEY_is_a(pub, "EC"))
        return KV_ERR_UNSUPPORTED;
    if (!OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(md),
                                rsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey))
        return KV_ERR_UNSUPPORTED;
    /* RSA PKCS#1 v1.5 algorithms carry NULL parameters, ECDSA ones none (RFC 5758) */
    if (!X509_ALGOR_set0(alg, OBJ_nid2obj(nid), rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
        return KV_ERR_INTERNAL;
    *kind = rsa ? KV_HSM_SIG_PKCS1 : KV_HSM_SIG_ECDSA;
    return KV_OK;
}

/* Signs the DER tbs in the pool: *sig malloc'd, DER ECDSA-Sig-Value for EC keys. */
static kv_rv vd_sign_tbs(vd_ctx *ctx, const char *ref, kv_hsm_sig kind, const EVP_MD *md,
                         const uint8_t *tbs, size_t tbslen, uint8_t **sig, size_t *siglen,
                         kv_err *err)
{
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    uint8_t *raw = NULL, *der = NULL;
    size_t rawlen = 0, derlen = 0;
    kv_hsm_pool *pool;
    kv_rv rv;

    *sig = NULL;
    pool = vd_hsm_pool(ctx, err);
    if (pool == NULL)
        return err->rv;
    if (!EVP_Digest(tbs, tbslen, dgst, &dlen, md, NULL))
        return kv_err_set(err, KV_ERR_INTERNAL, "digest failed");
    rv = kv_hsm_sign(pool, ref, kind, md, dgst, dlen, &raw, &rawlen, err);
    if (rv != KV_OK)
        return rv;
    if (kind != KV_HSM_SIG_ECDSA) {
        *sig = raw;
        *siglen = rawlen;
        return KV_OK;
    }
    rv = kv_ecdsa_raw_to_der(raw, rawlen, NULL, &derlen);
    if (rv == KV_OK && (der = malloc(derlen)) == NULL)
        rv = KV_ERR_NOMEM;
    if (rv == KV_OK)
        rv = kv_ecdsa_raw_to_der(raw, rawlen, der, &derlen);
    free(raw);
    if (rv != KV_OK) {
        free(der);
        return kv_err_set(err, rv, "the pool's ECDSA signature could not be encoded");
    }
    *sig = der;
    *siglen = derlen;
    return KV_OK;
}

kv_rv vd_certs_hsm_sign_x509(vd_ctx *ctx, const char *ref, EVP_PKEY *pub, const EVP_MD *md,
                             X509 **x, kv_err *err)
{
    const ASN1_BIT_STRING *csig = NULL;
    const X509_ALGOR *calg = NULL;
    ASN1_BIT_STRING *bits;
    unsigned char *tbs = NULL, *der = NULL;
    const unsigned char *p;
    uint8_t *sig = NULL;
    size_t siglen = 0;
    X509 *fresh = NULL;
    kv_hsm_sig kind;
    int tbslen, derlen;
    kv_rv rv;

    kv_err_clear(err);
    X509_get0_signature(&csig, &calg, *x);
    /* X509 has no public setters for its algorithm identifiers and signature (X509_REQ
     * does): the pointers are the certificate's own members, set in place as X509_sign does */
    rv = vd_sig_algor(pub, md, (X509_ALGOR *)X509_get0_tbs_sigalg(*x), &kind);
    if (rv == KV_OK)
        rv = vd_sig_algor(pub, md, (X509_ALGOR *)calg, &kind);
    if (rv != KV_OK) {
        kv_err_set(err, rv, "no signature algorithm for this key and digest");
        goto done;
    }
    tbslen = i2d_re_X509_tbs(*x, &tbs);
    if (tbslen <= 0) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "the certificate could not be encoded");
        goto done;
    }
    rv = vd_sign_tbs(ctx, ref, kind, md, tbs, (size_t)tbslen, &sig, &siglen, err);
    if (rv != KV_OK)
        goto done;
    bits = (ASN1_BIT_STRING *)csig;
    if (!ASN1_BIT_STRING_set(bits, sig, (int)siglen)) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    /* re-parse, so that no cached state of the unsigned certificate survives, and check */
    derlen = i2d_X509(*x, &der);
    p = der;
    if (derlen <= 0 || (fresh = d2i_X509(NULL, &p, derlen)) == NULL ||
        X509_verify(fresh, pub) != 1) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "the HSM signature of the certificate is invalid");
        goto done;
    }
    X509_free(*x);
    *x = fresh;
    fresh = NULL;
done:
    ERR_clear_error();
    X509_free(fresh);
    OPENSSL_free(tbs);
    OPENSSL_free(der);
    free(sig);
    return rv;
}

kv_rv vd_certs_hsm_sign_req(vd_ctx *ctx, const char *ref, EVP_PKEY *pub, const EVP_MD *md,
                            X509_REQ *req, kv_err *err)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = NULL;
    unsigned char *tbs = NULL;
    uint8_t *sig = NULL;
    size_t siglen = 0;
    kv_hsm_sig kind;
    int tbslen;
    kv_rv rv;

    kv_err_clear(err);
    if (alg == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    rv = vd_sig_algor(pub, md, alg, &kind);
    if (rv != KV_OK || !X509_REQ_set1_signature_algo(req, alg)) {
        rv = kv_err_set(err, rv != KV_OK ? rv : KV_ERR_INTERNAL, "no signature algorithm");
        goto done;
    }
    tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbslen <= 0) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "the CSR could not be encoded");
        goto done;
    }
    rv = vd_sign_tbs(ctx, ref, kind, md, tbs, (size_t)tbslen, &sig, &siglen, err);
    if (rv != KV_OK)
        goto done;
    bits = ASN1_BIT_STRING_new();
    if (bits == NULL || !ASN1_BIT_STRING_set(bits, sig, (int)siglen)) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    if (X509_REQ_verify(req, pub) != 1)
        rv = kv_err_set(err, KV_ERR_INTERNAL, "the HSM signature of the CSR is invalid");
done:
    ERR_clear_error();
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    OPENSSL_free(tbs);
    free(sig);
    return rv;
}
