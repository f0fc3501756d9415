/* README: libevent 2.1 evhttp + bufferevent_openssl HTTPS bench server; one event_base + one
 * SO_REUSEPORT listener per worker thread, shared SSL_CTX. Usage: srv_libevent PORT CERT KEY
 * [changelist]; "changelist" sets EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST (fewer epoll_ctl calls). */
#define KV_BENCH_OPENSSL 1
#include "kv_bench.h"

#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/tcp.h>

struct kv_worker {
    pthread_t tid;
    struct event_base *base;
    struct evhttp *http;
    int started;
};

struct kv_app {
    SSL_CTX *ssl;
    struct kv_worker w[KV_BENCH_THREADS];
};

static struct bufferevent *kv_bevcb(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new((SSL_CTX *)arg);
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

static void kv_on_req(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 405, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), KV_BENCH_BODY, KV_BENCH_BODY_LEN,
                           NULL, NULL);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void *kv_worker_run(void *arg)
{
    event_base_dispatch(((struct kv_worker *)arg)->base);
    return NULL;
}

static int kv_worker_init(struct kv_worker *w, SSL_CTX *ssl, uint16_t port, int changelist)
{
    struct sockaddr_in sin = kv_bench_loopback(port);
    struct event_config *cfg = event_config_new();
    struct evconnlistener *lst;
    int one = 1;

    if (cfg == NULL)
        return -1;
    if (changelist)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL || (w->http = evhttp_new(w->base)) == NULL)
        return -1;
    lst = evconnlistener_new_bind(w->base, NULL, NULL,
                                  LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                  128, (struct sockaddr *)&sin, sizeof(sin));
    if (lst == NULL || evhttp_bind_listener(w->http, lst) == NULL)
        return -1;
    /* evhttp writes headers and body as separate TLS records; without TCP_NODELAY (inherited by
     * accepted sockets on Linux) Nagle + delayed ACK add ~40 ms to every keep-alive response. */
    if (setsockopt(evconnlistener_get_fd(lst), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        return -1;
    evhttp_set_bevcb(w->http, kv_bevcb, ssl);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET);
    return evhttp_set_cb(w->http, "/", kv_on_req, NULL);
}

int main(int argc, char **argv)
{
    struct kv_app app;
    sigset_t sigs;
    uint16_t port = 0;
    int rc = 1, changelist;

    memset(&app, 0, sizeof(app));
    if ((argc != 4 && argc != 5) || kv_bench_parse_port(argv[1], &port) != 0 ||
        (argc == 5 && strcmp(argv[4], "changelist") != 0)) {
        fprintf(stderr, "usage: %s PORT CERT KEY [changelist]\n", argv[0]);
        return 2;
    }
    changelist = argc == 5;
    if (kv_bench_block_signals(&sigs) != 0 || evthread_use_pthreads() != 0)
        goto done;
    if ((app.ssl = kv_bench_ssl_ctx(argv[2], argv[3])) == NULL)
        goto done;
    for (int i = 0; i < KV_BENCH_THREADS; i++) {
        if (kv_worker_init(&app.w[i], app.ssl, port, changelist) != 0) {
            fprintf(stderr, "libevent: cannot listen on 127.0.0.1:%u\n", port);
            goto done;
        }
    }
    for (int i = 0; i < KV_BENCH_THREADS; i++) {
        if (pthread_create(&app.w[i].tid, NULL, kv_worker_run, &app.w[i]) != 0)
            goto done;
        app.w[i].started = 1;
    }
    printf("libevent %s%s ready on 127.0.0.1:%u\n", event_get_version(),
           changelist ? " (changelist)" : "", port);
    fflush(stdout);
    kv_bench_wait_signal(&sigs);
    rc = 0;
done:
    for (int i = 0; i < KV_BENCH_THREADS; i++) {
        if (app.w[i].started) {
            event_base_loopbreak(app.w[i].base);
            pthread_join(app.w[i].tid, NULL);
        }
        if (app.w[i].http != NULL)
            evhttp_free(app.w[i].http);
        if (app.w[i].base != NULL)
            event_base_free(app.w[i].base);
    }
    SSL_CTX_free(app.ssl);
    return rc;
}
