/* kv_uri.h - parsing of kvault key URIs: kvault://VAULT/keys/NAME[/VERSION].
 * Grammar (docs/uris.md): scheme "kvault" (case-insensitive), "//", a vault name of
 * 3-24 characters [0-9A-Za-z-], "/keys/", a key name of 1-127 characters [0-9A-Za-z-],
 * optionally "/" and a version of 1-64 characters [0-9A-Za-z]. Nothing else (no query,
 * no fragment, no percent-encoding, no trailing slash). */
#ifndef KV_URI_H
#define KV_URI_H

#include "kv_status.h"

typedef struct kv_uri {
    char vault[25];
    char collection[16]; /* "keys" */
    char name[128];
    char version[65]; /* "" = latest */
} kv_uri;

/* KV_ERR_INVALID_ARG with a reason in err when the URI is malformed. */
kv_rv kv_uri_parse(const char *uri, kv_uri *out, kv_err *err);

/* Returns 1 if s starts with "kvault:" (case-insensitive), else 0. */
int kv_uri_is_kvault(const char *s);

#endif
