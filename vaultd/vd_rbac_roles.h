/* vd_rbac_roles.h - the built-in role definitions of Azure Key Vault (Azure RBAC) and Managed HSM
 * (local RBAC) with their real ids and data actions, Azure's wildcard matching of data actions,
 * the mapping of vaultd's route actions to the full data action of a vault or a managed HSM
 * pool, and role assignment scopes. Pure functions, no I/O (unit-tested by tests/unit/test_rbac.c).
 */
#ifndef VD_RBAC_ROLES_H
#define VD_RBAC_ROLES_H

#include <stdbool.h>
#include <stddef.h>

#define VD_RBAC_VAULT_PREFIX "Microsoft.KeyVault/vaults/"
#define VD_RBAC_MHSM_PREFIX "Microsoft.KeyVault/managedHsm/"
#define VD_RBAC_ACTION_MAX 160
#define VD_RBAC_SCOPE_MAX 192 /* "/certificates/" + a 127-character name */

/* A built-in role definition. The action lists are NULL-terminated. */
typedef struct vd_role_def {
    const char *id;   /* GUID */
    const char *name; /* roleName, e.g. "Key Vault Crypto User" */
    bool mhsm;        /* a Managed HSM local RBAC role (else an Azure RBAC Key Vault role) */
    const char *description;
    const char *const *data_actions;
    const char *const *not_data_actions;
} vd_role_def;

size_t vd_rbac_role_count(void);
const vd_role_def *vd_rbac_role_at(size_t i);
/* By GUID, or by a full id ending in ".../roleDefinitions/GUID"; case-insensitive. NULL if
 * none. */
const vd_role_def *vd_rbac_role_by_id(const char *id);
/* By roleName (case-insensitive), NULL if none. */
const vd_role_def *vd_rbac_role_by_name(const char *name);

/* Azure's data action match: case-insensitive, '*' matches any run of characters ('/'
 * included). */
bool vd_rbac_action_match(const char *pattern, const char *action);
/* Whether the role grants action (a full data action): one data action matches and no not-data
 * action does. */
bool vd_rbac_role_allows(const vd_role_def *d, const char *action);

/* The full data action of a route for a vault (mhsm false) or a managed HSM pool: route_action
 * is the route table's action ("keys/read"), pattern its path pattern ("deletedkeys/{n}"; the
 * deleted-object routes map to other actions). false if out is too small. */
bool vd_rbac_data_action(bool mhsm, const char *route_action, const char *pattern, char *out,
                         size_t outlen);

/* The object collection a route pattern is about: "keys", "secrets", "certificates" (the
 * deleted-object collections map to theirs), or NULL (e.g. "rng"). */
const char *vd_rbac_pattern_collection(const char *pattern);

/* Normalises a role assignment scope into out: "/" (the vault), "/keys" (every key), or
 * "/keys/NAME" (also secrets and certificates when allow_sc). Accepts repeated or trailing
 * slashes and any case of the collection. false if the scope is not one of these. */
bool vd_rbac_scope_normalize(const char *scope, bool allow_sc, char *out, size_t outlen);
/* Whether an assignment at (normalised) scope applies to a request on collection coll (NULL =
 * none) and object name (NULL = the collection: lists, restore). Names compare
 * case-insensitively. */
bool vd_rbac_scope_covers(const char *scope, const char *coll, const char *name);

#endif
