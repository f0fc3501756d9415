/* kv_cli_time.c - date/time conversions for the command line: parsing az-style datetimes
 * (--expires, --not-before) and formatting token expiry the way az does. */
#include "kv_cli_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool kv_cli_time_parse(const char *s, long long *out)
{
    static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
                                       "%Y-%m-%d", NULL};
    struct tm tm;
    const char *rest = NULL;
    char *end = NULL;
    long long v;
    int i, sign, hh, mm;

    if (s == NULL || s[0] == '\0')
        return false;
    v = strtoll(s, &end, 10); /* plain unix seconds */
    if (*end == '\0' && v >= 0) {
        *out = v;
        return true;
    }
    for (i = 0; fmts[i] != NULL && rest == NULL; i++) {
        memset(&tm, 0, sizeof(tm));
        rest = strptime(s, fmts[i], &tm);
    }
    if (rest == NULL)
        return false;
    if (*rest == '.') { /* fractional seconds are dropped */
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    v = (long long)timegm(&tm);
    if (*rest == '\0' || strcmp(rest, "Z") == 0 || strcmp(rest, "z") == 0) {
        *out = v;
        return true;
    }
    if ((rest[0] == '+' || rest[0] == '-') && sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2 &&
        strlen(rest) == 6 && hh <= 23 && mm <= 59) {
        sign = rest[0] == '+' ? 1 : -1;
        *out = v - sign * (hh * 3600LL + mm * 60LL);
        return true;
    }
    return false;
}

void kv_cli_time_local(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S.000000", &tm) == 0)
        snprintf(buf, len, "%lld", t);
}
