/* kv_pool.h - the kv_hsm pool behind a local HSM pool vault ([pool NAME], kv_pool.c), for the
 * few callers that manage the pool itself rather than its keys (`kvault pool init|status`). */
#ifndef KV_POOL_H
#define KV_POOL_H

#include "kv_client.h"
#include "kv_hsm.h"

/* The pool of v (a local pool: kv_vault_is_local_pool), opened on first use: every member's
 * module loaded and a session logged in where the token answers. *out stays owned by v. A
 * pool whose members do not answer now is still returned (operations retry the members);
 * only configuration errors (an unreadable PIN file, ...) fail. */
kv_rv kv_pool_hsm(kv_vault *v, kv_hsm_pool **out, kv_err *err);

#endif
