/* vd_store_versioned.h - the queries shared by vaultd's versioned, soft-deletable objects
 * (keys, secrets, certificates): one table per type with the columns seq, vault, name,
 * version, deleted, deleted_date, scheduled_purge_date; a type is described by its table,
 * its column list and the function that turns a result row into its row struct. */
#ifndef VD_STORE_VERSIONED_H
#define VD_STORE_VERSIONED_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "kv_status.h"
#include "vd_store_util.h"

typedef struct vd_vobj {
    const char *table; /* e.g. "secrets" */
    const char *cols;  /* the columns row->read reads, in order */
    const vd_row_type *row;
} vd_vobj;

/* The keys table (vd_store.c): rows are vd_key_row. */
extern const vd_vobj vd_key_obj;

/* One version (version NULL or "": the latest) among live or soft-deleted rows. NOT_FOUND if
 * absent. */
kv_rv vd_vobj_get(sqlite3 *db, const vd_vobj *o, const char *vault, const char *name,
                  const char *version, bool deleted, void *out);
/* Latest version of each name (live or soft-deleted), names after `after` (NULL: from the
 * start), at most limit, ordered by name. *rows: malloc'd array of *n rows. */
kv_rv vd_vobj_list(sqlite3 *db, const vd_vobj *o, const char *vault, const char *after,
                   bool deleted, size_t limit, void **rows, size_t *n);
/* Live versions of a name with seq > after_seq, at most limit, in creation order. */
kv_rv vd_vobj_versions(sqlite3 *db, const vd_vobj *o, const char *vault, const char *name,
                       long long after_seq, size_t limit, void **rows, size_t *n);
/* Soft-deletes (deleted true: sets the dates) or recovers every version of a name in table;
 * `extra` (may be NULL) is appended to the WHERE clause (e.g. " AND managed = 1").
 * NOT_FOUND if nothing changed. */
kv_rv vd_vobj_set_deleted(sqlite3 *db, const char *table, const char *extra, const char *vault,
                          const char *name, bool deleted, long long deleted_date,
                          long long purge_date);
/* Whether a name has live versions and soft-deleted ones; with spelling, the stored spelling
 * of the name is copied there when it exists. */
kv_rv vd_vobj_name_state(sqlite3 *db, const char *table, const char *vault, const char *name,
                         char *spelling, size_t spelling_len, bool *live, bool *deleted);

/* Inserting versions: vd_vobj_txn_begin starts a transaction (BEGIN IMMEDIATE) and checks the
 * name against rule (VD_VOBJ_NOT_DELETED: KV_ERR_CONFLICT when soft-deleted; VD_VOBJ_NEW:
 * KV_ERR_CONFLICT when the name exists at all); with spelling_len > 0 the stored spelling of
 * an existing name is copied into name. On failure nothing is left open. vd_vobj_txn_end
 * commits when rv is KV_OK, else rolls back, and returns the outcome. */
typedef enum { VD_VOBJ_ANY, VD_VOBJ_NOT_DELETED, VD_VOBJ_NEW } vd_vobj_rule;
kv_rv vd_vobj_txn_begin(sqlite3 *db, const char *table, const char *vault, char *name,
                        size_t spelling_len, vd_vobj_rule rule);
kv_rv vd_vobj_txn_end(sqlite3 *db, kv_rv rv);

#endif
