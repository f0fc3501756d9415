/* kv_jwk.c - JWK public keys <-> EVP_PKEY via OSSL_PARAM (no deprecated low-level APIs). */
#include "kv_jwk.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "kv_b64.h"

/* Key types are fetched by their OID names (aliases of "RSA" and "EC" in the default
 * provider): OpenSSL 3.0 looks the short names up in the ENGINE table first, so a host that
 * made an engine the default (openssl -engine pkcs11, libp11) would otherwise receive
 * kvault's public-key imports and fail them, even in kvault's own library context. */
#define KV_KEYMGMT_RSA "1.2.840.113549.1.1.1" /* rsaEncryption */
#define KV_KEYMGMT_EC "1.2.840.10045.2.1"     /* id-ecPublicKey */

static const struct {
    int nid;
    const char *jwk;
    const char *group;
    int bits;
} kv_curves[] = {
    {NID_X9_62_prime256v1, "P-256", "prime256v1", 256},
    {NID_secp384r1, "P-384", "secp384r1", 384},
    {NID_secp521r1, "P-521", "secp521r1", 521},
    {NID_secp256k1, "P-256K", "secp256k1", 256},
};

int kv_curve_nid_from_name(const char *crv)
{
    size_t i;

    if (crv == NULL)
        return NID_undef;
    for (i = 0; i < sizeof(kv_curves) / sizeof(kv_curves[0]); i++)
        if (strcmp(kv_curves[i].jwk, crv) == 0 || strcmp(kv_curves[i].group, crv) == 0)
            return kv_curves[i].nid;
    if (strcmp(crv, "SECP256K1") == 0)
        return NID_secp256k1;
    return NID_undef;
}

const char *kv_curve_name_from_nid(int nid)
{
    size_t i;

    for (i = 0; i < sizeof(kv_curves) / sizeof(kv_curves[0]); i++)
        if (kv_curves[i].nid == nid)
            return kv_curves[i].jwk;
    return NULL;
}

const char *kv_curve_group_from_nid(int nid)
{
    size_t i;

    for (i = 0; i < sizeof(kv_curves) / sizeof(kv_curves[0]); i++)
        if (kv_curves[i].nid == nid)
            return kv_curves[i].group;
    return NULL;
}

static const struct {
    unsigned bit;
    const char *name;
} kv_ops[] = {
    {KV_OP_SIGN, "sign"},       {KV_OP_VERIFY, "verify"}, {KV_OP_ENCRYPT, "encrypt"},
    {KV_OP_DECRYPT, "decrypt"}, {KV_OP_WRAP, "wrapKey"},  {KV_OP_UNWRAP, "unwrapKey"},
};

unsigned kv_key_ops_from_json(const json_t *arr)
{
    unsigned ops = 0;
    size_t i, j;
    json_t *v;

    if (!json_is_array(arr))
        return 0;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        for (j = 0; s != NULL && j < sizeof(kv_ops) / sizeof(kv_ops[0]); j++)
            if (strcmp(s, kv_ops[j].name) == 0)
                ops |= kv_ops[j].bit;
    }
    return ops;
}

json_t *kv_key_ops_to_json(unsigned ops)
{
    json_t *arr = json_array();
    size_t j;

    for (j = 0; arr != NULL && j < sizeof(kv_ops) / sizeof(kv_ops[0]); j++)
        if (ops & kv_ops[j].bit)
            json_array_append_new(arr, json_string(kv_ops[j].name));
    return arr;
}

/* Decodes a base64url member into a BIGNUM or raw bytes. */
static kv_rv get_b64(const json_t *jwk, const char *member, uint8_t **out, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, member));

    if (s == NULL)
        return KV_ERR_INVALID_ARG;
    return kv_b64_decode(s, out, len);
}

static kv_rv rsa_from_jwk(OSSL_LIB_CTX *libctx, const char *propq, const json_t *jwk,
                          EVP_PKEY **out, int *bits, kv_err *err)
{
    uint8_t *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (get_b64(jwk, "n", &n, &nlen) != KV_OK || get_b64(jwk, "e", &e, &elen) != KV_OK ||
        nlen < 64 || nlen > 2048 || elen == 0 || elen > 8) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault returned an RSA key without a valid n/e");
        goto done;
    }
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    pctx = EVP_PKEY_CTX_new_from_name(libctx, KV_KEYMGMT_RSA, propq);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot build an RSA public key");
        goto done;
    }
    if (bits != NULL)
        *bits = BN_num_bits(bn_n);
    rv = KV_OK;
done:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return rv;
}

static kv_rv ec_from_jwk(OSSL_LIB_CTX *libctx, const char *propq, const json_t *jwk, EVP_PKEY **out,
                         int *curve_nid, int *bits, kv_err *err)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    int nid = kv_curve_nid_from_name(crv);
    uint8_t *x = NULL, *y = NULL, *pt = NULL;
    size_t xlen = 0, ylen = 0, flen = 0, i;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *pctx = NULL;
    kv_rv rv = KV_ERR_INVALID_ARG;

    for (i = 0; i < sizeof(kv_curves) / sizeof(kv_curves[0]); i++)
        if (kv_curves[i].nid == nid)
            flen = ((size_t)kv_curves[i].bits + 7) / 8;
    if (flen == 0) {
        rv = kv_err_set(err, KV_ERR_UNSUPPORTED, "unsupported EC curve '%s'",
                        crv != NULL ? crv : "(none)");
        goto done;
    }
    if (get_b64(jwk, "x", &x, &xlen) != KV_OK || get_b64(jwk, "y", &y, &ylen) != KV_OK ||
        xlen > flen || ylen > flen) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault returned an EC key without a valid x/y");
        goto done;
    }
    pt = calloc(1, 1 + 2 * flen);
    if (pt == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    pt[0] = 0x04;
    memcpy(pt + 1 + flen - xlen, x, xlen);
    memcpy(pt + 1 + 2 * flen - ylen, y, ylen);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)kv_curve_group_from_nid(nid), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * flen);
    params[2] = OSSL_PARAM_construct_end();
    pctx = EVP_PKEY_CTX_new_from_name(libctx, KV_KEYMGMT_EC, propq);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        rv = kv_err_set(err, KV_ERR_SERVER, "vault returned an EC point not on curve %s", crv);
        goto done;
    }
    if (curve_nid != NULL)
        *curve_nid = nid;
    if (bits != NULL)
        *bits = EVP_PKEY_get_bits(*out);
    rv = KV_OK;
done:
    EVP_PKEY_CTX_free(pctx);
    free(pt);
    free(x);
    free(y);
    return rv;
}

kv_rv kv_jwk_to_public_pkey(OSSL_LIB_CTX *libctx, const char *propq, const json_t *jwk,
                            EVP_PKEY **out, kv_kty *kty, int *curve_nid, int *bits, int *hsm,
                            kv_err *err)
{
    const char *t;
    int is_hsm = 0;
    kv_rv rv;

    if (!json_is_object(jwk) || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no JWK");
    *out = NULL;
    t = json_string_value(json_object_get(jwk, "kty"));
    if (t == NULL)
        return kv_err_set(err, KV_ERR_SERVER, "JWK without kty");
    if (strcmp(t, "RSA-HSM") == 0 || strcmp(t, "EC-HSM") == 0 || strcmp(t, "oct-HSM") == 0)
        is_hsm = 1;
    if (strncmp(t, "RSA", 3) == 0 && (t[3] == '\0' || is_hsm)) {
        rv = rsa_from_jwk(libctx, propq, jwk, out, bits, err);
        if (kty != NULL)
            *kty = KV_KTY_RSA;
        if (curve_nid != NULL)
            *curve_nid = 0;
    } else if (strncmp(t, "EC", 2) == 0 && (t[2] == '\0' || is_hsm)) {
        rv = ec_from_jwk(libctx, propq, jwk, out, curve_nid, bits, err);
        if (kty != NULL)
            *kty = KV_KTY_EC;
    } else {
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "unsupported key type '%s'", t);
    }
    if (rv == KV_OK && hsm != NULL)
        *hsm = is_hsm;
    return rv;
}

static int set_bn_member(json_t *obj, const char *member, const BIGNUM *bn, size_t padto)
{
    size_t len = (size_t)BN_num_bytes(bn);
    uint8_t *buf;
    char *s;
    int ok = 0;

    if (padto > len)
        len = padto;
    buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 0;
    if (BN_bn2binpad(bn, buf, (int)len) < 0)
        goto done;
    s = kv_b64url_encode(buf, len);
    if (s != NULL) {
        ok = json_object_set_new(obj, member, json_string(s)) == 0;
        free(s);
    }
done:
    free(buf);
    return ok;
}

json_t *kv_jwk_from_public_pkey(const EVP_PKEY *pkey, int hsm)
{
    json_t *jwk = json_object();
    BIGNUM *a = NULL, *b = NULL;
    char group[64];
    int ok = 0;

    if (jwk == NULL || pkey == NULL)
        goto done;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &a) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b))
            goto done;
        json_object_set_new(jwk, "kty", json_string(hsm ? "RSA-HSM" : "RSA"));
        ok = set_bn_member(jwk, "n", a, 0) && set_bn_member(jwk, "e", b, 0);
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        size_t flen;
        int nid;

        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b))
            goto done;
        nid = OBJ_txt2nid(group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(group);
        if (kv_curve_name_from_nid(nid) == NULL)
            goto done;
        flen = ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8;
        json_object_set_new(jwk, "kty", json_string(hsm ? "EC-HSM" : "EC"));
        json_object_set_new(jwk, "crv", json_string(kv_curve_name_from_nid(nid)));
        ok = set_bn_member(jwk, "x", a, flen) && set_bn_member(jwk, "y", b, flen);
    }
done:
    BN_free(a);
    BN_free(b);
    if (!ok) {
        json_decref(jwk);
        return NULL;
    }
    return jwk;
}
