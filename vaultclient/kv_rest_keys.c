/* kv_rest_keys.c - the REST backend's key lifecycle: versions, delete (soft delete), import
 * (BYOK as a JWK with private parts), update (enabled, nbf, exp, key_ops).
 *
 * Imported keys are tagged "kvault-origin": "imported" (the vault itself does not tell an
 * imported key from a generated one); kv_rest_key_from_bundle reads the tag into
 * kv_key.imported. A key imported by another tool therefore looks generated in the vault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kv_b64.h"
#include "kv_backend.h"
#include "kv_jwk.h"

#define KV_REST_MAX_PAGES 10000
#define KV_REST_ORIGIN_TAG "kvault-origin"

/* Newest first: by creation time, then by version id (stable for equal times). */
static int kv_rest_version_cmp(const void *a, const void *b)
{
    const kv_key *ka = *(kv_key *const *)a, *kb = *(kv_key *const *)b;

    if (ka->created != kb->created)
        return ka->created > kb->created ? -1 : 1;
    return strcmp(kb->version, ka->version);
}

/* Appends k to the growing array (takes the reference; drops it on failure). */
static kv_rv kv_rest_push(kv_key ***keys, size_t *count, size_t *cap, kv_key *k, kv_err *err)
{
    kv_key **nk;

    if (*count == *cap) {
        size_t ncap = *cap ? 2 * *cap : 8;

        nk = realloc(*keys, ncap * sizeof(*nk));
        if (nk == NULL) {
            kv_key_unref(k);
            return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        }
        *keys = nk;
        *cap = ncap;
    }
    (*keys)[(*count)++] = k;
    return KV_OK;
}

kv_rv kv_rest_list_versions(kv_vault *v, const char *name, kv_key ***out, size_t *n, kv_err *err)
{
    char first[256];
    char *next = NULL;
    kv_key **keys = NULL;
    size_t count = 0, cap = 0, i;
    int pages = 0;
    kv_rv rv = KV_OK;

    snprintf(first, sizeof(first), "/keys/%s/versions?maxresults=25", name);
    next = strdup(first);
    if (next == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    while (next != NULL && rv == KV_OK) {
        json_t *j = NULL, *item;
        const char *nl;

        if (++pages > KV_REST_MAX_PAGES) {
            rv = kv_err_set(err, KV_ERR_SERVER, "vault version listing does not end");
            break;
        }
        rv = v->ops->request(v, "GET", next, NULL, &j, NULL, err);
        free(next);
        next = NULL;
        if (rv != KV_OK) {
            json_decref(j);
            break;
        }
        json_array_foreach(json_object_get(j, "value"), i, item)
        {
            const char *kid = json_string_value(json_object_get(item, "kid"));
            const char *p = kid != NULL ? strstr(kid, "/keys/") : NULL;
            const char *ver = p != NULL ? strchr(p + 6, '/') : NULL;
            kv_key *k = NULL;

            if (ver == NULL || ver[1] == '\0')
                continue; /* not a versioned kid */
            rv = v->ops->get_key(v, name, ver + 1, &k, err);
            if (rv == KV_ERR_NOT_FOUND || rv == KV_ERR_UNSUPPORTED) {
                rv = KV_OK; /* deleted meanwhile, or a key type we cannot use */
                continue;
            }
            if (rv != KV_OK)
                break;
            rv = kv_rest_push(&keys, &count, &cap, k, err);
            if (rv != KV_OK)
                break;
        }
        nl = json_string_value(json_object_get(j, "nextLink"));
        if (rv == KV_OK && nl != NULL && *nl != '\0') {
            next = strdup(nl);
            if (next == NULL)
                rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        }
        json_decref(j);
    }
    free(next);
    if (rv != KV_OK) {
        kv_key_list_free(keys, count);
        return rv;
    }
    if (count > 1)
        qsort(keys, count, sizeof(*keys), kv_rest_version_cmp);
    *out = keys;
    *n = count;
    return KV_OK;
}

kv_rv kv_rest_delete_key(kv_vault *v, const char *name, kv_err *err)
{
    char path[256];
    json_t *j = NULL;
    kv_rv rv;

    snprintf(path, sizeof(path), "/keys/%s", name);
    rv = v->ops->request(v, "DELETE", path, NULL, &j, NULL, err);
    json_decref(j);
    return rv;
}

/* ---- import ---- */

/* Zeroises the string members of a JWK (private parts) before it is freed. */
static void kv_rest_jwk_cleanse(json_t *jwk)
{
    const char *key;
    json_t *val;

    json_object_foreach(jwk, key, val)
    {
        if (json_is_string(val)) {
            char *s = (char *)json_string_value(val);

            OPENSSL_cleanse(s, json_string_length(val));
        }
    }
}

/* Adds member name = base64url of the big-endian bytes of bn, left-padded to width bytes
 * (width 0: minimal). */
static kv_rv kv_rest_jwk_add_bn(json_t *jwk, const char *name, const BIGNUM *bn, size_t width,
                                kv_err *err)
{
    size_t len = width ? width : (size_t)BN_num_bytes(bn);
    uint8_t *buf = NULL;
    char *b64 = NULL;
    kv_rv rv = KV_OK;

    if (len == 0)
        len = 1;
    buf = OPENSSL_secure_zalloc(len);
    if (buf == NULL || BN_bn2binpad(bn, buf, (int)len) < 0) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot encode the private key member %s", name);
        goto done;
    }
    b64 = kv_b64url_encode(buf, len);
    if (b64 == NULL || json_object_set_new(jwk, name, json_string(b64)) != 0) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
done:
    if (b64 != NULL) {
        OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
    }
    OPENSSL_secure_clear_free(buf, len);
    return rv;
}

/* The private members of an RSA key (d, p, q, dp, dq, qi). */
static kv_rv kv_rest_jwk_rsa_private(json_t *jwk, const EVP_PKEY *pkey, kv_err *err)
{
    static const struct {
        const char *param, *jwk;
    } members[] = {
        {OSSL_PKEY_PARAM_RSA_D, "d"},          {OSSL_PKEY_PARAM_RSA_FACTOR1, "p"},
        {OSSL_PKEY_PARAM_RSA_FACTOR2, "q"},    {OSSL_PKEY_PARAM_RSA_EXPONENT1, "dp"},
        {OSSL_PKEY_PARAM_RSA_EXPONENT2, "dq"}, {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "qi"},
    };
    size_t i;
    kv_rv rv = KV_OK;

    for (i = 0; i < sizeof(members) / sizeof(members[0]) && rv == KV_OK; i++) {
        BIGNUM *bn = NULL;

        if (EVP_PKEY_get_bn_param(pkey, members[i].param, &bn) != 1) {
            rv = kv_err_set(err, KV_ERR_INVALID_ARG,
                            "the RSA key lacks its private member %s (CRT form required)",
                            members[i].jwk);
            break;
        }
        rv = kv_rest_jwk_add_bn(jwk, members[i].jwk, bn, 0, err);
        BN_clear_free(bn);
    }
    return rv;
}

/* The private member d of an EC key, as wide as the field. */
static kv_rv kv_rest_jwk_ec_private(json_t *jwk, const EVP_PKEY *pkey, kv_err *err)
{
    BIGNUM *d = NULL;
    int bits = EVP_PKEY_get_bits(pkey);
    kv_rv rv;

    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "the EC key has no private part");
    rv = kv_rest_jwk_add_bn(jwk, "d", d, bits > 0 ? ((size_t)bits + 7) / 8 : 0, err);
    BN_clear_free(d);
    return rv;
}

kv_rv kv_rest_import_key(kv_vault *v, const char *name, const kv_key_import_params *p, kv_key **out,
                         kv_err *err)
{
    char path[256];
    json_t *body = NULL, *jwk = NULL, *tags = NULL, *j = NULL;
    kv_key *k = NULL;
    int type;
    kv_rv rv;

    if (p->pkey == NULL)
        return kv_rest_import_oct(v, name, p, out, err); /* AES (kv_rest_crypto.c) */
    type = EVP_PKEY_get_base_id(p->pkey);
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "only RSA and EC keys can be imported");
    jwk = kv_jwk_from_public_pkey(p->pkey, p->hsm);
    if (jwk == NULL) {
        rv = kv_err_set(err, KV_ERR_UNSUPPORTED,
                        "the key cannot be expressed as a JWK (RSA or EC on P-256/384/521/256K)");
        goto done;
    }
    rv = type == EVP_PKEY_RSA ? kv_rest_jwk_rsa_private(jwk, p->pkey, err)
                              : kv_rest_jwk_ec_private(jwk, p->pkey, err);
    if (rv != KV_OK)
        goto done;
    if (p->key_ops != 0 &&
        json_object_set_new(jwk, "key_ops", kv_key_ops_to_json(p->key_ops)) != 0) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    body = json_object();
    tags = json_pack("{s:s}", KV_REST_ORIGIN_TAG, "imported");
    if (body == NULL || tags == NULL || json_object_set(body, "key", jwk) != 0 ||
        json_object_set_new(body, "Hsm", json_boolean(p->hsm)) != 0 ||
        json_object_set(body, "tags", tags) != 0) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/keys/%s", name);
    rv = v->ops->request(v, "PUT", path, body, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    rv = kv_rest_key_from_bundle(v, j, &k, err);
    if (rv != KV_OK)
        goto done;
    k->imported = true;
    if (out != NULL) {
        *out = k;
        k = NULL;
    }
done:
    if (jwk != NULL)
        kv_rest_jwk_cleanse(jwk);
    kv_key_unref(k);
    json_decref(j);
    json_decref(tags);
    json_decref(body);
    json_decref(jwk);
    return rv;
}

/* ---- update ---- */

kv_rv kv_rest_update_key(kv_vault *v, const kv_key *k, const kv_key_update_params *p, kv_key **out,
                         kv_err *err)
{
    char path[300];
    json_t *body = json_object(), *attrs = json_object(), *j = NULL;
    kv_rv rv;

    if (body == NULL || attrs == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (p->enabled != KV_KEEP)
        json_object_set_new(attrs, "enabled", json_boolean(p->enabled));
    /* 0 removes a date: sent as null (a vault that keeps dates then keeps the old value) */
    if (p->nbf != KV_KEEP)
        json_object_set_new(attrs, "nbf", p->nbf > 0 ? json_integer(p->nbf) : json_null());
    if (p->exp != KV_KEEP)
        json_object_set_new(attrs, "exp", p->exp > 0 ? json_integer(p->exp) : json_null());
    if (json_object_size(attrs) > 0)
        json_object_set(body, "attributes", attrs);
    if (p->key_ops != KV_KEEP)
        json_object_set_new(body, "key_ops", kv_key_ops_to_json((unsigned)p->key_ops));
    snprintf(path, sizeof(path), "/keys/%s/%s", k->name, k->version);
    rv = v->ops->request(v, "PATCH", path, body, &j, NULL, err);
    if (rv == KV_OK && out != NULL)
        rv = kv_rest_key_from_bundle(v, j, out, err);
done:
    json_decref(j);
    json_decref(attrs);
    json_decref(body);
    return rv;
}
