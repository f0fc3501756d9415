/* kv_token_cred.c - which credential a vault section uses: the configuration's auth line and
 * settings merged with the Azure SDK environment variables (AZURE_TENANT_ID, AZURE_CLIENT_ID,
 * AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT,
 * IDENTITY_HEADER, AZURE_POD_IDENTITY_AUTHORITY_HOST). Explicit configuration wins over the
 * environment; the environment applies only without an auth line or with `auth = env`. */
#include "kv_token_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

static void free_secret_str(char **s)
{
    if (*s != NULL) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void kv_cred_clear(kv_cred *c)
{
    if (c == NULL)
        return;
    free(c->tenant);
    free(c->client_id);
    free_secret_str(&c->secret);
    free(c->cert_path);
    free(c->authority);
    free(c->mi_url);
    free_secret_str(&c->mi_header);
    free(c->token_file);
    memset(c, 0, sizeof(*c));
}

const char *kv_cred_kind_name(kv_cred_kind k)
{
    switch (k) {
    case KV_CRED_SECRET:
        return "client_secret";
    case KV_CRED_CERT:
        return "client_certificate";
    case KV_CRED_MI_APPSVC:
        return "managed_identity (App Service endpoint)";
    case KV_CRED_MI_IMDS:
        return "managed_identity (IMDS)";
    case KV_CRED_STATIC:
        return "static_token";
    default:
        return "none";
    }
}

/* Host part of an http(s) URL into host (brackets removed). */
static int url_host(const char *url, char *host, size_t hostlen)
{
    const char *p = strstr(url, "://"), *e;
    size_t n;

    if (p == NULL)
        return 0;
    p += 3;
    if (strpbrk(p, "@") != NULL && strpbrk(p, "@") < p + strcspn(p, "/?#"))
        return 0; /* userinfo: refuse */
    if (*p == '[') {
        e = strchr(p, ']');
        if (e == NULL)
            return 0;
        p++;
    } else {
        e = p + strcspn(p, ":/?#");
    }
    n = (size_t)(e - p);
    if (n == 0 || n >= hostlen)
        return 0;
    memcpy(host, p, n);
    host[n] = '\0';
    return 1;
}

int kv_identity_url_ok(const char *url)
{
    char host[256];
    struct in_addr a4;
    struct in6_addr a6;
    size_t n;

    if (url == NULL || !url_host(url, host, sizeof(host)))
        return 0;
    if (strncasecmp(url, "https://", 8) == 0)
        return 1;
    if (strncasecmp(url, "http://", 7) != 0)
        return 0;
    /* plain http: loopback or link-local only (IMDS, App Service, pod identity, vaultd) */
    if (inet_pton(AF_INET, host, &a4) == 1) {
        unsigned long ip = ntohl(a4.s_addr);
        return (ip >> 24) == 127 || (ip >> 16) == 0xA9FE; /* 127/8, 169.254/16 */
    }
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6);
    n = strlen(host);
    /* libcurl resolves "localhost" and "*.localhost" to loopback itself (RFC 6761) */
    return strcasecmp(host, "localhost") == 0 ||
           (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0);
}

static const char *env_get(kv_getenv_fn env, const char *name)
{
    const char *v = env != NULL ? env(name) : getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

static kv_rv dup_to(char **slot, const char *v)
{
    if (v == NULL)
        return KV_OK;
    *slot = strdup(v);
    return *slot == NULL ? KV_ERR_NOMEM : KV_OK;
}

/* First line of a file (identity_header_file), as a secret. */
static kv_rv read_secret_line(const char *path, char **out, kv_err *err)
{
    char buf[4096];
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "cannot read identity_header_file %s: %s", path,
                          strerror(errno));
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0')
        return kv_err_set(err, KV_ERR_CONFIG, "identity_header_file %s is empty", path);
    *out = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return *out == NULL ? KV_ERR_NOMEM : KV_OK;
}

static int env_true(const char *v)
{
    return v != NULL && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0);
}

/* Managed identity endpoint: configuration first, then IDENTITY_ENDPOINT/IDENTITY_HEADER, then
 * AZURE_POD_IDENTITY_AUTHORITY_HOST, then the IMDS address. */
static kv_rv resolve_mi(const kv_vault_conf *vc, kv_getenv_fn env, int use_env, kv_cred *c,
                        kv_err *err)
{
    const char *ie = env_get(env, "IDENTITY_ENDPOINT"), *ih = env_get(env, "IDENTITY_HEADER");
    const char *pod = env_get(env, "AZURE_POD_IDENTITY_AUTHORITY_HOST");
    kv_rv rv;

    if (vc->identity_endpoint != NULL) {
        c->kind = KV_CRED_MI_APPSVC;
        rv = dup_to(&c->mi_url, vc->identity_endpoint);
        if (rv == KV_OK && vc->identity_header_file != NULL)
            rv = read_secret_line(vc->identity_header_file, &c->mi_header, err);
        else if (rv == KV_OK && ih != NULL)
            rv = dup_to(&c->mi_header, ih);
        else if (rv == KV_OK)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: identity_endpoint needs identity_header_file (or "
                              "IDENTITY_HEADER in the environment)",
                              vc->name);
    } else if (vc->imds_endpoint != NULL) {
        c->kind = KV_CRED_MI_IMDS;
        rv = dup_to(&c->mi_url, vc->imds_endpoint);
    } else if (ie != NULL) {
        if (ih == NULL)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: IDENTITY_ENDPOINT is set but IDENTITY_HEADER is missing "
                              "from the environment (App Service managed identity needs both)",
                              vc->name);
        c->kind = KV_CRED_MI_APPSVC;
        c->from_env = 1;
        rv = dup_to(&c->mi_url, ie);
        if (rv == KV_OK)
            rv = dup_to(&c->mi_header, ih);
    } else if (pod != NULL) {
        char url[600];
        size_t n = strlen(pod);

        while (n > 0 && pod[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s/metadata/identity/oauth2/token", (int)n, pod);
        c->kind = KV_CRED_MI_IMDS;
        c->from_env = 1;
        rv = dup_to(&c->mi_url, url);
    } else {
        c->kind = KV_CRED_MI_IMDS;
        rv = dup_to(&c->mi_url, KV_DEFAULT_IMDS);
    }
    if (rv != KV_OK)
        return rv;
    if (!kv_identity_url_ok(c->mi_url))
        return kv_err_set(err, KV_ERR_CONFIG,
                          "vault %s: managed identity endpoint %s refused: plain http is allowed "
                          "only to a loopback or link-local address",
                          vc->name, c->mi_url);
    /* user-assigned identity: the configured client_id, else AZURE_CLIENT_ID (as the SDKs) */
    rv = dup_to(&c->client_id, vc->client_id != NULL
                                   ? vc->client_id
                                   : (use_env ? env_get(env, "AZURE_CLIENT_ID") : NULL));
    return rv;
}

kv_rv kv_cred_resolve(const kv_vault_conf *vc, kv_getenv_fn env, kv_cred *c, kv_err *err)
{
    int use_env = vc->auth_kind == KV_AUTH_DEFAULT || vc->auth_kind == KV_AUTH_ENV;
    const char *e_tenant = use_env ? env_get(env, "AZURE_TENANT_ID") : NULL;
    const char *e_client = use_env ? env_get(env, "AZURE_CLIENT_ID") : NULL;
    const char *e_secret = use_env ? env_get(env, "AZURE_CLIENT_SECRET") : NULL;
    const char *e_cert = use_env ? env_get(env, "AZURE_CLIENT_CERTIFICATE_PATH") : NULL;
    const char *e_auth = use_env ? env_get(env, "AZURE_AUTHORITY_HOST") : NULL;
    const char *tenant, *client, *authority;
    kv_cred_kind kind = KV_CRED_NONE;
    kv_rv rv;

    memset(c, 0, sizeof(*c));
    tenant = vc->tenant_id != NULL ? vc->tenant_id : e_tenant;
    client = vc->client_id != NULL ? vc->client_id : e_client;
    authority = vc->authority != NULL ? vc->authority : e_auth;

    switch (vc->auth_kind) {
    case KV_AUTH_CLIENT_SECRET:
        kind = KV_CRED_SECRET;
        break;
    case KV_AUTH_CLIENT_CERTIFICATE:
        kind = KV_CRED_CERT;
        break;
    case KV_AUTH_MANAGED_IDENTITY:
        kind = KV_CRED_MI_IMDS; /* or App Service: resolve_mi decides */
        break;
    case KV_AUTH_STATIC_TOKEN:
        kind = KV_CRED_STATIC;
        break;
    case KV_AUTH_DEFAULT:
    case KV_AUTH_ENV:
        /* the configuration's own credential first, then DefaultAzureCredential's order:
         * environment secret, environment certificate, managed identity */
        if (vc->client_secret != NULL || vc->client_secret_sealed != NULL)
            kind = KV_CRED_SECRET;
        else if (vc->client_certificate != NULL)
            kind = KV_CRED_CERT;
        else if (vc->token_file != NULL)
            kind = KV_CRED_STATIC;
        else if (vc->identity_endpoint != NULL || vc->imds_endpoint != NULL)
            kind = KV_CRED_MI_IMDS;
        else if (e_secret != NULL || e_cert != NULL) {
            kind = e_secret != NULL ? KV_CRED_SECRET : KV_CRED_CERT;
            c->from_env = 1;
            if (tenant == NULL || client == NULL)
                return kv_err_set(
                    err, KV_ERR_CONFIG,
                    "vault %s: %s is set but %s is missing from the environment", vc->name,
                    e_secret != NULL ? "AZURE_CLIENT_SECRET" : "AZURE_CLIENT_CERTIFICATE_PATH",
                    client == NULL ? "AZURE_CLIENT_ID" : "AZURE_TENANT_ID");
        } else
            kind = KV_CRED_MI_IMDS;
        break;
    }
    c->kind = kind;
    if (authority != NULL && strncasecmp(authority, "https://", 8) != 0)
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: AZURE_AUTHORITY_HOST must be https://",
                          vc->name);
    switch (kind) {
    case KV_CRED_SECRET:
    case KV_CRED_CERT:
        if (client == NULL)
            return kv_err_set(err, KV_ERR_CONFIG, "vault %s: no client_id (or AZURE_CLIENT_ID)",
                              vc->name);
        rv = dup_to(&c->tenant, tenant);
        if (rv == KV_OK)
            rv = dup_to(&c->client_id, client);
        if (rv == KV_OK)
            rv = dup_to(&c->authority, authority != NULL ? authority : KV_DEFAULT_AUTHORITY);
        if (rv == KV_OK && c->authority != NULL) {
            size_t n = strlen(c->authority);
            while (n > 0 && c->authority[n - 1] == '/')
                c->authority[--n] = '\0';
        }
        if (rv == KV_OK && kind == KV_CRED_SECRET && vc->client_secret_sealed != NULL)
            c->sealed = 1; /* the secret arrives with kv_token_unlock */
        else if (rv == KV_OK && kind == KV_CRED_SECRET)
            rv = dup_to(&c->secret, vc->client_secret != NULL ? vc->client_secret : e_secret);
        if (rv == KV_OK && kind == KV_CRED_CERT) {
            rv = dup_to(&c->cert_path,
                        vc->client_certificate != NULL ? vc->client_certificate : e_cert);
            c->send_chain = vc->client_certificate_send_chain;
            if (vc->client_certificate == NULL &&
                env_true(env_get(env, "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")))
                c->send_chain = 1;
            c->rs256 =
                vc->client_assertion_alg != NULL && strcmp(vc->client_assertion_alg, "RS256") == 0;
            if (vc->client_certificate == NULL &&
                env_get(env, "AZURE_CLIENT_CERTIFICATE_PASSWORD") != NULL)
                return kv_err_set(err, KV_ERR_CONFIG,
                                  "vault %s: AZURE_CLIENT_CERTIFICATE_PASSWORD is not supported: "
                                  "give an unencrypted PEM with the certificate and its key",
                                  vc->name);
        }
        return rv;
    case KV_CRED_MI_APPSVC:
    case KV_CRED_MI_IMDS:
        return resolve_mi(vc, env, use_env, c, err);
    case KV_CRED_STATIC:
        return dup_to(&c->token_file, vc->token_file);
    default:
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: no credential", vc->name);
    }
}
