/* p11_encrypt.c - RSA encryption (C_Encrypt* in p11_crypt.c, C_WrapKey in p11_wrap.c) with a
 * vault key's public key, done locally with OpenSSL in vaultclient's private library context
 * (no vault round trip, no recursion into a provider of the host, kvault's own included).
 *
 * Mechanisms as for decryption (p11_decrypt.c): CKM_RSA_PKCS, and CKM_RSA_PKCS_OAEP with
 * SHA-1/MGF1-SHA-1 or SHA-256/MGF1-SHA-256 and no label - so that whatever C_Encrypt produces,
 * the vault can decrypt. The key may be the public or the private key object of a vault key
 * pair whose key_ops allow encrypt. The ciphertext is always k (modulus) bytes; a plaintext
 * longer than the padding allows -> CKR_DATA_LEN_RANGE. */
#include "p11_internal.h"

#include <string.h>

#include <openssl/rsa.h>

/* Encrypts in into out (k bytes) with the key's public part. */
CK_RV kv_p11_rsa_encrypt_local(const kv_p11_kdata *kd, kv_enc_alg alg, const uint8_t *in,
                               size_t inlen, uint8_t *out, size_t *outlen)
{
    OSSL_LIB_CTX *lctx = kv_ctx_libctx(kv_p11_module.ctx);
    size_t k = kd->modulus_len;
    size_t over = alg == KV_ENC_RSA1_5 ? 11 : alg == KV_ENC_RSA_OAEP ? 42 : 66;
    EVP_PKEY_CTX *ctx = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (k <= over || inlen > k - over)
        return CKR_DATA_LEN_RANGE;
    ctx = EVP_PKEY_CTX_new_from_pkey(lctx, kd->key->pub, NULL);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1)
        goto done;
    if (alg == KV_ENC_RSA1_5) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
            goto done;
    } else {
        const char *md = alg == KV_ENC_RSA_OAEP ? "SHA1" : "SHA256";

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
