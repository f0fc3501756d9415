/* vd_keys.h - the key endpoints of the vault data plane (create, get, list, versions, sign,
 * verify). Each handler answers the request itself. */
#ifndef VD_KEYS_H
#define VD_KEYS_H

#include "vd_http.h"

void vd_keys_create(vd_req *r, const char *name, const char *version);
void vd_keys_get(vd_req *r, const char *name, const char *version);
void vd_keys_list(vd_req *r, const char *name, const char *version);
void vd_keys_versions(vd_req *r, const char *name, const char *version);
void vd_keys_sign(vd_req *r, const char *name, const char *version);
void vd_keys_verify(vd_req *r, const char *name, const char *version);

#endif
