/* kv_objects.c - read-only access to a vault's certificates and secrets for the faces
 * (the PKCS#11 module shows them as CKO_CERTIFICATE and CKO_DATA objects). Built on the
 * backend's generic request, so any backend with a REST interface serves them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "kv_backend.h"
#include "kv_client.h"

#define KV_OBJ_MAX_PAGES 10000

/* Object names go into a URL path: the vault allows only [0-9a-zA-Z-]. */
static bool kv_obj_name_ok(const char *name)
{
    size_t i, n = name != NULL ? strlen(name) : 0;

    if (n == 0 || n > 127)
        return false;
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return false;
    }
    return true;
}

void kv_name_list_free(char **names, size_t n)
{
    size_t i;

    if (names == NULL)
        return;
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static kv_rv kv_obj_names_push(char ***names, size_t *n, size_t *cap, const char *name)
{
    char *copy;

    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        char **nn = realloc(*names, nc * sizeof(*nn));

        if (nn == NULL)
            return KV_ERR_NOMEM;
        *names = nn;
        *cap = nc;
    }
    copy = strdup(name);
    if (copy == NULL)
        return KV_ERR_NOMEM;
    (*names)[(*n)++] = copy;
    return KV_OK;
}

/* Lists collection ("certificates" or "secrets"): names of enabled items, skipping
 * managed ones when skip_managed. */
static kv_rv kv_obj_list(kv_vault *v, const char *collection, bool skip_managed, char ***out,
                         size_t *nout, kv_err *err)
{
    char first[64], marker[64];
    char *next = NULL, **names = NULL;
    size_t n = 0, cap = 0, i;
    int pages = 0;
    kv_rv rv = KV_OK;

    kv_err_clear(err);
    if (v == NULL || out == NULL || nout == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault or output");
    *out = NULL;
    *nout = 0;
    snprintf(first, sizeof(first), "/%s?maxresults=25", collection);
    snprintf(marker, sizeof(marker), "/%s/", collection);
    next = strdup(first);
    if (next == NULL)
        return kv_err_set(err, KV_ERR_NOMEM, "out of memory");
    while (next != NULL && rv == KV_OK) {
        json_t *j = NULL, *item;
        const char *nl;

        if (++pages > KV_OBJ_MAX_PAGES) {
            rv = kv_err_set(err, KV_ERR_SERVER, "vault %s listing does not end", collection);
            break;
        }
        rv = kv_vault_request(v, "GET", next, NULL, &j, NULL, err);
        free(next);
        next = NULL;
        if (rv != KV_OK)
            break;
        json_array_foreach(json_object_get(j, "value"), i, item)
        {
            const char *id = json_string_value(json_object_get(item, "id"));
            const char *name = id != NULL ? strstr(id, marker) : NULL;
            const json_t *en = json_object_get(json_object_get(item, "attributes"), "enabled");
            char buf[128];
            const char *slash;
            size_t len;

            if (name == NULL || json_is_false(en))
                continue;
            if (skip_managed && json_is_true(json_object_get(item, "managed")))
                continue;
            name += strlen(marker);
            slash = strchr(name, '/');
            len = slash != NULL ? (size_t)(slash - name) : strlen(name);
            if (len == 0 || len >= sizeof(buf))
                continue;
            memcpy(buf, name, len);
            buf[len] = '\0';
            if (!kv_obj_name_ok(buf))
                continue;
            rv = kv_obj_names_push(&names, &n, &cap, buf);
            if (rv != KV_OK) {
                kv_err_set(err, rv, "out of memory");
                break;
            }
        }
        nl = json_string_value(json_object_get(j, "nextLink"));
        if (rv == KV_OK && nl != NULL && *nl != '\0') {
            next = strdup(nl);
            if (next == NULL)
                rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        }
        json_decref(j);
    }
    free(next);
    if (rv != KV_OK) {
        kv_name_list_free(names, n);
        return rv;
    }
    *out = names;
    *nout = n;
    return KV_OK;
}

kv_rv kv_vault_list_certificates(kv_vault *v, char ***names, size_t *n, kv_err *err)
{
    return kv_obj_list(v, "certificates", false, names, n, err);
}

kv_rv kv_vault_list_secrets(kv_vault *v, char ***names, size_t *n, kv_err *err)
{
    return kv_obj_list(v, "secrets", true, names, n, err);
}

kv_rv kv_vault_get_certificate(kv_vault *v, const char *name, uint8_t **der, size_t *derlen,
                               kv_err *err)
{
    char path[192];
    json_t *j = NULL;
    const char *cer;
    kv_rv rv;

    kv_err_clear(err);
    if (v == NULL || der == NULL || derlen == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault or output");
    *der = NULL;
    *derlen = 0;
    if (!kv_obj_name_ok(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid certificate name");
    snprintf(path, sizeof(path), "/certificates/%s", name);
    rv = kv_vault_request(v, "GET", path, NULL, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    cer = json_string_value(json_object_get(j, "cer"));
    if (cer == NULL || *cer == '\0') {
        rv = kv_err_set(err, KV_ERR_NOT_FOUND, "certificate %s has no cer (not issued yet)", name);
        goto done;
    }
    rv = kv_b64_decode(cer, der, derlen);
    if (rv != KV_OK)
        kv_err_set(err, KV_ERR_SERVER, "certificate %s: cer is not base64", name);

done:
    json_decref(j);
    return rv;
}

kv_rv kv_vault_get_secret(kv_vault *v, const char *name, char **value, size_t *len, kv_err *err)
{
    char path[192];
    json_t *j = NULL, *val;
    char *copy = NULL;
    size_t n;
    kv_rv rv;

    kv_err_clear(err);
    if (v == NULL || value == NULL || len == NULL)
        return kv_err_set(err, KV_ERR_INVALID_ARG, "missing vault or output");
    *value = NULL;
    *len = 0;
    if (!kv_obj_name_ok(name))
        return kv_err_set(err, KV_ERR_INVALID_ARG, "invalid secret name");
    snprintf(path, sizeof(path), "/secrets/%s", name);
    rv = kv_vault_request(v, "GET", path, NULL, &j, NULL, err);
    if (rv != KV_OK)
        goto done;
    val = json_object_get(j, "value");
    if (!json_is_string(val)) {
        rv = kv_err_set(err, KV_ERR_SERVER, "secret %s has no value", name);
        goto done;
    }
    n = json_string_length(val);
    copy = malloc(n + 1);
    if (copy == NULL) {
        rv = kv_err_set(err, KV_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(copy, json_string_value(val), n);
    copy[n] = '\0';
    /* jansson owns the parsed copy: wipe it in place before it is freed */
    OPENSSL_cleanse((char *)json_string_value(val), n);
    *value = copy;
    *len = n;

done:
    json_decref(j);
    return rv;
}
