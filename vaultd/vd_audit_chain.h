/* vd_audit_chain.h - the hash chain of vaultd's audit log, shared by vaultd (writer) and
 * `kvault audit` (verifier). Pure functions: no I/O, no vaultd state.
 *
 * A record is one line: CONTENT with ,"hash":"H"} in place of CONTENT's final '}', then '\n'.
 * CONTENT is a compact JSON object that holds "seq" (1, 2, ...) and "prev" (the previous
 * record's hash, VD_AUDIT_GENESIS for the first record of a file), and
 *   H = lower-case hex SHA-256( prev || "\n" || CONTENT ).
 * Editing a byte of a line changes its hash; removing a line breaks the next line's prev and
 * seq. */
#ifndef VD_AUDIT_CHAIN_H
#define VD_AUDIT_CHAIN_H

#include <stddef.h>

#include "kv_status.h"

#define VD_AUDIT_HASH_HEX 64
#define VD_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define VD_AUDIT_LINE_MAX 8192 /* a sealed record is never longer (writer and reader agree) */

/* hash = hex SHA-256(prev || "\n" || content[0..len)). */
kv_rv vd_audit_chain_hash(const char *prev, const char *content, size_t len,
                          char hash[VD_AUDIT_HASH_HEX + 1]);

/* Seals content ("{...}" with seq and prev inside) into a malloc'd line ending in '\n'.
 * prev must be the "prev" value inside content. */
kv_rv vd_audit_chain_seal(const char *content, size_t len, const char *prev, char **line,
                          size_t *linelen, char hash[VD_AUDIT_HASH_HEX + 1]);

/* Checks one line (without its '\n'). expect_prev: the previous record's hash, or NULL to
 * take the line's own prev (tail check); expect_seq: the wanted seq, or 0 for any. On KV_OK
 * *seq and hash receive the line's values; otherwise *why names the problem (static text). */
kv_rv vd_audit_chain_check(const char *line, size_t len, const char *expect_prev,
                           long long expect_seq, long long *seq, char hash[VD_AUDIT_HASH_HEX + 1],
                           const char **why);

/* ---- the head: {seq, hash} of the last durable record, kept in a small file next to the
 * log (rewritten atomically after each group commit) so that records cut off the END of the
 * log are noticed. File contents: {"seq":N,"hash":"H"} and '\n'. ---- */

#define VD_AUDIT_HEAD_MAX 128 /* the head file is never longer */

/* The head file of a log: DIR/audit.head for DIR/audit.log, otherwise LOG.head. */
kv_rv vd_audit_head_path(const char *log, char *out, size_t len);

/* Formats the head file's contents into buf (NUL-terminated); *n receives the length. */
kv_rv vd_audit_head_format(long long seq, const char *hash, char *buf, size_t len, size_t *n);

/* Parses a head file's contents. */
kv_rv vd_audit_head_parse(const char *text, size_t len, long long *seq,
                          char hash[VD_AUDIT_HASH_HEX + 1]);

/* Compares the end of a verified log with its head. log_seq: the log's last seq (0: empty);
 * at_head: the hash of the log's record number head_seq (VD_AUDIT_GENESIS when head_seq is
 * 0; NULL when the log has no such record). The log may extend past the head (records
 * appended after its last update). On failure msg says what is wrong, naming the seqs. */
kv_rv vd_audit_head_check(long long log_seq, long long head_seq, const char *head_hash,
                          const char *at_head, char *msg, size_t msglen);

#endif
