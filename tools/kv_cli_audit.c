/* kv_cli_audit.c - `kvault audit verify` (checks the hash chain of vaultd's audit log, and
 * its end against the head file, so that records cut off the end are noticed) and
 * `kvault audit tail [--follow]` (prints, and follows, its records with key / principal
 * filters). Both read the log file locally: run them on the vaultd host (docs/audit.md). */
#include "kv_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vd_audit_chain.h"

static const kv_arg_spec kv_verify_specs[] = {
    {"--file", NULL, KV_ARG_VALUE, 0, "PATH",
     "The audit log file (its head: audit.head next to audit.log, else PATH.head)."},
    {"--state", NULL, KV_ARG_VALUE, 0, "DIR",
     "vaultd's state directory (the log is DIR/audit/audit.log, its head DIR/audit/audit.head)."},
    {"--head", NULL, KV_ARG_VALUE, 0, "FILE", "The head file to compare the log's end with."},
    {"--no-head", NULL, KV_ARG_FLAG, 0, NULL,
     "Check the chain only (records cut off the end go unnoticed)."},
    {"--reset-head", NULL, KV_ARG_FLAG, 0, NULL,
     "Check the chain only, then write the head at the log's current end (accepts that end; "
     "vaultd must be stopped)."},
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

/* Reads the head file: 1 read, 0 missing, -1 unreadable / malformed (message printed). */
static int kv_audit_head_read(const char *head, long long *seq, char hash[VD_AUDIT_HASH_HEX + 1])
{
    char text[VD_AUDIT_HEAD_MAX + 1];
    size_t n;
    FILE *f = fopen(head, "r");

    if (f == NULL && errno == ENOENT)
        return 0;
    if (f == NULL) {
        fprintf(stderr, "ERROR: cannot open the head %s: %s\n", head, strerror(errno));
        return -1;
    }
    n = fread(text, 1, sizeof(text), f);
    fclose(f);
    if (vd_audit_head_parse(text, n, seq, hash) != KV_OK) {
        fprintf(stderr, "ERROR: the head %s is malformed\n", head);
        return -1;
    }
    return 1;
}

/* Writes the head atomically (temporary file, fsync, rename, fsync of the directory). */
static int kv_audit_head_write(const char *head, long long seq, const char *hash)
{
    char text[VD_AUDIT_HEAD_MAX], tmp[4200], dir[4096];
    const char *slash = strrchr(head, '/');
    size_t n = 0;
    int fd = -1, dfd = -1, rc = -1;

    if (vd_audit_head_format(seq, hash, text, sizeof(text), &n) != KV_OK ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", head) >= sizeof(tmp))
        goto done;
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == head ? 1 : (int)(slash - head), head);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0)
        goto done;
    if (close(fd) != 0) {
        fd = -1;
        goto done;
    }
    fd = -1;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || rename(tmp, head) != 0 || fsync(dfd) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "ERROR: cannot write the head %s: %s\n", head, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static int kv_audit_verify(kv_cli *cli, const kv_args *args)
{
    char path[4096], prev[VD_AUDIT_HASH_HEX + 1] = VD_AUDIT_GENESIS, hash[VD_AUDIT_HASH_HEX + 1];
    char head[4096], hhash[VD_AUDIT_HASH_HEX + 1], at[VD_AUDIT_HASH_HEX + 1] = "", msg[512];
    char *line = NULL;
    size_t cap = 0, len;
    ssize_t n;
    long long lineno = 0, seq = 0, got, hseq = 0;
    const char *why = NULL, *athead = NULL;
    bool reset = kv_args_has(args, "--reset-head");
    bool nohead = reset || kv_args_has(args, "--no-head");
    int rc, hstate = 0;
    FILE *f = NULL;

    (void)cli;
    rc = kv_audit_path(args, path, sizeof(path));
    if (rc != KV_EXIT_OK)
        return rc;
    if (kv_args_has(args, "--no-head") && (reset || kv_args_get(args, "--head") != NULL)) {
        fprintf(stderr, "ERROR: --no-head goes with neither --head nor --reset-head\n");
        return KV_EXIT_USAGE;
    }
    if (kv_args_get(args, "--head") != NULL)
        snprintf(head, sizeof(head), "%s", kv_args_get(args, "--head"));
    else if (vd_audit_head_path(path, head, sizeof(head)) != KV_OK)
        return KV_EXIT_USAGE;
    if (reset) {
        fprintf(stderr, "WARNING: --reset-head: the log's end is not compared with its head; "
                        "the head is rewritten to accept the log's current end\n");
    } else if (nohead) {
        fprintf(stderr, "WARNING: --no-head: the log's end is not compared with its head; "
                        "records cut off the end go unnoticed\n");
    } else { /* the head first: a running vaultd only moves it after the log has grown */
        hstate = kv_audit_head_read(head, &hseq, hhash);
        if (hstate < 0)
            return KV_EXIT_ERROR;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ERROR: cannot open %s: %s\n", path, strerror(errno));
        return KV_EXIT_ERROR;
    }
    rc = KV_EXIT_ERROR;
    if (reset && flock(fileno(f), LOCK_EX | LOCK_NB) != 0) { /* vaultd holds it while running */
        fprintf(stderr, "ERROR: %s is in use (by a running vaultd?): stop vaultd first\n", path);
        goto done;
    }
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
        if (hstate > 0 && seq == hseq)
            memcpy(at, hash, sizeof(at));
    }
    if (ferror(f)) {
        fprintf(stderr, "ERROR: cannot read %s: %s\n", path, strerror(errno));
        goto done;
    }
    printf("verified %lld records (last seq %lld, hash %s)\n", lineno, seq, prev);
    if (reset) {
        if (kv_audit_head_write(head, seq, prev) != 0)
            goto done;
        printf("head %s: reset to seq %lld\n", head, seq);
    }
    if (hstate == 0 && !nohead) {
        fprintf(stderr,
                "ERROR: %s: its head %s is missing: records cut off the end of the log could "
                "not be noticed (give --head FILE, or --no-head to check the chain only)\n",
                path, head);
        printf("verification failed: no head\n");
        goto done;
    }
    if (hstate > 0) {
        athead = hseq == 0 ? VD_AUDIT_GENESIS : hseq <= seq ? at : NULL;
        if (vd_audit_head_check(seq, hseq, hhash, athead, msg, sizeof(msg)) != KV_OK) {
            fprintf(stderr, "ERROR: %s: %s (head %s)\n", path, msg, head);
            printf("verification failed: the log's end does not match its head\n");
            goto done;
        }
        if (seq > hseq)
            printf("head %s: seq %lld matches; %lld record(s) after it (written after the "
                   "head's last update: by a running vaultd, or just before a crash)\n",
                   head, hseq, seq - hseq);
        else
            printf("head %s: seq %lld matches the log's end\n", head, hseq);
    }
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
    {"verify",
     "Check the hash chain of vaultd's audit log and its end against the head (run on the "
     "vaultd host).",
     kv_verify_specs, KV_NELEM(kv_verify_specs), kv_audit_verify,
     "kvault audit verify --state /var/lib/vaultd\n"
     "kvault audit verify --file /var/lib/vaultd/audit/audit.log\n"
     "kvault audit verify --file audit-2026-11.log --head audit-2026-11.log.head\n"
     "kvault audit verify --state /var/lib/vaultd --reset-head   # vaultd stopped"},
    {"tail", "Print the last audit records and optionally follow new ones.", kv_tail_specs,
     KV_NELEM(kv_tail_specs), kv_audit_tail,
     "kvault audit tail --state /var/lib/vaultd --key k1 -f\n"
     "kvault audit tail --file audit.log --principal 00000000-0000-0000-0000-000000000000 "
     "--lines 0"},
};

const kv_cli_group kv_cli_audit_group = {
    "audit", "Read vaultd's audit log: verify its hash chain, follow it.", kv_audit_cmds,
    KV_NELEM(kv_audit_cmds)};
