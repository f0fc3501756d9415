/* vd_http.c - request parsing (path segments, query, body) and replies in the vault's wire
 * format, plus one access-log line per request (never tokens, secrets or bodies). */
#include "vd_http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "vd_audit.h"
#include "vd_util.h"

/* ---- query strings and forms ---- */

static int vd_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL on malformed input or NUL bytes. */
static char *vd_pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t i, o = 0;
    int hi, lo;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= len)
                goto bad;
            hi = vd_hexval(s[i + 1]);
            lo = vd_hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto bad;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
bad:
    OPENSSL_cleanse(out, len + 1);
    free(out);
    return NULL;
}

kv_rv vd_params_parse(vd_params *ps, const char *s, size_t len)
{
    size_t i = 0, start, eq, end;

    if (ps == NULL)
        return KV_ERR_INVALID_ARG;
    if (s == NULL)
        return KV_OK;
    while (i < len) {
        start = i;
        while (i < len && s[i] != '&')
            i++;
        end = i;
        i++; /* skip '&' */
        if (end == start)
            continue;
        if (ps->n >= VD_MAX_PARAMS)
            return KV_ERR_INVALID_ARG;
        for (eq = start; eq < end && s[eq] != '='; eq++)
            ;
        ps->p[ps->n].name = vd_pct_decode(s + start, eq - start);
        ps->p[ps->n].value = eq < end ? vd_pct_decode(s + eq + 1, end - eq - 1) : strdup("");
        if (ps->p[ps->n].name == NULL || ps->p[ps->n].value == NULL) {
            free(ps->p[ps->n].name);
            vd_free_secret(ps->p[ps->n].value, ps->p[ps->n].value ? strlen(ps->p[ps->n].value) : 0);
            ps->p[ps->n].name = ps->p[ps->n].value = NULL;
            return KV_ERR_INVALID_ARG;
        }
        ps->n++;
    }
    return KV_OK;
}

const char *vd_params_get(const vd_params *ps, const char *name)
{
    size_t i;

    if (ps == NULL || name == NULL)
        return NULL;
    for (i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].name, name) == 0)
            return ps->p[i].value;
    return NULL;
}

void vd_params_clear(vd_params *ps)
{
    size_t i;

    if (ps == NULL)
        return;
    for (i = 0; i < ps->n; i++) {
        free(ps->p[i].name);
        vd_free_secret(ps->p[i].value, strlen(ps->p[i].value));
    }
    ps->n = 0;
}

/* ---- requests ---- */

static const char *vd_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "UNKNOWN";
}

static void vd_req_set_host(vd_req *r)
{
    const char *h = vd_req_header(r, "Host");
    size_t i, len;

    r->host[0] = r->hostname[0] = '\0';
    if (h == NULL)
        return;
    len = strlen(h);
    if (len == 0 || len >= sizeof(r->host))
        return;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)h[i]) && strchr(".-:[]", h[i]) == NULL)
            return;
    memcpy(r->host, h, len + 1);
    if (h[0] == '[') {
        const char *close = strchr(h, ']');

        len = close ? (size_t)(close - h - 1) : 0;
        memcpy(r->hostname, h + 1, len);
    } else {
        const char *colon = strchr(h, ':');

        len = colon ? (size_t)(colon - h) : len;
        memcpy(r->hostname, h, len);
    }
    r->hostname[len] = '\0';
    for (i = 0; i < len; i++)
        r->hostname[i] = (char)tolower((unsigned char)r->hostname[i]);
}

kv_rv vd_req_init(vd_req *r, struct evhttp_request *ev, vd_ctx *ctx, vd_store *st)
{
    const char *uri, *q;
    struct evbuffer *in;
    size_t plen;
    char *p;

    memset(r, 0, sizeof(*r));
    r->start_ms = vd_mono_ms();
    r->ev = ev;
    r->ctx = ctx;
    r->store = st;
    r->method = vd_method_name(evhttp_request_get_command(ev));
    if (vd_guid(r->request_id) != KV_OK)
        snprintf(r->request_id, sizeof(r->request_id), "00000000-0000-0000-0000-000000000000");
    vd_req_set_host(r);

    uri = evhttp_request_get_uri(ev);
    if (uri == NULL || uri[0] != '/')
        return KV_ERR_INVALID_ARG;
    q = strchr(uri, '?');
    plen = q ? (size_t)(q - uri) : strlen(uri);
    r->path = strndup(uri, plen);
    r->segbuf = strndup(uri + 1, plen - 1);
    if (r->path == NULL || r->segbuf == NULL)
        return KV_ERR_NOMEM;
    p = r->segbuf;
    for (;;) {
        if (r->nsegs >= VD_MAX_SEGS)
            return KV_ERR_INVALID_ARG;
        r->segs[r->nsegs++] = p;
        p = strchr(p, '/');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    if (q != NULL && vd_params_parse(&r->query, q + 1, strlen(q + 1)) != KV_OK)
        return KV_ERR_INVALID_ARG;

    in = evhttp_request_get_input_buffer(ev);
    r->body_len = in ? evbuffer_get_length(in) : 0;
    if (r->body_len > VD_MAX_BODY)
        return KV_ERR_INVALID_ARG;
    r->body = malloc(r->body_len + 1);
    if (r->body == NULL)
        return KV_ERR_NOMEM;
    if (r->body_len > 0 && evbuffer_copyout(in, r->body, r->body_len) != (ev_ssize_t)r->body_len)
        return KV_ERR_INTERNAL;
    r->body[r->body_len] = '\0';
    return KV_OK;
}

void vd_req_cleanup(vd_req *r)
{
    if (r == NULL)
        return;
    free(r->path);
    free(r->segbuf);
    vd_params_clear(&r->query);
    vd_free_secret(r->body, r->body ? r->body_len + 1 : 0);
    r->path = r->segbuf = r->body = NULL;
}

const char *vd_req_param(const vd_req *r, const char *name)
{
    return vd_params_get(&r->query, name);
}

const char *vd_req_header(const vd_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

void vd_add_header(vd_req *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

json_t *vd_req_json_body(vd_req *r)
{
    json_error_t jerr;
    json_t *j;

    if (r->body_len == 0) {
        vd_reply_error(r, 400, "BadParameter", NULL, "The request body is missing.");
        return NULL;
    }
    j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        vd_reply_error(r, 400, "BadParameter", NULL,
                       "The request body is not a valid JSON object.");
        return NULL;
    }
    return j;
}

/* ---- replies ---- */

static const char *vd_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* One access-log line: time, method, path (no query), status, latency. */
static void vd_log_request(const vd_req *r)
{
    char line[600], path[256], ts[32];
    const char *p = r->path ? r->path : "?";
    struct tm tm;
    time_t now = time(NULL);
    size_t i;
    int n;

    for (i = 0; i < sizeof(path) - 1 && p[i] != '\0'; i++)
        path[i] = isprint((unsigned char)p[i]) && p[i] != ' ' ? p[i] : '?';
    path[i] = '\0';
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(line, sizeof(line), "%s vaultd: %s %s %d %.1f ms\n", ts, r->method, path,
                 r->status, vd_mono_ms() - r->start_ms);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static bool vd_header_value_ok(const char *v)
{
    size_t i;

    for (i = 0; v[i] != '\0'; i++)
        if (i >= 128 || (!isalnum((unsigned char)v[i]) && strchr("-_.:{}", v[i]) == NULL))
            return false;
    return i > 0;
}

void vd_reply_json(vd_req *r, int status, json_t *body)
{
    struct evbuffer *buf = NULL;
    const char *crid;
    char *text = NULL;

    if (r->replied) {
        json_decref(body);
        return;
    }
    r->replied = true;
    vd_audit_on_reply(r, &status, &body); /* fail closed: may turn the reply into 503 */
    r->status = status;
    if (evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Cache-Control") == NULL)
        vd_add_header(r, "Cache-Control", "no-cache");
    vd_add_header(r, "x-ms-request-id", r->request_id);
    vd_add_header(r, "x-ms-keyvault-service-version", VD_SERVICE_VERSION);
    vd_add_header(r, "x-ms-keyvault-region", "local");
    crid = vd_req_header(r, "x-ms-client-request-id");
    if (crid != NULL && vd_header_value_ok(crid))
        vd_add_header(r, "x-ms-client-request-id", crid);
    if (body != NULL) {
        vd_add_header(r, "Content-Type", "application/json; charset=utf-8");
        text = json_dumps(body, JSON_COMPACT);
        buf = evbuffer_new();
        if (text == NULL || buf == NULL) {
            r->status = status = 500;
        } else {
            evbuffer_add(buf, text, strlen(text));
        }
    }
    evhttp_send_reply(r->ev, status, vd_reason(status), buf);
    vd_log_request(r);
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text)); /* may hold a token */
        free(text);
    }
    if (buf != NULL)
        evbuffer_free(buf);
    json_decref(body);
}

void vd_reply_error(vd_req *r, int status, const char *code, const char *inner, const char *fmt,
                    ...)
{
    char msg[512];
    json_t *err;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (err != NULL && inner != NULL)
        json_object_set_new(err, "innererror", json_pack("{s:s}", "code", inner));
    vd_reply_json(r, status, err ? json_pack("{s:o}", "error", err) : NULL);
}
