/* vd_sc_common.c - helpers shared by the secret and certificate endpoints (see the header). */
#include "vd_sc_common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kv_b64.h"
#include "vd_crypto.h"
#include "vd_keys_int.h"
#include "vd_util.h"

#define VD_SC_MAX_TAGS 15
#define VD_SC_TAG_LEN 256

bool vd_sc_name_ok(const char *name)
{
    size_t i, len = name ? strlen(name) : 0;

    if (len == 0 || len > 127)
        return false;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-')
            return false;
    return true;
}

bool vd_sc_vault_only(vd_req *r, vd_vault_info *info)
{
    kv_rv rv = vd_store_vault_info(r->store, r->vault.name, info);

    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The vault could not be read.");
        return false;
    }
    if (info->managed_hsm) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Managed HSM pool %s holds keys only: secrets and certificates are not "
                       "supported.",
                       r->vault.name);
        return false;
    }
    return true;
}

json_t *vd_sc_vault_body(vd_req *r, vd_vault_info *info)
{
    return vd_sc_vault_only(r, info) ? vd_req_json_body(r) : NULL;
}

const char *vd_sc_recovery_level(const vd_vault_info *info)
{
    bool custom = info->retention_days < 90;

    if (info->purge_protection)
        return custom ? "CustomizedRecoverable" : "Recoverable";
    return custom ? "CustomizedRecoverable+Purgeable" : "Recoverable+Purgeable";
}

static bool vd_sc_int_attr(vd_req *r, const json_t *attrs, const char *key, bool *has,
                           long long *val)
{
    const json_t *v = json_object_get(attrs, key);

    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "attributes.%s must be an integer.", key);
        return false;
    }
    *has = true;
    *val = json_integer_value(v);
    return true;
}

bool vd_sc_parse_attrs(vd_req *r, const json_t *attrs, vd_sc_attrs *a)
{
    const json_t *v;

    if (attrs == NULL || json_is_null(attrs))
        return true;
    if (!json_is_object(attrs)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "attributes must be an object.");
        return false;
    }
    v = json_object_get(attrs, "enabled");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            vd_reply_error(r, 400, "BadParameter", NULL, "attributes.enabled must be a boolean.");
            return false;
        }
        a->enabled = json_is_true(v);
    }
    return vd_sc_int_attr(r, attrs, "nbf", &a->has_nbf, &a->nbf) &&
           vd_sc_int_attr(r, attrs, "exp", &a->has_exp, &a->exp);
}

bool vd_sc_parse_tags(vd_req *r, const json_t *tags, char **out)
{
    const char *k;
    json_t *v;

    if (tags == NULL || json_is_null(tags))
        return true;
    if (!json_is_object(tags) || json_object_size(tags) > VD_SC_MAX_TAGS) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "tags must be an object with at most 15 string values.");
        return false;
    }
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_string(v) || strlen(k) > VD_SC_TAG_LEN ||
            strlen(json_string_value(v)) > VD_SC_TAG_LEN) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Tag names and values must be strings of at most 256 characters.");
            return false;
        }
    }
    free(*out);
    *out = json_dumps(tags, JSON_COMPACT);
    if (*out == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Out of memory.");
        return false;
    }
    return true;
}

json_t *vd_sc_attrs_json(const vd_sc_attrs *a, long long created, long long updated,
                         const vd_vault_info *info)
{
    json_t *o = json_pack("{s:b}", "enabled", a->enabled);

    if (o == NULL)
        return NULL;
    if (a->has_nbf)
        json_object_set_new(o, "nbf", json_integer(a->nbf));
    if (a->has_exp)
        json_object_set_new(o, "exp", json_integer(a->exp));
    json_object_set_new(o, "created", json_integer(created));
    json_object_set_new(o, "updated", json_integer(updated));
    json_object_set_new(o, "recoveryLevel", json_string(vd_sc_recovery_level(info)));
    json_object_set_new(o, "recoverableDays", json_integer(info->retention_days));
    return o;
}

void vd_sc_set_tags(json_t *obj, const char *tags)
{
    json_t *t;

    if (tags == NULL)
        return;
    t = json_loads(tags, 0, NULL);
    if (json_is_object(t) && json_object_size(t) > 0)
        json_object_set_new(obj, "tags", t);
    else
        json_decref(t);
}

void vd_sc_json_wipe(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (json_is_string(v) && json_string_length(v) > 0)
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

void vd_sc_aad(const char *kind, const char *vault, const char *name, const char *version,
               char *out, size_t outlen)
{
    size_t i;

    snprintf(out, outlen, "%s|%s|%s|%s", kind, vault, name, version);
    for (i = 0; out[i] != '\0'; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
}

kv_rv vd_sc_seal(const uint8_t key[32], const char *aad, const uint8_t *in, size_t inlen,
                 uint8_t iv[12], uint8_t **out, size_t *outlen)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t *buf = NULL;
    int n = 0, fin = 0;
    kv_rv rv = KV_ERR_INTERNAL;

    if (key == NULL || aad == NULL || (in == NULL && inlen > 0) || out == NULL ||
        inlen > (size_t)1 << 30)
        return KV_ERR_INVALID_ARG;
    buf = malloc(inlen + VD_SC_GCM_TAG + 1);
    c = EVP_CIPHER_CTX_new();
    if (buf == NULL || c == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    if (RAND_bytes(iv, 12) != 1 || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(c, buf, &n, in ? in : (const uint8_t *)"", (int)inlen) != 1 ||
        EVP_EncryptFinal_ex(c, buf + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VD_SC_GCM_TAG, buf + n + fin) != 1)
        goto done;
    *outlen = (size_t)(n + fin) + VD_SC_GCM_TAG;
    *out = buf;
    buf = NULL;
    rv = KV_OK;
done:
    free(buf);
    EVP_CIPHER_CTX_free(c);
    return rv;
}

kv_rv vd_sc_open(const uint8_t key[32], const char *aad, const uint8_t iv[12], const uint8_t *in,
                 size_t inlen, uint8_t **out, size_t *outlen)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t *buf = NULL, tag[VD_SC_GCM_TAG];
    size_t clen;
    int n = 0, fin = 0;
    kv_rv rv = KV_ERR_INTERNAL;

    if (key == NULL || aad == NULL || in == NULL || inlen < VD_SC_GCM_TAG || out == NULL)
        return KV_ERR_INVALID_ARG;
    clen = inlen - VD_SC_GCM_TAG;
    memcpy(tag, in + clen, VD_SC_GCM_TAG);
    buf = malloc(clen + 1);
    c = EVP_CIPHER_CTX_new();
    if (buf == NULL || c == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(c, buf, &n, in, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VD_SC_GCM_TAG, tag) != 1 ||
        EVP_DecryptFinal_ex(c, buf + n, &fin) != 1)
        goto done;
    buf[n + fin] = '\0';
    *outlen = (size_t)(n + fin);
    *out = buf;
    buf = NULL;
    rv = KV_OK;
done:
    vd_free_secret(buf, clen + 1);
    EVP_CIPHER_CTX_free(c);
    return rv;
}

/* Secret and certificate backups use the key backups' sealing (vd_crypto_backup_seal) with a
 * label of their own, so a secret blob never opens as a key blob or the other way round. */
kv_rv vd_sc_backup_seal(const vd_ctx *ctx, const char *label, const json_t *payload, char **out)
{
    uint8_t *blob = NULL;
    size_t blen = 0;
    char *text;
    kv_rv rv;

    if (ctx == NULL || label == NULL || payload == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    text = json_dumps(payload, JSON_COMPACT);
    if (text == NULL)
        return KV_ERR_NOMEM;
    rv = vd_crypto_backup_seal(ctx->kek, label, (const uint8_t *)text, strlen(text), &blob, &blen);
    vd_free_secret(text, strlen(text));
    if (rv != KV_OK)
        return rv;
    *out = kv_b64url_encode(blob, blen);
    free(blob);
    return *out != NULL ? KV_OK : KV_ERR_NOMEM;
}

kv_rv vd_sc_backup_open(const vd_ctx *ctx, const char *label, const char *blob, json_t **out)
{
    uint8_t *raw = NULL, *pt = NULL;
    size_t rawlen = 0, ptlen = 0;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (ctx == NULL || label == NULL || blob == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    if (kv_b64_decode(blob, &raw, &rawlen) != KV_OK ||
        vd_crypto_backup_open(ctx->kek, label, raw, rawlen, &pt, &ptlen) != KV_OK)
        goto done;
    *out = json_loadb((const char *)pt, ptlen, 0, NULL);
    rv = json_is_object(*out) ? KV_OK : KV_ERR_INVALID_ARG;
    if (rv != KV_OK) {
        json_decref(*out);
        *out = NULL;
    }
done:
    vd_free_secret(pt, ptlen);
    free(raw);
    return rv;
}

/* ---- paging ---- */

void vd_sc_list_page(vd_req *r, const vd_sc_pager *p, bool deleted)
{
    void *rows = NULL;
    vd_vault_info info;
    size_t n = 0, max, i;
    char after[VD_NAME_MAX + 2], path[64];
    json_t *value, *page;

    if (!vd_sc_vault_only(r, &info) || !vd_max_results(r, &max) ||
        !vd_skiptoken(r, 'n', after, sizeof(after)))
        return;
    if (p->list(r, after[0] ? after : NULL, deleted, max + 1, &rows, &n) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The %s could not be listed.", p->coll);
        return;
    }
    value = json_array();
    for (i = 0; i < n && i < max; i++)
        json_array_append_new(value, p->item(r, rows, i, false, &info));
    page = json_pack("{s:o}", "value", value);
    snprintf(path, sizeof(path), "/%s%s", deleted ? "deleted" : "", p->coll);
    vd_set_next_link(r, page, path, 'n', n > max ? p->name_at(rows, max - 1) : NULL, max);
    vd_reply_json(r, 200, page);
    p->rows_free(rows, n);
}

void vd_sc_versions_page(vd_req *r, const vd_sc_pager *p, const char *name)
{
    void *rows = NULL;
    vd_vault_info info;
    size_t n = 0, max, i;
    char after[32], seq[32], path[VD_NAME_MAX + 32];
    long long after_seq = 0;
    json_t *value, *page;

    if (!vd_sc_vault_only(r, &info) || !vd_max_results(r, &max) ||
        !vd_skiptoken(r, 'v', after, sizeof(after)))
        return;
    if (after[0] != '\0')
        after_seq = strtoll(after, NULL, 10);
    if (!vd_sc_name_ok(name)) {
        p->not_found(r, name);
        return;
    }
    if (p->versions(r, name, after_seq, max + 1, &rows, &n) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The versions could not be listed.");
        return;
    }
    if (n == 0 && after_seq == 0) {
        p->not_found(r, name);
        p->rows_free(rows, n);
        return;
    }
    value = json_array();
    for (i = 0; i < n && i < max; i++)
        json_array_append_new(value, p->item(r, rows, i, true, &info));
    page = json_pack("{s:o}", "value", value);
    if (n > max)
        snprintf(seq, sizeof(seq), "%lld", p->seq_at(rows, max - 1));
    snprintf(path, sizeof(path), "/%s/%s/versions", p->coll, n > 0 ? p->name_at(rows, 0) : name);
    vd_set_next_link(r, page, path, 'v', n > max ? seq : NULL, max);
    vd_reply_json(r, 200, page);
    p->rows_free(rows, n);
}
