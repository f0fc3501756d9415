/* vd_store_principals.h - vaultd's store for the principals of a tenant beyond the client
 * secret: kind (service principal, managed identity, user), registered client certificate
 * (DER + SHA-1 / SHA-256 thumbprints), the host a managed identity is bound to; listing,
 * lookup and deletion (with the principal's role assignments). Tenants are added here too. */
#ifndef VD_STORE_PRINCIPALS_H
#define VD_STORE_PRINCIPALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_status.h"
#include "vd_store.h"

#define VD_PKIND_SP "sp" /* service principal (secret or certificate) */
#define VD_PKIND_MI "mi" /* managed identity */
#define VD_PKIND_USER "user"

/* One principal as the admin API shows it. cert_der is malloc'd (vd_principal_rec_clear). */
typedef struct vd_principal_rec {
    char client_id[VD_ID_MAX]; /* == objectId == principalId in vaultd */
    char tenant_id[VD_ID_MAX];
    char display_name[256];
    char kind[8];          /* VD_PKIND_* */
    char thumb_sha1[41];   /* hex, lower case; "" = no certificate */
    char thumb_sha256[65]; /* hex, lower case */
    uint8_t *cert_der;     /* registered certificate, NULL if none */
    size_t cert_len;
    char host[256];     /* managed identities: the host it is bound to */
    bool user_assigned; /* managed identities: user-assigned (else system-assigned) */
    bool has_secret;    /* a client secret (users: password) hash is stored */
    char upn[256];      /* users: userPrincipalName */
    long long created;
} vd_principal_rec;

/* Adds the principal columns (idempotent; called from vd_store_init_schema). */
kv_rv vd_store_principals_migrate(vd_store *st);

/* Inserts p (salt / hash / iterations: the secret, iterations 0 = none) with the extra
 * attributes of rec (kind, display name, certificate, host). KV_ERR_CONFLICT if the id exists. */
kv_rv vd_store_principal_create(vd_store *st, const vd_principal *p, const vd_principal_rec *rec);
/* tenant_id NULL: any tenant. NOT_FOUND if absent. */
kv_rv vd_store_principal_get_rec(vd_store *st, const char *tenant_id, const char *client_id,
                                 vd_principal_rec *out);
/* The user of the tenant whose userPrincipalName (case-insensitive) or object id is id. */
kv_rv vd_store_user_get(vd_store *st, const char *tenant_id, const char *id, vd_principal_rec *out);
/* Principals of a tenant of one kind (NULL = all), by creation. *out: malloc'd array of *n
 * records (vd_principal_recs_free). */
kv_rv vd_store_principal_list(vd_store *st, const char *tenant_id, const char *kind,
                              vd_principal_rec **out, size_t *n);
/* The managed identity of the tenant (NULL = any) called name (case-insensitive). */
kv_rv vd_store_mi_by_name(vd_store *st, const char *tenant_id, const char *name,
                          vd_principal_rec *out);
/* Managed identity bound to host: by id (client_id / principal id) when id is given, else the
 * system-assigned one. NOT_FOUND if none. */
kv_rv vd_store_mi_for_host(vd_store *st, const char *host, const char *id, vd_principal_rec *out);
/* Re-binds a managed identity to host. */
kv_rv vd_store_mi_set_host(vd_store *st, const char *client_id, const char *host);
/* Deletes the principal and its role assignments in one transaction. NOT_FOUND if absent. */
kv_rv vd_store_principal_delete(vd_store *st, const char *tenant_id, const char *client_id);

/* ---- client-assertion jti values (replay protection across restarts) ----
 * id = SHA-256(lower(client_id) "|" jti), client = SHA-256(lower(client_id)), until = when the
 * entry may be forgotten (assertion exp + skew). */
/* Records id; KV_ERR_CONFLICT if an unexpired entry with this id exists (a replay). */
kv_rv vd_store_jti_add(vd_store *st, const uint8_t id[32], const uint8_t client[32],
                       long long until, long long now);
/* Removes id (undo of vd_store_jti_add when the request fails later). */
kv_rv vd_store_jti_remove(vd_store *st, const uint8_t id[32]);
/* Deletes the entries whose until is before now. */
kv_rv vd_store_jti_prune(vd_store *st, long long now);
/* Calls fn for every entry valid at now (until >= now), oldest first; stops when fn fails. */
kv_rv vd_store_jti_load(vd_store *st, long long now,
                        kv_rv (*fn)(void *arg, const uint8_t id[32], const uint8_t client[32],
                                    long long until),
                        void *arg);

void vd_principal_rec_clear(vd_principal_rec *rec);
void vd_principal_recs_free(vd_principal_rec *recs, size_t n);

#endif
