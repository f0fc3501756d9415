/* kv_cli_keyvault.c - `kvault keyvault show|list`: the configured vaults, shaped like the
 * objects `az keyvault show|list` print (id, name, properties.vaultUri, type). */
#include "kv_cli.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* az-like description of one configured vault. */
static json_t *kv_vault_az(kv_vault *v)
{
    const char *url = kv_vault_url(v);
    size_t len = strlen(url);
    bool mhsm = strstr(url, ".managedhsm.") != NULL;
    char id[160], uri[1024];

    snprintf(id, sizeof(id), "/providers/Microsoft.KeyVault/%s/%s", mhsm ? "managedHSMs" : "vaults",
             kv_vault_name(v));
    snprintf(uri, sizeof(uri), "%s%s", url, (len > 0 && url[len - 1] == '/') ? "" : "/");
    return json_pack("{s:s, s:s, s:{s:s}, s:s}", "id", id, "name", kv_vault_name(v), "properties",
                     mhsm ? "hsmUri" : "vaultUri", uri, "type",
                     mhsm ? "Microsoft.KeyVault/managedHSMs" : "Microsoft.KeyVault/vaults");
}

static const kv_arg_spec kv_keyvault_show_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the vault."},
};

static int kv_keyvault_show(kv_cli *cli, const kv_args *args)
{
    kv_vault *v = NULL;
    int rc;

    rc = kv_cli_vault(cli, kv_args_get(args, "--name"), &v);
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_print(cli, kv_vault_az(v));
}

static int kv_keyvault_list(kv_cli *cli, const kv_args *args)
{
    json_t *arr = json_array();
    size_t i, n;
    int rc;

    (void)args;
    rc = kv_cli_open(cli);
    if (rc != KV_EXIT_OK || arr == NULL)
        goto done;
    rc = KV_EXIT_ERROR;
    n = kv_ctx_vault_count(cli->ctx);
    for (i = 0; i < n; i++)
        if (json_array_append_new(arr, kv_vault_az(kv_ctx_vault_at(cli->ctx, i))) != 0)
            goto done;
    rc = kv_cli_print(cli, arr);
    arr = NULL;
done:
    json_decref(arr);
    return rc;
}

static const kv_cli_cmd kv_keyvault_cmds[] = {
    {"list", "List the configured vaults.", NULL, 0, kv_keyvault_list,
     "kvault keyvault list -o table"},
    {"show", "Show details of a configured vault.", kv_keyvault_show_specs,
     KV_NELEM(kv_keyvault_show_specs), kv_keyvault_show, "kvault keyvault show --name dev"},
};

const kv_cli_group kv_cli_keyvault_group = {"keyvault", "Manage vaults (as configured).",
                                            kv_keyvault_cmds, KV_NELEM(kv_keyvault_cmds)};
