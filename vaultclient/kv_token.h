/* kv_token.h - bearer tokens for one credential: acquisition (client secret, Entra v2
 * client-credentials flow), a cache shared by all threads (and kept across fork), and
 * refresh before expiry. */
#ifndef KV_TOKEN_H
#define KV_TOKEN_H

#include "kv_config.h"
#include "kv_http.h"
#include "kv_status.h"

typedef struct kv_token_src kv_token_src;

/* The source keeps pointers into vc (which must outlive it) and uses http. */
kv_rv kv_token_src_new(const kv_vault_conf *vc, kv_http *http, kv_token_src **out, kv_err *err);
void kv_token_src_free(kv_token_src *ts);

/* A valid token (cached or fresh). *token is a malloc'd copy: kv_free_secret() it. */
kv_rv kv_token_get(kv_token_src *ts, char **token, long long *expires_on, kv_err *err);

/* Forgets the cached token if it equals `token` (after the vault rejected it). */
void kv_token_invalidate(kv_token_src *ts, const char *token);

#endif
