/* p11_versions.c - older key versions as PKCS#11 objects, on request by configuration
 * ([vault NAME] key_versions = all; default latest).
 *
 * Rule (pkcs11-module/README.md): the latest version of a key keeps the key's objects (label =
 * key name, CKA_ID = SHA-256("<vault>/<name>")[0:16], following rotation). With key_versions =
 * all, every OLDER version that is enabled gets its own private + public key objects, labelled
 * "NAME/VERSION", with CKA_ID = SHA-256("<vault>/NAME/VERSION")[0:16] - distinct and stable, so
 * data signed or encrypted under an old version stays usable by ID. A listing then costs one
 * version listing per key (cached like every listing). Older-version objects can be read, used
 * and changed (C_SetAttributeValue acts on that version) but not destroyed on their own (a
 * vault deletes a key with all its versions). */
#include "p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kv_p11_kdata_label(const kv_p11_kdata *kd)
{
    return kd->label[0] != '\0' ? kd->label : kd->key->name;
}

/* Turns kd (built for an older version) into that version's object. */
static kv_rv kv_p11_version_label(kv_p11_kdata *kd, kv_err *err)
{
    int n = snprintf(kd->label, sizeof(kd->label), "%s/%s", kd->key->name, kd->key->version);

    if (n < 0 || (size_t)n >= sizeof(kd->label))
        return kv_err_set(err, KV_ERR_INTERNAL, "key version label too long");
    if (!kv_p11_key_id(kd->key->vault, kd->label, kd->id))
        return kv_err_set(err, KV_ERR_INTERNAL, "no SHA-256 implementation available");
    return KV_OK;
}

kv_rv kv_p11_version_fetch(kv_vault *v, const char *label, kv_p11_kdata **out, kv_err *err)
{
    const char *slash = strchr(label, '/');
    char name[128];
    kv_key *key = NULL;
    kv_p11_kdata *kd = NULL;
    kv_rv rv;

    *out = NULL;
    if (!kv_vault_key_versions_all(v) || slash == NULL || slash == label ||
        (size_t)(slash - label) >= sizeof(name) || slash[1] == '\0' || strchr(slash + 1, '/'))
        return kv_err_set(err, KV_ERR_NOT_FOUND, "no object %s", label);
    memcpy(name, label, (size_t)(slash - label));
    name[slash - label] = '\0';
    rv = kv_vault_get_key(v, name, slash + 1, &key, err);
    if (rv == KV_ERR_INVALID_ARG || rv == KV_ERR_BAD_REQUEST)
        rv = kv_err_set(err, KV_ERR_NOT_FOUND, "no object %s", label);
    if (rv != KV_OK)
        goto done;
    if (!key->enabled) {
        rv = kv_err_set(err, KV_ERR_NOT_FOUND, "key version %s is disabled", label);
        goto done;
    }
    rv = kv_p11_kdata_new(key, &kd, err);
    if (rv == KV_OK)
        rv = kv_p11_version_label(kd, err);
    if (rv == KV_OK) {
        *out = kd;
        kd = NULL;
    }
done:
    kv_p11_kdata_unref(kd);
    kv_key_unref(key);
    return rv;
}

kv_rv kv_p11_versions_add(kv_vault *v, kv_p11_kdata ***kds, size_t *count, kv_err *err)
{
    size_t n = *count, total = n, cap = n, i, j;
    kv_rv rv = KV_OK;

    if (!kv_vault_key_versions_all(v))
        return KV_OK;
    for (i = 0; i < n && rv == KV_OK; i++) {
        const kv_key *latest = (*kds)[i]->key;
        kv_key **vers = NULL;
        size_t nvers = 0;

        if (latest->kty != KV_KTY_RSA && latest->kty != KV_KTY_EC)
            continue;
        rv = kv_vault_list_key_versions(v, latest->name, &vers, &nvers, err);
        if (rv == KV_ERR_NOT_FOUND || rv == KV_ERR_UNSUPPORTED || rv == KV_ERR_FORBIDDEN) {
            rv = KV_OK; /* deleted meanwhile, no versions, or a role that may not list them */
            continue;
        }
        for (j = 0; j < nvers && rv == KV_OK; j++) {
            kv_p11_kdata *kd = NULL;

            if (!vers[j]->enabled || strcmp(vers[j]->version, latest->version) == 0 ||
                vers[j]->pub == NULL)
                continue;
            rv = kv_p11_kdata_new(vers[j], &kd, err);
            if (rv == KV_OK)
                rv = kv_p11_version_label(kd, err);
            if (rv == KV_OK && total == cap) {
                size_t ncap = cap ? 2 * cap : 8;
                kv_p11_kdata **nk = realloc(*kds, ncap * sizeof(*nk));

                if (nk == NULL)
                    rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
                else {
                    *kds = nk;
                    cap = ncap;
                }
            }
            if (rv == KV_OK) {
                (*kds)[total++] = kd;
                kd = NULL;
            }
            kv_p11_kdata_unref(kd);
        }
        kv_key_list_free(vers, nvers);
    }
    *count = total;
    return rv;
}
