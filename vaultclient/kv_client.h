/* kv_client.h - the public face of vaultclient: the one context, its vaults, keys and signing.
 *
 * Both faces (pkcs11-module/, ossl-provider/) and tools/ use only this header plus
 * kv_status.h, kv_b64.h, kv_ecdsa.h and kv_uri.h. vaultclient decides (which algorithm, which
 * backend, retries, tokens, caching); the faces only translate.
 *
 * Thread safety: every function may be called from any thread on a shared kv_ctx.
 * Fork safety: after fork() the child may keep using the context; it transparently drops
 * the parent's connections (never touching their TLS state) and keeps cached tokens.
 * Library hygiene: vaultclient never calls OPENSSL_cleanup or curl_global_cleanup, and runs
 * all of its HTTPS inside a private OSSL_LIB_CTX holding only the default provider. */
#ifndef KV_CLIENT_H
#define KV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "kv_status.h"

typedef struct kv_ctx kv_ctx;     /* the one context: configuration, vaults, HTTP, tokens */
typedef struct kv_vault kv_vault; /* one configured vault (backend), owned by the ctx */

/* KV_KTY_OCT: an AES key (oct-HSM in a managed HSM pool, a secret key in a local pool). */
typedef enum { KV_KTY_NONE = 0, KV_KTY_RSA = 1, KV_KTY_EC = 2, KV_KTY_OCT = 3 } kv_kty;

/* key_ops bits */
#define KV_OP_SIGN 0x01u
#define KV_OP_VERIFY 0x02u
#define KV_OP_ENCRYPT 0x04u
#define KV_OP_DECRYPT 0x08u
#define KV_OP_WRAP 0x10u
#define KV_OP_UNWRAP 0x20u

/* Signature algorithms, named as the vault names them (JWA). */
typedef enum {
    KV_ALG_NONE = 0,
    KV_ALG_RS256,
    KV_ALG_RS384,
    KV_ALG_RS512,
    KV_ALG_PS256,
    KV_ALG_PS384,
    KV_ALG_PS512,
    KV_ALG_ES256,
    KV_ALG_ES384,
    KV_ALG_ES512,
    KV_ALG_ES256K,
    KV_ALG_RSNULL, /* PKCS#1 v1.5 padding of caller-formatted input (DigestInfo) */
} kv_alg;

#define KV_KEY_REF_MAX 256

/* A vault key version and its public part. Immutable once returned; reference counted. */
typedef struct kv_key {
    char vault[64];   /* vault name as configured */
    char name[128];   /* key name */
    char version[64]; /* version id (32 hex chars from the vault) */
    char kid[512];    /* full versioned key identifier URL */
    kv_kty kty;
    bool hsm;         /* kty was RSA-HSM / EC-HSM */
    int curve_nid;    /* EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1, NID_secp256k1 */
    int bits;         /* RSA modulus bits or EC field bits */
    unsigned key_ops; /* KV_OP_* */
    bool enabled;
    long long created, updated, nbf, exp; /* unix seconds; 0 = unset */
    EVP_PKEY *pub; /* public key, built in vaultclient's private library context; NULL for oct */
    bool imported; /* the key material came from outside (import, BYOK, unwrapped replica);
                    * false = generated in the vault / HSM (CKA_LOCAL, CKA_ALWAYS_SENSITIVE) */
    bool wrappable; /* the key can leave its HSM wrapped under a trusted key (a local pool's
                     * replication and backups): CKA_NEVER_EXTRACTABLE is then false */
    char ref[KV_KEY_REF_MAX]; /* backend reference: a local pool's kv_hsm reference; else "" */
    /* private */
    int refs;
} kv_key;

/* ---- context ---- */

/* Creates the context. conf_path NULL means $KVAULT_CONF, else /etc/kvault/kvault.conf.
 * A missing default file is not an error: the context then has no vaults. An explicitly
 * named file that is missing or invalid is KV_ERR_CONFIG with the reason in err. */
kv_rv kv_ctx_new(const char *conf_path, kv_ctx **out, kv_err *err);
void kv_ctx_free(kv_ctx *ctx);

/* Path of the configuration file actually read ("" if none). */
const char *kv_ctx_conf_path(const kv_ctx *ctx);
/* [kvault] object_cache_seconds: how long listed keys and objects are trusted (default 30). */
long kv_ctx_object_cache_seconds(const kv_ctx *ctx);

size_t kv_ctx_vault_count(const kv_ctx *ctx);
kv_vault *kv_ctx_vault_at(kv_ctx *ctx, size_t i);
kv_vault *kv_ctx_vault_by_name(kv_ctx *ctx, const char *name); /* case-insensitive; NULL if none */

/* ---- vault ---- */

const char *kv_vault_name(const kv_vault *v);
const char *kv_vault_url(const kv_vault *v);       /* e.g. https://dev.vault.localhost:8443 */
const char *kv_vault_tenant_id(const kv_vault *v); /* NULL if the credential has none */
const char *kv_vault_resource(const kv_vault *v); /* token resource, e.g. https://vault.azure.net */

/* The key (latest when version is NULL or ""). On success *out holds a reference. */
kv_rv kv_vault_get_key(kv_vault *v, const char *name, const char *version, kv_key **out,
                       kv_err *err);

/* All keys of the vault (latest versions only, enabled or not), following nextLink.
 * *out is an array of *n references; free with kv_key_list_free. */
kv_rv kv_vault_list_keys(kv_vault *v, kv_key ***out, size_t *n, kv_err *err);
void kv_key_list_free(kv_key **keys, size_t n);

/* Creates a key (or a new version). kty KV_KTY_RSA with bits 2048/3072/4096, KV_KTY_EC with
 * curve_nid, or KV_KTY_OCT with bits 128/192/256 (managed HSM pools and local pools only;
 * elsewhere KV_ERR_UNSUPPORTED). hsm selects RSA-HSM/EC-HSM (oct is always oct-HSM). */
typedef struct kv_key_create_params {
    kv_kty kty;
    int bits;
    int curve_nid;
    bool hsm;
    unsigned key_ops; /* 0 = vault default */
} kv_key_create_params;
kv_rv kv_vault_create_key(kv_vault *v, const char *name, const kv_key_create_params *p,
                          kv_key **out, kv_err *err);

/* Every version of a key (enabled or not), newest first, following nextLink. Local pools have
 * one version per key. Free with kv_key_list_free. */
kv_rv kv_vault_list_key_versions(kv_vault *v, const char *name, kv_key ***out, size_t *n,
                                 kv_err *err);

/* Deletes a key with all its versions (a soft delete where the vault has soft delete; a local
 * pool destroys every member's copy). KV_ERR_NOT_FOUND when absent. */
kv_rv kv_vault_delete_key(kv_vault *v, const char *name, kv_err *err);

/* Imports key material as a key (or a new version): exactly one of pkey (an RSA or EC private
 * key, any library context) or oct/octlen (AES 16/24/32 bytes; pools only). The caller's copy
 * is not touched (zeroise it yourself). The new key has imported = true. */
typedef struct kv_key_import_params {
    const EVP_PKEY *pkey;
    const uint8_t *oct;
    size_t octlen;
    bool hsm;         /* RSA-HSM / EC-HSM (always for pools) */
    unsigned key_ops; /* 0 = vault default */
} kv_key_import_params;
kv_rv kv_vault_import_key(kv_vault *v, const char *name, const kv_key_import_params *p,
                          kv_key **out, kv_err *err);

/* Changes what a vault can change on one key version (k->version; PATCH /keys/NAME/VERSION):
 * enabled, nbf, exp, key_ops. Fields left at KV_KEEP are not sent. *out (optional) receives
 * the updated key. A local pool cannot change these: KV_ERR_UNSUPPORTED. */
#define KV_KEEP (-1)
typedef struct kv_key_update_params {
    int enabled;       /* 0/1, or KV_KEEP */
    long long nbf;     /* unix seconds, 0 = remove, KV_KEEP */
    long long exp;     /* unix seconds, 0 = remove, KV_KEEP */
    long long key_ops; /* KV_OP_* bits, or KV_KEEP */
} kv_key_update_params;
kv_rv kv_vault_update_key(kv_vault *v, const kv_key *k, const kv_key_update_params *p,
                          kv_key **out, kv_err *err);

/* Signs a digest (never a message) with alg. sig receives RSA: modulus-length bytes;
 * EC: raw r||s, fixed width. If sig is NULL or *siglen too small, *siglen gets the
 * needed length and KV_ERR_BUFFER_TOO_SMALL (sig NULL: KV_OK) is returned. */
kv_rv kv_vault_sign(kv_vault *v, const kv_key *k, kv_alg alg, const uint8_t *digest, size_t dlen,
                    uint8_t *sig, size_t *siglen, kv_err *err);

/* Decryption algorithms, named as the vault names them. */
typedef enum {
    KV_ENC_NONE = 0,
    KV_ENC_RSA1_5,       /* RSAES-PKCS1-v1_5 */
    KV_ENC_RSA_OAEP,     /* OAEP, SHA-1 and MGF1-SHA-1, empty label */
    KV_ENC_RSA_OAEP_256, /* OAEP, SHA-256 and MGF1-SHA-256, empty label */
    /* AES (oct keys in managed HSM pools and local pools); the key size must match */
    KV_ENC_A128GCM, KV_ENC_A192GCM, KV_ENC_A256GCM,          /* 12-byte iv, 16-byte tag */
    KV_ENC_A128CBC, KV_ENC_A192CBC, KV_ENC_A256CBC,          /* 16-byte iv, no padding */
    KV_ENC_A128CBCPAD, KV_ENC_A192CBCPAD, KV_ENC_A256CBCPAD, /* 16-byte iv, PKCS#7 */
    KV_ENC_A128KW, KV_ENC_A192KW, KV_ENC_A256KW,             /* RFC 3394 key wrap */
    KV_ENC_AES_KWP, /* RFC 5649 key wrap with padding: local pools, managed HSMs (alg
                     * "CKM_AES_KEY_WRAP_PAD") */
} kv_enc_alg;
const char *kv_enc_alg_name(kv_enc_alg alg); /* "RSA1_5", "A256GCM" ... (AES_KWP: "AES-KWP") */

/* Decrypts in (modulus-length ciphertext) with the private key on the vault. If out is NULL or
 * *outlen is smaller than the modulus length, *outlen gets that bound and KV_ERR_BUFFER_TOO_SMALL
 * (out NULL: KV_OK) is returned; else *outlen gets the plaintext length. A ciphertext the vault
 * rejects is KV_ERR_BAD_REQUEST; a key whose key_ops lack decrypt is KV_ERR_FORBIDDEN. */
kv_rv kv_vault_decrypt(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in,
                       size_t inlen, uint8_t *out, size_t *outlen, kv_err *err);

/* Symmetric operations with an AES key held by the vault / HSM (argument checks in
 * kv_vault.c; backends: kv_rest_crypto.c, kv_pool.c).
 * iv: CBC 16 bytes from the caller. GCM encryption: a remote managed HSM generates the iv
 *     (Azure: the client must not send one) and returns it in iv/ivlen; a local pool uses the
 *     caller's iv when ivlen == 12 and generates one (returned) when ivlen == 0. GCM
 *     decryption: 12 bytes.
 * tag: GCM only, 16 bytes (out of encryption, into decryption; a wrong tag = KV_ERR_BAD_REQUEST).
 * *out is malloc'd (free decryption results with OPENSSL_clear_free). */
typedef struct kv_sym_params {
    uint8_t iv[16];
    size_t ivlen;
    const uint8_t *aad;
    size_t aadlen;
    uint8_t tag[16];
    size_t taglen;
} kv_sym_params;
kv_rv kv_vault_encrypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, kv_sym_params *p,
                           const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                           kv_err *err);
kv_rv kv_vault_decrypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, kv_sym_params *p,
                           const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                           kv_err *err);
/* Key wrap with the vault's key: alg A*KW / KV_ENC_AES_KWP (oct keys) or RSA1_5 / RSA-OAEP /
 * RSA-OAEP-256 (RSA keys; done by the vault, /wrapkey). in = the key bytes to wrap. Unwrap:
 * *out (the key bytes) must be freed with OPENSSL_clear_free. A wrapped key the vault rejects
 * (integrity check) = KV_ERR_BAD_REQUEST. */
kv_rv kv_vault_wrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in, size_t inlen,
                    uint8_t **out, size_t *outlen, kv_err *err);
kv_rv kv_vault_unwrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in,
                      size_t inlen, uint8_t **out, size_t *outlen, kv_err *err);
/* True when the vault can hold AES keys (a managed HSM pool or a local pool). */
bool kv_vault_has_oct(const kv_vault *v);
/* True for a local HSM pool (kv_pool.c), false for a remote vault or managed HSM pool. */
bool kv_vault_is_local_pool(const kv_vault *v);

/* [vault NAME] key_versions = all: the faces show older enabled key versions too. */
bool kv_vault_key_versions_all(const kv_vault *v);
/* True for a managed HSM pool (its URL host has ".managedhsm."): it has the /rng endpoint. */
bool kv_vault_has_rng(const kv_vault *v);
/* len random bytes from the pool's HSM (POST /rng, at most 128 per request, looped).
 * KV_ERR_UNSUPPORTED for a vault without /rng. */
kv_rv kv_vault_random(kv_vault *v, uint8_t *buf, size_t len, kv_err *err);

/* vaultclient's private library context (default provider only): local public-key and digest
 * work done for kvault's callers runs there, never recursing into a provider of the host. */
OSSL_LIB_CTX *kv_ctx_libctx(kv_ctx *ctx);

/* Generic authenticated request for tools: method "GET"/"POST"/..., path relative to the
 * vault URL (e.g. "/keys/k1/create"), api-version is added. body may be NULL.
 * On any HTTP response *resp receives the parsed JSON (or NULL for an empty body) and
 * *http_status the status; a non-2xx status also returns the matching error kv_rv. */
kv_rv kv_vault_request(kv_vault *v, const char *method, const char *path, json_t *body,
                       json_t **resp, long *http_status, kv_err *err);

/* A bearer token for the vault's credential (cached; refreshed before expiry).
 * *token is a malloc'd NUL-terminated copy the caller must kv_free_secret(); *expires_on is
 * unix seconds. */
kv_rv kv_vault_get_token(kv_vault *v, char **token, long long *expires_on, kv_err *err);

/* ---- login (docs/pkcs11.md, "Login and PIN") ----
 * A vault whose client secret is sealed under a PIN (`client_secret_sealed`, made by `kvault
 * config seal-secret`) is locked: every request fails with KV_ERR_LOCKED until kv_vault_unlock
 * opens the secret with the PIN (PBKDF2, ~0.3 s; a wrong PIN = KV_ERR_AUTH). kv_vault_lock
 * forgets the secret and the token got with it. Other vaults need no login (unlock:
 * KV_ERR_UNSUPPORTED, lock: no-op). */
bool kv_vault_login_required(const kv_vault *v);
kv_rv kv_vault_unlock(kv_vault *v, const char *pin, size_t pinlen, kv_err *err);
void kv_vault_lock(kv_vault *v);

/* ---- certificates and secrets (kv_objects.c; read-only, for the faces) ---- */

/* Names of the vault's certificates / secrets (following nextLink). Secrets managed by a
 * certificate (managed:true) are left out. *names: array of *n malloc'd strings; free with
 * kv_name_list_free. */
kv_rv kv_vault_list_certificates(kv_vault *v, char ***names, size_t *n, kv_err *err);
kv_rv kv_vault_list_secrets(kv_vault *v, char ***names, size_t *n, kv_err *err);
void kv_name_list_free(char **names, size_t n);
/* The DER certificate (the bundle's "cer") of the latest version; *der is malloc'd. */
kv_rv kv_vault_get_certificate(kv_vault *v, const char *name, uint8_t **der, size_t *derlen,
                               kv_err *err);
/* The value of the latest version of a secret: *value is a malloc'd copy (NUL-terminated, *len
 * bytes) the caller must kv_free_secret(). */
kv_rv kv_vault_get_secret(kv_vault *v, const char *name, char **value, size_t *len, kv_err *err);

/* ---- keys ---- */

kv_key *kv_key_ref(kv_key *k);
void kv_key_unref(kv_key *k);

/* Signature size in bytes for k (RSA: modulus bytes; EC: 2 * field bytes). */
size_t kv_key_sig_size(const kv_key *k);

/* Algorithm helpers */
const char *kv_alg_name(kv_alg alg);       /* "RS256" ... */
kv_alg kv_alg_from_name(const char *name); /* KV_ALG_NONE if unknown */
size_t kv_alg_digest_len(kv_alg alg);      /* 32/48/64, 0 for RSNULL */
/* The ES alg for an EC key (by curve) or KV_ALG_NONE. */
kv_alg kv_alg_ecdsa_for_curve(int curve_nid);

/* ---- misc ---- */

/* Zeroises and frees a NUL-terminated secret (token, password). NULL is fine. */
void kv_free_secret(char *s);

#endif
