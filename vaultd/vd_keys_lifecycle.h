/* vd_keys_lifecycle.h - key endpoints beyond create/get/list/sign/verify: import, update,
 * soft delete / deleted keys / recover / purge, backup / restore, rotate and the rotation
 * policy, RSA encrypt / decrypt / wrapKey / unwrapKey; and the background maintenance thread
 * (purge sweep of expired deleted keys, automatic rotation). */
#ifndef VD_KEYS_LIFECYCLE_H
#define VD_KEYS_LIFECYCLE_H

#include "kv_status.h"
#include "vd_ctx.h"
#include "vd_http.h"

/* vd_keys_lifecycle.c */
void vd_keys_import(vd_req *r, const char *name, const char *version);
void vd_keys_update(vd_req *r, const char *name, const char *version);
void vd_keys_delete(vd_req *r, const char *name, const char *version);
void vd_keys_deleted_list(vd_req *r, const char *name, const char *version);
void vd_keys_deleted_get(vd_req *r, const char *name, const char *version);
void vd_keys_recover(vd_req *r, const char *name, const char *version);
void vd_keys_purge(vd_req *r, const char *name, const char *version);

/* vd_keys_crypto.c */
void vd_keys_encrypt(vd_req *r, const char *name, const char *version);
void vd_keys_decrypt(vd_req *r, const char *name, const char *version);
void vd_keys_wrap(vd_req *r, const char *name, const char *version);
void vd_keys_unwrap(vd_req *r, const char *name, const char *version);

/* vd_backup.c */
void vd_keys_backup(vd_req *r, const char *name, const char *version);
void vd_keys_restore(vd_req *r, const char *name, const char *version);

/* vd_rotation.c */
void vd_keys_rotate(vd_req *r, const char *name, const char *version);
void vd_keys_policy_get(vd_req *r, const char *name, const char *version);
void vd_keys_policy_put(vd_req *r, const char *name, const char *version);
/* Starts / stops the maintenance thread (purge sweep + due rotations every
 * ctx->cfg.rotation_interval seconds). */
kv_rv vd_keys_maintenance_start(vd_ctx *ctx);
void vd_keys_maintenance_stop(vd_ctx *ctx);

#endif
