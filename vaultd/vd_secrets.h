/* vd_secrets.h - the secret endpoints of the vault data plane (set, get, list, versions,
 * update, delete / recover / purge, backup / restore), and the call certificates use to store
 * the secret that carries a certificate's private key. */
#ifndef VD_SECRETS_H
#define VD_SECRETS_H

#include "vd_http.h"
#include "vd_sc_common.h"

/* Largest secret value in bytes (Azure documents "25k bytes"; vaultd takes 25 KiB). */
#define VD_SECRET_MAX_VALUE 25600
#define VD_SECRET_MAX_CONTENT_TYPE 255

void vd_secrets_set(vd_req *r, const char *name, const char *version);
void vd_secrets_get(vd_req *r, const char *name, const char *version);
void vd_secrets_list(vd_req *r, const char *name, const char *version);
void vd_secrets_versions(vd_req *r, const char *name, const char *version);
void vd_secrets_update(vd_req *r, const char *name, const char *version);
void vd_secrets_delete(vd_req *r, const char *name, const char *version);
void vd_secrets_deleted_list(vd_req *r, const char *name, const char *version);
void vd_secrets_deleted_get(vd_req *r, const char *name, const char *version);
void vd_secrets_recover(vd_req *r, const char *name, const char *version);
void vd_secrets_purge(vd_req *r, const char *name, const char *version);
void vd_secrets_backup(vd_req *r, const char *name, const char *version);
void vd_secrets_restore(vd_req *r, const char *name, const char *version);

/* Stores a certificate's secret version (managed, kid = "keys/NAME/VERSION"), value encrypted
 * under the KEK. KV_ERR_CONFLICT if the name is soft-deleted. */
kv_rv vd_secrets_store_managed(vd_req *r, const char *name, const char *version,
                               const char *content_type, const uint8_t *value, size_t len,
                               const vd_sc_attrs *attrs, const char *tags);

#endif
