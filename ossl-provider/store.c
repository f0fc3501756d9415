/* store.c - the OSSL_STORE loader for "kvault://VAULT/keys/NAME[/VERSION]" URIs. open parses
 * the URI and finds the vault in the configuration (no network); load fetches the key from
 * the vault and hands it to OpenSSL once: as a reference to a kvault key object (resolved by
 * the keymgmt's load()) or, when only a public key is expected, as a SubjectPublicKeyInfo. */
#include <stdio.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "kv_prov.h"
#include "kv_uri.h"

typedef struct kv_prov_store {
    kv_prov_ctx *pc;
    kv_uri uri;
    kv_vault *vault;
    int expect; /* OSSL_STORE_INFO_* or 0 */
    int done;   /* the one object was delivered (or failed) */
} kv_prov_store;

static void *kv_prov_store_open(void *provctx, const char *uri)
{
    kv_prov_ctx *pc = provctx;
    kv_prov_store *st = NULL;
    kv_ctx *kv;
    kv_err err;
    kv_rv rv;

    if (pc == NULL || uri == NULL)
        return NULL;
    kv_err_clear(&err);
    st = OPENSSL_zalloc(sizeof(*st));
    if (st == NULL) {
        kv_prov_raise(pc, KV_PROV_R_NOMEM, "out of memory");
        goto fail;
    }
    st->pc = pc;
    rv = kv_uri_parse(uri, &st->uri, &err);
    if (rv != KV_OK) {
        kv_prov_raise(pc, KV_PROV_R_MALFORMED_URI, "%s (got \"%.200s\")",
                      err.message[0] ? err.message : "malformed kvault URI", uri);
        goto fail;
    }
    kv = kv_prov_get_kv(pc);
    if (kv == NULL)
        goto fail;
    st->vault = kv_ctx_vault_by_name(kv, st->uri.vault);
    if (st->vault == NULL) {
        const char *path = kv_ctx_conf_path(kv);

        kv_prov_raise(pc, KV_PROV_R_NO_VAULT, "no vault named %s in the kvault configuration (%s)",
                      st->uri.vault,
                      (path != NULL && path[0] != '\0') ? path : "no configuration file");
        goto fail;
    }
    return st;
fail:
    OPENSSL_free(st);
    return NULL;
}

static const char *kv_prov_store_data_type(const kv_key *k)
{
    return k->kty == KV_KTY_RSA ? "RSA" : "EC";
}

/* Hands the public key over as DER SubjectPublicKeyInfo; OpenSSL decodes it itself. */
static int kv_prov_store_give_pubkey(kv_prov_store *st, const kv_key *k, OSSL_CALLBACK *cb,
                                     void *cbarg)
{
    unsigned char *der = NULL;
    int len, objtype = OSSL_OBJECT_PKEY, ok = 0;
    OSSL_PARAM params[5];

    len = i2d_PUBKEY(k->pub, &der);
    if (len <= 0) {
        kv_prov_raise(st->pc, KV_PROV_R_INTERNAL, "cannot encode the public key of %s", k->name);
        goto done;
    }
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)kv_prov_store_data_type(k), 0);
    params[2] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                                 (char *)"SubjectPublicKeyInfo", 0);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)len);
    params[4] = OSSL_PARAM_construct_end();
    ok = cb(params, cbarg);
done:
    OPENSSL_free(der);
    return ok;
}

/* Hands the key over by reference to a kvault key object. */
static int kv_prov_store_give_ref(kv_prov_store *st, kv_key *k, OSSL_CALLBACK *cb, void *cbarg)
{
    kv_prov_key *pk;
    int objtype = OSSL_OBJECT_PKEY, ok = 0;
    OSSL_PARAM params[4];

    pk = kv_prov_key_new(st->pc, st->vault, k);
    if (pk == NULL) {
        kv_prov_raise(st->pc, KV_PROV_R_NOMEM, "out of memory");
        return 0;
    }
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)kv_prov_store_data_type(k), 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &pk, sizeof(pk));
    params[3] = OSSL_PARAM_construct_end();
    ok = cb(params, cbarg);
    kv_prov_key_unref(pk); /* keymgmt load() took its own reference */
    return ok;
}

/* A vault whose credential is sealed under a PIN (client_secret_sealed) is opened with the
 * passphrase the application supplies (openssl -passin, a UI prompt): the PIN. */
static kv_rv kv_prov_store_unlock(kv_prov_store *st, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                                  void *pw_cbarg, kv_err *err)
{
    char pin[257], info[128];
    size_t len = 0;
    OSSL_PARAM params[2];
    kv_rv rv;

    snprintf(info, sizeof(info), "PIN for kvault vault %s", kv_vault_name(st->vault));
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!pw_cb(pin, sizeof(pin) - 1, &len, params, pw_cbarg) || len >= sizeof(pin))
        return kv_err_set(err, KV_ERR_LOCKED, "vault %s is locked and no PIN was given",
                          kv_vault_name(st->vault));
    pin[len] = '\0';
    rv = kv_vault_unlock(st->vault, pin, len, err);
    OPENSSL_cleanse(pin, sizeof(pin));
    return rv;
}

static int kv_prov_store_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                              OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    kv_prov_store *st = loaderctx;
    kv_key *k = NULL;
    kv_err err;
    kv_rv rv;
    int ok = 0;

    if (st == NULL || object_cb == NULL)
        return 0;
    if (st->done)
        return 0;
    st->done = 1;
    if (st->expect != 0 && st->expect != OSSL_STORE_INFO_PKEY &&
        st->expect != OSSL_STORE_INFO_PUBKEY)
        return 0; /* only keys live behind kvault URIs */
    kv_err_clear(&err);
    rv = kv_vault_get_key(st->vault, st->uri.name, st->uri.version, &k, &err);
    if (rv == KV_ERR_LOCKED && pw_cb != NULL) {
        rv = kv_prov_store_unlock(st, pw_cb, pw_cbarg, &err);
        if (rv == KV_OK)
            rv = kv_vault_get_key(st->vault, st->uri.name, st->uri.version, &k, &err);
    }
    if (rv != KV_OK) {
        kv_prov_raise_kv(st->pc, rv, &err, NULL);
        goto done;
    }
    if ((k->kty != KV_KTY_RSA && k->kty != KV_KTY_EC) || k->pub == NULL) {
        kv_prov_raise(st->pc, KV_PROV_R_UNSUPPORTED, "key %s in vault %s is not an RSA or EC key",
                      k->name, k->vault);
        goto done;
    }
    if (st->expect == OSSL_STORE_INFO_PUBKEY)
        ok = kv_prov_store_give_pubkey(st, k, object_cb, object_cbarg);
    else
        ok = kv_prov_store_give_ref(st, k, object_cb, object_cbarg);
done:
    kv_key_unref(k);
    return ok;
}

static int kv_prov_store_eof(void *loaderctx)
{
    kv_prov_store *st = loaderctx;

    return st == NULL || st->done;
}

static int kv_prov_store_close(void *loaderctx)
{
    OPENSSL_free(loaderctx);
    return 1;
}

static const OSSL_PARAM *kv_prov_store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)provctx;
    return settable;
}

static int kv_prov_store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    kv_prov_store *st = loaderctx;
    const OSSL_PARAM *p;

    if (st == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p != NULL && !OSSL_PARAM_get_int(p, &st->expect))
        return 0;
    return 1; /* other search criteria cannot narrow a single-key URI */
}

static int kv_prov_store_export_object(void *loaderctx, const void *reference, size_t reference_sz,
                                       OSSL_CALLBACK *cb, void *cbarg)
{
    /* A vault key's private half never leaves the vault, so exporting "the object" to
     * another provider is refused; OpenSSL then loads it through kvault's own keymgmt. */
    (void)loaderctx;
    (void)reference;
    (void)reference_sz;
    (void)cb;
    (void)cbarg;
    return 0;
}

const OSSL_DISPATCH kv_prov_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))kv_prov_store_open},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))kv_prov_store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))kv_prov_store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))kv_prov_store_close},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))kv_prov_store_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))kv_prov_store_set_ctx_params},
    {OSSL_FUNC_STORE_EXPORT_OBJECT, (void (*)(void))kv_prov_store_export_object},
    {0, NULL},
};
