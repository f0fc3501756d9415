/* kv_status.h - status codes and the error detail that every vaultclient call fills in.
 *
 * Every fallible vaultclient function returns a kv_rv and takes an optional kv_err *
 * (NULL allowed) that receives the HTTP status, the Azure error code and a human-readable
 * message. The faces translate kv_rv into CK_RV or an OpenSSL reason and copy the message
 * onto their own error channel. Messages never contain keys, secrets or tokens. */
#ifndef KV_STATUS_H
#define KV_STATUS_H

#include <stddef.h>

/* Marks the few symbols kvault.so exports (see kvault.map); everything else is hidden. */
#define KV_EXPORT __attribute__((visibility("default")))

typedef enum {
    KV_OK = 0,
    KV_ERR_NOMEM,            /* allocation failed */
    KV_ERR_INVALID_ARG,      /* caller passed bad input (bad URI, bad length, NULL) */
    KV_ERR_CONFIG,           /* configuration missing or invalid */
    KV_ERR_NOT_FOUND,        /* 404: vault, key or version does not exist */
    KV_ERR_AUTH,             /* 401, or a token could not be obtained (bad credential) */
    KV_ERR_FORBIDDEN,        /* 403: not permitted (role, key_ops, disabled key) */
    KV_ERR_UNSUPPORTED,      /* algorithm / key type / operation not supported */
    KV_ERR_NETWORK,          /* could not connect, TLS failure, timeout */
    KV_ERR_SERVER,           /* 5xx, 429 after retries, or a response we cannot parse */
    KV_ERR_BAD_REQUEST,      /* 400 from the vault */
    KV_ERR_CONFLICT,         /* 409 */
    KV_ERR_BUFFER_TOO_SMALL, /* output buffer too small; required length returned */
    KV_ERR_INTERNAL,         /* a bug or an unexpected library failure */
    KV_ERR_LOCKED,           /* the vault's credential is sealed: unlock it with the PIN first */
} kv_rv;

typedef struct kv_err {
    kv_rv rv;
    long http_status;  /* 0 when no HTTP response was received */
    char code[64];     /* Azure error code, e.g. "KeyNotFound", or "" */
    char message[512]; /* human-readable reason, never secret material */
} kv_err;

/* Clears e (if non-NULL). */
void kv_err_clear(kv_err *e);

/* Sets e (if non-NULL) and returns rv, so callers can write `return kv_err_set(e, ...)`. */
kv_rv kv_err_set(kv_err *e, kv_rv rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends prefix to e->message (truncating the end if needed). */
void kv_err_prefix(kv_err *e, const char *prefix);

/* Short constant name of a status, e.g. "not found". */
const char *kv_rv_str(kv_rv rv);

#endif
