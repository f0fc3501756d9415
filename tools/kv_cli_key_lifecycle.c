/* kv_cli_key_lifecycle.c - the rest of `kvault key ...` after create/show/list/sign: import
 * (PEM converted to a JWK locally), set-attributes, soft delete (list-deleted, show-deleted,
 * recover, purge), backup/restore, rotate and rotation-policy show/update, encrypt/decrypt and
 * random, as `az keyvault key ...` has them. Every command takes --hsm-name as well as
 * --vault-name (a managed HSM pool is configured as a vault section). */
#include "kv_cli_dataplane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "kv_b64.h"

#define KV_K KV_DP_SPEC_VAULT, KV_DP_SPEC_HSM, KV_DP_SPEC_NAME("key")
#define KV_K_ID KV_K, KV_DP_SPEC_ID("key")
#define KV_K_VER KV_K, KV_DP_SPEC_VERSION("key"), KV_DP_SPEC_ID("key")

static const kv_cli_kind *const kv_keys = &kv_cli_kind_keys;

/* ---- key import ---- */

static const kv_arg_spec kv_import_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_HSM,
    KV_DP_SPEC_NAME_REQ("key"),
    {"--pem-file", NULL, KV_ARG_VALUE, 0, "PATH", "PEM file containing the key to be imported."},
    {"--pem-string", NULL, KV_ARG_VALUE, 0, "PEM", "PEM string containing the key to be imported."},
    {"--pem-password", NULL, KV_ARG_VALUE, 0, "PASSWORD", "Password of PEM file."},
    {"--protection", "-p", KV_ARG_VALUE, 0, "{hsm,software}",
     "Specifies the type of key protection (default software; hsm with --hsm-name)."},
    {"--ops", NULL, KV_ARG_MULTI, 0, "OP",
     "Space-separated list of permitted JSON web key operations."},
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TIMES,
    KV_DP_SPEC_TAGS,
};

/* Never prompt on a terminal: an encrypted PEM without --pem-password simply fails. */
static int kv_no_prompt(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* Sets field to the base64url of bn as a big-endian number of width bytes (0 = minimal). */
static int kv_jwk_bn(json_t *jwk, const char *field, const EVP_PKEY *pk, const char *param,
                     int width)
{
    BIGNUM *bn = NULL;
    uint8_t *buf = NULL;
    char *b64 = NULL;
    int n = 0, rc = -1;

    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        goto done;
    n = width > 0 ? width : BN_num_bytes(bn);
    if (n <= 0 || (buf = OPENSSL_malloc((size_t)n)) == NULL || BN_bn2binpad(bn, buf, n) != n)
        goto done;
    b64 = kv_b64url_encode(buf, (size_t)n);
    if (b64 == NULL || json_object_set_new(jwk, field, json_string(b64)) != 0)
        goto done;
    rc = 0;
done:
    if (b64 != NULL) {
        OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
    }
    if (buf != NULL)
        OPENSSL_clear_free(buf, (size_t)n);
    BN_clear_free(bn);
    return rc;
}

/* A private JWK (RSA or EC) from a private key. */
static int kv_pkey_to_jwk(const EVP_PKEY *pk, json_t **out)
{
    static const struct {
        const char *group, *crv;
        int bytes;
    } curves[] = {{"prime256v1", "P-256", 32},
                  {"secp384r1", "P-384", 48},
                  {"secp521r1", "P-521", 66},
                  {"secp256k1", "P-256K", 32}};
    json_t *jwk = json_object();
    char group[64];
    size_t i;
    int rc = KV_EXIT_ERROR;

    *out = NULL;
    if (jwk == NULL)
        goto done;
    if (EVP_PKEY_is_a(pk, "RSA")) {
        json_object_set_new(jwk, "kty", json_string("RSA"));
        if (kv_jwk_bn(jwk, "n", pk, OSSL_PKEY_PARAM_RSA_N, 0) != 0 ||
            kv_jwk_bn(jwk, "e", pk, OSSL_PKEY_PARAM_RSA_E, 0) != 0 ||
            kv_jwk_bn(jwk, "d", pk, OSSL_PKEY_PARAM_RSA_D, 0) != 0 ||
            kv_jwk_bn(jwk, "p", pk, OSSL_PKEY_PARAM_RSA_FACTOR1, 0) != 0 ||
            kv_jwk_bn(jwk, "q", pk, OSSL_PKEY_PARAM_RSA_FACTOR2, 0) != 0 ||
            kv_jwk_bn(jwk, "dp", pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0) != 0 ||
            kv_jwk_bn(jwk, "dq", pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0) != 0 ||
            kv_jwk_bn(jwk, "qi", pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0) != 0) {
            fprintf(stderr, "ERROR: the RSA key lacks private CRT components\n");
            goto done;
        }
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) != 1)
            goto unsupported;
        for (i = 0; i < KV_NELEM(curves); i++)
            if (strcmp(group, curves[i].group) == 0)
                break;
        if (i == KV_NELEM(curves))
            goto unsupported;
        json_object_set_new(jwk, "kty", json_string("EC"));
        json_object_set_new(jwk, "crv", json_string(curves[i].crv));
        if (kv_jwk_bn(jwk, "x", pk, OSSL_PKEY_PARAM_EC_PUB_X, curves[i].bytes) != 0 ||
            kv_jwk_bn(jwk, "y", pk, OSSL_PKEY_PARAM_EC_PUB_Y, curves[i].bytes) != 0 ||
            kv_jwk_bn(jwk, "d", pk, OSSL_PKEY_PARAM_PRIV_KEY, curves[i].bytes) != 0) {
            fprintf(stderr, "ERROR: cannot read the EC key's components\n");
            goto done;
        }
    } else {
        goto unsupported;
    }
    *out = jwk;
    jwk = NULL;
    rc = KV_EXIT_OK;
    goto done;
unsupported:
    fprintf(stderr, "ERROR: Import failed: unsupported key type (RSA and EC P-256, P-384, P-521, "
                    "secp256k1 keys can be imported)\n");
done:
    json_decref(jwk);
    return rc;
}

static int kv_key_import(kv_cli *cli, const kv_args *args)
{
    static const char *const prot_choices[] = {"hsm", "software", NULL};
    const char *file = kv_args_get(args, "--pem-file"), *str = kv_args_get(args, "--pem-string");
    const char *pass = kv_args_get(args, "--pem-password"),
               *prot = kv_args_get(args, "--protection");
    const char *name = kv_args_get(args, "--name");
    uint8_t *pem = NULL;
    size_t pemlen = 0;
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    json_t *jwk = NULL, *body = NULL, *ops = NULL, *attrs = NULL, *tags = NULL;
    kv_vault *v = NULL;
    bool hsm = kv_args_get(args, "--hsm-name") != NULL;
    char path[192];
    int rc;

    if ((file == NULL) == (str == NULL))
        return kv_args_usage_error("usage error: --pem-file PATH | --pem-string PEM");
    if (prot != NULL) {
        int c = kv_args_choice("--protection/-p", prot, prot_choices, false);
        if (c < 0)
            return KV_EXIT_USAGE;
        hsm = c == 0;
    }
    rc = kv_cli_check_key_name(name);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_ops_arg(args, &ops);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_attrs_arg(args, true, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK && file != NULL)
        rc = kv_cli_read_file("--pem-file", file, 1024 * 1024, &pem, &pemlen);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    bio = file != NULL ? BIO_new_mem_buf(pem, (int)pemlen) : BIO_new_mem_buf(str, -1);
    if (bio == NULL)
        goto done;
    pk = PEM_read_bio_PrivateKey(bio, NULL, pass != NULL ? NULL : kv_no_prompt, (void *)pass);
    if (pk == NULL) {
        fprintf(stderr, "ERROR: Import failed: cannot read a private key from the PEM%s\n",
                pass != NULL ? " (wrong --pem-password?)" : " (encrypted? give --pem-password)");
        goto done;
    }
    rc = kv_pkey_to_jwk(pk, &jwk);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    if (ops != NULL)
        json_object_set(jwk, "key_ops", ops);
    body = json_pack("{s:O, s:b}", "key", jwk, "Hsm", hsm);
    if (body == NULL)
        goto done;
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/keys/%s", name);
    rc = kv_cli_send(cli, v, "PUT", path, body, NULL);
done:
    kv_cli_free_buf(pem, pemlen);
    BIO_free(bio);
    EVP_PKEY_free(pk);
    json_decref(jwk);
    json_decref(body);
    json_decref(ops);
    json_decref(attrs);
    json_decref(tags);
    return rc;
}

/* ---- key set-attributes ---- */

static const kv_arg_spec kv_setattr_specs[] = {
    KV_K_VER,
    {"--ops", NULL, KV_ARG_MULTI, 0, "OP",
     "Space-separated list of permitted JSON web key operations."},
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TIMES,
    KV_DP_SPEC_TAGS,
};

static int kv_key_set_attributes(kv_cli *cli, const kv_args *args)
{
    json_t *body = json_object(), *ops = NULL, *attrs = NULL, *tags = NULL;
    kv_cli_target t;
    char path[256];
    int rc = KV_EXIT_ERROR;

    if (body == NULL)
        goto done;
    rc = kv_cli_ops_arg(args, &ops);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_target_resolve_in(cli, args, "keys", true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    if (ops != NULL)
        json_object_set(body, "key_ops", ops);
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/keys/%s/%s", t.name, t.version);
    rc = kv_cli_send(cli, t.vault, "PATCH", path, body, NULL);
done:
    json_decref(body);
    json_decref(ops);
    json_decref(attrs);
    json_decref(tags);
    return rc;
}

/* ---- soft delete, backup, restore ---- */

static const kv_arg_spec kv_deleted_list_specs[] = {KV_DP_SPEC_VAULT, KV_DP_SPEC_HSM,
                                                    KV_DP_SPEC_MAXRESULTS};
static const kv_arg_spec kv_deleted_specs[] = {KV_K_ID};
static const kv_arg_spec kv_backup_specs[] = {
    KV_K_ID, KV_DP_SPEC_FILE("Local file path in which to store key backup.")};
static const kv_arg_spec kv_restore_specs[] = {
    KV_DP_SPEC_VAULT, KV_DP_SPEC_HSM,
    KV_DP_SPEC_FILE("Local key backup from which to restore key.")};

static int kv_key_list_deleted(kv_cli *cli, const kv_args *args)
{
    return kv_cli_dp_list_deleted(cli, args, kv_keys);
}

static int kv_key_show_deleted(kv_cli *cli, const kv_args *args)
{
    return kv_cli_dp_show_deleted(cli, args, kv_keys);
}

static int kv_key_recover(kv_cli *cli, const kv_args *args)
{
    return kv_cli_dp_recover(cli, args, kv_keys);
}

static int kv_key_purge(kv_cli *cli, const kv_args *args)
{
    return kv_cli_dp_purge(cli, args, kv_keys);
}

static int kv_key_backup(kv_cli *cli, const kv_args *args)
{
    return kv_cli_dp_backup(cli, args, kv_keys);
}

static int kv_key_restore(kv_cli *cli, const kv_args *args)
{
    return kv_cli_dp_restore(cli, args, kv_keys);
}

/* ---- rotate, rotation policy ---- */

static const kv_arg_spec kv_rotate_specs[] = {KV_K_ID};
static const kv_arg_spec kv_policy_update_specs[] = {
    KV_K_ID,
    {"--value", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "POLICY",
     "The rotation policy: JSON, @FILE or the path of a JSON file."},
};

static int kv_key_on_name(kv_cli *cli, const kv_args *args, const char *method, const char *suffix,
                          json_t *body)
{
    kv_cli_target t;
    char path[256];
    int rc;

    rc = kv_cli_target_resolve_in(cli, args, "keys", false, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/keys/%s/%s", t.name, suffix);
    return kv_cli_send(cli, t.vault, method, path, body, NULL);
}

static int kv_key_rotate(kv_cli *cli, const kv_args *args)
{
    return kv_key_on_name(cli, args, "POST", "rotate", NULL);
}

static int kv_key_policy_show(kv_cli *cli, const kv_args *args)
{
    return kv_key_on_name(cli, args, "GET", "rotationpolicy", NULL);
}

static int kv_key_policy_update(kv_cli *cli, const kv_args *args)
{
    json_t *policy = NULL;
    int rc;

    rc = kv_cli_json_arg("--value", kv_args_get(args, "--value"), &policy);
    if (rc != KV_EXIT_OK)
        return rc;
    if (!json_is_object(policy)) {
        json_decref(policy);
        return kv_args_usage_error("argument --value: the rotation policy must be a JSON object");
    }
    kv_cli_json_strip_nulls(policy);
    rc = kv_key_on_name(cli, args, "PUT", "rotationpolicy", policy);
    json_decref(policy);
    return rc;
}

/* ---- encrypt, decrypt ---- */

static const char *const kv_enc_algs[] = {
    "RSA-OAEP", "RSA-OAEP-256", "RSA1_5",     "A128GCM",    "A192GCM",    "A256GCM", "A128CBC",
    "A192CBC",  "A256CBC",      "A128CBCPAD", "A192CBCPAD", "A256CBCPAD", NULL};

#define KV_SPEC_CRYPTO(valhelp)                                                                    \
    KV_K_VER,                                                                                      \
        {"--algorithm",                                                                            \
         "-a",                                                                                     \
         KV_ARG_VALUE,                                                                             \
         KV_ARG_REQUIRED,                                                                          \
         "ALG",                                                                                    \
         "RSA-OAEP RSA-OAEP-256 RSA1_5 A128GCM A192GCM A256GCM A128CBC A192CBC A256CBC "           \
         "A128CBCPAD A192CBCPAD A256CBCPAD"},                                                      \
        {"--value", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "VALUE", valhelp},                        \
        {"--data-type",        NULL,                                                               \
         KV_ARG_VALUE,         0,                                                                  \
         "{base64,plaintext}", "The type of the original data (default base64)."},                 \
        {"--iv", NULL, KV_ARG_VALUE, 0, "B64", "Initialization vector (AES-CBC), base64."},        \
    {                                                                                              \
        "--aad", NULL, KV_ARG_VALUE, 0, "B64", "Additional authenticated data (AES-GCM), base64."  \
    }

static const kv_arg_spec kv_encrypt_specs[] = {
    KV_SPEC_CRYPTO("The value to be encrypted (base64, or text with --data-type plaintext).")};
static const kv_arg_spec kv_decrypt_specs[] = {
    KV_SPEC_CRYPTO("The value to be decrypted, base64 encoded."),
    {"--tag", NULL, KV_ARG_VALUE, 0, "B64", "Authentication tag (AES-GCM), base64."},
};

/* A base64 flag value as base64url for the vault; NULL (KV_EXIT_OK) if absent. */
static int kv_b64_flag(const kv_args *args, const char *flag, char **out)
{
    const char *s = kv_args_get(args, flag);
    uint8_t *raw = NULL;
    size_t len = 0;

    *out = NULL;
    if (s == NULL)
        return KV_EXIT_OK;
    if (kv_b64_decode(s, &raw, &len) != KV_OK)
        return kv_args_usage_error("argument %s: invalid base64 value", flag);
    *out = kv_b64url_encode(raw, len);
    kv_cli_free_buf(raw, len);
    return *out != NULL ? KV_EXIT_OK : KV_EXIT_ERROR;
}

/* A base64url field of the vault's answer as standard base64 (JSON null if absent). */
static json_t *kv_std_b64(const json_t *resp, const char *field)
{
    const char *s = json_string_value(json_object_get(resp, field));
    uint8_t *raw = NULL;
    size_t len = 0;
    char *std = NULL;
    json_t *j;

    if (s == NULL || kv_b64_decode(s, &raw, &len) != KV_OK)
        return json_null();
    std = kv_b64_encode(raw, len);
    j = std ? json_string(std) : json_null();
    kv_cli_free_buf(raw, len);
    kv_cli_free_buf(std, std ? strlen(std) : 0);
    return j;
}

static int kv_key_crypt(kv_cli *cli, const kv_args *args, bool enc)
{
    static const char *const dt_choices[] = {"base64", "plaintext", NULL};
    const char *dt = kv_args_get(args, "--data-type"), *val = kv_args_get(args, "--value"), *alg;
    char *value = NULL, *iv = NULL, *aad = NULL, *tag = NULL, path[320];
    bool plain = false;
    kv_cli_target t;
    json_t *body = NULL, *resp = NULL, *out = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    int c, rc;

    c = kv_args_choice("--algorithm/-a", kv_args_get(args, "--algorithm"), kv_enc_algs, true);
    if (c < 0)
        return KV_EXIT_USAGE;
    alg = kv_enc_algs[c];
    if (dt != NULL) {
        int d = kv_args_choice("--data-type", dt, dt_choices, true);
        if (d < 0)
            return KV_EXIT_USAGE;
        plain = d == 1;
    }
    if (enc && plain) {
        value = kv_b64url_encode((const uint8_t *)val, strlen(val));
        rc = value ? KV_EXIT_OK : KV_EXIT_ERROR;
    } else {
        rc = kv_b64_flag(args, "--value", &value);
    }
    if (rc == KV_EXIT_OK)
        rc = kv_b64_flag(args, "--iv", &iv);
    if (rc == KV_EXIT_OK)
        rc = kv_b64_flag(args, "--aad", &aad);
    if (rc == KV_EXIT_OK && !enc)
        rc = kv_b64_flag(args, "--tag", &tag);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_target_resolve_in(cli, args, "keys", true, &t);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_dp_pin_version(&t, kv_keys);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    body = json_pack("{s:s, s:s, s:s*, s:s*, s:s*}", "alg", alg, "value", value, "iv", iv, "aad",
                     aad, "tag", tag);
    if (body == NULL)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s/%s/%s", t.name, t.version, enc ? "encrypt" : "decrypt");
    rc = kv_cli_request(t.vault, "POST", path, body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    if (!json_is_string(json_object_get(resp, "value"))) {
        fprintf(stderr, "ERROR: the vault returned no result\n");
        goto done;
    }
    if (enc) {
        out = json_pack("{s:s, s:o, s:O?, s:o, s:o, s:o}", "algorithm", alg, "iv",
                        kv_std_b64(resp, "iv"), "kid", json_object_get(resp, "kid"), "result",
                        kv_std_b64(resp, "value"), "tag", kv_std_b64(resp, "tag"), "aad",
                        kv_std_b64(resp, "aad"));
    } else if (plain) {
        if (kv_b64_decode(json_string_value(json_object_get(resp, "value")), &raw, &rawlen) !=
            KV_OK)
            goto done;
        out = json_pack("{s:s, s:O?, s:s%}", "algorithm", alg, "kid", json_object_get(resp, "kid"),
                        "result", (const char *)raw, rawlen);
        if (out == NULL) {
            fprintf(stderr, "ERROR: the decrypted data is not text; use --data-type base64\n");
            goto done;
        }
    } else {
        out = json_pack("{s:s, s:O?, s:o}", "algorithm", alg, "kid", json_object_get(resp, "kid"),
                        "result", kv_std_b64(resp, "value"));
    }
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    kv_cli_free_buf(raw, rawlen);
    kv_cli_free_buf(value, value ? strlen(value) : 0);
    free(iv);
    free(aad);
    free(tag);
    json_decref(body);
    json_decref(resp);
    json_decref(out);
    return rc;
}

static int kv_key_encrypt(kv_cli *cli, const kv_args *args)
{
    return kv_key_crypt(cli, args, true);
}

static int kv_key_decrypt(kv_cli *cli, const kv_args *args)
{
    return kv_key_crypt(cli, args, false);
}

/* ---- random ---- */

static const kv_arg_spec kv_random_specs[] = {
    KV_DP_SPEC_HSM,
    KV_DP_SPEC_VAULT,
    {"--count", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "N",
     "The requested number of random bytes (1-128)."},
};

static int kv_key_random(kv_cli *cli, const kv_args *args)
{
    kv_vault *v = NULL;
    json_t *body = NULL, *resp = NULL, *out = NULL;
    long count = 0;
    int rc;

    rc = kv_args_int(args, "--count", 0, 1, 128, &count);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    rc = KV_EXIT_ERROR;
    body = json_pack("{s:I}", "count", (json_int_t)count);
    if (body == NULL)
        goto done;
    rc = kv_cli_request(v, "POST", "/rng", body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    out = json_pack("{s:o}", "value", kv_std_b64(resp, "value"));
    if (out == NULL || !json_is_string(json_object_get(out, "value"))) {
        fprintf(stderr, "ERROR: the vault returned no random bytes\n");
        goto done;
    }
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    json_decref(body);
    json_decref(resp);
    json_decref(out);
    return rc;
}

/* ---- the commands (listed in `kvault key` together with kv_cli_key.c's) ---- */

static const kv_cli_cmd kv_lifecycle_cmds[] = {
    {"backup", "Back up a key (all versions) to a file.", kv_backup_specs,
     KV_NELEM(kv_backup_specs), kv_key_backup,
     "kvault key backup --vault-name dev -n k1 -f k1.bak"},
    {"decrypt", "Decrypt a single block of encrypted data.", kv_decrypt_specs,
     KV_NELEM(kv_decrypt_specs), kv_key_decrypt,
     "kvault key decrypt --vault-name dev -n k1 -a RSA-OAEP-256 --value B64 --data-type plaintext"},
    {"encrypt", "Encrypt an arbitrary sequence of bytes using an encryption key.", kv_encrypt_specs,
     KV_NELEM(kv_encrypt_specs), kv_key_encrypt,
     "kvault key encrypt --vault-name dev -n k1 -a RSA-OAEP-256 --value hello --data-type "
     "plaintext"},
    {"import", "Import a private key (PEM, converted to a JSON web key locally).", kv_import_specs,
     KV_NELEM(kv_import_specs), kv_key_import,
     "kvault key import --vault-name dev -n k1 --pem-file key.pem [--pem-password PW]"},
    {"list-deleted", "List deleted keys.", kv_deleted_list_specs, KV_NELEM(kv_deleted_list_specs),
     kv_key_list_deleted, NULL},
    {"purge", "Permanently delete a deleted key.", kv_deleted_specs, KV_NELEM(kv_deleted_specs),
     kv_key_purge, NULL},
    {"random", "Get the requested number of random bytes from a managed HSM.", kv_random_specs,
     KV_NELEM(kv_random_specs), kv_key_random, "kvault key random --hsm-name pool --count 32"},
    {"recover", "Recover a deleted key to its latest version.", kv_deleted_specs,
     KV_NELEM(kv_deleted_specs), kv_key_recover, NULL},
    {"restore", "Restore a backed-up key to a vault.", kv_restore_specs, KV_NELEM(kv_restore_specs),
     kv_key_restore, "kvault key restore --vault-name dev -f k1.bak"},
    {"rotate", "Rotate the key: create a new version with the same parameters.", kv_rotate_specs,
     KV_NELEM(kv_rotate_specs), kv_key_rotate, NULL},
    {"rotation-policy show", "Get the rotation policy of a key.", kv_rotate_specs,
     KV_NELEM(kv_rotate_specs), kv_key_policy_show, NULL},
    {"rotation-policy update", "Update the rotation policy of a key.", kv_policy_update_specs,
     KV_NELEM(kv_policy_update_specs), kv_key_policy_update,
     "kvault key rotation-policy update --vault-name dev -n k1 --value @policy.json"},
    {"set-attributes", "Update a key's attributes (enabled, expires, not-before, ops, tags).",
     kv_setattr_specs, KV_NELEM(kv_setattr_specs), kv_key_set_attributes,
     "kvault key set-attributes --vault-name dev -n k1 --enabled false"},
    {"show-deleted", "Get a deleted key.", kv_deleted_specs, KV_NELEM(kv_deleted_specs),
     kv_key_show_deleted, NULL},
};

const kv_cli_group kv_cli_key_lifecycle_group = {"key", "Manage keys.", kv_lifecycle_cmds,
                                                 KV_NELEM(kv_lifecycle_cmds)};
