/* kv_uri.c - strict parser for kvault:// key URIs (grammar in kv_uri.h and docs/uris.md). */
#include "kv_uri.h"

#include <string.h>
#include <strings.h>

static int name_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Copies a segment ending at '/' or NUL into dst; returns its length or -1. */
static int take_segment(const char **p, char *dst, size_t max, int allow_dash)
{
    size_t n = 0;
    const char *s = *p;

    while (*s != '\0' && *s != '/') {
        if (!name_char(*s) || (!allow_dash && *s == '-') || n + 1 >= max)
            return -1;
        dst[n++] = *s++;
    }
    dst[n] = '\0';
    *p = s;
    return (int)n;
}

int kv_uri_is_kvault(const char *s)
{
    return s != NULL && strncasecmp(s, "kvault:", 7) == 0;
}

kv_rv kv_uri_parse(const char *uri, kv_uri *out, kv_err *err)
{
    const char *p;
    int n;

    if (uri == NULL || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no URI given");
    memset(out, 0, sizeof(*out));
    if (strncasecmp(uri, "kvault://", 9) != 0)
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "malformed kvault URI: expected kvault://VAULT/keys/NAME[/VERSION]");
    p = uri + 9;
    n = take_segment(&p, out->vault, sizeof(out->vault), 1);
    if (n < 3 || *p != '/')
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "malformed kvault URI: vault name must be 3-24 characters [0-9A-Za-z-]");
    p++;
    n = take_segment(&p, out->collection, sizeof(out->collection), 0);
    if (n <= 0 || strcmp(out->collection, "keys") != 0 || *p != '/')
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "malformed kvault URI: expected /keys/NAME after the vault name");
    p++;
    n = take_segment(&p, out->name, sizeof(out->name), 1);
    if (n < 1)
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "malformed kvault URI: key name must be 1-127 characters [0-9A-Za-z-]");
    if (*p == '/') {
        p++;
        n = take_segment(&p, out->version, sizeof(out->version), 0);
        if (n < 1)
            return kv_err_set(err, KV_ERR_INVALID_ARG,
                              "malformed kvault URI: version must be 1-64 characters [0-9A-Za-z]");
    }
    if (*p != '\0')
        return kv_err_set(err, KV_ERR_INVALID_ARG,
                          "malformed kvault URI: unexpected text after the key");
    return KV_OK;
}
