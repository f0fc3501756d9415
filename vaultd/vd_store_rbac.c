/* vd_store_rbac.c - SQLite queries on role_assignments for RBAC (see vd_store_rbac.h). */
#include "vd_store_rbac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "vd_store_admin.h"
#include "vd_store_util.h"
#include "vd_util.h"

#define VD_RBAC_COLS "SELECT id, scope, principal_id, role_id FROM role_assignments"
#define VD_ROLE_MHSM_CRYPTO_USER "21dbd100-6940-42c2-9190-5d6cb909625b"
#define VD_ROLE_MHSM_CRYPTO_OFFICER "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"

static void vd_rbac_row(sqlite3_stmt *stmt, vd_role_assignment *a)
{
    memset(a, 0, sizeof(*a));
    vd_col_copy_text(a->id, sizeof(a->id), stmt, 0);
    vd_col_copy_text(a->scope, sizeof(a->scope), stmt, 1);
    vd_col_copy_text(a->principal_id, sizeof(a->principal_id), stmt, 2);
    vd_col_copy_text(a->role_id, sizeof(a->role_id), stmt, 3);
}

kv_rv vd_store_rbac_migrate(vd_store *st)
{
    return vd_sql_exec(vd_store_sqlite(st), "CREATE INDEX IF NOT EXISTS"
                                            " role_assignments_by_vault_scope"
                                            " ON role_assignments(vault, scope)");
}

static kv_rv vd_rbac_read(sqlite3_stmt *stmt, void *row)
{
    vd_rbac_row(stmt, row);
    return KV_OK;
}

/* Runs a prepared query and collects its rows. */
static kv_rv vd_rbac_collect(sqlite3_stmt *stmt, vd_role_assignment **out, size_t *n)
{
    static const vd_row_type rbac_row = {sizeof(vd_role_assignment), vd_rbac_read, NULL};
    void *arr = NULL;
    kv_rv rv = vd_stmt_collect(stmt, &rbac_row, VD_STMT_ALL, &arr, n);

    if (rv == KV_OK)
        *out = arr;
    return rv;
}

kv_rv vd_store_rbac_for_principal(vd_store *st, const char *vault, const char *principal,
                                  vd_role_assignment **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (vault == NULL || principal == NULL || out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    *out = NULL;
    *n = 0;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         VD_RBAC_COLS " WHERE vault = ?1 AND principal_id = ?2", "tt", vault,
                         principal);
    if (rv != KV_OK)
        return rv;
    rv = vd_rbac_collect(stmt, out, n);
    sqlite3_finalize(stmt);
    return rv;
}

/* An assignment matching the clause (any vault for the id check). */
static kv_rv vd_rbac_find(sqlite3 *db, const char *sql, const char *a1, const char *a2,
                          const char *a3, const char *a4, vd_role_assignment *out, bool *found)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    *found = false;
    rv = vd_stmt_prepare(db, &stmt, sql, "tttt", a1, a2, a3, a4);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK) {
        vd_rbac_row(stmt, out);
        *found = true;
    }
    sqlite3_finalize(stmt);
    return rv == KV_ERR_NOT_FOUND ? KV_OK : rv;
}

kv_rv vd_store_rbac_get(vd_store *st, const char *vault, const char *id, vd_role_assignment *out)
{
    bool found = false;
    kv_rv rv;

    if (vault == NULL || id == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_rbac_find(vd_store_sqlite(st), VD_RBAC_COLS " WHERE vault = ?1 AND id = ?2", vault, id,
                      NULL, NULL, out, &found);
    return rv == KV_OK && !found ? KV_ERR_NOT_FOUND : rv;
}

static kv_rv vd_rbac_insert(sqlite3 *db, const char *id, const char *vault, const char *scope,
                            const char *principal, const char *role_id)
{
    return vd_stmt_run(db, NULL,
                       "INSERT INTO role_assignments (id, vault, scope, principal_id, role_id,"
                       " created) VALUES (lower(?1), ?2, ?3, ?4, lower(?5), ?6)",
                       "ttttti", id, vault, scope, principal, role_id, vd_now());
}

kv_rv vd_store_rbac_put(vd_store *st, const char *vault, const vd_role_assignment *a, bool *created,
                        vd_role_assignment *existing)
{
    sqlite3 *db = vd_store_sqlite(st);
    vd_role_assignment cur;
    bool found = false;
    kv_rv rv;

    if (db == NULL || vault == NULL || a == NULL || created == NULL)
        return KV_ERR_INVALID_ARG;
    *created = false;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_rbac_find(db, VD_RBAC_COLS " WHERE id = ?1 COLLATE NOCASE", a->id, NULL, NULL, NULL,
                      &cur, &found);
    if (rv == KV_OK && found) {
        vd_role_assignment in_vault;
        bool same_vault = false;

        rv = vd_rbac_find(db, VD_RBAC_COLS " WHERE id = ?1 COLLATE NOCASE AND vault = ?2", a->id,
                          vault, NULL, NULL, &in_vault, &same_vault);
        if (rv == KV_OK)
            rv = same_vault && strcmp(cur.scope, a->scope) == 0 &&
                         strcasecmp(cur.principal_id, a->principal_id) == 0 &&
                         strcasecmp(cur.role_id, a->role_id) == 0
                     ? KV_OK
                     : KV_ERR_CONFLICT;
        if (existing != NULL)
            *existing = cur;
        goto done;
    }
    if (rv == KV_OK)
        rv = vd_rbac_find(db,
                          VD_RBAC_COLS " WHERE vault = ?1 AND principal_id = ?2 AND scope = ?3"
                                       " AND role_id = ?4 COLLATE NOCASE",
                          vault, a->principal_id, a->scope, a->role_id, &cur, &found);
    if (rv == KV_OK && found) {
        if (existing != NULL)
            *existing = cur;
        rv = KV_ERR_CONFLICT;
        goto done;
    }
    if (rv == KV_OK)
        rv = vd_rbac_insert(db, a->id, vault, a->scope, a->principal_id, a->role_id);
    if (rv == KV_OK)
        *created = true;
done:
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_rbac_delete(vd_store *st, const char *vault, const char *id)
{
    int changes = 0;
    kv_rv rv;

    if (vault == NULL || id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_run(vd_store_sqlite(st), &changes,
                     "DELETE FROM role_assignments WHERE vault = ?1 AND id = ?2 COLLATE NOCASE",
                     "tt", vault, id);
    if (rv != KV_OK)
        return rv == KV_ERR_INVALID_ARG ? rv : KV_ERR_INTERNAL;
    return changes > 0 ? KV_OK : KV_ERR_NOT_FOUND;
}

kv_rv vd_store_rbac_list(vd_store *st, const char *vault, const char *principal,
                         vd_role_assignment **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (vault == NULL || out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    *out = NULL;
    *n = 0;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         VD_RBAC_COLS " WHERE vault = ?1 AND (?2 IS NULL OR principal_id = ?2)"
                                      " ORDER BY scope, created, id",
                         "tt", vault, principal);
    if (rv != KV_OK)
        return rv;
    rv = vd_rbac_collect(stmt, out, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_rbac_grant_creator(vd_store *st, const char *vault, const char *kind,
                                  const char *principal)
{
    static const char *const roles[] = {VD_ROLE_MHSM_CRYPTO_USER, VD_ROLE_MHSM_CRYPTO_OFFICER};
    size_t i;
    kv_rv rv = KV_OK;

    if (vault == NULL || kind == NULL || principal == NULL)
        return KV_ERR_INVALID_ARG;
    if (strcmp(kind, VD_KIND_MHSM) != 0)
        return KV_OK;
    for (i = 0; i < sizeof(roles) / sizeof(roles[0]) && rv == KV_OK; i++)
        rv = vd_store_add_role_assignment(st, vault, "/", principal, roles[i]);
    return rv;
}
