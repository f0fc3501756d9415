/* vd_mi.c - the managed-identity endpoints (vd_mi.h): a loopback-only plain-HTTP listener on
 * its own thread and event loop (and SQLite connection), answering
 *
 *   GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R   (IMDS; Metadata: true)
 *   GET /msi/token?api-version=2019-08-01&resource=R        (App Service; X-IDENTITY-HEADER)
 *
 * [client_id= | object_id= | principal_id= | msi_res_id= | mi_res_id=] select a user-assigned
 * identity of this host; without them the host's system-assigned identity is used. */
#include "vd_mi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "vd_http.h"
#include "vd_identity.h"
#include "vd_store.h"
#include "vd_store_principals.h"
#include "vd_util.h"

#define VD_MI_DEV_NAME "dev-mi"
#define VD_MI_ROLE_KV_ADMIN "00482a5a-887f-4fb3-b363-3b7fe8e74483" /* Key Vault Administrator */

struct vd_mi {
    vd_ctx *ctx;
    struct event_base *base;
    struct evhttp *http;
    vd_store *store;
    pthread_t thread;
    bool running;
    int port;
    char header[128]; /* the X-IDENTITY-HEADER value */
};

/* ---- requests ---- */

static void vd_mi_error(vd_req *r, int status, const char *error, const char *desc)
{
    vd_add_header(r, "Cache-Control", "no-store");
    vd_reply_json(r, status, json_pack("{s:s, s:s}", "error", error, "error_description", desc));
}

/* The identity asked for (or the system-assigned one) bound to this host; false after
 * answering. */
static bool vd_mi_select(vd_req *r, vd_principal_rec *rec)
{
    static const char *const idparams[] = {"client_id", "object_id", "principal_id"};
    const char *host = r->ctx->cfg.identity_host, *id = NULL, *res_id, *slash;
    size_t i;
    kv_rv rv;

    for (i = 0; i < sizeof(idparams) / sizeof(idparams[0]) && id == NULL; i++)
        id = vd_req_param(r, idparams[i]);
    res_id = vd_req_param(r, "msi_res_id");
    if (res_id == NULL)
        res_id = vd_req_param(r, "mi_res_id");
    if (id != NULL && strlen(id) >= VD_ID_MAX) {
        vd_mi_error(r, 400, "invalid_request", "Identity not found");
        return false;
    }
    if (res_id != NULL) { /* .../userAssignedIdentities/NAME */
        slash = strrchr(res_id, '/');
        rv = vd_store_mi_by_name(r->store, NULL, slash ? slash + 1 : res_id, rec);
        if (rv == KV_OK && strcasecmp(rec->host, host) != 0) {
            vd_principal_rec_clear(rec);
            rv = KV_ERR_NOT_FOUND;
        }
    } else {
        rv = vd_store_mi_for_host(r->store, host, id, rec);
    }
    if (rv == KV_ERR_NOT_FOUND) {
        vd_mi_error(r, 400, "invalid_request",
                    id || res_id ? "Identity not found"
                                 : "Identity not found: this host has no system-assigned "
                                   "managed identity");
        return false;
    }
    if (rv != KV_OK) {
        vd_mi_error(r, 500, "unknown_error", "The identity store is unavailable.");
        return false;
    }
    return true;
}

static void vd_mi_token(vd_req *r, bool imds)
{
    const char *resource = vd_req_param(r, "resource"), *known,
               *api = vd_req_param(r, "api-version");
    const char *hdr;
    vd_principal_rec rec = {0};
    char *token = NULL, exp_on[32], exp_in[32], nbf[32], desc[400];
    long life = r->ctx->cfg.token_lifetime;
    long long now = vd_now();
    json_t *resp;
    size_t hl;

    if (imds) {
        hdr = vd_req_header(r, "Metadata");
        if (hdr == NULL || strcasecmp(hdr, "true") != 0) {
            vd_mi_error(r, 400, "bad_request_102", "Required metadata header not specified");
            return;
        }
        if (vd_req_header(r, "X-Forwarded-For") != NULL) {
            vd_mi_error(r, 400, "bad_request_102",
                        "Request contains X-Forwarded-For header; IMDS is not reached through "
                        "a proxy");
            return;
        }
    } else {
        hdr = vd_req_header(r, "X-IDENTITY-HEADER");
        hl = hdr ? strlen(hdr) : 0;
        if (hdr == NULL || hl != strlen(r->ctx->mi->header) ||
            CRYPTO_memcmp(hdr, r->ctx->mi->header, hl) != 0) {
            vd_mi_error(r, 401, "unauthorized_client",
                        hdr == NULL ? "The X-IDENTITY-HEADER header is missing (use the value "
                                      "of IDENTITY_HEADER)."
                                    : "The X-IDENTITY-HEADER header does not match "
                                      "IDENTITY_HEADER.");
            return;
        }
    }
    if (api == NULL) {
        vd_mi_error(r, 400, "invalid_request", "Required query variable 'api-version' is missing");
        return;
    }
    if (resource == NULL || resource[0] == '\0') {
        vd_mi_error(r, 400, "invalid_request", "Required audience parameter not specified");
        return;
    }
    known = vd_known_resource(resource, false);
    if (known == NULL) {
        snprintf(desc, sizeof(desc),
                 "AADSTS500011: The resource principal named %.200s was not found in the "
                 "tenant.",
                 resource);
        vd_mi_error(r, 400, "invalid_resource", desc);
        return;
    }
    if (!vd_mi_select(r, &rec))
        return;
    snprintf(r->principal, sizeof(r->principal), "%s", rec.client_id); /* for the audit record */
    if (vd_identity_issue(r->ctx, rec.tenant_id, rec.client_id, known, life, &token) != KV_OK) {
        vd_mi_error(r, 500, "unknown_error", "The token cannot be issued.");
        goto done;
    }
    snprintf(exp_on, sizeof(exp_on), "%lld", now + life);
    snprintf(exp_in, sizeof(exp_in), "%ld", life);
    snprintf(nbf, sizeof(nbf), "%lld", now);
    if (imds)
        resp = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "access_token", token,
                         "refresh_token", "", "expires_in", exp_in, "expires_on", exp_on,
                         "ext_expires_in", exp_in, "not_before", nbf, "resource", known,
                         "token_type", "Bearer", "client_id", rec.client_id);
    else
        resp = json_pack("{s:s, s:s, s:s, s:s, s:s}", "access_token", token, "expires_on", exp_on,
                         "resource", known, "token_type", "Bearer", "client_id", rec.client_id);
    vd_add_header(r, "Cache-Control", "no-store");
    vd_reply_json(r, 200, resp);
done:
    if (token != NULL)
        vd_free_secret(token, strlen(token));
    vd_principal_rec_clear(&rec);
}

static bool vd_path_is(const vd_req *r, const char *want)
{
    size_t lw = strlen(want), lp = strlen(r->path);

    if (lp == lw + 1 && r->path[lw] == '/') /* trailing slash (Azure SDKs' IMDS path) */
        lp = lw;
    return lp == lw && strncmp(r->path, want, lw) == 0;
}

/* Whether the Host header (if any) names a loopback address or localhost: a page whose name
 * was re-bound to 127.0.0.1 (DNS rebinding) sends its own name and is refused. */
static bool vd_mi_host_ok(const vd_req *r)
{
    const char *h = r->hostname;

    if (vd_req_header(r, "Host") == NULL)
        return true; /* HTTP/1.0 */
    if (h[0] == '\0')
        return false;
    return strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
           strcmp(h, "169.254.169.254") == 0 ||
           (strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == strlen(h));
}

static void vd_mi_on_request(struct evhttp_request *ev, void *arg)
{
    struct vd_mi *mi = arg;
    vd_req r;

    ERR_clear_error();
    if (vd_req_init(&r, ev, mi->ctx, mi->store) != KV_OK)
        vd_mi_error(&r, 400, "invalid_request", "The request is malformed.");
    else if (!vd_mi_host_ok(&r))
        vd_mi_error(&r, 400, "invalid_request",
                    "The Host header must name a loopback address or localhost.");
    else if (strcmp(r.method, "GET") != 0)
        vd_mi_error(&r, 405, "invalid_request", "Only GET is supported.");
    else if (vd_path_is(&r, "/metadata/identity/oauth2/token"))
        vd_mi_token(&r, true);
    else if (vd_path_is(&r, "/msi/token"))
        vd_mi_token(&r, false);
    else
        vd_mi_error(&r, 404, "not_found",
                    "Managed identity endpoints: /metadata/identity/oauth2/token and "
                    "/msi/token.");
    if (!r.replied)
        vd_mi_error(&r, 500, "unknown_error", "The request was not answered.");
    vd_req_cleanup(&r);
    ERR_clear_error();
}

static void *vd_mi_main(void *arg)
{
    struct vd_mi *mi = arg;

    event_base_dispatch(mi->base);
    return NULL;
}

/* ---- set-up ---- */

static bool vd_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* Binds and listens on the configured loopback address; fills mi->port. */
static int vd_mi_socket(vd_ctx *ctx, struct vd_mi *mi)
{
    struct addrinfo hints = {0}, *ai = NULL, *a;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char port[16];
    int fd = -1, one = 1;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", ctx->cfg.identity_port);
    if (getaddrinfo(ctx->cfg.identity_listen_host, port, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "vaultd: cannot resolve --identity-listen address %s\n",
                ctx->cfg.identity_listen_host);
        return -1;
    }
    for (a = ai; a != NULL; a = a->ai_next)
        if (!vd_is_loopback(a->ai_addr)) {
            fprintf(stderr,
                    "vaultd: refusing --identity-listen %s: the managed-identity endpoint "
                    "serves plain HTTP and must listen on a loopback address (127.0.0.0/8, "
                    "::1)\n",
                    ctx->cfg.identity_listen_host);
            goto fail;
        }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        fprintf(stderr, "vaultd: cannot listen on --identity-listen %s:%d: %s\n",
                ctx->cfg.identity_listen_host, ctx->cfg.identity_port, strerror(errno));
        goto fail;
    }
    mi->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(ai);
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

/* --identity-header, or STATE/identity-header (created with a random value, 0600). */
static kv_rv vd_mi_header(vd_ctx *ctx, struct vd_mi *mi)
{
    char path[PATH_MAX + 32], fresh[65];
    uint8_t *data = NULL;
    size_t len = 0;
    kv_rv rv;

    if (ctx->cfg.identity_header[0] != '\0') {
        snprintf(mi->header, sizeof(mi->header), "%s", ctx->cfg.identity_header);
        return KV_OK;
    }
    snprintf(path, sizeof(path), "%s/identity-header", ctx->cfg.state_dir);
    if (vd_read_file(path, 256, &data, &len) == KV_OK) {
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
            len--;
        if (len >= 16 && len < sizeof(mi->header)) {
            memcpy(mi->header, data, len);
            mi->header[len] = '\0';
            vd_free_secret(data, len);
            return KV_OK;
        }
        vd_free_secret(data, len);
    }
    rv = vd_random_hex(fresh, 32);
    if (rv == KV_OK)
        rv = vd_write_file(path, fresh, strlen(fresh), 0600);
    if (rv == KV_OK)
        snprintf(mi->header, sizeof(mi->header), "%s", fresh);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    return rv;
}

/* --dev: the managed identity "dev-mi" bound to this host, Key Vault Administrator on the
 * default vault; *client_id receives its id. */
static kv_rv vd_mi_dev_identity(vd_ctx *ctx, vd_store *st, char client_id[VD_ID_MAX])
{
    vd_principal_rec rec = {0};
    vd_principal p = {0};
    vd_vault v;
    kv_rv rv;

    rv = vd_store_default_vault(st, &v);
    if (rv != KV_OK)
        return rv;
    rv = vd_store_mi_by_name(st, v.tenant_id, VD_MI_DEV_NAME, &rec);
    if (rv == KV_OK) {
        snprintf(client_id, VD_ID_MAX, "%s", rec.client_id);
        if (strcasecmp(rec.host, ctx->cfg.identity_host) != 0)
            rv = vd_store_mi_set_host(st, rec.client_id, ctx->cfg.identity_host);
        vd_principal_rec_clear(&rec);
        return rv;
    }
    if (rv != KV_ERR_NOT_FOUND)
        return rv;
    if ((rv = vd_guid(p.client_id)) != KV_OK)
        return rv;
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", v.tenant_id);
    snprintf(rec.client_id, sizeof(rec.client_id), "%s", p.client_id);
    snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", v.tenant_id);
    snprintf(rec.display_name, sizeof(rec.display_name), "%s", VD_MI_DEV_NAME);
    snprintf(rec.kind, sizeof(rec.kind), "%s", VD_PKIND_MI);
    snprintf(rec.host, sizeof(rec.host), "%s", ctx->cfg.identity_host);
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    if ((rv = vd_store_principal_create(st, &p, &rec)) != KV_OK ||
        (rv = vd_store_add_role_assignment(st, v.name, "/", p.client_id, VD_MI_ROLE_KV_ADMIN)) !=
            KV_OK ||
        (rv = vd_store_commit(st)) != KV_OK) {
        vd_store_rollback(st);
        return rv;
    }
    snprintf(client_id, VD_ID_MAX, "%s", p.client_id);
    fprintf(stderr, "vaultd: managed identity %s (%s) bound to host %s\n", VD_MI_DEV_NAME,
            p.client_id, ctx->cfg.identity_host);
    return KV_OK;
}

/* STATE/identity.env: the environment that makes Azure SDKs and kvault use dev-mi. */
static kv_rv vd_mi_write_env(vd_ctx *ctx, struct vd_mi *mi, const char *client_id)
{
    char path[PATH_MAX + 32], text[2048], base[128];
    bool v6 = strchr(ctx->cfg.identity_listen_host, ':') != NULL;
    int n;
    kv_rv rv;

    snprintf(base, sizeof(base), "http://%s%s%s:%d", v6 ? "[" : "", ctx->cfg.identity_listen_host,
             v6 ? "]" : "", mi->port);
    snprintf(path, sizeof(path), "%s/identity.env", ctx->cfg.state_dir);
    n = snprintf(text, sizeof(text),
                 "# vaultd managed identity (source this file). App Service style:\n"
                 "export IDENTITY_ENDPOINT=%s/msi/token\n"
                 "export IDENTITY_HEADER=%s\n"
                 "# IMDS style (Azure SDKs: AZURE_POD_IDENTITY_AUTHORITY_HOST replaces "
                 "http://169.254.169.254):\n"
                 "export AZURE_POD_IDENTITY_AUTHORITY_HOST=%s\n"
                 "export VAULTD_IMDS_ENDPOINT=%s/metadata/identity/oauth2/token\n"
                 "# the managed identity of this host (%s) and its client id\n"
                 "export VAULTD_MI_NAME=%s\n"
                 "export VAULTD_MI_CLIENT_ID=%s\n",
                 base, mi->header, base, base, ctx->cfg.identity_host, VD_MI_DEV_NAME, client_id);
    rv = n > 0 && (size_t)n < sizeof(text) ? vd_write_file(path, text, (size_t)n, 0600)
                                           : KV_ERR_INTERNAL;
    OPENSSL_cleanse(text, sizeof(text));
    if (rv == KV_OK)
        fprintf(stderr,
                "vaultd: managed identity %s: source %s for IDENTITY_ENDPOINT, IDENTITY_HEADER, "
                "AZURE_POD_IDENTITY_AUTHORITY_HOST\n",
                VD_MI_DEV_NAME, path);
    return rv;
}

kv_rv vd_mi_start(vd_ctx *ctx)
{
    struct vd_mi *mi;
    char client_id[VD_ID_MAX] = "";
    int fd = -1;
    kv_rv rv = KV_ERR_INTERNAL;

    if (ctx == NULL)
        return KV_ERR_INVALID_ARG;
    if (ctx->cfg.identity_host[0] == '\0' &&
        gethostname(ctx->cfg.identity_host, sizeof(ctx->cfg.identity_host) - 1) != 0)
        snprintf(ctx->cfg.identity_host, sizeof(ctx->cfg.identity_host), "localhost");
    if (ctx->cfg.dev && ctx->cfg.identity_listen_host[0] == '\0') { /* dev default */
        snprintf(ctx->cfg.identity_listen_host, sizeof(ctx->cfg.identity_listen_host), "127.0.0.1");
        ctx->cfg.identity_port = 0;
    }
    mi = calloc(1, sizeof(*mi));
    if (mi == NULL)
        return KV_ERR_NOMEM;
    mi->ctx = ctx;
    ctx->mi = mi;
    if ((rv = vd_mi_header(ctx, mi)) != KV_OK) {
        fprintf(stderr, "vaultd: cannot prepare the identity header\n");
        return rv;
    }
    if ((rv = vd_store_open(ctx->db_path, &mi->store)) != KV_OK)
        return rv;
    if (ctx->cfg.dev && (rv = vd_mi_dev_identity(ctx, mi->store, client_id)) != KV_OK) {
        fprintf(stderr, "vaultd: cannot create the dev managed identity\n");
        return rv;
    }
    if (ctx->cfg.identity_listen_host[0] == '\0')
        return KV_OK; /* no listener */
    rv = KV_ERR_NETWORK;
    fd = vd_mi_socket(ctx, mi);
    if (fd < 0)
        return KV_ERR_CONFIG;
    if (evthread_use_pthreads() != 0)
        goto done;
    mi->base = event_base_new();
    mi->http = mi->base ? evhttp_new(mi->base) : NULL;
    if (mi->http == NULL)
        goto done;
    evhttp_set_gencb(mi->http, vd_mi_on_request, mi);
    evhttp_set_allowed_methods(mi->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_max_body_size(mi->http, 1024); /* GET only: no body expected */
    evhttp_set_max_headers_size(mi->http, 8 * 1024);
    evhttp_set_timeout(mi->http, 30);
    if (evhttp_accept_socket(mi->http, fd) != 0)
        goto done;
    fd = -1; /* owned by evhttp */
    if (ctx->cfg.dev && (rv = vd_mi_write_env(ctx, mi, client_id)) != KV_OK)
        goto done;
    rv = KV_ERR_INTERNAL;
    if (pthread_create(&mi->thread, NULL, vd_mi_main, mi) != 0)
        goto done;
    mi->running = true;
    fprintf(stderr,
            "vaultd: managed identity endpoints on http://%s:%d (host %s): "
            "/metadata/identity/oauth2/token, /msi/token\n",
            ctx->cfg.identity_listen_host, mi->port, ctx->cfg.identity_host);
    rv = KV_OK;
done:
    if (fd >= 0)
        close(fd);
    return rv;
}

void vd_mi_stop(vd_ctx *ctx)
{
    struct vd_mi *mi = ctx ? ctx->mi : NULL;

    if (mi == NULL)
        return;
    if (mi->running) {
        event_base_loopexit(mi->base, NULL);
        pthread_join(mi->thread, NULL);
    }
    if (mi->http != NULL)
        evhttp_free(mi->http);
    if (mi->base != NULL)
        event_base_free(mi->base);
    vd_store_close(mi->store);
    OPENSSL_cleanse(mi->header, sizeof(mi->header));
    free(mi);
    ctx->mi = NULL;
}
