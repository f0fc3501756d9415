/* vd_mi.h - the managed-identity endpoints on a separate loopback listener (plain HTTP, like
 * IMDS and App Service): GET /metadata/identity/oauth2/token (header Metadata: true) and
 * GET /msi/token (header X-IDENTITY-HEADER). Tokens are issued for the managed identity bound
 * to this host (--identity-host, default the machine's hostname). */
#ifndef VD_MI_H
#define VD_MI_H

#include "kv_status.h"
#include "vd_ctx.h"

/* Prepares the identity header (--identity-header or STATE/identity-header, 0600), binds the
 * loopback listener when --identity-listen is set (refusing a non-loopback address) and starts
 * its thread. In --dev mode also ensures the managed identity "dev-mi" and writes
 * STATE/identity.env. */
kv_rv vd_mi_start(vd_ctx *ctx);
void vd_mi_stop(vd_ctx *ctx);

#endif
