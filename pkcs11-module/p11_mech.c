/* p11_mech.c - the mechanisms a token offers (C_GetMechanismList, C_GetMechanismInfo), per
 * slot: every slot has the RSA / ECDSA / digest mechanisms; slots that can hold AES keys (a
 * managed HSM pool, a local pool: kv_vault_has_oct) add CKM_AES_KEY_GEN, CKM_AES_GCM,
 * CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP and CKM_AES_KEY_WRAP_PAD (RFC 5649; a managed
 * HSM's wrapkey alg "CKM_AES_KEY_WRAP_PAD", spec section 2). CKM_RSA_PKCS and CKM_RSA_PKCS_OAEP
 * carry CKF_WRAP / CKF_UNWRAP: a module session secret key is wrapped with a vault RSA public key,
 * and a key is unwrapped with the private key on the vault (p11_wrap.c).
 *
 * CKF_HW is set on every mechanism that uses a key: the private-key operation (sign, decrypt)
 * runs on the vault (the "device"), never in this library; the optional local hashing of the
 * CKM_SHA*_ and CKM_ECDSA_SHA* mechanisms is a public computation, and verification and
 * encryption use only the public key. (A side effect: pkcs11-tool --test runs its signature
 * tests, which it skips for software-only mechanisms.) The digests (CKF_DIGEST) are computed
 * locally and carry no CKF_HW. Key sizes: RSA 2048-4096 bits, EC 256-521 bits, what the vault
 * creates.
 * Signatures map onto the vault's algorithms: RSxxx/PSxxx/ESxxx for SHA-256/384/512; SHA-1 and
 * SHA-224 with PKCS#1 v1.5 become RSNULL over the DigestInfo; ECDSA with any digest is the
 * curve's ES algorithm over the digest brought to the curve's size. PSS with SHA-1/224 has no
 * vault equivalent (PS256/384/512 only) and is not listed. */
#include "p11_internal.h"

#include <string.h>

typedef struct kv_p11_mech {
    CK_MECHANISM_TYPE type;
    CK_KEY_TYPE key_type; /* (CK_KEY_TYPE)-1 for digests */
    CK_FLAGS flags;
    int where; /* KV_P11_ALL, KV_P11_AES (slots with AES keys), KV_P11_POOL (local pools) */
} kv_p11_mech;

#define KV_P11_ALL 0
#define KV_P11_AES 1
#define KV_P11_POOL 2

#define KV_SV (CKF_HW | CKF_SIGN | CKF_VERIFY)
#define KV_ED (CKF_HW | CKF_ENCRYPT | CKF_DECRYPT)
#define KV_WU (CKF_HW | CKF_WRAP | CKF_UNWRAP)
#define KV_NOKEY ((CK_KEY_TYPE)-1)

static const kv_p11_mech kv_p11_mechs[] = {
    {CKM_RSA_PKCS, CKK_RSA, KV_SV | KV_ED | KV_WU, KV_P11_ALL},
    {CKM_RSA_PKCS_OAEP, CKK_RSA, KV_ED | KV_WU, KV_P11_ALL},
    {CKM_SHA1_RSA_PKCS, CKK_RSA, KV_SV},
    {CKM_SHA224_RSA_PKCS, CKK_RSA, KV_SV},
    {CKM_SHA256_RSA_PKCS, CKK_RSA, KV_SV},
    {CKM_SHA384_RSA_PKCS, CKK_RSA, KV_SV},
    {CKM_SHA512_RSA_PKCS, CKK_RSA, KV_SV},
    {CKM_RSA_PKCS_PSS, CKK_RSA, KV_SV},
    {CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, KV_SV},
    {CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, KV_SV},
    {CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, KV_SV},
    {CKM_ECDSA, CKK_EC, KV_SV},
    {CKM_ECDSA_SHA1, CKK_EC, KV_SV},
    {CKM_ECDSA_SHA224, CKK_EC, KV_SV},
    {CKM_ECDSA_SHA256, CKK_EC, KV_SV},
    {CKM_ECDSA_SHA384, CKK_EC, KV_SV},
    {CKM_ECDSA_SHA512, CKK_EC, KV_SV},
    {CKM_SHA_1, KV_NOKEY, CKF_DIGEST},
    {CKM_SHA224, KV_NOKEY, CKF_DIGEST},
    {CKM_SHA256, KV_NOKEY, CKF_DIGEST},
    {CKM_SHA384, KV_NOKEY, CKF_DIGEST},
    {CKM_SHA512, KV_NOKEY, CKF_DIGEST},
    /* key pairs generated in the vault (p11_keygen.c) */
    {CKM_RSA_PKCS_KEY_PAIR_GEN, CKK_RSA, CKF_HW | CKF_GENERATE_KEY_PAIR},
    {CKM_EC_KEY_PAIR_GEN, CKK_EC, CKF_HW | CKF_GENERATE_KEY_PAIR},
    /* AES (p11_secret.c, p11_crypt.c, p11_wrap.c) */
    {CKM_AES_KEY_GEN, CKK_AES, CKF_HW | CKF_GENERATE, KV_P11_AES},
    {CKM_AES_GCM, CKK_AES, KV_ED, KV_P11_AES},
    {CKM_AES_CBC, CKK_AES, KV_ED, KV_P11_AES},
    {CKM_AES_CBC_PAD, CKK_AES, KV_ED, KV_P11_AES},
    {CKM_AES_KEY_WRAP, CKK_AES, KV_WU, KV_P11_AES},
    {CKM_AES_KEY_WRAP_PAD, CKK_AES, KV_WU, KV_P11_AES},
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

/* Checks the library state and the slot (lock held); *where: what the slot offers. */
static CK_RV kv_p11_mech_slot_check(CK_SLOT_ID id, int *where)
{
    kv_p11_slot *s;

    if (!kv_p11_module.initialized)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    s = kv_p11_slot_get(id);
    if (s == NULL)
        return CKR_SLOT_ID_INVALID;
    *where = kv_vault_is_local_pool(s->vault) ? KV_P11_POOL
             : kv_vault_has_oct(s->vault)     ? KV_P11_AES
                                              : KV_P11_ALL;
    return CKR_OK;
}

CK_RV kv_p11_get_mechanism_list(CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;
    size_t i, n = 0;
    int where = KV_P11_ALL;

    kv_p11_lock();
    rv = kv_p11_mech_slot_check(id, &where);
    if (rv != CKR_OK)
        goto done;
    if (count == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    for (i = 0; i < KV_P11_NMECHS; i++)
        n += kv_p11_mechs[i].where <= where;
    if (list != NULL) {
        if (*count < n) {
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            n = 0;
            for (i = 0; i < KV_P11_NMECHS; i++)
                if (kv_p11_mechs[i].where <= where)
                    list[n++] = kv_p11_mechs[i].type;
        }
    }
    *count = n;

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_get_mechanism_info(CK_SLOT_ID id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    const kv_p11_mech *m;
    int where = KV_P11_ALL;
    CK_RV rv;

    kv_p11_lock();
    rv = kv_p11_mech_slot_check(id, &where);
    if (rv != CKR_OK)
        goto done;
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    m = kv_p11_mech_find(type);
    if (m == NULL || m->where > where) {
        rv = CKR_MECHANISM_INVALID;
        goto done;
    }
    memset(info, 0, sizeof(*info));
    info->flags = m->flags;
    if (m->key_type == KV_NOKEY) {
        /* digests: no key */
    } else if (m->key_type == CKK_RSA) {
        info->ulMinKeySize = 2048;
        info->ulMaxKeySize = 4096;
    } else if (m->key_type == CKK_AES) { /* AES key sizes are in bytes */
        info->ulMinKeySize = 16;
        info->ulMaxKeySize = 32;
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
    if (m == NULL || !(m->flags & CKF_SIGN))
        return CKR_MECHANISM_INVALID;
    if (m->key_type != kt)
        return CKR_KEY_TYPE_INCONSISTENT;
    return CKR_OK;
}
