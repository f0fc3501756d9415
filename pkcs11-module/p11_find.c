/* p11_find.c - C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal.
 *
 * The whole result is computed at C_FindObjectsInit and paged out afterwards. Cost to the
 * vault: a template that can only match objects we do not have (certificates, data, secret
 * keys, other key types) costs nothing; a template with CKA_LABEL reads just that key (one
 * round trip, or none within the cache TTL); anything else lists the vault's keys. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

/* What the template tells before any vault read. */
typedef struct kv_p11_find_plan {
    bool impossible; /* no object of ours can match */
    char label[128]; /* CKA_LABEL, if given */
    bool has_label;
} kv_p11_find_plan;

static void kv_p11_find_plan_make(const CK_ATTRIBUTE *tmpl, CK_ULONG count, kv_p11_find_plan *plan)
{
    CK_ULONG i, u;

    memset(plan, 0, sizeof(*plan));
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
            if (a->type == CKA_CLASS && u != CKO_PRIVATE_KEY && u != CKO_PUBLIC_KEY)
                plan->impossible = true;
            if (a->type == CKA_KEY_TYPE && u != CKK_RSA && u != CKK_EC)
                plan->impossible = true;
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
}

/* Appends the handles of the objects of kds that match (lock taken here). */
static CK_RV kv_p11_find_collect(kv_p11_session *s, kv_p11_kdata **kds, size_t n,
                                 const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    static const CK_OBJECT_CLASS classes[2] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    CK_RV rv = CKR_OK;
    size_t i, c;

    s->found = calloc(2 * n + 1, sizeof(*s->found));
    if (s->found == NULL)
        return CKR_HOST_MEMORY;
    kv_p11_lock();
    for (i = 0; i < n; i++) {
        for (c = 0; c < 2; c++) {
            CK_OBJECT_HANDLE h;

            if (!kv_p11_obj_matches(kds[i], classes[c], tmpl, count))
                continue;
            h = kv_p11_obj_handle(s->slot, kds[i]->key->name, classes[c]);
            if (h == CK_INVALID_HANDLE) {
                rv = CKR_HOST_MEMORY;
                goto done;
            }
            s->found[s->nfound++] = h;
        }
    }

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_find_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    kv_p11_find_plan plan;
    kv_p11_session *s = NULL;
    kv_p11_kdata **kds = NULL, *one = NULL;
    size_t n = 0;
    kv_err err;
    kv_rv krv = KV_OK;
    CK_RV rv;

    kv_err_clear(&err);
    rv = kv_p11_session_acquire(h, KV_P11_PART_FIND, &s);
    if (rv != CKR_OK)
        return rv;
    if (tmpl == NULL && count > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (s->find_active) {
        rv = CKR_OPERATION_ACTIVE;
        goto done;
    }
    kv_p11_find_plan_make(tmpl, count, &plan);
    if (plan.impossible) {
        /* nothing to fetch */
    } else if (plan.has_label) {
        krv = kv_p11_slot_fetch_key(s->slot, plan.label, &one, &err);
        if (krv == KV_OK) {
            kds = &one;
            n = 1;
        } else if (krv == KV_ERR_NOT_FOUND || krv == KV_ERR_INVALID_ARG ||
                   krv == KV_ERR_BAD_REQUEST || krv == KV_ERR_UNSUPPORTED) {
            krv = KV_OK; /* no such key (or not a name the vault accepts): no match */
        }
    } else {
        krv = kv_p11_slot_list_keys(s->slot, &kds, &n, &err);
    }
    if (krv != KV_OK) {
        rv = kv_p11_rv_log("C_FindObjectsInit", &err, krv, KV_P11_OP_GENERIC);
        goto done;
    }
    rv = kv_p11_find_collect(s, kds, n, tmpl, count);
    if (rv != CKR_OK) {
        kv_p11_find_clear(s);
        goto done;
    }
    s->findpos = 0;
    s->find_active = true;

done:
    if (kds == &one)
        kv_p11_kdata_unref(one);
    else
        kv_p11_kdata_list_free(kds, n);
    kv_p11_session_release(s, KV_P11_PART_FIND);
    return rv;
}

CK_RV kv_p11_find(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max, CK_ULONG_PTR count)
{
    kv_p11_session *s = NULL;
    CK_ULONG i;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, KV_P11_PART_FIND, &s);
    if (rv != CKR_OK)
        return rv;
    if (!s->find_active) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
        goto done;
    }
    if (count == NULL || (objs == NULL && max > 0)) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    for (i = 0; i < max && s->findpos < s->nfound; i++)
        objs[i] = s->found[s->findpos++];
    *count = i;

done:
    kv_p11_session_release(s, KV_P11_PART_FIND);
    return rv;
}

CK_RV kv_p11_find_final(CK_SESSION_HANDLE h)
{
    kv_p11_session *s = NULL;
    CK_RV rv;

    rv = kv_p11_session_acquire(h, KV_P11_PART_FIND, &s);
    if (rv != CKR_OK)
        return rv;
    if (!s->find_active)
        rv = CKR_OPERATION_NOT_INITIALIZED;
    else
        kv_p11_find_clear(s);
    kv_p11_session_release(s, KV_P11_PART_FIND);
    return rv;
}
