/* p11_slot.c - slots and tokens: one slot (with its token always present) per configured
 * vault, in configuration order, slot id = index. Token label = vault name. Also the slot's
 * short-lived cache of fetched keys (KV_P11_CACHE_TTL_SEC), so that a find followed by
 * attribute reads and a sign costs one vault round trip, while new or rotated keys still show
 * up within seconds without a restart. */
#include "p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

kv_p11_slot *kv_p11_slot_get(CK_SLOT_ID id)
{
    if (id >= kv_p11_module.nslots)
        return NULL;
    return &kv_p11_module.slots[id];
}

CK_RV kv_p11_slots_load(kv_ctx *ctx)
{
    size_t n = kv_ctx_vault_count(ctx), i;

    kv_p11_module.slots = NULL;
    kv_p11_module.nslots = 0;
    if (n == 0)
        return CKR_OK;
    kv_p11_module.slots = calloc(n, sizeof(*kv_p11_module.slots));
    if (kv_p11_module.slots == NULL)
        return CKR_HOST_MEMORY;
    for (i = 0; i < n; i++) {
        kv_p11_slot *s = &kv_p11_module.slots[i];

        s->id = i;
        s->vault = kv_ctx_vault_at(ctx, i);
        snprintf(s->name, sizeof(s->name), "%s", kv_vault_name(s->vault));
    }
    kv_p11_module.nslots = n;
    return CKR_OK;
}

void kv_p11_slots_free(void)
{
    size_t i;

    for (i = 0; i < kv_p11_module.nslots; i++) {
        kv_p11_cache_invalidate(&kv_p11_module.slots[i]);
        free(kv_p11_module.slots[i].cache);
    }
    free(kv_p11_module.slots);
    kv_p11_module.slots = NULL;
    kv_p11_module.nslots = 0;
}

CK_RV kv_p11_get_slot_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv = CKR_OK;
    size_t i;

    (void)token_present; /* every slot has its token */
    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    if (count == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (list != NULL) {
        if (*count < kv_p11_module.nslots) {
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            for (i = 0; i < kv_p11_module.nslots; i++)
                list[i] = kv_p11_module.slots[i].id;
        }
    }
    *count = kv_p11_module.nslots;

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_get_slot_info(CK_SLOT_ID id, CK_SLOT_INFO_PTR info)
{
    char desc[128];
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
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    memset(info, 0, sizeof(*info));
    snprintf(desc, sizeof(desc), "kvault %s %s", slot->name, kv_vault_url(slot->vault));
    kv_p11_pad(info->slotDescription, sizeof(info->slotDescription), desc);
    kv_p11_pad(info->manufacturerID, sizeof(info->manufacturerID), KV_P11_MANUFACTURER);
    info->flags = CKF_TOKEN_PRESENT;
    info->hardwareVersion.major = KV_P11_LIB_MAJOR;
    info->hardwareVersion.minor = KV_P11_LIB_MINOR;
    info->firmwareVersion.major = KV_P11_LIB_MAJOR;
    info->firmwareVersion.minor = KV_P11_LIB_MINOR;

done:
    kv_p11_unlock();
    return rv;
}

/* Serial number: 16 hex digits of SHA-256(vault URL), stable per vault. */
static void kv_p11_token_serial(const kv_p11_slot *slot, CK_UTF8CHAR serial[16])
{
    const char *url = kv_vault_url(slot->vault);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[17];
    EVP_MD *sha = kv_p11_md_fetch("SHA256");
    int i;

    memset(md, 0, sizeof(md));
    if (sha != NULL)
        EVP_Digest(url, strlen(url), md, &mdlen, sha, NULL);
    EVP_MD_free(sha);
    for (i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    kv_p11_pad(serial, 16, hex);
}

CK_RV kv_p11_get_token_info(CK_SLOT_ID id, CK_TOKEN_INFO_PTR info)
{
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
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    memset(info, 0, sizeof(*info));
    kv_p11_pad(info->label, sizeof(info->label), slot->name);
    kv_p11_pad(info->manufacturerID, sizeof(info->manufacturerID), KV_P11_MANUFACTURER);
    /* model: what backs the token (a vault, a managed HSM pool, a local pool of HSMs) */
    kv_p11_pad(info->model, sizeof(info->model),
               kv_vault_is_local_pool(slot->vault) ? KV_P11_MODEL_POOL
               : kv_vault_has_oct(slot->vault)     ? KV_P11_MODEL_MHSM
                                                   : KV_P11_MODEL);
    kv_p11_token_serial(slot, info->serialNumber);
    /* CKF_LOGIN_REQUIRED only when the vault credential is sealed under the PIN
     * (client_secret_sealed); otherwise it comes from the configuration and the PIN is not
     * used. CKF_RNG for a managed HSM pool (its /rng endpoint) and for a local pool slot
     * (the pool members' C_GenerateRandom); see kv_vault_has_rng and p11_random.c. */
    info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
    if (kv_vault_login_required(slot->vault))
        info->flags |= CKF_LOGIN_REQUIRED;
    if (kv_vault_has_rng(slot->vault))
        info->flags |= CKF_RNG; /* managed HSM pool or local pool */
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulSessionCount = kv_p11_session_count(id, false);
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulRwSessionCount = kv_p11_session_count(id, true);
    info->ulMaxPinLen = 256;
    info->ulMinPinLen = 0;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = KV_P11_LIB_MAJOR;
    info->hardwareVersion.minor = KV_P11_LIB_MINOR;
    info->firmwareVersion.major = KV_P11_LIB_MAJOR;
    info->firmwareVersion.minor = KV_P11_LIB_MINOR;
    memset(info->utcTime, ' ', sizeof(info->utcTime));

done:
    kv_p11_unlock();
    return rv;
}

/* ---- key cache (module lock held) ---- */

static size_t kv_p11_cache_find(const kv_p11_slot *slot, const char *name)
{
    size_t i;

    for (i = 0; i < slot->ncache; i++)
        if (strcasecmp(kv_p11_kdata_label(slot->cache[i]), name) == 0)
            return i;
    return (size_t)-1;
}

kv_p11_kdata *kv_p11_cache_lookup(kv_p11_slot *slot, const char *name)
{
    size_t i = kv_p11_cache_find(slot, name);

    if (i == (size_t)-1 || !kv_p11_kdata_fresh(slot->cache[i]))
        return NULL;
    return kv_p11_kdata_ref(slot->cache[i]);
}

CK_RV kv_p11_cache_put(kv_p11_slot *slot, kv_p11_kdata *kd)
{
    size_t i = kv_p11_cache_find(slot, kv_p11_kdata_label(kd));

    if (i != (size_t)-1) {
        kv_p11_kdata_unref(slot->cache[i]);
        slot->cache[i] = kv_p11_kdata_ref(kd);
        return CKR_OK;
    }
    if (slot->ncache == slot->capcache) {
        size_t cap = slot->capcache ? 2 * slot->capcache : 16;
        kv_p11_kdata **nc = realloc(slot->cache, cap * sizeof(*nc));

        if (nc == NULL)
            return CKR_HOST_MEMORY;
        slot->cache = nc;
        slot->capcache = cap;
    }
    slot->cache[slot->ncache++] = kv_p11_kdata_ref(kd);
    return CKR_OK;
}

void kv_p11_cache_remove(kv_p11_slot *slot, const char *name)
{
    size_t i = kv_p11_cache_find(slot, name);

    slot->cache_gen++; /* a read in flight may still hold the key: it must not store it */
    if (i == (size_t)-1)
        return;
    kv_p11_kdata_unref(slot->cache[i]);
    slot->cache[i] = slot->cache[--slot->ncache];
}

/* Empties the key cache only (lock held). */
static void kv_p11_keycache_clear(kv_p11_slot *slot)
{
    size_t i;

    for (i = 0; i < slot->ncache; i++)
        kv_p11_kdata_unref(slot->cache[i]);
    slot->ncache = 0;
    slot->keys_listed_valid = false;
}

void kv_p11_cache_invalidate(kv_p11_slot *slot)
{
    slot->cache_gen++; /* reads in flight must not refill it with what they got before */
    kv_p11_keycache_clear(slot);
    kv_p11_objcache_invalidate(slot);
}

/* While the last full listing is fresh and every cached key too, references to all cached
 * keys (lock held): a warm listing costs no vault call. */
static bool kv_p11_keycache_listing(kv_p11_slot *slot, kv_p11_kdata ***out, size_t *n)
{
    kv_p11_kdata **kds;
    size_t i;

    if (!slot->keys_listed_valid || !kv_p11_fresh(&slot->keys_listed))
        return false;
    for (i = 0; i < slot->ncache; i++)
        if (!kv_p11_kdata_fresh(slot->cache[i]))
            return false;
    kds = calloc(slot->ncache + 1, sizeof(*kds));
    if (kds == NULL)
        return false;
    for (i = 0; i < slot->ncache; i++)
        kds[i] = kv_p11_kdata_ref(slot->cache[i]);
    *out = kds;
    *n = slot->ncache;
    return true;
}

/* ---- vault reads (no lock held; the caller is in flight, so the slots stay) ---- */

kv_rv kv_p11_slot_fetch_key(CK_SLOT_ID id, const char *name, kv_p11_kdata **out, kv_err *err)
{
    kv_p11_kdata *kd = NULL;
    kv_p11_slot *slot;
    kv_key *key = NULL;
    unsigned gen = 0;
    kv_rv rv;

    *out = NULL;
    kv_p11_lock();
    slot = kv_p11_slot_get(id);
    if (slot != NULL) {
        kd = kv_p11_cache_lookup(slot, name);
        gen = slot->cache_gen;
    }
    kv_p11_unlock();
    if (slot == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no such slot");
    if (kd != NULL) {
        *out = kd;
        return KV_OK;
    }

    if (strchr(name, '/') != NULL) /* "NAME/VERSION": an older version (p11_versions.c) */
        rv = kv_p11_version_fetch(slot->vault, name, &kd, err);
    else
        rv = kv_vault_get_key(slot->vault, name, NULL, &key, err);
    if (rv == KV_ERR_NOT_FOUND) {
        kv_p11_lock();
        kv_p11_cache_remove(slot, name);
        kv_p11_unlock();
    }
    if (rv != KV_OK)
        goto done;
    if (kd == NULL)
        rv = kv_p11_kdata_new(key, &kd, err);
    if (rv != KV_OK)
        goto done;
    kv_p11_lock();
    /* best effort: a failure only costs a later re-read; a write or invalidation meanwhile
     * (cache_gen moved on) wins over what this read got */
    if (slot->cache_gen == gen)
        kv_p11_cache_put(slot, kd);
    kv_p11_unlock();
    *out = kd;

done:
    kv_key_unref(key);
    return rv;
}

void kv_p11_kdata_list_free(kv_p11_kdata **kds, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        kv_p11_kdata_unref(kds[i]);
    free(kds);
}

kv_rv kv_p11_slot_list_keys(CK_SLOT_ID id, kv_p11_kdata ***out, size_t *n, kv_err *err)
{
    kv_p11_kdata **kds = NULL;
    kv_key **keys = NULL;
    size_t nkeys = 0, nkds = 0, i;
    kv_p11_slot *slot;
    struct timespec listed;
    bool warm = false;
    unsigned gen = 0;
    kv_rv rv;

    *out = NULL;
    *n = 0;

    kv_p11_lock();
    slot = kv_p11_slot_get(id);
    if (slot != NULL) {
        warm = kv_p11_keycache_listing(slot, out, n);
        gen = slot->cache_gen;
    }
    kv_p11_unlock();
    if (slot == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no such slot");
    if (warm)
        return KV_OK;

    clock_gettime(CLOCK_MONOTONIC, &listed);
    rv = kv_vault_list_keys(slot->vault, &keys, &nkeys, err);
    if (rv != KV_OK)
        goto done;
    if (nkeys > 0) {
        kds = calloc(nkeys, sizeof(*kds));
        if (kds == NULL) {
            rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    for (i = 0; i < nkeys; i++) {
        kv_p11_kdata *kd = NULL;
        kv_rv r;

        if (keys[i]->kty != KV_KTY_RSA && keys[i]->kty != KV_KTY_EC && keys[i]->kty != KV_KTY_OCT)
            continue;
        if (keys[i]->pub == NULL && keys[i]->kty != KV_KTY_OCT) /* (AES keys have none) */
            r = kv_p11_slot_fetch_key(id, keys[i]->name, &kd, err);
        else
            r = kv_p11_kdata_new(keys[i], &kd, err);
        if (r == KV_ERR_NOT_FOUND || r == KV_ERR_UNSUPPORTED)
            continue;
        if (r != KV_OK) {
            rv = r;
            goto done;
        }
        kds[nkds++] = kd;
    }
    rv = kv_p11_versions_add(slot->vault, &kds, &nkds, err); /* key_versions = all */
    if (rv != KV_OK)
        goto done;

    /* The listing is authoritative: the cache now holds exactly these keys - unless the module
     * wrote or invalidated meanwhile (then this caller gets the listing it asked for, and the
     * cache keeps the newer state: a stale listing must not hide a new key or revive a
     * deleted one, nor refill the cache of a token logged out meanwhile). */
    kv_p11_lock();
    if (slot->cache_gen == gen) {
        kv_p11_keycache_clear(slot);
        slot->keys_listed_valid = true;
        slot->keys_listed = listed;
        for (i = 0; i < nkds; i++)
            if (kv_p11_cache_put(slot, kds[i]) != CKR_OK)
                slot->keys_listed_valid = false; /* incomplete: list again next time */
    }
    kv_p11_unlock();
    *out = kds;
    *n = nkds;
    kds = NULL;
    nkds = 0;

done:
    kv_p11_kdata_list_free(kds, nkds);
    kv_key_list_free(keys, nkeys);
    return rv;
}
