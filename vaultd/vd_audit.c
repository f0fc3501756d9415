/* vd_audit.c - the audit log writer: one hash-chained JSON line per answered request (plus a
 * "begin" line before state-changing handlers), appended under one lock so that the chain
 * order is the file order, made durable with fdatasync (group commit across worker threads)
 * before the reply is sent. Fail closed: a record that cannot be written turns the reply into
 * 503 and keeps state-changing handlers from running. Never records tokens, secrets, bodies
 * or query strings: only names, versions, algorithm names, status codes and error codes. */
#include "vd_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "vd_audit_chain.h"
#include "vd_metrics.h"
#include "vd_util.h"

struct vd_audit {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    int dirfd; /* the head file's directory */
    char path[PATH_MAX];
    char head[PATH_MAX];              /* the head file ({seq, hash} of the last durable record) */
    const char *head_name;            /* its name inside dirfd */
    char head_tmp[PATH_MAX];          /* the temporary name it is written under */
    char prev[VD_AUDIT_HASH_HEX + 1]; /* hash of the last record in the file */
    long long seq;                    /* seq of the last record */
    off_t size;                       /* bytes of complete records */
    unsigned long long written;       /* records appended since start */
    unsigned long long synced;        /* records known durable */
    unsigned long long failed_upto;   /* records whose fdatasync failed */
    bool syncing;                     /* a thread is in fdatasync */
    bool broken;                      /* a partial write could not be cut off yet */
    unsigned long long records, failures;
};

/* ---- the file ---- */

static kv_rv vd_audit_path(vd_ctx *ctx, char *path, size_t len)
{
    char dir[PATH_MAX];

    if (ctx->cfg.audit_file[0] != '\0') {
        snprintf(path, len, "%s", ctx->cfg.audit_file);
        return KV_OK;
    }
    if ((size_t)snprintf(dir, sizeof(dir), "%s/audit", ctx->cfg.state_dir) >= sizeof(dir))
        return KV_ERR_CONFIG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "vaultd: cannot create %s: %s\n", dir, strerror(errno));
        return KV_ERR_CONFIG;
    }
    if ((size_t)snprintf(path, len, "%s/audit.log", dir) >= len)
        return KV_ERR_CONFIG;
    return KV_OK;
}

/* Rewrites the head file atomically: temporary file, fdatasync, rename, fsync of the
 * directory. Called by the one thread that syncs (group commit) and at open / close. */
static kv_rv vd_audit_head_write(vd_audit *a, long long seq, const char *hash)
{
    char text[VD_AUDIT_HEAD_MAX];
    size_t n = 0, off = 0;
    ssize_t w;
    int fd = -1;
    kv_rv rv = KV_ERR_INTERNAL;

    if (vd_audit_head_format(seq, hash, text, sizeof(text), &n) != KV_OK)
        goto done;
    fd = openat(a->dirfd, a->head_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto done;
    while (off < n) {
        w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto done;
        off += (size_t)w;
    }
    if (fdatasync(fd) != 0)
        goto done;
    if (close(fd) != 0) {
        fd = -1;
        goto done;
    }
    fd = -1;
    if (renameat(a->dirfd, a->head_tmp, a->dirfd, a->head_name) != 0 || fsync(a->dirfd) != 0)
        goto done;
    rv = KV_OK;
done:
    if (fd >= 0)
        close(fd);
    return rv;
}

/* Reads the head file: KV_OK, KV_ERR_NOT_FOUND (no head file) or an error (message printed). */
static kv_rv vd_audit_head_read(vd_audit *a, long long *seq, char hash[VD_AUDIT_HASH_HEX + 1])
{
    char text[VD_AUDIT_HEAD_MAX + 1];
    ssize_t n;
    int fd;

    fd = openat(a->dirfd, a->head_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return KV_ERR_NOT_FOUND;
    if (fd < 0) {
        fprintf(stderr, "vaultd: cannot open the audit head %s: %s\n", a->head, strerror(errno));
        return KV_ERR_CONFIG;
    }
    n = read(fd, text, sizeof(text));
    close(fd);
    if (n < 0 || vd_audit_head_parse(text, (size_t)n, seq, hash) != KV_OK) {
        fprintf(stderr,
                "vaultd: the audit head %s is unreadable or malformed; refusing to start "
                "(`kvault audit verify --file %s --reset-head` checks the log and rewrites "
                "it)\n",
                a->head, a->path);
        return KV_ERR_CONFIG;
    }
    return KV_OK;
}

/* The hash of record number seq: looked for in buf (the file's tail from offset off, complete
 * lines up to n) first, then by reading the whole file. false when there is no such record. */
static bool vd_audit_hash_of(vd_audit *a, const char *buf, size_t n, off_t off, long long seq,
                             char hash[VD_AUDIT_HASH_HEX + 1])
{
    const char *end = buf + n, *start, *why = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long long s = 0;
    bool found = false;
    FILE *f = NULL;

    while (end > buf) { /* backwards through the complete lines of the buffer */
        start = end - 1;
        while (start > buf && start[-1] != '\n')
            start--;
        if (start == buf && off > 0)
            break; /* may be a partial line */
        if (vd_audit_chain_check(start, (size_t)(end - 1 - start), NULL, 0, &s, hash, &why) ==
                KV_OK &&
            s == seq)
            return true;
        if (s > 0 && s < seq)
            return false;
        end = start;
    }
    f = fopen(a->path, "re");
    if (f == NULL)
        return false;
    while (!found && (got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] != '\n')
            break;
        line[got - 1] = '\0';
        if (vd_audit_chain_check(line, (size_t)got - 1, NULL, 0, &s, hash, &why) == KV_OK &&
            s == seq)
            found = true;
    }
    free(line);
    fclose(f);
    return found;
}

/* Compares the end of the log (a->seq, a->prev) with the head file and rewrites the head to
 * the log's end. Refuses when records were cut off the end (the log ends before the head) or
 * the head names a record the log does not have. */
static kv_rv vd_audit_head_open(vd_audit *a, const char *buf, size_t n, off_t off)
{
    char hhash[VD_AUDIT_HASH_HEX + 1], at[VD_AUDIT_HASH_HEX + 1], msg[512];
    long long hseq = 0;
    const char *athead = NULL;
    kv_rv rv;

    rv = vd_audit_head_read(a, &hseq, hhash);
    if (rv == KV_ERR_NOT_FOUND && a->seq > 0) {
        fprintf(stderr,
                "vaultd: %s: the log has %lld record(s) but its head %s is missing; refusing "
                "to start (records cut off the end could not be noticed). If the log is "
                "complete, `kvault audit verify --file %s --reset-head` checks it and writes "
                "the head; or move the log aside to start a new chain.\n",
                a->path, a->seq, a->head, a->path);
        return KV_ERR_CONFIG;
    }
    if (rv == KV_OK) {
        if (hseq == 0)
            athead = VD_AUDIT_GENESIS;
        else if (hseq == a->seq)
            athead = a->prev;
        else if (hseq < a->seq && vd_audit_hash_of(a, buf, n, off, hseq, at))
            athead = at;
        if (vd_audit_head_check(a->seq, hseq, hhash, athead, msg, sizeof(msg)) != KV_OK) {
            fprintf(stderr,
                    "vaultd: %s: %s (head %s); refusing to start. Restore the missing "
                    "records, or move the log aside (with its head) to start a new chain; "
                    "`kvault audit verify --file %s --reset-head` accepts the log as it is.\n",
                    a->path, msg, a->head, a->path);
            return KV_ERR_CONFIG;
        }
    } else if (rv != KV_ERR_NOT_FOUND) {
        return rv;
    }
    if (vd_audit_head_write(a, a->seq, a->prev) != KV_OK) {
        fprintf(stderr, "vaultd: cannot write the audit head %s: %s\n", a->head, strerror(errno));
        return KV_ERR_CONFIG;
    }
    return KV_OK;
}

/* Finds the last record of the file: cuts off a torn last line, checks the last complete
 * line's own hash and takes its seq and hash as the chain's end, then checks that end
 * against the head file (nothing cut off the end). */
static kv_rv vd_audit_tail(vd_audit *a)
{
    const size_t want = 2 * VD_AUDIT_LINE_MAX;
    char *buf = NULL, *end, *start;
    struct stat stb;
    size_t n, cut;
    ssize_t got;
    off_t off;
    const char *why = NULL;
    kv_rv rv = KV_ERR_CONFIG;

    if (fstat(a->fd, &stb) != 0)
        goto done;
    a->size = stb.st_size;
    snprintf(a->prev, sizeof(a->prev), "%s", VD_AUDIT_GENESIS);
    a->seq = 0;
    n = 0;
    off = 0;
    if (stb.st_size == 0)
        goto head;
    off = stb.st_size > (off_t)want ? stb.st_size - (off_t)want : 0;
    n = (size_t)(stb.st_size - off);
    buf = malloc(n + 1);
    if (buf == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    got = pread(a->fd, buf, n, off);
    if (got < 0 || (size_t)got != n)
        goto done;
    buf[n] = '\0';
    if (buf[n - 1] != '\n') { /* a torn write (crash): never acknowledged, cut it off */
        end = memrchr(buf, '\n', n);
        if (end == NULL && off > 0) {
            fprintf(stderr, "vaultd: %s: the last record is longer than %d bytes\n", a->path,
                    VD_AUDIT_LINE_MAX);
            goto done;
        }
        cut = end ? (size_t)(end - buf) + 1 : 0;
        fprintf(stderr, "vaultd: %s: cutting off a torn last record (%zu bytes)\n", a->path,
                n - cut);
        if (ftruncate(a->fd, off + (off_t)cut) != 0 || fdatasync(a->fd) != 0)
            goto done;
        n = cut;
        a->size = off + (off_t)cut;
        if (a->size == 0)
            goto head;
    }
    end = buf + n - 1; /* the final '\n' */
    start = end;
    while (start > buf && start[-1] != '\n')
        start--;
    if (start == buf && off > 0) {
        fprintf(stderr, "vaultd: %s: the last record is longer than %d bytes\n", a->path,
                VD_AUDIT_LINE_MAX);
        goto done;
    }
    if (vd_audit_chain_check(start, (size_t)(end - start), NULL, 0, &a->seq, a->prev, &why) !=
        KV_OK) {
        fprintf(stderr,
                "vaultd: %s: the last record does not verify (%s); refusing to continue the "
                "chain. Check it with `kvault audit verify --file %s`, then move the log aside "
                "to start a new one.\n",
                a->path, why ? why : "?", a->path);
        goto done;
    }
head:
    rv = vd_audit_head_open(a, buf, n, off);
done:
    free(buf);
    return rv;
}

/* The head file's path, name and directory (opened for renameat / fsync). */
static kv_rv vd_audit_head_dir(vd_audit *a)
{
    char dir[PATH_MAX];
    const char *slash;

    if (vd_audit_head_path(a->path, a->head, sizeof(a->head)) != KV_OK)
        return KV_ERR_CONFIG;
    slash = strrchr(a->head, '/');
    a->head_name = slash ? slash + 1 : a->head;
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == a->head)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - a->head), a->head);
    if ((size_t)snprintf(a->head_tmp, sizeof(a->head_tmp), "%s.tmp", a->head_name) >=
        sizeof(a->head_tmp))
        return KV_ERR_CONFIG;
    a->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0) {
        fprintf(stderr, "vaultd: cannot open %s: %s\n", dir, strerror(errno));
        return KV_ERR_CONFIG;
    }
    return KV_OK;
}

kv_rv vd_audit_open(vd_ctx *ctx)
{
    vd_audit *a = NULL;
    kv_rv rv;

    if (ctx == NULL)
        return KV_ERR_INVALID_ARG;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return KV_ERR_NOMEM;
    a->fd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->dirfd = -1;
    rv = vd_audit_path(ctx, a->path, sizeof(a->path));
    if (rv != KV_OK)
        goto done;
    rv = vd_audit_head_dir(a);
    if (rv != KV_OK)
        goto done;
    a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        fprintf(stderr, "vaultd: cannot open the audit log %s: %s\n", a->path, strerror(errno));
        rv = KV_ERR_CONFIG;
        goto done;
    }
    if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) { /* one writer per log: the chain is ours */
        fprintf(stderr, "vaultd: the audit log %s is in use by another process: %s\n", a->path,
                strerror(errno));
        rv = KV_ERR_CONFIG;
        goto done;
    }
    rv = vd_audit_tail(a);
    if (rv != KV_OK)
        goto done;
    fprintf(stderr, "vaultd: audit log %s (%lld record(s)), head %s\n", a->path, a->seq, a->head);
    ctx->audit = a;
    a = NULL;
done:
    if (a != NULL) {
        if (a->fd >= 0)
            close(a->fd);
        if (a->dirfd >= 0)
            close(a->dirfd);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
    }
    return rv;
}

void vd_audit_close(vd_ctx *ctx)
{
    vd_audit *a = ctx ? ctx->audit : NULL;

    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    while (a->syncing) /* (workers are stopped by now; never race a syncer's head write) */
        pthread_cond_wait(&a->cv, &a->mu);
    if (a->fd >= 0) {
        if (fdatasync(a->fd) == 0 && !a->broken) /* a clean stop: the head names the end */
            (void)vd_audit_head_write(a, a->seq, a->prev);
        close(a->fd);
    }
    pthread_mutex_unlock(&a->mu);
    if (a->dirfd >= 0)
        close(a->dirfd);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
    ctx->audit = NULL;
}

void vd_audit_counts(vd_ctx *ctx, unsigned long long *records, unsigned long long *failures)
{
    vd_audit *a = ctx ? ctx->audit : NULL;

    *records = *failures = 0;
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    *records = a->records;
    *failures = a->failures;
    pthread_mutex_unlock(&a->mu);
}

static bool vd_write_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Appends rec (its "seq" member is set here, "prev" added) and waits until it is durable. */
static kv_rv vd_audit_append(vd_audit *a, json_t *rec)
{
    char hash[VD_AUDIT_HASH_HEX + 1], thash[VD_AUDIT_HASH_HEX + 1], *text = NULL, *line = NULL;
    unsigned long long mine, target;
    long long tseq;
    size_t len = 0;
    int rc;
    kv_rv rv = KV_ERR_INTERNAL;

    pthread_mutex_lock(&a->mu);
    if (a->broken) { /* cut off what a failed write left behind before appending */
        if (ftruncate(a->fd, a->size) != 0)
            goto fail;
        a->broken = false;
    }
    if (json_integer_set(json_object_get(rec, "seq"), a->seq + 1) != 0 ||
        json_object_set_new(rec, "prev", json_string(a->prev)) != 0)
        goto fail;
    text = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (text == NULL ||
        vd_audit_chain_seal(text, strlen(text), a->prev, &line, &len, hash) != KV_OK)
        goto fail;
    if (!vd_write_all(a->fd, line, len)) {
        if (ftruncate(a->fd, a->size) != 0)
            a->broken = true;
        goto fail;
    }
    a->size += (off_t)len;
    a->seq++;
    memcpy(a->prev, hash, sizeof(hash));
    mine = ++a->written;
    a->records++;
    /* group commit: one thread syncs for everyone who appended before it started */
    while (a->synced < mine) {
        if (a->failed_upto >= mine)
            goto fail;
        if (a->syncing) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        a->syncing = true;
        target = a->written; /* the last record appended: seq and hash go into the head */
        tseq = a->seq;
        memcpy(thash, a->prev, sizeof(thash));
        pthread_mutex_unlock(&a->mu);
        rc = fdatasync(a->fd);
        if (rc == 0 && vd_audit_head_write(a, tseq, thash) != KV_OK)
            rc = -1; /* not anchored: fail closed like a failed sync */
        pthread_mutex_lock(&a->mu);
        a->syncing = false;
        if (rc == 0 && target > a->synced)
            a->synced = target;
        if (rc != 0 && target > a->failed_upto)
            a->failed_upto = target;
        pthread_cond_broadcast(&a->cv);
    }
    rv = KV_OK;
    goto done;
fail:
    a->failures++;
done:
    pthread_mutex_unlock(&a->mu);
    free(text);
    free(line);
    return rv;
}

/* ---- what a record says ---- */

typedef struct vd_audit_info {
    char operation[64];
    char object_type[24];
    char object_id[128];
    char version[64];
    char alg[32];
    char vault[VD_ID_MAX];
    char tenant[VD_ID_MAX];
    char principal[VD_ID_MAX];
    char kty[16];
    char crv[16];
    char error[64];
    char inner_error[64];
    bool crypto; /* the request names an algorithm */
} vd_audit_info;

/* Copies printable ASCII (others become '?'), truncating to the buffer. */
static void vd_safe_copy(char *dst, size_t len, const char *src)
{
    size_t i;

    if (len == 0)
        return;
    for (i = 0; src != NULL && src[i] != '\0' && i + 1 < len; i++)
        dst[i] = src[i] > 0x20 && src[i] < 0x7f && src[i] != '\\' ? src[i] : '?';
    dst[i] = '\0';
}

static const struct {
    const char *word, *verb;
    bool crypto;
} vd_actions[] = {
    {"sign", "Sign", true},
    {"verify", "Verify", true},
    {"encrypt", "Encrypt", true},
    {"decrypt", "Decrypt", true},
    {"wrapkey", "WrapKey", true},
    {"unwrapkey", "UnwrapKey", true},
    {"create", "Create", false},
    {"import", "Import", false},
    {"backup", "Backup", false},
    {"restore", "Restore", false},
    {"recover", "Recover", false},
    {"rotate", "Rotate", false},
    {"release", "Release", false},
    {"versions", "ListVersions", false},
    {"rotationpolicy", "RotationPolicy", false},
    {"policy", "Policy", false},
    {"pending", "Pending", false},
    {"merge", "Merge", false},
};

static int vd_action_index(const char *seg)
{
    size_t i;

    for (i = 0; i < sizeof(vd_actions) / sizeof(vd_actions[0]); i++)
        if (strcmp(seg, vd_actions[i].word) == 0)
            return (int)i;
    return -1;
}

static const struct {
    const char *coll, *noun, *type;
} vd_nouns[] = {
    {"keys", "Key", "key"},
    {"deletedkeys", "DeletedKey", "key"},
    {"secrets", "Secret", "secret"},
    {"deletedsecrets", "DeletedSecret", "secret"},
    {"certificates", "Certificate", "certificate"},
    {"deletedcertificates", "DeletedCertificate", "certificate"},
};

static bool vd_is_get(const vd_req *r)
{
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

/* Verb of a request without an action word: Get/List, Set/Import, Update, Delete/Purge. */
static const char *vd_method_verb(const vd_req *r, bool has_id, bool keys, bool deleted)
{
    if (vd_is_get(r))
        return has_id ? "Get" : "List";
    if (strcmp(r->method, "PUT") == 0)
        return keys ? "Import" : has_id ? "Set" : "Put";
    if (strcmp(r->method, "PATCH") == 0)
        return "Update";
    if (strcmp(r->method, "DELETE") == 0)
        return deleted ? "Purge" : "Delete";
    return "Create";
}

/* The sub-verb of rotationpolicy / policy / pending. */
static const char *vd_sub_verb(const vd_req *r)
{
    if (vd_is_get(r))
        return "Get";
    if (strcmp(r->method, "PUT") == 0)
        return "Set";
    if (strcmp(r->method, "PATCH") == 0)
        return "Update";
    if (strcmp(r->method, "DELETE") == 0)
        return "Delete";
    return "Create";
}

/* {scope}/providers/Microsoft.Authorization/roleAssignments|roleDefinitions[/{id}] */
static bool vd_derive_rbac(const vd_req *r, vd_audit_info *in)
{
    size_t i;

    for (i = 0; i + 2 < r->nsegs; i++) {
        if (strcmp(r->segs[i], "providers") != 0 ||
            strcasecmp(r->segs[i + 1], "Microsoft.Authorization") != 0)
            continue;
        snprintf(in->object_type, sizeof(in->object_type), "%s",
                 strcasecmp(r->segs[i + 2], "roleDefinitions") == 0 ? "roleDefinition"
                                                                    : "roleAssignment");
        if (i + 3 < r->nsegs && r->segs[i + 3][0] != '\0')
            vd_safe_copy(in->object_id, sizeof(in->object_id), r->segs[i + 3]);
        snprintf(in->operation, sizeof(in->operation), "%s%s",
                 in->object_type[4] == 'D' ? "RoleDefinition" : "RoleAssignment",
                 vd_method_verb(r, in->object_id[0] != '\0', false, false));
        return true;
    }
    return false;
}

/* Vault data plane: object type, name, version and an Azure-like operation name from the
 * path, so that requests refused before routing (401, 404) are named too. */
static void vd_derive_vault(const vd_req *r, vd_audit_info *in)
{
    const char *noun = NULL, *verb;
    int act = -1, k;
    size_t i;

    vd_safe_copy(in->vault, sizeof(in->vault), r->vault.name);
    vd_safe_copy(in->tenant, sizeof(in->tenant), r->vault.tenant_id);
    if (vd_derive_rbac(r, in))
        return;
    if (r->nsegs == 0) {
        snprintf(in->operation, sizeof(in->operation), "Unknown");
        return;
    }
    if (strcmp(r->segs[0], "rng") == 0) {
        snprintf(in->operation, sizeof(in->operation), "GetRandomBytes");
        return;
    }
    if (strcmp(r->segs[0], "certificates") == 0 && r->nsegs >= 2 &&
        (strcmp(r->segs[1], "contacts") == 0 || strcmp(r->segs[1], "issuers") == 0)) {
        bool issuers = r->segs[1][0] == 'i';

        if (issuers && r->nsegs >= 3 && r->segs[2][0] != '\0')
            vd_safe_copy(in->object_id, sizeof(in->object_id), r->segs[2]);
        snprintf(in->object_type, sizeof(in->object_type), "%s",
                 issuers ? "certificateIssuer" : "certificateContacts");
        snprintf(in->operation, sizeof(in->operation), "%s%s",
                 issuers ? "CertificateIssuer" : "CertificateContacts",
                 issuers ? vd_method_verb(r, in->object_id[0] != '\0', false, false)
                         : vd_sub_verb(r));
        return;
    }
    for (i = 0; i < sizeof(vd_nouns) / sizeof(vd_nouns[0]) && noun == NULL; i++)
        if (strcmp(r->segs[0], vd_nouns[i].coll) == 0) {
            noun = vd_nouns[i].noun;
            snprintf(in->object_type, sizeof(in->object_type), "%s", vd_nouns[i].type);
        }
    if (noun == NULL) {
        snprintf(in->operation, sizeof(in->operation), "Unknown");
        return;
    }
    for (i = 1; i < r->nsegs; i++) {
        k = vd_action_index(r->segs[i]);
        if (k >= 0)
            act = k;
        else if (i == 1 && r->segs[1][0] != '\0')
            vd_safe_copy(in->object_id, sizeof(in->object_id), r->segs[1]);
        else if (i == 2)
            vd_safe_copy(in->version, sizeof(in->version), r->segs[2]);
    }
    if (act < 0) {
        verb = vd_method_verb(r, in->object_id[0] != '\0', strcmp(r->segs[0], "keys") == 0,
                              strncmp(r->segs[0], "deleted", 7) == 0);
        snprintf(in->operation, sizeof(in->operation), "%s%s", noun, verb);
        return;
    }
    in->crypto = vd_actions[act].crypto;
    if (strcmp(vd_actions[act].word, "rotationpolicy") == 0 ||
        strcmp(vd_actions[act].word, "policy") == 0 || strcmp(vd_actions[act].word, "pending") == 0)
        snprintf(in->operation, sizeof(in->operation), "%s%s%s", noun, vd_actions[act].verb,
                 vd_sub_verb(r));
    else
        snprintf(in->operation, sizeof(in->operation), "%s%s", noun, vd_actions[act].verb);
}

static void vd_derive_admin(const vd_req *r, vd_audit_info *in)
{
    static const struct {
        const char *seg, *noun;
    } kinds[] = {
        {"vaults", "Vault"},
        {"managedHSMs", "ManagedHsm"},
        {"servicePrincipals", "ServicePrincipal"},
        {"managedIdentities", "ManagedIdentity"},
        {"tenants", "Tenant"},
        {"users", "User"},
        {"tokenSigningKey", "TokenSigningKey"},
    };
    const char *noun = "Admin", *name = r->nsegs >= 3 && r->segs[2][0] ? r->segs[2] : NULL;
    size_t i;

    for (i = 0; r->nsegs >= 2 && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcasecmp(r->segs[1], kinds[i].seg) == 0)
            noun = kinds[i].noun;
    vd_safe_copy(in->tenant, sizeof(in->tenant), r->vault.tenant_id);
    if (name != NULL && (strcmp(noun, "Vault") == 0 || strcmp(noun, "ManagedHsm") == 0)) {
        vd_safe_copy(in->vault, sizeof(in->vault), name);
    } else {
        vd_safe_copy(in->vault, sizeof(in->vault), r->vault.name);
        if (name != NULL)
            vd_safe_copy(in->object_id, sizeof(in->object_id), name);
    }
    if (strcmp(noun, "TokenSigningKey") == 0) { /* GET .../tokenSigningKey, POST .../rotate */
        snprintf(in->operation, sizeof(in->operation), "%s%s", noun,
                 vd_is_get(r) ? "Get" : "Rotate");
        in->object_id[0] = '\0';
        return;
    }
    snprintf(in->operation, sizeof(in->operation), "%s%s", noun,
             vd_is_get(r)                       ? (name ? "Get" : "List")
             : strcmp(r->method, "PUT") == 0    ? "Put"
             : strcmp(r->method, "DELETE") == 0 ? "Delete"
             : strcmp(r->method, "PATCH") == 0  ? "Update"
                                                : "Create");
}

/* Identity endpoints (/{tenant}/oauth2/..., managed identity): the claimed client id of a
 * token request is recorded (never the secret or assertion). */
static void vd_derive_identity(vd_req *r, vd_audit_info *in)
{
    const char *last = r->segs[r->nsegs - 1], *cid;
    vd_params form = {0};

    if (strcmp(last, "token") == 0)
        snprintf(in->operation, sizeof(in->operation), "%s",
                 strcmp(r->segs[0], "metadata") == 0 || strcmp(r->segs[0], "msi") == 0
                     ? "ManagedIdentityTokenIssue"
                     : "TokenIssue");
    else if (strcmp(last, "openid-configuration") == 0)
        snprintf(in->operation, sizeof(in->operation), "OpenIdConfigurationGet");
    else if (strcmp(last, "keys") == 0)
        snprintf(in->operation, sizeof(in->operation), "JwksGet");
    else
        snprintf(in->operation, sizeof(in->operation), "Identity");
    if (strcmp(r->segs[0], "metadata") != 0 && strcmp(r->segs[0], "msi") != 0)
        vd_safe_copy(in->tenant, sizeof(in->tenant), r->segs[0]);
    if (r->principal[0] != '\0' || strcmp(last, "token") != 0)
        return;
    cid = vd_req_param(r, "client_id");
    if (cid == NULL && strcmp(r->method, "POST") == 0 && r->body != NULL &&
        vd_params_parse(&form, r->body, r->body_len) == KV_OK)
        cid = vd_params_get(&form, "client_id");
    if (cid != NULL && strlen(cid) < sizeof(in->principal))
        vd_safe_copy(in->principal, sizeof(in->principal), cid);
    vd_params_clear(&form);
}

/* The "alg" member of a crypto request body, read without copying the body (values are
 * base64url, so a quote can only start a member name). */
static void vd_body_alg(const vd_req *r, char *out, size_t outlen)
{
    const char *p = r->body, *end = r->body ? r->body + r->body_len : NULL;
    size_t i;

    while (p != NULL && (p = strstr(p, "\"alg\"")) != NULL) {
        p += 5;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p != ':')
            continue;
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p != '"')
            continue;
        p++;
        for (i = 0; p + i < end && i + 1 < outlen && p[i] != '"'; i++)
            if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
                  (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_'))
                return;
        if (p + i < end && p[i] == '"') {
            memcpy(out, p, i);
            out[i] = '\0';
        }
        return;
    }
}

/* From a successful reply: the version actually used (kid / key.kid / id) and kty / crv. */
static void vd_reply_facts(const json_t *body, vd_audit_info *in)
{
    static const char *const colls[] = {"/keys/",           "/secrets/",
                                        "/certificates/",   "/deletedkeys/",
                                        "/deletedsecrets/", "/deletedcertificates/"};
    const json_t *key = json_object_get(body, "key");
    const char *id = json_string_value(json_object_get(body, "kid")), *p = NULL, *slash;
    size_t i;

    if (id == NULL)
        id = json_string_value(json_object_get(key, "kid"));
    if (id == NULL)
        id = json_string_value(json_object_get(body, "id"));
    for (i = 0; id != NULL && i < sizeof(colls) / sizeof(colls[0]) && p == NULL; i++)
        if ((p = strstr(id, colls[i])) != NULL)
            p += strlen(colls[i]);
    if (p != NULL && (slash = strchr(p, '/')) != NULL && slash[1] != '\0' &&
        strchr(slash + 1, '/') == NULL)
        vd_safe_copy(in->version, sizeof(in->version), slash + 1);
    if (json_is_object(key)) {
        vd_safe_copy(in->kty, sizeof(in->kty), json_string_value(json_object_get(key, "kty")));
        vd_safe_copy(in->crv, sizeof(in->crv), json_string_value(json_object_get(key, "crv")));
    }
}

static void vd_reply_error_code(const json_t *body, vd_audit_info *in)
{
    const json_t *err = json_object_get(body, "error");

    if (json_is_string(err)) { /* Entra: {"error": "invalid_client", ...} */
        vd_safe_copy(in->error, sizeof(in->error), json_string_value(err));
        return;
    }
    vd_safe_copy(in->error, sizeof(in->error), json_string_value(json_object_get(err, "code")));
    vd_safe_copy(in->inner_error, sizeof(in->inner_error),
                 json_string_value(json_object_get(json_object_get(err, "innererror"), "code")));
}

static bool vd_is_admin(const vd_req *r)
{
    return r->nsegs >= 1 && strcmp(r->segs[0], "admin") == 0;
}

static bool vd_is_identity(const vd_req *r)
{
    size_t n = r->nsegs;

    if (n >= 2 && (strcmp(r->segs[1], "oauth2") == 0 || strcmp(r->segs[1], "v2.0") == 0 ||
                   strcmp(r->segs[1], "discovery") == 0 || strcmp(r->segs[1], ".well-known") == 0))
        return true;
    return n >= 1 && (strcmp(r->segs[0], "metadata") == 0 || strcmp(r->segs[0], "msi") == 0);
}

/* The first segment names a vault collection (a key called "oauth2" is still a key). */
static bool vd_is_vault_collection(const vd_req *r)
{
    size_t i;

    if (r->nsegs == 0)
        return false;
    for (i = 0; i < sizeof(vd_nouns) / sizeof(vd_nouns[0]); i++)
        if (strcmp(r->segs[0], vd_nouns[i].coll) == 0)
            return true;
    return strcmp(r->segs[0], "rng") == 0 || strcmp(r->segs[0], "providers") == 0;
}

static void vd_derive(vd_req *r, vd_audit_info *in)
{
    memset(in, 0, sizeof(*in));
    vd_safe_copy(in->principal, sizeof(in->principal), r->principal);
    if (vd_metrics_is_metrics_path(r))
        snprintf(in->operation, sizeof(in->operation), "MetricsGet");
    else if (vd_is_admin(r))
        vd_derive_admin(r, in);
    else if (vd_is_identity(r) && !vd_is_vault_collection(r))
        vd_derive_identity(r, in);
    else
        vd_derive_vault(r, in);
    if (in->crypto)
        vd_body_alg(r, in->alg, sizeof(in->alg));
    if (r->audit.object_id[0] != '\0')
        snprintf(in->object_id, sizeof(in->object_id), "%s", r->audit.object_id);
    if (r->audit.version[0] != '\0')
        snprintf(in->version, sizeof(in->version), "%s", r->audit.version);
    if (r->audit.alg[0] != '\0')
        snprintf(in->alg, sizeof(in->alg), "%s", r->audit.alg);
}

static void vd_set_str(json_t *o, const char *name, const char *v, bool always)
{
    if (always || (v != NULL && v[0] != '\0'))
        json_object_set_new(o, name, json_string(v ? v : ""));
}

/* A record without prev/hash (the seq member is a placeholder set at append time). */
static json_t *vd_audit_record(vd_req *r, const vd_audit_info *in, const char *phase, int status)
{
    struct evhttp_connection *conn = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    char ts[40], ip[64] = "", crid[80] = "";
    const char *c;
    struct timespec now;
    struct tm tm;
    char *addr = NULL;
    ev_uint16_t port = 0;
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", now.tv_nsec / 1000000);
    if (conn != NULL)
        evhttp_connection_get_peer(conn, &addr, &port);
    vd_safe_copy(ip, sizeof(ip), addr);
    c = r->ev ? vd_req_header(r, "x-ms-client-request-id") : NULL;
    if (c != NULL && strlen(c) < sizeof(crid))
        vd_safe_copy(crid, sizeof(crid), c);
    json_object_set_new(o, "seq", json_integer(0));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "phase", json_string(phase));
    json_object_set_new(o, "request_id", json_string(r->request_id));
    vd_set_str(o, "client_request_id", crid, false);
    vd_set_str(o, "client_ip", ip, true);
    vd_set_str(o, "tenant", in->tenant, true);
    vd_set_str(o, "principal", in->principal, true);
    vd_set_str(o, "operation", in->operation, true);
    vd_set_str(o, "method", r->method, true);
    vd_set_str(o, "vault", in->vault, true);
    vd_set_str(o, "object_type", in->object_type, false);
    vd_set_str(o, "object_id", in->object_id, false);
    vd_set_str(o, "version", in->version, false);
    vd_set_str(o, "alg", in->alg, false);
    vd_set_str(o, "kty", in->kty, false);
    vd_set_str(o, "crv", in->crv, false);
    if (status > 0) {
        json_object_set_new(o, "status", json_integer(status));
        vd_set_str(o, "error", in->error, false);
        vd_set_str(o, "inner_error", in->inner_error, false);
        json_object_set_new(o, "latency_ms", json_real(vd_mono_ms() - r->start_ms));
    }
    return o;
}

/* ---- the hooks ---- */

/* Actions that read or compute without changing state. */
static bool vd_action_is_pure(const char *action)
{
    static const char *const pure[] = {
        "keys/sign/action",
        "keys/verify/action",
        "keys/encrypt/action",
        "keys/decrypt/action",
        "keys/wrap/action",
        "keys/unwrap/action",
        "rng/action",
        "keys/backup/action",
        "secrets/backup/action",
        "certificates/backup/action",
    };
    size_t i, n;

    if (action == NULL)
        return false;
    n = strlen(action);
    if (n >= 5 && strcmp(action + n - 5, "/read") == 0)
        return true;
    for (i = 0; i < sizeof(pure) / sizeof(pure[0]); i++)
        if (strcmp(action, pure[i]) == 0)
            return true;
    return false;
}

bool vd_audit_begin(vd_req *r, const char *action)
{
    vd_audit_info in;
    json_t *rec = NULL;
    kv_rv rv = KV_ERR_INTERNAL;

    if (r == NULL || r->ctx == NULL || r->ctx->audit == NULL)
        return true;
    r->audit.action = action;
    if (vd_is_get(r) || vd_action_is_pure(action) || r->audit.begun)
        return true;
    vd_derive(r, &in);
    rec = vd_audit_record(r, &in, "begin", 0);
    if (rec != NULL)
        rv = vd_audit_append(r->ctx->audit, rec);
    json_decref(rec);
    if (rv == KV_OK) {
        r->audit.begun = true;
        return true;
    }
    fprintf(stderr, "vaultd: audit log not writable: request %s refused\n", r->request_id);
    vd_reply_error(r, 503, "ServiceUnavailable", "AuditLogUnavailable",
                   "The audit log cannot be written; the request was not carried out.");
    return false;
}

void vd_audit_on_reply(vd_req *r, int *status, json_t **body)
{
    vd_audit_info in;
    json_t *rec = NULL, *err;
    bool is_metrics;
    kv_rv rv = KV_ERR_INTERNAL;

    if (r == NULL || status == NULL || body == NULL || r->ctx == NULL || r->ctx->audit == NULL)
        return;
    if (r->nsegs == 1 && strcmp(r->segs[0], "healthz") == 0)
        return; /* liveness probes are not audited (docs/audit.md) */
    is_metrics = vd_metrics_is_metrics_path(r);
    vd_derive(r, &in);
    if (*status >= 200 && *status < 300 && json_is_object(*body))
        vd_reply_facts(*body, &in);
    if (*status >= 400)
        vd_reply_error_code(*body, &in);
    rec = vd_audit_record(r, &in, "result", *status);
    if (rec != NULL)
        rv = vd_audit_append(r->ctx->audit, rec);
    json_decref(rec);
    if (rv != KV_OK && !is_metrics) { /* fail closed: nothing but a 503 leaves */
        fprintf(stderr, "vaultd: audit log not writable: reply %s replaced by 503\n",
                r->request_id);
        json_decref(*body);
        *status = 503;
        err = json_pack("{s:{s:s, s:s, s:{s:s}}}", "error", "code", "ServiceUnavailable", "message",
                        "The audit log cannot be written; the request's result is withheld.",
                        "innererror", "code", "AuditLogUnavailable");
        *body = err;
        snprintf(in.error, sizeof(in.error), "ServiceUnavailable");
    }
    if (r->ctx->metrics != NULL)
        vd_metrics_observe(r->ctx->metrics, in.vault, in.operation,
                           strcmp(in.object_type, "key") == 0 ? in.object_id : NULL, in.principal,
                           *status, (vd_mono_ms() - r->start_ms) / 1000.0);
}

void vd_audit_note(vd_req *r, const char *object_id, const char *version, const char *alg)
{
    if (r == NULL)
        return;
    if (object_id != NULL)
        vd_safe_copy(r->audit.object_id, sizeof(r->audit.object_id), object_id);
    if (version != NULL)
        vd_safe_copy(r->audit.version, sizeof(r->audit.version), version);
    if (alg != NULL)
        vd_safe_copy(r->audit.alg, sizeof(r->audit.alg), alg);
}
