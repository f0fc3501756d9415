/* kv_log.h - diagnostics to stderr, off unless asked for.
 * Level from the configuration (log_level) or $KVAULT_LOG (error|warn|info|debug).
 * NEVER pass a key, secret, token or credential to these functions. */
#ifndef KV_LOG_H
#define KV_LOG_H

enum { KV_LOG_NONE = 0, KV_LOG_ERROR = 1, KV_LOG_WARN = 2, KV_LOG_INFO = 3, KV_LOG_DEBUG = 4 };

/* Sets the process-wide log level (the last configuration read wins); -1 reads $KVAULT_LOG. */
void kv_log_set_level(int level);
int kv_log_level_from_name(const char *name); /* -1 if unknown */
void kv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define KV_ERROR(...) kv_log(KV_LOG_ERROR, __VA_ARGS__)
#define KV_WARN(...) kv_log(KV_LOG_WARN, __VA_ARGS__)
#define KV_INFO(...) kv_log(KV_LOG_INFO, __VA_ARGS__)
#define KV_DEBUG(...) kv_log(KV_LOG_DEBUG, __VA_ARGS__)

#endif
