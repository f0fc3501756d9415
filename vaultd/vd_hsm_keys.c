/* vd_hsm_keys.c - HSM-protected keys and managed HSM pools.
 *
 * RSA-HSM / EC-HSM / oct-HSM keys are generated and used inside the local HSM pool (kv_hsm);
 * the keys table keeps only keys.hsm_ref and the public key. Pool failures answer 503
 * ServiceUnavailable with a message naming the pool. Managed HSM pools (vaults whose token
 * resource is https://managedhsm.azure.net) accept only -HSM key types and no secrets or
 * certificates. oct-HSM keys serve AES-GCM (service-made IV), AES-CBC(-PAD) and AES key wrap
 * (A128KW..A256KW and CKM_AES_KEY_WRAP: RFC 3394; CKM_AES_KEY_WRAP_PAD: RFC 5649). */
#include "vd_hsm_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include "kv_b64.h"
#include "kv_hsm.h"
#include "kv_jwk.h"
#include "vd_crypto.h"
#include "vd_hsm.h"
#include "vd_keys.h"
#include "vd_keys_int.h"
#include "vd_keys_lifecycle.h"
#include "vd_store_admin.h"
#include "vd_util.h"
#include "vd_workpool.h"

/* ---- helpers ---- */

bool vd_hsm_is_mhsm(const vd_req *r)
{
    return strcmp(r->vault.resource, VD_MHSM_RESOURCE) == 0;
}

bool vd_hsm_route_allowed(vd_req *r)
{
    static const char *const vault_only[] = {"secrets",      "deletedsecrets",
                                             "certificates", "deletedcertificates",
                                             "storage",      "deletedstorage"};
    size_t i;

    if (!vd_hsm_is_mhsm(r) || r->nsegs == 0)
        return true;
    for (i = 0; i < sizeof(vault_only) / sizeof(vault_only[0]); i++) {
        if (strcmp(r->segs[0], vault_only[i]) == 0) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Managed HSM pool %s holds keys only: %s are not supported.",
                           r->vault.name, vault_only[i]);
            return false;
        }
    }
    return true;
}

/* Answers a kv_hsm failure: pool down = 503 naming the pool, bad input = 400. */
static void vd_hsm_reply_err(vd_req *r, const kv_err *err, const char *what)
{
    switch (err->rv) {
    case KV_ERR_SERVER:
    case KV_ERR_NETWORK:
        vd_reply_error(r, 503, "ServiceUnavailable", NULL, "%s", err->message);
        break;
    case KV_ERR_BAD_REQUEST:
    case KV_ERR_INVALID_ARG:
        vd_reply_error(r, 400, "BadParameter", NULL, "%s", err->message);
        break;
    case KV_ERR_UNSUPPORTED:
        vd_reply_error(r, 400, "BadParameter", NULL, "%s: %s", what, err->message);
        break;
    case KV_ERR_NOT_FOUND:
        vd_reply_error(r, 500, "InternalServerError", NULL,
                       "%s: the key material is missing from the HSM pool (%s).", what,
                       err->message);
        break;
    default:
        vd_reply_error(r, 500, "InternalServerError", NULL, "%s: %s", what, err->message);
        break;
    }
}

/* The pool, or NULL after answering (503 unavailable / 400 none configured). */
static kv_hsm_pool *vd_hsm_pool_or_reply(vd_req *r, const char *what)
{
    kv_err err;
    kv_hsm_pool *pool = vd_hsm_pool(r->ctx, &err);

    if (pool == NULL)
        vd_hsm_reply_err(r, &err, what);
    return pool;
}

static bool vd_ends_with_hsm(const char *kty)
{
    size_t n = strlen(kty);

    return n > 4 && strcmp(kty + n - 4, "-HSM") == 0;
}

/* A base64url member of body; absent = false with *data NULL (no reply); malformed = false
 * after answering 400. *present tells the two apart. */
static bool vd_b64_member(vd_req *r, const json_t *body, const char *member, uint8_t **data,
                          size_t *len, bool *present)
{
    const json_t *v = json_object_get(body, member);

    *data = NULL;
    *len = 0;
    *present = v != NULL && !json_is_null(v);
    if (!*present)
        return true;
    if (!json_is_string(v) || kv_b64_decode(json_string_value(v), data, len) != KV_OK) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter %s is not valid base64url.",
                       member);
        return false;
    }
    return true;
}

/* ---- create ---- */

/* An HSM-protected key being created: generated in the pool (C_GenerateKeyPair of an RSA-4096
 * key takes seconds) and replicated to the other members on a work-pool thread; stored and
 * answered on the request's event thread (vd_workpool.h). kv_hsm is thread-safe. */
typedef struct vd_hsm_keygen {
    vd_ctx *ctx;
    kv_hsm_pool *pool;
    kv_hsm_keyspec spec;
    vd_key_row row;
    char ref[KV_HSM_REF_MAX]; /* the new pool object ("" until generated) */
    bool stored;              /* the key row owns ref now */
    kv_rv gen_rv;             /* the pool's answer, err its message */
    kv_err err;
} vd_hsm_keygen;

static void vd_hsm_keygen_free(vd_hsm_keygen *g)
{
    kv_err err;

    if (g == NULL)
        return;
    if (g->ref[0] != '\0' && !g->stored)
        (void)kv_hsm_destroy(g->pool, g->ref, &err);
    vd_key_row_clear(&g->row);
    free(g);
}

/* Pool thread: the PKCS#11 work only (no store, no reply). Always KV_OK: the outcome is in
 * g->gen_rv / g->err (KV_ERR_SERVER in done thus means the job was cancelled). */
static kv_rv vd_hsm_keygen_work(void *arg)
{
    vd_hsm_keygen *g = arg;
    char label[VD_ID_MAX * 2 + VD_NAME_MAX + 16];
    EVP_PKEY *pub = NULL;

    kv_err_clear(&g->err);
    snprintf(label, sizeof(label), "vaultd/%s/%s/%s", g->row.vault, g->row.name, g->row.version);
    g->gen_rv = kv_hsm_generate(g->pool, &g->spec, label, g->ref,
                                g->spec.type == KV_HSM_AES ? NULL : &pub, &g->err);
    if (g->gen_rv != KV_OK) {
        g->ref[0] = '\0';
        goto done;
    }
    vd_hsm_replicate(g->ctx, g->ref);
    g->row.hsm_ref = strdup(g->ref);
    if (g->row.hsm_ref == NULL ||
        (pub != NULL && vd_crypto_pub_der(pub, &g->row.pub_der, &g->row.pub_len) != KV_OK))
        g->gen_rv = kv_err_set(&g->err, KV_ERR_NOMEM, "out of memory");
done:
    EVP_PKEY_free(pub);
    return KV_OK;
}

/* Event thread: store the new version and answer (also when the client has gone away). */
static void vd_hsm_keygen_done(vd_req *r, void *arg, kv_rv rv)
{
    vd_hsm_keygen *g = arg;

    if (rv != KV_OK) { /* cancelled at shutdown */
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        goto done;
    }
    if (g->gen_rv == KV_ERR_NOMEM) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        goto done;
    }
    if (g->gen_rv != KV_OK) {
        vd_hsm_reply_err(r, &g->err, "The key could not be created");
        goto done;
    }
    if (!vd_key_name_not_deleted(r, g->row.name)) /* deleted meanwhile: 409 */
        goto done;
    g->row.created = g->row.updated = vd_now();
    if (vd_store_key_insert(r->store, &g->row) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        goto done;
    }
    g->stored = true;
    vd_reply_bundle(r, &g->row);
done:
    vd_hsm_keygen_free(g);
}

void vd_hsm_keys_create(vd_req *r, const char *name, const char *version)
{
    json_t *body = NULL, *v;
    const char *kty_in;
    bool mhsm = vd_hsm_is_mhsm(r);
    vd_hsm_keygen *g = calloc(1, sizeof(*g));
    vd_key_row *row = g != NULL ? &g->row : NULL;
    kv_hsm_keyspec *spec = g != NULL ? &g->spec : NULL;

    if (g == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        return;
    }
    *spec = (kv_hsm_keyspec){KV_HSM_RSA, 2048, NID_X9_62_prime256v1};
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    v = json_object_get(body, "kty");
    kty_in = json_is_string(v) ? json_string_value(v) : NULL;
    if (!mhsm && (kty_in == NULL || !vd_ends_with_hsm(kty_in))) {
        /* software-protected key in a vault: the software path */
        json_decref(body);
        vd_hsm_keygen_free(g);
        vd_keys_create(r, name, version);
        return;
    }
    if (!vd_key_name_ok(name)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    if (kty_in == NULL) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter kty is missing.");
        goto done;
    }
    if (strcmp(kty_in, "RSA-HSM") == 0) {
        snprintf(row->kty, sizeof(row->kty), "RSA");
        v = json_object_get(body, "key_size");
        if (v != NULL && !json_is_null(v)) {
            spec->bits = json_is_integer(v) ? (int)json_integer_value(v) : 0;
            if (spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096) {
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "Invalid key_size: RSA keys must be 2048, 3072 or 4096 bits.");
                goto done;
            }
        }
        v = json_object_get(body, "public_exponent");
        if (v != NULL && !json_is_null(v) &&
            (!json_is_integer(v) || json_integer_value(v) != 65537)) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Only the public exponent 65537 is supported.");
            goto done;
        }
    } else if (strcmp(kty_in, "EC-HSM") == 0) {
        snprintf(row->kty, sizeof(row->kty), "EC");
        spec->type = KV_HSM_EC;
        v = json_object_get(body, "crv");
        if (v != NULL && !json_is_null(v)) {
            spec->curve_nid =
                json_is_string(v) ? kv_curve_nid_from_name(json_string_value(v)) : NID_undef;
            if (spec->curve_nid == NID_undef || kv_curve_name_from_nid(spec->curve_nid) == NULL ||
                strcmp(kv_curve_name_from_nid(spec->curve_nid), json_string_value(v)) != 0) {
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "Invalid crv: use P-256, P-384, P-521 or P-256K.");
                goto done;
            }
        }
    } else if (strcmp(kty_in, "oct-HSM") == 0 && mhsm) {
        snprintf(row->kty, sizeof(row->kty), "oct");
        spec->type = KV_HSM_AES;
        spec->bits = 256;
        v = json_object_get(body, "key_size");
        if (v != NULL && !json_is_null(v)) {
            spec->bits = json_is_integer(v) ? (int)json_integer_value(v) : 0;
            if (spec->bits != 128 && spec->bits != 192 && spec->bits != 256) {
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "Invalid key_size: oct-HSM keys must be 128, 192 or 256 bits.");
                goto done;
            }
        }
    } else if (strcmp(kty_in, "oct-HSM") == 0) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Key type oct-HSM is supported only in managed HSM pools.");
        goto done;
    } else {
        vd_reply_error(r, 400, "BadParameter", NULL, "Key type %.20s is not supported %s: use %s.",
                       kty_in, mhsm ? "by managed HSM pools" : "here",
                       mhsm ? "RSA-HSM, EC-HSM or oct-HSM" : "RSA, RSA-HSM, EC or EC-HSM");
        goto done;
    }
    row->hsm = true;
    if (json_object_get(body, "release_policy") != NULL &&
        !json_is_null(json_object_get(body, "release_policy"))) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "AKV.SKR.1005: Non-exportable keys must not have release policy.");
        goto done;
    }
    v = json_object_get(body, "key_ops");
    if (spec->type == KV_HSM_AES && (v == NULL || json_is_null(v)))
        row->key_ops = strdup("[\"encrypt\",\"decrypt\",\"wrapKey\",\"unwrapKey\"]");
    else
        row->key_ops = vd_parse_key_ops(r, v, row->kty);
    if (row->key_ops == NULL || !vd_parse_attributes(r, json_object_get(body, "attributes"), row) ||
        !vd_parse_tags(r, json_object_get(body, "tags"), row) || !vd_key_name_not_deleted(r, name))
        goto done;
    g->pool = vd_hsm_pool_or_reply(r, "The key could not be created");
    if (g->pool == NULL)
        goto done;
    snprintf(row->vault, sizeof(row->vault), "%s", r->vault.name);
    snprintf(row->name, sizeof(row->name), "%s", name);
    if (vd_random_hex(row->version, 16) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        goto done;
    }
    g->ctx = r->ctx;
    json_decref(body);
    vd_req_defer(r, vd_hsm_keygen_work, vd_hsm_keygen_done, g); /* answers; frees g */
    return;
done:
    vd_hsm_keygen_free(g);
    json_decref(body);
}

/* ---- import (BYOK with the private parts in the JWK) ---- */

void vd_hsm_keys_import(vd_req *r, const char *name, const char *version)
{
    json_t *body = NULL, *jwk, *hsmj, *rp, *v;
    const char *kty;
    bool mhsm = vd_hsm_is_mhsm(r), oct;
    vd_key_row row = {0};
    EVP_PKEY *pkey = NULL;
    uint8_t *k = NULL;
    size_t klen = 0;
    kv_hsm_pool *pool;
    char ref[KV_HSM_REF_MAX] = "", label[VD_ID_MAX * 2 + VD_NAME_MAX + 16], why[256];
    kv_err err;
    kv_rv rv;

    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    jwk = json_object_get(body, "key");
    hsmj = json_object_get(body, "Hsm");
    v = json_object_get(jwk, "kty");
    kty = json_is_string(v) ? json_string_value(v) : "";
    if (!mhsm && !json_is_true(hsmj) && !vd_ends_with_hsm(kty)) {
        json_decref(body); /* software-protected import: vd_keys_lifecycle.c */
        vd_keys_import(r, name, version);
        return;
    }
    if (!vd_key_name_ok(name)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    if (!json_is_object(jwk)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter key is missing or is not a JSON Web Key.");
        goto done;
    }
    if (hsmj != NULL && !json_is_null(hsmj) && !json_is_boolean(hsmj)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter Hsm must be a boolean.");
        goto done;
    }
    rp = json_object_get(body, "release_policy");
    if (rp != NULL && !json_is_null(rp)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "AKV.SKR.1005: Non-exportable keys must not have release policy.");
        goto done;
    }
    oct = strcmp(kty, "oct") == 0 || strcmp(kty, "oct-HSM") == 0;
    if (oct && !mhsm) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Key type %s is supported only in managed HSM pools.", kty);
        goto done;
    }
    if (oct) {
        v = json_object_get(jwk, "k");
        if (!json_is_string(v) || kv_b64_decode(json_string_value(v), &k, &klen) != KV_OK ||
            (klen != 16 && klen != 24 && klen != 32)) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Invalid key: k must be a 128, 192 or 256-bit AES key (base64url).");
            goto done;
        }
        snprintf(row.kty, sizeof(row.kty), "oct");
    } else {
        rv = vd_crypto_import_jwk(jwk, &pkey, why, sizeof(why));
        if (rv != KV_OK) {
            vd_reply_error(r, 400, "BadParameter", NULL, "Invalid key: %s", why);
            goto done;
        }
        snprintf(row.kty, sizeof(row.kty), "%s", strncmp(kty, "RSA", 3) == 0 ? "RSA" : "EC");
    }
    row.hsm = true;
    v = json_object_get(jwk, "key_ops");
    if (oct && (v == NULL || json_is_null(v)))
        row.key_ops = strdup("[\"encrypt\",\"decrypt\",\"wrapKey\",\"unwrapKey\"]");
    else
        row.key_ops = vd_parse_key_ops(r, v, row.kty);
    if (row.key_ops == NULL || !vd_parse_attributes(r, json_object_get(body, "attributes"), &row) ||
        !vd_parse_tags(r, json_object_get(body, "tags"), &row) || !vd_key_name_not_deleted(r, name))
        goto done;
    pool = vd_hsm_pool_or_reply(r, "The key could not be imported");
    if (pool == NULL)
        goto done;
    snprintf(row.vault, sizeof(row.vault), "%s", r->vault.name);
    snprintf(row.name, sizeof(row.name), "%s", name);
    if (vd_random_hex(row.version, 16) != KV_OK)
        goto fail;
    row.created = row.updated = vd_now();
    snprintf(label, sizeof(label), "vaultd/%s/%s/%s", row.vault, row.name, row.version);
    rv = oct ? kv_hsm_import_aes(pool, k, klen, label, ref, &err)
             : kv_hsm_import_pkey(pool, pkey, label, ref, &err);
    if (rv != KV_OK) {
        vd_hsm_reply_err(r, &err, "The key could not be imported");
        goto done;
    }
    vd_hsm_replicate(r->ctx, ref);
    row.hsm_ref = strdup(ref);
    if (row.hsm_ref == NULL ||
        (pkey != NULL && vd_crypto_pub_der(pkey, &row.pub_der, &row.pub_len) != KV_OK))
        goto fail;
    if (vd_store_key_insert(r->store, &row) != KV_OK)
        goto fail;
    vd_reply_bundle(r, &row);
    goto done;
fail:
    if (ref[0] != '\0')
        (void)kv_hsm_destroy(pool, ref, &err);
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be imported.");
done:
    vd_free_secret(k, klen);
    EVP_PKEY_free(pkey);
    vd_key_row_clear(&row);
    json_decref(body);
}

/* ---- sign ---- */

void vd_hsm_keys_sign(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    json_t *body = NULL;
    const json_t *a;
    const vd_alg *alg;
    uint8_t *digest = NULL, *sig = NULL;
    size_t dlen = 0, siglen = 0, k;
    EVP_PKEY *pub = NULL;
    kv_hsm_pool *pool;
    kv_hsm_sig kind;
    bool present;
    char kid[600], *s64 = NULL;
    kv_err err;

    if (!vd_key_load(r, name, version, &row))
        goto done;
    if (row.hsm_ref == NULL) {
        vd_key_row_clear(&row);
        vd_keys_sign(r, name, version);
        return;
    }
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    a = json_object_get(body, "alg");
    alg = json_is_string(a) ? vd_alg_by_name(json_string_value(a)) : NULL;
    if (alg == NULL) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid or missing algorithm (alg): use RS256, RS384, RS512, PS256, PS384,"
                       " PS512, RSNULL, ES256, ES384, ES512 or ES256K.");
        goto done;
    }
    if (!vd_b64_member(r, body, "value", &digest, &dlen, &present))
        goto done;
    if (!present) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter value is missing.");
        goto done;
    }
    if (strcmp(row.kty, "oct") == 0 ||
        vd_crypto_pub_from_der(row.pub_der, row.pub_len, &pub) != KV_OK ||
        !vd_alg_fits_key(alg, pub)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Algorithm %s is not valid for this key's type or curve.", alg->name);
        goto done;
    }
    k = (size_t)EVP_PKEY_get_size(pub);
    if ((alg->dlen == 0 && (dlen == 0 || dlen + 11 > k)) || (alg->dlen != 0 && dlen != alg->dlen)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "Invalid digest length for %s: %zu bytes.",
                       alg->name, dlen);
        goto done;
    }
    if (!vd_key_allows(r, &row, "sign", true))
        goto done;
    pool = vd_hsm_pool_or_reply(r, "The signature could not be made");
    if (pool == NULL)
        goto done;
    kind = alg->kind == VD_SIG_PSS      ? KV_HSM_SIG_PSS
           : alg->kind == VD_SIG_RSNULL ? KV_HSM_SIG_PKCS1_RAW
           : alg->kind == VD_SIG_ECDSA  ? KV_HSM_SIG_ECDSA
                                        : KV_HSM_SIG_PKCS1;
    if (kv_hsm_sign(pool, row.hsm_ref, kind, alg->md ? EVP_get_digestbyname(alg->md) : NULL, digest,
                    dlen, &sig, &siglen, &err) != KV_OK) {
        vd_hsm_reply_err(r, &err, "The signature could not be made");
        goto done;
    }
    s64 = kv_b64url_encode(sig, siglen);
    if (s64 == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The signature could not be made.");
        goto done;
    }
    vd_kid(r, &row, true, kid, sizeof(kid));
    vd_reply_json(r, 200, json_pack("{s:s, s:s}", "kid", kid, "value", s64));
done:
    EVP_PKEY_free(pub);
    free(s64);
    free(sig);
    free(digest);
    json_decref(body);
    vd_key_row_clear(&row);
}

/* ---- RSA-HSM decrypt / unwrapKey ---- */

static void vd_hsm_rsa_decrypt(vd_req *r, vd_key_row *row, json_t *body, const char *op)
{
    const json_t *a = json_object_get(body, "alg");
    vd_enc_alg alg;
    uint8_t *in = NULL, *out = NULL;
    size_t inlen = 0, outlen = 0;
    kv_hsm_pool *pool;
    bool present;
    char kid[600], *o64 = NULL;
    kv_err err;

    if (!json_is_string(a) || !vd_enc_alg_by_name(json_string_value(a), &alg)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid or missing algorithm (alg) for %s: use RSA1_5, RSA-OAEP or "
                       "RSA-OAEP-256.",
                       op);
        return;
    }
    if (!vd_b64_member(r, body, "value", &in, &inlen, &present))
        return;
    if (!present) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter value is missing.");
        goto done;
    }
    if (!vd_key_allows(r, row, op, false))
        goto done;
    pool = vd_hsm_pool_or_reply(r, "The operation failed");
    if (pool == NULL)
        goto done;
    if (kv_hsm_rsa_decrypt(pool, row->hsm_ref,
                           alg == VD_ENC_RSA1_5     ? KV_HSM_PAD_PKCS1
                           : alg == VD_ENC_RSA_OAEP ? KV_HSM_PAD_OAEP_SHA1
                                                    : KV_HSM_PAD_OAEP_SHA256,
                           in, inlen, &out, &outlen, &err) != KV_OK) {
        if (err.rv == KV_ERR_BAD_REQUEST)
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "The value could not be decrypted with %s under this key.",
                           json_string_value(a));
        else
            vd_hsm_reply_err(r, &err, "The operation failed");
        goto done;
    }
    o64 = kv_b64url_encode(out, outlen);
    if (o64 == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The %s operation failed.", op);
        goto done;
    }
    vd_kid(r, row, true, kid, sizeof(kid));
    vd_reply_json(r, 200, json_pack("{s:s, s:s}", "kid", kid, "value", o64));
done:
    if (o64 != NULL)
        vd_free_secret(o64, strlen(o64));
    vd_free_secret(out, outlen);
    vd_free_secret(in, inlen);
}

/* ---- oct-HSM: AES-GCM, AES-CBC(-PAD), AES key wrap ---- */

typedef enum { VD_AES_GCM, VD_AES_CBC, VD_AES_CBCPAD, VD_AES_KW, VD_AES_KWP } vd_aes_mode;

#define VD_AES_ANY_BITS 0 /* the PKCS#11-named wrap algorithms take any AES key size */

static bool vd_aes_alg(const char *s, vd_aes_mode *mode, int *bits)
{
    static const struct {
        const char *name;
        vd_aes_mode mode;
        int bits;
    } algs[] = {
        {"A128GCM", VD_AES_GCM, 128},
        {"A192GCM", VD_AES_GCM, 192},
        {"A256GCM", VD_AES_GCM, 256},
        {"A128CBC", VD_AES_CBC, 128},
        {"A192CBC", VD_AES_CBC, 192},
        {"A256CBC", VD_AES_CBC, 256},
        {"A128CBCPAD", VD_AES_CBCPAD, 128},
        {"A192CBCPAD", VD_AES_CBCPAD, 192},
        {"A256CBCPAD", VD_AES_CBCPAD, 256},
        {"A128KW", VD_AES_KW, 128},
        {"A192KW", VD_AES_KW, 192},
        {"A256KW", VD_AES_KW, 256},
        /* spec section 2: PKCS#11 names, RFC 3394 / RFC 5649 at the key's own size */
        {"CKM_AES_KEY_WRAP", VD_AES_KW, VD_AES_ANY_BITS},
        {"CKM_AES_KEY_WRAP_PAD", VD_AES_KWP, VD_AES_ANY_BITS},
    };
    size_t i;

    for (i = 0; s != NULL && i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(s, algs[i].name) == 0) {
            *mode = algs[i].mode;
            *bits = algs[i].bits;
            return true;
        }
    }
    return false;
}

/* op: encrypt | decrypt | wrapKey | unwrapKey. */
static void vd_hsm_aes_op(vd_req *r, vd_key_row *row, json_t *body, const char *op)
{
    bool enc = strcmp(op, "encrypt") == 0 || strcmp(op, "wrapKey") == 0;
    bool kwop = strcmp(op, "wrapKey") == 0 || strcmp(op, "unwrapKey") == 0;
    const json_t *a = json_object_get(body, "alg");
    const char *algname = json_is_string(a) ? json_string_value(a) : NULL;
    uint8_t *in = NULL, *iv = NULL, *aad = NULL, *tag = NULL, *out = NULL, gciv[12], gtag[16];
    size_t inlen = 0, ivlen = 0, aadlen = 0, taglen = 0, outlen = 0;
    bool has_in, has_iv, has_aad, has_tag;
    vd_aes_mode mode;
    int bits = 0, keybits = 0;
    kv_hsm_pool *pool;
    json_t *resp = NULL;
    char kid[600], *o64 = NULL;
    kv_err err;
    kv_rv rv;

    if (!vd_aes_alg(algname, &mode, &bits) || (mode == VD_AES_KW || mode == VD_AES_KWP) != kwop) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid or missing algorithm (alg) for %s with an oct-HSM key: use %s.", op,
                       kwop ? "A128KW, A192KW, A256KW, CKM_AES_KEY_WRAP or CKM_AES_KEY_WRAP_PAD"
                            : "A128GCM..A256GCM, A128CBC..A256CBC or A128CBCPAD..A256CBCPAD");
        return;
    }
    if (!vd_b64_member(r, body, "value", &in, &inlen, &has_in) ||
        !vd_b64_member(r, body, "iv", &iv, &ivlen, &has_iv) ||
        !vd_b64_member(r, body, "aad", &aad, &aadlen, &has_aad) ||
        !vd_b64_member(r, body, "tag", &tag, &taglen, &has_tag))
        goto done;
    if (!has_in) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter value is missing.");
        goto done;
    }
    if ((mode == VD_AES_CBC || mode == VD_AES_CBCPAD) && ivlen != 16) {
        vd_reply_error(r, 400, "BadParameter", NULL, "%s needs a 16-byte iv.", algname);
        goto done;
    }
    if (mode == VD_AES_GCM && !enc && (ivlen != 12 || taglen != 16)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "%s decryption needs the 12-byte iv and the 16-byte tag.", algname);
        goto done;
    }
    if (!vd_key_allows(r, row, op, enc))
        goto done;
    pool = vd_hsm_pool_or_reply(r, "The operation failed");
    if (pool == NULL)
        goto done;
    if (kv_hsm_secret_bits(pool, row->hsm_ref, &keybits, &err) != KV_OK) {
        vd_hsm_reply_err(r, &err, "The operation failed");
        goto done;
    }
    if (bits != VD_AES_ANY_BITS && keybits != bits) {
        vd_reply_error(r, 400, "BadParameter", NULL, "Algorithm %s does not fit this %d-bit key.",
                       algname, keybits);
        goto done;
    }
    switch (mode) {
    case VD_AES_GCM:
        if (enc) {
            rv = kv_hsm_aes_gcm_encrypt(pool, row->hsm_ref, aad, aadlen, in, inlen, gciv, &out,
                                        &outlen, gtag, &err);
        } else {
            rv = kv_hsm_aes_gcm_decrypt(pool, row->hsm_ref, iv, aad, aadlen, in, inlen, tag, &out,
                                        &outlen, &err);
        }
        break;
    case VD_AES_CBC:
    case VD_AES_CBCPAD:
        rv = kv_hsm_aes_cbc(pool, row->hsm_ref, enc, mode == VD_AES_CBCPAD, iv, in, inlen, &out,
                            &outlen, &err);
        break;
    case VD_AES_KWP: /* RFC 5649 over the token's AES-ECB (SoftHSMv2's own KWP is not) */
        if (inlen == 0 || (!enc && (inlen < 16 || inlen % 8 != 0))) {
            vd_reply_error(r, 400, "BadParameter", NULL, "%s: a value of the wrong length.",
                           algname);
            goto done;
        }
        rv = kv_hsm_aes_kwp(pool, row->hsm_ref, enc, in, inlen, &out, &outlen, &err);
        break;
    default:
        rv = kv_hsm_aes_wrap(pool, row->hsm_ref, enc, false, in, inlen, &out, &outlen, &err);
        break;
    }
    if (rv != KV_OK) {
        vd_hsm_reply_err(r, &err, "The operation failed");
        goto done;
    }
    o64 = kv_b64url_encode(out, outlen);
    vd_kid(r, row, true, kid, sizeof(kid));
    resp = json_pack("{s:s, s:s}", "kid", kid, "value", o64 ? o64 : "");
    if (o64 == NULL || resp == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The %s operation failed.", op);
        goto done;
    }
    if (mode == VD_AES_GCM && enc) {
        char *i64 = kv_b64url_encode(gciv, sizeof(gciv)), *t64 = kv_b64url_encode(gtag, 16);

        json_object_set_new(resp, "iv", json_string(i64 ? i64 : ""));
        json_object_set_new(resp, "tag", json_string(t64 ? t64 : ""));
        free(i64);
        free(t64);
    } else if (mode == VD_AES_CBC || mode == VD_AES_CBCPAD) {
        json_object_set(resp, "iv", json_object_get(body, "iv"));
    }
    if (has_aad)
        json_object_set(resp, "aad", json_object_get(body, "aad"));
    vd_reply_json(r, 200, resp);
    resp = NULL;
done:
    json_decref(resp);
    if (o64 != NULL)
        vd_free_secret(o64, strlen(o64));
    vd_free_secret(out, outlen);
    vd_free_secret(in, inlen);
    free(iv);
    free(aad);
    free(tag);
}

/* The four crypto routes: HSM keys here, software keys to vd_keys_crypto.c. */
static void vd_hsm_crypto_route(vd_req *r, const char *name, const char *version, const char *op,
                                void (*software)(vd_req *, const char *, const char *))
{
    bool priv_op = strcmp(op, "decrypt") == 0 || strcmp(op, "unwrapKey") == 0;
    vd_key_row row = {0};
    json_t *body = NULL;

    if (!vd_key_load(r, name, version, &row))
        return;
    /* RSA-HSM encrypt / wrapKey only need the public key: the software path does that */
    if (row.hsm_ref == NULL || (strcmp(row.kty, "RSA") == 0 && !priv_op)) {
        vd_key_row_clear(&row);
        software(r, name, version);
        return;
    }
    body = vd_req_json_body(r);
    if (body != NULL) {
        if (strcmp(row.kty, "oct") == 0)
            vd_hsm_aes_op(r, &row, body, op);
        else if (strcmp(row.kty, "RSA") == 0)
            vd_hsm_rsa_decrypt(r, &row, body, op);
        else
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Operation %s is not supported by %s-HSM keys.", op, row.kty);
    }
    json_decref(body);
    vd_key_row_clear(&row);
}

void vd_hsm_keys_encrypt(vd_req *r, const char *name, const char *version)
{
    vd_hsm_crypto_route(r, name, version, "encrypt", vd_keys_encrypt);
}

void vd_hsm_keys_decrypt(vd_req *r, const char *name, const char *version)
{
    vd_hsm_crypto_route(r, name, version, "decrypt", vd_keys_decrypt);
}

void vd_hsm_keys_wrap(vd_req *r, const char *name, const char *version)
{
    vd_hsm_crypto_route(r, name, version, "wrapKey", vd_keys_wrap);
}

void vd_hsm_keys_unwrap(vd_req *r, const char *name, const char *version)
{
    vd_hsm_crypto_route(r, name, version, "unwrapKey", vd_keys_unwrap);
}

/* ---- random bytes ---- */

void vd_hsm_rng(vd_req *r, const char *name, const char *version)
{
    json_t *body = vd_req_json_body(r);
    const json_t *c;
    uint8_t buf[128];
    json_int_t count;
    kv_hsm_pool *pool;
    char *v64 = NULL;
    kv_err err;

    (void)name;
    (void)version;
    if (body == NULL)
        return;
    c = json_object_get(body, "count");
    count = json_is_integer(c) ? json_integer_value(c) : 0;
    if (count < 1 || count > 128) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter count must be an integer from 1 to 128.");
        goto done;
    }
    pool = vd_hsm_pool_or_reply(r, "Random bytes could not be made");
    if (pool == NULL)
        goto done;
    if (kv_hsm_random(pool, buf, (size_t)count, &err) != KV_OK) {
        vd_hsm_reply_err(r, &err, "Random bytes could not be made");
        goto done;
    }
    v64 = kv_b64url_encode(buf, (size_t)count);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (v64 == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "Random bytes could not be made.");
    else
        vd_reply_json(r, 200, json_pack("{s:s}", "value", v64));
done:
    free(v64);
    json_decref(body);
}

/* ---- --dev ---- */

kv_rv vd_hsm_dev_managed_pool(vd_store *st, const char *tenant, const char *client_id)
{
    vd_vault_props p;
    const char *admins[1] = {client_id};

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", VD_HSM_DEV_POOL);
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", tenant);
    snprintf(p.kind, sizeof(p.kind), "%s", VD_KIND_MHSM);
    snprintf(p.sku, sizeof(p.sku), "Standard_B1");
    snprintf(p.location, sizeof(p.location), "local");
    p.retention_days = 90;
    p.created = vd_now();
    return vd_store_vault_create(st, &p, VD_MHSM_RESOURCE, admins, 1,
                                 VD_ROLE_ID_MHSM_ADMINISTRATOR);
}
