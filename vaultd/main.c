/* main.c - vaultd command line: parses the options, prepares the state and runs the server.
 *
 *   vaultd --dev --state DIR [--listen 127.0.0.1:PORT] [--token-lifetime SECONDS]
 *          [--threads N] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "vd_ctx.h"
#include "vd_audit.h"
#include "vd_dev.h"
#include "vd_hsm.h"
#include "vd_identity.h"
#include "vd_identity_assert.h"
#include "vd_identity_keys.h"
#include "vd_keycache.h"
#include "vd_keys_lifecycle.h"
#include "vd_metrics.h"
#include "vd_mi.h"
#include "vd_server.h"

static void vd_usage(FILE *f)
{
    fprintf(f, "usage: vaultd --dev --state DIR [--listen 127.0.0.1:PORT] "
               "[--token-lifetime SECONDS] [--threads N]\n"
               "  --dev               create the state (CA, keys, database, client.conf) in DIR "
               "on first start\n"
               "  --state DIR         state directory (reused on restart)\n"
               "  --listen ADDR:PORT  address to serve HTTPS on (default 127.0.0.1:8443)\n"
               "  --token-lifetime S  access-token lifetime in seconds (default 3600)\n"
               "  --threads N         worker threads (default: number of CPUs)\n"
               "  --request-timeout S  seconds a client has to send a whole request (TLS "
               "handshake, headers, body) and a keep-alive connection may stay idle (default 60)\n"
               "  --hsm-config FILE   local HSM pool (PKCS#11 tokens) for -HSM keys and the KEK "
               "(--dev default: DIR/hsm.conf with a SoftHSMv2 token)\n"
               "  --kek-location L    file|hsm: where a new state keeps its KEK (default: the "
               "HSM pool if usable)\n"
               "  --rotation-interval S  seconds between key maintenance runs: due policy "
               "rotations, purge of expired deleted keys (default 60)\n"
               "  --token-key-rotation S  seconds between token-signing key rotations (default "
               "604800 = 7 days; 0 = only on POST /admin/tokenSigningKey/rotate)\n"
               "  --identity-listen 127.0.0.1:PORT  managed-identity endpoints (IMDS and App "
               "Service style, plain HTTP, loopback only; --dev default: an ephemeral port)\n"
               "  --identity-header V  the X-IDENTITY-HEADER value (default: generated into "
               "DIR/identity-header)\n"
               "  --identity-host NAME  this host's name for managed identities (default: "
               "hostname)\n"
               "  --audit-file PATH   audit log (default DIR/audit/audit.log; docs/audit.md)\n");
}

static long vd_parse_long(const char *s, long min, long max, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "vaultd: invalid %s: %s\n", what, s);
        return -1;
    }
    return v;
}

/* "HOST:PORT" or "[V6]:PORT" into cfg. */
static int vd_parse_listen(const char *s, vd_config *cfg)
{
    const char *colon;
    size_t hlen;
    long port;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(cfg->listen_host))
            return -1;
        memcpy(cfg->listen_host, s + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(cfg->listen_host))
            return -1;
        memcpy(cfg->listen_host, s, hlen);
    }
    cfg->listen_host[hlen] = '\0';
    port = vd_parse_long(colon + 1, 1, 65535, "port");
    if (port < 0)
        return -1;
    cfg->port = (int)port;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dev", no_argument, NULL, 'd'},
        {"state", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"token-lifetime", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'n'},
        {"rotation-interval", required_argument, NULL, 'R'},
        {"dev-short-rotation-policy", no_argument, NULL, 'S'}, /* hidden: tests only */
        {"hsm-config", required_argument, NULL, 'H'},
        {"kek-location", required_argument, NULL, 'K'},
        {"audit-file", required_argument, NULL, 'A'}, /* vd_audit.c */
        {"token-key-rotation", required_argument, NULL, 'T'}, /* vd_identity_keys.c */
        {"identity-listen", required_argument, NULL, 'I'},    /* vd_mi.c */
        {"identity-header", required_argument, NULL, 'X'},
        {"identity-host", required_argument, NULL, 'O'},
        {"request-timeout", required_argument, NULL, 'Q'}, /* vd_server.c */
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    vd_ctx *ctx = calloc(1, sizeof(*ctx));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN), v;
    int c, status = 1;

    if (ctx == NULL)
        return 1;
    snprintf(ctx->cfg.listen_host, sizeof(ctx->cfg.listen_host), "127.0.0.1");
    ctx->cfg.port = 8443;
    ctx->cfg.token_lifetime = 3600;
    ctx->cfg.token_key_rotation = VD_TOKEN_KEY_ROTATION_DEFAULT;
    ctx->cfg.threads = cpus > 0 ? (int)(cpus > 256 ? 256 : cpus) : 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            ctx->cfg.dev = true;
            break;
        case 's':
            if (strlen(optarg) >= sizeof(ctx->cfg.state_dir) - 64) {
                fprintf(stderr, "vaultd: state path too long\n");
                goto done;
            }
            snprintf(ctx->cfg.state_dir, sizeof(ctx->cfg.state_dir), "%s", optarg);
            break;
        case 'l':
            if (vd_parse_listen(optarg, &ctx->cfg) != 0) {
                fprintf(stderr, "vaultd: invalid --listen %s (want ADDRESS:PORT)\n", optarg);
                goto done;
            }
            break;
        case 't':
            v = vd_parse_long(optarg, 1, 30L * 86400, "--token-lifetime");
            if (v < 0)
                goto done;
            ctx->cfg.token_lifetime = v;
            break;
        case 'n':
            v = vd_parse_long(optarg, 1, 256, "--threads");
            if (v < 0)
                goto done;
            ctx->cfg.threads = (int)v;
            break;
        case 'R':
            v = vd_parse_long(optarg, 1, 86400, "--rotation-interval");
            if (v < 0)
                goto done;
            ctx->cfg.rotation_interval = v;
            break;
        case 'S':
            ctx->cfg.dev_short_rotation = true;
            break;
        case 'H': /* local HSM pool (vd_hsm.c) */
            snprintf(ctx->cfg.hsm_config, sizeof(ctx->cfg.hsm_config), "%s", optarg);
            break;
        case 'K':
            if (strcmp(optarg, "file") != 0 && strcmp(optarg, "hsm") != 0) {
                fprintf(stderr, "vaultd: --kek-location must be file or hsm\n");
                goto done;
            }
            snprintf(ctx->cfg.kek_location, sizeof(ctx->cfg.kek_location), "%s", optarg);
            break;
        case 'T':
            v = vd_parse_long(optarg, 0, 3650L * 86400, "--token-key-rotation");
            if (v < 0)
                goto done;
            ctx->cfg.token_key_rotation = v;
            break;
        case 'I': { /* ADDRESS:PORT, [V6]:PORT; port 0 = ephemeral */
            const char *colon = strrchr(optarg, ':');
            size_t hlen = colon ? (size_t)(colon - optarg) : 0;
            const char *h = optarg;

            if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
                h++;
                hlen -= 2;
            }
            v = colon ? vd_parse_long(colon + 1, 0, 65535, "--identity-listen port") : -1;
            if (hlen == 0 || hlen >= sizeof(ctx->cfg.identity_listen_host) || v < 0) {
                fprintf(stderr, "vaultd: invalid --identity-listen %s (want ADDRESS:PORT)\n",
                        optarg);
                goto done;
            }
            snprintf(ctx->cfg.identity_listen_host, sizeof(ctx->cfg.identity_listen_host), "%.*s",
                     (int)hlen, h);
            ctx->cfg.identity_port = (int)v;
            break;
        }
        case 'X':
            if (strlen(optarg) < 16 || strlen(optarg) >= sizeof(ctx->cfg.identity_header)) {
                fprintf(stderr, "vaultd: --identity-header must have 16-127 characters\n");
                goto done;
            }
            snprintf(ctx->cfg.identity_header, sizeof(ctx->cfg.identity_header), "%s", optarg);
            break;
        case 'O':
            snprintf(ctx->cfg.identity_host, sizeof(ctx->cfg.identity_host), "%s", optarg);
            break;
        case 'A':
            if (strlen(optarg) >= sizeof(ctx->cfg.audit_file)) {
                fprintf(stderr, "vaultd: --audit-file path too long\n");
                goto done;
            }
            snprintf(ctx->cfg.audit_file, sizeof(ctx->cfg.audit_file), "%s", optarg);
            break;
        case 'Q':
            v = vd_parse_long(optarg, 1, 3600, "--request-timeout");
            if (v < 0)
                goto done;
            ctx->cfg.request_timeout = v;
            break;
        case 'h':
            vd_usage(stdout);
            status = 0;
            goto done;
        default:
            vd_usage(stderr);
            status = 2;
            goto done;
        }
    }
    if (optind != argc || ctx->cfg.state_dir[0] == '\0') {
        vd_usage(stderr);
        status = 2;
        goto done;
    }
    umask(077);
    if (vd_keycache_new(&ctx->keycache) != KV_OK || vd_secretcache_new(&ctx->secretcache) != KV_OK)
        goto done;
    if (vd_dev_bootstrap(ctx) != KV_OK || vd_server_tls_init(ctx) != KV_OK)
        goto done;
    if (ctx->cfg.dev_short_rotation && !ctx->cfg.dev) {
        fprintf(stderr, "vaultd: --dev-short-rotation-policy needs --dev\n");
        goto done;
    }
    if (vd_audit_open(ctx) != KV_OK || vd_metrics_new(&ctx->metrics) != KV_OK)
        goto done; /* audit log and metrics (vd_audit.c, vd_metrics.c) */
    if (vd_keys_maintenance_start(ctx) != KV_OK)
        goto done;
    if (vd_tokenkeys_load(ctx) != KV_OK || vd_jticache_new(ctx) != KV_OK ||
        vd_mi_start(ctx) != KV_OK) /* identity service (vd_identity_keys.c, vd_mi.c) */
        goto done;
    if (vd_server_run(ctx) != KV_OK)
        goto done;
    status = 0;
done:
    vd_keys_maintenance_stop(ctx);
    vd_mi_stop(ctx);
    vd_jticache_free(ctx);
    vd_tokenkeys_free(ctx);
    SSL_CTX_free(ctx->ssl_ctx);
    EVP_PKEY_free(ctx->token_key);
    vd_keycache_free(ctx->keycache);
    vd_secretcache_free(ctx->secretcache);
    vd_audit_close(ctx);
    vd_metrics_free(ctx->metrics);
    vd_hsm_free(ctx); /* C_Finalize before OpenSSL's exit-time cleanup */
    OPENSSL_cleanse(ctx->kek, sizeof(ctx->kek));
    free(ctx);
    return status;
}
