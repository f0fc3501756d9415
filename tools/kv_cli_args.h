/* kv_cli_args.h - a tiny argparse-like flag parser for the kvault command line.
 *
 * Flags are declared in tables of kv_arg_spec; kv_args_parse fills one kv_arg_val per spec.
 * Accepted forms: --long VALUE, --long=VALUE, -s VALUE. Multi-valued flags (like az's
 * --ops sign verify) take every following word that does not start with '-'. Usage errors
 * are reported in argparse's words ("the following arguments are required: --name/-n") and
 * map to exit status 2. */
#ifndef KV_CLI_ARGS_H
#define KV_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define KV_EXIT_OK 0
#define KV_EXIT_ERROR 1 /* the operation failed (vault error, network, configuration) */
#define KV_EXIT_USAGE 2 /* the command line is wrong */

typedef enum {
    KV_ARG_VALUE, /* exactly one value */
    KV_ARG_MULTI, /* one or more values */
    KV_ARG_FLAG,  /* no value */
    KV_ARG_BOOL,  /* optional value true/false (az: --disabled [true|false]) */
} kv_arg_kind;

#define KV_ARG_REQUIRED 0x01u

typedef struct kv_arg_spec {
    const char *lname; /* "--vault-name" */
    const char *sname; /* "-n", or NULL */
    kv_arg_kind kind;
    unsigned flags;      /* KV_ARG_REQUIRED */
    const char *metavar; /* shown in help, e.g. "NAME" */
    const char *help;    /* one line */
} kv_arg_spec;

/* A NULL-terminated list of spec tables that together describe one command. */
typedef struct kv_arg_table {
    const kv_arg_spec *specs;
    size_t n;
} kv_arg_table;

typedef struct kv_arg_val {
    bool set;
    const char **vals; /* pointers into argv; NULL-terminated */
    size_t n;
} kv_arg_val;

typedef struct kv_args {
    const kv_arg_table *tables; /* terminated by an entry with specs == NULL */
    kv_arg_val *vals;           /* one per spec, tables concatenated */
    size_t nvals;
} kv_args;

/* Parses argv[0..argc) against tables. On a usage error prints it on stderr and returns
 * KV_EXIT_USAGE; on success KV_EXIT_OK. Free with kv_args_free (also after a failure).
 * kv_args_check_required then reports missing KV_ARG_REQUIRED flags. */
int kv_args_parse(kv_args *a, const kv_arg_table *tables, int argc, char **argv);
int kv_args_check_required(const kv_args *a);
void kv_args_free(kv_args *a);

/* Lookups by long name (e.g. "--name"). */
bool kv_args_has(const kv_args *a, const char *lname);
const char *kv_args_get(const kv_args *a, const char *lname); /* first value or NULL */
const kv_arg_val *kv_args_val(const kv_args *a, const char *lname);

/* Value of a KV_ARG_BOOL flag: absent -> def; present without value -> true. Returns
 * KV_EXIT_USAGE (after printing) if the value is not true/false. */
int kv_args_bool(const kv_args *a, const char *lname, bool def, bool *out);

/* Parses an integer flag in [min, max]; absent -> def. KV_EXIT_USAGE on bad input. */
int kv_args_int(const kv_args *a, const char *lname, long def, long min, long max, long *out);

/* Prints "argument --kty: invalid choice: 'X' (choose from 'A', 'B')" unless value is one
 * of the NULL-terminated choices (case-sensitive unless icase). Returns the index or -1. */
int kv_args_choice(const char *lname, const char *value, const char *const *choices, bool icase);

/* The "--name/-n" form of a flag, for messages. */
const char *kv_args_display(const kv_args *a, const char *lname, char *buf, size_t len);

/* Prints "ERROR: the following arguments are required: A, B" and returns KV_EXIT_USAGE. */
int kv_args_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Help text for the flags of one command (tables as for parse). */
void kv_args_print_help(const kv_arg_table *tables, const char *const *table_titles);

#endif
