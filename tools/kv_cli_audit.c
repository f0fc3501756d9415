/* kv_cli_audit.c - `kvault audit verify` (checks the hash chain of vaultd's audit log) and
 * `kvault audit tail [--follow]` (prints, and follows, its records with key / principal
 * filters). Both read the log file locally: run them on the vaultd host (docs/audit.md). */
#include "kv_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vd_audit_chain.h"

static const kv_arg_spec kv_verify_specs[] = {
    {"--file", NULL, KV_ARG_VALUE, 0, "PATH", "The audit log file."},
    {"--state", NULL, KV_ARG_VALUE, 0, "DIR",
     "vaultd's state directory (the log is DIR/audit/audit.log)."},
};

static const kv_arg_spec kv_tail_specs[] = {
    {"--file", NULL, KV_ARG_VALUE, 0, "PATH", "The audit log file."},
    {"--state", NULL, KV_ARG_VALUE, 0, "DIR",
     "vaultd's state directory (the log is DIR/audit/audit.log)."},
    {"--follow", "-f", KV_ARG_FLAG, 0, NULL, "Keep printing new records as they are written."},
    {"--key", NULL, KV_ARG_VALUE, 0, "NAME", "Only records of the key NAME."},
    {"--principal", NULL, KV_ARG_VALUE, 0, "APPID", "Only records of the principal APPID."},
    {"--lines", NULL, KV_ARG_VALUE, 0, "N",
     "Print the last N matching records first (default 10; 0 = all)."},
};

/* The log path from --file or --state. */
static int kv_audit_path(const kv_args *args, char *path, size_t len)
{
    const char *file = kv_args_get(args, "--file"), *state = kv_args_get(args, "--state");

    if ((file == NULL) == (state == NULL)) {
        fprintf(stderr, "ERROR: give exactly one of --file PATH or --state DIR\n");
        return KV_EXIT_USAGE;
    }
    if (file != NULL)
        snprintf(path, len, "%s", file);
    else if ((size_t)snprintf(path, len, "%s/audit/audit.log", state) >= len)
        return KV_EXIT_USAGE;
    return KV_EXIT_OK;
}

static int kv_audit_verify(kv_cli *cli, const kv_args *args)
{
    char path[4096], prev[VD_AUDIT_HASH_HEX + 1] = VD_AUDIT_GENESIS, hash[VD_AUDIT_HASH_HEX + 1];
    char *line = NULL;
    size_t cap = 0, len;
    ssize_t n;
    long long lineno = 0, seq = 0, got;
    const char *why = NULL;
    FILE *f = NULL;
    int rc;

    (void)cli;
    rc = kv_audit_path(args, path, sizeof(path));
    if (rc != KV_EXIT_OK)
        return rc;
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ERROR: cannot open %s: %s\n", path, strerror(errno));
        return KV_EXIT_ERROR;
    }
    rc = KV_EXIT_ERROR;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        len = (size_t)n;
        if (line[len - 1] != '\n') {
            why = "incomplete record (no newline at the end of the file)";
            goto bad;
        }
        line[--len] = '\0';
        if (vd_audit_chain_check(line, len, prev, seq + 1, &got, hash, &why) != KV_OK)
            goto bad;
        seq = got;
        memcpy(prev, hash, sizeof(prev));
    }
    if (ferror(f)) {
        fprintf(stderr, "ERROR: cannot read %s: %s\n", path, strerror(errno));
        goto done;
    }
    printf("verified %lld records (last seq %lld, hash %s)\n", lineno, seq, prev);
    rc = KV_EXIT_OK;
    goto done;
bad:
    fprintf(stderr, "ERROR: %s: line %lld is bad: %s; %lld record(s) before it verified\n", path,
            lineno, why ? why : "?", lineno - 1);
    printf("verification failed at line %lld\n", lineno);
done:
    free(line);
    fclose(f);
    return rc;
}

typedef struct kv_tail_filter {
    const char *key;
    const char *principal;
} kv_tail_filter;

static bool kv_tail_match(const kv_tail_filter *flt, const char *line)
{
    json_t *j;
    const char *type, *id, *principal;
    bool ok = true;

    if (flt->key == NULL && flt->principal == NULL)
        return true;
    j = json_loads(line, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return false;
    }
    type = json_string_value(json_object_get(j, "object_type"));
    id = json_string_value(json_object_get(j, "object_id"));
    principal = json_string_value(json_object_get(j, "principal"));
    if (flt->key != NULL &&
        (type == NULL || strcmp(type, "key") != 0 || id == NULL || strcasecmp(id, flt->key) != 0))
        ok = false;
    if (flt->principal != NULL && (principal == NULL || strcasecmp(principal, flt->principal) != 0))
        ok = false;
    json_decref(j);
    return ok;
}

/* Reads the complete lines from f (from its current position); matching ones are printed, or
 * kept in the last-N ring when ring != NULL. *pending holds a partial last line. */
static void kv_tail_read(FILE *f, const kv_tail_filter *flt, char **ring, size_t nring,
                         size_t *ringpos, char **pending, size_t *plen)
{
    char buf[8192], *nl, *p, *line;
    size_t got, start, n;

    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
        char *np = realloc(*pending, *plen + got + 1);

        if (np == NULL)
            return;
        *pending = np;
        memcpy(*pending + *plen, buf, got);
        *plen += got;
        (*pending)[*plen] = '\0';
        start = 0;
        while ((nl = memchr(*pending + start, '\n', *plen - start)) != NULL) {
            *nl = '\0';
            line = *pending + start;
            if (kv_tail_match(flt, line)) {
                if (ring != NULL && nring > 0) {
                    free(ring[*ringpos % nring]);
                    ring[*ringpos % nring] = strdup(line);
                    (*ringpos)++;
                } else {
                    printf("%s\n", line);
                }
            }
            start = (size_t)(nl - *pending) + 1;
        }
        n = *plen - start;
        p = *pending;
        memmove(p, p + start, n);
        *plen = n;
    }
    clearerr(f);
}

static int kv_audit_tail(kv_cli *cli, const kv_args *args)
{
    kv_tail_filter flt = {kv_args_get(args, "--key"), kv_args_get(args, "--principal")};
    bool follow = kv_args_has(args, "--follow");
    char path[4096], **ring = NULL, *pending = NULL;
    size_t nring, ringpos = 0, plen = 0, i;
    struct stat st, st2;
    long lines;
    FILE *f = NULL;
    int rc;

    (void)cli;
    rc = kv_audit_path(args, path, sizeof(path));
    if (rc == KV_EXIT_OK)
        rc = kv_args_int(args, "--lines", 10, 0, 1000000, &lines);
    if (rc != KV_EXIT_OK)
        return rc;
    f = fopen(path, "r");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "ERROR: cannot open %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return KV_EXIT_ERROR;
    }
    nring = (size_t)lines;
    if (nring > 0) {
        ring = calloc(nring, sizeof(*ring));
        if (ring == NULL) {
            rc = KV_EXIT_ERROR;
            goto done;
        }
    }
    kv_tail_read(f, &flt, ring, nring, &ringpos, &pending, &plen);
    for (i = ringpos > nring ? ringpos - nring : 0; ring != NULL && i < ringpos; i++)
        printf("%s\n", ring[i % nring]);
    fflush(stdout);
    while (follow) { /* poll: near real time (every 100 ms), survives truncation / replacement */
        struct timespec ts = {0, 100 * 1000 * 1000};

        nanosleep(&ts, NULL);
        if (stat(path, &st2) == 0 && (st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)) {
            FILE *nf = fopen(path, "r");

            if (nf != NULL) {
                kv_tail_read(f, &flt, NULL, 0, &ringpos, &pending, &plen); /* rest of the old */
                fclose(f);
                f = nf;
                (void)fstat(fileno(f), &st);
                plen = 0;
            }
        } else if (fstat(fileno(f), &st2) == 0 && st2.st_size < ftello(f)) {
            rewind(f); /* truncated */
            plen = 0;
        }
        kv_tail_read(f, &flt, NULL, 0, &ringpos, &pending, &plen);
        if (fflush(stdout) != 0)
            break;
    }
    rc = KV_EXIT_OK;
done:
    for (i = 0; ring != NULL && i < nring; i++)
        free(ring[i]);
    free(ring);
    free(pending);
    fclose(f);
    return rc;
}

static const kv_cli_cmd kv_audit_cmds[] = {
    {"verify", "Check the hash chain of vaultd's audit log (run on the vaultd host).",
     kv_verify_specs, KV_NELEM(kv_verify_specs), kv_audit_verify,
     "kvault audit verify --state /var/lib/vaultd\n"
     "kvault audit verify --file /var/lib/vaultd/audit/audit.log"},
    {"tail", "Print the last audit records and optionally follow new ones.", kv_tail_specs,
     KV_NELEM(kv_tail_specs), kv_audit_tail,
     "kvault audit tail --state /var/lib/vaultd --key k1 -f\n"
     "kvault audit tail --file audit.log --principal 00000000-0000-0000-0000-000000000000 "
     "--lines 0"},
};

const kv_cli_group kv_cli_audit_group = {
    "audit", "Read vaultd's audit log: verify its hash chain, follow it.", kv_audit_cmds,
    KV_NELEM(kv_audit_cmds)};
