/* kv_ecdsa.c - ECDSA signature format conversion using OpenSSL's ECDSA_SIG DER codec. */
#include "kv_ecdsa.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

kv_rv kv_ecdsa_raw_to_der(const uint8_t *raw, size_t rawlen, uint8_t *der, size_t *derlen)
{
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *p;
    int len;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (raw == NULL || derlen == NULL || rawlen == 0 || rawlen % 2 != 0 || rawlen > 264)
        return KV_ERR_INVALID_ARG;
    if (der == NULL) {
        /* SEQUENCE(3) + 2 * INTEGER(tag, len up to 2 bytes, leading zero, n bytes) */
        *derlen = 3 + 2 * (4 + rawlen / 2);
        return KV_OK;
    }
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int)(rawlen / 2), NULL);
    s = BN_bin2bn(raw + rawlen / 2, (int)(rawlen / 2), NULL);
    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        rv = KV_ERR_NOMEM;
        goto done;
    }
    len = i2d_ECDSA_SIG(sig, NULL);
    if (len <= 0) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    if ((size_t)len > *derlen) {
        *derlen = (size_t)len;
        rv = KV_ERR_BUFFER_TOO_SMALL;
        goto done;
    }
    p = der;
    *derlen = (size_t)i2d_ECDSA_SIG(sig, &p);
    rv = KV_OK;
done:
    ECDSA_SIG_free(sig);
    return rv;
}

kv_rv kv_ecdsa_der_to_raw(const uint8_t *der, size_t derlen, size_t n, uint8_t *raw, size_t *rawlen)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig;
    const BIGNUM *r, *s;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (der == NULL || rawlen == NULL || n == 0 || derlen > 1024)
        return KV_ERR_INVALID_ARG;
    if (raw == NULL || *rawlen < 2 * n) {
        *rawlen = 2 * n;
        return raw == NULL ? KV_OK : KV_ERR_BUFFER_TOO_SMALL;
    }
    sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (sig == NULL || p != der + derlen)
        goto done;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, (int)n) < 0 || BN_bn2binpad(s, raw + n, (int)n) < 0)
        goto done;
    *rawlen = 2 * n;
    rv = KV_OK;
done:
    ECDSA_SIG_free(sig);
    return rv;
}
