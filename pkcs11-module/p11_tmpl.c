/* p11_tmpl.c - reading template values: the checks every C_CreateObject, C_GenerateKey(Pair),
 * C_UnwrapKey and C_SetAttributeValue template shares (CK_BBOOL, CK_ULONG, CK_DATE, CKA_LABEL as
 * a vault key name, CKA_EC_PARAMS as a supported named curve, CKA_ID against kvault's ID rule),
 * and the vault key_ops bit of each usage attribute (CKA_SIGN ... CKA_UNWRAP). A malformed value
 * is CKR_ATTRIBUTE_VALUE_INVALID. */
#include "p11_internal.h"

#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

CK_RV kv_p11_tmpl_bool(const CK_ATTRIBUTE *a, bool *out)
{
    if (a->pValue == NULL || a->ulValueLen != sizeof(CK_BBOOL))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    *out = *(const CK_BBOOL *)a->pValue != CK_FALSE;
    return CKR_OK;
}

CK_RV kv_p11_tmpl_ulong(const CK_ATTRIBUTE *a, CK_ULONG *out)
{
    if (a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    memcpy(out, a->pValue, sizeof(*out));
    return CKR_OK;
}

unsigned kv_p11_usage_op(CK_ATTRIBUTE_TYPE type)
{
    switch (type) {
    case CKA_SIGN:
        return KV_OP_SIGN;
    case CKA_VERIFY:
        return KV_OP_VERIFY;
    case CKA_ENCRYPT:
        return KV_OP_ENCRYPT;
    case CKA_DECRYPT:
        return KV_OP_DECRYPT;
    case CKA_WRAP:
        return KV_OP_WRAP;
    case CKA_UNWRAP:
        return KV_OP_UNWRAP;
    default:
        return 0;
    }
}

CK_RV kv_p11_tmpl_name(const CK_ATTRIBUTE *a, char name[128])
{
    const unsigned char *p = a->pValue;
    CK_ULONG i;

    if (p == NULL || a->ulValueLen == 0 || a->ulValueLen > 127)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    for (i = 0; i < a->ulValueLen; i++) {
        unsigned char c = p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    memcpy(name, p, a->ulValueLen);
    name[a->ulValueLen] = '\0';
    return CKR_OK;
}

/* CK_DATE (YYYYMMDD, UTC) -> unix seconds at the start of that day (end = its last second). */
CK_RV kv_p11_tmpl_date(const CK_ATTRIBUTE *a, bool end, long long *out)
{
    const char *p = a->pValue;
    struct tm tm;
    int y, m, d, i;
    time_t t;

    if (a->ulValueLen == 0) {
        *out = 0; /* remove */
        return CKR_OK;
    }
    if (p == NULL || a->ulValueLen != 8)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    for (i = 0; i < 8; i++)
        if (p[i] < '0' || p[i] > '9')
            return CKR_ATTRIBUTE_VALUE_INVALID;
    y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    m = (p[4] - '0') * 10 + (p[5] - '0');
    d = (p[6] - '0') * 10 + (p[7] - '0');
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* 31 February and the like */
        return CKR_ATTRIBUTE_VALUE_INVALID;
    *out = (long long)t + (end ? 86399 : 0);
    return CKR_OK;
}

int kv_p11_tmpl_curve(const CK_ATTRIBUTE *a)
{
    const unsigned char *p = a->pValue;
    ASN1_OBJECT *oid;
    int nid;

    if (p == NULL || a->ulValueLen == 0 || a->ulValueLen > 64)
        return NID_undef;
    oid = d2i_ASN1_OBJECT(NULL, &p, (long)a->ulValueLen);
    if (oid == NULL)
        return NID_undef;
    nid = p == (const unsigned char *)a->pValue + a->ulValueLen ? OBJ_obj2nid(oid) : NID_undef;
    ASN1_OBJECT_free(oid);
    switch (nid) {
    case NID_X9_62_prime256v1:
    case NID_secp384r1:
    case NID_secp521r1:
    case NID_secp256k1:
        return nid;
    default:
        return NID_undef;
    }
}

CK_RV kv_p11_tmpl_id(const char *vault, const char *name, const CK_ATTRIBUTE *a)
{
    CK_BYTE id[KV_P11_ID_LEN];

    if (a == NULL)
        return CKR_OK;
    if (!kv_p11_key_id(vault, name, id))
        return CKR_GENERAL_ERROR;
    if (a->pValue == NULL || a->ulValueLen != KV_P11_ID_LEN || memcmp(a->pValue, id, sizeof(id)))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    return CKR_OK;
}
