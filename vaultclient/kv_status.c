/* kv_status.c - kv_err helpers and status names. */
#include "kv_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kv_err_clear(kv_err *e)
{
    if (e == NULL)
        return;
    memset(e, 0, sizeof(*e));
}

kv_rv kv_err_set(kv_err *e, kv_rv rv, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return rv;
    e->rv = rv;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return rv;
}

void kv_err_prefix(kv_err *e, const char *prefix)
{
    size_t plen, mlen;

    if (e == NULL || prefix == NULL)
        return;
    plen = strlen(prefix);
    if (plen >= sizeof(e->message))
        plen = sizeof(e->message) - 1;
    mlen = strnlen(e->message, sizeof(e->message) - 1);
    if (plen + mlen >= sizeof(e->message))
        mlen = sizeof(e->message) - 1 - plen;
    memmove(e->message + plen, e->message, mlen);
    memcpy(e->message, prefix, plen);
    e->message[plen + mlen] = '\0';
}

const char *kv_rv_str(kv_rv rv)
{
    switch (rv) {
    case KV_OK:
        return "ok";
    case KV_ERR_NOMEM:
        return "out of memory";
    case KV_ERR_INVALID_ARG:
        return "invalid argument";
    case KV_ERR_CONFIG:
        return "configuration error";
    case KV_ERR_NOT_FOUND:
        return "not found";
    case KV_ERR_AUTH:
        return "authentication failed";
    case KV_ERR_FORBIDDEN:
        return "forbidden";
    case KV_ERR_UNSUPPORTED:
        return "not supported";
    case KV_ERR_NETWORK:
        return "vault unreachable";
    case KV_ERR_SERVER:
        return "vault server error";
    case KV_ERR_BAD_REQUEST:
        return "bad request";
    case KV_ERR_CONFLICT:
        return "conflict";
    case KV_ERR_BUFFER_TOO_SMALL:
        return "buffer too small";
    case KV_ERR_INTERNAL:
        return "internal error";
    case KV_ERR_LOCKED:
        return "locked: PIN required";
    }
    return "unknown error";
}
