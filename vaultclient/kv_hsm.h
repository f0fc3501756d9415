/* kv_hsm.h - a local HSM pool: a PKCS#11 consumer over one or more member tokens (module +
 * token label + PIN), with a small pool of logged-in sessions per member.
 *
 * Keys made here are token objects with CKA_SENSITIVE=TRUE and CKA_PRIVATE=TRUE. When the
 * member token holds the pool wrapping key (see "Pool wrapping key" below) they are also
 * CKA_EXTRACTABLE=TRUE with CKA_WRAP_WITH_TRUSTED=TRUE (the key leaves the token only wrapped
 * under a trusted key, never in the clear); on a member without one they are
 * CKA_EXTRACTABLE=FALSE and never leave the token. A key is named by a reference string
 *     pkcs11:token=<token label>;id=<CKA_ID, %xx bytes>;type=<private|secret-key>
 * (a PKCS#11 URI, RFC 7512). CKA_ID is 16 random bytes chosen at generation; CKA_LABEL is the
 * caller's label (e.g. "vaultd/VAULT/NAME/VERSION"); public halves of key pairs carry the same
 * CKA_ID and CKA_LABEL.
 *
 * A reference names the member that made the key; when that member is unavailable or lacks
 * the object, operations use a replica (the same CKA_ID, see kv_hsm_replicate) on another
 * member, and kv_hsm_destroy removes every reachable copy.
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

/* One member token. pin or pin_file (first line) must be given. The SO PIN is optional and
 * used only by kv_hsm_wrapkey_provision (to mark the pool wrapping key CKA_TRUSTED).
 * Zero-initialise the struct so that fields added later stay NULL. */
typedef struct kv_hsm_member_cfg {
    const char *module;      /* path of the PKCS#11 module */
    const char *token_label; /* CKA_LABEL of the token (32-char padded form not needed) */
    const char *pin;         /* user PIN, or NULL */
    const char *pin_file;    /* file whose first line is the PIN, or NULL */
    const char *so_pin;      /* security officer PIN, or NULL */
    const char *so_pin_file; /* file whose first line is the SO PIN, or NULL */
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
/* Number of member tokens configured (reachable or not). */
size_t kv_hsm_pool_members(const kv_hsm_pool *pool);
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
/* Destroys the key (and its public half), on every reachable member holding a copy. Absent =
 * KV_OK. */
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

/* ---- Pool wrapping key (the pool's shared "security domain"; docs/hsm-pool.md) ----
 * An AES-256 secret key with CKA_LABEL KV_HSM_WRAPKEY_LABEL on every member token:
 * CKA_WRAP/CKA_UNWRAP only, CKA_SENSITIVE, CKA_EXTRACTABLE=FALSE, CKA_PRIVATE, CKA_TRUSTED
 * (when provisioned with the SO PIN), and CKA_UNWRAP_TEMPLATE {CKA_SENSITIVE=TRUE (,
 * CKA_WRAP_WITH_TRUSTED=TRUE)} so nothing can be unwrapped under it in readable form. Its
 * CKA_ID is the key's fingerprint (HMAC-SHA256(key, "kvault pool wrapping key v1"), 16
 * bytes), which tells pools with different wrapping keys apart without revealing the key.
 * Because the key is non-extractable it cannot be copied between members: every member gets
 * it by C_CreateObject from the same 32 bytes of key material, supplied once (made with a
 * CSPRNG, zeroised after provisioning, optionally kept sealed under an admin passphrase with
 * kv_hsm_wrapkey_seal for members added later). */
#define KV_HSM_WRAPKEY_LABEL "kvault-pool-wrap"
#define KV_HSM_WRAPKEY_LEN 32 /* AES-256 */
#define KV_HSM_FP_LEN 16
#define KV_HSM_FP_HEX (2 * KV_HSM_FP_LEN + 1)

typedef struct kv_hsm_wrapkey_status {
    size_t members;                  /* members in the pool */
    size_t reachable;                /* members that answered */
    size_t holding;                  /* reachable members holding a pool wrapping key */
    size_t trusted;                  /* ... of them with CKA_TRUSTED = TRUE */
    bool consistent;                 /* all holders have the same fingerprint */
    char fingerprint[KV_HSM_FP_HEX]; /* hex fingerprint of the first holder ("" if none) */
    char missing[256];               /* labels of reachable members without one, ", "-separated */
} kv_hsm_wrapkey_status;

/* The fingerprint of wrapping key material (lowercase hex). */
kv_rv kv_hsm_wrapkey_fingerprint(const uint8_t material[KV_HSM_WRAPKEY_LEN], char fp[KV_HSM_FP_HEX],
                                 kv_err *err);
/* Looks at every member. KV_OK when at least one member answered. */
kv_rv kv_hsm_wrapkey_status_get(kv_hsm_pool *pool, kv_hsm_wrapkey_status *st, kv_err *err);
/* Creates the pool wrapping key from material on every reachable member that lacks it.
 * With a member's SO PIN the key is made CKA_TRUSTED: SoftHSMv2 (and the standard) let only
 * the SO set CKA_TRUSTED, and SoftHSMv2 lets the SO create only public objects, so the key is
 * created by the SO as a public *session* object (memory only), then, logged in as the user,
 * C_CopyObject'd to a private token object (value encrypted at rest) and the session object
 * destroyed. Without an SO PIN the key is created by the user and is not trusted (keys then
 * are CKA_EXTRACTABLE without CKA_WRAP_WITH_TRUSTED - see docs/hsm-pool.md). The member must
 * have no session in use (call at start-up / from an admin tool). A member that already holds
 * a wrapping key with another fingerprint = KV_ERR_CONFLICT. *provisioned (optional) = how
 * many members got it now. The caller zeroises material. */
kv_rv kv_hsm_wrapkey_provision(kv_hsm_pool *pool, const uint8_t material[KV_HSM_WRAPKEY_LEN],
                               size_t *provisioned, kv_err *err);
/* Escrow: the material sealed under a passphrase (PBKDF2-HMAC-SHA256, AES-256-GCM, the
 * fingerprint as AAD) as a small text document; *text malloc'd. A wrong passphrase or an
 * altered document = KV_ERR_BAD_REQUEST. */
kv_rv kv_hsm_wrapkey_seal(const uint8_t material[KV_HSM_WRAPKEY_LEN], const char *passphrase,
                          char **text, kv_err *err);
kv_rv kv_hsm_wrapkey_unseal(const char *text, const char *passphrase,
                            uint8_t material[KV_HSM_WRAPKEY_LEN], kv_err *err);

/* Wraps a key (private key or AES secret key) under the pool wrapping key of its member
 * (CKM_AES_KEY_WRAP_PAD, else CKM_AES_KEY_WRAP_KWP, else CKM_AES_KEY_WRAP). *blob (malloc'd)
 * is self-describing: "KVW1", mechanism, key kind, wrapping-key fingerprint, CKA_ID,
 * CKA_LABEL, the public key (SubjectPublicKeyInfo DER) of key pairs, the wrapped key.
 * KV_ERR_UNSUPPORTED when the key cannot be wrapped (made CKA_EXTRACTABLE=FALSE, before the
 * pool had a wrapping key) or its member has no pool wrapping key. */
kv_rv kv_hsm_wrap_key(kv_hsm_pool *pool, const char *ref, uint8_t **blob, size_t *bloblen,
                      kv_err *err);

typedef struct kv_hsm_unwrap_spec {
    const char *label;  /* CKA_LABEL of the new objects; NULL = the label in the blob */
    bool keep_id;       /* CKA_ID from the blob (replicas) instead of 16 new random bytes */
    const char *member; /* token label of the member to use; NULL = any holding the key */
} kv_hsm_unwrap_spec;

/* Unwraps a blob of kv_hsm_wrap_key into the pool as token objects (private + public for key
 * pairs, with the same attributes as generated keys: sensitive, extractable only under a
 * trusted key). ref receives the new key's reference. A blob wrapped under another pool
 * wrapping key (fingerprint mismatch), an altered blob or a public key that does not match
 * the private key = KV_ERR_BAD_REQUEST with a message saying which. */
kv_rv kv_hsm_unwrap_key(kv_hsm_pool *pool, const uint8_t *blob, size_t bloblen,
                        const kv_hsm_unwrap_spec *spec, char ref[KV_HSM_REF_MAX], kv_err *err);
/* The wrapping-key fingerprint recorded in a blob (no pool needed). */
kv_rv kv_hsm_blob_fingerprint(const uint8_t *blob, size_t bloblen, char fp[KV_HSM_FP_HEX],
                              kv_err *err);
/* Replicates a key to every other reachable member: wrap on its member, unwrap on each member
 * that does not hold an object with its CKA_ID (same CKA_ID and CKA_LABEL), so any member can
 * serve it. *copies (optional) = replicas made now. Members that are unreachable are skipped
 * (KV_OK); a member that fails otherwise makes the call fail after trying the others. */
kv_rv kv_hsm_replicate(kv_hsm_pool *pool, const char *ref, size_t *copies, kv_err *err);

/* ---- Additions for kvault.so's local-pool slots (vaultclient/kv_pool.c) ---- */

/* Spreading: operations on a key start at a rotating member (instead of the member its
 * reference names) and move on to the next member holding the key when one fails; a member
 * that fails (unavailable, CKR_DEVICE_ERROR, CKR_TOKEN_NOT_PRESENT, a lost session) rests for
 * retry_seconds - it is tried again after that, or at once when no other member can serve.
 * Off by default (vaultd). Call before the pool is shared between threads. */
void kv_hsm_pool_set_spread(kv_hsm_pool *pool, bool spread, unsigned retry_seconds);

/* AES-GCM encryption with the caller's 12-byte iv (kv_hsm_aes_gcm_encrypt makes its own). */
kv_rv kv_hsm_aes_gcm_encrypt_iv(kv_hsm_pool *pool, const char *ref, const uint8_t iv[12],
                                const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t inlen,
                                uint8_t **out, size_t *outlen, uint8_t tag[16], kv_err *err);
/* RFC 5649 AES key wrap with padding computed here over the token's CKM_AES_ECB (the key
 * never leaves the token): SoftHSMv2 2.6.1's CKM_AES_KEY_WRAP_PAD zero-pads the input before
 * wrapping (the result is not RFC 5649 for lengths that are not multiples of 8) and returns
 * the padded length from an unwrap. The key needs CKA_ENCRYPT / CKA_DECRYPT. An unwrap
 * integrity failure = KV_ERR_BAD_REQUEST. *out malloc'd (free an unwrap with
 * OPENSSL_clear_free). */
kv_rv kv_hsm_aes_kwp(kv_hsm_pool *pool, const char *ref, bool wrap, const uint8_t *in, size_t inlen,
                     uint8_t **out, size_t *outlen, kv_err *err);
/* RSA encryption with the key pair's public key object in the token; *out malloc'd.
 * KV_ERR_UNSUPPORTED when the token lacks the padding (SoftHSMv2 2.6: OAEP with SHA-256). */
kv_rv kv_hsm_rsa_encrypt(kv_hsm_pool *pool, const char *ref, kv_hsm_rsa_pad pad, const uint8_t *in,
                         size_t inlen, uint8_t **out, size_t *outlen, kv_err *err);

/* What a key object allows (CKA_SIGN, ...; private keys also give the public half's uses). */
#define KV_HSM_CAN_SIGN 0x01u
#define KV_HSM_CAN_VERIFY 0x02u
#define KV_HSM_CAN_ENCRYPT 0x04u
#define KV_HSM_CAN_DECRYPT 0x08u
#define KV_HSM_CAN_WRAP 0x10u
#define KV_HSM_CAN_UNWRAP 0x20u

/* One key of the pool (a private key or an AES secret key; copies on several members with the
 * same class and CKA_ID are one key). The pool wrapping key is never listed. */
typedef struct kv_hsm_keyinfo {
    char label[256]; /* CKA_LABEL */
    uint8_t id[64];  /* CKA_ID */
    size_t idlen;
    kv_hsm_keytype type;
    int bits;      /* RSA modulus, EC field or AES key bits */
    int curve_nid; /* EC */
    uint8_t *spki; /* key pairs: SubjectPublicKeyInfo DER (OPENSSL_malloc'd); NULL for AES */
    size_t spkilen;
    unsigned caps;            /* KV_HSM_CAN_* */
    bool local;               /* CKA_LOCAL on some member: generated inside a token */
    bool extractable;         /* CKA_EXTRACTABLE on some member: it leaves a token (only
                               * wrapped under the trusted pool wrapping key; docs/hsm-pool.md) */
    size_t copies;            /* members answering now that hold it */
    char ref[KV_HSM_REF_MAX]; /* a reference (on the first member found) */
} kv_hsm_keyinfo;

/* The keys on every member that answers (label NULL = all, else only CKA_LABEL == label).
 * Members that do not answer are skipped; KV_ERR_SERVER when none answers. Objects without
 * CKA_ID, other key types and labels of 256 bytes or more are left out. *out (may be NULL when
 * *n == 0) is freed with kv_hsm_keyinfo_free. */
kv_rv kv_hsm_list_keys(kv_hsm_pool *pool, const char *label, kv_hsm_keyinfo **out, size_t *n,
                       kv_err *err);
void kv_hsm_keyinfo_free(kv_hsm_keyinfo *keys, size_t n);

/* The state of member i (0 .. kv_hsm_pool_members - 1), for `kvault pool status`. KV_OK
 * whenever i is valid (an unreachable member has reachable = false and error set). */
typedef struct kv_hsm_member_info {
    char label[33];
    char module[256];
    bool reachable;
    char error[512];
    bool wrapkey, trusted;           /* holds the pool wrapping key; CKA_TRUSTED */
    char fingerprint[KV_HSM_FP_HEX]; /* of its wrapping key ("" if none) */
    size_t keys;                     /* private and secret key objects besides the wrapping key */
    /* Counters of this pool object (this process), for observing failover: one-shot
     * sign/encrypt/decrypt calls the member completed, and the times it failed under an
     * operation (unavailable, CKR_DEVICE_ERROR, a lost session, ...; spread pools rest it). */
    unsigned long served, failures;
} kv_hsm_member_info;
kv_rv kv_hsm_member_info_get(kv_hsm_pool *pool, size_t i, kv_hsm_member_info *mi, kv_err *err);

#endif
