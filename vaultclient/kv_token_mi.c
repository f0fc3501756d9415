/* kv_token_mi.c - managed identity tokens: the App Service endpoint (IDENTITY_ENDPOINT with
 * X-IDENTITY-HEADER, api-version 2019-08-01) and IMDS (Metadata: true, api-version
 * 2018-02-01), with the IMDS retry schedule (404, 410, 429 and 5xx after ~0, 2, 6, 14, 30 s)
 * inside the configured timeout, and expires_on as epoch seconds or ISO-8601. */
#include "kv_token_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "kv_client.h"
#include "kv_log.h"

static int digits(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long long days_from_civil(int y, int m, int d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

kv_rv kv_parse_expires_on(const char *s, long long *out)
{
    const char *p = s;
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 1;
    char *end;
    long long v;

    if (s == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return KV_ERR_INVALID_ARG;
    errno = 0;
    v = strtoll(p, &end, 10);
    if (end != p && errno == 0) {
        if (*end == '.')
            for (end++; isdigit((unsigned char)*end); end++)
                ;
        while (isspace((unsigned char)*end))
            end++;
        if (*end == '\0') {
            if (v <= 0)
                return KV_ERR_INVALID_ARG;
            *out = v;
            return KV_OK;
        }
    }
    /* ISO-8601: YYYY-MM-DD[T ]HH:MM:SS[.fff](Z|+HH:MM|-HH:MM|+HHMM) */
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return KV_ERR_INVALID_ARG;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &se))
        return KV_ERR_INVALID_ARG;
    if (*p == '.' || *p == ',') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits(&p, 2, &oh))
            return KV_ERR_INVALID_ARG;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p) && !digits(&p, 2, &om))
            return KV_ERR_INVALID_ARG;
    } else if (*p != '\0') {
        return KV_ERR_INVALID_ARG;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 ||
        oh > 23 || om > 59 || y < 1970)
        return KV_ERR_INVALID_ARG;
    *out =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    return *out > 0 ? KV_OK : KV_ERR_INVALID_ARG;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int retryable(long status)
{
    return status == 404 || status == 410 || status == 429 ||
           (status >= 500 && status != 501 && status != 505);
}

/* Builds the request URL: endpoint?api-version=..&resource=..[&client_id=..]. */
static kv_rv mi_url(const kv_cred *c, const char *resource, char **out)
{
    CURL *esc = curl_easy_init();
    char *r = NULL, *id = NULL;
    size_t need;
    kv_rv rv = KV_ERR_NOMEM;

    if (esc == NULL)
        return KV_ERR_NOMEM;
    r = curl_easy_escape(esc, resource, 0);
    if (c->client_id != NULL)
        id = curl_easy_escape(esc, c->client_id, 0);
    if (r == NULL || (c->client_id != NULL && id == NULL))
        goto done;
    need = strlen(c->mi_url) + strlen(r) + (id ? strlen(id) : 0) + 80;
    *out = malloc(need);
    if (*out == NULL)
        goto done;
    snprintf(*out, need, "%s%capi-version=%s&resource=%s%s%s", c->mi_url,
             strchr(c->mi_url, '?') != NULL ? '&' : '?',
             c->kind == KV_CRED_MI_APPSVC ? "2019-08-01" : "2018-02-01", r,
             id != NULL ? "&client_id=" : "", id != NULL ? id : "");
    rv = KV_OK;
done:
    curl_free(r);
    curl_free(id);
    curl_easy_cleanup(esc);
    return rv;
}

kv_rv kv_mi_fetch(kv_http *http, const kv_cred *c, const char *resource, const char *ca_file,
                  char **token, long long *expires_on, kv_err *err)
{
    static const long backoff_ms[] = {0, 2000, 4000, 8000, 16000}; /* at 0, 2, 6, 14, 30 s */
    char *url = NULL, *hdr = NULL;
    const char *hdrs[3];
    long long deadline = now_ms() + kv_http_timeout_ms(http), left;
    kv_http_req req;
    kv_http_resp resp = {0};
    json_t *j = NULL;
    json_error_t jerr;
    const char *tok, *what = kv_cred_kind_name(c->kind);
    size_t attempt, hlen;
    kv_rv rv;

    rv = mi_url(c, resource, &url);
    if (rv != KV_OK)
        return rv;
    if (c->kind == KV_CRED_MI_APPSVC) {
        hlen = strlen(c->mi_header) + sizeof("X-IDENTITY-HEADER: ");
        hdr = malloc(hlen);
        if (hdr == NULL) {
            rv = KV_ERR_NOMEM;
            goto done;
        }
        snprintf(hdr, hlen, "X-IDENTITY-HEADER: %s", c->mi_header);
        hdrs[0] = hdr;
    } else {
        hdrs[0] = "Metadata: true";
    }
    hdrs[1] = "Accept: application/json";
    hdrs[2] = NULL;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    req.headers = hdrs;
    req.ca_file = ca_file;
    req.identity_endpoint = 1;
    req.no_retry = 1;
    for (attempt = 0;; attempt++) {
        left = deadline - now_ms();
        req.timeout_ms = left > 1 ? (long)left : 1;
        kv_http_resp_free(&resp);
        rv = kv_http_do(http, &req, &resp, err);
        if (rv == KV_OK && !retryable(resp.status))
            break;
        if (attempt + 1 >= sizeof(backoff_ms) / sizeof(backoff_ms[0]) ||
            now_ms() + backoff_ms[attempt + 1] >= deadline || rv == KV_ERR_NOMEM)
            break;
        KV_DEBUG("managed identity endpoint %s: %s; retrying in %ld ms", c->mi_url,
                 rv == KV_OK ? "retryable status" : "no response", backoff_ms[attempt + 1]);
        sleep_ms(backoff_ms[attempt + 1]);
    }
    if (rv != KV_OK) {
        if (rv == KV_ERR_NETWORK)
            kv_err_set(err, KV_ERR_NETWORK,
                       "cannot get a token: %s endpoint %s unreachable within the timeout", what,
                       c->mi_url);
        goto done;
    }
    j = json_loadb(resp.body, resp.body_len, 0, &jerr);
    if (resp.status != 200) {
        const json_t *e = json_object_get(j, "error");
        const char *code = json_is_string(e) ? json_string_value(e)
                                             : json_string_value(json_object_get(e, "code"));
        const char *desc = json_string_value(json_object_get(j, "error_description"));
        char first[300];

        if (desc == NULL)
            desc = json_string_value(json_object_get(e, "message"));
        snprintf(first, sizeof(first), "%s", desc != NULL ? desc : "no reason given");
        first[strcspn(first, "\r\n")] = '\0';
        rv = kv_err_set(err, resp.status >= 500 ? KV_ERR_SERVER : KV_ERR_AUTH,
                        "token request (%s%s%s) failed (HTTP %ld): %s%s%s", what,
                        c->client_id != NULL ? ", client_id " : "",
                        c->client_id != NULL ? c->client_id : "", resp.status,
                        code != NULL ? code : "", code != NULL ? ": " : "", first);
        if (err != NULL) {
            err->http_status = resp.status;
            snprintf(err->code, sizeof(err->code), "%s", code != NULL ? code : "");
        }
        goto done;
    }
    tok = json_string_value(json_object_get(j, "access_token"));
    if (tok == NULL || *tok == '\0') {
        rv = kv_err_set(err, KV_ERR_AUTH, "%s response without access_token", what);
        goto done;
    }
    {
        json_t *eo = json_object_get(j, "expires_on"), *ei = json_object_get(j, "expires_in");
        long long v = 0;

        if (json_is_integer(eo))
            v = json_integer_value(eo);
        else if (json_is_string(eo) && kv_parse_expires_on(json_string_value(eo), &v) != KV_OK)
            v = 0;
        if (v <= 0 && json_is_integer(ei))
            v = (long long)time(NULL) + json_integer_value(ei);
        else if (v <= 0 && json_is_string(ei))
            v = (long long)time(NULL) + strtoll(json_string_value(ei), NULL, 10);
        if (v <= 0) {
            rv = kv_err_set(err, KV_ERR_AUTH, "%s response without a valid expires_on", what);
            goto done;
        }
        *expires_on = v;
    }
    *token = strdup(tok);
    rv = *token != NULL ? KV_OK : KV_ERR_NOMEM;
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
    kv_free_secret(hdr);
    free(url);
    return rv;
}
