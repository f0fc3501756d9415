/* vd_dev.c - creates or reuses vaultd's state directory: dev CA and server certificate
 * (P-256), token-signing key, KEK, SQLite database with the dev tenant / vault / service
 * principal, and the client.conf that kvault clients read. */
#include "vd_dev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "vd_hsm.h"
#include "vd_hsm_keys.h"
#include "vd_identity.h"
#include "vd_store.h"
#include "vd_util.h"

#define VD_ROLE_KV_ADMIN "00482a5a-887f-4fb3-b363-3b7fe8e74483" /* Key Vault Administrator */
#define VD_DEV_VAULT "dev"

static void vd_path(const vd_ctx *ctx, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", ctx->cfg.state_dir, name);
}

static bool vd_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- PEM files ---- */

static kv_rv vd_write_bio(BIO *bio, const char *path, mode_t mode)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);

    if (len <= 0)
        return KV_ERR_INTERNAL;
    return vd_write_file(path, data, (size_t)len, mode);
}

static kv_rv vd_write_key(const char *path, EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    kv_rv rv = KV_ERR_INTERNAL;

    if (bio != NULL && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1)
        rv = vd_write_bio(bio, path, 0600);
    BIO_free(bio);
    return rv;
}

static kv_rv vd_write_cert(const char *path, X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    kv_rv rv = KV_ERR_INTERNAL;

    if (bio != NULL && PEM_write_bio_X509(bio, cert) == 1)
        rv = vd_write_bio(bio, path, 0644);
    BIO_free(bio);
    return rv;
}

static EVP_PKEY *vd_load_key(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    if (pkey == NULL)
        fprintf(stderr, "vaultd: cannot read private key %s\n", path);
    return pkey;
}

static X509 *vd_load_cert(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    if (cert == NULL)
        fprintf(stderr, "vaultd: cannot read certificate %s\n", path);
    return cert;
}

/* ---- certificates ---- */

static int vd_add_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok;

    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for pkey named cn, signed by issuer/issuer_key (NULL: self-signed CA). */
static X509 *vd_make_cert(const char *cn, EVP_PKEY *pkey, X509 *issuer, EVP_PKEY *issuer_key,
                          long days)
{
    X509 *cert = X509_new();
    X509_NAME *name = NULL;
    X509V3_CTX v3;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    bool ca = issuer == NULL;
    int ok = 0;

    if (cert == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        goto done;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    name = X509_NAME_new();
    if (bn == NULL || name == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400L) == NULL ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const uint8_t *)"kvault dev", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)cn, -1, -1, 0) != 1 ||
        X509_set_subject_name(cert, name) != 1 ||
        X509_set_issuer_name(cert, ca ? name : X509_get_subject_name(issuer)) != 1 ||
        X509_set_pubkey(cert, pkey) != 1)
        goto done;
    X509V3_set_ctx(&v3, ca ? cert : issuer, cert, NULL, NULL, 0);
    if (!vd_add_ext(cert, &v3, NID_subject_key_identifier, "hash") ||
        !vd_add_ext(cert, &v3, NID_authority_key_identifier, "keyid:always"))
        goto done;
    if (ca) {
        if (!vd_add_ext(cert, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
            !vd_add_ext(cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign"))
            goto done;
    } else {
        if (!vd_add_ext(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
            !vd_add_ext(cert, &v3, NID_key_usage, "critical,digitalSignature") ||
            !vd_add_ext(cert, &v3, NID_ext_key_usage, "serverAuth") ||
            !vd_add_ext(cert, &v3, NID_subject_alt_name,
                        "DNS:localhost,DNS:*.vault.localhost,DNS:*.managedhsm.localhost,"
                        "IP:127.0.0.1,IP:::1"))
            goto done;
    }
    if (X509_sign(cert, ca ? pkey : issuer_key, EVP_sha256()) <= 0)
        goto done;
    ok = 1;
done:
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static EVP_PKEY *vd_new_p256(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* CA and server certificate: created when missing (dev), else left as they are. */
static kv_rv vd_ensure_certs(vd_ctx *ctx)
{
    char ca_pem[PATH_MAX + 16], ca_key[PATH_MAX + 16], srv_pem[PATH_MAX + 16],
        srv_key[PATH_MAX + 16];
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *cacert = NULL, *cert = NULL;
    kv_rv rv = KV_ERR_INTERNAL;

    vd_path(ctx, "ca.pem", ca_pem, sizeof(ca_pem));
    vd_path(ctx, "ca.key", ca_key, sizeof(ca_key));
    vd_path(ctx, "server.pem", srv_pem, sizeof(srv_pem));
    vd_path(ctx, "server.key", srv_key, sizeof(srv_key));
    if (vd_exists(srv_pem) && vd_exists(srv_key))
        return KV_OK;
    if (!ctx->cfg.dev) {
        fprintf(stderr, "vaultd: %s missing (start with --dev to create it)\n", srv_pem);
        return KV_ERR_CONFIG;
    }
    if (vd_exists(ca_pem) && vd_exists(ca_key)) {
        cakey = vd_load_key(ca_key);
        cacert = vd_load_cert(ca_pem);
        if (cakey == NULL || cacert == NULL)
            goto done;
    } else {
        cakey = vd_new_p256();
        cacert = cakey ? vd_make_cert("kvault dev CA", cakey, NULL, NULL, 3650) : NULL;
        if (cacert == NULL || vd_write_key(ca_key, cakey) != KV_OK ||
            vd_write_cert(ca_pem, cacert) != KV_OK)
            goto done;
    }
    key = vd_new_p256();
    cert = key ? vd_make_cert("localhost", key, cacert, cakey, 825) : NULL;
    if (cert == NULL || vd_write_key(srv_key, key) != KV_OK ||
        vd_write_cert(srv_pem, cert) != KV_OK)
        goto done;
    rv = KV_OK;
done:
    if (rv != KV_OK) {
        fprintf(stderr, "vaultd: cannot create the dev certificates\n");
        ERR_print_errors_fp(stderr);
    }
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    X509_free(cacert);
    X509_free(cert);
    return rv;
}

static kv_rv vd_ensure_token_key(vd_ctx *ctx)
{
    char path[PATH_MAX + 32];
    EVP_PKEY *key;

    vd_path(ctx, "token-signing.key", path, sizeof(path));
    if (!vd_exists(path)) {
        if (!ctx->cfg.dev) {
            fprintf(stderr, "vaultd: %s missing\n", path);
            return KV_ERR_CONFIG;
        }
        key = vd_new_p256();
        if (key == NULL || vd_write_key(path, key) != KV_OK) {
            EVP_PKEY_free(key);
            return KV_ERR_INTERNAL;
        }
        EVP_PKEY_free(key);
    }
    ctx->token_key = vd_load_key(path);
    if (ctx->token_key == NULL || !EVP_PKEY_is_a(ctx->token_key, "EC") ||
        EVP_PKEY_get_bits(ctx->token_key) != 256)
        return KV_ERR_CONFIG;
    return vd_identity_key_id(ctx->token_key, ctx->token_kid);
}

static kv_rv vd_ensure_kek(vd_ctx *ctx)
{
    char path[PATH_MAX + 16];
    uint8_t *data = NULL, fresh[VD_KEK_LEN];
    size_t len = 0;
    struct stat stb;
    kv_rv rv;

    vd_path(ctx, "kek.bin", path, sizeof(path));
    if (!vd_exists(path)) {
        if (!ctx->cfg.dev) {
            fprintf(stderr, "vaultd: %s missing\n", path);
            return KV_ERR_CONFIG;
        }
        if (RAND_priv_bytes(fresh, sizeof(fresh)) != 1)
            return KV_ERR_INTERNAL;
        rv = vd_write_file(path, fresh, sizeof(fresh), 0600);
        OPENSSL_cleanse(fresh, sizeof(fresh));
        if (rv != KV_OK)
            return rv;
    }
    if (stat(path, &stb) == 0 && (stb.st_mode & 077) != 0)
        fprintf(stderr, "vaultd: warning: %s is readable by others (mode %03o)\n", path,
                (unsigned)(stb.st_mode & 0777));
    rv = vd_read_file(path, 64, &data, &len);
    if (rv != KV_OK || len != VD_KEK_LEN) {
        fprintf(stderr, "vaultd: %s must hold exactly %d bytes\n", path, VD_KEK_LEN);
        vd_free_secret(data, len);
        return KV_ERR_CONFIG;
    }
    memcpy(ctx->kek, data, VD_KEK_LEN);
    vd_free_secret(data, len);
    return KV_OK;
}

/* ---- client.conf ---- */

static kv_rv vd_write_client_conf(const vd_ctx *ctx, const char *tenant, const char *client_id,
                                  const char *secret)
{
    char path[PATH_MAX + 16], text[2 * PATH_MAX + 1024];
    int n;
    kv_rv rv;

    vd_path(ctx, "client.conf", path, sizeof(path));
    n = snprintf(text, sizeof(text),
                 "[kvault]\ntimeout = 10\n\n[vault %s]\nurl = https://%s.vault.localhost:%d\n"
                 "ca_file = %s/ca.pem\nauth = client_secret\ntenant_id = %s\nclient_id = %s\n"
                 "client_secret = %s\nauthority = %s\nresource = %s\n"
                 "\n[vault %s]\nurl = https://%s.managedhsm.localhost:%d\nca_file = %s/ca.pem\n"
                 "auth = client_secret\ntenant_id = %s\nclient_id = %s\nclient_secret = %s\n"
                 "authority = %s\nresource = %s\n"
                 "\n# Managed identity \"dev-mi\" (Key Vault Administrator on vault %s), served by\n"
                 "# vaultd's loopback identity endpoint: source identity.env of the state\n"
                 "# directory (IDENTITY_ENDPOINT, IDENTITY_HEADER, AZURE_POD_IDENTITY_AUTHORITY_HOST)\n"
                 "# and use a section like:\n"
                 "# [vault dev-mi]\n# url = (the url of [vault %s])\n# ca_file = (as above)\n"
                 "# auth = managed_identity\n",
                 ctx->default_vault, ctx->default_vault, ctx->cfg.port, ctx->cfg.state_dir, tenant,
                 client_id, secret, ctx->authority, VD_VAULT_RESOURCE, VD_HSM_DEV_POOL,
                 VD_HSM_DEV_POOL, ctx->cfg.port, ctx->cfg.state_dir, tenant, client_id, secret,
                 ctx->authority, VD_MHSM_RESOURCE, ctx->default_vault, ctx->default_vault);
    rv = n > 0 && (size_t)n < sizeof(text) ? vd_write_file(path, text, (size_t)n, 0600)
                                           : KV_ERR_INTERNAL;
    OPENSSL_cleanse(text, sizeof(text));
    return rv;
}

/* The value of "key = value" on line (trimmed), or NULL. */
static char *vd_conf_value(char *line, const char *key)
{
    size_t klen = strlen(key);
    char *p = line, *end;

    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, key, klen) != 0)
        return NULL;
    p += klen;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return p;
}

/* The port of an https URL value (default 443). */
static int vd_url_port(const char *url)
{
    const char *host = strstr(url, "://"), *end, *colon;

    if (host == NULL)
        return -1;
    host += 3;
    end = strchr(host, '/');
    if (end == NULL)
        end = host + strlen(host);
    colon = NULL;
    for (const char *p = host; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL || (host[0] == '[' && memchr(colon, ']', (size_t)(end - colon)) != NULL))
        return 443;
    return atoi(colon + 1);
}

/* Appends url with its port replaced by port. */
static void vd_url_with_port(const char *url, int port, char *out, size_t outlen)
{
    const char *host = strstr(url, "://"), *end, *colon = NULL;

    if (host == NULL) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    host += 3;
    end = strchr(host, '/');
    if (end == NULL)
        end = host + strlen(host);
    for (const char *p = host; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL || (host[0] == '[' && strchr(colon, ']') != NULL && strchr(colon, ']') < end))
        colon = end;
    snprintf(out, outlen, "%.*s:%d%s", (int)(colon - url), url, port, end);
}

/* On restart: keep client.conf if it still matches; rewrite url/authority if the port
 * changed; recreate it (with a new secret) when it is missing or its secret no longer works. */
static kv_rv vd_sync_client_conf(vd_ctx *ctx, vd_store *st, const char *tenant)
{
    char path[PATH_MAX + 16], secret[VD_SECRET_MAX] = "", client_id[VD_ID_MAX] = "";
    char *text = NULL, *out = NULL, *line, *save = NULL, *v, newurl[600];
    uint8_t *raw = NULL;
    size_t len = 0, outcap = 0, o = 0, textcap = 0;
    int port = -1;
    vd_principal p;
    kv_rv rv;

    vd_path(ctx, "client.conf", path, sizeof(path));
    rv = vd_read_file(path, 64 * 1024, &raw, &len);
    if (rv == KV_OK) {
        text = strndup((const char *)raw, len);
        textcap = text ? strlen(text) + 1 : 0;
        for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            if ((v = vd_conf_value(line, "client_secret")) != NULL)
                snprintf(secret, sizeof(secret), "%s", v);
            else if ((v = vd_conf_value(line, "client_id")) != NULL)
                snprintf(client_id, sizeof(client_id), "%s", v);
            else if ((v = vd_conf_value(line, "url")) != NULL)
                port = vd_url_port(v);
        }
        vd_free_secret(text, textcap);
        text = NULL;
    }
    if (rv != KV_OK || client_id[0] == '\0' ||
        vd_store_get_principal(st, tenant, client_id, &p) != KV_OK ||
        !vd_identity_check_secret(ctx, &p, secret)) {
        /* lost or stale: issue a fresh secret to the dev principal */
        rv = vd_store_first_principal(st, tenant, &p);
        if (rv == KV_OK)
            rv = vd_identity_new_secret(&p, secret);
        if (rv == KV_OK)
            rv = vd_store_set_principal_secret(st, &p);
        if (rv == KV_OK)
            rv = vd_write_client_conf(ctx, tenant, p.client_id, secret);
        if (rv == KV_OK) {
            (void)vd_identity_check_secret(ctx, &p, secret); /* primes the cache */
            fprintf(stderr, "vaultd: wrote %s with a new client secret\n", path);
        }
        goto done;
    }
    if (port == ctx->cfg.port) {
        rv = KV_OK;
        goto done;
    }
    /* port changed: edit the url and authority lines, keep everything else */
    outcap = len + 256;
    out = malloc(outcap);
    text = strndup((const char *)raw, len);
    textcap = text ? strlen(text) + 1 : 0;
    if (out == NULL || text == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    for (line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n'), copy[1024];
        const char *key = NULL;

        if (nl != NULL)
            *nl = '\0';
        snprintf(copy, sizeof(copy), "%s", line);
        if ((v = vd_conf_value(copy, "url")) != NULL)
            key = "url";
        else if ((v = vd_conf_value(copy, "authority")) != NULL)
            key = "authority";
        if (key != NULL) {
            vd_url_with_port(v, ctx->cfg.port, newurl, sizeof(newurl));
            o += (size_t)snprintf(out + o, outcap - o, "%s = %s\n", key, newurl);
        } else {
            o += (size_t)snprintf(out + o, outcap - o, "%s\n", line);
        }
        OPENSSL_cleanse(copy, sizeof(copy));
        if (o >= outcap) {
            rv = KV_ERR_INTERNAL;
            goto done;
        }
        line = nl ? nl + 1 : NULL;
    }
    rv = vd_write_file(path, out, o, 0600);
    if (rv == KV_OK)
        fprintf(stderr, "vaultd: updated the port in %s\n", path);
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    vd_free_secret(raw, len);
    vd_free_secret(text, textcap);
    vd_free_secret(out, outcap);
    return rv;
}

/* ---- database ---- */

static kv_rv vd_create_dev_state(vd_ctx *ctx, vd_store *st)
{
    char tenant[37], secret[VD_SECRET_MAX];
    vd_principal p = {0};
    vd_vault v = {0};
    kv_rv rv;

    rv = vd_guid(tenant);
    if (rv == KV_OK)
        rv = vd_guid(p.client_id);
    if (rv == KV_OK)
        rv = vd_identity_new_secret(&p, secret);
    if (rv != KV_OK)
        return rv;
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", tenant);
    snprintf(v.name, sizeof(v.name), "%s", VD_DEV_VAULT);
    snprintf(v.tenant_id, sizeof(v.tenant_id), "%s", tenant);
    snprintf(v.resource, sizeof(v.resource), "%s", VD_VAULT_RESOURCE);
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        goto done;
    if ((rv = vd_store_add_tenant(st, tenant, "kvault dev tenant")) != KV_OK ||
        (rv = vd_store_add_vault(st, &v, true)) != KV_OK ||
        (rv = vd_store_add_principal(st, &p, "kvault dev service principal")) != KV_OK ||
        (rv = vd_store_add_role_assignment(st, v.name, "/", p.client_id, VD_ROLE_KV_ADMIN)) !=
            KV_OK ||
        (rv = vd_store_commit(st)) != KV_OK) {
        vd_store_rollback(st);
        goto done;
    }
    snprintf(ctx->default_vault, sizeof(ctx->default_vault), "%s", v.name);
    rv = vd_hsm_dev_managed_pool(st, tenant, p.client_id); /* managed HSM devhsm */
    if (rv == KV_OK)
        rv = vd_write_client_conf(ctx, tenant, p.client_id, secret);
    if (rv == KV_OK)
        (void)vd_identity_check_secret(ctx, &p, secret); /* primes the verified-secret cache */
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    return rv;
}

static kv_rv vd_ensure_db(vd_ctx *ctx)
{
    char tenant[VD_ID_MAX];
    vd_store *st = NULL;
    vd_vault v;
    kv_rv rv;

    vd_path(ctx, "vaultd.db", ctx->db_path, sizeof(ctx->db_path));
    if (!ctx->cfg.dev && !vd_exists(ctx->db_path)) {
        fprintf(stderr, "vaultd: %s missing (start with --dev to create it)\n", ctx->db_path);
        return KV_ERR_CONFIG;
    }
    rv = vd_store_open(ctx->db_path, &st);
    if (rv != KV_OK)
        goto done;
    chmod(ctx->db_path, 0600);
    rv = vd_store_init_schema(st);
    if (rv != KV_OK)
        goto done;
    rv = vd_store_first_tenant(st, tenant);
    if (rv == KV_ERR_NOT_FOUND && ctx->cfg.dev) {
        rv = vd_create_dev_state(ctx, st);
        goto done;
    }
    if (rv != KV_OK) {
        fprintf(stderr, "vaultd: the database holds no tenant\n");
        goto done;
    }
    rv = vd_store_default_vault(st, &v);
    if (rv != KV_OK) {
        fprintf(stderr, "vaultd: the database holds no vault\n");
        goto done;
    }
    snprintf(ctx->default_vault, sizeof(ctx->default_vault), "%s", v.name);
    if (ctx->cfg.dev)
        rv = vd_sync_client_conf(ctx, st, v.tenant_id);
done:
    vd_store_close(st);
    if (rv != KV_OK)
        fprintf(stderr, "vaultd: cannot prepare the database %s\n", ctx->db_path);
    return rv;
}

kv_rv vd_dev_bootstrap(vd_ctx *ctx)
{
    char abs[PATH_MAX];
    kv_rv rv;

    if (ctx == NULL || ctx->cfg.state_dir[0] == '\0')
        return KV_ERR_INVALID_ARG;
    if (ctx->cfg.dev && mkdir(ctx->cfg.state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "vaultd: cannot create %s: %s\n", ctx->cfg.state_dir, strerror(errno));
        return KV_ERR_CONFIG;
    }
    if (realpath(ctx->cfg.state_dir, abs) == NULL) {
        fprintf(stderr, "vaultd: state directory %s: %s\n", ctx->cfg.state_dir, strerror(errno));
        return KV_ERR_CONFIG;
    }
    snprintf(ctx->cfg.state_dir, sizeof(ctx->cfg.state_dir), "%s", abs);
    if (ctx->cfg.dev && chmod(abs, 0700) != 0) {
        fprintf(stderr, "vaultd: cannot chmod %s: %s\n", abs, strerror(errno));
        return KV_ERR_CONFIG;
    }
    snprintf(ctx->authority, sizeof(ctx->authority), "https://localhost:%d", ctx->cfg.port);
    if ((rv = vd_hsm_setup(ctx)) != KV_OK) /* the local HSM pool (vd_hsm.c) */
        return rv;
    if ((rv = vd_ensure_certs(ctx)) != KV_OK || (rv = vd_ensure_token_key(ctx)) != KV_OK ||
        (rv = vd_hsm_kek_in_pool(ctx) ? vd_hsm_load_kek(ctx) : vd_ensure_kek(ctx)) != KV_OK ||
        (rv = vd_ensure_db(ctx)) != KV_OK)
        return rv;
    return KV_OK;
}
