/* vd_server.c - libevent evhttp over bufferevent_openssl; one event loop, listening socket
 * (SO_REUSEPORT) and SQLite connection per worker thread; the work pool for slow requests;
 * request limits (method, request line, headers, body) and the request timeout answered in
 * Azure's JSON error shape, including the errors libevent answers by itself; clean stop on
 * SIGTERM/SIGINT. */
#include "vd_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* evhttp_request fields for libevent's own errors */
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "vd_http.h"
#include "vd_router.h"
#include "vd_store.h"
#include "vd_workpool.h"

#define VD_MAX_URI (16 * 1024)             /* request line; longer is 414 */
#define VD_MAX_HEADER_BYTES (64 * 1024)    /* request line + header lines; more is 431 */
#define VD_EVHTTP_MAX_HEADERS (256 * 1024) /* evhttp's own limit (it answers beyond this) */
#define VD_WRITE_TIMEOUT 60                /* seconds of no progress writing a reply */
#define VD_REQUEST_TIMEOUT_DEFAULT 60

/* The server: reachable from an SSL object through its SSL_CTX's app data (libevent's own
 * error replies have no context argument, see evhttp_send_error below). */
typedef struct vd_server {
    vd_ctx *ctx;
    int conn_idx; /* SSL ex_data index of a connection's vd_conn */
} vd_server;

typedef struct vd_worker {
    vd_ctx *ctx;
    vd_server *srv;
    int index;
    struct event_base *base;
    struct evhttp *http;
    vd_store *store;
    pthread_t thread;
    bool running;
} vd_worker;

/* One TLS connection: freed with its SSL object (ex_data free callback), i.e. whenever libevent
 * frees the connection. The deadline runs while a request is being received (from the accept,
 * or from the end of the previous reply on a keep-alive connection) and is stopped while
 * vaultd works on the request. */
typedef struct vd_conn {
    vd_worker *w;
    struct bufferevent *bev; /* the bufferevent_openssl */
    struct event *deadline;
} vd_conn;

kv_rv vd_server_tls_init(vd_ctx *ctx)
{
    char cert[PATH_MAX + 16], key[PATH_MAX + 16];
    SSL_CTX *c;

    if (ctx == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(cert, sizeof(cert), "%s/server.pem", ctx->cfg.state_dir);
    snprintf(key, sizeof(key), "%s/server.key", ctx->cfg.state_dir);
    c = SSL_CTX_new(TLS_server_method());
    if (c == NULL)
        return KV_ERR_INTERNAL;
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
        fprintf(stderr, "vaultd: cannot set up TLS with %s\n", cert);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return KV_ERR_CONFIG;
    }
    ctx->ssl_ctx = c;
    return KV_OK;
}

static void vd_conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    vd_conn *c = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (c == NULL)
        return;
    if (c->deadline != NULL)
        event_free(c->deadline);
    free(c);
}

static void vd_stderr_line(const char *msg)
{
    char line[200], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    int n;

    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(line, sizeof(line), "%s vaultd: %s\n", ts, msg);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The request timeout: the whole request (TLS handshake, request line, headers, body) did not
 * arrive in time - a slowloris client or an idle keep-alive connection. Shutting the socket
 * down makes libevent see EOF and free the connection through its normal path. */
static void vd_conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    vd_conn *c = arg;
    evutil_socket_t s = bufferevent_getfd(c->bev);

    (void)fd;
    (void)what;
    if (s >= 0) {
        vd_stderr_line("request timeout: connection closed");
        shutdown(s, SHUT_RDWR);
    }
}

static void vd_conn_arm(vd_conn *c)
{
    struct timeval tv = {c->w->ctx->cfg.request_timeout, 0};

    evtimer_add(c->deadline, &tv);
}

/* The connection of a request (NULL when it is not one of ours or already gone). */
static vd_conn *vd_conn_of(struct evhttp_request *ev)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    vd_server *srv = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;

    return srv ? SSL_get_ex_data(ssl, srv->conn_idx) : NULL;
}

/* The reply has been written: the next request on this keep-alive connection gets a fresh
 * deadline (libevent frees the connection right after this when it is to be closed). */
static void vd_conn_reply_done(struct evhttp_request *ev, void *arg)
{
    (void)ev;
    vd_conn_arm(arg);
}

static struct bufferevent *vd_bevcb(struct event_base *base, void *arg)
{
    vd_worker *w = arg;
    SSL *ssl = SSL_new(w->ctx->ssl_ctx);
    struct bufferevent *bev;
    vd_conn *c;

    if (ssl == NULL)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL || SSL_set_ex_data(ssl, w->srv->conn_idx, c) != 1) {
        free(c);
        SSL_free(ssl);
        return NULL;
    }
    c->w = w;
    c->deadline = evtimer_new(base, vd_conn_deadline_cb, c);
    if (c->deadline == NULL) {
        SSL_free(ssl); /* frees c */
        return NULL;
    }
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    c->bev = bev;
    vd_conn_arm(c);
    return bev;
}

static bool vd_method_allowed(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "POST") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "DELETE") == 0;
}

/* Bytes of the request line and header lines as received (each line with its CRLF). */
static size_t vd_header_bytes(struct evhttp_request *ev)
{
    const struct evkeyvalq *h = evhttp_request_get_input_headers(ev);
    const struct evkeyval *kv;
    const char *uri = evhttp_request_get_uri(ev);
    size_t n = (uri ? strlen(uri) : 0) + 20;

    for (kv = TAILQ_FIRST(h); kv != NULL; kv = TAILQ_NEXT(kv, next))
        n += strlen(kv->key) + strlen(kv->value) + 4;
    return n;
}

/* Limits checked before routing; false after answering. */
static bool vd_request_acceptable(vd_req *r, bool parsed)
{
    const char *uri = evhttp_request_get_uri(r->ev);

    if (!vd_method_allowed(r->method)) {
        /* the body (if any) of a method evhttp does not expect a body for is not read */
        vd_add_header(r, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE");
        vd_add_header(r, "Connection", "close");
        vd_reply_error(r, 405, "MethodNotAllowed", NULL,
                       "The HTTP method %s is not allowed by this service.", r->method);
        return false;
    }
    if (uri != NULL && strlen(uri) > VD_MAX_URI) {
        vd_reply_error(r, 414, "RequestUriTooLong", NULL,
                       "The request URI exceeds the maximum length of %d bytes.", VD_MAX_URI);
        return false;
    }
    if (vd_header_bytes(r->ev) > VD_MAX_HEADER_BYTES) {
        vd_reply_error(r, 431, "RequestHeaderFieldsTooLarge", NULL,
                       "The request headers exceed the maximum size of %d bytes.",
                       VD_MAX_HEADER_BYTES);
        return false;
    }
    if (!parsed) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The request is malformed.");
        return false;
    }
    return true;
}

static void vd_on_request(struct evhttp_request *ev, void *arg)
{
    vd_worker *w = arg;
    vd_conn *c = vd_conn_of(ev);
    vd_req *r;
    bool parsed;

    if (c != NULL) { /* received in time: no deadline while vaultd works on it */
        evtimer_del(c->deadline);
        evhttp_request_set_on_complete_cb(ev, vd_conn_reply_done, c);
    }
    ERR_clear_error();
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        evhttp_send_reply(ev, 503, "Service Unavailable", NULL);
        return;
    }
    parsed = vd_req_init(r, ev, w->ctx, w->store) == KV_OK;
    if (vd_request_acceptable(r, parsed))
        vd_router_dispatch(r);
    if (r->deferred) /* the work pool finishes it (vd_workpool.c) */
        return;
    vd_req_finish(r);
}

/* libevent 2.1 answers some requests by itself and has no error callback: malformed request
 * lines or headers (400), headers beyond its own limit (400), a body beyond the limit (413,
 * after reading and discarding the body: EVHTTP_SERVER_LINGERING_CLOSE), an Expect other than
 * 100-continue (417). It does so through its exported evhttp_send_error(), which it calls
 * through the PLT; vaultd defines that function itself (ELF symbol interposition, the
 * executable's definition wins) to send Azure's JSON error shape instead of libevent's HTML
 * page. vaultd never calls it. On a platform that binds libevent's internal calls directly
 * (-Bsymbolic) the statuses stay the same and only the body is libevent's HTML. */
KV_EXPORT void evhttp_send_error(struct evhttp_request *req, int error, const char *reason);
void evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    vd_conn *c = vd_conn_of(req);
    const char *code = "BadRequest", *msg = "The request line or headers are malformed.";
    /* header bytes parsed + what is still unparsed: beyond evhttp's limit = too long */
    size_t seen = req->headers_size + (bev ? evbuffer_get_length(bufferevent_get_input(bev)) : 0);
    bool line_parsed = req->type != 0;
    vd_req *r;

    (void)reason;
    if (req->major == 0) /* request line not understood: answer HTTP/1.1 like libevent does */
        req->major = req->minor = 1;
    if (error == 413) {
        /* also a malformed chunk of a chunked body: libevent reports both the same way */
        code = "RequestEntityTooLarge";
        msg = "The request body exceeds the maximum size of 1048576 bytes.";
    } else if (error == 400 && seen > VD_EVHTTP_MAX_HEADERS) {
        error = line_parsed ? 431 : 414;
        code = line_parsed ? "RequestHeaderFieldsTooLarge" : "RequestUriTooLong";
        msg = line_parsed ? "The request headers are too large." : "The request URI is too long.";
    } else if (error == 417) {
        code = "ExpectationFailed";
        msg = "Only the expectation 100-continue is supported.";
    } else if (error == 501) {
        error = 405;
        code = "MethodNotAllowed";
        msg = "The HTTP method is not allowed by this service.";
    } else if (error != 400) {
        code = "BadRequest";
        msg = "The request cannot be processed.";
    }
    r = c != NULL ? calloc(1, sizeof(*r)) : NULL;
    if (r == NULL) { /* not a vaultd TLS connection: the shape without vaultd's headers */
        struct evbuffer *buf = evbuffer_new();

        evhttp_clear_headers(evhttp_request_get_output_headers(req));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json; charset=utf-8");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        if (buf != NULL)
            evbuffer_add_printf(buf, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
        evhttp_send_reply(req, error, code, buf);
        if (buf != NULL)
            evbuffer_free(buf);
        return;
    }
    evtimer_del(c->deadline);
    (void)vd_req_init(r, req, c->w->ctx, c->w->store); /* fails (no URI); r is still usable */
    evhttp_clear_headers(evhttp_request_get_output_headers(req));
    vd_add_header(r, "Connection", "close"); /* libevent gave up on this connection */
    vd_reply_error(r, error, code, NULL, "%s", msg);
    vd_req_finish(r);
}

/* A listening socket on addr with SO_REUSEPORT (reuseport = true) or without. */
static int vd_listen_socket(const struct addrinfo *ai, bool reuseport)
{
    int fd, one = 1;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    /* TCP_NODELAY is inherited by accepted sockets: without it every keep-alive response
     * waits ~40 ms for the client's delayed ACK (docs/http-server-choice.md). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || (reuseport && listen(fd, 1024) != 0)) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void *vd_worker_main(void *arg)
{
    vd_worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static kv_rv vd_worker_init(vd_worker *w, vd_server *srv, int index, const struct addrinfo *ai)
{
    vd_ctx *ctx = srv->ctx;
    int fd;

    w->ctx = ctx;
    w->srv = srv;
    w->index = index;
    if (vd_store_open(ctx->db_path, &w->store) != KV_OK)
        return KV_ERR_INTERNAL;
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (w->http == NULL)
        return KV_ERR_NOMEM;
    evhttp_set_bevcb(w->http, vd_bevcb, w);
    evhttp_set_gencb(w->http, vd_on_request, w);
    /* every method, also ones libevent does not know (its internal "unknown" bit is among the
     * 16): vd_request_acceptable answers 405 instead of libevent's 501 page */
    evhttp_set_allowed_methods(w->http, (ev_uint16_t)0xffff);
    evhttp_set_max_body_size(w->http, VD_MAX_BODY);
    evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE); /* 413 after reading the body */
    evhttp_set_max_headers_size(w->http, VD_EVHTTP_MAX_HEADERS);
    evhttp_set_timeout(w->http, VD_WRITE_TIMEOUT); /* inactivity; vd_conn: whole request */
    fd = vd_listen_socket(ai, true);
    if (fd < 0) {
        fprintf(stderr, "vaultd: cannot listen on %s:%d: %s\n", ctx->cfg.listen_host, ctx->cfg.port,
                strerror(errno));
        return KV_ERR_NETWORK;
    }
    if (evhttp_accept_socket(w->http, fd) != 0) {
        close(fd);
        return KV_ERR_NETWORK;
    }
    return KV_OK;
}

static void vd_worker_free(vd_worker *w)
{
    if (w->base != NULL) /* completions of work-pool jobs still pending */
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (w->http != NULL)
        evhttp_free(w->http);
    if (w->base != NULL)
        event_base_free(w->base);
    vd_store_close(w->store);
    memset(w, 0, sizeof(*w));
}

static void vd_silent_log(int severity, const char *msg)
{
    (void)severity;
    (void)msg; /* libevent's own messages could name peers; stay quiet */
}

kv_rv vd_server_run(vd_ctx *ctx)
{
    struct addrinfo hints = {0}, *ai = NULL;
    vd_server srv = {ctx, -1};
    vd_worker *workers = NULL;
    char port[16];
    sigset_t sigs;
    int i, sig = 0, probe;
    kv_rv rv = KV_ERR_INTERNAL;

    if (ctx == NULL || ctx->ssl_ctx == NULL || ctx->cfg.threads < 1)
        return KV_ERR_INVALID_ARG;
    event_set_log_callback(vd_silent_log);
    if (evthread_use_pthreads() != 0)
        return KV_ERR_INTERNAL;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* workers inherit the mask; main sigwaits */

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", ctx->cfg.port);
    if (getaddrinfo(ctx->cfg.listen_host, port, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "vaultd: cannot resolve listen address %s\n", ctx->cfg.listen_host);
        return KV_ERR_CONFIG;
    }
    /* Fail clearly if someone else holds the port (SO_REUSEPORT would silently share it). */
    probe = vd_listen_socket(ai, false);
    if (probe < 0) {
        fprintf(stderr, "vaultd: cannot bind %s:%d: %s\n", ctx->cfg.listen_host, ctx->cfg.port,
                strerror(errno));
        rv = KV_ERR_NETWORK;
        goto done;
    }
    close(probe);

    if (ctx->cfg.request_timeout <= 0)
        ctx->cfg.request_timeout = VD_REQUEST_TIMEOUT_DEFAULT;
    srv.conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, vd_conn_free_cb);
    if (srv.conn_idx < 0) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    SSL_CTX_set_app_data(ctx->ssl_ctx, &srv);
    /* at least 2 pool threads: slow work of one request leaves another pool thread free */
    rv = vd_workpool_new(ctx->cfg.threads < 2 ? 2 : ctx->cfg.threads, &ctx->workpool);
    if (rv != KV_OK)
        goto done;
    workers = calloc((size_t)ctx->cfg.threads, sizeof(*workers));
    if (workers == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (i = 0; i < ctx->cfg.threads; i++) {
        rv = vd_worker_init(&workers[i], &srv, i, ai);
        if (rv != KV_OK)
            goto stop;
    }
    for (i = 0; i < ctx->cfg.threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, vd_worker_main, &workers[i]) != 0) {
            rv = KV_ERR_INTERNAL;
            goto stop;
        }
        workers[i].running = true;
    }
    fprintf(stderr, "vaultd: listening on https://%s:%d with %d worker thread(s)\n",
            ctx->cfg.listen_host, ctx->cfg.port, ctx->cfg.threads);
    while (sigwait(&sigs, &sig) != 0)
        ;
    fprintf(stderr, "vaultd: signal %d, shutting down\n", sig);
    rv = KV_OK;
stop:
    vd_workpool_stop(ctx->workpool); /* running jobs finish; their replies go out below */
    for (i = 0; i < ctx->cfg.threads; i++)
        if (workers[i].running)
            event_base_loopexit(workers[i].base, NULL);
    for (i = 0; i < ctx->cfg.threads; i++)
        if (workers[i].running)
            pthread_join(workers[i].thread, NULL);
    for (i = 0; i < ctx->cfg.threads; i++)
        vd_worker_free(&workers[i]);
done:
    free(workers);
    vd_workpool_stop(ctx->workpool);
    vd_workpool_free(ctx->workpool);
    ctx->workpool = NULL;
    if (srv.conn_idx >= 0) {
        SSL_CTX_set_app_data(ctx->ssl_ctx, NULL);
        CRYPTO_free_ex_index(CRYPTO_EX_INDEX_SSL, srv.conn_idx);
    }
    freeaddrinfo(ai);
    return rv;
}
