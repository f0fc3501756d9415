/* kv_backend.h - the interface every key store behind a kv_vault implements: the remote
 * vault REST client (kv_rest.c) now, the local HSM-pool backend later. kv_vault.c checks
 * arguments and dispatches; backends do the work. */
#ifndef KV_BACKEND_H
#define KV_BACKEND_H

#include "kv_client.h"
#include "kv_config.h"
#include "kv_http.h"

typedef struct kv_backend_ops {
    const char *kind; /* "vault" or "pool" */
    kv_rv (*get_key)(kv_vault *v, const char *name, const char *version, kv_key **out, kv_err *err);
    kv_rv (*list_keys)(kv_vault *v, kv_key ***out, size_t *n, kv_err *err);
    kv_rv (*create_key)(kv_vault *v, const char *name, const kv_key_create_params *p, kv_key **out,
                        kv_err *err);
    kv_rv (*sign)(kv_vault *v, const kv_key *k, kv_alg alg, const uint8_t *digest, size_t dlen,
                  uint8_t *sig, size_t siglen, kv_err *err);
    kv_rv (*decrypt)(kv_vault *v, const kv_key *k, kv_enc_alg alg, const uint8_t *in, size_t inlen,
                     uint8_t *out, size_t *outlen, kv_err *err);
    kv_rv (*random)(kv_vault *v, uint8_t *buf, size_t len, kv_err *err); /* len <= 128 */
    /* Lifecycle (kv_client.h; arguments already checked by kv_vault.c). NULL = unsupported. */
    kv_rv (*list_versions)(kv_vault *v, const char *name, kv_key ***out, size_t *n, kv_err *err);
    kv_rv (*delete_key)(kv_vault *v, const char *name, kv_err *err);
    kv_rv (*import_key)(kv_vault *v, const char *name, const kv_key_import_params *p,
                        kv_key **out, kv_err *err);
    kv_rv (*update_key)(kv_vault *v, const kv_key *k, const kv_key_update_params *p,
                        kv_key **out, kv_err *err);
    /* Symmetric and wrap operations (kv_client.h). encrypt / wrap = true for that direction. */
    kv_rv (*crypt_sym)(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool encrypt,
                       kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                       size_t *outlen, kv_err *err);
    kv_rv (*wrap)(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool wrap, const uint8_t *in,
                  size_t inlen, uint8_t **out, size_t *outlen, kv_err *err);
    kv_rv (*request)(kv_vault *v, const char *method, const char *path, json_t *body, json_t **resp,
                     long *http_status, kv_err *err);
    kv_rv (*get_token)(kv_vault *v, char **token, long long *expires_on, kv_err *err);
    /* Login (a credential sealed under a PIN); NULL = the vault needs no login. */
    bool (*login_required)(const kv_vault *v);
    kv_rv (*unlock)(kv_vault *v, const char *pin, size_t pinlen, kv_err *err);
    void (*lock)(kv_vault *v);
    void (*free)(kv_vault *v);
} kv_backend_ops;

struct kv_vault {
    kv_ctx *ctx;
    const kv_vault_conf *conf; /* owned by the ctx's kv_conf */
    kv_http *http;             /* the ctx's transport */
    const kv_backend_ops *ops;
    void *impl; /* backend state */
};

/* Backends */
kv_rv kv_rest_init(kv_vault *v, kv_err *err);
kv_rv kv_pool_init(kv_vault *v, kv_err *err); /* kv_pool.c: a local HSM pool */

/* kv_rest_keys.c / kv_rest_crypto.c: the REST backend's lifecycle and symmetric operations. */
kv_rv kv_rest_list_versions(kv_vault *v, const char *name, kv_key ***out, size_t *n, kv_err *err);
kv_rv kv_rest_delete_key(kv_vault *v, const char *name, kv_err *err);
kv_rv kv_rest_import_key(kv_vault *v, const char *name, const kv_key_import_params *p,
                         kv_key **out, kv_err *err);
kv_rv kv_rest_update_key(kv_vault *v, const kv_key *k, const kv_key_update_params *p,
                         kv_key **out, kv_err *err);
kv_rv kv_rest_crypt_sym(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool encrypt,
                        kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                        size_t *outlen, kv_err *err);
kv_rv kv_rest_wrap(kv_vault *v, const kv_key *k, kv_enc_alg alg, bool wrap, const uint8_t *in,
                   size_t inlen, uint8_t **out, size_t *outlen, kv_err *err);
/* kv_rest_crypto.c: the size of an oct-HSM key whose bundle has no key_size (a managed HSM
 * does not state it): probed with one-block operations the key allows; k->bits = 0 if none. */
kv_rv kv_rest_oct_bits(kv_vault *v, kv_key *k, kv_err *err);
/* kv_rest_crypto.c: kv_rest_import_key of AES key bytes (an oct-HSM JWK; managed HSM pools). */
kv_rv kv_rest_import_oct(kv_vault *v, const char *name, const kv_key_import_params *p,
                         kv_key **out, kv_err *err);
/* kv_rest.c: a key from a KeyBundle JSON (shared by kv_rest_*.c). */
kv_rv kv_rest_key_from_bundle(kv_vault *v, const json_t *bundle, kv_key **out, kv_err *err);

/* Shared helper: a new kv_key with one reference (fields zeroed). */
kv_key *kv_key_new(void);

#endif
