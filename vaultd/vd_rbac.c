/* vd_rbac.c - the role check of every vault request: route action -> data action of the vault
 * kind, the caller's assignments on the vault (one indexed query), scope and role evaluation,
 * deny by default with Azure's ForbiddenByRbac reply. */
#include "vd_rbac.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_store_admin.h"
#include "vd_store_rbac.h"

static bool vd_rbac_is_mhsm(const vd_req *r)
{
    return strcmp(r->vault.resource, VD_MHSM_RESOURCE) == 0;
}

/* Whether one of the assignments grants action on coll/name. */
static bool vd_rbac_eval(const vd_role_assignment *as, size_t n, const char *action,
                         const char *coll, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (vd_rbac_scope_covers(as[i].scope, coll, name) &&
            vd_rbac_role_allows(vd_rbac_role_by_id(as[i].role_id), action))
            return true;
    return false;
}

kv_rv vd_rbac_check(vd_req *r, const char *action, const char *coll, const char *name,
                    bool *allowed)
{
    vd_role_assignment *as = NULL;
    size_t n = 0;
    kv_rv rv;

    if (r == NULL || action == NULL || allowed == NULL)
        return KV_ERR_INVALID_ARG;
    *allowed = false;
    rv = vd_store_rbac_for_principal(r->store, r->vault.name, r->principal, &as, &n);
    if (rv == KV_OK)
        *allowed = vd_rbac_eval(as, n, action, coll, name);
    free(as);
    return rv;
}

void vd_rbac_deny(vd_req *r, const char *action, const char *coll, const char *name)
{
    vd_vault_props props;
    char resource[512], msg[1400];
    bool mhsm = vd_rbac_is_mhsm(r);
    size_t i;
    json_t *err;

    snprintf(resource, sizeof(resource), "/providers/microsoft.keyvault/%s/%s%s%s%s%s",
             mhsm ? "managedhsms" : "vaults", r->vault.name, coll ? "/" : "", coll ? coll : "",
             coll && name ? "/" : "", coll && name ? name : "");
    for (i = 0; resource[i] != '\0'; i++)
        resource[i] = (char)tolower((unsigned char)resource[i]);
    if (vd_store_vault_props_get(r->store, r->vault.name, &props) != KV_OK)
        snprintf(props.location, sizeof(props.location), "local");
    snprintf(msg, sizeof(msg),
             "Caller is not authorized to perform action on resource.\r\n"
             "If role assignments, deny assignments or role definitions were changed recently, "
             "please observe propagation time.\r\n"
             "Caller: appid=%s;oid=%s;iss=https://sts.windows.net/%s/\r\n"
             "Action: '%s'\r\n"
             "Resource: '%s'\r\n"
             "Assignment: (not found)\r\n"
             "DenyAssignmentId: null\r\n"
             "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
             "%s: %s;location=%s\r\n",
             r->principal, r->principal, r->vault.tenant_id, action, resource,
             mhsm ? "ManagedHsm" : "Vault", r->vault.name, props.location);
    err = json_pack("{s:{s:s, s:s, s:{s:s}}}", "error", "code", "Forbidden", "message", msg,
                    "innererror", "code", "ForbiddenByRbac");
    vd_reply_json(r, 403, err);
}

bool vd_rbac_authorize(vd_req *r, const vd_route *route, const char *name)
{
    char action[VD_RBAC_ACTION_MAX];
    vd_role_assignment *as = NULL;
    bool mhsm, allowed = false;
    const char *coll;
    size_t n = 0;

    if (r == NULL || route == NULL)
        return false;
    mhsm = vd_rbac_is_mhsm(r);
    coll = vd_rbac_pattern_collection(route->pattern);
    if (!vd_rbac_data_action(mhsm, route->action, route->pattern, action, sizeof(action)) ||
        vd_store_rbac_for_principal(r->store, r->vault.name, r->principal, &as, &n) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Role assignments unreadable.");
        return false;
    }
    allowed = vd_rbac_eval(as, n, action, coll, name);
    /* Key Vault: the public-key operations of asymmetric keys (every vault key is RSA or EC)
     * are also allowed with keys/read. */
    if (!allowed && !mhsm &&
        (strcmp(route->action, "keys/encrypt/action") == 0 ||
         strcmp(route->action, "keys/wrap/action") == 0 ||
         strcmp(route->action, "keys/verify/action") == 0))
        allowed = vd_rbac_eval(as, n, VD_RBAC_VAULT_PREFIX "keys/read", coll, name);
    free(as);
    if (!allowed)
        vd_rbac_deny(r, action, coll, name);
    return allowed;
}
