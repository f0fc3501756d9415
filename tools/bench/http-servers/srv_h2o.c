/* README: libh2o (evloop flavour, TLS via OpenSSL) HTTPS bench server; one h2o context + evloop +
 * SO_REUSEPORT listener per worker thread, shared globalconf and SSL_CTX. Usage: srv_h2o PORT CERT
 * KEY */
#define H2O_USE_LIBUV 0
#define KV_BENCH_OPENSSL 1
#include "kv_bench.h"

#include <stdatomic.h>
#include <h2o.h>

struct kv_worker {
    pthread_t tid;
    int fd;
    int started;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    _Atomic int *stop;
};

struct kv_app {
    h2o_globalconf_t config;
    SSL_CTX *ssl;
    _Atomic int stop;
    struct kv_worker w[KV_BENCH_THREADS];
};

static int kv_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return -1;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = KV_BENCH_BODY_LEN;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, KV_BENCH_BODY, KV_BENCH_BODY_LEN);
    return 0;
}

static void kv_on_accept(h2o_socket_t *listener, const char *err)
{
    struct kv_worker *w = listener->data;
    h2o_socket_t *sock;

    if (err != NULL || (sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    h2o_accept(&w->accept, sock);
}

static int kv_listen(uint16_t port)
{
    struct sockaddr_in sin = kv_bench_loopback(port);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *kv_worker_run(void *arg)
{
    struct kv_worker *w = arg;
    h2o_socket_t *lsock = h2o_evloop_socket_create(w->ctx.loop, w->fd, H2O_SOCKET_FLAG_DONT_READ);

    lsock->data = w;
    h2o_socket_read_start(lsock, kv_on_accept);
    while (!atomic_load(w->stop) && h2o_evloop_run(w->ctx.loop, 100) == 0)
        ;
    return NULL;
}

int main(int argc, char **argv)
{
    static struct kv_app app; /* large; h2o keeps pointers into it for the process lifetime */
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    sigset_t sigs;
    uint16_t port = 0;
    int rc = 1;

    if (argc != 4 || kv_bench_parse_port(argv[1], &port) != 0) {
        fprintf(stderr, "usage: %s PORT CERT KEY\n", argv[0]);
        return 2;
    }
    if (kv_bench_block_signals(&sigs) != 0)
        goto done;
    if ((app.ssl = kv_bench_ssl_ctx(argv[2], argv[3])) == NULL)
        goto done;
    h2o_config_init(&app.config);
    host = h2o_config_register_host(&app.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(path, sizeof(h2o_handler_t))->on_req = kv_on_req;
    for (int i = 0; i < KV_BENCH_THREADS; i++) {
        struct kv_worker *w = &app.w[i];

        if ((w->fd = kv_listen(port)) < 0) {
            fprintf(stderr, "h2o: cannot listen on 127.0.0.1:%u\n", port);
            goto done;
        }
        h2o_context_init(&w->ctx, h2o_evloop_create(), &app.config);
        w->accept.ctx = &w->ctx;
        w->accept.hosts = app.config.hosts;
        w->accept.ssl_ctx = app.ssl;
        w->stop = &app.stop;
        if (pthread_create(&w->tid, NULL, kv_worker_run, w) != 0)
            goto done;
        w->started = 1;
    }
    printf("h2o %s ready on 127.0.0.1:%u\n", H2O_VERSION, port);
    fflush(stdout);
    kv_bench_wait_signal(&sigs);
    rc = 0;
done:
    atomic_store(&app.stop, 1);
    for (int i = 0; i < KV_BENCH_THREADS; i++) {
        if (app.w[i].started)
            pthread_join(app.w[i].tid, NULL);
    }
    /* Process exit releases the h2o contexts/loops; SSL_CTX freed explicitly. */
    SSL_CTX_free(app.ssl);
    return rc;
}
