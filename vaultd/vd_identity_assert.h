/* vd_identity_assert.h - client assertions (private_key_jwt, RFC 7523) for the token
 * endpoint: a JWT signed with the key of the principal's registered certificate (RS256 + x5t,
 * PS256 + x5t#S256, ES256 + x5t / x5t#S256), aud = this token endpoint (v1 or v2 URL),
 * iss == sub == client_id, exp / nbf (5 min skew), jti not seen before (replay cache shared by
 * all worker threads, entries kept until the assertion's exp). */
#ifndef VD_IDENTITY_ASSERT_H
#define VD_IDENTITY_ASSERT_H

#include <stdbool.h>
#include <stddef.h>

#include "kv_status.h"
#include "vd_ctx.h"
#include "vd_http.h"
#include "vd_store_principals.h"

#define VD_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define VD_ASSERTION_SKEW 300

/* The jti replay cache in ctx->jticache. */
kv_rv vd_jticache_new(vd_ctx *ctx);
void vd_jticache_free(vd_ctx *ctx);

/* Whether the request's Host header names this instance (a loopback name, *.localhost or
 * --identity-host, with the authority's port): only then may it stand for the authority. */
bool vd_identity_host_is_ours(const vd_req *r);

/* Verifies assertion for principal rec of tenant. KV_OK, or KV_ERR_AUTH with *code (the
 * AADSTS number) and msg (the description without the AADSTS prefix) set. */
kv_rv vd_identity_check_assertion(vd_req *r, const char *tenant, const vd_principal_rec *rec,
                                  const char *assertion, int *code, char *msg, size_t msglen);

#endif
