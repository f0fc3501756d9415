/* vd_keys.c - key endpoints: create (RSA/EC, software or -HSM labelled), get, list and
 * versions with paging, and sign / verify over digests. Private material never leaves here
 * except wrapped under the KEK into the store. */
#include "vd_keys.h"
#include "vd_keys_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include "kv_b64.h"
#include "kv_jwk.h"
#include "vd_crypto.h"
#include "vd_store_certs.h"
#include "vd_keycache.h"
#include "vd_util.h"
#include "vd_workpool.h"

#define VD_MAX_RESULTS 25
#define VD_MAX_TAGS 15
#define VD_TAG_LEN 256

static const char *const vd_all_ops[] = {"encrypt", "decrypt",   "sign",   "verify",
                                         "wrapKey", "unwrapKey", "import", "export"};

/* ---- helpers ---- */

bool vd_key_name_ok(const char *name)
{
    size_t i, len = name ? strlen(name) : 0;

    if (len == 0 || len > 127)
        return false;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-')
            return false;
    return true;
}

/* "https://HOST" as the client addressed us. */
void vd_base_url(const vd_req *r, char *out, size_t outlen)
{
    if (r->host[0] != '\0')
        snprintf(out, outlen, "https://%s", r->host);
    else
        snprintf(out, outlen, "https://%s.vault.localhost:%d", r->vault.name, r->ctx->cfg.port);
}

void vd_kid(const vd_req *r, const vd_key_row *row, bool versioned, char *out, size_t outlen)
{
    char base[300];

    vd_base_url(r, base, sizeof(base));
    if (versioned)
        snprintf(out, outlen, "%s/keys/%s/%s", base, row->name, row->version);
    else
        snprintf(out, outlen, "%s/keys/%s", base, row->name);
}

/* AAD binding wrapped key material to its place: vault|name|version, lower case. */
void vd_key_aad(const vd_key_row *row, char *out, size_t outlen)
{
    size_t i;

    snprintf(out, outlen, "%s|%s|%s", row->vault, row->name, row->version);
    for (i = 0; out[i] != '\0'; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
}

void vd_key_not_found(vd_req *r, const char *name, const char *version)
{
    bool v = version != NULL && version[0] != '\0';

    vd_reply_error(r, 404, "KeyNotFound", NULL,
                   "A key with (name/id) %.127s%s%.64s was not found in this key vault. If you "
                   "recently deleted this key you may be able to recover it using the correct "
                   "recovery command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182",
                   name, v ? "/" : "", v ? version : "");
}

/* Loads a key version, answering 404 / 500 itself on failure. */
bool vd_key_load(vd_req *r, const char *name, const char *version, vd_key_row *row)
{
    kv_rv rv;

    if (!vd_key_name_ok(name) || (version != NULL && strlen(version) >= VD_ID_MAX)) {
        vd_key_not_found(r, name ? name : "", version);
        return false;
    }
    rv = vd_store_key_get(r->store, r->vault.name, name, version, row);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_key_not_found(r, name, version);
        return false;
    }
    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be read.");
        return false;
    }
    return true;
}

json_t *vd_key_attributes(const vd_req *r, const vd_key_row *row)
{
    json_t *a = json_pack("{s:b}", "enabled", row->enabled);
    char level[64];
    int days = 90;

    if (a == NULL)
        return NULL;
    if (row->has_nbf)
        json_object_set_new(a, "nbf", json_integer(row->nbf));
    if (row->has_exp)
        json_object_set_new(a, "exp", json_integer(row->exp));
    json_object_set_new(a, "created", json_integer(row->created));
    json_object_set_new(a, "updated", json_integer(row->updated));
    vd_key_recovery_level(r, level, sizeof(level), &days);
    json_object_set_new(a, "recoveryLevel", json_string(level));
    json_object_set_new(a, "recoverableDays", json_integer(days));
    json_object_set_new(a, "exportable", json_false());
    return a;
}

static void vd_set_tags(json_t *obj, const vd_key_row *row)
{
    json_t *tags;

    if (row->tags == NULL)
        return;
    tags = json_loads(row->tags, 0, NULL);
    if (json_is_object(tags) && json_object_size(tags) > 0)
        json_object_set_new(obj, "tags", tags);
    else
        json_decref(tags);
}

/* KeyBundle: public JWK (kid, kty, key_ops, n/e or crv/x/y), attributes, tags. */
json_t *vd_key_bundle(const vd_req *r, const vd_key_row *row)
{
    EVP_PKEY *pub = NULL;
    json_t *jwk = NULL, *bundle = NULL, *ops;
    char kid[600];

    if (strcmp(row->kty, "oct") == 0) /* oct-HSM (vd_hsm_keys.c): no public part */
        jwk = json_pack("{s:s}", "kty", "oct-HSM");
    else if (vd_crypto_pub_from_der(row->pub_der, row->pub_len, &pub) != KV_OK)
        return NULL;
    else
        jwk = kv_jwk_from_public_pkey(pub, row->hsm);
    EVP_PKEY_free(pub);
    ops = json_loads(row->key_ops, 0, NULL);
    if (jwk == NULL || ops == NULL) {
        json_decref(jwk);
        json_decref(ops);
        return NULL;
    }
    vd_kid(r, row, true, kid, sizeof(kid));
    json_object_set_new(jwk, "kid", json_string(kid));
    json_object_set_new(jwk, "key_ops", ops);
    bundle = json_pack("{s:o, s:o}", "key", jwk, "attributes", vd_key_attributes(r, row));
    if (bundle != NULL)
        vd_set_tags(bundle, row);
    if (bundle != NULL && vd_store_key_is_managed(r->store, row->vault, row->name, row->version))
        json_object_set_new(bundle, "managed", json_true()); /* backs a certificate (vd_certs.c) */
    return bundle;
}

json_t *vd_key_item(const vd_req *r, const vd_key_row *row, bool versioned)
{
    json_t *item;
    char kid[600];

    vd_kid(r, row, versioned, kid, sizeof(kid));
    item = json_pack("{s:s, s:o}", "kid", kid, "attributes", vd_key_attributes(r, row));
    if (item != NULL)
        vd_set_tags(item, row);
    if (item != NULL && vd_store_key_is_managed(r->store, row->vault, row->name, row->version))
        json_object_set_new(item, "managed", json_true());
    return item;
}

void vd_reply_bundle(vd_req *r, const vd_key_row *row)
{
    json_t *b = vd_key_bundle(r, row);

    if (b == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be encoded.");
    else
        vd_reply_json(r, 200, b);
}

/* ---- create ---- */

/* Validates key_ops (array of known operation names); returns its JSON text or NULL. */
char *vd_parse_key_ops(vd_req *r, const json_t *ops, const char *kty)
{
    json_t *v;
    size_t i, j;

    if (ops == NULL || json_is_null(ops)) {
        if (strcmp(kty, "RSA") == 0)
            return strdup("[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\","
                          "\"unwrapKey\"]");
        return strdup("[\"sign\",\"verify\"]");
    }
    if (!json_is_array(ops)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "key_ops must be an array of strings.");
        return NULL;
    }
    json_array_foreach(ops, i, v)
    {
        bool known = false;

        for (j = 0; json_is_string(v) && j < sizeof(vd_all_ops) / sizeof(vd_all_ops[0]); j++)
            known = known || strcmp(json_string_value(v), vd_all_ops[j]) == 0;
        if (!known) {
            vd_reply_error(r, 400, "BadParameter", NULL, "Invalid key operation in key_ops.");
            return NULL;
        }
    }
    return json_dumps(ops, JSON_COMPACT);
}

/* Validates attributes into row; false after answering 400. */
bool vd_parse_attributes(vd_req *r, const json_t *attrs, vd_key_row *row)
{
    const json_t *v;

    row->enabled = true;
    if (attrs == NULL || json_is_null(attrs))
        return true;
    if (!json_is_object(attrs)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "attributes must be an object.");
        return false;
    }
    v = json_object_get(attrs, "enabled");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            vd_reply_error(r, 400, "BadParameter", NULL, "attributes.enabled must be a boolean.");
            return false;
        }
        row->enabled = json_is_true(v);
    }
    v = json_object_get(attrs, "nbf");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            vd_reply_error(r, 400, "BadParameter", NULL, "attributes.nbf must be an integer.");
            return false;
        }
        row->has_nbf = true;
        row->nbf = json_integer_value(v);
    }
    v = json_object_get(attrs, "exp");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            vd_reply_error(r, 400, "BadParameter", NULL, "attributes.exp must be an integer.");
            return false;
        }
        row->has_exp = true;
        row->exp = json_integer_value(v);
    }
    v = json_object_get(attrs, "exportable");
    if (json_is_true(v)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "AKV.SKR.1002: Exportable keys must have a release policy.");
        return false;
    }
    return true;
}

/* Validates tags into row->tags; false after answering 400. */
bool vd_parse_tags(vd_req *r, const json_t *tags, vd_key_row *row)
{
    const char *k;
    json_t *v;

    if (tags == NULL || json_is_null(tags))
        return true;
    if (!json_is_object(tags) || json_object_size(tags) > VD_MAX_TAGS) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "tags must be an object with at most 15 string values.");
        return false;
    }
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_string(v) || strlen(k) > VD_TAG_LEN ||
            strlen(json_string_value(v)) > VD_TAG_LEN) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Tag names and values must be strings of at most 256 characters.");
            return false;
        }
    }
    row->tags = json_dumps(tags, JSON_COMPACT);
    return row->tags != NULL;
}

/* A software key being created: generated and wrapped on a work-pool thread (RSA-4096 takes
 * about a second), stored and answered on the request's event thread (vd_workpool.h). */
typedef struct vd_keygen {
    vd_ctx *ctx;
    vd_key_row row;
    int bits, nid;
    EVP_PKEY *pkey;
} vd_keygen;

static void vd_keygen_free(vd_keygen *g)
{
    EVP_PKEY_free(g->pkey);
    vd_key_row_clear(&g->row);
    free(g);
}

/* Pool thread: key material only (no store, no reply). */
static kv_rv vd_keygen_work(void *arg)
{
    vd_keygen *g = arg;
    char aad[300];
    kv_rv rv;

    rv = vd_crypto_generate(g->row.kty, g->bits, g->nid, &g->pkey);
    if (rv == KV_OK)
        rv = vd_crypto_pub_der(g->pkey, &g->row.pub_der, &g->row.pub_len);
    if (rv != KV_OK)
        return rv;
    vd_key_aad(&g->row, aad, sizeof(aad));
    return vd_crypto_wrap_pkey(g->ctx->kek, aad, g->pkey, g->row.iv, &g->row.wrapped,
                               &g->row.wrapped_len);
}

/* Event thread: store the new version and answer (also when the client has gone away, so that
 * the outcome does not depend on it). */
static void vd_keygen_done(vd_req *r, void *arg, kv_rv rv)
{
    vd_keygen *g = arg;

    if (rv != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        goto done;
    }
    if (!vd_key_name_not_deleted(r, g->row.name)) /* deleted meanwhile: 409 */
        goto done;
    g->row.created = g->row.updated = vd_now();
    if (vd_store_key_insert(r->store, &g->row) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
        goto done;
    }
    vd_keycache_put(r->ctx->keycache, g->row.vault, g->row.version, g->pkey);
    vd_reply_bundle(r, &g->row);
done:
    vd_keygen_free(g);
}

void vd_keys_create(vd_req *r, const char *name, const char *version)
{
    json_t *body = NULL, *v;
    const char *kty_in;
    vd_keygen *g = calloc(1, sizeof(*g));
    vd_key_row *row = g ? &g->row : NULL;
    int bits = 2048, nid = NID_X9_62_prime256v1;

    (void)version;
    if (g == NULL)
        goto fail;
    if (!vd_key_name_ok(name)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL || !vd_key_name_not_deleted(r, name))
        goto done;
    v = json_object_get(body, "kty");
    kty_in = json_is_string(v) ? json_string_value(v) : NULL;
    if (kty_in == NULL) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The parameter kty is missing.");
        goto done;
    }
    if (strcmp(kty_in, "RSA") == 0 || strcmp(kty_in, "RSA-HSM") == 0) {
        snprintf(row->kty, sizeof(row->kty), "RSA");
        v = json_object_get(body, "key_size");
        if (v != NULL && !json_is_null(v)) {
            bits = json_is_integer(v) ? (int)json_integer_value(v) : 0;
            if (bits != 2048 && bits != 3072 && bits != 4096) {
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
    } else if (strcmp(kty_in, "EC") == 0 || strcmp(kty_in, "EC-HSM") == 0) {
        snprintf(row->kty, sizeof(row->kty), "EC");
        v = json_object_get(body, "crv");
        if (v != NULL && !json_is_null(v)) {
            nid = json_is_string(v) ? kv_curve_nid_from_name(json_string_value(v)) : NID_undef;
            if (nid == NID_undef || kv_curve_name_from_nid(nid) == NULL ||
                strcmp(kv_curve_name_from_nid(nid), json_string_value(v)) != 0) {
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "Invalid crv: use P-256, P-384, P-521 or P-256K.");
                goto done;
            }
        }
    } else {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Key type %.20s is not supported: use RSA, RSA-HSM, EC or EC-HSM.", kty_in);
        goto done;
    }
    row->hsm = strstr(kty_in, "-HSM") != NULL;
    if (json_object_get(body, "release_policy") != NULL &&
        !json_is_null(json_object_get(body, "release_policy"))) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "AKV.SKR.1005: Non-exportable keys must not have release policy.");
        goto done;
    }
    row->key_ops = vd_parse_key_ops(r, json_object_get(body, "key_ops"), row->kty);
    if (row->key_ops == NULL || !vd_parse_attributes(r, json_object_get(body, "attributes"), row) ||
        !vd_parse_tags(r, json_object_get(body, "tags"), row))
        goto done;

    snprintf(row->vault, sizeof(row->vault), "%s", r->vault.name);
    snprintf(row->name, sizeof(row->name), "%s", name);
    if (vd_random_hex(row->version, 16) != KV_OK)
        goto fail;
    g->ctx = r->ctx;
    g->bits = bits;
    g->nid = nid;
    json_decref(body);
    vd_req_defer(r, vd_keygen_work, vd_keygen_done, g); /* answers; frees g */
    return;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The key could not be created.");
done:
    if (g != NULL)
        vd_keygen_free(g);
    json_decref(body);
}

/* ---- get / list / versions ---- */

void vd_keys_get(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};

    if (vd_key_load(r, name, version, &row))
        vd_reply_bundle(r, &row);
    vd_key_row_clear(&row);
}

/* maxresults (1..25, default 25); false after answering 400. */
bool vd_max_results(vd_req *r, size_t *out)
{
    const char *s = vd_req_param(r, "maxresults");
    char *end;
    long n;

    *out = VD_MAX_RESULTS;
    if (s == NULL || s[0] == '\0')
        return true;
    n = strtol(s, &end, 10);
    if (*end != '\0' || n < 1 || n > VD_MAX_RESULTS) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid value for maxresults: it must be between 1 and 25.");
        return false;
    }
    *out = (size_t)n;
    return true;
}

/* Decodes $skiptoken ("<prefix><value>" in base64url) into out; "" when absent. */
bool vd_skiptoken(vd_req *r, char prefix, char *out, size_t outlen)
{
    const char *s = vd_req_param(r, "$skiptoken");
    uint8_t *raw = NULL;
    size_t len = 0;
    bool ok = false;

    out[0] = '\0';
    if (s == NULL || s[0] == '\0')
        return true;
    if (kv_b64_decode(s, &raw, &len) == KV_OK && len >= 2 && len < outlen && raw[0] == prefix &&
        memchr(raw, '\0', len) == NULL) {
        memcpy(out, raw + 1, len - 1);
        out[len - 1] = '\0';
        ok = true;
    }
    free(raw);
    if (!ok)
        vd_reply_error(r, 400, "BadParameter", NULL, "Invalid $skiptoken.");
    return ok;
}

/* Sets nextLink (absolute, on the request's Host) or null. */
void vd_set_next_link(vd_req *r, json_t *page, const char *path, char prefix, const char *after,
                      size_t max)
{
    const char *api = vd_req_param(r, "api-version");
    char base[300], link[1200], tok[200], *t64, *api_enc = NULL;
    size_t i, o = 0;

    if (after == NULL) {
        json_object_set_new(page, "nextLink", json_null());
        return;
    }
    snprintf(tok, sizeof(tok), "%c%s", prefix, after);
    t64 = kv_b64url_encode((const uint8_t *)tok, strlen(tok));
    api_enc = malloc(3 * strlen(api ? api : "") + 1);
    if (t64 == NULL || api_enc == NULL) {
        json_object_set_new(page, "nextLink", json_null());
        goto done;
    }
    for (i = 0; api && api[i] != '\0'; i++) {
        if (isalnum((unsigned char)api[i]) || strchr("-._~", api[i]) != NULL)
            api_enc[o++] = api[i];
        else
            o += (size_t)sprintf(api_enc + o, "%%%02X", (unsigned char)api[i]);
    }
    api_enc[o] = '\0';
    vd_base_url(r, base, sizeof(base));
    snprintf(link, sizeof(link), "%s%s?api-version=%s&$skiptoken=%s&maxresults=%zu", base, path,
             api_enc, t64, max);
    json_object_set_new(page, "nextLink", json_string(link));
done:
    free(t64);
    free(api_enc);
}

void vd_keys_list(vd_req *r, const char *name, const char *version)
{
    vd_key_row *rows = NULL;
    size_t n = 0, max, i;
    char after[VD_NAME_MAX + 2];
    json_t *value = NULL, *page;

    (void)name;
    (void)version;
    if (!vd_max_results(r, &max) || !vd_skiptoken(r, 'n', after, sizeof(after)))
        return;
    if (vd_store_key_list(r->store, r->vault.name, after[0] ? after : NULL, max + 1, &rows, &n) !=
        KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The keys could not be listed.");
        return;
    }
    value = json_array();
    for (i = 0; i < n && i < max; i++)
        json_array_append_new(value, vd_key_item(r, &rows[i], false));
    page = json_pack("{s:o}", "value", value);
    vd_set_next_link(r, page, "/keys", 'n', n > max ? rows[max - 1].name : NULL, max);
    vd_reply_json(r, 200, page);
    vd_key_rows_free(rows, n);
}

void vd_keys_versions(vd_req *r, const char *name, const char *version)
{
    vd_key_row *rows = NULL;
    size_t n = 0, max, i;
    char after[32], seq[32], path[VD_NAME_MAX + 32];
    long long after_seq = 0;
    json_t *value = NULL, *page;

    (void)version;
    if (!vd_max_results(r, &max) || !vd_skiptoken(r, 'v', after, sizeof(after)))
        return;
    if (after[0] != '\0')
        after_seq = strtoll(after, NULL, 10);
    if (!vd_key_name_ok(name)) {
        vd_key_not_found(r, name, NULL);
        return;
    }
    if (vd_store_key_versions(r->store, r->vault.name, name, after_seq, max + 1, &rows, &n) !=
        KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The versions could not be listed.");
        return;
    }
    if (n == 0 && after_seq == 0) {
        vd_key_not_found(r, name, NULL);
        vd_key_rows_free(rows, n);
        return;
    }
    value = json_array();
    for (i = 0; i < n && i < max; i++)
        json_array_append_new(value, vd_key_item(r, &rows[i], true));
    page = json_pack("{s:o}", "value", value);
    if (n > max)
        snprintf(seq, sizeof(seq), "%lld", rows[max - 1].seq);
    snprintf(path, sizeof(path), "/keys/%s/versions", n > 0 ? rows[0].name : name);
    vd_set_next_link(r, page, path, 'v', n > max ? seq : NULL, max);
    vd_reply_json(r, 200, page);
    vd_key_rows_free(rows, n);
}

/* ---- sign / verify ---- */

bool vd_has_op(const vd_key_row *row, const char *op)
{
    json_t *ops = json_loads(row->key_ops, 0, NULL), *v;
    bool found = false;
    size_t i;

    json_array_foreach(ops, i, v) found =
        found || (json_is_string(v) && strcmp(json_string_value(v), op) == 0);
    json_decref(ops);
    return found;
}

/* Checks the key state for op: enabled, key_ops, and (when check_dates) nbf/exp. */
bool vd_key_allows(vd_req *r, const vd_key_row *row, const char *op, bool check_dates)
{
    long long now = vd_now();

    if (!row->enabled) {
        vd_reply_error(r, 403, "Forbidden", "KeyOperationForbidden",
                       "Operation %s is not allowed on a disabled key.", op);
        return false;
    }
    if (check_dates && row->has_nbf && now < row->nbf) {
        vd_reply_error(r, 403, "Forbidden", "KeyOperationForbidden",
                       "Operation %s is not allowed on a key that is not yet valid (nbf).", op);
        return false;
    }
    if (check_dates && row->has_exp && now >= row->exp) {
        vd_reply_error(r, 403, "Forbidden", "KeyOperationForbidden",
                       "Operation %s is not allowed on an expired key.", op);
        return false;
    }
    if (!vd_has_op(row, op)) {
        vd_reply_error(r, 403, "Forbidden", "KeyOperationForbidden",
                       "Operation %s is not permitted on this key.", op);
        return false;
    }
    return true;
}

/* Reads alg and a base64url member of body; false after answering 400. */
static bool vd_op_params(vd_req *r, json_t *body, const char *member, const vd_alg **alg,
                         uint8_t **data, size_t *len)
{
    const json_t *a = json_object_get(body, "alg"), *v = json_object_get(body, member);

    *alg = json_is_string(a) ? vd_alg_by_name(json_string_value(a)) : NULL;
    if (*alg == NULL) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid or missing algorithm (alg): use RS256, RS384, RS512, PS256, PS384,"
                       " PS512, RSNULL, ES256, ES384, ES512 or ES256K.");
        return false;
    }
    if (!json_is_string(v) || kv_b64_decode(json_string_value(v), data, len) != KV_OK) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter %s is missing or not valid base64url.", member);
        return false;
    }
    return true;
}

/* Checks that alg goes with the key and the input length is right; false after 400. */
static bool vd_alg_checks(vd_req *r, const vd_alg *alg, EVP_PKEY *pub, size_t inlen)
{
    size_t k;

    if (!vd_alg_fits_key(alg, pub)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Algorithm %s is not valid for this key's type or curve.", alg->name);
        return false;
    }
    if (alg->dlen == 0) {
        k = (size_t)EVP_PKEY_get_size(pub);
        if (inlen == 0 || inlen + 11 > k) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "Invalid input length for RSNULL: %zu bytes (at most %zu).", inlen,
                           k > 11 ? k - 11 : 0);
            return false;
        }
    } else if (inlen != alg->dlen) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "Invalid digest length for %s: expected %zu bytes, got %zu.", alg->name,
                       alg->dlen, inlen);
        return false;
    }
    return true;
}

/* The private key of row, from the cache or decrypted from the store. */
EVP_PKEY *vd_private_key(vd_req *r, const vd_key_row *row)
{
    EVP_PKEY *pkey = vd_keycache_get(r->ctx->keycache, row->vault, row->version);
    char aad[300];

    if (pkey != NULL)
        return pkey;
    vd_key_aad(row, aad, sizeof(aad));
    if (vd_crypto_unwrap_pkey(r->ctx->kek, aad, row->iv, row->wrapped, row->wrapped_len, &pkey) !=
        KV_OK)
        return NULL;
    vd_keycache_put(r->ctx->keycache, row->vault, row->version, pkey);
    return pkey;
}

void vd_keys_sign(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    json_t *body = NULL;
    const vd_alg *alg;
    uint8_t *digest = NULL, *sig = NULL;
    size_t dlen = 0, siglen = 0;
    EVP_PKEY *pub = NULL, *priv = NULL;
    char kid[600], *s64 = NULL;

    if (!vd_key_load(r, name, version, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL || !vd_op_params(r, body, "value", &alg, &digest, &dlen))
        goto done;
    if (vd_crypto_pub_from_der(row.pub_der, row.pub_len, &pub) != KV_OK)
        goto fail;
    if (!vd_alg_checks(r, alg, pub, dlen) || !vd_key_allows(r, &row, "sign", true))
        goto done;
    priv = vd_private_key(r, &row);
    if (priv == NULL || vd_crypto_sign(priv, alg, digest, dlen, &sig, &siglen) != KV_OK)
        goto fail;
    s64 = kv_b64url_encode(sig, siglen);
    if (s64 == NULL)
        goto fail;
    vd_kid(r, &row, true, kid, sizeof(kid));
    vd_reply_json(r, 200, json_pack("{s:s, s:s}", "kid", kid, "value", s64));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The signature could not be made.");
done:
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
    free(s64);
    free(sig);
    vd_free_secret(digest, dlen);
    json_decref(body);
    vd_key_row_clear(&row);
}

void vd_keys_verify(vd_req *r, const char *name, const char *version)
{
    vd_key_row row = {0};
    json_t *body = NULL;
    const vd_alg *alg;
    uint8_t *digest = NULL, *sig = NULL;
    size_t dlen = 0, siglen = 0;
    EVP_PKEY *pub = NULL;
    bool ok = false;
    const json_t *v;

    if (!vd_key_load(r, name, version, &row))
        goto done;
    body = vd_req_json_body(r);
    if (body == NULL || !vd_op_params(r, body, "digest", &alg, &digest, &dlen))
        goto done;
    v = json_object_get(body, "value");
    if (!json_is_string(v) || kv_b64_decode(json_string_value(v), &sig, &siglen) != KV_OK) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter value is missing or not valid base64url.");
        goto done;
    }
    if (vd_crypto_pub_from_der(row.pub_der, row.pub_len, &pub) != KV_OK)
        goto fail;
    if (!vd_alg_checks(r, alg, pub, dlen) || !vd_key_allows(r, &row, "verify", false))
        goto done;
    if (vd_crypto_verify(pub, alg, digest, dlen, sig, siglen, &ok) != KV_OK)
        goto fail;
    vd_reply_json(r, 200, json_pack("{s:b}", "value", ok));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The signature could not be checked.");
done:
    EVP_PKEY_free(pub);
    free(sig);
    free(digest);
    json_decref(body);
    vd_key_row_clear(&row);
}
