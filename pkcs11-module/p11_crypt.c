/* p11_crypt.c - C_EncryptInit/C_Encrypt/C_EncryptUpdate/C_EncryptFinal and the same for
 * decryption, for every key and mechanism the module offers:
 * - RSA (CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP; p11_decrypt.c): encryption locally with the public key
 *   (kv_p11_rsa_encrypt_local), decryption on the vault.
 * - AES (CKM_AES_GCM, CKM_AES_CBC, CKM_AES_CBC_PAD) on slots that hold AES keys: with a vault /
 *   pool key on the vault (kv_vault_encrypt_sym / decrypt_sym), with a module session key
 *   locally in vaultclient's private library context (kv_p11_aes_local).
 *
 * Multi-part: C_*Update only accumulates the input (its output is always empty) and
 * C_*Final does the whole operation in one vault call. So AES-GCM decryption releases nothing
 * before the tag is checked, and a CBC operation costs one round trip, not one per part.
 * Accumulated input is limited to KV_P11_MAX_SYM_INPUT (CKR_DATA_LEN_RANGE beyond).
 * Two-call convention: with a NULL output buffer the length is returned without any vault
 * call (exact for encryption; for decryption an upper bound until the operation has run);
 * a too small buffer gets CKR_BUFFER_TOO_SMALL and the needed length, and the operation stays
 * active. Once computed, the result is kept (never recomputed) until it is delivered.
 *
 * CKM_AES_GCM takes CK_GCM_PARAMS with a 12-byte IV, ulTagBits 128 and optional AAD; the
 * ciphertext is followed by the 16-byte tag (PKCS#11 convention). A managed HSM chooses the
 * IV of an encryption itself: the IV it used is written back into CK_GCM_PARAMS.pIv when the
 * operation completes (so pIv must stay valid until then). Local pools and module session
 * keys use the caller's IV (written back unchanged). CBC takes a 16-byte IV. */
#include "p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* ---- local AES ---- */

CK_RV kv_p11_aes_local(const char *mode, bool encrypt, bool pad, const uint8_t *key, size_t keylen,
                       kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                       size_t *outlen)
{
    bool gcm = strcmp(mode, "GCM") == 0, wrap = strncmp(mode, "WRAP", 4) == 0;
    EVP_CIPHER *cipher = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    size_t cap = inlen + 32;
    uint8_t *buf = NULL;
    char name[32];
    int n1 = 0, n2 = 0;
    CK_RV rv = CKR_FUNCTION_FAILED;

    *out = NULL;
    *outlen = 0;
    if (keylen != 16 && keylen != 24 && keylen != 32)
        return CKR_KEY_SIZE_RANGE;
    if (inlen > INT32_MAX - 64)
        return CKR_DATA_LEN_RANGE;
    snprintf(name, sizeof(name), "AES-%zu-%s", keylen * 8, mode);
    cipher = EVP_CIPHER_fetch(kv_ctx_libctx(kv_p11_module.ctx), name, NULL);
    ctx = EVP_CIPHER_CTX_new();
    buf = malloc(cap);
    if (cipher == NULL || ctx == NULL || buf == NULL)
        goto done;
    if (wrap)
        EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, encrypt ? 1 : 0, NULL) != 1)
        goto done;
    if (gcm && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)p->ivlen, NULL) != 1)
        goto done;
    if (EVP_CipherInit_ex2(ctx, NULL, key, wrap ? NULL : p->iv, -1, NULL) != 1)
        goto done;
    if (!gcm && !wrap)
        EVP_CIPHER_CTX_set_padding(ctx, pad ? 1 : 0);
    if (gcm && p->aadlen > 0 && EVP_CipherUpdate(ctx, NULL, &n1, p->aad, (int)p->aadlen) != 1)
        goto done;
    if (gcm && !encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)p->tag) != 1)
        goto done;
    n1 = 0;
    if (EVP_CipherUpdate(ctx, buf, &n1, in, (int)inlen) != 1) {
        rv = encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_INVALID;
        goto done;
    }
    if (EVP_CipherFinal_ex(ctx, buf + n1, &n2) != 1) {
        rv = encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_INVALID;
        goto done;
    }
    if (gcm && encrypt) {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, p->tag) != 1)
            goto done;
        p->taglen = 16;
    }
    *out = buf;
    *outlen = (size_t)n1 + (size_t)n2;
    buf = NULL;
    rv = CKR_OK;
done:
    if (buf != NULL)
        OPENSSL_clear_free(buf, cap);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    return rv;
}

/* ---- operation set-up ---- */

static bool kv_p11_is_aes_mech(CK_MECHANISM_TYPE m)
{
    return m == CKM_AES_GCM || m == CKM_AES_CBC || m == CKM_AES_CBC_PAD;
}

/* The vault algorithm of an AES mechanism for a key of bits. */
static kv_enc_alg kv_p11_aes_alg(CK_MECHANISM_TYPE m, int bits)
{
    int i = bits == 128 ? 0 : bits == 192 ? 1 : bits == 256 ? 2 : -1;

    if (i < 0)
        return KV_ENC_NONE;
    switch (m) {
    case CKM_AES_GCM:
        return (kv_enc_alg)(KV_ENC_A128GCM + i);
    case CKM_AES_CBC:
        return (kv_enc_alg)(KV_ENC_A128CBC + i);
    case CKM_AES_CBC_PAD:
        return (kv_enc_alg)(KV_ENC_A128CBCPAD + i);
    default:
        return KV_ENC_NONE;
    }
}

/* Reads the AES mechanism parameters into op. */
static CK_RV kv_p11_aes_params(const CK_MECHANISM *mech, kv_p11_cryptop *op)
{
    if (mech->mechanism == CKM_AES_GCM) {
        const CK_GCM_PARAMS *g = mech->pParameter;

        if (g == NULL || mech->ulParameterLen != sizeof(*g))
            return CKR_MECHANISM_PARAM_INVALID;
        if (g->pIv == NULL || g->ulIvLen != 12 || g->ulTagBits != 128 ||
            (g->pAAD == NULL && g->ulAADLen > 0) || g->ulAADLen > KV_P11_MAX_SYM_INPUT)
            return CKR_MECHANISM_PARAM_INVALID;
        memcpy(op->sym.iv, g->pIv, 12);
        op->sym.ivlen = 12;
        if (g->ulAADLen > 0) {
            op->aad = OPENSSL_memdup(g->pAAD, g->ulAADLen);
            if (op->aad == NULL)
                return CKR_HOST_MEMORY;
        }
        op->sym.aad = op->aad;
        op->sym.aadlen = g->ulAADLen;
        op->gcm_iv = g->pIv;
        return CKR_OK;
    }
    if (mech->pParameter == NULL || mech->ulParameterLen != 16)
        return CKR_MECHANISM_PARAM_INVALID;
    memcpy(op->sym.iv, mech->pParameter, 16);
    op->sym.ivlen = 16;
    return CKR_OK;
}

/* The key of an AES operation: a module session key (copied) or a vault AES key. */
static CK_RV kv_p11_aes_key(const char *fn, CK_SLOT_ID slot, CK_OBJECT_HANDLE key, bool enc,
                            kv_p11_cryptop *op)
{
    kv_p11_kdata *kd = NULL;
    kv_p11_sobj so;
    kv_p11_obj obj;
    unsigned need = enc ? KV_OP_ENCRYPT : KV_OP_DECRYPT;
    CK_RV rv;

    if (KV_P11_IS_SOBJ(key)) {
        rv = kv_p11_sobj_copy(slot, key, &so);
        if (rv != CKR_OK)
            return CKR_KEY_HANDLE_INVALID;
        if (so.key_type != CKK_AES)
            rv = CKR_KEY_TYPE_INCONSISTENT;
        else if (!(enc ? so.encrypt : so.decrypt))
            rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        else if (so.len != 16 && so.len != 24 && so.len != 32)
            rv = CKR_KEY_SIZE_RANGE;
        if (rv == CKR_OK) {
            op->skey = so.value;
            op->skeylen = so.len;
            so.value = NULL;
        }
        kv_p11_sobj_clear(&so);
        return rv;
    }
    rv = kv_p11_obj_kdata(fn, slot, key, KV_P11_OP_KEY, &obj, &kd);
    if (rv != CKR_OK)
        return rv;
    if (kd->key_type != CKK_AES)
        rv = CKR_KEY_TYPE_INCONSISTENT;
    else if (kd->key->key_ops != 0 && !(kd->key->key_ops & need))
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
    else if ((op->alg = kv_p11_aes_alg(op->mech, kd->key->bits)) == KV_ENC_NONE)
        rv = CKR_KEY_SIZE_RANGE;
    if (rv == CKR_OK)
        op->kd = kv_p11_kdata_ref(kd);
    kv_p11_kdata_unref(kd);
    return rv;
}

/* The key of an RSA operation: a vault RSA key. */
static CK_RV kv_p11_rsa_key(const char *fn, CK_SLOT_ID slot, CK_OBJECT_HANDLE key, bool enc,
                            kv_p11_cryptop *op)
{
    kv_p11_kdata *kd = NULL;
    kv_p11_obj obj;
    CK_RV rv;

    if (KV_P11_IS_SOBJ(key)) { /* module session objects are secret keys, if h is one */
        kv_p11_sobj so;

        rv = kv_p11_sobj_copy(slot, key, &so);
        kv_p11_sobj_clear(&so);
        return rv == CKR_OBJECT_HANDLE_INVALID ? CKR_KEY_HANDLE_INVALID
               : rv == CKR_OK                  ? CKR_KEY_TYPE_INCONSISTENT
                                               : rv;
    }
    rv = kv_p11_obj_kdata(fn, slot, key, KV_P11_OP_KEY, &obj, &kd);
    if (rv != CKR_OK)
        return rv;
    if (kd->key_type != CKK_RSA)
        rv = CKR_KEY_TYPE_INCONSISTENT;
    else if (enc && !(kd->key->key_ops & KV_OP_ENCRYPT))
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
    else if (!enc && (obj.cls != CKO_PRIVATE_KEY || !(kd->key->key_ops & KV_OP_DECRYPT)))
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
    if (rv == CKR_OK)
        op->kd = kv_p11_kdata_ref(kd);
    kv_p11_kdata_unref(kd);
    return rv;
}

static CK_RV kv_p11_crypt_init(CK_SESSION_HANDLE h, bool enc, CK_MECHANISM_PTR mech,
                               CK_OBJECT_HANDLE key)
{
    const char *fn = enc ? "C_EncryptInit" : "C_DecryptInit";
    unsigned part = enc ? KV_P11_PART_ENCRYPT : KV_P11_PART_DECRYPT;
    kv_p11_session *s = NULL;
    kv_p11_cryptop *op;
    CK_RV rv;

    rv = kv_p11_op_acquire_idle(h, part, mech != NULL, &s);
    if (rv != CKR_OK)
        return rv;
    op = enc ? &s->encrypt : &s->decrypt;
    kv_p11_cryptop_clear(op);
    op->mech = mech->mechanism;
    if (kv_p11_is_aes_mech(mech->mechanism)) {
        if (!kv_p11_slot_has_aes(s->slot)) {
            rv = CKR_MECHANISM_INVALID;
            goto done;
        }
        rv = kv_p11_aes_params(mech, op);
        if (rv == CKR_OK)
            rv = kv_p11_aes_key(fn, s->slot, key, enc, op);
    } else {
        rv = kv_p11_enc_alg(mech, &op->alg);
        if (rv == CKR_OK)
            rv = kv_p11_rsa_key(fn, s->slot, key, enc, op);
    }
    if (rv == CKR_OK)
        op->active = true;
    else
        kv_p11_cryptop_clear(op);

done:
    kv_p11_session_release(s, part);
    return rv;
}

CK_RV kv_p11_encrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return kv_p11_crypt_init(h, true, mech, key);
}

CK_RV kv_p11_decrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return kv_p11_crypt_init(h, false, mech, key);
}

/* ---- running ---- */

static CK_RV kv_p11_crypt_append(kv_p11_cryptop *op, const CK_BYTE *in, CK_ULONG inlen, bool enc)
{
    size_t need;

    if (inlen == 0)
        return CKR_OK;
    if (inlen > KV_P11_MAX_SYM_INPUT || op->buflen + inlen > KV_P11_MAX_SYM_INPUT)
        return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
    need = op->buflen + inlen;
    if (need > op->bufcap) {
        size_t cap = op->bufcap ? op->bufcap : 256;
        uint8_t *nb;

        while (cap < need)
            cap *= 2;
        nb = OPENSSL_malloc(cap);
        if (nb == NULL)
            return CKR_HOST_MEMORY;
        if (op->buflen > 0)
            memcpy(nb, op->buf, op->buflen);
        if (op->buf != NULL)
            OPENSSL_clear_free(op->buf, op->bufcap);
        op->buf = nb;
        op->bufcap = cap;
    }
    memcpy(op->buf + op->buflen, in, inlen);
    op->buflen += inlen;
    return CKR_OK;
}

/* Largest RSA plaintext for alg under a k-byte modulus (0 if none fits). */
static size_t kv_p11_rsa_over(kv_enc_alg alg)
{
    return alg == KV_ENC_RSA1_5 ? 11 : alg == KV_ENC_RSA_OAEP ? 2 * 20 + 2 : 2 * 32 + 2;
}

/* The output length for the accumulated input: exact for encryption, a bound for decryption. */
static CK_RV kv_p11_crypt_len(const kv_p11_cryptop *op, bool enc, size_t *len)
{
    size_t n = op->buflen, k, over;

    switch (op->mech) {
    case CKM_RSA_PKCS:
    case CKM_RSA_PKCS_OAEP:
        k = op->kd->modulus_len;
        over = kv_p11_rsa_over(op->alg);
        if (enc) {
            if (k <= over || n > k - over)
                return CKR_DATA_LEN_RANGE;
            *len = k;
        } else {
            if (n != k)
                return CKR_ENCRYPTED_DATA_LEN_RANGE;
            *len = k > over ? k - over : 0;
        }
        return CKR_OK;
    case CKM_AES_CBC:
        if (n % 16 != 0)
            return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
        *len = n;
        return CKR_OK;
    case CKM_AES_CBC_PAD:
        if (!enc && (n % 16 != 0 || n == 0))
            return CKR_ENCRYPTED_DATA_LEN_RANGE;
        *len = enc ? (n / 16 + 1) * 16 : n;
        return CKR_OK;
    case CKM_AES_GCM:
        if (!enc && n < 16)
            return CKR_ENCRYPTED_DATA_LEN_RANGE;
        *len = enc ? n + 16 : n - 16;
        return CKR_OK;
    default:
        return CKR_GENERAL_ERROR;
    }
}

/* Runs the operation over the accumulated input into op->result. */
static CK_RV kv_p11_crypt_compute(kv_p11_session *s, kv_p11_cryptop *op, bool enc)
{
    const char *fn = enc ? "C_Encrypt" : "C_Decrypt";
    kv_vault *vault = kv_p11_slot_get(s->slot)->vault;
    uint8_t *out = NULL;
    size_t outlen = 0, inlen = op->buflen;
    bool gcm = op->mech == CKM_AES_GCM;
    kv_err err;
    kv_rv krv;
    CK_RV rv = CKR_OK;

    kv_err_clear(&err);
    if (op->mech == CKM_RSA_PKCS || op->mech == CKM_RSA_PKCS_OAEP) {
        size_t k = op->kd->modulus_len;

        out = OPENSSL_malloc(k);
        if (out == NULL)
            return CKR_HOST_MEMORY;
        outlen = k;
        if (enc) {
            rv = kv_p11_rsa_encrypt_local(op->kd, op->alg, op->buf, inlen, out, &outlen);
        } else {
            krv = kv_vault_decrypt(vault, op->kd->key, op->alg, op->buf, inlen, out, &outlen, &err);
            if (krv != KV_OK) {
                rv = kv_p11_rv_log(fn, &err, krv, KV_P11_OP_SIGN);
                if (krv == KV_ERR_BAD_REQUEST || krv == KV_ERR_INVALID_ARG)
                    rv = CKR_ENCRYPTED_DATA_INVALID;
            }
        }
        if (rv != CKR_OK) {
            OPENSSL_clear_free(out, k);
            return rv;
        }
        op->result = out;
        op->resultlen = outlen;
        op->has_result = true;
        return CKR_OK;
    }

    /* AES */
    if (gcm && !enc) {
        inlen -= 16;
        memcpy(op->sym.tag, op->buf + inlen, 16);
        op->sym.taglen = 16;
    }
    if (op->skey != NULL) {
        rv = kv_p11_aes_local(gcm ? "GCM" : "CBC", enc, op->mech == CKM_AES_CBC_PAD, op->skey,
                              op->skeylen, &op->sym, op->buf, inlen, &out, &outlen);
    } else {
        krv = enc ? kv_vault_encrypt_sym(vault, op->kd->key, op->alg, &op->sym, op->buf, inlen,
                                         &out, &outlen, &err)
                  : kv_vault_decrypt_sym(vault, op->kd->key, op->alg, &op->sym, op->buf, inlen,
                                         &out, &outlen, &err);
        if (krv != KV_OK) {
            rv = kv_p11_rv_log(fn, &err, krv, KV_P11_OP_SIGN);
            if (krv == KV_ERR_BAD_REQUEST || krv == KV_ERR_INVALID_ARG)
                rv = enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_INVALID;
        }
    }
    if (rv != CKR_OK)
        return rv;
    if (gcm && enc) { /* ciphertext || tag; the IV used goes back to the caller */
        uint8_t *ct = OPENSSL_malloc(outlen + 16);

        if (ct == NULL) {
            OPENSSL_clear_free(out, outlen);
            return CKR_HOST_MEMORY;
        }
        if (outlen > 0)
            memcpy(ct, out, outlen);
        memcpy(ct + outlen, op->sym.tag, 16);
        OPENSSL_clear_free(out, outlen);
        out = ct;
        outlen += 16;
        if (op->gcm_iv != NULL && op->sym.ivlen == 12)
            memcpy(op->gcm_iv, op->sym.iv, 12);
    }
    op->result = out;
    op->resultlen = outlen;
    op->has_result = true;
    return CKR_OK;
}

/* Delivers the result (computing it first); *keep when the operation stays active. */
static CK_RV kv_p11_crypt_finish(kv_p11_session *s, kv_p11_cryptop *op, bool enc, CK_BYTE_PTR out,
                                 CK_ULONG_PTR outlen, bool *keep)
{
    size_t need = 0;
    CK_RV rv;

    *keep = false;
    if (outlen == NULL)
        return CKR_ARGUMENTS_BAD;
    if (!op->has_result) {
        rv = kv_p11_crypt_len(op, enc, &need);
        if (rv != CKR_OK)
            return rv;
        if (out == NULL || (enc && *outlen < need)) {
            rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
            *outlen = need;
            *keep = true;
            return rv;
        }
        rv = kv_p11_crypt_compute(s, op, enc);
        if (rv != CKR_OK)
            return rv;
    }
    if (kv_p11_out_short(out, outlen, op->resultlen, &rv)) {
        *keep = true;
        return rv;
    }
    if (op->resultlen > 0)
        memcpy(out, op->result, op->resultlen);
    *outlen = op->resultlen;
    return CKR_OK;
}

/* C_Encrypt / C_Decrypt (single: in is all of the input) and C_EncryptFinal / C_DecryptFinal
 * (in NULL, inlen 0: the input came in Updates). */
static CK_RV kv_p11_crypt_end(CK_SESSION_HANDLE h, bool enc, bool single, CK_BYTE_PTR in,
                              CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    unsigned part = enc ? KV_P11_PART_ENCRYPT : KV_P11_PART_DECRYPT;
    kv_p11_session *s = NULL;
    kv_p11_cryptop *op;
    bool keep = false;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, part, single, &s);
    if (rv != CKR_OK)
        return rv;
    op = enc ? &s->encrypt : &s->decrypt;
    if (outlen == NULL || (in == NULL && inlen > 0)) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (single && !op->has_result) {
        /* a retry after a length answer passes the same input again */
        op->buflen = 0;
        rv = kv_p11_crypt_append(op, in, inlen, enc);
    }
    if (rv == CKR_OK)
        rv = kv_p11_crypt_finish(s, op, enc, out, outlen, &keep);
    if (!keep)
        kv_p11_cryptop_clear(op);
    kv_p11_session_release(s, part);
    return rv;
}

static CK_RV kv_p11_crypt_update(CK_SESSION_HANDLE h, bool enc, CK_BYTE_PTR in, CK_ULONG inlen,
                                 CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    unsigned part = enc ? KV_P11_PART_ENCRYPT : KV_P11_PART_DECRYPT;
    kv_p11_session *s = NULL;
    kv_p11_cryptop *op;
    CK_RV rv;

    (void)out; /* parts produce no output: everything comes at Final */
    rv = kv_p11_op_acquire_active(h, part, false, &s);
    if (rv != CKR_OK)
        return rv;
    op = enc ? &s->encrypt : &s->decrypt;
    if (outlen == NULL || (in == NULL && inlen > 0))
        rv = CKR_ARGUMENTS_BAD;
    else if (op->has_result)
        rv = CKR_OPERATION_ACTIVE; /* a result awaits its Final / retry */
    else
        rv = kv_p11_crypt_append(op, in, inlen, enc);
    if (rv == CKR_OK) {
        op->multipart = true;
        *outlen = 0;
    } else if (rv != CKR_OPERATION_ACTIVE) {
        kv_p11_cryptop_clear(op);
    }
    kv_p11_session_release(s, part);
    return rv;
}

CK_RV kv_p11_encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                     CK_ULONG_PTR outlen)
{
    return kv_p11_crypt_end(h, true, true, in, inlen, out, outlen);
}

CK_RV kv_p11_decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                     CK_ULONG_PTR outlen)
{
    return kv_p11_crypt_end(h, false, true, in, inlen, out, outlen);
}

CK_RV kv_p11_encrypt_update(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                            CK_ULONG_PTR outlen)
{
    return kv_p11_crypt_update(h, true, in, inlen, out, outlen);
}

CK_RV kv_p11_decrypt_update(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                            CK_ULONG_PTR outlen)
{
    return kv_p11_crypt_update(h, false, in, inlen, out, outlen);
}

CK_RV kv_p11_encrypt_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    return kv_p11_crypt_end(h, true, false, NULL, 0, out, outlen);
}

CK_RV kv_p11_decrypt_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    return kv_p11_crypt_end(h, false, false, NULL, 0, out, outlen);
}
