/* vd_store_keys.c - SQLite persistence of the key lifecycle: soft delete / recover / purge,
 * updates, atomic multi-version inserts (restore), rotation policies, vault recovery
 * settings, and the schema migration that adds the columns and table these need. */
#include "vd_store_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_util.h"

static kv_rv vd_sk_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
        sqlite3_free(msg);
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

/* ALTER TABLE ... ADD COLUMN that tolerates an existing column. */
static kv_rv vd_sk_add_column(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    kv_rv rv = KV_OK;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (msg == NULL || strstr(msg, "duplicate column name") == NULL) {
            fprintf(stderr, "vaultd: sqlite: %s\n", msg ? msg : "error");
            rv = KV_ERR_INTERNAL;
        }
    }
    sqlite3_free(msg);
    return rv;
}

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
        rv = vd_sk_add_column(db, cols[i]);
    if (rv == KV_OK)
        rv = vd_sk_exec(db,
                        "CREATE TABLE IF NOT EXISTS key_rotation_policies ("
                        "  vault TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
                        "  policy TEXT NOT NULL, created INTEGER NOT NULL,"
                        "  updated INTEGER NOT NULL, PRIMARY KEY (vault, name));"
                        "CREATE INDEX IF NOT EXISTS keys_by_deleted"
                        "  ON keys(deleted, scheduled_purge_date);");
    return rv;
}

static kv_rv vd_sk_prepare(vd_store *st, const char *sql, sqlite3_stmt **stmt)
{
    sqlite3 *db = vd_store_sqlite(st);

    if (db == NULL || sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", db ? sqlite3_errmsg(db) : "no db");
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

/* Steps a statement that returns no rows and finalizes it; *changes = rows changed. */
static kv_rv vd_sk_done(vd_store *st, sqlite3_stmt *stmt, int *changes)
{
    int rc = sqlite3_step(stmt);

    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(vd_store_sqlite(st)));
        return rc == SQLITE_CONSTRAINT ? KV_ERR_CONFLICT : KV_ERR_INTERNAL;
    }
    if (changes != NULL)
        *changes = sqlite3_changes(vd_store_sqlite(st));
    return KV_OK;
}

kv_rv vd_store_vault_recovery(vd_store *st, const char *vault, int *retention_days,
                              bool *purge_protection)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (vault == NULL || retention_days == NULL || purge_protection == NULL)
        return KV_ERR_INVALID_ARG;
    *retention_days = 90;
    *purge_protection = false;
    rv = vd_sk_prepare(st, "SELECT retention_days, purge_protection FROM vaults WHERE name = ?1",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *retention_days = sqlite3_column_int(stmt, 0);
        *purge_protection = sqlite3_column_int(stmt, 1) != 0;
        rv = KV_OK;
    } else {
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    }
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_key_state(vd_store *st, const char *vault, const char *name, bool *live,
                         bool *deleted)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (vault == NULL || name == NULL || live == NULL || deleted == NULL)
        return KV_ERR_INVALID_ARG;
    *live = *deleted = false;
    rv = vd_sk_prepare(st,
                       "SELECT SUM(deleted = 0), SUM(deleted != 0) FROM keys"
                       " WHERE vault = ?1 AND name = ?2",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *live = sqlite3_column_int64(stmt, 0) > 0;
        *deleted = sqlite3_column_int64(stmt, 1) > 0;
    }
    rv = rc == SQLITE_ROW ? KV_OK : KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_key_update(vd_store *st, const vd_key_row *row)
{
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    kv_rv rv;

    if (row == NULL || row->key_ops == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sk_prepare(st,
                       "UPDATE keys SET enabled = ?4, nbf = ?5, exp = ?6, key_ops = ?7, tags = ?8,"
                       " updated = ?9 WHERE vault = ?1 AND name = ?2 AND version = ?3"
                       " AND deleted = 0",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, row->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, row->enabled ? 1 : 0);
    if (row->has_nbf)
        sqlite3_bind_int64(stmt, 5, row->nbf);
    if (row->has_exp)
        sqlite3_bind_int64(stmt, 6, row->exp);
    sqlite3_bind_text(stmt, 7, row->key_ops, -1, SQLITE_TRANSIENT);
    if (row->tags != NULL)
        sqlite3_bind_text(stmt, 8, row->tags, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 9, row->updated);
    rv = vd_sk_done(st, stmt, &changes);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

/* Collects rows of a prepared statement; with dates, the last two columns are the deletion
 * dates and go into a vd_deleted_key array instead. */
static kv_rv vd_sk_collect(sqlite3_stmt *stmt, bool dates, void **out, size_t *n)
{
    size_t cap = 8, count = 0, elem = dates ? sizeof(vd_deleted_key) : sizeof(vd_key_row);
    uint8_t *arr = calloc(cap, elem), *tmp;
    kv_rv rv = KV_OK;
    int rc, ncol;

    if (arr == NULL)
        return KV_ERR_NOMEM;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (count == cap) {
            tmp = realloc(arr, cap * 2 * elem);
            if (tmp == NULL) {
                rv = KV_ERR_NOMEM;
                break;
            }
            arr = tmp;
            memset(arr + cap * elem, 0, cap * elem);
            cap *= 2;
        }
        if (dates) {
            vd_deleted_key *d = (vd_deleted_key *)(void *)(arr + count * elem);

            rv = vd_key_row_from_stmt(stmt, &d->row);
            ncol = sqlite3_column_count(stmt);
            d->deleted_date = sqlite3_column_int64(stmt, ncol - 2);
            d->purge_date = sqlite3_column_int64(stmt, ncol - 1);
        } else {
            rv = vd_key_row_from_stmt(stmt, (vd_key_row *)(void *)(arr + count * elem));
        }
        if (rv != KV_OK)
            break;
        count++;
    }
    if (rv == KV_OK && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
    if (rv != KV_OK) {
        if (dates)
            vd_deleted_keys_free((vd_deleted_key *)(void *)arr, count);
        else
            vd_key_rows_free((vd_key_row *)(void *)arr, count);
        return rv;
    }
    *out = arr;
    *n = count;
    return KV_OK;
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
    rv = vd_sk_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 3, deleted ? 1 : 0);
    rv = vd_sk_collect(stmt, false, &out, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *rows = out;
    return rv;
}

kv_rv vd_store_key_soft_delete(vd_store *st, const char *vault, const char *name, long long now,
                               long long purge_date)
{
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    kv_rv rv;

    if (vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sk_prepare(st,
                       "UPDATE keys SET deleted = 1, deleted_date = ?3, scheduled_purge_date = ?4"
                       " WHERE vault = ?1 AND name = ?2 AND deleted = 0",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, now);
    sqlite3_bind_int64(stmt, 4, purge_date);
    rv = vd_sk_done(st, stmt, &changes);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

kv_rv vd_store_deleted_key_get(vd_store *st, const char *vault, const char *name,
                               vd_deleted_key *out)
{
    sqlite3_stmt *stmt = NULL;
    char sql[768];
    void *arr = NULL;
    size_t n = 0;
    kv_rv rv;

    if (vault == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s, deleted_date, scheduled_purge_date FROM keys WHERE vault = ?1 AND"
             " name = ?2 AND deleted != 0 ORDER BY seq DESC LIMIT 1",
             vd_key_cols);
    rv = vd_sk_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rv = vd_sk_collect(stmt, true, &arr, &n);
    sqlite3_finalize(stmt);
    if (rv != KV_OK)
        return rv;
    if (n == 0) {
        free(arr);
        return KV_ERR_NOT_FOUND;
    }
    *out = *(vd_deleted_key *)arr;
    free(arr);
    return KV_OK;
}

kv_rv vd_store_deleted_key_list(vd_store *st, const char *vault, const char *after, size_t limit,
                                vd_deleted_key **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char sql[1024];
    void *arr = NULL;
    kv_rv rv;

    if (vault == NULL || out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql),
             "SELECT %s, deleted_date, scheduled_purge_date FROM keys k WHERE vault = ?1 AND"
             " deleted != 0 AND (?2 IS NULL OR name > ?2) AND seq = (SELECT MAX(seq) FROM keys"
             " k2 WHERE k2.vault = k.vault AND k2.name = k.name) ORDER BY name LIMIT ?3",
             vd_key_cols);
    rv = vd_sk_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    if (after != NULL)
        sqlite3_bind_text(stmt, 2, after, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    rv = vd_sk_collect(stmt, true, &arr, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *out = arr;
    return rv;
}

void vd_deleted_keys_free(vd_deleted_key *keys, size_t n)
{
    size_t i;

    if (keys == NULL)
        return;
    for (i = 0; i < n; i++)
        vd_key_row_clear(&keys[i].row);
    free(keys);
}

kv_rv vd_store_key_recover(vd_store *st, const char *vault, const char *name)
{
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    kv_rv rv;

    if (vault == NULL || name == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sk_prepare(st,
                       "UPDATE keys SET deleted = 0, deleted_date = NULL,"
                       " scheduled_purge_date = NULL WHERE vault = ?1 AND name = ?2"
                       " AND deleted != 0",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rv = vd_sk_done(st, stmt, &changes);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    return rv;
}

/* Runs a two-text-parameter statement (vault, name). */
static kv_rv vd_sk_run2(vd_store *st, const char *sql, const char *a, const char *b, int *changes)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv = vd_sk_prepare(st, sql, &stmt);

    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, a, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, b, -1, SQLITE_TRANSIENT);
    return vd_sk_done(st, stmt, changes);
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
    rv = vd_sk_run2(st, "DELETE FROM keys WHERE vault = ?1 AND name = ?2 AND deleted != 0", vault,
                    name, &changes);
    if (rv == KV_OK && changes == 0)
        rv = KV_ERR_NOT_FOUND;
    if (rv == KV_OK)
        rv = vd_sk_run2(st, "DELETE FROM key_rotation_policies WHERE vault = ?1 AND name = ?2",
                        vault, name, NULL);
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
    rv = vd_sk_prepare(st, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_int64(stmt, 1, now);
    rv = vd_sk_collect(stmt, false, &arr, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *rows = arr;
    return rv;
}

kv_rv vd_store_key_insert_many(vd_store *st, vd_key_row *rows, size_t n)
{
    sqlite3_stmt *stmt = NULL;
    bool live = false, deleted = false;
    size_t i;
    kv_rv rv;

    if (rows == NULL || n == 0)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_store_key_state(st, rows[0].vault, rows[0].name, &live, &deleted);
    if (rv == KV_OK && (live || deleted))
        rv = KV_ERR_CONFLICT;
    for (i = 0; i < n && rv == KV_OK; i++) {
        vd_key_row *row = &rows[i];

        rv = vd_sk_prepare(st,
                           "INSERT INTO keys (vault, name, version, kty, hsm, created, updated,"
                           " enabled, nbf, exp, key_ops, tags, public_der, wrapped_key, iv,"
                           " hsm_ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                           " ?13, ?14, ?15, ?16)",
                           &stmt);
        if (rv != KV_OK)
            break;
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
            sqlite3_bind_zeroblob(stmt, 14, 0); /* HSM key: material stays in the pool */
        sqlite3_bind_blob(stmt, 15, row->iv, VD_IV_LEN, SQLITE_TRANSIENT);
        if (row->hsm_ref != NULL)
            sqlite3_bind_text(stmt, 16, row->hsm_ref, -1, SQLITE_TRANSIENT);
        rv = vd_sk_done(st, stmt, NULL);
        if (rv == KV_OK)
            row->seq = sqlite3_last_insert_rowid(vd_store_sqlite(st));
    }
    if (rv == KV_OK)
        rv = vd_store_commit(st);
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
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
    s = sqlite3_column_text(stmt, 0);
    snprintf(p->vault, sizeof(p->vault), "%s", s ? (const char *)s : "");
    s = sqlite3_column_text(stmt, 1);
    snprintf(p->name, sizeof(p->name), "%s", s ? (const char *)s : "");
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
    int rc;

    if (vault == NULL || name == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sk_prepare(st,
                       "SELECT vault, name, policy, created, updated FROM key_rotation_policies"
                       " WHERE vault = ?1 AND name = ?2",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rv = vd_sk_policy_from_stmt(stmt, out);
    else
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_policy_put(vd_store *st, vd_policy_row *p, long long now)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (p == NULL || p->policy == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sk_prepare(st,
                       "INSERT INTO key_rotation_policies (vault, name, policy, created, updated)"
                       " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (vault, name) DO UPDATE SET"
                       " policy = excluded.policy, updated = excluded.updated"
                       " RETURNING created, updated",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, p->vault, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, p->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, p->policy, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 4, now);
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

kv_rv vd_store_policy_all(vd_store *st, vd_policy_row **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    vd_policy_row *arr = NULL, *tmp;
    size_t count = 0, cap = 0;
    kv_rv rv;
    int rc;

    if (out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_sk_prepare(st,
                       "SELECT vault, name, policy, created, updated FROM key_rotation_policies"
                       " ORDER BY vault, name",
                       &stmt);
    if (rv != KV_OK)
        return rv;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            tmp = realloc(arr, cap * sizeof(*arr));
            if (tmp == NULL) {
                rv = KV_ERR_NOMEM;
                break;
            }
            arr = tmp;
        }
        rv = vd_sk_policy_from_stmt(stmt, &arr[count]);
        if (rv != KV_OK)
            break;
        count++;
    }
    if (rv == KV_OK && rc != SQLITE_DONE)
        rv = KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    if (rv != KV_OK) {
        vd_policy_rows_free(arr, count);
        return rv;
    }
    *out = arr;
    *n = count;
    return KV_OK;
}
