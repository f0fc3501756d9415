/* p11_create.c - C_CreateObject on a vault slot:
 * - CKO_PRIVATE_KEY (BYOK): an RSA (CKA_MODULUS .. CKA_COEFFICIENT, CRT form) or EC
 *   (CKA_EC_PARAMS + CKA_VALUE; the public point is computed) private key becomes an EVP_PKEY
 *   and is imported into the vault (kv_vault_import_key) under CKA_LABEL; every copy of the key
 *   material kvault makes is zeroised. The new key reads CKA_LOCAL, CKA_ALWAYS_SENSITIVE and
 *   CKA_NEVER_EXTRACTABLE false (kv_key.imported).
 * - CKO_CERTIFICATE (CKC_X_509, CKA_VALUE = DER, CKA_LABEL = certificate name): a vault binds
 *   certificates to keys only through a pending certificate operation (Azure's flow: create the
 *   certificate with issuer "Unknown", have the CSR signed elsewhere, merge). kvault merges the
 *   certificate into the pending operation of that name (POST /certificates/NAME/pending/merge);
 *   without one, or when the certificate does not match its key, the vault refuses and the
 *   answer is CKR_ATTRIBUTE_VALUE_INVALID.
 * - CKO_SECRET_KEY: p11_secret.c (kv_p11_secret_create).
 * Other classes (public keys alone, data objects): CKR_ATTRIBUTE_VALUE_INVALID. */
#include "p11_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "kv_b64.h"

/* RSA private key components, in template order of appearance. */
static const struct {
    CK_ATTRIBUTE_TYPE type;
    const char *param;
} kv_p11_rsa_parts[] = {
    {CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N},
    {CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E},
    {CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},
    {CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
    {CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},
    {CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
    {CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2},
    {CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
};
#define KV_P11_NRSA (sizeof(kv_p11_rsa_parts) / sizeof(kv_p11_rsa_parts[0]))

/* What a private key template holds. */
typedef struct kv_p11_import_req {
    CK_KEY_TYPE kt;
    bool has_kt;
    char name[128];
    bool has_name;
    const CK_ATTRIBUTE *id;
    const CK_ATTRIBUTE *rsa[KV_P11_NRSA];
    const CK_ATTRIBUTE *ec_params, *ec_value;
    bool hsm;
    unsigned ops;
    bool has_ops;
    long long nbf, exp;
} kv_p11_import_req;

static CK_RV kv_p11_import_attr(const CK_ATTRIBUTE *a, kv_p11_import_req *r)
{
    CK_ULONG u;
    bool b = false;
    size_t i;
    CK_RV rv;

    for (i = 0; i < KV_P11_NRSA; i++) {
        if (a->type == kv_p11_rsa_parts[i].type) {
            if (a->pValue == NULL || a->ulValueLen == 0 || a->ulValueLen > 1024)
                return CKR_ATTRIBUTE_VALUE_INVALID;
            r->rsa[i] = a;
            return CKR_OK;
        }
    }
    switch (a->type) {
    case CKA_CLASS:
        return CKR_OK; /* checked by the caller */
    case CKA_KEY_TYPE:
        rv = kv_p11_tmpl_ulong(a, &u);
        if (rv != CKR_OK)
            return rv;
        if (u != CKK_RSA && u != CKK_EC)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        r->kt = u;
        r->has_kt = true;
        return CKR_OK;
    case CKA_LABEL:
        rv = kv_p11_tmpl_name(a, r->name);
        r->has_name = rv == CKR_OK;
        return rv;
    case CKA_ID:
        r->id = a;
        return CKR_OK;
    case CKA_EC_PARAMS:
        r->ec_params = a;
        return CKR_OK;
    case CKA_VALUE:
        if (a->pValue == NULL || a->ulValueLen == 0 || a->ulValueLen > 66)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        r->ec_value = a;
        return CKR_OK;
    case CKA_EC_POINT: /* recomputed from the private value */
    case CKA_SUBJECT:
    case CKA_ALLOWED_MECHANISMS:
        return CKR_OK;
    case CKA_START_DATE:
    case CKA_END_DATE:
        if (a->ulValueLen == 0)
            return CKR_OK;
        return kv_p11_tmpl_date(a, a->type == CKA_END_DATE,
                                a->type == CKA_END_DATE ? &r->exp : &r->nbf);
    case CKA_LOCAL:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_NEVER_EXTRACTABLE:
    case CKA_KEY_GEN_MECHANISM:
        return CKR_ATTRIBUTE_READ_ONLY;
    default:
        break;
    }
    rv = kv_p11_tmpl_bool(a, &b);
    switch (a->type) {
    case CKA_TOKEN:
    case CKA_PRIVATE:
    case CKA_SENSITIVE:
        return rv != CKR_OK ? rv : (b ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID);
    case CKA_EXTRACTABLE:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_WRAP_WITH_TRUSTED:
        return rv != CKR_OK ? rv : (b ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_OK);
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
    case CKA_DERIVE:
    case CKA_SIGN_RECOVER:
        return rv; /* ignored, as for generated keys (p11_keygen.c) */
    case CKA_KVAULT_HSM:
        if (rv == CKR_OK && b)
            r->hsm = true;
        return rv;
    case CKA_SIGN:
    case CKA_DECRYPT:
    case CKA_UNWRAP:
        if (rv != CKR_OK)
            return rv;
        r->has_ops = true;
        if (b)
            r->ops |= a->type == CKA_SIGN      ? KV_OP_SIGN | KV_OP_VERIFY
                      : a->type == CKA_DECRYPT ? KV_OP_DECRYPT | KV_OP_ENCRYPT
                                               : KV_OP_UNWRAP | KV_OP_WRAP;
        return CKR_OK;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

/* A big number from template bytes, in secure memory. */
static BIGNUM *kv_p11_bn(const CK_ATTRIBUTE *a)
{
    BIGNUM *bn = BN_secure_new();

    if (bn != NULL && BN_bin2bn(a->pValue, (int)a->ulValueLen, bn) == NULL) {
        BN_clear_free(bn);
        bn = NULL;
    }
    return bn;
}

static CK_RV kv_p11_rsa_pkey(const kv_p11_import_req *r, EVP_PKEY **out)
{
    OSSL_LIB_CTX *libctx = kv_ctx_libctx(kv_p11_module.ctx);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    BIGNUM *bn[KV_P11_NRSA] = {NULL};
    size_t i;
    CK_RV rv = CKR_OK;

    if (bld == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    for (i = 0; i < KV_P11_NRSA; i++) {
        if (r->rsa[i] == NULL) {
            rv = CKR_TEMPLATE_INCOMPLETE; /* the vault takes keys in CRT form only */
            goto done;
        }
        bn[i] = kv_p11_bn(r->rsa[i]);
        if (bn[i] == NULL || OSSL_PARAM_BLD_push_BN(bld, kv_p11_rsa_parts[i].param, bn[i]) != 1) {
            rv = CKR_HOST_MEMORY;
            goto done;
        }
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(libctx, "RSA", NULL);
    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, out, EVP_PKEY_KEYPAIR, params) != 1) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto done;
    }
done:
    for (i = 0; i < KV_P11_NRSA; i++)
        BN_clear_free(bn[i]);
    OSSL_PARAM_free(params); /* secure BNs: their block is cleansed */
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);
    return rv;
}

static CK_RV kv_p11_ec_pkey(const kv_p11_import_req *r, EVP_PKEY **out)
{
    OSSL_LIB_CTX *libctx = kv_ctx_libctx(kv_p11_module.ctx);
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EC_GROUP *group = NULL;
    EC_POINT *pub = NULL;
    BIGNUM *d = NULL;
    unsigned char point[160];
    size_t plen;
    int nid;
    CK_RV rv = CKR_OK;

    if (r->ec_params == NULL || r->ec_value == NULL)
        return CKR_TEMPLATE_INCOMPLETE;
    nid = kv_p11_tmpl_curve(r->ec_params);
    if (nid == NID_undef)
        return CKR_CURVE_NOT_SUPPORTED;
    group = EC_GROUP_new_by_curve_name_ex(libctx, NULL, nid);
    d = kv_p11_bn(r->ec_value);
    bld = OSSL_PARAM_BLD_new();
    if (group == NULL || d == NULL || bld == NULL || (pub = EC_POINT_new(group)) == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(group)) >= 0 ||
        EC_POINT_mul(group, pub, d, NULL, NULL, NULL) != 1 ||
        (plen = EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point),
                                   NULL)) == 0) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto done;
    }
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(nid), 0) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, plen) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    pctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", NULL);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, out, EVP_PKEY_KEYPAIR, params) != 1)
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
done:
    OSSL_PARAM_free(params); /* secure BNs: their block is cleansed */
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);
    EC_POINT_free(pub);
    EC_GROUP_free(group);
    BN_clear_free(d);
    return rv;
}

/* Whether the components form one key pair (a cheap pairwise check). */
static bool kv_p11_pkey_consistent(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(kv_ctx_libctx(kv_p11_module.ctx), pkey, NULL);
    bool ok = c != NULL && EVP_PKEY_pairwise_check(c) == 1;

    EVP_PKEY_CTX_free(c);
    return ok;
}

static CK_RV kv_p11_import_private(kv_p11_session *s, kv_p11_slot *slot, CK_ATTRIBUTE_PTR tmpl,
                                   CK_ULONG count, CK_OBJECT_HANDLE_PTR ph)
{
    kv_p11_import_req r;
    kv_key_import_params ip;
    EVP_PKEY *pkey = NULL;
    kv_key *k = NULL;
    kv_err err;
    kv_rv krv;
    CK_ULONG i;
    CK_RV rv = CKR_OK;

    kv_err_clear(&err);
    memset(&r, 0, sizeof(r));
    r.nbf = r.exp = KV_KEEP;
    for (i = 0; i < count && rv == CKR_OK; i++)
        rv = kv_p11_import_attr(&tmpl[i], &r);
    if (rv != CKR_OK)
        goto done;
    if (!r.has_kt || !r.has_name) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto done;
    }
    if ((r.kt == CKK_RSA && (r.ec_params != NULL || r.ec_value != NULL)) ||
        (r.kt == CKK_EC && (r.rsa[0] != NULL || r.rsa[2] != NULL))) {
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto done;
    }
    if (kv_p11_tmpl_id(slot->name, r.name, r.id) != CKR_OK) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID; /* the vault keeps no IDs: kvault derives them */
        goto done;
    }
    if (r.has_ops && r.ops == 0) {
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto done;
    }
    rv = r.kt == CKK_RSA ? kv_p11_rsa_pkey(&r, &pkey) : kv_p11_ec_pkey(&r, &pkey);
    if (rv != CKR_OK)
        goto done;
    if (!kv_p11_pkey_consistent(pkey)) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto done;
    }
    if (r.kt == CKK_EC)
        r.ops &= KV_OP_SIGN | KV_OP_VERIFY;
    else if (EVP_PKEY_get_bits(pkey) != 2048 && EVP_PKEY_get_bits(pkey) != 3072 &&
             EVP_PKEY_get_bits(pkey) != 4096) {
        rv = CKR_KEY_SIZE_RANGE;
        goto done;
    }

    rv = kv_p11_write_check(s, true);
    if (rv != CKR_OK)
        goto done;

    rv = kv_p11_key_absent(slot, "C_CreateObject", r.name);
    if (rv != CKR_OK)
        goto done;
    memset(&ip, 0, sizeof(ip));
    ip.pkey = pkey;
    ip.hsm = r.hsm || kv_vault_has_oct(slot->vault);
    ip.key_ops = r.has_ops ? r.ops : 0;
    krv = kv_vault_import_key(slot->vault, r.name, &ip, &k, &err);
    if (krv != KV_OK) {
        rv = kv_p11_write_rv("C_CreateObject", &err, krv);
        goto done;
    }
    rv = kv_p11_key_finish(slot, "C_CreateObject", k, r.nbf, r.exp, NULL, ph);

done:
    EVP_PKEY_free(pkey); /* OpenSSL clears the private numbers */
    kv_key_unref(k);
    return rv;
}

/* ---- certificates ---- */

static CK_RV kv_p11_create_cert(kv_p11_session *s, kv_p11_slot *slot, CK_ATTRIBUTE_PTR tmpl,
                                CK_ULONG count, CK_OBJECT_HANDLE_PTR ph)
{
    const CK_ATTRIBUTE *value = NULL, *idattr = NULL;
    char name[128], path[200], *b64 = NULL;
    bool has_name = false, b;
    json_t *body = NULL, *resp = NULL;
    X509 *x = NULL;
    CK_ULONG i, u;
    kv_err err;
    kv_rv krv;
    CK_RV rv = CKR_OK;

    kv_err_clear(&err);
    for (i = 0; i < count && rv == CKR_OK; i++) {
        const CK_ATTRIBUTE *a = &tmpl[i];

        switch (a->type) {
        case CKA_CLASS:
            break;
        case CKA_CERTIFICATE_TYPE:
            rv = kv_p11_tmpl_ulong(a, &u);
            if (rv == CKR_OK && u != CKC_X_509)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            break;
        case CKA_VALUE:
            value = a;
            break;
        case CKA_LABEL:
            rv = kv_p11_tmpl_name(a, name);
            has_name = rv == CKR_OK;
            break;
        case CKA_ID:
            idattr = a;
            break;
        case CKA_TOKEN:
            rv = kv_p11_tmpl_bool(a, &b);
            if (rv == CKR_OK && !b)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            break;
        case CKA_PRIVATE:
        case CKA_TRUSTED:
            rv = kv_p11_tmpl_bool(a, &b);
            if (rv == CKR_OK && b)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            break;
        case CKA_MODIFIABLE:
        case CKA_COPYABLE:
        case CKA_DESTROYABLE:
            rv = kv_p11_tmpl_bool(a, &b);
            break;
        case CKA_SUBJECT: /* taken from the certificate itself */
        case CKA_ISSUER:
        case CKA_SERIAL_NUMBER:
        case CKA_CERTIFICATE_CATEGORY:
        case CKA_START_DATE:
        case CKA_END_DATE:
        case CKA_CHECK_VALUE:
            break;
        default:
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
            break;
        }
    }
    if (rv != CKR_OK)
        goto done;
    if (value == NULL || !has_name) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto done;
    }
    {
        const unsigned char *p = value->pValue;

        if (p == NULL || value->ulValueLen == 0 || value->ulValueLen > 65536 ||
            (x = d2i_X509(NULL, &p, (long)value->ulValueLen)) == NULL ||
            p != (const unsigned char *)value->pValue + value->ulValueLen) {
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
            goto done;
        }
    }
    if (kv_p11_tmpl_id(slot->name, name, idattr) != CKR_OK) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto done;
    }
    rv = kv_p11_write_check(s, true);
    if (rv != CKR_OK)
        goto done;
    /* x5c takes standard base64 */
    b64 = kv_b64_encode(value->pValue, value->ulValueLen);
    body = json_pack("{s:[s]}", "x5c", b64 != NULL ? b64 : "");
    if (b64 == NULL || body == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    snprintf(path, sizeof(path), "/certificates/%s/pending/merge", name);
    krv = kv_vault_request(slot->vault, "POST", path, body, &resp, NULL, &err);
    if (krv != KV_OK) {
        /* 404: no pending operation of that name; 400: not the certificate of its key */
        rv = kv_p11_write_rv("C_CreateObject", &err,
                             krv == KV_ERR_NOT_FOUND ? KV_ERR_BAD_REQUEST : krv);
        goto done;
    }
    kv_p11_lock();
    kv_p11_objcache_invalidate(slot);
    kv_p11_cache_remove(slot, name); /* the merge enables the certificate's key */
    slot->keys_listed_valid = false;
    *ph = kv_p11_obj_handle(s->slot, name, CKO_CERTIFICATE);
    kv_p11_unlock();
    if (*ph == CK_INVALID_HANDLE)
        rv = CKR_HOST_MEMORY;

done:
    X509_free(x);
    free(b64);
    json_decref(body);
    json_decref(resp);
    return rv;
}

/* ---- C_CreateObject ---- */

CK_RV kv_p11_create_object(CK_SESSION_HANDLE hs, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                           CK_OBJECT_HANDLE_PTR ph)
{
    kv_p11_session *s = NULL;
    kv_p11_slot *slot;
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    CK_ULONG i;
    CK_RV rv;

    for (i = 0; tmpl != NULL && i < count; i++) {
        if (tmpl[i].type == CKA_CLASS && tmpl[i].pValue != NULL &&
            tmpl[i].ulValueLen == sizeof(CK_OBJECT_CLASS))
            memcpy(&cls, tmpl[i].pValue, sizeof(cls));
    }
    if (cls == CKO_SECRET_KEY) /* AES keys and session objects: p11_secret.c */
        return kv_p11_secret_create(hs, tmpl, count, ph);
    rv = kv_p11_session_acquire(hs, 0, &s);
    if (rv != CKR_OK)
        return rv;
    if ((tmpl == NULL && count > 0) || ph == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    for (i = 0; i < count; i++) {
        if (tmpl[i].type == CKA_CLASS &&
            (tmpl[i].pValue == NULL || tmpl[i].ulValueLen != sizeof(CK_OBJECT_CLASS))) {
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
            goto done;
        }
    }
    rv = kv_p11_write_check(s, false);
    if (rv != CKR_OK)
        goto done;
    kv_p11_lock();
    slot = kv_p11_slot_get(s->slot);
    kv_p11_unlock();
    if (cls == (CK_OBJECT_CLASS)-1)
        rv = CKR_TEMPLATE_INCOMPLETE;
    else if (cls == CKO_PRIVATE_KEY)
        rv = kv_p11_import_private(s, slot, tmpl, count, ph);
    else if (cls == CKO_CERTIFICATE && !kv_vault_is_local_pool(slot->vault))
        rv = kv_p11_create_cert(s, slot, tmpl, count, ph);
    else
        rv = CKR_ATTRIBUTE_VALUE_INVALID; /* a class a vault cannot hold on its own */

done:
    kv_p11_session_release(s, 0);
    return rv;
}
