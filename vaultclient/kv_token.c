/* kv_token.c - client-secret token acquisition and a thread-safe token cache. The cache uses the
 * transport's short lock (kv_http_lock), which is never held across a network call; concurrent
 * refreshes may race, the last one wins. */
#include "kv_token.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "kv_client.h"
#include "kv_log.h"

#define KV_DEFAULT_AUTHORITY "https://login.microsoftonline.com"

struct kv_token_src {
    const kv_vault_conf *vc;
    kv_http *http;
    char *token;          /* cached access token, zeroised on replacement */
    long long expires_on; /* unix seconds */
    long long refresh_at; /* unix seconds: refresh from here on */
};

void kv_free_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

kv_rv kv_token_src_new(const kv_vault_conf *vc, kv_http *http, kv_token_src **out, kv_err *err)
{
    kv_token_src *ts;

    if (vc == NULL || http == NULL || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad token source");
    ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return KV_ERR_NOMEM;
    ts->vc = vc;
    ts->http = http;
    *out = ts;
    return KV_OK;
}

void kv_token_src_free(kv_token_src *ts)
{
    if (ts == NULL)
        return;
    kv_free_secret(ts->token);
    free(ts);
}

/* Appends "&name=urlencoded(value)" to a growing form body. */
static int form_add(CURL *c, char **form, size_t *len, const char *name, const char *value)
{
    char *enc = curl_easy_escape(c, value, 0);
    size_t need;
    char *nf;

    if (enc == NULL)
        return 0;
    need = *len + strlen(name) + strlen(enc) + 3;
    nf = realloc(*form, need);
    if (nf == NULL) {
        OPENSSL_cleanse(enc, strlen(enc));
        curl_free(enc);
        return 0;
    }
    *len += (size_t)snprintf(nf + *len, need - *len, "%s%s=%s", *len ? "&" : "", name, enc);
    *form = nf;
    OPENSSL_cleanse(enc, strlen(enc));
    curl_free(enc);
    return 1;
}

static kv_rv fetch_client_secret(kv_token_src *ts, char **token, long long *expires_in, kv_err *err)
{
    const kv_vault_conf *vc = ts->vc;
    const char *authority = vc->authority != NULL ? vc->authority : KV_DEFAULT_AUTHORITY;
    char url[1024], scope[600];
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                          "Accept: application/json", NULL};
    char *form = NULL;
    size_t flen = 0;
    CURL *esc = curl_easy_init();
    kv_http_req req;
    kv_http_resp resp = {0};
    json_t *j = NULL;
    json_error_t jerr;
    const char *tok;
    kv_rv rv;

    if (esc == NULL)
        return KV_ERR_NOMEM;
    snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", authority, vc->tenant_id);
    snprintf(scope, sizeof(scope), "%s/.default", kv_conf_resource(vc));
    if (!form_add(esc, &form, &flen, "grant_type", "client_credentials") ||
        !form_add(esc, &form, &flen, "client_id", vc->client_id) ||
        !form_add(esc, &form, &flen, "client_secret", vc->client_secret) ||
        !form_add(esc, &form, &flen, "scope", scope)) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = hdrs;
    req.body = form;
    req.body_len = flen;
    req.ca_file = vc->ca_file;
    rv = kv_http_do(ts->http, &req, &resp, err);
    if (rv != KV_OK) {
        if (rv == KV_ERR_NETWORK)
            kv_err_prefix(err, "cannot get a token: ");
        goto done;
    }
    j = json_loadb(resp.body, resp.body_len, 0, &jerr);
    if (resp.status != 200) {
        const char *desc = json_string_value(json_object_get(j, "error_description"));
        const char *code = json_string_value(json_object_get(j, "error"));
        rv = kv_err_set(err, KV_ERR_AUTH, "token request for client %s failed (HTTP %ld): %s",
                        vc->client_id, resp.status,
                        desc != NULL ? desc : (code != NULL ? code : "no reason given"));
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
        *expires_in = json_is_integer(e)  ? (long long)json_integer_value(e)
                      : json_is_string(e) ? strtoll(json_string_value(e), NULL, 10)
                                          : 3600;
    }
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
    curl_easy_cleanup(esc);
    return rv;
}

kv_rv kv_token_get(kv_token_src *ts, char **token, long long *expires_on, kv_err *err)
{
    long long now = (long long)time(NULL), exp_in = 0;
    char *fresh = NULL;
    kv_rv rv;

    if (ts == NULL || token == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad token request");
    *token = NULL;
    kv_http_lock(ts->http);
    if (ts->token != NULL && now < ts->refresh_at) {
        *token = strdup(ts->token);
        if (expires_on != NULL)
            *expires_on = ts->expires_on;
        kv_http_unlock(ts->http);
        return *token != NULL ? KV_OK : KV_ERR_NOMEM;
    }
    kv_http_unlock(ts->http);

    rv = fetch_client_secret(ts, &fresh, &exp_in, err);
    if (rv != KV_OK)
        return rv;
    if (exp_in < 1)
        exp_in = 1;
    kv_http_lock(ts->http);
    kv_free_secret(ts->token);
    ts->token = fresh;
    ts->expires_on = now + exp_in;
    /* Refresh a quarter of the lifetime (at most 5 minutes) before expiry. */
    ts->refresh_at = ts->expires_on - (exp_in / 4 < 300 ? exp_in / 4 : 300);
    *token = strdup(fresh);
    if (expires_on != NULL)
        *expires_on = ts->expires_on;
    kv_http_unlock(ts->http);
    KV_DEBUG("new token for client %s, valid %lld s", ts->vc->client_id, exp_in);
    return *token != NULL ? KV_OK : KV_ERR_NOMEM;
}

void kv_token_invalidate(kv_token_src *ts, const char *token)
{
    if (ts == NULL || token == NULL)
        return;
    kv_http_lock(ts->http);
    if (ts->token != NULL && strcmp(ts->token, token) == 0) {
        kv_free_secret(ts->token);
        ts->token = NULL;
    }
    kv_http_unlock(ts->http);
}
