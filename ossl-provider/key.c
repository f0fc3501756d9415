/* key.c - the provider's key object: a reference-counted wrapper around a vault key (or,
 * when imported from another provider, just a public key), shared by store, keymgmt and
 * signature. Immutable after creation, so it can be used from many threads. */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kv_prov.h"

kv_prov_key *kv_prov_key_new(kv_prov_ctx *pc, kv_vault *v, kv_key *k)
{
    kv_prov_key *pk;

    if (pc == NULL)
        return NULL;
    pk = OPENSSL_zalloc(sizeof(*pk));
    if (pk == NULL)
        return NULL;
    pk->pc = pc;
    pk->vault = v;
    if (k != NULL) {
        pk->key = kv_key_ref(k);
        pk->pub = k->pub;
    }
    pk->refs = 1;
    return pk;
}

kv_prov_key *kv_prov_key_ref(kv_prov_key *pk)
{
    if (pk != NULL)
        __atomic_add_fetch(&pk->refs, 1, __ATOMIC_RELAXED);
    return pk;
}

void kv_prov_key_unref(kv_prov_key *pk)
{
    if (pk == NULL || __atomic_sub_fetch(&pk->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (pk->pub_owned)
        EVP_PKEY_free(pk->pub);
    kv_key_unref(pk->key);
    OPENSSL_free(pk);
}

kv_kty kv_prov_key_kty(const kv_prov_key *pk)
{
    if (pk == NULL)
        return KV_KTY_NONE;
    if (pk->key != NULL)
        return pk->key->kty;
    if (pk->pub != NULL) {
        if (EVP_PKEY_is_a(pk->pub, "RSA"))
            return KV_KTY_RSA;
        if (EVP_PKEY_is_a(pk->pub, "EC"))
            return KV_KTY_EC;
    }
    return KV_KTY_NONE;
}

int kv_prov_key_is_private(const kv_prov_key *pk)
{
    return pk != NULL && pk->key != NULL && pk->vault != NULL;
}
