/* p11_secret.c - AES secret-key objects (keys of managed HSM pools and local pools) and the
 * module's session objects (keys unwrapped or created with CKA_TOKEN=FALSE), C_GenerateKey
 * (CKM_AES_KEY_GEN) and C_CreateObject of CKO_SECRET_KEY.
 *
 * Vault AES keys (kv_key kty KV_KTY_OCT) appear as one CKO_SECRET_KEY object each, named by
 * the objs table like the other vault objects: CKK_AES, CKA_VALUE_LEN, CKA_ENCRYPT / DECRYPT /
 * WRAP / UNWRAP from key_ops, CKA_SENSITIVE TRUE, CKA_EXTRACTABLE FALSE, CKA_ALWAYS_SENSITIVE /
 * CKA_NEVER_EXTRACTABLE / CKA_LOCAL TRUE unless the key was imported, CKA_ID by the module's rule
 * (kv_p11_key_id). The value never leaves the vault (CKA_VALUE: CKR_ATTRIBUTE_SENSITIVE).
 *
 * Module session objects live in kv_p11_module.sobjs (module lock) with handles from
 * KV_P11_SOBJ_BASE up, never reused and never colliding with the objs table's small handles.
 * Their value is zeroised when they are destroyed, when the session that made them closes, at
 * C_Finalize and in a forked child. Defaults: CKA_SENSITIVE TRUE, CKA_EXTRACTABLE TRUE (so they
 * can be wrapped), CKA_PRIVATE FALSE; CKA_VALUE is readable only when the template made the key
 * CKA_SENSITIVE=FALSE (and left it extractable). Usage flags default to TRUE. */
#include "p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* ---- vault AES keys ---- */

static const CK_MECHANISM_TYPE kv_p11_aes_mechs[] = {
    CKM_AES_GCM, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD,
};

CK_RV kv_p11_secret_attr(const kv_p11_kdata *kd, CK_ATTRIBUTE_TYPE type, const void **value,
                         CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    const kv_key *k = kd->key;

    *value = NULL;
    *len = 0;
    switch (type) {
    case CKA_CLASS:
        KV_P11_SET_ULONG(CKO_SECRET_KEY);
        return CKR_OK;
    case CKA_KEY_TYPE:
        KV_P11_SET_ULONG(CKK_AES);
        return CKR_OK;
    case CKA_TOKEN:
    case CKA_PRIVATE:
    case CKA_SENSITIVE:
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_LOCAL:
    case CKA_ALWAYS_SENSITIVE:
        KV_P11_SET_BOOL(!k->imported);
        return CKR_OK;
    case CKA_NEVER_EXTRACTABLE: /* a local pool's keys leave a member wrapped (replication) */
        KV_P11_SET_BOOL(!k->imported && !k->wrappable);
        return CKR_OK;
    case CKA_DESTROYABLE: /* C_DestroyObject deletes the vault key (p11_objmod.c) */
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DERIVE:
    case CKA_SIGN:
    case CKA_VERIFY:
    case CKA_EXTRACTABLE:
    case CKA_WRAP_WITH_TRUSTED:
    case CKA_TRUSTED:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    case CKA_ENCRYPT:
    case CKA_DECRYPT:
    case CKA_WRAP:
    case CKA_UNWRAP: /* no key_ops from the vault: every usage */
        KV_P11_SET_BOOL(k->key_ops == 0 || (k->key_ops & kv_p11_usage_op(type)));
        return CKR_OK;
    case CKA_LABEL:
        KV_P11_SET_BYTES(k->name, strlen(k->name));
        return CKR_OK;
    case CKA_ID:
        KV_P11_SET_BYTES(kd->id, KV_P11_ID_LEN);
        return CKR_OK;
    case CKA_VALUE_LEN:
        if (k->bits <= 0)
            return CKR_ATTRIBUTE_SENSITIVE; /* the vault does not tell (kv_rest_oct_bits) */
        KV_P11_SET_ULONG(k->bits / 8);
        return CKR_OK;
    case CKA_VALUE:
        return CKR_ATTRIBUTE_SENSITIVE;
    case CKA_KEY_GEN_MECHANISM:
        KV_P11_SET_ULONG(k->imported ? CK_UNAVAILABLE_INFORMATION : CKM_AES_KEY_GEN);
        return CKR_OK;
    case CKA_START_DATE:
        if (kv_p11_ck_date(k->nbf, scratch))
            KV_P11_SET_BYTES(scratch, 8);
        return CKR_OK;
    case CKA_END_DATE:
        if (kv_p11_ck_date(k->exp, scratch))
            KV_P11_SET_BYTES(scratch, 8);
        return CKR_OK;
    case CKA_ALLOWED_MECHANISMS:
        KV_P11_SET_BYTES(kv_p11_aes_mechs, sizeof(kv_p11_aes_mechs));
        return CKR_OK;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

/* Whether slot id exists and its vault has the property pred. */
static bool kv_p11_slot_vault_is(CK_SLOT_ID id, bool (*pred)(const kv_vault *v))
{
    kv_p11_slot *s;
    bool r;

    kv_p11_lock();
    s = kv_p11_slot_get(id);
    r = s != NULL && pred(s->vault);
    kv_p11_unlock();
    return r;
}

bool kv_p11_slot_has_aes(CK_SLOT_ID id)
{
    return kv_p11_slot_vault_is(id, kv_vault_has_oct);
}

bool kv_p11_slot_has_kwp(CK_SLOT_ID id)
{
    /* a local pool (kv_hsm_aes_kwp) and a managed HSM (alg CKM_AES_KEY_WRAP_PAD) alike */
    return kv_p11_slot_vault_is(id, kv_vault_has_oct);
}

/* ---- templates of secret keys ---- */

/* The CK_BBOOL attributes a secret-key template may give (kv_p11_stmpl.val / .set index). */
enum {
    KV_P11_SB_TOKEN,
    KV_P11_SB_PRIVATE,
    KV_P11_SB_ENCRYPT,
    KV_P11_SB_DECRYPT,
    KV_P11_SB_WRAP,
    KV_P11_SB_UNWRAP,
    KV_P11_SB_SENSITIVE,
    KV_P11_SB_EXTRACTABLE,
    KV_P11_SB_N
};
static const CK_ATTRIBUTE_TYPE kv_p11_stmpl_bools[KV_P11_SB_N] = {
    CKA_TOKEN, CKA_PRIVATE, CKA_ENCRYPT,   CKA_DECRYPT,
    CKA_WRAP,  CKA_UNWRAP,  CKA_SENSITIVE, CKA_EXTRACTABLE,
};

typedef struct kv_p11_stmpl {
    bool has_class, has_kt, has_label, has_vlen;
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE kt;
    const CK_ATTRIBUTE *label; /* CKA_LABEL as given */
    const CK_ATTRIBUTE *value; /* CKA_VALUE as given */
    const CK_ATTRIBUTE *id;
    CK_ULONG vlen;
    bool val[KV_P11_SB_N]; /* the booleans of kv_p11_stmpl_bools ... */
    bool set[KV_P11_SB_N]; /* ... and whether the template gave them */
} kv_p11_stmpl;

/* A boolean of the template, or dflt when the template does not give it. */
static bool kv_p11_stmpl_flag(const kv_p11_stmpl *t, int which, bool dflt)
{
    return t->set[which] ? t->val[which] : dflt;
}

/* The index of a boolean attribute in kv_p11_stmpl_bools, KV_P11_SB_N if it is not one. */
static int kv_p11_stmpl_bool_index(CK_ATTRIBUTE_TYPE type)
{
    int b;

    for (b = 0; b < KV_P11_SB_N; b++)
        if (kv_p11_stmpl_bools[b] == type)
            break;
    return b;
}

/* Parses a secret-key template. Attributes that only restate what the module does anyway
 * (dates, CKA_MODIFIABLE, false usage flags we do not offer ...) are accepted and ignored. */
static CK_RV kv_p11_stmpl_parse(const CK_ATTRIBUTE *tmpl, CK_ULONG count, kv_p11_stmpl *t)
{
    CK_ULONG i;
    bool dummy;
    int b;
    CK_RV rv = CKR_OK;

    memset(t, 0, sizeof(*t));
    if (tmpl == NULL && count > 0)
        return CKR_ARGUMENTS_BAD;
    for (i = 0; i < count && rv == CKR_OK; i++) {
        const CK_ATTRIBUTE *a = &tmpl[i];

        b = kv_p11_stmpl_bool_index(a->type);
        if (b < KV_P11_SB_N) {
            rv = kv_p11_tmpl_bool(a, &t->val[b]);
            t->set[b] = true;
            continue;
        }
        switch (a->type) {
        case CKA_CLASS:
            rv = kv_p11_tmpl_ulong(a, &t->cls);
            t->has_class = true;
            break;
        case CKA_KEY_TYPE:
            rv = kv_p11_tmpl_ulong(a, &t->kt);
            t->has_kt = true;
            break;
        case CKA_VALUE_LEN:
            rv = kv_p11_tmpl_ulong(a, &t->vlen);
            t->has_vlen = true;
            break;
        case CKA_LABEL:
            if (a->pValue == NULL && a->ulValueLen > 0)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            t->label = a;
            t->has_label = true;
            break;
        case CKA_VALUE:
            if (a->pValue == NULL)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            t->value = a;
            break;
        case CKA_ID:
            if ((a->pValue == NULL && a->ulValueLen > 0) || a->ulValueLen > 64)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            t->id = a;
            break;
        case CKA_SIGN:
        case CKA_VERIFY:
        case CKA_DERIVE:
        case CKA_WRAP_WITH_TRUSTED:
        case CKA_TRUSTED:
            /* usages the module does not offer for secret keys: only FALSE is honoured */
            rv = kv_p11_tmpl_bool(a, &dummy);
            if (rv == CKR_OK && dummy && a->type != CKA_SIGN && a->type != CKA_VERIFY)
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            break;
        case CKA_MODIFIABLE:
        case CKA_COPYABLE:
        case CKA_DESTROYABLE:
        case CKA_START_DATE:
        case CKA_END_DATE:
        case CKA_ALLOWED_MECHANISMS:
        case CKA_SUBJECT:
            break; /* accepted, not stored */
        default:
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
            break;
        }
    }
    if (rv == CKR_OK && t->has_class && t->cls != CKO_SECRET_KEY)
        rv = CKR_TEMPLATE_INCONSISTENT;
    return rv;
}

/* key_ops from the template's usage flags (0 = the vault's default when none is given). */
static unsigned kv_p11_stmpl_ops(const kv_p11_stmpl *t)
{
    unsigned ops = 0;

    if (!t->set[KV_P11_SB_ENCRYPT] && !t->set[KV_P11_SB_DECRYPT] && !t->set[KV_P11_SB_WRAP] &&
        !t->set[KV_P11_SB_UNWRAP])
        return 0;
    if (kv_p11_stmpl_flag(t, KV_P11_SB_ENCRYPT, true))
        ops |= KV_OP_ENCRYPT;
    if (kv_p11_stmpl_flag(t, KV_P11_SB_DECRYPT, true))
        ops |= KV_OP_DECRYPT;
    if (kv_p11_stmpl_flag(t, KV_P11_SB_WRAP, true))
        ops |= KV_OP_WRAP;
    if (kv_p11_stmpl_flag(t, KV_P11_SB_UNWRAP, true))
        ops |= KV_OP_UNWRAP;
    return ops;
}

/* ---- module session objects (lock held unless noted) ---- */

static void kv_p11_sobj_free(kv_p11_sobj *o)
{
    if (o == NULL)
        return;
    if (o->value != NULL)
        OPENSSL_clear_free(o->value, o->len);
    OPENSSL_cleanse(o, sizeof(*o));
    free(o);
}

static size_t kv_p11_sobj_index(CK_SLOT_ID slot, CK_OBJECT_HANDLE h)
{
    size_t i;

    for (i = 0; i < kv_p11_module.nsobjs; i++)
        if (kv_p11_module.sobjs[i]->handle == h && kv_p11_module.sobjs[i]->slot == slot)
            return i;
    return (size_t)-1;
}

static void kv_p11_sobj_remove(size_t i)
{
    kv_p11_sobj *o = kv_p11_module.sobjs[i];

    kv_p11_module.sobjs[i] = kv_p11_module.sobjs[--kv_p11_module.nsobjs];
    kv_p11_sobj_free(o);
}

void kv_p11_sobjs_session_closed(CK_SESSION_HANDLE hs)
{
    size_t i = 0;

    while (i < kv_p11_module.nsobjs) {
        if (kv_p11_module.sobjs[i]->session == hs)
            kv_p11_sobj_remove(i);
        else
            i++;
    }
}

void kv_p11_sobjs_free_all(void)
{
    while (kv_p11_module.nsobjs > 0)
        kv_p11_sobj_remove(kv_p11_module.nsobjs - 1);
    free(kv_p11_module.sobjs);
    kv_p11_module.sobjs = NULL;
    kv_p11_module.capsobjs = 0;
}

void kv_p11_sobj_clear(kv_p11_sobj *o)
{
    if (o->value != NULL)
        OPENSSL_clear_free(o->value, o->len);
    OPENSSL_cleanse(o, sizeof(*o));
}

/* Without the lock held by the caller. */
CK_RV kv_p11_sobj_copy(CK_SLOT_ID slot, CK_OBJECT_HANDLE h, kv_p11_sobj *out)
{
    size_t i;
    CK_RV rv = CKR_OK;

    memset(out, 0, sizeof(*out));
    kv_p11_lock();
    i = kv_p11_sobj_index(slot, h);
    if (i == (size_t)-1) {
        rv = CKR_OBJECT_HANDLE_INVALID;
    } else {
        *out = *kv_p11_module.sobjs[i];
        out->value = OPENSSL_memdup(out->value, out->len > 0 ? out->len : 1);
        if (out->value == NULL)
            rv = CKR_HOST_MEMORY;
    }
    kv_p11_unlock();
    if (rv != CKR_OK)
        memset(out, 0, sizeof(*out));
    return rv;
}

CK_RV kv_p11_sobj_new(CK_SESSION_HANDLE hs, CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl,
                      CK_ULONG count, const uint8_t *value, size_t len, CK_MECHANISM_TYPE keygen,
                      CK_OBJECT_HANDLE_PTR ph)
{
    kv_p11_stmpl t;
    kv_p11_sobj *o = NULL;
    CK_RV rv;

    rv = kv_p11_stmpl_parse(tmpl, count, &t);
    if (rv != CKR_OK)
        return rv;
    if (!t.has_kt)
        t.kt = keygen == CKM_AES_KEY_GEN ? CKK_AES : CKK_GENERIC_SECRET;
    if (t.kt == CKK_AES && len != 16 && len != 24 && len != 32)
        return CKR_TEMPLATE_INCONSISTENT;
    if (len == 0 || (t.has_vlen && t.vlen != len))
        return CKR_TEMPLATE_INCONSISTENT;
    o = calloc(1, sizeof(*o));
    if (o == NULL || (o->value = OPENSSL_memdup(value, len)) == NULL) {
        free(o);
        return CKR_HOST_MEMORY;
    }
    o->len = len;
    o->slot = slot;
    o->session = hs;
    o->key_type = t.kt;
    o->keygen = keygen;
    o->local = keygen != CK_UNAVAILABLE_INFORMATION;
    if (t.label != NULL && t.label->ulValueLen > 0)
        snprintf(o->label, sizeof(o->label), "%.*s",
                 (int)(t.label->ulValueLen < sizeof(o->label) - 1 ? t.label->ulValueLen
                                                                  : sizeof(o->label) - 1),
                 (const char *)t.label->pValue);
    if (t.id != NULL && t.id->ulValueLen > 0) {
        memcpy(o->id, t.id->pValue, t.id->ulValueLen);
        o->idlen = t.id->ulValueLen;
    }
    o->priv = kv_p11_stmpl_flag(&t, KV_P11_SB_PRIVATE, false);
    o->encrypt = kv_p11_stmpl_flag(&t, KV_P11_SB_ENCRYPT, true);
    o->decrypt = kv_p11_stmpl_flag(&t, KV_P11_SB_DECRYPT, true);
    o->wrap = kv_p11_stmpl_flag(&t, KV_P11_SB_WRAP, true);
    o->unwrap = kv_p11_stmpl_flag(&t, KV_P11_SB_UNWRAP, true);
    o->sensitive = kv_p11_stmpl_flag(&t, KV_P11_SB_SENSITIVE, true);
    o->extractable = kv_p11_stmpl_flag(&t, KV_P11_SB_EXTRACTABLE, true);
    /* generated here: never seen outside yet; unwrapped / created: it was outside */
    o->always_sensitive = o->local && o->sensitive;
    o->never_extractable = o->local && !o->extractable;

    kv_p11_lock();
    if (kv_p11_module.nsobjs == kv_p11_module.capsobjs) {
        size_t cap = kv_p11_module.capsobjs ? 2 * kv_p11_module.capsobjs : 16;
        kv_p11_sobj **n = realloc(kv_p11_module.sobjs, cap * sizeof(*n));

        if (n == NULL) {
            kv_p11_unlock();
            kv_p11_sobj_free(o);
            return CKR_HOST_MEMORY;
        }
        kv_p11_module.sobjs = n;
        kv_p11_module.capsobjs = cap;
    }
    o->handle = KV_P11_SOBJ_BASE + kv_p11_module.next_sobj++;
    kv_p11_module.sobjs[kv_p11_module.nsobjs++] = o;
    *ph = o->handle;
    kv_p11_unlock();
    return CKR_OK;
}

static CK_RV kv_p11_sobj_attr(const kv_p11_sobj *o, CK_ATTRIBUTE_TYPE type, const void **value,
                              CK_ULONG *len, CK_BYTE scratch[KV_P11_SCRATCH])
{
    *value = NULL;
    *len = 0;
    switch (type) {
    case CKA_CLASS:
        KV_P11_SET_ULONG(CKO_SECRET_KEY);
        return CKR_OK;
    case CKA_KEY_TYPE:
        KV_P11_SET_ULONG(o->key_type);
        return CKR_OK;
    case CKA_MODIFIABLE: /* CKA_LABEL, CKA_ID, usage flags ... (kv_p11_sobj_set_attributes) */
    case CKA_DESTROYABLE:
        KV_P11_SET_BOOL(true);
        return CKR_OK;
    case CKA_TOKEN:
    case CKA_COPYABLE:
    case CKA_DERIVE:
    case CKA_SIGN:
    case CKA_VERIFY:
    case CKA_WRAP_WITH_TRUSTED:
    case CKA_TRUSTED:
        KV_P11_SET_BOOL(false);
        return CKR_OK;
    case CKA_PRIVATE:
        KV_P11_SET_BOOL(o->priv);
        return CKR_OK;
    case CKA_LOCAL:
        KV_P11_SET_BOOL(o->local);
        return CKR_OK;
    case CKA_ENCRYPT:
        KV_P11_SET_BOOL(o->encrypt);
        return CKR_OK;
    case CKA_DECRYPT:
        KV_P11_SET_BOOL(o->decrypt);
        return CKR_OK;
    case CKA_WRAP:
        KV_P11_SET_BOOL(o->wrap);
        return CKR_OK;
    case CKA_UNWRAP:
        KV_P11_SET_BOOL(o->unwrap);
        return CKR_OK;
    case CKA_SENSITIVE:
        KV_P11_SET_BOOL(o->sensitive);
        return CKR_OK;
    case CKA_EXTRACTABLE:
        KV_P11_SET_BOOL(o->extractable);
        return CKR_OK;
    case CKA_ALWAYS_SENSITIVE:
        KV_P11_SET_BOOL(o->always_sensitive);
        return CKR_OK;
    case CKA_NEVER_EXTRACTABLE:
        KV_P11_SET_BOOL(o->never_extractable);
        return CKR_OK;
    case CKA_LABEL:
        KV_P11_SET_BYTES(o->label, strlen(o->label));
        return CKR_OK;
    case CKA_ID:
        KV_P11_SET_BYTES(o->id, o->idlen);
        return CKR_OK;
    case CKA_VALUE_LEN:
        KV_P11_SET_ULONG(o->len);
        return CKR_OK;
    case CKA_VALUE:
        if (o->sensitive || !o->extractable)
            return CKR_ATTRIBUTE_SENSITIVE;
        KV_P11_SET_BYTES(o->value, o->len);
        return CKR_OK;
    case CKA_KEY_GEN_MECHANISM:
        KV_P11_SET_ULONG(o->keygen);
        return CKR_OK;
    case CKA_START_DATE:
    case CKA_END_DATE:
        return CKR_OK; /* empty */
    case CKA_ALLOWED_MECHANISMS:
        if (o->key_type != CKK_AES)
            return CKR_OK;
        KV_P11_SET_BYTES(kv_p11_aes_mechs, sizeof(kv_p11_aes_mechs));
        return CKR_OK;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

CK_RV kv_p11_sobjs_find(kv_p11_session *s, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    CK_BYTE scratch[KV_P11_SCRATCH];
    CK_OBJECT_HANDLE *nf;
    size_t i, n = 0;
    CK_ULONG a;

    for (i = 0; i < kv_p11_module.nsobjs; i++)
        n += kv_p11_module.sobjs[i]->slot == s->slot;
    if (n == 0)
        return CKR_OK;
    nf = realloc(s->found, (s->nfound + n + 1) * sizeof(*nf));
    if (nf == NULL)
        return CKR_HOST_MEMORY;
    s->found = nf;
    for (i = 0; i < kv_p11_module.nsobjs; i++) {
        const kv_p11_sobj *o = kv_p11_module.sobjs[i];
        bool match = o->slot == s->slot;

        for (a = 0; match && a < count; a++) {
            const void *v;
            CK_ULONG len;
            CK_RV r = kv_p11_sobj_attr(o, tmpl[a].type, &v, &len, scratch);

            match = kv_p11_attr_matches(&tmpl[a], r, v, len);
        }
        if (match)
            s->found[s->nfound++] = o->handle;
    }
    return CKR_OK;
}

CK_RV kv_p11_sobj_get_attributes(CK_SLOT_ID slot, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG count)
{
    CK_BYTE scratch[KV_P11_SCRATCH];
    kv_p11_sobj o;
    CK_RV rv, r;
    CK_ULONG i;

    rv = kv_p11_sobj_copy(slot, h, &o);
    if (rv != CKR_OK)
        return rv;
    for (i = 0; i < count; i++) {
        const void *v;
        CK_ULONG len;

        r = kv_p11_sobj_attr(&o, tmpl[i].type, &v, &len, scratch);
        r = kv_p11_attr_copy(&tmpl[i], r, v, len);
        if (r != CKR_OK && rv == CKR_OK)
            rv = r;
    }
    OPENSSL_cleanse(scratch, sizeof(scratch));
    kv_p11_sobj_clear(&o);
    return rv;
}

CK_RV kv_p11_sobj_destroy(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE h)
{
    CK_SLOT_ID slot;
    size_t i;
    CK_RV rv;

    if (!KV_P11_IS_SOBJ(h))
        return CKR_OBJECT_HANDLE_INVALID;
    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    kv_p11_lock();
    i = kv_p11_sobj_index(slot, h);
    if (i == (size_t)-1)
        rv = CKR_OBJECT_HANDLE_INVALID;
    else
        kv_p11_sobj_remove(i);
    kv_p11_unlock();
    kv_p11_leave();
    return rv;
}

/* Checks one attribute of a C_SetAttributeValue template against session object o and, when
 * apply, changes o. PKCS#11 3.0 section 4.4 / 4.9 (CKA_MODIFIABLE is TRUE): CKA_LABEL, CKA_ID and
 * the usage flags CKA_ENCRYPT / DECRYPT / WRAP / UNWRAP change either way; CKA_SIGN / CKA_VERIFY /
 * CKA_DERIVE (not offered for secret keys) only to FALSE (TRUE: CKR_ATTRIBUTE_VALUE_INVALID);
 * CKA_SENSITIVE only FALSE -> TRUE and CKA_EXTRACTABLE only TRUE -> FALSE (the other way:
 * CKR_ATTRIBUTE_READ_ONLY); everything else the object has (CKA_VALUE, CKA_VALUE_LEN, CKA_CLASS,
 * CKA_KEY_TYPE, CKA_TOKEN, CKA_PRIVATE, CKA_LOCAL, CKA_ALWAYS_SENSITIVE, dates - not kept for
 * session objects ...) is CKR_ATTRIBUTE_READ_ONLY, anything it does not have
 * CKR_ATTRIBUTE_TYPE_INVALID. */
static CK_RV kv_p11_sobj_set_one(kv_p11_sobj *o, const CK_ATTRIBUTE *a, bool apply)
{
    CK_BYTE scratch[KV_P11_SCRATCH];
    const void *v;
    CK_ULONG vlen;
    bool b;
    CK_RV rv;

    switch (a->type) {
    case CKA_LABEL:
        if ((a->pValue == NULL && a->ulValueLen > 0) || a->ulValueLen >= sizeof(o->label))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (apply) {
            memset(o->label, 0, sizeof(o->label));
            if (a->ulValueLen > 0)
                memcpy(o->label, a->pValue, a->ulValueLen);
        }
        return CKR_OK;
    case CKA_ID:
        if ((a->pValue == NULL && a->ulValueLen > 0) || a->ulValueLen > sizeof(o->id))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (apply) {
            if (a->ulValueLen > 0)
                memcpy(o->id, a->pValue, a->ulValueLen);
            o->idlen = a->ulValueLen;
        }
        return CKR_OK;
    case CKA_ENCRYPT:
    case CKA_DECRYPT:
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_SENSITIVE:
    case CKA_EXTRACTABLE:
    case CKA_SIGN:
    case CKA_VERIFY:
    case CKA_DERIVE:
        rv = kv_p11_tmpl_bool(a, &b);
        if (rv != CKR_OK)
            return rv;
        break;
    default:
        rv = kv_p11_sobj_attr(o, a->type, &v, &vlen, scratch);
        OPENSSL_cleanse(scratch, sizeof(scratch));
        return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE ? CKR_ATTRIBUTE_READ_ONLY
                                                             : CKR_ATTRIBUTE_TYPE_INVALID;
    }
    switch (a->type) {
    case CKA_SIGN:
    case CKA_VERIFY:
    case CKA_DERIVE:
        return b ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_OK;
    case CKA_SENSITIVE:
        if (!b && o->sensitive)
            return CKR_ATTRIBUTE_READ_ONLY; /* only FALSE -> TRUE */
        if (apply)
            o->sensitive = b;
        return CKR_OK;
    case CKA_EXTRACTABLE:
        if (b && !o->extractable)
            return CKR_ATTRIBUTE_READ_ONLY; /* only TRUE -> FALSE */
        if (apply)
            o->extractable = b;
        return CKR_OK;
    default:
        break;
    }
    if (apply) {
        if (a->type == CKA_ENCRYPT)
            o->encrypt = b;
        else if (a->type == CKA_DECRYPT)
            o->decrypt = b;
        else if (a->type == CKA_WRAP)
            o->wrap = b;
        else
            o->unwrap = b;
    }
    return CKR_OK;
}

CK_RV kv_p11_sobj_set_attributes(CK_SESSION_HANDLE hs, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *tmpl,
                                 CK_ULONG count)
{
    CK_SLOT_ID slot;
    kv_p11_sobj *o;
    CK_ULONG i;
    size_t idx;
    CK_RV rv;

    if (!KV_P11_IS_SOBJ(h))
        return CKR_OBJECT_HANDLE_INVALID;
    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    kv_p11_lock();
    idx = kv_p11_sobj_index(slot, h);
    if (idx == (size_t)-1) {
        rv = CKR_OBJECT_HANDLE_INVALID;
        goto done;
    }
    if (tmpl == NULL && count > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto done;
    }
    o = kv_p11_module.sobjs[idx];
    /* the whole template is checked before anything changes */
    for (i = 0; i < count && rv == CKR_OK; i++)
        rv = kv_p11_sobj_set_one(o, &tmpl[i], false);
    for (i = 0; i < count && rv == CKR_OK; i++)
        kv_p11_sobj_set_one(o, &tmpl[i], true);

done:
    kv_p11_unlock();
    kv_p11_leave();
    return rv;
}

/* ---- vault AES keys from key bytes, C_CreateObject, C_GenerateKey ---- */

/* Caches the new vault key k and returns its object's handle. */
static CK_RV kv_p11_secret_written(CK_SLOT_ID slot, kv_key *k, CK_OBJECT_HANDLE_PTR ph)
{
    CK_RV rv = kv_p11_key_written(slot, k, NULL, NULL);

    if (rv != CKR_OK)
        return rv;
    kv_p11_lock();
    *ph = kv_p11_obj_handle(slot, k->name, CKO_SECRET_KEY);
    kv_p11_unlock();
    return *ph == CK_INVALID_HANDLE ? CKR_HOST_MEMORY : CKR_OK;
}

/* The vault key name a template gives in CKA_LABEL (required). */
static CK_RV kv_p11_stmpl_name(const kv_p11_stmpl *t, char name[128])
{
    if (!t->has_label)
        return CKR_TEMPLATE_INCOMPLETE; /* CKA_LABEL names the vault key */
    return kv_p11_tmpl_name(t->label, name);
}

/* Creates (cp) or imports (ip) the vault AES key `name` through session hs (a vault write),
 * caches it and returns its handle. */
static CK_RV kv_p11_secret_store(CK_SESSION_HANDLE hs, const char *fn, const char *name,
                                 const kv_key_create_params *cp, const kv_key_import_params *ip,
                                 CK_OBJECT_HANDLE_PTR ph)
{
    kv_p11_session *s = NULL;
    kv_vault *v;
    kv_key *k = NULL;
    kv_err err;
    kv_rv krv;
    CK_RV rv;

    kv_err_clear(&err);
    rv = kv_p11_write_begin(hs, &s);
    if (rv != CKR_OK)
        return rv;
    v = kv_p11_slot_get(s->slot)->vault;
    krv = cp != NULL ? kv_vault_create_key(v, name, cp, &k, &err)
                     : kv_vault_import_key(v, name, ip, &k, &err);
    if (krv != KV_OK) {
        rv = kv_p11_write_rv(fn, &err, krv);
        goto done;
    }
    rv = kv_p11_secret_written(s->slot, k, ph);

done:
    kv_key_unref(k);
    kv_p11_session_release(s, 0);
    return rv;
}

CK_RV kv_p11_secret_import(CK_SESSION_HANDLE hs, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                           const uint8_t *value, size_t len, CK_OBJECT_HANDLE_PTR ph)
{
    kv_key_import_params ip;
    kv_p11_stmpl t;
    CK_SESSION_INFO info;
    char name[128];
    CK_RV rv;

    rv = kv_p11_stmpl_parse(tmpl, count, &t);
    if (rv != CKR_OK)
        return rv;
    if ((t.has_kt && t.kt != CKK_AES) || (len != 16 && len != 24 && len != 32) ||
        (t.has_vlen && t.vlen != len))
        return CKR_TEMPLATE_INCONSISTENT;
    rv = kv_p11_stmpl_name(&t, name);
    if (rv != CKR_OK)
        return rv;
    /* the order of checks of every vault write: read-only session, template, login */
    rv = kv_p11_get_session_info(hs, &info);
    if (rv != CKR_OK)
        return rv;
    if (!(info.flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (!kv_p11_slot_has_aes(info.slotID))
        return CKR_TEMPLATE_INCONSISTENT; /* this vault cannot hold AES keys */
    memset(&ip, 0, sizeof(ip));
    ip.oct = value;
    ip.octlen = len;
    ip.hsm = true;
    ip.key_ops = kv_p11_stmpl_ops(&t);
    return kv_p11_secret_store(hs, "C_UnwrapKey/C_CreateObject", name, NULL, &ip, ph);
}

CK_RV kv_p11_secret_create(CK_SESSION_HANDLE hs, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                           CK_OBJECT_HANDLE_PTR ph)
{
    kv_p11_stmpl t;
    CK_SLOT_ID slot;
    CK_RV rv;

    if (ph == NULL)
        return CKR_ARGUMENTS_BAD;
    rv = kv_p11_stmpl_parse(tmpl, count, &t);
    if (rv != CKR_OK)
        return rv;
    if (t.value == NULL || !t.has_kt)
        return CKR_TEMPLATE_INCOMPLETE;
    if (t.has_vlen)
        return CKR_TEMPLATE_INCONSISTENT; /* CKA_VALUE_LEN follows from CKA_VALUE */
    if (kv_p11_stmpl_flag(&t, KV_P11_SB_TOKEN, false))
        return kv_p11_secret_import(hs, tmpl, count, t.value->pValue, t.value->ulValueLen, ph);
    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    rv = kv_p11_sobj_new(hs, slot, tmpl, count, t.value->pValue, t.value->ulValueLen,
                         CK_UNAVAILABLE_INFORMATION, ph);
    kv_p11_leave();
    return rv;
}

CK_RV kv_p11_generate_key(CK_SESSION_HANDLE hs, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                          CK_ULONG count, CK_OBJECT_HANDLE_PTR ph)
{
    kv_key_create_params cp;
    kv_p11_stmpl t;
    uint8_t key[32];
    CK_SLOT_ID slot;
    char name[128];
    CK_RV rv;

    rv = kv_p11_session_slot(hs, &slot);
    if (rv != CKR_OK)
        return rv;
    kv_p11_leave();
    if (mech == NULL || ph == NULL)
        return CKR_ARGUMENTS_BAD;
    if (mech->mechanism != CKM_AES_KEY_GEN || !kv_p11_slot_has_aes(slot))
        return CKR_MECHANISM_INVALID;
    if (mech->pParameter != NULL || mech->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    rv = kv_p11_stmpl_parse(tmpl, count, &t);
    if (rv != CKR_OK)
        return rv;
    if ((t.has_kt && t.kt != CKK_AES) || t.value != NULL)
        return CKR_TEMPLATE_INCONSISTENT;
    if (!t.has_vlen)
        return CKR_TEMPLATE_INCOMPLETE;
    if (t.vlen != 16 && t.vlen != 24 && t.vlen != 32)
        return CKR_ATTRIBUTE_VALUE_INVALID;

    /* not CKA_TOKEN=TRUE: a module session key (in flight while ctx is used) */
    if (!kv_p11_stmpl_flag(&t, KV_P11_SB_TOKEN, false)) {
        rv = kv_p11_session_slot(hs, &slot);
        if (rv != CKR_OK)
            return rv;
        if (RAND_priv_bytes_ex(kv_ctx_libctx(kv_p11_module.ctx), key, t.vlen, 0) != 1)
            rv = CKR_FUNCTION_FAILED;
        else
            rv = kv_p11_sobj_new(hs, slot, tmpl, count, key, t.vlen, CKM_AES_KEY_GEN, ph);
        kv_p11_leave();
        OPENSSL_cleanse(key, sizeof(key));
        return rv;
    }
    rv = kv_p11_stmpl_name(&t, name);
    if (rv != CKR_OK)
        return rv;
    memset(&cp, 0, sizeof(cp));
    cp.kty = KV_KTY_OCT;
    cp.bits = (int)t.vlen * 8;
    cp.hsm = true;
    cp.key_ops = kv_p11_stmpl_ops(&t);
    return kv_p11_secret_store(hs, "C_GenerateKey", name, &cp, NULL, ph);
}
