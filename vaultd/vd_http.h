/* vd_http.h - one HTTP request as vaultd's handlers see it: parsed path, query and body, and
 * the reply helpers (Azure-style JSON, error bodies, standard headers, the access log line). */
#ifndef VD_HTTP_H
#define VD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

#include "kv_status.h"
#include "vd_audit_req.h"
#include "vd_ctx.h"
#include "vd_store.h"

#define VD_MAX_PARAMS 32
#define VD_MAX_SEGS 16
#define VD_MAX_BODY (1024 * 1024)

/* Decoded name=value pairs of a query string or a form body. Values are zeroised on clear
 * (form bodies carry client secrets). */
typedef struct vd_params {
    struct {
        char *name;
        char *value;
    } p[VD_MAX_PARAMS];
    size_t n;
} vd_params;

/* Parses "a=1&b=2" (names and values percent-decoded, '+' = space). KV_ERR_INVALID_ARG on
 * malformed encoding or too many pairs. */
kv_rv vd_params_parse(vd_params *ps, const char *s, size_t len);
const char *vd_params_get(const vd_params *ps, const char *name); /* first match or NULL */
void vd_params_clear(vd_params *ps);

typedef struct vd_req {
    struct evhttp_request *ev;
    vd_ctx *ctx;
    vd_store *store;
    const char *method;      /* "GET", "POST", ... */
    char *path;              /* raw path without the query */
    char *segbuf;            /* copy of path split at '/' */
    char *segs[VD_MAX_SEGS]; /* path segments after the leading '/', possibly empty */
    size_t nsegs;
    char host[256];     /* Host header as sent (with any port), "" if none/invalid */
    char hostname[256]; /* lower case, without the port */
    char request_id[37];
    vd_params query;
    char *body; /* NUL-terminated copy of the body */
    size_t body_len;
    double start_ms;
    int status;
    bool replied;
    bool deferred; /* handed to the work pool (vd_workpool.h): answered later */
    /* filled in by the vault router */
    vd_vault vault;
    char principal[VD_ID_MAX];
    vd_req_audit audit; /* what the audit record names (vd_audit.c) */
} vd_req;

/* Parses ev into r. On failure r is still valid for vd_reply_error and the caller answers 400. */
kv_rv vd_req_init(vd_req *r, struct evhttp_request *ev, vd_ctx *ctx, vd_store *st);
void vd_req_cleanup(vd_req *r);

const char *vd_req_param(const vd_req *r, const char *name);
const char *vd_req_header(const vd_req *r, const char *name);
void vd_add_header(vd_req *r, const char *name, const char *value);

/* Parses the body as a JSON object; on failure answers 400 BadParameter and returns NULL. */
json_t *vd_req_json_body(vd_req *r);

/* Sends status with body (stolen; NULL = empty body) and the standard headers, logs the line. */
void vd_reply_json(vd_req *r, int status, json_t *body);
/* Sends {"error":{"code":code,"message":...[,"innererror":{"code":inner}]}}. */
void vd_reply_error(vd_req *r, int status, const char *code, const char *inner, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

#endif
