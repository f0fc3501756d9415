/* vd_store_certs.c - SQLite persistence of certificates (see the header). A certificate's key
 * and secret rows live in the keys and secrets tables with managed = 1 and the same name and
 * version; delete, recover and purge change all three in one transaction. */
#include "vd_store_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_secrets.h"
#include "vd_store_util.h"
#include "vd_store_versioned.h"

static const char vd_certs_schema[] =
    "CREATE TABLE IF NOT EXISTS certificates ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  vault TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name),"
    "  name TEXT NOT NULL COLLATE NOCASE, version TEXT NOT NULL,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL, enabled INTEGER NOT NULL,"
    "  nbf INTEGER, exp INTEGER, tags TEXT, cer BLOB NOT NULL, x5t TEXT NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0, deleted_date INTEGER, scheduled_purge_date INTEGER,"
    "  UNIQUE (vault, name, version));"
    "CREATE INDEX IF NOT EXISTS certificates_by_name ON certificates(vault, name, seq);"
    "CREATE TABLE IF NOT EXISTS certificate_policies ("
    "  vault TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name),"
    "  name TEXT NOT NULL COLLATE NOCASE, policy TEXT NOT NULL, pending TEXT,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (vault, name));"
    "CREATE TABLE IF NOT EXISTS certificate_settings ("
    "  vault TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name),"
    "  kind TEXT NOT NULL, name TEXT NOT NULL COLLATE NOCASE, doc TEXT NOT NULL,"
    "  PRIMARY KEY (vault, kind, name));";

static const char vd_cert_cols[] = "seq, vault, name, version, created, updated, enabled, nbf,"
                                   " exp, tags, cer, x5t, deleted, deleted_date,"
                                   " scheduled_purge_date";

kv_rv vd_store_certs_migrate(vd_store *st)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sql_exec(db, vd_certs_schema);
    /* shared columns, exactly as agreed in the team notes */
    if (rv == KV_OK)
        rv = vd_store_add_column(st,
                                 "ALTER TABLE keys ADD COLUMN managed INTEGER NOT NULL DEFAULT 0");
    if (rv == KV_OK)
        rv = vd_store_add_column(st,
                                 "ALTER TABLE keys ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0");
    if (rv == KV_OK)
        rv = vd_store_add_column(st, "ALTER TABLE keys ADD COLUMN deleted_date INTEGER");
    if (rv == KV_OK)
        rv = vd_store_add_column(st, "ALTER TABLE keys ADD COLUMN scheduled_purge_date INTEGER");
    return rv;
}

void vd_cert_row_clear(vd_cert_row *row)
{
    if (row == NULL)
        return;
    free(row->tags);
    free(row->cer);
    memset(row, 0, sizeof(*row));
}

static kv_rv vd_cert_row_from_stmt(sqlite3_stmt *stmt, vd_cert_row *row)
{
    const unsigned char *t;
    const void *b;
    int n;

    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, 0);
    vd_col_copy_text(row->vault, sizeof(row->vault), stmt, 1);
    vd_col_copy_text(row->name, sizeof(row->name), stmt, 2);
    vd_col_copy_text(row->version, sizeof(row->version), stmt, 3);
    row->created = sqlite3_column_int64(stmt, 4);
    row->updated = sqlite3_column_int64(stmt, 5);
    row->enabled = sqlite3_column_int(stmt, 6) != 0;
    row->has_nbf = sqlite3_column_type(stmt, 7) != SQLITE_NULL;
    row->nbf = sqlite3_column_int64(stmt, 7);
    row->has_exp = sqlite3_column_type(stmt, 8) != SQLITE_NULL;
    row->exp = sqlite3_column_int64(stmt, 8);
    t = sqlite3_column_text(stmt, 9);
    if (t != NULL && (row->tags = strdup((const char *)t)) == NULL)
        goto fail;
    b = sqlite3_column_blob(stmt, 10);
    n = sqlite3_column_bytes(stmt, 10);
    if (b == NULL || n <= 0 || (row->cer = malloc((size_t)n)) == NULL)
        goto fail;
    memcpy(row->cer, b, (size_t)n);
    row->cer_len = (size_t)n;
    vd_col_copy_text(row->x5t, sizeof(row->x5t), stmt, 11);
    row->deleted = sqlite3_column_int(stmt, 12) != 0;
    row->deleted_date = sqlite3_column_int64(stmt, 13);
    row->purge_date = sqlite3_column_int64(stmt, 14);
    return KV_OK;
fail:
    vd_cert_row_clear(row);
    return KV_ERR_NOMEM;
}

kv_rv vd_store_cert_is_deleted(vd_store *st, const char *vault, const char *name, bool *deleted)
{
    bool live;

    return vd_vobj_name_state(vd_store_sqlite(st), "certificates", vault, name, NULL, 0, &live,
                              deleted);
}

/* Inserts one certificate version as given in the current transaction; fills row->seq. */
static kv_rv vd_cert_row_insert(sqlite3 *db, vd_cert_row *row)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;

    snprintf(sql, sizeof(sql),
             "INSERT INTO certificates (%s) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
             " ?10, ?11, 0, NULL, NULL)",
             vd_cert_cols);
    rv = vd_stmt_prepare(db, &stmt, sql, "tttiiiiitbt", row->vault, row->name, row->version,
                         row->created, row->updated, (long long)(row->enabled ? 1 : 0), row->nbf,
                         row->exp, row->tags, row->cer, row->cer_len, row->x5t);
    if (rv != KV_OK)
        return rv;
    if (!row->has_nbf)
        sqlite3_bind_null(stmt, 7);
    if (!row->has_exp)
        sqlite3_bind_null(stmt, 8);
    rv = vd_stmt_done(db, stmt, NULL);
    if (rv == KV_OK)
        row->seq = sqlite3_last_insert_rowid(db);
    return rv;
}

kv_rv vd_store_cert_insert(vd_store *st, vd_cert_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL || row == NULL || row->cer == NULL)
        return KV_ERR_INVALID_ARG;
    /* keeps the stored spelling of the name */
    rv = vd_vobj_txn_begin(db, "certificates", row->vault, row->name, sizeof(row->name),
                           VD_VOBJ_NOT_DELETED);
    return rv == KV_OK ? vd_vobj_txn_end(db, vd_cert_row_insert(db, row)) : rv;
}

VD_ROW_TYPE(vd_cert_row_type, vd_cert_row, vd_cert_row_from_stmt, vd_cert_row_clear);
static const vd_vobj vd_cert_obj = {"certificates", vd_cert_cols, &vd_cert_row_type};

void vd_cert_rows_free(vd_cert_row *rows, size_t n)
{
    vd_rows_free(vd_cert_obj.row, rows, n);
}

kv_rv vd_store_cert_get(vd_store *st, const char *vault, const char *name, const char *version,
                        bool deleted, vd_cert_row *out)
{
    return vd_vobj_get(vd_store_sqlite(st), &vd_cert_obj, vault, name, version, deleted, out);
}

kv_rv vd_store_cert_list(vd_store *st, const char *vault, const char *after, bool deleted,
                         size_t limit, vd_cert_row **rows, size_t *n)
{
    void *arr = NULL;
    kv_rv rv =
        vd_vobj_list(vd_store_sqlite(st), &vd_cert_obj, vault, after, deleted, limit, &arr, n);

    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

kv_rv vd_store_cert_versions(vd_store *st, const char *vault, const char *name, long long after_seq,
                             size_t limit, vd_cert_row **rows, size_t *n)
{
    void *arr = NULL;
    kv_rv rv =
        vd_vobj_versions(vd_store_sqlite(st), &vd_cert_obj, vault, name, after_seq, limit, &arr, n);

    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

/* Runs sql with ?1 vault, ?2 name, ?3 version (or NULL) and ?4 / ?5 integers (binding a
 * parameter the statement does not use is harmless: SQLITE_RANGE, ignored). */
static kv_rv vd_cert_run(sqlite3 *db, const char *sql, const char *vault, const char *name,
                         const char *version, long long a, long long b, int *changes)
{
    return vd_stmt_run(db, changes, sql, "tttii", vault, name, version, a, b);
}

/* Runs the statements (NULL-terminated) in one transaction; NOT_FOUND if the first changed
 * nothing. */
static kv_rv vd_cert_txn(vd_store *st, const char *const *sqls, const char *vault, const char *name,
                         const char *version, long long a, long long b)
{
    sqlite3 *db = vd_store_sqlite(st);
    int changes = 0;
    size_t i;
    kv_rv rv = vd_store_begin(st);

    if (rv != KV_OK)
        return rv;
    for (i = 0; sqls[i] != NULL && rv == KV_OK; i++) {
        rv = vd_cert_run(db, sqls[i], vault, name, version, a, b, i == 0 ? &changes : NULL);
        if (rv == KV_OK && i == 0 && changes == 0)
            rv = KV_ERR_NOT_FOUND;
    }
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_cert_update(vd_store *st, const vd_cert_row *row)
{
    static const char *const sqls[] = {
        "UPDATE keys SET enabled = ?4, updated = ?5 WHERE vault = ?1 AND name = ?2 AND"
        " version = ?3 AND managed = 1",
        "UPDATE secrets SET enabled = ?4, updated = ?5 WHERE vault = ?1 AND name = ?2 AND"
        " version = ?3 AND managed = 1",
        NULL};
    sqlite3 *db = vd_store_sqlite(st);
    int changes = 0;
    size_t i;
    kv_rv rv;

    if (db == NULL || row == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_run(db, &changes,
                     "UPDATE certificates SET enabled = ?4, tags = ?5, updated = ?6 WHERE"
                     " vault = ?1 AND name = ?2 AND version = ?3 AND deleted = 0",
                     "tttiti", row->vault, row->name, row->version,
                     (long long)(row->enabled ? 1 : 0), row->tags, row->updated);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    for (i = 0; sqls[i] != NULL && rv == KV_OK; i++)
        rv = vd_cert_run(db, sqls[i], row->vault, row->name, row->version, row->enabled ? 1 : 0,
                         row->updated, NULL);
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

kv_rv vd_store_cert_set_deleted(vd_store *st, const char *vault, const char *name, bool deleted,
                                long long deleted_date, long long purge_date)
{
    static const char *const tables[][2] = {
        {"certificates", NULL}, {"keys", " AND managed = 1"}, {"secrets", " AND managed = 1"}};
    sqlite3 *db = vd_store_sqlite(st);
    size_t i;
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    /* NOT_FOUND when the certificate has nothing to change; its key and secret follow it */
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]) && rv == KV_OK; i++) {
        rv = vd_vobj_set_deleted(db, tables[i][0], tables[i][1], vault, name, deleted, deleted_date,
                                 purge_date);
        if (i > 0 && rv == KV_ERR_NOT_FOUND)
            rv = KV_OK;
    }
    return vd_vobj_txn_end(db, rv);
}

kv_rv vd_store_cert_purge(vd_store *st, const char *vault, const char *name)
{
    static const char *const sqls[] = {
        "DELETE FROM certificates WHERE vault = ?1 AND name = ?2",
        "DELETE FROM keys WHERE vault = ?1 AND name = ?2 AND managed = 1",
        "DELETE FROM secrets WHERE vault = ?1 AND name = ?2 AND managed = 1",
        "DELETE FROM certificate_policies WHERE vault = ?1 AND name = ?2", NULL};
    sqlite3 *db = vd_store_sqlite(st);

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_cert_txn(st, sqls, vault, name, NULL, 0, 0);
}

kv_rv vd_store_cert_unlink(vd_store *st, const char *vault, const char *name, const char *version)
{
    static const char *const sqls[] = {
        "DELETE FROM keys WHERE vault = ?1 AND name = ?2 AND version = ?3",
        "DELETE FROM secrets WHERE vault = ?1 AND name = ?2 AND version = ?3 AND managed = 1",
        "DELETE FROM certificates WHERE vault = ?1 AND name = ?2 AND version = ?3", NULL};
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL || version == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cert_txn(st, sqls, vault, name, version, 0, 0);
    return rv == KV_ERR_NOT_FOUND ? KV_OK : rv;
}

kv_rv vd_store_key_set_managed(vd_store *st, const char *vault, const char *name,
                               const char *version)
{
    sqlite3 *db = vd_store_sqlite(st);
    int changes = 0;
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL || version == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cert_run(db,
                     "UPDATE keys SET managed = 1 WHERE vault = ?1 AND name = ?2 AND version = ?3"
                     "",
                     vault, name, version, 0, 0, &changes);
    return rv == KV_OK && changes == 0 ? KV_ERR_NOT_FOUND : rv;
}

kv_rv vd_store_cert_policy_put(vd_store *st, const char *vault, const char *name,
                               const char *policy, const char *pending)
{
    if (vault == NULL || name == NULL || policy == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_stmt_run(vd_store_sqlite(st), NULL,
                       "INSERT INTO certificate_policies (vault, name, policy, pending, created,"
                       " updated) VALUES (?1, ?2, ?3, ?4, strftime('%s','now'),"
                       " strftime('%s','now')) ON CONFLICT (vault, name) DO UPDATE SET"
                       " policy = excluded.policy, pending = COALESCE(excluded.pending, pending),"
                       " updated = excluded.updated",
                       "tttt", vault, name, policy, pending);
}

kv_rv vd_store_cert_policy_get(vd_store *st, const char *vault, const char *name, char **policy,
                               char **pending)
{
    sqlite3_stmt *stmt = NULL;
    const unsigned char *t;
    kv_rv rv;

    if (vault == NULL || name == NULL || policy == NULL)
        return KV_ERR_INVALID_ARG;
    *policy = NULL;
    if (pending != NULL)
        *pending = NULL;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT policy, pending FROM certificate_policies WHERE vault = ?1 AND"
                         " name = ?2",
                         "tt", vault, name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK) {
        t = sqlite3_column_text(stmt, 0);
        *policy = strdup(t ? (const char *)t : "{}");
        if (pending != NULL)
            *pending = vd_col_dup_text(stmt, 1);
        rv = *policy != NULL ? KV_OK : KV_ERR_NOMEM;
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_cert_pending_clear(vd_store *st, const char *vault, const char *name)
{
    sqlite3 *db = vd_store_sqlite(st);

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_cert_run(db,
                       "UPDATE certificate_policies SET pending = NULL WHERE vault = ?1 AND"
                       " name = ?2",
                       vault, name, NULL, 0, 0, NULL);
}

bool vd_store_key_is_managed(vd_store *st, const char *vault, const char *name, const char *version)
{
    sqlite3_stmt *stmt = NULL;
    bool managed = false;

    if (vault == NULL || name == NULL || version == NULL ||
        vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                        "SELECT managed FROM keys WHERE vault = ?1 AND name = ?2 AND version = ?3",
                        "ttt", vault, name, version) != KV_OK)
        return false;
    if (vd_stmt_row(stmt) == KV_OK)
        managed = sqlite3_column_int(stmt, 0) != 0;
    sqlite3_finalize(stmt);
    return managed;
}

kv_rv vd_store_sc_purge_due(vd_store *st, long long now)
{
    static const char *const sqls[] = {
        "DELETE FROM certificate_policies WHERE (vault, name) IN (SELECT vault, name FROM"
        " certificates WHERE deleted = 1 AND scheduled_purge_date <= ?1)",
        "DELETE FROM certificates WHERE deleted = 1 AND scheduled_purge_date <= ?1",
        "DELETE FROM secrets WHERE deleted = 1 AND scheduled_purge_date <= ?1", NULL};
    sqlite3 *db = vd_store_sqlite(st);
    size_t i;
    kv_rv rv;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    for (i = 0; sqls[i] != NULL && rv == KV_OK; i++)
        rv = vd_stmt_run(db, NULL, sqls[i], "i", now);
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    else
        vd_store_rollback(st);
    return rv;
}

/* ---- restore ---- */

/* KV_ERR_CONFLICT when table holds any row (live or deleted) of vault/name. */
static kv_rv vd_cert_name_free(sqlite3 *db, const char *table, const char *vault, const char *name)
{
    bool live = false, deleted = false;
    kv_rv rv = vd_vobj_name_state(db, table, vault, name, NULL, 0, &live, &deleted);

    return rv == KV_OK && (live || deleted) ? KV_ERR_CONFLICT : rv;
}

kv_rv vd_store_cert_restore(vd_store *st, vd_cert_row *certs, size_t ncerts, vd_key_row *keys,
                            size_t nkeys, vd_secret_row *secrets, size_t nsecrets,
                            const char *policy)
{
    sqlite3 *db = vd_store_sqlite(st);
    const char *vault, *name;
    size_t i;
    kv_rv rv;

    if (db == NULL || certs == NULL || ncerts == 0 || (nkeys > 0 && keys == NULL) ||
        (nsecrets > 0 && secrets == NULL) || policy == NULL)
        return KV_ERR_INVALID_ARG;
    vault = certs[0].vault;
    name = certs[0].name;
    /* the name must be free for certificates, keys and secrets */
    rv = vd_vobj_txn_begin(db, "certificates", vault, certs[0].name, 0, VD_VOBJ_NEW);
    if (rv != KV_OK)
        return rv;
    rv = vd_cert_name_free(db, "keys", vault, name);
    if (rv == KV_OK)
        rv = vd_cert_name_free(db, "secrets", vault, name);
    for (i = 0; i < nkeys && rv == KV_OK; i++)
        rv = vd_key_row_insert(db, &keys[i], true);
    for (i = 0; i < nsecrets && rv == KV_OK; i++) {
        secrets[i].managed = true;
        rv = vd_secret_row_insert(db, &secrets[i]);
    }
    for (i = 0; i < ncerts && rv == KV_OK; i++)
        rv = vd_cert_row_insert(db, &certs[i]);
    if (rv == KV_OK)
        rv = vd_stmt_run(db, NULL,
                         "INSERT OR REPLACE INTO certificate_policies (vault, name, policy,"
                         " pending, created, updated) VALUES (?1, ?2, ?3, NULL,"
                         " strftime('%s','now'), strftime('%s','now'))",
                         "ttt", vault, name, policy);
    return vd_vobj_txn_end(db, rv);
}

/* ---- contacts and issuers ---- */

kv_rv vd_store_cert_setting_get(vd_store *st, const char *vault, const char *kind, const char *name,
                                char **doc)
{
    sqlite3_stmt *stmt = NULL;
    const unsigned char *t;
    kv_rv rv;

    if (vault == NULL || kind == NULL || name == NULL || doc == NULL)
        return KV_ERR_INVALID_ARG;
    *doc = NULL;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT doc FROM certificate_settings WHERE vault = ?1 AND kind = ?2 AND"
                         " name = ?3",
                         "ttt", vault, kind, name);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK) {
        t = sqlite3_column_text(stmt, 0);
        *doc = strdup(t ? (const char *)t : "{}");
        rv = *doc != NULL ? KV_OK : KV_ERR_NOMEM;
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_cert_setting_put(vd_store *st, const char *vault, const char *kind, const char *name,
                                const char *doc)
{
    if (vault == NULL || kind == NULL || name == NULL || doc == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_stmt_run(vd_store_sqlite(st), NULL,
                       "INSERT INTO certificate_settings (vault, kind, name, doc) VALUES (?1, ?2,"
                       " ?3, ?4) ON CONFLICT (vault, kind, name) DO UPDATE SET doc = excluded.doc",
                       "tttt", vault, kind, name, doc);
}

kv_rv vd_store_cert_setting_delete(vd_store *st, const char *vault, const char *kind,
                                   const char *name)
{
    int changes = 0;
    kv_rv rv;

    if (vault == NULL || kind == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_run(vd_store_sqlite(st), &changes,
                     "DELETE FROM certificate_settings WHERE vault = ?1 AND kind = ?2 AND"
                     " name = ?3",
                     "ttt", vault, kind, name);
    return rv == KV_OK && changes == 0 ? KV_ERR_NOT_FOUND : rv;
}

kv_rv vd_store_cert_setting_list(vd_store *st, const char *vault, const char *kind,
                                 const char *after, size_t limit, char ***docs, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (vault == NULL || kind == NULL || docs == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT doc FROM certificate_settings WHERE vault = ?1 AND kind = ?2 AND"
                         " (?3 IS NULL OR name > ?3) ORDER BY name LIMIT ?4",
                         "ttti", vault, kind, after, (long long)limit);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect_text(stmt, limit, docs, n);
    sqlite3_finalize(stmt);
    return rv;
}

void vd_store_cert_docs_free(char **docs, size_t n)
{
    vd_strings_free(docs, n);
}
