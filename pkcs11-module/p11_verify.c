/* p11_verify.c - C_VerifyInit / C_Verify / C_VerifyUpdate / C_VerifyFinal, done locally with
 * the key's public part (no vault round trip), in OpenSSL's default provider. The mechanism
 * and input rules are those of signing (p11_sign.c), so whatever C_Sign produced, C_Verify
 * accepts. */
#include "p11_internal.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kv_ecdsa.h"

static const char *kv_p11_alg_md(kv_alg alg)
{
    switch (alg) {
    case KV_ALG_RS256:
    case KV_ALG_PS256:
    case KV_ALG_ES256:
    case KV_ALG_ES256K:
        return "SHA256";
    case KV_ALG_RS384:
    case KV_ALG_PS384:
    case KV_ALG_ES384:
        return "SHA384";
    case KV_ALG_RS512:
    case KV_ALG_PS512:
    case KV_ALG_ES512:
        return "SHA512";
    default:
        return NULL;
    }
}

/* Checks sig over the vault input `in` (a digest, or RSNULL's raw input) with alg. */
static CK_RV kv_p11_verify_raw(const kv_p11_kdata *kd, kv_alg alg, const uint8_t *in, size_t inlen,
                               const CK_BYTE *sig, CK_ULONG siglen)
{
    const unsigned char *p = kd->spki;
    uint8_t der[160];
    size_t derlen = sizeof(der);
    const uint8_t *s = sig;
    size_t slen = siglen;
    const char *mdname = kv_p11_alg_md(alg);
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD *md = NULL;
    CK_RV rv = CKR_OK;
    int r;

    if (siglen != kv_key_sig_size(kd->key))
        return CKR_SIGNATURE_LEN_RANGE;
    if (kd->key_type == CKK_EC) {
        if (kv_ecdsa_raw_to_der(sig, siglen, der, &derlen) != KV_OK)
            return CKR_SIGNATURE_INVALID;
        s = der;
        slen = derlen;
    }
    pkey = d2i_PUBKEY_ex(NULL, &p, (long)kd->spki_len, NULL, "?provider=default");
    if (pkey == NULL) {
        rv = CKR_GENERAL_ERROR;
        goto done;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, "?provider=default");
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1) {
        rv = CKR_GENERAL_ERROR;
        goto done;
    }
    if (kd->key_type == CKK_RSA) {
        bool pss = alg == KV_ALG_PS256 || alg == KV_ALG_PS384 || alg == KV_ALG_PS512;

        if (EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) !=
            1) {
            rv = CKR_GENERAL_ERROR;
            goto done;
        }
        if (mdname != NULL) {
            md = kv_p11_md_fetch(mdname);
            if (md == NULL || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1 ||
                (pss && (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
                         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))) {
                rv = CKR_GENERAL_ERROR;
                goto done;
            }
        }
    }
    r = EVP_PKEY_verify(ctx, s, slen, in, inlen);
    rv = r == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;

done:
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rv;
}

CK_RV kv_p11_verify_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return kv_p11_sigop_init(h, KV_P11_PART_VERIFY, mech, key);
}

static CK_RV kv_p11_verify_finish(kv_p11_sigop *op, const CK_BYTE *sig, CK_ULONG siglen)
{
    uint8_t in[KV_P11_MAX_RAW_INPUT];
    size_t inlen = 0;
    kv_alg alg = KV_ALG_NONE;
    CK_RV rv;

    if (sig == NULL)
        return CKR_ARGUMENTS_BAD;
    rv = kv_p11_sigop_digest(op, in, &inlen, &alg);
    if (rv == CKR_OK)
        rv = kv_p11_verify_raw(op->kd, alg, in, inlen, sig, siglen);
    OPENSSL_cleanse(in, sizeof(in));
    return rv;
}

/* C_Verify (single: the data is all of it) and C_VerifyFinal (the data came in Updates). */
static CK_RV kv_p11_verify_end(CK_SESSION_HANDLE h, bool single, CK_BYTE_PTR data, CK_ULONG len,
                               CK_BYTE_PTR sig, CK_ULONG siglen)
{
    kv_p11_session *s = NULL;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, KV_P11_PART_VERIFY, single, &s);
    if (rv != CKR_OK)
        return rv;
    if (single)
        rv = kv_p11_sigop_update(&s->verify, data, len);
    if (rv == CKR_OK)
        rv = kv_p11_verify_finish(&s->verify, sig, siglen);
    kv_p11_sigop_clear(&s->verify);
    kv_p11_session_release(s, KV_P11_PART_VERIFY);
    return rv;
}

CK_RV kv_p11_verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                    CK_ULONG siglen)
{
    return kv_p11_verify_end(h, true, data, len, sig, siglen);
}

CK_RV kv_p11_verify_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
    return kv_p11_sigop_step_update(h, KV_P11_PART_VERIFY, part, len);
}

CK_RV kv_p11_verify_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen)
{
    return kv_p11_verify_end(h, false, NULL, 0, sig, siglen);
}
