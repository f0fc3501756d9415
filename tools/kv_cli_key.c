/* kv_cli_key.c - `kvault key ...`: create, list, list-versions, show, delete and download,
 * mirroring `az keyvault key ...` (flags and JSON output). sign/verify live in
 * kv_cli_key_crypto.c. */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kv_cli_dataplane.h"
#include "kv_cli_time.h"

#define KV_SPEC_VAULT                                                                              \
    {                                                                                              \
        "--vault-name", NULL, KV_ARG_VALUE, 0, "VAULT", "Name of the vault."                       \
    }
#define KV_SPEC_VAULT_REQ KV_SPEC_VAULT, KV_DP_SPEC_HSM /* one of them is required */
#define KV_SPEC_NAME                                                                               \
    {                                                                                              \
        "--name", "-n", KV_ARG_VALUE, 0, "NAME", "Name of the key."                                \
    }
#define KV_SPEC_VERSION                                                                            \
    {                                                                                              \
        "--version", "-v", KV_ARG_VALUE, 0, "VERSION",                                             \
            "The key version. If omitted, uses the latest version."                                \
    }
#define KV_SPEC_ID                                                                                 \
    {                                                                                              \
        "--id", NULL, KV_ARG_VALUE, 0, "ID",                                                       \
            "Id of the key (https://VAULT/keys/NAME[/VERSION] or "                                 \
            "kvault://VAULT/keys/NAME[/VERSION]). "                                                \
            "If given, omit --vault-name/--name/--version."                                        \
    }
#define KV_SPEC_MAXRESULTS                                                                         \
    {                                                                                              \
        "--maxresults", NULL, KV_ARG_VALUE, 0, "N", "Maximum number of results to return."         \
    }

/* ---- key create ---- */

static const kv_arg_spec kv_key_create_specs[] = {
    KV_SPEC_VAULT_REQ,
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the key."},
    {"--kty", NULL, KV_ARG_VALUE, 0, "KTY",
     "The type of key to create: EC, EC-HSM, RSA, RSA-HSM, oct, oct-HSM (default RSA)."},
    {"--size", NULL, KV_ARG_VALUE, 0, "BITS",
     "Key size in bits: RSA 2048, 3072, 4096 (default 2048); oct-HSM 128, 192, 256."},
    {"--curve", NULL, KV_ARG_VALUE, 0, "CURVE",
     "Elliptic curve: P-256 (default), P-384, "
     "P-521, P-256K."},
    {"--ops", NULL, KV_ARG_MULTI, 0, "OP",
     "Permitted operations: encrypt decrypt sign verify wrapKey unwrapKey import export."},
    {"--protection", "-p", KV_ARG_VALUE, 0, "{hsm,software}",
     "Protection type; hsm selects RSA-HSM/EC-HSM."},
    {"--disabled", NULL, KV_ARG_BOOL, 0, "[{false,true}]", "Create the key in disabled state."},
    {"--enabled", NULL, KV_ARG_BOOL, 0, "[{false,true}]", "Create the key enabled (default)."},
    {"--expires", NULL, KV_ARG_VALUE, 0, "DATETIME",
     "Expiration UTC datetime (Y-m-d'T'H:M:S'Z') or unix seconds."},
    {"--not-before", NULL, KV_ARG_VALUE, 0, "DATETIME",
     "Key not usable before the provided UTC datetime."},
    {"--tags", NULL, KV_ARG_MULTI, 0, "KEY[=VALUE]", "Space-separated tags."},
};

static const char *const kv_kty_choices[] = {"EC",  "EC-HSM",  "RSA", "RSA-HSM",
                                             "oct", "oct-HSM", NULL};
static const char *const kv_curve_choices[] = {"P-256", "P-256K", "P-384", "P-521", NULL};
static const char *const kv_op_choices[] = {"decrypt",   "encrypt", "export",  "import", "sign",
                                            "unwrapKey", "verify",  "wrapKey", NULL};

/* Builds the KeyCreate body from the flags; KV_EXIT_USAGE after printing on bad input. */
static int kv_key_create_body(const kv_args *args, json_t **out)
{
    const char *kty = kv_args_get(args, "--kty"), *curve = kv_args_get(args, "--curve");
    const char *prot = kv_args_get(args, "--protection");
    const kv_arg_val *ops = kv_args_val(args, "--ops"), *tags = kv_args_val(args, "--tags");
    json_t *body = json_object(), *attrs = json_object(), *jops = NULL, *jtags = NULL;
    char ktybuf[16];
    bool hsm = kv_args_get(args, "--hsm-name") != NULL; /* a managed HSM pool: -HSM kinds */
    bool disabled = false, enabled = true, is_ec, is_rsa;
    long size = 0;
    long long t;
    size_t i;
    int rc = KV_EXIT_USAGE;
    static const char *const prot_choices[] = {"hsm", "software", NULL};

    if (body == NULL || attrs == NULL) {
        rc = KV_EXIT_ERROR;
        goto done;
    }
    if (prot != NULL) {
        int c = kv_args_choice("--protection/-p", prot, prot_choices, false);
        if (c < 0)
            goto done;
        hsm = (c == 0);
    }
    if (kty == NULL) /* as az: RSA unless told otherwise; a curve implies EC */
        kty = curve != NULL ? (hsm ? "EC-HSM" : "EC") : (hsm ? "RSA-HSM" : "RSA");
    else if (kv_args_choice("--kty", kty, kv_kty_choices, false) < 0)
        goto done;
    if (hsm && strstr(kty, "-HSM") == NULL) {
        snprintf(ktybuf, sizeof(ktybuf), "%s-HSM", kty);
        kty = ktybuf;
    }
    is_ec = strncmp(kty, "EC", 2) == 0;
    is_rsa = strncmp(kty, "RSA", 3) == 0;
    if (kv_args_int(args, "--size", 0, 1, 16384, &size) != KV_EXIT_OK)
        goto done;
    if (is_ec && size != 0) {
        kv_args_usage_error("argument --size: not allowed with --kty %s; use --curve", kty);
        goto done;
    }
    if (!is_ec && curve != NULL) {
        kv_args_usage_error("argument --curve: not allowed with --kty %s", kty);
        goto done;
    }
    if (curve != NULL && kv_args_choice("--curve", curve, kv_curve_choices, false) < 0)
        goto done;
    if (json_object_set_new(body, "kty", json_string(kty)) != 0)
        goto nomem;
    if (is_rsa && size == 0)
        size = 2048;
    if (size != 0 && json_object_set_new(body, "key_size", json_integer(size)) != 0)
        goto nomem;
    if (is_ec && json_object_set_new(body, "crv", json_string(curve ? curve : "P-256")) != 0)
        goto nomem;
    if (ops != NULL && ops->set) {
        jops = json_array();
        if (jops == NULL)
            goto nomem;
        for (i = 0; i < ops->n; i++) {
            int c = kv_args_choice("--ops", ops->vals[i], kv_op_choices, true);
            if (c < 0)
                goto done;
            if (json_array_append_new(jops, json_string(kv_op_choices[c])) != 0)
                goto nomem;
        }
        json_object_set(body, "key_ops", jops);
    }
    if (kv_args_bool(args, "--disabled", false, &disabled) != KV_EXIT_OK ||
        kv_args_bool(args, "--enabled", true, &enabled) != KV_EXIT_OK)
        goto done;
    if (kv_args_has(args, "--disabled") && kv_args_has(args, "--enabled") && disabled == enabled) {
        kv_args_usage_error("arguments --disabled and --enabled contradict each other");
        goto done;
    }
    json_object_set_new(attrs, "enabled", json_boolean(enabled && !disabled));
    if (kv_args_get(args, "--expires") != NULL) {
        if (!kv_cli_time_parse(kv_args_get(args, "--expires"), &t)) {
            kv_args_usage_error("argument --expires: invalid datetime value: '%s'",
                                kv_args_get(args, "--expires"));
            goto done;
        }
        json_object_set_new(attrs, "exp", json_integer(t));
    }
    if (kv_args_get(args, "--not-before") != NULL) {
        if (!kv_cli_time_parse(kv_args_get(args, "--not-before"), &t)) {
            kv_args_usage_error("argument --not-before: invalid datetime value: '%s'",
                                kv_args_get(args, "--not-before"));
            goto done;
        }
        json_object_set_new(attrs, "nbf", json_integer(t));
    }
    if (json_object_set(body, "attributes", attrs) != 0)
        goto nomem;
    if (tags != NULL && tags->set) {
        jtags = json_object();
        if (jtags == NULL)
            goto nomem;
        for (i = 0; i < tags->n; i++) {
            const char *eq = strchr(tags->vals[i], '=');
            char k[257];
            size_t klen = eq ? (size_t)(eq - tags->vals[i]) : strlen(tags->vals[i]);
            if (klen == 0) /* az: "" clears tags */
                continue;
            if (klen >= sizeof(k)) {
                kv_args_usage_error("argument --tags: tag name too long");
                goto done;
            }
            memcpy(k, tags->vals[i], klen);
            k[klen] = '\0';
            json_object_set_new(jtags, k, json_string(eq ? eq + 1 : ""));
        }
        json_object_set(body, "tags", jtags);
    }
    *out = body;
    body = NULL;
    rc = KV_EXIT_OK;
    goto done;
nomem:
    fprintf(stderr, "ERROR: out of memory\n");
    rc = KV_EXIT_ERROR;
done:
    json_decref(body);
    json_decref(attrs);
    json_decref(jops);
    json_decref(jtags);
    return rc;
}

static int kv_key_create(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name");
    kv_vault *v = NULL;
    json_t *body = NULL, *resp = NULL;
    char path[256];
    int rc;

    rc = kv_cli_check_key_name(name);
    if (rc == KV_EXIT_OK)
        rc = kv_key_create_body(args, &body);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s/create", name);
    rc = kv_cli_request(v, "POST", path, body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = kv_cli_print(cli, resp);
    resp = NULL;
done:
    json_decref(body);
    json_decref(resp);
    return rc;
}

/* ---- key show ---- */

static const kv_arg_spec kv_key_show_specs[] = {KV_SPEC_VAULT_REQ, KV_SPEC_NAME, KV_SPEC_VERSION,
                                                KV_SPEC_ID};

static int kv_key_show(kv_cli *cli, const kv_args *args)
{
    kv_cli_target t;
    json_t *resp = NULL;
    char path[256];
    int rc;

    rc = kv_cli_target_resolve(cli, args, true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s/%s", t.name, t.version);
    rc = kv_cli_request(t.vault, "GET", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = kv_cli_print(cli, resp);
    resp = NULL;
done:
    json_decref(resp);
    return rc;
}

/* ---- key list / list-versions ---- */

static const kv_arg_spec kv_key_list_specs[] = {
    KV_SPEC_VAULT_REQ,
    KV_SPEC_MAXRESULTS,
    {"--include-managed", NULL, KV_ARG_BOOL, 0, "[{false,true}]",
     "Include managed keys (keys backing certificates)."},
};

static const kv_arg_spec kv_key_versions_specs[] = {KV_SPEC_VAULT_REQ, KV_SPEC_NAME, KV_SPEC_ID,
                                                    KV_SPEC_MAXRESULTS};

/* az adds "name" (parsed from kid) to each KeyItem; also drops managed keys unless asked. */
static json_t *kv_key_items_az(json_t *items, bool include_managed)
{
    json_t *out = json_array(), *it;
    size_t i;

    if (out == NULL)
        return NULL;
    json_array_foreach(items, i, it)
    {
        const char *kid = json_string_value(json_object_get(it, "kid"));
        const char *p = kid ? strstr(kid, "/keys/") : NULL;

        if (!include_managed && json_is_true(json_object_get(it, "managed")))
            continue;
        if (p != NULL && json_is_object(it)) {
            p += 6;
            json_object_set_new(it, "name", json_stringn(p, strcspn(p, "/?")));
        }
        json_array_append(out, it);
    }
    return out;
}

static int kv_key_list_common(kv_cli *cli, kv_vault *v, const char *base, const kv_args *args,
                              bool include_managed)
{
    json_t *items = NULL, *shown = NULL;
    char path[256];
    long max = 0;
    int rc;

    rc = kv_args_int(args, "--maxresults", 0, 1, 1000000, &max);
    if (rc != KV_EXIT_OK)
        goto done;
    if (max > 0)
        snprintf(path, sizeof(path), "%s?maxresults=%ld", base, max < 25 ? max : 25);
    else
        snprintf(path, sizeof(path), "%s", base);
    rc = kv_cli_list(v, path, (size_t)max, &items);
    if (rc != KV_EXIT_OK)
        goto done;
    shown = kv_key_items_az(items, include_managed);
    rc = kv_cli_print(cli, shown);
    shown = NULL;
done:
    json_decref(items);
    json_decref(shown);
    return rc;
}

static int kv_key_list(kv_cli *cli, const kv_args *args)
{
    kv_vault *v = NULL;
    bool managed = false;
    int rc;

    rc = kv_args_bool(args, "--include-managed", false, &managed);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK)
        rc = kv_key_list_common(cli, v, "/keys", args, managed);
    return rc;
}

static int kv_key_list_versions(kv_cli *cli, const kv_args *args)
{
    kv_cli_target t;
    char base[192];
    int rc;

    rc = kv_cli_target_resolve(cli, args, false, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(base, sizeof(base), "/keys/%s/versions", t.name);
    return kv_key_list_common(cli, t.vault, base, args, true);
}

/* ---- key delete ---- */

static const kv_arg_spec kv_key_delete_specs[] = {KV_SPEC_VAULT_REQ, KV_SPEC_NAME, KV_SPEC_ID};

static int kv_key_delete(kv_cli *cli, const kv_args *args)
{
    kv_cli_target t;
    json_t *resp = NULL;
    char path[192];
    int rc;

    rc = kv_cli_target_resolve(cli, args, false, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s", t.name);
    rc = kv_cli_request(t.vault, "DELETE", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = kv_cli_print(cli, resp ? resp : json_null());
    resp = NULL;
done:
    json_decref(resp);
    return rc;
}

/* ---- key download (public key as PEM or DER) ---- */

static const kv_arg_spec kv_key_download_specs[] = {
    KV_SPEC_VAULT_REQ,
    KV_SPEC_NAME,
    KV_SPEC_VERSION,
    KV_SPEC_ID,
    {"--file", "-f", KV_ARG_VALUE, KV_ARG_REQUIRED, "PATH",
     "File to receive the public key (must not exist)."},
    {"--encoding", "-e", KV_ARG_VALUE, 0, "{PEM,DER}", "Encoding of the public key (PEM)."},
};

static int kv_key_download(kv_cli *cli, const kv_args *args)
{
    static const char *const enc_choices[] = {"PEM", "DER", NULL};
    const char *file = kv_args_get(args, "--file"), *enc = kv_args_get(args, "--encoding");
    kv_cli_target t;
    kv_key *k = NULL;
    kv_err err = {0};
    FILE *f = NULL;
    int rc, der = 0;
    kv_rv rv;

    if (enc != NULL && (der = kv_args_choice("--encoding/-e", enc, enc_choices, true)) < 0)
        return KV_EXIT_USAGE;
    rc = kv_cli_target_resolve(cli, args, true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    rv = kv_vault_get_key(t.vault, t.name, t.version, &k, &err);
    if (rv != KV_OK) {
        kv_cli_print_vault_error(t.vault, rv, &err, NULL);
        rc = KV_EXIT_ERROR;
        goto done;
    }
    rc = KV_EXIT_ERROR;
    if (k->pub == NULL) {
        fprintf(stderr, "ERROR: the key '%s' has no public key to download\n", t.name);
        goto done;
    }
    f = fopen(file, "wbx"); /* az refuses to overwrite an existing file too */
    if (f == NULL) {
        fprintf(stderr, "ERROR: cannot create '%s': %m\n", file);
        goto done;
    }
    if ((der ? i2d_PUBKEY_fp(f, k->pub) : PEM_write_PUBKEY(f, k->pub)) != 1) {
        fprintf(stderr, "ERROR: cannot encode the public key\n");
        goto done;
    }
    rc = KV_EXIT_OK;
done:
    if (f != NULL && fclose(f) != 0 && rc == KV_EXIT_OK) {
        fprintf(stderr, "ERROR: cannot write '%s': %m\n", file);
        rc = KV_EXIT_ERROR;
    }
    kv_key_unref(k);
    return rc;
}

/* ---- the group ---- */

static const kv_cli_cmd kv_key_cmds[] = {
    {"create", "Create a new key (or a new version of an existing key).", kv_key_create_specs,
     KV_NELEM(kv_key_create_specs), kv_key_create,
     "kvault key create --vault-name dev --name k1 --kty RSA --size 2048\n"
     "kvault key create --vault-name dev -n k2 --kty EC --curve P-256 --ops sign verify"},
    {"delete", "Delete a key (all versions).", kv_key_delete_specs, KV_NELEM(kv_key_delete_specs),
     kv_key_delete, NULL},
    {"download", "Download the public part of a key (PEM or DER).", kv_key_download_specs,
     KV_NELEM(kv_key_download_specs), kv_key_download,
     "kvault key download --vault-name dev -n k1 -f k1.pem"},
    {"list", "List keys in the vault.", kv_key_list_specs, KV_NELEM(kv_key_list_specs), kv_key_list,
     "kvault key list --vault-name dev -o tsv"},
    {"list-versions", "List the versions of a key.", kv_key_versions_specs,
     KV_NELEM(kv_key_versions_specs), kv_key_list_versions,
     "kvault key list-versions --vault-name dev -n k1"},
    {"show", "Get a key's attributes and, if it's an asymmetric key, its public material.",
     kv_key_show_specs, KV_NELEM(kv_key_show_specs), kv_key_show,
     "kvault key show --vault-name dev -n k1\n"
     "kvault key show --id https://dev.vault.localhost:8443/keys/k1/VERSION"},
    {"sign", "Create a signature from a digest using the key.", kv_cli_key_sign_specs,
     KV_CLI_KEY_SIGN_NSPECS, kv_cli_key_sign,
     "kvault key sign --vault-name dev -n k1 -a RS256 --digest \"$(printf hi | openssl dgst "
     "-sha256 -binary | base64)\""},
    {"verify", "Verify a signature using the key.", kv_cli_key_verify_specs,
     KV_CLI_KEY_VERIFY_NSPECS, kv_cli_key_verify, NULL},
};

const kv_cli_group kv_cli_key_group = {"key", "Manage keys.", kv_key_cmds, KV_NELEM(kv_key_cmds)};
