/* kv_seal.h - a secret sealed under a PIN or passphrase, as one line of text that fits a
 * configuration value:
 *     kvault-sealed-v1$ITERATIONS$SALT$IV$CIPHERTEXT_AND_TAG      (base64 fields)
 * PBKDF2-HMAC-SHA256 (KV_SEAL_ITER iterations, 16-byte random salt) derives an AES-256-GCM key;
 * the purpose string (e.g. "client_secret") is the additional data, so a sealed value cannot
 * be moved to another setting. Used for `client_secret_sealed` (docs/pkcs11.md, "Login"). */
#ifndef KV_SEAL_H
#define KV_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"

#define KV_SEAL_PREFIX "kvault-sealed-v1$"
#define KV_SEAL_ITER 600000 /* OWASP 2023 guidance for PBKDF2-HMAC-SHA256 */
#define KV_SEAL_MIN_ITER 100000

/* Seals len bytes of data under pin. *text is malloc'd (NUL-terminated). */
kv_rv kv_seal(const uint8_t *data, size_t len, const char *pin, size_t pinlen, const char *purpose,
              char **text, kv_err *err);
/* Opens a sealed text. A wrong PIN or an altered text = KV_ERR_AUTH; a text that is not a sealed
 * value = KV_ERR_INVALID_ARG. *out (malloc'd, NUL-terminated after *outlen bytes) must be freed
 * with OPENSSL_clear_free(*out, *outlen + 1). */
kv_rv kv_unseal(const char *text, const char *pin, size_t pinlen, const char *purpose,
                uint8_t **out, size_t *outlen, kv_err *err);
/* Whether text looks like a sealed value (prefix and field count; no crypto). */
int kv_seal_is_valid(const char *text);

#endif
