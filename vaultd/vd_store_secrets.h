/* vd_store_secrets.h - SQLite persistence of secrets: versions (value encrypted by the caller),
 * soft delete, recover and purge. Also runs the secrets schema migration. */
#ifndef VD_STORE_SECRETS_H
#define VD_STORE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"
#include "vd_store.h"

/* One secret version. Strings and blobs are owned by the row (vd_secret_row_clear). */
typedef struct vd_secret_row {
    long long seq; /* insertion order; the highest seq of a name is its latest version */
    char vault[VD_ID_MAX];
    char name[VD_NAME_MAX];
    char version[VD_ID_MAX];
    char *content_type; /* NULL if none */
    char *tags;         /* JSON object text or NULL */
    char *kid;          /* relative key path "keys/NAME/VERSION" for a certificate's secret */
    long long created, updated;
    bool enabled, has_nbf, has_exp;
    long long nbf, exp;
    bool managed;
    uint8_t *value_enc; /* AES-256-GCM ciphertext || tag */
    size_t value_enc_len;
    uint8_t iv[VD_IV_LEN];
    bool deleted;
    long long deleted_date, purge_date;
} vd_secret_row;

/* Idempotent: creates the secrets table and the shared columns of vaults this code reads. */
kv_rv vd_store_secrets_migrate(vd_store *st);

/* Inserts a new version (keeps the stored spelling of the name, copied back into row->name).
 * KV_ERR_CONFLICT when the name is soft-deleted. */
kv_rv vd_store_secret_insert(vd_store *st, vd_secret_row *row);
/* Inserts all rows (one name) as a restore: KV_ERR_CONFLICT if the name exists at all. */
kv_rv vd_store_secret_restore(vd_store *st, vd_secret_row *rows, size_t n);
/* deleted selects live or soft-deleted rows; version NULL/"" = latest. NOT_FOUND if absent. */
kv_rv vd_store_secret_get(vd_store *st, const char *vault, const char *name, const char *version,
                          bool deleted, vd_secret_row *out);
/* Latest version of each name (live or deleted), names after `after`, ordered by name. */
kv_rv vd_store_secret_list(vd_store *st, const char *vault, const char *after, bool deleted,
                           size_t limit, vd_secret_row **rows, size_t *n);
/* Live versions of a name with seq > after_seq, in creation order. */
kv_rv vd_store_secret_versions(vd_store *st, const char *vault, const char *name,
                               long long after_seq, size_t limit, vd_secret_row **rows, size_t *n);
/* Updates content_type, enabled, nbf, exp, tags and updated of the row's version. */
kv_rv vd_store_secret_update(vd_store *st, const vd_secret_row *row);
/* Soft-deletes (or recovers with deleted=false) every version of a name; NOT_FOUND if there
 * was nothing to change. */
kv_rv vd_store_secret_set_deleted(vd_store *st, const char *vault, const char *name, bool deleted,
                                  long long deleted_date, long long purge_date);
/* Removes every version of a deleted (only_deleted) or any name; NOT_FOUND if none. */
kv_rv vd_store_secret_purge(vd_store *st, const char *vault, const char *name, bool only_deleted);

/* Vault settings the secret and certificate code needs (columns default when absent). */
typedef struct vd_vault_info {
    bool managed_hsm;
    int retention_days;
    bool purge_protection;
} vd_vault_info;
kv_rv vd_store_vault_info(vd_store *st, const char *vault, vd_vault_info *out);

/* Runs an idempotent ALTER TABLE ... ADD COLUMN (duplicate column = success). */
kv_rv vd_store_add_column(vd_store *st, const char *sql);

/* Inserts one row as given (managed, attributes) in the current transaction; fills row->seq.
 * For the store files (vd_store_certs.c restores a certificate's secret versions with it). */
struct sqlite3;
kv_rv vd_secret_row_insert(struct sqlite3 *db, vd_secret_row *row);

void vd_secret_row_clear(vd_secret_row *row);
void vd_secret_rows_free(vd_secret_row *rows, size_t n);

#endif
