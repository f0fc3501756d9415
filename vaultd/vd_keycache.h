/* vd_keycache.h - bounded, thread-safe cache of decrypted private keys by vault + version, so
 * a sign does not decrypt and parse the key every time. Key versions are immutable. */
#ifndef VD_KEYCACHE_H
#define VD_KEYCACHE_H

#include <openssl/evp.h>

#include "kv_status.h"
#include "vd_ctx.h"

kv_rv vd_keycache_new(vd_keycache **out);
void vd_keycache_free(vd_keycache *kc);
/* A new reference to the cached key (caller EVP_PKEY_free's it), or NULL. */
EVP_PKEY *vd_keycache_get(vd_keycache *kc, const char *vault, const char *version);
/* Stores a reference to pkey (the caller keeps its own). */
void vd_keycache_put(vd_keycache *kc, const char *vault, const char *version, EVP_PKEY *pkey);
/* Drops a version (for delete / purge). */
void vd_keycache_remove(vd_keycache *kc, const char *vault, const char *version);

#endif
