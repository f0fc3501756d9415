/* kv_token_static.c - a static bearer token read from a file (development): the token is the
 * file's content without surrounding whitespace; its expiry is the JWT's exp claim if any. */
#include "kv_token_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "kv_b64.h"

#define KV_TOKEN_FILE_MAX 65536

long long kv_jwt_exp_unverified(const char *jwt)
{
    const char *d1 = strchr(jwt, '.'), *d2;
    char *part;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_t *j;
    long long exp = 0;

    if (d1 == NULL || (d2 = strchr(d1 + 1, '.')) == NULL)
        return 0;
    part = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
    if (part == NULL)
        return 0;
    if (kv_b64_decode(part, &raw, &rawlen) == KV_OK) {
        j = json_loadb((const char *)raw, rawlen, 0, NULL);
        if (json_is_integer(json_object_get(j, "exp")))
            exp = json_integer_value(json_object_get(j, "exp"));
        json_decref(j);
        OPENSSL_cleanse(raw, rawlen);
    }
    free(raw);
    free(part);
    return exp;
}

kv_rv kv_static_read(const char *path, char **token, long long *expires_on, kv_err *err)
{
    char *buf = NULL, *s, *e;
    FILE *f = fopen(path, "r");
    size_t n;
    kv_rv rv = KV_OK;

    if (f == NULL)
        return kv_err_set(err, KV_ERR_AUTH, "cannot read token_file %s: %s", path, strerror(errno));
    buf = malloc(KV_TOKEN_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return KV_ERR_NOMEM;
    }
    n = fread(buf, 1, KV_TOKEN_FILE_MAX + 1, f);
    fclose(f);
    if (n > KV_TOKEN_FILE_MAX) {
        rv = kv_err_set(err, KV_ERR_AUTH, "token_file %s is too large", path);
        goto done;
    }
    buf[n] = '\0';
    for (s = buf; isspace((unsigned char)*s); s++)
        ;
    for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
        ;
    *e = '\0';
    if (*s == '\0' || strpbrk(s, " \t\r\n") != NULL) {
        rv = kv_err_set(err, KV_ERR_AUTH, "token_file %s holds no single token", path);
        goto done;
    }
    *token = strdup(s);
    if (*token == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    *expires_on = kv_jwt_exp_unverified(s);
done:
    OPENSSL_cleanse(buf, n < KV_TOKEN_FILE_MAX ? n + 1 : KV_TOKEN_FILE_MAX + 1);
    free(buf);
    return rv;
}
