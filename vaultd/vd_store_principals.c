/* vd_store_principals.c - SQLite side of principals (vd_store_principals.h): the columns that
 * extend the principals table (kind, certificate, managed-identity host), creation, lookup,
 * listing and deletion together with the principal's role assignments. */
#include "vd_store_principals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vd_util.h"

#define VD_PRINC_COLS                                                                              \
    "client_id, tenant_id, IFNULL(display_name, ''), kind, IFNULL(cert_sha1, ''),"                 \
    " IFNULL(cert_sha256, ''), cert_der, IFNULL(host, ''), user_assigned, iterations, created,"    \
    " IFNULL(upn, '')"

static kv_rv vd_add_col(sqlite3 *db, const char *coldef)
{
    char sql[256], *msg = NULL;
    kv_rv rv = KV_OK;

    snprintf(sql, sizeof(sql), "ALTER TABLE principals ADD COLUMN %s", coldef);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK &&
        (msg == NULL || strstr(msg, "duplicate column name") == NULL)) {
        fprintf(stderr, "vaultd: sqlite: %s: %s\n", sql, msg ? msg : "error");
        rv = KV_ERR_INTERNAL;
    }
    sqlite3_free(msg);
    return rv;
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

static kv_rv vd_prep(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "vaultd: sqlite prepare: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

static void vd_text(char *dst, size_t len, sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);

    snprintf(dst, len, "%s", s ? (const char *)s : "");
}

static kv_rv vd_rec_from_stmt(sqlite3_stmt *stmt, vd_principal_rec *out)
{
    const void *der;
    int n;

    memset(out, 0, sizeof(*out));
    vd_text(out->client_id, sizeof(out->client_id), stmt, 0);
    vd_text(out->tenant_id, sizeof(out->tenant_id), stmt, 1);
    vd_text(out->display_name, sizeof(out->display_name), stmt, 2);
    vd_text(out->kind, sizeof(out->kind), stmt, 3);
    vd_text(out->thumb_sha1, sizeof(out->thumb_sha1), stmt, 4);
    vd_text(out->thumb_sha256, sizeof(out->thumb_sha256), stmt, 5);
    der = sqlite3_column_blob(stmt, 6);
    n = sqlite3_column_bytes(stmt, 6);
    if (der != NULL && n > 0) {
        out->cert_der = malloc((size_t)n);
        if (out->cert_der == NULL)
            return KV_ERR_NOMEM;
        memcpy(out->cert_der, der, (size_t)n);
        out->cert_len = (size_t)n;
    }
    vd_text(out->host, sizeof(out->host), stmt, 7);
    out->user_assigned = sqlite3_column_int(stmt, 8) != 0;
    out->has_secret = sqlite3_column_int(stmt, 9) > 0;
    out->created = sqlite3_column_int64(stmt, 10);
    vd_text(out->upn, sizeof(out->upn), stmt, 11);
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

void vd_principal_recs_free(vd_principal_rec *recs, size_t n)
{
    size_t i;

    if (recs == NULL)
        return;
    for (i = 0; i < n; i++)
        vd_principal_rec_clear(&recs[i]);
    free(recs);
}

kv_rv vd_store_principal_create(vd_store *st, const vd_principal *p, const vd_principal_rec *rec)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || p == NULL || rec == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_prep(db,
                 "INSERT INTO principals (client_id, tenant_id, display_name, secret_salt,"
                 " secret_hash, iterations, created, kind, cert_der, cert_sha1, cert_sha256, host,"
                 " user_assigned, upn) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                 " ?13, ?14)",
                 &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, p->client_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, p->tenant_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, rec->display_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 4, p->salt, VD_SALT_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 5, p->hash, VD_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 6, p->iterations);
    sqlite3_bind_int64(stmt, 7, vd_now());
    sqlite3_bind_text(stmt, 8, rec->kind[0] ? rec->kind : VD_PKIND_SP, -1, SQLITE_TRANSIENT);
    if (rec->cert_der != NULL) {
        sqlite3_bind_blob(stmt, 9, rec->cert_der, (int)rec->cert_len, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 10, rec->thumb_sha1, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 11, rec->thumb_sha256, -1, SQLITE_TRANSIENT);
    }
    if (rec->host[0] != '\0')
        sqlite3_bind_text(stmt, 12, rec->host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 13, rec->user_assigned ? 1 : 0);
    if (rec->upn[0] != '\0')
        sqlite3_bind_text(stmt, 14, rec->upn, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_CONSTRAINT)
        return KV_ERR_CONFLICT;
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    return KV_OK;
}

/* Runs a query with up to 3 text arguments and returns its first row. */
static kv_rv vd_query_one(vd_store *st, const char *sql, const char *a1, const char *a2,
                          const char *a3, vd_principal_rec *out)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || out == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_prep(db, sql, &stmt);
    if (rv != KV_OK)
        return rv;
    if (a1 != NULL)
        sqlite3_bind_text(stmt, 1, a1, -1, SQLITE_TRANSIENT);
    if (a2 != NULL)
        sqlite3_bind_text(stmt, 2, a2, -1, SQLITE_TRANSIENT);
    if (a3 != NULL)
        sqlite3_bind_text(stmt, 3, a3, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rv = vd_rec_from_stmt(stmt, out);
    else
        rv = rc == SQLITE_DONE ? KV_ERR_NOT_FOUND : KV_ERR_INTERNAL;
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
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || client_id == NULL || host == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_prep(db, "UPDATE principals SET host = ?2 WHERE client_id = ?1 AND kind = 'mi'", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_text(stmt, 1, client_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, host, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
}

kv_rv vd_store_principal_list(vd_store *st, const char *tenant_id, const char *kind,
                              vd_principal_rec **out, size_t *n)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    vd_principal_rec *arr = NULL, *grown;
    size_t cap = 0, cnt = 0;
    kv_rv rv;
    int rc;

    if (db == NULL || out == NULL || n == NULL)
        return KV_ERR_INVALID_ARG;
    *out = NULL;
    *n = 0;
    rv = vd_prep(db,
                 "SELECT " VD_PRINC_COLS " FROM principals WHERE (?1 IS NULL OR tenant_id = ?1)"
                 " AND (?2 IS NULL OR kind = ?2) ORDER BY created, rowid",
                 &stmt);
    if (rv != KV_OK)
        return rv;
    if (tenant_id != NULL)
        sqlite3_bind_text(stmt, 1, tenant_id, -1, SQLITE_TRANSIENT);
    if (kind != NULL)
        sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(arr, cap * sizeof(*arr));
            if (grown == NULL) {
                rv = KV_ERR_NOMEM;
                goto done;
            }
            arr = grown;
        }
        rv = vd_rec_from_stmt(stmt, &arr[cnt]);
        cnt++;
        if (rv != KV_OK)
            goto done;
    }
    if (rc != SQLITE_DONE) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    *out = arr;
    *n = cnt;
    arr = NULL;
    cnt = 0;
    rv = KV_OK;
done:
    sqlite3_finalize(stmt);
    vd_principal_recs_free(arr, cnt);
    return rv;
}

kv_rv vd_store_principal_delete(vd_store *st, const char *tenant_id, const char *client_id)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || client_id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_store_begin(st);
    if (rv != KV_OK)
        return rv;
    rv = vd_prep(db,
                 "DELETE FROM principals WHERE client_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)",
                 &stmt);
    if (rv != KV_OK)
        goto done;
    sqlite3_bind_text(stmt, 1, client_id, -1, SQLITE_TRANSIENT);
    if (tenant_id != NULL)
        sqlite3_bind_text(stmt, 2, tenant_id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    if (sqlite3_changes(db) == 0) {
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
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || id == NULL || client == NULL)
        return KV_ERR_INVALID_ARG;
    /* an expired entry with the same id is overwritten; an unexpired one is a replay */
    rv = vd_prep(db,
                 "INSERT INTO assertion_jti (id, client, until) VALUES (?1, ?2, ?3)"
                 " ON CONFLICT(id) DO UPDATE SET client = excluded.client, until = excluded.until"
                 " WHERE assertion_jti.until < ?4",
                 &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_blob(stmt, 1, id, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(stmt, 2, client, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, until);
    sqlite3_bind_int64(stmt, 4, now);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "vaultd: sqlite step: %s\n", sqlite3_errmsg(db));
        return KV_ERR_INTERNAL;
    }
    return sqlite3_changes(db) == 0 ? KV_ERR_CONFLICT : KV_OK;
}

kv_rv vd_store_jti_remove(vd_store *st, const uint8_t id[32])
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL || id == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_prep(db, "DELETE FROM assertion_jti WHERE id = ?1", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_blob(stmt, 1, id, 32, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
}

kv_rv vd_store_jti_prune(vd_store *st, long long now)
{
    sqlite3 *db = vd_store_sqlite(st);
    sqlite3_stmt *stmt = NULL;
    kv_rv rv;
    int rc;

    if (db == NULL)
        return KV_ERR_INVALID_ARG;
    rv = vd_prep(db, "DELETE FROM assertion_jti WHERE until < ?1", &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_int64(stmt, 1, now);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? KV_OK : KV_ERR_INTERNAL;
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
    rv = vd_prep(db, "SELECT id, client, until FROM assertion_jti WHERE until >= ?1 ORDER BY until",
                 &stmt);
    if (rv != KV_OK)
        return rv;
    sqlite3_bind_int64(stmt, 1, now);
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
