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

typedef struct kv_vault_conf {
    char name[25];
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
