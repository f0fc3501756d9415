/* vd_rbac_api.c - the Managed HSM data-plane role API, served for vaults too:
 *   PUT|GET|DELETE [/{scope}]/providers/Microsoft.Authorization/roleAssignments/{guid}
 *   GET [/{scope}]/providers/Microsoft.Authorization/roleAssignments[?$filter=...]
 *   GET [/{scope}]/providers/Microsoft.Authorization/roleDefinitions[/{guid}]
 * scope "/" (the vault or pool), "/keys", "/keys/NAME" (vaults also secrets / certificates).
 * Allowed for tenant administrators and for callers holding the role API's data action at the
 * scope (roleAssignments/{read,write,delete}/action, roleDefinitions/read/action). */
#include "vd_rbac.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vd_store_admin.h"
#include "vd_store_rbac.h"

#define VD_AUTHZ "Microsoft.Authorization"
#define VD_RA_TYPE "Microsoft.Authorization/roleAssignments"
#define VD_RD_TYPE "Microsoft.Authorization/roleDefinitions"

/* A parsed role API request. */
typedef struct vd_rbac_call {
    bool mhsm;
    char scope[VD_RBAC_SCOPE_MAX]; /* normalised */
    char coll[16];                 /* collection of the scope, "" for "/" */
    char name[VD_NAME_MAX];        /* object of the scope, "" for none */
    bool assignments;              /* roleAssignments (else roleDefinitions) */
    const char *id;                /* the {guid} segment or NULL */
} vd_rbac_call;

static size_t vd_rbac_providers_at(const vd_req *r)
{
    size_t i;

    for (i = 0; i + 1 < r->nsegs; i++)
        if (strcasecmp(r->segs[i], "providers") == 0 && strcasecmp(r->segs[i + 1], VD_AUTHZ) == 0)
            return i;
    return r->nsegs;
}

bool vd_rbac_is_api_path(const vd_req *r)
{
    return r != NULL && vd_rbac_providers_at(r) < r->nsegs;
}

static bool vd_is_guid(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Parses the path into c; false after answering. */
static bool vd_rbac_parse(vd_req *r, vd_rbac_call *c)
{
    char raw[VD_RBAC_SCOPE_MAX] = "";
    size_t at = vd_rbac_providers_at(r), i, len = 0, rest;
    const char *slash;

    memset(c, 0, sizeof(*c));
    c->mhsm = strcmp(r->vault.resource, VD_MHSM_RESOURCE) == 0;
    for (i = 0; i < at; i++) {
        int n = snprintf(raw + len, sizeof(raw) - len, "/%s", r->segs[i]);

        if (n < 0 || (size_t)n >= sizeof(raw) - len)
            break;
        len += (size_t)n;
    }
    if (i < at || !vd_rbac_scope_normalize(raw, !c->mhsm, c->scope, sizeof(c->scope))) {
        vd_reply_error(r, 400, "BadParameter", "InvalidScope",
                       "The scope '%.200s' is not valid. Use '/', '/keys' or '/keys/NAME'%s.",
                       raw[0] ? raw : "/",
                       c->mhsm ? "" : " (also /secrets/NAME, /certificates/NAME)");
        return false;
    }
    if (strcmp(c->scope, "/") != 0) {
        slash = strchr(c->scope + 1, '/');
        snprintf(c->coll, sizeof(c->coll), "%.*s",
                 (int)(slash ? (size_t)(slash - c->scope - 1) : strlen(c->scope + 1)),
                 c->scope + 1);
        if (slash != NULL)
            snprintf(c->name, sizeof(c->name), "%s", slash + 1);
    }
    rest = r->nsegs - at - 2; /* segments after providers/Microsoft.Authorization */
    if (rest >= 1 && strcasecmp(r->segs[at + 2], "roleAssignments") == 0)
        c->assignments = true;
    else if (rest < 1 || strcasecmp(r->segs[at + 2], "roleDefinitions") != 0)
        rest = 0;
    if (rest == 0 || rest > 2) {
        vd_reply_error(r, 404, "NotFound", NULL, "The requested resource was not found.");
        return false;
    }
    if (rest == 2 && r->segs[at + 3][0] != '\0')
        c->id = r->segs[at + 3];
    return true;
}

static json_t *vd_rbac_def_json(const vd_role_def *d)
{
    json_t *da = json_array(), *nda = json_array();
    char id[160];
    size_t i;

    for (i = 0; d->data_actions[i] != NULL; i++)
        json_array_append_new(da, json_string(d->data_actions[i]));
    for (i = 0; d->not_data_actions[i] != NULL; i++)
        json_array_append_new(nda, json_string(d->not_data_actions[i]));
    snprintf(id, sizeof(id), "%s/providers/" VD_RD_TYPE "/%s", d->mhsm ? "Microsoft.KeyVault" : "",
             d->id);
    return json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:[{s:[], s:[], s:o, s:o}], s:[s]}}", "id", id, "name",
        d->id, "type", VD_RD_TYPE, "properties", "roleName", d->name, "description", d->description,
        "type", d->mhsm ? "AKVBuiltInRole" : "BuiltInRole", "permissions", "actions", "notActions",
        "dataActions", da, "notDataActions", nda, "assignableScopes", "/");
}

static json_t *vd_rbac_assignment_json(const vd_role_assignment *a, bool mhsm)
{
    char id[VD_RBAC_SCOPE_MAX + 128], def[160];

    snprintf(id, sizeof(id), "%s/providers/" VD_RA_TYPE "/%s",
             strcmp(a->scope, "/") == 0 ? "" : a->scope, a->id);
    snprintf(def, sizeof(def), "%s/providers/" VD_RD_TYPE "/%s", mhsm ? "Microsoft.KeyVault" : "",
             a->role_id);
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "id", id, "name", a->id, "type",
                     VD_RA_TYPE, "properties", "scope", a->scope, "roleDefinitionId", def,
                     "principalId", a->principal_id);
}

/* Tenant admins may always use the role API; others need the action at the call's scope. */
static bool vd_rbac_api_allowed(vd_req *r, const vd_rbac_call *c, const char *what)
{
    char action[VD_RBAC_ACTION_MAX];
    bool ok = false;

    snprintf(action, sizeof(action), "%s%s", c->mhsm ? VD_RBAC_MHSM_PREFIX : VD_RBAC_VAULT_PREFIX,
             what);
    if (vd_store_is_tenant_admin(r->store, r->principal, r->ctx->default_vault, &ok) != KV_OK ||
        (!ok && vd_rbac_check(r, action, c->coll[0] ? c->coll : NULL, c->name[0] ? c->name : NULL,
                              &ok) != KV_OK)) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Role assignments unreadable.");
        return false;
    }
    if (!ok)
        vd_rbac_deny(r, action, c->coll[0] ? c->coll : NULL, c->name[0] ? c->name : NULL);
    return ok;
}

/* ---- role definitions ---- */

static void vd_rbac_definitions(vd_req *r, const vd_rbac_call *c)
{
    const char *filter = vd_req_param(r, "$filter");
    bool custom = strcmp(r->method, "PUT") == 0 || strcmp(r->method, "DELETE") == 0;
    char want[128] = "";
    json_t *arr;
    size_t i;

    if (strcmp(r->method, "GET") != 0) { /* custom role definitions: not supported */
        vd_reply_error(r, custom ? 501 : 405, custom ? "NotImplemented" : "MethodNotAllowed", NULL,
                       "vaultd serves the built-in role definitions only (no custom roles).");
        return;
    }
    /* vaults: role definitions are readable by every caller of the tenant (as in Azure) */
    if (c->mhsm && !vd_rbac_api_allowed(r, c, "roleDefinitions/read/action"))
        return;
    if (c->id != NULL) {
        const vd_role_def *d = vd_rbac_role_by_id(c->id);

        if (d == NULL || d->mhsm != c->mhsm) {
            vd_reply_error(r, 404, "RoleDefinitionNotFound", NULL,
                           "The role definition '%.64s' was not found.", c->id);
            return;
        }
        vd_reply_json(r, 200, vd_rbac_def_json(d));
        return;
    }
    if (filter != NULL) { /* roleName eq 'NAME' */
        const char *q = strchr(filter, '\'');

        if (strncasecmp(filter, "roleName eq '", 13) != 0 || q == NULL ||
            sscanf(q + 1, "%127[^']", want) != 1) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Unsupported $filter; use roleName eq 'NAME'.");
            return;
        }
    }
    arr = json_array();
    for (i = 0; i < vd_rbac_role_count(); i++) {
        const vd_role_def *d = vd_rbac_role_at(i);

        if (d->mhsm == c->mhsm && (want[0] == '\0' || strcasecmp(want, d->name) == 0))
            json_array_append_new(arr, vd_rbac_def_json(d));
    }
    vd_reply_json(r, 200, json_pack("{s:o}", "value", arr));
}

/* ---- role assignments ---- */

static void vd_rbac_assignment_put(vd_req *r, const vd_rbac_call *c)
{
    vd_role_assignment a, existing;
    const char *defid = NULL, *principal = NULL;
    const vd_role_def *d;
    json_t *body, *props;
    bool created = false;
    size_t i;
    kv_rv rv;

    if (!vd_is_guid(c->id)) {
        vd_reply_error(r, 400, "BadParameter", "InvalidRoleAssignmentId",
                       "The role assignment ID '%.64s' is not valid. The role assignment ID "
                       "must be a GUID.",
                       c->id);
        return;
    }
    body = vd_req_json_body(r);
    if (body == NULL)
        return;
    props = json_object_get(body, "properties");
    defid = json_string_value(json_object_get(props, "roleDefinitionId"));
    principal = json_string_value(json_object_get(props, "principalId"));
    if (defid == NULL || principal == NULL || principal[0] == '\0' ||
        strlen(principal) >= VD_ID_MAX) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "properties.roleDefinitionId and properties.principalId are required.");
        goto done;
    }
    for (i = 0; principal[i] != '\0'; i++)
        if (!isalnum((unsigned char)principal[i]) && principal[i] != '-') {
            vd_reply_error(r, 400, "BadParameter", NULL, "properties.principalId is not valid.");
            goto done;
        }
    d = vd_rbac_role_by_id(defid);
    if (d == NULL || d->mhsm != c->mhsm) {
        vd_reply_error(r, 400, "BadParameter", "RoleDefinitionDoesNotExist",
                       "The specified role definition '%.160s' does not exist%s.", defid,
                       d != NULL ? (c->mhsm ? " for managed HSM pools" : " for vaults") : "");
        goto done;
    }
    memset(&a, 0, sizeof(a));
    for (i = 0; c->id[i] != '\0'; i++)
        a.id[i] = (char)tolower((unsigned char)c->id[i]);
    snprintf(a.scope, sizeof(a.scope), "%s", c->scope);
    snprintf(a.principal_id, sizeof(a.principal_id), "%s", principal);
    snprintf(a.role_id, sizeof(a.role_id), "%s", d->id);
    rv = vd_store_rbac_put(r->store, r->vault.name, &a, &created, &existing);
    if (rv == KV_ERR_CONFLICT) {
        if (strcasecmp(existing.id, a.id) == 0)
            vd_reply_error(r, 409, "Conflict", "RoleAssignmentUpdateNotPermitted",
                           "The role assignment '%s' exists with another principal, role or "
                           "scope (or in another vault); role assignments cannot be updated.",
                           a.id);
        else
            vd_reply_error(r, 409, "Conflict", "RoleAssignmentExists",
                           "The role assignment already exists. The ID of the existing role "
                           "assignment is %s.",
                           existing.id);
        goto done;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The role assignment was not saved.");
        goto done;
    }
    vd_reply_json(r, 201, vd_rbac_assignment_json(&a, c->mhsm));
done:
    json_decref(body);
}

/* principalId eq 'X' / assignedTo('X') and atScope() of $filter. */
static bool vd_rbac_filter(const char *f, char *principal, size_t plen, bool *at_scope)
{
    const char *p;

    principal[0] = '\0';
    *at_scope = false;
    if (f == NULL)
        return true;
    if (strstr(f, "atScope()") != NULL)
        *at_scope = true;
    p = strstr(f, "principalId eq '");
    if (p != NULL)
        p += strlen("principalId eq '");
    else if ((p = strstr(f, "assignedTo('")) != NULL)
        p += strlen("assignedTo('");
    if (p != NULL) {
        size_t n = strcspn(p, "'");

        if (p[n] != '\'' || n == 0 || n >= plen)
            return false;
        memcpy(principal, p, n);
        principal[n] = '\0';
        return true;
    }
    return *at_scope;
}

static void vd_rbac_assignment_list(vd_req *r, const vd_rbac_call *c)
{
    char principal[VD_ID_MAX];
    vd_role_assignment *as = NULL;
    bool at_scope = false;
    json_t *arr;
    size_t n = 0, i;

    if (!vd_rbac_filter(vd_req_param(r, "$filter"), principal, sizeof(principal), &at_scope)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Unsupported $filter; use atScope(), principalId eq 'ID' or "
                       "assignedTo('ID').");
        return;
    }
    if (vd_store_rbac_list(r->store, r->vault.name, principal[0] ? principal : NULL, &as, &n) !=
        KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Role assignments unreadable.");
        return;
    }
    arr = json_array();
    for (i = 0; i < n; i++) {
        bool keep = at_scope ? strcasecmp(as[i].scope, c->scope) == 0
                    : strcmp(c->scope, "/") == 0
                        ? true
                        : vd_rbac_scope_covers(as[i].scope, c->coll, c->name[0] ? c->name : NULL);

        if (keep)
            json_array_append_new(arr, vd_rbac_assignment_json(&as[i], c->mhsm));
    }
    free(as);
    vd_reply_json(r, 200, json_pack("{s:o}", "value", arr));
}

static void vd_rbac_assignments(vd_req *r, const vd_rbac_call *c)
{
    vd_role_assignment a;
    bool get = strcmp(r->method, "GET") == 0, put = strcmp(r->method, "PUT") == 0,
         del = strcmp(r->method, "DELETE") == 0;
    kv_rv rv;

    if (!(get || (c->id != NULL && (put || del)))) {
        vd_reply_error(r, 405, "MethodNotAllowed", NULL, "The method %s is not allowed here.",
                       r->method);
        return;
    }
    if (!vd_rbac_api_allowed(r, c,
                             get   ? "roleAssignments/read/action"
                             : put ? "roleAssignments/write/action"
                                   : "roleAssignments/delete/action"))
        return;
    if (c->id == NULL) {
        vd_rbac_assignment_list(r, c);
        return;
    }
    if (put) {
        vd_rbac_assignment_put(r, c);
        return;
    }
    rv = vd_store_rbac_get(r->store, r->vault.name, c->id, &a);
    if (rv == KV_OK && del)
        rv = vd_store_rbac_delete(r->store, r->vault.name, a.id);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_reply_error(r, 404, "RoleAssignmentNotFound", NULL,
                       "Requested role assignment not found (Activity ID: %s).", r->request_id);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Role assignments unreadable.");
        return;
    }
    vd_reply_json(r, 200, vd_rbac_assignment_json(&a, c->mhsm));
}

void vd_rbac_api_handle(vd_req *r)
{
    vd_rbac_call c;

    if (r == NULL)
        return;
    if (vd_req_param(r, "api-version") == NULL) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The api-version query parameter is missing.");
        return;
    }
    if (!vd_rbac_parse(r, &c))
        return;
    if (c.assignments)
        vd_rbac_assignments(r, &c);
    else
        vd_rbac_definitions(r, &c);
}
