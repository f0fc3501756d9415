/* vd_server.c - libevent evhttp over bufferevent_openssl; one event loop, listening socket
 * (SO_REUSEPORT) and SQLite connection per worker thread; clean stop on SIGTERM/SIGINT. */
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
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "vd_http.h"
#include "vd_router.h"
#include "vd_store.h"

typedef struct vd_worker {
    vd_ctx *ctx;
    int index;
    struct event_base *base;
    struct evhttp *http;
    vd_store *store;
    pthread_t thread;
    bool running;
} vd_worker;

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

static struct bufferevent *vd_bevcb(struct event_base *base, void *arg)
{
    vd_worker *w = arg;
    SSL *ssl = SSL_new(w->ctx->ssl_ctx);
    struct bufferevent *bev;

    if (ssl == NULL)
        return NULL;
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void vd_on_request(struct evhttp_request *ev, void *arg)
{
    vd_worker *w = arg;
    vd_req r;

    ERR_clear_error();
    if (vd_req_init(&r, ev, w->ctx, w->store) != KV_OK)
        vd_reply_error(&r, 400, "BadParameter", NULL, "The request is malformed.");
    else
        vd_router_dispatch(&r);
    if (!r.replied)
        vd_reply_error(&r, 500, "InternalServerError", NULL, "The request was not answered.");
    vd_req_cleanup(&r);
    ERR_clear_error();
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

static kv_rv vd_worker_init(vd_worker *w, vd_ctx *ctx, int index, const struct addrinfo *ai)
{
    int fd;

    w->ctx = ctx;
    w->index = index;
    if (vd_store_open(ctx->db_path, &w->store) != KV_OK)
        return KV_ERR_INTERNAL;
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (w->http == NULL)
        return KV_ERR_NOMEM;
    evhttp_set_bevcb(w->http, vd_bevcb, w);
    evhttp_set_gencb(w->http, vd_on_request, w);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_max_body_size(w->http, VD_MAX_BODY);
    evhttp_set_max_headers_size(w->http, 64 * 1024);
    evhttp_set_timeout(w->http, 60);
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

    workers = calloc((size_t)ctx->cfg.threads, sizeof(*workers));
    if (workers == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (i = 0; i < ctx->cfg.threads; i++) {
        rv = vd_worker_init(&workers[i], ctx, i, ai);
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
    freeaddrinfo(ai);
    return rv;
}
