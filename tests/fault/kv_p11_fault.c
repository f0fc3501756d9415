/* kv_p11_fault.c - a fault-injecting PKCS#11 module for tests (test_p11_pool.sh).
 *
 * Loads the real module named by $KV_FAULT_MODULE and forwards every call to it. For a token
 * whose label names a file in $KV_FAULT_DIR ($KV_FAULT_DIR/<token label>), C_OpenSession,
 * C_GetTokenInfo, C_FindObjectsInit, C_SignInit and C_Sign fail with the code the file's first
 * word names: "device" (CKR_DEVICE_ERROR, the default), "absent" (CKR_TOKEN_NOT_PRESENT) or
 * "session" (CKR_SESSION_HANDLE_INVALID); "sign-device" fails only C_SignInit and C_Sign (with
 * CKR_DEVICE_ERROR: a token that dies after the key was found). Every C_Sign that returns a
 * signature appends one byte to $KV_FAULT_DIR/<label>.served and every injected failure one to
 * <label>.failed, so a test can tell which member did the work. Test code only: no locking beyond
 * O_APPEND. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

typedef struct kv_fault_ctx {
    void *dl;
    CK_FUNCTION_LIST_PTR real;
    CK_FUNCTION_LIST list; /* the real list with a few entries replaced */
} kv_fault_ctx;

static kv_fault_ctx kv_fault;

/* The token label of slot (trailing blanks removed) into out[33]; false if unknown. */
static int kv_fault_label(CK_SLOT_ID slot, char out[33])
{
    CK_TOKEN_INFO ti;
    int n;

    if (kv_fault.real->C_GetTokenInfo(slot, &ti) != CKR_OK)
        return 0;
    memcpy(out, ti.label, 32);
    for (n = 32; n > 0 && out[n - 1] == ' '; n--)
        ;
    out[n] = '\0';
    return 1;
}

static void kv_fault_count(const char *label, const char *suffix)
{
    const char *dir = getenv("KV_FAULT_DIR");
    char path[512];
    int fd;

    if (dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/%s.%s", dir, label, suffix);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        if (write(fd, "x", 1) != 1) {
            /* nothing to do: the count is only for the test's eyes */
        }
        close(fd);
    }
}

/* CKR_OK, or the error to inject for the token in slot (signing: a C_SignInit/C_Sign call). */
static CK_RV kv_fault_slot(CK_SLOT_ID slot, int signing)
{
    const char *dir = getenv("KV_FAULT_DIR");
    char label[33], path[512], word[32] = "";
    CK_RV rv = CKR_DEVICE_ERROR;
    FILE *fp;

    if (dir == NULL || !kv_fault_label(slot, label))
        return CKR_OK;
    snprintf(path, sizeof(path), "%s/%s", dir, label);
    fp = fopen(path, "r");
    if (fp == NULL)
        return CKR_OK;
    if (fscanf(fp, "%31s", word) == 1) {
        if (strcmp(word, "absent") == 0)
            rv = CKR_TOKEN_NOT_PRESENT;
        else if (strcmp(word, "session") == 0)
            rv = CKR_SESSION_HANDLE_INVALID;
        else if (strcmp(word, "sign-device") == 0 && !signing)
            rv = CKR_OK;
    }
    fclose(fp);
    if (rv == CKR_OK)
        return rv;
    kv_fault_count(label, "failed");
    return rv;
}

static CK_RV kv_fault_session(CK_SESSION_HANDLE s, int signing)
{
    CK_SESSION_INFO si;

    if (kv_fault.real->C_GetSessionInfo(s, &si) != CKR_OK)
        return CKR_OK; /* the real call reports the bad handle */
    return kv_fault_slot(si.slotID, signing);
}

static CK_RV kv_fault_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR ti)
{
    CK_RV rv = kv_fault_slot(slot, 0);

    return rv != CKR_OK ? rv : kv_fault.real->C_GetTokenInfo(slot, ti);
}

static CK_RV kv_fault_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,
                                  CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s)
{
    CK_RV rv = kv_fault_slot(slot, 0);

    return rv != CKR_OK ? rv : kv_fault.real->C_OpenSession(slot, flags, app, notify, s);
}

static CK_RV kv_fault_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_RV rv = kv_fault_session(s, 0);

    return rv != CKR_OK ? rv : kv_fault.real->C_FindObjectsInit(s, t, n);
}

static CK_RV kv_fault_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
    CK_RV rv = kv_fault_session(s, 1);

    return rv != CKR_OK ? rv : kv_fault.real->C_SignInit(s, m, k);
}

static CK_RV kv_fault_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR sig,
                           CK_ULONG_PTR siglen)
{
    CK_SESSION_INFO si;
    char label[33];
    CK_RV rv = kv_fault_session(s, 1);

    if (rv != CKR_OK)
        return rv;
    rv = kv_fault.real->C_Sign(s, in, inlen, sig, siglen);
    if (rv == CKR_OK && sig != NULL && kv_fault.real->C_GetSessionInfo(s, &si) == CKR_OK &&
        kv_fault_label(si.slotID, label))
        kv_fault_count(label, "served");
    return rv;
}

/* the one exported symbol (the project builds with -fvisibility=hidden) */
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    CK_C_GetFunctionList get;
    const char *path = getenv("KV_FAULT_MODULE");

    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    if (kv_fault.real == NULL) {
        if (path == NULL)
            return CKR_GENERAL_ERROR;
        kv_fault.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (kv_fault.dl == NULL)
            return CKR_GENERAL_ERROR;
        get = (CK_C_GetFunctionList)dlsym(kv_fault.dl, "C_GetFunctionList");
        if (get == NULL || get(&kv_fault.real) != CKR_OK)
            return CKR_GENERAL_ERROR;
        kv_fault.list = *kv_fault.real;
        kv_fault.list.version.major = 2;
        kv_fault.list.version.minor = 40;
        kv_fault.list.C_GetTokenInfo = kv_fault_GetTokenInfo;
        kv_fault.list.C_OpenSession = kv_fault_OpenSession;
        kv_fault.list.C_FindObjectsInit = kv_fault_FindObjectsInit;
        kv_fault.list.C_SignInit = kv_fault_SignInit;
        kv_fault.list.C_Sign = kv_fault_Sign;
    }
    *out = &kv_fault.list;
    return CKR_OK;
}
