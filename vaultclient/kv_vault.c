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

static const char *kv_enc_alg_sym_name(kv_enc_alg alg);

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
        return kv_enc_alg_sym_name(alg);
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
    /* a managed HSM pool's /rng, or a local pool's member tokens (kv_pool.c) */
    return v != NULL && v->ops->random != NULL &&
           (kv_vault_is_local_pool(v) ||
            (v->conf->url != NULL && strstr(v->conf->url, ".managedhsm.") != NULL));
}

bool kv_vault_key_versions_all(const kv_vault *v)
{
    return v != NULL && v->conf->key_versions_all != 0;
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

/* ---- key lifecycle (backends: kv_rest_keys.c, kv_pool.c) ---- */

#define KV_BACKEND_CALL(v, op, what, ...)                                                          \
    ((v)->ops->op == NULL ? kv_err_set(err, KV_ERR_UNSUPPORTED, "%s %s cannot %s", (v)->ops->kind, \
                                       (v)->conf->name, what)                                      \
                          : (v)->ops->op(v, __VA_ARGS__))

kv_rv kv_vault_list_key_versions(kv_vault *v, const char *name, kv_key ***out, size_t *n,
                                 kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || out == NULL || n == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault or output");
    if (!valid_object_name(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "invalid key name: 1-127 characters [0-9A-Za-z-] expected");
    *out = NULL;
    *n = 0;
    return KV_BACKEND_CALL(v, list_versions, "list key versions", name, out, n, err);
}

kv_rv kv_vault_delete_key(kv_vault *v, const char *name, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault");
    if (!valid_object_name(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "invalid key name: 1-127 characters [0-9A-Za-z-] expected");
    return KV_BACKEND_CALL(v, delete_key, "delete keys", name, err);
}

kv_rv kv_vault_import_key(kv_vault *v, const char *name, const kv_key_import_params *p,
                          kv_key **out, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || p == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault or parameters");
    if (!valid_object_name(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "invalid key name: 1-127 characters [0-9A-Za-z-] expected");
    if ((p->pkey == NULL) == (p->oct == NULL))
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "import needs exactly one of a private key "
                          "or AES key bytes");
    if (p->oct != NULL && p->octlen != 16 && p->octlen != 24 && p->octlen != 32)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "an AES key has 16, 24 or 32 bytes, not %zu",
                          p->octlen);
    if (p->oct != NULL && !kv_vault_has_oct(v))
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "vault %s cannot hold AES keys", v->conf->name);
    return KV_BACKEND_CALL(v, import_key, "import keys", name, p, out, err);
}

kv_rv kv_vault_update_key(kv_vault *v, const kv_key *k, const kv_key_update_params *p, kv_key **out,
                          kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || k == NULL || p == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault, key or parameters");
    if (p->enabled != KV_KEEP && p->enabled != 0 && p->enabled != 1)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "enabled must be 0 or 1");
    if ((p->nbf != KV_KEEP && p->nbf < 0) || (p->exp != KV_KEEP && p->exp < 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "nbf and exp are unix seconds");
    if (p->key_ops != KV_KEEP && (p->key_ops < 0 || p->key_ops > 0x3f))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "unknown key_ops bits");
    return KV_BACKEND_CALL(v, update_key, "update keys", k, p, out, err);
}

/* ---- symmetric operations and key wrap (backends: kv_rest_crypto.c, kv_pool.c) ---- */

static int kv_enc_aes_bits(kv_enc_alg alg)
{
    switch (alg) {
    case KV_ENC_A128GCM:
    case KV_ENC_A128CBC:
    case KV_ENC_A128CBCPAD:
    case KV_ENC_A128KW:
        return 128;
    case KV_ENC_A192GCM:
    case KV_ENC_A192CBC:
    case KV_ENC_A192CBCPAD:
    case KV_ENC_A192KW:
        return 192;
    case KV_ENC_A256GCM:
    case KV_ENC_A256CBC:
    case KV_ENC_A256CBCPAD:
    case KV_ENC_A256KW:
        return 256;
    case KV_ENC_AES_KWP:
        return -1; /* any size */
    default:
        return 0;
    }
}

static const char *kv_enc_alg_sym_name(kv_enc_alg alg)
{
    static const char *const names[] = {
        [KV_ENC_A128GCM] = "A128GCM",       [KV_ENC_A192GCM] = "A192GCM",
        [KV_ENC_A256GCM] = "A256GCM",       [KV_ENC_A128CBC] = "A128CBC",
        [KV_ENC_A192CBC] = "A192CBC",       [KV_ENC_A256CBC] = "A256CBC",
        [KV_ENC_A128CBCPAD] = "A128CBCPAD", [KV_ENC_A192CBCPAD] = "A192CBCPAD",
        [KV_ENC_A256CBCPAD] = "A256CBCPAD", [KV_ENC_A128KW] = "A128KW",
        [KV_ENC_A192KW] = "A192KW",         [KV_ENC_A256KW] = "A256KW",
        [KV_ENC_AES_KWP] = "AES-KWP",
    };

    if ((size_t)alg < sizeof(names) / sizeof(names[0]) && names[alg] != NULL)
        return names[alg];
    return "";
}

static bool kv_enc_is_gcm(kv_enc_alg a)
{
    return a == KV_ENC_A128GCM || a == KV_ENC_A192GCM || a == KV_ENC_A256GCM;
}

static bool kv_enc_is_kw(kv_enc_alg a)
{
    return a == KV_ENC_A128KW || a == KV_ENC_A192KW || a == KV_ENC_A256KW || a == KV_ENC_AES_KWP;
}

static kv_rv kv_sym_check(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool for_wrap,
                          const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                          kv_err *err)
{
    int bits = kv_enc_aes_bits(alg);

    if (v == NULL || k == NULL || out == NULL || outlen == NULL || (in == NULL && inlen > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault, key, input or output");
    *out = NULL;
    *outlen = 0;
    if (bits == 0)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "not a symmetric algorithm");
    if (k->kty != KV_KTY_OCT)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "%s needs an AES key; %s is not one",
                          kv_enc_alg_sym_name(alg), k->name);
    if (bits > 0 && bits != k->bits)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "%s needs a %d-bit key; %s has %d bits",
                          kv_enc_alg_sym_name(alg), bits, k->name, k->bits);
    if (for_wrap != kv_enc_is_kw(alg))
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "%s is not a %s algorithm",
                          kv_enc_alg_sym_name(alg), for_wrap ? "key wrap" : "encryption");
    return KV_OK;
}

static kv_rv kv_vault_crypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool encrypt,
                                kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                                size_t *outlen, kv_err *err)
{
    kv_rv rv;

    kv_err_clear(err);
    rv = kv_sym_check(v, k, alg, false, in, inlen, out, outlen, err);
    if (rv != KV_OK)
        return rv;
    if (p == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing iv / tag parameters");
    if (kv_enc_is_gcm(alg)) {
        if ((!encrypt || p->ivlen != 0) && p->ivlen != 12)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "AES-GCM needs a 12-byte iv, not %zu",
                              p->ivlen);
        if (!encrypt && p->taglen != 16)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "AES-GCM needs a 16-byte tag, not %zu",
                              p->taglen);
        if (p->aad == NULL && p->aadlen > 0)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "missing additional data");
    } else {
        if (p->ivlen != 16)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "AES-CBC needs a 16-byte iv, not %zu",
                              p->ivlen);
        if ((alg == KV_ENC_A128CBC || alg == KV_ENC_A192CBC || alg == KV_ENC_A256CBC || !encrypt) &&
            inlen % 16 != 0)
            return kv_err_set(err, KV_ERR_INVALID_ARG,
                              "AES-CBC input must be a multiple of 16 bytes, not %zu", inlen);
    }
    if ((k->key_ops & (encrypt ? KV_OP_ENCRYPT : KV_OP_DECRYPT)) == 0 && k->key_ops != 0)
        return kv_err_set(err, KV_ERR_FORBIDDEN, "key %s does not allow %s", k->name,
                          encrypt ? "encrypt" : "decrypt");
    return KV_BACKEND_CALL(v, crypt_sym, "run AES operations", k, alg, encrypt, p, in, inlen, out,
                           outlen, err);
}

kv_rv kv_vault_encrypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, kv_sym_params *p,
                           const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                           kv_err *err)
{
    return kv_vault_crypt_sym(v, k, alg, true, p, in, inlen, out, outlen, err);
}

kv_rv kv_vault_decrypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, kv_sym_params *p,
                           const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                           kv_err *err)
{
    return kv_vault_crypt_sym(v, k, alg, false, p, in, inlen, out, outlen, err);
}

static kv_rv kv_vault_wrap_any(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool wrap,
                               const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                               kv_err *err)
{
    kv_rv rv;

    kv_err_clear(err);
    if (alg == KV_ENC_RSA1_5 || alg == KV_ENC_RSA_OAEP || alg == KV_ENC_RSA_OAEP_256) {
        if (v == NULL || k == NULL || out == NULL || outlen == NULL || in == NULL || inlen == 0)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault, key, input or output");
        *out = NULL;
        *outlen = 0;
        if (k->kty != KV_KTY_RSA)
            return kv_err_set(err, KV_ERR_UNSUPPORTED, "%s needs an RSA key", kv_enc_alg_name(alg));
    } else {
        rv = kv_sym_check(v, k, alg, true, in, inlen, out, outlen, err);
        if (rv != KV_OK)
            return rv;
        if (inlen == 0 || (alg != KV_ENC_AES_KWP && (inlen % 8 != 0 || inlen < (wrap ? 16 : 24))))
            return kv_err_set(err, KV_ERR_INVALID_ARG,
                              "AES key wrap input must be a multiple of 8 bytes, at least %d",
                              wrap ? 16 : 24);
    }
    if ((k->key_ops & (wrap ? KV_OP_WRAP : KV_OP_UNWRAP)) == 0 && k->key_ops != 0)
        return kv_err_set(err, KV_ERR_FORBIDDEN, "key %s does not allow %s", k->name,
                          wrap ? "wrapKey" : "unwrapKey");
    return KV_BACKEND_CALL(v, wrap, wrap ? "wrap keys" : "unwrap keys", k, alg, wrap, in, inlen,
                           out, outlen, err);
}

kv_rv kv_vault_wrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in, size_t inlen,
                    uint8_t **out, size_t *outlen, kv_err *err)
{
    return kv_vault_wrap_any(v, k, alg, true, in, inlen, out, outlen, err);
}

kv_rv kv_vault_unwrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in, size_t inlen,
                      uint8_t **out, size_t *outlen, kv_err *err)
{
    return kv_vault_wrap_any(v, k, alg, false, in, inlen, out, outlen, err);
}

bool kv_vault_is_local_pool(const kv_vault *v)
{
    return v != NULL && v->ops != NULL && strcmp(v->ops->kind, "pool") == 0;
}

bool kv_vault_has_oct(const kv_vault *v)
{
    return kv_vault_is_local_pool(v) ||
           (v != NULL && v->conf->url != NULL && strstr(v->conf->url, ".managedhsm.") != NULL);
}

/* ---- login ---- */

bool kv_vault_login_required(const kv_vault *v)
{
    return v != NULL && v->ops->login_required != NULL && v->ops->login_required(v);
}

kv_rv kv_vault_unlock(kv_vault *v, const char *pin, size_t pinlen, kv_err *err)
{
    kv_err_clear(err);
    if (v == NULL || (pin == NULL && pinlen > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no vault or PIN");
    if (!kv_vault_login_required(v) || v->ops->unlock == NULL)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "vault %s needs no PIN", v->conf->name);
    return v->ops->unlock(v, pin, pinlen, err);
}

void kv_vault_lock(kv_vault *v)
{
    if (v != NULL && v->ops->lock != NULL)
        v->ops->lock(v);
}
