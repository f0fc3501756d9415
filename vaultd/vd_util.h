/* vd_util.h - small helpers used across vaultd: random identifiers, time, files. */
#ifndef VD_UTIL_H
#define VD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kv_status.h"

/* A random version-4 GUID, lower case, 36 characters + NUL. */
kv_rv vd_guid(char out[37]);
/* nbytes random bytes as lower-case hex (out must hold 2 * nbytes + 1). */
kv_rv vd_random_hex(char *out, size_t nbytes);
/* Current unix time in seconds. */
long long vd_now(void);
/* Milliseconds on the monotonic clock. */
double vd_mono_ms(void);

/* Writes data to path atomically (temporary file + fsync + rename) with the given mode. */
kv_rv vd_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file (at most maxlen bytes) into a malloc'd, NUL-terminated buffer. */
kv_rv vd_read_file(const char *path, size_t maxlen, uint8_t **out, size_t *outlen);
/* Zeroises and frees a buffer (NULL fine). */
void vd_free_secret(void *p, size_t len);

#endif
