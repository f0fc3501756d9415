/* p11_internal.h - shared declarations of the PKCS#11 face.
 *
 * The C_* entry points (p11_entry.c) are thin shims over the kv_p11_* bridge functions
 * declared here; each bridge function returns a CK_RV. There is exactly one piece of global
 * mutable state, the module context `kv_p11_module` (p11_module.c). Its mutex guards the
 * session table, the object handle table, the slots' key caches and the login state, and is
 * never held across a vault round trip: network work happens on a part of a session (its find,
 * sign or verify state) that the calling thread has acquired exclusively, or on references
 * (kv_p11_kdata) it holds. */
#ifndef KV_P11_INTERNAL_H
#define KV_P11_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include "p11_v3.h"
#include "kv_client.h"
#include "kv_status.h"

#define KV_P11_MANUFACTURER "kvault"
#define KV_P11_MODEL "vault"
#define KV_P11_LIB_DESC "kvault: keys in a key vault"
#define KV_P11_LIB_MAJOR 0
#define KV_P11_LIB_MINOR 1
#define KV_P11_CACHE_TTL_SEC 30   /* default of [kvault] object_cache_seconds */
#define KV_P11_ID_LEN 16          /* CKA_ID length, see kv_p11_key_id() */
#define KV_P11_MAX_RAW_INPUT 1024 /* largest accepted input of CKM_RSA_PKCS / CKM_ECDSA */

/* p11_rv.c */
typedef enum {
    KV_P11_OP_GENERIC = 0, /* listing, attribute reads */
    KV_P11_OP_OBJECT,      /* resolving an object handle */
    KV_P11_OP_KEY,         /* resolving a key for an operation */
    KV_P11_OP_SIGN,        /* a signature */
} kv_p11_op;
CK_RV kv_p11_rv(kv_rv rv, kv_p11_op op);
/* kv_p11_rv plus a warning carrying the vault's message (never secret). */
CK_RV kv_p11_rv_log(const char *fn, const kv_err *err, kv_rv rv, kv_p11_op op);

/* ---- key data: one vault key version rendered as PKCS#11 attribute values ---- */

/* Immutable once built; shared by the slot cache and by operations; reference counted
 * (atomically, so it can be released without the module lock). */
typedef struct kv_p11_kdata {
    int refs;
    kv_key *key;               /* holds a vaultclient reference */
    struct timespec fetched;   /* CLOCK_MONOTONIC time of the vault read */
    CK_KEY_TYPE key_type;      /* CKK_RSA or CKK_EC */
    CK_BYTE id[KV_P11_ID_LEN]; /* CKA_ID */
    CK_ULONG modulus_bits;     /* RSA */
    uint8_t *modulus;          /* RSA: big-endian n */
    size_t modulus_len;
    uint8_t *pub_exp; /* RSA: big-endian e */
    size_t pub_exp_len;
    uint8_t *ec_params; /* EC: DER OBJECT IDENTIFIER of the named curve */
    size_t ec_params_len;
    uint8_t *ec_point; /* EC: DER OCTET STRING holding the uncompressed point */
    size_t ec_point_len;
    uint8_t *spki; /* DER SubjectPublicKeyInfo */
    size_t spki_len;
} kv_p11_kdata;

/* Builds kdata from a key that has its public part (takes its own reference on key). */
kv_rv kv_p11_kdata_new(kv_key *key, kv_p11_kdata **out, kv_err *err);
kv_p11_kdata *kv_p11_kdata_ref(kv_p11_kdata *kd);
void kv_p11_kdata_unref(kv_p11_kdata *kd);
bool kv_p11_kdata_fresh(const kv_p11_kdata *kd);
/* CKA_ID: the first 16 bytes of SHA-256("<vault name>/<key name>"). */
bool kv_p11_key_id(const char *vault, const char *name, CK_BYTE id[KV_P11_ID_LEN]);

/* ---- certificates and data objects (p11_cert.c, p11_data.c, p11_cache.c) ---- */

/* One vault certificate rendered as CKO_CERTIFICATE attribute values. */
typedef struct kv_p11_cert {
    char name[128];
    CK_BYTE id[KV_P11_ID_LEN]; /* CKA_ID of the linked key (the key of the same name) */
    uint8_t *der;              /* CKA_VALUE */
    size_t der_len;
    uint8_t *subject, *issuer, *serial, *spki; /* DER; serial = DER INTEGER */
    size_t subject_len, issuer_len, serial_len, spki_len;
    CK_BYTE start[8], end[8]; /* CK_DATE of notBefore / notAfter */
    bool has_start, has_end;
    CK_BYTE check[3]; /* CKA_CHECK_VALUE: SHA-1(value)[0:3] */
} kv_p11_cert;

/* Immutable snapshot of a slot's certificates or secret names; reference counted. */
typedef struct kv_p11_odata {
    int refs;
    struct timespec fetched;
    kv_p11_cert *certs; /* certificate snapshot */
    size_t ncerts;
    char **names; /* secret snapshot: names of unmanaged, enabled secrets */
    size_t nnames;
} kv_p11_odata;

/* ---- slots: one per configured vault ---- */

typedef struct kv_p11_slot {
    CK_SLOT_ID id;
    kv_vault *vault;
    char name[64];  /* vault name = token label */
    bool logged_in; /* login state is per token, shared by all sessions */
    CK_USER_TYPE user;
    kv_p11_kdata **cache; /* fetched keys (module lock) */
    size_t ncache, capcache;
    struct timespec keys_listed; /* when the cache was filled by a full listing */
    bool keys_listed_valid;      /* the cache holds exactly the vault's keys (until the TTL) */
    kv_p11_odata *certs;         /* cached certificates (module lock), NULL if none */
    kv_p11_odata *secrets;       /* cached secret names (module lock), NULL if none */
} kv_p11_slot;

/* ---- objects: (slot, key name, class) -> stable handle ---- */

typedef struct kv_p11_obj {
    CK_SLOT_ID slot;
    CK_OBJECT_CLASS cls; /* CKO_PRIVATE_KEY or CKO_PUBLIC_KEY */
    char name[128];
} kv_p11_obj;

/* ---- sessions ---- */

/* State of one sign or verify operation. */
typedef struct kv_p11_sigop {
    bool active;
    bool multipart; /* an Update was called: only Final may end it */
    CK_MECHANISM_TYPE mech;
    CK_OBJECT_HANDLE hkey;
    kv_p11_kdata *kd;    /* the key, referenced for the duration of the operation */
    kv_alg alg;          /* vault algorithm; KV_ALG_NONE for CKM_RSA_PKCS (chosen at the end) */
    const char *md_name; /* local hash for CKM_SHA*_ and CKM_ECDSA_SHA*, else NULL */
    EVP_MD_CTX *mdctx;
    uint8_t *buf; /* raw mechanisms: accumulated input */
    size_t buflen;
} kv_p11_sigop;

/* State of one encrypt or decrypt operation (single-part only). */
typedef struct kv_p11_cryptop {
    bool active;
    CK_MECHANISM_TYPE mech;
    kv_p11_kdata *kd; /* the key, referenced for the duration of the operation */
    kv_enc_alg alg;   /* the vault's name for the mechanism and its parameters */
} kv_p11_cryptop;

typedef struct kv_p11_session {
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    CK_FLAGS flags;
    unsigned busy; /* KV_P11_PART_* acquired by a thread */
    unsigned refs; /* threads holding a part */
    bool closed;   /* removed from the table while held: the last holder frees it */
    bool find_active;
    CK_OBJECT_HANDLE *found;
    size_t nfound, findpos;
    kv_p11_sigop sign;
    kv_p11_sigop verify;
    kv_p11_cryptop encrypt;
    kv_p11_cryptop decrypt;
    EVP_MD_CTX *digest; /* non-NULL while a digest operation is active */
    bool digest_multipart;
} kv_p11_session;

/* ---- the module context ---- */

typedef struct kv_p11_module_ctx {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when inflight drops to zero */
    bool initialized;
    bool hooks_registered; /* pthread_atfork / atexit done (once per process) */
    bool at_exit;          /* process exit has begun: OpenSSL may be gone, leak instead */
    pid_t pid;             /* process that initialised */
    unsigned inflight;     /* calls running without the lock that use ctx or kdata */
    kv_ctx *ctx;
    kv_p11_slot *slots;
    size_t nslots;
    kv_p11_session **sessions;
    size_t nsessions, capsessions;
    CK_SESSION_HANDLE next_session;
    long cache_ttl;   /* seconds cached keys and objects are trusted (kv_p11_cache_ttl) */
    kv_p11_obj *objs; /* handle h is objs[h - 1] */
    size_t nobjs, capobjs;
} kv_p11_module_ctx;

extern kv_p11_module_ctx kv_p11_module;

/* p11_module.c */
CK_RV kv_p11_initialize(CK_VOID_PTR init_args);
CK_RV kv_p11_finalize(CK_VOID_PTR reserved);
CK_RV kv_p11_get_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor);
void kv_p11_lock(void);
void kv_p11_unlock(void);
/* Enter/leave a call that runs without the lock but uses ctx or kdata. */
CK_RV kv_p11_enter(void);
void kv_p11_leave(void);
/* Copies s into a blank-padded fixed-width field (no NUL). */
void kv_p11_pad(CK_UTF8CHAR *dst, size_t width, const char *s);

/* p11_slot.c (callers hold the lock unless noted) */
kv_p11_slot *kv_p11_slot_get(CK_SLOT_ID id);
CK_RV kv_p11_slots_load(kv_ctx *ctx);
void kv_p11_slots_free(void);
CK_RV kv_p11_get_slot_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count);
CK_RV kv_p11_get_slot_info(CK_SLOT_ID id, CK_SLOT_INFO_PTR info);
CK_RV kv_p11_get_token_info(CK_SLOT_ID id, CK_TOKEN_INFO_PTR info);
/* Slot key cache. lookup returns a new reference to a fresh entry or NULL. */
kv_p11_kdata *kv_p11_cache_lookup(kv_p11_slot *slot, const char *name);
CK_RV kv_p11_cache_put(kv_p11_slot *slot, kv_p11_kdata *kd);
void kv_p11_cache_remove(kv_p11_slot *slot, const char *name);
void kv_p11_cache_invalidate(kv_p11_slot *slot);
/* Without the lock (caller in flight): the key `name` of slot `id` (cache, else one vault
 * read), or all keys of the slot (one listing; refreshes the cache). */
kv_rv kv_p11_slot_fetch_key(CK_SLOT_ID id, const char *name, kv_p11_kdata **out, kv_err *err);
kv_rv kv_p11_slot_list_keys(CK_SLOT_ID id, kv_p11_kdata ***out, size_t *n, kv_err *err);
void kv_p11_kdata_list_free(kv_p11_kdata **kds, size_t n);

/* p11_session.c */
CK_RV kv_p11_open_session(CK_SLOT_ID id, CK_FLAGS flags, CK_SESSION_HANDLE_PTR ph);
CK_RV kv_p11_close_session(CK_SESSION_HANDLE h);
CK_RV kv_p11_close_all_sessions(CK_SLOT_ID id);
CK_RV kv_p11_get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info);
CK_RV kv_p11_login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pinlen);
CK_RV kv_p11_logout(CK_SESSION_HANDLE h);
CK_RV kv_p11_session_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags);
/* Exclusive use of one part of a session by the calling thread (counts as in flight). A part
 * already held by another thread gives CKR_OPERATION_ACTIVE; different parts (a find and a
 * signature) may run concurrently, as the standard allows. */
#define KV_P11_PART_FIND 0x1u
#define KV_P11_PART_SIGN 0x2u
#define KV_P11_PART_VERIFY 0x4u
#define KV_P11_PART_ENCRYPT 0x8u
#define KV_P11_PART_DECRYPT 0x10u
#define KV_P11_PART_DIGEST 0x20u
CK_RV kv_p11_session_acquire(CK_SESSION_HANDLE h, unsigned part, kv_p11_session **out);
void kv_p11_session_release(kv_p11_session *s, unsigned part);
/* Shared use: only the slot id is returned (counts as in flight; kv_p11_leave after). */
CK_RV kv_p11_session_slot(CK_SESSION_HANDLE h, CK_SLOT_ID *slot);
void kv_p11_session_free(kv_p11_session *s);
void kv_p11_sessions_free_all(void);
void kv_p11_sigop_clear(kv_p11_sigop *op);
void kv_p11_find_clear(kv_p11_session *s);
size_t kv_p11_session_count(CK_SLOT_ID id, bool rw_only);

/* p11_object.c */
/* Handle of (slot, name, cls), creating it (lock held). 0 on allocation failure. */
CK_OBJECT_HANDLE kv_p11_obj_handle(CK_SLOT_ID slot, const char *name, CK_OBJECT_CLASS cls);
/* Copies the handle's entry (lock held). */
CK_RV kv_p11_obj_lookup(CK_OBJECT_HANDLE h, kv_p11_obj *out);
void kv_p11_objs_free(void);
/* The kdata of an object of the slot (without the lock; may read the vault). */
CK_RV kv_p11_obj_kdata(const char *fn, CK_SLOT_ID slot, CK_OBJECT_HANDLE h, kv_p11_op op,
                       kv_p11_obj *obj, kv_p11_kdata **out);
/* One attribute of an object: CKR_OK (value/len set, value may be NULL for length only),
 * CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_SENSITIVE. *len gets the full length. */
#define KV_P11_SCRATCH 128
CK_RV kv_p11_attr(const kv_p11_kdata *kd, CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type,
                  const void **value, CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH]);
bool kv_p11_obj_matches(const kv_p11_kdata *kd, CK_OBJECT_CLASS cls, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG count);
CK_RV kv_p11_get_attribute_value(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG count);
CK_RV kv_p11_get_object_size(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, CK_ULONG_PTR size);

/* p11_cache.c: TTL and per-slot certificate / secret snapshots */
/* Seconds a cached key, listing or object snapshot is trusted ([kvault] object_cache_seconds). */
long kv_p11_cache_ttl(void);
bool kv_p11_fresh(const struct timespec *fetched);
void kv_p11_odata_unref(kv_p11_odata *od);
/* Without the lock (caller in flight): a reference to the slot's fresh snapshot, fetching it
 * from the vault when missing or stale. */
kv_rv kv_p11_slot_certs(CK_SLOT_ID id, kv_p11_odata **out, kv_err *err);
kv_rv kv_p11_slot_secrets(CK_SLOT_ID id, kv_p11_odata **out, kv_err *err);
/* Drops the slot's snapshots (lock held). */
void kv_p11_objcache_invalidate(kv_p11_slot *slot);

/* p11_cert.c */
kv_rv kv_p11_cert_parse(const char *vault, const char *name, const uint8_t *der, size_t len,
                        kv_p11_cert *out, kv_err *err);
void kv_p11_cert_clear(kv_p11_cert *c);
const kv_p11_cert *kv_p11_cert_find(const kv_p11_odata *od, const char *name);
CK_RV kv_p11_cert_attr(const kv_p11_cert *c, CK_ATTRIBUTE_TYPE type, const void **value,
                       CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH]);

/* p11_data.c */
bool kv_p11_data_has(const kv_p11_odata *od, const char *name);
/* Attributes other than CKA_VALUE (which gives CKR_ATTRIBUTE_SENSITIVE here: the caller
 * fetches it with kv_p11_data_value). */
CK_RV kv_p11_data_attr(const char *name, CK_ATTRIBUTE_TYPE type, const void **value, CK_ULONG *len,
                       CK_BYTE scratch[KV_P11_SCRATCH]);
/* The secret's value (one vault read; never cached): *value must be kv_free_secret()'d. */
CK_RV kv_p11_data_value(CK_SLOT_ID slot, const char *name, char **value, size_t *len);

/* p11_find.c */
CK_RV kv_p11_find_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
CK_RV kv_p11_find(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max, CK_ULONG_PTR count);
CK_RV kv_p11_find_final(CK_SESSION_HANDLE h);

/* p11_mech.c */
CK_RV kv_p11_get_mechanism_list(CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count);
CK_RV kv_p11_get_mechanism_info(CK_SLOT_ID id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info);
/* Whether mech can sign with a key of that type (CKR_OK) or why not. */
CK_RV kv_p11_mech_check(CK_MECHANISM_TYPE mech, CK_KEY_TYPE kt, CK_ULONG bits);

/* p11_sign.c */
CK_RV kv_p11_sign_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);
CK_RV kv_p11_sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                  CK_ULONG_PTR siglen);
CK_RV kv_p11_sign_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len);
CK_RV kv_p11_sign_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR siglen);
/* Shared by sign and verify: set up op for mech on kd (mechanism parameters checked). */
CK_RV kv_p11_sigop_setup(kv_p11_sigop *op, CK_MECHANISM_PTR mech, kv_p11_kdata *kd);
CK_RV kv_p11_sigop_update(kv_p11_sigop *op, const CK_BYTE *data, CK_ULONG len);
/* The vault input for the accumulated data: digest (or RSNULL input) and the alg. */
CK_RV kv_p11_sigop_digest(kv_p11_sigop *op, uint8_t *out, size_t *outlen, kv_alg *alg);
EVP_MD *kv_p11_md_fetch(const char *name);

/* p11_verify.c */
CK_RV kv_p11_verify_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);
CK_RV kv_p11_verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                    CK_ULONG siglen);
CK_RV kv_p11_verify_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len);
CK_RV kv_p11_verify_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen);

/* p11_decrypt.c / p11_encrypt.c (shared mechanism logic in p11_decrypt.c) */
/* The vault algorithm of an RSA encryption mechanism and its parameters. */
CK_RV kv_p11_enc_alg(const CK_MECHANISM *mech, kv_enc_alg *alg);
void kv_p11_cryptop_clear(kv_p11_cryptop *op);
CK_RV kv_p11_decrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);
CK_RV kv_p11_decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                     CK_ULONG_PTR outlen);
CK_RV kv_p11_encrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);
CK_RV kv_p11_encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                     CK_ULONG_PTR outlen);

/* p11_digest.c */
void kv_p11_digest_clear(kv_p11_session *s);
CK_RV kv_p11_digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech);
CK_RV kv_p11_digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                    CK_ULONG_PTR outlen);
CK_RV kv_p11_digest_update(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len);
CK_RV kv_p11_digest_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);

/* p11_secret.c (owner: mechanisms work): AES secret-key objects and module session objects.
 * kv_p11_secret_create: C_CreateObject of a CKO_SECRET_KEY template (AES into a pool / managed
 * HSM with CKA_TOKEN=TRUE, a module session object otherwise).
 * kv_p11_sobj_destroy: destroys a module session object; CKR_OBJECT_HANDLE_INVALID when h is
 * not one (the caller then treats h as a vault object). */
CK_RV kv_p11_secret_create(CK_SESSION_HANDLE hs, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                           CK_OBJECT_HANDLE_PTR ph);
CK_RV kv_p11_sobj_destroy(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE h);

/* p11_random.c */
CK_RV kv_p11_generate_random(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len);
CK_RV kv_p11_seed_random(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len);

#endif
