/* vd_identity.c - the Entra-like identity endpoints of vaultd (client credentials only) and
 * the ES256 JWT access tokens they issue, verified again on every vault request. */
#include "vd_identity.h"

#include <ctype.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "kv_b64.h"
#include "kv_ecdsa.h"
#include "kv_jwk.h"
#include "vd_identity_assert.h"
#include "vd_identity_keys.h"
#include "vd_store_principals.h"
#include "vd_util.h"
#include "vd_workpool.h"

#define VD_JWT_MAX 8192
#define VD_NBF_SKEW 60
#define VD_SC_SLOTS 64
#define VD_AZURE_CLI_APP_ID "04b07795-8ddb-461a-bbee-02f9e1bf7b46" /* public client */

/* ---- client secrets ---- */

typedef struct vd_sc_entry {
    char client_id[VD_ID_MAX];
    uint8_t mac[32]; /* HMAC(process key, salt || hash || secret) of a verified secret */
    bool used;
} vd_sc_entry;

/* Sign-in lockout of users (Entra's smart lockout, simplified): VD_LOCK_FAILS wrong passwords
 * within VD_LOCK_WINDOW seconds lock the user for VD_LOCK_SECONDS; bounded (one slot per
 * hash of the user id, a colliding user takes the slot over). */
#define VD_LOCK_SLOTS 1024
#define VD_LOCK_FAILS 10
#define VD_LOCK_WINDOW 60
#define VD_LOCK_SECONDS 60

typedef struct vd_lock_entry {
    char id[VD_ID_MAX];
    unsigned fails;
    long long first_fail, locked_until;
} vd_lock_entry;

struct vd_secretcache {
    pthread_mutex_t lock;
    uint8_t key[32]; /* random per process */
    size_t next;
    vd_sc_entry e[VD_SC_SLOTS];
    vd_lock_entry locks[VD_LOCK_SLOTS];
};

static vd_lock_entry *vd_lock_slot(vd_secretcache *sc, const char *id)
{
    uint8_t md[32];

    SHA256((const uint8_t *)id, strlen(id), md);
    return &sc->locks[((size_t)md[0] << 8 | md[1]) % VD_LOCK_SLOTS];
}

/* Whether the user is locked out now. */
static bool vd_user_locked(vd_ctx *ctx, const char *id)
{
    vd_secretcache *sc = ctx ? ctx->secretcache : NULL;
    vd_lock_entry *e;
    bool locked = false;

    if (sc == NULL)
        return false;
    pthread_mutex_lock(&sc->lock);
    e = vd_lock_slot(sc, id);
    locked = strcmp(e->id, id) == 0 && e->locked_until > vd_now();
    pthread_mutex_unlock(&sc->lock);
    return locked;
}

/* Records the outcome of a password check (a success clears the count). */
static void vd_user_signin(vd_ctx *ctx, const char *id, bool ok)
{
    vd_secretcache *sc = ctx ? ctx->secretcache : NULL;
    long long now = vd_now();
    vd_lock_entry *e;

    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->lock);
    e = vd_lock_slot(sc, id);
    if (strcmp(e->id, id) != 0 || ok || now - e->first_fail > VD_LOCK_WINDOW) {
        memset(e, 0, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->first_fail = now;
    }
    if (!ok && ++e->fails >= VD_LOCK_FAILS) {
        e->locked_until = now + VD_LOCK_SECONDS;
        e->fails = 0;
        e->first_fail = now;
    }
    pthread_mutex_unlock(&sc->lock);
}

kv_rv vd_secretcache_new(vd_secretcache **out)
{
    vd_secretcache *sc;

    if (out == NULL)
        return KV_ERR_INVALID_ARG;
    sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return KV_ERR_NOMEM;
    if (RAND_bytes(sc->key, sizeof(sc->key)) != 1 || pthread_mutex_init(&sc->lock, NULL) != 0) {
        free(sc);
        return KV_ERR_INTERNAL;
    }
    *out = sc;
    return KV_OK;
}

void vd_secretcache_free(vd_secretcache *sc)
{
    if (sc == NULL)
        return;
    pthread_mutex_destroy(&sc->lock);
    OPENSSL_cleanse(sc, sizeof(*sc));
    free(sc);
}

static kv_rv vd_hash_secret(const char *secret, const uint8_t salt[VD_SALT_LEN], int iterations,
                            uint8_t hash[VD_HASH_LEN])
{
    if (PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, VD_SALT_LEN, iterations, EVP_sha256(),
                          VD_HASH_LEN, hash) != 1)
        return KV_ERR_INTERNAL;
    return KV_OK;
}

kv_rv vd_identity_hash_secret(vd_principal *p, const char *secret)
{
    if (p == NULL || secret == NULL || secret[0] == '\0' || strlen(secret) >= VD_SECRET_MAX)
        return KV_ERR_INVALID_ARG;
    if (RAND_bytes(p->salt, VD_SALT_LEN) != 1)
        return KV_ERR_INTERNAL;
    p->iterations = VD_PBKDF2_ITERATIONS;
    return vd_hash_secret(secret, p->salt, p->iterations, p->hash);
}

kv_rv vd_identity_new_secret(vd_principal *p, char secret[VD_SECRET_MAX])
{
    uint8_t raw[30];
    char *s = NULL;
    kv_rv rv = KV_ERR_INTERNAL;

    if (p == NULL || secret == NULL)
        return KV_ERR_INVALID_ARG;
    if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(p->salt, VD_SALT_LEN) != 1)
        goto done;
    s = kv_b64url_encode(raw, sizeof(raw));
    if (s == NULL)
        goto done;
    snprintf(secret, VD_SECRET_MAX, "%s", s);
    p->iterations = VD_PBKDF2_ITERATIONS;
    rv = vd_hash_secret(secret, p->salt, p->iterations, p->hash);
done:
    OPENSSL_cleanse(raw, sizeof(raw));
    if (s != NULL)
        vd_free_secret(s, strlen(s));
    return rv;
}

static void vd_sc_mac(vd_secretcache *sc, const vd_principal *p, const char *secret,
                      uint8_t mac[32])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_utf8_string("digest", "SHA256", 0), OSSL_PARAM_END};
    size_t outl = 0;

    memset(mac, 0, 32);
    if (mc != NULL && EVP_MAC_init(mc, sc->key, sizeof(sc->key), params) == 1 &&
        EVP_MAC_update(mc, p->salt, VD_SALT_LEN) == 1 &&
        EVP_MAC_update(mc, p->hash, VD_HASH_LEN) == 1 &&
        EVP_MAC_update(mc, (const uint8_t *)secret, strlen(secret)) == 1)
        EVP_MAC_final(mc, mac, &outl, 32);
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(m);
}

static bool vd_secret_form_ok(const char *secret)
{
    return secret != NULL && secret[0] != '\0' && strlen(secret) < VD_SECRET_MAX;
}

/* Whether secret is in the verified-secret cache for p (a fast HMAC, no PBKDF2). */
static bool vd_secret_cached(vd_ctx *ctx, const vd_principal *p, const char *secret)
{
    vd_secretcache *sc = ctx ? ctx->secretcache : NULL;
    uint8_t mac[32];
    bool hit = false;
    size_t i;

    if (sc == NULL || p == NULL || !vd_secret_form_ok(secret))
        return false;
    vd_sc_mac(sc, p, secret, mac);
    pthread_mutex_lock(&sc->lock);
    for (i = 0; i < VD_SC_SLOTS; i++)
        if (sc->e[i].used && strcmp(sc->e[i].client_id, p->client_id) == 0 &&
            CRYPTO_memcmp(sc->e[i].mac, mac, 32) == 0)
            hit = true;
    pthread_mutex_unlock(&sc->lock);
    OPENSSL_cleanse(mac, sizeof(mac));
    return hit;
}

/* The PBKDF2 check (about 50 ms; thread-safe: token requests run it on the work pool); a
 * verified secret enters the cache. */
static bool vd_secret_verify(vd_ctx *ctx, const vd_principal *p, const char *secret)
{
    vd_secretcache *sc = ctx ? ctx->secretcache : NULL;
    uint8_t hash[VD_HASH_LEN], mac[32];
    bool ok = false;
    size_t i;

    if (p == NULL || !vd_secret_form_ok(secret))
        return false;
    if (p->iterations > 0 && vd_hash_secret(secret, p->salt, p->iterations, hash) == KV_OK)
        ok = CRYPTO_memcmp(hash, p->hash, VD_HASH_LEN) == 0;
    if (ok && sc != NULL) {
        vd_sc_mac(sc, p, secret, mac);
        pthread_mutex_lock(&sc->lock);
        for (i = 0; i < VD_SC_SLOTS; i++)
            if (sc->e[i].used && strcmp(sc->e[i].client_id, p->client_id) == 0)
                break;
        if (i == VD_SC_SLOTS)
            i = sc->next++ % VD_SC_SLOTS;
        snprintf(sc->e[i].client_id, sizeof(sc->e[i].client_id), "%s", p->client_id);
        memcpy(sc->e[i].mac, mac, 32);
        sc->e[i].used = true;
        pthread_mutex_unlock(&sc->lock);
    }
    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

bool vd_identity_check_secret(vd_ctx *ctx, const vd_principal *p, const char *secret)
{
    return vd_secret_cached(ctx, p, secret) || vd_secret_verify(ctx, p, secret);
}

kv_rv vd_identity_key_id(const EVP_PKEY *pkey, char out[VD_ID_MAX])
{
    uint8_t *der = NULL, md[32];
    char *s;
    int len;

    if (pkey == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    len = i2d_PUBKEY(pkey, &der);
    if (len <= 0)
        return KV_ERR_INTERNAL;
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    s = kv_b64url_encode(md, 18);
    if (s == NULL)
        return KV_ERR_NOMEM;
    snprintf(out, VD_ID_MAX, "%s", s);
    free(s);
    return KV_OK;
}

/* ---- JWT ---- */

static char *vd_b64url_json(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    char *out;

    if (text == NULL)
        return NULL;
    out = kv_b64url_encode((const uint8_t *)text, strlen(text));
    free(text);
    return out;
}

/* Issues an app token (user == NULL: oid = sub = appid = azp = client_id, idtyp app) or a
 * user token (oid = sub = the user's object id, upn, name, azp = the client application,
 * idtyp user, scp; no appid). */
static kv_rv vd_issue(vd_ctx *ctx, const char *tenant_id, const char *client_id,
                      const vd_token_user *user, const char *resource, long lifetime, char **token)
{
    json_t *hdr = NULL, *claims = NULL;
    char *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL;
    char iss[512], jti[37];
    EVP_MD_CTX *md = NULL;
    EVP_PKEY *key = NULL;
    char kid[VD_ID_MAX];
    uint8_t der[80], raw[64];
    size_t derlen = sizeof(der), rawlen = sizeof(raw), inlen;
    long long now = vd_now();
    kv_rv rv = KV_ERR_INTERNAL;

    if (ctx == NULL || tenant_id == NULL || client_id == NULL || resource == NULL || token == NULL)
        return KV_ERR_INVALID_ARG;
    if (vd_guid(jti) != KV_OK || vd_tokenkeys_current(ctx, &key, kid) != KV_OK)
        return KV_ERR_INTERNAL;
    snprintf(iss, sizeof(iss), "%s/%s/v2.0", ctx->authority, tenant_id);
    hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
    claims = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "aud",
                       resource, "iss", iss, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                       (json_int_t)(now + lifetime), "tid", tenant_id, "oid", client_id, "sub",
                       client_id, "azp", user ? user->azp : client_id, "idtyp",
                       user ? "user" : "app", "ver", "2.0", "jti", jti);
    if (claims != NULL && user == NULL)
        json_object_set_new(claims, "appid", json_string(client_id));
    if (claims != NULL && user != NULL) {
        json_object_set_new(claims, "upn", json_string(user->upn));
        json_object_set_new(claims, "unique_name", json_string(user->upn));
        json_object_set_new(claims, "name", json_string(user->name));
        json_object_set_new(claims, "scp", json_string("user_impersonation"));
    }
    if (hdr == NULL || claims == NULL)
        goto done;
    h64 = vd_b64url_json(hdr);
    c64 = vd_b64url_json(claims);
    if (h64 == NULL || c64 == NULL)
        goto done;
    inlen = strlen(h64) + 1 + strlen(c64);
    input = malloc(inlen + 1);
    if (input == NULL)
        goto done;
    snprintf(input, inlen + 1, "%s.%s", h64, c64);
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(md, der, &derlen, (const uint8_t *)input, inlen) != 1)
        goto done;
    if (kv_ecdsa_der_to_raw(der, derlen, 32, raw, &rawlen) != KV_OK)
        goto done;
    s64 = kv_b64url_encode(raw, rawlen);
    if (s64 == NULL)
        goto done;
    *token = malloc(inlen + 1 + strlen(s64) + 1);
    if (*token == NULL)
        goto done;
    sprintf(*token, "%s.%s", input, s64);
    rv = KV_OK;
done:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    json_decref(hdr);
    json_decref(claims);
    free(h64);
    free(c64);
    free(s64);
    free(input);
    return rv;
}

kv_rv vd_identity_issue(vd_ctx *ctx, const char *tenant_id, const char *client_id,
                        const char *resource, long lifetime, char **token)
{
    return vd_issue(ctx, tenant_id, client_id, NULL, resource, lifetime, token);
}

kv_rv vd_identity_issue_user(vd_ctx *ctx, const char *tenant_id, const char *oid,
                             const vd_token_user *user, const char *resource, long lifetime,
                             char **token)
{
    if (user == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_issue(ctx, tenant_id, oid, user, resource, lifetime, token);
}

/* Decodes one base64url JWT part, rejecting anything but the canonical unpadded encoding. */
kv_rv vd_jwt_part(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
    char *copy = strndup(s, len), *again = NULL;
    size_t i;
    kv_rv rv = KV_ERR_INVALID_ARG;

    *out = NULL;
    if (copy == NULL)
        return KV_ERR_NOMEM;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)copy[i]) && copy[i] != '-' && copy[i] != '_')
            goto done;
    if (kv_b64_decode(copy, out, outlen) != KV_OK)
        goto done;
    again = kv_b64url_encode(*out, *outlen);
    if (again == NULL || strcmp(again, copy) != 0)
        goto done;
    rv = KV_OK;
done:
    if (rv != KV_OK) {
        free(*out);
        *out = NULL;
    }
    free(copy);
    free(again);
    return rv;
}

json_t *vd_jwt_json(const char *s, size_t len)
{
    uint8_t *raw = NULL;
    size_t rawlen;
    json_t *j = NULL;

    if (vd_jwt_part(s, len, &raw, &rawlen) == KV_OK) {
        j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
        if (j != NULL && !json_is_object(j)) {
            json_decref(j);
            j = NULL;
        }
    }
    free(raw);
    return j;
}

/* Verifies format, algorithm, signature and lifetime; *claims receives the payload. */
static kv_rv vd_jwt_verify(vd_ctx *ctx, const char *jwt, json_t **claims, char *why, size_t whylen)
{
    const char *d1, *d2;
    json_t *hdr = NULL, *payload = NULL, *exp, *nbf;
    uint8_t *sig = NULL, der[80];
    size_t siglen = 0, derlen = sizeof(der);
    EVP_MD_CTX *md = NULL;
    EVP_PKEY *key = NULL;
    const char *kid;
    long long now = vd_now();
    kv_rv rv = KV_ERR_AUTH;

    *claims = NULL;
    d1 = strchr(jwt, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (strlen(jwt) > VD_JWT_MAX || d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL) {
        snprintf(why, whylen, "Invalid token: malformed JWT.");
        goto done;
    }
    hdr = vd_jwt_json(jwt, (size_t)(d1 - jwt));
    if (hdr == NULL) {
        snprintf(why, whylen, "Invalid token: malformed JWT header.");
        goto done;
    }
    if (!json_is_string(json_object_get(hdr, "alg")) ||
        strcmp(json_string_value(json_object_get(hdr, "alg")), "ES256") != 0) {
        snprintf(why, whylen, "Invalid token: unsupported signing algorithm.");
        goto done;
    }
    if (json_object_get(hdr, "crit") != NULL) { /* RFC 7515 4.1.11 */
        snprintf(why, whylen, "Invalid token: unsupported critical header parameters.");
        goto done;
    }
    kid = json_string_value(json_object_get(hdr, "kid"));
    if (kid == NULL || vd_tokenkeys_find(ctx, kid, &key) != KV_OK) {
        snprintf(why, whylen, "Invalid signature: the token is not signed by a current key.");
        goto done;
    }
    if (vd_jwt_part(d2 + 1, strlen(d2 + 1), &sig, &siglen) != KV_OK || siglen != 64 ||
        kv_ecdsa_raw_to_der(sig, siglen, der, &derlen) != KV_OK) {
        snprintf(why, whylen, "Invalid signature.");
        goto done;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestVerify(md, der, derlen, (const uint8_t *)jwt, (size_t)(d2 - jwt)) != 1) {
        snprintf(why, whylen, "Invalid signature.");
        goto done;
    }
    payload = vd_jwt_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (payload == NULL) {
        snprintf(why, whylen, "Invalid token: malformed JWT payload.");
        goto done;
    }
    exp = json_object_get(payload, "exp");
    nbf = json_object_get(payload, "nbf");
    if (!json_is_integer(exp) || json_integer_value(exp) <= now) {
        snprintf(why, whylen, "Token expired.");
        goto done;
    }
    if (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > now + VD_NBF_SKEW)) {
        snprintf(why, whylen, "Token not yet valid.");
        goto done;
    }
    *claims = payload;
    payload = NULL;
    rv = KV_OK;
done:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    json_decref(hdr);
    json_decref(payload);
    free(sig);
    return rv;
}

static const char *vd_claim(const json_t *claims, const char *name)
{
    const json_t *v = json_object_get(claims, name);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Compares URLs ignoring one trailing slash on either side. */
static bool vd_same_resource(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '/')
        la--;
    if (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

kv_rv vd_identity_authenticate(vd_req *r, const vd_vault *v, char principal_out[VD_ID_MAX],
                               char *why, size_t whylen)
{
    const char *auth = vd_req_header(r, "Authorization");
    const char *aud, *tid, *iss, *oid;
    json_t *claims = NULL;
    vd_principal p;
    char want_iss[512];
    kv_rv rv = KV_ERR_AUTH;

    why[0] = '\0';
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return KV_ERR_AUTH; /* no token: plain challenge */
    auth += 7;
    while (*auth == ' ')
        auth++;
    if (*auth == '\0')
        return KV_ERR_AUTH;
    rv = vd_jwt_verify(r->ctx, auth, &claims, why, whylen);
    if (rv != KV_OK)
        goto done;
    rv = KV_ERR_AUTH;
    aud = vd_claim(claims, "aud");
    tid = vd_claim(claims, "tid");
    iss = vd_claim(claims, "iss");
    oid = vd_claim(claims, "oid"); /* the principal: users carry no appid of their own */
    if (aud == NULL || !vd_same_resource(aud, v->resource)) {
        snprintf(why, whylen, "AKV10022: Invalid audience. Expected %s, found: %.200s.",
                 v->resource, aud ? aud : "(none)");
        goto done;
    }
    snprintf(want_iss, sizeof(want_iss), "%s/%s/v2.0", r->ctx->authority, v->tenant_id);
    if (tid == NULL || strcasecmp(tid, v->tenant_id) != 0 || iss == NULL ||
        strcasecmp(iss, want_iss) != 0) {
        snprintf(why, whylen, "AKV10032: Invalid issuer. Expected one of %s, found %.200s.",
                 want_iss, iss ? iss : "(none)");
        goto done;
    }
    if (oid == NULL || vd_store_get_principal(r->store, v->tenant_id, oid, &p) != KV_OK) {
        snprintf(why, whylen,
                 "AKV10050: The principal of the token does not exist in tenant"
                 " %s.",
                 v->tenant_id);
        goto done;
    }
    snprintf(principal_out, VD_ID_MAX, "%s", p.client_id);
    rv = KV_OK;
done:
    json_decref(claims);
    return rv;
}

/* ---- endpoints ---- */

bool vd_identity_is_identity_path(const vd_req *r)
{
    if (r->nsegs < 2 || r->segs[0][0] == '\0')
        return false;
    return strcmp(r->segs[1], "oauth2") == 0 || strcmp(r->segs[1], "v2.0") == 0 ||
           strcmp(r->segs[1], "discovery") == 0 || strcmp(r->segs[1], ".well-known") == 0;
}

/* Entra-style error: {"error", "error_description", "error_codes", ...}. */
static void vd_entra_error(vd_req *r, int status, const char *error, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void vd_entra_error(vd_req *r, int status, const char *error, int code, const char *fmt, ...)
{
    char msg[600], desc[900], ts[32], uri[400];
    time_t now = time(NULL);
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
    snprintf(desc, sizeof(desc),
             "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n"
             "Timestamp: %s",
             code, msg, r->request_id, r->request_id, ts);
    snprintf(uri, sizeof(uri), "%s/error?code=%d", r->ctx->authority, code);
    vd_add_header(r, "Cache-Control", "no-store, no-cache");
    vd_reply_json(r, status,
                  json_pack("{s:s, s:s, s:[i], s:s, s:s, s:s, s:s}", "error", error,
                            "error_description", desc, "error_codes", code, "timestamp", ts,
                            "trace_id", r->request_id, "correlation_id", r->request_id, "error_uri",
                            uri));
}

static bool vd_tenant_ok(vd_req *r, const char *tenant)
{
    bool exists = false;
    size_t i, len = strlen(tenant);

    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)tenant[i]) && tenant[i] != '-' && tenant[i] != '.')
            break;
    if (len == 0 || len >= VD_ID_MAX || i < len) {
        vd_entra_error(r, 400, "invalid_request", 90002, "Tenant not found.");
        return false;
    }
    if (vd_store_tenant_exists(r->store, tenant, &exists) != KV_OK) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        return false;
    }
    if (!exists) {
        vd_entra_error(r, 400, "invalid_request", 90002,
                       "Tenant '%s' not found. Check to make sure you have the correct tenant "
                       "ID and are signing into the correct cloud.",
                       tenant);
        return false;
    }
    return true;
}

/* Resource of a v2 scope ("https://vault.azure.net/.default") or a v1 resource, normalised;
 * NULL if vaultd serves no such resource. */
const char *vd_known_resource(const char *s, bool v2)
{
    static const char *const known[] = {VD_VAULT_RESOURCE, VD_MHSM_RESOURCE,
                                        "https://management.azure.com"};
    char buf[256];
    size_t len, i;

    if (s == NULL || strlen(s) >= sizeof(buf))
        return NULL;
    snprintf(buf, sizeof(buf), "%s", s);
    len = strlen(buf);
    if (v2) {
        if (len < 9 || strcmp(buf + len - 9, "/.default") != 0)
            return NULL;
        len -= 9;
        buf[len] = '\0';
    }
    while (len > 0 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcasecmp(buf, known[i]) == 0)
            return known[i];
    return NULL;
}

/* The client-assertion branch of the token endpoint; false after answering the error. */
static bool vd_token_assertion_ok(vd_req *r, const char *tenant, const vd_principal *p,
                                  const char *secret, const char *atype, const char *assertion)
{
    vd_principal_rec rec;
    char msg[600];
    int code = 0;
    kv_rv rv;

    if (secret != NULL) {
        vd_entra_error(r, 400, "invalid_request", 90023,
                       "Only one of 'client_secret' and 'client_assertion' may be sent.");
        return false;
    }
    if (atype == NULL || assertion == NULL || assertion[0] == '\0') {
        vd_entra_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: '%s'.",
                       atype == NULL ? "client_assertion_type" : "client_assertion");
        return false;
    }
    if (strcmp(atype, VD_ASSERTION_TYPE) != 0) {
        vd_entra_error(r, 400, "invalid_request", 50027, "client_assertion_type must be '%s'.",
                       VD_ASSERTION_TYPE);
        return false;
    }
    rv = vd_store_principal_get_rec(r->store, tenant, p->client_id, &rec);
    if (rv != KV_OK) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        return false;
    }
    rv = vd_identity_check_assertion(r, tenant, &rec, assertion, &code, msg, sizeof(msg));
    vd_principal_rec_clear(&rec);
    if (rv != KV_OK) {
        vd_entra_error(r, 401, "invalid_client", code, "%s", msg);
        return false;
    }
    return true;
}

/* Whether a form parameter occurs more than once (refused: which one counts would be a guess). */
static const char *vd_form_duplicate(const vd_params *form)
{
    size_t i, j;

    for (i = 0; i < form->n; i++)
        for (j = i + 1; j < form->n; j++)
            if (strcmp(form->p[i].name, form->p[j].name) == 0)
                return form->p[i].name;
    return NULL;
}

/* The resource of a v2 scope list ("https://vault.azure.net/.default openid profile ...": the
 * OpenID scopes are ignored) or of a v1 resource. */
static const char *vd_scope_resource(const char *scope, bool v2, bool user)
{
    char buf[1024], *tok, *save = NULL;
    const char *known = NULL;
    size_t len;

    if (scope == NULL || !v2 || !user)
        return vd_known_resource(scope, v2);
    if (strlen(scope) >= sizeof(buf))
        return NULL;
    snprintf(buf, sizeof(buf), "%s", scope);
    for (tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        if (strcmp(tok, "openid") == 0 || strcmp(tok, "profile") == 0 ||
            strcmp(tok, "offline_access") == 0 || strcmp(tok, "email") == 0)
            continue;
        len = strlen(tok);
        if (len > 19 && strcmp(tok + len - 19, "/user_impersonation") == 0)
            snprintf(tok + len - 19, 10, "/.default");
        if (known != NULL || (known = vd_known_resource(tok, true)) == NULL)
            return NULL; /* one resource per token */
    }
    return known;
}

/* The client of a token request: a registered service principal of the tenant (kind sp),
 * else NULL after answering AADSTS700016. */
static bool vd_token_client(vd_req *r, const char *tenant, const char *client_id, vd_principal *p)
{
    vd_principal_rec rec;
    bool ok = false;

    if (strlen(client_id) < VD_ID_MAX &&
        vd_store_get_principal(r->store, tenant, client_id, p) == KV_OK &&
        vd_store_principal_get_rec(r->store, tenant, client_id, &rec) == KV_OK) {
        ok = strcmp(rec.kind, VD_PKIND_SP) == 0; /* users and managed identities are no apps */
        vd_principal_rec_clear(&rec);
    }
    if (!ok)
        vd_entra_error(r, 400, "unauthorized_client", 700016,
                       "Application with identifier '%.64s' was not found in the directory "
                       "'%s'. This can happen if the application has not been installed by the "
                       "administrator of the tenant or consented to by any user in the tenant.",
                       client_id, tenant);
    return ok;
}

/* A token request in progress. The client-secret and password checks (PBKDF2, about 50 ms)
 * run on the work pool unless the verified-secret cache knows the secret, so that a flood of
 * wrong secrets cannot stall the other connections of the event thread; everything else (the
 * store, the lockout, the reply) stays on the request's event thread. A step that needs a
 * check hands the request to vd_tok_check, which continues with the next step. */
typedef struct vd_tok vd_tok;
typedef void (*vd_tok_next)(vd_req *r, vd_tok *t, bool ok);

struct vd_tok {
    vd_ctx *ctx;
    char tenant[VD_ID_MAX];
    bool v2, password;
    vd_params form;
    const char *client_id, *secret, *scope, *resource; /* in form */
    long life;
    vd_principal p, up;   /* the application; the user (password grant) */
    vd_principal_rec rec; /* the user's record (password grant) */
    char *token;
    /* the check in progress */
    const vd_principal *chk_p;
    const char *chk_secret;
    bool chk_ok;
    vd_tok_next next;
};

static void vd_tok_free(vd_tok *t)
{
    if (t == NULL)
        return;
    if (t->token != NULL)
        vd_free_secret(t->token, strlen(t->token));
    vd_params_clear(&t->form);
    vd_principal_rec_clear(&t->rec);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

static kv_rv vd_tok_check_work(void *arg)
{
    vd_tok *t = arg;

    t->chk_ok = vd_secret_verify(t->ctx, t->chk_p, t->chk_secret);
    return KV_OK;
}

static void vd_tok_check_done(vd_req *r, void *arg, kv_rv rv)
{
    vd_tok *t = arg;

    if (rv != KV_OK) { /* cancelled at shutdown */
        vd_entra_error(r, 503, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        vd_tok_free(t);
        return;
    }
    t->next(r, t, t->chk_ok);
}

/* Checks secret against p (cache on this thread, else PBKDF2 on the work pool), then calls
 * next(r, t, ok), which owns t from then on. */
static void vd_tok_check(vd_req *r, vd_tok *t, const vd_principal *p, const char *secret,
                         vd_tok_next next)
{
    if (!vd_secret_form_ok(secret) || p->iterations <= 0) {
        next(r, t, false);
        return;
    }
    if (vd_secret_cached(r->ctx, p, secret)) {
        next(r, t, true);
        return;
    }
    t->chk_p = p;
    t->chk_secret = secret;
    t->next = next;
    vd_req_defer(r, vd_tok_check_work, vd_tok_check_done, t); /* continues; owns t */
}

/* The 200 token reply (then frees t). */
static void vd_tok_reply(vd_req *r, vd_tok *t)
{
    char num[32], nbf[32];
    long long now = vd_now();
    json_t *resp;

    resp =
        json_pack("{s:s, s:I, s:I, s:s}", "token_type", "Bearer", "expires_in", (json_int_t)t->life,
                  "ext_expires_in", (json_int_t)t->life, "access_token", t->token);
    if (resp != NULL && t->v2 && t->password) {
        json_object_set_new(resp, "scope",
                            json_pack("s++", t->resource, "/", "user_impersonation"));
    }
    if (resp != NULL && !t->v2) {
        snprintf(num, sizeof(num), "%lld", now + t->life);
        snprintf(nbf, sizeof(nbf), "%lld", now);
        json_object_set_new(resp, "expires_on", json_string(num));
        json_object_set_new(resp, "not_before", json_string(nbf));
        json_object_set_new(resp, "resource", json_string(t->resource));
    }
    vd_add_header(r, "Cache-Control", "no-store, no-cache");
    vd_add_header(r, "Pragma", "no-cache");
    vd_reply_json(r, 200, resp);
    vd_tok_free(t);
}

/* grant_type=password (resource-owner password credentials): the user's token. client_id: the
 * Azure CLI's public client id or a registered application (whose secret, when sent, must be
 * right). Steps: vd_token_password -> [app secret] -> vd_tok_pw_user -> [password] ->
 * vd_tok_pw_signed_in. */
static void vd_tok_pw_signed_in(vd_req *r, vd_tok *t, bool ok)
{
    vd_token_user tu;

    if (!ok) {
        vd_user_signin(r->ctx, t->rec.client_id, false);
        vd_entra_error(r, 400, "invalid_grant", 50126,
                       "Error validating credentials due to invalid username or password.");
        goto done;
    }
    vd_user_signin(r->ctx, t->rec.client_id, true);
    tu.upn = t->rec.upn;
    tu.name = t->rec.display_name;
    tu.azp =
        strcasecmp(t->client_id, VD_AZURE_CLI_APP_ID) == 0 ? VD_AZURE_CLI_APP_ID : t->p.client_id;
    if (vd_identity_issue_user(r->ctx, t->tenant, t->rec.client_id, &tu, t->resource, t->life,
                               &t->token) != KV_OK) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        goto done;
    }
    snprintf(r->principal, VD_ID_MAX, "%s", t->rec.client_id);
    vd_tok_reply(r, t);
    return;
done:
    vd_tok_free(t);
}

static void vd_tok_pw_user(vd_req *r, vd_tok *t, bool app_ok)
{
    const char *user = vd_params_get(&t->form, "username"),
               *pw = vd_params_get(&t->form, "password");
    kv_rv rv;

    if (!app_ok) {
        vd_entra_error(r, 401, "invalid_client", 7000215,
                       "Invalid client secret provided for app '%s'.", t->p.client_id);
        goto done;
    }
    if (t->resource == NULL) {
        vd_entra_error(r, 400, "invalid_scope", 70011,
                       "The provided request must include a valid 'scope' (v2) or 'resource' "
                       "(v1) naming https://vault.azure.net, https://managedhsm.azure.net or "
                       "https://management.azure.com.");
        goto done;
    }
    rv = strlen(user) < sizeof(t->rec.upn) ? vd_store_user_get(r->store, t->tenant, user, &t->rec)
                                           : KV_ERR_NOT_FOUND;
    if (rv == KV_OK && strchr(user, '@') == NULL) /* sign-in is by userPrincipalName */
        rv = KV_ERR_NOT_FOUND;
    if (rv == KV_OK)
        rv = vd_store_get_principal(r->store, t->tenant, t->rec.client_id, &t->up);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_entra_error(r, 400, "invalid_grant", 50034,
                       "The user account {EUII Hidden} does not exist in the %s directory. To "
                       "sign into this application, the account must be added to the directory.",
                       t->tenant);
        goto done;
    }
    if (rv != KV_OK) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        goto done;
    }
    if (vd_user_locked(r->ctx, t->rec.client_id)) { /* before the slow hash: no oracle, no CPU */
        vd_entra_error(r, 400, "invalid_grant", 50053,
                       "Your account is locked because you've tried to sign in too many times "
                       "with an incorrect user ID or password. Try again in %d seconds.",
                       VD_LOCK_SECONDS);
        goto done;
    }
    vd_tok_check(r, t, &t->up, pw, vd_tok_pw_signed_in);
    return;
done:
    vd_tok_free(t);
}

static void vd_token_password(vd_req *r, vd_tok *t)
{
    const char *user = vd_params_get(&t->form, "username"),
               *pw = vd_params_get(&t->form, "password");

    if (user == NULL || user[0] == '\0' || pw == NULL || pw[0] == '\0') {
        vd_entra_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: '%s'.",
                       user == NULL || user[0] == '\0' ? "username" : "password");
        goto done;
    }
    if (strcasecmp(t->client_id, VD_AZURE_CLI_APP_ID) != 0) {
        if (!vd_token_client(r, t->tenant, t->client_id, &t->p))
            goto done;
        if (t->secret != NULL) {
            vd_tok_check(r, t, &t->p, t->secret, vd_tok_pw_user);
            return;
        }
    }
    vd_tok_pw_user(r, t, true);
    return;
done:
    vd_tok_free(t);
}

/* client_credentials after the secret check (or a valid assertion): the app token. */
static void vd_tok_client_checked(vd_req *r, vd_tok *t, bool ok)
{
    if (!ok) {
        vd_entra_error(r, 401, "invalid_client", 7000215,
                       "Invalid client secret provided. Ensure the secret being sent in the "
                       "request is the client secret value, not the client secret ID, for a "
                       "secret added to app '%s'.",
                       t->p.client_id);
        goto done;
    }
    if (t->resource == NULL) {
        if (t->v2)
            vd_entra_error(r, 400, "invalid_scope", 1002012,
                           "The provided value for scope %.200s is not valid. Client credential "
                           "flows must have a scope value with /.default suffixed to the "
                           "resource identifier (application ID URI).",
                           t->scope ? t->scope : "(none)");
        else
            vd_entra_error(r, 400, "invalid_resource", 500011,
                           "The resource principal named %.200s was not found in the tenant "
                           "named %s.",
                           t->scope ? t->scope : "(none)", t->tenant);
        goto done;
    }
    snprintf(r->principal, sizeof(r->principal), "%s", t->p.client_id); /* for the audit */
    if (vd_identity_issue(r->ctx, t->tenant, t->p.client_id, t->resource, t->life, &t->token) !=
        KV_OK) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        goto done;
    }
    vd_tok_reply(r, t);
    return;
done:
    vd_tok_free(t);
}

static void vd_token_endpoint(vd_req *r, const char *tenant, bool v2)
{
    vd_tok *t = calloc(1, sizeof(*t));
    const char *grant, *atype, *assertion, *dup;

    if (t == NULL) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        return;
    }
    t->ctx = r->ctx;
    t->v2 = v2;
    t->life = r->ctx->cfg.token_lifetime;
    if (strcmp(r->method, "POST") != 0) {
        vd_entra_error(r, 405, "invalid_request", 900561,
                       "The endpoint only accepts POST requests.");
        goto done;
    }
    if (!vd_tenant_ok(r, tenant))
        goto done;
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    if (vd_params_parse(&t->form, r->body, r->body_len) != KV_OK) {
        vd_entra_error(r, 400, "invalid_request", 900144, "The request body is malformed.");
        goto done;
    }
    if ((dup = vd_form_duplicate(&t->form)) != NULL) {
        vd_entra_error(r, 400, "invalid_request", 90015,
                       "The request body contains the parameter '%.40s' more than once.", dup);
        goto done;
    }
    grant = vd_params_get(&t->form, "grant_type");
    t->client_id = vd_params_get(&t->form, "client_id");
    t->secret = vd_params_get(&t->form, "client_secret");
    t->scope = vd_params_get(&t->form, v2 ? "scope" : "resource");
    if (grant == NULL) {
        vd_entra_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'grant_type'.");
        goto done;
    }
    t->password = strcmp(grant, "password") == 0;
    if (strcmp(grant, "client_credentials") != 0 && !t->password) {
        vd_entra_error(r, 400, "unsupported_grant_type", 70003,
                       "The app requested an unsupported grant type.");
        goto done;
    }
    if (t->client_id == NULL || t->client_id[0] == '\0') {
        vd_entra_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'client_id'.");
        goto done;
    }
    t->resource = vd_scope_resource(t->scope, v2, t->password);
    if (t->password) {
        vd_token_password(r, t); /* answers; owns t */
        return;
    }
    if (!vd_token_client(r, tenant, t->client_id, &t->p))
        goto done;
    atype = vd_params_get(&t->form, "client_assertion_type");
    assertion = vd_params_get(&t->form, "client_assertion");
    if (atype != NULL || assertion != NULL) {
        if (!vd_token_assertion_ok(r, tenant, &t->p, t->secret, atype, assertion))
            goto done;
        vd_tok_client_checked(r, t, true);
        return;
    }
    if (t->secret == NULL || t->secret[0] == '\0') {
        vd_entra_error(r, 401, "invalid_client", 7000218,
                       "The request body must contain the following parameter: "
                       "'client_assertion' or 'client_secret'.");
        goto done;
    }
    vd_tok_check(r, t, &t->p, t->secret, vd_tok_client_checked); /* answers; owns t */
    return;
done:
    vd_tok_free(t);
}

/* The authority clients reached us by (scheme + Host, when that names this instance), else the
 * configured one. */
static void vd_request_authority(const vd_req *r, char *out, size_t outlen)
{
    if (vd_identity_host_is_ours(r))
        snprintf(out, outlen, "https://%s", r->host);
    else
        snprintf(out, outlen, "%s", r->ctx->authority);
}

static void vd_openid_configuration(vd_req *r, const char *tenant)
{
    char a[340], iss[512], tok[512], authz[512], jwks[512], logout[512], dev[512];
    json_t *doc;

    if (!vd_tenant_ok(r, tenant))
        return;
    vd_request_authority(r, a, sizeof(a));
    snprintf(iss, sizeof(iss), "%s/%s/v2.0", r->ctx->authority, tenant);
    snprintf(tok, sizeof(tok), "%s/%s/oauth2/v2.0/token", a, tenant);
    snprintf(authz, sizeof(authz), "%s/%s/oauth2/v2.0/authorize", a, tenant);
    snprintf(jwks, sizeof(jwks), "%s/%s/discovery/v2.0/keys", a, tenant);
    snprintf(logout, sizeof(logout), "%s/%s/oauth2/v2.0/logout", a, tenant);
    snprintf(dev, sizeof(dev), "%s/%s/oauth2/v2.0/devicecode", a, tenant);
    doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s,s], s:[s], s:[s], s:[s], s:[s,s], "
                  "s:b, s:s, s:s, s:s, s:s}",
                  "issuer", iss, "token_endpoint", tok, "authorization_endpoint", authz, "jwks_uri",
                  jwks, "end_session_endpoint", logout, "device_authorization_endpoint", dev,
                  "token_endpoint_auth_methods_supported", "client_secret_post", "private_key_jwt",
                  "response_types_supported", "token", "subject_types_supported", "pairwise",
                  "id_token_signing_alg_values_supported", "ES256", "scopes_supported", "openid",
                  "offline_access", "request_uri_parameter_supported", 0, "tenant_region_scope",
                  "local", "cloud_instance_name", "localhost", "cloud_graph_host_name", "localhost",
                  "msgraph_host", "localhost");
    if (doc != NULL)
        json_object_set_new(doc, "token_endpoint_auth_signing_alg_values_supported",
                            json_pack("[s,s,s]", "RS256", "PS256", "ES256"));
    vd_reply_json(r, 200, doc);
}

static void vd_jwks(vd_req *r, const char *tenant)
{
    json_t *jwks;

    if (!vd_tenant_ok(r, tenant))
        return;
    jwks = vd_tokenkeys_jwks(r->ctx);
    if (jwks == NULL) {
        vd_entra_error(r, 500, "temporarily_unavailable", 90033,
                       "A transient error has occurred. Please try again.");
        return;
    }
    vd_reply_json(r, 200, jwks);
}

void vd_identity_handle(vd_req *r)
{
    const char *tenant = r->segs[0];
    size_t n = r->nsegs;

#define SEG(i, s) (n > (i) && strcmp(r->segs[i], (s)) == 0)
    if (n == 4 && SEG(1, "oauth2") && SEG(2, "v2.0") && SEG(3, "token"))
        vd_token_endpoint(r, tenant, true);
    else if (n == 3 && SEG(1, "oauth2") && SEG(2, "token"))
        vd_token_endpoint(r, tenant, false);
    else if (strcmp(r->method, "GET") != 0)
        vd_entra_error(r, 405, "invalid_request", 900561, "The endpoint only accepts GET.");
    else if ((n == 4 && SEG(1, "v2.0") && SEG(2, ".well-known") &&
              SEG(3, "openid-configuration")) ||
             (n == 3 && SEG(1, ".well-known") && SEG(2, "openid-configuration")))
        vd_openid_configuration(r, tenant);
    else if ((n == 4 && SEG(1, "discovery") && SEG(2, "v2.0") && SEG(3, "keys")) ||
             (n == 3 && SEG(1, "discovery") && SEG(2, "keys")))
        vd_jwks(r, tenant);
    else
        vd_entra_error(r, 404, "invalid_request", 90019, "The requested endpoint is unknown.");
#undef SEG
}
