/* vd_store_certs.c - SQLite persistence of certificates (see the header). A certificate's key
 * and secret rows live in the keys and secrets tables with managed = 1 and the same name and
 * version; delete, recover and purge change all three in one transaction. */
#include "vd_store_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_secrets.h"

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

static kv_rv vd_cexec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
        sqlite3_free(msg);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

kv_rv vd_store_certs_migrate(vd_store *st)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cexec(db, vd_certs_schema);
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

void vd_cert_rows_free(vd_cert_row *rows, size_t n)
{
    size_t i;

    if (rows == NULL)
        return;
    for (i = 0; i < n; i++)
        vd_cert_row_clear(&rows[i]);
    free(rows);
}

static kv_rv vd_cprepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static kv_rv vd_cstep_done(sqlite3 *db, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(db));
        return rc == SQLITE_CONSTRAINT ? KV_ERR_CONFLICT : KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static void vd_ccopy_text(char *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

static kv_rv vd_cert_row_from_stmt(sqlite3_stmt *stmt, vd_cert_row *row)
{
    const unsigned char *t;
    const void *b;
    int n;

    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, 0);
    vd_ccopy_text(row->vault, sizeof(row->vault), stmt, 1);
    vd_ccopy_text(row->name, sizeof(row->name), stmt, 2);
    vd_ccopy_text(row->version, sizeof(row->version), stmt, 3);
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
    vd_ccopy_text(row->x5t, sizeof(row->x5t), stmt, 11);
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
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || vault == NULL || name == NULL || deleted == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cprepare(db,
                     "SELECT 1 FROM certificates WHERE vault = ?1 AND name = ?2 AND deleted = 1"
                     " LIMIT 1",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    *deleted = rc == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
}

kv_rv vd_store_cert_insert(vd_store *st, vd_cert_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    bool deleted = false;
    kv_rv rv;
    int rc;

    if (db == NULL || row == NULL || row->cer == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cexec(db, "BEGIN IMMEDIATE");
    if (rv != KV_OK)
        return rv;
    rv = vd_store_cert_is_deleted(st, row->vault, row->name, &deleted);
    if (rv == KV_OK && deleted)
        rv = KV_ERR_CONFLICT;
    if (rv != KV_OK)
        goto done;
    rv = vd_cprepare(db, "SELECT name FROM certificates WHERE vault = ?1 AND name = ?2 LIMIT 1",
                     &stmt);
    if (rv != KV_OK)
        goto done;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        vd_ccopy_text(row->name, sizeof(row->name), stmt, 0);
    sqlite3_finalize(stmt);
    snprintf(sql, sizeof(sql),
             "INSERT INTO certificates (%s) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
             " ?10, ?11, 0, NULL, NULL)",
             vd_cert_cols);
    rv = vd_cprepare(db, sql, &stmt);
    if (rv != KV_OK)
        goto done;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 4, row->created);
    sqlite3_bind_int64(stmt, 5, row->updated);
    sqlite3_bind_int(stmt, 6, row->enabled ? 1 : 0);
    if (row->has_nbf)
        sqlite3_bind_int64(stmt, 7, row->nbf);
    if (row->has_exp)
        sqlite3_bind_int64(stmt, 8, row->exp);
    if (row->tags != NULL)
        sqlite3_bind_text(stmt, 9, row->tags, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 10, row->cer, (int)row->cer_len, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 11, row->x5t, -1, SQLITE_TRANSIENT);
    rv = vd_cstep_done(db, stmt);
    if (rv == KV_OK) {
        row->seq = sqlite3_last_insert_rowid(db);
        rv = vd_cexec(db, "COMMIT");
    }
done:
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

kv_rv vd_store_cert_get(vd_store *st, const char *vault, const char *name, const char *version,
                        bool deleted, vd_cert_row *out)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char sql[640];
    bool latest = version == NULL || version[0] == '\0';
    kv_rv rv;
    int rc;

    if (db == NULL || vault == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             latest ? "SELECT %s FROM certificates WHERE vault = ?1 AND name = ?2 AND"
                      " deleted = ?4 ORDER BY seq DESC LIMIT 1"
                    : "SELECT %s FROM certificates WHERE vault = ?1 AND name = ?2 AND"
                      " version = ?3 AND deleted = ?4",
             vd_cert_cols);
    rv = vd_cprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    if (!latest)
        sqlite3_bind_text(stmt, 3, version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, deleted ? 1 : 0);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rv = vd_cert_row_from_stmt(stmt, out);
    else
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

static kv_rv vd_cert_collect(sqlite3_stmt *stmt, size_t limit, vd_cert_row **rows, size_t *n)
{
    vd_cert_row *out;
    size_t count = 0;
    kv_rv rv = KV_OK;
    int rc = SQLITE_DONE;

    out = calloc(limit ? limit : 1, sizeof(*out));
    if (out == NULL)
        return KV_ERR_NOMEM;
    while (count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rv = vd_cert_row_from_stmt(stmt, &out[count]);
        if (rv != KV_OK)
            goto done;
        count++;
    }
    if (count < limit && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
done:
    if (rv != KV_OK) {
        vd_cert_rows_free(out, count);
        return rv;
    }
    *rows = out;
    *n = count;
    return KV_OK;
}

kv_rv vd_store_cert_list(vd_store *st, const char *vault, const char *after, bool deleted,
                         size_t limit, vd_cert_row **rows, size_t *n)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char sql[900];
    kv_rv rv;

    if (db == NULL || vault == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM certificates c WHERE vault = ?1 AND (?2 IS NULL OR name > ?2) AND"
             " deleted = ?4 AND seq = (SELECT MAX(seq) FROM certificates c2 WHERE"
             " c2.vault = c.vault AND c2.name = c.name) ORDER BY name LIMIT ?3",
             vd_cert_cols);
    rv = vd_cprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    if (after != NULL)
        sqlite3_bind_text(stmt, 2, after, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    sqlite3_bind_int(stmt, 4, deleted ? 1 : 0);
    rv = vd_cert_collect(stmt, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_cert_versions(vd_store *st, const char *vault, const char *name, long long after_seq,
                             size_t limit, vd_cert_row **rows, size_t *n)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char sql[640];
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM certificates WHERE vault = ?1 AND name = ?2 AND seq > ?3 AND"
             " deleted = 0 ORDER BY seq LIMIT ?4",
             vd_cert_cols);
    rv = vd_cprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, after_seq);
    sqlite3_bind_int64(stmt, 4, (sqlite3_int64)limit);
    rv = vd_cert_collect(stmt, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

/* Runs sql with ?1 vault, ?2 name, ?3 version (or NULL) and ?4 / ?5 integers (binding a
 * parameter the statement does not use is harmless: SQLITE_RANGE, ignored). */
static kv_rv vd_cert_run(sqlite3 *db, const char *sql, const char *vault, const char *name,
                         const char *version, long long a, long long b, int *changes)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv = vd_cprepare(db, sql, &stmt);

    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    if (version != NULL)
        sqlite3_bind_text(stmt, 3, version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 4, a);
    sqlite3_bind_int64(stmt, 5, b);
    rv = vd_cstep_done(db, stmt);
    if (changes != NULL)
        *changes = sqlite3_changes(db);
    return rv;
}

/* Runs the statements (NULL-terminated) in one transaction; NOT_FOUND if the first changed
 * nothing. */
static kv_rv vd_cert_txn(sqlite3 *db, const char *const *sqls, const char *vault, const char *name,
                         const char *version, long long a, long long b)
{
    int changes = 0;
    size_t i;
    kv_rv rv = vd_cexec(db, "BEGIN IMMEDIATE");

    if (rv != KV_OK)
        return rv;
    for (i = 0; sqls[i] != NULL && rv == KV_OK; i++) {
        rv = vd_cert_run(db, sqls[i], vault, name, version, a, b, i == 0 ? &changes : NULL);
        if (rv == KV_OK && i == 0 && changes == 0)
            rv = KV_ERR_NOT_FOUND;
    }
    if (rv == KV_OK)
        rv = vd_cexec(db, "COMMIT");
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

kv_rv vd_store_cert_update(vd_store *st, const vd_cert_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    static const char *const sqls[] = {
        "UPDATE keys SET enabled = ?4, updated = ?5 WHERE vault = ?1 AND name = ?2 AND"
        " version = ?3 AND managed = 1",
        "UPDATE secrets SET enabled = ?4, updated = ?5 WHERE vault = ?1 AND name = ?2 AND"
        " version = ?3 AND managed = 1",
        NULL};
    size_t i;
    kv_rv rv;

    if (db == NULL || row == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cexec(db, "BEGIN IMMEDIATE");
    if (rv != KV_OK)
        return rv;
    rv = vd_cprepare(db,
                     "UPDATE certificates SET enabled = ?4, tags = ?5, updated = ?6 WHERE"
                     " vault = ?1 AND name = ?2 AND version = ?3 AND deleted = 0",
                     &stmt);
    if (rv != KV_OK)
        goto done;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, row->enabled ? 1 : 0);
    if (row->tags != NULL)
        sqlite3_bind_text(stmt, 5, row->tags, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 6, row->updated);
    rv = vd_cstep_done(db, stmt);
    if (rv == KV_OK && sqlite3_changes(db) == 0)
        rv = KV_ERR_NOT_FOUND;
    for (i = 0; sqls[i] != NULL && rv == KV_OK; i++)
        rv = vd_cert_run(db, sqls[i], row->vault, row->name, row->version, row->enabled ? 1 : 0,
                         row->updated, NULL);
    if (rv == KV_OK)
        rv = vd_cexec(db, "COMMIT");
done:
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

kv_rv vd_store_cert_set_deleted(vd_store *st, const char *vault, const char *name, bool deleted,
                                long long deleted_date, long long purge_date)
{
    static const char *const del[] = {
        "UPDATE certificates SET deleted = 1, deleted_date = ?4, scheduled_purge_date = ?5"
        " WHERE vault = ?1 AND name = ?2 AND deleted = 0",
        "UPDATE keys SET deleted = 1, deleted_date = ?4, scheduled_purge_date = ?5"
        " WHERE vault = ?1 AND name = ?2 AND deleted = 0 AND managed = 1",
        "UPDATE secrets SET deleted = 1, deleted_date = ?4, scheduled_purge_date = ?5"
        " WHERE vault = ?1 AND name = ?2 AND deleted = 0 AND managed = 1",
        NULL};
    static const char *const rec[] = {
        "UPDATE certificates SET deleted = 0, deleted_date = NULL, scheduled_purge_date = NULL"
        " WHERE vault = ?1 AND name = ?2 AND deleted = 1",
        "UPDATE keys SET deleted = 0, deleted_date = NULL, scheduled_purge_date = NULL"
        " WHERE vault = ?1 AND name = ?2 AND deleted = 1 AND managed = 1",
        "UPDATE secrets SET deleted = 0, deleted_date = NULL, scheduled_purge_date = NULL"
        " WHERE vault = ?1 AND name = ?2 AND deleted = 1 AND managed = 1",
        NULL};
    sqlite3 *db = vd_store_sqlite(st);

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_cert_txn(db, deleted ? del : rec, vault, name, NULL, deleted_date, purge_date);
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
    return vd_cert_txn(db, sqls, vault, name, NULL, 0, 0);
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
    rv = vd_cert_txn(db, sqls, vault, name, version, 0, 0);
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
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL || policy == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cprepare(db,
                     "INSERT INTO certificate_policies (vault, name, policy, pending, created,"
                     " updated) VALUES (?1, ?2, ?3, ?4, strftime('%s','now'),"
                     " strftime('%s','now')) ON CONFLICT (vault, name) DO UPDATE SET"
                     " policy = excluded.policy, pending = COALESCE(excluded.pending, pending),"
                     " updated = excluded.updated",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, policy, -1, SQLITE_TRANSIENT);
    if (pending != NULL)
        sqlite3_bind_text(stmt, 4, pending, -1, SQLITE_TRANSIENT);
    return vd_cstep_done(db, stmt);
}

kv_rv vd_store_cert_policy_get(vd_store *st, const char *vault, const char *name, char **policy,
                               char **pending)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    const unsigned char *t;
    kv_rv rv;
    int rc;

    if (db == NULL || vault == NULL || name == NULL || policy == NULL)
        return KV_ERR_INVALID_ARG;
    *policy = NULL;
    if (pending != NULL)
        *pending = NULL;
    rv = vd_cprepare(db,
                     "SELECT policy, pending FROM certificate_policies WHERE vault = ?1 AND"
                     " name = ?2",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        t = sqlite3_column_text(stmt, 0);
        *policy = strdup(t ? (const char *)t : "{}");
        t = sqlite3_column_text(stmt, 1);
        if (pending != NULL && t != NULL)
            *pending = strdup((const char *)t);
        rv = *policy != NULL ? KV_OK : KV_ERR_NOMEM;
    } else {
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
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
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    bool managed = false;

    if (db == NULL || vault == NULL || name == NULL || version == NULL ||
        vd_cprepare(db, "SELECT managed FROM keys WHERE vault = ?1 AND name = ?2 AND version = ?3",
                    &stmt) != KV_OK)
        return false;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, version, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW)
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
    sqlite3_stmt *stmt = NULL;
    size_t i;
    kv_rv rv;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cexec(db, "BEGIN IMMEDIATE");
    for (i = 0; sqls[i] != NULL && rv == KV_OK; i++) {
        rv = vd_cprepare(db, sqls[i], &stmt);
        if (rv != KV_OK)
            break;
        sqlite3_bind_int64(stmt, 1, now);
        rv = vd_cstep_done(db, stmt);
    }
    if (rv == KV_OK)
        rv = vd_cexec(db, "COMMIT");
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

/* ---- restore ---- */

/* KV_ERR_CONFLICT when table holds any row (live or deleted) of vault/name. */
static kv_rv vd_cert_name_free(sqlite3 *db, const char *table, const char *vault, const char *name)
{
    sqlite3_stmt *stmt = NULL;
    char sql[160];
    kv_rv rv;
    int rc;

    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE vault = ?1 AND name = ?2 LIMIT 1", table);
    rv = vd_cprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return KV_ERR_CONFLICT;
    return rc == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
}

static kv_rv vd_restore_key(sqlite3 *db, vd_key_row *row)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv = vd_cprepare(db,
                           "INSERT INTO keys (vault, name, version, kty, hsm, created, updated,"
                           " enabled, nbf, exp, key_ops, tags, public_der, wrapped_key, iv,"
                           " hsm_ref, managed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
                           " ?11, ?12, ?13, ?14, ?15, ?16, 1)",
                           &stmt);

    if (rv != KV_OK)
        return rv;
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
        sqlite3_bind_zeroblob(stmt, 13, 0);
    if (row->wrapped != NULL)
        sqlite3_bind_blob(stmt, 14, row->wrapped, (int)row->wrapped_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_zeroblob(stmt, 14, 0); /* HSM key: the material stays in the pool */
    sqlite3_bind_blob(stmt, 15, row->iv, VD_IV_LEN, SQLITE_TRANSIENT);
    if (row->hsm_ref != NULL)
        sqlite3_bind_text(stmt, 16, row->hsm_ref, -1, SQLITE_TRANSIENT);
    rv = vd_cstep_done(db, stmt);
    if (rv == KV_OK)
        row->seq = sqlite3_last_insert_rowid(db);
    return rv;
}

static kv_rv vd_restore_secret(sqlite3 *db, vd_secret_row *row)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv = vd_cprepare(db,
                           "INSERT INTO secrets (vault, name, version, content_type, tags, kid,"
                           " created, updated, enabled, nbf, exp, managed, value_enc, iv) VALUES"
                           " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?13)",
                           &stmt);

    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row->version, -1, SQLITE_TRANSIENT);
    if (row->content_type != NULL)
        sqlite3_bind_text(stmt, 4, row->content_type, -1, SQLITE_TRANSIENT);
    if (row->tags != NULL)
        sqlite3_bind_text(stmt, 5, row->tags, -1, SQLITE_TRANSIENT);
    if (row->kid != NULL)
        sqlite3_bind_text(stmt, 6, row->kid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 7, row->created);
    sqlite3_bind_int64(stmt, 8, row->updated);
    sqlite3_bind_int(stmt, 9, row->enabled ? 1 : 0);
    if (row->has_nbf)
        sqlite3_bind_int64(stmt, 10, row->nbf);
    if (row->has_exp)
        sqlite3_bind_int64(stmt, 11, row->exp);
    sqlite3_bind_blob(stmt, 12, row->value_enc, (int)row->value_enc_len, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 13, row->iv, VD_IV_LEN, SQLITE_TRANSIENT);
    rv = vd_cstep_done(db, stmt);
    if (rv == KV_OK)
        row->seq = sqlite3_last_insert_rowid(db);
    return rv;
}

static kv_rv vd_restore_cert(sqlite3 *db, vd_cert_row *row)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;

    snprintf(sql, sizeof(sql),
             "INSERT INTO certificates (%s) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
             " ?10, ?11, 0, NULL, NULL)",
             vd_cert_cols);
    rv = vd_cprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 4, row->created);
    sqlite3_bind_int64(stmt, 5, row->updated);
    sqlite3_bind_int(stmt, 6, row->enabled ? 1 : 0);
    if (row->has_nbf)
        sqlite3_bind_int64(stmt, 7, row->nbf);
    if (row->has_exp)
        sqlite3_bind_int64(stmt, 8, row->exp);
    if (row->tags != NULL)
        sqlite3_bind_text(stmt, 9, row->tags, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 10, row->cer, (int)row->cer_len, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 11, row->x5t, -1, SQLITE_TRANSIENT);
    rv = vd_cstep_done(db, stmt);
    if (rv == KV_OK)
        row->seq = sqlite3_last_insert_rowid(db);
    return rv;
}

kv_rv vd_store_cert_restore(vd_store *st, vd_cert_row *certs, size_t ncerts, vd_key_row *keys,
                            size_t nkeys, vd_secret_row *secrets, size_t nsecrets,
                            const char *policy)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    const char *vault, *name;
    size_t i;
    kv_rv rv;

    if (db == NULL || certs == NULL || ncerts == 0 || (nkeys > 0 && keys == NULL) ||
        (nsecrets > 0 && secrets == NULL) || policy == NULL)
        return KV_ERR_INVALID_ARG;
    vault = certs[0].vault;
    name = certs[0].name;
    rv = vd_cexec(db, "BEGIN IMMEDIATE");
    if (rv != KV_OK)
        return rv;
    rv = vd_cert_name_free(db, "certificates", vault, name);
    if (rv == KV_OK)
        rv = vd_cert_name_free(db, "keys", vault, name);
    if (rv == KV_OK)
        rv = vd_cert_name_free(db, "secrets", vault, name);
    for (i = 0; i < nkeys && rv == KV_OK; i++)
        rv = vd_restore_key(db, &keys[i]);
    for (i = 0; i < nsecrets && rv == KV_OK; i++)
        rv = vd_restore_secret(db, &secrets[i]);
    for (i = 0; i < ncerts && rv == KV_OK; i++)
        rv = vd_restore_cert(db, &certs[i]);
    if (rv == KV_OK)
        rv = vd_cprepare(db,
                         "INSERT OR REPLACE INTO certificate_policies (vault, name, policy,"
                         " pending, created, updated) VALUES (?1, ?2, ?3, NULL,"
                         " strftime('%s','now'), strftime('%s','now'))",
                         &stmt);
    if (rv == KV_OK) {
        sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 3, policy, -1, SQLITE_TRANSIENT);
        rv = vd_cstep_done(db, stmt);
    }
    if (rv == KV_OK)
        rv = vd_cexec(db, "COMMIT");
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

/* ---- contacts and issuers ---- */

kv_rv vd_store_cert_setting_get(vd_store *st, const char *vault, const char *kind, const char *name,
                                char **doc)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    const unsigned char *t;
    kv_rv rv;
    int rc;

    if (db == NULL || vault == NULL || kind == NULL || name == NULL || doc == NULL)
        return KV_ERR_INVALID_ARG;
    *doc = NULL;
    rv = vd_cprepare(db,
                     "SELECT doc FROM certificate_settings WHERE vault = ?1 AND kind = ?2 AND"
                     " name = ?3",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        t = sqlite3_column_text(stmt, 0);
        *doc = strdup(t ? (const char *)t : "{}");
        rv = *doc != NULL ? KV_OK : KV_ERR_NOMEM;
    } else {
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_cert_setting_put(vd_store *st, const char *vault, const char *kind, const char *name,
                                const char *doc)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || vault == NULL || kind == NULL || name == NULL || doc == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cprepare(db,
                     "INSERT INTO certificate_settings (vault, kind, name, doc) VALUES (?1, ?2,"
                     " ?3, ?4) ON CONFLICT (vault, kind, name) DO UPDATE SET doc = excluded.doc",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, doc, -1, SQLITE_TRANSIENT);
    return vd_cstep_done(db, stmt);
}

kv_rv vd_store_cert_setting_delete(vd_store *st, const char *vault, const char *kind,
                                   const char *name)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || vault == NULL || kind == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cprepare(db,
                     "DELETE FROM certificate_settings WHERE vault = ?1 AND kind = ?2 AND"
                     " name = ?3",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, name, -1, SQLITE_TRANSIENT);
    rv = vd_cstep_done(db, stmt);
    if (rv == KV_OK && sqlite3_changes(db) == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_cert_setting_list(vd_store *st, const char *vault, const char *kind,
                                 const char *after, size_t limit, char ***docs, size_t *n)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char **out = NULL;
    size_t count = 0;
    kv_rv rv;
    int rc = SQLITE_DONE;

    if (db == NULL || vault == NULL || kind == NULL || docs == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_cprepare(db,
                     "SELECT doc FROM certificate_settings WHERE vault = ?1 AND kind = ?2 AND"
                     " (?3 IS NULL OR name > ?3) ORDER BY name LIMIT ?4",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_TRANSIENT);
    if (after != NULL)
        sqlite3_bind_text(stmt, 3, after, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 4, (sqlite3_int64)limit);
    out = calloc(limit ? limit : 1, sizeof(*out));
    if (out == NULL)
        rv = KV_ERR_NOMEM;
    while (rv == KV_OK && count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(stmt, 0);

        out[count] = strdup(t ? (const char *)t : "{}");
        if (out[count++] == NULL)
            rv = KV_ERR_NOMEM;
    }
    if (rv == KV_OK && count < limit && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    if (rv != KV_OK) {
        vd_store_cert_docs_free(out, count);
        return rv;
    }
    *docs = out;
    *n = count;
    return KV_OK;
}

void vd_store_cert_docs_free(char **docs, size_t n)
{
    size_t i;

    if (docs == NULL)
        return;
    for (i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
}
