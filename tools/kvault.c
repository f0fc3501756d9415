/* kvault.c - the `kvault` command line: global flags, help, and dispatch of
 * `kvault GROUP VERB [flags]` to the command modules (az-style verbs and output). */
#include "kv_cli.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "kv_log.h"

static const kv_arg_spec kv_global_specs[] = {
    {"--output", "-o", KV_ARG_VALUE, 0, "FORMAT",
     "Output format: json (default), jsonc, none, table, tsv."},
    {"--query", NULL, KV_ARG_VALUE, 0, "EXPR",
     "Select part of the output: a.b, [N], [].a (a JMESPath subset)."},
    {"--debug", NULL, KV_ARG_FLAG, 0, NULL, "Increase logging verbosity to show all debug logs."},
    {"--verbose", NULL, KV_ARG_FLAG, 0, NULL, "Increase logging verbosity."},
    {"--only-show-errors", NULL, KV_ARG_FLAG, 0, NULL, "Only show errors (kvault's default)."},
    {"--help", "-h", KV_ARG_FLAG, 0, NULL, "Show this help message and exit."},
};

static const kv_cli_group *const kv_groups[] = {
    &kv_cli_account_group,  &kv_cli_key_group,         &kv_cli_vault_admin_group,
    &kv_cli_keyvault_group, &kv_cli_hsm_group,         &kv_cli_key_lifecycle_group,
    &kv_cli_secret_group,   &kv_cli_certificate_group,
    &kv_cli_ad_group,
    &kv_cli_audit_group,
    &kv_cli_role_group,
    &kv_cli_config_group,
    &kv_cli_pool_group,
};

/* Groups of one name are one group to the user (e.g. "key" = kv_cli_key.c +
 * kv_cli_key_lifecycle.c): true if an earlier entry of kv_groups has g's name. */
static bool kv_group_is_dup(size_t i)
{
    size_t j;

    for (j = 0; j < i; j++)
        if (strcmp(kv_groups[j]->name, kv_groups[i]->name) == 0)
            return true;
    return false;
}

/* Words of argv that a (possibly two-word, "rotation-policy show") verb takes; 0 = no match. */
static int kv_verb_match(const char *verb, int argc, char **argv)
{
    const char *sp = strchr(verb, ' ');

    if (argc < 1)
        return 0;
    if (sp == NULL)
        return strcmp(verb, argv[0]) == 0 ? 1 : 0;
    if (argc < 2 || strlen(argv[0]) != (size_t)(sp - verb) ||
        strncmp(verb, argv[0], (size_t)(sp - verb)) != 0 || strcmp(sp + 1, argv[1]) != 0)
        return 0;
    return 2;
}

/* JSON may hold tokens and key material: every jansson buffer is zeroised when freed. */
static void *kv_json_malloc(size_t n)
{
    return malloc(n);
}

static void kv_json_free(void *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

static int kv_version(kv_cli *cli)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    return kv_cli_print(cli, json_pack("{s:s, s:s, s:s, s:s}", "kvault", KV_VERSION, "jansson",
                                       JANSSON_VERSION, "libcurl", cv ? cv->version : "?",
                                       "openssl", OpenSSL_version(OPENSSL_VERSION_STRING)));
}

static void kv_help_top(void)
{
    size_t i;

    printf("\nGroup\n    kvault : Use the keys of a key vault (Azure Key Vault data-plane "
           "compatible)\n             from the command line, with az-style verbs and output.\n"
           "\nSubgroups:\n");
    for (i = 0; i < KV_NELEM(kv_groups); i++)
        if (!kv_group_is_dup(i))
            printf("    %-18s : %s\n", kv_groups[i]->name, kv_groups[i]->summary);
    printf("\nCommands:\n    %-18s : %s\n", "version",
           "Show the versions of kvault and its libraries.");
    printf("\nThe configuration is read from $KVAULT_CONF, else /etc/kvault/kvault.conf (the same "
           "file kvault.so reads).\nFor more specific examples, use: kvault GROUP --help\n");
}

static void kv_help_group(const kv_cli_group *g)
{
    const kv_cli_cmd *last = NULL, *next;
    size_t i, k;

    printf("\nGroup\n    kvault %s : %s\n\nCommands:\n", g->name, g->summary);
    do { /* the commands of every group of this name, sorted by verb */
        next = NULL;
        for (k = 0; k < KV_NELEM(kv_groups); k++)
            for (i = 0; strcmp(kv_groups[k]->name, g->name) == 0 && i < kv_groups[k]->ncmds; i++)
                if ((last == NULL || strcmp(kv_groups[k]->cmds[i].verb, last->verb) > 0) &&
                    (next == NULL || strcmp(kv_groups[k]->cmds[i].verb, next->verb) < 0))
                    next = &kv_groups[k]->cmds[i];
        if (next != NULL)
            printf("    %-22s : %s\n", next->verb, next->summary);
        last = next;
    } while (next != NULL);
    printf("\nFor more specific examples, use: kvault %s COMMAND --help\n", g->name);
}

static void kv_help_cmd(const kv_cli_group *g, const kv_cli_cmd *c, const kv_arg_table *tables)
{
    static const char *const titles[] = {"Arguments", "Global Arguments", NULL};

    printf("\nCommand\n    kvault %s %s : %s\n", g->name, c->verb, c->summary);
    if (c->nspecs == 0) /* tables[0] would end the list */
        kv_args_print_help(tables + 1, titles + 1);
    else
        kv_args_print_help(tables, titles);
    if (c->examples != NULL) {
        const char *p = c->examples;
        printf("\nExamples\n");
        while (*p != '\0') {
            size_t n = strcspn(p, "\n");
            printf("    %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
}

static bool kv_is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

/* Runs one command: argv are the words after the verb. */
static int kv_run_cmd(kv_cli *cli, const kv_cli_group *g, const kv_cli_cmd *c, int argc,
                      char **argv)
{
    kv_arg_table tables[3] = {
        {c->specs, c->nspecs}, {kv_global_specs, KV_NELEM(kv_global_specs)}, {NULL, 0}};
    kv_arg_table *use = c->nspecs ? tables : tables + 1;
    kv_args args = {0};
    int i, rc;

    for (i = 0; i < argc; i++) {
        if (kv_is_help(argv[i])) {
            kv_help_cmd(g, c, tables);
            return KV_EXIT_OK;
        }
    }
    rc = kv_args_parse(&args, use, argc, argv);
    if (rc == KV_EXIT_OK)
        rc = kv_args_check_required(&args);
    if (rc == KV_EXIT_OK && kv_args_get(&args, "--output") != NULL)
        rc = kv_cli_output_parse(kv_args_get(&args, "--output"), &cli->out);
    if (rc != KV_EXIT_OK)
        goto done;
    cli->query = kv_args_get(&args, "--query");
    if (kv_args_has(&args, "--debug"))
        cli->log_level = KV_LOG_DEBUG;
    else if (kv_args_has(&args, "--verbose"))
        cli->log_level = KV_LOG_INFO;
    rc = c->fn(cli, &args);
done:
    kv_args_free(&args);
    return rc;
}

static int kv_main(kv_cli *cli, int argc, char **argv)
{
    const kv_cli_group *g = NULL;
    size_t i, j;
    int k = 1, w;

    if (argc < 2 || kv_is_help(argv[1])) {
        kv_help_top();
        return KV_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        if (argc > 2 && !kv_is_help(argv[2]))
            return kv_args_usage_error("unrecognized arguments: %s", argv[2]);
        return kv_version(cli);
    }
    /* az muscle memory: `kvault keyvault key show ...` == `kvault key show ...` */
    if (argc > 2 && strcmp(argv[1], "keyvault") == 0 &&
        (strcmp(argv[2], "key") == 0 || strcmp(argv[2], "secret") == 0 ||
         strcmp(argv[2], "certificate") == 0 || strcmp(argv[2], "role") == 0))
        k = 2;
    for (i = 0; i < KV_NELEM(kv_groups) && g == NULL; i++) /* the first names the group */
        if (strcmp(argv[k], kv_groups[i]->name) == 0)
            g = kv_groups[i];
    if (g == NULL) {
        fprintf(stderr,
                "ERROR: '%s' is misspelled or not recognized by the system.\n"
                "See 'kvault --help'.\n",
                argv[k]);
        return KV_EXIT_USAGE;
    }
    k++;
    if (k >= argc || kv_is_help(argv[k])) {
        kv_help_group(g);
        return KV_EXIT_OK;
    }
    for (j = 0; j < KV_NELEM(kv_groups); j++) {
        if (strcmp(kv_groups[j]->name, g->name) != 0)
            continue;
        for (i = 0; i < kv_groups[j]->ncmds; i++) {
            w = kv_verb_match(kv_groups[j]->cmds[i].verb, argc - k, argv + k);
            if (w > 0)
                return kv_run_cmd(cli, kv_groups[j], &kv_groups[j]->cmds[i], argc - k - w,
                                  argv + k + w);
        }
    }
    fprintf(stderr,
            "ERROR: 'kvault %s': '%s' is not in the 'kvault %s' command group. See 'kvault %s "
            "--help'.\n",
            g->name, argv[k], g->name, g->name);
    return KV_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    kv_cli cli = {.ctx = NULL, .out = KV_OUT_JSON, .query = NULL, .log_level = -1};
    int rc;

    json_set_alloc_funcs(kv_json_malloc, kv_json_free);
    rc = kv_main(&cli, argc, argv);
    kv_cli_close(&cli);
    if (fflush(stdout) != 0 && rc == KV_EXIT_OK)
        rc = KV_EXIT_ERROR;
    return rc;
}
