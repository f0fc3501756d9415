/* vd_metrics.c - request counters and latency histograms in memory, exported at GET /metrics
 * in the Prometheus text exposition format (0.0.4) to loopback clients only. Label sets are
 * bounded (VD_METRICS_MAX_SERIES, VD_METRICS_MAX_OPS); see docs/audit.md. */
#include "vd_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "vd_audit.h"
#include "vd_util.h"

#define VD_NBUCKETS 13
#define VD_HASH_SIZE 1024

static const double vd_bounds[VD_NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

typedef struct vd_series {
    char vault[VD_ID_MAX];
    char op[64];
    char key[VD_NAME_MAX];
    char principal[VD_ID_MAX];
    int status;
    unsigned long long count;
    struct vd_series *next;
} vd_series;

typedef struct vd_hist {
    char op[64];
    unsigned long long bucket[VD_NBUCKETS]; /* non-cumulative; summed when printed */
    unsigned long long count;
    double sum;
} vd_hist;

struct vd_metrics {
    pthread_mutex_t mu;
    double start; /* unix seconds */
    vd_series *table[VD_HASH_SIZE];
    size_t nseries;
    vd_hist hist[VD_METRICS_MAX_OPS];
    size_t nhist;
};

kv_rv vd_metrics_new(vd_metrics **out)
{
    struct timespec ts;
    vd_metrics *m;

    if (out == NULL)
        return KV_ERR_INVALID_ARG;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return KV_ERR_NOMEM;
    pthread_mutex_init(&m->mu, NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    *out = m;
    return KV_OK;
}

void vd_metrics_free(vd_metrics *m)
{
    vd_series *s, *next;
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < VD_HASH_SIZE; i++)
        for (s = m->table[i]; s != NULL; s = next) {
            next = s->next;
            free(s);
        }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static unsigned long vd_fnv(unsigned long h, const char *s)
{
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619UL;
    return (h ^ 0xff) * 16777619UL;
}

static vd_series *vd_series_find(vd_metrics *m, const char *vault, const char *op, const char *key,
                                 const char *principal, int status, bool create)
{
    unsigned long h = vd_fnv(vd_fnv(vd_fnv(vd_fnv(2166136261UL, vault), op), key), principal);
    vd_series *s;
    size_t b;

    h = (h ^ (unsigned long)status) * 16777619UL;
    b = h % VD_HASH_SIZE;
    for (s = m->table[b]; s != NULL; s = s->next)
        if (s->status == status && strcmp(s->vault, vault) == 0 && strcmp(s->op, op) == 0 &&
            strcmp(s->key, key) == 0 && strcmp(s->principal, principal) == 0)
            return s;
    if (!create)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    snprintf(s->vault, sizeof(s->vault), "%s", vault);
    snprintf(s->op, sizeof(s->op), "%s", op);
    snprintf(s->key, sizeof(s->key), "%s", key);
    snprintf(s->principal, sizeof(s->principal), "%s", principal);
    s->status = status;
    s->next = m->table[b];
    m->table[b] = s;
    m->nseries++;
    return s;
}

void vd_metrics_observe(vd_metrics *m, const char *vault, const char *operation, const char *key,
                        const char *principal, int status, double seconds)
{
    const char *op = operation && operation[0] ? operation : "Unknown";
    vd_series *s;
    vd_hist *hh = NULL;
    size_t i;

    if (m == NULL)
        return;
    vault = vault ? vault : "";
    key = key ? key : "";
    principal = principal ? principal : "";
    pthread_mutex_lock(&m->mu);
    s = vd_series_find(m, vault, op, key, principal, status, m->nseries < VD_METRICS_MAX_SERIES);
    if (s == NULL) /* over the cap: fold the unbounded labels */
        s = vd_series_find(m, vault, op, "_other", "_other", status, true);
    if (s != NULL)
        s->count++;
    for (i = 0; i < m->nhist && hh == NULL; i++)
        if (strcmp(m->hist[i].op, op) == 0)
            hh = &m->hist[i];
    if (hh == NULL && m->nhist < VD_METRICS_MAX_OPS) {
        hh = &m->hist[m->nhist++];
        snprintf(hh->op, sizeof(hh->op), "%s", op);
    }
    if (hh != NULL) {
        for (i = 0; i < VD_NBUCKETS && seconds > vd_bounds[i]; i++)
            ;
        if (i < VD_NBUCKETS)
            hh->bucket[i]++;
        hh->count++;
        hh->sum += seconds;
    }
    pthread_mutex_unlock(&m->mu);
}

/* A label value with \, " and newline escaped. */
static void vd_label(struct evbuffer *b, const char *name, const char *v, bool comma)
{
    evbuffer_add_printf(b, "%s%s=\"", comma ? "," : "", name);
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
    evbuffer_add(b, "\"", 1);
}

static void vd_metrics_render(vd_metrics *m, vd_ctx *ctx, struct evbuffer *b)
{
    unsigned long long records, failures, cum;
    vd_series *s;
    size_t i, k;

    evbuffer_add_printf(b, "# HELP kvault_requests_total Requests answered by vaultd.\n"
                           "# TYPE kvault_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (i = 0; i < VD_HASH_SIZE; i++)
        for (s = m->table[i]; s != NULL; s = s->next) {
            evbuffer_add_printf(b, "kvault_requests_total{");
            vd_label(b, "vault", s->vault, false);
            vd_label(b, "operation", s->op, true);
            vd_label(b, "key", s->key, true);
            vd_label(b, "principal", s->principal, true);
            evbuffer_add_printf(b, ",result=\"%d\"} %llu\n", s->status, s->count);
        }
    evbuffer_add_printf(b, "# HELP kvault_request_duration_seconds Time from request parsed to "
                           "reply sent, by operation.\n"
                           "# TYPE kvault_request_duration_seconds histogram\n");
    for (i = 0; i < m->nhist; i++) {
        cum = 0;
        for (k = 0; k < VD_NBUCKETS; k++) {
            cum += m->hist[i].bucket[k];
            evbuffer_add_printf(b, "kvault_request_duration_seconds_bucket{");
            vd_label(b, "operation", m->hist[i].op, false);
            evbuffer_add_printf(b, ",le=\"%g\"} %llu\n", vd_bounds[k], cum);
        }
        evbuffer_add_printf(b, "kvault_request_duration_seconds_bucket{");
        vd_label(b, "operation", m->hist[i].op, false);
        evbuffer_add_printf(b, ",le=\"+Inf\"} %llu\n", m->hist[i].count);
        evbuffer_add_printf(b, "kvault_request_duration_seconds_sum{");
        vd_label(b, "operation", m->hist[i].op, false);
        evbuffer_add_printf(b, "} %.6f\n", m->hist[i].sum);
        evbuffer_add_printf(b, "kvault_request_duration_seconds_count{");
        vd_label(b, "operation", m->hist[i].op, false);
        evbuffer_add_printf(b, "} %llu\n", m->hist[i].count);
    }
    evbuffer_add_printf(b,
                        "# HELP kvault_metrics_series Label sets kept in kvault_requests_total "
                        "(at most %d).\n# TYPE kvault_metrics_series gauge\n"
                        "kvault_metrics_series %zu\n",
                        VD_METRICS_MAX_SERIES, m->nseries);
    pthread_mutex_unlock(&m->mu);
    vd_audit_counts(ctx, &records, &failures);
    evbuffer_add_printf(b,
                        "# HELP kvault_audit_records_total Audit records written (begin and "
                        "result).\n# TYPE kvault_audit_records_total counter\n"
                        "kvault_audit_records_total %llu\n"
                        "# HELP kvault_audit_write_failures_total Audit records that could not "
                        "be written (the request was refused).\n"
                        "# TYPE kvault_audit_write_failures_total counter\n"
                        "kvault_audit_write_failures_total %llu\n"
                        "# HELP process_start_time_seconds Start time of the process since unix "
                        "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                        "process_start_time_seconds %.3f\n",
                        records, failures, m->start);
}

bool vd_metrics_is_metrics_path(const vd_req *r)
{
    return r != NULL && r->nsegs == 1 && strcmp(r->segs[0], "metrics") == 0;
}

static bool vd_peer_is_loopback(const vd_req *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->ev);
    char *addr = NULL;
    ev_uint16_t port = 0;

    if (conn == NULL)
        return false;
    evhttp_connection_get_peer(conn, &addr, &port);
    if (addr == NULL)
        return false;
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strncmp(addr, "::ffff:127.", 11) == 0;
}

void vd_metrics_handle(vd_req *r)
{
    struct evbuffer *b = NULL;
    json_t *none = NULL;
    int status = 200;

    if (strcmp(r->method, "GET") != 0) {
        vd_reply_error(r, 405, "MethodNotAllowed", NULL, "Use GET.");
        return;
    }
    if (r->ctx->metrics == NULL || !vd_peer_is_loopback(r)) {
        vd_reply_error(r, 403, "Forbidden", NULL, "/metrics is served to loopback clients only.");
        return;
    }
    b = evbuffer_new();
    if (b == NULL) {
        vd_reply_error(r, 500, "InternalServerError", NULL, "Out of memory.");
        return;
    }
    vd_metrics_render(r->ctx->metrics, r->ctx, b);
    /* the send path of a text reply: audited like vd_reply_json (best effort, see vd_audit.c) */
    r->replied = true;
    r->status = status;
    vd_audit_on_reply(r, &status, &none);
    json_decref(none);
    vd_add_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    vd_add_header(r, "Cache-Control", "no-cache");
    vd_add_header(r, "x-ms-request-id", r->request_id);
    evhttp_send_reply(r->ev, status, "OK", b);
    evbuffer_free(b);
}
