/* vd_admin.h - vaultd's instance administration API in the ARM style: create, show, list and
 * delete vaults (/admin/vaults[/{name}]) and managed HSM pools (/admin/managedHSMs[/{name}]).
 * Served on every host name of the instance; the caller must be a tenant administrator. */
#ifndef VD_ADMIN_H
#define VD_ADMIN_H

#include <stdbool.h>

#include "vd_http.h"

#define VD_MGMT_RESOURCE "https://management.azure.com"

/* Whether r is an administration request (first path segment "admin"). */
bool vd_admin_is_admin_path(const vd_req *r);
/* Answers an administration request (always replies exactly once). */
void vd_admin_handle(vd_req *r);

#endif
