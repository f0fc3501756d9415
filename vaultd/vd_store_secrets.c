/* vd_store_secrets.c - SQLite persistence of secret versions. Values arrive here already
 * encrypted under the KEK; this file never sees plaintext. */
#include "vd_store_secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_util.h"
#include "vd_store_versioned.h"

static const char vd_secrets_schema[] =
    "CREATE TABLE IF NOT EXISTS secrets ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  vault TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name),"
    "  name TEXT NOT NULL COLLATE NOCASE, version TEXT NOT NULL,"
    "  content_type TEXT, tags TEXT, kid TEXT,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL, enabled INTEGER NOT NULL,"
    "  nbf INTEGER, exp INTEGER, managed INTEGER NOT NULL DEFAULT 0,"
    "  value_enc BLOB NOT NULL, iv BLOB NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0, deleted_date INTEGER, scheduled_purge_date INTEGER,"
    "  UNIQUE (vault, name, version));"
    "CREATE INDEX IF NOT EXISTS secrets_by_name ON secrets(vault, name, seq);";

static const char vd_secret_cols[] =
    "seq, vault, name, version, content_type, tags, kid, created, updated, enabled, nbf, exp,"
    " managed, value_enc, iv, deleted, deleted_date, scheduled_purge_date";

kv_rv vd_store_add_column(vd_store *st, const char *sql)
{
    return vd_sql_add_column(vd_store_sqlite(st), sql);
}

kv_rv vd_store_secrets_migrate(vd_store *st)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sql_exec(db, vd_secrets_schema);
    if (rv == KV_OK)
        rv = vd_store_add_column(
            st, "ALTER TABLE vaults ADD COLUMN kind TEXT NOT NULL DEFAULT 'vault'");
    if (rv == KV_OK)
        rv = vd_store_add_column(
            st, "ALTER TABLE vaults ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 90");
    if (rv == KV_OK)
        rv = vd_store_add_column(
            st, "ALTER TABLE vaults ADD COLUMN purge_protection INTEGER NOT NULL DEFAULT 0");
    return rv;
}

void vd_secret_row_clear(vd_secret_row *row)
{
    if (row == NULL)
        return;
    free(row->content_type);
    free(row->tags);
    free(row->kid);
    free(row->value_enc);
    memset(row, 0, sizeof(*row));
}

static kv_rv vd_secret_row_from_stmt(sqlite3_stmt *stmt, vd_secret_row *row)
{
    const void *b;
    int n;

    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, 0);
    vd_col_copy_text(row->vault, sizeof(row->vault), stmt, 1);
    vd_col_copy_text(row->name, sizeof(row->name), stmt, 2);
    vd_col_copy_text(row->version, sizeof(row->version), stmt, 3);
    row->content_type = vd_col_dup_text(stmt, 4);
    row->tags = vd_col_dup_text(stmt, 5);
    row->kid = vd_col_dup_text(stmt, 6);
    row->created = sqlite3_column_int64(stmt, 7);
    row->updated = sqlite3_column_int64(stmt, 8);
    row->enabled = sqlite3_column_int(stmt, 9) != 0;
    row->has_nbf = sqlite3_column_type(stmt, 10) != SQLITE_NULL;
    row->nbf = sqlite3_column_int64(stmt, 10);
    row->has_exp = sqlite3_column_type(stmt, 11) != SQLITE_NULL;
    row->exp = sqlite3_column_int64(stmt, 11);
    row->managed = sqlite3_column_int(stmt, 12) != 0;
    b = sqlite3_column_blob(stmt, 13);
    n = sqlite3_column_bytes(stmt, 13);
    if (b == NULL || n <= 0 || (row->value_enc = malloc((size_t)n)) == NULL)
        goto fail;
    memcpy(row->value_enc, b, (size_t)n);
    row->value_enc_len = (size_t)n;
    b = sqlite3_column_blob(stmt, 14);
    if (b == NULL || sqlite3_column_bytes(stmt, 14) != VD_IV_LEN)
        goto fail;
    memcpy(row->iv, b, VD_IV_LEN);
    row->deleted = sqlite3_column_int(stmt, 15) != 0;
    row->deleted_date = sqlite3_column_int64(stmt, 16);
    row->purge_date = sqlite3_column_int64(stmt, 17);
    return KV_OK;
fail:
    vd_secret_row_clear(row);
    return KV_ERR_INTERNAL;
}

VD_ROW_TYPE(vd_secret_row_type, vd_secret_row, vd_secret_row_from_stmt, vd_secret_row_clear);
static const vd_vobj vd_secret_obj = {"secrets", vd_secret_cols, &vd_secret_row_type};

void vd_secret_rows_free(vd_secret_row *rows, size_t n)
{
    vd_rows_free(vd_secret_obj.row, rows, n);
}

kv_rv vd_secret_row_insert(struct sqlite3 *db, vd_secret_row *row)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;

    if (db == NULL || row == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s (%s) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
             " ?11, ?12, ?13, ?14, 0, NULL, NULL)",
             vd_secret_obj.table, vd_secret_obj.cols);
    rv = vd_stmt_prepare(db, &stmt, sql, "ttttttiiiiiibb", row->vault, row->name, row->version,
                         row->content_type, row->tags, row->kid, row->created, row->updated,
                         (long long)(row->enabled ? 1 : 0), row->nbf, row->exp,
                         (long long)(row->managed ? 1 : 0), row->value_enc, row->value_enc_len,
                         row->iv, (size_t)VD_IV_LEN);
    if (rv != KV_OK)
        return rv;
    if (!row->has_nbf)
        sqlite3_bind_null(stmt, 10);
    if (!row->has_exp)
        sqlite3_bind_null(stmt, 11);
    rv = vd_stmt_done(db, stmt, NULL);
    if (rv == KV_OK)
        row->seq = sqlite3_last_insert_rowid(db);
    return rv;
}

kv_rv vd_store_secret_insert(vd_store *st, vd_secret_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL || row == NULL || row->value_enc == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_vobj_txn_begin(db, "secrets", row->vault, row->name, sizeof(row->name),
                           VD_VOBJ_NOT_DELETED);
    return rv == KV_OK ? vd_vobj_txn_end(db, vd_secret_row_insert(db, row)) : rv;
}

kv_rv vd_store_secret_restore(vd_store *st, vd_secret_row *rows, size_t n)
{
    sqlite3 *db = vd_store_sqlite(st);
    size_t i;
    kv_rv rv;

    if (db == NULL || rows == NULL || n == 0)
        return KV_ERR_INVALID_ARG;
    rv = vd_vobj_txn_begin(db, "secrets", rows[0].vault, rows[0].name, 0, VD_VOBJ_NEW);
    if (rv != KV_OK)
        return rv;
    for (i = 0; i < n && rv == KV_OK; i++)
        rv = vd_secret_row_insert(db, &rows[i]);
    return vd_vobj_txn_end(db, rv);
}

kv_rv vd_store_secret_get(vd_store *st, const char *vault, const char *name, const char *version,
                          bool deleted, vd_secret_row *out)
{
    return vd_vobj_get(vd_store_sqlite(st), &vd_secret_obj, vault, name, version, deleted, out);
}

kv_rv vd_store_secret_list(vd_store *st, const char *vault, const char *after, bool deleted,
                           size_t limit, vd_secret_row **rows, size_t *n)
{
    void *arr = NULL;
    kv_rv rv =
        vd_vobj_list(vd_store_sqlite(st), &vd_secret_obj, vault, after, deleted, limit, &arr, n);

    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

kv_rv vd_store_secret_versions(vd_store *st, const char *vault, const char *name,
                               long long after_seq, size_t limit, vd_secret_row **rows, size_t *n)
{
    void *arr = NULL;
    kv_rv rv = vd_vobj_versions(vd_store_sqlite(st), &vd_secret_obj, vault, name, after_seq, limit,
                                &arr, n);

    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

kv_rv vd_store_secret_update(vd_store *st, const vd_secret_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    kv_rv rv;

    if (db == NULL || row == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(db, &stmt,
                         "UPDATE secrets SET content_type = ?4, tags = ?5, enabled = ?6, nbf = ?7,"
                         " exp = ?8, updated = ?9 WHERE vault = ?1 AND name = ?2 AND version = ?3"
                         " AND deleted = 0",
                         "tttttiiii", row->vault, row->name, row->version, row->content_type,
                         row->tags, (long long)(row->enabled ? 1 : 0), row->nbf, row->exp,
                         row->updated);
    if (rv != KV_OK)
        return rv;
    if (!row->has_nbf)
        sqlite3_bind_null(stmt, 7);
    if (!row->has_exp)
        sqlite3_bind_null(stmt, 8);
    rv = vd_stmt_done(db, stmt, &changes);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_secret_set_deleted(vd_store *st, const char *vault, const char *name, bool deleted,
                                  long long deleted_date, long long purge_date)
{
    return vd_vobj_set_deleted(vd_store_sqlite(st), "secrets", NULL, vault, name, deleted,
                               deleted_date, purge_date);
}

kv_rv vd_store_secret_purge(vd_store *st, const char *vault, const char *name, bool only_deleted)
{
    sqlite3 *db = vd_store_sqlite(st);
    int changes = 0;
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_run(db, &changes,
                     "DELETE FROM secrets WHERE vault = ?1 AND name = ?2 AND"
                     " (?3 = 0 OR deleted = 1)",
                     "tti", vault, name, (long long)(only_deleted ? 1 : 0));
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_vault_info(vd_store *st, const char *vault, vd_vault_info *out)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    const unsigned char *kind;
    kv_rv rv;
    int rc;

    if (db == NULL || vault == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    out->managed_hsm = false;
    out->retention_days = 90;
    out->purge_protection = false;
    rv = vd_stmt_prepare(db, &stmt,
                         "SELECT kind, retention_days, purge_protection FROM vaults WHERE"
                         " name = ?1",
                         "t", vault);
    if (rv != KV_OK)
        return rv;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        kind = sqlite3_column_text(stmt, 0);
        out->managed_hsm = kind != NULL && strcmp((const char *)kind, "managedhsm") == 0;
        if (sqlite3_column_int(stmt, 1) >= 7 && sqlite3_column_int(stmt, 1) <= 90)
            out->retention_days = sqlite3_column_int(stmt, 1);
        out->purge_protection = sqlite3_column_int(stmt, 2) != 0;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? KV_OK : rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
}
