/* vd_certs_issuers.c - certificate contacts (GET / PUT / DELETE /certificates/contacts) and
 * certificate issuers (PUT / GET / PATCH / DELETE /certificates/issuers/{name}, GET
 * /certificates/issuers) of a vault, in Azure's Contacts and IssuerBundle shapes. They are
 * stored as JSON documents (vd_store_certs.c); an issuer's credentials.pwd is kept encrypted
 * under the KEK (AES-256-GCM, AAD "issuer|vault|name|pwd") and never returned. vaultd does not
 * enrol certificates with the issuers' CAs: the issuers are configuration, as Azure keeps them
 * for its partner CAs. */
#include "vd_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "vd_certs_int.h"
#include "vd_keys_int.h"
#include "vd_sc_common.h"
#include "vd_store_certs.h"
#include "vd_util.h"

#define VD_KIND_CONTACTS "contacts"
#define VD_KIND_ISSUER "issuer"
#define VD_MAX_CONTACTS 100
#define VD_MAX_FIELD 256

static void vd_url(const vd_req *r, const char *path, char *out, size_t outlen)
{
    char base[300];

    vd_base_url(r, base, sizeof(base));
    snprintf(out, outlen, "%s/certificates/%s", base, path);
}

static bool vd_short_string(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) <= VD_MAX_FIELD;
}

/* ---- contacts ---- */

static void vd_contacts_not_found(vd_req *r)
{
    vd_reply_error(r, 404, "ContactsNotFound", NULL,
                   "Contacts not found: no certificate contacts are set for vault %s.",
                   r->vault.name);
}

/* {id, contacts} from the stored document. */
static json_t *vd_contacts_out(const vd_req *r, const char *doc)
{
    json_t *o = json_loads(doc, 0, NULL);
    char id[400];

    if (o == NULL)
        return NULL;
    vd_url(r, "contacts", id, sizeof(id));
    json_object_set_new(o, "id", json_string(id));
    return o;
}

void vd_certs_contacts_get(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    char *doc = NULL;
    json_t *o;
    kv_rv rv;

    (void)name;
    (void)version;
    if (!vd_sc_vault_only(r, &info))
        return;
    rv = vd_store_cert_setting_get(r->store, r->vault.name, VD_KIND_CONTACTS, VD_KIND_CONTACTS,
                                   &doc);
    if (rv == KV_ERR_NOT_FOUND) {
        vd_contacts_not_found(r);
        return;
    }
    o = rv == KV_OK ? vd_contacts_out(r, doc) : NULL;
    if (o == NULL)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The contacts could not be read.");
    else
        vd_reply_json(r, 200, o);
    free(doc);
}

void vd_certs_contacts_set(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    json_t *body = NULL, *list, *c, *clean = NULL, *arr;
    char *doc = NULL;
    size_t i;

    (void)name;
    (void)version;
    body = vd_sc_vault_body(r, &info);
    if (body == NULL)
        goto done;
    list = json_object_get(body, "contacts");
    if (!json_is_array(list) || json_array_size(list) > VD_MAX_CONTACTS) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter contacts must be an array of at most %d contacts "
                       "({email, name, phone}).",
                       VD_MAX_CONTACTS);
        goto done;
    }
    arr = json_array();
    clean = json_pack("{s:o}", "contacts", arr);
    if (clean == NULL)
        goto fail;
    json_array_foreach(list, i, c)
    {
        static const char *const fields[] = {"email", "name", "phone"};
        json_t *o = json_object();
        size_t f;

        if (o == NULL || json_array_append_new(arr, o) != 0)
            goto fail;
        for (f = 0; json_is_object(c) && f < 3; f++) {
            json_t *v = json_object_get(c, fields[f]);

            if (v == NULL || json_is_null(v))
                continue;
            if (!vd_short_string(v)) {
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "contacts[%zu].%s must be a string of at most %d characters.", i,
                               fields[f], VD_MAX_FIELD);
                goto done;
            }
            json_object_set(o, fields[f], v);
        }
        if (json_object_size(o) == 0) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "contacts[%zu] must give at least one of email, name and phone.", i);
            goto done;
        }
        if (json_object_get(o, "email") != NULL &&
            strchr(json_string_value(json_object_get(o, "email")), '@') == NULL) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "contacts[%zu].email is not a valid email address.", i);
            goto done;
        }
    }
    doc = json_dumps(clean, JSON_COMPACT);
    if (doc == NULL || vd_store_cert_setting_put(r->store, r->vault.name, VD_KIND_CONTACTS,
                                                 VD_KIND_CONTACTS, doc) != KV_OK)
        goto fail;
    vd_reply_json(r, 200, vd_contacts_out(r, doc));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The contacts could not be saved.");
done:
    free(doc);
    json_decref(clean);
    json_decref(body);
}

void vd_certs_contacts_delete(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    char *doc = NULL;
    json_t *o = NULL;
    kv_rv rv;

    (void)name;
    (void)version;
    if (!vd_sc_vault_only(r, &info))
        return;
    rv = vd_store_cert_setting_get(r->store, r->vault.name, VD_KIND_CONTACTS, VD_KIND_CONTACTS,
                                   &doc);
    if (rv == KV_OK && (o = vd_contacts_out(r, doc)) == NULL)
        rv = KV_ERR_INTERNAL;
    if (rv == KV_OK)
        rv = vd_store_cert_setting_delete(r->store, r->vault.name, VD_KIND_CONTACTS,
                                          VD_KIND_CONTACTS);
    if (rv == KV_OK) {
        vd_reply_json(r, 200, o);
        o = NULL;
    } else if (rv == KV_ERR_NOT_FOUND) {
        vd_contacts_not_found(r);
    } else {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The contacts could not be deleted.");
    }
    json_decref(o);
    free(doc);
}

/* ---- issuers ---- */

static void vd_issuer_not_found(vd_req *r, const char *name)
{
    vd_reply_error(r, 404, "CertificateIssuerNotFound", NULL,
                   "Issuer not found: a certificate issuer named %.127s does not exist in this "
                   "key vault.",
                   name ? name : "");
}

/* IssuerBundle from the stored document: never the password. item: {id, provider} only. */
static json_t *vd_issuer_out(const vd_req *r, const json_t *doc, bool item)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    json_t *o, *v;
    char id[600], path[VD_NAME_MAX + 16];

    snprintf(path, sizeof(path), "issuers/%s", name ? name : "");
    vd_url(r, path, id, sizeof(id));
    o = json_pack("{s:s, s:O}", "id", id, "provider", json_object_get(doc, "provider"));
    if (o == NULL || item)
        return o;
    v = json_object_get(doc, "account_id");
    json_object_set_new(o, "credentials",
                        json_is_string(v) ? json_pack("{s:O}", "account_id", v) : json_object());
    v = json_object_get(doc, "org_details");
    if (json_is_object(v))
        json_object_set(o, "org_details", v);
    json_object_set_new(o, "attributes",
                        json_pack("{s:O, s:O, s:O}", "enabled", json_object_get(doc, "enabled"),
                                  "created", json_object_get(doc, "created"), "updated",
                                  json_object_get(doc, "updated")));
    return o;
}

/* Validates org_details: {id?, admin_details?: [{first_name, last_name, email, phone}]}. */
static bool vd_org_details_ok(const json_t *od)
{
    const json_t *a, *d;
    const char *k;
    json_t *v;
    size_t i;

    if (!json_is_object(od))
        return false;
    if (json_object_get(od, "id") != NULL && !vd_short_string(json_object_get(od, "id")))
        return false;
    a = json_object_get(od, "admin_details");
    if (a == NULL)
        return true;
    if (!json_is_array(a) || json_array_size(a) > 20)
        return false;
    json_array_foreach(a, i, d)
    {
        if (!json_is_object(d))
            return false;
        json_object_foreach((json_t *)d, k,
                            v) if ((strcmp(k, "first_name") != 0 && strcmp(k, "last_name") != 0 &&
                                    strcmp(k, "email") != 0 && strcmp(k, "phone") != 0) ||
                                   !vd_short_string(v)) return false;
    }
    return true;
}

/* Applies a PUT / PATCH body to doc (created fresh for PUT). false after answering 400. */
static bool vd_issuer_apply(vd_req *r, const char *name, json_t *doc, const json_t *body, bool put)
{
    const json_t *prov = json_object_get(body, "provider"), *cred, *od, *attrs, *v;

    if (!json_is_object(body)) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The request body must be a JSON object.");
        return false;
    }
    if ((put || (prov != NULL && !json_is_null(prov))) &&
        (!json_is_string(prov) || json_string_length(prov) == 0 || json_string_length(prov) > 64)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The parameter provider is missing or invalid (e.g. DigiCert, "
                       "GlobalSign).");
        return false;
    }
    if (json_is_string(prov))
        json_object_set(doc, "provider", (json_t *)prov);
    cred = json_object_get(body, "credentials");
    if (cred != NULL && !json_is_null(cred)) {
        if (!json_is_object(cred)) {
            vd_reply_error(r, 400, "BadParameter", NULL, "credentials must be an object.");
            return false;
        }
        v = json_object_get(cred, "account_id");
        if (v != NULL && !json_is_null(v)) {
            if (!vd_short_string(v)) {
                vd_reply_error(r, 400, "BadParameter", NULL,
                               "credentials.account_id must be a string.");
                return false;
            }
            json_object_set(doc, "account_id", (json_t *)v);
        }
        v = json_object_get(cred, "pwd");
        if (v != NULL && !json_is_null(v)) {
            uint8_t iv[12], *ct = NULL;
            size_t ctlen = 0;
            char aad[400], *iv64 = NULL, *ct64 = NULL;
            bool ok;

            if (!vd_short_string(v)) {
                vd_reply_error(r, 400, "BadParameter", NULL, "credentials.pwd must be a string.");
                return false;
            }
            vd_sc_aad("issuer", r->vault.name, name, "pwd", aad, sizeof(aad));
            ok = vd_sc_seal(r->ctx->kek, aad, (const uint8_t *)json_string_value(v),
                            json_string_length(v), iv, &ct, &ctlen) == KV_OK &&
                 (iv64 = kv_b64url_encode(iv, sizeof(iv))) != NULL &&
                 (ct64 = kv_b64url_encode(ct, ctlen)) != NULL;
            if (ok)
                json_object_set_new(doc, "pwd", json_pack("{s:s, s:s}", "iv", iv64, "ct", ct64));
            free(ct);
            free(iv64);
            free(ct64);
            if (!ok) {
                vd_reply_error(r, 500, "InternalServerError", NULL,
                               "The issuer's password could not be protected.");
                return false;
            }
        }
    }
    od = json_object_get(body, "org_details");
    if (od != NULL && !json_is_null(od)) {
        if (!vd_org_details_ok(od)) {
            vd_reply_error(r, 400, "BadParameter", NULL,
                           "org_details must be {id, admin_details: [{first_name, last_name, "
                           "email, phone}]} with strings.");
            return false;
        }
        json_object_set(doc, "org_details", (json_t *)od);
    }
    attrs = json_object_get(body, "attributes");
    if (attrs != NULL && !json_is_null(attrs)) {
        v = json_is_object(attrs) ? json_object_get(attrs, "enabled") : NULL;
        if (!json_is_object(attrs) || (v != NULL && !json_is_null(v) && !json_is_boolean(v))) {
            vd_reply_error(r, 400, "BadParameter", NULL, "attributes.enabled must be a boolean.");
            return false;
        }
        if (json_is_boolean(v))
            json_object_set(doc, "enabled", (json_t *)v);
    }
    if (json_object_get(doc, "enabled") == NULL)
        json_object_set_new(doc, "enabled", json_true());
    json_object_set_new(doc, "updated", json_integer(vd_now()));
    if (json_object_get(doc, "created") == NULL)
        json_object_set_new(doc, "created", json_object_get(doc, "updated"));
    return true;
}

/* Loads an issuer's document; false after answering 404 / 500. */
static bool vd_issuer_load(vd_req *r, const char *name, json_t **doc)
{
    char *text = NULL;
    kv_rv rv = vd_sc_name_ok(name)
                   ? vd_store_cert_setting_get(r->store, r->vault.name, VD_KIND_ISSUER, name, &text)
                   : KV_ERR_NOT_FOUND;

    *doc = NULL;
    if (rv == KV_OK && (*doc = json_loads(text, 0, NULL)) == NULL)
        rv = KV_ERR_INTERNAL;
    free(text);
    if (rv == KV_ERR_NOT_FOUND)
        vd_issuer_not_found(r, name);
    else if (rv != KV_OK)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The issuer could not be read.");
    return rv == KV_OK;
}

static void vd_issuer_save(vd_req *r, const char *name, bool put)
{
    vd_vault_info info;
    json_t *body = NULL, *doc = NULL;
    char *text = NULL;

    if (!vd_sc_vault_only(r, &info))
        goto done;
    if (!vd_sc_name_ok(name)) {
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The issuer name must be 1-127 characters of 0-9, a-z, A-Z and '-'.");
        goto done;
    }
    body = vd_req_json_body(r);
    if (body == NULL)
        goto done;
    if (put) {
        json_t *old = NULL;
        char *prev = NULL;

        doc = json_pack("{s:s}", "name", name);
        /* a PUT over an existing issuer keeps its creation time and stored spelling */
        if (vd_store_cert_setting_get(r->store, r->vault.name, VD_KIND_ISSUER, name, &prev) ==
                KV_OK &&
            (old = json_loads(prev, 0, NULL)) != NULL && doc != NULL) {
            json_object_set(doc, "created", json_object_get(old, "created"));
            json_object_set(doc, "name", json_object_get(old, "name"));
        }
        json_decref(old);
        free(prev);
        if (doc == NULL)
            goto fail;
    } else if (!vd_issuer_load(r, name, &doc)) {
        goto done;
    }
    if (!vd_issuer_apply(r, json_string_value(json_object_get(doc, "name")), doc, body, put))
        goto done;
    text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL ||
        vd_store_cert_setting_put(r->store, r->vault.name, VD_KIND_ISSUER,
                                  json_string_value(json_object_get(doc, "name")), text) != KV_OK)
        goto fail;
    vd_reply_json(r, 200, vd_issuer_out(r, doc, false));
    goto done;
fail:
    vd_reply_error(r, 500, "InternalServerError", NULL, "The issuer could not be saved.");
done:
    vd_sc_json_wipe(json_object_get(body, "credentials"), "pwd");
    json_decref(body);
    json_decref(doc);
    free(text);
}

void vd_certs_issuer_set(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_issuer_save(r, name, true);
}

void vd_certs_issuer_update(vd_req *r, const char *name, const char *version)
{
    (void)version;
    vd_issuer_save(r, name, false);
}

void vd_certs_issuer_get(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    json_t *doc = NULL;

    (void)version;
    if (vd_sc_vault_only(r, &info) && vd_issuer_load(r, name, &doc))
        vd_reply_json(r, 200, vd_issuer_out(r, doc, false));
    json_decref(doc);
}

void vd_certs_issuer_delete(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    json_t *doc = NULL;

    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_issuer_load(r, name, &doc))
        goto done;
    if (vd_store_cert_setting_delete(r->store, r->vault.name, VD_KIND_ISSUER,
                                     json_string_value(json_object_get(doc, "name"))) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The issuer could not be deleted.");
        goto done;
    }
    vd_reply_json(r, 200, vd_issuer_out(r, doc, false));
done:
    json_decref(doc);
}

void vd_certs_issuers_list(vd_req *r, const char *name, const char *version)
{
    vd_vault_info info;
    char **docs = NULL, after[VD_NAME_MAX + 2];
    size_t n = 0, max, i;
    json_t *value, *page, *last = NULL;

    (void)name;
    (void)version;
    if (!vd_sc_vault_only(r, &info) || !vd_max_results(r, &max) ||
        !vd_skiptoken(r, 'n', after, sizeof(after)))
        return;
    if (vd_store_cert_setting_list(r->store, r->vault.name, VD_KIND_ISSUER, after[0] ? after : NULL,
                                   max + 1, &docs, &n) != KV_OK) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "The issuers could not be listed.");
        return;
    }
    value = json_array();
    for (i = 0; i < n && i < max; i++) {
        json_t *d = json_loads(docs[i], 0, NULL);

        if (d != NULL)
            json_array_append_new(value, vd_issuer_out(r, d, true));
        if (i + 1 == max) {
            json_decref(last);
            last = d;
        } else {
            json_decref(d);
        }
    }
    page = json_pack("{s:o}", "value", value);
    vd_set_next_link(
        r, page, "/certificates/issuers", 'n',
        n > max && last != NULL ? json_string_value(json_object_get(last, "name")) : NULL, max);
    vd_reply_json(r, 200, page);
    json_decref(last);
    vd_store_cert_docs_free(docs, n);
}
