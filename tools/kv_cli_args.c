/* kv_cli_args.c - a tiny argparse-like flag parser for the kvault command line. */
#include "kv_cli_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t kv_args_count(const kv_arg_table *tables)
{
    size_t n = 0;

    for (; tables->specs != NULL; tables++)
        n += tables->n;
    return n;
}

/* The spec at flat index i. */
static const kv_arg_spec *kv_args_spec_at(const kv_arg_table *tables, size_t i)
{
    for (; tables->specs != NULL; tables++) {
        if (i < tables->n)
            return &tables->specs[i];
        i -= tables->n;
    }
    return NULL;
}

/* Flat index of the spec whose long name (len bytes of word) or short name matches; -1. */
static long kv_args_find(const kv_arg_table *tables, const char *word, size_t len)
{
    size_t i, n = kv_args_count(tables);

    for (i = 0; i < n; i++) {
        const kv_arg_spec *s = kv_args_spec_at(tables, i);
        if (strlen(s->lname) == len && strncmp(s->lname, word, len) == 0)
            return (long)i;
        if (s->sname != NULL && strlen(s->sname) == len && strncmp(s->sname, word, len) == 0)
            return (long)i;
    }
    return -1;
}

const char *kv_args_display(const kv_args *a, const char *lname, char *buf, size_t len)
{
    size_t i;

    snprintf(buf, len, "%s", lname);
    for (i = 0; a != NULL && i < a->nvals; i++) {
        const kv_arg_spec *s = kv_args_spec_at(a->tables, i);
        if (strcmp(s->lname, lname) == 0 && s->sname != NULL)
            snprintf(buf, len, "%s/%s", s->lname, s->sname);
    }
    return buf;
}

int kv_args_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("ERROR: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return KV_EXIT_USAGE;
}

/* Appends v to val (keeps the array NULL-terminated). */
static int kv_args_push(kv_arg_val *val, const char *v)
{
    const char **nv = realloc(val->vals, (val->n + 2) * sizeof(*nv));

    if (nv == NULL)
        return -1;
    nv[val->n++] = v;
    nv[val->n] = NULL;
    val->vals = nv;
    return 0;
}

static bool kv_args_is_bool_word(const char *w)
{
    return strcasecmp(w, "true") == 0 || strcasecmp(w, "false") == 0;
}

/* A word that must not be swallowed as a value: any "--x" or a known short flag. */
static bool kv_args_is_flag_word(const kv_arg_table *tables, const char *w)
{
    if (strncmp(w, "--", 2) == 0 && w[2] != '\0')
        return true;
    return w[0] == '-' && w[1] != '\0' && kv_args_find(tables, w, strlen(w)) >= 0;
}

int kv_args_parse(kv_args *a, const kv_arg_table *tables, int argc, char **argv)
{
    int i, rc = KV_EXIT_USAGE;
    char disp[96];

    if (a == NULL || tables == NULL || argc < 0)
        return KV_EXIT_USAGE;
    memset(a, 0, sizeof(*a));
    a->tables = tables;
    a->nvals = kv_args_count(tables);
    a->vals = calloc(a->nvals + 1, sizeof(*a->vals));
    if (a->vals == NULL) {
        fprintf(stderr, "ERROR: out of memory\n");
        return KV_EXIT_ERROR;
    }
    for (i = 0; i < argc; i++) {
        const char *w = argv[i], *eq = NULL, *inl = NULL;
        const kv_arg_spec *s;
        kv_arg_val *val;
        size_t nlen = strlen(w);
        long idx;

        if (w[0] != '-' || w[1] == '\0') {
            rc = kv_args_usage_error("unrecognized arguments: %s", w);
            goto done;
        }
        if (strncmp(w, "--", 2) == 0 && (eq = strchr(w, '=')) != NULL) {
            nlen = (size_t)(eq - w);
            inl = eq + 1;
        }
        idx = kv_args_find(tables, w, nlen);
        if (idx < 0) {
            rc = kv_args_usage_error("unrecognized arguments: %.*s", (int)nlen, w);
            goto done;
        }
        s = kv_args_spec_at(tables, (size_t)idx);
        val = &a->vals[idx];
        kv_args_display(a, s->lname, disp, sizeof(disp));
        switch (s->kind) {
        case KV_ARG_FLAG:
            if (inl != NULL) {
                rc = kv_args_usage_error("argument %s: ignored explicit argument '%s'", disp, inl);
                goto done;
            }
            val->set = true;
            break;
        case KV_ARG_BOOL:
            val->set = true;
            if (inl == NULL && i + 1 < argc && kv_args_is_bool_word(argv[i + 1]))
                inl = argv[++i];
            if (inl != NULL && kv_args_push(val, inl) != 0)
                goto nomem;
            break;
        case KV_ARG_VALUE:
            if (inl == NULL) {
                if (i + 1 >= argc || kv_args_is_flag_word(tables, argv[i + 1])) {
                    rc = kv_args_usage_error("argument %s: expected one argument", disp);
                    goto done;
                }
                inl = argv[++i];
            }
            val->set = true;
            val->n = 0; /* the last occurrence wins, as in argparse */
            if (kv_args_push(val, inl) != 0)
                goto nomem;
            break;
        case KV_ARG_MULTI:
            if (inl != NULL) {
                if (kv_args_push(val, inl) != 0)
                    goto nomem;
            }
            while (i + 1 < argc && !kv_args_is_flag_word(tables, argv[i + 1]))
                if (kv_args_push(val, argv[++i]) != 0)
                    goto nomem;
            if (val->n == 0) {
                rc = kv_args_usage_error("argument %s: expected at least one argument", disp);
                goto done;
            }
            val->set = true;
            break;
        }
    }
    rc = KV_EXIT_OK;
    goto done;
nomem:
    fprintf(stderr, "ERROR: out of memory\n");
    rc = KV_EXIT_ERROR;
done:
    return rc;
}

int kv_args_check_required(const kv_args *a)
{
    char missing[512] = "", disp[96];
    size_t i, used = 0;

    for (i = 0; i < a->nvals; i++) {
        const kv_arg_spec *s = kv_args_spec_at(a->tables, i);
        if ((s->flags & KV_ARG_REQUIRED) && !a->vals[i].set) {
            int n = snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "",
                             kv_args_display(a, s->lname, disp, sizeof(disp)));
            if (n > 0 && (size_t)n < sizeof(missing) - used)
                used += (size_t)n;
        }
    }
    if (used == 0)
        return KV_EXIT_OK;
    return kv_args_usage_error("the following arguments are required: %s", missing);
}

void kv_args_free(kv_args *a)
{
    size_t i;

    if (a == NULL || a->vals == NULL)
        return;
    for (i = 0; i < a->nvals; i++)
        free(a->vals[i].vals);
    free(a->vals);
    a->vals = NULL;
}

const kv_arg_val *kv_args_val(const kv_args *a, const char *lname)
{
    size_t i;

    for (i = 0; a != NULL && i < a->nvals; i++)
        if (strcmp(kv_args_spec_at(a->tables, i)->lname, lname) == 0)
            return &a->vals[i];
    return NULL;
}

bool kv_args_has(const kv_args *a, const char *lname)
{
    const kv_arg_val *v = kv_args_val(a, lname);

    return v != NULL && v->set;
}

const char *kv_args_get(const kv_args *a, const char *lname)
{
    const kv_arg_val *v = kv_args_val(a, lname);

    return (v != NULL && v->set && v->n > 0) ? v->vals[0] : NULL;
}

int kv_args_bool(const kv_args *a, const char *lname, bool def, bool *out)
{
    const kv_arg_val *v = kv_args_val(a, lname);

    *out = def;
    if (v == NULL || !v->set)
        return KV_EXIT_OK;
    if (v->n == 0 || strcasecmp(v->vals[0], "true") == 0) {
        *out = true;
        return KV_EXIT_OK;
    }
    if (strcasecmp(v->vals[0], "false") == 0) {
        *out = false;
        return KV_EXIT_OK;
    }
    return kv_args_usage_error("argument %s: invalid choice: '%s' (choose from 'false', 'true')",
                               lname, v->vals[0]);
}

int kv_args_int(const kv_args *a, const char *lname, long def, long min, long max, long *out)
{
    const char *s = kv_args_get(a, lname);
    char *end = NULL;
    long v;

    *out = def;
    if (s == NULL)
        return KV_EXIT_OK;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return kv_args_usage_error("argument %s: invalid int value: '%s'", lname, s);
    if (v < min || v > max)
        return kv_args_usage_error("argument %s: value %ld is out of range [%ld, %ld]", lname, v,
                                   min, max);
    *out = v;
    return KV_EXIT_OK;
}

int kv_args_choice(const char *lname, const char *value, const char *const *choices, bool icase)
{
    char list[512] = "";
    size_t used = 0;
    int i;

    for (i = 0; choices[i] != NULL; i++)
        if ((icase ? strcasecmp(value, choices[i]) : strcmp(value, choices[i])) == 0)
            return i;
    for (i = 0; choices[i] != NULL; i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s'%s'", i ? ", " : "", choices[i]);
        if (n > 0 && (size_t)n < sizeof(list) - used)
            used += (size_t)n;
    }
    kv_args_usage_error("argument %s: invalid choice: '%s' (choose from %s)", lname, value, list);
    return -1;
}

void kv_args_print_help(const kv_arg_table *tables, const char *const *table_titles)
{
    size_t t, i;

    for (t = 0; tables[t].specs != NULL; t++) {
        printf("\n%s\n",
               table_titles != NULL && table_titles[t] != NULL ? table_titles[t] : "Arguments");
        for (i = 0; i < tables[t].n; i++) {
            const kv_arg_spec *s = &tables[t].specs[i];
            char left[96];

            snprintf(left, sizeof(left), "%s%s%s%s%s%s", s->lname, s->sname ? " " : "",
                     s->sname ? s->sname : "", s->metavar ? " " : "", s->metavar ? s->metavar : "",
                     s->kind == KV_ARG_MULTI ? " ..." : "");
            printf("    %-32s: %s%s\n", left, (s->flags & KV_ARG_REQUIRED) ? "[Required] " : "",
                   s->help);
        }
    }
}
