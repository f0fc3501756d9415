/* kv_cli_query.c - the small part of JMESPath that az users type most with --query:
 * field access (a.b, "quoted-name"), indexes ([0], [-1]) and list projections ([] / [*]),
 * e.g. `--query accessToken -o tsv` or `--query "[].kid"`. */
#include "kv_cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Applies expr (at p) to node; *out gets a new reference or NULL for "nothing". */
static int kv_q_apply(const char *expr, const char *p, json_t *node, json_t **out);

static int kv_q_bad(const char *expr)
{
    return kv_args_usage_error("argument --query: invalid jmespath_type value: '%s' (kvault "
                               "supports a.b, [N], [] and [*])",
                               expr);
}

static int kv_q_index(const char *expr, const char *p, json_t *node, json_t **out)
{
    const char *close = strchr(p, ']');
    char *end = NULL;
    long idx;

    if (close == NULL)
        return kv_q_bad(expr);
    if (close == p || (close == p + 1 && *p == '*')) { /* projection */
        json_t *res = json_array(), *el;
        size_t i;
        int rc;

        if (res == NULL)
            return KV_EXIT_ERROR;
        if (!json_is_array(node)) {
            json_decref(res);
            *out = NULL;
            return KV_EXIT_OK;
        }
        json_array_foreach(node, i, el)
        {
            json_t *r = NULL;
            rc = kv_q_apply(expr, close + 1, el, &r);
            if (rc != KV_EXIT_OK) {
                json_decref(res);
                return rc;
            }
            if (r != NULL && !json_is_null(r))
                json_array_append(res, r);
            json_decref(r);
        }
        *out = res;
        return KV_EXIT_OK;
    }
    idx = strtol(p, &end, 10);
    if (end != close)
        return kv_q_bad(expr);
    if (!json_is_array(node)) {
        *out = NULL;
        return KV_EXIT_OK;
    }
    if (idx < 0)
        idx += (long)json_array_size(node);
    if (idx < 0 || (size_t)idx >= json_array_size(node)) {
        *out = NULL;
        return KV_EXIT_OK;
    }
    return kv_q_apply(expr, close + 1, json_array_get(node, (size_t)idx), out);
}

static int kv_q_apply(const char *expr, const char *p, json_t *node, json_t **out)
{
    char name[256];
    size_t n = 0;

    *out = NULL;
    if (node == NULL)
        return KV_EXIT_OK;
    if (*p == '\0') {
        *out = json_incref(node);
        return KV_EXIT_OK;
    }
    if (*p == '.') {
        p++;
        if (*p == '\0' || *p == '.')
            return kv_q_bad(expr);
    }
    if (*p == '[')
        return kv_q_index(expr, p + 1, node, out);
    if (*p == '"') {
        for (p++; *p != '\0' && *p != '"' && n + 1 < sizeof(name); p++)
            name[n++] = *p;
        if (*p != '"')
            return kv_q_bad(expr);
        p++;
    } else {
        for (; (isalnum((unsigned char)*p) || *p == '_') && n + 1 < sizeof(name); p++)
            name[n++] = *p;
    }
    if (n == 0 || (*p != '\0' && *p != '.' && *p != '['))
        return kv_q_bad(expr);
    name[n] = '\0';
    if (!json_is_object(node))
        return KV_EXIT_OK;
    return kv_q_apply(expr, p, json_object_get(node, name), out);
}

int kv_cli_query(const char *expr, json_t *root, json_t **out)
{
    if (expr == NULL || root == NULL || out == NULL)
        return KV_EXIT_ERROR;
    if (expr[0] == '\0' || expr[0] == '.')
        return kv_q_bad(expr);
    return kv_q_apply(expr, expr, root, out);
}
