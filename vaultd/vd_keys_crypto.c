/* vd_keys_crypto.c - RSA encrypt / decrypt / wrapKey / unwrapKey endpoints (RSA1_5, RSA-OAEP,
 * RSA-OAEP-256). Encrypt and wrap use the public key; decrypt and unwrap the private key from
 * the key cache. decrypt and unwrapKey still work outside nbf/exp, as in Azure. */
#include "vd_keys_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_b64.h"
#include "vd_crypto.h"
#include "vd_keys_int.h"
#include "vd_util.h"

/* op: the key_ops name; enc: whether it encrypts (public key, dates checked). */
static void vd_rsa_op(vd_req *r, const char *name, const char *version, const char *op, bool enc)
{
    vd_key_row row = {0};
    json_t *body = NULL;
    const json_t *a, *v;
    vd_enc_alg alg;
    uint8_t *in = NULL, *out = NULL;
    size_t inlen = 0, outlen = 0;
    EVP_PKEY *pub = NULL, *priv = NULL;
    char kid[600], *o64 = NULL;
    kv_rv rv;

    if (!vd_key_load(r, name, version, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    a = json_object_get(body, "alg");
    if (!json_is_string(a) || !vd_enc_alg_by_name(json_string_value(a), &alg)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid or missing algorithm (alg) for %s: use RSA1_5, RSA-OAEP or "
                       "RSA-OAEP-256.",
                       op);
        goto done;
    }
    v = json_object_get(body, "value");
    if (!json_is_string(v) || kv_b64_decode(json_string_value(v), &in, &inlen) != KV_OK) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter value is missing or not valid base64url.");
        goto done;
    }
    if (vd_crypto_pub_from_der(row.pub_der, row.pub_len, &pub) != KV_OK)
        goto fail;
    if (!EVP_PKEY_is_a(pub, "RSA")) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Algorithm %s is not valid for this key's type (%s%s).",
                       json_string_value(a), row.kty, row.hsm ? "-HSM" : "");
        goto done;
    }
    if (!vd_key_allows(r, &row, op, enc))
        goto done;
    if (enc && inlen > vd_crypto_enc_max(pub, alg)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The value is too long for %s with this key: %zu bytes (at most %zu).",
                       json_string_value(a), inlen, vd_crypto_enc_max(pub, alg));
        goto done;
    }
    if (enc) {
        rv = vd_crypto_encrypt(pub, alg, in, inlen, &out, &outlen);
    } else {
        priv = vd_private_key(r, &row);
        if (priv == NULL)
            goto fail;
        rv = vd_crypto_decrypt(priv, alg, in, inlen, &out, &outlen);
    }
    if (rv == KV_ERR_INVALID_ARG) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The value could not be %s with %s under this key.",
                       enc ? "encrypted" : "decrypted", json_string_value(a));
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    o64 = kv_b64url_encode(out, outlen);
    if (o64 == NULL)
        goto fail;
    vd_kid(r, &row, true, kid, sizeof(kid));
    vd_reply_json(r, 200, json_pack("{s:s, s:s}", "kid", kid, "value", o64));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The %s operation failed.", op);
done:
    if (o64 != NULL)
        vd_free_secret(o64, strlen(o64));
    vd_free_secret(out, outlen);
    vd_free_secret(in, inlen);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
    json_decref(body);
    vd_key_row_clear(&row);
}

void vd_keys_encrypt(vd_req *r, const char *name, const char *version)
{
    vd_rsa_op(r, name, version, "encrypt", true);
}

void vd_keys_decrypt(vd_req *r, const char *name, const char *version)
{
    vd_rsa_op(r, name, version, "decrypt", false);
}

void vd_keys_wrap(vd_req *r, const char *name, const char *version)
{
    vd_rsa_op(r, name, version, "wrapKey", true);
}

void vd_keys_unwrap(vd_req *r, const char *name, const char *version)
{
    vd_rsa_op(r, name, version, "unwrapKey", false);
}
