/* test_p11_badinput.c - bad input over every function kvault.so exports (issue 5, "Bad input").
 *
 * kvault.so is dlopen'ed from $KV_SO (default ./kvault.so) as applications do. A table holds
 * every entry of CK_FUNCTION_LIST_3_0 (which begins with the 2.40 list) with a caller that
 * passes either plausible arguments or NULL for every pointer; the walks call each entry, through
 * the 3.0 list and, for the 2.40 entries, through the 2.40 list, and check the return code the
 * standard lists:
 *   - before C_Initialize: CKR_CRYPTOKI_NOT_INITIALIZED;
 *   - invalid slot ids and session handles: CKR_SLOT_ID_INVALID, CKR_SESSION_HANDLE_INVALID;
 *   - NULL pointers with a valid session: CKR_ARGUMENTS_BAD (or the state error that comes first);
 *   - invalid object / key handles: CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID, ...;
 * functions kvault does not offer must say CKR_FUNCTION_NOT_SUPPORTED in every state (their
 * stub, as the standard asks), the legacy C_GetFunctionStatus / C_CancelFunction
 * CKR_FUNCTION_NOT_PARALLEL. Then the interfaces, C_INITIALIZE_ARGS, wrong lengths (the two-call
 * convention) and wrong states (operations, login, read-only sessions) one by one.
 *
 * The configuration has one vault that cannot be reached (every check here must be decided
 * before any vault call). With $KV_BADINPUT_CONF set (tests/integration/test_p11_badinput.sh:
 * a running vaultd whose first vault holds RSA key "birsa" and EC key "biec"), two more groups
 * check bad input on real objects: attribute and signature buffers, data and signature
 * lengths, mechanism / key mismatches, operation states and read-only sessions on the vault's
 * keys; AES parameters, lengths (single- and multi-part), wrap / unwrap lengths and destroyed
 * handles with module session keys on the managed HSM pool's slot ("devhsm").
 *
 * The functions added last (key generation, object creation and changes, wrap and unwrap,
 * multi-part encryption) are probed first and must not be stubs; argument and state errors
 * must get their proper codes, never CKR_FUNCTION_NOT_SUPPORTED. */
#include <dlfcn.h>
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

typedef CK_FUNCTION_LIST_3_0 kv_fl;

/* ---- the fixture ---- */

typedef struct {
    void *dl;
    CK_FUNCTION_LIST *f2;
    kv_fl *f;
    CK_C_GetFunctionList get_function_list;
    CK_C_GetInterfaceList get_interface_list;
    CK_C_GetInterface get_interface;
    char conf[64];
    const char *live_conf; /* $KV_BADINPUT_CONF or NULL */
} fixture;

static fixture *g_fx;
static int g_bad; /* mismatches in the current test */

static void write_conf(char *path, size_t size, const char *text)
{
    FILE *fp;
    int fd;

    snprintf(path, size, "/tmp/kvbadinput.XXXXXX");
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
    CK_INTERFACE *itf = NULL;
    fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    write_conf(fx->conf, sizeof(fx->conf),
               "[kvault]\ntimeout = 2\nretries = 0\n[vault unreach]\n"
               "url = https://unreach.vault.localhost:1\ntenant_id = t\nclient_id = c\n"
               "client_secret = s\nauthority = https://localhost:1\n");
    fx->live_conf = getenv("KV_BADINPUT_CONF");
    setenv("KVAULT_CONF", fx->conf, 1);
    fx->dl = dlopen(so != NULL ? so : "./kvault.so", RTLD_NOW | RTLD_LOCAL);
    if (fx->dl == NULL)
        fail_msg("dlopen: %s", dlerror());
    fx->get_function_list = (CK_C_GetFunctionList)dlsym(fx->dl, "C_GetFunctionList");
    fx->get_interface_list = (CK_C_GetInterfaceList)dlsym(fx->dl, "C_GetInterfaceList");
    fx->get_interface = (CK_C_GetInterface)dlsym(fx->dl, "C_GetInterface");
    assert_non_null(fx->get_function_list);
    assert_non_null(fx->get_interface_list);
    assert_non_null(fx->get_interface);
    assert_int_equal(fx->get_function_list(&fx->f2), CKR_OK);
    assert_int_equal(fx->get_interface(NULL, NULL, &itf, 0), CKR_OK);
    fx->f = itf->pFunctionList;
    g_fx = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;

    fx->f->C_Finalize(NULL);
    unlink(fx->conf);
    free(fx); /* no dlclose: kvault.so is linked with -z nodelete */
    return 0;
}

/* ---- expectations: every mismatch is printed, the test fails at its end ---- */

#define KV_ANY_MAX 4
typedef struct {
    CK_RV rv[KV_ANY_MAX];
    int n;
} kv_want;
#define W1(a) ((kv_want){{(a)}, 1})
#define W2(a, b) ((kv_want){{(a), (b)}, 2})
#define W3(a, b, c) ((kv_want){{(a), (b), (c)}, 3})

static bool kv_want_has(kv_want w, CK_RV rv)
{
    int i;

    for (i = 0; i < w.n; i++)
        if (w.rv[i] == rv)
            return true;
    return false;
}

/* line 0: a call of a walk (what names the walk and the function) */
static void kv_check(int line, const char *what, CK_RV got, kv_want want)
{
    if (kv_want_has(want, got))
        return;
    if (line > 0)
        print_message("line %d: ", line);
    print_message("%s returned 0x%lx, expected 0x%lx%s\n", what, (unsigned long)got,
                  (unsigned long)want.rv[0], want.n > 1 ? " (or others)" : "");
    g_bad++;
}

#define EXPECT(call, want) kv_check(__LINE__, #call, (call), W1(want))
#define EXPECT_ANY(call, want) kv_check(__LINE__, #call, (call), want)

static void kv_end(void)
{
    int bad = g_bad;

    g_bad = 0;
    if (bad > 0)
        fail_msg("%d unexpected return code(s)", bad);
}

/* ---- the function table ---- */

typedef struct {
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE obj; /* an object / key handle */
    bool nullp;           /* pass NULL for every pointer (with non-zero lengths) */
} kv_args;

typedef enum {
    KV_GEN,     /* no handle (C_GetInfo, C_GetSlotList) */
    KV_SLOT,    /* takes a slot id */
    KV_SESS,    /* takes a session handle */
    KV_STUB,    /* not offered: CKR_FUNCTION_NOT_SUPPORTED always */
    KV_LEGACY,  /* C_GetFunctionStatus / C_CancelFunction: CKR_FUNCTION_NOT_PARALLEL always */
    KV_SPECIAL, /* C_Initialize, C_Finalize, C_GetFunctionList, interfaces: own tests */
} kv_kind;

typedef struct {
    const char *name;
    size_t off; /* offset in CK_FUNCTION_LIST_3_0 */
    kv_kind kind;
    bool pending; /* added last: probed first (must not be a stub) */
    CK_RV (*call)(kv_fl *f, const kv_args *a);
    /* with a valid slot / session, NULL pointers and no operation active */
    kv_want null_want;
    /* with a valid session and valid pointers, obj = an object handle that does not exist */
    kv_want badobj_want;
    bool takes_obj;
} kv_fn;

#define P(x) (a->nullp ? NULL : (x))
#define BUF(n)                                                                                     \
    CK_BYTE buf[n];                                                                                \
    CK_ULONG len = sizeof(buf);                                                                    \
    memset(buf, 0, sizeof(buf))
static CK_BYTE kv_data[32] = "0123456789abcdef0123456789abcdef";
static CK_MECHANISM kv_m_sha256 = {CKM_SHA256, NULL, 0};
static CK_MECHANISM kv_m_ecdsa = {CKM_ECDSA, NULL, 0};
static CK_MECHANISM kv_m_rsa = {CKM_RSA_PKCS, NULL, 0};
static CK_RSA_PKCS_OAEP_PARAMS kv_oaep_p = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL,
                                            0};
static CK_MECHANISM kv_m_oaep = {CKM_RSA_PKCS_OAEP, &kv_oaep_p, sizeof(kv_oaep_p)};
static CK_MECHANISM kv_m_rsagen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
static CK_MECHANISM kv_m_aesgen = {CKM_AES_KEY_GEN, NULL, 0};
static CK_BBOOL kv_true = CK_TRUE;
static CK_ULONG kv_bits = 2048, kv_aeslen = 32;
static CK_OBJECT_CLASS kv_secret_class = CKO_SECRET_KEY;
static CK_KEY_TYPE kv_aes = CKK_AES;
static CK_ATTRIBUTE kv_t_label[] = {{CKA_LABEL, "badinput", 8}};
static CK_ATTRIBUTE kv_t_pub[] = {{CKA_TOKEN, &kv_true, sizeof(kv_true)},
                                  {CKA_MODULUS_BITS, &kv_bits, sizeof(kv_bits)},
                                  {CKA_LABEL, "badinput", 8}};
static CK_ATTRIBUTE kv_t_priv[] = {{CKA_TOKEN, &kv_true, sizeof(kv_true)},
                                   {CKA_LABEL, "badinput", 8}};
static CK_ATTRIBUTE kv_t_aes[] = {{CKA_CLASS, &kv_secret_class, sizeof(kv_secret_class)},
                                  {CKA_KEY_TYPE, &kv_aes, sizeof(kv_aes)},
                                  {CKA_TOKEN, &kv_true, sizeof(kv_true)},
                                  {CKA_VALUE_LEN, &kv_aeslen, sizeof(kv_aeslen)},
                                  {CKA_LABEL, "badinput", 8}};
static CK_BYTE kv_aes_value[16];
static CK_ATTRIBUTE kv_t_aesobj[] = {{CKA_CLASS, &kv_secret_class, sizeof(kv_secret_class)},
                                     {CKA_KEY_TYPE, &kv_aes, sizeof(kv_aes)},
                                     {CKA_TOKEN, &kv_true, sizeof(kv_true)},
                                     {CKA_VALUE, kv_aes_value, sizeof(kv_aes_value)},
                                     {CKA_LABEL, "badinput", 8}};
static CK_OBJECT_CLASS kv_hw_class = CKO_HW_FEATURE;
static CK_ATTRIBUTE kv_t_none[] = {{CKA_CLASS, &kv_hw_class, sizeof(kv_hw_class)}};
#define NATTR(t) (sizeof(t) / sizeof((t)[0]))

/* general purpose, slots and tokens */
static CK_RV c_GetInfo(kv_fl *f, const kv_args *a)
{
    CK_INFO i;
    return f->C_GetInfo(P(&i));
}
static CK_RV c_GetSlotList(kv_fl *f, const kv_args *a)
{
    CK_SLOT_ID s[8];
    CK_ULONG n = 8;
    return f->C_GetSlotList(CK_FALSE, P(s), P(&n));
}
static CK_RV c_GetSlotInfo(kv_fl *f, const kv_args *a)
{
    CK_SLOT_INFO i;
    return f->C_GetSlotInfo(a->slot, P(&i));
}
static CK_RV c_GetTokenInfo(kv_fl *f, const kv_args *a)
{
    CK_TOKEN_INFO i;
    return f->C_GetTokenInfo(a->slot, P(&i));
}
static CK_RV c_GetMechanismList(kv_fl *f, const kv_args *a)
{
    CK_MECHANISM_TYPE m[64];
    CK_ULONG n = 64;
    return f->C_GetMechanismList(a->slot, P(m), P(&n));
}
static CK_RV c_GetMechanismInfo(kv_fl *f, const kv_args *a)
{
    CK_MECHANISM_INFO i;
    return f->C_GetMechanismInfo(a->slot, CKM_SHA256, P(&i));
}
static CK_RV c_InitToken(kv_fl *f, const kv_args *a)
{
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    return f->C_InitToken(a->slot, P((CK_UTF8CHAR *)"1234"), 4, P(label));
}
static CK_RV c_InitPIN(kv_fl *f, const kv_args *a)
{
    return f->C_InitPIN(a->session, P((CK_UTF8CHAR *)"1234"), 4);
}
static CK_RV c_SetPIN(kv_fl *f, const kv_args *a)
{
    return f->C_SetPIN(a->session, P((CK_UTF8CHAR *)"1234"), 4, P((CK_UTF8CHAR *)"5678"), 4);
}
static CK_RV c_WaitForSlotEvent(kv_fl *f, const kv_args *a)
{
    CK_SLOT_ID s;
    return f->C_WaitForSlotEvent(CKF_DONT_BLOCK, P(&s), NULL);
}

/* sessions */
static CK_RV c_OpenSession(kv_fl *f, const kv_args *a)
{
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = f->C_OpenSession(a->slot, CKF_SERIAL_SESSION, NULL, NULL, P(&h));
    if (rv == CKR_OK)
        f->C_CloseSession(h);
    return rv;
}
static CK_RV c_CloseSession(kv_fl *f, const kv_args *a)
{
    (void)a;
    return f->C_CloseSession(a->session);
}
static CK_RV c_CloseAllSessions(kv_fl *f, const kv_args *a)
{
    return f->C_CloseAllSessions(a->slot);
}
static CK_RV c_GetSessionInfo(kv_fl *f, const kv_args *a)
{
    CK_SESSION_INFO i;
    return f->C_GetSessionInfo(a->session, P(&i));
}
static CK_RV c_GetOperationState(kv_fl *f, const kv_args *a)
{
    BUF(64);
    return f->C_GetOperationState(a->session, P(buf), P(&len));
}
static CK_RV c_SetOperationState(kv_fl *f, const kv_args *a)
{
    BUF(64);
    (void)len;
    return f->C_SetOperationState(a->session, P(buf), sizeof(buf), 0, 0);
}
static CK_RV c_Login(kv_fl *f, const kv_args *a)
{
    CK_RV rv = f->C_Login(a->session, CKU_USER, P((CK_UTF8CHAR *)"1234"), 4);
    if (rv == CKR_OK)
        f->C_Logout(a->session);
    return rv;
}
static CK_RV c_Logout(kv_fl *f, const kv_args *a)
{
    return f->C_Logout(a->session);
}
static CK_RV c_LoginUser(kv_fl *f, const kv_args *a)
{
    CK_RV rv = f->C_LoginUser(a->session, CKU_USER, P((CK_UTF8CHAR *)"1234"), 4,
                              P((CK_UTF8CHAR *)"user"), 4);
    if (rv == CKR_OK)
        f->C_Logout(a->session);
    return rv;
}
static CK_RV c_SessionCancel(kv_fl *f, const kv_args *a)
{
    return f->C_SessionCancel(a->session, CKF_FIND_OBJECTS);
}

/* objects */
static CK_RV c_CreateObject(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE h;
    return f->C_CreateObject(a->session, P(kv_t_aesobj), NATTR(kv_t_aesobj), P(&h));
}
static CK_RV c_CopyObject(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE h;
    return f->C_CopyObject(a->session, a->obj, P(kv_t_label), 1, P(&h));
}
static CK_RV c_DestroyObject(kv_fl *f, const kv_args *a)
{
    return f->C_DestroyObject(a->session, a->obj);
}
static CK_RV c_GetObjectSize(kv_fl *f, const kv_args *a)
{
    CK_ULONG n;
    return f->C_GetObjectSize(a->session, a->obj, P(&n));
}
static CK_RV c_GetAttributeValue(kv_fl *f, const kv_args *a)
{
    BUF(64);
    CK_ATTRIBUTE t = {CKA_LABEL, buf, len};
    return f->C_GetAttributeValue(a->session, a->obj, P(&t), 1);
}
static CK_RV c_SetAttributeValue(kv_fl *f, const kv_args *a)
{
    return f->C_SetAttributeValue(a->session, a->obj, P(kv_t_label), 1);
}
static CK_RV c_FindObjectsInit(kv_fl *f, const kv_args *a)
{
    CK_RV rv = f->C_FindObjectsInit(a->session, P(kv_t_none), 1); /* no vault call */
    if (rv == CKR_OK)
        f->C_FindObjectsFinal(a->session);
    return rv;
}
static CK_RV c_FindObjects(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE h[4];
    CK_ULONG n;
    return f->C_FindObjects(a->session, P(h), 4, P(&n));
}
static CK_RV c_FindObjectsFinal(kv_fl *f, const kv_args *a)
{
    return f->C_FindObjectsFinal(a->session);
}

/* encryption, decryption, digests */
static CK_RV c_EncryptInit(kv_fl *f, const kv_args *a)
{
    return f->C_EncryptInit(a->session, P(&kv_m_rsa), a->obj);
}
static CK_RV c_Encrypt(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_Encrypt(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_EncryptUpdate(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_EncryptUpdate(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_EncryptFinal(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_EncryptFinal(a->session, P(buf), P(&len));
}
static CK_RV c_DecryptInit(kv_fl *f, const kv_args *a)
{
    return f->C_DecryptInit(a->session, P(&kv_m_rsa), a->obj);
}
static CK_RV c_Decrypt(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_Decrypt(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_DecryptUpdate(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_DecryptUpdate(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_DecryptFinal(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_DecryptFinal(a->session, P(buf), P(&len));
}
static CK_RV c_DigestInit(kv_fl *f, const kv_args *a)
{
    CK_RV rv = f->C_DigestInit(a->session, P(&kv_m_sha256));
    if (rv == CKR_OK)
        f->C_SessionCancel(a->session, CKF_DIGEST);
    return rv;
}
static CK_RV c_Digest(kv_fl *f, const kv_args *a)
{
    BUF(64);
    return f->C_Digest(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_DigestUpdate(kv_fl *f, const kv_args *a)
{
    return f->C_DigestUpdate(a->session, P(kv_data), sizeof(kv_data));
}
static CK_RV c_DigestKey(kv_fl *f, const kv_args *a)
{
    return f->C_DigestKey(a->session, a->obj);
}
static CK_RV c_DigestFinal(kv_fl *f, const kv_args *a)
{
    BUF(64);
    return f->C_DigestFinal(a->session, P(buf), P(&len));
}

/* signatures */
static CK_RV c_SignInit(kv_fl *f, const kv_args *a)
{
    return f->C_SignInit(a->session, P(&kv_m_ecdsa), a->obj);
}
static CK_RV c_Sign(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_Sign(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_SignUpdate(kv_fl *f, const kv_args *a)
{
    return f->C_SignUpdate(a->session, P(kv_data), sizeof(kv_data));
}
static CK_RV c_SignFinal(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_SignFinal(a->session, P(buf), P(&len));
}
static CK_RV c_SignRecoverInit(kv_fl *f, const kv_args *a)
{
    return f->C_SignRecoverInit(a->session, P(&kv_m_rsa), a->obj);
}
static CK_RV c_SignRecover(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_SignRecover(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}
static CK_RV c_VerifyInit(kv_fl *f, const kv_args *a)
{
    return f->C_VerifyInit(a->session, P(&kv_m_ecdsa), a->obj);
}
static CK_RV c_Verify(kv_fl *f, const kv_args *a)
{
    return f->C_Verify(a->session, P(kv_data), sizeof(kv_data), P(kv_data), sizeof(kv_data));
}
static CK_RV c_VerifyUpdate(kv_fl *f, const kv_args *a)
{
    return f->C_VerifyUpdate(a->session, P(kv_data), sizeof(kv_data));
}
static CK_RV c_VerifyFinal(kv_fl *f, const kv_args *a)
{
    return f->C_VerifyFinal(a->session, P(kv_data), sizeof(kv_data));
}
static CK_RV c_VerifyRecoverInit(kv_fl *f, const kv_args *a)
{
    return f->C_VerifyRecoverInit(a->session, P(&kv_m_rsa), a->obj);
}
static CK_RV c_VerifyRecover(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_VerifyRecover(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));
}

/* dual-function */
#define KV_DUAL(fn)                                                                                \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        BUF(512);                                                                                  \
        return f->C_##fn(a->session, P(kv_data), sizeof(kv_data), P(buf), P(&len));                \
    }
KV_DUAL(DigestEncryptUpdate)
KV_DUAL(DecryptDigestUpdate)
KV_DUAL(SignEncryptUpdate)
KV_DUAL(DecryptVerifyUpdate)

/* key management, random numbers, legacy */
static CK_RV c_GenerateKey(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE h;
    return f->C_GenerateKey(a->session, P(&kv_m_aesgen), P(kv_t_aes), NATTR(kv_t_aes), P(&h));
}
static CK_RV c_GenerateKeyPair(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE pub, priv;
    return f->C_GenerateKeyPair(a->session, P(&kv_m_rsagen), P(kv_t_pub), NATTR(kv_t_pub),
                                P(kv_t_priv), NATTR(kv_t_priv), P(&pub), P(&priv));
}
static CK_RV c_WrapKey(kv_fl *f, const kv_args *a)
{
    BUF(512);
    return f->C_WrapKey(a->session, P(&kv_m_oaep), a->obj, a->obj + 1, P(buf), P(&len));
}
static CK_RV c_UnwrapKey(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE h;
    return f->C_UnwrapKey(a->session, P(&kv_m_oaep), a->obj, P(kv_data), sizeof(kv_data),
                          P(kv_t_aes), NATTR(kv_t_aes), P(&h));
}
static CK_RV c_DeriveKey(kv_fl *f, const kv_args *a)
{
    CK_OBJECT_HANDLE h;
    return f->C_DeriveKey(a->session, P(&kv_m_sha256), a->obj, P(kv_t_aes), NATTR(kv_t_aes), P(&h));
}
static CK_RV c_SeedRandom(kv_fl *f, const kv_args *a)
{
    return f->C_SeedRandom(a->session, P(kv_data), sizeof(kv_data));
}
static CK_RV c_GenerateRandom(kv_fl *f, const kv_args *a)
{
    BUF(32);
    (void)len;
    return f->C_GenerateRandom(a->session, P(buf), sizeof(buf));
}
static CK_RV c_GetFunctionStatus(kv_fl *f, const kv_args *a)
{
    return f->C_GetFunctionStatus(a->session);
}
static CK_RV c_CancelFunction(kv_fl *f, const kv_args *a)
{
    return f->C_CancelFunction(a->session);
}

/* PKCS#11 3.0 message-based functions (all stubs) */
#define KV_MSG_INIT(fn)                                                                            \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        return f->C_##fn(a->session, P(&kv_m_sha256), a->obj);                                     \
    }
#define KV_MSG_FINAL(fn)                                                                           \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        return f->C_##fn(a->session);                                                              \
    }
#define KV_MSG_CRYPT(fn)                                                                           \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        BUF(64);                                                                                   \
        return f->C_##fn(a->session, P(buf), 12, P(kv_data), 4, P(kv_data), sizeof(kv_data),       \
                         P(buf), P(&len));                                                         \
    }
#define KV_MSG_BEGIN(fn)                                                                           \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        BUF(64);                                                                                   \
        (void)len;                                                                                 \
        return f->C_##fn(a->session, P(buf), 12, P(kv_data), 4);                                   \
    }
#define KV_MSG_NEXT(fn)                                                                            \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        BUF(64);                                                                                   \
        return f->C_##fn(a->session, P(buf), 12, P(kv_data), sizeof(kv_data), P(buf), P(&len),     \
                         0x1 /* CKF_END_OF_MESSAGE */);                                            \
    }
#define KV_MSG_SIGN(fn)                                                                            \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        BUF(64);                                                                                   \
        return f->C_##fn(a->session, NULL, 0, P(kv_data), sizeof(kv_data), P(buf), P(&len));       \
    }
#define KV_MSG_VERIFY(fn)                                                                          \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        return f->C_##fn(a->session, NULL, 0, P(kv_data), sizeof(kv_data), P(kv_data), 8);         \
    }
#define KV_MSG_SBEGIN(fn)                                                                          \
    static CK_RV c_##fn(kv_fl *f, const kv_args *a)                                                \
    {                                                                                              \
        (void)a;                                                                                   \
        return f->C_##fn(a->session, NULL, 0);                                                     \
    }
KV_MSG_INIT(MessageEncryptInit)
KV_MSG_CRYPT(EncryptMessage)
KV_MSG_BEGIN(EncryptMessageBegin)
KV_MSG_NEXT(EncryptMessageNext)
KV_MSG_FINAL(MessageEncryptFinal)
KV_MSG_INIT(MessageDecryptInit)
KV_MSG_CRYPT(DecryptMessage)
KV_MSG_BEGIN(DecryptMessageBegin)
KV_MSG_NEXT(DecryptMessageNext)
KV_MSG_FINAL(MessageDecryptFinal)
KV_MSG_INIT(MessageSignInit)
KV_MSG_SIGN(SignMessage)
KV_MSG_SBEGIN(SignMessageBegin)
KV_MSG_SIGN(SignMessageNext)
KV_MSG_FINAL(MessageSignFinal)
KV_MSG_INIT(MessageVerifyInit)
KV_MSG_VERIFY(VerifyMessage)
KV_MSG_SBEGIN(VerifyMessageBegin)
KV_MSG_VERIFY(VerifyMessageNext)
KV_MSG_FINAL(MessageVerifyFinal)

/* Shorthands for the table. */
#define OFF(fn) offsetof(kv_fl, C_##fn)
#define NOW W1(0xFFFFFFFFUL) /* not applicable */
#define BAD W1(CKR_ARGUMENTS_BAD)
#define ONI W1(CKR_OPERATION_NOT_INITIALIZED)
#define SPECIAL(fn)                                                                                \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_SPECIAL, false, NULL, NOW, NOW, false                                \
    }
#define GEN(fn, nw)                                                                                \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_GEN, false, c_##fn, nw, NOW, false                                   \
    }
#define SLOT(fn, nw)                                                                               \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_SLOT, false, c_##fn, nw, NOW, false                                  \
    }
#define SESS(fn, nw)                                                                               \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_SESS, false, c_##fn, nw, NOW, false                                  \
    }
#define SOBJ(fn, nw, ow)                                                                           \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_SESS, false, c_##fn, nw, ow, true                                    \
    }
/* added last (test_probe_pending: must not be stubs): */
#define PEND(fn, nw)                                                                               \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_SESS, true, c_##fn, nw, NOW, false                                   \
    }
#define POBJ(fn, nw, ow)                                                                           \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_SESS, true, c_##fn, nw, ow, true                                     \
    }
#define STUB(fn)                                                                                   \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_STUB, false, c_##fn, NOW, NOW, false                                 \
    }
#define LEGACY(fn)                                                                                 \
    {                                                                                              \
        "C_" #fn, OFF(fn), KV_LEGACY, false, c_##fn, NOW, NOW, false                               \
    }

/* Invalid object handles: the standard's code for the role the handle plays. */
#define OBJ W1(CKR_OBJECT_HANDLE_INVALID)
#define KEY W1(CKR_KEY_HANDLE_INVALID)

static kv_fn kv_fns[] = {
    SPECIAL(Initialize),
    SPECIAL(Finalize),
    GEN(GetInfo, BAD),
    SPECIAL(GetFunctionList),
    GEN(GetSlotList, BAD),
    SLOT(GetSlotInfo, BAD),
    SLOT(GetTokenInfo, BAD),
    SLOT(GetMechanismList, BAD),
    SLOT(GetMechanismInfo, BAD),
    STUB(InitToken),
    STUB(InitPIN),
    STUB(SetPIN),
    SLOT(OpenSession, BAD),
    SESS(CloseSession, NOW), /* no pointers */
    SLOT(CloseAllSessions, NOW),
    SESS(GetSessionInfo, BAD),
    STUB(GetOperationState),
    STUB(SetOperationState),
    SESS(Login, BAD), /* NULL PIN with a non-zero length */
    SESS(Logout, NOW),
    /* CKA_TOKEN=TRUE objects in a read-only session: CKR_SESSION_READ_ONLY may come first */
    PEND(CreateObject, W2(CKR_ARGUMENTS_BAD, CKR_SESSION_READ_ONLY)),
    STUB(CopyObject),
    POBJ(DestroyObject, NOW, W2(CKR_OBJECT_HANDLE_INVALID, CKR_SESSION_READ_ONLY)),
    SOBJ(GetObjectSize, NOW, OBJ),
    SOBJ(GetAttributeValue, W2(CKR_ARGUMENTS_BAD, CKR_OBJECT_HANDLE_INVALID), OBJ),
    POBJ(SetAttributeValue, W3(CKR_ARGUMENTS_BAD, CKR_OBJECT_HANDLE_INVALID, CKR_SESSION_READ_ONLY),
         W2(CKR_OBJECT_HANDLE_INVALID, CKR_SESSION_READ_ONLY)),
    SESS(FindObjectsInit, BAD),
    SESS(FindObjects, W2(CKR_ARGUMENTS_BAD, CKR_OPERATION_NOT_INITIALIZED)),
    SESS(FindObjectsFinal, ONI),
    SOBJ(EncryptInit, BAD, KEY),
    SESS(Encrypt, ONI),
    PEND(EncryptUpdate, ONI),
    PEND(EncryptFinal, ONI),
    SOBJ(DecryptInit, BAD, KEY),
    SESS(Decrypt, ONI),
    PEND(DecryptUpdate, ONI),
    PEND(DecryptFinal, ONI),
    SESS(DigestInit, BAD),
    SESS(Digest, ONI),
    SESS(DigestUpdate, ONI),
    STUB(DigestKey),
    SESS(DigestFinal, ONI),
    SOBJ(SignInit, BAD, KEY),
    SESS(Sign, ONI),
    SESS(SignUpdate, ONI),
    SESS(SignFinal, ONI),
    STUB(SignRecoverInit),
    STUB(SignRecover),
    SOBJ(VerifyInit, BAD, KEY),
    SESS(Verify, ONI),
    SESS(VerifyUpdate, ONI),
    SESS(VerifyFinal, ONI),
    STUB(VerifyRecoverInit),
    STUB(VerifyRecover),
    STUB(DigestEncryptUpdate),
    STUB(DecryptDigestUpdate),
    STUB(SignEncryptUpdate),
    STUB(DecryptVerifyUpdate),
    PEND(GenerateKey, W2(CKR_ARGUMENTS_BAD, CKR_SESSION_READ_ONLY)),
    PEND(GenerateKeyPair, W2(CKR_ARGUMENTS_BAD, CKR_SESSION_READ_ONLY)),
    POBJ(WrapKey, BAD, W2(CKR_WRAPPING_KEY_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID)),
    POBJ(UnwrapKey, W2(CKR_ARGUMENTS_BAD, CKR_SESSION_READ_ONLY),
         W2(CKR_UNWRAPPING_KEY_HANDLE_INVALID, CKR_SESSION_READ_ONLY)),
    STUB(DeriveKey),
    SESS(SeedRandom, W2(CKR_ARGUMENTS_BAD, CKR_RANDOM_NO_RNG)),
    SESS(GenerateRandom, BAD),
    LEGACY(GetFunctionStatus),
    LEGACY(CancelFunction),
    STUB(WaitForSlotEvent),
    /* PKCS#11 3.0 */
    SPECIAL(GetInterfaceList),
    SPECIAL(GetInterface),
    SESS(LoginUser, BAD),
    SESS(SessionCancel, NOW),
    STUB(MessageEncryptInit),
    STUB(EncryptMessage),
    STUB(EncryptMessageBegin),
    STUB(EncryptMessageNext),
    STUB(MessageEncryptFinal),
    STUB(MessageDecryptInit),
    STUB(DecryptMessage),
    STUB(DecryptMessageBegin),
    STUB(DecryptMessageNext),
    STUB(MessageDecryptFinal),
    STUB(MessageSignInit),
    STUB(SignMessage),
    STUB(SignMessageBegin),
    STUB(SignMessageNext),
    STUB(MessageSignFinal),
    STUB(MessageVerifyInit),
    STUB(VerifyMessage),
    STUB(VerifyMessageBegin),
    STUB(VerifyMessageNext),
    STUB(MessageVerifyFinal),
};
#define KV_NFNS (sizeof(kv_fns) / sizeof(kv_fns[0]))
#define KV_N240 68 /* entries of CK_FUNCTION_LIST */
static bool kv_is_stub[KV_NFNS];

static bool kv_na(kv_want w)
{
    return w.n == 1 && w.rv[0] == 0xFFFFFFFFUL;
}

/* Calls entry e through the 3.0 list and, for a 2.40 entry, through the 2.40 list too, and
 * checks both results; an entry still stubbed may say CKR_FUNCTION_NOT_SUPPORTED. */
static void kv_walk_call(const char *walk, size_t i, const kv_args *a, kv_want want)
{
    const kv_fn *e = &kv_fns[i];
    char what[160];
    CK_RV rv;
    int pass;

    if (kv_is_stub[i] && want.n < KV_ANY_MAX)
        want.rv[want.n++] = CKR_FUNCTION_NOT_SUPPORTED;
    for (pass = 0; pass < 2; pass++) {
        kv_fl *f = pass == 0 ? g_fx->f : (kv_fl *)g_fx->f2;

        if (pass == 1 && e->off >= OFF(GetInterfaceList))
            break; /* 3.0-only entry */
        rv = e->call(f, a);
        snprintf(what, sizeof(what), "%s: %s%s (%s list)", walk, e->name,
                 a->nullp ? "(NULL pointers)" : "", pass == 0 ? "3.0" : "2.40");
        kv_check(0, what, rv, want);
    }
}

static void init_conf(const char *conf)
{
    setenv("KVAULT_CONF", conf, 1);
    assert_int_equal(g_fx->f->C_Initialize(NULL), CKR_OK);
}

/* ---- tests ---- */

/* The table covers every slot of CK_FUNCTION_LIST_3_0; every slot of both lists is set. */
static void test_table_complete(void **state)
{
    fixture *fx = *state;
    const size_t first = offsetof(kv_fl, C_Initialize);
    const size_t nslots = (sizeof(kv_fl) - first) / sizeof(void (*)(void));
    bool seen[128];
    size_t i;

    assert_int_equal(nslots, 92);
    assert_int_equal(KV_NFNS, 92);
    assert_int_equal(offsetof(kv_fl, C_GetInterfaceList),
                     offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent) + sizeof(void (*)(void)));
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < KV_NFNS; i++) {
        size_t slot = (kv_fns[i].off - first) / sizeof(void (*)(void));

        assert_true(slot < nslots);
        if (seen[slot])
            fail_msg("%s listed twice", kv_fns[i].name);
        seen[slot] = true;
        if (*(void **)((char *)fx->f + kv_fns[i].off) == NULL)
            fail_msg("3.0 list: %s is NULL", kv_fns[i].name);
        if (slot < KV_N240 && *(void **)((char *)fx->f2 + kv_fns[i].off) == NULL)
            fail_msg("2.40 list: %s is NULL", kv_fns[i].name);
    }
    assert_int_equal(fx->f->version.major, 3);
    assert_int_equal(fx->f->version.minor, 0);
    assert_int_equal(fx->f2->version.major, 2);
    assert_int_equal(fx->f2->version.minor, 40);
    /* the lists share the 2.40 functions except C_GetInfo (it reports the list's version) */
    assert_ptr_equal(fx->f->C_Sign, fx->f2->C_Sign);
    assert_ptr_equal(fx->f->C_GetInterfaceList, fx->get_interface_list);
    assert_ptr_equal(fx->f->C_GetInterface, fx->get_interface);
    assert_ptr_equal(fx->f2->C_GetFunctionList, fx->get_function_list);
}

/* The functions added last (key generation, object creation and changes, wrap / unwrap,
 * multi-part encryption) must not be stubs. */
static void test_probe_pending(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE h;
    size_t i;
    int stubs = 0;

    init_conf(fx->conf);
    assert_int_equal(fx->f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h),
                     CKR_OK);
    for (i = 0; i < KV_NFNS; i++) {
        kv_args a = {.slot = 0, .session = h, .obj = 0x7ffff0, .nullp = true};

        if (!kv_fns[i].pending)
            continue;
        kv_is_stub[i] = kv_fns[i].call(fx->f, &a) == CKR_FUNCTION_NOT_SUPPORTED;
        if (kv_is_stub[i]) {
            print_message("%s is a stub again (CKR_FUNCTION_NOT_SUPPORTED)\n", kv_fns[i].name);
            stubs++;
        }
    }
    assert_int_equal(fx->f->C_Finalize(NULL), CKR_OK);
    /* They all exist now (issue 5): a stub is a regression. The other walks still tolerate one,
     * so that they report everything else. */
    assert_int_equal(stubs, 0);
}

static void kv_walk_fixed(const char *walk, const kv_args *a, CK_RV sess_rv, CK_RV slot_rv,
                          CK_RV gen_rv)
{
    size_t i;

    for (i = 0; i < KV_NFNS; i++) {
        const kv_fn *e = &kv_fns[i];
        kv_want w;

        switch (e->kind) {
        case KV_GEN:
            if (gen_rv == CKR_OK)
                continue;
            w = W1(gen_rv);
            break;
        case KV_SLOT:
            w = W1(slot_rv);
            break;
        case KV_SESS:
            w = W1(sess_rv);
            break;
        case KV_STUB:
            w = W1(CKR_FUNCTION_NOT_SUPPORTED);
            break;
        case KV_LEGACY:
            w = W1(CKR_FUNCTION_NOT_PARALLEL);
            break;
        default:
            continue;
        }
        kv_walk_call(walk, i, a, w);
    }
}

/* Every function before C_Initialize (and after C_Finalize). */
static void test_walk_not_initialized(void **state)
{
    fixture *fx = *state;
    kv_args a = {.slot = 0, .session = 1, .obj = 1, .nullp = false};
    CK_INFO info;

    kv_walk_fixed("not initialized", &a, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_CRYPTOKI_NOT_INITIALIZED,
                  CKR_CRYPTOKI_NOT_INITIALIZED);
    a.nullp = true; /* NULL pointers do not change that */
    kv_walk_fixed("not initialized", &a, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_CRYPTOKI_NOT_INITIALIZED,
                  CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(fx->f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(fx->f2->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* once initialised and finalised again, the same */
    init_conf(fx->conf);
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    a.nullp = false;
    kv_walk_fixed("after C_Finalize", &a, CKR_CRYPTOKI_NOT_INITIALIZED,
                  CKR_CRYPTOKI_NOT_INITIALIZED, CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(fx->f2->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    kv_end();
}

/* Invalid slot ids and session handles (valid pointers), including CK_INVALID_HANDLE and a
 * handle that was closed. */
static void test_walk_invalid_handles(void **state)
{
    fixture *fx = *state;
    kv_args a = {.slot = 7, .session = 0x5eed, .obj = 1, .nullp = false};
    CK_SESSION_HANDLE h;

    init_conf(fx->conf);
    kv_walk_fixed("invalid handles", &a, CKR_SESSION_HANDLE_INVALID, CKR_SLOT_ID_INVALID, CKR_OK);
    a.slot = (CK_SLOT_ID)-1;
    a.session = CK_INVALID_HANDLE;
    kv_walk_fixed("invalid handles (0 / ~0)", &a, CKR_SESSION_HANDLE_INVALID, CKR_SLOT_ID_INVALID,
                  CKR_OK);
    EXPECT(fx->f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
    EXPECT(fx->f->C_CloseSession(h), CKR_OK);
    a.slot = 1;
    a.session = h; /* closed */
    kv_walk_fixed("closed session", &a, CKR_SESSION_HANDLE_INVALID, CKR_SLOT_ID_INVALID, CKR_OK);
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* NULL for every pointer, with a valid slot and a valid session (read-only, then read-write)
 * and no operation active. */
static void test_walk_null_pointers(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE ro, rw;
    int pass;
    size_t i;

    init_conf(fx->conf);
    EXPECT(fx->f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    EXPECT(fx->f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw), CKR_OK);
    for (pass = 0; pass < 2; pass++) {
        kv_args a = {.slot = 0, .session = pass == 0 ? ro : rw, .obj = 0x7ffff0, .nullp = true};

        /* the read-write pass is logged in: writes need a user (CKR_USER_NOT_LOGGED_IN), so only
         * argument errors are left */
        if (pass == 1)
            EXPECT(fx->f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_OK);
        for (i = 0; i < KV_NFNS; i++) {
            const kv_fn *e = &kv_fns[i];

            if (e->kind == KV_STUB)
                kv_walk_call("NULL pointers", i, &a, W1(CKR_FUNCTION_NOT_SUPPORTED));
            else if (e->kind == KV_LEGACY)
                kv_walk_call("NULL pointers", i, &a, W1(CKR_FUNCTION_NOT_PARALLEL));
            else if (e->kind != KV_SPECIAL && !kv_na(e->null_want))
                kv_walk_call(pass == 0 ? "NULL pointers, RO session" : "NULL pointers, RW session",
                             i, &a, e->null_want);
        }
    }
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* Object and key handles that do not exist (valid pointers and mechanisms). */
static void test_walk_invalid_objects(void **state)
{
    fixture *fx = *state;
    CK_OBJECT_HANDLE objs[] = {CK_INVALID_HANDLE, 0x7ffff0, (CK_OBJECT_HANDLE)-1};
    CK_SESSION_HANDLE rw;
    size_t i, k;

    init_conf(fx->conf);
    EXPECT(fx->f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw), CKR_OK);
    EXPECT(fx->f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_OK); /* writes need it */
    for (k = 0; k < sizeof(objs) / sizeof(objs[0]); k++) {
        kv_args a = {.slot = 0, .session = rw, .obj = objs[k], .nullp = false};

        for (i = 0; i < KV_NFNS; i++) {
            const kv_fn *e = &kv_fns[i];

            if (e->takes_obj)
                kv_walk_call("invalid object handle", i, &a, e->badobj_want);
            else if (e->kind == KV_STUB && kv_fns[i].call != NULL)
                kv_walk_call("invalid object handle", i, &a, W1(CKR_FUNCTION_NOT_SUPPORTED));
        }
    }
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* C_GetFunctionList, C_GetInterfaceList, C_GetInterface: NULL, unknown names, versions and
 * flags, short buffers. These work without C_Initialize. */
static void test_interfaces(void **state)
{
    fixture *fx = *state;
    CK_INTERFACE list[4], *itf = NULL;
    CK_VERSION v240 = {2, 40}, v30 = {3, 0}, v31 = {3, 1}, v211 = {2, 11}, v0 = {0, 0};
    CK_FUNCTION_LIST *fl = NULL;
    CK_ULONG n = 0;

    EXPECT(fx->get_function_list(NULL), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_function_list(&fl), CKR_OK);
    assert_ptr_equal(fl, fx->f2);
    EXPECT(fx->f->C_GetFunctionList(&fl), CKR_OK); /* through the list too */
    assert_ptr_equal(fl, fx->f2);

    EXPECT(fx->get_interface_list(NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface_list(list, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface_list(NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    n = 0;
    EXPECT(fx->get_interface_list(list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2); /* the needed count */
    n = 1;
    EXPECT(fx->get_interface_list(list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2);
    n = 4;
    EXPECT(fx->get_interface_list(list, &n), CKR_OK);
    assert_int_equal(n, 2);
    assert_true(list[0].flags & CKF_INTERFACE_FORK_SAFE);

    EXPECT(fx->get_interface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface((CK_UTF8CHAR *)"PKCS 11", &v30, NULL, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface((CK_UTF8CHAR *)"PKCS 11", &v240, &itf, 0), CKR_OK);
    assert_ptr_equal(itf->pFunctionList, fx->f2);
    EXPECT(fx->get_interface((CK_UTF8CHAR *)"PKCS 11", &v30, &itf, 0), CKR_OK);
    assert_ptr_equal(itf->pFunctionList, fx->f);
    EXPECT(fx->get_interface(NULL, &v30, &itf, CKF_INTERFACE_FORK_SAFE), CKR_OK);
    itf = NULL;
    EXPECT(fx->get_interface(NULL, &v31, &itf, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface(NULL, &v211, &itf, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface(NULL, &v0, &itf, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface((CK_UTF8CHAR *)"Vendor kvault", NULL, &itf, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface((CK_UTF8CHAR *)"", NULL, &itf, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface((CK_UTF8CHAR *)"PKCS 11 ", NULL, &itf, 0), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface(NULL, NULL, &itf, 0x2), CKR_ARGUMENTS_BAD);
    EXPECT(fx->get_interface(NULL, NULL, &itf, ~(CK_FLAGS)0), CKR_ARGUMENTS_BAD);
    assert_null(itf); /* untouched on failure */
    kv_end();
}

static CK_RV kv_create_mutex(CK_VOID_PTR_PTR m)
{
    *m = NULL;
    return CKR_OK;
}

static CK_RV kv_mutex_op(CK_VOID_PTR m)
{
    (void)m;
    return CKR_OK;
}

/* C_Initialize / C_Finalize states and CK_C_INITIALIZE_ARGS. */
static void test_initialize_states(void **state)
{
    fixture *fx = *state;
    CK_C_INITIALIZE_ARGS a;
    int dummy = 0, mask;

    setenv("KVAULT_CONF", fx->conf, 1);
    memset(&a, 0, sizeof(a));
    a.pReserved = &dummy;
    EXPECT(fx->f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    /* every proper subset of the four mutex functions */
    for (mask = 1; mask < 15; mask++) {
        memset(&a, 0, sizeof(a));
        a.flags = CKF_OS_LOCKING_OK;
        a.CreateMutex = (mask & 1) ? kv_create_mutex : NULL;
        a.DestroyMutex = (mask & 2) ? kv_mutex_op : NULL;
        a.LockMutex = (mask & 4) ? kv_mutex_op : NULL;
        a.UnlockMutex = (mask & 8) ? kv_mutex_op : NULL;
        EXPECT(fx->f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    }
    memset(&a, 0, sizeof(a));
    a.CreateMutex = kv_create_mutex;
    a.DestroyMutex = a.LockMutex = a.UnlockMutex = kv_mutex_op;
    EXPECT(fx->f->C_Initialize(&a), CKR_CANT_LOCK); /* only the application's locking */
    EXPECT(fx->f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);

    a.flags = CKF_OS_LOCKING_OK; /* both offered: ours */
    EXPECT(fx->f->C_Initialize(&a), CKR_OK);
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK; /* alone: fine */
    EXPECT(fx->f->C_Initialize(&a), CKR_OK);
    EXPECT(fx->f->C_Initialize(&a), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    EXPECT(fx->f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    EXPECT(fx->f2->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    EXPECT(fx->f->C_Finalize(&dummy), CKR_ARGUMENTS_BAD); /* pReserved must be NULL */
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    EXPECT(fx->f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(fx->f->C_Finalize(&dummy), CKR_ARGUMENTS_BAD);
    memset(&a, 0, sizeof(a));
    a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
    EXPECT(fx->f->C_Initialize(&a), CKR_OK);
    EXPECT(fx->f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* The two-call convention: length queries and CKR_BUFFER_TOO_SMALL with the needed length. */
static void test_lengths(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_MECHANISM_TYPE mechs[64];
    CK_SLOT_ID slots[4];
    CK_BYTE out[64];
    CK_ULONG n, need;
    CK_SESSION_HANDLE h;
    CK_UTF8CHAR longpin[300];

    init_conf(fx->conf);
    n = 0;
    EXPECT(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(n, 1);
    n = 0;
    EXPECT(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 1);
    EXPECT(f->C_GetMechanismList(0, NULL, &need), CKR_OK);
    assert_true(need > 1 && need <= 64);
    n = 1;
    EXPECT(f->C_GetMechanismList(0, mechs, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, need);
    n = 64;
    EXPECT(f->C_GetMechanismList(0, mechs, &n), CKR_OK);
    assert_int_equal(n, need);
    EXPECT(f->C_GetMechanismInfo(0, CKM_VENDOR_DEFINED + 1, (CK_MECHANISM_INFO *)out),
           CKR_MECHANISM_INVALID);

    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
    /* single-part digest: length query, short buffer (the operation stays active), success */
    EXPECT(f->C_DigestInit(h, &kv_m_sha256), CKR_OK);
    n = 0;
    EXPECT(f->C_Digest(h, kv_data, sizeof(kv_data), NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = 31;
    EXPECT(f->C_Digest(h, kv_data, sizeof(kv_data), out, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 32);
    n = 0;
    EXPECT(f->C_Digest(h, kv_data, sizeof(kv_data), out, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 32);
    n = sizeof(out);
    EXPECT(f->C_Digest(h, kv_data, sizeof(kv_data), out, &n), CKR_OK);
    assert_int_equal(n, 32);
    /* multi-part */
    EXPECT(f->C_DigestInit(h, &kv_m_sha256), CKR_OK);
    EXPECT(f->C_DigestUpdate(h, kv_data, 0), CKR_OK); /* empty part */
    EXPECT(f->C_DigestUpdate(h, kv_data, sizeof(kv_data)), CKR_OK);
    n = 0;
    EXPECT(f->C_DigestFinal(h, NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = 2;
    EXPECT(f->C_DigestFinal(h, out, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 32);
    n = sizeof(out);
    EXPECT(f->C_DigestFinal(h, out, &n), CKR_OK);
    EXPECT(f->C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
    /* mechanism parameters that digests do not take */
    {
        CK_MECHANISM withparam = {CKM_SHA256, out, 4};
        EXPECT(f->C_DigestInit(h, &withparam), CKR_MECHANISM_PARAM_INVALID);
    }
    /* a NULL PIN with a non-zero length; a PIN longer than ulMaxPinLen */
    EXPECT(f->C_Login(h, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    /* a PIN longer than ulMaxPinLen: refused where the PIN matters (a sealed credential),
     * accepted where any PIN is (docs/pkcs11.md, "Login and PIN") */
    memset(longpin, 'p', sizeof(longpin));
    if (f->C_Login(h, CKU_USER, longpin, sizeof(longpin)) == CKR_OK)
        EXPECT(f->C_Logout(h), CKR_OK);
    /* random numbers: a vault has no RNG */
    EXPECT(f->C_GenerateRandom(h, NULL, 16), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateRandom(h, out, 16), CKR_RANDOM_NO_RNG);
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* Operation states: Update/Final without Init, Init twice, Find without FindInit, login. */
static void test_states(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_OBJECT_HANDLE objs[4];
    CK_SESSION_HANDLE ro, rw, ro2;
    CK_SESSION_INFO si;
    CK_BYTE out[64];
    CK_ULONG n;
    size_t i;

    init_conf(fx->conf);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    EXPECT(f->C_OpenSession(0, 0, NULL, NULL, &rw), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw), CKR_OK);

    /* Update / Final / single-part without Init: every operation of the walk table */
    for (i = 0; i < KV_NFNS; i++) {
        kv_args a = {.slot = 0, .session = ro, .obj = 1, .nullp = false};
        const kv_fn *e = &kv_fns[i];

        if (e->kind == KV_SESS && e->null_want.n == 1 &&
            e->null_want.rv[0] == CKR_OPERATION_NOT_INITIALIZED)
            kv_walk_call("no operation", i, &a, ONI);
    }
    n = 4;
    EXPECT(f->C_FindObjects(ro, objs, 4, &n), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_FindObjectsFinal(ro), CKR_OPERATION_NOT_INITIALIZED);

    /* Init twice */
    EXPECT(f->C_FindObjectsInit(ro, kv_t_none, 1), CKR_OK);
    EXPECT(f->C_FindObjectsInit(ro, kv_t_none, 1), CKR_OPERATION_ACTIVE);
    EXPECT(f->C_FindObjects(ro, objs, 4, NULL), CKR_ARGUMENTS_BAD);
    n = 4;
    EXPECT(f->C_FindObjects(ro, objs, 0, &n), CKR_OK); /* room for none */
    assert_int_equal(n, 0);
    EXPECT(f->C_FindObjectsFinal(ro), CKR_OK);
    EXPECT(f->C_FindObjectsFinal(ro), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OK);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OPERATION_ACTIVE);
    EXPECT(f->C_DigestInit(rw, &kv_m_sha256), CKR_OK); /* per session */
    EXPECT(f->C_DigestUpdate(ro, kv_data, 4), CKR_OK);
    n = sizeof(out);
    EXPECT(f->C_Digest(ro, kv_data, 4, out, &n), CKR_OPERATION_ACTIVE); /* multi-part begun */
    EXPECT(f->C_SessionCancel(ro, CKF_DIGEST), CKR_OK);
    EXPECT(f->C_DigestUpdate(ro, kv_data, 4), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_DigestInit(ro, NULL), CKR_ARGUMENTS_BAD);
    {
        CK_MECHANISM md5 = {CKM_MD5, NULL, 0};
        EXPECT(f->C_DigestInit(ro, &md5), CKR_MECHANISM_INVALID);
        EXPECT_ANY(f->C_SignInit(ro, &kv_m_sha256, 1),
                   W2(CKR_KEY_HANDLE_INVALID, CKR_MECHANISM_INVALID));
    }
    /* a key or mechanism error ends nothing and starts nothing */
    n = sizeof(out);
    EXPECT(f->C_Sign(ro, kv_data, 4, out, &n), CKR_OPERATION_NOT_INITIALIZED);

    /* login state machine */
    EXPECT(f->C_Logout(ro), CKR_USER_NOT_LOGGED_IN);
    EXPECT(f->C_Login(ro, 42, (CK_UTF8CHAR *)"1234", 4), CKR_USER_TYPE_INVALID);
    EXPECT(f->C_Login(ro, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR *)"1234", 4),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR *)"1234", 4), CKR_SESSION_READ_ONLY_EXISTS);
    EXPECT(f->C_Login(ro, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_OK);
    EXPECT(f->C_Login(ro, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_USER_ALREADY_LOGGED_IN);
    EXPECT(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_USER_ALREADY_LOGGED_IN);
    EXPECT(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR *)"1234", 4), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    EXPECT(f->C_LoginUser(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4, (CK_UTF8CHAR *)"u", 1),
           CKR_USER_ALREADY_LOGGED_IN);
    EXPECT(f->C_GetSessionInfo(ro, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
    EXPECT(f->C_Logout(rw), CKR_OK);
    EXPECT(f->C_Logout(ro), CKR_USER_NOT_LOGGED_IN);
    EXPECT(f->C_GetSessionInfo(ro, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    /* SO: only with no read-only session; then a read-only session cannot be opened */
    EXPECT(f->C_CloseSession(ro), CKR_OK);
    EXPECT(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR *)"1234", 4), CKR_OK);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro2),
           CKR_SESSION_READ_WRITE_SO_EXISTS);
    EXPECT(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    EXPECT(f->C_Logout(rw), CKR_OK);
    EXPECT(f->C_SessionCancel(rw, CKF_DIGEST), CKR_OK);
    EXPECT(f->C_CloseAllSessions(0), CKR_OK);
    EXPECT(f->C_CloseSession(rw), CKR_SESSION_HANDLE_INVALID);
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* Writes in a read-only session (CKA_TOKEN=TRUE objects), decided before any vault call. */
static void test_read_only_session(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_OBJECT_HANDLE h1 = 0, h2 = 0;
    CK_SESSION_HANDLE ro;
    size_t i;

    init_conf(fx->conf);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    for (i = 0; i < KV_NFNS; i++) {
        kv_want w = W1(CKR_SESSION_READ_ONLY);

        if (strcmp(kv_fns[i].name, "C_CreateObject") == 0) {
            if (kv_is_stub[i])
                w.rv[w.n++] = CKR_FUNCTION_NOT_SUPPORTED;
            EXPECT_ANY(f->C_CreateObject(ro, kv_t_aesobj, NATTR(kv_t_aesobj), &h1), w);
        } else if (strcmp(kv_fns[i].name, "C_GenerateKey") == 0) {
            w.rv[w.n++] = CKR_MECHANISM_INVALID; /* a vault slot has no AES keys */
            if (kv_is_stub[i])
                w.rv[w.n++] = CKR_FUNCTION_NOT_SUPPORTED;
            EXPECT_ANY(f->C_GenerateKey(ro, &kv_m_aesgen, kv_t_aes, NATTR(kv_t_aes), &h1), w);
        } else if (strcmp(kv_fns[i].name, "C_GenerateKeyPair") == 0) {
            if (kv_is_stub[i])
                w.rv[w.n++] = CKR_FUNCTION_NOT_SUPPORTED;
            EXPECT_ANY(f->C_GenerateKeyPair(ro, &kv_m_rsagen, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                            NATTR(kv_t_priv), &h1, &h2),
                       w);
        }
    }
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* ---- live: real objects of a running vaultd ($KV_BADINPUT_CONF) ---- */

static CK_OBJECT_HANDLE kv_find(CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    assert_int_equal(g_fx->f->C_FindObjectsInit(h, t, 2), CKR_OK);
    assert_int_equal(g_fx->f->C_FindObjects(h, &o, 1, &n), CKR_OK);
    assert_int_equal(g_fx->f->C_FindObjectsFinal(h), CKR_OK);
    if (n != 1)
        fail_msg("no %s object '%s' (is vaultd running with it?)",
                 cls == CKO_PRIVATE_KEY ? "private key" : "public key", label);
    return o;
}

static void test_live(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_MECHANISM sha256rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM pss = {CKM_RSA_PKCS_PSS, NULL, 0};
    CK_MECHANISM ecdsa_sha256 = {CKM_ECDSA_SHA256, NULL, 0};
    CK_OBJECT_HANDLE rsa, rsapub, ec, ecpub, h1 = 0, h2 = 0;
    CK_SESSION_HANDLE ro, rw;
    static CK_BYTE big[4096];
    CK_BYTE buf[1024], small[8];
    CK_ATTRIBUTE t;
    CK_ULONG n;
    size_t i;

    if (fx->live_conf == NULL) {
        print_message("KV_BADINPUT_CONF not set: no vaultd, live checks skipped\n");
        skip();
    }
    init_conf(fx->live_conf);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw), CKR_OK);
    rsa = kv_find(ro, CKO_PRIVATE_KEY, "birsa");
    rsapub = kv_find(ro, CKO_PUBLIC_KEY, "birsa");
    ec = kv_find(ro, CKO_PRIVATE_KEY, "biec");
    ecpub = kv_find(ro, CKO_PUBLIC_KEY, "biec");

    /* attributes: NULL template, length query, short buffer, sensitive, unknown */
    EXPECT(f->C_GetAttributeValue(ro, rsa, NULL, 1), CKR_ARGUMENTS_BAD);
    t.type = CKA_MODULUS;
    t.pValue = NULL;
    t.ulValueLen = 0;
    EXPECT(f->C_GetAttributeValue(ro, rsapub, &t, 1), CKR_OK);
    assert_int_equal(t.ulValueLen, 256);
    t.pValue = small;
    t.ulValueLen = sizeof(small);
    EXPECT(f->C_GetAttributeValue(ro, rsapub, &t, 1), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(t.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    t.type = CKA_PRIVATE_EXPONENT;
    t.pValue = buf;
    t.ulValueLen = sizeof(buf);
    EXPECT(f->C_GetAttributeValue(ro, rsa, &t, 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(t.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    t.type = CKA_VENDOR_DEFINED + 77;
    t.ulValueLen = sizeof(buf);
    EXPECT(f->C_GetAttributeValue(ro, rsa, &t, 1), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT(f->C_GetObjectSize(ro, rsa, NULL), CKR_ARGUMENTS_BAD);

    /* signatures: mechanism / key mismatch, NULL, length query, short buffer, Init twice */
    EXPECT(f->C_SignInit(ro, NULL, rsa), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_SignInit(ro, &kv_m_ecdsa, rsa), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(f->C_SignInit(ro, &sha256rsa, ec), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(f->C_SignInit(ro, &kv_m_sha256, rsa), CKR_MECHANISM_INVALID);
    EXPECT(f->C_SignInit(ro, &pss, rsa), CKR_MECHANISM_PARAM_INVALID); /* PSS needs parameters */
    EXPECT_ANY(f->C_SignInit(ro, &sha256rsa, rsapub),
               W2(CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED));
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OK);
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OPERATION_ACTIVE);
    n = 0;
    EXPECT(f->C_Sign(ro, kv_data, sizeof(kv_data), NULL, &n), CKR_OK);
    assert_int_equal(n, 256);
    n = sizeof(small);
    EXPECT(f->C_Sign(ro, kv_data, sizeof(kv_data), small, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 256);
    EXPECT(f->C_Sign(ro, kv_data, sizeof(kv_data), buf, NULL), CKR_ARGUMENTS_BAD); /* ends it */
    n = sizeof(buf);
    EXPECT(f->C_Sign(ro, kv_data, sizeof(kv_data), buf, &n), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OK);
    EXPECT(f->C_Sign(ro, NULL, sizeof(kv_data), buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_SignInit(ro, &ecdsa_sha256, ec), CKR_OK);
    EXPECT(f->C_SignUpdate(ro, kv_data, sizeof(kv_data)), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Sign(ro, kv_data, sizeof(kv_data), buf, &n), CKR_OPERATION_ACTIVE);
    n = 1;
    EXPECT(f->C_SignFinal(ro, buf, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 64);
    n = sizeof(buf);
    EXPECT(f->C_SignFinal(ro, buf, &n), CKR_OK);
    assert_int_equal(n, 64);
    EXPECT(f->C_SignFinal(ro, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
    /* CKM_ECDSA: over-long raw input */
    EXPECT(f->C_SignInit(ro, &kv_m_ecdsa, ec), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Sign(ro, big, sizeof(big), buf, &n), CKR_DATA_LEN_RANGE);

    /* verification: signature lengths */
    EXPECT(f->C_VerifyInit(ro, &ecdsa_sha256, ecpub), CKR_OK);
    EXPECT(f->C_VerifyInit(ro, &ecdsa_sha256, ecpub), CKR_OPERATION_ACTIVE);
    EXPECT(f->C_Verify(ro, kv_data, sizeof(kv_data), small, 3), CKR_SIGNATURE_LEN_RANGE);
    EXPECT(f->C_VerifyInit(ro, &ecdsa_sha256, ecpub), CKR_OK);
    memset(buf, 1, 64);
    EXPECT(f->C_Verify(ro, kv_data, sizeof(kv_data), buf, 64), CKR_SIGNATURE_INVALID);
    EXPECT(f->C_VerifyInit(ro, &sha256rsa, rsapub), CKR_OK);
    EXPECT(f->C_Verify(ro, kv_data, sizeof(kv_data), NULL, 256), CKR_ARGUMENTS_BAD);

    /* encryption (local) and decryption (vault): lengths and key types */
    EXPECT(f->C_EncryptInit(ro, &kv_m_rsa, ecpub), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(f->C_DecryptInit(ro, &kv_m_rsa, ec), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(f->C_EncryptInit(ro, &kv_m_rsa, rsapub), CKR_OK);
    EXPECT(f->C_EncryptInit(ro, &kv_m_rsa, rsapub), CKR_OPERATION_ACTIVE);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(ro, buf, 246, buf, &n), CKR_DATA_LEN_RANGE); /* > k - 11 */
    EXPECT(f->C_EncryptInit(ro, &kv_m_rsa, rsapub), CKR_OK);
    n = 0;
    EXPECT(f->C_Encrypt(ro, kv_data, sizeof(kv_data), NULL, &n), CKR_OK);
    assert_int_equal(n, 256);
    n = sizeof(small);
    EXPECT(f->C_Encrypt(ro, kv_data, sizeof(kv_data), small, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 256);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(ro, kv_data, sizeof(kv_data), buf, &n), CKR_OK);
    EXPECT(f->C_DecryptInit(ro, &kv_m_rsa, rsa), CKR_OK);
    EXPECT(f->C_DecryptInit(ro, &kv_m_rsa, rsa), CKR_OPERATION_ACTIVE);
    n = 512;
    EXPECT(f->C_Decrypt(ro, buf, 100, buf + 512, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
    EXPECT(f->C_DecryptInit(ro, &kv_m_rsa, rsa), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Decrypt(ro, NULL, 256, buf, &n), CKR_ARGUMENTS_BAD);

    /* writes in a read-only session, then read-only attributes in a read-write one */
    for (i = 0; i < KV_NFNS; i++) {
        kv_want w = W1(CKR_SESSION_READ_ONLY), r = W1(CKR_ATTRIBUTE_READ_ONLY);
        CK_ATTRIBUTE mod = {CKA_MODULUS, buf, 256};

        if (kv_is_stub[i]) {
            w.rv[w.n++] = CKR_FUNCTION_NOT_SUPPORTED;
            r.rv[r.n++] = CKR_FUNCTION_NOT_SUPPORTED;
        }
        if (strcmp(kv_fns[i].name, "C_DestroyObject") == 0) {
            EXPECT_ANY(f->C_DestroyObject(ro, rsa), w);
        } else if (strcmp(kv_fns[i].name, "C_SetAttributeValue") == 0) {
            EXPECT_ANY(f->C_SetAttributeValue(ro, rsa, kv_t_label, 1), w);
            EXPECT_ANY(f->C_SetAttributeValue(rw, rsa, kv_t_label, 1), r);
            EXPECT_ANY(f->C_SetAttributeValue(rw, rsapub, &mod, 1), r);
        } else if (strcmp(kv_fns[i].name, "C_GenerateKeyPair") == 0) {
            kv_want m = W1(CKR_MECHANISM_INVALID);

            if (kv_is_stub[i])
                m.rv[m.n++] = CKR_FUNCTION_NOT_SUPPORTED;
            EXPECT_ANY(f->C_GenerateKeyPair(ro, &kv_m_rsagen, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                            NATTR(kv_t_priv), &h1, &h2),
                       w);
            EXPECT_ANY(f->C_GenerateKeyPair(rw, &kv_m_aesgen, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                            NATTR(kv_t_priv), &h1, &h2),
                       m);
        }
    }

    /* bad templates and parameters for the writes, logged in (nothing is written) */
    {
        static const CK_BYTE p192[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01};
        CK_ULONG bits1024 = 1024;
        CK_BBOOL yes = CK_TRUE;
        CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        CK_MECHANISM rsagen_param = {CKM_RSA_PKCS_KEY_PAIR_GEN, buf, 4};
        CK_ATTRIBUTE pub1024[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                                  {CKA_MODULUS_BITS, &bits1024, sizeof(bits1024)},
                                  {CKA_LABEL, "badinput", 8}};
        CK_ATTRIBUTE pubp192[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                                  {CKA_EC_PARAMS, (void *)p192, sizeof(p192)},
                                  {CKA_LABEL, "badinput", 8}};
        CK_ATTRIBUTE noclass[] = {{CKA_LABEL, "badinput", 8}};
        CK_ATTRIBUTE signlen = {CKA_SIGN, buf, 4};

        EXPECT(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_OK);
        EXPECT(f->C_GenerateKeyPair(rw, NULL, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                    NATTR(kv_t_priv), &h1, &h2),
               CKR_ARGUMENTS_BAD);
        EXPECT(f->C_GenerateKeyPair(rw, &kv_m_rsagen, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                    NATTR(kv_t_priv), NULL, &h2),
               CKR_ARGUMENTS_BAD);
        EXPECT(f->C_GenerateKeyPair(rw, &rsagen_param, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                    NATTR(kv_t_priv), &h1, &h2),
               CKR_MECHANISM_PARAM_INVALID);
        EXPECT(f->C_GenerateKeyPair(rw, &kv_m_rsagen, pub1024, NATTR(pub1024), kv_t_priv,
                                    NATTR(kv_t_priv), &h1, &h2),
               CKR_KEY_SIZE_RANGE);
        EXPECT(f->C_GenerateKeyPair(rw, &ecgen, pubp192, NATTR(pubp192), kv_t_priv,
                                    NATTR(kv_t_priv), &h1, &h2),
               CKR_CURVE_NOT_SUPPORTED);
        EXPECT(
            f->C_GenerateKeyPair(rw, &ecgen, kv_t_label, 1, kv_t_priv, NATTR(kv_t_priv), &h1, &h2),
            CKR_TEMPLATE_INCOMPLETE); /* no CKA_EC_PARAMS */
        EXPECT(f->C_CreateObject(rw, noclass, 1, &h1), CKR_TEMPLATE_INCOMPLETE);
        EXPECT(f->C_CreateObject(rw, NULL, 1, &h1), CKR_ARGUMENTS_BAD);
        EXPECT(f->C_SetAttributeValue(rw, rsa, &signlen, 1), CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(f->C_SetAttributeValue(rw, rsa, NULL, 1), CKR_ARGUMENTS_BAD);
        EXPECT(f->C_DestroyObject(rw, rsapub), CKR_ACTION_PROHIBITED); /* only with its key */
        EXPECT(f->C_Logout(rw), CKR_OK);
    }
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* The slot whose token label is `label` (blank-padded), or fails. */
static CK_SLOT_ID kv_slot_by_label(const char *label)
{
    CK_SLOT_ID slots[16];
    CK_TOKEN_INFO ti;
    CK_ULONG n = 16, i;
    char want[32];

    memset(want, ' ', sizeof(want));
    memcpy(want, label, strlen(label));
    assert_int_equal(g_fx->f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (i = 0; i < n; i++)
        if (g_fx->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, want, sizeof(want)) == 0)
            return slots[i];
    fail_msg("no token '%s'", label);
    return 0;
}

/* AES on the managed HSM pool's slot ("devhsm") with module session keys (computed locally,
 * so no vault key is needed): mechanism parameters, data and ciphertext lengths, the
 * two-call convention single- and multi-part, wrap / unwrap lengths, destroyed handles. */
static void test_live_aes(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_BYTE value[16], value2[32], iv[16], buf[256], small[4], data[64];
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &sk, sizeof(sk)},        {CKA_KEY_TYPE, &aes, sizeof(aes)},
                        {CKA_TOKEN, &no, sizeof(no)},        {CKA_VALUE, value, sizeof(value)},
                        {CKA_ENCRYPT, &yes, sizeof(yes)},    {CKA_DECRYPT, &yes, sizeof(yes)},
                        {CKA_WRAP, &yes, sizeof(yes)},       {CKA_UNWRAP, &yes, sizeof(yes)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_ATTRIBUTE t2[] = {{CKA_CLASS, &sk, sizeof(sk)},
                         {CKA_KEY_TYPE, &aes, sizeof(aes)},
                         {CKA_TOKEN, &no, sizeof(no)},
                         {CKA_VALUE, value2, sizeof(value2)},
                         {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_ATTRIBUTE tu[] = {{CKA_CLASS, &sk, sizeof(sk)},
                         {CKA_KEY_TYPE, &aes, sizeof(aes)},
                         {CKA_TOKEN, &no, sizeof(no)}};
    CK_GCM_PARAMS gcm8 = {iv, 8, 64, NULL, 0, 128};
    CK_MECHANISM m_gcm8 = {CKM_AES_GCM, &gcm8, sizeof(gcm8)};
    CK_MECHANISM m_gcm_noparam = {CKM_AES_GCM, NULL, 0};
    CK_MECHANISM m_cbc15 = {CKM_AES_CBC, iv, 15};
    CK_MECHANISM m_cbc = {CKM_AES_CBC, iv, 16};
    CK_MECHANISM m_cbcpad = {CKM_AES_CBC_PAD, iv, 16};
    CK_MECHANISM m_kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE k = 0, k2 = 0, ku = 0;
    CK_SESSION_HANDLE h;
    CK_SLOT_ID hsm;
    CK_ATTRIBUTE a;
    CK_ULONG n, wlen;

    if (fx->live_conf == NULL) {
        print_message("KV_BADINPUT_CONF not set: no vaultd, live checks skipped\n");
        skip();
    }
    memset(value, 0x11, sizeof(value));
    memset(value2, 0x22, sizeof(value2));
    memset(iv, 0x33, sizeof(iv));
    memset(data, 0x44, sizeof(data));
    init_conf(fx->live_conf);
    hsm = kv_slot_by_label("devhsm");
    EXPECT(f->C_OpenSession(hsm, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);

    /* session keys: bad templates, then two good ones */
    EXPECT(f->C_CreateObject(h, t, NATTR(t), NULL), CKR_ARGUMENTS_BAD);
    t[3].ulValueLen = 15;
    EXPECT_ANY(f->C_CreateObject(h, t, NATTR(t), &k),
               W3(CKR_ATTRIBUTE_VALUE_INVALID, CKR_KEY_SIZE_RANGE, CKR_TEMPLATE_INCONSISTENT));
    t[3].ulValueLen = sizeof(value);
    EXPECT(f->C_CreateObject(h, t, 3, &k), CKR_TEMPLATE_INCOMPLETE); /* no CKA_VALUE */
    EXPECT(f->C_CreateObject(h, t, NATTR(t), &k), CKR_OK);
    EXPECT(f->C_CreateObject(h, t2, NATTR(t2), &k2), CKR_OK);
    a.type = CKA_VALUE;
    a.pValue = buf;
    a.ulValueLen = sizeof(buf);
    EXPECT(f->C_GetAttributeValue(h, k, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);

    /* mechanism parameters */
    EXPECT(f->C_EncryptInit(h, &m_gcm8, k), CKR_MECHANISM_PARAM_INVALID); /* IV must be 12 */
    EXPECT(f->C_EncryptInit(h, &m_gcm_noparam, k), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(f->C_EncryptInit(h, &m_cbc15, k), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(f->C_DecryptInit(h, &m_cbc15, k), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(f->C_EncryptInit(h, &kv_m_ecdsa, k), CKR_MECHANISM_INVALID);
    EXPECT(f->C_EncryptInit(h, &kv_m_rsa, k), CKR_KEY_TYPE_INCONSISTENT);

    /* single-part CBC: lengths, Init twice */
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OK);
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OPERATION_ACTIVE);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(h, data, 15, buf, &n), CKR_DATA_LEN_RANGE); /* not a block multiple */
    EXPECT(f->C_EncryptInit(h, &m_cbcpad, k), CKR_OK);
    n = 0;
    EXPECT(f->C_Encrypt(h, data, 17, NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = sizeof(small);
    EXPECT(f->C_Encrypt(h, data, 17, small, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 32);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(h, data, 17, buf, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(h, data, 17, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Decrypt(h, buf, 15, buf + 64, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);

    /* multi-part */
    n = sizeof(buf);
    EXPECT(f->C_EncryptUpdate(h, data, 16, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_EncryptInit(h, &m_cbcpad, k), CKR_OK);
    EXPECT(f->C_EncryptUpdate(h, data, 16, buf, NULL), CKR_ARGUMENTS_BAD); /* ends it */
    n = sizeof(buf);
    EXPECT(f->C_EncryptFinal(h, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_EncryptInit(h, &m_cbcpad, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_EncryptUpdate(h, data, 16, buf, &n), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_EncryptUpdate(h, data, 1, buf, &n), CKR_OK);
    n = sizeof(small);
    EXPECT(f->C_EncryptFinal(h, small, &n), CKR_BUFFER_TOO_SMALL);
    assert_true(n >= 16 && n <= 32);
    n = sizeof(buf);
    EXPECT(f->C_EncryptFinal(h, buf, &n), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_EncryptFinal(h, buf, &n), CKR_OPERATION_NOT_INITIALIZED);
    n = sizeof(buf);
    EXPECT(f->C_DecryptFinal(h, buf, &n), CKR_OPERATION_NOT_INITIALIZED);

    /* key wrap: length query, short buffer, bad wrapped lengths */
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_WrapKey(h, &kv_m_rsa, k, k2, NULL, &n), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    wlen = 0;
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, NULL, &wlen), CKR_OK);
    assert_int_equal(wlen, 40); /* 32 + 8 */
    n = sizeof(small);
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, small, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 40);
    n = sizeof(buf);
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, buf, &n), CKR_OK);
    EXPECT_ANY(f->C_UnwrapKey(h, &m_kw, k, buf, 39, tu, NATTR(tu), &ku),
               W2(CKR_WRAPPED_KEY_LEN_RANGE, CKR_WRAPPED_KEY_INVALID));
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, buf, 40, NULL, 3, &ku), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, buf, 40, tu, NATTR(tu), NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, buf, 40, tu, NATTR(tu), &ku), CKR_OK);

    /* destroyed session keys */
    EXPECT(f->C_DestroyObject(h, k2), CKR_OK);
    EXPECT(f->C_DestroyObject(h, k2), CKR_OBJECT_HANDLE_INVALID);
    EXPECT(f->C_EncryptInit(h, &m_cbc, k2), CKR_KEY_HANDLE_INVALID);
    EXPECT(f->C_WrapKey(h, &m_kw, k2, k, NULL, &n), CKR_WRAPPING_KEY_HANDLE_INVALID);
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, NULL, &n), CKR_KEY_HANDLE_INVALID);
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* One NULL at a time (the NULL walk passes NULL for every pointer at once): for the functions
 * with several pointer arguments, each required pointer alone NULL -> CKR_ARGUMENTS_BAD; the
 * output buffer alone NULL is the standard's length query (CKR_OK). No vault call (an
 * unreachable vault). */
static void test_one_null(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_SLOT_ID slots[8];
    CK_MECHANISM_TYPE mechs[64];
    CK_OBJECT_HANDLE objs[8], h1 = 0, h2 = 0;
    CK_SESSION_HANDLE ro, rw;
    CK_MECHANISM m_kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_BYTE buf[512];
    CK_ULONG n;

    init_conf(fx->conf);
    /* slots and mechanisms: the count pointer is required, the list is optional */
    EXPECT(f->C_GetSlotList(CK_FALSE, slots, NULL), CKR_ARGUMENTS_BAD);
    n = 0;
    EXPECT(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
    assert_int_equal(n, 1);
    EXPECT(f->C_GetMechanismList(0, mechs, NULL), CKR_ARGUMENTS_BAD);
    n = 0;
    EXPECT(f->C_GetMechanismList(0, NULL, &n), CKR_OK);
    assert_true(n > 0);
    EXPECT(f->C_GetMechanismInfo(0, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
    /* sessions and login */
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw), CKR_OK);
    EXPECT(f->C_Login(rw, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_LoginUser(rw, CKU_USER, NULL, 4, (CK_UTF8CHAR *)"user", 4), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_LoginUser(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4, NULL, 4), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR *)"1234", 4), CKR_OK);
    /* finding objects: the handle array and the count pointer */
    EXPECT(f->C_FindObjectsInit(ro, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_FindObjectsInit(ro, kv_t_none, 1), CKR_OK); /* no vault call */
    EXPECT(f->C_FindObjects(ro, NULL, 8, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_FindObjects(ro, objs, 8, NULL), CKR_ARGUMENTS_BAD);
    n = 99;
    EXPECT(f->C_FindObjects(ro, objs, 8, &n), CKR_OK);
    assert_int_equal(n, 0);
    EXPECT(f->C_FindObjectsFinal(ro), CKR_OK);
    /* digests: the input, the length pointer; a NULL output is a length query */
    EXPECT(f->C_DigestInit(ro, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Digest(ro, NULL, sizeof(kv_data), buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OK);
    EXPECT(f->C_Digest(ro, kv_data, sizeof(kv_data), buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OK);
    n = 0;
    EXPECT(f->C_Digest(ro, kv_data, sizeof(kv_data), NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    EXPECT(f->C_Digest(ro, kv_data, sizeof(kv_data), buf, &n), CKR_OK);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OK);
    EXPECT(f->C_DigestUpdate(ro, NULL, sizeof(kv_data)), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DigestInit(ro, &kv_m_sha256), CKR_OK);
    EXPECT(f->C_DigestFinal(ro, buf, NULL), CKR_ARGUMENTS_BAD);
    /* object creation and key generation (R/W session, logged in) */
    EXPECT(f->C_CreateObject(rw, NULL, NATTR(kv_t_aesobj), &h1), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_CreateObject(rw, kv_t_aesobj, NATTR(kv_t_aesobj), NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKey(rw, NULL, kv_t_aes, NATTR(kv_t_aes), &h1), CKR_ARGUMENTS_BAD);
    /* (a vault slot has no CKM_AES_KEY_GEN: the managed HSM slot's case is test_live_one_null) */
    EXPECT_ANY(f->C_GenerateKey(rw, &kv_m_aesgen, NULL, NATTR(kv_t_aes), &h1),
               W2(CKR_ARGUMENTS_BAD, CKR_MECHANISM_INVALID));
    EXPECT_ANY(f->C_GenerateKey(rw, &kv_m_aesgen, kv_t_aes, NATTR(kv_t_aes), NULL),
               W2(CKR_ARGUMENTS_BAD, CKR_MECHANISM_INVALID));
    EXPECT(f->C_GenerateKeyPair(rw, NULL, kv_t_pub, NATTR(kv_t_pub), kv_t_priv, NATTR(kv_t_priv),
                                &h1, &h2),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKeyPair(rw, &kv_m_rsagen, NULL, NATTR(kv_t_pub), kv_t_priv,
                                NATTR(kv_t_priv), &h1, &h2),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKeyPair(rw, &kv_m_rsagen, kv_t_pub, NATTR(kv_t_pub), NULL, NATTR(kv_t_priv),
                                &h1, &h2),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKeyPair(rw, &kv_m_rsagen, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                NATTR(kv_t_priv), NULL, &h2),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKeyPair(rw, &kv_m_rsagen, kv_t_pub, NATTR(kv_t_pub), kv_t_priv,
                                NATTR(kv_t_priv), &h1, NULL),
           CKR_ARGUMENTS_BAD);
    /* wrap / unwrap: the mechanism, the length pointer, the wrapped bytes, template, handle */
    n = sizeof(buf);
    EXPECT(f->C_WrapKey(rw, NULL, 0x7ffff0, 0x7ffff1, buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_WrapKey(rw, &m_kw, 0x7ffff0, 0x7ffff1, buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(rw, NULL, 0x7ffff0, buf, 40, kv_t_aes, NATTR(kv_t_aes), &h1),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(rw, &m_kw, 0x7ffff0, NULL, 40, kv_t_aes, NATTR(kv_t_aes), &h1),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(rw, &m_kw, 0x7ffff0, buf, 40, NULL, NATTR(kv_t_aes), &h1),
           CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(rw, &m_kw, 0x7ffff0, buf, 40, kv_t_aes, NATTR(kv_t_aes), NULL),
           CKR_ARGUMENTS_BAD);
    /* the operations' initialisation: the mechanism */
    EXPECT(f->C_SignInit(ro, NULL, 0x7ffff0), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_VerifyInit(ro, NULL, 0x7ffff0), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_EncryptInit(ro, NULL, 0x7ffff0), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DecryptInit(ro, NULL, 0x7ffff0), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

/* One NULL at a time on live keys: C_GetAttributeValue, C_Sign / C_Verify with the vault's
 * RSA key (KV_BADINPUT_CONF slot 0), C_Encrypt / C_Decrypt (single and multi-part), C_WrapKey /
 * C_UnwrapKey with module session AES keys on the managed HSM pool's slot. A call that fails
 * with CKR_ARGUMENTS_BAD ends its operation (PKCS#11 3.0 5.2), so each case starts anew. */
static void test_live_one_null(void **state)
{
    fixture *fx = *state;
    kv_fl *f = fx->f;
    CK_BYTE value[16], value2[32], iv[16], buf[512], data[32];
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &sk, sizeof(sk)},
                        {CKA_KEY_TYPE, &aes, sizeof(aes)},
                        {CKA_TOKEN, &no, sizeof(no)},
                        {CKA_VALUE, value, sizeof(value)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_ATTRIBUTE tu[] = {{CKA_CLASS, &sk, sizeof(sk)},
                         {CKA_KEY_TYPE, &aes, sizeof(aes)},
                         {CKA_TOKEN, &no, sizeof(no)}};
    CK_MECHANISM sha256rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM m_cbc = {CKM_AES_CBC, iv, 16};
    CK_MECHANISM m_kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE rsa, k = 0, k2 = 0, ku = 0;
    CK_SESSION_HANDLE ro, h;
    CK_ATTRIBUTE a;
    CK_ULONG n, wlen;

    if (fx->live_conf == NULL) {
        print_message("KV_BADINPUT_CONF not set: no vaultd, live checks skipped\n");
        skip();
    }
    memset(value, 0x11, sizeof(value));
    memset(value2, 0x22, sizeof(value2));
    memset(iv, 0x33, sizeof(iv));
    memset(data, 0x44, sizeof(data));
    init_conf(fx->live_conf);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    rsa = kv_find(ro, CKO_PRIVATE_KEY, "birsa");

    /* C_GetAttributeValue: the template; a NULL pValue is a length query */
    EXPECT(f->C_GetAttributeValue(ro, rsa, NULL, 1), CKR_ARGUMENTS_BAD);
    a.type = CKA_LABEL;
    a.pValue = NULL;
    a.ulValueLen = 0;
    EXPECT(f->C_GetAttributeValue(ro, rsa, &a, 1), CKR_OK);
    assert_int_equal(a.ulValueLen, 5);

    /* C_Sign: the data, the length pointer; a NULL signature is a length query */
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Sign(ro, NULL, sizeof(data), buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OK);
    EXPECT(f->C_Sign(ro, data, sizeof(data), buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OK);
    n = 0;
    EXPECT(f->C_Sign(ro, data, sizeof(data), NULL, &n), CKR_OK);
    assert_int_equal(n, 256);
    EXPECT(f->C_SignUpdate(ro, NULL, sizeof(data)), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_SignInit(ro, &sha256rsa, rsa), CKR_OK);
    EXPECT(f->C_SignUpdate(ro, data, sizeof(data)), CKR_OK);
    EXPECT(f->C_SignFinal(ro, buf, NULL), CKR_ARGUMENTS_BAD);

    /* the managed HSM pool's slot: two module session AES keys */
    EXPECT(f->C_OpenSession(kv_slot_by_label("devhsm"), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                            NULL, &h),
           CKR_OK);
    EXPECT(f->C_CreateObject(h, t, NATTR(t), &k), CKR_OK);
    t[3].pValue = value2;
    t[3].ulValueLen = sizeof(value2);
    EXPECT(f->C_CreateObject(h, t, NATTR(t), &k2), CKR_OK);

    /* C_Encrypt / C_Decrypt: input, length pointer; NULL output = length query */
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(h, NULL, sizeof(data), buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OK);
    EXPECT(f->C_Encrypt(h, data, sizeof(data), buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OK);
    n = 0;
    EXPECT(f->C_Encrypt(h, data, sizeof(data), NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = sizeof(buf);
    EXPECT(f->C_Encrypt(h, data, sizeof(data), buf, &n), CKR_OK);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_Decrypt(h, NULL, 32, buf + 64, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    EXPECT(f->C_Decrypt(h, buf, 32, buf + 64, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    n = 0;
    EXPECT(f->C_Decrypt(h, buf, 32, NULL, &n), CKR_OK);
    assert_true(n >= 32);
    n = sizeof(buf) - 64;
    EXPECT(f->C_Decrypt(h, buf, 32, buf + 64, &n), CKR_OK); /* ends the operation */
    assert_true(n == 32 && memcmp(buf + 64, data, 32) == 0);
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_EncryptUpdate(h, NULL, 16, buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_EncryptInit(h, &m_cbc, k), CKR_OK);
    EXPECT(f->C_EncryptFinal(h, buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_DecryptUpdate(h, NULL, 16, buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    n = sizeof(buf);
    EXPECT(f->C_DecryptUpdate(h, buf, 16, buf + 64, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_DecryptInit(h, &m_cbc, k), CKR_OK);
    EXPECT(f->C_DecryptFinal(h, buf, NULL), CKR_ARGUMENTS_BAD);

    /* C_GenerateKey where CKM_AES_KEY_GEN exists: mechanism, template, handle */
    EXPECT(f->C_GenerateKey(h, NULL, tu, NATTR(tu), &ku), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKey(h, &kv_m_aesgen, NULL, NATTR(tu), &ku), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKey(h, &kv_m_aesgen, tu, NATTR(tu), NULL), CKR_ARGUMENTS_BAD);

    /* C_WrapKey / C_UnwrapKey: mechanism, length pointer, wrapped bytes, template, handle */
    n = sizeof(buf);
    EXPECT(f->C_WrapKey(h, NULL, k, k2, buf, &n), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, buf, NULL), CKR_ARGUMENTS_BAD);
    wlen = sizeof(buf);
    EXPECT(f->C_WrapKey(h, &m_kw, k, k2, buf, &wlen), CKR_OK);
    assert_int_equal(wlen, 40);
    EXPECT(f->C_UnwrapKey(h, NULL, k, buf, wlen, tu, NATTR(tu), &ku), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, NULL, wlen, tu, NATTR(tu), &ku), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, buf, wlen, NULL, NATTR(tu), &ku), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, buf, wlen, tu, NATTR(tu), NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_UnwrapKey(h, &m_kw, k, buf, wlen, tu, NATTR(tu), &ku), CKR_OK);
    EXPECT(f->C_Finalize(NULL), CKR_OK);
    kv_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_complete),
        cmocka_unit_test(test_probe_pending),
        cmocka_unit_test(test_walk_not_initialized),
        cmocka_unit_test(test_walk_invalid_handles),
        cmocka_unit_test(test_walk_null_pointers),
        cmocka_unit_test(test_one_null),
        cmocka_unit_test(test_walk_invalid_objects),
        cmocka_unit_test(test_interfaces),
        cmocka_unit_test(test_initialize_states),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_read_only_session),
        cmocka_unit_test(test_live),
        cmocka_unit_test(test_live_aes),
        cmocka_unit_test(test_live_one_null),
    };

    return cmocka_run_group_tests_name("p11_badinput", tests, setup, teardown);
}
