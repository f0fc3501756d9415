/* vd_hsm.h - vaultd's local HSM pool: its configuration (--hsm-config FILE, or DIR/hsm.conf
 * made by --dev with a SoftHSMv2 token in DIR/softhsm), the key-encryption key kept in the pool
 * (kek.hsm) or in a file (kek.bin), and the keys.hsm_ref column. The PKCS#11 work itself is
 * vaultclient's kv_hsm. */
#ifndef VD_HSM_H
#define VD_HSM_H

#include <stdbool.h>

#include "kv_hsm.h"
#include "kv_status.h"
#include "vd_ctx.h"
#include "vd_store.h"

typedef struct vd_hsm {
    char name[64];               /* pool name used in messages */
    kv_hsm_pool *pool;           /* NULL when the configuration could not be used */
    char error[512];             /* why the pool was unavailable at start ("" if it was fine) */
    bool kek_in_pool;            /* the KEK lives in the pool (kek.hsm) */
    char wrap_fp[KV_HSM_FP_HEX]; /* the pool wrapping key's fingerprint ("" = none) */
    bool wrap_trusted;           /* ... is CKA_TRUSTED on every member holding it */
} vd_hsm;

/* Reads the pool configuration (creating the dev SoftHSMv2 token on a fresh --dev state),
 * opens the pool and sets up the pool wrapping key (wrap_key = auto: made at first start). An
 * unavailable pool is not fatal: ctx->hsm->error says why. ctx->hsm stays NULL when no pool is
 * configured. Call after the state directory exists. */
kv_rv vd_hsm_setup(vd_ctx *ctx);
void vd_hsm_free(vd_ctx *ctx);

/* Where the KEK lives: kek.hsm present -> pool; kek.bin present -> file; neither (first start)
 * -> --kek-location, else the pool when it is usable, else the file. */
bool vd_hsm_kek_in_pool(vd_ctx *ctx);
/* Loads ctx->kek from kek.hsm (creating the pool's KEK and kek.hsm on first start).
 * KV_ERR_CONFIG with a message on stderr when the pool cannot unwrap it. */
kv_rv vd_hsm_load_kek(vd_ctx *ctx);

/* The pool for HSM key operations, or NULL after filling err (pool unavailable / none). */
kv_hsm_pool *vd_hsm_pool(vd_ctx *ctx, kv_err *err);

/* Adds keys.hsm_ref (idempotent; called from vd_store_init_schema). */
kv_rv vd_store_hsm_migrate(vd_store *st);

/* A new key in the pool of the same type and size / curve as like (for rotation). out->vault,
 * ->name and ->version must be set (they make the object label); fills out->hsm_ref and
 * out->pub_der (none for oct). err->rv KV_ERR_SERVER = pool unavailable (answer 503). */
kv_rv vd_hsm_generate_like(vd_ctx *ctx, const vd_key_row *like, vd_key_row *out, kv_err *err);

/* In a pool of several members: copies a new key to every other reachable member (wrapped
 * under the pool wrapping key, kv_hsm_replicate) so any member can serve it. Failures are
 * logged, not fatal (the key works on its own member). */
void vd_hsm_replicate(vd_ctx *ctx, const char *hsm_ref);

/* Destroys an HSM key's objects in the pool, every member's copy (for purge). Absent = KV_OK. */
kv_rv vd_hsm_destroy_key(vd_ctx *ctx, const char *hsm_ref);
/* Whether a keys row of another key than vault/name still references hsm_ref (a key restored
 * from a backup into another vault shares the pool object): purge must then keep the object.
 * Errors count as shared (keeping an object is safer than losing one). */
bool vd_store_hsm_ref_shared(vd_store *st, const char *hsm_ref, const char *vault,
                             const char *name);

#endif
