/* kv_config.c - parser for the INI-style client configuration (docs/configuration.md).
 * Strict: unknown sections or keys, duplicate vaults and missing required settings are
 * errors with the file name and line number. */
#include "kv_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "kv_log.h"
#include "kv_seal.h"

#define KV_CONF_MAX_SIZE ((off_t)1024 * 1024)
#define KV_CONF_MAX_VAULTS 256

static void pool_conf_free(kv_pool_conf *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nmembers; i++) {
        free(p->members[i].token);
        free(p->members[i].module);
        free(p->members[i].pin_file);
        if (p->members[i].pin != NULL) {
            OPENSSL_cleanse(p->members[i].pin, strlen(p->members[i].pin));
            free(p->members[i].pin);
        }
    }
    free(p->members);
    free(p->module);
    free(p->pin_file);
    free(p->so_pin_file);
    free(p);
}

static void vault_conf_clear(kv_vault_conf *v)
{
    pool_conf_free(v->pool);
    free(v->url);
    free(v->ca_file);
    free(v->auth);
    free(v->tenant_id);
    free(v->client_id);
    if (v->client_secret != NULL) {
        OPENSSL_cleanse(v->client_secret, strlen(v->client_secret));
        free(v->client_secret);
    }
    free(v->authority);
    free(v->resource);
    free(v->client_certificate);
    free(v->client_assertion_alg);
    free(v->identity_endpoint);
    free(v->identity_header_file);
    free(v->imds_endpoint);
    free(v->token_file);
    free(v->client_secret_sealed);
    memset(v, 0, sizeof(*v));
}

void kv_conf_free(kv_conf *conf)
{
    size_t i;

    if (conf == NULL)
        return;
    for (i = 0; i < conf->nvaults; i++)
        vault_conf_clear(&conf->vaults[i]);
    free(conf->vaults);
    free(conf->path);
    free(conf);
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static void strip_slash(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
}

static int valid_vault_name(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 3 || n > 24)
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* Reads the first line of a file (for client_secret_file). */
static kv_rv read_first_line(const char *path, char **out, kv_err *err)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    char *nl;

    if (f == NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "cannot read %s: %s", path, strerror(errno));
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    nl = strpbrk(buf, "\r\n");
    if (nl != NULL)
        *nl = '\0';
    *out = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return *out == NULL ? KV_ERR_NOMEM : KV_OK;
}

static kv_rv set_vault_key(kv_vault_conf *v, const char *key, const char *val, kv_err *err)
{
    char **slot = NULL;

    if (strcmp(key, "url") == 0)
        slot = &v->url;
    else if (strcmp(key, "ca_file") == 0)
        slot = &v->ca_file;
    else if (strcmp(key, "auth") == 0)
        slot = &v->auth;
    else if (strcmp(key, "tenant_id") == 0)
        slot = &v->tenant_id;
    else if (strcmp(key, "client_id") == 0)
        slot = &v->client_id;
    else if (strcmp(key, "client_secret") == 0)
        slot = &v->client_secret;
    else if (strcmp(key, "authority") == 0)
        slot = &v->authority;
    else if (strcmp(key, "resource") == 0)
        slot = &v->resource;
    else if (strcmp(key, "client_certificate") == 0)
        slot = &v->client_certificate;
    else if (strcmp(key, "client_assertion_alg") == 0)
        slot = &v->client_assertion_alg;
    else if (strcmp(key, "identity_endpoint") == 0)
        slot = &v->identity_endpoint;
    else if (strcmp(key, "identity_header_file") == 0)
        slot = &v->identity_header_file;
    else if (strcmp(key, "imds_endpoint") == 0)
        slot = &v->imds_endpoint;
    else if (strcmp(key, "token_file") == 0)
        slot = &v->token_file;
    else if (strcmp(key, "client_secret_sealed") == 0) { /* kv_seal.h; unlocked by a PIN */
        if (!kv_seal_is_valid(val))
            return kv_err_set(err, KV_ERR_CONFIG, "client_secret_sealed is not a value made by "
                                                  "`kvault config seal-secret`");
        slot = &v->client_secret_sealed;
    }
    else if (strcmp(key, "client_certificate_send_chain") == 0) {
        if (strcasecmp(val, "true") == 0 || strcasecmp(val, "yes") == 0 || strcmp(val, "1") == 0)
            v->client_certificate_send_chain = 1;
        else if (strcasecmp(val, "false") == 0 || strcasecmp(val, "no") == 0 ||
                 strcmp(val, "0") == 0)
            v->client_certificate_send_chain = 0;
        else
            return kv_err_set(err, KV_ERR_CONFIG,
                              "client_certificate_send_chain must be true or false");
        return KV_OK;
    } else if (strcmp(key, "key_versions") == 0) { /* latest (default) | all */
        v->key_versions_all = strcmp(val, "all") == 0;
        return strcmp(val, "all") == 0 || strcmp(val, "latest") == 0
                   ? KV_OK
                   : kv_err_set(err, KV_ERR_CONFIG, "key_versions must be latest or all");
    } else if (strcmp(key, "client_secret_file") == 0) {
        if (v->client_secret != NULL)
            return kv_err_set(err, KV_ERR_CONFIG, "client_secret given twice");
        return read_first_line(val, &v->client_secret, err);
    }
    if (slot == NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "unknown setting '%s' in a vault section", key);
    if (*slot != NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "setting '%s' given twice", key);
    *slot = strdup(val);
    if (*slot == NULL)
        return KV_ERR_NOMEM;
    if (slot == &v->url || slot == &v->authority || slot == &v->resource)
        strip_slash(*slot);
    return KV_OK;
}

static const char *const kv_auth_names[] = {
    "", "client_secret", "client_certificate", "managed_identity", "static_token", "env"};

const char *kv_conf_auth_name(kv_auth_kind k)
{
    return (size_t)k < sizeof(kv_auth_names) / sizeof(kv_auth_names[0]) ? kv_auth_names[k] : "?";
}

static int is_http_url(const char *s)
{
    return strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0;
}

static kv_rv parse_long(const char *val, long lo, long hi, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(val, &end, 10);
    if (errno != 0 || *end != '\0' || end == val || n < lo || n > hi)
        return KV_ERR_CONFIG;
    *out = n;
    return KV_OK;
}

/* ---- [pool NAME]: a local HSM pool ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A malloc'd percent-decoded copy of s[0..n) (RFC 7512 / RFC 3986); NULL on a bad escape, an
 * encoded NUL or no memory. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t i, o = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || hi * 16 + lo == 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Stores attribute value v[0..n) decoded into *slot (once). */
static kv_rv member_attr(char **slot, const char *name, const char *v, size_t n, kv_err *err)
{
    if (*slot != NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "member: '%s' given twice", name);
    *slot = pct_decode(v, n);
    if (*slot == NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "member: bad percent-encoding in '%s'", name);
    if (**slot == '\0')
        return kv_err_set(err, KV_ERR_CONFIG, "member: '%s' is empty", name);
    return KV_OK;
}

/* `member = pkcs11:token=LABEL[;manufacturer=..;model=..;serial=..]
 *           [?module-path=PATH][&pin-source=file:PATH|&pin-value=PIN]` (RFC 7512). */
static kv_rv parse_member(kv_pool_member_conf *m, const char *uri, kv_err *err)
{
    const char *p, *q, *end;
    bool query = false;
    kv_rv rv = KV_OK;

    if (strncasecmp(uri, "pkcs11:", 7) != 0)
        return kv_err_set(err, KV_ERR_CONFIG,
                          "member must be a PKCS#11 URI: pkcs11:token=LABEL?module-path=PATH");
    q = strchr(uri + 7, '?');
    for (p = uri + 7; rv == KV_OK && *p != '\0'; p = (*end == '\0' || end == q) ? end : end + 1) {
        const char *eq;
        size_t klen;

        if (p == q) {
            query = true;
            p++;
        }
        end = p + strcspn(p, query ? "&" : ";?");
        if (end == p)
            continue;
        eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL)
            return kv_err_set(err, KV_ERR_CONFIG, "member: attribute without '=' in %s", uri);
        klen = (size_t)(eq - p);
#define KV_IS(name) (klen == sizeof(name) - 1 && strncmp(p, name, klen) == 0)
        if (!query && KV_IS("token")) {
            rv = member_attr(&m->token, "token", eq + 1, (size_t)(end - eq - 1), err);
        } else if (!query && (KV_IS("manufacturer") || KV_IS("model") || KV_IS("serial"))) {
            continue; /* p11-kit / p11tool print them; the token is chosen by its label */
        } else if (query && KV_IS("module-path")) {
            rv = member_attr(&m->module, "module-path", eq + 1, (size_t)(end - eq - 1), err);
        } else if (query && KV_IS("pin-source")) {
            rv = member_attr(&m->pin_file, "pin-source", eq + 1, (size_t)(end - eq - 1), err);
            if (rv == KV_OK && strncmp(m->pin_file, "file:", 5) == 0)
                memmove(m->pin_file, m->pin_file + 5, strlen(m->pin_file + 5) + 1);
            if (rv == KV_OK && m->pin_file[0] != '/')
                rv = kv_err_set(err, KV_ERR_CONFIG,
                                "member: pin-source must be file:/ABSOLUTE/PATH or /ABSOLUTE/PATH");
        } else if (query && KV_IS("pin-value")) {
            rv = member_attr(&m->pin, "pin-value", eq + 1, (size_t)(end - eq - 1), err);
        } else if (query && KV_IS("module-name")) {
            rv = kv_err_set(err, KV_ERR_CONFIG,
                            "member: module-name is not supported; give module-path=PATH");
        } else {
            rv = kv_err_set(err, KV_ERR_CONFIG,
                            "member: unsupported attribute '%.*s' (a member names a token: "
                            "token=LABEL; query: module-path, pin-source, pin-value)",
                            (int)klen, p);
        }
#undef KV_IS
    }
    if (rv == KV_OK && m->token == NULL)
        rv = kv_err_set(err, KV_ERR_CONFIG, "member: token=LABEL is required in %s", uri);
    if (rv == KV_OK && strlen(m->token) > 32)
        rv = kv_err_set(err, KV_ERR_CONFIG, "member: a token label has at most 32 characters");
    if (rv == KV_OK && m->pin != NULL && m->pin_file != NULL)
        rv = kv_err_set(err, KV_ERR_CONFIG, "member: give pin-source or pin-value, not both");
    return rv;
}

static kv_rv set_pool_key(kv_pool_conf *p, const char *key, const char *val, kv_err *err)
{
    char **slot = NULL;
    long n;

    if (strcmp(key, "member") == 0) {
        kv_pool_member_conf *nm;
        kv_rv rv;

        if (p->nmembers >= 64)
            return kv_err_set(err, KV_ERR_CONFIG, "too many members (at most 64)");
        nm = realloc(p->members, (p->nmembers + 1) * sizeof(*nm));
        if (nm == NULL)
            return KV_ERR_NOMEM;
        p->members = nm;
        memset(&nm[p->nmembers], 0, sizeof(*nm));
        rv = parse_member(&nm[p->nmembers], val, err);
        p->nmembers++; /* freed with the pool even when incomplete */
        return rv;
    }
    if (strcmp(key, "sessions") == 0 || strcmp(key, "retry_seconds") == 0) {
        bool s = key[0] == 's';

        if (parse_long(val, s ? 1 : 0, s ? 64 : 3600, &n) != KV_OK)
            return kv_err_set(err, KV_ERR_CONFIG,
                              s ? "sessions must be 1-64" : "retry_seconds must be 0-3600");
        *(s ? &p->sessions : &p->retry_seconds) = n;
        return KV_OK;
    }
    if (strcmp(key, "module") == 0)
        slot = &p->module;
    else if (strcmp(key, "pin_file") == 0)
        slot = &p->pin_file;
    else if (strcmp(key, "so_pin_file") == 0)
        slot = &p->so_pin_file;
    if (slot == NULL)
        return kv_err_set(err, KV_ERR_CONFIG,
                          "unknown setting '%s' in a pool section (member, module, pin_file, "
                          "so_pin_file, sessions, retry_seconds)",
                          key);
    if (*slot != NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "setting '%s' given twice", key);
    *slot = strdup(val);
    return *slot == NULL ? KV_ERR_NOMEM : KV_OK;
}

/* Fills each member's module and PIN file from the pool-wide settings; checks completeness. */
static kv_rv check_pool(kv_vault_conf *v, kv_err *err)
{
    kv_pool_conf *p = v->pool;
    size_t i, j;

    if (p->nmembers == 0)
        return kv_err_set(err, KV_ERR_CONFIG,
                          "pool %s: at least one 'member = pkcs11:token=LABEL?module-path=PATH' "
                          "is required",
                          v->name);
    for (i = 0; i < p->nmembers; i++) {
        kv_pool_member_conf *m = &p->members[i];

        if (m->module == NULL && p->module != NULL && (m->module = strdup(p->module)) == NULL)
            return KV_ERR_NOMEM;
        if (m->pin == NULL && m->pin_file == NULL && p->pin_file != NULL &&
            (m->pin_file = strdup(p->pin_file)) == NULL)
            return KV_ERR_NOMEM;
        if (m->module == NULL)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "pool %s: member '%s' has no module (module-path=PATH in its URI, "
                              "or 'module = PATH' in the pool)",
                              v->name, m->token);
        if (m->pin == NULL && m->pin_file == NULL)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "pool %s: member '%s' has no PIN (pin-source=file:PATH in its "
                              "URI, or 'pin_file = PATH' in the pool)",
                              v->name, m->token);
        for (j = 0; j < i; j++)
            if (strcmp(p->members[j].token, m->token) == 0)
                return kv_err_set(err, KV_ERR_CONFIG, "pool %s: member '%s' given twice", v->name,
                                  m->token);
    }
    return KV_OK;
}

static kv_rv set_global_key(kv_conf *c, const char *key, const char *val, kv_err *err)
{
    long n;

    if (strcmp(key, "timeout") == 0) {
        if (parse_long(val, 1, 600, &n) != KV_OK)
            return kv_err_set(err, KV_ERR_CONFIG, "timeout must be 1-600 seconds");
        c->timeout = n;
    } else if (strcmp(key, "retries") == 0) {
        if (parse_long(val, 0, 10, &n) != KV_OK)
            return kv_err_set(err, KV_ERR_CONFIG, "retries must be 0-10");
        c->retries = (int)n;
    } else if (strcmp(key, "object_cache_seconds") == 0) {
        if (parse_long(val, 0, 86400, &n) != KV_OK)
            return kv_err_set(err, KV_ERR_CONFIG, "object_cache_seconds must be 0-86400");
        c->object_cache_seconds = n;
    } else if (strcmp(key, "log_level") == 0) {
        c->log_level = kv_log_level_from_name(val);
        if (c->log_level < 0)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "log_level must be none, error, warn, info or debug");
    } else {
        return kv_err_set(err, KV_ERR_CONFIG, "unknown setting '%s' in [kvault]", key);
    }
    return KV_OK;
}

/* Settings that carry a credential, refused where the method takes it elsewhere. */
static const char *credential_setting(const kv_vault_conf *v)
{
    if (v->client_secret != NULL)
        return "client_secret";
    if (v->client_secret_sealed != NULL)
        return "client_secret_sealed";
    if (v->client_certificate != NULL)
        return "client_certificate";
    if (v->token_file != NULL)
        return "token_file";
    return NULL;
}

static kv_rv check_vault(kv_vault_conf *v, kv_err *err)
{
    const char *cred = credential_setting(v);
    size_t i;

    if (v->url == NULL)
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: 'url' is required", v->name);
    if (strncasecmp(v->url, "https://", 8) != 0)
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: url must start with https://", v->name);
    v->auth_kind = KV_AUTH_DEFAULT;
    if (v->auth != NULL) {
        for (i = 1; i < sizeof(kv_auth_names) / sizeof(kv_auth_names[0]); i++)
            if (strcmp(v->auth, kv_auth_names[i]) == 0)
                v->auth_kind = (kv_auth_kind)i;
        if (v->auth_kind == KV_AUTH_DEFAULT)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: unsupported auth '%s' (client_secret, client_certificate, "
                              "managed_identity, static_token or env)",
                              v->name, v->auth);
    }
    switch (v->auth_kind) {
    case KV_AUTH_CLIENT_SECRET:
        if (v->client_id == NULL || (v->client_secret == NULL && v->client_secret_sealed == NULL))
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: auth client_secret needs client_id and client_secret "
                              "(tenant_id: or from the vault's challenge)",
                              v->name);
        break;
    case KV_AUTH_CLIENT_CERTIFICATE:
        if (v->client_id == NULL || v->client_certificate == NULL)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: auth client_certificate needs client_id and "
                              "client_certificate (tenant_id: or from the vault's challenge)",
                              v->name);
        break;
    case KV_AUTH_MANAGED_IDENTITY:
        if (cred != NULL)
            return kv_err_set(err, KV_ERR_CONFIG, "vault %s: auth managed_identity takes no %s",
                              v->name, cred);
        if (v->identity_endpoint != NULL && v->imds_endpoint != NULL)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: give identity_endpoint or imds_endpoint, not both",
                              v->name);
        break;
    case KV_AUTH_STATIC_TOKEN:
        if (v->token_file == NULL)
            return kv_err_set(err, KV_ERR_CONFIG, "vault %s: auth static_token needs token_file",
                              v->name);
        break;
    case KV_AUTH_ENV:
        if (cred != NULL || v->tenant_id != NULL || v->client_id != NULL)
            return kv_err_set(err, KV_ERR_CONFIG,
                              "vault %s: auth env takes the credential from the environment "
                              "(AZURE_*); remove %s",
                              v->name,
                              cred != NULL ? cred : (v->tenant_id ? "tenant_id" : "client_id"));
        break;
    case KV_AUTH_DEFAULT:
        break;
    }
    if (v->auth_kind != KV_AUTH_DEFAULT && v->auth_kind != KV_AUTH_CLIENT_CERTIFICATE &&
        (v->client_assertion_alg != NULL || v->client_certificate_send_chain))
        return kv_err_set(err, KV_ERR_CONFIG,
                          "vault %s: client_assertion_alg and client_certificate_send_chain "
                          "belong to auth client_certificate",
                          v->name);
    if (v->client_assertion_alg != NULL && strcmp(v->client_assertion_alg, "PS256") != 0 &&
        strcmp(v->client_assertion_alg, "RS256") != 0)
        return kv_err_set(err, KV_ERR_CONFIG,
                          "vault %s: client_assertion_alg must be PS256 or RS256", v->name);
    if ((v->identity_endpoint != NULL || v->identity_header_file != NULL ||
         v->imds_endpoint != NULL) &&
        v->auth_kind != KV_AUTH_MANAGED_IDENTITY && v->auth_kind != KV_AUTH_DEFAULT)
        return kv_err_set(err, KV_ERR_CONFIG,
                          "vault %s: identity_endpoint, identity_header_file and imds_endpoint "
                          "belong to auth managed_identity",
                          v->name);
    if ((v->identity_endpoint != NULL && !is_http_url(v->identity_endpoint)) ||
        (v->imds_endpoint != NULL && !is_http_url(v->imds_endpoint)))
        return kv_err_set(err, KV_ERR_CONFIG,
                          "vault %s: identity_endpoint/imds_endpoint must be http(s) URLs",
                          v->name);
    if (v->token_file != NULL && v->auth_kind != KV_AUTH_STATIC_TOKEN &&
        v->auth_kind != KV_AUTH_DEFAULT)
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: token_file belongs to auth static_token",
                          v->name);
    if (v->authority != NULL && strncasecmp(v->authority, "https://", 8) != 0)
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: authority must start with https://",
                          v->name);
    if (v->client_secret_sealed != NULL &&
        (v->client_secret != NULL || v->client_id == NULL ||
         (v->auth_kind != KV_AUTH_DEFAULT && v->auth_kind != KV_AUTH_CLIENT_SECRET)))
        return kv_err_set(err, KV_ERR_CONFIG,
                          "vault %s: client_secret_sealed replaces client_secret (auth "
                          "client_secret, with client_id)",
                          v->name);
    return KV_OK;
}

kv_rv kv_conf_parse(const char *text, const char *origin, kv_conf **out, kv_err *err)
{
    kv_conf *c;
    char *copy = NULL, *line, *next;
    kv_vault_conf *cur = NULL;
    int in_global = 0, lineno = 0;
    size_t i;
    kv_rv rv = KV_OK;

    if (text == NULL || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no configuration text");
    c = calloc(1, sizeof(*c));
    copy = strdup(text);
    if (c == NULL || copy == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    c->timeout = 10;
    c->retries = 3;
    c->object_cache_seconds = 30;
    c->log_level = -1;
    c->path = strdup(origin != NULL ? origin : "");
    if (c->path == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (line = copy; line != NULL; line = next) {
        char *s, *eq;

        lineno++;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            char *sec;

            if (end == NULL || end[1] != '\0') {
                rv = kv_err_set(err, KV_ERR_CONFIG, "malformed section header");
                goto fail;
            }
            *end = '\0';
            sec = trim(s + 1);
            cur = NULL;
            in_global = 0;
            if (strcmp(sec, "kvault") == 0) {
                in_global = 1;
            } else if ((strncmp(sec, "vault", 5) == 0 && isspace((unsigned char)sec[5])) ||
                       (strncmp(sec, "pool", 4) == 0 && isspace((unsigned char)sec[4]))) {
                bool is_pool = sec[0] == 'p'; /* [pool NAME]: a local HSM pool, one more slot */
                const char *name = trim(sec + (is_pool ? 4 : 5));
                kv_vault_conf *nv;

                if (!valid_vault_name(name)) {
                    rv = kv_err_set(err, KV_ERR_CONFIG,
                                    "%s name '%s' must be 3-24 characters [0-9A-Za-z-]",
                                    is_pool ? "pool" : "vault", name);
                    goto fail;
                }
                for (i = 0; i < c->nvaults; i++)
                    if (strcasecmp(c->vaults[i].name, name) == 0) {
                        rv = kv_err_set(err, KV_ERR_CONFIG, "vault or pool '%s' defined twice",
                                        name);
                        goto fail;
                    }
                if (c->nvaults >= KV_CONF_MAX_VAULTS) {
                    rv = kv_err_set(err, KV_ERR_CONFIG, "too many vaults");
                    goto fail;
                }
                nv = realloc(c->vaults, (c->nvaults + 1) * sizeof(*nv));
                if (nv == NULL) {
                    rv = KV_ERR_NOMEM;
                    goto done;
                }
                c->vaults = nv;
                cur = &c->vaults[c->nvaults++];
                memset(cur, 0, sizeof(*cur));
                snprintf(cur->name, sizeof(cur->name), "%s", name);
                if (is_pool) {
                    size_t ul = strlen(name) + sizeof("pkcs11:token=");

                    cur->pool = calloc(1, sizeof(*cur->pool));
                    cur->url = malloc(ul);
                    if (cur->pool == NULL || cur->url == NULL) {
                        rv = KV_ERR_NOMEM;
                        goto done;
                    }
                    snprintf(cur->url, ul, "pkcs11:token=%s", name);
                    cur->pool->retry_seconds = 5;
                }
            } else {
                rv = kv_err_set(err, KV_ERR_CONFIG, "unknown section [%s]", sec);
                goto fail;
            }
            continue;
        }
        eq = strchr(s, '=');
        if (eq == NULL) {
            rv = kv_err_set(err, KV_ERR_CONFIG, "expected 'key = value'");
            goto fail;
        }
        *eq = '\0';
        {
            char *key = trim(s), *val = trim(eq + 1);

            if (cur != NULL)
                rv = cur->pool != NULL ? set_pool_key(cur->pool, key, val, err)
                                       : set_vault_key(cur, key, val, err);
            else if (in_global)
                rv = set_global_key(c, key, val, err);
            else
                rv = kv_err_set(err, KV_ERR_CONFIG, "setting '%s' outside a section", key);
            if (rv != KV_OK)
                goto fail;
        }
    }
    for (i = 0; i < c->nvaults; i++) {
        rv = c->vaults[i].pool != NULL ? check_pool(&c->vaults[i], err)
                                       : check_vault(&c->vaults[i], err);
        if (rv != KV_OK) {
            lineno = 0;
            goto fail;
        }
    }
    *out = c;
    c = NULL;
    goto done;
fail:
    if (err != NULL && rv == KV_ERR_CONFIG) {
        char pre[300];

        if (lineno > 0)
            snprintf(pre, sizeof(pre), "%.256s:%d: ", origin ? origin : "config", lineno);
        else
            snprintf(pre, sizeof(pre), "%.256s: ", origin ? origin : "config");
        kv_err_prefix(err, pre);
    }
done:
    if (copy != NULL) {
        OPENSSL_cleanse(copy, strlen(text));
        free(copy);
    }
    kv_conf_free(c);
    return rv;
}

kv_rv kv_conf_load(const char *path, kv_conf **out, kv_err *err)
{
    const char *env = getenv("KVAULT_CONF");
    int named = 1;
    FILE *f = NULL;
    char *buf = NULL;
    size_t n;
    struct stat st;
    kv_rv rv;

    if (out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no output");
    if (path == NULL || *path == '\0')
        path = (env != NULL && *env != '\0') ? env : NULL;
    if (path == NULL) {
        path = KV_DEFAULT_CONF;
        named = 0;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        if (!named && errno == ENOENT)
            return kv_conf_parse("", "", out, err);
        return kv_err_set(err, KV_ERR_CONFIG, "cannot open kvault configuration %s: %s", path,
                          strerror(errno));
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KV_CONF_MAX_SIZE) {
        fclose(f);
        return kv_err_set(err, KV_ERR_CONFIG,
                          "kvault configuration %s is not a regular file "
                          "of at most 1 MiB",
                          path);
    }
    buf = calloc(1, (size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        return KV_ERR_NOMEM;
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = '\0';
    if (st.st_mode & S_IWOTH)
        KV_WARN("configuration %s is world-writable", path);
    rv = kv_conf_parse(buf, path, out, err);
    OPENSSL_cleanse(buf, n);
    free(buf);
    return rv;
}

const char *kv_conf_resource(const kv_vault_conf *vc)
{
    if (vc->pool != NULL)
        return ""; /* a local pool uses no tokens */
    if (vc->resource != NULL)
        return vc->resource;
    if (vc->url != NULL && strstr(vc->url, ".managedhsm.") != NULL)
        return "https://managedhsm.azure.net";
    return "https://vault.azure.net";
}
