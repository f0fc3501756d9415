/* kv_http.c - libcurl transport: handle pool, private OpenSSL library context, fork safety,
 * retries with Retry-After, one overall deadline per call (see kv_http.h). */
#include "kv_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "kv_log.h"

#define KV_HTTP_POOL_MAX 64
#define KV_HTTP_MAX_BODY ((size_t)16 * 1024 * 1024)

struct kv_http {
    pthread_mutex_t mu;
    CURL *pool[KV_HTTP_POOL_MAX];
    size_t npool;
    pid_t pid; /* process that owns the pooled handles */
    long timeout_ms;
    int retries;
    OSSL_LIB_CTX *libctx; /* = kv_libctx */
    kv_http *next_live; /* fork registry link */
};

/* ---- the private OpenSSL library context (default provider only) ----
 * One per process, created on first use and deliberately never freed: OpenSSL 3.0 runs
 * per-thread clean-up handlers for a library context when each thread that used it exits,
 * and freeing the context while another thread is still exiting is a use-after-free. Keeping
 * it for the process's life (kvault.so is never unloaded, -z nodelete) also spares every
 * C_Initialize/C_Finalize cycle a provider load. This is the only process-wide state here
 * besides the fork registry below. */

static pthread_once_t kv_libctx_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *kv_libctx;

static void kv_libctx_create(void)
{
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();

    if (lc != NULL && OSSL_PROVIDER_load(lc, "default") == NULL) {
        OSSL_LIB_CTX_free(lc);
        lc = NULL;
    }
    kv_libctx = lc;
}

/* ---- fork registry: every live kv_http, so fork handlers can make each one safe ---- */

static pthread_mutex_t kv_fork_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static kv_http *kv_fork_registry;
static pthread_once_t kv_fork_once = PTHREAD_ONCE_INIT;

static void kv_fork_prepare(void)
{
    kv_http *h;

    pthread_mutex_lock(&kv_fork_registry_mu);
    for (h = kv_fork_registry; h != NULL; h = h->next_live)
        pthread_mutex_lock(&h->mu);
}

static void kv_fork_parent(void)
{
    kv_http *h;

    for (h = kv_fork_registry; h != NULL; h = h->next_live)
        pthread_mutex_unlock(&h->mu);
    pthread_mutex_unlock(&kv_fork_registry_mu);
}

static void kv_fork_child(void)
{
    kv_http *h;

    for (h = kv_fork_registry; h != NULL; h = h->next_live) {
        /* The parent's connections (and their TLS state) stay the parent's: forget the
         * handles without cleaning them up, so no close_notify is sent on shared sockets. */
        h->npool = 0;
        h->pid = getpid();
        pthread_mutex_unlock(&h->mu);
    }
    pthread_mutex_unlock(&kv_fork_registry_mu);
}

static void kv_fork_register_handlers(void)
{
    pthread_atfork(kv_fork_prepare, kv_fork_parent, kv_fork_child);
}

/* ---- lifecycle ---- */

kv_rv kv_http_new(long timeout_s, int retries, kv_http **out, kv_err *err)
{
    kv_http *h;

    if (out == NULL || timeout_s <= 0)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad HTTP settings");
    /* curl_global_init is reference counted and thread-safe in libcurl >= 7.84; we never
     * call curl_global_cleanup, so the host's own use of libcurl is never disturbed. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return kv_err_set(err, KV_ERR_INTERNAL, "libcurl initialisation failed");
    pthread_once(&kv_fork_once, kv_fork_register_handlers);
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return KV_ERR_NOMEM;
    pthread_mutex_init(&h->mu, NULL);
    h->timeout_ms = timeout_s * 1000;
    h->retries = retries;
    h->pid = getpid();
    pthread_once(&kv_libctx_once, kv_libctx_create);
    h->libctx = kv_libctx;
    if (h->libctx == NULL) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return kv_err_set(err, KV_ERR_INTERNAL, "cannot create a private OpenSSL context");
    }
    pthread_mutex_lock(&kv_fork_registry_mu);
    h->next_live = kv_fork_registry;
    kv_fork_registry = h;
    pthread_mutex_unlock(&kv_fork_registry_mu);
    *out = h;
    return KV_OK;
}

void kv_http_free(kv_http *h)
{
    kv_http **pp;
    size_t i;

    if (h == NULL)
        return;
    pthread_mutex_lock(&kv_fork_registry_mu);
    for (pp = &kv_fork_registry; *pp != NULL; pp = &(*pp)->next_live)
        if (*pp == h) {
            *pp = h->next_live;
            break;
        }
    pthread_mutex_unlock(&kv_fork_registry_mu);
    if (h->pid == getpid()) {
        OSSL_LIB_CTX *prev = OSSL_LIB_CTX_set0_default(h->libctx);
        for (i = 0; i < h->npool; i++)
            curl_easy_cleanup(h->pool[i]);
        OSSL_LIB_CTX_set0_default(prev);
    }
    /* the private library context is process-wide and never freed (see kv_libctx) */
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void kv_http_lock(kv_http *h)
{
    pthread_mutex_lock(&h->mu);
}

void kv_http_unlock(kv_http *h)
{
    pthread_mutex_unlock(&h->mu);
}

long kv_http_timeout_ms(const kv_http *h)
{
    return h != NULL ? h->timeout_ms : 0;
}

OSSL_LIB_CTX *kv_http_libctx(kv_http *h)
{
    return h != NULL ? h->libctx : NULL;
}

void kv_http_with_libctx(kv_http *h, void (*fn)(void *), void *arg)
{
    OSSL_LIB_CTX *prev = OSSL_LIB_CTX_set0_default(h->libctx);

    fn(arg);
    OSSL_LIB_CTX_set0_default(prev);
}

static CURL *pool_get(kv_http *h)
{
    CURL *c = NULL;

    pthread_mutex_lock(&h->mu);
    if (h->npool > 0)
        c = h->pool[--h->npool];
    pthread_mutex_unlock(&h->mu);
    if (c == NULL)
        c = curl_easy_init();
    return c;
}

static void pool_put(kv_http *h, CURL *c, pid_t owner)
{
    pthread_mutex_lock(&h->mu);
    if (owner != h->pid) {
        /* Taken before a fork by a thread of the parent: not ours to reuse or close. */
        c = NULL;
    } else if (h->npool < KV_HTTP_POOL_MAX) {
        h->pool[h->npool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (c != NULL)
        curl_easy_cleanup(c);
}

/* ---- one transfer ---- */

typedef struct {
    char *buf;
    size_t len;
    int overflow;
} kv_sink;

typedef struct {
    long retry_after; /* seconds, -1 if absent */
    char www_auth[512];
} kv_hdrs;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    kv_sink *s = ud;
    size_t n = size * nmemb;
    char *nb;

    if (s->len + n > KV_HTTP_MAX_BODY) {
        s->overflow = 1;
        return 0;
    }
    nb = realloc(s->buf, s->len + n + 1);
    if (nb == NULL)
        return 0;
    memcpy(nb + s->len, ptr, n);
    s->buf = nb;
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    kv_hdrs *h = ud;
    size_t n = size * nmemb, vlen;
    const char *v;

    if (n > 12 && strncasecmp(ptr, "retry-after:", 12) == 0) {
        h->retry_after = strtol(ptr + 12, NULL, 10);
    } else if (n > 17 && strncasecmp(ptr, "www-authenticate:", 17) == 0) {
        v = ptr + 17;
        while (v < ptr + n && (*v == ' ' || *v == '\t'))
            v++;
        vlen = (size_t)(ptr + n - v);
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
            vlen--;
        if (vlen >= sizeof(h->www_auth))
            vlen = sizeof(h->www_auth) - 1;
        memcpy(h->www_auth, v, vlen);
        h->www_auth[vlen] = '\0';
    }
    return n;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static kv_rv perform_once(kv_http *h, CURL *c, const kv_http_req *req, long budget_ms,
                          kv_sink *sink, kv_hdrs *hdrs, long *status, kv_err *err)
{
    struct curl_slist *list = NULL, *tmp;
    const char *const *hp;
    char errbuf[CURL_ERROR_SIZE] = "";
    OSSL_LIB_CTX *prev;
    CURLcode cc;
    kv_rv rv = KV_OK;

    for (hp = req->headers; hp != NULL && *hp != NULL; hp++) {
        tmp = curl_slist_append(list, *hp);
        if (tmp == NULL) {
            curl_slist_free_all(list);
            return KV_ERR_NOMEM;
        }
        list = tmp;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, req->identity_endpoint ? "http,https" : "https");
    if (req->identity_endpoint)
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, "ECDHE+AESGCM:ECDHE+CHACHA20");
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, budget_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, budget_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kvault/0.1");
    if (req->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "DELETE") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (list != NULL)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hdrs);

    prev = OSSL_LIB_CTX_set0_default(h->libctx);
    cc = curl_easy_perform(c);
    OSSL_LIB_CTX_set0_default(prev);

    if (cc != CURLE_OK) {
        if (sink->overflow)
            rv = kv_err_set(err, KV_ERR_SERVER, "response from %s too large", req->url);
        else
            rv = kv_err_set(err, KV_ERR_NETWORK, "vault unreachable: %s: %s", req->url,
                            errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(list);
    return rv;
}

kv_rv kv_http_do(kv_http *h, const kv_http_req *req, kv_http_resp *resp, kv_err *err)
{
    long long deadline, left;
    long status = 0, wait_ms;
    int attempt;
    CURL *c;
    pid_t owner;
    kv_rv rv = KV_ERR_NETWORK;

    if (h == NULL || req == NULL || req->url == NULL || req->method == NULL || resp == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad HTTP request");
    memset(resp, 0, sizeof(*resp));
    deadline = now_ms() + (req->timeout_ms > 0 ? req->timeout_ms : h->timeout_ms);
    for (attempt = 0;; attempt++) {
        kv_sink sink = {NULL, 0, 0};
        kv_hdrs hdrs;

        memset(&hdrs, 0, sizeof(hdrs));
        hdrs.retry_after = -1;
        pthread_mutex_lock(&h->mu);
        owner = h->pid;
        pthread_mutex_unlock(&h->mu);
        c = pool_get(h);
        if (c == NULL)
            return kv_err_set(err, KV_ERR_NOMEM, "cannot create an HTTP handle");
        left = deadline - now_ms();
        if (left < 1)
            left = 1;
        status = 0;
        rv = perform_once(h, c, req, (long)left, &sink, &hdrs, &status, err);
        pool_put(h, c, owner);
        if (rv == KV_OK && status != 429 && status < 500) {
            resp->status = status;
            resp->body = sink.buf != NULL ? sink.buf : strdup("");
            resp->body_len = sink.len;
            memcpy(resp->www_authenticate, hdrs.www_auth, sizeof(hdrs.www_auth));
            if (resp->body == NULL)
                return KV_ERR_NOMEM;
            return KV_OK;
        }
        /* Retry? 429 and 5xx (not 501/505), and connection failures. */
        if (rv == KV_OK) {
            wait_ms = hdrs.retry_after >= 0 ? hdrs.retry_after * 1000 : 500L << attempt;
            if (status == 501 || status == 505)
                attempt = h->retries;
        } else {
            wait_ms = 100L << attempt;
        }
        if (attempt >= h->retries || req->no_retry || now_ms() + wait_ms >= deadline ||
            rv == KV_ERR_NOMEM) {
            if (rv == KV_OK) {
                /* Give the caller the final 429/5xx response. */
                resp->status = status;
                resp->body = sink.buf != NULL ? sink.buf : strdup("");
                resp->body_len = sink.len;
                memcpy(resp->www_authenticate, hdrs.www_auth, sizeof(hdrs.www_auth));
                return resp->body == NULL ? KV_ERR_NOMEM : KV_OK;
            }
            free(sink.buf);
            return rv;
        }
        free(sink.buf);
        KV_DEBUG("retrying %s %s in %ld ms (attempt %d)", req->method, req->url, wait_ms,
                 attempt + 1);
        sleep_ms(wait_ms);
    }
}

void kv_http_resp_free(kv_http_resp *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
