/* p11_session.c - sessions (C_OpenSession .. C_GetSessionInfo), login state (C_Login,
 * C_Logout), C_SessionCancel, and exclusive acquisition of a session by one thread.
 *
 * Handles count up from 1 and are never reused within a process. Each session carries its
 * own find / sign / verify state; a thread that works on one of them holds that part (another
 * thread using the same part concurrently gets CKR_OPERATION_ACTIVE instead of corrupting it).
 * The token has no PIN: C_Login accepts any PIN and only tracks the standard login state. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* ---- lookup (lock held) ---- */

static size_t kv_p11_session_index(CK_SESSION_HANDLE h)
{
    size_t i;

    for (i = 0; i < kv_p11_module.nsessions; i++)
        if (kv_p11_module.sessions[i]->handle == h)
            return i;
    return (size_t)-1;
}

static kv_p11_session *kv_p11_session_find(CK_SESSION_HANDLE h)
{
    size_t i = kv_p11_session_index(h);

    return i == (size_t)-1 ? NULL : kv_p11_module.sessions[i];
}

size_t kv_p11_session_count(CK_SLOT_ID id, bool rw_only)
{
    size_t i, n = 0;

    for (i = 0; i < kv_p11_module.nsessions; i++) {
        const kv_p11_session *s = kv_p11_module.sessions[i];

        if (s->slot == id && (!rw_only || (s->flags & CKF_RW_SESSION)))
            n++;
    }
    return n;
}

/* ---- life cycle ---- */

void kv_p11_sigop_clear(kv_p11_sigop *op)
{
    EVP_MD_CTX_free(op->mdctx);
    kv_p11_kdata_unref(op->kd);
    if (op->buf != NULL) {
        OPENSSL_cleanse(op->buf, op->buflen);
        free(op->buf);
    }
    memset(op, 0, sizeof(*op));
}

void kv_p11_find_clear(kv_p11_session *s)
{
    free(s->found);
    s->found = NULL;
    s->nfound = s->findpos = 0;
    s->find_active = false;
}

void kv_p11_session_free(kv_p11_session *s)
{
    if (s == NULL)
        return;
    kv_p11_find_clear(s);
    kv_p11_sigop_clear(&s->sign);
    kv_p11_sigop_clear(&s->verify);
    kv_p11_cryptop_clear(&s->encrypt);
    kv_p11_cryptop_clear(&s->decrypt);
    kv_p11_digest_clear(s);
    free(s);
}

/* Removes sessions[i] from the table; frees it unless a thread holds it (lock held). */
static void kv_p11_session_remove(size_t i)
{
    kv_p11_session *s = kv_p11_module.sessions[i];

    kv_p11_module.sessions[i] = kv_p11_module.sessions[--kv_p11_module.nsessions];
    kv_p11_sobjs_session_closed(s->handle); /* its session objects go with it (zeroised) */
    if (s->refs > 0)
        s->closed = true;
    else
        kv_p11_session_free(s);
}

void kv_p11_slot_logout(kv_p11_slot *slot)
{
    if (slot == NULL || !slot->logged_in)
        return;
    slot->logged_in = false;
    if (kv_vault_login_required(slot->vault)) {
        kv_vault_lock(slot->vault); /* forget the unsealed credential and its token */
        kv_p11_cache_invalidate(slot);
        kv_p11_objcache_invalidate(slot);
    }
}

/* Login state ends when the token's last session closes (lock held). */
static void kv_p11_logout_if_idle(CK_SLOT_ID id)
{
    kv_p11_slot *slot = kv_p11_slot_get(id);

    if (slot != NULL && kv_p11_session_count(id, false) == 0)
        kv_p11_slot_logout(slot);
}

void kv_p11_sessions_free_all(void)
{
    while (kv_p11_module.nsessions > 0)
        kv_p11_session_remove(kv_p11_module.nsessions - 1);
    free(kv_p11_module.sessions);
    kv_p11_module.sessions = NULL;
    kv_p11_module.capsessions = 0;
}

CK_RV kv_p11_open_session(CK_SLOT_ID id, CK_FLAGS flags, CK_SESSION_HANDLE_PTR ph)
{
    kv_p11_session *s = NULL;
    kv_p11_slot *slot;
    CK_RV rv = CKR_OK;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    slot = kv_p11_slot_get(id);
    if (slot == NULL) {
        rv = CKR_SLOT_ID_INVALID;
        goto done;
    }
    if (!(flags & CKF_SERIAL_SESSION)) {
        rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        goto done;
    }
    if (ph == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (slot->logged_in && slot->user == CKU_SO && !(flags & CKF_RW_SESSION)) {
        rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
        goto done;
    }
    if (kv_p11_module.nsessions == kv_p11_module.capsessions) {
        size_t cap = kv_p11_module.capsessions ? 2 * kv_p11_module.capsessions : 16;
        kv_p11_session **ns = realloc(kv_p11_module.sessions, cap * sizeof(*ns));

        if (ns == NULL) {
            rv = CKR_HOST_MEMORY;
            goto done;
        }
        kv_p11_module.sessions = ns;
        kv_p11_module.capsessions = cap;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    if (kv_p11_module.next_session == CK_INVALID_HANDLE)
        kv_p11_module.next_session++;
    s->handle = kv_p11_module.next_session++;
    s->slot = id;
    s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
    kv_p11_module.sessions[kv_p11_module.nsessions++] = s;
    *ph = s->handle;

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_close_session(CK_SESSION_HANDLE h)
{
    CK_RV rv = CKR_OK;
    CK_SLOT_ID id;
    size_t i;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    i = kv_p11_session_index(h);
    if (i == (size_t)-1) {
        rv = CKR_SESSION_HANDLE_INVALID;
        goto done;
    }
    id = kv_p11_module.sessions[i]->slot;
    kv_p11_session_remove(i);
    kv_p11_logout_if_idle(id);

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_close_all_sessions(CK_SLOT_ID id)
{
    CK_RV rv = CKR_OK;
    size_t i;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    if (kv_p11_slot_get(id) == NULL) {
        rv = CKR_SLOT_ID_INVALID;
        goto done;
    }
    for (i = kv_p11_module.nsessions; i-- > 0;)
        if (kv_p11_module.sessions[i]->slot == id)
            kv_p11_session_remove(i);
    kv_p11_logout_if_idle(id);

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
    const kv_p11_session *s;
    const kv_p11_slot *slot;
    CK_RV rv = CKR_OK;
    bool rw;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    s = kv_p11_session_find(h);
    if (s == NULL) {
        rv = CKR_SESSION_HANDLE_INVALID;
        goto done;
    }
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    slot = kv_p11_slot_get(s->slot);
    rw = (s->flags & CKF_RW_SESSION) != 0;
    memset(info, 0, sizeof(*info));
    info->slotID = s->slot;
    info->flags = s->flags;
    if (!slot->logged_in)
        info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
    else if (slot->user == CKU_SO)
        info->state = CKS_RW_SO_FUNCTIONS;
    else
        info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    info->ulDeviceError = 0;

done:
    kv_p11_unlock();
    return rv;
}

/* The PIN check of a slot whose vault credential is sealed under the PIN (kv_vault_unlock:
 * PBKDF2, run without the module lock while the call counts as in flight). */
static CK_RV kv_p11_unlock_vault(CK_SLOT_ID id, CK_UTF8CHAR_PTR pin, CK_ULONG pinlen)
{
    kv_p11_slot *slot;
    kv_vault *vault;
    kv_err err;
    kv_rv krv;
    CK_RV rv = kv_p11_enter();

    if (rv != CKR_OK)
        return rv;
    kv_p11_lock();
    slot = kv_p11_slot_get(id);
    vault = slot != NULL ? slot->vault : NULL;
    kv_p11_unlock();
    if (vault == NULL)
        rv = CKR_SLOT_ID_INVALID;
    else if (pin == NULL && pinlen > 0)
        rv = CKR_ARGUMENTS_BAD;
    else if ((krv = kv_vault_unlock(vault, (const char *)pin, pinlen, &err)) == KV_ERR_AUTH)
        rv = CKR_PIN_INCORRECT;
    else if (krv != KV_OK)
        rv = kv_p11_rv_log("C_Login", &err, krv, KV_P11_OP_GENERIC);
    kv_p11_leave();
    return rv;
}

CK_RV kv_p11_login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pinlen)
{
    const kv_p11_session *s;
    kv_p11_slot *slot;
    CK_SLOT_ID sid;
    bool unlocked = false;
    CK_RV rv = CKR_OK;
    size_t i;

    /* Without a sealed credential any PIN is accepted and never stored (the vault credential
     * is configured); with one, the PIN must open it (docs/pkcs11.md, "Login and PIN"). */
again:
    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    s = kv_p11_session_find(h);
    if (s == NULL) {
        rv = CKR_SESSION_HANDLE_INVALID;
        goto done;
    }
    if (pin == NULL && pinlen > 0) { /* NULL with length 0 = protected authentication path */
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    slot = kv_p11_slot_get(s->slot);
    if (user != CKU_SO && user != CKU_USER && user != CKU_CONTEXT_SPECIFIC) {
        rv = CKR_USER_TYPE_INVALID;
        goto done;
    }
    if (user == CKU_CONTEXT_SPECIFIC) {
        /* No key needs re-authentication (CKA_ALWAYS_AUTHENTICATE is false). */
        rv = s->sign.active ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
        goto done;
    }
    if (slot->logged_in) {
        rv = slot->user == user ? CKR_USER_ALREADY_LOGGED_IN : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
        goto done;
    }
    if (!unlocked && kv_vault_login_required(slot->vault)) {
        sid = s->slot;
        kv_p11_unlock();
        rv = kv_p11_unlock_vault(sid, pin, pinlen);
        if (rv != CKR_OK)
            return rv;
        unlocked = true;
        goto again; /* re-check the session and the login state */
    }
    if (user == CKU_SO) {
        for (i = 0; i < kv_p11_module.nsessions; i++) {
            const kv_p11_session *o = kv_p11_module.sessions[i];

            if (o->slot == s->slot && !(o->flags & CKF_RW_SESSION)) {
                rv = CKR_SESSION_READ_ONLY_EXISTS;
                goto done;
            }
        }
    }
    slot->logged_in = true;
    slot->user = user;
    if (unlocked) { /* listings made while locked counted as empty */
        kv_p11_cache_invalidate(slot);
        kv_p11_objcache_invalidate(slot);
    }

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_logout(CK_SESSION_HANDLE h)
{
    const kv_p11_session *s;
    kv_p11_slot *slot;
    CK_RV rv = CKR_OK;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    s = kv_p11_session_find(h);
    if (s == NULL) {
        rv = CKR_SESSION_HANDLE_INVALID;
        goto done;
    }
    slot = kv_p11_slot_get(s->slot);
    if (!slot->logged_in) {
        rv = CKR_USER_NOT_LOGGED_IN;
        goto done;
    }
    kv_p11_slot_logout(slot);

done:
    kv_p11_unlock();
    return rv;
}

/* ---- exclusive and shared use ---- */

CK_RV kv_p11_session_acquire(CK_SESSION_HANDLE h, unsigned part, kv_p11_session **out)
{
    kv_p11_session *s;
    CK_RV rv = CKR_OK;

    *out = NULL;
    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    s = kv_p11_session_find(h);
    if (s == NULL) {
        rv = CKR_SESSION_HANDLE_INVALID;
        goto done;
    }
    if (s->busy & part) {
        rv = CKR_OPERATION_ACTIVE; /* another thread is working on this part */
        goto done;
    }
    s->busy |= part;
    s->refs++;
    kv_p11_module.inflight++;
    *out = s;

done:
    kv_p11_unlock();
    return rv;
}

void kv_p11_session_release(kv_p11_session *s, unsigned part)
{
    if (s == NULL)
        return;
    kv_p11_lock();
    s->busy &= ~part;
    if (--s->refs == 0 && s->closed)
        kv_p11_session_free(s);
    if (kv_p11_module.inflight > 0 && --kv_p11_module.inflight == 0)
        pthread_cond_broadcast(&kv_p11_module.idle);
    kv_p11_unlock();
}

CK_RV kv_p11_session_slot(CK_SESSION_HANDLE h, CK_SLOT_ID *slot)
{
    const kv_p11_session *s;
    CK_RV rv = CKR_OK;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    s = kv_p11_session_find(h);
    if (s == NULL) {
        rv = CKR_SESSION_HANDLE_INVALID;
        goto done;
    }
    *slot = s->slot;
    kv_p11_module.inflight++;

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_session_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
    unsigned part = ((flags & CKF_FIND_OBJECTS) ? KV_P11_PART_FIND : 0) |
                    ((flags & CKF_SIGN) ? KV_P11_PART_SIGN : 0) |
                    ((flags & CKF_VERIFY) ? KV_P11_PART_VERIFY : 0) |
                    ((flags & CKF_ENCRYPT) ? KV_P11_PART_ENCRYPT : 0) |
                    ((flags & CKF_DECRYPT) ? KV_P11_PART_DECRYPT : 0) |
                    ((flags & CKF_DIGEST) ? KV_P11_PART_DIGEST : 0);
    kv_p11_session *s;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, part, &s);
    if (rv != CKR_OK)
        return rv;
    if (flags & CKF_SIGN)
        kv_p11_sigop_clear(&s->sign);
    if (flags & CKF_VERIFY)
        kv_p11_sigop_clear(&s->verify);
    if (flags & CKF_FIND_OBJECTS)
        kv_p11_find_clear(s);
    if (flags & CKF_ENCRYPT)
        kv_p11_cryptop_clear(&s->encrypt);
    if (flags & CKF_DECRYPT)
        kv_p11_cryptop_clear(&s->decrypt);
    if (flags & CKF_DIGEST)
        kv_p11_digest_clear(s);
    kv_p11_session_release(s, part);
    return CKR_OK;
}
