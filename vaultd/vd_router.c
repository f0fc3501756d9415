/* vd_router.c - request dispatch: /healthz, identity endpoints, then vault requests in the
 * order Key Vault answers them: vault (Host) -> bearer token (401 challenge before the body is
 * looked at) -> route -> api-version -> role assignment -> handler. */
#include "vd_router.h"

#include <stdio.h>
#include <string.h>

#include "vd_identity.h"
#include "vd_keys.h"

/* The route table. Order matters: literals before captures of the same shape. */
static const vd_route vd_routes[] = {
    {"GET", "keys", vd_keys_list, "keys/read"},
    {"GET", "keys/", vd_keys_list, "keys/read"},
    {"GET", "keys/{n}/versions", vd_keys_versions, "keys/read"},
    {"POST", "keys/{n}/create", vd_keys_create, "keys/create/action"},
    {"POST", "keys/{n}/sign", vd_keys_sign, "keys/sign/action"},
    {"POST", "keys/{n}/{v}/sign", vd_keys_sign, "keys/sign/action"},
    {"POST", "keys/{n}/verify", vd_keys_verify, "keys/verify/action"},
    {"POST", "keys/{n}/{v}/verify", vd_keys_verify, "keys/verify/action"},
    {"GET", "keys/{n}", vd_keys_get, "keys/read"},
    {"GET", "keys/{n}/{v}", vd_keys_get, "keys/read"},
};

/* Collections Key Vault has; a request for one of them that no route takes is 501 (not yet
 * implemented here) rather than 404. */
static const char *const vd_collections[] = {
    "keys",    "deletedkeys", "secrets", "deletedsecrets", "certificates",   "deletedcertificates",
    "rng",     "providers",   "storage", "deletedstorage", "securitydomain", "backup",
    "restore",
};

static bool vd_is_collection(const char *seg)
{
    size_t i;

    for (i = 0; i < sizeof(vd_collections) / sizeof(vd_collections[0]); i++)
        if (strcmp(seg, vd_collections[i]) == 0)
            return true;
    return false;
}

/* Matches r's segments against pattern; fills name/version captures. */
static bool vd_route_match(const vd_req *r, const char *pattern, const char **name,
                           const char **version)
{
    char buf[128], *save = NULL, *tok;
    size_t i = 0;
    bool ok = true;

    *name = *version = NULL;
    snprintf(buf, sizeof(buf), "%s", pattern);
    /* count segments: a trailing '/' adds an empty segment */
    {
        size_t segs = 1;
        const char *p;

        for (p = pattern; *p != '\0'; p++)
            segs += *p == '/';
        if (segs != r->nsegs)
            return false;
    }
    if (buf[strlen(buf) - 1] == '/') /* "keys/": last segment must be empty */
        if (r->segs[r->nsegs - 1][0] != '\0')
            return false;
    for (tok = strtok_r(buf, "/", &save); tok != NULL && ok; tok = strtok_r(NULL, "/", &save)) {
        const char *seg = r->segs[i++];

        if (strcmp(tok, "{n}") == 0) {
            ok = seg[0] != '\0';
            *name = seg;
        } else if (strcmp(tok, "{v}") == 0) {
            *version = seg; /* may be empty: latest */
        } else {
            ok = strcmp(tok, seg) == 0;
        }
    }
    return ok;
}

/* Picks the vault from the Host header: NAME.vault.* / NAME.managedhsm.* select NAME, any
 * other host the default vault. false after answering 404. */
static bool vd_select_vault(vd_req *r)
{
    char name[VD_ID_MAX] = "";
    const char *h = r->hostname, *dot = strchr(h, '.');
    kv_rv rv;

    if (dot != NULL && dot > h && (size_t)(dot - h) < sizeof(name) &&
        (strncmp(dot + 1, "vault.", 6) == 0 || strncmp(dot + 1, "managedhsm.", 11) == 0)) {
        memcpy(name, h, (size_t)(dot - h));
        name[dot - h] = '\0';
        rv = vd_store_get_vault(r->store, name, &r->vault);
    } else {
        rv = vd_store_get_vault(r->store, r->ctx->default_vault, &r->vault);
    }
    if (rv == KV_OK)
        return true;
    if (rv == KV_ERR_NOT_FOUND)
        vd_reply_error(r, 404, "VaultNotFound", NULL, "The vault %.64s was not found.",
                       name[0] ? name : r->ctx->default_vault);
    else
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be read.");
    return false;
}

static void vd_challenge(vd_req *r, const char *why)
{
    char hdr[700];

    snprintf(hdr, sizeof(hdr), "Bearer authorization=\"%s/%s\", resource=\"%s\"", r->ctx->authority,
             r->vault.tenant_id, r->vault.resource);
    vd_add_header(r, "WWW-Authenticate", hdr);
    if (why == NULL || why[0] == '\0')
        vd_reply_error(r, 401, "Unauthorized", NULL,
                       "AKV10000: Request is missing a Bearer or PoP token.");
    else
        vd_reply_error(r, 401, "Unauthorized", NULL, "%s", why);
}

static void vd_vault_request(vd_req *r)
{
    const vd_route *route = NULL;
    const char *name = NULL, *version = NULL;
    char why[512];
    bool has = false;
    size_t i;

    if (!vd_select_vault(r))
        return;
    if (vd_identity_authenticate(r, &r->vault, r->principal, why, sizeof(why)) != KV_OK) {
        vd_challenge(r, why);
        return;
    }
    for (i = 0; i < sizeof(vd_routes) / sizeof(vd_routes[0]) && route == NULL; i++)
        if (strcmp(vd_routes[i].method, r->method) == 0 &&
            vd_route_match(r, vd_routes[i].pattern, &name, &version))
            route = &vd_routes[i];
    if (route == NULL) {
        if (vd_is_collection(r->segs[0])) {
            vd_reply_error(r, 501, "NotImplemented", NULL,
                           "The operation %s %.200s is not implemented by vaultd yet.", r->method,
                           r->path);
            return;
        }
        vd_reply_error(r, 404, "NotFound", NULL, "The requested resource was not found.");
        return;
    }
    if (vd_req_param(r, "api-version") == NULL) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The api-version query parameter is missing.");
        return;
    }
    /* Deny by default: for now any role assignment on the vault grants every action; the
     * route's data action is where finer RBAC plugs in. */
    if (vd_store_has_role(r->store, r->vault.name, r->principal, &has) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Role assignments unreadable.");
        return;
    }
    if (!has) {
        vd_reply_error(r, 403, "Forbidden", "ForbiddenByRbac",
                       "Caller is not authorized to perform action on resource. Caller: "
                       "appid=%s. Action: 'Microsoft.KeyVault/vaults/%s'. Vault: %s. "
                       "Assignment: (not found).",
                       r->principal, route->action, r->vault.name);
        return;
    }
    route->fn(r, name, version);
}

void vd_router_dispatch(vd_req *r)
{
    if (r->nsegs == 1 && strcmp(r->segs[0], "healthz") == 0) {
        if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
            vd_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
        else
            vd_reply_error(r, 405, "MethodNotAllowed", NULL, "Use GET.");
        return;
    }
    if (!vd_is_collection(r->segs[0]) && vd_identity_is_identity_path(r)) {
        vd_identity_handle(r);
        return;
    }
    vd_vault_request(r);
}
