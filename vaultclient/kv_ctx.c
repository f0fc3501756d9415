/* kv_ctx.c - the one vaultclient context: configuration, transport, and the vaults. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv_backend.h"
#include "kv_client.h"
#include "kv_config.h"
#include "kv_http.h"
#include "kv_log.h"

struct kv_ctx {
    kv_conf *conf;
    kv_http *http;
    kv_vault *vaults;
    size_t nvaults;
};

kv_rv kv_ctx_new(const char *conf_path, kv_ctx **out, kv_err *err)
{
    kv_ctx *ctx;
    size_t i;
    kv_rv rv;

    kv_err_clear(err);
    if (out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no output");
    *out = NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    rv = kv_conf_load(conf_path, &ctx->conf, err);
    if (rv != KV_OK)
        goto fail;
    kv_log_set_level(ctx->conf->log_level);
    rv = kv_http_new(ctx->conf->timeout, ctx->conf->retries, &ctx->http, err);
    if (rv != KV_OK)
        goto fail;
    if (ctx->conf->nvaults > 0) {
        ctx->vaults = calloc(ctx->conf->nvaults, sizeof(*ctx->vaults));
        if (ctx->vaults == NULL) {
            rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    for (i = 0; i < ctx->conf->nvaults; i++) {
        kv_vault *v = &ctx->vaults[i];

        v->ctx = ctx;
        v->conf = &ctx->conf->vaults[i];
        v->http = ctx->http;
        /* [pool NAME]: a local HSM pool (kv_pool.c); else a remote vault / managed HSM pool */
        rv = v->conf->pool != NULL ? kv_pool_init(v, err) : kv_rest_init(v, err);
        if (rv != KV_OK)
            goto fail;
        ctx->nvaults++;
    }
    KV_DEBUG("configuration %s: %zu vault(s)", ctx->conf->path, ctx->nvaults);
    *out = ctx;
    return KV_OK;
fail:
    kv_ctx_free(ctx);
    return rv;
}

void kv_ctx_free(kv_ctx *ctx)
{
    size_t i;

    if (ctx == NULL)
        return;
    for (i = 0; i < ctx->nvaults; i++)
        if (ctx->vaults[i].ops != NULL && ctx->vaults[i].ops->free != NULL)
            ctx->vaults[i].ops->free(&ctx->vaults[i]);
    free(ctx->vaults);
    kv_http_free(ctx->http);
    kv_conf_free(ctx->conf);
    free(ctx);
}

const char *kv_ctx_conf_path(const kv_ctx *ctx)
{
    return ctx != NULL && ctx->conf != NULL ? ctx->conf->path : "";
}

long kv_ctx_object_cache_seconds(const kv_ctx *ctx)
{
    return ctx != NULL && ctx->conf != NULL ? ctx->conf->object_cache_seconds : 30;
}

size_t kv_ctx_vault_count(const kv_ctx *ctx)
{
    return ctx != NULL ? ctx->nvaults : 0;
}

kv_vault *kv_ctx_vault_at(kv_ctx *ctx, size_t i)
{
    return ctx != NULL && i < ctx->nvaults ? &ctx->vaults[i] : NULL;
}

kv_vault *kv_ctx_vault_by_name(kv_ctx *ctx, const char *name)
{
    size_t i;

    if (ctx == NULL || name == NULL)
        return NULL;
    for (i = 0; i < ctx->nvaults; i++)
        if (strcasecmp(ctx->vaults[i].conf->name, name) == 0)
            return &ctx->vaults[i];
    return NULL;
}

OSSL_LIB_CTX *kv_ctx_libctx(kv_ctx *ctx)
{
    return ctx != NULL ? kv_http_libctx(ctx->http) : NULL;
}
