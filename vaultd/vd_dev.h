/* vd_dev.h - the state directory: on first start with --dev, creates the CA, server
 * certificate, token-signing key, KEK, database (dev tenant, vault "dev", service principal
 * with the Administrator role) and client.conf; on later starts loads and reuses them. */
#ifndef VD_DEV_H
#define VD_DEV_H

#include "kv_status.h"
#include "vd_ctx.h"

/* Loads (and with ctx->cfg.dev, creates) the state in ctx->cfg.state_dir, making that path
 * absolute. Fills db_path, authority, default_vault, token_key, token_kid and kek. */
kv_rv vd_dev_bootstrap(vd_ctx *ctx);

#endif
