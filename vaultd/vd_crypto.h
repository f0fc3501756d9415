/* vd_crypto.h - vaultd's key operations: generation, KEK wrapping of private keys, and the
 * vault signature algorithms (sign and verify over a caller-supplied digest). */
#ifndef VD_CRYPTO_H
#define VD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "kv_status.h"
#include "vd_ctx.h"

typedef enum { VD_SIG_PKCS1, VD_SIG_PSS, VD_SIG_RSNULL, VD_SIG_ECDSA } vd_sig_kind;

/* A signature algorithm as the vault names it (JWA). */
typedef struct vd_alg {
    const char *name; /* "RS256" ... */
    const char *kty;  /* "RSA" or "EC" */
    vd_sig_kind kind;
    const char *md; /* digest name; NULL for RSNULL */
    size_t dlen;    /* required digest length; 0 for RSNULL */
    int curve_nid;  /* ECDSA: the only curve this alg goes with */
} vd_alg;

const vd_alg *vd_alg_by_name(const char *name); /* NULL if unknown */

/* New key: kty "RSA" with bits, or "EC" with curve_nid. */
kv_rv vd_crypto_generate(const char *kty, int bits, int curve_nid, EVP_PKEY **out);

/* Curve NID of an EC key (NID_undef for others); RSA modulus bits or EC field bits. */
int vd_crypto_curve_nid(const EVP_PKEY *pkey);

/* Encrypts pkey's PKCS#8 DER with AES-256-GCM under kek (fresh random iv, AAD = aad).
 * *out = ciphertext || 16-byte tag (malloc'd). */
kv_rv vd_crypto_wrap_pkey(const uint8_t kek[VD_KEK_LEN], const char *aad, const EVP_PKEY *pkey,
                          uint8_t iv[12], uint8_t **out, size_t *outlen);
kv_rv vd_crypto_unwrap_pkey(const uint8_t kek[VD_KEK_LEN], const char *aad, const uint8_t iv[12],
                            const uint8_t *in, size_t inlen, EVP_PKEY **out);

/* Public key to SubjectPublicKeyInfo DER and back. */
kv_rv vd_crypto_pub_der(const EVP_PKEY *pkey, uint8_t **out, size_t *outlen);
kv_rv vd_crypto_pub_from_der(const uint8_t *der, size_t len, EVP_PKEY **out);

/* Whether alg goes with the key (type and, for ECDSA, curve). */
bool vd_alg_fits_key(const vd_alg *alg, const EVP_PKEY *pkey);

/* Signs in (a digest of exactly alg->dlen bytes; RSNULL: at most k - 11 bytes).
 * *sig (malloc'd): RSA modulus-length bytes, ECDSA raw r||s. KV_ERR_INVALID_ARG on bad input
 * length. */
kv_rv vd_crypto_sign(EVP_PKEY *pkey, const vd_alg *alg, const uint8_t *in, size_t inlen,
                     uint8_t **sig, size_t *siglen);
/* *ok = whether sig is a valid alg signature of in under pkey (malformed = false). */
kv_rv vd_crypto_verify(EVP_PKEY *pkey, const vd_alg *alg, const uint8_t *in, size_t inlen,
                       const uint8_t *sig, size_t siglen, bool *ok);

/* ---- key lifecycle additions (H1) ---- */

/* RSA encryption algorithms of the vault (encrypt/decrypt/wrapKey/unwrapKey). */
typedef enum { VD_ENC_RSA1_5, VD_ENC_RSA_OAEP, VD_ENC_RSA_OAEP_256 } vd_enc_alg;
/* false if name is not an RSA encryption algorithm. */
bool vd_enc_alg_by_name(const char *name, vd_enc_alg *out);
/* Largest plaintext alg can encrypt under pkey. */
size_t vd_crypto_enc_max(const EVP_PKEY *pkey, vd_enc_alg alg);
/* RSA encryption; KV_ERR_INVALID_ARG on bad input (too long / undecryptable). */
kv_rv vd_crypto_encrypt(EVP_PKEY *pkey, vd_enc_alg alg, const uint8_t *in, size_t inlen,
                        uint8_t **out, size_t *outlen);
kv_rv vd_crypto_decrypt(EVP_PKEY *pkey, vd_enc_alg alg, const uint8_t *in, size_t inlen,
                        uint8_t **out, size_t *outlen);

/* A private key from a JWK with private parts (RSA n,e,d,p,q,dp,dq,qi / EC crv,x,y,d), checked
 * for consistency and for the vault's sizes and curves. KV_ERR_INVALID_ARG with a reason in
 * why otherwise. */
kv_rv vd_crypto_import_jwk(const json_t *jwk, EVP_PKEY **out, char *why, size_t whylen);

/* Backup blobs: AES-256-GCM under a key derived (HKDF-SHA256, own label) from the instance KEK,
 * so only this vaultd instance can open them. open: KV_ERR_INVALID_ARG if the blob is not
 * ours or was altered. */
#define VD_KEY_BACKUP_LABEL "kvault vaultd key backup v1"
kv_rv vd_crypto_backup_seal(const uint8_t kek[VD_KEK_LEN], const char *label, const uint8_t *in,
                            size_t inlen, uint8_t **out, size_t *outlen);
kv_rv vd_crypto_backup_open(const uint8_t kek[VD_KEK_LEN], const char *label, const uint8_t *in,
                            size_t inlen, uint8_t **out, size_t *outlen);

#endif
