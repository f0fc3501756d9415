/* kv_cli_secret.c - `kvault secret ...`: set (from --value or a file, with az's --encoding and
 * file-encoding tag), show, list, list-versions, set-attributes, delete, list-deleted,
 * show-deleted, recover, purge, backup, restore and download, as `az keyvault secret ...`. */
#include "kv_cli_dataplane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv_b64.h"

#define KV_SECRET_FILE_MAX (1024u * 1024u) /* the vault enforces its 25 KiB itself */

#define KV_S KV_DP_SPEC_VAULT, KV_DP_SPEC_NAME("secret")
#define KV_S_ID KV_S, KV_DP_SPEC_ID("secret")
#define KV_S_VER KV_S, KV_DP_SPEC_VERSION("secret"), KV_DP_SPEC_ID("secret")

static const kv_cli_kind *const kv_secrets = &kv_cli_kind_secrets;

/* az's --encoding choices; "utf-8" first = the default. */
static const char *const kv_enc_choices[] = {"utf-8", "ascii", "base64", "hex", NULL};
enum { KV_ENC_UTF8, KV_ENC_ASCII, KV_ENC_BASE64, KV_ENC_HEX };

static char *kv_hex_encode(const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * len + 1);
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

static int kv_hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool kv_hex_decode(const char *in, uint8_t **out, size_t *len)
{
    size_t n = strlen(in), i;
    uint8_t *b;

    if (n % 2 != 0 || (b = malloc(n / 2 + 1)) == NULL)
        return false;
    for (i = 0; i < n / 2; i++) {
        int hi = kv_hex_nibble(in[2 * i]), lo = kv_hex_nibble(in[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            kv_cli_free_buf(b, n / 2 + 1);
            return false;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return true;
}

/* ---- secret set ---- */

static const kv_arg_spec kv_set_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_NAME_REQ("secret"),
    {"--value", NULL, KV_ARG_VALUE, 0, "VALUE", "Plain text secret value."},
    {"--file", "-f", KV_ARG_VALUE, 0, "PATH", "Source file for secret. Use with --encoding."},
    {"--encoding", "-e", KV_ARG_VALUE, 0, "{ascii,base64,hex,utf-8}",
     "Source file encoding (default utf-8). The value is saved as a tag (file-encoding) and used "
     "by download."},
    {"--content-type", NULL, KV_ARG_VALUE, 0, "TYPE",
     "Type of the secret value such as a password."},
    {"--description", NULL, KV_ARG_VALUE, 0, "TEXT",
     "Description of the secret contents (az's alias of --content-type)."},
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TIMES,
    KV_DP_SPEC_TAGS,
};

/* The secret's value from --file in the given encoding. */
static int kv_secret_file_value(const char *file, int enc, json_t **value)
{
    uint8_t *buf = NULL;
    size_t len = 0, i;
    char *s = NULL;
    int rc;

    *value = NULL;
    rc = kv_cli_read_file("--file/-f", file, KV_SECRET_FILE_MAX, &buf, &len);
    if (rc != KV_EXIT_OK)
        return rc;
    rc = KV_EXIT_USAGE;
    switch (enc) {
    case KV_ENC_ASCII:
        for (i = 0; i < len; i++)
            if (buf[i] >= 0x80) {
                kv_args_usage_error("argument --file/-f: '%s' is not ASCII; use --encoding "
                                    "base64",
                                    file);
                goto done;
            }
        /* fall through */
    case KV_ENC_UTF8:
        *value = json_stringn((const char *)buf, len);
        if (*value == NULL)
            kv_args_usage_error("argument --file/-f: '%s' is not UTF-8 text; use --encoding "
                                "base64",
                                file);
        break;
    case KV_ENC_BASE64:
        s = kv_b64_encode(buf, len);
        break;
    default:
        s = kv_hex_encode(buf, len);
        break;
    }
    if (s != NULL)
        *value = json_string(s);
    if (*value != NULL)
        rc = KV_EXIT_OK;
done:
    kv_cli_free_buf(s, s ? strlen(s) : 0);
    kv_cli_free_buf(buf, len);
    return rc;
}

static int kv_secret_set(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name"), *val = kv_args_get(args, "--value");
    const char *file = kv_args_get(args, "--file"), *encs = kv_args_get(args, "--encoding");
    const char *ct = kv_args_get(args, "--content-type") ? kv_args_get(args, "--content-type")
                                                         : kv_args_get(args, "--description");
    json_t *body = NULL, *value = NULL, *attrs = NULL, *tags = NULL;
    kv_vault *v = NULL;
    char path[192];
    int enc = KV_ENC_UTF8, rc;

    if ((val == NULL) == (file == NULL))
        return kv_args_usage_error("usage error: --value VALUE | --file PATH");
    if (encs != NULL && (enc = kv_args_choice("--encoding/-e", encs, kv_enc_choices, true)) < 0)
        return KV_EXIT_USAGE;
    if (encs != NULL && file == NULL)
        return kv_args_usage_error("usage error: --encoding applies to --file only");
    rc = kv_cli_check_name("secrets", name);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK && file != NULL)
        rc = kv_secret_file_value(file, enc, &value);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    if (value == NULL)
        value = json_string(val);
    body = json_object();
    if (value == NULL || body == NULL) {
        fprintf(stderr, "ERROR: --value is not UTF-8 text or out of memory\n");
        goto done;
    }
    json_object_set(body, "value", value);
    if (file != NULL) { /* az records how to turn the value back into the file */
        if (tags == NULL)
            tags = json_object();
        json_object_set_new(tags, "file-encoding", json_string(kv_enc_choices[enc]));
    }
    if (ct != NULL)
        json_object_set_new(body, "contentType", json_string(ct));
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/secrets/%s", name);
    rc = kv_cli_send(cli, v, "PUT", path, body, kv_secrets);
done:
    json_decref(body);
    json_decref(value);
    json_decref(attrs);
    json_decref(tags);
    return rc;
}

/* ---- secret set-attributes ---- */

static const kv_arg_spec kv_setattr_specs[] = {
    KV_S_VER,
    {"--content-type", NULL, KV_ARG_VALUE, 0, "TYPE",
     "Type of the secret value such as a password."},
    {"--description", NULL, KV_ARG_VALUE, 0, "TEXT",
     "Description of the secret contents (az's alias of --content-type)."},
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TIMES,
    KV_DP_SPEC_TAGS,
};

static int kv_secret_set_attributes(kv_cli *cli, const kv_args *args)
{
    const char *ct = kv_args_get(args, "--content-type") ? kv_args_get(args, "--content-type")
                                                         : kv_args_get(args, "--description");
    json_t *body = json_object(), *attrs = NULL, *tags = NULL;
    kv_cli_target t;
    char path[256];
    int rc = KV_EXIT_ERROR;

    if (body == NULL)
        goto done;
    rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_target_resolve_in(cli, args, "secrets", true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    if (ct != NULL)
        json_object_set_new(body, "contentType", json_string(ct));
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/secrets/%s/%s", t.name, t.version);
    rc = kv_cli_send(cli, t.vault, "PATCH", path, body, kv_secrets);
done:
    json_decref(body);
    json_decref(attrs);
    json_decref(tags);
    return rc;
}

/* ---- secret download ---- */

static const kv_arg_spec kv_download_specs[] = {
    KV_S_VER,
    KV_DP_SPEC_FILE("File to receive the secret contents (must not exist)."),
    {"--encoding", "-e", KV_ARG_VALUE, 0, "{ascii,base64,hex,utf-8}",
     "Encoding of the secret. By default the secret's file-encoding tag, else base64 for "
     "application/x-pkcs12 and utf-8 otherwise."},
};

static int kv_secret_download(kv_cli *cli, const kv_args *args)
{
    const char *encs = kv_args_get(args, "--encoding"), *val, *ct;
    kv_cli_target t;
    json_t *resp = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    char path[256];
    int enc = -1, rc;

    if (encs != NULL && (enc = kv_args_choice("--encoding/-e", encs, kv_enc_choices, true)) < 0)
        return KV_EXIT_USAGE;
    rc = kv_cli_target_resolve_in(cli, args, "secrets", true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "/secrets/%s/%s", t.name, t.version);
    rc = kv_cli_request(t.vault, "GET", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    val = json_string_value(json_object_get(resp, "value"));
    if (val == NULL) {
        fprintf(stderr, "ERROR: the vault returned no secret value\n");
        goto done;
    }
    if (enc < 0) {
        const char *tagged =
            json_string_value(json_object_get(json_object_get(resp, "tags"), "file-encoding"));
        ct = json_string_value(json_object_get(resp, "contentType"));
        if (tagged != NULL) {
            size_t i;
            for (i = 0; kv_enc_choices[i] != NULL; i++)
                if (strcasecmp(tagged, kv_enc_choices[i]) == 0)
                    enc = (int)i;
        }
        if (enc < 0)
            enc = (ct != NULL && strcmp(ct, "application/x-pkcs12") == 0) ? KV_ENC_BASE64
                                                                          : KV_ENC_UTF8;
    }
    if (enc == KV_ENC_BASE64) {
        if (kv_b64_decode(val, &raw, &rawlen) != KV_OK) {
            fprintf(stderr, "ERROR: the secret value is not base64 (try --encoding utf-8)\n");
            goto done;
        }
    } else if (enc == KV_ENC_HEX) {
        if (!kv_hex_decode(val, &raw, &rawlen)) {
            fprintf(stderr, "ERROR: the secret value is not hex (try --encoding utf-8)\n");
            goto done;
        }
    }
    rc = raw != NULL ? kv_cli_write_file(kv_args_get(args, "--file"), raw, rawlen, true, 0600)
                     : kv_cli_write_file(kv_args_get(args, "--file"), val, strlen(val), true, 0600);
done:
    kv_cli_free_buf(raw, rawlen);
    json_decref(resp);
    return rc;
}

/* ---- the verbs every collection has ---- */

static const kv_arg_spec kv_show_specs[] = {KV_S_VER};
static const kv_arg_spec kv_list_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_MAXRESULTS,
    {"--include-managed", NULL, KV_ARG_BOOL, 0, "[{false,true}]",
     "Include managed secrets (secrets backing certificates)."},
};
static const kv_arg_spec kv_versions_specs[] = {KV_S_ID, KV_DP_SPEC_MAXRESULTS};
static const kv_arg_spec kv_name_specs[] = {KV_S_ID};
static const kv_arg_spec kv_deleted_list_specs[] = {KV_DP_SPEC_VAULT, KV_DP_SPEC_MAXRESULTS};
static const kv_arg_spec kv_backup_specs[] = {
    KV_S_ID, KV_DP_SPEC_FILE("Local file path in which to store secret backup.")};
static const kv_arg_spec kv_restore_specs[] = {
    KV_DP_SPEC_VAULT, KV_DP_SPEC_FILE("Local secret backup from which to restore secret.")};

#define KV_SECRET_VERB(fn, dp)                                                                     \
    static int fn(kv_cli *cli, const kv_args *args)                                                \
    {                                                                                              \
        return dp(cli, args, kv_secrets);                                                          \
    }
KV_SECRET_VERB(kv_secret_show, kv_cli_dp_show)
KV_SECRET_VERB(kv_secret_list, kv_cli_dp_list)
KV_SECRET_VERB(kv_secret_list_versions, kv_cli_dp_list_versions)
KV_SECRET_VERB(kv_secret_delete, kv_cli_dp_delete)
KV_SECRET_VERB(kv_secret_list_deleted, kv_cli_dp_list_deleted)
KV_SECRET_VERB(kv_secret_show_deleted, kv_cli_dp_show_deleted)
KV_SECRET_VERB(kv_secret_recover, kv_cli_dp_recover)
KV_SECRET_VERB(kv_secret_purge, kv_cli_dp_purge)
KV_SECRET_VERB(kv_secret_backup, kv_cli_dp_backup)
KV_SECRET_VERB(kv_secret_restore, kv_cli_dp_restore)

static const kv_cli_cmd kv_secret_cmds[] = {
    {"backup", "Back up a secret (all versions) to a file.", kv_backup_specs,
     KV_NELEM(kv_backup_specs), kv_secret_backup, NULL},
    {"delete", "Delete a secret (all versions).", kv_name_specs, KV_NELEM(kv_name_specs),
     kv_secret_delete, NULL},
    {"download", "Download a secret into a file.", kv_download_specs, KV_NELEM(kv_download_specs),
     kv_secret_download, "kvault secret download --vault-name dev -n s1 -f s1.txt"},
    {"list", "List secrets in the vault.", kv_list_specs, KV_NELEM(kv_list_specs), kv_secret_list,
     NULL},
    {"list-deleted", "List deleted secrets.", kv_deleted_list_specs,
     KV_NELEM(kv_deleted_list_specs), kv_secret_list_deleted, NULL},
    {"list-versions", "List the versions of a secret.", kv_versions_specs,
     KV_NELEM(kv_versions_specs), kv_secret_list_versions, NULL},
    {"purge", "Permanently delete a deleted secret.", kv_name_specs, KV_NELEM(kv_name_specs),
     kv_secret_purge, NULL},
    {"recover", "Recover a deleted secret to its latest version.", kv_name_specs,
     KV_NELEM(kv_name_specs), kv_secret_recover, NULL},
    {"restore", "Restore a backed-up secret to a vault.", kv_restore_specs,
     KV_NELEM(kv_restore_specs), kv_secret_restore, NULL},
    {"set", "Create a secret (or a new version of it) in the vault.", kv_set_specs,
     KV_NELEM(kv_set_specs), kv_secret_set,
     "kvault secret set --vault-name dev -n s1 --value hunter2\n"
     "kvault secret set --vault-name dev -n blob --file data.bin --encoding base64"},
    {"set-attributes", "Update a secret's attributes (content type, enabled, dates, tags).",
     kv_setattr_specs, KV_NELEM(kv_setattr_specs), kv_secret_set_attributes, NULL},
    {"show", "Get a specified secret from the vault.", kv_show_specs, KV_NELEM(kv_show_specs),
     kv_secret_show, "kvault secret show --vault-name dev -n s1 --query value -o tsv"},
    {"show-deleted", "Get a deleted secret.", kv_name_specs, KV_NELEM(kv_name_specs),
     kv_secret_show_deleted, NULL},
};

const kv_cli_group kv_cli_secret_group = {"secret", "Manage secrets.", kv_secret_cmds,
                                          KV_NELEM(kv_secret_cmds)};
