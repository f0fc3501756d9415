/* kv_cli_role.c - `kvault role assignment create|list|delete` and `kvault role definition list`
 * (az role ... for vaults, az keyvault role ... --hsm-name for managed HSM pools) over vaultd's
 * role API: [/{scope}]/providers/Microsoft.Authorization/roleAssignments|roleDefinitions.
 *
 * Scopes: vaults are named in the scope, `--scope /vaults/NAME[/keys|secrets|certificates/OBJ]`
 * (an ARM scope ending the same way works too); pools by `--hsm-name NAME --scope /[keys/OBJ]`. */
#include "kv_cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#define KV_AUTHZ "/providers/Microsoft.Authorization"

/* Where a role command acts: the configured vault and the scope inside it. */
typedef struct kv_role_target {
    kv_vault *vault;
    bool mhsm;
    char scope[256]; /* "/", "/keys", "/keys/k1", ... (the service's scope) */
} kv_role_target;

static bool kv_role_is_guid(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != 36)
        return false;
    for (i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-'
                                                      : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Finds "/vaults/NAME" or "/managedHSMs/NAME" in scope: *name gets NAME (copied), *rest the
 * part after it. false if absent. */
static bool kv_role_scope_vault(const char *scope, char *name, size_t nlen, const char **rest,
                                bool *mhsm)
{
    static const char *const kinds[] = {"/vaults/", "/managedHSMs/"};
    const char *p;
    size_t i, k, len;

    for (k = 0; k < 2; k++) {
        len = strlen(kinds[k]);
        for (p = scope; *p != '\0'; p++) {
            if (strncasecmp(p, kinds[k], len) != 0)
                continue;
            p += len;
            i = strcspn(p, "/");
            if (i == 0 || i >= nlen)
                return false;
            memcpy(name, p, i);
            name[i] = '\0';
            *rest = p + i;
            *mhsm = k == 1;
            return true;
        }
    }
    return false;
}

/* Resolves --hsm-name / --scope. With neither, t->vault stays NULL (all vaults). */
static int kv_role_target_resolve(kv_cli *cli, const kv_args *args, kv_role_target *t)
{
    const char *hsm = kv_args_get(args, "--hsm-name"), *scope = kv_args_get(args, "--scope");
    const char *rest = NULL;
    char name[64];
    bool mhsm = false;
    int rc;

    memset(t, 0, sizeof(*t));
    snprintf(t->scope, sizeof(t->scope), "/");
    if (hsm != NULL) {
        rc = kv_cli_vault(cli, hsm, &t->vault);
        if (rc != KV_EXIT_OK)
            return rc;
        t->mhsm = true;
        if (scope != NULL)
            snprintf(t->scope, sizeof(t->scope), "%s",
                     kv_role_scope_vault(scope, name, sizeof(name), &rest, &mhsm) ? rest : scope);
    } else if (scope != NULL) {
        if (!kv_role_scope_vault(scope, name, sizeof(name), &rest, &mhsm))
            return kv_args_usage_error(
                "argument --scope: '%s' names no vault; use --scope /vaults/NAME[/keys/KEY] "
                "(vaults) or --hsm-name NAME --scope /keys/KEY (managed HSM pools).",
                scope);
        rc = kv_cli_vault(cli, name, &t->vault);
        if (rc != KV_EXIT_OK)
            return rc;
        t->mhsm = mhsm;
        snprintf(t->scope, sizeof(t->scope), "%s", rest);
    } else {
        return kv_cli_open(cli);
    }
    if (t->scope[0] == '\0')
        snprintf(t->scope, sizeof(t->scope), "/");
    if (t->vault != NULL && strstr(kv_vault_resource(t->vault), "managedhsm") != NULL)
        t->mhsm = true;
    return KV_EXIT_OK;
}

/* "/keys/k1" -> "/keys/k1"; "/" -> "" (for building paths). */
static const char *kv_role_path_scope(const char *scope)
{
    return strcmp(scope, "/") == 0 ? "" : scope;
}

/* The role definitions of the target's vault (the "value" array, new reference). */
static int kv_role_definitions(kv_vault *v, json_t **defs)
{
    return kv_cli_list(v, KV_AUTHZ "/roleDefinitions", 0, defs);
}

static const char *kv_role_def_name(json_t *defs, const char *id)
{
    const char *slash = id != NULL ? strrchr(id, '/') : NULL;
    size_t i;
    json_t *d;

    if (slash != NULL)
        id = slash + 1;
    json_array_foreach(defs, i, d)
    {
        if (id != NULL && strcasecmp(json_string_value(json_object_get(d, "name")), id) == 0)
            return json_string_value(json_object_get(json_object_get(d, "properties"), "roleName"));
    }
    return NULL;
}

/* The service's assignment in az's output shape. */
static json_t *kv_role_assignment_out(const kv_role_target *t, json_t *a, json_t *defs)
{
    json_t *props = json_object_get(a, "properties");
    const char *scope = json_string_value(json_object_get(props, "scope"));
    const char *def = json_string_value(json_object_get(props, "roleDefinitionId"));
    const char *role = kv_role_def_name(defs, def);
    char id[512], fscope[320];

    if (scope == NULL)
        scope = "/";
    if (t->mhsm) { /* az keyvault role assignment */
        return json_pack("{s:s?, s:s?, s:s?, s:n, s:s?, s:s?, s:s, s:s?}", "id",
                         json_string_value(json_object_get(a, "id")), "name",
                         json_string_value(json_object_get(a, "name")), "principalId",
                         json_string_value(json_object_get(props, "principalId")), "principalName",
                         "roleDefinitionId", def, "roleName", role, "scope", scope, "type",
                         json_string_value(json_object_get(a, "type")));
    }
    snprintf(fscope, sizeof(fscope), "/vaults/%s%s", kv_vault_name(t->vault),
             kv_role_path_scope(scope));
    snprintf(id, sizeof(id), "%s" KV_AUTHZ "/roleAssignments/%s", fscope,
             json_string_value(json_object_get(a, "name")));
    return json_pack("{s:n, s:n, s:n, s:s, s:s?, s:s?, s:s, s:s?, s:s?, s:s, s:s?}", "condition",
                     "conditionVersion", "description", "id", id, "name",
                     json_string_value(json_object_get(a, "name")), "principalId",
                     json_string_value(json_object_get(props, "principalId")), "principalType",
                     "ServicePrincipal", "roleDefinitionId", def, "roleDefinitionName", role,
                     "scope", fscope, "type", json_string_value(json_object_get(a, "type")));
}

/* ---- role assignment create ---- */

static int kv_role_assignment_create(kv_cli *cli, const kv_args *args)
{
    const char *assignee = kv_args_get(args, "--assignee"), *role = kv_args_get(args, "--role");
    const char *name = kv_args_get(args, "--name"), *defid = NULL;
    json_t *defs = NULL, *body = NULL, *resp = NULL, *d;
    kv_role_target t;
    char guid[37], path[512];
    unsigned char rnd[16];
    size_t i;
    int rc;

    if (assignee == NULL)
        assignee = kv_args_get(args, "--assignee-object-id");
    if (assignee == NULL)
        return kv_args_usage_error("the following arguments are required: --assignee");
    if (kv_args_get(args, "--scope") == NULL && kv_args_get(args, "--hsm-name") == NULL)
        return kv_args_usage_error("the following arguments are required: --scope (or "
                                   "--hsm-name)");
    if (name != NULL && !kv_role_is_guid(name))
        return kv_args_usage_error("argument --name: '%s' is not a GUID.", name);
    rc = kv_role_target_resolve(cli, args, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    rc = kv_role_definitions(t.vault, &defs);
    if (rc != KV_EXIT_OK)
        goto done;
    json_array_foreach(defs, i, d)
    {
        const char *dn = json_string_value(json_object_get(d, "name"));
        const char *rn =
            json_string_value(json_object_get(json_object_get(d, "properties"), "roleName"));

        if ((dn != NULL && strcasecmp(dn, role) == 0) || (rn != NULL && strcasecmp(rn, role) == 0))
            defid = json_string_value(json_object_get(d, "id"));
    }
    if (defid == NULL) {
        fprintf(stderr, "ERROR: Role '%s' doesn't exist.\n", role);
        rc = KV_EXIT_ERROR;
        goto done;
    }
    if (name == NULL) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            fprintf(stderr, "ERROR: no random bytes for the assignment name\n");
            rc = KV_EXIT_ERROR;
            goto done;
        }
        rnd[6] = (unsigned char)((rnd[6] & 0x0f) | 0x40);
        rnd[8] = (unsigned char)((rnd[8] & 0x3f) | 0x80);
        snprintf(guid, sizeof(guid),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0],
                 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
                 rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);
        name = guid;
    }
    body = json_pack("{s:{s:s, s:s}}", "properties", "roleDefinitionId", defid, "principalId",
                     assignee);
    snprintf(path, sizeof(path), "%s" KV_AUTHZ "/roleAssignments/%s", kv_role_path_scope(t.scope),
             name);
    rc = kv_cli_request(t.vault, "PUT", path, body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = kv_cli_print(cli, kv_role_assignment_out(&t, resp, defs));
done:
    json_decref(defs);
    json_decref(body);
    json_decref(resp);
    return rc;
}

/* ---- role assignment list ---- */

/* Appends the assignments of one vault (filtered) to out. */
static int kv_role_list_one(const kv_args *args, kv_role_target *t, json_t *out)
{
    const char *assignee = kv_args_get(args, "--assignee"), *role = kv_args_get(args, "--role");
    json_t *defs = NULL, *items = NULL, *a;
    char path[512];
    size_t i;
    int rc;

    rc = kv_role_definitions(t->vault, &defs);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "%s" KV_AUTHZ "/roleAssignments%s%s%s",
             kv_role_path_scope(t->scope), assignee ? "?$filter=principalId%20eq%20%27" : "",
             assignee ? assignee : "", assignee ? "%27" : "");
    rc = kv_cli_list(t->vault, path, 0, &items);
    if (rc != KV_EXIT_OK)
        goto done;
    json_array_foreach(items, i, a)
    {
        json_t *o = kv_role_assignment_out(t, a, defs);
        const char *rn =
            json_string_value(json_object_get(o, t->mhsm ? "roleName" : "roleDefinitionName"));
        const char *rid = json_string_value(json_object_get(o, "roleDefinitionId"));

        if (role == NULL || (rn != NULL && strcasecmp(rn, role) == 0) ||
            (rid != NULL && strlen(rid) >= 36 && strcasecmp(rid + strlen(rid) - 36, role) == 0))
            json_array_append_new(out, o);
        else
            json_decref(o);
    }
done:
    json_decref(defs);
    json_decref(items);
    return rc;
}

static int kv_role_assignment_list(kv_cli *cli, const kv_args *args)
{
    kv_role_target t;
    json_t *out = json_array();
    size_t i, n;
    int rc;

    rc = kv_role_target_resolve(cli, args, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    if (t.vault != NULL) {
        rc = kv_role_list_one(args, &t, out);
    } else { /* every configured vault */
        n = kv_ctx_vault_count(cli->ctx);
        for (i = 0; i < n && rc == KV_EXIT_OK; i++) {
            t.vault = kv_ctx_vault_at(cli->ctx, i);
            t.mhsm = strstr(kv_vault_resource(t.vault), "managedhsm") != NULL;
            rc = kv_role_list_one(args, &t, out);
        }
    }
    if (rc == KV_EXIT_OK) {
        rc = kv_cli_print(cli, out);
        out = NULL;
    }
done:
    json_decref(out);
    return rc;
}

/* ---- role assignment delete ---- */

static int kv_role_delete_id(kv_cli *cli, const kv_args *args, const char *id)
{
    const char *rest = NULL, *guid = strrchr(id, '/');
    char name[64], path[512], scope[256] = "";
    kv_role_target t;
    json_t *resp = NULL;
    bool mhsm = false;
    int rc;

    guid = guid != NULL ? guid + 1 : id;
    if (!kv_role_is_guid(guid))
        return kv_args_usage_error("argument --ids: '%s' is not a role assignment id.", id);
    if (kv_role_scope_vault(id, name, sizeof(name), &rest, &mhsm)) {
        memset(&t, 0, sizeof(t));
        rc = kv_cli_vault(cli, name, &t.vault);
    } else {
        rest = id;
        rc = kv_role_target_resolve(cli, args, &t);
        if (rc == KV_EXIT_OK && t.vault == NULL)
            return kv_args_usage_error("argument --ids: '%s' names no vault; add --hsm-name or "
                                       "--scope /vaults/NAME.",
                                       id);
    }
    if (rc != KV_EXIT_OK)
        return rc;
    /* the scope part of the id: everything before /providers/Microsoft.Authorization */
    {
        const char *p = strcasestr(rest, KV_AUTHZ);

        if (p != NULL && (size_t)(p - rest) < sizeof(scope))
            snprintf(scope, sizeof(scope), "%.*s", (int)(p - rest), rest);
    }
    snprintf(path, sizeof(path), "%s" KV_AUTHZ "/roleAssignments/%s", scope, guid);
    rc = kv_cli_request(t.vault, "DELETE", path, NULL, &resp);
    json_decref(resp);
    return rc;
}

static int kv_role_assignment_delete(kv_cli *cli, const kv_args *args)
{
    const kv_arg_val *ids = kv_args_val(args, "--ids");
    json_t *found = NULL, *a;
    kv_role_target t;
    size_t i;
    int rc = KV_EXIT_OK;

    if (ids != NULL && ids->set) {
        for (i = 0; i < ids->n && rc == KV_EXIT_OK; i++)
            rc = kv_role_delete_id(cli, args, ids->vals[i]);
        return rc;
    }
    if (kv_args_get(args, "--assignee") == NULL && kv_args_get(args, "--role") == NULL)
        return kv_args_usage_error("give --ids, or --assignee / --role with --scope (or "
                                   "--hsm-name).");
    rc = kv_role_target_resolve(cli, args, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    if (t.vault == NULL)
        return kv_args_usage_error("the following arguments are required: --scope (or "
                                   "--hsm-name)");
    found = json_array();
    rc = kv_role_list_one(args, &t, found);
    json_array_foreach(found, i, a)
    {
        const char *scope = json_string_value(json_object_get(a, "scope"));
        const char *want = kv_args_get(args, "--scope");

        if (rc != KV_EXIT_OK)
            break;
        if (t.mhsm && strcmp(scope, t.scope) != 0)
            continue; /* only assignments at exactly this scope */
        if (!t.mhsm && want != NULL && strcasecmp(scope, want) != 0)
            continue;
        rc = kv_role_delete_id(cli, args, json_string_value(json_object_get(a, "id")));
    }
    json_decref(found);
    return rc;
}

/* ---- role definition list ---- */

static int kv_role_definition_list(kv_cli *cli, const kv_args *args)
{
    const char *want = kv_args_get(args, "--name");
    json_t *defs = NULL, *out = NULL, *d;
    kv_role_target t;
    size_t i, n;
    int rc;

    rc = kv_role_target_resolve(cli, args, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    if (t.vault == NULL) { /* the first configured vault that is not a pool */
        n = kv_ctx_vault_count(cli->ctx);
        for (i = 0; i < n && t.vault == NULL; i++)
            if (strstr(kv_vault_resource(kv_ctx_vault_at(cli->ctx, i)), "managedhsm") == NULL)
                t.vault = kv_ctx_vault_at(cli->ctx, i);
        if (t.vault == NULL && n > 0)
            t.vault = kv_ctx_vault_at(cli->ctx, 0);
        if (t.vault == NULL) {
            fprintf(stderr, "ERROR: no vault is configured.\n");
            return KV_EXIT_ERROR;
        }
    }
    rc = kv_role_definitions(t.vault, &defs);
    if (rc != KV_EXIT_OK)
        goto done;
    out = json_array();
    json_array_foreach(defs, i, d)
    {
        json_t *p = json_object_get(d, "properties");
        const char *rn = json_string_value(json_object_get(p, "roleName"));

        if (want != NULL && (rn == NULL || strcasecmp(rn, want) != 0) &&
            strcasecmp(json_string_value(json_object_get(d, "name")), want) != 0)
            continue;
        json_array_append_new(
            out,
            json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "assignableScopes",
                      json_object_get(p, "assignableScopes"), "description",
                      json_object_get(p, "description"), "id", json_object_get(d, "id"), "name",
                      json_object_get(d, "name"), "permissions", json_object_get(p, "permissions"),
                      "roleName", json_object_get(p, "roleName"), "roleType",
                      json_object_get(p, "type"), "type", json_object_get(d, "type")));
    }
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    json_decref(defs);
    json_decref(out);
    return rc;
}

/* ---- tables ---- */

#define KV_ROLE_SCOPE_SPECS                                                                        \
    {"--scope",                                                                                    \
     NULL,                                                                                         \
     KV_ARG_VALUE,                                                                                 \
     0,                                                                                            \
     "SCOPE",                                                                                      \
     "/vaults/NAME[/keys|secrets|certificates/OBJ] for vaults; /[keys/OBJ] with --hsm-name."},     \
    {                                                                                              \
        "--hsm-name", NULL, KV_ARG_VALUE, 0, "NAME", "Managed HSM pool (a configured vault)."      \
    }

static const kv_arg_spec kv_create_specs[] = {
    {"--assignee", NULL, KV_ARG_VALUE, 0, "APPID", "Principal (appId == objectId in vaultd)."},
    {"--assignee-object-id", NULL, KV_ARG_VALUE, 0, "ID", "Same as --assignee."},
    {"--role", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "ROLE", "Role name or role definition id."},
    {"--name", NULL, KV_ARG_VALUE, 0, "GUID", "Assignment name (default: a new GUID)."},
    KV_ROLE_SCOPE_SPECS,
};
static const kv_arg_spec kv_list_specs[] = {
    {"--assignee", NULL, KV_ARG_VALUE, 0, "APPID", "Only this principal's assignments."},
    {"--role", NULL, KV_ARG_VALUE, 0, "ROLE", "Only assignments of this role (name or id)."},
    KV_ROLE_SCOPE_SPECS,
};
static const kv_arg_spec kv_delete_specs[] = {
    {"--ids", NULL, KV_ARG_MULTI, 0, "ID", "Role assignment ids (from `role assignment list`)."},
    {"--assignee", NULL, KV_ARG_VALUE, 0, "APPID", "Delete this principal's assignments..."},
    {"--role", NULL, KV_ARG_VALUE, 0, "ROLE", "...of this role..."},
    KV_ROLE_SCOPE_SPECS,
};
static const kv_arg_spec kv_def_specs[] = {
    {"--name", NULL, KV_ARG_VALUE, 0, "ROLE", "Only this role (name or id)."},
    KV_ROLE_SCOPE_SPECS,
};

static const kv_cli_cmd kv_role_cmds[] = {
    {"assignment create", "Create a role assignment.", kv_create_specs, KV_NELEM(kv_create_specs),
     kv_role_assignment_create,
     "kvault role assignment create --assignee APPID --role \"Key Vault Crypto User\" --scope "
     "/vaults/dev/keys/k1\n"
     "kvault role assignment create --hsm-name devhsm --assignee APPID --role \"Managed HSM "
     "Crypto User\" --scope /keys/k1"},
    {"assignment delete", "Delete role assignments.", kv_delete_specs, KV_NELEM(kv_delete_specs),
     kv_role_assignment_delete,
     "kvault role assignment delete --assignee APPID --role \"Key Vault Crypto User\" --scope "
     "/vaults/dev"},
    {"assignment list", "List role assignments.", kv_list_specs, KV_NELEM(kv_list_specs),
     kv_role_assignment_list, "kvault role assignment list --scope /vaults/dev --assignee APPID"},
    {"definition list", "List role definitions.", kv_def_specs, KV_NELEM(kv_def_specs),
     kv_role_definition_list, "kvault role definition list --hsm-name devhsm"},
};

const kv_cli_group kv_cli_role_group = {"role", "Manage role assignments and definitions (RBAC).",
                                        kv_role_cmds, KV_NELEM(kv_role_cmds)};
