/* vd_workpool.h - a small pool of threads for slow CPU work (RSA key generation, ...), so that
 * one slow request does not hold up the other connections of its worker's event loop.
 *
 * A handler hands the slow part over and returns without replying:
 *
 *     vd_req_defer(r, work, done, arg);
 *     return;                             (r must not be touched any more)
 *
 * work(arg) runs on a pool thread: CPU work only - no vd_req, no store, no reply. Then
 * done(r, arg, rv) runs on the event thread that received r (evhttp replies must be sent
 * there; r->store is that thread's SQLite connection): it writes to the store, replies and
 * frees arg. done is always called exactly once: with work's result, with KV_ERR_SERVER when
 * the job was cancelled at shutdown (work did not run), or inline (before vd_req_defer returns)
 * when there is no pool. done may itself call vd_req_defer(r, ...) again for a next slow step
 * (and must not touch r after that). A client that disconnects meanwhile does not invalidate
 * r: libevent keeps the request until it is answered and then drops the reply; the store write
 * still happens, so the outcome is consistent. */
#ifndef VD_WORKPOOL_H
#define VD_WORKPOOL_H

#include "kv_status.h"
#include "vd_http.h"

typedef kv_rv (*vd_work_fn)(void *arg);
typedef void (*vd_done_fn)(vd_req *r, void *arg, kv_rv rv);

typedef struct vd_workpool vd_workpool;

/* Starts nthreads (>= 1) pool threads. */
kv_rv vd_workpool_new(int nthreads, vd_workpool **out);
/* Stops taking work, cancels queued jobs, waits for the running ones and joins the threads.
 * Every job's done callback is then pending on its event base (run the loop once more). */
void vd_workpool_stop(vd_workpool *p);
void vd_workpool_free(vd_workpool *p); /* after vd_workpool_stop */

/* Runs work on the pool of r->ctx, then done on r's event thread (see above). */
void vd_req_defer(vd_req *r, vd_work_fn work, vd_done_fn done, void *arg);

/* The end of a request's life: answers 500 if nothing answered it, then frees r (allocated by
 * the server's request callback). Not for handlers. */
void vd_req_finish(vd_req *r);

#endif
