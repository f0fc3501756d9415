/* kv_log.c - opt-in diagnostics on stderr. The level is the only process-wide setting. */
#include "kv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Process-wide log level; -1 = not yet read from $KVAULT_LOG. */
static volatile int kv_log_level_setting = -1;

int kv_log_level_from_name(const char *name)
{
    static const char *names[] = {"none", "error", "warn", "info", "debug"};
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

void kv_log_set_level(int level)
{
    if (level < 0) {
        level = kv_log_level_from_name(getenv("KVAULT_LOG"));
        if (level < 0)
            level = KV_LOG_NONE;
    }
    kv_log_level_setting = level;
}

void kv_log(int level, const char *fmt, ...)
{
    static const char *tags[] = {"", "error", "warning", "info", "debug"};
    char line[1024];
    va_list ap;

    if (kv_log_level_setting < 0)
        kv_log_set_level(-1);
    if (level > kv_log_level_setting || level <= KV_LOG_NONE || level > KV_LOG_DEBUG)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "kvault: %s: %s\n", tags[level], line);
}
