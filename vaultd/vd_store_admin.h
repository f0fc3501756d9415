/* vd_store_admin.h - vaultd's store for instance administration: vault and managed HSM pool
 * records with their ARM-style properties (kind, sku, location, soft-delete retention, purge
 * protection), creation with the creator's role, deletion, and the tenant-admin check. */
#ifndef VD_STORE_ADMIN_H
#define VD_STORE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "kv_status.h"
#include "vd_store.h"

#define VD_KIND_VAULT "vault"
#define VD_KIND_MHSM "managedhsm"
/* Built-in role definition ids (Azure's): Key Vault Administrator, Managed HSM Administrator. */
#define VD_ROLE_ID_KV_ADMINISTRATOR "00482a5a-887f-4fb3-b363-3b7fe8e74483"
#define VD_ROLE_ID_MHSM_ADMINISTRATOR "a290e904-7015-4bba-90c8-60543313cdb4"

typedef struct vd_vault_props {
    char name[VD_ID_MAX];
    char tenant_id[VD_ID_MAX];
    char kind[16];      /* VD_KIND_VAULT or VD_KIND_MHSM */
    char sku[32];       /* standard | premium; pools: Standard_B1 */
    char location[64];  /* free text, "local" by default */
    int retention_days; /* soft-delete retention, 7..90 */
    bool purge_protection;
    bool is_default;
    long long created;
} vd_vault_props;

/* Adds the administration columns (idempotent; called from vd_store_init_schema). */
kv_rv vd_store_admin_migrate(vd_store *st);

/* The vault or pool called name (case-insensitive). NOT_FOUND if absent. */
kv_rv vd_store_vault_props_get(vd_store *st, const char *name, vd_vault_props *out);
/* All vaults (kind NULL = every kind) of tenant_id (NULL = every tenant), by name. *out is a
 * malloc'd array of *n records (free()). */
kv_rv vd_store_vault_props_list(vd_store *st, const char *tenant_id, const char *kind,
                                vd_vault_props **out, size_t *n);
/* Creates the record and gives each of the nadmins principals role_id on it, in one
 * transaction. KV_ERR_CONFLICT if the name is taken (by a vault or a pool). */
kv_rv vd_store_vault_create(vd_store *st, const vd_vault_props *p, const char *resource,
                            const char *const *admins, size_t nadmins, const char *role_id);
/* Switches purge protection on (it is never switched off). */
kv_rv vd_store_vault_enable_purge_protection(vd_store *st, const char *name);
/* Rows in every vault-scoped table (keys, secrets, certificates, deleted ones included) that
 * belong to the vault; role assignments are not objects. */
kv_rv vd_store_vault_object_count(vd_store *st, const char *name, long long *count);
/* The versions of every key stored in the vault (to drop them from the key cache): *out is a
 * malloc'd array of *n malloc'd strings (vd_store_strings_free). */
kv_rv vd_store_vault_key_versions(vd_store *st, const char *name, char ***out, size_t *n);
void vd_store_strings_free(char **s, size_t n);
/* Deletes the vault, its role assignments and every row of every vault-scoped table, in one
 * transaction. NOT_FOUND if absent. */
kv_rv vd_store_vault_delete(vd_store *st, const char *name);
/* Whether principal is an administrator of the tenant: principals.tenant_admin is set, or it
 * holds Key Vault Administrator on the instance's default vault. */
kv_rv vd_store_is_tenant_admin(vd_store *st, const char *principal, const char *default_vault,
                               bool *is_admin);

#endif
