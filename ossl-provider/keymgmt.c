/* keymgmt.c - RSA and EC key management for kvault keys ("provider=kvault"). Keys come from
 * the store by reference (load); their public halves answer get_params and can be exported
 * (public parts only, so that default-provider encoders and verifiers can use them). A
 * public-only key can be imported (for key comparison against certificates). There is no key
 * generation: kvault never takes over generic key work from the default provider. */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kv_prov.h"

static void *kv_prov_km_new(void *provctx)
{
    kv_prov_ctx *pc = provctx;
    kv_prov_key *pk = kv_prov_key_new(pc, NULL, NULL);

    if (pk == NULL)
        kv_prov_raise(pc, KV_PROV_R_NOMEM, "out of memory");
    return pk;
}

static void kv_prov_km_free(void *keydata)
{
    kv_prov_key_unref(keydata);
}

static void *kv_prov_km_load(const void *reference, size_t reference_sz, kv_kty kty)
{
    kv_prov_key *pk = NULL;

    if (reference == NULL || reference_sz != sizeof(pk))
        return NULL;
    memcpy(&pk, reference, sizeof(pk));
    if (pk == NULL || kv_prov_key_kty(pk) != kty)
        return NULL;
    return kv_prov_key_ref(pk);
}

static void *kv_prov_rsa_load(const void *reference, size_t reference_sz)
{
    return kv_prov_km_load(reference, reference_sz, KV_KTY_RSA);
}

static void *kv_prov_ec_load(const void *reference, size_t reference_sz)
{
    return kv_prov_km_load(reference, reference_sz, KV_KTY_EC);
}

static int kv_prov_km_has(const void *keydata, int selection)
{
    const kv_prov_key *pk = keydata;

    if (pk == NULL || pk->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !kv_prov_key_is_private(pk))
        return 0;
    return 1;
}

static int kv_prov_km_match(const void *keydata1, const void *keydata2, int selection)
{
    const kv_prov_key *a = keydata1, *b = keydata2;

    if (a == NULL || b == NULL || a->pub == NULL || b->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_eq(a->pub, b->pub) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0)
        return EVP_PKEY_parameters_eq(a->pub, b->pub) == 1;
    return 1;
}

static int kv_prov_km_get_params(void *keydata, OSSL_PARAM params[])
{
    kv_prov_key *pk = keydata;

    if (pk == NULL || pk->pub == NULL)
        return 0;
    /* The public key answers bits, security-bits, max-size, default-digest and the public
     * parameters exactly as OpenSSL's own implementation would. */
    return EVP_PKEY_get_params(pk->pub, params);
}

static const OSSL_PARAM *kv_prov_rsa_gettable_params(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)provctx;
    return gettable;
}

static const OSSL_PARAM *kv_prov_ec_gettable_params(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)provctx;
    return gettable;
}

static int kv_prov_km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    kv_prov_key *pk = keydata;
    OSSL_PARAM *params = NULL;
    int ok = 0;

    if (pk == NULL || pk->pub == NULL || cb == NULL)
        return 0;
    /* The private half lives in the vault. Refusing a request that includes it (rather than
     * exporting only the public half) makes OpenSSL use kvault's own signature for
     * private-key operations instead of a public-only copy in another provider. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) == 0)
        return 0;
    if (EVP_PKEY_todata(pk->pub, EVP_PKEY_PUBLIC_KEY, &params) != 1)
        goto done;
    ok = cb(params, cbarg);
done:
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM kv_prov_rsa_key_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM kv_prov_ec_key_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *kv_prov_rsa_key_types_fn(int selection)
{
    (void)selection;
    return kv_prov_rsa_key_types;
}

static const OSSL_PARAM *kv_prov_ec_key_types_fn(int selection)
{
    (void)selection;
    return kv_prov_ec_key_types;
}

/* Imports a public key (only): used when OpenSSL compares a kvault key with a key from
 * another provider, e.g. a certificate's. Private key material is refused so that a
 * software key never silently loses its private half here. */
static int kv_prov_km_import(void *keydata, int selection, const OSSL_PARAM params[],
                             const char *type)
{
    kv_prov_key *pk = keydata;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    OSSL_LIB_CTX *lc;
    int ok = 0;

    if (pk == NULL || params == NULL || pk->pub != NULL || pk->key != NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL ||
         OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL))
        return 0;
    lc = kv_prov_get_hashctx(pk->pc);
    if (lc == NULL)
        return 0;
    ctx = EVP_PKEY_CTX_new_from_name(lc, type, "provider=default");
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) != 1)
        goto done;
    pk->pub = pub;
    pk->pub_owned = true;
    pub = NULL;
    ok = 1;
done:
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int kv_prov_rsa_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return kv_prov_km_import(keydata, selection, params, "RSA");
}

static int kv_prov_ec_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return kv_prov_km_import(keydata, selection, params, "EC");
}

static const char *kv_prov_rsa_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const char *kv_prov_ec_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static void *kv_prov_km_dup(const void *keydata, int selection)
{
    (void)selection;
    /* Key objects are immutable, so a duplicate is another reference. */
    return kv_prov_key_ref((kv_prov_key *)keydata);
}

const OSSL_DISPATCH kv_prov_rsa_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))kv_prov_km_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))kv_prov_km_free},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))kv_prov_km_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))kv_prov_km_match},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))kv_prov_km_get_params},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))kv_prov_km_export},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))kv_prov_km_dup},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))kv_prov_rsa_load},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))kv_prov_rsa_gettable_params},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))kv_prov_rsa_import},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))kv_prov_rsa_key_types_fn},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))kv_prov_rsa_key_types_fn},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))kv_prov_rsa_query_operation_name},
    {0, NULL},
};

const OSSL_DISPATCH kv_prov_ec_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))kv_prov_km_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))kv_prov_km_free},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))kv_prov_km_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))kv_prov_km_match},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))kv_prov_km_get_params},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))kv_prov_km_export},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))kv_prov_km_dup},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))kv_prov_ec_load},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))kv_prov_ec_gettable_params},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))kv_prov_ec_import},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))kv_prov_ec_key_types_fn},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))kv_prov_ec_key_types_fn},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))kv_prov_ec_query_operation_name},
    {0, NULL},
};
