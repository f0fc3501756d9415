/* kv_cli_ad.c - principals through vaultd's admin API (/admin/servicePrincipals,
 * /admin/managedIdentities; vaultd/README.md), az-style:
 *
 *   kvault ad sp create-for-rbac --name N [--cert [--keyout FILE] | --cert-file PEM]
 *   kvault ad sp list | show --id APPID | delete --id APPID
 *   kvault ad mi create --name N --host H [--user-assigned] | list | delete --name N
 *   kvault ad user create --display-name N --user-principal-name UPN [--password P]
 *   kvault ad user list | show --id UPN | delete --id UPN
 *
 * With --cert the RSA key and a self-signed certificate are made locally; only the
 * certificate is sent, key + certificate go to a 0600 PEM file (az's
 * "fileWithCertAndPrivateKey"). The calls use the credential of a configured vault (--via,
 * default the first one), which must be a tenant administrator. */
#include "kv_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define KV_AD_SP "/admin/servicePrincipals"
#define KV_AD_MI "/admin/managedIdentities"
#define KV_AD_USERS "/admin/users"

/* Whether id can be one path segment (no separator, query, fragment or escape). */
static bool kv_ad_id_ok(const char *id)
{
    return id != NULL && id[0] != '\0' && strpbrk(id, "/?#% ") == NULL && strcmp(id, "..") != 0 &&
           strcmp(id, ".") != 0;
}

/* The vault whose service takes the admin calls. */
static int kv_ad_vault(kv_cli *cli, const kv_args *args, kv_vault **out)
{
    const char *via = kv_args_get(args, "--via");
    int rc;

    *out = NULL;
    if (via != NULL)
        return kv_cli_vault(cli, via, out);
    rc = kv_cli_open(cli);
    if (rc != KV_EXIT_OK)
        return rc;
    if (kv_ctx_vault_count(cli->ctx) == 0) {
        fprintf(stderr, "ERROR: no vault is configured; the admin API is reached through a "
                        "configured vault's service.\n");
        return KV_EXIT_ERROR;
    }
    *out = kv_ctx_vault_at(cli->ctx, 0);
    return KV_EXIT_OK;
}

/* A self-signed certificate (CN=name, 1 year) for a new RSA-2048 key; PEM of the certificate
 * in *cert_pem (malloc'd), certificate + key written to path (0600, created exclusively). */
static int kv_ad_make_cert(const char *name, const char *path, char **cert_pem)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    X509_NAME *subj = NULL;
    BIO *mem = BIO_new(BIO_s_mem()), *file = NULL;
    char *data = NULL;
    long len;
    int fd = -1, rc = KV_EXIT_ERROR;

    *cert_pem = NULL;
    if (key == NULL || x == NULL || mem == NULL)
        goto done;
    subj = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) == NULL ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, subj) != 1 || X509_set_pubkey(x, key) != 1 ||
        X509_sign(x, key, EVP_sha256()) <= 0)
        goto done;
    if (PEM_write_bio_X509(mem, x) != 1 || (len = BIO_get_mem_data(mem, &data)) <= 0)
        goto done;
    *cert_pem = strndup(data, (size_t)len);
    if (*cert_pem == NULL)
        goto done;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "ERROR: cannot create %s: %s\n", path, strerror(errno));
        goto done;
    }
    file = BIO_new_fd(fd, BIO_CLOSE);
    if (file == NULL)
        goto done;
    fd = -1;
    if (PEM_write_bio_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(file, x) != 1 || BIO_flush(file) != 1) {
        fprintf(stderr, "ERROR: cannot write %s\n", path);
        goto done;
    }
    rc = KV_EXIT_OK;
done:
    if (rc != KV_EXIT_OK) {
        free(*cert_pem);
        *cert_pem = NULL;
    }
    if (fd >= 0)
        close(fd);
    BIO_free(file);
    BIO_free(mem);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* The first certificate of a PEM file, re-encoded alone (a private key in the same file is
 * never sent). NULL if there is none. */
static char *kv_ad_read_cert(const char *path)
{
    BIO *in = BIO_new_file(path, "r"), *mem = BIO_new(BIO_s_mem());
    X509 *x = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    char *data = NULL, *out = NULL;
    long len;

    if (x != NULL && mem != NULL && PEM_write_bio_X509(mem, x) == 1 &&
        (len = BIO_get_mem_data(mem, &data)) > 0)
        out = strndup(data, (size_t)len);
    X509_free(x);
    BIO_free(in);
    BIO_free(mem);
    return out;
}

static int kv_ad_sp_create(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name"), *keyout = kv_args_get(args, "--keyout");
    const char *certfile = kv_args_get(args, "--cert-file");
    bool cert = kv_args_has(args, "--cert");
    char path[4096] = "", *pem = NULL;
    json_t *body = NULL, *resp = NULL, *out = NULL;
    kv_vault *v = NULL;
    int rc, fd;

    if (cert && certfile != NULL)
        return kv_args_usage_error("--cert and --cert-file are mutually exclusive");
    if (keyout != NULL && !cert)
        return kv_args_usage_error("--keyout needs --cert");
    rc = kv_ad_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    rc = KV_EXIT_ERROR;
    if (cert) {
        if (keyout != NULL) {
            snprintf(path, sizeof(path), "%s", keyout);
        } else { /* like az: a fresh file in the home directory */
            const char *home = getenv("HOME");

            snprintf(path, sizeof(path), "%s/kvault-sp-XXXXXX.pem",
                     home && home[0] ? home : "/tmp");
            fd = mkstemps(path, 4);
            if (fd < 0) {
                fprintf(stderr, "ERROR: cannot create %s: %s\n", path, strerror(errno));
                goto done;
            }
            close(fd);
            unlink(path); /* re-created exclusively with mode 0600 below */
        }
        if (kv_ad_make_cert(name, path, &pem) != KV_EXIT_OK)
            goto done;
    } else if (certfile != NULL) {
        pem = kv_ad_read_cert(certfile);
        if (pem == NULL) {
            fprintf(stderr, "ERROR: %s holds no PEM certificate\n", certfile);
            goto done;
        }
    }
    body = json_pack("{s:s}", "displayName", name);
    if (body == NULL)
        goto done;
    if (pem != NULL)
        json_object_set_new(body, "certificate", json_string(pem));
    rc = kv_cli_request(v, "POST", KV_AD_SP, body, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    /* az's order: appId, displayName, [fileWithCertAndPrivateKey,] password, tenant */
    out = json_pack("{s:O, s:O}", "appId", json_object_get(resp, "appId"), "displayName",
                    json_object_get(resp, "displayName"));
    if (out == NULL) {
        rc = KV_EXIT_ERROR;
        goto done;
    }
    if (cert)
        json_object_set_new(out, "fileWithCertAndPrivateKey", json_string(path));
    json_object_set(out, "password", pem != NULL ? json_null() : json_object_get(resp, "password"));
    json_object_set(out, "tenant", json_object_get(resp, "tenant"));
    if (pem != NULL) /* vaultd extension: the registered certificate's SHA-1 (hex) */
        json_object_set(out, "certificateThumbprint",
                        json_object_get(resp, "certificateThumbprint"));
    rc = kv_cli_print(cli, out);
    out = NULL;
done:
    json_decref(body);
    json_decref(resp);
    json_decref(out);
    free(pem);
    return rc;
}

static int kv_ad_get(kv_cli *cli, const kv_args *args, const char *path, bool value)
{
    json_t *resp = NULL, *res;
    kv_vault *v = NULL;
    int rc = kv_ad_vault(cli, args, &v);

    if (rc == KV_EXIT_OK)
        rc = kv_cli_request(v, "GET", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        return rc;
    res = value ? json_incref(json_object_get(resp, "value")) : json_incref(resp);
    json_decref(resp);
    return kv_cli_print(cli, res ? res : json_array());
}

static int kv_ad_sp_list(kv_cli *cli, const kv_args *args)
{
    return kv_ad_get(cli, args, KV_AD_SP, true);
}

static int kv_ad_sp_show(kv_cli *cli, const kv_args *args)
{
    char path[300];

    if (!kv_ad_id_ok(kv_args_get(args, "--id")))
        return kv_args_usage_error("invalid identifier '%s'", kv_args_get(args, "--id"));
    snprintf(path, sizeof(path), "%s/%s", KV_AD_SP, kv_args_get(args, "--id"));
    return kv_ad_get(cli, args, path, false);
}

static int kv_ad_delete(kv_cli *cli, const kv_args *args, const char *coll, const char *id)
{
    json_t *resp = NULL;
    kv_vault *v = NULL;
    char path[300];
    int rc;

    if (!kv_ad_id_ok(id))
        return kv_args_usage_error("invalid identifier '%s'", id);
    rc = kv_ad_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", coll, id);
    rc = kv_cli_request(v, "DELETE", path, NULL, &resp);
    json_decref(resp); /* az prints nothing for a delete */
    return rc;
}

static int kv_ad_sp_delete(kv_cli *cli, const kv_args *args)
{
    return kv_ad_delete(cli, args, KV_AD_SP, kv_args_get(args, "--id"));
}

static int kv_ad_mi_create(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name");
    json_t *body, *resp = NULL;
    kv_vault *v = NULL;
    char path[300];
    int rc;

    if (!kv_ad_id_ok(name))
        return kv_args_usage_error("invalid name '%s'", name);
    rc = kv_ad_vault(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    body = json_pack("{s:s, s:b}", "host", kv_args_get(args, "--host"), "userAssigned",
                     kv_args_has(args, "--user-assigned"));
    if (body == NULL)
        return KV_EXIT_ERROR;
    snprintf(path, sizeof(path), "%s/%s", KV_AD_MI, name);
    rc = kv_cli_request(v, "PUT", path, body, &resp);
    json_decref(body);
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_print(cli, resp);
}

static int kv_ad_mi_list(kv_cli *cli, const kv_args *args)
{
    return kv_ad_get(cli, args, KV_AD_MI, true);
}

static int kv_ad_mi_delete(kv_cli *cli, const kv_args *args)
{
    return kv_ad_delete(cli, args, KV_AD_MI, kv_args_get(args, "--name"));
}

/* kvault ad user create: az prints the new user; vaultd adds "password" when it generated
 * one (shown once). */
static int kv_ad_user_create(kv_cli *cli, const kv_args *args)
{
    const char *pw = kv_args_get(args, "--password");
    json_t *body, *resp = NULL;
    kv_vault *v = NULL;
    int rc = kv_ad_vault(cli, args, &v);

    if (rc != KV_EXIT_OK)
        return rc;
    body = json_pack("{s:s, s:s}", "displayName", kv_args_get(args, "--display-name"),
                     "userPrincipalName", kv_args_get(args, "--user-principal-name"));
    if (body == NULL)
        return KV_EXIT_ERROR;
    if (pw != NULL)
        json_object_set_new(body, "password", json_string(pw));
    rc = kv_cli_request(v, "POST", KV_AD_USERS, body, &resp);
    json_decref(body);
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_print(cli, resp);
}

static int kv_ad_user_list(kv_cli *cli, const kv_args *args)
{
    return kv_ad_get(cli, args, KV_AD_USERS, true);
}

static int kv_ad_user_show(kv_cli *cli, const kv_args *args)
{
    char path[300];

    if (!kv_ad_id_ok(kv_args_get(args, "--id")))
        return kv_args_usage_error("invalid identifier '%s'", kv_args_get(args, "--id"));
    snprintf(path, sizeof(path), "%s/%s", KV_AD_USERS, kv_args_get(args, "--id"));
    return kv_ad_get(cli, args, path, false);
}

static int kv_ad_user_delete(kv_cli *cli, const kv_args *args)
{
    return kv_ad_delete(cli, args, KV_AD_USERS, kv_args_get(args, "--id"));
}

#define KV_AD_VIA                                                                                  \
    {                                                                                              \
        "--via", NULL, KV_ARG_VALUE, 0, "VAULT",                                                   \
            "Configured vault whose vaultd instance is administered (default: the first one)."     \
    }

static const kv_arg_spec kv_ad_create_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Display name of the principal."},
    {"--cert", NULL, KV_ARG_FLAG, 0, NULL,
     "Use a certificate: make an RSA key and a self-signed certificate locally, send only the "
     "certificate."},
    {"--keyout", NULL, KV_ARG_VALUE, 0, "FILE",
     "With --cert: where to write the key + certificate PEM (0600; default ~/kvault-sp-*.pem)."},
    {"--cert-file", NULL, KV_ARG_VALUE, 0, "PEM", "Register this existing certificate (PEM)."},
    KV_AD_VIA,
};
static const kv_arg_spec kv_ad_id_specs[] = {
    {"--id", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "APPID", "The appId (= objectId)."},
    KV_AD_VIA,
};
static const kv_arg_spec kv_ad_list_specs[] = {KV_AD_VIA};
static const kv_arg_spec kv_ad_mi_create_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the managed identity."},
    {"--host", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "HOST",
     "Host (vaultd --identity-host) the identity is bound to."},
    {"--user-assigned", NULL, KV_ARG_FLAG, 0, NULL,
     "A user-assigned identity (selected by client_id); default system-assigned."},
    KV_AD_VIA,
};
static const kv_arg_spec kv_ad_mi_name_specs[] = {
    {"--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the managed identity."},
    KV_AD_VIA,
};

static const kv_arg_spec kv_ad_user_create_specs[] = {
    {"--display-name", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Display name of the user."},
    {"--user-principal-name", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "UPN",
     "userPrincipalName, e.g. alice@contoso.example."},
    {"--password", NULL, KV_ARG_VALUE, 0, "PASSWORD",
     "Password (8-127 characters); default: one is generated and printed once."},
    KV_AD_VIA,
};
static const kv_arg_spec kv_ad_user_id_specs[] = {
    {"--id", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "UPN", "userPrincipalName or object id."},
    KV_AD_VIA,
};

static const kv_cli_cmd kv_ad_cmds[] = {
    {"sp create-for-rbac", "Create a service principal (secret, or certificate with --cert).",
     kv_ad_create_specs, KV_NELEM(kv_ad_create_specs), kv_ad_sp_create,
     "kvault ad sp create-for-rbac --name app1\n"
     "kvault ad sp create-for-rbac --name app2 --cert --keyout app2.pem"},
    {"sp list", "List the service principals (and managed identities) of the tenant.",
     kv_ad_list_specs, KV_NELEM(kv_ad_list_specs), kv_ad_sp_list, "kvault ad sp list -o table"},
    {"sp show", "Show a service principal.", kv_ad_id_specs, KV_NELEM(kv_ad_id_specs),
     kv_ad_sp_show, "kvault ad sp show --id APPID"},
    {"sp delete", "Delete a service principal and its role assignments.", kv_ad_id_specs,
     KV_NELEM(kv_ad_id_specs), kv_ad_sp_delete, "kvault ad sp delete --id APPID"},
    {"mi create", "Create a managed identity bound to a host (or re-bind it).",
     kv_ad_mi_create_specs, KV_NELEM(kv_ad_mi_create_specs), kv_ad_mi_create,
     "kvault ad mi create --name web1 --host web1.example"},
    {"mi list", "List the managed identities.", kv_ad_list_specs, KV_NELEM(kv_ad_list_specs),
     kv_ad_mi_list, "kvault ad mi list -o table"},
    {"mi delete", "Delete a managed identity and its role assignments.", kv_ad_mi_name_specs,
     KV_NELEM(kv_ad_mi_name_specs), kv_ad_mi_delete, "kvault ad mi delete --name web1"},
    {"user create", "Create a user (signs in with the password grant).", kv_ad_user_create_specs,
     KV_NELEM(kv_ad_user_create_specs), kv_ad_user_create,
     "kvault ad user create --display-name Alice --user-principal-name alice@contoso.example"},
    {"user list", "List the users of the tenant.", kv_ad_list_specs, KV_NELEM(kv_ad_list_specs),
     kv_ad_user_list, "kvault ad user list -o table"},
    {"user show", "Show a user.", kv_ad_user_id_specs, KV_NELEM(kv_ad_user_id_specs),
     kv_ad_user_show, "kvault ad user show --id alice@contoso.example"},
    {"user delete", "Delete a user and its role assignments.", kv_ad_user_id_specs,
     KV_NELEM(kv_ad_user_id_specs), kv_ad_user_delete,
     "kvault ad user delete --id alice@contoso.example"},
};

const kv_cli_group kv_cli_ad_group = {"ad",
                                      "Manage service principals, managed identities and users.",
                                      kv_ad_cmds, KV_NELEM(kv_ad_cmds)};
