/* kv_seal.c - secrets sealed under a PIN (kv_seal.h): PBKDF2-HMAC-SHA256 + AES-256-GCM. */
#include "kv_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kv_b64.h"

#define KV_SEAL_MAX_DATA 4096

/* Splits "a$b$c$d" after the prefix into 4 fields (pointers into buf, which is modified). */
static int kv_seal_split(char *buf, char *f[4])
{
    char *p = buf + strlen(KV_SEAL_PREFIX);
    int i;

    if (strncmp(buf, KV_SEAL_PREFIX, strlen(KV_SEAL_PREFIX)) != 0)
        return 0;
    for (i = 0; i < 4; i++) {
        f[i] = p;
        p = strchr(p, '$');
        if (i < 3) {
            if (p == NULL)
                return 0;
            *p++ = '\0';
        } else if (p != NULL)
            return 0;
        if (*f[i] == '\0')
            return 0;
    }
    return 1;
}

int kv_seal_is_valid(const char *text)
{
    char *buf, *f[4];
    int ok;

    if (text == NULL || strlen(text) > 4 * KV_SEAL_MAX_DATA)
        return 0;
    buf = strdup(text);
    if (buf == NULL)
        return 0;
    ok = kv_seal_split(buf, f);
    free(buf);
    return ok;
}

static int kv_seal_key(const char *pin, size_t pinlen, const uint8_t *salt, size_t saltlen,
                       long iter, uint8_t key[32])
{
    return PKCS5_PBKDF2_HMAC(pin, (int)pinlen, salt, (int)saltlen, (int)iter, EVP_sha256(), 32,
                             key) == 1;
}

kv_rv kv_seal(const uint8_t *data, size_t len, const char *pin, size_t pinlen, const char *purpose,
              char **text, kv_err *err)
{
    uint8_t salt[16], iv[12], key[32], *ct = NULL;
    char *s64 = NULL, *i64 = NULL, *c64 = NULL;
    EVP_CIPHER_CTX *c = NULL;
    int n = 0;
    size_t tlen;
    kv_rv rv = KV_ERR_INTERNAL;

    kv_err_clear(err);
    if (data == NULL || len == 0 || len > KV_SEAL_MAX_DATA || pin == NULL || pinlen == 0 ||
        purpose == NULL || text == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "sealing needs 1-%d bytes and a PIN",
                          KV_SEAL_MAX_DATA);
    *text = NULL;
    ct = malloc(len + 16);
    c = EVP_CIPHER_CTX_new();
    if (ct == NULL || c == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1 ||
        !kv_seal_key(pin, pinlen, salt, sizeof(salt), KV_SEAL_ITER, key) ||
        EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)purpose, (int)strlen(purpose)) != 1 ||
        EVP_EncryptUpdate(c, ct, &n, data, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + len) != 1) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot seal the secret");
        goto done;
    }
    s64 = kv_b64_encode(salt, sizeof(salt));
    i64 = kv_b64_encode(iv, sizeof(iv));
    c64 = kv_b64_encode(ct, len + 16);
    if (s64 == NULL || i64 == NULL || c64 == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    tlen = strlen(KV_SEAL_PREFIX) + 16 + strlen(s64) + strlen(i64) + strlen(c64) + 4;
    *text = malloc(tlen);
    if (*text == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(*text, tlen, "%s%d$%s$%s$%s", KV_SEAL_PREFIX, KV_SEAL_ITER, s64, i64, c64);
    rv = KV_OK;
done:
    OPENSSL_cleanse(key, sizeof(key));
    EVP_CIPHER_CTX_free(c);
    free(ct);
    free(s64);
    free(i64);
    free(c64);
    return rv;
}

kv_rv kv_unseal(const char *text, const char *pin, size_t pinlen, const char *purpose,
                uint8_t **out, size_t *outlen, kv_err *err)
{
    uint8_t key[32], *salt = NULL, *iv = NULL, *ct = NULL, *pt = NULL;
    size_t saltlen = 0, ivlen = 0, ctlen = 0;
    char *buf = NULL, *f[4], *end = NULL;
    EVP_CIPHER_CTX *c = NULL;
    long iter;
    int n = 0, n2 = 0;
    kv_rv rv = KV_ERR_INVALID_ARG;

    kv_err_clear(err);
    if (out == NULL || outlen == NULL || purpose == NULL || (pin == NULL && pinlen > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    *out = NULL;
    *outlen = 0;
    if (!kv_seal_is_valid(text) || (buf = strdup(text)) == NULL || !kv_seal_split(buf, f))
        goto bad;
    iter = strtol(f[0], &end, 10);
    if (*end != '\0' || iter < KV_SEAL_MIN_ITER || iter > 100000000 ||
        kv_b64_decode(f[1], &salt, &saltlen) != KV_OK || saltlen < 16 ||
        kv_b64_decode(f[2], &iv, &ivlen) != KV_OK || ivlen != 12 ||
        kv_b64_decode(f[3], &ct, &ctlen) != KV_OK || ctlen <= 16 || ctlen > KV_SEAL_MAX_DATA + 16)
        goto bad;
    pt = malloc(ctlen - 16 + 1);
    c = EVP_CIPHER_CTX_new();
    if (pt == NULL || c == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* A wrong PIN and an altered value both fail the tag check: one answer for both. */
    rv = KV_ERR_AUTH;
    if (!kv_seal_key(pin != NULL ? pin : "", pinlen, salt, saltlen, iter, key) ||
        EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)purpose, (int)strlen(purpose)) != 1 ||
        EVP_DecryptUpdate(c, pt, &n, ct, (int)(ctlen - 16)) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, ct + ctlen - 16) != 1 ||
        EVP_DecryptFinal_ex(c, pt + n, &n2) != 1) {
        rv = kv_err_set(err, KV_ERR_AUTH, "incorrect PIN (or an altered %s_sealed value)", purpose);
        goto done;
    }
    *outlen = (size_t)n + (size_t)n2;
    pt[*outlen] = '\0';
    *out = pt;
    pt = NULL;
    rv = KV_OK;
    goto done;
bad:
    rv = kv_err_set(err, KV_ERR_INVALID_ARG, "not a sealed value (expected %s...)", KV_SEAL_PREFIX);
done:
    OPENSSL_cleanse(key, sizeof(key));
    EVP_CIPHER_CTX_free(c);
    if (pt != NULL)
        OPENSSL_clear_free(pt, ctlen - 16 + 1);
    if (ct != NULL)
        OPENSSL_clear_free(ct, ctlen);
    free(salt);
    free(iv);
    free(buf);
    return rv;
}
