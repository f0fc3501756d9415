/* vd_certs_int.h - helpers shared by the certificate files (vd_certs.c, vd_certs_hsm.c,
 * vd_certs_backup.c, vd_certs_issuers.c): HSM-protected certificate keys (generated or
 * imported into the local HSM pool, certificates and CSRs signed there), the bundle reply and
 * the 404. Not for other parts of vaultd. */
#ifndef VD_CERTS_INT_H
#define VD_CERTS_INT_H

#include <stdbool.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kv_status.h"
#include "vd_http.h"
#include "vd_store_certs.h"
#include "vd_store_secrets.h"

/* ---- vd_certs.c ---- */
/* 404 CertificateNotFound for name (and version when not empty). */
void vd_certs_not_found(vd_req *r, const char *name, const char *version);
/* 200 CertificateBundle of a row. */
void vd_certs_reply_bundle(vd_req *r, const vd_cert_row *row, const vd_vault_info *info);

/* ---- vd_certs_hsm.c ---- */
/* Whether a policy kty names an HSM-protected key (RSA-HSM, EC-HSM). */
bool vd_certs_kty_is_hsm(const char *kty);
/* Answers a pool failure: 503 ServiceUnavailable when the pool is down, 400 BadParameter when
 * this vaultd has no pool or the input was refused, else 500. */
void vd_certs_hsm_reply_err(vd_req *r, const kv_err *err, const char *what);
/* Generates the certificate's key in the pool following key_props (kty RSA-HSM key_size /
 * EC-HSM crv), labelled vaultd/VAULT/NAME/VERSION. *ref malloc'd, *pub = its public key. */
kv_rv vd_certs_hsm_generate(vd_ctx *ctx, const json_t *key_props, const char *vault,
                            const char *name, const char *version, char **ref, EVP_PKEY **pub,
                            kv_err *err);
/* Imports a private key into the pool as a non-extractable key; *ref malloc'd. */
kv_rv vd_certs_hsm_import(vd_ctx *ctx, const EVP_PKEY *pkey, const char *vault, const char *name,
                          const char *version, char **ref, kv_err *err);
/* The public key of a pool key. */
kv_rv vd_certs_hsm_public(vd_ctx *ctx, const char *ref, EVP_PKEY **pub, kv_err *err);
/* Removes a pool key (failed create / import, purge). Absent = KV_OK. */
void vd_certs_hsm_destroy(vd_ctx *ctx, const char *ref);
/* Signs x (sha256/384/512WithRSAEncryption or ecdsa-with-SHA*) with the pool key ref whose
 * public key is pub: sets both algorithm identifiers, signs the DER TBSCertificate in the pool
 * and replaces *x by the re-parsed, verified certificate. */
kv_rv vd_certs_hsm_sign_x509(vd_ctx *ctx, const char *ref, EVP_PKEY *pub, const EVP_MD *md,
                             X509 **x, kv_err *err);
/* The same for a CSR. */
kv_rv vd_certs_hsm_sign_req(vd_ctx *ctx, const char *ref, EVP_PKEY *pub, const EVP_MD *md,
                            X509_REQ *req, kv_err *err);

#endif
