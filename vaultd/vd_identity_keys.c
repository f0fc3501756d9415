/* vd_identity_keys.c - the current and previous ES256 token-signing keys (vd_identity_keys.h):
 * loaded from the state directory, rotated on schedule or on demand (the new key is written
 * before it is used; the old current key becomes token-signing.prev.key), listed in the JWKS. */
#include "vd_identity_keys.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include "kv_jwk.h"
#include "vd_identity.h"
#include "vd_util.h"

struct vd_tokenkeys {
    pthread_rwlock_t lock;
    EVP_PKEY *cur, *prev;
    char cur_kid[VD_ID_MAX], prev_kid[VD_ID_MAX];
    long long rotated_at; /* when cur became current */
    long interval;        /* seconds between scheduled rotations, 0 = never */
    char cur_path[PATH_MAX + 32], prev_path[PATH_MAX + 32];
};

static EVP_PKEY *vd_read_key(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    if (k != NULL && (!EVP_PKEY_is_a(k, "EC") || EVP_PKEY_get_bits(k) != 256)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

static kv_rv vd_save_key(const char *path, EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len;
    kv_rv rv = KV_ERR_INTERNAL;

    if (bio != NULL && PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) == 1) {
        len = BIO_get_mem_data(bio, &data);
        if (len > 0)
            rv = vd_write_file(path, data, (size_t)len, 0600);
    }
    BIO_free(bio);
    return rv;
}

kv_rv vd_tokenkeys_load(vd_ctx *ctx)
{
    struct vd_tokenkeys *tk;
    struct stat stb;

    if (ctx == NULL || ctx->token_key == NULL)
        return KV_ERR_INVALID_ARG;
    tk = calloc(1, sizeof(*tk));
    if (tk == NULL)
        return KV_ERR_NOMEM;
    if (pthread_rwlock_init(&tk->lock, NULL) != 0) {
        free(tk);
        return KV_ERR_INTERNAL;
    }
    snprintf(tk->cur_path, sizeof(tk->cur_path), "%s/token-signing.key", ctx->cfg.state_dir);
    snprintf(tk->prev_path, sizeof(tk->prev_path), "%s/token-signing.prev.key", ctx->cfg.state_dir);
    EVP_PKEY_up_ref(ctx->token_key);
    tk->cur = ctx->token_key;
    snprintf(tk->cur_kid, sizeof(tk->cur_kid), "%s", ctx->token_kid);
    tk->prev = vd_read_key(tk->prev_path);
    if (tk->prev != NULL && (vd_identity_key_id(tk->prev, tk->prev_kid) != KV_OK ||
                             strcmp(tk->prev_kid, tk->cur_kid) == 0)) {
        EVP_PKEY_free(tk->prev);
        tk->prev = NULL;
    }
    tk->rotated_at = stat(tk->cur_path, &stb) == 0 ? (long long)stb.st_mtime : vd_now();
    tk->interval = ctx->cfg.token_key_rotation;
    ctx->tokenkeys = tk;
    return KV_OK;
}

void vd_tokenkeys_free(vd_ctx *ctx)
{
    struct vd_tokenkeys *tk = ctx ? ctx->tokenkeys : NULL;

    if (tk == NULL)
        return;
    EVP_PKEY_free(tk->cur);
    EVP_PKEY_free(tk->prev);
    pthread_rwlock_destroy(&tk->lock);
    free(tk);
    ctx->tokenkeys = NULL;
}

/* Rotation with the write lock held. */
static kv_rv vd_rotate_locked(struct vd_tokenkeys *tk)
{
    EVP_PKEY *fresh = EVP_EC_gen("P-256");
    char kid[VD_ID_MAX];
    kv_rv rv = KV_ERR_INTERNAL;

    if (fresh == NULL || vd_identity_key_id(fresh, kid) != KV_OK)
        goto done;
    /* previous first: a crash in between leaves prev == cur, which is harmless */
    if ((rv = vd_save_key(tk->prev_path, tk->cur)) != KV_OK ||
        (rv = vd_save_key(tk->cur_path, fresh)) != KV_OK)
        goto done;
    EVP_PKEY_free(tk->prev);
    tk->prev = tk->cur;
    snprintf(tk->prev_kid, sizeof(tk->prev_kid), "%s", tk->cur_kid);
    tk->cur = fresh;
    fresh = NULL;
    snprintf(tk->cur_kid, sizeof(tk->cur_kid), "%s", kid);
    tk->rotated_at = vd_now();
    fprintf(stderr, "vaultd: token-signing key rotated: kid %s (previous %s)\n", tk->cur_kid,
            tk->prev_kid);
    rv = KV_OK;
done:
    EVP_PKEY_free(fresh);
    return rv;
}

kv_rv vd_tokenkeys_rotate(vd_ctx *ctx)
{
    struct vd_tokenkeys *tk = ctx ? ctx->tokenkeys : NULL;
    kv_rv rv;

    if (tk == NULL)
        return KV_ERR_INVALID_ARG;
    pthread_rwlock_wrlock(&tk->lock);
    rv = vd_rotate_locked(tk);
    pthread_rwlock_unlock(&tk->lock);
    return rv;
}

kv_rv vd_tokenkeys_current(vd_ctx *ctx, EVP_PKEY **pkey, char kid[VD_ID_MAX])
{
    struct vd_tokenkeys *tk = ctx ? ctx->tokenkeys : NULL;
    bool due;

    if (ctx == NULL || pkey == NULL || kid == NULL)
        return KV_ERR_INVALID_ARG;
    if (tk == NULL) { /* not loaded (tools, tests): the start-up key */
        if (ctx->token_key == NULL)
            return KV_ERR_INVALID_ARG;
        EVP_PKEY_up_ref(ctx->token_key);
        *pkey = ctx->token_key;
        snprintf(kid, VD_ID_MAX, "%s", ctx->token_kid);
        return KV_OK;
    }
    pthread_rwlock_rdlock(&tk->lock);
    due = tk->interval > 0 && vd_now() - tk->rotated_at >= tk->interval;
    pthread_rwlock_unlock(&tk->lock);
    if (due) {
        pthread_rwlock_wrlock(&tk->lock);
        if (tk->interval > 0 && vd_now() - tk->rotated_at >= tk->interval)
            (void)vd_rotate_locked(tk); /* on failure keep signing with the current key */
        pthread_rwlock_unlock(&tk->lock);
    }
    pthread_rwlock_rdlock(&tk->lock);
    EVP_PKEY_up_ref(tk->cur);
    *pkey = tk->cur;
    snprintf(kid, VD_ID_MAX, "%s", tk->cur_kid);
    pthread_rwlock_unlock(&tk->lock);
    return KV_OK;
}

kv_rv vd_tokenkeys_find(vd_ctx *ctx, const char *kid, EVP_PKEY **pkey)
{
    struct vd_tokenkeys *tk = ctx ? ctx->tokenkeys : NULL;
    kv_rv rv = KV_ERR_NOT_FOUND;

    if (ctx == NULL || kid == NULL || pkey == NULL)
        return KV_ERR_INVALID_ARG;
    *pkey = NULL;
    if (tk == NULL) {
        if (ctx->token_key != NULL && strcmp(kid, ctx->token_kid) == 0) {
            EVP_PKEY_up_ref(ctx->token_key);
            *pkey = ctx->token_key;
            rv = KV_OK;
        }
        return rv;
    }
    pthread_rwlock_rdlock(&tk->lock);
    if (strcmp(kid, tk->cur_kid) == 0)
        *pkey = tk->cur;
    else if (tk->prev != NULL && strcmp(kid, tk->prev_kid) == 0)
        *pkey = tk->prev;
    if (*pkey != NULL) {
        EVP_PKEY_up_ref(*pkey);
        rv = KV_OK;
    }
    pthread_rwlock_unlock(&tk->lock);
    return rv;
}

static json_t *vd_jwk(EVP_PKEY *k, const char *kid)
{
    json_t *jwk = kv_jwk_from_public_pkey(k, 0);

    if (jwk == NULL)
        return NULL;
    json_object_set_new(jwk, "kid", json_string(kid));
    json_object_set_new(jwk, "use", json_string("sig"));
    json_object_set_new(jwk, "alg", json_string("ES256"));
    return jwk;
}

json_t *vd_tokenkeys_jwks(vd_ctx *ctx)
{
    struct vd_tokenkeys *tk = ctx ? ctx->tokenkeys : NULL;
    json_t *keys = json_array(), *jwk;

    if (ctx == NULL || keys == NULL) {
        json_decref(keys);
        return NULL;
    }
    if (tk == NULL) {
        jwk = vd_jwk(ctx->token_key, ctx->token_kid);
        if (jwk != NULL)
            json_array_append_new(keys, jwk);
    } else {
        pthread_rwlock_rdlock(&tk->lock);
        jwk = vd_jwk(tk->cur, tk->cur_kid);
        if (jwk != NULL)
            json_array_append_new(keys, jwk);
        if (tk->prev != NULL && (jwk = vd_jwk(tk->prev, tk->prev_kid)) != NULL)
            json_array_append_new(keys, jwk);
        pthread_rwlock_unlock(&tk->lock);
    }
    return json_pack("{s:o}", "keys", keys);
}
