/* kv_bench.h - shared bits of the vaultd HTTPS-library benchmark servers (body, signals, OpenSSL
 * TLS context). Benchmark-only code: not part of vaultd. See README at the top of each srv_*.c. */
#ifndef KV_BENCH_H
#define KV_BENCH_H

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The 60-byte JSON body every server returns for GET /. */
#define KV_BENCH_BODY "{\"status\":\"ok\",\"service\":\"vaultd\",\"version\":\"0.1.0\",\"n\":123}"
#define KV_BENCH_BODY_LEN (sizeof(KV_BENCH_BODY) - 1)
_Static_assert(KV_BENCH_BODY_LEN == 60, "benchmark body must be 60 bytes");

#define KV_BENCH_THREADS 2
/* TLS 1.2 suites (TLS 1.3 suites are left at the library default; all are ECDHE). */
#define KV_BENCH_TLS12_CIPHERS                                                                     \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

/* Parse a TCP port number; returns 0 on success. */
static inline int kv_bench_parse_port(const char *s, uint16_t *port)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0' || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Ignore SIGPIPE (a peer closing mid-write must not kill the server) and block SIGINT/SIGTERM in
 * this thread and the threads created after it; the caller then sigwait()s. */
static inline int kv_bench_block_signals(sigset_t *set)
{
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return -1;
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    return pthread_sigmask(SIG_BLOCK, set, NULL) == 0 ? 0 : -1;
}

static inline void kv_bench_wait_signal(const sigset_t *set)
{
    int sig = 0;

    while (sigwait(set, &sig) != 0)
        ;
}

/* 127.0.0.1:port */
static inline struct sockaddr_in kv_bench_loopback(uint16_t port)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

#ifdef KV_BENCH_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>

/* One server SSL_CTX shared by all worker threads: TLS 1.2+, ECDHE only, P-256 cert. */
static inline SSL_CTX *kv_bench_ssl_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        goto fail;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, KV_BENCH_TLS12_CIPHERS) ||
        !SSL_CTX_set1_groups_list(ctx, "X25519:P-256") ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;
fail:
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}
#endif

#endif
