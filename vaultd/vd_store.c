/* vd_store.c - SQLite persistence for vaultd (WAL, synchronous=FULL, one connection per
 * thread). All statements are parameterised; private key material is stored only encrypted. */
#include "vd_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_admin.h"
#include "vd_hsm.h"
#include "vd_store_certs.h"
#include "vd_store_keys.h"
#include "vd_store_principals.h"
#include "vd_store_rbac.h"
#include "vd_store_secrets.h"
#include "vd_store_util.h"
#include "vd_store_versioned.h"
#include "vd_util.h"

struct vd_store {
    sqlite3 *db;
};

static const char vd_schema[] =
    "CREATE TABLE IF NOT EXISTS tenants ("
    "  id TEXT PRIMARY KEY COLLATE NOCASE, name TEXT, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS principals ("
    "  client_id TEXT PRIMARY KEY COLLATE NOCASE,"
    "  tenant_id TEXT NOT NULL COLLATE NOCASE REFERENCES tenants(id),"
    "  display_name TEXT, secret_salt BLOB NOT NULL, secret_hash BLOB NOT NULL,"
    "  iterations INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vaults ("
    "  name TEXT PRIMARY KEY COLLATE NOCASE,"
    "  tenant_id TEXT NOT NULL COLLATE NOCASE REFERENCES tenants(id),"
    "  resource TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS role_assignments ("
    "  id TEXT PRIMARY KEY, vault TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name),"
    "  scope TEXT NOT NULL, principal_id TEXT NOT NULL COLLATE NOCASE,"
    "  role_id TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS role_assignments_by_principal"
    "  ON role_assignments(vault, principal_id);"
    "CREATE TABLE IF NOT EXISTS keys ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  vault TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name),"
    "  name TEXT NOT NULL COLLATE NOCASE, version TEXT NOT NULL,"
    "  kty TEXT NOT NULL, hsm INTEGER NOT NULL,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL, enabled INTEGER NOT NULL,"
    "  nbf INTEGER, exp INTEGER, key_ops TEXT NOT NULL, tags TEXT,"
    "  public_der BLOB NOT NULL, wrapped_key BLOB NOT NULL, iv BLOB NOT NULL,"
    "  UNIQUE (vault, name, version));"
    "CREATE INDEX IF NOT EXISTS keys_by_name ON keys(vault, name, seq);";

const char vd_key_cols[] = VD_KEY_COLS;

kv_rv vd_store_open(const char *path, vd_store **out)
{
    vd_store *st = NULL;
    char *msg = NULL;
    kv_rv rv = KV_ERR_INTERNAL;

    if (path == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return KV_ERR_NOMEM;
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto done;
    sqlite3_busy_timeout(st->db, 10000);
    if (sqlite3_exec(st->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     " PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto done;
    *out = st;
    st = NULL;
    rv = KV_OK;
done:
    if (msg != NULL) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg);
        sqlite3_free(msg);
    }
    vd_store_close(st);
    return rv;
}

void vd_store_close(vd_store *st)
{
    if (st == NULL)
        return;
    sqlite3_close_v2(st->db);
    free(st);
}

static kv_rv vd_exec(vd_store *st, const char *sql)
{
    return vd_sql_exec(vd_store_sqlite(st), sql);
}

kv_rv vd_store_init_schema(vd_store *st)
{
    kv_rv rv;

    if (st == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_exec(st, vd_schema);
    if (rv == KV_OK)
        rv = vd_store_secrets_migrate(st);
    if (rv == KV_OK)
        rv = vd_store_certs_migrate(st);
    if (rv == KV_OK)
        rv = vd_store_keys_migrate(st);
    if (rv == KV_OK)
        rv = vd_store_admin_migrate(st);
    if (rv == KV_OK)
        rv = vd_store_hsm_migrate(st);
    if (rv == KV_OK)
        rv = vd_store_principals_migrate(st);
    if (rv == KV_OK)
        rv = vd_store_rbac_migrate(st);
    return rv;
}

struct sqlite3 *vd_store_sqlite(vd_store *st)
{
    return st != NULL ? st->db : NULL;
}

kv_rv vd_store_begin(vd_store *st)
{
    return vd_exec(st, "BEGIN IMMEDIATE");
}

kv_rv vd_store_commit(vd_store *st)
{
    return vd_exec(st, "COMMIT");
}

void vd_store_rollback(vd_store *st)
{
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- identity ---- */

kv_rv vd_store_first_tenant(vd_store *st, char tenant_id[VD_ID_MAX])
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_stmt_prepare(st->db, &stmt, "SELECT id FROM tenants ORDER BY created, rowid LIMIT 1",
                         NULL);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK)
        vd_col_copy_text(tenant_id, VD_ID_MAX, stmt, 0);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_tenant_exists(vd_store *st, const char *tenant_id, bool *exists)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_stmt_prepare(st->db, &stmt, "SELECT 1 FROM tenants WHERE id = ?1", "t", tenant_id);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    *exists = rv == KV_OK;
    sqlite3_finalize(stmt);
    return rv == KV_ERR_NOT_FOUND ? KV_OK : rv;
}

kv_rv vd_store_add_tenant(vd_store *st, const char *tenant_id, const char *name)
{
    return vd_stmt_run(st->db, NULL, "INSERT INTO tenants (id, name, created) VALUES (?1, ?2, ?3)",
                       "tti", tenant_id, name, vd_now());
}

kv_rv vd_store_add_principal(vd_store *st, const vd_principal *p, const char *display_name)
{
    return vd_stmt_run(st->db, NULL,
                       "INSERT INTO principals (client_id, tenant_id, display_name, secret_salt,"
                       " secret_hash, iterations, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                       "tttbbii", p->client_id, p->tenant_id, display_name, p->salt,
                       (size_t)VD_SALT_LEN, p->hash, (size_t)VD_HASH_LEN, (long long)p->iterations,
                       vd_now());
}

kv_rv vd_store_set_principal_secret(vd_store *st, const vd_principal *p)
{
    return vd_stmt_run(st->db, NULL,
                       "UPDATE principals SET secret_salt = ?2, secret_hash = ?3, iterations = ?4"
                       " WHERE client_id = ?1",
                       "tbbi", p->client_id, p->salt, (size_t)VD_SALT_LEN, p->hash,
                       (size_t)VD_HASH_LEN, (long long)p->iterations);
}

/* Steps stmt once and fills out from the row. */
static kv_rv vd_principal_from_stmt(sqlite3_stmt *stmt, vd_principal *out)
{
    kv_rv rv = vd_stmt_row(stmt);

    if (rv != KV_OK)
        return rv;
    memset(out, 0, sizeof(*out));
    vd_col_copy_text(out->client_id, sizeof(out->client_id), stmt, 0);
    vd_col_copy_text(out->tenant_id, sizeof(out->tenant_id), stmt, 1);
    rv = vd_col_copy_blob(out->salt, VD_SALT_LEN, stmt, 2);
    if (rv == KV_OK)
        rv = vd_col_copy_blob(out->hash, VD_HASH_LEN, stmt, 3);
    out->iterations = sqlite3_column_int(stmt, 4);
    return rv;
}

kv_rv vd_store_get_principal(vd_store *st, const char *tenant_id, const char *client_id,
                             vd_principal *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (client_id == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(st->db, &stmt,
                         "SELECT client_id, tenant_id, secret_salt, secret_hash, iterations"
                         " FROM principals WHERE client_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)",
                         "tt", client_id, tenant_id);
    if (rv != KV_OK)
        return rv;
    rv = vd_principal_from_stmt(stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_first_principal(vd_store *st, const char *tenant_id, vd_principal *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_stmt_prepare(st->db, &stmt,
                         "SELECT client_id, tenant_id, secret_salt, secret_hash, iterations"
                         " FROM principals WHERE tenant_id = ?1 ORDER BY created, rowid LIMIT 1",
                         "t", tenant_id);
    if (rv != KV_OK)
        return rv;
    rv = vd_principal_from_stmt(stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

/* ---- vaults and roles ---- */

kv_rv vd_store_add_vault(vd_store *st, const vd_vault *v, bool is_default)
{
    return vd_stmt_run(st->db, NULL,
                       "INSERT INTO vaults (name, tenant_id, resource, is_default, created)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
                       "tttii", v->name, v->tenant_id, v->resource, (long long)(is_default ? 1 : 0),
                       vd_now());
}

static kv_rv vd_vault_query(vd_store *st, const char *sql, const char *name, vd_vault *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_stmt_prepare(st->db, &stmt, sql, "t", name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK) {
        memset(out, 0, sizeof(*out));
        vd_col_copy_text(out->name, sizeof(out->name), stmt, 0);
        vd_col_copy_text(out->tenant_id, sizeof(out->tenant_id), stmt, 1);
        vd_col_copy_text(out->resource, sizeof(out->resource), stmt, 2);
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_get_vault(vd_store *st, const char *name, vd_vault *out)
{
    if (name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_vault_query(st, "SELECT name, tenant_id, resource FROM vaults WHERE name = ?1", name,
                          out);
}

kv_rv vd_store_default_vault(vd_store *st, vd_vault *out)
{
    if (out == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_vault_query(st,
                          "SELECT name, tenant_id, resource FROM vaults"
                          " ORDER BY is_default DESC, created, rowid LIMIT 1",
                          NULL, out);
}

kv_rv vd_store_add_role_assignment(vd_store *st, const char *vault, const char *scope,
                                   const char *principal_id, const char *role_id)
{
    char id[37];
    kv_rv rv;

    rv = vd_guid(id);
    if (rv != KV_OK)
        return rv;
    return vd_stmt_run(st->db, NULL,
                       "INSERT INTO role_assignments (id, vault, scope, principal_id, role_id,"
                       " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                       "ttttti", id, vault, scope, principal_id, role_id, vd_now());
}

kv_rv vd_store_delete_assignments_of(vd_store *st, const char *principal_id)
{
    if (st == NULL || principal_id == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_stmt_run(st->db, NULL, "DELETE FROM role_assignments WHERE principal_id = ?1", "t",
                       principal_id);
}

/* ---- keys ---- */

void vd_key_row_clear(vd_key_row *row)
{
    if (row == NULL)
        return;
    free(row->key_ops);
    free(row->tags);
    free(row->pub_der);
    free(row->wrapped);
    free(row->hsm_ref);
    memset(row, 0, sizeof(*row));
}

/* Fills row from the current result row (columns in vd_key_cols order). */
kv_rv vd_key_row_from_stmt(sqlite3_stmt *stmt, vd_key_row *row)
{
    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, 0);
    vd_col_copy_text(row->vault, sizeof(row->vault), stmt, 1);
    vd_col_copy_text(row->name, sizeof(row->name), stmt, 2);
    vd_col_copy_text(row->version, sizeof(row->version), stmt, 3);
    vd_col_copy_text(row->kty, sizeof(row->kty), stmt, 4);
    row->hsm = sqlite3_column_int(stmt, 5) != 0;
    row->created = sqlite3_column_int64(stmt, 6);
    row->updated = sqlite3_column_int64(stmt, 7);
    row->enabled = sqlite3_column_int(stmt, 8) != 0;
    row->has_nbf = sqlite3_column_type(stmt, 9) != SQLITE_NULL;
    row->nbf = sqlite3_column_int64(stmt, 9);
    row->has_exp = sqlite3_column_type(stmt, 10) != SQLITE_NULL;
    row->exp = sqlite3_column_int64(stmt, 10);
    row->key_ops = vd_col_dup_text(stmt, 11);
    row->tags = vd_col_dup_text(stmt, 12);
    row->pub_der = vd_col_dup_blob(stmt, 13, &row->pub_len);
    row->wrapped = vd_col_dup_blob(stmt, 14, &row->wrapped_len);
    row->hsm_ref = vd_col_dup_text(stmt, 16); /* HSM keys (vd_hsm_keys.c): no wrapped material */
    if (row->key_ops == NULL || (row->pub_der == NULL && strcmp(row->kty, "oct") != 0) ||
        (row->wrapped == NULL && row->hsm_ref == NULL) ||
        vd_col_copy_blob(row->iv, VD_IV_LEN, stmt, 15) != KV_OK) {
        vd_key_row_clear(row);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

kv_rv vd_key_row_insert(struct sqlite3 *db, vd_key_row *row, bool managed)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;

    if (db == NULL || row == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "INSERT INTO keys (%s, managed) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
             " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
             vd_key_cols);
    rv = vd_stmt_prepare(db, &stmt, sql, "ttttiiiiiittbbbti", row->vault, row->name, row->version,
                         row->kty, (long long)(row->hsm ? 1 : 0), row->created, row->updated,
                         (long long)(row->enabled ? 1 : 0), row->nbf, row->exp, row->key_ops,
                         row->tags, row->pub_der, row->pub_len, row->wrapped, row->wrapped_len,
                         row->iv, (size_t)VD_IV_LEN, row->hsm_ref, (long long)(managed ? 1 : 0));
    if (rv != KV_OK)
        return rv;
    if (!row->has_nbf)
        sqlite3_bind_null(stmt, 9);
    if (!row->has_exp)
        sqlite3_bind_null(stmt, 10);
    if (row->pub_der == NULL)
        sqlite3_bind_zeroblob(stmt, 13, 0); /* oct-HSM: no public part */
    if (row->wrapped == NULL)
        sqlite3_bind_zeroblob(stmt, 14, 0); /* HSM key: material stays in the pool */
    rv = vd_stmt_done(db, stmt, NULL);
    if (rv == KV_OK)
        row->seq = sqlite3_last_insert_rowid(db);
    return rv;
}

kv_rv vd_store_key_insert(vd_store *st, vd_key_row *row)
{
    kv_rv rv;

    if (st == NULL || row == NULL || row->key_ops == NULL ||
        (row->pub_der == NULL && strcmp(row->kty, "oct") != 0) ||
        (row->wrapped == NULL && row->hsm_ref == NULL))
        return KV_ERR_INVALID_ARG;
    /* keep the spelling of the first version */
    rv = vd_vobj_txn_begin(st->db, "keys", row->vault, row->name, sizeof(row->name), VD_VOBJ_ANY);
    return rv == KV_OK ? vd_vobj_txn_end(st->db, vd_key_row_insert(st->db, row, false)) : rv;
}

VD_ROW_TYPE(vd_key_row_type, vd_key_row, vd_key_row_from_stmt, vd_key_row_clear);
const vd_vobj vd_key_obj = {"keys", VD_KEY_COLS, &vd_key_row_type};

void vd_key_rows_free(vd_key_row *rows, size_t n)
{
    vd_rows_free(vd_key_obj.row, rows, n);
}

kv_rv vd_store_key_get(vd_store *st, const char *vault, const char *name, const char *version,
                       vd_key_row *out)
{
    if (st == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_vobj_get(st->db, &vd_key_obj, vault, name, version, false, out);
}

kv_rv vd_store_key_list(vd_store *st, const char *vault, const char *after, size_t limit,
                        vd_key_row **rows, size_t *n)
{
    void *arr = NULL;
    kv_rv rv;

    if (st == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_vobj_list(st->db, &vd_key_obj, vault, after, false, limit, &arr, n);
    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

kv_rv vd_store_key_versions(vd_store *st, const char *vault, const char *name, long long after_seq,
                            size_t limit, vd_key_row **rows, size_t *n)
{
    void *arr = NULL;
    kv_rv rv;

    if (st == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_vobj_versions(st->db, &vd_key_obj, vault, name, after_seq, limit, &arr, n);
    if (rv == KV_OK)
        *rows = arr;
    return rv;
}
