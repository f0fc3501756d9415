/* vd_keycache.c - set-associative LRU cache of private EVP_PKEYs under one mutex. */
#include "vd_keycache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VD_KC_SETS 256
#define VD_KC_WAYS 4 /* at most 1024 keys in memory */

typedef struct vd_kc_entry {
    char id[2 * VD_ID_MAX]; /* "vault/version", lower case */
    EVP_PKEY *pkey;
    uint64_t used; /* LRU clock */
} vd_kc_entry;

struct vd_keycache {
    pthread_mutex_t lock;
    uint64_t clock;
    vd_kc_entry sets[VD_KC_SETS][VD_KC_WAYS];
};

kv_rv vd_keycache_new(vd_keycache **out)
{
    vd_keycache *kc;

    if (out == NULL)
        return KV_ERR_INVALID_ARG;
    kc = calloc(1, sizeof(*kc));
    if (kc == NULL)
        return KV_ERR_NOMEM;
    if (pthread_mutex_init(&kc->lock, NULL) != 0) {
        free(kc);
        return KV_ERR_INTERNAL;
    }
    *out = kc;
    return KV_OK;
}

void vd_keycache_free(vd_keycache *kc)
{
    size_t s, w;

    if (kc == NULL)
        return;
    for (s = 0; s < VD_KC_SETS; s++)
        for (w = 0; w < VD_KC_WAYS; w++)
            EVP_PKEY_free(kc->sets[s][w].pkey);
    pthread_mutex_destroy(&kc->lock);
    free(kc);
}

/* Builds the id and returns its set index (FNV-1a). */
static size_t vd_kc_id(const char *vault, const char *version, char id[2 * VD_ID_MAX])
{
    uint32_t h = 2166136261u;
    char *p;

    snprintf(id, 2 * VD_ID_MAX, "%s/%s", vault, version);
    for (p = id; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    return h % VD_KC_SETS;
}

EVP_PKEY *vd_keycache_get(vd_keycache *kc, const char *vault, const char *version)
{
    char id[2 * VD_ID_MAX];
    EVP_PKEY *found = NULL;
    size_t s, w;

    if (kc == NULL || vault == NULL || version == NULL)
        return NULL;
    s = vd_kc_id(vault, version, id);
    pthread_mutex_lock(&kc->lock);
    for (w = 0; w < VD_KC_WAYS; w++) {
        vd_kc_entry *e = &kc->sets[s][w];

        if (e->pkey != NULL && strcmp(e->id, id) == 0) {
            if (EVP_PKEY_up_ref(e->pkey) == 1)
                found = e->pkey;
            e->used = ++kc->clock;
            break;
        }
    }
    pthread_mutex_unlock(&kc->lock);
    return found;
}

void vd_keycache_put(vd_keycache *kc, const char *vault, const char *version, EVP_PKEY *pkey)
{
    char id[2 * VD_ID_MAX];
    vd_kc_entry *victim;
    EVP_PKEY *old = NULL;
    size_t s, w;

    if (kc == NULL || vault == NULL || version == NULL || pkey == NULL)
        return;
    s = vd_kc_id(vault, version, id);
    pthread_mutex_lock(&kc->lock);
    victim = NULL;
    for (w = 0; w < VD_KC_WAYS && victim == NULL; w++)
        if (kc->sets[s][w].pkey != NULL && strcmp(kc->sets[s][w].id, id) == 0)
            victim = &kc->sets[s][w]; /* another thread got there first: replace */
    for (w = 0; w < VD_KC_WAYS && victim == NULL; w++)
        if (kc->sets[s][w].pkey == NULL)
            victim = &kc->sets[s][w];
    if (victim == NULL) { /* full: evict the least recently used */
        victim = &kc->sets[s][0];
        for (w = 1; w < VD_KC_WAYS; w++)
            if (kc->sets[s][w].used < victim->used)
                victim = &kc->sets[s][w];
    }
    if (EVP_PKEY_up_ref(pkey) == 1) {
        old = victim->pkey;
        victim->pkey = pkey;
        snprintf(victim->id, sizeof(victim->id), "%s", id);
        victim->used = ++kc->clock;
    }
    pthread_mutex_unlock(&kc->lock);
    EVP_PKEY_free(old);
}

void vd_keycache_remove(vd_keycache *kc, const char *vault, const char *version)
{
    char id[2 * VD_ID_MAX];
    EVP_PKEY *old = NULL;
    size_t s, w;

    if (kc == NULL || vault == NULL || version == NULL)
        return;
    s = vd_kc_id(vault, version, id);
    pthread_mutex_lock(&kc->lock);
    for (w = 0; w < VD_KC_WAYS; w++) {
        vd_kc_entry *e = &kc->sets[s][w];

        if (e->pkey != NULL && strcmp(e->id, id) == 0) {
            old = e->pkey;
            e->pkey = NULL;
            e->id[0] = '\0';
            break;
        }
    }
    pthread_mutex_unlock(&kc->lock);
    EVP_PKEY_free(old);
}
