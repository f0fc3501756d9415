/* p11_find.c - C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal.
 *
 * The whole result is computed at C_FindObjectsInit and paged out afterwards. The template
 * first decides which kinds of object can match (keys, certificates, data objects - the
 * latter only when logged in); only those are read. Cost to the vault: a template that can
 * only match objects we do not have (other key types) costs nothing; a key template with
 * CKA_LABEL reads just that key; otherwise the keys, certificates or secrets are listed - and
 * everything is served from the slot caches (p11_slot.c, p11_cache.c) while they are fresh, so
 * a warm find costs no round trip. AES vault keys are one CKO_SECRET_KEY object each; the
 * module's session objects (p11_secret.c) are matched in memory and appended. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

/* What the template tells before any vault read. */
typedef struct kv_p11_find_plan {
    bool impossible;        /* no object of ours can match */
    bool keys, certs, data; /* kinds of object that can match */
    bool aes;               /* only AES / secret keys can match (p11_secret.c) */
    char label[128];        /* CKA_LABEL, if given */
    bool has_label;
} kv_p11_find_plan;

static void kv_p11_find_plan_make(const CK_ATTRIBUTE *tmpl, CK_ULONG count, kv_p11_find_plan *plan)
{
    CK_ULONG i, u;

    memset(plan, 0, sizeof(*plan));
    plan->keys = plan->certs = plan->data = true;
    for (i = 0; i < count; i++) {
        const CK_ATTRIBUTE *a = &tmpl[i];

        switch (a->type) {
        case CKA_CLASS:
        case CKA_KEY_TYPE:
            if (a->ulValueLen != sizeof(CK_ULONG) || a->pValue == NULL) {
                plan->impossible = true;
                break;
            }
            memcpy(&u, a->pValue, sizeof(u));
            if ((a->type == CKA_CLASS && u == CKO_SECRET_KEY) ||
                (a->type == CKA_KEY_TYPE && u == CKK_AES))
                plan->aes = true;
            if (a->type == CKA_CLASS) {
                plan->keys = plan->keys &&
                             (u == CKO_PRIVATE_KEY || u == CKO_PUBLIC_KEY || u == CKO_SECRET_KEY);
                plan->certs = plan->certs && u == CKO_CERTIFICATE;
                plan->data = plan->data && u == CKO_DATA;
            } else {
                plan->certs = plan->data = false;
                if (u != CKK_RSA && u != CKK_EC && u != CKK_AES)
                    plan->keys = false; /* (module session objects are matched apart) */
            }
            break;
        case CKA_CERTIFICATE_TYPE:
        case CKA_CERTIFICATE_CATEGORY:
        case CKA_ISSUER:
        case CKA_SERIAL_NUMBER:
            plan->keys = plan->data = false;
            break;
        case CKA_APPLICATION:
        case CKA_OBJECT_ID:
            plan->keys = plan->certs = false;
            break;
        case CKA_LABEL:
            if (a->ulValueLen == 0 || a->ulValueLen >= sizeof(plan->label) || a->pValue == NULL ||
                memchr(a->pValue, '\0', a->ulValueLen) != NULL) {
                plan->impossible = true;
                break;
            }
            memcpy(plan->label, a->pValue, a->ulValueLen);
            plan->label[a->ulValueLen] = '\0';
            plan->has_label = true;
            break;
        default:
            break;
        }
    }
    if (!plan->keys && !plan->certs && !plan->data)
        plan->impossible = true;
}

/* Whether an object matches the template: a key object (kd, of class cls), else a certificate
 * (c), else a data object (the secret `name`). CKA_VALUE of a data object is not matched (it
 * would cost a read of every secret): no match. */
static bool kv_p11_find_matches(const kv_p11_kdata *kd, CK_OBJECT_CLASS cls, const kv_p11_cert *c,
                                const char *name, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    CK_BYTE scratch[KV_P11_SCRATCH];
    const void *v;
    CK_ULONG len, i;
    CK_RV r;

    for (i = 0; i < count; i++) {
        if (kd != NULL)
            r = kv_p11_attr(kd, cls, tmpl[i].type, &v, &len, scratch);
        else if (c != NULL)
            r = kv_p11_cert_attr(c, tmpl[i].type, &v, &len, scratch);
        else
            r = kv_p11_data_attr(name, tmpl[i].type, &v, &len, scratch);
        if (!kv_p11_attr_matches(&tmpl[i], r, v, len))
            return false;
    }
    return true;
}

/* Appends a handle for (name, cls) to the result (lock held). */
static CK_RV kv_p11_find_add(kv_p11_session *s, const char *name, CK_OBJECT_CLASS cls)
{
    CK_OBJECT_HANDLE h = kv_p11_obj_handle(s->slot, name, cls);

    if (h == CK_INVALID_HANDLE)
        return CKR_HOST_MEMORY;
    s->found[s->nfound++] = h;
    return CKR_OK;
}

/* Collects the handles of the objects that match (lock taken here). */
static CK_RV kv_p11_find_collect(kv_p11_session *s, kv_p11_kdata **kds, size_t n,
                                 const kv_p11_odata *certs, const kv_p11_odata *secrets,
                                 const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    static const CK_OBJECT_CLASS classes[2] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    size_t ncerts = certs != NULL ? certs->ncerts : 0;
    size_t ndata = secrets != NULL ? secrets->nnames : 0;
    CK_RV rv = CKR_OK;
    size_t i, c;

    s->found = calloc(2 * n + ncerts + ndata + 1, sizeof(*s->found));
    if (s->found == NULL)
        return CKR_HOST_MEMORY;
    kv_p11_lock();
    for (i = 0; i < n && rv == CKR_OK; i++) {
        if (kds[i]->key_type == CKK_AES) { /* one CKO_SECRET_KEY object (p11_secret.c) */
            if (kv_p11_find_matches(kds[i], CKO_SECRET_KEY, NULL, NULL, tmpl, count))
                rv = kv_p11_find_add(s, kds[i]->key->name, CKO_SECRET_KEY);
            continue;
        }
        for (c = 0; c < 2 && rv == CKR_OK; c++)
            if (kv_p11_find_matches(kds[i], classes[c], NULL, NULL, tmpl, count))
                rv = kv_p11_find_add(s, kv_p11_kdata_label(kds[i]), classes[c]);
    }
    for (i = 0; i < ncerts && rv == CKR_OK; i++)
        if (kv_p11_find_matches(NULL, 0, &certs->certs[i], NULL, tmpl, count))
            rv = kv_p11_find_add(s, certs->certs[i].name, CKO_CERTIFICATE);
    for (i = 0; i < ndata && rv == CKR_OK; i++)
        if (kv_p11_find_matches(NULL, 0, NULL, secrets->names[i], tmpl, count))
            rv = kv_p11_find_add(s, secrets->names[i], CKO_DATA);
    if (rv == CKR_OK)
        rv = kv_p11_sobjs_find(s, tmpl, count); /* module session objects */
    kv_p11_unlock();
    return rv;
}

/* Reads the keys the plan needs (cache or vault). */
static kv_rv kv_p11_find_keys(kv_p11_session *s, const kv_p11_find_plan *plan, kv_p11_kdata ***kds,
                              size_t *n, kv_err *err)
{
    kv_p11_kdata *one = NULL;
    kv_rv krv;

    *kds = NULL;
    *n = 0;
    if (!plan->keys)
        return KV_OK;
    if (!plan->has_label)
        return kv_p11_slot_list_keys(s->slot, kds, n, err);
    krv = kv_p11_slot_fetch_key(s->slot, plan->label, &one, err);
    if (krv == KV_OK) {
        *kds = calloc(1, sizeof(**kds));
        if (*kds == NULL) {
            kv_p11_kdata_unref(one);
            return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        }
        (*kds)[0] = one;
        *n = 1;
    } else if (krv == KV_ERR_NOT_FOUND || krv == KV_ERR_INVALID_ARG || krv == KV_ERR_BAD_REQUEST ||
               krv == KV_ERR_UNSUPPORTED) {
        krv = KV_OK; /* no such key (or not a name the vault accepts): no match */
    }
    return krv;
}

CK_RV kv_p11_find_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    kv_p11_find_plan plan;
    kv_p11_session *s = NULL;
    kv_p11_kdata **kds = NULL;
    kv_p11_odata *certs = NULL, *secrets = NULL;
    kv_p11_slot *slot;
    size_t n = 0;
    kv_err err;
    kv_rv krv = KV_OK;
    CK_RV rv;

    kv_err_clear(&err);
    rv = kv_p11_op_acquire_idle(h, KV_P11_PART_FIND, tmpl != NULL || count == 0, &s);
    if (rv != CKR_OK)
        return rv;
    kv_p11_find_plan_make(tmpl, count, &plan);
    if (plan.aes && !kv_p11_slot_has_aes(s->slot))
        plan.keys = false; /* no vault AES keys here: only session objects can match */
    if (plan.data) {       /* private objects: only for a logged-in token */
        kv_p11_lock();
        slot = kv_p11_slot_get(s->slot);
        plan.data = slot != NULL && slot->logged_in;
        kv_p11_unlock();
    }
    if (!plan.impossible) {
        krv = kv_p11_find_keys(s, &plan, &kds, &n, &err);
        if (krv == KV_OK && plan.certs)
            krv = kv_p11_slot_certs(s->slot, &certs, &err);
        if (krv == KV_OK && plan.data)
            krv = kv_p11_slot_secrets(s->slot, &secrets, &err);
        if (krv == KV_ERR_LOCKED) {
            /* a vault whose credential is sealed under the PIN shows nothing before C_Login
             * (nothing is cached either) */
            kv_p11_odata_unref(certs);
            kv_p11_kdata_list_free(kds, n);
            certs = NULL;
            kds = NULL;
            n = 0;
            krv = KV_OK;
        }
    }
    if (krv != KV_OK) {
        rv = kv_p11_rv_log("C_FindObjectsInit", &err, krv, KV_P11_OP_GENERIC);
        goto done;
    }
    rv = kv_p11_find_collect(s, kds, n, certs, secrets, tmpl, count);
    if (rv != CKR_OK) {
        kv_p11_find_clear(s);
        goto done;
    }
    s->findpos = 0;
    s->find_active = true;

done:
    kv_p11_odata_unref(certs);
    kv_p11_odata_unref(secrets);
    kv_p11_kdata_list_free(kds, n);
    kv_p11_session_release(s, KV_P11_PART_FIND);
    return rv;
}

CK_RV kv_p11_find(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max, CK_ULONG_PTR count)
{
    kv_p11_session *s = NULL;
    CK_ULONG i;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, KV_P11_PART_FIND, false, &s);
    if (rv != CKR_OK)
        return rv;
    if (count == NULL || (objs == NULL && max > 0)) {
        rv = CKR_ARGUMENTS_BAD;
    } else {
        for (i = 0; i < max && s->findpos < s->nfound; i++)
            objs[i] = s->found[s->findpos++];
        *count = i;
    }
    kv_p11_session_release(s, KV_P11_PART_FIND);
    return rv;
}

CK_RV kv_p11_find_final(CK_SESSION_HANDLE h)
{
    kv_p11_session *s = NULL;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, KV_P11_PART_FIND, false, &s);
    if (rv != CKR_OK)
        return rv;
    kv_p11_find_clear(s);
    kv_p11_session_release(s, KV_P11_PART_FIND);
    return rv;
}
