/* vd_store_util.c - SQLite statement helpers shared by vaultd's store files (see the header):
 * one place for the prepare / bind / step / finalize boilerplate and its error logging. */
#include "vd_store_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kv_rv vd_sql_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (db == NULL || sql == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
        sqlite3_free(msg);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

kv_rv vd_sql_add_column(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    kv_rv rv = KV_OK;

    if (db == NULL || sql == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK &&
        (msg == NULL || strstr(msg, "duplicate column name") == NULL)) {
        fprintf(stderr, "vaultd: sqlite: %s: %s\n", sql, msg ? msg : "error");
        rv = KV_ERR_INTERNAL;
    }
    sqlite3_free(msg);
    return rv;
}

void vd_stmt_bindv(sqlite3_stmt *stmt, const char *types, va_list ap)
{
    const char *t;
    const void *b;
    size_t len;
    int i;

    for (i = 1; types != NULL && types[i - 1] != '\0'; i++) {
        switch (types[i - 1]) {
        case 't':
            t = va_arg(ap, const char *);
            if (t != NULL)
                sqlite3_bind_text(stmt, i, t, -1, SQLITE_TRANSIENT);
            break;
        case 'i':
            sqlite3_bind_int64(stmt, i, (sqlite3_int64)va_arg(ap, long long));
            break;
        case 'b':
            b = va_arg(ap, const void *);
            len = va_arg(ap, size_t);
            if (b != NULL)
                sqlite3_bind_blob(stmt, i, b, (int)len, SQLITE_TRANSIENT);
            break;
        default: /* '-': skipped */
            break;
        }
    }
}

void vd_stmt_bind(sqlite3_stmt *stmt, const char *types, ...)
{
    va_list ap;

    va_start(ap, types);
    vd_stmt_bindv(stmt, types, ap);
    va_end(ap);
}

static kv_rv vd_stmt_preparev(sqlite3 *db, sqlite3_stmt **stmt, const char *sql, const char *types,
                              va_list ap)
{
    if (db == NULL || stmt == NULL || sql == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    vd_stmt_bindv(*stmt, types, ap);
    return KV_OK;
}

kv_rv vd_stmt_prepare(sqlite3 *db, sqlite3_stmt **stmt, const char *sql, const char *types, ...)
{
    va_list ap;
    kv_rv rv;

    va_start(ap, types);
    rv = vd_stmt_preparev(db, stmt, sql, types, ap);
    va_end(ap);
    return rv;
}

kv_rv vd_stmt_done(sqlite3 *db, sqlite3_stmt *stmt, int *changes)
{
    int rc = sqlite3_step(stmt);

    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(db));
        return (rc & 0xff) == SQLITE_CONSTRAINT ? KV_ERR_CONFLICT : KV_ERR_INTERNAL;
    }
    if (changes != NULL)
        *changes = sqlite3_changes(db);
    return KV_OK;
}

kv_rv vd_stmt_run(sqlite3 *db, int *changes, const char *sql, const char *types, ...)
{
    sqlite3_stmt *stmt = NULL;
    va_list ap;
    kv_rv rv;

    va_start(ap, types);
    rv = vd_stmt_preparev(db, &stmt, sql, types, ap);
    va_end(ap);
    if (rv != KV_OK)
        return rv;
    return vd_stmt_done(db, stmt, changes);
}

kv_rv vd_stmt_row(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW)
        return KV_OK;
    return rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
}

void vd_col_copy_text(char *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

char *vd_col_dup_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    return s ? strdup((const char *)s) : NULL;
}

uint8_t *vd_col_dup_blob(sqlite3_stmt *stmt, int col, size_t *len)
{
    const void *b = sqlite3_column_blob(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);
    uint8_t *out;

    *len = 0;
    if (b == NULL || n <= 0)
        return NULL;
    out = malloc((size_t)n);
    if (out == NULL)
        return NULL;
    memcpy(out, b, (size_t)n);
    *len = (size_t)n;
    return out;
}

kv_rv vd_col_copy_blob(uint8_t *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const void *b = sqlite3_column_blob(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);

    if (b == NULL || (size_t)n != dstlen)
        return KV_ERR_INTERNAL;
    memcpy(dst, b, dstlen);
    return KV_OK;
}

void vd_rows_free(const vd_row_type *t, void *rows, size_t n)
{
    size_t i;

    if (rows == NULL)
        return;
    for (i = 0; t->clear != NULL && i < n; i++)
        t->clear((char *)rows + i * t->size);
    free(rows);
}

kv_rv vd_stmt_collect(sqlite3_stmt *stmt, const vd_row_type *t, size_t limit, void **rows,
                      size_t *n)
{
    bool grow = limit == VD_STMT_ALL;
    size_t count = 0, cap = grow ? 8 : limit ? limit : 1;
    char *out, *tmp;
    kv_rv rv = KV_OK;
    int rc = SQLITE_DONE;

    out = calloc(cap, t->size);
    if (out == NULL)
        return KV_ERR_NOMEM;
    while (count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (grow && count == cap) {
            tmp = realloc(out, 2 * cap * t->size);
            if (tmp == NULL) {
                rv = KV_ERR_NOMEM;
                goto done;
            }
            out = tmp;
            memset(out + cap * t->size, 0, cap * t->size);
            cap *= 2;
        }
        rv = t->read(stmt, out + count * t->size);
        if (rv != KV_OK)
            goto done;
        count++;
    }
    if (count < limit && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
done:
    if (rv != KV_OK) {
        vd_rows_free(t, out, count);
        return rv;
    }
    *rows = out;
    *n = count;
    return KV_OK;
}

static kv_rv vd_text_read(sqlite3_stmt *stmt, void *row)
{
    const unsigned char *t = sqlite3_column_text(stmt, 0);

    *(char **)row = strdup(t ? (const char *)t : "");
    return *(char **)row != NULL ? KV_OK : KV_ERR_NOMEM;
}

static void vd_text_clear(void *row)
{
    free(*(char **)row);
}

static const vd_row_type vd_text_row = {sizeof(char *), vd_text_read, vd_text_clear};

kv_rv vd_stmt_collect_text(sqlite3_stmt *stmt, size_t limit, char ***out, size_t *n)
{
    void *arr = NULL;
    kv_rv rv = vd_stmt_collect(stmt, &vd_text_row, limit, &arr, n);

    if (rv == KV_OK)
        *out = arr;
    return rv;
}

void vd_strings_free(char **s, size_t n)
{
    vd_rows_free(&vd_text_row, s, n);
}
