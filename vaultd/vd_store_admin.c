/* vd_store_admin.c - SQLite side of instance administration: the vault columns the admin API
 * sets (kind, sku, location, retention_days, purge_protection), principals.tenant_admin, vault
 * creation/deletion and the tenant-admin check. Vault-scoped tables are found by their `vault`
 * column, so objects added by other store files are counted and deleted too. */
#include "vd_store_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_rbac.h"
#include "vd_store_util.h"
#include "vd_util.h"

/* Guarded ALTER TABLE ... ADD COLUMN: "duplicate column name" means already there. */
static kv_rv vd_add_column(sqlite3 *db, const char *table, const char *coldef)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s", table, coldef);
    return vd_sql_add_column(db, sql);
}

kv_rv vd_store_admin_migrate(vd_store *st)
{
    static const char *const cols[][2] = {
        {"vaults", "kind TEXT NOT NULL DEFAULT 'vault'"},
        {"vaults", "retention_days INTEGER NOT NULL DEFAULT 90"},
        {"vaults", "purge_protection INTEGER NOT NULL DEFAULT 0"},
        {"vaults", "sku TEXT NOT NULL DEFAULT 'standard'"},
        {"vaults", "location TEXT NOT NULL DEFAULT 'local'"},
        {"principals", "tenant_admin INTEGER NOT NULL DEFAULT 0"},
    };
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv = KV_OK;
    size_t i;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    for (i = 0; i < sizeof(cols) / sizeof(cols[0]) && rv == KV_OK; i++)
        rv = vd_add_column(db, cols[i][0], cols[i][1]);
    return rv;
}

#define VD_PROPS_COLS                                                                              \
    "SELECT name, tenant_id, kind, sku, location, retention_days, purge_protection, is_default,"   \
    " created FROM vaults"

static void vd_props_from_stmt(sqlite3_stmt *stmt, vd_vault_props *p)
{
    memset(p, 0, sizeof(*p));
    vd_col_copy_text(p->name, sizeof(p->name), stmt, 0);
    vd_col_copy_text(p->tenant_id, sizeof(p->tenant_id), stmt, 1);
    vd_col_copy_text(p->kind, sizeof(p->kind), stmt, 2);
    vd_col_copy_text(p->sku, sizeof(p->sku), stmt, 3);
    vd_col_copy_text(p->location, sizeof(p->location), stmt, 4);
    p->retention_days = sqlite3_column_int(stmt, 5);
    p->purge_protection = sqlite3_column_int(stmt, 6) != 0;
    p->is_default = sqlite3_column_int(stmt, 7) != 0;
    p->created = sqlite3_column_int64(stmt, 8);
}

kv_rv vd_store_vault_props_get(vd_store *st, const char *name, vd_vault_props *out)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(db, &stmt, VD_PROPS_COLS " WHERE name = ?1", "t", name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK)
        vd_props_from_stmt(stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

static kv_rv vd_props_read(sqlite3_stmt *stmt, void *row)
{
    vd_props_from_stmt(stmt, row);
    return KV_OK;
}

kv_rv vd_store_vault_props_list(vd_store *st, const char *tenant_id, const char *kind,
                                vd_vault_props **out, size_t *n)
{
    static const vd_row_type props_row = {sizeof(vd_vault_props), vd_props_read, NULL};
    sqlite3_stmt *stmt = NULL;
    void *arr = NULL;
    kv_rv rv;

    if (out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         VD_PROPS_COLS " WHERE (?1 IS NULL OR tenant_id = ?1) AND"
                                       " (?2 IS NULL OR kind = ?2) ORDER BY name",
                         "tt", tenant_id, kind);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, &props_row, VD_STMT_ALL, &arr, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *out = arr;
    return rv;
}

kv_rv vd_store_vault_create(vd_store *st, const vd_vault_props *p, const char *resource,
                            const char *const *admins, size_t nadmins, const char *role_id)
{
    sqlite3 *db = vd_store_sqlite(st);
    size_t i;
    kv_rv rv;

    if (db == NULL || p == NULL || resource == NULL || (nadmins > 0 && admins == NULL) ||
        role_id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_run(db, NULL,
                     "INSERT INTO vaults (name, tenant_id, resource, is_default, created, kind,"
                     " retention_days, purge_protection, sku, location)"
                     " VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)",
                     "tttitiitt", p->name, p->tenant_id, resource, vd_now(), p->kind,
                     (long long)p->retention_days, (long long)(p->purge_protection ? 1 : 0), p->sku,
                     p->location);
    for (i = 0; i < nadmins && rv == KV_OK; i++)
        rv = vd_store_add_role_assignment(st, p->name, "/", admins[i], role_id);
    if (rv == KV_OK && nadmins > 0) /* pools: the creator also gets key roles (vd_store_rbac.h) */
        rv = vd_store_rbac_grant_creator(st, p->name, p->kind, admins[0]);
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_vault_enable_purge_protection(vd_store *st, const char *name)
{
    int changes = 0;
    kv_rv rv;

    if (name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_run(vd_store_sqlite(st), &changes,
                     "UPDATE vaults SET purge_protection = 1 WHERE name = ?1", "t", name);
    if (rv != KV_OK)
        return KV_ERR_INTERNAL;
    return changes > 0 ? KV_OK : KV_ERR_NOT_FOUND;
}

/* Calls fn(db, quoted table name, name, arg) for every table with a `vault` column except
 * vaults itself and role_assignments. */
typedef kv_rv (*vd_table_fn)(sqlite3 *db, const char *qtable, const char *name, void *arg);

static kv_rv vd_each_vault_table(sqlite3 *db, const char *name, vd_table_fn fn, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    char qtable[300];
    kv_rv rv;
    int rc;

    rv = vd_stmt_prepare(db, &stmt,
                         "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c"
                         " WHERE m.type = 'table' AND c.name = 'vault'"
                         " AND m.name NOT IN ('vaults', 'role_assignments') ORDER BY m.name",
                         NULL);
    if (rv != KV_OK)
        return rv;
    while (rv == KV_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(stmt, 0);
        size_t o = 0;

        if (t == NULL || strlen(t) > 100)
            continue;
        qtable[o++] = '"';
        for (; *t != '\0'; t++) {
            if (*t == '"')
                qtable[o++] = '"';
            qtable[o++] = *t;
        }
        qtable[o++] = '"';
        qtable[o] = '\0';
        rv = fn(db, qtable, name, arg);
    }
    if (rv == KV_OK && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

static kv_rv vd_count_rows(sqlite3 *db, const char *qtable, const char *name, void *arg)
{
    long long *count = arg;
    sqlite3_stmt *stmt = NULL;
    char sql[400];
    kv_rv rv;

    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE vault = ?1", qtable);
    rv = vd_stmt_prepare(db, &stmt, sql, "t", name);
    if (rv != KV_OK)
        return rv;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        *count += sqlite3_column_int64(stmt, 0);
    else
        rv = KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_vault_object_count(vd_store *st, const char *name, long long *count)
{
    sqlite3 *db = vd_store_sqlite(st);

    if (db == NULL || name == NULL || count == NULL)
        return KV_ERR_INVALID_ARG;
    *count = 0;
    return vd_each_vault_table(db, name, vd_count_rows, count);
}

void vd_store_strings_free(char **s, size_t n)
{
    vd_strings_free(s, n);
}

kv_rv vd_store_vault_key_versions(vd_store *st, const char *name, char ***out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (name == NULL || out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt, "SELECT version FROM keys WHERE vault = ?1",
                         "t", name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect_text(stmt, VD_STMT_ALL, out, n);
    sqlite3_finalize(stmt);
    return rv;
}

/* arg NULL: rows whose `vault` is name; else arg names the column to match. */
static kv_rv vd_delete_rows(sqlite3 *db, const char *qtable, const char *name, void *arg)
{
    char sql[400];
    kv_rv rv;

    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?1", qtable,
             arg != NULL ? (const char *)arg : "vault");
    rv = vd_stmt_run(db, NULL, sql, "t", name);
    return rv == KV_OK || rv == KV_ERR_INVALID_ARG ? rv : KV_ERR_INTERNAL;
}

kv_rv vd_store_vault_delete(vd_store *st, const char *name)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    /* Rows of object tables may reference each other: check the keys at COMMIT only. */
    if (sqlite3_exec(db, "PRAGMA defer_foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    rv = vd_each_vault_table(db, name, vd_delete_rows, NULL);
    if (rv == KV_OK)
        rv = vd_delete_rows(db, "role_assignments", name, NULL);
    if (rv == KV_OK)
        rv = vd_delete_rows(db, "vaults", name, "name");
    if (rv == KV_OK && sqlite3_changes(db) == 0)
        rv = KV_ERR_NOT_FOUND;
    if (rv == KV_OK)
        rv = vd_store_commit(st);
done:
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_is_tenant_admin(vd_store *st, const char *principal, const char *default_vault,
                               bool *is_admin)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || principal == NULL || default_vault == NULL || is_admin == NULL)
        return KV_ERR_INVALID_ARG;
    *is_admin = false;
    rv = vd_stmt_prepare(db, &stmt,
                         "SELECT 1 FROM principals WHERE client_id = ?1 AND tenant_admin != 0"
                         " UNION ALL SELECT 1 FROM role_assignments WHERE vault = ?2 AND"
                         " principal_id = ?1 AND role_id = ?3 AND scope = '/' LIMIT 1",
                         "ttt", principal, default_vault, VD_ROLE_ID_KV_ADMINISTRATOR);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    *is_admin = rv == KV_OK;
    sqlite3_finalize(stmt);
    return rv == KV_ERR_NOT_FOUND ? KV_OK : rv;
}
