/* vd_audit_req.h - what one request carries for its audit record (a member of vd_req). */
#ifndef VD_AUDIT_REQ_H
#define VD_AUDIT_REQ_H

#include <stdbool.h>

typedef struct vd_req_audit {
    const char *action; /* the route's data action (vd_audit_begin), NULL before routing */
    bool begun;         /* a "begin" record was written for this request */
    /* Optional overrides set by handlers with vd_audit_note (else derived from the path, the
     * request's "alg" and the reply's kid). */
    char object_id[128];
    char version[64];
    char alg[32];
} vd_req_audit;

#endif
