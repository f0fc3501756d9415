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

const char vd_key_cols[] =
    "seq, vault, name, version, kty, hsm, created, updated, enabled, nbf, exp, key_ops, tags,"
    " public_der, wrapped_key, iv, hsm_ref";

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
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
        sqlite3_free(msg);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
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

/* Prepares sql and binds text arguments (NULL-terminated list of strings). */
static kv_rv vd_prepare(vd_store *st, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", sqlite3_errmsg(st->db));
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

/* Runs a statement that returns no rows, then finalizes it. */
static kv_rv vd_step_done(vd_store *st, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(st->db));
        return rc == SQLITE_CONSTRAINT ? KV_ERR_CONFLICT : KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static void vd_copy_text(char *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

static kv_rv vd_copy_blob(uint8_t *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const void *b = sqlite3_column_blob(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);

    if (b == NULL || (size_t)n != dstlen)
        return KV_ERR_INTERNAL;
    memcpy(dst, b, dstlen);
    return KV_OK;
}

/* ---- identity ---- */

kv_rv vd_store_first_tenant(vd_store *st, char tenant_id[VD_ID_MAX])
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    rv = vd_prepare(st, "SELECT id FROM tenants ORDER BY created, rowid LIMIT 1", &stmt);
    if (rv != KV_OK)
        return rv;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        vd_copy_text(tenant_id, VD_ID_MAX, stmt, 0);
        rv = KV_OK;
    } else {
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_tenant_exists(vd_store *st, const char *tenant_id, bool *exists)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    rv = vd_prepare(st, "SELECT 1 FROM tenants WHERE id = ?1", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, tenant_id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    *exists = rc == SQLITE_ROW;
    rv = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? KV_OK : KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_add_tenant(vd_store *st, const char *tenant_id, const char *name)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_prepare(st, "INSERT INTO tenants (id, name, created) VALUES (?1, ?2, ?3)", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, tenant_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, vd_now());
    return vd_step_done(st, stmt);
}

kv_rv vd_store_add_principal(vd_store *st, const vd_principal *p, const char *display_name)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_prepare(st,
                    "INSERT INTO principals (client_id, tenant_id, display_name, secret_salt,"
                    " secret_hash, iterations, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, p->client_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, p->tenant_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, display_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 4, p->salt, VD_SALT_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 5, p->hash, VD_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 6, p->iterations);
    sqlite3_bind_int64(stmt, 7, vd_now());
    return vd_step_done(st, stmt);
}

kv_rv vd_store_set_principal_secret(vd_store *st, const vd_principal *p)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_prepare(st,
                    "UPDATE principals SET secret_salt = ?2, secret_hash = ?3, iterations = ?4"
                    " WHERE client_id = ?1",
                    &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, p->client_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 2, p->salt, VD_SALT_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 3, p->hash, VD_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, p->iterations);
    return vd_step_done(st, stmt);
}

static kv_rv vd_principal_from_stmt(vd_store *st, sqlite3_stmt *stmt, vd_principal *out)
{
    int rc = sqlite3_step(stmt);
    kv_rv rv;

    (void)st;
    if (rc == SQLITE_DONE)
        return KV_ERR_NOT_FOUND;
    if (rc != SQLITE_ROW)
        return KV_ERR_INTERNAL;
    memset(out, 0, sizeof(*out));
    vd_copy_text(out->client_id, sizeof(out->client_id), stmt, 0);
    vd_copy_text(out->tenant_id, sizeof(out->tenant_id), stmt, 1);
    rv = vd_copy_blob(out->salt, VD_SALT_LEN, stmt, 2);
    if (rv == KV_OK)
        rv = vd_copy_blob(out->hash, VD_HASH_LEN, stmt, 3);
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
    rv = vd_prepare(st,
                    "SELECT client_id, tenant_id, secret_salt, secret_hash, iterations"
                    " FROM principals WHERE client_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)",
                    &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, client_id, -1, SQLITE_TRANSIENT);
    if (tenant_id != NULL)
        sqlite3_bind_text(stmt, 2, tenant_id, -1, SQLITE_TRANSIENT);
    rv = vd_principal_from_stmt(st, stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_first_principal(vd_store *st, const char *tenant_id, vd_principal *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_prepare(st,
                    "SELECT client_id, tenant_id, secret_salt, secret_hash, iterations"
                    " FROM principals WHERE tenant_id = ?1 ORDER BY created, rowid LIMIT 1",
                    &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, tenant_id, -1, SQLITE_TRANSIENT);
    rv = vd_principal_from_stmt(st, stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

/* ---- vaults and roles ---- */

kv_rv vd_store_add_vault(vd_store *st, const vd_vault *v, bool is_default)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    rv = vd_prepare(st,
                    "INSERT INTO vaults (name, tenant_id, resource, is_default, created)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
                    &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, v->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, v->tenant_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, v->resource, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, is_default ? 1 : 0);
    sqlite3_bind_int64(stmt, 5, vd_now());
    return vd_step_done(st, stmt);
}

static kv_rv vd_vault_query(vd_store *st, const char *sql, const char *name, vd_vault *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    rv = vd_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    if (name != NULL)
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        vd_copy_text(out->name, sizeof(out->name), stmt, 0);
        vd_copy_text(out->tenant_id, sizeof(out->tenant_id), stmt, 1);
        vd_copy_text(out->resource, sizeof(out->resource), stmt, 2);
        rv = KV_OK;
    } else {
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
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
    sqlite3_stmt *stmt = NULL;
    char id[37];
    kv_rv rv;

    rv = vd_guid(id);
    if (rv != KV_OK)
        return rv;
    rv = vd_prepare(st,
                    "INSERT INTO role_assignments (id, vault, scope, principal_id, role_id,"
                    " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, scope, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, principal_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 5, role_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 6, vd_now());
    return vd_step_done(st, stmt);
}

kv_rv vd_store_delete_assignments_of(vd_store *st, const char *principal_id)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (st == NULL || principal_id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_prepare(st, "DELETE FROM role_assignments WHERE principal_id = ?1", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, principal_id, -1, SQLITE_TRANSIENT);
    return vd_step_done(st, stmt);
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

void vd_key_rows_free(vd_key_row *rows, size_t n)
{
    size_t i;

    if (rows == NULL)
        return;
    for (i = 0; i < n; i++)
        vd_key_row_clear(&rows[i]);
    free(rows);
}

static char *vd_dup_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    return s ? strdup((const char *)s) : NULL;
}

static uint8_t *vd_dup_blob(sqlite3_stmt *stmt, int col, size_t *len)
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

/* Fills row from the current result row (columns in vd_key_cols order). */
kv_rv vd_key_row_from_stmt(sqlite3_stmt *stmt, vd_key_row *row)
{
    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, 0);
    vd_copy_text(row->vault, sizeof(row->vault), stmt, 1);
    vd_copy_text(row->name, sizeof(row->name), stmt, 2);
    vd_copy_text(row->version, sizeof(row->version), stmt, 3);
    vd_copy_text(row->kty, sizeof(row->kty), stmt, 4);
    row->hsm = sqlite3_column_int(stmt, 5) != 0;
    row->created = sqlite3_column_int64(stmt, 6);
    row->updated = sqlite3_column_int64(stmt, 7);
    row->enabled = sqlite3_column_int(stmt, 8) != 0;
    row->has_nbf = sqlite3_column_type(stmt, 9) != SQLITE_NULL;
    row->nbf = sqlite3_column_int64(stmt, 9);
    row->has_exp = sqlite3_column_type(stmt, 10) != SQLITE_NULL;
    row->exp = sqlite3_column_int64(stmt, 10);
    row->key_ops = vd_dup_text(stmt, 11);
    row->tags = vd_dup_text(stmt, 12);
    row->pub_der = vd_dup_blob(stmt, 13, &row->pub_len);
    row->wrapped = vd_dup_blob(stmt, 14, &row->wrapped_len);
    row->hsm_ref = vd_dup_text(stmt, 16); /* HSM keys (vd_hsm_keys.c): no wrapped material */
    if (row->key_ops == NULL || (row->pub_der == NULL && strcmp(row->kty, "oct") != 0) ||
        (row->wrapped == NULL && row->hsm_ref == NULL) ||
        vd_copy_blob(row->iv, VD_IV_LEN, stmt, 15) != KV_OK) {
        vd_key_row_clear(row);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

kv_rv vd_store_key_insert(vd_store *st, vd_key_row *row)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;
    int rc;

    if (st == NULL || row == NULL || row->key_ops == NULL ||
        (row->pub_der == NULL && strcmp(row->kty, "oct") != 0) ||
        (row->wrapped == NULL && row->hsm_ref == NULL))
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    /* keep the spelling of the first version */
    rv = vd_prepare(st, "SELECT name FROM keys WHERE vault = ?1 AND name = ?2 LIMIT 1", &stmt);
    if (rv != KV_OK)
        goto done;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        vd_copy_text(row->name, sizeof(row->name), stmt, 0);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    snprintf(sql, sizeof(sql),
             "INSERT INTO keys (%s) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
             " ?12, ?13, ?14, ?15, ?16)",
             vd_key_cols);
    rv = vd_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        goto done;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, row->kty, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 5, row->hsm ? 1 : 0);
    sqlite3_bind_int64(stmt, 6, row->created);
    sqlite3_bind_int64(stmt, 7, row->updated);
    sqlite3_bind_int(stmt, 8, row->enabled ? 1 : 0);
    if (row->has_nbf)
        sqlite3_bind_int64(stmt, 9, row->nbf);
    if (row->has_exp)
        sqlite3_bind_int64(stmt, 10, row->exp);
    sqlite3_bind_text(stmt, 11, row->key_ops, -1, SQLITE_TRANSIENT);
    if (row->tags != NULL)
        sqlite3_bind_text(stmt, 12, row->tags, -1, SQLITE_TRANSIENT);
    if (row->pub_der != NULL)
        sqlite3_bind_blob(stmt, 13, row->pub_der, (int)row->pub_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_zeroblob(stmt, 13, 0); /* oct-HSM: no public part */
    if (row->wrapped != NULL)
        sqlite3_bind_blob(stmt, 14, row->wrapped, (int)row->wrapped_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_zeroblob(stmt, 14, 0); /* HSM key: material stays in the pool */
    sqlite3_bind_blob(stmt, 15, row->iv, VD_IV_LEN, SQLITE_TRANSIENT);
    if (row->hsm_ref != NULL)
        sqlite3_bind_text(stmt, 16, row->hsm_ref, -1, SQLITE_TRANSIENT);
    rv = vd_step_done(st, stmt);
    if (rv != KV_OK)
        goto done;
    row->seq = sqlite3_last_insert_rowid(st->db);
    rv = vd_store_commit(st);
done:
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_key_get(vd_store *st, const char *vault, const char *name, const char *version,
                       vd_key_row *out)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    bool latest = version == NULL || version[0] == '\0';
    kv_rv rv;
    int rc;

    if (st == NULL || vault == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             latest ? "SELECT %s FROM keys WHERE vault = ?1 AND name = ?2 AND deleted = 0"
                      " ORDER BY seq DESC LIMIT 1"
                    : "SELECT %s FROM keys WHERE vault = ?1 AND name = ?2 AND version = ?3"
                      " AND deleted = 0",
             vd_key_cols);
    rv = vd_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    if (!latest)
        sqlite3_bind_text(stmt, 3, version, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rv = vd_key_row_from_stmt(stmt, out);
    else
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

/* Collects up to limit rows of a prepared, bound statement. */
static kv_rv vd_collect_rows(sqlite3_stmt *stmt, size_t limit, vd_key_row **rows, size_t *n)
{
    vd_key_row *out = NULL;
    size_t count = 0;
    kv_rv rv = KV_OK;
    int rc = SQLITE_DONE;

    out = calloc(limit ? limit : 1, sizeof(*out));
    if (out == NULL)
        return KV_ERR_NOMEM;
    while (count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rv = vd_key_row_from_stmt(stmt, &out[count]);
        if (rv != KV_OK)
            goto done;
        count++;
    }
    if (count < limit && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
done:
    if (rv != KV_OK) {
        vd_key_rows_free(out, count);
        return rv;
    }
    *rows = out;
    *n = count;
    return KV_OK;
}

kv_rv vd_store_key_list(vd_store *st, const char *vault, const char *after, size_t limit,
                        vd_key_row **rows, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[768];
    kv_rv rv;

    if (st == NULL || vault == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM keys k WHERE vault = ?1 AND deleted = 0 AND"
             " (?2 IS NULL OR name > ?2) AND"
             " seq = (SELECT MAX(seq) FROM keys k2 WHERE k2.vault = k.vault AND"
             " k2.name = k.name) ORDER BY name LIMIT ?3",
             vd_key_cols);
    rv = vd_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    if (after != NULL)
        sqlite3_bind_text(stmt, 2, after, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    rv = vd_collect_rows(stmt, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_key_versions(vd_store *st, const char *vault, const char *name, long long after_seq,
                            size_t limit, vd_key_row **rows, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;

    if (st == NULL || vault == NULL || name == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM keys WHERE vault = ?1 AND name = ?2 AND seq > ?3"
             " AND deleted = 0 ORDER BY seq LIMIT ?4",
             vd_key_cols);
    rv = vd_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, after_seq);
    sqlite3_bind_int64(stmt, 4, (sqlite3_int64)limit);
    rv = vd_collect_rows(stmt, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}
