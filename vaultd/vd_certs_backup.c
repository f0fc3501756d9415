/* vd_certs_backup.c - certificate backup and restore. A backup holds every version of the
 * certificate (DER, attributes, tags), its policy, and the linked key versions (private key
 * still wrapped under the KEK; an HSM-protected key by its pool reference plus, when it can
 * be, its material wrapped under the pool wrapping key) and secret
 * versions (values), sealed like key and secret backups under a key derived from the instance
 * KEK (label "kvault vaultd certificate backup v1"): only vaults of the same vaultd instance can
 * restore it. Restore writes everything in one transaction and keeps versions, ids and
 * attributes; a name in use (certificate, key or secret, live or deleted) is 409 Conflict. */
#include "vd_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "kv_hsm.h"
#include "vd_backup.h"
#include "vd_certs_int.h"
#include "vd_crypto.h"
#include "vd_hsm.h"
#include "vd_keys_int.h"
#include "vd_sc_common.h"
#include "vd_store_keys.h"
#include "vd_util.h"

#define VD_CERT_BACKUP_LABEL "kvault vaultd certificate backup v1"
#define VD_CERT_BACKUP_FORMAT 1
#define VD_CERT_BACKUP_MAX_VERSIONS 100

static void vd_set_dates(json_t *o, bool has_nbf, long long nbf, bool has_exp, long long exp)
{
    if (has_nbf)
        json_object_set_new(o, "nbf", json_integer(nbf));
    if (has_exp)
        json_object_set_new(o, "exp", json_integer(exp));
}

static json_t *vd_cert_json(const vd_cert_row *c)
{
    json_t *o = json_pack("{s:s, s:I, s:I, s:b, s:o, s:s}", "version", c->version, "created",
                          (json_int_t)c->created, "updated", (json_int_t)c->updated, "enabled",
                          c->enabled, "cer", vd_backup_b64(c->cer, c->cer_len), "x5t", c->x5t);

    if (o == NULL)
        return NULL;
    vd_set_dates(o, c->has_nbf, c->nbf, c->has_exp, c->exp);
    if (c->tags != NULL)
        json_object_set_new(o, "tags", json_string(c->tags));
    return o;
}

static json_t *vd_key_json(const vd_key_row *k)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:I, s:I, s:b, s:s, s:o, s:o, s:o}", "version", k->version, "kty", k->kty,
        "hsm", k->hsm, "created", (json_int_t)k->created, "updated", (json_int_t)k->updated,
        "enabled", k->enabled, "key_ops", k->key_ops ? k->key_ops : "[]", "pub",
        vd_backup_b64(k->pub_der, k->pub_len), "wrapped", vd_backup_b64(k->wrapped, k->wrapped_len),
        "iv", vd_backup_b64(k->iv, VD_IV_LEN));

    if (o == NULL)
        return NULL;
    vd_set_dates(o, k->has_nbf, k->nbf, k->has_exp, k->exp);
    if (k->tags != NULL)
        json_object_set_new(o, "tags", json_string(k->tags));
    if (k->hsm_ref != NULL) /* HSM key: only the reference; the material stays in the pool */
        json_object_set_new(o, "hsm_ref", json_string(k->hsm_ref));
    return o;
}

/* Adds "hsm_wrapped" to an HSM key version so that the backup survives a purge
 * (vd_backup_hsm_wrapped). false after answering 503 / 500. */
static bool vd_backup_hsm(vd_req *r, const vd_key_row *k, json_t *o)
{
    kv_err err;

    if (vd_backup_hsm_wrapped(r, k, o, &err) == KV_OK)
        return true;
    vd_certs_hsm_reply_err(r, &err, "The certificate could not be backed up");
    return false;
}

/* The secret version with its value in clear (the blob is sealed as a whole). */
static json_t *vd_secret_json(vd_req *r, const vd_secret_row *s)
{
    uint8_t *val = NULL;
    size_t len = 0;
    char aad[400];
    json_t *o;

    vd_sc_aad("secret", s->vault, s->name, s->version, aad, sizeof(aad));
    if (vd_sc_open(r->ctx->kek, aad, s->iv, s->value_enc, s->value_enc_len, &val, &len) != KV_OK)
        return NULL;
    o = json_pack("{s:s, s:s%, s:I, s:I, s:b}", "version", s->version, "value", (const char *)val,
                  len, "created", (json_int_t)s->created, "updated", (json_int_t)s->updated,
                  "enabled", s->enabled);
    vd_free_secret(val, len + 1);
    if (o == NULL)
        return NULL;
    vd_set_dates(o, s->has_nbf, s->nbf, s->has_exp, s->exp);
    if (s->content_type != NULL)
        json_object_set_new(o, "contentType", json_string(s->content_type));
    if (s->tags != NULL)
        json_object_set_new(o, "tags", json_string(s->tags));
    return o;
}

/* Zeroises the secret values of a backup document before it is freed. */
static void vd_wipe_doc(json_t *doc)
{
    json_t *v;
    size_t i;

    json_array_foreach(json_object_get(doc, "secrets"), i, v)
    {
        json_t *s = json_object_get(v, "value");

        if (json_is_string(s))
            OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
    }
}

void vd_certs_backup(vd_req *r, const char *name, const char *version)
{
    vd_cert_row *certs = NULL;
    vd_key_row *keys = NULL;
    vd_secret_row *secrets = NULL;
    size_t ncerts = 0, nkeys = 0, nsecrets = 0, i;
    vd_vault_info info;
    json_t *doc = NULL, *a, *o;
    char *policy = NULL, *blob = NULL;

    (void)version;
    if (!vd_sc_vault_only(r, &info))
        goto done;
    if (!vd_sc_name_ok(name)) {
        vd_certs_not_found(r, name ? name : "", NULL);
        goto done;
    }
    if (vd_store_cert_versions(r->store, r->vault.name, name, 0, VD_CERT_BACKUP_MAX_VERSIONS + 1,
                               &certs, &ncerts) != KV_OK)
        goto fail;
    if (ncerts == 0) {
        vd_certs_not_found(r, name, NULL);
        goto done;
    }
    if (ncerts > VD_CERT_BACKUP_MAX_VERSIONS) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The certificate has more than %d versions and cannot be backed up.",
                       VD_CERT_BACKUP_MAX_VERSIONS);
        goto done;
    }
    if (vd_store_cert_policy_get(r->store, r->vault.name, certs[0].name, &policy, NULL) != KV_OK ||
        vd_store_key_all(r->store, r->vault.name, certs[0].name, false, &keys, &nkeys) != KV_OK ||
        vd_store_secret_versions(r->store, r->vault.name, certs[0].name, 0,
                                 VD_CERT_BACKUP_MAX_VERSIONS + 1, &secrets, &nsecrets) != KV_OK)
        goto fail;
    doc = json_pack("{s:i, s:s, s:s, s:s, s:o, s:[], s:[], s:[]}", "format", VD_CERT_BACKUP_FORMAT,
                    "type", "certificate", "vault", certs[0].vault, "name", certs[0].name, "policy",
                    json_loads(policy, 0, NULL), "certificates", "keys", "secrets");
    if (doc == NULL)
        goto fail;
    a = json_object_get(doc, "certificates");
    for (i = 0; i < ncerts; i++)
        if ((o = vd_cert_json(&certs[i])) == NULL || json_array_append_new(a, o) != 0)
            goto fail;
    a = json_object_get(doc, "keys");
    for (i = 0; i < nkeys; i++) { /* only the certificate's own (managed) key versions */
        if (!vd_store_key_is_managed(r->store, keys[i].vault, keys[i].name, keys[i].version))
            continue;
        if ((o = vd_key_json(&keys[i])) == NULL || json_array_append_new(a, o) != 0)
            goto fail;
        if (!vd_backup_hsm(r, &keys[i], o))
            goto done;
    }
    a = json_object_get(doc, "secrets");
    for (i = 0; i < nsecrets; i++)
        if (secrets[i].managed &&
            ((o = vd_secret_json(r, &secrets[i])) == NULL || json_array_append_new(a, o) != 0))
            goto fail;
    if (vd_sc_backup_seal(r->ctx, VD_CERT_BACKUP_LABEL, doc, &blob) != KV_OK)
        goto fail;
    vd_reply_json(r, 200, json_pack("{s:s}", "value", blob));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be backed up.");
done:
    vd_wipe_doc(doc);
    json_decref(doc);
    free(blob);
    free(policy);
    vd_cert_rows_free(certs, ncerts);
    vd_key_rows_free(keys, nkeys);
    vd_secret_rows_free(secrets, nsecrets);
}

/* ---- restore ---- */

static void vd_bad_blob(vd_req *r)
{
    vd_reply_error(r, 400, "BadParameter", NULL,
                   "Backup blob contains invalid data: it was not created by this vaultd "
                   "instance (a certificate backup can only be restored into a vault of the "
                   "instance that made it), it is not a certificate backup, or it has been "
                   "altered.");
}

static bool vd_dates_of(const json_t *o, bool *has_nbf, long long *nbf, bool *has_exp,
                        long long *exp)
{
    *has_nbf = json_is_integer(json_object_get(o, "nbf"));
    *nbf = json_integer_value(json_object_get(o, "nbf"));
    *has_exp = json_is_integer(json_object_get(o, "exp"));
    *exp = json_integer_value(json_object_get(o, "exp"));
    return true;
}

/* Copies a string member (NULL when absent); false on allocation failure. */
static bool vd_dup_member(const json_t *o, const char *k, char **out)
{
    const json_t *v = json_object_get(o, k);

    *out = NULL;
    if (!json_is_string(v))
        return true;
    *out = strdup(json_string_value(v));
    return *out != NULL;
}

static bool vd_version_ok(const json_t *o, char *out, size_t outlen)
{
    const char *v = json_string_value(json_object_get(o, "version"));

    if (v == NULL || v[0] == '\0' || strlen(v) >= outlen)
        return false;
    snprintf(out, outlen, "%s", v);
    return true;
}

static kv_rv vd_cert_from(vd_req *r, const char *name, const json_t *o, vd_cert_row *c)
{
    const char *x5t = json_string_value(json_object_get(o, "x5t"));

    snprintf(c->vault, sizeof(c->vault), "%s", r->vault.name);
    snprintf(c->name, sizeof(c->name), "%s", name);
    if (!vd_version_ok(o, c->version, sizeof(c->version)) || x5t == NULL ||
        strlen(x5t) >= sizeof(c->x5t) ||
        kv_b64_decode(json_string_value(json_object_get(o, "cer")) ?: "", &c->cer, &c->cer_len) !=
            KV_OK ||
        c->cer_len == 0)
        return KV_ERR_INVALID_ARG;
    snprintf(c->x5t, sizeof(c->x5t), "%s", x5t);
    c->created = json_integer_value(json_object_get(o, "created"));
    c->updated = json_integer_value(json_object_get(o, "updated"));
    c->enabled = json_is_true(json_object_get(o, "enabled"));
    vd_dates_of(o, &c->has_nbf, &c->nbf, &c->has_exp, &c->exp);
    return vd_dup_member(o, "tags", &c->tags) ? KV_OK : KV_ERR_NOMEM;
}

/* A key version for its new place: the private key rewrapped under the new AAD. */
static kv_rv vd_key_from(vd_req *r, const char *old_vault, const char *name, const json_t *o,
                         vd_key_row *k)
{
    uint8_t *iv = NULL, *wrapped = NULL;
    size_t ivlen = 0, wlen = 0;
    const char *kty = json_string_value(json_object_get(o, "kty"));
    bool unwrap_failed = false;
    kv_rv rv = KV_ERR_INVALID_ARG;

    snprintf(k->vault, sizeof(k->vault), "%s", r->vault.name);
    snprintf(k->name, sizeof(k->name), "%s", name);
    if (!vd_version_ok(o, k->version, sizeof(k->version)) || kty == NULL ||
        strlen(kty) >= sizeof(k->kty))
        goto done;
    snprintf(k->kty, sizeof(k->kty), "%s", kty);
    k->hsm = json_is_true(json_object_get(o, "hsm"));
    k->created = json_integer_value(json_object_get(o, "created"));
    k->updated = json_integer_value(json_object_get(o, "updated"));
    k->enabled = json_is_true(json_object_get(o, "enabled"));
    vd_dates_of(o, &k->has_nbf, &k->nbf, &k->has_exp, &k->exp);
    if (!vd_dup_member(o, "key_ops", &k->key_ops) || !vd_dup_member(o, "tags", &k->tags) ||
        !vd_dup_member(o, "hsm_ref", &k->hsm_ref)) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    if (k->key_ops == NULL ||
        kv_b64_decode(json_string_value(json_object_get(o, "iv")) ?: "", &iv, &ivlen) != KV_OK ||
        ivlen != VD_IV_LEN ||
        kv_b64_decode(json_string_value(json_object_get(o, "pub")) ?: "", &k->pub_der,
                      &k->pub_len) != KV_OK)
        goto done;
    memcpy(k->iv, iv, VD_IV_LEN);
    if (k->hsm_ref != NULL) { /* HSM key: the reference only */
        rv = KV_OK;
        goto done;
    }
    if (kv_b64_decode(json_string_value(json_object_get(o, "wrapped")) ?: "", &wrapped, &wlen) !=
            KV_OK ||
        wlen == 0)
        goto done;
    rv = vd_backup_rewrap(r, old_vault, k, iv, wrapped, wlen, &unwrap_failed);
    if (unwrap_failed)
        rv = KV_ERR_INVALID_ARG;
done:
    free(iv);
    free(wrapped);
    return rv;
}

/* A secret version sealed for its new place. */
static kv_rv vd_secret_from(vd_req *r, const char *name, const json_t *o, vd_secret_row *s)
{
    const json_t *val = json_object_get(o, "value");
    char aad[400], kid[VD_NAME_MAX + VD_ID_MAX + 16];

    snprintf(s->vault, sizeof(s->vault), "%s", r->vault.name);
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (!vd_version_ok(o, s->version, sizeof(s->version)) || !json_is_string(val))
        return KV_ERR_INVALID_ARG;
    snprintf(kid, sizeof(kid), "keys/%s/%s", name, s->version);
    s->managed = true;
    s->created = json_integer_value(json_object_get(o, "created"));
    s->updated = json_integer_value(json_object_get(o, "updated"));
    s->enabled = json_is_true(json_object_get(o, "enabled"));
    vd_dates_of(o, &s->has_nbf, &s->nbf, &s->has_exp, &s->exp);
    if ((s->kid = strdup(kid)) == NULL || !vd_dup_member(o, "contentType", &s->content_type) ||
        !vd_dup_member(o, "tags", &s->tags))
        return KV_ERR_NOMEM;
    vd_sc_aad("secret", s->vault, s->name, s->version, aad, sizeof(aad));
    return vd_sc_seal(r->ctx->kek, aad, (const uint8_t *)json_string_value(val),
                      json_string_length(val), s->iv, &s->value_enc, &s->value_enc_len);
}

/* HSM-protected key versions carry their pool reference and, when the key could be wrapped
 * under the pool wrapping key, the material ("hsm_wrapped", kv_hsm_wrap_key). A version whose
 * pool object still exists shares it; one whose object is gone (purged) is unwrapped into the
 * pool as the restored version (keys[i].hsm_ref replaced; versions that shared one object
 * share the new one); without material it is refused. newrefs (nkeys entries) receives the
 * objects made, for the caller to destroy if the restore fails. false after answering (400
 * gone / foreign wrapping key / no pool, 503 pool unavailable, 500). */
static bool vd_hsm_prepare(vd_req *r, const json_t *jk, vd_key_row *keys, size_t nkeys,
                           char **newrefs)
{
    kv_hsm_pool *pool = NULL;
    kv_hsm_unwrap_spec spec = {NULL, false, NULL};
    char ref[KV_HSM_REF_MAX], label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    const char *w;
    uint8_t *blob = NULL;
    size_t blen = 0, i, j;
    kv_err err;
    kv_rv rv;

    for (i = 0; i < nkeys; i++) {
        if (keys[i].hsm_ref == NULL)
            continue;
        if (pool == NULL && (pool = vd_hsm_pool(r->ctx, &err)) == NULL) {
            vd_certs_hsm_reply_err(r, &err, "The backup holds an HSM-protected key");
            return false;
        }
        rv = kv_hsm_find(pool, keys[i].hsm_ref, &err);
        if (rv == KV_OK)
            continue;
        if (rv != KV_ERR_NOT_FOUND) {
            vd_certs_hsm_reply_err(r, &err, "The certificate could not be restored");
            return false;
        }
        /* gone: an earlier version with the same (reused) key may have brought it back */
        for (j = 0; j < i; j++)
            if (newrefs[j] != NULL &&
                strcmp(json_string_value(json_object_get(json_array_get(jk, j), "hsm_ref")) ?: "",
                       json_string_value(json_object_get(json_array_get(jk, i), "hsm_ref"))
                           ?: "") == 0)
                break;
        if (j < i) {
            free(keys[i].hsm_ref);
            if ((keys[i].hsm_ref = strdup(keys[j].hsm_ref)) == NULL)
                goto nomem;
            continue;
        }
        w = json_string_value(json_object_get(json_array_get(jk, i), "hsm_wrapped"));
        if (w == NULL) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "The backup references HSM key material that no longer exists in "
                           "pool '%s' (the certificate was purged) and does not carry it "
                           "wrapped under the pool wrapping key; such backups can be restored "
                           "only while the key material exists in the pool.",
                           kv_hsm_pool_name(pool));
            return false;
        }
        if (kv_b64_decode(w, &blob, &blen) != KV_OK) {
            vd_reply_error(r, 400, "BadParameter", NULL, "Backup blob contains invalid data.");
            return false;
        }
        snprintf(label, sizeof(label), "vaultd/%s/%s/%s", keys[i].vault, keys[i].name,
                 keys[i].version);
        spec.label = label;
        rv = kv_hsm_unwrap_key(pool, blob, blen, &spec, ref, &err);
        free(blob);
        blob = NULL;
        if (rv != KV_OK) {
            if (rv == KV_ERR_BAD_REQUEST || rv == KV_ERR_UNSUPPORTED)
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "The backup's HSM key material cannot be restored into pool "
                               "'%s': %s",
                               kv_hsm_pool_name(pool), err.message);
            else
                vd_certs_hsm_reply_err(r, &err, "The certificate could not be restored");
            return false;
        }
        if ((newrefs[i] = strdup(ref)) == NULL) {
            (void)kv_hsm_destroy(pool, ref, &err);
            goto nomem;
        }
        free(keys[i].hsm_ref);
        if ((keys[i].hsm_ref = strdup(ref)) == NULL)
            goto nomem;
    }
    return true;
nomem:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be restored.");
    return false;
}

void vd_certs_restore(vd_req *r, const char *name, const char *version)
{
    vd_cert_row *certs = NULL, latest = {0};
    vd_key_row *keys = NULL;
    vd_secret_row *secrets = NULL;
    size_t ncerts = 0, nkeys = 0, nsecrets = 0, i;
    vd_vault_info info;
    json_t *body = NULL, *doc = NULL, *jc, *jk, *js, *o;
    const json_t *v;
    const char *cname, *old_vault;
    char *policy = NULL, **newrefs = NULL;
    bool deleted = false, restored = false;
    kv_rv rv;

    (void)name;
    (void)version;
    body = vd_sc_vault_body(r, &info);
    if (body == NULL)
        goto done;
    v = json_object_get(body, "value");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter value (the backup blob) is missing.");
        goto done;
    }
    if (vd_sc_backup_open(r->ctx, VD_CERT_BACKUP_LABEL, json_string_value(v), &doc) != KV_OK) {
        vd_bad_blob(r);
        goto done;
    }
    cname = json_string_value(json_object_get(doc, "name"));
    old_vault = json_string_value(json_object_get(doc, "vault"));
    jc = json_object_get(doc, "certificates");
    jk = json_object_get(doc, "keys");
    js = json_object_get(doc, "secrets");
    if (json_integer_value(json_object_get(doc, "format")) != VD_CERT_BACKUP_FORMAT ||
        cname == NULL || !vd_sc_name_ok(cname) || old_vault == NULL || !json_is_array(jc) ||
        json_array_size(jc) == 0 || !json_is_array(jk) || !json_is_array(js) ||
        !json_is_object(json_object_get(doc, "policy"))) {
        vd_bad_blob(r);
        goto done;
    }
    if (vd_store_cert_is_deleted(r->store, r->vault.name, cname, &deleted) != KV_OK)
        goto fail;
    if (deleted) {
        vd_reply_error(r, 409, "Conflict", "ObjectIsDeletedButRecoverable",
                       "Certificate %.127s is currently in a deleted but recoverable state, and "
                       "its name cannot be reused; in this state, the certificate can only be "
                       "recovered or purged.",
                       cname);
        goto done;
    }
    certs = calloc(json_array_size(jc), sizeof(*certs));
    keys = calloc(json_array_size(jk) + 1, sizeof(*keys));
    secrets = calloc(json_array_size(js) + 1, sizeof(*secrets));
    if (certs == NULL || keys == NULL || secrets == NULL)
        goto fail;
    rv = KV_OK;
    json_array_foreach(jc, i, o) if (rv == KV_OK) rv = vd_cert_from(r, cname, o, &certs[ncerts++]);
    json_array_foreach(jk, i, o) if (rv == KV_OK) rv =
        vd_key_from(r, old_vault, cname, o, &keys[nkeys++]);
    json_array_foreach(js, i, o) if (rv == KV_OK) rv =
        vd_secret_from(r, cname, o, &secrets[nsecrets++]);
    if (rv == KV_ERR_INVALID_ARG) {
        vd_bad_blob(r);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    newrefs = calloc(nkeys + 1, sizeof(*newrefs));
    if (newrefs == NULL)
        goto fail;
    if (!vd_hsm_prepare(r, jk, keys, nkeys, newrefs))
        goto done;
    policy = json_dumps(json_object_get(doc, "policy"), JSON_COMPACT);
    if (policy == NULL)
        goto fail;
    rv = vd_store_cert_restore(r->store, certs, ncerts, keys, nkeys, secrets, nsecrets, policy);
    if (rv == KV_ERR_CONFLICT) {
        vd_reply_error(r, 409, "Conflict", NULL,
                       "There was a conflict restoring the certificate: a certificate, key or "
                       "secret named %.127s already exists in this vault.",
                       cname);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    if (vd_store_cert_get(r->store, r->vault.name, cname, NULL, false, &latest) != KV_OK)
        goto fail;
    vd_certs_reply_bundle(r, &latest, &info);
    restored = true;
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be restored.");
done:
    for (i = 0; newrefs != NULL && i < nkeys; i++) {
        if (!restored && newrefs[i] != NULL) /* pool objects unwrapped for a failed restore */
            vd_certs_hsm_destroy(r->ctx, newrefs[i]);
        free(newrefs[i]);
    }
    free(newrefs);
    vd_wipe_doc(doc);
    json_decref(doc);
    vd_sc_json_wipe(body, "value");
    json_decref(body);
    free(policy);
    vd_cert_row_clear(&latest);
    vd_cert_rows_free(certs, ncerts);
    vd_key_rows_free(keys, nkeys);
    vd_secret_rows_free(secrets, nsecrets);
}
