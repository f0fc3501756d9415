/* vd_store_rbac.h - SQLite for role assignments (table role_assignments of vd_store.c): the
 * per-request lookup of a principal's assignments (one indexed query), and the assignment API's
 * get / put / delete / list. Role definitions are built in (vd_rbac_roles.c), not stored. */
#ifndef VD_STORE_RBAC_H
#define VD_STORE_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "kv_status.h"
#include "vd_rbac_roles.h"
#include "vd_store.h"

typedef struct vd_role_assignment {
    char id[VD_ID_MAX];            /* the assignment's name (GUID) */
    char scope[VD_RBAC_SCOPE_MAX]; /* normalised: "/", "/keys", "/keys/NAME", ... */
    char principal_id[VD_ID_MAX];
    char role_id[VD_ID_MAX]; /* role definition GUID */
} vd_role_assignment;

/* Indexes for the assignment API (idempotent; called from vd_store_init_schema). */
kv_rv vd_store_rbac_migrate(vd_store *st);

/* Every assignment of principal on vault (one query on role_assignments_by_principal). *out is
 * a malloc'd array of *n (free()); NULL when *n is 0. */
kv_rv vd_store_rbac_for_principal(vd_store *st, const char *vault, const char *principal,
                                  vd_role_assignment **out, size_t *n);
/* The assignment id of vault; NOT_FOUND if absent. */
kv_rv vd_store_rbac_get(vd_store *st, const char *vault, const char *id, vd_role_assignment *out);
/* Creates a->id on vault. Same id with the same content: KV_OK (*created false). KV_ERR_CONFLICT
 * when the id is taken by another assignment, or the same principal, role and scope are
 * already assigned under another id (*existing gets that one). */
kv_rv vd_store_rbac_put(vd_store *st, const char *vault, const vd_role_assignment *a, bool *created,
                        vd_role_assignment *existing);
/* NOT_FOUND if absent. */
kv_rv vd_store_rbac_delete(vd_store *st, const char *vault, const char *id);
/* Assignments of vault, optionally only of principal (NULL = all), by scope then id. */
kv_rv vd_store_rbac_list(vd_store *st, const char *vault, const char *principal,
                         vd_role_assignment **out, size_t *n);
/* Extra roles a new managed HSM pool's creator gets besides Managed HSM Administrator, so the
 * creator can use keys (vaultd convenience; Azure gives only the Administrator role): Managed
 * HSM Crypto User and Crypto Officer at "/". No-op for vaults. Runs inside the caller's
 * transaction. */
kv_rv vd_store_rbac_grant_creator(vd_store *st, const char *vault, const char *kind,
                                  const char *principal);

#endif
