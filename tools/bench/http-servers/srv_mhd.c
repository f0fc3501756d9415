/* README: GNU libmicrohttpd HTTPS bench server (TLS via GnuTLS); internal epoll thread pool of 2
 * threads sharing one listen socket. Usage: srv_mhd PORT CERT KEY */
#include "kv_bench.h"

#include <microhttpd.h>

/* TLS 1.2+ with ECDHE key exchange only (TLS 1.3 groups are always (EC)DHE). */
#define KV_MHD_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA"

/* Read a whole PEM file into a NUL-terminated heap buffer. */
static char *kv_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (f == NULL)
        goto done;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto done;
    if ((buf = malloc((size_t)len + 1)) == NULL)
        goto done;
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
        goto done;
    }
    buf[len] = '\0';
done:
    if (f != NULL)
        fclose(f);
    return buf;
}

static enum MHD_Result kv_on_req(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_len, void **req_cls)
{
    struct MHD_Response *res;
    enum MHD_Result ret;

    (void)cls, (void)url, (void)version, (void)upload;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return MHD_NO;
    /* Canonical MHD pattern: the first call only announces the request. Answering in that first
     * call made MHD 0.9.75 reply "Connection: close" (no keep-alive) in this benchmark. */
    if (*req_cls == NULL) {
        *req_cls = (void *)KV_BENCH_BODY; /* any non-NULL marker */
        return MHD_YES;
    }
    if (*upload_len != 0)
        return MHD_NO;
    res = MHD_create_response_from_buffer(KV_BENCH_BODY_LEN, (void *)KV_BENCH_BODY,
                                          MHD_RESPMEM_PERSISTENT);
    if (res == NULL)
        return MHD_NO;
    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, res);
    MHD_destroy_response(res);
    return ret;
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in sin;
    char *cert = NULL, *key = NULL;
    sigset_t sigs;
    uint16_t port = 0;
    int rc = 1;

    if (argc != 4 || kv_bench_parse_port(argv[1], &port) != 0) {
        fprintf(stderr, "usage: %s PORT CERT KEY\n", argv[0]);
        return 2;
    }
    if (kv_bench_block_signals(&sigs) != 0)
        goto done;
    if ((cert = kv_read_file(argv[2])) == NULL || (key = kv_read_file(argv[3])) == NULL) {
        fprintf(stderr, "microhttpd: cannot read cert/key\n");
        goto done;
    }
    sin = kv_bench_loopback(port);
    d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, port,
                         NULL, NULL, kv_on_req, NULL, MHD_OPTION_SOCK_ADDR, &sin,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)KV_BENCH_THREADS,
                         MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
                         MHD_OPTION_HTTPS_PRIORITIES, KV_MHD_PRIORITIES,
                         MHD_OPTION_CONNECTION_LIMIT, 1024U, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "microhttpd: cannot start on 127.0.0.1:%u\n", port);
        goto done;
    }
    printf("microhttpd %s ready on 127.0.0.1:%u\n", MHD_get_version(), port);
    fflush(stdout);
    kv_bench_wait_signal(&sigs);
    rc = 0;
done:
    if (d != NULL)
        MHD_stop_daemon(d);
    free(cert);
    free(key);
    return rc;
}
