/* kv_cli_account.c - `kvault account get-access-token`: prints a bearer token for a vault's
 * configured credential the way `az account get-access-token` does. This is the ONLY place
 * kvault ever prints a token. */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "kv_cli_time.h"

static const kv_arg_spec kv_token_specs[] = {
    {"--vault-name", NULL, KV_ARG_VALUE, 0, "VAULT",
     "Vault whose credential is used (default: the first configured vault)."},
    {"--resource", NULL, KV_ARG_VALUE, 0, "RESOURCE",
     "Resource the token is for; must be the vault's resource (e.g. https://vault.azure.net)."},
    {"--scope", NULL, KV_ARG_MULTI, 0, "SCOPE", "As --resource, in the RESOURCE/.default form."},
};

/* The claims of a JWT (unverified; only used to describe the token). NULL if not a JWT. */
static json_t *kv_jwt_claims(const char *token)
{
    const char *p = strchr(token, '.'), *q;
    char *seg = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_t *claims = NULL;

    if (p == NULL || (q = strchr(p + 1, '.')) == NULL)
        return NULL;
    seg = strndup(p + 1, (size_t)(q - p - 1));
    if (seg != NULL && kv_b64_decode(seg, &raw, &rawlen) == KV_OK)
        claims = json_loadb((const char *)raw, rawlen, 0, NULL);
    if (raw != NULL) {
        OPENSSL_cleanse(raw, rawlen);
        free(raw);
    }
    free(seg);
    if (!json_is_object(claims)) {
        json_decref(claims);
        claims = NULL;
    }
    return claims;
}

/* "https://vault.azure.net/" and "https://vault.azure.net/.default" compare equal to
 * "https://vault.azure.net". */
static bool kv_resource_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 9 && strcmp(a + la - 9, "/.default") == 0)
        la -= 9;
    if (lb > 9 && strcmp(b + lb - 9, "/.default") == 0)
        lb -= 9;
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int kv_account_get_token(kv_cli *cli, const kv_args *args)
{
    const char *vname = kv_args_get(args, "--vault-name");
    const char *want = kv_args_get(args, "--resource");
    const kv_arg_val *scope = kv_args_val(args, "--scope");
    kv_vault *v = NULL;
    kv_err err = {0};
    char *token = NULL, expires[64];
    long long exp = 0;
    json_t *claims = NULL, *out = NULL, *aud;
    kv_rv rv;
    int rc;

    if (want != NULL && scope != NULL && scope->set)
        return kv_args_usage_error("usage error: --resource | --scope");
    if (scope != NULL && scope->set) {
        if (scope->n != 1)
            return kv_args_usage_error("argument --scope: kvault takes exactly one scope");
        want = scope->vals[0];
    }
    rc = kv_cli_open(cli);
    if (rc != KV_EXIT_OK)
        goto done;
    if (vname != NULL) {
        rc = kv_cli_vault(cli, vname, &v);
        if (rc != KV_EXIT_OK)
            goto done;
    } else if (kv_ctx_vault_count(cli->ctx) > 0) {
        v = kv_ctx_vault_at(cli->ctx, 0);
    } else {
        fprintf(stderr, "ERROR: no vault is configured%s%s; nothing to get a token for.\n",
                kv_ctx_conf_path(cli->ctx)[0] ? " in " : "", kv_ctx_conf_path(cli->ctx));
        rc = KV_EXIT_ERROR;
        goto done;
    }
    rc = KV_EXIT_ERROR;
    rv = kv_vault_get_token(v, &token, &exp, &err);
    if (rv != KV_OK) {
        kv_cli_print_vault_error(v, rv, &err, NULL);
        goto done;
    }
    claims = kv_jwt_claims(token);
    aud = json_object_get(claims, "aud");
    if (want != NULL && !(json_is_string(aud) && kv_resource_eq(want, json_string_value(aud)))) {
        fprintf(stderr,
                "ERROR: kvault gets tokens only for the vault's own resource%s%s%s; '%s' is "
                "not it.\n",
                json_is_string(aud) ? " (" : "", json_is_string(aud) ? json_string_value(aud) : "",
                json_is_string(aud) ? ")" : "", want);
        goto done;
    }
    kv_cli_time_local(exp, expires, sizeof(expires));
    out = json_pack("{s:s, s:s, s:I}", "accessToken", token, "expiresOn", expires, "expires_on",
                    (json_int_t)exp);
    if (out == NULL)
        goto done;
    if (json_is_string(json_object_get(claims, "tid")))
        json_object_set(out, "tenant", json_object_get(claims, "tid"));
    json_object_set_new(out, "tokenType", json_string("Bearer"));
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    kv_free_secret(token);
    json_decref(claims);
    json_decref(out);
    return rc;
}

static const kv_cli_cmd kv_account_cmds[] = {
    {"get-access-token", "Get a token for utilities to access the vault.", kv_token_specs,
     KV_NELEM(kv_token_specs), kv_account_get_token,
     "kvault account get-access-token --vault-name dev --query accessToken -o tsv"},
};

const kv_cli_group kv_cli_account_group = {"account", "Manage access tokens.", kv_account_cmds,
                                           KV_NELEM(kv_account_cmds)};
