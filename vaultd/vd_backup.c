/* vd_backup.c - key backup and restore. A backup holds every version of a key (attributes,
 * key_ops, tags, public key, private key still wrapped under the KEK) and its rotation
 * policy, sealed with AES-256-GCM under the instance backup key (HKDF of the KEK), so only
 * vaults of the same vaultd instance can restore it. Restore rewraps each version for its
 * new place and keeps versions, ids and attributes. HSM-protected versions hold their pool
 * reference and, when the pool has a wrapping key and the key was made extractable under it,
 * the key material wrapped under the pool wrapping key (kv_hsm_wrap_key, "hsm_wrapped"):
 * restore shares the pool object while it exists and otherwise unwraps the material into the
 * pool (after a purge, or in a pool holding the same wrapping key). Versions without wrapped
 * material (keys made before the pool had a wrapping key) are refused once the object is gone. */
#include "vd_keys_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "vd_backup.h"
#include "vd_crypto.h"
#include "vd_hsm.h"
#include "vd_keycache.h"
#include "vd_keys_int.h"
#include "vd_store_keys.h"
#include "vd_util.h"

#define VD_BACKUP_FORMAT 1
#define VD_BACKUP_MAX_VERSIONS 500

json_t *vd_backup_b64(const uint8_t *b, size_t len)
{
    char *s = b != NULL && len > 0 ? kv_b64url_encode(b, len) : strdup("");
    json_t *j = s ? json_string(s) : NULL;

    free(s);
    return j;
}

static json_t *vd_version_json(const vd_key_row *row)
{
    json_t *v = json_pack("{s:s, s:s, s:b, s:I, s:I, s:b, s:o, s:o, s:o, s:o}", "version",
                          row->version, "kty", row->kty, "hsm", row->hsm, "created",
                          (json_int_t)row->created, "updated", (json_int_t)row->updated, "enabled",
                          row->enabled, "key_ops", json_loads(row->key_ops, 0, NULL), "pub",
                          vd_backup_b64(row->pub_der, row->pub_len), "wrapped",
                          vd_backup_b64(row->wrapped, row->wrapped_len), "iv",
                          vd_backup_b64(row->iv, VD_IV_LEN));

    if (v == NULL)
        return NULL;
    if (row->has_nbf)
        json_object_set_new(v, "nbf", json_integer(row->nbf));
    if (row->has_exp)
        json_object_set_new(v, "exp", json_integer(row->exp));
    if (row->tags != NULL)
        json_object_set_new(v, "tags", json_loads(row->tags, 0, NULL));
    if (row->hsm_ref != NULL) /* HSM key: the reference (+ "hsm_wrapped", vd_backup_hsm) */
        json_object_set_new(v, "hsm_ref", json_string(row->hsm_ref));
    return v;
}

kv_rv vd_backup_hsm_wrapped(vd_req *r, const vd_key_row *row, json_t *v, kv_err *err)
{
    kv_hsm_pool *pool;
    uint8_t *blob = NULL;
    size_t blen = 0;
    kv_rv rv;

    if (row->hsm_ref == NULL)
        return KV_OK;
    pool = vd_hsm_pool(r->ctx, err);
    rv = pool != NULL ? kv_hsm_wrap_key(pool, row->hsm_ref, &blob, &blen, err) : err->rv;
    if (rv == KV_OK) {
        json_object_set_new(v, "hsm_wrapped", vd_backup_b64(blob, blen));
        free(blob);
    }
    if (rv == KV_ERR_UNSUPPORTED || rv == KV_ERR_NOT_FOUND)
        rv = KV_OK; /* legacy key (or no pool / object): reference only, checked at restore */
    return rv;
}

/* vd_backup_hsm_wrapped; false after answering 503 (pool unavailable) or 500. */
static bool vd_backup_hsm(vd_req *r, const vd_key_row *row, json_t *v)
{
    kv_err err;
    kv_rv rv = vd_backup_hsm_wrapped(r, row, v, &err);

    if (rv == KV_OK)
        return true;
    if (rv == KV_ERR_SERVER || rv == KV_ERR_NETWORK)
        vd_reply_error(r, 503, "ServiceUnavailable", NULL, "%s", err.message);
    else
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be backed up: %s",
                       err.message);
    return false;
}

void vd_keys_backup(vd_req *r, const char *name, const char *version)
{
    vd_key_row *rows = NULL;
    vd_policy_row pol = {0};
    size_t n = 0, i, plen = 0, slen = 0;
    json_t *doc = NULL, *vers, *v;
    char *plain = NULL, *b64 = NULL;
    uint8_t *sealed = NULL;
    kv_rv rv;

    (void)version;
    if (!vd_key_name_ok(name)) {
        vd_key_not_found(r, name, NULL);
        goto done;
    }
    if (vd_store_key_all(r->store, r->vault.name, name, false, &rows, &n) != KV_OK)
        goto fail;
    if (n == 0) {
        vd_key_not_found(r, name, NULL);
        goto done;
    }
    if (n > VD_BACKUP_MAX_VERSIONS) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The key has more than %d versions and cannot be backed up.",
                       VD_BACKUP_MAX_VERSIONS);
        goto done;
    }
    vers = json_array();
    doc = json_pack("{s:i, s:s, s:s, s:o}", "format", VD_BACKUP_FORMAT, "vault", rows[0].vault,
                    "name", rows[0].name, "versions", vers);
    if (doc == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        v = vd_version_json(&rows[i]);
        if (v == NULL || json_array_append_new(vers, v) != 0)
            goto fail;
        if (!vd_backup_hsm(r, &rows[i], v))
            goto done;
    }
    rv = vd_store_policy_get(r->store, r->vault.name, rows[0].name, &pol);
    if (rv == KV_OK)
        json_object_set_new(doc, "rotationPolicy", json_loads(pol.policy, 0, NULL));
    else if (rv != KV_ERR_NOT_FOUND)
        goto fail;
    plain = json_dumps(doc, JSON_COMPACT);
    if (plain == NULL)
        goto fail;
    plen = strlen(plain);
    if (vd_crypto_backup_seal(r->ctx->kek, VD_KEY_BACKUP_LABEL, (const uint8_t *)plain, plen,
                              &sealed, &slen) != KV_OK)
        goto fail;
    b64 = kv_b64url_encode(sealed, slen);
    if (b64 == NULL)
        goto fail;
    vd_reply_json(r, 200, json_pack("{s:s}", "value", b64));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be backed up.");
done:
    free(b64);
    free(sealed);
    if (plain != NULL)
        vd_free_secret(plain, plen);
    json_decref(doc);
    vd_policy_row_clear(&pol);
    vd_key_rows_free(rows, n);
}

/* A base64url member of a backup version into a malloc'd buffer. */
static bool vd_blob_member(const json_t *v, const char *member, uint8_t **out, size_t *len)
{
    const json_t *s = json_object_get(v, member);

    return json_is_string(s) && kv_b64_decode(json_string_value(s), out, len) == KV_OK;
}

kv_rv vd_backup_rewrap(vd_req *r, const char *old_vault, vd_key_row *row, const uint8_t *iv,
                       const uint8_t *wrapped, size_t wlen, bool *unwrap_failed)
{
    vd_key_row old = {0};
    EVP_PKEY *pkey = NULL;
    char aad[300];
    kv_rv rv;

    snprintf(old.vault, sizeof(old.vault), "%s", old_vault);
    snprintf(old.name, sizeof(old.name), "%s", row->name);
    snprintf(old.version, sizeof(old.version), "%s", row->version);
    vd_key_aad(&old, aad, sizeof(aad));
    rv = vd_crypto_unwrap_pkey(r->ctx->kek, aad, iv, wrapped, wlen, &pkey);
    if (unwrap_failed != NULL)
        *unwrap_failed = rv != KV_OK;
    if (rv == KV_OK) {
        vd_key_aad(row, aad, sizeof(aad));
        rv = vd_crypto_wrap_pkey(r->ctx->kek, aad, pkey, row->iv, &row->wrapped, &row->wrapped_len);
    }
    EVP_PKEY_free(pkey);
    return rv;
}

/* Rebuilds a version row from the backup for vault/name, rewrapping its private key. */
static kv_rv vd_restore_version(vd_req *r, const char *old_vault, const char *name, const json_t *v,
                                vd_key_row *row)
{
    const json_t *s;
    uint8_t *iv = NULL, *wrapped = NULL;
    size_t ivlen = 0, wlen = 0;
    kv_rv rv = KV_ERR_INVALID_ARG;

    s = json_object_get(v, "version");
    if (!json_is_string(s) || strlen(json_string_value(s)) >= VD_ID_MAX ||
        !json_is_string(json_object_get(v, "kty")))
        goto done;
    snprintf(row->vault, sizeof(row->vault), "%s", r->vault.name);
    snprintf(row->name, sizeof(row->name), "%s", name);
    snprintf(row->version, sizeof(row->version), "%s", json_string_value(s));
    snprintf(row->kty, sizeof(row->kty), "%s", json_string_value(json_object_get(v, "kty")));
    row->hsm = json_is_true(json_object_get(v, "hsm"));
    row->created = json_integer_value(json_object_get(v, "created"));
    row->updated = json_integer_value(json_object_get(v, "updated"));
    row->enabled = json_is_true(json_object_get(v, "enabled"));
    s = json_object_get(v, "nbf");
    row->has_nbf = json_is_integer(s);
    row->nbf = json_integer_value(s);
    s = json_object_get(v, "exp");
    row->has_exp = json_is_integer(s);
    row->exp = json_integer_value(s);
    row->key_ops = json_dumps(json_object_get(v, "key_ops"), JSON_COMPACT);
    s = json_object_get(v, "tags");
    if (json_is_object(s))
        row->tags = json_dumps(s, JSON_COMPACT);
    if (row->key_ops == NULL || !vd_blob_member(v, "iv", &iv, &ivlen) || ivlen != VD_IV_LEN)
        goto done;
    memcpy(row->iv, iv, VD_IV_LEN);
    s = json_object_get(v, "pub");
    if (json_is_string(s) && json_string_length(s) > 0 &&
        kv_b64_decode(json_string_value(s), &row->pub_der, &row->pub_len) != KV_OK)
        goto done;
    s = json_object_get(v, "hsm_ref");
    if (json_is_string(s)) {
        row->hsm_ref = strdup(json_string_value(s));
        rv = row->hsm_ref != NULL ? KV_OK : KV_ERR_NOMEM;
        goto done;
    }
    if (!vd_blob_member(v, "wrapped", &wrapped, &wlen))
        goto done;
    /* unwrap under the AAD of the original place, wrap under the new one */
    rv = vd_backup_rewrap(r, old_vault, row, iv, wrapped, wlen, NULL);
done:
    free(iv);
    free(wrapped);
    return rv;
}

static void vd_bad_blob(vd_req *r)
{
    vd_reply_error(r, 400, "BadParameter", NULL,
                   "The backup blob is invalid: it was not created by this vaultd instance "
                   "(a key backup can only be restored into a vault of the instance that made "
                   "it) or it has been altered.");
}

/* Destroys the pool objects unwrapped by vd_restore_hsm_prepare (restore failed). */
static void vd_restore_hsm_undo(vd_req *r, char **newrefs, size_t n)
{
    size_t i;

    for (i = 0; newrefs != NULL && i < n; i++) {
        if (newrefs[i] != NULL)
            (void)vd_hsm_destroy_key(r->ctx, newrefs[i]);
        free(newrefs[i]);
        newrefs[i] = NULL;
    }
}

/* Unwraps version v's "hsm_wrapped" material into the pool as kname's version; *out = ref. */
static bool vd_restore_hsm_unwrap(vd_req *r, kv_hsm_pool *pool, const char *kname, const json_t *v,
                                  char **out)
{
    kv_hsm_unwrap_spec spec = {NULL, false, NULL};
    char ref[KV_HSM_REF_MAX], label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    const json_t *ver = json_object_get(v, "version");
    uint8_t *blob = NULL;
    size_t blen = 0;
    kv_err err;
    kv_rv rv;

    if (!vd_blob_member(v, "hsm_wrapped", &blob, &blen) || !json_is_string(ver)) {
        free(blob);
        vd_bad_blob(r);
        return false;
    }
    snprintf(label, sizeof(label), "vaultd/%s/%s/%s", r->vault.name, kname, json_string_value(ver));
    spec.label = label;
    rv = kv_hsm_unwrap_key(pool, blob, blen, &spec, ref, &err);
    free(blob);
    if (rv == KV_OK) {
        vd_hsm_replicate(r->ctx, ref);
        *out = strdup(ref);
        if (*out != NULL)
            return true;
        (void)kv_hsm_destroy(pool, ref, &err);
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be restored.");
    } else if (rv == KV_ERR_SERVER || rv == KV_ERR_NETWORK) {
        vd_reply_error(r, 503, "ServiceUnavailable", NULL, "%s", err.message);
    } else if (rv == KV_ERR_BAD_REQUEST || rv == KV_ERR_UNSUPPORTED) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The backup's HSM key material cannot be restored into pool '%s': %s",
                       r->ctx->hsm->name, err.message);
    } else {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be restored: %s",
                       err.message);
    }
    return false;
}

/* HSM-protected versions carry their pool reference (hsm_ref) and, when the key could be
 * wrapped, the material (hsm_wrapped). A version whose pool object still exists shares it;
 * one whose object is gone is unwrapped into the pool (newrefs[i] = the new reference);
 * without wrapped material it is refused. true when every version can be restored; false
 * after answering 400 (object gone and no material, a foreign pool wrapping key, no pool),
 * 503 (pool unavailable) or 500, with any unwrapped objects destroyed again. */
static bool vd_restore_hsm_prepare(vd_req *r, json_t *vers, const char *kname, char **newrefs)
{
    const json_t *v, *ref;
    kv_hsm_pool *pool = NULL;
    kv_err err;
    size_t i;
    kv_rv rv;

    json_array_foreach(vers, i, v)
    {
        ref = json_object_get(v, "hsm_ref");
        if (!json_is_string(ref))
            continue;
        if (pool == NULL) {
            pool = vd_hsm_pool(r->ctx, &err);
            if (pool == NULL) {
                if (err.rv == KV_ERR_SERVER || err.rv == KV_ERR_NETWORK)
                    vd_reply_error(r, 503, "ServiceUnavailable", NULL, "%s", err.message);
                else
                    vd_reply_error(r, 400, "BadParameter", NULL,
                                   "The backup holds an HSM-protected key but %s.", err.message);
                goto fail;
            }
        }
        rv = kv_hsm_find(pool, json_string_value(ref), &err);
        if (rv == KV_OK)
            continue;
        if (rv == KV_ERR_NOT_FOUND && json_is_string(json_object_get(v, "hsm_wrapped"))) {
            if (!vd_restore_hsm_unwrap(r, pool, kname, v, &newrefs[i]))
                goto fail;
            continue;
        }
        if (rv == KV_ERR_NOT_FOUND)
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "The backup references HSM key material that no longer exists in "
                           "pool '%s' (the key was purged); HSM-protected key backups can be "
                           "restored only while the key material exists in the pool.",
                           r->ctx->hsm->name);
        else if (rv == KV_ERR_SERVER || rv == KV_ERR_NETWORK)
            vd_reply_error(r, 503, "ServiceUnavailable", NULL, "%s", err.message);
        else
            vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be restored: %s",
                           err.message);
        goto fail;
    }
    return true;
fail:
    vd_restore_hsm_undo(r, newrefs, json_array_size(vers));
    return false;
}

void vd_keys_restore(vd_req *r, const char *name, const char *version)
{
    json_t *body = NULL, *doc = NULL, *vers, *v;
    const json_t *val, *jn, *jv;
    uint8_t *blob = NULL, *plain = NULL;
    size_t blen = 0, plen = 0, n = 0, i;
    vd_key_row *rows = NULL, latest = {0};
    vd_policy_row pol = {0};
    char **newrefs = NULL;
    bool live = false, deleted = false, stored = false;
    const char *kname;
    kv_rv rv;

    (void)name;
    (void)version;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    val = json_object_get(body, "value");
    if (!json_is_string(val) || kv_b64_decode(json_string_value(val), &blob, &blen) != KV_OK ||
        blen == 0) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter value (the backup blob) is missing or not valid base64url.");
        goto done;
    }
    rv = vd_crypto_backup_open(r->ctx->kek, VD_KEY_BACKUP_LABEL, blob, blen, &plain, &plen);
    if (rv == KV_ERR_INVALID_ARG) {
        vd_bad_blob(r);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    doc = json_loadb((const char *)plain, plen, 0, NULL);
    jn = json_object_get(doc, "name");
    jv = json_object_get(doc, "vault");
    vers = json_object_get(doc, "versions");
    if (!json_is_object(doc) || !json_is_string(jn) || !json_is_string(jv) ||
        !json_is_array(vers) || json_array_size(vers) == 0 ||
        json_integer_value(json_object_get(doc, "format")) != VD_BACKUP_FORMAT ||
        !vd_key_name_ok(json_string_value(jn))) {
        vd_bad_blob(r);
        goto done;
    }
    kname = json_string_value(jn);
    if (vd_store_key_state(r->store, r->vault.name, kname, &live, &deleted) != KV_OK)
        goto fail;
    if (deleted && !vd_key_name_not_deleted(r, kname))
        goto done;
    if (live) {
        vd_reply_error(r, 409, "Conflict", NULL,
                       "There was a conflict restoring the key: a key named %.127s already "
                       "exists in this vault.",
                       kname);
        goto done;
    }
    newrefs = calloc(json_array_size(vers), sizeof(*newrefs));
    if (newrefs == NULL)
        goto fail;
    if (!vd_restore_hsm_prepare(r, vers, kname, newrefs))
        goto done;
    rows = calloc(json_array_size(vers), sizeof(*rows));
    if (rows == NULL)
        goto fail;
    json_array_foreach(vers, i, v)
    {
        rv = vd_restore_version(r, json_string_value(jv), kname, v, &rows[n++]);
        if (rv == KV_ERR_INVALID_ARG) {
            vd_bad_blob(r);
            goto done;
        }
        if (rv != KV_OK)
            goto fail;
        if (newrefs[i] != NULL) { /* material unwrapped into the pool: the new object */
            free(rows[n - 1].hsm_ref);
            rows[n - 1].hsm_ref = strdup(newrefs[i]);
            if (rows[n - 1].hsm_ref == NULL)
                goto fail;
        }
    }
    rv = vd_store_key_insert_many(r->store, rows, n);
    if (rv == KV_ERR_CONFLICT) {
        vd_reply_error(r, 409, "Conflict", NULL,
                       "There was a conflict restoring the key: a key named %.127s already "
                       "exists in this vault.",
                       kname);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    stored = true; /* the rows reference the unwrapped objects now */
    if (json_is_object(json_object_get(doc, "rotationPolicy"))) {
        snprintf(pol.vault, sizeof(pol.vault), "%s", r->vault.name);
        snprintf(pol.name, sizeof(pol.name), "%s", kname);
        pol.policy = json_dumps(json_object_get(doc, "rotationPolicy"), JSON_COMPACT);
        if (pol.policy == NULL || vd_store_policy_put(r->store, &pol, vd_now()) != KV_OK)
            goto fail;
    }
    if (vd_key_load(r, kname, NULL, &latest))
        vd_reply_bundle(r, &latest);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be restored.");
done:
    if (newrefs != NULL) {
        if (stored) /* keep the objects */
            for (i = 0; i < json_array_size(vers); i++)
                free(newrefs[i]);
        else /* objects unwrapped for rows that were never stored */
            vd_restore_hsm_undo(r, newrefs, json_array_size(vers));
        free(newrefs);
    }
    vd_key_row_clear(&latest);
    vd_key_rows_free(rows, n);
    vd_policy_row_clear(&pol);
    json_decref(doc);
    vd_free_secret(plain, plen);
    free(blob);
    json_decref(body);
}
