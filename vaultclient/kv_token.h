/* kv_token.h - bearer tokens for one vault's credential: client secret, client certificate
 * (assertion), managed identity (App Service or IMDS), static token file, or the Azure SDK
 * environment variables. One token source per [vault] section; its cache is shared by all
 * threads (one fetch at a time, the others wait or use the still valid cached token), kept
 * across fork (the child does not fetch again), refreshed a quarter of the lifetime (at most
 * 5 minutes) before expiry. The source also follows the vault's 401 challenge (tenant and
 * resource, within the rules in docs/configuration.md). */
#ifndef KV_TOKEN_H
#define KV_TOKEN_H

#include "kv_config.h"
#include "kv_http.h"
#include "kv_status.h"

typedef struct kv_token_src kv_token_src;

/* The source keeps pointers into vc (which must outlive it) and uses http. A credential
 * problem (e.g. a missing environment variable) is not an error here: it is reported by every
 * kv_token_get, so that the other vaults stay usable. */
kv_rv kv_token_src_new(const kv_vault_conf *vc, kv_http *http, kv_token_src **out, kv_err *err);
void kv_token_src_free(kv_token_src *ts);

/* A valid token (cached or fresh). *token is a malloc'd copy: kv_free_secret() it. */
kv_rv kv_token_get(kv_token_src *ts, char **token, long long *expires_on, kv_err *err);

/* Forgets the cached token if it equals `token` (after the vault rejected it). */
void kv_token_invalidate(kv_token_src *ts, const char *token);

/* True while the credential needs a tenant that only the vault's challenge can name (no
 * tenant_id configured): requests then go out once without a token to get the challenge. */
int kv_token_needs_challenge(kv_token_src *ts);

/* After a 401 from the vault (www_authenticate may be ""): forgets `rejected` (may be NULL),
 * learns the tenant and resource from a Bearer challenge where allowed. KV_OK when a retry with
 * a new token may succeed, else KV_ERR_AUTH with the reason. */
kv_rv kv_token_challenge(kv_token_src *ts, const char *www_authenticate, const char *rejected,
                         kv_err *err);

/* A credential sealed under a PIN (client_secret_sealed): kv_token_get answers KV_ERR_LOCKED
 * until kv_token_unlock opened it (wrong PIN: KV_ERR_AUTH); kv_token_lock forgets the secret
 * and the cached token. */
int kv_token_sealed(const kv_token_src *ts);
kv_rv kv_token_unlock(kv_token_src *ts, const char *pin, size_t pinlen, kv_err *err);
void kv_token_lock(kv_token_src *ts);

#endif
