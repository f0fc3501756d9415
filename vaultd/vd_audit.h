/* vd_audit.h - vaultd's audit log: one hash-chained JSON line per answered request, written
 * (and fdatasync'd) before the reply leaves, fail closed (docs/audit.md).
 *
 * Records: every reply goes through vd_reply_json, which calls vd_audit_on_reply: a "result"
 * record is appended; if that fails the reply becomes 503 ServiceUnavailable (its body is
 * dropped). Requests that change state also get a "begin" record before their handler runs
 * (vd_audit_begin); if it cannot be written the handler does not run. Requests answered ==
 * records with "phase":"result". */
#ifndef VD_AUDIT_H
#define VD_AUDIT_H

#include <stdbool.h>

#include <jansson.h>

#include "kv_status.h"
#include "vd_ctx.h"
#include "vd_http.h"

/* Opens (creating it, 0600, O_APPEND) cfg.audit_file or STATE/audit/audit.log into
 * ctx->audit and continues the chain after its last record, which must verify (a torn last
 * line without '\n', left by a crash, is cut off). */
typedef struct vd_audit vd_audit;

kv_rv vd_audit_open(vd_ctx *ctx);
void vd_audit_close(vd_ctx *ctx);

/* Before a handler runs: when the request may change state (not GET/HEAD and not a pure
 * crypto or read action), writes the "begin" record. false after answering 503 (the handler
 * must not run). action: the route's data action, or NULL (decided by method). */
bool vd_audit_begin(vd_req *r, const char *action);

/* The single send path (vd_reply_json) calls this before sending: writes the "result"
 * record and feeds the metrics. On failure status and body become the 503 answer. */
void vd_audit_on_reply(vd_req *r, int *status, json_t **body);

/* Lets a handler name the object, version and algorithm explicitly (any may be NULL). */
void vd_audit_note(vd_req *r, const char *object_id, const char *version, const char *alg);

/* Counters for /metrics. */
void vd_audit_counts(vd_ctx *ctx, unsigned long long *records, unsigned long long *failures);

#endif
