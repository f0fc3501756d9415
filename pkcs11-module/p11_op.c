/* p11_op.c - the session-part acquisition every operation step begins with: acquire the part
 * of the session (kv_p11_session_acquire) and check the state of its operation, returning the
 * CK_RV the standard wants. Shared by the Init / single-part / Update / Final steps of sign,
 * verify, encrypt, decrypt, digest and find. On any error the part is released again, the
 * operation is left as it was and *out is NULL. */
#include "p11_internal.h"

bool kv_p11_out_short(const CK_BYTE *out, CK_ULONG_PTR outlen, size_t need, CK_RV *rv)
{
    if (out != NULL && *outlen >= need)
        return false;
    *rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
    *outlen = need;
    return true;
}

/* The state of the operation run on `part` of s (the part is held). */
static void kv_p11_op_state(const kv_p11_session *s, unsigned part, bool *active, bool *multipart)
{
    *active = false;
    *multipart = false;
    switch (part) {
    case KV_P11_PART_SIGN:
        *active = s->sign.active;
        *multipart = s->sign.multipart;
        break;
    case KV_P11_PART_VERIFY:
        *active = s->verify.active;
        *multipart = s->verify.multipart;
        break;
    case KV_P11_PART_ENCRYPT:
        *active = s->encrypt.active;
        *multipart = s->encrypt.multipart;
        break;
    case KV_P11_PART_DECRYPT:
        *active = s->decrypt.active;
        *multipart = s->decrypt.multipart;
        break;
    case KV_P11_PART_DIGEST:
        *active = s->digest != NULL;
        *multipart = s->digest_multipart;
        break;
    case KV_P11_PART_FIND:
        *active = s->find_active;
        break;
    default:
        break;
    }
}

/* Acquires the part and checks its operation: for an Init step (init) that it is idle, else that
 * it is active and, for a single-part step, not multi-part. */
static CK_RV kv_p11_op_acquire(CK_SESSION_HANDLE h, unsigned part, bool init, bool args_ok,
                               bool single, kv_p11_session **out)
{
    kv_p11_session *s = NULL;
    bool active, multipart;
    CK_RV rv;

    *out = NULL;
    rv = kv_p11_session_acquire(h, part, &s);
    if (rv != CKR_OK)
        goto done;
    kv_p11_op_state(s, part, &active, &multipart);
    if (init && !args_ok)
        rv = CKR_ARGUMENTS_BAD;
    else if (init && active)
        rv = CKR_OPERATION_ACTIVE;
    else if (!init && !active)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    else if (!init && single && multipart)
        rv = CKR_OPERATION_ACTIVE; /* a multi-part operation ends with its Final only */
    if (rv != CKR_OK) {
        kv_p11_session_release(s, part);
        goto done;
    }
    *out = s;

done:
    return rv;
}

CK_RV kv_p11_op_acquire_idle(CK_SESSION_HANDLE h, unsigned part, bool args_ok, kv_p11_session **out)
{
    return kv_p11_op_acquire(h, part, true, args_ok, false, out);
}

CK_RV kv_p11_op_acquire_active(CK_SESSION_HANDLE h, unsigned part, bool single,
                               kv_p11_session **out)
{
    return kv_p11_op_acquire(h, part, false, true, single, out);
}
