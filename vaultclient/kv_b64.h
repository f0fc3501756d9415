/* kv_b64.h - base64 and base64url (no padding) on top of OpenSSL's EVP encoder. */
#ifndef KV_B64_H
#define KV_B64_H

#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"

/* Encodes len bytes; returns a malloc'd NUL-terminated string (NULL on ENOMEM). */
char *kv_b64url_encode(const uint8_t *in, size_t len);
char *kv_b64_encode(const uint8_t *in, size_t len);

/* Decodes base64url (padding optional) or standard base64 (either accepted, whitespace not
 * allowed). *out is malloc'd; *outlen its length. KV_ERR_INVALID_ARG on malformed input. */
kv_rv kv_b64_decode(const char *in, uint8_t **out, size_t *outlen);

#endif
