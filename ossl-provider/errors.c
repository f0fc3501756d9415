/* errors.c - the provider's reason strings and the helpers that put kvault failures on
 * the OpenSSL error queue (through the core's error functions, so the entries carry the
 * provider's own library name "kvault"). */
#include <stdarg.h>
#include <stdio.h>

#include <openssl/core_dispatch.h>
#include <openssl/err.h>

#include "kv_prov.h"

const OSSL_ITEM kv_prov_reason_strings[] = {
    {KV_PROV_R_MALFORMED_URI, "malformed kvault URI"},
    {KV_PROV_R_NO_VAULT, "vault not configured"},
    {KV_PROV_R_KEY_NOT_FOUND, "key not found"},
    {KV_PROV_R_VAULT_UNREACHABLE, "vault unreachable"},
    {KV_PROV_R_AUTH_FAILED, "vault authentication failed"},
    {KV_PROV_R_FORBIDDEN, "operation forbidden by the vault"},
    {KV_PROV_R_CONFIG, "kvault configuration error"},
    {KV_PROV_R_UNSUPPORTED, "not supported"},
    {KV_PROV_R_SERVER, "vault server error"},
    {KV_PROV_R_BAD_REQUEST, "vault rejected the request"},
    {KV_PROV_R_INVALID_ARG, "invalid argument"},
    {KV_PROV_R_NOMEM, "out of memory"},
    {KV_PROV_R_INTERNAL, "internal error"},
    {KV_PROV_R_CONFLICT, "vault conflict"},
    {KV_PROV_R_BUFFER_TOO_SMALL, "buffer too small"},
    {KV_PROV_R_BAD_DIGEST, "unsupported digest"},
    {KV_PROV_R_BAD_PADDING, "unsupported padding"},
    {KV_PROV_R_BAD_SALTLEN, "unsupported PSS salt length"},
    {KV_PROV_R_NO_KEY, "no vault key"},
    {KV_PROV_R_VERIFY_FAILED, "signature verification failed"},
    {KV_PROV_R_LOCKED, "vault locked: its credential is sealed under a PIN"},
    {0, NULL},
};

int kv_prov_reason_for(kv_rv rv)
{
    switch (rv) {
    case KV_OK:
        return KV_PROV_R_INTERNAL;
    case KV_ERR_NOMEM:
        return KV_PROV_R_NOMEM;
    case KV_ERR_INVALID_ARG:
        return KV_PROV_R_INVALID_ARG;
    case KV_ERR_CONFIG:
        return KV_PROV_R_CONFIG;
    case KV_ERR_NOT_FOUND:
        return KV_PROV_R_KEY_NOT_FOUND;
    case KV_ERR_AUTH:
        return KV_PROV_R_AUTH_FAILED;
    case KV_ERR_FORBIDDEN:
        return KV_PROV_R_FORBIDDEN;
    case KV_ERR_UNSUPPORTED:
        return KV_PROV_R_UNSUPPORTED;
    case KV_ERR_NETWORK:
        return KV_PROV_R_VAULT_UNREACHABLE;
    case KV_ERR_SERVER:
        return KV_PROV_R_SERVER;
    case KV_ERR_BAD_REQUEST:
        return KV_PROV_R_BAD_REQUEST;
    case KV_ERR_CONFLICT:
        return KV_PROV_R_CONFLICT;
    case KV_ERR_BUFFER_TOO_SMALL:
        return KV_PROV_R_BUFFER_TOO_SMALL;
    case KV_ERR_INTERNAL:
        return KV_PROV_R_INTERNAL;
    case KV_ERR_LOCKED:
        return KV_PROV_R_LOCKED;
    }
    return KV_PROV_R_INTERNAL;
}

static void kv_prov_vraise(kv_prov_ctx *pc, const char *file, int line, const char *func,
                           int reason, const char *fmt, va_list ap)
{
    if (pc == NULL || pc->core_new_error == NULL || pc->core_vset_error == NULL)
        return;
    pc->core_new_error(pc->handle);
    if (pc->core_set_error_debug != NULL)
        pc->core_set_error_debug(pc->handle, file, line, func);
    pc->core_vset_error(pc->handle, (uint32_t)reason, fmt, ap);
}

void kv_prov_raise_at(kv_prov_ctx *pc, const char *file, int line, const char *func, int reason,
                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kv_prov_vraise(pc, file, line, func, reason, fmt, ap);
    va_end(ap);
}

void kv_prov_raise_kv_at(kv_prov_ctx *pc, const char *file, int line, const char *func, kv_rv rv,
                         const kv_err *e, const char *what)
{
    const char *msg = (e != NULL && e->message[0] != '\0') ? e->message : kv_rv_str(rv);

    if (what != NULL)
        kv_prov_raise_at(pc, file, line, func, kv_prov_reason_for(rv), "%s: %s", what, msg);
    else
        kv_prov_raise_at(pc, file, line, func, kv_prov_reason_for(rv), "%s", msg);
}
