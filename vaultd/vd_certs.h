/* vd_certs.h - the certificate endpoints of the vault data plane: create (self-signed, via a
 * pending operation), import (PEM, PKCS#12), get, list, versions, update, policy, delete /
 * recover / purge, backup / restore, contacts and issuers. Each certificate version has a key and a
 * secret of the same name and version (managed), as in Azure. */
#ifndef VD_CERTS_H
#define VD_CERTS_H

#include <stddef.h>

#include "kv_status.h"
#include "vd_http.h"

void vd_certs_create(vd_req *r, const char *name, const char *version);
void vd_certs_import(vd_req *r, const char *name, const char *version);
void vd_certs_pending_get(vd_req *r, const char *name, const char *version);
void vd_certs_pending_delete(vd_req *r, const char *name, const char *version);
void vd_certs_pending_cancel(vd_req *r, const char *name, const char *version);
void vd_certs_merge(vd_req *r, const char *name, const char *version);
void vd_certs_get(vd_req *r, const char *name, const char *version);
void vd_certs_list(vd_req *r, const char *name, const char *version);
void vd_certs_versions(vd_req *r, const char *name, const char *version);
void vd_certs_update(vd_req *r, const char *name, const char *version);
void vd_certs_policy_get(vd_req *r, const char *name, const char *version);
void vd_certs_policy_update(vd_req *r, const char *name, const char *version);
void vd_certs_delete(vd_req *r, const char *name, const char *version);
void vd_certs_deleted_list(vd_req *r, const char *name, const char *version);
void vd_certs_deleted_get(vd_req *r, const char *name, const char *version);
void vd_certs_recover(vd_req *r, const char *name, const char *version);
void vd_certs_purge(vd_req *r, const char *name, const char *version);
/* vd_certs_backup.c: POST /certificates/{n}/backup, POST /certificates/restore */
void vd_certs_backup(vd_req *r, const char *name, const char *version);
void vd_certs_restore(vd_req *r, const char *name, const char *version);
/* vd_certs_issuers.c: /certificates/contacts and /certificates/issuers[/{name}] */
void vd_certs_contacts_get(vd_req *r, const char *name, const char *version);
void vd_certs_contacts_set(vd_req *r, const char *name, const char *version);
void vd_certs_contacts_delete(vd_req *r, const char *name, const char *version);
void vd_certs_issuers_list(vd_req *r, const char *name, const char *version);
void vd_certs_issuer_get(vd_req *r, const char *name, const char *version);
void vd_certs_issuer_set(vd_req *r, const char *name, const char *version);
void vd_certs_issuer_update(vd_req *r, const char *name, const char *version);
void vd_certs_issuer_delete(vd_req *r, const char *name, const char *version);

/* A passwordless PKCS#12 (std base64, as a certificate's secret holds it) as PEM: private key
 * (PKCS#8) then certificates. *pem malloc'd, zeroise with vd_free_secret. */
kv_rv vd_certs_pfx_to_pem(const char *b64, char **pem, size_t *len);

#endif
