/* kv_b64.c - base64/base64url codecs built on EVP_EncodeBlock/EVP_DecodeBlock. */
#include "kv_b64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

char *kv_b64_encode(const uint8_t *in, size_t len)
{
    char *out;

    if (len > (size_t)1 << 28)
        return NULL;
    out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

char *kv_b64url_encode(const uint8_t *in, size_t len)
{
    char *out = kv_b64_encode(in, len);
    char *p;

    if (out == NULL)
        return NULL;
    for (p = out; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=') {
            *p = '\0';
            break;
        }
    }
    return out;
}

kv_rv kv_b64_decode(const char *in, uint8_t **out, size_t *outlen)
{
    size_t len, i, padded, pad;
    char *tmp = NULL;
    uint8_t *buf = NULL;
    int n;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (in == NULL || out == NULL || outlen == NULL)
        return KV_ERR_INVALID_ARG;
    len = strlen(in);
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1 || len > (size_t)1 << 28)
        return KV_ERR_INVALID_ARG;
    padded = (len + 3) / 4 * 4;
    pad = padded - len;
    tmp = malloc(padded + 1);
    buf = malloc(padded / 4 * 3 + 1);
    if (tmp == NULL || buf == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/'))
            goto done;
        tmp[i] = c;
    }
    for (; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    n = EVP_DecodeBlock(buf, (const unsigned char *)tmp, (int)padded);
    if (n < 0 || (size_t)n < pad)
        goto done;
    *outlen = (size_t)n - pad;
    *out = buf;
    buf = NULL;
    rv = KV_OK;
done:
    free(tmp);
    free(buf);
    return rv;
}
