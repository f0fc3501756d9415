/* kv_cli_dataplane.c - helpers shared by the data-plane command modules (key lifecycle,
 * secrets, certificates): flags for attributes, tags, ops, files and JSON values, and the
 * verbs every collection has (show, list, list-versions, delete, list-deleted, show-deleted,
 * recover, purge, backup, restore), mirroring `az keyvault {key,secret,certificate} ...`. */
#include "kv_cli_dataplane.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kv_b64.h"
#include "kv_cli_time.h"

#define KV_CLI_BACKUP_MAX (64u * 1024u * 1024u)

const kv_cli_kind kv_cli_kind_keys = {"keys", "deletedkeys", false, true};
const kv_cli_kind kv_cli_kind_secrets = {"secrets", "deletedsecrets", true, true};
const kv_cli_kind kv_cli_kind_certificates = {"certificates", "deletedcertificates", true, false};

/* ---- flags ---- */

int kv_cli_vault_arg(kv_cli *cli, const kv_args *args, kv_vault **v)
{
    const char *vname = kv_args_get(args, "--vault-name");
    const char *hname = kv_args_get(args, "--hsm-name");

    *v = NULL;
    if (vname != NULL && hname != NULL)
        return kv_args_usage_error("usage error: --vault-name VAULT | --hsm-name HSM");
    if (vname == NULL && hname == NULL)
        return kv_args_usage_error("the following arguments are required: --vault-name%s",
                                   kv_args_val(args, "--hsm-name") ? " (or --hsm-name)" : "");
    return kv_cli_vault(cli, vname ? vname : hname, v);
}

static int kv_cli_time_arg(const kv_args *args, const char *flag, const char *field, json_t *obj)
{
    const char *s = kv_args_get(args, flag);
    long long t;

    if (s == NULL)
        return KV_EXIT_OK;
    if (!kv_cli_time_parse(s, &t))
        return kv_args_usage_error("argument %s: invalid datetime value: '%s'", flag, s);
    if (json_object_set_new(obj, field, json_integer(t)) != 0)
        return KV_EXIT_ERROR;
    return KV_EXIT_OK;
}

int kv_cli_attrs_arg(const kv_args *args, bool always, json_t **attrs)
{
    json_t *a = json_object();
    bool disabled = false, enabled = true;
    int rc = KV_EXIT_USAGE;

    *attrs = NULL;
    if (a == NULL)
        return KV_EXIT_ERROR;
    if (kv_args_bool(args, "--disabled", false, &disabled) != KV_EXIT_OK ||
        kv_args_bool(args, "--enabled", true, &enabled) != KV_EXIT_OK)
        goto done;
    if (kv_args_has(args, "--disabled") && kv_args_has(args, "--enabled") && disabled == enabled) {
        kv_args_usage_error("arguments --disabled and --enabled contradict each other");
        goto done;
    }
    if (kv_args_has(args, "--disabled") || kv_args_has(args, "--enabled") || always)
        json_object_set_new(a, "enabled", json_boolean(enabled && !disabled));
    rc = kv_cli_time_arg(args, "--expires", "exp", a);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_time_arg(args, "--not-before", "nbf", a);
    if (rc != KV_EXIT_OK)
        goto done;
    if (json_object_size(a) > 0) {
        *attrs = a;
        a = NULL;
    }
done:
    json_decref(a);
    return rc;
}

int kv_cli_tags_arg(const kv_args *args, json_t **tags)
{
    const kv_arg_val *v = kv_args_val(args, "--tags");
    json_t *t = NULL;
    size_t i;

    *tags = NULL;
    if (v == NULL || !v->set)
        return KV_EXIT_OK;
    t = json_object();
    if (t == NULL)
        return KV_EXIT_ERROR;
    for (i = 0; i < v->n; i++) {
        const char *eq = strchr(v->vals[i], '=');
        size_t klen = eq ? (size_t)(eq - v->vals[i]) : strlen(v->vals[i]);
        char k[257];

        if (klen == 0) /* az: --tags "" clears the tags */
            continue;
        if (klen >= sizeof(k)) {
            json_decref(t);
            return kv_args_usage_error("argument --tags: tag name too long");
        }
        memcpy(k, v->vals[i], klen);
        k[klen] = '\0';
        json_object_set_new(t, k, json_string(eq ? eq + 1 : ""));
    }
    *tags = t;
    return KV_EXIT_OK;
}

int kv_cli_ops_arg(const kv_args *args, json_t **ops)
{
    static const char *const choices[] = {"decrypt",   "encrypt", "export",  "import", "sign",
                                          "unwrapKey", "verify",  "wrapKey", NULL};
    const kv_arg_val *v = kv_args_val(args, "--ops");
    json_t *a;
    size_t i;

    *ops = NULL;
    if (v == NULL || !v->set)
        return KV_EXIT_OK;
    a = json_array();
    if (a == NULL)
        return KV_EXIT_ERROR;
    for (i = 0; i < v->n; i++) {
        int c = kv_args_choice("--ops", v->vals[i], choices, true);
        if (c < 0) {
            json_decref(a);
            return KV_EXIT_USAGE;
        }
        json_array_append_new(a, json_string(choices[c]));
    }
    *ops = a;
    return KV_EXIT_OK;
}

void kv_cli_json_strip_nulls(json_t *j)
{
    size_t i;

    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        void *tmp;

        json_object_foreach_safe(j, tmp, k, v)
        {
            if (json_is_null(v))
                json_object_del(j, k);
            else
                kv_cli_json_strip_nulls(v);
        }
    } else if (json_is_array(j)) {
        for (i = 0; i < json_array_size(j); i++)
            kv_cli_json_strip_nulls(json_array_get(j, i));
    }
}

int kv_cli_json_arg(const char *flag, const char *val, json_t **out)
{
    const char *path = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    struct stat st;

    *out = NULL;
    if (val[0] == '@')
        path = val + 1;
    else if (val[0] != '{' && val[0] != '[' && stat(val, &st) == 0)
        path = val;
    if (path != NULL) {
        int rc = kv_cli_read_file(flag, path, 1024 * 1024, &buf, &len);
        if (rc != KV_EXIT_OK)
            return rc;
        *out = json_loadb((const char *)buf, len, 0, &jerr);
        kv_cli_free_buf(buf, len);
    } else {
        *out = json_loads(val, 0, &jerr);
    }
    if (*out == NULL)
        return kv_args_usage_error("argument %s: invalid JSON: %s (line %d)", flag, jerr.text,
                                   jerr.line);
    return KV_EXIT_OK;
}

/* ---- files ---- */

void kv_cli_free_buf(void *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}

int kv_cli_read_file(const char *flag, const char *path, size_t max, uint8_t **buf, size_t *len)
{
    FILE *f = NULL;
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    int rc = KV_EXIT_ERROR;

    *buf = NULL;
    *len = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "ERROR: argument %s: cannot open '%s': %s\n", flag, path, strerror(errno));
        goto done;
    }
    for (;;) {
        size_t got;

        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            uint8_t *nb = malloc(ncap);
            if (nb == NULL) {
                fprintf(stderr, "ERROR: out of memory\n");
                goto done;
            }
            if (b != NULL)
                memcpy(nb, b, n);
            kv_cli_free_buf(b, cap);
            b = nb;
            cap = ncap;
        }
        got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (n > max) {
            rc = kv_args_usage_error("argument %s: '%s' is larger than %zu bytes", flag, path, max);
            goto done;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "ERROR: cannot read '%s'\n", path);
        goto done;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
    rc = KV_EXIT_OK;
done:
    kv_cli_free_buf(b, cap);
    if (f != NULL)
        fclose(f);
    return rc;
}

int kv_cli_write_file(const char *path, const void *buf, size_t len, bool exclusive, unsigned mode)
{
    const uint8_t *p = buf;
    int fd, rc = KV_EXIT_ERROR;

    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), (mode_t)mode);
    if (fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "ERROR: File or directory named '%s' already exists.\n", path);
        else
            fprintf(stderr, "ERROR: cannot create '%s': %s\n", path, strerror(errno));
        return KV_EXIT_ERROR;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "ERROR: cannot write '%s': %s\n", path, strerror(errno));
            goto done;
        }
        p += w;
        len -= (size_t)w;
    }
    rc = KV_EXIT_OK;
done:
    if (close(fd) != 0 && rc == KV_EXIT_OK) {
        fprintf(stderr, "ERROR: cannot write '%s': %s\n", path, strerror(errno));
        rc = KV_EXIT_ERROR;
    }
    return rc;
}

/* ---- requests and output ---- */

/* The NAME after "/COLL/" or "/deletedCOLL/" in an identifier URL. */
static bool kv_cli_name_from_id(const char *id, const kv_cli_kind *k, const char **name,
                                size_t *len)
{
    char pat[64];
    const char *p;

    if (id == NULL)
        return false;
    snprintf(pat, sizeof(pat), "/%s/", k->deleted);
    p = strstr(id, pat);
    if (p == NULL) {
        snprintf(pat, sizeof(pat), "/%s/", k->coll);
        p = strstr(id, pat);
    }
    if (p == NULL)
        return false;
    p += strlen(pat);
    *name = p;
    *len = strcspn(p, "/?");
    return *len > 0;
}

void kv_cli_add_name(json_t *obj, const kv_cli_kind *k)
{
    static const char *const fields[] = {"id", "kid", "recoveryId", NULL};
    const char *name = NULL;
    size_t len = 0, i;

    if (!json_is_object(obj) || json_object_get(obj, "name") != NULL)
        return;
    for (i = 0; fields[i] != NULL && name == NULL; i++)
        if (!kv_cli_name_from_id(json_string_value(json_object_get(obj, fields[i])), k, &name,
                                 &len))
            name = NULL;
    if (name == NULL &&
        !kv_cli_name_from_id(json_string_value(json_object_get(json_object_get(obj, "key"), "kid")),
                             k, &name, &len))
        return;
    json_object_set_new(obj, "name", json_stringn(name, len));
}

int kv_cli_send(kv_cli *cli, kv_vault *v, const char *method, const char *path, json_t *body,
                const kv_cli_kind *name_kind)
{
    json_t *resp = NULL;
    int rc;

    rc = kv_cli_request(v, method, path, body, &resp);
    if (rc != KV_EXIT_OK)
        return rc;
    if (resp == NULL) /* 204: az prints nothing */
        return kv_cli_print(cli, json_null());
    if (name_kind != NULL)
        kv_cli_add_name(resp, name_kind);
    return kv_cli_print(cli, resp);
}

int kv_cli_dp_list_path(kv_cli *cli, kv_vault *v, const char *base, const kv_args *args,
                        const kv_cli_kind *k, bool include_managed)
{
    json_t *items = NULL, *out = NULL, *it;
    char path[384];
    long max = 0;
    size_t i;
    int rc;

    rc = kv_args_int(args, "--maxresults", 0, 1, 1000000, &max);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "%s%s", base, strchr(base, '?') ? "&" : "?");
    if (max > 0)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "maxresults=%ld",
                 max < 25 ? max : 25);
    else
        path[strlen(path) - 1] = '\0';
    rc = kv_cli_list(v, path, (size_t)max, &items);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    out = json_array();
    if (out == NULL)
        goto done;
    json_array_foreach(items, i, it)
    {
        if (!include_managed && json_is_true(json_object_get(it, "managed")))
            continue;
        kv_cli_add_name(it, k);
        json_array_append(out, it);
    }
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    json_decref(items);
    json_decref(out);
    return rc;
}

int kv_cli_dp_pin_version(kv_cli_target *t, const kv_cli_kind *k)
{
    json_t *resp = NULL;
    const char *id, *p;
    char path[256];
    size_t clen = strlen(k->coll);
    int rc;

    if (t->version[0] != '\0')
        return KV_EXIT_OK;
    snprintf(path, sizeof(path), "/%s/%s/", k->coll, t->name);
    rc = kv_cli_request(t->vault, "GET", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    id = json_string_value(json_object_get(resp, "id"));
    if (id == NULL)
        id = json_string_value(json_object_get(json_object_get(resp, "key"), "kid"));
    p = id ? strstr(id, k->coll) : NULL;
    p = (p && p > id && p[-1] == '/' && p[clen] == '/') ? strchr(p + clen + 1, '/') : NULL;
    if (p == NULL || p[1] == '\0' || strlen(p + 1) >= sizeof(t->version)) {
        fprintf(stderr, "ERROR: the vault returned a %s without a versioned id\n",
                kv_cli_noun(k->coll));
        goto done;
    }
    snprintf(t->version, sizeof(t->version), "%s", p + 1);
    rc = KV_EXIT_OK;
done:
    json_decref(resp);
    return rc;
}

/* ---- verbs every collection has ---- */

int kv_cli_dp_show(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_cli_target t;
    char path[384];
    int rc;

    rc = kv_cli_target_resolve_in(cli, args, k->coll, true, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/%s/%s/%s", k->coll, t.name, t.version);
    return kv_cli_send(cli, t.vault, "GET", path, NULL, k->name_on_bundle ? k : NULL);
}

int kv_cli_dp_list(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_vault *v = NULL;
    bool managed = !k->has_managed;
    char base[64];
    int rc;

    rc = kv_args_bool(args, "--include-managed", managed, &managed);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    if (kv_args_has(args, "--include-pending")) {
        bool pending = false;
        rc = kv_args_bool(args, "--include-pending", false, &pending);
        if (rc != KV_EXIT_OK)
            return rc;
        snprintf(base, sizeof(base), "/%s?includePending=%s", k->coll, pending ? "true" : "false");
    } else {
        snprintf(base, sizeof(base), "/%s", k->coll);
    }
    return kv_cli_dp_list_path(cli, v, base, args, k, managed);
}

int kv_cli_dp_list_versions(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_cli_target t;
    char base[256];
    int rc;

    rc = kv_cli_target_resolve_in(cli, args, k->coll, false, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(base, sizeof(base), "/%s/%s/versions", k->coll, t.name);
    return kv_cli_dp_list_path(cli, t.vault, base, args, k, true);
}

int kv_cli_dp_delete(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_cli_target t;
    char path[256];
    int rc;

    rc = kv_cli_target_resolve_in(cli, args, k->coll, false, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/%s/%s", k->coll, t.name);
    return kv_cli_send(cli, t.vault, "DELETE", path, NULL, k->name_on_bundle ? k : NULL);
}

int kv_cli_dp_list_deleted(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_vault *v = NULL;
    char base[64];
    int rc;

    rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(base, sizeof(base), "/%s", k->deleted);
    return kv_cli_dp_list_path(cli, v, base, args, k, true);
}

/* The deleted object's path "/deletedCOLL/NAME" + suffix. */
static int kv_cli_deleted_target(kv_cli *cli, const kv_args *args, const kv_cli_kind *k,
                                 const char *suffix, kv_cli_target *t, char *path, size_t len)
{
    int rc = kv_cli_target_resolve_in(cli, args, k->coll, false, t);

    if (rc == KV_EXIT_OK)
        snprintf(path, len, "/%s/%s%s", k->deleted, t->name, suffix);
    return rc;
}

int kv_cli_dp_show_deleted(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_cli_target t;
    char path[256];
    int rc;

    rc = kv_cli_deleted_target(cli, args, k, "", &t, path, sizeof(path));
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_send(cli, t.vault, "GET", path, NULL, k->name_on_bundle ? k : NULL);
}

int kv_cli_dp_recover(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_cli_target t;
    char path[256];
    int rc;

    rc = kv_cli_deleted_target(cli, args, k, "/recover", &t, path, sizeof(path));
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_send(cli, t.vault, "POST", path, NULL, k->name_on_bundle ? k : NULL);
}

int kv_cli_dp_purge(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_cli_target t;
    char path[256];
    json_t *resp = NULL;
    int rc;

    rc = kv_cli_deleted_target(cli, args, k, "", &t, path, sizeof(path));
    if (rc != KV_EXIT_OK)
        return rc;
    rc = kv_cli_request(t.vault, "DELETE", path, NULL, &resp);
    json_decref(resp); /* az prints nothing */
    return rc;
}

int kv_cli_dp_backup(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    const char *file = kv_args_get(args, "--file");
    kv_cli_target t;
    json_t *resp = NULL;
    const char *blob;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    char path[256];
    int rc;

    rc = kv_cli_target_resolve_in(cli, args, k->coll, false, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "/%s/%s/backup", k->coll, t.name);
    rc = kv_cli_request(t.vault, "POST", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    blob = json_string_value(json_object_get(resp, "value"));
    if (blob == NULL || kv_b64_decode(blob, &raw, &rawlen) != KV_OK) {
        fprintf(stderr, "ERROR: the vault returned no backup blob\n");
        goto done;
    }
    rc = kv_cli_write_file(file, raw, rawlen, false, 0600); /* az overwrites too */
done:
    kv_cli_free_buf(raw, rawlen);
    json_decref(resp);
    return rc;
}

int kv_cli_dp_restore(kv_cli *cli, const kv_args *args, const kv_cli_kind *k)
{
    kv_vault *v = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    char *b64 = NULL, path[64];
    json_t *body = NULL;
    int rc;

    rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_read_file("--file/-f", kv_args_get(args, "--file"), KV_CLI_BACKUP_MAX, &raw,
                              &rawlen);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    if (rawlen == 0) {
        rc = kv_args_usage_error("argument --file/-f: '%s' is empty", kv_args_get(args, "--file"));
        goto done;
    }
    b64 = kv_b64url_encode(raw, rawlen);
    body = b64 ? json_pack("{s:s}", "value", b64) : NULL;
    if (body == NULL) {
        fprintf(stderr, "ERROR: out of memory\n");
        goto done;
    }
    snprintf(path, sizeof(path), "/%s/restore", k->coll);
    rc = kv_cli_send(cli, v, "POST", path, body, k->name_on_bundle ? k : NULL);
done:
    kv_cli_free_buf(raw, rawlen);
    free(b64);
    json_decref(body);
    return rc;
}
