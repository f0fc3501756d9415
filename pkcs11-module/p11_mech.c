/* p11_mech.c - the mechanisms a vault token offers (C_GetMechanismList, C_GetMechanismInfo),
 * the same for every slot since every vault offers the same signature algorithms.
 *
 * CKF_HW is set: the private-key operation of every mechanism runs on the vault (the
 * "device"), never in this library; the optional local hashing of the CKM_SHA*_ and
 * CKM_ECDSA_SHA* mechanisms is a public computation, and verification uses only the public
 * key. (A side effect: pkcs11-tool --test runs its signature tests, which it skips for
 * software-only mechanisms.) Key sizes: RSA 2048-4096 bits, EC 256-521 bits, what the vault
 * creates. Encryption, decryption and key generation are not offered (yet). */
#include "p11_internal.h"

#include <string.h>

typedef struct kv_p11_mech {
    CK_MECHANISM_TYPE type;
    CK_KEY_TYPE key_type;
} kv_p11_mech;

static const kv_p11_mech kv_p11_mechs[] = {
    {CKM_RSA_PKCS, CKK_RSA},
    {CKM_SHA256_RSA_PKCS, CKK_RSA},
    {CKM_SHA384_RSA_PKCS, CKK_RSA},
    {CKM_SHA512_RSA_PKCS, CKK_RSA},
    {CKM_RSA_PKCS_PSS, CKK_RSA},
    {CKM_SHA256_RSA_PKCS_PSS, CKK_RSA},
    {CKM_SHA384_RSA_PKCS_PSS, CKK_RSA},
    {CKM_SHA512_RSA_PKCS_PSS, CKK_RSA},
    {CKM_ECDSA, CKK_EC},
    {CKM_ECDSA_SHA256, CKK_EC},
    {CKM_ECDSA_SHA384, CKK_EC},
    {CKM_ECDSA_SHA512, CKK_EC},
};
#define KV_P11_NMECHS (sizeof(kv_p11_mechs) / sizeof(kv_p11_mechs[0]))

static const kv_p11_mech *kv_p11_mech_find(CK_MECHANISM_TYPE type)
{
    size_t i;

    for (i = 0; i < KV_P11_NMECHS; i++)
        if (kv_p11_mechs[i].type == type)
            return &kv_p11_mechs[i];
    return NULL;
}

/* Checks the library state and the slot (lock held). */
static CK_RV kv_p11_mech_slot_check(CK_SLOT_ID id)
{
    if (!kv_p11_module.initialized)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (kv_p11_slot_get(id) == NULL)
        return CKR_SLOT_ID_INVALID;
    return CKR_OK;
}

CK_RV kv_p11_get_mechanism_list(CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;
    size_t i;

    kv_p11_lock();
    rv = kv_p11_mech_slot_check(id);
    if (rv != CKR_OK)
        goto done;
    if (count == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (list != NULL) {
        if (*count < KV_P11_NMECHS)
            rv = CKR_BUFFER_TOO_SMALL;
        else
            for (i = 0; i < KV_P11_NMECHS; i++)
                list[i] = kv_p11_mechs[i].type;
    }
    *count = KV_P11_NMECHS;

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_get_mechanism_info(CK_SLOT_ID id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    const kv_p11_mech *m;
    CK_RV rv;

    kv_p11_lock();
    rv = kv_p11_mech_slot_check(id);
    if (rv != CKR_OK)
        goto done;
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    m = kv_p11_mech_find(type);
    if (m == NULL) {
        rv = CKR_MECHANISM_INVALID;
        goto done;
    }
    memset(info, 0, sizeof(*info));
    info->flags = CKF_HW | CKF_SIGN | CKF_VERIFY;
    if (m->key_type == CKK_RSA) {
        info->ulMinKeySize = 2048;
        info->ulMaxKeySize = 4096;
    } else {
        info->ulMinKeySize = 256;
        info->ulMaxKeySize = 521;
        info->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    }

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_mech_check(CK_MECHANISM_TYPE mech, CK_KEY_TYPE kt, CK_ULONG bits)
{
    const kv_p11_mech *m = kv_p11_mech_find(mech);

    (void)bits; /* the vault itself only holds keys of the advertised sizes */
    if (m == NULL)
        return CKR_MECHANISM_INVALID;
    if (m->key_type != kt)
        return CKR_KEY_TYPE_INCONSISTENT;
    return CKR_OK;
}
