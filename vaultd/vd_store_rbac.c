/* vd_store_rbac.c - SQLite queries on role_assignments for RBAC (see vd_store_rbac.h). */
#include "vd_store_rbac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "vd_store_admin.h"
#include "vd_util.h"

#define VD_RBAC_COLS "SELECT id, scope, principal_id, role_id FROM role_assignments"
#define VD_ROLE_MHSM_CRYPTO_USER "21dbd100-6940-42c2-9190-5d6cb909625b"
#define VD_ROLE_MHSM_CRYPTO_OFFICER "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"

static kv_rv vd_rbac_prep(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static void vd_rbac_text(char *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

static void vd_rbac_row(sqlite3_stmt *stmt, vd_role_assignment *a)
{
    memset(a, 0, sizeof(*a));
    vd_rbac_text(a->id, sizeof(a->id), stmt, 0);
    vd_rbac_text(a->scope, sizeof(a->scope), stmt, 1);
    vd_rbac_text(a->principal_id, sizeof(a->principal_id), stmt, 2);
    vd_rbac_text(a->role_id, sizeof(a->role_id), stmt, 3);
}

kv_rv vd_store_rbac_migrate(vd_store *st)
{
    sqlite3 *db = vd_store_sqlite(st);
    char *msg = NULL;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_exec(db,
                     "CREATE INDEX IF NOT EXISTS role_assignments_by_vault_scope"
                     " ON role_assignments(vault, scope)",
                     NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
        sqlite3_free(msg);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

/* Runs a prepared query and collects its rows. */
static kv_rv vd_rbac_collect(sqlite3_stmt *stmt, vd_role_assignment **out, size_t *n)
{
    vd_role_assignment *arr = NULL, *tmp;
    size_t cap = 0, cnt = 0;
    kv_rv rv = KV_OK;
    int rc;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            tmp = realloc(arr, cap * sizeof(*arr));
            if (tmp == NULL) {
                rv = KV_ERR_NOMEM;
                goto done;
            }
            arr = tmp;
        }
        vd_rbac_row(stmt, &arr[cnt++]);
    }
    if (rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
done:
    if (rv != KV_OK) {
        free(arr);
        arr = NULL;
        cnt = 0;
    }
    *out = arr;
    *n = cnt;
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
    rv = vd_rbac_prep(vd_store_sqlite(st), VD_RBAC_COLS " WHERE vault = ?1 AND principal_id = ?2",
                      &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, principal, -1, SQLITE_TRANSIENT);
    rv = vd_rbac_collect(stmt, out, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_rbac_get(vd_store *st, const char *vault, const char *id, vd_role_assignment *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (vault == NULL || id == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_rbac_prep(vd_store_sqlite(st), VD_RBAC_COLS " WHERE vault = ?1 AND id = ?2", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        vd_rbac_row(stmt, out);
        rv = KV_OK;
    } else {
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    }
    sqlite3_finalize(stmt);
    return rv;
}

/* An assignment matching the clause (any vault for the id check). */
static kv_rv vd_rbac_find(sqlite3 *db, const char *sql, const char *a1, const char *a2,
                          const char *a3, const char *a4, vd_role_assignment *out, bool *found)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    *found = false;
    rv = vd_rbac_prep(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, a1, -1, SQLITE_TRANSIENT);
    if (a2 != NULL)
        sqlite3_bind_text(stmt, 2, a2, -1, SQLITE_TRANSIENT);
    if (a3 != NULL)
        sqlite3_bind_text(stmt, 3, a3, -1, SQLITE_TRANSIENT);
    if (a4 != NULL)
        sqlite3_bind_text(stmt, 4, a4, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        vd_rbac_row(stmt, out);
        *found = true;
    } else if (rc != SQLITE_DONE) {
        rv = KV_ERR_INTERNAL;
    }
    sqlite3_finalize(stmt);
    return rv;
}

static kv_rv vd_rbac_insert(sqlite3 *db, const char *id, const char *vault, const char *scope,
                            const char *principal, const char *role_id)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    rv = vd_rbac_prep(db,
                      "INSERT INTO role_assignments (id, vault, scope, principal_id, role_id,"
                      " created) VALUES (lower(?1), ?2, ?3, ?4, lower(?5), ?6)",
                      &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, scope, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, principal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 5, role_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 6, vd_now());
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE)
        return KV_OK;
    return (rc & 0xff) == SQLITE_CONSTRAINT ? KV_ERR_CONFLICT : KV_ERR_INTERNAL;
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
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || vault == NULL || id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_rbac_prep(
        db, "DELETE FROM role_assignments WHERE vault = ?1 AND id = ?2 COLLATE NOCASE", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return KV_ERR_INTERNAL;
    return sqlite3_changes(db) > 0 ? KV_OK : KV_ERR_NOT_FOUND;
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
    rv = vd_rbac_prep(vd_store_sqlite(st),
                      VD_RBAC_COLS " WHERE vault = ?1 AND (?2 IS NULL OR principal_id = ?2)"
                                   " ORDER BY scope, created, id",
                      &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    if (principal != NULL)
        sqlite3_bind_text(stmt, 2, principal, -1, SQLITE_TRANSIENT);
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
