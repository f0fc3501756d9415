/* vd_store_util.h - SQLite statement helpers shared by vaultd's store files: exec, guarded
 * ADD COLUMN, prepare + bind (varargs), step to completion / to one row, column copies. */
#ifndef VD_STORE_UTIL_H
#define VD_STORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "kv_status.h"

/* Runs sql (may hold several statements); logs and returns KV_ERR_INTERNAL on failure. */
kv_rv vd_sql_exec(sqlite3 *db, const char *sql);
/* Runs an ALTER TABLE ... ADD COLUMN; "duplicate column name" counts as success. */
kv_rv vd_sql_add_column(sqlite3 *db, const char *sql);

/* Binds parameters 1, 2, ... from the arguments as `types` says, one letter a parameter:
 *   't' const char *        (NULL: left unbound, i.e. NULL)
 *   'i' long long
 *   'b' const void *, size_t (NULL: left unbound)
 *   '-' no argument; the parameter is skipped (stays NULL)
 * types NULL or "": nothing to bind. */
void vd_stmt_bindv(sqlite3_stmt *stmt, const char *types, va_list ap);
void vd_stmt_bind(sqlite3_stmt *stmt, const char *types, ...);
/* Prepares sql and binds the arguments (vd_stmt_bind). */
kv_rv vd_stmt_prepare(sqlite3 *db, sqlite3_stmt **stmt, const char *sql, const char *types, ...);
/* Steps a statement that returns no rows and finalizes it; SQLITE_CONSTRAINT is
 * KV_ERR_CONFLICT. changes (may be NULL) receives the number of rows changed. */
kv_rv vd_stmt_done(sqlite3 *db, sqlite3_stmt *stmt, int *changes);
/* Prepare + bind + vd_stmt_done. */
kv_rv vd_stmt_run(sqlite3 *db, int *changes, const char *sql, const char *types, ...);
/* Steps once: KV_OK on a row, KV_ERR_NOT_FOUND when there is none, else KV_ERR_INTERNAL. */
kv_rv vd_stmt_row(sqlite3_stmt *stmt);

/* A row type for vd_stmt_collect: its size, the function that fills one from the current
 * result row (leaving it clear on failure) and the one that frees what it owns (may be NULL). */
typedef struct vd_row_type {
    size_t size;
    kv_rv (*read)(sqlite3_stmt *stmt, void *row);
    void (*clear)(void *row);
} vd_row_type;
/* Defines `static const vd_row_type name` for rows of `type` from typed functions
 * kv_rv readfn(sqlite3_stmt *, type *) and void clearfn(type *). */
#define VD_ROW_TYPE(name, type, readfn, clearfn)                                                   \
    static kv_rv name##_read(sqlite3_stmt *stmt, void *row)                                        \
    {                                                                                              \
        return readfn(stmt, (type *)row);                                                          \
    }                                                                                              \
    static void name##_clear(void *row)                                                            \
    {                                                                                              \
        clearfn((type *)row);                                                                      \
    }                                                                                              \
    static const vd_row_type name = {sizeof(type), name##_read, name##_clear}
#define VD_STMT_ALL ((size_t)-1)
/* Collects up to limit rows (VD_STMT_ALL: all) of a prepared, bound statement into a malloc'd
 * array; on failure nothing is returned. */
kv_rv vd_stmt_collect(sqlite3_stmt *stmt, const vd_row_type *t, size_t limit, void **rows,
                      size_t *n);
/* Clears n rows of such an array and frees it. */
void vd_rows_free(const vd_row_type *t, void *rows, size_t n);

/* Collects column 0 of up to limit rows as malloc'd strings (NULL -> ""); free with
 * vd_strings_free. */
kv_rv vd_stmt_collect_text(sqlite3_stmt *stmt, size_t limit, char ***out, size_t *n);
void vd_strings_free(char **s, size_t n);

/* Column copies: text into a fixed buffer ("" for NULL), malloc'd text / blob (NULL for
 * NULL or empty; *len 0 then), fixed-size blob (KV_ERR_INTERNAL unless exactly dstlen). */
void vd_col_copy_text(char *dst, size_t dstlen, sqlite3_stmt *stmt, int col);
char *vd_col_dup_text(sqlite3_stmt *stmt, int col);
uint8_t *vd_col_dup_blob(sqlite3_stmt *stmt, int col, size_t *len);
kv_rv vd_col_copy_blob(uint8_t *dst, size_t dstlen, sqlite3_stmt *stmt, int col);

#endif
