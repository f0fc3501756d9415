/* vd_workpool.c - pool threads for slow CPU work of requests (vd_workpool.h): a FIFO queue
 * under one mutex; each job's completion is a libevent event on the originating event base,
 * activated from the pool thread (libevent runs with pthread locking) so that the done
 * callback and the reply happen on the request's own event thread. */
#include "vd_workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>

typedef struct vd_job {
    struct vd_job *next;
    vd_req *r;
    vd_work_fn work;
    vd_done_fn done;
    void *arg;
    kv_rv rv;
    struct event *ev; /* on r's event base: runs done */
} vd_job;

struct vd_workpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    vd_job *head, *tail; /* queued jobs */
    bool stopping;
    int nthreads; /* started */
    pthread_t *threads;
};

void vd_req_finish(vd_req *r)
{
    if (r == NULL)
        return;
    if (!r->replied)
        vd_reply_error(r, 500, "InternalServerError", NULL, "The request was not answered.");
    vd_req_cleanup(r);
    free(r);
    ERR_clear_error();
}

/* Event thread: the job is done (or cancelled); reply and end the request. */
static void vd_job_complete(evutil_socket_t fd, short what, void *arg)
{
    vd_job *job = arg;
    vd_req *r = job->r;

    (void)fd;
    (void)what;
    event_free(job->ev);
    ERR_clear_error();
    r->deferred = false;
    job->done(r, job->arg, job->rv);
    free(job);
    if (r->deferred) /* done handed a next step to the pool: that one finishes r */
        return;
    vd_req_finish(r);
}

static void *vd_pool_main(void *arg)
{
    vd_workpool *p = arg;
    vd_job *job;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        job = p->head;
        if (job == NULL) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->lock);
            break;
        }
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);

        ERR_clear_error();
        job->rv = job->work(job->arg);
        ERR_clear_error();
        event_active(job->ev, EV_TIMEOUT, 1); /* thread-safe: wakes r's event loop */
    }
    return NULL;
}

kv_rv vd_workpool_new(int nthreads, vd_workpool **out)
{
    vd_workpool *p;
    kv_rv rv = KV_OK;

    if (out == NULL || nthreads < 1)
        return KV_ERR_INVALID_ARG;
    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return KV_ERR_NOMEM;
    p->threads = calloc((size_t)nthreads, sizeof(*p->threads));
    if (p->threads == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->threads);
        free(p);
        return KV_ERR_NOMEM;
    }
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p->threads);
        free(p);
        return KV_ERR_NOMEM;
    }
    for (p->nthreads = 0; p->nthreads < nthreads; p->nthreads++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, vd_pool_main, p) != 0) {
            rv = KV_ERR_INTERNAL;
            break;
        }
    }
    if (rv != KV_OK) {
        vd_workpool_stop(p);
        vd_workpool_free(p);
        return rv;
    }
    *out = p;
    return KV_OK;
}

void vd_workpool_stop(vd_workpool *p)
{
    vd_job *job;
    int i;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    while ((job = p->head) != NULL) { /* cancel what has not started */
        p->head = job->next;
        job->rv = KV_ERR_SERVER;
        event_active(job->ev, EV_TIMEOUT, 1);
    }
    p->tail = NULL;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

void vd_workpool_free(vd_workpool *p)
{
    if (p == NULL)
        return;
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

void vd_req_defer(vd_req *r, vd_work_fn work, vd_done_fn done, void *arg)
{
    vd_workpool *p = r->ctx != NULL ? r->ctx->workpool : NULL;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct event_base *base = evcon != NULL ? evhttp_connection_get_base(evcon) : NULL;
    vd_job *job = NULL;

    if (p != NULL && base != NULL)
        job = calloc(1, sizeof(*job));
    if (job != NULL) {
        job->r = r;
        job->work = work;
        job->done = done;
        job->arg = arg;
        job->ev = event_new(base, -1, 0, vd_job_complete, job);
    }
    if (job != NULL && job->ev != NULL) {
        pthread_mutex_lock(&p->lock);
        if (!p->stopping) {
            if (p->tail != NULL)
                p->tail->next = job;
            else
                p->head = job;
            p->tail = job;
            r->deferred = true;
            pthread_cond_signal(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        if (r->deferred)
            return;
    }
    if (job != NULL) {
        if (job->ev != NULL)
            event_free(job->ev);
        free(job);
    }
    done(r, arg, work(arg)); /* no pool (or shutting down): inline */
}
