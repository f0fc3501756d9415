/* kv_token_int.h - internals shared by the token sources (kv_token*.c) and their unit tests:
 * the resolved credential (configuration + environment), the client assertion, managed
 * identity and static token helpers. Not part of the vaultclient API. */
#ifndef KV_TOKEN_INT_H
#define KV_TOKEN_INT_H

#include <sys/types.h>

#include <openssl/types.h>

#include "kv_config.h"
#include "kv_http.h"
#include "kv_status.h"

#define KV_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define KV_DEFAULT_IMDS "http://169.254.169.254/metadata/identity/oauth2/token"

typedef enum {
    KV_CRED_NONE = 0,
    KV_CRED_SECRET,    /* client credentials flow with client_secret */
    KV_CRED_CERT,      /* client credentials flow with a certificate's client assertion */
    KV_CRED_MI_APPSVC, /* managed identity, App Service style (X-IDENTITY-HEADER) */
    KV_CRED_MI_IMDS,   /* managed identity, IMDS style (Metadata: true) */
    KV_CRED_STATIC,    /* a bearer token read from a file */
} kv_cred_kind;

/* One vault's credential after configuration and environment were merged. */
typedef struct kv_cred {
    kv_cred_kind kind;
    int from_env;     /* the method was chosen by the environment (for messages) */
    char *tenant;     /* NULL: learned from the vault's 401 challenge */
    char *client_id;  /* app id; managed identity: user-assigned identity or NULL */
    char *secret;     /* client secret (zeroised) */
    int sealed;       /* KV_CRED_SECRET from client_secret_sealed: secret stays NULL here */
    char *cert_path;  /* PEM with certificate(s) and private key */
    int send_chain;   /* x5c in the assertion */
    int rs256;        /* RS256 + x5t instead of PS256 + x5t#S256 (RSA keys) */
    char *authority;  /* scheme://host[:port], no trailing slash */
    char *mi_url;     /* managed identity endpoint, no query */
    char *mi_header;  /* App Service X-IDENTITY-HEADER value (zeroised) */
    char *token_file; /* static token */
} kv_cred;

/* getenv replacement for tests; NULL means getenv. */
typedef const char *(*kv_getenv_fn)(const char *name);

/* Merges vc and the environment (see docs/configuration.md, "Precedence"). */
kv_rv kv_cred_resolve(const kv_vault_conf *vc, kv_getenv_fn env, kv_cred *out, kv_err *err);
void kv_cred_clear(kv_cred *c);
const char *kv_cred_kind_name(kv_cred_kind k);

/* true for https://..., and for http:// only to a loopback or link-local host. */
int kv_identity_url_ok(const char *url);

/* ---- client certificate (kv_token_cert.c) ---- */

typedef struct kv_cert_cred {
    EVP_PKEY *key;              /* private key, in the transport's library context */
    unsigned char x5t[20];      /* SHA-1 of the leaf certificate DER */
    unsigned char x5t_s256[32]; /* SHA-256 of the leaf certificate DER */
    char **x5c;                 /* standard base64 DER: leaf first, then the chain */
    size_t nx5c;
    dev_t dev; /* identity of the file loaded, to notice a replacement */
    ino_t ino;
    long long mtime_ns;
    off_t size;
} kv_cert_cred;

/* Loads (or, if the file changed, reloads) the PEM at path into c. */
kv_rv kv_cert_load(const char *path, OSSL_LIB_CTX *libctx, kv_cert_cred *c, kv_err *err);
void kv_cert_clear(kv_cert_cred *c);

/* The client assertion JWT: header {alg, typ, x5t#S256 | x5t [, x5c]}, claims aud, iss = sub
 * = client_id, jti, nbf = iat = now, exp = now + 600. *jwt is malloc'd (kv_free_secret). */
kv_rv kv_assertion_make(const kv_cert_cred *c, OSSL_LIB_CTX *libctx, const char *client_id,
                        const char *aud, int rs256, int send_chain, long long now, char **jwt,
                        kv_err *err);

/* ---- Entra client credentials flow (kv_token_entra.c) ---- */

/* POSTs to {authority}/{tenant}/oauth2/v2.0/token. cert is used for KV_CRED_CERT. */
kv_rv kv_entra_fetch(kv_http *http, const kv_cred *c, kv_cert_cred *cert, const char *tenant,
                     const char *resource, const char *ca_file, char **token, long long *expires_on,
                     kv_err *err);

/* ---- managed identity (kv_token_mi.c) ---- */

kv_rv kv_mi_fetch(kv_http *http, const kv_cred *c, const char *resource, const char *ca_file,
                  char **token, long long *expires_on, kv_err *err);

/* expires_on as sent by identity endpoints: epoch seconds (number or string) or ISO-8601
 * ("2026-01-01T10:00:00Z", "+01:00" offsets, fractions, space for T). */
kv_rv kv_parse_expires_on(const char *s, long long *out);

/* ---- static token (kv_token_static.c) ---- */

/* Reads the token file; *expires_on from the JWT's exp claim, else 0 (unknown). */
kv_rv kv_static_read(const char *path, char **token, long long *expires_on, kv_err *err);

/* exp claim of a JWT (not verified), 0 if none. */
long long kv_jwt_exp_unverified(const char *jwt);

#endif
