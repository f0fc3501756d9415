/* p11_wrap.c - C_WrapKey and C_UnwrapKey.
 *
 * What can be wrapped: module session secret keys (their value is in this process) that are
 * CKA_EXTRACTABLE; vault and pool keys never leave the vault (CKR_KEY_UNEXTRACTABLE).
 * Mechanisms and wrapping keys:
 * - CKM_RSA_PKCS / CKM_RSA_PKCS_OAEP (SHA-1 or SHA-256, no label; as p11_decrypt.c) with a vault
 *   RSA key: wrapping encrypts locally with the public key (either object of the key pair),
 *   unwrapping decrypts on the vault (kv_vault_unwrap: RSA1_5 / RSA-OAEP / RSA-OAEP-256) with the
 *   private key object. key_ops must allow wrapKey / unwrapKey.
 * - CKM_AES_KEY_WRAP (RFC 3394, A128KW/A192KW/A256KW by the key's size) and
 *   CKM_AES_KEY_WRAP_PAD (RFC 5649; a managed HSM takes alg "CKM_AES_KEY_WRAP_PAD") with a vault /
 *   pool AES key (on the vault), or with a module session AES key (locally). No mechanism
 *   parameter (the standard's default IV).
 * The unwrapped key: CKA_TOKEN=FALSE (the default) makes a module session object
 * (p11_secret.c); CKA_TOKEN=TRUE imports it into the vault / pool as an AES key named by
 * CKA_LABEL where the slot can hold AES keys, else CKR_TEMPLATE_INCONSISTENT.
 * Two-call convention for C_WrapKey: a NULL buffer gets the exact length, no vault call. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* The wrapping / unwrapping key: a module session key or a vault key (kd). */
typedef struct kv_p11_wkey {
    bool is_sobj;
    kv_p11_sobj so;
    kv_p11_kdata *kd;
    CK_OBJECT_CLASS cls;
} kv_p11_wkey;

static void kv_p11_wkey_clear(kv_p11_wkey *w)
{
    if (w->is_sobj)
        kv_p11_sobj_clear(&w->so);
    kv_p11_kdata_unref(w->kd);
    memset(w, 0, sizeof(*w));
}

/* Resolves the (un)wrapping key h for mech; checks its type and permission. */
static CK_RV kv_p11_wkey_get(const char *fn, CK_SLOT_ID slot, CK_OBJECT_HANDLE h, bool wrap,
                             bool rsa, kv_p11_wkey *w)
{
    CK_RV bad_handle = wrap ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    CK_RV bad_type =
        wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT : CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    unsigned need = wrap ? KV_OP_WRAP : KV_OP_UNWRAP;
    kv_p11_obj obj;
    CK_RV rv;

    memset(w, 0, sizeof(*w));
    if (KV_P11_IS_SOBJ(h)) {
        if (kv_p11_sobj_copy(slot, h, &w->so) != CKR_OK)
            return bad_handle;
        w->is_sobj = true;
        if (rsa || w->so.key_type != CKK_AES)
            return bad_type;
        if (!(wrap ? w->so.wrap : w->so.unwrap))
            return CKR_KEY_FUNCTION_NOT_PERMITTED;
        return CKR_OK;
    }
    rv = kv_p11_obj_kdata(fn, slot, h, KV_P11_OP_KEY, &obj, &w->kd);
    if (rv == CKR_KEY_HANDLE_INVALID)
        return bad_handle;
    if (rv != CKR_OK)
        return rv;
    w->cls = obj.cls;
    if (w->kd->key_type != (rsa ? CKK_RSA : CKK_AES))
        return bad_type;
    if (rsa && !wrap && obj.cls != CKO_PRIVATE_KEY)
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    if (w->kd->key->key_ops != 0 && !(w->kd->key->key_ops & need))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    return CKR_OK;
}

/* The vault algorithm of an AES key wrap mechanism for a key of bits. */
static kv_enc_alg kv_p11_kw_alg(CK_MECHANISM_TYPE m, int bits)
{
    if (m == CKM_AES_KEY_WRAP_PAD)
        return KV_ENC_AES_KWP;
    return bits == 128   ? KV_ENC_A128KW
           : bits == 192 ? KV_ENC_A192KW
           : bits == 256 ? KV_ENC_A256KW
                         : KV_ENC_NONE;
}

/* Checks mech; *rsa / *alg tell what it is (alg: RSA algorithm, or KV_ENC_NONE for AES). */
static CK_RV kv_p11_wrap_mech(CK_SLOT_ID slot, const CK_MECHANISM *mech, bool *rsa, kv_enc_alg *alg)
{
    *alg = KV_ENC_NONE;
    switch (mech->mechanism) {
    case CKM_RSA_PKCS:
    case CKM_RSA_PKCS_OAEP:
        *rsa = true;
        return kv_p11_enc_alg(mech, alg);
    case CKM_AES_KEY_WRAP:
    case CKM_AES_KEY_WRAP_PAD:
        *rsa = false;
        if (!kv_p11_slot_has_aes(slot))
            return CKR_MECHANISM_INVALID;
        if (mech->pParameter != NULL || mech->ulParameterLen != 0)
            return CKR_MECHANISM_PARAM_INVALID;
        return CKR_OK;
    default:
        return CKR_MECHANISM_INVALID;
    }
}

/* Runs an AES key wrap / unwrap with w (locally or on the vault). */
static CK_RV kv_p11_aes_kw(const char *fn, CK_SLOT_ID slot, CK_MECHANISM_TYPE m, kv_p11_wkey *w,
                           bool wrap, const uint8_t *in, size_t inlen, uint8_t **out,
                           size_t *outlen)
{
    kv_sym_params none;
    kv_enc_alg alg;
    kv_err err;
    kv_rv krv;

    kv_err_clear(&err);
    if (w->is_sobj) {
        memset(&none, 0, sizeof(none));
        return kv_p11_aes_local(m == CKM_AES_KEY_WRAP_PAD ? "WRAP-PAD" : "WRAP", wrap, false,
                                w->so.value, w->so.len, &none, in, inlen, out, outlen);
    }
    if (m == CKM_AES_KEY_WRAP_PAD && !kv_p11_slot_has_kwp(slot))
        return CKR_MECHANISM_INVALID; /* a slot without AES keys */
    alg = kv_p11_kw_alg(m, w->kd->key->bits);
    if (alg == KV_ENC_NONE)
        return wrap ? CKR_WRAPPING_KEY_SIZE_RANGE : CKR_UNWRAPPING_KEY_SIZE_RANGE;
    krv = wrap ? kv_vault_wrap(kv_p11_slot_get(slot)->vault, w->kd->key, alg, in, inlen, out,
                               outlen, &err)
               : kv_vault_unwrap(kv_p11_slot_get(slot)->vault, w->kd->key, alg, in, inlen, out,
                                 outlen, &err);
    if (krv == KV_OK)
        return CKR_OK;
    if (!wrap && (krv == KV_ERR_BAD_REQUEST || krv == KV_ERR_INVALID_ARG)) {
        kv_p11_rv_log(fn, &err, krv, KV_P11_OP_SIGN);
        return CKR_WRAPPED_KEY_INVALID;
    }
    return kv_p11_rv_log(fn, &err, krv, KV_P11_OP_SIGN);
}

CK_RV kv_p11_wrap_key(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE hwrap,
                      CK_OBJECT_HANDLE hkey, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    kv_p11_wkey w;
    kv_p11_sobj key;
    kv_p11_obj obj;
    kv_enc_alg alg = KV_ENC_NONE;
    uint8_t *res = NULL;
    size_t need = 0, reslen = 0;
    bool rsa = false;
    CK_SLOT_ID slot;
    CK_RV rv;

    memset(&w, 0, sizeof(w));
    memset(&key, 0, sizeof(key));
    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    if (mech == NULL || outlen == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    rv = kv_p11_wrap_mech(slot, mech, &rsa, &alg);
    if (rv != CKR_OK)
        goto done;
    /* the key to wrap */
    if (!KV_P11_IS_SOBJ(hkey)) {
        kv_p11_lock();
        rv = kv_p11_obj_lookup(hkey, &obj);
        kv_p11_unlock();
        if (rv == CKR_OK && obj.slot == slot &&
            (obj.cls == CKO_PRIVATE_KEY || obj.cls == CKO_SECRET_KEY))
            rv = CKR_KEY_UNEXTRACTABLE; /* vault keys never leave the vault */
        else
            rv = CKR_KEY_HANDLE_INVALID;
        goto done;
    }
    if (kv_p11_sobj_copy(slot, hkey, &key) != CKR_OK) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto done;
    }
    if (!key.extractable) {
        rv = CKR_KEY_UNEXTRACTABLE;
        goto done;
    }
    rv = kv_p11_wkey_get("C_WrapKey", slot, hwrap, true, rsa, &w);
    if (rv != CKR_OK)
        goto done;
    if (rsa) {
        need = w.kd->modulus_len;
    } else {
        if (mech->mechanism == CKM_AES_KEY_WRAP && (key.len % 8 != 0 || key.len < 16)) {
            rv = CKR_KEY_SIZE_RANGE;
            goto done;
        }
        need = (key.len + 7) / 8 * 8 + 8;
    }
    if (kv_p11_out_short(out, outlen, need, &rv))
        goto done;
    if (rsa) {
        reslen = need;
        rv = kv_p11_rsa_encrypt_local(w.kd, alg, key.value, key.len, out, &reslen);
        if (rv == CKR_DATA_LEN_RANGE)
            rv = CKR_KEY_SIZE_RANGE;
        if (rv == CKR_OK)
            *outlen = reslen;
        goto done;
    }
    rv = kv_p11_aes_kw("C_WrapKey", slot, mech->mechanism, &w, true, key.value, key.len, &res,
                       &reslen);
    if (rv != CKR_OK)
        goto done;
    if (reslen > *outlen) {
        rv = CKR_GENERAL_ERROR;
        goto done;
    }
    memcpy(out, res, reslen);
    *outlen = reslen;

done:
    free(res);
    kv_p11_sobj_clear(&key);
    kv_p11_wkey_clear(&w);
    kv_p11_leave();
    return rv;
}

/* Whether the template asks for a token object. */
static CK_RV kv_p11_tmpl_token(const CK_ATTRIBUTE *tmpl, CK_ULONG count, bool *token)
{
    CK_ULONG i;

    *token = false;
    for (i = 0; i < count; i++) {
        if (tmpl[i].type != CKA_TOKEN)
            continue;
        if (tmpl[i].pValue == NULL || tmpl[i].ulValueLen != sizeof(CK_BBOOL))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        *token = *(const CK_BBOOL *)tmpl[i].pValue != CK_FALSE;
    }
    return CKR_OK;
}

CK_RV kv_p11_unwrap_key(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE hunwrap,
                        CK_BYTE_PTR in, CK_ULONG inlen, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                        CK_OBJECT_HANDLE_PTR ph)
{
    kv_p11_wkey w;
    kv_enc_alg alg = KV_ENC_NONE;
    uint8_t *key = NULL;
    size_t keylen = 0;
    bool rsa = false, token = false;
    CK_SLOT_ID slot;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    memset(&w, 0, sizeof(w));
    kv_err_clear(&err);
    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    if (mech == NULL || in == NULL || ph == NULL || (tmpl == NULL && count > 0)) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    rv = kv_p11_tmpl_token(tmpl, count, &token);
    if (rv == CKR_OK)
        rv = kv_p11_wrap_mech(slot, mech, &rsa, &alg);
    if (rv == CKR_OK)
        rv = kv_p11_wkey_get("C_UnwrapKey", slot, hunwrap, false, rsa, &w);
    if (rv != CKR_OK)
        goto done;
    if (rsa) {
        if (inlen != w.kd->modulus_len) {
            rv = CKR_WRAPPED_KEY_LEN_RANGE;
            goto done;
        }
        krv = kv_vault_unwrap(kv_p11_slot_get(slot)->vault, w.kd->key, alg, in, inlen, &key,
                              &keylen, &err);
        if (krv != KV_OK) {
            rv = kv_p11_rv_log("C_UnwrapKey", &err, krv, KV_P11_OP_SIGN);
            if (krv == KV_ERR_BAD_REQUEST || krv == KV_ERR_INVALID_ARG)
                rv = CKR_WRAPPED_KEY_INVALID;
            goto done;
        }
    } else {
        if (inlen % 8 != 0 || inlen < (mech->mechanism == CKM_AES_KEY_WRAP ? 24u : 16u)) {
            rv = CKR_WRAPPED_KEY_LEN_RANGE;
            goto done;
        }
        rv = kv_p11_aes_kw("C_UnwrapKey", slot, mech->mechanism, &w, false, in, inlen, &key,
                           &keylen);
        if (rv == CKR_ENCRYPTED_DATA_INVALID)
            rv = CKR_WRAPPED_KEY_INVALID;
        if (rv != CKR_OK)
            goto done;
    }
    if (token)
        rv = kv_p11_secret_import(hs, tmpl, count, key, keylen, ph);
    else
        rv = kv_p11_sobj_new(hs, slot, tmpl, count, key, keylen, CK_UNAVAILABLE_INFORMATION, ph);

done:
    if (key != NULL)
        OPENSSL_clear_free(key, keylen);
    kv_p11_wkey_clear(&w);
    kv_p11_leave();
    return rv;
}
