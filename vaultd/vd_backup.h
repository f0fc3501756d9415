/* vd_backup.h - pieces of key backups (vd_backup.c) that certificate backups
 * (vd_certs_backup.c) share: binary members as base64url strings, an HSM key's material
 * wrapped under the pool wrapping key, and rewrapping a private key for its new place. */
#ifndef VD_BACKUP_H
#define VD_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kv_status.h"
#include "vd_http.h"
#include "vd_store.h"

/* A JSON string of b in base64url ("" when empty); NULL on allocation failure. */
json_t *vd_backup_b64(const uint8_t *b, size_t len);
/* Adds "hsm_wrapped" (the material under the pool wrapping key) to the JSON version v of an
 * HSM key (row->hsm_ref set; nothing to do otherwise). KV_OK also when the key cannot be
 * wrapped (made before the pool had a wrapping key: reference only, checked at restore); any
 * other outcome is returned with err filled in, for the caller to answer. */
kv_rv vd_backup_hsm_wrapped(vd_req *r, const vd_key_row *row, json_t *v, kv_err *err);
/* Unwraps a backed-up private key under the AAD of its original place (old_vault, row's name
 * and version) and wraps it for row's place into row->wrapped with the IV row->iv.
 * *unwrap_failed (may be NULL) tells whether a failure was the unwrapping. */
kv_rv vd_backup_rewrap(vd_req *r, const char *old_vault, vd_key_row *row, const uint8_t *iv,
                       const uint8_t *wrapped, size_t wlen, bool *unwrap_failed);

#endif
