/* kv_token.c - the token source of one vault: the credential resolved at start, a token cache
 * shared by threads and kept across fork, one fetch at a time, and the 401 challenge rules.
 *
 * Locking: the cache uses the transport's short lock (kv_http_lock), which the fork handlers
 * hold across fork() and which is never held across a network call. A fetch in progress is
 * marked by `fetching` with the fetching process's pid: other threads poll (no condition
 * variable, so nothing is left inconsistent in a forked child); in a child the mark of a
 * parent's fetch is stale and ignored. */
#include "kv_token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kv_client.h"
#include "kv_log.h"
#include "kv_seal.h"
#include "kv_token_int.h"

#define KV_TOKEN_WAIT_STEP_MS 20
#define KV_TENANT_MAX 128
#define KV_RESOURCE_MAX 256

struct kv_token_src {
    const kv_vault_conf *vc;
    kv_http *http;
    kv_cred cred;  /* immutable after creation */
    kv_rv init_rv; /* credential resolution failed: reported by every get */
    kv_err init_err;
    kv_cert_cred cert; /* loaded certificate; used only by the fetching thread */
    /* guarded by kv_http_lock: */
    char tenant[KV_TENANT_MAX];     /* "" = unknown (learn from the challenge) */
    int tenant_pinned;              /* from configuration or AZURE_TENANT_ID */
    char resource[KV_RESOURCE_MAX]; /* token resource */
    int resource_pinned;            /* `resource` in the configuration */
    char *token;                    /* cached access token, zeroised on replacement */
    long long expires_on;           /* unix seconds */
    long long refresh_at;           /* unix seconds: refresh from here on */
    dev_t tf_dev;                   /* static token file identity when it was read */
    ino_t tf_ino;
    long long tf_mtime_ns;
    off_t tf_size;
    int fetching;
    pid_t fetch_pid;
    char *unlocked; /* the sealed client secret after kv_token_unlock (zeroised) */
    unsigned gen;   /* completed fetches */
    kv_rv last_rv; /* result of the last fetch, for the threads that waited for it */
    kv_err last_err;
};

void kv_free_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

kv_rv kv_token_src_new(const kv_vault_conf *vc, kv_http *http, kv_token_src **out, kv_err *err)
{
    kv_token_src *ts;

    if (vc == NULL || http == NULL || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad token source");
    ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return KV_ERR_NOMEM;
    ts->vc = vc;
    ts->http = http;
    ts->init_rv = kv_cred_resolve(vc, NULL, &ts->cred, &ts->init_err);
    if (ts->init_rv == KV_ERR_NOMEM) {
        kv_token_src_free(ts);
        return KV_ERR_NOMEM;
    }
    if (ts->init_rv != KV_OK)
        KV_WARN("vault %s: %s", vc->name, ts->init_err.message);
    else
        KV_DEBUG("vault %s: authentication %s%s", vc->name, kv_cred_kind_name(ts->cred.kind),
                 ts->cred.from_env ? " (from the environment)" : "");
    if (ts->cred.tenant != NULL) {
        snprintf(ts->tenant, sizeof(ts->tenant), "%s", ts->cred.tenant);
        ts->tenant_pinned = 1;
    }
    snprintf(ts->resource, sizeof(ts->resource), "%s", kv_conf_resource(vc));
    ts->resource_pinned = vc->resource != NULL;
    *out = ts;
    return KV_OK;
}

void kv_token_src_free(kv_token_src *ts)
{
    if (ts == NULL)
        return;
    kv_free_secret(ts->token);
    kv_free_secret(ts->unlocked);
    kv_cred_clear(&ts->cred);
    kv_cert_clear(&ts->cert);
    free(ts);
}

static int needs_tenant(const kv_token_src *ts)
{
    return ts->cred.kind == KV_CRED_SECRET || ts->cred.kind == KV_CRED_CERT;
}

int kv_token_needs_challenge(kv_token_src *ts)
{
    int r;

    if (ts == NULL || ts->init_rv != KV_OK || !needs_tenant(ts))
        return 0;
    kv_http_lock(ts->http);
    r = ts->tenant[0] == '\0';
    kv_http_unlock(ts->http);
    return r;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* Identity of the static token file now; 0 if it cannot be stat'ed. */
static int token_file_id(const char *path, struct stat *st)
{
    return path != NULL && stat(path, st) == 0;
}

static int same_file(const kv_token_src *ts, const struct stat *st)
{
    return ts->tf_dev == st->st_dev && ts->tf_ino == st->st_ino && ts->tf_size == st->st_size &&
           ts->tf_mtime_ns == (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* One fetch with the credential c (ts->cred, or a copy holding the unsealed secret; network or
 * file; no lock held). */
static kv_rv fetch(kv_token_src *ts, const kv_cred *c, const char *tenant, const char *resource,
                   char **tok, long long *exp, kv_err *err)
{
    long long now = (long long)time(NULL);
    kv_rv rv;

    switch (c->kind) {
    case KV_CRED_SECRET:
    case KV_CRED_CERT:
        if (tenant[0] == '\0')
            return kv_err_set(err, KV_ERR_AUTH,
                              "vault %s: no tenant: set tenant_id (or AZURE_TENANT_ID), or let "
                              "a request to the vault name it in its challenge",
                              ts->vc->name);
        return kv_entra_fetch(ts->http, c, &ts->cert, tenant, resource, ts->vc->ca_file, tok, exp,
                              err);
    case KV_CRED_MI_APPSVC:
    case KV_CRED_MI_IMDS:
        return kv_mi_fetch(ts->http, c, resource, ts->vc->ca_file, tok, exp, err);
    case KV_CRED_STATIC:
        rv = kv_static_read(c->token_file, tok, exp, err);
        if (rv == KV_OK && *exp != 0 && *exp <= now) {
            kv_free_secret(*tok);
            *tok = NULL;
            return kv_err_set(err, KV_ERR_AUTH, "the token in token_file %s has expired",
                              c->token_file);
        }
        if (rv == KV_OK && *exp == 0)
            *exp = now + 365LL * 86400; /* opaque token: until the file changes */
        return rv;
    default:
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: no credential", ts->vc->name);
    }
}

static kv_rv copy_cached(kv_token_src *ts, char **token, long long *expires_on)
{
    *token = strdup(ts->token);
    if (expires_on != NULL)
        *expires_on = ts->expires_on;
    return *token != NULL ? KV_OK : KV_ERR_NOMEM;
}

kv_rv kv_token_get(kv_token_src *ts, char **token, long long *expires_on, kv_err *err)
{
    char tenant[KV_TENANT_MAX], resource[KV_RESOURCE_MAX];
    char *fresh = NULL, *secret = NULL;
    kv_cred cred;
    long long exp = 0, now, life;
    struct stat st;
    int have_st;
    unsigned gen;
    pid_t me;
    kv_rv rv;

    if (ts == NULL || token == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad token request");
    *token = NULL;
    if (ts->init_rv != KV_OK) {
        if (err != NULL)
            *err = ts->init_err;
        return ts->init_rv;
    }
    me = getpid();
    for (;;) {
        now = (long long)time(NULL);
        have_st = ts->cred.kind == KV_CRED_STATIC && token_file_id(ts->cred.token_file, &st);
        kv_http_lock(ts->http);
        if (ts->token != NULL && now < ts->refresh_at &&
            (ts->cred.kind != KV_CRED_STATIC || (have_st && same_file(ts, &st)))) {
            rv = copy_cached(ts, token, expires_on);
            kv_http_unlock(ts->http);
            return rv;
        }
        if (!ts->fetching || ts->fetch_pid != me)
            break; /* no fetch in progress (a parent's, before fork, does not count) */
        /* Another thread fetches: use the cached token while it is still valid, else wait. */
        if (ts->token != NULL && now + 5 < ts->expires_on && ts->cred.kind != KV_CRED_STATIC) {
            rv = copy_cached(ts, token, expires_on);
            kv_http_unlock(ts->http);
            return rv;
        }
        gen = ts->gen;
        kv_http_unlock(ts->http);
        for (;;) {
            sleep_ms(KV_TOKEN_WAIT_STEP_MS);
            kv_http_lock(ts->http);
            if (ts->gen != gen || !ts->fetching || ts->fetch_pid != me)
                break;
            kv_http_unlock(ts->http);
        }
        if (ts->gen != gen && ts->last_rv != KV_OK &&
            (ts->token == NULL || (long long)time(NULL) >= ts->expires_on)) {
            /* the fetch we waited for failed: same answer, no second attempt */
            rv = ts->last_rv;
            if (err != NULL)
                *err = ts->last_err;
            kv_http_unlock(ts->http);
            return rv;
        }
        kv_http_unlock(ts->http);
    }
    /* We fetch (lock held here). A sealed credential needs the secret kv_token_unlock gave. */
    cred = ts->cred;
    if (ts->cred.sealed) {
        if (ts->unlocked == NULL || (secret = strdup(ts->unlocked)) == NULL) {
            /* decided under the lock: C_Login in another thread may set it right after */
            int locked = ts->unlocked == NULL;

            kv_http_unlock(ts->http);
            if (locked)
                return kv_err_set(err, KV_ERR_LOCKED,
                                  "vault %s is locked: its client secret is sealed under a PIN "
                                  "(log in: C_Login)",
                                  ts->vc->name);
            return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        }
        cred.secret = secret;
    }
    ts->fetching = 1;
    ts->fetch_pid = me;
    snprintf(tenant, sizeof(tenant), "%s", ts->tenant);
    snprintf(resource, sizeof(resource), "%s", ts->resource);
    kv_http_unlock(ts->http);

    rv = fetch(ts, &cred, tenant, resource, &fresh, &exp, err);
    kv_free_secret(secret);
    now = (long long)time(NULL);

    kv_http_lock(ts->http);
    ts->fetching = 0;
    ts->gen++;
    ts->last_rv = rv;
    if (rv != KV_OK) {
        if (err != NULL)
            ts->last_err = *err;
        else
            kv_err_set(&ts->last_err, rv, "token request failed");
        if (ts->token != NULL && now < ts->expires_on && ts->cred.kind != KV_CRED_STATIC &&
            strcmp(tenant, ts->tenant) == 0 && strcmp(resource, ts->resource) == 0) {
            /* refresh failed but the cached token is still valid: use it */
            KV_WARN("vault %s: token refresh failed (%s); using the cached token", ts->vc->name,
                    ts->last_err.message);
            rv = copy_cached(ts, token, expires_on);
            kv_err_clear(err);
            /* try again in 30 s, not on every call */
            ts->refresh_at = now + 30 < ts->expires_on ? now + 30 : ts->expires_on;
        }
        kv_http_unlock(ts->http);
        return rv;
    }
    if (strcmp(tenant, ts->tenant) != 0 || strcmp(resource, ts->resource) != 0 ||
        (ts->cred.sealed && ts->unlocked == NULL)) {
        /* a challenge changed tenant or resource meanwhile: this token is for the old ones;
         * or kv_token_lock (C_Logout) ran during the fetch: the token got with the secret must
         * not outlive it in the cache. Hand it to this caller but do not cache it */
        kv_http_unlock(ts->http);
        *token = fresh;
        if (expires_on != NULL)
            *expires_on = exp;
        return KV_OK;
    }
    kv_free_secret(ts->token);
    ts->token = fresh;
    ts->expires_on = exp;
    life = exp - now;
    if (life < 1)
        life = 1;
    /* Refresh a quarter of the lifetime (at most 5 minutes) before expiry. */
    ts->refresh_at =
        ts->cred.kind == KV_CRED_STATIC ? exp : exp - (life / 4 < 300 ? life / 4 : 300);
    if (have_st) {
        ts->tf_dev = st.st_dev;
        ts->tf_ino = st.st_ino;
        ts->tf_size = st.st_size;
        ts->tf_mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    }
    rv = copy_cached(ts, token, expires_on);
    kv_http_unlock(ts->http);
    KV_DEBUG("vault %s: new token (%s), valid %lld s", ts->vc->name,
             kv_cred_kind_name(ts->cred.kind), life);
    return rv;
}

void kv_token_invalidate(kv_token_src *ts, const char *token)
{
    if (ts == NULL || token == NULL)
        return;
    kv_http_lock(ts->http);
    if (ts->token != NULL && strcmp(ts->token, token) == 0) {
        kv_free_secret(ts->token);
        ts->token = NULL;
        ts->refresh_at = 0;
    }
    kv_http_unlock(ts->http);
}

/* ---- the 401 challenge ---- */

/* Value of parameter `name` in a Bearer challenge (quoted or token), into out. */
static int challenge_param(const char *h, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = h;

    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return 0;
    p += 6;
    while (*p != '\0') {
        const char *k, *v;
        size_t klen, vlen;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        k = p;
        while (*p != '\0' && *p != '=' && *p != ',' && *p != ' ')
            p++;
        klen = (size_t)(p - k);
        if (*p != '=')
            continue;
        p++;
        if (*p == '"') {
            v = ++p;
            while (*p != '\0' && *p != '"')
                p++;
            vlen = (size_t)(p - v);
            if (*p == '"')
                p++;
        } else {
            v = p;
            while (*p != '\0' && *p != ',' && *p != ' ')
                p++;
            vlen = (size_t)(p - v);
        }
        if (klen == nlen && strncasecmp(k, name, nlen) == 0) {
            if (vlen >= outlen)
                return 0;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
    }
    return 0;
}

/* "scheme://host[:port]" of url into out (lower-case, ":443" dropped for https). */
static int origin_of(const char *url, char *out, size_t outlen, const char **path)
{
    const char *p = strstr(url, "://"), *e;
    size_t n, i;

    if (p == NULL)
        return 0;
    e = p + 3 + strcspn(p + 3, "/?#");
    n = (size_t)(e - url);
    if (n >= outlen)
        return 0;
    for (i = 0; i < n; i++)
        out[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] + 32 : url[i]);
    out[n] = '\0';
    if (n > 12 && strncmp(out, "https://", 8) == 0 && strcmp(out + n - 4, ":443") == 0)
        out[n - 4] = '\0';
    if (path != NULL)
        *path = e;
    return 1;
}

static int public_cloud_login(const char *origin)
{
    static const char *const hosts[] = {"https://login.microsoftonline.com",
                                        "https://login.windows.net", "https://login.microsoft.com",
                                        "https://sts.windows.net"};
    size_t i;

    for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
        if (strcmp(origin, hosts[i]) == 0)
            return 1;
    return 0;
}

/* May a token for `resource` be sent to the vault at url? Known Key Vault resources, or a
 * resource whose host the vault's host is under (the Azure SDK's resource verification). */
static int resource_ok(const char *url, const char *resource)
{
    static const char *const known[] = {
        "https://vault.azure.net",         "https://managedhsm.azure.net",
        "https://vault.azure.cn",          "https://managedhsm.azure.cn",
        "https://vault.usgovcloudapi.net", "https://managedhsm.usgovcloudapi.net",
        "https://vault.microsoftazure.de"};
    char vo[300], ro[300];
    size_t i, vl, rl;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcasecmp(resource, known[i]) == 0)
            return 1;
    if (!origin_of(url, vo, sizeof(vo), NULL) || !origin_of(resource, ro, sizeof(ro), NULL) ||
        strncmp(ro, "https://", 8) != 0)
        return 0;
    vo[8 + strcspn(vo + 8, ":")] = '\0';
    ro[8 + strcspn(ro + 8, ":")] = '\0';
    vl = strlen(vo + 8);
    rl = strlen(ro + 8);
    return vl > rl + 1 && vo[8 + vl - rl - 1] == '.' && strcmp(vo + 8 + vl - rl, ro + 8) == 0;
}

static int valid_tenant(const char *t)
{
    size_t i, n = strlen(t);

    if (n == 0 || n >= KV_TENANT_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'z') ||
              (t[i] >= 'A' && t[i] <= 'Z') || t[i] == '-' || t[i] == '.'))
            return 0;
    return 1;
}

kv_rv kv_token_challenge(kv_token_src *ts, const char *www, const char *rejected, kv_err *err)
{
    char authz[512], res[KV_RESOURCE_MAX], scope[KV_RESOURCE_MAX + 16], co[300], ao[300];
    char tenant[KV_TENANT_MAX] = "";
    const char *path = NULL;
    int learned = 0, have_authz, have_res;
    size_t n;
    kv_rv rv = KV_OK;

    if (ts == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no token source");
    if (rejected != NULL)
        kv_token_invalidate(ts, rejected);
    if (ts->init_rv != KV_OK || www == NULL)
        www = "";
    have_authz = challenge_param(www, "authorization", authz, sizeof(authz)) ||
                 challenge_param(www, "authorization_uri", authz, sizeof(authz));
    have_res = challenge_param(www, "resource", res, sizeof(res));
    if (!have_res && challenge_param(www, "scope", scope, sizeof(scope))) {
        n = strlen(scope);
        if (n > 9 && strcmp(scope + n - 9, "/.default") == 0)
            scope[n - 9] = '\0';
        snprintf(res, sizeof(res), "%.*s", (int)sizeof(res) - 1, scope);
        have_res = 1;
    }
    if (have_res) {
        n = strlen(res);
        while (n > 0 && res[n - 1] == '/')
            res[--n] = '\0';
    }
    /* tenant: first path segment of the authorization URL, if its authority is ours */
    if (have_authz && origin_of(authz, co, sizeof(co), &path) && path[0] == '/') {
        snprintf(tenant, sizeof(tenant), "%.*s", (int)strcspn(path + 1, "/?#"), path + 1);
        if (!valid_tenant(tenant))
            tenant[0] = '\0';
    }

    kv_http_lock(ts->http);
    if (needs_tenant(ts) && tenant[0] != '\0') {
        int allowed = origin_of(ts->cred.authority, ao, sizeof(ao), NULL) &&
                      (strcmp(co, ao) == 0 || (public_cloud_login(co) && public_cloud_login(ao)));

        if (!allowed) {
            if (ts->tenant[0] == '\0')
                rv = kv_err_set(err, KV_ERR_AUTH,
                                "vault %s: its challenge names authority %s, which is not the "
                                "configured authority %s; refusing to use it (set tenant_id, or "
                                "authority)",
                                ts->vc->name, co, ao);
        } else if (strcasecmp(tenant, ts->tenant) != 0) {
            if (ts->tenant_pinned) {
                rv = kv_err_set(err, KV_ERR_AUTH,
                                "vault %s is in tenant %s, but the credential's tenant is %s "
                                "(tenant_id / AZURE_TENANT_ID)",
                                ts->vc->name, tenant, ts->tenant);
            } else {
                snprintf(ts->tenant, sizeof(ts->tenant), "%s", tenant);
                learned = 1;
            }
        }
    } else if (needs_tenant(ts) && ts->tenant[0] == '\0') {
        rv = kv_err_set(err, KV_ERR_AUTH,
                        "vault %s sent no usable challenge naming its tenant: set tenant_id (or "
                        "AZURE_TENANT_ID)",
                        ts->vc->name);
    }
    if (rv == KV_OK && have_res && !ts->resource_pinned && strcasecmp(res, ts->resource) != 0) {
        if (resource_ok(ts->vc->url, res)) {
            snprintf(ts->resource, sizeof(ts->resource), "%s", res);
            learned = 1;
        } else {
            rv = kv_err_set(err, KV_ERR_AUTH,
                            "vault %s: its challenge asks for a token for %s, which is not a Key "
                            "Vault resource for %s; refusing (set resource to override)",
                            ts->vc->name, res, ts->vc->url);
        }
    }
    if (learned) {
        KV_INFO("vault %s: challenge: tenant %s, resource %s", ts->vc->name,
                ts->tenant[0] ? ts->tenant : "-", ts->resource);
        kv_free_secret(ts->token);
        ts->token = NULL;
        ts->refresh_at = 0;
    }
    kv_http_unlock(ts->http);
    if (rv != KV_OK)
        return rv;
    /* A request without a token (the probe) may be retried once the tenant is known, also
     * when another thread's probe learnt it first. */
    if (rejected == NULL && !learned && kv_token_needs_challenge(ts))
        return kv_err_set(err, KV_ERR_AUTH,
                          "vault %s refused the request (401) and its "
                          "challenge gives nothing new",
                          ts->vc->name);
    return KV_OK;
}

int kv_token_sealed(const kv_token_src *ts)
{
    return ts != NULL && ts->init_rv == KV_OK && ts->cred.sealed;
}

kv_rv kv_token_unlock(kv_token_src *ts, const char *pin, size_t pinlen, kv_err *err)
{
    uint8_t *secret = NULL;
    size_t len = 0;
    kv_rv rv;

    if (!kv_token_sealed(ts))
        return kv_err_set(err, KV_ERR_UNSUPPORTED, "this vault's credential is not sealed");
    /* PBKDF2 runs without the lock: other vaults' requests go on meanwhile. */
    rv = kv_unseal(ts->vc->client_secret_sealed, pin, pinlen, "client_secret", &secret, &len, err);
    if (rv != KV_OK)
        return rv;
    if (strlen((const char *)secret) != len) {
        OPENSSL_clear_free(secret, len + 1);
        return kv_err_set(err, KV_ERR_CONFIG, "vault %s: the sealed client secret is not text",
                          ts->vc->name);
    }
    kv_http_lock(ts->http);
    kv_free_secret(ts->unlocked);
    ts->unlocked = (char *)secret;
    kv_http_unlock(ts->http);
    return KV_OK;
}

void kv_token_lock(kv_token_src *ts)
{
    if (!kv_token_sealed(ts))
        return;
    kv_http_lock(ts->http);
    kv_free_secret(ts->unlocked);
    ts->unlocked = NULL;
    kv_free_secret(ts->token); /* a token got with the secret is dropped with it */
    ts->token = NULL;
    ts->expires_on = 0;
    ts->refresh_at = 0;
    kv_http_unlock(ts->http);
}
