/* vd_identity_assert.c - verification of client assertions (vd_identity_assert.h): the JWT is
 * checked against the principal's registered certificate (thumbprint in x5t / x5t#S256, then
 * the signature: RS256, PS256 or ES256), then iss / sub, aud, the time window and the jti
 * replay cache. Errors carry Entra's AADSTS numbers and wording where Entra has them. */
#include "vd_identity_assert.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "kv_b64.h"
#include "kv_ecdsa.h"
#include "vd_identity.h"
#include "vd_util.h"

#define VD_JTI_BUCKETS 4096
#define VD_JTI_CLIENT_BUCKETS 256
#define VD_JTI_MAX 200000                 /* entries kept at most (fail closed beyond) */
#define VD_JTI_PER_CLIENT 50000           /* at most this many per client: one flooding principal */
                                          /* cannot lock the others out */
#define VD_JTI_PRUNE_EVERY 256            /* prune the persisted entries every N insertions */
#define VD_ASSERTION_MAX_LIFETIME (86400) /* exp at most this far ahead */
#define VD_ASSERTION_LEN_MAX 16384

/* AADSTS numbers used below. */
#define VD_AADSTS_MALFORMED 50027
#define VD_AADSTS_BAD_SIGNATURE 700027
#define VD_AADSTS_TIME 700024
#define VD_AADSTS_CLIENT_MISMATCH 700021
#define VD_AADSTS_AUDIENCE 700023
#define VD_AADSTS_REPLAY 700030

/* One client with entries in the cache (counts them for the per-client quota). */
typedef struct vd_jti_client {
    struct vd_jti_client *next;
    uint8_t id[32]; /* SHA-256(lower(client_id)) */
    size_t count;
} vd_jti_client;

typedef struct vd_jti {
    struct vd_jti *next;
    uint8_t id[32]; /* SHA-256(lower(client_id) "|" jti) */
    long long until;
    vd_jti_client *client;
} vd_jti;

/* The replay cache: in memory (authoritative, shared by the worker threads) and mirrored in
 * SQLite (assertion_jti, vd_store_principals.c) so that a restart does not forget it. */
struct vd_jticache {
    pthread_mutex_t lock;
    vd_jti *b[VD_JTI_BUCKETS];
    vd_jti_client *cl[VD_JTI_CLIENT_BUCKETS];
    size_t count, max, per_client;
    long long last_sweep;
    unsigned long inserts;
};

static size_t vd_env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    char *end = NULL;
    unsigned long long n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    n = strtoull(v, &end, 10);
    return (end != NULL && *end == '\0' && n > 0 && n <= dflt) ? (size_t)n : dflt;
}

static vd_jti_client *vd_jti_client_get(struct vd_jticache *c, const uint8_t id[32], bool create)
{
    size_t bucket = ((size_t)id[0] << 8 | id[1]) % VD_JTI_CLIENT_BUCKETS;
    vd_jti_client *cl;

    for (cl = c->cl[bucket]; cl != NULL; cl = cl->next)
        if (memcmp(cl->id, id, 32) == 0)
            return cl;
    if (!create || (cl = calloc(1, sizeof(*cl))) == NULL)
        return NULL;
    memcpy(cl->id, id, 32);
    cl->next = c->cl[bucket];
    c->cl[bucket] = cl;
    return cl;
}

/* Unlinks *pp (lock held), keeping the client counts right. */
static void vd_jti_drop(struct vd_jticache *c, vd_jti **pp)
{
    vd_jti *e = *pp;
    vd_jti_client **cp, *cl = e->client;

    *pp = e->next;
    c->count--;
    if (cl != NULL && --cl->count == 0) {
        for (cp = &c->cl[((size_t)cl->id[0] << 8 | cl->id[1]) % VD_JTI_CLIENT_BUCKETS]; *cp != cl;
             cp = &(*cp)->next)
            ;
        *cp = cl->next;
        free(cl);
    }
    free(e);
}

/* Drops every expired entry (lock held); at most once a second. */
static void vd_jti_sweep(struct vd_jticache *c, long long now)
{
    vd_jti **pp;
    size_t i;

    if (c->last_sweep == now)
        return;
    c->last_sweep = now;
    for (i = 0; i < VD_JTI_BUCKETS; i++)
        for (pp = &c->b[i]; *pp != NULL;)
            if ((*pp)->until < now)
                vd_jti_drop(c, pp);
            else
                pp = &(*pp)->next;
}

/* Adds (id, client) until `until` (lock held). KV_ERR_CONFLICT: there already (a replay);
 * KV_ERR_FORBIDDEN: the cache or the client's quota is full. */
static kv_rv vd_jti_insert(struct vd_jticache *c, const uint8_t id[32], const uint8_t client[32],
                           long long until, long long now)
{
    size_t bucket = ((size_t)id[0] << 8 | id[1]) % VD_JTI_BUCKETS;
    vd_jti **pp, *e;
    vd_jti_client *cl;

    for (pp = &c->b[bucket]; (e = *pp) != NULL;) {
        if (e->until < now) { /* expired: drop */
            vd_jti_drop(c, pp);
            continue;
        }
        if (CRYPTO_memcmp(e->id, id, 32) == 0)
            return KV_ERR_CONFLICT;
        pp = &e->next;
    }
    cl = vd_jti_client_get(c, client, false);
    if (c->count >= c->max || (cl != NULL && cl->count >= c->per_client)) {
        vd_jti_sweep(c, now);
        cl = vd_jti_client_get(c, client, false);
        if (c->count >= c->max || (cl != NULL && cl->count >= c->per_client))
            return KV_ERR_FORBIDDEN;
    }
    if ((cl = vd_jti_client_get(c, client, true)) == NULL || (e = calloc(1, sizeof(*e))) == NULL) {
        if (cl != NULL && cl->count == 0) { /* just created: unlink it again */
            vd_jti_client **cp =
                &c->cl[((size_t)client[0] << 8 | client[1]) % VD_JTI_CLIENT_BUCKETS];

            while (*cp != cl)
                cp = &(*cp)->next;
            *cp = cl->next;
            free(cl);
        }
        return KV_ERR_NOMEM;
    }
    memcpy(e->id, id, 32);
    e->until = until;
    e->client = cl;
    cl->count++;
    e->next = c->b[bucket];
    c->b[bucket] = e;
    c->count++;
    return KV_OK;
}

/* Removes id (lock held); used when persisting it failed. */
static void vd_jti_remove(struct vd_jticache *c, const uint8_t id[32])
{
    vd_jti **pp;

    for (pp = &c->b[((size_t)id[0] << 8 | id[1]) % VD_JTI_BUCKETS]; *pp != NULL; pp = &(*pp)->next)
        if (memcmp((*pp)->id, id, 32) == 0) {
            vd_jti_drop(c, pp);
            return;
        }
}

static kv_rv vd_jti_load_one(void *arg, const uint8_t id[32], const uint8_t client[32],
                             long long until)
{
    struct vd_jticache *c = arg;
    kv_rv rv = vd_jti_insert(c, id, client, until, vd_now());

    /* beyond the caps the persisted entry still refuses the replay (vd_store_jti_add) */
    return rv == KV_ERR_NOMEM ? rv : KV_OK;
}

kv_rv vd_jticache_new(vd_ctx *ctx)
{
    struct vd_jticache *c;
    vd_store *st = NULL;
    kv_rv rv = KV_OK;

    if (ctx == NULL)
        return KV_ERR_INVALID_ARG;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KV_ERR_NOMEM;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return KV_ERR_INTERNAL;
    }
    /* test hooks: smaller caps (never larger than the defaults) */
    c->max = vd_env_size("VAULTD_JTI_CACHE_MAX", VD_JTI_MAX);
    c->per_client = vd_env_size("VAULTD_JTI_PER_CLIENT_MAX", VD_JTI_PER_CLIENT);
    ctx->jticache = c;
    /* the jti values seen before the restart (not yet expired) */
    if (ctx->db_path[0] != '\0' && vd_store_open(ctx->db_path, &st) == KV_OK) {
        (void)vd_store_jti_prune(st, vd_now());
        rv = vd_store_jti_load(st, vd_now(), vd_jti_load_one, c);
        vd_store_close(st);
    }
    if (rv == KV_OK && c->count > 0)
        fprintf(stderr, "vaultd: %zu client-assertion jti values restored\n", c->count);
    return rv;
}

void vd_jticache_free(vd_ctx *ctx)
{
    struct vd_jticache *c = ctx ? ctx->jticache : NULL;
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < VD_JTI_BUCKETS; i++)
        while (c->b[i] != NULL)
            vd_jti_drop(c, &c->b[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
    ctx->jticache = NULL;
}

/* Records (client_id, jti) until `until`, in memory and in the store. KV_ERR_CONFLICT if it was
 * seen before (a replay), KV_ERR_FORBIDDEN if the cache or the client's share of it is full,
 * KV_ERR_INTERNAL if it cannot be persisted (fail closed). */
static kv_rv vd_jti_record(struct vd_jticache *c, vd_store *st, const char *client_id,
                           const char *jti, long long until)
{
    uint8_t id[32], client[32];
    char buf[VD_ID_MAX + 300];
    char lower[VD_ID_MAX];
    long long now = vd_now();
    bool prune;
    size_t i;
    kv_rv rv;

    for (i = 0; client_id[i] != '\0' && i + 1 < sizeof(lower); i++)
        lower[i] =
            (char)((client_id[i] >= 'A' && client_id[i] <= 'Z') ? client_id[i] + 32 : client_id[i]);
    lower[i] = '\0';
    SHA256((const uint8_t *)lower, strlen(lower), client);
    snprintf(buf, sizeof(buf), "%s|%s", lower, jti);
    SHA256((const uint8_t *)buf, strlen(buf), id);
    pthread_mutex_lock(&c->lock);
    rv = vd_jti_insert(c, id, client, until, now);
    prune = rv == KV_OK && ++c->inserts % VD_JTI_PRUNE_EVERY == 0;
    pthread_mutex_unlock(&c->lock);
    if (rv != KV_OK || st == NULL)
        return rv;
    rv = vd_store_jti_add(st, id, client, until, now);
    if (rv != KV_OK && rv != KV_ERR_CONFLICT) {
        pthread_mutex_lock(&c->lock);
        vd_jti_remove(c, id);
        pthread_mutex_unlock(&c->lock);
    }
    if (prune)
        (void)vd_store_jti_prune(st, now);
    return rv;
}

static const char *vd_str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Compares two URLs ignoring case and one trailing slash. */
static bool vd_url_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '/')
        la--;
    if (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* Whether the request's Host names this instance: a loopback name or *.localhost, or this
 * machine's host name, with the port of the configured authority. Any other Host (for example
 * login.microsoftonline.com sent on purpose) must not widen the accepted audience: an assertion
 * made for another token service must not be usable here. */
bool vd_identity_host_is_ours(const vd_req *r)
{
    const char *colon = strrchr(r->ctx->authority, ':'), *hc;
    const char *h = r->hostname;
    size_t hl = strlen(h);

    if (r->host[0] == '\0' || colon == NULL)
        return false;
    hc = strrchr(r->host, ':');
    if (hc == NULL || (strchr(r->host, ']') != NULL && hc < strchr(r->host, ']')) ||
        strcmp(hc, colon) != 0)
        return false;
    return strcmp(h, "localhost") == 0 || strcmp(h, "127.0.0.1") == 0 || strcmp(h, "::1") == 0 ||
           (hl > 10 && strcmp(h + hl - 10, ".localhost") == 0) ||
           (r->ctx->cfg.identity_host[0] != '\0' && strcasecmp(h, r->ctx->cfg.identity_host) == 0);
}

/* Whether aud names this tenant's v2 or v1 token endpoint at the configured authority or the
 * one the request came in by (when that names this instance). */
static bool vd_aud_one_ok(vd_req *r, const char *tenant, const char *aud)
{
    char url[600];
    const char *auths[2];
    char reqauth[300];
    size_t i;

    snprintf(reqauth, sizeof(reqauth), "https://%s", r->host);
    auths[0] = r->ctx->authority;
    auths[1] = vd_identity_host_is_ours(r) ? reqauth : r->ctx->authority;
    for (i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", auths[i], tenant);
        if (vd_url_eq(aud, url))
            return true;
        snprintf(url, sizeof(url), "%s/%s/oauth2/token", auths[i], tenant);
        if (vd_url_eq(aud, url))
            return true;
    }
    return false;
}

static bool vd_aud_ok(vd_req *r, const char *tenant, const json_t *aud)
{
    size_t i;

    if (json_is_string(aud))
        return vd_aud_one_ok(r, tenant, json_string_value(aud));
    if (json_is_array(aud))
        for (i = 0; i < json_array_size(aud); i++)
            if (json_is_string(json_array_get(aud, i)) &&
                vd_aud_one_ok(r, tenant, json_string_value(json_array_get(aud, i))))
                return true;
    return false;
}

/* Verifies sig over input with the certificate key of pub for alg. */
static bool vd_sig_ok(EVP_PKEY *pub, const char *alg, const uint8_t *sig, size_t siglen,
                      const char *input, size_t inlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t der[160];
    size_t derlen = sizeof(der);
    bool rsa = EVP_PKEY_is_a(pub, "RSA"), ok = false;

    if (md == NULL)
        return false;
    if (strcmp(alg, "ES256") == 0) {
        char group[32] = "";

        if (!EVP_PKEY_is_a(pub, "EC") ||
            EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) != 1 ||
            strcmp(group, "prime256v1") != 0 || siglen != 64 ||
            kv_ecdsa_raw_to_der(sig, siglen, der, &derlen) != KV_OK)
            goto done;
        sig = der;
        siglen = derlen;
    } else if (!rsa) {
        goto done;
    }
    if (EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, pub, NULL) != 1)
        goto done;
    if (strcmp(alg, "PS256") == 0 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) /* RFC 7518 */
        goto done;
    ok = EVP_DigestVerify(md, sig, siglen, (const uint8_t *)input, inlen) == 1;
done:
    EVP_MD_CTX_free(md);
    return ok;
}

/* b64url of the SHA-1 / SHA-256 of der (malloc'd). */
static char *vd_thumb(const uint8_t *der, size_t len, bool sha256)
{
    uint8_t md[SHA256_DIGEST_LENGTH];

    if (sha256)
        SHA256(der, len, md);
    else
        SHA1(der, len, md);
    return kv_b64url_encode(md, sha256 ? SHA256_DIGEST_LENGTH : SHA_DIGEST_LENGTH);
}

#define VD_FAIL(c, ...)                                                                            \
    do {                                                                                           \
        *code = (c);                                                                               \
        snprintf(msg, msglen, __VA_ARGS__);                                                        \
        goto done;                                                                                 \
    } while (0)

kv_rv vd_identity_check_assertion(vd_req *r, const char *tenant, const vd_principal_rec *rec,
                                  const char *assertion, int *code, char *msg, size_t msglen)
{
    const char *d1, *d2, *alg, *x5t, *x5t256, *iss, *sub, *jti;
    const uint8_t *p;
    json_t *hdr = NULL, *claims = NULL, *exp, *nbf;
    uint8_t *sig = NULL;
    size_t siglen = 0;
    X509 *cert = NULL;
    EVP_PKEY *pub;
    char *t1 = NULL, *t256 = NULL;
    long long now = vd_now(), expv, nbfv;
    kv_rv rv = KV_ERR_AUTH, jr;

    if (r == NULL || tenant == NULL || rec == NULL || assertion == NULL || code == NULL ||
        msg == NULL || msglen == 0)
        return KV_ERR_INVALID_ARG;
    *code = VD_AADSTS_MALFORMED;
    msg[0] = '\0';
    d1 = strchr(assertion, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (strlen(assertion) > VD_ASSERTION_LEN_MAX || d1 == NULL || d2 == NULL ||
        strchr(d2 + 1, '.') != NULL)
        VD_FAIL(VD_AADSTS_MALFORMED, "JWT token is invalid or malformed (client_assertion).");
    hdr = vd_jwt_json(assertion, (size_t)(d1 - assertion));
    claims = vd_jwt_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (hdr == NULL || claims == NULL ||
        vd_jwt_part(d2 + 1, strlen(d2 + 1), &sig, &siglen) != KV_OK)
        VD_FAIL(VD_AADSTS_MALFORMED,
                "JWT token is invalid or malformed: the client_assertion's header, claims or "
                "signature is not canonical base64url JSON.");
    alg = vd_str(hdr, "alg");
    x5t = vd_str(hdr, "x5t");
    x5t256 = vd_str(hdr, "x5t#S256");
    if ((json_object_get(hdr, "x5t") != NULL && x5t == NULL) ||
        (json_object_get(hdr, "x5t#S256") != NULL && x5t256 == NULL))
        VD_FAIL(VD_AADSTS_MALFORMED,
                "JWT token is invalid or malformed: 'x5t' and 'x5t#S256' must be strings.");
    if (json_object_get(hdr, "crit") != NULL) /* RFC 7515 4.1.11: no extension is understood */
        VD_FAIL(VD_AADSTS_MALFORMED,
                "JWT token is invalid or malformed: the 'crit' header parameter is not "
                "supported.");
    if (alg == NULL ||
        (strcmp(alg, "RS256") != 0 && strcmp(alg, "PS256") != 0 && strcmp(alg, "ES256") != 0))
        VD_FAIL(VD_AADSTS_MALFORMED,
                "The client_assertion's algorithm '%.20s' is not supported (RS256, PS256, "
                "ES256).",
                alg ? alg : "(none)");
    /* the key: the principal's registered certificate, named by its thumbprint */
    if (rec->cert_der == NULL)
        VD_FAIL(VD_AADSTS_BAD_SIGNATURE,
                "Client assertion contains an invalid signature. [Reason - The key was not "
                "found., Thumbprint of key used by client: '%.64s'; no certificate is registered "
                "for application '%s']",
                x5t      ? x5t
                : x5t256 ? x5t256
                         : "(none)",
                rec->client_id);
    t1 = vd_thumb(rec->cert_der, rec->cert_len, false);
    t256 = vd_thumb(rec->cert_der, rec->cert_len, true);
    if (t1 == NULL || t256 == NULL)
        VD_FAIL(VD_AADSTS_BAD_SIGNATURE, "Client assertion cannot be checked (out of memory).");
    if (x5t == NULL && x5t256 == NULL)
        VD_FAIL(VD_AADSTS_MALFORMED,
                "The client_assertion's header has neither 'x5t' nor 'x5t#S256'.");
    if ((x5t != NULL && strcmp(x5t, t1) != 0) || (x5t256 != NULL && strcmp(x5t256, t256) != 0))
        VD_FAIL(VD_AADSTS_BAD_SIGNATURE,
                "Client assertion contains an invalid signature. [Reason - The key was not "
                "found., Thumbprint of key used by client: '%.64s', Please visit the Azure "
                "Portal, Graph Explorer or directly use MS Graph to see configured keys for app "
                "Id '%s'.]",
                x5t256 ? x5t256 : x5t, rec->client_id);
    p = rec->cert_der;
    cert = d2i_X509(NULL, &p, (long)rec->cert_len);
    pub = cert ? X509_get0_pubkey(cert) : NULL;
    if (cert != NULL && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        VD_FAIL(VD_AADSTS_BAD_SIGNATURE,
                "Client assertion contains an invalid signature. [Reason - The key used is "
                "expired: the registered certificate %s is no longer valid.]",
                t1);
    if (pub == NULL || !vd_sig_ok(pub, alg, sig, siglen, assertion, (size_t)(d2 - assertion)))
        VD_FAIL(VD_AADSTS_BAD_SIGNATURE,
                "Client assertion contains an invalid signature. [Reason - The provided "
                "signature value did not match the expected signature value (%s with the key "
                "of certificate %s)., Thumbprint of key used by client: '%.64s']",
                alg, t1, x5t256 ? x5t256 : x5t);
    /* claims */
    iss = vd_str(claims, "iss");
    sub = vd_str(claims, "sub");
    if (iss == NULL || sub == NULL || strcasecmp(iss, rec->client_id) != 0 ||
        strcasecmp(sub, rec->client_id) != 0)
        VD_FAIL(VD_AADSTS_CLIENT_MISMATCH,
                "Client assertion application identifier doesn't match 'client_id' parameter: "
                "iss and sub must both be '%s' (found iss '%.64s', sub '%.64s').",
                rec->client_id, iss ? iss : "(none)", sub ? sub : "(none)");
    if (!vd_aud_ok(r, tenant, json_object_get(claims, "aud")))
        VD_FAIL(VD_AADSTS_AUDIENCE,
                "Client assertion audience claim does not match Realm issuer. Expected "
                "'%s/%s/oauth2/v2.0/token' (or the v1 endpoint '.../oauth2/token'), found "
                "'%.200s'.",
                r->ctx->authority, tenant,
                vd_str(claims, "aud") ? vd_str(claims, "aud") : "(none or not a string)");
    exp = json_object_get(claims, "exp");
    nbf = json_object_get(claims, "nbf");
    if (!json_is_integer(exp) || (nbf != NULL && !json_is_integer(nbf)))
        VD_FAIL(VD_AADSTS_MALFORMED,
                "JWT token is invalid or malformed: 'exp' (and 'nbf' if present) must be "
                "integers.");
    expv = json_integer_value(exp);
    nbfv = nbf ? json_integer_value(nbf) : now;
    /* compared without arithmetic on the untrusted values (no signed overflow) */
    if (expv < now - VD_ASSERTION_SKEW || nbfv > now + VD_ASSERTION_SKEW)
        VD_FAIL(VD_AADSTS_TIME,
                "Client assertion is not within its valid time range. Current time: %lld, "
                "assertion valid from %lld, expiry time of assertion %lld (allowed clock skew "
                "%d s).",
                now, nbfv, expv, VD_ASSERTION_SKEW);
    if (expv > now + VD_ASSERTION_MAX_LIFETIME)
        VD_FAIL(VD_AADSTS_TIME,
                "Client assertion lifetime is too long: exp %lld is more than %d s ahead.", expv,
                VD_ASSERTION_MAX_LIFETIME);
    jti = vd_str(claims, "jti");
    if (jti == NULL || jti[0] == '\0' || strlen(jti) > 256)
        VD_FAIL(VD_AADSTS_MALFORMED,
                "JWT token is invalid or malformed: the client_assertion needs a 'jti' claim "
                "(1-256 characters).");
    jr = r->ctx->jticache ? vd_jti_record(r->ctx->jticache, r->store, rec->client_id, jti,
                                          expv + VD_ASSERTION_SKEW)
                          : KV_ERR_INTERNAL;
    if (jr == KV_ERR_CONFLICT)
        VD_FAIL(VD_AADSTS_REPLAY,
                "The client assertion has already been used: jti '%.64s' was presented before "
                "(replay). Make a new assertion with a fresh jti.",
                jti);
    if (jr == KV_ERR_FORBIDDEN)
        VD_FAIL(VD_AADSTS_REPLAY,
                "The assertion replay cache is full for application '%s' (too many unexpired "
                "assertions); use assertions with a shorter lifetime or try again later.",
                rec->client_id);
    if (jr != KV_OK)
        VD_FAIL(VD_AADSTS_REPLAY, "The assertion replay cache is unavailable; try again later.");
    rv = KV_OK;
done:
    X509_free(cert);
    free(sig);
    free(t1);
    free(t256);
    json_decref(hdr);
    json_decref(claims);
    return rv;
}
