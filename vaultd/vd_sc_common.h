/* vd_sc_common.h - helpers shared by the secret and certificate endpoints: object names and
 * ids, paging (maxresults, $skiptoken, nextLink), attributes and tags, the vault-kind check,
 * AES-256-GCM sealing under the KEK, and the instance backup-blob protection. */
#ifndef VD_SC_COMMON_H
#define VD_SC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vd_http.h"
#include "vd_store_secrets.h"

#define VD_SC_GCM_TAG 16

/* Object (secret, certificate) attributes as parsed from a request. */
typedef struct vd_sc_attrs {
    bool enabled, has_nbf, has_exp;
    long long nbf, exp;
} vd_sc_attrs;

bool vd_sc_name_ok(const char *name); /* 1-127 of [0-9A-Za-z-] */
/* Reads the vault's kind and recovery settings; false after answering (400 BadParameter for a
 * managed HSM pool, which has no secrets or certificates, as the router does; or 500). */
bool vd_sc_vault_only(vd_req *r, vd_vault_info *info);
/* vd_sc_vault_only, then the request's JSON object body; NULL after answering. */
json_t *vd_sc_vault_body(vd_req *r, vd_vault_info *info);
/* "Recoverable+Purgeable", "Recoverable", "CustomizedRecoverable+Purgeable", ... */
const char *vd_sc_recovery_level(const vd_vault_info *info);

/* Parses attributes (enabled/nbf/exp; others ignored) over the defaults in *a; false after
 * answering 400. */
bool vd_sc_parse_attrs(vd_req *r, const json_t *attrs, vd_sc_attrs *a);
/* Validates tags (<= 15, strings <= 256); *out = compact JSON text or stays NULL when absent.
 * false after answering 400. */
bool vd_sc_parse_tags(vd_req *r, const json_t *tags, char **out);
/* attributes object: enabled, nbf, exp, created, updated, recoveryLevel, recoverableDays. */
json_t *vd_sc_attrs_json(const vd_sc_attrs *a, long long created, long long updated,
                         const vd_vault_info *info);
/* Sets obj.tags from JSON text (nothing when NULL or empty). */
void vd_sc_set_tags(json_t *obj, const char *tags);

/* Paging of a collection (GET /secrets, /deletedsecrets, /certificates, ...) and of one
 * object's versions (GET /secrets/NAME/versions): maxresults, $skiptoken, nextLink, the item
 * JSON and the errors, for any store whose rows an accessor table describes. */
typedef struct vd_sc_pager {
    const char *coll; /* "secrets", "certificates": paths and messages */
    kv_rv (*list)(vd_req *r, const char *after, bool deleted, size_t limit, void **rows,
                  size_t *n);
    kv_rv (*versions)(vd_req *r, const char *name, long long after_seq, size_t limit, void **rows,
                      size_t *n);
    json_t *(*item)(const vd_req *r, const void *rows, size_t i, bool versioned,
                    const vd_vault_info *info);
    const char *(*name_at)(const void *rows, size_t i);
    long long (*seq_at)(const void *rows, size_t i);
    void (*rows_free)(void *rows, size_t n);
    void (*not_found)(vd_req *r, const char *name);
} vd_sc_pager;
void vd_sc_list_page(vd_req *r, const vd_sc_pager *p, bool deleted);
void vd_sc_versions_page(vd_req *r, const vd_sc_pager *p, const char *name);

/* Zeroises the string member key of obj in place (secret material in a parsed body). */
void vd_sc_json_wipe(json_t *obj, const char *key);

/* AAD "kind|vault|name|version", lower case. */
void vd_sc_aad(const char *kind, const char *vault, const char *name, const char *version,
               char *out, size_t outlen);
/* AES-256-GCM with a fresh random iv: *out = ciphertext || tag (malloc'd). */
kv_rv vd_sc_seal(const uint8_t key[32], const char *aad, const uint8_t *in, size_t inlen,
                 uint8_t iv[12], uint8_t **out, size_t *outlen);
/* Inverse of vd_sc_seal; *out is NUL-terminated (not counted), zeroise with vd_free_secret. */
kv_rv vd_sc_open(const uint8_t key[32], const char *aad, const uint8_t iv[12], const uint8_t *in,
                 size_t inlen, uint8_t **out, size_t *outlen);

/* Backup blobs: base64url("KVB1" || iv || AES-256-GCM(json) || tag) under a key derived from
 * the KEK with HKDF-SHA256 and the given label; only this instance (same KEK) can open them. */
kv_rv vd_sc_backup_seal(const vd_ctx *ctx, const char *label, const json_t *payload, char **out);
/* KV_ERR_INVALID_ARG when the blob is malformed or from another instance. */
kv_rv vd_sc_backup_open(const vd_ctx *ctx, const char *label, const char *blob, json_t **out);

#endif
