/* vd_store_secrets.c - SQLite persistence of secret versions. Values arrive here already
 * encrypted under the KEK; this file never sees plaintext. */
#include "vd_store_secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

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

static kv_rv vd_sexec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
        sqlite3_free(msg);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

kv_rv vd_store_add_column(vd_store *st, const char *sql)
{
    sqlite3 *db = vd_store_sqlite(st);
    char *msg = NULL;
    kv_rv rv = KV_OK;

    if (db == NULL || sql == NULL)
        return KV_ERR_INVALID_ARG;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (msg == NULL || strstr(msg, "duplicate column name") == NULL) {
            fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
            rv = KV_ERR_INTERNAL;
        }
        sqlite3_free(msg);
    }
    return rv;
}

kv_rv vd_store_secrets_migrate(vd_store *st)
{
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sexec(db, vd_secrets_schema);
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

void vd_secret_rows_free(vd_secret_row *rows, size_t n)
{
    size_t i;

    if (rows == NULL)
        return;
    for (i = 0; i < n; i++)
        vd_secret_row_clear(&rows[i]);
    free(rows);
}

static kv_rv vd_sprepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static kv_rv vd_sstep_done(sqlite3 *db, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(db));
        return rc == SQLITE_CONSTRAINT ? KV_ERR_CONFLICT : KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static char *vd_sdup_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    return s ? strdup((const char *)s) : NULL;
}

static void vd_scopy_text(char *dst, size_t dstlen, sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

static kv_rv vd_secret_row_from_stmt(sqlite3_stmt *stmt, vd_secret_row *row)
{
    const void *b;
    int n;

    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, 0);
    vd_scopy_text(row->vault, sizeof(row->vault), stmt, 1);
    vd_scopy_text(row->name, sizeof(row->name), stmt, 2);
    vd_scopy_text(row->version, sizeof(row->version), stmt, 3);
    row->content_type = vd_sdup_text(stmt, 4);
    row->tags = vd_sdup_text(stmt, 5);
    row->kid = vd_sdup_text(stmt, 6);
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

static kv_rv vd_secret_bind_insert(sqlite3 *db, const vd_secret_row *row)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    kv_rv rv;

    snprintf(sql, sizeof(sql),
             "INSERT INTO secrets (%s) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
             " ?11, ?12, ?13, ?14, 0, NULL, NULL)",
             vd_secret_cols);
    rv = vd_sprepare(db, sql, &stmt);
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
    sqlite3_bind_int(stmt, 12, row->managed ? 1 : 0);
    sqlite3_bind_blob(stmt, 13, row->value_enc, (int)row->value_enc_len, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 14, row->iv, VD_IV_LEN, SQLITE_TRANSIENT);
    return vd_sstep_done(db, stmt);
}

/* Looks up the stored spelling of a name and whether any version is deleted. */
static kv_rv vd_secret_name_state(sqlite3 *db, const char *vault, char *name, size_t namelen,
                                  bool *exists, bool *deleted)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    *exists = *deleted = false;
    rv = vd_sprepare(db,
                     "SELECT name, MAX(deleted) FROM secrets WHERE vault = ?1 AND name = ?2"
                     " GROUP BY name",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *exists = true;
        vd_scopy_text(name, namelen, stmt, 0);
        *deleted = sqlite3_column_int(stmt, 1) != 0;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
}

kv_rv vd_store_secret_insert(vd_store *st, vd_secret_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    bool exists, deleted;
    kv_rv rv;

    if (db == NULL || row == NULL || row->value_enc == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sexec(db, "BEGIN IMMEDIATE");
    if (rv != KV_OK)
        return rv;
    rv = vd_secret_name_state(db, row->vault, row->name, sizeof(row->name), &exists, &deleted);
    if (rv == KV_OK && deleted)
        rv = KV_ERR_CONFLICT;
    if (rv == KV_OK)
        rv = vd_secret_bind_insert(db, row);
    if (rv == KV_OK) {
        row->seq = sqlite3_last_insert_rowid(db);
        rv = vd_sexec(db, "COMMIT");
    }
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

kv_rv vd_store_secret_restore(vd_store *st, vd_secret_row *rows, size_t n)
{
    sqlite3 *db = vd_store_sqlite(st);
    bool exists = false, deleted;
    size_t i;
    kv_rv rv;

    if (db == NULL || rows == NULL || n == 0)
        return KV_ERR_INVALID_ARG;
    rv = vd_sexec(db, "BEGIN IMMEDIATE");
    if (rv != KV_OK)
        return rv;
    rv = vd_secret_name_state(db, rows[0].vault, rows[0].name, sizeof(rows[0].name), &exists,
                              &deleted);
    if (rv == KV_OK && exists)
        rv = KV_ERR_CONFLICT;
    for (i = 0; i < n && rv == KV_OK; i++) {
        rv = vd_secret_bind_insert(db, &rows[i]);
        rows[i].seq = sqlite3_last_insert_rowid(db);
    }
    if (rv == KV_OK)
        rv = vd_sexec(db, "COMMIT");
    if (rv != KV_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rv;
}

kv_rv vd_store_secret_get(vd_store *st, const char *vault, const char *name, const char *version,
                          bool deleted, vd_secret_row *out)
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
             latest ? "SELECT %s FROM secrets WHERE vault = ?1 AND name = ?2 AND deleted = ?4"
                      " ORDER BY seq DESC LIMIT 1"
                    : "SELECT %s FROM secrets WHERE vault = ?1 AND name = ?2 AND version = ?3"
                      " AND deleted = ?4",
             vd_secret_cols);
    rv = vd_sprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    if (!latest)
        sqlite3_bind_text(stmt, 3, version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, deleted ? 1 : 0);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rv = vd_secret_row_from_stmt(stmt, out);
    else
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

static kv_rv vd_secret_collect(sqlite3_stmt *stmt, size_t limit, vd_secret_row **rows, size_t *n)
{
    vd_secret_row *out;
    size_t count = 0;
    kv_rv rv = KV_OK;
    int rc = SQLITE_DONE;

    out = calloc(limit ? limit : 1, sizeof(*out));
    if (out == NULL)
        return KV_ERR_NOMEM;
    while (count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rv = vd_secret_row_from_stmt(stmt, &out[count]);
        if (rv != KV_OK)
            goto done;
        count++;
    }
    if (count < limit && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
done:
    if (rv != KV_OK) {
        vd_secret_rows_free(out, count);
        return rv;
    }
    *rows = out;
    *n = count;
    return KV_OK;
}

kv_rv vd_store_secret_list(vd_store *st, const char *vault, const char *after, bool deleted,
                           size_t limit, vd_secret_row **rows, size_t *n)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char sql[900];
    kv_rv rv;

    if (db == NULL || vault == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM secrets s WHERE vault = ?1 AND (?2 IS NULL OR name > ?2) AND"
             " deleted = ?4 AND seq = (SELECT MAX(seq) FROM secrets s2 WHERE"
             " s2.vault = s.vault AND s2.name = s.name) ORDER BY name LIMIT ?3",
             vd_secret_cols);
    rv = vd_sprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    if (after != NULL)
        sqlite3_bind_text(stmt, 2, after, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    sqlite3_bind_int(stmt, 4, deleted ? 1 : 0);
    rv = vd_secret_collect(stmt, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_secret_versions(vd_store *st, const char *vault, const char *name,
                               long long after_seq, size_t limit, vd_secret_row **rows, size_t *n)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    char sql[640];
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL || rows == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM secrets WHERE vault = ?1 AND name = ?2 AND seq > ?3 AND"
             " deleted = 0 ORDER BY seq LIMIT ?4",
             vd_secret_cols);
    rv = vd_sprepare(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, after_seq);
    sqlite3_bind_int64(stmt, 4, (sqlite3_int64)limit);
    rv = vd_secret_collect(stmt, limit, rows, n);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_secret_update(vd_store *st, const vd_secret_row *row)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || row == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sprepare(db,
                     "UPDATE secrets SET content_type = ?4, tags = ?5, enabled = ?6, nbf = ?7,"
                     " exp = ?8, updated = ?9 WHERE vault = ?1 AND name = ?2 AND version = ?3"
                     " AND deleted = 0",
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
    sqlite3_bind_int(stmt, 6, row->enabled ? 1 : 0);
    if (row->has_nbf)
        sqlite3_bind_int64(stmt, 7, row->nbf);
    if (row->has_exp)
        sqlite3_bind_int64(stmt, 8, row->exp);
    sqlite3_bind_int64(stmt, 9, row->updated);
    rv = vd_sstep_done(db, stmt);
    if (rv == KV_OK && sqlite3_changes(db) == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_secret_set_deleted(vd_store *st, const char *vault, const char *name, bool deleted,
                                  long long deleted_date, long long purge_date)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sprepare(db,
                     deleted ? "UPDATE secrets SET deleted = 1, deleted_date = ?3,"
                               " scheduled_purge_date = ?4 WHERE vault = ?1 AND name = ?2"
                               " AND deleted = 0"
                             : "UPDATE secrets SET deleted = 0, deleted_date = NULL,"
                               " scheduled_purge_date = NULL WHERE vault = ?1 AND name = ?2"
                               " AND deleted = 1",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    if (deleted) {
        sqlite3_bind_int64(stmt, 3, deleted_date);
        sqlite3_bind_int64(stmt, 4, purge_date);
    }
    rv = vd_sstep_done(db, stmt);
    if (rv == KV_OK && sqlite3_changes(db) == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_secret_purge(vd_store *st, const char *vault, const char *name, bool only_deleted)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (db == NULL || vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sprepare(db,
                     "DELETE FROM secrets WHERE vault = ?1 AND name = ?2 AND"
                     " (?3 = 0 OR deleted = 1)",
                     &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 3, only_deleted ? 1 : 0);
    rv = vd_sstep_done(db, stmt);
    if (rv == KV_OK && sqlite3_changes(db) == 0)
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
    rv = vd_sprepare(
        db, "SELECT kind, retention_days, purge_protection FROM vaults WHERE name = ?1", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
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
