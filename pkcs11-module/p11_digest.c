/* p11_digest.c - C_DigestInit / C_Digest / C_DigestUpdate / C_DigestFinal: SHA-1, SHA-224,
 * SHA-256, SHA-384 and SHA-512, computed locally (a public computation; the vault has no
 * digest API) in vaultclient's private library context, so a digest never recurses into a
 * provider of the host. C_DigestKey is not offered (no secret keys). Two-call convention: a
 * NULL output or a short buffer answers the length and keeps the operation. */
#include "p11_internal.h"

#include <string.h>

void kv_p11_digest_clear(kv_p11_session *s)
{
    EVP_MD_CTX_free(s->digest);
    s->digest = NULL;
    s->digest_multipart = false;
}

CK_RV kv_p11_digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech)
{
    kv_p11_session *s = NULL;
    const char *name;
    EVP_MD *md = NULL;
    CK_RV rv;

    rv = kv_p11_op_acquire_idle(h, KV_P11_PART_DIGEST, mech != NULL, &s);
    if (rv != CKR_OK)
        return rv;
    name = kv_p11_hash_name(mech->mechanism); /* the digests signing hashes with (p11_sign.c) */
    if (name == NULL) {
        rv = CKR_MECHANISM_INVALID;
        goto done;
    }
    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        rv = CKR_MECHANISM_PARAM_INVALID;
        goto done;
    }
    md = EVP_MD_fetch(kv_ctx_libctx(kv_p11_module.ctx), name, NULL);
    s->digest = EVP_MD_CTX_new();
    if (md == NULL || s->digest == NULL || EVP_DigestInit_ex(s->digest, md, NULL) != 1) {
        kv_p11_digest_clear(s);
        rv = CKR_GENERAL_ERROR;
        goto done;
    }
    s->digest_multipart = false;

done:
    EVP_MD_free(md);
    kv_p11_session_release(s, KV_P11_PART_DIGEST);
    return rv;
}

/* Final step shared by C_Digest and C_DigestFinal; *keep for length answers. */
static CK_RV kv_p11_digest_out(kv_p11_session *s, CK_BYTE_PTR out, CK_ULONG_PTR outlen, bool *keep)
{
    unsigned int n = 0;
    size_t need = (size_t)EVP_MD_CTX_get_size(s->digest);
    CK_RV rv;

    *keep = false;
    if (outlen == NULL)
        return CKR_ARGUMENTS_BAD;
    if (kv_p11_out_short(out, outlen, need, &rv)) {
        *keep = true;
        return rv;
    }
    if (EVP_DigestFinal_ex(s->digest, out, &n) != 1)
        return CKR_GENERAL_ERROR;
    *outlen = n;
    return CKR_OK;
}

/* C_Digest (single: in is all of the data) and C_DigestFinal (in NULL, inlen 0). */
static CK_RV kv_p11_digest_end(CK_SESSION_HANDLE h, bool single, CK_BYTE_PTR in, CK_ULONG inlen,
                               CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    kv_p11_session *s = NULL;
    bool keep = false;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, KV_P11_PART_DIGEST, single, &s);
    if (rv != CKR_OK)
        return rv;
    if ((in == NULL && inlen > 0) || outlen == NULL)
        rv = CKR_ARGUMENTS_BAD;
    else if (out != NULL && *outlen >= (CK_ULONG)EVP_MD_CTX_get_size(s->digest) && inlen > 0 &&
             EVP_DigestUpdate(s->digest, in, inlen) != 1)
        rv = CKR_GENERAL_ERROR;
    else
        rv = kv_p11_digest_out(s, out, outlen, &keep);
    if (!keep)
        kv_p11_digest_clear(s);
    kv_p11_session_release(s, KV_P11_PART_DIGEST);
    return rv;
}

CK_RV kv_p11_digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                    CK_ULONG_PTR outlen)
{
    return kv_p11_digest_end(h, true, in, inlen, out, outlen);
}

CK_RV kv_p11_digest_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
    kv_p11_session *s = NULL;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, KV_P11_PART_DIGEST, false, &s);
    if (rv != CKR_OK)
        return rv;
    if ((part == NULL && len > 0) || (len > 0 && EVP_DigestUpdate(s->digest, part, len) != 1)) {
        rv = part == NULL ? CKR_ARGUMENTS_BAD : CKR_GENERAL_ERROR;
        kv_p11_digest_clear(s);
    } else {
        s->digest_multipart = true;
    }
    kv_p11_session_release(s, KV_P11_PART_DIGEST);
    return rv;
}

CK_RV kv_p11_digest_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
    return kv_p11_digest_end(h, false, NULL, 0, out, outlen);
}
