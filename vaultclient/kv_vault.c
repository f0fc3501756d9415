/* kv_vault.c - the kv_vault API: argument checks, dispatch to the vault's backend, and
 * kv_key reference counting. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kv_backend.h"
#include "kv_client.h"

kv_key *kv_key_new(void)
{
    kv_key *k = calloc(1, sizeof(*k));

    if (k != NULL)
        k->refs = 1;
    return k;
}

kv_key *kv_key_ref(kv_key *k)
{
    if (k != NULL)
        __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
    return k;
}

void kv_key_unref(kv_key *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    EVP_PKEY_free(k->pub);
    free(k);
}

void kv_key_list_free(kv_key **keys, size_t n)
{
    size_t i;

    if (keys == NULL)
        return;
    for (i = 0; i < n; i++)
        kv_key_unref(keys[i]);
    free(keys);
}

size_t kv_key_sig_size(const kv_key *k)
{
    if (k == NULL)
        return 0;
    if (k->kty == KV_KTY_RSA)
        return ((size_t)k->bits + 7) / 8;
    if (k->kty == KV_KTY_EC)
        return 2 * (((size_t)k->bits + 7) / 8);
    return 0;
}

const char *kv_vault_name(const kv_vault *v)
{
    return v != NULL ? v->conf->name : NULL;
}

const char *kv_vault_url(const kv_vault *v)
{
    return v != NULL ? v->conf->url : NULL;
}

const char *kv_vault_tenant_id(const kv_vault *v)
{
    return v != NULL ? v->conf->tenant_id : NULL;
}

const char *kv_vault_resource(const kv_vault *v)
{
    return v != NULL ? kv_conf_resource(v->conf) : NULL;
}

static int valid_object_name(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'z') ||
              (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '-'))
            return 0;
    return n >= 1 && n <= 127;
}

static int valid_version(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 1;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'z') ||
              (s[n] >= 'A' && s[n] <= 'Z')))
            return 0;
    return n <= 64;
}

kv_rv kv_vault_get_key(kv_vault *v, const char *name, const char *version, kv_key **out,
                       kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault or output");
    if (!valid_object_name(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "invalid key name: 1-127 characters [0-9A-Za-z-] expected");
    if (!valid_version(version))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid key version");
    return v->ops->get_key(v, name, version, out, err);
}

kv_rv kv_vault_list_keys(kv_vault *v, kv_key ***out, size_t *n, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || out == NULL || n == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault or output");
    return v->ops->list_keys(v, out, n, err);
}

kv_rv kv_vault_create_key(kv_vault *v, const char *name, const kv_key_create_params *p,
                          kv_key **out, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || p == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault or parameters");
    if (!valid_object_name(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "invalid key name: 1-127 characters [0-9A-Za-z-] expected");
    return v->ops->create_key(v, name, p, out, err);
}

kv_rv kv_vault_sign(kv_vault *v, const kv_key *k, kv_alg alg, const uint8_t *digest, size_t dlen,
                    uint8_t *sig, size_t *siglen, kv_err *err)
{
    size_t need, want;

    kv_err_clear(err);
    if (v == NULL || k == NULL || siglen == NULL || (digest == NULL && dlen > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing key, digest or length");
    need = kv_key_sig_size(k);
    if (sig == NULL) {
        *siglen = need;
        return KV_OK;
    }
    if (*siglen < need) {
        *siglen = need;
        return kv_err_set(err, KV_ERR_BUFFER_TOO_SMALL, "signature buffer too small");
    }
    switch (alg) {
    case KV_ALG_RS256:
    case KV_ALG_RS384:
    case KV_ALG_RS512:
    case KV_ALG_PS256:
    case KV_ALG_PS384:
    case KV_ALG_PS512:
    case KV_ALG_RSNULL:
        if (k->kty != KV_KTY_RSA)
            return kv_err_set(err, KV_ERR_UNSUPPORTED, "%s needs an RSA key", kv_alg_name(alg));
        break;
    case KV_ALG_ES256:
    case KV_ALG_ES384:
    case KV_ALG_ES512:
    case KV_ALG_ES256K:
        if (k->kty != KV_KTY_EC || kv_alg_ecdsa_for_curve(k->curve_nid) != alg)
            return kv_err_set(err, KV_ERR_UNSUPPORTED, "%s does not match the key's curve",
                              kv_alg_name(alg));
        break;
    default:
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "unknown signature algorithm");
    }
    want = kv_alg_digest_len(alg);
    if (alg == KV_ALG_RSNULL ? (dlen == 0 || dlen + 11 > need) : dlen != want)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "%s needs a %zu-byte digest, got %zu bytes",
                          kv_alg_name(alg), want, dlen);
    if ((k->key_ops & KV_OP_SIGN) == 0 && k->key_ops != 0)
        return kv_err_set(err, KV_ERR_FORBIDDEN, "key %s does not allow sign", k->name);
    *siglen = need;
    return v->ops->sign(v, k, alg, digest, dlen, sig, need, err);
}

const char *kv_enc_alg_name(kv_enc_alg alg)
{
    switch (alg) {
    case KV_ENC_RSA1_5:
        return "RSA1_5";
    case KV_ENC_RSA_OAEP:
        return "RSA-OAEP";
    case KV_ENC_RSA_OAEP_256:
        return "RSA-OAEP-256";
    default:
        return "";
    }
}

kv_rv kv_vault_decrypt(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in,
                       size_t inlen, uint8_t *out, size_t *outlen, kv_err *err)
{
    size_t need;

    kv_err_clear(err);
    if (v == NULL || k == NULL || outlen == NULL || (in == NULL && inlen > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing key, input or length");
    if (k->kty != KV_KTY_RSA)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "decryption needs an RSA key");
    if (alg != KV_ENC_RSA1_5 && alg != KV_ENC_RSA_OAEP && alg != KV_ENC_RSA_OAEP_256)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "unknown encryption algorithm");
    need = kv_key_sig_size(k);
    if (out == NULL) {
        *outlen = need;
        return KV_OK;
    }
    if (*outlen < need) {
        *outlen = need;
        return kv_err_set(err, KV_ERR_BUFFER_TOO_SMALL, "plaintext buffer too small");
    }
    if (inlen != need)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "ciphertext must be %zu bytes, got %zu", need,
                          inlen);
    if ((k->key_ops & KV_OP_DECRYPT) == 0 && k->key_ops != 0)
        return kv_err_set(err, KV_ERR_FORBIDDEN, "key %s does not allow decrypt", k->name);
    if (v->ops->decrypt == NULL)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "this vault cannot decrypt");
    return v->ops->decrypt(v, k, alg, in, inlen, out, outlen, err);
}

bool kv_vault_has_rng(const kv_vault *v)
{
    return v != NULL && v->ops->random != NULL && v->conf->url != NULL &&
           strstr(v->conf->url, ".managedhsm.") != NULL;
}

kv_rv kv_vault_random(kv_vault *v, uint8_t *buf, size_t len, kv_err *err)
{
    size_t off, n;
    kv_rv rv = KV_OK;

    kv_err_clear(err);
    if (v == NULL || (buf == NULL && len > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault or buffer");
    if (!kv_vault_has_rng(v))
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "vault %s has no random number generator",
                          v->conf->name);
    for (off = 0; off < len && rv == KV_OK; off += n) {
        n = len - off > 128 ? 128 : len - off;
        rv = v->ops->random(v, buf + off, n, err);
    }
    if (rv != KV_OK)
        OPENSSL_cleanse(buf, len);
    return rv;
}

kv_rv kv_vault_request(kv_vault *v, const char *method, const char *path, json_t *body,
                       json_t **resp, long *http_status, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || method == NULL || path == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault, method or path");
    if (v->ops->request == NULL)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "this vault has no REST interface");
    return v->ops->request(v, method, path, body, resp, http_status, err);
}

kv_rv kv_vault_get_token(kv_vault *v, char **token, long long *expires_on, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || token == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault or output");
    if (v->ops->get_token == NULL)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "this vault uses no tokens");
    return v->ops->get_token(v, token, expires_on, err);
}
