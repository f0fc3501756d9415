/* kv_hsm.h - a local HSM pool: a PKCS#11 consumer over one or more member tokens (module +
 * token label + PIN), with a small pool of logged-in sessions per member.
 *
 * Keys made here are token objects with CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE and
 * CKA_PRIVATE=TRUE; they never leave the token. A key is named by a reference string
 *     pkcs11:token=<token label>;id=<CKA_ID, %xx bytes>;type=<private|secret-key>
 * (a PKCS#11 URI, RFC 7512). CKA_ID is 16 random bytes chosen at generation; CKA_LABEL is the
 * caller's label (e.g. "vaultd/VAULT/NAME/VERSION"); public halves of key pairs carry the same
 * CKA_ID and CKA_LABEL.
 *
 * Thread-safe. Fork-safe: the pool records its pid; the first call in a child re-initialises
 * the modules (C_Initialize again) and never touches the parent's sessions.
 * Generic (no vaultd types): vaultd's HSM keys and kvault.so's HSM-pool slots both use it. */
#ifndef KV_HSM_H
#define KV_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kv_status.h"

#define KV_HSM_REF_MAX 256

typedef struct kv_hsm_pool kv_hsm_pool;

/* One member token. pin or pin_file (first line) must be given. */
typedef struct kv_hsm_member_cfg {
    const char *module;      /* path of the PKCS#11 module */
    const char *token_label; /* CKA_LABEL of the token (32-char padded form not needed) */
    const char *pin;         /* user PIN, or NULL */
    const char *pin_file;    /* file whose first line is the PIN, or NULL */
} kv_hsm_member_cfg;

typedef enum { KV_HSM_RSA, KV_HSM_EC, KV_HSM_AES } kv_hsm_keytype;

typedef struct kv_hsm_keyspec {
    kv_hsm_keytype type;
    int bits;      /* RSA 2048/3072/4096; AES 128/192/256 */
    int curve_nid; /* EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1, NID_secp256k1 */
} kv_hsm_keyspec;

typedef enum {
    KV_HSM_SIG_PKCS1,     /* CKM_RSA_PKCS over DigestInfo(md, digest) */
    KV_HSM_SIG_PKCS1_RAW, /* CKM_RSA_PKCS over caller-formatted input (RSNULL) */
    KV_HSM_SIG_PSS,       /* CKM_RSA_PKCS_PSS, MGF1(md), salt = digest length */
    KV_HSM_SIG_ECDSA,     /* CKM_ECDSA, raw r||s */
} kv_hsm_sig;

typedef enum { KV_HSM_PAD_PKCS1, KV_HSM_PAD_OAEP_SHA1, KV_HSM_PAD_OAEP_SHA256 } kv_hsm_rsa_pad;

/* Opens the pool: loads each module (dlopen RTLD_NOW|RTLD_LOCAL), C_Initialize with
 * CKF_OS_LOCKING_OK, finds the token by label and logs in one session. A member that fails is
 * kept and retried on use; the call fails only on bad arguments or when NO member is usable
 * (then *out is still set, so the caller may keep an unavailable pool and report it later —
 * check the return code). sessions: at most this many open sessions per member (0 = 4).
 * name is used in messages ("HSM pool 'NAME' unavailable: ..."). */
kv_rv kv_hsm_pool_open(const char *name, const kv_hsm_member_cfg *members, size_t nmembers,
                       size_t sessions, kv_hsm_pool **out, kv_err *err);
/* Closes sessions, C_Finalize for modules this pool initialised, dlclose. NULL is fine. */
void kv_hsm_pool_free(kv_hsm_pool *pool);
const char *kv_hsm_pool_name(const kv_hsm_pool *pool);
/* KV_OK when at least one member token answers now. */
kv_rv kv_hsm_pool_check(kv_hsm_pool *pool, kv_err *err);

/* Generates a key in the pool (first usable member). ref receives the key's reference
 * (KV_HSM_REF_MAX bytes). *pub (optional, key pairs only) receives the public key. */
kv_rv kv_hsm_generate(kv_hsm_pool *pool, const kv_hsm_keyspec *spec, const char *label,
                      char ref[KV_HSM_REF_MAX], EVP_PKEY **pub, kv_err *err);
/* Imports a private key (RSA, or EC on a supported curve) as a non-extractable, sensitive
 * token key pair, or raw AES key bytes (16/24/32) as a secret key; like kv_hsm_generate
 * otherwise. The caller's copy of the key material is not touched (zeroise it yourself). */
kv_rv kv_hsm_import_pkey(kv_hsm_pool *pool, const EVP_PKEY *pkey, const char *label,
                         char ref[KV_HSM_REF_MAX], kv_err *err);
kv_rv kv_hsm_import_aes(kv_hsm_pool *pool, const uint8_t *key, size_t len, const char *label,
                        char ref[KV_HSM_REF_MAX], kv_err *err);
/* Public key of a key pair. KV_ERR_NOT_FOUND when the object is absent. */
kv_rv kv_hsm_get_public(kv_hsm_pool *pool, const char *ref, EVP_PKEY **pub, kv_err *err);
/* Size in bits of a secret (AES) key. */
kv_rv kv_hsm_secret_bits(kv_hsm_pool *pool, const char *ref, int *bits, kv_err *err);
/* KV_OK if the key exists (private or secret object), KV_ERR_NOT_FOUND if not. */
kv_rv kv_hsm_find(kv_hsm_pool *pool, const char *ref, kv_err *err);
/* Destroys the key (and its public half). Absent = KV_OK. */
kv_rv kv_hsm_destroy(kv_hsm_pool *pool, const char *ref, kv_err *err);

/* Signs in (a digest of md, or raw input for PKCS1_RAW; md unused for ECDSA except as given).
 * *sig (malloc'd): modulus-length bytes for RSA, raw r||s for ECDSA. */
kv_rv kv_hsm_sign(kv_hsm_pool *pool, const char *ref, kv_hsm_sig kind, const EVP_MD *md,
                  const uint8_t *in, size_t inlen, uint8_t **sig, size_t *siglen, kv_err *err);
/* RSA decryption; *out malloc'd (zeroise with OPENSSL_clear_free). Bad ciphertext =
 * KV_ERR_BAD_REQUEST. */
kv_rv kv_hsm_rsa_decrypt(kv_hsm_pool *pool, const char *ref, kv_hsm_rsa_pad pad, const uint8_t *in,
                         size_t inlen, uint8_t **out, size_t *outlen, kv_err *err);

/* AES-GCM with a 12-byte iv and 16-byte tag. Encrypt: iv is generated by the token (random)
 * and returned. Decrypt: a wrong tag = KV_ERR_BAD_REQUEST. *out malloc'd. */
kv_rv kv_hsm_aes_gcm_encrypt(kv_hsm_pool *pool, const char *ref, const uint8_t *aad, size_t aadlen,
                             const uint8_t *in, size_t inlen, uint8_t iv[12], uint8_t **out,
                             size_t *outlen, uint8_t tag[16], kv_err *err);
kv_rv kv_hsm_aes_gcm_decrypt(kv_hsm_pool *pool, const char *ref, const uint8_t iv[12],
                             const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t inlen,
                             const uint8_t tag[16], uint8_t **out, size_t *outlen, kv_err *err);
/* AES-CBC (pad = PKCS#7, CKM_AES_CBC_PAD) with a caller iv. Without pad, inlen % 16 == 0. */
kv_rv kv_hsm_aes_cbc(kv_hsm_pool *pool, const char *ref, bool encrypt, bool pad,
                     const uint8_t iv[16], const uint8_t *in, size_t inlen, uint8_t **out,
                     size_t *outlen, kv_err *err);
/* AES key wrap of bytes: RFC 3394 (CKM_AES_KEY_WRAP; inlen % 8 == 0, >= 16) or RFC 5649
 * (pad, CKM_AES_KEY_WRAP_PAD). The bytes travel through a temporary session object. An
 * unwrap integrity failure = KV_ERR_BAD_REQUEST. Caveat: SoftHSMv2 2.6.1 returns the
 * zero-padded length from a CKM_AES_KEY_WRAP_PAD unwrap when the input was not a multiple of
 * 8 bytes; vaultd's A*KW algorithms use RFC 3394 only. */
kv_rv kv_hsm_aes_wrap(kv_hsm_pool *pool, const char *ref, bool wrap, bool pad, const uint8_t *in,
                      size_t inlen, uint8_t **out, size_t *outlen, kv_err *err);

/* Random bytes from the token. */
kv_rv kv_hsm_random(kv_hsm_pool *pool, uint8_t *out, size_t len, kv_err *err);

#endif
