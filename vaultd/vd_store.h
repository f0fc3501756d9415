/* vd_store.h - vaultd's persistent state in SQLite: tenants, principals, vaults, role
 * assignments and keys. One vd_store (connection) per thread; never shared. */
#ifndef VD_STORE_H
#define VD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"
#include "vd_ctx.h"

#define VD_SALT_LEN 16
#define VD_HASH_LEN 32
#define VD_IV_LEN 12

typedef struct vd_store vd_store;

typedef struct vd_principal {
    char client_id[VD_ID_MAX];
    char tenant_id[VD_ID_MAX];
    uint8_t salt[VD_SALT_LEN];
    uint8_t hash[VD_HASH_LEN];
    int iterations;
} vd_principal;

typedef struct vd_vault {
    char name[VD_ID_MAX];
    char tenant_id[VD_ID_MAX];
    char resource[128];
} vd_vault;

/* One key version. Strings and blobs are owned by the row (vd_key_row_clear frees them). */
typedef struct vd_key_row {
    long long seq; /* insertion order; the highest seq of a name is its latest version */
    char vault[VD_ID_MAX];
    char name[VD_NAME_MAX];
    char version[VD_ID_MAX];
    char kty[16]; /* "RSA" or "EC" (the software type; hsm says whether -HSM is reported) */
    bool hsm;
    long long created, updated;
    bool enabled;
    bool has_nbf, has_exp;
    long long nbf, exp;
    char *key_ops;    /* JSON array text */
    char *tags;       /* JSON object text or NULL */
    uint8_t *pub_der; /* SubjectPublicKeyInfo */
    size_t pub_len;
    uint8_t *wrapped; /* AES-256-GCM(PKCS#8) ciphertext || tag */
    size_t wrapped_len;
    uint8_t iv[VD_IV_LEN];
    char *hsm_ref; /* HSM keys: kv_hsm reference in the pool (wrapped is then NULL), else NULL */
} vd_key_row;

kv_rv vd_store_open(const char *path, vd_store **out);
void vd_store_close(vd_store *st);
/* Creates the tables if missing. */
kv_rv vd_store_init_schema(vd_store *st);
/* The connection, for the per-object store files (vd_store_secrets.c, ...). */
struct sqlite3 *vd_store_sqlite(vd_store *st);

kv_rv vd_store_begin(vd_store *st); /* BEGIN IMMEDIATE */
kv_rv vd_store_commit(vd_store *st);
void vd_store_rollback(vd_store *st);

/* ---- identity ---- */
kv_rv vd_store_first_tenant(vd_store *st, char tenant_id[VD_ID_MAX]); /* NOT_FOUND if none */
kv_rv vd_store_tenant_exists(vd_store *st, const char *tenant_id, bool *exists);
kv_rv vd_store_add_tenant(vd_store *st, const char *tenant_id, const char *name);
kv_rv vd_store_add_principal(vd_store *st, const vd_principal *p, const char *display_name);
kv_rv vd_store_set_principal_secret(vd_store *st, const vd_principal *p);
/* tenant_id NULL: any tenant. */
kv_rv vd_store_get_principal(vd_store *st, const char *tenant_id, const char *client_id,
                             vd_principal *out);
/* The first principal of a tenant (the dev service principal). */
kv_rv vd_store_first_principal(vd_store *st, const char *tenant_id, vd_principal *out);

/* ---- vaults and roles ---- */
kv_rv vd_store_add_vault(vd_store *st, const vd_vault *v, bool is_default);
kv_rv vd_store_get_vault(vd_store *st, const char *name, vd_vault *out); /* case-insensitive */
kv_rv vd_store_default_vault(vd_store *st, vd_vault *out);
kv_rv vd_store_add_role_assignment(vd_store *st, const char *vault, const char *scope,
                                   const char *principal_id, const char *role_id);
/* Removes every role assignment of principal_id, in every vault and scope (principal
 * deletion; whoever owns the assignment tables keeps this working). */
kv_rv vd_store_delete_assignments_of(vd_store *st, const char *principal_id);

/* ---- keys ---- */
/* Inserts a new version. If the name exists (any case), the stored spelling is kept and
 * copied back into row->name. */
kv_rv vd_store_key_insert(vd_store *st, vd_key_row *row);
/* version NULL or "": latest. NOT_FOUND if absent. */
kv_rv vd_store_key_get(vd_store *st, const char *vault, const char *name, const char *version,
                       vd_key_row *out);
/* Latest version of each key, names after `after` (NULL = from the start), at most limit
 * rows, ordered by name. *rows is an array of *n rows (vd_key_rows_free). */
kv_rv vd_store_key_list(vd_store *st, const char *vault, const char *after, size_t limit,
                        vd_key_row **rows, size_t *n);
/* All versions of a key with seq > after_seq, at most limit, in creation order. */
kv_rv vd_store_key_versions(vd_store *st, const char *vault, const char *name, long long after_seq,
                            size_t limit, vd_key_row **rows, size_t *n);
void vd_key_row_clear(vd_key_row *row);
/* For store files that query keys themselves (vd_store_keys.c): */
struct sqlite3_stmt;
#define VD_KEY_COLS                                                                                \
    "seq, vault, name, version, kty, hsm, created, updated, enabled, nbf, exp, key_ops, tags,"     \
    " public_der, wrapped_key, iv, hsm_ref"
extern const char vd_key_cols[]; /* VD_KEY_COLS: the columns vd_key_row_from_stmt reads */
kv_rv vd_key_row_from_stmt(struct sqlite3_stmt *stmt, vd_key_row *row);
/* Inserts one version as given (keys.managed = managed) in the current transaction; fills
 * row->seq. No checks: the callers validate and hold the transaction. */
struct sqlite3;
kv_rv vd_key_row_insert(struct sqlite3 *db, vd_key_row *row, bool managed);
void vd_key_rows_free(vd_key_row *rows, size_t n);

#endif
