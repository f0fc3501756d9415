/* p11_keygen.c - C_GenerateKeyPair: RSA (CKM_RSA_PKCS_KEY_PAIR_GEN, 2048/3072/4096 bits,
 * exponent 65537) and EC (CKM_EC_KEY_PAIR_GEN: P-256, P-384, P-521, secp256k1) key pairs are
 * created in the vault (kv_vault_create_key); the handles returned name the new key's public
 * and private key objects.
 *
 * Template rules (pkcs11-module/README.md, "Key lifecycle"):
 * - CKA_LABEL (either template; equal if in both) is the vault key name, required,
 *   [0-9A-Za-z-]{1,127}; a name the vault already has is refused (CKR_ATTRIBUTE_VALUE_INVALID:
 *   the vault would make a new version of that key instead of a new key);
 * - CKA_ID, if given, must equal the ID kvault derives from the name (the vault keeps no IDs);
 * - CKA_SIGN/CKA_DECRYPT/CKA_UNWRAP and CKA_VERIFY/CKA_ENCRYPT/CKA_WRAP become the key_ops;
 *   usages the vault cannot offer for the key type (derive, recover, EC encryption or
 *   wrapping) are ignored and read back false; no usage attribute at all = the vault default;
 * - HSM protection (RSA-HSM / EC-HSM) when CKA_KVAULT_HSM is true or the slot is a managed HSM
 *   pool or a local pool;
 * - CKA_START_DATE / CKA_END_DATE become nbf / exp (one more vault call);
 * - CKA_TOKEN false, CKA_PRIVATE false on the private key, CKA_SENSITIVE false, CKA_EXTRACTABLE
 *   true, CKA_ALWAYS_AUTHENTICATE true: CKR_ATTRIBUTE_VALUE_INVALID (vault keys are none of
 *   these); attributes a key pair template cannot carry: CKR_ATTRIBUTE_TYPE_INVALID. */
#include "p11_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/obj_mac.h>

/* What the two templates ask for. */
typedef struct kv_p11_kp_req {
    CK_KEY_TYPE kt;
    char name[128];
    bool has_name;
    const CK_ATTRIBUTE *id; /* CKA_ID values to check once the name is known */
    const CK_ATTRIBUTE *id2;
    CK_ULONG bits;
    int curve_nid;
    bool hsm;
    unsigned ops;
    bool has_ops;
    long long nbf, exp; /* KV_KEEP = not given */
} kv_p11_kp_req;

/* Public exponent 65537 (big-endian, leading zeros allowed). */
static bool kv_p11_is_f4(const CK_ATTRIBUTE *a)
{
    const unsigned char *p = a->pValue;
    CK_ULONG i = 0;

    if (p == NULL)
        return false;
    while (i < a->ulValueLen && p[i] == 0)
        i++;
    return a->ulValueLen - i == 3 && p[i] == 0x01 && p[i + 1] == 0x00 && p[i + 2] == 0x01;
}

/* One attribute of the public (priv = false) or private template. */
static CK_RV kv_p11_kp_attr(const CK_ATTRIBUTE *a, bool priv, kv_p11_kp_req *r)
{
    const bool rsa = r->kt == CKK_RSA;
    CK_ULONG u;
    unsigned op;
    bool b = false;
    CK_RV rv = CKR_OK;

    switch (a->type) {
    case CKA_CLASS:
    case CKA_KEY_TYPE:
    case CKA_MODULUS_BITS:
        rv = kv_p11_tmpl_ulong(a, &u);
        if (rv != CKR_OK)
            return rv;
        if (a->type == CKA_CLASS)
            return u == (priv ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY) ? CKR_OK
                                                                  : CKR_TEMPLATE_INCONSISTENT;
        if (a->type == CKA_KEY_TYPE)
            return u == r->kt ? CKR_OK : CKR_TEMPLATE_INCONSISTENT;
        if (!rsa || priv)
            return CKR_TEMPLATE_INCONSISTENT;
        r->bits = u;
        return CKR_OK;
    case CKA_PUBLIC_EXPONENT:
        if (!rsa || priv)
            return CKR_TEMPLATE_INCONSISTENT;
        return kv_p11_is_f4(a) ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
    case CKA_EC_PARAMS:
        if (rsa || priv)
            return CKR_TEMPLATE_INCONSISTENT;
        r->curve_nid = kv_p11_tmpl_curve(a);
        return r->curve_nid != NID_undef ? CKR_OK : CKR_CURVE_NOT_SUPPORTED;
    case CKA_LABEL: {
        char name[128];

        rv = kv_p11_tmpl_name(a, name);
        if (rv != CKR_OK)
            return rv;
        if (r->has_name && strcmp(name, r->name) != 0)
            return CKR_TEMPLATE_INCONSISTENT;
        memcpy(r->name, name, sizeof(name));
        r->has_name = true;
        return CKR_OK;
    }
    case CKA_ID:
        if (r->id == NULL)
            r->id = a;
        else
            r->id2 = a;
        return CKR_OK;
    case CKA_START_DATE:
    case CKA_END_DATE:
        if (a->ulValueLen == 0)
            return CKR_OK; /* no date */
        return kv_p11_tmpl_date(a, a->type == CKA_END_DATE,
                                a->type == CKA_END_DATE ? &r->exp : &r->nbf);
    default:
        break;
    }

    /* the rest are CK_BBOOL */
    rv = kv_p11_tmpl_bool(a, &b);
    switch (a->type) {
    case CKA_TOKEN:
        return rv != CKR_OK ? rv : (b ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID);
    case CKA_PRIVATE: /* a public key object is public whatever the template says */
        return rv != CKR_OK ? rv : (b || !priv ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID);
    case CKA_KVAULT_HSM:
        if (rv == CKR_OK && b)
            r->hsm = true;
        return rv;
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
    case CKA_DERIVE:
        return rv; /* ignored: see the top of the file */
    case CKA_SIGN:
    case CKA_DECRYPT:
    case CKA_UNWRAP:
    case CKA_SIGN_RECOVER:
    case CKA_SENSITIVE:
    case CKA_EXTRACTABLE:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_WRAP_WITH_TRUSTED:
        if (!priv)
            return CKR_TEMPLATE_INCONSISTENT;
        break;
    case CKA_VERIFY:
    case CKA_ENCRYPT:
    case CKA_WRAP:
    case CKA_VERIFY_RECOVER:
    case CKA_TRUSTED:
        if (priv)
            return CKR_TEMPLATE_INCONSISTENT;
        break;
    case CKA_SUBJECT:
    case CKA_ALLOWED_MECHANISMS:
        return CKR_OK; /* not kept by the vault: the objects report their own */
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
    if (rv != CKR_OK)
        return rv;
    switch (a->type) {
    case CKA_SENSITIVE:
        return b ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
    case CKA_EXTRACTABLE:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_WRAP_WITH_TRUSTED:
    case CKA_TRUSTED:
        return b ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_OK;
    case CKA_SIGN_RECOVER:
    case CKA_VERIFY_RECOVER:
        return CKR_OK; /* ignored */
    default:
        break;
    }
    /* a usage: CKA_SIGN / CKA_VERIFY, or (RSA only) encryption and wrapping */
    r->has_ops = true;
    op = kv_p11_usage_op(a->type);
    if (b && (rsa || op == KV_OP_SIGN || op == KV_OP_VERIFY))
        r->ops |= op;
    return CKR_OK;
}

CK_RV kv_p11_generate_key_pair(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
                               CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
                               CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
    kv_p11_session *s = NULL;
    kv_p11_slot *slot;
    kv_p11_kp_req r;
    kv_key_create_params cp;
    kv_key *k = NULL;
    kv_err err;
    kv_rv krv;
    CK_ULONG i;
    CK_RV rv;

    kv_err_clear(&err);
    rv = kv_p11_session_acquire(hs, 0, &s);
    if (rv != CKR_OK)
        return rv;
    if (mech == NULL || hpub == NULL || hpriv == NULL || (pub == NULL && npub > 0) ||
        (priv == NULL && npriv > 0)) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    memset(&r, 0, sizeof(r));
    r.nbf = r.exp = KV_KEEP;
    if (mech->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN)
        r.kt = CKK_RSA;
    else if (mech->mechanism == CKM_EC_KEY_PAIR_GEN)
        r.kt = CKK_EC;
    else {
        rv = CKR_MECHANISM_INVALID;
        goto done;
    }
    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        rv = CKR_MECHANISM_PARAM_INVALID;
        goto done;
    }
    rv = kv_p11_write_check(s, false);
    if (rv != CKR_OK)
        goto done;
    for (i = 0; i < npub && rv == CKR_OK; i++)
        rv = kv_p11_kp_attr(&pub[i], false, &r);
    for (i = 0; i < npriv && rv == CKR_OK; i++)
        rv = kv_p11_kp_attr(&priv[i], true, &r);
    if (rv != CKR_OK)
        goto done;
    if (!r.has_name || (r.kt == CKK_RSA && r.bits == 0) || (r.kt == CKK_EC && r.curve_nid == 0)) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto done;
    }
    if (r.kt == CKK_RSA && r.bits != 2048 && r.bits != 3072 && r.bits != 4096) {
        rv = CKR_KEY_SIZE_RANGE;
        goto done;
    }
    kv_p11_lock();
    slot = kv_p11_slot_get(s->slot);
    kv_p11_unlock();
    rv = kv_p11_tmpl_id(slot->name, r.name, r.id);
    if (rv == CKR_OK)
        rv = kv_p11_tmpl_id(slot->name, r.name, r.id2);
    if (rv == CKR_OK)
        rv = kv_p11_write_check(s, true);
    if (rv != CKR_OK)
        goto done;

    rv = kv_p11_key_absent(slot, "C_GenerateKeyPair", r.name);
    if (rv != CKR_OK)
        goto done;
    memset(&cp, 0, sizeof(cp));
    cp.kty = r.kt == CKK_RSA ? KV_KTY_RSA : KV_KTY_EC;
    cp.bits = (int)r.bits;
    cp.curve_nid = r.curve_nid;
    cp.hsm = r.hsm || kv_vault_has_oct(slot->vault);
    cp.key_ops = r.has_ops ? r.ops : 0;
    if (r.has_ops && r.ops == 0) {
        rv = CKR_TEMPLATE_INCONSISTENT; /* every usage the vault offers was turned off */
        goto done;
    }
    krv = kv_vault_create_key(slot->vault, r.name, &cp, &k, &err);
    if (krv != KV_OK) {
        rv = kv_p11_write_rv("C_GenerateKeyPair", &err, krv);
        goto done;
    }
    rv = kv_p11_key_finish(slot, "C_GenerateKeyPair", k, r.nbf, r.exp, hpub, hpriv);

done:
    kv_key_unref(k);
    kv_p11_session_release(s, 0);
    return rv;
}
