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

#endif
