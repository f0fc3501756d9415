/* vd_metrics.h - request metrics in the Prometheus text format (GET /metrics, loopback
 * clients only): requests by vault, operation, key, principal and result; a latency
 * histogram by operation; audit record counters; the process start time. */
#ifndef VD_METRICS_H
#define VD_METRICS_H

#include "kv_status.h"
#include "vd_ctx.h"
#include "vd_http.h"

/* Most distinct label sets kept in kvault_requests_total; later new sets are counted with
 * key="_other", principal="_other" (docs/audit.md). */
#define VD_METRICS_MAX_SERIES 4096
#define VD_METRICS_MAX_OPS 128

typedef struct vd_metrics vd_metrics;

kv_rv vd_metrics_new(vd_metrics **out);
void vd_metrics_free(vd_metrics *m);

/* Counts one answered request (any label may be NULL or ""). */
void vd_metrics_observe(vd_metrics *m, const char *vault, const char *operation, const char *key,
                        const char *principal, int status, double seconds);

/* Whether r is GET /metrics, and answering it (403 unless the client is on loopback). */
bool vd_metrics_is_metrics_path(const vd_req *r);
void vd_metrics_handle(vd_req *r);

#endif
