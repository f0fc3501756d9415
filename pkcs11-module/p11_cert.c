/* p11_cert.c - vault certificates as CKO_CERTIFICATE (CKC_X_509) objects.
 *
 * The certificate's DER (the vault's "cer") is parsed once per snapshot into the attribute
 * values PKCS#11 programs look for: CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER (DER INTEGER),
 * CKA_START_DATE / CKA_END_DATE, CKA_PUBLIC_KEY_INFO, CKA_CHECK_VALUE. CKA_LABEL = certificate
 * name; CKA_ID = the CKA_ID of the key of the same name (the vault's certificate key), so
 * tools pair the certificate with its private key. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* i2d of an object into a malloc'd buffer. */
#define KV_P11_I2D(fn, obj, outp, outlen)                                                          \
    do {                                                                                           \
        unsigned char *p_ = NULL;                                                                  \
        int n_ = fn(obj, &p_);                                                                     \
        if (n_ <= 0)                                                                               \
            goto bad;                                                                              \
        *(outp) = malloc((size_t)n_);                                                              \
        if (*(outp) == NULL) {                                                                     \
            OPENSSL_free(p_);                                                                      \
            goto nomem;                                                                            \
        }                                                                                          \
        memcpy(*(outp), p_, (size_t)n_);                                                           \
        OPENSSL_free(p_);                                                                          \
        *(outlen) = (size_t)n_;                                                                    \
    } while (0)

static bool kv_p11_asn1_date(const ASN1_TIME *t, CK_BYTE out[8])
{
    struct tm tm;

    return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 && kv_p11_tm_date(&tm, out);
}

void kv_p11_cert_clear(kv_p11_cert *c)
{
    if (c == NULL)
        return;
    free(c->der);
    free(c->subject);
    free(c->issuer);
    free(c->serial);
    free(c->spki);
    memset(c, 0, sizeof(*c));
}

kv_rv kv_p11_cert_parse(const char *vault, const char *name, const uint8_t *der, size_t len,
                        kv_p11_cert *out, kv_err *err)
{
    const unsigned char *p = der;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD *sha1 = NULL;
    X509 *x = NULL;
    kv_rv rv = KV_OK;

    memset(out, 0, sizeof(*out));
    if (strlen(name) >= sizeof(out->name))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "certificate name too long");
    snprintf(out->name, sizeof(out->name), "%s", name);
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL)
        goto bad;
    if (!kv_p11_key_id(vault, name, out->id))
        goto bad;
    out->der = malloc(len);
    if (out->der == NULL)
        goto nomem;
    memcpy(out->der, der, len);
    out->der_len = len;
    KV_P11_I2D(i2d_X509_NAME, X509_get_subject_name(x), &out->subject, &out->subject_len);
    KV_P11_I2D(i2d_X509_NAME, X509_get_issuer_name(x), &out->issuer, &out->issuer_len);
    KV_P11_I2D(i2d_ASN1_INTEGER, X509_get0_serialNumber(x), &out->serial, &out->serial_len);
    KV_P11_I2D(i2d_X509_PUBKEY, X509_get_X509_PUBKEY(x), &out->spki, &out->spki_len);
    out->has_start = kv_p11_asn1_date(X509_get0_notBefore(x), out->start);
    out->has_end = kv_p11_asn1_date(X509_get0_notAfter(x), out->end);
    sha1 = kv_p11_md_fetch("SHA1");
    if (sha1 == NULL || EVP_Digest(der, len, md, &mdlen, sha1, NULL) != 1 || mdlen < 3)
        goto bad;
    memcpy(out->check, md, 3);
    goto done;

nomem:
    rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    kv_p11_cert_clear(out);
    goto done;
bad:
    rv = kv_err_set(err, KV_ERR_SERVER, "certificate %s: cannot parse its DER", name);
    kv_p11_cert_clear(out);
done:
    EVP_MD_free(sha1);
    X509_free(x);
    return rv;
}

const kv_p11_cert *kv_p11_cert_find(const kv_p11_odata *od, const char *name)
{
    size_t i;

    for (i = 0; od != NULL && i < od->ncerts; i++)
        if (strcmp(od->certs[i].name, name) == 0)
            return &od->certs[i];
    return NULL;
}

CK_RV kv_p11_cert_attr(const kv_p11_cert *c, CK_ATTRIBUTE_TYPE type, const void **value,
                       CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    *value = NULL;
    *len = 0;
    switch (type) {
    case CKA_CLASS:
        KV_P11_SET_ULONG(CKO_CERTIFICATE);
        return CKR_OK;
    case CKA_CERTIFICATE_TYPE:
        KV_P11_SET_ULONG(CKC_X_509);
        return CKR_OK;
    case CKA_CERTIFICATE_CATEGORY:
        KV_P11_SET_ULONG(1); /* token user: the vault holds its private key */
        return CKR_OK;
    case CKA_TOKEN:
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_PRIVATE:
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
    case CKA_TRUSTED:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    case CKA_LABEL:
        KV_P11_SET_BYTES(c->name, strlen(c->name));
        return CKR_OK;
    case CKA_ID:
        KV_P11_SET_BYTES(c->id, KV_P11_ID_LEN);
        return CKR_OK;
    case CKA_VALUE:
        KV_P11_SET_BYTES(c->der, c->der_len);
        return CKR_OK;
    case CKA_SUBJECT:
        KV_P11_SET_BYTES(c->subject, c->subject_len);
        return CKR_OK;
    case CKA_ISSUER:
        KV_P11_SET_BYTES(c->issuer, c->issuer_len);
        return CKR_OK;
    case CKA_SERIAL_NUMBER:
        KV_P11_SET_BYTES(c->serial, c->serial_len);
        return CKR_OK;
    case CKA_PUBLIC_KEY_INFO:
        KV_P11_SET_BYTES(c->spki, c->spki_len);
        return CKR_OK;
    case CKA_CHECK_VALUE:
        KV_P11_SET_BYTES(c->check, sizeof(c->check));
        return CKR_OK;
    case CKA_START_DATE:
        if (c->has_start)
            KV_P11_SET_BYTES(c->start, 8);
        return CKR_OK;
    case CKA_END_DATE:
        if (c->has_end)
            KV_P11_SET_BYTES(c->end, 8);
        return CKR_OK;
    case CKA_URL:
    case CKA_HASH_OF_SUBJECT_PUBLIC_KEY:
    case CKA_HASH_OF_ISSUER_PUBLIC_KEY:
        return CKR_OK; /* empty */
    case CKA_JAVA_MIDP_SECURITY_DOMAIN:
        KV_P11_SET_ULONG(0);
        return CKR_OK;
    default:
        break;
    }
    return CKR_ATTRIBUTE_TYPE_INVALID;
}
