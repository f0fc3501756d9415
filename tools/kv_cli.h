/* kv_cli.h - shared types of the kvault command line: the session, command tables, and the
 * helpers every command module uses (vault lookup, requests, key targets, output). */
#ifndef KV_CLI_H
#define KV_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kv_client.h"
#include "kv_cli_args.h"

#ifndef KV_VERSION
#define KV_VERSION "0.0.0"
#endif

typedef enum { KV_OUT_JSON = 0, KV_OUT_JSONC, KV_OUT_TSV, KV_OUT_TABLE, KV_OUT_NONE } kv_out_fmt;

/* The one context of a kvault run: what was asked for globally and the client context. */
typedef struct kv_cli {
    kv_ctx *ctx;       /* opened on first use by kv_cli_open */
    kv_out_fmt out;    /* --output */
    const char *query; /* --query (a small JMESPath subset) or NULL */
    int log_level;     /* from --debug / --verbose, -1 = leave as configured */
} kv_cli;

typedef int (*kv_cli_fn)(kv_cli *cli, const kv_args *args);

typedef struct kv_cli_cmd {
    const char *verb;
    const char *summary;
    const kv_arg_spec *specs;
    size_t nspecs;
    kv_cli_fn fn;
    const char *examples; /* may be NULL */
} kv_cli_cmd;

typedef struct kv_cli_group {
    const char *name;
    const char *summary;
    const kv_cli_cmd *cmds;
    size_t ncmds;
} kv_cli_group;

extern const kv_cli_group kv_cli_key_group;      /* kv_cli_key.c */
extern const kv_cli_group kv_cli_keyvault_group; /* kv_cli_keyvault.c */
extern const kv_cli_group kv_cli_account_group;  /* kv_cli_account.c */
/* Groups may share a name (their commands are merged); verbs may be two words
 * ("rotation-policy show"). */
extern const kv_cli_group kv_cli_key_lifecycle_group; /* kv_cli_key_lifecycle.c ("key") */
extern const kv_cli_group kv_cli_secret_group;        /* kv_cli_secret.c */
extern const kv_cli_group kv_cli_certificate_group;   /* kv_cli_certificate.c */
/* kv_cli_vault_admin.c: keyvault create/delete/list (before kv_cli_keyvault_group), hsm */
extern const kv_cli_group kv_cli_vault_admin_group;
extern const kv_cli_group kv_cli_hsm_group;
extern const kv_cli_group kv_cli_ad_group; /* kv_cli_ad.c: ad sp ..., ad mi ... */
extern const kv_cli_group kv_cli_audit_group; /* kv_cli_audit.c: audit verify, audit tail */
extern const kv_cli_group kv_cli_role_group;  /* kv_cli_role.c: role assignment / definition */
extern const kv_cli_group kv_cli_config_group; /* kv_cli_config.c: config seal-secret */
extern const kv_cli_group kv_cli_pool_group;   /* kv_cli_pool.c: pool init, pool status */

#define KV_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* kv_cli_key_crypto.c: key sign / key verify (listed in the key group of kv_cli_key.c) */
#define KV_CLI_KEY_SIGN_NSPECS 7
#define KV_CLI_KEY_VERIFY_NSPECS 8
extern const kv_arg_spec kv_cli_key_sign_specs[KV_CLI_KEY_SIGN_NSPECS];
extern const kv_arg_spec kv_cli_key_verify_specs[KV_CLI_KEY_VERIFY_NSPECS];
int kv_cli_key_sign(kv_cli *cli, const kv_args *args);
int kv_cli_key_verify(kv_cli *cli, const kv_args *args);

/* ---- kv_cli_session.c: configuration and vaults ---- */

/* Opens cli->ctx from $KVAULT_CONF or /etc/kvault/kvault.conf; prints why on failure. */
int kv_cli_open(kv_cli *cli);
/* Finds a configured vault; prints a clear message listing the configured ones if none. */
int kv_cli_vault(kv_cli *cli, const char *name, kv_vault **out);
void kv_cli_close(kv_cli *cli);

/* ---- kv_cli_request.c: vault calls with az-style error reporting ---- */

/* One request; on failure prints the error (az style) and returns KV_EXIT_ERROR. */
int kv_cli_request(kv_vault *v, const char *method, const char *path, json_t *body, json_t **resp);
/* GET path and every nextLink after it; *items receives a new array of up to max (0 = all)
 * items of the "value" arrays. */
int kv_cli_list(kv_vault *v, const char *path, size_t max, json_t **items);
/* Prints a vault failure the way az prints an HttpResponseError. */
void kv_cli_print_vault_error(const kv_vault *v, kv_rv rv, const kv_err *err, json_t *resp);

/* ---- kv_cli_target.c: which key a command is about ---- */

typedef struct kv_cli_target {
    kv_vault *vault;
    char name[128];
    char version[65]; /* "" = latest */
} kv_cli_target;

/* From --id (https://VAULT/keys/NAME[/VERSION] or kvault://VAULT/keys/NAME[/VERSION]) or
 * --vault-name/--name[/--version]. want_version: --version is accepted. */
int kv_cli_target_resolve(kv_cli *cli, const kv_args *args, bool want_version, kv_cli_target *t);
/* Validates a key name (1-127 of [0-9A-Za-z-]); prints a usage error. */
int kv_cli_check_key_name(const char *name);
/* The same for any collection ("keys", "secrets", "certificates"), and an object of that
 * collection from --id (also /deletedCOLL/NAME) or --vault-name (or --hsm-name), --name and
 * --version. */
int kv_cli_check_name(const char *coll, const char *name);
const char *kv_cli_noun(const char *coll); /* "key", "secret", "certificate" */
int kv_cli_target_resolve_in(kv_cli *cli, const kv_args *args, const char *coll, bool want_version,
                             kv_cli_target *t);
/* Splits an absolute vault URL (id or nextLink) into the configured vault it belongs to and
 * the path after the vault URL. Returns false if no configured vault serves that URL. */
bool kv_cli_url_split(kv_ctx *ctx, const char *url, kv_vault **v, const char **rest);
/* True if url (absolute) is served by v; *rest gets the part after the vault URL ("/keys..."). */
bool kv_cli_url_in_vault(const kv_vault *v, const char *url, const char **rest);

/* ---- kv_cli_output.c: json / tsv / table ---- */

int kv_cli_output_parse(const char *name, kv_out_fmt *out);
/* Prints result in cli->out (after --query); steals the reference. */
int kv_cli_print(kv_cli *cli, json_t *result);

/* ---- kv_cli_query.c ---- */

/* Applies a JMESPath subset (a.b, [N], [].a, [*].a) to root; returns a new reference or
 * NULL (not found -> JSON null). KV_EXIT_USAGE on a malformed expression. */
int kv_cli_query(const char *expr, json_t *root, json_t **out);

#endif
