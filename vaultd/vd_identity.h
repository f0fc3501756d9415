/* vd_identity.h - vaultd's built-in Entra-like identity service: client-credential token
 * endpoint (v1 and v2), OpenID metadata, JWKS, ES256 access tokens and their verification. */
#ifndef VD_IDENTITY_H
#define VD_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "kv_status.h"
#include "vd_ctx.h"
#include "vd_http.h"
#include "vd_store.h"

/* PBKDF2-HMAC-SHA256 iterations for client secrets (about 50 ms here; a per-process cache of
 * recently verified secrets keeps repeated token requests fast). */
#define VD_PBKDF2_ITERATIONS 100000
#define VD_SECRET_MAX 128

kv_rv vd_secretcache_new(vd_secretcache **out);
void vd_secretcache_free(vd_secretcache *sc);

/* A new random client secret (b64url, NUL-terminated in secret[VD_SECRET_MAX]) and its salted
 * hash in p->salt / p->hash / p->iterations. */
kv_rv vd_identity_new_secret(vd_principal *p, char secret[VD_SECRET_MAX]);
/* A fresh salt and the hash of the given secret (a user's chosen password) in p. */
kv_rv vd_identity_hash_secret(vd_principal *p, const char *secret);
/* Constant-time check of secret against p's stored hash (cache-assisted when ctx given). */
bool vd_identity_check_secret(vd_ctx *ctx, const vd_principal *p, const char *secret);

/* The JWK kid of the token-signing key. */
kv_rv vd_identity_key_id(const EVP_PKEY *pkey, char out[VD_ID_MAX]);

/* Whether the path is an identity endpoint (/{tenant}/oauth2/..., /{tenant}/v2.0/...,
 * /{tenant}/discovery/..., /{tenant}/.well-known/...). */
bool vd_identity_is_identity_path(const vd_req *r);
/* Answers an identity request. */
void vd_identity_handle(vd_req *r);

/* Decodes one canonical (unpadded) base64url JWT part of len characters (malloc'd *out). */
kv_rv vd_jwt_part(const char *s, size_t len, uint8_t **out, size_t *outlen);
/* Decodes a JWT part holding a JSON object (NULL if it is not one). */
json_t *vd_jwt_json(const char *s, size_t len);
/* The resource vaultd serves for a v2 scope (".../.default") or a v1 resource, or NULL. */
const char *vd_known_resource(const char *s, bool v2);

/* The user part of a user token (resource-owner password grant). */
typedef struct vd_token_user {
    const char *upn;  /* userPrincipalName */
    const char *name; /* display name */
    const char *azp;  /* the client application the user signed in with */
} vd_token_user;

/* Issues an access token for the user oid (malloc'd *token). */
kv_rv vd_identity_issue_user(vd_ctx *ctx, const char *tenant_id, const char *oid,
                             const vd_token_user *user, const char *resource, long lifetime,
                             char **token);

/* Issues an access token for client_id in tenant_id with audience resource (malloc'd). */
kv_rv vd_identity_issue(vd_ctx *ctx, const char *tenant_id, const char *client_id,
                        const char *resource, long lifetime, char **token);

/* Authenticates a vault request against vault v from its Authorization header.
 * KV_OK: principal_out holds the client id. KV_ERR_AUTH: no usable bearer token at all
 * (*why = NULL) or an invalid one (*why = reason for the 401 message). */
kv_rv vd_identity_authenticate(vd_req *r, const vd_vault *v, char principal_out[VD_ID_MAX],
                               char *why, size_t whylen);

#endif
