/* vd_secrets.c - secret endpoints. Values are encrypted at rest under the KEK with AES-256-GCM
 * (AAD "secret|vault|name|version", lower case: the "secret|" prefix separates them from the
 * certificate key of the same name and version) and never logged. Values are limited to 25 KiB
 * (25,600 bytes) and contentType to 255 characters. */
#include "vd_secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vd_certs.h"
#include "vd_keys_int.h"
#include "vd_util.h"

#define VD_SECRET_BACKUP_LABEL "kvault vaultd secret backup v1"

static void vd_secret_not_found(vd_req *r, const char *name, const char *version)
{
    bool v = version != NULL && version[0] != '\0';

    vd_reply_error(r, 404, "SecretNotFound", NULL,
                   "A secret with (name/id) %.127s%s%.64s was not found in this key vault. If you "
                   "recently deleted this secret you may be able to recover it using the correct "
                   "recovery command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182",
                   name, v ? "/" : "", v ? version : "");
}

static void vd_deleted_secret_not_found(vd_req *r, const char *name)
{
    vd_reply_error(r, 404, "SecretNotFound", NULL, "Deleted Secret not found: %.127s", name);
}

static void vd_secret_attrs_of(const vd_secret_row *row, vd_sc_attrs *a)
{
    a->enabled = row->enabled;
    a->has_nbf = row->has_nbf;
    a->nbf = row->nbf;
    a->has_exp = row->has_exp;
    a->exp = row->exp;
}

static void vd_secret_id(const vd_req *r, const vd_secret_row *row, bool versioned, char *out,
                         size_t outlen)
{
    char base[300];

    vd_base_url(r, base, sizeof(base));
    if (versioned)
        snprintf(out, outlen, "%s/secrets/%s/%s", base, row->name, row->version);
    else
        snprintf(out, outlen, "%s/secrets/%s", base, row->name);
}

/* SecretItem (no value); deleted items add recoveryId and the dates. */
static json_t *vd_secret_item(const vd_req *r, const vd_secret_row *row, bool versioned,
                              const vd_vault_info *info)
{
    vd_sc_attrs a;
    json_t *o;
    char id[600], base[300], rid[600];

    vd_secret_attrs_of(row, &a);
    vd_secret_id(r, row, versioned, id, sizeof(id));
    o = json_pack("{s:s, s:o}", "id", id, "attributes",
                  vd_sc_attrs_json(&a, row->created, row->updated, info));
    if (o == NULL)
        return NULL;
    vd_sc_set_tags(o, row->tags);
    if (row->content_type != NULL)
        json_object_set_new(o, "contentType", json_string(row->content_type));
    if (row->managed)
        json_object_set_new(o, "managed", json_true());
    if (row->kid != NULL) {
        vd_base_url(r, base, sizeof(base));
        snprintf(rid, sizeof(rid), "%s/%s", base, row->kid);
        json_object_set_new(o, "kid", json_string(rid));
    }
    if (row->deleted) {
        vd_base_url(r, base, sizeof(base));
        snprintf(rid, sizeof(rid), "%s/deletedsecrets/%s", base, row->name);
        json_object_set_new(o, "recoveryId", json_string(rid));
        json_object_set_new(o, "deletedDate", json_integer(row->deleted_date));
        json_object_set_new(o, "scheduledPurgeDate", json_integer(row->purge_date));
    }
    return o;
}

/* Decrypts a row's value; *out NUL-terminated, free with vd_free_secret(out, len + 1). */
static kv_rv vd_secret_value(const vd_req *r, const vd_secret_row *row, uint8_t **out, size_t *len)
{
    char aad[400];

    vd_sc_aad("secret", row->vault, row->name, row->version, aad, sizeof(aad));
    return vd_sc_open(r->ctx->kek, aad, row->iv, row->value_enc, row->value_enc_len, out, len);
}

/* SecretBundle with the value (when with_value). */
static json_t *vd_secret_bundle(const vd_req *r, const vd_secret_row *row, bool with_value,
                                const vd_vault_info *info)
{
    json_t *o = vd_secret_item(r, row, true, info);
    uint8_t *val = NULL;
    size_t len = 0;

    if (o == NULL || !with_value)
        return o;
    if (vd_secret_value(r, row, &val, &len) != KV_OK) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "value", json_stringn((const char *)val, len));
    vd_free_secret(val, len + 1);
    return o;
}

static void vd_reply_secret(vd_req *r, const vd_secret_row *row, bool with_value,
                            const vd_vault_info *info)
{
    json_t *b = vd_secret_bundle(r, row, with_value, info);

    if (b == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be read.");
    else
        vd_reply_json(r, 200, b);
}

/* Loads a live version; false after answering 404/500. */
static bool vd_secret_load(vd_req *r, const char *name, const char *version, bool deleted,
                           vd_secret_row *row)
{
    kv_rv rv;

    if (!vd_sc_name_ok(name) || (version != NULL && strlen(version) >= VD_ID_MAX)) {
        if (deleted)
            vd_deleted_secret_not_found(r, name ? name : "");
        else
            vd_secret_not_found(r, name ? name : "", version);
        return false;
    }
    rv = vd_store_secret_get(r->store, r->vault.name, name, deleted ? NULL : version, deleted, row);
    if (rv == KV_ERR_NOT_FOUND) {
        if (deleted)
            vd_deleted_secret_not_found(r, name);
        else
            vd_secret_not_found(r, name, version);
        return false;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be read.");
        return false;
    }
    return true;
}

static void vd_secret_deleted_conflict(vd_req *r, const char *name)
{
    vd_reply_error(r, 409, "Conflict", "ObjectIsDeletedButRecoverable",
                   "Secret %.127s is currently in a deleted but recoverable state, and its name "
                   "cannot be reused; in this state, the secret can only be recovered or purged.",
                   name);
}

/* Encrypts value into row (row->vault/name/version set). */
/* A certificate's secret changes only through the certificate: false after 403 Forbidden. */
static bool vd_secret_unmanaged(vd_req *r, const vd_secret_row *row, const char *op)
{
    if (!row->managed)
        return true;
    vd_reply_error(r, 403, "Forbidden", NULL,
                   "Secret %s is managed by a certificate: %s the certificate instead.", row->name,
                   op);
    return false;
}

static kv_rv vd_secret_seal_into(const vd_req *r, vd_secret_row *row, const uint8_t *value,
                                 size_t len)
{
    char aad[400];

    vd_sc_aad("secret", row->vault, row->name, row->version, aad, sizeof(aad));
    return vd_sc_seal(r->ctx->kek, aad, value, len, row->iv, &row->value_enc, &row->value_enc_len);
}

/* ---- set ---- */

kv_rv vd_secrets_store_managed(vd_req *r, const char *name, const char *version,
                               const char *content_type, const uint8_t *value, size_t len,
                               const vd_sc_attrs *attrs, const char *tags)
{
    vd_secret_row row = {0};
    char kid[VD_NAME_MAX + VD_ID_MAX + 16];
    kv_rv rv;

    if (r == NULL || name == NULL || version == NULL || value == NULL || attrs == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(row.vault, sizeof(row.vault), "%s", r->vault.name);
    snprintf(row.name, sizeof(row.name), "%s", name);
    snprintf(row.version, sizeof(row.version), "%s", version);
    snprintf(kid, sizeof(kid), "keys/%s/%s", name, version);
    row.kid = strdup(kid);
    row.content_type = content_type ? strdup(content_type) : NULL;
    row.tags = tags ? strdup(tags) : NULL;
    row.managed = true;
    row.enabled = attrs->enabled;
    row.has_nbf = attrs->has_nbf;
    row.nbf = attrs->nbf;
    row.has_exp = attrs->has_exp;
    row.exp = attrs->exp;
    row.created = row.updated = vd_now();
    if (row.kid == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    rv = vd_secret_seal_into(r, &row, value, len);
    if (rv == KV_OK)
        rv = vd_store_secret_insert(r->store, &row);
done:
    vd_secret_row_clear(&row);
    return rv;
}

void vd_secrets_set(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;
    vd_sc_attrs a = {.enabled = true};
    json_t *body = NULL, *v;
    kv_rv rv;

    (void)version;
    if (!vd_sc_vault_only(r, &info))
        goto done;
    if (!vd_sc_name_ok(name)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The secret name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    v = json_object_get(body, "value");
    if (!json_is_string(v)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter value is missing.");
        goto done;
    }
    if (json_string_length(v) > VD_SECRET_MAX_VALUE) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The secret value is too large: %zu bytes (at most %d).",
                       json_string_length(v), VD_SECRET_MAX_VALUE);
        goto done;
    }
    if (json_object_get(body, "contentType") != NULL &&
        !json_is_null(json_object_get(body, "contentType"))) {
        const json_t *ct = json_object_get(body, "contentType");

        if (!json_is_string(ct) || json_string_length(ct) > VD_SECRET_MAX_CONTENT_TYPE) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "contentType must be a string of at most 255 characters.");
            goto done;
        }
        row.content_type = strdup(json_string_value(ct));
        if (row.content_type == NULL)
            goto fail;
    }
    if (!vd_sc_parse_attrs(r, json_object_get(body, "attributes"), &a) ||
        !vd_sc_parse_tags(r, json_object_get(body, "tags"), &row.tags))
        goto done;
    snprintf(row.vault, sizeof(row.vault), "%s", r->vault.name);
    snprintf(row.name, sizeof(row.name), "%s", name);
    if (vd_random_hex(row.version, 16) != KV_OK)
        goto fail;
    row.enabled = a.enabled;
    row.has_nbf = a.has_nbf;
    row.nbf = a.nbf;
    row.has_exp = a.has_exp;
    row.exp = a.exp;
    row.created = row.updated = vd_now();
    if (vd_secret_seal_into(r, &row, (const uint8_t *)json_string_value(v),
                            json_string_length(v)) != KV_OK)
        goto fail;
    rv = vd_store_secret_insert(r->store, &row);
    if (rv == KV_ERR_CONFLICT) {
        vd_secret_deleted_conflict(r, name);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    vd_reply_secret(r, &row, true, &info);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be stored.");
done:
    vd_secret_row_clear(&row);
    vd_sc_json_wipe(body, "value");
    json_decref(body);
}

/* ---- get / list / versions / update ---- */

/* GET with outContentType (api-version 2025-07-01): a certificate's PKCS#12 secret as PEM. */
static void vd_secret_get_converted(vd_req *r, const vd_secret_row *row, const char *out_ct,
                                    const vd_vault_info *info)
{
    uint8_t *val = NULL;
    size_t len = 0, plen = 0;
    char *pem = NULL;
    json_t *b = NULL;

    if (strcmp(out_ct, "application/x-pem-file") != 0 &&
        strcmp(out_ct, "application/x-pkcs12") != 0) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "outContentType must be application/x-pem-file or application/x-pkcs12.");
        return;
    }
    if (row->content_type == NULL || strcmp(row->content_type, out_ct) == 0 || !row->managed ||
        strcmp(out_ct, "application/x-pem-file") != 0) {
        if (row->content_type != NULL && strcmp(row->content_type, out_ct) == 0)
            vd_reply_secret(r, row, true, info);
        else
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "The secret (content type %.255s) cannot be converted to %s.",
                           row->content_type ? row->content_type : "none", out_ct);
        return;
    }
    if (vd_secret_value(r, row, &val, &len) != KV_OK ||
        vd_certs_pfx_to_pem((const char *)val, &pem, &plen) != KV_OK ||
        (b = vd_secret_bundle(r, row, false, info)) == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be converted.");
        goto done;
    }
    json_object_set_new(b, "value", json_stringn(pem, plen));
    json_object_set_new(b, "contentType", json_string(out_ct));
    vd_reply_json(r, 200, b);
done:
    if (val != NULL)
        vd_free_secret(val, len + 1);
    if (pem != NULL)
        vd_free_secret(pem, plen + 1);
}

void vd_secrets_get(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;
    const char *out_ct;

    if (!vd_sc_vault_only(r, &info) || !vd_secret_load(r, name, version, false, &row))
        goto done;
    if (!row.enabled) {
        vd_reply_error(r, 403, "Forbidden", "SecretDisabled",
                       "Operation get is not allowed on a disabled secret.");
        goto done;
    }
    out_ct = vd_req_param(r, "outContentType");
    if (out_ct != NULL && out_ct[0] != '\0') {
        vd_secret_get_converted(r, &row, out_ct, &info);
        goto done;
    }
    vd_reply_secret(r, &row, true, &info);
done:
    vd_secret_row_clear(&row);
}

/* ---- listing and versions (vd_sc_common.c's pager over the secret store) ---- */

static kv_rv vd_secret_pg_list(vd_req *r, const char *after, bool deleted, size_t limit,
                               void **rows, size_t *n)
{
    return vd_store_secret_list(r->store, r->vault.name, after, deleted, limit,
                                (vd_secret_row **)rows, n);
}

static kv_rv vd_secret_pg_versions(vd_req *r, const char *name, long long after_seq, size_t limit,
                                   void **rows, size_t *n)
{
    return vd_store_secret_versions(r->store, r->vault.name, name, after_seq, limit,
                                    (vd_secret_row **)rows, n);
}

static json_t *vd_secret_pg_item(const vd_req *r, const void *rows, size_t i, bool versioned,
                                 const vd_vault_info *info)
{
    return vd_secret_item(r, (const vd_secret_row *)rows + i, versioned, info);
}

static const char *vd_secret_pg_name(const void *rows, size_t i)
{
    return ((const vd_secret_row *)rows)[i].name;
}

static long long vd_secret_pg_seq(const void *rows, size_t i)
{
    return ((const vd_secret_row *)rows)[i].seq;
}

static void vd_secret_pg_free(void *rows, size_t n)
{
    vd_secret_rows_free(rows, n);
}

static void vd_secret_pg_not_found(vd_req *r, const char *name)
{
    vd_secret_not_found(r, name, NULL);
}

static const vd_sc_pager vd_secret_pager = {
    "secrets",         vd_secret_pg_list, vd_secret_pg_versions, vd_secret_pg_item,
    vd_secret_pg_name, vd_secret_pg_seq,  vd_secret_pg_free,     vd_secret_pg_not_found,
};

void vd_secrets_list(vd_req *r, const char *name, const char *version)
{
    (void)name;
    (void)version;
    vd_sc_list_page(r, &vd_secret_pager, false);
}

void vd_secrets_deleted_list(vd_req *r, const char *name, const char *version)
{
    (void)name;
    (void)version;
    vd_sc_list_page(r, &vd_secret_pager, true);
}

void vd_secrets_versions(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_sc_versions_page(r, &vd_secret_pager, name);
}

void vd_secrets_update(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;
    vd_sc_attrs a;
    json_t *body = NULL, *ct;

    if (!vd_sc_vault_only(r, &info) || !vd_secret_load(r, name, version, false, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    if (!vd_secret_unmanaged(r, &row, "update"))
        goto done;
    vd_secret_attrs_of(&row, &a);
    if (!vd_sc_parse_attrs(r, json_object_get(body, "attributes"), &a) ||
        !vd_sc_parse_tags(r, json_object_get(body, "tags"), &row.tags))
        goto done;
    ct = json_object_get(body, "contentType");
    if (ct != NULL && !json_is_null(ct)) {
        if (!json_is_string(ct) || json_string_length(ct) > VD_SECRET_MAX_CONTENT_TYPE) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "contentType must be a string of at most 255 characters.");
            goto done;
        }
        free(row.content_type);
        row.content_type = strdup(json_string_value(ct));
        if (row.content_type == NULL)
            goto fail;
    }
    row.enabled = a.enabled;
    row.has_nbf = a.has_nbf;
    row.nbf = a.nbf;
    row.has_exp = a.has_exp;
    row.exp = a.exp;
    row.updated = vd_now();
    if (vd_store_secret_update(r->store, &row) != KV_OK)
        goto fail;
    vd_reply_secret(r, &row, false, &info);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be updated.");
done:
    vd_secret_row_clear(&row);
    json_decref(body);
}

/* ---- delete / deleted / recover / purge ---- */

void vd_secrets_delete(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;
    long long now = vd_now();
    kv_rv rv;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_secret_load(r, name, NULL, false, &row))
        goto done;
    if (!vd_secret_unmanaged(r, &row, "delete"))
        goto done;
    rv = vd_store_secret_set_deleted(r->store, r->vault.name, row.name, true, now,
                                     now + 86400LL * info.retention_days);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_secret_not_found(r, name, NULL);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    row.deleted = true;
    row.deleted_date = now;
    row.purge_date = now + 86400LL * info.retention_days;
    vd_reply_secret(r, &row, false, &info);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be deleted.");
done:
    vd_secret_row_clear(&row);
}

void vd_secrets_deleted_get(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;

    (void)version;
    if (vd_sc_vault_only(r, &info) && vd_secret_load(r, name, NULL, true, &row))
        vd_reply_secret(r, &row, false, &info);
    vd_secret_row_clear(&row);
}

void vd_secrets_recover(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_secret_load(r, name, NULL, true, &row))
        goto done;
    if (!vd_secret_unmanaged(r, &row, "recover"))
        goto done;
    if (vd_store_secret_set_deleted(r->store, r->vault.name, row.name, false, 0, 0) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be recovered.");
        goto done;
    }
    row.deleted = false;
    vd_reply_secret(r, &row, false, &info);
done:
    vd_secret_row_clear(&row);
}

void vd_secrets_purge(vd_req *r, const char *name, const char *version)
{
    vd_secret_row row = {0};
    vd_vault_info info;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_secret_load(r, name, NULL, true, &row))
        goto done;
    if (info.purge_protection) {
        vd_reply_error(r, 403, "Forbidden", NULL,
                       "Operation 'DeletedSecretPurge' is not allowed because purge protection is "
                       "enabled for this vault. Key Vault service will automatically purge it "
                       "after the retention period has passed.");
        goto done;
    }
    if (!vd_secret_unmanaged(r, &row, "purge"))
        goto done;
    if (vd_store_secret_purge(r->store, r->vault.name, row.name, true) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be purged.");
        goto done;
    }
    vd_reply_json(r, 204, NULL);
done:
    vd_secret_row_clear(&row);
}

/* ---- backup / restore ---- */

void vd_secrets_backup(vd_req *r, const char *name, const char *version)
{
    vd_secret_row *rows = NULL;
    vd_vault_info info;
    size_t n = 0, i;
    json_t *payload = NULL, *vers;
    char *blob = NULL;
    uint8_t *val = NULL;
    size_t len = 0;

    (void)version;
    if (!vd_sc_vault_only(r, &info))
        goto done;
    if (!vd_sc_name_ok(name)) {
        vd_secret_not_found(r, name, NULL);
        goto done;
    }
    if (vd_store_secret_versions(r->store, r->vault.name, name, 0, 501, &rows, &n) != KV_OK)
        goto fail;
    if (n == 0) {
        vd_secret_not_found(r, name, NULL);
        goto done;
    }
    if (rows[0].managed) {
        vd_reply_error(r, 403, "Forbidden", NULL,
                       "Secret %s is managed by a certificate: back up the certificate instead.",
                       rows[0].name);
        goto done;
    }
    if (n > 500) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The secret has more than 500 versions and cannot be backed up.");
        goto done;
    }
    vers = json_array();
    payload =
        json_pack("{s:s, s:s, s:o}", "type", "secret", "name", rows[0].name, "versions", vers);
    if (payload == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        json_t *o;

        if (vd_secret_value(r, &rows[i], &val, &len) != KV_OK)
            goto fail;
        o = json_pack("{s:s, s:s%, s:I, s:I, s:b}", "version", rows[i].version, "value",
                      (const char *)val, len, "created", (json_int_t)rows[i].created, "updated",
                      (json_int_t)rows[i].updated, "enabled", rows[i].enabled);
        vd_free_secret(val, len + 1);
        val = NULL;
        if (o == NULL)
            goto fail;
        if (rows[i].content_type)
            json_object_set_new(o, "contentType", json_string(rows[i].content_type));
        if (rows[i].tags)
            json_object_set_new(o, "tags", json_string(rows[i].tags));
        if (rows[i].has_nbf)
            json_object_set_new(o, "nbf", json_integer(rows[i].nbf));
        if (rows[i].has_exp)
            json_object_set_new(o, "exp", json_integer(rows[i].exp));
        json_array_append_new(vers, o);
    }
    if (vd_sc_backup_seal(r->ctx, VD_SECRET_BACKUP_LABEL, payload, &blob) != KV_OK)
        goto fail;
    vd_reply_json(r, 200, json_pack("{s:s}", "value", blob));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be backed up.");
done:
    if (payload != NULL) {
        /* the payload holds secret values: wipe them before freeing */
        json_t *vv;
        size_t k;

        json_array_foreach(json_object_get(payload, "versions"), k, vv)
        {
            json_t *s = json_object_get(vv, "value");

            if (json_is_string(s))
                OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
        }
    }
    json_decref(payload);
    free(blob);
    vd_secret_rows_free(rows, n);
}

void vd_secrets_restore(vd_req *r, const char *name, const char *version)
{
    vd_secret_row *rows = NULL;
    vd_vault_info info;
    json_t *body = NULL, *payload = NULL, *vers, *o;
    const json_t *v;
    const char *sname;
    size_t n = 0, i;
    kv_rv rv;

    (void)name;
    (void)version;
    body = vd_sc_vault_body(r, &info);
    if (body == NULL)
        goto done;
    v = json_object_get(body, "value");
    if (!json_is_string(v) || vd_sc_backup_open(r->ctx, VD_SECRET_BACKUP_LABEL,
                                                json_string_value(v), &payload) != KV_OK) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Backup blob contains invalid data: it is malformed or was made by "
                       "another vaultd instance.");
        goto done;
    }
    sname = json_string_value(json_object_get(payload, "name"));
    vers = json_object_get(payload, "versions");
    if (sname == NULL || !vd_sc_name_ok(sname) || !json_is_array(vers) ||
        json_array_size(vers) == 0) {
        vd_reply_error(r, 400, "BadParameter", NULL, "Backup blob contains invalid data.");
        goto done;
    }
    rows = calloc(json_array_size(vers), sizeof(*rows));
    if (rows == NULL)
        goto fail;
    json_array_foreach(vers, i, o)
    {
        vd_secret_row *row = &rows[n++];
        const json_t *val = json_object_get(o, "value");

        snprintf(row->vault, sizeof(row->vault), "%s", r->vault.name);
        snprintf(row->name, sizeof(row->name), "%s", sname);
        snprintf(row->version, sizeof(row->version), "%s",
                 json_string_value(json_object_get(o, "version")) ?: "");
        if (json_is_string(json_object_get(o, "contentType")))
            row->content_type = strdup(json_string_value(json_object_get(o, "contentType")));
        if (json_is_string(json_object_get(o, "tags")))
            row->tags = strdup(json_string_value(json_object_get(o, "tags")));
        row->created = json_integer_value(json_object_get(o, "created"));
        row->updated = json_integer_value(json_object_get(o, "updated"));
        row->enabled = json_is_true(json_object_get(o, "enabled"));
        row->has_nbf = json_is_integer(json_object_get(o, "nbf"));
        row->nbf = json_integer_value(json_object_get(o, "nbf"));
        row->has_exp = json_is_integer(json_object_get(o, "exp"));
        row->exp = json_integer_value(json_object_get(o, "exp"));
        if (!json_is_string(val) || row->version[0] == '\0' ||
            vd_secret_seal_into(r, row, (const uint8_t *)json_string_value(val),
                                json_string_length(val)) != KV_OK)
            goto fail;
    }
    rv = vd_store_secret_restore(r->store, rows, n);
    if (rv == KV_ERR_CONFLICT) {
        vd_reply_error(r, 409, "Conflict", NULL,
                       "Secret %.127s already exists in this vault (or is deleted but "
                       "recoverable): it cannot be restored.",
                       sname);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    vd_reply_secret(r, &rows[n - 1], false, &info);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The secret could not be restored.");
done:
    if (payload != NULL) {
        json_array_foreach(json_object_get(payload, "versions"), i, o)
        {
            json_t *s = json_object_get(o, "value");

            if (json_is_string(s))
                OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
        }
    }
    json_decref(payload);
    json_decref(body);
    vd_secret_rows_free(rows, n);
}
