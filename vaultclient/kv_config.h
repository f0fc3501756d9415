/* kv_config.h - the client configuration file (format in docs/configuration.md). */
#ifndef KV_CONFIG_H
#define KV_CONFIG_H

#include <stddef.h>

#include "kv_status.h"

#define KV_DEFAULT_CONF "/etc/kvault/kvault.conf"

typedef struct kv_vault_conf {
    char name[25];
    char *url;     /* without trailing slash */
    char *ca_file; /* NULL = system CAs */
    char *auth;    /* "client_secret" */
    char *tenant_id;
    char *client_id;
    char *client_secret; /* zeroised on free */
    char *authority;     /* without trailing slash */
    char *resource;      /* without trailing slash */
} kv_vault_conf;

typedef struct kv_conf {
    char *path;   /* file read, "" if none */
    long timeout; /* seconds */
    int retries;
    int log_level; /* -1 = from $KVAULT_LOG */
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

#endif
