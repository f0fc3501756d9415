/* test_p11_api.c - PKCS#11 API conformance of kvault.so that needs no running vault: the
 * module is dlopen'ed from $KV_SO (default ./kvault.so) as applications do, with a
 * configuration that has no vaults, then one whose single vault is unreachable. Checks the
 * function lists and interfaces, return codes for NULL pointers, calls before C_Initialize,
 * C_INITIALIZE_ARGS handling, double initialisation, invalid slot / session / object
 * handles, session and login state, operation state, finds that need no vault, the error
 * for an unreachable vault, C_Finalize(non-NULL), and use after fork(). */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <p11-kit/pkcs11.h>

#include "p11_v3.h"

typedef struct {
    void *dl;
    CK_FUNCTION_LIST *f2;    /* from C_GetFunctionList */
    CK_FUNCTION_LIST_3_0 *f; /* from C_GetInterface */
    CK_C_GetInterfaceList get_interface_list;
    CK_C_GetInterface get_interface;
    char empty_conf[64];
    char vault_conf[64];
    CK_SESSION_HANDLE parent_session; /* for the fork tests */
} fixture;

static void write_conf(char *path, size_t size, const char *text)
{
    FILE *fp;
    int fd;

    snprintf(path, size, "/tmp/kvp11test.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int setup(void **state)
{
    const char *so = getenv("KV_SO");
    CK_C_GetFunctionList gfl;
    CK_INTERFACE *itf = NULL;
    fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    write_conf(fx->empty_conf, sizeof(fx->empty_conf), "[kvault]\ntimeout = 2\n");
    write_conf(fx->vault_conf, sizeof(fx->vault_conf),
               "[kvault]\ntimeout = 2\nretries = 0\n[vault unreach]\n"
               "url = https://unreach.vault.localhost:1\ntenant_id = t\nclient_id = c\n"
               "client_secret = s\nauthority = https://localhost:1\n");
    setenv("KVAULT_CONF", fx->empty_conf, 1);
    fx->dl = dlopen(so != NULL ? so : "./kvault.so", RTLD_NOW | RTLD_LOCAL);
    if (fx->dl == NULL)
        fail_msg("dlopen: %s", dlerror());
    gfl = (CK_C_GetFunctionList)dlsym(fx->dl, "C_GetFunctionList");
    fx->get_interface_list = (CK_C_GetInterfaceList)dlsym(fx->dl, "C_GetInterfaceList");
    fx->get_interface = (CK_C_GetInterface)dlsym(fx->dl, "C_GetInterface");
    assert_non_null(gfl);
    assert_non_null(fx->get_interface_list);
    assert_non_null(fx->get_interface);
    assert_int_equal(gfl(&fx->f2), CKR_OK);
    assert_int_equal(fx->get_interface(NULL, NULL, &itf, 0), CKR_OK);
    fx->f = itf->pFunctionList;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;

    fx->f->C_Finalize(NULL); /* in case a test failed half-way */
    unlink(fx->empty_conf);
    unlink(fx->vault_conf);
    /* no dlclose: the module is built with -z nodelete, as hosts expect */
    free(fx);
    return 0;
}

static void init_with(fixture *fx, const char *conf)
{
    setenv("KVAULT_CONF", conf, 1);
    assert_int_equal(fx->f->C_Initialize(NULL), CKR_OK);
}

/* ---- tests ---- */

static void test_function_lists(void **state)
{
    fixture *fx = *state;
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(fx->dl, "C_GetFunctionList");

    assert_int_equal(gfl(NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(fx->f2->version.major, 2);
    assert_int_equal(fx->f2->version.minor, 40);
    assert_int_equal(fx->f->version.major, 3);
    assert_int_equal(fx->f->version.minor, 0);
    assert_ptr_equal(fx->f->C_GetInterface, fx->get_interface);
    assert_ptr_equal(fx->f->C_GetInterfaceList, fx->get_interface_list);
    /* only the three entry points are exported */
    assert_null(dlsym(fx->dl, "C_Initialize"));
    assert_null(dlsym(fx->dl, "C_Sign"));
}

static void test_interfaces(void **state)
{
    fixture *fx = *state;
    CK_INTERFACE list[4], *itf = NULL;
    CK_VERSION v240 = {2, 40}, v30 = {3, 0}, v31 = {3, 1};
    CK_ULONG n = 0;

    assert_int_equal(fx->get_interface_list(NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(fx->get_interface_list(NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    n = 1;
    assert_int_equal(fx->get_interface_list(list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2);
    n = 4;
    assert_int_equal(fx->get_interface_list(list, &n), CKR_OK);
    assert_int_equal(n, 2);
    assert_string_equal((char *)list[0].pInterfaceName, "PKCS 11");
    assert_int_equal(((CK_VERSION *)list[0].pFunctionList)->major, 3);
    assert_int_equal(((CK_VERSION *)list[1].pFunctionList)->major, 2);

    assert_int_equal(fx->get_interface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    assert_int_equal(fx->get_interface((CK_UTF8CHAR *)"PKCS 11", NULL, &itf, 0), CKR_OK);
    assert_ptr_equal(itf->pFunctionList, fx->f);
    assert_int_equal(fx->get_interface((CK_UTF8CHAR *)"PKCS 11", &v240, &itf, 0), CKR_OK);
    assert_ptr_equal(itf->pFunctionList, fx->f2);
    assert_int_equal(fx->get_interface(NULL, &v30, &itf, CKF_INTERFACE_FORK_SAFE), CKR_OK);
    assert_ptr_equal(itf->pFunctionList, fx->f);
    assert_int_equal(fx->get_interface(NULL, &v31, &itf, 0), CKR_ARGUMENTS_BAD);
    assert_int_equal(fx->get_interface((CK_UTF8CHAR *)"Vendor", NULL, &itf, 0), CKR_ARGUMENTS_BAD);
    assert_int_equal(fx->get_interface(NULL, NULL, &itf, 0x100), CKR_ARGUMENTS_BAD);
}

static void test_not_initialized(void **state)
{
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_SESSION_HANDLE h;
    CK_ULONG n = 0;
    CK_INFO info;

    assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h),
                     CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_FindObjectsInit(1, NULL, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_SignInit(1, NULL, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static CK_RV dummy_create(CK_VOID_PTR_PTR m)
{
    (void)m;
    return CKR_OK;
}

static CK_RV dummy_mutex(CK_VOID_PTR m)
{
    (void)m;
    return CKR_OK;
}

static void test_initialize_args(void **state)
{
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_C_INITIALIZE_ARGS a;
    int dummy;

    setenv("KVAULT_CONF", fx->empty_conf, 1);
    memset(&a, 0, sizeof(a));
    a.pReserved = &dummy;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);

    memset(&a, 0, sizeof(a));
    a.CreateMutex = dummy_create; /* only some callbacks */
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);

    a.DestroyMutex = dummy_mutex;
    a.LockMutex = dummy_mutex;
    a.UnlockMutex = dummy_mutex;
    assert_int_equal(f->C_Initialize(&a), CKR_CANT_LOCK);

    a.flags = CKF_OS_LOCKING_OK;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Initialize(&a), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_int_equal(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_int_equal(f->C_Finalize(&dummy), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);

    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);

    /* a named configuration that does not exist is an error, not a crash */
    setenv("KVAULT_CONF", "/nonexistent/kvault.conf", 1);
    assert_int_not_equal(f->C_Initialize(NULL), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_info_no_vaults(void **state)
{
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_SLOT_ID slots[4];
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_MECHANISM_TYPE mechs[4];
    CK_SESSION_HANDLE h;
    CK_ULONG n = 99;
    CK_INFO info;

    init_with(fx, fx->empty_conf);
    assert_int_equal(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_GetInfo(&info), CKR_OK);
    assert_int_equal(info.cryptokiVersion.major, 3);
    assert_int_equal(info.cryptokiVersion.minor, 0);
    assert_memory_equal(info.manufacturerID, "kvault ", 7);
    assert_int_equal(fx->f2->C_GetInfo(&info), CKR_OK);
    assert_int_equal(info.cryptokiVersion.major, 2);
    assert_int_equal(info.cryptokiVersion.minor, 40);

    assert_int_equal(f->C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(n, 0);
    n = 4;
    assert_int_equal(f->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->C_GetSlotInfo(0, &si), CKR_SLOT_ID_INVALID);
    assert_int_equal(f->C_GetTokenInfo(0, &ti), CKR_SLOT_ID_INVALID);
    n = 4;
    assert_int_equal(f->C_GetMechanismList(0, mechs, &n), CKR_SLOT_ID_INVALID);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_SLOT_ID_INVALID);
    assert_int_equal(f->C_CloseAllSessions(0), CKR_SLOT_ID_INVALID);
    assert_int_equal(f->C_CloseSession(12345), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_slot_and_token(void **state)
{
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_SLOT_ID slots[4];
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_MECHANISM_TYPE mechs[32];
    CK_MECHANISM_INFO mi;
    CK_ULONG n = 0;

    init_with(fx, fx->vault_conf);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 1);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    assert_int_equal(f->C_GetSlotInfo(slots[0], NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_GetSlotInfo(slots[0], &si), CKR_OK);
    assert_true(si.flags & CKF_TOKEN_PRESENT);
    assert_int_equal(f->C_GetTokenInfo(slots[0], &ti), CKR_OK);
    assert_memory_equal(ti.label, "unreach                         ", 32);
    assert_memory_equal(ti.manufacturerID, "kvault                          ", 32);
    assert_memory_equal(ti.model, "vault           ", 16);
    assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
    assert_false(ti.flags & CKF_LOGIN_REQUIRED);
    assert_false(ti.flags & CKF_RNG);
    assert_int_equal(f->C_GetTokenInfo(slots[0] + 1, &ti), CKR_SLOT_ID_INVALID);

    assert_int_equal(f->C_GetMechanismList(slots[0], NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_GetMechanismList(slots[0], NULL, &n), CKR_OK);
    assert_int_equal(n, 24); /* + RSA and EC key pair generation */
    n = 2;
    assert_int_equal(f->C_GetMechanismList(slots[0], mechs, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 24);
    assert_int_equal(f->C_GetMechanismList(slots[0], mechs, &n), CKR_OK);
    assert_int_equal(f->C_GetMechanismInfo(slots[0], CKM_ECDSA, &mi), CKR_OK);
    assert_int_equal(mi.ulMinKeySize, 256);
    assert_int_equal(mi.ulMaxKeySize, 521);
    assert_true(mi.flags & CKF_SIGN);
    assert_true(mi.flags & CKF_EC_NAMEDCURVE);
    assert_int_equal(f->C_GetMechanismInfo(slots[0], CKM_SHA256_RSA_PKCS, &mi), CKR_OK);
    assert_int_equal(mi.ulMinKeySize, 2048);
    assert_int_equal(mi.ulMaxKeySize, 4096);
    assert_int_equal(f->C_GetMechanismInfo(slots[0], CKM_AES_CBC, &mi), CKR_MECHANISM_INVALID);
    assert_int_equal(f->C_GetMechanismInfo(slots[0], CKM_ECDSA, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_sessions_and_login(void **state)
{
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_SESSION_HANDLE ro, rw;
    CK_SESSION_INFO info;
    CK_TOKEN_INFO ti;

    init_with(fx, fx->vault_conf);
    assert_int_equal(f->C_OpenSession(0, 0, NULL, NULL, &ro), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw),
                     CKR_OK);
    assert_int_not_equal(ro, rw);
    assert_int_equal(f->C_GetTokenInfo(0, &ti), CKR_OK);
    assert_int_equal(ti.ulSessionCount, 2);
    assert_int_equal(ti.ulRwSessionCount, 1);

    assert_int_equal(f->C_GetSessionInfo(ro, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_GetSessionInfo(ro + rw + 100, &info), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_GetSessionInfo(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);
    assert_int_equal(info.slotID, 0);

    assert_int_equal(f->C_Logout(ro), CKR_USER_NOT_LOGGED_IN);
    assert_int_equal(f->C_Login(ro, 77, (CK_UTF8CHAR *)"x", 1), CKR_USER_TYPE_INVALID);
    assert_int_equal(f->C_Login(ro, CKU_SO, (CK_UTF8CHAR *)"x", 1), CKR_SESSION_READ_ONLY_EXISTS);
    assert_int_equal(f->C_Login(ro, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR *)"x", 1),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_Login(ro, CKU_USER, (CK_UTF8CHAR *)"any pin", 7), CKR_OK);
    assert_int_equal(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4),
                     CKR_USER_ALREADY_LOGGED_IN);
    assert_int_equal(f->C_GetSessionInfo(rw, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_USER_FUNCTIONS);
    assert_int_equal(f->C_GetSessionInfo(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_USER_FUNCTIONS);
    assert_int_equal(f->C_LoginUser(ro, CKU_USER, (CK_UTF8CHAR *)"1", 1, (CK_UTF8CHAR *)"u", 1),
                     CKR_USER_ALREADY_LOGGED_IN);
    assert_int_equal(f->C_Logout(rw), CKR_OK);
    assert_int_equal(f->C_GetSessionInfo(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);

    /* login ends with the last session */
    assert_int_equal(f->C_Login(ro, CKU_USER, NULL, 0), CKR_OK);
    assert_int_equal(f->C_CloseSession(ro), CKR_OK);
    assert_int_equal(f->C_CloseSession(ro), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_GetSessionInfo(rw, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_USER_FUNCTIONS);
    assert_int_equal(f->C_CloseAllSessions(0), CKR_OK);
    assert_int_equal(f->C_GetSessionInfo(rw, &info), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    assert_int_equal(f->C_GetSessionInfo(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    /* handles do not survive C_Finalize */
    init_with(fx, fx->vault_conf);
    assert_int_equal(f->C_GetSessionInfo(ro, &info), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_operations_without_vault(void **state)
{
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_OBJECT_CLASS cert = CKO_SECRET_KEY; /* no object of ours: certificates are listed */
    CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE tcert[] = {{CKA_CLASS, &cert, sizeof(cert)}};
    CK_ATTRIBUTE taes[] = {{CKA_KEY_TYPE, &aes, sizeof(aes)}};
    CK_ATTRIBUTE tlabel[] = {{CKA_LABEL, (void *)"k1", 2}};
    CK_ATTRIBUTE attr = {CKA_LABEL, NULL, 0};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE objs[4];
    CK_BYTE buf[16], sig[64];
    CK_ULONG n = 99, siglen = sizeof(sig);
    CK_SESSION_HANDLE h;

    init_with(fx, fx->vault_conf);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);

    /* templates that cannot match a vault key cost no vault call */
    assert_int_equal(f->C_FindObjects(h, objs, 4, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_FindObjectsInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_FindObjectsInit(h, tcert, 1), CKR_OK);
    assert_int_equal(f->C_FindObjectsInit(h, tcert, 1), CKR_OPERATION_ACTIVE);
    assert_int_equal(f->C_FindObjects(h, objs, 4, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_FindObjects(h, objs, 4, &n), CKR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->C_FindObjectsFinal(h), CKR_OK);
    assert_int_equal(f->C_FindObjectsInit(h, taes, 1), CKR_OK);
    assert_int_equal(f->C_SessionCancel(h, CKF_FIND_OBJECTS), CKR_OK);
    assert_int_equal(f->C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);

    /* an unreachable vault is a device error, quickly, not a hang or a crash */
    assert_int_equal(f->C_FindObjectsInit(h, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(f->C_FindObjectsInit(h, tlabel, 1), CKR_DEVICE_ERROR);
    assert_int_equal(f->C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);

    /* invalid object handles */
    assert_int_equal(f->C_GetAttributeValue(h, 42, &attr, 1), CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(f->C_GetAttributeValue(h + 1000, 42, &attr, 1), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_GetObjectSize(h, 42, &n), CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(f->C_SignInit(h, &mech, 42), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(f->C_SignInit(h, NULL, 42), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_SignInit(h + 1000, &mech, 42), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_VerifyInit(h, &mech, 42), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(f->C_Sign(h, buf, sizeof(buf), sig, &siglen), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_SignUpdate(h, buf, sizeof(buf)), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_SignFinal(h, sig, &siglen), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_Verify(h, buf, sizeof(buf), sig, siglen), CKR_OPERATION_NOT_INITIALIZED);

    /* not offered */
    assert_int_equal(f->C_GenerateRandom(h, buf, sizeof(buf)), CKR_RANDOM_NO_RNG);
    assert_int_equal(f->C_GenerateRandom(h + 1000, buf, sizeof(buf)), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_EncryptInit(h, &mech, 42), CKR_MECHANISM_INVALID);
    assert_int_equal(f->C_GenerateKeyPair(h, &mech, NULL, 0, NULL, 0, NULL, NULL),
                     CKR_ARGUMENTS_BAD); /* p11_keygen.c; checked before the R/O session */
    assert_int_equal(f->C_WaitForSlotEvent(0, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
    assert_int_equal(f->C_MessageSignInit(h, &mech, 42), CKR_FUNCTION_NOT_SUPPORTED);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* Digests (local), encryption and decryption argument checks, random numbers: no vault. */
static void test_crypt_without_vault(void **state)
{
    static const CK_BYTE sha256_abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                           0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                           0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                           0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    fixture *fx = *state;
    CK_FUNCTION_LIST_3_0 *f = fx->f;
    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0}, sha1 = {CKM_SHA_1, NULL, 0};
    CK_MECHANISM md5 = {CKM_MD5, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0};
    CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS op384 = {CKM_SHA384, CKG_MGF1_SHA384, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS oplabel = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
                                       (void *)"label", 5};
    CK_RSA_PKCS_OAEP_PARAMS opmix = {CKM_SHA256, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS op256 = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep384 = {CKM_RSA_PKCS_OAEP, &op384, sizeof(op384)};
    CK_MECHANISM oaeplabel = {CKM_RSA_PKCS_OAEP, &oplabel, sizeof(oplabel)};
    CK_MECHANISM oaepmix = {CKM_RSA_PKCS_OAEP, &opmix, sizeof(opmix)};
    CK_MECHANISM oaep256 = {CKM_RSA_PKCS_OAEP, &op256, sizeof(op256)};
    CK_MECHANISM oaepnoparam = {CKM_RSA_PKCS_OAEP, NULL, 0};
    CK_MECHANISM_INFO mi;
    CK_BYTE out[64], buf[16];
    CK_ULONG n;
    CK_SESSION_HANDLE h;

    init_with(fx, fx->vault_conf);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);

    /* digests */
    n = sizeof(out);
    assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, out, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_DigestUpdate(h, (CK_BYTE_PTR) "abc", 3), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_DigestInit(h, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_DigestInit(h, &md5), CKR_MECHANISM_INVALID);
    assert_int_equal(f->C_DigestInit(h + 1000, &sha256), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_DigestInit(h, &sha256), CKR_OK);
    assert_int_equal(f->C_DigestInit(h, &sha1), CKR_OPERATION_ACTIVE);
    n = 0;
    assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = 16;
    assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, out, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 32);
    n = sizeof(out);
    assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, out, &n), CKR_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(out, sha256_abc, 32);
    assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, out, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* multi-part: C_Digest may not end it; a short buffer keeps it */
    assert_int_equal(f->C_DigestInit(h, &sha256), CKR_OK);
    assert_int_equal(f->C_DigestUpdate(h, (CK_BYTE_PTR) "a", 1), CKR_OK);
    assert_int_equal(f->C_DigestUpdate(h, (CK_BYTE_PTR) "bc", 2), CKR_OK);
    n = sizeof(out);
    assert_int_equal(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, out, &n), CKR_OPERATION_ACTIVE);
    n = 1;
    assert_int_equal(f->C_DigestFinal(h, out, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 32);
    assert_int_equal(f->C_DigestFinal(h, out, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_DigestInit(h, &sha256), CKR_OK);
    assert_int_equal(f->C_DigestUpdate(h, NULL, 3), CKR_ARGUMENTS_BAD); /* ends it */
    assert_int_equal(f->C_DigestInit(h, &sha1), CKR_OK);
    assert_int_equal(f->C_SessionCancel(h, CKF_DIGEST), CKR_OK);
    assert_int_equal(f->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_DigestInit(h, &sha1), CKR_OK); /* freed by C_CloseSession */

    /* encryption and decryption: mechanism and parameter checks come before the key */
    n = sizeof(out);
    assert_int_equal(f->C_Encrypt(h, buf, sizeof(buf), out, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_Decrypt(h, buf, sizeof(buf), out, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(f->C_EncryptInit(h, NULL, 42), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_DecryptInit(h, NULL, 42), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_DecryptInit(h, &ecdsa, 42), CKR_MECHANISM_INVALID);
    assert_int_equal(f->C_DecryptInit(h, &oaep384, 42), CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(f->C_DecryptInit(h, &oaeplabel, 42), CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(f->C_DecryptInit(h, &oaepmix, 42), CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(f->C_DecryptInit(h, &oaepnoparam, 42), CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(f->C_EncryptInit(h, &oaep384, 42), CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(f->C_DecryptInit(h, &oaep256, 42), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(f->C_DecryptInit(h, &pkcs, 42), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(f->C_EncryptInit(h, &pkcs, 42), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(f->C_DecryptInit(h + 1000, &pkcs, 42), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_DecryptUpdate(h, buf, sizeof(buf), out, &n),
                     CKR_OPERATION_NOT_INITIALIZED); /* multi-part: p11_crypt.c */
    assert_int_equal(f->C_EncryptFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);

    /* mechanism information */
    assert_int_equal(f->C_GetMechanismInfo(0, CKM_RSA_PKCS_OAEP, &mi), CKR_OK);
    assert_true((mi.flags & (CKF_ENCRYPT | CKF_DECRYPT | CKF_HW)) ==
                (CKF_ENCRYPT | CKF_DECRYPT | CKF_HW));
    assert_false(mi.flags & CKF_SIGN);
    assert_int_equal(mi.ulMinKeySize, 2048);
    assert_int_equal(f->C_GetMechanismInfo(0, CKM_SHA384, &mi), CKR_OK);
    assert_int_equal(mi.flags, CKF_DIGEST);
    assert_int_equal(f->C_GetMechanismInfo(0, CKM_SHA1_RSA_PKCS_PSS, &mi), CKR_MECHANISM_INVALID);

    /* random numbers: a vault has no RNG (so no seeding either) */
    assert_int_equal(f->C_SeedRandom(h, buf, sizeof(buf)), CKR_RANDOM_NO_RNG);
    assert_int_equal(f->C_SeedRandom(h + 1000, buf, sizeof(buf)), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(f->C_GenerateRandom(h, NULL, 4), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_GenerateRandom(h, buf, sizeof(buf)), CKR_RANDOM_NO_RNG);

    assert_int_equal(f->C_CloseSession(h), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* Runs body in a child; asserts it exited 0. */
static void in_child(fixture *fx, int (*body)(fixture *))
{
    int status = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(body(fx));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int child_without_init(fixture *fx)
{
    CK_SESSION_INFO info;
    CK_ULONG n = 0;

    if (fx->f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n != 1)
        return 1;
    if (fx->f->C_GetSessionInfo(fx->parent_session, &info) != CKR_OK) /* the parent's */
        return 2;
    return fx->f->C_Finalize(NULL) == CKR_OK ? 0 : 3;
}

static int child_with_init(fixture *fx)
{
    CK_SESSION_HANDLE h;
    CK_SESSION_INFO info;

    if (fx->f->C_Initialize(NULL) != CKR_OK)
        return 1;
    if (fx->f->C_GetSessionInfo(fx->parent_session, &info) != CKR_SESSION_HANDLE_INVALID)
        return 2; /* the parent's sessions are gone after re-initialising */
    if (fx->f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK)
        return 3;
    if (fx->f->C_Initialize(NULL) != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return 4;
    return fx->f->C_Finalize(NULL) == CKR_OK ? 0 : 5;
}

static void test_fork(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE h;
    CK_SESSION_INFO info;

    init_with(fx, fx->vault_conf);
    assert_int_equal(fx->f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
    fx->parent_session = h;
    in_child(fx, child_without_init);
    in_child(fx, child_with_init);
    assert_int_equal(fx->f->C_GetSessionInfo(h, &info), CKR_OK); /* parent unaffected */
    assert_int_equal(fx->f->C_Finalize(NULL), CKR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_lists),           cmocka_unit_test(test_interfaces),
        cmocka_unit_test(test_not_initialized),          cmocka_unit_test(test_initialize_args),
        cmocka_unit_test(test_info_no_vaults),           cmocka_unit_test(test_slot_and_token),
        cmocka_unit_test(test_sessions_and_login),       cmocka_unit_test(test_crypt_without_vault),
        cmocka_unit_test(test_operations_without_vault), cmocka_unit_test(test_fork),
    };

    return cmocka_run_group_tests_name("p11_api", tests, setup, teardown);
}
