/* p11_decrypt.c - C_DecryptInit / C_Decrypt (single-part) with an RSA private key on the
 * vault, and the encryption mechanism logic shared with p11_encrypt.c.
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
 * active (the retry decrypts again).
 * Errors: a ciphertext that is not k bytes -> CKR_ENCRYPTED_DATA_LEN_RANGE (no vault call); a
 * ciphertext the vault rejects (400) -> CKR_ENCRYPTED_DATA_INVALID; key_ops without decrypt or
 * a 403 -> CKR_KEY_FUNCTION_NOT_PERMITTED; an EC key -> CKR_KEY_TYPE_INCONSISTENT. */
#include "p11_internal.h"

#include <stdlib.h>
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
    memset(op, 0, sizeof(*op));
}

/* Largest plaintext for alg under a k-byte modulus (0 if none fits). */
static size_t kv_p11_dec_max(kv_enc_alg alg, size_t k)
{
    size_t over = alg == KV_ENC_RSA1_5 ? 11 : alg == KV_ENC_RSA_OAEP ? 2 * 20 + 2 : 2 * 32 + 2;

    return k > over ? k - over : 0;
}

CK_RV kv_p11_decrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    kv_p11_session *s = NULL;
    kv_p11_kdata *kd = NULL;
    kv_enc_alg alg = KV_ENC_NONE;
    kv_p11_obj obj;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, KV_P11_PART_DECRYPT, &s);
    if (rv != CKR_OK)
        return rv;
    if (mech == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (s->decrypt.active) {
        rv = CKR_OPERATION_ACTIVE;
        goto done;
    }
    rv = kv_p11_enc_alg(mech, &alg);
    if (rv != CKR_OK)
        goto done;
    rv = kv_p11_obj_kdata("C_DecryptInit", s->slot, key, KV_P11_OP_KEY, &obj, &kd);
    if (rv != CKR_OK)
        goto done;
    if (kd->key_type != CKK_RSA) {
        rv = CKR_KEY_TYPE_INCONSISTENT;
        goto done;
    }
    if (obj.cls != CKO_PRIVATE_KEY || !(kd->key->key_ops & KV_OP_DECRYPT)) {
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        goto done;
    }
    s->decrypt.mech = mech->mechanism;
    s->decrypt.alg = alg;
    s->decrypt.kd = kv_p11_kdata_ref(kd);
    s->decrypt.active = true;

done:
    kv_p11_kdata_unref(kd);
    kv_p11_session_release(s, KV_P11_PART_DECRYPT);
    return rv;
}

/* Runs the decryption; *keep when the operation stays active (length answers). */
static CK_RV kv_p11_decrypt_run(kv_p11_session *s, const CK_BYTE *in, CK_ULONG inlen,
                                CK_BYTE_PTR out, CK_ULONG_PTR outlen, bool *keep)
{
    kv_p11_cryptop *op = &s->decrypt;
    size_t k = op->kd->modulus_len, plen = 0;
    uint8_t *buf = NULL;
    kv_err err;
    kv_rv krv;
    CK_RV rv = CKR_OK;

    *keep = false;
    kv_err_clear(&err);
    if (outlen == NULL || (in == NULL && inlen > 0))
        return CKR_ARGUMENTS_BAD;
    if (inlen != k)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    if (out == NULL) {
        *outlen = kv_p11_dec_max(op->alg, k);
        *keep = true;
        return CKR_OK;
    }
    buf = malloc(k);
    if (buf == NULL)
        return CKR_HOST_MEMORY;
    plen = k;
    krv = kv_vault_decrypt(kv_p11_slot_get(s->slot)->vault, op->kd->key, op->alg, in, inlen, buf,
                           &plen, &err);
    if (krv != KV_OK) {
        rv = kv_p11_rv_log("C_Decrypt", &err, krv, KV_P11_OP_SIGN);
        if (krv == KV_ERR_BAD_REQUEST || krv == KV_ERR_INVALID_ARG)
            rv = CKR_ENCRYPTED_DATA_INVALID;
        goto done;
    }
    if (*outlen < plen) {
        *outlen = plen;
        *keep = true;
        rv = CKR_BUFFER_TOO_SMALL;
        goto done;
    }
    memcpy(out, buf, plen);
    *outlen = plen;

done:
    OPENSSL_cleanse(buf, k);
    free(buf);
    return rv;
}

CK_RV kv_p11_decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                     CK_ULONG_PTR outlen)
{
    kv_p11_session *s = NULL;
    bool keep = true;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, KV_P11_PART_DECRYPT, &s);
    if (rv != CKR_OK)
        return rv;
    if (!s->decrypt.active) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
        goto done;
    }
    rv = kv_p11_decrypt_run(s, in, inlen, out, outlen, &keep);

done:
    if (s != NULL && !keep)
        kv_p11_cryptop_clear(&s->decrypt);
    kv_p11_session_release(s, KV_P11_PART_DECRYPT);
    return rv;
}
