/* vd_keys_lifecycle.c - key endpoints for import (BYOK JWK with private parts), update, and
 * soft delete: delete, deleted keys (get / list), recover and purge, with the vault's
 * retention days and purge protection. */
#include "vd_keys_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vd_crypto.h"
#include "vd_hsm.h"
#include "vd_keycache.h"
#include "vd_keys_int.h"
#include "vd_store_certs.h"
#include "vd_store_keys.h"
#include "vd_util.h"

#define VD_DAY 86400LL

void vd_key_recovery_level(const vd_req *r, char *level, size_t levellen, int *days)
{
    int d = 90;
    bool pp = false;

    if (vd_store_vault_recovery(r->store, r->vault.name, &d, &pp) != KV_OK) {
        d = 90;
        pp = false;
    }
    snprintf(level, levellen, "%s%s", d < 90 ? "CustomizedRecoverable" : "Recoverable",
             pp ? "" : "+Purgeable");
    *days = d;
}

bool vd_key_name_not_deleted(vd_req *r, const char *name)
{
    bool live = false, deleted = false;

    if (vd_store_key_state(r->store, r->vault.name, name, &live, &deleted) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be read.");
        return false;
    }
    if (deleted) {
        vd_reply_error(r, 409, "Conflict", "ObjectIsDeletedButRecoverable",
                       "Key %.127s is currently in a deleted but recoverable state, and its name "
                       "cannot be reused; in this state, the key can only be recovered or purged.",
                       name);
        return false;
    }
    return true;
}

/* ---- import ---- */

void vd_keys_import(vd_req *r, const char *name, const char *version)
{
    json_t *body = NULL, *jwk, *hsmj, *rp;
    vd_key_row row = {0};
    EVP_PKEY *pkey = NULL;
    const char *kty;
    char why[256], aad[300];
    kv_rv rv;

    (void)version;
    if (!vd_key_name_ok(name)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL || !vd_key_name_not_deleted(r, name))
        goto done;
    jwk = json_object_get(body, "key");
    if (!json_is_object(jwk)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter key is missing or is not a JSON Web Key.");
        goto done;
    }
    hsmj = json_object_get(body, "Hsm");
    if (hsmj != NULL && !json_is_null(hsmj) && !json_is_boolean(hsmj)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter Hsm must be a boolean.");
        goto done;
    }
    rp = json_object_get(body, "release_policy");
    if (rp != NULL && !json_is_null(rp)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "AKV.SKR.1005: Non-exportable keys must not have release policy.");
        goto done;
    }
    rv = vd_crypto_import_jwk(jwk, &pkey, why, sizeof(why));
    if (rv == KV_ERR_INVALID_ARG) {
        vd_reply_error(r, 400, "BadParameter", NULL, "Invalid key: %s", why);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    kty = json_string_value(json_object_get(jwk, "kty"));
    snprintf(row.kty, sizeof(row.kty), "%s", strncmp(kty, "RSA", 3) == 0 ? "RSA" : "EC");
    /* HSM-protected import: H3's pool takes the key here when the vault has one. */
    row.hsm = json_is_true(hsmj) || strstr(kty, "-HSM") != NULL;
    row.key_ops = vd_parse_key_ops(r, json_object_get(jwk, "key_ops"), row.kty);
    if (row.key_ops == NULL || !vd_parse_attributes(r, json_object_get(body, "attributes"), &row) ||
        !vd_parse_tags(r, json_object_get(body, "tags"), &row))
        goto done;
    snprintf(row.vault, sizeof(row.vault), "%s", r->vault.name);
    snprintf(row.name, sizeof(row.name), "%s", name);
    if (vd_random_hex(row.version, 16) != KV_OK)
        goto fail;
    row.created = row.updated = vd_now();
    if (vd_crypto_pub_der(pkey, &row.pub_der, &row.pub_len) != KV_OK)
        goto fail;
    vd_key_aad(&row, aad, sizeof(aad));
    if (vd_crypto_wrap_pkey(r->ctx->kek, aad, pkey, row.iv, &row.wrapped, &row.wrapped_len) !=
        KV_OK)
        goto fail;
    if (vd_store_key_insert(r->store, &row) != KV_OK)
        goto fail;
    vd_keycache_put(r->ctx->keycache, row.vault, row.version, pkey);
    vd_reply_bundle(r, &row);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be imported.");
done:
    EVP_PKEY_free(pkey);
    vd_key_row_clear(&row);
    json_decref(body);
}

/* ---- update ---- */

/* Applies the members present in attrs to row (merge); false after answering 400. */
static bool vd_merge_attributes(vd_req *r, const json_t *attrs, vd_key_row *row)
{
    vd_key_row tmp = {0};
    const json_t *v;

    if (attrs == NULL || json_is_null(attrs))
        return true;
    if (!vd_parse_attributes(r, attrs, &tmp))
        return false;
    v = json_object_get(attrs, "enabled");
    if (v != NULL && !json_is_null(v))
        row->enabled = tmp.enabled;
    v = json_object_get(attrs, "nbf");
    if (v != NULL && !json_is_null(v)) {
        row->has_nbf = true;
        row->nbf = tmp.nbf;
    }
    v = json_object_get(attrs, "exp");
    if (v != NULL && !json_is_null(v)) {
        row->has_exp = true;
        row->exp = tmp.exp;
    }
    return true;
}

void vd_keys_update(vd_req *r, const char *name, const char *version)
{
    json_t *body = NULL, *v;
    vd_key_row row = {0};
    char *ops = NULL, *old_tags;
    kv_rv rv;

    if (!vd_key_load(r, name, version, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    v = json_object_get(body, "release_policy");
    if (v != NULL && !json_is_null(v)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "AKV.SKR.1005: Non-exportable keys must not have release policy.");
        goto done;
    }
    v = json_object_get(body, "key_ops");
    if (v != NULL && !json_is_null(v)) {
        ops = vd_parse_key_ops(r, v, row.kty);
        if (ops == NULL)
            goto done;
    }
    if (!vd_merge_attributes(r, json_object_get(body, "attributes"), &row))
        goto done;
    v = json_object_get(body, "tags");
    if (v != NULL && !json_is_null(v)) {
        old_tags = row.tags;
        row.tags = NULL;
        if (!vd_parse_tags(r, v, &row)) {
            free(old_tags);
            goto done;
        }
        free(old_tags);
    }
    if (ops != NULL) {
        free(row.key_ops);
        row.key_ops = ops;
        ops = NULL;
    }
    row.updated = vd_now();
    rv = vd_store_key_update(r->store, &row);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_key_not_found(r, name, version);
        goto done;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be updated.");
        goto done;
    }
    vd_reply_bundle(r, &row);
done:
    free(ops);
    vd_key_row_clear(&row);
    json_decref(body);
}

/* ---- delete / deleted keys ---- */

static void vd_recovery_id(const vd_req *r, const char *name, char *out, size_t outlen)
{
    char base[300];

    vd_base_url(r, base, sizeof(base));
    snprintf(out, outlen, "%s/deletedkeys/%s", base, name);
}

static void vd_add_deleted_fields(const vd_req *r, json_t *obj, const vd_key_row *row,
                                  long long deleted_date, long long purge_date)
{
    char rid[600];

    vd_recovery_id(r, row->name, rid, sizeof(rid));
    json_object_set_new(obj, "recoveryId", json_string(rid));
    json_object_set_new(obj, "deletedDate", json_integer(deleted_date));
    json_object_set_new(obj, "scheduledPurgeDate", json_integer(purge_date));
}

static void vd_reply_deleted_bundle(vd_req *r, const vd_key_row *row, long long deleted_date,
                                    long long purge_date)
{
    json_t *b = vd_key_bundle(r, row);

    if (b == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be encoded.");
        return;
    }
    vd_add_deleted_fields(r, b, row, deleted_date, purge_date);
    vd_reply_json(r, 200, b);
}

static void vd_deleted_not_found(vd_req *r, const char *name)
{
    vd_reply_error(r, 404, "KeyNotFound", NULL, "Deleted Key not found: %.127s", name ? name : "");
}

void vd_keys_delete(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    long long now = vd_now(), purge;
    int days = 90;
    bool pp = false;
    kv_rv rv;

    (void)version;
    if (!vd_key_load(r, name, NULL, &row))
        goto done;
    if (vd_store_key_is_managed(r->store, row.vault, row.name, row.version)) {
        vd_reply_error(r, 403, "Forbidden", NULL,
                       "Key %.127s is managed by a certificate and cannot be deleted directly: "
                       "delete the certificate instead.",
                       row.name);
        goto done;
    }
    if (vd_store_vault_recovery(r->store, r->vault.name, &days, &pp) != KV_OK)
        goto fail;
    purge = now + (long long)days * VD_DAY;
    rv = vd_store_key_soft_delete(r->store, r->vault.name, row.name, now, purge);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_key_not_found(r, name, NULL);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    vd_reply_deleted_bundle(r, &row, now, purge);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be deleted.");
done:
    vd_key_row_clear(&row);
}

void vd_keys_deleted_get(vd_req *r, const char *name, const char *version)
{
    vd_deleted_key dk = {0};
    kv_rv rv;

    (void)version;
    if (!vd_key_name_ok(name)) {
        vd_deleted_not_found(r, name);
        return;
    }
    rv = vd_store_deleted_key_get(r->store, r->vault.name, name, &dk);
    if (rv == KV_ERR_NOT_FOUND)
        vd_deleted_not_found(r, name);
    else if (rv != KV_OK)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The deleted key could not be read.");
    else
        vd_reply_deleted_bundle(r, &dk.row, dk.deleted_date, dk.purge_date);
    vd_key_row_clear(&dk.row);
}

void vd_keys_deleted_list(vd_req *r, const char *name, const char *version)
{
    vd_deleted_key *keys = NULL;
    size_t n = 0, max, i;
    char after[VD_NAME_MAX + 2];
    json_t *value, *page, *item;

    (void)name;
    (void)version;
    if (!vd_max_results(r, &max) || !vd_skiptoken(r, 'd', after, sizeof(after)))
        return;
    if (vd_store_deleted_key_list(r->store, r->vault.name, after[0] ? after : NULL, max + 1, &keys,
                                  &n) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The deleted keys could not be listed.");
        return;
    }
    value = json_array();
    for (i = 0; i < n && i < max; i++) {
        item = vd_key_item(r, &keys[i].row, false);
        if (item == NULL)
            continue;
        vd_add_deleted_fields(r, item, &keys[i].row, keys[i].deleted_date, keys[i].purge_date);
        json_array_append_new(value, item);
    }
    page = json_pack("{s:o}", "value", value);
    vd_set_next_link(r, page, "/deletedkeys", 'd', n > max ? keys[max - 1].row.name : NULL, max);
    vd_reply_json(r, 200, page);
    vd_deleted_keys_free(keys, n);
}

void vd_keys_recover(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    kv_rv rv;

    (void)version;
    if (!vd_key_name_ok(name)) {
        vd_deleted_not_found(r, name);
        return;
    }
    rv = vd_store_key_recover(r->store, r->vault.name, name);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_deleted_not_found(r, name);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be recovered.");
        return;
    }
    if (vd_key_load(r, name, NULL, &row))
        vd_reply_bundle(r, &row);
    vd_key_row_clear(&row);
}

void vd_keys_purge(vd_req *r, const char *name, const char *version)
{
    vd_deleted_key dk = {0};
    vd_key_row *rows = NULL;
    size_t n = 0, i;
    int days = 90;
    bool pp = false;
    kv_rv rv;

    (void)version;
    if (!vd_key_name_ok(name)) {
        vd_deleted_not_found(r, name);
        goto done;
    }
    rv = vd_store_deleted_key_get(r->store, r->vault.name, name, &dk);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_deleted_not_found(r, name);
        goto done;
    }
    if (rv != KV_OK || vd_store_vault_recovery(r->store, r->vault.name, &days, &pp) != KV_OK)
        goto fail;
    if (pp && vd_now() < dk.purge_date) {
        vd_reply_error(r, 403, "Forbidden", NULL,
                       "Operation \"purge\" is not allowed because purge protection is enabled "
                       "for this vault. Key Vault service will automatically purge it after the "
                       "retention period has passed.");
        goto done;
    }
    if (vd_store_key_all(r->store, r->vault.name, name, true, &rows, &n) != KV_OK)
        goto fail;
    rv = vd_store_key_purge(r->store, r->vault.name, name);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_deleted_not_found(r, name);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    for (i = 0; i < n; i++) {
        vd_keycache_remove(r->ctx->keycache, rows[i].vault, rows[i].version);
        if (rows[i].hsm_ref != NULL && /* HSM-protected version: its objects in the pool, */
            !vd_store_hsm_ref_shared(r->store, rows[i].hsm_ref, rows[i].vault, rows[i].name))
            vd_hsm_destroy_key(r->ctx, rows[i].hsm_ref); /* unless a restored copy uses them */
    }
    vd_reply_json(r, 204, NULL);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be purged.");
done:
    vd_key_rows_free(rows, n);
    vd_key_row_clear(&dk.row);
}
