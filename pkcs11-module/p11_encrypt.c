/* p11_encrypt.c - C_EncryptInit / C_Encrypt (single-part) with an RSA public key, done
 * locally with OpenSSL in vaultclient's private library context (no vault round trip, no
 * recursion into a provider of the host, kvault's own included).
 *
 * Mechanisms as for decryption (p11_decrypt.c): CKM_RSA_PKCS, and CKM_RSA_PKCS_OAEP with
 * SHA-1/MGF1-SHA-1 or SHA-256/MGF1-SHA-256 and no label - so that whatever C_Encrypt produces,
 * the vault can decrypt. The key may be the public or the private key object of a vault key
 * pair whose key_ops allow encrypt. The ciphertext is always k (modulus) bytes; a plaintext
 * longer than the padding allows -> CKR_DATA_LEN_RANGE. */
#include "p11_internal.h"

#include <string.h>

#include <openssl/rsa.h>

CK_RV kv_p11_encrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    kv_p11_session *s = NULL;
    kv_p11_kdata *kd = NULL;
    kv_enc_alg alg = KV_ENC_NONE;
    kv_p11_obj obj;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, KV_P11_PART_ENCRYPT, &s);
    if (rv != CKR_OK)
        return rv;
    if (mech == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (s->encrypt.active) {
        rv = CKR_OPERATION_ACTIVE;
        goto done;
    }
    rv = kv_p11_enc_alg(mech, &alg);
    if (rv != CKR_OK)
        goto done;
    rv = kv_p11_obj_kdata("C_EncryptInit", s->slot, key, KV_P11_OP_KEY, &obj, &kd);
    if (rv != CKR_OK)
        goto done;
    if (kd->key_type != CKK_RSA) {
        rv = CKR_KEY_TYPE_INCONSISTENT;
        goto done;
    }
    if (!(kd->key->key_ops & KV_OP_ENCRYPT)) {
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        goto done;
    }
    s->encrypt.mech = mech->mechanism;
    s->encrypt.alg = alg;
    s->encrypt.kd = kv_p11_kdata_ref(kd);
    s->encrypt.active = true;

done:
    kv_p11_kdata_unref(kd);
    kv_p11_session_release(s, KV_P11_PART_ENCRYPT);
    return rv;
}

/* Encrypts in into out (k bytes) with the key's public part. */
static CK_RV kv_p11_encrypt_raw(const kv_p11_cryptop *op, const CK_BYTE *in, CK_ULONG inlen,
                                CK_BYTE_PTR out, size_t *outlen)
{
    OSSL_LIB_CTX *lctx = kv_ctx_libctx(kv_p11_module.ctx);
    size_t k = op->kd->modulus_len;
    size_t over = op->alg == KV_ENC_RSA1_5 ? 11 : op->alg == KV_ENC_RSA_OAEP ? 42 : 66;
    EVP_PKEY_CTX *ctx = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (k <= over || inlen > k - over)
        return CKR_DATA_LEN_RANGE;
    ctx = EVP_PKEY_CTX_new_from_pkey(lctx, op->kd->key->pub, NULL);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1)
        goto done;
    if (op->alg == KV_ENC_RSA1_5) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
            goto done;
    } else {
        const char *md = op->alg == KV_ENC_RSA_OAEP ? "SHA1" : "SHA256";

        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) != 1)
            goto done;
    }
    *outlen = k;
    if (EVP_PKEY_encrypt(ctx, out, outlen, in, inlen) != 1)
        goto done;
    rv = CKR_OK;

done:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

CK_RV kv_p11_encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                     CK_ULONG_PTR outlen)
{
    kv_p11_session *s = NULL;
    bool keep = false;
    size_t k, olen = 0;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, KV_P11_PART_ENCRYPT, &s);
    if (rv != CKR_OK)
        return rv;
    if (!s->encrypt.active) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
        keep = true;
        goto done;
    }
    if (outlen == NULL || (in == NULL && inlen > 0)) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    k = s->encrypt.kd->modulus_len;
    if (out == NULL || *outlen < k) {
        keep = true;
        rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *outlen = k;
        goto done;
    }
    rv = kv_p11_encrypt_raw(&s->encrypt, in, inlen, out, &olen);
    if (rv == CKR_OK)
        *outlen = olen;

done:
    if (!keep)
        kv_p11_cryptop_clear(&s->encrypt);
    kv_p11_session_release(s, KV_P11_PART_ENCRYPT);
    return rv;
}
