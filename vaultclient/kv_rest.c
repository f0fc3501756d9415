/* kv_rest.c - the remote vault backend: Azure Key Vault data-plane REST over kv_http, with
 * bearer tokens from kv_token (a 401 is followed once: challenge, new token, retry). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/obj_mac.h>

#include "kv_b64.h"
#include "kv_backend.h"
#include "kv_jwk.h"
#include "kv_log.h"
#include "kv_token.h"

#define KV_API_VERSION "7.4"

typedef struct {
    kv_token_src *tokens;
} kv_rest;

static kv_rv status_to_rv(long status)
{
    switch (status) {
    case 400:
        return KV_ERR_BAD_REQUEST;
    case 401:
        return KV_ERR_AUTH;
    case 403:
        return KV_ERR_FORBIDDEN;
    case 404:
        return KV_ERR_NOT_FOUND;
    case 409:
        return KV_ERR_CONFLICT;
    default:
        return status >= 200 && status < 300 ? KV_OK : KV_ERR_SERVER;
    }
}

/* Builds the absolute URL for path (relative to the vault URL, or an absolute URL that must
 * start with the vault URL: a token is never sent to another host). */
static kv_rv build_url(kv_vault *v, const char *path, char **out, kv_err *err)
{
    const char *base = v->conf->url;
    size_t blen = strlen(base), need;
    const char *rel;
    char *url;

    if (strncasecmp(path, "https://", 8) == 0 || strncasecmp(path, "http://", 7) == 0) {
        if (strncasecmp(path, base, blen) != 0 || (path[blen] != '/' && path[blen] != '\0'))
            return kv_err_set(err, KV_ERR_INVALID_ARG,
                              "refusing to send the vault token to %s (not under %s)", path, base);
        rel = path + blen;
    } else {
        rel = path;
    }
    if (*rel != '/' && *rel != '\0')
        return kv_err_set(err, KV_ERR_INVALID_ARG, "path must start with '/'");
    need = blen + strlen(rel) + sizeof("?api-version=" KV_API_VERSION) + 1;
    url = malloc(need);
    if (url == NULL)
        return KV_ERR_NOMEM;
    if (strstr(rel, "api-version=") != NULL || strstr(rel, "api%2Dversion=") != NULL)
        snprintf(url, need, "%s%s", base, rel);
    else
        snprintf(url, need, "%s%s%capi-version=" KV_API_VERSION, base, rel,
                 strchr(rel, '?') != NULL ? '&' : '?');
    *out = url;
    return KV_OK;
}

/* Copies the Azure error JSON into err. */
static kv_rv vault_error(kv_err *err, long status, const json_t *j, const char *what)
{
    const json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    kv_rv rv = status_to_rv(status);

    kv_err_set(err, rv, "vault returned %ld %s%s%s%s%s", status, code != NULL ? code : "",
               msg != NULL ? ": " : "", msg != NULL ? msg : "", what != NULL ? " " : "",
               what != NULL ? what : "");
    if (err != NULL) {
        err->http_status = status;
        snprintf(err->code, sizeof(err->code), "%s", code != NULL ? code : "");
    }
    return rv;
}

static kv_rv rest_request(kv_vault *v, const char *method, const char *path, json_t *body,
                          json_t **resp, long *http_status, kv_err *err)
{
    kv_rest *r = v->impl;
    char *url = NULL, *token = NULL, *auth = NULL, *payload = NULL;
    const char *hdrs[4];
    kv_http_req req;
    kv_http_resp hr = {0};
    json_t *j = NULL;
    json_error_t jerr;
    int attempt;
    kv_rv rv;

    if (resp != NULL)
        *resp = NULL;
    rv = build_url(v, path, &url, err);
    if (rv != KV_OK)
        goto done;
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        if (payload == NULL) {
            rv = KV_ERR_NOMEM;
            goto done;
        }
    }
    for (attempt = 0; attempt < 2; attempt++) {
        size_t alen;
        int probe = kv_token_needs_challenge(r->tokens);

        /* Without a tenant the request goes out once without a token: the vault's 401
         * challenge names the tenant (docs/configuration.md, "The 401 challenge"). */
        if (!probe) {
            rv = kv_token_get(r->tokens, &token, NULL, err);
            if (rv != KV_OK)
                goto done;
            alen = strlen(token) + sizeof("Authorization: Bearer ");
            auth = malloc(alen);
            if (auth == NULL) {
                rv = KV_ERR_NOMEM;
                goto done;
            }
            snprintf(auth, alen, "Authorization: Bearer %s", token);
        }
        hdrs[0] = "Accept: application/json";
        hdrs[1] = payload != NULL ? "Content-Type: application/json" : NULL;
        hdrs[2] = hdrs[1] != NULL ? auth : NULL;
        if (hdrs[1] == NULL)
            hdrs[1] = auth;
        hdrs[3] = NULL;
        memset(&req, 0, sizeof(req));
        req.method = method;
        req.url = url;
        req.headers = hdrs;
        req.body = payload;
        req.body_len = payload != NULL ? strlen(payload) : 0;
        req.ca_file = v->conf->ca_file;
        rv = kv_http_do(v->http, &req, &hr, err);
        kv_free_secret(auth);
        auth = NULL;
        if (rv != KV_OK)
            goto done;
        if (hr.status == 401 && attempt == 0) {
            /* Challenge: learn tenant/resource where allowed; a rejected token (revoked,
             * expired early, signing key rotated) is dropped. Retry once with a new token. */
            KV_DEBUG("vault %s answered 401; following its challenge", v->conf->name);
            rv = kv_token_challenge(r->tokens, hr.www_authenticate, token, err);
            kv_free_secret(token);
            token = NULL;
            if (rv != KV_OK)
                goto done;
            kv_http_resp_free(&hr);
            if (kv_token_needs_challenge(r->tokens)) {
                rv = kv_err_set(err, KV_ERR_AUTH, "vault %s: no tenant", v->conf->name);
                goto done;
            }
            continue;
        }
        break;
    }
    if (http_status != NULL)
        *http_status = hr.status;
    if (hr.body_len > 0) {
        j = json_loadb(hr.body, hr.body_len, 0, &jerr);
        if (j == NULL && hr.status >= 200 && hr.status < 300) {
            rv = kv_err_set(err, KV_ERR_SERVER, "vault sent a response that is not JSON: %s",
                            jerr.text);
            goto done;
        }
    }
    if (hr.status < 200 || hr.status >= 300) {
        rv = vault_error(err, hr.status, j, NULL);
        if (err != NULL && j == NULL && hr.status == 401 && hr.www_authenticate[0] != '\0')
            snprintf(err->message, sizeof(err->message), "vault returned 401: %.480s",
                     hr.www_authenticate);
    } else {
        rv = KV_OK;
    }
    if (resp != NULL) {
        *resp = j;
        j = NULL;
    }
done:
    json_decref(j);
    kv_http_resp_free(&hr);
    kv_free_secret(token);
    kv_free_secret(payload); /* may carry key material (import) */
    free(url);
    return rv;
}

/* Whether a KeyBundle's JWK is an AES key (kty oct / oct-HSM). */
static bool kv_rest_bundle_is_oct(const json_t *jwk)
{
    const char *t = json_string_value(json_object_get(jwk, "kty"));

    return t != NULL && (strcmp(t, "oct") == 0 || strcmp(t, "oct-HSM") == 0);
}

/* Fills k from a KeyBundle's "key" (JWK) and "attributes". */
kv_rv kv_rest_key_from_bundle(kv_vault *v, const json_t *bundle, kv_key **out, kv_err *err)
{
    const json_t *jwk = json_object_get(bundle, "key");
    const json_t *attrs = json_object_get(bundle, "attributes");
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    const char *p, *slash, *origin;
    kv_key *k;
    int hsm = 0;
    kv_rv rv;

    if (kid == NULL || (p = strstr(kid, "/keys/")) == NULL)
        return kv_err_set(err, KV_ERR_SERVER, "vault returned a key without a valid kid");
    k = kv_key_new();
    if (k == NULL)
        return KV_ERR_NOMEM;
    snprintf(k->vault, sizeof(k->vault), "%s", v->conf->name);
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    p += 6;
    slash = strchr(p, '/');
    if (slash == NULL || (size_t)(slash - p) >= sizeof(k->name)) {
        kv_key_unref(k);
        return kv_err_set(err, KV_ERR_SERVER, "vault returned a kid without a version");
    }
    memcpy(k->name, p, (size_t)(slash - p));
    snprintf(k->version, sizeof(k->version), "%s", slash + 1);
    if (kv_rest_bundle_is_oct(jwk)) { /* AES (managed HSM): no public part; size by probe */
        k->kty = KV_KTY_OCT;
        hsm = 1;
        k->bits = (int)json_integer_value(json_object_get(jwk, "key_size"));
        k->key_ops = kv_key_ops_from_json(json_object_get(jwk, "key_ops"));
        rv = k->bits != 0 ? KV_OK : kv_rest_oct_bits(v, k, err);
    } else {
        rv = kv_jwk_to_public_pkey(kv_http_libctx(v->http), NULL, jwk, &k->pub, &k->kty,
                                   &k->curve_nid, &k->bits, &hsm, err);
    }
    if (rv != KV_OK) {
        kv_key_unref(k);
        return rv;
    }
    k->hsm = hsm != 0;
    k->key_ops = kv_key_ops_from_json(json_object_get(jwk, "key_ops"));
    k->enabled = !json_is_false(json_object_get(attrs, "enabled"));
    k->created = json_integer_value(json_object_get(attrs, "created"));
    k->updated = json_integer_value(json_object_get(attrs, "updated"));
    k->nbf = json_integer_value(json_object_get(attrs, "nbf"));
    k->exp = json_integer_value(json_object_get(attrs, "exp"));
    /* kv_rest_keys.c tags the keys it imports (the vault does not say) */
    origin = json_string_value(json_object_get(json_object_get(bundle, "tags"), "kvault-origin"));
    k->imported = origin != NULL && strcmp(origin, "imported") == 0;
    *out = k;
    return KV_OK;
}

static kv_rv rest_get_key(kv_vault *v, const char *name, const char *version, kv_key **out,
                          kv_err *err)
{
    char path[256];
    json_t *j = NULL;
    kv_rv rv;

    snprintf(path, sizeof(path), "/keys/%s/%s", name, version != NULL ? version : "");
    rv = rest_request(v, "GET", path, NULL, &j, NULL, err);
    if (rv == KV_OK)
        rv = kv_rest_key_from_bundle(v, j, out, err);
    json_decref(j);
    return rv;
}

static kv_rv rest_list_keys(kv_vault *v, kv_key ***out, size_t *n, kv_err *err)
{
    char *next = strdup("/keys?maxresults=25");
    kv_key **keys = NULL, **nk;
    size_t count = 0, cap = 0, i;
    int pages = 0;
    kv_rv rv = KV_OK;

    while (next != NULL && rv == KV_OK) {
        json_t *j = NULL, *item;
        const char *nl;

        if (++pages > 10000) {
            rv = kv_err_set(err, KV_ERR_SERVER, "vault key listing does not end");
            break;
        }
        rv = rest_request(v, "GET", next, NULL, &j, NULL, err);
        free(next);
        next = NULL;
        if (rv != KV_OK)
            break;
        json_array_foreach(json_object_get(j, "value"), i, item)
        {
            const char *kid = json_string_value(json_object_get(item, "kid"));
            const char *name = kid != NULL ? strstr(kid, "/keys/") : NULL;
            kv_key *k = NULL;

            if (name == NULL)
                continue;
            rv = rest_get_key(v, name + 6, NULL, &k, err);
            if (rv == KV_ERR_NOT_FOUND || rv == KV_ERR_UNSUPPORTED) {
                rv = KV_OK; /* deleted meanwhile, or a key type the faces cannot use */
                continue;
            }
            if (rv != KV_OK)
                break;
            if (count == cap) {
                cap = cap ? 2 * cap : 16;
                nk = realloc(keys, cap * sizeof(*keys));
                if (nk == NULL) {
                    kv_key_unref(k);
                    rv = KV_ERR_NOMEM;
                    break;
                }
                keys = nk;
            }
            keys[count++] = k;
        }
        nl = json_string_value(json_object_get(j, "nextLink"));
        if (rv == KV_OK && nl != NULL && *nl != '\0') {
            next = strdup(nl);
            if (next == NULL)
                rv = KV_ERR_NOMEM;
        }
        json_decref(j);
    }
    free(next);
    if (rv != KV_OK) {
        kv_key_list_free(keys, count);
        return rv;
    }
    *out = keys;
    *n = count;
    return KV_OK;
}

static kv_rv rest_create_key(kv_vault *v, const char *name, const kv_key_create_params *p,
                             kv_key **out, kv_err *err)
{
    char path[256];
    json_t *body = json_object(), *j = NULL;
    kv_rv rv;

    if (body == NULL)
        return KV_ERR_NOMEM;
    if (p->kty == KV_KTY_RSA) {
        json_object_set_new(body, "kty", json_string(p->hsm ? "RSA-HSM" : "RSA"));
        json_object_set_new(body, "key_size", json_integer(p->bits ? p->bits : 2048));
    } else if (p->kty == KV_KTY_EC) {
        const char *crv =
            kv_curve_name_from_nid(p->curve_nid ? p->curve_nid : NID_X9_62_prime256v1);
        if (crv == NULL) {
            json_decref(body);
            return kv_err_set(err, KV_ERR_UNSUPPORTED, "unsupported EC curve");
        }
        json_object_set_new(body, "kty", json_string(p->hsm ? "EC-HSM" : "EC"));
        json_object_set_new(body, "crv", json_string(crv));
    } else if (p->kty == KV_KTY_OCT) {
        json_object_set_new(body, "kty", json_string("oct-HSM"));
        json_object_set_new(body, "key_size", json_integer(p->bits ? p->bits : 256));
    } else {
        json_decref(body);
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "unsupported key type");
    }
    if (p->key_ops != 0)
        json_object_set_new(body, "key_ops", kv_key_ops_to_json(p->key_ops));
    snprintf(path, sizeof(path), "/keys/%s/create", name);
    rv = rest_request(v, "POST", path, body, &j, NULL, err);
    if (rv == KV_OK && p->kty == KV_KTY_OCT) /* the size we asked for: no probe needed */
        json_object_set_new(json_object_get(j, "key"), "key_size",
                            json_integer(p->bits ? p->bits : 256));
    if (rv == KV_OK && out != NULL)
        rv = kv_rest_key_from_bundle(v, j, out, err);
    json_decref(j);
    json_decref(body);
    return rv;
}

static kv_rv rest_sign(kv_vault *v, const kv_key *k, kv_alg alg, const uint8_t *digest, size_t dlen,
                       uint8_t *sig, size_t siglen, kv_err *err)
{
    char path[300];
    char *b64 = kv_b64url_encode(digest, dlen);
    json_t *body = json_object(), *j = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    const char *val;
    kv_rv rv;

    if (b64 == NULL || body == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    json_object_set_new(body, "alg", json_string(kv_alg_name(alg)));
    json_object_set_new(body, "value", json_string(b64));
    snprintf(path, sizeof(path), "/keys/%s/%s/sign", k->name, k->version);
    rv = rest_request(v, "POST", path, body, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    val = json_string_value(json_object_get(j, "value"));
    if (val == NULL || kv_b64_decode(val, &raw, &rawlen) != KV_OK) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault sign response has no valid value");
        goto done;
    }
    if (rawlen > siglen || (k->kty == KV_KTY_EC && rawlen != siglen)) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault returned a %zu-byte signature, expected %zu",
                        rawlen, siglen);
        goto done;
    }
    /* RSA signatures are modulus-length; left-pad if the vault trimmed leading zeros. */
    memset(sig, 0, siglen - rawlen);
    memcpy(sig + (siglen - rawlen), raw, rawlen);
    rv = KV_OK;
done:
    free(raw);
    free(b64);
    json_decref(j);
    json_decref(body);
    return rv;
}

static kv_rv rest_decrypt(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in,
                          size_t inlen, uint8_t *out, size_t *outlen, kv_err *err)
{
    char path[300];
    char *b64 = kv_b64url_encode(in, inlen);
    json_t *body = json_object(), *j = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    const char *val;
    kv_rv rv;

    if (b64 == NULL || body == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    json_object_set_new(body, "alg", json_string(kv_enc_alg_name(alg)));
    json_object_set_new(body, "value", json_string(b64));
    snprintf(path, sizeof(path), "/keys/%s/%s/decrypt", k->name, k->version);
    rv = rest_request(v, "POST", path, body, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    val = json_string_value(json_object_get(j, "value"));
    if (val == NULL || kv_b64_decode(val, &raw, &rawlen) != KV_OK) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault decrypt response has no valid value");
        goto done;
    }
    if (rawlen > *outlen) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault returned a %zu-byte plaintext, expected <= %zu",
                        rawlen, *outlen);
        goto done;
    }
    memcpy(out, raw, rawlen);
    *outlen = rawlen;
    rv = KV_OK;
done:
    if (raw != NULL)
        OPENSSL_cleanse(raw, rawlen);
    free(raw);
    free(b64);
    json_decref(j);
    json_decref(body);
    return rv;
}

static kv_rv rest_random(kv_vault *v, uint8_t *buf, size_t len, kv_err *err)
{
    json_t *body = json_pack("{s:I}", "count", (json_int_t)len), *j = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    const char *val;
    kv_rv rv;

    if (body == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    rv = rest_request(v, "POST", "/rng", body, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    val = json_string_value(json_object_get(j, "value"));
    if (val == NULL || kv_b64_decode(val, &raw, &rawlen) != KV_OK || rawlen != len) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault rng response has no valid value");
        goto done;
    }
    memcpy(buf, raw, len);
done:
    if (raw != NULL)
        OPENSSL_cleanse(raw, rawlen);
    free(raw);
    json_decref(j);
    json_decref(body);
    return rv;
}

static kv_rv rest_get_token(kv_vault *v, char **token, long long *expires_on, kv_err *err)
{
    kv_rest *r = v->impl;

    if (kv_token_needs_challenge(r->tokens)) {
        /* No tenant configured: one unauthenticated request gets the vault's challenge. */
        kv_http_req req;
        kv_http_resp hr = {0};
        const char *hdrs[] = {"Accept: application/json", NULL};
        char *url = NULL;
        kv_rv rv = build_url(v, "/keys?maxresults=1", &url, err);

        if (rv != KV_OK)
            return rv;
        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.url = url;
        req.headers = hdrs;
        req.ca_file = v->conf->ca_file;
        rv = kv_http_do(v->http, &req, &hr, err);
        if (rv == KV_OK && hr.status == 401)
            rv = kv_token_challenge(r->tokens, hr.www_authenticate, NULL, err);
        else if (rv == KV_OK)
            rv = kv_err_set(err, KV_ERR_AUTH,
                            "vault %s answered %ld instead of a challenge: set tenant_id",
                            v->conf->name, hr.status);
        kv_http_resp_free(&hr);
        free(url);
        if (rv != KV_OK)
            return rv;
    }
    return kv_token_get(r->tokens, token, expires_on, err);
}

static bool rest_login_required(const kv_vault *v)
{
    const kv_rest *r = v->impl;

    return r != NULL && kv_token_sealed(r->tokens);
}

static kv_rv rest_unlock(kv_vault *v, const char *pin, size_t pinlen, kv_err *err)
{
    kv_rest *r = v->impl;

    return kv_token_unlock(r->tokens, pin, pinlen, err);
}

static void rest_lock(kv_vault *v)
{
    kv_rest *r = v->impl;

    if (r != NULL)
        kv_token_lock(r->tokens);
}

static void rest_free(kv_vault *v)
{
    kv_rest *r = v->impl;

    if (r == NULL)
        return;
    kv_token_src_free(r->tokens);
    free(r);
    v->impl = NULL;
}

static const kv_backend_ops kv_rest_ops = {
    .kind = "vault",
    .get_key = rest_get_key,
    .list_keys = rest_list_keys,
    .create_key = rest_create_key,
    .sign = rest_sign,
    .decrypt = rest_decrypt,
    .random = rest_random,
    .list_versions = kv_rest_list_versions,
    .delete_key = kv_rest_delete_key,
    .import_key = kv_rest_import_key,
    .update_key = kv_rest_update_key,
    .crypt_sym = kv_rest_crypt_sym,
    .wrap = kv_rest_wrap,
    .request = rest_request,
    .get_token = rest_get_token,
    .login_required = rest_login_required,
    .unlock = rest_unlock,
    .lock = rest_lock,
    .free = rest_free,
};

kv_rv kv_rest_init(kv_vault *v, kv_err *err)
{
    kv_rest *r = calloc(1, sizeof(*r));
    kv_rv rv;

    if (r == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    rv = kv_token_src_new(v->conf, v->http, &r->tokens, err);
    if (rv != KV_OK) {
        free(r);
        return rv;
    }
    v->impl = r;
    v->ops = &kv_rest_ops;
    return KV_OK;
}
