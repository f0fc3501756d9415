/* p11_object.c - key objects: every RSA/EC vault key appears as a CKO_PRIVATE_KEY and a
 * CKO_PUBLIC_KEY object. Object handles come from a table (slot, name, class) -> handle
 * that lives as long as the module is initialised, so a handle keeps naming the same key
 * (its latest version) across finds and cache refreshes. The same table names certificate
 * (p11_cert.c) and data (p11_data.c) objects; C_GetAttributeValue here serves all kinds.
 *
 * Attribute values are built once per fetched key version (kv_p11_kdata) from the public key
 * that vaultclient returns: RSA modulus / exponent, EC curve OID and point, and the DER
 * SubjectPublicKeyInfo. CKA_ID = first 16 bytes of SHA-256("<vault>/<key name>"): stable for
 * the key across versions (rotation) and processes, and equal on both objects of a key. */
#include "p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

/* ---- kdata ---- */

bool kv_p11_key_id(const char *vault, const char *name, CK_BYTE id[KV_P11_ID_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_MD *sha = kv_p11_md_fetch("SHA256");
    bool ok = false;

    if (c != NULL && sha != NULL && EVP_DigestInit_ex(c, sha, NULL) == 1 &&
        EVP_DigestUpdate(c, vault, strlen(vault)) == 1 && EVP_DigestUpdate(c, "/", 1) == 1 &&
        EVP_DigestUpdate(c, name, strlen(name)) == 1 && EVP_DigestFinal_ex(c, md, &mdlen) == 1 &&
        mdlen >= KV_P11_ID_LEN) {
        memcpy(id, md, KV_P11_ID_LEN);
        ok = true;
    }
    EVP_MD_CTX_free(c);
    EVP_MD_free(sha);
    return ok;
}

kv_p11_kdata *kv_p11_kdata_ref(kv_p11_kdata *kd)
{
    if (kd != NULL)
        __atomic_add_fetch(&kd->refs, 1, __ATOMIC_ACQ_REL);
    return kd;
}

void kv_p11_kdata_unref(kv_p11_kdata *kd)
{
    if (kd == NULL || __atomic_sub_fetch(&kd->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    kv_key_unref(kd->key);
    free(kd->modulus);
    free(kd->pub_exp);
    free(kd->ec_params);
    free(kd->ec_point);
    free(kd->spki);
    free(kd);
}

bool kv_p11_kdata_fresh(const kv_p11_kdata *kd)
{
    return kv_p11_fresh(&kd->fetched);
}

static uint8_t *kv_p11_bn_bytes(const BIGNUM *bn, size_t *len)
{
    int n = BN_num_bytes(bn);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);

    if (p == NULL)
        return NULL;
    *len = (size_t)BN_bn2bin(bn, p);
    return p;
}

static kv_rv kv_p11_kdata_rsa(kv_p11_kdata *kd, kv_err *err)
{
    BIGNUM *n = NULL, *e = NULL;
    kv_rv rv = KV_OK;

    if (EVP_PKEY_get_bn_param(kd->key->pub, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(kd->key->pub, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        rv =
            kv_err_set(err, KV_ERR_INTERNAL, "cannot read the RSA public key of %s", kd->key->name);
        goto done;
    }
    kd->modulus = kv_p11_bn_bytes(n, &kd->modulus_len);
    kd->pub_exp = kv_p11_bn_bytes(e, &kd->pub_exp_len);
    if (kd->modulus == NULL || kd->pub_exp == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    kd->modulus_bits = (CK_ULONG)BN_num_bits(n);

done:
    BN_free(n);
    BN_free(e);
    return rv;
}

static kv_rv kv_p11_kdata_ec(kv_p11_kdata *kd, kv_err *err)
{
    unsigned char point[256];
    size_t plen = 0;
    int nid = kd->key->curve_nid;
    ASN1_OBJECT *oid;
    ASN1_OCTET_STRING *os = NULL;
    unsigned char *p;
    int len;
    kv_rv rv = KV_OK;

    if (nid == NID_undef) {
        char group[80];

        if (EVP_PKEY_get_utf8_string_param(kd->key->pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), NULL) == 1)
            nid = OBJ_sn2nid(group);
    }
    oid = OBJ_nid2obj(nid);
    if (nid == NID_undef || oid == NULL || (len = i2d_ASN1_OBJECT(oid, NULL)) <= 0) {
        rv = kv_err_set(err, KV_ERR_UNSUPPORTED, "key %s has an unknown curve", kd->key->name);
        goto done;
    }
    kd->ec_params = malloc((size_t)len);
    if (kd->ec_params == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    p = kd->ec_params;
    kd->ec_params_len = (size_t)i2d_ASN1_OBJECT(oid, &p);

    if (EVP_PKEY_get_octet_string_param(kd->key->pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof(point), &plen) != 1 ||
        plen == 0 || point[0] != 0x04) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot read the EC point of %s", kd->key->name);
        goto done;
    }
    os = ASN1_OCTET_STRING_new();
    if (os == NULL || ASN1_OCTET_STRING_set(os, point, (int)plen) != 1 ||
        (len = i2d_ASN1_OCTET_STRING(os, NULL)) <= 0 ||
        (kd->ec_point = malloc((size_t)len)) == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    p = kd->ec_point;
    kd->ec_point_len = (size_t)i2d_ASN1_OCTET_STRING(os, &p);
    kd->modulus_bits = (CK_ULONG)kd->key->bits;

done:
    ASN1_OCTET_STRING_free(os);
    return rv;
}

kv_rv kv_p11_kdata_new(kv_key *key, kv_p11_kdata **out, kv_err *err)
{
    kv_p11_kdata *kd = NULL;
    unsigned char *p;
    int len;
    kv_rv rv = KV_OK;

    *out = NULL;
    if (key != NULL && key->kty == KV_KTY_OCT) { /* an AES key: CKO_SECRET_KEY (p11_secret.c) */
        kd = calloc(1, sizeof(*kd));
        if (kd == NULL)
            return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        kd->refs = 1;
        kd->key = kv_key_ref(key);
        clock_gettime(CLOCK_MONOTONIC, &kd->fetched);
        kd->key_type = CKK_AES;
        kd->modulus_bits = (CK_ULONG)key->bits;
        if (!kv_p11_key_id(key->vault, key->name, kd->id)) {
            kv_p11_kdata_unref(kd);
            return kv_err_set(err, KV_ERR_INTERNAL, "no SHA-256 implementation available");
        }
        *out = kd;
        return KV_OK;
    }
    if (key == NULL || key->pub == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "key without a public part");
    if (key->kty != KV_KTY_RSA && key->kty != KV_KTY_EC)
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "key %s is not RSA or EC", key->name);
    kd = calloc(1, sizeof(*kd));
    if (kd == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    kd->refs = 1;
    kd->key = kv_key_ref(key);
    clock_gettime(CLOCK_MONOTONIC, &kd->fetched);
    kd->key_type = key->kty == KV_KTY_RSA ? CKK_RSA : CKK_EC;
    if (!kv_p11_key_id(key->vault, key->name, kd->id)) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "no SHA-256 implementation available");
        goto done;
    }

    len = i2d_PUBKEY(key->pub, NULL);
    if (len <= 0 || (kd->spki = malloc((size_t)len)) == NULL) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot encode the public key of %s", key->name);
        goto done;
    }
    p = kd->spki;
    kd->spki_len = (size_t)i2d_PUBKEY(key->pub, &p);

    rv = kd->key_type == CKK_RSA ? kv_p11_kdata_rsa(kd, err) : kv_p11_kdata_ec(kd, err);
    if (rv != KV_OK)
        goto done;
    *out = kd;
    kd = NULL;

done:
    kv_p11_kdata_unref(kd);
    return rv;
}

/* ---- handle table (lock held) ---- */

CK_OBJECT_HANDLE kv_p11_obj_handle(CK_SLOT_ID slot, const char *name, CK_OBJECT_CLASS cls)
{
    kv_p11_obj *o;
    size_t i;

    for (i = 0; i < kv_p11_module.nobjs; i++) {
        o = &kv_p11_module.objs[i];
        if (o->slot == slot && o->cls == cls && strcasecmp(o->name, name) == 0)
            return (CK_OBJECT_HANDLE)(i + 1);
    }
    if (kv_p11_module.nobjs == kv_p11_module.capobjs) {
        size_t cap = kv_p11_module.capobjs ? 2 * kv_p11_module.capobjs : 64;
        kv_p11_obj *no = realloc(kv_p11_module.objs, cap * sizeof(*no));

        if (no == NULL)
            return CK_INVALID_HANDLE;
        kv_p11_module.objs = no;
        kv_p11_module.capobjs = cap;
    }
    o = &kv_p11_module.objs[kv_p11_module.nobjs++];
    memset(o, 0, sizeof(*o));
    o->slot = slot;
    o->cls = cls;
    snprintf(o->name, sizeof(o->name), "%s", name);
    return (CK_OBJECT_HANDLE)kv_p11_module.nobjs;
}

CK_RV kv_p11_obj_lookup(CK_OBJECT_HANDLE h, kv_p11_obj *out)
{
    if (h == CK_INVALID_HANDLE || h > kv_p11_module.nobjs)
        return CKR_OBJECT_HANDLE_INVALID;
    *out = kv_p11_module.objs[h - 1];
    return CKR_OK;
}

void kv_p11_objs_free(void)
{
    free(kv_p11_module.objs);
    kv_p11_module.objs = NULL;
    kv_p11_module.nobjs = kv_p11_module.capobjs = 0;
}

CK_RV kv_p11_obj_kdata(const char *fn, CK_SLOT_ID slot, CK_OBJECT_HANDLE h, kv_p11_op op,
                       kv_p11_obj *obj, kv_p11_kdata **out)
{
    CK_RV rv;
    kv_err err;
    kv_rv krv;

    *out = NULL;
    kv_err_clear(&err);
    kv_p11_lock();
    rv = kv_p11_obj_lookup(h, obj);
    kv_p11_unlock();
    if (rv == CKR_OK && obj->slot != slot)
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv == CKR_OK && obj->cls != CKO_PRIVATE_KEY && obj->cls != CKO_PUBLIC_KEY &&
        obj->cls != CKO_SECRET_KEY)
        rv = CKR_OBJECT_HANDLE_INVALID; /* a certificate or data object: no key behind it */
    if (rv != CKR_OK)
        return op == KV_P11_OP_KEY ? CKR_KEY_HANDLE_INVALID : rv;
    krv = kv_p11_slot_fetch_key(slot, obj->name, out, &err);
    if (krv != KV_OK)
        return kv_p11_rv_log(fn, &err, krv, op == KV_P11_OP_KEY ? op : KV_P11_OP_OBJECT);
    return CKR_OK;
}

/* ---- attributes ---- */

static const CK_MECHANISM_TYPE kv_p11_rsa_mechs[] = {
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
};
static const CK_MECHANISM_TYPE kv_p11_ec_mechs[] = {
    CKM_ECDSA,        CKM_ECDSA_SHA1,   CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512,
};

bool kv_p11_tm_date(const struct tm *tm, CK_BYTE out[8])
{
    char buf[32];

    if (strftime(buf, sizeof(buf), "%Y%m%d", tm) != 8)
        return false;
    memcpy(out, buf, 8);
    return true;
}

bool kv_p11_ck_date(long long t, CK_BYTE out[8])
{
    struct tm tm;
    time_t tt = (time_t)t;

    return t > 0 && gmtime_r(&tt, &tm) != NULL && kv_p11_tm_date(&tm, out);
}

/* Attributes of the private key object only (kv_p11_attr). */
static CK_RV kv_p11_priv_attr(const kv_p11_kdata *kd, CK_ATTRIBUTE_TYPE type, const void **value,
                              CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    const bool rsa = kd->key_type == CKK_RSA;
    const kv_key *k = kd->key;

    switch (type) {
    case CKA_SENSITIVE:
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_ALWAYS_SENSITIVE: /* false for imported keys: they were outside the vault */
        KV_P11_SET_BOOL(!k->imported);
        return CKR_OK;
    case CKA_NEVER_EXTRACTABLE: /* also false for a local pool's keys: they leave a member
                                 * wrapped under the pool wrapping key (replication) */
        KV_P11_SET_BOOL(!k->imported && !k->wrappable);
        return CKR_OK;
    case CKA_SIGN:
    case CKA_DECRYPT: /* p11_decrypt.c / p11_wrap.c: RSA keys whose key_ops allow it */
    case CKA_UNWRAP:
        KV_P11_SET_BOOL((rsa || type == CKA_SIGN) && (k->key_ops & kv_p11_usage_op(type)) != 0);
        return CKR_OK;
    case CKA_EXTRACTABLE:
    case CKA_SIGN_RECOVER:
    case CKA_WRAP_WITH_TRUSTED:
    case CKA_ALWAYS_AUTHENTICATE:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    case CKA_PRIVATE_EXPONENT:
    case CKA_PRIME_1:
    case CKA_PRIME_2:
    case CKA_EXPONENT_1:
    case CKA_EXPONENT_2:
    case CKA_COEFFICIENT:
        return rsa ? CKR_ATTRIBUTE_SENSITIVE : CKR_ATTRIBUTE_TYPE_INVALID;
    case CKA_VALUE:
        return CKR_ATTRIBUTE_SENSITIVE;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

/* Attributes of the public key object only (kv_p11_attr). */
static CK_RV kv_p11_pub_attr(const kv_p11_kdata *kd, CK_ATTRIBUTE_TYPE type, const void **value,
                             CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    const bool rsa = kd->key_type == CKK_RSA;
    const kv_key *k = kd->key;

    switch (type) {
    case CKA_VERIFY:
    case CKA_ENCRYPT: /* p11_encrypt.c / p11_wrap.c: RSA keys whose key_ops allow it */
    case CKA_WRAP:
        KV_P11_SET_BOOL((rsa || type == CKA_VERIFY) && (k->key_ops & kv_p11_usage_op(type)) != 0);
        return CKR_OK;
    case CKA_VERIFY_RECOVER:
    case CKA_TRUSTED:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

CK_RV kv_p11_attr(const kv_p11_kdata *kd, CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type,
                  const void **value, CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    const bool priv = cls == CKO_PRIVATE_KEY;
    const bool rsa = kd->key_type == CKK_RSA;
    const kv_key *k = kd->key;

    if (kd->key_type == CKK_AES)
        return cls == CKO_SECRET_KEY ? kv_p11_secret_attr(kd, type, value, len, scratch)
                                     : CKR_ATTRIBUTE_TYPE_INVALID;
    if (cls == CKO_SECRET_KEY)
        return CKR_ATTRIBUTE_TYPE_INVALID;
    *value = NULL;
    *len = 0;
    switch (type) {
    /* common to both objects */
    case CKA_CLASS:
        KV_P11_SET_ULONG(cls);
        return CKR_OK;
    case CKA_TOKEN:
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_LOCAL: /* generated in the vault, not imported (p11_create.c) */
        KV_P11_SET_BOOL(!k->imported);
        return CKR_OK;
    case CKA_MODIFIABLE: /* key_ops, dates, enabled (p11_objmod.c) */
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_DESTROYABLE: /* the private key object deletes the vault key (p11_objmod.c) */
        KV_P11_SET_BOOL(priv);
        return CKR_OK;
    case CKA_KVAULT_ENABLED:
        KV_P11_SET_BOOL(k->enabled);
        return CKR_OK;
    case CKA_KVAULT_HSM:
        KV_P11_SET_BOOL(k->hsm);
        return CKR_OK;
    case CKA_PRIVATE:
        KV_P11_SET_BOOL(priv);
        return CKR_OK;
    case CKA_COPYABLE:
    case CKA_DERIVE:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    case CKA_LABEL: /* the key name, or "NAME/VERSION" (p11_versions.c) */
        KV_P11_SET_BYTES(kv_p11_kdata_label(kd), strlen(kv_p11_kdata_label(kd)));
        return CKR_OK;
    case CKA_ID:
        KV_P11_SET_BYTES(kd->id, KV_P11_ID_LEN);
        return CKR_OK;
    case CKA_KEY_TYPE:
        KV_P11_SET_ULONG(kd->key_type);
        return CKR_OK;
    case CKA_KEY_GEN_MECHANISM:
        KV_P11_SET_ULONG(rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN);
        return CKR_OK;
    case CKA_START_DATE:
        if (kv_p11_ck_date(k->nbf, scratch))
            KV_P11_SET_BYTES(scratch, 8);
        return CKR_OK; /* empty when unset */
    case CKA_END_DATE:
        if (kv_p11_ck_date(k->exp, scratch))
            KV_P11_SET_BYTES(scratch, 8);
        return CKR_OK;
    case CKA_SUBJECT:
        KV_P11_SET_BYTES(scratch, 0);
        return CKR_OK;
    case CKA_ALLOWED_MECHANISMS:
        if (rsa)
            KV_P11_SET_BYTES(kv_p11_rsa_mechs, sizeof(kv_p11_rsa_mechs));
        else
            KV_P11_SET_BYTES(kv_p11_ec_mechs, sizeof(kv_p11_ec_mechs));
        return CKR_OK;
    case CKA_PUBLIC_KEY_INFO:
        KV_P11_SET_BYTES(kd->spki, kd->spki_len);
        return CKR_OK;
    case CKA_MODULUS:
        if (!rsa)
            break;
        KV_P11_SET_BYTES(kd->modulus, kd->modulus_len);
        return CKR_OK;
    case CKA_MODULUS_BITS:
        if (!rsa)
            break;
        KV_P11_SET_ULONG(kd->modulus_bits);
        return CKR_OK;
    case CKA_PUBLIC_EXPONENT:
        if (!rsa)
            break;
        KV_P11_SET_BYTES(kd->pub_exp, kd->pub_exp_len);
        return CKR_OK;
    case CKA_EC_PARAMS:
        if (rsa)
            break;
        KV_P11_SET_BYTES(kd->ec_params, kd->ec_params_len);
        return CKR_OK;
    case CKA_EC_POINT:
        if (rsa)
            break;
        KV_P11_SET_BYTES(kd->ec_point, kd->ec_point_len);
        return CKR_OK;
    default:
        break;
    }
    return priv ? kv_p11_priv_attr(kd, type, value, len, scratch)
                : kv_p11_pub_attr(kd, type, value, len, scratch);
}

bool kv_p11_attr_matches(const CK_ATTRIBUTE *a, CK_RV r, const void *v, CK_ULONG len)
{
    return r == CKR_OK && a->ulValueLen == len &&
           (len == 0 || (a->pValue != NULL && memcmp(a->pValue, v, len) == 0));
}

CK_RV kv_p11_attr_copy(CK_ATTRIBUTE *a, CK_RV r, const void *v, CK_ULONG len)
{
    if (r == CKR_OK && a->pValue != NULL) {
        if (a->ulValueLen < len)
            r = CKR_BUFFER_TOO_SMALL;
        else if (len > 0)
            memcpy(a->pValue, v, len);
    }
    a->ulValueLen = r == CKR_OK ? len : CK_UNAVAILABLE_INFORMATION;
    return r;
}

/* Where the attribute values of one object come from. */
typedef struct kv_p11_attr_src {
    CK_OBJECT_CLASS cls;
    const kv_p11_kdata *kd;  /* key objects */
    const kv_p11_cert *cert; /* CKO_CERTIFICATE */
    const char *data_name;   /* CKO_DATA */
    const char *data_value;  /* CKO_DATA: CKA_VALUE once fetched */
    size_t data_len;
} kv_p11_attr_src;

static CK_RV kv_p11_src_attr(const kv_p11_attr_src *src, CK_ATTRIBUTE_TYPE type, const void **v,
                             CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    if (src->cert != NULL)
        return kv_p11_cert_attr(src->cert, type, v, len, scratch);
    if (src->data_name != NULL) {
        if (type == CKA_VALUE && src->data_value != NULL) {
            *v = src->data_value;
            *len = (CK_ULONG)src->data_len;
            return CKR_OK;
        }
        return kv_p11_data_attr(src->data_name, type, v, len, scratch);
    }
    return kv_p11_attr(src->kd, src->cls, type, v, len, scratch);
}

/* Resolves a certificate or data object of the slot (without the lock; may read the vault).
 * Data objects need the token logged in. */
static CK_RV kv_p11_obj_nonkey(CK_SLOT_ID slot, const kv_p11_obj *obj, kv_p11_odata **od,
                               kv_p11_attr_src *src)
{
    kv_p11_slot *s;
    bool logged_in = false;
    kv_err err;
    kv_rv krv;

    kv_err_clear(&err);
    if (obj->cls == CKO_CERTIFICATE) {
        krv = kv_p11_slot_certs(slot, od, &err);
        if (krv != KV_OK)
            return kv_p11_rv_log("C_GetAttributeValue", &err, krv, KV_P11_OP_OBJECT);
        src->cert = kv_p11_cert_find(*od, obj->name);
        return src->cert != NULL ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
    }
    kv_p11_lock();
    s = kv_p11_slot_get(slot);
    if (s != NULL)
        logged_in = s->logged_in;
    kv_p11_unlock();
    if (!logged_in)
        return CKR_OBJECT_HANDLE_INVALID; /* a private object is not visible without login */
    krv = kv_p11_slot_secrets(slot, od, &err);
    if (krv != KV_OK)
        return kv_p11_rv_log("C_GetAttributeValue", &err, krv, KV_P11_OP_OBJECT);
    if (!kv_p11_data_has(*od, obj->name))
        return CKR_OBJECT_HANDLE_INVALID;
    src->data_name = obj->name;
    return CKR_OK;
}

CK_RV kv_p11_get_attribute_value(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG count)
{
    CK_BYTE scratch[KV_P11_SCRATCH];
    kv_p11_kdata *kd = NULL;
    kv_p11_odata *od = NULL;
    kv_p11_attr_src src;
    char *secret = NULL;
    kv_p11_obj obj;
    CK_SLOT_ID slot;
    CK_RV rv, r;
    CK_ULONG i;

    memset(&src, 0, sizeof(src));
    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    if (tmpl == NULL && count > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    if (KV_P11_IS_SOBJ(ho)) { /* a module session object (p11_secret.c) */
        rv = kv_p11_sobj_get_attributes(slot, ho, tmpl, count);
        goto done;
    }
    kv_p11_lock();
    rv = kv_p11_obj_lookup(ho, &obj);
    kv_p11_unlock();
    if (rv == CKR_OK && obj.slot != slot)
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv != CKR_OK)
        goto done;
    src.cls = obj.cls;
    if (obj.cls == CKO_CERTIFICATE || obj.cls == CKO_DATA) {
        rv = kv_p11_obj_nonkey(slot, &obj, &od, &src);
        if (rv != CKR_OK)
            goto done;
        for (i = 0; obj.cls == CKO_DATA && i < count; i++) {
            if (tmpl[i].type == CKA_VALUE) { /* read lazily, only when asked for */
                rv = kv_p11_data_value(slot, obj.name, &secret, &src.data_len);
                if (rv != CKR_OK)
                    goto done;
                src.data_value = secret;
                break;
            }
        }
    } else {
        rv = kv_p11_obj_kdata("C_GetAttributeValue", slot, ho, KV_P11_OP_OBJECT, &obj, &kd);
        if (rv != CKR_OK)
            goto done;
        src.kd = kd;
    }
    for (i = 0; i < count; i++) {
        const void *v;
        CK_ULONG len;

        r = kv_p11_src_attr(&src, tmpl[i].type, &v, &len, scratch);
        r = kv_p11_attr_copy(&tmpl[i], r, v, len);
        if (r != CKR_OK && rv == CKR_OK)
            rv = r;
    }

done:
    if (secret != NULL) {
        OPENSSL_cleanse(secret, src.data_len);
        free(secret);
    }
    kv_p11_odata_unref(od);
    kv_p11_kdata_unref(kd);
    kv_p11_leave();
    return rv;
}

CK_RV kv_p11_get_object_size(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, CK_ULONG_PTR size)
{
    kv_p11_obj obj;
    CK_SLOT_ID slot;
    CK_RV rv;

    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    kv_p11_lock();
    rv = kv_p11_obj_lookup(ho, &obj);
    kv_p11_unlock();
    if (rv != CKR_OK && KV_P11_IS_SOBJ(ho)) { /* a module session object */
        kv_p11_sobj so;

        rv = kv_p11_sobj_copy(slot, ho, &so);
        kv_p11_sobj_clear(&so);
        obj.slot = slot;
    }
    if (rv == CKR_OK && obj.slot != slot)
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv == CKR_OK && size == NULL)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        *size = CK_UNAVAILABLE_INFORMATION; /* the key lives in the vault */
    kv_p11_leave();
    return rv;
}
