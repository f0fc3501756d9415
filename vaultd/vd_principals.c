/* vd_principals.c - the principals part of the administration API (vd_principals.h):
 * service principals with a client secret (returned once, stored as a salted PBKDF2 hash) or a
 * registered client certificate (DER + thumbprints; the private key never reaches vaultd),
 * managed identities bound to a host, extra tenants, and the token-signing key rotation. */
#include "vd_principals.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "vd_identity.h"
#include "vd_identity_keys.h"
#include "vd_store_principals.h"
#include "vd_util.h"

#define VD_SEG_SP "servicePrincipals"
#define VD_SEG_MI "managedIdentities"
#define VD_SEG_TENANTS "tenants"
#define VD_SEG_TOKENKEY "tokenSigningKey"
#define VD_SEG_USERS "users"
#define VD_PASSWORD_MIN 8

bool vd_principals_is_path(const vd_req *r)
{
    if (r == NULL || r->nsegs < 2 || strcmp(r->segs[0], "admin") != 0)
        return false;
    return strcasecmp(r->segs[1], VD_SEG_SP) == 0 || strcasecmp(r->segs[1], VD_SEG_MI) == 0 ||
           strcasecmp(r->segs[1], VD_SEG_TENANTS) == 0 ||
           strcasecmp(r->segs[1], VD_SEG_TOKENKEY) == 0 ||
           strcasecmp(r->segs[1], VD_SEG_USERS) == 0;
}

const char *vd_principals_action(const vd_req *r)
{
    bool get = strcmp(r->method, "GET") == 0, del = strcmp(r->method, "DELETE") == 0;

    if (strcasecmp(r->segs[1], VD_SEG_MI) == 0)
        return get   ? "managedIdentities/read"
               : del ? "managedIdentities/delete"
                     : "managedIdentities/write";
    if (strcasecmp(r->segs[1], VD_SEG_USERS) == 0)
        return get ? "users/read" : del ? "users/delete" : "users/write";
    if (strcasecmp(r->segs[1], VD_SEG_TENANTS) == 0)
        return "tenants/write";
    if (strcasecmp(r->segs[1], VD_SEG_TOKENKEY) == 0)
        return "tokenSigningKey/rotate/action";
    return get   ? "servicePrincipals/read"
           : del ? "servicePrincipals/delete"
                 : "servicePrincipals/write";
}

static void vd_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* A display name: 1-255 bytes of UTF-8 (jansson checked the encoding), no control characters
 * (they would end up in logs and tables). */
static bool vd_display_name_ok(const char *name)
{
    const unsigned char *p;

    if (name == NULL || name[0] == '\0' || strlen(name) > 255)
        return false;
    for (p = (const unsigned char *)name; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* The number of PEM blocks ("-----BEGIN ") in pem, and whether one holds a private key. */
static size_t vd_pem_blocks(const char *pem, bool *has_key)
{
    const char *p = pem;
    size_t n = 0;

    *has_key = strstr(pem, "PRIVATE KEY-----") != NULL;
    while ((p = strstr(p, "-----BEGIN ")) != NULL) {
        n++;
        p += 11;
    }
    return n;
}

/* Parses one PEM certificate with an RSA (>= 2048 bits) or EC P-256/384/521 key into rec. */
static bool vd_parse_cert(vd_req *r, const char *pem, vd_principal_rec *rec)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = x ? X509_get0_pubkey(x) : NULL;
    uint8_t *der = NULL, md[SHA256_DIGEST_LENGTH];
    char group[32] = "";
    int len = 0, bits = pub ? EVP_PKEY_get_bits(pub) : 0;
    bool ok = false, has_key = false;

    if (vd_pem_blocks(pem, &has_key) != 1 || has_key) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "certificate must be exactly one PEM certificate and nothing else%s.",
                       has_key ? " (never send the private key)" : "");
        goto done;
    }
    if (pub == NULL) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "certificate must be one X.509 certificate in PEM "
                       "(-----BEGIN CERTIFICATE-----).");
        goto done;
    }
    if (EVP_PKEY_is_a(pub, "EC"))
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL);
    if (!(EVP_PKEY_is_a(pub, "RSA") && bits >= 2048 && bits <= 8192) &&
        strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
        strcmp(group, "secp521r1") != 0) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "The certificate's key must be RSA (2048-8192 bits) or EC on P-256, P-384 "
                       "or P-521.");
        goto done;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        vd_reply_error(r, 400, "BadRequest", NULL, "The certificate has expired.");
        goto done;
    }
    len = i2d_X509(x, &der);
    if (len <= 0) {
        vd_reply_error(r, 400, "BadRequest", NULL, "The certificate cannot be encoded.");
        goto done;
    }
    rec->cert_der = malloc((size_t)len);
    if (rec->cert_der == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Out of memory.");
        goto done;
    }
    memcpy(rec->cert_der, der, (size_t)len);
    rec->cert_len = (size_t)len;
    SHA1(der, (size_t)len, md);
    vd_hex(md, SHA_DIGEST_LENGTH, rec->thumb_sha1);
    SHA256(der, (size_t)len, md);
    vd_hex(md, SHA256_DIGEST_LENGTH, rec->thumb_sha256);
    ok = true;
done:
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    return ok;
}

static const char *vd_credential_type(const vd_principal_rec *rec)
{
    if (strcmp(rec->kind, VD_PKIND_MI) == 0)
        return "managedIdentity";
    if (rec->cert_der != NULL)
        return "certificate";
    return rec->has_secret ? "password" : "none";
}

static json_t *vd_sp_json(const vd_principal_rec *rec)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "appId", rec->client_id, "objectId",
                  rec->client_id, "displayName", rec->display_name, "tenant", rec->tenant_id,
                  "credentialType", vd_credential_type(rec), "servicePrincipalType",
                  strcmp(rec->kind, VD_PKIND_MI) == 0 ? "ManagedIdentity" : "Application");

    if (j != NULL && rec->thumb_sha1[0] != '\0')
        json_object_set_new(j, "certificateThumbprint", json_string(rec->thumb_sha1));
    if (j != NULL && rec->host[0] != '\0')
        json_object_set_new(j, "host", json_string(rec->host));
    return j;
}

static json_t *vd_mi_json(const vd_principal_rec *rec)
{
    char id[400];

    snprintf(id, sizeof(id), "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%s",
             rec->display_name);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "name", rec->display_name,
                     "clientId", rec->client_id, "principalId", rec->client_id, "tenant",
                     rec->tenant_id, "host", rec->host, "type",
                     rec->user_assigned ? "UserAssigned" : "SystemAssigned");
}

static void vd_graph_not_found(vd_req *r, const char *id)
{
    vd_reply_error(r, 404, "Request_ResourceNotFound", NULL,
                   "Resource '%.64s' does not exist or one of its queried reference-property "
                   "objects are not present.",
                   id);
}

/* ---- service principals ---- */

static void vd_sp_create(vd_req *r)
{
    json_t *body = vd_req_json_body(r), *resp = NULL;
    const char *name, *pem;
    char secret[VD_SECRET_MAX] = "";
    vd_principal p = {0};
    vd_principal_rec rec = {0};
    kv_rv rv;

    if (body == NULL)
        return;
    name = json_string_value(json_object_get(body, "displayName"));
    pem = json_string_value(json_object_get(body, "certificate"));
    if (!vd_display_name_ok(name)) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "displayName is required (1-255 bytes, no control characters).");
        goto done;
    }
    if (json_object_get(body, "certificate") != NULL && pem == NULL) {
        vd_reply_error(r, 400, "BadRequest", NULL, "certificate must be a PEM string.");
        goto done;
    }
    snprintf(rec.display_name, sizeof(rec.display_name), "%s", name);
    snprintf(rec.kind, sizeof(rec.kind), "%s", VD_PKIND_SP);
    if (pem != NULL && !vd_parse_cert(r, pem, &rec))
        goto done;
    if (vd_guid(p.client_id) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "No random identifier.");
        goto done;
    }
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", r->vault.tenant_id);
    if (pem == NULL) {
        if (vd_identity_new_secret(&p, secret) != KV_OK) {
            vd_reply_error(r, 500, "InternalServerError", NULL, "Cannot make a secret.");
            goto done;
        }
    } else {
        p.iterations = 0; /* no secret: vd_identity_check_secret always refuses */
    }
    snprintf(rec.client_id, sizeof(rec.client_id), "%s", p.client_id);
    snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", p.tenant_id);
    rec.has_secret = pem == NULL;
    rv = vd_store_principal_create(r->store, &p, &rec);
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The principal cannot be stored.");
        goto done;
    }
    resp = json_pack("{s:s, s:s, s:s, s:s}", "appId", p.client_id, "objectId", p.client_id,
                     "displayName", rec.display_name, "tenant", p.tenant_id);
    if (resp != NULL) {
        if (pem == NULL)
            json_object_set_new(resp, "password", json_string(secret));
        else
            json_object_set_new(resp, "certificateThumbprint", json_string(rec.thumb_sha1));
    }
    fprintf(stderr, "vaultd: service principal %s (%s) created by %s\n", p.client_id,
            pem ? "certificate" : "secret", r->principal);
    vd_add_header(r, "Cache-Control", "no-store");
    vd_reply_json(r, 201, resp);
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(&p, sizeof(p));
    vd_principal_rec_clear(&rec);
    json_decref(body);
}

static void vd_list(vd_req *r, const char *kind)
{
    vd_principal_rec *recs = NULL;
    json_t *value = json_array();
    size_t n = 0, i;
    bool mi = kind != NULL && strcmp(kind, VD_PKIND_MI) == 0;

    if (value == NULL ||
        vd_store_principal_list(r->store, r->vault.tenant_id, kind, &recs, &n) != KV_OK) {
        json_decref(value);
        vd_reply_error(r, 500, "InternalServerError", NULL, "The principals are unreadable.");
        return;
    }
    for (i = 0; i < n; i++)
        if (strcmp(recs[i].kind, VD_PKIND_USER) == 0)
            json_array_append_new(value, json_null()); /* placeholder, removed below */
        else
            json_array_append_new(value, mi ? vd_mi_json(&recs[i]) : vd_sp_json(&recs[i]));
    for (i = json_array_size(value); i-- > 0;) /* users are listed under /admin/users */
        if (json_is_null(json_array_get(value, i)))
            json_array_remove(value, i);
    vd_principal_recs_free(recs, n);
    vd_reply_json(r, 200, json_pack("{s:o}", "value", value));
}

static void vd_sp_show(vd_req *r, const char *id)
{
    vd_principal_rec rec;
    kv_rv rv = vd_store_principal_get_rec(r->store, r->vault.tenant_id, id, &rec);

    if (rv == KV_OK && strcmp(rec.kind, VD_PKIND_USER) == 0) { /* users: /admin/users */
        vd_principal_rec_clear(&rec);
        rv = KV_ERR_NOT_FOUND;
    }
    if (rv == KV_ERR_NOT_FOUND) {
        vd_graph_not_found(r, id);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The principal is unreadable.");
        return;
    }
    vd_reply_json(r, 200, vd_sp_json(&rec));
    vd_principal_rec_clear(&rec);
}

static void vd_principal_delete(vd_req *r, const char *id)
{
    kv_rv rv;

    if (strcasecmp(id, r->principal) == 0) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "A principal cannot delete itself (it is the caller).");
        return;
    }
    rv = vd_store_principal_delete(r->store, r->vault.tenant_id, id);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_graph_not_found(r, id);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The principal cannot be deleted.");
        return;
    }
    fprintf(stderr, "vaultd: principal %.64s deleted by %s (with its role assignments)\n", id,
            r->principal);
    vd_reply_json(r, 204, NULL);
}

/* DELETE /admin/servicePrincipals/{appId}: service principals and managed identities only. */
static void vd_sp_delete(vd_req *r, const char *id)
{
    vd_principal_rec rec;
    kv_rv rv = vd_store_principal_get_rec(r->store, r->vault.tenant_id, id, &rec);

    if (rv == KV_OK) {
        bool user = strcmp(rec.kind, VD_PKIND_USER) == 0;

        vd_principal_rec_clear(&rec);
        if (user) {
            vd_graph_not_found(r, id);
            return;
        }
    }
    vd_principal_delete(r, id);
}

/* ---- users ---- */

/* userPrincipalName: local@domain, [A-Za-z0-9._'+-] and a dotted domain, 3-200 bytes. */
static bool vd_upn_ok(const char *upn)
{
    const char *at = upn ? strchr(upn, '@') : NULL;
    size_t i, len = upn ? strlen(upn) : 0;

    if (at == NULL || at == upn || strchr(at + 1, '@') != NULL || len < 3 || len > 200 ||
        at[1] == '\0' || at[1] == '.' || upn[len - 1] == '.' || upn[0] == '.' || at[-1] == '.')
        return false;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)upn[i];

        if (upn + i == at)
            continue;
        if (!isalnum(c) && c != '.' && c != '-' && c != '_' &&
            (upn + i > at || (c != '\'' && c != '+')))
            return false;
    }
    return strstr(upn, "..") == NULL;
}

static json_t *vd_user_json(const vd_principal_rec *rec)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", rec->client_id, "objectId",
                     rec->client_id, "userPrincipalName", rec->upn, "displayName",
                     rec->display_name, "tenant", rec->tenant_id, "userType", "Member");
}

static void vd_user_create(vd_req *r)
{
    json_t *body = vd_req_json_body(r), *resp = NULL;
    const char *upn, *name, *pw;
    char secret[VD_SECRET_MAX] = "";
    vd_principal p = {0};
    vd_principal_rec rec = {0};
    size_t i;
    kv_rv rv;

    if (body == NULL)
        return;
    upn = json_string_value(json_object_get(body, "userPrincipalName"));
    name = json_string_value(json_object_get(body, "displayName"));
    pw = json_string_value(json_object_get(body, "password"));
    if (pw == NULL) /* Microsoft Graph's shape */
        pw = json_string_value(
            json_object_get(json_object_get(body, "passwordProfile"), "password"));
    if (!vd_upn_ok(upn)) {
        vd_reply_error(r, 400, "Request_BadRequest", NULL,
                       "userPrincipalName must be local@domain ([A-Za-z0-9._'+-], 3-200 "
                       "characters).");
        goto done;
    }
    if (name == NULL)
        name = upn;
    if (!vd_display_name_ok(name)) {
        vd_reply_error(r, 400, "Request_BadRequest", NULL,
                       "displayName must have 1-255 bytes and no control characters.");
        goto done;
    }
    if (pw != NULL) {
        for (i = 0; pw[i] != '\0'; i++)
            if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f)
                break;
        if (i < VD_PASSWORD_MIN || i >= VD_SECRET_MAX || pw[i] != '\0') {
            vd_reply_error(r, 400, "Request_BadRequest", NULL,
                           "The password must have %d-%d characters and no control characters.",
                           VD_PASSWORD_MIN, VD_SECRET_MAX - 1);
            goto done;
        }
    }
    if (vd_store_user_get(r->store, NULL, upn, &rec) == KV_OK) {
        vd_principal_rec_clear(&rec);
        vd_reply_error(r, 409, "Request_BadRequest", "ObjectConflict",
                       "Another object with the same value for property userPrincipalName "
                       "already exists.");
        goto done;
    }
    memset(&rec, 0, sizeof(rec));
    if (vd_guid(p.client_id) != KV_OK || vd_identity_new_secret(&p, secret) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "No random identifier.");
        goto done;
    }
    if (pw != NULL) { /* the given password instead of the generated one */
        snprintf(secret, sizeof(secret), "%s", pw);
        if (vd_identity_hash_secret(&p, secret) != KV_OK) {
            vd_reply_error(r, 500, "InternalServerError", NULL, "Cannot hash the password.");
            goto done;
        }
    }
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", r->vault.tenant_id);
    snprintf(rec.client_id, sizeof(rec.client_id), "%s", p.client_id);
    snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", p.tenant_id);
    snprintf(rec.display_name, sizeof(rec.display_name), "%s", name);
    snprintf(rec.kind, sizeof(rec.kind), "%s", VD_PKIND_USER);
    snprintf(rec.upn, sizeof(rec.upn), "%s", upn);
    rv = vd_store_principal_create(r->store, &p, &rec);
    if (rv == KV_ERR_CONFLICT) {
        vd_reply_error(r, 409, "Request_BadRequest", "ObjectConflict",
                       "Another object with the same value for property userPrincipalName "
                       "already exists.");
        goto done;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The user cannot be stored.");
        goto done;
    }
    resp = vd_user_json(&rec);
    if (resp != NULL && pw == NULL) /* generated: shown this once */
        json_object_set_new(resp, "password", json_string(secret));
    fprintf(stderr, "vaultd: user %s created by %s\n", p.client_id, r->principal);
    vd_add_header(r, "Cache-Control", "no-store");
    vd_reply_json(r, 201, resp);
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(&p, sizeof(p));
    vd_principal_rec_clear(&rec);
    json_decref(body);
}

static void vd_user_list(vd_req *r)
{
    vd_principal_rec *recs = NULL;
    json_t *value = json_array();
    size_t n = 0, i;

    if (value == NULL ||
        vd_store_principal_list(r->store, r->vault.tenant_id, VD_PKIND_USER, &recs, &n) != KV_OK) {
        json_decref(value);
        vd_reply_error(r, 500, "InternalServerError", NULL, "The users are unreadable.");
        return;
    }
    for (i = 0; i < n; i++)
        json_array_append_new(value, vd_user_json(&recs[i]));
    vd_principal_recs_free(recs, n);
    vd_reply_json(r, 200, json_pack("{s:o}", "value", value));
}

/* GET / DELETE /admin/users/{objectId or userPrincipalName} */
static void vd_user_show_or_delete(vd_req *r, const char *id, bool del)
{
    vd_principal_rec rec;
    kv_rv rv = strlen(id) < sizeof(rec.upn)
                   ? vd_store_user_get(r->store, r->vault.tenant_id, id, &rec)
                   : KV_ERR_NOT_FOUND;

    if (rv == KV_ERR_NOT_FOUND) {
        vd_graph_not_found(r, id);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The users are unreadable.");
        return;
    }
    if (del)
        vd_principal_delete(r, rec.client_id);
    else
        vd_reply_json(r, 200, vd_user_json(&rec));
    vd_principal_rec_clear(&rec);
}

/* ---- managed identities ---- */

static bool vd_host_ok(const char *h)
{
    size_t i, len = strlen(h);

    if (len == 0 || len >= 256)
        return false;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

static bool vd_mi_name_ok(const char *n)
{
    size_t i, len = strlen(n);

    if (len < 3 || len > 128 || !isalnum((unsigned char)n[0]))
        return false;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_')
            return false;
    return true;
}

static void vd_mi_put(vd_req *r, const char *name)
{
    json_t *body = NULL;
    const char *host;
    const json_t *ua;
    vd_principal p = {0};
    vd_principal_rec rec = {0}, other = {0};
    kv_rv rv;

    if (!vd_mi_name_ok(name)) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "A managed identity name has 3-128 characters [0-9A-Za-z-_], starting "
                       "with a letter or digit.");
        return;
    }
    body = vd_req_json_body(r);
    if (body == NULL)
        return;
    host = json_string_value(json_object_get(body, "host"));
    ua = json_object_get(body, "userAssigned");
    if (host == NULL || !vd_host_ok(host) || (ua != NULL && !json_is_boolean(ua))) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "host (a host name) is required; userAssigned is an optional boolean.");
        goto done;
    }
    rv = vd_store_mi_by_name(r->store, r->vault.tenant_id, name, &rec);
    if (rv == KV_OK) { /* exists: re-bind to host */
        if (!rec.user_assigned && strcasecmp(rec.host, host) != 0 &&
            vd_store_mi_for_host(r->store, host, NULL, &other) == KV_OK) {
            vd_reply_error(r, 409, "Conflict", NULL,
                           "Host '%s' already has a system-assigned managed identity ('%s').", host,
                           other.display_name);
            goto done;
        }
        if (vd_store_mi_set_host(r->store, rec.client_id, host) != KV_OK) {
            vd_reply_error(r, 500, "InternalServerError", NULL, "Cannot update the identity.");
            goto done;
        }
        snprintf(rec.host, sizeof(rec.host), "%s", host);
        vd_reply_json(r, 200, vd_mi_json(&rec));
        goto done;
    }
    if (rv != KV_ERR_NOT_FOUND) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The identities are unreadable.");
        goto done;
    }
    rec.user_assigned = ua != NULL && json_is_true(ua);
    if (!rec.user_assigned && vd_store_mi_for_host(r->store, host, NULL, &other) == KV_OK) {
        vd_reply_error(r, 409, "Conflict", NULL,
                       "Host '%s' already has a system-assigned managed identity ('%s'); use "
                       "\"userAssigned\": true for more.",
                       host, other.display_name);
        goto done;
    }
    if (vd_guid(p.client_id) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "No random identifier.");
        goto done;
    }
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", r->vault.tenant_id);
    snprintf(rec.client_id, sizeof(rec.client_id), "%s", p.client_id);
    snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", p.tenant_id);
    snprintf(rec.display_name, sizeof(rec.display_name), "%s", name);
    snprintf(rec.kind, sizeof(rec.kind), "%s", VD_PKIND_MI);
    snprintf(rec.host, sizeof(rec.host), "%s", host);
    if (vd_store_principal_create(r->store, &p, &rec) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The identity cannot be stored.");
        goto done;
    }
    fprintf(stderr, "vaultd: managed identity %s (%s) bound to %s by %s\n", name, p.client_id, host,
            r->principal);
    vd_reply_json(r, 201, vd_mi_json(&rec));
done:
    vd_principal_rec_clear(&rec);
    vd_principal_rec_clear(&other);
    json_decref(body);
}

static void vd_mi_show_or_delete(vd_req *r, const char *name, bool del)
{
    vd_principal_rec rec;
    kv_rv rv = vd_store_mi_by_name(r->store, r->vault.tenant_id, name, &rec);

    if (rv == KV_ERR_NOT_FOUND) {
        vd_reply_error(r, 404, "ResourceNotFound", NULL,
                       "The managed identity '%.128s' was not found.", name);
        return;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The identities are unreadable.");
        return;
    }
    if (del)
        vd_principal_delete(r, rec.client_id);
    else
        vd_reply_json(r, 200, vd_mi_json(&rec));
    vd_principal_rec_clear(&rec);
}

/* ---- tenants ---- */

/* A new tenant with one service principal (secret): for multi-tenant tests. */
static void vd_tenant_create(vd_req *r)
{
    json_t *body = vd_req_json_body(r);
    const char *name;
    char tenant[37], secret[VD_SECRET_MAX] = "";
    vd_principal p = {0};
    vd_principal_rec rec = {0};
    kv_rv rv;

    if (body == NULL)
        return;
    name = json_string_value(json_object_get(body, "displayName"));
    if (!vd_display_name_ok(name) || strlen(name) > 200) {
        vd_reply_error(r, 400, "BadRequest", NULL,
                       "displayName is required (1-200 bytes, no control characters).");
        goto done;
    }
    if (vd_guid(tenant) != KV_OK || vd_guid(p.client_id) != KV_OK ||
        vd_identity_new_secret(&p, secret) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "No random identifier.");
        goto done;
    }
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", tenant);
    snprintf(rec.display_name, sizeof(rec.display_name), "%s service principal", name);
    snprintf(rec.kind, sizeof(rec.kind), "%s", VD_PKIND_SP);
    rv = vd_store_begin(r->store);
    if (rv == KV_OK)
        rv = vd_store_add_tenant(r->store, tenant, name);
    if (rv == KV_OK)
        rv = vd_store_principal_create(r->store, &p, &rec);
    if (rv == KV_OK)
        rv = vd_store_commit(r->store);
    if (rv != KV_OK) {
        vd_store_rollback(r->store);
        vd_reply_error(r, 500, "InternalServerError", NULL, "The tenant cannot be stored.");
        goto done;
    }
    vd_add_header(r, "Cache-Control", "no-store");
    vd_reply_json(r, 201,
                  json_pack("{s:s, s:s, s:s, s:s}", "tenantId", tenant, "displayName", name,
                            "appId", p.client_id, "password", secret));
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(&p, sizeof(p));
    json_decref(body);
}

/* ---- dispatch ---- */

void vd_principals_handle(vd_req *r)
{
    const char *coll = r->segs[1], *m = r->method;
    const char *id = r->nsegs >= 3 && r->segs[2][0] != '\0' ? r->segs[2] : NULL;
    bool collection = r->nsegs == 2 || (r->nsegs == 3 && id == NULL);
    bool item = r->nsegs == 3 && id != NULL;

    if (strcasecmp(coll, VD_SEG_SP) == 0) {
        if (collection && strcmp(m, "POST") == 0)
            vd_sp_create(r);
        else if (collection && strcmp(m, "GET") == 0)
            vd_list(r, NULL);
        else if (item && strcmp(m, "GET") == 0)
            vd_sp_show(r, id);
        else if (item && strcmp(m, "DELETE") == 0)
            vd_sp_delete(r, id);
        else
            vd_reply_error(r, 405, "MethodNotAllowed", NULL, "%s is not allowed on %.200s.", m,
                           r->path);
    } else if (strcasecmp(coll, VD_SEG_MI) == 0) {
        if (collection && strcmp(m, "GET") == 0)
            vd_list(r, VD_PKIND_MI);
        else if (item && strcmp(m, "PUT") == 0)
            vd_mi_put(r, id);
        else if (item && (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0))
            vd_mi_show_or_delete(r, id, strcmp(m, "DELETE") == 0);
        else
            vd_reply_error(r, 405, "MethodNotAllowed", NULL, "%s is not allowed on %.200s.", m,
                           r->path);
    } else if (strcasecmp(coll, VD_SEG_USERS) == 0) {
        if (collection && strcmp(m, "POST") == 0)
            vd_user_create(r);
        else if (collection && strcmp(m, "GET") == 0)
            vd_user_list(r);
        else if (item && (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0))
            vd_user_show_or_delete(r, id, strcmp(m, "DELETE") == 0);
        else
            vd_reply_error(r, 405, "MethodNotAllowed", NULL, "%s is not allowed on %.200s.", m,
                           r->path);
    } else if (strcasecmp(coll, VD_SEG_TENANTS) == 0) {
        if (collection && strcmp(m, "POST") == 0)
            vd_tenant_create(r);
        else
            vd_reply_error(r, 405, "MethodNotAllowed", NULL, "%s is not allowed on %.200s.", m,
                           r->path);
    } else if (r->nsegs == 3 && strcmp(r->segs[2], "rotate") == 0 && strcmp(m, "POST") == 0) {
        if (vd_tokenkeys_rotate(r->ctx) != KV_OK) {
            vd_reply_error(r, 500, "InternalServerError", NULL,
                           "The token-signing key cannot be rotated.");
            return;
        }
        fprintf(stderr, "vaultd: token-signing key rotated by %s\n", r->principal);
        vd_reply_json(r, 200, vd_tokenkeys_jwks(r->ctx));
    } else {
        vd_reply_error(r, 404, "NotFound", NULL,
                       "The token-signing key is rotated with POST /admin/tokenSigningKey/rotate.");
    }
}
