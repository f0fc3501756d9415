/* kv_cli_session.c - the client context of one kvault run: reading the configuration (the
 * same file kvault.so reads) and finding configured vaults by name. */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_log.h"

int kv_cli_open(kv_cli *cli)
{
    kv_err err = {0};
    const char *env, *path;
    kv_rv rv;

    if (cli == NULL)
        return KV_EXIT_ERROR;
    if (cli->ctx != NULL)
        return KV_EXIT_OK;
    rv = kv_ctx_new(NULL, &cli->ctx, &err);
    if (rv != KV_OK) {
        env = getenv("KVAULT_CONF");
        path = (env != NULL && env[0] != '\0') ? env : "/etc/kvault/kvault.conf";
        if (err.message[0] != '\0' && strstr(err.message, path) != NULL)
            fprintf(stderr, "ERROR: %s\n", err.message);
        else
            fprintf(stderr, "ERROR: kvault configuration %s: %s\n", path,
                    err.message[0] != '\0' ? err.message : kv_rv_str(rv));
        cli->ctx = NULL;
        return KV_EXIT_ERROR;
    }
    if (cli->log_level >= 0)
        kv_log_set_level(cli->log_level); /* --debug/--verbose win over the file */
    return KV_EXIT_OK;
}

int kv_cli_vault(kv_cli *cli, const char *name, kv_vault **out)
{
    char names[512] = "";
    size_t i, used = 0, n;
    int rc;

    *out = NULL;
    rc = kv_cli_open(cli);
    if (rc != KV_EXIT_OK)
        return rc;
    *out = kv_ctx_vault_by_name(cli->ctx, name);
    if (*out != NULL)
        return KV_EXIT_OK;
    n = kv_ctx_vault_count(cli->ctx);
    for (i = 0; i < n; i++) {
        int k = snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                         kv_vault_name(kv_ctx_vault_at(cli->ctx, i)));
        if (k > 0 && (size_t)k < sizeof(names) - used)
            used += (size_t)k;
    }
    if (n == 0)
        fprintf(stderr,
                "ERROR: The vault '%s' is not configured: %s configures no vaults. Set "
                "KVAULT_CONF or add a [vault %s] section.\n",
                name,
                kv_ctx_conf_path(cli->ctx)[0] ? kv_ctx_conf_path(cli->ctx)
                                              : "no configuration file was found and it",
                name);
    else
        fprintf(stderr, "ERROR: The vault '%s' is not configured in %s (configured: %s).\n", name,
                kv_ctx_conf_path(cli->ctx), names);
    return KV_EXIT_ERROR;
}

void kv_cli_close(kv_cli *cli)
{
    if (cli == NULL)
        return;
    kv_ctx_free(cli->ctx);
    cli->ctx = NULL;
}
