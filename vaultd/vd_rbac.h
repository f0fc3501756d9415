/* vd_rbac.h - role-based access control of vault requests (Azure RBAC for vaults, Managed HSM
 * local RBAC for pools): the check made before every handler, the 403 reply in Azure's shape,
 * and the role assignment / role definition API (.../providers/Microsoft.Authorization/...).
 * See docs/rbac.md. */
#ifndef VD_RBAC_H
#define VD_RBAC_H

#include <stdbool.h>

#include "vd_http.h"
#include "vd_rbac_roles.h"
#include "vd_router.h"

/* Whether r's principal may run route on r's vault; name is the route's {n} capture (NULL for
 * collection routes). On false r has been answered (403 Forbidden / ForbiddenByRbac, or 500). */
bool vd_rbac_authorize(vd_req *r, const vd_route *route, const char *name);

/* Whether the principal's assignments on r's vault grant the full data action on object name
 * of collection coll (NULL: not an object / a collection route). */
kv_rv vd_rbac_check(vd_req *r, const char *action, const char *coll, const char *name,
                    bool *allowed);
/* Answers 403 Forbidden / ForbiddenByRbac for action on coll/name, in Azure's message shape. */
void vd_rbac_deny(vd_req *r, const char *action, const char *coll, const char *name);

/* vd_rbac_api.c: whether r's path is [/{scope}]/providers/Microsoft.Authorization/..., and
 * its handler (role assignments and role definitions; always replies). */
bool vd_rbac_is_api_path(const vd_req *r);
void vd_rbac_api_handle(vd_req *r);

#endif
