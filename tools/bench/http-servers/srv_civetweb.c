/* README: civetweb HTTPS bench server (TLS via OpenSSL, loaded by civetweb itself); one worker
 * thread per concurrently served connection (num_threads=2). Usage: srv_civetweb PORT PEM, where
 * PEM holds the private key followed by the certificate. NOTE: Debian 12's libcivetweb1 crashes on
 * the first TLS connection with OpenSSL 3 (see docs/http-server-choice.md). */
#include "kv_bench.h"

#include <civetweb.h>

static int kv_on_req(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);

    (void)cbdata;
    if (ri == NULL || strcmp(ri->request_method, "GET") != 0) {
        mg_send_http_error(conn, 405, "%s", "method not allowed");
        return 405;
    }
    mg_send_http_ok(conn, "application/json", (long long)KV_BENCH_BODY_LEN);
    mg_write(conn, KV_BENCH_BODY, KV_BENCH_BODY_LEN);
    return 200;
}

int main(int argc, char **argv)
{
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data err;
    struct mg_context *ctx = NULL;
    char ports[32], errtext[256] = "";
    sigset_t sigs;
    uint16_t port = 0;
    int rc = 1;

    if (argc != 3 || kv_bench_parse_port(argv[1], &port) != 0) {
        fprintf(stderr, "usage: %s PORT KEY+CERT.pem\n", argv[0]);
        return 2;
    }
    snprintf(ports, sizeof(ports), "127.0.0.1:%us", port);
    const char *opts[] = {"listening_ports",
                          ports,
                          "num_threads",
                          "2",
                          "ssl_certificate",
                          argv[2],
                          "ssl_protocol_version",
                          "4", /* TLS 1.2+ */
                          "ssl_cipher_list",
                          KV_BENCH_TLS12_CIPHERS,
                          "enable_keep_alive",
                          "yes",
                          NULL};

    if (kv_bench_block_signals(&sigs) != 0)
        goto done;
    /* Debian's 1.15 returns 0 here even though TLS works (OpenSSL is dlopen()ed as
     * libssl.so/libcrypto.so, i.e. needs libssl-dev at run time); mg_start2 reports real errors. */
    (void)mg_init_library(MG_FEATURES_TLS);
    memset(&cb, 0, sizeof(cb));
    memset(&init, 0, sizeof(init));
    memset(&err, 0, sizeof(err));
    init.callbacks = &cb;
    init.configuration_options = opts;
    err.text = errtext;
    err.text_buffer_size = sizeof(errtext);
    if ((ctx = mg_start2(&init, &err)) == NULL) {
        fprintf(stderr, "civetweb: cannot start on 127.0.0.1:%u: %s\n", port, errtext);
        goto done;
    }
    mg_set_request_handler(ctx, "/$", kv_on_req, NULL);
    printf("civetweb %s ready on 127.0.0.1:%u\n", mg_version(), port);
    fflush(stdout);
    kv_bench_wait_signal(&sigs);
    rc = 0;
done:
    if (ctx != NULL)
        mg_stop(ctx);
    mg_exit_library();
    return rc;
}
