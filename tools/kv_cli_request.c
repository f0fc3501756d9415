/* kv_cli_request.c - vault calls for the command line: one request, paged lists that follow
 * nextLink, and az-style reporting of what went wrong. */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_CLI_MAX_PAGES 10000

/* az prints the reason phrase in "Operation returned an invalid status 'Not Found'". */
static const char *kv_cli_reason(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

void kv_cli_print_vault_error(const kv_vault *v, kv_rv rv, const kv_err *err, json_t *resp)
{
    const char *code = (err != NULL) ? err->code : "";
    const char *msg = (err != NULL) ? err->message : "";
    json_t *e = json_is_object(resp) ? json_object_get(resp, "error") : NULL;
    json_t *inner = NULL;
    long status = (err != NULL) ? err->http_status : 0;

    if (json_is_object(e)) {
        if (json_is_string(json_object_get(e, "code")))
            code = json_string_value(json_object_get(e, "code"));
        if (json_is_string(json_object_get(e, "message")))
            msg = json_string_value(json_object_get(e, "message"));
        inner = json_object_get(e, "innererror");
    }
    if (code[0] != '\0') {
        fprintf(stderr, "ERROR: (%s) %s\nCode: %s\nMessage: %s\n", code, msg, code, msg);
        if (json_is_object(inner)) {
            char *s = json_dumps(inner, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
            if (s != NULL)
                fprintf(stderr, "Inner error: %s\n", s);
            free(s);
        }
    } else if (rv == KV_ERR_NETWORK) {
        fprintf(stderr, "ERROR: Cannot reach the vault '%s' at %s: %s\n",
                v ? kv_vault_name(v) : "?", v ? kv_vault_url(v) : "?",
                msg[0] ? msg : kv_rv_str(rv));
    } else if (rv == KV_ERR_AUTH && status == 0) {
        fprintf(stderr, "ERROR: Could not get an access token for the vault '%s': %s\n",
                v ? kv_vault_name(v) : "?", msg[0] ? msg : kv_rv_str(rv));
    } else if (status != 0) {
        fprintf(stderr, "ERROR: Operation returned an invalid status '%s'%s%s\n",
                kv_cli_reason(status), msg[0] ? ": " : "", msg);
    } else {
        fprintf(stderr, "ERROR: %s\n", msg[0] ? msg : kv_rv_str(rv));
    }
}

int kv_cli_request(kv_vault *v, const char *method, const char *path, json_t *body, json_t **resp)
{
    kv_err err = {0};
    long status = 0;
    json_t *r = NULL;
    kv_rv rv;
    int rc = KV_EXIT_ERROR;

    if (v == NULL || method == NULL || path == NULL || resp == NULL)
        return KV_EXIT_ERROR;
    *resp = NULL;
    rv = kv_vault_request(v, method, path, body, &r, &status, &err);
    if (rv != KV_OK) {
        kv_cli_print_vault_error(v, rv, &err, r);
        goto done;
    }
    *resp = r;
    r = NULL;
    rc = KV_EXIT_OK;
done:
    json_decref(r);
    return rc;
}

/* The nextLink as a path for kv_vault_request: the vault URL prefix and any api-version
 * parameter removed (kv_vault_request adds its own). NULL (after printing) if the link
 * points somewhere else. */
static char *kv_cli_next_path(const kv_vault *v, const char *link)
{
    const char *rest, *q, *p;
    char *out = NULL;
    size_t len, used;
    bool first = true;

    if (!kv_cli_url_in_vault(v, link, &rest)) {
        fprintf(stderr, "ERROR: the vault returned a nextLink outside %s: %s\n", kv_vault_url(v),
                link);
        return NULL;
    }
    len = strlen(rest);
    out = malloc(len + 2);
    if (out == NULL)
        return NULL;
    q = strchr(rest, '?');
    if (q == NULL)
        q = rest + len;
    used = (size_t)(q - rest);
    memcpy(out, rest, used);
    if (used == 0)
        out[used++] = '/';
    for (p = (*q == '?') ? q + 1 : q; *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);

        if (plen > 0 && strncmp(p, "api-version=", 12) != 0 &&
            strncmp(p, "api%2Dversion=", 14) != 0 && strncmp(p, "api%2dversion=", 14) != 0) {
            out[used++] = first ? '?' : '&';
            memcpy(out + used, p, plen);
            used += plen;
            first = false;
        }
        p += plen;
        if (*p == '&')
            p++;
    }
    out[used] = '\0';
    return out;
}

int kv_cli_list(kv_vault *v, const char *path, size_t max, json_t **items)
{
    json_t *all = json_array(), *resp = NULL;
    char *cur = NULL, *prev = NULL;
    int rc = KV_EXIT_ERROR, pages;

    if (v == NULL || path == NULL || items == NULL || all == NULL)
        goto done;
    *items = NULL;
    cur = strdup(path);
    if (cur == NULL)
        goto done;
    for (pages = 0; cur != NULL; pages++) {
        json_t *value, *link, *it;
        size_t i;

        if (pages >= KV_CLI_MAX_PAGES || (prev != NULL && strcmp(prev, cur) == 0)) {
            fprintf(stderr, "ERROR: the vault's nextLink does not advance; stopping\n");
            goto done;
        }
        rc = kv_cli_request(v, "GET", cur, NULL, &resp);
        if (rc != KV_EXIT_OK)
            goto done;
        rc = KV_EXIT_ERROR;
        value = json_object_get(resp, "value");
        if (!json_is_array(value)) {
            fprintf(stderr, "ERROR: the vault returned a list without a 'value' array\n");
            goto done;
        }
        json_array_foreach(value, i, it)
        {
            if (max != 0 && json_array_size(all) >= max)
                break;
            json_array_append(all, it);
        }
        free(prev);
        prev = cur;
        cur = NULL;
        link = json_object_get(resp, "nextLink");
        if ((max == 0 || json_array_size(all) < max) && json_is_string(link) &&
            json_string_value(link)[0] != '\0') {
            cur = kv_cli_next_path(v, json_string_value(link));
            if (cur == NULL)
                goto done;
        }
        json_decref(resp);
        resp = NULL;
    }
    *items = all;
    all = NULL;
    rc = KV_EXIT_OK;
done:
    json_decref(resp);
    json_decref(all);
    free(cur);
    free(prev);
    return rc;
}
