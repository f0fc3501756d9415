/* kv_token_entra.c - the Microsoft identity platform's client credentials flow (v2 token
 * endpoint) with a client secret or a certificate's client assertion. */
#include "kv_token_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "kv_client.h"

/* Appends "&name=urlencoded(value)" to a growing form body (zeroising what it drops). */
static int form_add(CURL *c, char **form, size_t *len, const char *name, const char *value)
{
    char *enc = curl_easy_escape(c, value, 0);
    size_t need;
    char *nf;

    if (enc == NULL)
        return 0;
    need = *len + strlen(name) + strlen(enc) + 3;
    nf = malloc(need);
    if (nf == NULL) {
        OPENSSL_cleanse(enc, strlen(enc));
        curl_free(enc);
        return 0;
    }
    if (*form != NULL) {
        memcpy(nf, *form, *len);
        OPENSSL_cleanse(*form, *len);
        free(*form);
    }
    *len += (size_t)snprintf(nf + *len, need - *len, "%s%s=%s", *len ? "&" : "", name, enc);
    *form = nf;
    OPENSSL_cleanse(enc, strlen(enc));
    curl_free(enc);
    return 1;
}

kv_rv kv_entra_fetch(kv_http *http, const kv_cred *c, kv_cert_cred *cert, const char *tenant,
                     const char *resource, const char *ca_file, char **token, long long *expires_on,
                     kv_err *err)
{
    char url[1024], scope[600];
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          "Accept: application/json", NULL};
    char *form = NULL, *assertion = NULL;
    size_t flen = 0;
    CURL *esc = curl_easy_init();
    kv_http_req req;
    kv_http_resp resp = {0};
    json_t *j = NULL;
    json_error_t jerr;
    const char *tok;
    long long now = (long long)time(NULL), exp_in;
    kv_rv rv;

    if (esc == NULL)
        return KV_ERR_NOMEM;
    snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", c->authority, tenant);
    snprintf(scope, sizeof(scope), "%s/.default", resource);
    if (c->kind == KV_CRED_CERT) {
        rv = kv_cert_load(c->cert_path, kv_http_libctx(http), cert, err);
        if (rv == KV_OK)
            rv = kv_assertion_make(cert, kv_http_libctx(http), c->client_id, url, c->rs256,
                                   c->send_chain, now, &assertion, err);
        if (rv != KV_OK)
            goto done;
    }
    if (!form_add(esc, &form, &flen, "grant_type", "client_credentials") ||
        !form_add(esc, &form, &flen, "client_id", c->client_id) ||
        !form_add(esc, &form, &flen, "scope", scope) ||
        !(c->kind == KV_CRED_CERT
              ? form_add(esc, &form, &flen, "client_assertion_type",
                         "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") &&
                    form_add(esc, &form, &flen, "client_assertion", assertion)
              : form_add(esc, &form, &flen, "client_secret", c->secret))) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = hdrs;
    req.body = form;
    req.body_len = flen;
    req.ca_file = ca_file;
    rv = kv_http_do(http, &req, &resp, err);
    if (rv != KV_OK) {
        if (rv == KV_ERR_NETWORK)
            kv_err_prefix(err, "cannot get a token: ");
        goto done;
    }
    j = json_loadb(resp.body, resp.body_len, 0, &jerr);
    if (resp.status != 200) {
        const char *desc = json_string_value(json_object_get(j, "error_description"));
        const char *code = json_string_value(json_object_get(j, "error"));
        char first[400];

        /* Entra descriptions carry trace ids on further lines: keep the first */
        snprintf(first, sizeof(first), "%s",
                 desc != NULL ? desc : (code != NULL ? code : "no reason given"));
        first[strcspn(first, "\r\n")] = '\0';
        rv = kv_err_set(err, KV_ERR_AUTH, "token request (%s) for client %s failed (HTTP %ld): %s",
                        kv_cred_kind_name(c->kind), c->client_id, resp.status, first);
        if (err != NULL) {
            err->http_status = resp.status;
            snprintf(err->code, sizeof(err->code), "%s", code != NULL ? code : "");
        }
        goto done;
    }
    tok = json_string_value(json_object_get(j, "access_token"));
    if (tok == NULL || *tok == '\0') {
        rv = kv_err_set(err, KV_ERR_AUTH, "token response without access_token");
        goto done;
    }
    *token = strdup(tok);
    if (*token == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    {
        json_t *e = json_object_get(j, "expires_in");
        exp_in = json_is_integer(e)  ? (long long)json_integer_value(e)
                 : json_is_string(e) ? strtoll(json_string_value(e), NULL, 10)
                                     : 3600;
    }
    *expires_on = now + (exp_in > 0 ? exp_in : 1);
    rv = KV_OK;
done:
    if (resp.body != NULL)
        OPENSSL_cleanse(resp.body, resp.body_len);
    kv_http_resp_free(&resp);
    if (j != NULL) {
        json_t *at = json_object_get(j, "access_token");
        if (json_is_string(at))
            OPENSSL_cleanse((void *)json_string_value(at), json_string_length(at));
        json_decref(j);
    }
    if (form != NULL) {
        OPENSSL_cleanse(form, flen);
        free(form);
    }
    kv_free_secret(assertion);
    curl_easy_cleanup(esc);
    return rv;
}
