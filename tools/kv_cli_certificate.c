/* kv_cli_certificate.c - `kvault certificate ...`: create (with az's policy JSON, or the REST
 * one), get-default-policy, import (PEM or PKCS#12), show, list, list-versions,
 * set-attributes, delete, list-deleted, show-deleted, recover, purge, backup, restore,
 * download (PEM or DER), pending show, contact add / list / delete and issuer create / update
 * / show / list / delete, as `az keyvault certificate ...`. */
#include "kv_cli_dataplane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kv_b64.h"

#define KV_CERT_FILE_MAX (1024u * 1024u)
#define KV_CERT_WAIT_SECONDS 120

#define KV_C KV_DP_SPEC_VAULT, KV_DP_SPEC_NAME("certificate")
#define KV_C_ID KV_C, KV_DP_SPEC_ID("certificate")
#define KV_C_VER KV_C, KV_DP_SPEC_VERSION("certificate"), KV_DP_SPEC_ID("certificate")

static const kv_cli_kind *const kv_certs = &kv_cli_kind_certificates;

/* What `az keyvault certificate get-default-policy` prints. */
static const char kv_default_policy[] =
    "{\"issuerParameters\": {\"certificateTransparency\": null, \"name\": \"Self\"},"
    " \"keyProperties\": {\"curve\": null, \"exportable\": true, \"keySize\": 2048,"
    " \"keyType\": \"RSA\", \"reuseKey\": true},"
    " \"lifetimeActions\": [{\"action\": {\"actionType\": \"AutoRenew\"},"
    " \"trigger\": {\"daysBeforeExpiry\": 90}}],"
    " \"secretProperties\": {\"contentType\": \"application/x-pkcs12\"},"
    " \"x509CertificateProperties\": {\"keyUsage\": [\"cRLSign\", \"dataEncipherment\","
    " \"digitalSignature\", \"keyEncipherment\", \"keyAgreement\", \"keyCertSign\"],"
    " \"subject\": \"CN=CLIGetDefaultPolicy\", \"validityInMonths\": 12}}";

/* az's (SDK model) policy member names and the wire names they stand for. Each name occurs at
 * one level only, so one flat table serves the whole tree. */
static const char *const kv_policy_names[][2] = {
    {"keyProperties", "key_props"},
    {"secretProperties", "secret_props"},
    {"x509CertificateProperties", "x509_props"},
    {"issuerParameters", "issuer"},
    {"lifetimeActions", "lifetime_actions"},
    {"keyType", "kty"},
    {"keySize", "key_size"},
    {"reuseKey", "reuse_key"},
    {"curve", "crv"},
    {"subjectAlternativeNames", "sans"},
    {"dnsNames", "dns_names"},
    {"keyUsage", "key_usage"},
    {"validityInMonths", "validity_months"},
    {"certificateType", "cty"},
    {"certificateTransparency", "cert_transparency"},
    {"lifetimePercentage", "lifetime_percentage"},
    {"daysBeforeExpiry", "days_before_expiry"},
    {"actionType", "action_type"},
};

/* A wire-format copy of a policy given in az's format (or already in the wire format). */
static json_t *kv_policy_to_wire(const json_t *in)
{
    const char *k;
    json_t *v, *out;
    size_t i;

    if (json_is_array(in)) {
        out = json_array();
        for (i = 0; i < json_array_size(in); i++)
            json_array_append_new(out, kv_policy_to_wire(json_array_get(in, i)));
        return out;
    }
    if (!json_is_object(in))
        return json_deep_copy(in);
    out = json_object();
    json_object_foreach((json_t *)in, k, v)
    {
        const char *wk = k;
        if (json_is_null(v) || strcmp(k, "id") == 0)
            continue;
        for (i = 0; i < KV_NELEM(kv_policy_names); i++)
            if (strcmp(k, kv_policy_names[i][0]) == 0)
                wk = kv_policy_names[i][1];
        json_object_set_new(out, wk, kv_policy_to_wire(v));
    }
    return out;
}

/* --policy (JSON, @FILE or a path; az or wire format) as a wire policy; NULL if absent. */
static int kv_policy_arg(const kv_args *args, json_t **policy)
{
    const char *s = kv_args_get(args, "--policy");
    json_t *j = NULL;
    int rc;

    *policy = NULL;
    if (s == NULL)
        return KV_EXIT_OK;
    rc = kv_cli_json_arg("--policy/-p", s, &j);
    if (rc != KV_EXIT_OK)
        return rc;
    if (!json_is_object(j)) {
        json_decref(j);
        return kv_args_usage_error("argument --policy/-p: the policy must be a JSON object");
    }
    *policy = kv_policy_to_wire(j);
    json_decref(j);
    return *policy != NULL ? KV_EXIT_OK : KV_EXIT_ERROR;
}

/* ---- certificate get-default-policy ---- */

static int kv_cert_default_policy(kv_cli *cli, const kv_args *args)
{
    json_error_t jerr;

    (void)args;
    return kv_cli_print(cli, json_loads(kv_default_policy, 0, &jerr));
}

/* ---- certificate create ---- */

static const kv_arg_spec kv_create_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_NAME_REQ("certificate"),
    {"--policy", "-p", KV_ARG_VALUE, KV_ARG_REQUIRED, "POLICY",
     "JSON encoded policy definition: JSON, @FILE or the path of a file "
     "(see get-default-policy)."},
    {"--validity", NULL, KV_ARG_VALUE, 0, "MONTHS",
     "Number of months the certificate is valid for. Overrides the policy."},
    {"--no-wait", NULL, KV_ARG_FLAG, 0, NULL,
     "Do not wait for the operation to finish; print the pending operation."},
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TAGS,
};

static void kv_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Polls /certificates/NAME/pending until it is no longer inProgress, then prints the
 * certificate (or the operation's error), as az's poller does. */
static int kv_cert_wait(kv_cli *cli, kv_vault *v, const char *name, json_t *op)
{
    json_t *cur = json_incref(op), *err;
    const char *status;
    char path[256];
    time_t deadline = time(NULL) + KV_CERT_WAIT_SECONDS;
    int rc = KV_EXIT_ERROR;

    snprintf(path, sizeof(path), "/certificates/%s/pending", name);
    for (;;) {
        status = json_string_value(json_object_get(cur, "status"));
        if (status == NULL || strcmp(status, "inProgress") != 0)
            break;
        if (time(NULL) > deadline) {
            fprintf(stderr,
                    "ERROR: the certificate '%s' is still being created; see `kvault "
                    "certificate pending show`\n",
                    name);
            goto done;
        }
        kv_sleep_ms(500);
        json_decref(cur);
        cur = NULL;
        rc = kv_cli_request(v, "GET", path, NULL, &cur);
        if (rc != KV_EXIT_OK)
            goto done;
        rc = KV_EXIT_ERROR;
    }
    err = json_object_get(cur, "error");
    if (json_is_object(err)) {
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        fprintf(stderr, "ERROR: (%s) %s\nCode: %s\nMessage: %s\n", code ? code : "", msg ? msg : "",
                code ? code : "", msg ? msg : "");
        goto done;
    }
    if (status != NULL && strcmp(status, "completed") != 0) {
        fprintf(stderr, "ERROR: the certificate operation ended with status '%s'\n", status);
        goto done;
    }
    snprintf(path, sizeof(path), "/certificates/%s/", name);
    rc = kv_cli_send(cli, v, "GET", path, NULL, kv_certs);
done:
    json_decref(cur);
    return rc;
}

static int kv_cert_create(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name");
    json_t *policy = NULL, *attrs = NULL, *tags = NULL, *body = NULL, *op = NULL;
    kv_vault *v = NULL;
    long validity = 0;
    char path[192];
    int rc;

    rc = kv_cli_check_name("certificates", name);
    if (rc == KV_EXIT_OK)
        rc = kv_args_int(args, "--validity", 0, 1, 1200, &validity);
    if (rc == KV_EXIT_OK)
        rc = kv_policy_arg(args, &policy);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    if (validity > 0) {
        json_t *x = json_object_get(policy, "x509_props");
        if (!json_is_object(x)) {
            x = json_object();
            json_object_set_new(policy, "x509_props", x);
        }
        json_object_set_new(x, "validity_months", json_integer(validity));
    }
    body = json_pack("{s:O}", "policy", policy);
    if (body == NULL)
        goto done;
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/certificates/%s/create", name);
    rc = kv_cli_request(v, "POST", path, body, &op);
    if (rc != KV_EXIT_OK)
        goto done;
    if (kv_args_has(args, "--no-wait")) {
        kv_cli_add_name(op, kv_certs);
        rc = kv_cli_print(cli, op);
        op = NULL;
        goto done;
    }
    rc = kv_cert_wait(cli, v, name, op);
done:
    json_decref(policy);
    json_decref(attrs);
    json_decref(tags);
    json_decref(body);
    json_decref(op);
    return rc;
}

/* ---- certificate import ---- */

static const kv_arg_spec kv_import_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_NAME_REQ("certificate"),
    KV_DP_SPEC_FILE("PKCS12 file or PEM file containing the certificate and private key."),
    {"--password", NULL, KV_ARG_VALUE, 0, "PASSWORD",
     "If the private key in certificate is encrypted, the password used for encryption."},
    {"--policy", "-p", KV_ARG_VALUE, 0, "POLICY", "JSON encoded policy definition, or @FILE."},
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TAGS,
};

static int kv_cert_import(kv_cli *cli, const kv_args *args)
{
    const char *name = kv_args_get(args, "--name"), *pwd = kv_args_get(args, "--password");
    json_t *policy = NULL, *attrs = NULL, *tags = NULL, *body = NULL, *sp;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *b64 = NULL, path[192];
    bool pem;
    kv_vault *v = NULL;
    int rc;

    rc = kv_cli_check_name("certificates", name);
    if (rc == KV_EXIT_OK)
        rc = kv_policy_arg(args, &policy);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_read_file("--file/-f", kv_args_get(args, "--file"), KV_CERT_FILE_MAX, &buf,
                              &len);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    /* as az: PEM text travels as is, anything else (PKCS#12) as standard base64 */
    pem = strstr((const char *)buf, "-----BEGIN") != NULL && strlen((const char *)buf) == len;
    if (!pem && (b64 = kv_b64_encode(buf, len)) == NULL)
        goto done;
    body = json_pack("{s:s}", "value", pem ? (const char *)buf : b64);
    if (body == NULL) {
        fprintf(stderr, "ERROR: cannot encode '%s'\n", kv_args_get(args, "--file"));
        goto done;
    }
    if (pwd != NULL)
        json_object_set_new(body, "pwd", json_string(pwd));
    if (policy == NULL)
        policy = json_object();
    sp = json_object_get(policy, "secret_props");
    if (!json_is_object(sp)) {
        sp = json_object();
        json_object_set_new(policy, "secret_props", sp);
    }
    if (json_object_get(sp, "contentType") == NULL)
        json_object_set_new(sp, "contentType",
                            json_string(pem ? "application/x-pem-file" : "application/x-pkcs12"));
    json_object_set(body, "policy", policy);
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/certificates/%s/import", name);
    rc = kv_cli_send(cli, v, "POST", path, body, kv_certs);
done:
    kv_cli_free_buf(buf, len);
    kv_cli_free_buf(b64, b64 ? strlen(b64) : 0);
    json_decref(policy);
    json_decref(attrs);
    json_decref(tags);
    json_decref(body);
    return rc;
}

/* ---- certificate set-attributes ---- */

static const kv_arg_spec kv_setattr_specs[] = {
    KV_C_VER,
    KV_DP_SPEC_ENABLED,
    KV_DP_SPEC_TAGS,
};

static int kv_cert_set_attributes(kv_cli *cli, const kv_args *args)
{
    json_t *body = json_object(), *attrs = NULL, *tags = NULL;
    kv_cli_target t;
    char path[256];
    int rc = KV_EXIT_ERROR;

    if (body == NULL)
        goto done;
    rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_tags_arg(args, &tags);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_target_resolve_in(cli, args, "certificates", true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    if (attrs != NULL)
        json_object_set(body, "attributes", attrs);
    if (tags != NULL)
        json_object_set(body, "tags", tags);
    snprintf(path, sizeof(path), "/certificates/%s/%s", t.name, t.version);
    rc = kv_cli_send(cli, t.vault, "PATCH", path, body, kv_certs);
done:
    json_decref(body);
    json_decref(attrs);
    json_decref(tags);
    return rc;
}

/* ---- certificate download ---- */

static const kv_arg_spec kv_download_specs[] = {
    KV_C_VER,
    KV_DP_SPEC_FILE("File to receive the binary certificate contents (must not exist)."),
    {"--encoding", "-e", KV_ARG_VALUE, 0, "{DER,PEM}",
     "Encoding of the certificate (default PEM)."},
};

static int kv_cert_download(kv_cli *cli, const kv_args *args)
{
    static const char *const enc_choices[] = {"PEM", "DER", NULL};
    const char *enc = kv_args_get(args, "--encoding"), *cer;
    kv_cli_target t;
    json_t *resp = NULL;
    uint8_t *der = NULL;
    size_t derlen = 0, i, n, used = 0;
    char *b64 = NULL, *pem = NULL, path[256];
    int isder = 0, rc;

    if (enc != NULL && (isder = kv_args_choice("--encoding/-e", enc, enc_choices, true)) < 0)
        return KV_EXIT_USAGE;
    rc = kv_cli_target_resolve_in(cli, args, "certificates", true, &t);
    if (rc != KV_EXIT_OK)
        goto done;
    snprintf(path, sizeof(path), "/certificates/%s/%s", t.name, t.version);
    rc = kv_cli_request(t.vault, "GET", path, NULL, &resp);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    cer = json_string_value(json_object_get(resp, "cer"));
    if (cer == NULL || kv_b64_decode(cer, &der, &derlen) != KV_OK || derlen == 0) {
        fprintf(stderr, "ERROR: the vault returned no certificate (cer)\n");
        goto done;
    }
    if (isder) {
        rc = kv_cli_write_file(kv_args_get(args, "--file"), der, derlen, true, 0644);
        goto done;
    }
    b64 = kv_b64_encode(der, derlen);
    if (b64 == NULL)
        goto done;
    n = strlen(b64);
    pem = malloc(n + n / 64 + 64);
    if (pem == NULL)
        goto done;
    used = (size_t)sprintf(pem, "-----BEGIN CERTIFICATE-----\n");
    for (i = 0; i < n; i += 64) {
        size_t l = n - i < 64 ? n - i : 64;
        memcpy(pem + used, b64 + i, l);
        used += l;
        pem[used++] = '\n';
    }
    used += (size_t)sprintf(pem + used, "-----END CERTIFICATE-----\n");
    rc = kv_cli_write_file(kv_args_get(args, "--file"), pem, used, true, 0644);
done:
    free(der);
    free(b64);
    free(pem);
    json_decref(resp);
    return rc;
}

/* ---- certificate pending show ---- */

static const kv_arg_spec kv_name_specs[] = {KV_C_ID};

static int kv_cert_pending_show(kv_cli *cli, const kv_args *args)
{
    kv_cli_target t;
    char path[256];
    int rc;

    rc = kv_cli_target_resolve_in(cli, args, "certificates", false, &t);
    if (rc != KV_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/certificates/%s/pending", t.name);
    return kv_cli_send(cli, t.vault, "GET", path, NULL, kv_certs);
}

/* ---- certificate contact add / list / delete ---- */

static const kv_arg_spec kv_contact_add_specs[] = {
    KV_DP_SPEC_VAULT,
    {"--email", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "EMAIL", "Contact e-mail."},
    {"--name", NULL, KV_ARG_VALUE, 0, "NAME", "Full contact name."},
    {"--phone", NULL, KV_ARG_VALUE, 0, "PHONE", "Contact phone number."},
};
static const kv_arg_spec kv_contact_del_specs[] = {
    KV_DP_SPEC_VAULT,
    {"--email", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "EMAIL", "E-mail of the contact to remove."},
};
static const kv_arg_spec kv_contact_list_specs[] = {KV_DP_SPEC_VAULT};

/* The vault's contact list (a new array; empty when none are set: 404 ContactsNotFound). */
static int kv_contacts_current(kv_vault *v, json_t **list)
{
    json_t *resp = NULL;
    kv_err err = {0};
    long status = 0;
    kv_rv rv;

    *list = NULL;
    rv = kv_vault_request(v, "GET", "/certificates/contacts", NULL, &resp, &status, &err);
    if (rv == KV_ERR_NOT_FOUND) {
        json_decref(resp);
        *list = json_array();
        return *list != NULL ? KV_EXIT_OK : KV_EXIT_ERROR;
    }
    if (rv != KV_OK) {
        kv_cli_print_vault_error(v, rv, &err, resp);
        json_decref(resp);
        return KV_EXIT_ERROR;
    }
    *list = json_deep_copy(json_object_get(resp, "contacts"));
    json_decref(resp);
    if (!json_is_array(*list)) {
        json_decref(*list);
        *list = json_array();
    }
    return *list != NULL ? KV_EXIT_OK : KV_EXIT_ERROR;
}

/* Removes the contact with email from list; true if there was one. */
static bool kv_contacts_remove(json_t *list, const char *email)
{
    bool found = false;
    size_t i = 0;

    while (i < json_array_size(list)) {
        const char *e = json_string_value(json_object_get(json_array_get(list, i), "email"));

        if (e != NULL && strcasecmp(e, email) == 0) {
            json_array_remove(list, i);
            found = true;
        } else {
            i++;
        }
    }
    return found;
}

static int kv_contact_add(kv_cli *cli, const kv_args *args)
{
    const char *email = kv_args_get(args, "--email"), *name = kv_args_get(args, "--name"),
               *phone = kv_args_get(args, "--phone");
    json_t *list = NULL, *c = NULL, *body = NULL;
    kv_vault *v = NULL;
    int rc;

    rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK)
        rc = kv_contacts_current(v, &list);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    kv_contacts_remove(list, email); /* as az: adding an existing e-mail replaces it */
    c = json_pack("{s:s}", "email", email);
    if (c == NULL)
        goto done;
    if (name != NULL)
        json_object_set_new(c, "name", json_string(name));
    if (phone != NULL)
        json_object_set_new(c, "phone", json_string(phone));
    json_array_append(list, c);
    body = json_pack("{s:O}", "contacts", list);
    if (body != NULL)
        rc = kv_cli_send(cli, v, "PUT", "/certificates/contacts", body, NULL);
done:
    json_decref(c);
    json_decref(list);
    json_decref(body);
    return rc;
}

static int kv_contact_list(kv_cli *cli, const kv_args *args)
{
    kv_vault *v = NULL;
    int rc = kv_cli_vault_arg(cli, args, &v);

    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_send(cli, v, "GET", "/certificates/contacts", NULL, NULL);
}

static int kv_contact_delete(kv_cli *cli, const kv_args *args)
{
    const char *email = kv_args_get(args, "--email");
    json_t *list = NULL, *body = NULL;
    kv_vault *v = NULL;
    int rc;

    rc = kv_cli_vault_arg(cli, args, &v);
    if (rc == KV_EXIT_OK)
        rc = kv_contacts_current(v, &list);
    if (rc != KV_EXIT_OK)
        goto done;
    rc = KV_EXIT_ERROR;
    if (!kv_contacts_remove(list, email)) {
        fprintf(stderr, "ERROR: no contact found with the e-mail '%s'\n", email);
        goto done;
    }
    if (json_array_size(list) == 0) { /* the last one: delete the contacts */
        rc = kv_cli_send(cli, v, "DELETE", "/certificates/contacts", NULL, NULL);
        goto done;
    }
    body = json_pack("{s:O}", "contacts", list);
    if (body != NULL)
        rc = kv_cli_send(cli, v, "PUT", "/certificates/contacts", body, NULL);
done:
    json_decref(list);
    json_decref(body);
    return rc;
}

/* ---- certificate issuer create / update / show / list / delete ---- */

#define KV_ISSUER_NAME                                                                             \
    {                                                                                              \
        "--issuer-name", NULL, KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Certificate issuer name."   \
    }
static const kv_arg_spec kv_issuer_set_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_ISSUER_NAME,
    {"--provider-name", NULL, KV_ARG_VALUE, 0, "PROVIDER",
     "The certificate provider name (e.g. DigiCert, GlobalSign). Required for create."},
    {"--account-id", NULL, KV_ARG_VALUE, 0, "ID", "The issuer account id."},
    {"--password", NULL, KV_ARG_VALUE, 0, "PASSWORD", "The issuer account password."},
    {"--organization-id", NULL, KV_ARG_VALUE, 0, "ID", "The organization id."},
    KV_DP_SPEC_ENABLED,
};
static const kv_arg_spec kv_issuer_name_specs[] = {KV_DP_SPEC_VAULT, KV_ISSUER_NAME};
static const kv_arg_spec kv_issuer_list_specs[] = {KV_DP_SPEC_VAULT};

static int kv_issuer_path(const kv_args *args, char *path, size_t len)
{
    const char *name = kv_args_get(args, "--issuer-name");
    int rc = kv_cli_check_name("certificates", name);

    if (rc == KV_EXIT_OK)
        snprintf(path, len, "/certificates/issuers/%s", name);
    return rc;
}

static int kv_issuer_set(kv_cli *cli, const kv_args *args, bool create)
{
    const char *prov = kv_args_get(args, "--provider-name"),
               *acct = kv_args_get(args, "--account-id"), *pwd = kv_args_get(args, "--password"),
               *org = kv_args_get(args, "--organization-id");
    json_t *body = json_object(), *attrs = NULL, *cred = NULL;
    kv_vault *v = NULL;
    char path[192];
    int rc = KV_EXIT_ERROR;

    if (body == NULL)
        return KV_EXIT_ERROR;
    if (create && prov == NULL) {
        rc = kv_args_usage_error("the following arguments are required: --provider-name");
        goto done;
    }
    rc = kv_issuer_path(args, path, sizeof(path));
    if (rc == KV_EXIT_OK)
        rc = kv_cli_attrs_arg(args, false, &attrs);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        goto done;
    if (prov != NULL)
        json_object_set_new(body, "provider", json_string(prov));
    if (acct != NULL || pwd != NULL) {
        cred = json_object();
        if (acct != NULL)
            json_object_set_new(cred, "account_id", json_string(acct));
        if (pwd != NULL)
            json_object_set_new(cred, "pwd", json_string(pwd));
        json_object_set(body, "credentials", cred);
    }
    if (org != NULL)
        json_object_set_new(body, "org_details",
                            json_pack("{s:s, s:[]}", "id", org, "admin_details"));
    if (attrs != NULL && json_object_get(attrs, "enabled") != NULL)
        json_object_set_new(body, "attributes",
                            json_pack("{s:O}", "enabled", json_object_get(attrs, "enabled")));
    rc = kv_cli_send(cli, v, create ? "PUT" : "PATCH", path, body, NULL);
done:
    json_decref(cred);
    json_decref(attrs);
    json_decref(body);
    return rc;
}

static int kv_issuer_create(kv_cli *cli, const kv_args *args)
{
    return kv_issuer_set(cli, args, true);
}

static int kv_issuer_update(kv_cli *cli, const kv_args *args)
{
    return kv_issuer_set(cli, args, false);
}

static int kv_issuer_call(kv_cli *cli, const kv_args *args, const char *method)
{
    kv_vault *v = NULL;
    char path[192];
    int rc = kv_issuer_path(args, path, sizeof(path));

    if (rc == KV_EXIT_OK)
        rc = kv_cli_vault_arg(cli, args, &v);
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_send(cli, v, method, path, NULL, NULL);
}

static int kv_issuer_show(kv_cli *cli, const kv_args *args)
{
    return kv_issuer_call(cli, args, "GET");
}

static int kv_issuer_delete(kv_cli *cli, const kv_args *args)
{
    return kv_issuer_call(cli, args, "DELETE");
}

static int kv_issuer_list(kv_cli *cli, const kv_args *args)
{
    kv_vault *v = NULL;
    json_t *items = NULL;
    int rc = kv_cli_vault_arg(cli, args, &v);

    if (rc == KV_EXIT_OK)
        rc = kv_cli_list(v, "/certificates/issuers", 0, &items);
    if (rc != KV_EXIT_OK)
        return rc;
    return kv_cli_print(cli, items);
}

/* ---- the verbs every collection has ---- */

static const kv_arg_spec kv_show_specs[] = {KV_C_VER};
static const kv_arg_spec kv_list_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_MAXRESULTS,
    {"--include-pending", NULL, KV_ARG_BOOL, 0, "[{false,true}]",
     "Specifies whether to include certificates which are not completely provisioned."},
};
static const kv_arg_spec kv_versions_specs[] = {KV_C_ID, KV_DP_SPEC_MAXRESULTS};
static const kv_arg_spec kv_deleted_list_specs[] = {KV_DP_SPEC_VAULT, KV_DP_SPEC_MAXRESULTS};
static const kv_arg_spec kv_backup_specs[] = {
    KV_C_ID, KV_DP_SPEC_FILE("Local file path in which to store certificate backup.")};
static const kv_arg_spec kv_restore_specs[] = {
    KV_DP_SPEC_VAULT,
    KV_DP_SPEC_FILE("Local certificate backup from which to restore certificate.")};

#define KV_CERT_VERB(fn, dp)                                                                       \
    static int fn(kv_cli *cli, const kv_args *args)                                                \
    {                                                                                              \
        return dp(cli, args, kv_certs);                                                            \
    }
KV_CERT_VERB(kv_cert_show, kv_cli_dp_show)
KV_CERT_VERB(kv_cert_list, kv_cli_dp_list)
KV_CERT_VERB(kv_cert_list_versions, kv_cli_dp_list_versions)
KV_CERT_VERB(kv_cert_delete, kv_cli_dp_delete)
KV_CERT_VERB(kv_cert_list_deleted, kv_cli_dp_list_deleted)
KV_CERT_VERB(kv_cert_show_deleted, kv_cli_dp_show_deleted)
KV_CERT_VERB(kv_cert_recover, kv_cli_dp_recover)
KV_CERT_VERB(kv_cert_purge, kv_cli_dp_purge)
KV_CERT_VERB(kv_cert_backup, kv_cli_dp_backup)
KV_CERT_VERB(kv_cert_restore, kv_cli_dp_restore)

static const kv_cli_cmd kv_cert_cmds[] = {
    {"backup", "Back up a certificate (all versions) to a file.", kv_backup_specs,
     KV_NELEM(kv_backup_specs), kv_cert_backup, NULL},
    {"contact add", "Add a contact to the vault for certificate notifications.",
     kv_contact_add_specs, KV_NELEM(kv_contact_add_specs), kv_contact_add,
     "kvault certificate contact add --vault-name dev --email admin@example.com --name Admin"},
    {"contact delete", "Remove a certificate contact from the vault.", kv_contact_del_specs,
     KV_NELEM(kv_contact_del_specs), kv_contact_delete, NULL},
    {"contact list", "List the certificate contacts of the vault.", kv_contact_list_specs,
     KV_NELEM(kv_contact_list_specs), kv_contact_list, NULL},
    {"create", "Create a certificate (self-signed) and wait until it is issued.", kv_create_specs,
     KV_NELEM(kv_create_specs), kv_cert_create,
     "kvault certificate get-default-policy > policy.json\n"
     "kvault certificate create --vault-name dev -n c1 --policy @policy.json"},
    {"delete", "Delete a certificate (all versions, with its key and secret).", kv_name_specs,
     KV_NELEM(kv_name_specs), kv_cert_delete, NULL},
    {"download", "Download the public portion of a certificate (PEM or DER).", kv_download_specs,
     KV_NELEM(kv_download_specs), kv_cert_download,
     "kvault certificate download --vault-name dev -n c1 -f c1.pem"},
    {"get-default-policy", "Get the default policy for self-signed certificates.", NULL, 0,
     kv_cert_default_policy, "kvault certificate get-default-policy > policy.json"},
    {"import", "Import a certificate (PEM or PKCS#12 with its private key).", kv_import_specs,
     KV_NELEM(kv_import_specs), kv_cert_import,
     "kvault certificate import --vault-name dev -n c2 -f c2.pfx --password PW"},
    {"issuer create", "Create a certificate issuer record.", kv_issuer_set_specs,
     KV_NELEM(kv_issuer_set_specs), kv_issuer_create,
     "kvault certificate issuer create --vault-name dev --issuer-name i1 --provider-name "
     "DigiCert --account-id acct"},
    {"issuer delete", "Remove a certificate issuer record.", kv_issuer_name_specs,
     KV_NELEM(kv_issuer_name_specs), kv_issuer_delete, NULL},
    {"issuer list", "List the certificate issuers of the vault.", kv_issuer_list_specs,
     KV_NELEM(kv_issuer_list_specs), kv_issuer_list, NULL},
    {"issuer show", "Get information about a certificate issuer.", kv_issuer_name_specs,
     KV_NELEM(kv_issuer_name_specs), kv_issuer_show, NULL},
    {"issuer update", "Update a certificate issuer record.", kv_issuer_set_specs,
     KV_NELEM(kv_issuer_set_specs), kv_issuer_update, NULL},
    {"list", "List certificates in the vault.", kv_list_specs, KV_NELEM(kv_list_specs),
     kv_cert_list, NULL},
    {"list-deleted", "List deleted certificates.", kv_deleted_list_specs,
     KV_NELEM(kv_deleted_list_specs), kv_cert_list_deleted, NULL},
    {"list-versions", "List the versions of a certificate.", kv_versions_specs,
     KV_NELEM(kv_versions_specs), kv_cert_list_versions, NULL},
    {"pending show", "Get the status of a certificate's creation operation.", kv_name_specs,
     KV_NELEM(kv_name_specs), kv_cert_pending_show, NULL},
    {"purge", "Permanently delete a deleted certificate.", kv_name_specs, KV_NELEM(kv_name_specs),
     kv_cert_purge, NULL},
    {"recover", "Recover a deleted certificate to its latest version.", kv_name_specs,
     KV_NELEM(kv_name_specs), kv_cert_recover, NULL},
    {"restore", "Restore a backed-up certificate to a vault.", kv_restore_specs,
     KV_NELEM(kv_restore_specs), kv_cert_restore, NULL},
    {"set-attributes", "Update a certificate's attributes (enabled, tags).", kv_setattr_specs,
     KV_NELEM(kv_setattr_specs), kv_cert_set_attributes, NULL},
    {"show", "Get information about a certificate.", kv_show_specs, KV_NELEM(kv_show_specs),
     kv_cert_show, NULL},
    {"show-deleted", "Get a deleted certificate.", kv_name_specs, KV_NELEM(kv_name_specs),
     kv_cert_show_deleted, NULL},
};

const kv_cli_group kv_cli_certificate_group = {"certificate", "Manage certificates.", kv_cert_cmds,
                                               KV_NELEM(kv_cert_cmds)};
