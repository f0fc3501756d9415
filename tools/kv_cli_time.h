/* kv_cli_time.h - date/time conversions for the command line. */
#ifndef KV_CLI_TIME_H
#define KV_CLI_TIME_H

#include <stdbool.h>
#include <stddef.h>

/* Parses unix seconds or an ISO-8601 datetime ("2030-01-31T12:00:00Z", "2030-01-31",
 * "...+02:00"; no zone = UTC) into unix seconds. */
bool kv_cli_time_parse(const char *s, long long *out);

/* Formats t as az prints token expiry: local time "YYYY-MM-DD HH:MM:SS.000000". */
void kv_cli_time_local(long long t, char *buf, size_t len);

#endif
