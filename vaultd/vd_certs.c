/* vd_certs.c - certificate endpoints. A certificate version is stored as its DER plus a key
 * version (keys table, managed) and a secret version (secrets table, managed, value = the
 * certificate and, when exportable, its private key as PKCS#12 or PEM) of the same name and
 * version, as in Azure: the key is usable through the key endpoints. Creation with issuer Self
 * completes synchronously; the reply is still 202 with a pending operation whose later GET
 * reports "completed". */
#include "vd_certs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kv_b64.h"
#include "kv_jwk.h"
#include "vd_certs_int.h"
#include "vd_crypto.h"
#include "vd_hsm.h"
#include "vd_keys_int.h"
#include "vd_store_keys.h"
#include "vd_sc_common.h"
#include "vd_secrets.h"
#include "vd_store_certs.h"
#include "vd_util.h"
#include "vd_workpool.h"

#define VD_CT_PKCS12 "application/x-pkcs12"
#define VD_CT_PEM "application/x-pem-file"
#define VD_UPN_OID "1.3.6.1.4.1.311.20.2.3"

static const char *const vd_key_usages[] = {"digitalSignature", "nonRepudiation", "keyEncipherment",
                                            "dataEncipherment", "keyAgreement",   "keyCertSign",
                                            "cRLSign",          "encipherOnly",   "decipherOnly"};

/* A certificate version being made: key, X.509, chain and the policy it follows. With an
 * HSM-protected key (hsm_ref set) pkey is the public key only. */
typedef struct vd_cert_build {
    EVP_PKEY *pkey;
    char *hsm_ref; /* the key in the HSM pool, or NULL (software key) */
    bool hsm_new;  /* hsm_ref was made for this version: destroy it unless it was stored */
    bool hsm_kept; /* stored: the key row owns the pool object now */
    X509 *x509;
    STACK_OF(X509) * chain; /* extra certificates of an import (may be NULL) */
    json_t *policy;         /* normalised policy (no id) */
    vd_sc_attrs attrs;      /* enabled from the request; nbf/exp from the certificate */
    char *tags;
    char version[VD_ID_MAX];
} vd_cert_build;

static void vd_cert_build_clear(vd_ctx *ctx, vd_cert_build *b)
{
    if (b->hsm_ref != NULL && b->hsm_new && !b->hsm_kept)
        vd_certs_hsm_destroy(ctx, b->hsm_ref);
    free(b->hsm_ref);
    EVP_PKEY_free(b->pkey);
    X509_free(b->x509);
    sk_X509_pop_free(b->chain, X509_free);
    json_decref(b->policy);
    free(b->tags);
    memset(b, 0, sizeof(*b));
}

/* ---- errors, ids ---- */

static void vd_cert_not_found(vd_req *r, const char *name, const char *version)
{
    bool v = version != NULL && version[0] != '\0';

    vd_reply_error(r, 404, "CertificateNotFound", NULL,
                   "A certificate with (name/id) %.127s%s%.64s was not found in this key vault. "
                   "If you recently deleted this certificate you may be able to recover it using "
                   "the correct recovery command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182",
                   name, v ? "/" : "", v ? version : "");
}

static void vd_deleted_cert_not_found(vd_req *r, const char *name)
{
    vd_reply_error(r, 404, "CertificateNotFound", NULL, "Deleted Certificate not found: %.127s",
                   name);
}

static void vd_cert_deleted_conflict(vd_req *r, const char *name)
{
    vd_reply_error(r, 409, "Conflict", "ObjectIsDeletedButRecoverable",
                   "Certificate %.127s is currently in a deleted but recoverable state, and its "
                   "name cannot be reused; in this state, the certificate can only be recovered "
                   "or purged.",
                   name);
}

void vd_certs_not_found(vd_req *r, const char *name, const char *version)
{
    vd_cert_not_found(r, name, version);
}

static void vd_obj_url(const vd_req *r, const char *coll, const char *name, const char *version,
                       char *out, size_t outlen)
{
    char base[300];

    vd_base_url(r, base, sizeof(base));
    if (version != NULL && version[0] != '\0')
        snprintf(out, outlen, "%s/%s/%s/%s", base, coll, name, version);
    else
        snprintf(out, outlen, "%s/%s/%s", base, coll, name);
}

/* ---- policy ---- */

static bool vd_bad(vd_req *r, const char *msg)
{
    vd_reply_error(r, 400, "BadParameter", NULL, "%s", msg);
    return false;
}

static bool vd_opt_obj(vd_req *r, json_t *parent, const char *key, json_t **out)
{
    json_t *v = json_object_get(parent, key);

    if (v == NULL || json_is_null(v)) {
        *out = json_object();
        json_object_set_new(parent, key, *out);
        return *out != NULL;
    }
    if (!json_is_object(v)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "policy.%s must be an object.", key);
        return false;
    }
    *out = v;
    return true;
}

static bool vd_string_array(const json_t *a, size_t maxlen)
{
    const json_t *v;
    size_t i;

    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, v) if (!json_is_string(v) || json_string_length(v) == 0 ||
                                    json_string_length(v) > maxlen) return false;
    return true;
}

/* Drops JSON nulls (the SDK sends undefined members as absent, others as null). */
static void vd_drop_nulls(json_t *o)
{
    const char *k;
    json_t *v;
    void *tmp;

    json_object_foreach_safe(o, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(o, k);
        else if (json_is_object(v))
            vd_drop_nulls(v);
    }
}

/* Validates a policy and fills Azure's defaults; *out is a new object (no id). false after
 * answering 400. for_create: the issuer must be Self. */
static bool vd_policy_normalize(vd_req *r, const json_t *in, bool for_create, json_t **out)
{
    json_t *p = NULL, *kp, *sp, *xp, *iss, *attrs, *v, *sans;
    const char *kty, *ct, *iname;
    bool rsa;
    size_t i;
    long long months;

    *out = NULL;
    if (in != NULL && !json_is_null(in) && !json_is_object(in))
        return vd_bad(r, "policy must be an object.");
    p = in != NULL && json_is_object(in) ? json_deep_copy(in) : json_object();
    if (p == NULL)
        return vd_bad(r, "policy could not be read.");
    json_object_del(p, "id");
    vd_drop_nulls(p);
    if (!vd_opt_obj(r, p, "key_props", &kp) || !vd_opt_obj(r, p, "secret_props", &sp) ||
        !vd_opt_obj(r, p, "x509_props", &xp) || !vd_opt_obj(r, p, "issuer", &iss) ||
        !vd_opt_obj(r, p, "attributes", &attrs))
        goto fail;
    /* key_props */
    v = json_object_get(kp, "kty");
    if (v == NULL)
        json_object_set_new(kp, "kty", json_string("RSA"));
    kty = json_string_value(json_object_get(kp, "kty"));
    if (kty == NULL || (strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0 &&
                        strcmp(kty, "EC") != 0 && strcmp(kty, "EC-HSM") != 0)) {
        vd_bad(r, "key_props.kty must be RSA, RSA-HSM, EC or EC-HSM.");
        goto fail;
    }
    rsa = strncmp(kty, "RSA", 3) == 0;
    if (rsa) {
        v = json_object_get(kp, "key_size");
        if (v == NULL)
            json_object_set_new(kp, "key_size", json_integer(2048));
        else if (!json_is_integer(v) ||
                 (json_integer_value(v) != 2048 && json_integer_value(v) != 3072 &&
                  json_integer_value(v) != 4096)) {
            vd_bad(r, "key_props.key_size must be 2048, 3072 or 4096 for RSA.");
            goto fail;
        }
        json_object_del(kp, "crv");
    } else {
        int nid;

        v = json_object_get(kp, "crv");
        if (v == NULL)
            json_object_set_new(kp, "crv", json_string("P-256"));
        v = json_object_get(kp, "crv");
        nid = json_is_string(v) ? kv_curve_nid_from_name(json_string_value(v)) : NID_undef;
        if (nid == NID_undef || kv_curve_name_from_nid(nid) == NULL ||
            strcmp(kv_curve_name_from_nid(nid), json_string_value(v)) != 0) {
            vd_bad(r, "key_props.crv must be P-256, P-384, P-521 or P-256K.");
            goto fail;
        }
        json_object_set_new(kp, "key_size",
                            json_integer(nid == NID_secp384r1   ? 384
                                         : nid == NID_secp521r1 ? 521
                                                                : 256));
    }
    for (i = 0; i < 2; i++) {
        const char *k = i == 0 ? "exportable" : "reuse_key";

        v = json_object_get(kp, k);
        if (v == NULL) /* an HSM-protected key can never leave the pool */
            json_object_set_new(kp, k, json_boolean(i == 0 && !vd_certs_kty_is_hsm(kty)));
        else if (!json_is_boolean(v)) {
            vd_reply_error(r, 400, "BadParameter", NULL, "key_props.%s must be a boolean.", k);
            goto fail;
        }
    }
    if (vd_certs_kty_is_hsm(kty) && json_is_true(json_object_get(kp, "exportable"))) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "key_props.exportable: the private key of an HSM-protected certificate "
                       "key (kty %s) cannot be exported; set exportable to false or use kty %s.",
                       kty, strncmp(kty, "RSA", 3) == 0 ? "RSA" : "EC");
        goto fail;
    }
    /* secret_props */
    v = json_object_get(sp, "contentType");
    if (v == NULL)
        json_object_set_new(sp, "contentType", json_string(VD_CT_PKCS12));
    ct = json_string_value(json_object_get(sp, "contentType"));
    if (ct == NULL || (strcmp(ct, VD_CT_PKCS12) != 0 && strcmp(ct, VD_CT_PEM) != 0)) {
        vd_bad(r, "secret_props.contentType must be application/x-pkcs12 or "
                  "application/x-pem-file.");
        goto fail;
    }
    /* x509_props */
    v = json_object_get(xp, "subject");
    if (v != NULL && (!json_is_string(v) || json_string_length(v) > 1024)) {
        vd_bad(r, "x509_props.subject must be a string.");
        goto fail;
    }
    sans = json_object_get(xp, "sans");
    if (sans != NULL) {
        const char *k;
        json_t *sv;

        if (!json_is_object(sans)) {
            vd_bad(r, "x509_props.sans must be an object.");
            goto fail;
        }
        json_object_foreach(sans, k, sv)
        {
            if ((strcmp(k, "dns_names") != 0 && strcmp(k, "emails") != 0 &&
                 strcmp(k, "upns") != 0) ||
                !vd_string_array(sv, 253) || json_array_size(sv) > 100) {
                vd_bad(r, "x509_props.sans may hold dns_names, emails and upns (string arrays).");
                goto fail;
            }
        }
    }
    if (for_create && (v == NULL || json_string_length(v) == 0) &&
        (sans == NULL || json_object_size(sans) == 0)) {
        vd_bad(r, "The policy must give x509_props.subject or x509_props.sans.");
        goto fail;
    }
    v = json_object_get(xp, "ekus");
    if (v == NULL)
        json_object_set_new(xp, "ekus",
                            json_pack("[s,s]", "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"));
    else {
        json_t *e;

        if (!vd_string_array(v, 128)) {
            vd_bad(r, "x509_props.ekus must be an array of OIDs.");
            goto fail;
        }
        json_array_foreach(v, i, e)
        {
            ASN1_OBJECT *o = OBJ_txt2obj(json_string_value(e), 1);

            ASN1_OBJECT_free(o);
            if (o == NULL) {
                vd_bad(r, "x509_props.ekus must be an array of OIDs.");
                goto fail;
            }
        }
    }
    v = json_object_get(xp, "key_usage");
    if (v == NULL)
        json_object_set_new(xp, "key_usage",
                            rsa ? json_pack("[s,s]", "digitalSignature", "keyEncipherment")
                                : json_pack("[s]", "digitalSignature"));
    else {
        json_t *u;

        if (!json_is_array(v)) {
            vd_bad(r, "x509_props.key_usage must be an array.");
            goto fail;
        }
        json_array_foreach(v, i, u)
        {
            bool known = false;
            size_t j;

            for (j = 0; json_is_string(u) && j < sizeof(vd_key_usages) / sizeof(vd_key_usages[0]);
                 j++)
                known = known || strcmp(json_string_value(u), vd_key_usages[j]) == 0;
            if (!known) {
                vd_bad(r, "x509_props.key_usage holds an unknown key usage.");
                goto fail;
            }
        }
    }
    v = json_object_get(xp, "validity_months");
    if (v == NULL)
        json_object_set_new(xp, "validity_months", json_integer(12));
    months = json_integer_value(json_object_get(xp, "validity_months"));
    if (!json_is_integer(json_object_get(xp, "validity_months")) || months < 1 || months > 1200) {
        vd_bad(r, "x509_props.validity_months must be between 1 and 1200.");
        goto fail;
    }
    /* issuer */
    v = json_object_get(iss, "name");
    if (v == NULL)
        json_object_set_new(iss, "name", json_string(for_create ? "Self" : "Unknown"));
    iname = json_string_value(json_object_get(iss, "name"));
    if (iname == NULL ||
        (for_create && strcasecmp(iname, "Self") != 0 && strcasecmp(iname, "Unknown") != 0)) {
        vd_bad(r, "vaultd issues certificates with the issuer Self, or Unknown (a CSR to have "
                  "signed elsewhere and merged).");
        goto fail;
    }
    if (strcasecmp(iname, "Self") == 0)
        json_object_set_new(iss, "name", json_string("Self"));
    else if (strcasecmp(iname, "Unknown") == 0)
        json_object_set_new(iss, "name", json_string("Unknown"));
    /* lifetime actions, attributes */
    if (json_object_get(p, "lifetime_actions") == NULL)
        json_object_set_new(p, "lifetime_actions",
                            json_pack("[{s:{s:i}, s:{s:s}}]", "trigger", "lifetime_percentage", 80,
                                      "action", "action_type", "AutoRenew"));
    else if (!json_is_array(json_object_get(p, "lifetime_actions"))) {
        vd_bad(r, "policy.lifetime_actions must be an array.");
        goto fail;
    }
    v = json_object_get(attrs, "enabled");
    if (v == NULL)
        json_object_set_new(attrs, "enabled", json_true());
    else if (!json_is_boolean(v)) {
        vd_bad(r, "policy.attributes.enabled must be a boolean.");
        goto fail;
    }
    *out = p;
    return true;
fail:
    json_decref(p);
    return false;
}

/* The policy as returned: id + stored policy + attributes.created/updated. */
static json_t *vd_policy_out(const vd_req *r, const char *name, const char *text)
{
    json_t *p = json_loads(text, 0, NULL);
    char url[600];

    if (p == NULL)
        return NULL;
    vd_obj_url(r, "certificates", name, "policy", url, sizeof(url));
    json_object_set_new(p, "id", json_string(url));
    return p;
}

/* ---- X.509 ---- */

/* "CN=a, O=b" -> X509_NAME (attribute names case-insensitive; E = emailAddress). */
static X509_NAME *vd_parse_subject(const char *s)
{
    X509_NAME *n = X509_NAME_new();
    char *copy = strdup(s ? s : ""), *p, *tok, *save = NULL;

    if (n == NULL || copy == NULL)
        goto fail;
    for (tok = strtok_r(copy, ",;", &save); tok != NULL; tok = strtok_r(NULL, ",;", &save)) {
        char *eq = strchr(tok, '='), *k = tok, *v, *end;
        int nid;

        if (eq == NULL)
            goto fail;
        *eq = '\0';
        v = eq + 1;
        while (isspace((unsigned char)*k))
            k++;
        for (end = k + strlen(k); end > k && isspace((unsigned char)end[-1]); end--)
            end[-1] = '\0';
        while (isspace((unsigned char)*v))
            v++;
        for (end = v + strlen(v); end > v && isspace((unsigned char)end[-1]); end--)
            end[-1] = '\0';
        if (*k == '\0' || *v == '\0')
            goto fail;
        if (strcasecmp(k, "E") == 0)
            nid = NID_pkcs9_emailAddress;
        else {
            nid = OBJ_txt2nid(k);
            if (nid == NID_undef) {
                for (p = k; *p; p++)
                    *p = (char)toupper((unsigned char)*p);
                nid = OBJ_txt2nid(k);
            }
        }
        if (nid == NID_undef ||
            !X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8, (const unsigned char *)v, -1, -1, 0))
            goto fail;
    }
    free(copy);
    return n;
fail:
    free(copy);
    X509_NAME_free(n);
    return NULL;
}

static bool vd_add_gn(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = NULL;

    if (gn == NULL)
        return false;
    if (type == GEN_OTHERNAME) {
        ASN1_TYPE *val = ASN1_TYPE_new();
        ASN1_UTF8STRING *u = ASN1_UTF8STRING_new();
        ASN1_OBJECT *oid = OBJ_txt2obj(VD_UPN_OID, 1);

        if (val == NULL || u == NULL || oid == NULL ||
            !ASN1_STRING_set(u, value, (int)strlen(value))) {
            ASN1_TYPE_free(val);
            ASN1_UTF8STRING_free(u);
            ASN1_OBJECT_free(oid);
            GENERAL_NAME_free(gn);
            return false;
        }
        ASN1_TYPE_set(val, V_ASN1_UTF8STRING, u);
        if (!GENERAL_NAME_set0_othername(gn, oid, val)) {
            ASN1_TYPE_free(val);
            ASN1_OBJECT_free(oid);
            GENERAL_NAME_free(gn);
            return false;
        }
    } else {
        ia5 = ASN1_IA5STRING_new();
        if (ia5 == NULL || !ASN1_STRING_set(ia5, value, (int)strlen(value))) {
            ASN1_IA5STRING_free(ia5);
            GENERAL_NAME_free(gn);
            return false;
        }
        GENERAL_NAME_set0_value(gn, type, ia5);
    }
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        return false;
    }
    return true;
}

/* subjectAltName from policy sans (NULL when there are none). */
static X509_EXTENSION *vd_san_ext(const json_t *sans, bool *ok)
{
    static const struct {
        const char *key;
        int type;
    } kinds[] = {{"dns_names", GEN_DNS}, {"emails", GEN_EMAIL}, {"upns", GEN_OTHERNAME}};
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    X509_EXTENSION *ext = NULL;
    const json_t *v;
    size_t i, k;

    *ok = gens != NULL;
    for (k = 0; k < 3 && *ok; k++)
        json_array_foreach(json_object_get(sans, kinds[k].key), i, v) *ok =
            *ok && vd_add_gn(gens, kinds[k].type, json_string_value(v));
    if (*ok && sk_GENERAL_NAME_num(gens) > 0) {
        ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
        *ok = ext != NULL;
    }
    GENERAL_NAMES_free(gens);
    return ext;
}

/* Joins a JSON string array with ", " (NULL if empty). */
static char *vd_join(const json_t *a, const char *prefix)
{
    size_t i, len = strlen(prefix) + 1;
    const json_t *v;
    char *s;

    if (json_array_size(a) == 0)
        return NULL;
    json_array_foreach(a, i, v) len += json_string_length(v) + 2;
    s = malloc(len);
    if (s == NULL)
        return NULL;
    snprintf(s, len, "%s", prefix);
    json_array_foreach(a, i, v)
    {
        if (i > 0)
            strcat(s, ",");
        strcat(s, json_string_value(v));
    }
    return s;
}

static bool vd_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    bool ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok;
}

static const EVP_MD *vd_sig_md(const EVP_PKEY *pkey)
{
    int nid = vd_crypto_curve_nid(pkey);

    if (nid == NID_secp384r1)
        return EVP_sha384();
    if (nid == NID_secp521r1)
        return EVP_sha512();
    return EVP_sha256();
}

static long long vd_asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (long long)timegm(&tm);
}

/* Self-signed certificate for b->pkey following b->policy, signed in the HSM pool when the key
 * lives there. A pool failure sets err (err->rv != KV_OK); KV_ERR_INVALID_ARG with err->rv ==
 * KV_OK is a bad subject. */
static kv_rv vd_make_self_signed(vd_ctx *ctx, vd_cert_build *b, kv_err *err)
{
    const json_t *xp = json_object_get(b->policy, "x509_props");
    X509_NAME *subj = NULL;
    X509_EXTENSION *san = NULL;
    X509V3_CTX v3;
    BIGNUM *bn = NULL;
    char *ku = NULL, *eku = NULL;
    struct tm tm;
    time_t now = time(NULL), until;
    bool ok = false;
    kv_rv rv = KV_ERR_INTERNAL;

    kv_err_clear(err);
    subj = vd_parse_subject(json_string_value(json_object_get(xp, "subject")));
    if (subj == NULL)
        return KV_ERR_INVALID_ARG;
    gmtime_r(&now, &tm);
    tm.tm_mon += (int)json_integer_value(json_object_get(xp, "validity_months"));
    until = timegm(&tm);
    b->x509 = X509_new();
    bn = BN_new();
    if (b->x509 == NULL || bn == NULL || !X509_set_version(b->x509, 2) ||
        !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(b->x509)) == NULL ||
        !X509_set_subject_name(b->x509, subj) || !X509_set_issuer_name(b->x509, subj) ||
        ASN1_TIME_set(X509_getm_notBefore(b->x509), now) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(b->x509), until) == NULL ||
        !X509_set_pubkey(b->x509, b->pkey))
        goto done;
    X509V3_set_ctx(&v3, b->x509, b->x509, NULL, NULL, 0);
    ku = vd_join(json_object_get(xp, "key_usage"), "critical,");
    eku = vd_join(json_object_get(xp, "ekus"), "");
    san = vd_san_ext(json_object_get(xp, "sans"), &ok);
    if (!ok || (san != NULL && X509_add_ext(b->x509, san, -1) != 1))
        goto done;
    if ((ku != NULL && !vd_add_conf_ext(b->x509, &v3, NID_key_usage, ku)) ||
        (eku != NULL && !vd_add_conf_ext(b->x509, &v3, NID_ext_key_usage, eku)) ||
        !vd_add_conf_ext(b->x509, &v3, NID_subject_key_identifier, "hash") ||
        !vd_add_conf_ext(b->x509, &v3, NID_authority_key_identifier, "keyid:always"))
        goto done;
    if (b->hsm_ref != NULL) {
        rv = vd_certs_hsm_sign_x509(ctx, b->hsm_ref, b->pkey, vd_sig_md(b->pkey), &b->x509, err);
        goto done;
    }
    if (X509_sign(b->x509, b->pkey, vd_sig_md(b->pkey)) <= 0)
        goto done;
    rv = KV_OK;
done:
    free(ku);
    free(eku);
    X509_EXTENSION_free(san);
    BN_free(bn);
    X509_NAME_free(subj);
    return rv;
}

/* A CSR for the pending operation from the policy's subject and SANs (std base64 DER), or
 * NULL (also for an invalid subject; err->rv != KV_OK when the HSM pool failed). */
static char *vd_make_csr(vd_ctx *ctx, const vd_cert_build *b, kv_err *err)
{
    const json_t *xp = json_object_get(b->policy, "x509_props");
    X509_NAME *subj = vd_parse_subject(json_string_value(json_object_get(xp, "subject")));
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = NULL;
    X509_REQ *req = X509_REQ_new();
    unsigned char *der = NULL;
    char *out = NULL;
    bool ok = false;
    int len;

    kv_err_clear(err);
    if (subj == NULL || exts == NULL || req == NULL)
        goto done;
    san = vd_san_ext(json_object_get(xp, "sans"), &ok);
    if (!ok || (san != NULL && !sk_X509_EXTENSION_push(exts, san)))
        goto done;
    if (san != NULL) {
        san = NULL; /* owned by exts */
        if (!X509_REQ_add_extensions(req, exts))
            goto done;
    }
    if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, subj) ||
        !X509_REQ_set_pubkey(req, b->pkey))
        goto done;
    if (b->hsm_ref != NULL
            ? vd_certs_hsm_sign_req(ctx, b->hsm_ref, b->pkey, vd_sig_md(b->pkey), req, err) != KV_OK
            : X509_REQ_sign(req, b->pkey, vd_sig_md(b->pkey)) <= 0)
        goto done;
    len = i2d_X509_REQ(req, &der);
    if (len > 0)
        out = kv_b64_encode(der, (size_t)len);
done:
    OPENSSL_free(der);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    X509_NAME_free(subj);
    return out;
}

/* key_ops from the X.509 key usage (spec §1.3), as JSON text. No key usage at all (an imported
 * certificate without the extension) leaves the key unrestricted (RFC 5280 §4.2.1.3). */
static char *vd_key_ops_for(const json_t *key_usage, bool rsa)
{
    bool none = json_array_size(key_usage) == 0;
    bool sign = none, wrap = none, enc = none;
    json_t *ops = json_array();
    const json_t *u;
    char *out;
    size_t i;

    json_array_foreach(key_usage, i, u)
    {
        const char *s = json_string_value(u);

        if (s == NULL)
            continue;
        sign = sign || strcmp(s, "digitalSignature") == 0 || strcmp(s, "nonRepudiation") == 0 ||
               strcmp(s, "keyCertSign") == 0 || strcmp(s, "cRLSign") == 0;
        wrap = wrap || strcmp(s, "keyEncipherment") == 0;
        enc = enc || strcmp(s, "dataEncipherment") == 0;
    }
    if (sign) {
        json_array_append_new(ops, json_string("sign"));
        json_array_append_new(ops, json_string("verify"));
    }
    if (rsa && wrap) {
        json_array_append_new(ops, json_string("wrapKey"));
        json_array_append_new(ops, json_string("unwrapKey"));
    }
    if (rsa && enc) {
        json_array_append_new(ops, json_string("encrypt"));
        json_array_append_new(ops, json_string("decrypt"));
    }
    out = json_dumps(ops, JSON_COMPACT);
    json_decref(ops);
    return out;
}

/* The secret value: PKCS#12 (std base64) or PEM, with the private key when exportable. */
static kv_rv vd_secret_value_for(const vd_cert_build *b, const char *ct, bool exportable,
                                 char **out, size_t *outlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PKCS12 *p12 = NULL;
    BUF_MEM *mem = NULL;
    unsigned char *der = NULL;
    int i, len;
    kv_rv rv = KV_ERR_INTERNAL;

    *out = NULL;
    if (bio == NULL)
        return KV_ERR_NOMEM;
    if (strcmp(ct, VD_CT_PEM) == 0) {
        if (exportable && !PEM_write_bio_PrivateKey(bio, b->pkey, NULL, NULL, 0, NULL, NULL))
            goto done;
        if (!PEM_write_bio_X509(bio, b->x509))
            goto done;
        for (i = 0; b->chain != NULL && i < sk_X509_num(b->chain); i++)
            if (!PEM_write_bio_X509(bio, sk_X509_value(b->chain, i)))
                goto done;
        BIO_get_mem_ptr(bio, &mem);
        *out = malloc(mem->length + 1);
        if (*out == NULL)
            goto done;
        memcpy(*out, mem->data, mem->length);
        (*out)[mem->length] = '\0';
        *outlen = mem->length;
        rv = KV_OK;
    } else {
        p12 = PKCS12_create(NULL, NULL, exportable ? b->pkey : NULL, b->x509, b->chain, -1, -1, 0,
                            1, 0);
        if (p12 == NULL)
            goto done;
        len = i2d_PKCS12(p12, &der);
        if (len <= 0)
            goto done;
        *out = kv_b64_encode(der, (size_t)len);
        if (*out == NULL)
            goto done;
        *outlen = strlen(*out);
        OPENSSL_cleanse(der, (size_t)len);
        rv = KV_OK;
    }
done:
    if (mem != NULL)
        OPENSSL_cleanse(mem->data, mem->length);
    OPENSSL_free(der);
    PKCS12_free(p12);
    BIO_free(bio);
    return rv;
}

/* Persists b as a new version of name: key (managed), secret (managed), certificate, policy.
 * Answers errors itself; true on success with *row filled. */
static bool vd_cert_persist(vd_req *r, const char *name, vd_cert_build *b, const char *pending,
                            vd_cert_row *row)
{
    const json_t *kp = json_object_get(b->policy, "key_props");
    const char *kty = json_string_value(json_object_get(kp, "kty"));
    const char *ct = json_string_value(
        json_object_get(json_object_get(b->policy, "secret_props"), "contentType"));
    vd_key_row key = {0};
    unsigned char *der = NULL, md[20];
    unsigned int mdlen = 0;
    char aad[400], *value = NULL, *ptext = NULL, *x5t = NULL;
    size_t vlen = 0, i;
    bool deleted = false, linked = false, ok = false;
    int len;
    kv_rv rv;

    memset(row, 0, sizeof(*row));
    if (vd_store_cert_is_deleted(r->store, r->vault.name, name, &deleted) != KV_OK)
        goto fail;
    if (deleted) {
        vd_cert_deleted_conflict(r, name);
        goto done;
    }
    if (b->version[0] == '\0' && vd_random_hex(b->version, 16) != KV_OK)
        goto fail;
    b->attrs.has_nbf = b->attrs.has_exp = true;
    b->attrs.nbf = vd_asn1_time(X509_get0_notBefore(b->x509));
    b->attrs.exp = vd_asn1_time(X509_get0_notAfter(b->x509));
    /* the key */
    snprintf(key.vault, sizeof(key.vault), "%s", r->vault.name);
    snprintf(key.name, sizeof(key.name), "%s", name);
    snprintf(key.version, sizeof(key.version), "%s", b->version);
    snprintf(key.kty, sizeof(key.kty), "%s", strncmp(kty, "RSA", 3) == 0 ? "RSA" : "EC");
    key.hsm = b->hsm_ref != NULL;
    key.created = key.updated = vd_now();
    key.enabled = b->attrs.enabled;
    key.has_nbf = key.has_exp = true;
    key.nbf = b->attrs.nbf;
    key.exp = b->attrs.exp;
    key.key_ops =
        vd_key_ops_for(json_object_get(json_object_get(b->policy, "x509_props"), "key_usage"),
                       strcmp(key.kty, "RSA") == 0);
    key.tags = b->tags ? strdup(b->tags) : NULL;
    snprintf(aad, sizeof(aad), "%s|%s|%s", key.vault, key.name, key.version);
    for (i = 0; aad[i] != '\0'; i++)
        aad[i] = (char)tolower((unsigned char)aad[i]);
    if (key.key_ops == NULL || vd_crypto_pub_der(b->pkey, &key.pub_der, &key.pub_len) != KV_OK)
        goto fail;
    if (b->hsm_ref != NULL) { /* the private key stays in the pool: only its reference */
        if (RAND_bytes(key.iv, sizeof(key.iv)) != 1 || (key.hsm_ref = strdup(b->hsm_ref)) == NULL)
            goto fail;
    } else if (vd_crypto_wrap_pkey(r->ctx->kek, aad, b->pkey, key.iv, &key.wrapped,
                                   &key.wrapped_len) != KV_OK) {
        goto fail;
    }
    if (vd_store_key_insert(r->store, &key) != KV_OK)
        goto fail;
    linked = true;
    if (vd_store_key_set_managed(r->store, r->vault.name, key.name, b->version) != KV_OK)
        goto fail;
    /* the secret */
    if (vd_secret_value_for(b, ct, json_is_true(json_object_get(kp, "exportable")), &value,
                            &vlen) != KV_OK)
        goto fail;
    rv = vd_secrets_store_managed(r, key.name, b->version, ct, (const uint8_t *)value, vlen,
                                  &b->attrs, b->tags);
    if (rv == KV_ERR_CONFLICT) {
        vd_reply_error(r, 409, "Conflict", "ObjectIsDeletedButRecoverable",
                       "A secret named %.127s is deleted but recoverable: its name cannot be "
                       "used for a certificate until it is recovered or purged.",
                       name);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    /* the certificate */
    snprintf(row->vault, sizeof(row->vault), "%s", r->vault.name);
    snprintf(row->name, sizeof(row->name), "%s", key.name);
    snprintf(row->version, sizeof(row->version), "%s", b->version);
    row->created = row->updated = key.created;
    row->enabled = b->attrs.enabled;
    row->has_nbf = row->has_exp = true;
    row->nbf = b->attrs.nbf;
    row->exp = b->attrs.exp;
    row->tags = b->tags ? strdup(b->tags) : NULL;
    len = i2d_X509(b->x509, &der);
    if (len <= 0 || !X509_digest(b->x509, EVP_sha1(), md, &mdlen) ||
        (x5t = kv_b64url_encode(md, mdlen)) == NULL)
        goto fail;
    snprintf(row->x5t, sizeof(row->x5t), "%s", x5t);
    row->cer = malloc((size_t)len);
    if (row->cer == NULL)
        goto fail;
    memcpy(row->cer, der, (size_t)len);
    row->cer_len = (size_t)len;
    rv = vd_store_cert_insert(r->store, row);
    if (rv == KV_ERR_CONFLICT) {
        vd_cert_deleted_conflict(r, name);
        goto done;
    }
    if (rv != KV_OK)
        goto fail;
    ptext = json_dumps(b->policy, JSON_COMPACT);
    if (ptext == NULL ||
        vd_store_cert_policy_put(r->store, r->vault.name, row->name, ptext, pending) != KV_OK)
        goto fail;
    ok = true;
    b->hsm_kept = b->hsm_ref != NULL;
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be stored.");
done:
    if (!ok && linked)
        vd_store_cert_unlink(r->store, r->vault.name, key.name, b->version);
    if (value != NULL)
        vd_free_secret(value, vlen);
    free(ptext);
    free(x5t);
    OPENSSL_free(der);
    vd_key_row_clear(&key);
    if (!ok)
        vd_cert_row_clear(row);
    return ok;
}

/* ---- JSON shapes ---- */

static void vd_cert_attrs_of(const vd_cert_row *row, vd_sc_attrs *a)
{
    a->enabled = row->enabled;
    a->has_nbf = row->has_nbf;
    a->nbf = row->nbf;
    a->has_exp = row->has_exp;
    a->exp = row->exp;
}

/* CertificateItem (list, versions); deleted rows add recoveryId and dates. */
static json_t *vd_cert_item(const vd_req *r, const vd_cert_row *row, bool versioned,
                            const vd_vault_info *info)
{
    vd_sc_attrs a;
    char id[600];
    json_t *o;

    vd_cert_attrs_of(row, &a);
    vd_obj_url(r, "certificates", row->name, versioned ? row->version : NULL, id, sizeof(id));
    o = json_pack("{s:s, s:s, s:o}", "id", id, "x5t", row->x5t, "attributes",
                  vd_sc_attrs_json(&a, row->created, row->updated, info));
    if (o == NULL)
        return NULL;
    vd_sc_set_tags(o, row->tags);
    if (row->deleted) {
        vd_obj_url(r, "deletedcertificates", row->name, NULL, id, sizeof(id));
        json_object_set_new(o, "recoveryId", json_string(id));
        json_object_set_new(o, "deletedDate", json_integer(row->deleted_date));
        json_object_set_new(o, "scheduledPurgeDate", json_integer(row->purge_date));
    }
    return o;
}

/* CertificateBundle: item + kid, sid, cer, policy, contentType. */
static json_t *vd_cert_bundle(const vd_req *r, const vd_cert_row *row, const vd_vault_info *info)
{
    json_t *o = vd_cert_item(r, row, true, info), *pol = NULL;
    char url[600], *cer, *ptext = NULL;

    if (o == NULL)
        return NULL;
    vd_obj_url(r, "certificates", row->name, row->version, url, sizeof(url));
    json_object_set_new(o, "id", json_string(url));
    vd_obj_url(r, "keys", row->name, row->version, url, sizeof(url));
    json_object_set_new(o, "kid", json_string(url));
    vd_obj_url(r, "secrets", row->name, row->version, url, sizeof(url));
    json_object_set_new(o, "sid", json_string(url));
    cer = kv_b64_encode(row->cer, row->cer_len);
    if (cer == NULL) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "cer", json_string(cer));
    free(cer);
    if (vd_store_cert_policy_get(r->store, r->vault.name, row->name, &ptext, NULL) == KV_OK)
        pol = vd_policy_out(r, row->name, ptext);
    if (pol != NULL) {
        json_object_set_new(
            o, "contentType",
            json_incref(json_object_get(json_object_get(pol, "secret_props"), "contentType")));
        json_object_set_new(o, "policy", pol);
    }
    free(ptext);
    return o;
}

static void vd_reply_cert(vd_req *r, const vd_cert_row *row, const vd_vault_info *info)
{
    json_t *b = vd_cert_bundle(r, row, info);

    if (b == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be read.");
    else
        vd_reply_json(r, 200, b);
}

void vd_certs_reply_bundle(vd_req *r, const vd_cert_row *row, const vd_vault_info *info)
{
    vd_reply_cert(r, row, info);
}

static bool vd_cert_load(vd_req *r, const char *name, const char *version, bool deleted,
                         vd_cert_row *row)
{
    kv_rv rv;

    if (!vd_sc_name_ok(name) || (version != NULL && strlen(version) >= VD_ID_MAX)) {
        if (deleted)
            vd_deleted_cert_not_found(r, name ? name : "");
        else
            vd_cert_not_found(r, name ? name : "", version);
        return false;
    }
    rv = vd_store_cert_get(r->store, r->vault.name, name, deleted ? NULL : version, deleted, row);
    if (rv == KV_ERR_NOT_FOUND) {
        if (deleted)
            vd_deleted_cert_not_found(r, name);
        else
            vd_cert_not_found(r, name, version);
        return false;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be read.");
        return false;
    }
    return true;
}

/* CertificateOperation from the stored pending JSON (its "_vd" internals removed); completed
 * ones carry the target. initial: the 202 answer of a create, always inProgress. */
static json_t *vd_cert_operation(const vd_req *r, const char *name, const char *pending,
                                 bool initial)
{
    json_t *op = json_loads(pending, 0, NULL);
    const char *st;
    char url[600];
    bool completed;

    if (op == NULL)
        return NULL;
    json_object_del(op, "_vd");
    st = json_string_value(json_object_get(op, "status"));
    completed = !initial && (st == NULL || strcmp(st, "completed") == 0);
    vd_obj_url(r, "certificates", name, "pending", url, sizeof(url));
    json_object_set_new(op, "id", json_string(url));
    if (!json_is_boolean(json_object_get(op, "cancellation_requested")))
        json_object_set_new(op, "cancellation_requested", json_false());
    if (initial || st == NULL)
        json_object_set_new(op, "status", json_string(completed ? "completed" : "inProgress"));
    if (completed) {
        vd_obj_url(r, "certificates", name, NULL, url, sizeof(url));
        json_object_set_new(op, "target", json_string(url));
    } else if (initial || (st != NULL && strcmp(st, "inProgress") == 0)) {
        json_object_set_new(op, "status_details",
                            json_string("Pending certificate created. Certificate request is in "
                                        "progress. This may take some time based on the issuer "
                                        "provider. Please check again later."));
    }
    return op;
}

/* ---- create / import ---- */

static bool vd_cert_common_body(vd_req *r, json_t *body, vd_cert_build *b)
{
    const json_t *attrs = json_object_get(body, "attributes");

    b->attrs.enabled = true;
    if (!vd_sc_parse_attrs(r, attrs, &b->attrs) ||
        !vd_sc_parse_tags(r, json_object_get(body, "tags"), &b->tags))
        return false;
    b->attrs.has_nbf = b->attrs.has_exp = false; /* validity comes from the certificate */
    return true;
}

/* key_props.reuse_key: the private key of the latest certificate version, if it has the
 * policy's type, size / curve and protection (an HSM key is reused by its pool reference:
 * b->hsm_ref, b->pkey = its public key). KV_ERR_NOT_FOUND when there is none to reuse. */
static kv_rv vd_reuse_key(vd_req *r, const char *name, const json_t *kp, vd_cert_build *b)
{
    vd_cert_row cert = {0};
    vd_key_row key = {0};
    EVP_PKEY *pkey = NULL;
    const char *kty = json_string_value(json_object_get(kp, "kty"));
    char aad[400];
    bool fits;
    size_t i;
    kv_rv rv;

    rv = vd_store_cert_get(r->store, r->vault.name, name, NULL, false, &cert);
    if (rv == KV_OK)
        rv = vd_store_key_get(r->store, r->vault.name, cert.name, cert.version, &key);
    if (rv != KV_OK || (key.hsm_ref != NULL) != vd_certs_kty_is_hsm(kty))
        goto done;
    if (key.hsm_ref != NULL) {
        rv = vd_crypto_pub_from_der(key.pub_der, key.pub_len, &pkey);
    } else if (key.wrapped == NULL) {
        rv = KV_ERR_NOT_FOUND;
    } else {
        snprintf(aad, sizeof(aad), "%s|%s|%s", key.vault, key.name, key.version);
        for (i = 0; aad[i] != '\0'; i++)
            aad[i] = (char)tolower((unsigned char)aad[i]);
        rv = vd_crypto_unwrap_pkey(r->ctx->kek, aad, key.iv, key.wrapped, key.wrapped_len, &pkey);
    }
    if (rv != KV_OK)
        goto done;
    if (strncmp(kty, "RSA", 3) == 0)
        fits = EVP_PKEY_is_a(pkey, "RSA") &&
               EVP_PKEY_get_bits(pkey) == json_integer_value(json_object_get(kp, "key_size"));
    else
        fits = EVP_PKEY_is_a(pkey, "EC") &&
               vd_crypto_curve_nid(pkey) ==
                   kv_curve_nid_from_name(json_string_value(json_object_get(kp, "crv")));
    if (fits && key.hsm_ref != NULL && (b->hsm_ref = strdup(key.hsm_ref)) == NULL)
        fits = false;
    if (fits) {
        b->pkey = pkey;
        b->hsm_new = false; /* the older version's key row keeps owning the pool object */
        pkey = NULL;
    } else {
        rv = KV_ERR_NOT_FOUND;
    }
done:
    EVP_PKEY_free(pkey);
    vd_key_row_clear(&key);
    vd_cert_row_clear(&cert);
    return rv == KV_OK ? KV_OK : KV_ERR_NOT_FOUND;
}

/* Issuer Unknown: the key waits, sealed under the KEK inside the pending operation, for the
 * certificate signed elsewhere from the CSR (merge). csr: made by vd_make_csr on the work pool
 * (NULL with err its failure). Answers 202 itself. */
static void vd_create_unknown(vd_req *r, const char *name, vd_cert_build *b, const char *csr,
                              const kv_err *err)
{
    uint8_t iv[12], *wrapped = NULL;
    size_t wlen = 0;
    char guid[37], aad[400], *iv64 = NULL, *key64 = NULL, *ptext = NULL, *pending = NULL;
    json_t *op = NULL, *vd = NULL;
    bool deleted = false;

    if (vd_store_cert_is_deleted(r->store, r->vault.name, name, &deleted) != KV_OK)
        goto fail;
    if (deleted) {
        vd_cert_deleted_conflict(r, name);
        goto done;
    }
    if (csr == NULL && err->rv != KV_OK) {
        vd_certs_hsm_reply_err(r, err, "The CSR could not be signed in the HSM pool");
        goto done;
    }
    if (csr == NULL) {
        vd_bad(r, "x509_props.subject is not a valid X.500 name (e.g. \"CN=name, O=org\").");
        goto done;
    }
    if (vd_guid(guid) != KV_OK)
        goto fail;
    vd_sc_aad("pending", r->vault.name, name, guid, aad, sizeof(aad));
    if (b->hsm_ref != NULL) /* HSM key: the pending operation keeps its pool reference */
        vd = json_pack("{s:s, s:s, s:b}", "hsm_ref", b->hsm_ref, "version", b->version, "enabled",
                       b->attrs.enabled);
    else if (vd_crypto_wrap_pkey(r->ctx->kek, aad, b->pkey, iv, &wrapped, &wlen) != KV_OK ||
             (iv64 = kv_b64url_encode(iv, sizeof(iv))) == NULL ||
             (key64 = kv_b64url_encode(wrapped, wlen)) == NULL)
        goto fail;
    else
        vd = json_pack("{s:s, s:s, s:b}", "iv", iv64, "key", key64, "enabled", b->attrs.enabled);
    if (vd != NULL && b->tags != NULL)
        json_object_set_new(vd, "tags", json_string(b->tags));
    op = json_pack("{s:{s:s}, s:s, s:s, s:s, s:b, s:o}", "issuer", "name", "Unknown", "csr", csr,
                   "request_id", guid, "status", "inProgress", "cancellation_requested", 0, "_vd",
                   vd);
    vd = NULL;
    pending = op ? json_dumps(op, JSON_COMPACT) : NULL;
    ptext = json_dumps(b->policy, JSON_COMPACT);
    if (pending == NULL || ptext == NULL ||
        vd_store_cert_policy_put(r->store, r->vault.name, name, ptext, pending) != KV_OK)
        goto fail;
    b->hsm_kept = b->hsm_ref != NULL;
    vd_reply_json(r, 202, vd_cert_operation(r, name, pending, true));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be created.");
done:
    json_decref(vd);
    json_decref(op);
    free(iv64);
    free(key64);
    free(wrapped);
    free(ptext);
    free(pending);
}

/* A certificate version being created: the key generation (software, or C_GenerateKeyPair in
 * the HSM pool; RSA-4096 takes a second or more), the self-signed certificate and the CSR are
 * made on a work-pool thread; the store writes and the reply happen in vd_certjob_done on the
 * request's event thread (vd_workpool.h). */
typedef enum vd_certjob_stage {
    VD_CJ_KEY,  /* generating the key */
    VD_CJ_SIGN, /* the self-signed certificate */
    VD_CJ_CSR,  /* the CSR */
    VD_CJ_OK,   /* everything made */
} vd_certjob_stage;

typedef struct vd_certjob {
    vd_ctx *ctx;
    vd_cert_build b;
    char vault[VD_ID_MAX], name[VD_NAME_MAX];
    bool gen_hsm, gen_soft; /* the key is to be made (else reused: b.pkey set) */
    bool unknown;           /* issuer Unknown: CSR only */
    vd_certjob_stage stage; /* where the work stopped */
    kv_rv rv;               /* that step's result */
    kv_err err;             /* an HSM pool failure (err.rv != KV_OK) */
    char *csr;
} vd_certjob;

static void vd_certjob_free(vd_certjob *j)
{
    if (j == NULL)
        return;
    vd_cert_build_clear(j->ctx, &j->b);
    free(j->csr);
    free(j);
}

/* Pool thread: CPU and HSM work only (no store, no reply). Always KV_OK: the outcome is in
 * j->stage / j->rv / j->err (KV_ERR_SERVER in done thus means the job was cancelled). */
static kv_rv vd_certjob_work(void *arg)
{
    vd_certjob *j = arg;
    const json_t *kp = json_object_get(j->b.policy, "key_props");
    const char *kty = json_string_value(json_object_get(kp, "kty"));

    kv_err_clear(&j->err);
    j->stage = VD_CJ_KEY;
    j->rv = KV_OK;
    if (j->gen_hsm)
        j->rv = vd_certs_hsm_generate(j->ctx, kp, j->vault, j->name, j->b.version, &j->b.hsm_ref,
                                      &j->b.pkey, &j->err);
    else if (j->gen_soft)
        j->rv = strncmp(kty, "RSA", 3) == 0
                    ? vd_crypto_generate("RSA",
                                         (int)json_integer_value(json_object_get(kp, "key_size")),
                                         NID_undef, &j->b.pkey)
                    : vd_crypto_generate(
                          "EC", 0,
                          kv_curve_nid_from_name(json_string_value(json_object_get(kp, "crv"))),
                          &j->b.pkey);
    if (j->rv != KV_OK)
        return KV_OK;
    if (!j->unknown) {
        j->stage = VD_CJ_SIGN;
        j->rv = vd_make_self_signed(j->ctx, &j->b, &j->err);
        if (j->rv != KV_OK)
            return KV_OK;
    }
    j->stage = VD_CJ_CSR;
    j->csr = vd_make_csr(j->ctx, &j->b, &j->err);
    if (j->csr == NULL) {
        j->rv = j->err.rv != KV_OK ? j->err.rv : KV_ERR_INVALID_ARG;
        if (!j->unknown) /* vd_create_unknown tells its CSR failures itself */
            return KV_OK;
    }
    j->stage = VD_CJ_OK;
    return KV_OK;
}

/* Event thread: answers a failed step of the work; false when there was none. */
static bool vd_certjob_failed(vd_req *r, vd_certjob *j)
{
    if (j->stage == VD_CJ_KEY && j->rv != KV_OK) {
        if (j->gen_hsm)
            vd_certs_hsm_reply_err(r, &j->err, "The certificate's HSM key could not be created");
        else
            vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be generated.");
        return true;
    }
    if (j->stage == VD_CJ_SIGN) {
        if (j->err.rv != KV_OK)
            vd_certs_hsm_reply_err(r, &j->err,
                                   "The certificate could not be signed in the HSM pool");
        else if (j->rv == KV_ERR_INVALID_ARG)
            vd_bad(r, "x509_props.subject is not a valid X.500 name (e.g. \"CN=name, O=org\").");
        else
            vd_reply_error(r, 500, "InternalServerError", NULL,
                           "The certificate could not be created.");
        return true;
    }
    if (j->stage == VD_CJ_CSR) {
        if (j->err.rv != KV_OK)
            vd_certs_hsm_reply_err(r, &j->err, "The CSR could not be signed in the HSM pool");
        else
            vd_reply_error(r, 500, "InternalServerError", NULL,
                           "The certificate could not be created.");
        return true;
    }
    return false;
}

static void vd_certjob_done(vd_req *r, void *arg, kv_rv rv)
{
    vd_certjob *j = arg;
    vd_cert_row row = {0};
    json_t *op = NULL;
    char *pending = NULL, guid[37];

    if (rv != KV_OK) /* cancelled at shutdown */
        goto fail;
    if (vd_certjob_failed(r, j))
        goto done;
    if (j->unknown) {
        vd_create_unknown(r, j->name, &j->b, j->csr, &j->err);
        goto done;
    }
    if (vd_guid(guid) != KV_OK)
        goto fail;
    op = json_pack("{s:{s:s}, s:s, s:s, s:s}", "issuer", "name", "Self", "csr", j->csr,
                   "request_id", guid, "status", "completed");
    pending = op ? json_dumps(op, JSON_COMPACT) : NULL;
    if (pending == NULL)
        goto fail;
    if (!vd_cert_persist(r, j->name, &j->b, pending, &row))
        goto done;
    json_decref(op);
    op = vd_cert_operation(r, row.name, pending, true);
    if (op == NULL)
        goto fail;
    vd_reply_json(r, 202, op);
    op = NULL;
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be created.");
done:
    json_decref(op);
    free(pending);
    vd_cert_row_clear(&row);
    vd_certjob_free(j);
}

void vd_certs_create(vd_req *r, const char *name, const char *version)
{
    vd_certjob *j = calloc(1, sizeof(*j));
    vd_vault_info info;
    json_t *body = NULL, *kp;
    const char *kty;
    kv_rv rv;

    (void)version;
    if (j == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The certificate could not be created.");
        return;
    }
    j->ctx = r->ctx;
    if (!vd_sc_vault_only(r, &info))
        goto done;
    if (!vd_sc_name_ok(name)) {
        vd_bad(r, "The certificate name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL || !vd_cert_common_body(r, body, &j->b) ||
        !vd_policy_normalize(r, json_object_get(body, "policy"), true, &j->b.policy))
        goto done;
    if (json_object_get(body, "policy") == NULL) {
        vd_bad(r, "The parameter policy is missing.");
        goto done;
    }
    kp = json_object_get(j->b.policy, "key_props");
    kty = json_string_value(json_object_get(kp, "kty"));
    rv = json_is_true(json_object_get(kp, "reuse_key")) ? vd_reuse_key(r, name, kp, &j->b)
                                                        : KV_ERR_NOT_FOUND;
    if (rv != KV_OK && vd_certs_kty_is_hsm(kty)) {
        /* the key is made in the HSM pool, under the version it will have */
        if (vd_random_hex(j->b.version, 16) != KV_OK) {
            vd_reply_error(r, 500, "InternalServerError", NULL,
                           "The certificate could not be created.");
            goto done;
        }
        j->b.hsm_new = true;
        j->gen_hsm = true;
    } else if (rv != KV_OK) {
        j->gen_soft = true;
    }
    j->unknown =
        strcmp(json_string_value(json_object_get(json_object_get(j->b.policy, "issuer"), "name")),
               "Unknown") == 0;
    snprintf(j->vault, sizeof(j->vault), "%s", r->vault.name);
    snprintf(j->name, sizeof(j->name), "%s", name);
    json_decref(body);
    vd_req_defer(r, vd_certjob_work, vd_certjob_done, j); /* answers; frees j */
    return;
done:
    vd_certjob_free(j);
    json_decref(body);
}

/* Parses the import value (PEM text or std-base64 PKCS#12) into b->pkey, b->x509, b->chain.
 * *is_pem tells which it was. false after answering 400. */
static bool vd_parse_import(vd_req *r, const char *value, const char *pwd, vd_cert_build *b,
                            bool *is_pem)
{
    BIO *bio = NULL;
    PKCS12 *p12 = NULL;
    uint8_t *der = NULL;
    size_t derlen = 0;
    X509 *x;
    bool ok = false;

    *is_pem = strstr(value, "-----BEGIN") != NULL;
    if (*is_pem) {
        bio = BIO_new_mem_buf(value, -1);
        if (bio == NULL)
            goto done;
        b->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(pwd ? pwd : ""));
        BIO_free(bio);
        bio = BIO_new_mem_buf(value, -1);
        b->chain = sk_X509_new_null();
        if (bio == NULL || b->chain == NULL)
            goto done;
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (b->x509 == NULL)
                b->x509 = x;
            else if (!sk_X509_push(b->chain, x)) {
                X509_free(x);
                goto done;
            }
        }
        if (b->x509 == NULL) {
            vd_bad(r, "The specified PEM X.509 certificate content is in an unexpected format. "
                      "Please check if certificate is in valid PEM format.");
            goto done;
        }
    } else {
        if (kv_b64_decode(value, &der, &derlen) != KV_OK ||
            (bio = BIO_new_mem_buf(der, (int)derlen)) == NULL ||
            (p12 = d2i_PKCS12_bio(bio, NULL)) == NULL) {
            vd_bad(r, "The specified PKCS#12 X.509 certificate content is in an unexpected "
                      "format: give a base64-encoded PFX or PEM text.");
            goto done;
        }
        if (!PKCS12_parse(p12, pwd, &b->pkey, &b->x509, &b->chain)) {
            vd_bad(r, "The specified PKCS#12 X.509 certificate content can not be read. Please "
                      "check if certificate is in valid PKCS#12 format and the password is "
                      "correct.");
            goto done;
        }
    }
    if (b->pkey == NULL || b->x509 == NULL) {
        vd_bad(r, "Private key is not specified in the specified X.509 PEM/PFX.");
        goto done;
    }
    if (X509_check_private_key(b->x509, b->pkey) != 1) {
        vd_bad(r, "The private key does not match the certificate's public key.");
        goto done;
    }
    ok = true;
done:
    ERR_clear_error();
    if (der != NULL)
        vd_free_secret(der, derlen);
    PKCS12_free(p12);
    BIO_free(bio);
    return ok;
}

/* The policy an imported certificate implies (subject, sans, key usage, validity, key). */
static json_t *vd_policy_from_cert(const vd_cert_build *b, bool is_pem)
{
    json_t *p, *kp, *xp, *sans, *dns, *emails, *upns, *ku;
    GENERAL_NAMES *gens;
    ASN1_BIT_STRING *usage;
    char subj[1024] = "";
    BIO *bio = BIO_new(BIO_s_mem());
    int i, nid = vd_crypto_curve_nid(b->pkey), len;
    long long months;

    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(b->x509), 0, XN_FLAG_RFC2253) >= 0) {
        len = BIO_read(bio, subj, sizeof(subj) - 1);
        subj[len > 0 ? len : 0] = '\0';
    }
    BIO_free(bio);
    if (EVP_PKEY_is_a(b->pkey, "RSA"))
        kp = json_pack("{s:s, s:i}", "kty", "RSA", "key_size", EVP_PKEY_get_bits(b->pkey));
    else
        kp = json_pack("{s:s, s:s?}", "kty", "EC", "crv", kv_curve_name_from_nid(nid));
    dns = json_array();
    emails = json_array();
    upns = json_array();
    gens = X509_get_ext_d2i(b->x509, NID_subject_alt_name, NULL, NULL);
    for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        int type;
        void *val = GENERAL_NAME_get0_value(gn, &type);

        if (type == GEN_DNS || type == GEN_EMAIL) {
            json_array_append_new(type == GEN_DNS ? dns : emails,
                                  json_stringn((const char *)ASN1_STRING_get0_data(val),
                                               (size_t)ASN1_STRING_length(val)));
        } else if (type == GEN_OTHERNAME) {
            ASN1_OBJECT *oid = NULL;
            ASN1_TYPE *v = NULL;

            if (GENERAL_NAME_get0_otherName(gn, &oid, &v) && OBJ_obj2nid(oid) == NID_ms_upn &&
                v->type == V_ASN1_UTF8STRING)
                json_array_append_new(
                    upns, json_stringn((const char *)ASN1_STRING_get0_data(v->value.utf8string),
                                       (size_t)ASN1_STRING_length(v->value.utf8string)));
        }
    }
    GENERAL_NAMES_free(gens);
    sans = json_object();
    if (json_array_size(dns))
        json_object_set(sans, "dns_names", dns);
    if (json_array_size(emails))
        json_object_set(sans, "emails", emails);
    if (json_array_size(upns))
        json_object_set(sans, "upns", upns);
    json_decref(dns);
    json_decref(emails);
    json_decref(upns);
    ku = json_array();
    usage = X509_get_ext_d2i(b->x509, NID_key_usage, NULL, NULL);
    for (i = 0; usage != NULL && i < 9; i++)
        if (ASN1_BIT_STRING_get_bit(usage, i))
            json_array_append_new(ku, json_string(vd_key_usages[i]));
    ASN1_BIT_STRING_free(usage);
    months = (vd_asn1_time(X509_get0_notAfter(b->x509)) -
              vd_asn1_time(X509_get0_notBefore(b->x509)) + 15 * 86400) /
             (30 * 86400LL);
    if (months < 1)
        months = 1;
    if (months > 1200)
        months = 1200;
    xp = json_pack("{s:s, s:o, s:o, s:I}", "subject", subj, "sans", sans, "key_usage", ku,
                   "validity_months", (json_int_t)months);
    p = json_pack("{s:o, s:{s:s}, s:o, s:{s:s}}", "key_props", kp, "secret_props", "contentType",
                  is_pem ? VD_CT_PEM : VD_CT_PKCS12, "x509_props", xp, "issuer", "name", "Unknown");
    return p;
}

/* Merges the request's policy sections over base (one level deep). */
static void vd_policy_merge(json_t *base, const json_t *over)
{
    const char *k;
    json_t *v;

    if (!json_is_object(over))
        return;
    json_object_foreach((json_t *)over, k, v)
    {
        json_t *cur = json_object_get(base, k);

        if (json_is_null(v))
            continue;
        if (json_is_object(v) && json_is_object(cur))
            json_object_update(cur, v);
        else
            json_object_set(base, k, v);
    }
}

/* Import with key_props.kty RSA-HSM / EC-HSM: the private key becomes a sensitive key in the
 * HSM pool (kv_hsm_import_pkey) and b->pkey is replaced by the public key; nothing of the
 * private key stays in vaultd. false after answering. */
static bool vd_import_into_pool(vd_req *r, const char *name, vd_cert_build *b)
{
    uint8_t *der = NULL;
    size_t len = 0;
    EVP_PKEY *pub = NULL;
    kv_err err;

    if (vd_random_hex(b->version, 16) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The certificate could not be imported.");
        return false;
    }
    b->hsm_new = true;
    if (vd_certs_hsm_import(r->ctx, b->pkey, r->vault.name, name, b->version, &b->hsm_ref, &err) !=
        KV_OK) {
        vd_certs_hsm_reply_err(r, &err,
                               "The certificate's key could not be imported into the "
                               "HSM pool");
        return false;
    }
    if (vd_crypto_pub_der(b->pkey, &der, &len) != KV_OK ||
        vd_crypto_pub_from_der(der, len, &pub) != KV_OK) {
        free(der);
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The certificate could not be imported.");
        return false;
    }
    free(der);
    EVP_PKEY_free(b->pkey);
    b->pkey = pub;
    return true;
}

void vd_certs_import(vd_req *r, const char *name, const char *version)
{
    vd_cert_build b = {0};
    vd_cert_row row = {0};
    vd_vault_info info;
    json_t *body = NULL, *derived = NULL, *kp;
    const json_t *v, *pw;
    bool is_pem = false, hsm;

    (void)version;
    if (!vd_sc_vault_only(r, &info))
        goto done;
    if (!vd_sc_name_ok(name)) {
        vd_bad(r, "The certificate name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL || !vd_cert_common_body(r, body, &b))
        goto done;
    v = json_object_get(body, "value");
    pw = json_object_get(body, "pwd");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        vd_bad(r, "The parameter value is missing.");
        goto done;
    }
    if (pw != NULL && !json_is_null(pw) && !json_is_string(pw)) {
        vd_bad(r, "The parameter pwd must be a string.");
        goto done;
    }
    if (!vd_parse_import(r, json_string_value(v), json_string_value(pw), &b, &is_pem))
        goto done;
    if (!EVP_PKEY_is_a(b.pkey, "RSA") && !EVP_PKEY_is_a(b.pkey, "EC")) {
        vd_bad(r, "The certificate's key must be RSA or EC.");
        goto done;
    }
    derived = vd_policy_from_cert(&b, is_pem);
    if (derived == NULL)
        goto fail;
    if (json_is_object(json_object_get(body, "policy"))) {
        json_t *pol = json_deep_copy(json_object_get(body, "policy"));

        vd_drop_nulls(pol);
        /* the key is what was imported, whatever the policy says */
        kp = json_object_get(pol, "key_props");
        if (json_is_object(kp)) {
            json_object_del(kp, "kty");
            json_object_del(kp, "key_size");
            json_object_del(kp, "crv");
        }
        vd_policy_merge(derived, pol);
        json_decref(pol);
    }
    hsm = vd_certs_kty_is_hsm(json_string_value(
        json_object_get(json_object_get(json_object_get(body, "policy"), "key_props"), "kty")));
    if (hsm) /* the imported key goes into the HSM pool */
        json_object_set_new(json_object_get(derived, "key_props"), "kty",
                            json_string(EVP_PKEY_is_a(b.pkey, "RSA") ? "RSA-HSM" : "EC-HSM"));
    if (!vd_policy_normalize(r, derived, false, &b.policy))
        goto done;
    if (hsm && !vd_import_into_pool(r, name, &b))
        goto done;
    if (!vd_cert_persist(r, name, &b, NULL, &row))
        goto done;
    vd_reply_cert(r, &row, &info);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be imported.");
done:
    json_decref(derived);
    vd_cert_row_clear(&row);
    vd_cert_build_clear(r->ctx, &b);
    vd_sc_json_wipe(body, "value");
    vd_sc_json_wipe(body, "pwd");
    json_decref(body);
}

/* ---- pending ---- */

typedef enum { VD_PENDING_GET, VD_PENDING_DELETE, VD_PENDING_CANCEL } vd_pending_action;

/* Loads the pending operation of name into *op (parsed, internals kept) and the policy text;
 * false after answering 404 PendingCertificateNotFound / 500. */
static bool vd_pending_load(vd_req *r, const char *name, json_t **op, char **policy)
{
    char *pending = NULL;
    kv_rv rv;

    *op = NULL;
    *policy = NULL;
    rv = vd_sc_name_ok(name)
             ? vd_store_cert_policy_get(r->store, r->vault.name, name, policy, &pending)
             : KV_ERR_NOT_FOUND;
    if (rv == KV_OK && pending == NULL)
        rv = KV_ERR_NOT_FOUND;
    if (rv == KV_OK && (*op = json_loads(pending, 0, NULL)) == NULL)
        rv = KV_ERR_INTERNAL;
    free(pending);
    if (rv == KV_OK)
        return true;
    free(*policy);
    *policy = NULL;
    if (rv == KV_ERR_NOT_FOUND)
        vd_reply_error(r, 404, "PendingCertificateNotFound", NULL,
                       "Pending certificate not found: %.127s", name ? name : "");
    else
        vd_reply_error(r, 500, "InternalServerError", NULL, "The operation could not be read.");
    return false;
}

static void vd_pending(vd_req *r, const char *name, vd_pending_action action)
{
    vd_vault_info info;
    char *policy = NULL, *text = NULL;
    json_t *op = NULL, *body = NULL, *v;
    kv_rv rv = KV_OK;

    if (!vd_sc_vault_only(r, &info) || !vd_pending_load(r, name, &op, &policy))
        goto done;
    if (action == VD_PENDING_CANCEL) {
        body = vd_req_json_body(r);
        if (body == NULL)
            goto done;
        v = json_object_get(body, "cancellation_requested");
        if (!json_is_boolean(v)) {
            vd_bad(r, "The parameter cancellation_requested must be a boolean.");
            goto done;
        }
        if (json_is_true(v) &&
            strcmp(json_string_value(json_object_get(op, "status")) ?: "", "inProgress") == 0) {
            json_object_set_new(op, "cancellation_requested", json_true());
            json_object_set_new(op, "status", json_string("cancelled"));
            vd_certs_hsm_destroy(
                r->ctx, json_string_value(json_object_get(json_object_get(op, "_vd"), "hsm_ref")));
            json_object_del(op, "_vd"); /* the waiting key is discarded */
        }
        text = json_dumps(op, JSON_COMPACT);
        rv = text ? vd_store_cert_policy_put(r->store, r->vault.name, name, policy, text)
                  : KV_ERR_NOMEM;
    } else if (action == VD_PENDING_DELETE) {
        rv = vd_store_cert_pending_clear(r->store, r->vault.name, name);
        if (rv == KV_OK)
            vd_certs_hsm_destroy(
                r->ctx, json_string_value(json_object_get(json_object_get(op, "_vd"), "hsm_ref")));
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The operation could not be saved.");
        goto done;
    }
    free(text);
    text = json_dumps(op, JSON_COMPACT);
    v = text ? vd_cert_operation(r, name, text, false) : NULL;
    if (v == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The operation could not be read.");
    else
        vd_reply_json(r, 200, v);
done:
    free(policy);
    free(text);
    json_decref(op);
    json_decref(body);
}

/* POST /certificates/{n}/pending/merge {x5c: [std base64 DER, leaf first], attributes?, tags?}:
 * completes an issuer-Unknown request with the certificate signed from its CSR. 201. */
void vd_certs_merge(vd_req *r, const char *name, const char *version)
{
    vd_cert_build b = {0};
    vd_cert_row row = {0};
    vd_vault_info info;
    json_t *op = NULL, *body = NULL, *vd, *x5c, *v;
    const char *st, *rid;
    char *policy = NULL, *done_text = NULL, aad[400];
    uint8_t *iv = NULL, *wrapped = NULL, *der = NULL;
    size_t ivlen = 0, wlen = 0, derlen = 0, i;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_pending_load(r, name, &op, &policy))
        goto done;
    st = json_string_value(json_object_get(op, "status"));
    vd = json_object_get(op, "_vd");
    rid = json_string_value(json_object_get(op, "request_id"));
    if (st == NULL || strcmp(st, "inProgress") != 0 || !json_is_object(vd) || rid == NULL) {
        vd_reply_error(r, 404, "PendingCertificateNotFound", NULL,
                       "Pending certificate not found: %.127s (no request waits for a merge)",
                       name);
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    x5c = json_object_get(body, "x5c");
    if (!json_is_array(x5c) || json_array_size(x5c) == 0 || json_array_size(x5c) > 10) {
        vd_bad(r, "The parameter x5c must be an array of base64 DER certificates, leaf first.");
        goto done;
    }
    b.chain = sk_X509_new_null();
    if (b.chain == NULL)
        goto fail;
    json_array_foreach(x5c, i, v)
    {
        const unsigned char *p;
        X509 *x;

        free(der);
        der = NULL;
        if (!json_is_string(v) || kv_b64_decode(json_string_value(v), &der, &derlen) != KV_OK ||
            (p = der, x = d2i_X509(NULL, &p, (long)derlen)) == NULL) {
            vd_bad(r, "The parameter x5c must be an array of base64 DER certificates, leaf "
                      "first.");
            goto done;
        }
        if (i == 0)
            b.x509 = x;
        else if (!sk_X509_push(b.chain, x)) {
            X509_free(x);
            goto fail;
        }
    }
    vd_sc_aad("pending", r->vault.name, name, rid, aad, sizeof(aad));
    if (json_is_string(json_object_get(vd, "hsm_ref"))) {
        /* HSM key waiting in the pool; the pending operation owned it, the key row will */
        kv_err err;

        b.hsm_ref = strdup(json_string_value(json_object_get(vd, "hsm_ref")));
        snprintf(b.version, sizeof(b.version), "%s",
                 json_string_value(json_object_get(vd, "version")) ?: "");
        if (b.hsm_ref == NULL || b.version[0] == '\0')
            goto fail;
        if (vd_certs_hsm_public(r->ctx, b.hsm_ref, &b.pkey, &err) != KV_OK) {
            vd_certs_hsm_reply_err(r, &err, "The certificate could not be merged");
            goto done;
        }
        if (EVP_PKEY_eq(X509_get0_pubkey(b.x509), b.pkey) != 1) {
            ERR_clear_error();
            vd_bad(r, "Public key from x509 certificate and key of this instance doesn't match.");
            goto done;
        }
    } else if (kv_b64_decode(json_string_value(json_object_get(vd, "iv")) ?: "", &iv, &ivlen) !=
                   KV_OK ||
               ivlen != 12 ||
               kv_b64_decode(json_string_value(json_object_get(vd, "key")) ?: "", &wrapped,
                             &wlen) != KV_OK ||
               vd_crypto_unwrap_pkey(r->ctx->kek, aad, iv, wrapped, wlen, &b.pkey) != KV_OK) {
        goto fail;
    } else if (X509_check_private_key(b.x509, b.pkey) != 1) {
        ERR_clear_error();
        vd_bad(r, "Public key from x509 certificate and key of this instance doesn't match.");
        goto done;
    }
    b.policy = json_loads(policy, 0, NULL);
    if (b.policy == NULL)
        goto fail;
    b.attrs.enabled = json_is_true(json_object_get(vd, "enabled"));
    if (json_is_string(json_object_get(vd, "tags")))
        b.tags = strdup(json_string_value(json_object_get(vd, "tags")));
    if (!vd_sc_parse_attrs(r, json_object_get(body, "attributes"), &b.attrs) ||
        !vd_sc_parse_tags(r, json_object_get(body, "tags"), &b.tags))
        goto done;
    b.attrs.has_nbf = b.attrs.has_exp = false;
    json_object_del(op, "_vd");
    json_object_set_new(op, "status", json_string("completed"));
    done_text = json_dumps(op, JSON_COMPACT);
    if (done_text == NULL)
        goto fail;
    if (!vd_cert_persist(r, name, &b, done_text, &row))
        goto done;
    v = vd_cert_bundle(r, &row, &info);
    if (v == NULL)
        goto fail;
    vd_reply_json(r, 201, v);
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be merged.");
done:
    free(der);
    free(iv);
    free(wrapped);
    free(policy);
    free(done_text);
    json_decref(op);
    json_decref(body);
    vd_cert_row_clear(&row);
    vd_cert_build_clear(r->ctx, &b);
}

void vd_certs_pending_get(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_pending(r, name, VD_PENDING_GET);
}

void vd_certs_pending_delete(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_pending(r, name, VD_PENDING_DELETE);
}

void vd_certs_pending_cancel(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_pending(r, name, VD_PENDING_CANCEL);
}

/* ---- get / list / versions / update / policy ---- */

void vd_certs_get(vd_req *r, const char *name, const char *version)
{
    vd_cert_row row = {0};
    vd_vault_info info;

    if (vd_sc_vault_only(r, &info) && vd_cert_load(r, name, version, false, &row))
        vd_reply_cert(r, &row, &info);
    vd_cert_row_clear(&row);
}

/* ---- listing and versions (vd_sc_common.c's pager over the certificate store) ---- */

static kv_rv vd_cert_pg_list(vd_req *r, const char *after, bool deleted, size_t limit, void **rows,
                             size_t *n)
{
    return vd_store_cert_list(r->store, r->vault.name, after, deleted, limit, (vd_cert_row **)rows,
                              n);
}

static kv_rv vd_cert_pg_versions(vd_req *r, const char *name, long long after_seq, size_t limit,
                                 void **rows, size_t *n)
{
    return vd_store_cert_versions(r->store, r->vault.name, name, after_seq, limit,
                                  (vd_cert_row **)rows, n);
}

static json_t *vd_cert_pg_item(const vd_req *r, const void *rows, size_t i, bool versioned,
                               const vd_vault_info *info)
{
    return vd_cert_item(r, (const vd_cert_row *)rows + i, versioned, info);
}

static const char *vd_cert_pg_name(const void *rows, size_t i)
{
    return ((const vd_cert_row *)rows)[i].name;
}

static long long vd_cert_pg_seq(const void *rows, size_t i)
{
    return ((const vd_cert_row *)rows)[i].seq;
}

static void vd_cert_pg_free(void *rows, size_t n)
{
    vd_cert_rows_free(rows, n);
}

static void vd_cert_pg_not_found(vd_req *r, const char *name)
{
    vd_cert_not_found(r, name, NULL);
}

static const vd_sc_pager vd_cert_pager = {
    "certificates",  vd_cert_pg_list, vd_cert_pg_versions, vd_cert_pg_item,
    vd_cert_pg_name, vd_cert_pg_seq,  vd_cert_pg_free,     vd_cert_pg_not_found,
};

void vd_certs_list(vd_req *r, const char *name, const char *version)
{
    (void)name;
    (void)version;
    vd_sc_list_page(r, &vd_cert_pager, false);
}

void vd_certs_deleted_list(vd_req *r, const char *name, const char *version)
{
    (void)name;
    (void)version;
    vd_sc_list_page(r, &vd_cert_pager, true);
}

void vd_certs_versions(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_sc_versions_page(r, &vd_cert_pager, name);
}

void vd_certs_update(vd_req *r, const char *name, const char *version)
{
    vd_cert_row row = {0};
    vd_vault_info info;
    vd_sc_attrs a;
    json_t *body = NULL;

    if (!vd_sc_vault_only(r, &info) || !vd_cert_load(r, name, version, false, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    vd_cert_attrs_of(&row, &a);
    if (!vd_sc_parse_attrs(r, json_object_get(body, "attributes"), &a) ||
        !vd_sc_parse_tags(r, json_object_get(body, "tags"), &row.tags))
        goto done;
    row.enabled = a.enabled; /* nbf / exp follow the certificate and stay */
    row.updated = vd_now();
    if (vd_store_cert_update(r->store, &row) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The certificate could not be updated.");
        goto done;
    }
    vd_reply_cert(r, &row, &info);
done:
    vd_cert_row_clear(&row);
    json_decref(body);
}

void vd_certs_policy_get(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    vd_cert_row row = {0};
    char *policy = NULL;
    json_t *p;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_cert_load(r, name, NULL, false, &row))
        goto done;
    if (vd_store_cert_policy_get(r->store, r->vault.name, row.name, &policy, NULL) != KV_OK ||
        (p = vd_policy_out(r, row.name, policy)) == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The policy could not be read.");
        goto done;
    }
    vd_reply_json(r, 200, p);
done:
    free(policy);
    vd_cert_row_clear(&row);
}

void vd_certs_policy_update(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    vd_cert_row row = {0};
    char *policy = NULL, *text = NULL;
    json_t *body = NULL, *cur = NULL, *norm = NULL, *kp;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_cert_load(r, name, NULL, false, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    if (vd_store_cert_policy_get(r->store, r->vault.name, row.name, &policy, NULL) != KV_OK ||
        (cur = json_loads(policy, 0, NULL)) == NULL)
        goto fail;
    json_object_del(body, "id");
    vd_drop_nulls(body);
    kp = json_object_get(body, "key_props");
    /* a changed key type makes crv / key_size of the old one meaningless */
    if (json_is_object(kp) && json_object_get(kp, "kty") != NULL &&
        json_is_object(json_object_get(cur, "key_props"))) {
        json_object_del(json_object_get(cur, "key_props"), "crv");
        json_object_del(json_object_get(cur, "key_props"), "key_size");
    }
    vd_policy_merge(cur, body);
    if (!vd_policy_normalize(r, cur, false, &norm))
        goto done;
    text = json_dumps(norm, JSON_COMPACT);
    if (text == NULL ||
        vd_store_cert_policy_put(r->store, r->vault.name, row.name, text, NULL) != KV_OK)
        goto fail;
    vd_reply_json(r, 200, vd_policy_out(r, row.name, text));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The policy could not be updated.");
done:
    free(policy);
    free(text);
    json_decref(cur);
    json_decref(norm);
    json_decref(body);
    vd_cert_row_clear(&row);
}

/* ---- delete / deleted / recover / purge ---- */

void vd_certs_delete(vd_req *r, const char *name, const char *version)
{
    vd_cert_row row = {0};
    vd_vault_info info;
    long long now = vd_now();
    json_t *b;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_cert_load(r, name, NULL, false, &row))
        goto done;
    row.deleted = true;
    row.deleted_date = now;
    row.purge_date = now + 86400LL * info.retention_days;
    if (vd_store_cert_set_deleted(r->store, r->vault.name, row.name, true, now, row.purge_date) !=
        KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The certificate could not be deleted.");
        goto done;
    }
    b = vd_cert_bundle(r, &row, &info);
    if (b == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be read.");
    else
        vd_reply_json(r, 200, b);
done:
    vd_cert_row_clear(&row);
}

void vd_certs_deleted_get(vd_req *r, const char *name, const char *version)
{
    vd_cert_row row = {0};
    vd_vault_info info;

    (void)version;
    if (vd_sc_vault_only(r, &info) && vd_cert_load(r, name, NULL, true, &row))
        vd_reply_cert(r, &row, &info);
    vd_cert_row_clear(&row);
}

void vd_certs_recover(vd_req *r, const char *name, const char *version)
{
    vd_cert_row row = {0};
    vd_vault_info info;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_cert_load(r, name, NULL, true, &row))
        goto done;
    if (vd_store_cert_set_deleted(r->store, r->vault.name, row.name, false, 0, 0) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "The certificate could not be recovered.");
        goto done;
    }
    row.deleted = false;
    vd_reply_cert(r, &row, &info);
done:
    vd_cert_row_clear(&row);
}

void vd_certs_purge(vd_req *r, const char *name, const char *version)
{
    vd_cert_row row = {0};
    vd_vault_info info;
    vd_key_row *keys = NULL;
    size_t nkeys = 0, i;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_cert_load(r, name, NULL, true, &row))
        goto done;
    if (info.purge_protection) {
        vd_reply_error(r, 403, "Forbidden", NULL,
                       "Operation 'DeletedCertificatePurge' is not allowed because purge "
                       "protection is enabled for this vault. Key Vault service will "
                       "automatically purge it after the retention period has passed.");
        goto done;
    }
    /* HSM-protected key versions: their pool objects go too (unless a restored copy of the key
     * elsewhere still uses them) */
    if (vd_store_key_all(r->store, r->vault.name, row.name, true, &keys, &nkeys) != KV_OK)
        nkeys = 0;
    if (vd_store_cert_purge(r->store, r->vault.name, row.name) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The certificate could not be purged.");
        goto done;
    }
    for (i = 0; i < nkeys; i++)
        if (keys[i].hsm_ref != NULL &&
            !vd_store_hsm_ref_shared(r->store, keys[i].hsm_ref, keys[i].vault, keys[i].name))
            vd_certs_hsm_destroy(r->ctx, keys[i].hsm_ref);
    vd_reply_json(r, 204, NULL);
done:
    vd_key_rows_free(keys, nkeys);
    vd_cert_row_clear(&row);
}

/* ---- secret format conversion ---- */

kv_rv vd_certs_pfx_to_pem(const char *b64, char **pem, size_t *len)
{
    uint8_t *der = NULL;
    size_t derlen = 0;
    BIO *in = NULL, *out = NULL;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *x509 = NULL;
    STACK_OF(X509) *chain = NULL;
    BUF_MEM *mem = NULL;
    int i;
    kv_rv rv = KV_ERR_INVALID_ARG;

    if (b64 == NULL || pem == NULL || len == NULL)
        return KV_ERR_INVALID_ARG;
    *pem = NULL;
    if (kv_b64_decode(b64, &der, &derlen) != KV_OK ||
        (in = BIO_new_mem_buf(der, (int)derlen)) == NULL ||
        (p12 = d2i_PKCS12_bio(in, NULL)) == NULL || !PKCS12_parse(p12, NULL, &pkey, &x509, &chain))
        goto done;
    rv = KV_ERR_INTERNAL;
    out = BIO_new(BIO_s_mem());
    if (out == NULL ||
        (pkey != NULL && !PEM_write_bio_PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL)) ||
        (x509 != NULL && !PEM_write_bio_X509(out, x509)))
        goto done;
    for (i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        if (!PEM_write_bio_X509(out, sk_X509_value(chain, i)))
            goto done;
    BIO_get_mem_ptr(out, &mem);
    *pem = malloc(mem->length + 1);
    if (*pem == NULL)
        goto done;
    memcpy(*pem, mem->data, mem->length);
    (*pem)[mem->length] = '\0';
    *len = mem->length;
    rv = KV_OK;
done:
    ERR_clear_error();
    if (mem != NULL)
        OPENSSL_cleanse(mem->data, mem->length);
    if (der != NULL)
        vd_free_secret(der, derlen);
    EVP_PKEY_free(pkey);
    X509_free(x509);
    sk_X509_pop_free(chain, X509_free);
    PKCS12_free(p12);
    BIO_free(in);
    BIO_free(out);
    return rv;
}
