/* vd_router.c - request dispatch: /healthz, identity endpoints, then vault requests in the
 * order Key Vault answers them: vault (Host) -> bearer token (401 challenge before the body is
 * looked at) -> route -> api-version -> role assignment -> handler. */
#include "vd_router.h"

#include <stdio.h>
#include <string.h>

#include "vd_admin.h"
#include "vd_audit.h"
#include "vd_hsm_keys.h"
#include "vd_identity.h"
#include "vd_keys.h"
#include "vd_rbac.h"
#include "vd_keys_lifecycle.h"
#include "vd_metrics.h"
#include "vd_certs.h"
#include "vd_secrets.h"

/* The route table. Order matters: literals before captures of the same shape. */
static const vd_route vd_routes[] = {
    /* HSM keys, managed HSM pools, /rng (vd_hsm_keys.c): these wrappers take -HSM keys and
     * pass software keys on to the handlers listed further down */
    {"POST", "keys/{n}/create", vd_hsm_keys_create, "keys/create/action"},
    {"PUT", "keys/{n}", vd_hsm_keys_import, "keys/import/action"},
    {"POST", "keys/{n}/sign", vd_hsm_keys_sign, "keys/sign/action"},
    {"POST", "keys/{n}/{v}/sign", vd_hsm_keys_sign, "keys/sign/action"},
    {"POST", "keys/{n}/encrypt", vd_hsm_keys_encrypt, "keys/encrypt/action"},
    {"POST", "keys/{n}/{v}/encrypt", vd_hsm_keys_encrypt, "keys/encrypt/action"},
    {"POST", "keys/{n}/decrypt", vd_hsm_keys_decrypt, "keys/decrypt/action"},
    {"POST", "keys/{n}/{v}/decrypt", vd_hsm_keys_decrypt, "keys/decrypt/action"},
    {"POST", "keys/{n}/wrapkey", vd_hsm_keys_wrap, "keys/wrap/action"},
    {"POST", "keys/{n}/{v}/wrapkey", vd_hsm_keys_wrap, "keys/wrap/action"},
    {"POST", "keys/{n}/unwrapkey", vd_hsm_keys_unwrap, "keys/unwrap/action"},
    {"POST", "keys/{n}/{v}/unwrapkey", vd_hsm_keys_unwrap, "keys/unwrap/action"},
    {"POST", "rng", vd_hsm_rng, "rng/action"},
    {"GET", "keys", vd_keys_list, "keys/read"},
    {"GET", "keys/", vd_keys_list, "keys/read"},
    {"GET", "keys/{n}/versions", vd_keys_versions, "keys/read"},
    /* key lifecycle (vd_keys_lifecycle.c, vd_keys_crypto.c, vd_backup.c, vd_rotation.c) */
    {"POST", "keys/restore", vd_keys_restore, "keys/restore/action"},
    {"PUT", "keys/{n}", vd_keys_import, "keys/import/action"},
    {"PATCH", "keys/{n}", vd_keys_update, "keys/update/action"},
    {"PATCH", "keys/{n}/{v}", vd_keys_update, "keys/update/action"},
    {"DELETE", "keys/{n}", vd_keys_delete, "keys/delete"},
    {"POST", "keys/{n}/backup", vd_keys_backup, "keys/backup/action"},
    {"POST", "keys/{n}/rotate", vd_keys_rotate, "keys/rotate/action"},
    {"GET", "keys/{n}/rotationpolicy", vd_keys_policy_get, "keyrotationpolicies/read"},
    {"PUT", "keys/{n}/rotationpolicy", vd_keys_policy_put, "keyrotationpolicies/write"},
    {"POST", "keys/{n}/encrypt", vd_keys_encrypt, "keys/encrypt/action"},
    {"POST", "keys/{n}/{v}/encrypt", vd_keys_encrypt, "keys/encrypt/action"},
    {"POST", "keys/{n}/decrypt", vd_keys_decrypt, "keys/decrypt/action"},
    {"POST", "keys/{n}/{v}/decrypt", vd_keys_decrypt, "keys/decrypt/action"},
    {"POST", "keys/{n}/wrapkey", vd_keys_wrap, "keys/wrap/action"},
    {"POST", "keys/{n}/{v}/wrapkey", vd_keys_wrap, "keys/wrap/action"},
    {"POST", "keys/{n}/unwrapkey", vd_keys_unwrap, "keys/unwrap/action"},
    {"POST", "keys/{n}/{v}/unwrapkey", vd_keys_unwrap, "keys/unwrap/action"},
    {"GET", "deletedkeys", vd_keys_deleted_list, "keys/read"},
    {"GET", "deletedkeys/", vd_keys_deleted_list, "keys/read"},
    {"GET", "deletedkeys/{n}", vd_keys_deleted_get, "keys/read"},
    {"POST", "deletedkeys/{n}/recover", vd_keys_recover, "keys/recover/action"},
    {"DELETE", "deletedkeys/{n}", vd_keys_purge, "keys/purge/action"},
    {"POST", "keys/{n}/create", vd_keys_create, "keys/create/action"},
    {"POST", "keys/{n}/sign", vd_keys_sign, "keys/sign/action"},
    {"POST", "keys/{n}/{v}/sign", vd_keys_sign, "keys/sign/action"},
    {"POST", "keys/{n}/verify", vd_keys_verify, "keys/verify/action"},
    {"POST", "keys/{n}/{v}/verify", vd_keys_verify, "keys/verify/action"},
    {"GET", "keys/{n}", vd_keys_get, "keys/read"},
    {"GET", "keys/{n}/{v}", vd_keys_get, "keys/read"},
    /* secrets (vd_secrets.c) */
    {"GET", "secrets", vd_secrets_list, "secrets/readMetadata/action"},
    {"GET", "secrets/", vd_secrets_list, "secrets/readMetadata/action"},
    {"POST", "secrets/restore", vd_secrets_restore, "secrets/restore/action"},
    {"GET", "secrets/{n}/versions", vd_secrets_versions, "secrets/readMetadata/action"},
    {"POST", "secrets/{n}/backup", vd_secrets_backup, "secrets/backup/action"},
    {"PUT", "secrets/{n}", vd_secrets_set, "secrets/setSecret/action"},
    {"GET", "secrets/{n}", vd_secrets_get, "secrets/getSecret/action"},
    {"GET", "secrets/{n}/{v}", vd_secrets_get, "secrets/getSecret/action"},
    {"PATCH", "secrets/{n}", vd_secrets_update, "secrets/update/action"},
    {"PATCH", "secrets/{n}/{v}", vd_secrets_update, "secrets/update/action"},
    {"DELETE", "secrets/{n}", vd_secrets_delete, "secrets/delete"},
    {"GET", "deletedsecrets", vd_secrets_deleted_list, "deletedsecrets/read"},
    {"GET", "deletedsecrets/", vd_secrets_deleted_list, "deletedsecrets/read"},
    {"GET", "deletedsecrets/{n}", vd_secrets_deleted_get, "deletedsecrets/read"},
    {"POST", "deletedsecrets/{n}/recover", vd_secrets_recover, "deletedsecrets/recover/action"},
    {"DELETE", "deletedsecrets/{n}", vd_secrets_purge, "deletedsecrets/delete"},
    /* certificates (vd_certs.c; backup / restore vd_certs_backup.c; contacts and issuers
     * vd_certs_issuers.c: literal routes before the {n} captures) */
    {"GET", "certificates/contacts", vd_certs_contacts_get, "certificates/read"},
    {"PUT", "certificates/contacts", vd_certs_contacts_set, "certificatecontacts/write"},
    {"DELETE", "certificates/contacts", vd_certs_contacts_delete, "certificatecontacts/write"},
    {"GET", "certificates/issuers", vd_certs_issuers_list, "certificatecas/read"},
    {"GET", "certificates/issuers/", vd_certs_issuers_list, "certificatecas/read"},
    {"GET", "certificates/issuers/{n}", vd_certs_issuer_get, "certificatecas/read"},
    {"PUT", "certificates/issuers/{n}", vd_certs_issuer_set, "certificatecas/write"},
    {"PATCH", "certificates/issuers/{n}", vd_certs_issuer_update, "certificatecas/write"},
    {"DELETE", "certificates/issuers/{n}", vd_certs_issuer_delete, "certificatecas/delete"},
    {"POST", "certificates/restore", vd_certs_restore, "certificates/restore/action"},
    {"POST", "certificates/{n}/backup", vd_certs_backup, "certificates/backup/action"},
    {"GET", "certificates", vd_certs_list, "certificates/read"},
    {"GET", "certificates/", vd_certs_list, "certificates/read"},
    {"GET", "certificates/{n}/versions", vd_certs_versions, "certificates/read"},
    {"GET", "certificates/{n}/policy", vd_certs_policy_get, "certificates/read"},
    {"PATCH", "certificates/{n}/policy", vd_certs_policy_update, "certificates/update/action"},
    {"GET", "certificates/{n}/pending", vd_certs_pending_get, "certificates/read"},
    {"DELETE", "certificates/{n}/pending", vd_certs_pending_delete, "certificates/update/action"},
    {"PATCH", "certificates/{n}/pending", vd_certs_pending_cancel, "certificates/update/action"},
    {"POST", "certificates/{n}/pending/merge", vd_certs_merge, "certificates/update/action"},
    {"POST", "certificates/{n}/create", vd_certs_create, "certificates/create/action"},
    {"POST", "certificates/{n}/import", vd_certs_import, "certificates/import/action"},
    {"GET", "certificates/{n}", vd_certs_get, "certificates/read"},
    {"GET", "certificates/{n}/{v}", vd_certs_get, "certificates/read"},
    {"PATCH", "certificates/{n}", vd_certs_update, "certificates/update/action"},
    {"PATCH", "certificates/{n}/{v}", vd_certs_update, "certificates/update/action"},
    {"DELETE", "certificates/{n}", vd_certs_delete, "certificates/delete"},
    {"GET", "deletedcertificates", vd_certs_deleted_list, "deletedcertificates/read"},
    {"GET", "deletedcertificates/", vd_certs_deleted_list, "deletedcertificates/read"},
    {"GET", "deletedcertificates/{n}", vd_certs_deleted_get, "deletedcertificates/read"},
    {"POST", "deletedcertificates/{n}/recover", vd_certs_recover,
     "deletedcertificates/recover/action"},
    {"DELETE", "deletedcertificates/{n}", vd_certs_purge, "deletedcertificates/delete"},
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
    size_t i;

    if (!vd_select_vault(r))
        return;
    if (vd_identity_authenticate(r, &r->vault, r->principal, why, sizeof(why)) != KV_OK) {
        vd_challenge(r, why);
        return;
    }
    if (!vd_hsm_route_allowed(r)) /* managed HSM pools: keys only */
        return;
    if (vd_rbac_is_api_path(r)) { /* [/{scope}]/providers/Microsoft.Authorization/... */
        if (vd_audit_begin(r, NULL)) /* audit "begin" record before any state change */
            vd_rbac_api_handle(r);
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
    /* RBAC (vd_rbac.c): deny by default; answers 403 ForbiddenByRbac itself */
    if (!vd_rbac_authorize(r, route, name))
        return;
    if (!vd_audit_begin(r, route->action)) /* audit "begin" record before any state change */
        return;
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
    if (vd_metrics_is_metrics_path(r)) {
        vd_metrics_handle(r);
        return;
    }
    if (vd_admin_is_admin_path(r)) {
        if (vd_audit_begin(r, NULL)) /* audit "begin" record before any state change */
            vd_admin_handle(r);
        return;
    }
    if (!vd_is_collection(r->segs[0]) && vd_identity_is_identity_path(r)) {
        vd_identity_handle(r);
        return;
    }
    vd_vault_request(r);
}
