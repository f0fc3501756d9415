/* vd_store_certs.h - SQLite persistence of certificates: versions (DER, thumbprint, validity),
 * the per-name policy and pending operation, and soft delete / recover / purge of a
 * certificate together with its managed key and secret. Also runs the certificates schema
 * migration (certificates, certificate_policies, keys.managed). */
#ifndef VD_STORE_CERTS_H
#define VD_STORE_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"
#include "vd_store.h"
#include "vd_store_secrets.h"

/* One certificate version. Strings and blobs are owned by the row (vd_cert_row_clear). */
typedef struct vd_cert_row {
    long long seq;
    char vault[VD_ID_MAX];
    char name[VD_NAME_MAX];
    char version[VD_ID_MAX];
    long long created, updated;
    bool enabled, has_nbf, has_exp;
    long long nbf, exp;
    char *tags;   /* JSON object text or NULL */
    uint8_t *cer; /* DER */
    size_t cer_len;
    char x5t[48]; /* base64url SHA-1 of the DER */
    bool deleted;
    long long deleted_date, purge_date;
} vd_cert_row;

kv_rv vd_store_certs_migrate(vd_store *st);

/* Inserts a version; KV_ERR_CONFLICT if the name is soft-deleted. Keeps the stored spelling. */
kv_rv vd_store_cert_insert(vd_store *st, vd_cert_row *row);
/* deleted selects live or soft-deleted rows; version NULL/"" = latest. */
kv_rv vd_store_cert_get(vd_store *st, const char *vault, const char *name, const char *version,
                        bool deleted, vd_cert_row *out);
kv_rv vd_store_cert_list(vd_store *st, const char *vault, const char *after, bool deleted,
                         size_t limit, vd_cert_row **rows, size_t *n);
kv_rv vd_store_cert_versions(vd_store *st, const char *vault, const char *name, long long after_seq,
                             size_t limit, vd_cert_row **rows, size_t *n);
/* Whether a name has soft-deleted certificate versions. */
kv_rv vd_store_cert_is_deleted(vd_store *st, const char *vault, const char *name, bool *deleted);
/* Rewrites enabled, tags and updated of one version; enabled also goes to its key and secret. */
kv_rv vd_store_cert_update(vd_store *st, const vd_cert_row *row);
/* Soft-deletes / recovers the certificate and its managed key and secret (all versions). */
kv_rv vd_store_cert_set_deleted(vd_store *st, const char *vault, const char *name, bool deleted,
                                long long deleted_date, long long purge_date);
/* Removes every version of the certificate, its managed key and secret, and its policy. */
kv_rv vd_store_cert_purge(vd_store *st, const char *vault, const char *name);
/* Removes one version's certificate, managed key and secret rows (undo of a failed create). */
kv_rv vd_store_cert_unlink(vd_store *st, const char *vault, const char *name, const char *version);
/* Marks a key version as backing a certificate (keys.managed = 1). */
kv_rv vd_store_key_set_managed(vd_store *st, const char *vault, const char *name,
                               const char *version);
/* Whether a key version backs a certificate (false when unknown). */
bool vd_store_key_is_managed(vd_store *st, const char *vault, const char *name,
                             const char *version);

/* Policy (JSON text without id) and pending operation (JSON text or NULL) of a name. */
kv_rv vd_store_cert_policy_put(vd_store *st, const char *vault, const char *name,
                               const char *policy, const char *pending);
/* *policy / *pending malloc'd (pending may be NULL). NOT_FOUND if none. */
kv_rv vd_store_cert_policy_get(vd_store *st, const char *vault, const char *name, char **policy,
                               char **pending);
kv_rv vd_store_cert_pending_clear(vd_store *st, const char *vault, const char *name);

/* Purges soft-deleted secrets and certificates (with their policies) whose scheduled purge
 * date has passed; their managed keys go with the keys' own sweep (vd_rotation.c). */
kv_rv vd_store_sc_purge_due(vd_store *st, long long now);

/* Restores a certificate from a backup in one transaction: its versions, the managed key and
 * secret versions (inserted with managed = 1 as given) and the policy. KV_ERR_CONFLICT when a
 * certificate, key or secret of that name exists (live or soft-deleted); nothing is written
 * then. Row seqs are filled in. */
kv_rv vd_store_cert_restore(vd_store *st, vd_cert_row *certs, size_t ncerts, vd_key_row *keys,
                            size_t nkeys, vd_secret_row *secrets, size_t nsecrets,
                            const char *policy);

/* Certificate contacts (kind "contacts", name "contacts") and issuers (kind "issuer", name =
 * issuer name, case-insensitive) of a vault as JSON documents. */
kv_rv vd_store_cert_setting_get(vd_store *st, const char *vault, const char *kind, const char *name,
                                char **doc);
kv_rv vd_store_cert_setting_put(vd_store *st, const char *vault, const char *kind, const char *name,
                                const char *doc);
/* NOT_FOUND when there was none. */
kv_rv vd_store_cert_setting_delete(vd_store *st, const char *vault, const char *kind,
                                   const char *name);
/* Documents of a kind with names after `after` (NULL = from the start), ordered by name. */
kv_rv vd_store_cert_setting_list(vd_store *st, const char *vault, const char *kind,
                                 const char *after, size_t limit, char ***docs, size_t *n);
void vd_store_cert_docs_free(char **docs, size_t n);

void vd_cert_row_clear(vd_cert_row *row);
void vd_cert_rows_free(vd_cert_row *rows, size_t n);

#endif
