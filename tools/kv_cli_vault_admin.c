/* kv_cli_vault_admin.c - vault and managed HSM pool administration through vaultd's admin API
 * (/admin/vaults, /admin/managedHSMs; vaultd/README.md): `kvault keyvault create|delete|list`
 * (az keyvault create --name | --hsm-name, ...) and `kvault hsm create|list|show|delete`.
 *
 * The calls go to the vaultd instance that serves a configured vault (--via, default the first
 * one) with that vault's credential. `keyvault list` falls back to the configured vaults when
 * that service has no admin API (a vault that is not vaultd, or an older vaultd), and
 * `keyvault show --name` to the configured vault when the admin API does not know the name. */
#include "kv_cli.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define KV_ADMIN_VAULTS "/admin/vaults"
#define KV_ADMIN_HSMS "/admin/managedHSMs"

static const char kv_via_help[] =
    "Configured vault whose vaultd instance is administered (default: the first one).";

/* The vault whose service takes the admin calls. */
static int kv_admin_vault(kv_cli *cli, const kv_args *args, kv_vault **out)
{
    const char *via = kv_args_get(args, "--via");
    int rc;

    *out = NULL;
    if (via != NULL)
        return kv_cli_vault(cli, via, out);
    rc = kv_cli_open(cli);
    if (rc != KV_EXIT_OK)
        return rc;
    if (kv_ctx_vault_count(cli->ctx) == 0) {
        fprintf(stderr,
                "ERROR: no vault is configured in %s; the admin API is reached through a "
                "configured vault's service.\n",
                kv_ctx_conf_path(cli->ctx)[0] ? kv_ctx_conf_path(cli->ctx) : "$KVAULT_CONF");
        return KV_EXIT_ERROR;
    }
    *out = kv_ctx_vault_at(cli->ctx, 0);
    return KV_EXIT_OK;
}

/* Azure's vault name rule: 3-24 of [0-9A-Za-z-], a letter first, no trailing or double '-'. */
static int kv_check_vault_name(const char *flag, const char *name)
{
    size_t i, len = strlen(name);
    bool ok = len >= 3 && len <= 24 && ((name[0] | 0x20) >= 'a' && (name[0] | 0x20) <= 'z') &&
              name[len - 1] != '-';

    for (i = 0; ok && i < len; i++) {
        char c = name[i];

        ok = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-';
        if (c == '-' && name[i + 1] == '-')
            ok = false;
    }
    if (ok)
        return KV_EXIT_OK;
    return kv_args_usage_error("argument %s: '%s' is not a valid vault name: 3-24 characters "
                               "[0-9A-Za-z-], starting with a letter, ending with a letter or "
                               "digit, no consecutive hyphens.",
                               flag, name);
}

/* ---- create ---- */

static int kv_admin_create(kv_cli *cli, const kv_args *args, const char *coll, const char *name)
{
    static const char *const vault_skus[] = {"standard", "premium", NULL};
    static const char *const hsm_skus[] = {"Standard_B1", "Custom_B32", "Custom_B6", NULL};
    bool hsm = strcmp(coll, KV_ADMIN_HSMS) == 0, purge = false;
    const char *sku = kv_args_get(args, "--sku"), *loc = kv_args_get(args, "--location");
    const kv_arg_val *admins = kv_args_val(args, "--administrators");
    json_t *body = NULL, *props, *resp = NULL, *ids;
    kv_vault *v = NULL;
    char path[128];
    long days = 90;
    size_t i;
    int rc;

    rc = kv_check_vault_name(hsm ? "--hsm-name" : "--name", name);
    if (rc == KV_EXIT_OK)
        rc = kv_args_int(args, "--retention-days", 90, 7, 90, &days);
    if (rc == KV_EXIT_OK)
        rc = kv_args_bool(args, "--enable-purge-protection", false, &purge);
    if (rc == KV_EXIT_OK && sku != NULL &&
        kv_args_choice("--sku", sku, hsm ? hsm_skus : vault_skus, true) < 0)
        rc = KV_EXIT_USAGE;
    if (rc != KV_EXIT_OK)
        return rc;
    rc = kv_admin_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    rc = KV_EXIT_ERROR;
    props = json_pack("{s:b, s:I, s:b}", "enableSoftDelete", 1, "softDeleteRetentionInDays",
                      (json_int_t)days, "enablePurgeProtection", purge);
    body = props ? json_pack("{s:s, s:o}", "location", loc ? loc : "local", "properties", props)
                 : NULL;
    if (body == NULL)
        goto done;
    if (sku != NULL)
        json_object_set_new(props, "sku",
                            json_pack("{s:s, s:s}", "family", hsm ? "B" : "A", "name", sku));
    if (hsm && admins != NULL && admins->set) {
        ids = json_array();
        for (i = 0; ids != NULL && i < admins->n; i++)
            json_array_append_new(ids, json_string(admins->vals[i]));
        json_object_set_new(props, "initialAdminObjectIds", ids);
    }
    snprintf(path, sizeof(path), "%s/%s", coll, name);
    rc = kv_cli_request(v, "PUT", path, body, &resp);
    if (rc == KV_EXIT_OK) {
        rc = kv_cli_print(cli, resp);
        resp = NULL;
    }
done:
    json_decref(body);
    json_decref(resp);
    return rc;
}

static int kv_keyvault_create(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name"), *hsm = kv_args_get(args, "--hsm-name");

    if ((name == NULL) == (hsm == NULL))
        return kv_args_usage_error("exactly one of --name/-n and --hsm-name is required");
    return kv_admin_create(cli, args, hsm ? KV_ADMIN_HSMS : KV_ADMIN_VAULTS, hsm ? hsm : name);
}

static int kv_hsm_create(kv_cli *cli, const kv_args *args)
{
    return kv_admin_create(cli, args, KV_ADMIN_HSMS, kv_args_get(args, "--name"));
}

/* ---- delete / show ---- */

static int kv_admin_delete(kv_cli *cli, const kv_args *args, const char *coll, const char *name)
{
    json_t *resp = NULL;
    kv_vault *v = NULL;
    char path[160];
    int rc;

    rc = kv_check_vault_name(strcmp(coll, KV_ADMIN_HSMS) == 0 ? "--hsm-name" : "--name", name);
    if (rc == KV_EXIT_OK)
        rc = kv_admin_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/%s%s", coll, name,
             kv_args_has(args, "--force") ? "?force=true" : "");
    rc = kv_cli_request(v, "DELETE", path, NULL, &resp);
    json_decref(resp); /* az prints nothing for a delete */
    return rc;
}

static int kv_keyvault_delete(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name"), *hsm = kv_args_get(args, "--hsm-name");

    if ((name == NULL) == (hsm == NULL))
        return kv_args_usage_error("exactly one of --name/-n and --hsm-name is required");
    return kv_admin_delete(cli, args, hsm ? KV_ADMIN_HSMS : KV_ADMIN_VAULTS, hsm ? hsm : name);
}

static int kv_hsm_delete(kv_cli *cli, const kv_args *args)
{
    return kv_admin_delete(cli, args, KV_ADMIN_HSMS, kv_args_get(args, "--name"));
}

/* The configured-vault command `verb` of kv_cli_keyvault.c (behaviour without an admin API). */
static int kv_keyvault_configured(kv_cli *cli, const kv_args *args, const char *verb)
{
    size_t i;

    for (i = 0; i < kv_cli_keyvault_group.ncmds; i++)
        if (strcmp(kv_cli_keyvault_group.cmds[i].verb, verb) == 0 &&
            kv_cli_keyvault_group.cmds[i].fn != NULL)
            return kv_cli_keyvault_group.cmds[i].fn(cli, args);
    return KV_EXIT_ERROR;
}

/* GET coll/name from the admin API and print it. fallback: when the service has no admin API
 * or does not know the vault, show the configured vault of that name instead. */
static int kv_admin_show(kv_cli *cli, const kv_args *args, const char *coll, const char *flag,
                         const char *name, bool fallback)
{
    kv_err err = {0};
    json_t *resp = NULL;
    kv_vault *v = NULL;
    long status = 0;
    char path[160];
    kv_rv rv;
    int rc;

    rc = kv_check_vault_name(flag, name);
    if (rc == KV_EXIT_OK)
        rc = kv_admin_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", coll, name);
    rv = kv_vault_request(v, "GET", path, NULL, &resp, &status, &err);
    if (rv == KV_OK)
        return kv_cli_print(cli, resp);
    if (fallback && (status == 400 || status == 404 || status == 405 || status == 501)) {
        json_decref(resp);
        return kv_keyvault_configured(cli, args, "show");
    }
    kv_cli_print_vault_error(v, rv, &err, resp);
    json_decref(resp);
    return KV_EXIT_ERROR;
}

static int kv_keyvault_show(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name"), *hsm = kv_args_get(args, "--hsm-name");

    if ((name == NULL) == (hsm == NULL))
        return kv_args_usage_error("exactly one of --name/-n and --hsm-name is required");
    if (hsm != NULL)
        return kv_admin_show(cli, args, KV_ADMIN_HSMS, "--hsm-name", hsm, false);
    return kv_admin_show(cli, args, KV_ADMIN_VAULTS, "--name", name, true);
}

static int kv_hsm_show(kv_cli *cli, const kv_args *args)
{
    return kv_admin_show(cli, args, KV_ADMIN_HSMS, "--name", kv_args_get(args, "--name"), false);
}

/* ---- list ---- */

/* GET coll's "value" items appended to arr. *no_api: the service has no admin API (it
 * answered 400/404/405/501 with no admin error), nothing printed then. */
static int kv_admin_list_into(kv_vault *v, const char *coll, json_t *arr, bool *no_api)
{
    kv_err err = {0};
    json_t *resp = NULL, *value;
    long status = 0;
    size_t i;
    kv_rv rv;
    int rc = KV_EXIT_ERROR;

    *no_api = false;
    rv = kv_vault_request(v, "GET", coll, NULL, &resp, &status, &err);
    if (rv != KV_OK) {
        if (status == 400 || status == 404 || status == 405 || status == 501) {
            *no_api = true;
            rc = KV_EXIT_OK;
        } else {
            kv_cli_print_vault_error(v, rv, &err, resp);
        }
        goto done;
    }
    value = json_object_get(resp, "value");
    if (!json_is_array(value)) {
        fprintf(stderr, "ERROR: %s%s answered without a value array\n", kv_vault_url(v), coll);
        goto done;
    }
    for (i = 0; i < json_array_size(value); i++)
        if (json_array_append(arr, json_array_get(value, i)) != 0)
            goto done;
    rc = KV_EXIT_OK;
done:
    json_decref(resp);
    return rc;
}

static int kv_admin_list(kv_cli *cli, const kv_args *args, bool vaults, bool hsms, bool fallback)
{
    json_t *arr = NULL;
    kv_vault *v = NULL;
    bool no_api = false, no_api2 = false;
    int rc;

    rc = kv_admin_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    arr = json_array();
    if (arr == NULL)
        return KV_EXIT_ERROR;
    if (vaults)
        rc = kv_admin_list_into(v, KV_ADMIN_VAULTS, arr, &no_api);
    if (rc == KV_EXIT_OK && hsms && !no_api)
        rc = kv_admin_list_into(v, KV_ADMIN_HSMS, arr, &no_api2);
    if (rc != KV_EXIT_OK)
        goto done;
    if (no_api || no_api2) {
        json_decref(arr);
        arr = NULL;
        if (fallback)
            return kv_keyvault_configured(cli, args, "list");
        fprintf(stderr,
                "ERROR: the service at %s has no administration API (vaultd's "
                "/admin/managedHSMs).\n",
                kv_vault_url(v));
        return KV_EXIT_ERROR;
    }
    rc = kv_cli_print(cli, arr);
    arr = NULL;
done:
    json_decref(arr);
    return rc;
}

static int kv_keyvault_list(kv_cli *cli, const kv_args *args)
{
    static const char *const types[] = {"vault", "hsm", NULL};
    const char *type = kv_args_get(args, "--resource-type");
    int t = -1;

    if (type != NULL && (t = kv_args_choice("--resource-type", type, types, true)) < 0)
        return KV_EXIT_USAGE;
    return kv_admin_list(cli, args, t != 1, t != 0, true);
}

static int kv_hsm_list(kv_cli *cli, const kv_args *args)
{
    return kv_admin_list(cli, args, false, true, false);
}

/* ---- tables ---- */

#define KV_VIA_SPEC                                                                                \
    {                                                                                              \
        "--via", NULL, KV_ARG_VALUE, 0, "VAULT", kv_via_help                                       \
    }
#define KV_CREATE_COMMON_SPECS                                                                     \
    {"--retention-days",                                                                           \
     NULL,                                                                                         \
     KV_ARG_VALUE,                                                                                 \
     0,                                                                                            \
     "DAYS",                                                                                       \
     "Soft-delete retention in days, 7-90 (default 90; fixed after creation)."},                   \
        {"--enable-purge-protection",                                                              \
         NULL,                                                                                     \
         KV_ARG_BOOL,                                                                              \
         0,                                                                                        \
         "{true,false}",                                                                           \
         "Refuse purges during the retention period (cannot be switched off)."},                   \
        {"--location", "-l", KV_ARG_VALUE, 0, "LOCATION", "Location label (default local)."},      \
        KV_VIA_SPEC

static const kv_arg_spec kv_keyvault_create_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, 0, "NAME", "Name of the vault (3-24 of [0-9A-Za-z-])."},
    {"--hsm-name", NULL, KV_ARG_VALUE, 0, "NAME",
     "Create a managed HSM pool of this name instead."},
    {"--sku", NULL, KV_ARG_VALUE, 0, "SKU",
     "standard or premium (HSM pools: Standard_B1, Custom_B32, Custom_B6)."},
    {"--administrators", NULL, KV_ARG_MULTI, 0, "OBJECT_ID",
     "HSM pools: more principals that get the Managed HSM Administrator role."},
    KV_CREATE_COMMON_SPECS,
};

static const kv_arg_spec kv_hsm_create_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the managed HSM pool."},
    {"--sku", NULL, KV_ARG_VALUE, 0, "SKU", "Standard_B1 (default), Custom_B32 or Custom_B6."},
    {"--administrators", NULL, KV_ARG_MULTI, 0, "OBJECT_ID",
     "More principals that get the Managed HSM Administrator role (the caller always does)."},
    KV_CREATE_COMMON_SPECS,
};

static const kv_arg_spec kv_keyvault_delete_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, 0, "NAME", "Name of the vault."},
    {"--hsm-name", NULL, KV_ARG_VALUE, 0, "NAME", "Delete the managed HSM pool of this name."},
    {"--force", NULL, KV_ARG_FLAG, 0, NULL,
     "Delete even if it holds keys, secrets or certificates (they are destroyed)."},
    KV_VIA_SPEC,
};

static const kv_arg_spec kv_keyvault_show_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, 0, "NAME", "Name of the vault."},
    {"--hsm-name", NULL, KV_ARG_VALUE, 0, "NAME", "Show the managed HSM pool of this name."},
    KV_VIA_SPEC,
};

static const kv_arg_spec kv_hsm_name_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the managed HSM pool."},
    KV_VIA_SPEC,
};

static const kv_arg_spec kv_hsm_delete_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the managed HSM pool."},
    {"--force", NULL, KV_ARG_FLAG, 0, NULL, "Delete even if it holds keys (they are destroyed)."},
    KV_VIA_SPEC,
};

static const kv_arg_spec kv_keyvault_list_specs[] = {
    {"--resource-type", NULL, KV_ARG_VALUE, 0, "{vault,hsm}",
     "Only vaults or only managed HSM pools (default: both)."},
    KV_VIA_SPEC,
};

static const kv_arg_spec kv_hsm_list_specs[] = {KV_VIA_SPEC};

static const kv_cli_cmd kv_vault_admin_cmds[] = {
    {"create", "Create a vault or a managed HSM pool (--hsm-name) in the vaultd instance.",
     kv_keyvault_create_specs, KV_NELEM(kv_keyvault_create_specs), kv_keyvault_create,
     "kvault keyvault create --name team-a --retention-days 7 --enable-purge-protection true\n"
     "kvault keyvault create --hsm-name pool-a"},
    {"delete", "Delete a vault or a managed HSM pool (refused while it holds objects).",
     kv_keyvault_delete_specs, KV_NELEM(kv_keyvault_delete_specs), kv_keyvault_delete,
     "kvault keyvault delete --name team-a [--force]"},
    {"list", "List the vaults and managed HSM pools (the configured vaults if no admin API).",
     kv_keyvault_list_specs, KV_NELEM(kv_keyvault_list_specs), kv_keyvault_list,
     "kvault keyvault list -o table\nkvault keyvault list --resource-type hsm"},
    {"show", "Show a vault or a managed HSM pool (a configured vault if no admin API).",
     kv_keyvault_show_specs, KV_NELEM(kv_keyvault_show_specs), kv_keyvault_show,
     "kvault keyvault show --name dev\nkvault keyvault show --hsm-name pool-a"},
};

/* Listed before kv_cli_keyvault_group in kvault.c, so this `list` and `show` are the ones that
 * run (and fall back to that group's). */
const kv_cli_group kv_cli_vault_admin_group = {"keyvault", "Manage vaults and managed HSM pools.",
                                               kv_vault_admin_cmds, KV_NELEM(kv_vault_admin_cmds)};

static const kv_cli_cmd kv_hsm_cmds[] = {
    {"create", "Create a managed HSM pool.", kv_hsm_create_specs, KV_NELEM(kv_hsm_create_specs),
     kv_hsm_create, "kvault hsm create --name pool-a --retention-days 28"},
    {"delete", "Delete a managed HSM pool.", kv_hsm_delete_specs, KV_NELEM(kv_hsm_delete_specs),
     kv_hsm_delete, "kvault hsm delete --name pool-a"},
    {"list", "List the managed HSM pools.", kv_hsm_list_specs, KV_NELEM(kv_hsm_list_specs),
     kv_hsm_list, "kvault hsm list -o table"},
    {"show", "Show a managed HSM pool.", kv_hsm_name_specs, KV_NELEM(kv_hsm_name_specs),
     kv_hsm_show, "kvault hsm show --name pool-a"},
};

const kv_cli_group kv_cli_hsm_group = {"hsm", "Manage managed HSM pools.", kv_hsm_cmds,
                                       KV_NELEM(kv_hsm_cmds)};
