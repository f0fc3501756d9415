/* test_p11_threads.c - kvault.so's session, login and operation tables under concurrent use,
 * without a vault: meant for ThreadSanitizer (scripts/tsan.sh), and a crash / deadlock check in
 * the other builds. kvault.so is dlopen'ed from $KV_SO with a configuration whose only vault
 * cannot be reached (nothing here calls it).
 *
 * Eight threads each open and close sessions (read-only and read-write), log in and out (token
 * state shared by all), read session and token information, digest, find, create and destroy
 * module session keys where the slot allows it, and fight over one shared session's digest
 * operation (CKR_OPERATION_ACTIVE for the loser, C_SessionCancel from anyone); a ninth thread
 * keeps calling C_CloseAllSessions, so sessions vanish under the others' feet
 * (CKR_SESSION_HANDLE_INVALID). Every return code must be one the standard lists for the
 * situation; then the module must still work and finalise cleanly. */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <p11-kit/pkcs11.h>

#include "p11_v3.h"

#define KV_THREADS 8
#define KV_ROUNDS 400

typedef struct {
    CK_FUNCTION_LIST_3_0 *f;
    CK_SESSION_HANDLE shared;
    int stop; /* set (atomically) when the workers are done */
    int bad;  /* unexpected return codes (atomically) */
    char conf[64];
} kv_fx;

static kv_fx g;

static void kv_bad(const char *what, CK_RV rv)
{
    __atomic_add_fetch(&g.bad, 1, __ATOMIC_SEQ_CST);
    fprintf(stderr, "unexpected: %s returned 0x%lx\n", what, (unsigned long)rv);
}

/* rv must be one of the n codes that follow. */
static void kv_allow(const char *what, CK_RV rv, int n, ...)
{
    va_list ap;
    int i;

    va_start(ap, n);
    for (i = 0; i < n; i++)
        if (va_arg(ap, CK_RV) == rv) {
            va_end(ap);
            return;
        }
    va_end(ap);
    kv_bad(what, rv);
}

#define GONE CKR_SESSION_HANDLE_INVALID /* closed by C_CloseAllSessions meanwhile */

static void kv_session_work(CK_FUNCTION_LIST_3_0 *f, CK_SESSION_HANDLE h, unsigned r)
{
    static const CK_BYTE msg[] = "concurrent";
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_OBJECT_CLASS hw = CKO_HW_FEATURE, sk = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL no = CK_FALSE;
    CK_BYTE value[16], out[64];
    CK_ATTRIBUTE none[] = {{CKA_CLASS, &hw, sizeof(hw)}};
    CK_ATTRIBUTE key[] = {{CKA_CLASS, &sk, sizeof(sk)},
                          {CKA_KEY_TYPE, &aes, sizeof(aes)},
                          {CKA_TOKEN, &no, sizeof(no)},
                          {CKA_VALUE, value, sizeof(value)}};
    CK_OBJECT_HANDLE objs[4], k = CK_INVALID_HANDLE;
    CK_SESSION_INFO si;
    CK_TOKEN_INFO ti;
    CK_ULONG n;
    CK_RV rv;

    memset(value, (int)r, sizeof(value));
    kv_allow("C_GetSessionInfo", f->C_GetSessionInfo(h, &si), 2, CKR_OK, GONE);
    kv_allow("C_GetTokenInfo", f->C_GetTokenInfo(0, &ti), 1, CKR_OK);
    rv = f->C_Login(h, CKU_USER, (CK_UTF8CHAR *)"1234", 4);
    kv_allow("C_Login", rv, 3, CKR_OK, CKR_USER_ALREADY_LOGGED_IN, GONE);
    kv_allow("C_Logout", f->C_Logout(h), 3, CKR_OK, CKR_USER_NOT_LOGGED_IN, GONE);

    rv = f->C_DigestInit(h, &sha);
    kv_allow("C_DigestInit", rv, 2, CKR_OK, GONE);
    if (rv == CKR_OK) {
        n = sizeof(out);
        kv_allow("C_Digest", f->C_Digest(h, (CK_BYTE_PTR)msg, sizeof(msg), out, &n), 2, CKR_OK,
                 GONE);
    }
    rv = f->C_FindObjectsInit(h, none, 1);
    kv_allow("C_FindObjectsInit", rv, 2, CKR_OK, GONE);
    if (rv == CKR_OK) {
        n = 4;
        kv_allow("C_FindObjects", f->C_FindObjects(h, objs, 4, &n), 2, CKR_OK, GONE);
        kv_allow("C_FindObjectsFinal", f->C_FindObjectsFinal(h), 2, CKR_OK, GONE);
    }
    /* a module session key: on a slot without AES keys it may be refused */
    rv = f->C_CreateObject(h, key, 4, &k);
    kv_allow("C_CreateObject", rv, 4, CKR_OK, GONE, CKR_TEMPLATE_INCONSISTENT,
             CKR_MECHANISM_INVALID);
    if (rv == CKR_OK)
        kv_allow("C_DestroyObject", f->C_DestroyObject(h, k), 3, CKR_OK, GONE,
                 CKR_OBJECT_HANDLE_INVALID);

    /* the shared session: one digest operation for everyone */
    rv = f->C_DigestInit(g.shared, &sha);
    kv_allow("C_DigestInit(shared)", rv, 3, CKR_OK, CKR_OPERATION_ACTIVE, GONE);
    if (r % 3 == 0)
        kv_allow("C_SessionCancel(shared)", f->C_SessionCancel(g.shared, CKF_DIGEST), 3, CKR_OK,
                 CKR_OPERATION_ACTIVE, GONE);
    else {
        rv = f->C_DigestUpdate(g.shared, (CK_BYTE_PTR)msg, sizeof(msg));
        kv_allow("C_DigestUpdate(shared)", rv, 4, CKR_OK, CKR_OPERATION_NOT_INITIALIZED,
                 CKR_OPERATION_ACTIVE, GONE);
    }
}

static void *kv_worker(void *arg)
{
    CK_FUNCTION_LIST_3_0 *f = g.f;
    unsigned id = (unsigned)(size_t)arg, r;

    for (r = 0; r < KV_ROUNDS; r++) {
        CK_FLAGS flags = CKF_SERIAL_SESSION | (((id + r) & 1) ? CKF_RW_SESSION : 0);
        CK_SESSION_HANDLE h;
        CK_RV rv = f->C_OpenSession(0, flags, NULL, NULL, &h);

        if (rv != CKR_OK) {
            kv_bad("C_OpenSession", rv);
            continue;
        }
        kv_session_work(f, h, id * KV_ROUNDS + r);
        kv_allow("C_CloseSession", f->C_CloseSession(h), 2, CKR_OK, GONE);
    }
    return NULL;
}

static void *kv_closer(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&g.stop, __ATOMIC_SEQ_CST)) {
        kv_allow("C_CloseAllSessions", g.f->C_CloseAllSessions(0), 1, CKR_OK);
        usleep(2000);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t workers[KV_THREADS], closer;
    CK_SESSION_HANDLE h;
    CK_SESSION_INFO si;
    CK_C_INITIALIZE_ARGS a;
    size_t i;
    int round;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    assert_int_equal(g.f->C_Initialize(&a), CKR_OK);
    /* round 0: the workers alone (the shared session stays); round 1: with the closer (which
     * soon closes the shared session too) */
    assert_int_equal(g.f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &g.shared), CKR_OK);
    for (round = 0; round < 2; round++) {
        if (round == 1)
            assert_int_equal(pthread_create(&closer, NULL, kv_closer, NULL), 0);
        for (i = 0; i < KV_THREADS; i++)
            assert_int_equal(pthread_create(&workers[i], NULL, kv_worker, (void *)i), 0);
        for (i = 0; i < KV_THREADS; i++)
            pthread_join(workers[i], NULL);
    }
    __atomic_store_n(&g.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(closer, NULL);
    assert_int_equal(g.bad, 0);

    /* still consistent afterwards */
    assert_int_equal(g.f->C_CloseAllSessions(0), CKR_OK);
    assert_int_equal(g.f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
    assert_int_equal(g.f->C_GetSessionInfo(h, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    assert_int_equal(g.f->C_Finalize(NULL), CKR_OK);
}

/* C_Initialize / C_Finalize cycles while no call is in flight, with sessions left open. */
static void test_reinit_cycles(void **state)
{
    CK_SESSION_HANDLE h;
    int i;

    (void)state;
    for (i = 0; i < 20; i++) {
        assert_int_equal(g.f->C_Initialize(NULL), CKR_OK);
        assert_int_equal(g.f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
        assert_int_equal(g.f->C_Login(h, CKU_USER, (CK_UTF8CHAR *)"1", 1), CKR_OK);
        assert_int_equal(g.f->C_Finalize(NULL), CKR_OK);
    }
}

static int setup(void **state)
{
    const char *so = getenv("KV_SO");
    CK_INTERFACE *itf = NULL;
    CK_C_GetInterface get;
    void *dl;
    FILE *fp;
    int fd;

    (void)state;
    snprintf(g.conf, sizeof(g.conf), "/tmp/kvthreads.XXXXXX");
    fd = mkstemp(g.conf);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs("[kvault]\ntimeout = 2\nretries = 0\n[vault unreach]\n"
          "url = https://unreach.vault.localhost:1\ntenant_id = t\nclient_id = c\n"
          "client_secret = s\nauthority = https://localhost:1\n",
          fp);
    fclose(fp);
    setenv("KVAULT_CONF", g.conf, 1);
    dl = dlopen(so != NULL ? so : "./kvault.so", RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        fail_msg("dlopen: %s", dlerror());
    get = (CK_C_GetInterface)dlsym(dl, "C_GetInterface");
    assert_non_null(get);
    assert_int_equal(get(NULL, NULL, &itf, 0), CKR_OK);
    g.f = itf->pFunctionList;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    g.f->C_Finalize(NULL);
    unlink(g.conf);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_reinit_cycles),
    };

    return cmocka_run_group_tests_name("p11_threads", tests, setup, teardown);
}
