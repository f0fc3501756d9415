/* vd_hsm_keys.h - HSM-protected keys (kty RSA-HSM, EC-HSM, oct-HSM) living in the local HSM
 * pool, managed HSM pools as a container kind, and POST /rng. The route wrappers take HSM keys
 * and hand every other request to the software-key handlers (vd_keys.c, vd_keys_crypto.c). */
#ifndef VD_HSM_KEYS_H
#define VD_HSM_KEYS_H

#include <stdbool.h>

#include "vd_http.h"

#define VD_HSM_DEV_POOL "devhsm" /* managed HSM pool created by --dev */

void vd_hsm_keys_import(vd_req *r, const char *name, const char *version);
void vd_hsm_keys_create(vd_req *r, const char *name, const char *version);
void vd_hsm_keys_sign(vd_req *r, const char *name, const char *version);
void vd_hsm_keys_encrypt(vd_req *r, const char *name, const char *version);
void vd_hsm_keys_decrypt(vd_req *r, const char *name, const char *version);
void vd_hsm_keys_wrap(vd_req *r, const char *name, const char *version);
void vd_hsm_keys_unwrap(vd_req *r, const char *name, const char *version);
void vd_hsm_rng(vd_req *r, const char *name, const char *version);

/* Whether the request's container is a managed HSM pool. */
bool vd_hsm_is_mhsm(const vd_req *r);
/* false after answering 400 when the container cannot serve the collection (secrets and
 * certificates in a managed HSM pool). */
bool vd_hsm_route_allowed(vd_req *r);

/* --dev: the managed HSM pool devhsm with the dev principal as Managed HSM Administrator. */
kv_rv vd_hsm_dev_managed_pool(vd_store *st, const char *tenant, const char *client_id);

#endif
