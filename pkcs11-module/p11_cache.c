/* p11_cache.c - per-slot caches of what the vault holds besides key material: the
 * certificates (parsed, see p11_cert.c) and the names of the secrets (p11_data.c). Together
 * with the key cache of p11_slot.c this makes C_FindObjects and C_GetAttributeValue cost no
 * vault round trip while warm. Entries are immutable snapshots, replaced whole after
 * kv_p11_cache_ttl() seconds ([kvault] object_cache_seconds, default 30) or dropped by
 * kv_p11_cache_invalidate (the module's own changes, C_Finalize). Secret values are never
 * cached. The module lock guards the slot pointers; vault reads happen without it. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

#include "kv_log.h"

long kv_p11_cache_ttl(void)
{
    long ttl = kv_p11_module.cache_ttl;

    return ttl >= 0 ? ttl : KV_P11_CACHE_TTL_SEC;
}

bool kv_p11_fresh(const struct timespec *fetched)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - fetched->tv_sec < kv_p11_cache_ttl();
}

void kv_p11_odata_unref(kv_p11_odata *od)
{
    size_t i;

    if (od == NULL || __atomic_sub_fetch(&od->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (i = 0; i < od->ncerts; i++)
        kv_p11_cert_clear(&od->certs[i]);
    free(od->certs);
    kv_name_list_free(od->names, od->nnames);
    free(od);
}

void kv_p11_objcache_invalidate(kv_p11_slot *slot)
{
    slot->cache_gen++; /* a listing in flight must not store what it got before */
    kv_p11_odata_unref(slot->certs);
    kv_p11_odata_unref(slot->secrets);
    slot->certs = NULL;
    slot->secrets = NULL;
}

/* A fresh reference from *cached, or NULL (lock held). */
static kv_p11_odata *kv_p11_odata_get(kv_p11_odata *cached)
{
    if (cached == NULL || !kv_p11_fresh(&cached->fetched))
        return NULL;
    __atomic_add_fetch(&cached->refs, 1, __ATOMIC_ACQ_REL);
    return cached;
}

/* Stores od as the slot's snapshot (takes a reference; lock taken here), unless the slot's
 * caches changed since gen (kv_p11_odata_cached) was read. */
static void kv_p11_odata_store(CK_SLOT_ID id, bool certs, kv_p11_odata *od, unsigned gen)
{
    kv_p11_slot *slot;

    kv_p11_lock();
    slot = kv_p11_slot_get(id);
    if (slot != NULL && slot->cache_gen == gen) {
        kv_p11_odata **where = certs ? &slot->certs : &slot->secrets;

        kv_p11_odata_unref(*where);
        __atomic_add_fetch(&od->refs, 1, __ATOMIC_ACQ_REL);
        *where = od;
    }
    kv_p11_unlock();
}

/* A listing the vault refuses or does not have (403: the credential may read keys only; 404 /
 * 400: a managed HSM pool has no certificates or secrets) gives an empty snapshot, cached like
 * any other, so the slot's keys are still found and the refusal costs one request per TTL. */
static bool kv_p11_list_none(kv_rv rv)
{
    return rv == KV_ERR_FORBIDDEN || rv == KV_ERR_NOT_FOUND || rv == KV_ERR_BAD_REQUEST ||
           rv == KV_ERR_UNSUPPORTED;
}

/* The slot (lock taken here), a fresh cached snapshot if there is one, and the slot's cache
 * generation. */
static kv_p11_slot *kv_p11_odata_cached(CK_SLOT_ID id, bool certs, kv_p11_odata **out,
                                        unsigned *gen)
{
    kv_p11_slot *slot;

    kv_p11_lock();
    slot = kv_p11_slot_get(id);
    if (slot != NULL) {
        *out = kv_p11_odata_get(certs ? slot->certs : slot->secrets);
        *gen = slot->cache_gen;
    }
    kv_p11_unlock();
    return slot;
}

kv_rv kv_p11_slot_certs(CK_SLOT_ID id, kv_p11_odata **out, kv_err *err)
{
    kv_p11_odata *od = NULL;
    kv_p11_slot *slot;
    char **names = NULL;
    size_t n = 0, i;
    unsigned gen = 0;
    kv_rv rv;

    *out = NULL;
    slot = kv_p11_odata_cached(id, true, out, &gen);
    if (slot == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no such slot");
    if (*out != NULL)
        return KV_OK;

    rv = kv_vault_list_certificates(slot->vault, &names, &n, err);
    if (kv_p11_list_none(rv)) {
        KV_DEBUG("slot %s: no certificates shown: %s", slot->name, err->message);
        kv_err_clear(err);
        rv = KV_OK;
    }
    if (rv != KV_OK)
        goto done;
    od = calloc(1, sizeof(*od));
    if (od == NULL || (n > 0 && (od->certs = calloc(n, sizeof(*od->certs))) == NULL)) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    od->refs = 1;
    clock_gettime(CLOCK_MONOTONIC, &od->fetched);
    for (i = 0; i < n; i++) {
        uint8_t *der = NULL;
        size_t derlen = 0;
        kv_err e2;
        kv_rv r;

        kv_err_clear(&e2);
        r = kv_vault_get_certificate(slot->vault, names[i], &der, &derlen, &e2);
        if (r == KV_OK)
            r = kv_p11_cert_parse(slot->name, names[i], der, derlen, &od->certs[od->ncerts], &e2);
        free(der);
        if (r == KV_OK) {
            od->ncerts++;
        } else if (r == KV_ERR_NOT_FOUND || r == KV_ERR_FORBIDDEN || r == KV_ERR_SERVER ||
                   r == KV_ERR_INVALID_ARG) {
            /* deleted meanwhile, pending, disabled or unparsable: not shown */
            KV_WARN("certificate %s not shown: %s", names[i], e2.message);
        } else {
            *err = e2;
            rv = r;
            goto done;
        }
    }
    kv_p11_odata_store(id, true, od, gen);
    *out = od;
    od = NULL;

done:
    kv_p11_odata_unref(od);
    kv_name_list_free(names, n);
    return rv;
}

kv_rv kv_p11_slot_secrets(CK_SLOT_ID id, kv_p11_odata **out, kv_err *err)
{
    kv_p11_odata *od = NULL;
    kv_p11_slot *slot;
    unsigned gen = 0;
    kv_rv rv = KV_OK;

    *out = NULL;
    slot = kv_p11_odata_cached(id, false, out, &gen);
    if (slot == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no such slot");
    if (*out != NULL)
        return KV_OK;

    od = calloc(1, sizeof(*od));
    if (od == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    od->refs = 1;
    clock_gettime(CLOCK_MONOTONIC, &od->fetched);
    rv = kv_vault_list_secrets(slot->vault, &od->names, &od->nnames, err);
    if (kv_p11_list_none(rv)) {
        KV_DEBUG("slot %s: no data objects shown: %s", slot->name, err->message);
        kv_err_clear(err);
        rv = KV_OK;
    }
    if (rv != KV_OK)
        goto done;
    kv_p11_odata_store(id, false, od, gen);
    *out = od;
    od = NULL;

done:
    kv_p11_odata_unref(od);
    return rv;
}
