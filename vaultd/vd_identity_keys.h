/* vd_identity_keys.h - the token-signing keys: the current and the previous ES256 key
 * (STATE/token-signing.key, STATE/token-signing.prev.key), rotated on a schedule
 * (--token-key-rotation) or on demand; JWKS lists both, tokens are signed with the current one
 * and verified with whichever their kid names. Thread-safe (one rwlock). */
#ifndef VD_IDENTITY_KEYS_H
#define VD_IDENTITY_KEYS_H

#include <jansson.h>
#include <openssl/evp.h>

#include "kv_status.h"
#include "vd_ctx.h"

#define VD_TOKEN_KEY_ROTATION_DEFAULT (7L * 86400)

/* Loads the keys of the state directory into ctx->tokenkeys (the current key was created by
 * vd_dev.c). */
kv_rv vd_tokenkeys_load(vd_ctx *ctx);
void vd_tokenkeys_free(vd_ctx *ctx);
/* The current key (a new reference: EVP_PKEY_free it) and its kid, rotating first when the
 * schedule says so. */
kv_rv vd_tokenkeys_current(vd_ctx *ctx, EVP_PKEY **pkey, char kid[VD_ID_MAX]);
/* The current or previous key whose kid is kid (new reference). KV_ERR_NOT_FOUND if none. */
kv_rv vd_tokenkeys_find(vd_ctx *ctx, const char *kid, EVP_PKEY **pkey);
/* Makes a new current key; the current one becomes the previous one (persisted). */
kv_rv vd_tokenkeys_rotate(vd_ctx *ctx);
/* {"keys": [current, previous?]} as public JWKs with kid, use, alg. */
json_t *vd_tokenkeys_jwks(vd_ctx *ctx);

#endif
