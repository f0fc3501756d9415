/* kv_alg.c - the vault's signature algorithm names and their digest sizes. */
#include <string.h>

#include <openssl/obj_mac.h>

#include "kv_client.h"

static const struct {
    kv_alg alg;
    const char *name;
    size_t dlen;
} kv_algs[] = {
    {KV_ALG_RS256, "RS256", 32},   {KV_ALG_RS384, "RS384", 48},  {KV_ALG_RS512, "RS512", 64},
    {KV_ALG_PS256, "PS256", 32},   {KV_ALG_PS384, "PS384", 48},  {KV_ALG_PS512, "PS512", 64},
    {KV_ALG_ES256, "ES256", 32},   {KV_ALG_ES384, "ES384", 48},  {KV_ALG_ES512, "ES512", 64},
    {KV_ALG_ES256K, "ES256K", 32}, {KV_ALG_RSNULL, "RSNULL", 0},
};

const char *kv_alg_name(kv_alg alg)
{
    size_t i;

    for (i = 0; i < sizeof(kv_algs) / sizeof(kv_algs[0]); i++)
        if (kv_algs[i].alg == alg)
            return kv_algs[i].name;
    return NULL;
}

kv_alg kv_alg_from_name(const char *name)
{
    size_t i;

    if (name == NULL)
        return KV_ALG_NONE;
    for (i = 0; i < sizeof(kv_algs) / sizeof(kv_algs[0]); i++)
        if (strcmp(kv_algs[i].name, name) == 0)
            return kv_algs[i].alg;
    return KV_ALG_NONE;
}

size_t kv_alg_digest_len(kv_alg alg)
{
    size_t i;

    for (i = 0; i < sizeof(kv_algs) / sizeof(kv_algs[0]); i++)
        if (kv_algs[i].alg == alg)
            return kv_algs[i].dlen;
    return 0;
}

kv_alg kv_alg_ecdsa_for_curve(int curve_nid)
{
    switch (curve_nid) {
    case NID_X9_62_prime256v1:
        return KV_ALG_ES256;
    case NID_secp384r1:
        return KV_ALG_ES384;
    case NID_secp521r1:
        return KV_ALG_ES512;
    case NID_secp256k1:
        return KV_ALG_ES256K;
    default:
        return KV_ALG_NONE;
    }
}
