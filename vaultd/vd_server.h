/* vd_server.h - the HTTPS server: TLS context, N worker threads each with its own event_base,
 * evhttp, SO_REUSEPORT listening socket and SQLite connection; runs until SIGTERM/SIGINT. */
#ifndef VD_SERVER_H
#define VD_SERVER_H

#include "kv_status.h"
#include "vd_ctx.h"

/* Builds ctx->ssl_ctx from DIR/server.pem and DIR/server.key. */
kv_rv vd_server_tls_init(vd_ctx *ctx);

/* Serves until SIGTERM or SIGINT; returns after all workers stopped. */
kv_rv vd_server_run(vd_ctx *ctx);

#endif
