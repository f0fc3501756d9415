/* kv_cli_target.c - which vault and key a command is about: --vault-name/--name/--version or
 * --id (a key identifier URL as az takes it, or a kvault:// URI), and the mapping of absolute
 * vault URLs (ids, nextLinks) back onto configured vaults. */
#include "kv_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv_uri.h"

typedef struct kv_cli_origin {
    bool https;
    char host[256];
    long port;
    const char *path; /* after the authority: "" or "/..." or "?..." */
} kv_cli_origin;

static bool kv_cli_origin_parse(const char *url, kv_cli_origin *o)
{
    const char *p, *end, *colon = NULL;
    size_t hlen;

    memset(o, 0, sizeof(*o));
    if (strncasecmp(url, "https://", 8) == 0) {
        o->https = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return false;
    }
    end = p + strcspn(p, "/?#");
    if (*p == '[') { /* IPv6 literal */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return false;
        if (rb + 1 < end && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    hlen = (size_t)((colon ? colon : end) - p);
    if (hlen == 0 || hlen >= sizeof(o->host))
        return false;
    memcpy(o->host, p, hlen);
    o->host[hlen] = '\0';
    if (colon != NULL && colon + 1 < end) {
        char *e = NULL;
        o->port = strtol(colon + 1, &e, 10);
        if (e != end || o->port <= 0 || o->port > 65535)
            return false;
    } else {
        o->port = o->https ? 443 : 80;
    }
    o->path = end;
    return true;
}

bool kv_cli_url_in_vault(const kv_vault *v, const char *url, const char **rest)
{
    kv_cli_origin a, b;
    size_t plen;

    if (v == NULL || url == NULL || !kv_cli_origin_parse(url, &a) ||
        !kv_cli_origin_parse(kv_vault_url(v), &b))
        return false;
    if (a.https != b.https || a.port != b.port || strcasecmp(a.host, b.host) != 0)
        return false;
    /* a vault URL with a path prefix (unusual) must prefix the URL's path */
    plen = strcspn(b.path, "?#");
    while (plen > 0 && b.path[plen - 1] == '/')
        plen--;
    if (plen > 0 && (strncmp(a.path, b.path, plen) != 0 ||
                     (a.path[plen] != '\0' && a.path[plen] != '/' && a.path[plen] != '?')))
        return false;
    if (rest != NULL)
        *rest = a.path + plen;
    return true;
}

bool kv_cli_url_split(kv_ctx *ctx, const char *url, kv_vault **v, const char **rest)
{
    size_t i, n = kv_ctx_vault_count(ctx);

    for (i = 0; i < n; i++) {
        kv_vault *cand = kv_ctx_vault_at(ctx, i);
        if (kv_cli_url_in_vault(cand, url, rest)) {
            *v = cand;
            return true;
        }
    }
    return false;
}

static bool kv_cli_name_ok(const char *s, size_t max, bool dash)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > max)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (dash && c == '-')))
            return false;
    }
    return true;
}

/* The noun of a collection for messages: "key", "secret", "certificate". */
const char *kv_cli_noun(const char *coll)
{
    if (strcmp(coll, "secrets") == 0)
        return "secret";
    if (strcmp(coll, "certificates") == 0)
        return "certificate";
    return "key";
}

int kv_cli_check_key_name(const char *name)
{
    return kv_cli_check_name("keys", name);
}

int kv_cli_check_name(const char *coll, const char *name)
{
    if (kv_cli_name_ok(name, 127, true))
        return KV_EXIT_OK;
    return kv_args_usage_error("argument --name/-n: '%s' is not a valid %s name (1-127 "
                               "characters 0-9, a-z, A-Z and '-')",
                               name, kv_cli_noun(coll));
}

static int kv_cli_check_version(const char *version)
{
    if (version[0] == '\0' || kv_cli_name_ok(version, 64, false))
        return KV_EXIT_OK;
    return kv_args_usage_error("argument --version/-v: '%s' is not a valid key version", version);
}

/* "/COLL/NAME[/VERSION][/]" or "/deletedCOLL/NAME" -> t->name, t->version. */
static int kv_cli_target_from_path(const char *id, const char *path, const char *coll,
                                   kv_cli_target *t)
{
    const char *p, *slash;
    size_t n, clen = strlen(coll);

    p = path;
    if (p[0] != '/')
        goto bad;
    p++;
    if (strncmp(p, "deleted", 7) == 0)
        p += 7;
    if (strncmp(p, coll, clen) != 0 || p[clen] != '/')
        goto bad;
    p += clen + 1;
    slash = strchr(p, '/');
    n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n >= sizeof(t->name))
        goto bad;
    memcpy(t->name, p, n);
    t->name[n] = '\0';
    if (slash != NULL) {
        p = slash + 1;
        slash = strchr(p, '/');
        n = slash ? (size_t)(slash - p) : strlen(p);
        if (n >= sizeof(t->version) || (slash != NULL && slash[1] != '\0'))
            goto bad;
        memcpy(t->version, p, n);
        t->version[n] = '\0';
    }
    return KV_EXIT_OK;
bad:
    return kv_args_usage_error("argument --id: '%s' is not a %s identifier "
                               "(https://VAULT/%s/NAME[/VERSION])",
                               id, kv_cli_noun(coll), coll);
}

int kv_cli_target_resolve(kv_cli *cli, const kv_args *args, bool want_version, kv_cli_target *t)
{
    return kv_cli_target_resolve_in(cli, args, "keys", want_version, t);
}

int kv_cli_target_resolve_in(kv_cli *cli, const kv_args *args, const char *coll, bool want_version,
                             kv_cli_target *t)
{
    const char *id = kv_args_get(args, "--id");
    const char *vname = kv_args_get(args, "--vault-name");
    const char *hname = kv_args_get(args, "--hsm-name");
    const char *name = kv_args_get(args, "--name");
    const char *version = kv_args_get(args, "--version");
    const char *rest = NULL;
    int rc;

    memset(t, 0, sizeof(*t));
    if (vname != NULL && hname != NULL)
        return kv_args_usage_error("usage error: --vault-name VAULT | --hsm-name HSM");
    if (vname == NULL)
        vname = hname; /* a managed HSM pool is configured as a vault section too */
    if (id != NULL) {
        if (vname != NULL || name != NULL || version != NULL)
            return kv_args_usage_error("usage error: --id | --name/-n --vault-name");
        if (kv_uri_is_kvault(id)) {
            kv_uri u;
            kv_err err = {0};
            if (kv_uri_parse(id, &u, &err) != KV_OK || strcmp(u.collection, coll) != 0)
                return kv_args_usage_error("argument --id: %s%s/ URI",
                                           err.message[0] ? err.message : "not a kvault://VAULT/",
                                           err.message[0] ? "" : coll);
            rc = kv_cli_vault(cli, u.vault, &t->vault);
            if (rc != KV_EXIT_OK)
                return rc;
            snprintf(t->name, sizeof(t->name), "%s", u.name);
            snprintf(t->version, sizeof(t->version), "%s", u.version);
        } else {
            rc = kv_cli_open(cli);
            if (rc != KV_EXIT_OK)
                return rc;
            if (!kv_cli_url_split(cli->ctx, id, &t->vault, &rest)) {
                fprintf(stderr,
                        "ERROR: No vault configured in %s serves '%s'. Use --vault-name and "
                        "--name, or add the vault to the configuration.\n",
                        kv_ctx_conf_path(cli->ctx)[0] ? kv_ctx_conf_path(cli->ctx)
                                                      : "the configuration",
                        id);
                return KV_EXIT_ERROR;
            }
            rc = kv_cli_target_from_path(id, rest, coll, t);
            if (rc != KV_EXIT_OK)
                return rc;
        }
        if (!want_version && t->version[0] != '\0')
            return kv_args_usage_error("argument --id: this command takes a %s identifier "
                                       "without a version",
                                       kv_cli_noun(coll));
    } else {
        if (name == NULL || vname == NULL)
            return kv_args_usage_error("the following arguments are required: %s%s%s",
                                       name ? "" : "--name/-n", name || vname ? "" : ", ",
                                       vname ? "" : "--vault-name");
        rc = kv_cli_check_name(coll, name);
        if (rc == KV_EXIT_OK && version != NULL)
            rc = kv_cli_check_version(version);
        if (rc != KV_EXIT_OK)
            return rc;
        rc = kv_cli_vault(cli, vname, &t->vault);
        if (rc != KV_EXIT_OK)
            return rc;
        snprintf(t->name, sizeof(t->name), "%s", name);
        if (version != NULL)
            snprintf(t->version, sizeof(t->version), "%s", version);
    }
    rc = kv_cli_check_name(coll, t->name);
    if (rc == KV_EXIT_OK)
        rc = kv_cli_check_version(t->version);
    return rc;
}
