/* p11_data.c - vault secrets as CKO_DATA objects.
 *
 * Every enabled secret that no certificate manages is a private data object: CKA_APPLICATION
 * "kvault", CKA_LABEL = secret name, CKA_PRIVATE true (found only after C_Login). Its CKA_VALUE
 * is read from the vault when asked for, copied out, and zeroised: secret values are never
 * cached by the module. */
#include "p11_internal.h"

#include <stdlib.h>
#include <string.h>

#define KV_P11_DATA_APP "kvault"

bool kv_p11_data_has(const kv_p11_odata *od, const char *name)
{
    size_t i;

    for (i = 0; od != NULL && i < od->nnames; i++)
        if (strcmp(od->names[i], name) == 0)
            return true;
    return false;
}

CK_RV kv_p11_data_attr(const char *name, CK_ATTRIBUTE_TYPE type, const void **value, CK_ULONG *len,
                       CK_BYTE scratch[KV_P11_SCRATCH])
{
    *value = NULL;
    *len = 0;
    switch (type) {
    case CKA_CLASS:
        KV_P11_SET_ULONG(CKO_DATA);
        return CKR_OK;
    case CKA_TOKEN:
    case CKA_PRIVATE:
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    case CKA_LABEL:
        KV_P11_SET_BYTES(name, strlen(name));
        return CKR_OK;
    case CKA_APPLICATION:
        KV_P11_SET_BYTES(KV_P11_DATA_APP, sizeof(KV_P11_DATA_APP) - 1);
        return CKR_OK;
    case CKA_OBJECT_ID:
        return CKR_OK; /* empty */
    case CKA_VALUE:
        return CKR_ATTRIBUTE_SENSITIVE; /* fetched by the caller: kv_p11_data_value */
    default:
        break;
    }
    return CKR_ATTRIBUTE_TYPE_INVALID;
}

CK_RV kv_p11_data_value(CK_SLOT_ID id, const char *name, char **value, size_t *len)
{
    kv_p11_slot *slot;
    kv_err err;
    kv_rv rv;

    kv_err_clear(&err);
    kv_p11_lock();
    slot = kv_p11_slot_get(id);
    kv_p11_unlock();
    if (slot == NULL)
        return CKR_SLOT_ID_INVALID;
    rv = kv_vault_get_secret(slot->vault, name, value, len, &err);
    if (rv != KV_OK)
        return kv_p11_rv_log("C_GetAttributeValue", &err, rv, KV_P11_OP_OBJECT);
    return CKR_OK;
}
