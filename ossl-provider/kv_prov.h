/* kv_prov.h - internal declarations shared by the files of kvault's OpenSSL 3 provider face:
 * the provider context, the key object handed between store, keymgmt and signature, the
 * error reasons, and the dispatch tables. Nothing here is exported from kvault.so. */
#ifndef KV_PROV_H
#define KV_PROV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <openssl/macros.h>

#include "kv_client.h"
#include "kv_status.h"

#define KV_PROV_NAME "kvault"
#define KV_PROV_PROPS "provider=kvault"

/* Algorithm names; they must equal OpenSSL's so that encoders, ctrl strings and key
 * comparison work, and the property keeps unqualified fetches from landing here first. */
#define KV_PROV_NAMES_RSA "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define KV_PROV_NAMES_EC "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define KV_PROV_NAMES_ECDSA "ECDSA"

/* Reason codes raised on the OpenSSL error queue (strings in errors.c). */
enum {
    KV_PROV_R_MALFORMED_URI = 1,
    KV_PROV_R_NO_VAULT,
    KV_PROV_R_KEY_NOT_FOUND,
    KV_PROV_R_VAULT_UNREACHABLE,
    KV_PROV_R_AUTH_FAILED,
    KV_PROV_R_FORBIDDEN,
    KV_PROV_R_CONFIG,
    KV_PROV_R_UNSUPPORTED,
    KV_PROV_R_SERVER,
    KV_PROV_R_BAD_REQUEST,
    KV_PROV_R_INVALID_ARG,
    KV_PROV_R_NOMEM,
    KV_PROV_R_INTERNAL,
    KV_PROV_R_CONFLICT,
    KV_PROV_R_BUFFER_TOO_SMALL,
    KV_PROV_R_BAD_DIGEST,
    KV_PROV_R_BAD_PADDING,
    KV_PROV_R_BAD_SALTLEN,
    KV_PROV_R_NO_KEY,
    KV_PROV_R_VERIFY_FAILED,
    KV_PROV_R_LOCKED,
};

/* Registration order guard for one operation (see kv_prov_query_operation in prov.c). */
typedef enum { KV_PROV_ORDER_NEW = 0, KV_PROV_ORDER_PRIMING, KV_PROV_ORDER_DONE } kv_prov_order;

/* The provider context: one per loaded instance of the provider. */
typedef struct kv_prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx; /* the library context the provider was loaded into */
    OSSL_FUNC_core_get_params_fn *core_get_params;
    OSSL_FUNC_core_new_error_fn *core_new_error;
    OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *core_vset_error;
    pthread_mutex_t lock;  /* guards the lazy creation of kv and hashctx */
    kv_ctx *kv;            /* created on first use, never at load time */
    OSSL_LIB_CTX *hashctx; /* private library context with only the default provider */
    OSSL_PROVIDER *hashprov;
    /* keymgmt and signature registration order (index 0: keymgmt, 1: signature) */
    pthread_cond_t order_cond;
    kv_prov_order order[2];
    pthread_t order_thread[2];
} kv_prov_ctx;

/* A vault key as the provider sees it: immutable after creation, reference counted. */
typedef struct kv_prov_key {
    kv_prov_ctx *pc;
    kv_vault *vault; /* owned by pc->kv; NULL for a public-only imported key */
    kv_key *key;     /* vault key (with its public part); NULL for a public-only key */
    EVP_PKEY *pub;   /* public key (borrowed from key, or owned when imported) */
    bool pub_owned;
    int refs;
} kv_prov_key;

/* ---- prov.c ---- */

/* The lazily created vaultclient context; raises an error and returns NULL on failure. */
kv_ctx *kv_prov_get_kv(kv_prov_ctx *pc);
/* The private library context for local hashing and verification (default provider only). */
OSSL_LIB_CTX *kv_prov_get_hashctx(kv_prov_ctx *pc);

/* ---- errors.c ---- */

extern const OSSL_ITEM kv_prov_reason_strings[];

/* Raises reason with a formatted message on the OpenSSL error queue. */
void kv_prov_raise_at(kv_prov_ctx *pc, const char *file, int line, const char *func, int reason,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define kv_prov_raise(pc, reason, ...)                                                             \
    kv_prov_raise_at((pc), OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, (reason), __VA_ARGS__)
/* Raises the reason matching e->rv with e's message (or fallback if it has none). */
void kv_prov_raise_kv_at(kv_prov_ctx *pc, const char *file, int line, const char *func, kv_rv rv,
                         const kv_err *e, const char *what);
#define kv_prov_raise_kv(pc, rv, e, what)                                                          \
    kv_prov_raise_kv_at((pc), OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, (rv), (e), (what))
int kv_prov_reason_for(kv_rv rv);

/* ---- key.c ---- */

kv_prov_key *kv_prov_key_new(kv_prov_ctx *pc, kv_vault *v, kv_key *k);
kv_prov_key *kv_prov_key_ref(kv_prov_key *pk);
void kv_prov_key_unref(kv_prov_key *pk);
kv_kty kv_prov_key_kty(const kv_prov_key *pk);
/* 1 if the key can sign in the vault (has a vault key behind it). */
int kv_prov_key_is_private(const kv_prov_key *pk);

/* ---- dispatch tables ---- */

extern const OSSL_DISPATCH kv_prov_store_functions[];
extern const OSSL_DISPATCH kv_prov_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH kv_prov_ec_keymgmt_functions[];
extern const OSSL_DISPATCH kv_prov_rsa_signature_functions[];
extern const OSSL_DISPATCH kv_prov_ecdsa_signature_functions[];

#endif
