/* vd_router.h - dispatch of one request: health check, identity endpoints, and vault
 * requests (vault by Host, bearer authentication, api-version, role check, route table). */
#ifndef VD_ROUTER_H
#define VD_ROUTER_H

#include "vd_http.h"

/* A vault endpoint. name/version are the {n}/{v} path captures (NULL when absent; an empty
 * version means "latest"). */
typedef void (*vd_handler)(vd_req *r, const char *name, const char *version);

typedef struct vd_route {
    const char *method;
    const char *pattern; /* e.g. "keys/{n}/{v}/sign"; {v} may be empty */
    vd_handler fn;
    const char *action; /* RBAC data action, e.g. "keys/sign/action" (for the RBAC issue) */
} vd_route;

/* Answers r (always replies exactly once). */
void vd_router_dispatch(vd_req *r);

#endif
