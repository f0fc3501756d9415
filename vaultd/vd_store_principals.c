/* vd_store_principals.c - SQLite side of principals (vd_store_principals.h): the columns that
 * extend the principals table (kind, certificate, managed-identity host), creation, lookup,
 * listing and deletion together with the principal's role assignments. */
#include "vd_store_principals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_store_util.h"
#include "vd_util.h"

#define VD_PRINC_COLS                                                                              \
    "client_id, tenant_id, IFNULL(display_name, ''), kind, IFNULL(cert_sha1, ''),"                 \
    " IFNULL(cert_sha256, ''), cert_der, IFNULL(host, ''), user_assigned, iterations, created,"    \
    " IFNULL(upn, '')"

static kv_rv vd_add_col(sqlite3 *db, const char *coldef)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "ALTER TABLE principals ADD COLUMN %s", coldef);
    return vd_sql_add_column(db, sql);
}

kv_rv vd_store_principals_migrate(vd_store *st)
{
    static const char *const cols[] = {
        "kind TEXT NOT NULL DEFAULT 'sp'",
        "cert_der BLOB",
        "cert_sha1 TEXT",
        "cert_sha256 TEXT",
        "host TEXT",
        "user_assigned INTEGER NOT NULL DEFAULT 0",
        "upn TEXT", /* users: userPrincipalName */
    };
    sqlite3 *db = vd_store_sqlite(st);
    kv_rv rv = KV_OK;
    char *msg = NULL;
    size_t i;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    for (i = 0; i < sizeof(cols) / sizeof(cols[0]) && rv == KV_OK; i++)
        rv = vd_add_col(db, cols[i]);
    /* seen client-assertion jti values (vd_identity_assert.c), kept until exp + skew */
    if (rv == KV_OK &&
        sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS assertion_jti (id BLOB PRIMARY KEY,"
                     " client BLOB NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;"
                     "CREATE INDEX IF NOT EXISTS assertion_jti_until ON assertion_jti(until);"
                     "CREATE UNIQUE INDEX IF NOT EXISTS principals_by_upn ON principals(upn"
                     " COLLATE NOCASE) WHERE upn IS NOT NULL;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite: assertion_jti: %s\n", msg ? msg : "error");
        rv = KV_ERR_INTERNAL;
    }
    sqlite3_free(msg);
    return rv;
}

static kv_rv vd_rec_from_stmt(sqlite3_stmt *stmt, vd_principal_rec *out)
{
    memset(out, 0, sizeof(*out));
    vd_col_copy_text(out->client_id, sizeof(out->client_id), stmt, 0);
    vd_col_copy_text(out->tenant_id, sizeof(out->tenant_id), stmt, 1);
    vd_col_copy_text(out->display_name, sizeof(out->display_name), stmt, 2);
    vd_col_copy_text(out->kind, sizeof(out->kind), stmt, 3);
    vd_col_copy_text(out->thumb_sha1, sizeof(out->thumb_sha1), stmt, 4);
    vd_col_copy_text(out->thumb_sha256, sizeof(out->thumb_sha256), stmt, 5);
    out->cert_der = vd_col_dup_blob(stmt, 6, &out->cert_len);
    if (out->cert_der == NULL && sqlite3_column_bytes(stmt, 6) > 0)
        return KV_ERR_NOMEM;
    vd_col_copy_text(out->host, sizeof(out->host), stmt, 7);
    out->user_assigned = sqlite3_column_int(stmt, 8) != 0;
    out->has_secret = sqlite3_column_int(stmt, 9) > 0;
    out->created = sqlite3_column_int64(stmt, 10);
    vd_col_copy_text(out->upn, sizeof(out->upn), stmt, 11);
    return KV_OK;
}

void vd_principal_rec_clear(vd_principal_rec *rec)
{
    if (rec == NULL)
        return;
    free(rec->cert_der);
    rec->cert_der = NULL;
    rec->cert_len = 0;
}

/* A list row: cleared again when it could not be read whole. */
static kv_rv vd_rec_read_whole(sqlite3_stmt *stmt, vd_principal_rec *rec)
{
    kv_rv rv = vd_rec_from_stmt(stmt, rec);

    if (rv != KV_OK)
        vd_principal_rec_clear(rec);
    return rv;
}

VD_ROW_TYPE(vd_rec_row, vd_principal_rec, vd_rec_read_whole, vd_principal_rec_clear);

void vd_principal_recs_free(vd_principal_rec *recs, size_t n)
{
    vd_rows_free(&vd_rec_row, recs, n);
}

kv_rv vd_store_principal_create(vd_store *st, const vd_principal *p, const vd_principal_rec *rec)
{
    bool cert;

    if (p == NULL || rec == NULL)
        return KV_ERR_INVALID_ARG;
    cert = rec->cert_der != NULL;
    return vd_stmt_run(vd_store_sqlite(st), NULL,
                       "INSERT INTO principals (client_id, tenant_id, display_name, secret_salt,"
                       " secret_hash, iterations, created, kind, cert_der, cert_sha1, cert_sha256,"
                       " host, user_assigned, upn) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                       " ?10, ?11, ?12, ?13, ?14)",
                       "tttbbiitbtttit", p->client_id, p->tenant_id, rec->display_name, p->salt,
                       (size_t)VD_SALT_LEN, p->hash, (size_t)VD_HASH_LEN, (long long)p->iterations,
                       vd_now(), rec->kind[0] ? rec->kind : VD_PKIND_SP, rec->cert_der,
                       rec->cert_len, cert ? rec->thumb_sha1 : NULL,
                       cert ? rec->thumb_sha256 : NULL, rec->host[0] != '\0' ? rec->host : NULL,
                       (long long)(rec->user_assigned ? 1 : 0),
                       rec->upn[0] != '\0' ? rec->upn : NULL);
}

/* Runs a query with up to 3 text arguments and returns its first row. */
static kv_rv vd_query_one(vd_store *st, const char *sql, const char *a1, const char *a2,
                          const char *a3, vd_principal_rec *out)
{
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;

    if (out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt, sql, "ttt", a1, a2, a3);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_row(stmt);
    if (rv == KV_OK)
        rv = vd_rec_from_stmt(stmt, out);
    sqlite3_finalize(stmt);
    return rv;
}

kv_rv vd_store_principal_get_rec(vd_store *st, const char *tenant_id, const char *client_id,
                                 vd_principal_rec *out)
{
    if (client_id == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_query_one(st,
                        "SELECT " VD_PRINC_COLS " FROM principals WHERE client_id = ?1"
                        " AND (?2 IS NULL OR tenant_id = ?2)",
                        client_id, tenant_id, NULL, out);
}

kv_rv vd_store_user_get(vd_store *st, const char *tenant_id, const char *id, vd_principal_rec *out)
{
    if (id == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_query_one(st,
                        "SELECT " VD_PRINC_COLS " FROM principals WHERE kind = 'user'"
                        " AND (upn = ?1 COLLATE NOCASE OR client_id = ?1)"
                        " AND (?2 IS NULL OR tenant_id = ?2) LIMIT 1",
                        id, tenant_id, NULL, out);
}

kv_rv vd_store_mi_by_name(vd_store *st, const char *tenant_id, const char *name,
                          vd_principal_rec *out)
{
    if (name == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_query_one(st,
                        "SELECT " VD_PRINC_COLS " FROM principals WHERE kind = 'mi'"
                        " AND display_name = ?1 COLLATE NOCASE AND (?2 IS NULL OR tenant_id = ?2)"
                        " ORDER BY created, rowid LIMIT 1",
                        name, tenant_id, NULL, out);
}

kv_rv vd_store_mi_for_host(vd_store *st, const char *host, const char *id, vd_principal_rec *out)
{
    if (host == NULL)
        return KV_ERR_INVALID_ARG;
    if (id != NULL)
        return vd_query_one(st,
                            "SELECT " VD_PRINC_COLS " FROM principals WHERE kind = 'mi'"
                            " AND host = ?1 COLLATE NOCASE AND client_id = ?2 COLLATE NOCASE",
                            host, id, NULL, out);
    return vd_query_one(st,
                        "SELECT " VD_PRINC_COLS " FROM principals WHERE kind = 'mi'"
                        " AND host = ?1 COLLATE NOCASE AND user_assigned = 0"
                        " ORDER BY created, rowid LIMIT 1",
                        host, NULL, NULL, out);
}

kv_rv vd_store_mi_set_host(vd_store *st, const char *client_id, const char *host)
{
    if (client_id == NULL || host == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_stmt_run(vd_store_sqlite(st), NULL,
                       "UPDATE principals SET host = ?2 WHERE client_id = ?1 AND kind = 'mi'", "tt",
                       client_id, host);
}

kv_rv vd_store_principal_list(vd_store *st, const char *tenant_id, const char *kind,
                              vd_principal_rec **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *arr = NULL;
    kv_rv rv;

    if (out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    *out = NULL;
    *n = 0;
    rv = vd_stmt_prepare(vd_store_sqlite(st), &stmt,
                         "SELECT " VD_PRINC_COLS " FROM principals WHERE (?1 IS NULL OR"
                         " tenant_id = ?1) AND (?2 IS NULL OR kind = ?2) ORDER BY created, rowid",
                         "tt", tenant_id, kind);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_collect(stmt, &vd_rec_row, VD_STMT_ALL, &arr, n);
    sqlite3_finalize(stmt);
    if (rv == KV_OK)
        *out = arr;
    return rv;
}

kv_rv vd_store_principal_delete(vd_store *st, const char *tenant_id, const char *client_id)
{
    int changes = 0;
    kv_rv rv;

    if (vd_store_sqlite(st) == NULL || client_id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_stmt_run(
        vd_store_sqlite(st), &changes,
        "DELETE FROM principals WHERE client_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)", "tt",
        client_id, tenant_id);
    if (rv != KV_OK) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    if (changes == 0) {
        rv = KV_ERR_NOT_FOUND;
        goto done;
    }
    rv = vd_store_delete_assignments_of(st, client_id);
    if (rv == KV_OK)
        rv = vd_store_commit(st);
done:
    if (rv != KV_OK)
        vd_store_rollback(st);
    return rv;
}

/* ---- client-assertion jti values ---- */

kv_rv vd_store_jti_add(vd_store *st, const uint8_t id[32], const uint8_t client[32],
                       long long until, long long now)
{
    int changes = 0;
    kv_rv rv;

    if (id == NULL || client == NULL)
        return KV_ERR_INVALID_ARG;
    /* an expired entry with the same id is overwritten; an unexpired one is a replay */
    rv = vd_stmt_run(vd_store_sqlite(st), &changes,
                     "INSERT INTO assertion_jti (id, client, until) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT(id) DO UPDATE SET client = excluded.client,"
                     " until = excluded.until WHERE assertion_jti.until < ?4",
                     "bbii", id, (size_t)32, client, (size_t)32, until, now);
    if (rv != KV_OK)
        return rv == KV_ERR_INVALID_ARG ? rv : KV_ERR_INTERNAL;
    return changes == 0 ? KV_ERR_CONFLICT : KV_OK;
}

kv_rv vd_store_jti_remove(vd_store *st, const uint8_t id[32])
{
    if (id == NULL)
        return KV_ERR_INVALID_ARG;
    return vd_stmt_run(vd_store_sqlite(st), NULL, "DELETE FROM assertion_jti WHERE id = ?1", "b",
                       id, (size_t)32);
}

kv_rv vd_store_jti_prune(vd_store *st, long long now)
{
    return vd_stmt_run(vd_store_sqlite(st), NULL, "DELETE FROM assertion_jti WHERE until < ?1", "i",
                       now);
}

kv_rv vd_store_jti_load(vd_store *st, long long now,
                        kv_rv (*fn)(void *arg, const uint8_t id[32], const uint8_t client[32],
                                    long long until),
                        void *arg)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || fn == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_stmt_prepare(db, &stmt,
                         "SELECT id, client, until FROM assertion_jti WHERE until >= ?1"
                         " ORDER BY until",
                         "i", now);
    if (rv != KV_OK)
        return rv;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && rv == KV_OK) {
        if (sqlite3_column_bytes(stmt, 0) != 32 || sqlite3_column_bytes(stmt, 1) != 32)
            continue;
        rv = fn(arg, sqlite3_column_blob(stmt, 0), sqlite3_column_blob(stmt, 1),
                sqlite3_column_int64(stmt, 2));
    }
    if (rv == KV_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        rv = KV_ERR_INTERNAL;
    sqlite3_finalize(stmt);
    return rv;
}
