/* kv_http.h - HTTPS transport for vaultclient on libcurl.
 *
 * - Connection reuse: a pool of curl easy handles (each keeps its connection alive).
 * - TLS: verification always on, TLS 1.2+, forward-secret AEAD suites for TLS 1.2.
 * - No recursion into providers: every transfer runs with a private OSSL_LIB_CTX (only the
 *   default provider) made the thread's default for the duration of the transfer.
 * - Fork safety: a child process never uses (or cleans up) the parent's handles; it
 *   abandons them and opens fresh connections.
 * - Retries: connection failures, 429 and 5xx are retried up to `retries` times, honouring
 *   Retry-After (seconds) within the configured timeout. */
#ifndef KV_HTTP_H
#define KV_HTTP_H

#include <stddef.h>

#include <openssl/types.h>

#include "kv_status.h"

typedef struct kv_http kv_http;

typedef struct kv_http_req {
    const char *method;         /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;            /* absolute https URL */
    const char *const *headers; /* NULL-terminated "Name: value" list, may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    const char *ca_file; /* NULL = system CA store */
    /* Managed identity endpoints only (kv_token_mi.c): plain http allowed, never via a proxy.
     * The caller has checked that the host is loopback or link-local. */
    int identity_endpoint;
    int no_retry;    /* one attempt: the caller has its own retry schedule */
    long timeout_ms; /* 0 = the transport's timeout */
} kv_http_req;

typedef struct kv_http_resp {
    long status;
    char *body; /* NUL-terminated, malloc'd (may be empty) */
    size_t body_len;
    char www_authenticate[512];
} kv_http_resp;

kv_rv kv_http_new(long timeout_s, int retries, kv_http **out, kv_err *err);
void kv_http_free(kv_http *h);

/* The configured timeout of one call, in milliseconds. */
long kv_http_timeout_ms(const kv_http *h);

/* The private library context (default provider only) used for HTTPS and public keys. */
OSSL_LIB_CTX *kv_http_libctx(kv_http *h);

/* Performs req; on any HTTP response returns KV_OK with resp filled (caller frees with
 * kv_http_resp_free), whatever the status. KV_ERR_NETWORK if no response was received. */
kv_rv kv_http_do(kv_http *h, const kv_http_req *req, kv_http_resp *resp, kv_err *err);
void kv_http_resp_free(kv_http_resp *resp);

/* The transport's short lock, also used by the token cache. The fork handlers hold it
 * across fork(), so data it guards is consistent in the child. Never hold it across I/O. */
void kv_http_lock(kv_http *h);
void kv_http_unlock(kv_http *h);

/* Runs fn(arg) with the private library context as this thread's default. */
void kv_http_with_libctx(kv_http *h, void (*fn)(void *), void *arg);

#endif
