/* vd_ctx.h - vaultd's one context: configuration, keys loaded at start-up and shared caches.
 *
 * Built once by main() before the worker threads start; afterwards the fields are read-only
 * except the caches, which carry their own locks. */
#ifndef VD_CTX_H
#define VD_CTX_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#define VD_VAULT_RESOURCE "https://vault.azure.net"
#define VD_MHSM_RESOURCE "https://managedhsm.azure.net"
#define VD_SERVICE_VERSION "1.9.0.0-vaultd"
#define VD_KEK_LEN 32
#define VD_NAME_MAX 128 /* key names: 1..127 characters */
#define VD_ID_MAX 64    /* GUIDs, vault names, versions */

typedef struct vd_keycache vd_keycache;
typedef struct vd_secretcache vd_secretcache;

typedef struct vd_config {
    bool dev;                 /* --dev: create the state on first start */
    char state_dir[PATH_MAX]; /* absolute path of --state */
    char listen_host[256];    /* address part of --listen (IPv6 without brackets) */
    int port;                 /* port part of --listen */
    long token_lifetime;      /* seconds */
    int threads;              /* worker threads */
    char hsm_config[PATH_MAX]; /* --hsm-config FILE (vd_hsm.c), "" = none / dev default */
    char kek_location[8];      /* --kek-location file|hsm|"" (first start only, vd_hsm.c) */
    long rotation_interval;   /* seconds between key maintenance runs (purge sweep, rotation) */
    bool dev_short_rotation;  /* hidden dev option: rotation-policy durations below 7 days */
    char audit_file[PATH_MAX]; /* --audit-file (vd_audit.c), "" = STATE/audit/audit.log */
    long request_timeout;     /* seconds to receive a whole request (vd_server.c) */
    long token_key_rotation;  /* seconds between token-signing key rotations (vd_identity_keys.c) */
    char identity_listen_host[64]; /* --identity-listen address ("" = none; vd_mi.c) */
    int identity_port;             /* its port (0 = ephemeral) */
    char identity_header[128];     /* --identity-header value ("" = STATE/identity-header) */
    char identity_host[256];       /* --identity-host: this host's name for managed identities */
} vd_config;

typedef struct vd_ctx {
    vd_config cfg;
    char db_path[PATH_MAX + 16];
    char authority[320];           /* token authority, e.g. https://localhost:8443 */
    char default_vault[VD_ID_MAX]; /* vault served for IP / localhost hosts */
    EVP_PKEY *token_key;           /* ES256 token-signing key */
    char token_kid[VD_ID_MAX];     /* its JWK kid */
    uint8_t kek[VD_KEK_LEN];       /* key-encryption key for private key material */
    SSL_CTX *ssl_ctx;              /* server TLS context (shared by all workers) */
    vd_keycache *keycache;         /* decrypted private keys by vault/version */
    vd_secretcache *secretcache;   /* recently verified client secrets */
    struct vd_hsm *hsm;            /* the local HSM pool (vd_hsm.c); NULL when none configured */
    struct vd_keys_maint *keys_maint; /* key maintenance thread (vd_rotation.c) */
    struct vd_audit *audit;           /* the audit log writer (vd_audit.c) */
    struct vd_metrics *metrics;       /* request metrics (vd_metrics.c) */
    struct vd_workpool *workpool;     /* threads for slow CPU work (vd_workpool.c) */
    struct vd_tokenkeys *tokenkeys;   /* current + previous token-signing keys (vd_identity_keys.c) */
    struct vd_jticache *jticache;     /* client-assertion jti replay cache (vd_identity_assert.c) */
    struct vd_mi *mi;                 /* managed-identity listener (vd_mi.c) */
} vd_ctx;

#endif
