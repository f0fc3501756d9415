/* kv_rest_crypto.c - the REST backend's AES operations (encrypt/decrypt with A*GCM, A*CBC,
 * A*CBCPAD) and key wrap (/wrapkey, /unwrapkey with A*KW, CKM_AES_KEY_WRAP_PAD (RFC 5649) and the
 * RSA algorithms), plus the size probe of oct-HSM keys whose KeyBundle does not state their size.
 *
 * Wire format (akv-rest-api.md, "Encrypt/decrypt/wrap"): POST /keys/NAME/VERSION/encrypt |
 * decrypt | wrapkey | unwrapkey with {"alg", "value"} and, for AES, "iv" (CBC always; GCM
 * decryption only - a managed HSM generates the GCM iv and the client must not send one),
 * "aad" (GCM, when non-empty) and "tag" (GCM decryption). A GCM encryption answers with
 * "value", "iv" and "tag". All binary members are base64url. AES key import (PUT /keys/NAME
 * with an oct-HSM JWK) lives here too, called by kv_rest_import_key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "kv_backend.h"
#include "kv_jwk.h"

static bool kv_rest_is_gcm(kv_enc_alg a)
{
    return a == KV_ENC_A128GCM || a == KV_ENC_A192GCM || a == KV_ENC_A256GCM;
}

/* Sets member name of obj to base64url(p, n). */
static kv_rv kv_rest_set_b64(json_t *obj, const char *name, const uint8_t *p, size_t n, kv_err *err)
{
    char *s = kv_b64url_encode(p, n);
    kv_rv rv = KV_OK;

    if (s == NULL || json_object_set_new(obj, name, json_string(s)) != 0)
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
    return rv;
}

/* Zeroises the string member name of obj (plaintext or key bytes in a response). */
static void kv_rest_cleanse_member(json_t *obj, const char *name)
{
    json_t *m = json_object_get(obj, name);

    if (json_is_string(m))
        OPENSSL_cleanse((char *)json_string_value(m), json_string_length(m));
}

/* Decodes member name of obj into exactly want bytes (want 0: any length, *out malloc'd). */
static kv_rv kv_rest_get_b64(const json_t *obj, const char *name, uint8_t **out, size_t *outlen,
                             kv_err *err)
{
    const char *s = json_string_value(json_object_get(obj, name));

    *out = NULL;
    *outlen = 0;
    if (s == NULL || kv_b64_decode(s, out, outlen) != KV_OK)
        return kv_err_set(err, KV_ERR_SERVER, "vault response has no valid %s", name);
    return KV_OK;
}

/* POST /keys/NAME/VERSION/OP with body; *resp gets the answer. */
static kv_rv kv_rest_key_op(kv_vault *v, const kv_key *k, const char *op, json_t *body,
                            json_t **resp, kv_err *err)
{
    char path[400];

    snprintf(path, sizeof(path), "/keys/%s/%s/%s", k->name, k->version, op);
    return v->ops->request(v, "POST", path, body, resp, NULL, err);
}

kv_rv kv_rest_crypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool encrypt,
                        kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                        size_t *outlen, kv_err *err)
{
    bool gcm = kv_rest_is_gcm(alg);
    json_t *body = json_object(), *j = NULL;
    uint8_t *raw = NULL, *iv = NULL, *tag = NULL;
    size_t rawlen = 0, ivlen = 0, taglen = 0;
    kv_rv rv;

    if (body == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    json_object_set_new(body, "alg", json_string(kv_enc_alg_name(alg)));
    rv = kv_rest_set_b64(body, "value", in, inlen, err);
    if (rv == KV_OK && (!gcm || !encrypt))
        rv = kv_rest_set_b64(body, "iv", p->iv, p->ivlen, err);
    if (rv == KV_OK && gcm && p->aadlen > 0)
        rv = kv_rest_set_b64(body, "aad", p->aad, p->aadlen, err);
    if (rv == KV_OK && gcm && !encrypt)
        rv = kv_rest_set_b64(body, "tag", p->tag, p->taglen, err);
    if (rv != KV_OK)
        goto done;
    rv = kv_rest_key_op(v, k, encrypt ? "encrypt" : "decrypt", body, &j, err);
    if (rv != KV_OK)
        goto done;
    rv = kv_rest_get_b64(j, "value", &raw, &rawlen, err);
    if (rv != KV_OK)
        goto done;
    if (gcm && encrypt) {
        rv = kv_rest_get_b64(j, "iv", &iv, &ivlen, err);
        if (rv == KV_OK)
            rv = kv_rest_get_b64(j, "tag", &tag, &taglen, err);
        if (rv != KV_OK)
            goto done;
        if (ivlen != 12 || taglen != 16 || rawlen != inlen) {
            rv = kv_err_set(err, KV_ERR_SERVER,
                            "vault returned a GCM result with a %zu-byte iv, a %zu-byte tag and "
                            "%zu bytes for %zu",
                            ivlen, taglen, rawlen, inlen);
            goto done;
        }
        memcpy(p->iv, iv, 12);
        p->ivlen = 12;
        memcpy(p->tag, tag, 16);
        p->taglen = 16;
    }
    *out = raw;
    *outlen = rawlen;
    raw = NULL;
done:
    if (raw != NULL)
        OPENSSL_clear_free(raw, rawlen);
    free(iv);
    free(tag);
    if (!encrypt)
        kv_rest_cleanse_member(j, "value");
    json_decref(j);
    if (encrypt)
        kv_rest_cleanse_member(body, "value"); /* the plaintext's base64 copy */
    json_decref(body);
    return rv;
}

kv_rv kv_rest_wrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool wrap, const uint8_t *in,
                   size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    json_t *body = NULL, *j = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    kv_rv rv;

    body = json_object();
    if (body == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* RFC 5649 has no JOSE name: a managed HSM takes the PKCS#11 name (spec section 2) */
    json_object_set_new(
        body, "alg",
        json_string(alg == KV_ENC_AES_KWP ? "CKM_AES_KEY_WRAP_PAD" : kv_enc_alg_name(alg)));
    rv = kv_rest_set_b64(body, "value", in, inlen, err);
    if (rv != KV_OK)
        goto done;
    rv = kv_rest_key_op(v, k, wrap ? "wrapkey" : "unwrapkey", body, &j, err);
    if (rv != KV_OK)
        goto done;
    rv = kv_rest_get_b64(j, "value", &raw, &rawlen, err);
    if (rv != KV_OK)
        goto done;
    *out = raw;
    *outlen = rawlen;
    raw = NULL;
done:
    if (raw != NULL)
        OPENSSL_clear_free(raw, rawlen);
    if (!wrap)
        kv_rest_cleanse_member(j, "value");
    kv_rest_cleanse_member(body, "value");
    json_decref(j);
    json_decref(body);
    return rv;
}

/* One probe: whether alg fits the key (KV_OK), does not (KV_ERR_BAD_REQUEST) or cannot be
 * told (any other error). */
static kv_rv kv_rest_oct_try(kv_vault *v, const kv_key *k, const char *op, const char *alg,
                             size_t inlen, kv_err *err)
{
    static const uint8_t zero[24];
    json_t *body = json_object(), *j = NULL;
    kv_rv rv;

    if (body == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    json_object_set_new(body, "alg", json_string(alg));
    rv = kv_rest_set_b64(body, "value", zero, inlen, err);
    if (rv == KV_OK && strcmp(op, "wrapkey") != 0)
        rv = kv_rest_set_b64(body, "iv", zero, 16, err);
    if (rv == KV_OK)
        rv = kv_rest_key_op(v, k, op, body, &j, err);
    json_decref(j);
    json_decref(body);
    return rv;
}

kv_rv kv_rest_oct_bits(kv_vault *v, kv_key *k, kv_err *err)
{
    /* operations the key may allow whose only size-dependent failure is the algorithm's size:
     * CBC encryption / decryption of one zero block (decryption also works outside nbf/exp),
     * or wrapping 16 zero bytes */
    static const struct {
        const char *op, *mode;
        unsigned need;
    } probes[] = {
        {"encrypt", "CBC", KV_OP_ENCRYPT},
        {"decrypt", "CBC", KV_OP_DECRYPT},
        {"wrapkey", "KW", KV_OP_WRAP},
    };
    static const int sizes[] = {256, 128, 192};
    char alg[16];
    size_t p, i;
    kv_err perr;
    kv_rv rv;

    k->bits = 0; /* unknown unless a probe tells */
    for (p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
        if (k->key_ops != 0 && !(k->key_ops & probes[p].need))
            continue;
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            snprintf(alg, sizeof(alg), "A%d%s", sizes[i], probes[p].mode);
            kv_err_clear(&perr);
            rv = kv_rest_oct_try(v, k, probes[p].op, alg, 16, &perr);
            if (rv == KV_OK) {
                k->bits = sizes[i];
                return KV_OK;
            }
            if (rv == KV_ERR_BAD_REQUEST)
                continue; /* not this size */
            if (rv == KV_ERR_FORBIDDEN)
                break; /* not allowed: try another operation */
            if (err != NULL)
                *err = perr;
            return rv;
        }
    }
    return KV_OK; /* the key is listed without a size (CKA_VALUE_LEN unavailable) */
}

kv_rv kv_rest_import_oct(kv_vault *v, const char *name, const kv_key_import_params *p, kv_key **out,
                         kv_err *err)
{
    char path[256];
    json_t *body = NULL, *jwk = NULL, *j = NULL;
    kv_key *k = NULL;
    kv_rv rv;

    /* PUT /keys/NAME {"key": {"kty": "oct-HSM", "k": ...}, "Hsm": true}: a managed HSM takes
     * AES keys only as oct-HSM; tagged like kv_rest_keys.c's imports (kv_key.imported) */
    body = json_pack("{s:b, s:{s:s}}", "Hsm", 1, "tags", "kvault-origin", "imported");
    jwk = json_pack("{s:s}", "kty", "oct-HSM");
    if (body == NULL || jwk == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    rv = kv_rest_set_b64(jwk, "k", p->oct, p->octlen, err);
    if (rv == KV_OK && p->key_ops != 0 &&
        json_object_set_new(jwk, "key_ops", kv_key_ops_to_json(p->key_ops)) != 0)
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    if (rv == KV_OK && json_object_set(body, "key", jwk) != 0)
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    if (rv != KV_OK)
        goto done;
    snprintf(path, sizeof(path), "/keys/%s", name);
    rv = v->ops->request(v, "PUT", path, body, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    /* the size we imported: no probe needed */
    json_object_set_new(json_object_get(j, "key"), "key_size",
                        json_integer((json_int_t)p->octlen * 8));
    rv = kv_rest_key_from_bundle(v, j, &k, err);
    if (rv != KV_OK)
        goto done;
    k->imported = true;
    if (out != NULL) {
        *out = k;
        k = NULL;
    }
done:
    if (jwk != NULL) { /* zeroise the base64 copy of the key */
        json_t *kk = json_object_get(jwk, "k");

        if (json_is_string(kk))
            OPENSSL_cleanse((char *)json_string_value(kk), json_string_length(kk));
    }
    kv_key_unref(k);
    json_decref(j);
    json_decref(body);
    json_decref(jwk);
    return rv;
}
