/* p11_module.c - the one global context of the PKCS#11 face (kv_p11_module): C_Initialize,
 * C_Finalize, C_GetInfo, the module lock, and fork / exit handling.
 *
 * Locking: CK_C_INITIALIZE_ARGS are honoured as the standard asks; the module always uses
 * POSIX threads internally (so do libcurl and vaultclient), which is what CKF_OS_LOCKING_OK
 * permits. Application-supplied mutex callbacks without CKF_OS_LOCKING_OK cannot be honoured
 * (our dependencies lock with pthreads regardless) and give CKR_CANT_LOCK;
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS is accepted: the module starts no threads of its own (only
 * libcurl's resolver may run a short-lived lookup thread during a request), and GnuTLS/p11tool
 * and p11-kit always set the flag, so refusing it would make kvault unusable there.
 *
 * Fork: pthread_atfork handlers take the module lock around fork(), so a child never inherits
 * it locked, and the child forgets the parent's in-flight calls. A child may keep using the
 * module without C_Initialize (vaultclient drops the parent's connections), or call
 * C_Initialize again: that returns CKR_OK, forgets the parent's sessions and logins and keeps
 * the vault context and object handles.
 *
 * Exit: an atexit handler, registered after vaultclient has initialised OpenSSL (so it runs
 * before OpenSSL's own exit cleanup), marks the process as exiting; a C_Finalize after that
 * (e.g. from another library's exit-time cleanup) then leaks instead of touching OpenSSL. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_log.h"

kv_p11_module_ctx kv_p11_module = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
    .next_session = 1,
};

void kv_p11_lock(void)
{
    pthread_mutex_lock(&kv_p11_module.lock);
}

void kv_p11_unlock(void)
{
    pthread_mutex_unlock(&kv_p11_module.lock);
}

CK_RV kv_p11_enter(void)
{
    CK_RV rv = CKR_OK;

    kv_p11_lock();
    if (!kv_p11_module.initialized)
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    else
        kv_p11_module.inflight++;
    kv_p11_unlock();
    return rv;
}

void kv_p11_leave(void)
{
    kv_p11_lock();
    if (kv_p11_module.inflight > 0 && --kv_p11_module.inflight == 0)
        pthread_cond_broadcast(&kv_p11_module.idle);
    kv_p11_unlock();
}

void kv_p11_pad(CK_UTF8CHAR *dst, size_t width, const char *s)
{
    size_t n = strlen(s);

    memset(dst, ' ', width);
    memcpy(dst, s, n < width ? n : width);
}

static void kv_p11_atfork_prepare(void)
{
    pthread_mutex_lock(&kv_p11_module.lock);
}

static void kv_p11_atfork_parent(void)
{
    pthread_mutex_unlock(&kv_p11_module.lock);
}

/* Only the forking thread exists in the child: calls that other threads had in flight will
 * never finish, so forget them (their sessions become usable again). */
static void kv_p11_atfork_child(void)
{
    size_t i;

    kv_p11_module.inflight = 0;
    kv_p11_sobjs_free_all(); /* the child gets no copy of the parent's session keys */
    for (i = 0; i < kv_p11_module.nsessions; i++) {
        kv_p11_module.sessions[i]->busy = 0;
        kv_p11_module.sessions[i]->refs = 0;
    }
    pthread_cond_init(&kv_p11_module.idle, NULL);
    pthread_mutex_unlock(&kv_p11_module.lock);
}

static void kv_p11_atexit(void)
{
    __atomic_store_n(&kv_p11_module.at_exit, true, __ATOMIC_SEQ_CST);
}

/* Validates CK_C_INITIALIZE_ARGS (see the file comment). */
static CK_RV kv_p11_check_init_args(const CK_C_INITIALIZE_ARGS *a)
{
    int n = 0;

    if (a == NULL)
        return CKR_OK;
    if (a->pReserved != NULL)
        return CKR_ARGUMENTS_BAD;
    n += a->CreateMutex != NULL;
    n += a->DestroyMutex != NULL;
    n += a->LockMutex != NULL;
    n += a->UnlockMutex != NULL;
    if (n != 0 && n != 4)
        return CKR_ARGUMENTS_BAD;
    if (n == 4 && !(a->flags & CKF_OS_LOCKING_OK))
        return CKR_CANT_LOCK;
    return CKR_OK;
}

/* Forgets sessions and logins (lock held). */
static void kv_p11_forget_sessions(void)
{
    size_t i;

    kv_p11_sessions_free_all();
    for (i = 0; i < kv_p11_module.nslots; i++)
        kv_p11_slot_logout(&kv_p11_module.slots[i]);
}

CK_RV kv_p11_initialize(CK_VOID_PTR init_args)
{
    kv_ctx *ctx = NULL;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    kv_err_clear(&err);
    rv = kv_p11_check_init_args((const CK_C_INITIALIZE_ARGS *)init_args);
    if (rv != CKR_OK)
        return rv;

    kv_p11_lock();
    if (kv_p11_module.initialized) {
        if (kv_p11_module.pid == getpid()) {
            rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
            goto done;
        }
        /* A forked child initialising again: start with no sessions, keep the rest. */
        kv_p11_forget_sessions();
        kv_p11_module.pid = getpid();
        goto done;
    }

    krv = kv_ctx_new(NULL, &ctx, &err);
    if (krv != KV_OK) {
        KV_ERROR("C_Initialize: cannot load the kvault configuration: %s", err.message);
        rv = krv == KV_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
        goto done;
    }
    rv = kv_p11_slots_load(ctx);
    if (rv != CKR_OK)
        goto done;
    if (!kv_p11_module.hooks_registered) {
        /* After kv_ctx_new: OpenSSL registered its exit cleanup first, so ours runs first. */
        if (pthread_atfork(kv_p11_atfork_prepare, kv_p11_atfork_parent, kv_p11_atfork_child) != 0 ||
            atexit(kv_p11_atexit) != 0) {
            rv = CKR_GENERAL_ERROR;
            goto done;
        }
        kv_p11_module.hooks_registered = true;
    }
    kv_p11_module.cache_ttl = kv_ctx_object_cache_seconds(ctx);
    kv_p11_module.ctx = ctx;
    ctx = NULL;
    kv_p11_module.pid = getpid();
    kv_p11_module.inflight = 0;
    kv_p11_module.initialized = true;
    KV_DEBUG("C_Initialize: %zu slot(s) from '%s'", kv_p11_module.nslots,
             kv_ctx_conf_path(kv_p11_module.ctx));

done:
    if (rv != CKR_OK && !kv_p11_module.initialized)
        kv_p11_slots_free();
    kv_p11_unlock();
    kv_ctx_free(ctx);
    return rv;
}

CK_RV kv_p11_finalize(CK_VOID_PTR reserved)
{
    CK_RV rv = CKR_OK;

    if (reserved != NULL)
        return CKR_ARGUMENTS_BAD;
    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    kv_p11_module.initialized = false; /* no new calls from here on */
    while (kv_p11_module.inflight > 0)
        pthread_cond_wait(&kv_p11_module.idle, &kv_p11_module.lock);

    if (__atomic_load_n(&kv_p11_module.at_exit, __ATOMIC_SEQ_CST)) {
        /* OpenSSL may already be torn down: drop everything without freeing it. */
        kv_p11_module.sessions = NULL;
        kv_p11_module.nsessions = kv_p11_module.capsessions = 0;
        kv_p11_module.objs = NULL;
        kv_p11_module.nobjs = kv_p11_module.capobjs = 0;
        kv_p11_module.slots = NULL;
        kv_p11_module.nslots = 0;
        kv_p11_module.ctx = NULL;
        goto done;
    }
    kv_p11_sessions_free_all();
    kv_p11_sobjs_free_all();
    kv_p11_objs_free();
    kv_p11_slots_free();
    kv_ctx_free(kv_p11_module.ctx);
    kv_p11_module.ctx = NULL;

done:
    kv_p11_unlock();
    return rv;
}

CK_RV kv_p11_get_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor)
{
    CK_RV rv = CKR_OK;

    kv_p11_lock();
    if (!kv_p11_module.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto done;
    }
    if (info == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = major;
    info->cryptokiVersion.minor = minor;
    kv_p11_pad(info->manufacturerID, sizeof(info->manufacturerID), KV_P11_MANUFACTURER);
    info->flags = 0;
    kv_p11_pad(info->libraryDescription, sizeof(info->libraryDescription), KV_P11_LIB_DESC);
    info->libraryVersion.major = KV_P11_LIB_MAJOR;
    info->libraryVersion.minor = KV_P11_LIB_MINOR;

done:
    kv_p11_unlock();
    return rv;
}
