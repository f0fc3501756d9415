/* vd_keys_int.h - helpers shared by the key endpoint files (vd_keys.c, vd_keys_lifecycle.c,
 * vd_keys_crypto.c, vd_backup.c, vd_rotation.c): ids, loading, JSON shapes, parsing of the
 * common request members, paging and the key-state checks. Not for other parts of vaultd. */
#ifndef VD_KEYS_INT_H
#define VD_KEYS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "vd_http.h"
#include "vd_store.h"

#define VD_KEY_MAX_RESULTS 25

/* ---- vd_keys.c ---- */
bool vd_key_name_ok(const char *name);
void vd_base_url(const vd_req *r, char *out, size_t outlen); /* https://HOST as addressed */
void vd_kid(const vd_req *r, const vd_key_row *row, bool versioned, char *out, size_t outlen);
void vd_key_aad(const vd_key_row *row, char *out, size_t outlen);        /* KEK wrapping AAD */
void vd_key_not_found(vd_req *r, const char *name, const char *version); /* 404 KeyNotFound */
/* Loads a live key version (latest if version is NULL/empty); false after answering. */
bool vd_key_load(vd_req *r, const char *name, const char *version, vd_key_row *row);
json_t *vd_key_attributes(const vd_req *r, const vd_key_row *row);
json_t *vd_key_bundle(const vd_req *r, const vd_key_row *row);
json_t *vd_key_item(const vd_req *r, const vd_key_row *row, bool versioned);
void vd_reply_bundle(vd_req *r, const vd_key_row *row); /* 200 KeyBundle */
/* Request member parsers; each answers 400 itself and returns NULL / false on bad input. */
char *vd_parse_key_ops(vd_req *r, const json_t *ops, const char *kty);
bool vd_parse_attributes(vd_req *r, const json_t *attrs, vd_key_row *row);
bool vd_parse_tags(vd_req *r, const json_t *tags, vd_key_row *row);
/* Paging: maxresults, $skiptoken ("<prefix><value>") and nextLink. */
bool vd_max_results(vd_req *r, size_t *out);
bool vd_skiptoken(vd_req *r, char prefix, char *out, size_t outlen);
void vd_set_next_link(vd_req *r, json_t *page, const char *path, char prefix, const char *after,
                      size_t max);
/* Key-state checks: enabled, key_ops contains op, and (check_dates) nbf <= now < exp. */
bool vd_has_op(const vd_key_row *row, const char *op);
bool vd_key_allows(vd_req *r, const vd_key_row *row, const char *op, bool check_dates);
/* The private key of a version (key cache, else unwrapped under the KEK); NULL on failure. */
EVP_PKEY *vd_private_key(vd_req *r, const vd_key_row *row);

/* ---- vd_keys_lifecycle.c ---- */
/* recoveryLevel and recoverableDays of the request's vault. */
void vd_key_recovery_level(const vd_req *r, char *level, size_t levellen, int *days);
/* false after answering 409 Conflict / ObjectIsDeletedButRecoverable when the name is
 * soft-deleted (or 500 on a store error). */
bool vd_key_name_not_deleted(vd_req *r, const char *name);

#endif
