/* kv_hsm.c - the local HSM pool: a PKCS#11 consumer (dlopen'd modules, member tokens found by
 * label, a bounded set of logged-in sessions per member, fork-aware re-initialisation) and the
 * key operations vaultd and kvault.so need. See kv_hsm.h for the key reference format. */
#include "kv_hsm.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "kv_ecdsa.h"

/* p11-kit ships the PKCS#11 header; vaultclient does not depend on p11-kit itself. */
#include <p11-kit/pkcs11.h>

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL /* PKCS#11 3.0 (RFC 5649); p11-kit 0.24 lacks it */
#endif

#define KV_HSM_ID_LEN 16
#define KV_HSM_DEFAULT_SESSIONS 4

typedef struct kv_hsm_member {
    char *module;
    char *label;
    char *pin;
    char *so_pin; /* NULL unless configured (wrapping-key provisioning only) */
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    bool initialised_by_us; /* C_Initialize returned CKR_OK for us */
    bool have_slot;
    CK_SLOT_ID slot;
    time_t last_rescan;      /* last C_Finalize + C_Initialize to find a returned token */
    CK_SESSION_HANDLE *idle; /* idle logged-in sessions (max entries) */
    size_t nidle, nopen;
    long down_until;      /* spread pools: monotonic second until which the member rests (atomic) */
    unsigned long served; /* sign/encrypt/decrypt calls this member completed (atomic) */
    unsigned long failures; /* times it failed under an operation (atomic) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
} kv_hsm_member;

struct kv_hsm_pool {
    char *name;
    kv_hsm_member *m;
    size_t n;
    size_t max_sessions;
    pid_t pid;
    pthread_mutex_t lock; /* guards next */
    size_t next;
    bool spread;        /* kv_hsm_pool_set_spread: operations start at a rotating member */
    long retry_seconds; /* ... and a member that failed rests this long */
};

/* A parsed key reference. */
typedef struct kv_hsm_ref {
    char token[33];
    CK_BYTE id[64];
    CK_ULONG idlen;
    CK_OBJECT_CLASS cls; /* CKO_PRIVATE_KEY or CKO_SECRET_KEY */
} kv_hsm_ref;

/* ---- error mapping ---- */

static const struct {
    CK_RV rv;
    const char *name;
} kv_ckr_names[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_CANCEL, "CKR_CANCEL"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID"},
    {CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"},
};

static const char *kv_ckr_name(CK_RV rv)
{
    size_t i;

    for (i = 0; i < sizeof(kv_ckr_names) / sizeof(kv_ckr_names[0]); i++)
        if (kv_ckr_names[i].rv == rv)
            return kv_ckr_names[i].name;
    return "CKR_VENDOR_OR_UNKNOWN";
}

/* Errors after which the session (or the whole token connection) is no longer usable. */
static bool kv_ckr_session_broken(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
           rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_CRYPTOKI_NOT_INITIALIZED ||
           rv == CKR_SLOT_ID_INVALID;
}

/* Maps a failed call to kv_rv with "HSM pool 'P' ...: FN failed: CKR_X". */
static kv_rv kv_hsm_fail(const kv_hsm_pool *pool, kv_err *err, const char *fn, CK_RV rv)
{
    kv_rv k = KV_ERR_INTERNAL;
    const char *what = "error";

    if (kv_ckr_session_broken(rv) || rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ||
        rv == CKR_TOKEN_NOT_RECOGNIZED || rv == CKR_DEVICE_MEMORY || rv == CKR_SESSION_COUNT ||
        rv == CKR_USER_PIN_NOT_INITIALIZED) {
        k = KV_ERR_SERVER;
        what = "unavailable";
    } else if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
               rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE ||
               rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE ||
               rv == CKR_SIGNATURE_INVALID) {
        k = KV_ERR_BAD_REQUEST;
        what = "rejected the input";
    } else if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
               rv == CKR_KEY_TYPE_INCONSISTENT || rv == CKR_KEY_FUNCTION_NOT_PERMITTED ||
               rv == CKR_KEY_SIZE_RANGE || rv == CKR_CURVE_NOT_SUPPORTED) {
        k = KV_ERR_UNSUPPORTED;
        what = "does not support the operation";
    } else if (rv == CKR_HOST_MEMORY) {
        k = KV_ERR_NOMEM;
    }
    return kv_err_set(err, k, "HSM pool '%s' %s: %s failed: %s", pool ? pool->name : "?", what, fn,
                      kv_ckr_name(rv));
}

/* ---- small helpers ---- */

static char *kv_strdup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

static kv_rv kv_read_pin_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char buf[256];
    size_t len;

    if (f == NULL)
        return KV_ERR_CONFIG;
    if (fgets(buf, sizeof(buf), f) == NULL) {
        fclose(f);
        return KV_ERR_CONFIG;
    }
    fclose(f);
    len = strcspn(buf, "\r\n");
    buf[len] = '\0';
    *out = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return *out ? KV_OK : KV_ERR_NOMEM;
}

/* Token label from CK_TOKEN_INFO (32 bytes, space padded). */
static void kv_token_label(const CK_TOKEN_INFO *ti, char out[33])
{
    size_t n = 32;

    memcpy(out, ti->label, 32);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
}

/* ---- references ---- */

static void kv_pct_append(char *out, size_t outlen, size_t *o, const uint8_t *s, size_t n, bool all)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n && *o + 4 < outlen; i++) {
        unsigned char c = s[i];

        if (!all && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~')) {
            out[(*o)++] = (char)c;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        }
    }
    out[*o] = '\0';
}

static void kv_ref_format(const char *token, const CK_BYTE *id, size_t idlen, CK_OBJECT_CLASS cls,
                          char out[KV_HSM_REF_MAX])
{
    size_t o = 0;

    o = (size_t)snprintf(out, KV_HSM_REF_MAX, "pkcs11:token=");
    kv_pct_append(out, KV_HSM_REF_MAX, &o, (const uint8_t *)token, strlen(token), false);
    o += (size_t)snprintf(out + o, KV_HSM_REF_MAX - o, ";id=");
    kv_pct_append(out, KV_HSM_REF_MAX, &o, id, idlen, true);
    snprintf(out + o, KV_HSM_REF_MAX - o, ";type=%s",
             cls == CKO_SECRET_KEY ? "secret-key" : "private");
}

static int kv_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (at most max bytes). */
static bool kv_pct_decode(const char *s, size_t n, uint8_t *out, size_t max, size_t *outlen)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return false;
            hi = kv_hexval(s[i + 1]);
            lo = kv_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o >= max)
            return false;
        out[o++] = (uint8_t)c;
    }
    *outlen = o;
    return true;
}

static kv_rv kv_ref_parse(const char *s, kv_hsm_ref *ref, kv_err *err)
{
    const char *p;
    bool have_tok = false, have_id = false;
    size_t len;

    memset(ref, 0, sizeof(*ref));
    ref->cls = CKO_PRIVATE_KEY;
    if (s == NULL || strncmp(s, "pkcs11:", 7) != 0)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid HSM key reference");
    p = s + 7;
    while (*p != '\0') {
        const char *end = strchr(p, ';'), *eq = strchr(p, '=');
        size_t seglen = end ? (size_t)(end - p) : strlen(p);

        if (eq == NULL || eq > p + seglen)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid HSM key reference");
        if (strncmp(p, "token=", 6) == 0) {
            if (!kv_pct_decode(eq + 1, seglen - 6, (uint8_t *)ref->token, 32, &len))
                return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid token in HSM key reference");
            ref->token[len] = '\0';
            have_tok = true;
        } else if (strncmp(p, "id=", 3) == 0) {
            if (!kv_pct_decode(eq + 1, seglen - 3, ref->id, sizeof(ref->id), &len) || len == 0)
                return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid id in HSM key reference");
            ref->idlen = len;
            have_id = true;
        } else if (strncmp(p, "type=secret-key", 15) == 0 && seglen == 15) {
            ref->cls = CKO_SECRET_KEY;
        }
        p += seglen;
        if (*p == ';')
            p++;
    }
    if (!have_tok || !have_id)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "incomplete HSM key reference");
    return KV_OK;
}

/* ---- modules, tokens, sessions ---- */

/* C_Initialize (again after a fork). Caller holds m->lock. */
static CK_RV kv_member_initialize(kv_hsm_member *m)
{
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv == CKR_OK)
        m->initialised_by_us = true;
    else if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        rv = CKR_OK; /* another member (same module) or the host did it */
    return rv;
}

/* kv_member_rescan for a module that other members of a spread pool share: restarted only
 * when this pool initialised it and none of its members has a session in use (their idle
 * sessions are closed; they find their tokens again on next use). The other members' locks
 * are only tried (never waited for), so two members rescanning at once cannot deadlock.
 * Caller holds m->lock. */
static bool kv_member_rescan_shared(kv_hsm_pool *pool, kv_hsm_member *m, time_t now)
{
    kv_hsm_member **held = calloc(pool->n, sizeof(*held));
    size_t i, nheld = 0;
    bool ours = m->initialised_by_us, idle = held != NULL && m->nopen == m->nidle;

    for (i = 0; i < pool->n && idle; i++) {
        kv_hsm_member *o = &pool->m[i];

        if (o == m || strcmp(o->module, m->module) != 0)
            continue;
        if (pthread_mutex_trylock(&o->lock) != 0) {
            idle = false;
            break;
        }
        held[nheld++] = o;
        idle = o->nopen == o->nidle;
        ours = ours || o->initialised_by_us;
    }
    if (idle && ours) {
        m->last_rescan = now;
        held[nheld] = m; /* room: m is not among the others */
        for (i = 0; i <= nheld; i++) {
            kv_hsm_member *o = held[i];

            while (o->nidle > 0)
                o->f->C_CloseSession(o->idle[--o->nidle]);
            o->nopen = 0;
            o->have_slot = false;
            o->initialised_by_us = false;
        }
        m->f->C_Finalize(NULL);
        if (kv_member_initialize(m) != CKR_OK)
            m->initialised_by_us = true; /* still ours: a later rescan finalises and retries */
    }
    for (i = 0; i < nheld; i++)
        pthread_mutex_unlock(&held[i]->lock);
    free(held);
    return idle && ours;
}

/* A token that went away and came back stays invisible until the module re-reads its slots
 * (SoftHSMv2 does that only in C_Initialize). When this member alone uses the module, we
 * initialised it and it has no open session, restart the module, at most every 2 seconds; a
 * module shared with other members only in a spread pool (kv_member_rescan_shared).
 * true if it was restarted (then look again). Caller holds m->lock. */
static bool kv_member_rescan(kv_hsm_pool *pool, kv_hsm_member *m)
{
    time_t now = time(NULL);
    size_t i;

    if (m->f == NULL || m->nopen != 0 || now - m->last_rescan < 2)
        return false;
    /* members of one module-path share its handle (dlopen); the strings never change, the
     * other members' function pointers may (under their locks) */
    for (i = 0; i < pool->n; i++)
        if (&pool->m[i] != m && strcmp(pool->m[i].module, m->module) == 0)
            return pool->spread && kv_member_rescan_shared(pool, m, now);
    if (!m->initialised_by_us)
        return false;
    m->last_rescan = now;
    m->f->C_Finalize(NULL);
    m->initialised_by_us = false;
    if (kv_member_initialize(m) != CKR_OK) {
        m->f = NULL;
        dlclose(m->dl);
        m->dl = NULL;
    }
    return true;
}

static kv_rv kv_member_connect(kv_hsm_pool *pool, kv_hsm_member *m, kv_err *err);

/* Loads the module and finds the slot of the token. Caller holds m->lock. */
static kv_rv kv_member_connect(kv_hsm_pool *pool, kv_hsm_member *m, kv_err *err)
{
    CK_C_GetFunctionList gfl;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    CK_RV rv;
    kv_rv k = KV_OK;

    if (m->have_slot)
        return KV_OK;
    if (m->dl == NULL) {
        m->dl = dlopen(m->module, RTLD_NOW | RTLD_LOCAL);
        if (m->dl == NULL)
            return kv_err_set(err, KV_ERR_SERVER,
                              "HSM pool '%s' unavailable: cannot load PKCS#11 module %s",
                              pool->name, m->module);
        gfl = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
        if (gfl == NULL || gfl(&m->f) != CKR_OK || m->f == NULL) {
            dlclose(m->dl);
            m->dl = NULL;
            m->f = NULL;
            return kv_err_set(err, KV_ERR_SERVER,
                              "HSM pool '%s' unavailable: %s has no usable C_GetFunctionList",
                              pool->name, m->module);
        }
        rv = kv_member_initialize(m);
        if (rv != CKR_OK) {
            m->f = NULL;
            dlclose(m->dl);
            m->dl = NULL;
            return kv_err_set(err, KV_ERR_SERVER,
                              "HSM pool '%s' unavailable: C_Initialize failed: %s", pool->name,
                              kv_ckr_name(rv));
        }
    }
    rv = m->f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK)
        return kv_hsm_fail(pool, err, "C_GetSlotList", rv);
    slots = calloc(n + 1, sizeof(*slots));
    if (slots == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    rv = m->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK) {
        k = kv_hsm_fail(pool, err, "C_GetSlotList", rv);
        goto done;
    }
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char label[33];

        if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        kv_token_label(&ti, label);
        if (strcmp(label, m->label) == 0) {
            m->slot = slots[i];
            m->have_slot = true;
            break;
        }
    }
    if (!m->have_slot && kv_member_rescan(pool, m)) {
        free(slots);
        return kv_member_connect(pool, m, err);
    }
    if (!m->have_slot)
        k = kv_err_set(err, KV_ERR_SERVER,
                       "HSM pool '%s' unavailable: token '%s' not found (CKR_TOKEN_NOT_PRESENT)",
                       pool->name, m->label);
done:
    free(slots);
    return k;
}

/* Re-initialises after fork: the parent's sessions are not ours. */
static void kv_pool_after_fork(kv_hsm_pool *pool)
{
    size_t i;

    pthread_mutex_init(&pool->lock, NULL);
    for (i = 0; i < pool->n; i++) {
        kv_hsm_member *m = &pool->m[i];

        pthread_mutex_init(&m->lock, NULL);
        pthread_cond_init(&m->cond, NULL);
        m->nidle = m->nopen = 0;
        m->have_slot = false;
        m->initialised_by_us = false;
        if (m->f != NULL) {
            CK_RV rv = kv_member_initialize(m);

            if (rv == CKR_OK && !m->initialised_by_us) {
                /* still initialised from the parent's point of view: start afresh */
                m->f->C_Finalize(NULL);
                rv = kv_member_initialize(m);
            }
            (void)rv;
        }
    }
    pool->pid = getpid();
}

static void kv_pool_enter(kv_hsm_pool *pool)
{
    if (pool->pid != getpid())
        kv_pool_after_fork(pool);
}

/* Opens and logs in a new session. Caller holds m->lock. */
static kv_rv kv_member_open_session(kv_hsm_pool *pool, kv_hsm_member *m, CK_SESSION_HANDLE *out,
                                    kv_err *err)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv;
    kv_rv k;

    k = kv_member_connect(pool, m, err);
    if (k != KV_OK)
        return k;
    rv = m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        if (kv_ckr_session_broken(rv))
            m->have_slot = false;
        return kv_hsm_fail(pool, err, "C_OpenSession", rv);
    }
    rv = m->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)m->pin, (CK_ULONG)strlen(m->pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        m->f->C_CloseSession(s);
        if (kv_ckr_session_broken(rv))
            m->have_slot = false;
        return kv_hsm_fail(pool, err, "C_Login", rv);
    }
    *out = s;
    return KV_OK;
}

static kv_rv kv_session_get(kv_hsm_pool *pool, kv_hsm_member *m, CK_SESSION_HANDLE *out,
                            kv_err *err)
{
    kv_rv k = KV_OK;

    pthread_mutex_lock(&m->lock);
    while (m->nidle == 0 && m->nopen >= pool->max_sessions)
        pthread_cond_wait(&m->cond, &m->lock);
    if (m->nidle > 0) {
        *out = m->idle[--m->nidle];
    } else {
        k = kv_member_open_session(pool, m, out, err);
        if (k == KV_OK)
            m->nopen++;
    }
    pthread_mutex_unlock(&m->lock);
    return k;
}

#define KV_PUT_OK 0     /* back to the idle list */
#define KV_PUT_CLOSE 1  /* close this session (an operation may still be active in it) */
#define KV_PUT_BROKEN 2 /* the token is suspect: close every idle session, re-find the token */

/* Returns a session to its member. */
static void kv_session_put(kv_hsm_member *m, CK_SESSION_HANDLE s, int how)
{
    pthread_mutex_lock(&m->lock);
    if (how != KV_PUT_OK) {
        if (m->f != NULL)
            m->f->C_CloseSession(s);
        m->nopen--;
        while (how == KV_PUT_BROKEN && m->nidle > 0) {
            if (m->f != NULL)
                m->f->C_CloseSession(m->idle[m->nidle - 1]);
            m->nidle--;
            m->nopen--;
        }
        if (how == KV_PUT_BROKEN)
            m->have_slot = false;
    } else {
        m->idle[m->nidle++] = s;
    }
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static kv_hsm_member *kv_member_by_label(kv_hsm_pool *pool, const char *label)
{
    size_t i;

    for (i = 0; i < pool->n; i++)
        if (strcmp(pool->m[i].label, label) == 0)
            return &pool->m[i];
    return NULL;
}

/* ---- pool lifetime ---- */

kv_rv kv_hsm_pool_open(const char *name, const kv_hsm_member_cfg *members, size_t nmembers,
                       size_t sessions, kv_hsm_pool **out, kv_err *err)
{
    kv_hsm_pool *pool = NULL;
    kv_rv k = KV_OK, any = KV_ERR_SERVER;
    size_t i;

    kv_err_clear(err);
    if (name == NULL || members == NULL || nmembers == 0 || out == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "HSM pool: bad arguments");
    *out = NULL;
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL || (pool->name = strdup(name)) == NULL ||
        (pool->m = calloc(nmembers, sizeof(*pool->m))) == NULL) {
        k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    pool->max_sessions = sessions ? sessions : KV_HSM_DEFAULT_SESSIONS;
    pool->pid = getpid();
    pthread_mutex_init(&pool->lock, NULL);
    for (i = 0; i < nmembers; i++) {
        kv_hsm_member *m = &pool->m[i];

        pthread_mutex_init(&m->lock, NULL);
        pthread_cond_init(&m->cond, NULL);
        pool->n++;
        if (members[i].module == NULL || members[i].token_label == NULL ||
            strlen(members[i].token_label) > 32 ||
            (members[i].pin == NULL && members[i].pin_file == NULL)) {
            k = kv_err_set(err, KV_ERR_CONFIG,
                           "HSM pool '%s': member %zu needs a module, a token label (at most 32 "
                           "characters) and a PIN or PIN file",
                           name, i + 1);
            goto done;
        }
        m->module = strdup(members[i].module);
        m->label = strdup(members[i].token_label);
        m->idle = calloc(pool->max_sessions, sizeof(*m->idle));
        if (m->module == NULL || m->label == NULL || m->idle == NULL) {
            k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (members[i].pin != NULL) {
            m->pin = kv_strdup0(members[i].pin);
        } else if (kv_read_pin_file(members[i].pin_file, &m->pin) != KV_OK) {
            k = kv_err_set(err, KV_ERR_CONFIG, "HSM pool '%s': cannot read PIN file %s", name,
                           members[i].pin_file);
            goto done;
        }
        if (m->pin == NULL) {
            k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (members[i].so_pin != NULL) {
            m->so_pin = strdup(members[i].so_pin);
        } else if (members[i].so_pin_file != NULL &&
                   kv_read_pin_file(members[i].so_pin_file, &m->so_pin) != KV_OK) {
            k = kv_err_set(err, KV_ERR_CONFIG, "HSM pool '%s': cannot read SO PIN file %s", name,
                           members[i].so_pin_file);
            goto done;
        }
        if ((members[i].so_pin != NULL || members[i].so_pin_file != NULL) && m->so_pin == NULL) {
            k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    /* log in one session per member now, so configuration errors show at start */
    for (i = 0; i < pool->n; i++) {
        CK_SESSION_HANDLE s;
        kv_err e;

        kv_err_clear(&e);
        if (kv_session_get(pool, &pool->m[i], &s, &e) == KV_OK) {
            kv_session_put(&pool->m[i], s, KV_PUT_OK);
            any = KV_OK;
        } else if (err != NULL && any != KV_OK) {
            *err = e;
        }
    }
    k = any;
    if (k == KV_OK)
        kv_err_clear(err);
    *out = pool;
    pool = NULL;
done:
    if (pool != NULL && k != KV_OK && *out == NULL)
        kv_hsm_pool_free(pool);
    return k;
}

void kv_hsm_pool_free(kv_hsm_pool *pool)
{
    size_t i, j;

    if (pool == NULL)
        return;
    for (i = pool->n; i-- > 0;) {
        kv_hsm_member *m = &pool->m[i];

        if (m->f != NULL && pool->pid == getpid()) {
            for (j = 0; j < m->nidle; j++)
                m->f->C_CloseSession(m->idle[j]);
            if (m->initialised_by_us)
                m->f->C_Finalize(NULL);
        }
        if (m->dl != NULL)
            dlclose(m->dl);
        if (m->pin != NULL) {
            OPENSSL_cleanse(m->pin, strlen(m->pin));
            free(m->pin);
        }
        if (m->so_pin != NULL) {
            OPENSSL_cleanse(m->so_pin, strlen(m->so_pin));
            free(m->so_pin);
        }
        free(m->module);
        free(m->label);
        free(m->idle);
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->cond);
    }
    pthread_mutex_destroy(&pool->lock);
    free(pool->m);
    free(pool->name);
    free(pool);
}

const char *kv_hsm_pool_name(const kv_hsm_pool *pool)
{
    return pool ? pool->name : NULL;
}

size_t kv_hsm_pool_members(const kv_hsm_pool *pool)
{
    return pool ? pool->n : 0;
}

kv_rv kv_hsm_pool_check(kv_hsm_pool *pool, kv_err *err)
{
    kv_rv k = KV_ERR_SERVER;
    size_t i;

    if (pool == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no HSM pool");
    kv_pool_enter(pool);
    for (i = 0; i < pool->n && k != KV_OK; i++) {
        CK_SESSION_HANDLE s;
        CK_SESSION_INFO si;
        CK_RV rv;

        k = kv_session_get(pool, &pool->m[i], &s, err);
        if (k != KV_OK)
            continue;
        rv = pool->m[i].f->C_GetSessionInfo(s, &si);
        kv_session_put(&pool->m[i], s, rv != CKR_OK ? KV_PUT_BROKEN : KV_PUT_OK);
        if (rv != CKR_OK)
            k = kv_hsm_fail(pool, err, "C_GetSessionInfo", rv);
    }
    if (k == KV_OK)
        kv_err_clear(err);
    return k;
}

/* ---- object lookup ---- */

static CK_RV kv_find_one(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                         const CK_BYTE *id, CK_ULONG idlen, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, idlen},
    };
    CK_ULONG n = 0;
    CK_RV rv, rv2;

    *out = CK_INVALID_HANDLE;
    rv = f->C_FindObjectsInit(s, t, 2);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_FindObjects(s, out, 1, &n);
    rv2 = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv == CKR_OK && n == 0)
        *out = CK_INVALID_HANDLE;
    return rv;
}

/* An operation in progress: the member, a session and the key object. */
typedef struct kv_hsm_op {
    kv_hsm_pool *pool;
    kv_hsm_member *m;
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    kv_hsm_ref ref;
    int broken; /* KV_PUT_* for the session at the end */
} kv_hsm_op;

/* Parses ref, takes a session of its member and finds the key object (cls 0 = ref's class). */
static kv_rv kv_op_begin_on(kv_hsm_pool *pool, kv_hsm_member *m, CK_OBJECT_CLASS cls, kv_hsm_op *op,
                            kv_err *err);

/* ---- spreading and resting members (kv_hsm_pool_set_spread) ---- */

static long kv_mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec;
}

/* A member that failed rests for retry_seconds (spread pools only); one that answers is back. */
static void kv_member_mark(kv_hsm_pool *pool, kv_hsm_member *m, bool failed)
{
    if (failed)
        __atomic_add_fetch(&m->failures, 1, __ATOMIC_RELAXED);
    if (!pool->spread)
        return;
    __atomic_store_n(&m->down_until, failed ? kv_mono_now() + pool->retry_seconds : 0,
                     __ATOMIC_RELAXED);
}

static bool kv_member_resting(const kv_hsm_member *m, long now)
{
    long until = __atomic_load_n(&m->down_until, __ATOMIC_RELAXED);

    return until != 0 && now < until;
}

static size_t kv_pool_next(kv_hsm_pool *pool)
{
    size_t start;

    pthread_mutex_lock(&pool->lock);
    start = pool->next++;
    pthread_mutex_unlock(&pool->lock);
    return start;
}

void kv_hsm_pool_set_spread(kv_hsm_pool *pool, bool spread, unsigned retry_seconds)
{
    if (pool == NULL)
        return;
    pool->spread = spread;
    pool->retry_seconds = (long)retry_seconds;
}

/* kv_op_begin in a spread pool: members in turn, starting at a rotating one; resting members
 * (failed less than retry_seconds ago) only when no other member can serve the key. A member
 * that is unavailable rests; KV_ERR_SERVER when the key may be on an unavailable member. */
static kv_rv kv_op_begin_spread(kv_hsm_pool *pool, CK_OBJECT_CLASS cls, kv_hsm_op *op, kv_err *err)
{
    size_t start = kv_pool_next(pool), i;
    long now = kv_mono_now();
    bool unavailable = false;
    int pass;
    kv_err e;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < pool->n; i++) {
            kv_hsm_member *m = &pool->m[(start + i) % pool->n];
            kv_hsm_op alt;
            kv_rv k;

            if (kv_member_resting(m, now) != (pass == 1))
                continue;
            memset(&alt, 0, sizeof(alt));
            alt.pool = pool;
            alt.ref = op->ref;
            kv_err_clear(&e);
            k = kv_op_begin_on(pool, m, cls, &alt, &e);
            if (k == KV_OK) {
                kv_member_mark(pool, m, false);
                *op = alt;
                kv_err_clear(err);
                return KV_OK;
            }
            if (k == KV_ERR_SERVER) {
                kv_member_mark(pool, m, true);
                if (!unavailable && err != NULL)
                    *err = e;
                unavailable = true;
            } else if (k != KV_ERR_NOT_FOUND) {
                if (err != NULL)
                    *err = e;
                return k;
            }
        }
    }
    if (unavailable)
        return err != NULL ? err->rv : KV_ERR_SERVER;
    return kv_err_set(err, KV_ERR_NOT_FOUND, "HSM pool '%s': key object not found in any member",
                      pool->name);
}

/* Parses ref, takes a session and finds the key object (cls 0 = ref's class): on the member the
 * reference names, else (member unavailable or without the object) on any member holding a
 * replica with the same CKA_ID. */
static kv_rv kv_op_begin(kv_hsm_pool *pool, const char *ref, CK_OBJECT_CLASS cls, kv_hsm_op *op,
                         kv_err *err)
{
    kv_hsm_member *primary;
    size_t i;
    kv_rv k;

    memset(op, 0, sizeof(*op));
    op->pool = pool;
    kv_err_clear(err);
    if (pool == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "no HSM pool");
    kv_pool_enter(pool);
    k = kv_ref_parse(ref, &op->ref, err);
    if (k != KV_OK)
        return k;
    if (pool->spread && pool->n > 1)
        return kv_op_begin_spread(pool, cls, op, err);
    primary = kv_member_by_label(pool, op->ref.token);
    if (primary != NULL) {
        k = kv_op_begin_on(pool, primary, cls, op, err);
        if (k == KV_OK || (k != KV_ERR_SERVER && k != KV_ERR_NOT_FOUND) || pool->n == 1)
            return k;
    }
    /* a replica (kv_hsm_replicate: the same CKA_ID) on another member serves it too */
    for (i = 0; i < pool->n; i++) {
        kv_hsm_op alt;
        kv_err e;

        if (&pool->m[i] == primary)
            continue;
        memset(&alt, 0, sizeof(alt));
        alt.pool = pool;
        alt.ref = op->ref;
        if (kv_op_begin_on(pool, &pool->m[i], cls, &alt, &e) == KV_OK) {
            *op = alt;
            kv_err_clear(err);
            return KV_OK;
        }
    }
    if (primary == NULL)
        return kv_err_set(err, KV_ERR_NOT_FOUND,
                          "HSM pool '%s' has no member token '%s' holding this key", pool->name,
                          op->ref.token);
    return k;
}

/* kv_op_begin on member m (op->pool and op->ref set). */
static kv_rv kv_op_begin_on(kv_hsm_pool *pool, kv_hsm_member *m, CK_OBJECT_CLASS cls, kv_hsm_op *op,
                            kv_err *err)
{
    CK_RV rv;
    kv_rv k;
    int attempt;

    op->m = m;
    op->f = NULL;
    op->key = CK_INVALID_HANDLE;
    /* a session taken from the idle list may have died with its token: retry once */
    for (attempt = 0; attempt < 2; attempt++) {
        k = kv_session_get(pool, op->m, &op->s, err);
        if (k != KV_OK)
            return k;
        op->f = op->m->f;
        rv =
            kv_find_one(op->f, op->s, cls ? cls : op->ref.cls, op->ref.id, op->ref.idlen, &op->key);
        if (rv == CKR_OK)
            break;
        kv_session_put(op->m, op->s, kv_ckr_session_broken(rv) ? KV_PUT_BROKEN : KV_PUT_CLOSE);
        if (!kv_ckr_session_broken(rv) || attempt == 1) {
            op->f = NULL;
            return kv_hsm_fail(pool, err, "C_FindObjects", rv);
        }
    }
    if (op->key == CK_INVALID_HANDLE) {
        CK_TOKEN_INFO ti;
        char label[33] = "";

        /* an absent object may mean an absent token (SoftHSMv2 shows an empty slot when its
         * token directory disappears): tell "unavailable" from "not found" */
        rv = op->f->C_GetTokenInfo(op->m->slot, &ti);
        if (rv == CKR_OK)
            kv_token_label(&ti, label);
        if (rv != CKR_OK || strcmp(label, m->label) != 0 ||
            (ti.flags & CKF_TOKEN_INITIALIZED) == 0) {
            kv_session_put(op->m, op->s, KV_PUT_BROKEN);
            op->f = NULL;
            return kv_err_set(err, KV_ERR_SERVER,
                              "HSM pool '%s' unavailable: token '%s' is no longer present "
                              "(CKR_TOKEN_NOT_PRESENT)",
                              pool->name, m->label);
        }
        kv_session_put(op->m, op->s, KV_PUT_OK);
        op->f = NULL;
        return kv_err_set(err, KV_ERR_NOT_FOUND,
                          "HSM pool '%s': key object not found in token '%s'", pool->name,
                          m->label);
    }
    return KV_OK;
}

static void kv_op_end(kv_hsm_op *op)
{
    if (op->f != NULL)
        kv_session_put(op->m, op->s, op->broken);
    op->f = NULL;
}

/* Records a failed call: any failure after an *Init leaves the session suspect, so it is closed. */
static kv_rv kv_op_fail(kv_hsm_op *op, kv_err *err, const char *fn, CK_RV rv)
{
    op->broken = kv_ckr_session_broken(rv) ? KV_PUT_BROKEN : KV_PUT_CLOSE;
    if (op->broken == KV_PUT_BROKEN && op->m != NULL)
        kv_member_mark(op->pool, op->m, true);
    return kv_hsm_fail(op->pool, err, fn, rv);
}

typedef CK_RV (*kv_init_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
typedef CK_RV (*kv_run_fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

/* One-shot sign/encrypt/decrypt: init, size query, output. */
static kv_rv kv_op_oneshot(kv_hsm_op *op, CK_MECHANISM *mech, int which, const uint8_t *in,
                           size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    static const char *const names[][2] = {
        {"C_SignInit", "C_Sign"}, {"C_EncryptInit", "C_Encrypt"}, {"C_DecryptInit", "C_Decrypt"}};
    kv_init_fn init = which == 0   ? op->f->C_SignInit
                      : which == 1 ? op->f->C_EncryptInit
                                   : op->f->C_DecryptInit;
    kv_run_fn run = which == 0 ? op->f->C_Sign : which == 1 ? op->f->C_Encrypt : op->f->C_Decrypt;
    CK_ULONG len = 0;
    uint8_t *buf = NULL;
    CK_RV rv;

    *out = NULL;
    *outlen = 0;
    rv = init(op->s, mech, op->key);
    if (rv != CKR_OK)
        return kv_op_fail(op, err, names[which][0], rv);
    rv = run(op->s, (CK_BYTE_PTR)in, (CK_ULONG)inlen, NULL, &len);
    if (rv != CKR_OK)
        return kv_op_fail(op, err, names[which][1], rv);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        op->broken = KV_PUT_CLOSE;
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    }
    rv = run(op->s, (CK_BYTE_PTR)in, (CK_ULONG)inlen, buf, &len);
    if (rv != CKR_OK) {
        free(buf);
        return kv_op_fail(op, err, names[which][1], rv);
    }
    *out = buf;
    *outlen = len;
    __atomic_add_fetch(&op->m->served, 1, __ATOMIC_RELAXED);
    return KV_OK;
}

/* ---- public key ---- */

static kv_rv kv_get_attr(kv_hsm_op *op, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, uint8_t **out,
                         size_t *outlen, kv_err *err)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = op->f->C_GetAttributeValue(op->s, h, &a, 1);

    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return kv_hsm_fail(op->pool, err, "C_GetAttributeValue",
                           rv != CKR_OK ? rv : CKR_ATTRIBUTE_TYPE_INVALID);
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (a.pValue == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    rv = op->f->C_GetAttributeValue(op->s, h, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return kv_hsm_fail(op->pool, err, "C_GetAttributeValue", rv);
    }
    *out = a.pValue;
    *outlen = a.ulValueLen;
    return KV_OK;
}

static kv_rv kv_pub_from_op(kv_hsm_op *op, EVP_PKEY **pub, kv_err *err)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    uint8_t *p1 = NULL, *p2 = NULL;
    size_t l1 = 0, l2 = 0;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    BIGNUM *n = NULL, *e = NULL;
    ASN1_OCTET_STRING *pt = NULL;
    ASN1_OBJECT *oid = NULL;
    const unsigned char *cp;
    kv_rv k = KV_ERR_INTERNAL;
    CK_RV rv;

    *pub = NULL;
    rv = kv_find_one(op->f, op->s, CKO_PUBLIC_KEY, op->ref.id, op->ref.idlen, &h);
    if (rv != CKR_OK)
        return kv_op_fail(op, err, "C_FindObjects", rv);
    if (h == CK_INVALID_HANDLE)
        h = op->key; /* many tokens expose public parts on the private object */
    rv = op->f->C_GetAttributeValue(op->s, h, &a, 1);
    if (rv != CKR_OK)
        return kv_hsm_fail(op->pool, err, "C_GetAttributeValue", rv);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        goto done;
    if (kt == CKK_RSA) {
        if ((k = kv_get_attr(op, h, CKA_MODULUS, &p1, &l1, err)) != KV_OK ||
            (k = kv_get_attr(op, h, CKA_PUBLIC_EXPONENT, &p2, &l2, err)) != KV_OK)
            goto done;
        k = KV_ERR_INTERNAL;
        n = BN_bin2bn(p1, (int)l1, NULL);
        e = BN_bin2bn(p2, (int)l2, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            goto done;
        pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else if (kt == CKK_EC) {
        const char *sn;

        if ((k = kv_get_attr(op, h, CKA_EC_PARAMS, &p1, &l1, err)) != KV_OK ||
            (k = kv_get_attr(op, h, CKA_EC_POINT, &p2, &l2, err)) != KV_OK)
            goto done;
        k = KV_ERR_INTERNAL;
        cp = p1;
        oid = d2i_ASN1_OBJECT(NULL, &cp, (long)l1);
        sn = oid ? OBJ_nid2sn(OBJ_obj2nid(oid)) : NULL;
        if (sn == NULL || OBJ_obj2nid(oid) == NID_undef) {
            k = kv_err_set(err, KV_ERR_UNSUPPORTED, "HSM pool '%s': unsupported EC curve",
                           op->pool->name);
            goto done;
        }
        cp = p2;
        pt = d2i_ASN1_OCTET_STRING(NULL, &cp, (long)l2);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, sn, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt ? pt->data : p2,
                                              pt ? (size_t)pt->length : l2))
            goto done;
        pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        k = kv_err_set(err, KV_ERR_UNSUPPORTED, "HSM pool '%s': not an RSA or EC key",
                       op->pool->name);
        goto done;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    if (pctx == NULL || params == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, pub, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        k = kv_err_set(err, KV_ERR_INTERNAL, "HSM pool '%s': public key not decodable",
                       op->pool->name);
        goto done;
    }
    k = KV_OK;
done:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);
    BN_free(n);
    BN_free(e);
    ASN1_OCTET_STRING_free(pt);
    ASN1_OBJECT_free(oid);
    free(p1);
    free(p2);
    return k;
}

kv_rv kv_hsm_get_public(kv_hsm_pool *pool, const char *ref, EVP_PKEY **pub, kv_err *err)
{
    kv_hsm_op op;
    kv_rv k;

    if (pub == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    k = kv_op_begin(pool, ref, CKO_PRIVATE_KEY, &op, err);
    if (k != KV_OK)
        return k;
    k = kv_pub_from_op(&op, pub, err);
    kv_op_end(&op);
    return k;
}

/* ---- the pool wrapping key on a member ---- */

typedef struct kv_wrapkey {
    CK_OBJECT_HANDLE h; /* CK_INVALID_HANDLE = the member has none */
    bool trusted;       /* CKA_TRUSTED */
    bool have_fp;       /* CKA_ID is a 16-byte fingerprint */
    uint8_t fp[KV_HSM_FP_LEN];
} kv_wrapkey;

static CK_RV kv_find_wrapkey(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, kv_wrapkey *w)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)KV_HSM_WRAPKEY_LABEL, sizeof(KV_HSM_WRAPKEY_LABEL) - 1},
    };
    CK_BBOOL tr = CK_FALSE;
    CK_ATTRIBUTE atr = {CKA_TRUSTED, &tr, sizeof(tr)};
    CK_ATTRIBUTE aid = {CKA_ID, w->fp, sizeof(w->fp)};
    CK_ULONG n = 0;
    CK_RV rv, rv2;

    memset(w, 0, sizeof(*w));
    w->h = CK_INVALID_HANDLE;
    rv = f->C_FindObjectsInit(s, t, 2);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_FindObjects(s, &w->h, 1, &n);
    rv2 = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK || n == 0) {
        w->h = CK_INVALID_HANDLE;
        return rv;
    }
    if (f->C_GetAttributeValue(s, w->h, &atr, 1) == CKR_OK)
        w->trusted = tr == CK_TRUE;
    aid.pValue = w->fp;
    if (f->C_GetAttributeValue(s, w->h, &aid, 1) == CKR_OK && aid.ulValueLen == KV_HSM_FP_LEN)
        w->have_fp = true;
    return CKR_OK;
}

static void kv_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* CKA_VALUE_LEN of secret key h (0 if unknown). */
static CK_RV kv_secret_len(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                           CK_ULONG *out)
{
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE a = {CKA_VALUE_LEN, &vlen, sizeof(vlen)};
    CK_RV rv;

    rv = f->C_GetAttributeValue(s, h, &a, 1);
    if (rv == CKR_OK && vlen == 0) {
        /* SoftHSMv2 2.6 leaves CKA_VALUE_LEN at 0 on an unwrapped key (a restored backup or
         * a replica) and refuses it in the unwrap template: wrap the key once more under the
         * pool wrapping key and take the length (RFC 3394 adds 8 bytes to whole blocks) */
        CK_MECHANISM mech = {CKM_AES_KEY_WRAP, NULL, 0};
        uint8_t buf[64];
        CK_ULONG blen = sizeof(buf);
        kv_wrapkey w;

        rv = kv_find_wrapkey(f, s, &w);
        if (rv == CKR_OK && w.h != CK_INVALID_HANDLE &&
            f->C_WrapKey(s, &mech, w.h, h, buf, &blen) == CKR_OK && blen > 8)
            vlen = blen - 8;
        OPENSSL_cleanse(buf, sizeof(buf));
    }
    *out = vlen;
    return rv;
}

kv_rv kv_hsm_secret_bits(kv_hsm_pool *pool, const char *ref, int *bits, kv_err *err)
{
    CK_ULONG vlen = 0;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv;

    if (bits == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    k = kv_op_begin(pool, ref, CKO_SECRET_KEY, &op, err);
    if (k != KV_OK)
        return k;
    rv = kv_secret_len(op.f, op.s, op.key, &vlen);
    if (rv != CKR_OK)
        k = kv_op_fail(&op, err, "C_GetAttributeValue", rv);
    else if (vlen == 0)
        k = kv_err_set(err, KV_ERR_INTERNAL, "HSM pool '%s': the AES key size is unknown",
                       pool->name);
    else
        *bits = (int)(vlen * 8);
    kv_op_end(&op);
    return k;
}

kv_rv kv_hsm_find(kv_hsm_pool *pool, const char *ref, kv_err *err)
{
    kv_hsm_op op;
    kv_rv k = kv_op_begin(pool, ref, 0, &op, err);

    kv_op_end(&op);
    return k;
}

/* ---- generation ---- */

/* Picks a member round-robin, skipping unusable ones (and, in a spread pool, resting ones
 * while another member answers); returns a session on it. */
static kv_rv kv_pick_member(kv_hsm_pool *pool, kv_hsm_member **mp, CK_SESSION_HANDLE *s,
                            kv_err *err)
{
    size_t start = kv_pool_next(pool), i;
    long now = kv_mono_now();
    kv_rv k = KV_ERR_SERVER;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < pool->n; i++) {
            kv_hsm_member *m = &pool->m[(start + i) % pool->n];

            if (pool->spread && kv_member_resting(m, now) != (pass == 1))
                continue;
            if (!pool->spread && pass == 1)
                break;
            k = kv_session_get(pool, m, s, err);
            if (k == KV_OK) {
                kv_member_mark(pool, m, false);
                *mp = m;
                kv_err_clear(err);
                return KV_OK;
            }
            kv_member_mark(pool, m, true);
        }
    }
    return k;
}

kv_rv kv_hsm_generate(kv_hsm_pool *pool, const kv_hsm_keyspec *spec, const char *label,
                      char ref[KV_HSM_REF_MAX], EVP_PKEY **pub, kv_err *err)
{
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE id[KV_HSM_ID_LEN], exp[] = {1, 0, 1};
    CK_ULONG bits = 0, vlen = 0;
    CK_OBJECT_CLASS seccls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_MECHANISM mech = {0, NULL, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    CK_BBOOL ext = CK_FALSE, wwt = CK_FALSE;
    kv_wrapkey wk;
    unsigned char *params = NULL;
    int plen = 0;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv;

    memset(&op, 0, sizeof(op));
    op.pool = pool;
    kv_err_clear(err);
    if (pool == NULL || spec == NULL || label == NULL || ref == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (pub != NULL)
        *pub = NULL;
    kv_pool_enter(pool);
    switch (spec->type) {
    case KV_HSM_RSA:
        if (spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "RSA keys are 2048, 3072 or 4096 bits");
        bits = (CK_ULONG)spec->bits;
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        break;
    case KV_HSM_EC: {
        ASN1_OBJECT *o = OBJ_nid2obj(spec->curve_nid);

        if (spec->curve_nid != NID_X9_62_prime256v1 && spec->curve_nid != NID_secp384r1 &&
            spec->curve_nid != NID_secp521r1 && spec->curve_nid != NID_secp256k1)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "unsupported EC curve");
        plen = o ? i2d_ASN1_OBJECT(o, &params) : -1;
        if (plen <= 0)
            return kv_err_set(err, KV_ERR_INTERNAL, "cannot encode the curve");
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        break;
    }
    case KV_HSM_AES:
        if (spec->bits != 128 && spec->bits != 192 && spec->bits != 256)
            return kv_err_set(err, KV_ERR_INVALID_ARG, "AES keys are 128, 192 or 256 bits");
        vlen = (CK_ULONG)spec->bits / 8;
        mech.mechanism = CKM_AES_KEY_GEN;
        break;
    default:
        return kv_err_set(err, KV_ERR_INVALID_ARG, "unknown key type");
    }
    k = kv_pick_member(pool, &op.m, &op.s, err);
    if (k != KV_OK)
        goto done;
    op.f = op.m->f;
    rv = op.f->C_GenerateRandom(op.s, id, sizeof(id));
    if (rv == CKR_OK)
        rv = kv_find_wrapkey(op.f, op.s, &wk);
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, "C_GenerateRandom", rv);
        goto done;
    }
    /* with a pool wrapping key: exportable only wrapped (under a trusted key when it is one) */
    ext = wk.h != CK_INVALID_HANDLE ? CK_TRUE : CK_FALSE;
    wwt = ext && wk.trusted ? CK_TRUE : CK_FALSE;
    if (spec->type == KV_HSM_AES) {
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &seccls, sizeof(seccls)},
            {CKA_KEY_TYPE, &aes, sizeof(aes)},
            {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
            {CKA_TOKEN, &yes, sizeof(yes)},
            {CKA_PRIVATE, &yes, sizeof(yes)},
            {CKA_SENSITIVE, &yes, sizeof(yes)},
            {CKA_EXTRACTABLE, &ext, sizeof(ext)},
            {CKA_WRAP_WITH_TRUSTED, &wwt, sizeof(wwt)},
            {CKA_ENCRYPT, &yes, sizeof(yes)},
            {CKA_DECRYPT, &yes, sizeof(yes)},
            {CKA_WRAP, &yes, sizeof(yes)},
            {CKA_UNWRAP, &yes, sizeof(yes)},
            {CKA_LABEL, (void *)label, strlen(label)},
            {CKA_ID, id, sizeof(id)},
        };

        rv = op.f->C_GenerateKey(op.s, &mech, t, sizeof(t) / sizeof(t[0]), &hpriv);
        if (rv != CKR_OK) {
            k = kv_op_fail(&op, err, "C_GenerateKey", rv);
            goto done;
        }
        kv_ref_format(op.m->label, id, sizeof(id), CKO_SECRET_KEY, ref);
    } else {
        bool rsa = spec->type == KV_HSM_RSA;
        CK_ATTRIBUTE tpub[12], tpriv[12];
        CK_ULONG npub = 0, npriv = 0;

#define KV_ADD(t, n, ty, p, l)                                                                     \
    (t[n].type = (ty), t[n].pValue = (void *)(p), t[n++].ulValueLen = (l))
        KV_ADD(tpub, npub, CKA_TOKEN, &yes, sizeof(yes));
        KV_ADD(tpub, npub, CKA_PRIVATE, &no, sizeof(no));
        KV_ADD(tpub, npub, CKA_VERIFY, &yes, sizeof(yes));
        KV_ADD(tpub, npub, CKA_LABEL, label, strlen(label));
        KV_ADD(tpub, npub, CKA_ID, id, sizeof(id));
        KV_ADD(tpriv, npriv, CKA_TOKEN, &yes, sizeof(yes));
        KV_ADD(tpriv, npriv, CKA_PRIVATE, &yes, sizeof(yes));
        KV_ADD(tpriv, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
        KV_ADD(tpriv, npriv, CKA_EXTRACTABLE, &ext, sizeof(ext));
        KV_ADD(tpriv, npriv, CKA_WRAP_WITH_TRUSTED, &wwt, sizeof(wwt));
        KV_ADD(tpriv, npriv, CKA_SIGN, &yes, sizeof(yes));
        KV_ADD(tpriv, npriv, CKA_LABEL, label, strlen(label));
        KV_ADD(tpriv, npriv, CKA_ID, id, sizeof(id));
        if (rsa) {
            KV_ADD(tpub, npub, CKA_ENCRYPT, &yes, sizeof(yes));
            KV_ADD(tpub, npub, CKA_WRAP, &yes, sizeof(yes));
            KV_ADD(tpub, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
            KV_ADD(tpub, npub, CKA_PUBLIC_EXPONENT, exp, sizeof(exp));
            KV_ADD(tpriv, npriv, CKA_DECRYPT, &yes, sizeof(yes));
            KV_ADD(tpriv, npriv, CKA_UNWRAP, &yes, sizeof(yes));
        } else {
            KV_ADD(tpub, npub, CKA_EC_PARAMS, params, (CK_ULONG)plen);
        }
#undef KV_ADD
        rv = op.f->C_GenerateKeyPair(op.s, &mech, tpub, npub, tpriv, npriv, &hpub, &hpriv);
        if (rv != CKR_OK) {
            k = kv_op_fail(&op, err, "C_GenerateKeyPair", rv);
            goto done;
        }
        kv_ref_format(op.m->label, id, sizeof(id), CKO_PRIVATE_KEY, ref);
        if (pub != NULL) {
            memcpy(op.ref.id, id, sizeof(id));
            op.ref.idlen = sizeof(id);
            op.key = hpriv;
            k = kv_pub_from_op(&op, pub, err);
            if (k != KV_OK)
                goto done;
        }
    }
    k = KV_OK;
done:
    OPENSSL_free(params);
    kv_op_end(&op);
    return k;
}

/* ---- import ---- */

/* A BIGNUM parameter of pkey as big-endian bytes (malloc'd; secret ones are zeroised later). */
static bool kv_bn_param(const EVP_PKEY *pkey, const char *name, uint8_t **out, CK_ULONG *len)
{
    BIGNUM *bn = NULL;
    int n;

    *out = NULL;
    *len = 0;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return false;
    n = BN_num_bytes(bn);
    *out = OPENSSL_malloc(n > 0 ? (size_t)n : 1);
    if (*out != NULL)
        *len = (CK_ULONG)BN_bn2bin(bn, *out);
    BN_clear_free(bn);
    return *out != NULL;
}

/* Creates the objects of t (private / secret) and tpub (public, may be empty) on a member. */
static kv_rv kv_import_objects(kv_hsm_pool *pool, CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE *tpub,
                               CK_ULONG npub, CK_BYTE *id, CK_OBJECT_CLASS cls,
                               char ref[KV_HSM_REF_MAX], kv_err *err)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, hp = CK_INVALID_HANDLE;
    CK_BBOOL ext = CK_FALSE, wwt = CK_FALSE;
    CK_ATTRIBUTE *tt = NULL;
    kv_wrapkey wk;
    CK_ULONG i;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv;

    memset(&op, 0, sizeof(op));
    op.pool = pool;
    tt = calloc(n + 1, sizeof(*tt));
    if (tt == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    k = kv_pick_member(pool, &op.m, &op.s, err);
    if (k != KV_OK) {
        free(tt);
        return k;
    }
    op.f = op.m->f;
    rv = op.f->C_GenerateRandom(op.s, id, KV_HSM_ID_LEN);
    if (rv == CKR_OK)
        rv = kv_find_wrapkey(op.f, op.s, &wk);
    if (rv == CKR_OK) {
        /* as kv_hsm_generate: wrappable under the pool wrapping key when the member has one */
        ext = wk.h != CK_INVALID_HANDLE ? CK_TRUE : CK_FALSE;
        wwt = ext && wk.trusted ? CK_TRUE : CK_FALSE;
        for (i = 0; i < n; i++) {
            tt[i] = t[i];
            if (tt[i].type == CKA_EXTRACTABLE)
                tt[i].pValue = &ext;
        }
        tt[n].type = CKA_WRAP_WITH_TRUSTED;
        tt[n].pValue = &wwt;
        tt[n].ulValueLen = sizeof(wwt);
        rv = op.f->C_CreateObject(op.s, tt, n + 1, &h);
    }
    if (rv == CKR_OK && npub > 0) {
        rv = op.f->C_CreateObject(op.s, tpub, npub, &hp);
        if (rv != CKR_OK)
            op.f->C_DestroyObject(op.s, h);
    }
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, "C_CreateObject", rv);
        if (k == KV_ERR_INTERNAL)
            k = kv_err_set(err, KV_ERR_BAD_REQUEST, "HSM pool '%s' refused the key: %s", pool->name,
                           kv_ckr_name(rv));
    } else {
        kv_ref_format(op.m->label, id, KV_HSM_ID_LEN, cls, ref);
    }
    kv_op_end(&op);
    free(tt);
    return k;
}

kv_rv kv_hsm_import_pkey(kv_hsm_pool *pool, const EVP_PKEY *pkey, const char *label,
                         char ref[KV_HSM_REF_MAX], kv_err *err)
{
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    static const char *const rsa_names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    static const CK_ATTRIBUTE_TYPE rsa_types[] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT};
    CK_OBJECT_CLASS pcls = CKO_PRIVATE_KEY, ucls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt;
    CK_BYTE id[KV_HSM_ID_LEN];
    CK_ATTRIBUTE t[20], tp[12];
    CK_ULONG n = 0, np = 0, lens[8] = {0};
    uint8_t *vals[8] = {NULL}, *params = NULL, pubpt[200], *point = NULL;
    ASN1_OCTET_STRING *os = NULL;
    char group[64];
    size_t i, publen = 0;
    int plen = 0, ptlen = 0;
    kv_rv k = KV_ERR_INTERNAL;

    kv_err_clear(err);
    if (pool == NULL || pkey == NULL || label == NULL || ref == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    kv_pool_enter(pool);
#define KV_ADD(a, c, ty, p, l)                                                                     \
    (a[c].type = (ty), a[c].pValue = (void *)(p), a[c++].ulValueLen = (l))
    KV_ADD(t, n, CKA_CLASS, &pcls, sizeof(pcls));
    KV_ADD(t, n, CKA_KEY_TYPE, &kt, sizeof(kt));
    KV_ADD(t, n, CKA_TOKEN, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_PRIVATE, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_SENSITIVE, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_EXTRACTABLE, &no, sizeof(no));
    KV_ADD(t, n, CKA_SIGN, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_LABEL, label, strlen(label));
    KV_ADD(t, n, CKA_ID, id, sizeof(id));
    KV_ADD(tp, np, CKA_CLASS, &ucls, sizeof(ucls));
    KV_ADD(tp, np, CKA_KEY_TYPE, &kt, sizeof(kt));
    KV_ADD(tp, np, CKA_TOKEN, &yes, sizeof(yes));
    KV_ADD(tp, np, CKA_PRIVATE, &no, sizeof(no));
    KV_ADD(tp, np, CKA_VERIFY, &yes, sizeof(yes));
    KV_ADD(tp, np, CKA_LABEL, label, strlen(label));
    KV_ADD(tp, np, CKA_ID, id, sizeof(id));
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        kt = CKK_RSA;
        for (i = 0; i < 8; i++) {
            if (!kv_bn_param(pkey, rsa_names[i], &vals[i], &lens[i])) {
                k = kv_err_set(err, KV_ERR_INVALID_ARG, "the RSA key lacks %s", rsa_names[i]);
                goto done;
            }
            KV_ADD(t, n, rsa_types[i], vals[i], lens[i]);
        }
        KV_ADD(t, n, CKA_DECRYPT, &yes, sizeof(yes));
        KV_ADD(t, n, CKA_UNWRAP, &yes, sizeof(yes));
        KV_ADD(tp, np, CKA_MODULUS, vals[0], lens[0]);
        KV_ADD(tp, np, CKA_PUBLIC_EXPONENT, vals[1], lens[1]);
        KV_ADD(tp, np, CKA_ENCRYPT, &yes, sizeof(yes));
        KV_ADD(tp, np, CKA_WRAP, &yes, sizeof(yes));
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        ASN1_OBJECT *o;

        kt = CKK_EC;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) != 1 ||
            (o = OBJ_nid2obj(OBJ_sn2nid(group))) == NULL ||
            (plen = i2d_ASN1_OBJECT(o, &params)) <= 0 ||
            !kv_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &vals[0], &lens[0]) ||
            EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, pubpt, sizeof(pubpt),
                                            &publen) != 1) {
            k = kv_err_set(err, KV_ERR_INVALID_ARG, "unsupported EC key");
            goto done;
        }
        os = ASN1_OCTET_STRING_new();
        if (os == NULL || !ASN1_OCTET_STRING_set(os, pubpt, (int)publen) ||
            (ptlen = i2d_ASN1_OCTET_STRING(os, &point)) <= 0)
            goto done;
        KV_ADD(t, n, CKA_EC_PARAMS, params, (CK_ULONG)plen);
        KV_ADD(t, n, CKA_VALUE, vals[0], lens[0]);
        KV_ADD(t, n, CKA_DERIVE, &no, sizeof(no));
        KV_ADD(tp, np, CKA_EC_PARAMS, params, (CK_ULONG)plen);
        KV_ADD(tp, np, CKA_EC_POINT, point, (CK_ULONG)ptlen);
    } else {
        k = kv_err_set(err, KV_ERR_UNSUPPORTED, "only RSA and EC keys can be imported");
        goto done;
    }
#undef KV_ADD
    k = kv_import_objects(pool, t, n, tp, np, id, CKO_PRIVATE_KEY, ref, err);
done:
    for (i = 0; i < 8; i++)
        if (vals[i] != NULL)
            OPENSSL_clear_free(vals[i], lens[i]);
    OPENSSL_free(params);
    OPENSSL_free(point);
    ASN1_OCTET_STRING_free(os);
    return k;
}

kv_rv kv_hsm_import_aes(kv_hsm_pool *pool, const uint8_t *key, size_t len, const char *label,
                        char ref[KV_HSM_REF_MAX], kv_err *err)
{
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BYTE id[KV_HSM_ID_LEN];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &aes, sizeof(aes)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, label ? strlen(label) : 0},
        {CKA_ID, id, sizeof(id)},
        {CKA_VALUE, (void *)key, (CK_ULONG)len},
    };

    kv_err_clear(err);
    if (pool == NULL || key == NULL || label == NULL || ref == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (len != 16 && len != 24 && len != 32)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "AES keys are 16, 24 or 32 bytes");
    kv_pool_enter(pool);
    return kv_import_objects(pool, t, sizeof(t) / sizeof(t[0]), NULL, 0, id, CKO_SECRET_KEY, ref,
                             err);
}

kv_rv kv_hsm_destroy(kv_hsm_pool *pool, const char *ref, kv_err *err)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    kv_hsm_op op;
    kv_rv k = KV_OK;
    CK_RV rv;
    size_t round;

    /* the key and its replicas on other members (kv_op_begin finds the next copy) */
    for (round = 0; pool == NULL || round < pool->n; round++) {
        k = kv_op_begin(pool, ref, 0, &op, err);
        if (k == KV_ERR_NOT_FOUND) { /* absent, or every reachable copy is gone */
            kv_err_clear(err);
            return KV_OK;
        }
        if (k != KV_OK)
            return k;
        rv = op.f->C_DestroyObject(op.s, op.key);
        if (rv != CKR_OK) {
            k = kv_op_fail(&op, err, "C_DestroyObject", rv);
            kv_op_end(&op);
            return k;
        }
        if (op.ref.cls == CKO_PRIVATE_KEY &&
            kv_find_one(op.f, op.s, CKO_PUBLIC_KEY, op.ref.id, op.ref.idlen, &h) == CKR_OK &&
            h != CK_INVALID_HANDLE)
            op.f->C_DestroyObject(op.s, h);
        kv_op_end(&op);
    }
    kv_err_clear(err);
    return KV_OK;
}

/* ---- signatures and RSA decryption ---- */

static CK_MECHANISM_TYPE kv_ck_hash(const EVP_MD *md, CK_RSA_PKCS_MGF_TYPE *mgf)
{
    switch (md ? EVP_MD_get_type(md) : NID_undef) {
    case NID_sha1:
        *mgf = CKG_MGF1_SHA1;
        return CKM_SHA_1;
    case NID_sha224:
        *mgf = CKG_MGF1_SHA224;
        return CKM_SHA224;
    case NID_sha256:
        *mgf = CKG_MGF1_SHA256;
        return CKM_SHA256;
    case NID_sha384:
        *mgf = CKG_MGF1_SHA384;
        return CKM_SHA384;
    case NID_sha512:
        *mgf = CKG_MGF1_SHA512;
        return CKM_SHA512;
    default:
        *mgf = 0;
        return (CK_MECHANISM_TYPE)-1;
    }
}

/* DER DigestInfo { AlgorithmIdentifier(md, NULL), OCTET STRING digest }. */
static kv_rv kv_digest_info(const EVP_MD *md, const uint8_t *d, size_t dlen, uint8_t **out,
                            size_t *outlen)
{
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *alg = NULL;
    ASN1_OCTET_STRING *os = NULL;
    unsigned char *der = NULL;
    int len;
    kv_rv k = KV_ERR_INTERNAL;

    if (sig == NULL)
        return KV_ERR_NOMEM;
    X509_SIG_getm(sig, &alg, &os);
    if (!X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL, NULL) ||
        !ASN1_OCTET_STRING_set(os, d, (int)dlen))
        goto done;
    len = i2d_X509_SIG(sig, &der);
    if (len <= 0)
        goto done;
    *out = der;
    *outlen = (size_t)len;
    k = KV_OK;
done:
    X509_SIG_free(sig);
    return k;
}

kv_rv kv_hsm_sign(kv_hsm_pool *pool, const char *ref, kv_hsm_sig kind, const EVP_MD *md,
                  const uint8_t *in, size_t inlen, uint8_t **sig, size_t *siglen, kv_err *err)
{
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    uint8_t *di = NULL;
    size_t dilen = 0;
    kv_hsm_op op;
    kv_rv k;

    if (in == NULL || sig == NULL || siglen == NULL ||
        ((kind == KV_HSM_SIG_PKCS1 || kind == KV_HSM_SIG_PSS) &&
         (md == NULL || (size_t)EVP_MD_get_size(md) != inlen)))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad signature input");
    k = kv_op_begin(pool, ref, CKO_PRIVATE_KEY, &op, err);
    if (k != KV_OK)
        return k;
    switch (kind) {
    case KV_HSM_SIG_PKCS1:
        k = kv_digest_info(md, in, inlen, &di, &dilen);
        if (k != KV_OK) {
            kv_err_set(err, k, "cannot encode DigestInfo");
            goto done;
        }
        in = di;
        inlen = dilen;
        break;
    case KV_HSM_SIG_PKCS1_RAW:
        break;
    case KV_HSM_SIG_PSS:
        pss.hashAlg = kv_ck_hash(md, &pss.mgf);
        pss.sLen = inlen;
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
        break;
    case KV_HSM_SIG_ECDSA:
        mech.mechanism = CKM_ECDSA;
        break;
    }
    k = kv_op_oneshot(&op, &mech, 0, in, inlen, sig, siglen, err);
done:
    OPENSSL_free(di);
    kv_op_end(&op);
    return k;
}

/* MGF1 (RFC 8017 B.2.1) of seed into mask (XORed in). */
static bool kv_mgf1_xor(const EVP_MD *md, const uint8_t *seed, size_t seedlen, uint8_t *out,
                        size_t outlen)
{
    uint8_t h[EVP_MAX_MD_SIZE], cnt[4];
    size_t hlen = (size_t)EVP_MD_get_size(md), done = 0, i;
    uint32_t c = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL;

    while (ok && done < outlen) {
        cnt[0] = (uint8_t)(c >> 24);
        cnt[1] = (uint8_t)(c >> 16);
        cnt[2] = (uint8_t)(c >> 8);
        cnt[3] = (uint8_t)c;
        ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, seed, seedlen) == 1 &&
             EVP_DigestUpdate(ctx, cnt, 4) == 1 && EVP_DigestFinal_ex(ctx, h, NULL) == 1;
        for (i = 0; ok && i < hlen && done < outlen; i++)
            out[done++] ^= h[i];
        c++;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(h, sizeof(h));
    return ok;
}

/* EME-OAEP decoding (RFC 8017 7.1.2, empty label) of em (k bytes). Checks are accumulated
 * without early exit so that the failure reason does not leak through timing. */
static bool kv_oaep_decode(const EVP_MD *md, uint8_t *em, size_t k, uint8_t **out, size_t *outlen)
{
    uint8_t lhash[EVP_MAX_MD_SIZE];
    size_t hlen = (size_t)EVP_MD_get_size(md), i, idx = 0;
    unsigned int bad, found = 0;
    uint8_t *db;

    if (k < 2 * hlen + 2 || EVP_Digest("", 0, lhash, NULL, md, NULL) != 1)
        return false;
    db = em + 1 + hlen;
    if (!kv_mgf1_xor(md, db, k - hlen - 1, em + 1, hlen) ||
        !kv_mgf1_xor(md, em + 1, hlen, db, k - hlen - 1))
        return false;
    bad = em[0] != 0;
    bad |= CRYPTO_memcmp(db, lhash, hlen) != 0;
    for (i = hlen; i < k - hlen - 1; i++) {
        unsigned int is_one = db[i] == 1, is_zero = db[i] == 0;

        if (!found && is_one)
            idx = i;
        bad |= !found && !is_one && !is_zero;
        found |= is_one;
    }
    if (bad || !found)
        return false;
    *outlen = k - hlen - 1 - idx - 1;
    *out = malloc(*outlen ? *outlen : 1);
    if (*out == NULL)
        return false;
    memcpy(*out, db + idx + 1, *outlen);
    return true;
}

kv_rv kv_hsm_rsa_decrypt(kv_hsm_pool *pool, const char *ref, kv_hsm_rsa_pad pad, const uint8_t *in,
                         size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    const EVP_MD *md = pad == KV_HSM_PAD_OAEP_SHA1 ? EVP_sha1() : EVP_sha256();
    uint8_t *em = NULL;
    size_t emlen = 0;
    kv_hsm_op op;
    kv_rv k;

    if (in == NULL || out == NULL || outlen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (pad != KV_HSM_PAD_PKCS1) {
        memset(&oaep, 0, sizeof(oaep));
        oaep.hashAlg = kv_ck_hash(md, &oaep.mgf);
        oaep.source = CKZ_DATA_SPECIFIED;
        mech.mechanism = CKM_RSA_PKCS_OAEP;
        mech.pParameter = &oaep;
        mech.ulParameterLen = sizeof(oaep);
    }
    k = kv_op_begin(pool, ref, CKO_PRIVATE_KEY, &op, err);
    if (k != KV_OK)
        return k;
    k = kv_op_oneshot(&op, &mech, 2, in, inlen, out, outlen, err);
    if (k == KV_ERR_UNSUPPORTED || (k == KV_ERR_INTERNAL && pad == KV_HSM_PAD_OAEP_SHA256)) {
        /* Tokens without OAEP-SHA-256 (SoftHSMv2 2.6 takes only SHA-1): raw RSA inside the
         * token, OAEP decoding here. The private key still never leaves the token. */
        CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};

        kv_op_end(&op);
        k = kv_op_begin(pool, ref, CKO_PRIVATE_KEY, &op, err);
        if (k != KV_OK)
            return k;
        k = kv_op_oneshot(&op, &raw, 2, in, inlen, &em, &emlen, err);
        if (k == KV_OK && pad != KV_HSM_PAD_PKCS1) {
            /* C_Decrypt with CKM_RSA_X_509 returns k bytes (some tokens strip leading 0s) */
            size_t kk = inlen;
            uint8_t *full = calloc(1, kk);

            if (full == NULL || emlen > kk) {
                k = kv_err_set(err, KV_ERR_INTERNAL, "HSM pool '%s': raw RSA output", pool->name);
            } else {
                memcpy(full + (kk - emlen), em, emlen);
                if (!kv_oaep_decode(md, full, kk, out, outlen))
                    k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                                   "HSM pool '%s': RSA-OAEP decryption failed", pool->name);
                OPENSSL_cleanse(full, kk);
            }
            free(full);
        } else if (k == KV_OK) {
            k = kv_err_set(err, KV_ERR_UNSUPPORTED,
                           "HSM pool '%s': RSA PKCS#1 decryption "
                           "not supported by the token",
                           pool->name);
        }
    }
    if (k == KV_ERR_INTERNAL)
        k = kv_err_set(err, KV_ERR_BAD_REQUEST, "HSM pool '%s': RSA decryption failed", pool->name);
    if (em != NULL)
        OPENSSL_clear_free(em, emlen);
    kv_op_end(&op);
    return k;
}

/* ---- AES ---- */

/* AES-GCM encryption; gen: the token makes the iv (written to iv), else iv is the caller's. */
static kv_rv kv_gcm_encrypt(kv_hsm_pool *pool, const char *ref, bool gen, const uint8_t *aad,
                            size_t aadlen, const uint8_t *in, size_t inlen, uint8_t iv[12],
                            uint8_t **out, size_t *outlen, uint8_t tag[16], kv_err *err)
{
    CK_GCM_PARAMS gcm;
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    uint8_t *buf = NULL;
    size_t len = 0;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv;

    if ((in == NULL && inlen > 0) || iv == NULL || out == NULL || outlen == NULL || tag == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    k = kv_op_begin(pool, ref, CKO_SECRET_KEY, &op, err);
    if (k != KV_OK)
        return k;
    rv = gen ? op.f->C_GenerateRandom(op.s, iv, 12) : CKR_OK;
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, "C_GenerateRandom", rv);
        goto done;
    }
    memset(&gcm, 0, sizeof(gcm));
    gcm.pIv = iv;
    gcm.ulIvLen = 12;
    gcm.ulIvBits = 96;
    gcm.pAAD = (CK_BYTE_PTR)aad;
    gcm.ulAADLen = aadlen;
    gcm.ulTagBits = 128;
    k = kv_op_oneshot(&op, &mech, 1, in ? in : (const uint8_t *)"", inlen, &buf, &len, err);
    if (k != KV_OK)
        goto done;
    if (len != inlen + 16) {
        k = kv_err_set(err, KV_ERR_INTERNAL, "HSM pool '%s': unexpected GCM output length",
                       pool->name);
        goto done;
    }
    memcpy(tag, buf + inlen, 16);
    *out = buf;
    *outlen = inlen;
    buf = NULL;
done:
    free(buf);
    kv_op_end(&op);
    return k;
}

kv_rv kv_hsm_aes_gcm_encrypt(kv_hsm_pool *pool, const char *ref, const uint8_t *aad, size_t aadlen,
                             const uint8_t *in, size_t inlen, uint8_t iv[12], uint8_t **out,
                             size_t *outlen, uint8_t tag[16], kv_err *err)
{
    return kv_gcm_encrypt(pool, ref, true, aad, aadlen, in, inlen, iv, out, outlen, tag, err);
}

kv_rv kv_hsm_aes_gcm_encrypt_iv(kv_hsm_pool *pool, const char *ref, const uint8_t iv[12],
                                const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t inlen,
                                uint8_t **out, size_t *outlen, uint8_t tag[16], kv_err *err)
{
    uint8_t ivc[12];

    if (iv == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    memcpy(ivc, iv, sizeof(ivc));
    return kv_gcm_encrypt(pool, ref, false, aad, aadlen, in, inlen, ivc, out, outlen, tag, err);
}

kv_rv kv_hsm_aes_gcm_decrypt(kv_hsm_pool *pool, const char *ref, const uint8_t iv[12],
                             const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t inlen,
                             const uint8_t tag[16], uint8_t **out, size_t *outlen, kv_err *err)
{
    CK_GCM_PARAMS gcm;
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    uint8_t *ct = NULL;
    kv_hsm_op op;
    kv_rv k;

    if ((in == NULL && inlen > 0) || iv == NULL || tag == NULL || out == NULL || outlen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    ct = malloc(inlen + 16);
    if (ct == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    if (inlen > 0)
        memcpy(ct, in, inlen);
    memcpy(ct + inlen, tag, 16);
    k = kv_op_begin(pool, ref, CKO_SECRET_KEY, &op, err);
    if (k != KV_OK)
        goto done;
    memset(&gcm, 0, sizeof(gcm));
    gcm.pIv = (CK_BYTE_PTR)iv;
    gcm.ulIvLen = 12;
    gcm.ulIvBits = 96;
    gcm.pAAD = (CK_BYTE_PTR)aad;
    gcm.ulAADLen = aadlen;
    gcm.ulTagBits = 128;
    k = kv_op_oneshot(&op, &mech, 2, ct, inlen + 16, out, outlen, err);
    if (k != KV_OK && k != KV_ERR_NOMEM && k != KV_ERR_SERVER && k != KV_ERR_UNSUPPORTED)
        k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                       "HSM pool '%s': AES-GCM decryption failed (wrong tag, iv, aad or key)",
                       pool->name);
    kv_op_end(&op);
done:
    free(ct);
    return k;
}

kv_rv kv_hsm_aes_cbc(kv_hsm_pool *pool, const char *ref, bool encrypt, bool pad,
                     const uint8_t iv[16], const uint8_t *in, size_t inlen, uint8_t **out,
                     size_t *outlen, kv_err *err)
{
    CK_MECHANISM mech = {pad ? CKM_AES_CBC_PAD : CKM_AES_CBC, (void *)iv, 16};
    kv_hsm_op op;
    kv_rv k;

    if (iv == NULL || in == NULL || out == NULL || outlen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if ((!pad || !encrypt) && (inlen == 0 || inlen % 16 != 0))
        return kv_err_set(err, KV_ERR_BAD_REQUEST,
                          "AES-CBC input must be a non-empty multiple of 16 bytes");
    k = kv_op_begin(pool, ref, CKO_SECRET_KEY, &op, err);
    if (k != KV_OK)
        return k;
    k = kv_op_oneshot(&op, &mech, encrypt ? 1 : 2, in, inlen, out, outlen, err);
    kv_op_end(&op);
    return k;
}

kv_rv kv_hsm_aes_wrap(kv_hsm_pool *pool, const char *ref, bool wrap, bool pad, const uint8_t *in,
                      size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE gen = CKK_GENERIC_SECRET;
    CK_MECHANISM mech = {pad ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP, NULL, 0};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &gen, sizeof(gen)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_VALUE, (void *)in, (CK_ULONG)inlen},
    };
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_ULONG len = 0;
    uint8_t *buf = NULL;
    size_t blen = 0;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv;

    if (in == NULL || inlen == 0 || out == NULL || outlen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (!pad && (inlen % 8 != 0 || inlen < (wrap ? 16u : 24u)))
        return kv_err_set(err, KV_ERR_BAD_REQUEST,
                          "AES key wrap input must be a multiple of 8 bytes, at least %u",
                          wrap ? 16u : 24u);
    k = kv_op_begin(pool, ref, CKO_SECRET_KEY, &op, err);
    if (k != KV_OK)
        return k;
    if (wrap) {
        rv = op.f->C_CreateObject(op.s, t, sizeof(t) / sizeof(t[0]), &tmp);
        if (rv != CKR_OK) {
            k = kv_op_fail(&op, err, "C_CreateObject", rv);
            goto done;
        }
        rv = op.f->C_WrapKey(op.s, &mech, op.key, tmp, NULL, &len);
        if (rv == CKR_OK && (buf = malloc(len ? len : 1)) == NULL) {
            k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (rv == CKR_OK)
            rv = op.f->C_WrapKey(op.s, &mech, op.key, tmp, buf, &len);
        if (rv != CKR_OK) {
            k = kv_op_fail(&op, err, "C_WrapKey", rv);
            goto done;
        }
        blen = len;
    } else {
        rv = op.f->C_UnwrapKey(op.s, &mech, op.key, (CK_BYTE_PTR)in, (CK_ULONG)inlen, t, 6, &tmp);
        if (rv != CKR_OK) {
            k = kv_op_fail(&op, err, "C_UnwrapKey", rv);
            if (k == KV_ERR_INTERNAL || k == KV_ERR_UNSUPPORTED)
                k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                               "HSM pool '%s': AES key unwrap failed (integrity check): %s",
                               pool->name, kv_ckr_name(rv));
            goto done;
        }
        k = kv_get_attr(&op, tmp, CKA_VALUE, &buf, &blen, err);
        if (k != KV_OK)
            goto done;
    }
    *out = buf;
    *outlen = blen;
    buf = NULL;
    k = KV_OK;
done:
    if (tmp != CK_INVALID_HANDLE && op.f != NULL)
        op.f->C_DestroyObject(op.s, tmp);
    if (buf != NULL)
        OPENSSL_clear_free(buf, blen);
    kv_op_end(&op);
    return k;
}

/* ---- random ---- */

kv_rv kv_hsm_random(kv_hsm_pool *pool, uint8_t *out, size_t len, kv_err *err)
{
    kv_hsm_member *m = NULL;
    CK_SESSION_HANDLE s;
    kv_rv k;
    CK_RV rv;

    kv_err_clear(err);
    if (pool == NULL || (out == NULL && len > 0))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    kv_pool_enter(pool);
    k = kv_pick_member(pool, &m, &s, err);
    if (k != KV_OK)
        return k;
    rv = m->f->C_GenerateRandom(s, out, (CK_ULONG)len);
    kv_session_put(m, s,
                   rv == CKR_OK                ? KV_PUT_OK
                   : kv_ckr_session_broken(rv) ? KV_PUT_BROKEN
                                               : KV_PUT_CLOSE);
    if (rv != CKR_OK)
        return kv_hsm_fail(pool, err, "C_GenerateRandom", rv);
    return KV_OK;
}

/* ---- the pool wrapping key ---- */

#define KV_WRAP_FP_INFO "kvault pool wrapping key v1"
#define KV_BLOB_MAGIC "KVW1"
#define KV_BLOB_RSA 1
#define KV_BLOB_EC 2
#define KV_BLOB_AES 3
#define KV_ESCROW_ITER 200000
#define KV_ESCROW_HEAD "kvault-pool-wrap-escrow v1"

static kv_rv kv_wrap_fp_raw(const uint8_t *material, uint8_t fp[KV_HSM_FP_LEN])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, material, KV_HSM_WRAPKEY_LEN,
                  (const unsigned char *)KV_WRAP_FP_INFO, sizeof(KV_WRAP_FP_INFO) - 1, mac,
                  sizeof(mac), &maclen) == NULL ||
        maclen < KV_HSM_FP_LEN)
        return KV_ERR_INTERNAL;
    memcpy(fp, mac, KV_HSM_FP_LEN);
    OPENSSL_cleanse(mac, sizeof(mac));
    return KV_OK;
}

kv_rv kv_hsm_wrapkey_fingerprint(const uint8_t material[KV_HSM_WRAPKEY_LEN], char fp[KV_HSM_FP_HEX],
                                 kv_err *err)
{
    uint8_t raw[KV_HSM_FP_LEN];

    kv_err_clear(err);
    if (material == NULL || fp == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (kv_wrap_fp_raw(material, raw) != KV_OK)
        return kv_err_set(err, KV_ERR_INTERNAL, "cannot compute the fingerprint");
    kv_hex(raw, sizeof(raw), fp);
    return KV_OK;
}

kv_rv kv_hsm_wrapkey_status_get(kv_hsm_pool *pool, kv_hsm_wrapkey_status *st, kv_err *err)
{
    uint8_t first[KV_HSM_FP_LEN];
    size_t i, o = 0;
    kv_rv k = KV_ERR_SERVER;

    kv_err_clear(err);
    if (pool == NULL || st == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    memset(st, 0, sizeof(*st));
    st->consistent = true;
    kv_pool_enter(pool);
    st->members = pool->n;
    for (i = 0; i < pool->n; i++) {
        kv_hsm_member *m = &pool->m[i];
        CK_SESSION_HANDLE s;
        kv_wrapkey w;
        kv_err e;
        CK_RV rv;

        if (kv_session_get(pool, m, &s, &e) != KV_OK) {
            if (k != KV_OK && err != NULL)
                *err = e;
            continue;
        }
        rv = kv_find_wrapkey(m->f, s, &w);
        kv_session_put(m, s, rv == CKR_OK ? KV_PUT_OK : KV_PUT_BROKEN);
        if (rv != CKR_OK) {
            if (k != KV_OK)
                kv_hsm_fail(pool, err, "C_FindObjects", rv);
            continue;
        }
        k = KV_OK;
        st->reachable++;
        if (w.h == CK_INVALID_HANDLE) {
            o += (size_t)snprintf(st->missing + o,
                                  o < sizeof(st->missing) ? sizeof(st->missing) - o : 0, "%s%s",
                                  o ? ", " : "", m->label);
            if (o >= sizeof(st->missing))
                o = sizeof(st->missing) - 1;
            continue;
        }
        if (st->holding == 0 && w.have_fp) {
            memcpy(first, w.fp, sizeof(first));
            kv_hex(first, sizeof(first), st->fingerprint);
        } else if (!w.have_fp || st->fingerprint[0] == '\0' ||
                   CRYPTO_memcmp(first, w.fp, sizeof(first)) != 0) {
            st->consistent = false;
        }
        st->holding++;
        if (w.trusted)
            st->trusted++;
    }
    if (k == KV_OK)
        kv_err_clear(err);
    return k;
}

/* The SO / user dance on one member (see kv_hsm.h). Caller holds m->lock, no session open. */
static kv_rv kv_member_provision(kv_hsm_pool *pool, kv_hsm_member *m, const uint8_t *material,
                                 const uint8_t fp[KV_HSM_FP_LEN], bool *made, kv_err *err)
{
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE unwrap_tmpl[] = {
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_WRAP_WITH_TRUSTED, &yes, sizeof(yes)},
    };
    bool trusted = m->so_pin != NULL;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &aes, sizeof(aes)},
        {CKA_TOKEN, trusted ? &no : &yes, sizeof(CK_BBOOL)},
        {CKA_PRIVATE, trusted ? &no : &yes, sizeof(CK_BBOOL)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)KV_HSM_WRAPKEY_LABEL, sizeof(KV_HSM_WRAPKEY_LABEL) - 1},
        {CKA_ID, (void *)fp, KV_HSM_FP_LEN},
        {CKA_UNWRAP_TEMPLATE, unwrap_tmpl, (CK_ULONG)(trusted ? 2 : 1) * sizeof(CK_ATTRIBUTE)},
        {CKA_VALUE, (void *)material, KV_HSM_WRAPKEY_LEN},
        {CKA_TRUSTED, &yes, sizeof(yes)}, /* last: only with the SO PIN */
    };
    CK_ATTRIBUTE copy[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
    };
    CK_ULONG nt = sizeof(t) / sizeof(t[0]) - (trusted ? 0 : 1);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE, h = CK_INVALID_HANDLE;
    kv_wrapkey w;
    kv_rv k;
    CK_RV rv;

    *made = false;
    k = kv_member_connect(pool, m, err);
    if (k != KV_OK)
        return k;
    rv = m->f->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        if (kv_ckr_session_broken(rv))
            m->have_slot = false;
        return kv_hsm_fail(pool, err, "C_OpenSession", rv);
    }
    rv = m->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)m->pin, (CK_ULONG)strlen(m->pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        k = kv_hsm_fail(pool, err, "C_Login", rv);
        goto done;
    }
    rv = kv_find_wrapkey(m->f, s, &w);
    if (rv != CKR_OK) {
        k = kv_hsm_fail(pool, err, "C_FindObjects", rv);
        goto done;
    }
    if (w.h != CK_INVALID_HANDLE) {
        if (!w.have_fp || CRYPTO_memcmp(w.fp, fp, KV_HSM_FP_LEN) != 0)
            k = kv_err_set(err, KV_ERR_CONFLICT,
                           "HSM pool '%s': member token '%s' already holds a different pool "
                           "wrapping key",
                           pool->name, m->label);
        goto done;
    }
    if (trusted) {
        /* only the SO may set CKA_TRUSTED, and the SO may create only public objects: a
         * public session object (never written to disk), copied by the user into a private
         * token object (stored encrypted), then destroyed */
        m->f->C_Logout(s);
        rv = m->f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)m->so_pin, (CK_ULONG)strlen(m->so_pin));
        if (rv != CKR_OK) {
            k = kv_hsm_fail(pool, err, "C_Login (SO)", rv);
            if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID)
                k = kv_err_set(err, KV_ERR_CONFIG,
                               "HSM pool '%s': member token '%s': the SO PIN is refused (%s)",
                               pool->name, m->label, kv_ckr_name(rv));
            goto done;
        }
        rv = m->f->C_CreateObject(s, t, nt, &tmp);
        m->f->C_Logout(s);
        if (rv != CKR_OK) {
            k = kv_hsm_fail(pool, err, "C_CreateObject (SO)", rv);
            goto done;
        }
        rv = m->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)m->pin, (CK_ULONG)strlen(m->pin));
        if (rv == CKR_OK)
            rv = m->f->C_CopyObject(s, tmp, copy, 2, &h);
        if (rv != CKR_OK) {
            k = kv_hsm_fail(pool, err, "C_CopyObject", rv);
            goto done;
        }
    } else {
        rv = m->f->C_CreateObject(s, t, nt, &h);
        if (rv != CKR_OK) {
            k = kv_hsm_fail(pool, err, "C_CreateObject", rv);
            goto done;
        }
    }
    *made = true;
done:
    if (tmp != CK_INVALID_HANDLE)
        m->f->C_DestroyObject(s, tmp);
    m->f->C_CloseSession(s);
    return k;
}

kv_rv kv_hsm_wrapkey_provision(kv_hsm_pool *pool, const uint8_t material[KV_HSM_WRAPKEY_LEN],
                               size_t *provisioned, kv_err *err)
{
    uint8_t fp[KV_HSM_FP_LEN];
    size_t i, made = 0, reached = 0;
    kv_rv k = KV_OK, first = KV_OK;
    kv_err e;

    kv_err_clear(err);
    if (provisioned != NULL)
        *provisioned = 0;
    if (pool == NULL || material == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (kv_wrap_fp_raw(material, fp) != KV_OK)
        return kv_err_set(err, KV_ERR_INTERNAL, "cannot compute the fingerprint");
    kv_pool_enter(pool);
    for (i = 0; i < pool->n; i++) {
        kv_hsm_member *m = &pool->m[i];
        bool did = false;

        kv_err_clear(&e);
        pthread_mutex_lock(&m->lock);
        if (m->nopen != m->nidle) {
            k = kv_err_set(&e, KV_ERR_CONFLICT,
                           "HSM pool '%s': member token '%s' is in use; provision the pool "
                           "wrapping key while no operation runs",
                           pool->name, m->label);
        } else {
            /* every session closed: the login state can change (SO, then user) */
            while (m->nidle > 0 && m->f != NULL)
                m->f->C_CloseSession(m->idle[--m->nidle]);
            m->nidle = m->nopen = 0;
            k = kv_member_provision(pool, m, material, fp, &did, &e);
        }
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
        if (k == KV_ERR_SERVER && e.rv == KV_ERR_SERVER) {
            if (first == KV_OK && reached == 0 && err != NULL)
                *err = e; /* unreachable member: skipped unless none is reachable */
            continue;
        }
        reached++;
        if (k != KV_OK && first == KV_OK) {
            first = k;
            if (err != NULL)
                *err = e;
        }
        if (did)
            made++;
    }
    if (provisioned != NULL)
        *provisioned = made;
    if (first != KV_OK)
        return first;
    if (reached == 0)
        return err != NULL && err->rv != KV_OK
                   ? err->rv
                   : kv_err_set(err, KV_ERR_SERVER, "HSM pool '%s' unavailable", pool->name);
    kv_err_clear(err);
    return KV_OK;
}

/* ---- escrow ---- */

kv_rv kv_hsm_wrapkey_seal(const uint8_t material[KV_HSM_WRAPKEY_LEN], const char *passphrase,
                          char **text, kv_err *err)
{
    uint8_t salt[16], iv[12], tag[16], key[32], ct[KV_HSM_WRAPKEY_LEN], fp[KV_HSM_FP_LEN];
    char hs[33], hi[25], ht[33], hc[2 * KV_HSM_WRAPKEY_LEN + 1], hf[KV_HSM_FP_HEX];
    EVP_CIPHER_CTX *c = NULL;
    int len = 0;
    size_t n;
    kv_rv k = KV_ERR_INTERNAL;

    kv_err_clear(err);
    if (material == NULL || passphrase == NULL || *passphrase == '\0' || text == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "a passphrase is required");
    *text = NULL;
    if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1 ||
        kv_wrap_fp_raw(material, fp) != KV_OK ||
        PKCS5_PBKDF2_HMAC(passphrase, (int)strlen(passphrase), salt, sizeof(salt), KV_ESCROW_ITER,
                          EVP_sha256(), sizeof(key), key) != 1)
        goto done;
    c = EVP_CIPHER_CTX_new();
    if (c == NULL || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(c, NULL, &len, fp, sizeof(fp)) != 1 ||
        EVP_EncryptUpdate(c, ct, &len, material, KV_HSM_WRAPKEY_LEN) != 1 ||
        EVP_EncryptFinal_ex(c, ct + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag) != 1)
        goto done;
    kv_hex(salt, sizeof(salt), hs);
    kv_hex(iv, sizeof(iv), hi);
    kv_hex(tag, sizeof(tag), ht);
    kv_hex(ct, sizeof(ct), hc);
    kv_hex(fp, sizeof(fp), hf);
    n = strlen(KV_ESCROW_HEAD) + 400;
    *text = malloc(n);
    if (*text == NULL) {
        k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(*text, n,
             "%s\nfingerprint=%s\nkdf=pbkdf2-hmac-sha256\niterations=%d\nsalt=%s\niv=%s\n"
             "ct=%s\ntag=%s\n",
             KV_ESCROW_HEAD, hf, KV_ESCROW_ITER, hs, hi, hc, ht);
    k = KV_OK;
done:
    if (k == KV_ERR_INTERNAL)
        kv_err_set(err, k, "cannot seal the pool wrapping key");
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof(key));
    return k;
}

static bool kv_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    size_t i;

    if (slen != 2 * n)
        return false;
    for (i = 0; i < n; i++) {
        int hi = kv_hexval(s[2 * i]), lo = kv_hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return true;
}

/* The value of "name=" in an escrow document. */
static const char *kv_escrow_field(const char *text, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            p += nl + 1;
            *len = strcspn(p, "\r\n");
            return p;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return NULL;
}

kv_rv kv_hsm_wrapkey_unseal(const char *text, const char *passphrase,
                            uint8_t material[KV_HSM_WRAPKEY_LEN], kv_err *err)
{
    uint8_t salt[16], iv[12], tag[16], key[32], ct[KV_HSM_WRAPKEY_LEN], fp[KV_HSM_FP_LEN],
        out[KV_HSM_WRAPKEY_LEN + 16], chk[KV_HSM_FP_LEN];
    const char *v[6];
    size_t l[6] = {0};
    long iter;
    EVP_CIPHER_CTX *c = NULL;
    int len = 0, len2 = 0;
    kv_rv k = KV_ERR_BAD_REQUEST;

    kv_err_clear(err);
    if (text == NULL || passphrase == NULL || material == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    v[0] = kv_escrow_field(text, "fingerprint", &l[0]);
    v[1] = kv_escrow_field(text, "iterations", &l[1]);
    v[2] = kv_escrow_field(text, "salt", &l[2]);
    v[3] = kv_escrow_field(text, "iv", &l[3]);
    v[4] = kv_escrow_field(text, "ct", &l[4]);
    v[5] = kv_escrow_field(text, "tag", &l[5]);
    if (strncmp(text, KV_ESCROW_HEAD, strlen(KV_ESCROW_HEAD)) != 0 || v[0] == NULL ||
        v[1] == NULL || v[2] == NULL || v[3] == NULL || v[4] == NULL || v[5] == NULL ||
        !kv_unhex(v[0], l[0], fp, sizeof(fp)) || !kv_unhex(v[2], l[2], salt, sizeof(salt)) ||
        !kv_unhex(v[3], l[3], iv, sizeof(iv)) || !kv_unhex(v[4], l[4], ct, sizeof(ct)) ||
        !kv_unhex(v[5], l[5], tag, sizeof(tag)) || (iter = strtol(v[1], NULL, 10)) < 10000 ||
        iter > 100000000)
        return kv_err_set(err, KV_ERR_BAD_REQUEST, "not a pool wrapping key escrow document");
    if (PKCS5_PBKDF2_HMAC(passphrase, (int)strlen(passphrase), salt, sizeof(salt), (int)iter,
                          EVP_sha256(), sizeof(key), key) != 1) {
        k = KV_ERR_INTERNAL;
        goto done;
    }
    c = EVP_CIPHER_CTX_new();
    if (c == NULL || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
        EVP_DecryptUpdate(c, NULL, &len, fp, sizeof(fp)) != 1 ||
        EVP_DecryptUpdate(c, out, &len, ct, sizeof(ct)) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) != 1 ||
        EVP_DecryptFinal_ex(c, out + len, &len2) != 1 || len + len2 != KV_HSM_WRAPKEY_LEN ||
        kv_wrap_fp_raw(out, chk) != KV_OK || CRYPTO_memcmp(chk, fp, sizeof(fp)) != 0)
        goto done;
    memcpy(material, out, KV_HSM_WRAPKEY_LEN);
    k = KV_OK;
done:
    if (k == KV_ERR_BAD_REQUEST)
        kv_err_set(err, k,
                   "cannot open the pool wrapping key escrow (wrong passphrase or "
                   "altered document)");
    else if (k != KV_OK)
        kv_err_set(err, k, "cannot open the pool wrapping key escrow");
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(out, sizeof(out));
    return k;
}

/* ---- wrapped key blobs ---- */

/* Parsed view of a blob (pointers into it). */
typedef struct kv_blob {
    CK_MECHANISM_TYPE mech;
    int kind;
    const uint8_t *fp;
    const uint8_t *id;
    const uint8_t *label;
    size_t labellen;
    const uint8_t *pub;
    size_t publen;
    const uint8_t *wrapped;
    size_t wrappedlen;
} kv_blob;

static void kv_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t kv_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* magic(4) mech(4) kind(1) fp(16) id(16) labellen(2) label publen(4) pub wrappedlen(4) wrapped */
static bool kv_blob_parse(const uint8_t *b, size_t n, kv_blob *o)
{
    size_t p = 0;

    memset(o, 0, sizeof(*o));
    if (b == NULL || n < 4 + 4 + 1 + 2 * KV_HSM_FP_LEN + 2 || memcmp(b, KV_BLOB_MAGIC, 4) != 0)
        return false;
    p = 4;
    o->mech = kv_get32(b + p);
    p += 4;
    o->kind = b[p++];
    o->fp = b + p;
    p += KV_HSM_FP_LEN;
    o->id = b + p;
    p += KV_HSM_ID_LEN;
    o->labellen = (size_t)b[p] << 8 | b[p + 1];
    p += 2;
    if (n - p < o->labellen + 4)
        return false;
    o->label = b + p;
    p += o->labellen;
    o->publen = kv_get32(b + p);
    p += 4;
    if (n - p < o->publen || n - p - o->publen < 4)
        return false;
    o->pub = b + p;
    p += o->publen;
    o->wrappedlen = kv_get32(b + p);
    p += 4;
    if (n - p != o->wrappedlen || o->wrappedlen == 0)
        return false;
    o->wrapped = b + p;
    return o->kind >= KV_BLOB_RSA && o->kind <= KV_BLOB_AES &&
           (o->kind == KV_BLOB_AES) == (o->publen == 0);
}

kv_rv kv_hsm_blob_fingerprint(const uint8_t *blob, size_t bloblen, char fp[KV_HSM_FP_HEX],
                              kv_err *err)
{
    kv_blob b;

    kv_err_clear(err);
    if (fp == NULL || !kv_blob_parse(blob, bloblen, &b))
        return kv_err_set(err, KV_ERR_BAD_REQUEST, "not a wrapped HSM key");
    kv_hex(b.fp, KV_HSM_FP_LEN, fp);
    return KV_OK;
}

kv_rv kv_hsm_wrap_key(kv_hsm_pool *pool, const char *ref, uint8_t **blob, size_t *bloblen,
                      kv_err *err)
{
    static const CK_MECHANISM_TYPE mechs[] = {CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_KWP,
                                              CKM_AES_KEY_WRAP};
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE akt = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    CK_MECHANISM mech = {0, NULL, 0};
    CK_ULONG wlen = 0;
    kv_wrapkey w;
    EVP_PKEY *pub = NULL;
    uint8_t *label = NULL, *pubder = NULL, *wrapped = NULL, *out = NULL;
    size_t labellen = 0, publen = 0, p, i, total;
    int kind, dl;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv = CKR_MECHANISM_INVALID;

    if (blob == NULL || bloblen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    *blob = NULL;
    *bloblen = 0;
    k = kv_op_begin(pool, ref, 0, &op, err);
    if (k != KV_OK)
        return k;
    rv = kv_find_wrapkey(op.f, op.s, &w);
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, "C_FindObjects", rv);
        goto done;
    }
    if (w.h == CK_INVALID_HANDLE || !w.have_fp) {
        k = kv_err_set(err, KV_ERR_UNSUPPORTED,
                       "HSM pool '%s': member token '%s' has no pool wrapping key", pool->name,
                       op.m->label);
        goto done;
    }
    rv = op.f->C_GetAttributeValue(op.s, op.key, &akt, 1);
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, "C_GetAttributeValue", rv);
        goto done;
    }
    if (op.ref.cls == CKO_SECRET_KEY && kt == CKK_AES) {
        kind = KV_BLOB_AES;
    } else if (op.ref.cls == CKO_PRIVATE_KEY && (kt == CKK_RSA || kt == CKK_EC)) {
        kind = kt == CKK_RSA ? KV_BLOB_RSA : KV_BLOB_EC;
        k = kv_pub_from_op(&op, &pub, err);
        if (k != KV_OK)
            goto done;
        dl = i2d_PUBKEY(pub, &pubder);
        if (dl <= 0) {
            k = kv_err_set(err, KV_ERR_INTERNAL, "cannot encode the public key");
            goto done;
        }
        publen = (size_t)dl;
    } else {
        k = kv_err_set(err, KV_ERR_UNSUPPORTED,
                       "HSM pool '%s': only RSA, EC and AES keys can "
                       "be wrapped",
                       pool->name);
        goto done;
    }
    k = kv_get_attr(&op, op.key, CKA_LABEL, &label, &labellen, err);
    if (k != KV_OK)
        goto done;
    if (labellen > 0xffff)
        labellen = 0xffff;
    for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        mech.mechanism = mechs[i];
        wlen = 0;
        rv = op.f->C_WrapKey(op.s, &mech, w.h, op.key, NULL, &wlen);
        if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID)
            continue;
        if (rv != CKR_OK)
            break;
        wrapped = malloc(wlen ? wlen : 1);
        if (wrapped == NULL) {
            k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
            goto done;
        }
        rv = op.f->C_WrapKey(op.s, &mech, w.h, op.key, wrapped, &wlen);
        break;
    }
    if (rv == CKR_KEY_UNEXTRACTABLE) {
        k = kv_err_set(err, KV_ERR_UNSUPPORTED,
                       "HSM pool '%s': the key is not extractable (it was made before the pool "
                       "had a wrapping key) and cannot be wrapped",
                       pool->name);
        goto done;
    }
    if (rv == CKR_KEY_NOT_WRAPPABLE) {
        k = kv_err_set(err, KV_ERR_UNSUPPORTED,
                       "HSM pool '%s': the key may be wrapped only under a trusted key and the "
                       "pool wrapping key on member token '%s' is not trusted",
                       pool->name, op.m->label);
        goto done;
    }
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, "C_WrapKey", rv);
        goto done;
    }
    total = 4 + 4 + 1 + KV_HSM_FP_LEN + KV_HSM_ID_LEN + 2 + labellen + 4 + publen + 4 + wlen;
    out = malloc(total);
    if (out == NULL) {
        k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(out, KV_BLOB_MAGIC, 4);
    kv_put32(out + 4, (uint32_t)mech.mechanism);
    out[8] = (uint8_t)kind;
    p = 9;
    memcpy(out + p, w.fp, KV_HSM_FP_LEN);
    p += KV_HSM_FP_LEN;
    memset(out + p, 0, KV_HSM_ID_LEN);
    memcpy(out + p, op.ref.id, op.ref.idlen < KV_HSM_ID_LEN ? op.ref.idlen : KV_HSM_ID_LEN);
    p += KV_HSM_ID_LEN;
    out[p++] = (uint8_t)(labellen >> 8);
    out[p++] = (uint8_t)labellen;
    if (labellen > 0)
        memcpy(out + p, label, labellen);
    p += labellen;
    kv_put32(out + p, (uint32_t)publen);
    p += 4;
    if (publen > 0)
        memcpy(out + p, pubder, publen);
    p += publen;
    kv_put32(out + p, (uint32_t)wlen);
    p += 4;
    memcpy(out + p, wrapped, wlen);
    *blob = out;
    *bloblen = total;
    k = KV_OK;
done:
    free(wrapped);
    free(label);
    OPENSSL_free(pubder);
    EVP_PKEY_free(pub);
    kv_op_end(&op);
    return k;
}

/* Public key object template of pub (RSA: n, e; EC: params, point); buffers in bufs[0..3]. */
static kv_rv kv_pub_template(const EVP_PKEY *pub, CK_ATTRIBUTE *t, CK_ULONG *n, uint8_t *bufs[4],
                             CK_ULONG lens[4])
{
    char group[64];
    uint8_t pt[200];
    size_t ptlen = 0;
    ASN1_OCTET_STRING *os = NULL;
    ASN1_OBJECT *o;
    unsigned char *der = NULL;
    int l;

    if (EVP_PKEY_is_a(pub, "RSA")) {
        if (!kv_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &bufs[0], &lens[0]) ||
            !kv_bn_param(pub, OSSL_PKEY_PARAM_RSA_E, &bufs[1], &lens[1]))
            return KV_ERR_INVALID_ARG;
        t[*n].type = CKA_MODULUS;
        t[*n].pValue = bufs[0];
        t[(*n)++].ulValueLen = lens[0];
        t[*n].type = CKA_PUBLIC_EXPONENT;
        t[*n].pValue = bufs[1];
        t[(*n)++].ulValueLen = lens[1];
        return KV_OK;
    }
    if (!EVP_PKEY_is_a(pub, "EC") ||
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        (o = OBJ_nid2obj(OBJ_sn2nid(group))) == NULL || (l = i2d_ASN1_OBJECT(o, &der)) <= 0)
        return KV_ERR_INVALID_ARG;
    bufs[2] = der;
    lens[2] = (CK_ULONG)l;
    der = NULL;
    if (EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen) !=
            1 ||
        (os = ASN1_OCTET_STRING_new()) == NULL || !ASN1_OCTET_STRING_set(os, pt, (int)ptlen) ||
        (l = i2d_ASN1_OCTET_STRING(os, &der)) <= 0) {
        ASN1_OCTET_STRING_free(os);
        return KV_ERR_INVALID_ARG;
    }
    ASN1_OCTET_STRING_free(os);
    bufs[3] = der;
    lens[3] = (CK_ULONG)l;
    t[*n].type = CKA_EC_PARAMS;
    t[*n].pValue = bufs[2];
    t[(*n)++].ulValueLen = lens[2];
    t[*n].type = CKA_EC_POINT;
    t[*n].pValue = bufs[3];
    t[(*n)++].ulValueLen = lens[3];
    return KV_OK;
}

/* Checks that the private key object h matches pub: a signature made in the token verifies. */
static bool kv_pair_matches(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                            EVP_PKEY *pub, bool rsa)
{
    static const uint8_t prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    uint8_t dg[32], di[sizeof(prefix) + 32], sig[1024], der[300];
    CK_ULONG siglen = sizeof(sig);
    size_t derlen = sizeof(der);
    CK_MECHANISM mech = {rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0};
    EVP_PKEY_CTX *c = NULL;
    bool ok = false;

    if (RAND_bytes(dg, sizeof(dg)) != 1)
        return false;
    memcpy(di, prefix, sizeof(prefix));
    memcpy(di + sizeof(prefix), dg, sizeof(dg));
    if (f->C_SignInit(s, &mech, h) != CKR_OK)
        return false;
    if (f->C_Sign(s, rsa ? di : dg, rsa ? sizeof(di) : sizeof(dg), sig, &siglen) != CKR_OK)
        return false;
    c = EVP_PKEY_CTX_new(pub, NULL);
    if (c == NULL || EVP_PKEY_verify_init(c) <= 0)
        goto done;
    if (rsa) {
        ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) > 0 &&
             EVP_PKEY_verify(c, sig, siglen, dg, sizeof(dg)) == 1;
    } else {
        ok = kv_ecdsa_raw_to_der(sig, siglen, der, &derlen) == KV_OK &&
             EVP_PKEY_verify(c, der, derlen, dg, sizeof(dg)) == 1;
    }
done:
    EVP_PKEY_CTX_free(c);
    return ok;
}

/* Unwraps b on member m (session s, wrapping key w) with CKA_ID id; fills ref. */
static kv_rv kv_unwrap_on(kv_hsm_pool *pool, kv_hsm_member *m, CK_SESSION_HANDLE s,
                          const kv_wrapkey *w, const kv_blob *b, const char *label, size_t labellen,
                          const CK_BYTE *id, char ref[KV_HSM_REF_MAX], int *put, kv_err *err)
{
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL wwt = w->trusted ? CK_TRUE : CK_FALSE;
    CK_OBJECT_CLASS cls = b->kind == KV_BLOB_AES ? CKO_SECRET_KEY : CKO_PRIVATE_KEY,
                    pcls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = b->kind == KV_BLOB_AES ? CKK_AES : b->kind == KV_BLOB_RSA ? CKK_RSA : CKK_EC;
    CK_MECHANISM mech = {b->mech, NULL, 0};
    CK_ATTRIBUTE t[16], tp[12];
    CK_ULONG n = 0, np = 0, lens[4] = {0};
    uint8_t *bufs[4] = {NULL};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, hp = CK_INVALID_HANDLE;
    const unsigned char *cp = b->pub;
    EVP_PKEY *pub = NULL;
    kv_rv k = KV_OK;
    CK_RV rv;
    size_t i;

#define KV_ADD(a, c, ty, p, l)                                                                     \
    (a[c].type = (ty), a[c].pValue = (void *)(p), a[c++].ulValueLen = (l))
    KV_ADD(t, n, CKA_CLASS, &cls, sizeof(cls));
    KV_ADD(t, n, CKA_KEY_TYPE, &kt, sizeof(kt));
    KV_ADD(t, n, CKA_TOKEN, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_PRIVATE, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_SENSITIVE, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_EXTRACTABLE, &yes, sizeof(yes));
    KV_ADD(t, n, CKA_WRAP_WITH_TRUSTED, &wwt, sizeof(wwt));
    KV_ADD(t, n, CKA_LABEL, label, labellen);
    KV_ADD(t, n, CKA_ID, id, KV_HSM_ID_LEN);
    if (b->kind == KV_BLOB_AES) {
        KV_ADD(t, n, CKA_ENCRYPT, &yes, sizeof(yes));
        KV_ADD(t, n, CKA_DECRYPT, &yes, sizeof(yes));
        KV_ADD(t, n, CKA_WRAP, &yes, sizeof(yes));
        KV_ADD(t, n, CKA_UNWRAP, &yes, sizeof(yes));
    } else {
        KV_ADD(t, n, CKA_SIGN, &yes, sizeof(yes));
        if (b->kind == KV_BLOB_RSA) {
            KV_ADD(t, n, CKA_DECRYPT, &yes, sizeof(yes));
            KV_ADD(t, n, CKA_UNWRAP, &yes, sizeof(yes));
        } else {
            KV_ADD(t, n, CKA_DERIVE, &no, sizeof(no));
        }
        pub = d2i_PUBKEY(NULL, &cp, (long)b->publen);
        if (pub == NULL || EVP_PKEY_is_a(pub, "RSA") != (b->kind == KV_BLOB_RSA)) {
            k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                           "HSM pool '%s': the wrapped key's public "
                           "key is invalid",
                           pool->name);
            goto done;
        }
        KV_ADD(tp, np, CKA_CLASS, &pcls, sizeof(pcls));
        KV_ADD(tp, np, CKA_KEY_TYPE, &kt, sizeof(kt));
        KV_ADD(tp, np, CKA_TOKEN, &yes, sizeof(yes));
        KV_ADD(tp, np, CKA_PRIVATE, &no, sizeof(no));
        KV_ADD(tp, np, CKA_VERIFY, &yes, sizeof(yes));
        KV_ADD(tp, np, CKA_LABEL, label, labellen);
        KV_ADD(tp, np, CKA_ID, id, KV_HSM_ID_LEN);
        if (b->kind == KV_BLOB_RSA) {
            KV_ADD(tp, np, CKA_ENCRYPT, &yes, sizeof(yes));
            KV_ADD(tp, np, CKA_WRAP, &yes, sizeof(yes));
        }
        if (kv_pub_template(pub, tp, &np, bufs, lens) != KV_OK) {
            k = kv_err_set(err, KV_ERR_BAD_REQUEST, "HSM pool '%s': unsupported public key",
                           pool->name);
            goto done;
        }
    }
#undef KV_ADD
    rv = m->f->C_UnwrapKey(s, &mech, w->h, (CK_BYTE_PTR)b->wrapped, (CK_ULONG)b->wrappedlen, t, n,
                           &h);
    if (rv != CKR_OK) {
        *put = kv_ckr_session_broken(rv) ? KV_PUT_BROKEN : KV_PUT_OK;
        k = kv_hsm_fail(pool, err, "C_UnwrapKey", rv);
        if (k != KV_ERR_SERVER && k != KV_ERR_NOMEM)
            k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                           "HSM pool '%s': the wrapped key could not be unwrapped on member "
                           "token '%s' (integrity check failed or key rejected: %s)",
                           pool->name, m->label, kv_ckr_name(rv));
        goto done;
    }
    if (pub != NULL) {
        if (!kv_pair_matches(m->f, s, h, pub, b->kind == KV_BLOB_RSA)) {
            k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                           "HSM pool '%s': the wrapped key does not match its public key",
                           pool->name);
            goto done;
        }
        /* a public object with this CKA_ID may still be there (replica of a lost private key) */
        rv = kv_find_one(m->f, s, CKO_PUBLIC_KEY, id, KV_HSM_ID_LEN, &hp);
        if (rv == CKR_OK && hp == CK_INVALID_HANDLE)
            rv = m->f->C_CreateObject(s, tp, np, &hp);
        if (rv != CKR_OK) {
            k = kv_hsm_fail(pool, err, "C_CreateObject", rv);
            goto done;
        }
    }
    kv_ref_format(m->label, id, KV_HSM_ID_LEN, cls, ref);
done:
    if (k != KV_OK && h != CK_INVALID_HANDLE)
        m->f->C_DestroyObject(s, h);
    for (i = 0; i < 4; i++)
        OPENSSL_free(bufs[i]);
    EVP_PKEY_free(pub);
    return k;
}

kv_rv kv_hsm_unwrap_key(kv_hsm_pool *pool, const uint8_t *blob, size_t bloblen,
                        const kv_hsm_unwrap_spec *spec, char ref[KV_HSM_REF_MAX], kv_err *err)
{
    char want[KV_HSM_FP_HEX], have[KV_HSM_FP_HEX] = "";
    const char *label;
    size_t labellen, start, i;
    CK_BYTE id[KV_HSM_ID_LEN];
    bool mismatch = false, reached = false;
    kv_rv k = KV_ERR_SERVER;
    kv_blob b;

    kv_err_clear(err);
    if (pool == NULL || blob == NULL || ref == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (!kv_blob_parse(blob, bloblen, &b))
        return kv_err_set(err, KV_ERR_BAD_REQUEST, "HSM pool '%s': not a wrapped HSM key",
                          pool->name);
    kv_hex(b.fp, KV_HSM_FP_LEN, want);
    label = spec != NULL && spec->label != NULL ? spec->label : (const char *)b.label;
    labellen = spec != NULL && spec->label != NULL ? strlen(spec->label) : b.labellen;
    if (spec != NULL && spec->keep_id)
        memcpy(id, b.id, sizeof(id));
    else if (RAND_bytes(id, sizeof(id)) != 1)
        return kv_err_set(err, KV_ERR_INTERNAL, "no random bytes");
    kv_pool_enter(pool);
    pthread_mutex_lock(&pool->lock);
    start = pool->next++;
    pthread_mutex_unlock(&pool->lock);
    for (i = 0; i < pool->n; i++) {
        kv_hsm_member *m = &pool->m[(start + i) % pool->n];
        CK_SESSION_HANDLE s;
        kv_wrapkey w;
        kv_err e;
        int put = KV_PUT_OK;
        CK_RV rv;

        if (spec != NULL && spec->member != NULL && strcmp(spec->member, m->label) != 0)
            continue;
        kv_err_clear(&e);
        if (kv_session_get(pool, m, &s, &e) != KV_OK) {
            if (!reached && err != NULL)
                *err = e;
            continue;
        }
        rv = kv_find_wrapkey(m->f, s, &w);
        if (rv != CKR_OK) {
            kv_session_put(m, s, kv_ckr_session_broken(rv) ? KV_PUT_BROKEN : KV_PUT_CLOSE);
            if (!reached)
                kv_hsm_fail(pool, err, "C_FindObjects", rv);
            continue;
        }
        reached = true;
        if (w.h == CK_INVALID_HANDLE || !w.have_fp ||
            CRYPTO_memcmp(w.fp, b.fp, KV_HSM_FP_LEN) != 0) {
            if (w.h != CK_INVALID_HANDLE && w.have_fp) {
                mismatch = true;
                kv_hex(w.fp, KV_HSM_FP_LEN, have);
            }
            kv_session_put(m, s, KV_PUT_OK);
            continue;
        }
        k = kv_unwrap_on(pool, m, s, &w, &b, label, labellen, id, ref, &put, err);
        kv_session_put(m, s, put);
        return k;
    }
    if (!reached)
        return err != NULL && err->rv != KV_OK
                   ? err->rv
                   : kv_err_set(err, KV_ERR_SERVER, "HSM pool '%s' unavailable", pool->name);
    if (mismatch)
        return kv_err_set(err, KV_ERR_BAD_REQUEST,
                          "HSM pool '%s': the key was wrapped under a different pool wrapping "
                          "key (fingerprint %s) than this pool holds (%s)",
                          pool->name, want, have);
    return kv_err_set(err, KV_ERR_BAD_REQUEST,
                      "HSM pool '%s' has no pool wrapping key (the key was wrapped under the "
                      "wrapping key with fingerprint %s)",
                      pool->name, want);
}

kv_rv kv_hsm_replicate(kv_hsm_pool *pool, const char *ref, size_t *copies, kv_err *err)
{
    uint8_t *blob = NULL;
    size_t bloblen = 0, i, made = 0;
    kv_hsm_ref r;
    kv_rv k, first = KV_OK;
    kv_err e;

    if (copies != NULL)
        *copies = 0;
    k = kv_ref_parse(ref, &r, err);
    if (k != KV_OK)
        return k;
    k = kv_hsm_wrap_key(pool, ref, &blob, &bloblen, err);
    if (k != KV_OK)
        return k;
    for (i = 0; i < pool->n; i++) {
        kv_hsm_member *m = &pool->m[i];
        kv_hsm_unwrap_spec spec = {NULL, true, m->label};
        char nref[KV_HSM_REF_MAX];
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        CK_RV rv;

        kv_err_clear(&e);
        if (kv_session_get(pool, m, &s, &e) != KV_OK)
            continue; /* unreachable: skipped */
        rv = kv_find_one(m->f, s, r.cls, r.id, r.idlen, &h);
        kv_session_put(m, s, rv == CKR_OK ? KV_PUT_OK : KV_PUT_CLOSE);
        if (rv == CKR_OK && h != CK_INVALID_HANDLE)
            continue; /* already there */
        k = kv_hsm_unwrap_key(pool, blob, bloblen, &spec, nref, &e);
        if (k == KV_OK)
            made++;
        else if (first == KV_OK) {
            first = k;
            if (err != NULL)
                *err = e;
        }
    }
    free(blob);
    if (copies != NULL)
        *copies = made;
    if (first == KV_OK)
        kv_err_clear(err);
    return first;
}

/* ---- RSA encryption with the public key object ---- */

kv_rv kv_hsm_rsa_encrypt(kv_hsm_pool *pool, const char *ref, kv_hsm_rsa_pad pad, const uint8_t *in,
                         size_t inlen, uint8_t **out, size_t *outlen, kv_err *err)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    kv_hsm_op op;
    kv_rv k;

    if (in == NULL || out == NULL || outlen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    if (pad != KV_HSM_PAD_PKCS1) {
        memset(&oaep, 0, sizeof(oaep));
        oaep.hashAlg =
            kv_ck_hash(pad == KV_HSM_PAD_OAEP_SHA1 ? EVP_sha1() : EVP_sha256(), &oaep.mgf);
        oaep.source = CKZ_DATA_SPECIFIED;
        mech.mechanism = CKM_RSA_PKCS_OAEP;
        mech.pParameter = &oaep;
        mech.ulParameterLen = sizeof(oaep);
    }
    k = kv_op_begin(pool, ref, CKO_PUBLIC_KEY, &op, err);
    if (k != KV_OK)
        return k;
    k = kv_op_oneshot(&op, &mech, 1, in, inlen, out, outlen, err);
    if (k == KV_ERR_INTERNAL && pad == KV_HSM_PAD_OAEP_SHA256)
        k = kv_err_set(err, KV_ERR_UNSUPPORTED,
                       "HSM pool '%s': the token has no RSA-OAEP with SHA-256", pool->name);
    kv_op_end(&op);
    return k;
}

/* ---- enumeration (kvault.so's local-pool slots) ---- */

static bool kv_get_bool(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                        CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL b = CK_FALSE;
    CK_ATTRIBUTE a = {type, &b, sizeof(b)};

    return f->C_GetAttributeValue(s, h, &a, 1) == CKR_OK && b == CK_TRUE;
}

/* Every object of class cls (and label, if not NULL) in the session; *out malloc'd. */
static CK_RV kv_find_all(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                         const char *label, CK_OBJECT_HANDLE **out, size_t *n)
{
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)label, label ? (CK_ULONG)strlen(label) : 0},
    };
    CK_OBJECT_HANDLE *hs = NULL, *nh;
    size_t cap = 0;
    CK_ULONG got = 0;
    CK_RV rv, rv2;

    *out = NULL;
    *n = 0;
    rv = f->C_FindObjectsInit(s, t, label ? 2 : 1);
    if (rv != CKR_OK)
        return rv;
    do {
        if (*n + 32 > cap) {
            cap = cap ? 2 * cap : 64;
            nh = realloc(hs, cap * sizeof(*hs));
            if (nh == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            hs = nh;
        }
        got = 0;
        rv = f->C_FindObjects(s, hs + *n, 32, &got);
        if (rv == CKR_OK)
            *n += got;
    } while (rv == CKR_OK && got > 0);
    rv2 = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK) {
        free(hs);
        *n = 0;
        return rv;
    }
    *out = hs;
    return CKR_OK;
}

/* Reads CKA_ID and CKA_LABEL of h into ki (false when absent or too long). */
static bool kv_read_id_label(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                             kv_hsm_keyinfo *ki)
{
    CK_ATTRIBUTE a[] = {
        {CKA_ID, NULL, 0},
        {CKA_LABEL, NULL, 0},
    };

    if (f->C_GetAttributeValue(s, h, a, 2) != CKR_OK || a[0].ulValueLen == 0 ||
        a[0].ulValueLen > sizeof(ki->id) || a[1].ulValueLen >= sizeof(ki->label))
        return false;
    a[0].pValue = ki->id;
    a[1].pValue = ki->label;
    if (f->C_GetAttributeValue(s, h, a, 2) != CKR_OK)
        return false;
    ki->idlen = a[0].ulValueLen;
    ki->label[a[1].ulValueLen] = '\0';
    return strcmp(ki->label, KV_HSM_WRAPKEY_LABEL) != 0;
}

/* Fills the type-specific fields of a new entry from member m's object h. */
static bool kv_keyinfo_fill(kv_hsm_pool *pool, kv_hsm_member *m, CK_SESSION_HANDLE s,
                            CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls, kv_hsm_keyinfo *ki, int *put)
{
    CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
    CK_ATTRIBUTE akt = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    CK_FUNCTION_LIST_PTR f = m->f;

    if (f->C_GetAttributeValue(s, h, &akt, 1) != CKR_OK)
        return false;
    if (cls == CKO_SECRET_KEY) {
        CK_ULONG vlen = 0;

        if (kt != CKK_AES || kv_secret_len(f, s, h, &vlen) != CKR_OK || vlen == 0)
            return false;
        ki->type = KV_HSM_AES;
        ki->bits = (int)vlen * 8;
        ki->caps = (kv_get_bool(f, s, h, CKA_ENCRYPT) ? KV_HSM_CAN_ENCRYPT : 0u) |
                   (kv_get_bool(f, s, h, CKA_DECRYPT) ? KV_HSM_CAN_DECRYPT : 0u) |
                   (kv_get_bool(f, s, h, CKA_WRAP) ? KV_HSM_CAN_WRAP : 0u) |
                   (kv_get_bool(f, s, h, CKA_UNWRAP) ? KV_HSM_CAN_UNWRAP : 0u);
    } else {
        kv_hsm_op op;
        EVP_PKEY *pub = NULL;
        unsigned char *der = NULL;
        char group[64];
        int dl;
        kv_err e;

        if (kt != CKK_RSA && kt != CKK_EC)
            return false;
        memset(&op, 0, sizeof(op));
        op.pool = pool;
        op.m = m;
        op.f = f;
        op.s = s;
        op.key = h;
        memcpy(op.ref.id, ki->id, ki->idlen);
        op.ref.idlen = ki->idlen;
        op.ref.cls = CKO_PRIVATE_KEY;
        if (kv_pub_from_op(&op, &pub, &e) != KV_OK) {
            if (op.broken > *put)
                *put = op.broken;
            return false;
        }
        dl = i2d_PUBKEY(pub, &der);
        ki->type = kt == CKK_RSA ? KV_HSM_RSA : KV_HSM_EC;
        ki->bits = EVP_PKEY_get_bits(pub);
        if (kt == CKK_EC && EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                           sizeof(group), NULL) == 1)
            ki->curve_nid = OBJ_sn2nid(group);
        EVP_PKEY_free(pub);
        if (dl <= 0)
            return false;
        ki->spki = der;
        ki->spkilen = (size_t)dl;
        ki->caps = kv_get_bool(f, s, h, CKA_SIGN) ? KV_HSM_CAN_SIGN | KV_HSM_CAN_VERIFY : 0u;
        if (kt == CKK_RSA) /* EC keys only sign (tokens may default CKA_DECRYPT to TRUE) */
            ki->caps |=
                (kv_get_bool(f, s, h, CKA_DECRYPT) ? KV_HSM_CAN_DECRYPT | KV_HSM_CAN_ENCRYPT : 0u) |
                (kv_get_bool(f, s, h, CKA_UNWRAP) ? KV_HSM_CAN_UNWRAP | KV_HSM_CAN_WRAP : 0u);
    }
    kv_ref_format(m->label, ki->id, ki->idlen, cls, ki->ref);
    return true;
}

void kv_hsm_keyinfo_free(kv_hsm_keyinfo *keys, size_t n)
{
    size_t i;

    if (keys == NULL)
        return;
    for (i = 0; i < n; i++)
        OPENSSL_free(keys[i].spki);
    free(keys);
}

/* Adds member m's keys to the list. KV_ERR_SERVER when m does not answer. */
static kv_rv kv_list_member(kv_hsm_pool *pool, kv_hsm_member *m, const char *label,
                            kv_hsm_keyinfo **list, size_t *n, size_t *cap, kv_err *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    CK_OBJECT_HANDLE *hs = NULL;
    CK_SESSION_HANDLE s;
    size_t nh = 0, c, i, j;
    int put = KV_PUT_OK;
    kv_rv k = KV_OK;
    CK_RV rv = CKR_OK;

    k = kv_session_get(pool, m, &s, err);
    if (k != KV_OK)
        return k;
    for (c = 0; c < 2 && k == KV_OK; c++) {
        rv = kv_find_all(m->f, s, classes[c], label, &hs, &nh);
        if (rv != CKR_OK) {
            put = kv_ckr_session_broken(rv) ? KV_PUT_BROKEN : KV_PUT_CLOSE;
            k = kv_hsm_fail(pool, err, "C_FindObjects", rv);
            break;
        }
        for (i = 0; i < nh && k == KV_OK; i++) {
            kv_hsm_keyinfo ki;
            bool local, extractable;

            memset(&ki, 0, sizeof(ki));
            if (!kv_read_id_label(m->f, s, hs[i], &ki))
                continue;
            local = kv_get_bool(m->f, s, hs[i], CKA_LOCAL);
            extractable = kv_get_bool(m->f, s, hs[i], CKA_EXTRACTABLE);
            for (j = 0; j < *n; j++)
                if (((*list)[j].type == KV_HSM_AES) == (classes[c] == CKO_SECRET_KEY) &&
                    (*list)[j].idlen == ki.idlen && memcmp((*list)[j].id, ki.id, ki.idlen) == 0)
                    break;
            if (j < *n) { /* a replica of a key already listed */
                (*list)[j].copies++;
                (*list)[j].local = (*list)[j].local || local;
                (*list)[j].extractable = (*list)[j].extractable || extractable;
                continue;
            }
            if (!kv_keyinfo_fill(pool, m, s, hs[i], classes[c], &ki, &put))
                continue;
            ki.local = local;
            ki.extractable = extractable;
            ki.copies = 1;
            if (*n == *cap) {
                size_t ncap = *cap ? 2 * *cap : 16;
                kv_hsm_keyinfo *nl = realloc(*list, ncap * sizeof(*nl));

                if (nl == NULL) {
                    OPENSSL_free(ki.spki);
                    k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
                    break;
                }
                *list = nl;
                *cap = ncap;
            }
            (*list)[(*n)++] = ki;
        }
        free(hs);
        hs = NULL;
    }
    /* an absent token (SoftHSMv2: an empty slot when its directory vanished) lists nothing */
    if (k == KV_OK) {
        CK_TOKEN_INFO ti;
        char tl[33] = "";

        rv = m->f->C_GetTokenInfo(m->slot, &ti);
        if (rv == CKR_OK)
            kv_token_label(&ti, tl);
        if (rv != CKR_OK || strcmp(tl, m->label) != 0 || (ti.flags & CKF_TOKEN_INITIALIZED) == 0) {
            put = KV_PUT_BROKEN;
            k = kv_err_set(err, KV_ERR_SERVER,
                           "HSM pool '%s' unavailable: token '%s' is no longer present "
                           "(CKR_TOKEN_NOT_PRESENT)",
                           pool->name, m->label);
        }
    }
    kv_session_put(m, s, put);
    return k;
}

kv_rv kv_hsm_list_keys(kv_hsm_pool *pool, const char *label, kv_hsm_keyinfo **out, size_t *n,
                       kv_err *err)
{
    kv_hsm_keyinfo *list = NULL;
    size_t cap = 0, cnt = 0, i, answered = 0;
    long now;
    int pass;
    kv_rv k = KV_OK;
    kv_err e;

    kv_err_clear(err);
    if (pool == NULL || out == NULL || n == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    *out = NULL;
    *n = 0;
    kv_pool_enter(pool);
    now = kv_mono_now();
    /* resting members (spread pools) only when no other member answers */
    for (pass = 0; pass < 2 && answered == 0; pass++) {
        for (i = 0; i < pool->n; i++) {
            kv_hsm_member *m = &pool->m[i];

            if (pool->spread && kv_member_resting(m, now) != (pass == 1))
                continue;
            if (!pool->spread && pass == 1)
                break;
            kv_err_clear(&e);
            k = kv_list_member(pool, m, label, &list, &cnt, &cap, &e);
            if (k == KV_OK) {
                kv_member_mark(pool, m, false);
                answered++;
            } else if (k == KV_ERR_SERVER) {
                kv_member_mark(pool, m, true);
                if (answered == 0 && err != NULL)
                    *err = e;
            } else {
                if (err != NULL)
                    *err = e;
                kv_hsm_keyinfo_free(list, cnt);
                return k;
            }
        }
    }
    if (answered == 0) {
        kv_hsm_keyinfo_free(list, cnt);
        return err != NULL && err->rv != KV_OK
                   ? err->rv
                   : kv_err_set(err, KV_ERR_SERVER, "HSM pool '%s' unavailable", pool->name);
    }
    kv_err_clear(err);
    *out = list;
    *n = cnt;
    return KV_OK;
}

kv_rv kv_hsm_member_info_get(kv_hsm_pool *pool, size_t i, kv_hsm_member_info *mi, kv_err *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    kv_hsm_member *m;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE *hs = NULL;
    size_t nh = 0, c;
    kv_wrapkey w;
    kv_err e;
    CK_RV rv = CKR_OK;

    kv_err_clear(err);
    if (pool == NULL || mi == NULL || i >= pool->n)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "bad arguments");
    kv_pool_enter(pool);
    m = &pool->m[i];
    memset(mi, 0, sizeof(*mi));
    snprintf(mi->label, sizeof(mi->label), "%s", m->label);
    snprintf(mi->module, sizeof(mi->module), "%s", m->module);
    mi->served = __atomic_load_n(&m->served, __ATOMIC_RELAXED);
    mi->failures = __atomic_load_n(&m->failures, __ATOMIC_RELAXED);
    kv_err_clear(&e);
    if (kv_session_get(pool, m, &s, &e) != KV_OK) {
        snprintf(mi->error, sizeof(mi->error), "%s", e.message);
        return KV_OK;
    }
    rv = kv_find_wrapkey(m->f, s, &w);
    for (c = 0; c < 2 && rv == CKR_OK; c++) {
        size_t j;

        rv = kv_find_all(m->f, s, classes[c], NULL, &hs, &nh);
        for (j = 0; rv == CKR_OK && j < nh; j++)
            if (hs[j] != w.h)
                mi->keys++;
        free(hs);
        hs = NULL;
    }
    if (rv == CKR_OK) {
        CK_TOKEN_INFO ti;
        char tl[33] = "";

        rv = m->f->C_GetTokenInfo(m->slot, &ti);
        if (rv == CKR_OK)
            kv_token_label(&ti, tl);
        if (rv == CKR_OK && (strcmp(tl, m->label) != 0 || (ti.flags & CKF_TOKEN_INITIALIZED) == 0))
            rv = CKR_TOKEN_NOT_PRESENT;
    }
    kv_session_put(m, s,
                   rv == CKR_OK                ? KV_PUT_OK
                   : kv_ckr_session_broken(rv) ? KV_PUT_BROKEN
                                               : KV_PUT_CLOSE);
    if (rv != CKR_OK) {
        mi->keys = 0;
        kv_hsm_fail(pool, &e, "C_FindObjects", rv);
        snprintf(mi->error, sizeof(mi->error), "%s", e.message);
        return KV_OK;
    }
    mi->reachable = true;
    if (w.h != CK_INVALID_HANDLE) {
        mi->wrapkey = true;
        mi->trusted = w.trusted;
        if (w.have_fp)
            kv_hex(w.fp, sizeof(w.fp), mi->fingerprint);
    }
    return KV_OK;
}

/* ---- RFC 5649 over the token's AES-ECB ---- */

/* One AES block through the token (CKM_AES_ECB). */
static CK_RV kv_ecb_block(kv_hsm_op *op, bool encrypt, const uint8_t in[16], uint8_t out[16])
{
    CK_MECHANISM mech = {CKM_AES_ECB, NULL, 0};
    CK_ULONG len = 16;
    CK_RV rv;

    rv = encrypt ? op->f->C_EncryptInit(op->s, &mech, op->key)
                 : op->f->C_DecryptInit(op->s, &mech, op->key);
    if (rv != CKR_OK)
        return rv;
    rv = encrypt ? op->f->C_Encrypt(op->s, (CK_BYTE_PTR)in, 16, out, &len)
                 : op->f->C_Decrypt(op->s, (CK_BYTE_PTR)in, 16, out, &len);
    if (rv == CKR_OK && len != 16)
        rv = CKR_FUNCTION_FAILED;
    return rv;
}

kv_rv kv_hsm_aes_kwp(kv_hsm_pool *pool, const char *ref, bool wrap, const uint8_t *in, size_t inlen,
                     uint8_t **out, size_t *outlen, kv_err *err)
{
    static const uint8_t aiv[4] = {0xa6, 0x59, 0x59, 0xa6};
    uint8_t a[8], b[16], *r = NULL;
    size_t n, i, j, mli = 0;
    unsigned bad = 0;
    kv_hsm_op op;
    kv_rv k;
    CK_RV rv = CKR_OK;

    if (in == NULL || inlen == 0 || out == NULL || outlen == NULL ||
        (!wrap && (inlen % 8 != 0 || inlen < 16)) || inlen > (1u << 24))
        return kv_err_set(err, KV_ERR_BAD_REQUEST, "AES key wrap with padding: %s",
                          wrap ? "nothing to wrap"
                               : "the wrapped key must be a "
                                 "multiple of 8 bytes, at least 16");
    *out = NULL;
    *outlen = 0;
    n = wrap ? (inlen + 7) / 8 : inlen / 8 - 1;
    r = calloc(n + 1, 8); /* r[0..8) = A, then the n blocks */
    if (r == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    k = kv_op_begin(pool, ref, CKO_SECRET_KEY, &op, err);
    if (k != KV_OK)
        goto done;
    if (wrap) {
        memcpy(r, aiv, 4);
        r[4] = (uint8_t)(inlen >> 24);
        r[5] = (uint8_t)(inlen >> 16);
        r[6] = (uint8_t)(inlen >> 8);
        r[7] = (uint8_t)inlen;
        memcpy(r + 8, in, inlen);
        if (n == 1) {
            rv = kv_ecb_block(&op, true, r, b);
            if (rv == CKR_OK)
                memcpy(r, b, 16);
        } else {
            memcpy(a, r, 8);
            for (j = 0; j < 6 && rv == CKR_OK; j++)
                for (i = 1; i <= n && rv == CKR_OK; i++) {
                    uint64_t t = (uint64_t)n * j + i;
                    int x;

                    memcpy(b, a, 8);
                    memcpy(b + 8, r + 8 * i, 8);
                    rv = kv_ecb_block(&op, true, b, b);
                    for (x = 7; x >= 0; x--, t >>= 8)
                        b[x] ^= (uint8_t)t;
                    memcpy(a, b, 8);
                    memcpy(r + 8 * i, b + 8, 8);
                }
            memcpy(r, a, 8);
        }
    } else {
        memcpy(r, in, inlen);
        if (n == 1) {
            rv = kv_ecb_block(&op, false, r, b);
            if (rv == CKR_OK)
                memcpy(r, b, 16);
        } else {
            memcpy(a, r, 8);
            for (j = 6; j-- > 0 && rv == CKR_OK;)
                for (i = n; i >= 1 && rv == CKR_OK; i--) {
                    uint64_t t = (uint64_t)n * j + i;
                    int x;

                    memcpy(b, a, 8);
                    for (x = 7; x >= 0; x--, t >>= 8)
                        b[x] ^= (uint8_t)t;
                    memcpy(b + 8, r + 8 * i, 8);
                    rv = kv_ecb_block(&op, false, b, b);
                    memcpy(a, b, 8);
                    memcpy(r + 8 * i, b + 8, 8);
                }
            memcpy(r, a, 8);
        }
        if (rv == CKR_OK) {
            /* integrity: the AIV constant, 8(n-1) < MLI <= 8n, zero padding (no early exit) */
            mli = (size_t)r[4] << 24 | (size_t)r[5] << 16 | (size_t)r[6] << 8 | r[7];
            bad = (unsigned)CRYPTO_memcmp(r, aiv, 4);
            bad |= (unsigned)(mli <= 8 * (n - 1) || mli > 8 * n);
            for (i = 0; i < 8 * n; i++)
                bad |= (unsigned)(i >= mli && i < 8 * n) & r[8 + i];
        }
    }
    if (rv != CKR_OK) {
        k = kv_op_fail(&op, err, wrap ? "C_Encrypt (AES-ECB)" : "C_Decrypt (AES-ECB)", rv);
        goto done;
    }
    if (!wrap && bad) {
        k = kv_err_set(err, KV_ERR_BAD_REQUEST,
                       "HSM pool '%s': AES key unwrap failed (integrity check)", pool->name);
        goto done;
    }
    *outlen = wrap ? 8 * (n + 1) : mli;
    *out = malloc(*outlen ? *outlen : 1);
    if (*out == NULL) {
        *outlen = 0;
        k = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(*out, wrap ? r : r + 8, *outlen);
    k = KV_OK;
done:
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    OPENSSL_clear_free(r, (n + 1) * 8);
    kv_op_end(&op);
    return k;
}
