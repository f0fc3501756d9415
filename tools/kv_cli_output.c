/* kv_cli_output.c - prints a command's result the way az does: json (pretty, 2-space indent,
 * the default), tsv (one line per item, scalar fields only) and table (columns of scalar
 * fields), or nothing (none). */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int kv_cli_output_parse(const char *name, kv_out_fmt *out)
{
    static const char *const choices[] = {"json", "jsonc", "none", "table", "tsv", NULL};
    static const kv_out_fmt fmts[] = {KV_OUT_JSON, KV_OUT_JSONC, KV_OUT_NONE, KV_OUT_TABLE,
                                      KV_OUT_TSV};
    int i = kv_args_choice("--output/-o", name, choices, false);

    if (i < 0)
        return KV_EXIT_USAGE;
    *out = fmts[i];
    return KV_EXIT_OK;
}

static bool kv_out_is_scalar(const json_t *j)
{
    return !json_is_object(j) && !json_is_array(j);
}

/* A scalar as az's tsv/table print it (Python's str()): null -> "", true -> "True". */
static void kv_out_scalar(FILE *f, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        fputs(json_string_value(j), f);
        break;
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_REAL:
        fprintf(f, "%.17g", json_real_value(j));
        break;
    case JSON_TRUE:
        fputs("True", f);
        break;
    case JSON_FALSE:
        fputs("False", f);
        break;
    default:
        break;
    }
}

static int kv_out_scalar_len(const json_t *j)
{
    char buf[64];

    switch (json_typeof(j)) {
    case JSON_STRING:
        return (int)strlen(json_string_value(j));
    case JSON_INTEGER:
        return snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    case JSON_REAL:
        return snprintf(buf, sizeof(buf), "%.17g", json_real_value(j));
    case JSON_TRUE:
        return 4;
    case JSON_FALSE:
        return 5;
    default:
        return 0;
    }
}

static void kv_out_tsv_row(const json_t *j)
{
    const char *k;
    json_t *v;
    bool first = true;

    if (kv_out_is_scalar(j)) {
        kv_out_scalar(stdout, j);
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k, v)
        {
            if (!kv_out_is_scalar(v))
                continue;
            if (!first)
                fputc('\t', stdout);
            kv_out_scalar(stdout, v);
            first = false;
        }
    } else {
        size_t i;
        json_array_foreach(j, i, v)
        {
            if (!kv_out_is_scalar(v))
                continue;
            if (!first)
                fputc('\t', stdout);
            kv_out_scalar(stdout, v);
            first = false;
        }
    }
    fputc('\n', stdout);
}

static void kv_out_tsv(const json_t *j)
{
    size_t i;
    json_t *v;

    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            kv_out_tsv_row(v);
        }
    } else {
        kv_out_tsv_row(j);
    }
}

/* Table: columns are the scalar fields of the rows (in first-seen order). */
static int kv_out_table(const json_t *j)
{
    json_t *rows = NULL, *cols = json_array(), *v, *row;
    const char *k;
    size_t i, c, ncols;
    int *width = NULL, rc = KV_EXIT_ERROR;

    if (cols == NULL)
        goto done;
    rows = json_is_array(j) ? json_incref((json_t *)j) : json_pack("[O]", j);
    if (rows == NULL)
        goto done;
    json_array_foreach(rows, i, row)
    {
        if (!json_is_object(row))
            continue;
        json_object_foreach(row, k, v)
        {
            bool seen = false;
            if (!kv_out_is_scalar(v))
                continue;
            for (c = 0; c < json_array_size(cols); c++)
                if (strcmp(json_string_value(json_array_get(cols, c)), k) == 0)
                    seen = true;
            if (!seen)
                json_array_append_new(cols, json_string(k));
        }
    }
    ncols = json_array_size(cols);
    if (ncols == 0) { /* a list of scalars */
        fputs("Result\n------\n", stdout);
        json_array_foreach(rows, i, row)
        {
            kv_out_scalar(stdout, row);
            fputc('\n', stdout);
        }
        rc = KV_EXIT_OK;
        goto done;
    }
    width = calloc(ncols, sizeof(*width));
    if (width == NULL)
        goto done;
    for (c = 0; c < ncols; c++) {
        width[c] = (int)strlen(json_string_value(json_array_get(cols, c)));
        json_array_foreach(rows, i, row)
        {
            v = json_object_get(row, json_string_value(json_array_get(cols, c)));
            if (v != NULL && kv_out_scalar_len(v) > width[c])
                width[c] = kv_out_scalar_len(v);
        }
    }
    for (c = 0; c < ncols; c++) { /* header: the key with a capital first letter */
        const char *name = json_string_value(json_array_get(cols, c));
        printf("%c%-*s%s", name[0] >= 'a' && name[0] <= 'z' ? name[0] - 32 : name[0],
               c + 1 < ncols ? width[c] - 1 : 0, name + 1, c + 1 < ncols ? "  " : "\n");
    }
    for (c = 0; c < ncols; c++) {
        int w;
        for (w = 0; w < width[c]; w++)
            fputc('-', stdout);
        fputs(c + 1 < ncols ? "  " : "\n", stdout);
    }
    json_array_foreach(rows, i, row)
    {
        for (c = 0; c < ncols; c++) {
            v = json_object_get(row, json_string_value(json_array_get(cols, c)));
            if (v != NULL)
                kv_out_scalar(stdout, v);
            if (c + 1 < ncols)
                printf("%*s  ", width[c] - (v ? kv_out_scalar_len(v) : 0), "");
        }
        fputc('\n', stdout);
    }
    rc = KV_EXIT_OK;
done:
    free(width);
    json_decref(rows);
    json_decref(cols);
    return rc;
}

int kv_cli_print(kv_cli *cli, json_t *result)
{
    json_t *shown = NULL;
    char *s = NULL;
    int rc = KV_EXIT_ERROR;

    if (cli == NULL || result == NULL) {
        fprintf(stderr, "ERROR: out of memory\n");
        goto done;
    }
    if (cli->query != NULL) {
        rc = kv_cli_query(cli->query, result, &shown);
        if (rc != KV_EXIT_OK)
            goto done;
        rc = KV_EXIT_ERROR;
    } else {
        shown = json_incref(result);
    }
    if (shown == NULL || json_is_null(shown) || cli->out == KV_OUT_NONE) {
        rc = KV_EXIT_OK; /* az prints nothing for an empty result */
        goto done;
    }
    switch (cli->out) {
    case KV_OUT_TSV:
        kv_out_tsv(shown);
        rc = KV_EXIT_OK;
        break;
    case KV_OUT_TABLE:
        rc = kv_out_table(shown);
        break;
    default:
        s = json_dumps(shown, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (s == NULL) {
            fprintf(stderr, "ERROR: out of memory\n");
            goto done;
        }
        puts(s);
        rc = KV_EXIT_OK;
        break;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "ERROR: cannot write the output\n");
        rc = KV_EXIT_ERROR;
    }
done:
    if (s != NULL) {
        /* the result may hold an access token (get-access-token) */
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
    json_decref(shown);
    json_decref(result);
    return rc;
}
