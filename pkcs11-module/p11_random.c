/* p11_random.c - C_GenerateRandom and C_SeedRandom.
 *
 * A managed HSM pool has an RNG on the device (POST /rng, kv_vault_random, which loops over
 * 128-byte requests): its token carries CKF_RNG and C_GenerateRandom returns the pool's bytes.
 * A vault has no RNG API: CKR_RANDOM_NO_RNG (for C_SeedRandom too). A pool's generator cannot be
 * seeded by the caller: CKR_RANDOM_SEED_NOT_SUPPORTED. */
#include "p11_internal.h"

#include <openssl/crypto.h>

CK_RV kv_p11_generate_random(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len)
{
    CK_SLOT_ID id;
    kv_vault *v = NULL;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    kv_err_clear(&err);
    rv = kv_p11_session_slot(h, &id);
    if (rv != CKR_OK)
        return rv;
    if (out == NULL && len > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    kv_p11_lock();
    v = kv_p11_slot_get(id) != NULL ? kv_p11_slot_get(id)->vault : NULL;
    kv_p11_unlock();
    if (!kv_vault_has_rng(v)) {
        rv = CKR_RANDOM_NO_RNG;
        goto done;
    }
    if (len == 0)
        goto done;
    krv = kv_vault_random(v, out, len, &err);
    if (krv != KV_OK)
        rv = kv_p11_rv_log("C_GenerateRandom", &err, krv, KV_P11_OP_GENERIC);

done:
    kv_p11_leave();
    return rv;
}

CK_RV kv_p11_seed_random(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len)
{
    CK_SLOT_ID id;
    kv_vault *v;
    CK_RV rv;

    rv = kv_p11_session_slot(h, &id);
    if (rv != CKR_OK)
        return rv;
    if (seed == NULL && len > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    kv_p11_lock();
    v = kv_p11_slot_get(id) != NULL ? kv_p11_slot_get(id)->vault : NULL;
    kv_p11_unlock();
    /* no generator at all (a vault): CKR_RANDOM_NO_RNG, which is also what tools such as
     * pkcs11-tool --test take as "skip the RNG tests"; a pool's generator cannot be seeded */
    rv = kv_vault_has_rng(v) ? CKR_RANDOM_SEED_NOT_SUPPORTED : CKR_RANDOM_NO_RNG;

done:
    kv_p11_leave();
    return rv;
}
