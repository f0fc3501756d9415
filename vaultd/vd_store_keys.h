/* vd_store_keys.h - SQLite persistence of the key lifecycle beyond create/get/list: soft delete
 * (deleted keys, recover, purge), attribute updates, multi-version inserts for restore,
 * rotation policies and the vault recovery settings. Also runs the keys schema migration. */
#ifndef VD_STORE_KEYS_H
#define VD_STORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "kv_status.h"
#include "vd_store.h"

/* A soft-deleted key: its latest version and when it was deleted / will be purged. */
typedef struct vd_deleted_key {
    vd_key_row row;
    long long deleted_date, purge_date;
} vd_deleted_key;

/* A stored rotation policy (JSON text of the KeyRotationPolicy without id). */
typedef struct vd_policy_row {
    char vault[VD_ID_MAX];
    char name[VD_NAME_MAX];
    char *policy;
    long long created, updated;
} vd_policy_row;

/* Adds the keys.deleted* columns, vaults.retention_days / purge_protection and the
 * key_rotation_policies table (idempotent). */
kv_rv vd_store_keys_migrate(vd_store *st);

/* The vault's soft-delete retention (days) and purge protection. */
kv_rv vd_store_vault_recovery(vd_store *st, const char *vault, int *retention_days,
                              bool *purge_protection);

/* Whether a name has live versions and whether it has soft-deleted ones. */
kv_rv vd_store_key_state(vd_store *st, const char *vault, const char *name, bool *live,
                         bool *deleted);

/* Rewrites enabled, nbf, exp, key_ops, tags and updated of one (live) version. */
kv_rv vd_store_key_update(vd_store *st, const vd_key_row *row);

/* All versions of a name in creation order, live ones (deleted false) or soft-deleted ones. */
kv_rv vd_store_key_all(vd_store *st, const char *vault, const char *name, bool deleted,
                       vd_key_row **rows, size_t *n);

/* Soft-deletes every live version of a name. NOT_FOUND if none. */
kv_rv vd_store_key_soft_delete(vd_store *st, const char *vault, const char *name, long long now,
                               long long purge_date);
/* The latest version of a soft-deleted key. NOT_FOUND if none. */
kv_rv vd_store_deleted_key_get(vd_store *st, const char *vault, const char *name,
                               vd_deleted_key *out);
/* Soft-deleted keys with names after `after` (NULL: from the start), at most limit, by name. */
kv_rv vd_store_deleted_key_list(vd_store *st, const char *vault, const char *after, size_t limit,
                                vd_deleted_key **out, size_t *n);
void vd_deleted_keys_free(vd_deleted_key *keys, size_t n);
/* Makes a soft-deleted key live again. NOT_FOUND if none. */
kv_rv vd_store_key_recover(vd_store *st, const char *vault, const char *name);
/* Removes a soft-deleted key's versions and its rotation policy. NOT_FOUND if none. */
kv_rv vd_store_key_purge(vd_store *st, const char *vault, const char *name);
/* Soft-deleted keys (vault + name only in the rows) whose purge date is <= now. */
kv_rv vd_store_keys_purge_due(vd_store *st, long long now, vd_key_row **rows, size_t *n);

/* Inserts n versions of one new name atomically, keeping their versions and attributes.
 * KV_ERR_CONFLICT if the name exists in any state. */
kv_rv vd_store_key_insert_many(vd_store *st, vd_key_row *rows, size_t n);

/* Rotation policies. get: NOT_FOUND when none is set. */
kv_rv vd_store_policy_get(vd_store *st, const char *vault, const char *name, vd_policy_row *out);
kv_rv vd_store_policy_put(vd_store *st, vd_policy_row *p, long long now);
/* Every stored policy (for the rotation timer). */
kv_rv vd_store_policy_all(vd_store *st, vd_policy_row **out, size_t *n);
void vd_policy_row_clear(vd_policy_row *p);
void vd_policy_rows_free(vd_policy_row *p, size_t n);

#endif
