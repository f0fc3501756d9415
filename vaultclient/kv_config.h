/* kv_config.h - the client configuration file (format in docs/configuration.md). */
#ifndef KV_CONFIG_H
#define KV_CONFIG_H

#include <stddef.h>

#include "kv_status.h"

#define KV_DEFAULT_CONF "/etc/kvault/kvault.conf"

/* How a vault section authenticates (`auth = ...`; KV_AUTH_DEFAULT when there is no auth line:
 * the method follows from the settings present, the environment filling the gaps). */
typedef enum {
    KV_AUTH_DEFAULT = 0,
    KV_AUTH_CLIENT_SECRET,
    KV_AUTH_CLIENT_CERTIFICATE,
    KV_AUTH_MANAGED_IDENTITY,
    KV_AUTH_STATIC_TOKEN,
    KV_AUTH_ENV,
} kv_auth_kind;

/* A local HSM pool's member token (`member = pkcs11:token=...?module-path=...`). */
typedef struct kv_pool_member_conf {
    char *token;    /* token label (CKA_LABEL of the token) */
    char *module;   /* PKCS#11 module path (the member's module-path, else the pool's module) */
    char *pin_file; /* the member's pin-source, else the pool's pin_file */
    char *pin;      /* the member's pin-value (zeroised on free), or NULL */
} kv_pool_member_conf;

/* A local HSM pool (`[pool NAME]`; docs/configuration.md, docs/hsm-pool.md). */
typedef struct kv_pool_conf {
    kv_pool_member_conf *members;
    size_t nmembers;
    char *module;       /* default module path for members without module-path */
    char *pin_file;     /* default user PIN file for members without pin-source / pin-value */
    char *so_pin_file;  /* SO PIN file (`kvault pool init`: makes the wrapping key trusted) */
    long sessions;      /* open sessions per member (default 4) */
    long retry_seconds; /* a failed member rests this long before it is tried again (5) */
} kv_pool_conf;

typedef struct kv_vault_conf {
    char name[25];
    /* [pool NAME]: a local HSM pool (url = "pkcs11:token=NAME"), else NULL: a [vault NAME] */
    kv_pool_conf *pool;
    char *url;     /* without trailing slash */
    char *ca_file; /* NULL = system CAs */
    char *auth;    /* the auth line as written, NULL if none */
    kv_auth_kind auth_kind;
    char *tenant_id;
    char *client_id;     /* app id; for managed_identity: a user-assigned identity (optional) */
    char *client_secret; /* zeroised on free */
    char *authority;     /* without trailing slash */
    char *resource;      /* without trailing slash */
    char *client_certificate;          /* PEM file: certificate (+ chain) and private key */
    int client_certificate_send_chain; /* 1: x5c header in the client assertion */
    char *client_assertion_alg;        /* "PS256" (default for RSA) or "RS256" */
    char *identity_endpoint;           /* App Service style managed identity endpoint */
    char *identity_header_file;        /* file holding its X-IDENTITY-HEADER value */
    char *imds_endpoint;               /* IMDS token URL */
    char *token_file;                  /* static_token: file holding the bearer token */
    char *client_secret_sealed;        /* client secret sealed under a PIN (kv_seal.h): the
                                        * vault is locked until kv_vault_unlock (C_Login) */
    int key_versions_all; /* `key_versions = all`: older enabled key versions as PKCS#11 objects */
} kv_vault_conf;

typedef struct kv_conf {
    char *path;   /* file read, "" if none */
    long timeout; /* seconds */
    int retries;
    int log_level;             /* -1 = from $KVAULT_LOG */
    long object_cache_seconds; /* how long the faces trust listed keys/objects (default 30) */
    kv_vault_conf *vaults;
    size_t nvaults;
} kv_conf;

/* Loads path, or $KVAULT_CONF, or KV_DEFAULT_CONF (missing default = empty config). */
kv_rv kv_conf_load(const char *path, kv_conf **out, kv_err *err);
/* Parses text; origin names it in error messages. */
kv_rv kv_conf_parse(const char *text, const char *origin, kv_conf **out, kv_err *err);
void kv_conf_free(kv_conf *conf);

/* The token resource of a vault: its `resource`, else derived from the URL. */
const char *kv_conf_resource(const kv_vault_conf *vc);

/* Name of an auth kind as written in the file ("client_secret", ...; "" for the default). */
const char *kv_conf_auth_name(kv_auth_kind k);

#endif
