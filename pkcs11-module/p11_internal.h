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
#define KV_P11_MODEL_MHSM "managed HSM"
#define KV_P11_MODEL_POOL "local HSM pool"
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
    char label[192]; /* "NAME/VERSION" of an older version (key_versions = all), else "" */
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
    unsigned cache_gen; /* bumped by invalidations and the module's own writes (module lock): a
                         * vault read that began before one does not store its result */
} kv_p11_slot;

/* ---- objects: (slot, key name, class) -> stable handle ---- */

typedef struct kv_p11_obj {
    CK_SLOT_ID slot;
    CK_OBJECT_CLASS cls; /* CKO_PRIVATE_KEY or CKO_PUBLIC_KEY */
    char name[192];      /* object name: key name, or "NAME/VERSION" (kv_p11_kdata.label) */
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

/* State of one encrypt or decrypt operation (p11_crypt.c). Multi-part operations accumulate
 * their input and run once at the end (one vault call); the result is kept until delivered. */
typedef struct kv_p11_cryptop {
    bool active;
    bool multipart; /* an Update was called: only Final may end it */
    CK_MECHANISM_TYPE mech;
    kv_p11_kdata *kd; /* the key, referenced for the duration of the operation */
    kv_enc_alg alg;   /* the vault's name for the mechanism and its parameters */
    uint8_t *skey;    /* a module session key (local AES), else NULL */
    size_t skeylen;
    kv_sym_params sym;  /* AES: iv, aad (owned copy below), tag */
    uint8_t *aad;       /* GCM additional data */
    CK_BYTE_PTR gcm_iv; /* the caller's CK_GCM_PARAMS.pIv: receives the HSM's iv */
    uint8_t *buf;       /* accumulated input */
    size_t buflen, bufcap;
    uint8_t *result; /* computed output not yet delivered */
    size_t resultlen;
    bool has_result;
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
    struct kv_p11_sobj **sobjs; /* module session objects (p11_secret.c) */
    size_t nsobjs, capsobjs;
    CK_OBJECT_HANDLE next_sobj;
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
/* Ends the slot's login; a slot with a sealed credential locks its vault again (lock held). */
void kv_p11_slot_logout(kv_p11_slot *slot);
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
/* OpenSSL's name of a digest mechanism kvault offers (CKM_SHA_1, CKM_SHA224 ... CKM_SHA512),
 * else NULL. */
const char *kv_p11_hash_name(CK_MECHANISM_TYPE hash);
/* The Init and Update steps of sign and verify (part KV_P11_PART_SIGN / KV_P11_PART_VERIFY). */
CK_RV kv_p11_sigop_init(CK_SESSION_HANDLE h, unsigned part, CK_MECHANISM_PTR mech,
                        CK_OBJECT_HANDLE key);
CK_RV kv_p11_sigop_step_update(CK_SESSION_HANDLE h, unsigned part, CK_BYTE_PTR data, CK_ULONG len);

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
/* -- mechanisms work: secret keys, session objects, AES, wrap (p11_secret.c, p11_crypt.c,
 *    p11_wrap.c) -- */
/* Session object handles are KV_P11_SOBJ_BASE + n: never an index of the objs table. */
#define KV_P11_SOBJ_BASE ((CK_OBJECT_HANDLE)0x40000000UL)
#define KV_P11_IS_SOBJ(h) ((h) >= KV_P11_SOBJ_BASE)
#define KV_P11_MAX_SYM_INPUT (16u * 1024u * 1024u) /* largest accumulated AES input */
/* A module session object: a secret key in this process's memory (lock held to touch it). */
typedef struct kv_p11_sobj {
    CK_OBJECT_HANDLE handle;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session; /* destroyed when this session closes */
    CK_KEY_TYPE key_type;
    uint8_t *value; /* zeroised on destroy */
    size_t len;
    char label[128];
    CK_BYTE id[64];
    size_t idlen;
    CK_MECHANISM_TYPE keygen; /* CK_UNAVAILABLE_INFORMATION unless generated here */
    bool priv, encrypt, decrypt, wrap, unwrap, sensitive, extractable;
    bool always_sensitive, never_extractable, local;
} kv_p11_sobj;
/* A copy of session object h of slot (value duplicated: free with kv_p11_sobj_clear). */
CK_RV kv_p11_sobj_copy(CK_SLOT_ID slot, CK_OBJECT_HANDLE h, kv_p11_sobj *out);
void kv_p11_sobj_clear(kv_p11_sobj *o);
/* A new session object from template attributes and key bytes (copied); *ph its handle. */
CK_RV kv_p11_sobj_new(CK_SESSION_HANDLE hs, CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl,
                      CK_ULONG count, const uint8_t *value, size_t len, CK_MECHANISM_TYPE keygen,
                      CK_OBJECT_HANDLE_PTR ph);
/* Lock held: destroy the objects of session hs / every object (finalize); wipe after fork. */
void kv_p11_sobjs_session_closed(CK_SESSION_HANDLE hs);
void kv_p11_sobjs_free_all(void);
/* Lock held: appends the handles of the slot's session objects that match to s->found. */
CK_RV kv_p11_sobjs_find(kv_p11_session *s, const CK_ATTRIBUTE *tmpl, CK_ULONG count);
/* C_GetAttributeValue of a session object (the caller is in flight). */
CK_RV kv_p11_sobj_get_attributes(CK_SLOT_ID slot, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG count);
/* C_SetAttributeValue of a module session object: CKR_OBJECT_HANDLE_INVALID when h is not one
 * (the caller then treats h as a vault object); rules at kv_p11_sobj_set_attributes. */
CK_RV kv_p11_sobj_set_attributes(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *tmpl,
                                 CK_ULONG count);
/* CKO_SECRET_KEY attributes of a vault AES key (kdata of a KV_KTY_OCT key). */
CK_RV kv_p11_secret_attr(const kv_p11_kdata *kd, CK_ATTRIBUTE_TYPE type, const void **value,
                         CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH]);
/* Whether slot id offers AES (a managed HSM pool or a local pool) / AES key wrap with padding. */
bool kv_p11_slot_has_aes(CK_SLOT_ID id);
bool kv_p11_slot_has_kwp(CK_SLOT_ID id);
CK_RV kv_p11_generate_key(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                          CK_ULONG count, CK_OBJECT_HANDLE_PTR ph);
/* p11_crypt.c: multi-part encryption / decryption */
CK_RV kv_p11_encrypt_update(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                            CK_ULONG_PTR outlen);
CK_RV kv_p11_encrypt_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV kv_p11_decrypt_update(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
                            CK_ULONG_PTR outlen);
CK_RV kv_p11_decrypt_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
/* Local AES in vaultclient's library context: mode "GCM" / "CBC" / "WRAP" / "WRAP-PAD". */
CK_RV kv_p11_aes_local(const char *mode, bool encrypt, bool pad, const uint8_t *key, size_t keylen,
                       kv_sym_params *p, const uint8_t *in, size_t inlen, uint8_t **out,
                       size_t *outlen);
/* Local RSA encryption with a vault key's public part (k bytes into out). */
CK_RV kv_p11_rsa_encrypt_local(const kv_p11_kdata *kd, kv_enc_alg alg, const uint8_t *in,
                               size_t inlen, uint8_t *out, size_t *outlen);
/* p11_wrap.c */
CK_RV kv_p11_wrap_key(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE hwrap,
                      CK_OBJECT_HANDLE hkey, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV kv_p11_unwrap_key(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE hunwrap,
                        CK_BYTE_PTR in, CK_ULONG inlen, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                        CK_OBJECT_HANDLE_PTR ph);
/* Stores AES key bytes as a vault / pool key named by the template's CKA_LABEL (CKA_TOKEN=TRUE
 * in C_UnwrapKey / C_CreateObject / nothing else); *ph = its CKO_SECRET_KEY handle. */
CK_RV kv_p11_secret_import(CK_SESSION_HANDLE hs, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                           const uint8_t *value, size_t len, CK_OBJECT_HANDLE_PTR ph);

/* ---- p11_op.c: acquiring a session part with the state check of its operation (shared by
 * the steps of sign, verify, encrypt, decrypt, digest and find; on error the part is released
 * and *out is NULL) ---- */
/* For an Init step: CKR_ARGUMENTS_BAD unless args_ok, then CKR_OPERATION_ACTIVE if the part's
 * operation is active. */
CK_RV kv_p11_op_acquire_idle(CK_SESSION_HANDLE h, unsigned part, bool args_ok,
                             kv_p11_session **out);
/* For a single-part / Update / Final step: CKR_OPERATION_NOT_INITIALIZED unless the part's
 * operation is active; when single, CKR_OPERATION_ACTIVE if an Update made it multi-part. */
CK_RV kv_p11_op_acquire_active(CK_SESSION_HANDLE h, unsigned part, bool single,
                               kv_p11_session **out);
/* The two-call convention: true when out is NULL (a length query: *rv = CKR_OK) or *outlen is
 * less than need (*rv = CKR_BUFFER_TOO_SMALL); *outlen is then set to need. */
bool kv_p11_out_short(const CK_BYTE *out, CK_ULONG_PTR outlen, size_t need, CK_RV *rv);

/* ---- attribute getters (kv_p11_attr, kv_p11_secret_attr, kv_p11_cert_attr, kv_p11_data_attr,
 * the session objects'): set the answer of a getter whose parameters are named value, len and
 * scratch (a CK_BBOOL or CK_ULONG goes into scratch; bytes are pointed to) ---- */
#define KV_P11_SET_BOOL(v)                                                                         \
    do {                                                                                           \
        scratch[0] = (v) ? CK_TRUE : CK_FALSE;                                                     \
        *value = scratch;                                                                          \
        *len = sizeof(CK_BBOOL);                                                                   \
    } while (0)
#define KV_P11_SET_ULONG(v)                                                                        \
    do {                                                                                           \
        CK_ULONG u_ = (CK_ULONG)(v);                                                               \
        memcpy(scratch, &u_, sizeof(u_));                                                          \
        *value = scratch;                                                                          \
        *len = sizeof(CK_ULONG);                                                                   \
    } while (0)
#define KV_P11_SET_BYTES(p, n)                                                                     \
    do {                                                                                           \
        *value = (p);                                                                              \
        *len = (CK_ULONG)(n);                                                                      \
    } while (0)
/* p11_object.c: a getter's answer (r, v, len) for template entry a: whether it matches a's value
 * (C_FindObjectsInit), or copied into a by C_GetAttributeValue's rules (ulValueLen set;
 * CKR_BUFFER_TOO_SMALL if it does not fit; the entry's CK_RV returned). */
bool kv_p11_attr_matches(const CK_ATTRIBUTE *a, CK_RV r, const void *v, CK_ULONG len);
CK_RV kv_p11_attr_copy(CK_ATTRIBUTE *a, CK_RV r, const void *v, CK_ULONG len);
/* p11_object.c: CK_DATE (YYYYMMDD) of a broken-down UTC time / of a unix time (false if
 * unset or not representable). */
bool kv_p11_tm_date(const struct tm *tm, CK_BYTE out[8]);
bool kv_p11_ck_date(long long t, CK_BYTE out[8]);

/* ---- p11_tmpl.c: template values (CKR_ATTRIBUTE_VALUE_INVALID if malformed) ---- */
/* The vault key_ops bit (KV_OP_*) of a usage attribute (CKA_SIGN, CKA_VERIFY, CKA_ENCRYPT,
 * CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP), else 0. */
unsigned kv_p11_usage_op(CK_ATTRIBUTE_TYPE type);
/* A CK_BBOOL / CK_ULONG template value. */
CK_RV kv_p11_tmpl_bool(const CK_ATTRIBUTE *a, bool *out);
CK_RV kv_p11_tmpl_ulong(const CK_ATTRIBUTE *a, CK_ULONG *out);
/* CK_DATE (YYYYMMDD, UTC) as unix seconds: the day's first second, or its last when end;
 * an empty value = 0 (no date). */
CK_RV kv_p11_tmpl_date(const CK_ATTRIBUTE *a, bool end, long long *out);
/* CKA_LABEL as a vault key name ([0-9A-Za-z-]{1,127}). */
CK_RV kv_p11_tmpl_name(const CK_ATTRIBUTE *a, char name[128]);
/* The NID of DER CKA_EC_PARAMS naming a curve the vault supports (P-256, P-384, P-521,
 * secp256k1), else NID_undef (0). */
int kv_p11_tmpl_curve(const CK_ATTRIBUTE *a);
/* A template's CKA_ID (NULL = not given: CKR_OK) must be kvault's ID of vault/name
 * (kv_p11_key_id; CKR_GENERAL_ERROR if that cannot be computed). */
CK_RV kv_p11_tmpl_id(const char *vault, const char *name, const CK_ATTRIBUTE *a);

/* ---- p11_objmod.c: the vault side of C_GenerateKeyPair and C_CreateObject ---- */
/* A new key is never a new version of an existing one: CKR_OK when the slot's vault has no key
 * `name`, else (the name taken: KV_ERR_CONFLICT, or the read failed) kv_p11_write_rv(fn, ...). */
CK_RV kv_p11_key_absent(const kv_p11_slot *slot, const char *fn, const char *name);
/* After the vault created or imported k: sets its dates unless both are KV_KEEP (one more vault
 * call; kv_p11_write_rv(fn, ...) if that fails) and caches it (kv_p11_key_written; the handles
 * are set only when everything succeeded). */
CK_RV kv_p11_key_finish(const kv_p11_slot *slot, const char *fn, kv_key *k, long long nbf,
                        long long exp, CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv);

/* p11_random.c */
CK_RV kv_p11_generate_random(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len);
CK_RV kv_p11_seed_random(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len);

/* ---- key lifecycle (owner: lifecycle work; p11_keygen.c, p11_create.c, p11_objmod.c) ---- */

/* kvault's vendor attributes (CKA_VENDOR_DEFINED | "KV"...): CKA_KVAULT_HSM (CK_BBOOL, in a
 * C_GenerateKeyPair / C_CreateObject template: RSA-HSM / EC-HSM; readable on key objects) and
 * CKA_KVAULT_ENABLED (CK_BBOOL: the vault's enabled attribute; readable, settable). */
#define CKA_KVAULT_HSM (CKA_VENDOR_DEFINED | 0x4B560001UL)
#define CKA_KVAULT_ENABLED (CKA_VENDOR_DEFINED | 0x4B560002UL)
CK_RV kv_p11_generate_key_pair(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
                               CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
                               CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv);
CK_RV kv_p11_create_object(CK_SESSION_HANDLE hs, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                           CK_OBJECT_HANDLE_PTR ph);
CK_RV kv_p11_destroy_object(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho);
CK_RV kv_p11_set_attribute_value(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE ho, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG count);
/* p11_versions.c: older key versions as objects ([vault] key_versions = all). An older
 * version's objects are named (CKA_LABEL) "NAME/VERSION"; CKA_ID = first 16 bytes of
 * SHA-256("<vault>/NAME/VERSION"). kv_p11_kdata_label: the object name of kd. */
const char *kv_p11_kdata_label(const kv_p11_kdata *kd);
/* Without the lock: the kdata of "NAME/VERSION" (KV_ERR_NOT_FOUND unless key_versions = all). */
kv_rv kv_p11_version_fetch(kv_vault *v, const char *label, kv_p11_kdata **out, kv_err *err);
/* Without the lock: appends the older enabled versions of the n keys in (*kds)[0..n) to *kds
 * (an array with room for n, reallocated), *count = the new total. */
kv_rv kv_p11_versions_add(kv_vault *v, kv_p11_kdata ***kds, size_t *count, kv_err *err);
/* p11_objmod.c helpers shared by the three files (template values: p11_tmpl.c). kv_p11_write_begin
 * acquires the session for a vault write (valid, R/W: CKR_SESSION_READ_ONLY, user logged in:
 * CKR_USER_NOT_LOGGED_IN); release it with kv_p11_session_release(s, 0). */
CK_RV kv_p11_write_begin(CK_SESSION_HANDLE hs, kv_p11_session **out);
/* The same checks on a session acquired with kv_p11_session_acquire(hs, 0, &s), for callers
 * that check arguments, handles and templates first: R/W (CKR_SESSION_READ_ONLY), then, when
 * login is true, the user logged in (CKR_USER_NOT_LOGGED_IN). */
CK_RV kv_p11_write_check(kv_p11_session *s, bool login);
/* CK_RV of a failed vault write (logged). */
CK_RV kv_p11_write_rv(const char *fn, const kv_err *err, kv_rv krv);
/* After the module created or changed key k on slot: caches it (so a find sees it at once;
 * the slot's listing stays exact) and returns the handles of its objects (either may be NULL). */
CK_RV kv_p11_key_written(CK_SLOT_ID slot, kv_key *k, CK_OBJECT_HANDLE *hpub,
                         CK_OBJECT_HANDLE *hpriv);

#endif
