/* p11_entry.c - the PKCS#11 entry points: a thin shim per C_* function over the kv_p11_*
 * bridge functions, the 2.40 and 3.0 function lists, and the "PKCS 11" interfaces.
 *
 * Only C_GetFunctionList, C_GetInterfaceList and C_GetInterface are exported (KV_EXPORT plus
 * kvault.map); every other function is static and reached through a function list, so calls
 * never resolve into another library's C_* symbols. The two lists differ only in version and
 * in C_GetInfo's cryptokiVersion. Functions kvault does not offer return
 * CKR_FUNCTION_NOT_SUPPORTED. */
#include "p11_internal.h"

#include <string.h>

/* ---- general purpose ---- */

static CK_RV kv_C_Initialize(CK_VOID_PTR pInitArgs)
{
    return kv_p11_initialize(pInitArgs);
}

static CK_RV kv_C_Finalize(CK_VOID_PTR pReserved)
{
    return kv_p11_finalize(pReserved);
}

static CK_RV kv_C_GetInfo_v2(CK_INFO_PTR pInfo)
{
    return kv_p11_get_info(pInfo, 2, 40);
}

static CK_RV kv_C_GetInfo_v3(CK_INFO_PTR pInfo)
{
    return kv_p11_get_info(pInfo, 3, 0);
}

/* ---- slots and tokens ---- */

static CK_RV kv_C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
                              CK_ULONG_PTR pulCount)
{
    return kv_p11_get_slot_list(tokenPresent, pSlotList, pulCount);
}

static CK_RV kv_C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    return kv_p11_get_slot_info(slotID, pInfo);
}

static CK_RV kv_C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    return kv_p11_get_token_info(slotID, pInfo);
}

static CK_RV kv_C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                                   CK_ULONG_PTR pulCount)
{
    return kv_p11_get_mechanism_list(slotID, pMechanismList, pulCount);
}

static CK_RV kv_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
                                   CK_MECHANISM_INFO_PTR pInfo)
{
    return kv_p11_get_mechanism_info(slotID, type, pInfo);
}

static CK_RV kv_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    (void)flags;
    (void)pSlot;
    (void)pReserved;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                            CK_UTF8CHAR_PTR pLabel)
{
    (void)slotID;
    (void)pPin;
    (void)ulPinLen;
    (void)pLabel;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    (void)hSession;
    (void)pPin;
    (void)ulPinLen;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                         CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    (void)hSession;
    (void)pOldPin;
    (void)ulOldLen;
    (void)pNewPin;
    (void)ulNewLen;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---- sessions ---- */

static CK_RV kv_C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                              CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
    (void)pApplication; /* no callbacks: kvault never surrenders */
    (void)Notify;
    return kv_p11_open_session(slotID, flags, phSession);
}

static CK_RV kv_C_CloseSession(CK_SESSION_HANDLE hSession)
{
    return kv_p11_close_session(hSession);
}

static CK_RV kv_C_CloseAllSessions(CK_SLOT_ID slotID)
{
    return kv_p11_close_all_sessions(slotID);
}

static CK_RV kv_C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    return kv_p11_get_session_info(hSession, pInfo);
}

static CK_RV kv_C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                    CK_ULONG_PTR pulOperationStateLen)
{
    (void)hSession;
    (void)pOperationState;
    (void)pulOperationStateLen;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                    CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                                    CK_OBJECT_HANDLE hAuthenticationKey)
{
    (void)hSession;
    (void)pOperationState;
    (void)ulOperationStateLen;
    (void)hEncryptionKey;
    (void)hAuthenticationKey;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                        CK_ULONG ulPinLen)
{
    return kv_p11_login(hSession, userType, pPin, ulPinLen);
}

static CK_RV kv_C_Logout(CK_SESSION_HANDLE hSession)
{
    return kv_p11_logout(hSession);
}

static CK_RV kv_C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                            CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
    CK_SLOT_ID slot;
    CK_RV rv;

    /* the token has no named users: the name is not used, but must be readable */
    if (pUsername == NULL && ulUsernameLen > 0) {
        rv = kv_p11_session_slot(hSession, &slot); /* library and session errors first */
        if (rv != CKR_OK)
            return rv;
        kv_p11_leave();
        return CKR_ARGUMENTS_BAD;
    }
    return kv_p11_login(hSession, userType, pPin, ulPinLen);
}

static CK_RV kv_C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
    return kv_p11_session_cancel(hSession, flags);
}

/* ---- objects ---- */

static CK_RV kv_C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
    return kv_p11_create_object(hSession, pTemplate, ulCount, phObject);
}

static CK_RV kv_C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                             CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                             CK_OBJECT_HANDLE_PTR phNewObject)
{
    (void)hSession;
    (void)hObject;
    (void)pTemplate;
    (void)ulCount;
    (void)phNewObject;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    return kv_p11_destroy_object(hSession, hObject);
}

static CK_RV kv_C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                CK_ULONG_PTR pulSize)
{
    return kv_p11_get_object_size(hSession, hObject, pulSize);
}

static CK_RV kv_C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    return kv_p11_get_attribute_value(hSession, hObject, pTemplate, ulCount);
}

static CK_RV kv_C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    return kv_p11_set_attribute_value(hSession, hObject, pTemplate, ulCount);
}

static CK_RV kv_C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                                  CK_ULONG ulCount)
{
    return kv_p11_find_init(hSession, pTemplate, ulCount);
}

static CK_RV kv_C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                              CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    return kv_p11_find(hSession, phObject, ulMaxObjectCount, pulObjectCount);
}

static CK_RV kv_C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    return kv_p11_find_final(hSession);
}

/* ---- encryption, decryption (single-part), digests ---- */

static CK_RV kv_C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hKey)
{
    return kv_p11_encrypt_init(hSession, pMechanism, hKey);
}

static CK_RV kv_C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                          CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    return kv_p11_encrypt(hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
}

static CK_RV kv_C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hKey)
{
    return kv_p11_decrypt_init(hSession, pMechanism, hKey);
}

static CK_RV kv_C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData,
                          CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    return kv_p11_decrypt(hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen);
}

static CK_RV kv_C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                         CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    return kv_p11_digest(hSession, pData, ulDataLen, pDigest, pulDigestLen);
}

static CK_RV kv_C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
                              CK_ULONG_PTR pulDigestLen)
{
    return kv_p11_digest_final(hSession, pDigest, pulDigestLen);
}

/* Multi-part encryption and decryption (p11_crypt.c). */

static CK_RV kv_C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return kv_p11_encrypt_update(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

static CK_RV kv_C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                               CK_ULONG_PTR pulLastEncryptedPartLen)
{
    return kv_p11_encrypt_final(hSession, pLastEncryptedPart, pulLastEncryptedPartLen);
}

static CK_RV kv_C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,
                                CK_ULONG_PTR pulPartLen)
{
    return kv_p11_decrypt_update(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

static CK_RV kv_C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart,
                               CK_ULONG_PTR pulLastPartLen)
{
    return kv_p11_decrypt_final(hSession, pLastPart, pulLastPartLen);
}

/* Sign/verify recover: not offered. */

static CK_RV kv_C_CryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hKey)
{
    (void)hSession;
    (void)pMechanism;
    (void)hKey;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_CryptOneShot(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen,
                               CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)
{
    (void)hSession;
    (void)pIn;
    (void)ulInLen;
    (void)pOut;
    (void)pulOutLen;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    return kv_p11_digest_init(hSession, pMechanism);
}

static CK_RV kv_C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return kv_p11_digest_update(hSession, pPart, ulPartLen);
}

static CK_RV kv_C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    (void)hSession;
    (void)hKey;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---- signatures ---- */

static CK_RV kv_C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                           CK_OBJECT_HANDLE hKey)
{
    return kv_p11_sign_init(hSession, pMechanism, hKey);
}

static CK_RV kv_C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                       CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return kv_p11_sign(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

static CK_RV kv_C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return kv_p11_sign_update(hSession, pPart, ulPartLen);
}

static CK_RV kv_C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                            CK_ULONG_PTR pulSignatureLen)
{
    return kv_p11_sign_final(hSession, pSignature, pulSignatureLen);
}

static CK_RV kv_C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                             CK_OBJECT_HANDLE hKey)
{
    return kv_p11_verify_init(hSession, pMechanism, hKey);
}

static CK_RV kv_C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                         CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    return kv_p11_verify(hSession, pData, ulDataLen, pSignature, ulSignatureLen);
}

static CK_RV kv_C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return kv_p11_verify_update(hSession, pPart, ulPartLen);
}

static CK_RV kv_C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                              CK_ULONG ulSignatureLen)
{
    return kv_p11_verify_final(hSession, pSignature, ulSignatureLen);
}

static CK_RV kv_C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                                CK_ULONG ulSignatureLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    (void)hSession;
    (void)pSignature;
    (void)ulSignatureLen;
    (void)pData;
    (void)pulDataLen;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---- dual-function, key management, random numbers, legacy ---- */

static CK_RV kv_C_DualUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen,
                             CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)
{
    (void)hSession;
    (void)pIn;
    (void)ulInLen;
    (void)pOut;
    (void)pulOutLen;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                              CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                              CK_OBJECT_HANDLE_PTR phKey)
{
    return kv_p11_generate_key(hSession, pMechanism, pTemplate, ulCount, phKey);
}

static CK_RV
kv_C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                     CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                     CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                     CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    return kv_p11_generate_key_pair(hSession, pMechanism, pPublicKeyTemplate,
                                    ulPublicKeyAttributeCount, pPrivateKeyTemplate,
                                    ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey);
}

static CK_RV kv_C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                          CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                          CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    return kv_p11_wrap_key(hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen);
}

static CK_RV kv_C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                            CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                            CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    return kv_p11_unwrap_key(hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen,
                             pTemplate, ulAttributeCount, phKey);
}

static CK_RV kv_C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
                            CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    (void)hSession;
    (void)pMechanism;
    (void)hBaseKey;
    (void)pTemplate;
    (void)ulAttributeCount;
    (void)phKey;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

/* Random numbers: a managed HSM pool's RNG (p11_random.c). */
static CK_RV kv_C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
    return kv_p11_seed_random(hSession, pSeed, ulSeedLen);
}

static CK_RV kv_C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData,
                                 CK_ULONG ulRandomLen)
{
    return kv_p11_generate_random(hSession, pRandomData, ulRandomLen);
}

static CK_RV kv_C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    (void)hSession;
    return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV kv_C_CancelFunction(CK_SESSION_HANDLE hSession)
{
    (void)hSession;
    return CKR_FUNCTION_NOT_PARALLEL;
}

/* ---- PKCS#11 3.0 message-based functions: not offered (their arguments are ignored) ---- */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

static CK_RV kv_C_MessageInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hKey)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_MessageFinal(CK_SESSION_HANDLE hSession)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_CryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                               CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
                               CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pIn, CK_ULONG ulInLen,
                               CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_CryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                    CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
                                    CK_ULONG ulAssociatedDataLen)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_CryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                   CK_ULONG ulParameterLen, CK_BYTE_PTR pIn, CK_ULONG ulInLen,
                                   CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen, CK_FLAGS flags)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_SignMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                              CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                              CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_MessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                               CK_ULONG ulParameterLen)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV kv_C_VerifyMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

#pragma GCC diagnostic pop

/* ---- function lists and interfaces (read-only tables) ---- */

CK_RV KV_EXPORT C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
CK_RV KV_EXPORT C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                               CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

#define KV_P11_FUNCTIONS_2_40(getinfo)                                                             \
    .C_Initialize = kv_C_Initialize, .C_Finalize = kv_C_Finalize, .C_GetInfo = getinfo,            \
    .C_GetFunctionList = C_GetFunctionList, .C_GetSlotList = kv_C_GetSlotList,                     \
    .C_GetSlotInfo = kv_C_GetSlotInfo, .C_GetTokenInfo = kv_C_GetTokenInfo,                        \
    .C_GetMechanismList = kv_C_GetMechanismList, .C_GetMechanismInfo = kv_C_GetMechanismInfo,      \
    .C_InitToken = kv_C_InitToken, .C_InitPIN = kv_C_InitPIN, .C_SetPIN = kv_C_SetPIN,             \
    .C_OpenSession = kv_C_OpenSession, .C_CloseSession = kv_C_CloseSession,                        \
    .C_CloseAllSessions = kv_C_CloseAllSessions, .C_GetSessionInfo = kv_C_GetSessionInfo,          \
    .C_GetOperationState = kv_C_GetOperationState, .C_SetOperationState = kv_C_SetOperationState,  \
    .C_Login = kv_C_Login, .C_Logout = kv_C_Logout, .C_CreateObject = kv_C_CreateObject,           \
    .C_CopyObject = kv_C_CopyObject, .C_DestroyObject = kv_C_DestroyObject,                        \
    .C_GetObjectSize = kv_C_GetObjectSize, .C_GetAttributeValue = kv_C_GetAttributeValue,          \
    .C_SetAttributeValue = kv_C_SetAttributeValue, .C_FindObjectsInit = kv_C_FindObjectsInit,      \
    .C_FindObjects = kv_C_FindObjects, .C_FindObjectsFinal = kv_C_FindObjectsFinal,                \
    .C_EncryptInit = kv_C_EncryptInit, .C_Encrypt = kv_C_Encrypt,                                  \
    .C_EncryptUpdate = kv_C_EncryptUpdate, .C_EncryptFinal = kv_C_EncryptFinal,                    \
    .C_DecryptInit = kv_C_DecryptInit, .C_Decrypt = kv_C_Decrypt,                                  \
    .C_DecryptUpdate = kv_C_DecryptUpdate, .C_DecryptFinal = kv_C_DecryptFinal,                    \
    .C_DigestInit = kv_C_DigestInit, .C_Digest = kv_C_Digest, .C_DigestUpdate = kv_C_DigestUpdate, \
    .C_DigestKey = kv_C_DigestKey, .C_DigestFinal = kv_C_DigestFinal, .C_SignInit = kv_C_SignInit, \
    .C_Sign = kv_C_Sign, .C_SignUpdate = kv_C_SignUpdate, .C_SignFinal = kv_C_SignFinal,           \
    .C_SignRecoverInit = kv_C_CryptInit, .C_SignRecover = kv_C_CryptOneShot,                       \
    .C_VerifyInit = kv_C_VerifyInit, .C_Verify = kv_C_Verify, .C_VerifyUpdate = kv_C_VerifyUpdate, \
    .C_VerifyFinal = kv_C_VerifyFinal, .C_VerifyRecoverInit = kv_C_CryptInit,                      \
    .C_VerifyRecover = kv_C_VerifyRecover, .C_DigestEncryptUpdate = kv_C_DualUpdate,               \
    .C_DecryptDigestUpdate = kv_C_DualUpdate, .C_SignEncryptUpdate = kv_C_DualUpdate,              \
    .C_DecryptVerifyUpdate = kv_C_DualUpdate, .C_GenerateKey = kv_C_GenerateKey,                   \
    .C_GenerateKeyPair = kv_C_GenerateKeyPair, .C_WrapKey = kv_C_WrapKey,                          \
    .C_UnwrapKey = kv_C_UnwrapKey, .C_DeriveKey = kv_C_DeriveKey, .C_SeedRandom = kv_C_SeedRandom, \
    .C_GenerateRandom = kv_C_GenerateRandom, .C_GetFunctionStatus = kv_C_GetFunctionStatus,        \
    .C_CancelFunction = kv_C_CancelFunction, .C_WaitForSlotEvent = kv_C_WaitForSlotEvent

static CK_FUNCTION_LIST kv_p11_functions_2_40 = {
    .version = {2, 40},
    KV_P11_FUNCTIONS_2_40(kv_C_GetInfo_v2),
};

static CK_FUNCTION_LIST_3_0 kv_p11_functions_3_0 = {
    .version = {3, 0},
    KV_P11_FUNCTIONS_2_40(kv_C_GetInfo_v3),
    .C_GetInterfaceList = C_GetInterfaceList,
    .C_GetInterface = C_GetInterface,
    .C_LoginUser = kv_C_LoginUser,
    .C_SessionCancel = kv_C_SessionCancel,
    .C_MessageEncryptInit = kv_C_MessageInit,
    .C_EncryptMessage = kv_C_CryptMessage,
    .C_EncryptMessageBegin = kv_C_CryptMessageBegin,
    .C_EncryptMessageNext = kv_C_CryptMessageNext,
    .C_MessageEncryptFinal = kv_C_MessageFinal,
    .C_MessageDecryptInit = kv_C_MessageInit,
    .C_DecryptMessage = kv_C_CryptMessage,
    .C_DecryptMessageBegin = kv_C_CryptMessageBegin,
    .C_DecryptMessageNext = kv_C_CryptMessageNext,
    .C_MessageDecryptFinal = kv_C_MessageFinal,
    .C_MessageSignInit = kv_C_MessageInit,
    .C_SignMessage = kv_C_SignMessage,
    .C_SignMessageBegin = kv_C_MessageBegin,
    .C_SignMessageNext = kv_C_SignMessage,
    .C_MessageSignFinal = kv_C_MessageFinal,
    .C_MessageVerifyInit = kv_C_MessageInit,
    .C_VerifyMessage = kv_C_VerifyMessage,
    .C_VerifyMessageBegin = kv_C_MessageBegin,
    .C_VerifyMessageNext = kv_C_VerifyMessage,
    .C_MessageVerifyFinal = kv_C_MessageFinal,
};

/* The module is fork tolerant (see p11_module.c), hence CKF_INTERFACE_FORK_SAFE. */
static CK_INTERFACE kv_p11_interfaces[] = {
    {(CK_CHAR *)"PKCS 11", &kv_p11_functions_3_0, CKF_INTERFACE_FORK_SAFE},
    {(CK_CHAR *)"PKCS 11", &kv_p11_functions_2_40, CKF_INTERFACE_FORK_SAFE},
};
#define KV_P11_NINTERFACES (sizeof(kv_p11_interfaces) / sizeof(kv_p11_interfaces[0]))

CK_RV KV_EXPORT C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (ppFunctionList == NULL)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &kv_p11_functions_2_40;
    return CKR_OK;
}

CK_RV KV_EXPORT C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    CK_RV rv = CKR_OK;
    size_t i;

    if (pulCount == NULL)
        return CKR_ARGUMENTS_BAD;
    if (pInterfacesList != NULL) {
        if (*pulCount < KV_P11_NINTERFACES)
            rv = CKR_BUFFER_TOO_SMALL;
        else
            for (i = 0; i < KV_P11_NINTERFACES; i++)
                pInterfacesList[i] = kv_p11_interfaces[i];
    }
    *pulCount = KV_P11_NINTERFACES;
    return rv;
}

/* Matches by name (NULL: any), version (NULL: the first, i.e. 3.0) and flags (all requested
 * flags must be offered). */
CK_RV KV_EXPORT C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                               CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
    size_t i;

    if (ppInterface == NULL)
        return CKR_ARGUMENTS_BAD;
    for (i = 0; i < KV_P11_NINTERFACES; i++) {
        const CK_INTERFACE *itf = &kv_p11_interfaces[i];
        const CK_VERSION *v = (const CK_VERSION *)itf->pFunctionList; /* first member */

        if (pInterfaceName != NULL &&
            strcmp((const char *)pInterfaceName, (const char *)itf->pInterfaceName) != 0)
            continue;
        if (pVersion != NULL && (pVersion->major != v->major || pVersion->minor != v->minor))
            continue;
        if ((itf->flags & flags) != flags)
            continue;
        *ppInterface = &kv_p11_interfaces[i];
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}
