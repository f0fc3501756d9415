/* p11_rv.c - translation of vaultclient status codes (kv_rv) into PKCS#11 return values.
 *
 * Choices (see also pkcs11-module/README.md):
 * - KV_ERR_NETWORK / KV_ERR_SERVER -> CKR_DEVICE_ERROR: the "device" (the vault) cannot be
 *   reached or misbehaved.
 * - KV_ERR_AUTH -> CKR_DEVICE_ERROR, not CKR_USER_NOT_LOGGED_IN: the vault credential comes
 *   from the configuration, and no PIN the application could supply would fix it.
 * - KV_ERR_LOCKED -> CKR_USER_NOT_LOGGED_IN: the credential is sealed under a PIN
 *   (client_secret_sealed) and C_Login has not opened it.
 * - KV_ERR_FORBIDDEN -> CKR_KEY_FUNCTION_NOT_PERMITTED for an operation with a key (role,
 *   key_ops or a disabled key forbid it); CKR_DEVICE_ERROR for listings and reads.
 * - KV_ERR_NOT_FOUND -> CKR_KEY_HANDLE_INVALID when resolving the key of an operation,
 *   CKR_OBJECT_HANDLE_INVALID when resolving an object (the key was deleted).
 * - KV_ERR_INVALID_ARG / KV_ERR_BAD_REQUEST on a signature -> CKR_DATA_LEN_RANGE (the only
 *   caller input the vault judges is the digest), else CKR_ARGUMENTS_BAD / CKR_FUNCTION_FAILED. */
#include "p11_internal.h"

#include "kv_log.h"

CK_RV kv_p11_rv(kv_rv rv, kv_p11_op op)
{
    switch (rv) {
    case KV_OK:
        return CKR_OK;
    case KV_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    case KV_ERR_INVALID_ARG:
        return op == KV_P11_OP_SIGN ? CKR_DATA_LEN_RANGE : CKR_ARGUMENTS_BAD;
    case KV_ERR_BAD_REQUEST:
        return op == KV_P11_OP_SIGN ? CKR_DATA_LEN_RANGE : CKR_FUNCTION_FAILED;
    case KV_ERR_NOT_FOUND:
        if (op == KV_P11_OP_KEY || op == KV_P11_OP_SIGN)
            return CKR_KEY_HANDLE_INVALID;
        return op == KV_P11_OP_OBJECT ? CKR_OBJECT_HANDLE_INVALID : CKR_FUNCTION_FAILED;
    case KV_ERR_FORBIDDEN:
        return (op == KV_P11_OP_KEY || op == KV_P11_OP_SIGN) ? CKR_KEY_FUNCTION_NOT_PERMITTED
                                                             : CKR_DEVICE_ERROR;
    case KV_ERR_UNSUPPORTED:
        return (op == KV_P11_OP_KEY || op == KV_P11_OP_SIGN) ? CKR_KEY_TYPE_INCONSISTENT
                                                             : CKR_FUNCTION_FAILED;
    case KV_ERR_AUTH:
    case KV_ERR_NETWORK:
    case KV_ERR_SERVER:
        return CKR_DEVICE_ERROR;
    case KV_ERR_CONFLICT:
        return CKR_FUNCTION_FAILED;
    case KV_ERR_BUFFER_TOO_SMALL:
        return CKR_BUFFER_TOO_SMALL;
    case KV_ERR_LOCKED: /* the credential is sealed under the PIN: C_Login first */
        return CKR_USER_NOT_LOGGED_IN;
    case KV_ERR_CONFIG:
    case KV_ERR_INTERNAL:
    default:
        return CKR_GENERAL_ERROR;
    }
}

CK_RV kv_p11_rv_log(const char *fn, const kv_err *err, kv_rv rv, kv_p11_op op)
{
    CK_RV ckr = kv_p11_rv(rv, op);

    if (rv != KV_OK && rv != KV_ERR_BUFFER_TOO_SMALL)
        KV_WARN("%s: %s%s%s (CK_RV 0x%lx)", fn, kv_rv_str(rv),
                err != NULL && err->message[0] != '\0' ? ": " : "", err != NULL ? err->message : "",
                (unsigned long)ckr);
    return ckr;
}
