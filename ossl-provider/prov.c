/* prov.c - OSSL_provider_init for kvault's OpenSSL 3 face: the provider context (with its own
 * lazily created vaultclient context, so that loading the provider never touches the network
 * or the configuration), the core error functions, provider parameters, the algorithm tables
 * (all with "provider=kvault"; no digests, random or key generation) and teardown. */
#include <string.h>
#include <time.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "kv_prov.h"
#include "kv_prov_version.h"

kv_ctx *kv_prov_get_kv(kv_prov_ctx *pc)
{
    kv_ctx *kv = NULL;
    kv_err err;
    kv_rv rv;

    if (pc == NULL)
        return NULL;
    kv_err_clear(&err);
    if (pthread_mutex_lock(&pc->lock) != 0) {
        kv_prov_raise(pc, KV_PROV_R_INTERNAL, "cannot lock the provider context");
        return NULL;
    }
    if (pc->kv == NULL) {
        rv = kv_ctx_new(NULL, &pc->kv, &err);
        if (rv != KV_OK) {
            pc->kv = NULL;
            pthread_mutex_unlock(&pc->lock);
            kv_prov_raise_kv(pc, rv, &err, "cannot read the kvault configuration");
            return NULL;
        }
    }
    kv = pc->kv;
    pthread_mutex_unlock(&pc->lock);
    return kv;
}

OSSL_LIB_CTX *kv_prov_get_hashctx(kv_prov_ctx *pc)
{
    OSSL_LIB_CTX *lc = NULL;

    if (pc == NULL)
        return NULL;
    if (pthread_mutex_lock(&pc->lock) != 0) {
        kv_prov_raise(pc, KV_PROV_R_INTERNAL, "cannot lock the provider context");
        return NULL;
    }
    if (pc->hashctx == NULL) {
        pc->hashctx = OSSL_LIB_CTX_new();
        if (pc->hashctx != NULL)
            pc->hashprov = OSSL_PROVIDER_load(pc->hashctx, "default");
        if (pc->hashprov == NULL) {
            OSSL_LIB_CTX_free(pc->hashctx);
            pc->hashctx = NULL;
        }
    }
    lc = pc->hashctx;
    pthread_mutex_unlock(&pc->lock);
    if (lc == NULL)
        kv_prov_raise(pc, KV_PROV_R_INTERNAL,
                      "cannot load OpenSSL's default provider for local hashing");
    return lc;
}

static void kv_prov_teardown(void *provctx)
{
    kv_prov_ctx *pc = provctx;

    if (pc == NULL)
        return;
    kv_ctx_free(pc->kv);
    if (pc->hashprov != NULL)
        OSSL_PROVIDER_unload(pc->hashprov);
    OSSL_LIB_CTX_free(pc->hashctx);
    pthread_cond_destroy(&pc->order_cond);
    pthread_mutex_destroy(&pc->lock);
    OPENSSL_free(pc);
}

static const OSSL_PARAM kv_prov_param_types[] = {
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *kv_prov_gettable_params(void *provctx)
{
    (void)provctx;
    return kv_prov_param_types;
}

static int kv_prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    (void)provctx;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "kvault key vault provider"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, KV_PROV_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "kvault " KV_PROV_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ALGORITHM kv_prov_keymgmt[] = {
    {KV_PROV_NAMES_RSA, KV_PROV_PROPS, kv_prov_rsa_keymgmt_functions, "kvault RSA vault key"},
    {KV_PROV_NAMES_EC, KV_PROV_PROPS, kv_prov_ec_keymgmt_functions, "kvault EC vault key"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kv_prov_signature[] = {
    {KV_PROV_NAMES_RSA, KV_PROV_PROPS, kv_prov_rsa_signature_functions,
     "kvault RSA signature in the vault"},
    {KV_PROV_NAMES_ECDSA, KV_PROV_PROPS, kv_prov_ecdsa_signature_functions,
     "kvault ECDSA signature in the vault"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kv_prov_store[] = {
    {"kvault", KV_PROV_PROPS, kv_prov_store_functions, "kvault://VAULT/keys/NAME[/VERSION]"},
    {NULL, NULL, NULL, NULL},
};

/* Makes OpenSSL register the default provider's implementations of an operation before
 * kvault's. OpenSSL 3.0 gives a fetch without a property query to the FIRST registered
 * implementation, and registration follows provider activation order; kvault's keymgmt and
 * signatures must be named RSA/EC/ECDSA (libssl, encoders and ctrl strings look keys up by
 * those names), so if kvault is listed before default in openssl.cnf it would receive
 * unrelated work such as key generation, which it does not offer. A fetch restricted to
 * the default provider, done before answering, registers every other activated provider's
 * implementations first; the nested query from that fetch is answered "nothing, do not
 * cache". Returns 1 when kvault may hand out its table now. */
static int kv_prov_order_after_default(kv_prov_ctx *pc, int operation_id)
{
    int i = operation_id == OSSL_OP_KEYMGMT ? 0 : 1, ok = 1;
    pthread_t self = pthread_self();
    struct timespec until;

    if (pthread_mutex_lock(&pc->lock) != 0)
        return 1;
    while (pc->order[i] == KV_PROV_ORDER_PRIMING) {
        if (pthread_equal(pc->order_thread[i], self)) {
            ok = 0; /* the nested query of our own priming fetch */
            goto done;
        }
        /* Bounded: a priming thread lost to fork() must not block the child forever. */
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        if (pthread_cond_timedwait(&pc->order_cond, &pc->lock, &until) != 0)
            goto done;
    }
    if (pc->order[i] == KV_PROV_ORDER_DONE)
        goto done;
    pc->order[i] = KV_PROV_ORDER_PRIMING;
    pc->order_thread[i] = self;
    pthread_mutex_unlock(&pc->lock);

    ERR_set_mark();
    if (operation_id == OSSL_OP_KEYMGMT)
        EVP_KEYMGMT_free(EVP_KEYMGMT_fetch(pc->libctx, "RSA", "provider=default"));
    else
        EVP_SIGNATURE_free(EVP_SIGNATURE_fetch(pc->libctx, "RSA", "provider=default"));
    ERR_pop_to_mark(); /* no default provider is fine: then nothing competes */

    pthread_mutex_lock(&pc->lock);
    pc->order[i] = KV_PROV_ORDER_DONE;
    pthread_cond_broadcast(&pc->order_cond);
done:
    pthread_mutex_unlock(&pc->lock);
    return ok;
}

static const OSSL_ALGORITHM *kv_prov_query_operation(void *provctx, int operation_id, int *no_cache)
{
    kv_prov_ctx *pc = provctx;

    if (no_cache != NULL)
        *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
    case OSSL_OP_SIGNATURE:
        if (!kv_prov_order_after_default(pc, operation_id)) {
            if (no_cache != NULL)
                *no_cache = 1;
            return NULL;
        }
        return operation_id == OSSL_OP_KEYMGMT ? kv_prov_keymgmt : kv_prov_signature;
    case OSSL_OP_STORE:
        return kv_prov_store;
    default:
        return NULL;
    }
}

static const OSSL_ITEM *kv_prov_get_reason_strings(void *provctx)
{
    (void)provctx;
    return kv_prov_reason_strings;
}

static const OSSL_DISPATCH kv_prov_dispatch[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))kv_prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))kv_prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))kv_prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))kv_prov_query_operation},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))kv_prov_get_reason_strings},
    {0, NULL},
};

KV_EXPORT int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                                 const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_libctx_fn *core_get_libctx = NULL;
    kv_prov_ctx *pc = NULL;
    int ok = 0, locked = 0;

    if (handle == NULL || in == NULL || out == NULL || provctx == NULL)
        return 0;
    pc = OPENSSL_zalloc(sizeof(*pc));
    if (pc == NULL)
        goto done;
    pc->handle = handle;
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_LIBCTX:
            core_get_libctx = OSSL_FUNC_core_get_libctx(in);
            break;
        case OSSL_FUNC_CORE_GET_PARAMS:
            pc->core_get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            pc->core_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            pc->core_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            pc->core_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    if (core_get_libctx == NULL)
        goto done;
    /* The core's library context handle is the OSSL_LIB_CTX the provider lives in. */
    pc->libctx = (OSSL_LIB_CTX *)core_get_libctx(handle);
    if (pthread_mutex_init(&pc->lock, NULL) != 0)
        goto done;
    locked = 1;
    if (pthread_cond_init(&pc->order_cond, NULL) != 0)
        goto done;
    *out = kv_prov_dispatch;
    *provctx = pc;
    pc = NULL;
    ok = 1;
done:
    if (pc != NULL && locked)
        pthread_mutex_destroy(&pc->lock);
    OPENSSL_free(pc);
    return ok;
}
