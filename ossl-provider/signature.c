/* signature.c - RSA (PKCS#1 v1.5, PSS) and ECDSA signatures with kvault keys. The digest is
 * computed locally (in the provider's private library context, never through kvault itself)
 * and the vault signs it: RS256/384/512, PS256/384/512 (salt = hash length), ES256/384/512/
 * ES256K, or RSNULL for caller-formatted PKCS#1 v1.5 input. ECDSA signatures come back as
 * raw r||s and are returned DER encoded. Verification is local, with the public key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kv_ecdsa.h"
#include "kv_prov.h"

#define KV_PROV_MAX_MDNAME 64
#define KV_PROV_MAX_AID 128
#define KV_PROV_MAX_DIGEST 64

typedef struct kv_prov_sig {
    kv_prov_ctx *pc;
    kv_kty kty; /* which algorithm this context implements */
    kv_prov_key *key;
    int operation; /* EVP_PKEY_OP_SIGN or EVP_PKEY_OP_VERIFY */

    /* digest */
    char mdname[KV_PROV_MAX_MDNAME]; /* "" = none set */
    int mdnid;
    size_t mdsize;
    int allow_md; /* 0 once a digest-sign operation has started hashing */
    EVP_MD *md;   /* for digest_sign/verify: fetched from the private context */
    EVP_MD_CTX *mdctx;

    /* RSA */
    int pad;                           /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;                       /* RSA_PSS_SALTLEN_* or a byte count */
    char mgf1name[KV_PROV_MAX_MDNAME]; /* "" = same as the signature digest */
    int mgf1nid;
} kv_prov_sig;

/* ---- context ---- */

static void *kv_prov_sig_newctx(void *provctx, const char *propq, kv_kty kty)
{
    kv_prov_ctx *pc = provctx;
    kv_prov_sig *s;

    (void)propq;
    s = OPENSSL_zalloc(sizeof(*s));
    if (s == NULL) {
        kv_prov_raise(pc, KV_PROV_R_NOMEM, "out of memory");
        return NULL;
    }
    s->pc = pc;
    s->kty = kty;
    s->allow_md = 1;
    s->pad = RSA_PKCS1_PADDING;
    s->saltlen = RSA_PSS_SALTLEN_AUTO;
    return s;
}

static void *kv_prov_rsa_sig_newctx(void *provctx, const char *propq)
{
    return kv_prov_sig_newctx(provctx, propq, KV_KTY_RSA);
}

static void *kv_prov_ecdsa_sig_newctx(void *provctx, const char *propq)
{
    return kv_prov_sig_newctx(provctx, propq, KV_KTY_EC);
}

static void kv_prov_sig_freectx(void *vctx)
{
    kv_prov_sig *s = vctx;

    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->mdctx);
    EVP_MD_free(s->md);
    kv_prov_key_unref(s->key);
    OPENSSL_free(s);
}

static void *kv_prov_sig_dupctx(void *vctx)
{
    kv_prov_sig *s = vctx, *d = NULL;

    if (s == NULL)
        return NULL;
    d = OPENSSL_memdup(s, sizeof(*s));
    if (d == NULL)
        goto fail;
    d->key = NULL;
    d->md = NULL;
    d->mdctx = NULL;
    if (s->md != NULL) {
        if (!EVP_MD_up_ref(s->md))
            goto fail;
        d->md = s->md;
    }
    if (s->mdctx != NULL) {
        d->mdctx = EVP_MD_CTX_new();
        if (d->mdctx == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, s->mdctx))
            goto fail;
    }
    d->key = kv_prov_key_ref(s->key);
    return d;
fail:
    kv_prov_sig_freectx(d);
    kv_prov_raise(s->pc, KV_PROV_R_NOMEM, "cannot duplicate the signature context");
    return NULL;
}

/* ---- digest selection ---- */

static int kv_prov_sig_set_md(kv_prov_sig *s, const char *name)
{
    OSSL_LIB_CTX *lc;
    EVP_MD *md = NULL;
    int ok = 0;

    if (name == NULL || name[0] == '\0') {
        s->mdname[0] = '\0';
        s->mdnid = NID_undef;
        s->mdsize = 0;
        return 1;
    }
    lc = kv_prov_get_hashctx(s->pc);
    if (lc == NULL)
        return 0;
    md = EVP_MD_fetch(lc, name, NULL);
    if (md == NULL) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST, "unknown digest %s", name);
        goto done;
    }
    if (EVP_MD_get_size(md) <= 0 || EVP_MD_get_size(md) > KV_PROV_MAX_DIGEST ||
        EVP_MD_get_type(md) == NID_undef) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST, "digest %s cannot be used for signing", name);
        goto done;
    }
    if (!s->allow_md && s->mdname[0] != '\0' && EVP_MD_get_type(md) != s->mdnid) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST,
                      "the digest cannot be changed once hashing has started");
        goto done;
    }
    snprintf(s->mdname, sizeof(s->mdname), "%s", EVP_MD_get0_name(md));
    s->mdnid = EVP_MD_get_type(md);
    s->mdsize = (size_t)EVP_MD_get_size(md);
    ok = 1;
done:
    EVP_MD_free(md);
    return ok;
}

static int kv_prov_sig_set_mgf1(kv_prov_sig *s, const char *name)
{
    OSSL_LIB_CTX *lc = kv_prov_get_hashctx(s->pc);
    EVP_MD *md;

    if (lc == NULL)
        return 0;
    md = EVP_MD_fetch(lc, name, NULL);
    if (md == NULL) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST, "unknown MGF1 digest %s", name);
        return 0;
    }
    snprintf(s->mgf1name, sizeof(s->mgf1name), "%s", EVP_MD_get0_name(md));
    s->mgf1nid = EVP_MD_get_type(md);
    EVP_MD_free(md);
    return 1;
}

/* ---- parameters ---- */

static const struct {
    int mode;
    const char *name;
} kv_prov_pad_names[] = {
    {RSA_PKCS1_PADDING, OSSL_PKEY_RSA_PAD_MODE_PKCSV15},
    {RSA_PKCS1_PSS_PADDING, OSSL_PKEY_RSA_PAD_MODE_PSS},
    {RSA_NO_PADDING, OSSL_PKEY_RSA_PAD_MODE_NONE},
    {RSA_X931_PADDING, OSSL_PKEY_RSA_PAD_MODE_X931},
    {RSA_PKCS1_OAEP_PADDING, OSSL_PKEY_RSA_PAD_MODE_OAEP},
};

static int kv_prov_sig_set_pad(kv_prov_sig *s, const OSSL_PARAM *p)
{
    int mode = -1;
    size_t i;

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        for (i = 0; i < sizeof(kv_prov_pad_names) / sizeof(kv_prov_pad_names[0]); i++)
            if (p->data != NULL && strcmp(p->data, kv_prov_pad_names[i].name) == 0)
                mode = kv_prov_pad_names[i].mode;
    } else if (!OSSL_PARAM_get_int(p, &mode)) {
        mode = -1;
    }
    if (mode != RSA_PKCS1_PADDING && mode != RSA_PKCS1_PSS_PADDING) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_PADDING,
                      "kvault signs with PKCS#1 v1.5 or PSS padding only");
        return 0;
    }
    s->pad = mode;
    return 1;
}

static int kv_prov_sig_set_saltlen(kv_prov_sig *s, const OSSL_PARAM *p)
{
    int len;
    char *end = NULL;

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *v = p->data;

        if (v == NULL)
            return 0;
        if (strcmp(v, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
            len = RSA_PSS_SALTLEN_DIGEST;
        else if (strcmp(v, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
            len = RSA_PSS_SALTLEN_AUTO;
        else if (strcmp(v, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
            len = RSA_PSS_SALTLEN_MAX;
        else {
            long l = strtol(v, &end, 10);

            if (end == v || *end != '\0' || l < -3 || l > 1024) {
                kv_prov_raise(s->pc, KV_PROV_R_BAD_SALTLEN, "bad PSS salt length %s", v);
                return 0;
            }
            len = (int)l;
        }
    } else if (!OSSL_PARAM_get_int(p, &len)) {
        return 0;
    }
    if (len < RSA_PSS_SALTLEN_MAX) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_SALTLEN, "bad PSS salt length %d", len);
        return 0;
    }
    /* max (or a size other than the digest's) is rejected at signing time, when the digest
     * is known; verification accepts anything OpenSSL does. */
    s->saltlen = len;
    return 1;
}

static int kv_prov_sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    kv_prov_sig *s = vctx;
    const OSSL_PARAM *p;
    char name[KV_PROV_MAX_MDNAME], *pn = name;

    if (s == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL) {
        if (!OSSL_PARAM_get_utf8_string(p, &pn, sizeof(name)) || !kv_prov_sig_set_md(s, name))
            return 0;
    }
    if (s->kty != KV_KTY_RSA)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !kv_prov_sig_set_pad(s, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !kv_prov_sig_set_saltlen(s, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        if (!OSSL_PARAM_get_utf8_string(p, &pn, sizeof(name)) || !kv_prov_sig_set_mgf1(s, name))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM *kv_prov_rsa_sig_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return settable;
}

static const OSSL_PARAM *kv_prov_ecdsa_sig_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return settable;
}

/* The effective digest for PSS / AlgorithmIdentifier purposes. */
static int kv_prov_sig_md_nid(const kv_prov_sig *s)
{
    return s->mdname[0] != '\0' ? s->mdnid : NID_undef;
}

/* DER AlgorithmIdentifier of the current signature scheme (for X.509, CSR, CMS). */
static int kv_prov_sig_algid(kv_prov_sig *s, unsigned char *out, size_t *outlen)
{
    X509_ALGOR *alg = NULL, *hash = NULL, *mgf = NULL;
    RSA_PSS_PARAMS *pss = NULL;
    ASN1_STRING *packed = NULL;
    unsigned char *der = NULL;
    int signid = NID_undef, len, ok = 0, mdnid = kv_prov_sig_md_nid(s);

    if (mdnid == NID_undef)
        return 0;
    alg = X509_ALGOR_new();
    if (alg == NULL)
        goto done;
    if (s->kty == KV_KTY_EC) {
        if (!OBJ_find_sigid_by_algs(&signid, mdnid, NID_X9_62_id_ecPublicKey) ||
            !X509_ALGOR_set0(alg, OBJ_nid2obj(signid), V_ASN1_UNDEF, NULL))
            goto done;
    } else if (s->pad == RSA_PKCS1_PADDING) {
        if (!OBJ_find_sigid_by_algs(&signid, mdnid, NID_rsaEncryption) ||
            !X509_ALGOR_set0(alg, OBJ_nid2obj(signid), V_ASN1_NULL, NULL))
            goto done;
    } else {
        /* RSASSA-PSS with MGF1 over the same hash and salt = hash length */
        pss = RSA_PSS_PARAMS_new();
        hash = X509_ALGOR_new();
        mgf = X509_ALGOR_new();
        if (pss == NULL || hash == NULL || mgf == NULL)
            goto done;
        X509_ALGOR_set0(hash, OBJ_nid2obj(mdnid), V_ASN1_UNDEF, NULL);
        packed = ASN1_item_pack(hash, ASN1_ITEM_rptr(X509_ALGOR), NULL);
        if (packed == NULL || !X509_ALGOR_set0(mgf, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, packed))
            goto done;
        packed = NULL;
        pss->hashAlgorithm = hash;
        pss->maskGenAlgorithm = mgf;
        hash = mgf = NULL;
        if (s->mdsize != 20) {
            pss->saltLength = ASN1_INTEGER_new();
            if (pss->saltLength == NULL || !ASN1_INTEGER_set(pss->saltLength, (long)s->mdsize))
                goto done;
        }
        packed = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL);
        if (packed == NULL ||
            !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, packed))
            goto done;
        packed = NULL;
    }
    len = i2d_X509_ALGOR(alg, &der);
    if (len <= 0 || (size_t)len > *outlen)
        goto done;
    memcpy(out, der, (size_t)len);
    *outlen = (size_t)len;
    ok = 1;
done:
    OPENSSL_free(der);
    ASN1_STRING_free(packed);
    X509_ALGOR_free(hash);
    X509_ALGOR_free(mgf);
    RSA_PSS_PARAMS_free(pss);
    X509_ALGOR_free(alg);
    return ok;
}

static int kv_prov_sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    kv_prov_sig *s = vctx;
    OSSL_PARAM *p;
    size_t i;

    if (s == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL) {
        unsigned char aid[KV_PROV_MAX_AID];
        size_t aidlen = sizeof(aid);

        if (!kv_prov_sig_algid(s, aid, &aidlen)) {
            kv_prov_raise(s->pc, KV_PROV_R_UNSUPPORTED,
                          "no AlgorithmIdentifier for this digest and padding");
            return 0;
        }
        if (!OSSL_PARAM_set_octet_string(p, aid, aidlen))
            return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, s->mdname))
        return 0;
    if (s->kty != KV_KTY_RSA)
        return 1;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, s->pad))
                return 0;
        } else {
            const char *name = NULL;

            for (i = 0; i < sizeof(kv_prov_pad_names) / sizeof(kv_prov_pad_names[0]); i++)
                if (kv_prov_pad_names[i].mode == s->pad)
                    name = kv_prov_pad_names[i].name;
            if (name == NULL || !OSSL_PARAM_set_utf8_string(p, name))
                return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, s->saltlen))
                return 0;
        } else {
            char buf[16];
            const char *v = buf;

            if (s->saltlen == RSA_PSS_SALTLEN_DIGEST)
                v = OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST;
            else if (s->saltlen == RSA_PSS_SALTLEN_AUTO)
                v = OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO;
            else if (s->saltlen == RSA_PSS_SALTLEN_MAX)
                v = OSSL_PKEY_RSA_PSS_SALT_LEN_MAX;
            else
                snprintf(buf, sizeof(buf), "%d", s->saltlen);
            if (!OSSL_PARAM_set_utf8_string(p, v))
                return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, s->mgf1name[0] != '\0' ? s->mgf1name : s->mdname))
        return 0;
    return 1;
}

static const OSSL_PARAM *kv_prov_rsa_sig_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return gettable;
}

static const OSSL_PARAM *kv_prov_ecdsa_sig_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return gettable;
}

/* ---- init ---- */

static int kv_prov_sig_init(void *vctx, void *provkey, const OSSL_PARAM params[], int op)
{
    kv_prov_sig *s = vctx;
    kv_prov_key *pk = provkey;

    if (s == NULL)
        return 0;
    if (pk != NULL) {
        if (kv_prov_key_kty(pk) != s->kty) {
            kv_prov_raise(s->pc, KV_PROV_R_INVALID_ARG, "key type does not match algorithm");
            return 0;
        }
        if (op == EVP_PKEY_OP_SIGN && !kv_prov_key_is_private(pk)) {
            kv_prov_raise(s->pc, KV_PROV_R_NO_KEY, "this key has no vault key to sign with");
            return 0;
        }
        kv_prov_key_unref(s->key);
        s->key = kv_prov_key_ref(pk);
    } else if (s->key == NULL) {
        kv_prov_raise(s->pc, KV_PROV_R_NO_KEY, "no key given");
        return 0;
    }
    s->operation = op;
    s->allow_md = 1;
    return kv_prov_sig_set_ctx_params(s, params);
}

static int kv_prov_sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return kv_prov_sig_init(vctx, provkey, params, EVP_PKEY_OP_SIGN);
}

static int kv_prov_sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return kv_prov_sig_init(vctx, provkey, params, EVP_PKEY_OP_VERIFY);
}

/* ---- sign ---- */

static size_t kv_prov_sig_max_size(const kv_prov_sig *s)
{
    int n = EVP_PKEY_get_size(s->key->pub);

    return n > 0 ? (size_t)n : 0;
}

static kv_alg kv_prov_rs_alg(int nid, int pss)
{
    switch (nid) {
    case NID_sha256:
        return pss ? KV_ALG_PS256 : KV_ALG_RS256;
    case NID_sha384:
        return pss ? KV_ALG_PS384 : KV_ALG_RS384;
    case NID_sha512:
        return pss ? KV_ALG_PS512 : KV_ALG_RS512;
    default:
        return KV_ALG_NONE;
    }
}

static int kv_prov_nid_for_len(size_t len)
{
    return len == 32 ? NID_sha256 : len == 48 ? NID_sha384 : len == 64 ? NID_sha512 : NID_undef;
}

/* DigestInfo for digests the vault has no RS* algorithm for (e.g. SHA-1, SHA-224). */
static int kv_prov_digest_info(kv_prov_sig *s, const unsigned char *dgst, size_t dlen,
                               unsigned char **out, size_t *outlen)
{
    X509_SIG *xs = X509_SIG_new();
    X509_ALGOR *a = NULL;
    ASN1_OCTET_STRING *o = NULL;
    unsigned char *der = NULL;
    int len, ok = 0;

    if (xs == NULL)
        goto done;
    X509_SIG_getm(xs, &a, &o);
    if (!X509_ALGOR_set0(a, OBJ_nid2obj(s->mdnid), V_ASN1_NULL, NULL) ||
        !ASN1_OCTET_STRING_set(o, dgst, (int)dlen))
        goto done;
    len = i2d_X509_SIG(xs, &der);
    if (len <= 0)
        goto done;
    *out = der;
    *outlen = (size_t)len;
    ok = 1;
done:
    X509_SIG_free(xs);
    return ok;
}

static int kv_prov_rsa_sign(kv_prov_sig *s, unsigned char *sig, size_t *siglen, size_t sigsize,
                            const unsigned char *tbs, size_t tbslen)
{
    kv_prov_key *pk = s->key;
    unsigned char *di = NULL;
    const unsigned char *in = tbs;
    size_t inlen = tbslen, outlen = sigsize;
    kv_alg alg = KV_ALG_NONE;
    int nid = kv_prov_sig_md_nid(s), ok = 0;
    kv_err err;
    kv_rv rv;

    kv_err_clear(&err);
    if (nid != NID_undef && tbslen != s->mdsize) {
        kv_prov_raise(s->pc, KV_PROV_R_INVALID_ARG,
                      "input is %zu bytes but a %s digest is %zu bytes", tbslen, s->mdname,
                      s->mdsize);
        goto done;
    }
    if (s->pad == RSA_PKCS1_PSS_PADDING) {
        if (nid == NID_undef)
            nid = kv_prov_nid_for_len(tbslen);
        alg = kv_prov_rs_alg(nid, 1);
        if (alg == KV_ALG_NONE) {
            kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST,
                          "the vault signs PSS only over SHA-256, SHA-384 or SHA-512 digests "
                          "(got %s, %zu bytes)",
                          s->mdname[0] ? s->mdname : "no digest", tbslen);
            goto done;
        }
        if (s->mgf1name[0] != '\0' && s->mgf1nid != nid) {
            kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST,
                          "the vault uses MGF1 with the signature digest; %s is not supported",
                          s->mgf1name);
            goto done;
        }
        if (s->saltlen != RSA_PSS_SALTLEN_DIGEST && s->saltlen != RSA_PSS_SALTLEN_AUTO &&
            (s->saltlen < 0 || (size_t)s->saltlen != tbslen)) {
            kv_prov_raise(s->pc, KV_PROV_R_BAD_SALTLEN,
                          "the vault uses a PSS salt as long as the digest (%zu bytes); use "
                          "salt length \"digest\"",
                          tbslen);
            goto done;
        }
    } else if (s->pad == RSA_PKCS1_PADDING) {
        if (nid == NID_undef) {
            alg = KV_ALG_RSNULL; /* caller-formatted input (DigestInfo), like OpenSSL */
        } else {
            alg = kv_prov_rs_alg(nid, 0);
            if (alg == KV_ALG_NONE) {
                if (!kv_prov_digest_info(s, tbs, tbslen, &di, &inlen)) {
                    kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST, "cannot encode a %s DigestInfo",
                                  s->mdname);
                    goto done;
                }
                in = di;
                alg = KV_ALG_RSNULL;
            }
        }
    } else {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_PADDING,
                      "kvault signs with PKCS#1 v1.5 or PSS padding only");
        goto done;
    }
    rv = kv_vault_sign(pk->vault, pk->key, alg, in, inlen, sig, &outlen, &err);
    if (rv != KV_OK) {
        kv_prov_raise_kv(s->pc, rv, &err, "vault signing failed");
        goto done;
    }
    *siglen = outlen;
    ok = 1;
done:
    OPENSSL_free(di);
    return ok;
}

static int kv_prov_ecdsa_sign(kv_prov_sig *s, unsigned char *sig, size_t *siglen, size_t sigsize,
                              const unsigned char *tbs, size_t tbslen)
{
    kv_prov_key *pk = s->key;
    unsigned char dgst[KV_PROV_MAX_DIGEST], raw[160];
    size_t want, rawlen = sizeof(raw), derlen = sigsize;
    kv_alg alg;
    kv_err err;
    kv_rv rv;

    kv_err_clear(&err);
    if (s->mdsize != 0 && tbslen != s->mdsize) {
        kv_prov_raise(s->pc, KV_PROV_R_INVALID_ARG,
                      "input is %zu bytes but a %s digest is %zu bytes", tbslen, s->mdname,
                      s->mdsize);
        return 0;
    }
    alg = kv_alg_ecdsa_for_curve(pk->key->curve_nid);
    want = kv_alg_digest_len(alg);
    if (alg == KV_ALG_NONE || want == 0 || want > sizeof(dgst)) {
        kv_prov_raise(s->pc, KV_PROV_R_UNSUPPORTED, "the vault cannot sign with this curve");
        return 0;
    }
    /* ECDSA uses the leftmost bits of the digest: truncate long digests, left-pad short
     * ones with zeros (the same integer) to the size the vault algorithm expects. */
    if (tbslen >= want) {
        if (tbslen > want && want * 8 != (size_t)pk->key->bits) {
            kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST,
                          "a %zu-byte digest is too long for this curve", tbslen);
            return 0;
        }
        memcpy(dgst, tbs, want);
    } else {
        memset(dgst, 0, want - tbslen);
        memcpy(dgst + (want - tbslen), tbs, tbslen);
    }
    rv = kv_vault_sign(pk->vault, pk->key, alg, dgst, want, raw, &rawlen, &err);
    if (rv != KV_OK) {
        kv_prov_raise_kv(s->pc, rv, &err, "vault signing failed");
        return 0;
    }
    rv = kv_ecdsa_raw_to_der(raw, rawlen, sig, &derlen);
    if (rv != KV_OK) {
        kv_prov_raise(s->pc, kv_prov_reason_for(rv),
                      "cannot encode the vault's ECDSA signature (%s)", kv_rv_str(rv));
        return 0;
    }
    *siglen = derlen;
    return 1;
}

static int kv_prov_sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                            const unsigned char *tbs, size_t tbslen)
{
    kv_prov_sig *s = vctx;
    size_t max;

    if (s == NULL || siglen == NULL || s->key == NULL || s->key->pub == NULL)
        return 0;
    max = kv_prov_sig_max_size(s);
    if (sig == NULL) {
        *siglen = max; /* no remote call */
        return 1;
    }
    if (!kv_prov_key_is_private(s->key)) {
        kv_prov_raise(s->pc, KV_PROV_R_NO_KEY, "this key has no vault key to sign with");
        return 0;
    }
    if (tbs == NULL || tbslen == 0) {
        kv_prov_raise(s->pc, KV_PROV_R_INVALID_ARG, "nothing to sign");
        return 0;
    }
    if (sigsize < max) {
        kv_prov_raise(s->pc, KV_PROV_R_BUFFER_TOO_SMALL,
                      "signature buffer of %zu bytes is smaller than %zu", sigsize, max);
        return 0;
    }
    if (s->kty == KV_KTY_RSA)
        return kv_prov_rsa_sign(s, sig, siglen, sigsize, tbs, tbslen);
    return kv_prov_ecdsa_sign(s, sig, siglen, sigsize, tbs, tbslen);
}

/* ---- verify (local, with the public key, in the private library context) ---- */

static int kv_prov_sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                              const unsigned char *tbs, size_t tbslen)
{
    kv_prov_sig *s = vctx;
    EVP_PKEY_CTX *vc = NULL;
    OSSL_LIB_CTX *lc;
    OSSL_PARAM params[5], *p = params;
    int ret = 0, pad, saltlen;

    if (s == NULL || s->key == NULL || s->key->pub == NULL)
        return 0;
    lc = kv_prov_get_hashctx(s->pc);
    if (lc == NULL)
        return 0;
    vc = EVP_PKEY_CTX_new_from_pkey(lc, s->key->pub, "provider=default");
    if (vc == NULL || EVP_PKEY_verify_init(vc) != 1) {
        kv_prov_raise(s->pc, KV_PROV_R_INTERNAL, "cannot set up local verification");
        goto done;
    }
    if (s->mdname[0] != '\0')
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, s->mdname, 0);
    if (s->kty == KV_KTY_RSA) {
        pad = s->pad;
        saltlen = s->saltlen;
        *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE, &pad);
        if (s->pad == RSA_PKCS1_PSS_PADDING) {
            *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &saltlen);
            if (s->mgf1name[0] != '\0')
                *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                                                        s->mgf1name, 0);
        }
    }
    *p = OSSL_PARAM_construct_end();
    if (EVP_PKEY_CTX_set_params(vc, params) != 1) {
        kv_prov_raise(s->pc, KV_PROV_R_INVALID_ARG, "cannot set verification parameters");
        goto done;
    }
    ret = EVP_PKEY_verify(vc, sig, siglen, tbs, tbslen) == 1;
done:
    EVP_PKEY_CTX_free(vc);
    return ret;
}

/* ---- digest sign / verify ---- */

static int kv_prov_sig_digest_init(void *vctx, const char *mdname, void *provkey,
                                   const OSSL_PARAM params[], int op)
{
    kv_prov_sig *s = vctx;
    OSSL_LIB_CTX *lc;

    if (!kv_prov_sig_init(vctx, provkey, params, op))
        return 0;
    if (mdname != NULL && mdname[0] != '\0') {
        if (!kv_prov_sig_set_md(s, mdname))
            return 0;
    } else if (s->mdname[0] == '\0' && !kv_prov_sig_set_md(s, "SHA256")) {
        return 0;
    }
    lc = kv_prov_get_hashctx(s->pc);
    if (lc == NULL)
        return 0;
    EVP_MD_free(s->md);
    s->md = EVP_MD_fetch(lc, s->mdname, NULL);
    if (s->mdctx == NULL)
        s->mdctx = EVP_MD_CTX_new();
    if (s->md == NULL || s->mdctx == NULL || !EVP_DigestInit_ex2(s->mdctx, s->md, NULL)) {
        kv_prov_raise(s->pc, KV_PROV_R_BAD_DIGEST, "cannot start a %s digest", s->mdname);
        return 0;
    }
    s->allow_md = 0;
    return 1;
}

static int kv_prov_sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                        const OSSL_PARAM params[])
{
    return kv_prov_sig_digest_init(vctx, mdname, provkey, params, EVP_PKEY_OP_SIGN);
}

static int kv_prov_sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                          const OSSL_PARAM params[])
{
    return kv_prov_sig_digest_init(vctx, mdname, provkey, params, EVP_PKEY_OP_VERIFY);
}

static int kv_prov_sig_digest_update(void *vctx, const unsigned char *data, size_t len)
{
    kv_prov_sig *s = vctx;

    if (s == NULL || s->mdctx == NULL)
        return 0;
    return EVP_DigestUpdate(s->mdctx, data, len);
}

static int kv_prov_sig_digest_final(kv_prov_sig *s, unsigned char *dgst, unsigned int *dlen)
{
    if (s == NULL || s->mdctx == NULL)
        return 0;
    if (!EVP_DigestFinal_ex(s->mdctx, dgst, dlen)) {
        kv_prov_raise(s->pc, KV_PROV_R_INTERNAL, "digest computation failed");
        return 0;
    }
    s->allow_md = 1;
    return 1;
}

static int kv_prov_sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen,
                                         size_t sigsize)
{
    kv_prov_sig *s = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (s == NULL || siglen == NULL)
        return 0;
    if (sig == NULL)
        return kv_prov_sig_sign(s, NULL, siglen, sigsize, NULL, 0);
    if (!kv_prov_sig_digest_final(s, dgst, &dlen))
        return 0;
    return kv_prov_sig_sign(s, sig, siglen, sigsize, dgst, dlen);
}

static int kv_prov_sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    kv_prov_sig *s = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (!kv_prov_sig_digest_final(s, dgst, &dlen))
        return 0;
    return kv_prov_sig_verify(s, sig, siglen, dgst, dlen);
}

const OSSL_DISPATCH kv_prov_rsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))kv_prov_rsa_sig_newctx},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))kv_prov_rsa_sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))kv_prov_rsa_sig_settable_ctx_params},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))kv_prov_sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))kv_prov_sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))kv_prov_sig_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))kv_prov_sig_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))kv_prov_sig_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))kv_prov_sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))kv_prov_sig_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))kv_prov_sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))kv_prov_sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))kv_prov_sig_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))kv_prov_sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))kv_prov_sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))kv_prov_sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))kv_prov_sig_set_ctx_params},
    {0, NULL},
};

const OSSL_DISPATCH kv_prov_ecdsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))kv_prov_ecdsa_sig_newctx},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
     (void (*)(void))kv_prov_ecdsa_sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
     (void (*)(void))kv_prov_ecdsa_sig_settable_ctx_params},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))kv_prov_sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))kv_prov_sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))kv_prov_sig_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))kv_prov_sig_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))kv_prov_sig_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))kv_prov_sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))kv_prov_sig_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))kv_prov_sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))kv_prov_sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))kv_prov_sig_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))kv_prov_sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))kv_prov_sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))kv_prov_sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))kv_prov_sig_set_ctx_params},
    {0, NULL},
};
