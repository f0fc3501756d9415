/* p11_decrypt.c - the RSA encryption mechanisms and their vault algorithms (shared by
 * p11_crypt.c, which runs C_Decrypt* with an RSA private key on the vault, and p11_wrap.c),
 * and the clean-up of an encrypt / decrypt operation.
 *
 * Mechanisms and the vault algorithms they become:
 * - CKM_RSA_PKCS -> RSA1_5 (no parameters).
 * - CKM_RSA_PKCS_OAEP with CK_RSA_PKCS_OAEP_PARAMS hashAlg CKM_SHA_1 / mgf CKG_MGF1_SHA1 ->
 *   RSA-OAEP; CKM_SHA256 / CKG_MGF1_SHA256 -> RSA-OAEP-256. Any other hash, a mismatched MGF or
 *   a source label (source CKZ_DATA_SPECIFIED with data) -> CKR_MECHANISM_PARAM_INVALID: the
 *   vault offers exactly these two OAEP variants, with the empty label.
 * Two-call convention: with pData NULL, *pulDataLen gets the largest possible plaintext
 * (k - 11 for PKCS#1 v1.5, k - 2 hLen - 2 for OAEP) without a vault call; a buffer smaller than
 * the actual plaintext gets CKR_BUFFER_TOO_SMALL with the exact length, and the operation stays
 * active (the plaintext is kept for the retry: p11_crypt.c).
 * Errors: a ciphertext that is not k bytes -> CKR_ENCRYPTED_DATA_LEN_RANGE (no vault call); a
 * ciphertext the vault rejects (400) -> CKR_ENCRYPTED_DATA_INVALID; key_ops without decrypt or
 * a 403 -> CKR_KEY_FUNCTION_NOT_PERMITTED; an EC key -> CKR_KEY_TYPE_INCONSISTENT. */
#include "p11_internal.h"

#include <string.h>

#include <openssl/crypto.h>

CK_RV kv_p11_enc_alg(const CK_MECHANISM *mech, kv_enc_alg *alg)
{
    const CK_RSA_PKCS_OAEP_PARAMS *p;

    if (mech == NULL)
        return CKR_ARGUMENTS_BAD;
    switch (mech->mechanism) {
    case CKM_RSA_PKCS:
        if (mech->pParameter != NULL || mech->ulParameterLen != 0)
            return CKR_MECHANISM_PARAM_INVALID;
        *alg = KV_ENC_RSA1_5;
        return CKR_OK;
    case CKM_RSA_PKCS_OAEP:
        p = mech->pParameter;
        if (p == NULL || mech->ulParameterLen != sizeof(*p))
            return CKR_MECHANISM_PARAM_INVALID;
        if (p->source != 0 && p->source != CKZ_DATA_SPECIFIED)
            return CKR_MECHANISM_PARAM_INVALID;
        if (p->pSourceData != NULL || p->ulSourceDataLen != 0)
            return CKR_MECHANISM_PARAM_INVALID; /* the vault has no OAEP label */
        if (p->hashAlg == CKM_SHA_1 && p->mgf == CKG_MGF1_SHA1)
            *alg = KV_ENC_RSA_OAEP;
        else if (p->hashAlg == CKM_SHA256 && p->mgf == CKG_MGF1_SHA256)
            *alg = KV_ENC_RSA_OAEP_256;
        else
            return CKR_MECHANISM_PARAM_INVALID;
        return CKR_OK;
    default:
        return CKR_MECHANISM_INVALID;
    }
}

void kv_p11_cryptop_clear(kv_p11_cryptop *op)
{
    kv_p11_kdata_unref(op->kd);
    if (op->skey != NULL)
        OPENSSL_clear_free(op->skey, op->skeylen);
    if (op->aad != NULL)
        OPENSSL_clear_free(op->aad, op->sym.aadlen);
    if (op->buf != NULL)
        OPENSSL_clear_free(op->buf, op->bufcap);
    if (op->result != NULL)
        OPENSSL_clear_free(op->result, op->resultlen);
    OPENSSL_cleanse(op, sizeof(*op));
}
