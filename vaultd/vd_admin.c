/* vd_admin.c - the administration API (ARM style, like Microsoft.KeyVault's management plane):
 *
 *   GET    /admin/vaults                 list      GET    /admin/managedHSMs
 *   PUT    /admin/vaults/{name}          create    PUT    /admin/managedHSMs/{name}
 *   GET    /admin/vaults/{name}          show      GET    /admin/managedHSMs/{name}
 *   DELETE /admin/vaults/{name}[?force=true]       DELETE /admin/managedHSMs/{name}[?force=true]
 *
 * Bearer token of the instance's tenant (audience the vault, managed HSM or management
 * resource); the caller must be a tenant administrator (vd_store_is_tenant_admin). The creator
 * gets the Administrator role on the new vault or pool. api-version is accepted, not required. */
#include "vd_admin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vd_identity.h"
#include "vd_keycache.h"
#include "vd_principals.h"
#include "vd_store_admin.h"

#define VD_ADMIN_MAX_ADMINS 8

/* What a collection of the API is about. */
typedef struct vd_admin_kind {
    const char *segment;   /* "vaults" / "managedHSMs" */
    const char *kind;      /* VD_KIND_* */
    const char *type;      /* ARM resource type */
    const char *resource;  /* token audience of the data plane */
    const char *host_part; /* NAME.<host_part>.localhost */
    const char *uri_prop;  /* vaultUri / hsmUri */
    const char *role_id;   /* role given to the creator */
} vd_admin_kind;

static const vd_admin_kind vd_kinds[] = {
    {"vaults", VD_KIND_VAULT, "Microsoft.KeyVault/vaults", VD_VAULT_RESOURCE, "vault", "vaultUri",
     VD_ROLE_ID_KV_ADMINISTRATOR},
    {"managedHSMs", VD_KIND_MHSM, "Microsoft.KeyVault/managedHSMs", VD_MHSM_RESOURCE, "managedhsm",
     "hsmUri", VD_ROLE_ID_MHSM_ADMINISTRATOR},
};

bool vd_admin_is_admin_path(const vd_req *r)
{
    return r != NULL && r->nsegs >= 1 && strcmp(r->segs[0], "admin") == 0;
}

/* Azure's rule: 3-24 of [0-9A-Za-z-], starts with a letter, ends with a letter or digit, no
 * consecutive hyphens. */
static bool vd_vault_name_ok(const char *name)
{
    size_t i, len = strlen(name);

    if (len < 3 || len > 24 || !isalpha((unsigned char)name[0]) || name[len - 1] == '-')
        return false;
    for (i = 0; i < len; i++) {
        if (!isalnum((unsigned char)name[i]) && name[i] != '-')
            return false;
        if (name[i] == '-' && name[i + 1] == '-')
            return false;
    }
    return true;
}

static const char *vd_sku_family(const vd_admin_kind *k)
{
    return strcmp(k->kind, VD_KIND_MHSM) == 0 ? "B" : "A";
}

/* The ARM resource for one vault or pool. */
static json_t *vd_admin_resource(const vd_req *r, const vd_admin_kind *k, const vd_vault_props *p)
{
    char id[200], uri[300], ts[32];
    bool mhsm = strcmp(k->kind, VD_KIND_MHSM) == 0;
    const char *sku = p->sku;
    time_t created = (time_t)p->created;
    struct tm tm;
    json_t *props;

    snprintf(id, sizeof(id), "/providers/%s/%s", k->type, p->name);
    snprintf(uri, sizeof(uri), "https://%s.%s.localhost:%d/", p->name, k->host_part,
             r->ctx->cfg.port);
    if (mhsm && (strcasecmp(sku, "standard") == 0 || sku[0] == '\0'))
        sku = "Standard_B1";
    gmtime_r(&created, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    props =
        json_pack("{s:s, s:{s:s, s:s}, s:s, s:b, s:i, s:b, s:s}", "tenantId", p->tenant_id, "sku",
                  "family", vd_sku_family(k), "name", sku, k->uri_prop, uri, "enableSoftDelete", 1,
                  "softDeleteRetentionInDays", p->retention_days, "enablePurgeProtection",
                  p->purge_protection, "provisioningState", "Succeeded");
    if (props == NULL)
        return NULL;
    if (mhsm)
        json_object_set_new(props, "statusMessage",
                            json_string("The Managed HSM is provisioned and ready to use."));
    else
        json_object_set_new(props, "enableRbacAuthorization", json_true());
    json_object_set_new(props, "isDefault", json_boolean(p->is_default)); /* vaultd extension */
    return json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:s}, s:o}", "id", id, "name", p->name, "type",
                     k->type, "location", p->location, "tags", "systemData", "createdAt", ts,
                     "properties", props);
}

static void vd_admin_not_found(vd_req *r, const vd_admin_kind *k, const char *name)
{
    vd_reply_error(r, 404, "ResourceNotFound", NULL,
                   "The Resource '%s/%.64s' was not found in this vaultd instance.", k->type, name);
}

/* Reads an optional boolean member; false after answering 400. */
static bool vd_opt_bool(vd_req *r, const json_t *obj, const char *member, int *out)
{
    const json_t *v = json_object_get(obj, member);

    *out = -1;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        vd_reply_error(r, 400, "BadRequest", NULL, "properties.%s must be a boolean.", member);
        return false;
    }
    *out = json_is_true(v) ? 1 : 0;
    return true;
}

/* The create/update request: properties that were given (-1 / "" = not given). */
typedef struct vd_admin_put {
    char location[64];
    char sku[32];
    int retention_days;
    int purge_protection;
    const char *admins[VD_ADMIN_MAX_ADMINS];
    size_t nadmins;
} vd_admin_put;

static bool vd_parse_sku(vd_req *r, const vd_admin_kind *k, const json_t *props, vd_admin_put *q)
{
    static const char *const vault_skus[] = {"standard", "premium"};
    static const char *const mhsm_skus[] = {"Standard_B1", "Custom_B32", "Custom_B6"};
    bool mhsm = strcmp(k->kind, VD_KIND_MHSM) == 0;
    const char *const *skus = mhsm ? mhsm_skus : vault_skus;
    size_t i, n = mhsm ? 3 : 2;
    const json_t *sku = json_object_get(props, "sku"), *name;

    if (sku == NULL || json_is_null(sku))
        return true;
    name = json_object_get(sku, "name");
    for (i = 0; json_is_string(name) && i < n; i++)
        if (strcasecmp(json_string_value(name), skus[i]) == 0) {
            snprintf(q->sku, sizeof(q->sku), "%s", skus[i]);
            return true;
        }
    vd_reply_error(r, 400, "BadRequest", NULL,
                   mhsm ? "properties.sku.name must be Standard_B1, Custom_B32 or Custom_B6."
                        : "properties.sku.name must be standard or premium.");
    return false;
}

/* Parses the PUT body (ARM resource: location, properties{...}); false after a 400. */
static bool vd_parse_put(vd_req *r, const vd_admin_kind *k, const json_t *body, vd_admin_put *q)
{
    const json_t *loc = json_object_get(body, "location"), *props, *v, *ids;
    int soft_delete;
    size_t i;

    memset(q, 0, sizeof(*q));
    q->retention_days = -1;
    q->purge_protection = -1;
    if (loc != NULL && !json_is_null(loc)) {
        if (!json_is_string(loc) || json_string_length(loc) == 0 ||
            json_string_length(loc) >= sizeof(q->location)) {
            vd_reply_error(r, 400, "BadRequest", NULL, "location must be a short string.");
            return false;
        }
        snprintf(q->location, sizeof(q->location), "%s", json_string_value(loc));
    }
    props = json_object_get(body, "properties");
    if (props == NULL || json_is_null(props))
        return true;
    if (!json_is_object(props)) {
        vd_reply_error(r, 400, "BadRequest", NULL, "properties must be an object.");
        return false;
    }
    v = json_object_get(props, "tenantId");
    if (v != NULL && !json_is_null(v) &&
        (!json_is_string(v) || strcasecmp(json_string_value(v), r->vault.tenant_id) != 0)) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "properties.tenantId must be the caller's tenant %s.", r->vault.tenant_id);
        return false;
    }
    if (!vd_opt_bool(r, props, "enableSoftDelete", &soft_delete) ||
        !vd_opt_bool(r, props, "enablePurgeProtection", &q->purge_protection))
        return false;
    if (soft_delete == 0) {
        vd_reply_error(
            r, 400, "BadRequest", NULL,
            "Soft delete is always on for new vaults; enableSoftDelete cannot be false.");
        return false;
    }
    v = json_object_get(props, "softDeleteRetentionInDays");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 7 || json_integer_value(v) > 90) {
            vd_reply_error(r, 400, "BadRequest", NULL,
                           "properties.softDeleteRetentionInDays must be an integer from 7 to 90.");
            return false;
        }
        q->retention_days = (int)json_integer_value(v);
    }
    if (!vd_parse_sku(r, k, props, q))
        return false;
    ids = json_object_get(props, "initialAdminObjectIds"); /* managed HSM pools */
    if (ids != NULL && !json_is_null(ids)) {
        if (!json_is_array(ids) || json_array_size(ids) > VD_ADMIN_MAX_ADMINS - 1) {
            vd_reply_error(r, 400, "BadRequest", NULL,
                           "properties.initialAdminObjectIds must be an array of at most %d ids.",
                           VD_ADMIN_MAX_ADMINS - 1);
            return false;
        }
        for (i = 0; i < json_array_size(ids); i++) {
            v = json_array_get(ids, i);
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                json_string_length(v) >= VD_ID_MAX) {
                vd_reply_error(r, 400, "BadRequest", NULL,
                               "properties.initialAdminObjectIds holds an invalid id.");
                return false;
            }
            q->admins[q->nadmins++] = json_string_value(v);
        }
    }
    return true;
}

static void vd_admin_create(vd_req *r, const vd_admin_kind *k, const char *name,
                            const vd_admin_put *q)
{
    vd_vault_props p = {0};
    const char *admins[VD_ADMIN_MAX_ADMINS];
    size_t n = 0, i;
    kv_rv rv;

    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", r->vault.tenant_id);
    snprintf(p.kind, sizeof(p.kind), "%s", k->kind);
    snprintf(p.sku, sizeof(p.sku), "%s",
             q->sku[0]                            ? q->sku
             : strcmp(k->kind, VD_KIND_MHSM) == 0 ? "Standard_B1"
                                                  : "standard");
    snprintf(p.location, sizeof(p.location), "%s", q->location[0] ? q->location : "local");
    p.retention_days = q->retention_days > 0 ? q->retention_days : 90;
    p.purge_protection = q->purge_protection == 1;
    admins[n++] = r->principal;
    for (i = 0; i < q->nadmins; i++)
        if (strcasecmp(q->admins[i], r->principal) != 0)
            admins[n++] = q->admins[i];
    rv = vd_store_vault_create(r->store, &p, k->resource, admins, n, k->role_id);
    if (rv == KV_ERR_CONFLICT) {
        vd_reply_error(r, 409, "VaultAlreadyExists", NULL,
                       "The vault name '%s' is already in use. Vault names are unique in the "
                       "vaultd instance (vaults and managed HSM pools share one namespace).",
                       name);
        return;
    }
    if (rv == KV_OK)
        rv = vd_store_vault_props_get(r->store, name, &p);
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be created.");
        return;
    }
    fprintf(stderr, "vaultd: %s %s created by %s\n", k->kind, p.name, r->principal);
    vd_reply_json(r, 201, vd_admin_resource(r, k, &p));
}

/* PUT on an existing vault: the same settings again, or purge protection switched on. */
static void vd_admin_update(vd_req *r, const vd_admin_kind *k, vd_vault_props *p,
                            const vd_admin_put *q)
{
    if (strcmp(p->kind, k->kind) != 0) {
        vd_reply_error(r, 409, "VaultAlreadyExists", NULL, "The name '%s' is already used by a %s.",
                       p->name, strcmp(p->kind, VD_KIND_MHSM) == 0 ? "managed HSM pool" : "vault");
        return;
    }
    if (q->retention_days > 0 && q->retention_days != p->retention_days) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "softDeleteRetentionInDays is fixed when the vault is created (%d).",
                       p->retention_days);
        return;
    }
    if (q->purge_protection == 0 && p->purge_protection) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "Purge protection cannot be disabled once it is enabled.");
        return;
    }
    if ((q->sku[0] && strcasecmp(q->sku, p->sku) != 0) ||
        (q->location[0] && strcasecmp(q->location, p->location) != 0)) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "sku and location cannot be changed on an existing vault.");
        return;
    }
    if (q->purge_protection == 1 && !p->purge_protection) {
        if (vd_store_vault_enable_purge_protection(r->store, p->name) != KV_OK ||
            vd_store_vault_props_get(r->store, p->name, p) != KV_OK) {
            vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be updated.");
            return;
        }
    }
    vd_reply_json(r, 200, vd_admin_resource(r, k, p));
}

static void vd_admin_put_vault(vd_req *r, const vd_admin_kind *k, const char *name)
{
    vd_vault_props p;
    vd_admin_put q;
    json_t *body;
    kv_rv rv;

    if (!vd_vault_name_ok(name)) {
        vd_reply_error(r, 400, "VaultNameNotValid", NULL,
                       "The vault name '%.64s' is invalid. A vault's name must be between 3-24 "
                       "alphanumeric characters. The name must begin with a letter, end with a "
                       "letter or digit, and not contain consecutive hyphens.",
                       name);
        return;
    }
    body = r->body_len == 0 ? json_object() : vd_req_json_body(r);
    if (body == NULL)
        return;
    if (vd_parse_put(r, k, body, &q)) {
        rv = vd_store_vault_props_get(r->store, name, &p);
        if (rv == KV_OK)
            vd_admin_update(r, k, &p, &q);
        else if (rv == KV_ERR_NOT_FOUND)
            vd_admin_create(r, k, name, &q);
        else
            vd_reply_error(r, 500, "InternalServerError", NULL, "The vaults are unreadable.");
    }
    json_decref(body);
}

static void vd_admin_get_vault(vd_req *r, const vd_admin_kind *k, const char *name)
{
    vd_vault_props p;
    kv_rv rv = vd_store_vault_props_get(r->store, name, &p);

    if (rv == KV_OK && strcmp(p.kind, k->kind) == 0)
        vd_reply_json(r, 200, vd_admin_resource(r, k, &p));
    else if (rv == KV_OK || rv == KV_ERR_NOT_FOUND)
        vd_admin_not_found(r, k, name);
    else
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vaults are unreadable.");
}

static void vd_admin_delete_vault(vd_req *r, const vd_admin_kind *k, const char *name)
{
    const char *force = vd_req_param(r, "force");
    bool forced = force != NULL && strcasecmp(force, "true") == 0;
    long long count = 0;
    char **versions = NULL;
    size_t nversions = 0, i;
    vd_vault_props p;
    kv_rv rv = vd_store_vault_props_get(r->store, name, &p);

    if (rv == KV_ERR_NOT_FOUND || (rv == KV_OK && strcmp(p.kind, k->kind) != 0)) {
        vd_reply_json(r, 204, NULL); /* ARM: deleting what is not there is 204 */
        return;
    }
    if (rv == KV_OK)
        rv = vd_store_vault_object_count(r->store, p.name, &count);
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be read.");
        return;
    }
    if (p.is_default || strcasecmp(p.name, r->ctx->default_vault) == 0) {
        vd_reply_error(r, 409, "Conflict", "DefaultVault",
                       "The vault '%s' is the instance's default vault and cannot be deleted.",
                       p.name);
        return;
    }
    if (count > 0 && !forced) {
        vd_reply_error(r, 409, "Conflict", "VaultNotEmpty",
                       "The vault '%s' holds %lld object(s) (deleted ones included). Delete and "
                       "purge them first, or repeat the request with force=true.",
                       p.name, count);
        return;
    }
    if (count > 0 && p.purge_protection) {
        vd_reply_error(r, 409, "Conflict", "PurgeProtectionEnabled",
                       "The vault '%s' has purge protection enabled and holds %lld object(s); "
                       "it cannot be deleted before they are gone.",
                       p.name, count);
        return;
    }
    if (count > 0 &&
        vd_store_vault_key_versions(r->store, p.name, &versions, &nversions) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be read.");
        return;
    }
    rv = vd_store_vault_delete(r->store, p.name);
    for (i = 0; rv == KV_OK && i < nversions; i++) /* no decrypted key outlives its vault */
        vd_keycache_remove(r->ctx->keycache, p.name, versions[i]);
    vd_store_strings_free(versions, nversions);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_reply_json(r, 204, NULL);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be deleted.");
        return;
    }
    fprintf(stderr, "vaultd: %s %s deleted by %s (%lld object(s))\n", k->kind, p.name, r->principal,
            count);
    vd_reply_json(r, 200, NULL);
}

static void vd_admin_list(vd_req *r, const vd_admin_kind *k)
{
    vd_vault_props *arr = NULL;
    json_t *value = json_array();
    size_t n = 0, i;

    if (value == NULL ||
        vd_store_vault_props_list(r->store, r->vault.tenant_id, k->kind, &arr, &n) != KV_OK) {
        json_decref(value);
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vaults are unreadable.");
        return;
    }
    for (i = 0; i < n; i++)
        json_array_append_new(value, vd_admin_resource(r, k, &arr[i]));
    free(arr);
    vd_reply_json(r, 200, json_pack("{s:o}", "value", value));
}

static void vd_admin_challenge(vd_req *r, const char *why)
{
    char hdr[700];

    snprintf(hdr, sizeof(hdr), "Bearer authorization=\"%s/%s\", resource=\"%s\"", r->ctx->authority,
             r->vault.tenant_id, VD_MGMT_RESOURCE);
    vd_add_header(r, "WWW-Authenticate", hdr);
    vd_reply_error(r, 401, "AuthenticationFailed", NULL, "%s",
                   why != NULL && why[0] != '\0' ? why
                                                 : "Authentication failed. The 'Authorization' "
                                                   "header is missing.");
}

/* Authenticates the caller against the default vault's tenant, accepting the management, vault
 * and managed HSM audiences, and checks that it is a tenant administrator. */
static bool vd_admin_authorize(vd_req *r, const char *action)
{
    static const char *const audiences[] = {VD_MGMT_RESOURCE, VD_VAULT_RESOURCE, VD_MHSM_RESOURCE};
    char why[512] = "", first_why[512] = "";
    vd_vault v;
    bool is_admin = false;
    size_t i;
    kv_rv rv = KV_ERR_AUTH;

    if (vd_store_get_vault(r->store, r->ctx->default_vault, &r->vault) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The default vault is unreadable.");
        return false;
    }
    for (i = 0; i < sizeof(audiences) / sizeof(audiences[0]) && rv != KV_OK; i++) {
        v = r->vault;
        snprintf(v.resource, sizeof(v.resource), "%s", audiences[i]);
        rv = vd_identity_authenticate(r, &v, r->principal, why, sizeof(why));
        if (i == 0)
            snprintf(first_why, sizeof(first_why), "%s", why);
    }
    if (rv != KV_OK) {
        vd_admin_challenge(r, first_why);
        return false;
    }
    if (vd_store_is_tenant_admin(r->store, r->principal, r->ctx->default_vault, &is_admin) !=
        KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Role assignments unreadable.");
        return false;
    }
    if (!is_admin) {
        vd_reply_error(r, 403, "AuthorizationFailed", NULL,
                       "The client '%s' does not have authorization to perform action '%s' over "
                       "this vaultd instance (tenant administrators only).",
                       r->principal, action);
        return false;
    }
    return true;
}

void vd_admin_handle(vd_req *r)
{
    const vd_admin_kind *k = NULL;
    const char *name = NULL;
    char action[128];
    bool collection;
    size_t i;

    if (vd_principals_is_path(r)) { /* principals, tenants, token key (vd_principals.c) */
        if (vd_admin_authorize(r, vd_principals_action(r)))
            vd_principals_handle(r);
        return;
    }
    if (r->nsegs >= 2)
        for (i = 0; i < sizeof(vd_kinds) / sizeof(vd_kinds[0]) && k == NULL; i++)
            if (strcasecmp(r->segs[1], vd_kinds[i].segment) == 0)
                k = &vd_kinds[i];
    collection = r->nsegs == 2 || (r->nsegs == 3 && r->segs[2][0] == '\0');
    if (r->nsegs == 3 && r->segs[2][0] != '\0')
        name = r->segs[2];
    if (k == NULL || (!collection && name == NULL)) {
        vd_reply_error(r, 404, "NotFound", NULL,
                       "The administration API has /admin/vaults[/{name}] and "
                       "/admin/managedHSMs[/{name}].");
        return;
    }
    snprintf(action, sizeof(action), "%s/%s", k->type,
             strcmp(r->method, "GET") == 0      ? "read"
             : strcmp(r->method, "DELETE") == 0 ? "delete"
                                                : "write");
    if (!vd_admin_authorize(r, action))
        return;
    if (collection && strcmp(r->method, "GET") == 0)
        vd_admin_list(r, k);
    else if (name != NULL && strcmp(r->method, "GET") == 0)
        vd_admin_get_vault(r, k, name);
    else if (name != NULL && strcmp(r->method, "PUT") == 0)
        vd_admin_put_vault(r, k, name);
    else if (name != NULL && strcmp(r->method, "DELETE") == 0)
        vd_admin_delete_vault(r, k, name);
    else
        vd_reply_error(r, 405, "MethodNotAllowed", NULL, "%s is not allowed on %.200s.", r->method,
                       r->path);
}
