/* vd_store_versioned.c - get / list / versions / soft delete / recover / name state of
 * vaultd's versioned objects, parameterised by table and column list (see the header). */
#include "vd_store_versioned.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_store_util.h"

kv_rv vd_vobj_get(sqlite3 *db, const vd_vobj *o, const char *vault, const char *name,
                  const char *version, bool deleted, void *out)
{
    sqlite3_stmt *stmt = NULL;
    char sql[768];
    bool latest = version == NULL || version[0] == '\0';
    kv_rv rv;

    if (db == NULL || o == NULL || vault == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             latest ? "SELECT %s FROM %s WHERE vault = ?1 AND name = ?2 AND deleted = ?4"
                      " ORDER BY seq DESC LIMIT 1"
                    : "SELECT %s FROM %s WHERE vault = ?1 AND name = ?2 AND version = ?3"
                      " AND deleted = ?4",
             o->cols, o->table);
    rv = vd_stmt_prepare(db, &stmt, sql, "ttti", vault, name, latest ? NULL : version,
                         (long long)(deleted ? 1 : 0));
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK)
        rv = o->row->read(stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_vobj_list(sqlite3 *db, const vd_vobj *o, const char *vault, const char *after,
                   bool deleted, size_t limit, void **rows, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[1024];
    kv_rv rv;

    if (db == NULL || o == NULL || vault == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM %s o WHERE vault = ?1 AND (?2 IS NULL OR name > ?2) AND"
             " deleted = ?4 AND seq = (SELECT MAX(seq) FROM %s o2 WHERE"
             " o2.vault = o.vault AND o2.name = o.name) ORDER BY name LIMIT ?3",
             o->cols, o->table, o->table);
    rv = vd_stmt_prepare(db, &stmt, sql, "ttii", vault, after, (long long)limit,
                         (long long)(deleted ? 1 : 0));
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, o->row, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_vobj_versions(sqlite3 *db, const vd_vobj *o, const char *vault, const char *name,
                       long long after_seq, size_t limit, void **rows, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[768];
    kv_rv rv;

    if (db == NULL || o == NULL || vault == NULL || name == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM %s WHERE vault = ?1 AND name = ?2 AND seq > ?3 AND"
             " deleted = 0 ORDER BY seq LIMIT ?4",
             o->cols, o->table);
    rv = vd_stmt_prepare(db, &stmt, sql, "ttii", vault, name, after_seq, (long long)limit);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, o->row, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_vobj_set_deleted(sqlite3 *db, const char *table, const char *extra, const char *vault,
                          const char *name, bool deleted, long long deleted_date,
                          long long purge_date)
{
    char sql[512];
    int changes = 0;
    kv_rv rv;

    if (db == NULL || table == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             deleted ? "UPDATE %s SET deleted = 1, deleted_date = ?3, scheduled_purge_date = ?4"
                       " WHERE vault = ?1 AND name = ?2 AND deleted = 0%s"
                     : "UPDATE %s SET deleted = 0, deleted_date = NULL,"
                       " scheduled_purge_date = NULL WHERE vault = ?1 AND name = ?2"
                       " AND deleted != 0%s",
             table, extra != NULL ? extra : "");
    rv = deleted ? vd_stmt_run(db, &changes, sql, "ttii", vault, name, deleted_date, purge_date)
                 : vd_stmt_run(db, &changes, sql, "tt", vault, name);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_vobj_name_state(sqlite3 *db, const char *table, const char *vault, const char *name,
                         char *spelling, size_t spelling_len, bool *live, bool *deleted)
{
    sqlite3_stmt *stmt = NULL;
    char sql[256];
    kv_rv rv;

    if (db == NULL || table == NULL || vault == NULL || name == NULL || live == NULL ||
        deleted == NULL)
        return KV_ERR_INVALID_ARG;
    *live = *deleted = false;
    snprintf(sql, sizeof(sql),
             "SELECT MIN(name), SUM(deleted = 0), SUM(deleted != 0) FROM %s WHERE vault = ?1 AND"
             " name = ?2",
             table);
    rv = vd_stmt_prepare(db, &stmt, sql, "tt", vault, name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt); /* an aggregate: always one row */
    if (rv == KV_OK) {
        *live = sqlite3_column_int64(stmt, 1) > 0;
        *deleted = sqlite3_column_int64(stmt, 2) > 0;
        if (spelling != NULL && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
            vd_col_copy_text(spelling, spelling_len, stmt, 0);
    }
    sqlite3_finalize(stmt);
    return rv == KV_OK ? KV_OK : KV_ERR_INTERNAL;
}

kv_rv vd_vobj_txn_begin(sqlite3 *db, const char *table, const char *vault, char *name,
                        size_t spelling_len, vd_vobj_rule rule)
{
    bool live = false, deleted = false;
    kv_rv rv = vd_sql_exec(db, "BEGIN IMMEDIATE");

    if (rv != KV_OK)
        return rv;
    rv = vd_vobj_name_state(db, table, vault, name, spelling_len > 0 ? name : NULL, spelling_len,
                            &live, &deleted);
    if (rv == KV_OK &&
        ((rule == VD_VOBJ_NOT_DELETED && deleted) || (rule == VD_VOBJ_NEW && (live || deleted))))
        rv = KV_ERR_CONFLICT;
    return rv == KV_OK ? KV_OK : vd_vobj_txn_end(db, rv);
}

kv_rv vd_vobj_txn_end(sqlite3 *db, kv_rv rv)
{
    if (rv == KV_OK)
        rv = vd_sql_exec(db, "COMMIT");
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}
