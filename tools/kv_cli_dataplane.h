/* kv_cli_dataplane.h - helpers shared by the data-plane command modules (key lifecycle,
 * secrets, certificates): object kinds, the flags they share (attributes, tags, ops, files,
 * JSON values) and the verbs every collection has (show, list, list-versions, delete,
 * list-deleted, show-deleted, recover, purge, backup, restore), as `az keyvault` has them. */
#ifndef KV_CLI_DATAPLANE_H
#define KV_CLI_DATAPLANE_H

#include <stdint.h>

#include "kv_cli.h"

/* One collection of vault objects. */
typedef struct kv_cli_kind {
    const char *coll;    /* "keys" */
    const char *deleted; /* "deletedkeys" */
    bool name_on_bundle; /* az adds "name" to single objects too (secrets, certificates) */
    bool has_managed;    /* list hides managed (certificate-backing) objects by default */
} kv_cli_kind;

extern const kv_cli_kind kv_cli_kind_keys;
extern const kv_cli_kind kv_cli_kind_secrets;
extern const kv_cli_kind kv_cli_kind_certificates;

/* ---- flag specs ---- */

#define KV_DP_SPEC_VAULT                                                                           \
    {                                                                                              \
        "--vault-name", NULL, KV_ARG_VALUE, 0, "VAULT", "Name of the Key Vault."                   \
    }
#define KV_DP_SPEC_HSM                                                                             \
    {                                                                                              \
        "--hsm-name", NULL, KV_ARG_VALUE, 0, "HSM",                                                \
            "Name of the managed HSM pool (configured as a vault). Alternative to --vault-name."   \
    }
#define KV_DP_SPEC_NAME(noun)                                                                      \
    {                                                                                              \
        "--name", "-n", KV_ARG_VALUE, 0, "NAME", "Name of the " noun "."                           \
    }
#define KV_DP_SPEC_NAME_REQ(noun)                                                                  \
    {                                                                                              \
        "--name", "-n", KV_ARG_VALUE, KV_ARG_REQUIRED, "NAME", "Name of the " noun "."             \
    }
#define KV_DP_SPEC_VERSION(noun)                                                                   \
    {                                                                                              \
        "--version", "-v", KV_ARG_VALUE, 0, "VERSION",                                             \
            "The " noun " version. If omitted, uses the latest version."                           \
    }
#define KV_DP_SPEC_ID(noun)                                                                        \
    {                                                                                              \
        "--id", NULL, KV_ARG_VALUE, 0, "ID",                                                       \
            "Id of the " noun ". If given, omit --vault-name/--name/--version."                    \
    }
#define KV_DP_SPEC_MAXRESULTS                                                                      \
    {                                                                                              \
        "--maxresults", NULL, KV_ARG_VALUE, 0, "N", "Maximum number of results to return."         \
    }
#define KV_DP_SPEC_FILE(help)                                                                      \
    {                                                                                              \
        "--file", "-f", KV_ARG_VALUE, KV_ARG_REQUIRED, "PATH", help                                \
    }
#define KV_DP_SPEC_ENABLED                                                                         \
    {"--disabled", NULL, KV_ARG_BOOL, 0, "[{false,true}]", "Disable (or with false enable)."},     \
    {                                                                                              \
        "--enabled", NULL, KV_ARG_BOOL, 0, "[{false,true}]", "Enable (or with false disable)."     \
    }
#define KV_DP_SPEC_TIMES                                                                           \
    {"--expires", NULL,       KV_ARG_VALUE,                                                        \
     0,           "DATETIME", "Expiration UTC datetime (Y-m-d'T'H:M:S'Z') or unix seconds."},      \
    {                                                                                              \
        "--not-before", NULL, KV_ARG_VALUE, 0, "DATETIME",                                         \
            "Not usable before the provided UTC datetime (Y-m-d'T'H:M:S'Z')."                      \
    }
#define KV_DP_SPEC_TAGS                                                                            \
    {                                                                                              \
        "--tags", NULL, KV_ARG_MULTI, 0, "KEY[=VALUE]",                                            \
            "Space-separated tags: key[=value] [key[=value] ...]. Use \"\" to clear tags."         \
    }

/* ---- flags ---- */

/* The vault from --vault-name or --hsm-name (exactly one required). */
int kv_cli_vault_arg(kv_cli *cli, const kv_args *args, kv_vault **v);
/* attributes {enabled, nbf, exp} from --enabled/--disabled/--expires/--not-before; *attrs is
 * NULL when none of them was given (unless always). */
int kv_cli_attrs_arg(const kv_args *args, bool always, json_t **attrs);
/* {k: v} from --tags; NULL when absent. */
int kv_cli_tags_arg(const kv_args *args, json_t **tags);
/* key_ops array from --ops; NULL when absent. */
int kv_cli_ops_arg(const kv_args *args, json_t **ops);
/* A JSON value flag: JSON text, @FILE, or the path of a file holding JSON. */
int kv_cli_json_arg(const char *flag, const char *val, json_t **out);
/* Drops null members of objects (recursively): az-style files carry "x": null. */
void kv_cli_json_strip_nulls(json_t *j);

/* ---- files ---- */

/* Reads at most max bytes of path (more is a usage error). *buf is NUL-terminated, to be
 * released with kv_cli_free_buf. */
int kv_cli_read_file(const char *flag, const char *path, size_t max, uint8_t **buf, size_t *len);
/* Writes buf to path with mode; exclusive refuses an existing file (az's download rule). */
int kv_cli_write_file(const char *path, const void *buf, size_t len, bool exclusive, unsigned mode);
/* Zeroises and frees a buffer of len bytes. */
void kv_cli_free_buf(void *buf, size_t len);

/* ---- requests and output ---- */

/* Adds az's "name" (parsed from id / kid / key.kid / recoveryId) to an object. */
void kv_cli_add_name(json_t *obj, const kv_cli_kind *k);
/* One request; prints the response (nothing for an empty one). name_kind: add "name". */
int kv_cli_send(kv_cli *cli, kv_vault *v, const char *method, const char *path, json_t *body,
                const kv_cli_kind *name_kind);
/* GET base (paged, --maxresults) and prints the items, each with "name". */
int kv_cli_dp_list_path(kv_cli *cli, kv_vault *v, const char *base, const kv_args *args,
                        const kv_cli_kind *k, bool include_managed);
/* The latest version of t's object into t->version when it has none. */
int kv_cli_dp_pin_version(kv_cli_target *t, const kv_cli_kind *k);

/* ---- verbs every collection has ---- */

int kv_cli_dp_show(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_list(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_list_versions(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_delete(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_list_deleted(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_show_deleted(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_recover(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_purge(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_backup(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);
int kv_cli_dp_restore(kv_cli *cli, const kv_args *args, const kv_cli_kind *k);

#endif
