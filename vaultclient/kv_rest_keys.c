/* kv_rest_keys.c - the REST backend's key lifecycle: versions, delete (soft delete), import
 * (BYOK as a JWK with private parts), update (enabled, nbf, exp, key_ops). */
#include "kv_backend.h"

kv_rv kv_rest_list_versions(kv_vault *v, const char *name, kv_key ***out, size_t *n, kv_err *err)
{
    (void)v, (void)name, (void)out, (void)n;
    return kv_err_set(err, KV_ERR_UNSUPPORTED, "not implemented yet");
}

kv_rv kv_rest_delete_key(kv_vault *v, const char *name, kv_err *err)
{
    (void)v, (void)name;
    return kv_err_set(err, KV_ERR_UNSUPPORTED, "not implemented yet");
}

kv_rv kv_rest_import_key(kv_vault *v, const char *name, const kv_key_import_params *p, kv_key **out,
                         kv_err *err)
{
    (void)v, (void)name, (void)p, (void)out;
    return kv_err_set(err, KV_ERR_UNSUPPORTED, "not implemented yet");
}

kv_rv kv_rest_update_key(kv_vault *v, const kv_key *k, const kv_key_update_params *p, kv_key **out,
                         kv_err *err)
{
    (void)v, (void)k, (void)p, (void)out;
    return kv_err_set(err, KV_ERR_UNSUPPORTED, "not implemented yet");
}
