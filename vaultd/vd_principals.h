/* vd_principals.h - administration of a tenant's principals (the C1 contract):
 *
 *   POST   /admin/servicePrincipals {"displayName", "certificate"?: PEM}  create (201)
 *   GET    /admin/servicePrincipals[/{appId}]          list / show (no users)
 *   DELETE /admin/servicePrincipals/{appId}            delete (204), with its role assignments
 *   POST   /admin/users {"userPrincipalName", "displayName"?, "password"?}  create (201)
 *   GET    /admin/users[/{id|upn}], DELETE /admin/users/{id|upn}
 *   PUT    /admin/managedIdentities/{name} {"host", "userAssigned"?}  create (201) / rebind (200)
 *   GET    /admin/managedIdentities[/{name}], DELETE /admin/managedIdentities/{name}
 *   POST   /admin/tenants {"displayName"}              a new tenant with one service principal
 *   POST   /admin/tokenSigningKey/rotate               rotate the token-signing key (the JWKS)
 *
 * vd_admin.c authenticates (tenant administrators only) and dispatches here. Principal ids:
 * principalId == objectId == appId (client id); users: principalId == objectId. */
#ifndef VD_PRINCIPALS_H
#define VD_PRINCIPALS_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_http.h"

/* Whether r is /admin/{servicePrincipals|managedIdentities|tenants|tokenSigningKey}[/...]. */
bool vd_principals_is_path(const vd_req *r);
/* The action name for the authorization message (e.g. "servicePrincipals/write"). */
const char *vd_principals_action(const vd_req *r);
/* Answers the request (the caller is an authenticated tenant admin; r->vault = default vault). */
void vd_principals_handle(vd_req *r);

#endif
