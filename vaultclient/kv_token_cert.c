/* kv_token_cert.c - the client certificate credential: loads a PEM file holding the
 * certificate (optionally its chain) and its private key, and makes the client assertion JWT
 * of the Microsoft identity platform (PS256 + x5t#S256 like msal-node, RS256 + x5t on request,
 * ES256 for P-256 keys). All OpenSSL work runs in the transport's private library context. */
#include "kv_token_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kv_b64.h"
#include "kv_client.h"
#include "kv_ecdsa.h"
#include "kv_log.h"

#define KV_CERT_MAX_FILE ((off_t)1024 * 1024)
#define KV_CERT_MAX_CHAIN 10

void kv_cert_clear(kv_cert_cred *c)
{
    size_t i;

    if (c == NULL)
        return;
    EVP_PKEY_free(c->key);
    for (i = 0; i < c->nx5c; i++)
        free(c->x5c[i]);
    free(c->x5c);
    memset(c, 0, sizeof(*c));
}

static char *cert_b64(X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    char *b;

    if (n <= 0)
        return NULL;
    b = kv_b64_encode(der, (size_t)n);
    OPENSSL_free(der);
    return b;
}

kv_rv kv_cert_load(const char *path, OSSL_LIB_CTX *libctx, kv_cert_cred *c, kv_err *err)
{
    struct stat st;
    FILE *f = NULL;
    char *pem = NULL;
    BIO *bio = NULL;
    X509 *certs[KV_CERT_MAX_CHAIN];
    size_t ncerts = 0, i, leaf = 0;
    EVP_PKEY *key = NULL;
    kv_cert_cred nc;
    unsigned char *der = NULL;
    int derlen, found = 0;
    size_t n;
    kv_rv rv = KV_OK;

    memset(&nc, 0, sizeof(nc));
    if (stat(path, &st) != 0)
        return kv_err_set(err, KV_ERR_CONFIG, "cannot read client_certificate %s: %s", path,
                          strerror(errno));
    if (c->key != NULL && c->dev == st.st_dev && c->ino == st.st_ino && c->size == st.st_size &&
        c->mtime_ns == (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec)
        return KV_OK; /* unchanged */
    if (!S_ISREG(st.st_mode) || st.st_size > KV_CERT_MAX_FILE)
        return kv_err_set(err, KV_ERR_CONFIG, "client_certificate %s is not a PEM file", path);
    if (st.st_mode & S_IROTH)
        KV_WARN("client_certificate %s (a private key) is readable by others", path);
    f = fopen(path, "r");
    if (f == NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "cannot read client_certificate %s: %s", path,
                          strerror(errno));
    pem = calloc(1, (size_t)st.st_size + 1);
    if (pem == NULL) {
        fclose(f);
        return KV_ERR_NOMEM;
    }
    n = fread(pem, 1, (size_t)st.st_size, f);
    fclose(f);
    bio = BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    key = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, (void *)"", libctx, NULL);
    if (key == NULL) {
        rv = kv_err_set(err, KV_ERR_CONFIG,
                        "client_certificate %s holds no unencrypted private key (PEM with the "
                        "certificate and its key expected)",
                        path);
        goto done;
    }
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    while (ncerts < KV_CERT_MAX_CHAIN) {
        X509 *x = X509_new_ex(libctx, NULL);

        if (x == NULL || PEM_read_bio_X509(bio, &x, NULL, NULL) == NULL) {
            X509_free(x);
            break;
        }
        certs[ncerts++] = x;
    }
    ERR_clear_error();
    for (i = 0; i < ncerts; i++)
        if (X509_check_private_key(certs[i], key) == 1) {
            leaf = i;
            found = 1;
            break;
        }
    ERR_clear_error();
    if (!found) {
        rv = kv_err_set(err, KV_ERR_CONFIG,
                        ncerts == 0 ? "client_certificate %s holds no certificate"
                                    : "client_certificate %s: no certificate matches the key",
                        path);
        goto done;
    }
    if (EVP_PKEY_is_a(key, "RSA") ? EVP_PKEY_get_bits(key) < 2048
                                  : !(EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 256)) {
        rv = kv_err_set(err, KV_ERR_CONFIG,
                        "client_certificate %s: the key must be RSA (2048 bits or more) or EC "
                        "P-256",
                        path);
        goto done;
    }
    derlen = i2d_X509(certs[leaf], &der);
    if (derlen <= 0 || !EVP_Q_digest(libctx, "SHA1", NULL, der, (size_t)derlen, nc.x5t, NULL) ||
        !EVP_Q_digest(libctx, "SHA256", NULL, der, (size_t)derlen, nc.x5t_s256, NULL)) {
        rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot hash the client certificate");
        goto done;
    }
    nc.x5c = calloc(ncerts, sizeof(char *));
    if (nc.x5c == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    nc.x5c[nc.nx5c] = cert_b64(certs[leaf]);
    if (nc.x5c[nc.nx5c++] == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (i = 0; i < ncerts; i++) {
        if (i == leaf)
            continue;
        nc.x5c[nc.nx5c] = cert_b64(certs[i]);
        if (nc.x5c[nc.nx5c++] == NULL) {
            rv = KV_ERR_NOMEM;
            goto done;
        }
    }
    nc.key = key;
    key = NULL;
    nc.dev = st.st_dev;
    nc.ino = st.st_ino;
    nc.size = st.st_size;
    nc.mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    kv_cert_clear(c);
    *c = nc;
    memset(&nc, 0, sizeof(nc));
done:
    kv_cert_clear(&nc);
    OPENSSL_free(der);
    for (i = 0; i < ncerts; i++)
        X509_free(certs[i]);
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, n);
        free(pem);
    }
    return rv;
}

/* b64url(JSON compact dump) */
static char *json_b64url(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *b;

    if (s == NULL)
        return NULL;
    b = kv_b64url_encode((const uint8_t *)s, strlen(s));
    free(s);
    return b;
}

static kv_rv random_guid(OSSL_LIB_CTX *libctx, char out[37])
{
    unsigned char b[16];

    if (RAND_bytes_ex(libctx, b, sizeof(b), 0) != 1)
        return KV_ERR_INTERNAL;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return KV_OK;
}

kv_rv kv_assertion_make(const kv_cert_cred *c, OSSL_LIB_CTX *libctx, const char *client_id,
                        const char *aud, int rs256, int send_chain, long long now, char **jwt,
                        kv_err *err)
{
    int is_ec = EVP_PKEY_is_a(c->key, "EC");
    const char *alg = is_ec ? "ES256" : (rs256 ? "RS256" : "PS256");
    json_t *hdr = NULL, *claims = NULL;
    char *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL, *thumb = NULL, *out = NULL;
    char guid[37];
    unsigned char *sig = NULL, raw[64];
    size_t siglen = 0, rawlen = sizeof(raw), ilen, i;
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    kv_rv rv = KV_ERR_NOMEM;

    *jwt = NULL;
    if (c->key == NULL || client_id == NULL || aud == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no certificate, client id or audience");
    if (random_guid(libctx, guid) != KV_OK)
        return kv_err_set(err, KV_ERR_INTERNAL, "no random numbers for the assertion jti");
    /* x5t (SHA-1) goes with RS256, as in the older documentation; x5t#S256 otherwise */
    thumb = rs256 && !is_ec ? kv_b64url_encode(c->x5t, sizeof(c->x5t))
                            : kv_b64url_encode(c->x5t_s256, sizeof(c->x5t_s256));
    hdr = json_object();
    claims = json_object();
    if (thumb == NULL || hdr == NULL || claims == NULL)
        goto done;
    json_object_set_new(hdr, "alg", json_string(alg));
    json_object_set_new(hdr, "typ", json_string("JWT"));
    json_object_set_new(hdr, rs256 && !is_ec ? "x5t" : "x5t#S256", json_string(thumb));
    if (send_chain) {
        json_t *arr = json_array();

        for (i = 0; arr != NULL && i < c->nx5c; i++)
            json_array_append_new(arr, json_string(c->x5c[i]));
        json_object_set_new(hdr, "x5c", arr);
    }
    json_object_set_new(claims, "aud", json_string(aud));
    json_object_set_new(claims, "iss", json_string(client_id));
    json_object_set_new(claims, "sub", json_string(client_id));
    json_object_set_new(claims, "jti", json_string(guid));
    json_object_set_new(claims, "nbf", json_integer(now));
    json_object_set_new(claims, "iat", json_integer(now));
    json_object_set_new(claims, "exp", json_integer(now + 600));
    h64 = json_b64url(hdr);
    c64 = json_b64url(claims);
    if (h64 == NULL || c64 == NULL)
        goto done;
    ilen = strlen(h64) + 1 + strlen(c64);
    input = malloc(ilen + 1);
    md = EVP_MD_CTX_new();
    if (input == NULL || md == NULL)
        goto done;
    snprintf(input, ilen + 1, "%s.%s", h64, c64);
    rv = kv_err_set(err, KV_ERR_INTERNAL, "cannot sign the client assertion");
    if (EVP_DigestSignInit_ex(md, &pctx, "SHA256", libctx, NULL, c->key, NULL) != 1)
        goto done;
    if (!is_ec && !rs256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto done;
    if (EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, ilen) != 1)
        goto done;
    sig = malloc(siglen);
    if (sig == NULL || EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, ilen) != 1)
        goto done;
    if (is_ec) {
        if (kv_ecdsa_der_to_raw(sig, siglen, 32, raw, &rawlen) != KV_OK)
            goto done;
        s64 = kv_b64url_encode(raw, rawlen);
    } else {
        s64 = kv_b64url_encode(sig, siglen);
    }
    if (s64 == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    ilen = strlen(input) + 1 + strlen(s64) + 1;
    out = malloc(ilen);
    if (out == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    snprintf(out, ilen, "%s.%s", input, s64);
    *jwt = out;
    kv_err_clear(err);
    rv = KV_OK;
done:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    free(sig);
    free(input);
    free(h64);
    free(c64);
    free(s64);
    free(thumb);
    json_decref(hdr);
    json_decref(claims);
    return rv;
}
