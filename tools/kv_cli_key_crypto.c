/* kv_cli_key_crypto.c - `kvault key sign` and `kvault key verify`, as `az keyvault key
 * sign/verify`: the digest (never the message) and the signature travel as base64 on the
 * command line (standard or url-safe accepted; output is standard base64). */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_b64.h"

#define KV_SPEC_KEY_COMMON                                                                          \
    {"--vault-name", NULL, KV_ARG_VALUE, 0, "VAULT", "Name of the vault."},                         \
        {"--hsm-name", NULL, KV_ARG_VALUE, 0, "HSM", "Name of the HSM (instead of --vault-name)."}, \
        {"--name", "-n", KV_ARG_VALUE, 0, "NAME", "Name of the key."},                              \
        {"--version", "-v",      KV_ARG_VALUE,                                                      \
         0,           "VERSION", "The key version. If omitted, uses the latest version."},          \
        {"--id", NULL, KV_ARG_VALUE,                                                                \
         0,      "ID", "Id of the key. If given, omit --vault-name/--name/--version."},             \
        {"--algorithm", "-a",                                                                       \
         KV_ARG_VALUE,  KV_ARG_REQUIRED,                                                            \
         "ALG",         "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 RSNULL"},     \
    {                                                                                               \
        "--digest", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "B64",                                     \
            "The digest (hash of the message), base64 encoded."                                     \
    }

const kv_arg_spec kv_cli_key_sign_specs[KV_CLI_KEY_SIGN_NSPECS] = {KV_SPEC_KEY_COMMON};
const kv_arg_spec kv_cli_key_verify_specs[KV_CLI_KEY_VERIFY_NSPECS] = {
    KV_SPEC_KEY_COMMON,
    {"--signature", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "B64",
     "The signature to verify, base64 encoded."},
};
_Static_assert(KV_CLI_KEY_SIGN_NSPECS == 7 && KV_CLI_KEY_VERIFY_NSPECS == 8,
               "sign/verify spec counts");

static const char *const kv_alg_choices[] = {"ES256", "ES256K", "ES384", "ES512", "PS256",  "PS384",
                                             "PS512", "RS256",  "RS384", "RS512", "RSNULL", NULL};

/* Decodes a base64 flag value into a base64url string for the vault. */
static int kv_cli_b64_arg(const char *flag, const char *in, char **b64url)
{
    uint8_t *raw = NULL;
    size_t len = 0;

    *b64url = NULL;
    if (kv_b64_decode(in, &raw, &len) != KV_OK || len == 0) {
        free(raw);
        return kv_args_usage_error("argument %s: invalid base64 value", flag);
    }
    *b64url = kv_b64url_encode(raw, len);
    free(raw);
    if (*b64url == NULL) {
        fprintf(stderr, "ERROR: out of memory\n");
        return KV_EXIT_ERROR;
    }
    return KV_EXIT_OK;
}

/* Fills t->version with the latest version when none was given, so that crypto calls always
 * go to /keys/NAME/VERSION/OP (the form every vault serves) and report the versioned kid. */
static int kv_cli_pin_version(kv_cli_target *t)
{
    json_t *resp = NULL;
    const char *kid, *p;
    char path[192];
    int rc;

    if (t->version[0] != '\0')
        return KV_EXIT_OK;
    snprintf(path, sizeof(path), "/keys/%s/", t->name);
    rc = kv_cli_request(t->vault, "GET", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    kid = json_string_value(json_object_get(json_object_get(resp, "key"), "kid"));
    p = kid ? strstr(kid, "/keys/") : NULL;
    p = p ? strchr(p + 6, '/') : NULL;
    if (p == NULL || p[1] == '\0' || strlen(p + 1) >= sizeof(t->version)) {
        fprintf(stderr, "ERROR: the vault returned a key without a versioned kid\n");
        goto done;
    }
    snprintf(t->version, sizeof(t->version), "%s", p + 1);
    rc = KV_EXIT_OK;
done:
    json_decref(resp);
    return rc;
}

/* Common part: resolve the key and check the algorithm and digest. */
static int kv_cli_crypto_prepare(kv_cli *cli, const kv_args *args, kv_cli_target *t,
                                 const char **alg, char **digest)
{
    int c, rc;

    *digest = NULL;
    c = kv_args_choice("--algorithm/-a", kv_args_get(args, "--algorithm"), kv_alg_choices, true);
    if (c < 0)
        return KV_EXIT_USAGE;
    *alg = kv_alg_choices[c];
    rc = kv_cli_b64_arg("--digest", kv_args_get(args, "--digest"), digest);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_target_resolve(cli, args, true, t);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_pin_version(t);
    return rc;
}

int kv_cli_key_sign(kv_cli *cli, const kv_args *args)
{
    kv_cli_target t;
    const char *alg = NULL, *sig;
    char *digest = NULL, *std = NULL, path[256];
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_t *body = NULL, *resp = NULL, *out = NULL;
    int rc;

    rc = kv_cli_crypto_prepare(cli, args, &t, &alg, &digest);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    body = json_pack("{s:s, s:s}", "alg", alg, "value", digest);
    if (body == NULL)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s/%s/sign", t.name, t.version);
    rc = kv_cli_request(t.vault, "POST", path, body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    sig = json_string_value(json_object_get(resp, "value"));
    if (sig == NULL || kv_b64_decode(sig, &raw, &rawlen) != KV_OK ||
        (std = kv_b64_encode(raw, rawlen)) == NULL) {
        fprintf(stderr, "ERROR: the vault returned no signature\n");
        goto done;
    }
    out = json_pack("{s:s, s:O?, s:s}", "algorithm", alg, "kid", json_object_get(resp, "kid"),
                    "value", std);
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    free(digest);
    free(std);
    free(raw);
    json_decref(body);
    json_decref(resp);
    json_decref(out);
    return rc;
}

int kv_cli_key_verify(kv_cli *cli, const kv_args *args)
{
    kv_cli_target t;
    const char *alg = NULL;
    char *digest = NULL, *sig = NULL, path[256], kid[768];
    json_t *body = NULL, *resp = NULL, *out = NULL, *valid;
    int rc;

    rc = kv_cli_crypto_prepare(cli, args, &t, &alg, &digest);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_b64_arg("--signature", kv_args_get(args, "--signature"), &sig);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    body = json_pack("{s:s, s:s, s:s}", "alg", alg, "digest", digest, "value", sig);
    if (body == NULL)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s/%s/verify", t.name, t.version);
    rc = kv_cli_request(t.vault, "POST", path, body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    valid = json_object_get(resp, "value");
    if (!json_is_boolean(valid)) {
        fprintf(stderr, "ERROR: the vault returned no verification result\n");
        goto done;
    }
    snprintf(kid, sizeof(kid), "%s/keys/%s/%s", kv_vault_url(t.vault), t.name, t.version);
    out = json_pack("{s:s, s:O, s:s}", "algorithm", alg, "isValid", valid, "kid", kid);
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    free(digest);
    free(sig);
    json_decref(body);
    json_decref(resp);
    json_decref(out);
    return rc;
}
