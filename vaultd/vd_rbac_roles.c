/* vd_rbac_roles.c - built-in role definitions (Key Vault and Managed HSM, as Azure returns them),
 * wildcard matching of data actions, route action -> data action mapping, assignment scopes. */
#include "vd_rbac_roles.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define KV_V VD_RBAC_VAULT_PREFIX
#define KV_M VD_RBAC_MHSM_PREFIX

static const char *const vd_none[] = {NULL};

/* ---- Key Vault (Azure RBAC) built-in roles ---- */
static const char *const vd_kv_admin[] = {KV_V "*", NULL};
static const char *const vd_kv_reader[] = {KV_V "*/read", KV_V "secrets/readMetadata/action", NULL};
static const char *const vd_kv_crypto_officer[] = {KV_V "keys/*", KV_V "keyrotationpolicies/*",
                                                   NULL};
static const char *const vd_kv_crypto_user[] = {
    KV_V "keys/read",           KV_V "keys/update/action",
    KV_V "keys/backup/action",  KV_V "keys/encrypt/action",
    KV_V "keys/decrypt/action", KV_V "keys/wrap/action",
    KV_V "keys/unwrap/action",  KV_V "keys/sign/action",
    KV_V "keys/verify/action",  NULL};
static const char *const vd_kv_cseu[] = {KV_V "keys/read", KV_V "keys/wrap/action",
                                         KV_V "keys/unwrap/action", NULL};
static const char *const vd_kv_csru[] = {KV_V "keys/release/action", NULL};
static const char *const vd_kv_cert_officer[] = {KV_V "certificatecas/*", KV_V "certificates/*",
                                                 KV_V "certificatecontacts/write", NULL};
static const char *const vd_kv_cert_user[] = {
    KV_V "certificates/read", KV_V "secrets/getSecret/action", KV_V "secrets/readMetadata/action",
    KV_V "keys/read", NULL};
static const char *const vd_kv_secrets_officer[] = {KV_V "secrets/*", NULL};
static const char *const vd_kv_secrets_user[] = {KV_V "secrets/getSecret/action",
                                                 KV_V "secrets/readMetadata/action", NULL};

/* ---- Managed HSM local RBAC built-in roles (live role definitions) ---- */
#define VD_M_ROLE_MGMT                                                                             \
    KV_M "roleAssignments/delete/action", KV_M "roleAssignments/read/action",                      \
        KV_M "roleAssignments/write/action", KV_M "roleDefinitions/read/action",                   \
        KV_M "roleDefinitions/write/action", KV_M "roleDefinitions/delete/action"
static const char *const vd_m_admin[] = {VD_M_ROLE_MGMT,
                                         KV_M "securitydomain/download/action",
                                         KV_M "securitydomain/download/read",
                                         KV_M "securitydomain/upload/action",
                                         KV_M "securitydomain/upload/read",
                                         KV_M "securitydomain/transferkey/read",
                                         KV_M "backup/start/action",
                                         KV_M "restore/start/action",
                                         KV_M "backup/status/action",
                                         KV_M "restore/status/action",
                                         NULL};
static const char *const vd_m_crypto_officer[] = {VD_M_ROLE_MGMT,
                                                  KV_M "keys/deletedKeys/read/action",
                                                  KV_M "keys/deletedKeys/delete",
                                                  KV_M "keys/deletedKeys/recover/action",
                                                  KV_M "keys/export/action",
                                                  NULL};
static const char *const vd_m_crypto_user[] = {KV_M "roleDefinitions/read/action",
                                               KV_M "roleAssignments/read/action",
                                               KV_M "keys/read/action",
                                               KV_M "keys/write/action",
                                               KV_M "keys/delete",
                                               KV_M "keys/create",
                                               KV_M "keys/import/action",
                                               KV_M "keys/release/action",
                                               KV_M "keys/backup/action",
                                               KV_M "keys/restore/action",
                                               KV_M "keys/encrypt/action",
                                               KV_M "keys/decrypt/action",
                                               KV_M "keys/wrap/action",
                                               KV_M "keys/unwrap/action",
                                               KV_M "keys/sign/action",
                                               KV_M "keys/verify/action",
                                               KV_M "keys/derive/action",
                                               KV_M "keys/rotate/action",
                                               KV_M "rng/action",
                                               NULL};
static const char *const vd_m_cseu[] = {KV_M "keys/read/action", KV_M "keys/wrap/action",
                                        KV_M "keys/unwrap/action", NULL};
static const char *const vd_m_csru[] = {KV_M "keys/release/action", NULL};
static const char *const vd_m_auditor[] = {
    KV_M "roleAssignments/read/action", KV_M "roleDefinitions/read/action", KV_M "keys/read/action",
    KV_M "keys/deletedKeys/read/action", NULL};
static const char *const vd_m_backup[] = {KV_M "backup/start/action", KV_M "backup/status/action",
                                          KV_M "keys/backup/action", NULL};
static const char *const vd_m_policy_admin[] = {VD_M_ROLE_MGMT, NULL};

static const vd_role_def vd_roles[] = {
    {"00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator", false,
     "Perform all data plane operations on a key vault and all objects in it, including "
     "certificates, keys, and secrets.",
     vd_kv_admin, vd_none},
    {"21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", false,
     "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive "
     "values such as secret contents or key material.",
     vd_kv_reader, vd_none},
    {"14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer", false,
     "Perform any action on the keys of a key vault, except manage permissions.",
     vd_kv_crypto_officer, vd_none},
    {"12338af0-0e69-4776-bea7-57ae8d297424", "Key Vault Crypto User", false,
     "Perform cryptographic operations using keys.", vd_kv_crypto_user, vd_none},
    {"e147488a-f6f5-4113-8e2d-b22465e65bf6", "Key Vault Crypto Service Encryption User", false,
     "Read metadata of keys and perform wrap/unwrap operations.", vd_kv_cseu, vd_none},
    {"08bbd89e-9f13-488c-ac41-acfcb10c90ab", "Key Vault Crypto Service Release User", false,
     "Release keys.", vd_kv_csru, vd_none},
    {"a4417e6f-fecd-4de8-b567-7b0420556985", "Key Vault Certificates Officer", false,
     "Perform any action on the certificates of a key vault, except manage permissions.",
     vd_kv_cert_officer, vd_none},
    {"db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User", false,
     "Read entire certificate contents including secret and key portion.", vd_kv_cert_user,
     vd_none},
    {"b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer", false,
     "Perform any action on the secrets of a key vault, except manage permissions.",
     vd_kv_secrets_officer, vd_none},
    {"4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", false,
     "Read secret contents.", vd_kv_secrets_user, vd_none},
    {"a290e904-7015-4bba-90c8-60543313cdb4", "Managed HSM Administrator", true, "", vd_m_admin,
     vd_none},
    {"515eb02d-2335-4d2d-92f2-b1cbdf9c3778", "Managed HSM Crypto Officer", true, "",
     vd_m_crypto_officer, vd_none},
    {"21dbd100-6940-42c2-9190-5d6cb909625b", "Managed HSM Crypto User", true, "", vd_m_crypto_user,
     vd_none},
    {"33413926-3206-4cdd-b39a-83574fe37a17", "Managed HSM Crypto Service Encryption User", true, "",
     vd_m_cseu, vd_none},
    {"21dbd100-6940-42c2-9190-5d6cb909625c", "Managed HSM Crypto Service Release User", true, "",
     vd_m_csru, vd_none},
    {"2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "Managed HSM Crypto Auditor", true, "", vd_m_auditor,
     vd_none},
    {"7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8", "Managed HSM Backup User", true, "", vd_m_backup,
     vd_none},
    {"4bd23610-cdcf-4971-bdee-bdc562cc28e4", "Managed HSM Policy Administrator", true, "",
     vd_m_policy_admin, vd_none},
};

size_t vd_rbac_role_count(void)
{
    return sizeof(vd_roles) / sizeof(vd_roles[0]);
}

const vd_role_def *vd_rbac_role_at(size_t i)
{
    return i < vd_rbac_role_count() ? &vd_roles[i] : NULL;
}

const vd_role_def *vd_rbac_role_by_id(const char *id)
{
    const char *slash;
    size_t i;

    if (id == NULL)
        return NULL;
    slash = strrchr(id, '/');
    if (slash != NULL) { /* a full id: .../roleDefinitions/GUID */
        size_t pre = strlen("roleDefinitions/");

        if ((size_t)(slash + 1 - id) < pre || strncasecmp(slash + 1 - pre, "roleDefinitions/", pre))
            return NULL;
        id = slash + 1;
    }
    for (i = 0; i < vd_rbac_role_count(); i++)
        if (strcasecmp(vd_roles[i].id, id) == 0)
            return &vd_roles[i];
    return NULL;
}

const vd_role_def *vd_rbac_role_by_name(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < vd_rbac_role_count(); i++)
        if (strcasecmp(vd_roles[i].name, name) == 0)
            return &vd_roles[i];
    if (strcasecmp(name, "Managed HSM Backup") == 0) /* the docs' name of "Backup User" */
        return vd_rbac_role_by_id("7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8");
    return NULL;
}

bool vd_rbac_action_match(const char *p, const char *a)
{
    const char *star = NULL, *resume = NULL;

    if (p == NULL || a == NULL)
        return false;
    /* iterative glob with backtracking to the last '*' */
    while (*a != '\0') {
        if (*p == '*') {
            star = p++;
            resume = a;
        } else if (tolower((unsigned char)*p) == tolower((unsigned char)*a)) {
            p++;
            a++;
        } else if (star != NULL) {
            p = star + 1;
            a = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool vd_rbac_role_allows(const vd_role_def *d, const char *action)
{
    bool allowed = false;
    size_t i;

    if (d == NULL || action == NULL)
        return false;
    for (i = 0; d->data_actions[i] != NULL && !allowed; i++)
        allowed = vd_rbac_action_match(d->data_actions[i], action);
    for (i = 0; d->not_data_actions[i] != NULL && allowed; i++)
        allowed = !vd_rbac_action_match(d->not_data_actions[i], action);
    return allowed;
}

/* Route actions (written for vaults) whose data action differs for vaults or pools. deleted =
 * the route is on a deleted-object collection (NULL row value = same as the route action). */
typedef struct vd_action_map {
    const char *route;
    int deleted; /* -1 any, 0 live collection, 1 deleted collection */
    const char *vault;
    const char *mhsm;
} vd_action_map;

static const vd_action_map vd_action_maps[] = {
    {"keys/read", 1, NULL, "keys/deletedKeys/read/action"},
    {"keys/read", -1, NULL, "keys/read/action"},
    {"keys/create/action", -1, NULL, "keys/create"},
    {"keys/update/action", -1, NULL, "keys/write/action"},
    {"keys/recover/action", -1, NULL, "keys/deletedKeys/recover/action"},
    {"keys/purge/action", -1, NULL, "keys/deletedKeys/delete"},
    {"keyrotationpolicies/read", -1, NULL, "keys/read/action"},
    {"keyrotationpolicies/write", -1, NULL, "keys/write/action"},
    {"deletedsecrets/read", -1, "secrets/readMetadata/action", NULL},
    {"deletedsecrets/recover/action", -1, "secrets/recover/action", NULL},
    {"deletedsecrets/delete", -1, "secrets/purge/action", NULL},
    {"deletedcertificates/read", -1, "certificates/read", NULL},
    {"deletedcertificates/recover/action", -1, "certificates/recover/action", NULL},
    {"deletedcertificates/delete", -1, "certificates/purge/action", NULL},
};

bool vd_rbac_data_action(bool mhsm, const char *route_action, const char *pattern, char *out,
                         size_t outlen)
{
    const char *act = route_action;
    int deleted = pattern != NULL && strncmp(pattern, "deleted", 7) == 0;
    size_t i;
    int n;

    if (route_action == NULL || out == NULL || outlen == 0)
        return false;
    for (i = 0; i < sizeof(vd_action_maps) / sizeof(vd_action_maps[0]); i++) {
        const vd_action_map *m = &vd_action_maps[i];

        if (strcmp(m->route, route_action) != 0 || (m->deleted >= 0 && m->deleted != deleted))
            continue;
        if (mhsm ? m->mhsm != NULL : m->vault != NULL) {
            act = mhsm ? m->mhsm : m->vault;
            break;
        }
    }
    n = snprintf(out, outlen, "%s%s", mhsm ? KV_M : KV_V, act);
    return n > 0 && (size_t)n < outlen;
}

const char *vd_rbac_pattern_collection(const char *pattern)
{
    static const char *const colls[] = {"keys", "secrets", "certificates"};
    size_t i, len;

    if (pattern == NULL)
        return NULL;
    if (strncmp(pattern, "deleted", 7) == 0)
        pattern += 7;
    for (i = 0; i < sizeof(colls) / sizeof(colls[0]); i++) {
        len = strlen(colls[i]);
        if (strncmp(pattern, colls[i], len) == 0 && (pattern[len] == '\0' || pattern[len] == '/'))
            return colls[i];
    }
    return NULL;
}

bool vd_rbac_scope_normalize(const char *scope, bool allow_sc, char *out, size_t outlen)
{
    static const char *const colls[] = {"keys", "secrets", "certificates"};
    char seg[2][VD_RBAC_SCOPE_MAX];
    size_t nseg = 0, i, len;
    const char *p = scope, *coll = NULL;
    int n;

    if (scope == NULL || out == NULL || outlen == 0)
        return false;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        len = strcspn(p, "/");
        if (nseg == 2 || len >= sizeof(seg[0]))
            return false;
        memcpy(seg[nseg], p, len);
        seg[nseg++][len] = '\0';
        p += len;
    }
    if (nseg == 0) {
        n = snprintf(out, outlen, "/");
        return n > 0 && (size_t)n < outlen;
    }
    for (i = 0; i < sizeof(colls) / sizeof(colls[0]) && coll == NULL; i++)
        if (strcasecmp(seg[0], colls[i]) == 0 && (i == 0 || allow_sc))
            coll = colls[i];
    if (coll == NULL)
        return false;
    if (nseg == 1)
        n = snprintf(out, outlen, "/%s", coll);
    else {
        for (i = 0; seg[1][i] != '\0'; i++)
            if (!isalnum((unsigned char)seg[1][i]) && seg[1][i] != '-')
                return false;
        if (i > 127)
            return false;
        n = snprintf(out, outlen, "/%s/%s", coll, seg[1]);
    }
    return n > 0 && (size_t)n < outlen;
}

bool vd_rbac_scope_covers(const char *scope, const char *coll, const char *name)
{
    size_t len;

    if (scope == NULL)
        return false;
    if (strcmp(scope, "/") == 0)
        return true;
    if (coll == NULL || scope[0] != '/')
        return false;
    len = strlen(coll);
    if (strncmp(scope + 1, coll, len) != 0)
        return false;
    if (scope[1 + len] == '\0')
        return true; /* "/keys": every key */
    if (scope[1 + len] != '/' || name == NULL)
        return false;
    return strcasecmp(scope + 2 + len, name) == 0;
}
