/* p11_objmod.c - changing vault objects through PKCS#11: C_DestroyObject (a soft delete of
 * the vault key) and C_SetAttributeValue (what the vault can change: key_ops, nbf/exp,
 * enabled), plus the helpers the lifecycle files share (write session checks, error mapping,
 * template values, caching what the module wrote).
 *
 * Rules (pkcs11-module/README.md, "Key lifecycle"):
 * - every vault write needs a R/W session (CKR_SESSION_READ_ONLY) and the user logged in
 *   (CKR_USER_NOT_LOGGED_IN): the objects it changes are private key objects;
 * - destroying the private key object deletes the vault key (all versions; a soft delete where
 *   the vault has it), and with it the public key object (a vault AES key's CKO_SECRET_KEY
 *   object likewise); the public key object alone cannot be destroyed (the vault keeps it with
 *   the private key): CKR_ACTION_PROHIBITED; neither can an older version's objects
 *   (key_versions = all: a vault deletes all versions at once), certificates (deleting a vault
 *   certificate deletes its key and secret) or data objects;
 * - C_SetAttributeValue: CKA_SIGN / CKA_DECRYPT / CKA_UNWRAP (private object) and CKA_VERIFY /
 *   CKA_ENCRYPT / CKA_WRAP (public object; all four of CKA_ENCRYPT / CKA_DECRYPT / CKA_WRAP /
 *   CKA_UNWRAP on a vault AES key's CKO_SECRET_KEY object) set or clear the matching key_ops entry,
 *   CKA_START_DATE / CKA_END_DATE set nbf / exp (empty = remove), CKA_KVAULT_ENABLED sets
 *   enabled; everything else the object has is CKR_ATTRIBUTE_READ_ONLY, anything it does not
 *   have CKR_ATTRIBUTE_TYPE_INVALID. The whole template is checked before one vault update.
 *   The module's session objects (handles from KV_P11_SOBJ_BASE) are changed in memory first:
 *   CKA_LABEL, CKA_ID and usage flags, CKA_SENSITIVE only to TRUE, CKA_EXTRACTABLE only to
 *   FALSE (kv_p11_sobj_set_attributes in p11_secret.c). */
#include "p11_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kv_log.h"

/* ---- shared helpers ---- */

CK_RV kv_p11_write_check(kv_p11_session *s, bool login)
{
    kv_p11_slot *slot;
    bool logged_in;

    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (!login)
        return CKR_OK;
    kv_p11_lock();
    slot = kv_p11_slot_get(s->slot);
    logged_in = slot != NULL && slot->logged_in;
    kv_p11_unlock();
    return logged_in ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
}

CK_RV kv_p11_write_begin(CK_SESSION_HANDLE hs, kv_p11_session **out)
{
    kv_p11_session *s = NULL;
    CK_RV rv;

    *out = NULL;
    rv = kv_p11_session_acquire(hs, 0, &s);
    if (rv != CKR_OK)
        return rv;
    rv = kv_p11_write_check(s, true);
    if (rv != CKR_OK) {
        kv_p11_session_release(s, 0);
        return rv;
    }
    *out = s;
    return CKR_OK;
}

CK_RV kv_p11_write_rv(const char *fn, const kv_err *err, kv_rv krv)
{
    CK_RV rv;

    switch (krv) {
    case KV_ERR_FORBIDDEN: /* the vault's role or policy refuses the write */
        rv = CKR_ACTION_PROHIBITED;
        break;
    case KV_ERR_CONFLICT: /* the name belongs to a deleted (recoverable) key */
    case KV_ERR_BAD_REQUEST:
    case KV_ERR_INVALID_ARG:
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        break;
    case KV_ERR_UNSUPPORTED:
        rv = CKR_TEMPLATE_INCONSISTENT;
        break;
    case KV_ERR_NOT_FOUND:
        rv = CKR_OBJECT_HANDLE_INVALID;
        break;
    default:
        return kv_p11_rv_log(fn, err, krv, KV_P11_OP_GENERIC);
    }
    KV_WARN("%s: %s%s%s (CK_RV 0x%lx)", fn, kv_rv_str(krv),
            err != NULL && err->message[0] != '\0' ? ": " : "", err != NULL ? err->message : "",
            (unsigned long)rv);
    return rv;
}

CK_RV kv_p11_key_written(CK_SLOT_ID slot, kv_key *k, CK_OBJECT_HANDLE *hpub,
                         CK_OBJECT_HANDLE *hpriv)
{
    kv_p11_kdata *kd = NULL;
    kv_p11_slot *s;
    kv_err err;
    kv_rv krv;
    CK_RV rv = CKR_OK;

    kv_err_clear(&err);
    krv = kv_p11_kdata_new(k, &kd, &err);
    kv_p11_lock();
    s = kv_p11_slot_get(slot);
    if (s != NULL) {
        /* The new version replaces the cached one; a cache that cannot take it is dropped so
         * the next find lists the vault again. A listing in flight must not overwrite it. */
        s->cache_gen++;
        if (krv != KV_OK || kv_p11_cache_put(s, kd) != CKR_OK)
            kv_p11_cache_invalidate(s);
    }
    if (hpub != NULL) {
        *hpub = kv_p11_obj_handle(slot, k->name, CKO_PUBLIC_KEY);
        if (*hpub == CK_INVALID_HANDLE)
            rv = CKR_HOST_MEMORY;
    }
    if (hpriv != NULL) {
        *hpriv = kv_p11_obj_handle(slot, k->name, CKO_PRIVATE_KEY);
        if (*hpriv == CK_INVALID_HANDLE)
            rv = CKR_HOST_MEMORY;
    }
    kv_p11_unlock();
    kv_p11_kdata_unref(kd);
    return rv;
}

CK_RV kv_p11_key_absent(const kv_p11_slot *slot, const char *fn, const char *name)
{
    kv_key *old = NULL;
    kv_err err;
    kv_rv krv;
    CK_RV rv = CKR_OK;

    kv_err_clear(&err);
    krv = kv_vault_get_key(slot->vault, name, NULL, &old, &err);
    if (krv == KV_OK) {
        kv_err_set(&err, KV_ERR_CONFLICT, "vault %s already has a key %s", slot->name, name);
        krv = KV_ERR_CONFLICT;
    }
    if (krv != KV_ERR_NOT_FOUND)
        rv = kv_p11_write_rv(fn, &err, krv);
    kv_key_unref(old);
    return rv;
}

CK_RV kv_p11_key_finish(const kv_p11_slot *slot, const char *fn, kv_key *k, long long nbf,
                        long long exp, CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv)
{
    kv_key *nk = NULL;
    kv_err err;
    kv_rv krv;
    CK_RV rv = CKR_OK;

    kv_err_clear(&err);
    if (nbf != KV_KEEP || exp != KV_KEEP) {
        kv_key_update_params up = {KV_KEEP, nbf, exp, KV_KEEP};

        krv = kv_vault_update_key(slot->vault, k, &up, &nk, &err);
        if (krv != KV_OK) /* the key exists: report its dates could not be set */
            rv = kv_p11_write_rv(fn, &err, krv);
    }
    if (rv == CKR_OK)
        rv = kv_p11_key_written(slot->id, nk != NULL ? nk : k, hpub, hpriv);
    else
        kv_p11_key_written(slot->id, k, NULL, NULL);
    kv_key_unref(nk);
    return rv;
}

/* ---- C_DestroyObject ---- */

/* Acquires session hs (part 0) to change object ho: CKR_ARGUMENTS_BAD unless args_ok, then the
 * object's entry (*obj; one of another slot: CKR_OBJECT_HANDLE_INVALID) and the session's slot,
 * then a R/W session (CKR_SESSION_READ_ONLY). On error the session is released, *out NULL. */
static CK_RV kv_p11_objmod_begin(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, bool args_ok,
                                 kv_p11_session **out, kv_p11_obj *obj, kv_p11_slot **slot)
{
    kv_p11_session *s = NULL;
    CK_RV rv;

    *out = NULL;
    rv = kv_p11_session_acquire(hs, 0, &s);
    if (rv != CKR_OK)
        goto done;
    if (!args_ok) {
        rv = CKR_ARGUMENTS_BAD;
    } else {
        kv_p11_lock();
        rv = kv_p11_obj_lookup(ho, obj);
        *slot = kv_p11_slot_get(s->slot);
        kv_p11_unlock();
    }
    if (rv == CKR_OK && obj->slot != s->slot)
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv == CKR_OK)
        rv = kv_p11_write_check(s, false);
    if (rv != CKR_OK) {
        kv_p11_session_release(s, 0);
        goto done;
    }
    *out = s;

done:
    return rv;
}

CK_RV kv_p11_destroy_object(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho)
{
    kv_p11_session *s = NULL;
    kv_p11_slot *slot;
    kv_p11_obj obj;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    kv_err_clear(&err);
    /* the module's own session objects first (p11_secret.c) */
    rv = kv_p11_sobj_destroy(hs, ho);
    if (rv != CKR_OBJECT_HANDLE_INVALID)
        return rv;
    rv = kv_p11_objmod_begin(hs, ho, true, &s, &obj, &slot);
    if (rv != CKR_OK)
        return rv;
    if ((obj.cls != CKO_PRIVATE_KEY && obj.cls != CKO_SECRET_KEY) || strchr(obj.name, '/')) {
        rv = CKR_ACTION_PROHIBITED; /* see the top of this file; an older version alone */
        goto done;
    }
    rv = kv_p11_write_check(s, true);
    if (rv != CKR_OK)
        goto done;
    krv = kv_vault_delete_key(slot->vault, obj.name, &err);
    if (krv == KV_OK || krv == KV_ERR_NOT_FOUND) {
        kv_p11_lock();
        if (kv_vault_key_versions_all(slot->vault))
            kv_p11_cache_invalidate(slot); /* its older versions' objects go too */
        else
            kv_p11_cache_remove(slot, obj.name); /* the listing stays exact */
        kv_p11_objcache_invalidate(slot);        /* a certificate may have gone with it */
        kv_p11_unlock();
    }
    if (krv == KV_ERR_NOT_FOUND)
        rv = CKR_OBJECT_HANDLE_INVALID;
    else if (krv != KV_OK)
        rv = kv_p11_write_rv("C_DestroyObject", &err, krv);

done:
    kv_p11_session_release(s, 0);
    return rv;
}

/* ---- C_SetAttributeValue ---- */

/* The key_ops bit an attribute of an object of class cls controls, or 0. */
static unsigned kv_p11_attr_op(CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type)
{
    const unsigned priv_ops = KV_OP_SIGN | KV_OP_DECRYPT | KV_OP_UNWRAP;
    const unsigned sym_ops = KV_OP_ENCRYPT | KV_OP_DECRYPT | KV_OP_WRAP | KV_OP_UNWRAP;
    unsigned op = kv_p11_usage_op(type);

    /* a vault AES key (CKO_SECRET_KEY): encrypt / decrypt / wrap / unwrap */
    if (cls == CKO_SECRET_KEY)
        return op & sym_ops;
    /* sign / decrypt / unwrap on the private key object, the others on the public one */
    return (cls == CKO_PRIVATE_KEY) == ((op & priv_ops) != 0) ? op : 0;
}

/* Builds the vault update from the template (nothing sent yet). */
static CK_RV kv_p11_setattr_params(const kv_p11_kdata *kd, CK_OBJECT_CLASS cls,
                                   const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                                   kv_key_update_params *p)
{
    CK_BYTE scratch[KV_P11_SCRATCH];
    unsigned ops = kd->key->key_ops;
    bool changed_ops = false, b;
    CK_ULONG i;
    CK_RV rv;

    p->enabled = KV_KEEP;
    p->nbf = p->exp = KV_KEEP;
    p->key_ops = KV_KEEP;
    for (i = 0; i < count; i++) {
        const CK_ATTRIBUTE *a = &tmpl[i];
        unsigned op = kv_p11_attr_op(cls, a->type);

        if (op != 0) {
            rv = kv_p11_tmpl_bool(a, &b);
            if (rv != CKR_OK)
                return rv;
            /* EC keys only sign and verify in the vault */
            if (b && kd->key_type == CKK_EC && op != KV_OP_SIGN && op != KV_OP_VERIFY)
                return CKR_ATTRIBUTE_VALUE_INVALID;
            ops = b ? (ops | op) : (ops & ~op);
            changed_ops = true;
        } else if (a->type == CKA_START_DATE || a->type == CKA_END_DATE) {
            long long t;

            rv = kv_p11_tmpl_date(a, a->type == CKA_END_DATE, &t);
            if (rv != CKR_OK)
                return rv;
            if (a->type == CKA_START_DATE)
                p->nbf = t;
            else
                p->exp = t;
        } else if (a->type == CKA_KVAULT_ENABLED) {
            rv = kv_p11_tmpl_bool(a, &b);
            if (rv != CKR_OK)
                return rv;
            p->enabled = b ? 1 : 0;
        } else {
            const void *v;
            CK_ULONG len;

            rv = kv_p11_attr(kd, cls, a->type, &v, &len, scratch);
            return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE ? CKR_ATTRIBUTE_READ_ONLY
                                                                 : CKR_ATTRIBUTE_TYPE_INVALID;
        }
    }
    if (changed_ops)
        p->key_ops = (long long)ops;
    return CKR_OK;
}

CK_RV kv_p11_set_attribute_value(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG count)
{
    kv_p11_session *s = NULL;
    kv_p11_kdata *kd = NULL;
    kv_p11_slot *slot;
    kv_key_update_params up;
    kv_key *nk = NULL;
    kv_p11_obj obj;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    kv_err_clear(&err);
    /* the module's own session objects first (p11_secret.c) */
    rv = kv_p11_sobj_set_attributes(hs, ho, tmpl, count);
    if (rv != CKR_OBJECT_HANDLE_INVALID)
        return rv;
    rv = kv_p11_objmod_begin(hs, ho, tmpl != NULL || count == 0, &s, &obj, &slot);
    if (rv != CKR_OK)
        return rv;
    if (obj.cls != CKO_PRIVATE_KEY && obj.cls != CKO_PUBLIC_KEY && obj.cls != CKO_SECRET_KEY) {
        rv = count > 0 ? CKR_ATTRIBUTE_READ_ONLY : CKR_OK; /* certificates, data objects */
        goto done;
    }
    rv = kv_p11_obj_kdata("C_SetAttributeValue", s->slot, ho, KV_P11_OP_OBJECT, &obj, &kd);
    if (rv != CKR_OK)
        goto done;
    rv = kv_p11_setattr_params(kd, obj.cls, tmpl, count, &up);
    if (rv != CKR_OK ||
        (up.enabled == KV_KEEP && up.nbf == KV_KEEP && up.exp == KV_KEEP && up.key_ops == KV_KEEP))
        goto done;
    if (kv_vault_is_local_pool(slot->vault)) {
        rv = CKR_ATTRIBUTE_READ_ONLY; /* a local pool cannot change these */
        goto done;
    }
    rv = kv_p11_write_check(s, true);
    if (rv != CKR_OK)
        goto done;
    krv = kv_vault_update_key(slot->vault, kd->key, &up, &nk, &err);
    if (krv != KV_OK) {
        rv = krv == KV_ERR_UNSUPPORTED ? CKR_ATTRIBUTE_READ_ONLY
                                       : kv_p11_write_rv("C_SetAttributeValue", &err, krv);
        goto done;
    }
    if (strchr(obj.name, '/') != NULL) { /* an older version: read it again when needed */
        kv_p11_lock();
        kv_p11_cache_remove(slot, obj.name);
        kv_p11_unlock();
    } else {
        rv = kv_p11_key_written(s->slot, nk, NULL, NULL);
    }

done:
    kv_key_unref(nk);
    kv_p11_kdata_unref(kd);
    kv_p11_session_release(s, 0);
    return rv;
}
