/* kv_jwk.h - JSON Web Keys (RFC 7517, Azure Key Vault flavour) to and from EVP_PKEY.
 * Used by vaultclient (public keys from the vault) and vaultd (responses). */
#ifndef KV_JWK_H
#define KV_JWK_H

#include <jansson.h>
#include <openssl/evp.h>

#include "kv_client.h"

/* Public key from a JWK object (kty RSA/RSA-HSM with n,e; EC/EC-HSM with crv,x,y).
 * libctx/propq select where the EVP_PKEY is built (NULL = default). Private members in the
 * JWK are ignored. kty/curve_nid/bits/hsm may be NULL. */
kv_rv kv_jwk_to_public_pkey(OSSL_LIB_CTX *libctx, const char *propq, const json_t *jwk,
                            EVP_PKEY **out, kv_kty *kty, int *curve_nid, int *bits, int *hsm,
                            kv_err *err);

/* A new JWK object with the public members of pkey (kty "RSA"/"EC", or the -HSM forms when
 * hsm is non-zero), or NULL on failure. The caller adds kid and key_ops. */
json_t *kv_jwk_from_public_pkey(const EVP_PKEY *pkey, int hsm);

/* JWK/JWA curve names: "P-256" <-> NID_X9_62_prime256v1, "P-384", "P-521", "P-256K". */
int kv_curve_nid_from_name(const char *crv); /* NID_undef if unknown */
const char *kv_curve_name_from_nid(int nid); /* NULL if unknown */
/* OpenSSL group name for a NID ("P-256" etc. in OpenSSL's spelling: "prime256v1", ...). */
const char *kv_curve_group_from_nid(int nid);

/* key_ops array <-> KV_OP_* bits (unknown names ignored). */
unsigned kv_key_ops_from_json(const json_t *arr);
json_t *kv_key_ops_to_json(unsigned ops);

#endif
