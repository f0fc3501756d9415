/* p11_secret.c - AES secret-key objects (keys of managed HSM pools and local pools) and the
 * module's session objects (keys unwrapped or created with CKA_TOKEN=FALSE). */
#include "p11_internal.h"

CK_RV kv_p11_secret_create(CK_SESSION_HANDLE hs, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                           CK_OBJECT_HANDLE_PTR ph)
{
    (void)hs, (void)tmpl, (void)count, (void)ph;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV kv_p11_sobj_destroy(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE h)
{
    (void)hs, (void)h;
    return CKR_OBJECT_HANDLE_INVALID;
}
