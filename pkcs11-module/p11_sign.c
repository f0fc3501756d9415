/* p11_sign.c - C_SignInit / C_Sign / C_SignUpdate / C_SignFinal, and the mechanism logic
 * shared with verification: how a PKCS#11 mechanism and its input become the vault's
 * algorithm and digest.
 *
 * - CKM_RSA_PKCS: the input is a DigestInfo. A SHA-256/384/512 DigestInfo becomes RS256/384/
 *   512 with the bare digest (same signature, and the algorithms every vault supports); any
 *   other input is signed with RSNULL (PKCS#1 v1.5 padding of the raw input, <= k - 11 bytes).
 * - CKM_SHA{256,384,512}_RSA_PKCS: hash locally, then RS256/384/512. CKM_SHA1_RSA_PKCS and
 *   CKM_SHA224_RSA_PKCS: hash locally, then RSNULL over the DigestInfo (the vault has no
 *   RS1/RS224; the signature is the same). PSS with SHA-1/224 has no vault equivalent.
 * - CKM_RSA_PKCS_PSS: CK_RSA_PKCS_PSS_PARAMS must be SHA-256/384/512 with MGF1 of the same
 *   hash and sLen = hash length (the only PSS the vault does) -> PS256/384/512; the input is
 *   the digest. CKM_SHA{256,384,512}_RSA_PKCS_PSS: same parameters, hash locally.
 * - CKM_ECDSA: the input is a digest, brought to the vault's digest length for the curve
 *   (ES256/ES256K 32, ES384 48, ES512 64 bytes) with the ECDSA rule: keep the leftmost
 *   order-size bits, then left-pad with zeros. CKM_ECDSA_SHA{1,224,256,384,512}: hash locally
 *   first (a short digest left-padded is the same integer, so the same ECDSA signature).
 *   The vault's raw r||s is exactly the PKCS#11 ECDSA signature format.
 * Local hashing prefers OpenSSL's default provider ("?provider=default"); kvault's own provider
 * offers no digests, so a digest never recurses into kvault. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>

EVP_MD *kv_p11_md_fetch(const char *name)
{
    return EVP_MD_fetch(NULL, name, "?provider=default");
}

/* ---- mechanism setup ---- */

typedef struct kv_p11_hash {
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
    size_t len;
    const char *md;
    kv_alg rs, ps;
} kv_p11_hash;

static const kv_p11_hash kv_p11_hashes[] = {
    /* no vault RS1/RS224/PS1/PS224: PKCS#1 v1.5 goes through RSNULL with a DigestInfo */
    {CKM_SHA_1, CKG_MGF1_SHA1, 20, "SHA1", KV_ALG_RSNULL, KV_ALG_NONE},
    {CKM_SHA224, CKG_MGF1_SHA224, 28, "SHA224", KV_ALG_RSNULL, KV_ALG_NONE},
    {CKM_SHA256, CKG_MGF1_SHA256, 32, "SHA256", KV_ALG_RS256, KV_ALG_PS256},
    {CKM_SHA384, CKG_MGF1_SHA384, 48, "SHA384", KV_ALG_RS384, KV_ALG_PS384},
    {CKM_SHA512, CKG_MGF1_SHA512, 64, "SHA512", KV_ALG_RS512, KV_ALG_PS512},
};

static const kv_p11_hash *kv_p11_hash_find(CK_MECHANISM_TYPE hash)
{
    size_t i;

    for (i = 0; i < sizeof(kv_p11_hashes) / sizeof(kv_p11_hashes[0]); i++)
        if (kv_p11_hashes[i].hash == hash)
            return &kv_p11_hashes[i];
    return NULL;
}

const char *kv_p11_hash_name(CK_MECHANISM_TYPE hash)
{
    const kv_p11_hash *h = kv_p11_hash_find(hash);

    return h != NULL ? h->md : NULL;
}

/* The hash of a CKM_SHA*_ / CKM_ECDSA_SHA* mechanism (NULL for the raw ones). */
static const kv_p11_hash *kv_p11_mech_hash(CK_MECHANISM_TYPE mech)
{
    switch (mech) {
    case CKM_SHA1_RSA_PKCS:
    case CKM_ECDSA_SHA1:
        return kv_p11_hash_find(CKM_SHA_1);
    case CKM_SHA224_RSA_PKCS:
    case CKM_ECDSA_SHA224:
        return kv_p11_hash_find(CKM_SHA224);
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_ECDSA_SHA256:
        return kv_p11_hash_find(CKM_SHA256);
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_ECDSA_SHA384:
        return kv_p11_hash_find(CKM_SHA384);
    case CKM_SHA512_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS_PSS:
    case CKM_ECDSA_SHA512:
        return kv_p11_hash_find(CKM_SHA512);
    default:
        return NULL;
    }
}

static CK_RV kv_p11_pss_alg(const CK_MECHANISM *m, const kv_p11_hash *want, kv_alg *alg)
{
    const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
    const kv_p11_hash *h;

    if (p == NULL || m->ulParameterLen != sizeof(*p))
        return CKR_MECHANISM_PARAM_INVALID;
    h = kv_p11_hash_find(p->hashAlg);
    if (h == NULL || h->ps == KV_ALG_NONE || (want != NULL && h != want) || p->mgf != h->mgf ||
        p->sLen != h->len)
        return CKR_MECHANISM_PARAM_INVALID;
    *alg = h->ps;
    return CKR_OK;
}

CK_RV kv_p11_sigop_setup(kv_p11_sigop *op, CK_MECHANISM_PTR mech, kv_p11_kdata *kd)
{
    const kv_p11_hash *h;
    EVP_MD *md = NULL;
    CK_RV rv;

    if (mech == NULL)
        return CKR_ARGUMENTS_BAD;
    rv = kv_p11_mech_check(mech->mechanism, kd->key_type, kd->modulus_bits);
    if (rv != CKR_OK)
        return rv;
    memset(op, 0, sizeof(*op));
    h = kv_p11_mech_hash(mech->mechanism);
    switch (mech->mechanism) {
    case CKM_RSA_PKCS:
        op->alg = KV_ALG_NONE; /* RSxxx or RSNULL, decided by the input */
        break;
    case CKM_SHA1_RSA_PKCS:
    case CKM_SHA224_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS:
        op->alg = h->rs;
        break;
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS:
        rv = kv_p11_pss_alg(mech, h, &op->alg);
        break;
    default: /* ECDSA family */
        op->alg = kv_alg_ecdsa_for_curve(kd->key->curve_nid);
        if (op->alg == KV_ALG_NONE)
            rv = CKR_KEY_TYPE_INCONSISTENT;
        break;
    }
    if (rv != CKR_OK)
        goto done;
    if (h != NULL) {
        op->md_name = h->md;
        md = kv_p11_md_fetch(h->md);
        op->mdctx = EVP_MD_CTX_new();
        if (md == NULL || op->mdctx == NULL || EVP_DigestInit_ex(op->mdctx, md, NULL) != 1) {
            rv = CKR_GENERAL_ERROR;
            goto done;
        }
    }
    op->mech = mech->mechanism;
    op->kd = kv_p11_kdata_ref(kd);
    op->active = true;

done:
    EVP_MD_free(md);
    if (rv != CKR_OK)
        kv_p11_sigop_clear(op);
    return rv;
}

CK_RV kv_p11_sigop_update(kv_p11_sigop *op, const CK_BYTE *data, CK_ULONG len)
{
    uint8_t *nb;

    if (data == NULL && len > 0)
        return CKR_ARGUMENTS_BAD;
    if (len == 0)
        return CKR_OK;
    if (op->mdctx != NULL)
        return EVP_DigestUpdate(op->mdctx, data, len) == 1 ? CKR_OK : CKR_GENERAL_ERROR;
    if (len > KV_P11_MAX_RAW_INPUT - op->buflen)
        return CKR_DATA_LEN_RANGE;
    nb = realloc(op->buf, op->buflen + len);
    if (nb == NULL)
        return CKR_HOST_MEMORY;
    op->buf = nb;
    memcpy(op->buf + op->buflen, data, len);
    op->buflen += len;
    return CKR_OK;
}

/* ---- input normalisation ---- */

/* DER DigestInfo prefixes (AlgorithmIdentifier with NULL parameters) of SHA-256/384/512. */
static const struct {
    kv_alg alg;
    size_t hlen;
    uint8_t prefix[19];
} kv_p11_digestinfo[] = {
    {KV_ALG_RS256,
     32,
     {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
      0x05, 0x00, 0x04, 0x20}},
    {KV_ALG_RS384,
     48,
     {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
      0x05, 0x00, 0x04, 0x30}},
    {KV_ALG_RS512,
     64,
     {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
      0x05, 0x00, 0x04, 0x40}},
};

static CK_RV kv_p11_rsa_pkcs_input(const kv_p11_kdata *kd, const uint8_t *in, size_t inlen,
                                   uint8_t *out, size_t *outlen, kv_alg *alg)
{
    size_t i;

    for (i = 0; i < sizeof(kv_p11_digestinfo) / sizeof(kv_p11_digestinfo[0]); i++) {
        if (inlen == sizeof(kv_p11_digestinfo[i].prefix) + kv_p11_digestinfo[i].hlen &&
            memcmp(in, kv_p11_digestinfo[i].prefix, sizeof(kv_p11_digestinfo[i].prefix)) == 0) {
            *alg = kv_p11_digestinfo[i].alg;
            *outlen = kv_p11_digestinfo[i].hlen;
            memcpy(out, in + sizeof(kv_p11_digestinfo[i].prefix), *outlen);
            return CKR_OK;
        }
    }
    if (inlen == 0 || kd->modulus_len < 11 || inlen > kd->modulus_len - 11)
        return CKR_DATA_LEN_RANGE;
    *alg = KV_ALG_RSNULL;
    *outlen = inlen;
    memcpy(out, in, inlen);
    return CKR_OK;
}

/* DigestInfo of a SHA-1 or SHA-224 digest (signed with RSNULL: the vault has no RS1/RS224). */
static CK_RV kv_p11_digestinfo_short(bool sha1, const uint8_t *in, size_t inlen, uint8_t *out,
                                     size_t *outlen)
{
    static const uint8_t p1[15] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                   0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    static const uint8_t p224[19] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c};
    const uint8_t *p = sha1 ? p1 : p224;
    size_t plen = sha1 ? sizeof(p1) : sizeof(p224);

    if (inlen != (sha1 ? 20u : 28u))
        return CKR_GENERAL_ERROR;
    memcpy(out, p, plen);
    memcpy(out + plen, in, inlen);
    *outlen = plen + inlen;
    return CKR_OK;
}

static int kv_p11_order_bits(const kv_p11_kdata *kd)
{
    switch (kd->key->curve_nid) {
    case NID_X9_62_prime256v1:
    case NID_secp256k1:
        return 256;
    case NID_secp384r1:
        return 384;
    case NID_secp521r1:
        return 521;
    default:
        return kd->key->bits;
    }
}

/* ECDSA: keep the leftmost order-size bits of the input, then fit it to the vault's digest
 * length for the algorithm (left-padded). */
static CK_RV kv_p11_ecdsa_input(const kv_p11_kdata *kd, kv_alg alg, const uint8_t *in, size_t inlen,
                                uint8_t *out, size_t *outlen)
{
    int obits = kv_p11_order_bits(kd);
    size_t obytes = ((size_t)obits + 7) / 8, take, target = kv_alg_digest_len(alg);
    BIGNUM *e = NULL;
    CK_RV rv = CKR_OK;

    if (inlen == 0 || target == 0 || obits <= 0)
        return CKR_DATA_LEN_RANGE;
    take = inlen > obytes ? obytes : inlen;
    e = BN_bin2bn(in, (int)take, NULL);
    if (e == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    if (take * 8 > (size_t)obits && BN_rshift(e, e, (int)(take * 8 - (size_t)obits)) != 1) {
        rv = CKR_GENERAL_ERROR;
        goto done;
    }
    if ((size_t)BN_num_bytes(e) > target || BN_bn2binpad(e, out, (int)target) < 0) {
        rv = CKR_DATA_LEN_RANGE;
        goto done;
    }
    *outlen = target;

done:
    BN_clear_free(e);
    return rv;
}

CK_RV kv_p11_sigop_digest(kv_p11_sigop *op, uint8_t *out, size_t *outlen, kv_alg *alg)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const uint8_t *in = op->buf;
    size_t inlen = op->buflen;
    CK_RV rv = CKR_OK;

    if (op->mdctx != NULL) {
        if (EVP_DigestFinal_ex(op->mdctx, md, &mdlen) != 1)
            return CKR_GENERAL_ERROR;
        in = md;
        inlen = mdlen;
    }
    *alg = op->alg;
    switch (op->mech) {
    case CKM_SHA1_RSA_PKCS:
    case CKM_SHA224_RSA_PKCS:
        rv = kv_p11_digestinfo_short(op->mech == CKM_SHA1_RSA_PKCS, in, inlen, out, outlen);
        break;
    case CKM_RSA_PKCS:
        rv = kv_p11_rsa_pkcs_input(op->kd, in, inlen, out, outlen, alg);
        break;
    case CKM_RSA_PKCS_PSS:
        if (inlen != kv_alg_digest_len(op->alg)) {
            rv = CKR_DATA_LEN_RANGE;
            break;
        }
        /* fall through */
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS:
        memcpy(out, in, inlen);
        *outlen = inlen;
        break;
    default: /* ECDSA family */
        rv = kv_p11_ecdsa_input(op->kd, op->alg, in, inlen, out, outlen);
        break;
    }
    OPENSSL_cleanse(md, sizeof(md));
    return rv;
}

/* ---- steps shared by C_Sign* and C_Verify* (part KV_P11_PART_SIGN or KV_P11_PART_VERIFY) ---- */

CK_RV kv_p11_sigop_init(CK_SESSION_HANDLE h, unsigned part, CK_MECHANISM_PTR mech,
                        CK_OBJECT_HANDLE key)
{
    bool sign = part == KV_P11_PART_SIGN;
    kv_p11_session *s = NULL;
    kv_p11_sigop *op;
    kv_p11_kdata *kd = NULL;
    kv_p11_obj obj;
    CK_RV rv;

    rv = kv_p11_op_acquire_idle(h, part, mech != NULL, &s);
    if (rv != CKR_OK)
        return rv;
    op = sign ? &s->sign : &s->verify;
    rv = kv_p11_obj_kdata(sign ? "C_SignInit" : "C_VerifyInit", s->slot, key, KV_P11_OP_KEY, &obj,
                          &kd);
    if (rv != CKR_OK)
        goto done;
    if (obj.cls != (sign ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY) ||
        !(kd->key->key_ops & (sign ? KV_OP_SIGN : KV_OP_VERIFY))) {
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        goto done;
    }
    rv = kv_p11_sigop_setup(op, mech, kd);
    if (rv == CKR_OK)
        op->hkey = key;

done:
    kv_p11_kdata_unref(kd);
    kv_p11_session_release(s, part);
    return rv;
}

CK_RV kv_p11_sigop_step_update(CK_SESSION_HANDLE h, unsigned part, CK_BYTE_PTR data, CK_ULONG len)
{
    kv_p11_session *s = NULL;
    kv_p11_sigop *op;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, part, false, &s);
    if (rv != CKR_OK)
        return rv;
    op = part == KV_P11_PART_SIGN ? &s->sign : &s->verify;
    rv = kv_p11_sigop_update(op, data, len);
    if (rv == CKR_OK)
        op->multipart = true;
    else
        kv_p11_sigop_clear(op);
    kv_p11_session_release(s, part);
    return rv;
}

/* ---- C_Sign* ---- */

CK_RV kv_p11_sign_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    return kv_p11_sigop_init(h, KV_P11_PART_SIGN, mech, key);
}

/* Ends a sign operation with a vault signature, or answers a length query (*keep). */
static CK_RV kv_p11_sign_finish(kv_p11_session *s, const CK_BYTE *data, CK_ULONG len,
                                CK_BYTE_PTR sig, CK_ULONG_PTR siglen, bool *keep)
{
    kv_p11_sigop *op = &s->sign;
    uint8_t in[KV_P11_MAX_RAW_INPUT];
    size_t need = kv_key_sig_size(op->kd->key), inlen = 0, slen;
    kv_alg alg = KV_ALG_NONE;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    *keep = false;
    kv_err_clear(&err);
    if (siglen == NULL)
        return CKR_ARGUMENTS_BAD;
    if (kv_p11_out_short(sig, siglen, need, &rv)) {
        *keep = true; /* length query (no vault call); the operation stays active */
        return rv;
    }
    rv = kv_p11_sigop_update(op, data, len);
    if (rv == CKR_OK)
        rv = kv_p11_sigop_digest(op, in, &inlen, &alg);
    if (rv != CKR_OK)
        goto done;
    slen = *siglen;
    krv = kv_vault_sign(kv_p11_slot_get(s->slot)->vault, op->kd->key, alg, in, inlen, sig, &slen,
                        &err);
    if (krv != KV_OK) {
        rv = kv_p11_rv_log("C_Sign", &err, krv, KV_P11_OP_SIGN);
        goto done;
    }
    *siglen = slen;

done:
    OPENSSL_cleanse(in, sizeof(in));
    return rv;
}

/* C_Sign (single: the data is all of it) and C_SignFinal (data NULL, len 0). */
static CK_RV kv_p11_sign_end(CK_SESSION_HANDLE h, bool single, CK_BYTE_PTR data, CK_ULONG len,
                             CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
    kv_p11_session *s = NULL;
    bool keep = false;
    CK_RV rv;

    rv = kv_p11_op_acquire_active(h, KV_P11_PART_SIGN, single, &s);
    if (rv != CKR_OK)
        return rv;
    if (data == NULL && len > 0)
        rv = CKR_ARGUMENTS_BAD;
    else
        rv = kv_p11_sign_finish(s, data, len, sig, siglen, &keep);
    if (!keep)
        kv_p11_sigop_clear(&s->sign);
    kv_p11_session_release(s, KV_P11_PART_SIGN);
    return rv;
}

CK_RV kv_p11_sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                  CK_ULONG_PTR siglen)
{
    return kv_p11_sign_end(h, true, data, len, sig, siglen);
}

CK_RV kv_p11_sign_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
    return kv_p11_sigop_step_update(h, KV_P11_PART_SIGN, part, len);
}

CK_RV kv_p11_sign_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
    return kv_p11_sign_end(h, false, NULL, 0, sig, siglen);
}
