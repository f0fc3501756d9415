/* vd_audit_chain.c - hash chain of the audit log: sealing a record and checking one line
 * (see vd_audit_chain.h for the format). Used by vaultd and by `kvault audit verify`. */
#include "vd_audit_chain.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define VD_HASH_KEY ",\"hash\":\""
#define VD_HASH_KEY_LEN (sizeof(VD_HASH_KEY) - 1)
/* ,"hash":"<64 hex>"} */
#define VD_SUFFIX_LEN (VD_HASH_KEY_LEN + VD_AUDIT_HASH_HEX + 2)

static bool vd_is_hex64(const char *s)
{
    size_t i;

    for (i = 0; i < VD_AUDIT_HASH_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

kv_rv vd_audit_chain_hash(const char *prev, const char *content, size_t len,
                          char hash[VD_AUDIT_HASH_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    EVP_MD_CTX *mc = NULL;
    kv_rv rv = KV_ERR_INTERNAL;

    if (prev == NULL || content == NULL || hash == NULL || strlen(prev) != VD_AUDIT_HASH_HEX)
        return KV_ERR_INVALID_ARG;
    mc = EVP_MD_CTX_new();
    if (mc == NULL || EVP_DigestInit_ex(mc, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(mc, prev, VD_AUDIT_HASH_HEX) != 1 || EVP_DigestUpdate(mc, "\n", 1) != 1 ||
        EVP_DigestUpdate(mc, content, len) != 1 || EVP_DigestFinal_ex(mc, md, &mdlen) != 1 ||
        mdlen != 32)
        goto done;
    for (i = 0; i < mdlen; i++) {
        hash[2 * i] = hex[md[i] >> 4];
        hash[2 * i + 1] = hex[md[i] & 15];
    }
    hash[VD_AUDIT_HASH_HEX] = '\0';
    rv = KV_OK;
done:
    EVP_MD_CTX_free(mc);
    return rv;
}

kv_rv vd_audit_chain_seal(const char *content, size_t len, const char *prev, char **line,
                          size_t *linelen, char hash[VD_AUDIT_HASH_HEX + 1])
{
    char *out = NULL;
    size_t n;
    kv_rv rv;

    if (content == NULL || line == NULL || linelen == NULL || len < 2 || content[0] != '{' ||
        content[len - 1] != '}')
        return KV_ERR_INVALID_ARG;
    rv = vd_audit_chain_hash(prev, content, len, hash);
    if (rv != KV_OK)
        return rv;
    n = len - 1 + VD_SUFFIX_LEN + 1;
    if (n > VD_AUDIT_LINE_MAX)
        return KV_ERR_INVALID_ARG;
    out = malloc(n + 1);
    if (out == NULL)
        return KV_ERR_NOMEM;
    memcpy(out, content, len - 1);
    snprintf(out + len - 1, n + 1 - (len - 1), "%s%s\"}\n", VD_HASH_KEY, hash);
    *line = out;
    *linelen = n;
    return KV_OK;
}

kv_rv vd_audit_chain_check(const char *line, size_t len, const char *expect_prev,
                           long long expect_seq, long long *seq, char hash[VD_AUDIT_HASH_HEX + 1],
                           const char **why)
{
    char *content = NULL, want[VD_AUDIT_HASH_HEX + 1];
    const char *p, *prev;
    json_t *j = NULL, *jprev, *jseq;
    size_t clen;
    kv_rv rv = KV_ERR_BAD_REQUEST;

    *why = "not a sealed audit record";
    if (line == NULL || seq == NULL || hash == NULL)
        return KV_ERR_INVALID_ARG;
    if (len < VD_SUFFIX_LEN + 2 || len > VD_AUDIT_LINE_MAX || line[0] != '{')
        goto done;
    p = line + len - VD_SUFFIX_LEN;
    if (memcmp(p, VD_HASH_KEY, VD_HASH_KEY_LEN) != 0 || !vd_is_hex64(p + VD_HASH_KEY_LEN) ||
        memcmp(line + len - 2, "\"}", 2) != 0)
        goto done;
    clen = (size_t)(p - line) + 1;
    content = malloc(clen + 1);
    if (content == NULL) {
        rv = KV_ERR_NOMEM;
        goto done;
    }
    memcpy(content, line, clen - 1);
    content[clen - 1] = '}';
    content[clen] = '\0';
    j = json_loadb(content, clen, JSON_REJECT_DUPLICATES, NULL);
    jprev = json_object_get(j, "prev");
    jseq = json_object_get(j, "seq");
    if (!json_is_object(j) || !json_is_string(jprev) || !json_is_integer(jseq)) {
        *why = "not valid JSON with seq and prev";
        goto done;
    }
    prev = json_string_value(jprev);
    if (strlen(prev) != VD_AUDIT_HASH_HEX || !vd_is_hex64(prev)) {
        *why = "malformed prev";
        goto done;
    }
    if (vd_audit_chain_hash(prev, content, clen, want) != KV_OK) {
        rv = KV_ERR_INTERNAL;
        goto done;
    }
    if (CRYPTO_memcmp(want, p + VD_HASH_KEY_LEN, VD_AUDIT_HASH_HEX) != 0) {
        *why = "hash mismatch (the record was edited)";
        goto done;
    }
    if (expect_seq > 0 && json_integer_value(jseq) != expect_seq) {
        *why = "sequence gap (a record before it was removed or reordered)";
        goto done;
    }
    if (expect_prev != NULL && strcmp(prev, expect_prev) != 0) {
        *why = "prev does not match the previous record's hash (a record was removed or "
               "reordered)";
        goto done;
    }
    *seq = json_integer_value(jseq);
    memcpy(hash, want, sizeof(want));
    *why = NULL;
    rv = KV_OK;
done:
    json_decref(j);
    free(content);
    return rv;
}

kv_rv vd_audit_head_path(const char *log, char *out, size_t len)
{
    const char *base;
    size_t dirlen;

    if (log == NULL || out == NULL || len == 0 || log[0] == '\0')
        return KV_ERR_INVALID_ARG;
    base = strrchr(log, '/');
    base = base ? base + 1 : log;
    dirlen = (size_t)(base - log);
    if (strcmp(base, "audit.log") == 0) {
        if ((size_t)snprintf(out, len, "%.*saudit.head", (int)dirlen, log) >= len)
            return KV_ERR_INVALID_ARG;
    } else if ((size_t)snprintf(out, len, "%s.head", log) >= len) {
        return KV_ERR_INVALID_ARG;
    }
    return KV_OK;
}

kv_rv vd_audit_head_format(long long seq, const char *hash, char *buf, size_t len, size_t *n)
{
    int w;

    if (hash == NULL || buf == NULL || n == NULL || seq < 0 || strlen(hash) != VD_AUDIT_HASH_HEX ||
        !vd_is_hex64(hash))
        return KV_ERR_INVALID_ARG;
    w = snprintf(buf, len, "{\"seq\":%lld,\"hash\":\"%s\"}\n", seq, hash);
    if (w < 0 || (size_t)w >= len)
        return KV_ERR_INVALID_ARG;
    *n = (size_t)w;
    return KV_OK;
}

kv_rv vd_audit_head_parse(const char *text, size_t len, long long *seq,
                          char hash[VD_AUDIT_HASH_HEX + 1])
{
    json_t *j = NULL, *jseq, *jhash;
    const char *h;
    kv_rv rv = KV_ERR_BAD_REQUEST;

    if (text == NULL || seq == NULL || hash == NULL)
        return KV_ERR_INVALID_ARG;
    if (len > VD_AUDIT_HEAD_MAX)
        goto done;
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    jseq = json_object_get(j, "seq");
    jhash = json_object_get(j, "hash");
    if (!json_is_object(j) || !json_is_integer(jseq) || json_integer_value(jseq) < 0 ||
        !json_is_string(jhash))
        goto done;
    h = json_string_value(jhash);
    if (strlen(h) != VD_AUDIT_HASH_HEX || !vd_is_hex64(h))
        goto done;
    *seq = json_integer_value(jseq);
    memcpy(hash, h, VD_AUDIT_HASH_HEX + 1);
    rv = KV_OK;
done:
    json_decref(j);
    return rv;
}

kv_rv vd_audit_head_check(long long log_seq, long long head_seq, const char *head_hash,
                          const char *at_head, char *msg, size_t msglen)
{
    if (head_hash == NULL || msg == NULL || msglen == 0)
        return KV_ERR_INVALID_ARG;
    msg[0] = '\0';
    if (log_seq < head_seq) {
        if (log_seq + 1 == head_seq)
            snprintf(msg, msglen,
                     "the log ends at seq %lld but its head names seq %lld: record %lld is "
                     "missing (cut off the end of the log)",
                     log_seq, head_seq, head_seq);
        else
            snprintf(msg, msglen,
                     "the log ends at seq %lld but its head names seq %lld: records %lld..%lld "
                     "are missing (cut off the end of the log)",
                     log_seq, head_seq, log_seq + 1, head_seq);
        return KV_ERR_BAD_REQUEST;
    }
    if (at_head == NULL) {
        snprintf(msg, msglen, "the head names seq %lld, which is not in the log", head_seq);
        return KV_ERR_BAD_REQUEST;
    }
    if (strlen(at_head) != VD_AUDIT_HASH_HEX ||
        CRYPTO_memcmp(at_head, head_hash, VD_AUDIT_HASH_HEX) != 0) {
        snprintf(msg, msglen,
                 "the head names seq %lld with hash %s, but the log's record %lld has hash %s "
                 "(the log was replaced or rewritten)",
                 head_seq, head_hash, head_seq, at_head);
        return KV_ERR_BAD_REQUEST;
    }
    return KV_OK;
}
