/* vd_store_keys.c - SQLite persistence of the key lifecycle: soft delete / recover / purge,
 * updates, atomic multi-version inserts (restore), rotation policies, vault recovery
 * settings, and the schema migration that adds the columns and table these need. */
#include "vd_store_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_util.h"
#include "vd_store_versioned.h"
#include "vd_util.h"

kv_rv vd_store_keys_migrate(vd_store *st)
{
    static const char *const cols[] = {
        "ALTER TABLE keys ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE keys ADD COLUMN deleted_date INTEGER",
        "ALTER TABLE keys ADD COLUMN scheduled_purge_date INTEGER",
        "ALTER TABLE vaults ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 90",
        "ALTER TABLE vaults ADD COLUMN purge_protection INTEGER NOT NULL DEFAULT 0",
    };
    sqlite3 *db = vd_store_sqlite(st);
    size_t i;
    kv_rv rv = KV_OK;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    for (i = 0; i < sizeof(cols) / sizeof(cols[0]) && rv == KV_OK; i++)
        rv = vd_sql_add_column(db, cols[i]);
    if (rv == KV_OK)
        rv = vd_sql_exec(db,
                         "CREATE TABLE IF NOT EXISTS key_rotation_policies ("
                         "  vault TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
                         "  policy TEXT NOT NULL, created INTEGER NOT NULL,"
                         "  updated INTEGER NOT NULL, PRIMARY KEY (vault, name));"
                         "CREATE INDEX IF NOT EXISTS keys_by_deleted"
                         "  ON keys(deleted, scheduled_purge_date);");
    return rv;
}

kv_rv vd_store_vault_recovery(vd_store *st, const char *vault, int *retention_days,
                              bool *purge_protection)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (vault == NULL || retention_days == NULL || purge_protection == NULL)
        return KV_ERR_INVALID_ARG;
    *retention_days = 90;
    *purge_protection = false;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT retention_days, purge_protection FROM vaults WHERE name = ?1", "t",
                         vault);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK) {
        *retention_days = sqlite3_column_int(stmt, 0);
        *purge_protection = sqlite3_column_int(stmt, 1) != 0;
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_key_state(vd_store *st, const char *vault, const char *name, bool *live,
                         bool *deleted)
{
    return vd_vobj_name_state(vd_store_sqlite(st), "keys", vault, name, NULL, 0, live, deleted);
}

kv_rv vd_store_key_update(vd_store *st, const vd_key_row *row)
{
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    kv_rv rv;

    if (row == NULL || row->key_ops == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(
        vd_store_sqlite(st), &stmt,
        "UPDATE keys SET enabled = ?4, nbf = ?5, exp = ?6, key_ops = ?7, tags = ?8,"
        " updated = ?9 WHERE vault = ?1 AND name = ?2 AND version = ?3"
        " AND deleted = 0",
        "tttiiitti", row->vault, row->name, row->version, (long long)(row->enabled ? 1 : 0),
        row->nbf, row->exp, row->key_ops, row->tags, row->updated);
    if (rv != KV_OK)
        return rv;
    if (!row->has_nbf)
        sqlite3_bind_null(stmt, 5);
    if (!row->has_exp)
        sqlite3_bind_null(stmt, 6);
    rv = vd_stmt_done(vd_store_sqlite(st), stmt, &changes);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_key_all(vd_store *st, const char *vault, const char *name, bool deleted,
                       vd_key_row **rows, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[768];
    void *out = NULL;
    kv_rv rv;

    if (vault == NULL || name == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM keys WHERE vault = ?1 AND name = ?2 AND (deleted != 0) = ?3"
             " ORDER BY seq",
             vd_key_cols);
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt, sql, "tti", vault, name,
                         (long long)(deleted ? 1 : 0));
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, vd_key_obj.row, VD_STMT_ALL, &out, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *rows = out;
    return rv;
}

kv_rv vd_store_key_soft_delete(vd_store *st, const char *vault, const char *name, long long now,
                               long long purge_date)
{
    return vd_vobj_set_deleted(vd_store_sqlite(st), "keys", NULL, vault, name, true, now,
                               purge_date);
}

/* A soft-deleted key row: the key's columns, then its deletion dates. */
static kv_rv vd_deleted_key_from_stmt(sqlite3_stmt *stmt, vd_deleted_key *d)
{
    int ncol = sqlite3_column_count(stmt);
    kv_rv rv = vd_key_row_from_stmt(stmt, &d->row);

    d->deleted_date = sqlite3_column_int64(stmt, ncol - 2);
    d->purge_date = sqlite3_column_int64(stmt, ncol - 1);
    return rv;
}

static void vd_deleted_key_clear(vd_deleted_key *d)
{
    vd_key_row_clear(&d->row);
}

VD_ROW_TYPE(vd_deleted_key_type, vd_deleted_key, vd_deleted_key_from_stmt, vd_deleted_key_clear);
static const vd_vobj vd_deleted_key_obj = {
    "keys", VD_KEY_COLS ", deleted_date, scheduled_purge_date", &vd_deleted_key_type};

kv_rv vd_store_deleted_key_get(vd_store *st, const char *vault, const char *name,
                               vd_deleted_key *out)
{
    return vd_vobj_get(vd_store_sqlite(st), &vd_deleted_key_obj, vault, name, NULL, true, out);
}

kv_rv vd_store_deleted_key_list(vd_store *st, const char *vault, const char *after, size_t limit,
                                vd_deleted_key **out, size_t *n)
{
    void *arr = NULL;
    kv_rv rv;

    if (out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_vobj_list(vd_store_sqlite(st), &vd_deleted_key_obj, vault, after, true, limit, &arr, n);
    if (rv == KV_OK)
        *out = arr;
    return rv;
}

void vd_deleted_keys_free(vd_deleted_key *keys, size_t n)
{
    vd_rows_free(vd_deleted_key_obj.row, keys, n);
}

kv_rv vd_store_key_recover(vd_store *st, const char *vault, const char *name)
{
    return vd_vobj_set_deleted(vd_store_sqlite(st), "keys", NULL, vault, name, false, 0, 0);
}

kv_rv vd_store_key_purge(vd_store *st, const char *vault, const char *name)
{
    int changes = 0;
    kv_rv rv;

    if (vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_run(vd_store_sqlite(st), &changes,
                     "DELETE FROM keys WHERE vault = ?1 AND name = ?2 AND deleted != 0", "tt",
                     vault, name);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    if (rv == KV_OK)
        rv = vd_stmt_run(vd_store_sqlite(st), NULL,
                         "DELETE FROM key_rotation_policies WHERE vault = ?1 AND name = ?2", "tt",
                         vault, name);
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_keys_purge_due(vd_store *st, long long now, vd_key_row **rows, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[768];
    void *arr = NULL;
    kv_rv rv;

    if (rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM keys WHERE deleted != 0 AND scheduled_purge_date <= ?1 ORDER BY seq",
             vd_key_cols);
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt, sql, "i", now);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, vd_key_obj.row, VD_STMT_ALL, &arr, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

kv_rv vd_store_key_insert_many(vd_store *st, vd_key_row *rows, size_t n)
{
    sqlite3 *db = vd_store_sqlite(st);
    size_t i;
    kv_rv rv;

    if (db == NULL || rows == NULL || n == 0)
        return KV_ERR_INVALID_ARG;
    rv = vd_vobj_txn_begin(db, "keys", rows[0].vault, rows[0].name, 0, VD_VOBJ_NEW);
    if (rv != KV_OK)
        return rv;
    for (i = 0; i < n && rv == KV_OK; i++)
        rv = vd_key_row_insert(db, &rows[i], false);
    return vd_vobj_txn_end(db, rv);
}

/* ---- rotation policies ---- */

void vd_policy_row_clear(vd_policy_row *p)
{
    if (p == NULL)
        return;
    free(p->policy);
    memset(p, 0, sizeof(*p));
}

void vd_policy_rows_free(vd_policy_row *p, size_t n)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < n; i++)
        vd_policy_row_clear(&p[i]);
    free(p);
}

static kv_rv vd_sk_policy_from_stmt(sqlite3_stmt *stmt, vd_policy_row *p)
{
    const unsigned char *s;

    memset(p, 0, sizeof(*p));
    vd_col_copy_text(p->vault, sizeof(p->vault), stmt, 0);
    vd_col_copy_text(p->name, sizeof(p->name), stmt, 1);
    s = sqlite3_column_text(stmt, 2);
    p->policy = strdup(s ? (const char *)s : "{}");
    p->created = sqlite3_column_int64(stmt, 3);
    p->updated = sqlite3_column_int64(stmt, 4);
    return p->policy != NULL ? KV_OK : KV_ERR_NOMEM;
}

kv_rv vd_store_policy_get(vd_store *st, const char *vault, const char *name, vd_policy_row *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (vault == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT vault, name, policy, created, updated FROM key_rotation_policies"
                         " WHERE vault = ?1 AND name = ?2",
                         "tt", vault, name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK)
        rv = vd_sk_policy_from_stmt(stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_policy_put(vd_store *st, vd_policy_row *p, long long now)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (p == NULL || p->policy == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "INSERT INTO key_rotation_policies (vault, name, policy, created, updated)"
                         " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (vault, name) DO UPDATE SET"
                         " policy = excluded.policy, updated = excluded.updated"
                         " RETURNING created, updated",
                         "ttti", p->vault, p->name, p->policy, now);
    if (rv != KV_OK)
        return rv;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        p->created = sqlite3_column_int64(stmt, 0);
        p->updated = sqlite3_column_int64(stmt, 1);
        rv = sqlite3_step(stmt) == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
    } else {
        rv = KV_ERR_INTERNAL;
    }
    sqlite3_finalize(stmt);
    return rv;
}

VD_ROW_TYPE(vd_policy_row_type, vd_policy_row, vd_sk_policy_from_stmt, vd_policy_row_clear);

kv_rv vd_store_policy_all(vd_store *st, vd_policy_row **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *arr = NULL;
    kv_rv rv;

    if (out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT vault, name, policy, created, updated FROM key_rotation_policies"
                         " ORDER BY vault, name",
                         NULL);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, &vd_policy_row_type, VD_STMT_ALL, &arr, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *out = arr;
    return rv;
}
